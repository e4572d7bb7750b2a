-- orket serve --workers starts a worker that ends again soon after its start after twice as
-- long each time, up to a cap, and says so: one that could not connect to a full database
-- was started every second, forever, each start a new connection against the full server.
local uv = require "luv"
local H = require "tests.helpers"
local workers = require "orket.serve.workers"

describe("orket serve --workers' restarts", function()
  local saved
  before_each(function() saved = { workers.RESTART_MS, workers.RESTART_CAP_MS, workers.STEADY_MS } end)
  after_each(function()
    workers.RESTART_MS, workers.RESTART_CAP_MS, workers.STEADY_MS = saved[1], saved[2], saved[3]
    H.cleanup()
  end)

  it("wait twice as long each time a worker ends soon after its start, up to a cap, and say so", function()
    local dir = H.tmpdir()
    local bin = dir .. "/failing-worker" -- ends at once, as one that cannot reach its store
    H.write(bin, "#!/bin/sh\nexit 1\n")
    assert(uv.fs_chmod(bin, tonumber("755", 8)))
    workers.RESTART_MS, workers.RESTART_CAP_MS, workers.STEADY_MS = 10, 40, 60000
    local exits = {}
    local pool = workers.start { dir = dir, n = 1, bin = bin, log = function(f)
      if f.event == "worker_exit" then exits[#exits + 1] = f end
    end }
    H.wait_for(function() return #exits >= 5 end, "five exits")
    pool:stop()
    local waits = {}
    for i = 1, 5 do waits[i] = exits[i].restart_ms end
    assert.same({ 10, 20, 40, 40, 40 }, waits)
    assert.equal(1, exits[1].code)
    assert.is_nil(exits[1].message) -- a first end is said as before
    assert.equal("worker 1 ended 3 times in a row soon after its start; started again in 0.04 s (the wait doubles "
      .. "while it keeps ending, up to 0.04 s)", exits[3].message)
  end)
end)
