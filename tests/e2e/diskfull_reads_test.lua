-- A project whose disk is full: the store cannot be opened for writing (SQLite cannot make
-- or grow the WAL's index, -shm), and board, card, runs, log and backup failed with it,
-- though docs/store.md says the reading commands read a store that cannot be written. They
-- open it read-only instead, every commit read (a -wal a killed writer left too), and a
-- backup to another disk is taken: the operator's first step before freeing space. A
-- server (reading "serving") is not opened read-only for a full disk: it would stay so once
-- space is freed. Needs a small tmpfs of its own (root, or a user namespace that allows a
-- mount): without one the test is skipped, saying why.
local H = require "tests.helpers"
local backends = require "tests.backends"

describe("a full disk under the store", function()
  after_each(H.cleanup)

  it("leaves board, card, runs, log and a backup to another disk reading the store", function()
    if backends.name() ~= "sqlite" then return pending("a SQLite store's file: PostgreSQL keeps none in the project") end
    local root = H.tmpdir() .. "/disk"
    assert(os.execute("mkdir -p " .. H.quote(root)))
    local st, out = H.sh(string.format("mount -t tmpfs -o size=16m orket-full %s", H.quote(root)))
    if st ~= 0 then return pending("no tmpfs could be mounted here (" .. out:gsub("%s+$", "") .. ")") end
    finally(function() H.sh("umount -l " .. H.quote(root)) end)
    H.ok(H.orket("init p --yes", { cwd = root }), "init")
    local dir = root .. "/p"
    H.ok(H.orket("run START", { cwd = dir }), "run")
    -- a comment a killed writer left in the -wal only: read too
    H.orket("lua -e " .. H.quote([[local db = assert(require("orket.project").open_store(".", false))
assert(db:tx(function() db:event { kind = "comment", actor = "in-the-wal", card = "START-1", data = { text = "x" } }
  return true end))
require("luv").kill(require("luv").os_getpid(), "sigkill")]]), { cwd = dir })
    assert.is_truthy(io.open(dir .. "/.orket/orket.db-wal"), "the killed writer left its -wal")
    os.remove(dir .. "/.orket/orket.db-shm")
    H.sh("dd if=/dev/zero of=" .. H.quote(root .. "/fill") .. " bs=4k 2>/dev/null")
    -- a writing command says the full disk, as before
    local w = H.orket("comment START-1 " .. H.quote("on a full disk"), { cwd = dir })
    assert.equal(1, w.status, w.stderr)
    assert.matches("store: cannot open .orket/orket.db: disk I/O error (No space left on device)", w.stderr, 1, true)
    for _, args in ipairs { "board", "runs", "log 1", "card START-1" } do
      local r = H.orket(args, { cwd = dir })
      assert.equal(0, r.status, args .. ": " .. r.stderr)
    end
    assert.matches("in-the-wal", H.orket("card START-1", { cwd = dir }).stdout, 1, true)
    -- the backup, to a disk with room, holds the -wal's comment
    local bak = H.tmpdir() .. "/p.bak"
    local b = H.orket("backup " .. H.quote(bak), { cwd = dir })
    assert.equal(0, b.status, b.stderr)
    local check = H.orket("restore " .. H.quote(bak) .. " --check", { cwd = dir })
    assert.equal(0, check.status, check.stderr)
    -- a server is not opened read-only for a full disk: it would stay so once space is freed
    local db, err, code = require("orket.project").open_store(dir, false, "serving")
    if db then db:close() end
    assert.is_nil(db)
    assert.equal("ENOSPC", code, err)
    -- space freed: written again
    os.remove(root .. "/fill")
    H.ok(H.orket("comment START-1 " .. H.quote("space again"), { cwd = dir }), "comment")
  end)
end)
