-- A lock another connection held past the busy timeout (SQLite's EBUSY) is a failure of the
-- one write that met it, not of the file: a run ends for it only when one of its own tasks
-- met it. Before, the store noted it for the whole process and every run of the process
-- (orket serve's) stopped, journal_error, for an API request's write that met a command's
-- lock, though none of the run's own writes failed (docs/store.md, Failures).
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local store = require "orket.store"
local cstore = require "orket.c.store"
local backends = require "tests.backends"
local task = require "orket.task"

local SQLITE_ONLY = "SQLite only: its write lock and busy timeout (PostgreSQL notes no lock wait as a failure)"

-- Another process that holds path's write lock from when dir/locked appears until
-- dir/release does (a minute at most), then commits and ends. -> pid, release().
local function hold_elsewhere(path, dir)
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

local function gone(pid)
  H.wait_for(function() return not H.alive(pid) end, "the other process to end", 6000)
end

describe("a run of a process whose other task meets the store's lock (EBUSY)", function()
  after_each(H.cleanup)

  it("goes on and finishes its cards: the lock was the other task's, its own writes waited", function()
    if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
    local dir = H.tmpdir()
    local path = dir .. "/o.db"
    local db, b = F.fixture(path, { { id = "E-1", summary = "design" }, { id = "E-2", summary = "document" } })
    local client = F.llm(b, {})
    local inner, met, pid, other = client.chat, nil, nil, nil
    finally(function()
      if pid and H.alive(pid) then os.execute("kill -9 " .. pid) end
    end)
    function client:chat(req)
      if not other then
        met = {}
        -- a task of the process that is not the run's (an API request's): its write, on a
        -- connection of its own with a short busy timeout, meets another process's lock
        other = task.spawn(function()
          local conn = assert(store.open(path)) -- (opened before the lock: the write is what meets it)
          local release
          pid, release = hold_elsewhere(path, dir)
          assert(conn:exec("PRAGMA busy_timeout = 50"))
          met.ok, met.err, met.code = conn:tx(function() return conn:event { kind = "foreign" } end)
          conn:close()
          release()
          gone(pid)
        end)
      end
      -- every call of the run waits until the other process is gone: none of the run's own
      -- writes may meet its lock (that is the next test's case). A second card's turn asked
      -- its model while the first waited here, and its step's write met the lock.
      assert(other:join())
      return inner(self, req)
    end
    local e, events = F.engine(db, b, { llm = client, concurrency = 1 })
    local id = assert(e:start("E"))
    local status = e:execute(id)
    assert.is_truthy(met, "the model was not asked")
    assert.is_nil(met.ok)
    assert.equal("EBUSY", met.code, met.err)
    for _, ev in ipairs(events) do assert.is_not.equal("journal_error", ev.type, ev.error) end
    assert.equal("done", status)
    assert.equal("done", b:get("E-1").status)
    assert.equal("done", b:get("E-2").status)
    -- the note stays for the process's others (a command's report, another run's task)
    local msg, code = db:journal_error()
    assert.equal("EBUSY", code, msg)
    db:close()
  end)

  it("still stops, journal_error, when its own write meets the lock; resumable", function()
    if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
    local dir = H.tmpdir()
    local path = dir .. "/o.db"
    local db, b = F.fixture(path, { { id = "E-1", summary = "design" } })
    local client = F.llm(b, {})
    local inner, pid, release = client.chat, nil, nil
    finally(function()
      if pid and H.alive(pid) then os.execute("kill -9 " .. pid) end
    end)
    function client:chat(req)
      -- the run's own connection, with a short busy timeout, writes the answer's step
      -- while another process holds the lock
      if not pid then
        pid, release = hold_elsewhere(path, dir)
        assert(db:exec("PRAGMA busy_timeout = 50"))
      end
      return inner(self, req)
    end
    -- the lock goes once the run has met it; the run's last writes wait for it as usual
    local events = setmetatable({}, { __newindex = function(t, k, ev)
      rawset(t, k, ev)
      if ev.type == "journal_error" and release then
        release()
        release = nil
        assert(db:exec("PRAGMA busy_timeout = " .. cstore.BUSY_TIMEOUT_MS))
      end
    end })
    local e = F.engine(db, b, { llm = client, events = events })
    local id = assert(e:start("E"))
    local status = e:execute(id)
    assert.is_truthy(pid, "the model was not asked")
    if release then release() end
    gone(pid)
    assert.equal("failed", status)
    local broke
    for _, ev in ipairs(events) do
      if ev.type == "journal_error" then broke = ev end
    end
    assert.is_truthy(broke, "no journal_error")
    assert.matches("database is locked", tostring(broke.error), 1, true)
    assert.equal("EBUSY", select(2, db:journal_error()))
    -- nothing of the file was lost: a resume finishes the card
    local e2 = F.engine(db, b, {})
    assert.equal("done", e2:execute(id))
    assert.equal("done", b:get("E-1").status)
    db:close()
  end)
end)

describe("cstore.file_error(owned)", function()
  after_each(function()
    cstore.clear_file_error()
    H.cleanup()
  end)

  -- a write that meets a lock this process's other connection holds fails at once outside
  -- a task (EBUSY): in a coroutine of its own, that coroutine is the thread that met it
  local function busy_in(db)
    local co = coroutine.create(function() return db:tx(function() return true end) end)
    local _, ok, err, code = assert(coroutine.resume(co))
    assert.is_nil(ok)
    assert.equal("EBUSY", code, err)
    return co, err
  end

  it("answers a lock only to the set that holds the thread that met it; the last failure to anyone", function()
    if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
    local path = H.tmpdir() .. "/o.db"
    local holder = assert(store.open(path))
    local db = assert(store.open(path))
    cstore.clear_file_error()
    assert(holder:exec("BEGIN IMMEDIATE"))
    local co, err = busy_in(db)
    assert(holder:exec("COMMIT"))
    assert.same({ err, "EBUSY" }, { cstore.file_error() })
    assert.is_nil(cstore.file_error({}))
    assert.is_nil(cstore.file_error({ [coroutine.running()] = true }))
    assert.same({ err, "EBUSY", co }, { cstore.file_error({ [co] = true }) })
    cstore.clear_file_error()
    assert.is_nil(cstore.file_error({ [co] = true }))
    assert.is_nil(cstore.file_error())
    holder:close()
    db:close()
  end)

  it("answers a failure of the file itself to any set, a later lock met elsewhere not hiding it", function()
    if backends.name() ~= "sqlite" then return pending(SQLITE_ONLY) end
    local dir = H.tmpdir()
    local ro = assert(store.open(dir .. "/r.db"))
    assert(ro:exec("CREATE TABLE t (a)"))
    assert(ro:exec("PRAGMA query_only = 1"))
    local holder = assert(store.open(dir .. "/o.db"))
    local db = assert(store.open(dir .. "/o.db"))
    cstore.clear_file_error()
    local _, rerr, rcode = ro:run("INSERT INTO t VALUES (1)")
    assert.equal("EREADONLY", rcode)
    assert(holder:exec("BEGIN IMMEDIATE"))
    local _, err = busy_in(db)
    assert(holder:exec("COMMIT"))
    assert.same({ err, "EBUSY" }, { cstore.file_error() }) -- the last, for the command line
    assert.same({ rerr, "EREADONLY" }, { cstore.file_error({}) })
    ro:close()
    holder:close()
    db:close()
  end)
end)
