-- orket.engine.review: what happens around review. Picks the reviewer seat (never the seat
-- that did the work), decides when a rejected card gets an escalation turn for the
-- architect, and when it needs a requirements review and waits for a person. Used by the
-- engine (run.lua) and by orket serve's webhooks; events through the store's journal.
local recorded = require "orket.engine.recorded"
local answer = require "orket.actions.answer"

local M = {}

--- after_rejection(run, card) -> "work" | "escalate" | "requirements"
--- card.retries counts the times review sent it back (the state machine keeps it).
function M.after_rejection(run, card)
  local r = run.settings.review
  local n = card.retries or 0
  if n == 0 then return "work" end
  if n >= r.requirements_review_after then return "requirements" end
  if n >= r.escalate_after and not recorded.flag(run.db, run.run_id, card.id, "escalated", n) then return "escalate" end
  return "work"
end

--- needs_requirements_review(settings, card) -> bool: whether a card just sent back has
--- been rejected often enough that a person must look at its requirements.
function M.needs_requirements_review(settings, card)
  return (card.retries or 0) >= settings.review.requirements_review_after
end

--- requirements_review(ctx, card, seat, actor) -> new card | nil, msg, code. ctx: {db=,
--- board=, settings=, run_id=} (a run, or orket serve acting on a webhook). Files the review
--- issue for seat (the architect), puts the question with the reviewers' notes on the card,
--- and moves the card to waiting_for_developer(input), in one transaction: the card waits
--- for a person ('orket answer CARD "text"'), whatever the architect makes of the review.
function M.requirements_review(run, card, seat, actor)
  return run.db:tx(function()
    local comments = {}
    for _, c in ipairs(run.board:comments(card.id)) do
      -- the engine's own notes are no reviewer's words
      if c.author ~= "orket" then comments[#comments + 1] = "- " .. c.author .. ": " .. c.body end
    end
    local n = card.retries or 0
    local new, err, code = run.board:create {
      parent = card.parent, seat = seat, priority = card.priority,
      summary = "Requirements review: " .. (card.summary or card.id),
      description = string.format("%s was rejected in review %d times. Decide whether its requirements "
        .. "and acceptance criteria are right, and answer it with 'orket answer %s'.\n\nReview comments:\n%s",
        card.id, n, card.id, table.concat(comments, "\n")),
      actor = { seat = "orket" },
    }
    if not new then return nil, err, code end
    -- the question goes on the card itself: it is what 'orket answer' answers
    assert(run.board:comment(card.id, { author = "orket", body = string.format(
      "Rejected %d times (review.requirements_review_after = %d): waiting for a person. Are the requirements "
      .. "and acceptance criteria right, or what should change? Answer with 'orket answer %s \"text\"' "
      .. "(the architect's view, if any, goes on %s).\n\nReview comments:\n%s",
      n, run.settings.review.requirements_review_after, card.id, new.id, table.concat(comments, "\n")) }))
    local ok, terr, tcode = run.board:transition(card.id, "waiting_for_developer",
      { actor = actor, reason = "input", note = "requirements review " .. new.id })
    if not ok then return nil, terr, tcode end
    run.db:event { kind = "requirements_review", card = card.id, run = run.run_id, data = { issue = new.id, key = n } }
    -- the review card names the card it reviews, so the engine and 'orket answer' know it
    run.db:event { kind = "requirements_review_of", card = new.id, run = run.run_id, data = { card = card.id } }
    return new
  end)
end

--- reviewed_card(db, id) -> the id of the card whose requirements review card id is, or nil
M.reviewed_card = answer.reviewed_card

--- await_person(run, card, actor) -> true | nil, msg, CODE: a requirements review card whose
--- architect turn ended without handing it in waits for a person instead of being worked
--- until its budget runs out: the question is the reviewed card's, answered there.
function M.await_person(run, card, actor, of)
  return run.db:tx(function()
    assert(run.board:comment(card.id, { author = "orket", body = string.format(
      "The architect had its turn on this requirements review; the decision is a person's: answer %s with "
      .. "'orket answer %s \"text\"' (or answer this card: it answers %s), which closes this review.", of, of, of) }))
    return run.board:transition(card.id, "waiting_for_developer",
      { actor = actor, reason = "input", note = "waiting for a person: the requirements of " .. of })
  end)
end

return M
