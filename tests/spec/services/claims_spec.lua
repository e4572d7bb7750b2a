-- orket.engine.claims: which runs are live (their locks, taken here by this process: OFD
-- locks conflict between descriptions even in one process), whether targets overlap, the
-- refusal an overlapping run gets, and run lock files a killed server left.
local claims = require "orket.engine.claims"
local lockfile = require "orket.c.lockfile"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

-- A project folder with a store: epic E (E-1, E-2) and a second epic F (F-1).
local function project()
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
  local db, b = F.fixture(dir .. "/.orket/orket.db", { { id = "E-1", summary = "one" }, { id = "E-2", summary = "two" } })
  assert(db:tx(function()
    require("orket.store.imports").insert_card(db, { id = "F", type = "epic", name = "F", priority = 2 })
    return true
  end))
  assert(b:create { parent = "F", id = "F-1", summary = "three", seat = "senior_developer" })
  return dir, db, b
end

local function record(db, target, kind) return assert(db:record_run { target = target, kind = kind }) end

describe("claims", function()
  after_each(H.cleanup)

  -- 'orket resume' without -C DIR, typed where the person was, resumed nothing (or another project)
  it("refuses a second run lock naming the folder in the resume command it suggests", function()
    local dir = project()
    local setup = require "orket.engine.setup"
    local held = assert(setup.lock(dir))
    local lk, err, code = setup.lock(dir)
    assert.is_nil(lk)
    assert.equal("ELOCKED", code)
    assert.matches("continue with 'orket resume -C " .. require("orket.inert").shell_word(dir) .. "'", err, 1, true)
    held:release()
    assert(setup.lock(dir)):release()
  end)

  it("lets a worker join a run, and leaves the claim section when the store fails while it asks", function()
    local dir, db = project()
    local id = record(db, "E", "epic")
    local b = require("orket.board").open(db)
    local hold = assert(claims.join_worker(dir, db, b, { id = id, target = "E" }))
    claims.release_worker(hold)
    -- the store gone: the question raises, and the claim section is free at once for the
    -- next worker (before, its lock stayed until garbage collection)
    local gone = setmetatable({ backend = db.backend }, { __index = function()
      return function() error("pg: server closed the connection unexpectedly", 0) end
    end })
    -- (no garbage collection meanwhile: a lock left to it would be freed at random)
    collectgarbage("stop")
    local ok, err = pcall(claims.join_worker, dir, gone, b, { id = id, target = "E" })
    local free, claim = pcall(claims.enter, dir, function() error("the claim section is still held", 0) end)
    collectgarbage("restart")
    assert.is_false(ok)
    assert.matches("server closed", err)
    assert.is_true(free, tostring(claim))
    claim:release()
    db:close()
  end)

  it("leaves the claim section when the store fails while a server starts or resumes a run", function()
    -- a copy of the notes example, imported: an engine opens on it
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
    local project = require "orket.project"
    local db = assert(project.open_store(dir, true))
    assert(require("orket.import").import(db, dir))
    local executor = require "orket.engine.executor"
    local conflict = claims.conflict
    claims.conflict = function() error("pg: server closed the connection unexpectedly", 0) end
    -- (no garbage collection meanwhile: a lock left to it would be freed at random)
    collectgarbage("stop")
    local ok, err = pcall(executor.start, { dir = dir, db = db, target = "NOTES" })
    local free, claim = pcall(claims.enter, dir, function() error("the claim section is still held", 0) end)
    if free then claim:release() end
    local rok, rerr = pcall(executor.resume, { dir = dir, db = db, row = { id = 1, target = "NOTES", status = "killed" } })
    local rfree, rclaim = pcall(claims.enter, dir, function() error("the claim section is still held", 0) end)
    if rfree then rclaim:release() end
    collectgarbage("restart")
    claims.conflict = conflict
    db:close()
    assert.is_false(ok)
    assert.matches("server closed", err)
    assert.is_true(free, tostring(claim))
    assert.is_false(rok)
    assert.matches("server closed", rerr)
    assert.is_true(rfree, tostring(rclaim))
  end)

  it("answers a start or resume whose claim section another process holds as passing (503 starting, Retry-After), "
    .. "over HTTP and MCP, not as an overlap", function()
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
    require("tests.backends").project(dir)
    local db = assert(require("orket.project").open_store(dir, true))
    assert(require("orket.import").import(db, dir))
    local id = record(db, "NOTES", "epic")
    local r = require("orket.serve.router").new()
    require("orket.serve.runs").add(r)
    local route = {}
    for _, x in ipairs(r.routes) do route[x.name or ""] = x end
    local mcp = require("orket.serve.mcp_server").new { db = db, dir = dir }
    local start_run
    for _, d in ipairs(mcp.tools) do if d.t.name == "start_run" then start_run = d end end
    -- another process stuck in its start (this one, here: the section's lock is per description)
    local held = assert(claims.enter(dir))
    local old = claims.WAIT_MS
    claims.WAIT_MS = 20
    local function ctx(o)
      o.db, o.dir, o.headers, o.params, o.query = db, dir, {}, o.params or {}, {}
      return o
    end
    local sctx, rctx = ctx { body = { target = "NOTES" } }, ctx { params = { id = tostring(id) } }
    local ok, sst, sdoc = pcall(route.run_start.handler, nil, sctx)
    local rok, rst, rdoc = pcall(route.run_resume.handler, nil, rctx)
    local mok, res = pcall(mcp.call_tool, mcp, start_run, { target = "NOTES" })
    claims.WAIT_MS = old
    held:release()
    assert(ok, sst)
    assert(rok, rst)
    assert(mok, res)
    local pid = string.format("(process %d)", require("luv").os_getpid())
    for _, a in ipairs { { sst, sdoc, sctx }, { rst, rdoc, rctx } } do
      local st, doc, c = a[1], a[2], a[3]
      assert.equal(503, st)
      assert.equal("starting", doc.error.code)
      assert.matches("another process is starting a run", doc.error.message)
      assert.matches(pid, doc.error.message, 1, true)
      assert.same({ "Retry-After: 1" }, c.headers)
    end
    assert.is_true(res.isError)
    assert.same({ "starting", 503 }, { res.structuredContent.error.code, res.structuredContent.error.status })
    assert.matches("^starting: another process is starting a run", res.content[1].text)
    -- nothing was started, nor left held
    assert.equal(1, db:row("SELECT count(*) AS n FROM runs").n)
    assert(claims.enter(dir)):release()
    db:close()
  end)

  -- A run of another folder, known only by its run lease, was named "process OWNER", as if a
  -- pid of this machine, then "a server" (the lease does not say which kind of process holds
  -- it: an orket run of another folder too): the refusal says where it is known from.
  it("names a run's holder known only by its run lease in the store by its owner, as another folder's", function()
    local dir, db, b = project()
    local leases = require "orket.store.leases"
    local id = record(db, "E", "epic")
    local far = "another-host.example/4242/00ff"
    assert(db:tx(function() return leases.run_take(db, id, far, 60000) == nil end))
    local other, why = claims.conflict(dir, db, b, "E")
    assert.equal(id, other.id)
    assert.matches("is working on the same target now (process another-host.example/4242/00ff, known from its run "
      .. "lease in the store: another folder's run); ", why, 1, true)
  end)

  -- a command changing cards (cancel, retry, the API's moves) took only this folder's run
  -- lock: a run of another folder of the same store went on while its cards were moved
  it("refuses a command changing cards while a run of another folder of the store goes", function()
    local dir, db = project()
    local setup = require "orket.engine.setup"
    local leases = require "orket.store.leases"
    local id = record(db, "E", "epic")
    assert(setup.lock(dir, { db = db })):release() -- no run: taken
    local far = "another-host.example/4242/00ff"
    assert(db:tx(function() return leases.run_take(db, id, far, 60000) == nil end))
    local lk, err, code = setup.lock(dir, { db = db })
    assert.is_nil(lk)
    assert.equal("ELOCKED", code)
    assert.matches("run " .. id .. " is going in process another-host.example/4242/00ff, in another folder of this "
      .. "project's store", err, 1, true)
    -- the run's own lock (runs_ok) and a reader without the store are as before
    assert(setup.lock(dir, { db = db, runs_ok = true })):release()
    assert(setup.lock(dir)):release()
    assert(db:tx(function() leases.run_drop(db, id, far) return true end))
    assert(setup.lock(dir, { db = db })):release()
    db:close()
  end)

  it("sees a run leased in the store by a process elsewhere (another host, another pid namespace) as live, and one of this pid namespace whose process is gone as not", function()
    local dir, db, b = project()
    local runlease = require "orket.engine.runlease"
    local leases = require "orket.store.leases"
    local id = record(db, "E", "epic")
    local far = "another-host.example/4242/00ff"
    assert(db:tx(function() return leases.run_take(db, id, far, 60000) == nil end))
    assert.equal(far, runlease.holders(db)[id])
    assert.equal(far, claims.is_live(dir, id, db))
    assert.equal("running", claims.state(dir, db, "running", id))
    local other, why = claims.conflict(dir, db, b, "E-1")
    assert.equal(id, other.id)
    assert.matches("process another%-host%.example/4242/00ff", why)
    assert.equal(far, runlease.take(db, id)) -- refused: its owner's lease is live
    -- one of this host's name but another pid namespace (a container sharing the host's
    -- name) or another boot is never judged dead by its pid: its lease is live until it lapses
    local luv = require "luv"
    assert.is_string(runlease.place, "this process's boot id and pid namespace are read")
    local boot, ns = runlease.place:match("^(.*)%.(%d+)$")
    for _, where in ipairs { boot .. "." .. (ns + 1), "0-0." .. ns, "-" } do
      local other_ns = string.format("%s/%s/%d/00ff", luv.os_gethostname(), where, 2 ^ 22 + 7)
      assert(db:tx(function()
        leases.run_drop(db, id, far)
        return leases.run_take(db, id, other_ns, 60000, far) == nil
      end))
      assert.is_false(runlease.dead(other_ns))
      assert.equal(other_ns, runlease.holders(db)[id])
      assert.equal(other_ns, runlease.take(db, id))
      far = other_ns
    end
    -- an owner of this boot and pid namespace whose pid is gone is dead at once, its lease
    -- taken over
    local dead = string.format("%s/%s/%d/00ff", luv.os_gethostname(), runlease.place, 2 ^ 22 + 7)
    assert(db:tx(function()
      leases.run_drop(db, id, far)
      return leases.run_take(db, id, dead, 60000) == nil
    end))
    assert.is_nil(runlease.holders(db)[id])
    assert.equal("killed", claims.state(dir, db, "running", id))
    assert.is_nil(runlease.take(db, id))
    assert.equal(runlease.owner(), runlease.holders(db)[id])
    runlease.drop(db, id)
    assert.is_nil(runlease.holders(db)[id])
    db:close()
  end)

  -- A server killed under a PID 1 that reaps late or never (a container's without an init)
  -- stays a zombie in /proc: it was taken for alive until its lease lapsed.
  it("sees a run leased by a process of this pid namespace that exited and was not reaped yet as not live", function()
    local dir, db = project()
    local runlease = require "orket.engine.runlease"
    local leases = require "orket.store.leases"
    local luv = require "luv"
    local id = record(db, "E", "epic")
    -- a child that exits, and a parent that never waits for it (sleep, exec'd before the
    -- child ends: a shell still running could reap it)
    local tmp = H.tmpdir()
    os.execute(string.format("sh -c 'sleep 1 & echo $! >%s/z; echo $$ >%s/p; exec sleep 30' >/dev/null 2>&1 &",
      H.quote(tmp), H.quote(tmp)))
    local parent = H.wait_for(function() return tonumber((H.read(tmp .. "/p") or ""):match("%d+")) end, "the parent's pid")
    finally(function() os.execute("kill " .. parent) end)
    local zombie = H.wait_for(function() return tonumber((H.read(tmp .. "/z") or ""):match("%d+")) end, "the child's pid")
    H.wait_for(function() return ((H.read("/proc/" .. zombie .. "/stat") or ""):match(".*%) (%S)")) == "Z" end,
      "the child to be a zombie")
    local owner = string.format("%s/%s/%d/00ff", luv.os_gethostname(), runlease.place, zombie)
    assert(db:tx(function() return leases.run_take(db, id, owner, 60000) == nil end))
    assert.is_true(runlease.dead(owner))
    assert.equal("killed", claims.state(dir, db, "running", id))
    assert.is_nil(runlease.take(db, id))
    runlease.drop(db, id)
    -- a live process of this namespace (the parent) is not dead
    assert.is_false(runlease.dead(string.format("%s/%s/%d/00ff", luv.os_gethostname(), runlease.place, parent)))
    db:close()
  end)

  -- A server killed (SIGKILL) whose pid another process took before the sweep looked was
  -- taken for alive by its pid alone: its run kept from a resume until the lease lapsed.
  -- The owner names the process's start time too (/proc/PID/stat's starttime).
  it("sees a run leased by a process whose pid another process took since (its start time differs) as not live", function()
    local dir, db = project()
    local runlease = require "orket.engine.runlease"
    local leases = require "orket.store.leases"
    local luv = require "luv"
    local id = record(db, "E", "epic")
    -- this process's owner names its start time, as its /proc/PID/stat gives it
    local me = assert((H.read("/proc/self/stat") or ""):match(".*%) %S" .. string.rep(" %S+", 18) .. " (%d+)"))
    assert.equal(string.format("/%d.%s/", luv.os_getpid(), me), runlease.owner():match("/%d+%.%d+/"))
    assert.is_false(runlease.dead(runlease.owner()))
    local tmp = H.tmpdir()
    os.execute(string.format("sh -c 'echo $$ >%s/p; exec sleep 30' >/dev/null 2>&1 &", H.quote(tmp)))
    local live = H.wait_for(function() return tonumber((H.read(tmp .. "/p") or ""):match("%d+")) end, "the pid")
    finally(function() os.execute("kill " .. live) end)
    local start = H.wait_for(function()
      return (H.read("/proc/" .. live .. "/stat") or ""):match(".*%) %S" .. string.rep(" %S+", 18) .. " (%d+)")
    end, "its start time")
    local function owner(pid, st) return string.format("%s/%s/%d.%s/00ff", luv.os_gethostname(), runlease.place, pid, st) end
    -- the process that holds the pid now started at another time than the lease's owner
    local gone = owner(live, tostring(math.tointeger(start) - 1))
    assert(db:tx(function() return leases.run_take(db, id, gone, 60000) == nil end))
    assert.is_true(runlease.dead(gone))
    assert.is_nil(runlease.holders(db)[id])
    assert.equal("killed", claims.state(dir, db, "running", id))
    assert.is_nil(runlease.take(db, id)) -- taken over at once
    assert.equal(runlease.owner(), runlease.holders(db)[id])
    -- this process's pid with another start time is not this process
    assert.is_true(runlease.dead(owner(luv.os_getpid(), tostring(math.tointeger(me) + 1))))
    runlease.drop(db, id)
    -- the live process with its own start time is alive, and so is an owner named without
    -- one (an older orket's), known by its pid alone
    assert.is_false(runlease.dead(owner(live, start)))
    assert.is_false(runlease.dead(string.format("%s/%s/%d/00ff", luv.os_gethostname(), runlease.place, live)))
    db:close()
  end)

  -- /proc/PID/stat's start time is shifted by the reader's time namespace: a process of
  -- another one read another start time for a live owner of this pid namespace, and took
  -- its run. The place names the time namespace, so such an owner is never judged by it.
  it("names the time namespace in a run lease owner's place, where the kernel has one", function()
    local luv = require "luv"
    local runlease = require "orket.engine.runlease"
    local t = luv.fs_readlink("/proc/self/ns/time")
    if not t then
      pending("skipped: this kernel has no time namespaces")
      return
    end
    local ns = assert(t:match("^time:%[(%d+)%]$"))
    assert.equal("." .. ns, runlease.place:sub(-#ns - 1))
    -- this process, as read from another time namespace (another start time): not dead
    local other = runlease.place:sub(1, -#ns - 1) .. tostring(math.tointeger(ns) + 1)
    assert.is_false(runlease.dead(string.format("%s/%s/%d.1/00ff", luv.os_gethostname(), other, luv.os_getpid())))
  end)

  -- /proc mounted hidepid=1 shows another user's /proc/PID but refuses its files (EACCES);
  -- hidepid=2 hides it (ENOENT) while kill(pid, 0) still says EPERM: either was taken for
  -- a process gone, and its live run taken over and worked twice.
  it("never takes a live process whose /proc/PID/stat cannot be read (hidepid) for dead", function()
    local _, db = project()
    local runlease = require "orket.engine.runlease"
    local leases = require "orket.store.leases"
    local luv = require "luv"
    local id = record(db, "E", "epic")
    local tmp = H.tmpdir()
    os.execute(string.format("sh -c 'echo $$ >%s/p; exec sleep 30' >/dev/null 2>&1 &", H.quote(tmp)))
    local live = H.wait_for(function() return tonumber((H.read(tmp .. "/p") or ""):match("%d+")) end, "the pid")
    local owner = string.format("%s/%s/%d/00ff", luv.os_gethostname(), runlease.place, live)
    local stat = "/proc/" .. live .. "/stat"
    local open, kill = io.open, luv.kill
    finally(function()
      io.open, luv.kill = open, kill
      os.execute("kill " .. live)
    end)
    -- hidepid=1: the file is refused
    io.open = function(path, ...)
      if path == stat then return nil, path .. ": Permission denied", 13 end
      return open(path, ...)
    end
    assert.is_false(runlease.dead(owner))
    assert(db:tx(function() return leases.run_take(db, id, owner, 60000) == nil end))
    assert.equal(owner, runlease.take(db, id)) -- its lease is kept, not taken over
    -- hidepid=2 as another user: no such file, but kill(pid, 0) says it exists (EPERM)
    io.open = function(path, ...)
      if path == stat then return nil, path .. ": No such file or directory", 2 end
      return open(path, ...)
    end
    luv.kill = function(pid, sig)
      if pid == live and sig == 0 then return nil, "EPERM: operation not permitted", "EPERM" end
      return kill(pid, sig)
    end
    assert.is_false(runlease.dead(owner))
    io.open, luv.kill = open, kill
    -- a pid that is no process is dead
    assert.is_true(runlease.dead(string.format("%s/%s/%d/00ff", luv.os_gethostname(), runlease.place, 4194303)))
    db:close()
  end)

  it("fences a run's steps by its lease: held, lapsed but nobody's since (renewed), taken by another (refused)", function()
    local _, db = project()
    local runlease = require "orket.engine.runlease"
    local leases = require "orket.store.leases"
    local luv = require "luv"
    local id = record(db, "E", "epic")
    assert.is_nil(runlease.take(db, id))
    local function fenced() return assert(db:tx(function() return { runlease.fence(db, id) } end))[1] end
    assert.is_true(fenced())
    -- lapsed (the store away longer than the lease), the row still ours: nobody took it
    assert(db:tx(function() return leases.run_take(db, id, runlease.owner(), 1) == nil end))
    local t0 = luv.hrtime()
    while luv.hrtime() - t0 < 20e6 do end -- past its millisecond
    assert.is_nil(runlease.holders(db)[id])
    assert.is_true(fenced())
    assert.equal(runlease.owner(), runlease.holders(db)[id]) -- renewed by the fence
    assert(db:tx(function() return leases.run_take(db, id, runlease.owner(), 1) == nil end))
    t0 = luv.hrtime()
    while luv.hrtime() - t0 < 20e6 do end
    assert.is_true(assert(db:tx(function() return leases.run_renew(db, runlease.owner(), 60000, { id }) end))[id])
    -- taken by another process (resumed elsewhere once it lapsed): no step is written here
    local far = "another-host.example/x.1/4242/00ff"
    assert(db:tx(function() return leases.run_take(db, id, far, 60000, runlease.owner()) == nil end))
    assert.is_false(fenced())
    assert.is_nil(assert(db:tx(function() return leases.run_renew(db, runlease.owner(), 60000, { id }) end))[id])
    assert.equal(far, runlease.holders(db)[id])
    db:close()
  end)

  it("resumes a run its server holds already (carried on after its store came back): its own lock and lease not in its way, an overlapping live run is", function()
    local dir, db, b = project()
    local recorded = require "orket.engine.recorded"
    local runlease = require "orket.engine.runlease"
    local leases = require "orket.store.leases"
    local id = record(db, "E", "epic")
    local lk = assert(claims.hold(dir, id))
    assert.is_nil(runlease.take(db, id))
    -- without held, the run's own lock is in its way
    local rid, msg, _, kind = recorded.resume(dir, db, b, id)
    assert.is_nil(rid)
    assert.equal("conflict", kind)
    assert.matches("run " .. id .. " %(E%) is working on the same target", msg)
    assert.equal(id, (recorded.resume(dir, db, b, id, { held = true })))
    -- another server of the store resumed an overlapping run while this one's lease had lapsed
    local other = record(db, "E-2", "issue")
    local far = "another-host.example/4242/00ff"
    assert(db:tx(function() return leases.run_take(db, other, far, 60000) == nil end))
    rid, msg, _, kind = recorded.resume(dir, db, b, id, { held = true })
    assert.is_nil(rid)
    assert.equal("conflict", kind)
    assert.matches("run " .. other .. " %(E%-2%) is working on cards of E now %(process another%-host", msg)
    -- a run taken over by another server is left to it
    assert(db:tx(function() return leases.run_drop(db, other, far) == 1 end))
    assert(db:tx(function() return leases.run_take(db, id, far, 60000, runlease.owner()) == nil end))
    rid, msg, _, kind = recorded.resume(dir, db, b, id, { held = true })
    assert.is_nil(rid)
    assert.equal("conflict", kind)
    assert.matches("run " .. id .. " is going in another process of this store %(another%-host", msg)
    claims.release(dir, id, lk)
    db:close()
  end)

  it("says a run lock held for a moment by a command of the folder (untagged) as busy, not as an overlap, to a held resume", function()
    -- the server's carry-on waits for it to pass (orket.engine.executor): before, it was a
    -- refusal, and the run was left for good
    local dir, db, b = project()
    local recorded = require "orket.engine.recorded"
    local id = record(db, "E", "epic")
    local lk = assert(claims.hold(dir, id))
    local rl = assert(lockfile.acquire(dir .. "/.orket/run.lock"))
    local rid, msg, code, kind = recorded.resume(dir, db, b, id, { held = true })
    assert.is_nil(rid)
    assert.is_nil(code)
    assert.equal("busy", kind)
    assert.matches("the project's run lock is held by process %d+", msg)
    -- tagged (an `orket run` of the same cards): an overlap
    rl:tag(record(db, "E-1", "issue"))
    rid, msg, code, kind = recorded.resume(dir, db, b, id, { held = true })
    assert.is_nil(rid)
    assert.equal("conflict", kind)
    rl:release()
    assert.equal(id, (recorded.resume(dir, db, b, id, { held = true })))
    claims.release(dir, id, lk)
    db:close()
  end)

  it("refuses a held resume of a run whose status is not the one expected (ended or stopped elsewhere meanwhile)", function()
    local dir, db, b = project()
    local recorded = require "orket.engine.recorded"
    local runlease = require "orket.engine.runlease"
    local expect = { running = true, failed = true }
    local id = record(db, "E", "epic")
    local lk = assert(claims.hold(dir, id))
    assert.equal(id, (recorded.resume(dir, db, b, id, { held = true, expect = expect })))
    -- another process resumed it while this one's store was away, then stopped it
    assert(db:finish_run(id, "interrupted"))
    local rid, msg, code, kind = recorded.resume(dir, db, b, id, { held = true, expect = expect })
    assert.is_nil(rid)
    assert.is_nil(code)
    assert.equal("ended", kind)
    assert.equal("run " .. id .. " is interrupted now (another process ended or stopped it meanwhile)", msg)
    -- nothing taken by the refusal (the lease taken above is this process's still, untouched)
    runlease.drop(db, id)
    assert.is_nil((recorded.resume(dir, db, b, id, { held = true, expect = expect })))
    assert.is_nil(runlease.holders(db)[id])
    -- without expect, as before
    assert.equal(id, (recorded.resume(dir, db, b, id, { held = true })))
    runlease.drop(db, id)
    claims.release(dir, id, lk)
    db:close()
  end)

  it("renews only the run leases its keeper holds: a run given up while the store was away is not kept live", function()
    -- a run whose drop could not delete its lease (the store away) still names this
    -- process; renewing every row of the owner kept it live, with no engine, for as long
    -- as the process had another run
    local _, db = project()
    local runlease = require "orket.engine.runlease"
    local leases = require "orket.store.leases"
    local a = record(db, "E", "epic")
    local n = record(db, "F", "epic")
    assert.is_nil(runlease.take(db, a))
    assert.is_nil(runlease.take(db, n))
    local held = assert(db:tx(function() return leases.run_renew(db, runlease.owner(), 60000, { a }) end))
    assert.same({ [a] = true }, held)
    assert.same({}, assert(db:tx(function() return leases.run_renew(db, runlease.owner(), 60000, {}) end)))
    -- the keeper of run a, with a lease of 0.6 s (renewed every 0.2 s)
    local saved = runlease.TTL_MS
    runlease.TTL_MS = 600
    finally(function() runlease.TTL_MS = saved end)
    assert(db:tx(function()
      return leases.run_take(db, n, runlease.owner(), 600) == nil and leases.run_take(db, a, runlease.owner(), 600) == nil
    end))
    local lost
    runlease.keep(db, a, function() lost = true end)
    orket.sleep(1500)
    local holders = runlease.holders(db)
    runlease.drop(db, a)
    runlease.drop(db, n)
    assert.is_nil(lost)
    assert.equal(runlease.owner(), holders[a])
    assert.is_nil(holders[n])
    db:close()
  end)

  it("carries a server's run on after its store came back once a command's run lock is gone, and not a run another process stopped meanwhile", function()
    -- (PostgreSQL only: a server carries its runs on only there, orket.engine.executor)
    if require("tests.backends").name() ~= "pg" then return pending("PostgreSQL only") end
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
    require("tests.backends").project(dir)
    local db = assert(require("orket.project").open_store(dir, true))
    assert(require("orket.import").import(db, dir))
    local executor = require "orket.engine.executor"
    local setup = require "orket.engine.setup"
    -- each engine made runs the next of plan instead of its run: the first one's store is
    -- lost under it, the carry-on's ends
    local open, wait, plan, ran = setup.open, executor.STORE_WAIT_MS, {}, 0
    setup.open = function(...)
      local e, msg, code = open(...)
      if e then
        local step = table.remove(plan, 1)
        -- (the engine is sealed: its fields' table takes the stand-in)
        rawset(getmetatable(e).__index, "execute", function(self, id)
          ran = ran + 1
          return step(self, id)
        end)
      end
      return e, msg, code
    end
    executor.STORE_WAIT_MS = 10000
    finally(function()
      setup.open, executor.STORE_WAIT_MS = open, wait
      executor.registry(db).log = nil
    end)
    local said = {}
    executor.registry(db).log = function(f) said[#said + 1] = f end
    local function lost() return "failed", { store_lost = "server closed the connection unexpectedly" } end
    local function done() return "done", {} end
    local function run(first, before)
      said, ran, plan = {}, 0, { first, done }
      local id, go = executor.start { dir = dir, db = db, target = "NOTES" }
      assert(id, go)
      if before then before() end
      go()
      return id
    end
    local function ended(id)
      H.wait_for(function() return executor.registry(db).live[id] == nil end, "run " .. id .. " to end", 1000)
      local out = {}
      for _, f in ipairs(said) do out[#out + 1] = string.format("%s %s %s", f.event, f.message, tostring(f.kind)) end
      return table.concat(out, "\n")
    end
    -- an `orket run` of other cards holds the project's run lock, not tagged yet, for a moment
    local rl
    local id = run(lost, function() rl = assert(lockfile.acquire(dir .. "/.orket/run.lock")) end)
    orket.sleep(1200)
    rl:release()
    local log = ended(id)
    assert.is_nil(log:find("is not carried on", 1, true), log)
    assert.matches("run_resumed run " .. id .. " carries on", log, 1, true)
    assert.equal(2, ran)
    -- another process stopped it while the store was away (it resumed it, its lease lapsed)
    id = run(function(e, rid)
      assert(e.db:finish_run(rid, "interrupted"))
      return lost()
    end)
    log = ended(id)
    assert.is_nil(log:find("run_resumed", 1, true), log)
    assert.matches("error run " .. id .. " is not carried on: run " .. id .. " is interrupted now (another process "
      .. "ended or stopped it meanwhile); resume it (POST /v1/runs/" .. id .. "/resume, orket resume " .. id .. ") ended",
      log, 1, true)
    assert.equal(1, ran)
    assert.is_nil(require("orket.engine.runlease").holders(db)[id])
    db:close()
  end)

  it("overlaps a target with itself, its ancestors and what is under it, never with a sibling", function()
    local _, db, b = project()
    assert.is_true(claims.overlaps(b, "E", "E-1"))
    assert.is_true(claims.overlaps(b, "E-1", "E"))
    assert.is_true(claims.overlaps(b, "E-2", "E-2"))
    assert.is_false(claims.overlaps(b, "E-1", "E-2"))
    assert.is_false(claims.overlaps(b, "E", "F-1"))
    db:close()
  end)

  it("sees a run live while its lock is held, refuses an overlap naming it, and lets a disjoint one go", function()
    local dir, db, b = project()
    local id = record(db, "E", "epic")
    assert.same({}, (claims.live(dir)))
    local lk = assert(claims.hold(dir, id))
    local live = claims.live(dir)
    assert.equal(1, #live)
    assert.same({ id, "serve" }, { live[1].id, live[1].by })
    assert.is_truthy(claims.is_live(dir, id))
    local other, why = claims.conflict(dir, db, b, "E-2")
    assert.equal(id, other.id)
    assert.matches("run " .. id .. " %(E%) is working on cards of E%-2 now", why)
    assert.is_nil((claims.conflict(dir, db, b, "F")))
    -- a second hold of the same run is refused
    local again, herr, code = claims.hold(dir, id)
    assert.is_nil(again)
    assert.equal("EBUSY", code)
    assert.matches("run " .. id .. " is going in another process", herr)
    claims.release(dir, id, lk)
    assert.same({}, (claims.live(dir)))
    assert.is_nil(claims.is_live(dir, id))
    assert.is_nil((claims.conflict(dir, db, b, "E-2")))
    db:close()
  end)

  -- conflict(except = the run) left the run's own whole-run locks out: a worker joined a
  -- run a server (or `orket run`) executed and worked its cards beside it, without leases
  it("keeps a worker from joining a run a whole-run process executes", function()
    local dir, db = project()
    local id = assert(db:record_run { target = "E", kind = "epic", data = { workers = true } })
    local b = require("orket.board").open(db)
    local row = { id = id, target = "E" }
    -- orket serve's run lock
    local lk = assert(claims.hold(dir, id))
    assert.is_nil(claims.join_worker(dir, db, b, row))
    claims.release(dir, id, lk)
    -- `orket run`'s run lock, tagged with the run
    local rl = assert(lockfile.acquire(dir .. "/.orket/run.lock"))
    rl:tag(id)
    assert.is_nil(claims.join_worker(dir, db, b, row))
    rl:release()
    -- a server of another folder: its lease in the store alone
    local runlease = require "orket.engine.runlease"
    assert.is_nil(runlease.take(db, id))
    assert.is_nil(claims.join_worker(dir, db, b, row))
    runlease.drop(db, id)
    local hold = assert(claims.join_worker(dir, db, b, row))
    claims.release_worker(hold)
    db:close()
  end)

  -- Each attempt asked conflict (the locks, the run leases) and then whether a whole-run
  -- process works the run (the locks and the run leases again): every idle worker asks at
  -- each poll, under the folder's claim section
  it("reads the locks and the run leases once per join", function()
    local dir, db = project()
    local id = assert(db:record_run { target = "E", kind = "epic", data = { workers = true } })
    local b = require("orket.board").open(db)
    local runlease = require "orket.engine.runlease"
    local live, holders = claims.live, runlease.holders
    local n = { live = 0, holders = 0 }
    claims.live = function(...) n.live = n.live + 1; return live(...) end
    runlease.holders = function(...) n.holders = n.holders + 1; return holders(...) end
    local ok, hold = pcall(claims.join_worker, dir, db, b, { id = id, target = "E" })
    claims.live, runlease.holders = live, holders
    assert(ok, hold)
    assert.truthy(hold)
    assert.same({ live = 1, holders = 1 }, n)
    claims.release_worker(hold)
    db:close()
  end)

  -- A worker's lock is named by its pid: the holder an earlier process of that pid wrote
  -- beside it (its lock left, never pruned) was read as this one's, which wrote none
  it("names a worker's lease holder beside its run lock, and no earlier process's", function()
    local dir, db = project()
    local id = record(db, "E", "epic")
    local pid = require("luv").os_getpid()
    os.execute("mkdir -p " .. dir .. "/.orket/runs")
    local f = assert(io.open(string.format("%s/.orket/runs/%d.%d.name", dir, id, pid), "w"))
    f:write("old#0123456789abcdef")
    f:close()
    local h = assert(claims.hold_worker(dir, id))
    local open = claims.workers_open(dir)[id]
    assert.same({ pid, nil, nil }, { open[1].pid, open[1].holder, open[1].name })
    claims.release_worker(h)
    h = assert(claims.hold_worker(dir, id, "w1#fedcba9876543210"))
    open = claims.workers_open(dir)[id]
    assert.same({ "w1#fedcba9876543210", "w1" }, { open[1].holder, open[1].name })
    assert.is_true(math.type(open[1].since) == "integer" and math.type(open[1].since_ns) == "integer")
    claims.release_worker(h)
    assert.same({}, claims.workers_open(dir))
    db:close()
  end)

  it("sees a run live while a worker works it (its lock, or live leases on its cards), except for the run a worker joins", function()
    local dir, db, b = project()
    local id = record(db, "E", "epic")
    local h = assert(claims.hold_worker(dir, id))
    local live = claims.live(dir)
    assert.same({ { id = id, pid = require("luv").os_getpid(), by = "worker" } }, live)
    assert.is_truthy(claims.is_live(dir, id))
    local other, why = claims.conflict(dir, db, b, "E-1")
    assert.equal(id, other.id)
    assert.matches("run " .. id .. " %(E%) is working on cards of E%-1 now", why)
    assert.is_nil((claims.conflict(dir, db, b, "E", { except = id })))
    claims.release_worker(h)
    assert.same({}, (claims.live(dir)))
    -- a worker elsewhere (another machine) is known by its live leases alone
    local leases = require "orket.store.leases"
    assert(db:tx(function()
      leases.claim(db, { worker = "far:1", run = id, ids = { "E-2" }, ttl_ms = 60000 })
      return true
    end))
    other, why = claims.conflict(dir, db, b, "E")
    assert.equal(id, other.id)
    -- by its name, not as a process: its name's pid is one of another machine
    assert.matches("(worker far:1, known from its leases in the store; not a process here)", why, 1, true)
    assert.is_nil(why:find("process far", 1, true), why)
    assert.is_nil(why:find("process worker", 1, true), why)
    assert(db:tx(function() leases.release(db, "far:1") return true end))
    assert.is_nil((claims.conflict(dir, db, b, "E")))
    db:close()
  end)

  it("counts orket run's tagged run lock as a live run, and an untagged one as busy", function()
    local dir, db, b = project()
    local id = record(db, "F", "epic")
    local lk = assert(lockfile.acquire(dir .. "/.orket/run.lock"))
    local other, why = claims.conflict(dir, db, b, "F-1")
    assert.is_nil(other.id)
    assert.matches("the project's run lock is held by process %d+ %(a command changing cards%)", why)
    -- its holder's word says what it is: a run between its lock and its tag, or a short command
    for what, said in pairs { run = "an orket run starting", cancel = "orket cancel" } do
      lk:release()
      lk = assert(lockfile.acquire(dir .. "/.orket/run.lock", what))
      other, why = claims.conflict(dir, db, b, "F-1")
      assert.matches("the project's run lock is held by process %d+ %(" .. said .. "%); try again", why)
    end
    -- the caller holding the run lock itself does not count it
    assert.is_nil((claims.conflict(dir, db, b, "F-1", { own_run_lock = true })))
    lk:tag(id)
    other = claims.conflict(dir, db, b, "F-1")
    assert.same({ id, "run" }, { other.id, other.by })
    lk:release()
    db:close()
  end)

  it("removes lock files nobody holds (a killed server's) when asked inside the claim", function()
    local dir, db, b = project()
    local id = record(db, "E", "epic")
    local lk = assert(claims.hold(dir, id))
    lk:release() -- as the kernel does when the server dies: the file stays
    local path = string.format("%s/.orket/runs/%d.lock", dir, id)
    assert.is_truthy(io.open(path)):close()
    claims.live(dir) -- without prune nothing is removed
    assert.is_truthy(io.open(path)):close()
    local claim = assert(claims.enter(dir))
    assert.is_nil((claims.conflict(dir, db, b, "E")))
    claim:release()
    assert.is_nil(io.open(path))
    db:close()
  end)

  it("lets one claim in at a time", function()
    local dir, db = project()
    local first = assert(claims.enter(dir))
    local old = claims.WAIT_MS
    claims.WAIT_MS = 20
    local second, err, code = claims.enter(dir)
    claims.WAIT_MS = old
    assert.is_nil(second)
    -- an Orket code whose remedy says how to find the holder, which the message names
    assert.equal("ESTARTING", code)
    assert.matches("another process is starting a run", err)
    assert.matches(string.format("(process %d)", require("luv").os_getpid()), err, 1, true)
    assert.matches("ps -p PID", require("orket.errors").remedy(code), 1, true)
    first:release()
    assert(claims.enter(dir)):release()
    db:close()
  end)
end)
