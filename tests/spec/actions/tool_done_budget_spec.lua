-- A tool's move to done through the host's mover (the engine's: a commit and a merge into
-- main that grow with the card's tree) is made once the handler has returned, outside the
-- handler's time budget: a budget that ran out between the merge and the move's record left
-- main holding a card that was not done (reports11/escape.md, 3).
local tools = require "orket.tools"
local store = require "orket.store"
local board_mod = require "orket.board"
local uv = require "luv"
local H = require "tests.helpers"

-- a project tool that moves to done, then answers a failure
local REFUSE = [[
return { name = "refuse", description = "moves to done, then fails", effect = "board",
  handler = function(_, ctx)
    assert(ctx.board:transition("done"))
    return nil, "changed my mind", "EFAIL"
  end }
]]

-- a project tool that moves to done, then spends its budget
local SPEND = [[
return { name = "spend", description = "moves to done, then loops", effect = "board",
  handler = function(_, ctx)
    assert(ctx.board:transition("done"))
    while true do end
  end }
]]

describe("a tool's move to done", function()
  local db, b, reg, ctx, mover, real_budget
  before_each(function()
    local dir = H.tmpdir()
    db = assert(store.open(dir .. "/o.db"))
    b = board_mod.open(db)
    db:tx(function()
      db:run("INSERT INTO cards (id, type, name, priority, created_at, updated_at) VALUES ('E', 'epic', 'Epic', 2, 'x', 'x')")
    end)
    assert(b:create { parent = "E", id = "E-1", summary = "one" })
    local coder = { seat = "dev", roles = { "coder" } }
    assert(b:transition("E-1", "in_progress", { actor = coder }))
    assert(b:transition("E-1", "code_review", { actor = coder }))
    os.execute("mkdir -p " .. dir .. "/tools")
    H.write(dir .. "/tools/spend.lua", SPEND)
    H.write(dir .. "/tools/refuse.lua", REFUSE)
    -- a short time budget, so that a slow mover outlasts it
    real_budget = tools.BUDGET.timeout_ms
    tools.BUDGET.timeout_ms = 200
    reg = assert(tools.load { H.ROOT .. "/tools/update_issue_status.lua", dir .. "/tools/spend.lua",
      dir .. "/tools/refuse.lua" })
    tools.BUDGET.timeout_ms = real_budget
    -- the host's mover, as the engine's: its git work (here a sleep past the budget) and
    -- "main" merged, then the move recorded
    mover = { merged = false, calls = 0 }
    local guard = { seat = "guard", roles = { "integrity_guard" } }
    ctx = { board = b, card = b:get("E-1"), actor = guard,
      move = function(id, to, opts)
        if to ~= "done" then return b:transition(id, to, opts) end
        mover.calls = mover.calls + 1
        if mover.answer then return nil, mover.answer[1], mover.answer[2] end
        uv.sleep(400)
        mover.merged = true
        return b:transition(id, to, opts)
      end }
  end)
  after_each(function()
    tools.BUDGET.timeout_ms = real_budget
    db:close()
    H.cleanup()
  end)

  it("is made outside the handler's time budget: merged means done", function()
    local r = reg:run("update_issue_status", { status = "done" }, ctx)
    assert.is_true(r.ok, r.error)
    assert.is_true(mover.merged)
    assert.equal("done", b:get("E-1").status)
    assert.equal("done", r.result.status)
  end)

  it("is not made when the handler then spends its budget", function()
    local r = reg:run("spend", {}, ctx)
    assert.is_false(r.ok)
    assert.equal("ETOOL", r.code)
    assert.equal(0, mover.calls)
    assert.equal("code_review", b:get("E-1").status)
  end)

  it("is not made when the handler then answers a failure", function()
    local r = reg:run("refuse", {}, ctx)
    assert.same({ false, "EFAIL", "changed my mind" }, { r.ok, r.code, r.error })
    assert.equal(0, mover.calls)
    assert.equal("code_review", b:get("E-1").status)
  end)

  it("answers the call with the mover's failure", function()
    mover.answer = { "board: E-1: Merging orket/E-1 into main conflicts in: a.txt", "ECONFLICT" }
    local r = reg:run("update_issue_status", { status = "done" }, ctx)
    assert.is_false(r.ok)
    assert.equal("ECONFLICT", r.code)
    assert.matches("conflicts in: a.txt", r.error, 1, true)
    assert.equal(1, mover.calls)
  end)

  it("is refused before the mover when the state machine refuses it", function()
    ctx.actor = { seat = "dev", roles = { "coder" } } -- the seat that did the work
    local r = reg:run("update_issue_status", { status = "done" }, ctx)
    assert.is_false(r.ok)
    assert.equal(0, mover.calls)
    assert.equal("code_review", b:get("E-1").status)
  end)
end)
