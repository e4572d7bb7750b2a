-- orket.cli: the command line. Each command is a module under orket.cmd.<name> returning
-- { summary = "...", usage = "...", run = function(args, cli) -> exit status }.
-- Library code never prints or exits; this module and the commands decide what to show.
local M = {}

-- Commands in the order `orket help` lists them.
M.COMMANDS = { "version", "help", "lua", "repl", "init", "validate", "import", "board", "card", "gate", "models", "run", "resume", "runs", "log", "answer" }

M.EXIT = { ok = 0, failed = 1, usage = 2, stalled = 3, interrupted = 130 }

function M.err(fmt, ...)
  io.stderr:write("orket: ", string.format(fmt, ...), "\n")
end

local function load_command(name)
  for _, c in ipairs(M.COMMANDS) do
    if c == name then return require("orket.cmd." .. name) end
  end
  return nil
end
M.load_command = load_command

function M.usage(out)
  out = out or io.stdout
  out:write("usage: orket <command> [arguments]\n\ncommands:\n")
  for _, name in ipairs(M.COMMANDS) do
    local c = require("orket.cmd." .. name)
    out:write(string.format("  %-10s %s\n", name, c.summary))
  end
  out:write("\n'orket help COMMAND' shows a command's usage.\n")
end

--- open_store(dir, create) -> db | nil: a project's store for a command; on failure the
--- message is printed and the command returns 1 (orket.project.open_store says why).
function M.open_store(dir, create)
  local db, err = require("orket.project").open_store(dir, create)
  if not db then M.err("%s", err) end
  return db
end

-- A usage error: the message, the command's usage, exit status 2.
function M.usage_error(cmd, fmt, ...)
  M.err(fmt, ...)
  if cmd and cmd.usage then io.stderr:write("usage: ", cmd.usage, "\n") end
  return M.EXIT.usage
end

-- Reports task failures that nobody joined (errors in callbacks, background tasks).
function M.flush_unhandled()
  local task = require "orket.task"
  for _, e in ipairs(task.unhandled) do M.err("%s", e) end
  local n = #task.unhandled
  task.unhandled = {}
  return n
end

function M.main(argv)
  local name = argv[1]
  if name == nil then
    M.usage(io.stderr)
    return M.EXIT.usage
  end
  if name == "--version" or name == "-v" then name = "version" end
  if name == "--help" or name == "-h" then name = "help" end
  local cmd = load_command(name)
  if not cmd then
    M.err("unknown command '%s'", name)
    M.usage(io.stderr)
    return M.EXIT.usage
  end
  local args = {}
  for i = 2, #argv do args[#args + 1] = argv[i] end
  args[0] = argv[0]
  local status = cmd.run(args, M)
  io.stdout:flush()
  return status or 0
end

return M
