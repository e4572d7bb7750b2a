-- orket.c.proc under a fork bomb: limits.processes holds the run's task count, root's too,
-- and the rest of the machine can still fork while the bomb runs.
--
-- As root the kernel exempts the program from RLIMIT_NPROC, so only the run's pids cgroup
-- (the `pids` layer) holds it. No bomb is ever started that nothing would hold: where the
-- runner has no such layer the test fails before any bomb, and as root where the machine
-- offers no pids cgroup it is skipped, saying why (unheld, a bomb as root reached 32,000
-- tasks, the whole process table, before a 10 ms watchdog could stop it). As another user RLIMIT_NPROC holds it too:
-- counted per user, in the run's own user namespace where there is one (kernel 5.14+), so
-- the bomb stops at the limit either way, and this process, whose own limit is its
-- caller's, still forks. The test is bounded whatever happens: a watchdog on the loop
-- counts the bomb's processes (the helper's session) every 10 ms and, past twice the
-- limit, kills the helper (its PID namespace's init dies with it, and with that every
-- process in the namespace, in one step) and then the rest of the session; the program ends 5 s after it started (it execs sleep
-- after starting the bomb, so no fork is needed to end it, and the helper then sweeps
-- the rest), the run's timeout is 30 s, and the session is killed again at the end.
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

    local sid, max, forked, watchdog = nil, 0, nil, false
    local t = uv.new_timer()
    t:start(10, 10, function()
      sid = sid or helper_pid()
      if not sid then return end
      local n = #session(sid)
      if n > max then max = n end
      if n > 2 * LIMIT then -- not held: stop it now rather than at the timeout
        watchdog = true
        kill_session(sid)
      end
      if forked == nil and n >= LIMIT / 2 then
        -- a fork and exec of this process while the bomb runs at its limit
        forked = os.execute("true") == true
      end
    end)
    local r, err = proc.run { argv = { "sh", "-c", "b() { b | b & }; b & exec sleep 5" }, cwd = ws,
      timeout_ms = 30000, limits = { processes = LIMIT } }
    t:stop()
    t:close()
    if sid then kill_session(sid) end
    assert.is_table(r, tostring(err))
    assert.is_false(watchdog, "the bomb grew past twice the limit: " .. max .. " tasks")
    -- the helper and the PID namespace's init share the cgroup with the program
    assert.is_true(max <= LIMIT + 2, max .. " tasks at once")
    assert.is_true(max >= LIMIT / 2, "the bomb never ran: " .. max .. " tasks")
    assert.is_true(forked, "this process could not fork while the bomb ran")
    assert.equal("exit", r.reason)
    if held then
      -- the run's cgroup went with it
      local left = io.popen("find /sys/fs/cgroup -maxdepth 4 -name 'orket-run-" .. sid .. "' 2>/dev/null"):read("a")
      assert.equal("", left)
    end
    io.write("\n  fork bomb: at most ", max, " tasks at once (limit ", LIMIT, ", ",
      held and "pids cgroup" or "RLIMIT_NPROC", ")\n")
  end)
end)
