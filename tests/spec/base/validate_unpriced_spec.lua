-- orket validate with a money budget set: a model the project calls that has no price, or
-- a price in a currency no budget is in, counts against no money budget; said before a run
-- as a warning naming the budget's line (a run says it at the model's first call).
local H = require "tests.helpers"

local PRICE = '{ input = 1, cached_input = 1, output = 2, currency = "%s" }'

local function project(budgets)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/orket.lua", string.format([[
models = {
  default = "fake:a",
  providers = { fake = { kind = "openai", base_url = "http://127.0.0.1:9/v1" },
    offline = { kind = "scripted", rules = { { reply = { content = "hi" } } } } },
  prices = { ["fake:a"] = %s, ["fake:c"] = %s },
}
team = { senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" }, model = "fake:b" },
  lead_architect = { roles = { "architect" }, model = "fake:c" },
  tester = { roles = { "coder" }, model = "offline:x" } }
%s
]], PRICE:format("USD"), PRICE:format("EUR"), budgets))
  return dir
end

local function unpriced(dir)
  local _, _, warnings = require("orket.validate").check(dir)
  local out = {}
  for _, w in ipairs(warnings) do
    if (w.message or ""):find("count against no money budget", 1, true) then out[#out + 1] = w end
  end
  return out
end

describe("orket validate with a money budget", function()
  after_each(H.cleanup)

  it("warns of each model it calls that no money budget counts, naming the budget's line", function()
    local got = unpriced(project('budgets = { cost_per_run = "2 USD" }'))
    assert.equal(2, #got)
    assert.same({ "orket.lua", 11 }, { got[1].file, got[1].line })
    assert.equal("budgets.cost_per_run: fake:b has no price in models.prices, so its calls count against no money "
      .. "budget (a run says so at its first call: budget_unpriced)", got[1].message)
    assert.matches("^budgets%.cost_per_run: fake:c is priced in EUR, the currency of no money budget, ",
      got[2].message)
  end)

  it("warns of an experiment's variant model that no money budget counts, as of a seat's", function()
    -- before, only the default, the seats' and the roles' models were checked: a variant on
    -- a local model validated silently, and the run said budget_unpriced at its first call
    local got = unpriced(project('budgets = { cost_per_run = "2 USD", cost_per_card = "1 EUR" }\n'
      .. 'experiments = { local_model = { share = 0.5, model = "fake:local" } }'))
    assert.equal(2, #got)
    assert.matches("fake:b has no price", got[1].message, 1, true)
    assert.equal("budgets.cost_per_card: fake:local has no price in models.prices, so its calls count against no "
      .. "money budget (a run says so at its first call: budget_unpriced)", got[2].message)
  end)

  it("says nothing without a money budget, nor of a model whose currency one budget is in", function()
    assert.same({}, unpriced(project("budgets = { turns_per_card = 3 }")))
    local got = unpriced(project('budgets = { cost_per_run = "2 USD", cost_per_card = "1 EUR" }'))
    assert.equal(1, #got)
    assert.matches("fake:b has no price", got[1].message, 1, true)
  end)
end)
