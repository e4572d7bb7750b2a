-- orket.engine with fake collaborators: a card whose turns (budgets.turns_per_card) ran out
-- on calls the gate refused, or on one call made again and again, is blocked saying so and
-- what would help (not more budget), which the stall's next step repeats; when one of the
-- calls went through, the budget's own advice stands. Read from the calls the run recorded.
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local scheduler = require "orket.engine.scheduler"

-- A model whose coder makes, at step 1 of each turn, the calls calls(turn) gives, then ends
-- its turn
local function model(calls)
  local c = {}
  function c:chat(req)
    local m = req.meta
    local tc = m.step == 1 and calls(m.turn) or nil
    return { content = tc and "" or "finished", tool_calls = tc or {}, finish_reason = tc and "tool_calls" or "stop",
      usage = { prompt_tokens = 10, completion_tokens = 1 }, model = "fake:model" }
  end
  return c
end

local function call(name, args, id) return { id = id, name = name, arguments = args, raw_arguments = "{}" } end

-- The fake gate, but a write_file call is refused by a policy rule, and a call with the
-- argument `bad` by the tool's schema
local function gate(input)
  local d
  if input.tool == "write_file" then
    d = { verdict = "deny", code = "POLICY_DENY", reason = "write_file: no files here (policy policies/w.lua:2)",
      remedy = "write elsewhere", rule_name = "policies/w.lua:2" }
  elseif input.args.bad then
    d = { verdict = "deny", code = "ARGS_INVALID", reason = input.tool .. ": args.bad: not a field" }
  end
  if not d then return F.gate(input) end
  if input.record then input.record("gate_decision", d) end
  return d
end

-- prepare(db, b): called on the store before the run
local function run(calls, budgets, gate_fn, prepare)
  local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "work" } })
  if prepare then prepare(db, b) end
  local e = F.engine(db, b, { llm = model(calls), gate = gate_fn or gate, config = { budgets = budgets } })
  local status, report = e:execute(assert(e:start("E")))
  local cs = b:comments("E-1")
  return status, report, cs[#cs].body, db, b
end

describe("a card's turns spent in vain", function()
  after_each(H.cleanup)

  it("on calls the gate refused names the refusal and the rule, not the budget", function()
    local status, report, note, db = run(function(t)
      -- arguments the schema refuses, then writes: two codes, the more frequent names the fix
      if t == 1 then return { call("add_issue_comment", { bad = true }, "a") } end
      return { call("write_file", { path = "a.txt", content = "x" }, "w" .. t) }
    end, { turns_per_card = 3 })
    assert.equal("failed", status)
    assert.equal("Stopped after 3 work turns (budgets.turns_per_card): every one of their 3 tool calls was refused "
      .. "by the gate (2 POLICY_DENY, 1 ARGS_INVALID), so raising budgets.turns_per_card would not help: POLICY_DENY "
      .. "policies/w.lua:2: change the rule, or accept it; then 'orket retry E-1' puts it back to ready. The gate's "
      .. "reason: write_file: no files here (policy policies/w.lua:2).", note)
    assert.equal("POLICY_DENY policies/w.lua:2: change the rule, or accept it, then orket retry E-1",
      report.stuck[1].next)
    db:close()
  end)

  it("on one call made again and again says so", function()
    local _, report, note, db = run(function() return { call("add_issue_comment", { body = "again" }, "c") } end,
      { turns_per_card = 3 })
    assert.matches("^Stopped after 3 work turns %(budgets.turns_per_card%): in them the model made one call again and "
      .. "again %(3 times%), so raising budgets.turns_per_card would not help", note)
    assert.matches('The call: add_issue_comment {"body":"again"}.', note, 1, true)
    assert.equal("the model repeats itself: give the seat another model, or change its role's prompt, then orket "
      .. "retry E-1", report.stuck[1].next)
    db:close()
  end)

  it("keeps the budget's advice when a call went through, or the calls differ", function()
    for _, calls in ipairs {
      function(t) return { call(t == 2 and "add_issue_comment" or "write_file", { body = "x" }, "m") } end,
      function(t) return { call("add_issue_comment", { body = "note " .. t }, "d") } end,
    } do
      local _, report, note, db = run(calls, { turns_per_card = 3 })
      assert.equal("Stopped after 3 work turns (budgets.turns_per_card); raise the budget or split the issue, then "
        .. "'orket retry E-1' puts it back to ready.", note)
      assert.equal("raise the budget in orket.lua, then orket retry E-1", report.stuck[1].next)
      db:close()
    end
  end)

  it("keeps the budget's advice when the calls a person approved failed in the tool", function()
    -- read_file asks a person (a policy's ask), each call approved before the run; the fake
    -- read_file fails (ENOENT): no call of the spent turns was refused by the gate
    local approvals = require "orket.actions.approvals"
    local dev = { seat = "developer", roles = { "coder" } }
    local function asking(input)
      if input.tool ~= "read_file" then return gate(input) end
      local d = { verdict = "ask", code = "POLICY_ASK", reason = "reads need approval (policy policies/r.lua:1)" }
      if input.record then input.record("gate_decision", d) end
      return d
    end
    local _, report, note, db = run(function(t) return { call("read_file", { path = "m" .. t .. ".txt" }, "r") } end,
      { turns_per_card = 3 }, asking, function(db, b)
        for t = 1, 3 do
          assert(b:transition("E-1", "in_progress", { actor = dev }))
          local row = assert(approvals.request(db, b, { card = "E-1", seat = "developer", turn = t, tool = "read_file",
            args = { path = "m" .. t .. ".txt" }, rule = "POLICY_ASK", reason = "reads need approval", actor = dev }))
          assert(approvals.decide(db, b, "E-1", { decision = "approve", approval = row.id }))
        end
      end)
    -- the three approved calls ran, and failed in the tool
    local rows = db:rows("SELECT ok, error_code, gate_code FROM tool_calls WHERE tool = 'read_file' ORDER BY id")
    assert.equal(3, #rows)
    for _, r in ipairs(rows) do
      assert.equal("ENOENT", r.error_code)
      assert.is_nil(r.gate_code)
    end
    assert.equal("Stopped after 3 work turns (budgets.turns_per_card); raise the budget or split the issue, then "
      .. "'orket retry E-1' puts it back to ready.", note)
    assert.equal("raise the budget in orket.lua, then orket retry E-1", report.stuck[1].next)
    db:close()
  end)

  it("judges only the turns since the card's last retry", function()
    -- calls that went through, each its own: the budget's advice
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "work" } })
    local e = F.engine(db, b, { llm = model(function(t) return { call("add_issue_comment", { body = "n" .. t }, "n") } end),
      gate = gate, config = { budgets = { turns_per_card = 2 } } })
    local id = assert(e:start("E"))
    local _, report = e:execute(id)
    assert.equal("raise the budget in orket.lua, then orket retry E-1", report.stuck[1].next)
    -- retried, the same run carried on: its next two turns only write, refused
    assert(b:retry("E-1", { actor = { seat = "developer", roles = {}, by = "person" } }))
    local again = F.engine(db, b, { llm = model(function() return { call("write_file", { path = "a.txt" }, "w") } end),
      gate = gate, config = { budgets = { turns_per_card = 2 } } })
    _, report = again:execute(id)
    assert.equal("POLICY_DENY policies/w.lua:2: change the rule, or accept it, then orket retry E-1", report.stuck[1].next)
    local cs = b:comments("E-1")
    assert.matches("^Stopped after 2 work turns %(budgets.turns_per_card%): every one of their 2 tool calls", cs[#cs].body)
    db:close()
  end)

  it("is read from the block's own note by the stall report", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" } })
    local engine = { seat = "orket", roles = {}, by = "engine" }
    assert(b:transition("E-1", "in_progress", { actor = engine }))
    local note = "Stopped after 2 work turns (budgets.turns_per_card): every one of their 2 tool calls "
      .. scheduler.REFUSED .. " (2 X), so raising budgets.turns_per_card " .. scheduler.NOT_HELPED
      .. "X: do this; then 'orket retry E-1' puts it back to ready. The gate's reason: x."
    assert(b:comment("E-1", { author = "orket", body = note }))
    assert(b:transition("E-1", "blocked", { actor = engine, reason = "resource", note = note }))
    local st = scheduler.stuck(b, scheduler.scope(b, { id = "E", type = "epic" }), { run = 1 })
    assert.equal("X: do this, then orket retry E-1", st[1].next)
    db:close()
  end)
end)
