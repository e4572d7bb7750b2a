-- End to end (docswalk finding 4): a project tool that fails on every call (its handler
-- raises, or runs out of its instruction budget: ETOOL) blocks the card saying the tool needs
-- fixing, at its file and line, not "raise the budget or split the issue" or "give the seat
-- another model": more budget, another model or prompt would fail the same way.
local H = require "tests.helpers"
local cjson = require "cjson"

-- A project of one card, START-1, worked by a `coder` whose tools are boom (raises) and spin
-- (loops), with the scripted model's rules given
local function project(budgets, rules)
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "roles", "tools", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", string.format([[
name = "crash"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
concurrency = 1
budgets = %s
]], budgets))
  H.write(dir .. "/roles/coder.lua", 'return { intent = "Writes code.", tools = { "boom", "spin" }, system = "Code." }\n')
  H.write(dir .. "/tools/boom.lua", [[
return { name = "boom", description = "Fails.", effect = "read",
  handler = function()
    error("kaboom")
  end }
]])
  H.write(dir .. "/tools/spin.lua", [[
return { name = "spin", description = "Loops.", effect = "read",
  handler = function()
    while true do end
  end }
]])
  H.write(dir .. "/script.lua", "return { rules = { " .. rules .. " }, default = { content = \"done\" } }\n")
  H.write(dir .. "/epics/start.json", [[
{ "id": "START", "issues": [ { "id": "START-1", "summary": "Write a greeting", "seat": "dev" } ] }
]])
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- Runs START-1 -> the card_blocked event, the stall's entry for the card
local function run(dir)
  local r = H.orket("run START-1 --json", { cwd = dir })
  assert.equal(1, r.status, r.stdout .. r.stderr)
  local blocked, stall
  for line in r.stdout:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    if ev.type == "card_blocked" then blocked = ev end
    if ev.type == "stall" then stall = ev.cards[1] end
  end
  assert.is_truthy(blocked, r.stdout)
  return blocked, stall
end

local FIX = "ETOOL tools/boom.lua:3: fix the tool (`orket validate`), see docs/guide/writing-tools.md"

describe("a tool that fails on every call", function()
  after_each(H.cleanup)

  it("spends the card's turns: the block says to fix the tool, at its line", function()
    local dir = project("{ turns_per_card = 3 }", [[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    { name = "spin", arguments = {} }, { name = "boom", arguments = {} } } } },
]])
    local blocked, stall = run(dir)
    assert.equal("resource", blocked.reason)
    assert.equal("Stopped after 3 work turns (budgets.turns_per_card): every one of their 6 tool calls failed in "
      .. "the tool itself (6 ETOOL: boom, spin), so raising budgets.turns_per_card would not help: " .. FIX
      .. "; then 'orket retry START-1' puts it back to ready. The tool's error: boom: the tool failed: "
      .. "tools/boom.lua:3: kaboom.", blocked.detail)
    assert.is_nil(blocked.detail:find("split the issue", 1, true))
    assert.equal(FIX .. ", then orket retry START-1", stall.next)
  end)

  it("spends a turn's steps on one call: the block says to fix the tool, not to change the model", function()
    local dir = project("{ turns_per_card = 3, steps_per_turn = 3 }", [[
  { role = "coder", reply = { tool_calls = { { name = "boom", arguments = {} } } } },
]])
    local blocked = run(dir)
    assert.equal("Turn stopped: the turn used all 3 model steps (budgets.steps_per_turn): every one of its 3 tool "
      .. "calls failed in the tool itself (3 ETOOL: boom), so raising budgets.steps_per_turn would not help: " .. FIX
      .. "; then 'orket retry START-1' puts it back to ready. The tool's error: boom: the tool failed: "
      .. "tools/boom.lua:3: kaboom.", blocked.detail)
    assert.is_nil(blocked.detail:find("another model", 1, true))
  end)
end)
