-- orket validate [DIR]: checks a project's orket.lua, epics, roles, tools, policies and
-- routing.lua (orket.validate) and prints every problem as file:line: message. Exit 1 if any.
local validate = require "orket.validate"
local uv = require "luv"
local config = require "orket.config"
local inert = require "orket.inert"
local service = require "orket.sandboxes.service"

local cmd = { name = "validate", summary = "check a project's config, epics, roles, tools and policies",
  args = require("orket.cmdline").dir_args("validate") }
cmd.help = [[
Loads every file the way 'orket run' would, each on its own, without running anything, and
prints every problem found (file:line: message) in one pass, not only the first. Also checks,
over whatever loaded, that the team's roles, the roles' tools and the seats' model providers
exist, that a seat can review, that policy rules name existing tools, roles and seats, that
cards name seats of the team (and not the only reviewer's), and that card ids are unique and
dependencies name known cards without cycles. Exit status 1 if anything is wrong.
A field or setting Orket does not know (a misspelt "seet" or "depends_on ") is a problem,
named with the known one nearest to it. The MCP servers orket.lua names are started as a run
starts them (each request bound by the server's timeout_ms), their tools listed for the
roles and policies that name SERVER__TOOL, and stopped; the output says which were started,
and a server that could not be is a warning (the tools it would have are then not checked).
A tool's or role's name must be its file's; each project file that replaces a built-in
tool or role (a file of the same name) is named in a line of the output.]]

-- A sandbox the project's runs deploy (sandbox.deploy not "manual") cannot start in dir
-- when its socket path is too long (a deep CI checkout): a warning now, where the run would
-- say it only once an epic's work is done -> {file=, message=} | nil
local function sandbox_path_warning(dir)
  local ok, _, s = pcall(config.settings, dir)
  if not ok or type(s) ~= "table" or not s.sandbox or s.sandbox.deploy == "manual" then return nil end
  local long = service.path_warning(dir)
  return long and { file = "orket.lua", message = string.format("sandbox.deploy = %q: a sandbox cannot start in "
    .. "this folder: %s", s.sandbox.deploy, long) }
end

-- Why dir cannot be checked -> the message | nil
local function not_checked(dir)
  local st = uv.fs_stat(dir)
  if not st then
    -- a folder that is not there is not "not a directory": said as the other commands say it
    return string.format("no project in %s (no such directory); %s", config.shown(dir), config.no_project(dir))
  elseif st.type ~= "directory" then
    return string.format("%s: not a directory", config.shown(dir))
  end
  -- a project a killed init left half made passes every check it still has files for (an
  -- empty board, no repository): said as every command says it
  return config.unfinished(dir)
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local dir = o.dir
  local refused = not_checked(dir)
  if refused then
    cli.err("%s", refused)
    return 1
  end
  local problems, s, warnings = validate.check(dir)
  if #problems == 0 then warnings[#warnings + 1] = sandbox_path_warning(dir) end
  -- a problem's text holds a script's own error (a cloned project's file): made inert, as
  -- every printed error is (docs/store.md, text on a terminal)
  for _, p in ipairs(problems) do io.stdout:write(inert.text(validate.format(p)), "\n") end
  for _, m in ipairs(s.mcp) do
    io.stdout:write(string.format("mcp: %s started to list its tools: %d tool%s (stopped again)\n", inert.line(m.name), m.tools,
      m.tools == 1 and "" or "s"))
  end
  for _, w in ipairs(warnings) do io.stdout:write("warning: ", inert.text(validate.format(w)), "\n") end
  for _, o in ipairs(s.overrides or {}) do
    io.stdout:write(string.format("%s replaces the built-in %s %s\n", inert.line(o.file), o.kind, inert.line(o.name)))
  end
  if #problems > 0 then
    io.stdout:write(string.format("%d problem%s\n", #problems, #problems == 1 and "" or "s"))
    return 1
  end
  local function n(count, one, many) return string.format("%d %s", count, count == 1 and one or many) end
  io.stdout:write(string.format("ok: orket.lua, %s (%s), %s, %s, %s%s\n", n(s.epics, "epic", "epics"),
    n(s.issues, "issue", "issues"), n(s.roles, "role", "roles"), n(s.tools, "tool", "tools"),
    n(s.policies, "policy", "policies"), #warnings > 0 and string.format(" (%s)", n(#warnings, "warning", "warnings")) or ""))
  return 0
end

return cmd
