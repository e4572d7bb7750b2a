-- The web board's bug-fix phase line (web/app.js phaseText), run by node on GET /v1/bugfix's
-- phases: an open phase whose end has passed (the next tick closes it) is said as ended, as
-- orket bugfix status says it; it read "ends" and a time gone by, as a phase still running.
local H = require "tests.helpers"
local cjson = require "cjson"

describe("the web board's bug-fix phase line", function()
  it("says an end that has passed as ended, and one to come as ends", function()
    if not os.execute("command -v node >/dev/null 2>&1") then return pending("node is not installed") end
    finally(H.cleanup)
    local src = assert(H.read("web/app.js"))
    local fn = assert(src:match("\n  (function phaseText%(.-\n  })\n"), "phaseText() in web/app.js")
    local phases = {
      { rock = "R", status = "open", day = 3, bugs = 2, open_bugs = 1, rate = 1, bugs_per_day = 0.5,
        ends_at = "2026-12-01T10:00:00Z", end_passed = true, end_reason = "its days are over" },
      { rock = "R", status = "open", day = 1, bugs = 0, open_bugs = 0, rate = 0, bugs_per_day = 0,
        ends_at = "2026-12-09T10:00:00Z" },
    }
    local path = H.tmpdir() .. "/phase.js"
    H.write(path, fn .. "\nconsole.log(JSON.stringify(" .. cjson.encode(phases) .. ".map(phaseText)));\n")
    local p = assert(io.popen("node " .. H.quote(path)))
    local out = cjson.decode(p:read("l"))
    assert.is_true(p:close())
    assert.matches(" · ended 2026%-12%-01T10:00:00Z %(its days are over%); the next tick closes the phase$", out[1])
    assert.is_nil(out[1]:find(" ends ", 1, true))
    assert.matches(" · ends 2026%-12%-09T10:00:00Z$", out[2])
  end)
end)
