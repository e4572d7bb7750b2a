-- orket.serve.accounts: local accounts, for a server without an identity provider: a
-- person with a name, a role (viewer, operator, admin) and a password, of which only its
-- Argon2id hash is stored (orket.c.crypto's password_hash; rows: orket.store.users). A
-- person signs in to the web board with name and password (orket.serve.session) and acts
-- as "user:NAME", which the journal and the audit record. A disabled person's sessions
-- end at once, and they cannot sign in until enabled again.
local audit_chain = require "orket.audit.chain"
local crypto = require "orket.c.crypto"
local keys = require "orket.serve.keys"
local users = require "orket.store.users"
local buckets = require "orket.store.rate_buckets"
local projects = require "orket.store.projects"
local team = require "orket.serve.team"
local team_settings = require "orket.settings.team"
local task = require "orket.task"
local inert = require "orket.inert"

local M = {}

M.PREFIX = "user:" -- an actor that is a person, as the journal and the audit name them
-- the store's buckets (orket.store.rate_buckets) of failed password sign-ins per name
-- (orket.serve.session), which an admin's unlock and a new password clear
M.FAIL_SCOPE = "account_fail"
M.MAX_PASSWORD = 1024
M.MIN_PASSWORD = 8

--- check_name(name) -> true | nil, msg
function M.check_name(name)
  if type(name) ~= "string" or not name:match("^[a-z][a-z0-9._-]*$") or #name > 64 then
    return nil, "a person's name is 1 to 64 ASCII characters: lowercase letters, digits, '.', '_' or '-', starting "
      .. "with a letter"
  end
  return true
end

-- a new person's name and role -> true | nil, msg
local function check_person(name, role)
  local ok, nerr = M.check_name(name)
  if not ok then return nil, nerr end
  if not keys.ROLES[role] then return nil, "unknown role '" .. tostring(role) .. "': use viewer, operator or admin" end
  return true
end

--- check_password(password) -> true | nil, msg: MIN_PASSWORD to MAX_PASSWORD characters
--- (code points, as the API's schema counts them: inert.chars), so at most 4 x
--- MAX_PASSWORD bytes reach Argon2id
function M.check_password(password)
  local n = type(password) == "string" and inert.chars(password)
  if not n or n < M.MIN_PASSWORD or n > M.MAX_PASSWORD then
    return nil, string.format("a password must be %d to %d characters", M.MIN_PASSWORD, M.MAX_PASSWORD)
  end
  return true
end
local check_password = M.check_password

--- check(name, role, password) -> true | nil, msg: a new person's fields
function M.check(name, role, password)
  local ok, perr = check_person(name, role)
  if not ok then return nil, perr end
  return check_password(password)
end

--- hash(name, role, password) -> hash | nil, msg, CODE (EUSAGE, ENOMEM): a new person's
--- fields checked and the password's Argon2id hash made, for add. Argon2id takes a good
--- fraction of a second: it runs on the loop's thread pool while the calling task waits
--- (orket.c.crypto), so call it in a task and before any transaction (one cannot wait).
function M.hash(name, role, password)
  local ok, cerr = M.check(name, role, password)
  if not ok then return nil, cerr, "EUSAGE" end
  return crypto.password_hash(password)
end

--- add(db, name, role, hash, actor[, project]) -> {name, role} | nil, msg, CODE
--- (EUSAGE, EEXIST): the person, a member of project (default: "default") with role, and
--- their password's hash (from hash)
function M.add(db, name, role, hash, actor, project)
  local ok, cerr = check_person(name, role)
  if not ok then return nil, cerr, "EUSAGE" end
  -- a password given in its place would be stored as it is
  assert(type(hash) == "string" and hash:match("^%$argon2id%$"), "add: hash must be an Argon2id hash (accounts.hash)")
  return db:tx(function()
    local row = users.get(db, name)
    if row then return nil, M.taken(row), "EEXIST" end
    users.insert(db, name, role, hash)
    -- a member of the server's own project with that role (docs/teams.md); an admin is
    -- also the server's
    projects.set_role(db, project or team_settings.DEFAULT_PROJECT, name, team.project_role(role))
    db:event { kind = "user_add", actor = actor or "cli", data = { name = name, role = role, project = project } }
    return { name = name, role = role, project = project or "default" }
  end)
end

--- taken(row) -> the refusal of a new person under the name of row, a person added
--- already. No account is ever removed (the audit names them for good): a disabled one
--- comes back by enable, not by a new account under their name
function M.taken(row)
  local msg = "a person named '" .. row.name .. "' exists already"
  if not row.disabled_at then return msg end
  return string.format("%s, disabled: to let them sign in again, 'orket users enable %s' (POST /v1/users/%s/enable)",
    msg, row.name, row.name)
end

--- is_last_admin(db, row) -> true when the person row is the last enabled server admin.
--- People only: a server key of role admin is not counted (docs/teams.md, "Offboarding":
--- a key is nobody's sign-in, and counting it would let a forgotten key decide)
function M.is_last_admin(db, row)
  return row.role == "admin" and not row.disabled_at and users.other_admins(db, row.name) == 0
end

--- another_admin(db, name) -> the ways to make a person other than name a server admin, in
--- words, without a lead-in: each message says its own (the refusals here, none_left). `orket
--- users role` sets a local account's role only (a person of a provider or directory has
--- the role their groups give, and is refused it): named when some local account could
--- take it. The groups' way is said for where people sign in so, as the store cannot tell
--- whether the server's sign_in is set. A new local account always works, on the server's
--- machine or over the API, where the caller cannot run a command
function M.another_admin(db, name)
  local ways = {}
  if users.promotable(db, name) then
    ways[#ways + 1] = "a local account with 'orket users role NAME admin' (PUT /v1/users/NAME/role)"
  end
  ways[#ways + 1] = "where people sign in through a provider or directory, one of theirs by a group that "
    .. "sign_in.roles maps to admin (at their next sign-in, or the directory's next look)"
  ways[#ways + 1] = "or a new local account with 'orket users add NAME --role admin' (POST /v1/users with role admin)"
  return table.concat(ways, "; ")
end

--- none_left(db, name, machine) -> what to say once no enabled person is a server admin
--- (name was the last): who manages people until one is made, and how to make one.
--- machine: the server's machine, in the sayer's words. A server key of role admin still
--- manages people; it is not counted as an admin (is_last_admin)
function M.none_left(db, name, machine)
  return string.format("no enabled server admin is left: until one is made, people and keys are managed on %s "
    .. "(or with a server key of role admin, if one is kept); to make one: %s", machine, M.another_admin(db, name))
end

-- nil, msg, "ELASTADMIN" when row is the last enabled server admin, whom doing would
-- take away: no one could manage people or keys then but the local operator
local function last_admin(db, row, doing)
  if M.is_last_admin(db, row) then
    return nil, string.format("%s is the last enabled server admin; before %s, make another person a server "
      .. "admin: %s", row.name, doing, M.another_admin(db, row.name)), "ELASTADMIN"
  end
end

--- set_disabled(db, name, disabled, actor[, keep_admin]) -> {name, role, changed,
--- no_admin_left} | nil, msg, CODE (ENOENT, ELASTADMIN). Disabling an enabled person ends
--- every session of theirs in the same transaction. keep_admin (the people API): the last enabled
--- server admin is not disabled, which would leave the API with nobody to manage people;
--- on the server's machine it is (a leaver is never kept), and no_admin_left says so. A
--- person enabled or disabled already (none of their other names changed either) changes
--- nothing, ends no session: the result is marked by orket.audit.chain's unchanged,
--- journaled and audited nowhere. The result's audit_also: the audit subjects of the
--- provider's person's other names disabled with name (M.audit_also), for the caller's
--- audit to record beside name's own.
function M.set_disabled(db, name, disabled, actor, keep_admin)
  return db:tx(function()
    local row = users.get(db, name)
    if not row then return nil, users.unknown(db, name), "ENOENT" end
    local _, last, code = last_admin(db, row, "disabling " .. name)
    if disabled and last and keep_admin then return nil, last, code end
    local changed = users.set_disabled(db, name, disabled) > 0
    -- only a disable that disabled: one of someone disabled already ends nothing (a session
    -- of a disabled person is refused, and ended, at its next use: orket.serve.session)
    if disabled and changed then users.sessions_end(db, name) end
    if changed then
      db:event { kind = disabled and "user_disable" or "user_enable", actor = actor or "cli", data = { name = name } }
    end
    local touched = changed -- this name or another of theirs
    -- a provider's subject is one person: its other names here (a row is added when the
    -- provider's name for them changes: orket.serve.identity's federated) are disabled
    -- with it, each audited as a disable of its own (with= naming the name asked)
    local others = false -- an admin among them
    local also = {}
    if disabled and row.hash:match("^!oidc:") then
      for _, other in ipairs(users.with_hash(db, row.hash)) do
        if other.name ~= name and not other.disabled_at then
          others = others or other.role == "admin"
          touched = true
          users.set_disabled(db, other.name, true)
          users.sessions_end(db, other.name)
          db:event { kind = "user_disable", actor = actor or "cli", data = { name = other.name, with = name } }
          also[#also + 1] = { person = other.name, role = other.role, with = name }
        end
      end
    end
    -- the last admin may be one of those other names: the same rule, the whole transaction
    -- taken back for the people API
    local none_left = disabled and (last ~= nil or (others and users.other_admins(db, "") == 0))
    if none_left and keep_admin then
      return nil, string.format("disabling %s would leave no enabled server admin (another name of theirs is "
        .. "one); make another person a server admin first: %s", name, M.another_admin(db, name)), "ELASTADMIN"
    end
    local res = { name = name, role = row.role, changed = changed, no_admin_left = none_left, audit_also = also }
    -- enabled or disabled already: no change, journaled and audited nowhere
    return touched and res or audit_chain.unchanged(res)
  end)
end

-- nil, msg, "EUSAGE" when row is a person of a provider or directory, whose password and
-- role are theirs (set again at each sign-in), not the server's
local function local_only(row, what)
  local source = row.hash:match("^!(%l+):")
  if source then
    return nil, string.format("%s signs in through %s: their %s is the provider's, not this server's", row.name,
      source == "ldap" and "the directory (LDAP)" or "the provider (" .. source .. ")", what), "EUSAGE"
  end
end

--- set_password(db, name, hash, actor[, keep]) -> {name} | nil, msg, CODE (ENOENT,
--- EUSAGE): the person's new password, as its Argon2id hash (from hash_password); every
--- session they signed in to with a password ends in the same transaction, but keep (the
--- hash of the caller's own session, when the person changes their own)
function M.set_password(db, name, hash, actor, keep)
  assert(type(hash) == "string" and hash:match("^%$argon2id%$"), "set_password: hash must be an Argon2id hash")
  return db:tx(function()
    local row = users.get(db, name)
    if not row then return nil, users.unknown(db, name), "ENOENT" end
    local no, msg, code = local_only(row, "password")
    if msg then return no, msg, code end
    users.set_hash(db, name, hash)
    users.password_sessions_end(db, name, keep)
    -- the failed sign-ins counted against the name are the old password's guesses: the
    -- person signs in with the new one at once (an admin's way out of a lockout)
    assert(buckets.clear(db, M.FAIL_SCOPE, name))
    db:event { kind = "user_password", actor = actor or "cli", data = { name = name } }
    return { name = name }
  end)
end

--- unlock(db, name, actor) -> {name, cleared} | nil, msg, CODE (EUSAGE): forgets the failed
--- password sign-ins counted against name (orket.serve.session: held off while someone
--- keeps guessing), so the person signs in at once; cleared: whether any were counted. Any
--- person's name, with an account here or not yet (a directory's person before their first
--- sign-in), as the count is kept for any name tried; journaled (user_unlock) when cleared.
--- Nothing counted is no change: the result is marked by orket.audit.chain's unchanged, so
--- the caller audits nothing either (an entry would say sign-ins were forgotten).
function M.unlock(db, name, actor)
  local ok, nerr = M.check_name(name)
  if not ok then return nil, nerr, "EUSAGE" end
  return db:tx(function()
    local n = assert(buckets.clear(db, M.FAIL_SCOPE, name))
    if n == 0 then return audit_chain.unchanged { name = name, cleared = false } end
    db:event { kind = "user_unlock", actor = actor or "cli", data = { name = name } }
    return { name = name, cleared = true }
  end)
end

--- hash_password(password) -> hash | nil, msg, CODE: a new password checked and hashed,
--- as hash does for a new person (a task, before any transaction)
function M.hash_password(password)
  local ok, perr = check_password(password)
  if not ok then return nil, perr, "EUSAGE" end
  return crypto.password_hash(password)
end

-- the person's role in the default project made the one their account's role gives, as add
-- made it (in the caller's transaction), journaled as a grant there -> {role, was} | nil
-- (no member of it: left so, a role change grants no project)
local function default_follows(db, name, role, actor)
  local project = team_settings.DEFAULT_PROJECT
  local was = projects.role_of(db, project, name)
  if not was then return nil end
  local want = team.project_role(role)
  if was ~= want then
    projects.set_role(db, project, name, want)
    db:event { kind = "member_grant", actor = actor or "cli", data = { project = project, name = name, role = want,
      was = was } }
  end
  return { role = want, was = was }
end

--- set_role(db, name, role, actor) -> {name, role, was, changed, default_project} | nil,
--- msg, CODE (ENOENT, EUSAGE, ELASTADMIN): the person's account role; admin makes them a
--- server admin (an admin of every project, who manages people and keys), another role
--- unmakes one. Their role in the default project becomes the one add gives (operator:
--- developer; default_project: {role, was}, nil when they are no member of it, who stays
--- none), so what they may do there follows at once; their roles in other projects stay as
--- granted. The last enabled server admin keeps the role. The role they hold already
--- changes nothing, their default project's role included (default_project nil): the
--- result is marked by orket.audit.chain's unchanged, journaled and audited nowhere.
function M.set_role(db, name, role, actor)
  if not keys.ROLES[role] then return nil, "unknown role '" .. tostring(role) .. "': use viewer, operator or admin", "EUSAGE" end
  return db:tx(function()
    local row = users.get(db, name)
    if not row then return nil, users.unknown(db, name), "ENOENT" end
    local no, msg, code = local_only(row, "role")
    if msg then return no, msg, code end
    if role ~= "admin" then
      no, msg, code = last_admin(db, row, "taking " .. name .. "'s role away")
      if msg then return no, msg, code end
    end
    local mine = users.set_role(db, name, role) > 0
    -- only a change follows: the role restated (a script's idempotent call) leaves a grant
    -- made in the default project since (narrower or wider) as it is
    local dp = mine and default_follows(db, name, role, actor) or nil
    local res = { name = name, role = role, was = row.role, default_project = dp, changed = mine }
    -- the roles held already: no change, as a grant of a project's role held (orket.serve.team)
    if not res.changed then return audit_chain.unchanged(res) end
    if mine then
      db:event { kind = "user_role", actor = actor or "cli", data = { name = name, role = role, was = row.role } }
    end
    return res
  end)
end

--- subject(res) -> whom a people change was about, for the audit (orket.audit.chain's
--- subject), from its result: {name|user, project, role}
function M.subject(res)
  return { person = res.user or res.name, project = res.project, role = res.role }
end

--- audit_also(res) -> array of subjects: the other people a change recorded as res's also
--- changed (a provider's person's other names disabled with the name asked), each for an
--- audit entry of the same action beside res's own
function M.audit_also(res) return type(res) == "table" and res.audit_also or {} end

--- list(db[, after, limit]) -> array of {name, role, created_at, disabled_at}, by name
--- (a page: at most limit, those after the name after)
function M.list(db, after, limit) return users.list(db, after, limit) end

--- exists(db, name) -> whether a person of that name was added
function M.exists(db, name) return users.get(db, name) ~= nil end

--- count(db) -> people ever added
function M.count(db) return users.count(db) end

-- Every refusal of a name and password costs one Argon2id check, so that its time does not
-- tell which names are accounts: an unknown name, and a person of a provider or a directory
-- (whose row holds no password hash), are checked against this decoy. Made once, at the
-- server's start (prepare): made at the first unknown name, that one took twice as long.
local decoy = {} -- {hash = encoded} once made; {making = task} while being made

--- decoy_hash() -> the decoy's encoded hash (made now, or waited for, when prepare's task
--- has not finished: call it in a task)
function M.decoy_hash()
  while not decoy.hash do
    local t = decoy.making or task.spawn(function() return crypto.password_hash(crypto.random_id(16)) end)
    decoy.making = t
    local ok, h = t:join()
    if decoy.making == t then decoy.making = nil end
    if not (ok and h) then return "" end -- no memory for it: refused all the same
    decoy.hash = decoy.hash or h
  end
  return decoy.hash
end

--- prepare(): starts making the decoy hash (a server calls it at its start)
function M.prepare()
  if not (decoy.hash or decoy.making) then task.spawn(M.decoy_hash) end
end

--- decoy_check(password): the Argon2id check a refusal costs when no account's hash can
--- be checked (in a task)
function M.decoy_check(password)
  crypto.password_verify(M.decoy_hash(), password)
end

--- verify(db, name, password) -> identity {id, name, role, user} | nil, why (unknown,
--- wrong, disabled, federated: for the server's log only; the answer says the same for
--- each, in the same time). Waits (in a task) while the loop's thread pool checks the
--- password: at most two checks run at once, the others wait their turn (orket.c.crypto).
function M.verify(db, name, password)
  if type(name) ~= "string" or type(password) ~= "string" then return nil, "malformed" end
  local row = M.check_name(name) and users.get(db, name) or nil
  if not row then
    M.decoy_check(password)
    return nil, "unknown"
  end
  -- a provider's or a directory's person has no password here: refused after the same work
  local source = M.source_of(row.hash)
  if source ~= "local" then
    M.decoy_check(password)
    return nil, "signs in with " .. source
  end
  if not crypto.password_verify(row.hash, password) then return nil, "wrong" end
  -- the check waited on the thread pool: the person as they are now (disabled, given
  -- another role or password meanwhile), not as they were read before it
  local now = users.get(db, name)
  if not now or now.hash ~= row.hash then return nil, "wrong" end
  if now.disabled_at then return nil, "disabled" end
  return M.identity(now.name, now.role)
end

--- source_of(hash) -> how a person signs in, as their row's hash says: "oidc" or "ldap"
--- (orket.serve.identity's mark), else "local"
function M.source_of(hash) return type(hash) == "string" and hash:match("^!(%l+):") or "local" end

--- identity(name, role[, hash]) -> the identity a person's requests carry (source: how
--- they sign in, when their row's hash is given)
function M.identity(name, role, hash)
  return { id = M.PREFIX .. name, name = name, role = role, user = name, source = hash and M.source_of(hash) or nil }
end

--- of_key(db, key) -> identity | nil, why: a valid key {id, name, role, user} as who it
--- acts for. A personal key (docs/teams.md) acts as its person, named user:NAME, with
--- their roles but never more than its own (cap); a disabled person's keys are refused.
function M.of_key(db, k)
  if not k.user then return k end
  local row = users.get(db, k.user)
  if not row or row.disabled_at then return nil, "disabled" end
  local who = M.identity(row.name, row.role, row.hash)
  who.key_id, who.key_name, who.cap = k.id, k.name, k.role
  return who
end

return M
