-- Tasks on the loop: orket.sleep suspends only the calling task, many wait at once,
-- joins, failures and cancellation.
local task = require "orket.task"
local rt = require "orket.c.runtime"

describe("orket.sleep", function()
  it("lets many tasks wait at once, each at least as long as it asked", function()
    local woke = {}
    local tasks = {}
    local start = orket.now()
    for i = 1, 200 do
      local ms = (i * 7) % 40
      tasks[i] = task.spawn(function()
        local t0 = orket.now()
        orket.sleep(ms)
        woke[i] = orket.now() - t0
        return ms
      end)
    end
    assert.equal(200, rt.stats().waits)
    for i = 1, 200 do
      local ok, v = tasks[i]:join()
      assert.is_true(ok)
      assert.equal((i * 7) % 40, v)
      assert.is_true(woke[i] >= v - 1, "task " .. i .. " woke after " .. woke[i] .. " ms")
    end
    -- all 200 waited concurrently: far less than the 3,900 ms they would take in a row
    assert.is_true(orket.now() - start < 1500)
    assert.equal(0, rt.stats().waits)
  end)

  it("raises where the caller cannot be suspended", function()
    local ok, err = pcall(table.sort, { 2, 1 }, function() rt.sleep(1) return true end)
    assert.is_false(ok)
    assert.matches("must run inside a task", err)
    assert.equal(0, rt.stats().waits)
  end)

  it("rejects bad arguments with the argument named", function()
    assert.has_error(function() rt.sleep("x") end, "bad argument #1 to 'sleep' (number expected, got string)")
    assert.has_error(function() rt.sleep(-1) end, "bad argument #1 to 'sleep' (must be between 0 and 1e12)")
  end)
end)

describe("tasks", function()
  it("return results through join", function()
    local t = task.spawn(function(a, b) orket.sleep(1) return a + b, "x" end, 2, 3)
    assert.same({ true, 5, "x" }, { t:join() })
    assert.equal("done", t.state)
  end)

  it("report failures with a traceback through join", function()
    local t = task.spawn(function() orket.sleep(1) error("broken") end)
    local ok, err = t:join()
    assert.is_false(ok)
    assert.matches("broken", err)
    assert.matches("stack traceback", err)
  end)

  it("describe non-string errors", function()
    local t = task.spawn(function() error({}) end)
    local ok, err = t:join()
    assert.is_false(ok)
    assert.matches("(a table was raised, not a message)", err, 1, true)
  end)

  it("keep unjoined failures for the caller to report, and not joined ones", function()
    task.unhandled = {}
    task.spawn(function() error("nobody listens") end)
    local joined = task.spawn(function() error("failed before the join") end)
    assert.is_false((joined:join()))
    local list = task.collect()
    assert.equal(1, #list)
    assert.matches("nobody listens", list[1])
    task.unhandled = {}
  end)

  it("cancel a waiting task: its timer is stopped and it never resumes", function()
    local resumed = false
    local t = task.spawn(function() orket.sleep(50) resumed = true end)
    assert.equal(1, rt.stats().waits)
    assert.is_true(t:cancel())
    assert.equal(0, rt.stats().waits)
    assert.equal("canceled", t.state)
    orket.sleep(80)
    assert.is_false(resumed)
    assert.same({ false, "canceled" }, { t:join() })
    assert.is_false(t:cancel())
  end)

  it("cancel a task waiting in a join: it stays canceled when the joined one ends", function()
    local joined = task.spawn(function() orket.sleep(30) return 1 end)
    local after = false
    local t = task.spawn(function() joined:join() after = true end)
    assert.is_true(t:cancel())
    assert.same({ true, 1 }, { joined:join() })
    assert.equal("canceled", t.state)
    assert.equal("canceled", t.error)
    assert.is_false(after)
  end)

  it("refuse to join themselves", function()
    local t
    t = task.spawn(function() orket.sleep(1) return t:join() end)
    local ok, err = t:join()
    assert.is_false(ok)
    assert.matches("cannot join itself", err)
  end)

  it("check their arguments", function()
    assert.has_error(function() task.spawn(42) end, "bad argument #1 to 'spawn' (function expected, got number)")
  end)
end)
