-- A project whose disk is full: the store cannot make the WAL's index (-shm) as it opens,
-- which SQLite says as "disk I/O error" alone; the system's error is said with it, as ENOSPC.
-- Needs a small tmpfs of its own (root, or a user namespace that allows a mount): without
-- one the test is skipped, saying why.
local H = require "tests.helpers"
local backends = require "tests.backends"

describe("a full disk under the store", function()
  after_each(H.cleanup)

  it("is said as the system says it when the store cannot be opened", function()
    if backends.name() ~= "sqlite" then return pending("a SQLite store's file: PostgreSQL keeps none in the project") end
    local root = H.tmpdir() .. "/disk"
    assert(os.execute("mkdir -p " .. H.quote(root)))
    local st, out = H.sh(string.format("mount -t tmpfs -o size=3m orket-full %s", H.quote(root)))
    if st ~= 0 then return pending("no tmpfs could be mounted here (" .. out:gsub("%s+$", "") .. ")") end
    finally(function() H.sh("umount -l " .. H.quote(root)) end)
    assert.equal(0, H.orket("init p --yes", { cwd = root }).status)
    local dir = root .. "/p"
    assert.equal(0, H.orket("board", { cwd = dir }).status)
    os.remove(dir .. "/.orket/orket.db-shm")
    H.sh("dd if=/dev/zero of=" .. H.quote(root .. "/fill") .. " bs=4k 2>/dev/null")
    -- (a command that writes: the reading ones read the store read-only, tests/e2e/diskfull_reads_test.lua)
    local r = H.orket("comment START-1 " .. H.quote("on a full disk"), { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches("store: cannot open .orket/orket.db: disk I/O error (No space left on device)", r.stderr, 1, true)
    os.remove(root .. "/fill")
    assert.equal(0, H.orket("board", { cwd = dir }).status)
  end)
end)
