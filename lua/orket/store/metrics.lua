-- orket.store.metrics: the aggregate reads /metrics makes at scrape time (orket.serve.metrics),
-- as named operations op(db, ...) -> arrays of rows or counts. `limit` bounds the label
-- values a family can get from the store. A read that fails raises the store's own message
-- (orket.store.backend's rows and row), which the scrape's 503 logs as its note.
-- The counters' and histograms' reads take a span: the ids of each table they read, after
-- span.<t>0 up to span.<t>1 (t: turn, event, call, decision, violation; heads names them),
-- so that a scrape reads only the rows written since the last one (orket.serve.metrics
-- keeps the sums and the buckets: a Prometheus histogram never goes down); without a span
-- they read the whole table.
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

-- buckets' SQL: the index of the first of buckets (upper bounds, ascending) that holds x,
-- 0 when none does (+Inf's alone). The bounds are the server's constants, not input
local function bucket_of(x, buckets)
  local out = { "CASE" }
  for i, le in ipairs(buckets) do out[#out + 1] = string.format(" WHEN %s <= %.17g THEN %d", x, le, i) end
  return table.concat(out) .. " ELSE 0 END"
end

-- The rows of inner (keys..., s) counted into buckets: {keys..., b (bucket_of), n, sum}, an s
-- below 0 counted as 0 (clocks of two hosts), rows without s left out. keys: "k1, k2, " or ""
local function bucketed(inner, keys, buckets)
  return "SELECT " .. keys .. "b, COUNT(*) AS n, SUM(s) AS sum FROM (SELECT " .. keys .. bucket_of("s", buckets)
    .. " AS b, s FROM (SELECT " .. keys .. "CASE WHEN s < 0 THEN 0.0 ELSE s END AS s FROM (" .. inner
    .. ") i WHERE s IS NOT NULL) j) h GROUP BY " .. keys .. "b"
end
-- for orket.store.pg.metrics (a table: the module's functions are each an operation on a db)
M.parts = { range = range, bucketed = bucketed }

--- model_latencies(db[, span[, buckets, limit]]) -> {model ('' when none), ms} of the span's
--- turns whose data records latency_ms; with buckets, counted: {model, b, n, sum (seconds)}
--- for the first `limit` models by name (each whole)
function M.model_latencies(db, span, buckets, limit)
  local lo, hi = range(span, "turn")
  local from = " FROM turns WHERE id > ?1 AND id <= ?2 AND json_extract(data, '$.latency_ms') IS NOT NULL"
  if not buckets then
    return rows(db, "SELECT " .. MODEL .. " AS model, json_extract(data, '$.latency_ms') AS ms" .. from .. " ORDER BY id DESC",
      lo, hi)
  end
  return rows(db, bucketed("SELECT " .. MODEL .. " AS model, json_extract(data, '$.latency_ms') / 1000.0 AS s" .. from,
    "model, ", buckets) .. " ORDER BY model, b LIMIT ?3", lo, hi, limit * (#buckets + 1))
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

-- rows without their s (a card or turn with no start): left out in Lua, as a condition on
-- s in SQL would run its lookups twice
local function timed(got)
  local out = {}
  for _, r in ipairs(got) do if r.s ~= nil then out[#out + 1] = r end end
  return out
end
M.parts.timed = timed

-- Where a card's time starts: its first move to in_progress, less the lead (lead_ms) of the
-- turn_begin written with it (the card's next one, at the same time: one transaction). A
-- turn's begin is written with its first commit, after its first model call
-- (orket.engine.run's begin_records); lead_ms is how long before that the turn began.
local CARD_START = [[(SELECT julianday(x.at) - COALESCE((SELECT CASE WHEN b.at = x.at THEN json_extract(b.data, '$.lead_ms') END
      FROM events b WHERE b.card_id = x.card_id AND b.id > x.id AND b.kind = 'turn_begin' ORDER BY b.id LIMIT 1), 0)
      / 86400000.0
    FROM events x WHERE x.card_id = e.card_id AND x.kind = 'transition'
      AND json_extract(x.data, '$.to') = 'in_progress' ORDER BY x.id LIMIT 1)]]

--- card_durations(db[, span[, buckets]]) -> {type, s}: of each move to done in the span, the
--- seconds from its card's start (CARD_START) to it (each found by the card's index); with
--- buckets, counted: {type, b, n, sum}. A move, not a card now done: archiving a done card
--- takes nothing back
function M.card_durations(db, span, buckets)
  local lo, hi = range(span, "event")
  local inner = [[SELECT c.type AS type, (julianday(e.at) - ]] .. CARD_START .. [[) * 86400.0 AS s
      FROM events e JOIN cards c ON c.id = e.card_id
      WHERE e.id > ?1 AND e.id <= ?2 AND e.kind = 'transition' AND json_extract(e.data, '$.to') = 'done']]
  if buckets then return rows(db, bucketed(inner, "type, ", buckets), lo, hi) end
  return timed(rows(db, inner, lo, hi))
end

--- turn_durations(db[, span[, buckets]]) -> {s}: of each turn_end in the span, the seconds
--- from its turn's begin: its turn_begin's time less its lead_ms (CARD_START's). A turn is
--- its run's: a retried card's next run numbers its turns from 1 again, so the card and the
--- number alone would join turns of two runs. A turn resumed (orket resume, a worker's
--- takeover) stays in its run and writes no begin again: its one begin is the nearest
--- before its end, found by the card's index walked back from the end (a card's journal
--- read from its start for each turn made a first scrape of 50,000 turns take 9 s).
--- With buckets, counted: {b, n, sum}
function M.turn_durations(db, span, buckets)
  local lo, hi = range(span, "event")
  local inner = [[SELECT (julianday(e.at) - (SELECT julianday(b.at)
          - COALESCE(json_extract(b.data, '$.lead_ms'), 0) / 86400000.0 FROM events b
        WHERE b.card_id = e.card_id AND b.id < e.id AND +b.run_id = e.run_id AND b.kind = 'turn_begin'
          AND json_extract(b.data, '$.turn') = json_extract(e.data, '$.turn') ORDER BY b.id DESC LIMIT 1)) * 86400.0 AS s
      FROM events e WHERE e.id > ?1 AND e.id <= ?2 AND e.kind = 'turn_end']]
  if buckets then return rows(db, bucketed(inner, "", buckets), lo, hi) end
  return timed(rows(db, inner, lo, hi))
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
