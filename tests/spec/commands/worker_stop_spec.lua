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
    assert.matches("^3250 worker " .. dir:gsub("%p", "%%%0") .. " %-%-with%-parent %-%-stop%-budget%-fd 3\n$", got)
  end)
end)
