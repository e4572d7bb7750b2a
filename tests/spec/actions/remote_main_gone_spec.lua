-- orket.actions.mainline with a remote that had main and has it no more (its default branch
-- renamed trunk, or main deleted): main is not made again there beside the team's branch.
-- The sync stops at once, journaled, with words naming the remote's HEAD branch and what to
-- do; a person's choice (dropping Orket's record of the remote's main) lets main be pushed
-- anew. A new remote (no branch at all) is pushed to as before, and so is one git.remote
-- changed to that never had main (some other branch only): "had main" is of the remote it
-- was fetched from or pushed to.
local mainline = require "orket.actions.mainline"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local MF = require "tests.mainline_fixture"
local sh = MF.sh

local function kinds(db)
  local out = {}
  for _, e in ipairs(db:events {}) do out[#out + 1] = e end
  return out
end

describe("a remote whose main is gone", function()
  local base, db, repo
  before_each(function()
    base = H.tmpdir()
    db, repo = MF.make(base)
  end)
  after_each(function()
    repo:close()
    db:close()
    H.cleanup()
  end)

  local function sync()
    return mainline.sync { db = db, repo = repo, g = { remote = base .. "/remote.git" }, sleep = function() end }
  end

  it("is refused, naming the remote's HEAD branch, until a person drops Orket's record of it", function()
    assert.equal("pushed", sync().code)
    local remote = H.quote(base .. "/remote.git")
    sh("git -C " .. remote .. " branch -m main trunk && git -C " .. remote .. " symbolic-ref HEAD refs/heads/trunk")
    local out = sync()
    assert.equal("failed", out.code)
    assert.equal(1, out.attempts) -- not tried again: waiting does not bring main back
    assert.matches("has no main any more", out.error, 1, true)
    assert.matches("its HEAD names trunk", out.error, 1, true)
    assert.matches("git -C workspace update-ref -d refs/remotes/orket/main", out.error, 1, true)
    assert.is_nil(assert(G.ls_remote(base .. "/remote.git"))["refs/heads/main"])
    local evs = kinds(db)
    assert.equal("push_failed", evs[#evs].kind)
    assert.equal("ENOENT", evs[#evs].data.code)
    -- a hand-in's own push of main is refused the same way
    local ok, err, code = repo:push(base .. "/remote.git", "main")
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.matches("its HEAD names trunk", err, 1, true)
    assert.is_nil(assert(G.ls_remote(base .. "/remote.git"))["refs/heads/main"])
    -- the command the message gives, run from the project's folder (here: ws is workspace/)
    sh("git -C " .. H.quote(base .. "/ws") .. " update-ref -d refs/remotes/orket/main")
    assert.equal("pushed", sync().code)
    assert.equal(repo:head("main"), assert(G.ls_remote(base .. "/remote.git"))["refs/heads/main"])
  end)

  it("a branch renamed back to main is merged and pushed as before", function()
    assert.equal("pushed", sync().code)
    local remote = H.quote(base .. "/remote.git")
    sh("git -C " .. remote .. " branch -m main trunk && git -C " .. remote .. " symbolic-ref HEAD refs/heads/trunk")
    assert.equal("failed", sync().code)
    sh("git -C " .. remote .. " branch -m trunk main && git -C " .. remote .. " symbolic-ref HEAD refs/heads/main")
    assert.equal("uptodate", sync().code)
  end)

  it("git.remote changed to a remote with a branch but no main (a forge's README on master) gets main", function()
    assert.equal("pushed", sync().code)
    local new = base .. "/new.git"
    local q = H.quote(new)
    local forge = H.quote(base .. "/forge")
    sh("git init -q --bare -b master " .. q .. " && git init -q -b master " .. forge .. " && git -C " .. forge
      .. " -c user.name=forge -c user.email=forge@example.invalid commit -q --allow-empty -m README && git -C "
      .. forge .. " push -q " .. q .. " master")
    local out = mainline.sync { db = db, repo = repo, g = { remote = new }, sleep = function() end }
    assert.equal("pushed", out.code, out.error)
    assert.equal(repo:head("main"), assert(G.ls_remote(new))["refs/heads/main"])
    assert(repo:fetch_main(new))
    -- the new remote had main now: its rename is refused as before
    sh("git -C " .. q .. " branch -m main trunk")
    local ok, err, code = repo:fetch_main(new)
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.matches("has no main any more", err, 1, true)
  end)

  it("a new, empty remote gets main", function()
    assert.equal("pushed", sync().code)
    sh("rm -rf " .. H.quote(base .. "/remote.git"))
    assert(G.init_bare(base .. "/remote.git"))
    assert.equal("pushed", sync().code)
    assert.equal(repo:head("main"), assert(G.ls_remote(base .. "/remote.git"))["refs/heads/main"])
  end)
end)
