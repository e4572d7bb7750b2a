-- orket audit's words: no audit command starts with '-', so an unknown option is named
-- alone, never with "put -- before it" (following that gave "unknown audit command");
-- its options and their values read as before.
local H = require "tests.helpers"

describe("orket audit's words", function()
  after_each(H.cleanup)

  it("names an unknown option alone, without the free text's '--' hint", function()
    local dir = H.example("notes")
    for _, sub in ipairs { "verify", "export", "checkpoint" } do
      local r = H.orket("audit " .. sub .. " --json", { cwd = dir })
      assert.equal(2, r.status, sub)
      assert.matches("^orket: unknown option '%-%-json'\nusage: orket audit verify ", r.stderr)
    end
    -- the words it takes are read as they were
    local r = H.orket("audit ''", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("^orket: an argument is an empty word; give an audit command\n", r.stderr)
    r = H.orket("audit export --since", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("^orket: %-%-since needs a time %(2026%-11%-01, UTC", r.stderr)
    r = H.orket("audit export --since 7d --since 8d", { cwd = dir })
    assert.matches("^orket: %-%-since given twice", r.stderr)
    r = H.orket("audit verify --pub x --since 1d", { cwd = dir })
    assert.matches("^orket: %-%-since and %-%-format go with audit export\n", r.stderr)
    r = H.orket("audit export --since 1d --format jsonl", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("audit verify extra", { cwd = dir })
    assert.matches("^orket: audit verify takes no other word\n", r.stderr)
  end)
end)
