-- orket.sandboxes.pidstart: a process named by its pid and its start time, so that a pid
-- the kernel gave to a later process is not taken for the one that held it (a sandbox's
-- owner, a claim on kept databases). Reads /proc/PID/stat, for orket.engine.runlease too
-- (a run lease's owner), each caller deciding what a failure to read it means.
local M = {}

--- read(pid) -> start time (stat's field 22, clock ticks since boot, as text), state (field
--- 3: R, S, Z, ...) | nil, why, errno: "open" (the entry could not be opened; errno: its
--- errno), "empty" (opened, nothing read: the process went meanwhile) or "parse" (not a
--- stat line). pid: an integer.
function M.read(pid)
  local f, _, errno = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil, "open", errno end
  local st = f:read("a")
  f:close()
  if st == nil or st == "" then return nil, "empty" end
  -- the command name (field 2, in parentheses) may hold anything, ')' and ') (' too, but
  -- no field after it holds a ')': the greedy match backtracks to the last ') '
  local rest = st:match("^%d+ %(.*%) (.*)$")
  if not rest then return nil, "parse" end
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  -- stat's field 22 (starttime) is the 20th after the name; field 3 (state) the first
  if not fields[20] then return nil, "parse" end
  return fields[20], fields[1]
end

--- stat(pid) -> start time (clock ticks since boot, as text), state (R, S, Z, ...) | nil, why:
--- "gone" (no such process: its /proc entry is not there) or "unreadable" (there, but it
--- could not be read or parsed: the caller decides, and never takes it for gone)
function M.stat(pid)
  pid = math.tointeger(pid) -- luv gives pids as floats
  if not pid then return nil, "gone" end
  local start, state, errno = M.read(pid)
  if start then return start, state end
  if state == "open" then return nil, (errno == 2 or errno == 3) and "gone" or "unreadable" end
  return nil, state == "empty" and "gone" or "unreadable"
end

--- same(pid, start) -> whether pid is still the process that started at start: gone, a
--- zombie (Z) or dead (X), or started at another time is not; an entry there but unreadable
--- (EMFILE, EACCES) is taken as the same, so a live owner's data is never taken for a dead one's
function M.same(pid, start)
  local now, state = M.stat(pid)
  if not now then return state == "unreadable" end
  return state ~= "Z" and state ~= "X" and now == start
end

--- start_time(pid) -> the process's start time (as text) | nil when there is no such
--- process or it has ended (a zombie, Z, or dead, X: only not yet waited for) or its entry cannot be
--- read: with the pid it names one process, never a later one that reused the number
function M.start_time(pid)
  local start, state = M.stat(pid)
  if not start or state == "Z" or state == "X" then return nil end
  return start
end

return M
