-- orket.engine.runlease's renewal against a run dropped and kept again while it waited on
-- the store (a stop and a resume of the run in one server): the renewal's statement may
-- have run between the drop's DELETE and the new take, and not found the lease; the run
-- kept anew was then said lost, and stopped, though its new lease was this process's.
local uv = require "luv"
local leases = require "orket.store.leases"
local runlease = require "orket.engine.runlease"

-- runs the loop until done() or 2 s: the keeper's timer is unreferenced, so a referenced
-- one keeps the loop turning
local function turn_until(done)
  local tick = uv.new_timer()
  tick:start(5, 5, function() end)
  local deadline = uv.now() + 2000
  while not done() and uv.now() < deadline do uv.run("once") end
  tick:close()
end

describe("orket.engine.runlease's renewal", function()
  local saved = {}
  before_each(function()
    saved = { ttl = runlease.TTL_MS, renew = leases.run_renew, drop = leases.run_drop }
  end)
  after_each(function()
    runlease.TTL_MS, leases.run_renew, leases.run_drop = saved.ttl, saved.renew, saved.drop
  end)

  it("judges a run by the keep it asked about: one dropped and kept again meanwhile is not lost", function()
    runlease.TTL_MS = 60 -- renewed every 20 ms
    local db = { tx = function(_, fn) return fn() end }
    local lost, renewals = {}, 0
    leases.run_drop = function() end
    leases.run_renew = function(_, _, _, ids)
      renewals = renewals + 1
      if renewals == 1 then
        assert.same({ 1 }, ids)
        -- while the statement waits: the run is stopped, then resumed here
        runlease.drop(db, 1)
        runlease.keep(db, 1, function(id) lost[#lost + 1] = "second keep of " .. id end)
        return {} -- the statement ran between the two: no lease of run 1
      end
      local held = {}
      for _, id in ipairs(ids) do held[id] = true end
      return held
    end
    runlease.keep(db, 1, function(id) lost[#lost + 1] = "first keep of " .. id end)
    turn_until(function() return renewals >= 3 end)
    runlease.drop(db, 1)
    assert.is_true(renewals >= 3, "the renewals ran")
    assert.same({}, lost)
  end)

  it("still says lost a run whose renewal did not find its lease", function()
    runlease.TTL_MS = 60
    local db = { tx = function(_, fn) return fn() end }
    local lost = {}
    leases.run_drop = function() end
    leases.run_renew = function() return {} end
    runlease.keep(db, 2, function(id) lost[#lost + 1] = id end)
    turn_until(function() return #lost > 0 end)
    runlease.drop(db, 2)
    assert.same({ 2 }, lost)
  end)
end)
