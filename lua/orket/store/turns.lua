-- orket.store.turns: reads of the recorded model exchanges (turns) and tool calls as named
-- operations op(db, ...) -> plain Lua values (JSON columns as stored text, as recorded).
-- step_response reads inside the JSON, which PostgreSQL does its own way (orket.store.pg.turns);
-- the rest is written once for both backends (orket.store.dialect).
local M = {}

--- get(db, id) -> the turns row (every column) | nil
function M.get(db, id)
  local d = db.dialect
  return db:row("SELECT id, run_id, card_id, seat, role, turn, model, " .. d.json("request") .. ", "
    .. d.json("response") .. ", prompt_tokens, completion_tokens, " .. d.time("created_at") .. ", " .. d.json("data")
    .. " FROM turns WHERE id = ?", id)
end

--- count(db, run) -> the run's turns rows (one per model response)
function M.count(db, run)
  return db:row("SELECT count(*) AS n FROM turns WHERE run_id = ?", run).n
end

--- step_response(db, run, card, seat, turn, step) -> the recorded response text of that
--- step | nil (no such step, or no response)
function M.step_response(db, run, card, seat, turn, step)
  local row = db:row([[SELECT response FROM turns WHERE run_id = ? AND card_id = ? AND seat = ? AND turn = ?
    AND json_extract(data, '$.step') = ? ORDER BY id LIMIT 1]], run, card, seat, turn, step)
  return row and row.response or nil
end

--- tool_call_result(db, id) -> the tool call's result text | nil
function M.tool_call_result(db, id)
  local t = db:row("SELECT " .. db.dialect.json("result") .. " FROM tool_calls WHERE id = ?", id)
  return t and t.result
end

return require("orket.store.backend").twin("turns", M)
