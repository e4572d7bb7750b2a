-- orket.store.metrics: the aggregate reads /metrics makes at scrape time (orket.serve.metrics),
-- as named operations op(db, ...) -> arrays of rows or counts. `limit` bounds the label
-- values a family can get from the store. A read that fails raises the store's own message
-- (orket.store.backend's rows and row), which the scrape's 503 logs as its note.
-- The counters' reads take a span: the ids of each table they read, after span.<t>0 up to
-- span.<t>1 (t: turn, event, call, decision, violation; heads names them), so that a
-- scrape reads only the rows written since the last one (orket.serve.metrics keeps the
-- sums); without a span they read the whole table. The histograms read the newest rows
-- alone, by id: a scrape's cost does not grow with the journal.
local costs = require "orket.store.costs"
local dialect = require "orket.store.dialect"
local backend = require "orket.store.backend"

local M = {}

local rows, row = backend.rows, backend.row

-- span's ids of table t (turn, event, call, decision, violation): after lo, up to hi
local function range(span, t)
  if not span then return 0, math.maxinteger end
  return span[t .. "0"] or 0, span[t .. "1"] or math.maxinteger
end

-- each table a span names, and its time column (a row's stamp)
M.TABLES = { { "turn", "turns", "created_at" }, { "event", "events", "at" }, { "call", "tool_calls", "created_at" },
  { "decision", "gate_decisions", "created_at" }, { "violation", "violations", "created_at" } }

local HEADS = dialect.statement(function(d)
  local cols = {}
  for i, t in ipairs(M.TABLES) do
    cols[#cols + 1] = "(SELECT COALESCE(MAX(id), 0) FROM " .. t[2] .. ") AS " .. t[1]
    cols[#cols + 1] = "(SELECT " .. d.time(t[3], "x") .. " FROM " .. t[2] .. " WHERE id = ?" .. i .. ") AS " .. t[1] .. "_at"
    cols[#cols + 1] = "(SELECT " .. d.time(t[3], "x") .. " FROM " .. t[2] .. " ORDER BY id DESC LIMIT 1) AS " .. t[1] .. "_last"
  end
  return "SELECT " .. table.concat(cols, ", ")
end)

--- heads(db, at) -> {turn=, event=, call=, decision=, violation=}: each table's newest id,
--- <t>_last: its time, and <t>_at: the time of the row at id at[t] (nil when none). Rows are never changed
--- under an id (events are append-only, the others never updated but a tool call's
--- result), so a row at a kept id with another time, or none, is another store (restored)
function M.heads(db, at)
  at = at or {}
  return row(db, HEADS(db), at.turn or 0, at.event or 0, at.call or 0, at.decision or 0, at.violation or 0)
end

--- cards(db, limit) -> {type, status, n} per type and status
function M.cards(db, limit)
  return rows(db, "SELECT type, status, COUNT(*) AS n FROM cards GROUP BY type, status LIMIT ?", limit)
end

--- runs(db, limit) -> {status, n} per stored status
function M.runs(db, limit)
  return rows(db, "SELECT status, COUNT(*) AS n FROM runs GROUP BY status LIMIT ?", limit)
end

--- card_turns(db[, span]) -> distinct card turns worked (run, card, seat, turn) whose first
--- turns row is in span (a card turn's later rows are not counted again): by the run's or
--- the card's index, each row of the span looking back for an earlier row of its turn
function M.card_turns(db, span)
  local lo, hi = range(span, "turn")
  if lo == 0 then
    return row(db, "SELECT COUNT(*) AS n FROM (SELECT DISTINCT run_id, card_id, seat, turn FROM turns WHERE id <= ?) d", hi).n
  end
  return row(db, [[SELECT COUNT(*) AS n FROM turns t WHERE t.id > ?1 AND t.id <= ?2
    AND NOT EXISTS (SELECT 1 FROM turns o WHERE o.card_id = t.card_id AND o.id < t.id AND o.run_id = t.run_id
      AND o.seat = t.seat AND o.turn = t.turn)
    AND NOT (t.card_id IS NULL AND EXISTS (SELECT 1 FROM turns o WHERE o.run_id = t.run_id AND o.id < t.id
      AND o.card_id IS NULL AND o.seat = t.seat AND o.turn = t.turn))]], lo, hi).n
end

-- A turn's model as "provider:model" (the provider its response names; the bare model for
-- a turn recorded without one)
local MODEL = [[COALESCE(json_extract(response, '$.provider') || ':', '') || COALESCE(model, '')]]

-- The calls answered whose answer's usage was refused and charged (orket.engine.spend.refused:
-- a model_failure event holding the charge), as every other sum counts them
-- (orket.store.costs): their model as "provider:model" as a turn's (a charge recorded before
-- the provider was kept apart holds "provider:model" as its model)
local CHARGED = [[FROM events WHERE id > ?4 AND id <= ?5 AND kind = 'model_failure'
  AND json_extract(data, '$.prompt_tokens') IS NOT NULL]]
local CHARGED_MODEL = [[COALESCE(json_extract(data, '$.provider') || ':', '')
  || COALESCE(json_extract(data, '$.model'), '')]]

--- models(db, limit[, span]) -> {model ("provider:model"; '' when none), n (calls), tin, tout,
--- tcached (tokens)} by model, charged failures counted (turns and events of the span)
function M.models(db, limit, span)
  local t0, t1 = range(span, "turn")
  local e0, e1 = range(span, "event")
  return rows(db, [[SELECT model, COUNT(*) AS n, COALESCE(SUM(pt), 0) AS tin, COALESCE(SUM(ct), 0) AS tout,
    COALESCE(SUM(cached), 0) AS tcached FROM (SELECT ]] .. MODEL .. [[ AS model, prompt_tokens AS pt,
      completion_tokens AS ct, json_extract(data, '$.cached_tokens') AS cached FROM turns WHERE id > ?2 AND id <= ?3
    UNION ALL SELECT ]] .. CHARGED_MODEL .. [[, json_extract(data, '$.prompt_tokens'),
      json_extract(data, '$.completion_tokens'), NULL ]] .. CHARGED .. [[)
    GROUP BY 1 ORDER BY 1 LIMIT ?1]], limit, t0, t1, e0, e1)
end

--- costs(db, limit[, span]) -> {model, currency, micros} by model and currency: the calls
--- with a cost (docs/cost.md), charged failures counted, a cost below 0 counted as 0
--- (orket.store.costs.spent)
function M.costs(db, limit, span)
  local spent = costs.spent(db.dialect, "data")
  local t0, t1 = range(span, "turn")
  local e0, e1 = range(span, "event")
  return rows(db, [[SELECT model, currency, SUM(micros) AS micros FROM (SELECT ]] .. MODEL .. [[ AS model,
      json_extract(data, '$.currency') AS currency, ]] .. spent .. [[ AS micros FROM turns
      WHERE id > ?2 AND id <= ?3 AND json_extract(data, '$.cost') IS NOT NULL
    UNION ALL SELECT ]] .. CHARGED_MODEL .. [[, json_extract(data, '$.currency'), ]] .. spent .. [[
      ]] .. CHARGED .. [[ AND json_extract(data, '$.cost') IS NOT NULL)
    GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?1]], limit, t0, t1, e0, e1)
end

-- the id of the table's row NEWEST rows from its end (parameter ?p: parts.NEWEST; 0 when it
-- has fewer): where a histogram's rows begin, found by walking the primary key from its end
local function newest(tbl, p)
  return "COALESCE((SELECT id FROM " .. tbl .. " ORDER BY id DESC LIMIT 1 OFFSET ?" .. p .. " - 1), 0)"
end
-- for orket.store.pg.metrics (a table: the module's functions are each an operation on a
-- db). NEWEST: how many of the newest rows a histogram reads (docs/serve.md: 10,000)
M.parts = { range = range, newest = newest, NEWEST = 10000 }

--- model_latencies(db) -> {model ('' when none), ms} of the newest 10,000 turns, those whose
--- data records latency_ms, newest first
function M.model_latencies(db)
  return rows(db, [[SELECT ]] .. MODEL .. [[ AS model, json_extract(data, '$.latency_ms') AS ms FROM turns
    WHERE id >= ]] .. newest("turns", 1) .. [[ AND json_extract(data, '$.latency_ms') IS NOT NULL ORDER BY id DESC]],
    M.parts.NEWEST)
end

--- allowed_calls(db, limit[, span]) -> {tool, verdict = 'allow', n}: tool calls the gate
--- allowed outright (their code is kept in the call's row, written with it)
function M.allowed_calls(db, limit, span)
  local lo, hi = range(span, "call")
  return rows(db, [[SELECT tool, 'allow' AS verdict, COUNT(*) AS n FROM tool_calls WHERE id > ?2 AND id <= ?3
      AND gate_code IS NOT NULL GROUP BY tool ORDER BY tool LIMIT ?1]], limit, lo, hi)
end

--- gate_decisions(db, limit[, span]) -> {tool ('' when none), verdict, n} of the recorded decisions
function M.gate_decisions(db, limit, span)
  local lo, hi = range(span, "decision")
  return rows(db, [[SELECT COALESCE(tool, '') AS tool, verdict, COUNT(*) AS n FROM gate_decisions
      WHERE id > ?2 AND id <= ?3 GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?1]], limit, lo, hi)
end

--- violations(db, limit[, span]) -> {rule, n} by rule
function M.violations(db, limit, span)
  local lo, hi = range(span, "violation")
  return rows(db, "SELECT rule, COUNT(*) AS n FROM violations WHERE id > ?2 AND id <= ?3 GROUP BY rule ORDER BY rule LIMIT ?1",
    limit, lo, hi)
end

local today_sql = dialect.statement(function(d) return "SELECT " .. d.today .. " AS day" end)

--- today(db) -> the store's UTC day now (YYYY-MM-DD): the day the day budgets count
--- (orket.store.costs), by the clock that dates the rows, not this process's
function M.today(db)
  return row(db, today_sql(db)).day
end

--- done_by_day(db, limit[, span]) -> {day (UTC, YYYY-MM-DD), type, n}: moves to done (the
--- span's events), the latest `limit` (day, type) pairs
function M.done_by_day(db, limit, span)
  local lo, hi = range(span, "event")
  return rows(db, [[SELECT day, type, n FROM (SELECT substr(e.at, 1, 10) AS day, c.type AS type, COUNT(*) AS n
      FROM events e JOIN cards c ON c.id = e.card_id
      WHERE e.id > ?2 AND e.id <= ?3 AND e.kind = 'transition' AND json_extract(e.data, '$.to') = 'done'
      GROUP BY day, c.type ORDER BY day DESC, type LIMIT ?1) d ORDER BY day, type]], limit, lo, hi)
end

-- the newest 10,000 moves to done, walked from the journal's end
local DONE_MOVES = [[SELECT id, card_id FROM events WHERE kind = 'transition'
  AND json_extract(data, '$.to') = 'done' ORDER BY id DESC LIMIT ?1]]

-- rows without their s (a card or turn with no start): left out in Lua, as a condition on
-- s in SQL would run its lookups twice
local function timed(got)
  local out = {}
  for _, r in ipairs(got) do if r.s ~= nil then out[#out + 1] = r end end
  return out
end
M.parts.timed = timed

--- card_durations(db) -> {type, s}: of each card now done whose last move to done is among
--- the journal's newest 10,000, the seconds from its first move to in_progress to its last
--- move to done (each found by the card's index from its end)
function M.card_durations(db)
  return timed(rows(db, [[SELECT c.type AS type,
        (julianday((SELECT x.at FROM events x WHERE x.card_id = d.card_id AND x.kind = 'transition'
          AND json_extract(x.data, '$.to') = 'done' ORDER BY x.id DESC LIMIT 1))
        - julianday((SELECT x.at FROM events x WHERE x.card_id = d.card_id AND x.kind = 'transition'
          AND json_extract(x.data, '$.to') = 'in_progress' ORDER BY x.id LIMIT 1))) * 86400.0 AS s
      FROM (SELECT DISTINCT card_id FROM (]] .. DONE_MOVES .. [[)) d JOIN cards c ON c.id = d.card_id
      WHERE c.status = 'done']], M.parts.NEWEST))
end

--- turn_durations(db) -> {s}: seconds from each ended turn's turn_begin to its turn_end
--- (those ended in the journal's newest 10,000 turn_end events). A turn is its run's: a
--- retried card's next run numbers its turns from 1 again, so the card and the number
--- alone would join turns of two runs. A turn resumed (orket resume, a worker's takeover)
--- stays in its run and counts from its first begin (found by the card's index)
function M.turn_durations(db)
  return timed(rows(db, [[SELECT (julianday(d.end_at)
        - julianday((SELECT b.at FROM events b WHERE b.card_id = d.card_id AND +b.run_id = d.run_id
          AND b.kind = 'turn_begin' AND json_extract(b.data, '$.turn') = d.turn ORDER BY b.id LIMIT 1))) * 86400.0 AS s
      FROM (SELECT run_id, card_id, json_extract(data, '$.turn') AS turn, MAX(at) AS end_at
        FROM (SELECT run_id, card_id, data, at FROM events WHERE kind = 'turn_end' ORDER BY id DESC LIMIT ?1)
        GROUP BY 1, 2, 3) d]], M.parts.NEWEST))
end

-- a tool call's verdict and outcome (tool_outcomes)
local VERDICT = [[CASE WHEN gate_code IS NOT NULL THEN 'allow' ELSE COALESCE(json_extract(result, '$.verdict'), 'approved') END]]
local OUTCOME = [[CASE WHEN ok IS NULL THEN 'pending' WHEN json_extract(result, '$.held') THEN 'held'
        WHEN json_extract(result, '$.denied') THEN 'refused' WHEN ok THEN 'ok' ELSE 'error' END]]

--- tool_outcomes(db, limit[, span]) -> {tool, verdict, outcome, n}: every tool call by the
--- gate's verdict (allow; approved: allowed by a developer's approval; deny; ask) and what
--- came of it (ok, error, refused: denied or not approved, held: waiting for approval,
--- pending: its effect started, no result yet). With a span, its calls that have their
--- result (never changed after: open_calls reads the others)
function M.tool_outcomes(db, limit, span)
  local lo, hi = range(span, "call")
  return rows(db, [[SELECT tool, ]] .. VERDICT .. [[ AS verdict, ]] .. OUTCOME .. [[ AS outcome,
      COUNT(*) AS n FROM tool_calls WHERE id > ?2 AND id <= ?3 AND (?4 = 0 OR result IS NOT NULL)
      GROUP BY tool, verdict, outcome ORDER BY tool, verdict, outcome LIMIT ?1]], limit, lo, hi, span and 1 or 0)
end

--- open_calls(db, span, ids) -> {id, tool, verdict, outcome, closed (1/0)}: the span's tool
--- calls without a result yet and the calls whose ids are listed (ids: a JSON array, the
--- ones open at the last scrape), each as it is now
function M.open_calls(db, span, ids)
  local lo, hi = range(span, "call")
  local cols = "SELECT id, tool, " .. VERDICT .. " AS verdict, " .. OUTCOME .. " AS outcome, result IS NOT NULL AS closed"
  -- a UNION, not an OR: each part by the primary key
  return rows(db, cols .. [[ FROM tool_calls WHERE id > ?1 AND id <= ?2 AND result IS NULL
    UNION ]] .. cols .. [[ FROM tool_calls WHERE id IN (SELECT value FROM json_each(?3)) ORDER BY 1]], lo, hi, ids)
end

--- approvals_waiting(db) -> tool calls held for a developer's decision: undecided requests of
--- unfinished cards (a canceled card's stays undecided, and nobody is to decide it:
--- orket.store.approvals.held_cards)
local APPROVALS_WAITING = "SELECT COUNT(*) AS n FROM approvals a JOIN cards c ON c.id = a.card_id "
  .. "WHERE a.decision IS NULL AND c.status NOT IN (" .. require("orket.store.approvals").FINISHED_SQL .. ")"
function M.approvals_waiting(db)
  return row(db, APPROVALS_WAITING).n
end

return require("orket.store.backend").twin("metrics", M)
