-- orket.engine.share: a worker's turns at once shared among the runs it works side by side.
local share = require "orket.engine.share"

-- a waker that counts its wakes
local function waker()
  local w = { wakes = 0 }
  function w:wake() self.wakes = self.wakes + 1 end
  return w
end

describe("a worker's share of turns", function()
  it("gives one run every turn, and two runs their fair half each", function()
    local s = share.new(4)
    s:join(1, waker())
    assert.equal(4, s:take(1, 10))
    s:give(1, 4)
    s:join(2, waker())
    assert.equal(2, s:take(1, 10)) -- no more than its half
    assert.equal(0, s:take(1, 1))
    assert.equal(2, s:take(2, 10))
    assert.is_false(s:open(1))
  end)

  it("rounds the fair share up and never passes the limit", function()
    local s = share.new(3)
    for id = 1, 2 do s:join(id, waker()) end
    assert.equal(2, s:take(1, 5))
    assert.equal(1, s:take(2, 5))
    assert.equal(3, s.used)
  end)

  it("gives a freed turn to the run that waited for one, not to the run that freed it", function()
    local s = share.new(2)
    local w = { waker(), waker(), waker() }
    for id = 1, 3 do s:join(id, w[id]) end
    assert.equal(1, s:take(1, 1))
    assert.equal(1, s:take(2, 1))
    assert.equal(0, s:take(3, 1)) -- queued
    assert.is_true(s:queued(3))
    s:give(1, 1) -- run 1's turn ends: run 3 is woken and served first
    assert.equal(1, w[3].wakes)
    assert.equal(0, s:take(1, 1))
    assert.equal(1, s:take(3, 1))
    assert.is_false(s:queued(3))
    s:give(2, 1) -- with nobody waiting, the run that asks first has it
    assert.equal(1, s:take(1, 1))
  end)

  it("frees a run's turns when it leaves, and a run with nothing to start gives its place up", function()
    local s = share.new(1)
    local w1, w2 = waker(), waker()
    s:join(1, w1)
    s:join(2, w2)
    assert.equal(1, s:take(1, 1))
    assert.equal(0, s:take(2, 1))
    s:leave(1)
    assert.equal(0, s.used)
    assert.equal(1, w2.wakes)
    s:join(3, waker())
    assert.equal(0, s:take(3, 1)) -- run 2 waits ahead of it
    s:unqueue(2)
    assert.equal(1, s:take(3, 1))
  end)

  it("refuses a limit that is not a positive integer", function()
    assert.has_error(function() share.new(0) end)
    assert.has_error(function() share.new(1.5) end)
  end)
end)
