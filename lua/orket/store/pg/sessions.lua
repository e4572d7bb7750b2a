-- orket.store.pg.sessions: orket.store.sessions' operations on PostgreSQL (same names and
-- shapes).
local iso = require("orket.store.pgdb").iso

local M = {}

function M.lookup(db, hash)
  return db:row("SELECT s.key_id, s.expires, k.name, k.role, " .. iso("k.revoked_at") .. [[ FROM sessions s
    JOIN api_keys k ON k.id = s.key_id WHERE s.hash = $1]], hash)
end

function M.delete(db, hash)
  return db:run("DELETE FROM sessions WHERE hash = $1", hash)
end

function M.delete_for_key(db, key_id)
  return db:run("DELETE FROM sessions WHERE key_id = $1", key_id)
end

function M.delete_expired(db, now)
  return db:run("DELETE FROM sessions WHERE expires <= $1", now)
end

function M.keep_newest(db, key_id, n)
  return db:run([[DELETE FROM sessions WHERE key_id = $1 AND hash NOT IN
    (SELECT hash FROM sessions WHERE key_id = $1 ORDER BY expires DESC LIMIT $2)]], key_id, n)
end

function M.insert(db, hash, key_id, expires)
  return db:run("INSERT INTO sessions (hash, key_id, created_at, expires) VALUES ($1, $2, now(), $3)",
    hash, key_id, expires)
end

return M
