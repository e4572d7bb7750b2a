-- orket.serve.identity: who a person is, whichever way they sign in. A local account checks
-- its Argon2id hash (orket.serve.accounts); a person of an OpenID Connect provider or an
-- LDAP directory is kept in the same users table, under the name the provider gives, with
-- no password: the hash column holds "!oidc:" or "!ldap:" and a BLAKE2b of who the provider
-- says they are (the issuer and subject; the directory entry's entryUUID, else its DN: see
-- ldap_subject). No password verifies it; it
-- says where the person comes from, and binds the name to that one subject: a name is not
-- unique at every provider (a person may choose their preferred_username), so another
-- subject giving the same name is refused, never taken for them; and a provider's subject
-- an admin disabled stays out whatever name it brings next. Their role, and their
-- roles in the projects sign_in.project_roles names, follow their groups at each sign-in
-- (and, for the directory's people, at each look orket.serve.directory takes between).
-- So `orket users disable NAME` ends a federated person's sessions at once too, and the
-- journal names every person "user:NAME" alike.
local accounts = require "orket.serve.accounts"
local audit_chain = require "orket.audit.chain"
local crypto = require "orket.c.crypto"
local keys = require "orket.store.keys"
local ldap = require "orket.auth.ldap"
local projects = require "orket.store.projects"
local sessions = require "orket.store.sessions"
local signin_settings = require "orket.settings.signin"
local team = require "orket.serve.team"
local users = require "orket.store.users"

local M = {}

--- mark(source, subject) -> what the hash column holds for a person of source ("oidc",
--- "ldap") whom the provider calls subject. A directory's person bound to an entryUUID
--- (ldap_subject) has "!ldap:u" before the hex digits, told apart from one bound to a DN:
--- an answer that brings no entryUUID for them cannot confirm them (federated)
function M.mark(source, subject)
  local h = crypto.hash(source .. "\0" .. subject, 16)
  if source == "ldap" and subject:find("^entryUUID:") then return "!ldap:u" .. h end
  return "!" .. source .. ":" .. h
end

-- The hash column of a directory's person whose name a server admin handed to whichever
-- entry has it now (hand_over): no mark, so the next sign-in or look of that name binds it
M.HANDED = "!ldap:new-subject"

--- ldap_subject(who) -> subject, legacy | subject: what a directory's person (who: orket.auth.
--- ldap's answer) is bound to. Their entry's entryUUID (RFC 4530) when the directory gives
--- one: it stays when the entry moves (another OU, a renamed RDN, a DN's case) and is never
--- another entry's, where a DN is given again to whoever gets the old one's place. Else its
--- DN, as the text the directory gives. legacy: the DN, beside an entryUUID, for a person
--- bound by their DN before (migrated at their next sign-in or look, while it still matches).
--- ("entryUUID:" can begin no DN: an attribute's name holds no colon.)
function M.ldap_subject(who)
  if who.uuid then return "entryUUID:" .. who.uuid, who.dn end
  return who.dn
end

-- What the log says of a sign-in or look refused because the name is another entry's: the
-- way out that works (a plain enable would be undone by the next look)
M.ANOTHER_ENTRY = "if this entry is the person (an entry moved where the directory gives no entryUUID) or the "
  .. "name's new holder, a server admin hands the name to it: orket users enable NAME --new-subject (which revokes "
  .. "the old subject's keys and sessions; docs/teams.md#offboarding)"

local function source_of(row) return accounts.source_of(row.hash) end

-- memberships(person, project_roles) -> project -> role | false: what the person's groups
-- make them in each project the map names (false: none), and in the default project,
-- unless the map names it, their account's role (as a local account's is: docs/teams.md)
local function memberships(person, role, project_roles)
  local want = signin_settings.projects_of(person.groups or {}, project_roles)
  if want.default == nil then want.default = team.project_role(role) end
  return want
end

-- why row, the last enabled server admin, stays one though their groups give role | nil: a
-- sign-in that demoted them would leave nobody but the server's machine to manage people
-- (the rule of the people API's own refusal: orket.serve.accounts). The remedy names what
-- works for a provider's or directory's person too (whose role `orket users role` refuses)
local function last_admin_kept(db, row, role)
  if row and role ~= "admin" and accounts.is_last_admin(db, row) then
    return string.format("%s is the last enabled server admin: kept an admin though their groups give %s; to take "
      .. "it away, make another person an admin first (by their groups, or a local account: orket users add NAME "
      .. "--role admin), or disable them on the server's machine (orket users disable %s)", row.name, role, row.name)
  end
end

local function settled(db, name, want)
  for project, role in pairs(want) do
    if (projects.role_of(db, project, name) or false) ~= role then return false end
  end
  return true
end

--- audited(db, source, action, route, subject): a change the provider or the directory
--- (source "oidc", "ldap") made to a person, recorded as an admin's change through the API
--- is (orket.serve.writes' audited): an api_write event, so that GET /v1/audit lists it to
--- the server's admins, and an entry of the audit's chain, in the caller's transaction.
--- route: "sign_in" for a sign-in's (or a bearer token's), "directory" for a look's.
function M.audited(db, source, action, route, subject)
  db:event { kind = "api_write", actor = source, data = { action = action, route = route, subject = subject } }
  audit_chain.record(db, { actor = source, action = action, route = route, subject = subject })
end

-- the person's memberships made what their groups say, each change journaled and audited
-- as an admin's grant is (whom, where, what role), its actor the way they signed in and its
-- route what found the groups (in the caller's transaction); projects
-- the map does not name keep what an admin granted
local function follow_groups(db, name, want, source, route)
  for project, role in pairs(want) do
    local was = projects.role_of(db, project, name)
    if role and was ~= role then
      projects.set_role(db, project, name, role)
      db:event { kind = "member_grant", actor = source, data = { project = project, name = name, role = role, was = was } }
      M.audited(db, source, "member_grant", route, { person = name, project = project, role = role })
    elseif not role and was then
      projects.remove(db, project, name)
      db:event { kind = "member_revoke", actor = source, data = { project = project, name = name, was = was } }
      M.audited(db, source, "member_revoke", route, { person = name, project = project })
    end
  end
end

--- federated(db, person, source, subject, project_roles[, route]) -> identity | nil, msg,
--- code: the person {name, role, groups} a provider (source "oidc" or "ldap") vouched for as
--- subject, added or given their groups' role now, and their memberships of the projects
--- sign_in.project_roles names (person.keep_roles: only checked, roles left as they are).
--- route: what vouched, as the audit's entries name it: "sign_in" (the default: a sign-in,
--- a bearer token) or "directory" (orket.serve.directory's look, which is no sign-in).
--- The last enabled server admin stays one whatever their groups give: identity.kept says
--- why, identity.groups_role what the groups gave. Refused: a name that is not a valid person's name, a name
--- kept for another way of signing in or another subject, a disabled person (a 4th result
--- says which of the last two: "subject", "disabled"). A directory's person bound to an
--- entryUUID whom the answer gives none (subject a DN: the search's bind may no longer read
--- it) is not confirmed: nil, msg, "EUNAVAILABLE", "unconfirmed", the directory's failure,
--- never taken for another subject. person.legacy (a directory's person,
--- ldap_subject's): the subject they may have been bound to before; a row bound to it, or
--- handed over (M.HANDED), is bound to subject now.
function M.federated(db, person, source, subject, project_roles, route)
  route = route or "sign_in"
  local name, role = person.name, person.role
  local ok, nerr = accounts.check_name(name)
  if not ok then return nil, "the provider's name for this person is not usable here: " .. nerr, "EAUTH" end
  local mark = M.mark(source, subject)
  local legacy = source == "ldap" and person.legacy and M.mark(source, person.legacy) or nil
  -- whether row is this subject's: bound to it, or to be bound to it now (its old binding
  -- still matching, or handed over)
  local function ours(row)
    return crypto.equal(row.hash, mark) or (legacy ~= nil and crypto.equal(row.hash, legacy))
      or (source == "ldap" and row.hash == M.HANDED)
  end
  local function refusal(row)
    if source_of(row) ~= source then
      return "a person named '" .. name .. "' signs in another way (" .. source_of(row) .. ")"
    end
    if source == "ldap" and row.hash:find("^!ldap:u") and not subject:find("^entryUUID:") then
      return "the directory gave no entryUUID for this person's entry, and they are bound to one (can the search's "
        .. "bind still read entryUUID?)", "unconfirmed"
    end
    if not ours(row) then return "the name '" .. name .. "' belongs to another " .. source .. " subject", "subject" end
    if row.disabled_at then return "this person was disabled", "disabled" end
  end
  -- nil, why, code, kind: row refused
  local function refused(row)
    local why, kind = refusal(row)
    return nil, why, kind == "unconfirmed" and "EUNAVAILABLE" or "EAUTH", kind
  end
  -- the binding made this subject's, in the caller's transaction (the row read there)
  local function bind(row)
    if row and not crypto.equal(row.hash, mark) then users.set_hash(db, name, mark) end
  end
  -- the common case read without a write: known, bound to this subject, roles unchanged
  local seen = users.get(db, name)
  if source == "oidc" and not (seen and crypto.equal(seen.hash, mark)) then
    -- a provider's subject an admin disabled stays out under any other name it brings (a
    -- changed preferred_username): only an admin disables a provider's people. Not for the
    -- directory, whose own looks disable a login that is gone, which a renamed login is:
    -- the entry's new login must still sign in.
    for _, other in ipairs(users.with_hash(db, mark)) do
      if other.disabled_at then return nil, "this person was disabled", "EAUTH" end
    end
  end
  if seen and refusal(seen) then return refused(seen) end
  local rebind = seen and not crypto.equal(seen.hash, mark)
  if person.keep_roles then
    if not seen then return nil, "this person is not known here", "EAUTH" end
    if rebind then
      local done, why, code, kind = db:tx(function()
        local row = users.get(db, name)
        if not row then return nil, "this person is not known here", "EAUTH" end
        if refusal(row) then return refused(row) end
        bind(row)
        return true
      end)
      if not done then return nil, why, code, kind end
    end
    return accounts.identity(name, seen.role, mark)
  end
  -- the identity, said kept when their groups would have demoted the last admin
  local function id_of(r, kept)
    local id = accounts.identity(name, r, mark)
    id.kept, id.groups_role = kept, kept and role or nil
    return id
  end
  -- what row (nil: not added yet) is to be: kept (why the last admin stays one), their
  -- role and their memberships
  local function due(row)
    local kept = last_admin_kept(db, row, role)
    local now_role = kept and "admin" or role
    return kept, now_role, memberships(person, now_role, project_roles)
  end
  local kept, now_role, want = due(seen)
  if seen and not rebind and seen.role == now_role and settled(db, name, want) then return id_of(now_role, kept) end
  return db:tx(function()
    local row = users.get(db, name)
    if row and refusal(row) then return refused(row) end
    bind(row)
    -- asked again in the transaction: another admin may have come or gone since
    kept, now_role, want = due(row)
    -- audited with whom they were about, as an admin's changes are (docs/audit.md)
    if not row then
      users.insert(db, name, role, mark)
      db:event { kind = "user_add", actor = source, data = { name = name, role = role } }
      M.audited(db, source, "user_add", route, { person = name, role = role })
    elseif users.set_role(db, name, now_role) > 0 then
      db:event { kind = "user_role", actor = source, data = { name = name, role = now_role, was = row.role } }
      M.audited(db, source, "user_role", route, { person = name, role = now_role })
    end
    follow_groups(db, name, want, source, route)
    return id_of(now_role, kept)
  end)
end

--- gone(db, name, o) -> {changed, none_left} | nil, msg: the provider or the directory
--- (o.source "oidc", "ldap") says the person name is no longer theirs to give a role (o.reason:
--- no-entry, no-role, refused): disabled as `orket users disable` does (sessions ended, keys
--- refused, the subject's other names too), journaled and audited with the actor o.source
--- and the route o.route. o.keep_admin: the last enabled server admin is not disabled
--- (changed false, kept: why, in words); else they are (a leaver is never kept), the
--- audit entry says why (lastadmin=yes) and none_left what to do. o.say_why: the entry
--- names the reason however it went (why=).
function M.gone(db, name, o)
  local res
  local ok, err = db:tx(function()
    res = { changed = false } -- a transaction run again says only what its last run found
    local r, rerr, rcode = accounts.set_disabled(db, name, true, o.source, o.keep_admin)
    if not r and rcode == "ELASTADMIN" then
      res.kept = rerr
      return true
    end
    if not r then return nil, rerr end
    if r.changed then
      res.changed = true
      local subject = accounts.subject(r)
      if o.say_why then subject.why = o.reason end
      if r.no_admin_left then
        subject.why, subject.lastadmin = o.reason, "yes"
        res.none_left = accounts.none_left(db, name, "the server's machine")
      end
      M.audited(db, o.source, "user_disable", o.route, subject)
    end
    -- the subject's other names disabled with it (changed or not: name may have been
    -- disabled already), each its own entry
    for _, also in ipairs(accounts.audit_also(r)) do
      if o.say_why then also.why = o.reason end
      res.changed = true
      M.audited(db, o.source, "user_disable", o.route, also)
    end
    return true
  end)
  if not ok then return nil, err end
  return res
end

--- unvouched(db, source, subject, name) -> {name, changed, kept} | nil (nobody here is that
--- subject, or all its names are disabled already) | nil, msg: a provider's valid word
--- (source "oidc") that its subject, here under name or another name, has no role here any
--- more, its groups listed and none mapped (docs/teams.md, Offboarding): the person is
--- disabled (gone's no-role, route sign_in), never the last enabled server admin (kept).
--- Someone not kept here yet is only refused, by the caller.
function M.unvouched(db, source, subject, name)
  local mark = M.mark(source, subject)
  local row = name and users.get(db, name)
  -- (one disabled already is left: no write transaction for each of a leaver's tokens)
  local who = row and crypto.equal(row.hash, mark) and not row.disabled_at and row.name or nil
  if not who then
    -- a name this subject no longer brings (a changed preferred_username): its enabled one
    for _, other in ipairs(users.with_hash(db, mark)) do
      if not other.disabled_at then
        who = other.name
        break
      end
    end
  end
  if not who then return nil end
  local res, err = M.gone(db, who, { source = source, route = "sign_in", reason = "no-role", keep_admin = true,
    say_why = true })
  if not res then return nil, err end
  res.name = who
  return res
end

--- unhosted(project_roles, hosted) -> array of messages, by project name: each project
--- sign_in.project_roles names that a server does not host (hosted: the set of its
--- project names, those whose store did not open included). Its group map would grant
--- nothing: a mistake, on which `orket serve` refuses to start and `orket validate`
--- reports, in the same words.
function M.unhosted(project_roles, hosted)
  local names, out = {}, {}
  for name in pairs(project_roles or {}) do
    if not hosted[name] then names[#names + 1] = name end
  end
  table.sort(names)
  for i, name in ipairs(names) do
    out[i] = "orket.lua: sign_in.project_roles." .. name .. ": this server hosts no project named '" .. name
      .. "' (serve.projects, orket projects add)"
  end
  return out
end

--- unroled(db, name, who) -> what was done, in words for the log | nil: the directory's answer
--- to a sign-in (who: orket.auth.ldap's, bound as the person themselves) lists their groups
--- and none gives a role. The person kept here as that entry is disabled there and then, as
--- the directory's look disables its leavers (gone's no-role; actor ldap, route directory,
--- why=no-role), the last enabled server admin too (a leaver is never kept): their sessions
--- end and their keys stop, not only this sign-in. An answer whose bind could read no
--- group's members (who.groups_known false) tells nothing: refused only. So is a name kept
--- for another entry (a recycled one's newcomer) or nobody yet.
function M.unroled(db, name, who)
  if not who.groups_known then
    return "not disabled: the directory showed this bind no group's members, so no group listed tells nothing"
  end
  local row = users.get(db, name)
  if not row or row.disabled_at or source_of(row) ~= "ldap" then return nil end
  local subject, legacy = M.ldap_subject(who)
  local bound = crypto.equal(row.hash, M.mark("ldap", subject))
    or (legacy ~= nil and crypto.equal(row.hash, M.mark("ldap", legacy)))
  if not bound then return nil end
  local res, err = M.gone(db, name, { source = "ldap", route = "directory", reason = "no-role", say_why = true })
  if not res then return "not disabled: store: " .. tostring(err) end
  local said = name .. " was disabled here"
  if res.none_left then said = said .. ", the last enabled server admin (a leaver is never kept); " .. res.none_left end
  return said
end

--- hand_over(db, name, o) -> {name, role, keys = {{id, name, role}...}, sessions, projects =
--- {{project, role}...}} | nil, msg, CODE (ENOENT; EUSAGE: not a directory's person): the
--- name of a directory's person given to whichever entry the directory gives it now (the
--- next sign-in or look of the name binds it: M.HANDED), for a name that is now another
--- entry's (a DN given again to a newcomer; or, where the directory gives no entryUUID, the
--- person's own entry moved). The old subject's keys are revoked and its sessions ended,
--- its project memberships dropped (the newcomer's groups give theirs at the sign-in), and
--- the person enabled, in one transaction: journaled (key_revoke, member_revoke,
--- user_enable) with the actor o.actor and audited with o.audit_actor and o.route
--- (user_enable's subject says newsubject=yes and how many keys).
function M.hand_over(db, name, o)
  return db:tx(function()
    local row = users.get(db, name)
    if not row then return nil, users.unknown(db, name), "ENOENT" end
    if source_of(row) ~= "ldap" then
      return nil, string.format("%s signs in %s: --new-subject hands a directory's (LDAP) person's name to the "
        .. "entry that has it now", name, source_of(row) == "local" and "with a password here"
        or ("through " .. source_of(row))), "EUSAGE"
    end
    local res = { name = name, role = row.role, keys = {}, projects = {} }
    local function audit(action, subject)
      audit_chain.record(db, { actor = o.audit_actor, action = action, route = o.route, subject = subject })
    end
    for _, k in ipairs(keys.live(db, name)) do
      keys.revoke(db, k.id)
      assert(sessions.delete_for_key(db, k.id))
      db:event { kind = "key_revoke", actor = o.actor, data = { id = k.id, name = k.name } }
      audit("key_revoke", { key = k.name, keyid = k.id, role = k.role, person = name })
      res.keys[#res.keys + 1] = { id = k.id, name = k.name, role = k.role }
    end
    res.sessions = users.sessions_end(db, name)
    for _, m in ipairs(projects.of_user(db, name)) do
      projects.remove(db, m.project, name)
      db:event { kind = "member_revoke", actor = o.actor, data = { project = m.project, name = name, was = m.role } }
      audit("member_revoke", { person = name, project = m.project })
      res.projects[#res.projects + 1] = { project = m.project, role = m.role }
    end
    users.set_hash(db, name, M.HANDED)
    -- the newcomer starts from the least role, their groups giving theirs at their first
    -- sign-in: kept, the leaver's admin would stay theirs (the last enabled server admin is
    -- never lowered by a sign-in)
    if users.set_role(db, name, "viewer") > 0 then
      db:event { kind = "user_role", actor = o.actor, data = { name = name, role = "viewer", was = row.role } }
      res.role = "viewer"
    end
    if users.set_disabled(db, name, false) > 0 then
      db:event { kind = "user_enable", actor = o.actor, data = { name = name } }
    end
    audit("user_enable", { person = name, role = res.role, was = row.role, newsubject = "yes", keys = #res.keys })
    return res
  end)
end

--- verify(db, signin, name, password) -> identity | nil, why (for the log only)[, code]: a
--- name (in any case) and password, checked by the local account of that name, else by the LDAP
--- directory when sign_in.ldap is set (signin: orket.settings.signin's section); code
--- EUNAVAILABLE when the directory could not be asked (not the person's failure)
function M.verify(db, signin, name, password)
  if type(name) ~= "string" or type(password) ~= "string" then return nil, "malformed" end
  -- a person's name here is lower case; a directory matches names without case (uid,
  -- sAMAccountName), as "Dave" typed for uid=Dave: taken in lower case, as OIDC's are
  name = name:lower()
  local usable, nerr = accounts.check_name(name)
  local row = usable and users.get(db, name) or nil
  if not (signin and signin.ldap) or (row and source_of(row) ~= "ldap") then
    return accounts.verify(db, name, password)
  end
  -- a name that is no person's name here is refused before the directory is asked: the
  -- directory's match drops spaces at the ends, folds width and Unicode case (" alice",
  -- full-width, "ALİCE" are its alice), so each spelling would check her password while
  -- the failed sign-ins are counted by the name typed (docs/serve.md, Limits); refused
  -- after the same Argon2id check as any refusal (the one federated would give it anyway)
  if not usable then
    accounts.decoy_check(password)
    return nil, "ldap: not a person's name here, the directory not asked: " .. nerr
  end
  local who, err, code, unroled = ldap.verify(signin.ldap, signin.roles, name, password)
  if not who and code == "EUNAVAILABLE" then return nil, "ldap: " .. tostring(err), code end
  local id, ferr, note
  if who then
    local subject, legacy = M.ldap_subject(who)
    who.legacy = legacy
    local fcode, kind
    id, ferr, fcode, kind = M.federated(db, who, "ldap", subject, signin.project_roles)
    -- not confirmed (no entryUUID given for one bound to it): the directory's failure
    if fcode == "EUNAVAILABLE" then return nil, "ldap: " .. tostring(ferr), fcode end
    if kind == "subject" then note = M.ANOTHER_ENTRY:gsub("NAME", function() return name end) end
  elseif unroled then
    note = M.unroled(db, name, unroled)
  end
  if not id then
    -- a local account's refusal costs an Argon2id check: so does the directory's, or the
    -- names that are not local accounts would stand out by their speed (the directory's
    -- own round trip still adds its time: docs/serve.md)
    accounts.decoy_check(password)
    return nil, "ldap: " .. tostring(err or ferr) .. (note and ("; " .. note) or "")
  end
  return id
end

return M
