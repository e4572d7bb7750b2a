-- orket.lua's `concurrency` below 1 names its real range, 1 to 64, as one above it does.
-- Before, 0 was refused by the generic integer check with "from 1 to 1000000000000".
local H = require "tests.helpers"

describe("orket validate of concurrency", function()
  after_each(H.cleanup)

  it("says the range 1 to 64 for a value below and above it", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    local text = H.read(dir .. "/orket.lua")
    local line = 0
    for l in (text:match("^(.-)\nconcurrency = ") .. "\n"):gmatch("[^\n]*\n") do line = line + 1 end
    for _, v in ipairs({ "0", "-3", "1000", "1e300" }) do
      H.write(dir .. "/orket.lua", (text:gsub("\nconcurrency = %d+", "\nconcurrency = " .. v)))
      local r = H.orket("validate", { cwd = dir })
      assert.equal(1, r.status, v)
      assert.matches(string.format("orket.lua:%d: concurrency: must be an integer from 1 to 64 %%(got ", line + 1),
        r.stdout .. r.stderr)
    end
  end)
end)
