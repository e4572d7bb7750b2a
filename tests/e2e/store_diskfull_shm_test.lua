-- A store on a nearly full ext4 with 1 KiB blocks (what mkfs.ext4 picks for a small volume).
-- SQLite grows the WAL index (orket.db-shm, mapped into memory) by writing one byte at the
-- end of each 4 KiB page: with 1 KiB blocks the rest of each page is a hole, and SQLite's
-- first store into one needed a block the full disk did not have. The kernel said so with
-- SIGBUS: orket run died with status 135 and no word, and after it orket board too (its
-- read rebuilt the index). The store's VFS (core/storevfs.c) now has the blocks allocated
-- when a region is mapped, and a full disk fails that map: "database or disk is full". A
-- read-only open needs no room at all (store.c: SQLite's read-only shared memory).
local H = require "tests.helpers"
local backends = require "tests.backends"

-- Writes rows of 3,000 bytes, a transaction each, into the store at arg[1] until one fails:
-- prints "all written" or the failure, as "STEP: CODE: message".
local FILL = [[
local cstore = require "orket.c.store"
local db, err, code = cstore.open(arg[1], false)
if not db then print("open: " .. tostring(code) .. ": " .. tostring(err)) return end
local ok, e, c = db:exec("CREATE TABLE IF NOT EXISTS diskfull_fill (b BLOB)")
if not ok then print("create: " .. tostring(c) .. ": " .. tostring(e)) return end
for i = 1, 200 do
  local n, e2, c2 = db:run("INSERT INTO diskfull_fill VALUES (randomblob(3000))")
  if not n then print("insert " .. i .. ": " .. tostring(c2) .. ": " .. tostring(e2)) return end
end
print("all written")
]]

-- Reads the store at arg[1], opened read-only: prints "cards N" or the failure.
local READ = [[
local db, err, code = require("orket.c.store").open(arg[1], false, true)
if not db then print("open: " .. tostring(code) .. ": " .. tostring(err)) return end
local row, e, c = db:row("SELECT count(*) AS n FROM cards")
print(row and ("cards " .. row.n) or ("read: " .. tostring(c) .. ": " .. tostring(e)))
]]

local function sh_ok(cmd)
  local st, out = H.sh(cmd)
  return st == 0, out
end

-- a loop-mounted 8 MiB ext4 with 1 KiB blocks at tmp/mnt -> its path | nil, why not here
local function small_ext4(tmp)
  if io.popen("id -u"):read("l") ~= "0" then return nil, "mounting a file system needs root" end
  local found = sh_ok("command -v mkfs.ext4 || test -x /sbin/mkfs.ext4 || test -x /usr/sbin/mkfs.ext4")
  if not found or not sh_ok("command -v fallocate") then return nil, "mkfs.ext4 or fallocate is not installed" end
  local img, mnt = tmp .. "/img", tmp .. "/mnt"
  local i, m = H.quote(img), H.quote(mnt)
  local ok, out = sh_ok(string.format("PATH=$PATH:/sbin:/usr/sbin; truncate -s 8M %s "
    .. "&& mkfs.ext4 -q -F -m 0 -b 1024 %s && mkdir %s && mount -o loop %s %s", i, i, m, i, m))
  if not ok then return nil, "mount -o loop failed here: " .. out:gsub("%s+$", "") end
  return mnt
end

-- leaves kib KiB free on the file system of dir, in dir/fill
local function leave_free(dir, kib)
  local ok, out = sh_ok(string.format("cd %s && rm -f fill && sync && avail=$(df -k --output=avail . | tail -n 1) "
    .. "&& if [ $avail -gt %d ]; then fallocate -l $(( (avail - %d) * 1024 )) fill; fi", H.quote(dir), kib, kib))
  assert(ok, out)
end

describe("a store on a nearly full ext4 with 1 KiB blocks", function()
  after_each(function() H.cleanup() end)

  it("fails its writes saying the disk is full, reads read-only, and never dies of SIGBUS", function()
    if backends.name() ~= "sqlite" then
      return pending("the store's own files: PostgreSQL keeps none in the project")
    end
    local tmp = H.tmpdir()
    local mnt, why = small_ext4(tmp)
    if not mnt then return pending(why) end
    finally(function() os.execute("umount " .. H.quote(mnt) .. " 2>/dev/null || umount -l " .. H.quote(mnt)) end)
    H.write(tmp .. "/fill.lua", FILL)
    H.write(tmp .. "/read.lua", READ)
    local r = H.orket("init proj --yes", { cwd = mnt })
    assert.equal(0, r.status, r.stderr)
    -- each amount on a fresh copy of the project, its store closed (no -wal, no -shm): the
    -- first connection then grows the index again from nothing, as each command does. The
    -- run (the demo's scripted model: no network) as the report met it, then the store's
    -- writes alone, a row at a time; each time the board read after.
    local failed = 0
    for kib = 64, 8, -4 do
      for _, how in ipairs { "run", "rows" } do
        local dir = mnt .. "/p"
        assert(sh_ok(string.format("cd %s && rm -rf p fill && cp -a proj p", H.quote(mnt))))
        leave_free(mnt, kib)
        local what = kib .. " KiB free, " .. how
        if how == "run" then
          r = H.orket("run START", { cwd = dir })
          assert.is_true(r.status == 0 or r.status == 1, what .. ": ended with status " .. tostring(r.status) .. " "
            .. r.stdout .. r.stderr)
        else
          r = H.orket("lua " .. H.quote(tmp .. "/fill.lua") .. " .orket/orket.db", { cwd = dir })
          assert.is_true(r.status == 0, what .. ": ended with status " .. tostring(r.status) .. " "
            .. r.stdout .. r.stderr)
          if not r.stdout:find("all written", 1, true) then
            failed = failed + 1
            -- the store's words for a full disk: SQLite's, or the system's
            assert.matches("^%w+[ %d]*: ENOSPC: [^\n]*orket%.db: [^\n]*", r.stdout, nil, false, what)
            assert.is_truthy(r.stdout:find("database or disk is full", 1, true)
              or r.stdout:find("No space left on device", 1, true), what .. ": " .. r.stdout)
          end
          -- read-only, the store needs no room (store.c: SQLite's read-only shared memory)
          r = H.orket("lua " .. H.quote(tmp .. "/read.lua") .. " .orket/orket.db", { cwd = dir })
          assert.equal(0, r.status, what .. ": " .. r.stderr)
          assert.matches("^cards %d+\n$", r.stdout, nil, false, what)
        end
        r = H.orket("board", { cwd = dir })
        assert.is_true(r.status == 0 or r.status == 1, what .. ": board ended with status " .. tostring(r.status)
          .. " " .. r.stdout .. r.stderr)
        if r.status == 1 then assert.matches("orket.db: [^\n]*disk", r.stderr, nil, false, what) end
      end
    end
    assert.is_true(failed > 0, "the disk never filled: the test did not test")
    -- space freed: the last copy reads, whole
    assert(sh_ok("rm -f " .. H.quote(mnt .. "/fill")))
    r = H.orket("board", { cwd = mnt .. "/p" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("START", r.stdout, 1, true)
    r = H.orket([[lua -e "local db = assert(require('orket.c.store').open('.orket/orket.db', false))
      print(db:row('PRAGMA integrity_check').integrity_check)"]], { cwd = mnt .. "/p" })
    assert.equal(0, r.status, r.stderr)
    assert.equal("ok\n", r.stdout)
  end)
end)
