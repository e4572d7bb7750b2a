-- A fault of the host's other than a full disk (too many open files here; a read-only or
-- failing disk, Orket's own places made unwritable: orket.engine.gitwork.host_fault) met by
-- a tool: it was handed to the model as the tool's error, turns burned on it, and the card
-- ended blocked with "raise the budget". Now the run stops as for a full disk, the call left
-- unrecorded, naming the cause and its remedy, and `orket resume` finishes once it is fixed.
local H = require "tests.helpers"

local events = H.events

describe("a fault of the host's met by a tool", function()
  after_each(function() H.cleanup() end)

  it("stops the run, naming it and its remedy, blocks no card, and resume finishes", function()
    local ex = H.example("notes")
    -- 19 files: enough to start and open the store and the repository, not to work a card
    -- (with 17 the run cannot start, with 22 it gets through)
    local r = H.orket("run NOTES", { cwd = ex, wrap = "sh -c 'ulimit -n 19 && exec \"$@\"' sh" })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    local stop, ended
    for _, ev in ipairs(events(r.stdout)) do
      assert.is_not.equal("card_blocked", ev.type, r.stdout)
      if ev.type == "git" and ev.error then stop = ev end
      if ev.type == "run_end" then ended = ev end
      -- the failed call is left open, never the model's to read
      if ev.type == "tool" and ev.ok == false then assert.is_true(ev.open, r.stdout) end
    end
    assert.truthy(stop, r.stdout)
    assert.matches("Too many open files", stop.error, 1, true)
    -- said as the host's fault, not as a full disk (unready: met settling the repository)
    assert.truthy(stop.action == "host_fault" or stop.action == "unready", stop.action)
    assert.is_nil(ended and ended.reason:find("room on its disk", 1, true), ended and ended.reason)
    assert.matches("this process may open no more files: raise its limit, ulimit -n or systemd LimitNOFILE=",
      stop.error, 1, true)
    assert.equal("failed", ended.status)
    assert.matches("Too many open files", ended.reason, 1, true)
    local again = H.orket("resume", { cwd = ex })
    assert.equal(0, again.status, again.stdout .. again.stderr)
    assert.matches('"status":"done"', again.stdout, 1, true)
    assert.matches("NOTES%-4%s+done", H.orket("board", { cwd = ex }).stdout)
  end)
end)
