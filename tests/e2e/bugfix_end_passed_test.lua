-- `orket bugfix status` (and GET /v1/bugfix, the same phase.status) on a phase whose end has
-- passed while no tick has ended it yet (bug_fix.check_interval_ms, a run's or a worker's
-- start): it said "open ... ends <a time already past>", as if the end were to come. It
-- says the end passed and that the next tick closes the phase; the tick then ends it. The
-- clock is moved across processes through ORKET_CLOCK_OFFSET_FILE (orket.clock). On
-- PostgreSQL too (tests.backends).
local H = require "tests.helpers"
local cjson = require "cjson"
local backends = require "tests.backends"

local DAY = 86400

describe("a bug-fix phase past its end, before a tick", function()
  after_each(H.cleanup)

  it("is shown as ended, waiting for the next tick", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init --yes " .. H.quote(dir)).status)
    H.write(dir .. "/epics/rock.json", '{ "id": "R", "type": "rock", "name": "Rock", "epics": [ "START" ] }\n')
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
      .. "\nbug_fix = { days = 2, extend_above = 1.0, max_days = 4 }\n")
    backends.project(dir)
    local clockfile = dir .. "/clock-offset"
    H.write(clockfile, "0\n")
    local env = { ORKET_CLOCK_OFFSET_FILE = clockfile }
    local function orket(args)
      local r = H.orket(args, { cwd = dir, env = env })
      assert.equal(0, r.status, args .. ": " .. r.stderr .. r.stdout)
      return r.stdout
    end
    orket("import")
    orket("run R")
    local function status() return cjson.decode(orket("bugfix status --json")).phases[1] end
    assert.equal("open", status().status)
    -- a day and a half in, three bugs: its end (day 2) is to come
    H.write(clockfile, tostring(DAY * 3 // 2) .. "\n")
    for i = 1, 3 do orket("bug R 'BUG: thing " .. i .. "'") end
    local p = status()
    assert.equal("open", p.status)
    assert.is_nil(p.end_passed)
    assert.matches("; ends %S+Z\n$", orket("bugfix status"))
    -- past day 3 (extended a day at day 2's end, for those bugs), no bug in its last day:
    -- over, but no tick has run
    H.write(clockfile, tostring(3 * DAY + 60) .. "\n")
    p = status()
    assert.same({ "open", true }, { p.status, p.end_passed })
    assert.equal("0 bug(s) in the last day, not above bug_fix.extend_above (1)", p.end_reason)
    local line = orket("bugfix status")
    assert.equal("R: open, day 4, 3 bug(s) (3 open), 0 in the last 24 h, 1.00 a day; ended " .. p.ends_at
      .. " (extended 1 day(s)): 0 bug(s) in the last day, not above bug_fix.extend_above (1); the next tick "
      .. "closes the phase ('orket bugfix tick' does now)\n", line)
    -- the tick ends it as it said
    assert.equal(1, #cjson.decode(orket("bugfix tick --json")).ended)
    p = status()
    assert.same({ "ended", nil }, { p.status, p.end_passed })
  end)
end)
