-- orket: the host API that trusted scripts (`orket lua`, the REPL, the engine) see as the
-- global `orket`. Each field is a module of its own; this file only gathers them.
local rt = require "orket.c.runtime"
local task = require "orket.task"

local orket = {
  version = rt.version(),
  now = rt.now,          -- monotonic milliseconds
  sleep = rt.sleep,      -- suspends the calling task
  spawn = task.spawn,    -- starts a task
  task = task,
  stats = rt.stats,      -- memory and pending-wait counts
  home = rt.home(),      -- where Orket's own lua/, roles/, tools/ live
}

-- Loaded on first use, so `orket version` does not pay for what it does not touch.
local lazy = {
  sandbox = "orket.sandbox",
  pretty = "orket.pretty",
  json = "cjson.safe",
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
