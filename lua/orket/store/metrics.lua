-- orket.store.metrics: the aggregate reads /metrics makes at scrape time (orket.serve.metrics),
-- as named operations op(db, ...) -> arrays of rows or counts. `limit` bounds the label
-- values a family can get from the store. A read that fails raises the store's own message
-- (orket.store.backend's rows and row), which the scrape's 503 logs as its note.
local costs = require "orket.store.costs"
local dialect = require "orket.store.dialect"
local backend = require "orket.store.backend"

local M = {}

local rows, row = backend.rows, backend.row

--- cards(db, limit) -> {type, status, n} per type and status
function M.cards(db, limit)
  return rows(db, "SELECT type, status, COUNT(*) AS n FROM cards GROUP BY type, status LIMIT ?", limit)
end

--- runs(db, limit) -> {status, n} per stored status
function M.runs(db, limit)
  return rows(db, "SELECT status, COUNT(*) AS n FROM runs GROUP BY status LIMIT ?", limit)
end

--- card_turns(db) -> distinct card turns worked (run, card, seat, turn)
function M.card_turns(db)
  return row(db, "SELECT COUNT(*) AS n FROM (SELECT DISTINCT run_id, card_id, seat, turn FROM turns)").n
end

-- A turn's model as "provider:model" (the provider its response names; the bare model for
-- a turn recorded without one)
local MODEL = [[COALESCE(json_extract(response, '$.provider') || ':', '') || COALESCE(model, '')]]

-- The calls answered whose answer's usage was refused and charged (orket.engine.spend.refused:
-- a model_failure event holding the charge), as every other sum counts them
-- (orket.store.costs): their model as "provider:model" as a turn's (a charge recorded before
-- the provider was kept apart holds "provider:model" as its model)
local CHARGED = [[FROM events WHERE kind = 'model_failure' AND json_extract(data, '$.prompt_tokens') IS NOT NULL]]
local CHARGED_MODEL = [[COALESCE(json_extract(data, '$.provider') || ':', '')
  || COALESCE(json_extract(data, '$.model'), '')]]

--- models(db, limit) -> {model ("provider:model"; '' when none), n (calls), tin, tout, tcached
--- (tokens)} by model, charged failures counted
function M.models(db, limit)
  return rows(db, [[SELECT model, COUNT(*) AS n, COALESCE(SUM(pt), 0) AS tin, COALESCE(SUM(ct), 0) AS tout,
    COALESCE(SUM(cached), 0) AS tcached FROM (SELECT ]] .. MODEL .. [[ AS model, prompt_tokens AS pt,
      completion_tokens AS ct, json_extract(data, '$.cached_tokens') AS cached FROM turns
    UNION ALL SELECT ]] .. CHARGED_MODEL .. [[, json_extract(data, '$.prompt_tokens'),
      json_extract(data, '$.completion_tokens'), NULL ]] .. CHARGED .. [[)
    GROUP BY 1 ORDER BY 1 LIMIT ?]], limit)
end

--- costs(db, limit) -> {model, currency, micros} by model and currency: the calls with a
--- cost (docs/cost.md), charged failures counted, a cost below 0 counted as 0
--- (orket.store.costs.spent)
function M.costs(db, limit)
  local spent = costs.spent(db.dialect, "data")
  return rows(db, [[SELECT model, currency, SUM(micros) AS micros FROM (SELECT ]] .. MODEL .. [[ AS model,
      json_extract(data, '$.currency') AS currency, ]] .. spent .. [[ AS micros FROM turns
      WHERE json_extract(data, '$.cost') IS NOT NULL
    UNION ALL SELECT ]] .. CHARGED_MODEL .. [[, json_extract(data, '$.currency'), ]] .. spent .. [[
      ]] .. CHARGED .. [[ AND json_extract(data, '$.cost') IS NOT NULL)
    GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?]], limit)
end

--- model_latencies(db) -> {model ('' when none), ms} of the last 10,000 turns whose data
--- records latency_ms, newest first
function M.model_latencies(db)
  return rows(db, [[SELECT ]] .. MODEL .. [[ AS model, json_extract(data, '$.latency_ms') AS ms FROM turns
    WHERE json_extract(data, '$.latency_ms') IS NOT NULL ORDER BY id DESC LIMIT 10000]])
end

--- allowed_calls(db, limit) -> {tool, verdict = 'allow', n}: tool calls the gate allowed
--- outright (their code is kept in the call's row)
function M.allowed_calls(db, limit)
  return rows(db, [[SELECT tool, 'allow' AS verdict, COUNT(*) AS n FROM tool_calls WHERE gate_code IS NOT NULL
      GROUP BY tool LIMIT ?]], limit)
end

--- gate_decisions(db, limit) -> {tool ('' when none), verdict, n} of the recorded decisions
function M.gate_decisions(db, limit)
  return rows(db, [[SELECT COALESCE(tool, '') AS tool, verdict, COUNT(*) AS n FROM gate_decisions
      GROUP BY tool, verdict LIMIT ?]], limit)
end

--- violations(db, limit) -> {rule, n} by rule
function M.violations(db, limit)
  return rows(db, "SELECT rule, COUNT(*) AS n FROM violations GROUP BY rule ORDER BY rule LIMIT ?", limit)
end

local today_sql = dialect.statement(function(d) return "SELECT " .. d.today .. " AS day" end)

--- today(db) -> the store's UTC day now (YYYY-MM-DD): the day the day budgets count
--- (orket.store.costs), by the clock that dates the rows, not this process's
function M.today(db)
  return row(db, today_sql(db)).day
end

--- done_by_day(db, limit) -> {day (UTC, YYYY-MM-DD), type, n}: moves to done, the latest
--- `limit` (day, type) pairs
function M.done_by_day(db, limit)
  return rows(db, [[SELECT day, type, n FROM (SELECT substr(e.at, 1, 10) AS day, c.type AS type, COUNT(*) AS n
      FROM events e JOIN cards c ON c.id = e.card_id
      WHERE e.kind = 'transition' AND json_extract(e.data, '$.to') = 'done'
      GROUP BY day, c.type ORDER BY day DESC LIMIT ?) d ORDER BY day, type]], limit)
end

--- card_durations(db) -> {type, s}: of each card now done (the newest 10,000), the seconds
--- from its first move to in_progress to its last move to done
function M.card_durations(db)
  return rows(db, [[SELECT c.type AS type, (julianday(MAX(CASE WHEN json_extract(e.data, '$.to') = 'done' THEN e.at END))
        - julianday(MIN(CASE WHEN json_extract(e.data, '$.to') = 'in_progress' THEN e.at END))) * 86400.0 AS s
      FROM events e JOIN cards c ON c.id = e.card_id
      WHERE e.kind = 'transition' AND c.status = 'done'
      GROUP BY e.card_id, c.type HAVING s IS NOT NULL ORDER BY MAX(e.id) DESC LIMIT 10000]])
end

--- turn_durations(db) -> {s}: seconds from each ended turn's turn_begin to its turn_end
--- (the newest 10,000). A turn is its run's: a retried card's next run numbers its turns
--- from 1 again, so the card and the number alone would join turns of two runs. A turn
--- resumed (orket resume, a worker's takeover) stays in its run and counts from its first
--- begin
function M.turn_durations(db)
  return rows(db, [[SELECT (julianday(MAX(CASE WHEN kind = 'turn_end' THEN at END))
        - julianday(MIN(CASE WHEN kind = 'turn_begin' THEN at END))) * 86400.0 AS s
      FROM events WHERE kind IN ('turn_begin', 'turn_end')
      GROUP BY run_id, card_id, json_extract(data, '$.turn') HAVING s IS NOT NULL ORDER BY MAX(id) DESC LIMIT 10000]])
end

--- tool_outcomes(db, limit) -> {tool, verdict, outcome, n}: every tool call by the gate's
--- verdict (allow; approved: allowed by a developer's approval; deny; ask) and what came of
--- it (ok, error, refused: denied or not approved, held: waiting for approval, pending: its
--- effect started, no result yet)
function M.tool_outcomes(db, limit)
  return rows(db, [[SELECT tool,
      CASE WHEN gate_code IS NOT NULL THEN 'allow' ELSE COALESCE(json_extract(result, '$.verdict'), 'approved') END AS verdict,
      CASE WHEN ok IS NULL THEN 'pending' WHEN json_extract(result, '$.held') THEN 'held'
        WHEN json_extract(result, '$.denied') THEN 'refused' WHEN ok THEN 'ok' ELSE 'error' END AS outcome,
      COUNT(*) AS n FROM tool_calls GROUP BY tool, verdict, outcome ORDER BY tool, verdict, outcome LIMIT ?]], limit)
end

--- approvals_waiting(db) -> tool calls held for a developer's decision
function M.approvals_waiting(db)
  return row(db, "SELECT COUNT(*) AS n FROM approvals WHERE decision IS NULL").n
end

return require("orket.store.backend").twin("metrics", M)
