-- Cold start: how long `orket version` and `orket lua -e ''` take as whole processes,
-- spawned one after another (luv spawn on the runtime's own loop).
local uv = require "luv"

local BIN = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local RUNS = tonumber(arg[1]) or 50

local function time_once(args)
  local t0 = uv.hrtime()
  local co = coroutine.running()
  local handle
  handle = uv.spawn(BIN, { args = args, stdio = { nil, nil, nil } }, function(code)
    handle:close()
    assert(coroutine.resume(co, code))
  end)
  local code = coroutine.yield()
  assert(code == 0, "exit " .. tostring(code))
  return (uv.hrtime() - t0) / 1e6
end

local function measure(label, args)
  local t = {}
  for i = 1, RUNS do t[i] = time_once(args) end
  table.sort(t)
  print(string.format("%-28s min %6.2f ms  median %6.2f ms  max %6.2f ms  (%d runs)",
    label, t[1], t[(RUNS + 1) // 2], t[RUNS], RUNS))
end

-- The script runs as a task, but luv's callbacks resume it directly, so drive by hand:
local done = false
local co = coroutine.create(function()
  measure("orket version", { "version" })
  measure("orket lua -e ''", { "lua", "-e", "" })
  done = true
end)
assert(coroutine.resume(co))
while not done do uv.run("once") end
