-- Environment variables set but empty or only spaces are unset (the OpenTelemetry
-- specification's rule, which Orket keeps for every variable it reads: docs/llm.md,
-- docs/observability.md): the providers' URL variables and OTEL_SERVICE_NAME alike.
local config = require "orket.config"
local otel = require "orket.otel"
local H = require "tests.helpers"

local BLANKS = { "", " ", "   ", "\t", " \n ", "\r\n" }

describe("a provider's URL variable set blank", function()
  after_each(H.cleanup)
  local function finish(data, env) return config.finish(data, "/x", function(k) return env[k] end) end

  it("is unset: the built-in base_url, or orket.lua's, is used", function()
    for _, blank in ipairs(BLANKS) do
      local cfg, err = finish({}, { OPENAI_BASE_URL = blank, OLLAMA_HOST = blank })
      assert(cfg, string.format("%q: %s", blank, err))
      assert.equal("https://api.openai.com/v1", cfg.models.providers.openai.base_url)
      assert.equal("http://127.0.0.1:11434", cfg.models.providers.ollama.base_url)
      cfg, err = finish({ models = { providers = { openai = { base_url = "http://relay:8080/v1" },
        ollama = { base_url = "http://gpu:11434" } } } }, { OPENAI_BASE_URL = blank, OLLAMA_HOST = blank })
      assert(cfg, string.format("%q: %s", blank, err))
      assert.equal("http://relay:8080/v1", cfg.models.providers.openai.base_url)
      assert.equal("http://gpu:11434", cfg.models.providers.ollama.base_url)
    end
  end)

  it("is unset for a provider's own base_url_env too", function()
    local data = { models = { providers = { mine = { kind = "openai", base_url = "http://10.0.0.2/v1",
      base_url_env = "MINE_URL" } } } }
    local cfg, err = finish(data, { MINE_URL = "  " })
    assert(cfg, err)
    assert.equal("http://10.0.0.2/v1", cfg.models.providers.mine.base_url)
  end)

  it("still refuses a value that is there but no URL", function()
    local _, err = finish({}, { OPENAI_BASE_URL = " localhost:8080 " })
    assert.equal("OPENAI_BASE_URL: must be an http:// or https:// URL (got localhost:8080)", err)
  end)

  -- the refused connection's advice: a blank variable points nowhere, so it is not "check it"
  it("is not said to point at a server nothing listens at", function()
    local dir = H.tmpdir()
    H.write(dir .. "/t.lua", [[
local task = require "orket.task"
local llm = require "orket.llm"
local ok, msg = task.spawn(function()
  local c = llm.new { providers = { ollama = { kind = "ollama", base_url = "http://127.0.0.1:1",
    base_url_env = "OLLAMA_HOST", retry = { max_attempts = 1 } } } }
  local _, m = c:chat { model = "ollama:m", messages = { { role = "user", content = "x" } } }
  return m
end):join()
io.write(tostring(ok), " ", tostring(msg))
]])
    for _, case in ipairs { { "   ", "or set OLLAMA_HOST to where it listens%." },
      { "127.0.0.1:1", "or check OLLAMA_HOST, which points here%." } } do
      local r = H.orket("lua " .. H.quote(dir .. "/t.lua"), { env = { OLLAMA_HOST = case[1] } })
      assert.equal(0, r.status, r.stderr)
      assert.matches("^true provider ollama: nothing is listening at http://127%.0%.0%.1:1 %(connection refused%)%. "
        .. "Is Ollama running%? Start it with 'ollama serve', " .. case[2] .. "$", r.stdout)
    end
  end)
end)

describe("OTEL_SERVICE_NAME set blank", function()
  local function service(env, telemetry)
    env.OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9"
    return assert(otel.config(function(k) return env[k] end, telemetry)).resource["service.name"]
  end

  it("is unset: OTEL_RESOURCE_ATTRIBUTES' service.name, orket.lua's, else orket", function()
    for _, blank in ipairs(BLANKS) do
      assert.equal("orket", service { OTEL_SERVICE_NAME = blank }, string.format("%q", blank))
      assert.equal("svc-a", service({ OTEL_SERVICE_NAME = blank }, { service_name = "svc-a" }))
      assert.equal("svc-r", service({ OTEL_SERVICE_NAME = blank, OTEL_RESOURCE_ATTRIBUTES = "service.name=svc-r" },
        { service_name = "svc-a" }))
    end
    -- a blank service.name in the resource attributes is unset too (percent-decoded spaces)
    assert.equal("svc-a", service({ OTEL_RESOURCE_ATTRIBUTES = "service.name=%20%20" }, { service_name = "svc-a" }))
    assert.equal("orket", service { OTEL_SERVICE_NAME = " ", OTEL_RESOURCE_ATTRIBUTES = "service.name=" })
  end)

  it("is still the name when given, spaces around it left out, and wins over the others", function()
    assert.equal("svc-e", service({ OTEL_SERVICE_NAME = " svc-e\t", OTEL_RESOURCE_ATTRIBUTES = "service.name=svc-r" },
      { service_name = "svc-a" }))
  end)
end)
