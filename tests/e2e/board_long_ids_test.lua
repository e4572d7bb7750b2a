-- orket board with cells wider than 99 bytes: an issue id of 98 or more characters (its
-- indent makes 100), an epic id under a rock, a seat name of 100 characters. string.format
-- takes widths of at most two digits, and the board once crashed on these (exit 70).
local H = require "tests.helpers"

-- a project of one's own epics: init's, its example epic removed
local function project(epics)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir) .. " --yes")
  assert.equal(0, r.status, r.stderr)
  os.remove(dir .. "/epics/start.json")
  for name, text in pairs(epics) do H.write(dir .. "/epics/" .. name, text) end
  return dir
end

describe("orket board with long ids and seats", function()
  after_each(H.cleanup)

  it("prints an issue id 98 characters long, lined up with its epic", function()
    local id = "I" .. string.rep("x", 97)
    local dir = project({ ["e.json"] = string.format(
      [[{"id":"E","name":"e","issues":[{"id":"%s","summary":"long one"},{"id":"S","summary":"short"}]}]], id) })
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    for _, args in ipairs({ "board", "board E" }) do
      local r = H.orket(args, { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      assert.equal("", r.stderr)
      local epic = r.stdout:match("(EPIC E [^\n]*)\n")
      local long = r.stdout:match("\n(  I[^\n]*)")
      local short = r.stdout:match("\n(  S [^\n]*)")
      assert.truthy(epic and long and short, r.stdout)
      assert.equal("  " .. id .. " ready", long:sub(1, #id + 8))
      -- every status starts in the same column
      assert.equal(#id + 4, epic:find("ready", 1, true))
      assert.equal(#id + 4, short:find("ready", 1, true))
      assert.matches("long one$", long)
    end
  end)

  it("prints a seat name of 100 characters and an epic id of 96 under a rock", function()
    local seat = string.rep("s", 100)
    local eid = "E" .. string.rep("e", 95)
    local dir = project({
      ["rock.json"] = string.format([[{"id":"R","name":"rock","epics":[{"epic":"%s"}]}]], eid),
      ["e.json"] = string.format([[{"id":"%s","name":"epic","issues":[{"id":"I-1","summary":"one","seat":"%s"}]}]],
        eid, seat),
    })
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua"):gsub("senior_developer", seat)))
    local v = H.orket("validate", { cwd = dir })
    assert.equal(0, v.status, v.stdout .. v.stderr)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("board", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("\n  EPIC " .. eid .. " ready", r.stdout)
    assert.matches("\n    I%-1 +ready +%a+ +" .. seat .. " one\n", r.stdout)
  end)
end)
