-- Locks in main's repository (workspace/.git), which is a person's too: recovery removes only
-- what a killed write of Orket's left there, known by the record the write made first (its
-- pid, its time, the lock it takes); a lock of a person's git (a commit whose editor is open
-- holds index.lock) is left, and the view waits, naming the file and what settles it. The
-- cards' own locks stay Orket's to clear.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local WHO = { name = "senior_developer (coder)", email = "senior_developer@orket.invalid" }
local GUARD = { name = "integrity_guard", email = "integrity_guard@orket.invalid" }

local function sh(cmd) assert(os.execute(cmd), cmd) end

-- the pid of a process that has ended (reaped)
local function dead_pid()
  local p = io.popen("sh -c 'echo $$'")
  local pid = math.tointeger(tonumber(p:read("l")))
  p:close()
  assert(not H.alive(pid))
  return pid
end

describe("main's repository's locks", function()
  local proj, pws, repo
  before_each(function()
    proj = H.tmpdir()
    pws = proj .. "/workspace"
    sh("mkdir -p " .. pws)
    H.write(pws .. "/README", "hello\n")
    repo = assert(G.init(pws, WHO))
  end)
  after_each(function()
    repo:close()
    H.cleanup()
  end)

  -- a card's change merged into main: the view has something to write
  local function card_change(card, file)
    local p = assert(repo:worktree(card, proj .. "/wt/" .. card))
    H.write(p .. "/" .. file, "the card's\n")
    assert(repo:commit(card, { name = WHO.name, email = WHO.email, message = "work" }))
  end

  -- a record of a write of Orket's: pid, time (seconds since the epoch), the lock it takes
  local function record(pid, at, lock)
    H.write(string.format("%s/.git/orket-write.%d", pws, pid), string.format("orket-write 1 %d %d.000000000 %s\n", pid,
      at, lock))
  end

  it("leaves a person's index.lock to them: recovery keeps it, the view waits and names it", function()
    local lock = pws .. "/.git/index.lock"
    H.write(lock, "a person's git at work\n")
    card_change("L1", "new.txt")
    local m = assert(repo:merge_to_main("L1", GUARD)) -- the merge stands
    assert.matches("main's index: the index is locked", m.stale, 1, true)
    assert.matches("workspace/.git/index.lock", m.stale, 1, true)
    assert.matches("rm workspace/.git/index.lock", m.stale, 1, true)
    -- a run's or a resume's recovery: their lock stays, untouched
    assert.equal(0, assert(repo:recover()))
    assert.equal("a person's git at work\n", H.read(lock))
    local _, behind = assert(repo:view_status())
    assert.matches("rm workspace/.git/index.lock", behind, 1, true)
    local text = H.orket("status -C " .. H.quote(proj))
    assert.equal(0, text.status, text.stderr)
    assert.matches("workspace/.git/index.lock is there", text.stdout, 1, true)
    assert.matches("rm workspace/.git/index.lock", text.stdout, 1, true)
    -- their git ended: the next refresh catches up
    os.remove(lock)
    assert.equal(0, assert(repo:view_refresh()))
    assert.equal("the card's\n", H.read(pws .. "/new.txt"))
    assert.is_nil(select(2, assert(repo:view_status())))
  end)

  it("leaves every lock of main's gitdir that no killed write of Orket's recorded", function()
    local kept = { "index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "refs/heads/main.lock",
      "refs/heads/mine.lock", "refs/tags/v1.lock" }
    sh("mkdir -p " .. pws .. "/.git/refs/tags")
    for _, f in ipairs(kept) do H.write(pws .. "/.git/" .. f, "") end
    -- the cards' own: Orket's alone
    card_change("C1", "c.txt")
    sh("mkdir -p " .. pws .. "/.git/refs/orket " .. pws .. "/.git/refs/remotes/orket " .. pws
      .. "/.git/refs/remotes/orket-branches")
    local ours = { "refs/heads/orket/C1.lock", "refs/orket/remote-main-dropped.lock", "refs/remotes/orket/main.lock",
      "refs/remotes/orket-branches/f.lock" }
    for _, f in ipairs(ours) do H.write(pws .. "/.git/" .. f, "") end
    assert.equal(#ours, assert(repo:recover()))
    for _, f in ipairs(kept) do assert.equal("", H.read(pws .. "/.git/" .. f), f) end
    for _, f in ipairs(ours) do assert.is_nil(H.read(pws .. "/.git/" .. f), f) end
  end)

  it("removes the lock a killed write of Orket's left, by its record: a gone process's, at the write's time", function()
    local now = os.time()
    -- a run killed inside the view's index write, and one inside a merge's move of main
    local a, b = dead_pid(), dead_pid()
    H.write(pws .. "/.git/index.lock", "")
    H.write(pws .. "/.git/refs/heads/main.lock", "")
    record(a, now, "index.lock")
    record(b, now - 1, "refs/heads/main.lock")
    assert.equal(2, assert(repo:recover()))
    assert.is_nil(H.read(pws .. "/.git/index.lock"))
    assert.is_nil(H.read(pws .. "/.git/refs/heads/main.lock"))
    -- the records went with them
    assert.is_nil(H.read(string.format("%s/.git/orket-write.%d", pws, a)))
    assert.is_nil(H.read(string.format("%s/.git/orket-write.%d", pws, b)))
  end)

  it("keeps a lock whose time does not fit a gone process's record, or whose writer lives", function()
    local now = os.time()
    -- a record an hour older than the lock: a person's git took the lock since, not that write
    local old = dead_pid()
    record(old, now - 3600, "index.lock")
    H.write(pws .. "/.git/index.lock", "")
    assert.equal(0, assert(repo:recover()))
    assert.truthy(H.read(pws .. "/.git/index.lock"))
    assert.is_nil(H.read(string.format("%s/.git/orket-write.%d", pws, old))) -- a gone process's: stale
    -- a record of a process still running: its write may be under way
    local p = io.popen("sleep 60 >/dev/null 2>&1 & echo $!")
    local live = math.tointeger(tonumber(p:read("l")))
    p:close()
    record(live, os.time(), "index.lock")
    local ok, n = pcall(repo.recover, repo)
    os.execute("kill -9 " .. live)
    H.wait_for(function() return not H.alive(live) end, "the live writer to end")
    assert.equal(0, assert(ok and n))
    assert.truthy(H.read(pws .. "/.git/index.lock"))
    assert.truthy(H.read(string.format("%s/.git/orket-write.%d", pws, live)))
    os.remove(string.format("%s/.git/orket-write.%d", pws, live))
    -- a record naming a file no write of Orket's takes is no licence to remove it
    local other = dead_pid()
    H.write(pws .. "/.git/config.lock", "")
    record(other, now, "config.lock")
    assert.equal(0, assert(repo:recover()))
    assert.truthy(H.read(pws .. "/.git/config.lock"))
  end)

  it("keeps a lock a live process holds open, though a gone process's record names it", function()
    -- a run killed between its record and libgit2's taking the lock; a person's git commit
    -- (its editor open) then took index.lock, and holds it open until it ends
    local lock = pws .. "/.git/index.lock"
    local gone = dead_pid()
    record(gone, os.time(), "index.lock")
    local p = io.popen("(exec 3>>" .. H.quote(lock) .. "; exec sleep 60) </dev/null >/dev/null 2>&1 & echo $!")
    local holder = math.tointeger(tonumber(p:read("l")))
    p:close()
    H.wait_for(function()
      local f = io.open("/proc/" .. holder .. "/fd/3")
      if f then f:close() end
      return f ~= nil
    end, "the holder to open the lock")
    local ok, n = pcall(repo.recover, repo)
    os.execute("kill -9 " .. holder)
    H.wait_for(function() return not H.alive(holder) end, "the holder to end")
    assert.equal(0, assert(ok and n))
    assert.truthy(H.read(lock))
    assert.is_nil(H.read(string.format("%s/.git/orket-write.%d", pws, gone))) -- a gone process's: stale
  end)

  it("keeps a lock changed later than the write that recorded it could have", function()
    -- the write (an index, a ref, packed-refs) changes its lock within a few seconds of its
    -- record; a lock changed half a minute later is a person's, taken since
    local gone = dead_pid()
    record(gone, os.time() - 30, "index.lock")
    H.write(pws .. "/.git/index.lock", "")
    assert.equal(0, assert(repo:recover()))
    assert.truthy(H.read(pws .. "/.git/index.lock"))
  end)

  it("removes packed-refs.lock a killed delete of a packed ref of Orket's left, by its record", function()
    local gone = dead_pid()
    H.write(pws .. "/.git/packed-refs.lock", "")
    record(gone, os.time(), "packed-refs.lock")
    assert.equal(1, assert(repo:recover()))
    assert.is_nil(H.read(pws .. "/.git/packed-refs.lock"))
  end)

  it("records its own writes in main's gitdir only while they run", function()
    card_change("R1", "r.txt")
    assert(repo:merge_to_main("R1", GUARD))
    assert.equal("the card's\n", H.read(pws .. "/r.txt"))
    local listing = io.popen("ls -a " .. H.quote(pws .. "/.git"))
    local names = listing:read("a")
    listing:close()
    assert.not_matches("orket%-write", names)
  end)
end)
