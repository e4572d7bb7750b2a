-- orket worker's run budget shared: budgets.tokens_per_run counts the tokens every worker
-- of the run spent, not each worker's own. Three workers on one run stop together near the
-- budget: at most their turns in flight past it, not three budgets' worth. On PostgreSQL
-- (tests/with_pg.lua) the project names a fresh database of the test server.
local H = require "tests.helpers"
local cjson = require "cjson"
local backends = require "tests.backends"
local project_mod = require "orket.project"
local WP = require "tests.worker_project"

local BUDGET = 900
local WORKERS = 3
local CONCURRENCY = 3 -- turns at once in each worker: their reads of the run's total overlap

describe("orket worker's run budget", function()
  local fake
  setup(function() fake = require("tests.fake_server").start() end)
  teardown(function()
    H.kill_servers()
    if fake then fake.stop() end
    H.cleanup()
  end)

  it("counts every worker's tokens against budgets.tokens_per_run", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = 60 } }, slow = 20,
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    -- each turn in flight may be one call past the budget when it looks
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
      .. string.format("\nconcurrency = %d\nbudgets.tokens_per_run = %d\n", CONCURRENCY, BUDGET))
    local pids = {}
    for k = 1, WORKERS do pids[k] = WP.start_worker(dir, k, { start = "W", lease_ms = 2500 }) end
    H.wait_for(function()
      orket.sleep(50)
      for _, pid in ipairs(pids) do if H.alive(pid) then return false end end
      return true
    end, "the workers to stop", 1200)
    local said = ""
    for k = 1, WORKERS do said = said .. (H.read(dir .. "/w" .. k .. ".err") or "") end
    assert.equal("", said)
    local db = assert(project_mod.open_store(dir, false))
    local rows = assert(db:rows("SELECT COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0) AS n FROM turns"))
    db:close()
    local total, most = 0, 0
    for _, r in ipairs(rows) do
      total = total + r.n
      most = math.max(most, r.n)
    end
    assert.is_true(most > 0, "no call was recorded")
    -- each worker checks the run's total before each call: once it is spent, none calls
    -- again; a worker's call in flight when another's spends it is the most one goes past
    assert.is_true(total >= BUDGET, "the run stopped before its budget: " .. total)
    assert.is_true(total < BUDGET + WORKERS * CONCURRENCY * most,
      string.format("the workers spent %d tokens against a run budget of %d (at most %d a call)", total, BUDGET, most))
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal("stalled", runs[1].status)
    local out = ""
    for k = 1, WORKERS do out = out .. (H.read(dir .. "/w" .. k .. ".out") or "") end
    assert.matches("budgets.tokens_per_run = " .. BUDGET, out, 1, true)
  end)
end)
