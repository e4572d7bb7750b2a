-- orket.sandboxes.pidstart: a process named by its pid and its start time, so that a pid
-- the kernel gave to a later process is not taken for the one that held it (a sandbox's
-- owner, a claim on kept databases). Reads /proc/PID/stat, for orket.engine.runlease too
-- (a run lease's owner), each caller deciding what a failure to read it means; and where
-- such a name means something (place, machine), which both record with their owners.
local uv = require "luv"

local M = {}

-- Where this process's pids mean something: the kernel's boot id and its pid namespace's
-- inode ("<boot id>.<inode>"), nil where /proc does not say. A host name does not name a pid
-- namespace (containers sharing the host's name each have their own), so another process's
-- pid is looked up in /proc only when its owner names this same place. Where the kernel has
-- time namespaces (5.6), the time namespace's inode too ("<boot id>.<pid ns>.<time ns>"):
-- /proc/PID/stat's start time is shifted by the reader's boottime offset, so a process of
-- another time namespace reads another start time for the same live owner, which it would
-- take for dead (a run worked twice, a live sandbox marked exited).
local function read_place()
  local f = io.open("/proc/sys/kernel/random/boot_id")
  local boot = f and f:read("l")
  if f then f:close() end
  local ns = uv.fs_readlink("/proc/self/ns/pid")
  ns = ns and ns:match("^pid:%[(%d+)%]$")
  boot = boot and boot:match("^[%x%-]+$")
  if not (boot and ns) then return nil end
  local time = uv.fs_readlink("/proc/self/ns/time")
  time = time and time:match("^time:%[(%d+)%]$")
  return boot .. "." .. ns .. (time and ("." .. time) or "")
end

--- place: this process's place ("<boot id>.<pid ns>[.<time ns>]") | nil (/proc does not say)
M.place = read_place()

--- boot: the kernel's boot id this process runs under | nil (no place)
M.boot = M.place and M.place:match("^([%x%-]+)%.") or nil

--- host: this machine's host name
M.host = uv.os_gethostname() or "localhost"

--- machine: "<host>/<place>" | nil (no place): what a sandbox row records of its owner, so
--- that another process judges the owner's pid only where it means something. The host
--- name tells the same machine rebooted (its boot id changed) from another machine.
--- (A host name that cannot be read is "localhost" here too: a row with no machine would be
--- judged by its pid on every other machine, which ends a live sandbox there; one named
--- "localhost" is taken for another's by none but a machine of that same name.)
M.machine = M.place and (M.host .. "/" .. M.place) or nil

--- parse_machine(text) -> host, boot id, place | nil (not a machine's text)
function M.parse_machine(text)
  if type(text) ~= "string" then return nil end
  local host, place = text:match("^([^/]*)/([%x%-]+%.[%d.]+)$")
  if not host then return nil end
  return host, place:match("^([%x%-]+)%."), place
end

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
