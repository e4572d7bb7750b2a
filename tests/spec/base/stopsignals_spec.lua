-- orket.stopsignals: the first SIGINT or SIGTERM stops a command once; from then on both
-- are ignored (SigIgn in /proc), so a storm of them costs the stopping process nothing.
local H = require "tests.helpers"

describe("orket.stopsignals", function()
  after_each(H.cleanup)

  it("stops once on the first SIGTERM, then ignores SIGINT and SIGTERM while it stops", function()
    local dir = H.tmpdir()
    -- a command that takes two seconds to stop, counting its stops
    H.write(dir .. "/cmd.lua", [[
local rt = require "orket.c.runtime"
local stops, stopping = 0, false
require("orket.stopsignals").on_stop(function(name)
  stops = stops + 1
  stopping = true
  local f = io.open("stopped", "w") f:write(name) f:close()
end)
io.open("ready", "w"):close()
while not stopping do rt.sleep(10) end
rt.sleep(2000)
io.open("stops", "w"):write(stops):close()
os.exit(0) -- the signal handles stay open until the process ends
]])
    os.execute(string.format("cd %s && { %s lua cmd.lua & echo $! >pid; wait $!; echo $? >rc; } >/dev/null 2>&1 &",
      H.quote(dir), H.quote(H.BIN)))
    H.wait_for(function() return H.read(dir .. "/ready") end, "the command to start")
    local pid = tonumber(H.wait_for(function() return (H.read(dir .. "/pid") or ""):match("^%d+") end, "its pid"))
    local function rc() return (H.read(dir .. "/rc") or ""):match("^%d+") end
    finally(function() -- failed, it would wait for good
      if rc() then return end -- ended: its pid may be another process's by now
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
      -- its shell writes rc into dir once it has ended: waited for, or it races dir's removal
      H.wait_for(rc, "the killed command's shell to end")
    end)
    os.execute("kill -TERM " .. pid)
    -- the handler creates the file, then writes it: an empty file is a stop under way
    H.wait_for(function() return (H.read(dir .. "/stopped") or "") ~= "" end, "the stop")
    assert.equal("sigterm", H.read(dir .. "/stopped"))
    local mask = tonumber(H.read("/proc/" .. pid .. "/status"):match("\nSigIgn:%s*(%x+)"), 16)
    assert.equal(1, (mask >> 1) & 1, "SIGINT ignored")
    assert.equal(1, (mask >> 14) & 1, "SIGTERM ignored")
    os.execute("kill -INT " .. pid .. "; kill -TERM " .. pid)
    assert.equal("0", H.wait_for(rc, "its end"))
    assert.equal("1", H.read(dir .. "/stops"))
  end)

  -- rt_close gives the signals their default action back for a moment (their handles
  -- closed), holding them blocked on the loop's thread meanwhile; a thread that did not
  -- block them would take one then and end a cleanly stopping server with 143
  it("are taken by the loop's thread alone: libuv's pool threads block SIGINT, SIGTERM and SIGHUP", function()
    local dir = H.tmpdir()
    H.write(dir .. "/threads.lua", [[
local uv = require "luv"
local done = false
uv.fs_stat(".", function() done = true end) -- work on the pool
while not done do require("orket.c.runtime").sleep(1) end
local self = uv.os_getpid()
local h = assert(uv.fs_scandir("/proc/self/task"))
local out = {}
while true do
  local tid = uv.fs_scandir_next(h)
  if not tid then break end
  local st = io.open("/proc/self/task/" .. tid .. "/status"):read("a")
  local blk = tonumber(st:match("\nSigBlk:%s*(%x+)"), 16)
  local stop = (blk >> 1) & 1 == 1 and (blk >> 14) & 1 == 1 and blk & 1 == 1
  out[#out + 1] = (tonumber(tid) == self and "loop:" or "other:") .. tostring(stop)
end
table.sort(out)
print(table.concat(out, " "))
os.exit(0)
]])
    local r = H.orket("lua threads.lua", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local loop, others, blocked = 0, 0, 0
    for word in r.stdout:gmatch("%S+") do
      if word == "loop:false" then loop = loop + 1
      elseif word:match("^other:") then
        others = others + 1
        if word == "other:true" then blocked = blocked + 1 end
      end
    end
    assert.same({ 1, true, others }, { loop, others >= 1, blocked }, r.stdout)
  end)

  it("hold gives fn's results through, and the signals back when fn raises", function()
    local dir = H.tmpdir()
    -- SigCgt: the signals this process catches (bit 1 SIGINT, 14 SIGTERM, 0 SIGHUP)
    H.write(dir .. "/hold.lua", [[
local ss = require "orket.stopsignals"
local function caught()
  local mask = tonumber(io.open("/proc/self/status"):read("a"):match("\nSigCgt:%s*(%x+)"), 16)
  return (mask >> 1) & 1, (mask >> 14) & 1, mask & 1
end
print(select("#", ss.hold(function() return 1, nil, 3 end)), ss.hold(function() return 1, nil, 3 end))
print(pcall(ss.hold, function() error("boom", 0) end))
print(caught())
os.exit(0) -- (a handle left open would keep the loop, and this process, going)
]])
    local r = H.orket("lua " .. H.quote(dir .. "/hold.lua"), { wrap = "timeout 30" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("4\tnil\t1\tnil\t3\nfalse\tboom\n0\t0\t0\n", r.stdout)
  end)
end)
