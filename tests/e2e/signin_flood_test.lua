-- Password sign-ins at once (docs/serve.md Limits): the checks run on the thread pool, two
-- at a time, the others waiting their turn, while the server goes on answering. Several
-- wrong passwords and unknown names, sent together with the right password, each get their
-- own answer (the right one is not lost in the queue), /health is answered meanwhile, and
-- the failed ones are counted against the address as before.
local H = require "tests.helpers"
local task = require "orket.task"

local JSON = "Content-Type: application/json"
local PASS = "correct horse battery"

describe("password sign-ins sent together", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("are each answered as alone, with the server answering others meanwhile", function()
    local dir = H.example("webapp")
    H.ok(H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    -- one address, so the failed-authentication burst is raised to let every try be
    -- checked: seven, and none back during the test
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "auth_fail_burst=7,auth_fail_rate=0.0001" } })
    local tries = {
      { "alice", "wrong one" }, { "nobody", "wrong one" }, { "alice", PASS }, { "alice", "wrong two" },
      { "ghost", PASS }, { "alice", "wrong three" }, { "nobody", "wrong two" },
    }
    local tasks = {}
    for i, t in ipairs(tries) do
      tasks[i] = task.spawn(function()
        local st, doc = H.request(s, "POST", "/v1/session", { JSON }, { user = t[1], password = t[2] })
        return st, doc
      end)
    end
    local health = task.spawn(function()
      local got = {}
      for i = 1, 5 do got[i] = H.fetch { url = s.url .. "/health", total_timeout_ms = 20000 } end
      return got
    end)
    for i, t in ipairs(tries) do
      local done, st, doc = tasks[i]:join()
      assert.is_true(done, st)
      if t[1] == "alice" and t[2] == PASS then
        assert.equal(200, st)
        assert.equal("alice", doc.user.name)
      else
        assert.equal(401, st)
        assert.equal("the name or password is not valid", doc.error.message)
      end
    end
    local done, got = health:join()
    assert.is_true(done, got)
    assert.same({ 200, 200, 200, 200, 200 }, got)
    -- six failed, each counted: the seventh is still checked, the eighth refused
    assert.equal(401, (H.request(s, "POST", "/v1/session", { JSON }, { user = "alice", password = "wrong four" })))
    assert.equal(429, (H.request(s, "POST", "/v1/session", { JSON }, { user = "alice", password = "wrong five" })))
    assert.equal(0, s.stop())
  end)

  it("keep one address to its limit when its tries come together", function()
    -- the limit is asked before the check and again after it: tries waiting on the pool
    -- meanwhile cannot all pass the first question before any failure is counted
    local dir = H.example("webapp")
    H.ok(H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "auth_fail_burst=2,auth_fail_rate=0.0001" } })
    local tasks = {}
    for i = 1, 8 do
      tasks[i] = task.spawn(function()
        return (H.request(s, "POST", "/v1/session", { JSON }, { user = "alice", password = "wrong " .. i }))
      end)
    end
    local seen = { [401] = 0, [429] = 0 }
    for i = 1, 8 do
      local done, st = tasks[i]:join()
      assert.is_true(done, st)
      seen[st] = (seen[st] or 0) + 1
    end
    assert.same({ [401] = 2, [429] = 6 }, seen)
    assert.equal(0, s.stop())
  end)
end)
