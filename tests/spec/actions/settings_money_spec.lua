-- orket.lua's prices and money budgets as orket.settings checks them (docs/cost.md): each
-- mistake said once, by its field, with what to write instead.
local settings = require "orket.settings"
local H = require "tests.helpers"

after_each(H.cleanup)

local PRICE = { input = "2.50", cached_input = "1.25", output = "10", currency = "USD" }

local function data(prices, budgets)
  return { models = { default = "fake:m", providers = { fake = { kind = "openai", base_url = "http://127.0.0.1:1/v1" } },
    prices = prices }, budgets = budgets }
end

describe("orket.lua's money settings", function()
  it("name the money budgets among the known ones when a budget's name is misspelt", function()
    local msgs = settings.check(data({ ["fake:m"] = PRICE }, { cost_per_crad = "1 USD" }))
    assert.equal(1, #msgs)
    assert.equal("orket.lua: budgets.cost_per_crad: unknown setting (known: backoff_ms, cost_per_card, cost_per_day, "
      .. "cost_per_epic, cost_per_rock, cost_per_run, max_output_tokens, model_retries, steps_per_turn, tokens_per_card, "
      .. "tokens_per_run, tool_calls_per_turn, turns_per_card, wall_ms_per_card, wall_ms_per_run)", msgs[1])
    -- the same list when only token budgets are set
    local plain = settings.check(data({ ["fake:m"] = PRICE }, { turns = 1 }))
    assert.matches("known: backoff_ms, cost_per_card, ", plain[1])
  end)

  it("say a price's bad currency once, not again as the budget's currency no price bills in", function()
    local bad = { input = "2.50", cached_input = "1.25", output = "10", currency = "usd" }
    assert.same({ "orket.lua: models.prices[\"fake:m\"].currency must be the ISO 4217 code of a currency in use, such as \"USD\" (got usd)" },
      settings.check(data({ ["fake:m"] = bad }, { cost_per_card = "1 USD" })))
    -- with every price good, a budget in another currency is still refused
    assert.same({ "orket.lua: budgets.cost_per_card: is in EUR, but models.prices bills only in USD, so no call would "
      .. "ever count against it" }, settings.check(data({ ["fake:m"] = PRICE }, { cost_per_card = "1 EUR" })))
    assert.same({ "orket.lua: budgets.cost_per_card: is in EUR, but no model has a price (models.prices), so no call "
      .. "would ever count against it" }, settings.check(data(nil, { cost_per_card = "1 EUR" })))
  end)

  it("say a budget's currency in small letters is to be written in capitals", function()
    assert.same({ "orket.lua: budgets.cost_per_run: names usd: write the currency as its ISO 4217 code, in capitals "
      .. "(\"0.50 USD\")" }, settings.check(data({ ["fake:m"] = PRICE }, { cost_per_run = "0.50 usd" })))
    -- no currency at all, or one that is none, as before
    assert.same({ "orket.lua: budgets.cost_per_run: must be an amount and a currency, e.g. \"5.00 USD\" (got \"5 xyz\")" },
      settings.check(data({ ["fake:m"] = PRICE }, { cost_per_run = "5 xyz" })))
  end)

  it("say a budget's range from above 0, where a price's starts at 0", function()
    -- the message was a price's ("from 0 to 999999999"), yet a budget of 0 is refused too
    assert.same({ "orket.lua: budgets.cost_per_run: must be more than 0 and at most 999999999" },
      settings.check(data({ ["fake:m"] = PRICE }, { cost_per_run = "1000000000 USD" })))
  end)

  it("refuse a price under a provider that is not configured, naming the providers", function()
    local msgs = settings.check(data({ ["fkae:m"] = PRICE, ["fake:m"] = PRICE }))
    assert.same({ "orket.lua: models.prices[\"fkae:m\"] names provider 'fkae', which is not configured (providers: "
      .. "fake, ollama, openai): no call is priced by it; write the key as \"provider:model\" with a provider of "
      .. "models.providers" }, msgs)
    -- the built-in providers need no entry of their own
    assert.same({}, settings.check(data({ ["openai:gpt-4o"] = PRICE, ["ollama:qwen2.5-coder:7b"] = PRICE })))
  end)

  it("give the line of the price under a provider that is not configured", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", [[
models = {
  default = "openai:gpt-4o",
  prices = {
    ["openai:gpt-4o"] = { input = "2.50", cached_input = "1.25", output = "10", currency = "USD" },
    ["opneai:gpt-4o-mini"] = { input = "0.15", cached_input = "0.075", output = "0.60", currency = "USD" },
  },
}
]])
    local cfg, err = require("orket.config").load(dir)
    assert.is_nil(cfg)
    assert.matches("^orket.lua:5: models.prices%[\"opneai:gpt%-4o%-mini\"%] names provider 'opneai'", err)
  end)
end)
