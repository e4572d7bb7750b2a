-- A project whose workspace/ is another user's, used by root (an operator's sudo on a
-- service user's project): libgit2 1.5 said "config value 'safe.directory' was not found"
-- (GIT_ENOTFOUND), which read as "no repository": `orket resume` moved every card's
-- directory, its uncommitted work with it, into a root-only .orket/lost/, and the card later
-- ended done with that work nowhere. Now the command stops, naming the path, both uids and
-- what to do, and touches nothing; `orket status` says the same.
local H = require "tests.helpers"

-- the project's files as a listing (path, owner, mode, a file's size; not the store's, which
-- the refused command opened), to see that nothing moved
local function listing(dir)
  local p = io.popen("cd " .. H.quote(dir) .. " && find . -path ./.orket/orket.db\\* -prune -o -type f "
    .. "-printf '%p %u %m %s\\n' -o -printf '%p %u %m\\n' | sort")
  local out = p:read("a")
  p:close()
  return out
end

describe("a project another user owns", function()
  after_each(function() H.cleanup() end)

  it("is refused by resume and status, naming the owner, and nothing of the cards' work moves", function()
    if io.popen("id -u"):read("l") ~= "0" then
      return pending("skipped: the project must belong to another uid than the command's, and only root can chown it")
    end
    local ex = H.example("notes")
    -- killed after the coder's first tool call: its file is in the card's directory, uncommitted
    local r1 = H.orket("run NOTES-1", { cwd = ex, env = { ORKET_FAULT = "after_tool:1" } })
    assert.equal(137, r1.status, r1.stderr)
    local work = ex .. "/.orket/worktrees/NOTES-1/schema.sql"
    assert.truthy(io.open(work), "the killed turn's file")
    -- the project given to a service user (uid 12345); root runs the commands
    assert(os.execute("chown -R 12345:12345 " .. H.quote(ex)))
    local before = listing(ex)
    local want = "/workspace belongs to uid 12345 and this process runs as uid 0: the repository is "
      .. "another user's, and git refuses it (what this process wrote there would not be the owner's); nothing was "
      .. "changed: run the command as the project's owner (sudo -u '#12345' ...)"
    local r2 = H.orket("resume", { cwd = ex })
    assert.equal(1, r2.status, r2.stdout .. r2.stderr)
    assert.matches(want, r2.stderr, 1, true)
    assert.is_nil(io.open(ex .. "/.orket/lost"), "nothing set aside")
    assert.truthy(io.open(work), "the card's uncommitted work stays where it was")
    local st = H.orket("status", { cwd = ex })
    assert.equal(1, st.status, st.stdout .. st.stderr)
    assert.matches(want, st.stderr, 1, true)
    assert.is_nil(st.stderr:find("has no git repository", 1, true), st.stderr)
    assert.equal(before, listing(ex), "the project's files as they were")
    -- back to the owner (root here): the resumed run finishes, the killed turn's file merged
    assert(os.execute("chown -R 0:0 " .. H.quote(ex)))
    local r3 = H.orket("resume", { cwd = ex })
    assert.equal(0, r3.status, r3.stderr)
    local show = io.popen("git -C " .. H.quote(ex .. "/workspace") .. " cat-file -e main:schema.sql 2>&1 && echo merged")
    assert.equal("merged", show:read("l"))
    show:close()
  end)
end)
