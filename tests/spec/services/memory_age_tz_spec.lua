-- A memory's age in days (orket.engine.context.age_days: the prompt's "N days old" and the
-- drop-out by context.memory_max_age_days) does not depend on the machine's time zone. Read
-- with os.time, which takes the stored UTC fields as local time, every age was an hour over
-- in a zone's summer time: a memory 23.5 hours old was "1 day old", and one dropped out an
-- hour early. The zone is the process's (TZ at its start), so each runs in a process of its own.
local H = require "tests.helpers"

local SCRIPT = [[
local c = require "orket.engine.context"
io.write(c.age_days("2026-07-09T12:30:00.000Z", 1783684800), " ") -- 23.5 h before 2026-07-10T12:00:00Z
io.write(c.age_days("2027-01-04T12:30:00.000Z", 1799150400), " ") -- 23.5 h before 2027-01-05T12:00:00Z
io.write(c.age_days("2027-01-03T12:30:00.000Z", 1799150400), " ") -- 47.5 h
io.write(c.age_days("2026-07-09T12:00:00.000Z", 1783684800), " ") -- 24 h to the second
io.write(c.age_days("2026-07-10T12:00:01Z", 1783684800), " ")     -- a second in the future
io.write(c.age_days("not a time", 1783684800))
]]

describe("a memory's age in days", function()
  teardown(H.cleanup)

  it("is the same in every time zone, summer time or not", function()
    local script = H.tmpdir() .. "/age.lua"
    H.write(script, SCRIPT)
    -- northern summer (London, St John's), southern summer (Chatham), no summer time (Kolkata)
    for _, tz in ipairs { "UTC", "Europe/London", "America/St_Johns", "Pacific/Chatham", "Asia/Kolkata" } do
      local r = H.orket("lua " .. H.quote(script), { env = { TZ = tz } })
      assert.equal(0, r.status, r.stderr)
      assert.equal("0 0 1 1 0 0", r.stdout, "TZ=" .. tz)
    end
  end)
end)
