-- A run a server ended while its store could not be written (a full disk): the DELETE of
-- its run lease failed, and the lease, still naming this very process, made the run read
-- "running" and refused its resume here, as "another folder's run", until it lapsed (15 s).
-- The process knows the run ended: its own lease keeps nothing off, the drop is retried
-- until the store takes it, and a resume here takes the run again at once.
local uv = require "luv"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local claims = require "orket.engine.claims"
local runlease = require "orket.engine.runlease"
local leases = require "orket.store.leases"

-- A project folder with a store: epic E (E-1).
local function project()
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
  local db, b = F.fixture(dir .. "/.orket/orket.db", { { id = "E-1", summary = "one" } })
  return dir, db, b
end

-- runs the loop until done() or 3 s (the retry's timer is unreferenced)
local function turn_until(done)
  local tick = uv.new_timer()
  tick:start(5, 5, function() end)
  local deadline = uv.now() + 3000
  while not done() and uv.now() < deadline do uv.run("once") end
  tick:close()
end

local function row_of(db, id) return db:row("SELECT owner FROM run_leases WHERE run_id = ?", id) end

describe("a run lease whose drop the store refused", function()
  local saved
  before_each(function() saved = { drop = leases.run_drop, retry = runlease.RETRY_MS } end)
  after_each(function()
    leases.run_drop, runlease.RETRY_MS = saved.drop, saved.retry
    H.cleanup()
  end)

  -- A run of db's, its lease taken and kept (lost: the keeper's), ended while the disk is
  -- full: the lease's DELETE fails until the returned free() -> id, free
  local function ended_on_full_disk(db, lost)
    local id = assert(db:record_run { target = "E", kind = "epic" })
    assert.is_nil(runlease.take(db, id))
    runlease.keep(db, id, lost)
    local full = true
    leases.run_drop = function(...)
      if full then error(".orket/orket.db: database or disk is full", 0) end
      return saved.drop(...)
    end
    runlease.drop(db, id)
    return id, function() full = false end
  end

  it("keeps no resume here off, is dropped once the store takes writes, and is taken again by a resume", function()
    local dir, db, b = project()
    runlease.RETRY_MS = 20
    -- the run ends while the disk is full: the lease's DELETE fails
    local id, free = ended_on_full_disk(db, function() error("the run was said lost") end)
    assert.equal(runlease.owner(), row_of(db, id).owner, "the lease's row stays while the store refuses its drop")
    -- this process knows the run ended: its own lease is no live run, and no conflict
    assert.is_nil(runlease.holders(db)[id])
    assert.is_nil(claims.is_live(dir, id, db))
    assert.equal("killed", claims.state(dir, db, "running", id))
    assert.is_nil((claims.conflict(dir, db, b, "E")))
    assert.is_true(runlease.ended_here(db, id))
    -- the store takes writes again: the retried drop removes the row
    free()
    turn_until(function() return row_of(db, id) == nil end)
    assert.is_nil(row_of(db, id), "the drop was retried")
    assert.is_false(runlease.ended_here(db, id))
    db:close()
  end)

  it("lets a resume here take the run again while the drop still waits, and then retries it no more", function()
    local dir, db, b = project()
    runlease.RETRY_MS = 20
    local id, free = ended_on_full_disk(db, function() end)
    -- resumed here: taken (the row names this process already), kept, and live again
    assert.is_nil(runlease.take(db, id))
    runlease.keep(db, id, function() error("the resumed run was said lost") end)
    assert.equal(runlease.owner(), runlease.holders(db)[id])
    -- the store back: no retried drop takes the resumed run's lease
    free()
    local t = uv.now()
    turn_until(function() return uv.now() - t > 200 end)
    assert.equal(runlease.owner(), row_of(db, id) and row_of(db, id).owner, "the resumed run's lease was dropped")
    local other, why = claims.conflict(dir, db, b, "E-1")
    assert.equal(id, other and other.id)
    -- the process's own lease is never said to be another folder's run
    assert.matches("(this process), known from its run lease in the store", why, 1, true)
    assert.is_nil(why:find("another folder", 1, true), why)
    runlease.drop(db, id)
    assert.is_nil(row_of(db, id))
    db:close()
  end)

  it("says a lease of another process of this machine may be this folder's, its run ended", function()
    local dir, db, b = project()
    local id = assert(db:record_run { target = "E", kind = "epic" })
    if not runlease.place then return pending("/proc does not say this process's boot and pid namespace") end
    -- a live process of this machine (the test's parent), known by its pid alone
    local other = string.format("%s/%s/%d/00ff", uv.os_gethostname(), runlease.place, uv.os_getppid())
    assert(db:tx(function() return leases.run_take(db, id, other, 60000) == nil end))
    local r, why = claims.conflict(dir, db, b, "E")
    assert.equal(id, r and r.id)
    assert.matches("not from a lock here: another folder's run, or one that process ended while the store could not "
      .. "be written (its lease lapses within 15 s)", why, 1, true)
    db:close()
  end)
end)
