-- orket.engine.review: what happens around review. Picks the reviewer seat (never the seat
-- that did the work), decides when a rejected card gets an escalation turn for the
-- architect, and when it needs a requirements review and waits for input.
local journal = require "orket.engine.journal"

local M = {}

--- after_rejection(e, card) -> "work" | "escalate" | "requirements"
--- card.retries counts the times review sent it back (the state machine keeps it).
function M.after_rejection(e, card)
  local r = e.settings.review
  local n = card.retries or 0
  if n == 0 then return "work" end
  if n >= r.requirements_review_after then return "requirements" end
  if n >= r.escalate_after and not journal.flag(e.db, e.run_id, card.id, "escalated", n) then return "escalate" end
  return "work"
end

--- requirements_review(e, card, seat) -> new card | nil, msg, code. Files the review issue,
--- comments, and moves the card to waiting_for_developer(input), in one transaction.
function M.requirements_review(e, card, seat, actor)
  return e.db:tx(function()
    local comments = {}
    for _, c in ipairs(e.board:comments(card.id)) do comments[#comments + 1] = "- " .. c.author .. ": " .. c.body end
    local n = card.retries or 0
    local new, err, code = e.board:create {
      parent = card.parent, seat = seat, priority = card.priority,
      summary = "Requirements review: " .. (card.summary or card.id),
      description = string.format("%s was rejected in review %d times. Decide whether its requirements "
        .. "and acceptance criteria are right, and answer it with 'orket answer %s'.\n\nReview comments:\n%s",
        card.id, n, card.id, table.concat(comments, "\n")),
      actor = { seat = "orket" },
    }
    if not new then return nil, err, code end
    assert(e.board:comment(card.id, { author = "orket", body = string.format(
      "Rejected %d times (review.requirements_review_after = %d): waiting for input; see %s.",
      n, e.settings.review.requirements_review_after, new.id) }))
    local ok, terr, tcode = e.board:transition(card.id, "waiting_for_developer",
      { actor = actor, reason = "input", note = "requirements review " .. new.id })
    if not ok then return nil, terr, tcode end
    e.db:event { kind = "requirements_review", card = card.id, run = e.run_id, data = { issue = new.id, key = n } }
    return new
  end)
end

return M
