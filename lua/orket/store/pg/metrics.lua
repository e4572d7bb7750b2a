-- orket.store.pg.metrics: orket.store.metrics' operations on PostgreSQL (same names and
-- shapes: sums as integers).
local costs = require "orket.store.costs"
local backend = require "orket.store.backend"

local M = {}

-- a failed read raises the store's message, as orket.store.metrics' reads do
local rows = backend.rows

-- the span's ids, the newest rows' first id and their count: orket.store.metrics' parts,
-- lazy: orket.store.metrics loads this module (backend.twin) before it has returned
local function parts() return require("orket.store.metrics").parts end
local function range(...) return parts().range(...) end
local function newest(...) return parts().newest(...) end

local MODEL = [[COALESCE((response->>'provider') || ':', '') || COALESCE(model, '')]]

-- charged failures (orket.store.metrics' CHARGED), their model as a turn's (CHARGED_MODEL)
local CHARGED = [[FROM events WHERE id > $4 AND id <= $5 AND kind = 'model_failure' AND data->>'prompt_tokens' IS NOT NULL]]
local CHARGED_MODEL = [[COALESCE((data->>'provider') || ':', '') || COALESCE(data->>'model', '')]]

function M.models(db, limit, span)
  local t0, t1 = range(span, "turn")
  local e0, e1 = range(span, "event")
  return rows(db, [[SELECT model, COUNT(*) AS n, COALESCE(SUM(pt), 0)::int8 AS tin, COALESCE(SUM(ct), 0)::int8 AS tout,
    COALESCE(SUM(cached), 0)::int8 AS tcached FROM (SELECT ]] .. MODEL .. [[ AS model, prompt_tokens::int8 AS pt,
      completion_tokens::int8 AS ct, (data->>'cached_tokens')::int8 AS cached FROM turns WHERE id > $2 AND id <= $3
    UNION ALL SELECT ]] .. CHARGED_MODEL .. [[, (data->>'prompt_tokens')::int8, (data->>'completion_tokens')::int8,
      NULL::int8 ]] .. CHARGED .. [[) c
    GROUP BY 1 ORDER BY 1 LIMIT $1]], limit, t0, t1, e0, e1)
end

function M.costs(db, limit, span)
  local spent = costs.spent(db.dialect, "data")
  local t0, t1 = range(span, "turn")
  local e0, e1 = range(span, "event")
  return rows(db, [[SELECT model, currency, SUM(micros)::int8 AS micros FROM (SELECT ]] .. MODEL .. [[ AS model,
      data->>'currency' AS currency, ]] .. spent .. [[ AS micros FROM turns
      WHERE id > $2 AND id <= $3 AND data->>'cost' IS NOT NULL
    UNION ALL SELECT ]] .. CHARGED_MODEL .. [[, data->>'currency', ]] .. spent .. [[
      ]] .. CHARGED .. [[ AND data->>'cost' IS NOT NULL) c
    GROUP BY 1, 2 ORDER BY 1, 2 LIMIT $1]], limit, t0, t1, e0, e1)
end

-- latency_ms as the number the JSON holds (jsonb numbers come back as text: tonumber)
function M.model_latencies(db)
  local got = rows(db, [[SELECT ]] .. MODEL .. [[ AS model, (data->'latency_ms')::text AS ms FROM turns
    WHERE id >= ]] .. newest("turns", 1) .. [[ AND jsonb_typeof(data->'latency_ms') = 'number' ORDER BY id DESC]],
    parts().NEWEST)
  for _, r in ipairs(got) do r.ms = math.tointeger(tonumber(r.ms)) or tonumber(r.ms) end
  return got
end

function M.done_by_day(db, limit, span)
  local lo, hi = range(span, "event")
  return rows(db, [[SELECT day, type, n FROM (SELECT to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, c.type AS type,
        COUNT(*) AS n FROM events e JOIN cards c ON c.id = e.card_id
      WHERE e.id > $2 AND e.id <= $3 AND e.kind = 'transition' AND e.data->>'to' = 'done'
      GROUP BY day, c.type ORDER BY day DESC, type LIMIT $1) d ORDER BY day, type]], limit, lo, hi)
end

function M.card_durations(db)
  return parts().timed(rows(db, [[SELECT c.type AS type,
        extract(epoch FROM (SELECT x.at FROM events x WHERE x.card_id = d.card_id AND x.kind = 'transition'
          AND x.data->>'to' = 'done' ORDER BY x.id DESC LIMIT 1)
        - (SELECT x.at FROM events x WHERE x.card_id = d.card_id AND x.kind = 'transition'
          AND x.data->>'to' = 'in_progress' ORDER BY x.id LIMIT 1))::float8 AS s
      FROM (SELECT DISTINCT card_id FROM (SELECT card_id FROM events WHERE kind = 'transition' AND data->>'to' = 'done'
        ORDER BY id DESC LIMIT $1) m) d JOIN cards c ON c.id = d.card_id WHERE c.status = 'done']], parts().NEWEST))
end

function M.turn_durations(db)
  return parts().timed(rows(db, [[SELECT extract(epoch FROM d.end_at
        - (SELECT b.at FROM events b WHERE b.card_id = d.card_id AND b.run_id = d.run_id
          AND b.kind = 'turn_begin' AND b.data->>'turn' = d.turn ORDER BY b.id LIMIT 1))::float8 AS s
      FROM (SELECT run_id, card_id, data->>'turn' AS turn, MAX(at) AS end_at
        FROM (SELECT run_id, card_id, data, at FROM events WHERE kind = 'turn_end' ORDER BY id DESC LIMIT $1) e
        GROUP BY 1, 2, 3) d]], parts().NEWEST))
end

local VERDICT = [[CASE WHEN gate_code IS NOT NULL THEN 'allow' ELSE COALESCE(result->>'verdict', 'approved') END]]
local OUTCOME = [[CASE WHEN ok IS NULL THEN 'pending' WHEN result->>'held' = 'true' THEN 'held'
        WHEN result->>'denied' = 'true' THEN 'refused' WHEN ok THEN 'ok' ELSE 'error' END]]

function M.tool_outcomes(db, limit, span)
  local lo, hi = range(span, "call")
  return rows(db, [[SELECT tool, verdict, outcome, COUNT(*)::int8 AS n FROM (SELECT tool, ]] .. VERDICT .. [[ AS verdict,
      ]] .. OUTCOME .. [[ AS outcome FROM tool_calls WHERE id > $2 AND id <= $3 AND ($4 = 0 OR result IS NOT NULL)) d
    GROUP BY tool, verdict, outcome ORDER BY tool, verdict, outcome LIMIT $1]], limit, lo, hi, span and 1 or 0)
end

function M.open_calls(db, span, ids)
  local lo, hi = range(span, "call")
  return rows(db, "SELECT id, tool, " .. VERDICT .. " AS verdict, " .. OUTCOME .. [[ AS outcome,
      result IS NOT NULL AS closed FROM tool_calls WHERE (id > $1 AND id <= $2 AND result IS NULL)
      OR id IN (SELECT jsonb_array_elements_text($3::jsonb)::int8) ORDER BY id]], lo, hi, ids)
end

return M
