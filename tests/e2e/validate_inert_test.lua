-- orket validate prints what a project's scripts say when they fail to load: a role, tool
-- or policy of a cloned project could send escape sequences (a window title, a cleared
-- screen) to the terminal of whoever validates it. Made inert, as orket run's are.
local H = require "tests.helpers"

describe("orket validate", function()
  after_each(H.cleanup)

  it("makes a script's error text inert before printing it", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    os.execute("mkdir -p " .. H.quote(dir .. "/tools"))
    H.write(dir .. "/tools/probe.lua", 'error("\\27]0;pwned\\7\\27[2J")\n')
    local r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.is_nil(r.stdout:find("\27", 1, true), r.stdout)
    assert.matches("tools/probe.lua:1: \\x1b]0;pwned\\x07\\x1b[2J", r.stdout, 1, true)
  end)
end)
