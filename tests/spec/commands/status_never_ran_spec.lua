-- orket status on a project no run has worked yet (imported from a checkout, as CI does):
-- its workspace/ was never made, so nothing went with it; once a run made it, a missing
-- workspace/ is one removed, and its history is said lost.
local H = require "tests.helpers"

describe("orket status before the first run", function()
  after_each(H.cleanup)

  it("says workspace/ does not exist yet (exit 1), not that it was removed, until a run made it", function()
    local dir = H.example("notes")
    for _, args in ipairs { "status", "status --json" } do
      local r = H.orket(args, { cwd = dir })
      assert.equal(1, r.status, args)
      assert.equal("", r.stdout, args)
      assert.matches("^orket: %./workspace does not exist yet: no run is recorded, and the first 'orket run EPIC' makes it\n$",
        r.stderr)
    end
    assert.equal(0, H.orket("run NOTES-1", { cwd = dir }).status)
    assert.equal(0, H.orket("status", { cwd = dir }).status)
    H.sh("rm -rf " .. H.quote(dir .. "/workspace"))
    local r = H.orket("status", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("./workspace is missing: the next 'orket run EPIC' makes workspace/ anew", r.stderr, 1, true)
    assert.matches("went with the removed one", r.stderr, 1, true)
  end)
end)
