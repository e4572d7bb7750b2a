-- orket.engine.journal: what a run has already done, read back from the store so a resumed
-- run repeats nothing: the open turn of a card, a recorded model step, a recorded tool call.
-- Writes go through orket.store's record_* API and db:event (one transaction each).
local cjson = require "cjson.safe"

local M = {}

--- turns(db, run, card) -> array of {turn=, phase=, seat=, role=, open=bool, outcome=}
function M.turns(db, run, card)
  local list, by_n = {}, {}
  for _, ev in ipairs(db:events { run = run, card = card }) do
    if ev.kind == "turn_begin" then
      local t = { turn = ev.data.turn, phase = ev.data.phase, seat = ev.data.seat, role = ev.data.role, open = true }
      list[#list + 1] = t
      by_n[t.turn] = t
    elseif ev.kind == "turn_end" and by_n[ev.data.turn] then
      by_n[ev.data.turn].open = false
      by_n[ev.data.turn].outcome = ev.data.outcome
    end
  end
  return list
end

--- step(db, run, card, turn, step) -> {id=, response=} | nil
function M.step(db, run, card, turn, step)
  local row = db:row([[SELECT id, response FROM turns WHERE run_id = ? AND card_id = ? AND turn = ?
    AND json_extract(data, '$.step') = ? ORDER BY id LIMIT 1]], run, card, turn, step)
  if not row or not row.response then return nil end
  return { id = row.id, response = cjson.decode(row.response) }
end

--- tool_call(db, turn_id, call_key) -> {ok=, result=, error=, code=} | nil
function M.tool_call(db, turn_id, key)
  local row = db:row("SELECT result, ok, error_code FROM tool_calls WHERE turn_id = ? AND call_id = ? LIMIT 1",
    turn_id, key)
  if not row then return nil end
  local r = row.result and cjson.decode(row.result) or {}
  return r
end

--- tokens(db, run, card) -> prompt + completion tokens spent (card nil: the whole run)
function M.tokens(db, run, card)
  local row = db:row([[SELECT COALESCE(SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)), 0) AS n
    FROM turns WHERE run_id = ?1 AND (?2 IS NULL OR card_id = ?2)]], run, card)
  return row and row.n or 0
end

--- flag(db, run, card, kind, key) -> true when an event of kind with data.key exists
function M.flag(db, run, card, kind, key)
  for _, ev in ipairs(db:events { run = run, card = card }) do
    if ev.kind == kind and ev.data.key == key then return true end
  end
  return false
end

return M
