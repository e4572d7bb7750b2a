-- orket.actions.budget_wait: a card a money budget stopped (waiting_for_developer with the
-- wait reason `budget`, set by the engine alone) goes on when a person approves it, one
-- budget's worth more (docs/cost.md). An approval, like a held tool call's, is a decision:
-- `orket answer CARD --approve`, POST /v1/cards/{id}/approve, the web board's button. Any
-- text answer approved it before, a "no" as much as a "go on". Uses orket.store.costs and
-- orket.store.journal_reads; the caller holds the transaction and the board.
local costs = require "orket.store.costs"
local sj = require "orket.store.journal_reads"

local M = {}

-- the money budgets whose reaching makes a card wait (orket.engine.spend.CARD_SCOPES)
local CARD_SCOPES = { card = true, epic = true, rock = true }

--- waits_on(c) -> true when the card waits because a money budget would be passed
function M.waits_on(c) return c.status == "waiting_for_developer" and c.wait_reason == "budget" end

-- the reached budget's scope (its last budget_reached event's) | nil
local function reached_scope(db, id)
  local reached = sj.card_event_data(db, id, "budget_reached")
  local scope = reached[#reached] and reached[#reached].scope
  return CARD_SCOPES[scope] and scope or nil
end

--- approve(db, board, c, note, actor) -> {card=, scope=} | nil, msg, CODE: inside the
--- caller's transaction, a budget_approved event (the reached budget counts the calls after
--- this mark; the card's other budgets go on as they were), a comment saying so (with the
--- person's note), and the card back to ready.
function M.approve(db, board, c, note, actor)
  local scope = reached_scope(db, c.id)
  db:event { kind = "budget_approved", card = c.id, actor = actor.seat,
    data = { turn = costs.last_turn(db), note = note, scope = scope } }
  local body = string.format("Approved going on past the %s's money budget: one budget's worth more%s.",
    scope or "card", note and (" (" .. note .. ")") or "")
  local cm, cerr, ccode = board:comment(c.id, { author = actor.seat, body = body })
  if not cm then return nil, cerr, ccode end
  local t, terr, tcode = board:transition(c.id, "ready", { actor = actor, note = "budget approved" })
  if not t then return nil, terr, tcode end
  return { card = c.id, scope = scope or "card" }
end

--- not_text(c) -> message: why a text answer is refused for a card waiting on a budget
function M.not_text(c)
  return string.format("%s waits on a money budget, not for text: approve going on past it (one budget's worth "
    .. "more), or raise the budget in orket.lua (docs/cost.md)", c.id)
end

--- no_deny(c) -> message: a budget's wait is approved or left waiting; denied, it would
--- still wait, so a refusal says what ends the card's work instead
function M.no_deny(c)
  return string.format("%s waits on a money budget: approve going on past it, or leave it waiting; to end its "
    .. "work, cancel it (orket cancel %s \"reason\", POST /v1/cards/%s/cancel)", c.id, c.id, c.id)
end

return M
