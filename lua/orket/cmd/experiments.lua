-- orket experiments report NAME: an experiment's variant against its control, with the
-- counts behind each figure (orket.views.experiments; docs/cost.md, "Experiments").
local jsonout = require "orket.jsonout"
local cmdline = require "orket.cmdline"

local cmd = { name = "experiments", summary = "compare an experiment's variant with its control" }
cmd.args = {
  usage = "orket experiments report NAME [--json] [-C DIR]",
  { "report", key = "sub", missing = "experiments needs report",
    check = cmdline.one_of({ "report" }, "unknown experiments command '%s'") },
  { "NAME", key = "name", missing = "experiments report needs the experiment's NAME" },
  { "--json", help = "print the report as one JSON document (orket.experiment/1)" },
  cmdline.DIR,
}
cmd.help = [[
Counts the cards each arm of experiment NAME (orket.lua's experiments) ran: how many, how
many are done, the rejections in review, and per card the turns, tokens, cost and wall
time (first work turn to done). A card's arm is fixed at its first turn. See docs/cost.md.]]

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local _, s = cli.project_settings(o.dir, true)
  if not s then return 1 end
  local db = cli.open_store(o.dir, false, true)
  if not db then return 1 end
  local report = require "orket.views.experiments" -- lazy: as the store's
  local doc, err = report.doc(db, o.name, s.experiments)
  db:close()
  if not doc then
    cli.err("%s", err)
    return 1
  end
  io.stdout:write(o.json and (jsonout.encode(doc) .. "\n") or report.text(doc))
  return 0
end

return cmd
