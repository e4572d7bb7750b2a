-- orket.c.gitrepo and a path whose attributes name a filter driver (`filter=lfs`: Git LFS,
-- git-crypt, a team's own clean filter). git stages such a file through the driver's clean
-- command; libgit2 runs only its own crlf and ident filters, so a card's file went into main
-- as its raw content (an LFS object's bytes where git commits a pointer). Such a path is
-- never staged from a card's directory: a new one is left out with a note naming the path,
-- the attribute and the driver; a tracked one the card changed refuses the commit
-- (EUNSAFE), as a tracked file over the cap does; one left as committed, or deleted, is an
-- ordinary path. The driver is refused whatever any config says of it.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local GC = require "tests.gitcards"
local GUARD, sh, git = GC.GUARD, GC.sh, GC.git

describe("orket.c.gitrepo with a filter= attribute", function()
  local base, ws, repo, card -- card: its directories (tests.gitcards)
  before_each(function()
    base = H.tmpdir()
    ws = base .. "/ws"
    -- a team's repository: LFS for *.bin (its blob a pointer, as git-lfs's clean made it),
    -- git-crypt for secrets/, and a folder whose .bin files are taken out of LFS again
    sh("mkdir -p " .. H.quote(ws .. "/assets") .. " && cd " .. H.quote(ws) .. " && git init -q -b main"
      .. " && git config user.email a@b && git config user.name A"
      .. " && printf '*.bin filter=lfs diff=lfs merge=lfs -text\\nsecrets/** filter=git-crypt diff=git-crypt\\n"
      .. "plain/*.bin -filter\\n' > .gitattributes"
      .. " && printf 'version https://git-lfs.github.com/spec/v1\\noid sha256:ab\\nsize 3\\n' > assets/old.bin"
      .. " && echo hi > notes.txt && git add -A && git commit -qm initial")
    repo = assert(G.open(ws))
    card = GC.cards(repo, base)
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  local function att(...) return card.att(...) end
  local function commit(...) return card.commit(...) end
  local function in_branch(ref, path) return git(ws, "ls-tree -r --name-only " .. ref .. " -- " .. path) ~= "" end

  local LFS_NOTE = " (its attributes say filter=lfs: git commits it through the filter driver lfs, which Orket "
    .. "does not run: not committed)"

  it("leaves a new file under a filter driver out, noted, by a whole walk and by the turn's paths", function()
    local a = assert(att("F1"))
    H.write(a .. "/assets/logo.bin", "binary-ish payload\n")
    H.write(a .. "/a.txt", "a\n")
    local _, kind, skipped = assert(commit("F1", 1)) -- a whole walk
    assert.equal("committed", kind)
    assert.same({ "assets/logo.bin" .. LFS_NOTE }, skipped)
    assert.is_true(in_branch("orket/F1", "a.txt"))
    assert.is_false(in_branch("orket/F1", "assets/logo.bin"))
    -- by the turn's paths; another driver; a path whose -filter takes it out of LFS is ordinary
    sh("mkdir -p " .. H.quote(a .. "/secrets") .. " " .. H.quote(a .. "/plain"))
    H.write(a .. "/secrets/db.txt", "hunter2\n")
    H.write(a .. "/plain/icon.bin", "icon\n")
    H.write(a .. "/b.txt", "b\n")
    _, kind, skipped = assert(commit("F1", 2, { "b.txt", "secrets/db.txt", "plain/icon.bin", "assets/logo.bin" }))
    assert.equal("committed", kind)
    assert.same({ "secrets/db.txt (its attributes say filter=git-crypt: git commits it through the filter driver "
      .. "git-crypt, which Orket does not run: not committed)", "assets/logo.bin" .. LFS_NOTE }, skipped)
    assert.is_true(in_branch("orket/F1", "plain/icon.bin"))
    assert.is_false(in_branch("orket/F1", "secrets/db.txt"))
    assert(repo:merge_to_main("F1", GUARD))
    assert.equal("", git(ws, "ls-tree -r --name-only main -- assets/logo.bin secrets"))
    assert.equal("", git(ws, "status --short"))
    -- a detach removes what was left out, as it does a file over the cap
    assert.is_true(repo:detach("F1"))
    assert.is_nil(io.open(base .. "/cards/F1/assets/logo.bin"))
  end)

  it("refuses a card's change to a tracked file under a filter driver, naming it, and commits nothing of the turn", function()
    local a = assert(att("F2"))
    H.write(a .. "/a.txt", "a\n")
    sh("touch " .. H.quote(a .. "/assets/old.bin")) -- new stamps, the same bytes: no change
    assert.same({}, select(3, assert(commit("F2", 1, { "a.txt", "assets/old.bin" }))))
    H.write(a .. "/assets/old.bin", "the raw new logo\n")
    H.write(a .. "/b.txt", "b\n")
    local tip = repo:head("orket/F2")
    for _, paths in ipairs { false, { "b.txt", "assets/old.bin" } } do
      local ok, msg, code = commit("F2", 2, paths or nil)
      assert.is_nil(ok)
      assert.equal("EUNSAFE", code)
      assert.matches("assets/old.bin changed, and its attributes say filter=lfs: git commits it through the filter "
        .. "driver lfs, which Orket does not run, so its raw content would go into main; the change is not committed, "
        .. "nor anything else of the turn: bring it back to its committed version or delete it (a person commits "
        .. "such a change in workspace/ with git, which runs the driver)", msg, 1, true)
      assert.equal(tip, repo:head("orket/F2"))
    end
    -- a change, so no detach hands the directory on
    local ok, dmsg, code = repo:detach("F2")
    assert.is_nil(ok)
    assert.equal("EDIRTY", code)
    assert.matches("uncommitted changes (assets/old.bin", dmsg, 1, true)
    -- deleted: an ordinary change, committed
    os.remove(a .. "/assets/old.bin")
    assert.equal("committed", select(2, assert(commit("F2", 3))))
    assert.is_false(in_branch("orket/F2", "assets/old.bin"))
    assert.is_true(in_branch("orket/F2", "b.txt"))
  end)
end)
