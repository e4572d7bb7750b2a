-- orket.config (models), orket.c.http's argument errors, and the offline providers
-- (scripted, replay), all without a model server.
local config = require "orket.config"
local llm = require "orket.llm"
local http = require "orket.c.http"
local H = require "tests.helpers"

local USER = { { role = "user", content = "please review" } }

describe("orket.llm.common.tool_call", function()
  it("keeps a JSON object and says why any other argument text is not one", function()
    local common = require "orket.llm.common"
    local function err(raw) return common.tool_call("c1", "t", raw).arguments_error end
    local c = common.tool_call("c1", "t", '{"path": "a"}')
    assert.same({ path = "a" }, c.arguments)
    assert.is_nil(c.arguments_error)
    assert.is_nil(err("{}"))
    assert.is_nil(err(""))
    assert.matches("^arguments are not valid JSON %(.*character 10%)$", err('{"body": '))
    assert.equal("arguments are a JSON string, not an object", err('"hi"'))
    assert.equal("arguments are a JSON array, not an object", err("[1, 2]"))
    assert.equal("arguments are a JSON null, not an object", err("null"))
    assert.equal("arguments are a JSON number, not an object", err("5"))
    assert.matches("nested", err(string.rep('{"a":', 5000) .. "1" .. string.rep("}", 5000)))
    c = common.tool_call("c1", "t", "[1]")
    assert.same({}, c.arguments)
    assert.equal("[1]", c.raw_arguments)
  end)
end)

describe("wire formats and malformed tool calls", function()
  local function emit() end
  it("refuse a call of the wrong type as a classified failure naming the field", function()
    local openai, ollama = require "orket.llm.openai", require "orket.llm.ollama"
    local cases = {
      { openai, '{"choices":[{"index":0,"message":{"tool_calls":[5]}}]}', "tool_calls%[1%] is a number" },
      { openai, '{"choices":[{"index":0,"message":{"tool_calls":[{"id":5,"function":{"name":"x"}}]}}]}', "tool_calls%[1%]%.id is a number" },
      { openai, '{"choices":[{"index":0,"message":{"tool_calls":[{"function":7}]}}]}', "tool_calls%[1%]%.function is a number" },
      { openai, '{"choices":[{"index":0,"message":{"tool_calls":[{"function":{"name":{"a":1}}}]}}]}', "function%.name is an object" },
      { openai, '{"choices":[{"index":0,"message":{"tool_calls":[{"function":{"name":"x","arguments":9}}]}}]}', "function%.arguments is a number" },
      { openai, '{"choices":[{"index":0,"message":{"tool_calls":"x"}}]}', "tool_calls is a string" },
      { openai, '{"choices":[{"index":0,"message":7}]}', "message is a number" },
      { openai, '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":"z","function":{"name":"x"}}]}}]}', "index is a string" },
      { ollama, '{"message":{"tool_calls":[5]},"done":true}', "tool_calls%[1%] is a number" },
      { ollama, '{"message":{"tool_calls":[{"function":5}]},"done":true}', "function is a number" },
      { ollama, '{"message":{"tool_calls":[{"function":{"name":5}}]},"done":true}', "function%.name is a number" },
      { ollama, '{"message":{"tool_calls":[{"id":[1],"function":{"name":"x"}}]},"done":true}', "id is a list" },
      { ollama, '{"message":{"tool_calls":[{"function":{"name":"x","arguments":true}}]},"done":true}', "arguments is a boolean" },
      { ollama, '{"message":{"tool_calls":7},"done":true}', "tool_calls is a number" },
    }
    for _, c in ipairs(cases) do
      local wire, body, want = c[1], c[2], c[3]
      local ok, f = pcall(wire.parse, wire.new_state(), body, emit)
      assert.is_true(ok, body .. ": " .. tostring(f))
      assert.is_table(f, body)
      assert.equal("transient", f.class)
      assert.is_true(f.malformed)
      assert.matches("malformed response: .*" .. want, f.message)
    end
    -- well-formed calls still pass, nulls counting as absent
    local st = openai.new_state()
    assert.is_nil(openai.parse(st, '{"choices":[{"index":0,"message":{"content":null,"tool_calls":[{"id":"c1","index":null,'
      .. '"function":{"name":"read_file","arguments":"{\\"path\\":\\"a\\"}"}}]}}]}', emit))
    local _, calls = openai.finish(st)
    assert.equal("read_file", calls[1].name)
    assert.same({ path = "a" }, calls[1].arguments)
  end)
end)


describe("openai request messages", function()
  it("send a tool result as role, content and tool_call_id only, a user's name kept", function()
    local openai = require "orket.llm.openai"
    local _, body = openai.build({ base_url = "http://127.0.0.1:1/v1" }, "m", { messages = {
      { role = "user", content = "hi", name = "alice" },
      { role = "assistant", tool_calls = { { id = "c1", name = "read_file", arguments = { path = "a" } } } },
      { role = "tool", content = "text", name = "read_file", tool_call_id = "c1" } } }, false)
    assert.same({ role = "tool", content = "text", tool_call_id = "c1" }, body.messages[3])
    assert.equal("alice", body.messages[1].name)
    assert.equal("read_file", body.messages[2].tool_calls[1]["function"].name)
  end)
end)

describe("openai cache marks", function()
  local openai = require "orket.llm.openai"
  local cjson = require "cjson"
  local msgs = {
    { role = "system", content = "team" },
    { role = "user", content = "Issue A-1: brief" },
    { role = "assistant", tool_calls = { { id = "c1", name = "read_file", arguments = { path = "a" } } } },
    { role = "tool", content = "text", tool_call_id = "c1" } }
  local function part(text) return { { type = "text", text = text, cache_control = { type = "ephemeral" } } } end

  it("are none by default", function()
    local _, body = openai.build({ base_url = "http://127.0.0.1:1/v1" }, "m", { messages = msgs }, false)
    assert.is_nil(body.cache_prompt)
    assert.equal("team", body.messages[1].content)
    assert.equal("text", body.messages[4].content)
  end)

  it("ask llama.cpp's server to keep its cache with cache_prompt", function()
    local _, body = openai.build({ base_url = "http://127.0.0.1:1/v1", cache_marks = "cache_prompt" }, "m",
      { messages = msgs }, false)
    assert.is_true(cjson.decode(cjson.encode(body)).cache_prompt)
    assert.equal("team", body.messages[1].content)
  end)

  it("mark the system message, the brief and the last message with cache_control", function()
    local _, body = openai.build({ base_url = "http://127.0.0.1:1/v1", cache_marks = "cache_control" }, "m",
      { messages = msgs }, false)
    local wire = cjson.decode(cjson.encode(body))
    assert.same(part("team"), wire.messages[1].content)
    assert.same(part("Issue A-1: brief"), wire.messages[2].content)
    assert.equal(cjson.null, wire.messages[3].content) -- a call without text carries no mark
    assert.same(part("text"), wire.messages[4].content)
    assert.equal("c1", wire.messages[4].tool_call_id)
    assert.equal("text", msgs[4].content) -- the caller's messages are left as they were
    assert.is_nil(wire.cache_prompt)
    -- one message both first and last is marked once
    local _, one = openai.build({ base_url = "http://127.0.0.1:1/v1", cache_marks = "cache_control" }, "m",
      { messages = { { role = "user", content = "hi" } } }, false)
    assert.same(part("hi"), cjson.decode(cjson.encode(one)).messages[1].content)
  end)

  it("are checked with the provider's settings", function()
    local config = require "orket.config"
    local ok, err = config.validate_models { providers = { x = { kind = "openai", base_url = "http://h", cache_marks = "yes" } } }
    assert.is_nil(ok)
    assert.equal('orket.lua: models.providers.x.cache_marks must be "cache_prompt" (llama.cpp\'s server) or '
      .. '"cache_control" (Anthropic\'s models behind an OpenAI-compatible relay) (got yes)', err)
    ok, err = config.validate_models { providers = { x = { kind = "ollama", base_url = "http://h", cache_marks = "cache_prompt" } } }
    assert.is_nil(ok)
    assert.matches("models.providers.x.cache_marks is for kind openai only", err)
    assert.is_true(config.validate_models { providers = { x = { kind = "openai", base_url = "http://h",
      cache_marks = "cache_control" } } })
  end)
end)

describe("wire formats and fixed tools", function()
  it("give the tools' text instead of body.tools, an option of the same name left out", function()
    local cjson = require "cjson"
    local conf = { base_url = "http://127.0.0.1:1/v1" }
    for _, name in ipairs { "openai", "ollama" } do
      local tools = { { name = "write_file", description = "write", parameters = { type = "object", properties = {},
        required = {} } } }
      local wire = require("orket.llm." .. name)
      local req = { messages = USER, tools = tools, options = { tools = "from options", temperature = 0 } }
      local _, plain, none = wire.build(conf, "m", req, true)
      assert.is_nil(none)
      req.fixed_tools = true
      local _, body, text = wire.build(conf, "m", req, true)
      assert.is_nil(body.tools, name)
      assert.same(cjson.decode(cjson.encode(plain.tools)), cjson.decode(text), name)
      -- an empty required list is left out: the encoder would write it as an object
      assert.is_nil(cjson.decode(text)[1]["function"].parameters.required, name)
      assert.is_nil(plain.tools[1]["function"].parameters.required, name)
      -- made once: a change to the entry after its first request is not encoded again
      tools[1].description = "changed"
      local _, _, again = wire.build(conf, "m", req, true)
      assert.equal(text, again)
    end
  end)

  it("leave out every empty required list, the caller's schema unchanged", function()
    local cjson = require "cjson"
    local conf = { base_url = "http://127.0.0.1:1/v1" }
    for _, name in ipairs { "openai", "ollama" } do
      local wire = require("orket.llm." .. name)
      local schema = { type = "object", required = {}, properties = {
        opts = { type = "object", properties = { deep = { type = "object", properties = {}, required = {} } },
          required = {} },
        list = { type = "array", items = { type = "object", properties = { x = { type = "string" } }, required = {} } },
        path = { type = "string" },
      } }
      for _, fixed in ipairs { false, true } do
        local _, body, text = wire.build(conf, "m", { messages = USER, fixed_tools = fixed,
          tools = { { name = "t" .. tostring(fixed), parameters = schema } } }, true)
        local sent = text and cjson.decode(text) or cjson.decode(cjson.encode(body.tools))
        local p = sent[1]["function"].parameters
        assert.is_nil(p.required, name)
        assert.is_nil(p.properties.opts.required, name)
        assert.is_nil(p.properties.opts.properties.deep.required, name)
        assert.is_nil(p.properties.list.items.required, name)
        assert.equal("string", p.properties.list.items.properties.x.type)
        assert.equal("string", p.properties.path.type)
      end
      assert.same({}, schema.required)
      assert.same({}, schema.properties.opts.properties.deep.required)
      assert.same({}, schema.properties.list.items.required)
    end
    -- a schema with none is sent as it is, the same table
    local common = require "orket.llm.common"
    local plain = { type = "object", properties = { a = { type = "string" } }, required = { "a" } }
    assert.equal(plain, common.tool_parameters(plain))
  end)
end)
describe("orket.llm.common retry wording", function()
  local common = require "orket.llm.common"

  it("knows which endpoints are this machine", function()
    for _, url in ipairs { "http://127.0.0.1:11434", "http://localhost:8080/v1", "HTTP://LOCALHOST", "http://[::1]:11434/",
      "http://127.1.2.3", "http://0.0.0.0:1", "http://api.localhost/v1", "http://user@127.0.0.1:1" } do
      assert.is_true(common.is_loopback(url), url)
    end
    for _, url in ipairs { "https://api.openai.com/v1", "http://10.0.0.5:11434", "http://127.0.0.1.example.com",
      "http://localhost.example.com", "http://[fe80::1]:1", "not a url", "http://evil.com/127.0.0.1" } do
      assert.is_false(common.is_loopback(url), url)
    end
  end)

  it("tells a refused connect from other transport failures", function()
    assert.is_true(common.refused("POST http://127.0.0.1:1: Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server"))
    assert.is_true(common.refused("POST http://127.0.0.1:1: Failed to connect to 127.0.0.1 port 1: Connection refused"))
    assert.is_true(common.refused("POST http://127.0.0.1:1: Could not connect to server"))
    assert.is_false(common.refused("POST http://127.0.0.1:1: Recv failure: Connection reset by peer"))
    assert.is_false(common.refused("POST http://127.0.0.1:1: transfer closed with outstanding read data remaining"))
  end)

  it("says how many attempts over how long", function()
    assert.equal("1 attempt in 5 ms", common.attempts_text(1, 4.6))
    assert.equal("4 attempts over 3.2 s", common.attempts_text(4, 3210))
    assert.equal("999 ms", common.duration(999.4))
  end)
end)

describe("orket.config", function()
  after_each(function() H.cleanup() end)

  it("loads globals from orket.lua, merges the built-in providers, resolves files", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", [[
models = {
  default = "s:any",
  providers = {
    s = { kind = "scripted", file = "script.lua" },
    ollama = { base_url = "http://10.0.0.5:11434", max_concurrency = 2 },
  },
}
team = { "lead" }
]])
    local cfg = assert(config.load(dir, function() return nil end))
    assert.equal("s:any", cfg.models.default)
    assert.equal(dir .. "/script.lua", cfg.models.providers.s.file)
    assert.equal("http://10.0.0.5:11434", cfg.models.providers.ollama.base_url)
    assert.equal(2, cfg.models.providers.ollama.max_concurrency)
    assert.equal("https://api.openai.com/v1", cfg.models.providers.openai.base_url)
    assert.same({ "lead" }, cfg.team) -- other sections pass through
  end)

  it("applies OLLAMA_HOST, OPENAI_BASE_URL and ORKET_MODEL", function()
    local env = { OLLAMA_HOST = "127.0.0.1:9999", OPENAI_BASE_URL = "http://127.0.0.1:8080/v1",
      ORKET_MODEL = "openai:gpt-4o-mini" }
    local cfg = assert(config.finish({}, "/x", function(k) return env[k] end))
    assert.equal("http://127.0.0.1:9999", cfg.models.providers.ollama.base_url)
    assert.equal("http://127.0.0.1:8080/v1", cfg.models.providers.openai.base_url)
    assert.equal("openai:gpt-4o-mini", cfg.models.default)
    env.OPENAI_BASE_URL = "  Https://relay:8080/v1\n"
    cfg = assert(config.finish({}, "/x", function(k) return env[k] end))
    assert.equal("https://relay:8080/v1", cfg.models.providers.openai.base_url)
    env.OLLAMA_HOST = "gpu-box"
    cfg = assert(config.finish({}, "/x", function(k) return env[k] end))
    assert.equal("http://gpu-box:11434", cfg.models.providers.ollama.base_url)
    env.OLLAMA_HOST = "HTTPS://gpu-box/"
    cfg = assert(config.finish({}, "/x", function(k) return env[k] end))
    assert.equal("https://gpu-box:11434/", cfg.models.providers.ollama.base_url)
    for v, want in pairs { ["[::1]"] = "http://[::1]:11434", ["::1"] = "http://[::1]:11434",
      ["[::1]:8080"] = "http://[::1]:8080", ["http://[fe80::2]/"] = "http://[fe80::2]:11434/",
      ["10.0.0.5:99"] = "http://10.0.0.5:99", [" HTTP://h:1/ "] = "http://h:1/", ["\th:2 "] = "http://h:2" } do
      env.OLLAMA_HOST = v
      cfg = assert(config.finish({}, "/x", function(k) return env[k] end))
      assert.equal(want, cfg.models.providers.ollama.base_url, v)
    end
  end)

  it("names the variable, not orket.lua, when an environment value is wrong", function()
    local function finish(env) return config.finish({}, "/x", function(k) return env[k] end) end
    local _, err = finish { OLLAMA_HOST = "ftp://127.0.0.1" }
    assert.equal("OLLAMA_HOST: must be host, host:port or an http:// or https:// URL (got ftp://127.0.0.1)", err)
    _, err = finish { OPENAI_BASE_URL = "localhost:8080" }
    assert.equal("OPENAI_BASE_URL: must be an http:// or https:// URL (got localhost:8080)", err)
    -- a value that may hold a key is said as an endpoint is: never its user, password or path
    _, err = finish { OPENAI_BASE_URL = "ftp://me:s3cret@relay/v1/k3y" }
    assert.equal("OPENAI_BASE_URL: must be an http:// or https:// URL (got ftp://...@relay/...)", err)
    _, err = finish { OPENAI_BASE_URL = "sk-s3cret" }
    assert.equal("OPENAI_BASE_URL: must be an http:// or https:// URL (got ...)", err)
    _, err = finish { OLLAMA_HOST = "ftp://me:s3/cret@gpu" }
    assert.equal("OLLAMA_HOST: must be host, host:port or an http:// or https:// URL (got ftp://...)", err)
    _, err = finish { ORKET_MODEL = "gpt4" }
    assert.matches('^ORKET_MODEL: a model is named "provider:model"', err)
    _, err = finish { ORKET_MODEL = "nope:x" }
    assert.equal("ORKET_MODEL: names provider 'nope', which is not configured (configured: ollama, openai)", err)
  end)

  it("names the file, line or field of what is wrong", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", "models = {\n  providers = \n")
    local cfg, err, code = config.load(dir)
    assert.is_nil(cfg)
    assert.equal("ESYNTAX", code)
    assert.matches("^orket.lua:%d+:", err)
    H.write(dir .. "/orket.lua", "models = { providers = { x = { kind = 'openai', base_url = 'ftp://h' } } }")
    cfg, err, code = config.load(dir)
    assert.equal("EINVAL", code)
    assert.equal("orket.lua:1: models.providers.x.base_url must be an http:// or https:// URL (got ftp://h)", err)
    H.write(dir .. "/orket.lua", "models = { providers = { x = { kind = 'openai', base_url = 'http://h', api_key = 'sk-1' } } }")
    cfg, err = config.load(dir)
    -- a key is never text in orket.lua: it is a secret of the project's store (docs/secrets.md)
    assert.equal("orket.lua:1: models.providers.x.api_key must be secret \"NAME\" (the key is kept with "
      .. "'orket secrets set NAME', never written in orket.lua)", err)
    H.write(dir .. "/orket.lua", "models = { providers = { x = { kind = 'openai', base_url = 'http://h', headers = { Authorization = 'Bearer k' } } } }")
    cfg, err = config.load(dir)
    assert.matches("api_key_env", err)
    H.write(dir .. "/orket.lua", "models = { default = 'nope:m' }")
    cfg, err = config.load(dir)
    assert.equal("orket.lua:1: models.default names provider 'nope', which is not configured", err)
    cfg, err, code = config.load(H.tmpdir())
    assert.equal("ENOENT", code)
  end)

  it("runs orket.lua in a sandbox", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", "os.execute('true')")
    local cfg, err = config.load(dir)
    assert.is_nil(cfg)
    assert.matches("orket.lua:1:", err)
  end)

  it("splits provider:model at the first colon", function()
    assert.same({ "ollama", "qwen2.5-coder:7b" }, { config.split_model("ollama:qwen2.5-coder:7b") })
    assert.is_nil((config.split_model("gpt-4o")))
  end)
end)

describe("orket.c.http", function()
  it("rejects bad arguments with the argument named", function()
    assert.has_error(function() http.request("x") end, "bad argument #1 to 'request' (table expected, got string)")
    assert.has_error(function() http.request {} end, "bad argument #1 to 'request' (url must be a string)")
    assert.has_error(function() http.request { url = "file:///etc/passwd" } end,
      "bad argument #1 to 'request' (url must start with http:// or https://)")
    assert.has_error(function() http.request { url = "http://h", headers = { "X: a\r\nY: b" } } end,
      "bad argument #1 to 'request' (headers[1] contains a line break)")
    assert.has_error(function() http.request { url = "http://h", framing = "xml" } end)
    assert.has_error(function() http.request { url = "http://h", total_timeout_ms = -1 } end)
  end)

  it("closes idempotently and refuses a closed request", function()
    local r = assert(http.request { url = "http://127.0.0.1:1/" })
    r:close()
    r:close()
    assert.equal("http request (closed)", tostring(r))
    assert.has_error(function() r:read() end, "calling 'read' on bad self (request is closed)")
    assert.equal(0, http.live())
  end)

  it("parses HTTP dates", function()
    assert.equal(1445412480, http.parse_date("Wed, 21 Oct 2015 07:28:00 GMT"))
    assert.is_nil(http.parse_date("soon"))
  end)
end)

describe("scripted provider", function()
  after_each(function() H.cleanup() end)

  local function scripted(rules, default)
    return llm.new { default = "s:m", providers = { s = { kind = "scripted", rules = rules, default = default } } }
  end

  it("answers by role, card, turn and message pattern, in rule order", function()
    local c = scripted({
      { role = "integrity_guard", match = "review", reply = { content = "approved" } },
      { card = "ISSUE-2", turn = 2, reply = { tool_calls = { { name = "write_file", arguments = { path = "a" } } } } },
    }, { content = "default" })
    assert.equal("approved", c:chat { messages = USER, meta = { role = "integrity_guard" } }.content)
    assert.equal("default", c:chat { messages = { { role = "user", content = "x" } }, meta = { role = "integrity_guard" } }.content)
    local r = c:chat { messages = USER, meta = { card = "ISSUE-2", turn = 2 } }
    assert.equal("tool_calls", r.finish_reason)
    assert.same({ path = "a" }, r.tool_calls[1].arguments)
    assert.equal('{"path":"a"}', r.tool_calls[1].raw_arguments)
  end)

  it("plays sequences, then falls through; emits deltas; returns scripted errors", function()
    local c = scripted({
      { seat = "dev", sequence = { { content = "one two", chunks = 2 }, { error = { class = "rate_limited", message = "slow down" } } } },
    })
    local deltas = {}
    local r = c:chat { messages = USER, meta = { seat = "dev" }, on_delta = function(ev) deltas[#deltas + 1] = ev.text end }
    assert.equal("one two", r.content)
    assert.same({ "one ", "two" }, deltas)
    local r2, msg, class = c:chat { messages = USER, meta = { seat = "dev" } }
    assert.is_nil(r2)
    assert.equal("rate_limited", class)
    assert.equal("scripted: slow down", msg)
    local r3, msg3, class3 = c:chat { messages = USER, meta = { seat = "dev", turn = 3 } }
    assert.is_nil(r3)
    assert.equal("bad_request", class3)
    assert.equal("scripted: no rule answers role=nil card=nil turn=3 (add a rule or a default)", msg3)
  end)

  it("waits delay_ms on the loop", function()
    local c = scripted({}, { content = "late", delay_ms = 30 })
    local t0 = orket.now()
    assert.equal("late", c:chat { messages = USER }.content)
    assert.is_true(orket.now() - t0 >= 29)
  end)

  it("ends a delay longer than the call's timeout_ms with a timeout", function()
    local c = scripted({}, { content = "late", delay_ms = 5000 })
    local t0 = orket.now()
    local r, msg, class = c:chat { messages = USER, timeout_ms = 40 }
    local took = orket.now() - t0
    assert.is_nil(r)
    assert.equal("timeout", class)
    assert.equal("scripted: no answer within the call's timeout_ms (40 ms)", msg)
    assert.is_true(took >= 39 and took < 1000)
    -- a delay within the timeout answers
    c = scripted({}, { content = "soon", delay_ms = 10 })
    assert.equal("soon", c:chat { messages = USER, timeout_ms = 1000 }.content)
  end)

  it("loads a script file in a sandbox and names bad fields", function()
    local dir = H.tmpdir()
    H.write(dir .. "/script.lua", "return { rules = { { role = 'x', reply = { content = 'hi' } } } }")
    local c = llm.new { providers = { s = { kind = "scripted", file = dir .. "/script.lua" } } }
    assert.equal("hi", c:chat { model = "s:m", messages = USER, meta = { role = "x" } }.content)
    H.write(dir .. "/bad.lua", "return { rules = { { role = 'x', reply = { text = 'hi' } } } }")
    assert.has_error(function() llm.new { providers = { s = { kind = "scripted", file = dir .. "/bad.lua" } } } end,
      "llm.new: " .. dir .. "/bad.lua:1: rules[1].reply.text is not a reply field (content, tool_calls, finish_reason, usage, delay_ms, error, chunks)")
    -- a reply's usage: the three counts a server reports, each a count, a typo named with its line
    local function refused(usage)
      H.write(dir .. "/usage.lua", "return { rules = {\n  { role = 'x', reply = { content = 'hi',\n    usage = " .. usage
        .. " } } } }")
      local ok, err = pcall(llm.new, { providers = { s = { kind = "scripted", file = dir .. "/usage.lua" } } })
      assert.is_false(ok)
      return (tostring(err):gsub("^llm%.new: " .. dir:gsub("%p", "%%%0") .. "/", ""))
    end
    assert.equal("usage.lua:3: rules[1].reply.usage.prompt_token: unknown field (usage fields: prompt_tokens, "
      .. "completion_tokens, cached_tokens); did you mean 'prompt_tokens'?", refused("{ prompt_token = 10 }"))
    assert.matches("^usage.lua:3: rules%[1%]%.reply%.usage%.input: unknown field %(usage fields: ", refused("{ input = 1000, output = 500 }"))
    assert.equal("usage.lua:3: rules[1].reply.usage.prompt_tokens is 10000000000000, not a token count (a whole number "
      .. "from 0 to 2147483647)", refused("{ prompt_tokens = 10000000000000 }"))
    assert.matches("usage%.completion_tokens is %-1, not a token count", refused("{ completion_tokens = -1 }"))
    assert.matches("rules%[1%]%.reply%.usage must be a table", refused("5"))
    -- a whole float is a whole number, answered as an integer
    H.write(dir .. "/usage.lua", "return { rules = { { role = 'x', reply = { content = 'hi', usage = { prompt_tokens = 1e4, "
      .. "completion_tokens = 2^3, cached_tokens = 10 / 2 } } } } }")
    local u = llm.new({ providers = { s = { kind = "scripted", file = dir .. "/usage.lua" } } }):chat {
      model = "s:m", messages = USER, meta = { role = "x" } }.usage
    assert.same({ 10000, 8, 5, "integer" }, { u.prompt_tokens, u.completion_tokens, u.cached_tokens, math.type(u.prompt_tokens) })
    H.write(dir .. "/evil.lua", "io.open('/etc/passwd')")
    assert.has_error(function() llm.new { providers = { s = { kind = "scripted", file = dir .. "/evil.lua" } } } end)
  end)
end)

describe("replay provider", function()
  it("answers from the recorded run it is handed, counting calls per turn", function()
    local seen = {}
    local c = llm.new({ default = "r:m", providers = { r = { kind = "replay" } } }, {
      replay = function(key)
        seen[#seen + 1] = key
        if key.call == 1 then return { content = "recorded", usage = { prompt_tokens = 3, completion_tokens = 1, estimated = false } } end
        if key.call == 2 then return { error = { class = "timeout", message = "it timed out then" } } end
        return nil, "end of recording"
      end })
    local meta = { run = "R1", card = "C1", seat = "dev", turn = 1 }
    local r = assert(c:chat { messages = USER, meta = meta })
    assert.equal("recorded", r.content)
    assert.is_true(r.replayed)
    assert.same({ nil, "it timed out then", "timeout" }, { c:chat { messages = USER, meta = meta } })
    local r3, msg, class = c:chat { messages = USER, meta = meta }
    assert.equal("bad_request", class)
    assert.equal("replay: no recorded response for run=R1 card=C1 turn=1 call=3: end of recording", msg)
    assert.equal(3, seen[3].call)
  end)
end)

describe("health model lists", function()
  it("reads both wire formats' lists, and refuses an answer that is not one", function()
    local openai, ollama = require "orket.llm.openai", require "orket.llm.ollama"
    assert.same({ "a", "5" }, openai.health_models('{"data":[{"id":"a"},{"id":5}]}'))
    assert.same({ "m:1" }, ollama.health_models('{"models":[{"name":"m:1"}]}'))
    -- an entry whose name is no name (an object, a list, null) is left out, not listed as a table's address
    assert.same({ "m" }, openai.health_models('{"data":[{"id":{"a":1}},{"id":[1]},{"id":null},{"id":"m"}]}'))
    assert.same({ "m:1" }, ollama.health_models('{"models":[{"name":{"a":1}},{"name":"m:1"}]}'))
    assert.is_nil(openai.health_models("<html>hello</html>"))
    assert.is_nil(openai.health_models(""))
    assert.is_nil(ollama.health_models('{"data":[]}'))
  end)
end)

describe("llm client", function()
  it("checks requests and configs", function()
    local c = llm.new { default = "s:m", providers = { s = { kind = "scripted", rules = {}, default = { content = "x" } } } }
    assert.has_error(function() c:chat {} end, "bad argument #1 to 'chat' (messages must be a non-empty list)")
    assert.has_error(function() c:chat { messages = { { content = "x" } } } end,
      "bad argument #1 to 'chat' (messages[1].role must be a string)")
    for _, case in ipairs {
      { { stream = "yes" }, "stream must be true or false" },
      { { options = "hot" }, "options must be a table" },
      { { timeout_ms = 0 / 0 }, "timeout_ms must be a positive number of milliseconds" },
      { { timeout_ms = math.huge }, "timeout_ms must be a positive number of milliseconds" },
      { { tools = "x" }, "tools must be a list of {name=, description=, parameters=}" },
      { { tools = { { name = "x", parameters = print } } }, "tools[1].parameters must be a table (a JSON schema)" },
      { { fixed_tools = "yes" }, "fixed_tools must be true or false" },
      { { tool_choice = "maybe" }, 'tool_choice must be "auto", "none", "required" or {name = TOOL}' },
      { { meta = 1 }, "meta must be a table" },
    } do
      local req = { messages = USER }
      for k, v in pairs(case[1]) do req[k] = v end
      local ok, err = pcall(c.chat, c, req)
      assert.is_false(ok)
      assert.equal("bad argument #1 to 'chat' (" .. case[2] .. ")", err:gsub("^[^:]+:%d+: ", ""))
    end
    assert.same({ nil, "llm: unknown provider 'zz' in model 'zz:m' (configured: s)", "bad_request" },
      { c:chat { model = "zz:m", messages = USER } })
    assert.has_error(function() llm.new { providers = { a = { kind = "mystery" } } } end)
  end)
end)
