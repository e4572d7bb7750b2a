-- The docs that count or list the built-in tools follow tools/: the writing-tools guide's
-- number (in words) and docs/tools.md's table, one row per tool, so neither can drift.
local H = require "tests.helpers"

local WORDS = { "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
  "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "twenty-one",
  "twenty-two", "twenty-three", "twenty-four", "twenty-five", "twenty-six", "twenty-seven", "twenty-eight",
  "twenty-nine", "thirty" }

local function builtins()
  local names = {}
  local p = io.popen("ls " .. H.quote(H.ROOT .. "/tools"))
  for f in p:lines() do
    local n = f:match("^(.+)%.lua$")
    if n then names[#names + 1] = n end
  end
  p:close()
  return names
end

describe("the built-in tools in the docs", function()
  it("the writing-tools guide says how many tools/ holds", function()
    local n = #builtins()
    assert.is_true(n > 0 and n <= #WORDS, "counted " .. n)
    local text = assert(H.read(H.ROOT .. "/docs/guide/writing-tools.md"))
    local said = assert(text:match("Orket ships ([%a-]+) %(`tools/`%)"), "the guide's count is not found")
    assert.equal(WORDS[n], said)
  end)

  it("docs/tools.md's table has a row for each, and none for a tool that is not there", function()
    local text = assert(H.read(H.ROOT .. "/docs/tools.md"))
    local tbl = assert(text:match("\n## Built%-in tools\n(.-)\n##"), "no Built-in tools section")
    local rows = {}
    for name in tbl:gmatch("\n| ([%w_]+) |") do rows[name] = true end
    rows.tool = nil -- the header
    for _, name in ipairs(builtins()) do
      assert.is_true(rows[name], "docs/tools.md lacks " .. name)
      rows[name] = nil
    end
    assert.same({}, rows)
  end)
end)
