-- orket repl: an interactive Lua prompt inside the runtime, with `orket` at hand, and inside
-- a project (a folder with orket.lua) the project itself as `project` (orket.terminal.console).
local console = require "orket.terminal.console"
local orket_api = require "orket"
local chat = require "orket.terminal.chat"
local uv = require "luv"
local config = require "orket.config"
local repl = require "orket.terminal.repl"
local help = require "orket.terminal.help"

local cmd = {
  name = "repl",
  summary = "interactive prompt with the runtime loaded",
  args = { { "-C", value = "DIR", key = "dir", what = "a directory", once = require("orket.cmdline").one_dir,
    check = require("orket.cmdline").a_dir("-C") } },
  help = "Expressions print their values; statements run. Incomplete input continues on\n" ..
      "the next line (>>). Ctrl-C interrupts a running chunk, Ctrl-D exits.\n" ..
      "`help` lists what is at hand, help(x) says more about x; Tab completes names.\n" ..
      "History is kept in $ORKET_HISTORY (default ~/.orket_history; empty disables; a\n" ..
      "path that cannot be used is said at the start).\n" ..
      "In a project (the folder -C DIR names, default the current one, has orket.lua)\n" ..
      "`project` holds its board, db, llm, gate, tools, roles, engine and the helpers\n" ..
      "project:messages(CARD), project:turn(CARD), project:replay(RUN), project:reload()\n" ..
      "(docs/engine.md); " ..
      "llm.chat{messages = {...}} streams a reply from that folder's models.\n" ..
      "A task orket.spawn starts runs only while a line runs, not while the prompt waits;\n" ..
      "the prompt's end stops those still running, as Ctrl-C stops a line's.",
}

-- The project the prompt opens -> project | nil, why it is not (said at start, and again in
-- the hint when `project` is used) | nil, nil, exit status (a -C DIR without orket.lua).
-- Inside a project's workspace/ (or .orket/, epics/...) it is named with its -C, as every
-- command names it (config.no_project), not opened silently without it.
local function open_project(dir, cli)
  if uv.fs_stat((dir or ".") .. "/orket.lua") then
    local p, err = console.open(dir or ".")
    if p then return p end
    local why = cli.in_dir(dir, err)
    cli.err("project not opened (the prompt works without it): %s", why)
    return nil, why
  elseif dir then
    cli.err("%s has no orket.lua", config.shown(dir))
    return nil, nil, 1
  end
  if config.holding(".") then
    local why = config.no_project(".")
    cli.err("no project opened (the prompt works without it): %s", why)
    return nil, why
  end
  return nil, "this folder has no orket.lua (`orket repl -C DIR` opens the project in DIR)"
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local dir = o.dir
  local spawned
  _G.orket, spawned = repl.runtime(orket_api)
  _G.help = help.new(_G) -- what is at hand, from the contract comments of its modules
  -- llm.chat{messages = {...}} streams to the prompt, with DIR's models as `project` has them
  _G.llm = chat.global(dir)
  local p, why, status = open_project(dir, cli)
  if status then return status end
  _G.project = p
  status = repl.run { spawned = spawned, no_project = why }
  if p then p:close() end
  return status
end

return cmd
