-- orket.c.gitrepo and a tracked file over the 64 MiB cap (a model, a data set: real
-- repositories track them). The cap keeps such a file out of staging; it must never turn into
-- a deletion: a detach keeps it in the parked directory, the next card's commits keep its
-- entry, main and workspace/ keep it. A card that changes it is refused (EUNSAFE, naming the
-- file and the cap), never committed as a deletion or as what is left of it.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local uv = require "luv"

local GC = require "tests.gitcards"
local WHO, GUARD, sh, git = GC.WHO, GC.GUARD, GC.sh, GC.git
local BIG = 65 * 1024 * 1024 -- sparse: over the cap

local function size(path)
  local st = uv.fs_stat(path)
  return st and st.size
end

describe("orket.c.gitrepo with a tracked file over the cap", function()
  local base, ws, repo, card -- card: its directories (tests.gitcards)
  before_each(function()
    base = H.tmpdir()
    ws = base .. "/ws"
    -- a person's repository, adopted: model.bin committed by git itself
    sh("mkdir -p " .. ws .. " && cd " .. H.quote(ws) .. " && git init -q -b main && git config user.email a@b"
      .. " && git config user.name A && echo hi > notes.txt && truncate -s " .. BIG .. " model.bin"
      .. " && git add -A && git commit -qm 'with a big asset'")
    repo = assert(G.open(ws))
    card = GC.cards(repo, base)
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  local function att(...) return card.att(...) end
  local function hand_over(...) return card.hand_over(...) end
  local function commit(...) return card.commit(...) end

  it("keeps it through a whole walk's detach, the next card's commits, the merge and workspace/", function()
    local a = assert(att("B1"))
    assert.equal(BIG, size(a .. "/model.bin"))
    H.write(a .. "/a.txt", "a\n")
    local _, kind, skipped = assert(commit("B1", 1)) -- a whole walk
    assert.equal("committed", kind)
    assert.same({}, skipped) -- tracked: nothing was left out
    assert(repo:merge_to_main("B1", GUARD))
    assert.is_true(repo:detach("B1")) -- a whole walk too
    assert.equal(BIG, size(base .. "/cards/B1/model.bin")) -- the branch's: never removed
    hand_over("B1", "B2")
    local b = assert(att("B2"))
    assert.equal(BIG, size(b .. "/model.bin"))
    H.write(b .. "/.gitattributes", "*.md text\n")
    sh("touch " .. H.quote(b .. "/model.bin")) -- a program's touch: new stamps, the same bytes
    assert.same({ ".gitattributes" }, repo:status("B2"))
    assert.equal("committed", select(2, assert(commit("B2", 1))))
    assert.matches("model%.bin", git(ws, "ls-tree -r --name-only orket/B2"))
    -- and by the turn's paths alone
    sh("touch " .. H.quote(b .. "/model.bin"))
    assert.equal("clean", select(2, assert(commit("B2", 2, { "model.bin" }))))
    assert(repo:merge_to_main("B2", GUARD))
    assert.equal("", git(ws, "diff --stat HEAD~2 HEAD -- model.bin"))
    assert.matches("model%.bin", git(ws, "ls-tree -r --name-only main"))
    assert.equal(BIG, size(ws .. "/model.bin"))
    assert.is_true(repo:detach("B2", { paths = { "model.bin", ".gitattributes" } }))
    assert.equal(BIG, size(base .. "/cards/B2/model.bin"))
    assert.equal("", git(ws, "status --short"))
    assert.truthy(repo:check())
  end)

  it("refuses a card's change to it, naming it and the cap, and keeps the file", function()
    local a = assert(att("C1"))
    H.write(a .. "/a.txt", "a\n")
    sh("truncate -s " .. (BIG + 1) .. " " .. H.quote(a .. "/model.bin"))
    local tip = repo:head("orket/C1")
    for _, paths in ipairs { false, { "a.txt", "model.bin" } } do
      local ok, msg, code = commit("C1", 1, paths or nil)
      assert.is_nil(ok)
      assert.equal("EUNSAFE", code)
      assert.matches("model%.bin changed and is 68157441 bytes, over the 64 MiB cap", msg)
      assert.matches("neither is a deletion", msg)
      assert.equal(tip, repo:head("orket/C1")) -- nothing committed
    end
    assert.same({ "a.txt", "model.bin" }, repo:status("C1"))
    local _, msg, code = repo:detach("C1")
    assert.equal("EDIRTY", code)
    assert.matches("uncommitted changes", msg)
    _, msg, code = repo:detach("C1", { paths = { "model.bin" } })
    assert.equal("EDIRTY", code)
    assert.matches("model%.bin", msg)
    assert.equal(BIG + 1, size(a .. "/model.bin"))
    -- truncated to nothing: under the cap, an ordinary change (git's own rules)
    sh("truncate -s 0 " .. H.quote(a .. "/model.bin"))
    assert.equal("committed", select(2, assert(commit("C1", 2))))
    -- a file under the cap grown over it is refused as well
    H.write(a .. "/small.txt", "small\n")
    assert(commit("C1", 3))
    sh("truncate -s " .. BIG .. " " .. H.quote(a .. "/small.txt"))
    local _, msg2, code2 = commit("C1", 4, { "small.txt" })
    assert.equal("EUNSAFE", code2)
    assert.matches("small%.txt changed", msg2)
  end)
end)
