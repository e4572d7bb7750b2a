-- A worker stalled inside its lease renewal (SIGSTOP at ORKET_FAULT=in_renewal, once the
-- renewal's statement was answered), while another worker of the folder comes to take its
-- card over. The renewal ran in a transaction: stopped between its UPDATE and its COMMIT,
-- the worker kept its lease rows locked (and on PostgreSQL the journal's lock; on SQLite
-- the file's write lock) for as long as it stood still, so the second worker's claim waited
-- for it and never took the card over: a stalled worker held its cards against takeover.
-- The renewal is now statements that commit whole: the card is taken over once the lease
-- runs out. CI met this and the case below as a flake of worker_stall_test: its worker,
-- stopped in one task at before_effect, had another task's transaction open (a renewal's,
-- or a scheduling round's: pg_stat_activity showed it idle in transaction, the journal's
-- lock held). On PostgreSQL (tests/with_pg.lua) the project names a fresh database of the
-- test server.
local H = require "tests.helpers"
local uv = require "luv"
local backends = require "tests.backends"
local WP = require "tests.worker_project"

local LEASE_MS = 1000
local WITHIN_MS = 5000 -- past the lease: the taker's start (slow under AddressSanitizer) and its polls

-- `orket worker --drain` in dir in the background, with env (a "K=V ..." prefix) -> pid
local function worker(dir, k, env, start)
  return WP.start_worker(dir, k, { env = env, start = start and "W" or nil, lease_ms = LEASE_MS })
end
local stopped, events = WP.stopped, WP.events

describe("orket worker stalled inside its lease renewal", function()
  local fake
  setup(function() fake = require("tests.fake_server").start() end)
  teardown(function()
    if fake then fake.stop() end
    H.cleanup()
  end)

  it("holds nothing locked: another worker takes its card over once the lease runs out", function()
    -- every model answer takes 3 s: the first worker holds W-1 through several renewals
    local dir = WP.project(fake.url, { epics = { { id = "W", n = 1 } }, slow = 3000,
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local w1 = worker(dir, 1, "ORKET_FAULT=in_renewal:1:stop", true)
    local w2
    finally(function()
      os.execute("kill -KILL " .. w1 .. (w2 and (" " .. w2) or "") .. " 2>/dev/null")
    end)
    H.wait_for(function() return stopped(w1) or not H.alive(w1) end, "the first worker to stall in a renewal", 5000)
    assert.is_true(stopped(w1), H.read(dir .. "/w1.err"))
    local t0 = uv.hrtime()
    w2 = worker(dir, 2, "", false)
    -- the lease, renewed by the stalled renewal at the latest, plus a margin for the second
    -- worker's start and its polls (wait_for counts asks of 10 ms); before, the claim waited
    -- on the stalled worker's locks until its lock or busy timeout, 30 s
    local ok, err = pcall(H.wait_for, function() return #events(dir, 2, "lease_taken_over") > 0 end,
      "the second worker to take W-1 over", (LEASE_MS + WITHIN_MS) // 10)
    if not ok then
      local function tail(f) return (H.read(dir .. "/" .. f) or ""):sub(-2000) end
      error(string.format("%s\n-- w2.out:\n%s\n-- w2.err:\n%s\n-- w1.err:\n%s", tostring(err), tail("w2.out"),
        tail("w2.err"), tail("w1.err")), 0)
    end
    local took = (uv.hrtime() - t0) // 1000000
    assert.is_true(took < LEASE_MS + WITHIN_MS, "taken over after " .. took .. " ms")
    assert.equal("W-1", events(dir, 2, "lease_taken_over")[1].card)
    os.execute("kill -CONT " .. w1)
    H.wait_for(function() return not H.alive(w1) and not H.alive(w2) end, "both workers to end", 10000)
    local state = WP.board_state(dir)
    assert.equal("done", state["W-1"].status, table.concat(getmetatable(state["W-1"]).lines, "\n"))
    assert.equal(1, state["W-1"].done)
    assert.equal("W-1\n", H.read(dir .. "/workspace/W-1.line"))
  end)
end)

-- A worker stalled inside a write transaction (here the scheduling round's, at its claim:
-- ORKET_FAULT=in_claim) held the journal's lock on PostgreSQL, and every other writer
-- waited for it: the second worker could not even join the run. The server now ends a
-- write transaction left idle past the lease (pgdb's idle_tx_limit, asked by the lease
-- keeper), its claim rolled back, and the card is the second worker's. SQLite's
-- transactions never wait on the loop (a stop lands inside one only for its statements'
-- own time), and its store has no server to end one: PostgreSQL only.
describe("orket worker stalled inside a write transaction", function()
  local fake
  setup(function() fake = require("tests.fake_server").start() end)
  teardown(function()
    if fake then fake.stop() end
    H.cleanup()
  end)

  local it_pg = backends.name() == "pg" and it or pending
  it_pg("has the server end it past the lease: another worker works its card", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = 1 } }, slow = 300,
      store_url = backends.fresh_url() })
    local w1 = worker(dir, 1, "ORKET_FAULT=in_claim:1:stop", true)
    local w2
    finally(function()
      os.execute("kill -KILL " .. w1 .. (w2 and (" " .. w2) or "") .. " 2>/dev/null")
    end)
    H.wait_for(function() return stopped(w1) or not H.alive(w1) end, "the first worker to stall in its claim", 5000)
    assert.is_true(stopped(w1), H.read(dir .. "/w1.err"))
    local t0 = uv.hrtime()
    w2 = worker(dir, 2, "", false)
    local ok, err = pcall(H.wait_for, function()
      for _, ev in ipairs(events(dir, 2, "turn_start")) do if ev.card == "W-1" then return true end end
    end, "the second worker to work W-1", (LEASE_MS + WITHIN_MS) // 10)
    if not ok then
      local function tail(f) return (H.read(dir .. "/" .. f) or ""):sub(-2000) end
      error(string.format("%s\n-- w2.out:\n%s\n-- w2.err:\n%s", tostring(err), tail("w2.out"), tail("w2.err")), 0)
    end
    local took = (uv.hrtime() - t0) // 1000000
    assert.is_true(took < LEASE_MS + WITHIN_MS, "worked after " .. took .. " ms")
    os.execute("kill -CONT " .. w1)
    H.wait_for(function() return not H.alive(w1) and not H.alive(w2) end, "both workers to end", 10000)
    local state = WP.board_state(dir)
    assert.equal("done", state["W-1"].status, table.concat(getmetatable(state["W-1"]).lines, "\n"))
    assert.equal(1, state["W-1"].done)
    assert.equal("W-1\n", H.read(dir .. "/workspace/W-1.line"))
  end)
end)
