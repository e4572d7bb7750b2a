-- orket worker's stop fits the stop's budget: its telemetry drain (5 s at most) is cut to
-- what is left of otel.STOP_BUDGET_MS from its signal and of what `orket serve --workers`
-- said was left of its own stop when it sent SIGTERM (a line on the worker's fd 3). Before,
-- a worker whose runs were slow to stop drained 5 s more after them, and took the server's
-- stop past docker stop's 10 s before SIGKILL.
local uv = require "luv"
local H = require "tests.helpers"
local otel = require "orket.otel"
local worker = require "orket.cmd.worker"
local workers = require "orket.serve.workers"

describe("orket worker's drain at a stop", function()
  after_each(H.cleanup)

  it("takes 5 s at most, cut to what is left of the 9 s from its signal and of the server's budget", function()
    local within = worker.drain_within
    -- a --drain end, no signal: the whole allowance
    assert.equal(otel.SHUTDOWN_MS, within({}, 1e6))
    -- a signal, runs quick to stop: 5 s; slow: what is left of 9 s; past it: none
    assert.equal(5000, within({ stop_at = 1000 }, 2000))
    assert.equal(2500, within({ stop_at = 1000 }, 7500))
    assert.equal(0, within({ stop_at = 1000 }, 11000))
    -- the server's budget, told before its SIGTERM, began earlier: it cuts too
    assert.equal(1200, within({ stop_at = 1000, stop_by = 4200 }, 3000))
    assert.equal(0, within({ stop_at = 1000, stop_by = 2500 }, 3000))
    assert.equal(4000, within({ stop_at = 1000, stop_by = 20000 }, 6000))
  end)

  it("reads the server's budget from its descriptor, a line of ms", function()
    local fds = assert(uv.pipe({ nonblock = true }, { nonblock = false }))
    local state = {}
    local reader = assert(worker.budget_reader(fds.read, state))
    uv.update_time()
    local before = uv.now()
    assert(uv.fs_write(fds.write, "1500\n"))
    H.wait_for(function() return state.stop_by ~= nil end, "the budget read")
    assert.is_true(state.stop_by >= before + 1500 and state.stop_by <= uv.now() + 1500, tostring(state.stop_by))
    -- what is not a line of digits is ignored
    state.stop_by = nil
    assert(uv.fs_write(fds.write, "soon\n"))
    orket.sleep(50)
    assert.is_nil(state.stop_by)
    uv.fs_close(fds.write)
    reader:close()
  end)

  it("is told by orket serve's pool what is left of its stop before SIGTERM", function()
    local dir = H.tmpdir()
    -- a worker that, at SIGTERM, writes down the line on its fd 3 (written before the signal)
    local bin = dir .. "/fake-worker"
    H.write(bin, "#!/bin/sh\ntrap 'read -r left <&3; echo \"$left $*\" >" .. dir .. "/got; exit 0' TERM\n: >" .. dir
      .. "/ready\nwhile :; do sleep 0.05; done\n")
    assert(uv.fs_chmod(bin, tonumber("755", 8)))
    local pool = workers.start { dir = dir, n = 1, bin = bin }
    H.wait_for(function() return H.read(dir .. "/ready") ~= nil end, "the worker started")
    pool:stop(3250)
    local got = H.read(dir .. "/got") or ""
    -- (the server's own pid given: in a container it is pid 1, an orphan's parent's too)
    assert.matches("^3250 worker " .. dir:gsub("%p", "%%%0") .. " %-%-with%-parent %-%-parent%-pid "
      .. string.format("%d", uv.os_getpid()) .. " %-%-stop%-budget%-fd 3\n$", got)
  end)

  -- The option's descriptor is checked as it is parsed, before anything opens it: one that
  -- is not a pipe or socket (closed, when fd 3 is likely the loop's own; /dev/null; a file)
  -- made the loop abort the worker with no message (SIGABRT, 134) once it watched it.
  it("refuses --stop-budget-fd of a descriptor that is not a pipe or socket, naming the option", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init " .. dir).status)
    for _, redirect in ipairs { "3</dev/null", "3<" .. dir .. "/orket.lua" } do
      local r = H.orket("worker " .. dir .. " --drain --stop-budget-fd 3 " .. redirect)
      assert.equal(2, r.status, redirect .. ": " .. r.stderr)
      assert.matches("%-%-stop%-budget%-fd 3: descriptor 3 is [^\n]*not a pipe or socket", r.stderr, 1)
    end
    -- one the caller did not pass: the loop's own descriptors are pipes too (4 to 7 here),
    -- and a worker reading one heard no SIGTERM (4) or aborted as it stopped (5)
    for _, fd in ipairs { 3, 4, 5, 6, 7 } do
      local r = H.orket("worker " .. dir .. " --drain --stop-budget-fd " .. fd .. " " .. fd .. "<&-")
      assert.equal(2, r.status, fd .. ": " .. r.stderr)
      assert.matches(string.format("--stop-budget-fd %d: descriptor %d was not open when orket started", fd, fd),
        r.stderr, 1, true)
    end
    for _, word in ipairs { "2", "x" } do
      local r = H.orket("worker " .. dir .. " --drain --stop-budget-fd " .. word)
      assert.equal(2, r.status, word)
      assert.matches("--stop-budget-fd needs a descriptor number of at least 3", r.stderr, 1, true)
    end
    -- a pipe (the shell's own standard input, a pipe from the test): taken
    local r = H.orket("worker " .. dir .. " --drain --stop-budget-fd 3 3<&0")
    assert.equal(0, r.status, r.stderr)
    assert.matches('"type":"worker_end"', r.stdout, 1, true)
  end)

  -- --start then a --resume refused (no such run, a run done) left the started run to the
  -- workers though the command failed: every run of its cards was kept out after
  it("refuses --start with --resume before anything is recorded", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init " .. dir).status)
    local r = H.orket("worker " .. dir .. " --start START --resume 99 --drain")
    assert.equal(2, r.status, r.stderr)
    assert.matches("--start and --resume exclude each other", r.stderr, 1, true)
    r = H.orket("runs -C " .. dir)
    assert.equal(0, r.status, r.stderr)
    assert.is_nil(r.stdout:find("START", 1, true), r.stdout)
  end)

  -- The descriptor (its end of the server's socket) is close-on-exec once claimed: a
  -- program the worker starts without a descriptor of its own on 3 (a detached sandbox
  -- helper, a seed shell) kept it open, past the worker's end.
  it("claims its descriptor close-on-exec, so the programs it starts do not get it", function()
    local dir = H.tmpdir()
    H.write(dir .. "/probe.lua", [[
local worker = require "orket.cmd.worker"
local reader = assert(worker.budget_reader(3, {}))
local f = assert(io.open("/proc/self/fdinfo/3"))
print(f:read("a"):match("flags:%s*(%d+)"))
f:close()
reader:close()
]])
    -- fd 3: the shell's standard input, a pipe from the test, not close-on-exec
    local r = H.orket("lua " .. dir .. "/probe.lua 3<&0")
    assert.equal(0, r.status, r.stderr)
    local flags = assert(tonumber(r.stdout:match("%d+"), 8), r.stdout)
    assert.equal(tonumber("2000000", 8), flags & tonumber("2000000", 8), r.stdout) -- O_CLOEXEC
  end)
end)
