-- orket.engine.journal: what a run has already done, read back from the store so a resumed
-- run repeats nothing: the open turn of a card, a recorded model step, a recorded tool call.
-- Writes go through orket.store's record_* API and db:event (one transaction each).
-- Every read here is per card: it walks the events_card index (card_id, id) and never the
-- whole run ("+run_id" keeps SQLite from choosing events_run instead), so a step costs the
-- same on the thousandth card of a run as on the first.
local cjson = require "cjson.safe"

local M = {}

--- turns(db, run, card) -> array of {turn=, phase=, seat=, role=, open=bool, outcome=, id=}
--- (id: the turn_begin event's, to compare with last_retry)
function M.turns(db, run, card)
  local list, by_n = {}, {}
  local rows = assert(db:rows([[SELECT id, kind, data FROM events WHERE card_id = ? AND +run_id = ?
    AND kind IN ('turn_begin', 'turn_end') ORDER BY id]], card, run))
  for _, ev in ipairs(rows) do
    ev.data = cjson.decode(ev.data) or {}
    if ev.kind == "turn_begin" then
      local t = { turn = ev.data.turn, phase = ev.data.phase, seat = ev.data.seat, role = ev.data.role, open = true,
        id = ev.id }
      list[#list + 1] = t
      by_n[t.turn] = t
    elseif ev.kind == "turn_end" and by_n[ev.data.turn] then
      by_n[ev.data.turn].open = false
      by_n[ev.data.turn].outcome = ev.data.outcome
    end
  end
  return list
end

--- unfinished_overlap(db, board, target) -> {id=, target=, status=}, message | nil: the latest run
--- that did not finish (killed, or stopped by a signal or a Ctrl-C), works on the same cards
--- as target (the same card, or one holds the other), and left a turn half done (begun and
--- not ended): a new run would ask the model and run the tools of that turn again, where
--- `orket resume` goes on from its journal. A run stopped before any turn began left
--- nothing half done and is no obstacle. Ask it with the project's run lock held, so no
--- such run is still going. message: what to tell whoever wanted the new run.
function M.unfinished_overlap(db, board, target)
  local overlaps = require("orket.engine.claims").overlaps
  for _, r in ipairs(db:rows("SELECT id, target, status FROM runs WHERE status IN ('running', 'interrupted') ORDER BY id DESC") or {}) do
    if overlaps(board, target, r.target) then
      local open = db:row([[SELECT 1 AS x FROM events b WHERE b.run_id = ?1 AND b.kind = 'turn_begin'
        AND NOT EXISTS (SELECT 1 FROM events t WHERE t.card_id = b.card_id AND t.run_id = ?1 AND t.kind = 'turn_end'
          AND t.id > b.id AND json_extract(t.data, '$.turn') = json_extract(b.data, '$.turn')) LIMIT 1]], r.id)
      if open then
        return r, string.format("run %d (%s) did not finish (%s): continue it with 'orket resume %d'; "
          .. "a new run would redo the work its turns left half done", r.id, r.target,
          r.status == "running" and "it was killed" or "interrupted", r.id)
      end
    end
  end
  return nil
end

--- last_retry(db, card) -> the id of the card's last "retry" event (board:retry: a
--- developer put it back to ready), 0 when none: its turn and token budgets count from there.
function M.last_retry(db, card)
  local row = db:row("SELECT max(id) AS id FROM events WHERE card_id = ? AND kind = 'retry'", card)
  return row and row.id or 0
end

--- step(db, run, card, turn, step) -> {id=, response=} | nil
function M.step(db, run, card, turn, step)
  -- The card's "turn" events name its turns rows (record_turn writes both in one transaction).
  local row = db:row([[SELECT t.id, t.response FROM events e CROSS JOIN turns t
    ON t.id = json_extract(e.data, '$.id')
    WHERE e.card_id = ?2 AND +e.run_id = ?1 AND e.kind = 'turn' AND t.turn = ?3
    AND json_extract(t.data, '$.step') = ?4 ORDER BY t.id LIMIT 1]], run, card, turn, step)
  if not row or not row.response then return nil end
  return { id = row.id, response = cjson.decode(row.response) }
end

--- tool_call(db, turn_id, call_key) -> {ok=, result=, error=, code=} | nil [, started_id]
--- nil plus the row id: the call's intent was recorded (start_tool_call) but not its
--- result, so the process stopped while its effect ran.
function M.tool_call(db, turn_id, key)
  local row = db:row("SELECT id, result FROM tool_calls WHERE turn_id = ? AND call_id = ? LIMIT 1",
    turn_id, key)
  if not row then return nil end
  if row.result == nil then return nil, row.id end
  return cjson.decode(row.result) or {}
end

--- tokens(db, run, card [, after]) -> prompt + completion tokens spent (card nil: the whole
--- run, which reads every turn of the run: the engine keeps a running total instead of asking
--- per step); after: only turns journaled after that event id (last_retry)
function M.tokens(db, run, card, after)
  local row
  if card == nil then
    row = db:row([[SELECT COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0) AS n
      FROM turns WHERE run_id = ?]], run)
  else
    row = db:row([[SELECT COALESCE(SUM(COALESCE(t.prompt_tokens, 0) + COALESCE(t.completion_tokens, 0)), 0) AS n
      FROM events e CROSS JOIN turns t ON t.id = json_extract(e.data, '$.id')
      WHERE e.card_id = ?2 AND +e.run_id = ?1 AND e.kind = 'turn' AND e.id > ?3]], run, card, after or 0)
  end
  return row and row.n or 0
end

--- called_tools(db, run, card, review [, after]) -> true when the card's review turns
--- (review true) or work turns (false) in the run, journaled after event id `after`
--- (last_retry), made at least one tool call, allowed or denied: a model that never calls
--- one is not helped by more turns.
function M.called_tools(db, run, card, review, after)
  local row = db:row([[SELECT 1 AS x FROM events e CROSS JOIN turns t ON t.id = json_extract(e.data, '$.id')
    WHERE e.card_id = ?2 AND +e.run_id = ?1 AND e.kind = 'turn' AND e.id > ?3
    AND (json_extract(t.data, '$.phase') = 'review') = ?4
    AND (EXISTS (SELECT 1 FROM tool_calls c WHERE c.turn_id = t.id)
      OR EXISTS (SELECT 1 FROM gate_decisions g WHERE g.turn_id = t.id)) LIMIT 1]], run, card, after or 0, review and 1 or 0)
  return row ~= nil
end

--- flag(db, run, card, kind, key) -> true when an event of kind with data.key exists
function M.flag(db, run, card, kind, key)
  for _, ev in ipairs(assert(db:rows("SELECT data FROM events WHERE card_id = ? AND +run_id = ? AND kind = ? ORDER BY id",
      card, run, kind))) do
    local d = cjson.decode(ev.data) or {}
    if d.key == key then return true end
  end
  return false
end

return M
