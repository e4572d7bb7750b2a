-- The web board's "Model use" line (web/app.js usageText) against orket card's (orket.cost
-- usage_text), run by node on the API's usage: the calls of unknown cost are said beside
-- the cost on both, on the total and on each seat's line alike.
local H = require "tests.helpers"
local cjson = require "cjson"
local cost = require "orket.cost"

describe("the web board's model use", function()
  it("says the calls of unknown cost beside the cost, as orket card does", function()
    if not os.execute("command -v node >/dev/null 2>&1") then return pending("node is not installed") end
    finally(H.cleanup)
    local src = assert(H.read("web/app.js"))
    local fns = {}
    for _, name in ipairs { "money", "usageText" } do
      fns[#fns + 1] = assert(src:match("\n  (function " .. name .. "%(.-\n  })\n"), name .. "() in web/app.js")
    end
    local usages = {
      { calls = 16, priced = 12, input = 176, cached = 0, output = 80, cost = { USD = 936 } },
      { calls = 2, priced = 1, input = 10, cached = 4, output = 5, cost = { USD = 1500000 } },
      { calls = 3, priced = 3, input = 10, cached = 0, output = 5, cost = { USD = 70 } },
      -- no cost known: none said, as orket card leaves it out
      { calls = 2, priced = 0, input = 10, cached = 0, output = 5, cost = {} },
      -- counts estimated from the text (the provider sent none): for some calls, for all
      { calls = 3, priced = 3, input = 10, cached = 0, output = 5, cost = { USD = 70 }, estimated = 1 },
      { calls = 2, priced = 2, input = 10, cached = 0, output = 5, cost = { USD = 70 }, estimated = 2 },
      { calls = 4, priced = 4, input = 10, cached = 0, output = 5, cost = { USD = 70 }, estimated = 3 },
    }
    local page = table.concat(fns, "\n") .. "\nconsole.log(JSON.stringify(" .. cjson.encode(usages)
      .. ".map(usageText)));\n"
    local path = H.tmpdir() .. "/usage.js"
    H.write(path, page)
    local p = assert(io.popen("node " .. H.quote(path)))
    local out = p:read("l")
    assert.is_true(p:close())
    local want = {}
    for i, u in ipairs(usages) do want[i] = (cost.usage_text(u):gsub("^usage: ", "")) end
    assert.equal("16 calls, 176 prompt tokens, 80 output tokens, cost 0.000936 USD (4 calls of unknown cost)", want[1])
    assert.equal("3 calls, 10 prompt tokens, 5 output tokens (1 call's estimated), cost 0.00007 USD", want[5])
    assert.equal("2 calls, 10 prompt tokens, 5 output tokens (estimated), cost 0.00007 USD", want[6])
    assert.equal("4 calls, 10 prompt tokens, 5 output tokens (3 calls' estimated), cost 0.00007 USD", want[7])
    assert.same(want, cjson.decode(out))
  end)
end)
