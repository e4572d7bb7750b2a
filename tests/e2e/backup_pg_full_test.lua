-- A backup that meets a file-size limit (ulimit -f, systemd LimitFSIZE=) or a full disk is
-- said as the SQLite copy's failure is: the copy for FILE named, and the limit with its
-- value. A PostgreSQL export once said only "backup: File too large" or "No space left on
-- device" (its writes' results unread). FILE stays as it was, no copy left. On the backend
-- the suite runs on.
local H = require "tests.helpers"
local backends = require "tests.backends"

local ok = H.ok

-- a project whose backup is some hundreds of KiB, and a backup of it at FILE -> dir, FILE
local function project_with_backup()
  local dir = H.example("webapp")
  local tmp = H.tmpdir()
  H.write(tmp .. "/fill.lua", [[
local db = assert(require("orket.project").open_store(".", false))
assert(db:tx(function()
  for i = 1, 2000 do db:event { kind = "note", actor = "test", data = { i = i, pad = string.rep("x", 200) } } end
  return true
end))
db:close()
]])
  ok(H.orket("lua " .. H.quote(tmp .. "/fill.lua"), { cwd = dir }), "fill")
  local file = tmp .. "/keep.backup"
  ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "the backup there before")
  return dir, file
end

-- FILE's folder holds no copy (FILE.part-PID) -> listing
local function no_copy(folder)
  local p = io.popen("ls -A " .. H.quote(folder))
  local list = p:read("a")
  p:close()
  assert.not_matches("part", list, 1, true)
end

describe("orket backup past a file-size limit or on a full disk", function()
  after_each(function() H.cleanup() end)

  it("names the copy for FILE and the limit, FILE kept", function()
    local dir, file = project_with_backup()
    local before = H.read(file)
    -- 100 of the shell's blocks (dash's 512 bytes, bash's 1024): far below the backup's size
    local st, out = H.sh(string.format("cd %s && ulimit -f 100 && %s backup %s", H.quote(dir), H.quote(H.BIN),
      H.quote(file)))
    assert.equal(1, st, out)
    assert.matches("^orket: backup: the copy for " .. file:gsub("%p", "%%%0") .. ": [^\n]*%(File too large: a file "
      .. "reached the process's file%-size limit of %d+ bytes, ulimit %-f or systemd LimitFSIZE=; raise it%)\n$", out)
    assert.equal(before, H.read(file))
    no_copy(file:match("^(.*)/"))
  end)

  -- a tmpfs of its own, in a mount namespace of its own (unshare -m, as root)
  it("names the copy for FILE on a full disk, FILE kept", function()
    if not os.execute("unshare -m true 2>/dev/null") then return pending("no mount namespace (unshare -m) here") end
    local dir = project_with_backup()
    local full = H.tmpdir()
    -- an earlier backup there, small (an export's shape) for the file system's 64 KiB
    local earlier = '{"format":"orket-pg-backup","version":1}\n{"end":true}\n'
    local src = H.tmpdir() .. "/earlier"
    H.write(src, earlier)
    local target = full .. "/b.backup"
    local st, out = H.sh("unshare -m sh -c " .. H.quote(string.format("mount -t tmpfs -o size=64k tmpfs %s && "
      .. "cp %s %s && cd %s && %s backup %s; rc=$?; ls -A %s; cat %s; exit $rc", H.quote(full),
      H.quote(src), H.quote(target), H.quote(dir),
      H.quote(H.BIN), H.quote(target), H.quote(full), H.quote(target))))
    assert.equal(1, st, out)
    local said = backends.name() == "pg" and "(No space left on device)" or "database or disk is full"
    assert.matches("orket: backup: the copy for " .. target .. ": ", out, 1, true)
    assert.matches(said, out, 1, true)
    assert.matches("\nb.backup\n" .. earlier, out, 1, true) -- FILE alone in its folder, as it was
    assert.not_matches("part", out, 1, true)
  end)
end)
