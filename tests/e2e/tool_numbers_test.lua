-- A tool's whole numbers reach the model with every digit, and orket log shows a call's
-- arguments so: the journal kept a result at lua-cjson's 14 digits (123456789012345 reached
-- the model as 123456789012340), and orket log wrote 1.2345678901234e+14.
local H = require "tests.helpers"

local SCRIPT = [[
return { rules = {
  { role = "counter", match = "^Issue ", reply = { tool_calls = {
    { name = "count", arguments = { id = 123456789012345 } } } } },
}, default = { content = "Nothing more to do." } }
]]

local TOOL = [[
return { name = "count", description = "Counts.", effect = "read",
  parameters = { type = "object", properties = { id = { type = "integer" } }, required = { "id" } },
  handler = function(args) return { id = args.id, big = 1234567890123456, top = 9007199254740991, past = 2 ^ 53 } end }
]]

describe("a tool's whole numbers", function()
  after_each(H.cleanup)

  it("reach the model and orket log with every digit", function()
    local dir = H.tmpdir()
    for _, d in ipairs { "epics", "roles", "tools", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
    H.write(dir .. "/orket.lua", [[
name = "numbers"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "counter" } }, reviewer = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]])
    H.write(dir .. "/script.lua", SCRIPT)
    H.write(dir .. "/tools/count.lua", TOOL)
    H.write(dir .. "/roles/counter.lua", [[
return { intent = "Count.", tools = { "count" }, system = function(ctx) return "You are " .. ctx.seat .. "." end }
]])
    H.write(dir .. "/epics/a.json", [[
{ "id": "A", "name": "A", "issues": [ { "id": "A-1", "summary": "one", "seat": "senior_developer" } ] }
]])
    require("tests.backends").project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    H.orket("run A --json", { cwd = dir })
    -- the model's second request holds the result as the tool gave it
    local db = assert(require("orket.project").open_store(dir, false, true))
    local rows = assert(db:rows("SELECT " .. db.dialect.json("request") .. " FROM turns ORDER BY id"))
    db:close()
    local second = assert(rows[2], "a second model request").request
    assert.matches("123456789012345", second, 1, true)
    assert.matches("1234567890123456", second, 1, true)
    assert.matches("9007199254740991", second, 1, true) -- 2^53 - 1, the last whole number a double holds alone
    -- from 2^53 on, as the journal's reader gives it back on resume (the same bytes then)
    assert.matches('\\"past\\":9.007199254741e+15', second, 1, true)
    assert.is_nil(second:find("123456789012340", 1, true))
    local log = H.orket("log 1", { cwd = dir })
    assert.matches('[call] count {"id":123456789012345}', log.stdout, 1, true)
  end)
end)
