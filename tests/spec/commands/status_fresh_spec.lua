-- orket status in a fresh checkout: orket.lua and epics/ committed, no .orket/ and no
-- workspace/ (both local state). Nothing has run there, so nothing went with a removed
-- workspace/: said so, with what makes the board and the workspace. The removed text stays
-- for a project whose store records runs.
local H = require "tests.helpers"

describe("orket status in a fresh checkout", function()
  after_each(H.cleanup)

  it("says nothing has run here yet, not that workspace/ was removed", function()
    local dir = H.example("notes", { import = false })
    assert.is_nil(require("luv").fs_stat(dir .. "/.orket"))
    for _, args in ipairs { "status", "status --json" } do
      local r = H.orket(args, { cwd = dir })
      assert.equal(1, r.status, args)
      assert.equal("", r.stdout, args)
      assert.equal("orket: ./workspace does not exist yet: nothing has run here yet (there is no .orket/ either); "
        .. "'orket import' makes the board, and the first 'orket run EPIC' makes workspace/\n", r.stderr)
    end
    -- from elsewhere, the commands name the folder
    local r = H.orket("status -C " .. H.quote(dir), {})
    assert.matches("'orket import " .. dir .. "' makes the board, and the first 'orket run EPIC -C " .. dir
      .. "' makes workspace/", r.stderr, 1, true)
    -- after a run, a removed workspace/ (and .orket/ kept) is still said as lost history
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    assert.equal(0, H.orket("run NOTES-1", { cwd = dir }).status)
    H.sh("rm -rf " .. H.quote(dir .. "/workspace"))
    r = H.orket("status", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("went with the removed one", r.stderr, 1, true)
  end)
end)
