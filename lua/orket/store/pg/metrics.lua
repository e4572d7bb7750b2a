-- orket.store.pg.metrics: orket.store.metrics' operations on PostgreSQL (same names and
-- shapes: sums as integers).
local M = {}

function M.cards(db, limit)
  return db:rows("SELECT type, status, COUNT(*) AS n FROM cards GROUP BY type, status LIMIT $1", limit)
end

function M.runs(db, limit)
  return db:rows("SELECT status, COUNT(*) AS n FROM runs GROUP BY status LIMIT $1", limit)
end

function M.card_turns(db)
  return db:row("SELECT COUNT(*) AS n FROM (SELECT DISTINCT run_id, card_id, seat, turn FROM turns) d").n
end

function M.models(db, limit)
  return db:rows([[SELECT COALESCE(model, '') AS model, COUNT(*) AS n, COALESCE(SUM(prompt_tokens), 0)::int8 AS tin,
    COALESCE(SUM(completion_tokens), 0)::int8 AS tout FROM turns GROUP BY model ORDER BY model LIMIT $1]], limit)
end

-- latency_ms as the number the JSON holds (jsonb numbers come back as text: tonumber)
function M.model_latencies(db)
  local rows = db:rows([[SELECT COALESCE(model, '') AS model, (data->'latency_ms')::text AS ms FROM turns
    WHERE jsonb_typeof(data->'latency_ms') = 'number' ORDER BY id DESC LIMIT 10000]])
  for _, r in ipairs(rows or {}) do r.ms = math.tointeger(tonumber(r.ms)) or tonumber(r.ms) end
  return rows
end

function M.allowed_calls(db, limit)
  return db:rows([[SELECT tool, 'allow' AS verdict, COUNT(*) AS n FROM tool_calls WHERE gate_code IS NOT NULL
      GROUP BY tool LIMIT $1]], limit)
end

function M.gate_decisions(db, limit)
  return db:rows([[SELECT COALESCE(tool, '') AS tool, verdict, COUNT(*) AS n FROM gate_decisions
      GROUP BY tool, verdict LIMIT $1]], limit)
end

function M.violations(db, limit)
  return db:rows("SELECT rule, COUNT(*) AS n FROM violations GROUP BY rule ORDER BY rule LIMIT $1", limit)
end

function M.approvals_waiting(db)
  return db:row("SELECT COUNT(*) AS n FROM approvals WHERE decision IS NULL").n
end

return M
