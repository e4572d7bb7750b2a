-- Money budgets end to end (docs/cost.md), against the fake model server, on SQLite and on
-- PostgreSQL (tests/backends.lua): a budget that a call could pass stops the card before
-- the call is sent, the card waits with the reason `budget`, and a person's answer (the
-- CLI's, the API's) or a raised budget lets it go on; the run's budget ends the run.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local B = require "tests.backends"
local cjson = require "cjson"

local fake = F.model_server(teardown)
after_each(H.cleanup)

local PRICE = [[{ input = "2.50", cached_input = "1.25", output = 10, currency = "USD" }]]
-- each call costs 0.00825 USD and is estimated at about 0.045 USD before it is sent (its
-- whole allowance of output, 4096 tokens, at 10 USD a million)
local MODEL = "prompt=4000,cached=3000,chunks=200"

-- A one-issue project (epic M, issue M-1) on the backend under test, its model the fake
-- server's (`model`, default MODEL) through an OpenAI-compatible provider, with `budgets`;
-- `issues` more issues M-2... when given.
local function project(budgets, model, issues)
  model = model or MODEL
  local store = B.name() == "pg" and string.format("store = { url = %q }\n", B.fresh_url()) or ""
  local dir = fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } },
  prices = { ["fake:%s"] = %s } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = %s
%s]], model, fake.url .. "/v1", model, PRICE, budgets, store))
  if issues then
    local list = {}
    for i = 1, issues do list[i] = { id = "M-" .. i, summary = "Do it " .. i, seat = "senior_developer" } end
    H.write(dir .. "/epics/m.json", cjson.encode { id = "M", name = "Model", issues = list })
    assert(H.orket("import", { cwd = dir }).status == 0)
  end
  return dir
end

local function run(dir) return fake.run_events(dir) end
local function run_target(dir, target) return fake.run_events(dir, target) end

local function requests() return #fake.log() end

local function card(dir, id)
  return cjson.decode(H.orket("card " .. id .. " --json", { cwd = dir }).stdout).card
end

describe("a money budget (" .. B.name() .. ")", function()
  before_each(function() fake.reset() end)

  it("stops the card before a call that could pass it; it waits with the reason budget and the amounts", function()
    local dir = project([[{ turns_per_card = 3, cost_per_card = "0.06 USD" }]])
    local evs = run(dir)
    assert.equal(2, requests())
    local reached = evs.budget_reached[1]
    assert.same({ "card", "M-1", 16500, 60000, "USD" }, { reached.scope, reached.id, reached.spent, reached.budget, reached.currency })
    assert.is_true(reached.spent + reached.estimate > reached.budget)
    local blocked = evs.card_blocked[1]
    assert.equal("budget", blocked.reason)
    assert.matches("money budget: the card M%-1 spent 0.0165 USD of its 0.06 USD %(budgets.cost_per_card%)", blocked.detail)
    assert.equal("waiting_for_developer", evs.turn_end[#evs.turn_end].status)
    local c = card(dir, "M-1")
    assert.same({ "waiting_for_developer", "budget" }, { c.status, c.wait_reason })
    local stuck = evs.stall[1].cards[1]
    assert.same({ "M-1", "budget", "budget" }, { stuck.card, stuck.waits_for, stuck.wait_reason })
    assert.equal("orket answer M-1 --approve to approve one budget more, or raise it in orket.lua", stuck.next)
    assert.same({ "M-1" }, evs.run_end[1].waiting)
    -- without a person nothing more is spent
    run(dir)
    assert.equal(2, requests())
  end)

  it("goes on after a person's approval: orket answer --approve, then the API's approve (the web board's)", function()
    local dir = project([[{ turns_per_card = 3, cost_per_card = "0.06 USD" }]])
    run(dir)
    assert.equal(2, requests())
    assert.equal(0, H.orket("answer M-1 --approve", { cwd = dir }).status)
    assert.equal("ready", card(dir, "M-1").status)
    local evs = run(dir)
    assert.equal(4, requests())
    assert.equal(2, #evs.model)
    -- one budget's worth more: two calls, then the card waits again, the amounts since the answer
    assert.equal(16500, evs.budget_reached[1].spent)
    assert.equal("budget", card(dir, "M-1").wait_reason)
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local st = H.api(s, "POST", "/v1/cards/M-1/approve", op, { note = "one more" })
    assert.equal(200, st)
    assert.equal(0, s.stop())
    run(dir)
    assert.equal(6, requests())
  end)

  -- Any answer approved going on, a "no" as much as a "go on": text and a refusal are
  -- refused now, saying how to approve it, and nothing is spent.
  it("is approved, never answered with text nor denied, on the CLI and the API alike", function()
    local dir = project([[{ turns_per_card = 3, cost_per_card = "0.06 USD" }]])
    run(dir)
    assert.equal(2, requests())
    local r = H.orket("answer M-1 'no'", { cwd = dir })
    assert.equal(2, r.status, r.stderr)
    assert.matches("M-1 waits on a money budget, not for text: approve going on past it (one budget's worth more), or "
      .. "raise the budget in orket.lua (docs/cost.md); use 'orket answer M-1 --approve [\"note\"]'", r.stderr, 1, true)
    r = H.orket("answer M-1 --deny 'too costly'", { cwd = dir })
    assert.equal(2, r.status, r.stderr)
    assert.matches("M-1 waits on a money budget: approve going on past it, or leave it waiting; to end its work, "
      .. "cancel it (orket cancel M-1 \"reason\", POST /v1/cards/M-1/cancel)", r.stderr, 1, true)
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local st, doc = H.api(s, "POST", "/v1/cards/M-1/answer", op, { text = "no" })
    assert.same({ 409, "EUSAGE" }, { st, doc.error.code })
    assert.matches("waits on a money budget, not for text", doc.error.message, 1, true)
    st, doc = H.api(s, "POST", "/v1/cards/M-1/deny", op, { reason = "too costly" })
    assert.same({ 409, "EUSAGE" }, { st, doc.error.code })
    assert.equal(0, s.stop())
    assert.same({ "waiting_for_developer", "budget" }, { card(dir, "M-1").status, card(dir, "M-1").wait_reason })
    run(dir)
    assert.equal(2, requests()) -- nothing was approved
    r = H.orket("answer M-1 --approve 'worth it'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^approved one budget more %(the card's money budget%) for M%-1; continue with", r.stdout)
    run(dir)
    assert.equal(4, requests())
  end)

  it("restarts only the budget that was reached on an approval: the epic's keeps counting", function()
    -- each card's budget (0.06 USD) stops it after two calls (0.0165 USD); the epic has
    -- spent 0.033 USD of its 0.085 USD when both cards' budgets are approved
    local dir = project([[{ turns_per_card = 9, cost_per_card = "0.06 USD", cost_per_epic = "0.085 USD" }
concurrency = 1]], nil, 2)
    local evs = run(dir)
    assert.equal(4, requests())
    for _, r in ipairs(evs.budget_reached) do assert.equal("card", r.scope) end
    assert.equal(0, H.orket("answer M-1 --approve", { cwd = dir }).status)
    assert.equal(0, H.orket("answer M-2 --approve", { cwd = dir }).status)
    evs = run(dir)
    -- the epic's budget counts every call of its cards, from 0.033 USD: one more call fits
    -- (estimated at about 0.045 USD), the next would pass it; an approval of the cards'
    -- budgets gave the epic no room of its own (restarted, the epic let each card spend
    -- its own budget again: four calls)
    assert.equal(5, requests())
    local reached = evs.budget_reached[1]
    assert.same({ "epic", 33000 + 8250 }, { reached.scope, reached.spent })
    assert.is_true(reached.spent + reached.estimate > 85000)
    for _, r in ipairs(evs.budget_reached) do assert.equal("epic", r.scope) end
    -- approving the epic's budget then gives the epic one budget's worth more
    local waiting = {}
    for _, id in ipairs { "M-1", "M-2" } do
      if card(dir, id).wait_reason == "budget" then waiting[#waiting + 1] = id end
    end
    assert.is_true(#waiting >= 1)
    assert.equal(0, H.orket("answer " .. waiting[1] .. " --approve", { cwd = dir }).status)
    local db <close> = assert(require("orket.project").open_store(dir))
    local marks = require("orket.store.costs").approved_marks(db, waiting[1])
    assert.is_true(marks.epic[2] > marks.card[2], "the epic's mark is the newer")
  end)

  it("counts the calls of every run of a server: four runs at once share the day's budget", function()
    -- each run sees the others' recorded calls before each of its own; before, each run
    -- counted only its own and the four spent about two and a half day budgets
    local dir = project([[{ turns_per_card = 20, cost_per_day = "0.1 USD" }]], MODEL .. ",chunk_ms=2", 4)
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    for i = 1, 4 do
      local st = H.api(s, "POST", "/v1/runs", op, { target = "M-" .. i })
      assert.equal(201, st)
    end
    H.wait_for(function()
      orket.sleep(50)
      local _, doc = H.api(s, "GET", "/v1/runs", op)
      local ended = 0
      for _, r in ipairs(doc.runs) do
        if r.state == "done" or r.state == "stalled" or r.state == "failed" then ended = ended + 1 end
      end
      return ended == 4
    end, "the four runs", 600)
    assert.equal(0, s.stop())
    local db <close> = assert(require("orket.project").open_store(dir))
    local spent = require("orket.store.costs").totals(db, {}).cost.USD
    -- at most a call past the budget, and the calls the other three runs had in flight
    assert.is_true(spent <= 100000 + 4 * 8250, tostring(spent))
    assert.is_true(spent > 100000 - 45000 - 8250, tostring(spent))
  end)

  it("goes on once the budget is raised in orket.lua, and stops again at the new one", function()
    local dir = project([[{ turns_per_card = 9, cost_per_card = "0.06 USD" }]])
    local reached = run(dir).budget_reached[1]
    assert.equal(2, requests())
    -- a run with the same budget leaves the card waiting
    run(dir)
    assert.equal(2, requests())
    -- room for the call refused and a little more: one call, then the next is refused
    local raised = reached.spent + reached.estimate + 1000
    local text = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", (text:gsub('"0%.06 USD"', string.format('"%.6f USD"', raised / 1e6))))
    local evs = run(dir)
    assert.equal(3, requests())
    assert.same({ reached.spent + 8250, raised }, { evs.budget_reached[1].spent, evs.budget_reached[1].budget })
    assert.same({ "waiting_for_developer", "budget" }, { card(dir, "M-1").status, card(dir, "M-1").wait_reason })
  end)

  it("counts the calls in flight: turns running at once never pass the epic's budget together", function()
    -- each call's output is about its whole allowance (4096 tokens, 0.041 USD), so it costs
    -- about its estimate: three turns at once, each seeing the 0.06 USD unspent, would pass
    -- the budget by two calls; held against it while in flight, the second and third wait
    -- for the first, and then find it spent
    local dir = project([[{ turns_per_card = 3, cost_per_epic = "0.06 USD" }]], "prompt=1,chunks=4096", 3)
    local evs = run(dir)
    assert.equal(1, requests())
    local spent = 0
    for _, m in ipairs(evs.model) do spent = spent + m.cost end
    assert.is_true(spent <= 60000, tostring(spent))
    for _, r in ipairs(evs.budget_reached) do assert.equal("epic", r.scope) end
    assert.same({ "M-1", "M-2", "M-3" }, evs.run_end[1].waiting)
  end)

  it("warns at 80%, ends the run at its budget and never passes it by more than a call", function()
    -- max_output_tokens bounds the estimate: a call is estimated below its real cost here
    -- (the fake server reports 4000 prompt tokens, far more than the request holds)
    local dir = project([[{ turns_per_card = 9, cost_per_run = "0.03 USD", max_output_tokens = 200 }]])
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

  it("sends budgets.max_output_tokens as max_tokens, none of its own, and validate warns a money budget of 0",
    function()
    -- with 0 nothing bounds the answer, and a call may cost more than the check's 4096
    -- tokens assumed: said by validate. No default is sent (a reasoning model refuses
    -- max_tokens, a small context window refuses prompt + 4096).
    local dir = project([[{ turns_per_card = 1, cost_per_run = "5 USD" }]])
    local v = H.orket("validate", { cwd = dir })
    assert.matches("budgets.max_output_tokens is 0, so nothing bounds a call's answer", v.stdout .. v.stderr, 1, true)
    run(dir)
    assert.is_nil(fake.log()[1].request.max_tokens)
    fake.reset()
    dir = project([[{ turns_per_card = 1, cost_per_run = "5 USD", max_output_tokens = 300 }]])
    v = H.orket("validate", { cwd = dir })
    assert.is_nil((v.stdout .. v.stderr):find("max_output_tokens is 0", 1, true))
    run(dir)
    assert.equal(300, fake.log()[1].request.max_tokens)
  end)

  it("charges the calls its stop aborted after they were sent, at their estimates, as charged failures", function()
    -- M-1's call (fast, 100000 prompt tokens: 0.25 USD) passes the run's 0.10 USD; its
    -- turn's next check ends the run while the three slow calls wait for their answers.
    -- The server had each whole request and bills it: before, none was charged or journaled.
    local F1, S1 = "prompt=100000,first_byte_ms=100", "prompt=100000,first_byte_ms=3000"
    local store = B.name() == "pg" and string.format("store = { url = %q }\n", B.fresh_url()) or ""
    local dir = fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } },
  prices = { ["fake:%s"] = %s, ["fake:%s"] = %s } }
team = { senior_developer = { roles = { "coder" }, model = "fake:%s" }, junior_developer = { roles = { "coder" }, model = "fake:%s" },
  integrity_guard = { roles = { "integrity_guard" } } }
budgets = { cost_per_run = "0.10 USD", max_output_tokens = 1000 }
concurrency = 4
%s]], F1, fake.url .. "/v1", F1, PRICE, S1, PRICE, F1, S1, store))
    local list = { { id = "M-1", summary = "one", seat = "senior_developer" } }
    for i = 2, 4 do list[i] = { id = "M-" .. i, summary = "Do it " .. i, seat = "junior_developer" } end
    H.write(dir .. "/epics/m.json", cjson.encode { id = "M", name = "Model", issues = list })
    assert(H.orket("import", { cwd = dir }).status == 0)
    local evs = run(dir)
    assert.equal(4, requests())
    assert.equal("stalled", evs.run_end[1].status)
    local db <close> = assert(require("orket.project").open_store(dir))
    local n, charged, cards = 0, 0, {}
    for _, r in ipairs(db:rows("SELECT card_id, data FROM events WHERE kind = 'model_failure' ORDER BY id")) do
      local d = cjson.decode(r.data)
      assert.same({ "canceled", true, 1000, "USD" }, { d.class, d.aborted, d.completion_tokens, d.currency })
      -- at the estimate: the prompt by its bytes, uncached, and the whole allowance of output
      assert.is_true(d.prompt_tokens > 0 and d.prompt_tokens < 100000, r.data)
      assert.equal(require("orket.cost").estimate(require("orket.cost").price(
        { input = "2.50", cached_input = "1.25", output = 10, currency = "USD" }), d.prompt_tokens, 1000), d.cost)
      n, charged, cards[#cards + 1] = n + 1, charged + d.cost, r.card_id
    end
    table.sort(cards)
    assert.same({ "M-2", "M-3", "M-4" }, cards)
    -- the run's usage counts the four calls the provider billed
    local usage = require("orket.store.costs").totals(db, { run = 1 })
    assert.same({ 4, 4 }, { usage.calls, usage.priced })
    assert.equal(250050 + charged, usage.cost.USD)
    assert.equal(3, #evs.model_failure)
    -- the run's reason says what it had spent when it ended, as its usage does, beside
    -- what it had when its budget stopped it
    local all = require("orket.cost").format(250050 + charged, "USD")
    for _, reason in ipairs { evs.run_end[1].reason, evs.stall[1].reason } do
      assert.matches("the run 1 spent 0.25005 USD of its 0.10 USD", reason, 1, true)
      assert.matches("with the calls then in flight, the run 1 spent " .. all .. ";", reason, 1, true)
    end
  end)

  it("charges a call a person's stop (SIGINT) aborted after it was sent, and the resume's call again", function()
    -- the server holds its answer for 5 s; the run is stopped once it has the whole request.
    -- Before, only a budget's stop charged such a call: a Ctrl-C left it out, and the
    -- resume's call made four requests counted as three.
    local S = "prompt=1000,first_byte_ms=5000"
    local store = B.name() == "pg" and string.format("store = { url = %q }\n", B.fresh_url()) or ""
    local dir = fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } }, prices = { ["fake:%s"] = %s } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { max_output_tokens = 100 }
%s]], S, fake.url .. "/v1", S, PRICE, store))
    os.execute(string.format("cd %s && { env --default-signal=INT %s run M >out 2>err & echo $! >pid; wait $!; "
      .. "echo $? >rc; } &", H.quote(dir), H.quote(H.BIN)))
    local ok, err = pcall(function()
      H.wait_for(function() return requests() == 1 end, "the model call to reach the server", 3000)
      os.execute("kill -INT " .. H.read(dir .. "/pid"))
      H.wait_for(function() return H.read(dir .. "/rc") end, "the stopped run to end", 3000)
    end)
    H.end_started(dir, "pid", "rc", true)
    assert(ok, err)
    assert.equal("130", H.read(dir .. "/rc"):match("%d+"), H.read(dir .. "/err"))
    local function failures()
      local db <close> = assert(require("orket.project").open_store(dir))
      local list = {}
      for _, r in ipairs(db:rows("SELECT data FROM events WHERE kind = 'model_failure' ORDER BY id")) do
        list[#list + 1] = cjson.decode(r.data)
      end
      return list, require("orket.store.costs").totals(db, { run = 1 })
    end
    local list, usage = failures()
    assert.equal(1, #list)
    assert.same({ "canceled", true, 100, "USD" }, { list[1].class, list[1].aborted, list[1].completion_tokens,
      list[1].currency })
    assert.matches("the run was stopped after the request was sent: charged at its estimate", list[1].error
      or list[1].message or cjson.encode(list[1]), 1, true)
    assert.same({ 1, 1, { USD = list[1].cost } }, { usage.calls, usage.priced, usage.cost })
    -- the resume asks again (the turn was left half done): that call is charged as well
    fake.reset()
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua"):gsub("first_byte_ms=5000", "first_byte_ms=0"))
    local r = H.orket("resume", { cwd = dir })
    -- (the fake's answers call no tool: the card ends blocked, the run failed)
    assert.is_true(r.status == 0 or r.status == 1, r.stderr)
    assert.is_true(requests() >= 1)
    list, usage = failures()
    assert.equal(1, #list)
    assert.equal(1 + requests(), usage.calls)
  end)

  it("charges a call whose answer's usage is refused: the run's budget stops the run before every card is asked", function()
    -- each answer's usage is refused, yet each call is billed: charged its estimate (about
    -- 0.045 USD, its whole allowance of output), two calls fill the run's 0.10 USD, and the
    -- third is never sent
    local dir = project([[{ turns_per_card = 3, cost_per_run = "0.10 USD" }]], "prompt=-5,chunks=200", 5)
    local evs = run(dir)
    assert.equal(2, requests())
    local reached = evs.budget_reached[1]
    assert.same({ "run", "USD" }, { reached.scope, reached.currency })
    -- the journal keeps each charge and the counts the server sent
    local db <close> = assert(require("orket.project").open_store(dir))
    local spent, tokens, n = 0, 0, 0
    for _, r in ipairs(db:rows("SELECT data FROM events WHERE kind = 'model_failure' ORDER BY id")) do
      local d = cjson.decode(r.data)
      assert.same({ prompt_tokens = -5, completion_tokens = 200 }, d.refused_usage)
      assert.equal(4096, d.completion_tokens)
      assert.is_true(d.cost > 4096 * 10 and d.prompt_tokens > 0, r.data)
      spent, tokens, n = spent + d.cost, tokens + d.prompt_tokens + d.completion_tokens, n + 1
    end
    assert.is_true(reached.spent <= 100000 and reached.spent + reached.estimate > 100000, tostring(reached.spent))
    -- the run's usage counts them, as calls and tokens of a known cost
    local usage = require("orket.store.costs").totals(db, { run = 1 })
    assert.same({ n, n, tokens, { USD = spent } }, { usage.calls, usage.priced, usage.input + usage.output, usage.cost })
    -- on SQLite each failure is written before the next task runs; on PostgreSQL the write
    -- waits, and the stop the budget makes may cancel the other call's write in flight
    -- (as it would a response's): the run's own totals counted it all the same
    if B.name() == "pg" then
      assert.is_true(n >= 1 and spent <= reached.spent, tostring(spent))
    else
      assert.same({ 2, reached.spent }, { n, spent })
    end
    -- GET /metrics counts them as every other sum does: calls, tokens and cost
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local _, _, text = H.api(s, "GET", "/metrics", op)
    assert.equal(0, s.stop())
    local label = '{model="fake:prompt=-5,chunks=200"'
    assert.matches("\norket_cost_total" .. label:gsub("%p", "%%%0") .. ',currency="USD"} '
      .. require("orket.cost").format(spent):gsub("%p", "%%%0") .. "\n", text)
    assert.matches("\norket_model_calls_total" .. label:gsub("%p", "%%%0") .. "} " .. n .. "\n", text)
  end)

  it("charges a call whose provider reports no usage at its estimate: the run's budget still holds", function()
    -- no usage at all, or a count that is no count ("abc"): each call is charged its
    -- estimate (about 0.045 USD), two fill the run's 0.10 USD, the third is never sent
    for _, model in ipairs { "no_usage,chunks=200", "prompt_as=abc,chunks=200" } do
      fake.reset()
      local dir = project([[{ turns_per_card = 3, cost_per_run = "0.10 USD" }]], model, 5)
      local evs = run(dir)
      assert.equal(2, requests(), model)
      local reached = evs.budget_reached[1]
      assert.same({ "run", "USD" }, { reached.scope, reached.currency })
      assert.is_true(reached.spent > 2 * 4096 * 10 and reached.spent <= 100000, tostring(reached.spent))
      local spent = 0
      for _, m in ipairs(evs.model) do spent = spent + m.cost end
      -- on PostgreSQL the stop the budget makes may cancel the other call's write in flight
      -- (see above), or only its event once the write is in: the run's own totals counted
      -- it all the same, and the store holds what its events say, or that and the other
      local db <close> = assert(require("orket.project").open_store(dir))
      local stored = require("orket.store.costs").totals(db, { run = 1 }).cost.USD
      if B.name() == "pg" then
        assert.is_true(spent > 4096 * 10 and spent <= reached.spent, tostring(spent))
        assert.is_true(stored >= spent and stored <= reached.spent, tostring(stored))
      else
        assert.equal(reached.spent, spent)
        assert.equal(spent, stored)
      end
    end
  end)

  it("counts a refused answer's charge against the token budgets", function()
    -- one card at a time: token budgets hold no room for the calls in flight
    local dir = project("{ turns_per_card = 3, tokens_per_run = 5000 }\nconcurrency = 1", "prompt=-5,chunks=200", 3)
    local evs = run(dir)
    -- the call is charged its whole allowance of output (4096 tokens) and its prompt: past
    -- the run's 5000 tokens, no other card is asked
    assert.equal(1, requests())
    assert.matches("the run's token budget %(budgets.tokens_per_run = 5000%) ran out", evs.run_end[1].reason)
    -- the refused answer is journaled with its charge, and the run's tokens count it
    local db <close> = assert(require("orket.project").open_store(dir))
    local tokens, n = 0, 0
    for _, r in ipairs(db:rows("SELECT data FROM events WHERE kind = 'model_failure' ORDER BY id")) do
      local d = cjson.decode(r.data)
      tokens, n = tokens + d.prompt_tokens + d.completion_tokens, n + 1
    end
    assert.is_true(n == 1 and tokens > 5000, tostring(n))
    assert.equal(tokens, evs.run_end[1].tokens)
    assert.equal(tokens, require("orket.store.journal_reads").run_tokens(db, 1))
  end)

  it("holds against a server that reports a negative usage: the call fails, the day's budget still counts", function()
    -- a negative count priced would take 12,500 USD off the day's spending; refused, the
    -- card waits as after any model failure, asked once (each try is billed)
    local hostile = "prompt=-5000000000,chunks=200"
    local dir = project([[{ turns_per_card = 3 }]], hostile, 2)
    local evs = run_target(dir, "M-1")
    assert.equal(1, requests())
    assert.is_nil(evs.model)
    assert.matches("The model failed %(bad_request%): provider fake %(openai, [^)]*%), model [^:]*: openai: the answer's usage is refused: prompt_tokens is %-5000000000, "
      .. "not a token count %(a whole number from 0 to 2147483647%)", evs.card_blocked[1].detail)
    assert.is_nil(H.orket("runs", { cwd = dir }).stdout:find(" %-%d"))
    -- the same day, a model that answers as it should: the day's budget stops its first call
    local text = H.read(dir .. "/orket.lua"):gsub("prompt=%-5000000000,chunks=200", MODEL)
    H.write(dir .. "/orket.lua", (text:gsub("budgets = { turns_per_card = 3 }", 'budgets = { turns_per_card = 3, cost_per_day = "0.01 USD" }')))
    evs = run_target(dir, "M-2")
    assert.equal(1, requests())
    assert.same({ "day", "USD" }, { evs.budget_reached[1].scope, evs.budget_reached[1].currency })
    -- the refused call counts at its estimate: its whole allowance of output and more
    assert.is_true(evs.budget_reached[1].spent > 4096 * 10, tostring(evs.budget_reached[1].spent))
  end)
end)
