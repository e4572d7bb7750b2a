-- orket lua FILE [ARGS...]: runs a trusted Lua script with the runtime (like `nvim -l`).
-- The script runs as a task, so it can wait (orket.sleep, model calls) at top level; the
-- loop runs until the script and everything it started have finished.
local task = require "orket.task"
local orket_api = require "orket"
local rt = require "orket.c.runtime"
local compile = require("orket.scriptenv").compile

local cmd = { name = "lua", summary = "run a trusted Lua script with the runtime" }
cmd.args = {
  usage = "orket lua FILE [ARGS...]   (FILE '-' reads standard input), or orket lua -e CODE [ARGS...]",
  -- unlike lua(1), -e's chunk is the script: the words after it are its arguments (arg[1..]
  -- and ...), none is run as a file; programs that start orket lua rely on it
  { "-e", value = "CODE", key = "code", what = "a chunk of code, run as the script: the words after it are its "
    .. "arguments, not a file to run as lua(1) would", last = true },
  -- a script's own arguments are its own, options too
  { "FILE|ARGS", many = true, rest = true, key = "words" },
}
-- words_after: only the first word can ask for help
cmd.words_after = 1

-- Reads a script's file (a shebang line allowed, precompiled chunks refused)
-- -> chunk | nil, message.
local function load_file(file)
  local f, oerr = io.open(file, "rb")
  if not f then return nil, "cannot open " .. oerr end
  -- a directory opens on Linux, and reading it fails (EISDIR)
  local src, rerr = f:read("a")
  f:close()
  if not src then return nil, "cannot read " .. file .. ": " .. tostring(rerr) end
  if src:byte(1) == 27 then return nil, file .. ": precompiled chunks are not run" end
  src = src:gsub("^#![^\n]*", "")
  return compile(src, "@" .. file)
end

-- The chunk to run: -e CODE, standard input for '-', else the file -> fn | nil, message.
local function load_chunk(code, file)
  if code then return compile(code, "=(command line)") end
  if file == "-" then return compile(io.stdin:read("a"), "=stdin") end
  return load_file(file)
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local words = o.words or {}
  local file
  if not o.code then
    file = table.remove(words, 1)
    if file == nil then return cli.usage_error(cmd, "lua needs a script file") end
  end
  local fn, err = load_chunk(o.code, file)
  if not fn then
    cli.err("%s", err)
    return 1
  end
  -- Like lua.c: arg[0] is the script, arg[1..] its arguments.
  local a = { [0] = file or "-e" }
  for _, w in ipairs(words) do a[#a + 1] = w end
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

return cmd
