-- `orket init` on a repository without main (many are on master, some on a detached HEAD):
-- the refusal says how to make main, each command as given working from the project folder,
-- and what it means for the team's remote; a repository that has main with HEAD elsewhere is
-- adopted as it is (the view waits for main: docs/git.md).
local H = require "tests.helpers"

local GC = require "tests.gitcards"
local sh, git = GC.sh, GC.git

local function repo_on_master(dir)
  local ws = dir .. "/workspace"
  sh("mkdir -p " .. H.quote(ws) .. " && cd " .. H.quote(ws) .. " && git init -q -b master && git config user.email a@b"
    .. " && git config user.name A && echo a > a && git add a && git commit -qm a")
  return ws
end

describe("adopting a repository without main", function()
  after_each(function() H.cleanup() end)

  it("says to rename the branch or make main from it, and both work", function()
    for _, fix in ipairs { "branch -m main", "checkout -q -b main" } do
      local dir = H.tmpdir() .. "/p"
      local ws = repo_on_master(dir)
      local r = H.orket("init --yes .", { cwd = dir })
      assert.equal(1, r.status)
      assert.matches("HEAD is on refs/heads/master, not refs/heads/main, and there is no branch main", r.stderr, 1, true)
      assert.matches("(git -C workspace branch -m main)", r.stderr, 1, true)
      assert.matches("(git -C workspace checkout -b main)", r.stderr, 1, true)
      assert.matches("Orket pushes main there and opens pull requests against it, so make main the forge's default "
        .. "branch", r.stderr, 1, true)
      assert.is_nil(r.stderr:find("check out main", 1, true), r.stderr)
      sh("cd " .. H.quote(dir) .. " && git -C workspace " .. fix)
      r = H.orket("init --yes .", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      assert.equal("a\n", git(ws, "show main:a"))
      -- renamed, master is gone; branched, it is kept
      assert.equal(fix == "branch -m main" and "" or "master\n", git(ws, "branch --list master --format='%(refname:short)'"))
    end
  end)

  it("says to make main at a detached HEAD's commit, not to rename a branch", function()
    local dir = H.tmpdir() .. "/p"
    local ws = repo_on_master(dir)
    sh("git -C " .. H.quote(ws) .. " checkout -q --detach && git -C " .. H.quote(ws) .. " branch -q -D master")
    local r = H.orket("init --yes .", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("HEAD is on a detached commit, not refs/heads/main, and there is no branch main", r.stderr, 1, true)
    assert.matches("make main at that commit (git -C workspace checkout -b main)", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("branch -m", 1, true), r.stderr)
  end)

  it("names workspace/ as seen from where init ran", function()
    local top = H.tmpdir()
    repo_on_master(top .. "/p")
    local r = H.orket("init --yes p", { cwd = top })
    assert.equal(1, r.status)
    assert.matches("(git -C p/workspace branch -m main)", r.stderr, 1, true)
    assert.matches("(git -C p/workspace checkout -b main)", r.stderr, 1, true)
    sh("cd " .. H.quote(top) .. " && git -C p/workspace branch -m main")
    assert.equal(0, H.orket("init --yes p", { cwd = top }).status)
  end)

  it("adopts a repository that has main while HEAD is on master", function()
    local dir = H.tmpdir() .. "/p"
    local ws = repo_on_master(dir)
    sh("git -C " .. H.quote(ws) .. " branch main")
    local r = H.orket("init --yes .", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("master\n", git(ws, "branch --show-current"))
  end)
end)
