-- orket.clock: the one "now" of the calendar-scale features (the bug-fix phase's days,
-- sandboxes' uptime), in seconds since the epoch. Whoever needs the date is handed a clock
-- object; tests move theirs instead of sleeping (advance), and move the clock of another
-- process through the file ORKET_CLOCK_OFFSET_FILE names, which holds an offset in seconds
-- (read again whenever it changes). Deadlines on the loop keep the loop's monotonic time:
-- moving a clock never fires a timeout.
local uv = require "luv"

local M = {}

local Clock = {}
Clock.__index = Clock

local function file_offset(self)
  local path = self.file
  if not path then return 0 end
  local st = uv.fs_stat(path)
  if not st then return 0 end
  local m = st.mtime.sec * 1e9 + st.mtime.nsec + st.size
  if m ~= self.mtime then
    local f = io.open(path, "r")
    local text = f and f:read(64) or ""
    if f then f:close() end
    self.file_value, self.mtime = tonumber(text:match("^%s*(%-?[%d.]+)")) or 0, m
  end
  return self.file_value
end

--- clock:now() -> seconds since the epoch (a float)
function Clock:now()
  local s, us = uv.gettimeofday()
  return s + us / 1e6 + self.offset + file_offset(self)
end

--- clock:advance(seconds): moves this clock forward (or back)
function Clock:advance(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds then error("bad argument #1 to 'advance' (number expected)", 2) end
  self.offset = self.offset + seconds
end

--- clock:iso([t]) -> "2026-11-23T10:00:00Z" (now by default)
function Clock:iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t or self:now()))
end

--- new([{offset_file=, offset=}]) -> a clock; system() -> the process's own, whose offset
--- file comes from ORKET_CLOCK_OFFSET_FILE
function M.new(o)
  o = o or {}
  local file = o.offset_file
  if file == "" then file = nil end
  return setmetatable({ offset = o.offset or 0, file = file, file_value = 0 }, Clock)
end

function M.system()
  return M.new { offset_file = os.getenv("ORKET_CLOCK_OFFSET_FILE") }
end

M.DAY = 86400

--- parse_time("2026-11-22T10:00:00Z" | "...+02:00" | "...123Z") -> seconds since the epoch | nil:
--- an ISO 8601 time as forges, the stores and the leases write it
function M.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)%.?%d*(.*)$")
  if not y then return nil end
  local off = 0
  if rest ~= "Z" then
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    off = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  -- days from the civil date (proleptic Gregorian), without the local time zone of os.time
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + tonumber(d) - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) - off
end

return M
