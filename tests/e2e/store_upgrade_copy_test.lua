-- An upgrade of a SQLite store is one-way: the first command of a newer orket migrated it
-- without a word (a status, a backup), and a rollback found no file the older orket could
-- open. The file as it was is kept beside the store before it migrates, 0600 as the store,
-- and the upgrade is said once, naming that copy (docs/guide/deploying.md, "Upgrading").
local H = require "tests.helpers"
local store = require "orket.store"

describe("a store an older orket left", function()
  after_each(H.cleanup)

  it("is kept as it was beside the store before it is upgraded, and the upgrade said once", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir)).status)
    local path = dir .. "/.orket/orket.db"
    os.remove(path)
    local old = assert(store.open(path, { upto = 25 }))
    assert(old:exec("CREATE TABLE mark (x TEXT); INSERT INTO mark VALUES ('before')"))
    old:close()
    -- a copy an earlier upgrade left (gone back from since) is older than the file: made anew
    local kept = dir .. "/.orket/orket-schema25.db"
    assert(store.open(kept, { upto = 25 })):close()
    local r = H.orket("status", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("orket: upgraded the store .orket/orket.db from schema version 25 to " .. store.latest_version
      .. ": an older orket cannot open it now; the file as it was is kept at .orket/orket-schema25.db", r.stderr, 1, true)
    -- the copy is the file as it was: at 25, with what it held, and private
    local st = assert(require("luv").fs_stat(kept))
    assert.equal(tonumber("600", 8), st.mode & tonumber("777", 8))
    local copy = assert(store.open(kept, { upto = 25 }))
    assert.equal(25, copy.conn:version())
    assert.equal("before", copy:row("SELECT x FROM mark").x)
    copy:close()
    -- said once: the next command finds the store at the latest version
    r = H.orket("status", { cwd = dir })
    assert.equal("", r.stderr)
    -- a new store is no upgrade: nothing kept, nothing said
    local fresh = H.tmpdir() .. "/q"
    r = H.orket("init " .. H.quote(fresh))
    assert.is_nil(r.stderr:find("upgraded", 1, true))
    local p = io.popen("ls " .. H.quote(fresh .. "/.orket"))
    assert.is_nil(p:read("a"):find("schema", 1, true))
    p:close()
  end)

  -- a copy cut short (here by a file-size limit; a full disk, a kill alike) was left as the
  -- kept file, said kept, and was no database
  it("is said not kept when its copy could not be finished, and leaves no part of it", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir)).status)
    local path = dir .. "/.orket/orket.db"
    os.remove(path)
    local old = assert(store.open(path, { upto = 25 }))
    assert(old:exec("CREATE TABLE pad (x BLOB)"))
    for _ = 1, 40 do assert(old:exec("INSERT INTO pad VALUES (randomblob(65536))")) end
    old:close()
    -- (dash's ulimit -f counts 512-byte blocks: 1 MiB, where the copy needs more than 2)
    local r = H.orket("status", { cwd = dir, wrap = "sh -c 'ulimit -f 2048 && exec \"$0\" \"$@\"'" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("orket: upgraded the store .orket/orket.db from schema version 25 to " .. store.latest_version
      .. ": an older orket cannot open it now; no copy of it as it was could be kept (", r.stderr, 1, true)
    local p = io.popen("ls -a " .. H.quote(dir .. "/.orket"))
    local listed = p:read("a")
    p:close()
    assert.is_nil(listed:find("schema", 1, true), listed)
  end)
end)
