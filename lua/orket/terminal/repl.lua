-- orket.terminal.repl: the interactive prompt behind `orket repl`. Reads with libedit (history,
-- editing), accepts multi-line input, prints results with orket.pretty, shows errors with
-- tracebacks, and lets Ctrl-C interrupt a running chunk without leaving the prompt.
-- Each chunk runs as a task, so it can wait on the loop (orket.sleep, model calls).
local le = require "orket.c.lineedit"
local rt = require "orket.c.runtime"
local task = require "orket.task"
local pretty = require "orket.pretty"
local help = require "orket.terminal.help"
local complete = require "orket.terminal.complete"
local nearest = require "orket.nearest"
local uv = require "luv"

local M = {}

--- compile(text) -> fn | nil, err, incomplete
--- Tries `return <text>` first so expressions print their values, then the text as a
--- statement. `incomplete` is true when more lines could complete the chunk.
function M.compile(text, env)
  -- An expression is evaluated as the arguments of a call, not returned as is: in `return
  -- f(x)` the call is a tail call, the chunk's frame is gone while f runs, and an error f
  -- raises at level 2 ("bad argument ... to 'turn'") would name the REPL's own code.
  -- Arguments keep every value (`1, 2` prints both); a newline ends a trailing comment, only
  -- where there may be one: Lua gives an expression's last step the line of the ")" after
  -- it, so `projet.board` failed at stdin:2 of a one-line chunk.
  local close = text:find("--", 1, true) and "\n)" or ")"
  local fn = load("return " .. text, "=stdin", "t", env)
    and load("return (function(...) return ... end)(" .. text .. close, "=stdin", "t", env)
  if fn then return fn end
  local err
  fn, err = load(text, "=stdin", "t", env)
  if fn then return fn end
  return nil, err, err:sub(-5) == "<eof>"
end

--- format_results(n, ...) -> text printed for a chunk's results (nil when there are none)
function M.format_results(n, ...)
  if n == 0 then return nil end
  local out = {}
  for i = 1, n do
    local v = (select(i, ...))
    out[i] = help.text_of(v) or pretty.render(v) -- `help` and its pages print as text
  end
  return table.concat(out, "\t")
end

--- trim_traceback(msg) -> msg without the frames of the REPL and task machinery below
--- the user's chunk (they say nothing about the user's code).
function M.trim_traceback(msg)
  local lines = {}
  for line in (msg .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
  while #lines > 1 do
    local l = lines[#lines]
    if l:find("orket/terminal/repl.lua", 1, true) or l:find("orket/task.lua", 1, true) or l:find("(...tail calls...)", 1, true) then
      lines[#lines] = nil
    else
      break
    end
  end
  return table.concat(lines, "\n")
end

--- hint(msg, env[, no_project]) -> "(board is project.board here)" | "(did you mean project?)"
--- | nil: for an error about a nil global (`board:list()`, `projet.board`), what the name
--- likely is: a field of the project (the help lists them under project.), else a global
--- spelt near it. no_project: why `project` is nil here, said when the error is about it.
function M.hint(msg, env, no_project)
  local name = tostring(msg):match("^[^\n]-%(global '([%a_][%w_]*)'%)")
  if not name or rawget(env, name) ~= nil then return nil end
  if name == "project" and no_project then return "(no project here: " .. no_project .. ")" end
  local proj = rawget(env, "project")
  local ok, v = pcall(function() return type(proj) == "table" and proj[name] end)
  if ok and v ~= nil and v ~= false then return string.format("(%s is project.%s here)", name, name) end
  local names = {}
  for k in pairs(env) do
    if type(k) == "string" and k:match("^[%a_][%w_]*$") then names[#names + 1] = k end
  end
  table.sort(names)
  local near = nearest.nearest(name, names)
  return near and string.format("(did you mean %s?)", near) or nil
end

-- -> path | nil, its name in a warning, why there is none (HOME unset: said, not silent;
-- ORKET_HISTORY="" turns it off on purpose)
local function history_path()
  local p = os.getenv("ORKET_HISTORY")
  if p then return p ~= "" and p or nil, "ORKET_HISTORY=" .. p end
  local home = os.getenv("HOME")
  if not home or home == "" then
    return nil, "the history file", "HOME is not set (set ORKET_HISTORY=FILE to keep one)"
  end
  local file = home:gsub("/+$", "") .. "/.orket_history"
  return file, "the history file " .. file
end

-- Why the history cannot be kept at path (a folder, a missing or read-only folder, a file
-- not writable) | nil: said when the prompt opens, so a person learns it before a session's
-- lines are lost, not at its end.
local function history_problem(path)
  local st = uv.fs_stat(path)
  if st then
    if st.type == "directory" then return "it is a folder, not a file" end
    local ok, err = uv.fs_access(path, "w")
    return not ok and string.format("it cannot be written (%s)", err or "no permission, or a read-only file system")
      or nil
  end
  local parent = path:match("^(.*)/[^/]*$") or "."
  if parent == "" then parent = "/" end
  local pst = uv.fs_stat(parent)
  if not (pst and pst.type == "directory") then return string.format("the folder %s does not exist", parent) end
  local ok, err = uv.fs_access(parent, "w")
  if not ok then
    return string.format("the folder %s cannot be written in (%s)", parent, err or "no permission, or a read-only file "
      .. "system")
  end
  return nil
end

--- runtime(api) -> orket, spawned: the `orket` the prompt offers, api with orket.spawn
--- keeping the tasks it starts in spawned (weak), so that the prompt's end stops those still
--- running (see run's spawned)
function M.runtime(api)
  local spawned = setmetatable({}, { __mode = "k" })
  local function spawn(fn, ...)
    if type(fn) ~= "function" then error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2) end
    local t = api.spawn(fn, ...)
    spawned[t] = true
    return t
  end
  return setmetatable({ spawn = spawn }, { __index = api }), spawned
end

-- At the prompt's end: the tasks orket.spawn started that still run are cancelled, as Ctrl-C
-- cancels a line's (a turn's run ends interrupted, the call in flight charged), and said:
-- left, they were dropped with the process and their run found "killed", silently.
local function stop_spawned(spawned, out)
  local n = 0
  for t in pairs(spawned or {}) do
    if (t.state == "running" or t.state == "new") and t:cancel() then n = n + 1 end
  end
  if n > 0 then
    out:write(string.format("stopped %d task%s orket.spawn started that %s still running (tasks run only while "
      .. "a line runs): a project:turn in one ends its run interrupted, which `orket resume RUN` goes on with "
      .. "(`orket runs` lists it)\n", n, n == 1 and "" or "s", n == 1 and "was" or "were"))
  end
  for _, e in ipairs(task.collect()) do out:write(e, "\n") end
  task.unhandled = {}
end

--- run{input=fn(prompt)->line|nil, output=file, env=table, spawned=set (M.runtime's),
--- no_project=why `project` is nil} -> exit status
function M.run(opts)
  opts = opts or {}
  local out = opts.output or io.stdout
  local env = opts.env or _G
  -- Tab completes the path of names before the cursor against env (on a terminal)
  local function completer(word) return complete.complete(env, word) end
  local readline = opts.input or function(prompt) return le.readline(prompt, completer) end
  local hist, named, none = history_path()
  if opts.input then hist, none = nil, nil end
  local why = none or hist and (history_problem(hist) or select(2, le.load_history(hist)))
  if why then
    io.stderr:write(string.format("orket: warning: no history is kept: %s: %s\n", named, why))
    hist = nil
  end
  local watch <close> = le.interrupts()
  -- On a terminal the Ctrl-C that stops a chunk is echoed as "^C" where the cursor is: the
  -- line is ended before the REPL says the chunk was interrupted.
  local echoes = out == io.stdout and not opts.input and le.isatty(0) and le.isatty(1)

  out:write("Orket ", rt.version(), " (", _VERSION, ")  Ctrl-D exits, Ctrl-C interrupts\n")
  local buffer = nil
  while true do
    out:flush()
    local line, interrupted = readline(buffer and ">> " or "> ")
    local hits = watch:take()
    if interrupted then -- Ctrl-C at the prompt drops the line (and any chunk in progress)
      buffer = nil
      out:write("\n")
    elseif line == nil then
      if buffer then -- end of input inside a chunk: drop it, like a fresh prompt
        buffer = nil
        out:write("\n")
      else
        out:write("\n")
        break
      end
    elseif hits > 0 and buffer then
      buffer = nil -- Ctrl-C while continuing a chunk abandons it
    else
      local text = buffer and (buffer .. "\n" .. line) or line
      local fn, err, incomplete = M.compile(text, env)
      if not fn and incomplete then
        buffer = text
      else
        buffer = nil
        if text:find("%S") then le.add_history(text) end
        if not fn then
          out:write(err, "\n")
        else
          local t = task.new(function() return table.pack(fn()) end)
          t.observed = true -- failures are shown here, not as unhandled
          watch:target(t.co)
          local hit = false -- a Ctrl-C came while the chunk ran
          t:start()
          while t.state == "running" do
            local alive = rt.run("once")
            if watch:take() > 0 then
              hit = true
              watch:target(nil) -- no stop hook may fire while the task is closed
              t:cancel()
            end
            if not alive and t.state == "running" then break end
          end
          watch:target(nil)
          if watch:take() > 0 then hit = true end -- the stop hook raised inside the chunk
          if hit and echoes then out:write("\n") end -- after the "^C" on the line
          if t.state == "done" then
            local r = t.results[1]
            local s = M.format_results(r.n, table.unpack(r, 1, r.n))
            if s then out:write(s, "\n") end
          elseif t.state == "canceled" then
            out:write("interrupted\n")
          elseif t.state == "failed" then
            out:write(M.trim_traceback(t.error), "\n")
            local h = M.hint(t.error, env, opts.no_project)
            if h then out:write(h, "\n") end
          else
            out:write("chunk stopped waiting on nothing (it yielded outside a wait)\n")
            t:cancel()
          end
          for _, e in ipairs(task.collect()) do out:write(e, "\n") end
          task.unhandled = {}
        end
      end
    end
  end
  stop_spawned(opts.spawned, out)
  local saved, serr = true, nil
  if hist then saved, serr = le.save_history(hist, 1000) end
  if not saved then io.stderr:write(string.format("orket: warning: %s: %s\n", named, serr)) end
  return 0
end

return M
