-- orket.store.pg.turns: orket.store.turns' operations on PostgreSQL (same names and
-- shapes: the recorded exchange as its JSON text, times as ISO text).
local M = {}

function M.step_response(db, run, card, seat, turn, step)
  local row = db:row([[SELECT response::text AS response FROM turns WHERE run_id = $1 AND card_id = $2 AND seat = $3
    AND turn = $4 AND (data->>'step')::numeric = $5 ORDER BY id LIMIT 1]], run, card, seat, turn, step)
  return row and row.response or nil
end

return M
