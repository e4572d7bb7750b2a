-- orket.sandboxes.pidstart: a process named by its pid and its start time, so that a pid
-- the kernel gave to a later process is not taken for the one that held it (a sandbox's
-- owner, a claim on kept databases). Reads /proc/PID/stat.
local M = {}

--- start_time(pid) -> the process's start time (clock ticks since boot, as text) | nil when
--- there is no such process: with the pid it names one process, never a later one that
--- reused the number
function M.start_time(pid)
  pid = math.tointeger(pid) -- luv gives pids as floats
  if not pid then return nil end
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local st = f:read("a")
  f:close()
  -- the command name may hold anything but not after the last ')'
  local rest = st and st:match("^%d+ %b() (.*)$")
  if not rest then return nil end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- stat's field 22 (starttime) is the 20th after the name; field 3 (state) the first
  if fields[1] == "Z" then return nil end
  return fields[20]
end

return M
