-- bench.procstat: the CPU time processes have used, from /proc: what a benchmark that spans
-- several processes (servers, PostgreSQL, itself) sums for its "CPU of every process".
local uv = require "luv"

local M = {}

local TICK_US = 1e6 / 100 -- Linux's USER_HZ

-- utime, stime, cutime, cstime of a process (its children's once they were waited for), us
local function times(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return 0, 0 end
  local st = f:read("a")
  f:close()
  local rest = st:match("%) (.*)$")
  local v = {}
  for w in rest:gmatch("%S+") do v[#v + 1] = w end
  -- (fields 14-17 of the line; the first of rest is field 3)
  local own = (tonumber(v[12]) + tonumber(v[13])) * TICK_US
  local kids = (tonumber(v[14]) + tonumber(v[15])) * TICK_US
  return own, kids
end

local function children(pid)
  local p = io.popen("ps -o pid= --ppid " .. pid)
  local out = {}
  for c in p:read("a"):gmatch("%d+") do out[#out + 1] = tonumber(c) end
  p:close()
  return out
end

--- cpu_us(pids, postmaster_pid_file) -> microseconds, and {servers =, postgres =, self =}:
--- the CPU of the processes pids (and of their children that ended), of the PostgreSQL
--- server whose postmaster.pid is named (its processes alive and ended) and of this
--- process; the parts apart
function M.cpu_us(pids, pidfile)
  local parts = { servers = 0, postgres = 0, self = 0 }
  for _, pid in ipairs(pids) do
    local own, kids = times(pid)
    parts.servers = parts.servers + own + kids
  end
  local f = io.open(pidfile)
  local pm = f and tonumber(f:read("l"))
  if f then f:close() end
  if pm then
    local own, kids = times(pm)
    parts.postgres = own + kids
    for _, c in ipairs(children(pm)) do parts.postgres = parts.postgres + (times(c)) end
  end
  local u = uv.getrusage()
  parts.self = (u.utime.sec + u.stime.sec) * 1e6 + u.utime.usec + u.stime.usec
  return parts.servers + parts.postgres + parts.self, parts
end

return M
