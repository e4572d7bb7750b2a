-- A PostgreSQL that stops answering (frozen: a paused machine, a dropped network) for 35 s
-- while a worker works on it, four turns at once: the worker rides it out, no traceback, no
-- card blocked, every card done once, its effect applied once. What it meets depends on the
-- machine's timing: a write's wait for the journal's lock that the server's own clock ends
-- the moment it goes on (waited for once more: pgdb), a turn waiting for a connection of
-- the pool (the server answers a new one by the time it is asked: waited for once more,
-- pgpool). The store's own spec (store_unanswered_spec) shows each timeout alone.
-- The test's own server (tests.pg), frozen with SIGSTOP.
local H = require "tests.helpers"
local PG = require "tests.pg"
local WP = require "tests.worker_project"

describe("a worker on a PostgreSQL that stops answering", function()
  local fake
  setup(function() fake = require("tests.fake_server").start() end)
  teardown(function()
    H.kill_servers()
    if fake then fake.stop() end
    H.cleanup()
  end)

  it("waits for the store and carries on, no card blocked, every card done once", function()
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    local server = PG.start()
    local pid
    finally(function()
      if pid and H.alive(pid) then os.execute("kill -KILL " .. pid) end
      server.stop()
    end)
    local N = 8
    local dir = WP.project(fake.url, { epics = { { id = "F", n = N } }, slow = 300, store_url = server.url })
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\nconcurrency = 4\n")
    pid = WP.start_worker(dir, 1, { start = "F", lease_ms = 60000 })
    H.wait_for(function()
      orket.sleep(50)
      return (H.read(dir .. "/w1.out") or ""):find('"type":"model"', 1, true) ~= nil
    end, "the worker's first model call", 1200)
    -- past the 30 s of the journal lock's timeout and of a turn's wait for a connection
    server.freeze()
    orket.sleep(35000)
    server.thaw()
    H.wait_for(function()
      orket.sleep(100)
      return not H.alive(pid)
    end, "the worker to end", 1800)
    local err = H.read(dir .. "/w1.err") or ""
    assert.is_nil(err:find("internal error", 1, true), err)
    assert.is_nil(err:find("traceback", 1, true), err)
    local board = WP.board_state(dir)
    for i = 1, N do
      local id = "F-" .. i
      assert.equal("done", board[id].status, id .. ": " .. table.concat((getmetatable(board[id]) or { lines = {} }).lines, "\n"))
      assert.equal(1, board[id].done, id)
      -- the card's effect (a line appended by its tool) applied once
      assert.equal(id .. "\n", H.read(dir .. "/workspace/" .. id .. ".line"), id)
    end
  end)

  -- The primary frozen and its standby promoted, store.url naming both (the frozen one first):
  -- the statements the worker had sent to the old primary fail once a check of the server
  -- finds no answer (orket.c.pg's liveness_ms), so the worker says store_lost, and its new
  -- connections go past the frozen host to the new primary. They waited for as long as the
  -- old primary stayed frozen, and a new connection never got past it.
  it("moves to a promoted standby while its primary stays frozen, every card done once", function()
    local ok, why = PG.available()
    if not ok then return pending("skipped: " .. why) end
    -- (synchronous commits to the standby: a commit the worker was told of survives the failover)
    local server = PG.start { commits_survive_kill = true, sync_standby = true }
    local standby
    local pid
    finally(function()
      if pid and H.alive(pid) then os.execute("kill -KILL " .. pid) end
      server.thaw()
      if standby then standby.stop() end
      server.stop()
    end)
    standby = PG.standby(server)
    local N = 8
    local url = PG.hosts(server, server, standby) .. "&connect_timeout=2"
    local dir = WP.project(fake.url, { epics = { { id = "V", n = N } }, slow = 300, store_url = url })
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\nconcurrency = 4\n")
    pid = WP.start_worker(dir, 1, { start = "V", lease_ms = 60000 })
    H.wait_for(function()
      orket.sleep(50)
      return (H.read(dir .. "/w1.out") or ""):find('"type":"model"', 1, true) ~= nil
    end, "the worker's first model call", 1200)
    server.freeze()
    standby.promote()
    -- (about 90 s; it waited for as long as the old primary stayed frozen)
    H.wait_for(function()
      orket.sleep(100)
      return not H.alive(pid)
    end, "the worker to end with its primary frozen", 800)
    local out, err = H.read(dir .. "/w1.out") or "", H.read(dir .. "/w1.err") or ""
    assert.is_nil(err:find("internal error", 1, true), err)
    assert.is_nil(err:find("traceback", 1, true), err)
    assert.truthy(out:find('"type":"store_lost"', 1, true), out)
    local board = WP.board_state(dir)
    for i = 1, N do
      local id = "V-" .. i
      assert.equal("done", board[id].status, id .. ": " .. table.concat((getmetatable(board[id]) or { lines = {} }).lines, "\n"))
      assert.equal(1, board[id].done, id)
      assert.equal(id .. "\n", H.read(dir .. "/workspace/" .. id .. ".line"), id)
    end
  end)
end)
