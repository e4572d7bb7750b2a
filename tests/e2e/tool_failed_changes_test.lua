-- A write tool that raised after writing leaves what it wrote (files are not rolled back):
-- its ETOOL result tells the model the call may have changed the workspace and to check the
-- files before retrying, as EINTERRUPTED does, not only that the tool needs fixing. A board
-- tool's crash, undone with its savepoint, says no such thing.
local H = require "tests.helpers"
local cjson = require "cjson"

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "docwriter", match = "^Issue ", reply = { tool_calls = { call("t_halfwrite", {}), call("t_boardcrash", {}) } } },
}, default = { content = "Nothing more to do." } }
]]

local HALF = [[
return { name = "t_halfwrite", description = "d", effect = "write", idempotent = true, parameters = { type = "object" },
  handler = function(args, ctx)
    assert(ctx.fs:write("half.txt", "first part\n"))
    error("boom after writing")
  end }
]]

local BOARD = [[
return { name = "t_boardcrash", description = "d", effect = "board", parameters = { type = "object" },
  handler = function(args, ctx) error("boom") end }
]]

local function project()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "roles", "tools" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "halfwrite"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "docwriter" } }, reviewer = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/tools/t_halfwrite.lua", HALF)
  H.write(dir .. "/tools/t_boardcrash.lua", BOARD)
  H.write(dir .. "/roles/docwriter.lua", [[
return { intent = "Write docs.", tools = { "t_halfwrite", "t_boardcrash", "read_file" },
  system = function(ctx) return "You are " .. ctx.seat .. "." end }
]])
  H.write(dir .. "/epics/a.json", [[
{ "id": "A", "name": "A", "issues": [ { "id": "A-1", "summary": "one", "seat": "senior_developer" } ] }
]])
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- the recorded result of tool's first call (decoded)
local function result(dir, tool)
  local db = assert(require("orket.project").open_store(dir, false, true))
  local t = db:row("SELECT " .. db.dialect.json("result") .. " FROM tool_calls WHERE tool = ? ORDER BY id LIMIT 1",
    tool)
  db:close()
  return cjson.decode((assert(t and t.result, tool)))
end

describe("a write tool that fails after writing", function()
  after_each(H.cleanup)

  it("tells the model its changes may stay and to check them before retrying", function()
    local dir = project()
    local r = H.orket("run A --json", { cwd = dir })
    assert.matches('"type":"run_end"', r.stdout, 1, true)
    local res = result(dir, "t_halfwrite")
    assert.equal("ETOOL", res.code)
    assert.matches("boom after writing", res.error, 1, true)
    assert.matches("may have changed the workspace before it failed", res.remedy or "", 1, true)
    assert.matches("check the files this call touches", res.remedy, 1, true)
    -- the file it wrote stays, as the result says
    local _, half = H.sh("git -C " .. H.quote(dir .. "/workspace") .. " show orket/A-1:half.txt")
    assert.equal("first part\n", half)
    -- a board tool's crash changes no files: the code's own remedy
    local b = result(dir, "t_boardcrash")
    assert.equal("ETOOL", b.code)
    assert.is_nil(b.remedy)
  end)
end)
