-- orket cancel CARD "reason": a person ends a card without review. Agents cannot cancel
-- (the state machine refuses them); this is the developer's way, journaled as theirs with
-- the reason, and an epic or rock takes every unfinished card under it along.
local board_mod = require "orket.board"

local cmdline = require "orket.cmdline"

local cmd = { name = "cancel", summary = "end a card without review, with the reason" }
cmd.args = {
  usage = "orket cancel CARD [--] \"reason\" [-C DIR]",
  text = "for a reason that starts with '-'", extra = "give the reason as one argument (quote it)",
  { "CARD", key = "card", missing = "cancel needs a card id" },
  { "REASON", key = "reason", optional = true, empty = true },
  cmdline.DIR,
}
cmd.help = [[
Moves the card to canceled as the developer's decision, with the reason as a comment and in
its history; for an epic or a rock every unfinished card under it is canceled too. A
canceled card is never worked again, a parent whose other cards are done is done, and a run
whose target holds canceled cards says which. Cards that depend on a canceled card wait for
ever: cancel them too, or drop the dependency and 'orket import'. Refused while a run works
on the project. A done card cannot be canceled; it may only be archived, on orket serve's
board or with POST /v1/cards/ID/move {"to":"archived"} (the refusal says so).]]

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  if not (o.reason and o.reason:find("%S")) then
    return cli.usage_error(cmd, "cancel needs a reason, e.g. orket cancel %s \"no longer needed\"", o.card)
  end
  local bad = cli.bad_text(cmd, o.reason, "the reason", board_mod.NOTE_MAX)
  if bad then return bad end
  local db, lock = cli.open_store_locked(o.dir, nil, "cancel")
  if not db then return lock end -- (then its exit status)
  local b = board_mod.open(db)
  local actor, localuse = cli.operator()
  local card, err, code = localuse.audited(db, "cancel", o.card, function()
    return b:cancel(o.card, { actor = actor, reason = o.reason })
  end, function(c) -- the chain's detail
    return require("orket.audit.chain").card_decision("cancel", { reason = o.reason }, c) -- lazy: as the store
  end)
  local n = 0
  if card and card.type ~= "issue" then
    n = #assert(b:list { [card.type] = card.id, status = "canceled", type = "issue" })
  end
  db:close()
  lock:release()
  if not card then
    local msg = tostring(err):gsub("^board: ", "")
    if code == "ETERMINAL" and msg:find("only go to archived", 1, true) then
      -- no command archives: say where it is done
      msg = msg .. string.format("; a person archives it on orket serve's board, or with POST /v1/cards/%s/move "
        .. "{\"to\":\"archived\"} (docs/serve.md)", o.card)
    end
    return cli.fail(code, "%s", msg) or 1
  end
  cli.say_operator()
  io.stdout:write(string.format("%s is canceled%s\n", card.id,
    card.type ~= "issue" and string.format(", and the %d issues under it", n) or ""))
  return 0
end

return cmd
