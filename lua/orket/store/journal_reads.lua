-- orket.store.journal_reads: the engine's reads of a run's journal (events, turns, tool_calls)
-- as named operations, so orket.engine.recorded holds the rules and no SQL. Each is
-- op(db, ...) -> plain Lua values (JSON columns decoded); a failing statement raises.
-- Every read is per card: it walks the events_card index (card_id, id) and never the
-- whole run ("+run_id" keeps SQLite from choosing another index), so a step costs the
-- same on the thousandth card of a run as on the first.
-- Written once for both backends where only orket.store.dialect's pieces differ; the reads
-- inside JSON (json_extract against ->>) have a PostgreSQL twin (orket.store.pg.journal_reads).
local cjson = require "cjson.safe"
local dialect = require "orket.store.dialect"
local one = require("orket.store.backend").row
local costs = require "orket.store.costs"

local M = {}
local sql = dialect.statement

--- card_marks(db, run, card) -> marks, merge: what the engine reads of a card before each
--- of its turns, in one statement. marks: array of {id=, kind=, data=} of the card's
--- turn_begin and turn_end events in the run, oldest first (data decoded, {} when
--- unreadable); merge: as last_merge_mark(db, card)
function M.card_marks(db, run, card)
  return M.split_marks(assert(db:rows([[SELECT id, kind, data FROM events WHERE card_id = ?1
    AND ((+run_id = ?2 AND kind IN ('turn_begin', 'turn_end')) OR kind IN ('merge_conflict', 'merge_main'))
    ORDER BY id]], card, run)))
end

--- open_turn_cards(db, run, limit) -> array of the ids of the cards (sorted, at most limit) on
--- which a turn of the run began and did not end, and recorded a step or a model failure:
--- what a new turn would ask and run again. Read by the run's indexes, not its whole
--- journal: a turn's begin is written with its first step's record, its first model
--- failure or its end, never alone (orket.engine.run's begin_records), so the run's turns
--- rows and model_failure events name every card such a turn can be on, and each of those
--- is looked at by events_card. (A begin left alone by an older Orket recorded nothing to redo.)
function M.open_turn_cards(db, run, limit)
  local out = {}
  for i, r in ipairs(assert(db:rows([[SELECT c.card_id AS card FROM (SELECT card_id FROM turns WHERE run_id = ?1
      UNION SELECT card_id FROM events WHERE run_id = ?1 AND kind = 'model_failure') c
    WHERE c.card_id IS NOT NULL AND EXISTS (SELECT 1 FROM events b WHERE b.card_id = c.card_id AND +b.run_id = ?1
      AND b.kind = 'turn_begin' AND NOT EXISTS (SELECT 1 FROM events t WHERE t.card_id = b.card_id AND +t.run_id = ?1
        AND t.kind = 'turn_end' AND t.id > b.id AND json_extract(t.data, '$.turn') = json_extract(b.data, '$.turn')))
    ORDER BY c.card_id LIMIT ?2]], run, limit))) do
    out[i] = r.card
  end
  return out
end

--- last_retry(db, card) -> the id of the card's last "retry" event, 0 when none
function M.last_retry(db, card)
  local r = one(db, "SELECT max(id) AS id FROM events WHERE card_id = ? AND kind = 'retry'", card)
  return r and r.id or 0
end

--- recorded_step(db, run, card, turn, step) -> {id=, response=<raw JSON text>} | nil: the
--- first turns row of that step of the card's turn in the run. The card's "turn" events
--- name their turns rows (record_turn writes both in one transaction).
function M.recorded_step(db, run, card, turn, step)
  return one(db, [[SELECT t.id, t.response FROM events e CROSS JOIN turns t
    ON t.id = json_extract(e.data, '$.id')
    WHERE e.card_id = ?2 AND +e.run_id = ?1 AND e.kind = 'turn' AND t.turn = ?3
    AND json_extract(t.data, '$.step') = ?4 ORDER BY t.id LIMIT 1]], run, card, turn, step)
end

--- tool_call(db, turn_id, call_id) -> {id=, result=<raw JSON text or nil>} | nil
local TOOL_CALL = sql(function(d)
  return "SELECT id, " .. d.json("result") .. " FROM tool_calls WHERE turn_id = ? AND call_id = ? LIMIT 1"
end)
function M.tool_call(db, turn_id, call_id)
  return one(db, TOOL_CALL(db), turn_id, call_id)
end

--- run_tokens(db, run) -> prompt + completion tokens of every turn of the run, and of its
--- charged model failures
local RUN_TOKENS = sql(function(d)
  return "SELECT " .. d.integer("COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0)")
    .. " + (SELECT " .. d.integer("COALESCE(SUM(" .. costs.charged_tokens(d, "e.data") .. "), 0)")
    .. " FROM events e WHERE e.run_id = ? AND e.kind = 'model_failure') AS n FROM turns WHERE run_id = ?"
end)
function M.run_tokens(db, run)
  local r = one(db, RUN_TOKENS(db), run, run)
  return r and r.n or 0
end

--- run_tokens_since(db, run, turn, event) -> n, turn', event': prompt + completion tokens of
--- the run's turns after turns id `turn` and of its charged model failures after events id
--- `event`, with the newest ids read (the marks of the next read). Every process's rows, by
--- the run's indexes from the marks on: a worker's run budget reads what the run's other
--- workers spent before each step (ids become visible in order: docs/store.md).
local RUN_TOKENS_SINCE = sql(function(d)
  local t = " FROM turns WHERE run_id = ? AND id > ?"
  local f = " FROM events e WHERE e.run_id = ? AND e.kind = 'model_failure' AND e.id > ?"
  return "SELECT (SELECT " .. d.integer("COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0)") .. t .. ") AS nt, "
    .. "(SELECT COALESCE(MAX(id), 0)" .. t .. ") AS turn, "
    .. "(SELECT " .. d.integer("COALESCE(SUM(" .. costs.charged_tokens(d, "e.data") .. "), 0)") .. f .. ") AS nf, "
    .. "(SELECT COALESCE(MAX(e.id), 0)" .. f .. ") AS event"
end)
function M.run_tokens_since(db, run, turn, event)
  local r = one(db, RUN_TOKENS_SINCE(db), run, turn, run, turn, run, event, run, event)
  if not r then error("the run's tokens could not be read", 0) end
  return r.nt + r.nf, math.max(turn, r.turn), math.max(event, r.event)
end

--- card_tokens_since(db, run, card, mark) -> n, reset, mark': prompt + completion tokens of
--- the card's turns in the run and of its charged model failures journaled after events id
--- `mark` and after the card's last "retry" event, with the newest id read (the next read's
--- mark). reset: a retry came after `mark`, so n is the card's whole count since it, not an
--- addition. From 0 it is the card's count since its last retry; from a mark, what any
--- process recorded since, by the events_card index from the mark on (a worker's card
--- budget reads what the run's other workers spent on the card before each step).
local CARD_TOKENS_SINCE = [[WITH r AS (SELECT COALESCE(MAX(id), 0) AS retry FROM events
    WHERE card_id = ?2 AND kind = 'retry' AND id > ?3),
  s AS (SELECT e.id, e.kind, e.data FROM events e WHERE e.card_id = ?2 AND +e.run_id = ?1
    AND +e.kind IN ('turn', 'model_failure') AND e.id > MAX(?3, (SELECT retry FROM r)))
  SELECT (SELECT retry FROM r) AS retry,
    (SELECT COALESCE(SUM(COALESCE(t.prompt_tokens, 0) + COALESCE(t.completion_tokens, 0)), 0)
      FROM s CROSS JOIN turns t ON t.id = json_extract(s.data, '$.id') WHERE s.kind = 'turn')
    + (SELECT COALESCE(SUM(]] .. costs.charged_tokens(dialect.sqlite, "s.data") .. [[), 0) FROM s
      WHERE s.kind = 'model_failure') AS n,
    (SELECT COALESCE(MAX(id), 0) FROM s) AS mark]]
function M.card_tokens_since(db, run, card, mark)
  local r = one(db, CARD_TOKENS_SINCE, run, card, mark)
  if not r then error("the card's tokens could not be read", 0) end
  return r.n, r.retry > 0, math.max(mark, r.retry, r.mark)
end

--- turns_called_tools(db, run, card, review, after) -> true when one of the card's review
--- turns (review true) or work turns (false) in the run, journaled after event id `after`,
--- has a tool call or a gate decision
function M.turns_called_tools(db, run, card, review, after)
  return one(db, [[SELECT 1 AS x FROM events e CROSS JOIN turns t ON t.id = json_extract(e.data, '$.id')
    WHERE e.card_id = ?2 AND +e.run_id = ?1 AND e.kind = 'turn' AND e.id > ?3
    AND (json_extract(t.data, '$.phase') = 'review') = ?4
    AND (EXISTS (SELECT 1 FROM tool_calls c WHERE c.turn_id = t.id)
      OR EXISTS (SELECT 1 FROM gate_decisions g WHERE g.turn_id = t.id)) LIMIT 1]], run, card, after, review and 1 or 0) ~= nil
end

--- event_data(db, run, card, kind) -> array of the data (decoded, {} when unreadable) of
--- the card's events of that kind in the run, oldest first
local EVENT_DATA = sql(function(d)
  return "SELECT " .. d.json("data") .. " FROM events WHERE card_id = ? AND +run_id = ? AND kind = ? ORDER BY id"
end)
function M.event_data(db, run, card, kind)
  local out = {}
  for _, ev in ipairs(assert(db:rows(EVENT_DATA(db), card, run, kind))) do
    out[#out + 1] = cjson.decode(ev.data) or {}
  end
  return out
end

--- event_at(db, id) -> the time event id was journaled (ISO text, as the SQLite store keeps
--- times) | nil
function M.event_at(db, id)
  local r = one(db, "SELECT " .. db.dialect.time("at") .. " FROM events WHERE id = ?", id)
  return r and r.at
end

--- last_transition(db, card) -> {id=, from=, to=, data=, actor=, at=} of the card's last
--- transition event (data decoded, {} when unreadable) | nil
local LAST_TRANSITION = sql(function(d)
  return "SELECT id, actor, " .. d.time("at") .. ", " .. d.json("data")
    .. " FROM events WHERE card_id = ? AND kind = 'transition' ORDER BY id DESC LIMIT 1"
end)
function M.last_transition(db, card)
  local r = one(db, LAST_TRANSITION(db), card)
  if not r then return nil end
  local d = cjson.decode(r.data)
  d = type(d) == "table" and d or {}
  return { id = r.id, from = d.from, to = d.to, data = d, actor = r.actor, at = r.at }
end

--- last_handin(db, card) -> the id of the card's last transition out of in_progress, 0 when none
function M.last_handin(db, card)
  local r = one(db, [[SELECT max(id) AS id FROM events WHERE card_id = ? AND kind = 'transition'
    AND json_extract(data, '$.from') = 'in_progress']], card)
  return r and r.id or 0
end

--- run_moves(db, run) -> the transition events {at, card_id, actor, data (decoded, {}
--- when unreadable)} of a runs row, oldest first (raises on a store error): those tagged
--- with its id, and for a run from before version 8 (untagged_upto) the untagged ones in
--- its time window
function M.run_moves(db, run)
  local rows = assert(db:rows([[SELECT at, card_id, actor, data FROM events WHERE kind = 'transition'
      AND (run_id = ?1 OR (run_id IS NULL AND id <= ?2 AND at >= ?3 AND (?4 IS NULL OR at <= ?4)))
      ORDER BY id]], run.id, run.untagged_upto, run.started_at, run.ended_at))
  for _, m in ipairs(rows) do m.data = cjson.decode(m.data) or {} end
  return rows
end

--- model_exchanges(db, run) -> the run's "turn" events joined to their turns rows and its
--- "model_failure" events, in journal order: {kind, card_id, actor, data, seat, role, turn,
--- request, tdata} (raw JSON text; raises on a store error)
function M.model_exchanges(db, run)
  return assert(db:rows([[SELECT e.kind, e.card_id, e.actor, e.data, t.seat, t.role, t.turn,
      t.request, t.data AS tdata FROM events e LEFT JOIN turns t ON e.kind = 'turn' AND t.id = json_extract(e.data, '$.id')
      WHERE e.run_id = ? AND e.kind IN ('turn', 'model_failure') ORDER BY e.id]], run))
end

--- api_writes(db, after, limit[, actor[, key[, signs_of]]]) -> up to limit "api_write" events
--- after id `after` (of that actor alone, and made through that key alone, when given: a
--- person's key is not the actor, its person is, and its id is data.key; with signs_of, the
--- sign-ins and sign-outs of that actor alone, the others' left out in the query so that a
--- page still holds `limit` rows, and so are the directory's and the provider's changes,
--- actors ldap and oidc: a reader who is no server admin), oldest first: {id, at, card,
--- actor, data (decoded, {} when unreadable)}
function M.api_writes(db, after, limit, actor, key, signs_of)
  local rows = assert(db:rows([[SELECT id, at, card_id AS card, actor, data FROM events
    WHERE kind = 'api_write' AND id > ?1 AND (?2 = '' OR actor = ?2)
      AND (?4 = '' OR json_extract(data, '$.key') = ?4)
      AND (?5 = '' OR COALESCE(json_extract(data, '$.action'), '') NOT IN ('sign_in', 'sign_out') OR actor = ?5)
      AND (?5 = '' OR actor NOT IN ('ldap', 'oidc'))
      ORDER BY id LIMIT ?3]], after, actor or "", limit, key or "", signs_of or ""))
  for _, r in ipairs(rows) do r.data = cjson.decode(r.data) or {} end
  return rows
end

--- sign_ins(db, actor, after, limit) -> the api_write rows of actor's own sign-ins and
--- sign-outs (action sign_in, sign_out) after id `after`, oldest first, at most limit, data
--- decoded (GET /v1/session/audit)
function M.sign_ins(db, actor, after, limit)
  local rows = assert(db:rows([[SELECT id, at, card_id AS card, actor, data FROM events
    WHERE kind = 'api_write' AND actor = ?1 AND id > ?2
      AND json_extract(data, '$.action') IN ('sign_in', 'sign_out')
      ORDER BY id LIMIT ?3]], actor, after, limit))
  for _, r in ipairs(rows) do r.data = cjson.decode(r.data) or {} end
  return rows
end

--- latest_id(db) -> the newest event's id, 0 when the journal is empty
function M.latest_id(db)
  return assert(db:row("SELECT COALESCE(max(id), 0) AS id FROM events")).id
end

--- kinds_after(db, after) -> {id, kind, card_id} of every event after id `after`, oldest
--- first (what the ready order follows)
function M.kinds_after(db, after)
  return assert(db:rows("SELECT id, kind, card_id FROM events WHERE id > ? ORDER BY id", after))
end

--- order_events_after(db, after) -> as kinds_after, but only the events that move a ready
--- order (import, transition, create) and the newest event whatever its kind (so the
--- caller's mark passes the rest): a turn writes several the order skips, each a row
--- made and dropped every pass. (ORs, not IN: SQLite builds the IN list's table at each
--- run, dearer than the rows it saves.)
function M.order_events_after(db, after)
  return assert(db:rows([[SELECT id, kind, card_id FROM events WHERE id > ?1 AND (kind = 'transition'
    OR kind = 'create' OR kind = 'import' OR id = (SELECT max(id) FROM events)) ORDER BY id]], after))
end

-- the casts: PostgreSQL cannot tell a parameter's type from "? IS NULL". A card's entries
-- by their own statement: "? IS NULL OR card_id = ?" kept SQLite off events_card, and a
-- stream of one card walked the journal from `after` ("+run_id": no index to choose). Both
-- take the same arguments.
local ENTRIES_AFTER = sql(function(d)
  return "SELECT id, " .. d.time("at") .. ", kind, card_id, run_id, actor, " .. d.json("data") .. [[ FROM events
  WHERE id > ?1 AND (CAST(?2 AS BIGINT) IS NULL OR run_id = ?2) AND CAST(?3 AS TEXT) IS NULL ORDER BY id LIMIT ?4]]
end)
local CARD_ENTRIES_AFTER = sql(function(d)
  return "SELECT id, " .. d.time("at") .. ", kind, card_id, run_id, actor, " .. d.json("data") .. [[ FROM events
  WHERE card_id = ?3 AND id > ?1 AND (CAST(?2 AS BIGINT) IS NULL OR +run_id = ?2) ORDER BY id LIMIT ?4]]
end)

--- entries_after(db, after, run, card, limit) -> up to limit events after id `after`,
--- oldest first, of run `run` and card `card` (nil: any): {id, at, kind, card_id, run_id,
--- actor, data (the JSON text as stored)}
function M.entries_after(db, after, run, card, limit)
  if card ~= nil then return assert(db:rows(CARD_ENTRIES_AFTER(db), after, run, card, limit)) end
  return assert(db:rows(ENTRIES_AFTER(db), after, run, card, limit))
end

local ENTRIES_UPTO = sql(function(d)
  return "SELECT id, kind, actor, " .. d.json("data") .. " FROM events WHERE id <= ? ORDER BY id DESC LIMIT ?"
end)

--- entries_upto(db, upto, limit) -> up to limit events at or before id `upto`, newest
--- first: {id, kind, actor, data (the JSON text as stored)}
function M.entries_upto(db, upto, limit)
  return assert(db:rows(ENTRIES_UPTO(db), upto, limit))
end

--- card_event_data(db, card, kind) -> array of the data (decoded, {} when unreadable or
--- not an object) of the card's events of that kind in any run, oldest first
local CARD_EVENT_DATA = sql(function(d)
  return "SELECT " .. d.json("data") .. " FROM events WHERE card_id = ? AND kind = ? ORDER BY id"
end)
function M.card_event_data(db, card, kind)
  local out = {}
  for i, ev in ipairs(assert(db:rows(CARD_EVENT_DATA(db), card, kind))) do
    local d = cjson.decode(ev.data or "null")
    out[i] = type(d) == "table" and d or {}
  end
  return out
end

--- last_cancel(db, card) -> {actor=, note=} of the card's last move to canceled | nil
function M.last_cancel(db, card)
  return one(db, [[SELECT actor, json_extract(data, '$.note') AS note FROM events WHERE card_id = ?
    AND kind = 'transition' AND json_extract(data, '$.to') = 'canceled' ORDER BY id DESC LIMIT 1]], card)
end

--- last_merge_mark(db, card) -> the kind of the card's last "merge_conflict" or
--- "merge_main" event | nil
function M.last_merge_mark(db, card)
  local r = one(db, [[SELECT kind FROM events WHERE card_id = ? AND kind IN ('merge_conflict', 'merge_main')
    ORDER BY id DESC LIMIT 1]], card)
  return r and r.kind
end

--- commits(db, card) -> the card's "commit" events, oldest first: {run_id, actor, data
--- (decoded, {} when unreadable)}
local COMMITS = sql(function(d)
  return "SELECT run_id, actor, " .. d.json("data") .. " FROM events WHERE card_id = ? AND kind = 'commit' ORDER BY id"
end)
function M.commits(db, card)
  local rows = assert(db:rows(COMMITS(db), card))
  for _, r in ipairs(rows) do r.data = cjson.decode(r.data) or {} end
  return rows
end

--- main_merges(db, card) -> set of the commits by which main was merged into the card's
--- branch (its "merge_main" events' ids): orket.views.change tells them from a merge of the
--- remote's copy of the branch, whose work is the card's
local MAIN_MERGES = sql(function(d)
  return "SELECT " .. d.json("data") .. " FROM events WHERE card_id = ? AND kind = 'merge_main'"
end)
function M.main_merges(db, card)
  local out = {}
  for _, r in ipairs(assert(db:rows(MAIN_MERGES(db), card))) do
    local d = cjson.decode(r.data)
    if type(d) == "table" and type(d.id) == "string" then out[d.id] = true end
  end
  return out
end

--- last_commit(db, card) -> the data (decoded, {} when unreadable) of the card's newest
--- "commit" event | nil: what orket.actions.finish looks for in its branch or main
local LAST_COMMIT = sql(function(d)
  return "SELECT " .. d.json("data") .. " FROM events WHERE card_id = ? AND kind = 'commit' ORDER BY id DESC LIMIT 1"
end)
function M.last_commit(db, card)
  local c = one(db, LAST_COMMIT(db), card)
  return c and (cjson.decode(c.data) or {})
end

--- last_merge(db, card) -> the data (decoded, {} when unreadable) of the card's last
--- "merge" event | nil
local LAST_MERGE = sql(function(d)
  return "SELECT " .. d.json("data") .. " FROM events WHERE card_id = ? AND kind = 'merge' ORDER BY id DESC LIMIT 1"
end)
function M.last_merge(db, card)
  local m = one(db, LAST_MERGE(db), card)
  return m and (cjson.decode(m.data) or {})
end

--- merges(db, limit) -> the newest "merge" events of any card, newest first, at most limit:
--- {{card_id=, data (decoded, {} when unreadable)}...}. Not per card: a run's start reads the
--- newest one, and more only when main lacks it (orket.engine.gitwork.lost_merges). Only the
--- journal's last MERGES_SCAN events are looked at, walked back from its end by id (no index
--- holds merges alone), stopping at the first merge: a journal of many events and no recent
--- merge costs at most that walk at a run's start, never the whole journal.
M.MERGES_SCAN = 50000
local MERGES = sql(function(d)
  return "SELECT card_id, " .. d.json("data") .. " FROM events WHERE kind = 'merge' AND id > (SELECT max(id) FROM events) - "
    .. M.MERGES_SCAN .. " ORDER BY id DESC LIMIT ?"
end)
function M.merges(db, limit)
  local rows = assert(db:rows(MERGES(db), limit))
  for _, r in ipairs(rows) do r.data = cjson.decode(r.data) or {} end
  return rows
end

--- turn_calls(db, run, card, lo, hi, seen, limit) -> array of {id, turn, tool, alen, args, ok,
--- error_code, refused}: the tool calls of the card's turns lo..hi in the run, oldest first, at
--- most limit; per card by the events_card index, as the reads above (a run of many cards is
--- not walked). args: the arguments' first `seen` bytes (alen their length: a write's whole
--- content is not read). refused: the verdict of the gate's refusal the failed call's result
--- records (execute's {denied = true, verdict = ...}): neither gate_code nor error_code tells
--- it, as a call a person approved has no gate_code and, failing in its tool, a tool's code.
--- Only a failed call's result is read. (orket.engine.recorded's spent_calls: at a budget's stop)
function M.turn_calls(db, run, card, lo, hi, seen, limit)
  return assert(db:rows([[SELECT c.id, t.turn, c.tool, length(c.arguments) AS alen, substr(c.arguments, 1, ?5) AS args,
    c.ok, c.error_code, CASE WHEN c.ok = 0 AND json_extract(c.result, '$.denied') = 1
      THEN json_extract(c.result, '$.verdict') END AS refused
    FROM events e CROSS JOIN turns t ON t.id = json_extract(e.data, '$.id')
    CROSS JOIN tool_calls c ON c.turn_id = t.id
    WHERE e.card_id = ?1 AND +e.run_id = ?2 AND e.kind = 'turn' AND t.turn >= ?3 AND t.turn <= ?4
    ORDER BY c.id LIMIT ?6]], card, run, lo, hi, seen, limit))
end

local ops = require("orket.store.backend").twin("journal_reads", M)

--- split_marks(rows) -> marks, merge: card_marks' rows ({id, kind, data as JSON text},
--- oldest first) as it returns them; both backends' card_marks end with it (a function
--- of rows, not of a store, so it is not dispatched)
function ops.split_marks(rows)
  local marks, merge = {}, nil
  for _, ev in ipairs(rows) do
    if ev.kind == "merge_conflict" or ev.kind == "merge_main" then
      merge = ev.kind
    else
      ev.data = cjson.decode(ev.data) or {}
      marks[#marks + 1] = ev
    end
  end
  return marks, merge
end
M.split_marks = ops.split_marks

return ops
