-- orket runs stop and orket worker's stop, as an operator meets them: a run held by a worker
-- that was killed, and the events of a worker stopped mid-run. On PostgreSQL
-- (tests/with_pg.lua) the project names a fresh database of the test server.
local H = require "tests.helpers"
local backends = require "tests.backends"
local project_mod = require "orket.project"

local starter = backends.starter

describe("orket runs stop", function()
  after_each(H.cleanup)

  -- A worker killed with SIGKILL leaves its lease live until it ends: the refusal told the
  -- operator to stop that worker (it no longer existed) and not that the refusal ends by
  -- itself once the lease does.
  it("says, when a worker holds the run, that a dead one holds it until its lease ends, and when", function()
    local dir = starter()
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "START", kind = "epic", data = { workers = true } })
    local ops = require("orket.engine.lease").ops(db)
    assert(db:tx(function()
      return #ops.claim(db, { worker = "gone#0123456789abcdef", run = id, ids = { "START-1" }, ttl_ms = 600000 }) == 1
    end))
    local until_ = ops.live(db, id)[1].expires_at
    db:close()
    local r = H.orket("runs stop " .. id, { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches("run " .. id .. " is worked by worker gone now (card START-1)", r.stderr, 1, true)
    assert.matches("a worker that died (SIGKILL, its machine lost) holds its cards until its lease ends, by "
      .. until_ .. ": then stop the run again", r.stderr, 1, true)
    -- one worker stopped hands its cards to the others (another server's too): said
    assert.matches("while other workers of the store are up (another server's --workers too), they take its cards "
      .. "up: stop them all first", r.stderr, 1, true)
  end)
end)

describe("orket worker stopped by SIGTERM", function()
  after_each(H.cleanup)

  -- The run_end a stopping worker printed said "interrupted" and nothing more, though the
  -- run stays running in the store for the other workers: read as the run's end.
  it("says in the run's run_end that the run is left running for the workers, and leaves it so", function()
    local dir = starter()
    -- the coder's answer waits long: the stop lands mid-turn
    H.write(dir .. "/script.lua", (H.read(dir .. "/script.lua"):gsub('match = "%^Issue ", reply = {',
      'match = "^Issue ", reply = { delay_ms = 600000,', 1)))
    local p = io.popen(string.format("cd %s && exec %s worker --start START --name w --lease-ms 60000 >w.out 2>w.err & echo $!",
      H.quote(dir), H.quote(H.BIN)))
    local pid = tonumber(p:read("l"))
    p:close()
    finally(function() os.execute("kill -KILL " .. pid .. " 2>/dev/null") end)
    H.wait_for(function() return (H.read(dir .. "/w.out") or ""):find('"turn_start"', 1, true) end, "a turn", 6000)
    os.execute("kill -TERM " .. pid)
    H.wait_for(function() return not H.alive(pid) end, "the worker's exit", 6000)
    local ends = {}
    for line in (H.read(dir .. "/w.out") or ""):gmatch("[^\n]+") do
      local ev = require("cjson").decode(line)
      if ev.type == "run_end" then ends[#ends + 1] = ev end
    end
    assert.equal(1, #ends, H.read(dir .. "/w.out"))
    assert.equal("interrupted", ends[1].status)
    assert.equal("the worker stopped; the run is left running for the workers", ends[1].reason)
    local db = assert(project_mod.open_store(dir, false))
    assert.equal("running", require("orket.store.runs").get(db, ends[1].run_id).status)
    assert.equal(0, #require("orket.engine.lease").ops(db).live(db)) -- its leases released
    db:close()
  end)
end)

describe("orket worker stopped by SIGTERMs", function()
  after_each(H.cleanup)

  -- It closed its signals' handles itself once stopped, which gave SIGTERM its default
  -- action back while it still closed its store: a late SIGTERM ended it with 143.
  it("ends with 0 however many come while it stops", function()
    for _ = 1, 4 do
      local dir = starter()
      os.execute(string.format("cd %s && { %s worker --name w >w.out 2>w.err & echo $! >pid; wait $!; echo $? >rc; } "
        .. ">/dev/null 2>&1 &", H.quote(dir), H.quote(H.BIN)))
      local pid = tonumber(H.wait_for(function() return (H.read(dir .. "/pid") or ""):match("^%d+") end, "its pid"))
      finally(function() os.execute("kill -KILL " .. pid .. " 2>/dev/null") end)
      H.wait_for(function() return (H.read(dir .. "/w.out") or ""):find('"worker_start"', 1, true) end,
        "the worker's start", 6000)
      -- SIGTERM after SIGTERM, as fast as the shell sends them, until it is gone
      os.execute(string.format("while kill -TERM %d 2>/dev/null; do :; done", pid))
      local rc = H.wait_for(function() return (H.read(dir .. "/rc") or ""):match("^%d+") end, "the worker's end")
      assert.equal("0", rc, H.read(dir .. "/w.err"))
    end
  end)
end)

describe("orket worker whose SQLite store is removed", function()
  after_each(H.cleanup)

  -- The worker went on in the file it had open, idle for ever (runs left to the workers in
  -- a new store never joined), and said nothing.
  it("stops, saying so, when .orket/orket.db is moved away while it waits", function()
    if backends.name() == "pg" then
      pending("a PostgreSQL store has no file to remove")
      return
    end
    local dir = starter()
    local p = io.popen(string.format("cd %s && { %s worker --lease-ms 3000 >w.out 2>w.err; echo $? >w.rc; } "
      .. ">/dev/null 2>&1 & echo $!", H.quote(dir), H.quote(H.BIN)))
    local pid = tonumber(p:read("l"))
    p:close()
    -- (the subshell, and the worker, named by its default name HOST:PID once it has started;
    -- neither once the subshell has written the worker's status)
    finally(function()
      if H.read(dir .. "/w.rc") then return end
      local w = (H.read(dir .. "/w.out") or ""):match('"worker":"[^"]*:(%d+)"')
      os.execute("kill -KILL " .. pid .. (w and (" " .. w) or "") .. " 2>/dev/null")
    end)
    H.wait_for(function() return (H.read(dir .. "/w.out") or ""):find('"worker_start"', 1, true) end, "the worker", 6000)
    assert(os.rename(dir .. "/.orket", dir .. "/.orket.old"))
    local rc = H.wait_for(function() return (H.read(dir .. "/w.rc") or ""):match("^(%d+)") end, "the worker's exit", 6000)
    assert.equal("1", rc)
    assert.matches("the store .orket/orket.db was removed while the worker ran", H.read(dir .. "/w.err"), 1, true)
    assert.matches("start the worker again", H.read(dir .. "/w.err"), 1, true)
  end)
end)

describe("orket worker whose reader goes away", function()
  after_each(H.cleanup)

  -- `orket worker | head` killed it by SIGPIPE mid-turn: the run stayed held by its lease,
  -- every other worker kept off its cards until the lease ran out
  it("stops as on SIGINT, its leases given back, and ends quietly", function()
    local dir = starter()
    -- the coder's answer waits: the reader goes while a turn is out
    H.write(dir .. "/script.lua", (H.read(dir .. "/script.lua"):gsub('match = "%^Issue ", reply = {',
      'match = "^Issue ", reply = { delay_ms = 1500,', 1)))
    os.execute(string.format("cd %s && { %s worker --start START --name w --lease-ms 600000 2>w.err; echo $? >rc; } "
      .. "| head -2 >w.out", H.quote(dir), H.quote(H.BIN)))
    local rc = H.wait_for(function() return (H.read(dir .. "/rc") or ""):match("%d+") end, "the worker's end", 6000)
    assert.equal("0", rc, H.read(dir .. "/w.err"))
    local db = assert(project_mod.open_store(dir, false))
    assert.equal(0, #require("orket.engine.lease").ops(db).live(db)) -- its leases released
    db:close()
  end)
end)
