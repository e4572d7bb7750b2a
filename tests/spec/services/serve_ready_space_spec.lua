-- orket serve's /ready on a disk with no room: its probe takes the store's write lock and
-- rolls back, which needs no page, so it said ready while every write failed with ENOSPC.
-- A SQLite store whose file system has less free space than routes.READY_MIN_FREE makes the
-- server not ready, naming the store's disk and its free space (a PostgreSQL store has no
-- file here: its probe is as it was).
local uv = require "luv"
local H = require "tests.helpers"
local routes = require "orket.serve.routes"
local project = require "orket.project"

-- the handler of GET /ready, as the router would call it
local function ready_handler()
  local handlers = {}
  routes.add({ add = function(_, method, path, spec) handlers[method .. " " .. path] = spec.handler end })
  return assert(handlers["GET /ready"])
end

local function ask(dir, db)
  local status, doc = ready_handler()(nil, { db = db, dir = dir, query = {} })
  return status, doc
end

describe("/ready and the store's free space", function()
  local statfs = uv.fs_statfs
  after_each(function()
    uv.fs_statfs = statfs
    H.cleanup()
  end)

  it("is not ready when the store's file system has less free space than its writes need, naming it", function()
    local dir = H.example("webapp")
    local db = assert(project.open_store(dir, false))
    if db.backend ~= "sqlite" then
      db:close()
      return pending("a SQLite store's file: PostgreSQL keeps none in the project")
    end
    local asked
    uv.fs_statfs = function(path)
      asked = path
      return { type = 61267, bsize = 4096, blocks = 14325, bfree = 327, bavail = 30, files = 16384, ffree = 16334 }
    end
    local status, doc = ask(dir, db)
    assert.equal(dir .. "/.orket", asked)
    assert.equal(503, status)
    assert.equal("not_ready", doc.status)
    local said = table.concat(doc.problems, "\n")
    assert.matches("the disk that holds the store (.orket/orket.db) has 120 KiB free, less than the 8 MiB its "
      .. "writes need: free space on it (df .orket)", said, 1, true)
    -- the server's folders are no client's to know: the store is named inside the project
    assert.is_nil(said:find(dir, 1, true), said)
    -- room enough: ready
    uv.fs_statfs = function()
      return { type = 61267, bsize = 4096, blocks = 14325, bfree = 9000, bavail = 2048 + 1, files = 16384, ffree = 16334 }
    end
    status, doc = ask(dir, db)
    assert.equal(200, status, doc.problems and table.concat(doc.problems, "\n"))
    -- a file system that does not say is no problem
    uv.fs_statfs = function() return nil, "ENOSYS: function not implemented", "ENOSYS" end
    assert.equal(200, (ask(dir, db)))
    db:close()
  end)

  it("is not ready on a full tmpfs, while its probe's write lock is still had", function()
    local root = H.tmpdir() .. "/disk"
    assert(os.execute("mkdir -p " .. H.quote(root)))
    local st, out = H.sh(string.format("mount -t tmpfs -o size=4m orket-full %s", H.quote(root)))
    if st ~= 0 then return pending("no tmpfs could be mounted here (" .. out:gsub("%s+$", "") .. ")") end
    finally(function() H.sh("umount -l " .. H.quote(root)) end)
    local dir = root .. "/p"
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/webapp/.") .. " " .. H.quote(dir))
    local db = assert(project.open_store(dir, true))
    if db.backend ~= "sqlite" then
      db:close()
      return pending("a SQLite store's file: PostgreSQL keeps none in the project")
    end
    H.sh("dd if=/dev/zero of=" .. H.quote(root .. "/fill") .. " bs=4k 2>/dev/null")
    local status, doc = ask(dir, db)
    assert.equal(503, status)
    assert.matches("the disk that holds the store %(%.orket/orket%.db%) has %d+ KiB free", table.concat(doc.problems, "\n"))
    db:close()
  end)
end)
