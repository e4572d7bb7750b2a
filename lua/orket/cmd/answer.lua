-- orket answer CARD "text" | --approve ["note"] | --deny "reason": answers a card waiting
-- for the developer. A question's answer becomes a comment; an approval request (a tool call
-- a policy asked about, orket.actions.approvals) is approved or refused. Either way the card
-- goes back to ready in the same transaction, so the next 'orket run' or 'orket resume'
-- picks it up.
local board_mod = require "orket.board"
local approvals = require "orket.actions.approvals"
local answer = require "orket.actions.answer"

local USAGE = "orket answer CARD [--] \"text\" | CARD --approve [\"note\"] | CARD --deny \"reason\" [-C DIR]"
local cmd = { summary = "answer a card that waits for input or approval", usage = USAGE }
cmd.help = [[
A card waiting for input has a question in its comments: answer it with text. A card waiting
for an approval holds a tool call a policy asked about ('orket card CARD' shows it): --approve
lets exactly that call run once on the card's next turn (the note is passed on to the model);
--deny tells the model the call is refused and why. Continue with 'orket resume' or 'orket run'.
Text that starts with '-' goes after -- (orket answer CARD -- "-1 is fine").]]

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
    local detail
    ok, aerr, acode, detail = answer.answer(db, b, pos[1], pos[2], { seat = "developer", roles = {} })
    if detail and detail.approval then
      aerr = string.format("%s; use 'orket answer %s --approve [\"note\"]' or --deny \"reason\"", aerr, detail.card)
    end
  end
  local usage = acode == "EUSAGE" and aerr or nil
  db:close()
  if usage then return cli.usage_error(cmd, "%s", usage) end
  if not ok then
    cli.fail(acode, "%s", aerr)
    return 1
  end
  local what = decision == "approve" and "approved" or decision == "deny" and "refused" or "answered"
  if decision then what = string.format("%s request #%d of", what, ok.id) end
  io.stdout:write(string.format("%s %s; continue with 'orket resume' or 'orket run'\n", what, pos[1]))
  return 0
end

return cmd
