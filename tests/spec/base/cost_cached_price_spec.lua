-- A cached_input price above its input (orket.cost.price_warnings, docs/cost.md): every
-- provider bills a cached prompt token below an uncached one, so more is a mistake (the
-- two swapped), said as a warning naming the field, as a price per 1,000 tokens is.
local cost = require "orket.cost"
local H = require "tests.helpers"

after_each(H.cleanup)

local function said(spec, cached, input)
  return string.format("orket.lua: models.prices[%q].cached_input is %s per million tokens, more than its input "
    .. "(%s): providers bill cached prompt tokens below uncached ones (the same when they give no discount); "
    .. "check the two", spec, cached, input)
end

describe("a cached_input price", function()
  it("above its input is warned of; equal, below, or beside an input said per 1,000 tokens is not", function()
    assert.same({ said("openai:gpt-4o", "2.50 USD", "1.25 USD"), said("p:local", "0.10 EUR", "0.00 EUR") },
      cost.price_warnings {
        -- swapped
        ["openai:gpt-4o"] = { input = "1.25", cached_input = "2.50", output = "10", currency = "USD" },
        -- no discount, a discount
        ["p:flat"] = { input = "0.50", cached_input = "0.50", output = "1", currency = "USD" },
        ["openai:gpt-4o-mini"] = { input = "0.15", cached_input = "0.075", output = "0.60", currency = "USD" },
        -- a local model's input priced at 0 and its cached tokens not
        ["p:local"] = { input = 0, cached_input = "0.10", output = 0, currency = "EUR" },
      })
    -- the input said per 1,000 tokens, not again as below its cached price
    local k = cost.price_warnings { ["p:k"] = { input = "0.0025", cached_input = "1.25", output = "10", currency = "USD" } }
    assert.equal(1, #k)
    assert.matches("%.input is 0%.0025 USD per million tokens: it looks like a price per 1,000 tokens", k[1])
  end)

  it("is in orket validate's warnings, with its line", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", [[
models = {
  prices = {
    ["openai:gpt-4o"] = { input = "1.25", cached_input = "2.50", output = "10", currency = "USD" },
  },
}
]])
    local r = H.orket("validate", { cwd = dir })
    assert.matches("orket.lua:3: models.prices%[\"openai:gpt%-4o\"%]%.cached_input is 2%.50 USD per million tokens, "
      .. "more than its input %(1%.25 USD%)", r.stdout .. r.stderr)
  end)
end)
