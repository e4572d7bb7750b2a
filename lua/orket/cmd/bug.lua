-- orket bug ROCK "text" [--body TEXT]: a person files a bug under a rock (a ready issue in its
-- bugs epic: orket.actions.bugs.file_bug), counted in the rock's bug-fix phase. Prints
-- the card's id, or the open bug it was added to when --fingerprint matches one.
local jsonout = require "orket.jsonout"
local config = require "orket.config"
local bugs = require "orket.actions.bugs"

local cmdline = require "orket.cmdline"

local cmd = { name = "bug", summary = "file a bug under a rock (its bug-fix phase)" }
cmd.args = {
  usage = "orket bug ROCK [--] \"what goes wrong\" [--body TEXT] [--fingerprint KEY] [--json] [-C DIR]",
  text = "for text that starts with '-'", extra = "give the text as one argument (quote it)",
  { "ROCK", key = "rock", missing = "bug needs a rock id" },
  { "TEXT", key = "text", optional = true, empty = true },
  { "--body", value = "TEXT", what = "the bug's description", empty = true, help = "its description (at most 65536 characters)" },
  { "--fingerprint", value = "KEY", what = "a key", help = "an open bug with the same key gets the report as a comment" },
  { "--json", help = "print {\"card\": ID, \"duplicate\": BOOL, \"rock\": the rock whose run works it}" },
  cmdline.DIR,
}
cmd.help = [[
Files a bug as an issue in the rock's bugs epic (ROCK-bugs, made when needed), ready for the
team: the next 'orket run ROCK', or a worker, works it like any card. The text is its summary
(at most 500 characters), --body its description (at most 65536 characters). While the
rock's bug-fix phase is open the bug counts in its rate; once the phase ended, bugs go to
the phase-2 rock it handed its open bugs to, and the command that works them names that
rock. With --fingerprint, an open bug with the same fingerprint gets the report as a
comment instead of a second card. --json prints {"card": ID, "duplicate": BOOL, "rock": the rock whose run works it}.]]

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  if not o.text then return cli.usage_error(cmd, "bug needs the text, e.g. orket bug %s \"saving a note fails\"", o.rock) end
  local bad = cli.bad_text(cmd, o.text, "the text", bugs.TITLE_MAX) or o.body and cli.bad_text(cmd, o.body, "--body", bugs.BODY_MAX)
  if bad then return bad end
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local actor, localuse = cli.operator()
  local id, dup, code = localuse.audited(db, "bug", o.rock, function()
    return bugs.file_bug(db, { rock = o.rock, title = o.text, body = o.body, fingerprint = o.fingerprint,
      author = actor.seat, source = "person" })
  end)
  -- the rock whose run works it: after the rock's phase ended, its phase-2 rock
  local rock = id and bugs.bug_rock(db, o.rock)
  db:close()
  if not id then
    cli.err("%s", (tostring(dup):gsub("^bug: ", "")))
    return code == "EINVAL" and 2 or 1
  end
  cli.say_operator()
  local moved = rock ~= o.rock and string.format(" under %s (%s's bug-fix phase ended)", rock, o.rock) or ""
  local where = config.at(o.dir) -- the run as typed from here
  if o.json then
    io.stdout:write(jsonout.encode { card = id, duplicate = dup, rock = rock }, "\n")
  elseif dup then
    io.stdout:write(string.format("%s is open with the same fingerprint%s; the report is a comment on it; "
      .. "'orket run %s%s' works it\n", id, moved, rock, where))
  else
    io.stdout:write(string.format("%s filed%s; 'orket run %s%s' works it\n", id, moved, rock, where))
  end
  return 0
end

return cmd
