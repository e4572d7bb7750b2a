-- orket.store.keys: the api_keys table (keys for orket serve; only a keyed hash of each
-- secret is stored) as named operations op(db, ...) -> plain Lua values; reads and writes
-- the caller asserts on raise on a store error. Written once for both backends
-- (orket.store.dialect).
local M = {}

--- name_taken(db, name[, user]) -> true when a key not revoked of the person (user), or
--- of the server's own (no user), has that name: names are unique per person
function M.name_taken(db, name, user)
  return db:row("SELECT 1 AS x FROM api_keys WHERE name = ? AND coalesce(user_name, '') = ? AND revoked_at IS NULL",
    name, user or "") ~= nil
end

--- last_named(db, name) -> {id, name, role, hash, user_name, revoked_at} of the newest key
--- of that name, revoked or not | nil
function M.last_named(db, name)
  return db:row("SELECT id, name, role, hash, user_name, " .. db.dialect.time("revoked_at")
    .. " FROM api_keys WHERE name = ? ORDER BY api_keys.created_at DESC, id DESC LIMIT 1", name)
end

--- insert(db, id, name, role, hash[, user]): a key created now (user: the person it is of)
function M.insert(db, id, name, role, hash, user)
  assert(db:run("INSERT INTO api_keys (id, name, role, hash, created_at, user_name) VALUES (?, ?, ?, ?, "
    .. db.dialect.now .. ", ?)", id, name, role, hash, user))
end

--- list(db[, user]) -> array of {id, name, role, user_name, created_at, revoked_at}, oldest
--- first: every key, or the person's
function M.list(db, user)
  local d = db.dialect
  local sql = "SELECT id, name, role, user_name, " .. d.time("created_at") .. ", " .. d.time("revoked_at")
    .. " FROM api_keys" .. (user and " WHERE user_name = ?" or "") .. " ORDER BY api_keys.created_at, id"
  if user then return assert(db:rows(sql, user)) end
  return assert(db:rows(sql))
end

--- live(db, user) -> list's rows of the person's keys that are not revoked, in its order:
--- what an enable brings back, what a hand-over revokes
function M.live(db, user)
  local out = {}
  for _, k in ipairs(M.list(db, user)) do
    if not k.revoked_at then out[#out + 1] = k end
  end
  return out
end

--- page(db, user, after, limit) -> array of list's rows, in its order: at most limit of
--- the keys (every one when user is nil, else the person's) that come after the key whose
--- id is after (nil: from the first); a page of a listing
function M.page(db, user, after, limit)
  local d = db.dialect
  local where, args = {}, {}
  if user then where[#where + 1], args[#args + 1] = "k.user_name = ?", user end
  if after then
    -- the listing's own order: made after it, or made with it and a later id
    where[#where + 1], args[#args + 1] = "(k.created_at, k.id) > (SELECT c.created_at, c.id FROM api_keys c WHERE c.id = ?)",
      after
  end
  args[#args + 1] = limit
  return assert(db:rows("SELECT k.id, k.name, k.role, k.user_name, " .. d.time("k.created_at", "created_at") .. ", "
    .. d.time("k.revoked_at", "revoked_at") .. " FROM api_keys k"
    .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "") .. " ORDER BY k.created_at, k.id LIMIT ?",
    table.unpack(args)))
end

--- of_users(db, after, last, first) -> the keys of the people named after `after` ("": from
--- the first) up to last, as list's rows, but at most `first` of each person's: those not
--- revoked first, each kind oldest first; each row with n, how many keys that person has,
--- and live, how many of them are not revoked. A page of people's keys in one read, whose
--- size a person with thousands of keys does not set
function M.of_users(db, after, last, first)
  local d = db.dialect
  return assert(db:rows("SELECT k.id, k.name, k.role, k.user_name, k.n, k.live, "
    .. d.time("k.created_at", "created_at") .. ", " .. d.time("k.revoked_at", "revoked_at")
    .. " FROM (SELECT id, name, role, user_name, created_at, revoked_at, ROW_NUMBER() OVER (PARTITION BY "
    .. "user_name ORDER BY revoked_at IS NOT NULL, created_at, id) AS nth, COUNT(*) OVER (PARTITION BY user_name) "
    .. "AS n, COUNT(*) FILTER (WHERE revoked_at IS NULL) OVER (PARTITION BY user_name) AS live FROM api_keys "
    .. "WHERE user_name > ? AND user_name <= ?) k WHERE k.nth <= ? ORDER BY k.user_name, k.nth", after, last, first))
end

--- active_count(db) -> keys not revoked
function M.active_count(db)
  return assert(db:row("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL")).n
end

--- total_count(db) -> keys ever made, revoked or not
function M.total_count(db)
  return assert(db:row("SELECT count(*) AS n FROM api_keys")).n
end

--- any_made(db) -> whether any key or person was ever made, in one read (orket serve asks
--- it on every request until one is: another process may make the first) | nil, message
--- (the store could not be read: a server answers 503, never takes it for "none")
function M.any_made(db)
  local row, err = db:row("SELECT CASE WHEN EXISTS (SELECT 1 FROM api_keys) OR EXISTS (SELECT 1 FROM users)"
    .. " THEN 1 ELSE 0 END AS n")
  if not row then return nil, err end
  return row.n == 1
end

--- get(db, id) -> {id, name, role, hash, user_name, revoked_at} | nil
function M.get(db, id)
  return db:row("SELECT id, name, role, hash, user_name, " .. db.dialect.time("revoked_at")
    .. " FROM api_keys WHERE id = ?", id)
end

--- active_named(db, name) -> array of {id, name, role, hash, user_name, revoked_at}: the
--- keys not revoked of that name (one per person at most), oldest first
function M.active_named(db, name)
  return assert(db:rows("SELECT id, name, role, hash, user_name, " .. db.dialect.time("revoked_at")
    .. " FROM api_keys WHERE name = ? AND revoked_at IS NULL ORDER BY api_keys.created_at, id", name))
end

--- revoke(db, id): the key revoked now
function M.revoke(db, id)
  assert(db:run("UPDATE api_keys SET revoked_at = " .. db.dialect.now .. " WHERE id = ?", id))
end

--- write_probe(db) -> true | nil, msg, CODE: a write that changes no row, which takes
--- the write lock (run it in a transaction and roll it back: /ready's probe)
function M.write_probe(db)
  return db:run("UPDATE api_keys SET name = name WHERE false")
end

--- schema_ahead(db) -> nil | version, known: the store's schema version when it is past the
--- versions this orket knows (a newer orket migrated it while this one runs: /ready's check,
--- in its probe's transaction)
function M.schema_ahead(db)
  local v, known
  if db.backend == "pg" then
    local r = db:row("SELECT version FROM orket_schema")
    v, known = r and r.version, #require("orket.store.pg_schema").migrations -- lazy: only /ready asks
  else
    local r = db:row("PRAGMA user_version")
    v, known = r and r.user_version, #require("orket.store").migrations -- lazy: as above
  end
  if math.type(v) == "integer" and v > known then return v, known end
  return nil
end

--- made_before(db, id, t) -> whether key id was made before t (a stored time, ISO 8601 UTC)
--- | nil, msg (the store cannot be read)
function M.made_before(db, id, t)
  local row, err = db:row("SELECT 1 AS old FROM api_keys WHERE id = ? AND created_at < ?", id, t)
  if row == nil and err then return nil, err end
  return row ~= nil
end

return M
