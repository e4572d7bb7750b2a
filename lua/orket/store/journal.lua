-- orket.store.journal: the engine's reads of a run's journal (events, turns, tool_calls)
-- as named operations, so orket.engine.journal holds the rules and no SQL. Each is
-- op(db, ...) -> plain Lua values (JSON columns decoded); a failing statement raises.
-- Every read is per card: it walks the events_card index (card_id, id) and never the
-- whole run ("+run_id" keeps SQLite from choosing another index), so a step costs the
-- same on the thousandth card of a run as on the first.
local cjson = require "cjson.safe"

local M = {}

--- turn_marks(db, run, card) -> array of {id=, kind=, data=} of the card's turn_begin and
--- turn_end events in the run, oldest first (data decoded, {} when unreadable)
function M.turn_marks(db, run, card)
  local rows = assert(db:rows([[SELECT id, kind, data FROM events WHERE card_id = ? AND +run_id = ?
    AND kind IN ('turn_begin', 'turn_end') ORDER BY id]], card, run))
  for _, ev in ipairs(rows) do ev.data = cjson.decode(ev.data) or {} end
  return rows
end

--- has_open_turn(db, run) -> true when a turn of the run began and did not end
function M.has_open_turn(db, run)
  return db:row([[SELECT 1 AS x FROM events b WHERE b.run_id = ?1 AND b.kind = 'turn_begin'
    AND NOT EXISTS (SELECT 1 FROM events t WHERE t.card_id = b.card_id AND t.run_id = ?1 AND t.kind = 'turn_end'
      AND t.id > b.id AND json_extract(t.data, '$.turn') = json_extract(b.data, '$.turn')) LIMIT 1]], run) ~= nil
end

--- last_retry(db, card) -> the id of the card's last "retry" event, 0 when none
function M.last_retry(db, card)
  local row = db:row("SELECT max(id) AS id FROM events WHERE card_id = ? AND kind = 'retry'", card)
  return row and row.id or 0
end

--- recorded_step(db, run, card, turn, step) -> {id=, response=<raw JSON text>} | nil: the
--- first turns row of that step of the card's turn in the run. The card's "turn" events
--- name their turns rows (record_turn writes both in one transaction).
function M.recorded_step(db, run, card, turn, step)
  return db:row([[SELECT t.id, t.response FROM events e CROSS JOIN turns t
    ON t.id = json_extract(e.data, '$.id')
    WHERE e.card_id = ?2 AND +e.run_id = ?1 AND e.kind = 'turn' AND t.turn = ?3
    AND json_extract(t.data, '$.step') = ?4 ORDER BY t.id LIMIT 1]], run, card, turn, step)
end

--- tool_call(db, turn_id, call_id) -> {id=, result=<raw JSON text or nil>} | nil
function M.tool_call(db, turn_id, call_id)
  return db:row("SELECT id, result FROM tool_calls WHERE turn_id = ? AND call_id = ? LIMIT 1", turn_id, call_id)
end

--- run_tokens(db, run) -> prompt + completion tokens of every turn of the run
function M.run_tokens(db, run)
  local row = db:row([[SELECT COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0) AS n
    FROM turns WHERE run_id = ?]], run)
  return row and row.n or 0
end

--- card_tokens(db, run, card, after) -> prompt + completion tokens of the card's turns in
--- the run journaled after event id `after`
function M.card_tokens(db, run, card, after)
  local row = db:row([[SELECT COALESCE(SUM(COALESCE(t.prompt_tokens, 0) + COALESCE(t.completion_tokens, 0)), 0) AS n
    FROM events e CROSS JOIN turns t ON t.id = json_extract(e.data, '$.id')
    WHERE e.card_id = ?2 AND +e.run_id = ?1 AND e.kind = 'turn' AND e.id > ?3]], run, card, after)
  return row and row.n or 0
end

--- turns_called_tools(db, run, card, review, after) -> true when one of the card's review
--- turns (review true) or work turns (false) in the run, journaled after event id `after`,
--- has a tool call or a gate decision
function M.turns_called_tools(db, run, card, review, after)
  return db:row([[SELECT 1 AS x FROM events e CROSS JOIN turns t ON t.id = json_extract(e.data, '$.id')
    WHERE e.card_id = ?2 AND +e.run_id = ?1 AND e.kind = 'turn' AND e.id > ?3
    AND (json_extract(t.data, '$.phase') = 'review') = ?4
    AND (EXISTS (SELECT 1 FROM tool_calls c WHERE c.turn_id = t.id)
      OR EXISTS (SELECT 1 FROM gate_decisions g WHERE g.turn_id = t.id)) LIMIT 1]], run, card, after, review and 1 or 0) ~= nil
end

--- event_data(db, run, card, kind) -> array of the data (decoded, {} when unreadable) of
--- the card's events of that kind in the run, oldest first
function M.event_data(db, run, card, kind)
  local out = {}
  for _, ev in ipairs(assert(db:rows("SELECT data FROM events WHERE card_id = ? AND +run_id = ? AND kind = ? ORDER BY id",
      card, run, kind))) do
    out[#out + 1] = cjson.decode(ev.data) or {}
  end
  return out
end

--- last_transition(db, card) -> {id=, from=, to=, data=} of the card's last transition
--- event (data decoded, {} when unreadable) | nil
function M.last_transition(db, card)
  local row = db:row([[SELECT id, data FROM events WHERE card_id = ? AND kind = 'transition'
    ORDER BY id DESC LIMIT 1]], card)
  if not row then return nil end
  local d = cjson.decode(row.data)
  d = type(d) == "table" and d or {}
  return { id = row.id, from = d.from, to = d.to, data = d }
end

--- last_handin(db, card) -> the id of the card's last transition out of in_progress, 0 when none
function M.last_handin(db, card)
  local r = db:row([[SELECT max(id) AS id FROM events WHERE card_id = ? AND kind = 'transition'
    AND json_extract(data, '$.from') = 'in_progress']], card)
  return r and r.id or 0
end

--- run_moves(db, run) -> the transition events {at, card_id, actor, data (decoded, {}
--- when unreadable)} of
--- a runs row, oldest first ({} on a store error): those tagged with its id, and for a run
--- from before version 8 (untagged_upto) the untagged ones in its time window
function M.run_moves(db, run)
  local rows = db:rows([[SELECT at, card_id, actor, data FROM events WHERE kind = 'transition'
      AND (run_id = ?1 OR (run_id IS NULL AND id <= ?2 AND at >= ?3 AND (?4 IS NULL OR at <= ?4)))
      ORDER BY id]], run.id, run.untagged_upto, run.started_at, run.ended_at) or {}
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

--- api_writes(db, after, limit) -> up to limit "api_write" events after id `after`, oldest
--- first: {id, at, card, actor, data (decoded, {} when unreadable)}
function M.api_writes(db, after, limit)
  local rows = db:rows([[SELECT id, at, card_id AS card, actor, data FROM events
    WHERE kind = 'api_write' AND id > ? ORDER BY id LIMIT ?]], after, limit)
  for _, r in ipairs(rows) do r.data = cjson.decode(r.data) or {} end
  return rows
end

return require("orket.store.backend").twin("journal", M)
