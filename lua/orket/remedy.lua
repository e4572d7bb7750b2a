-- orket.remedy: what a model should do about each refusal of the state machine (the codes
-- of orket.c.statemachine), told with the refusal so each rule gets its own advice rather
-- than one generic "choose another status". Plain data; the gate passes it on.
local M = {}

local REASONS = "resource, dependency, review, input or system"

local TRANSITION = {
  ESTATUS = "Call again with one of the statuses the error lists.",
  ESAME = "The card already has that status: do not set it again; go on with the work or end your turn.",
  ETERMINAL = "The card is final and stays so: file new work with create_issue instead of moving it.",
  ETRANSITION = "Choose one of the statuses the error says this card may move to from its current one.",
  EREASON_REQUIRED = "Call again with wait_reason set to why the card waits: " .. REASONS .. ".",
  EREASON_INVALID = "Call again with wait_reason set to one of " .. REASONS .. ".",
  EREASON_UNEXPECTED = "Call again without wait_reason: only blocked and waiting_for_developer take one.",
  EDEPENDENCY = "Finish the cards this one depends on first, or move it to blocked with wait_reason dependency.",
  EREVIEWER = "Only a reviewer seat (the integrity_guard role) moves an issue to done: set the status to "
    .. "code_review to hand your work in, and a reviewer will decide.",
  ESELF_REVIEW = "You did the work on this issue, so you cannot approve it: leave it in code_review for another "
    .. "seat holding the integrity_guard role.",
}

--- transition(code) -> the remedy for a refusal of the state machine with that code, or
--- nil for a code it does not know (the gate then gives its generic one)
function M.transition(code)
  return TRANSITION[code]
end

return M
