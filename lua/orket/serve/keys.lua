-- orket.serve.keys: API keys for orket serve. A key is "ork_<id>_<secret>" (16 hex digits,
-- then 64): shown once, never stored. The store keeps the id, a name, a role and the BLAKE2b
-- of the secret keyed with the project's pepper (.orket/keys.pepper, 0600, outside the
-- database); checks compare in constant time (orket.c.crypto). Rows: orket.store.keys.
local cjson = require "cjson"
local crypto = require "orket.c.crypto"
local jsonout = require "orket.jsonout"
local sk = require "orket.store.keys"
local sessions = require "orket.store.sessions"
local users = require "orket.store.users"
local uv = require "luv"
local project = require "orket.project"

local M = {}

-- Each role may do what the roles below it may.
M.ROLES = { viewer = 1, operator = 2, admin = 3 }
-- A project's roles (docs/teams.md): a developer may what an operator may.
M.RANK = { viewer = 1, operator = 2, developer = 2, admin = 3 }

local PEPPER_BYTES = 32

--- pepper_path(dir) -> the pepper file of the project in dir
function M.pepper_path(dir)
  local db = project.db_path(dir)
  return db:match("^(.*)/[^/]+$") .. "/keys.pepper"
end

--- pepper(dir, create) -> bytes | nil, msg, CODE. With create, a missing pepper is made
--- (32 random bytes, mode 0600, created exclusively so two processes agree on one).
function M.pepper(dir, create)
  local path = M.pepper_path(dir)
  for _ = 1, 2 do
    local fd = uv.fs_open(path, "r", 0)
    if fd then
      local st = uv.fs_fstat(fd)
      local data = uv.fs_read(fd, PEPPER_BYTES + 1, 0)
      uv.fs_close(fd)
      if not data or #data ~= PEPPER_BYTES then
        return nil, string.format("%s is damaged (not %d bytes); revoke every key, delete the file and "
          .. "create keys again", path, PEPPER_BYTES), "EBADPEPPER"
      end
      if st and (st.mode & 63) ~= 0 then
        return nil, string.format("%s may be read by others (mode %o); run chmod 600 %s", path, st.mode & 511, path),
          "EPERM"
      end
      return data
    end
    if not create then return nil, "no API key has been created here (" .. path .. " not found)", "ENOENT" end
    local wfd, err, code = uv.fs_open(path, "wx", 384) -- 0600, exclusive
    if wfd then
      local ok, werr = uv.fs_write(wfd, crypto.random_bytes(PEPPER_BYTES), 0)
      uv.fs_fsync(wfd)
      uv.fs_close(wfd)
      if not ok then
        uv.fs_unlink(path)
        return nil, "cannot write " .. path .. ": " .. tostring(werr), "EIO"
      end
    elseif code ~= "EEXIST" then
      return nil, "cannot create " .. path .. ": " .. tostring(err), code
    end
  end
  return nil, "cannot read " .. path, "EIO"
end

--- pepper_problem(dir) -> "path is damaged ...; fix", code | nil: a pepper that is there but
--- cannot be used (cut short, or readable by others); nil when it is fine or missing (a
--- keyless server, or a folder of a shared store: its refusal says so). What orket serve
--- warns of at its start: every key would be refused until it is fixed.
function M.pepper_problem(dir)
  local ok, err, code = M.pepper(dir, false)
  if ok or code == "ENOENT" then return nil end
  return err, code
end

--- parse(token) -> id, secret | nil: the parts of a well-formed key
function M.parse(token)
  if type(token) ~= "string" or #token ~= 85 then return nil end
  local id, secret = token:match("^ork_(%x+)_(%x+)$")
  if not id or #id ~= 16 or #secret ~= 64 then return nil end
  return id, secret
end

local function digest(secret, pepper) return crypto.hash(secret, 32, pepper) end

--- NAME_MAX: a key's name is at most this many bytes (the API's schemas say so too)
M.NAME_MAX = 64
--- NAME_RULE: what a key's name may be, in the words every surface (the CLI, the API) says
M.NAME_RULE = "a key's name is 1 to " .. M.NAME_MAX .. " ASCII characters: letters, digits, '.', '_' or '-', "
  .. "starting with a letter or digit"

--- NAME_SCHEMA: a key's name in a request's JSON schema (POST /v1/keys, /v1/me/keys,
--- /v1/users/{name}/keys): its length; create says the rest in NAME_RULE's words
M.NAME_SCHEMA = { type = "string", minLength = 1, maxLength = M.NAME_MAX, description = M.NAME_RULE
  .. ", never 16 hex digits (a key's id)" }

--- name_problem(name) -> nil when name may be a key's, else why not: the one rule, which
--- create applies and `orket keys create` checks before it opens the store
function M.name_problem(name)
  if name == "" then return "the key's name is empty; " .. M.NAME_RULE end
  if type(name) ~= "string" or not name:match("^[%w][%w._-]*$") or #name > M.NAME_MAX then return M.NAME_RULE end
  -- revoke takes an id before a name: a key named as another's id would have that other key
  -- revoked by whoever meant this one
  if #name == 16 and name:match("^%x+$") then
    return "a key's name may not be 16 hex digits, as a key's id is (revoking it by name would find the id)"
  end
  return nil
end

--- create(db, dir, name, role[, actor[, user]]) -> key, {id, name, role, user} | nil, msg,
--- CODE; actor: who the journal's key_create names ("cli" unless given: the API gives the
--- caller's); user: the person whose personal key it is (docs/teams.md), who must exist
function M.create(db, dir, name, role, actor, user)
  local bad = M.name_problem(name)
  if bad then return nil, bad, "EUSAGE" end
  if not M.ROLES[role] then return nil, "the role must be viewer, operator or admin", "EUSAGE" end
  local pepper, perr, pcode = M.pepper(dir, true)
  if not pepper then return nil, perr, pcode end
  local id, secret = crypto.random_id(8), crypto.random_id(32)
  local ok, err, code = db:tx(function()
    if sk.name_taken(db, name, user) then
      return nil, "a key named '" .. name .. "' exists already" .. (user and (" among " .. user .. "'s keys") or "")
        .. "; revoke it first or choose another name", "EEXIST"
    end
    if user and not users.get(db, user) then
      return nil, users.unknown(db, user), "ENOENT"
    end
    sk.insert(db, id, name, role, digest(secret, pepper), user)
    db:event { kind = "key_create", actor = actor or "cli", data = { id = id, name = name, role = role, user = user } }
    return true
  end)
  if not ok then return nil, err, code end
  return "ork_" .. id .. "_" .. secret, { id = id, name = name, role = role, user = user }
end

--- adopt(db, dir, token, name, role) -> {id, name, role, adopted} | nil, msg, CODE: a key
--- the operator made outside the store (a container's ORKET_KEY or secret file) stored as
--- create stores one; adopted is false when the store holds that key already. A key whose
--- id is stored with another secret, or revoked, is refused: it never reopens a server.
--- So is a secret of one digit repeated (all zeros, say), which anybody would guess.
function M.adopt(db, dir, token, name, role)
  local id, secret = M.parse(token)
  if not id then return nil, "a key is ork_<16 hex digits>_<64 hex digits>", "EUSAGE" end
  -- its secret is all that keeps it from being guessed: one plainly not random is refused
  if secret == secret:sub(1, 1):rep(#secret) then
    return nil, "the key's secret is one digit repeated; make its 64 hex digits from a secure random source "
      .. "(docs/guide/deploying.md: od -An -N32 -tx1 /dev/urandom)", "EUSAGE"
  end
  local pepper, perr, pcode = M.pepper(dir, true)
  if not pepper then return nil, perr, pcode end
  local h, adopted = digest(secret, pepper), false
  local ok, err, code = db:tx(function()
    local row = sk.get(db, id)
    if row then
      if not crypto.equal(h, row.hash) then return nil, "key " .. id .. " is stored with another secret", "EEXIST" end
      if row.revoked_at then return nil, "key " .. id .. " was revoked; give a new one", "EPERM" end
      name, role = row.name, row.role
      return true
    end
    if sk.name_taken(db, name) then
      return nil, "a key named '" .. name .. "' exists already; revoke it ('orket keys revoke " .. name .. "')", "EEXIST"
    end
    sk.insert(db, id, name, role, h)
    db:event { kind = "key_create", actor = "cli", data = { id = id, name = name, role = role } }
    adopted = true
    return true
  end)
  if not ok then return nil, err, code end
  return { id = id, name = name, role = role, adopted = adopted }
end

--- list(db) -> array of {id, name, role, created_at, revoked_at}, oldest first
M.list = sk.list

--- list_doc(db[, user[, after, limit]]) -> the keys (every one, or the person's) as a
--- document (orket.keys/1: id, name, role, user or null, created_at, revoked_at or null;
--- never a hash or secret), oldest first: every key at once without limit (`orket keys list
--- --json`), else a page, at most limit keys after the key whose id is after (nil: from the
--- first), for GET /v1/keys, /v1/me/keys and /v1/users/{name}/keys (their next:
--- orket.serve.admin's list_page)
function M.list_doc(db, user, after, limit)
  -- a page starts after a key only when it is a page: a whole list from the first is not
  assert(after == nil or limit, "keys.list_doc: after needs a limit")
  local out = {}
  local rows = limit and sk.page(db, user, after, limit) or sk.list(db, user)
  for n, k in ipairs(rows) do out[n] = M.doc(k) end
  return { format = "orket.keys/1", keys = jsonout.array(out) }
end

--- doc(row) -> a key as listings show it (orket.store.keys' row)
function M.doc(k)
  return { id = k.id, name = k.name, role = k.role, user = k.user_name or cjson.null, created_at = k.created_at,
    revoked_at = k.revoked_at or cjson.null }
end

--- of_users(db, after, last, first) -> name -> {keys = array of at most `first` keys' docs
--- (those not revoked first, each kind oldest first), count = how many they have, live =
--- how many of them are not revoked}, of the people named after `after` ("": from the
--- first) up to last (a page of people), in one read
function M.of_users(db, after, last, first)
  local by = {}
  for _, k in ipairs(sk.of_users(db, after, last, first)) do
    local theirs = by[k.user_name] or { keys = {}, count = k.n, live = k.live }
    by[k.user_name] = theirs
    table.insert(theirs.keys, M.doc(k))
  end
  return by
end

--- active_count(db) -> keys not revoked
M.active_count = sk.active_count

--- total_count(db) -> keys ever made, revoked or not
M.total_count = sk.total_count
--- any_made(db) -> whether any key or person was ever made (one read)
M.any_made = sk.any_made

--- revoke(db, which[, actor]) -> {id, name, role, user} | nil, msg, CODE; which: an id or a
--- key's name (the active one of that name; EALREADY when every key of it is revoked);
--- actor as for create
function M.revoke(db, which, actor)
  local found
  local ok, err, code = db:tx(function()
    -- by id, else the active key of that name, else (to say it is revoked already) the last;
    -- several people may each have a key of one name: then only an id says which
    found = sk.get(db, which)
    if not found then
      local named = sk.active_named(db, which)
      if #named > 1 then
        local whose = {}
        for i, k in ipairs(named) do whose[i] = k.id .. " (" .. (k.user_name or "the server's") .. ")" end
        return nil, string.format("%d keys are named '%s': revoke one by its id: %s", #named, which,
          table.concat(whose, ", ")), "EUSAGE"
      end
      found = named[1] or sk.last_named(db, which)
    end
    if not found then return nil, "no key with id or name '" .. which .. "' ('orket keys list' shows them)", "ENOENT" end
    if found.revoked_at then return nil, "key " .. found.id .. " was revoked already", "EALREADY" end
    sk.revoke(db, found.id)
    assert(sessions.delete_for_key(db, found.id)) -- its web board sign-ins end too
    db:event { kind = "key_revoke", actor = actor or "cli", data = { id = found.id, name = found.name } }
    return true
  end)
  if not ok then return nil, err, code end
  return { id = found.id, name = found.name, role = found.role, user = found.user_name }
end

--- subject(info) -> whom a key change was about, for the audit (orket.audit.chain's
--- subject): the key's name, id and role, and its person; never its secret
function M.subject(a, b)
  local info = type(a) == "table" and a or b -- create answers key, info; revoke info
  return { key = info.name, keyid = info.id, role = info.role, person = info.user }
end

--- verify(db, pepper, token) -> {id, name, role} | nil, reason[, store message]: an active
--- key matching the token. The reason is for the operator's log, never for the client;
--- "store": the store could not be read, which says nothing of the token.
function M.verify(db, pepper, token)
  local id, secret = M.parse(token)
  if not id then return nil, "malformed" end
  local row, rerr = sk.get(db, id)
  -- the hash is computed whether or not the id exists, so both take the same time
  local h = digest(secret, pepper)
  if not row and rerr then return nil, "store", rerr end -- not the key's fault (a failover)
  if not row then return nil, "unknown" end
  if not crypto.equal(h, row.hash) then return nil, "wrong" end
  if row.revoked_at then return nil, "revoked" end
  return { id = row.id, name = row.name, role = row.role, user = row.user_name }
end

--- allows(role, need) -> whether role may do what need may
function M.allows(role, need) return (M.RANK[role] or 0) >= (M.RANK[need] or math.huge) end

--- cap_words(top, want) -> what a key of a person whose strongest role is top may be, in
--- a key's roles (viewer, operator, admin), and the refused want: "operator (a developer's)
--- or lower, not admin". A project's developer is a key's operator: a refusal that said "a
--- key may be developer or lower" named a role no key has.
function M.cap_words(top, want)
  local as_key = top == "developer" and "operator" or top
  return string.format("%s%s or lower, not %s", as_key, as_key ~= top and (" (a " .. top .. "'s)") or "", want)
end

--- grant_words(person, want, how[, none]) -> the grant that would allow a key of role want:
--- the project role it takes (operator: developer), with how, the route or command to grant
--- it (PROJECT and ROLE left as words there); none: the person is a member of no project, so
--- no weaker role would do either, and the remedy offers none
function M.grant_words(person, want, how, none)
  local role = want == "operator" and "developer" or want
  return string.format("grant %s the %s role in a project first (%s)%s (docs/teams.md#keys)", person, role,
    (how:gsub("ROLE", role)), none and "" or ", or ask for a role no stronger")
end

return M
