-- A board tool whose handler raises after acting through ctx.board and ctx.memory is rolled
-- back with its call's savepoint (docs/engine.md: "a failing call rolls back only itself"):
-- its comment, memory and card are gone, while the call's row and its ETOOL failure are
-- recorded. A model that retries the failed call then makes no duplicates. A handler that
-- answers its own failure (`nil, msg, CODE`) chose to return: what it did stays.
local H = require "tests.helpers"
local cjson = require "cjson"

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "docwriter", match = "^Issue ", reply = { tool_calls = { call("t_board", {}) } } },
  { role = "docwriter", match = "ETOOL", reply = { tool_calls = { call("t_board", {}), call("t_answer", {}) } } },
}, default = { content = "Nothing more to do." } }
]]

local BOARD = [[
return { name = "t_board", description = "d", effect = "board", parameters = { type = "object" },
  handler = function(args, ctx)
    assert(ctx.board:comment("comment before the crash"))
    assert(ctx.memory:remember{ text = "memory before the crash" })
    assert(ctx.board:create{ summary = "child made before the crash" })
    error("boom in board tool")
  end }
]]

local ANSWER = [[
return { name = "t_answer", description = "d", effect = "board", parameters = { type = "object" },
  handler = function(args, ctx)
    assert(ctx.board:comment("comment before the answer"))
    return nil, "t_answer: not this time", "EBUSY"
  end }
]]

local function project()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "roles", "tools" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "rollback"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "docwriter" } }, reviewer = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/tools/t_board.lua", BOARD)
  H.write(dir .. "/tools/t_answer.lua", ANSWER)
  H.write(dir .. "/roles/docwriter.lua", [[
return { intent = "Write docs.", tools = { "t_board", "t_answer", "read_file" },
  system = function(ctx) return "You are " .. ctx.seat .. "." end }
]])
  H.write(dir .. "/epics/a.json", [[
{ "id": "A", "name": "A", "issues": [ { "id": "A-1", "summary": "one", "seat": "senior_developer" } ] }
]])
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- rows of sql (one value each, named v) from the project's store
local function values(dir, sql, ...)
  local db = assert(require("orket.project").open_store(dir, false, true))
  local out = {}
  for _, r in ipairs(assert(db:rows(sql, ...))) do out[#out + 1] = r.v end
  db:close()
  return out
end

describe("a board tool that raises", function()
  after_each(H.cleanup)

  it("leaves nothing of what it did, and its failure is recorded", function()
    local dir = project()
    local r = H.orket("run A --json", { cwd = dir })
    assert.matches('"type":"run_end"', r.stdout, 1, true)
    -- both of t_board's calls recorded as failed (ETOOL); t_answer's as its own failure
    local codes = values(dir, "SELECT error_code AS v FROM tool_calls ORDER BY id")
    assert.same({ "ETOOL", "ETOOL", "EBUSY" }, codes)
    local bodies = {}
    for _, c in ipairs(H.card_json(dir, "A-1").comments) do bodies[#bodies + 1] = c.body end
    local all = table.concat(bodies, "\n")
    assert.is_nil(all:find("comment before the crash", 1, true), all)
    assert.matches("comment before the answer", all, 1, true) -- an answered failure keeps its effects
    local board = H.orket("board --json", { cwd = dir }).stdout
    assert.is_nil(board:find("child made before the crash", 1, true), board)
    assert.same({}, values(dir, "SELECT text AS v FROM memory"))
  end)
end)
