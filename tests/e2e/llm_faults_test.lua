-- The LLM transport against the fake model server (a separate process on loopback): every
-- fault with its classification, the number and order of attempts the server saw, and
-- timing bounds from the server's own clock (never the wall time of the test).
local llm = require "orket.llm"
local http = require "orket.c.http"
local rt = require "orket.c.runtime"
local task = require "orket.task"
local H = require "tests.helpers"

local fake = require("tests.fake_server").start()
local USER = { { role = "user", content = "hello" } }

local function client(over, key)
  local function prov(kind, base)
    local p = { kind = kind, base_url = base, api_key_env = "FAKE_LLM_KEY",
      retry = { max_attempts = 4, base_ms = 5, max_ms = 3000 },
      timeouts = { connect_ms = 2000, first_byte_ms = 3000, idle_ms = 3000, total_ms = 10000 } }
    for k, v in pairs(over or {}) do p[k] = v end
    return p
  end
  return llm.new({ default = "oa:ok", providers = {
    oa = prov("openai", fake.url .. "/v1"), ol = prov("ollama", fake.url) } },
    { getenv = function(k) if k == "FAKE_LLM_KEY" then return key or "sk-test-SECRET-0123456789" end end })
end

local function attempts(model)
  local n, times = 0, {}
  for _, e in ipairs(fake.log()) do
    if e.model == model then
      n = n + 1
      times[#times + 1] = e.t
    end
  end
  return n, times
end

teardown(function() fake.stop() end)

for _, wire in ipairs { "oa", "ol" } do
  describe(wire .. " wire format", function()
    before_each(function() fake.reset() end)

    it("streams content token by token and normalizes the result", function()
      local deltas = {}
      local r = assert(client():chat { model = wire .. ":chunks=4", messages = USER,
        on_delta = function(ev) deltas[#deltas + 1] = ev.text end })
      assert.same({ "tok1 ", "tok2 ", "tok3 ", "tok4" }, deltas)
      assert.equal("tok1 tok2 tok3 tok4", r.content)
      assert.equal("stop", r.finish_reason)
      assert.is_false(r.usage.estimated)
      assert.equal(4, r.usage.completion_tokens)
      assert.is_true(r.timings.first_token_ms <= r.timings.total_ms)
      assert.equal(1, r.attempts)
      assert.equal(wire, r.provider)
    end)

    it("assembles streamed tool calls with arguments as a table", function()
      local r = assert(client():chat { model = wire .. ":tool=write_file", messages = USER,
        tools = { { name = "write_file", description = "write", parameters = { type = "object" } } } })
      assert.equal("tool_calls", r.finish_reason)
      assert.equal(1, #r.tool_calls)
      assert.equal("write_file", r.tool_calls[1].name)
      assert.same({ path = "notes.txt", text = "hi" }, r.tool_calls[1].arguments)
      local sent = fake.log()[1].request
      assert.equal("write_file", sent.tools[1]["function"].name)
    end)

    it("sends fixed tools as the same JSON, each encoded once", function()
      local c = client()
      local write = { name = "write_file", description = "write", parameters = { type = "object",
        properties = { path = { type = "string", maxLength = 200 } }, required = { "path" } } }
      local read = { name = "read_file", description = "read", parameters = { type = "object", properties = {} } }
      local function send(fixed)
        assert(c:chat { model = wire .. ":chunks=1", messages = USER, tools = { write, read },
          tool_choice = "auto", fixed_tools = fixed })
        local log = fake.log()
        return log[#log].request
      end
      local plain, fixed = send(nil), send(true)
      assert.same(plain.tools, fixed.tools)
      assert.equal(2, #fixed.tools)
      assert.equal(200, fixed.tools[1]["function"].parameters.properties.path.maxLength)
      assert.same(plain.messages, fixed.messages)
      assert.equal(plain.tool_choice, fixed.tool_choice)
      -- made once: a change to an entry the caller said was fixed is not seen again, and
      -- is seen at once in a request that does not say so
      write.description = "changed"
      assert.equal("write", send(true).tools[1]["function"].description)
      assert.equal("changed", send(false).tools[1]["function"].description)
      -- a new entry (a reloaded registry's) is encoded anew
      local write2 = { name = "write_file", description = "write v2", parameters = write.parameters }
      local sent = (function()
        assert(c:chat { model = wire .. ":chunks=1", messages = USER, tools = { write2 }, fixed_tools = true })
        local log = fake.log()
        return log[#log].request
      end)()
      assert.equal("write v2", sent.tools[1]["function"].description)
      assert.equal(1, #sent.tools)
    end)

    it("reports a fixed tool that cannot be encoded as a bad request", function()
      local r, msg, class = client():chat { model = wire .. ":chunks=1", messages = USER, fixed_tools = true,
        tools = { { name = "bad", parameters = { type = "object", default = 0 / 0 } } } }
      assert.is_nil(r)
      assert.equal("bad_request", class)
      assert.matches("cannot encode the request", msg)
    end)

    it("reads non-streamed responses", function()
      local r = assert(client():chat { model = wire .. ":chunks=2", messages = USER, stream = false })
      assert.equal("tok1 tok2", r.content)
      assert.is_false(fake.log()[1].stream)
    end)

    it("gives on_delta the whole answer as one delta when it is not streamed", function()
      local deltas = {}
      local r = assert(client():chat { model = wire .. ":chunks=3", messages = USER, stream = false,
        on_delta = function(ev) deltas[#deltas + 1] = ev end })
      assert.equal("tok1 tok2 tok3", r.content)
      assert.equal(1, #deltas)
      assert.same({ type = "content", text = "tok1 tok2 tok3" }, deltas[1])
    end)

    it("estimates usage, flagged, when the server sends none", function()
      local r = assert(client():chat { model = wire .. ":no_usage", messages = USER })
      assert.is_true(r.usage.estimated)
      assert.is_true(r.usage.prompt_tokens > 0)
    end)

    it("retries 503 with backoff and succeeds, attempts in order", function()
      local r = assert(client():chat { model = wire .. ":fail=503,times=2", messages = USER })
      assert.equal(3, r.attempts)
      local n, t = attempts(wire == "oa" and "fail=503,times=2" or "fail=503,times=2")
      assert.equal(3, n)
      assert.is_true(t[2] > t[1] and t[3] > t[2])
    end)

    it("gives up on 500 after max_attempts as transient", function()
      local r, msg, class = client():chat { model = wire .. ":fail=500", messages = USER }
      assert.is_nil(r)
      assert.equal("transient", class)
      assert.matches("HTTP 500", msg)
      assert.matches("after 4 attempts", msg)
      assert.equal(4, (attempts("fail=500")))
    end)

    it("classifies a disconnect mid-stream as transient and does not retry shown tokens", function()
      local got = 0
      local r, msg, class = client():chat { model = wire .. ":disconnect_after=2", messages = USER,
        on_delta = function() got = got + 1 end }
      assert.is_nil(r)
      assert.equal("transient", class)
      assert.equal(2, got)
      assert.equal(1, (attempts("disconnect_after=2")))
    end)

    it("does not retry a disconnect after tokens the C decoder took (no on_delta)", function()
      local r, msg, class = client():chat { model = wire .. ":disconnect_after=3", messages = USER }
      assert.is_nil(r)
      assert.equal("transient", class)
      assert.equal(1, (attempts("disconnect_after=3")))
    end)

    it("decodes streamed tool calls and usage the same without on_delta", function()
      local with, without = {}, nil
      local a = assert(client():chat { model = wire .. ":tool=write_file", messages = USER, on_delta = function(ev) with[#with + 1] = ev end })
      without = assert(client():chat { model = wire .. ":tool=write_file", messages = USER })
      assert.is_true(#with > 0)
      a.timings, without.timings, a.request_id, without.request_id = nil, nil, nil, nil
      assert.same(a, without)
      assert.equal("write_file", without.tool_calls[1].name)
      assert.same({ path = "notes.txt", text = "hi" }, without.tool_calls[1].arguments)
    end)

    it("classifies a malformed chunk", function()
      local r, msg, class = client():chat { model = wire .. ":malformed", messages = USER }
      assert.is_nil(r)
      assert.equal("transient", class)
      assert.matches("malformed", msg)
    end)

    -- (the fake server's repeated key is OpenAI's; a streamed answer cut after its first
    -- piece is delivered too: above)
    if wire == "oa" then it("says a whole answer it cannot read was billed, and never asks again itself", function()
      local r, msg, class, failure = client():chat { model = wire .. ":repeated_key", messages = USER, stream = false }
      assert.is_nil(r)
      assert.equal("transient", class)
      assert.matches('repeated key "id"', msg, 1, true)
      assert.is_true(failure.delivered)
      assert.is_false(failure.final)
      assert.equal(1, attempts("repeated_key"))
      -- a body that is no JSON at all was no answer: retried, not said billed
      r, msg, class, failure = client():chat { model = wire .. ":malformed", messages = USER, stream = false }
      assert.is_nil(r)
      assert.is_nil(failure.delivered)
      assert.equal(4, attempts("malformed"))
      -- nor the server's own error object in a 200: no answer was made
      r, msg, class, failure = client():chat { model = wire .. ":error_body", messages = USER, stream = false }
      assert.is_nil(r)
      assert.matches("model overloaded", msg, 1, true)
      assert.is_nil(failure.delivered)
      -- an answer without a choice is no empty answer: malformed, retried
      do
        r, msg, class = client():chat { model = wire .. ":no_choice", messages = USER, stream = false }
        assert.is_nil(r)
        assert.equal("transient", class)
        assert.matches("the answer holds no choice", msg, 1, true)
        assert.equal(4, attempts("no_choice"))
      end
    end) end

    it("keeps the names a server sends short: its model, a call's name", function()
      local long = string.rep("M", 5000)
      local r = assert(client():chat { model = wire .. ":chunks=2,pad=" .. long, messages = USER })
      assert.is_true(#r.model < 300, #r.model)
      assert.matches("%.%.%. %(%d+ bytes%)$", r.model)
      r = assert(client():chat { model = wire .. ":tool=" .. long, messages = USER,
        tools = { { name = "x", description = "x", parameters = { type = "object" } } } })
      assert.is_true(#r.tool_calls[1].name < 300, #r.tool_calls[1].name)
      assert.matches("^MMM+%.%.%. %(5000 bytes%)$", r.tool_calls[1].name)
    end)

    it("says when a 200 was no stream at all", function()
      local r, msg, class = client():chat { model = wire .. ":plain_200", messages = USER }
      assert.is_nil(r)
      assert.equal("transient", class)
      if wire == "oa" then
        assert.matches("Content%-Type text/plain, not a stream of events", msg)
      else
        assert.is_string(msg)
      end
    end)

    it("classifies an error event after a 200", function()
      local r, msg, class = client():chat { model = wire .. ":error_event", messages = USER }
      assert.is_nil(r)
      assert.equal("transient", class)
      assert.matches("crashed mid%-stream", msg)
    end)

    it("times out a slow first byte, without retrying", function()
      local c = client { timeouts = { first_byte_ms = 100 } }
      local r, msg, class = c:chat { model = wire .. ":first_byte_ms=2000", messages = USER }
      assert.is_nil(r)
      assert.equal("timeout", class)
      assert.matches("first_byte", msg)
      assert.equal(1, (attempts("first_byte_ms=2000")))
    end)

    it("times out a stream that stalls", function()
      local c = client { timeouts = { idle_ms = 150 } }
      local got = 0
      local r, msg, class = c:chat { model = wire .. ":stall_after=2", messages = USER,
        on_delta = function() got = got + 1 end }
      assert.is_nil(r)
      assert.equal("timeout", class)
      assert.matches("idle", msg)
      assert.equal(2, got)
    end)

    it("caps huge responses", function()
      local c = client { max_response_bytes = 200000 }
      local r, msg, class = c:chat { model = wire .. ":huge=1000000", messages = USER }
      assert.is_nil(r)
      assert.equal("bad_request", class)
      assert.matches("exceeds the 200000%-byte cap", msg)
    end)

    -- a server that answers whole though a stream was asked: said with the setting that
    -- fits it, and not asked again (it answers whole again)
    if wire == "oa" then it("says a whole answer to a streamed request is one, naming stream = false, asked once", function()
      local r, msg = client():chat { model = wire .. ":whole", messages = USER, stream = true }
      assert.is_nil(r)
      assert.matches("a whole answer, not a stream of events: set models.providers.oa.stream = false", msg, 1, true)
      assert.equal(1, attempts("whole"))
    end) end

    -- one streamed event past the framer's 1 MiB: the cap named, and what takes such answers
    it("names the streamed event's cap and the provider's setting that takes the answer whole", function()
      local r, msg, class = client():chat { model = wire .. ":huge_piece=1100000", messages = USER, stream = true }
      assert.is_nil(r)
      assert.equal("bad_request", class)
      assert.matches("a streamed event exceeds the size cap (1 MiB; models.providers." .. wire .. ".stream = false takes "
        .. "its answers whole, up to max_response_bytes)", msg, 1, true)
      r = assert(client():chat { model = wire .. ":huge_piece=1100000", messages = USER, stream = false })
      assert.equal(1100000, #r.content)
    end)
  end)
end

describe("retry policy", function()
  before_each(function() fake.reset() end)

  it("honours Retry-After in seconds as a minimum", function()
    local r = assert(client():chat { model = "oa:fail=429,times=1,retry_after=1", messages = USER })
    assert.equal(2, r.attempts)
    local n, t = attempts("fail=429,times=1,retry_after=1")
    assert.equal(2, n)
    assert.is_true(t[2] - t[1] >= 990, "second attempt after " .. (t[2] - t[1]) .. " ms")
  end)

  it("honours retry-after-ms", function()
    local r = assert(client():chat { model = "oa:fail=429,times=2,retry_after_ms=300", messages = USER })
    assert.equal(3, r.attempts)
    local _, t = attempts("fail=429,times=2,retry_after_ms=300")
    assert.is_true(t[2] - t[1] >= 295 and t[3] - t[2] >= 295)
  end)

  it("honours Retry-After as an HTTP date", function()
    local r = assert(client():chat { model = "oa:fail=429,times=1,retry_after_date=2", messages = USER })
    assert.equal(2, r.attempts)
    local _, t = attempts("fail=429,times=1,retry_after_date=2")
    assert.is_true(t[2] - t[1] >= 900, "waited " .. (t[2] - t[1]))
  end)

  it("does not ask again inside a Retry-After longer than retry.max_ms: it stops, saying both", function()
    local c = client { retry = { max_attempts = 2, base_ms = 5, max_ms = 200 } }
    local r, msg, class, failure = c:chat { model = "oa:fail=429,times=1,retry_after=30", messages = USER }
    assert.is_nil(r)
    assert.equal("rate_limited", class)
    assert.equal(1, (attempts("fail=429,times=1,retry_after=30")))
    assert.matches("HTTP 429: .* %(1 attempt in [%d%.]+ m?s; the server asked to wait 30%.0 s %(Retry%-After%), more than "
      .. "models%.providers%.oa%.retry%.max_ms allows %(200 ms%): not asked again before then%)$", msg)
    assert.same({ true, 30000 }, { failure.final, failure.retry_after_ms })
  end)

  it("caps its own backoff at retry.max_ms, and says each wait before it begins (on_retry)", function()
    local c = client { retry = { max_attempts = 3, base_ms = 5000, max_ms = 100 } }
    local seen = {}
    local r = assert(c:chat { model = "oa:fail=503,times=2", messages = USER,
      on_retry = function(ev) seen[#seen + 1] = ev end })
    assert.equal(3, r.attempts)
    local _, t = attempts("fail=503,times=2")
    assert.is_true(t[3] - t[1] < 2000)
    assert.equal(2, #seen)
    for i, ev in ipairs(seen) do
      assert.same({ "retry", i, 3, "transient", 503, "HTTP 503", 100 },
        { ev.type, ev.attempt, ev.max_attempts, ev.class, ev.status, ev.why, ev.delay_ms })
      assert.matches("^provider oa %(openai, .*HTTP 503: ", ev.message)
    end
  end)

  it("classifies 429 as rate_limited once the retries are spent", function()
    local c = client { retry = { max_attempts = 2, base_ms = 5, max_ms = 50 } }
    local r, msg, class = c:chat { model = "oa:fail=429", messages = USER }
    assert.is_nil(r)
    assert.equal("rate_limited", class)
    assert.equal(2, (attempts("fail=429")))
  end)

  it("retries 408 and 409", function()
    for _, s in ipairs { 408, 409 } do
      local m = "fail=" .. s .. ",times=1"
      local r = assert(client():chat { model = "oa:" .. m, messages = USER })
      assert.equal(2, r.attempts)
    end
  end)

  for status, class in pairs { [400] = "bad_request", [401] = "auth", [403] = "auth", [404] = "bad_request", [413] = "bad_request" } do
    it("never retries " .. status .. " (" .. class .. ")", function()
      local m = "fail=" .. status
      local r, msg, got = client():chat { model = "oa:" .. m, messages = USER }
      assert.is_nil(r)
      assert.equal(class, got)
      assert.equal(1, (attempts(m)))
    end)
  end

  it("reports a redirect with where it points, in chat and in the health check", function()
    local c = llm.new { default = "m:x", providers = { m = { kind = "openai", base_url = fake.url .. "/moved/v1",
      retry = { max_attempts = 1 } } } }
    local r, msg, class = c:chat { messages = USER }
    assert.is_nil(r)
    assert.equal("bad_request", class)
    assert.matches("redirect to /v1/chat/completions not followed %(fix base_url%)", msg)
    r, msg, class = c:health("m")
    assert.is_nil(r)
    assert.equal("HTTP 302: redirect to /v1/models not followed (fix base_url)", msg)
  end)

  it("never retries insufficient_quota (quota)", function()
    local r, msg, class = client():chat { model = "oa:fail=429,error_code=insufficient_quota", messages = USER }
    assert.is_nil(r)
    assert.equal("quota", class)
    assert.equal(1, (attempts("fail=429,error_code=insufficient_quota")))
  end)

  it("retries a refused connection on this machine, then says nothing listens and what to do", function()
    local c = llm.new { providers = {
      x = { kind = "openai", base_url = "http://127.0.0.1:1/v1", retry = { max_attempts = 3, base_ms = 2, max_ms = 5 } },
      ollama = { kind = "ollama", base_url = "http://localhost:1", base_url_env = "OLLAMA_HOST",
        retry = { max_attempts = 2, base_ms = 2, max_ms = 5 } } } }
    local retries = 0
    local r, msg, class, failure = c:chat { model = "x:m", messages = USER, on_delta = function(ev)
      if ev.type == "retry" then retries = retries + 1 end
    end }
    assert.is_nil(r)
    assert.equal("transient", class)
    assert.equal(2, retries) -- a connection error is retried: a local server may be restarting
    assert.equal(3, failure.attempts)
    assert.is_true(failure.final)
    assert.matches("^provider x: nothing is listening at http://127%.0%.0%.1:1/v1 %(connection refused%)%. "
      .. "Is the model server running%? Start it, or fix models%.providers%.x%.base_url in orket%.lua%. "
      .. "%(gave up after 3 attempts over [%d%.]+ m?s%)$", msg)
    assert.equal(failure.error .. msg:match(" %(gave up.*$"), msg)
    r, msg, class, failure = c:chat { model = "ollama:m", messages = USER }
    assert.is_nil(r)
    assert.equal(2, failure.attempts)
    assert.matches("^provider ollama: nothing is listening at http://localhost:1 %(connection refused%)%. "
      .. "Is Ollama running%? Start it with 'ollama serve', or set OLLAMA_HOST to where it listens%.", msg)
    -- a password in base_url is not repeated
    local pw = llm.new { providers = { y = { kind = "openai", base_url = "http://me:hunter2@127.0.0.1:1/v1",
      retry = { max_attempts = 1 } } } }
    r, msg = pw:chat { model = "y:m", messages = USER }
    assert.matches("^provider y: nothing is listening at http://127%.0%.0%.1:1/v1 %(", msg)
    assert.is_nil(msg:find("hunter2", 1, true))
    -- orket models says the same
    r, msg = c:health("ollama")
    assert.is_nil(r)
    assert.matches("^provider ollama: nothing is listening at http://localhost:1 %(connection refused%)%. Is Ollama running%?", msg)
  end)

  it("reports every attempt it made, over how long, and that a caller need not ask again", function()
    local r, msg, class, failure = client():chat { model = "oa:fail=500", messages = USER }
    assert.is_nil(r)
    assert.equal("transient", class)
    -- the provider, its kind and URL, and the model: which one of several failed
    assert.matches("^provider oa %(openai, http://127%.0%.0%.1:%d+/v1%), model fail=500: HTTP 500: .* %(gave up after 4 attempts over [%d%.]+ m?s%)$", msg)
    assert.equal(4, failure.attempts)
    assert.is_true(failure.final)
    assert.is_nil(failure.error:find("gave up", 1, true))
    assert.is_true(failure.elapsed_ms >= 0)
    -- a cut stream with tokens shown was not retried: the caller may ask again
    r, msg, class, failure = client():chat { model = "oa:disconnect_after=2", messages = USER }
    assert.is_nil(r)
    assert.equal("transient", class)
    assert.equal(1, failure.attempts)
    assert.is_false(failure.final)
    -- the REPL's printer says which attempt failed, when, why, and how long it waits
    local f = io.tmpfile()
    assert(client():chat { model = "oa:fail=503,times=1", messages = USER, on_delta = llm.printer(f) })
    f:seek("set")
    assert.matches("^\n%[attempt 1 failed %(transient%) [%d%.]+ m?s into the call: provider oa %(openai, http://127%.0%.0%.1:%d+/v1%), model fail=503,times=1: HTTP 503: "
      .. ".*; retrying in [%d%.]+ m?s%]\ntok1 ", f:read("a"))
    f:close()
    -- a first-byte timeout is not the client's to retry either
    r, msg, class, failure = client { timeouts = { first_byte_ms = 100 } }:chat { model = "oa:first_byte_ms=2000", messages = USER }
    assert.equal("timeout", class)
    assert.is_false(failure.final)
  end)

  -- The REPL's llm.chat shows the model's text as it comes: a hostile model's escape
  -- sequences (a title, a cleared screen, OSC 52's clipboard) are shown, not obeyed
  it("writes streamed text inert, a character split across pieces whole", function()
    local f = io.tmpfile()
    local p = llm.printer(f)
    for _, piece in ipairs { "hi \27]0;PWNED\7\27[2J", "caf\xC3", "\xA9 \xE2\x82", "\xAC." } do
      p { type = "content", text = piece }
    end
    f:seek("set")
    assert.equal("hi \\x1b]0;PWNED\\x07\\x1b[2Jcafé €.", f:read("a"))
    f:close()
  end)

  it("stops retrying when the call's timeout_ms would pass, naming what set it and the wait asked", function()
    local r, msg, class, failure = client():chat { model = "oa:fail=503,retry_after=2", messages = USER, timeout_ms = 1000 }
    assert.is_nil(r)
    assert.equal("transient", class)
    assert.matches("%(1 attempt in [%d%.]+ m?s; no time left to retry: the server asked to wait 2%.0 s %(Retry%-After%), "
      .. "and the call's timeout_ms leaves [%d%.]+ m?s%)$", msg)
    assert.same({ true, true }, { failure.final, failure.out_of_time })
    assert.equal(1, (attempts("fail=503,retry_after=2")))
    fake.reset()
    local _, msg2 = client():chat { model = "oa:fail=503,retry_after=2", messages = USER, timeout_ms = 1000,
      timeout_source = "budgets.wall_ms_per_card = 1000" }
    assert.matches("; no time left to retry: the server asked to wait 2%.0 s %(Retry%-After%), and "
      .. "budgets%.wall_ms_per_card = 1000 leaves [%d%.]+ m?s%)$", msg2)
  end)
end)

describe("malformed tool calls", function()
  before_each(function() fake.reset() end)

  it("are a classified model failure naming the field, never a Lua error", function()
    for _, wire in ipairs { "oa", "ol" } do
      for _, stream in ipairs { true, false } do
        for _, kind in ipairs { "number", "name", "function" } do
          local what = wire .. " " .. tostring(stream) .. " " .. kind
          local ok, r, msg, class = pcall(client({ retry = { max_attempts = 1 } }).chat, client({ retry = { max_attempts = 1 } }),
            { model = wire .. ":tool=write_file,bad_call=" .. kind, messages = USER, stream = stream })
          assert.is_true(ok, what .. ": " .. tostring(r))
          assert.is_nil(r, what)
          assert.equal("transient", class, what)
          assert.matches("malformed response: .*tool_calls%[1%]", msg, nil, false)
        end
      end
    end
  end)
end)

describe("secrets", function()
  before_each(function() fake.reset() end)

  it("sends the key from the environment and redacts it from errors", function()
    local r, msg = client():chat { model = "oa:fail=401", messages = USER }
    assert.is_nil(r)
    assert.equal("Bearer sk-test-SECRET-0123456789", fake.log()[1].authorization)
    assert.is_nil(msg:find("SECRET", 1, true))
    assert.matches("sk%-%[redacted%]", msg) -- the server's echo of a key is masked too
  end)

  -- libcurl sends a base_url's user and password; every message quoting the URL showed them
  it("masks a password written in base_url in its messages and the client's tables", function()
    local c = client { base_url = fake.url:gsub("^http://", "http://bob:hunter%%32%%32@") .. "/v1" }
    local r, msg = c:chat { model = "oa:fail=503", messages = USER }
    assert.is_nil(r)
    assert.matches("HTTP 503", msg)
    assert.is_nil(msg:find("hunter", 1, true), msg)
    assert.is_nil(c:describe("oa").base_url:find("hunter", 1, true), c:describe("oa").base_url)
    assert.is_nil(c:describe("oa").base_url:find("bob", 1, true))
  end)

  it("keeps the key out of the client's visible tables", function()
    local c = client()
    assert.is_nil(c:describe("oa").key)
    assert.is_true(c:describe("oa").key_set)
    local r = assert(c:chat { model = "oa:ok", messages = USER })
    local s = require("orket.pretty").render(r)
    assert.is_nil(s:find("SECRET", 1, true))
  end)

  it("masks the key a server echoes back in an answer or a tool call", function()
    for _, wire in ipairs { "oa", "ol" } do
      for _, stream in ipairs { true, false } do
        local r = assert(client():chat { model = wire .. ":echo_key,chunks=2", messages = USER, stream = stream })
        assert.is_nil(r.content:find("SECRET", 1, true), r.content)
        assert.matches("%[redacted%] tok1 tok2", r.content)
        r = assert(client():chat { model = wire .. ":echo_key,tool=add_issue_comment", messages = USER, stream = stream })
        local note = r.tool_calls[1].arguments.note
        assert.is_nil(require("cjson").encode(r.tool_calls):find("SECRET", 1, true))
        assert.equal("Bearer [redacted]", note)
      end
    end
  end)

  -- A call's raw_arguments is JSON text: a key holding "/" is written there as "\/" (by the
  -- server, or by lua-cjson for Ollama's, whose text is made here), which the exact search missed.
  it("masks the key in a tool call's arguments' text however JSON escapes it", function()
    local key = "sk-proj/AbC+SECRET/0123456789"
    for _, wire in ipairs { "oa", "ol" } do
      for _, stream in ipairs { true, false } do
        local r = assert(client(nil, key):chat { model = wire .. ":echo_key,tool=add_issue_comment", messages = USER,
          stream = stream })
        local call = r.tool_calls[1]
        assert.is_nil(call.raw_arguments:find("SECRET", 1, true), call.raw_arguments)
        assert.equal("Bearer [redacted]", require("cjson").decode(call.raw_arguments).note)
        assert.equal("Bearer [redacted]", call.arguments.note)
      end
    end
    -- any character as \uXXXX, as a server may write it
    local common = require "orket.llm.common"
    local calls = { { name = "x", raw_arguments = [[{"note":"Bearer \u0068unter22"}]], arguments = {} } }
    common.mask_calls(calls, { "hunter22" })
    assert.equal([[{"note":"Bearer [redacted]"}]], calls[1].raw_arguments)
    -- text with no secret in it is left as it came, escapes and all
    calls = { { name = "x", raw_arguments = [[{"note":"a\/b"}]], arguments = {} } }
    common.mask_calls(calls, { "hunter22" })
    assert.equal([[{"note":"a\/b"}]], calls[1].raw_arguments)
  end)

  it("masks the key a server echoes in any field of its response (model, id)", function()
    local cjson = require "cjson"
    for _, wire in ipairs { "oa", "ol" } do
      for _, stream in ipairs { true, false } do
        for _, extra in ipairs { "", ",tool=add_issue_comment" } do
          local r = assert(client():chat { model = wire .. ":echo_key_fields,chunks=2" .. extra, messages = USER,
            stream = stream })
          local all = cjson.encode { r.model, r.id, r.content, r.tool_calls, r.finish_reason }
          assert.is_nil(all:find("SECRET", 1, true), wire .. " " .. tostring(stream) .. extra .. ": " .. all)
          assert.equal("Bearer [redacted]", r.model)
        end
      end
    end
  end)

  it("masks the key however deep a response nests it, in values and names", function()
    local common = require "orket.llm.common"
    local deep = { v = "k=hunter22" }
    local leaf = deep
    for i = 1, 40 do
      leaf.next = { ["hunter22-" .. i] = "x hunter22" }
      leaf = leaf.next
    end
    leaf.cycle = deep -- walked once
    local r = common.mask({ tool_calls = { { arguments = deep } } }, { "hunter22" })
    leaf.cycle = nil
    local all = require("cjson").encode(r.tool_calls[1].arguments)
    assert.is_nil(all:find("hunter22", 1, true), all)
    assert.matches("[redacted]-40", all, 1, true)
  end)

  it("redact masks given secrets, bearer tokens and sk- keys", function()
    local common = require "orket.llm.common"
    assert.equal("a [redacted] b Bearer [redacted] sk-[redacted]",
      common.redact("a hunter22 b Bearer abc.def sk-live-123", { "hunter22" }))
  end)
end)

describe("concurrency and cancellation", function()
  before_each(function() fake.reset() end)

  it("runs many requests at once within the per-provider limit", function()
    local c = client { max_concurrency = 4 }
    local tasks = {}
    for i = 1, 12 do
      tasks[i] = task.spawn(function() return c:chat { model = "oa:first_byte_ms=50,chunks=2", messages = USER } end)
    end
    for i = 1, 12 do
      local ok, r = tasks[i]:join()
      assert.is_true(ok)
      assert.equal("tok1 tok2", r.content)
    end
    -- the server saw them in waves of at most 4
    local t = select(2, attempts("first_byte_ms=50,chunks=2"))
    table.sort(t)
    assert.equal(12, #t)
    assert.is_true(t[5] - t[1] >= 45, "the fifth request started before a slot was free")
  end)

  it("keeps the connection when the body's end comes after [DONE]", function()
    local c = client()
    for _ = 1, 3 do
      local r = assert(c:chat { model = "oa:chunks=2,done_gap_ms=30", messages = USER })
      assert.equal("tok1 tok2", r.content)
      assert.equal(0, http.live()) -- closed for its owner while it reads the rest
      -- the rest has come (the server wrote the body's end, and this loop read it): the
      -- connection is idle again
      H.wait_for(function() return fake.log()[#fake.log()].ended end, "the body's end to be written")
      orket.sleep(20)
    end
    local log = fake.log()
    assert.equal(3, #log)
    assert.equal(log[1].conn, log[2].conn)
    assert.equal(log[1].conn, log[3].conn)
  end)

  it("a call's timeout_ms covers its wait for a free slot", function()
    local c = client { max_concurrency = 1 }
    local hog = task.spawn(function() return c:chat { model = "oa:first_byte_ms=3000,chunks=1", messages = USER } end)
    local r, msg, class = c:chat { model = "oa:queued,chunks=2", messages = USER, timeout_ms = 200 }
    assert.is_nil(r)
    assert.equal("timeout", class)
    assert.matches("waiting for one of oa's 1 request slots", msg)
    assert.equal("running", hog.state) -- it gave up before the slot came free
    assert.equal(0, (attempts("queued,chunks=2")))
    assert.is_true(hog:cancel())
    -- the slot is whole again: the next call gets it at once
    assert.equal("stop", assert(c:chat { model = "oa:ok", messages = USER, timeout_ms = 2000 }).finish_reason)
  end)

  it("a request cancelled before the loop runs never reaches the server", function()
    local c = client()
    local t = task.spawn(function() return c:chat { model = "oa:never_sent", messages = USER } end)
    assert.is_true(t:cancel())
    local r = assert(c:chat { model = "oa:ok", messages = USER })
    assert.equal("stop", r.finish_reason)
    assert.equal(0, (attempts("never_sent")))
    assert.equal(1, (attempts("ok")))
  end)

  it("reuses connections across bursts, and recovers when the server closes them", function()
    local c = client()
    local function burst(model, n)
      local tasks = {}
      for i = 1, n do tasks[i] = task.spawn(function() return c:chat { model = model, messages = USER } end) end
      local out = {}
      for i = 1, n do out[i] = { tasks[i]:join() } end
      return out
    end
    for _, r in ipairs(burst("oa:chunks=2", 6)) do assert.is_true(r[1]); assert.equal("tok1 tok2", r[2].content) end
    local conns, n = {}, 0
    local function count()
      for _, e in ipairs(fake.log()) do
        if not conns[e.conn] then conns[e.conn], n = true, n + 1 end
      end
    end
    count()
    fake.reset()
    orket.sleep(50) -- a stream done at [DONE] may still be reading its body's end
    for _, r in ipairs(burst("oa:chunks=3", 6)) do assert.is_true(r[1]); assert.equal("tok1 tok2 tok3", r[2].content) end
    count()
    assert.is_true(n <= 6, n .. " connections for two bursts of 6")
    -- the server hangs up on every one of them: the sockets close, their descriptors come
    -- back for the next connections, and requests on those are watched and answered
    for round = 1, 3 do
      for _, r in ipairs(burst("oa:disconnect_after=1,chunks=4", 6)) do
        assert.is_true(r[1])
        assert.is_nil(r[2])
        assert.equal("transient", r[4], "round " .. round .. ": " .. tostring(r[3]))
      end
      for _, r in ipairs(burst("oa:chunks=2", 6)) do assert.is_true(r[1]); assert.equal("tok1 tok2", r[2].content) end
    end
  end)

  it("cancelling a task aborts its transfer at once and frees its slot", function()
    local c = client { max_concurrency = 1 }
    local t = task.spawn(function() return c:chat { model = "oa:stall_after=1", messages = USER } end)
    -- cancelled with its transfer under way (100 ms was a guess at how soon it starts)
    H.wait_for(function() return http.live() == 1 end, "the transfer to start")
    assert.is_true(t:cancel())
    assert.equal("canceled", t.state)
    collectgarbage()
    collectgarbage()
    assert.equal(0, http.live())
    assert.equal(0, rt.stats().waits)
    -- the slot came back: another call gets through
    local r = assert(c:chat { model = "oa:ok", messages = USER })
    assert.equal("stop", r.finish_reason)
  end)
end)

-- Answers of the shapes servers are known to send (the fake server's wire=CASE), each
-- streamed (decoded in C, and piece by piece with on_delta) and whole: the same result.
describe("answers of the shapes servers send", function()
  before_each(function() fake.reset() end)
  local TOOLS = { { name = "write_file", description = "write", parameters = { type = "object" } } }

  -- the result of model's answer, three ways: streamed (with and without on_delta) and whole
  local function three(model)
    local out = {}
    for _, way in ipairs { "stream", "on_delta", "whole" } do
      local r, msg, class, failure = client():chat { model = "oa:" .. model, messages = USER, tools = TOOLS,
        stream = way ~= "whole", on_delta = way == "on_delta" and function() end or nil }
      out[way] = { r = r, msg = msg, class = class, failure = failure }
    end
    return out
  end
  local function calls(r)
    local out = {}
    for i, c in ipairs(r.tool_calls) do out[i] = { c.id, c.name, c.arguments.path, c.arguments.text } end
    return out
  end

  it("takes streamed calls without an index apart by their ids", function()
    for way, got in pairs(three("wire=no_index")) do
      assert.is_table(got.r, way .. ": " .. tostring(got.msg))
      assert.same({ { "call_a", "write_file", "a.txt", "1" }, { "call_b", "write_file", "b.txt", "2" } }, calls(got.r), way)
    end
  end)

  it("takes streamed calls whose indexes do not start at 0 or have gaps, by index", function()
    for way, got in pairs(three("wire=index_from_1")) do
      assert.is_table(got.r, way .. ": " .. tostring(got.msg))
      assert.same({ { "toolu_1", "write_file", "one.txt", "1" } }, calls(got.r), way)
      assert.equal("tool_calls", got.r.finish_reason)
    end
    for way, got in pairs(three("wire=sparse")) do
      assert.is_table(got.r, way .. ": " .. tostring(got.msg))
      assert.same({ { "c0", "write_file", "zero.txt", "0" }, { "c5", "write_file", "five.txt", "5" } }, calls(got.r), way)
    end
  end)

  it("takes a stream that ended with [DONE] but no finish_reason as whole, once", function()
    for way, got in pairs(three("wire=no_finish")) do
      assert.is_table(got.r, way .. ": " .. tostring(got.msg))
      assert.same({ "whole", "stop", 1 }, { got.r.content, got.r.finish_reason, got.r.attempts }, way)
    end
    assert.equal(3, attempts("wire=no_finish"))
    -- without [DONE] either, the stream was cut
    local r, msg, class = client():chat { model = "oa:wire=no_finish,no_done", messages = USER }
    assert.is_nil(r)
    assert.equal("transient", class)
    assert.matches("the stream ended before a finish_reason", msg, 1, true)
  end)

  it("refuses a call whose arguments pass MAX_ARGUMENTS, keeping only their start", function()
    local size = 5 << 20
    for way, got in pairs(three("wire=huge_args,size=" .. size)) do
      assert.is_table(got.r, way .. ": " .. tostring(got.msg))
      local c = got.r.tool_calls[1]
      assert.same({ "call_h", "write_file" }, { c.id, c.name }, way)
      assert.same({}, c.arguments, way)
      assert.equal(string.format("arguments are %d bytes, more than the 4194304 (4 MiB) a tool call may send; "
        .. "send less in one call (a large file in parts)", size + 32), c.arguments_error, way)
      assert.is_true(#c.raw_arguments < 1100, way .. ": " .. #c.raw_arguments)
      assert.matches('^{"path": "huge.txt", "text": "xxx+%.%.%. %(' .. (size + 32) .. ' bytes%)$', c.raw_arguments)
      -- sent back as history, it is that start, not the whole
      fake.reset()
      assert(client():chat { model = "oa:ok", messages = { USER[1],
        { role = "assistant", tool_calls = { c } }, { role = "tool", tool_call_id = c.id, content = "refused" } } })
      local sent = fake.log()[1].request.messages[2].tool_calls[1]["function"].arguments
      assert.equal(c.raw_arguments, sent)
    end
  end)

  it("says what a 200 body that is no JSON was: a page, a compressed body, streamed or not", function()
    for way, got in pairs(three("wire=html")) do
      assert.is_nil(got.r, way)
      assert.matches("Content-Type text/html, not", got.msg, 1, true)
    end
    for way, got in pairs(three("wire=gzip")) do
      assert.is_nil(got.r, way)
      assert.matches("Content-Encoding gzip, which Orket does not ask for nor decode", got.msg, 1, true)
    end
  end)

  it("quotes an event it could not read with its NUL and bytes that are not UTF-8 escaped", function()
    for _, way in ipairs { "stream", "on_delta" } do
      local r, msg, class, failure = client():chat { model = "oa:wire=bad_event", messages = USER,
        on_delta = way == "on_delta" and function() end or nil }
      assert.is_nil(r)
      assert.equal("transient", class)
      assert.matches('raw\\x00nul \\xff\\xfe"}}], oops}', msg, 1, true)
      assert.is_nil(msg:find("[%z\128-\255]"), msg)
      assert.truthy(utf8.len(msg))
      assert.equal(msg, failure.error)
    end
  end)
end)
