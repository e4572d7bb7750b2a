-- orket.c.proc under a fork bomb: limits.processes holds the run's task count, root's too,
-- and the rest of the machine can still fork while the bomb runs.
--
-- As root the kernel exempts the program from RLIMIT_NPROC, so only the run's pids cgroup
-- (the `pids` layer) holds it. No bomb is ever started that nothing would hold: where the
-- runner has no such layer the test fails before any bomb, and as root where the machine
-- offers no pids cgroup it is skipped, saying why (unheld, a bomb as root reached 32,000
-- tasks, the whole process table, before a 10 ms watchdog could stop it). As another
-- user RLIMIT_NPROC holds it too: counted per user, in the run's own user namespace where
-- there is one (kernel 5.14+), so the bomb stops at the limit either way, and this
-- process, whose own limit is its caller's, still forks.
--
-- The test is bounded whatever happens: a watchdog on the loop counts the bomb's
-- processes (the helper's session) every 10 ms and, past twice the limit, kills the
-- helper (its PID namespace's init dies with it, and with that every process in the
-- namespace, in one step) and then the rest of the session; the test ends the program
-- (it execs sleep after starting the bomb, so ending needs no fork) 50 samples after the
-- bomb first came near its limit, the helper then sweeping the rest; and the session is
-- killed again at the end.
local proc = require "orket.c.proc"
local uv = require "luv"
local H = require "tests.helpers"

local LIMIT = 64

-- ppid and session of a process, or nil when it is gone.
local function stat(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if not f then return nil end
  local s = f:read("a") or ""
  f:close()
  local ppid, sid = s:match("%)%s+%S+%s+(%d+)%s+%d+%s+(%d+)")
  return tonumber(ppid), tonumber(sid)
end

local function each_pid(fn)
  local dir = uv.fs_scandir("/proc")
  while dir do
    local name = uv.fs_scandir_next(dir)
    if not name then break end
    if name:match("^%d+$") then fn(tonumber(name)) end
  end
end

-- The helper is this process's child and leads its own session, which holds the whole
-- tree (seccomp refuses setsid to the program).
local function helper_pid()
  local me, found = uv.os_getpid(), nil
  each_pid(function(pid)
    local ppid, sid = stat(pid)
    if ppid == me and sid == pid then found = pid end
  end)
  return found
end

local function session(sid)
  local pids = {}
  each_pid(function(pid)
    local _, s = stat(pid)
    if s == sid then pids[#pids + 1] = pid end
  end)
  return pids
end

local function kill_session(sid)
  uv.kill(sid, "sigkill")
  for _ = 1, 20 do
    local pids = session(sid)
    if #pids == 0 then return end
    for _, pid in ipairs(pids) do uv.kill(pid, "sigkill") end
  end
end

describe("orket.c.proc.run under a fork bomb", function()
  after_each(H.cleanup)

  it("holds the task count to limits.processes, root's too, and the machine still forks", function()
    local ws = H.tmpdir()
    local root = H.read("/proc/self/status"):match("\nUid:%s+%d+%s+(%d+)") == "0"
    -- the layer exists (before it, nothing held root's count, and no bomb may run)
    local known = false
    for _, n in ipairs(proc.layers().optional) do known = known or n == "pids" end
    assert.is_true(known, "the runner has no pids layer")
    local probe = proc.run { argv = { "true" }, cwd = ws, timeout_ms = 10000 }
    assert.is_table(probe)
    local held = false
    for _, n in ipairs(probe.layers) do held = held or n == "pids" end
    if root and not held then
      pending("as root nothing would hold the bomb here: " .. tostring(probe.missing.pids))
      return
    end

    -- The program starts the bomb and waits; the test ends it (SIGTERM to its sleep) 50
    -- samples after the bomb first came near its limit, or after 1000 whatever it did.
    local sid, max, forked, watchdog, ticks, full, stuck, room = nil, 0, nil, false, 0, 0, nil, nil
    local function stop_program()
      for _, pid in ipairs(session(sid)) do
        local f = io.open("/proc/" .. pid .. "/comm")
        local comm = f and f:read("l")
        if f then f:close() end
        if comm == "sleep" then uv.kill(pid, "sigterm") end
      end
    end
    local t = uv.new_timer()
    t:start(10, 10, function()
      sid = sid or helper_pid()
      if not sid then return end
      ticks = ticks + 1
      local n = #session(sid)
      if n > max then max = n end
      if n > 2 * LIMIT then -- not held: stop it now
        watchdog = true
        kill_session(sid)
        return
      end
      if forked == nil and n >= LIMIT / 2 then
        -- a fork and exec of this process while the bomb runs at its limit
        forked = os.execute("true") == true
      end
      if ticks == 500 and max < LIMIT / 2 then -- what holds it back, for the failure's message
        local dir = io.popen("find /sys/fs/cgroup -maxdepth 4 -name 'orket-run-" .. sid .. "' 2>/dev/null"):read("l")
        local function get(f) local h = dir and io.open(dir .. "/" .. f) local v = h and h:read("a") if h then h:close() end return v end
        room = (tonumber(get("pids.max")) or 0) - (tonumber(get("pids.current")) or 0)
        stuck = string.format("cgroup %s pids.max %s pids.current %s tasks %s", tostring(dir), tostring(get("pids.max")),
          tostring(get("pids.current")), tostring(get("tasks")):gsub("\n", ","))
      end
      if max >= LIMIT - 8 then full = full + 1 end
      if full == 50 or ticks == 1000 then stop_program() end
    end)
    local r, err = proc.run { argv = { "sh", "-c", "b() { b | b & }; b & exec sleep 120" }, cwd = ws,
      timeout_ms = 120000, limits = { processes = LIMIT } }
    t:stop()
    t:close()
    if sid then kill_session(sid) end
    assert.is_table(r, tostring(err))
    assert.is_false(watchdog, "the bomb grew past twice the limit: " .. max .. " tasks")
    -- the helper and the PID namespace's init share the cgroup with the program
    assert.is_true(max <= LIMIT + 2, max .. " tasks at once")
    if max < LIMIT / 2 and room and room > 8 then
      -- its forks failed with room left in its cgroup: the machine's process table was full
      -- meanwhile (a program beside this test), which this test cannot judge
      pending("the bomb could not fork though its cgroup had room: " .. tostring(stuck))
      return
    end
    assert.is_true(max >= LIMIT / 2, string.format("the bomb never ran: at most %d tasks in %d samples (%s %s; layers %s; %s)",
      max, ticks, r.reason, tostring(r.signal or r.code), table.concat(r.layers, " "), tostring(stuck)))
    assert.is_true(forked, "this process could not fork while the bomb ran")
    assert.equal("SIGTERM", r.signal)
    if held then
      -- the run's cgroup went with it
      local left = io.popen("find /sys/fs/cgroup -maxdepth 4 -name 'orket-run-" .. sid .. "' 2>/dev/null"):read("a")
      assert.equal("", left)
    end
    io.write("\n  fork bomb: at most ", max, " tasks at once (limit ", LIMIT, ", ",
      held and "pids cgroup" or "RLIMIT_NPROC", ")\n")
  end)

  it("holds nothing with limits.processes = 0, says so, and fails closed where pids is required", function()
    local ws = H.tmpdir()
    local r = assert(proc.run { argv = { "true" }, cwd = ws, limits = { processes = 0 } })
    assert.equal("no process limit was asked (limits.processes = 0)", r.missing.pids)
    local _, err, code = proc.run { argv = { "true" }, cwd = ws, limits = { processes = 0 }, require = { "pids" } }
    assert.equal("ELAYER", code)
    assert.equal("proc: required layer 'pids' is not available: no process limit was asked (limits.processes = 0)", err)
  end)

  it("leaves no pids cgroup behind when the helper is killed outright, nor one left before", function()
    local ws = H.tmpdir()
    local probe = assert(proc.run { argv = { "true" }, cwd = ws, timeout_ms = 10000 })
    if probe.missing.pids then
      pending("no pids cgroup here: " .. tostring(probe.missing.pids))
      return
    end
    local sid, base
    local t, later = uv.new_timer(), uv.new_timer()
    t:start(20, 20, function()
      sid = sid or helper_pid()
      if sid then
        t:stop()
        -- once the program runs (its cgroup made), what the runner's backstop does
        later:start(300, 0, function()
          base = io.popen("find /sys/fs/cgroup -maxdepth 4 -name 'orket-run-" .. sid .. "' 2>/dev/null"):read("l")
          uv.kill(sid, "sigkill")
        end)
      end
    end)
    proc.run { argv = { "sleep", "20" }, cwd = ws, timeout_ms = 15000 }
    t:close()
    later:close()
    assert.is_number(sid)
    kill_session(sid)
    base = assert(base, "the run's cgroup was not found")
    -- the runner removed it once the helper was gone, unless the killed tree had not left
    -- it yet (rmdir takes only an empty cgroup); then the next run beside it does, since no
    -- process has that pid any more. So does one that a helper killed with its runner
    -- left, with nobody to remove it (a pid above pid_max: no process ever has it).
    local stale = base:match("^(.*)/[^/]+$") .. "/orket-run-" .. math.tointeger(2 ^ 22 + 1)
    assert(uv.fs_mkdir(stale, 493))
    local gone_at_once = uv.fs_stat(base) == nil
    assert(proc.run { argv = { "true" }, cwd = ws, timeout_ms = 10000 })
    assert.is_nil(uv.fs_stat(stale))
    assert.is_nil(uv.fs_stat(base))
    io.write("\n  a helper killed outright: its cgroup removed ", gone_at_once and "by the runner" or "by the next run", "\n")
  end)
end)
