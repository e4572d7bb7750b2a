-- orket.actions.move: a person's or a forge's move: any move but done is the board's; a
-- move to done finishes the card (its branch merged when the workspace's repository has
-- one), and only moves it when there is no repository or no branch; a refused move changes
-- nothing.
local move = require "orket.actions.move"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

local DEV = { seat = "senior_developer", roles = { "coder" } }
local GUARD = { seat = "integrity_guard", roles = { "integrity_guard" } }
local WHO = { name = "senior_developer", email = "senior_developer@orket.invalid" }

local function sh(cmd) assert(os.execute(cmd), cmd) end

describe("actions.move", function()
  local db, b, base
  before_each(function()
    base = H.tmpdir()
    db, b = F.fixture(base .. "/o.db", { { id = "E-1", summary = "one" }, { id = "E-2", summary = "two" } })
    sh("mkdir -p " .. base .. "/ws")
    H.write(base .. "/ws/a.txt", "main\n")
  end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  local function review(id)
    assert(b:transition(id, "in_progress", { actor = DEV }))
    assert(b:transition(id, "code_review", { actor = DEV }))
  end

  -- the workspace's repository, with E-1's branch holding a change: repo, main's head
  local function worked(id)
    local repo = assert(G.init(base .. "/ws", WHO))
    local wt = assert(repo:worktree(id, base .. "/wt/" .. id))
    H.write(wt .. "/a.txt", "card\n")
    assert(repo:commit(id, { name = WHO.name, email = WHO.email, message = id .. ": work" }))
    return repo, repo:head("main")
  end

  local function mv(id, to, actor, workspace)
    return db:tx(function()
      return move.move { db = db, board = b, card = id, to = to, opts = { actor = actor, reason = to == "blocked" and "input" or nil },
        workspace = workspace, event_actor = actor.seat }
    end)
  end

  it("does not finish a card without a branch whose recorded work main lacks", function()
    local repo = worked("E-2")
    local made = repo:head("orket/E-2")
    db:event { kind = "commit", card = "E-2", data = { id = made, turn = 2, branch = "orket/E-2", kind = "commit" } }
    repo:close()
    -- workspace/'s repository removed and made again: no branch, main without the work
    sh("rm -rf " .. base .. "/ws/.git " .. base .. "/wt")
    local again = assert(G.init(base .. "/ws", WHO))
    again:close()
    review("E-2")
    local out = assert(mv("E-2", "done", GUARD, base .. "/ws"))
    assert.equal("work_lost", out.code)
    assert.equal("in_progress", b:get("E-2").status)
    assert.matches("neither it nor main has its last commit", out.why, 1, true)
  end)

  it("leaves any move but done to the board", function()
    local out = assert(mv("E-1", "in_progress", DEV, base .. "/ws"))
    assert.equal("moved", out.code)
    assert.equal("in_progress", out.card.status)
    out = assert(mv("E-1", "blocked", DEV))
    assert.equal("blocked", out.card.status)
    local none, _, code = mv("E-1", "done", GUARD)
    assert.is_nil(none)
    assert.equal("ETRANSITION", code)
  end)

  it("only moves a card to done when the workspace has no repository", function()
    review("E-1")
    local out = assert(mv("E-1", "done", GUARD, base .. "/ws"))
    assert.equal("done", out.code)
    assert.is_nil(out.merge)
    assert.equal("done", b:get("E-1").status)
  end)

  it("merges the card's branch into main when it has one, and only moves a card without one", function()
    local repo, before = worked("E-1")
    repo:close()
    review("E-1")
    review("E-2")
    local out = assert(mv("E-1", "done", GUARD, base .. "/ws"))
    assert.equal("done", out.code)
    assert.is_table(out.merge)
    repo = assert(G.open(base .. "/ws"))
    assert.equal(out.merge.id, repo:head("main"))
    assert.not_equal(before, repo:head("main"))
    local head = repo:head("main")
    repo:close()
    local evs = db:events { card = "E-1" }
    assert.equal("merge", evs[#evs].kind)
    -- E-2 never worked in the repository: no branch, only the move
    out = assert(mv("E-2", "done", GUARD, base .. "/ws"))
    assert.equal("done", out.code)
    assert.is_nil(out.merge)
    repo = assert(G.open(base .. "/ws"))
    assert.equal(head, repo:head("main"))
    repo:close()
  end)

  it("refuses a move to done by the seat that did the work, merging nothing", function()
    local repo, before = worked("E-1")
    review("E-1")
    local none, err, code = mv("E-1", "done", { seat = "senior_developer", roles = { "integrity_guard" } }, base .. "/ws")
    assert.is_nil(none)
    assert.equal("ESELF_REVIEW", code)
    assert.matches("senior_developer", err)
    assert.equal(before, repo:head("main"))
    assert.equal("code_review", b:get("E-1").status)
    repo:close()
  end)
end)
