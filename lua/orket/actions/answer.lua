-- orket.actions.answer: a person's answer to a card waiting for input: a question's answer
-- becomes a comment and the card goes back to ready; a requirements review waiting for a
-- person is answered on the card it reviews, which starts over. One transaction. The
-- answer is data; the CLI and the HTTP API say it in their own words. Uses orket.board,
-- orket.store.journal_reads and orket.actions.approvals (a card waiting for an approval is
-- decided, not answered, as is one a money budget stopped: orket.actions.budget_wait).
local approvals = require "orket.actions.approvals"
local budget_wait = require "orket.actions.budget_wait"
local sj = require "orket.store.journal_reads"

local M = {}

--- reviewed_card(db, id) -> the card a requirements review card reviews | nil
function M.reviewed_card(db, id)
  for _, d in ipairs(sj.card_event_data(db, id, "requirements_review_of")) do
    if type(d.card) == "string" then return d.card end
  end
  return nil
end

-- Whether the card waits for a person with a note matching `pattern` on its move there.
local function waits_with(db, id, pattern)
  local m = sj.last_transition(db, id)
  local d = m and m.data
  return type(d) == "table" and d.to == "waiting_for_developer" and type(d.note) == "string"
    and d.note:match(pattern) ~= nil
end

-- Whether the card's wait is a requirements review's (engine/review.lua moves it there
-- with the note "requirements review ID").
local function waits_on_requirements_review(db, id) return waits_with(db, id, "^requirements review ") end

--- answer(db, board, card_id, text, actor) -> true | nil, msg, CODE, detail: answers a card
--- waiting for input (a question, a requirements review) in one transaction. EUSAGE, with
--- detail {approval = the pending request} or {budget = true}, when it waits for an
--- approval or on a money budget instead (the caller says how to decide it); ESTATE when
--- it does not wait; EINVAL for a text that is blank.
function M.answer(db, b, card_id, text, actor)
  -- the API's schema takes "   " (it counts characters); the comment it becomes needs some
  if type(text) ~= "string" or not text:find("%S") then
    return nil, "an answer needs text: text is only whitespace", "EINVAL"
  end
  local detail
  local ok, err, code = db:tx(function()
    local c, gerr, gcode = b:get(card_id)
    if not c then return nil, gerr, gcode end
    -- a requirements review waiting for a person is answered on the card it reviews, which
    -- starts that card over and closes the review
    local of = c.status == "waiting_for_developer" and M.reviewed_card(db, c.id)
    if of and waits_on_requirements_review(db, of) then
      c, gerr, gcode = b:get(of)
      if not c then return nil, gerr, gcode end
    end
    if c.status ~= "waiting_for_developer" then
      -- the second of two answers at once is told the first was given, and by whom
      local m = sj.last_transition(db, c.id)
      local first = m and m.from == "waiting_for_developer" and m.data.note == "answered"
        and string.format("; it was answered by %s at %s", tostring(m.actor), tostring(m.at)) or ""
      return nil, string.format("%s is %s, not waiting for input%s", c.id, c.status, first), "ESTATE"
    end
    local p = approvals.pending(db, c.id)
    if p then
      detail = { approval = p, card = c.id }
      return nil, string.format("%s waits for approval of %s (request #%d), not for text", c.id,
        approvals.describe(p), p.id), "EUSAGE"
    end
    if budget_wait.waits_on(c) then
      detail = { budget = true, card = c.id }
      return nil, budget_wait.not_text(c), "EUSAGE"
    end
    if waits_on_requirements_review(db, c.id) then
      -- the requirements were reviewed: the card starts over, its rejection count (which
      -- filed the review) and budgets with it, or the next rejection files another at once
      local t, terr, tcode = b:retry(c.id, { actor = actor, note = text })
      if not t then return nil, terr, tcode end
      return true
    end
    local m, merr, mcode = b:comment(c.id, { author = actor.seat, body = text })
    if not m then return nil, merr, mcode end
    local t, terr, tcode = b:transition(c.id, "ready", { actor = actor, note = "answered" })
    if not t then return nil, terr, tcode end
    return true
  end)
  if ok then return ok end
  return nil, err, code, detail
end

return M
