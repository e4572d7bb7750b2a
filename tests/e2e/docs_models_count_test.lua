-- docswalk finding 5: `orket models` said "1 models: fake-model" where a run's refusal says
-- "among its 1 model (fake-model)": one model is said in the singular.
local H = require "tests.helpers"
local F = require "tests.fixtures"

local fake = F.model_server(teardown)

describe("orket models", function()
  it("says one model in the singular", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", string.format([[
models = { default = "fake:fake-model", providers = { fake = { kind = "openai", base_url = %q } } }
]], fake.url .. "/v1"))
    local r = H.orket("models", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("ok %(%d+ ms, 1 model: fake%-model%)", r.stdout)
  end)
end)
