-- orket answer CARD "text" | --approve ["note"] | --deny "reason": answers a card waiting
-- for the developer. A question's answer becomes a comment; an approval request (a tool call
-- a policy asked about, orket.engine.approvals) is approved or refused. Either way the card
-- goes back to ready in the same transaction, so the next 'orket run' or 'orket resume'
-- picks it up.
local board_mod = require "orket.board"
local approvals = require "orket.engine.approvals"
local review = require "orket.engine.review"
local journal = require "orket.store.journal"

local USAGE = "orket answer CARD [--] \"text\" | CARD --approve [\"note\"] | CARD --deny \"reason\" [-C DIR]"
local cmd = { summary = "answer a card that waits for input or approval", usage = USAGE }
cmd.help = [[
A card waiting for input has a question in its comments: answer it with text. A card waiting
for an approval holds a tool call a policy asked about ('orket card CARD' shows it): --approve
lets exactly that call run once on the card's next turn (the note is passed on to the model);
--deny tells the model the call is refused and why. Continue with 'orket resume' or 'orket run'.
Text that starts with '-' goes after -- (orket answer CARD -- "-1 is fine").]]

-- Whether the card's wait is a requirements review's (review.lua moves it there with the
-- note "requirements review ID").
local function waits_on_requirements_review(db, id)
  local m = journal.last_transition(db, id)
  local d = m and m.data
  return type(d) == "table" and d.to == "waiting_for_developer" and type(d.note) == "string"
    and d.note:match("^requirements review ") ~= nil
end

--- answer_text(db, board, card_id, text, actor) -> true | nil, msg, CODE: answers a card
--- waiting for input (a question, a requirements review) in one transaction; EUSAGE when it
--- waits for an approval instead, ESTATE when it does not wait. orket serve uses it too.
function cmd.answer_text(db, b, card_id, text, actor)
  return db:tx(function()
    local c, gerr, code = b:get(card_id)
    if not c then return nil, gerr, code end
    -- a requirements review waiting for a person is answered on the card it reviews, which
    -- starts that card over and closes the review
    local of = c.status == "waiting_for_developer" and review.reviewed_card(db, c.id)
    if of and waits_on_requirements_review(db, of) then
      c, gerr, code = b:get(of)
      if not c then return nil, gerr, code end
    end
    if c.status ~= "waiting_for_developer" then
      return nil, string.format("%s is %s, not waiting for input", c.id, c.status), "ESTATE"
    end
    local p = approvals.pending(db, c.id)
    if p then
      return nil, string.format("%s waits for approval of %s (request #%d), not for text; use "
        .. "'orket answer %s --approve [\"note\"]' or --deny \"reason\"", c.id, approvals.describe(p), p.id, c.id), "EUSAGE"
    end
    if waits_on_requirements_review(db, c.id) then
      -- the requirements were reviewed: the card starts over, its rejection count (which
      -- filed the review) and budgets with it, or the next rejection files another at once
      local t, terr, tcode = b:retry(c.id, { actor = actor, note = text })
      if not t then return nil, terr, tcode end
      return true
    end
    assert(b:comment(c.id, { author = actor.seat, body = text }))
    local t, terr, tcode = b:transition(c.id, "ready", { actor = actor, note = "answered" })
    if not t then return nil, terr, tcode end
    return true
  end)
end

function cmd.run(args, cli)
  local decision
  local function decide(a)
    local d = a:sub(3)
    if decision and decision ~= d then return cli.usage_error(cmd, "give --approve or --deny, not both") end
    decision = d
  end
  local dir, pos = cli.words(cmd, args, { ["--approve"] = decide, ["--deny"] = decide },
    "to answer text that starts with '-'")
  if not dir then return pos end
  if #pos == 0 then return cli.usage_error(cmd, "answer needs a card id") end
  if decision then
    if #pos > 2 then return cli.usage_error(cmd, "give the %s text as one argument (quote it)", decision == "approve" and "note" or "reason") end
    if decision == "deny" and not (pos[2] and pos[2]:find("%S")) then
      return cli.usage_error(cmd, "--deny needs a reason the model can act on, e.g. --deny \"keep old.txt, it is still used\"")
    end
  else
    if #pos ~= 2 then return cli.usage_error(cmd, "answer needs a card id and the answer text") end
    if not pos[2]:find("%S") then return cli.usage_error(cmd, "the answer is empty") end
  end
  local db = cli.open_store(dir, false)
  if not db then return 1 end
  local b = board_mod.open(db)
  local ok, aerr, acode
  if decision then
    ok, aerr, acode = approvals.decide(db, b, pos[1], { decision = decision, note = pos[2], by = "developer" })
  else
    ok, aerr, acode = cmd.answer_text(db, b, pos[1], pos[2], { seat = "developer", roles = {} })
  end
  local usage = acode == "EUSAGE" and aerr or nil
  db:close()
  if usage then return cli.usage_error(cmd, "%s", usage) end
  if not ok then
    cli.err("%s", aerr)
    return 1
  end
  local what = decision == "approve" and "approved" or decision == "deny" and "refused" or "answered"
  if decision then what = string.format("%s request #%d of", what, ok.id) end
  io.stdout:write(string.format("%s %s; continue with 'orket resume' or 'orket run'\n", what, pos[1]))
  return 0
end

return cmd
