-- orket bug ROCK "text" [--body TEXT]: a person files a bug under a rock (a ready issue in its
-- bugs epic: orket.actions.bugs.file_bug), counted in the rock's bug-fix phase. Prints
-- the card's id, or the open bug it was added to when --fingerprint matches one.
local cjson = require "cjson"
local bugs = require "orket.actions.bugs"

local USAGE = "orket bug ROCK [--] \"what goes wrong\" [--body TEXT] [--fingerprint KEY] [--json] [-C DIR]"
local cmd = { summary = "file a bug under a rock (its bug-fix phase)", usage = USAGE }
cmd.help = [[
Files a bug as an issue in the rock's bugs epic (ROCK-bugs, made when needed), ready for the
team: the next 'orket run ROCK', or a worker, works it like any card. The text is its summary
(at most 500 bytes), --body its description (at most 64 KiB). While the rock's bug-fix phase
is open the bug counts in its rate; once the phase ended, bugs go to the phase-2 rock it
handed its open bugs to. With --fingerprint, an open bug with the same fingerprint gets the
report as a comment instead of a second card. --json prints {"card": ID, "duplicate": BOOL}.]]

function cmd.run(args, cli)
  local body, fp, as_json
  local dir, pos = cli.words(cmd, args, { ["--json"] = function() as_json = true end }, "for text that starts with '-'",
    { ["--body"] = { what = "the bug's description", set = function(v) body = v end },
      ["--fingerprint"] = { what = "a key", set = function(v) fp = v end } })
  if not dir then return pos end
  if #pos == 0 then return cli.usage_error(cmd, "bug needs a rock id") end
  if #pos == 1 then return cli.usage_error(cmd, "bug needs the text, e.g. orket bug %s \"saving a note fails\"", pos[1]) end
  if #pos > 2 then return cli.usage_error(cmd, "give the text as one argument (quote it)") end
  local db = cli.open_store(dir, false)
  if not db then return 1 end
  local id, dup, code = bugs.file_bug(db, { rock = pos[1], title = pos[2], body = body, fingerprint = fp,
    author = "developer", source = "person" })
  db:close()
  if not id then
    cli.err("%s", (tostring(dup):gsub("^bug: ", "")))
    return code == "EINVAL" and 2 or 1
  end
  if as_json then
    io.stdout:write(cjson.encode { card = id, duplicate = dup }, "\n")
  elseif dup then
    io.stdout:write(string.format("%s is open with the same fingerprint; the report is a comment on it\n", id))
  else
    io.stdout:write(string.format("%s filed; 'orket run %s' works it\n", id, pos[1]))
  end
  return 0
end

return cmd
