-- A provider's key variable (OPENAI_API_KEY, any api_key_env) and ORKET_SECRET_NAME set to
-- an empty string or only spaces are unset, as OPENAI_BASE_URL, OLLAMA_HOST and the OTEL_*
-- variables are (tests/spec/actions/blank_env_spec.lua; docs/llm.md, docs/secrets.md): no
-- blank key is sent as "Authorization: Bearer ", and the next source of the key is used.
local llm = require "orket.llm"
local secret = require "orket.settings.secret"
local task = require "orket.task"
local H = require "tests.helpers"

local BLANKS = { "", " ", "   ", "\t", " \n ", "\r\n" }

local function env_of(t) return function(k) return t[k] end end

describe("a provider's key variable set blank", function()
  after_each(H.cleanup)

  local function client(env, api_key)
    return assert(llm.open({ providers = { openai = { kind = "openai", base_url = "https://api.openai.com/v1",
      api_key_env = "OPENAI_API_KEY", api_key = api_key } } }, { getenv = env_of(env) }))
  end

  it("is unset: no key, and the provider says the variable is not set", function()
    for _, blank in ipairs(BLANKS) do
      local c = client { OPENAI_API_KEY = blank }
      assert.is_false(c:describe("openai").key_set, string.format("%q", blank))
      local ok, r, msg, class = task.spawn(function() return c:health("openai") end):join()
      assert.is_true(ok, r)
      assert.is_nil(r)
      assert.equal("OPENAI_API_KEY is not set", msg)
      assert.equal("auth", class)
    end
    -- a key given is still the key
    assert.is_true(client({ OPENAI_API_KEY = "sk-x" }):describe("openai").key_set)
  end)

  it("gives way to the secret the setting names (ORKET_SECRET_NAME), itself unset when blank", function()
    local ref = setmetatable({ secret = "OPENAI", dir = H.tmpdir() }, { __tostring = function() return "secret:OPENAI" end })
    for _, blank in ipairs(BLANKS) do
      assert.equal("sk-from-secret", secret.value(ref, "OPENAI_API_KEY",
        env_of { OPENAI_API_KEY = blank, ORKET_SECRET_OPENAI = "sk-from-secret" }))
      -- both blank: the store is asked (it has no such secret here), not a blank returned
      local v, err = secret.value(ref, "OPENAI_API_KEY", env_of { OPENAI_API_KEY = blank, ORKET_SECRET_OPENAI = blank })
      assert.is_nil(v)
      assert.matches("OPENAI", tostring(err))
      -- and orket.lua's secret "OPENAI" is said missing, as when the variable is not set
      local problems = secret.problems({ { path = "models.providers.openai.api_key", name = "OPENAI" } }, ref.dir,
        env_of { ORKET_SECRET_OPENAI = blank })
      assert.equal(1, #problems)
      assert.matches('secret "OPENAI" is not in the project\'s secret store', problems[1], 1, true)
    end
  end)

  it("sends no Authorization header", function()
    local ok, auth, n = task.spawn(function()
      local fake = require("tests.fake_server").start()
      local c = assert(llm.open({ providers = { oa = { kind = "openai", base_url = fake.url .. "/v1",
        api_key_env = "FAKE_KEY", retry = { max_attempts = 1 } } } }, { getenv = env_of { FAKE_KEY = "  " } }))
      local r, msg = c:chat { model = "oa:ok", messages = { { role = "user", content = "hi" } } }
      local log = fake.log()
      fake.stop()
      assert(r, msg)
      return log[1] and log[1].authorization, #log
    end):join()
    assert(ok, auth)
    assert.equal(1, n)
    assert.is_nil(auth)
  end)

  it("is shown as not set by orket models", function()
    local r = H.orket("models --no-check", { cwd = H.tmpdir(), env = { OPENAI_API_KEY = "   " } })
    assert.equal(0, r.status, r.stderr)
    assert.matches("key: OPENAI_API_KEY (not set)", r.stdout, 1, true)
  end)
end)
