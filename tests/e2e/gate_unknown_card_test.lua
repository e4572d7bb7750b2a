-- orket gate check --card with a card the board does not hold: a mistake in the argument,
-- a usage error (2) as an unknown --role is, so that a script branching on the status never
-- takes it for the gate's deny (1).
local H = require "tests.helpers"

describe("orket gate check --card UNKNOWN", function()
  after_each(H.cleanup)

  it("is a usage error (2) naming the option, not deny's 1; a card it holds is judged", function()
    local dir = H.example("notes")
    local start = "gate check --role coder --tool write_file --args '{\"path\":\"a.txt\",\"content\":\"x\"}' "
    for _, json in ipairs { "", "--json" } do
      local r = H.orket(start .. "--card NOPE " .. json, { cwd = dir })
      assert.equal(2, r.status, r.stderr)
      assert.equal("", r.stdout)
      assert.matches('^orket: %-%-card NOPE: board: no card "NOPE"\nusage: orket gate check ', r.stderr)
    end
    local r = H.orket(start .. "--card NOTES-1 --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches('"verdict":"allow"', r.stdout, 1, true)
    -- the gate's own deny stays 1
    r = H.orket("gate check --role coder --tool write_file --args '{\"path\":\"../a\",\"content\":\"x\"}' --json",
      { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches('"verdict":"deny"', r.stdout, 1, true)
  end)
end)
