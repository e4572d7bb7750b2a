-- orket.store.pg.metrics: orket.store.metrics' operations on PostgreSQL (same names and
-- shapes: sums as integers).
local costs = require "orket.store.costs"
local backend = require "orket.store.backend"

local M = {}

-- a failed read raises the store's message, as orket.store.metrics' reads do
local rows = backend.rows

-- the span's ids, and the histograms' counting (bucketed): orket.store.metrics' parts,
-- lazy: orket.store.metrics loads this module (backend.twin) before it has returned
local function parts() return require("orket.store.metrics").parts end
local function range(...) return parts().range(...) end
local function bucketed(...) return parts().bucketed(...) end

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
function M.model_latencies(db, span, buckets, limit)
  local lo, hi = range(span, "turn")
  local from = " FROM turns WHERE id > $1 AND id <= $2 AND jsonb_typeof(data->'latency_ms') = 'number'"
  if buckets then
    return rows(db, bucketed("SELECT " .. MODEL .. " AS model, (data->>'latency_ms')::float8 / 1000.0 AS s" .. from,
      "model, ", buckets) .. " ORDER BY model, b LIMIT $3", lo, hi, limit * (#buckets + 1))
  end
  local got = rows(db, "SELECT " .. MODEL .. " AS model, (data->'latency_ms')::text AS ms" .. from .. " ORDER BY id DESC",
    lo, hi)
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

-- orket.store.metrics' CARD_START: the card's first move to in_progress, less its turn's lead
local CARD_START = [[(SELECT x.at - COALESCE((SELECT CASE WHEN b.at = x.at THEN (b.data->>'lead_ms')::float8 END
      FROM events b WHERE b.card_id = x.card_id AND b.id > x.id AND b.kind = 'turn_begin' ORDER BY b.id LIMIT 1), 0)
      * interval '1 millisecond'
    FROM events x WHERE x.card_id = e.card_id AND x.kind = 'transition' AND x.data->>'to' = 'in_progress'
    ORDER BY x.id LIMIT 1)]]

function M.card_durations(db, span, buckets)
  local lo, hi = range(span, "event")
  local inner = [[SELECT c.type AS type, extract(epoch FROM e.at - ]] .. CARD_START .. [[)::float8 AS s
      FROM events e JOIN cards c ON c.id = e.card_id
      WHERE e.id > $1 AND e.id <= $2 AND e.kind = 'transition' AND e.data->>'to' = 'done']]
  if buckets then return rows(db, bucketed(inner, "type, ", buckets), lo, hi) end
  return parts().timed(rows(db, inner, lo, hi))
end

function M.turn_durations(db, span, buckets)
  local lo, hi = range(span, "event")
  local inner = [[SELECT extract(epoch FROM e.at - (SELECT b.at
          - COALESCE((b.data->>'lead_ms')::float8, 0) * interval '1 millisecond' FROM events b
        WHERE b.card_id = e.card_id AND b.id < e.id AND b.run_id = e.run_id AND b.kind = 'turn_begin'
          AND b.data->>'turn' = e.data->>'turn' ORDER BY b.id DESC LIMIT 1))::float8 AS s
      FROM events e WHERE e.id > $1 AND e.id <= $2 AND e.kind = 'turn_end']]
  if buckets then return rows(db, bucketed(inner, "", buckets), lo, hi) end
  return parts().timed(rows(db, inner, lo, hi))
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
