-- Two workers given the same name (orket worker --name, or HOST:PID alike in two
-- containers) are two holders of the leases (orket.engine.lease): one never renews, uses or
-- keeps the other's lease, while events and listings show the name alone. On the backend
-- under test (tests.backends: SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local B = require "tests.backends"
local lease_mod = require "orket.engine.lease"
local leases = require "orket.store.leases"

local function open()
  local db = B.open_store()
  local imports = require "orket.store.imports"
  assert(db:tx(function()
    imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 1, seat = "developer" })
    for i = 1, 3 do
      imports.insert_card(db, { id = "E-" .. i, type = "issue", parent = "E", name = "i" .. i, priority = 1,
        seat = "developer" })
    end
    assert(db:run("UPDATE cards SET status = 'ready' WHERE type = 'issue'"))
    return true
  end))
  local run = assert(db:record_run { target = "E", kind = "epic", data = { workers = true } })
  return db, run
end

describe("lease holders on " .. B.name(), function()
  after_each(H.cleanup)

  it("are the keeper, not its name: two workers named alike never both hold a card", function()
    local db, run = open()
    local events = {}
    local function keeper(ttl)
      return lease_mod.new { db = db, worker = "same", ttl_ms = ttl or 60000,
        on_event = function(ev) events[#events + 1] = ev end }
    end
    local a, b = keeper(), keeper()
    local ids = { "E-1", "E-2", "E-3" }
    local function claim(k, limit) return assert(db:tx(function() return k:claim(run, ids, limit) end)) end
    assert.same({ "E-1", "E-2" }, claim(a, 2))
    -- b sees a's cards as another worker's: it gets only the free one
    assert.same({ "E-3" }, claim(b, 3))
    assert.same({ "E-3" }, claim(b, 3)) -- its own, listed again
    -- each says once that another process holds leases under its name
    b:renew()
    b:renew()
    local said = {}
    for _, ev in ipairs(events) do if ev.type == "worker_name_shared" then said[#said + 1] = ev end end
    assert.same({ { type = "worker_name_shared", name = "same", leases = 2 } }, said)
    assert.equal(1, leases.namesakes(db, a.worker))
    assert.equal(0, leases.namesakes(db, lease_mod.new { db = db, worker = "sam", ttl_ms = 60000 }.worker))
    assert.is_true(assert(db:tx(function() return a:others_busy(run) end)))
    -- b cannot write for a's card, nor keep it by renewing
    local ok, err = db:tx(function() b:check("E-1"); return true end)
    assert.is_nil(ok)
    assert.matches("lease lost", tostring(err))
    assert(db:tx(function() a:check("E-1"); return true end))
    assert.same({ ["E-3"] = true }, assert(db:tx(function() return leases.renew(db, b.worker, 60000) end)))
    -- a's release is a's alone
    assert(db:tx(function() b:release(nil); return true end))
    assert(db:tx(function() a:check("E-2"); return true end))
    -- listings and take-overs show the name
    local by = {}
    for _, l in ipairs(leases.live(db, run)) do by[l.card] = l.worker end
    assert.same({ ["E-1"] = "same", ["E-2"] = "same" }, by)
    local c = keeper(30)
    assert.same({ "E-3" }, claim(c, 3))
    orket.sleep(60)
    assert.same({ "E-3" }, claim(b, 3))
    assert.same({ type = "lease_taken_over", card = "E-3", from = "same", run_id = run }, events[#events])
    assert.equal("same", a.name)
    assert.matches("^same#%x+$", a.worker)
    assert.are_not.equal(a.worker, b.worker)
    for _, k in ipairs { a, b, c } do k:close() end
    db:close()
  end)

  it("name_of gives the name back from a holder, and leaves another text as it is", function()
    assert.equal("host:12", leases.name_of("host:12#0123456789abcdef"))
    assert.equal("a#b", leases.name_of("a#b#0123456789abcdef"))
    assert.equal("w1", leases.name_of("w1"))
    assert.equal("x#12", leases.name_of("x#12"))
  end)
end)
