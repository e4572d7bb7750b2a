-- orket.serve.directory: the LDAP directory's people checked again while they use the server,
-- not only when they sign in (docs/teams.md, "Offboarding"). A person of the directory whose
-- key or session is used more than sign_in.ldap.recheck_s after this server last looked is
-- looked up again (orket.auth.ldap's lookup: the search's own bind, no password, on the
-- thread pool), and the request waits for the answer: no entry of theirs under a base_dn
-- that exists, or in groups none of which gives a role, or their name now another entry's
-- (another entryUUID; another DN where the directory gives none), they are disabled as
-- `orket users disable` does (sessions ended, keys refused; journaled and audited with the
-- actor "ldap"); their groups changed, their roles follow as at a sign-in (orket.serve.
-- identity); no group listed, while the look's bind can read no group's members at all,
-- their roles stay (_answered says why). A missing base_dn or a failed search is the
-- directory's failure, never the person's. While one look is under way, the person's other
-- requests are answered from the last one. A directory that cannot be reached leaves the last answer
-- standing for sign_in.ldap.grace_s after the last good look (counted from the server's
-- start for someone it has not looked at yet), then the person is refused (fail closed)
-- until it answers again. What was last seen is this process's memory: each server looks
-- for itself.
local identity = require "orket.serve.identity"
local ldap = require "orket.auth.ldap"
local signin_settings = require "orket.settings.signin"
local uv = require "luv"

local M = {}

-- What a person the directory has just disabled is told: no key, token or password of
-- theirs helps now, only the directory's admin and a server admin do (the second request
-- on, they are a disabled person: orket.serve.session's DISABLED_REMEDY)
M.GONE_REMEDY = "the directory's answer disabled them: if it is wrong, the directory's admin puts them back (their "
  .. "entry under base_dn, in a group sign_in.roles maps to a role), then a server admin enables them again (orket "
  .. "users enable NAME, or POST /v1/users/NAME/enable); the server's log has what the directory answered "
  .. "(docs/teams.md#offboarding)"
-- and when the name is now another entry's: a plain enable would be undone by the next
-- look, which finds that entry again; only handing the name over ends it
M.TAKEN_REMEDY = "the directory gives this name to another entry now (a new entryUUID, or a new DN where the "
  .. "directory gives none): a plain enable would be undone at the next look. If that entry is the person's (moved "
  .. "where the directory gives no entryUUID) or the name's new holder, a server admin hands the name to it with "
  .. "orket users enable NAME --new-subject, which revokes the old subject's keys and ends its sessions; the "
  .. "server's log has what the directory answered (docs/teams.md#offboarding)"

local Directory = {}
Directory.__index = Directory

M.RETRY_S = 30 -- a look that found the directory unreachable is not taken again for this long (at most recheck_s)
M.MAX_PEOPLE = 100000 -- names remembered; past it the memory starts again (each is looked at anew)

--- new(signin[, log]) -> directory: signin is orket.settings.signin's section, with ldap
--- set; log(fields): the server's log line (what a look could not tell)
function M.new(signin, log)
  local cfg = signin.ldap
  return setmetatable({ signin = signin, log = log, people = {}, count = 0, started = uv.now(),
    recheck_ms = (cfg.recheck_s or signin_settings.RECHECK_S) * 1000,
    grace_ms = (cfg.grace_s or signin_settings.GRACE_S) * 1000,
    retry_ms = math.min(M.RETRY_S, cfg.recheck_s or signin_settings.RECHECK_S) * 1000 }, Directory)
end

-- the memory of name (made when new: its last good look counted from the server's start)
function Directory:_of(name)
  local p = self.people[name]
  if not p then
    if self.count >= M.MAX_PEOPLE then self.people, self.count = {}, 0 end
    p = { at = self.started }
    self.people[name], self.count = p, self.count + 1
  end
  return p
end

--- directory:seen(name): the directory vouched for name just now (a sign-in)
function Directory:seen(name) self:_of(name).at = uv.now() end

-- Directory:_gone(db, name, reason, why[, taken]) -> nil, 401, ...: the directory says the
-- person is gone (reason: no-entry, no-role, refused; why: in words; taken: the name is
-- another entry's, whose remedy differs): disabled. A leaver is never
-- kept, the last enabled server admin included (a sign-in of theirs is refused alike, and
-- their keys would outlive their entry), as `orket users disable` does not keep them;
-- that one's disabling names why in its audit entry (why=, lastadmin=yes) and in the
-- server's log, with what brings an admin back, since no person is left to manage people
-- over the API (docs/teams.md, "Offboarding")
function Directory:_gone(db, name, reason, why, taken)
  local res, err = identity.gone(db, name, { source = "ldap", route = "directory", reason = reason })
  if not res then
    return nil, 503, "unavailable", "the store cannot be reached just now; try again", "store: " .. tostring(err)
  end
  local none_left = res.none_left
  if none_left and self.log then
    self.log { event = "directory", user = name, message = string.format("%s, the last enabled server admin, was "
      .. "disabled: %s (a leaver is never kept); %s", name, tostring(why), none_left) }
  end
  return nil, 401, "unauthorized", "the directory no longer gives this person a role here; they were disabled",
    "ldap gone: " .. tostring(why), taken and M.TAKEN_REMEDY or M.GONE_REMEDY
end

--- directory:check(db, who) -> true[, looked (the directory answered: their roles may
--- have changed, read them again)] | nil, status, code, message, why[, remedy]: who is a person of the directory (source "ldap")
--- whose key or session a request uses; waits for the directory when it is time to look
function Directory:check(db, who)
  local p, now = self:_of(who.user), uv.now()
  if now - p.at < self.recheck_ms then return true end
  -- a look that found the directory unreachable lately, within the grace: its answer
  -- stands a while, so that each request of the person does not wait timeout_ms again
  if p.failed and now - p.failed < self.retry_ms and now - p.at < self.grace_ms then return true end
  -- a look under way: the last one's answer (within the grace, or the directory's refusal
  -- that ended it), whatever grace_s and recheck_s are; a caller that cannot wait (not in
  -- a task): the last answer, within the grace
  if p.busy and not p.down then return true end
  if p.busy or not coroutine.isyieldable() then
    if now - p.at < self.grace_ms then return true end
    return nil, 502, "provider_unavailable", "the directory has not confirmed this person lately; try again",
      "ldap: not confirmed"
  end
  local ok, person, err, code
  do
    -- not busy again however the look ends, the request's task cancelled included
    local _ <close> = setmetatable({}, { __close = function() p.busy = false end })
    p.busy = true
    ok, person, err, code = pcall(ldap.lookup, self.signin.ldap, self.signin.roles, who.user)
  end
  if not ok then person, err, code = nil, person, "EUNAVAILABLE" end
  if person then return self:_answered(db, p, who, person) end
  if code == "EAUTH" then return self:_gone(db, who.user, "no-entry", err) end
  return self:_unconfirmed(p, err)
end

-- the look could not confirm the person (err: why): the last answer stands within the
-- grace, then they are refused until the directory answers again
function Directory:_unconfirmed(p, err)
  p.failed = uv.now()
  if p.failed - p.at < self.grace_ms then return true end
  p.down = true
  return nil, 502, "provider_unavailable", "the directory cannot be reached to confirm this person; try again",
    "ldap: " .. tostring(err)
end

-- The directory found the person's entry (person: orket.auth.ldap's lookup). Groups it
-- lists give their roles as at a sign-in. None listed is the directory's word that they are
-- in none when the look could tell (person.groups_known): no group_base_dn, or the look's
-- bind could read some group's members (its group search found any group with a member or
-- memberUid it may see). Then a person taken out of every group is gone (no-role), unless
-- default_role gives them one. Only a bind that can read no group's members at all is
-- blind (ACLs often let only the person see them, as at a sign-in): it cannot tell a
-- person in no group from members it may not read, so their roles stay those of their
-- last sign-in. (A directory whose groups are all empty looks blind too: nothing is lost.)
function Directory:_answered(db, p, who, person)
  local blind = self.signin.ldap.group_base_dn ~= nil and #person.groups == 0 and not person.groups_known
  if blind then
    person.keep_roles = true
    if not p.blind and self.log then
      self.log { event = "directory", user = who.user, message = "the directory's look lists no group of this "
        .. "person, and its bind can read no group's members: their roles stay those of their last sign-in (let "
        .. "bind_dn read member and memberUid under group_base_dn)" }
    end
    p.blind = true
  elseif not person.role then
    return self:_gone(db, who.user, "no-role", "none of this person's groups has a role on this server")
  end
  -- audited with the route "directory", as the look's disable is: the person did not sign in
  local subject, legacy = identity.ldap_subject(person)
  person.legacy = legacy
  local id, ferr, fcode, fkind = identity.federated(db, person, "ldap", subject, self.signin.project_roles,
    "directory")
  if id then
    p.at, p.down, p.failed = uv.now(), false, nil
    -- the last admin kept though the directory's groups give less (orket.serve.identity):
    -- no sign-in records it while they keep using a session or key, so the log says it,
    -- once per person until they are no longer kept
    if id.kept and not p.kept and self.log then self.log { event = "directory", user = who.user, message = id.kept } end
    p.kept = id.kept ~= nil
    return true, not blind
  end
  -- another entry holds the name now, or the person was disabled meanwhile
  if fcode == "EAUTH" then return self:_gone(db, who.user, "refused", ferr, fkind == "subject") end
  -- bound to an entryUUID the answer did not give: not confirmed, as a directory down
  if fkind == "unconfirmed" then return self:_unconfirmed(p, ferr) end
  return nil, 503, "unavailable", "the store cannot be reached just now; try again", "store: " .. tostring(ferr)
end

return M
