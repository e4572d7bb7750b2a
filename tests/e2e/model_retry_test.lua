-- `orket run` when the model fails: the model client's retries and the engine's are one
-- budget, not one inside the other; after them the engine's later rounds (4, each one call,
-- 25 x backoff_ms doubling) before the card is blocked. Counts and order of the requests
-- the fake server saw and of the events, never the wall time; a closed port on 127.0.0.1
-- for "nothing listens".
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local fake = F.model_server(teardown)

-- A one-issue project whose models are the fake server's (or the built-in ollama provider).
local function project(default)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/orket.lua", string.format([[
models = { default = %q, providers = {
  fake = { kind = "openai", base_url = %q, retry = { max_attempts = 3, base_ms = 1, max_ms = 5 } },
  ollama = { kind = "ollama", retry = { max_attempts = 2, base_ms = 1, max_ms = 5 } },
} }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { model_retries = 2, backoff_ms = 1 }
]], default, fake.url .. "/v1"))
  H.write(dir .. "/epics/m.json", [[
{ "id": "M", "name": "Model", "issues": [ { "id": "M-1", "summary": "Do it", "seat": "senior_developer" } ] }
]])
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- run M --json -> status, the events of type (in order), every event, stderr
local function run(dir, env)
  local r = H.orket("run M --json", { cwd = dir, env = env })
  local events, kinds = {}, {}
  for line in r.stdout:gmatch("[^\n]+") do
    local ev = cjson.decode(line)
    events[#events + 1] = ev
    if ev.card == "M-1" then kinds[#kinds + 1] = ev.type end
  end
  local function of(t)
    local out = {}
    for _, ev in ipairs(events) do if ev.type == t then out[#out + 1] = ev end end
    return out
  end
  return r.status, of, kinds, r.stderr
end

local requests = fake.requests

describe("orket run when the model fails", function()
  before_each(function() fake.reset() end)

  -- the model_retry events of a kind: the client's waits, the engine's at once, its later rounds
  local function retries(of, kind)
    local out = {}
    for _, ev in ipairs(of("model_retry")) do
      local k = ev.by == "client" and "client" or ev.round and "round" or "engine"
      if k == kind then out[#out + 1] = ev end
    end
    return out
  end

  it("does not ask again at once after a failure the client already retried, only in later rounds", function()
    local status, of, kinds, stderr = run(project("fake:fail=503"))
    assert.equal(1, status, stderr)
    -- the provider's 3 attempts in each of the 5 calls (the first and 4 later rounds), not 3
    -- for each of the engine's 1 + model_retries calls in each
    assert.equal(15, requests("fail=503"))
    assert.equal(0, #retries(of, "engine"))
    assert.equal(10, #retries(of, "client")) -- 2 waits in each call, each said
    local rounds = retries(of, "round")
    assert.equal(4, #rounds)
    for i, ev in ipairs(rounds) do
      assert.same({ "M-1", "transient", i, 4, 25 << (i - 1), 3 * i }, { ev.card, ev.class, ev.round, ev.rounds, ev.delay_ms, ev.attempts })
      assert.is_nil(ev.error:find("gave up", 1, true))
    end
    -- each call the engine made failed: said as a call (a tracer's ERROR chat span), charged nothing
    local want = { "turn_start" }
    for i = 1, 5 do
      for _ = 1, 2 do want[#want + 1] = "model_retry" end -- the client's waits
      want[#want + 1] = "model_failure"
      if i < 5 then want[#want + 1] = "model_retry" end -- the engine's round
    end
    for _, k in ipairs { "card_blocked", "turn_end" } do want[#want + 1] = k end
    assert.same(want, kinds)
    local f = of("model_failure")[1]
    assert.same({ "M-1", "senior_developer", 1, 1, "transient" }, { f.card, f.seat, f.turn, f.step, f.class })
    assert.is_true(math.tointeger(f.latency_ms) ~= nil and f.latency_ms >= 0)
    for _, ev in ipairs(of("model_failure")) do assert.is_nil(ev.prompt_tokens or ev.completion_tokens or ev.cost) end
    assert.matches("^The model failed %(transient%): provider fake %(openai, http://127%.0%.0%.1:%d+/v1%), model fail=503: HTTP 503: .* %(gave up after 15 attempts over [%d%.]+ m?s, in 5 rounds%)$",
      of("card_blocked")[1].detail)
  end)

  it("asks again for a stream cut after tokens, each attempt counted once", function()
    local status, of, kinds, stderr = run(project("fake:disconnect_after=2"))
    assert.equal(1, status, stderr)
    assert.equal(7, requests("disconnect_after=2")) -- 1 + model_retries at once, then 4 later rounds
    local now = retries(of, "engine")
    assert.equal(2, #now)
    for i, ev in ipairs(now) do
      assert.same({ "M-1", "senior_developer", "transient", i, i, i }, { ev.card, ev.seat, ev.class, ev.attempts, ev.retry, ev.delay_ms })
      assert.is_nil(ev.error:find("gave up", 1, true))
    end
    assert.is_true(now[2].elapsed_ms >= now[1].elapsed_ms)
    local rounds = retries(of, "round")
    assert.equal(4, #rounds)
    for i, ev in ipairs(rounds) do assert.same({ i, 2 + i, 25 << (i - 1) }, { ev.round, ev.retry, ev.delay_ms }) end
    -- each of the 7 calls failed after tokens arrived: said, each with what it was charged
    local want = { "turn_start" }
    for i = 1, 7 do
      want[#want + 1] = "model_failure"
      if i < 7 then want[#want + 1] = "model_retry" end
    end
    for _, k in ipairs { "card_blocked", "turn_end" } do want[#want + 1] = k end
    assert.same(want, kinds)
    for _, f in ipairs(of("model_failure")) do
      assert.same({ "M-1", "transient", 1 }, { f.card, f.class, f.step })
      assert.is_true(math.tointeger(f.completion_tokens) ~= nil and f.completion_tokens > 0, cjson.encode(f))
    end
    assert.matches("%(gave up after 7 attempts over [%d%.]+ m?s, in 5 rounds%)$", of("card_blocked")[1].detail)
  end)

  it("blocks the card after the client's retries and the later rounds when nothing listens on this machine, and says what to do", function()
    local status, of, kinds, stderr = run(project("ollama:qwen2.5-coder:7b"), { OLLAMA_HOST = "127.0.0.1:1" })
    assert.equal(1, status, stderr)
    assert.equal(0, #retries(of, "engine")) -- the client retried; the engine asks again only later
    assert.equal(4, #retries(of, "round"))
    assert.same({ "connection refused", "connection refused" }, { retries(of, "client")[1].why, retries(of, "client")[5].why })
    assert.same({ "card_blocked", "turn_end" }, { kinds[#kinds - 1], kinds[#kinds] })
    assert.matches("^The model failed %(transient%): provider ollama: nothing is listening at http://127%.0%.0%.1:1 "
      .. "%(connection refused%)%. Is Ollama running%? Start it with 'ollama serve', or check OLLAMA_HOST, "
      .. "which points here%. %(gave up after 10 attempts over [%d%.]+ m?s, in 5 rounds%)$", of("card_blocked")[1].detail)
  end)
end)
