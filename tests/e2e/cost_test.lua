-- Cost and money budgets end to end (docs/cost.md), against the fake model server: each
-- model call's tokens by kind, read from the provider's own usage fields (OpenAI's cached
-- tokens, llama.cpp's timings, Ollama's evaluated prompt), and its cost from orket.lua's
-- price; no cost without a price or a reported usage; a money budget that would be passed
-- stops the card before the call is sent, and a person's answer lets it go on.
local H = require "tests.helpers"
local cjson = require "cjson"

local fake = require("tests.fake_server").start()
teardown(function()
  fake.stop()
  H.kill_servers()
  H.cleanup()
end)

local PRICE = [[{ input = "2.50", cached_input = "1.25", output = 10, currency = "USD" }]]

-- A one-issue project whose model is the fake server's `model` through a provider of `kind`.
local function project(kind, model, extra)
  local base = kind == "openai" and (fake.url .. "/v1") or fake.url
  return fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = %q, base_url = %q } },
  prices = { ["fake:%s"] = %s } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
%s
]], model, kind, base, model, PRICE, extra or "budgets = { turns_per_card = 1 }"))
end

local function run(dir)
  local r = H.orket("run M --json", { cwd = dir })
  local out = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    out[ev.type] = out[ev.type] or {}
    table.insert(out[ev.type], ev)
  end
  return out, r
end

local function requests()
  return #fake.log()
end

describe("a model call's cost", function()
  before_each(function() fake.reset() end)

  it("bills OpenAI's cached prompt tokens at the cached price", function()
    local evs = run(project("openai", "prompt=4000,cached=3000,chunks=200"))
    local m = evs.model[1]
    -- 1000 uncached * 2.50 + 3000 cached * 1.25 + 200 out * 10, per million, in micro-USD
    assert.same({ 4000, 3000, 200, 8250, "USD" }, { m.prompt_tokens, m.cached_tokens, m.completion_tokens, m.cost, m.currency })
  end)

  it("reads llama.cpp's cache from its timings", function()
    local evs = run(project("openai", "prompt=4000,cached=3000,cache_n,chunks=200"))
    assert.same({ 3000, 8250 }, { evs.model[1].cached_tokens, evs.model[1].cost })
  end)

  it("counts Ollama's evaluated prompt tokens, the cached ones left out", function()
    local evs = run(project("ollama", "prompt=4000,cached=3000,chunks=200"))
    local m = evs.model[1]
    -- Ollama says only what it evaluated (1000): that is what its prompt cost
    assert.same({ 1000, 200, 4500, "USD" }, { m.prompt_tokens, m.completion_tokens, m.cost, m.currency })
    assert.is_nil(m.cached_tokens)
  end)

  it("shows in orket log, orket runs, orket card, the API and /metrics (promtool accepts it)", function()
    local dir = project("openai", "prompt=4000,cached=3000,chunks=200", "budgets = { turns_per_card = 2 }")
    run(dir)
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.matches("usage: 2 calls, 8000 prompt tokens %(6000 cached%), 400 output tokens, cost 0.0165 USD", log)
    assert.matches("4000%+200 tokens %(3000 cached%), 0.00825 USD", log)
    local doc = cjson.decode(H.orket("log 1 --json", { cwd = dir }).stdout)
    assert.same({ USD = 16500 }, doc.usage.cost)
    local turn
    for _, ev in ipairs(doc.events) do turn = turn or ev.turn end
    assert.same({ 3000, 8250, "USD" }, { turn.cached_tokens, turn.cost, turn.currency })
    assert.matches("  0.0165 USD\n", H.orket("runs", { cwd = dir }).stdout)
    assert.same({ USD = 16500 }, cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs[1].cost)
    assert.matches("model: +2 calls, 8000 prompt tokens %(6000 cached%), 400 output tokens, cost 0.0165 USD",
      H.orket("card M-1", { cwd = dir }).stdout)
    assert.matches("cost 0.0165 USD", H.orket("card M", { cwd = dir }).stdout) -- the epic: its cards' calls
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local st, card = H.api(s, "GET", "/v1/cards/M-1", op)
    assert.equal(200, st)
    assert.same({ USD = 16500 }, card.usage.cost)
    assert.equal(6000, card.usage.cached)
    local _, runs = H.api(s, "GET", "/v1/runs", op)
    assert.same({ USD = 16500 }, runs.runs[1].usage.cost)
    local _, one = H.api(s, "GET", "/v1/runs/1", op)
    assert.same({ 2, 8000, 6000, 400 }, { one.run.usage.calls, one.run.usage.input, one.run.usage.cached, one.run.usage.output })
    local _, tr = H.api(s, "GET", "/v1/runs/1/transcript", op)
    assert.same({ USD = 16500 }, tr.usage.cost)
    local _, _, text = H.api(s, "GET", "/metrics", op)
    assert.matches('\norket_cost_total{model="fake:prompt=4000,cached=3000,chunks=200",currency="USD"} 0.0165\n', text)
    assert.matches('\norket_model_cached_tokens_total{model="fake:prompt=4000,cached=3000,chunks=200"} 6000\n', text)
    H.write(dir .. "/metrics.txt", text)
    local pt = io.popen("promtool check metrics < " .. H.quote(dir .. "/metrics.txt") .. " 2>&1; echo rc=$?")
    local pout = pt:read("a")
    pt:close()
    assert.matches("rc=0\n$", pout)
    assert.equal(0, s.stop())
  end)

  it("is unknown, not 0, when the provider reports no usage", function()
    local evs = run(project("openai", "no_usage"))
    assert.is_nil(evs.model[1].cost)
    assert.is_nil(evs.model[1].currency)
  end)
end)

describe("a money budget", function()
  before_each(function() fake.reset() end)

  it("stops the card before a call that could pass it, and a person's answer lets it go on", function()
    -- each call costs 0.00825 USD and is estimated at about 0.045 USD before it is sent
    -- (its whole allowance of output, 4096 tokens, at 10 USD a million)
    local dir = project("openai", "prompt=4000,cached=3000,chunks=200",
      [[budgets = { turns_per_card = 3, cost_per_card = "0.06 USD" }]])
    local evs = run(dir)
    assert.equal(2, requests())
    local reached = evs.budget_reached[1]
    assert.same({ "card", "M-1", 16500, 60000, "USD" }, { reached.scope, reached.id, reached.spent, reached.budget, reached.currency })
    assert.is_true(reached.spent + reached.estimate > reached.budget)
    local blocked = evs.card_blocked[1]
    assert.equal("input", blocked.reason)
    assert.matches("money budget: the card M%-1 spent 0.0165 USD of its 0.06 USD %(budgets.cost_per_card%)", blocked.detail)
    assert.equal("waiting_for_developer", evs.turn_end[#evs.turn_end].status)
    local stuck = evs.stall[1].cards[1]
    assert.same({ "M-1", "budget" }, { stuck.card, stuck.waits_for })
    assert.equal("orket answer M-1 \"go on\" to approve one budget more, or raise it in orket.lua", stuck.next)
    assert.same({ "M-1" }, evs.run_end[1].waiting)
    -- without a person nothing more is spent
    run(dir)
    assert.equal(2, requests())
    assert.equal(0, H.orket("answer M-1 'go on'", { cwd = dir }).status)
    evs = run(dir)
    assert.equal(4, requests())
    assert.equal(2, #evs.model)
    -- one budget's worth more: two calls, then the card waits again, the amounts since the answer
    assert.equal(16500, evs.budget_reached[1].spent)
    assert.equal("waiting_for_developer", evs.turn_end[#evs.turn_end].status)
    -- the API's answer (the web board's) approves as the CLI's does
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local st = H.api(s, "POST", "/v1/cards/M-1/answer", op, { text = "approved" })
    assert.equal(200, st)
    assert.equal(0, s.stop())
    evs = run(dir)
    assert.equal(6, requests())
  end)

  it("warns at 80%, ends the run at its budget and never passes it by more than a call", function()
    -- max_output_tokens bounds the estimate: a call is estimated below its real cost here
    -- (the fake server reports 4000 prompt tokens, far more than the request holds)
    local dir = project("openai", "prompt=4000,cached=3000,chunks=200",
      [[budgets = { turns_per_card = 9, cost_per_run = "0.03 USD", max_output_tokens = 200 }]])
    local evs = run(dir)
    assert.equal(200, fake.log()[1].request.max_tokens)
    assert.equal(1, #evs.budget_warning)
    assert.equal("run", evs.budget_warning[1].scope)
    assert.is_true(evs.budget_warning[1].spent * 5 >= 30000 * 4)
    local spent = 0
    for _, m in ipairs(evs.model) do spent = spent + m.cost end
    assert.is_true(spent > 30000 * 4 / 5 and spent <= 30000 + 8250, tostring(spent))
    -- the run's budget ends the run, blocking no card
    assert.equal("run", evs.budget_reached[1].scope)
    assert.is_nil(evs.card_blocked)
    assert.equal("stalled", evs.run_end[1].status)
  end)
end)
