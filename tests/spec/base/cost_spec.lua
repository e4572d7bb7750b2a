-- Prices and the cost of model calls (orket.cost, docs/cost.md): exact amounts in
-- micro-units, prices checked field by field, no cost without a reported usage.
local cost = require "orket.cost"
local settings = require "orket.settings"

local USD = { input = "2.50", cached_input = 1.25, output = 10, currency = "USD" }

describe("a price", function()
  it("that looks written per 1,000 tokens is said when orket.lua is loaded, naming the field; 0 is not", function()
    local prices = {
      ["openai:gpt-4o"] = { input = 0.0025, cached_input = "0.00125", output = "0.01", currency = "USD" },
      ["ollama:qwen"] = { input = 0, cached_input = 0, output = 0, currency = "USD" },
      -- real prices among the cheapest: a cached input this low is no mistake, nor an
      -- input and output of 0.01 USD a million (a 1B model's), nor that in EUR
      ["openai:gpt-5-nano"] = { input = "0.025", cached_input = "0.0025", output = "0.20", currency = "USD" },
      ["p:llama-3.2-1b"] = { input = "0.01", cached_input = "0.01", output = "0.01", currency = "USD" },
      ["p:llama-eur"] = { input = "0.0086", cached_input = "0.0086", output = "0.0086", currency = "EUR" },
      ["openai:gpt-4o-mini"] = { input = "0.00015", cached_input = "0.000075", output = "0.0006", currency = "USD" },
      ["p:below"] = { input = "0.004999", cached_input = "1", output = "0.005", currency = "USD" },
      ["p:yen"] = { input = "0.0004", cached_input = "1", output = "1", currency = "JPY" },
    }
    local function said(spec, field, amount, per_million)
      return string.format("orket.lua: models.prices[%q].%s is %s per million tokens: it looks like a price per "
        .. "1,000 tokens; prices are per million (per million it would be %s)", spec, field, amount, per_million)
    end
    assert.same({
      said("openai:gpt-4o", "input", "0.0025 USD", "2.50 USD"),
      said("openai:gpt-4o-mini", "input", "0.00015 USD", "0.15 USD"),
      said("openai:gpt-4o-mini", "output", "0.0006 USD", "0.60 USD"),
      said("p:below", "input", "0.004999 USD", "4.999 USD"),
      said("p:yen", "input", "0.0004 JPY", "0.4 JPY"),
    }, cost.price_warnings(prices))
    assert.same({}, cost.price_warnings(nil))
    assert.same({}, cost.price_warnings { ["p:m"] = { input = "-1" } }) -- refused, not warned of
    -- config.load says it (stderr; orket serve's log), once a process however often the
    -- project is loaded (a hot reload loads it again); orket validate lists it
    local H = require "tests.helpers"
    local function project(line)
      local dir = H.tmpdir()
      local f = assert(io.open(dir .. "/orket.lua", "w"))
      f:write(line)
      f:close()
      return dir
    end
    local PER_1K = [[models = { prices = { ["openai:gpt-4o"] = { input = "0.0025", cached_input = "1.25", output = "10", currency = "USD" } } }
]]
    local dir, other = project(PER_1K), project(PER_1K)
    local otel = require "orket.otel"
    local warn, warned, told = otel.warn, otel.warned, {}
    finally(function() otel.warn, otel.warned = warn, warned; H.cleanup() end)
    otel.warn = function(t) told[#told + 1] = t end
    otel.warned = {}
    local config = require "orket.config"
    assert(config.load(dir, function() end))
    assert(config.load(dir, function() end))
    assert.equal(1, #told)
    -- the project's directory named: orket serve loads several projects, and each one's
    -- mistake is said
    assert.equal(dir .. "/" .. said("openai:gpt-4o", "input", "0.0025 USD", "2.50 USD"), told[1])
    assert(config.load(other, function() end))
    assert.equal(2, #told)
    assert.equal(other .. "/" .. said("openai:gpt-4o", "input", "0.0025 USD", "2.50 USD"), told[2])
    local _, _, warnings = require("orket.validate").check(dir)
    local found = false
    for _, w in ipairs(warnings) do found = found or (w.message or ""):find("like a price per 1,000 tokens", 1, true) ~= nil end
    assert.is_true(found)
  end)

  it("is read exactly, in micro-units per million tokens", function()
    assert.same({ input = 2500000, cached_input = 1250000, output = 10000000, currency = "USD" }, cost.price(USD, "p"))
    assert.equal(150000, cost.micros(0.15))
    assert.equal(150000, cost.micros("0.150000"))
    assert.equal(1, cost.micros("0.000001"))
    assert.equal(0, cost.micros(0))
  end)

  it("refuses what is negative, vague, of an unknown currency or missing a field", function()
    local function err(v) return select(2, cost.price(v, "models.prices[\"openai:m\"]")) end
    assert.equal("models.prices[\"openai:m\"].input must not be negative (got -1)",
      err { input = "-1", cached_input = 0, output = 1, currency = "USD" })
    assert.equal("models.prices[\"openai:m\"].input must be from 0 to 999999999",
      err { input = -0.5, cached_input = 0, output = 1, currency = "USD" })
    assert.equal("models.prices[\"openai:m\"].output has more than 6 decimals (got 0.0000001)",
      err { input = 1, cached_input = 0, output = "0.0000001", currency = "USD" })
    assert.equal("models.prices[\"openai:m\"].output has more than 6 decimals",
      err { input = 1, cached_input = 0, output = 1e-7, currency = "USD" })
    assert.equal("models.prices[\"openai:m\"].cached_input is missing (a price per million tokens)",
      err { input = 1, output = 1, currency = "USD" })
    assert.equal("models.prices[\"openai:m\"].currency must be the ISO 4217 code of a currency in use, such as \"USD\" (got usd)",
      err { input = 1, cached_input = 0, output = 1, currency = "usd" })
    assert.equal("models.prices[\"openai:m\"].currency must be the ISO 4217 code of a currency in use, such as \"USD\" (got XYZ)",
      err { input = 1, cached_input = 0, output = 1, currency = "XYZ" })
    -- every currency in use, a fund, metal or test code not
    assert.is_table((cost.price({ input = 1, cached_input = 0, output = 1, currency = "BHD" }, "p")))
    assert.is_table((cost.price({ input = 1, cached_input = 0, output = 1, currency = "ISK" }, "p")))
    assert.equal("models.prices[\"openai:m\"].currency must be the ISO 4217 code of a currency in use, such as \"USD\" (got XAU)",
      err { input = 1, cached_input = 0, output = 1, currency = "XAU" })
    -- minus zero is zero
    assert.same({ 0, 0, 0 }, { cost.micros("-0"), cost.micros("-0.00"), cost.micros(-0.0) })
    assert.equal("models.prices[\"openai:m\"].currency is missing (an ISO 4217 code such as \"USD\")",
      err { input = 1, cached_input = 0, output = 1 })
    assert.equal("models.prices[\"openai:m\"].per is not a price field (input, cached_input, output, currency)",
      err { input = 1, cached_input = 0, output = 1, currency = "USD", per = 1 })
    assert.equal("models.prices[\"openai:m\"].input must be a decimal number (got \"1e3\")",
      err { input = "1e3", cached_input = 0, output = 1, currency = "USD" })
  end)

  it("is checked with orket.lua's other settings, naming the field", function()
    local problems = settings.check { models = { prices = { ["openai:gpt-4o"] = { input = 1, output = 1, currency = "USD" } } } }
    assert.same({ "orket.lua: models.prices[\"openai:gpt-4o\"].cached_input is missing (a price per million tokens)" }, problems)
    problems = settings.check { models = { prices = { gpt4 = USD } } }
    assert.same({ "orket.lua: models.prices[\"gpt4\"] must name a model as \"provider:model\"" }, problems)
    assert.same({}, settings.check { models = { prices = { ["openai:gpt-4o"] = USD } } })
  end)
end)

describe("a call's cost", function()
  local p = cost.price(USD, "p")

  it("bills cached prompt tokens at their own price, rounded once to a micro-unit", function()
    -- 1000 uncached * 2.5 + 3000 cached * 1.25 + 200 out * 10 = 2500 + 3750 + 2000 micro-units
    assert.equal(8250, cost.of(p, { prompt_tokens = 4000, cached_tokens = 3000, completion_tokens = 200 }))
    -- 1 token at 2.5 per million is 2.5 micro-units: rounded half up
    assert.equal(3, cost.of(p, { prompt_tokens = 1, completion_tokens = 0 }))
    -- more cached than the prompt is a provider's slip: no more than the prompt is cached
    assert.equal(1250, cost.of(p, { prompt_tokens = 1000, cached_tokens = 5000, completion_tokens = 0 }))
  end)

  it("is unknown, never 0, when the provider reported no usage or there is no price", function()
    assert.is_nil(cost.of(p, { prompt_tokens = 10, completion_tokens = 5, estimated = true }))
    assert.is_nil(cost.of(nil, { prompt_tokens = 10, completion_tokens = 5 }))
    assert.equal("unknown", cost.format(nil))
  end)

  it("sums exactly where floats drift", function()
    local sums = {}
    local f = 0.0
    for _ = 1, 100000 do
      cost.add(sums, "USD", cost.of(cost.price({ input = 0.1, cached_input = 0, output = 0, currency = "USD" }, "p"),
        { prompt_tokens = 1000000, completion_tokens = 0 }))
      f = f + 0.1
    end
    assert.equal(10000 * cost.UNIT, sums.USD)
    assert.are_not.equal(10000, f) -- the float sum is off
    assert.equal("10000.00 USD", cost.text(sums))
  end)

  it("is estimated before a call as the most it may cost", function()
    assert.equal(2500 + 10000, cost.estimate(p, 1000, 1000))
    assert.equal(1, cost.estimate(p, 0, 0) + 1)
    assert.is_nil(cost.estimate(nil, 10, 10))
  end)

  it("is written with two to six decimals, currencies apart", function()
    assert.equal("0.00825 USD", cost.format(8250, "USD"))
    assert.equal("1.50 EUR", cost.format(1500000, "EUR"))
    assert.equal("0.01 EUR + 0.000003 USD", cost.text { USD = 3, EUR = 10000 })
    assert.is_nil(cost.text {})
  end)

  it("is written with no decimals in a currency with no minor unit, when whole", function()
    for c in pairs(cost.NO_MINOR) do assert.is_true(cost.CURRENCIES[c], c) end -- one of the list
    for c in pairs(cost.THOUSANDTHS) do assert.is_true(cost.CURRENCIES[c], c) end
    assert.equal("1.500 BHD", cost.format(1500000, "BHD"))
    assert.equal("0.0042 KWD", cost.format(4200, "KWD"))
    assert.equal("3 ISK", cost.format(3000000, "ISK"))
    assert.equal("12 JPY", cost.format(12000000, "JPY"))
    assert.equal("0 KRW", cost.format(0, "KRW"))
    assert.equal("12.5 JPY", cost.format(12500000, "JPY"))
    assert.equal("0.0042 JPY", cost.format(4200, "JPY"))
    assert.equal("3 JPY + 0.50 USD", cost.text { JPY = 3000000, USD = 500000 })
    assert.equal("3.00", cost.format(3000000)) -- no currency (a metric's value): as ever
  end)

  it("is written on the web board's card as in text (web/app.js money)", function()
    if not os.execute("command -v node >/dev/null 2>&1") then return pending("node is not installed") end
    local H = require "tests.helpers"
    finally(H.cleanup)
    local src = assert(H.read("web/app.js"))
    local fn = assert(src:match("\n  (function money%(micros, currency%) {.-\n  })\n"), "money() in web/app.js")
    local cases = {}
    for _, c in ipairs { "USD", "EUR", "JPY", "KRW", "VND", "ISK", "CLP", "BHD", "KWD" } do
      for _, m in ipairs { 0, 4200, 12000000, 12500000, 10000, 1234567891 } do cases[#cases + 1] = { m, c } end
    end
    local js = H.tmpdir() .. "/money.js"
    local lines = {}
    for i, c in ipairs(cases) do lines[i] = string.format("console.log(money(%d, %q));", c[1], c[2]) end
    H.write(js, fn .. "\n" .. table.concat(lines, "\n") .. "\n")
    local p = assert(io.popen("node " .. H.quote(js)))
    local i = 0
    for line in p:lines() do
      i = i + 1
      assert.equal(cost.format(cases[i][1], cases[i][2]), line)
    end
    assert.is_true(p:close())
    assert.equal(#cases, i)
  end)
end)

describe("a usage the provider left a count out of", function()
  local common = require "orket.llm.common"
  it("is estimated, never with more cached tokens than prompt tokens", function()
    local msgs = { { role = "user", content = ("word "):rep(100) } }
    local est = common.estimate_tokens(common.messages_chars(msgs))
    -- cached, the prompt not counted: the estimate is raised to the cached count
    local u = common.finish_usage({ completion_tokens = 5, cached_tokens = est + 300 }, { messages = msgs }, "ok", {})
    assert.same({ est + 300, est + 300, 5, true }, { u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.estimated })
    -- fewer cached than the estimate: the estimate stands
    u = common.finish_usage({ completion_tokens = 5, cached_tokens = 3 }, { messages = msgs }, "ok", {})
    assert.same({ est, 3 }, { u.prompt_tokens, u.cached_tokens })
    -- the provider's own counts are never changed
    u = common.finish_usage({ prompt_tokens = 10, completion_tokens = 5, cached_tokens = 400 }, { messages = msgs }, "ok", {})
    assert.same({ 10, 400, false }, { u.prompt_tokens, u.cached_tokens, u.estimated })
  end)
end)

describe("a call's cost from counts out of range", function()
  local MAX = { input = 999999999999999, cached_input = 999999999999999, output = 999999999999999, currency = "USD" }

  it("never goes below 0 nor wraps, and sums stop at the largest integer", function()
    local huge = { prompt_tokens = 10000000000000, completion_tokens = cost.MAX_TOKENS }
    -- counts past MAX_TOKENS are taken as MAX_TOKENS: 2147483647 * (2.50 + 10) micro-units, half up
    assert.equal(26843545588, cost.of(cost.price(USD, "p"), huge))
    assert.equal(cost.MAX_COST, cost.of(MAX, { prompt_tokens = cost.MAX_TOKENS, cached_tokens = 1, completion_tokens = cost.MAX_TOKENS }))
    assert.equal(0, cost.of(cost.price(USD, "p"), { prompt_tokens = -5000000000, completion_tokens = -1 }))
    assert.equal(cost.MAX_COST, cost.estimate(MAX, cost.MAX_TOKENS, cost.MAX_TOKENS))
    -- below the caps, the same amounts as before: rounded once
    assert.equal(8250, cost.of(cost.price(USD, "p"), { prompt_tokens = 4000, cached_tokens = 3000, completion_tokens = 200 }))
    assert.equal(1, cost.of({ input = 1, cached_input = 0, output = 0 }, { prompt_tokens = 500000 }))
    assert.equal(math.maxinteger, cost.plus(math.maxinteger - 1, cost.MAX_COST))
    assert.same({ USD = math.maxinteger }, cost.add({ USD = math.maxinteger }, "USD", 5))
  end)

  it("refuses a reported usage that is no count, naming it", function()
    local function why(u) return cost.usage_error(u) end
    assert.equal("prompt_tokens is -5, not a token count (a whole number from 0 to 2147483647)", why { prompt_tokens = -5 })
    assert.equal("completion_tokens is 1.5, not a token count (a whole number from 0 to 2147483647)", why { completion_tokens = 1.5 })
    assert.equal("cached_tokens is 2147483648, not a token count (a whole number from 0 to 2147483647)",
      why { cached_tokens = 2147483648 })
    assert.matches("prompt_tokens is inf", why { prompt_tokens = math.huge })
    assert.matches("prompt_tokens is %-?nan", why { prompt_tokens = 0 / 0 })
    assert.equal("prompt_tokens is 12, not a token count (a whole number from 0 to 2147483647)", why { prompt_tokens = "12" })
    assert.is_nil(why { prompt_tokens = 0, completion_tokens = cost.MAX_TOKENS, cached_tokens = 0 })
    assert.is_nil(why {})
    -- a whole float is a whole number
    assert.is_nil(why { prompt_tokens = 1e4, completion_tokens = 12.0, cached_tokens = 2 ^ 10 })
  end)

  it("keeps a refused usage's counts as JSON holds them, and takes the plausible part of each", function()
    local kept = cost.storable_usage { prompt_tokens = -5, completion_tokens = 1.5, cached_tokens = 0 / 0, other = 1 }
    assert.same({ -5, "1.5" }, { kept.prompt_tokens, kept.completion_tokens })
    assert.matches("^%-?nan$", kept.cached_tokens)
    assert.is_nil(kept.other)
    assert.same({ 0, 2, 0, 0, 7, 0, cost.MAX_TOKENS }, { cost.plausible(-5), cost.plausible("1.5"), cost.plausible("nan"),
      cost.plausible(math.huge), cost.plausible(7), cost.plausible(cost.MAX_TOKENS + 1), cost.plausible(cost.MAX_TOKENS) })
  end)

  it("counts an accepted usage as integers", function()
    local u, note = cost.counted { prompt_tokens = 1e4, completion_tokens = 12.0, cached_tokens = 2 ^ 10 }
    assert.same({ prompt_tokens = 10000, completion_tokens = 12, cached_tokens = 1024 }, u)
    assert.equal("integer", math.type(u.prompt_tokens))
    assert.is_nil(note)
  end)

  it("reads more cached than prompt tokens as Anthropic counts: priced as prompt + cached, never cheaper", function()
    local u, note = cost.counted { prompt_tokens = 4000, cached_tokens = 5000, completion_tokens = 200 }
    assert.same({ prompt_tokens = 9000, cached_tokens = 5000, completion_tokens = 200 }, u)
    assert.equal("cached_tokens (5000) is more than prompt_tokens (4000): read as prompt tokens that leave the cached "
      .. "ones out, priced as 9000 prompt tokens, 5000 of them cached", note)
    local p = assert(cost.price({ input = "2.50", cached_input = "1.25", output = 10, currency = "USD" }, "p"))
    -- 4000 * 2.50 + 5000 * 1.25 + 200 * 10: above the 4000 prompt tokens all cached (5000
    -- clamped) or all uncached
    assert.equal(18250, cost.of(p, u))
    assert.is_true(cost.of(p, u) >= cost.of(p, { prompt_tokens = 4000, cached_tokens = 4000, completion_tokens = 200 }))
    assert.is_true(cost.of(p, u) >= cost.of(p, { prompt_tokens = 4000, completion_tokens = 200 }))
    -- a sum past the most a count may be is refused, never cut: cut to 2^31 - 1, the
    -- Anthropic reading of 2e9 + 1 cached cost less than the 2e9 all cached
    assert.equal("prompt_tokens (2000000000) + cached_tokens (2000000001), read as Anthropic's counts (more cached "
      .. "than prompt tokens), is 4000000001, not a token count (a whole number from 0 to 2147483647)",
      cost.usage_error { prompt_tokens = 2e9, completion_tokens = 0, cached_tokens = 2000000001 })
    assert.matches("is 2147483654, not a token count",
      cost.usage_error { prompt_tokens = 7, cached_tokens = cost.MAX_TOKENS })
    -- at the most, it is a count
    assert.is_nil(cost.usage_error { prompt_tokens = 7, cached_tokens = cost.MAX_TOKENS - 7 })
    assert.equal(cost.MAX_TOKENS, cost.counted { prompt_tokens = 7, cached_tokens = cost.MAX_TOKENS - 7 }.prompt_tokens)
  end)
end)

describe("a money budget", function()
  it("is an amount and a currency, beside the token budgets", function()
    local s = assert(settings.resolve { budgets = { cost_per_card = "0.50 USD", tokens_per_card = 10 },
      models = { prices = { ["openai:m"] = USD } } })
    assert.same({ micros = 500000, currency = "USD", text = "0.50 USD" }, s.budgets.cost_per_card)
    assert.equal(10, s.budgets.tokens_per_card)
    assert.is_nil(s.budgets.cost_per_run)
  end)

  it("refuses 0, a bare number and an unknown currency, naming the field", function()
    assert.same({ "orket.lua: budgets.cost_per_card: must be more than 0 (leave it out for no budget)" },
      settings.check { budgets = { cost_per_card = "0 USD" } })
    assert.same({ "orket.lua: budgets.cost_per_day: must be an amount and a currency, e.g. \"5.00 USD\" (got number)" },
      settings.check { budgets = { cost_per_day = 5 } })
    assert.same({ "orket.lua: budgets.cost_per_run: names XYZ, not the ISO 4217 code of a currency in use, such as USD" },
      settings.check { budgets = { cost_per_run = "1 XYZ" } })
    assert.same({ "orket.lua: budgets.cost_per_epic: must not be negative (got -1)" },
      settings.check { budgets = { cost_per_epic = "-1 EUR" } })
  end)

  it("refuses a currency no price bills in: such a budget would never stop a call", function()
    local prices = { ["openai:m"] = USD, ["openai:n"] = { input = 1, cached_input = 1, output = 1, currency = "GBP" } }
    assert.same({ "orket.lua: budgets.cost_per_day: is in EUR, but models.prices bills only in GBP, USD, so no call "
      .. "would ever count against it" }, settings.check { budgets = { cost_per_day = "1 EUR" }, models = { prices = prices } })
    assert.same({ "orket.lua: budgets.cost_per_run: is in USD, but no model has a price (models.prices), so no call "
      .. "would ever count against it" }, settings.check { budgets = { cost_per_run = "1 USD" } })
    assert.same({}, settings.check { budgets = { cost_per_day = "1 GBP" }, models = { prices = prices } })
  end)
end)
