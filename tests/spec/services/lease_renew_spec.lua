-- orket.engine.lease's renewal against cards claimed while it waits: on PostgreSQL the
-- renewal's statement and its read of namesakes yield, and the worker's scheduling round
-- may claim a card meanwhile. The renewal did not find that card (it was not leased when
-- its statement ran), and said it lost: the turn then started on it stopped at its first
-- effect (lease:fresh false), while the worker held the lease in the store. And what the
-- keeper knows of a card whose lease ended without its release (check, forget).
local lease_mod = require "orket.engine.lease"

-- a keeper over a store whose operations are the test's: tx runs its function at once
local function keeper(ops)
  local events = {}
  local l = lease_mod.new { db = { tx = function(_, fn) return fn() end }, worker = "w1", ttl_ms = 60000,
    on_event = function(ev) events[#events + 1] = ev end }
  l.ops = ops
  return l, events
end

describe("orket.engine.lease's renewal", function()
  it("judges only the cards marked before it began: one claimed while it waited stays held and fresh", function()
    local l, events
    local ops = {
      claim = function(_, o)
        local out = {}
        for i, id in ipairs(o.ids) do out[i] = { card = id } end
        return out
      end,
      -- the store renews what the worker held when the statement ran: A, not C (B is gone)
      renew = function() return { A = true } end,
      -- while the renewal's next read waits, the scheduling round claims C
      namesakes = function()
        l:claim(7, { "C" }, 1)
        return 0
      end,
    }
    l, events = keeper(ops)
    l:claim(7, { "A", "B" }, 2)
    local lost = l:renew()
    -- B, held before the renewal and not renewed, is lost; C, claimed meanwhile, is not
    assert.same({ B = true }, lost)
    assert.is_true(l:fresh("A"))
    assert.is_true(l:fresh("C"))
    assert.is_false(l:fresh("B"))
    assert.same({ { type = "lease_lost", card = "B", run_id = 7 } }, events)
    -- the next renewal, begun after C's claim, judges C as any card
    ops.renew = function() return { A = true } end
    ops.namesakes = function() return 0 end
    assert.same({ C = true }, l:renew())
    assert.is_false(l:fresh("C"))
  end)

  -- The store dates a lease from the statement that sets it; the keeper's deadline was
  -- dated from the statement's answer, so a statement that waited (the store's write lock,
  -- a loaded server) put the worker's deadline for effects past the store's lease.
  it("dates its deadline from before the statement that claimed or renewed the lease", function()
    local rt = require "orket.c.runtime"
    local function slow(result)
      return function()
        local t = rt.now()
        while rt.now() - t < 50 do end -- (the statement's wait)
        return result
      end
    end
    local l = keeper { claim = slow { { card = "A" } }, renew = slow { A = true }, namesakes = function() return 0 end }
    local before = rt.now()
    l:claim(7, { "A" }, 1)
    assert.is_true(l.held.A - before < 48025, "claim: " .. (l.held.A - before)) -- (not after the 50 ms wait)
    before = rt.now()
    assert.same({}, l:renew())
    assert.is_true(l.held.A - before < 48025, "renewal: " .. (l.held.A - before))
    assert.is_true(l:fresh("A"))
  end)

  -- check cleared only the card's deadline when it found the lease gone: its mark and run
  -- stayed, one entry per such card for the worker's life, and the run's end released it
  -- again in the store
  it("forgets a card whose lease a step's check found gone, its mark and run too", function()
    local released = {}
    local l = keeper {
      claim = function(_, o)
        local out = {}
        for i, id in ipairs(o.ids) do out[i] = { card = id } end
        return out
      end,
      holds = function(_, card) return card ~= "A" end,
      release = function(_, _, card) released[#released + 1] = card end,
    }
    l:claim(7, { "A", "B" }, 2)
    assert.same({ false, lease_mod.LOST }, { pcall(l.check, l, "A") })
    l:check("B")
    assert.same({ nil, nil, nil }, { l.held.A, l.marked.A, l.run_of.A })
    assert.same({ true, 7 }, { l:fresh("B"), l.run_of.B })
    l:release_run(7)
    assert.same({ "B" }, released)
    -- forget, as a turn's end whose transaction released the lease calls it: nothing kept,
    -- the store not asked
    l:claim(8, { "C" }, 1)
    l:forget("C")
    assert.same({ nil, nil, nil }, { l.held.C, l.marked.C, l.run_of.C })
    assert.same({ "B" }, released)
  end)

  -- On PostgreSQL the renewal runs on a connection of its own: its statement waits on the
  -- row lock of a turn's end that releases the card's lease, and can be answered before the
  -- turn that committed the release forgets the card. It said that card lost (lease_lost)
  -- though its turn had ended normally.
  it("says nothing lost of a card whose release a turn's end is committing, and judges it again after a rollback", function()
    local released = {}
    local ops = {
      claim = function(_, o)
        local out = {}
        for i, id in ipairs(o.ids) do out[i] = { card = id } end
        return out
      end,
      release = function(_, _, card) released[#released + 1] = card end,
      renew = function() return { B = true } end, -- A's row is gone: its release committed
      namesakes = function() return 0 end,
    }
    local l, events = keeper(ops)
    l:claim(7, { "A", "B" }, 2)
    l:release_with("A") -- inside the turn's end transaction
    assert.same({ "A" }, released)
    assert.same({}, l:renew())
    assert.same({}, events)
    l:forget("A") -- the turn saw its commit
    assert.same({ nil, nil, nil, nil }, { l.held.A, l.marked.A, l.run_of.A, l.releasing.A })
    assert.same({}, l:renew())
    -- a release rolled back leaves the lease held: a renewal that does not find it says so
    l:release_with("B")
    l:kept("B")
    ops.renew = function() return {} end
    assert.same({ B = true }, l:renew())
    assert.same({ { type = "lease_lost", card = "B", run_id = 7 } }, events)
  end)
end)

-- A fence held by another process (an effect under way, or a worker stalled in it) is
-- waited for without end: the wait is said, naming the card, the fence and its holder.
describe("orket.engine.lease's fence", function()
  it("says a long wait for a card's fence, and takes it once freed", function()
    local rt = require "orket.c.runtime"
    local lockfile = require "orket.c.lockfile"
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "/.orket'"))
    local l = keeper({})
    l.fence_say_ms, l.poll_ms = 60, 20
    l:mark("C", rt.now())
    -- the first take makes the folder; the fence is then held by "another" holder
    l:fence("C", dir):release()
    local other = assert(lockfile.acquire(dir .. "/.orket/effects/C.lock"))
    local said = {}
    l.say = function(msg)
      said[#said + 1] = msg
      other:release() -- the holder's effect ends
    end
    local t0 = rt.now()
    local lk = l:fence("C", dir)
    assert.truthy(lk)
    lk:release()
    assert.is_true(rt.now() - t0 >= 60)
    assert.equal(1, #said)
    assert.matches("card C waits for its effect's fence (" .. dir .. "/.orket/effects/C.lock), held by", said[1], 1, true)
    assert.matches("stalled", said[1], 1, true)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
