-- orket.actions.finish: a card finished in the caller's transaction: the move to done alone
-- without a branch, its branch merged into main first with one, a refused move that merges
-- nothing, and a conflict that sends the card back with its comment and journal event.
local finish = require "orket.actions.finish"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

local DEV = { seat = "senior_developer", roles = { "coder" } }
local GUARD = { seat = "integrity_guard", roles = { "integrity_guard" } }
local WHO = { name = "senior_developer", email = "senior_developer@orket.invalid" }

local function sh(cmd) assert(os.execute(cmd), cmd) end

-- A board with E-1 and E-2 in code_review, and a repository whose main holds a.txt.
local function fixture()
  local base = H.tmpdir()
  local db, b = F.fixture(base .. "/o.db", { { id = "E-1", summary = "one" }, { id = "E-2", summary = "two" } })
  for _, id in ipairs { "E-1", "E-2" } do
    assert(b:transition(id, "in_progress", { actor = DEV }))
    assert(b:transition(id, "code_review", { actor = DEV }))
  end
  sh("mkdir -p " .. base .. "/ws")
  H.write(base .. "/ws/a.txt", "main\n")
  local repo = assert(G.init(base .. "/ws", WHO))
  return db, b, repo, base
end

-- The card's branch with a.txt changed to text.
local function work(repo, base, card, text)
  local wt = assert(repo:worktree(card, base .. "/wt/" .. card))
  H.write(wt .. "/a.txt", text)
  assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = card .. ": work" }))
end

local function in_tx(db, fn) return db:tx(fn) end

local function kinds(db, card)
  local out = {}
  for _, e in ipairs(db:events { card = card }) do out[#out + 1] = e.kind end
  return out
end

describe("actions.finish", function()
  local db, b, repo, base
  before_each(function() db, b, repo, base = fixture() end)
  after_each(function()
    repo:close()
    db:close()
    H.cleanup()
  end)

  it("only moves a card without a branch", function()
    local before = repo:head("main")
    local out = assert(in_tx(db, function() return finish.finish { db = db, board = b, card = "E-1", opts = { actor = GUARD } } end))
    assert.equal("done", out.code)
    assert.equal("done", out.card.status)
    assert.is_nil(out.merge)
    assert.equal(before, repo:head("main"))
    assert.is_nil(kinds(db, "E-1")[#kinds(db, "E-1")]:match("^merge"))
  end)

  it("merges the card's branch into main before the move, journaled, with the kill point handed in", function()
    work(repo, base, "E-1", "card\n")
    local hits = {}
    local out = assert(in_tx(db, function()
      return finish.finish { db = db, board = b, card = "E-1", opts = { actor = GUARD }, repo = repo, run_id = nil,
        event_actor = "integrity_guard", hit = function(name) hits[#hits + 1] = name end }
    end))
    assert.equal("done", out.code)
    assert.equal("done", b:get("E-1").status)
    assert.equal(repo:head("main"), out.merge.id)
    assert.same({ "after_git_merge" }, hits)
    local evs = db:events { card = "E-1" }
    local merge = evs[#evs]
    assert.equal("merge", merge.kind)
    assert.equal("orket/E-1", merge.data.branch)
    assert.equal(out.merge.id, merge.data.id)
    assert.equal("integrity_guard", merge.actor)
  end)

  it("journals the remote's merge with stale when main's view could not follow it", function()
    sh("mkdir -p " .. base .. "/other")
    assert.is_true(G.init_bare(base .. "/remote.git"))
    assert.is_string(repo:push(base .. "/remote.git", "main"))
    H.write(base .. "/other/a.txt", "main\n")
    local other <close> = assert(G.init(base .. "/other", WHO))
    assert(other:fetch_main(base .. "/remote.git"))
    assert(other:merge_remote_to_main(WHO))
    assert(other:worktree("P1", base .. "/owt/P1"))
    H.write(base .. "/owt/P1/p.txt", "p\n")
    assert(other:commit("P1", { name = WHO.name, email = WHO.email, message = "theirs" }))
    assert(other:merge_to_main("P1", WHO))
    assert.is_string(other:push(base .. "/remote.git", "main"))
    assert(repo:fetch_main(base .. "/remote.git"))
    work(repo, base, "E-1", "card\n")
    H.write(base .. "/ws/.git/index.lock", "") -- a person's git at work: the view waits
    local out = assert(in_tx(db, function()
      return finish.finish { db = db, board = b, card = "E-1", opts = { actor = GUARD }, repo = repo, remote = true }
    end))
    os.remove(base .. "/ws/.git/index.lock")
    assert.equal("done", out.code)
    local remote
    for _, e in ipairs(db:events { card = "E-1" }) do
      if e.kind == "merge_remote" then remote = e end
    end
    assert.is_table(remote)
    assert.is_string(remote.data.stale)
  end)

  it("merges nothing when the move is refused", function()
    work(repo, base, "E-1", "card\n")
    local before = repo:head("main")
    local out, err, code = in_tx(db, function()
      return finish.finish { db = db, board = b, card = "E-1", opts = { actor = DEV }, repo = repo }
    end)
    assert.is_nil(out)
    assert.equal("EREVIEWER", code)
    assert.matches("integrity_guard", err)
    assert.equal(before, repo:head("main"))
    assert.equal("code_review", b:get("E-1").status)
  end)

  it("sends a conflicting card back to in_progress with a comment and a merge_conflict event", function()
    work(repo, base, "E-1", "one\n")
    work(repo, base, "E-2", "two\n")
    assert(in_tx(db, function() return finish.finish { db = db, board = b, card = "E-1", opts = { actor = GUARD }, repo = repo } end))
    local before = repo:head("main")
    local out = assert(in_tx(db, function()
      return finish.finish { db = db, board = b, card = "E-2", opts = { actor = GUARD }, repo = repo,
        conflict_actor = { seat = "integrity_guard", roles = { "integrity_guard" }, by = "engine" } }
    end))
    assert.equal("merge_conflict", out.code)
    assert.same({ "a.txt" }, out.paths)
    assert.matches("conflicts in: a.txt", out.why, 1, true)
    assert.equal("in_progress", b:get("E-2").status)
    assert.equal(out.why, b:comments("E-2")[#b:comments("E-2")].body)
    local k = kinds(db, "E-2")
    assert.equal("merge_conflict", k[#k])
    assert.equal(before, repo:head("main"))
  end)

  it("quotes a conflicting path that would read as another list or line in the comment", function()
    local paths = { "plain.txt", "a, b.txt", "evil\27[31mRED\27[0m\n[git] fake line.txt", "my file.txt", "x,y.txt" }
    local why = assert(finish.send_back(db, b, "E-2", paths, GUARD))
    local want = "Merging orket/E-2 into main conflicts in: plain.txt, 'a, b.txt', "
      .. "$'evil\\x1b[31mRED\\x1b[0m\\x0a[git] fake line.txt', 'my file.txt', x,y.txt. The engine sent"
    assert.equal(want, why:sub(1, #want))
    assert.is_nil(why:find("\n", 1, true))
    assert.equal(why, b:comments("E-2")[#b:comments("E-2")].body)
    local ev = db:events { card = "E-2" }
    assert.same(paths, ev[#ev].data.paths) -- the journal keeps the names as they are
  end)

  -- the journal's commit of a turn, as the engine records it
  local function recorded(card, id, turn)
    db:event { kind = "commit", card = card, data = { id = id, turn = turn, branch = "orket/" .. card, kind = "commit" } }
  end

  it("sends back a card whose branch lost its recorded work, merging nothing", function()
    work(repo, base, "E-1", "card\n")
    local made = repo:head("orket/E-1")
    recorded("E-1", made, 3)
    local before = repo:head("main")
    -- the branch made again at main's tip (workspace/'s repository removed and made anew)
    sh("git -C " .. base .. "/ws update-ref refs/heads/orket/E-1 main")
    local out = assert(in_tx(db, function()
      return finish.finish { db = db, board = b, card = "E-1", opts = { actor = GUARD }, repo = repo,
        conflict_actor = { seat = "integrity_guard", roles = { "integrity_guard" }, by = "engine" } }
    end))
    assert.equal("work_lost", out.code)
    assert.equal(made, out.commit)
    assert.matches("orket/E-1 no longer holds the card's work", out.why, 1, true)
    assert.matches("(" .. made:sub(1, 12) .. ", turn 3)", out.why, 1, true)
    assert.equal("in_progress", b:get("E-1").status)
    assert.equal(out.why, b:comments("E-1")[#b:comments("E-1")].body)
    local evs = db:events { card = "E-1" }
    assert.equal("work_lost", evs[#evs].kind)
    assert.equal(made, evs[#evs].data.id)
    assert.equal(before, repo:head("main"))
  end)

  it("finishes a card whose recorded work main already holds, or whose branch holds it", function()
    work(repo, base, "E-1", "card\n")
    local made = repo:head("orket/E-1")
    recorded("E-1", made, 1)
    assert(repo:merge_to_main("E-1", WHO)) -- merged elsewhere (the forge's main fetched)
    sh("git -C " .. base .. "/ws update-ref refs/heads/orket/E-1 " .. made .. "~1")
    local out = assert(in_tx(db, function()
      return finish.finish { db = db, board = b, card = "E-1", opts = { actor = GUARD }, repo = repo }
    end))
    assert.equal("done", out.code)
    -- a commit id that is no commit id is not looked for
    work(repo, base, "E-2", "two\n")
    recorded("E-2", "not-an-id", 1)
    out = assert(in_tx(db, function()
      return finish.finish { db = db, board = b, card = "E-2", opts = { actor = GUARD }, repo = repo }
    end))
    assert.equal("done", out.code)
  end)
end)
