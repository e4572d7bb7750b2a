-- orket.engine.runset: the runs one worker works side by side, over engines faked here
-- (each claims one card, as a run's round does, and ends when told).
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local runset = require "orket.engine.runset"
local lease_mod = require "orket.engine.lease"
local leases = require "orket.store.leases"

describe("a worker's runs side by side", function()
  after_each(H.cleanup)

  -- an engine whose run goes on until stopped[id] (its stop sets it), and while held[id]
  -- (a stop the test only looks at: the run must still be live after it)
  local function engine(dir, stopped, id, held)
    local e = { dir = dir }
    function e.execute() while not stopped[id] or (held and held[id]) do orket.sleep(5) end end
    function e.stop() stopped[id] = true end
    function e.close_all() end
    return e
  end

  it("drops the worker's leases on a run's cards when the run ends, and keeps the other runs'", function()
    -- a run that ends with a card still in progress (a full disk fails it) left the card
    -- leased; the worker renewed that lease with its other runs', and another worker's
    -- run of the same board waited for it forever
    local dir = H.tmpdir()
    local db = F.fixture(dir .. "/o.db", { { id = "E-1", summary = "one" }, { id = "E-2", summary = "two" } })
    local r1 = assert(db:record_run { target = "E-1", kind = "issue", data = { workers = true } })
    local r2 = assert(db:record_run { target = "E-2", kind = "issue", data = { workers = true } })
    local keeper = lease_mod.new { db = db, worker = "w1", ttl_ms = 60000 }
    local gate, claimed = {}, {}
    local function engine(card, wait)
      local e = { dir = dir }
      function e.execute(_, id)
        assert(db:tx(function() return #keeper:claim(id, { card }, 1) == 1 end))
        claimed[card] = true
        -- run 1 ends only once run 2 holds its card: nothing orders run 2's claim before
        -- run 1's end (on PostgreSQL it may wait for a connection of its own)
        while not claimed["E-2"] do orket.sleep(5) end
        while wait and not gate.open do orket.sleep(5) end
        return "failed"
      end
      function e.stop() gate.open = true end
      function e.close_all() end
      return e
    end
    local set = runset.new { db = db, keeper = keeper, join = function() return true end, leave = function() end,
      open = function(row) return engine(row.id == r1 and "E-1" or "E-2", row.id == r2) end }
    assert.is_true(set:start { id = r1 })
    assert.is_true(set:start { id = r2 })
    -- (its leases go after the run leaves set.live: on PostgreSQL the release waits on the server)
    H.wait_for(function() return set.live[r1] == nil and #leases.live(db) == 1 end, "run 1 to end")
    local live = leases.live(db)
    assert.equal(1, #live)
    assert.equal("E-2", live[1].card)
    set:stop_all()
    set:wait_all()
    assert.equal(0, set.count)
    keeper:close()
    db:close()
  end)

  -- A stop and a resume between two of the worker's looks left the run running when it
  -- looked: the worker went on with the open the stop ended. The stop's run_end, journaled
  -- after the open, stops it; one journaled before the open, or a run another worker
  -- concluded stalled, does not.
  it("stops an open whose run was stopped and resumed between two looks, and only that", function()
    local dir = H.tmpdir()
    local db = F.fixture(dir .. "/o.db", { { id = "E-1", summary = "one" }, { id = "E-2", summary = "two" } })
    local store_runs = require "orket.store.runs"
    local ops = lease_mod.ops(db)
    local r1 = assert(db:record_run { target = "E-1", kind = "issue", data = { workers = true } })
    local r2 = assert(db:record_run { target = "E-2", kind = "issue", data = { workers = true } })
    -- stopped and resumed before the worker opens it: not this open's stop
    assert.is_true(db:finish_run(r2, "interrupted", { running = true }))
    assert.is_true(ops.requeue(db, r2))
    local stopped, held = {}, {}
    local set = runset.new { db = db, join = function() return true end, leave = function() end,
      open = function(row) return engine(dir, stopped, row.id, held) end,
      journal = { last = function() return math.tointeger(require("orket.store.journal_reads").latest_id(db)) end,
        stops = function(from, to) return store_runs.stops_between(db, from, to) end } }
    assert.is_true(set:start { id = r1 })
    assert.is_true(set:start { id = r2 })
    local queued = { { id = r1 }, { id = r2 } }
    local function running() return "running" end
    set:stop_ended(queued, running)
    assert.same({}, stopped)
    -- a run whose row is gone (the store restored from an older backup) is no longer queued:
    -- ended here, where its next claim broke the store's reference to it
    local function gone(id) return id == r1 and "gone" or "running" end
    -- (held: live after its stop, which is looked at and undone below; without it the run
    -- ended while the look's statement waited on PostgreSQL)
    held[r1] = true
    set:stop_ended({ { id = r2 } }, gone)
    assert.same({ [r1] = true }, stopped)
    stopped[r1] = nil
    set.live[r1].ended = nil
    -- another worker concludes r2 stalled, and it is resumed: worked on here
    assert.is_true(db:finish_run(r2, "stalled", { running = true }))
    assert.is_true(ops.requeue(db, r2))
    -- r1 stopped and resumed at once: both are running when the worker looks
    assert.is_true(db:finish_run(r1, "interrupted", { running = true }))
    assert.is_true(ops.requeue(db, r1))
    set:stop_ended(queued, running)
    assert.same({ [r1] = true }, stopped)
    held[r1] = nil
    stopped[r2] = true
    set:wait_all()
    db:close()
  end)

  -- A stop and a resume that both landed while the worker joined the run were taken for a
  -- stop of its open: stopped at the next look, it put a second run_end on stdout for one
  -- run. The open is fresh (nothing of it ran before them); a stop alone then is not opened.
  it("opens afresh a run stopped and resumed while it joined, and not one stopped then", function()
    local dir = H.tmpdir()
    local db = F.fixture(dir .. "/o.db", { { id = "E-1", summary = "one" }, { id = "E-2", summary = "two" } })
    local store_runs = require "orket.store.runs"
    local ops = lease_mod.ops(db)
    local r1 = assert(db:record_run { target = "E-1", kind = "issue", data = { workers = true } })
    local r2 = assert(db:record_run { target = "E-2", kind = "issue", data = { workers = true } })
    local stopped, opened, left = {}, {}, {}
    local set = runset.new { db = db, leave = function(h) left[h] = true end,
      join = function(row)
        -- r1: stopped and resumed as the worker joins it; r2: stopped
        assert.is_true(db:finish_run(row.id, "interrupted", { running = true }))
        if row.id == r1 then assert.is_true(ops.requeue(db, row.id)) end
        return row.id
      end,
      open = function(row) opened[row.id] = true; return engine(dir, stopped, row.id) end,
      journal = runset.journal(db) }
    assert.is_true(set:start { id = r1 })
    assert.is_false(set:start { id = r2 })
    assert.same({ [r2] = true }, left)
    assert.is_nil(set.live[r2])
    local function status(id) return store_runs.get(db, id).status end
    set:stop_ended({ { id = r1 } }, status)
    assert.same({}, stopped)
    -- a stop (and resume) after the open's read is still this open's: its mark is not past it
    assert.is_true(db:finish_run(r1, "interrupted", { running = true }))
    assert.is_true(ops.requeue(db, r1))
    set:stop_ended({ { id = r1 } }, status)
    assert.same({ [r1] = true }, stopped)
    set:wait_all()
    db:close()
  end)

  -- The run's status and the journal's end were read once the run was opened by two
  -- statements: a stop and a resume committed between them (another process's `orket runs
  -- stop`, then `orket resume`) gave the open, read as running, a mark from before its stop,
  -- and the next look stopped it (a second run_end). One statement reads both, in one
  -- snapshot on either backend; that it is one is what a spec can show without timing.
  it("reads the run's status and the journal's end in one statement once it opened the run", function()
    local dir = H.tmpdir()
    local db = F.fixture(dir .. "/o.db", { { id = "E-1", summary = "one" } })
    local r1 = assert(db:record_run { target = "E-1", kind = "issue", data = { workers = true } })
    -- db, its statements counted while `counting` holds
    local counting, statements = false, {}
    local counted = setmetatable({}, { __index = db })
    for _, m in ipairs { "row", "rows", "run", "exec", "query" } do
      if db[m] then
        counted[m] = function(_, sql, ...)
          if counting then statements[#statements + 1] = sql end
          return db[m](db, sql, ...)
        end
      end
    end
    local stopped = {}
    local set = runset.new { db = db, join = function() return true end, leave = function() end,
      open = function(row)
        counting = true
        return engine(dir, stopped, row.id)
      end, journal = runset.journal(counted) }
    assert.is_true(set:start { id = r1 })
    counting = false
    assert.equal(1, #statements, table.concat(statements, "\n"))
    assert.truthy(statements[1]:find("FROM runs", 1, true) and statements[1]:find("FROM events", 1, true))
    set:stop_all()
    set:wait_all()
    db:close()
  end)

  -- A run stopped while the worker joined it was opened anyway when the journal's end could
  -- not be read: the status alone says it is stopped.
  it("does not open a run stopped while it joined, the journal's end unread", function()
    local stopped, left, reads = {}, {}, nil
    local set = runset.new { db = { journal_error = function() return nil end },
      join = function(row) return row.id end, leave = function(h) left[h] = true end,
      open = function(row) return engine(H.tmpdir(), stopped, row.id) end,
      -- (read before the join; lost once it joined)
      journal = { last = function()
          if reads then error("pg: server closed the connection unexpectedly") end
          reads = 1
          return 10
        end,
        stops = function() return {} end, status = function() return "interrupted" end } }
    assert.is_false(set:start { id = 1 })
    assert.same({ [1] = true }, left)
    assert.equal(0, set.count)
  end)

  -- The worker polls every few hundred ms; the stops' question scans the journal's events,
  -- and was asked at every poll even with no event since the last.
  it("asks for stops only once the journal's end moved past its opens' marks", function()
    local dir, last, asked = H.tmpdir(), 10, {}
    local stopped = {}
    local set = runset.new { db = { journal_error = function() return nil end },
      join = function() return true end, leave = function() end, open = function(row) return engine(dir, stopped, row.id) end,
      journal = { last = function() return last end,
        stops = function(from, to) asked[#asked + 1] = { from, to }; return {} end } }
    assert.is_true(set:start { id = 1 })
    local queued = { { id = 1 } }
    local function running() return "running" end
    set:stop_ended(queued, running)
    set:stop_ended(queued, running)
    assert.same({}, asked)
    last = 12
    set:stop_ended(queued, running)
    set:stop_ended(queued, running)
    assert.same({ { 10, 12 } }, asked)
    set:stop_all()
    set:wait_all()
  end)

  it("leaves a run it could not ask about (the store lost) for later, without stopping the worker", function()
    local set = runset.new { db = { journal_error = function() return "gone" end },
      join = function() error("pg: server closed the connection unexpectedly") end, leave = function() end,
      open = function() error("not reached") end }
    assert.is_false(set:start { id = 1 })
    assert.is_nil(set.failed)
    assert.equal(0, set.count)
  end)
end)
