-- A first run of the runtime: three tasks wait on the loop at once, and an operator-style
-- script runs in a restricted environment that stops a runaway loop.
local start = orket.now()
local done = {}
local tasks = {}
for i, ms in ipairs({ 30, 10, 20 }) do
  tasks[i] = orket.spawn(function()
    orket.sleep(ms)
    done[#done + 1] = ms
  end)
end
for _, t in ipairs(tasks) do t:join() end
print(string.format("three tasks slept concurrently: finished in order %s after %.0f ms",
  table.concat(done, ", "), orket.now() - start))

local box = orket.scriptenv.new { name = "example-role.lua", instructions = 1000000 }
local fn = assert(box:load([[
  local n = 0
  while true do pcall(function() n = n + 1 end) end
]]))
local ok, msg, code = box:pcall(fn)
print("a looping script was stopped: " .. tostring(ok) .. ", " .. code .. ", " .. msg:match("^[^\n]*"))
print("orket " .. orket.version .. " is healthy")
