-- Tasks on the loop: orket.sleep suspends only the calling task, many wait at once,
-- joins, failures and cancellation; a turn of the loop (task.turn).
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

-- task.turn: a deploy slept 5 ms before asking each sandbox it replaces to make way, so that
-- a signal that came while it held the thread had its handler run first: a guess at the time
-- a turn of the loop takes, and after an I/O callback the timer could fire before any poll.
-- turn() waits for the loop's next poll itself, and for nothing else.
describe("task.turn", function()
  local uv = require "luv"

  -- seen(fn) -> whether a SIGWINCH that fn sends this process (send()) while it holds the
  -- thread had its handler run once fn returned, and the milliseconds fn took. fn(send,
  -- heard) runs in a task; heard() says whether the handler ran yet.
  local function seen(fn)
    local heard = false
    local sig = uv.new_signal()
    sig:start("sigwinch", function() heard = true end)
    -- bounds a poll that would wait, so a broken turn fails rather than hangs
    local guard = uv.new_timer()
    guard:start(3000, 0, function() end)
    local ms
    local ok, err = task.spawn(function()
      local t0 = uv.hrtime()
      fn(function() assert(uv.kill(uv.os_getpid(), "sigwinch")) end, function() return heard end)
      ms = (uv.hrtime() - t0) / 1e6
    end):join()
    guard:close()
    sig:close()
    assert(ok, err)
    return heard, ms
  end

  it("runs the handler of a signal that came while the task held the thread, at once", function()
    local heard, ms = seen(function(send, heard)
      send()
      assert.is_false(heard()) -- (the task holds the thread: nothing ran it yet)
      task.turn()
    end)
    assert.is_true(heard)
    assert.is_true(ms < 1000, string.format("the turn took %.0f ms", ms))
  end)

  it("waits for the next poll when the task was resumed by an I/O callback, after this turn's", function()
    local heard = seen(function(send, heard)
      -- resumed from the poll phase: that turn's check phase comes before any new poll
      local fds = assert(uv.pipe({ nonblock = true }, { nonblock = true }))
      local r, w = uv.new_pipe(), uv.new_pipe()
      r:open(fds.read)
      w:open(fds.write)
      local co = coroutine.running()
      r:read_start(function()
        r:read_stop()
        task.resume(co)
      end)
      w:write("x")
      coroutine.yield()
      r:close()
      w:close()
      send()
      assert.is_false(heard())
      task.turn()
    end)
    assert.is_true(heard)
  end)

  -- A clock bounds no turn: a callback later in the poll that resumed the task may hold
  -- the thread past any short sleep, whose timer then comes due before the next poll.
  it("waits for the next poll when another callback of the poll that resumed the task held the thread", function()
    local heard = seen(function(send, heard)
      -- two pipes ready in one poll: the first callback to run resumes the task, and the
      -- other then holds the thread 10 ms, in the same poll phase
      local co, resumed, pipes = coroutine.running(), false, {}
      for i = 1, 2 do
        local fds = assert(uv.pipe({ nonblock = true }, { nonblock = true }))
        local r, w = uv.new_pipe(), uv.new_pipe()
        r:open(fds.read)
        w:open(fds.write)
        pipes[i] = { r = r, w = w }
        r:read_start(function()
          r:read_stop()
          if not resumed then
            resumed = true
            task.resume(co)
          else
            local t0 = uv.hrtime()
            while uv.hrtime() - t0 < 10e6 do end
          end
        end)
        w:write("x")
      end
      coroutine.yield()
      send()
      assert.is_false(heard())
      task.turn()
      for _, p in ipairs(pipes) do
        p.r:close()
        p.w:close()
      end
    end)
    assert.is_true(heard)
  end)

  -- (the handles turn() makes are recorded as it makes them: luv's walk of every handle
  -- would read the runtime's own handles, whose data is not luv's, as luv's)
  it("closes its handles when its task is cancelled in the turn", function()
    local made, new_idle, new_check = {}, uv.new_idle, uv.new_check
    uv.new_idle = function(...)
      made[#made + 1] = new_idle(...)
      return made[#made]
    end
    uv.new_check = function(...)
      made[#made + 1] = new_check(...)
      return made[#made]
    end
    local ok, err = pcall(function()
      local t = task.spawn(task.turn)
      assert.equal("running", t.state)
      assert.equal(2, #made)
      for _, h in ipairs(made) do assert.is_false(h:is_closing()) end
      assert.is_true(t:cancel())
      for _, h in ipairs(made) do assert.is_true(h:is_closing()) end
    end)
    uv.new_idle, uv.new_check = new_idle, new_check
    assert(ok, err)
  end)

  it("closes the handle it made when the next cannot be made", function()
    local made, new_idle, new_check = {}, uv.new_idle, uv.new_check
    uv.new_idle = function(...)
      made[#made + 1] = new_idle(...)
      return made[#made]
    end
    uv.new_check = function() error("no check handle") end
    local ok, err = pcall(function()
      local tok, terr = task.spawn(task.turn):join()
      assert.is_false(tok)
      assert.matches("no check handle", terr, 1, true)
      assert.equal(1, #made)
      assert.is_true(made[1]:is_closing())
    end)
    uv.new_idle, uv.new_check = new_idle, new_check
    assert(ok, err)
  end)
end)
