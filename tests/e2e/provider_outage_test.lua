-- `orket run` against a provider that is down for longer than the client's retries, rate
-- limits with a Retry-After, or asks for a wait the budgets do not allow (docs/engine.md,
-- "Model failures"; docs/llm.md, the retry policy). The fake server fails a model's first N
-- requests (fail=STATUS,times=N), so an outage ends after a count of requests, not a time.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local fake = F.model_server(teardown)

local GUARD = "tool=update_issue_status,arg_status=done"

-- A one-issue project: the coder on `coder` (the fake's settings), the reviewer answering
-- done at once. retry: the provider's retry table's text; budgets: the budgets table's.
local function project(coder, retry, budgets)
  return fake.one_issue(string.format([[
models = { default = "fake:%s", providers = {
  fake = { kind = "openai", base_url = %q, retry = %s },
} }
team = { senior_developer = { roles = { "coder" } },
         integrity_guard = { roles = { "integrity_guard" }, model = "fake:%s" } }
budgets = %s
]], coder, fake.url .. "/v1", retry or "{ max_attempts = 2, base_ms = 1, max_ms = 5 }", GUARD,
    budgets or "{ model_retries = 2, backoff_ms = 1 }"))
end

-- `orket WORDS --json` -> status, of(type) -> its events in order, every event, stderr
local function run(dir, words)
  local r = H.orket((words or "run M") .. " --json", { cwd = dir })
  local events = {}
  for line in r.stdout:gmatch("[^\n]+") do events[#events + 1] = cjson.decode(line) end
  local function of(t)
    local out = {}
    for _, ev in ipairs(events) do if ev.type == t then out[#out + 1] = ev end end
    return out
  end
  return r.status, of, events, r.stderr
end

local requests = fake.requests

describe("orket run against a provider that is down", function()
  before_each(function() fake.reset() end)
  after_each(H.cleanup)

  it("asks again in later rounds when an outage outlasts the client's retries, and the card gets done", function()
    -- 5 failures: the client's 2 attempts, 2 again in the first later round, then 1 and an answer
    local coder = "fail=503,times=5,tool=update_issue_status,arg_status=code_review"
    local status, of, _, stderr = run(project(coder))
    assert.equal(0, status, stderr)
    assert.equal(6, requests(coder))
    assert.equal(0, #of("card_blocked"))
    assert.equal("done", of("run_end")[1].status)
    -- the engine's rounds said as they begin: the round, of how many, the wait (25 x backoff_ms, doubling)
    local rounds = {}
    for _, ev in ipairs(of("model_retry")) do
      if ev.round then rounds[#rounds + 1] = { ev.round, ev.rounds, ev.delay_ms, ev.class } end
    end
    assert.same({ { 1, 4, 25, "transient" }, { 2, 4, 50, "transient" } }, rounds)
    -- each failed call said once, as a call (the third one's retry by the client answered);
    -- nothing charged for them
    assert.equal(2, #of("model_failure"))
    for _, f in ipairs(of("model_failure")) do assert.is_nil(f.prompt_tokens or f.cost) end
  end)

  it("blocks the card once the later rounds run out, and a resume takes it back with its budgets", function()
    -- 10 failures: the client's 2 attempts in each of the 5 rounds; the 11th request answers
    local coder = "fail=503,times=10,tool=update_issue_status,arg_status=code_review"
    local dir = project(coder)
    local status, of, _, stderr = run(dir)
    assert.equal(1, status, stderr)
    assert.equal(10, requests(coder))
    local blocked = of("card_blocked")[1]
    assert.equal("system", blocked.reason)
    assert.matches("^The model failed %(transient%): provider fake %(openai, http://127%.0%.0%.1:%d+/v1%), model "
      .. "[^:]+: HTTP 503: .* %(gave up after 10 attempts over [%d%.]+ m?s, in 5 rounds%)$", blocked.detail)
    -- the stall report's next step is the resume, which keeps the card's budgets
    local stuck = of("stall")[1].cards[1]
    assert.equal("once the model answers again, orket resume 1 takes it back (orket retry M-1 also starts its "
      .. "budgets over)", stuck.next)
    local rstatus, rof, _, rerr = run(dir, "resume 1")
    assert.equal(0, rstatus, rerr)
    assert.same({ { "M-1", "transient" } }, { { rof("card_taken_back")[1].card, rof("card_taken_back")[1].class } })
    assert.equal("done", rof("run_end")[1].status)
    -- taken back by the engine, not retried: no retry event resets its budgets; its next turn is its second
    local log = H.orket("log 1 --json", { cwd = dir }).stdout
    assert.is_nil(log:find('"kind":"retry"', 1, true))
    local turns = {}
    for _, ev in ipairs(rof("turn_start")) do if ev.card == "M-1" then turns[#turns + 1] = ev.turn end end
    assert.same({ 2, 3 }, turns) -- the card's turns count on: its second, then the review
    assert.matches("taken back by the resume of run 1: it was blocked when the model failed %(transient%)",
      H.orket("card M-1", { cwd = dir }).stdout)
  end)

  -- a resume of a run left to the workers is worked by a worker, which took back nothing
  it("takes the card back on a resume of a run left to the workers, as on one of its own", function()
    local coder = "fail=503,times=10,tool=update_issue_status,arg_status=code_review"
    local dir = project(coder)
    local r = H.orket("worker --start M --drain", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches('"type":"card_blocked"', r.stdout, 1, true)
    assert.matches("once the model answers again, orket resume 1 takes it back", r.stdout, 1, true)
    local rstatus, rof, _, rerr = run(dir, "resume 1")
    assert.equal(0, rstatus, rerr)
    assert.equal(1, #rof("card_taken_back"))
    assert.equal("M-1", rof("card_taken_back")[1].card)
    assert.equal("done", rof("run_end")[1].status)
  end)

  it("does not take back a card a model refused (bad_request) on resume", function()
    local coder = "fail=400"
    local dir = project(coder)
    assert.equal(1, (run(dir)))
    local status, of = run(dir, "resume 1")
    assert.equal(1, status)
    assert.equal(0, #of("card_taken_back"))
    assert.equal(1, requests(coder)) -- never asked again, in a round or on resume
  end)
end)

describe("orket run against a provider that rate limits", function()
  before_each(function() fake.reset() end)
  after_each(H.cleanup)

  it("says the client's own waits as they begin: why, for how long, which attempt", function()
    local coder = "fail=429,times=1,retry_after_ms=300,tool=update_issue_status,arg_status=code_review"
    local status, of, _, stderr = run(project(coder, "{ max_attempts = 3, base_ms = 1, max_ms = 2000 }"))
    assert.equal(0, status, stderr)
    local waits = {}
    for _, ev in ipairs(of("model_retry")) do if ev.by == "client" then waits[#waits + 1] = ev end end
    assert.equal(1, #waits)
    local w = waits[1]
    assert.same({ "M-1", "senior_developer", "rate_limited", "HTTP 429 Retry-After", 1, 3, 1, 300, 300 },
      { w.card, w.seat, w.class, w.why, w.attempt, w.max_attempts, w.attempts, w.delay_ms, w.retry_after_ms })
    assert.matches("HTTP 429: ", w.error)
    assert.is_nil(w.round)
  end)

  it("does not ask again inside a Retry-After longer than retry.max_ms, and says so", function()
    -- 200 s: longer than the engine's later rounds wait too, so the card is blocked at once
    local coder = "fail=429,retry_after=200"
    local status, of, _, stderr = run(project(coder, "{ max_attempts = 4, base_ms = 1, max_ms = 2000 }"))
    assert.equal(1, status, stderr)
    assert.equal(1, requests(coder)) -- not 4 inside the server's window
    assert.equal(0, #of("model_retry"))
    assert.matches("^The model failed %(rate_limited%): .*HTTP 429: .* %(1 attempt in [%d%.]+ m?s; the server asked to "
      .. "wait 200%.0 s %(Retry%-After%), more than models%.providers%.fake%.retry%.max_ms allows %(2%.0 s%): not asked "
      .. "again before then%); not asked again later: the server's wait is longer than the 120%.0 s the engine waits "
      .. "at most$", of("card_blocked")[1].detail)
  end)

  it("waits a Retry-After past retry.max_ms in a later round, once, when the budgets allow", function()
    local coder = "fail=429,times=1,retry_after=1,tool=update_issue_status,arg_status=code_review"
    local t0 = os.time()
    local status, of, _, stderr = run(project(coder, "{ max_attempts = 4, base_ms = 1, max_ms = 5 }"))
    assert.equal(0, status, stderr)
    assert.equal(2, requests(coder)) -- the 429, then the answer a second later
    local r = of("model_retry")[1]
    assert.same({ 1, 1000, "rate_limited" }, { r.round, r.delay_ms, r.class })
    assert.is_true(os.time() - t0 >= 1)
  end)

  it("names the budget that leaves no time to wait, and the wait the server asked", function()
    local coder = "fail=429,retry_after=20"
    local status, of, _, stderr = run(project(coder, "{ max_attempts = 4, base_ms = 1, max_ms = 30000 }",
      "{ model_retries = 2, backoff_ms = 1, wall_ms_per_card = 5000 }"))
    assert.equal(1, status, stderr)
    assert.equal(1, requests(coder))
    local detail = of("card_blocked")[1].detail
    assert.matches("%(1 attempt in [%d%.]+ m?s; no time left to retry: the server asked to wait 20%.0 s %(Retry%-After%), "
      .. "and budgets%.wall_ms_per_card = 5000 leaves [%d%.]+ m?s%)$", detail)
    assert.is_nil(detail:find("timeout_ms", 1, true))
  end)
end)
