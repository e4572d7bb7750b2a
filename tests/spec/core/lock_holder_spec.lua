-- The project's run lock says what holds it, and a short hold is waited for (findings 2 and 3
-- of the "together" review): three `orket cancel`s at once, or two servers' card writes,
-- were refused as "another orket run ... continue with 'orket resume'" while no run existed,
-- mostly naming no process (the holder's line was truncated, then written, and read in
-- between). Here: the line's words (pid, tag, what), never read empty while held, emptied
-- on release; setup.lock's wait for a short command, its refusal naming the holder as what
-- it is, and the HTTP wording. OFD locks conflict between descriptions even in one process,
-- so this process plays both holder and taker where no other process is needed.
local H = require "tests.helpers"
local uv = require "luv"
local lockfile = require "orket.c.lockfile"
local setup = require "orket.engine.setup"

local function project()
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
  return dir
end

-- this process's pid, as the lock's line says it
local function own_pid(path)
  local lk = assert(lockfile.acquire(path))
  local pid = tonumber(H.read(path):match("^(%d+)"))
  lk:release()
  return pid
end

describe("the run lock's holder", function()
  after_each(H.cleanup)

  it("writes its pid, tag and kind, keeps the kind when tagged, and empties the file on release", function()
    local path = project() .. "/.orket/run.lock"
    local lk = assert(lockfile.acquire(path, "cancel"))
    local pid = tonumber(H.read(path):match("^(%d+)"))
    assert.equal(pid .. " 0 cancel\n", H.read(path))
    lk:tag(7)
    assert.equal(pid .. " 7 cancel\n", H.read(path))
    lk:release()
    assert.equal("", H.read(path))
    -- a word of anything else is the caller's mistake
    assert.has_error(function() lockfile.acquire(path, "two words") end)
    assert.has_error(function() lockfile.acquire(path, string.rep("a", 32)) end)
  end)

  it("is read by another process as pid, tag and kind, never as an empty line while it rewrites it", function()
    local path = project() .. "/.orket/run.lock"
    -- another process holds the lock as a run and rewrites its line as fast as it can (each
    -- tag rewrites it): the line was truncated, then written, and a read in between named no
    -- process
    local p = io.popen(string.format("%s lua -e %s", H.quote(H.BIN), H.quote(string.format(
      "local l = assert(require('orket.c.lockfile').acquire(%q, 'run')); print(require('luv').os_getpid()); "
        .. "io.stdout:flush(); for i = 1, 150000 do l:tag(i) end; l:release()", path))))
    local child = math.tointeger(tonumber(p:read("l")))
    assert.is_truthy(child)
    local seen, unnamed, kinds = 0, 0, {}
    while true do
      local held, pid, tag, what = lockfile.probe(path)
      if not held then break end
      seen = seen + 1
      if pid ~= child then unnamed = unnamed + 1 end
      kinds[tostring(what)] = true
      assert.is_true(tag == nil or math.type(tag) == "integer")
    end
    p:close()
    assert.is_true(seen > 50, "too few reads while held: " .. seen)
    assert.equal(0, unnamed, unnamed .. " of " .. seen .. " reads named no holder")
    assert.same({ run = true }, kinds)
    assert.equal("", H.read(path)) -- released by its writer: emptied
  end)

  it("writes over a line a killed holder left, as it takes the lock", function()
    local path = project() .. "/.orket/run.lock"
    H.write(path, "999999999 3 cancel\n") -- a pid no process has
    local lk = assert(lockfile.acquire(path, "retry"))
    local pid = tonumber(H.read(path):match("^(%d+)"))
    assert.is_not.equal(999999999, pid)
    lk:release()
  end)

  -- a holder of another pid namespace (a folder shared with a container) looks dead here: its
  -- line was read again for 50 ms at every try, and a 2.5 s wait for it took 16 s, most of it
  -- blocking a server's loop
  it("takes a whole line naming a process not seen here after a few reads, and a wait stays within its bound", function()
    local dir = project()
    local path = dir .. "/.orket/run.lock"
    H.write(path, "999999998 0 serve\n")
    local held = assert(lockfile.wait(path, "shared", 0)) -- a holder that writes no line of its own
    local t = uv.hrtime()
    local busy, pid, _, what = lockfile.probe(path)
    assert.same({ true, 999999998, "serve" }, { busy, pid, what })
    assert.is_true((uv.hrtime() - t) / 1e6 < 30, "a probe took " .. (uv.hrtime() - t) / 1e6 .. " ms")
    local wait = setup.WAIT_MS
    setup.WAIT_MS = 300
    t = uv.hrtime()
    local lk, err = setup.lock(dir, { what = "cancel" })
    setup.WAIT_MS = wait
    local took = (uv.hrtime() - t) / 1e6
    assert.is_nil(lk)
    assert.matches("orket serve (process 999999998)", err, 1, true)
    assert.is_true(took >= 300 and took < 1000, "the wait took " .. took .. " ms")
    held:release()
  end)
end)

describe("setup.lock", function()
  after_each(H.cleanup)

  it("waits for a short command's hold and takes the lock once it is let go", function()
    local dir = project()
    local held = assert(lockfile.acquire(dir .. "/.orket/run.lock", "cancel"))
    local slept = 0
    local lk, err = setup.lock(dir, { sleep = function(ms)
      slept = slept + ms
      if slept >= 200 then held:release() end -- the other command is done
    end })
    assert.is_truthy(lk, err)
    assert.equal(200, slept)
    lk:release()
  end)

  it("refuses after WAIT_MS, naming the short command and no run", function()
    local dir = project()
    local pid = own_pid(dir .. "/.orket/run.lock")
    local held = assert(lockfile.acquire(dir .. "/.orket/run.lock", "retry"))
    local slept = 0
    local lk, err, code = setup.lock(dir, { sleep = function(ms) slept = slept + ms end })
    held:release()
    assert.is_nil(lk)
    assert.equal("ELOCKED", code)
    assert.equal(setup.WAIT_MS, slept)
    assert.matches("^orket retry %(process " .. pid .. "%) is changing cards of this project, and held its run lock "
      .. "for over 2%.5 s; try again when it is done$", err)
    -- another server's card write, to an API client
    held = assert(lockfile.acquire(dir .. "/.orket/run.lock", "serve"))
    lk, err, code = setup.lock(dir, { sleep = function() end, http = true })
    held:release()
    assert.equal("ELOCKED", code)
    assert.matches("^orket serve %(process " .. pid .. "%) is writing a card of this project for a request", err)
  end)

  it("refuses a run's hold at once, as a run, and to an API client without the terminal's steps", function()
    local dir = project()
    local pid = own_pid(dir .. "/.orket/run.lock")
    local held = assert(lockfile.acquire(dir .. "/.orket/run.lock", "run"))
    held:tag(4)
    local slept = 0
    local sleep = function(ms) slept = slept + ms end
    local lk, err, code = setup.lock(dir, { sleep = sleep })
    assert.is_nil(lk)
    assert.equal("ELOCKED", code)
    assert.equal(0, slept)
    assert.matches("another orket run is working on this project (process " .. pid .. ", run 4); wait for it to end, "
      .. "or stop it (Ctrl-C) and continue with 'orket resume", err, 1, true)
    lk, err = setup.lock(dir, { sleep = sleep, http = true })
    assert.is_nil(lk)
    assert.equal(0, slept)
    assert.matches("another orket run is working on this project (process " .. pid .. ", run 4), started from a "
      .. "terminal (orket run)", err, 1, true)
    assert.is_nil(err:find("Ctrl-C", 1, true))
    assert.is_nil(err:find("orket resume", 1, true))
    held:release()
    -- a holder that says nothing of itself (an older orket) is taken for a run: not waited for
    held = assert(lockfile.acquire(dir .. "/.orket/run.lock"))
    lk, err = setup.lock(dir, { sleep = sleep })
    held:release()
    assert.is_nil(lk)
    assert.equal(0, slept)
    assert.matches("another orket run is working on this project (process " .. pid .. ")", err, 1, true)
  end)

  it("writes the caller's kind: a run's, or the command's own word", function()
    local dir = project()
    local lk = assert(setup.lock(dir, { runs_ok = true }))
    assert.matches("^%d+ 0 run\n$", H.read(dir .. "/.orket/run.lock"))
    lk:release()
    lk = assert(setup.lock(dir, { what = "cancel" }))
    assert.matches("^%d+ 0 cancel\n$", H.read(dir .. "/.orket/run.lock"))
    lk:release()
  end)
end)
