-- orket.store.pg.sandboxes: orket.store.sandboxes' operations on PostgreSQL (same names and
-- shapes: times as ISO text).
local many = require("orket.store.backend").rows

local M = {}

function M.uptimes(db, limit)
  return many(db, "SELECT id, status, extract(epoch FROM clock_timestamp() - started_at)::float8 AS uptime_s "
    .. "FROM sandboxes WHERE status IN ('starting', 'healthy', 'unhealthy') ORDER BY id LIMIT $1", limit)
end

return M
