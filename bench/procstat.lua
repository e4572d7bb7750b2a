-- bench.procstat: the CPU time processes have used, from /proc: what a benchmark that spans
-- several processes (servers, PostgreSQL, itself) sums for its "CPU of every process".
local uv = require "luv"

local M = {}

local TICK_US = 1e6 / 100 -- Linux's USER_HZ

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- A process's own CPU in us, to the nanosecond: the scheduler's time on the CPU of each of
-- its threads (/proc/PID/task/TID/schedstat). stat's utime and stime count 10 ms ticks, and
-- a measurement of a couple of CPU-seconds over ten processes read twice each was off by
-- up to a few percent from the ticks alone. nil when the kernel keeps no schedstat.
local function on_cpu_us(pid)
  local tasks = uv.fs_scandir("/proc/" .. pid .. "/task")
  if not tasks then return nil end
  local ns = 0
  while true do
    local tid = uv.fs_scandir_next(tasks)
    if not tid then break end
    local st = read("/proc/" .. pid .. "/task/" .. tid .. "/schedstat")
    local v = st and tonumber(st:match("^(%d+)"))
    if not v then return nil end
    ns = ns + v
  end
  return ns / 1000
end

-- A process's own CPU and that of its children that ended and were waited for (stat's
-- cutime and cstime: ticks), us
local function times(pid)
  local st = read("/proc/" .. pid .. "/stat")
  if not st then return 0, 0 end
  local rest = st:match("%) (.*)$")
  local v = {}
  for w in rest:gmatch("%S+") do v[#v + 1] = w end
  -- (fields 14-17 of the line; the first of rest is field 3)
  local own = on_cpu_us(pid) or (tonumber(v[12]) + tonumber(v[13])) * TICK_US
  local kids = (tonumber(v[14]) + tonumber(v[15])) * TICK_US
  return own, kids
end

-- the children of pid, from /proc (no `ps` started between two readings)
local function children(pid)
  local out = {}
  local tasks = uv.fs_scandir("/proc/" .. pid .. "/task")
  while tasks do
    local tid = uv.fs_scandir_next(tasks)
    if not tid then break end
    for c in (read("/proc/" .. pid .. "/task/" .. tid .. "/children") or ""):gmatch("%d+") do
      out[#out + 1] = tonumber(c)
    end
  end
  return out
end

--- of(pids) -> the CPU, us, of the processes pids and of their children that ended
function M.of(pids)
  local us = 0
  for _, pid in ipairs(pids) do
    local own, kids = times(pid)
    us = us + own + kids
  end
  return us
end

--- postgres(pidfile) -> the CPU, us, of the PostgreSQL server whose postmaster.pid is
--- named: its postmaster and every child, alive or ended; 0 when it is not running
function M.postgres(pidfile)
  local f = io.open(pidfile)
  local pm = f and tonumber(f:read("l"))
  if f then f:close() end
  if not pm then return 0 end
  return M.of { pm } + M.of(children(pm))
end

--- self() -> the CPU, us, of this process
function M.self()
  local u = uv.getrusage()
  return (u.utime.sec + u.stime.sec) * 1e6 + u.utime.usec + u.stime.usec
end

return M
