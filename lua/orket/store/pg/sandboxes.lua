-- orket.store.pg.sandboxes: orket.store.sandboxes' operations on PostgreSQL (same names and
-- shapes: times as ISO text).
local iso = require("orket.store.pgdb").iso

local M = {}

local ALL = "id, target, status, port, socket, command, commit_id, owner_pid, owner_start, detail, exit_code, "
  .. "exit_signal, " .. iso("started_at") .. ", " .. iso("updated_at") .. ", " .. iso("healthy_at") .. ", "
  .. iso("ended_at")

function M.insert(db, s)
  local _, id = assert(db:run("INSERT INTO sandboxes (target, status, port, socket, command, commit_id, owner_pid, "
    .. "owner_start, started_at, updated_at) VALUES ($1, 'starting', $2, $3, $4, $5, $6, $7, clock_timestamp(), "
    .. "clock_timestamp()) RETURNING id", s.target, s.port, s.socket, s.command, s.commit, s.owner_pid, s.owner_start))
  return id
end

function M.set_socket(db, id, path)
  assert(db:run("UPDATE sandboxes SET socket = $1 WHERE id = $2", path, id))
end

function M.get(db, id)
  return db:row("SELECT " .. ALL .. " FROM sandboxes WHERE id = $1", id)
end

function M.list(db, all)
  if all then return db:rows("SELECT " .. ALL .. " FROM sandboxes ORDER BY id DESC") or {} end
  return db:rows("SELECT " .. ALL .. " FROM sandboxes WHERE status IN ('starting', 'healthy', 'unhealthy') "
    .. "ORDER BY id DESC") or {}
end

function M.set_status(db, id, status, detail, exit)
  exit = exit or {}
  assert(db:run("UPDATE sandboxes SET status = $1::text, detail = $2, exit_code = coalesce($3::int, exit_code), "
    .. "exit_signal = coalesce($4::int, exit_signal), updated_at = clock_timestamp(), "
    .. "healthy_at = CASE WHEN $1::text = 'healthy' THEN clock_timestamp() ELSE healthy_at END, "
    .. "ended_at = CASE WHEN $1::text IN ('stopped', 'exited') THEN clock_timestamp() ELSE ended_at END "
    .. "WHERE id = $5", status, detail, exit.code, exit.signal, id))
end

function M.ports(db)
  local out = {}
  for _, r in ipairs(db:rows("SELECT port FROM sandboxes WHERE status IN ('starting', 'healthy', 'unhealthy')") or {}) do
    out[r.port] = true
  end
  return out
end

function M.uptimes(db, limit)
  return db:rows("SELECT id, status, extract(epoch FROM clock_timestamp() - started_at)::float8 AS uptime_s "
    .. "FROM sandboxes WHERE status IN ('starting', 'healthy', 'unhealthy') ORDER BY id LIMIT $1", limit) or {}
end

return M
