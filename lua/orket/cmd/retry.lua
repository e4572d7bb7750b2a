-- orket retry CARD ["note"]: gets a card the scheduler cannot schedule moving again: a
-- blocked or waiting card back to ready, a card handed in for testing on to review, so the
-- next 'orket run' or 'orket resume' works it (after a model that was down, a budget that
-- was raised, an issue that was split). The move goes through the state machine as a
-- person's; board:retry resets the card's rework count and budgets and journals it.
local board_mod = require "orket.board"
local approvals = require "orket.actions.approvals"
local retry = require "orket.actions.retry"

local cmdline = require "orket.cmdline"
local run_cmd = require "orket.cmd.run"

local cmd = { name = "retry", summary = "get a blocked, waiting or handed-in card moving again" }
cmd.args = {
  usage = "orket retry CARD [--] [\"note\"] [-C DIR]",
  text = "for a note that starts with '-'", extra = "give the note as one argument (quote it)",
  { "CARD", key = "card", missing = "retry needs a card id" },
  { "NOTE", key = "note", optional = true, empty = true },
  cmdline.DIR,
}
cmd.help = [[
For a card that is blocked (a model error, a spent budget) or waits for the developer: moves
it to ready and starts its turn and token budgets and its count of review rejections over
(the 'retry' event in its history records what was reset). A card handed in for testing
(ready_for_testing) goes on to review. A requirements review filed for the card that is
still open is archived: the retry answers it. The note, if given, is added to
the card's comments by the developer, where the next turn's model reads it. A card waiting
for an approval is decided with 'orket answer CARD --request N --approve' or --deny instead. Refused
while a run works on the project. It then says what continues the card: 'orket resume RUN'
for a killed or interrupted run that left a turn half done on its cards, else 'orket resume'
or 'orket run CARD'.]]

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local bad = o.note and cli.bad_text(cmd, o.note, "the note", board_mod.NOTE_MAX)
  if bad then return bad end
  local db, lock = cli.open_store_locked(o.dir, nil, "retry")
  if not db then return lock end -- (then its exit status)
  local b = board_mod.open(db)
  local actor, localuse = cli.operator()
  local card, err, code, detail = localuse.audited(db, "retry", o.card, function()
    return retry.retry(db, b, o.card, actor, o.note)
  end, function(c) -- the chain's detail
    return require("orket.audit.chain").card_decision("retry", { note = o.note }, c) -- lazy: as the store
  end)
  if detail and detail.approval then
    local p = detail.approval
    err = string.format("%s waits for approval of %s (request #%d); decide it with '%s --approve "
      .. "[\"note\"]' or --deny \"reason\"", detail.card, approvals.describe(p), p.id, approvals.command(detail.card, p.id))
  end
  local usage = code == "EUSAGE" and err or nil
  -- (asked under the run lock this command holds: which run, if any, goes on with the card)
  local hint = card and run_cmd.continue_hint(o.dir, db, b, card.id, cli, true)
  db:close()
  lock:release()
  if usage then return cli.usage_error(cmd, "%s", usage) end
  if not card then
    return cli.fail(code, "%s", (tostring(err):gsub("^board: ", ""))) or 1
  end
  cli.say_operator()
  io.stdout:write(string.format("%s is %s; %s\n", card.id, card.status, hint))
  return 0
end

return cmd
