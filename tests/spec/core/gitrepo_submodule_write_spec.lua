-- orket.c.gitrepo and a submodule (a gitlink, mode 160000) in an adopted repository. In a
-- card's directory the submodule is an empty folder; what a card writes there is not the
-- branch's, as git refuses it (`git add lib/x`: "Pathspec is in submodule"): left out with a
-- note naming the submodule, the gitlink kept, never replaced by a tree of the card's files,
-- and main's view never writes into the person's submodule checkout.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local GC = require "tests.gitcards"
local WHO, GUARD, sh, git = GC.WHO, GC.GUARD, GC.sh, GC.git


describe("orket.c.gitrepo with a submodule", function()
  local base, ws, repo, card -- card: its directories (tests.gitcards)
  before_each(function()
    base = H.tmpdir()
    ws = base .. "/ws"
    local sub = base .. "/sub"
    local cfg = " && git config user.email a@b && git config user.name A"
    sh("mkdir -p " .. sub .. " && cd " .. H.quote(sub) .. " && git init -q -b main" .. cfg
      .. " && echo lib > lib.c && git add . && git commit -qm lib")
    sh("mkdir -p " .. ws .. " && cd " .. H.quote(ws) .. " && git init -q -b main" .. cfg
      .. " && echo v1 > notes.txt && git add . && git commit -qm initial"
      .. " && git -c protocol.file.allow=always submodule add -q " .. H.quote(sub) .. " lib >/dev/null 2>&1"
      .. " && git commit -qm 'add submodule'")
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
  local function gitlink(ref)
    return git(ws, "ls-tree " .. ref .. " lib"):match("^160000 commit ") ~= nil
  end

  it("leaves a card's files in the submodule out, noted, and keeps the gitlink in main and workspace/", function()
    local a = assert(att("S1"))
    sh("mkdir -p " .. H.quote(a .. "/lib"))
    H.write(a .. "/lib/agent.c", "int agent;\n")
    H.write(a .. "/a.txt", "a\n")
    -- by the turn's paths
    local _, kind, skipped = assert(commit("S1", 1, { "a.txt", "lib/agent.c" }))
    assert.equal("committed", kind)
    assert.same({ "lib/agent.c (inside the submodule lib: not committed)" }, skipped)
    assert.is_true(gitlink("orket/S1"))
    -- by a whole walk
    H.write(a .. "/b.txt", "b\n")
    _, kind, skipped = assert(commit("S1", 2))
    assert.equal("committed", kind)
    assert.same({ "lib/ (inside the submodule lib: not committed)" }, skipped)
    assert.is_true(gitlink("orket/S1"))
    assert.equal("", git(ws, "ls-tree -r --name-only orket/S1 -- lib/agent.c"))
    assert(repo:merge_to_main("S1", GUARD))
    assert.is_true(gitlink("main"))
    assert.equal("b\n", H.read(ws .. "/b.txt"))
    assert.is_nil(H.read(ws .. "/lib/agent.c")) -- the person's submodule checkout is theirs
    assert.equal("", git(ws .. "/lib", "status --short"))
    assert.equal("", git(ws, "status --short"))
    -- the detach takes the card's files out of the folder, not the gitlink out of the branch
    assert.is_true(repo:detach("S1"))
    assert.is_nil(H.read(base .. "/cards/S1/lib/agent.c"))
    hand_over("S1", "S2")
    local b = assert(att("S2"))
    H.write(b .. "/c.txt", "c\n")
    assert.equal("committed", select(2, assert(commit("S2", 1)))) -- a whole walk, the folder gone or empty
    assert.is_true(gitlink("orket/S2"))
    assert(repo:merge_to_main("S2", GUARD))
    assert.is_true(gitlink("main"))
    assert.equal("", git(ws, "status --short"))
    assert.truthy(repo:check())
  end)

  it("never writes into the person's submodule checkout when main's tree puts a folder over the gitlink", function()
    -- a branch an earlier build committed: the gitlink lib replaced by a tree holding agent.c
    sh("cd " .. H.quote(ws) .. " && blob=$(echo 'int agent;' | git hash-object -w --stdin)"
      .. " && sub=$(printf '100644 blob %s\tagent.c\n' $blob | git mktree)"
      .. " && root=$( (git ls-tree main | grep -v '\tlib$'; printf '040000 tree %s\tlib\n' $sub) | git mktree)"
      .. " && git branch orket/V1 $(git commit-tree $root -p main -m 'V1: turn 1')")
    local m = assert(repo:merge_to_main("V1", GUARD))
    assert.equal(1, m.diverged)
    assert.is_nil(H.read(ws .. "/lib/agent.c"))
    assert.equal("", git(ws .. "/lib", "status --short"))
    assert.matches("^160000 ", git(ws, "ls-files -s lib")) -- the person's index keeps the gitlink
    assert.equal("", git(ws, "ls-files -s lib/agent.c"))
    local list = assert(repo:view_status())
    assert.equal("lib/agent.c", list[1] and list[1].path)
  end)

  it("leaves a file a card puts at the submodule's path out, noted, the gitlink kept", function()
    local a = assert(att("F1"))
    sh("rm -rf " .. H.quote(a .. "/lib"))
    H.write(a .. "/lib", "not a submodule\n")
    H.write(a .. "/a.txt", "a\n")
    local want = { "lib (a file at a submodule's path: the submodule is kept, not committed)" }
    -- by the turn's paths (the whole walk says it) and by a whole walk
    local _, kind, skipped = assert(commit("F1", 1, { "a.txt", "lib" }))
    assert.equal("committed", kind)
    assert.same(want, skipped)
    assert.is_true(gitlink("orket/F1"))
    H.write(a .. "/b.txt", "b\n")
    _, kind, skipped = assert(commit("F1", 2))
    assert.equal("committed", kind)
    assert.same(want, skipped)
    assert.is_true(gitlink("orket/F1"))
  end)

  it("keeps the gitlink when a card removes the submodule's folder", function()
    local a = assert(att("R1"))
    sh("rm -rf " .. H.quote(a .. "/lib"))
    H.write(a .. "/a.txt", "a\n")
    assert.equal("committed", select(2, assert(commit("R1", 1))))
    assert.is_true(gitlink("orket/R1"))
    assert.same({}, repo:status("R1"))
  end)
end)
