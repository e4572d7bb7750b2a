-- orket validate finds everything in one pass: file-level and cross-file problems together,
-- policy rules that name no tool, role or seat (they would never apply), cards seated at a
-- seat the team lacks or at the only reviewer seat; each with file and line.
local H = require "tests.helpers"
local F = require "tests.fixtures"

local function project() return F.initialized { "roles", "policies" } end

local function lines_of(out)
  local t = {}
  for l in out:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("orket validate", function()
  after_each(H.cleanup)

  it("reports policy rules naming a tool, role or seat that does not exist, with the line", function()
    local p = project()
    H.write(p .. "/policies/extra.lua", table.concat({
      'deny { tool = "wirte_file", reason = "typo" }',
      'ask { role = "archtect" }',
      'deny { seat = "qa_*", tool = "write_file" }',
      'deny { tool = "*_file", role = "coder", seat = "senior_*" }',
      "",
    }, "\n"))
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('policies/extra.lua:1: deny.tool: "wirte_file" matches no tool, so the rule never applies (tools: ',
      v.stdout, 1, true)
    assert.matches('policies/extra.lua:2: ask.role: "archtect" matches no role, so the rule never applies '
      .. "(roles: architect, coder, integrity_guard)", v.stdout, 1, true)
    assert.matches('policies/extra.lua:3: deny.seat: "qa_*" matches no seat of the team, so the rule never applies '
      .. "(seats: integrity_guard, lead_architect, senior_developer)", v.stdout, 1, true)
    assert.is_nil(v.stdout:find("extra.lua:4", 1, true))
    assert.matches("\n3 problems\n$", v.stdout)
  end)

  it("reports a card seated at a seat not in the team, or at the only reviewer seat", function()
    local p = project()
    local text = H.read(p .. "/epics/start.json")
    text = text:gsub('"summary": "Write a greeting", "seat": "senior_developer"',
      '"summary": "Write a greeting", "seat": "qa"', 1)
    text = text:gsub('"summary": "Document the greeting", "seat": "senior_developer"',
      '"summary": "Document the greeting", "seat": "integrity_guard"', 1)
    H.write(p .. "/epics/start.json", text)
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    assert.matches('epics/start.json:6: issues[0].seat: no seat "qa" in orket.lua\'s team, so another seat would '
      .. "work the card (seats: integrity_guard, lead_architect, senior_developer)", v.stdout, 1, true)
    assert.matches('epics/start.json:9: issues[1].seat: "integrity_guard" is the only seat holding integrity_guard, '
      .. "and no seat reviews its own work", v.stdout, 1, true)
    -- with a second reviewer seat, integrity_guard may work a card
    local cfg = H.read(p .. "/orket.lua"):gsub("team = {", 'team = {\n  second_guard = { roles = { "integrity_guard" } },', 1)
    H.write(p .. "/orket.lua", cfg)
    v = H.orket("validate", { cwd = p })
    assert.is_nil(v.stdout:find("only seat holding", 1, true), v.stdout)
    assert.matches("\n1 problem\n$", v.stdout)
  end)

  it("reports cross-file problems together with file-level ones, in one pass", function()
    local p = project()
    -- file-level: a broken epic, a broken budgets section, a broken role
    H.write(p .. "/epics/broken.json", '{ "id": "B", "issues": [ { "summary": 3 } ] }')
    local cfg = H.read(p .. "/orket.lua"):gsub("budgets = {", "budgets = { turns = 1,", 1)
    cfg = cfg:gsub('senior_developer = { roles = { "coder" } }', 'senior_developer = { roles = { "coder", "pilot" } }', 1)
    H.write(p .. "/orket.lua", cfg)
    H.write(p .. "/roles/tester.lua", "return { intent = 3, tools = {}, system = 's' }\n")
    -- cross-file: an id used twice, a rock naming an unknown epic, a role the team lacks
    H.write(p .. "/epics/again.json", '{ "id": "START", "summary": "the same id" }')
    H.write(p .. "/epics/rock.json", '{ "id": "R", "type": "rock", "epics": [ "NOPE" ] }')
    local v = H.orket("validate", { cwd = p })
    assert.equal(1, v.status, v.stdout)
    local want = {
      "orket.lua:16: budgets.turns: unknown setting",
      "roles/tester.lua:1: intent must be a string",
      'orket.lua:12: team.senior_developer.roles[2]: no role named "pilot"',
      "epics/broken.json:1: issues[0].summary: must be a string, not number",
      'epics/start.json:2: id: card id "START" is already used by epics/again.json',
      'epics/rock.json: epics[0].epic: unknown epic "NOPE"',
    }
    for _, w in ipairs(want) do assert.matches(w, v.stdout, 1, true) end
    assert.matches("\n" .. #want .. " problems\n$", v.stdout)
    -- a role whose file is broken is not also called missing
    cfg = cfg:gsub('"pilot"', '"tester"', 1)
    H.write(p .. "/orket.lua", cfg)
    v = H.orket("validate", { cwd = p })
    assert.is_nil(v.stdout:find('no role named "tester"', 1, true), v.stdout)
    assert.equal(#want - 1, #lines_of(v.stdout) - 1)
  end)
end)
