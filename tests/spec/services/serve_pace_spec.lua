-- orket.engine.pace: one heavy step per turn of the loop, in the order asked, and cancellable.
local pace = require "orket.engine.pace"
local task = require "orket.task"
local uv = require "luv"
local H = require "tests.helpers"

describe("orket.engine.pace", function()
  it("lets the first caller go at once and the others one per turn of the loop, in order", function()
    local turns = 0
    local p = pace.new()
    -- what the pacer does in each turn of the loop, sampled once a turn (after its timers):
    -- how many tickets it let go since the last turn
    local let_go, seen = {}, 0
    local check = uv.new_check()
    check:start(function()
      turns = turns + 1
      if p.serving ~= seen then
        let_go[#let_go + 1] = p.serving - seen
        seen = p.serving
      end
    end)
    local passed = {}
    local tasks = {}
    for i = 1, 5 do
      tasks[i] = task.spawn(function()
        p:pass()
        passed[#passed + 1] = { i = i, turn = turns }
      end)
    end
    assert.same({ i = 1, turn = 0 }, passed[1]) -- at once, before the loop turned
    seen = p.serving
    -- counted from here: the loop's first turn, whose timers run before its check (a loaded
    -- machine has the pacer's first tick due already there)
    turns = 1
    -- the loop in its default mode, as the server runs it, till the waiters are through (the
    -- counter does not keep it alive): join's run("once") runs the timers again after the
    -- checks, so on a loaded machine two ticks could fall between two counts
    check:unref()
    require("orket.c.runtime").run()
    for _, t in ipairs(tasks) do assert(t:join()) end
    check:close()
    for k = 1, 5 do assert.equal(k, passed[k].i) end
    -- one per turn of the loop: the pacer never lets two go in one turn (the waiters'
    -- own wake-ups may fall in one turn on a loaded machine: their sleeps are timers too)
    for _, n in ipairs(let_go) do assert.equal(1, n, "one per turn") end
    assert.equal(5, seen)
    for k = 2, 5 do assert.is_true(passed[k].turn >= passed[k - 1].turn, "in order") end
    -- quiet again (the pacer's timer gone): the next caller goes at once. The timer stops a
    -- turn or so after the last waiter, later when a turn was long (a loaded machine)
    H.wait_for(function() return p.timer == nil end, "the pacer's timer to stop")
    local t = task.spawn(function() p:pass() end)
    assert.equal("dead", coroutine.status(t.co))
  end)

  it("survives a waiter cancelled in its wait", function()
    local p = pace.new()
    local first = task.spawn(function() p:pass() end)
    local waiting = task.spawn(function() p:pass() error("not reached") end)
    local last_done = false
    local last = task.spawn(function() p:pass() last_done = true end)
    waiting:cancel()
    assert(first:join())
    assert(last:join())
    assert.is_true(last_done)
  end)
end)
