-- orket worker end to end: two workers given the same --name (as HOST:PID alike in two
-- containers would be) are two lease holders: every card is worked once and every tool
-- effect applied once; and the run the workers share ends once in the journal (one
-- run_end, written by the worker that concluded it first), whatever the number of workers.
-- On PostgreSQL (tests/with_pg.lua) the project names a fresh database of the test server.
local H = require "tests.helpers"
local cjson = require "cjson"
local backends = require "tests.backends"
local project_mod = require "orket.project"
local WP = require "tests.worker_project"

local N = 12

-- `orket worker --drain --name NAME` in dir in the background -> pid
local function start_worker(dir, k, name)
  local p = io.popen(string.format("cd %s && exec %s worker --start W --drain --lease-ms 2000 --name %s "
    .. ">>%s/w%d.out 2>>%s/w%d.err & echo $!", H.quote(dir), H.quote(H.BIN), name, H.quote(dir), k, H.quote(dir), k))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

local function events_of(text, kind)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and type(ev) == "table" and ev.type == kind then out[#out + 1] = ev end
  end
  return out
end

describe("orket worker", function()
  local fake
  setup(function() fake = require("tests.fake_server").start() end)
  teardown(function()
    H.kill_servers()
    if fake then fake.stop() end
    H.cleanup()
  end)

  it("two workers of one name work each card once, and their run ends once", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = N } }, slow = 100,
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local pids = { start_worker(dir, 1, "same"), start_worker(dir, 2, "same") }
    H.wait_for(function() return not H.alive(pids[1]) and not H.alive(pids[2]) end, "the workers to end", 6000)
    for k = 1, 2 do assert.equal("", H.read(dir .. "/w" .. k .. ".err")) end
    for i = 1, N do
      local id = "W-" .. i
      local text = H.read(dir .. "/workspace/" .. id .. ".line")
      assert(text == id .. "\n", id .. ".line holds " .. string.format("%q", tostring(text)))
    end
    -- both worked: the cards were shared, not each worked twice
    local turns = { 0, 0 }
    for k = 1, 2 do turns[k] = #events_of(H.read(dir .. "/w" .. k .. ".out"), "turn_end") end
    assert.is_true(turns[1] > 0 and turns[2] > 0, "turns " .. turns[1] .. " and " .. turns[2])
    assert.equal(2 * N, turns[1] + turns[2])
    -- one run_end in the journal; each worker says the end, the later one as another's
    local db = assert(project_mod.open_store(dir, false))
    local ends = {}
    for _, e in ipairs(db:events {}) do
      if e.kind == "run_end" then ends[#ends + 1] = e.data.status end
    end
    db:close()
    assert.same({ "done" }, ends)
    local said, by_other = 0, 0
    for k = 1, 2 do
      for _, ev in ipairs(events_of(H.read(dir .. "/w" .. k .. ".out"), "run_end")) do
        said = said + 1
        if ev.ended_by_other then by_other = by_other + 1 end
      end
    end
    assert.equal(2, said)
    assert.equal(1, by_other)
  end)

  -- A run left to the workers holds no lease until a worker claims one of its cards: a
  -- worker started for a card of it made a second run working that card beside it.
  it("refuses a --start whose cards overlap a run left to the workers", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = 2 } },
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    db:close()
    local r = H.orket("worker --start W-1 --drain --lease-ms 2000 --name one", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches("run " .. id .. " (W) is left to the workers and not finished", r.stderr, 1, true)
    db = assert(project_mod.open_store(dir, false))
    local n = 0
    for _, e in ipairs(db:events {}) do
      if e.kind == "run_start" then n = n + 1 end
    end
    db:close()
    assert.equal(1, n)
  end)

  -- `orket resume` asked only whether a live run overlapped: an interrupted run of a card
  -- of a run left to the workers (which holds no lease until a worker claims a card) was
  -- worked beside it, and a run still left to the workers was worked in the resuming
  -- process as the workers took it up. Both are refused, naming the run and how to end it.
  it("refuses `orket resume` beside a run left to the workers, and of one still left to them", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = 2 } },
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local db = assert(project_mod.open_store(dir, true))
    local old = assert(db:record_run { target = "W-1", kind = "issue" })
    assert(db:finish_run(old, "interrupted")) -- no turn begun: nothing half done
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    db:close()
    for _, rid in ipairs { old, id } do
      local r = H.orket("resume " .. rid .. " --json", { cwd = dir })
      assert.equal(75, r.status, r.stderr) -- busy: the workers have it (ERUNGOING)
      assert.matches('"code":"ERUNGOING"', r.stdout, 1, true)
      assert.matches("run " .. id .. " (W) is left to the workers and not finished", r.stderr, 1, true)
      assert.matches("'orket runs stop " .. id .. "'", r.stderr, 1, true)
      -- and what then carries it on, here with the workers (none left, say: its worker stopped)
      assert.matches("after which 'orket resume " .. id .. "' works it here with the workers", r.stderr, 1, true)
    end
    db = assert(project_mod.open_store(dir, false))
    assert.equal("interrupted", db:row("SELECT status FROM runs WHERE id = ?", old).status)
    assert.equal("running", db:row("SELECT status FROM runs WHERE id = ?", id).status)
    assert.equal(0, db:row("SELECT count(*) AS n FROM turns").n)
    assert.is_nil(next(require("orket.engine.runlease").holders(db))) -- no lease left taken
    db:close()
    -- ended, `orket resume` hands the run back to the workers and works it as one of them
    local r = H.orket("runs stop " .. id, { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("resume " .. id .. " --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.truthy(r.stdout:find('"worker_start"', 1, true), "worked through the worker path")
  end)

  -- A run left to the workers that no worker ever works (scaled to 0, gone) kept out every
  -- overlapping run for ever, and nothing ended it: `orket runs stop RUN` does, unless a
  -- worker works it now (it is named).
  it("ends a run left to the workers that none works with `orket runs stop`, after which `orket run` goes", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = 2 } },
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    db:close()
    -- the refusal names the run and how to end it
    local r = H.orket("run W-1 --json", { cwd = dir })
    assert.equal(75, r.status, r.stderr) -- busy: the workers have it (ERUNGOING)
    assert.matches("run " .. id .. " (W) is left to the workers and not finished", r.stderr, 1, true)
    assert.matches("'orket runs stop " .. id .. "' or POST /v1/runs/" .. id .. "/stop", r.stderr, 1, true)
    -- bad words, named
    for _, c in ipairs { { "runs stop", "runs stop needs one RUN" }, { "runs stop x1", "not 'x1'" },
      { "runs stop 1 2", "runs stop needs one RUN" }, { "runs halt 1", "unknown argument 'halt' (runs takes stop RUN" },
      { "runs stop " .. id .. " --json", "--json goes with the list" } } do
      local u = H.orket(c[1], { cwd = dir })
      assert.equal(2, u.status, c[1])
      assert.matches(c[2], u.stderr, 1, true)
      assert.matches("usage: orket runs", u.stderr, 1, true)
    end
    r = H.orket("runs stop 999", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("no run 999", r.stderr, 1, true)
    -- a worker (of another machine: a lease in the store only) works a card of it now
    db = assert(project_mod.open_store(dir, false))
    local ops = require("orket.engine.lease").ops(db)
    assert(db:tx(function()
      return #ops.claim(db, { worker = "far#0123456789abcdef", run = id, ids = { "W-1" }, ttl_ms = 600000 }) == 1
    end))
    r = H.orket("runs stop " .. id, { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches("run " .. id .. " is worked by worker far now (card W-1)", r.stderr, 1, true)
    assert(db:tx(function() return ops.release(db, "far#0123456789abcdef") == 1 end))
    db:close()
    -- a worker of this folder with the run open but no lease works no turn of it (it stops
    -- the run itself once it sees it ended): no obstacle, where an idle worker that its
    -- server starts again when stopped kept the run from being ended
    local claims = require "orket.engine.claims"
    local hold = assert(claims.hold_worker(dir, id))
    r = H.orket("runs stop " .. id, { cwd = dir })
    claims.release_worker(hold)
    assert.equal(0, r.status, r.stderr)
    assert.matches("run " .. id .. " stopped (interrupted)", r.stdout, 1, true)
    db = assert(project_mod.open_store(dir, false))
    assert.equal("interrupted", db:row("SELECT status FROM runs WHERE id = ?", id).status)
    local ends = {}
    for _, e in ipairs(db:events {}) do
      if e.kind == "run_end" and e.run == id then ends[#ends + 1] = e.data.status end
    end
    db:close()
    assert.same({ "interrupted" }, ends)
    -- once more: nothing to end
    r = H.orket("runs stop " .. id, { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("run " .. id .. " is not left to the workers and unfinished", r.stderr, 1, true)
    -- the cards are free again
    r = H.orket("run W-1 --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
  end)

  -- "(run open Ns)" counted from the worker's join (its lock's time), not from the end of
  -- its last card, and read as how long it had been idle: it says what it counts
  it("lists a worker of the folder between cards with how long ago it joined the run", function()
    local uv = require "luv"
    local dir = WP.project(fake.url, { epics = { { id = "W", n = 2 } },
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    db:close()
    -- a worker (this process) that joined 90 s ago and holds no card of it
    local claims = require "orket.engine.claims"
    local hold = assert(claims.hold_worker(dir, id, "quiet#0123456789abcdef"))
    local ago = os.time() - 90
    assert(uv.fs_utime(hold.path, ago, ago))
    local r = H.orket("runs", { cwd = dir })
    claims.release_worker(hold)
    assert.equal(0, r.status, r.stderr)
    local secs = tonumber(r.stdout:match("idle, between cards: quiet %(joined the run (%d+)s ago%)"))
    assert(secs, r.stdout)
    assert.is_true(secs >= 90 and secs < 150, r.stdout)
  end)

  -- The stop of a run a worker works a turn of now is refused naming the worker; stopped as
  -- told (SIGTERM: it leaves the run, releasing its leases), the run is ended.
  it("refuses `orket runs stop` of a run a worker works now, naming it, and ends it once it is stopped", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = N } }, slow = 300,
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local pid = start_worker(dir, 1, "busy")
    H.wait_for(function() return #events_of(H.read(dir .. "/w1.out") or "", "turn_start") > 0 end, "a first turn", 3000)
    local db = assert(project_mod.open_store(dir, false))
    local id = db:row("SELECT id FROM runs WHERE target = 'W'").id
    db:close()
    local r = H.orket("runs stop " .. id, { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches("run " .. id .. " is worked by worker busy now (card W-", r.stderr, 1, true)
    assert.matches("stop that worker (SIGTERM", r.stderr, 1, true)
    os.execute("kill -TERM " .. pid)
    H.wait_for(function() return not H.alive(pid) end, "the worker to end", 3000)
    r = H.orket("runs stop " .. id, { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    db = assert(project_mod.open_store(dir, false))
    assert.equal("interrupted", db:row("SELECT status FROM runs WHERE id = ?", id).status)
    db:close()
  end)

  -- A stop from a process that saw no lease of the worker on the run (another folder's, or
  -- one that read just before the worker claimed a card) ends it in the store: the worker
  -- stops it too at its next look at the runs left to it, where before it worked every
  -- card of the ended run to the end.
  it("stops a run it works once the run is ended interrupted elsewhere", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = N } }, slow = 300,
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local pid = start_worker(dir, 1, "one")
    local db = assert(project_mod.open_store(dir, false))
    H.wait_for(function() return #events_of(H.read(dir .. "/w1.out") or "", "turn_end") > 0 end, "a first turn", 3000)
    local id = db:row("SELECT id FROM runs WHERE target = 'W'").id
    assert.is_true(db:finish_run(id, "interrupted", { running = true }))
    db:close()
    H.wait_for(function() return not H.alive(pid) end, "the worker to end", 3000)
    assert.equal("", H.read(dir .. "/w1.err"))
    local ends = events_of(H.read(dir .. "/w1.out"), "run_end")
    assert.equal(1, #ends)
    assert.equal("interrupted", ends[1].status)
    local worked = 0
    for i = 1, N do
      if H.read(dir .. "/workspace/W-" .. i .. ".line") then worked = worked + 1 end
    end
    assert.is_true(worked < N, worked .. " of " .. N .. " cards worked")
  end)

  -- A run stopped and resumed at once (`orket runs stop N`, then `orket resume N`, both
  -- within one of the worker's looks at the runs left to it) never reads interrupted to the
  -- worker: before, it went on with the open the stop had ended. It stops that open (its
  -- run_end says interrupted), joins the resumed run afresh and works it to the end, each
  -- card's effect applied once.
  it("stops its open of a run stopped and resumed between two looks, and joins the resumed run", function()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = N } }, slow = 300,
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local pid = start_worker(dir, 1, "one")
    local db = assert(project_mod.open_store(dir, false))
    H.wait_for(function() return #events_of(H.read(dir .. "/w1.out") or "", "turn_end") > 0 end, "a first turn", 3000)
    local id = db:row("SELECT id FROM runs WHERE target = 'W'").id
    -- the stop's and the resume's writes, as `orket runs stop` (no lease held between its
    -- turns: read before the worker claimed its next card) and `orket resume` make them
    assert.is_true(db:finish_run(id, "interrupted", { running = true }))
    assert.is_true(require("orket.engine.lease").ops(db).requeue(db, id))
    H.wait_for(function() return not H.alive(pid) end, "the worker to end", 8000)
    assert.equal("", H.read(dir .. "/w1.err"))
    local ends = events_of(H.read(dir .. "/w1.out"), "run_end")
    assert.equal(2, #ends, H.read(dir .. "/w1.out"))
    assert.equal("interrupted", ends[1].status)
    assert.equal("done", ends[2].status)
    assert.equal(2, #events_of(H.read(dir .. "/w1.out"), "run_start"))
    assert.equal("done", db:row("SELECT status FROM runs WHERE id = ?", id).status)
    db:close()
    for i = 1, N do
      assert.equal("W-" .. i .. "\n", H.read(dir .. "/workspace/W-" .. i .. ".line"))
    end
  end)

  -- Workers on other machines share the store, not the folder whose claim section keeps
  -- their --start apart: the store keeps the decision one at a time. Before, two workers
  -- of two folders started with the same --start made two runs of it.
  it("two workers of two folders on one PostgreSQL store started with one --start make one run", function()
    if backends.name() ~= "pg" then
      return pending("PostgreSQL only: a SQLite store lives in its project folder, whose claim section both share")
    end
    local url = backends.fresh_url()
    local dir = WP.project(fake.url, { epics = { { id = "W", n = 3 } }, slow = 50, store_url = url })
    local dir2 = H.tmpdir()
    os.execute(string.format("cp -R %s/. %s && rm -rf %s/.orket/runs", H.quote(dir), H.quote(dir2), H.quote(dir2)))
    -- the journal's lock held here: each worker asks and then waits at its first write, so
    -- both have asked before either records a run
    local c = assert(require("orket.c.pg").connect(url))
    finally(function() c:close() end)
    local LOCK = require("orket.store.pgevents").LOCK
    assert(c:query("SELECT pg_advisory_lock($1)", LOCK))
    local pids = { start_worker(dir, 1, "one"), start_worker(dir2, 2, "two") }
    H.wait_for(function()
      return H.lock_waiters(c, LOCK) >= 2
    end, "both workers to wait for the journal's lock", 3000)
    assert(c:query("SELECT pg_advisory_unlock($1)", LOCK))
    H.wait_for(function() return not H.alive(pids[1]) and not H.alive(pids[2]) end, "the workers to end", 6000)
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal(1, #runs)
    assert.equal("done", runs[1].status)
  end)
end)
