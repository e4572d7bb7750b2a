-- Retention of ended sandboxes' folders (orket.lua's sandbox.keep_ended, docs/sandbox.md,
-- *Retention*): every deploy leaves .orket/sandboxes/ID (its log and rotations, its owner's
-- files), which grew without bound over a project's life. The newest keep_ended ended ones
-- stay; older ones go at each start (service.up) and by `orket sandbox prune`, but never a
-- live sandbox's, one whose owner's lock is held, one still holding databases, another
-- machine's, or a folder whose row does not name it. The log of a removed one is said
-- removed by retention (CLI and API), not printed as nothing. Runs on the backend under test
-- (tests.backends: SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local B = require "tests.backends"
local uv = require "luv"
local cjson = require "cjson"
local service = require "orket.sandboxes.service"
local pidstart = require "orket.sandboxes.pidstart"
local ops = require "orket.store.sandboxes"
local lockfile = require "orket.c.lockfile"
local settings = require "orket.settings.sandbox"

-- a pid no process holds (beyond the kernel's largest, 2^22)
local DEAD_PID = 2 ^ 22 + 7
local ME = math.tointeger(uv.os_getpid())
local OTHER_MACHINE = "retention-other-host/" .. "0123abcd-0000-4000-8000-000000000001.4026531836"

local function real(dir) return uv.fs_realpath(dir) or dir end
local function home(dir, id) return real(dir) .. "/.orket/sandboxes/" .. id end
local function there(path) return uv.fs_lstat(path) ~= nil end

-- a sandbox row of the folder dir in status, with its directory as an ended one leaves it
-- (app.log and a rotation, its owner's lock file); o.machine: its owner's, o.pid: its owner
local function sandbox(db, dir, status, o)
  o = o or {}
  local id = ops.insert(db, { target = "main", port = 8080, socket = "", command = "[]", owner_pid = o.pid or DEAD_PID,
    owner_start = o.pid and pidstart.start_time(o.pid) or "1", owner_machine = o.machine or pidstart.machine })
  ops.set_socket(db, id, home(o.folder or dir, id) .. "/app.sock")
  ops.set_status(db, id, status, status ~= "healthy" and "the app exited (status 1)" or nil)
  assert.equal(0, (H.sh("mkdir -p " .. H.quote(home(dir, id)))))
  H.write(home(dir, id) .. "/app.log", "the log of sandbox " .. id .. "\n")
  H.write(home(dir, id) .. "/app.log.1", "older lines of " .. id .. "\n")
  H.write(home(dir, id) .. "/" .. service.OWNER_LOCK, "")
  return id
end

local function sorted(t)
  table.sort(t)
  return t
end

describe("sandbox retention (" .. B.name() .. ")", function()
  after_each(H.cleanup)

  it("is sandbox.keep_ended, 20 by default, an integer from 0 to 10000, a wrong one naming the field", function()
    assert.equal(20, settings.sandbox({}).keep_ended)
    assert.equal(0, settings.sandbox({ sandbox = { keep_ended = 0 } }).keep_ended)
    assert.equal(10000, settings.sandbox({ sandbox = { keep_ended = 10000 } }).keep_ended)
    for _, bad in ipairs { -1, 10001, 2.5, "3", true } do
      local ok, e = pcall(settings.sandbox, { sandbox = { keep_ended = bad } })
      assert.is_false(ok)
      assert.equal("orket.lua: sandbox.keep_ended: must be an integer from 0 to 10000 (got " .. tostring(bad) .. ")",
        e.settings_error)
    end
    local _, e = pcall(settings.sandbox, { sandbox = { keep = 1 } })
    assert.matches("keep_ended", e.settings_error, 1, true)
  end)

  it("is sandbox.stop_timeout_ms, 10 s by default, from 1 s to 300 s, a wrong one naming the field", function()
    assert.equal(10000, settings.sandbox({}).stop_timeout_ms)
    assert.equal(2500, settings.sandbox({ sandbox = { stop_timeout_ms = 2500 } }).stop_timeout_ms)
    for _, bad in ipairs { 999, 300001, 1.5, "10s" } do
      local ok, e = pcall(settings.sandbox, { sandbox = { stop_timeout_ms = bad } })
      assert.is_false(ok)
      assert.equal("orket.lua: sandbox.stop_timeout_ms: must be an integer from 1000 to 300000 (got " .. tostring(bad)
        .. ")", e.settings_error)
    end
    -- a deploy waits the longer for the sandbox it replaces, a detached up for the deploy
    local service = require "orket.sandboxes.service"
    assert.equal(service.REPLACE_WAIT_MS, service.replace_wait_ms(10000))
    assert.equal(service.REPLACE_WAIT_MS, service.replace_wait_ms(2500))
    assert.equal(service.REPLACE_WAIT_MS + 50000, service.replace_wait_ms(60000))
    -- and the deploy behind it for that one
    assert.equal(service.DEPLOY_LOCK_WAIT_MS, service.deploy_lock_wait_ms(10000))
    assert.equal(service.DEPLOY_LOCK_WAIT_MS + 290000, service.deploy_lock_wait_ms(300000))
  end)

  it("removes the ended folders past the newest keep_ended, never a live one's nor one its row does not name", function()
    local db = B.open_store()
    local dir = H.tmpdir()
    local e1, e2 = sandbox(db, dir, "exited"), sandbox(db, dir, "stopped")
    local live = sandbox(db, dir, "healthy")
    local e3, e4, e5 = sandbox(db, dir, "exited"), sandbox(db, dir, "stopped"), sandbox(db, dir, "exited")
    -- a folder no row names: the store lost it (restored), or another Orket's
    assert.equal(0, (H.sh("mkdir -p " .. H.quote(home(dir, 900)))))
    -- a row of another folder sharing the store, whose id has a folder here too
    local theirs = sandbox(db, dir, "exited", { folder = H.tmpdir() })
    local res = assert(service.prune(db, dir, 2))
    -- the newest two ended (theirs is not this folder's) stay; the older ones go, newest first
    assert.same({ e3, e2, e1 }, res.removed)
    assert.same({}, res.kept)
    assert.equal(5, res.ended)
    for _, id in ipairs { e1, e2, e3 } do assert.is_false(there(home(dir, id)), "folder " .. id) end
    for _, id in ipairs { live, e4, e5, 900, theirs } do assert.is_true(there(home(dir, id)), "folder " .. id) end
    -- the rows stay; the highest id removed is kept, and no start gives it again
    assert.equal("exited", ops.get(db, e1).status)
    assert.equal(tostring(e3) .. "\n", H.read(real(dir) .. "/.orket/sandboxes/" .. service.PRUNED))
    assert.equal(e3, service.pruned_upto(real(dir)))
    os.execute("rm -rf " .. H.quote(real(dir) .. "/.orket/sandboxes/") .. "[0-9]*")
    assert.equal(e3, service.highest_dir(real(dir)))
    db:close()
  end)

  it("keeps none with keep_ended = 0, but a live one's, and says nothing again once done", function()
    local db = B.open_store()
    local dir = H.tmpdir()
    local a, live, b = sandbox(db, dir, "exited"), sandbox(db, dir, "starting"), sandbox(db, dir, "stopped")
    assert.same({ b, a }, assert(service.prune(db, dir, 0)).removed)
    assert.is_true(there(home(dir, live)))
    local again = assert(service.prune(db, dir, 0))
    assert.same({ {}, {}, 0 }, { again.removed, again.kept, again.ended })
    db:close()
  end)

  it("keeps a folder whose owner's lock is held, one holding databases, and another machine's", function()
    local db = B.open_store()
    local dir = H.tmpdir()
    local locked = sandbox(db, dir, "stopped", { pid = ME })
    local lk = assert(lockfile.acquire(home(dir, locked) .. "/" .. service.OWNER_LOCK))
    local with_db = sandbox(db, dir, "exited")
    assert.equal(0, (H.sh("mkdir -p " .. H.quote(home(dir, with_db) .. "/tmp/db/pg"))))
    local far = sandbox(db, dir, "exited", { machine = OTHER_MACHINE })
    local newest = sandbox(db, dir, "exited")
    local res = assert(service.prune(db, dir, 1))
    assert.same({}, res.removed)
    local why = {}
    for _, k in ipairs(res.kept) do why[k.id] = k.why end
    assert.equal("its owner's lock is held", why[locked])
    assert.equal("its databases are still in its folder", why[with_db])
    assert.matches("its owner ran on another machine (retention-other-host)", why[far], 1, true)
    assert.is_nil(why[newest])
    for _, id in ipairs { locked, with_db, far, newest } do assert.is_true(there(home(dir, id))) end
    -- its owner let go: the next prune removes it
    lk:release()
    assert.same({ locked }, assert(service.prune(db, dir, 1)).removed)
    assert.is_false(there(home(dir, locked)))
    db:close()
  end)

  it("does nothing while another prune runs in the folder", function()
    local db = B.open_store()
    local dir = H.tmpdir()
    local old = sandbox(db, dir, "exited")
    sandbox(db, dir, "exited")
    local lk = assert(lockfile.acquire(real(dir) .. "/.orket/sandboxes/" .. service.PRUNE_LOCK))
    local res = assert(service.prune(db, dir, 1))
    assert.is_true(res.busy)
    assert.is_true(there(home(dir, old)))
    lk:release()
    db:close()
  end)

  -- the CLI and the API on a project: prune says what it did; logs of a removed one says why
  it("orket sandbox prune and logs, and GET /v1/sandboxes/ID/logs, say a removed log was removed by retention", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir)).status)
    B.project(dir)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\nsandbox = { keep_ended = 1 }\n")
    local db = assert(require("orket.project").open_store(dir, false))
    local old, mid = sandbox(db, dir, "exited"), sandbox(db, dir, "stopped")
    -- a live one, its owner (this process) holding its lock: the CLI's reconcile keeps it live
    local live = sandbox(db, dir, "healthy", { pid = ME })
    local lk = assert(lockfile.acquire(home(dir, live) .. "/" .. service.OWNER_LOCK))
    local new = sandbox(db, dir, "exited")
    db:close()
    local r = H.orket("sandbox prune", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal(string.format("removed the folders of sandboxes %d, %d (3 ended in this folder; sandbox.keep_ended = 1 "
      .. "keeps the newest 1)\n", mid, old), r.stdout)
    assert.is_true(there(home(dir, live)))
    r = H.orket("sandbox logs " .. old, { cwd = dir })
    assert.equal(1, r.status)
    assert.equal(string.format("orket: sandbox %d's log was removed by retention: orket.lua's sandbox.keep_ended keeps "
      .. "the folders (and logs) of the newest ended sandboxes only, and this one's, %s, was removed\n", old,
      home(dir, old)), r.stderr)
    r = H.orket("sandbox logs " .. new, { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("the log of sandbox " .. new .. "\n", r.stdout)
    -- the API: the same words, as a 404 of the log; a kept log as before
    local F = require "tests.fixtures"
    db = assert(require("orket.project").open_store(dir, false))
    local token = "ort_" .. string.rep("ab", 16)
    local srv, stop = F.served { dir = real(dir), db = db, host = "127.0.0.1", port = 0, local_token = token }
    local function get(path)
      local st, body = H.fetch { url = "http://127.0.0.1:" .. srv:port() .. path,
        headers = { "Authorization: Bearer " .. token } }
      return st, cjson.decode(body)
    end
    local st, doc = get("/v1/sandboxes/" .. mid .. "/logs")
    assert.equal(404, st)
    assert.equal("not_found", doc.error.code)
    assert.matches("sandbox " .. mid .. "'s log was removed by retention: orket.lua's sandbox.keep_ended", doc.error.message,
      1, true)
    st, doc = get("/v1/sandboxes/" .. mid .. "/logs?follow=1")
    assert.equal(404, st)
    st, doc = get("/v1/sandboxes/" .. new .. "/logs")
    assert.equal(200, st)
    assert.equal("the log of sandbox " .. new .. "\n", doc.log)
    stop()
    lk:release()
  end)

  -- a real start prunes: a deploy is where the folders pile up
  it("is applied when a sandbox starts, its own folder and the newest ended ones kept", function()
    local skip = H.no_node_sandbox()
    if skip then return pending(skip) end
    local mark = "retention" .. math.random(1, 1e9)
    local dir = H.node_project('require("http").createServer((q, s) => s.end("ok"))'
      .. '.listen(+process.env.PORT, process.env.HOST)\n', mark)
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua"):gsub("\nsandbox = { ", "\nsandbox = { keep_ended = 1, ")))
    local db = assert(require("orket.project").open_store(dir, false))
    local old, newest = sandbox(db, dir, "exited"), sandbox(db, dir, "stopped")
    db:close()
    local r = H.orket("sandbox up --detach", { cwd = dir })
    local id = tonumber(r.stdout:match("sandbox (%d+) is healthy"))
    local ok, err = pcall(function()
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.is_false(there(home(dir, old)))
      assert.is_true(there(home(dir, newest)))
      assert.is_true(there(home(dir, id) .. "/app.log"))
    end)
    H.orket("sandbox stop " .. tostring(id), { cwd = dir })
    H.wait_for(function()
      local ps = io.popen("ps -eo args=")
      local all = ps:read("a")
      ps:close()
      return not all:find(mark, 1, true)
    end, "the sandbox's processes to end")
    H.wait_for(function() return id == nil or lockfile.probe(home(dir, id) .. "/" .. service.OWNER_LOCK) == false end,
      "the sandbox's owner to end")
    if not ok then error(err, 0) end
  end)
end)

-- Every detached owner appends its own output to .orket/sandboxes/owner.log: past
-- OWNER_LOG_MAX the next start moves it to owner.log.1 (the one before dropped).
describe("the detached owners' output", function()
  after_each(H.cleanup)

  it("is moved to owner.log.1 once it holds OWNER_LOG_MAX, the older .1 dropped", function()
    local dir = H.tmpdir()
    local function write(name, text)
      local f = assert(io.open(dir .. "/" .. name, "w"))
      f:write(text)
      f:close()
    end
    local function size(name) local st = uv.fs_stat(dir .. "/" .. name) return st and st.size end
    write("owner.log.1", "oldest\n")
    write("owner.log", string.rep("x", service.OWNER_LOG_MAX - 1))
    local path, fd, st = service.owner_output(dir)
    assert.equal(dir .. "/owner.log", path)
    uv.fs_close(fd)
    assert.equal(service.OWNER_LOG_MAX - 1, st.size) -- not yet full: appended to
    write("owner.log", string.rep("x", service.OWNER_LOG_MAX))
    local _, fd2, st2 = service.owner_output(dir)
    uv.fs_close(fd2)
    assert.equal(0, st2.size)
    assert.equal(0, size("owner.log"))
    assert.equal(service.OWNER_LOG_MAX, size("owner.log.1"))
  end)

  it("is found again by its inode, at its path or moved to .1, and not taken for another's", function()
    local dir = H.tmpdir()
    local path, fd, st = service.owner_output(dir)
    uv.fs_write(fd, "mine\n")
    uv.fs_close(fd)
    local function text(f) if not f then return nil end local t = f:read("a") f:close() return t end
    assert.equal("mine\n", text(service.owner_file(path, st.ino)))
    assert(os.rename(path, path .. ".1")) -- another owner's start moved it
    local f2 = assert(io.open(path, "w"))
    f2:write("theirs\n")
    f2:close()
    assert.equal("mine\n", text(service.owner_file(path, st.ino)))
    assert(os.remove(path .. ".1"))
    assert.is_nil(service.owner_file(path, st.ino)) -- moved on twice: none, not theirs
  end)
end)
