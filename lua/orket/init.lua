-- orket: the host API that trusted scripts (`orket lua`, the REPL, the engine) see as the
-- global `orket`. Each field is a module of its own; this file only gathers them.
local rt = require "orket.c.runtime"
local task = require "orket.task"

-- The fields' contract comments are also what `help(orket)` shows in the REPL.
local orket = {
  --- orket.version: Orket's version ("X.Y.Z")
  version = rt.version(),
  --- orket.now() -> ms: a monotonic clock in milliseconds
  now = rt.now,
  --- orket.sleep(ms): suspends the calling task (a REPL line is one) for ms
  sleep = rt.sleep,
  --- orket.spawn(fn, ...) -> task (:join, :cancel); in the REPL it runs only during a line
  spawn = task.spawn,
  --- orket.task: tasks (orket.task.spawn, orket.task.new)
  task = task,
  --- orket.stats() -> memory and pending-wait counts, and left_running: git remote operations
  --- (push, fetch_main, fetch_branch) a cancelled task left to run on until they end
  stats = rt.stats,
  --- orket.home: where Orket's own lua/, roles/ and tools/ live
  home = rt.home(),
}

-- Loaded on first use, so `orket version` does not pay for what it does not touch.
local lazy = {
  --- orket.scriptenv: restricted environments for scripts, with budgets (docs/runtime.md)
  scriptenv = "orket.scriptenv",
  -- its name before: scripts written for it still find it (not documented, so not completed)
  sandbox = "orket.scriptenv",
  --- orket.pretty.render(v) -> the text the REPL prints for v
  pretty = "orket.pretty",
  --- orket.json.encode(v), orket.json.decode(text): JSON (lua-cjson's safe variant)
  json = "cjson.safe",
  --- orket.llm: the model clients (orket.llm.open(config)); docs/llm.md
  llm = "orket.llm",
}

return setmetatable(orket, {
  __index = function(t, k)
    local name = lazy[k]
    if name == nil then return nil end
    local m = require(name)
    rawset(t, k, m)
    return m
  end,
})
