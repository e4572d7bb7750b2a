-- docswalk finding 5: troubleshooting.md's EBUDGET row (made from orket.errors) said a tool
-- that ran out of its instruction budget comes back as EBUDGET; its handler's call fails
-- with ETOOL (writing-tools.md), and EBUDGET is a script's that loops as it loads.
local H = require "tests.helpers"
local errors = require "orket.errors"

describe("EBUDGET", function()
  after_each(H.cleanup)

  it("is said of a script as it loads, and names ETOOL for a tool's handler", function()
    local means = errors.get("EBUDGET").means
    assert.is_nil(means:find("a tool,", 1, true), means)
    assert.matches("as it loaded", means, 1, true)
    assert.matches("a tool's handler that does fails its call with `ETOOL`", means, 1, true)
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/roles") .. " " .. H.quote(dir .. "/tools"))
    H.write(dir .. "/roles/loop.lua", "while true do end\n")
    local role, rerr, rcode = require("orket.engine.roles").load_file(dir .. "/roles/loop.lua", dir)
    assert.is_nil(role)
    assert.equal("EBUDGET", rcode, rerr)
    H.write(dir .. "/tools/loop.lua", "while true do end\n")
    local reg, terr, tcode = require("orket.tools").load({ dir .. "/tools/loop.lua" }, dir)
    assert.is_nil(reg)
    assert.equal("EBUDGET", tcode, terr)
  end)
end)
