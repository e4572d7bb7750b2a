-- orket.store.pg.turns: orket.store.turns' operations on PostgreSQL (same names and
-- shapes: the recorded exchange as its JSON text, times as ISO text).
local iso = require("orket.store.pgdb").iso

local M = {}

function M.get(db, id)
  return db:row([[SELECT id, run_id, card_id, seat, role, turn, model, request::text AS request,
    response::text AS response, prompt_tokens, completion_tokens, ]] .. iso("created_at")
    .. ", data::text AS data FROM turns WHERE id = $1", id)
end

function M.count(db, run)
  return db:row("SELECT count(*) AS n FROM turns WHERE run_id = $1", run).n
end

function M.step_response(db, run, card, seat, turn, step)
  local row = db:row([[SELECT response::text AS response FROM turns WHERE run_id = $1 AND card_id = $2 AND seat = $3
    AND turn = $4 AND (data->>'step')::numeric = $5 ORDER BY id LIMIT 1]], run, card, seat, turn, step)
  return row and row.response or nil
end

function M.tool_call_result(db, id)
  local t = db:row("SELECT result::text AS result FROM tool_calls WHERE id = $1", id)
  return t and t.result
end

return M
