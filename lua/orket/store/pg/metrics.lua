-- orket.store.pg.metrics: orket.store.metrics' operations on PostgreSQL (same names and
-- shapes: sums as integers).
local costs = require "orket.store.costs"
local backend = require "orket.store.backend"

local M = {}

-- a failed read raises the store's message, as orket.store.metrics' reads do
local rows, row = backend.rows, backend.row

function M.card_turns(db)
  return row(db, "SELECT COUNT(*) AS n FROM (SELECT DISTINCT run_id, card_id, seat, turn FROM turns) d").n
end

local MODEL = [[COALESCE((response->>'provider') || ':', '') || COALESCE(model, '')]]

-- charged failures (orket.store.metrics' CHARGED), their model as a turn's (CHARGED_MODEL)
local CHARGED = [[FROM events WHERE kind = 'model_failure' AND data->>'prompt_tokens' IS NOT NULL]]
local CHARGED_MODEL = [[COALESCE((data->>'provider') || ':', '') || COALESCE(data->>'model', '')]]

function M.models(db, limit)
  return rows(db, [[SELECT model, COUNT(*) AS n, COALESCE(SUM(pt), 0)::int8 AS tin, COALESCE(SUM(ct), 0)::int8 AS tout,
    COALESCE(SUM(cached), 0)::int8 AS tcached FROM (SELECT ]] .. MODEL .. [[ AS model, prompt_tokens::int8 AS pt,
      completion_tokens::int8 AS ct, (data->>'cached_tokens')::int8 AS cached FROM turns
    UNION ALL SELECT ]] .. CHARGED_MODEL .. [[, (data->>'prompt_tokens')::int8, (data->>'completion_tokens')::int8,
      NULL::int8 ]] .. CHARGED .. [[) c
    GROUP BY 1 ORDER BY 1 LIMIT $1]], limit)
end

function M.costs(db, limit)
  local spent = costs.spent(db.dialect, "data")
  return rows(db, [[SELECT model, currency, SUM(micros)::int8 AS micros FROM (SELECT ]] .. MODEL .. [[ AS model,
      data->>'currency' AS currency, ]] .. spent .. [[ AS micros FROM turns WHERE data->>'cost' IS NOT NULL
    UNION ALL SELECT ]] .. CHARGED_MODEL .. [[, data->>'currency', ]] .. spent .. [[
      ]] .. CHARGED .. [[ AND data->>'cost' IS NOT NULL) c
    GROUP BY 1, 2 ORDER BY 1, 2 LIMIT $1]], limit)
end

-- latency_ms as the number the JSON holds (jsonb numbers come back as text: tonumber)
function M.model_latencies(db)
  local got = rows(db, [[SELECT ]] .. MODEL .. [[ AS model, (data->'latency_ms')::text AS ms FROM turns
    WHERE jsonb_typeof(data->'latency_ms') = 'number' ORDER BY id DESC LIMIT 10000]])
  for _, r in ipairs(got) do r.ms = math.tointeger(tonumber(r.ms)) or tonumber(r.ms) end
  return got
end

function M.done_by_day(db, limit)
  return rows(db, [[SELECT day, type, n FROM (SELECT to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, c.type AS type,
        COUNT(*) AS n FROM events e JOIN cards c ON c.id = e.card_id
      WHERE e.kind = 'transition' AND e.data->>'to' = 'done'
      GROUP BY day, c.type ORDER BY day DESC LIMIT $1) d ORDER BY day, type]], limit)
end

function M.card_durations(db)
  return rows(db, [[SELECT type, s FROM (SELECT c.type AS type, MAX(e.id) AS last,
        extract(epoch FROM MAX(e.at) FILTER (WHERE e.data->>'to' = 'done')
          - MIN(e.at) FILTER (WHERE e.data->>'to' = 'in_progress'))::float8 AS s
      FROM events e JOIN cards c ON c.id = e.card_id
      WHERE e.kind = 'transition' AND c.status = 'done' GROUP BY e.card_id, c.type) d
    WHERE s IS NOT NULL ORDER BY last DESC LIMIT 10000]])
end

function M.turn_durations(db)
  return rows(db, [[SELECT s FROM (SELECT MAX(id) AS last, extract(epoch FROM MAX(at) FILTER (WHERE kind = 'turn_end')
        - MIN(at) FILTER (WHERE kind = 'turn_begin'))::float8 AS s
      FROM events WHERE kind IN ('turn_begin', 'turn_end') GROUP BY run_id, card_id, data->>'turn') d
    WHERE s IS NOT NULL ORDER BY last DESC LIMIT 10000]])
end

function M.tool_outcomes(db, limit)
  return rows(db, [[SELECT tool, verdict, outcome, COUNT(*)::int8 AS n FROM (SELECT tool,
      CASE WHEN gate_code IS NOT NULL THEN 'allow' ELSE COALESCE(result->>'verdict', 'approved') END AS verdict,
      CASE WHEN ok IS NULL THEN 'pending' WHEN result->>'held' = 'true' THEN 'held'
        WHEN result->>'denied' = 'true' THEN 'refused' WHEN ok THEN 'ok' ELSE 'error' END AS outcome
      FROM tool_calls) d GROUP BY tool, verdict, outcome ORDER BY tool, verdict, outcome LIMIT $1]], limit)
end

return M
