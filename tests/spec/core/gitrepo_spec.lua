-- orket.c.gitrepo: the workspace repository through the runtime: argument errors, the
-- nil, msg, CODE failures, worktrees per card, idempotent commits, merges both ways, and a
-- repository that stays consistent when the process is killed (SIGKILL) mid-loop.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local WHO = { name = "senior_developer (coder)", email = "senior_developer@orket.invalid" }
local GUARD = { name = "integrity_guard", email = "integrity_guard@orket.invalid" }

local function sh(cmd) assert(os.execute(cmd), cmd) end

describe("orket.c.gitrepo", function()
  local base, ws, repo
  before_each(function()
    base = H.tmpdir()
    ws = base .. "/ws"
    sh("mkdir -p " .. ws)
    H.write(ws .. "/README", "hello\n")
    H.write(ws .. "/.gitignore", "build/\n")
    local created
    repo, created = assert(G.init(ws, WHO))
    assert.is_true(created)
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  local function wt(card)
    local path = assert(repo:worktree(card, base .. "/wt/" .. card))
    return path
  end

  it("raises on misuse and closes idempotently", function()
    assert.has_error(function() G.init() end, "bad argument #1 to 'init' (string expected, got no value)")
    assert.has_error(function() G.init(ws, { name = "x" }) end, "bad argument #2 to 'init' (field 'email' must be a string)")
    assert.has_error(function() repo:commit("X", { name = "a", email = "b" }) end,
      "bad argument #2 to 'commit' (field 'message' must be a string)")
    assert.has_error(function() repo:log("main", 0) end, "bad argument #2 to 'log' (must be between 1 and 10000)")
    local r2 = assert(G.open(ws))
    assert.matches("^gitrepo %(", tostring(r2))
    r2:close()
    r2:close()
    assert.equal("gitrepo (closed)", tostring(r2))
    local ok, err = pcall(r2.head, r2, "main")
    assert.is_false(ok)
    assert.matches("repository is closed", err)
    do
      local r3 <close> = assert(G.open(ws))
      assert.truthy(r3:head("main"))
    end
  end)

  it("makes a repository a killed first init left half made, its stale lock files removed", function()
    -- killed in git init (config.lock) and in the first commit (main's ref lock): main never
    -- made, and every later init failed on the lock file for good
    for _, lockname in ipairs { "config.lock", "refs/heads/main.lock", "HEAD.lock", "index.lock" } do
      local half = base .. "/half-" .. lockname:gsub("/", "-")
      sh("mkdir -p " .. half .. " && git init -q -b main " .. half)
      H.write(half .. "/a.txt", "a\n")
      H.write(half .. "/.git/" .. lockname, "")
      local r <close>, err = G.init(half, WHO)
      assert(r, lockname .. ": " .. tostring(err))
      assert.truthy(r:head("main"), lockname)
      assert.is_nil(H.read(half .. "/.git/" .. lockname), lockname)
    end
    -- a repository with main keeps its locks: a run's own recovery, under its run lock, clears those
    H.write(ws .. "/.git/config.lock", "")
    local r2 <close> = assert(G.init(ws, WHO))
    assert.equal("", H.read(ws .. "/.git/config.lock"))
    os.remove(ws .. "/.git/config.lock")
  end)

  it("returns nil, msg, CODE on expected failures", function()
    local ok, msg, code = G.open(base .. "/none")
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.matches("^git: no git repository", msg)
    ok, msg, code = repo:worktree("../evil", base .. "/x")
    assert.is_nil(ok)
    assert.equal("EINVAL", code)
    assert.matches("not a usable card id", msg)
    assert.is_false(G.card_valid("a/b"))
    assert.is_true(G.card_valid("ISSUE-12"))
    ok, _, code = repo:status("NOPE")
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    ok, _, code = repo:head("orket/NOPE")
    assert.equal("ENOENT", code)
    wt("X1")
    ok, msg, code = repo:commit("X1", { name = "a<b>", email = "e", message = "m" })
    assert.is_nil(ok)
    assert.equal("EINVAL", code)
    ok, _, code = repo:commit("X1", { name = "a", email = "e", message = "m", turn = "two words" })
    assert.equal("EINVAL", code)
  end)

  it("init is idempotent and commits what is there, honouring .gitignore", function()
    sh("mkdir -p " .. ws .. "/build")
    H.write(ws .. "/build/out.o", "binary")
    local again, created = assert(G.init(ws, WHO))
    assert.is_false(created)
    assert.equal(repo:head("main"), again:head("main"))
    again:close()
    local path = wt("X1")
    assert.equal("hello\n", H.read(path .. "/README"))
    assert.is_nil(H.read(path .. "/build/out.o"))
  end)

  it("gives each card its own worktree on orket/<CARD>, reused on resume", function()
    local path, created = repo:worktree("X1", base .. "/wt/X1")
    assert.is_true(created)
    assert.equal(base .. "/wt/X1", path)
    local path2, created2 = repo:worktree("X1", base .. "/wt/X1")
    assert.equal(path, path2)
    assert.is_false(created2)
    assert.equal(repo:head("main"), repo:head("orket/X1"))
    assert.equal(path, repo:worktree_path("X1"))
    local _, _, code = repo:worktree("X1", base .. "/elsewhere")
    assert.equal("EEXIST", code)
    local _, msg
    _, msg, code = repo:worktree("X2", ws .. "/inside")
    assert.equal("EINVAL", code)
    assert.matches("outside main's working tree", msg)
    -- the worktree's .git is a file pointing into the main repository
    local dotgit = H.read(path .. "/.git")
    assert.matches("^gitdir: ", dotgit)
  end)

  describe("attached directories", function()
    local function att(card, dir)
      return repo:attach(card, base .. "/cards/" .. (dir or card), base .. "/state/" .. (dir or card))
    end
    -- a detached directory handed to another card, as the engine's pool does
    local function hand_over(from, to)
      sh(string.format("mv %s/cards/%s %s/cards/%s && mv %s/state/%s %s/state/%s", base, from, base, to, base, from,
        base, to))
    end

    it("gives a card its branch in a directory with no git metadata of its own", function()
      local dir, switched = assert(att("A1"))
      assert.equal(base .. "/cards/A1", dir)
      assert.is_true(switched)
      assert.equal("hello\n", H.read(dir .. "/README"))
      assert.is_nil(H.read(dir .. "/.git")) -- nothing in the directory names a repository
      assert.equal(dir, repo:worktree_path("A1"))
      H.write(dir .. "/a.txt", "a\n")
      assert.same({ "a.txt" }, repo:status("A1"))
      local id, kind = repo:commit("A1", { name = WHO.name, email = WHO.email, message = "A1: turn 1", turn = "1/A1/1" })
      assert.equal("committed", kind)
      assert.equal(id, repo:head("orket/A1"))
      assert.equal(repo:head("main"), assert(repo:log("orket/A1"))[1] and repo:head("main"))
      assert.same({}, repo:status("A1"))
      assert.equal("exists", select(2, repo:commit("A1", { name = WHO.name, email = WHO.email, message = "again",
        turn = "1/A1/1" })))
      -- main's HEAD is untouched: the card's branch moved, not HEAD
      local m = assert(repo:merge_to_main("A1", GUARD))
      assert.equal("fastforward", m.kind)
      assert.equal("a\n", H.read(ws .. "/a.txt"))
      assert.truthy(repo:check())
      -- misuse: inside main's working tree, the state inside the directory
      local _, msg, code = repo:attach("A2", ws .. "/inside", base .. "/state/A2")
      assert.equal("EINVAL", code)
      assert.matches("outside main's working tree", msg)
      _, msg, code = repo:attach("A2", base .. "/cards/A2", base .. "/cards/A2/state")
      assert.equal("EINVAL", code)
      assert.matches("outside its directory", msg)
    end)

    it("never shows one card's files to the next card that reuses its directory", function()
      local a = assert(att("S1"))
      -- uncommitted work keeps the directory with its card
      H.write(a .. "/secret.txt", "S1's secret\n")
      local _, _, code = repo:detach("S1")
      assert.equal("EDIRTY", code)
      -- committed on S1's branch (never merged), plus a file .gitignore keeps out of commits
      assert(repo:commit("S1", { name = WHO.name, email = WHO.email, message = "S1: turn 1", turn = "1/S1/1" }))
      sh("mkdir -p " .. a .. "/build")
      H.write(a .. "/build/key.pem", "S1's key\n")
      assert.is_true(repo:detach("S1"))
      assert.is_nil(H.read(a .. "/build/key.pem"))
      assert.is_false(repo:detach("S1")) -- nothing attached any more
      hand_over("S1", "S2")
      local b, switched = assert(att("S2"))
      assert.is_true(switched) -- secret.txt removed: it is not on main
      assert.is_nil(H.read(b .. "/secret.txt"))
      assert.is_nil(H.read(b .. "/build/key.pem"))
      assert.equal("hello\n", H.read(b .. "/README"))
      assert.same({}, repo:status("S2"))
      -- S1's work is still on its branch, and S1 gets a directory again from it
      local a2 = assert(att("S1", "S1-again"))
      assert.equal("S1's secret\n", H.read(a2 .. "/secret.txt"))
    end)

    it("reads the next card's .gitattributes and .gitignore in a directory handed on, not the last card's", function()
      local a = assert(att("G1"))
      H.write(a .. "/g1.txt", "g1\n") -- staged through the attributes and ignore rules: read, and none there
      assert(repo:commit("G1", { name = WHO.name, email = WHO.email, message = "G1: turn 1", turn = "1/G1/1" }))
      assert(repo:merge_to_main("G1", GUARD))
      assert.is_true(repo:detach("G1"))
      hand_over("G1", "G2")
      local b = assert(att("G2"))
      H.write(b .. "/.gitattributes", "*.txt text eol=lf\n")
      H.write(b .. "/.gitignore", "skip.txt\n")
      H.write(b .. "/crlf.txt", "a\r\nb\r\n")
      H.write(b .. "/skip.txt", "not committed\n")
      assert(repo:commit("G2", { name = WHO.name, email = WHO.email, message = "G2: turn 1", turn = "1/G2/1",
        paths = { ".gitattributes", ".gitignore", "crlf.txt", "skip.txt" } }))
      local function git(cmd)
        local f = assert(io.popen("git -C " .. H.quote(ws) .. " " .. cmd))
        local out = f:read("a")
        f:close()
        return out
      end
      assert.equal("a\nb\n", git("cat-file blob orket/G2:crlf.txt")) -- normalized as G2's .gitattributes says
      assert.equal(".gitattributes\n.gitignore\nREADME\ncrlf.txt\ng1.txt\n", git("ls-tree --name-only orket/G2"))
    end)

    it("stages a touched path by what it holds: the same bytes are no change, a new mode or new bytes are", function()
      local a = assert(att("H1"))
      local function commit(turn)
        return select(2, assert(repo:commit("H1", { name = WHO.name, email = WHO.email, message = "H1: " .. turn,
          turn = "1/H1/" .. turn, paths = { "h.sh" } })))
      end
      H.write(a .. "/h.sh", "echo hi\n")
      assert.equal("committed", commit(1))
      H.write(a .. "/h.sh", "echo hi\n") -- written again, the same bytes: a new file stamp only
      assert.equal("clean", commit(2))
      sh("chmod +x " .. H.quote(a .. "/h.sh"))
      assert.equal("committed", commit(3))
      H.write(a .. "/h.sh", "echo bye\n")
      assert.equal("committed", commit(4))
      local f = assert(io.popen("git -C " .. H.quote(ws) .. " ls-tree orket/H1 h.sh"))
      local line = f:read("a")
      f:close()
      assert.matches("^100755 blob ", line)
      assert.is_true(repo:detach("H1", { paths = { "h.sh" } }))
    end)

    it("writes only the paths that differ when a directory changes hands, and keeps a file someone changed", function()
      local a = assert(att("P1"))
      H.write(a .. "/p1.txt", "p1\n")
      assert(repo:commit("P1", { name = WHO.name, email = WHO.email, message = "P1: turn 1", turn = "1/P1/1" }))
      assert(repo:merge_to_main("P1", GUARD))
      assert.is_true(repo:detach("P1"))
      hand_over("P1", "P2")
      -- main holds p1.txt now: the next card's tree is the directory's, nothing to write
      local readme = assert(require("luv").fs_stat(base .. "/cards/P2/README"))
      local _, switched = assert(att("P2"))
      assert.is_false(switched)
      assert.equal(readme.ino, require("luv").fs_stat(base .. "/cards/P2/README").ino)
      assert.is_true(repo:detach("P2"))
      -- a directory whose file was changed behind its index is not overwritten
      H.write(base .. "/cards/P2/p1.txt", "changed by hand\n")
      hand_over("P2", "P3")
      -- P3 branches from a main without p1.txt? No: from main, which has it; so make main move on
      local _, msg, code = repo:attach("P3", base .. "/cards/P3", base .. "/state/P3")
      if code then -- the changed file differs from the tree P3 needs
        assert.equal("EDIRTY", code)
        assert.matches("p1.txt", msg)
        assert.equal("changed by hand\n", H.read(base .. "/cards/P3/p1.txt"))
      else
        -- same tree: nothing written, and the change shows as the card's own
        assert.same({ "p1.txt" }, repo:status("P3"))
      end
    end)

    -- card's directory attached, a file of its own ("<name>.txt" holding "<name>\n")
    -- committed in its first turn and merged into main -> the commit
    local function merged(card, name)
      local d = assert(att(card))
      H.write(d .. "/" .. name .. ".txt", name .. "\n")
      local id = assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = card .. ": turn 1",
        turn = "1/" .. card .. "/1" }))
      assert(repo:merge_to_main(card, GUARD))
      return id
    end

    it("plans a hand-over again in the next process from the index and the tip, its mark lost", function()
      -- Q1's directory holds main as Q1 left it; R1 merges r1.txt after that
      merged("Q1", "q1")
      assert.is_true(repo:detach("Q1"))
      merged("R1", "r1")
      -- Q2 took Q1's directory and its branch was made at main; the process stopped before
      -- r1.txt was written, and the mark reads idle (attach must not trust it)
      hand_over("Q1", "Q2")
      sh(string.format("git -C %s branch orket/Q2 main", ws))
      H.write(base .. "/state/Q2/orket-checkout-pending", "idle   \n")
      assert.is_nil(H.read(base .. "/cards/Q2/r1.txt"))
      repo:close()
      repo = assert(G.open(ws))
      local d, switched = assert(att("Q2"))
      assert.is_true(switched)
      assert.equal("r1\n", H.read(d .. "/r1.txt"))
      assert.equal("q1\n", H.read(d .. "/q1.txt"))
      assert.same({}, repo:status("Q2"))
      -- nothing of main is committed away as deleted
      assert.equal("clean", select(2, assert(repo:commit("Q2", { name = WHO.name, email = WHO.email,
        message = "Q2: turn 1", turn = "1/Q2/1" }))))
      assert.truthy(repo:check())
    end)

    it("reads an earlier checkout's writing in a handed-over directory as planned: a changed file stops it", function()
      local w1 = merged("W1", "w1")
      assert.is_true(repo:detach("W1"))
      merged("V1", "v1")
      -- W2 took W1's directory; on disk its marker is still an old checkout's "writing" (the
      -- later stages lost), and someone put a v1.txt of their own there
      hand_over("W1", "W2")
      sh(string.format("git -C %s branch orket/W2 main", ws))
      H.write(base .. "/state/W2/orket-checkout-pending", string.format("%-7s %s\n", "writing", w1))
      H.write(base .. "/cards/W2/v1.txt", "mine\n")
      repo:close()
      repo = assert(G.open(ws))
      local _, msg, code = att("W2")
      assert.equal("EDIRTY", code)
      assert.matches("v1.txt", msg)
      assert.equal("mine\n", H.read(base .. "/cards/W2/v1.txt"))
    end)

    it("stages only the paths a commit names, as the whole walk would stage them", function()
      local a = assert(att("N1"))
      local function commit(paths, msg)
        return repo:commit("N1", { name = WHO.name, email = WHO.email, message = msg or "N1", paths = paths })
      end
      H.write(a .. "/a.txt", "a\n")
      H.write(a .. "/b.txt", "b\n")
      sh("mkdir -p " .. a .. "/sub " .. a .. "/build")
      H.write(a .. "/sub/c.txt", "c\n")
      H.write(a .. "/build/out.o", "o\n")
      local _, kind = assert(commit({ "a.txt", "sub/c.txt", "build/out.o", "gone.txt" }))
      assert.equal("committed", kind)
      -- b.txt was not named: still a change; build/ is ignored, gone.txt never was
      assert.same({ "b.txt" }, repo:status("N1"))
      local files = {}
      for _, c in ipairs(assert(repo:log("orket/N1"))) do files[#files + 1] = c.id end
      assert.equal(1, #files)
      -- a deletion named is a deletion committed
      os.remove(a .. "/a.txt")
      assert.equal("committed", select(2, assert(commit({ "a.txt" }))))
      assert.same({ "b.txt" }, repo:status("N1"))
      -- nothing named changed: clean, and nothing rewritten
      assert.equal("clean", select(2, assert(commit({}))))
      -- a directory named is not a plain case: the whole tree is walked (b.txt goes in too)
      assert.equal("committed", select(2, assert(commit({ "sub" }))))
      assert.same({}, repo:status("N1"))
      -- a .gitignore changes what other paths mean: the whole walk again
      H.write(a .. "/.gitignore", "")
      assert.equal("committed", select(2, assert(commit({ ".gitignore" }))))
      assert.same({}, repo:status("N1")) -- build/out.o is committed now that nothing ignores it
      -- a path ignored once it is tracked is still staged when named, as the whole walk does
      H.write(a .. "/.gitignore", "build/\n")
      assert.equal("committed", select(2, assert(commit({ ".gitignore" }))))
      H.write(a .. "/build/out.o", "o2\n")
      assert.equal("committed", select(2, assert(commit({ "build/out.o" }))))
      assert.same({}, repo:status("N1"))
      -- the checks on the way still hold: a FIFO .gitignore in a named path's directory
      sh("mkfifo " .. a .. "/sub/.gitignore")
      H.write(a .. "/sub/d.txt", "d\n")
      local _, msg, code = commit({ "sub/d.txt" })
      assert.equal("EUNSAFE", code)
      assert.matches("sub/.gitignore", msg, 1, true)
      os.remove(a .. "/sub/.gitignore")
      -- bad names are refused, whatever the rest
      for _, bad in ipairs { "../x", "/etc/passwd", "a//b", "a/./b", "", "sub/" } do
        _, msg, code = commit({ bad })
        assert.equal("EINVAL", code, bad)
        assert.matches("paths%[1%]", msg)
      end
      assert.has_error(function() commit({ 1 }) end)
      assert.has_error(function() commit("a.txt") end)
    end)

    it("names each file the turn wrote that a .gitignore rule keeps out of the commit", function()
      local a = assert(att("N2"))
      local function commit(paths)
        return repo:commit("N2", { name = WHO.name, email = WHO.email, message = "N2", paths = paths })
      end
      local NOTE = " (matched by a .gitignore rule: not committed)"
      -- the .gitignore written in the same turn: the whole walk, and the file it hides is said
      H.write(a .. "/.gitignore", "*.secret\n")
      H.write(a .. "/work.secret", "work\n")
      H.write(a .. "/kept.txt", "k\n")
      local _, kind, skipped = assert(commit({ ".gitignore", "work.secret", "kept.txt" }))
      assert.equal("committed", kind)
      assert.same({ "work.secret" .. NOTE }, skipped)
      -- named alone, staged one by one: said too; a deleted or tracked path is not
      H.write(a .. "/more.secret", "more\n")
      H.write(a .. "/kept.txt", "k2\n")
      _, kind, skipped = assert(commit({ "more.secret", "kept.txt", "gone.secret" }))
      assert.equal("committed", kind)
      assert.same({ "more.secret" .. NOTE }, skipped)
      -- the whole walk (no paths named) says nothing of them: the turn did not name them
      H.write(a .. "/kept.txt", "k3\n")
      _, kind, skipped = assert(commit(nil))
      assert.equal("committed", kind)
      assert.same({}, skipped or {})
    end)

    it("excludes a card's files by the tree's .gitignore alone, never a person's info/exclude or excludesFile", function()
      -- a person's own ignores for workspace/: main's .git/info/exclude and a core.excludesFile in
      -- main's config reach every card's handle (the same gitdir); they kept an agent's files out
      -- of its commits unsaid, and a detach then deleted them as ignored
      H.write(ws .. "/.git/info/exclude", "# mine\n*.log\nhid/\n")
      H.write(base .. "/mine.ignore", "*.tmp\n")
      sh("git -C " .. H.quote(ws) .. " config core.excludesFile " .. H.quote(base .. "/mine.ignore"))
      local function tree(ref)
        local f = assert(io.popen("git -C " .. H.quote(ws) .. " ls-tree -r --name-only " .. ref))
        local t = f:read("a")
        f:close()
        return t
      end
      local a = assert(att("E1"))
      local function commit(paths)
        return repo:commit("E1", { name = WHO.name, email = WHO.email, message = "E1", paths = paths })
      end
      local NOTE = " (matched by a .gitignore rule: not committed)"
      -- named paths, staged one by one
      H.write(a .. "/ign.log", "card\n")
      sh("mkdir -p " .. a .. "/build")
      H.write(a .. "/build/out.o", "o\n")
      local _, kind, skipped = assert(commit({ "ign.log", "build/out.o" }))
      assert.equal("committed", kind)
      assert.same({ "build/out.o" .. NOTE }, skipped) -- the committed .gitignore's rule, named as such
      assert.equal(".gitignore\nREADME\nign.log\n", tree("orket/E1"))
      -- the whole walk: a directory and a file only the person's rules match are committed
      sh("mkdir -p " .. a .. "/hid/deep")
      H.write(a .. "/hid/deep/f.txt", "f\n")
      H.write(a .. "/x.o", "x\n")
      H.write(a .. "/t.tmp", "t\n")
      H.write(a .. "/.gitignore", "build/\n*.o\n")
      _, kind = assert(commit(nil))
      assert.equal("committed", kind)
      assert.equal(".gitignore\nREADME\nhid/deep/f.txt\nign.log\nt.tmp\n", tree("orket/E1"))
      assert.same({}, repo:status("E1"))
      -- an uncommitted one is a change: listed, and a detach keeps it (never deleted as ignored)
      H.write(a .. "/new.log", "n\n")
      H.write(a .. "/hid/new.txt", "n\n")
      assert.same({ "hid/new.txt", "new.log" }, repo:status("E1"))
      local _, _, code = repo:detach("E1")
      assert.equal("EDIRTY", code)
      _, _, code = repo:detach("E1", { paths = { "new.log" } })
      assert.equal("EDIRTY", code)
      assert.equal("n\n", H.read(a .. "/new.log"))
      assert(commit(nil))
      assert.is_true(repo:detach("E1"))
      assert.equal("n\n", H.read(a .. "/hid/new.txt"))
      assert.is_nil(H.read(a .. "/build/out.o")) -- what .gitignore kept out goes, as before
      assert.is_nil(H.read(a .. "/x.o"))
    end)

    it("sees another handle's commit and merge in a directory it attached", function()
      local a = assert(att("M1"))
      local function commit(h, msg, paths)
        return assert(h:commit("M1", { name = WHO.name, email = WHO.email, message = msg, paths = paths }))
      end
      H.write(a .. "/m.txt", "1\n")
      commit(repo, "one", { "m.txt" })
      -- another process takes the card's next turn in the same directory
      local other = assert(G.open(ws))
      assert(other:attach("M1", base .. "/cards/M1", base .. "/state/M1"))
      H.write(a .. "/m.txt", "2\n")
      local two = commit(other, "two", { "m.txt" })
      other:close()
      assert.equal(two, repo:head("orket/M1"))
      H.write(a .. "/m.txt", "3\n")
      local three = commit(repo, "three", { "m.txt" })
      local log = assert(repo:log("orket/M1"))
      assert.equal(three, log[1].id)
      assert.equal(two, log[2].id) -- on top of the other handle's commit, not beside it
      assert.same({}, repo:status("M1"))
    end)

    it("knows a turn another handle committed, though its own list of the card's turns says no", function()
      local a = assert(att("T1"))
      local function commit(h, turn, text)
        H.write(a .. "/t.txt", text)
        return assert(h:commit("T1", { name = WHO.name, email = WHO.email, message = turn, turn = turn,
          paths = { "t.txt" } }))
      end
      local one = commit(repo, "1/T1/1", "1\n")
      local id, kind = commit(repo, "1/T1/1", "1 again\n")
      assert.equal("exists", kind)
      assert.equal(one, id)
      -- another process commits turn 2 on the card's branch: this handle's list lacks it
      local other = assert(G.open(ws))
      assert(other:attach("T1", base .. "/cards/T1", base .. "/state/T1"))
      local two = commit(other, "1/T1/2", "2\n")
      other:close()
      id, kind = commit(repo, "1/T1/2", "2 again\n")
      assert.equal("exists", kind)
      assert.equal(two, id)
      assert.equal(two, repo:head("orket/T1"))
      -- and this handle's own turns go on being known after its next commit
      local three = commit(repo, "1/T1/3", "3\n")
      for turn, want in pairs { ["1/T1/1"] = one, ["1/T1/2"] = two, ["1/T1/3"] = three } do
        id, kind = commit(repo, turn, "again\n")
        assert.equal("exists", kind, turn)
        assert.equal(want, id, turn)
      end
      local log = assert(repo:log("orket/T1"))
      assert.same({ three, two, one }, { log[1].id, log[2].id, log[3].id })
    end)

    it("checks and clears only the paths a detach names", function()
      local a = assert(att("D1"))
      H.write(a .. "/d.txt", "d\n")
      assert(repo:commit("D1", { name = WHO.name, email = WHO.email, message = "D1", paths = { "d.txt" } }))
      sh("mkdir -p " .. a .. "/build")
      H.write(a .. "/build/key.pem", "D1's key\n")
      H.write(a .. "/late.txt", "not committed\n")
      local _, msg, code = repo:detach("D1", { paths = { "d.txt", "build/key.pem", "late.txt" } })
      assert.equal("EDIRTY", code)
      assert.matches("uncommitted", msg)
      os.remove(a .. "/late.txt")
      -- late.txt is gone again, so naming it is harmless; the ignored key goes
      assert.is_true(repo:detach("D1", { paths = { "d.txt", "build/key.pem", "late.txt" } }))
      assert.is_nil(H.read(a .. "/build/key.pem"))
      assert.equal("d\n", H.read(a .. "/d.txt"))
      -- a path that is not a plain case walks the whole directory
      local b = assert(att("D2"))
      H.write(b .. "/x.txt", "x\n")
      sh("mkdir -p " .. b .. "/sub")
      _, _, code = repo:detach("D2", { paths = { "sub" } })
      assert.equal("EDIRTY", code) -- x.txt, found by the walk though not named
      _, _, code = repo:detach("D2", { paths = { "../x" } })
      assert.equal("EINVAL", code)
    end)

    it("finds a named file changed, made executable or removed since its commit", function()
      local a = assert(att("D3"))
      H.write(a .. "/e.txt", "e\n")
      H.write(a .. "/g.txt", "g\n")
      assert(repo:commit("D3", { name = WHO.name, email = WHO.email, message = "D3", paths = { "e.txt", "g.txt" } }))
      local only = { paths = { "e.txt", "g.txt" } }
      H.write(a .. "/e.txt", "E\n") -- the same size, other bytes
      local _, msg, code = repo:detach("D3", only)
      assert.equal("EDIRTY", code, msg)
      H.write(a .. "/e.txt", "e\n")
      sh("chmod +x " .. a .. "/g.txt")
      _, msg, code = repo:detach("D3", only)
      assert.equal("EDIRTY", code, msg)
      sh("chmod -x " .. a .. "/g.txt")
      os.remove(a .. "/g.txt")
      _, msg, code = repo:detach("D3", only)
      assert.equal("EDIRTY", code, msg)
      H.write(a .. "/g.txt", "g\n")
      -- as committed again: clean, and the directory still serves a commit and a detach after
      assert.is_true(repo:detach("D3", only))
      a = assert(att("D3"))
      H.write(a .. "/e.txt", "e2\n")
      local id, kind = repo:commit("D3", { name = WHO.name, email = WHO.email, message = "D3 again", paths = { "e.txt" } })
      assert.equal("committed", kind, id)
      assert.is_true(repo:detach("D3", { paths = { "e.txt" } }))
      assert.equal("e2\n", H.read(a .. "/e.txt"))
    end)

    it("removes what git never commits before the directory is handed on", function()
      local a = assert(att("F1"))
      H.write(a .. "/f.txt", "f\n")
      assert(repo:commit("F1", { name = WHO.name, email = WHO.email, message = "F1" }))
      sh("mkfifo " .. a .. "/pipe")
      sh("mkdir -p " .. a .. "/nested/.git && echo x > " .. a .. "/nested/x.txt")
      assert.is_true(repo:detach("F1"))
      assert.is_nil(require("luv").fs_lstat(a .. "/pipe"))
      assert.is_nil(require("luv").fs_lstat(a .. "/nested"))
      assert.equal("f\n", H.read(a .. "/f.txt"))
      -- a nested repository over files the branch tracks keeps the directory where it is
      local b = assert(att("F2"))
      sh("mkdir -p " .. b .. "/lib && echo l > " .. b .. "/lib/l.txt")
      assert(repo:commit("F2", { name = WHO.name, email = WHO.email, message = "F2" }))
      sh("mkdir -p " .. b .. "/lib/.git")
      local _, msg, code = repo:detach("F2")
      assert.equal("EDIRTY", code)
      assert.matches("lib/ holds a nested repository", msg, 1, true)
      assert.equal("l\n", H.read(b .. "/lib/l.txt"))
    end)

    it("ignores a .git planted in the directory and empties a directory that has no index", function()
      local a = assert(att("G1"))
      H.write(a .. "/.git", "gitdir: " .. base .. "/elsewhere\n")
      H.write(a .. "/g.txt", "g\n")
      local id = assert(repo:commit("G1", { name = WHO.name, email = WHO.email, message = "G1: turn 1" }))
      assert.equal(id, repo:head("orket/G1"))
      sh("rm -f " .. base .. "/state/G1/index")
      repo:close()
      repo = assert(G.open(ws))
      sh("mkdir -p " .. base .. "/cards/G2 && echo stray > " .. base .. "/cards/G2/stray.txt")
      local b = assert(att("G2"))
      assert.is_nil(H.read(b .. "/stray.txt"))
      assert.equal("hello\n", H.read(b .. "/README"))
    end)
  end)

  it("removes a card's worktree, keeping its branch, and refuses while changes are uncommitted", function()
    local path = wt("R1")
    H.write(path .. "/a.txt", "one\n")
    local _, msg, code = repo:worktree_remove("R1")
    assert.equal("EDIRTY", code)
    assert.matches("card R1 has uncommitted changes %(a.txt%)", msg)
    assert.equal("one\n", H.read(path .. "/a.txt"))
    local id = assert(repo:commit("R1", { name = WHO.name, email = WHO.email, message = "R1 turn 1" }))
    assert.is_true(repo:worktree_remove("R1"))
    assert.is_nil(H.read(path .. "/a.txt"))
    assert.is_nil(repo:worktree_path("R1"))
    assert.equal(id, repo:head("orket/R1"))
    assert.is_false(repo:worktree_remove("R1")) -- none left: nothing to do
    -- made again, it holds the branch's files
    local again, created = repo:worktree("R1", base .. "/wt/R1")
    assert.is_true(created)
    assert.equal("one\n", H.read(again .. "/a.txt"))
    _, msg, code = repo:worktree_remove("../evil")
    assert.equal("EINVAL", code)
  end)

  it("keeps a card's worktree open only while it is the one on disk, whoever removes or remakes it", function()
    local path = wt("K1")
    H.write(path .. "/a.txt", "one\n")
    assert(repo:commit("K1", { name = WHO.name, email = WHO.email, message = "K1 turn 1" }))
    assert.same({}, repo:status("K1")) -- opened and kept by this handle
    -- another handle (another process, as a worker would be) removes it: this one sees it gone
    local other = assert(G.open(ws))
    assert.is_true(other:worktree_remove("K1"))
    local _, msg, code = repo:status("K1")
    assert.equal("ENOENT", code)
    assert.matches("card K1 has no worktree", msg)
    _, _, code = repo:commit("K1", { name = WHO.name, email = WHO.email, message = "K1 lost" })
    assert.equal("ENOENT", code)
    -- made again elsewhere by the other handle, on a branch that moved meanwhile
    local kept = assert(other:worktree("K1", base .. "/wt/K1b"))
    H.write(kept .. "/b.txt", "two\n")
    local id2 = assert(other:commit("K1", { name = WHO.name, email = WHO.email, message = "K1 turn 2" }))
    assert.equal(kept, repo:worktree_path("K1"))
    assert.same({}, repo:status("K1"))
    H.write(kept .. "/c.txt", "three\n")
    assert.same({ "c.txt" }, repo:status("K1"))
    local id3 = assert(repo:commit("K1", { name = WHO.name, email = WHO.email, message = "K1 turn 3" }))
    assert.equal(id3, repo:head("orket/K1"))
    assert.are_not.equal(id2, id3)
    -- removed and made again at the very same path, quickly: still the files of the new one
    assert.is_true(other:worktree_remove("K1"))
    assert(other:worktree("K1", base .. "/wt/K1b"))
    H.write(kept .. "/d.txt", "four\n")
    assert.same({ "d.txt" }, repo:status("K1"))
    assert.equal("EEXIST", select(3, repo:worktree("K1", base .. "/wt/K1")))
    assert(repo:worktree("K1", base .. "/wt/K1b"))
    -- its metadata broken under it: refused as broken, not served from what was kept
    H.write(ws .. "/.git/worktrees/K1/gitdir", base .. "/nowhere/.git\n")
    _, msg, code = repo:status("K1")
    assert.equal("EINVAL", code)
    assert.matches("broken", msg)
    other:close()
  end)

  it("commits a turn's changes with its author, once", function()
    local path = wt("X1")
    H.write(path .. "/a.txt", "one\n")
    sh("mkdir -p " .. path .. "/src")
    H.write(path .. "/src/b.lua", "return 1\n")
    assert.same({ "a.txt", "src/b.lua" }, repo:status("X1"))
    local msg = "X1 turn 1\n\ncard: X1, turn: 1, run: r-1"
    local id, kind = repo:commit("X1", { name = WHO.name, email = WHO.email, message = msg, turn = "r-1/X1/1" })
    assert.equal("committed", kind)
    assert.matches("^%x+$", id)
    assert.equal(40, #id)
    assert.same({}, repo:status("X1"))
    -- a resume repeats the turn: found by its trailer, nothing new
    H.write(path .. "/a.txt", "two\n")
    local id2, kind2 = repo:commit("X1", { name = WHO.name, email = WHO.email, message = msg, turn = "r-1/X1/1" })
    assert.equal("exists", kind2)
    assert.equal(id, id2)
    assert.equal(id, repo:find_trailer("orket/X1", G.TURN_TRAILER, "r-1/X1/1"))
    assert.is_false(repo:find_trailer("orket/X1", G.TURN_TRAILER, "r-1/X1/2"))
    -- nothing changed: clean, HEAD's id
    local id3, kind3 = repo:commit("X1", { name = WHO.name, email = WHO.email, message = "t2", turn = "r-1/X1/2" })
    assert.equal("committed", kind3)
    local id4, kind4 = repo:commit("X1", { name = WHO.name, email = WHO.email, message = "t3", turn = "r-1/X1/3" })
    assert.equal("clean", kind4)
    assert.equal(id3, id4)
    local log = repo:log("orket/X1")
    assert.equal(2, #log)
    assert.equal(id3, log[1].id)
    assert.equal("X1 turn 1", log[2].summary)
    assert.equal(WHO.name, log[2].author)
    assert.equal(WHO.email, log[2].email)
    assert.equal(1, log[2].parents)
    local main_log = repo:log("main") -- main's own history, nothing hidden
    assert.equal(1, #main_log)
    assert.equal("Initial commit", main_log[1].summary)
    assert.equal(0, main_log[1].parents)
  end)

  it("merges into main: fast-forward, merge commit, and a conflict that leaves main alone", function()
    local a, b, c = wt("A"), wt("B"), wt("C")
    H.write(a .. "/a.txt", "from A\n")
    H.write(b .. "/b.txt", "from B\n")
    H.write(c .. "/a.txt", "from C\n")
    for _, card in ipairs { "A", "B", "C" } do
      assert.equal("committed", select(2, repo:commit(card, { name = WHO.name, email = WHO.email, message = card })))
    end
    assert.equal("uptodate", assert(repo:merge_from_main("A", WHO)).kind)
    local r = assert(repo:merge_to_main("A", GUARD))
    assert.equal("fastforward", r.kind)
    assert.equal(repo:head("orket/A"), r.id)
    assert.equal("from A\n", H.read(ws .. "/a.txt"))
    -- two cards editing different files both land
    r = assert(repo:merge_to_main("B", GUARD))
    assert.equal("merged", r.kind)
    assert.equal(r.id, repo:head("main"))
    assert.equal("from B\n", H.read(ws .. "/b.txt"))
    assert.equal("from A\n", H.read(ws .. "/a.txt"))
    assert.is_nil(r.stale)
    -- C edited a.txt too: conflict, named, main untouched
    local before = repo:head("main")
    local ok, msg, code, paths = repo:merge_to_main("C", GUARD)
    assert.is_nil(ok)
    assert.equal("ECONFLICT", code)
    assert.same({ "a.txt" }, paths)
    assert.matches("conflicts in: a.txt", msg)
    assert.equal(before, repo:head("main"))
    assert.equal("from A\n", H.read(ws .. "/a.txt"))
    assert.is_true(repo:check())
    -- main into C: the next turn sees main, with markers where they clash
    local m = assert(repo:merge_from_main("C", WHO))
    assert.equal("conflict", m.kind)
    assert.same({ "a.txt" }, m.conflicts)
    local text = H.read(c .. "/a.txt")
    assert.matches("<<<<<<< orket/C", text, 1, true)
    assert.matches(">>>>>>> main", text, 1, true)
    assert.equal("from B\n", H.read(c .. "/b.txt"))
    assert.equal(2, repo:log("orket/C")[1].parents)
    H.write(c .. "/a.txt", "from A and C\n")
    repo:commit("C", { name = WHO.name, email = WHO.email, message = "resolve" })
    r = assert(repo:merge_to_main("C", GUARD))
    assert.equal("fastforward", r.kind)
    assert.equal("from A and C\n", H.read(ws .. "/a.txt"))
    -- a card with uncommitted work refuses main merged in
    H.write(b .. "/wip", "x")
    local _, _, dcode = repo:merge_from_main("B", WHO)
    assert.equal("EDIRTY", dcode)
    os.remove(b .. "/wip")
    m = assert(repo:merge_from_main("B", WHO))
    assert.equal("fastforward", m.kind)
    assert.equal("from A and C\n", H.read(b .. "/a.txt"))
    assert.is_true(repo:check())
  end)

  it("merges main into a card as a regular file with markers where a symlink and a file clash", function()
    local s1, s2 = wt("S1"), wt("S2")
    sh("ln -s /nowhere/target " .. s1 .. "/lf.txt")
    H.write(s2 .. "/lf.txt", "a file\n")
    for _, card in ipairs { "S1", "S2" } do
      assert.equal("committed", select(2, repo:commit(card, { name = WHO.name, email = WHO.email, message = card })))
    end
    assert(repo:merge_to_main("S2", GUARD))
    local m = assert(repo:merge_from_main("S1", WHO))
    assert.equal("conflict", m.kind)
    assert.same({ "lf.txt" }, m.conflicts)
    -- a regular file the turn can read and resolve, not a link whose target is the markers
    assert.is_nil(io.popen("test -L " .. s1 .. "/lf.txt && echo link"):read("l"))
    local text = H.read(s1 .. "/lf.txt")
    assert.matches("<<<<<<< orket/S1\n/nowhere/target", text, 1, true)
    assert.matches("a file\n>>>>>>> main", text, 1, true)
    assert.matches("^100644 ", io.popen("git -C " .. ws .. " ls-tree orket/S1 lf.txt"):read("l"))
  end)

  it("keeps a person's file in main's view and names it: merge result, view_status, view_refresh", function()
    H.write(ws .. "/notes.txt", "mine\n")
    local p = wt("V1")
    H.write(p .. "/notes.txt", "the card's\n")
    assert(repo:commit("V1", { name = WHO.name, email = WHO.email, message = "work" }))
    local m = assert(repo:merge_to_main("V1", GUARD))
    assert.equal("fastforward", m.kind)
    assert.equal(1, m.diverged)
    assert.is_nil(m.stale)
    assert.equal("mine\n", H.read(ws .. "/notes.txt"))
    local v = assert(repo:view_status())
    assert.equal(1, #v)
    assert.equal("notes.txt", v[1].path)
    assert.same({ kind = "file", size = 11 }, { kind = v[1].main.kind, size = v[1].main.size })
    assert.same({ kind = "file", size = 5 }, { kind = v[1].view.kind, size = v[1].view.size })
    assert.equal(40, #v[1].main.id)
    assert.equal(0, assert(repo:view_refresh())) -- nothing left to do: idempotent
    H.write(ws .. "/notes.txt", "the card's\n") -- main's version taken
    assert.same({}, assert(repo:view_status()))
    local closed = assert(G.open(ws))
    closed:close()
    assert.has_error(function() closed:view_status() end)
  end)

  -- a state that could not be written (here a directory at its name) failed the refresh, but
  -- its reason was kept only beside a state with a base: view_status said nothing was behind
  it("says the view is behind, and why, when its state cannot be written", function()
    H.write(ws .. "/edit.txt", "mine\n")
    os.remove(ws .. "/.git/orket-view")
    sh("mkdir " .. H.quote(ws .. "/.git/orket-view"))
    local p = wt("U1")
    H.write(p .. "/edit.txt", "card\n")
    assert(repo:commit("U1", { name = WHO.name, email = WHO.email, message = "edit" }))
    local m = assert(repo:merge_to_main("U1", GUARD))
    assert.matches("orket%-view", m.stale)
    assert.equal("mine\n", H.read(ws .. "/edit.txt"))
    local _, why = assert(repo:view_status())
    assert.matches("cannot write .*orket%-view", why)
    -- once it can be written, a refresh catches up and nothing is behind any more
    sh("rmdir " .. H.quote(ws .. "/.git/orket-view"))
    assert(repo:view_refresh())
    local _, still = assert(repo:view_status())
    assert.is_nil(still)
    assert.equal("mine\n", H.read(ws .. "/edit.txt"))
  end)

  -- a refresh built main's entries afresh: a person's skip-worktree and assume-unchanged were
  -- cleared, and their next `git commit -a` put their local version into main over the card's
  it("keeps a person's skip-worktree and assume-unchanged flags on the paths a merge writes", function()
    local p0 = wt("F0")
    H.write(p0 .. "/local.cfg", "base\n")
    H.write(p0 .. "/plain.txt", "base\n")
    assert(repo:commit("F0", { name = WHO.name, email = WHO.email, message = "base" }))
    assert.equal(0, assert(repo:merge_to_main("F0", GUARD)).diverged)
    sh("git -C " .. H.quote(ws) .. " update-index --skip-worktree local.cfg")
    sh("git -C " .. H.quote(ws) .. " update-index --assume-unchanged plain.txt")
    H.write(ws .. "/local.cfg", "my local setting\n")
    local p = wt("F1")
    H.write(p .. "/local.cfg", "card v2\n")
    H.write(p .. "/plain.txt", "card v2\n")
    assert(repo:commit("F1", { name = WHO.name, email = WHO.email, message = "both" }))
    local m = assert(repo:merge_to_main("F1", GUARD))
    assert.equal(1, m.diverged) -- local.cfg is the person's
    assert.equal("card v2\n", H.read(ws .. "/plain.txt")) -- followed
    assert.equal("my local setting\n", H.read(ws .. "/local.cfg"))
    local f = assert(io.popen("git -C " .. H.quote(ws) .. " ls-files -v local.cfg plain.txt"))
    local flags = f:read("a")
    f:close()
    assert.equal("S local.cfg\nh plain.txt\n", flags)
    -- the person's routine commit -a leaves main's version where they hid their own
    sh("git -C " .. H.quote(ws) .. " -c user.name=me -c user.email=me@x commit -q -a -m other --allow-empty")
    local g = assert(io.popen("git -C " .. H.quote(ws) .. " show main:local.cfg"))
    assert.equal("card v2\n", g:read("a"))
    g:close()
  end)

  -- a chmod +x of the person's, not staged, was taken for the view's own file and undone by
  -- the next merge that changed the file, with not a word
  it("keeps a person's executable bit on a file a card's merge changes, and names it", function()
    local p = wt("X1")
    H.write(p .. "/run.sh", "echo 1\n")
    assert(repo:commit("X1", { name = WHO.name, email = WHO.email, message = "run.sh" }))
    assert.equal(0, assert(repo:merge_to_main("X1", GUARD)).diverged)
    assert(os.execute("chmod +x " .. H.quote(ws .. "/run.sh")))
    p = wt("X2")
    H.write(p .. "/run.sh", "echo 2\n")
    assert(repo:commit("X2", { name = WHO.name, email = WHO.email, message = "run.sh again" }))
    local m = assert(repo:merge_to_main("X2", GUARD))
    assert.equal(1, m.diverged)
    assert.equal("echo 1\n", H.read(ws .. "/run.sh"))
    assert.equal(tonumber("755", 8), require("luv").fs_stat(ws .. "/run.sh").mode & tonumber("777", 8))
    local v = assert(repo:view_status())
    assert.same({ "run.sh", "file", "executable" }, { v[1] and v[1].path, v[1] and v[1].main.kind, v[1] and v[1].view.kind })
    -- and a merge that deletes it leaves it too
    p = wt("X3")
    os.remove(p .. "/run.sh")
    assert(repo:commit("X3", { name = WHO.name, email = WHO.email, message = "no run.sh" }))
    assert(repo:merge_to_main("X3", GUARD))
    assert.equal("echo 1\n", H.read(ws .. "/run.sh"))
  end)

  -- A project as orket makes it (its repository at workspace/, so `orket status -C` reads it)
  -- and a card's directory: proj, its workspace, the repository, the card's directory.
  local function project(card)
    local proj = H.tmpdir()
    local pws = proj .. "/workspace"
    sh("mkdir -p " .. pws)
    H.write(pws .. "/README", "hello\n")
    local r = assert(G.init(pws, WHO))
    return proj, pws, r, assert(r:worktree(card, proj .. "/wt/" .. card))
  end

  it("says main's view is behind main, and why, while a person's git holds main's index; until a refresh succeeds", function()
    local proj, pws, r0, p = project("L1")
    local r <close> = r0
    H.write(p .. "/new.txt", "the card's\n")
    assert(r:commit("L1", { name = WHO.name, email = WHO.email, message = "work" }))
    H.write(pws .. "/.git/index.lock", "") -- a person's `git add` running
    local m = assert(r:merge_to_main("L1", GUARD)) -- the merge stands
    assert.matches("index is locked", m.stale)
    local list, behind = assert(r:view_status())
    assert.same({}, list)
    assert.matches("main's index: the index is locked", behind)
    -- the state keeps the format an older orket reads (else it would take main's index, a
    -- person's staging in it, for its base); the reason is beside it, in a file of its own
    assert.equal("orket-view 1 ", H.read(pws .. "/.git/orket-view"):sub(1, 13))
    assert.matches("index is locked", H.read(pws .. "/.git/orket-view-why"))
    local text = H.orket("status -C " .. H.quote(proj))
    assert.equal(0, text.status, text.stderr)
    assert.matches("workspace/ is behind main: its refresh failed %(git: main's index: the index is locked", text.stdout)
    assert.matches("catches up at the next merge into main, or at the next 'orket run'", text.stdout)
    local json = H.orket("status --json -C " .. H.quote(proj))
    local doc = require("cjson").decode(json.stdout)
    assert.matches("index is locked", doc.behind.reason)
    assert.matches("orket run", doc.behind.catch_up)
    os.remove(pws .. "/.git/index.lock") -- the person's git ended
    assert.equal(0, assert(r:view_refresh()))
    list, behind = assert(r:view_status())
    assert.same({}, list)
    assert.is_nil(behind)
    assert.is_nil(io.open(pws .. "/.git/orket-view-why"))
    assert.equal("the card's\n", H.read(pws .. "/new.txt"))
    text = H.orket("status -C " .. H.quote(proj))
    assert.not_matches("behind", text.stdout)
    assert.is_nil(require("cjson").decode(H.orket("status --json -C " .. H.quote(proj)).stdout).behind)
    -- the failure is forgotten once a refresh succeeded: a person's own commit moving main
    -- later is no view behind main
    H.write(pws .. "/mine.txt", "mine\n")
    sh("git -C " .. H.quote(pws) .. " add mine.txt && git -C " .. H.quote(pws)
      .. " -c user.name=p -c user.email=p@p commit -qm mine")
    assert.is_nil(select(2, assert(r:view_status())))
  end)

  it("names a person's file on the way to a path main adds, and takes main's version without losing theirs", function()
    local proj, pws, r0, p = project("W1")
    local r <close> = r0
    sh("mkdir -p " .. p .. "/dir")
    H.write(p .. "/dir/d.txt", "the card's d\n")
    H.write(p .. "/dir/e.txt", "the card's e\n") -- two paths behind one file of the person's
    H.write(p .. "/hello.txt", "the card's hello\n")
    assert(r:commit("W1", { name = WHO.name, email = WHO.email, message = "work" }))
    -- the person's: a file where main brings a directory, a directory where main brings a file
    H.write(pws .. "/dir", "my file\n")
    sh("mkdir -p " .. pws .. "/hello.txt")
    H.write(pws .. "/hello.txt/mine.md", "notes\n")
    assert.equal(3, assert(r:merge_to_main("W1", GUARD)).diverged)
    local doc = assert(require("orket.views.status").of_project(proj))
    local by = {}
    for _, d in ipairs(doc.diverged) do by[d.path] = d end
    -- what the view has there is named: the file in the way, not "nothing"
    assert.same({ kind = "file", size = 8, at = "dir" }, { kind = by["dir/d.txt"].view.kind,
      size = by["dir/d.txt"].view.size, at = by["dir/d.txt"].view.at })
    assert.equal("directory", by["hello.txt"].view.kind)
    assert.same({ "git", "--literal-pathspecs", "-C", "workspace", "add", "-A", "--", "dir" }, by["dir/d.txt"].keep_view[1])
    local text = H.orket("status -C " .. H.quote(proj))
    assert.matches("yours:%s+file %x+ %(8 bytes%) at dir, in the way", text.stdout)
    -- every path behind the person's file carries its move aside: a path's commands run
    -- alone (as a client may offer them) must not let git delete the file in the way; the
    -- move runs only while no folder is there, so every path's commands run in turn move
    -- nothing of main's aside
    for _, path in ipairs { "dir/e.txt", "dir/d.txt" } do
      assert.same({ "sh", "-c", require("orket.views.status").ASIDE_UNLESS_FOLDER, "sh", "workspace/dir" },
        by[path].take_main[1])
    end
    local function run(d)
      for _, argv in ipairs(d.take_main) do
        local words = {}
        for i, w in ipairs(argv) do words[i] = H.quote(w) end
        sh("cd " .. H.quote(proj) .. " && " .. table.concat(words, " ") .. " >/dev/null 2>&1")
      end
    end
    -- taking main's version moves the person's aside; nothing of theirs is lost
    run(by["dir/e.txt"])
    run(by["hello.txt"])
    assert.equal("the card's e\n", H.read(pws .. "/dir/e.txt"))
    assert.equal("the card's hello\n", H.read(pws .. "/hello.txt"))
    assert.equal("my file\n", H.read(pws .. "/dir.yours"))
    assert.equal("notes\n", H.read(pws .. "/hello.txt.yours/mine.md"))
    -- the next path behind the same file: main's folder is there now, so only its checkout
    run(by["dir/d.txt"])
    assert.equal("the card's d\n", H.read(pws .. "/dir/d.txt"))
    assert.equal("the card's e\n", H.read(pws .. "/dir/e.txt"))
    assert.is_nil(io.open(pws .. "/dir.yours.~1~"))
    assert.same({}, assert(r:view_status()))
  end)

  it("says whether main's history holds a commit, false for one the repository does not have", function()
    local _, _, r0 = project("C1")
    local r <close> = r0
    local head = assert(r:head("main"))
    assert.is_true(r:contains("refs/heads/main", head))
    -- a repository made again has none of the journal's old commits: not in its history
    assert.is_false(r:contains("refs/heads/main", string.rep("ab", 20)))
    assert.is_nil((r:contains("main", head))) -- a ref's full name only
  end)

  it("prints commands that take each path as written: a pathspec's magic, a newline, a folder where main has a file, a FIFO", function()
    local proj, pws, r0, p = project("N1")
    local r <close> = r0
    local names = { ":!notes", "new\nline.txt", "b.txt", "f.txt" }
    for _, n in ipairs(names) do H.write(p .. "/" .. n, "the card's " .. n .. "\n") end
    assert(r:commit("N1", { name = WHO.name, email = WHO.email, message = "work" }))
    -- the person's: work in progress elsewhere, their own version at each path
    H.write(pws .. "/README", "my work in progress\n")
    H.write(pws .. "/:!notes", "my notes\n")
    H.write(pws .. "/new\nline.txt", "mine\n")
    sh("mkdir " .. H.quote(pws .. "/b.txt") .. " && mkfifo " .. H.quote(pws .. "/f.txt"))
    H.write(pws .. "/b.txt/in", "my folder\n")
    assert.equal(4, assert(r:merge_to_main("N1", GUARD)).diverged)
    local doc = assert(require("orket.views.status").of_project(proj))
    local by = {}
    for _, d in ipairs(doc.diverged) do by[d.path] = d end
    assert.same({}, by["f.txt"].keep_view) -- git commits no FIFO: no command that cannot work
    local function run(list)
      for _, argv in ipairs(list) do
        local words = {}
        for i, w in ipairs(argv) do words[i] = H.quote(w) end
        sh("cd " .. H.quote(proj) .. " && " .. table.concat(words, " ") .. " >/dev/null")
      end
    end
    local function out(cmd)
      local f = io.popen(cmd)
      local t = f:read("a")
      f:close()
      return t
    end
    -- as a pathspec ':!notes' is every file but notes: taking main's version took README's too
    run(by[":!notes"].take_main)
    assert.equal("the card's :!notes\n", H.read(pws .. "/:!notes"))
    assert.equal("my work in progress\n", H.read(pws .. "/README"))
    -- the folder of the person's where main has a file is committed, and nothing else
    run(by["b.txt"].keep_view)
    local committed = out("git -C " .. H.quote(pws) .. " show --name-only --format= HEAD")
    assert.equal("b.txt\nb.txt/in\n", committed)
    -- the text form: a name with a newline is written so that, pasted, it is that name
    local text = H.orket("status -C " .. H.quote(proj))
    assert.equal(0, text.status, text.stderr)
    local keep = text.stdout:match("\n  %$'new\\x0aline%.txt'\n.-keep yours:%s+([^\n]+)")
    assert.truthy(keep, text.stdout)
    sh("cd " .. H.quote(proj) .. " && bash -c " .. H.quote(keep) .. " >/dev/null")
    assert.equal("new\nline.txt\n", out("git -C " .. H.quote(pws) .. " show --name-only --format= -z HEAD"):gsub("%z", "\n"))
    assert.equal("mine\n", H.read(pws .. "/new\nline.txt"))
    assert.equal(" M README\n", out("git -C " .. H.quote(pws) .. " status --porcelain -- README"))
  end)

  -- a file of the person's where main's merge deleted one is untracked: .gitignore matching
  -- it made git's add refuse it, so keeping it committed nothing and it stayed listed
  it("keeps a person's file at a path main deleted that .gitignore matches, with commands that work", function()
    local proj, pws, r0, p = project("G1")
    local r <close> = r0
    H.write(p .. "/x.log", "the card's log\n")
    assert(r:commit("G1", { name = WHO.name, email = WHO.email, message = "log" }))
    assert(r:merge_to_main("G1", GUARD))
    assert.equal("the card's log\n", H.read(pws .. "/x.log"))
    os.remove(p .. "/x.log")
    H.write(p .. "/.gitignore", "*.log\n")
    assert(r:commit("G1", { name = WHO.name, email = WHO.email, message = "ignore logs" }))
    H.write(pws .. "/x.log", "my log\n") -- the person's, written before the merge
    assert.equal(1, assert(r:merge_to_main("G1", GUARD)).diverged)
    local doc = assert(require("orket.views.status").of_project(proj))
    assert.equal(1, #doc.diverged)
    local d = doc.diverged[1]
    assert.same({ "x.log", "none" }, { d.path, d.main.kind })
    -- keeping it with -f commits an ignored file (a secret .env, say) into main: said so
    local sv = require "orket.views.status"
    assert.equal(sv.IGNORED_WARNING, d.keep_warning)
    assert.matches("ignored by git here (a .gitignore rule, .git/info/exclude or core.excludesFile): keeping yours commits it into main", sv.IGNORED_WARNING, 1, true)
    local txt = H.orket("status -C " .. H.quote(proj))
    assert.equal(0, txt.status, txt.stderr)
    assert.matches("(" .. sv.IGNORED_WARNING .. ")", txt.stdout, 1, true)
    local js = H.orket("status --json -C " .. H.quote(proj))
    assert.equal(0, js.status, js.stderr)
    assert.equal(sv.IGNORED_WARNING, require("cjson").decode(js.stdout).diverged[1].keep_warning)
    for _, argv in ipairs(d.keep_view) do
      local words = {}
      for i, w in ipairs(argv) do words[i] = H.quote(w) end
      sh("cd " .. H.quote(proj) .. " && " .. table.concat(words, " ") .. " >/dev/null 2>&1")
    end
    local f = io.popen("git -C " .. H.quote(pws) .. " show main:x.log")
    assert.equal("my log\n", f:read("a"))
    f:close()
    assert.same({}, assert(r:view_status()))
  end)

  -- taking main's nothing where the person had staged their file removed it from the disk
  -- alone: their next commit put it back into main
  it("takes main's nothing at a path a person staged, from the index too", function()
    local proj, pws, r0, p = project("D1")
    local r <close> = r0
    H.write(p .. "/x.txt", "the card's\n")
    assert(r:commit("D1", { name = WHO.name, email = WHO.email, message = "x" }))
    assert(r:merge_to_main("D1", GUARD))
    H.write(pws .. "/x.txt", "mine-x\n")
    sh("git -C " .. H.quote(pws) .. " add x.txt")
    os.remove(p .. "/x.txt")
    assert(r:commit("D1", { name = WHO.name, email = WHO.email, message = "no x" }))
    assert.equal(1, assert(r:merge_to_main("D1", GUARD)).diverged)
    local doc = assert(require("orket.views.status").of_project(proj))
    local d = doc.diverged[1]
    assert.same({ "x.txt", "none" }, { d.path, d.main.kind })
    for _, argv in ipairs(d.take_main) do
      local words = {}
      for i, w in ipairs(argv) do words[i] = H.quote(w) end
      sh("cd " .. H.quote(proj) .. " && " .. table.concat(words, " "))
    end
    assert.is_nil(io.open(pws .. "/x.txt"))
    assert.same({}, assert(r:view_status()))
    -- the index no longer holds it: a commit of theirs leaves main without x.txt
    sh("git -C " .. H.quote(pws) .. " -c user.name=p -c user.email=p@x commit -q --allow-empty -m other")
    local f = io.popen("git -C " .. H.quote(pws) .. " ls-tree --name-only main")
    assert.is_nil(f:read("a"):find("x.txt", 1, true))
    f:close()
  end)

  -- the person's file in the way of main's path, kept (committed): main then has that file
  -- and nothing below it, but the path stayed listed, and its take-main command moved
  -- main's own file aside
  it("forgets a path once the person's file in the way of it is committed to main", function()
    local proj, pws, r0, p = project("W1")
    local r <close> = r0
    sh("mkdir -p " .. H.quote(p .. "/g"))
    H.write(p .. "/g/h.txt", "the card's\n")
    assert(r:commit("W1", { name = WHO.name, email = WHO.email, message = "g/h" }))
    assert(r:merge_to_main("W1", GUARD))
    sh("rm -r " .. H.quote(pws .. "/g"))
    H.write(pws .. "/g", "mine\n")
    H.write(p .. "/g/h.txt", "the card's again\n")
    assert(r:commit("W1", { name = WHO.name, email = WHO.email, message = "g/h again" }))
    assert.equal(1, assert(r:merge_to_main("W1", GUARD)).diverged)
    local doc = assert(require("orket.views.status").of_project(proj))
    local d = doc.diverged[1]
    assert.same({ "g/h.txt", "g" }, { d.path, d.view.at })
    for _, argv in ipairs(d.keep_view) do
      local words = {}
      for i, w in ipairs(argv) do words[i] = H.quote(w) end
      sh("cd " .. H.quote(proj) .. " && " .. table.concat(words, " ") .. " >/dev/null")
    end
    assert.same({}, assert(r:view_status()))
    assert.equal("mine\n", H.read(pws .. "/g"))
  end)

  -- git refuses a partial commit during a merge: the keep command failed without a word why
  it("says a person's git merge under way in workspace/ stops the keep commands until it ends", function()
    local proj, pws, r0, p = project("M1")
    local r <close> = r0
    H.write(p .. "/c.txt", "the card's\n")
    assert(r:commit("M1", { name = WHO.name, email = WHO.email, message = "c" }))
    H.write(pws .. "/c.txt", "mine\n")
    assert.equal(1, assert(r:merge_to_main("M1", GUARD)).diverged)
    local sv = require "orket.views.status"
    assert.is_nil(assert(sv.of_project(proj)).merging)
    H.write(pws .. "/.git/MERGE_HEAD", assert(r:head("main")) .. "\n")
    assert.equal(sv.MERGING, assert(sv.of_project(proj)).merging)
    assert.matches("a git merge of yours is under way in workspace/", H.orket("status -C " .. H.quote(proj)).stdout, 1, true)
    os.remove(pws .. "/.git/MERGE_HEAD")
  end)

  -- JSON carries a byte that is not UTF-8 as U+FFFD: the commands named another file
  it("gives no commands in JSON for a path that is not UTF-8, and all of them in the text", function()
    local proj, pws, r0, p = project("U1")
    local r <close> = r0
    local name = "bad\xffname"
    H.write(p .. "/" .. name, "the card's\n")
    assert(r:commit("U1", { name = WHO.name, email = WHO.email, message = "bad name" }))
    H.write(pws .. "/" .. name, "mine\n")
    assert.equal(1, assert(r:merge_to_main("U1", GUARD)).diverged)
    local js = H.orket("status --json -C " .. H.quote(proj))
    assert.equal(0, js.status, js.stderr)
    local d = require("cjson").decode(js.stdout).diverged[1]
    assert.same({ 0, 0 }, { #d.take_main, #d.keep_view })
    assert.equal(require("orket.views.status").NO_COMMANDS, d.no_commands)
    local txt = H.orket("status -C " .. H.quote(proj))
    assert.matches("git --literal-pathspecs -C workspace checkout main -- $'bad\\xffname'", txt.stdout, 1, true)
  end)

  -- a file over 64 MiB was never hashed: once the person committed theirs it stayed listed
  it("forgets a person's huge file once they commit it to main", function()
    local _, pws, r0, p = project("H1")
    local r <close> = r0
    H.write(p .. "/big.bin", "the card's\n")
    assert(r:commit("H1", { name = WHO.name, email = WHO.email, message = "big" }))
    sh("truncate -s 65M " .. H.quote(pws .. "/big.bin")) -- the person's, sparse
    assert.equal(1, assert(r:merge_to_main("H1", GUARD)).diverged)
    local v = assert(r:view_status())
    assert.equal(1, #v)
    assert.same({ "file", 65 * 1024 * 1024 }, { v[1].view.kind, v[1].view.size })
    -- another size than main's (11 bytes): it cannot hold main's, so it is not hashed (that
    -- took seconds at every status); the person's commit below makes the sizes equal
    assert.is_nil(v[1].view.id)
    sh("git -C " .. H.quote(pws) .. " add big.bin && git -C " .. H.quote(pws)
      .. " -c user.name=p -c user.email=p@p commit -qm 'keep mine' -- big.bin")
    assert.same({}, assert(r:view_status()))
  end)

  -- A person's `git reset --hard HEAD~1` in workspace/ undid a card's merge; the card's
  -- branch still held it, so the card's next merge brought it back into main, and the view
  -- followed: the files the person's reset removed or restored were written over. Now the
  -- paths where main went back to what the reset undid keep the person's files, listed,
  -- while the rest of that merge reaches the view; orket status names the reset.
  it("keeps the files of a person's git reset of main that a card's later merge brings back, and follows the rest", function()
    local proj, pws, r0, p = project("R1")
    local r <close> = r0
    local git = "git -C " .. H.quote(pws) .. " "
    H.write(p .. "/f.txt", "the card's f\n")
    H.write(p .. "/README", "the card's readme\n")
    assert(r:commit("R1", { name = WHO.name, email = WHO.email, message = "f" }))
    assert(r:merge_to_main("R1", GUARD))
    assert.equal("the card's f\n", H.read(pws .. "/f.txt"))
    local undone = assert(r:head("main"))
    sh(git .. "reset -q --hard HEAD~1") -- the person undoes the merge
    local back = assert(r:head("main"))
    assert.is_nil(H.read(pws .. "/f.txt"))
    assert.equal(0, assert(r:view_refresh())) -- a run's start: the view's base is now the reset's
    H.write(p .. "/h.txt", "the card's h\n") -- the card's branch still holds what was undone
    assert(r:commit("R1", { name = WHO.name, email = WHO.email, message = "h" }))
    local m = assert(r:merge_to_main("R1", GUARD))
    assert.equal(2, m.diverged)
    assert.equal("the card's h\n", H.read(pws .. "/h.txt")) -- the card's own change is followed
    assert.is_nil(H.read(pws .. "/f.txt")) -- the person's: neither written
    assert.equal("hello\n", H.read(pws .. "/README"))
    local v = assert(r:view_status())
    assert.same({ "README", "f.txt" }, { v[1].path, v[2].path })
    assert.same({ from = undone, to = back }, r:view_moved())
    local doc = require("cjson").decode(H.orket("status --json -C " .. H.quote(proj)).stdout)
    assert.same({ "person", undone, back }, { doc.moved.by, doc.moved.from, doc.moved.to })
    assert.same({ "git", "--literal-pathspecs", "-C", "workspace", "checkout", "main", "--", "README" },
      doc.moved.take_main[1])
    local text = H.orket("status -C " .. H.quote(proj))
    assert.matches("main was moved by someone other than Orket %(a reset, amend, rebase or commit on another base%) from "
      .. undone:sub(1, 12) .. " to " .. back:sub(1, 12) .. ": where Orket's merges since changed what that move changed, "
      .. "workspace/ keeps what it had; those paths are among the ones listed below", text.stdout)
    assert.is_nil(text.stdout:find("moved in workspace/", 1, true)) -- where it was moved is not known
    assert.matches("take main's for every listed path:", text.stdout)
    assert.equal(0, assert(r:view_refresh())) -- run again (a crash's repair): the same, nothing written
    assert.is_nil(H.read(pws .. "/f.txt"))
    -- the person takes main's version: nothing listed, nothing said of the reset
    sh(git .. "checkout -q main -- README f.txt")
    assert.same({}, assert(r:view_status()))
    assert.is_nil(require("cjson").decode(H.orket("status --json -C " .. H.quote(proj)).stdout).moved)
  end)

  -- the same with no refresh between the reset and the merge: the view's base is still the
  -- undone merge's tree, so the paths it changed are not in the next merge's diff; main holds
  -- them again while the view holds the reset's, and only git status said so
  it("lists the files of a person's git reset of main that the very next merge brings back", function()
    local proj, pws, r0, p = project("R3")
    local r <close> = r0
    H.write(p .. "/f.txt", "the card's f\n")
    H.write(p .. "/README", "the card's readme\n")
    assert(r:commit("R3", { name = WHO.name, email = WHO.email, message = "f" }))
    assert(r:merge_to_main("R3", GUARD))
    sh("git -C " .. H.quote(pws) .. " reset -q --hard HEAD~1")
    H.write(p .. "/h.txt", "the card's h\n")
    assert(r:commit("R3", { name = WHO.name, email = WHO.email, message = "h" }))
    assert.equal(2, assert(r:merge_to_main("R3", GUARD)).diverged)
    assert.equal("the card's h\n", H.read(pws .. "/h.txt"))
    assert.is_nil(H.read(pws .. "/f.txt"))
    assert.equal("hello\n", H.read(pws .. "/README"))
    local v = assert(r:view_status())
    assert.same({ "README", "f.txt" }, { v[1].path, v[2].path })
    local doc = require("cjson").decode(H.orket("status --json -C " .. H.quote(proj)).stdout)
    assert.equal("person", doc.moved.by)
    assert.equal(0, assert(r:view_refresh())) -- its base is main's tree now: nothing more
    assert.equal(2, #assert(r:view_status()))
  end)

  -- The move's record stayed while any path was listed: once the person had settled the
  -- move's own paths (a status without the git lock forgets nothing), a later edit of theirs
  -- that a merge left listed brought the old move back into orket status. It is named while a
  -- path its refresh listed is still listed, later merges followed or not.
  it("names a person's move of main while the paths it left listed are, and not for a later edit", function()
    local proj, pws, r0, p = project("R4")
    local r <close> = r0
    local git = "git -C " .. H.quote(pws) .. " "
    H.write(p .. "/f.txt", "the card's f\n")
    H.write(p .. "/README", "the card's readme\n")
    assert(r:commit("R4", { name = WHO.name, email = WHO.email, message = "f" }))
    assert(r:merge_to_main("R4", GUARD))
    sh(git .. "reset -q --hard HEAD~1")
    H.write(p .. "/h.txt", "the card's h\n")
    assert(r:commit("R4", { name = WHO.name, email = WHO.email, message = "h" }))
    assert.equal(2, assert(r:merge_to_main("R4", GUARD)).diverged)
    local moved = assert(r:view_moved())
    -- a later merge the view follows: the move's paths are still listed, and it is still named
    H.write(p .. "/i.txt", "the card's i\n")
    assert(r:commit("R4", { name = WHO.name, email = WHO.email, message = "i" }))
    assert.equal(0, assert(r:merge_to_main("R4", GUARD)).diverged)
    assert.equal("the card's i\n", H.read(pws .. "/i.txt"))
    assert.same(moved, r:view_moved())
    assert.equal("person", require("cjson").decode(H.orket("status --json -C " .. H.quote(proj)).stdout).moved.by)
    -- the person takes main's version of one: the other still names the move
    sh(git .. "checkout -q main -- README")
    assert.same(moved, r:view_moved())
    -- and of the other: no longer named, though no status forgot them from the state
    sh(git .. "checkout -q main -- f.txt")
    assert.same({}, assert(r:view_status()))
    assert.is_nil(r:view_moved())
    -- a later edit of theirs that a merge leaves listed is theirs alone: no move named
    H.write(pws .. "/h.txt", "my h\n")
    H.write(p .. "/h.txt", "the card's h again\n")
    assert(r:commit("R4", { name = WHO.name, email = WHO.email, message = "h2" }))
    assert.equal(1, assert(r:merge_to_main("R4", GUARD)).diverged)
    local v = assert(r:view_status())
    assert.same({ "h.txt" }, { v[1].path, v[2] and v[2].path })
    assert.is_nil(r:view_moved())
    local doc = require("cjson").decode(H.orket("status --json -C " .. H.quote(proj)).stdout)
    assert.equal(1, #doc.diverged)
    assert.is_nil(doc.moved)
  end)

  -- `git reset HEAD~1` undoes a commit and keeps its files: the view followed main back,
  -- writing the older files over the person's and deleting the ones their commit added
  it("leaves a person's files alone when they move main back with git reset, and follows later merges", function()
    local _, pws, r0, p = project("R2")
    local r <close> = r0
    H.write(p .. "/f.txt", "the card's\n")
    assert(r:commit("R2", { name = WHO.name, email = WHO.email, message = "f" }))
    assert(r:merge_to_main("R2", GUARD))
    H.write(pws .. "/f.txt", "my work\n")
    H.write(pws .. "/g.txt", "my new file\n")
    local git = "git -C " .. H.quote(pws) .. " -c user.name=p -c user.email=p@p "
    sh(git .. "add -A && " .. git .. "commit -qm mine")
    assert.equal(0, assert(r:view_refresh())) -- a run's start: the view's base is their commit
    sh(git .. "reset -q HEAD~1")
    assert.equal(2, assert(r:view_refresh()))
    assert.equal("my work\n", H.read(pws .. "/f.txt"))
    assert.equal("my new file\n", H.read(pws .. "/g.txt"))
    local v = assert(r:view_status())
    assert.same({ "f.txt", "g.txt" }, { v[1].path, v[2].path })
    assert.is_table(r:view_moved()) -- their move, named while their paths are listed
    -- a card's later change is followed, and nothing of theirs is touched (still listed)
    H.write(p .. "/h.txt", "the card's h\n")
    assert(r:commit("R2", { name = WHO.name, email = WHO.email, message = "h" }))
    assert.equal(2, assert(r:merge_to_main("R2", GUARD)).diverged)
    assert.equal("the card's h\n", H.read(pws .. "/h.txt"))
    assert.equal("my work\n", H.read(pws .. "/f.txt"))
    assert.equal("my new file\n", H.read(pws .. "/g.txt"))
  end)

  -- A process stopped between a merge's move of main and the view's refresh left git status
  -- showing the merge as staged reverts, and orket status silent. It now says so, from the
  -- intent Orket's merge records before moving main, and writes nothing (a read: a live
  -- run's refresh may be under way); a run's start (its refresh) follows the merge.
  it("drops the resolved paths from the view's state at orket status only under the git lock", function()
    local proj, pws, r0, p = project("L1")
    local r <close> = r0
    H.write(p .. "/b.txt", "the card's\n")
    assert(r:commit("L1", { name = WHO.name, email = WHO.email, message = "b" }))
    H.write(pws .. "/b.txt", "mine\n")
    assert.equal(1, assert(r:merge_to_main("L1", GUARD)).diverged)
    sh("git -C " .. H.quote(pws) .. " add b.txt && git -C " .. H.quote(pws)
      .. " -c user.name=p -c user.email=p@p commit -qm 'keep mine' -- b.txt")
    local state = pws .. "/.git/orket-view"
    local before = H.read(state)
    assert.truthy(before:find("b.txt", 1, true))
    local view = require "orket.views.status"
    sh("mkdir -p " .. H.quote(proj .. "/.orket"))
    local lk = assert(require("orket.c.lockfile").wait(proj .. "/.orket/git.lock", "exclusive", 0)) -- a merge at work
    local doc = assert(view.of_project(proj))
    lk:release()
    assert.equal(0, #doc.diverged)
    assert.equal(before, H.read(state)) -- read, not written
    assert(view.of_project(proj))
    assert.is_nil(H.read(state):find("b.txt", 1, true)) -- forgotten under the lock
  end)

  it("fails a merge whose intent cannot be written before main moves; the retry merges", function()
    local _, pws, r0, p = project("N1")
    local r <close> = r0
    H.write(p .. "/n.txt", "the card's n\n")
    assert(r:commit("N1", { name = WHO.name, email = WHO.email, message = "n" }))
    local git = "git -C " .. H.quote(pws) .. " "
    local before = (io.popen(git .. "rev-parse main"):read("l"))
    sh("mkdir " .. H.quote(pws .. "/.git/orket-view-intent")) -- the intent's place taken
    local m, err = r:merge_to_main("N1", GUARD)
    assert.is_nil(m)
    assert.matches("orket%-view%-intent", tostring(err))
    assert.equal(before, (io.popen(git .. "rev-parse main"):read("l"))) -- main did not move
    assert.is_nil(H.read(pws .. "/n.txt"))
    sh("rmdir " .. H.quote(pws .. "/.git/orket-view-intent"))
    assert(r:merge_to_main("N1", GUARD))
    assert.equal("the card's n\n", H.read(pws .. "/n.txt"))
  end)

  -- looked for once a handle: the gitdir was listed at every merge's refresh
  it("removes the state's temporary files a killed process left, at a handle's first refresh", function()
    local _, pws, r0 = project("T1")
    r0:close()
    local sh_ = io.popen("sh -c 'echo $$'")
    local dead = sh_:read("l")
    sh_:close() -- waited for: a pid whose process is gone
    local gd = pws .. "/.git/"
    for _, n in ipairs { "orket-view-intent.", "orket-view.", "orket-view-why." } do H.write(gd .. n .. dead, "x") end
    H.write(gd .. "orket-view-intent.1", "x") -- a live process's (pid 1): left alone
    H.write(gd .. "orket-view-intent.x" .. dead, "x") -- not one of ours
    local r <close> = assert(G.open(pws)) -- opened after the death, as a run's or resume's is
    assert(r:view_refresh())
    for _, n in ipairs { "orket-view-intent.", "orket-view.", "orket-view-why." } do assert.is_nil(H.read(gd .. n .. dead)) end
    assert.equal("x", H.read(gd .. "orket-view-intent.1"))
    assert.equal("x", H.read(gd .. "orket-view-intent.x" .. dead))
    -- a death after that first refresh: this handle does not list the gitdir again, the next one does
    H.write(gd .. "orket-view." .. dead, "x")
    assert(r:view_refresh())
    assert.equal("x", H.read(gd .. "orket-view." .. dead))
    local r2 <close> = assert(G.open(pws))
    assert(r2:view_refresh())
    assert.is_nil(H.read(gd .. "orket-view." .. dead))
  end)

  it("says a merge left unfollowed in the view without writing; a refresh follows it", function()
    local proj, pws, r0, p = project("K1")
    local r <close> = r0
    H.write(p .. "/k.txt", "the card's k\n")
    assert(r:commit("K1", { name = WHO.name, email = WHO.email, message = "k" }))
    local git = "git -C " .. H.quote(pws) .. " "
    -- the merge's commit point without its refresh: its intent, then main moved
    local function rev(x) return (io.popen(git .. "rev-parse " .. x):read("l")) end
    local f = assert(io.open(pws .. "/.git/orket-view-intent", "w"))
    f:write(rev("main"), " ", rev("orket/K1"), "\n")
    f:close()
    sh(git .. "update-ref refs/heads/main refs/heads/orket/K1")
    assert.is_nil(H.read(pws .. "/k.txt"))
    local list, behind, waits, unfollowed = assert(r:view_status())
    assert.same({}, list)
    assert.matches("main's last merge is not followed in workspace/ yet", behind)
    assert.same({ false, true }, { waits, unfollowed })
    local doc = assert(require("orket.views.status").of_repo(r))
    assert.is_true(doc.behind.unfollowed)
    assert.matches("'orket run'", doc.behind.catch_up)
    local text = H.orket("status -C " .. H.quote(proj))
    assert.equal(0, text.status, text.stderr)
    assert.matches("workspace/ is behind main: main's last merge is not followed", text.stdout)
    assert.is_nil(H.read(pws .. "/k.txt")) -- status wrote nothing
    assert.equal(0, assert(r:view_refresh())) -- a run's start
    assert.equal("the card's k\n", H.read(pws .. "/k.txt"))
    assert.equal("", io.popen(git .. "status --porcelain"):read("a"))
    assert.is_nil(select(2, assert(r:view_status())))
    -- a person's own commit moving main past the view's base is no merge left unfollowed
    H.write(pws .. "/mine.txt", "mine\n")
    sh(git .. "add mine.txt && " .. git .. "-c user.name=p -c user.email=p@p commit -qm mine")
    assert.is_nil(select(2, assert(r:view_status())))
  end)

  -- The person's move of main is told from Orket's by ancestry (the view's base commit B,
  -- and P, main's commit Orket's merge went from), whatever git wrote in main's reflog:
  -- each move below undoes the card's first merge (README and f.txt); the card's branch
  -- still holds it, and its next merge edits README again and adds h.txt. The person's
  -- files stay, listed; h.txt reaches the view.
  local P = "git -c user.name=p -c user.email=p@p "
  for _, case in ipairs {
    { what = "a card re-editing a file a reset undid, with a refresh between", move = "reset -q --hard HEAD~1", refresh = true },
    { what = "two resets in a row, with refreshes between", move = "reset -q --hard HEAD~1", refresh = true, two = true },
    { what = "two resets in a row, no refresh between", move = "reset -q --hard HEAD~1", two = true },
    { what = "an amend", move = "commit -q --amend -m undone --allow-empty", pre = "rm -q f.txt && git checkout -q HEAD~1 -- README",
      pre_add = true },
    { what = "a rebase", move = "rebase -q --onto HEAD~1 HEAD main" },
    { what = "an update-ref with no message", move = "update-ref refs/heads/main HEAD~1", hard = true },
    { what = "a reset whose reflog was expired", move = "reset -q --hard HEAD~1", expire = true, refresh = true },
    { what = "a reset then a person's commit", move = "reset -q --hard HEAD~1", commit = true, refresh = true },
    -- the card's merge between brings the undone commit back into main, and its refresh
    -- fails: the next merge's P stays the one the view has not followed
    { what = "a reset, then a merge whose refresh failed", move = "reset -q --hard HEAD~1", refresh = true, failed = true },
  } do
    it("keeps a person's files after " .. case.what .. ", and follows the card's other change", function()
      local _, pws, r0, p = project("U1")
      local r <close> = r0
      local git = "git -C " .. H.quote(pws) .. " "
      if case.two then -- a first merge the second reset undoes too
        H.write(p .. "/g.txt", "the card's g\n")
        assert(r:commit("U1", { name = WHO.name, email = WHO.email, message = "g" }))
        assert(r:merge_to_main("U1", GUARD))
      end
      H.write(p .. "/f.txt", "the card's f\n")
      H.write(p .. "/README", "hello\nthe card's line\n")
      assert(r:commit("U1", { name = WHO.name, email = WHO.email, message = "f" }))
      assert(r:merge_to_main("U1", GUARD))
      local undone = (io.popen(git .. "rev-parse main"):read("l"))
      if case.pre then sh("cd " .. H.quote(pws) .. " && git " .. case.pre) end
      sh("cd " .. H.quote(pws) .. " && " .. P .. case.move)
      if case.hard then sh(git .. "reset -q --hard") end
      if case.refresh then assert(r:view_refresh()) end
      if case.two then
        sh("cd " .. H.quote(pws) .. " && " .. P .. case.move)
        if case.refresh then assert(r:view_refresh()) end
      end
      if case.commit then
        H.write(pws .. "/mine.txt", "my fix\n")
        sh(git .. "add mine.txt && cd " .. H.quote(pws) .. " && " .. P .. "commit -qm mine")
        assert(r:view_refresh())
      end
      if case.expire then sh(git .. "reflog expire --expire=now --all") end
      local moved_to = (io.popen(git .. "rev-parse main"):read("l"))
      if case.failed then
        H.write(p .. "/k.txt", "the card's k\n")
        assert(r:commit("U1", { name = WHO.name, email = WHO.email, message = "k" }))
        H.write(pws .. "/.git/index.lock", "")
        assert(r:merge_to_main("U1", GUARD)) -- the merge stands; its refresh fails
        os.remove(pws .. "/.git/index.lock")
      end
      H.write(p .. "/README", "hello\nthe card's line\nthe card's next line\n")
      H.write(p .. "/h.txt", "the card's h\n")
      assert(r:commit("U1", { name = WHO.name, email = WHO.email, message = "h" }))
      assert(r:merge_to_main("U1", GUARD))
      assert.equal("the card's h\n", H.read(pws .. "/h.txt")) -- the card's own change is followed
      if case.failed then assert.equal("the card's k\n", H.read(pws .. "/k.txt")) end
      assert.equal("hello\n", H.read(pws .. "/README")) -- the person's: not written
      assert.is_nil(H.read(pws .. "/f.txt"))
      local listed = {}
      for _, v in ipairs(assert(r:view_status())) do listed[#listed + 1] = v.path end
      assert.same(case.two and { "README", "f.txt", "g.txt" } or { "README", "f.txt" }, listed)
      if case.two then assert.is_nil(H.read(pws .. "/g.txt")) end
      local moved = assert(r:view_moved())
      assert.same({ undone, moved_to }, { moved.from, moved.to })
      local before = H.read(pws .. "/README")
      assert(r:view_refresh()) -- a crash's repair decides the same
      assert.equal(before, H.read(pws .. "/README"))
    end)
  end

  for _, case in ipairs {
    { what = "a branch", checkout = "checkout -q -b my-feature", why = "refs/heads/my%-feature checked out, not main" },
    { what = "a detached commit", checkout = "checkout -q --detach", why = "a detached commit checked out, not main" },
  } do
    it("leaves " .. case.what .. " a person checked out in workspace/ alone; the view follows once main is back", function()
      local _, pws, r0, p = project("B1")
      local r <close> = r0
      H.write(p .. "/b.txt", "the card's\n")
      assert(r:commit("B1", { name = WHO.name, email = WHO.email, message = "work" }))
      sh("git -C " .. H.quote(pws) .. " " .. case.checkout)
      local m = assert(r:merge_to_main("B1", GUARD)) -- the merge stands
      assert.matches(case.why, m.stale)
      -- nothing of main's written into the person's checkout, nothing staged there
      assert.is_nil(io.open(pws .. "/b.txt"))
      local git = io.popen("git -C " .. H.quote(pws) .. " status --porcelain")
      assert.equal("", git:read("a"))
      git:close()
      -- a run, a resume and orket status open the repository as ever, and hear why
      local again <close> = assert(G.open(pws))
      assert.matches(case.why, (select(2, assert(again:view_status()))))
      sh("git -C " .. H.quote(pws) .. " checkout -q main")
      assert.equal(0, assert(r:view_refresh()))
      assert.equal("the card's\n", H.read(pws .. "/b.txt"))
      assert.is_nil(select(2, assert(r:view_status())))
    end)
  end

  for _, case in ipairs {
    { what = "split", make = "update-index --split-index", fix = "git -C workspace update-index --no-split-index" },
    { what = "sparse", make = "sparse-checkout set --cone --sparse-index sub",
      fix = "git -C workspace sparse-checkout reapply --no-sparse-index" },
    -- damaged: git fails on it too ("index file corrupt"), and the reason named no remedy
    { what = "damaged", make = "status >/dev/null && head -c 100 /dev/zero >> .git/index",
      fix = "rm workspace/.git/index && git -C workspace reset" },
  } do
    it("names what makes a " .. case.what .. " index in workspace/ readable when the view cannot follow", function()
      local _, pws, r0, p = project("S" .. case.what)
      local r <close> = r0
      H.write(p .. "/new.txt", "the card's\n")
      assert(r:commit("S" .. case.what, { name = WHO.name, email = WHO.email, message = "work" }))
      sh("mkdir -p " .. pws .. "/sub " .. pws .. "/out && echo 1 > " .. pws .. "/sub/a && echo 2 > " .. pws .. "/out/b && git -C "
        .. H.quote(pws) .. " add -A && git -C " .. H.quote(pws) .. " -c user.name=p -c user.email=p@p commit -qm p")
      sh("cd " .. H.quote(pws) .. " && git " .. case.make) -- in pws: a path in make is pws's
      local m = assert(r:merge_to_main("S" .. case.what, GUARD))
      assert.matches(case.fix, m.stale, 1, true)
      sh("cd " .. H.quote(pws) .. "/.. && " .. case.fix .. " >/dev/null 2>&1")
      assert.equal(0, assert(r:view_refresh()))
      assert.equal("the card's\n", H.read(pws .. "/new.txt"))
    end)
  end

  it("keeps a person's edit that git can only see by content visible after the view writes main's index", function()
    local _, pws, r0, p = project("Z1")
    local r <close> = r0
    H.write(p .. "/new.txt", "the card's\n")
    assert(r:commit("Z1", { name = WHO.name, email = WHO.email, message = "work" }))
    local git = "git -C " .. H.quote(pws) .. " "
    -- git add, then an edit of the same size in the same second: racily clean, only the
    -- content tells (mtime seconds and size compared alone, so that no other field does)
    sh(git .. "config core.checkStat minimal")
    H.write(pws .. "/f.txt", "aaaa\n")
    sh("touch -d @1600000000 " .. pws .. "/f.txt && " .. git .. "add f.txt")
    H.write(pws .. "/f.txt", "bbbb\n")
    sh("touch -d @1600000000 " .. pws .. "/f.txt " .. pws .. "/.git/index")
    local function st()
      local h = io.popen(git .. "--no-optional-locks status --porcelain -- f.txt")
      local out = h:read("a")
      h:close()
      return out
    end
    assert.equal("AM f.txt\n", st())
    assert(r:merge_to_main("Z1", GUARD)) -- the refresh writes main's index, new.txt's entry
    assert.equal("the card's\n", H.read(pws .. "/new.txt"))
    assert.equal("AM f.txt\n", st())
  end)

  it("offers no command while a person's branch is checked out in workspace/, and lists main's paths again once main is", function()
    local proj, pws, r0, p = project("B2")
    local r <close> = r0
    H.write(p .. "/notes.txt", "the card's\n")
    assert(r:commit("B2", { name = WHO.name, email = WHO.email, message = "work" }))
    H.write(pws .. "/notes.txt", "mine\n")
    assert.equal(1, assert(r:merge_to_main("B2", GUARD)).diverged)
    sh("git -C " .. H.quote(pws) .. " checkout -q -b my-feature")
    -- the commands would stage or commit on the person's branch: none is offered
    local text = H.orket("status -C " .. H.quote(proj))
    assert.equal(0, text.status, text.stderr)
    assert.matches("refs/heads/my%-feature checked out, not main", text.stdout)
    assert.matches("git %-C workspace checkout main", text.stdout)
    assert.not_matches("take main's", text.stdout)
    assert.not_matches("keep yours", text.stdout)
    local doc = require("cjson").decode(H.orket("status --json -C " .. H.quote(proj)).stdout)
    assert.same({}, doc.diverged)
    assert.matches("checked out, not main", doc.behind.reason)
    -- nothing recorded is forgotten meanwhile, even where the branch holds main's version
    H.write(pws .. "/notes.txt", "the card's\n")
    assert.same({}, (assert(r:view_status())))
    H.write(pws .. "/notes.txt", "mine\n")
    sh("git -C " .. H.quote(pws) .. " checkout -q main")
    assert.equal("notes.txt", assert(r:view_status())[1].path)
  end)

  -- a person's a.txt in workspace/ while a card also writes it: committed, committed then
  -- edited again, or only staged: theirs each time (kept, the index keeping their version);
  -- a commit is not told from a restore (docs/git.md, the view's invariant 4)
  for _, case in ipairs {
    { what = "a person's own commit", git = "add a.txt && git -C %s -c user.name=p -c user.email=p@p commit -qm p",
      after = nil, view = "person\n", diverged = 1, status = "M  a.txt\n" },
    { what = "a person's edit after their commit", git = "add a.txt && git -C %s -c user.name=p -c user.email=p@p commit -qm p",
      after = "person again\n", view = "person again\n", diverged = 1 },
    { what = "a person's staged file", git = "add a.txt", view = "person\n", diverged = 1, status = "M  a.txt\n" },
  } do
    it("keeps the person's version where a card's merge changed " .. case.what, function()
      local _, pws, r0, p = project("P1")
      local r <close> = r0
      H.write(p .. "/a.txt", "agent\n")
      assert(r:commit("P1", { name = WHO.name, email = WHO.email, message = "work" }))
      H.write(pws .. "/a.txt", "person\n")
      sh("git -C " .. H.quote(pws) .. " " .. case.git:format(H.quote(pws)))
      if case.after then H.write(pws .. "/a.txt", case.after) end
      local m, _, code = r:merge_to_main("P1", GUARD)
      if code == "ECONFLICT" then -- main moved by the person's commit: merged into the card, resolved
        assert.equal("conflict", assert(r:merge_from_main("P1", WHO)).kind)
        H.write(p .. "/a.txt", "agent\n")
        assert(r:commit("P1", { name = WHO.name, email = WHO.email, message = "resolve" }))
        m = r:merge_to_main("P1", GUARD)
      end
      assert(m)
      assert.equal(case.diverged, m.diverged)
      assert.equal(case.view, H.read(pws .. "/a.txt"))
      if case.status then -- the person's version stays in the index
        local git = io.popen("git -C " .. H.quote(pws) .. " status --porcelain")
        assert.equal(case.status, git:read("a"))
        git:close()
      end
    end)
  end

  it("keeps a person's staged restore of a version main held before the view's base", function()
    local _, pws, r0, p = project("R1")
    local r <close> = r0
    for _, text in ipairs { "v1 original\n", "v2 changed\n" } do
      H.write(p .. "/a.txt", text)
      assert(r:commit("R1", { name = WHO.name, email = WHO.email, message = text }))
      assert.equal(0, assert(r:merge_to_main("R1", GUARD)).diverged)
    end
    -- the person restores the older version on purpose
    sh("cd " .. H.quote(pws) .. " && git show main~1:a.txt > a.txt && git add a.txt")
    H.write(p .. "/a.txt", "v3 newest\n")
    assert(r:commit("R1", { name = WHO.name, email = WHO.email, message = "v3" }))
    assert.equal(1, assert(r:merge_to_main("R1", GUARD)).diverged)
    assert.equal("v1 original\n", H.read(pws .. "/a.txt"))
    local git = io.popen("git -C " .. H.quote(pws) .. " status --porcelain")
    assert.equal("M  a.txt\n", git:read("a"))
    git:close()
  end)

  it("tells up to date and fast-forward apart past the near search, by one merge base", function()
    -- 20 commits a card: more than the breadth-first look at recent commits covers
    local function twenty(card, dir, file)
      for i = 1, 20 do
        H.write(dir .. "/" .. file, card .. " " .. i .. "\n")
        local msg = card .. " " .. i
        assert.equal("committed", select(2, repo:commit(card, { name = WHO.name, email = WHO.email, message = msg })))
      end
    end
    local d, e = wt("D"), wt("E")
    twenty("D", d, "d.txt")
    assert.equal("fastforward", assert(repo:merge_to_main("D", GUARD)).kind) -- main 20 behind
    local f = wt("F") -- from main as D left it
    twenty("F", f, "f.txt")
    assert.equal("fastforward", assert(repo:merge_to_main("F", GUARD)).kind)
    -- D's tip lies 20 commits down main's history
    local main = repo:head("main")
    assert.equal("uptodate", assert(repo:merge_to_main("D", GUARD)).kind)
    assert.equal(main, repo:head("main"))
    -- E started before either landed: a real merge that keeps every card's file
    twenty("E", e, "e.txt")
    local r = assert(repo:merge_to_main("E", GUARD))
    assert.equal("merged", r.kind)
    assert.equal("D 20\n", H.read(ws .. "/d.txt"))
    assert.equal("F 20\n", H.read(ws .. "/f.txt"))
    assert.equal("E 20\n", H.read(ws .. "/e.txt"))
    assert.is_true(repo:check())
  end)

  it("merges a card that has two best common ancestors with main (criss-cross)", function()
    local p, q, r = wt("P"), wt("Q"), wt("R")
    local function commit(card, dir, file, text)
      H.write(dir .. "/" .. file, text)
      return assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = card .. " " .. file }))
    end
    local p1, q1 = commit("P", p, "p.txt", "p\n"), commit("Q", q, "q.txt", "q\n")
    H.write(r .. "/p.txt", "p\n")
    local r1 = commit("R", r, "q.txt", "q\n") -- the tree both merges of P and Q make
    -- P and Q merged into each other both ways, by git itself: two merges of the same pair
    local git = "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@orket.invalid GIT_COMMITTER_NAME=t "
      .. "GIT_COMMITTER_EMAIL=t@orket.invalid git -C " .. H.quote(ws) .. " "
    local function out(cmd)
      local f = assert(io.popen(git .. cmd))
      local s = f:read("a")
      assert(f:close(), cmd)
      return (s:gsub("\n$", ""))
    end
    local pq = out(string.format("commit-tree %s^{tree} -p %s -p %s -m 'P and Q'", r1, p1, q1))
    local qp = out(string.format("commit-tree %s^{tree} -p %s -p %s -m 'Q and P'", r1, q1, p1))
    sh(git .. string.format("update-ref refs/heads/orket/P %s %s", pq, p1))
    sh(git .. string.format("update-ref refs/heads/orket/Q %s %s", qp, q1))
    assert.equal("fastforward", assert(repo:merge_to_main("P", GUARD)).kind)
    local m = assert(repo:merge_to_main("Q", GUARD))
    assert.equal("merged", m.kind)
    assert.equal(m.id, repo:head("main"))
    assert.equal(2, out("merge-base --all main^1 main^2 | wc -l") + 0)
    for file, text in pairs { ["p.txt"] = "p\n", ["q.txt"] = "q\n", README = "hello\n" } do
      assert.equal(text, H.read(ws .. "/" .. file), file)
    end
    assert.equal("", out("status --porcelain")) -- main's working tree is main's tree
  end)

  it("finishes a card's worktree that a kill left half checked out", function()
    -- what a kill inside the worktree's checkout leaves: no index yet, a file half written
    local path = wt("H1")
    local gitdir = assert(H.read(path .. "/.git")):match("gitdir: ([^\n]+)")
    assert(os.remove(gitdir .. "/index"))
    H.write(path .. "/README", "hel")
    assert.is_number(repo:recover())
    assert.equal("hello\n", H.read(path .. "/README"))
    assert(repo:check())
  end)

  it("under the workers' guard, card operations share the lock and a merge into main takes it alone", function()
    local gitwork = require "orket.engine.gitwork"
    local lockfile = require "orket.c.lockfile"
    local lock_path = base .. "/git.lock"
    local g = gitwork.guard(repo, lock_path)
    local old = gitwork.WAIT_MS
    gitwork.WAIT_MS = 100
    local ok, err = pcall(function()
      assert.has_error(function() lockfile.wait(lock_path, "both", 0) end,
        "bad argument #2 to 'wait' (invalid option 'both')")
      -- another worker inside a card operation (OFD locks conflict between descriptors of
      -- one process too): this one's card operations go on, a merge into main waits
      local other = assert(lockfile.wait(lock_path, "shared", 0))
      local path = assert(g:worktree("G1", base .. "/wt/G1"))
      H.write(path .. "/a.txt", "a\n")
      assert.equal("committed", select(2, g:commit("G1", { name = WHO.name, email = WHO.email, message = "G1" })))
      local _, code = select(2, lockfile.wait(lock_path, "exclusive", 0))
      assert.equal("EBUSY", code)
      local res, merr, mcode = g:merge_to_main("G1", GUARD)
      assert.is_nil(res)
      assert.equal("EBUSY", mcode)
      assert.matches("stayed locked", merr)
      -- a lock file a killed process left on the card's branch: with another worker inside
      -- an operation nothing is removed (EBUSY); once it left, recovery and the commit again
      local stale = ws .. "/.git/refs/heads/orket/G1.lock"
      H.write(stale, "")
      H.write(path .. "/b.txt", "b\n")
      local id, kerr = g:commit("G1", { name = WHO.name, email = WHO.email, message = "G1 b" })
      assert.is_nil(id)
      assert.matches("stayed locked", kerr)
      assert.truthy(H.read(stale))
      other:release()
      assert.equal("committed", select(2, g:commit("G1", { name = WHO.name, email = WHO.email, message = "G1 b" })))
      assert.is_nil(H.read(stale))
      assert.equal("fastforward", assert(g:merge_to_main("G1", GUARD)).kind)
      -- a merge into main in progress elsewhere keeps card operations waiting
      local excl = assert(lockfile.wait(lock_path, "exclusive", 0))
      local h, _, hcode = g:head("orket/G1")
      assert.is_nil(h)
      assert.equal("EBUSY", hcode)
      excl:release()
      assert.truthy(g:head("orket/G1"))
      -- a worktree being made or removed elsewhere: making one waits, reusing one does not
      local wts = assert(lockfile.wait(base .. "/git-worktrees.lock", "exclusive", 0))
      assert.truthy(g:worktree("G1", base .. "/wt/G1"))
      local p2, _, wcode = g:worktree("G2", base .. "/wt/G2")
      assert.is_nil(p2)
      assert.equal("EBUSY", wcode)
      assert.equal("EBUSY", select(3, g:worktree_remove("G1")))
      wts:release()
      assert.truthy(g:worktree("G2", base .. "/wt/G2"))
      assert.is_true(g:worktree_remove("G2"))
      assert.is_true(g:check())
    end)
    gitwork.WAIT_MS = old
    assert(ok, err)
  end)

  it("stays consistent when killed mid-commit and mid-merge, and resume never commits twice", function()
    wt("K1")
    wt("K2")
    local journal = base .. "/journal"
    H.write(journal, "")
    -- Each turn writes files, commits with its turn key, then records the turn in the journal;
    -- every third turn merges K1 into main and main into K2. It resumes after the last turn
    -- the journal holds, as a resumed run would.
    H.write(base .. "/child.lua", string.format([[
      local G = require "orket.c.gitrepo"
      local repo = assert(G.open(%q))
      assert(repo:recover())
      local who = { name = "coder", email = "coder@orket.invalid" }
      local last = 0
      for line in io.lines(%q) do last = tonumber(line:match("^(%%d+)")) end
      local wt1, wt2 = assert(repo:worktree_path("K1")), assert(repo:worktree_path("K2"))
      for i = last + 1, 100000 do
        for k = 1, 4 do
          local f = assert(io.open(wt1 .. "/f" .. k .. ".txt", "w"))
          f:write(string.rep("turn " .. i .. "\n", 200)) f:close()
        end
        local f = assert(io.open(wt2 .. "/k2.txt", "w")) f:write("k2 turn " .. i .. "\n") f:close()
        local id = assert(repo:commit("K1", { name = who.name, email = who.email, message = "turn " .. i, turn = "t/" .. i }))
        assert(repo:commit("K2", { name = who.name, email = who.email, message = "k2 turn " .. i, turn = "t/" .. i }))
        if i %% 3 == 0 then
          assert(repo:merge_to_main("K1", who))
          assert(repo:merge_from_main("K2", who))
        end
        local j = assert(io.open(%q, "a")) j:write(i, " ", id, "\n") j:close()
      end
    ]], ws, journal, journal))
    local function journal_lines()
      local n, last = 0, nil
      for line in (H.read(journal) or ""):gmatch("[^\n]+") do n, last = n + 1, line end
      return n, last
    end
    for round = 1, 3 do
      local p = io.popen(string.format("%s lua %s >%s 2>&1 & echo $!", H.quote(H.BIN), H.quote(base .. "/child.lua"),
        H.quote(base .. "/child.out")))
      local pid = tonumber(p:read("l"))
      p:close()
      local want, waited = round * 15, 0
      while journal_lines() < want and waited < 20000 do
        orket.sleep(5)
        waited = waited + 5
      end
      assert.is_true(journal_lines() >= want, "the child stopped: " .. tostring(H.read(base .. "/child.out")))
      assert.is_true(os.execute("kill -KILL " .. pid))
      H.wait_for(function() return not H.alive(pid) end, "the killed child to end") -- (reaped or not)
    end
    -- resume: recover, then everything the journal recorded is there, exactly once
    repo:close()
    repo = assert(G.open(ws))
    assert.is_number(repo:recover())
    assert.is_true(repo:check())
    local n, last = journal_lines()
    local last_i, last_id = last:match("^(%d+) (%x+)$")
    assert.equal(tostring(n), last_i)
    local seen = {}
    -- K1 only ever fast-forwards main, so main's log and K1's own hold each of its commits once
    for _, branch in ipairs { "main", "orket/K1" } do
      for _, c in ipairs(repo:log(branch, 10000)) do
        assert.is_nil(seen[c.summary], "committed twice: " .. c.summary)
        seen[c.summary] = true
      end
    end
    for i = 1, n do
      assert.truthy(repo:find_trailer("orket/K1", G.TURN_TRAILER, "t/" .. i, false), "turn " .. i .. " lost")
      assert.truthy(repo:find_trailer("orket/K2", G.TURN_TRAILER, "t/" .. i, false), "K2 turn " .. i .. " lost")
    end
    assert.equal(last_id, repo:find_trailer("orket/K1", G.TURN_TRAILER, "t/" .. n, false))
    -- the worktree holds the journal's last turn or the one after it (written, maybe
    -- committed), or that next one half-written: the kill can fall between the open that
    -- emptied f1.txt and its write
    local text = H.read(base .. "/wt/K1/f1.txt")
    local turn = tonumber(text:match("^turn (%d+)"))
    assert.is_true(turn == n or turn == n + 1 or (text == "" and turn == nil),
      "worktree at turn " .. tostring(turn) .. ", journal at " .. n)
    -- the repeated turn commits once (or finds its commit), then work goes on
    local _, kind = assert(repo:commit("K1", { name = WHO.name, email = WHO.email, message = "turn " .. (n + 1), turn = "t/" .. (n + 1) }))
    assert.truthy(kind == "committed" or kind == "exists" or kind == "clean")
    assert(repo:commit("K2", { name = WHO.name, email = WHO.email, message = "k2 turn " .. (n + 1), turn = "t/" .. (n + 1) }))
    assert.truthy(repo:merge_to_main("K1", GUARD))
    assert.truthy(repo:merge_from_main("K2", WHO))
    assert.is_true(repo:check())
  end)
end)
