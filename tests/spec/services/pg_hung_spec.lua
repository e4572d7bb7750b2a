-- A statement already sent to a PostgreSQL that then stops answering (frozen: a paused
-- machine, SIGSTOP; a dropped network) fails in bounded time as the store's loss, rather
-- than wait for as long as the server stays so: after liveness_ms without an answer the
-- pool's connection has its server checked with a connection of its own to the same host,
-- and when that one is not had within the host's deadline the statement fails ETIMEDOUT,
-- SQLSTATE 08006, its connection given up (closed, never reused). A server that answers
-- the check leaves a slow statement (pg_sleep, a lock waited for) running. After a
-- promotion the next connection goes to the new primary. PostgreSQL only (tests/pg.lua).
local H = require "tests.helpers"
local PG = require "tests.pg"

local available, why = PG.available()
if not available then
  describe("a statement on a server that stops answering", function() pending("skipped: " .. why) end)
  return
end

local pgpool = require "orket.store.pgpool"
local store = require "orket.store"
local task = require "orket.task"
local uv = require "luv"

-- f() in a task, waited for at most ms: its results, the time it took; on no answer in
-- time, thaw() (so the test does not hang on the unfixed code) and a failure
local function bounded(ms, thaw, f)
  local t0 = uv.hrtime()
  local r
  local t = task.spawn(function() r = table.pack(f()) end)
  local ok = pcall(H.wait_for, function() return r ~= nil end, "the statement", ms // 10)
  local took = (uv.hrtime() - t0) / 1e6
  if not ok then
    thaw()
    t:join()
    error(string.format("no answer within %d ms on the frozen server", ms), 2)
  end
  return took, table.unpack(r, 1, r.n)
end

describe("a statement on a server that stops answering", function()
  local server

  setup(function() server = PG.start() end)
  teardown(function()
    if server then server.stop() end
    H.cleanup()
  end)

  it("fails in bounded time, as the store's loss, and the pool works again once the server is back", function()
    local pool = pgpool.new { url = server.url, size = 1, liveness_ms = 300, connect_timeout_ms = 800 }
    finally(function() server.thaw() pool:close() end)
    local before = assert(pool:row("SELECT pg_backend_pid() AS pid")).pid -- an idle connection, pooled
    server.freeze()
    local ms, rows, err, code, state = bounded(15000, server.thaw, function() return pool:query("SELECT 1 AS v") end)
    assert.is_nil(rows)
    assert.is_true(ms < 4000, tostring(ms))
    assert.same({ "ETIMEDOUT", "08006" }, { code, state }, err)
    assert.matches("^pg: no answer from " .. server.dir:gsub("%p", "%%%0") .. " for %d+ ms, nor to a new connection to "
      .. "it within 800 ms: the server is taken for gone %(the connection is given up%)$", err)
    assert.same({ size = 1, idle = 0, busy = 0 }, pool:stats())
    server.thaw()
    local row = assert(pool:row("SELECT pg_backend_pid() AS pid, 1 AS v"))
    assert.equal(1, row.v)
    assert.not_equal(before, row.pid) -- the given-up connection was not reused
  end)

  it("is noted by the store, so a worker says store_lost", function()
    local db = assert(store.open_url(server.url, { size = 1, liveness_ms = 300, connect_timeout_ms = 800 }))
    finally(function()
      server.thaw()
      db:close()
    end)
    assert(db:rows("SELECT 1 AS v"))
    server.freeze()
    local _, rows, _, code = bounded(15000, server.thaw, function()
      return db:tx(function() return db:rows("SELECT 1 AS v") end)
    end)
    assert.is_nil(rows)
    assert.equal("ETIMEDOUT", code)
    assert.matches("^PostgreSQL: pg: no answer from .* nor to a new connection to it within 800 ms", db:journal_error())
    server.thaw()
    assert(db:rows("SELECT 1 AS v"))
  end)

  it("leaves a slow statement on a server that answers alone", function()
    local pool = pgpool.new { url = server.url, size = 2, liveness_ms = 200, connect_timeout_ms = 800 }
    finally(function() pool:close() end)
    local rows, err = pool:rows("SELECT pg_sleep(1.5), 7 AS v")
    assert.is_table(rows, err)
    assert.equal(7, rows[1].v)
    -- a lock another connection holds for 1.5 s, waited for
    assert(pool:run("CREATE TABLE IF NOT EXISTS hung_lock (id int)"))
    local held = task.spawn(function()
      return pool:tx(function(tx)
        assert(tx:run("LOCK TABLE hung_lock IN ACCESS EXCLUSIVE MODE"))
        orket.sleep(1500)
        return true
      end)
    end)
    orket.sleep(100)
    local n, lerr = pool:run("INSERT INTO hung_lock VALUES (1)")
    assert.equal(1, n, lerr)
    assert.is_true(select(2, held:join()))
  end)

  it("moves to a promoted standby once the frozen primary's statement has failed", function()
    local standby = PG.standby(server)
    local url = PG.hosts(server, server, standby) .. "&connect_timeout=2"
    local pool = pgpool.new { url = url, size = 1, liveness_ms = 300 }
    finally(function()
      server.thaw()
      pool:close()
      standby.stop()
      -- the old primary, frozen while its standby was promoted, is its own server again
      server.kill()
      server.restart()
    end)
    assert.is_false(assert(pool:row("SELECT pg_is_in_recovery() AS r")).r)
    server.freeze()
    standby.promote()
    local ms, rows, err, code, state = bounded(20000, server.thaw, function()
      return pool:query("SELECT 1 AS v")
    end)
    assert.is_nil(rows)
    assert.is_true(ms < 6000, tostring(ms))
    assert.same({ "ETIMEDOUT", "08006" }, { code, state }, err)
    -- the next connection: past the frozen host (2 s) to the new primary
    local took, row = bounded(20000, server.thaw, function()
      return pool:row("SELECT current_setting('unix_socket_directories') AS d, pg_is_in_recovery() AS r")
    end)
    assert.same({ d = standby.dir, r = false }, row)
    assert.is_true(took < 4000, tostring(took))
  end)
end)
