-- orket.store.sandboxes: the sandboxes table as named operations (orket.sandboxes.service
-- keeps it): one row per sandbox started, its state and its owner. Each is op(db, ...) ->
-- plain Lua values; times are ISO text. The uptimes' arithmetic on times is each backend's
-- own (orket.store.pg.sandboxes); the rest is written once (orket.store.dialect).
local one = require("orket.store.backend").row
local many = require("orket.store.backend").rows

local M = {}

-- the states a sandbox may still be running in (its owner alive)
M.LIVE = { starting = true, healthy = true, unhealthy = true }

-- every column
local function all(d)
  return "id, target, status, port, socket, command, commit_id, owner_pid, owner_start, owner_machine, detail, exit_code, "
    .. "exit_signal, " .. d.time("started_at") .. ", " .. d.time("updated_at") .. ", " .. d.time("healthy_at") .. ", "
    .. d.time("ended_at")
end

--- insert(db, s) -> id (raises on a store error). s: {target=, port=, socket=, command=
--- (JSON text), commit=, owner_pid=, owner_start=, owner_machine=}; the row starts as 'starting'.
--- owner_machine: where the owner's pid means something (orket.sandboxes.pidstart.machine)
function M.insert(db, s)
  local d = db.dialect
  local _, id = assert(db:run("INSERT INTO sandboxes (target, status, port, socket, command, commit_id, owner_pid, "
    .. "owner_start, owner_machine, started_at, updated_at) VALUES (?, 'starting', ?, ?, ?, ?, ?, ?, ?, " .. d.wall .. ", "
    .. d.wall .. ")" .. d.returning_id, s.target, s.port, s.socket, s.command, s.commit, s.owner_pid, s.owner_start,
    s.owner_machine))
  return id
end

--- set_socket(db, id, path): where the sandbox is reached (its path names its id)
function M.set_socket(db, id, path)
  assert(db:run("UPDATE sandboxes SET socket = ? WHERE id = ?", path, id))
end

--- get(db, id) -> the row | nil (no such sandbox); raises on a store error
function M.get(db, id)
  return one(db, "SELECT " .. all(db.dialect) .. " FROM sandboxes WHERE id = ?", id)
end

--- list(db, all) -> rows, newest first: the live ones, or every one when all (raises on a
--- store error)
function M.list(db, every)
  local cols = all(db.dialect)
  if every then return assert(db:rows("SELECT " .. cols .. " FROM sandboxes ORDER BY id DESC")) end
  return assert(db:rows("SELECT " .. cols .. " FROM sandboxes WHERE status IN ('starting', 'healthy', 'unhealthy') "
    .. "ORDER BY id DESC"))
end

--- set_status(db, id, status, detail): a live state (healthy_at set when healthy), or an
--- end ('stopped', 'exited': ended_at set; exit = {code=, signal=} when the program ended)
function M.set_status(db, id, status, detail, exit)
  exit = exit or {}
  local now = db.dialect.wall
  assert(db:run("UPDATE sandboxes SET status = CAST(?1 AS TEXT), detail = ?2, exit_code = coalesce(?3, exit_code), "
    .. "exit_signal = coalesce(?4, exit_signal), updated_at = " .. now .. ", "
    .. "healthy_at = CASE WHEN CAST(?1 AS TEXT) = 'healthy' THEN " .. now .. " ELSE healthy_at END, "
    .. "ended_at = CASE WHEN CAST(?1 AS TEXT) IN ('stopped', 'exited') THEN " .. now .. " ELSE ended_at END "
    .. "WHERE id = ?5", status, detail, exit.code, exit.signal, id))
end

--- ports(db) -> {port = true} of the live sandboxes (raises on a store error)
function M.ports(db)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT port FROM sandboxes WHERE status IN ('starting', 'healthy', 'unhealthy')"))) do
    out[r.port] = true
  end
  return out
end

--- uptimes(db, limit) -> {id=, status=, uptime_s=} of the live sandboxes as recorded (the
--- seconds since each started), at most limit, oldest first (raises on a store error: a
--- failed read is not "no sandboxes")
function M.uptimes(db, limit)
  return many(db, "SELECT id, status, (julianday('now') - julianday(started_at)) * 86400.0 AS uptime_s "
    .. "FROM sandboxes WHERE status IN ('starting', 'healthy', 'unhealthy') ORDER BY id LIMIT ?", limit)
end

return require("orket.store.backend").twin("sandboxes", M)
