-- A sandbox row names its owner's machine (owner_machine), so that on a store several
-- machines share (tests.backends: SQLite, or PostgreSQL under tests/with_pg.lua) only this
-- machine's rows are judged by their owner's pid: another machine's live sandbox is left as
-- it is by reconcile, list, get and stop; this machine's, whose owner is gone, still ends;
-- one of this host's earlier boot ends whatever its pid; a row written before rows named
-- their machine is judged by its pid as before; the migration keeps the rows it finds.
-- The owner's lock in the sandbox's directory, where it is seen, decides over all of that
-- (a container restarted on this host); stop --force (and the API's force=1) ends the row
-- of a machine that is gone; the API answers 409 for a sandbox it cannot ask.
local H = require "tests.helpers"
local B = require "tests.backends"
local uv = require "luv"
local service = require "orket.sandboxes.service"
local pidstart = require "orket.sandboxes.pidstart"
local ops = require "orket.store.sandboxes"
local store = require "orket.store"

-- a pid no process holds (beyond the kernel's largest, 2^22)
local DEAD_PID = 2 ^ 22 + 7
local ME = math.tointeger(uv.os_getpid())
local MY_START = pidstart.start_time(ME)

-- this machine's place with another boot id (the same machine, restarted)
local function other_boot()
  local boot = pidstart.place:match("^([%x%-]+)%.")
  local other = boot:gsub("%x", function(c) return c == "0" and "1" or "0" end)
  return other .. pidstart.place:sub(#boot + 1)
end

local OTHER_MACHINE = "sbowner-other-host/" .. "0123abcd-0000-4000-8000-000000000001.4026531836"

-- another pid namespace of this host and boot: a container restarted, or its sibling
local function other_ns()
  return pidstart.host .. "/" .. pidstart.place:match("^([%x%-]+)%.") .. ".1"
end

-- in a pid namespace of its own where this user may make one (util-linux's unshare), as a
-- container's process is; else a plain child
local UNSHARE = os.execute("unshare --user --map-root-user --pid --fork --kill-child true >/dev/null 2>&1") == true
  and "unshare --user --map-root-user --pid --fork --kill-child " or ""

-- hold(path) -> pid, stop, machine: another process holding an owner's lock on path (as a
-- sandbox's owner does) until stop() kills it; stop() returns once its lock is dropped.
-- machine: the holder's own (another pid namespace's where UNSHARE is there)
local function hold(path)
  local p = io.popen(string.format("{ %s%s lua -e %s & echo $!; }", UNSHARE, H.quote(H.BIN), H.quote(
    "local l = assert(require('orket.c.lockfile').acquire(" .. string.format("%q", path) .. ")); "
      .. "io.stdout:write('locked ', require('orket.sandboxes.pidstart').machine or '', '\\n'); io.stdout:flush(); "
      .. "orket.sleep(60000)")))
  local first, second = p:read("l"), p:read("l")
  local pid = math.tointeger(tonumber(first) or tonumber(second))
  local said = tonumber(first) and second or first
  assert(pid and said and said:match("^locked "), "the lock holder did not start")
  return pid, function()
    os.execute("kill -9 " .. pid)
    p:close()
    H.wait_for(function() return not H.alive(pid) end, "the lock holder to end")
    H.wait_for(function() return not require("orket.c.lockfile").probe(path) end, "the holder's lock to drop")
  end, said:match("^locked (.+)$")
end

local function insert(db, o)
  local id = ops.insert(db, { target = o.target or "main", port = o.port or 8080, socket = "",
    command = "[]", owner_pid = o.pid, owner_start = o.start, owner_machine = o.machine })
  if o.socket then ops.set_socket(db, id, o.socket(id)) end
  ops.set_status(db, id, "healthy")
  return id
end

describe("sandbox owners on several machines (" .. B.name() .. ")", function()
  after_each(H.cleanup)

  it("this process's machine is its host name and place", function()
    assert.is_string(pidstart.place)
    assert.equal(pidstart.host .. "/" .. pidstart.place, pidstart.machine)
    assert.equal(pidstart.place, require("orket.engine.runlease").place) -- one reading, shared
    local host, boot, place = pidstart.parse_machine(pidstart.machine)
    assert.same({ pidstart.host, pidstart.place:match("^([%x%-]+)%."), pidstart.place }, { host, boot, place })
    assert.is_nil(pidstart.parse_machine("no machine"))
  end)

  it("another machine's live row survives reconcile, list and get; it is shown as another machine's", function()
    local db = B.open_store()
    -- its pid is no process here, and another machine's row may name this process's pid too
    local far = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE })
    local far_mine = insert(db, { pid = ME, start = "1", machine = OTHER_MACHINE, port = 8081 })
    -- another pid namespace of this host and boot (another container): its pid is not judged here
    local ns = insert(db, { pid = DEAD_PID, start = "1", port = 8082,
      machine = pidstart.host .. "/" .. pidstart.place:match("^([%x%-]+)%.") .. ".1" })
    assert.same({}, service.reconcile(db))
    assert.equal(3, #service.list(db, false))
    for _, id in ipairs { far, far_mine, ns } do
      local r = service.get(db, id)
      assert.equal("healthy", r.status)
      assert.equal("elsewhere", service.where(r))
      assert.is_true(service.elsewhere_live(r))
    end
    assert.equal("sbowner-other-host", service.machine_of(service.get(db, far)))
    assert.equal(3, #service.running(db))
    -- the pid another machine's row names is not this process's sandbox
    assert.is_false(service.owned_by(service.get(db, far_mine), ME))
    db:close()
  end)

  -- A sibling container (this host name and boot, another pid namespace) was said to run
  -- "on another machine" named as this one.
  it("says where another's row runs: another machine, or another container on this host", function()
    local db = B.open_store()
    local dir = uv.fs_realpath(H.tmpdir())
    local function at(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end
    local far = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE, socket = at })
    local ns = insert(db, { pid = DEAD_PID, start = "1", machine = other_ns(), socket = at, port = 8081 })
    assert.equal("on another machine", service.runs_on(service.get(db, far)))
    assert.equal("in another container or pid namespace on this host", service.runs_on(service.get(db, ns)))
    local _, others = service.pick(service.list(db, false), dir)
    local why = service.elsewhere(others, dir)
    assert.matches("sbowner-other-host:" .. dir, why, 1, true)
    assert.matches(dir .. " in another container or pid namespace on this host", why, 1, true)
    assert.is_nil(why:find(pidstart.host .. ":", 1, true))
    local ok, msg = service.stop(db, ns)
    assert.is_nil(ok)
    assert.matches("runs in another container or pid namespace on this host (" .. pidstart.host .. ") whose folder",
      msg, 1, true)
    db:close()
  end)

  -- A container has its own host name by default but shares the kernel, whose boot id is
  -- not namespaced: runs_on compared host names first and said "on another machine".
  it("a row of this boot id runs on this host, whatever host name it gives", function()
    local db = B.open_store()
    local dir = uv.fs_realpath(H.tmpdir())
    local sib = insert(db, { pid = DEAD_PID, start = "1", machine = "c0ffee123456/" .. pidstart.boot .. ".4026531999",
      socket = function(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end })
    local r = service.get(db, sib)
    assert.equal("elsewhere", service.where(r))
    assert.equal("in another container or pid namespace on this host", service.runs_on(r))
    local _, others = service.pick(service.list(db, false), dir)
    local why = service.elsewhere(others, dir)
    assert.matches(dir .. " in another container or pid namespace on this host", why, 1, true)
    assert.is_nil(why:find("c0ffee123456:", 1, true))
    local ok, msg = service.stop(db, sib)
    assert.is_nil(ok)
    assert.matches("runs in another container or pid namespace on this host (c0ffee123456)", msg, 1, true)
    db:close()
  end)

  -- A process that cannot read its own place finds every row with a machine "elsewhere";
  -- one whose machine does not parse was said "elsewhere" with the host name "nil".
  it("a row whose machine does not parse is said somewhere this process cannot tell, never nil", function()
    local db = B.open_store()
    local dir = uv.fs_realpath(H.tmpdir())
    local odd = insert(db, { pid = DEAD_PID, start = "1", machine = "not a machine",
      socket = function(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end })
    local place = pidstart.place
    pidstart.place = nil
    local ok, res = pcall(function()
      local r = service.get(db, odd)
      assert.equal("elsewhere", service.where(r))
      assert.equal("somewhere this process cannot tell", service.runs_on(r))
      assert.equal("somewhere this process cannot tell", service.runs_on({ owner_machine = nil }))
      local sok, msg = service.stop(db, odd)
      assert.is_nil(sok)
      assert.matches("runs somewhere this process cannot tell (?)", msg, 1, true)
      assert.is_nil(msg:find("nil", 1, true))
    end)
    pidstart.place = place
    db:close()
    assert(ok, res)
  end)

  it("this machine's row whose owner is gone is marked exited; a live owner's stays", function()
    local db = B.open_store()
    local gone = insert(db, { pid = DEAD_PID, start = "1", machine = pidstart.machine })
    local live = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, port = 8081 })
    assert.equal("here", service.where(ops.get(db, gone)))
    assert.same({ gone }, service.reconcile(db))
    local r = service.get(db, gone)
    assert.equal("exited", r.status)
    assert.matches("its owner %(pid %d+%) ended, and the sandbox with it", r.detail)
    assert.equal("healthy", service.get(db, live).status)
    assert.is_false(service.elsewhere_live(service.get(db, live)))
    assert.is_true(service.owned_by(service.get(db, live), ME))
    -- get alone marks it too
    local gone2 = insert(db, { pid = DEAD_PID, start = "1", machine = pidstart.machine, port = 8082 })
    assert.equal("exited", service.get(db, gone2).status)
    db:close()
  end)

  it("a row of this host's earlier boot is marked exited, whatever its pid", function()
    local db = B.open_store()
    -- this process's own pid and start time: alive here, but named in a boot that ended
    local old = insert(db, { pid = ME, start = MY_START, machine = pidstart.host .. "/" .. other_boot() })
    assert.equal("rebooted", service.where(ops.get(db, old)))
    assert.equal(1, #service.list(db, true))
    local r = service.get(db, old)
    assert.equal("exited", r.status)
    assert.matches("ended with its machine's restart", r.detail)
    db:close()
  end)

  it("a row without a machine (written before) is judged by its pid, as before", function()
    local db = B.open_store()
    local gone = insert(db, { pid = DEAD_PID, start = "1" })
    local live = insert(db, { pid = ME, start = MY_START, port = 8081 })
    assert.equal("unknown", service.where(ops.get(db, gone)))
    assert.same({ gone }, service.reconcile(db))
    assert.equal("exited", service.get(db, gone).status)
    assert.equal("healthy", service.get(db, live).status)
    assert.is_true(service.owned_by(service.get(db, live), ME))
    db:close()
  end)

  it("another machine's sandbox at this folder's path is this folder's only when the folder is shared", function()
    local db = B.open_store()
    local dir = H.tmpdir()
    local function at(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end
    local unshared = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE, socket = at })
    local shared = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE, socket = at, port = 8081 })
    assert.equal(0, (H.sh("mkdir -p '" .. dir .. "/.orket/sandboxes/" .. shared .. "'")))
    local mine = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, socket = at, port = 8082 })
    assert.is_false(service.of_folder(service.get(db, unshared), dir))
    assert.is_true(service.of_folder(service.get(db, shared), dir))
    assert.is_true(service.of_folder(service.get(db, mine), dir))
    local best, others = service.pick(service.list(db, false), dir)
    assert.equal(mine, best.id)
    assert.equal(1, #others)
    assert.matches("sandbox " .. unshared .. " runs in another folder sharing this store %(sbowner%-other%-host:" .. dir:gsub("%p", "%%%0"),
      service.elsewhere(others, dir))
    -- stop: asked through the folder only where it is shared; else said, and left live
    local ok, msg, code = service.stop(db, unshared)
    assert.is_nil(ok)
    assert.equal("EINVAL", code)
    assert.matches("runs on another machine %(sbowner%-other%-host%).*stop it there", msg)
    assert.equal("healthy", ops.get(db, unshared).status)
    db:close()
  end)

  -- The owner's lock in the sandbox's directory decides whenever its file is seen here: a
  -- container restarted on this host (same host name and boot, a new pid namespace) left
  -- rows no pid can judge, which stayed live for good.
  it("a row whose owner's lock is seen here lives while it is held, and ends once free, whatever its machine", function()
    local db = B.open_store()
    local dir = H.tmpdir()
    local function at(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end
    local function lock_of(id)
      assert.equal(0, (H.sh("mkdir -p '" .. dir .. "/.orket/sandboxes/" .. id .. "'")))
      return dir .. "/.orket/sandboxes/" .. id .. "/" .. service.OWNER_LOCK
    end
    -- a live owner in another pid namespace (a container's; without unshare, another
    -- process) holds it, its row naming that namespace's machine
    local held = insert(db, { pid = DEAD_PID, start = "1", machine = other_ns(), socket = at })
    local holder, stop_holder, machine = hold(lock_of(held))
    finally(function() if H.alive(holder) then stop_holder() end end)
    if UNSHARE ~= "" then
      assert.is_string(machine)
      assert.are_not.equal(pidstart.machine, machine)
      db:run("UPDATE sandboxes SET owner_machine = ? WHERE id = ?", machine, held)
    end
    assert.equal("elsewhere", service.where(ops.get(db, held)))
    -- the container restarted: its lock file is there, and nobody holds it
    local left = insert(db, { pid = DEAD_PID, start = "1", machine = other_ns(), socket = at, port = 8081 })
    H.write(lock_of(left), "4242\n")
    assert.equal(0, (H.sh("mkdir -p '" .. dir .. "/.orket/sandboxes/" .. left .. "/tree'")))
    -- a row naming this very process (pid and start) whose lock nobody holds: the lock decides
    local stale = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, socket = at, port = 8082 })
    H.write(lock_of(stale), "")
    assert.is_true(service.owner_lock(ops.get(db, held)))
    assert.is_false(service.owner_lock(ops.get(db, left)))
    local ended = service.reconcile(db)
    table.sort(ended)
    assert.same({ left, stale }, ended)
    assert.equal("healthy", service.get(db, held).status)
    assert.matches("its owner %(pid %d+%) ended", service.get(db, left).detail)
    assert.is_nil(uv.fs_stat(dir .. "/.orket/sandboxes/" .. left .. "/tree")) -- what its owner would have removed
    -- it is this folder's, shared: pick finds the live one only
    local best = service.pick(service.list(db, false), dir)
    assert.equal(held, best.id)
    -- its owner ends: the next look alone ends it
    stop_holder()
    assert.is_false(service.owner_lock(ops.get(db, held)))
    assert.equal("exited", service.get(db, held).status)
    db:close()
  end)

  -- the race a loaded machine showed: a look read the rows while the owner was stopping its
  -- sandbox, the owner recorded "stopped" and let its lock go, and the look then found the
  -- lock free and marked the sandbox exited over its recorded stop
  it("a row that ended after it was read live, its lock then free, keeps the end its owner recorded", function()
    local db = B.open_store()
    local dir = H.tmpdir()
    local id = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine,
      socket = function(n) return dir .. "/.orket/sandboxes/" .. n .. "/app.sock" end })
    assert.equal(0, (H.sh("mkdir -p '" .. dir .. "/.orket/sandboxes/" .. id .. "'")))
    H.write(dir .. "/.orket/sandboxes/" .. id .. "/" .. service.OWNER_LOCK, "")
    local read_live = ops.list(db, false) -- the look's read, before the owner's end
    ops.set_status(db, id, "stopped", "stopped by the redeploy", { code = 0 })
    local events = #db:events()
    local list = ops.list
    ops.list = function() return read_live end
    local ok, ended = pcall(service.reconcile, db)
    ops.list = list
    assert(ok, ended)
    assert.same({}, ended)
    local row = ops.get(db, id)
    assert.equal("stopped", row.status)
    assert.equal("stopped by the redeploy", row.detail)
    assert.equal(events, #db:events()) -- no sandbox_exit said for it
    -- a row still live whose lock is free is ended as before
    ops.set_status(db, id, "healthy")
    assert.same({ id }, service.reconcile(db))
    assert.equal("exited", ops.get(db, id).status)
    db:close()
  end)

  -- a shared file system that does not pass locks on (NFS nolock, most FUSE) shows another
  -- kernel's held lock as free: only the lock of an owner on this kernel is proof it ended
  it("another machine's row whose lock file reads free here is left live, its files untouched", function()
    local db = B.open_store()
    local dir = H.tmpdir()
    local function at(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end
    local id = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE, socket = at })
    local home = dir .. "/.orket/sandboxes/" .. id
    assert.equal(0, (H.sh("mkdir -p '" .. home .. "/tree'")))
    H.write(home .. "/" .. service.OWNER_LOCK, "")
    assert.is_false(service.owner_lock(ops.get(db, id)))
    assert.same({}, service.reconcile(db))
    assert.equal("healthy", service.get(db, id).status)
    assert.is_not_nil(uv.fs_stat(home .. "/tree"))
    db:close()
  end)

  -- orket serve owns the sandboxes it starts and looks at them in the same process: an open
  -- file description's lock conflicts with another description's, whatever the process
  it("a lock this very process holds through another descriptor reads as held", function()
    local lockfile = require "orket.c.lockfile"
    local db = B.open_store()
    local dir = H.tmpdir()
    local id = insert(db, { pid = DEAD_PID, start = "1", machine = other_ns(),
      socket = function(n) return dir .. "/.orket/sandboxes/" .. n .. "/app.sock" end })
    assert.equal(0, (H.sh("mkdir -p '" .. dir .. "/.orket/sandboxes/" .. id .. "'")))
    local lk = assert(lockfile.acquire(dir .. "/.orket/sandboxes/" .. id .. "/" .. service.OWNER_LOCK))
    assert.is_true(service.owner_lock(ops.get(db, id)))
    assert.same({}, service.reconcile(db))
    assert.equal("healthy", service.get(db, id).status)
    lk:release()
    assert.equal("exited", service.get(db, id).status)
    db:close()
  end)

  it("stop --force ends the row of a machine that is gone, naming who, and touches nothing", function()
    local db = B.open_store()
    local dir = H.tmpdir()
    local function at(n) return dir .. "/.orket/sandboxes/" .. n .. "/app.sock" end
    local far = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE, socket = at })
    assert.is_true(service.unreachable(ops.get(db, far)))
    local ok, msg, code = service.stop(db, far)
    assert.is_nil(ok)
    assert.equal("EINVAL", code)
    assert.matches("orket sandbox stop %-%-force " .. far, msg)
    assert.is_true(service.force_stop(db, far, "forced by a test"))
    local r = ops.get(db, far)
    assert.equal("exited", r.status)
    assert.matches("ended by force %(forced by a test%): its owner %(pid %d+ on sbowner%-other%-host%)", r.detail)
    assert.is_nil(uv.fs_stat(dir .. "/.orket/sandboxes/" .. far)) -- nothing made or removed here
    local ev = db:rows("SELECT data FROM events WHERE kind = 'sandbox_exit'")
    assert.equal(1, #ev)
    assert.is_true(require("cjson").decode(ev[1].data).forced)
    -- an ended row is not forced again; one whose owner is judged here ends as stop ends it
    assert.equal("EINVAL", select(3, service.force_stop(db, far, "again")))
    local gone = insert(db, { pid = DEAD_PID, start = "1", machine = pidstart.machine, port = 8081 })
    assert.is_false(service.unreachable(ops.get(db, gone)))
    assert.is_true(service.force_stop(db, gone, "forced by a test"))
    assert.matches("its owner %(pid %d+%) ended", ops.get(db, gone).detail)
    db:close()
  end)

  it("what the CLI's list --json and the API say of a row: its machine, and whether it is another's", function()
    local serve_sb = require "orket.serve.sandboxes"
    local db = B.open_store()
    local far = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE })
    local mine = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, port = 8081 })
    local old = insert(db, { pid = ME, start = MY_START, port = 8082 })
    local d = serve_sb.doc(ops.get(db, far))
    assert.same({ "sbowner-other-host", true }, { d.machine, d.elsewhere })
    d = serve_sb.doc(ops.get(db, mine))
    assert.same({ pidstart.host, false }, { d.machine, d.elsewhere })
    d = serve_sb.doc(ops.get(db, old))
    assert.same({ require("cjson").null, false }, { d.machine, d.elsewhere })
    db:close()
  end)

  it("the owner's row a detached up waits for is this machine's, not another's naming the same pid", function()
    local cmd = require "orket.cmd.sandbox"
    local db = B.open_store()
    -- (the newest is looked at first)
    local mine = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, port = 8081 })
    insert(db, { pid = ME, start = MY_START, machine = OTHER_MACHINE })
    local row
    local t = require("orket.task").spawn(function() row = cmd._owner_row(db, ME, function() return nil end) end)
    assert(t:join())
    assert.equal(mine, row.id)
    db:close()
  end)

  it("the API answers 409 for another machine's sandbox it cannot ask, and ends its row with force=1", function()
    local F = require "tests.fixtures"
    local cjson = require "cjson"
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = B.open_store()
    local token = "ort_" .. string.rep("cd", 16)
    local srv, stop = F.served { dir = dir, db = db, host = "127.0.0.1", port = 0, local_token = token }
    local function at(n) return "/elsewhere/.orket/sandboxes/" .. n .. "/app.sock" end
    local far = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE, socket = at })
    local far2 = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE, socket = at, port = 8081 })
    local function post(path)
      local st, body = H.fetch { url = "http://127.0.0.1:" .. srv:port() .. path, method = "POST", body = "{}",
        headers = { "Authorization: Bearer " .. token, "Content-Type: application/json" } }
      return st, cjson.decode(body)
    end
    local st, doc = post("/v1/sandboxes/" .. far .. "/stop")
    assert.equal(409, st)
    assert.matches("runs on another machine %(sbowner%-other%-host%)", doc.error.message)
    assert.matches("force=1", doc.error.remedy, 1, true)
    assert.equal("healthy", ops.get(db, far).status)
    st = post("/v1/sandboxes/" .. far2 .. "/restart")
    assert.equal(409, st)
    assert.equal("healthy", ops.get(db, far2).status)
    st, doc = post("/v1/sandboxes/" .. far .. "/stop?force=1")
    assert.equal(200, st)
    assert.equal("exited", doc.sandbox.status)
    assert.matches("ended by force %(forced through the API by ", doc.sandbox.detail)
    stop()
  end)

  -- Two folders share the store: the end of a bug-fix phase whose tick runs in folder A
  -- stopped folder B's live sandbox too (every live row of the store).
  it("a bug-fix phase's end stops this folder's sandboxes only, and says those of other folders it left", function()
    local phase = require "orket.sandboxes.phase"
    local imports = require "orket.store.imports"
    local cards = require "orket.store.cards"
    local clock_mod = require "orket.clock"
    local db = B.open_store()
    imports.insert_card(db, { id = "R", type = "rock", name = "rock", priority = 2 })
    cards.set_status(db, "R", "done", nil, "developer", 0)
    local a, b = uv.fs_realpath(H.tmpdir()), uv.fs_realpath(H.tmpdir())
    local function in_folder(dir) return function(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end end
    local mine = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, socket = in_folder(a) })
    local theirs = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, socket = in_folder(b),
      port = 8081 })
    -- another machine's folder at A's path, not shared here: that machine's, left too
    local far = insert(db, { pid = DEAD_PID, start = "1", machine = OTHER_MACHINE, socket = in_folder(a), port = 8082 })
    local c = clock_mod.new()
    local stopped = {}
    local settings = { days = 7, extend_above = 1.0, max_days = 28, check_interval_ms = 60000 }
    local function tick()
      return phase.tick(db, { settings = settings, clock = c, dir = a, stop = function(_, id)
        stopped[#stopped + 1] = id
        return true
      end })
    end
    assert.same({ "R" }, tick().started)
    c:advance(7 * clock_mod.DAY + 1)
    local r = tick()
    assert.equal(1, #r.ended)
    assert.same({ mine }, stopped)
    assert.same({ mine }, r.ended[1].sandboxes)
    assert.same({ { id = theirs, folder = b }, { id = far, folder = a, machine = "sbowner-other-host",
      runs_on = "on another machine" } }, r.ended[1].left)
    local ev
    for _, e in ipairs(db:events {}) do if e.kind == "bugfix_end" then ev = e.data end end
    assert.same({ mine }, ev.sandboxes)
    assert.same({ theirs, far }, { ev.left[1].id, ev.left[2].id })
    assert.equal(b, ev.left[1].folder)
    db:close()
  end)

  -- a store with rock R done, and a tick(dir) of its phases on a clock the caller moves,
  -- whose stops are recorded in stopped (never asked of an owner)
  local function phase_store()
    local phase = require "orket.sandboxes.phase"
    local imports = require "orket.store.imports"
    local cards = require "orket.store.cards"
    local clock_mod = require "orket.clock"
    local db = B.open_store()
    imports.insert_card(db, { id = "R", type = "rock", name = "rock", priority = 2 })
    cards.set_status(db, "R", "done", nil, "developer", 0)
    local c, stopped = clock_mod.new(), {}
    local settings = { days = 7, extend_above = 1.0, max_days = 28, check_interval_ms = 60000 }
    local function tick(dir)
      return phase.tick(db, { settings = settings, clock = c, dir = dir, stop = function(_, id)
        stopped[#stopped + 1] = id
        return true
      end })
    end
    return db, tick, stopped, function() c:advance(7 * clock_mod.DAY + 1) end
  end
  local function in_folder(dir) return function(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end end

  -- The rows the rule counts as every folder's (no socket) or judged by pid (no machine),
  -- and a tick from a link to the folder: each this folder's, stopped.
  it("a bug-fix phase's end stops a row without a machine, one without a socket, from a linked folder too", function()
    local db, tick, stopped, over = phase_store()
    local a, b = uv.fs_realpath(H.tmpdir()), uv.fs_realpath(H.tmpdir())
    local link = H.tmpdir() .. "/a-link"
    assert(uv.fs_symlink(a, link))
    local plain = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, socket = in_folder(a) })
    local old = insert(db, { pid = ME, start = MY_START, socket = in_folder(a), port = 8081 })
    local nosock = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, port = 8082 })
    local theirs = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, socket = in_folder(b),
      port = 8083 })
    assert.same({ "R" }, tick(link).started)
    over()
    local r = tick(link)
    assert.same({ plain, old, nosock }, stopped)
    assert.same({ { id = theirs, folder = b } }, r.ended[1].left)
    db:close()
  end)

  -- Phases are the store's: once folder A's tick ended the last one, folder B's ticks found
  -- no open phase, and B's sandboxes (and its kept databases) stayed for good.
  it("the sandboxes a phase's end left for another folder are stopped by that folder's next tick, once", function()
    local database = require "orket.sandboxes.database"
    local db, tick, stopped, over = phase_store()
    local a, b = uv.fs_realpath(H.tmpdir()), uv.fs_realpath(H.tmpdir())
    local mine = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, socket = in_folder(a) })
    local theirs = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, socket = in_folder(b),
      port = 8081 })
    local kept = database.kept_path(b, "main")
    assert(os.execute("mkdir -p " .. H.quote(kept) .. " " .. H.quote(b .. "/.orket/sandboxes/" .. theirs)))
    tick(a)
    -- (while the phase is open, B's tick takes nothing)
    assert.same({}, tick(b).left_stopped)
    over()
    assert.same({}, tick(a).left_stopped) -- ended here: A's stopped, B's left
    assert.same({ mine }, stopped)
    assert.truthy(uv.fs_stat(kept))
    local r = tick(b)
    assert.same({ mine, theirs }, stopped)
    assert.equal(1, #r.left_stopped)
    assert.same({ rock = "R", ids = { theirs } }, { rock = r.left_stopped[1].rock, ids = r.left_stopped[1].ids })
    assert.same({ { id = theirs, ok = true } }, r.left_stopped[1].stopped)
    assert.is_nil(uv.fs_stat(kept))
    assert.matches("R: the end of its bug-fix phase, ticked in another folder, left 1 of this folder's sandbox(es) "
      .. "running: stopped here (" .. theirs .. ")", require("orket.sandboxes.phase").left_line(r.left_stopped[1]), 1, true)
    -- once: the row still reads live here (the stop was only recorded), and is not taken again
    assert.same({}, tick(b).left_stopped)
    assert.same({}, tick(a).left_stopped)
    assert.same({ mine, theirs }, stopped)
    assert.truthy(uv.fs_stat(b .. "/.orket/sandboxes/" .. theirs .. "/" .. require("orket.sandboxes.phase").LEFT_TAKEN))
    db:close()
  end)

  it("the migration adds owner_machine and keeps the rows it finds", function()
    local n_sqlite = #store.migrations
    if B.name() == "sqlite" then
      local path = H.tmpdir() .. "/old.db"
      local old = assert(store.open(path, { upto = n_sqlite - 1 }))
      assert(old:run("INSERT INTO sandboxes (target, status, port, socket, command, owner_pid, owner_start, started_at, "
        .. "updated_at) VALUES ('main', 'healthy', 8080, '', '[]', ?, '1', '2026-01-01T00:00:00.000Z', "
        .. "'2026-01-01T00:00:00.000Z')", DEAD_PID))
      old:close()
      local db = assert(store.open(path))
      assert.equal(n_sqlite, assert(db:row("PRAGMA user_version")).user_version)
      local rows = ops.list(db, true)
      assert.equal(1, #rows)
      assert.is_nil(rows[1].owner_machine)
      assert.equal("healthy", rows[1].status)
      -- judged by its pid, as before
      assert.same({ rows[1].id }, service.reconcile(db))
      db:close()
    else
      local pgpool = require "orket.store.pgpool"
      local pg_schema = require "orket.store.pg_schema"
      local url = B.fresh_url()
      local pool = pgpool.new { url = url, size = 1 }
      assert(pool:run("DROP SCHEMA public CASCADE"))
      assert(pool:run("CREATE SCHEMA public"))
      local list = { table.unpack(pg_schema.migrations, 1, #pg_schema.migrations - 1) }
      assert.equal(#list, assert(pg_schema.migrate(pool, list)))
      assert(pool:run("INSERT INTO sandboxes (target, status, port, socket, command, owner_pid, owner_start, started_at, "
        .. "updated_at) VALUES ('main', 'healthy', 8080, '', '[]', $1, '1', now(), now())", DEAD_PID))
      assert.equal(#pg_schema.migrations, assert(pg_schema.migrate(pool)))
      pool:close()
      assert.equal(n_sqlite, pg_schema.migrations[#pg_schema.migrations].sqlite)
      local db = assert(store.open_url(url))
      local rows = ops.list(db, true)
      assert.equal(1, #rows)
      assert.is_nil(rows[1].owner_machine)
      assert.same({ rows[1].id }, service.reconcile(db))
      -- a new row names its machine
      local id = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine, port = 8081 })
      assert.equal(pidstart.machine, ops.get(db, id).owner_machine)
      db:close()
    end
  end)
end)

describe("an owner's record of its sandbox's end (" .. B.name() .. ")", function()
  local task = require "orket.task"
  after_each(H.cleanup)

  -- db, whose first `fails` transactions fail as a dropped connection would, and calls(),
  -- how many were asked
  local function failing(db, fails)
    local n = 0
    local proxy = setmetatable({}, { __index = function(_, k)
      local v = db[k]
      if type(v) ~= "function" then return v end
      return function(_, ...) return v(db, ...) end
    end })
    proxy.tx = function(_, fn, ...)
      n = n + 1
      if n <= fails then return nil, "the connection was dropped", "EIO" end
      return db:tx(fn, ...)
    end
    return proxy, function() return n end
  end

  -- what record_end wrote to stderr while fn ran, and fn's results
  local function said(fn)
    local saved, text = io.stderr, {}
    io.stderr = { write = function(_, ...) for _, s in ipairs { ... } do text[#text + 1] = s end end }
    -- (join: whether the task ended without raising, then its results)
    local res = table.pack(pcall(function() return fn():join() end))
    io.stderr = saved
    assert(res[1], res[2])
    assert(res[2], res[3])
    return table.concat(text), table.unpack(res, 3, res.n)
  end

  local function stop_events(db, id)
    local n = 0
    for _, ev in ipairs(db:events()) do
      if ev.kind == "sandbox_stop" and math.tointeger(ev.data.id) == id then n = n + 1 end
    end
    return n
  end

  it("asks the store again after a failure, and records the end once", function()
    local db = B.open_store()
    local id = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine })
    local flaky, calls = failing(db, 2)
    local text, ok = said(function()
      return task.spawn(service._record_end, flaky, id, "stopped", "stopped", {}, "sandbox_stop",
        { id = id, target = "main", detail = "stopped" })
    end)
    assert.is_true(ok)
    assert.equal(3, calls())
    assert.equal("", text)
    assert.equal("stopped", ops.get(db, id).status)
    assert.equal(1, stop_events(db, id))
    db:close()
  end)

  it("says an end it could not record on stderr, with the store's reason, and leaves the row as it was", function()
    local db = B.open_store()
    local id = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine })
    local flaky, calls = failing(db, 1000)
    local text, ok, err = said(function()
      return task.spawn(service._record_end, flaky, id, "stopped", "stopped", {}, "sandbox_stop",
        { id = id, target = "main", detail = "stopped" })
    end)
    assert.is_nil(ok)
    assert.equal("the connection was dropped", err)
    assert.equal(service.END_TRIES, calls())
    assert.equal(string.format("sandbox %d: its end (stopped) was not recorded after %d tries: the connection was "
      .. "dropped\n", id, service.END_TRIES), text)
    assert.equal("healthy", ops.get(db, id).status)
    assert.equal(0, stop_events(db, id))
    db:close()
  end)

  it("takes an end the store has already (a COMMIT that failed after the server had it) as recorded", function()
    local db = B.open_store()
    local id = insert(db, { pid = ME, start = MY_START, machine = pidstart.machine })
    local committed = setmetatable({ tx = function(_, fn)
      assert(db:tx(fn))
      return nil, "the connection was dropped at COMMIT", "EIO"
    end }, { __index = function(_, k)
      local v = db[k]
      if type(v) ~= "function" then return v end
      return function(_, ...) return v(db, ...) end
    end })
    local text, ok = said(function()
      return task.spawn(service._record_end, committed, id, "stopped", "stopped", {}, "sandbox_stop",
        { id = id, target = "main", detail = "stopped" })
    end)
    assert.is_true(ok)
    assert.equal("", text)
    assert.equal(1, stop_events(db, id))
    db:close()
  end)
end)
