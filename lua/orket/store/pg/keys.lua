-- orket.store.pg.keys: orket.store.keys' operations on PostgreSQL (same names and shapes:
-- times as ISO text).
local iso = require("orket.store.pgdb").iso

local M = {}

function M.name_taken(db, name)
  return db:row("SELECT 1 AS x FROM api_keys WHERE name = $1 AND revoked_at IS NULL", name) ~= nil
end

function M.insert(db, id, name, role, hash)
  assert(db:run("INSERT INTO api_keys (id, name, role, hash, created_at) VALUES ($1, $2, $3, $4, now())",
    id, name, role, hash))
end

function M.list(db)
  return assert(db:rows("SELECT id, name, role, " .. iso("created_at") .. ", " .. iso("revoked_at")
    .. " FROM api_keys ORDER BY api_keys.created_at, id"))
end

function M.active_count(db)
  return assert(db:row("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL")).n
end

function M.total_count(db)
  return assert(db:row("SELECT count(*) AS n FROM api_keys")).n
end

function M.get(db, id)
  return db:row("SELECT id, name, role, hash, " .. iso("revoked_at") .. " FROM api_keys WHERE id = $1", id)
end

function M.active_named(db, name)
  return db:row("SELECT id, name, role, hash, " .. iso("revoked_at")
    .. " FROM api_keys WHERE name = $1 AND revoked_at IS NULL", name)
end

function M.revoke(db, id)
  assert(db:run("UPDATE api_keys SET revoked_at = now() WHERE id = $1", id))
end

function M.write_probe(db)
  return db:run("UPDATE api_keys SET name = name WHERE false")
end

return M
