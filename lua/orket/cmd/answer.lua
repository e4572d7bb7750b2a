-- orket answer CARD "text" | --approve ["note"] | --deny "reason": answers a card waiting
-- for the developer. A question's answer becomes a comment; an approval request (a tool call
-- a policy asked about, orket.actions.approvals) is approved or refused, and a money budget's
-- wait approved (orket.actions.budget_wait). Either way the card
-- goes back to ready in the same transaction, so the next 'orket run' or 'orket resume'
-- picks it up.
local board_mod = require "orket.board"
local approvals = require "orket.actions.approvals"
local answer = require "orket.actions.answer"

local cmdline = require "orket.cmdline"
local inert = require "orket.inert"
local run_cmd = require "orket.cmd.run"

local cmd = { name = "answer", summary = "answer a card that waits for input or approval" }
cmd.args = {
  usage = "orket answer CARD [--] \"text\" | CARD [--request N] --approve [\"note\"] | CARD [--request N] --deny \"reason\" [-C DIR]",
  text = "to answer text that starts with '-'",
  { "CARD", key = "card", missing = "answer needs a card id" },
  { "TEXT", many = true, key = "text", empty = true },
  { "--approve", help = "let the call the card waits on run once (the note goes to the model),\n"
    .. "or the card a money budget stopped go on, one budget's worth more" },
  { "--deny", help = "refuse the call, with the reason the model reads" },
  { "--request", value = "N", what = "a request's number",
    check = cmdline.at_least(1, "--request takes a request's number (the #N of 'orket card CARD')"),
    help = "the request decided, as 'orket card CARD' shows it (#N): needed once the card\n"
      .. "has had more than one; a request decided already is refused" },
  cmdline.DIR,
}
cmd.help = [[
A card waiting for input has a question in its comments: answer it with text. A card waiting
for an approval holds a tool call a policy asked about ('orket card CARD' shows it): --approve
lets exactly that call run once on the card's next turn (the note is passed on to the model);
--deny tells the model the call is refused and why. --request N names the request decided
(the #N 'orket card' shows), so that a decision never lands on a call asked for after you
looked: a request already decided is refused, saying by whom and what waits now; without
it the decision is refused when the card has had other requests. A card a money budget
stopped goes on with --approve, one budget's worth more (or raise the budget in orket.lua);
text does not approve it. It then says what it decided (the request's number and call) and
what continues the card: a run going on it takes it up itself; one
killed or interrupted with a turn half done is continued with 'orket resume RUN'; else
'orket resume' or 'orket run CARD'.
Text that starts with '-' goes after -- (orket answer CARD -- "-1 is fine").]]

-- The words beyond the card, checked -> decision ("approve", "deny" or nil for an answer),
-- text | nil, exit status.
local function checked(o, cli)
  if o.approve and o.deny then return nil, nil, cli.usage_error(cmd, "give --approve or --deny, not both") end
  local decision = o.approve and "approve" or o.deny and "deny" or nil
  if o.request and not decision then
    return nil, nil, cli.usage_error(cmd, "--request names the request --approve or --deny decides")
  end
  local words = o.text or {}
  if decision then
    if #words > 1 then return nil, nil, cli.usage_error(cmd, "give the %s text as one argument (quote it)", decision == "approve" and "note" or "reason") end
    if decision == "deny" and not (words[1] and words[1]:find("%S")) then
      return nil, nil, cli.usage_error(cmd, "--deny needs a reason the model can act on, e.g. --deny \"keep old.txt, it is still used\"")
    end
    local bad = words[1] and cli.bad_text(cmd, words[1], decision == "approve" and "the note" or "the reason",
      board_mod.NOTE_MAX)
    if bad then return nil, nil, bad end
    return decision, words[1]
  end
  if #words > 1 then return nil, nil, cli.usage_error(cmd, "give the answer text as one argument (quote it)") end
  if #words == 0 then return nil, nil, cli.usage_error(cmd, "answer needs a card id and the answer text") end
  if not words[1]:find("%S") then return nil, nil, cli.usage_error(cmd, "the answer is empty") end
  local bad = cli.bad_text(cmd, words[1], "the answer", board_mod.TEXT_MAX)
  if bad then return nil, nil, bad end
  return nil, words[1]
end

-- The decision or the answer, in the store -> ok | nil, message, code.
local function apply(db, card, decision, text, cli, request)
  local b = board_mod.open(db)
  local actor, localuse = cli.operator()
  if decision then
    local ok, derr, dcode, detail = localuse.audited(db, decision, card, function()
      return approvals.decide(db, b, card, { decision = decision, note = text, by = actor.seat,
        approval = request, unnamed = "sole" })
    end, function(r) -- the chain's detail: the request decided, the note's hash (under the API's names)
      local words = { [decision == "deny" and "reason" or "note"] = text }
      return require("orket.audit.chain").card_decision(decision, words, r) -- lazy: as the store
    end)
    local p = detail and detail.approval
    if p and detail.unnamed then
      derr = string.format("%s: name it with --request %d ('orket card %s' shows it)", derr, p.id, detail.card)
    elseif p and detail.decided then
      derr = string.format("%s; 'orket card %s' shows it: decide it with --request %d if it is the one you mean",
        derr, detail.card, p.id)
    end
    return ok, derr, dcode
  end
  local ok, aerr, acode, detail = localuse.audited(db, "answer", card, function()
    return answer.answer(db, b, card, text, actor)
  end, function(r) -- the chain's detail
    return require("orket.audit.chain").card_decision("answer", { text = text }, r) -- lazy: as the store
  end)
  if detail and detail.approval then
    aerr = string.format("%s; use '%s --approve [\"note\"]' or --deny \"reason\"", aerr,
      approvals.command(detail.card, detail.approval.id))
  elseif detail and detail.budget then
    aerr = string.format("%s; use 'orket answer %s --approve [\"note\"]'", aerr, detail.card)
  end
  return ok, aerr, acode
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local decision, text, cst = checked(o, cli)
  if cst then return cst end
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local ok, aerr, acode = apply(db, o.card, decision, text, cli, o.request)
  -- (asked before the store is closed: which run, if any, goes on with the card)
  local hint = ok and run_cmd.continue_hint(o.dir, db, board_mod.open(db), o.card, cli)
  db:close()
  if acode == "EUSAGE" then return cli.usage_error(cmd, "%s", aerr) end
  if not ok then
    return cli.fail(acode, "%s", aerr) or 1
  end
  cli.say_operator()
  local what = decision == "approve" and "approved" or decision == "deny" and "refused" or "answered"
  if decision then
    -- a held call's request, or a money budget's wait (orket.actions.budget_wait)
    what = ok.id and string.format("%s request #%d of", what, ok.id)
      or string.format("%s one budget more (the %s's money budget) for", what, tostring(ok.scope))
  end
  -- the call decided, said with its number: what was decided, not only that something was
  local call = decision and ok.id and (" (" .. inert.line(approvals.describe(ok)) .. ")") or ""
  io.stdout:write(string.format("%s %s%s; %s\n", what, o.card, call, hint))
  return 0
end

return cmd
