-- ORKET_MODEL set to an empty string or only spaces is unset, as OPENAI_BASE_URL and the
-- OTEL_* variables are (docs/llm.md): orket.lua's default model is used, by models.default
-- (orket.config.apply_env) and by every turn (orket.engine.routing.override_model) alike.
local config = require "orket.config"
local H = require "tests.helpers"

local BLANKS = { "", " ", "   ", "\t", " \n ", "\r\n" }

describe("ORKET_MODEL set blank", function()
  after_each(H.cleanup)
  local function finish(env) return config.finish({}, "/x", function(k) return env[k] end) end

  it("is unset: models.default stays orket.lua's", function()
    for _, blank in ipairs(BLANKS) do
      local cfg, err = finish { ORKET_MODEL = blank }
      assert(cfg, string.format("%q: %s", blank, err))
      assert.equal("ollama:qwen2.5-coder:7b", cfg.models.default)
    end
  end)

  it("is still the model when given, spaces around it left out", function()
    assert.equal("openai:gpt-4o-mini", assert(finish { ORKET_MODEL = " openai:gpt-4o-mini\t" }).models.default)
    local _, err = finish { ORKET_MODEL = " gpt-4o " }
    assert.matches('^ORKET_MODEL: a model is named "provider:model".*%(got "gpt%-4o"%)$', err)
  end)

  it("gives no turn a model of its own (the run's default is used)", function()
    local dir = H.tmpdir()
    H.write(dir .. "/t.lua", [[
local routing = require "orket.engine.routing"
io.write(tostring(routing.override_model(nil)), "|", tostring(routing.override_model("x:y")))
]])
    for _, case in ipairs { { "   ", "nil|x:y" }, { "\t", "nil|x:y" }, { " a:b ", "a:b|x:y" } } do
      local r = H.orket("lua " .. H.quote(dir .. "/t.lua"), { env = { ORKET_MODEL = case[1] } })
      assert.equal(0, r.status, r.stderr)
      assert.equal(case[2], r.stdout, string.format("%q", case[1]))
    end
  end)
end)
