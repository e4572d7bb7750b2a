-- A card's branch (orket/<CARD>) checked out in workspace/ by a person, to look at the card's
-- work: Orket's commits on it would move it under their checkout (git status there then shows
-- the card's change undone, and their next commit makes it so). The view's reason says so
-- and how to look instead (git switch --detach), and a card's commit or merge from main
-- refuses to move that branch, as git refuses for another worktree's branch (the cards'
-- directories are no linked worktrees git knows: docs/git.md).
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local WHO = { name = "senior_developer (coder)", email = "senior_developer@orket.invalid" }
local GUARD = { name = "integrity_guard", email = "integrity_guard@orket.invalid" }

local function sh(cmd) assert(os.execute(cmd), cmd) end

describe("a card's branch checked out in workspace/", function()
  local proj, pws, repo, git
  before_each(function()
    proj = H.tmpdir()
    pws = proj .. "/workspace"
    sh("mkdir -p " .. pws)
    H.write(pws .. "/README", "hello\n")
    repo = assert(G.init(pws, WHO))
    git = "git -C " .. H.quote(pws) .. " "
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  -- card's directory, attached as a run attaches it (no linked worktree: git does not know it)
  local function card(id, file)
    local dir = assert(repo:attach(id, proj .. "/cards/" .. id, proj .. "/state/" .. id))
    if file then
      H.write(dir .. "/" .. file, "the card's\n")
      assert(repo:commit(id, { name = WHO.name, email = WHO.email, message = id }))
    end
    return dir
  end

  it("says Orket commits on it, and how to look at the card's work instead", function()
    card("B1", "b.txt")
    sh(git .. "checkout -q orket/B1")
    card("B2", "c.txt")
    local m = assert(repo:merge_to_main("B2", GUARD))
    local _, behind, waits = assert(repo:view_status())
    assert.is_true(waits)
    local text = H.orket("status -C " .. H.quote(proj))
    assert.equal(0, text.status, text.stderr)
    for _, said in ipairs { m.stale, behind, text.stdout } do
      assert.matches("workspace/ has refs/heads/orket/B1 checked out, a card's branch, which Orket's commits move", said,
        1, true)
      assert.matches("git -C workspace switch --detach orket/B1", said, 1, true)
      assert.matches("orket retry B1", said, 1, true)
    end
    -- as advised: the card's commit, detached, then main again
    sh(git .. "switch -q --detach orket/B1")
    assert.matches("a detached commit checked out, not main", select(2, assert(repo:view_status())), 1, true)
    sh(git .. "checkout -q main")
    assert.equal(0, assert(repo:view_refresh()))
    assert.equal("the card's\n", H.read(pws .. "/c.txt"))
    assert.is_nil(select(2, assert(repo:view_status())))
  end)

  it("refuses to move it by a card's commit or a merge from main, nothing moved, until it is no longer checked out", function()
    local dir = card("B1", "b.txt")
    local tip = assert(repo:head("orket/B1"))
    sh(git .. "checkout -q orket/B1")
    H.write(dir .. "/b2.txt", "more of the card's\n")
    local id, err, code = repo:commit("B1", { name = WHO.name, email = WHO.email, message = "more" })
    assert.is_nil(id)
    assert.equal("EUNSAFE", code) -- a run blocks the card with this as its comment
    assert.matches("workspace/ has refs/heads/orket/B1 checked out", err, 1, true)
    assert.matches("git -C workspace switch --detach orket/B1", err, 1, true)
    assert.matches("orket retry B1", err, 1, true)
    assert.equal(tip, repo:head("orket/B1"))
    assert.equal("", (io.popen(git .. "status --porcelain"):read("a")))
    -- main moved meanwhile: merging it into the card's branch (a clean directory, as the
    -- engine leaves it first) is refused too
    os.remove(dir .. "/b2.txt")
    card("B2", "c.txt")
    assert(repo:merge_to_main("B2", GUARD))
    local res, merr, mcode = repo:merge_from_main("B1", WHO)
    assert.is_nil(res)
    assert.equal("EUNSAFE", mcode, merr)
    assert.equal(tip, repo:head("orket/B1"))
    -- checked out no longer: both go on
    sh(git .. "checkout -q main")
    assert(repo:merge_from_main("B1", WHO))
    assert.equal("the card's\n", H.read(dir .. "/c.txt"))
    H.write(dir .. "/b2.txt", "more of the card's\n")
    assert.equal("committed", select(2, assert(repo:commit("B1", { name = WHO.name, email = WHO.email, message = "more" }))))
  end)
end)
