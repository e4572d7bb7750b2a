-- The bug-fix phase's end (orket.sandboxes.bugfix) on a clock the test moves: 7 days by
-- default, extended a day at a time while bugs keep coming, never past max_days.
local bugfix = require "orket.sandboxes.bugfix"
local clock = require "orket.clock"
local ss = require "orket.settings.sandbox"

local DAY = clock.DAY
local S = ss.bug_fix {}

describe("the bug-fix phase", function()
  it("ends after bug_fix.days when bugs stop coming", function()
    local c = clock.new()
    local t0 = c:now()
    local bugs = { t0 + 0.5 * DAY, t0 + 1.2 * DAY }
    c:advance(3 * DAY)
    local st = bugfix.status(t0, bugs, c:now(), S)
    assert.is_false(st.ended)
    assert.equal(4, st.day)
    assert.equal(t0 + 7 * DAY, st.ends_at)
    assert.equal(0, st.rate)
    assert.is_true(math.abs(st.overall - 2 / 3) < 1e-9)
    c:advance(4 * DAY)
    st = bugfix.status(t0, bugs, c:now(), S)
    assert.is_true(st.ended)
    assert.equal(t0 + 7 * DAY, st.ends_at)
    assert.equal(0, st.extended)
    assert.matches("bug_fix.days %(7%) passed", st.reason)
  end)

  it("extends a day at a time while the last day's bugs are above extend_above", function()
    local c = clock.new()
    local t0 = c:now()
    -- two bugs on day 7 and two on day 8, none after
    local bugs = { t0 + 6.5 * DAY, t0 + 6.6 * DAY, t0 + 7.3 * DAY, t0 + 7.4 * DAY }
    c:advance(7.5 * DAY)
    local st = bugfix.status(t0, bugs, c:now(), S)
    assert.is_false(st.ended)
    assert.equal(t0 + 8 * DAY, st.ends_at)
    assert.equal(1, st.extended)
    c:advance(1 * DAY) -- day 9: two more bugs came on day 8, so one more day
    st = bugfix.status(t0, bugs, c:now(), S)
    assert.is_false(st.ended)
    assert.equal(t0 + 9 * DAY, st.ends_at)
    c:advance(1 * DAY)
    st = bugfix.status(t0, bugs, c:now(), S)
    assert.is_true(st.ended)
    assert.equal(t0 + 9 * DAY, st.ends_at)
    assert.equal(2, st.extended)
    assert.matches("0 bug%(s%) in the last day", st.reason)
  end)

  it("never runs past max_days however many bugs come", function()
    local c = clock.new()
    local t0 = c:now()
    local bugs = {}
    for h = 0, 40 * 24, 6 do bugs[#bugs + 1] = t0 + h * 3600 end
    c:advance(27.9 * DAY)
    local st = bugfix.status(t0, bugs, c:now(), S)
    assert.is_false(st.ended)
    assert.equal(t0 + 28 * DAY, st.ends_at)
    c:advance(0.2 * DAY)
    st = bugfix.status(t0, bugs, c:now(), S)
    assert.is_true(st.ended)
    assert.equal(t0 + 28 * DAY, st.ends_at)
    assert.equal(21, st.extended)
    assert.matches("max_days %(28%) reached", st.reason)
    assert.equal(4, st.rate)
  end)

  it("follows the project's settings", function()
    local s = ss.bug_fix { bug_fix = { days = 2, max_days = 3, extend_above = 0 } }
    local c = clock.new()
    local t0 = c:now()
    c:advance(2.5 * DAY)
    local st = bugfix.status(t0, { t0 + 1.5 * DAY }, c:now(), s)
    assert.is_false(st.ended) -- one bug on day 2 is above 0: one more day
    assert.equal(t0 + 3 * DAY, st.ends_at)
    c:advance(DAY)
    assert.is_true(bugfix.status(t0, { t0 + 1.5 * DAY }, c:now(), s).ended)
  end)
end)

describe("a clock", function()
  it("moves another process's now through its offset file", function()
    local H = require "tests.helpers"
    local dir = H.tmpdir()
    local file = dir .. "/offset"
    local c = clock.new { offset_file = file }
    local before = c:now()
    H.write(file, tostring(10 * DAY) .. "\n")
    assert.is_true(c:now() - before >= 10 * DAY)
    H.write(file, "0")
    assert.is_true(c:now() - before < DAY)
    assert.has_error(function() c:advance("x") end, "bad argument #1 to 'advance' (number expected)")
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", c:iso())
    H.cleanup()
  end)
end)
