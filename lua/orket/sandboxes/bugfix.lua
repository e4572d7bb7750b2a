-- orket.sandboxes.bugfix: when a rock's bug-fix phase ends. Pure arithmetic over the phase's
-- start, the times bugs were filed and a clock's now (orket.clock), so a test runs a 28-day
-- phase in microseconds. The phase lasts bug_fix.days; at each day's end from then on it is
-- extended by a day while the bugs filed in the last 24 hours are more than
-- bug_fix.extend_above, and never past bug_fix.max_days. Contract: docs/sandbox.md.
local DAY = require("orket.clock").DAY

local M = {}

-- bugs filed in (t - DAY, t]
local function rate_at(times, t)
  local n = 0
  for _, x in ipairs(times) do
    if x > t - DAY and x <= t then n = n + 1 end
  end
  return n
end

--- status(started_at, bug_times, now, settings) -> {ended=, ends_at=, day=, rate=,
--- overall=, extended=, reason=}
--- ended: the phase is over at ends_at (<= now); otherwise ends_at is when it will end
--- unless bugs keep coming. day: the phase's day now (1-based). rate: bugs in the last 24
--- hours; overall: bugs per day since the start. extended: days added so far.
function M.status(started_at, times, now, s)
  local elapsed = math.max(0, now - started_at)
  local out = { day = math.floor(elapsed / DAY) + 1, rate = rate_at(times, now), extended = 0 }
  local filed = 0
  for _, x in ipairs(times) do if x >= started_at and x <= now then filed = filed + 1 end end
  out.overall = filed / math.max(1, elapsed / DAY)
  for d = s.days, s.max_days do
    local t = started_at + d * DAY
    out.ends_at, out.extended = t, d - s.days
    if t > now then
      out.ended = false
      return out
    end
    local r = rate_at(times, t)
    if d == s.max_days then
      out.ended, out.reason = true, string.format("bug_fix.max_days (%d) reached", s.max_days)
      return out
    end
    if r <= s.extend_above then
      out.ended = true
      out.reason = d == s.days and string.format("bug_fix.days (%d) passed", s.days)
        or string.format("%d bug(s) in the last day, not above bug_fix.extend_above (%g)", r, s.extend_above)
      return out
    end
  end
end

return M
