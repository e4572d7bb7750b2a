-- orket.store.pg.sandboxes: orket.store.sandboxes' operations on PostgreSQL (same names and
-- shapes: times as ISO text).
local M = {}

function M.uptimes(db, limit)
  return db:rows("SELECT id, status, extract(epoch FROM clock_timestamp() - started_at)::float8 AS uptime_s "
    .. "FROM sandboxes WHERE status IN ('starting', 'healthy', 'unhealthy') ORDER BY id LIMIT $1", limit) or {}
end

return M
