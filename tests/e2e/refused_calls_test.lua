-- End to end: a card whose budget (budgets.steps_per_turn, turns_per_card) ran out on calls
-- the gate refused (arguments that are not JSON, a policy rule whose predicate fails) or on
-- one call made again and again is blocked saying so, and what helps instead: raising the
-- budget would not. The card's block, the stall's next step and the run's reason (its end
-- in the journal) all say it. A budget spent on calls that went through keeps its advice.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local fake = F.model_server(teardown)

-- A project of one card, START-1, worked by `coder` with the model given; files: more
-- files of the project ({name = text})
local function project(model, budgets, files)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/policies") .. " "
    .. H.quote(dir .. "/workspace"))
  H.write(dir .. "/orket.lua", string.format([[
name = "refused"
models = { default = %q, providers = { scripted = { kind = "scripted", file = "script.lua" },
  fake = { kind = "openai", base_url = %q } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
concurrency = 1
budgets = %s
]], model, fake.url .. "/v1", budgets))
  H.write(dir .. "/script.lua", "return { rules = {}, default = { content = \"done\" } }\n")
  for name, text in pairs(files or {}) do H.write(dir .. "/" .. name, text) end
  H.write(dir .. "/epics/start.json", [[
{ "id": "START", "issues": [ { "id": "START-1", "summary": "Write a greeting", "seat": "dev" } ] }
]])
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- Runs START-1 -> the card_blocked event, the stall's entry for the card, the reason the
-- run's end journaled
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
  local log = H.orket("log 1 --json", { cwd = dir })
  assert.equal(0, log.status, log.stderr)
  local reason
  for _, ev in ipairs(cjson.decode(log.stdout).events) do
    if ev.kind == "run_end" then reason = ev.data.reason end
  end
  return blocked, stall, reason
end

describe("a budget spent in vain", function()
  before_each(function() fake.reset() end)

  it("on arguments that are not JSON names ARGS_MALFORMED and its remedy, not the budget", function()
    local dir = project("fake:tool=write_file,bad_args=truncated", "{ turns_per_card = 6, steps_per_turn = 3 }")
    local blocked, stall, reason = run(dir)
    assert.equal("resource", blocked.reason)
    assert.matches("^Turn stopped: the turn used all 3 model steps %(budgets.steps_per_turn%): every one of its 3 "
      .. "tool calls was refused by the gate %(3 ARGS_MALFORMED%), so raising budgets.steps_per_turn would not "
      .. "help: ARGS_MALFORMED: usually a small model: try `dialect = \"json\"` or another model; then 'orket retry "
      .. "START%-1' puts it back to ready%. The gate's reason: write_file: the call's arguments are not valid JSON",
      blocked.detail)
    assert.equal("ARGS_MALFORMED: usually a small model: try `dialect = \"json\"` or another model, then orket retry "
      .. "START-1", stall.next)
    assert.is_nil(stall.next:find("raise the budget", 1, true))
    assert.matches("would not help: ARGS_MALFORMED", reason, 1, true)
  end)

  it("on a policy rule whose predicate fails names the rule's line", function()
    local dir = project("scripted:team", "{ turns_per_card = 3 }", {
      ["script.lua"] = [[
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    { name = "write_file", arguments = { path = "hello.txt", content = "hi\n" } } } } },
}, default = { content = "done" } }
]],
      ["policies/big.lua"] = [[
deny {
  tool = "write_file",
  reason = "too big",
  when = function(call) return #call.args.contents > 10 end,
}
]] })
    local blocked, stall, reason = run(dir)
    assert.matches("^Stopped after 3 work turns %(budgets.turns_per_card%): every one of their 3 tool calls was "
      .. "refused by the gate %(3 POLICY_ERROR%), so raising budgets.turns_per_card would not help: POLICY_ERROR "
      .. "policies/big.lua:4: fix the rule", blocked.detail)
    assert.matches("The gate's reason: write_file: the predicate of policy rule policies/big.lua:1 failed: "
      .. "policies/big.lua:4: attempt to get length of a nil value", blocked.detail, 1, true)
    assert.equal("POLICY_ERROR policies/big.lua:4: fix the rule; `orket validate` loads it, then orket retry START-1",
      stall.next)
    assert.equal("blocked (resource): " .. blocked.detail, stall.reason)
    -- the run's reason (its end, as `orket log` and GET /v1/runs/N give it) says it within its line's cut
    assert.matches("would not help: POLICY_ERROR policies/big.lua:4: fix the rule", reason, 1, true)
    assert.is_nil(reason:find("raise the budget", 1, true))
  end)

  it("on one call made again and again says so", function()
    local dir = project("scripted:team", "{ turns_per_card = 3, steps_per_turn = 5 }", {
      ["script.lua"] = [[
return { rules = {
  { role = "coder", reply = { tool_calls = { { name = "list_directory", arguments = { path = "." } } } } },
}, default = { content = "done" } }
]] })
    local blocked, stall, reason = run(dir)
    assert.equal("Turn stopped: the turn used all 5 model steps (budgets.steps_per_turn): in it the model made one "
      .. "call again and again (5 times), so raising budgets.steps_per_turn would not help: the model repeats "
      .. "itself: give the seat another model, or change its role's prompt; then 'orket retry START-1' puts it back "
      .. 'to ready. The call: list_directory {"path":"."}.', blocked.detail)
    assert.equal("the model repeats itself: give the seat another model, or change its role's prompt, then orket "
      .. "retry START-1", stall.next)
    assert.matches("model made one call again and again", reason, 1, true)
  end)

  it("keeps the budget's advice when the calls went through", function()
    -- a file of its own at each call: every call allowed, none the same
    local dir = project("fake:tool=write_file,arg_path=f%n.txt,arg_content=x", "{ turns_per_card = 6, steps_per_turn = 3 }")
    local blocked, stall = run(dir)
    assert.equal("Turn stopped: the turn used all 3 model steps (budgets.steps_per_turn).", blocked.detail)
    assert.equal("raise the budget in orket.lua, then orket retry START-1", stall.next)
  end)
end)
