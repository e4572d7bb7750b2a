-- orket.store.sessions: the web board's sign-ins (a BLAKE2b of each session token, never
-- the token; expiry in Unix seconds) as named operations. The deletes return what the
-- store's run does (changes | nil, msg, CODE) for the caller to check or not. Written once
-- for both backends (orket.store.dialect).
local M = {}

--- lookup(db, hash) -> {key_id, expires, name, role, user_name, revoked_at} of the session and its key | nil
function M.lookup(db, hash)
  return db:row("SELECT s.key_id, s.expires, k.name, k.role, k.user_name, " .. db.dialect.time("k.revoked_at", "revoked_at")
    .. " FROM sessions s JOIN api_keys k ON k.id = s.key_id WHERE s.hash = ?", hash)
end

--- delete(db, hash) -> changes | nil, msg, CODE: one session ends
function M.delete(db, hash)
  return db:run("DELETE FROM sessions WHERE hash = ?", hash)
end

--- delete_for_key(db, key_id) -> changes | nil, msg, CODE: every session of the key ends
function M.delete_for_key(db, key_id)
  return db:run("DELETE FROM sessions WHERE key_id = ?", key_id)
end

--- delete_expired(db, now) -> changes | nil, msg, CODE: sessions expired at Unix time now end
function M.delete_expired(db, now)
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
