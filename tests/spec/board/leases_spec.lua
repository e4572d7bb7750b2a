-- orket.store.leases and its PostgreSQL twin orket.store.pg.leases, the same cases on both
-- backends: claims in the order given, live leases of others skipped, expired ones taken
-- over, renewals that do not revive a lease taken over but keep a lapsed one nobody took,
-- release, and claimers contending at once
-- (separate processes on one SQLite file; tasks on separate connections to PostgreSQL)
-- never holding the same card.
local H = require "tests.helpers"
local PG = require "tests.pg"
local store = require "orket.store"
local leases = require "orket.store.leases"
local pgleases = require "orket.store.pg.leases"

local N = 40 -- cards of each board

-- A backend: its leases module, tx(fn(q)) and a seeded board of N ready issues C-1..C-N
-- (C-N+1 is done) under run 1.
local function sqlite_backend()
  local dir = H.tmpdir()
  local path = dir .. "/orket.db"
  local db = assert(store.open(path, { create = true }))
  assert(db:tx(function()
    assert(db:run("INSERT INTO runs (id, target, kind, started_at, data) VALUES (1, 'E', 'epic', orket_now(), '{\"workers\":true}')"))
    for i = 1, N + 1 do
      assert(db:run([[INSERT INTO cards (id, type, status, created_at, updated_at) VALUES (?, 'issue', ?,
        orket_now(), orket_now())]], "C-" .. i, i <= N and "ready" or "done"))
    end
    return true
  end))
  return {
    name = "SQLite", mod = leases, path = path, db = db,
    tx = function(fn) return db:tx(function() return fn(db) end) end,
    -- the transaction's time taken (its first use), then ms spent in the transaction
    linger = function(q, ms)
      assert(q:row("SELECT orket_now() AS t"))
      os.execute(string.format("sleep %.3f", ms / 1000))
    end,
    -- worker's leases ended a minute ago (as a step of the clock leaves them)
    lapse = function(q, worker)
      return q:run("UPDATE leases SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds') WHERE worker = ?",
        worker)
    end,
    close = function() db:close() end,
  }
end

local server
local function pg_backend()
  local pool = require("orket.store.pgpool").new { url = server.url, size = 6 }
  assert(pool:tx(function(tx) return tx:exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public") end))
  assert(require("orket.store.pg_schema").migrate(pool))
  assert(pool:tx(function(tx)
    assert(tx:query("INSERT INTO runs (id, target, kind, started_at, data) VALUES (1, 'E', 'epic', now(), '{\"workers\":true}')"))
    for i = 1, N + 1 do
      assert(tx:query([[INSERT INTO cards (id, type, status, created_at, updated_at) VALUES ($1, 'issue', $2,
        now(), now())]], "C-" .. i, i <= N and "ready" or "done"))
    end
    return true
  end))
  return {
    name = "PostgreSQL", mod = pgleases, pool = pool,
    tx = function(fn) return pool:tx(fn) end,
    linger = function(q, ms) assert(q:query(string.format("SELECT pg_sleep(%.3f)", ms / 1000))) end, -- (now(): BEGIN's time)
    lapse = function(q, worker)
      return q:query("UPDATE leases SET expires_at = now() - interval '60 seconds' WHERE worker = $1", worker)
    end,
    close = function() pool:close() end,
  }
end

local function ids(from, to)
  local out = {}
  for i = from, to do out[#out + 1] = "C-" .. i end
  return out
end

local function cards_of(claimed)
  local out = {}
  for i, c in ipairs(claimed) do out[i] = c.card end
  return out
end

local function cases(make)
  local b
  before_each(function() b = make() end)
  after_each(function() b.close() end)

  local function claim(worker, list, limit, ttl)
    return assert(b.tx(function(q)
      return b.mod.claim(q, { worker = worker, run = 1, ids = list, limit = limit, ttl_ms = ttl or 60000 })
    end))
  end

  it("claims up to limit cards in the order given, skipping cards not workable or leased by another", function()
    assert.same({ "C-3", "C-1" }, cards_of(claim("w1", { "C-3", "C-1", "C-2" }, 2)))
    -- C-41 is done, C-3 is w1's: w2 gets the next ones in its order
    assert.same({ "C-2", "C-4" }, cards_of(claim("w2", { "C-41", "C-3", "C-2", "C-4", "C-5" }, 2)))
    -- a card a worker holds is listed again (and renewed), never twice
    assert.same({ "C-1", "C-3", "C-5" }, cards_of(claim("w1", { "C-1", "C-2", "C-3", "C-5" }, 5)))
    assert.same({}, claim("w1", { "nope" }, 5))
    -- a run no longer in the store (restored from an older backup) claims nothing, where its
    -- lease's insert broke the reference to runs and stopped the worker with SQL's error
    assert.same({}, assert(b.tx(function(q)
      return b.mod.claim(q, { worker = "w9", run = 99, ids = { "C-6", "C-7" }, limit = 2, ttl_ms = 60000 })
    end)))
    local live = b.tx(function(q) return b.mod.live(q, 1) end)
    local by = {}
    for _, l in ipairs(live) do by[l.card] = l.worker end
    assert.same({ ["C-1"] = "w1", ["C-2"] = "w2", ["C-3"] = "w1", ["C-4"] = "w2", ["C-5"] = "w1" }, by)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", live[1].expires_at)
    assert.equal(2, b.tx(function(q) return b.mod.others(q, 1, "w1") end))
    assert.equal(3, b.tx(function(q) return b.mod.others(q, 1, "w2") end))
  end)

  it("lets another worker take over an expired lease, which the old holder can neither renew nor use", function()
    assert.same({ "C-1", "C-2" }, cards_of(claim("w1", ids(1, 2), 2, 1)))
    orket.sleep(20)
    local got = claim("w2", ids(1, 1), 5)
    assert.same({ { card = "C-1", taken_from = "w1" } }, got)
    assert.is_false(b.tx(function(q) return b.mod.holds(q, "C-1", "w1") end))
    -- C-2 lapsed too but nobody took it: still w1's
    assert.same({ ["C-2"] = true }, b.tx(function(q) return b.mod.renew(q, "w1", 60000, ids(1, 2)) end))
    assert.is_true(b.tx(function(q) return b.mod.holds(q, "C-1", "w2") end))
    assert.same({ ["C-1"] = true }, b.tx(function(q) return b.mod.renew(q, "w2", 60000) end))
  end)

  -- A wall clock stepped forward past the lease (NTP, a VM resumed) lapses every lease at
  -- once: a lone worker's renewal then found none and lost every card, and the model call
  -- of each turn in flight was charged, dropped and asked again.
  it("keeps a lapsed lease nobody took over its holder's: renewed and checked as live", function()
    assert.same({ "C-1", "C-2", "C-3" }, cards_of(claim("w1", ids(1, 3), 3, 60000)))
    -- the leases' end passed, as after a step of the clock
    assert(b.tx(function(q) return b.lapse(q, "w1") end))
    assert.same({}, b.tx(function(q) return b.mod.live(q, 1) end))
    assert.is_true(b.tx(function(q) return b.mod.holds(q, "C-1", "w1") end))
    -- only the cards asked for (the keeper's own): C-3, which it forgot, is not renewed
    assert.same({ ["C-1"] = true, ["C-2"] = true },
      b.tx(function(q) return b.mod.renew(q, "w1", 60000, { "C-1", "C-2", "C-9" }) end))
    assert.same({}, b.tx(function(q) return b.mod.renew(q, "w1", 60000, {}) end))
    local live = {}
    for _, l in ipairs(b.tx(function(q) return b.mod.live(q, 1) end)) do live[#live + 1] = l.card end
    assert.same({ "C-1", "C-2" }, live)
    -- another worker sees C-1 live again, and takes the lapsed C-3
    assert.same({ { card = "C-3", taken_from = "w1" } }, claim("w2", ids(1, 3), 3))
    assert.is_false(b.tx(function(q) return b.mod.holds(q, "C-3", "w1") end))
    assert.same({ ["C-1"] = true, ["C-2"] = true }, b.tx(function(q) return b.mod.renew(q, "w1", 60000) end))
  end)

  -- A scheduling round claims late in its transaction (after its earlier cards were
  -- prepared; on PostgreSQL after the wait for the journal's lock), and a renewal may wait
  -- as long for that lock. Dated from the transaction's time, the store's lease ended before
  -- the worker's own deadline (orket.engine.lease), which started an effect on a card
  -- another worker had already taken over and recovered: the effect ran twice.
  it("dates a lease from the statement that claims or renews it, not from its transaction's start", function()
    local function late(fn)
      return assert(b.tx(function(q)
        b.linger(q, 1500)
        return fn(q)
      end))
    end
    -- claimed 1.5 s into its transaction: it ends 2.5 s after the claim, not 1 s after it
    assert.same({ "C-1" }, cards_of(late(function(q)
      return b.mod.claim(q, { worker = "w1", run = 1, ids = { "C-1" }, ttl_ms = 2500 })
    end)))
    -- renewed 1.5 s into its transaction (1.5 s after the claim): it ends 2.5 s after that
    assert.same({ ["C-1"] = true }, late(function(q) return b.mod.renew(q, "w1", 2500) end))
    orket.sleep(1700)
    assert.is_true(b.tx(function(q) return b.mod.holds(q, "C-1", "w1") end))
    assert.same({}, cards_of(claim("w2", { "C-1" }, 1)))
  end)

  it("releases one card or every card of a worker", function()
    claim("w1", ids(1, 3), 3)
    assert.equal(1, b.tx(function(q) return b.mod.release(q, "w1", "C-2") end))
    assert.same({ "C-2" }, cards_of(claim("w2", ids(1, 3), 3)))
    assert.equal(2, b.tx(function(q) return b.mod.release(q, "w1") end))
    assert.equal(0, b.tx(function(q) return b.mod.release(q, "w1") end))
    assert.same({ "C-1", "C-3" }, cards_of(claim("w3", ids(1, 3), 3)))
  end)

  it("lists the runs left to the workers", function()
    assert.same({ { id = 1, target = "E" } }, b.tx(function(q) return b.mod.queued(q) end))
    assert.equal(1, b.tx(function(q) return b.mod.queued_for(q, "E") end))
    assert.is_nil(b.tx(function(q) return b.mod.queued_for(q, "F") end))
  end)

  it("refuses bad arguments by name", function()
    assert.has_error(function() b.mod.claim({}, {}) end,
      "bad argument #2 to 'claim' ({worker=, run=, ids=, limit=, ttl_ms=} expected)")
    assert.has_error(function() b.mod.claim({}, { worker = "w", ids = {}, ttl_ms = 0 }) end,
      "bad argument to 'claim' (ttl_ms: positive integer expected)")
  end)
  return function() return b end
end

-- Every card claimed exactly once across all claimers, all of them claimed.
local function assert_once(lists)
  local seen, total = {}, 0
  for w, list in pairs(lists) do
    for _, id in ipairs(list) do
      assert(not seen[id], id .. " claimed by " .. tostring(seen[id]) .. " and " .. tostring(w))
      seen[id] = w
      total = total + 1
    end
  end
  assert.equal(N, total)
end

describe("orket.store.leases on SQLite", function()
  local get = cases(sqlite_backend)
  teardown(H.cleanup)

  it("never lets claimers in separate processes hold the same card", function()
    local b = get()
    local script = H.tmpdir() .. "/claimer.lua"
    H.write(script, [[
      local store, leases = require "orket.store", require "orket.store.leases"
      local db = assert(store.open(arg[1]))
      local list = {}
      for i = 1, 40 do list[i] = "C-" .. i end
      while true do
        local got = assert(db:tx(function()
          return leases.claim(db, { worker = arg[2], run = 1, ids = list, limit = 2, ttl_ms = 60000 })
        end))
        for _, c in ipairs(got) do io.write(c.card, "\n") end
        -- a claim lists what the worker holds already: drop those before claiming again
        assert(db:tx(function()
          for _, c in ipairs(got) do db:run("UPDATE leases SET worker = worker || '.done' WHERE card_id = ?", c.card) end
          return true
        end))
        if #got == 0 then break end
      end
      db:close()
    ]])
    local procs = {}
    for w = 1, 4 do
      procs[w] = io.popen(string.format("%s lua %s %s w%d", H.quote(H.BIN), H.quote(script), H.quote(b.path), w))
    end
    local lists = {}
    for w, p in ipairs(procs) do
      lists[w] = {}
      for line in p:lines() do lists[w][#lists[w] + 1] = line end
      assert(p:close())
    end
    assert_once(lists)
  end)
end)

local available, why = PG.available()
if not available then
  io.write("\ntests/spec/board/leases_spec.lua: PostgreSQL part skipped: ", why, "\n")
  return
end

describe("orket.store.pg.leases on PostgreSQL", function()
  setup(function() server = PG.start() end)
  teardown(function()
    if server then server.stop() end
    H.cleanup()
  end)
  local get = cases(pg_backend)

  it("wakes every task idling on one lease by its one listener, none of them polling", function()
    -- the second task used to wait for the first one's listener by sleeping 10 ms at a time
    local b = get()
    local db = assert(require("orket.store").open_url(server.url))
    local lease = require("orket.engine.lease").new { db = db, worker = "w1", ttl_ms = 60000 }
    local rt = require "orket.c.runtime"
    local sleep, naps = rt.sleep, 0
    rt.sleep = function(ms)
      if debug.getinfo(2, "S").short_src:match("engine/lease%.lua$") then naps = naps + 1 end
      return sleep(ms)
    end
    local ok, err = pcall(function()
      local woken = 0
      local idlers = {}
      for i = 1, 2 do idlers[i] = orket.spawn(function() lease:idle(2000) woken = woken + 1 end) end
      orket.sleep(300)
      assert.equal(0, woken)
      assert(b.tx(function(tx) return tx:query("NOTIFY orket_events, '1'") end))
      for i = 1, 2 do assert.is_true((idlers[i]:join())) end
      assert.equal(2, woken)
    end)
    rt.sleep = sleep
    lease:close()
    db:close()
    assert(ok, err)
    assert.equal(0, naps)
  end)

  it("never lets claimers on separate connections hold the same card (FOR UPDATE SKIP LOCKED)", function()
    local b = get()
    local list = ids(1, N)
    local tasks, lists, connected, claimed = {}, {}, 0, 0
    for w = 1, 4 do
      lists[w] = {}
      tasks[w] = orket.spawn(function()
        -- each claimer on a connection of its own before any claims (the pool connects on demand)
        assert(b.pool:tx(function(tx)
          assert(tx:query("SELECT 1"))
          connected = connected + 1
          while connected < 4 do orket.sleep(1) end
          return true
        end))
        local first = true
        while true do
          local got = assert(b.pool:tx(function(tx)
            local got = pgleases.claim(tx, { worker = "w" .. w, run = 1, ids = list, limit = 2, ttl_ms = 60000 })
            if first then
              -- every claimer's first claim stays open until all four have claimed: four
              -- transactions hold their cards' row locks at once, whatever the scheduling
              first = false
              claimed = claimed + 1
              while claimed < 4 do orket.sleep(1) end
            end
            -- hand the cards on (as a finished card would be): the claim lists held cards again
            for _, c in ipairs(got) do
              assert(tx:query("UPDATE leases SET worker = worker || '.done' WHERE card_id = $1", c.card))
            end
            return got
          end))
          if #got == 0 then return end
          for _, c in ipairs(got) do lists[w][#lists[w] + 1] = c.card end
          orket.sleep(0)
        end
      end)
    end
    for w = 1, 4 do assert.is_true((tasks[w]:join())) end
    assert_once(lists)
    for w = 1, 4 do
      assert.is_true(#lists[w] > 0, "every claimer got cards while the others held theirs: "
        .. #lists[1] .. " " .. #lists[2] .. " " .. #lists[3] .. " " .. #lists[4])
    end
  end)
end)
