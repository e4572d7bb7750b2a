-- orket.c.gitrepo against a working tree agent code wrote: FIFOs, sockets, devices, large
-- files and nested repositories are left out of commits and status, never opened; a FIFO or
-- symlink where libgit2 reads a file by name (.gitignore, .gitattributes, .gitmodules) is
-- refused; a card's .git rewritten to point elsewhere is refused, never followed, and put
-- back. Each operation runs in a child process under a timeout, so a regression that blocks
-- on a FIFO fails here instead of hanging the suite.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local cjson = require "cjson"

local WHO = { name = "coder", email = "coder@orket.invalid" }

local function sh(cmd) assert(os.execute(cmd), cmd) end

-- Runs `body` (Lua source; `repo` is the repository at ws, `out` a table it fills) in a child
-- `orket lua` killed after 30 s; returns out as decoded, or fails naming the timeout.
local function child(base, ws, body)
  local file = base .. "/child.lua"
  H.write(file, string.format([[
local G = require "orket.c.gitrepo"
local repo = assert(G.open(%q))
local out = {}
local WHO = { name = "coder", email = "coder@orket.invalid" }
%s
repo:close()
io.write(require("cjson").encode(out))
]], ws, body))
  local r = H.orket("lua " .. H.quote(file), { wrap = "timeout -s KILL 30" })
  assert.are_not.equal(137, r.status, "the child did not end within 30 s (blocked?): " .. tostring(r.stderr))
  assert.equal(0, r.status, tostring(r.stderr))
  return cjson.decode(r.stdout)
end

-- A unix socket bound at path by a short-lived perl (the socket file stays once it exits).
local function make_socket(path)
  return os.execute(string.format("perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Type => SOCK_STREAM(), "
    .. "Local => $ARGV[0], Listen => 1) or exit 1' %s 2>/dev/null", H.quote(path)))
end

describe("orket.c.gitrepo with hostile working trees", function()
  local base, ws, repo, wtp
  before_each(function()
    base = H.tmpdir()
    ws = base .. "/ws"
    sh("mkdir -p " .. ws)
    H.write(ws .. "/README", "hello\n")
    repo = assert(G.init(ws, WHO))
    wtp = assert(repo:worktree("X1", base .. "/wt/X1"))
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  it("leaves FIFOs, sockets, devices, large files and nested repositories out, never opened", function()
    sh("mkfifo " .. H.quote(wtp .. "/fifo"))
    sh("mkdir -p " .. H.quote(wtp .. "/d/nested") .. " " .. H.quote(wtp .. "/d/nested/.git"))
    sh("mkfifo " .. H.quote(wtp .. "/d/nested/.git/HEAD")) -- opened as a repository, it would block
    H.write(wtp .. "/d/nested/x.txt", "in a nested repository\n")
    sh("mkfifo " .. H.quote(wtp .. "/d/pipe"))
    local sock = make_socket(wtp .. "/sock")
    -- a device node needs root (CAP_MKNOD): /dev/zero's numbers, which a read never ends
    local dev = os.execute("mknod " .. H.quote(wtp .. "/zero") .. " c 1 5 2>/dev/null")
    if not dev then io.write("\n  device node not planted: mknod needs root\n") end
    sh("truncate -s 65M " .. H.quote(wtp .. "/big.bin")) -- sparse: over the 64 MiB cap
    H.write(wtp .. "/a.txt", "work\n")
    local out = child(base, ws, [[
out.status = assert(repo:status("X1"))
local id, kind, skipped = assert(repo:commit("X1", { name = WHO.name, email = WHO.email, message = "turn 1", turn = "r/1" }))
out.kind, out.skipped = kind, skipped
out.after = assert(repo:status("X1"))
local path = assert(repo:worktree_path("X1"))
out.removed = { repo:worktree_remove("X1") }
]])
    assert.same({ "a.txt" }, out.status)
    assert.equal("committed", out.kind)
    local notes = table.concat(out.skipped, "\n")
    assert.matches("fifo %(a FIFO: never opened, not committed%)", notes)
    assert.matches("d/pipe %(a FIFO", notes)
    assert.matches("d/nested/ %(holds a nested %.git", notes)
    assert.matches("big%.bin %(68157440 bytes, over the 64 MiB cap", notes)
    if sock then assert.matches("sock %(a socket", notes) end
    if dev then assert.matches("zero %(a character device", notes) end
    assert.same({}, out.after) -- what is left out is never a change that blocks removal
    assert.same({ true }, out.removed)
    -- the commit holds the file and nothing of the rest
    local log = assert(repo:log("orket/X1"))
    assert.equal(1, #log)
    local again = assert(repo:worktree("X1", base .. "/wt/X1"))
    assert.equal("work\n", H.read(again .. "/a.txt"))
    for _, f in ipairs { "fifo", "sock", "zero", "big.bin", "d/pipe", "d/nested/x.txt" } do
      assert.is_nil(io.open(again .. "/" .. f), f)
    end
  end)

  for _, case in ipairs {
    { what = "a FIFO .gitignore", make = "mkfifo .gitignore", want = "^git: %.gitignore is a FIFO %(never opened%)" },
    { what = "a FIFO .gitattributes in a subdirectory", make = "mkdir sub && mkfifo sub/.gitattributes",
      want = "^git: sub/%.gitattributes is a FIFO" },
    { what = "a symlink .gitignore to a file outside", make = "ln -s /etc/passwd .gitignore",
      want = "^git: %.gitignore is a symlink" },
    { what = "a .gitmodules larger than 1 MiB", make = "truncate -s 2M .gitmodules",
      want = "^git: %.gitmodules is larger than 1 MiB" },
  } do
    it("refuses every operation on a worktree with " .. case.what .. ", then works once it is gone", function()
      sh("cd " .. H.quote(wtp) .. " && " .. case.make)
      H.write(wtp .. "/a.txt", "work\n")
      local out = child(base, ws, [[
out.commit = { repo:commit("X1", { name = WHO.name, email = WHO.email, message = "turn 1" }) }
out.status = { repo:status("X1") }
out.merge = { repo:merge_from_main("X1", WHO) }
out.remove = { repo:worktree_remove("X1") }
]])
      for _, k in ipairs { "commit", "status", "merge", "remove" } do
        assert.equal(cjson.null, out[k][1], k)
        assert.matches(case.want, out[k][2], 1, false, k)
        assert.equal("EUNSAFE", out[k][3], k)
      end
      assert.matches("no git work is done on this working tree until it is removed or made a regular file",
        out.commit[2])
      os.execute("cd " .. H.quote(wtp) .. " && rm -rf .gitignore .gitmodules sub")
      local _, kind = assert(repo:commit("X1", { name = WHO.name, email = WHO.email, message = "turn 2" }))
      assert.equal("committed", kind)
    end)
  end

  -- main's view is a person's folder: a file there that git reads by name is never opened by a
  -- merge's refresh (a FIFO would block it for good, a huge one would be read whole), and the
  -- view still follows. Several merges: each refresh writes main's index with the files it
  -- just wrote, which libgit2's own index write compared with the working tree.
  for _, case in ipairs {
    { what = "a FIFO .gitattributes", make = "mkfifo .gitattributes" },
    { what = "a FIFO .gitignore", make = "mkfifo .gitignore" },
    { what = "a 256 MiB .gitattributes", make = "truncate -s 256M .gitattributes" },
  } do
    it("merges into main and refreshes the view past " .. case.what .. " in it, never opening it", function()
      sh("cd " .. H.quote(ws) .. " && " .. case.make)
      local out = child(base, ws, string.format([[
local function hwm()
  for l in io.lines("/proc/self/status") do
    local k = l:match("^VmHWM:%%s*(%%d+)")
    if k then return tonumber(k) end
  end
end
local before = hwm()
out.merges = {}
for i = 1, 3 do
  local f = assert(io.open(%q .. "/f" .. i .. ".txt", "w"))
  f:write("card " .. i .. "\n")
  f:close()
  assert(repo:commit("X1", { name = WHO.name, email = WHO.email, message = "turn " .. i }))
  local m = assert(repo:merge_to_main("X1", WHO))
  out.merges[i] = { kind = m.kind, stale = m.stale or false, diverged = m.diverged }
end
out.grew_kib = hwm() - before
]], wtp))
      for i = 1, 3 do
        assert.same({ kind = "fastforward", stale = false, diverged = 0 }, out.merges[i])
        assert.equal("card " .. i .. "\n", H.read(ws .. "/f" .. i .. ".txt"))
      end
      -- the view's own work is a few small files; reading the file whole would be 256 MiB
      assert.is_true(out.grew_kib < 64 * 1024, "peak RSS grew by " .. out.grew_kib .. " KiB")
    end)
  end

  -- A repository elsewhere, with a hook and a config that would run programs under git (not
  -- libgit2): the marker file is written only if something runs them.
  local function planted(marker)
    local evil = base .. "/evil"
    sh("cp -a " .. H.quote(ws .. "/.git") .. " " .. H.quote(evil))
    sh("mkdir -p " .. H.quote(evil .. "/hooks"))
    local hook = "#!/bin/sh\ntouch " .. H.quote(marker) .. "\n"
    for _, h in ipairs { "pre-commit", "post-commit", "commit-msg", "post-checkout", "post-merge", "reference-transaction" } do
      H.write(evil .. "/hooks/" .. h, hook)
      sh("chmod +x " .. H.quote(evil .. "/hooks/" .. h))
    end
    H.write(evil .. "/fsmonitor.sh", hook)
    sh("chmod +x " .. H.quote(evil .. "/fsmonitor.sh"))
    H.write(evil .. "/config", H.read(evil .. "/config") .. "[core]\n\tfsmonitor = " .. evil .. "/fsmonitor.sh\n\thooksPath = "
      .. evil .. "/hooks\n")
    return evil
  end

  local function snapshot(dir)
    local p = io.popen("cd " .. H.quote(dir) .. " && find . -type f | sort | xargs md5sum")
    local s = p:read("a")
    p:close()
    return s
  end

  it("refuses a card's .git rewritten to point elsewhere, never follows it, and puts it back", function()
    local marker = base .. "/hook-ran"
    local evil = planted(marker)
    local before = snapshot(evil)
    local main_before = snapshot(ws .. "/.git")
    H.write(wtp .. "/a.txt", "work\n")
    H.write(wtp .. "/.git", "gitdir: " .. evil .. "\n")
    local out = child(base, ws, [[
out.commit = { repo:commit("X1", { name = WHO.name, email = WHO.email, message = "turn 1" }) }
out.again = { repo:commit("X1", { name = WHO.name, email = WHO.email, message = "turn 1" }) }
]])
    assert.equal(cjson.null, out.commit[1])
    assert.equal("EUNSAFE", out.commit[3])
    assert.matches("^git: the %.git file of card X1's worktree points to \"" .. evil:gsub("%p", "%%%0") .. "\", not the "
      .. "repository's worktrees/X1: refused, never followed", out.commit[2])
    -- put back: the next operation works on the card's own repository
    assert.equal("committed", out.again[2])
    assert.matches("^gitdir: ", H.read(wtp .. "/.git"))
    assert.equal("gitdir: " .. evil .. "\n", H.read(ws .. "/.git/worktrees/X1/dotgit.refused-1"))
    assert.is_nil(io.open(wtp .. "/dotgit.refused-1"))
    assert.equal(before, snapshot(evil)) -- nothing landed in the planted repository
    assert.is_nil(io.open(marker)) -- no hook, no fsmonitor ran
    assert.are_not.equal(main_before, snapshot(ws .. "/.git")) -- the commit landed at home
    assert.equal("turn 1", repo:log("orket/X1")[1].summary)
  end)

  for _, case in ipairs {
    { what = "a FIFO", make = function(p) sh("rm " .. H.quote(p) .. " && mkfifo " .. H.quote(p)) end, want = "is a FIFO" },
    { what = "missing", make = function(p) sh("rm " .. H.quote(p)) end, want = "is missing" },
    { what = "a symlink", make = function(p) sh("rm " .. H.quote(p) .. " && ln -s /etc/hostname " .. H.quote(p)) end,
      want = "is a symlink" },
    { what = "a directory holding a repository", make = function(p)
      sh("rm " .. H.quote(p) .. " && cp -a " .. H.quote(ws .. "/.git") .. " " .. H.quote(p)) end, want = "is a directory" },
  } do
    it("refuses a card's .git that is " .. case.what .. " without blocking on it", function()
      case.make(wtp .. "/.git")
      local out = child(base, ws, [[
out.status = { repo:status("X1") }
out.worktree = { repo:worktree("X1", ]] .. string.format("%q", wtp) .. [[) }
]])
      assert.equal("EUNSAFE", out.status[3])
      assert.matches(case.want, out.status[2])
      assert.equal(wtp, out.worktree[1]) -- put back by the refusal
    end)
  end

  it("recover puts a rewritten .git back and leaves its refusal for the card's next operation", function()
    H.write(wtp .. "/.git", "gitdir: /elsewhere\n")
    local out = child(base, ws, [[
out.recover = { repo:recover() }
out.check = { repo:check() }
out.commit = { repo:commit("X1", { name = WHO.name, email = WHO.email, message = "m" }) }
out.again = { repo:check() }
]])
    assert.equal(0, out.recover[1])
    assert.equal("EINCONSISTENT", out.check[3])
    assert.matches("worktree X1: its %.git file was refused", out.check[2])
    assert.equal("EUNSAFE", out.commit[3])
    assert.matches("points to \"/elsewhere\"", out.commit[2])
    assert.is_true(out.again[1])
  end)

  it("making another card's worktree never follows a rewritten .git; that card's next operation reports it", function()
    local marker = base .. "/hook-ran"
    local evil = planted(marker)
    local before = snapshot(evil)
    sh("rm " .. H.quote(wtp .. "/.git") .. " && mkfifo " .. H.quote(wtp .. "/.git"))
    -- libgit2 opens every worktree when it makes one (is the branch checked out there?)
    local out = child(base, ws, [[
out.made = { repo:worktree("X2", ]] .. string.format("%q", base .. "/wt/X2") .. [[) }
out.x1 = { repo:status("X1") }
out.x1_again = { repo:status("X1") }
]])
    assert.equal(base .. "/wt/X2", out.made[1])
    assert.equal("EUNSAFE", out.x1[3])
    assert.matches("the %.git file of card X1's worktree is a FIFO", out.x1[2])
    assert.same({}, out.x1_again[1]) -- reported once; its .git is the engine's again
    -- the same with a .git naming the planted repository
    H.write(wtp .. "/.git", "gitdir: " .. evil .. "\n")
    out = child(base, ws, [[
out.made = { repo:worktree("X3", ]] .. string.format("%q", base .. "/wt/X3") .. [[) }
out.x1 = { repo:commit("X1", { name = WHO.name, email = WHO.email, message = "m" }) }
]])
    assert.equal(base .. "/wt/X3", out.made[1])
    assert.equal("EUNSAFE", out.x1[3])
    assert.equal(before, snapshot(evil))
    assert.is_nil(io.open(marker))
  end)
end)
