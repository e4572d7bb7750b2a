-- A card's money budget smaller than one call's estimate (docs/cost.md, "Money budgets"):
-- a person's approval lets one call go each time. Before, the check stopped the call
-- again at once (nothing spent, but the estimate alone passed the budget), so every
-- "go on" spent a turn of the card and let no call go. And a budget raised or removed in
-- orket.lua lets the card go on, its move to ready saying which (a removed one was said to
-- be raised).
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local fake = F.model_server(teardown)
after_each(H.cleanup)

-- each call costs 0.00825 USD and is estimated at about 0.045 USD before it is sent (its
-- whole allowance of output, 4096 tokens, at 10 USD a million): more than the budget
local MODEL = "prompt=4000,cached=3000,chunks=200"

local function project(budget, turns)
  return fake.one_issue(string.format([[
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } },
  prices = { ["fake:%s"] = { input = "2.50", cached_input = "1.25", output = "10", currency = "USD" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = %d, cost_per_card = %q }
]], MODEL, fake.url .. "/v1", MODEL, turns or 9, budget))
end

local function requests() return #fake.log() end

local function card(dir, id)
  return cjson.decode(H.orket("card " .. id .. " --json", { cwd = dir }).stdout).card
end

describe("a card's money budget below one call's estimate", function()
  before_each(function() fake.reset() end)

  it("says so when it stops the card, and each approval lets one call go", function()
    local dir = project("0.01 USD")
    local evs = fake.run_events(dir)
    assert.equal(0, requests())
    local reached = evs.budget_reached[1]
    assert.same({ "card", 0 }, { reached.scope, reached.spent })
    assert.is_true(reached.estimate > reached.budget, tostring(reached.estimate))
    assert.matches("the next call may cost up to [%d.]+ USD, more than the whole budget %(each approval lets one "
      .. "such call go; budgets.max_output_tokens bounds the estimate's output%)", evs.card_blocked[1].detail)
    assert.equal("budget", card(dir, "M-1").wait_reason)
    for n = 1, 2 do
      assert.equal(0, H.orket("answer M-1 --approve", { cwd = dir }).status)
      evs = fake.run_events(dir)
      -- the approved call went; the next one, with 0.00825 USD spent since, waits again
      assert.equal(n, requests())
      assert.equal(1, #evs.model)
      assert.equal(8250, evs.budget_reached[1].spent)
      assert.equal("budget", card(dir, "M-1").wait_reason)
    end
  end)

  it("lets no call go before an approval, nor a second call on one approval", function()
    local dir = project("0.01 USD")
    fake.run_events(dir)
    fake.run_events(dir)
    assert.equal(0, requests())
    assert.equal(0, H.orket("answer M-1 --approve", { cwd = dir }).status)
    fake.run_events(dir)
    fake.run_events(dir)
    assert.equal(1, requests())
  end)

  it("counts no turn the budget stopped before its first call against turns_per_card", function()
    -- (one run, resumed after each approval: turns_per_card counts a run's turns.) Turn 1
    -- waits at once, with no call; turn 2 makes the approved call and ends (the model
    -- answers in prose); turn 3 waits at once again. Only turn 2 is counted, so the next
    -- approval gives turn 4 its call. Before, turns 1 and 2 were two, and the card was
    -- blocked at turn 3 with one call made.
    local dir = project("0.01 USD", 2)
    fake.run_events(dir)
    assert.equal(0, requests())
    local function resumed()
      assert.equal(0, H.orket("answer M-1 --approve", { cwd = dir }).status)
      H.orket("resume", { cwd = dir })
    end
    resumed()
    assert.equal(1, requests())
    assert.equal("budget", card(dir, "M-1").wait_reason)
    resumed()
    assert.equal(2, requests())
    assert.equal("blocked", card(dir, "M-1").status)
    assert.matches("Stopped after 2 work turns", H.orket("card M-1", { cwd = dir }).stdout, 1, true)
  end)

  it("goes on when the budget is raised or removed in orket.lua, the card's history saying which", function()
    local dir = project("0.01 USD")
    fake.run_events(dir)
    assert.equal(0, requests())
    local text = H.read(dir .. "/orket.lua")
    -- raised, still below the estimate: the card moves to ready, then waits again
    H.write(dir .. "/orket.lua", (text:gsub('cost_per_card = "0.01 USD"', 'cost_per_card = "0.02 USD"')))
    fake.run_events(dir)
    assert.equal(0, requests())
    local out = H.orket("card M-1", { cwd = dir }).stdout
    assert.matches("waiting_for_developer %-> ready: budgets.cost_per_card was raised from 0.01 USD to 0.02 USD: going on",
      out)
    -- removed: it goes on, and its calls are sent
    H.write(dir .. "/orket.lua", (text:gsub(', cost_per_card = "0.01 USD"', "")))
    fake.run_events(dir)
    assert.is_true(requests() > 0)
    out = H.orket("card M-1", { cwd = dir }).stdout
    assert.matches("waiting_for_developer %-> ready: budgets.cost_per_card %(0.02 USD%) was removed: going on", out)
    assert.is_nil(out:find("was raised from 0.02 USD", 1, true))
  end)
end)
