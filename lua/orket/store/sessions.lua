-- orket.store.sessions: the web board's sign-ins (a BLAKE2b of each session token, never
-- the token; expiry in Unix seconds) as named operations. The deletes return what the
-- store's run does (changes | nil, msg, CODE) for the caller to check or not. Written once
-- for both backends (orket.store.dialect). Expiry is judged by one clock for every server
-- of a store: on PostgreSQL the database's, since the servers' clocks may disagree (one
-- ahead of the others ended, and deleted, every session with less than its lead left, as
-- rate_buckets says); on SQLite one machine's, the caller's now.
local M = {}

-- the database's clock in Unix seconds (PostgreSQL)
local PG_NOW = "floor(extract(epoch FROM statement_timestamp()))::int8"

--- clock(db) -> the SQL of the store's clock in Unix seconds | nil (SQLite: the caller's)
function M.clock(db)
  return db.backend == "pg" and PG_NOW or nil
end

--- now(db, local_now) -> Unix seconds to date and judge sessions by: the database's clock
--- on PostgreSQL, local_now (the caller's os.time()) on SQLite
function M.now(db, local_now)
  local c = M.clock(db)
  if not c then return local_now end
  local r, err = db:row("SELECT " .. c .. " AS now")
  if not r then error(err or "store: reading the database's clock failed", 0) end
  return r.now
end

--- lookup(db, hash[, now]) -> {key_id, expires, name, role, user_name, revoked_at, now} of
--- the session and its key | nil, msg (a store error): now is the time to judge expires by
--- (M.now's, read in the same statement on PostgreSQL; now, else os.time(), on SQLite)
function M.lookup(db, hash, now)
  local c = M.clock(db)
  local row, err = db:row("SELECT s.key_id, s.expires, k.name, k.role, k.user_name, "
    .. db.dialect.time("k.revoked_at", "revoked_at") .. (c and (", " .. c .. " AS now") or "")
    .. " FROM sessions s JOIN api_keys k ON k.id = s.key_id WHERE s.hash = ?", hash)
  if row and not c then row.now = now or os.time() end
  return row, err
end

--- delete(db, hash) -> changes | nil, msg, CODE: one session ends
function M.delete(db, hash)
  return db:run("DELETE FROM sessions WHERE hash = ?", hash)
end

--- delete_for_key(db, key_id) -> changes | nil, msg, CODE: every session of the key ends
function M.delete_for_key(db, key_id)
  return db:run("DELETE FROM sessions WHERE key_id = ?", key_id)
end

--- delete_expired(db, now) -> changes | nil, msg, CODE: sessions expired at Unix time now
--- (on PostgreSQL: by the database's clock) end
function M.delete_expired(db, now)
  local c = M.clock(db)
  if c then return db:run("DELETE FROM sessions WHERE expires <= " .. c) end
  return db:run("DELETE FROM sessions WHERE expires <= ?", now)
end

--- keep_newest(db, key_id, n) -> changes | nil, msg, CODE: all but the key's n sessions
--- that expire last end (the later made first among those of one second: sign-ins in one
--- second end the oldest, never one just made)
function M.keep_newest(db, key_id, n)
  return db:run("DELETE FROM sessions WHERE key_id = ?1 AND hash NOT IN (SELECT hash FROM sessions WHERE key_id = ?1 "
    .. "ORDER BY expires DESC, " .. M.newest_first(db) .. " LIMIT ?2)", key_id, n)
end

--- newest_first(db) -> SQL ordering sessions of one second the later made first:
--- PostgreSQL's created_at is the transaction's microsecond; SQLite's a millisecond, so
--- its rows' order of writing decides between sign-ins of one millisecond
function M.newest_first(db)
  return db.dialect.name == "sqlite" and "created_at DESC, rowid DESC" or "created_at DESC"
end

--- insert(db, hash, key_id, expires) -> changes | nil, msg, CODE: a session created now
function M.insert(db, hash, key_id, expires)
  return db:run("INSERT INTO sessions (hash, key_id, created_at, expires) VALUES (?, ?, " .. db.dialect.now .. ", ?)",
    hash, key_id, expires)
end

return M
