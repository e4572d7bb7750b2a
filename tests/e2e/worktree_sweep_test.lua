-- A card that ends outside a turn of its own (canceled, or done on the forge by a person's
-- review) kept its whole checkout in .orket/worktrees for good: only a turn that moved its
-- card to done parked the directory. The next run's start parks every finished card's
-- directory (gitwork.recover), as that turn would have. On PostgreSQL (tests/with_pg.lua)
-- the project names a fresh database of the test server.
local H = require "tests.helpers"
local backends = require "tests.backends"

describe("a canceled card's directory", function()
  after_each(H.cleanup)

  it("is parked at the next run's start", function()
    local dir = backends.starter()
    local script = H.read(dir .. "/script.lua")
    -- START-1's first answer waits: the run is stopped with its directory made
    H.write(dir .. "/script.lua", (script:gsub('match = "%^Issue ", reply = {', 'match = "^Issue ", reply = { delay_ms = 600000,', 1)))
    local p = io.popen(string.format("cd %s && exec %s run START-1 --json >r.out 2>r.err & echo $!", H.quote(dir), H.quote(H.BIN)))
    local pid = tonumber(p:read("l"))
    p:close()
    finally(function() os.execute("kill -KILL " .. pid .. " 2>/dev/null") end)
    H.wait_for(function() return (H.read(dir .. "/r.out") or ""):find('"turn_start"', 1, true) end, "START-1's turn", 6000)
    assert.truthy(H.alive(pid))
    os.execute("kill -TERM " .. pid)
    H.wait_for(function() return not H.alive(pid) end, "the run's end", 6000)
    assert.truthy(require("luv").fs_stat(dir .. "/.orket/worktrees/START-1"), "START-1 has a directory")
    local c = H.orket('cancel START-1 "not needed"', { cwd = dir })
    assert.equal(0, c.status, c.stderr)
    H.write(dir .. "/script.lua", script)
    -- (START-2 waits on the canceled START-1: the run ends stalled, having started)
    local r = H.orket("run START-2", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    assert.is_nil(require("luv").fs_stat(dir .. "/.orket/worktrees/START-1"), "START-1's directory is left")
    assert.is_nil(require("luv").fs_stat(dir .. "/.orket/worktree-state/START-1"), "START-1's state is left")
  end)
end)
