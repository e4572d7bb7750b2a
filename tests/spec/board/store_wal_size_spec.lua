-- A SQLite store's -wal file does not keep the size of its largest transaction while a
-- connection stays open (orket serve): a restore, which writes every page through the WAL,
-- cuts it to nothing when it is done, and every connection sets journal_size_limit, so a
-- later checkpoint cuts a large -wal back to 64 MiB (docs/store.md, "What grows").
local H = require "tests.helpers"
local store = require "orket.store"

local function size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end")
  f:close()
  return n
end

describe("a store's -wal file", function()
  after_each(H.cleanup)

  it("is cut to nothing after a restore while another connection (a server) holds the store", function()
    local dir = H.tmpdir()
    local db = assert(store.open(dir .. "/orket.db"))
    -- about 4 MB of journal
    local text = ("x"):rep(4000)
    assert(db:tx(function()
      for i = 1, 1000 do db:event { kind = "note", data = { n = i, text = text } } end
      return true
    end))
    assert(db.conn:backup_to(dir .. "/b.db"))
    local server = assert(store.open(dir .. "/orket.db"))
    assert.equal(1000, server:row("SELECT count(*) AS n FROM events WHERE kind = 'note'").n)
    assert(db.conn:restore_from(dir .. "/b.db"))
    assert.is_true(size(dir .. "/orket.db") > 4000000)
    assert.equal(0, size(dir .. "/orket.db-wal"))
    -- the server reads the restored store, and writes on
    assert.equal(1000, server:row("SELECT count(*) AS n FROM events WHERE kind = 'note'").n)
    server:event { kind = "note", data = {} }
    assert.is_true(size(dir .. "/orket.db-wal") < 100000)
    -- each connection bounds what a checkpoint leaves
    assert.equal(64 * 1024 * 1024, server:row("PRAGMA journal_size_limit").journal_size_limit)
    assert.equal(64 * 1024 * 1024, db:row("PRAGMA journal_size_limit").journal_size_limit)
    server:close()
    db:close()
  end)
end)
