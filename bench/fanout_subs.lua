-- The subscribers of bench/fanout.lua, in a process of their own so that their CPU is
-- counted apart: one event stream (GET /v1/events) per URL given, each counting its
-- comment events. Prints "ready" once every stream is open, then "done N" each time every
-- stream has seen N x EVENTS comments (N = 1, 2, ...); exits when stdin closes.
--   build/orket lua bench/fanout_subs.lua EVENTS KEY URL...
-- (bench/run.sh runs every bench/*.lua without arguments: this one alone measures nothing)
if not (arg and arg[1]) then return end
local EVENTS, KEY = tonumber(arg[1]), arg[2]
local urls = { table.unpack(arg, 3) }
assert(EVENTS and KEY and #urls > 0, "usage: fanout_subs.lua EVENTS KEY URL...")
local uv = require "luv"

local counts, pat = {}, "event: comment\n"
for s, url in ipairs(urls) do
  counts[s] = 0
  local r = assert(require("orket.c.http").request { url = url .. "/v1/events",
    headers = { "Authorization: Bearer " .. KEY }, total_timeout_ms = 3600000 })
  assert(r:headers() == 200, "a subscriber was refused")
  -- a chunk may end mid-line: the last few bytes are carried over
  orket.spawn(function()
    local carry = ""
    while true do
      local ev = r:read()
      if not ev then break end
      local text = carry .. table.concat(ev)
      counts[s] = counts[s] + select(2, text:gsub(pat, ""))
      carry = text:sub(-(#pat - 1))
    end
  end)
end
orket.sleep(300)
io.stdout:write("ready\n")
io.stdout:flush()
local stdin = uv.new_pipe(false)
stdin:open(0)
local open = true
stdin:read_start(function(_, data) if not data then open = false end end)
local n = 1
while open do
  local least = math.huge
  for s = 1, #urls do least = math.min(least, counts[s]) end
  if least >= n * EVENTS then
    for s = 1, #urls do assert(counts[s] <= n * EVENTS, "a subscriber saw an event twice") end
    io.stdout:write("done " .. n .. "\n")
    io.stdout:flush()
    n = n + 1
  end
  orket.sleep(20)
end
os.exit(0)
