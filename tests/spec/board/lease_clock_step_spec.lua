-- A wall clock stepped forward past the leases (NTP correcting a drift, a VM resumed) lapses
-- every lease of a worker at once (orket.engine.lease over orket.store.leases). A lone
-- worker then lost every card it held: its turns ended lease_lost, their model calls were
-- charged and asked again. A lapsed lease nobody took over stays its holder's; one another
-- worker took is still lost. On the backend under test (tests.backends: SQLite, or
-- PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local B = require "tests.backends"
local lease_mod = require "orket.engine.lease"

local function open()
  local db = B.open_store()
  local imports = require "orket.store.imports"
  assert(db:tx(function()
    imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 1, seat = "developer" })
    for i = 1, 2 do
      imports.insert_card(db, { id = "E-" .. i, type = "issue", parent = "E", name = "i" .. i, priority = 1,
        seat = "developer" })
    end
    assert(db:run("UPDATE cards SET status = 'ready' WHERE type = 'issue'"))
    return true
  end))
  local run = assert(db:record_run { target = "E", kind = "epic", data = { workers = true } })
  return db, run
end

-- every lease ended a minute ago by the store's clock: what a step of the wall clock leaves
local function lapse_all(db)
  local sql = db.backend == "pg" and "UPDATE leases SET expires_at = now() - interval '60 seconds'"
    or "UPDATE leases SET expires_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds')"
  assert(db:tx(function() return db:run(sql) end))
end

describe("a lease keeper whose leases lapsed by a step of the clock, on " .. B.name(), function()
  after_each(H.cleanup)

  it("keeps the cards nobody took over and loses the one another worker took", function()
    local db, run = open()
    local events = {}
    local function keeper(name)
      return lease_mod.new { db = db, worker = name, ttl_ms = 60000,
        on_event = function(ev) events[#events + 1] = ev end }
    end
    local w1 = keeper("w1")
    assert.same({ "E-1", "E-2" }, assert(db:tx(function() return w1:claim(run, { "E-1", "E-2" }, 2) end)))
    lapse_all(db)
    -- a step's check right after the step, before any renewal: the card is still w1's
    assert(db:tx(function() w1:check("E-1"); return true end))
    assert.same({}, w1:renew())
    assert.is_true(w1:fresh("E-1"))
    assert.same({}, events)
    -- renewed: another worker finds both live
    local w2 = keeper("w2")
    assert.same({}, assert(db:tx(function() return w2:claim(run, { "E-1", "E-2" }, 2) end)))
    -- lapsed again, and this time w2 takes E-2 over: only E-2 is lost to w1
    lapse_all(db)
    assert.same({ "E-2" }, assert(db:tx(function() return w2:claim(run, { "E-2" }, 1) end)))
    assert.same({ ["E-2"] = true }, w1:renew())
    local ok, err = db:tx(function() w1:check("E-2"); return true end)
    assert.is_nil(ok)
    assert.matches("lease lost", tostring(err))
    assert(db:tx(function() w1:check("E-1"); return true end))
    local kinds = {}
    for _, ev in ipairs(events) do kinds[#kinds + 1] = ev.type .. ":" .. ev.card end
    assert.same({ "lease_taken_over:E-2", "lease_lost:E-2" }, kinds)
    db:close()
  end)
end)
