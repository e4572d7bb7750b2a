-- A server's first run on a full disk: .orket/runs/, the runs' locks' folder, could not be
-- made, which went unsaid, and the lock file's open then failed "No such file or
-- directory", coded EIO and answered 409 conflict, as if another run were in the way. The
-- folder's failure is said, ENOSPC with "free space"; a lock file the full disk refuses
-- is ENOSPC too. Needs a small tmpfs of its own (root, or a user namespace that allows a
-- mount): without one the test is skipped, saying why.
local uv = require "luv"
local H = require "tests.helpers"
local claims = require "orket.engine.claims"
local lockfile = require "orket.c.lockfile"

-- full_disk() -> the folder of a project's .orket/ on a tmpfs with no inode left | nil, why
local function full_disk()
  local root = H.tmpdir() .. "/disk"
  assert(os.execute("mkdir -p " .. H.quote(root)))
  local st, out = H.sh(string.format("mount -t tmpfs -o size=1m,nr_inodes=16 orket-full %s", H.quote(root)))
  if st ~= 0 then return nil, "no tmpfs could be mounted here (" .. out:gsub("%s+$", "") .. ")" end
  finally(function() H.sh("umount -l " .. H.quote(root)) end)
  local dir = root .. "/p"
  assert(uv.fs_mkdir(dir, 448))
  assert(uv.fs_mkdir(dir .. "/.orket", 448))
  -- every inode taken: a folder or a file made now fails with ENOSPC
  for i = 1, 64 do
    local fd = uv.fs_open(root .. "/fill" .. i, "w", 384)
    if not fd then break end
    uv.fs_close(fd)
  end
  local ok, _, code = uv.fs_mkdir(root .. "/probe", 448)
  assert.is_nil(ok, "the tmpfs still makes folders")
  assert.equal("ENOSPC", code)
  return dir
end

describe("a full disk under a project's .orket", function()
  after_each(H.cleanup)

  it("is said as ENOSPC naming .orket/runs and free space when a run's lock cannot be had", function()
    local dir, why = full_disk()
    if not dir then return pending(why) end
    local lk, err, code = claims.hold(dir, 1)
    assert.is_nil(lk)
    assert.equal("ENOSPC", code, err)
    assert.matches("cannot make " .. dir .. "/.orket/runs, the folder of the runs' locks: no space left on device; "
      .. "free space on its file system", err, 1, true)
    -- a worker's lock alike
    local h, werr, wcode = claims.hold_worker(dir, 1)
    assert.is_nil(h)
    assert.equal("ENOSPC", wcode, werr)
    assert.matches(".orket/runs", werr, 1, true)
    -- a lock file the full disk cannot make: the host's failure, not EIO
    local l2, lerr, lcode = lockfile.acquire(dir .. "/.orket/claim.lock")
    assert.is_nil(l2)
    assert.equal("ENOSPC", lcode, lerr)
    assert.matches("cannot open lock file " .. dir .. "/.orket/claim.lock: No space left on device", lerr, 1, true)
  end)
end)
