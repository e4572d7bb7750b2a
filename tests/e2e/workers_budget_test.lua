-- orket worker's run budget shared: budgets.tokens_per_run counts the tokens every worker
-- of the run spent, not each worker's own. Three workers on one run stop together near the
-- budget: at most their turns in flight past it, not three budgets' worth. And
-- budgets.tokens_per_card counts what every worker spent on the card: a card whose lease
-- went from one worker to another and back is not given a budget more by each. On
-- PostgreSQL (tests/with_pg.lua) the project names a fresh database of the test server.
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

  it("counts every worker's tokens on a card against budgets.tokens_per_card", function()
    local CALL, CARD_BUDGET, LEASE_MS = 100, 2000, 1000 -- tokens of each call (99 + 1)
    local dir = WP.project(fake.url, { epics = { { id = "C", n = 1 } },
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    -- the coder calls its tool at every step and never hands in: only the card's token
    -- budget ends its turns, about 0.3 s a call
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format([[

team.senior_developer.model = "fake:chunks=1,nolog,prompt=%d,tool=append_line,arg_note=x,first_byte_ms=300"
budgets = { turns_per_card = 50, steps_per_turn = 100, tokens_per_card = %d }
limits = { calls_run = 1000 }
]], CALL - 1, CARD_BUDGET))
    local db -- one connection for the whole test: a new one each look is slow on a busy machine
    -- the card's tokens as its budget counts them: its turns and its charged failures (a
    -- call answered after its worker lost the card is one, class lease_lost)
    local function spent()
      db = db or assert(project_mod.open_store(dir, false))
      return (require("orket.store.journal_reads").card_tokens_since(db, 1, "C-1", 0))
    end
    local function signal(sig, pid) assert(os.execute(string.format("kill -%s %d", sig, pid))) end
    -- whether a process holds the store's write lock (PostgreSQL: the journal's advisory
    -- lock in this database; SQLite: a write transaction), asked without waiting
    local function store_held()
      spent()
      if backends.name() == "pg" then
        return assert(db:row([[SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())]])).n > 0
      end
      assert(db:exec("PRAGMA busy_timeout = 0"))
      if not db:exec("BEGIN IMMEDIATE") then return true end
      assert(db:exec("ROLLBACK"))
      return false
    end
    -- stops pid outside a transaction: one stopped inside would hold the store from the
    -- worker that takes its card over (which gives up after the lock's timeout). Asked
    -- twice, apart: on PostgreSQL a transaction's BEGIN sent just before the stop is read by
    -- its server process later, on a loaded machine after the first look, and the lock is
    -- then held by the stopped worker.
    local function stop(pid)
      for _ = 1, 200 do
        signal("STOP", pid)
        if not store_held() then
          orket.sleep(200)
          if not store_held() then return end
        end
        signal("CONT", pid)
        orket.sleep(5)
      end
      error("the worker held the store at every stop")
    end
    local function until_spent(n, pid, k, what)
      H.wait_for(function()
        orket.sleep(20)
        local got = spent()
        assert(H.alive(pid), string.format("%s ended at %d tokens: %s", what, got, H.read(dir .. "/w" .. k .. ".err") or ""))
        return got >= n
      end, what, 3000)
    end
    -- w1 spends a quarter of the budget, then stops (its lease runs out); w2 takes the card
    -- over and spends up to half of it, then is killed; w1 goes on with the card again
    -- (w2's lease run out): the card has half of its budget left, not three quarters (what
    -- w1 did not spend itself). Each stop is 10 calls (3 s) short of the budget.
    local pids = {}
    finally(function()
      for _, pid in ipairs(pids) do
        if H.alive(pid) then os.execute(string.format("kill -CONT %d; kill -KILL %d", pid, pid)) end
      end
      if db then db:close() end
    end)
    local w1 = WP.start_worker(dir, 1, { start = "C", lease_ms = LEASE_MS })
    pids[1] = w1
    until_spent(CARD_BUDGET // 4, w1, 1, "w1's calls")
    stop(w1)
    local w2 = WP.start_worker(dir, 2, { lease_ms = LEASE_MS })
    pids[2] = w2
    until_spent(CARD_BUDGET // 2, w2, 2, "w2's calls")
    signal("KILL", w2)
    signal("CONT", w1)
    H.wait_for(function()
      orket.sleep(50)
      return not H.alive(w1)
    end, "w1 to stop", 1200)
    assert.equal("", H.read(dir .. "/w1.err") or "")
    local total = spent()
    -- w1's call in flight as it stopped is charged, not recorded as a turn (its lease was
    -- w2's by then): the budget is passed by at most the call in flight as it ran out
    assert.is_true(total >= CARD_BUDGET, "the card stopped before its budget: " .. total)
    assert.is_true(total <= CARD_BUDGET + CALL, string.format("the workers spent %d tokens on the card against "
      .. "budgets.tokens_per_card = %d", total, CARD_BUDGET))
    local out = H.read(dir .. "/w1.out") or ""
    assert.matches("budgets.tokens_per_card", out, 1, true)
  end)
end)
