-- orket.engine.lease's renewal runs outside any transaction (a worker stalled inside one
-- kept its lease rows locked from every taker: tests/e2e/lease_renewal_stall_test.lua).
-- On PostgreSQL the scheduling round's claim is in a write transaction that may still be
-- open when the renewal begins: a card marked by that claim before the renewal began is
-- judged by it, and a lone UPDATE, whose snapshot is taken before it waits, did not see the
-- card's lease and said it lost. The renewal first waits for the write transactions open
-- then (orket.store.pg.leases: renew). Run on both backends (tests/backends.lua): on SQLite
-- a transaction cannot wait on the loop, so the claim has committed before the renewal.
local H = require "tests.helpers"
local backends = require "tests.backends"
local lease_mod = require "orket.engine.lease"
local task = require "orket.task"
local rt = require "orket.c.runtime"

describe("orket.engine.lease's renewal outside a transaction", function()
  after_each(function() H.cleanup() end)

  it("finds a card claimed in a write transaction still open when it began, once that commits", function()
    local db = backends.open_store()
    local pg = db.backend == "pg"
    assert(db:tx(function()
      assert(db:run("INSERT INTO runs (id, target, kind, started_at, data) VALUES (1, 'E', 'epic', "
        .. (pg and "now()" or "orket_now()") .. ", '{\"workers\":true}')"))
      assert(db:run("INSERT INTO cards (id, type, status, created_at, updated_at) VALUES ('C-1', 'issue', 'ready', "
        .. (pg and "now(), now())" or "orket_now(), orket_now())")))
      return true
    end))
    local events = {}
    local l = lease_mod.new { db = db, worker = "w1", ttl_ms = 60000,
      on_event = function(ev) events[#events + 1] = ev end }
    -- the scheduling round: it claims C-1, then goes on with its other statements a while
    local round = task.spawn(function()
      return assert(db:tx(function()
        assert.same({ "C-1" }, l:claim(1, { "C-1" }, 1))
        if pg then assert(db:query("SELECT pg_sleep(0.3)")) end
        return true
      end))
    end)
    local renewal = task.spawn(function()
      while not l.held["C-1"] do rt.sleep(2) end -- (C-1 marked, its transaction open on PostgreSQL)
      local before = l.held["C-1"]
      rt.sleep(5)
      return l:renew(), before
    end)
    assert.is_true((round:join()))
    local ok, lost, before = renewal:join()
    assert.is_true(ok, tostring(lost))
    assert.same({}, lost)
    assert.same({}, events)
    assert.is_true(l:fresh("C-1"))
    assert.is_true(l.held["C-1"] > before, "renewed: its deadline moved on")
    l:close()
    db:close()
  end)
end)
