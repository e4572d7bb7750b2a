-- main's view while a git operation of a person's is under way in workspace/ off main (a
-- rebase, git am, a cherry-pick, a revert, a merge on another branch, a bisect): the view
-- waits, and its reason names the operation and git's own commands that finish or undo it,
-- never `git checkout main`, which fails in the middle of one, or (once its conflicts are
-- staged) leaves it under way on main, whose next step then puts the branch's commit on main.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local WHO = { name = "senior_developer (coder)", email = "senior_developer@orket.invalid" }
local GUARD = { name = "integrity_guard", email = "integrity_guard@orket.invalid" }

local function sh(cmd) assert(os.execute(cmd), cmd) end

describe("main's view while a person's git operation is under way", function()
  local proj, pws, repo, git
  before_each(function()
    proj = H.tmpdir()
    pws = proj .. "/workspace"
    sh("mkdir -p " .. pws)
    H.write(pws .. "/e.txt", "human original\n")
    repo = assert(G.init(pws, WHO))
    git = "git -C " .. H.quote(pws) .. " -c user.name=p -c user.email=p@p "
    -- a branch of the person's changing e.txt, and a card's merge changing it on main
    sh(git .. "checkout -q -b mine && echo mine > " .. pws .. "/e.txt && " .. git .. "commit -qam 'mine: e' && " .. git
      .. "checkout -q main")
    local p = assert(repo:worktree("W1", proj .. "/wt/W1"))
    H.write(p .. "/e.txt", "the card's\n")
    assert(repo:commit("W1", { name = WHO.name, email = WHO.email, message = "W1" }))
    assert(repo:merge_to_main("W1", GUARD))
    assert.equal("the card's\n", H.read(pws .. "/e.txt"))
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  -- another card merged while the operation is under way: what the merge and status say
  local function merge_said(card)
    local p = assert(repo:worktree(card, proj .. "/wt/" .. card))
    H.write(p .. "/" .. card .. ".txt", "the card's\n")
    assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = card }))
    local m = assert(repo:merge_to_main(card, GUARD))
    assert.is_nil(H.read(pws .. "/" .. card .. ".txt")) -- nothing of main's written into it
    local list, behind, waits = assert(repo:view_status())
    assert.same({}, list)
    assert.is_true(waits)
    local text = H.orket("status -C " .. H.quote(proj))
    assert.equal(0, text.status, text.stderr)
    return m.stale, behind, text.stdout
  end

  for _, case in ipairs {
    { what = "a rebase", start = "checkout -q mine && GIT_EDITOR=true %s rebase main", said = "a rebase of yours under way (rebasing refs/heads/mine)",
      go = "git -C workspace rebase --continue", undo = "git -C workspace rebase --abort" },
    { what = "a rebase (apply)", start = "checkout -q mine && %s rebase --apply main", said = "a rebase of yours under way (rebasing refs/heads/mine)",
      go = "git -C workspace rebase --continue", undo = "git -C workspace rebase --abort" },
    { what = "a git am", start = "format-patch -1 --stdout main > ../p.patch && %s checkout -q mine && %s am ../p.patch",
      said = "a git am of yours under way", go = "git -C workspace am --continue", undo = "git -C workspace am --abort" },
    { what = "a cherry-pick", start = "checkout -q mine && %s cherry-pick main", said = "a cherry-pick of yours under way",
      go = "git -C workspace cherry-pick --continue", undo = "git -C workspace cherry-pick --abort" },
    { what = "a revert", start = "checkout -q mine && %s revert --no-edit main", said = "a revert of yours under way",
      go = "git -C workspace revert --continue", undo = "git -C workspace revert --abort" },
    { what = "a merge", start = "checkout -q mine && %s merge main", said = "a merge of yours under way",
      go = "git -C workspace commit", undo = "git -C workspace merge --abort" },
    { what = "a bisect", start = "bisect start && %s checkout -q --detach HEAD~1", said = "a bisect of yours under way",
      undo = "git -C workspace bisect reset" },
  } do
    it("names " .. case.what .. " under way with git's commands, never a checkout of main", function()
      -- (each stops on its conflict in e.txt: git's status is not 0 then)
      local cmd = "cd " .. H.quote(pws) .. " && { " .. git .. case.start:gsub("%%s", git) .. "; } >/dev/null 2>&1"
      os.execute(cmd)
      local stale, behind, text = merge_said("W2")
      for _, said in ipairs { stale, behind, text } do
        assert.matches(case.said, said, 1, true)
        if case.go then assert.matches(case.go, said, 1, true) end
        assert.matches(case.undo, said, 1, true)
        assert.is_nil(said:find("checkout main", 1, true), said)
        assert.is_nil(said:find("detached commit", 1, true), said)
      end
    end)
  end

  it("says the branch and checkout main once the rebase is done, and follows main once it is checked out", function()
    os.execute("cd " .. H.quote(pws) .. " && " .. git .. "checkout -q mine && " .. git .. "rebase main >/dev/null 2>&1")
    assert.matches("git -C workspace rebase --continue", select(2, merge_said("W2")), 1, true)
    H.write(pws .. "/e.txt", "mine, after the card's\n")
    sh("cd " .. H.quote(pws) .. " && " .. git .. "add e.txt && GIT_EDITOR=true " .. git .. "rebase --continue >/dev/null 2>&1")
    local _, behind = assert(repo:view_status())
    assert.matches("refs/heads/mine checked out, not main", behind, 1, true)
    assert.matches("git -C workspace checkout main", behind, 1, true)
    sh(git .. "checkout -q main")
    assert.equal(0, assert(repo:view_refresh()))
    assert.equal("the card's\n", H.read(pws .. "/W2.txt"))
    assert.equal("the card's\n", H.read(pws .. "/e.txt")) -- main's, not the branch's
    assert.is_nil(select(2, assert(repo:view_status())))
  end)
end)
