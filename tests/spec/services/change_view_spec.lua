-- orket.views.change: a card's change is measured against main as the card found it, so a
-- card merged by a fast-forward after taking main in (a conflict's rework) shows its own
-- files, not those of the cards main merged meanwhile.
local change = require "orket.views.change"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

local WHO = { name = "senior_developer", email = "senior_developer@orket.invalid" }

describe("views.change", function()
  after_each(function() H.cleanup() end)

  it("measures a card merged by a fast-forward after main was merged into it from that main", function()
    local base = H.tmpdir()
    local db = F.fixture(base .. "/o.db", { { id = "E-1", summary = "one" }, { id = "E-2", summary = "two" } })
    local _ <close> = setmetatable({}, { __close = function() db:close() end })
    assert(os.execute("mkdir -p " .. base .. "/workspace"))
    H.write(base .. "/workspace/shared.txt", "orig\n")
    local repo <close> = assert(G.init(base .. "/workspace", WHO))
    local function turn(card, files, n)
      local wt = base .. "/.wt/" .. card
      if not repo:head("orket/" .. card) then assert(repo:worktree(card, wt)) end
      for p, text in pairs(files) do H.write(wt .. "/" .. p, text) end
      local id = assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = card .. ": turn " .. n }))
      db:event { kind = "commit", card = card, data = { id = id, turn = n, branch = "orket/" .. card, kind = "commit" } }
    end
    turn("E-1", { ["shared.txt"] = "one\n", ["e1.txt"] = "e1\n" }, 1)
    turn("E-2", { ["shared.txt"] = "two\n", ["e2only.txt"] = "e2\n" }, 1)
    assert(repo:merge_to_main("E-2", WHO))
    -- E-1 conflicts: main is merged into its branch, and its next turn resolves it
    local m = assert(repo:merge_from_main("E-1", WHO))
    assert.same({ "shared.txt" }, m.conflicts)
    db:event { kind = "merge_main", card = "E-1", data = { id = m.id, kind = m.kind, conflicts = m.conflicts } }
    turn("E-1", { ["shared.txt"] = "resolved\n" }, 2)
    local merged = assert(repo:merge_to_main("E-1", WHO))
    assert.equal("fastforward", merged.kind)
    db:event { kind = "merge", card = "E-1", data = { id = merged.id, kind = merged.kind, branch = "orket/E-1" } }
    local doc = assert(change.of(db, base, "E-1"))
    assert.equal("main_taken", doc.base_from)
    local paths = {}
    for _, f in ipairs(doc.files) do paths[#paths + 1] = f.path end
    table.sort(paths)
    assert.same({ "e1.txt", "shared.txt" }, paths)
    -- E-2, merged by a fast-forward with no merge of main in it: from its first turn's parent
    local d2 = assert(change.of(db, base, "E-2"))
    assert.equal("first_turn", d2.base_from)
    assert.equal(2, d2.changed)
  end)

  it("counts a merge of the remote's copy of the card's branch as the card's own work", function()
    local base = H.tmpdir()
    local db = F.fixture(base .. "/o.db", { { id = "E-1", summary = "one" } })
    local _ <close> = setmetatable({}, { __close = function() db:close() end })
    assert(os.execute("mkdir -p " .. base .. "/workspace"))
    H.write(base .. "/workspace/shared.txt", "orig\n")
    local repo <close> = assert(G.init(base .. "/workspace", WHO))
    local wt = base .. "/.wt/E-1"
    assert(repo:worktree("E-1", wt))
    H.write(wt .. "/e1.txt", "e1\n")
    local id = assert(repo:commit("E-1", { name = WHO.name, email = WHO.email, message = "E-1: turn 1" }))
    db:event { kind = "commit", card = "E-1", data = { id = id, turn = 1, branch = "orket/E-1", kind = "commit" } }
    -- a person's commit on the forge's copy of the branch, merged into the card (a hand-in's)
    local remote, other = base .. "/remote.git", base .. "/other"
    local function sh(c) assert(os.execute(c), c) end
    assert.is_true(G.init_bare(remote))
    sh(string.format("git -C %s push -q %s orket/E-1 main 2>/dev/null", base .. "/workspace", remote))
    sh(string.format("git clone -q -b orket/E-1 %s %s 2>/dev/null && echo forge > %s/forge.txt && git -C %s add forge.txt "
      .. "&& git -C %s -c user.name=p -c user.email=p@x commit -qm forge && git -C %s push -q origin orket/E-1 2>/dev/null",
      remote, other, other, other, other, other))
    H.write(wt .. "/e1b.txt", "more\n")
    local id2 = assert(repo:commit("E-1", { name = WHO.name, email = WHO.email, message = "E-1: turn 2" }))
    db:event { kind = "commit", card = "E-1", data = { id = id2, turn = 2, branch = "orket/E-1", kind = "commit" } }
    assert(repo:fetch_branch(remote, "orket/E-1"))
    local m = assert(repo:merge_remote_to_card("E-1", WHO))
    assert.equal("merged", m.kind)
    local doc = assert(change.of(db, base, "E-1"))
    assert.equal("main", doc.base_from) -- not merged: where it left main
    local paths = {}
    for _, f in ipairs(doc.files) do paths[#paths + 1] = f.path end
    table.sort(paths)
    assert.same({ "e1.txt", "e1b.txt", "forge.txt" }, paths)
    -- merged by a fast-forward: the remote's merge is no main taken in
    assert.equal("fastforward", assert(repo:merge_to_main("E-1", WHO)).kind)
    db:event { kind = "merge", card = "E-1", data = { id = repo:head("main"), kind = "fastforward", branch = "orket/E-1" } }
    doc = assert(change.of(db, base, "E-1"))
    assert.equal("first_turn", doc.base_from)
    paths = {}
    for _, f in ipairs(doc.files) do paths[#paths + 1] = f.path end
    table.sort(paths)
    assert.same({ "e1.txt", "e1b.txt", "forge.txt" }, paths)
  end)
end)
