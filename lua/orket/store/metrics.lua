-- orket.store.metrics: the aggregate reads /metrics makes at scrape time (orket.serve.metrics),
-- as named operations op(db, ...) -> arrays of rows or counts. `limit` bounds the label
-- values a family can get from the store.
local M = {}

--- cards(db, limit) -> {type, status, n} per type and status
function M.cards(db, limit)
  return db:rows("SELECT type, status, COUNT(*) AS n FROM cards GROUP BY type, status LIMIT ?", limit)
end

--- runs(db, limit) -> {status, n} per stored status
function M.runs(db, limit)
  return db:rows("SELECT status, COUNT(*) AS n FROM runs GROUP BY status LIMIT ?", limit)
end

--- card_turns(db) -> distinct card turns worked (run, card, seat, turn)
function M.card_turns(db)
  return db:row("SELECT COUNT(*) AS n FROM (SELECT DISTINCT run_id, card_id, seat, turn FROM turns)").n
end

--- models(db, limit) -> {model ('' when none), n (calls), tin, tout (tokens)} by model
function M.models(db, limit)
  return db:rows([[SELECT COALESCE(model, '') AS model, COUNT(*) AS n, COALESCE(SUM(prompt_tokens), 0) AS tin,
    COALESCE(SUM(completion_tokens), 0) AS tout FROM turns GROUP BY model ORDER BY model LIMIT ?]], limit)
end

--- model_latencies(db) -> {model ('' when none), ms} of the last 10,000 turns whose data
--- records latency_ms, newest first
function M.model_latencies(db)
  return db:rows([[SELECT COALESCE(model, '') AS model, json_extract(data, '$.latency_ms') AS ms FROM turns
    WHERE json_extract(data, '$.latency_ms') IS NOT NULL ORDER BY id DESC LIMIT 10000]])
end

--- allowed_calls(db, limit) -> {tool, verdict = 'allow', n}: tool calls the gate allowed
--- outright (their code is kept in the call's row)
function M.allowed_calls(db, limit)
  return db:rows([[SELECT tool, 'allow' AS verdict, COUNT(*) AS n FROM tool_calls WHERE gate_code IS NOT NULL
      GROUP BY tool LIMIT ?]], limit)
end

--- gate_decisions(db, limit) -> {tool ('' when none), verdict, n} of the recorded decisions
function M.gate_decisions(db, limit)
  return db:rows([[SELECT COALESCE(tool, '') AS tool, verdict, COUNT(*) AS n FROM gate_decisions
      GROUP BY tool, verdict LIMIT ?]], limit)
end

--- violations(db, limit) -> {rule, n} by rule
function M.violations(db, limit)
  return db:rows("SELECT rule, COUNT(*) AS n FROM violations GROUP BY rule ORDER BY rule LIMIT ?", limit)
end

--- approvals_waiting(db) -> tool calls held for a developer's decision
function M.approvals_waiting(db)
  return db:row("SELECT COUNT(*) AS n FROM approvals WHERE decision IS NULL").n
end

return require("orket.store.backend").twin("metrics", M)
