-- A new store is 0 bytes from SQLite's creating the file to its first write: two first
-- commands at once on a new project (a serve and a worker unit started together) had one
-- call the other's new store damaged ("the file is empty (0 bytes) ... remove the file").
-- The process making a store holds its creation lock (PATH.lock) meanwhile, and an empty
-- file is judged only once no one holds it; an empty file no one is making is still refused.
local H = require "tests.helpers"
local store = require "orket.store"
local lockfile = require "orket.c.lockfile"
local uv = require "luv"

-- a file of 0 bytes at path, as SQLite's open makes it
local function empty_file(path)
  H.write(path, "")
  return path
end

describe("store.open of an empty file", function()
  local wait_ms
  before_each(function() wait_ms = store.CREATE_WAIT_MS end)
  after_each(function()
    store.CREATE_WAIT_MS = wait_ms
    H.cleanup()
  end)

  it("waits while another process makes the store, then opens what it made", function()
    local dir = H.tmpdir()
    local path = dir .. "/orket.db"
    -- the other process: the lock, the empty file, a pause, then SQLite's first write
    H.write(dir .. "/maker.lua", string.format([[
local lockfile = require "orket.c.lockfile"
local path = %q
local lk = assert(lockfile.acquire(path .. ".lock"))
assert(io.open(path, "w")):close()
assert(io.open(path .. ".ready", "w")):close()
require("luv").sleep(400)
local conn = assert(require("orket.c.store").open(path, true))
os.remove(path .. ".lock")
lk:release()
conn:close()
]], path))
    local maker = io.popen(H.quote(H.BIN) .. " lua " .. H.quote(dir .. "/maker.lua") .. " 2>&1")
    H.wait_for(function() return uv.fs_stat(path .. ".ready") end, "the maker's empty file")
    assert.equal(0, uv.fs_stat(path).size)
    local reader, rerr = store.open(path, { create = false })
    assert.is_truthy(reader, rerr)
    reader:close()
    local db, err = store.open(path)
    assert.is_truthy(db, err)
    assert.equal(store.latest_version, db:version())
    db:close()
    assert.equal("", maker:read("a"))
    assert.is_true(maker:close())
    assert.is_nil(uv.fs_stat(path .. ".lock"))
  end)

  it("says another process is making it when its lock stays held past the wait", function()
    store.CREATE_WAIT_MS = 100
    local path = empty_file(H.tmpdir() .. "/orket.db")
    local lk = assert(lockfile.acquire(path .. ".lock"))
    for _, opts in ipairs { {}, { create = false }, { readonly = true } } do
      local db, err, code = store.open(path, opts)
      assert.is_nil(db)
      assert.equal("EBUSY", code)
      assert.equal(string.format("store: cannot open %s: another process (pid %d) is making it (it holds %s.lock) "
        .. "and has not finished in 100 ms; try again", path, uv.os_getpid(), path), err)
    end
    lk:release()
    os.remove(path .. ".lock")
  end)

  it("still refuses an empty file no one is making, and leaves no lock file", function()
    local path = empty_file(H.tmpdir() .. "/orket.db")
    for _, opts in ipairs { {}, { create = false }, { readonly = true } } do
      local db, err, code = store.open(path, opts)
      assert.is_nil(db)
      assert.equal("ECORRUPT", code)
      assert.matches("the file is empty (0 bytes), which no store is: `orket restore` a backup", err, 1, true)
    end
    assert.equal("", H.read(path))
    assert.is_nil(uv.fs_stat(path .. ".lock"))
  end)

  it("makes a new store under the lock and removes the lock's file", function()
    local path = H.tmpdir() .. "/new/orket.db"
    local db = assert(store.open(path))
    db:close()
    assert.is_nil(uv.fs_stat(path .. ".lock"))
  end)
end)
