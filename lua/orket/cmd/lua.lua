-- orket lua FILE [ARGS...]: runs a trusted Lua script with the runtime (like `nvim -l`).
-- The script runs as a task, so it can wait (orket.sleep, model calls) at top level; the
-- loop runs until the script and everything it started have finished.
local task = require "orket.task"
local orket_api = require "orket"
local rt = require "orket.c.runtime"

local USAGE = "orket lua [-e CODE] FILE [ARGS...]   (FILE '-' reads standard input)"

local function run(args, cli)
  local code, file, first = nil, nil, 1
  if args[1] == "-e" then
    code = args[2]
    if code == nil then return cli.usage_error({ usage = USAGE }, "-e needs a chunk of code") end
    first = 3
  elseif args[1] and args[1]:match("^%-.") then
    return cli.usage_error({ usage = USAGE }, "unknown option '%s'", args[1])
  end
  if code == nil then
    file = args[first]
    if file == nil then return cli.usage_error({ usage = USAGE }, "lua needs a script file") end
    first = first + 1
  end

  local fn, err
  if code then
    fn, err = load(code, "=(command line)", "t")
  elseif file == "-" then
    fn, err = load(io.stdin:read("a"), "=stdin", "t")
  else
    local f, oerr = io.open(file, "rb")
    if not f then
      cli.err("cannot open %s", oerr)
      return 1
    end
    local src = f:read("a")
    f:close()
    if src:byte(1) == 27 then
      cli.err("%s: precompiled chunks are not run", file)
      return 1
    end
    src = src:gsub("^#![^\n]*", "") -- allow a shebang line
    fn, err = load(src, "@" .. file, "t")
  end
  if not fn then
    cli.err("%s", err)
    return 1
  end

  -- Like lua.c: arg[0] is the script, arg[1..] its arguments.
  local a = { [0] = file or "-e" }
  for i = first, #args do a[#a + 1] = args[i] end
  _G.arg = a
  _G.orket = orket_api

  local t = task.spawn(fn, table.unpack(a))
  local ok, e = t:join()
  -- Finish what the script left running (timers, spawned tasks), as `lua` would.
  rt.run("default")
  local failures = cli.flush_unhandled()
  if not ok then
    cli.err("%s", e)
    return 1
  end
  return failures > 0 and 1 or 0
end

-- words_after: only the first word can ask for help; the script's own arguments are its own.
return { summary = "run a trusted Lua script with the runtime", usage = USAGE, words_after = 1, run = run }
