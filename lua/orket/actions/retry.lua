-- orket.actions.retry: a card the scheduler cannot schedule moving again (board:retry: a
-- blocked or waiting card back to ready, a handed-in one on to review, its rework count and
-- budgets reset), but never a card waiting for an approval, which is decided instead. The
-- answer is data; the CLI and the HTTP API say it in their own words. The caller holds the
-- run lock. Uses orket.board and orket.actions.approvals.
local approvals = require "orket.actions.approvals"

local M = {}

--- retry(db, board, card_id, actor, note) -> card | nil, msg, CODE, detail: EUSAGE, with
--- detail {approval = the pending request}, for a card waiting for an approval
function M.retry(db, b, card_id, actor, note)
  local detail
  local card, err, code = db:tx(function()
    local c, gerr, gcode = b:get(card_id)
    if not c then return nil, gerr, gcode end
    local p, why = approvals.held(db, c, "retried")
    if p then
      detail = { approval = p, card = c.id }
      return nil, why, "EUSAGE"
    end
    return b:retry(c.id, { actor = actor, note = note })
  end)
  if card then return card end
  return nil, err, code, detail
end

return M
