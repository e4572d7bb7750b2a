-- orket worker --start/--resume naming nothing: the failure names the argument (board's own
-- message named none), and a worker that never started says no worker_end (it said no
-- worker_start); one that started says both, worker_start first and worker_end last.
local H = require "tests.helpers"
local cjson = require "cjson"
local backends = require "tests.backends"

local function events(stdout)
  local out = {}
  for line in stdout:gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line).type end
  return out
end

local starter = backends.starter

describe("orket worker's --start and --resume", function()
  after_each(H.cleanup)

  it("name the argument when it names no card or run, and print no event of a start that never was", function()
    local dir = starter()
    local r = H.orket("worker --start NOPE --drain", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: --start: no card \"NOPE\" (see 'orket board')\n", r.stderr)
    assert.equal("", r.stdout)
    r = H.orket("worker --resume 999 --drain", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: --resume: no run 999 (see 'orket runs')\n", r.stderr)
    assert.equal("", r.stdout)
    -- nothing was left to the workers
    assert.equal(0, #cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs)
    -- a worker that starts says so first, and its end last
    r = H.orket("worker --start START --drain", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local evs = events(r.stdout)
    assert.equal("worker_start", evs[1])
    assert.equal("worker_end", evs[#evs])
  end)
end)
