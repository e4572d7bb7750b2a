-- A lock another connection held past the busy timeout (SQLite's EBUSY) is the failure of
-- the one write that met it: a worker stops its runs and waits for the store only for one
-- its own runs or its loop met, as a run ends only for one its own tasks met
-- (run_busy_others_spec). Before, the worker asked db:journal_error() with no owned set:
-- a lock another task of its process met (the lease keeper's renewal) stopped every run
-- and kept it waiting (store_lost), and a run's bug raised meanwhile was taken for the
-- store's loss and never stopped the worker (docs/store.md, Failures; docs/workers.md).
local H = require "tests.helpers"
local store = require "orket.store"
local cstore = require "orket.c.store"
local backends = require "tests.backends"
local task = require "orket.task"
local runset = require "orket.engine.runset"
local worker = require "orket.cmd.worker"

local SQLITE_ONLY = "SQLite only: its write lock and busy timeout (PostgreSQL notes no lock wait as a failure)"

-- Another process that holds path's write lock from when DIR/locked appears until
-- DIR/release does (a minute at most; DIR a fresh folder), then commits and ends.
-- -> pid, release().
local function hold_elsewhere(path)
  local dir = H.tmpdir()
  local script = string.format("local db = assert(require('orket.store').open(%q)); "
    .. "assert(db:exec('BEGIN IMMEDIATE')); io.open(%q, 'w'):close(); "
    .. "for _ = 1, 3000 do local f = io.open(%q); if f then f:close(); break end; orket.sleep(20) end; "
    .. "assert(db:exec('COMMIT')); db:close()",
    path, dir .. "/locked", dir .. "/release")
  os.execute(string.format("%s lua -e %s >/dev/null 2>&1 & echo $! >%s", H.quote(H.BIN), H.quote(script),
    H.quote(dir .. "/pid")))
  local pid = assert(tonumber(H.read(dir .. "/pid"):match("%d+")))
  -- the process starts slowly under the sanitizers: a minute's asks
  H.wait_for(function() return H.read(dir .. "/locked") end, "the other process to hold the lock", 6000)
  return pid, function() io.open(dir .. "/release", "w"):close() end
end

-- A write on a connection of its own, with a short busy timeout, in the running task, while
-- another process holds the lock -> its failure (nil, message, CODE)
local function busy_write(path)
  local conn = assert(store.open(path)) -- (opened before the lock: the write is what meets it)
  local pid, release = hold_elsewhere(path)
  assert(conn:exec("PRAGMA busy_timeout = 50"))
  local ok, err, code = conn:tx(function() return conn:event { kind = "foreign" } end)
  conn:close()
  release()
  H.wait_for(function() return not H.alive(pid) end, "the other process to end", 6000)
  return ok, err, code
end

-- a worker's set over db whose one run's execute is fn (an engine faked here)
local function set_of(db, fn)
  local set = runset.new { db = db, join = function() return true end, leave = function() end,
    open = function() return { dir = H.tmpdir(), execute = fn, stop = function() end, close_all = function() end } end }
  assert.is_true(set:start { id = 1 })
  set:wait_all()
  return set
end

describe("a worker's runs and a lock met by another task of its process (EBUSY)", function()
  after_each(function()
    cstore.clear_file_error()
    H.cleanup()
  end)

  it("takes a run's error for Orket's own, stopping the worker, though another task met the lock", function()
    if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
    local dir = H.tmpdir()
    local path = dir .. "/o.db"
    local db = assert(store.open(path))
    cstore.clear_file_error()
    local met = {}
    local set = set_of(db, function()
      -- a task that is not the run's (a lease renewal's) meets the lock; then the run raises
      local other = task.spawn(function() met.ok, met.err, met.code = busy_write(path) end)
      assert(other:join())
      error("a bug in the run")
    end)
    assert.is_nil(met.ok)
    assert.equal("EBUSY", met.code, met.err)
    assert.matches("a bug in the run", tostring(set.failed), 1, true)
    assert.is_nil(set:store_failure())
    -- the note stays for the process's others
    assert.equal("EBUSY", select(2, db:journal_error()))
    db:close()
  end)

  it("takes a run's error for the store's loss when the run's own loop met the lock", function()
    if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
    local dir = H.tmpdir()
    local path = dir .. "/o.db"
    local db = assert(store.open(path))
    cstore.clear_file_error()
    local set = set_of(db, function()
      local _, err, code = busy_write(path)
      assert.equal("EBUSY", code, err)
      error(err)
    end)
    assert.is_nil(set.failed)
    assert.matches("database is locked", tostring(set:store_failure()), 1, true)
    -- the worker's loop sees it, and, once it cleared the store's note, forgets it
    assert.matches("database is locked", tostring(worker.store_gone(db, set, {})), 1, true)
    db:clear_journal_error()
    set:forget_failure()
    assert.is_nil(worker.store_gone(db, set, {}))
    db:close()
  end)

  it("keeps the store's loss a run ended for (its report's store_lost) until the worker forgets it", function()
    local db = { journal_error = function() return nil end }
    local set = set_of(db, function() return "failed", { store_lost = "o.db: database is locked" } end)
    assert.is_nil(set.failed)
    assert.equal("o.db: database is locked", set:store_failure())
    assert.equal("o.db: database is locked", worker.store_gone(db, set, {}))
    set:forget_failure()
    assert.is_nil(set:store_failure())
  end)

  it("stops the worker's loop for a lock its own task met, or a file's failure, not another task's", function()
    if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
    local dir = H.tmpdir()
    local path = dir .. "/o.db"
    local db = assert(store.open(path))
    cstore.clear_file_error()
    local set = runset.new { db = db, join = function() return true end, leave = function() end,
      open = function() error("not reached") end }
    local own = { [coroutine.running()] = true }
    -- another task's write meets the lock: the loop goes on
    local other = task.spawn(function() return busy_write(path) end)
    local _, ok, err, code = other:join()
    assert.is_nil(ok)
    assert.equal("EBUSY", code, err)
    assert.equal("EBUSY", select(2, db:journal_error()))
    assert.is_nil(worker.store_gone(db, set, own))
    -- the loop's own write meets it: it stops and waits
    local _, err2, code2 = busy_write(path)
    assert.equal("EBUSY", code2, err2)
    assert.equal(err2, worker.store_gone(db, set, own))
    db:clear_journal_error()
    -- a failure of the file itself, whoever met it
    local ro = assert(store.open(dir .. "/r.db"))
    assert(ro:exec("CREATE TABLE t (a)"))
    assert(ro:exec("PRAGMA query_only = 1"))
    local rerr
    task.spawn(function() _, rerr = ro:run("INSERT INTO t VALUES (1)") end):join()
    assert.equal(rerr, (worker.store_gone(db, set, own)))
    ro:close()
    db:close()
  end)
end)
