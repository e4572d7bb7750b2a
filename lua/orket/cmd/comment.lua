-- orket comment CARD "text": a person's comment on a card, as orket serve's POST
-- /v1/cards/{id}/comments takes one: journaled and audited as the local operator's. The
-- model reads a card's comments on its next turn, so this is how a person gives an agent a
-- hint before a retry without answering a question the card does not ask.
local board_mod = require "orket.board"

local cmdline = require "orket.cmdline"

local cmd = { name = "comment", summary = "add a comment to a card, for the people and the agents working it" }
cmd.args = {
  usage = "orket comment CARD [--] \"text\" [-C DIR]",
  text = "for a comment that starts with '-'", extra = "give the comment as one argument (quote it)",
  { "CARD", key = "card", missing = "comment needs a card id" },
  { "TEXT", key = "text", optional = true, empty = true },
  cmdline.DIR,
}
-- the limit counts characters (code points), as the API's schema does, not bytes: an "é" is
-- one of them and two bytes
cmd.help = string.format([[
Adds the text to the card's comments as the local operator's (local:USER), journaled and in
the audit chain, as a comment made on orket serve's board is. The agents working the card read
its comments on their next turn: a hint before 'orket retry CARD', say. A card waiting for
an answer is answered with 'orket answer', which also moves it back to ready. At most %d
characters (Unicode code points, however many bytes each takes), as the API takes.]], board_mod.TEXT_MAX)

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  if not (o.text and o.text:find("%S")) then
    return cli.usage_error(cmd, "comment needs the text, e.g. orket comment %s \"use UTC timestamps\"", o.card)
  end
  local bad = cli.bad_text(cmd, o.text, "the comment", board_mod.TEXT_MAX)
  if bad then return bad end
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local b = board_mod.open(db)
  local actor, localuse = cli.operator()
  local c, err, code = localuse.audited(db, "comment", o.card, function()
    return b:comment(o.card, { author = actor.seat, body = o.text })
  end, function(c) -- the chain's detail
    return require("orket.audit.chain").card_decision("comment", { body = o.text }, c) -- lazy: as the store
  end)
  db:close()
  if not c then
    return cli.fail(code, "%s", (tostring(err):gsub("^board: ", ""))) or 1
  end
  cli.say_operator()
  io.stdout:write(string.format("commented on %s (comment #%d)\n", o.card, c.id))
  return 0
end

return cmd
