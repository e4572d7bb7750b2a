-- Cost and money budgets end to end (docs/cost.md), against the fake model server: each
-- model call's tokens by kind, read from the provider's own usage fields (OpenAI's cached
-- tokens, llama.cpp's timings, Ollama's evaluated prompt), and its cost from orket.lua's
-- price; no cost without a price or a reported usage. Money budgets: budget_test.lua.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local fake = F.model_server(teardown)

local PRICE = [[{ input = "2.50", cached_input = "1.25", output = 10, currency = "USD" }]]

-- A one-issue project whose model is the fake server's `model` through a provider of `kind`;
-- by default one turn, and the engine's later rounds after a failed call waiting 25 ms
-- onwards rather than 5 s (75 s a failing case with the default backoff_ms).
local function project(kind, model, extra)
  local base = kind == "openai" and (fake.url .. "/v1") or fake.url
  return fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = %q, base_url = %q } },
  prices = { ["fake:%s"] = %s } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
%s
]], model, kind, base, model, PRICE, extra or "budgets = { turns_per_card = 1, backoff_ms = 1 }"))
end

local function run(dir) return fake.run_events(dir) end

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

  it("is never made of counts that are no counts: the call fails, naming the count", function()
    for _, case in ipairs {
      { "openai", "prompt=10000000000000", "prompt_tokens is 10000000000000" }, -- past 2^31 - 1: wrapped the cost
      { "openai", "prompt=1.5", "prompt_tokens is 1.5" },
      { "ollama", "prompt=-7", "prompt_tokens is %-7" },
    } do
      local evs = run(project(case[1], case[2]))
      assert.is_nil(evs.model, case[2])
      assert.matches("The model failed %(bad_request%): provider [%w_]+ %(" .. case[1] .. ", [^)]*%), model [^:]*: " .. case[1] .. ": the answer's usage is refused: " .. case[3],
        evs.card_blocked[1].detail)
    end
  end)

  it("shows a cost below 0 recorded before usages were checked as 0, in orket log and its JSON", function()
    local dir = project("openai", "prompt=4000,cached=3000,chunks=200")
    run(dir)
    do
      local db <close> = assert(require("orket.project").open_store(dir))
      assert(db:record_turn { run = 1, card = "M-1", seat = "senior_developer", turn = 9, model = "old", prompt_tokens = 1,
        completion_tokens = 1, data = { step = 1, cost = -4999999990, currency = "USD" } })
    end
    local doc = cjson.decode(H.orket("log 1 --json", { cwd = dir }).stdout)
    local shown = {}
    for _, ev in ipairs(doc.events) do
      if ev.turn then shown[#shown + 1] = ev.turn.cost end
    end
    assert.same({ 8250, 0 }, shown)
    local log = H.orket("log 1", { cwd = dir }).stdout
    assert.matches("1%+1 tokens, 0%.00 USD", log)
    assert.is_nil(log:find("%-4999"))
  end)

  it("reads more cached than prompt tokens as a relay of Anthropic's models counts them: never cheaper", function()
    local dir = project("openai", "prompt=4000,cached=5000,chunks=200")
    local evs = run(dir)
    local m = evs.model[1]
    -- 4000 uncached * 2.50 + 5000 cached * 1.25 + 200 out * 10, per million, in micro-USD
    assert.same({ 9000, 5000, 200, 18250, "USD" }, { m.prompt_tokens, m.cached_tokens, m.completion_tokens, m.cost, m.currency })
    -- the reading is noted in the call's record
    local db <close> = assert(require("orket.project").open_store(dir))
    local usage = cjson.decode(db:row("SELECT response FROM turns ORDER BY id LIMIT 1").response).usage
    assert.matches("^cached_tokens %(5000%) is more than prompt_tokens %(4000%): read as prompt tokens that leave the cached ones out",
      usage.note)
  end)

  it("is charged at the estimate before the call when the provider reports no usage, or not all of it", function()
    -- the estimate: the prompt uncached and the whole allowance of output (4096 tokens at
    -- 10 USD a million: 0.04096 USD) and more; what a money budget held against the call
    for _, case in ipairs {
      { "openai", "no_usage" }, { "openai", "completion_as=absent" }, { "openai", "prompt_as=absent" },
      { "openai", "prompt_as=abc" }, { "openai", "prompt_as=" }, { "openai", "prompt_as=inf" },
      { "openai", "prompt_as=true" }, { "openai", "prompt_as=null" }, { "openai", "prompt_as=0x10" },
      { "ollama", "no_usage" }, { "ollama", "completion_as=abc" },
    } do
      local dir = project(case[1], case[2])
      local m = run(dir).model[1]
      assert.equal("USD", m.currency, case[2])
      assert.is_true(m.cost > 4096 * 10 and m.cost < 4096 * 10 + 10000, case[2] .. ": " .. tostring(m.cost))
      -- the call's record says why; the run's usage counts it as a call of known cost
      local db <close> = assert(require("orket.project").open_store(dir))
      local usage = cjson.decode(db:row("SELECT response FROM turns ORDER BY id LIMIT 1").response).usage
      assert.is_true(usage.estimated, case[2])
      assert.matches("the provider reported no usage or only part of it: charged at the estimate before the call", usage.note, 1, true)
      local totals = require("orket.store.costs").totals(db, { run = 1 })
      assert.same({ 1, 1, { USD = m.cost } }, { totals.calls, totals.priced, totals.cost }, case[2])
    end
    -- a count that came is charged when it is more than the estimate
    local m = run(project("openai", "prompt=100000,completion_as=absent")).model[1]
    assert.equal(100000 * 2.5 + 4096 * 10, m.cost)
  end)

  it("charges an answer cut after it began at the estimate before the call: the provider billed it", function()
    for _, case in ipairs {
      { "openai", "prompt=4000,chunks=50,disconnect_after=3" }, { "openai", "prompt=4000,chunks=50,error_event" },
      { "ollama", "prompt=4000,chunks=50,disconnect_after=3" },
    } do
      local dir = project(case[1], case[2])
      local evs = run(dir)
      assert.is_nil(evs.model, case[2])
      local db <close> = assert(require("orket.project").open_store(dir))
      local rows = db:rows("SELECT data FROM events WHERE kind = 'model_failure' ORDER BY id")
      assert.is_true(#rows >= 1, case[2])
      local spent, tokens = 0, 0
      for _, r in ipairs(rows) do
        local d = cjson.decode(r.data)
        assert.is_true(d.cut, case[2] .. ": " .. r.data)
        assert.is_nil(d.refused_usage)
        -- its whole allowance of output (4096 tokens at 10 USD a million) and its prompt
        assert.equal(4096, d.completion_tokens, case[2])
        assert.is_true(d.cost > 4096 * 10 and d.prompt_tokens > 0, r.data)
        assert.equal("USD", d.currency)
        spent, tokens = spent + d.cost, tokens + d.prompt_tokens + d.completion_tokens
      end
      -- orket log says what each failed call was charged, as the usage line counts it
      local log = H.orket("log 1", { cwd = dir }).stdout
      assert.matches("%[model failed%] step 1: [%w_]+: .- %(charged %d+%+4096 tokens, 0%.%d+ USD%)\n", log)
      -- every usage counts each charge as a call of known cost
      local usage = require("orket.store.costs").totals(db, { run = 1 })
      assert.same({ #rows, #rows, tokens, { USD = spent } }, { usage.calls, usage.priced, usage.input + usage.output, usage.cost },
        case[2])
      -- by the model's name as an answered call's row gives it, not "fake:MODEL": the sums by
      -- model count both on one row
      local by_model = require("orket.store.costs").rows(db, { run = 1 })
      assert.same({ 1, case[2] }, { #by_model, by_model[1].model }, case[2])
    end
    -- a failure before any answer began (a 500) is not charged
    local dir = project("openai", "fail=500")
    run(dir)
    local db <close> = assert(require("orket.project").open_store(dir))
    local failed = db:rows("SELECT data FROM events WHERE kind = 'model_failure'")
    assert.is_true(#failed >= 1)
    for _, r in ipairs(failed) do assert.is_nil(cjson.decode(r.data).cost, r.data) end
    assert.equal(0, require("orket.store.costs").totals(db, { run = 1 }).calls)
  end)

  -- A charge's event named its model "fake:MODEL" where the model's answered calls name it
  -- MODEL: orket card's model lines showed one model as two.
  it("counts a charged failure and the model's answered calls on one model's line", function()
    local model = "prompt=4000,chunks=50,disconnect_after=3,disconnect_times=1"
    local dir = project("openai", model)
    local evs = run(dir)
    assert.equal(1, #(evs.model or {}), "the retry answered")
    local db <close> = assert(require("orket.project").open_store(dir))
    assert.equal(1, #db:rows("SELECT id FROM events WHERE kind = 'model_failure'"))
    local rows = require("orket.store.costs").rows(db, { run = 1 })
    assert.same({ 1, model, 2, 2 }, { #rows, rows[1].model, rows[1].calls, rows[1].priced })
    assert.matches("\nmodel: +2 calls, ", H.orket("card M-1", { cwd = dir }).stdout)
    -- and /metrics: one label, "provider:model", for both
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local _, _, text = H.api(s, "GET", "/metrics", op)
    assert.equal(0, s.stop())
    local calls = {}
    for label, n in text:gmatch("\norket_model_calls_total{model=\"([^\"]*)\"} (%d+)") do calls[label] = tonumber(n) end
    assert.same({ ["fake:" .. model] = 2 }, calls)
  end)

  -- the review's model unpriced: orket runs' cost is not the run's whole cost, and says so
  it("is said beside the calls of unknown cost in orket runs", function()
    local coder, reviewer = "tool=update_issue_status,arg_status=code_review", "tool=update_issue_status,arg_status=done"
    local dir = fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } },
  prices = { ["fake:%s"] = %s } }
team = { senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" }, model = "fake:%s" } }
]], coder, fake.url .. "/v1", coder, PRICE, reviewer))
    local r = H.orket("run M --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local listed = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs[1]
    assert.is_table(listed.cost)
    assert.is_true(listed.unpriced_calls >= 1)
    assert.matches(" USD %+ " .. math.tointeger(listed.unpriced_calls) .. " calls? of unknown cost\n", H.orket("runs", { cwd = dir }).stdout)
  end)

  it("is unknown, not 0, when the model has no price", function()
    local dir = fake.one_issue(string.format([[
models = { default = "fake:no_usage", providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], fake.url .. "/v1"))
    local m = run(dir).model[1]
    assert.is_nil(m.cost)
    assert.is_nil(m.currency)
  end)
end)

describe("a money budget's reach", function()
  before_each(function() fake.reset() end)

  -- A price under a key the project never calls (a typo), or in a currency no budget is
  -- in, left every call outside the budget without a word: the run went past it silently.
  it("is said once per model in a run when the model's calls count against no money budget", function()
    for _, case in ipairs {
      { [[["fake:chunks=3"] = { input = 1, cached_input = 1, output = 1, currency = "USD" }]],
        "fake:chunks=2: it has no price in models.prices, so its calls count against no money budget" },
      { [[["fake:chunks=3"] = { input = 1, cached_input = 1, output = 1, currency = "USD" },
          ["fake:chunks=2"] = { input = 1, cached_input = 1, output = 1, currency = "EUR" }]],
        "fake:chunks=2: its price in models.prices bills in EUR, and no money budget is in EUR" },
    } do
      local dir = fake.one_issue(string.format([[
models = { default = "fake:chunks=2", providers = { fake = { kind = "openai", base_url = %q } },
  prices = { %s } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 2, cost_per_run = "0.001 USD" }
]], fake.url .. "/v1", case[1]))
      local evs = run(dir)
      assert.equal(2, #evs.model, case[2])
      assert.equal(1, #(evs.budget_unpriced or {}), case[2])
      local w = evs.budget_unpriced[1]
      assert.same({ "fake:chunks=2", "M-1" }, { w.model, w.card })
      assert.matches(case[2], w.message, 1, true)
      -- journaled, so runs started by orket serve (whose engine emits to no one) show it on
      -- the event stream too; once, before the model's first call is recorded
      local db <close> = assert(require("orket.project").open_store(dir))
      local rows = db:rows("SELECT kind, card_id, data FROM events WHERE kind IN ('budget_unpriced', 'turn') ORDER BY id")
      local said = {}
      for _, r in ipairs(rows) do if r.kind == "budget_unpriced" then said[#said + 1] = r end end
      assert.equal(1, #said, case[2])
      assert.equal("budget_unpriced", rows[1].kind)
      local d = cjson.decode(said[1].data)
      assert.same({ "fake:chunks=2", "M-1" }, { d.model, said[1].card_id })
      assert.matches(case[2], d.message, 1, true)
    end
    -- a priced call under a budget of its currency: nothing said
    local evs = run(project("openai", "chunks=2", [[budgets = { turns_per_card = 1, cost_per_run = "5 USD" }]]))
    assert.equal(1, #evs.model)
    assert.is_nil(evs.budget_unpriced)
  end)
end)
