-- orket worker end to end: a 300-issue epic worked by three workers sharing the project
-- folder and its SQLite store, one of them killed with SIGKILL at random points and
-- started again, several times. Every card ends done exactly once, every tool effect (a
-- project tool appending the card's id to a file of its own) is applied exactly once, and
-- the board and each card's turns are those of a one-worker run of the same epic. On
-- PostgreSQL (tests/with_pg.lua) each project names a fresh database of the test server.
local H = require "tests.helpers"
local cjson = require "cjson"
local backends = require "tests.backends"
local project_mod = require "orket.project"
local leases = require "orket.store.leases"

local N = tonumber(os.getenv("ORKET_WORKERS_TEST_ISSUES")) or 300
local LEASE_MS = 2500 -- a killed worker's cards are taken over once this passes
local KILLS = 4

local WP = require "tests.worker_project"

local function project(url, n, slow)
  return WP.project(url, { epics = { { id = "W", n = n or N } }, slow = slow,
    store_url = backends.name() == "pg" and backends.fresh_url() or nil })
end

-- Starts `orket worker` in dir in the background -> pid
-- (first: it leaves the run of W to the workers, or joins the one another worker started)
local function start_worker(dir, k, first)
  return WP.start_worker(dir, k, { start = first and "W" or nil, lease_ms = LEASE_MS })
end

-- (a zombie is not alive: a worker whose parent died is reparented, and the new parent may
-- be slow to reap it, or never do)
local alive = H.alive

-- What must match a one-worker run: each card's status, worker seat and retries, and its
-- recorded turns (a card taken over resumes its open turn, so it has no extra one), and how
-- often it was moved to done.
local board_state = WP.board_state

local function lines_ok(dir)
  for i = 1, N do
    local id = "W-" .. i
    local text = H.read(dir .. "/workspace/" .. id .. ".line")
    assert(text == id .. "\n", id .. ".line holds " .. string.format("%q", tostring(text)))
  end
end

describe("orket worker", function()
  local fake
  setup(function() fake = require("tests.fake_server").start() end)
  teardown(function()
    H.kill_servers()
    if fake then fake.stop() end
    H.cleanup()
  end)

  it("finishes a 300-issue epic with three workers, one killed at random points, as one worker would", function()
    local solo, shared = project(fake.url), project(fake.url)
    -- the one-worker run goes meanwhile
    local solo_pid = start_worker(solo, 0, true)
    local pids = {}
    for k = 1, 3 do pids[k] = start_worker(shared, k, true) end
    math.randomseed(os.time())
    -- Kill points follow the shared run's progress (its appended lines), not the clock, so
    -- every kill lands mid-run however fast or slow the machine is: the k-th kill once about
    -- k/(KILLS+1) of the epic is worked, give or take a few cards.
    local function worked()
      local p = io.popen("ls -1 " .. H.quote(shared .. "/workspace") .. " 2>/dev/null")
      local n = 0
      for name in p:lines() do if name:match("%.line$") then n = n + 1 end end
      p:close()
      return n
    end
    local marks = {}
    for k = 1, KILLS do marks[k] = math.floor(N * k / (KILLS + 1)) + math.random(-3, 3) end
    local kills, waited = 0, 0
    local deadline = 600000
    while waited < deadline do
      local wait = math.random(20, 80)
      orket.sleep(wait)
      waited = waited + wait
      local any = false
      for k = 1, 3 do any = any or alive(pids[k]) end
      if not any then break end
      if kills < KILLS and worked() >= marks[kills + 1] then
        local k = math.random(1, 3)
        if alive(pids[k]) then
          os.execute("kill -9 " .. pids[k])
          kills = kills + 1
          pids[k] = start_worker(shared, k)
        end
      end
    end
    while alive(solo_pid) and waited < deadline do
      orket.sleep(200)
      waited = waited + 200
    end
    for k = 1, 3 do if alive(pids[k]) then os.execute("kill -9 " .. pids[k]) end end
    if alive(solo_pid) then os.execute("kill -9 " .. solo_pid) end
    assert(waited < deadline, "the workers did not finish")
    if kills ~= KILLS then
      -- the workers ended before every kill: say how the run ended and what they printed
      local why = H.orket("runs --json", { cwd = shared }).stdout
      for k = 1, 3 do why = why .. "\nw" .. k .. ".err: " .. (H.read(shared .. "/w" .. k .. ".err") or "") end
      error(string.format("%d kills of %d before the workers ended\n%s", kills, KILLS, why))
    end
    local want, got = board_state(solo), board_state(shared)
    local n = 0
    for id, c in pairs(want) do
      n = n + 1
      assert.equal("done", c.status, id)
      assert.equal(1, c.done, id)
      local why = getmetatable(got[id] or {})
      if not (got[id] and require("luassert.util").deepcompare(c, got[id], true)) then
        -- how the shared run ended, and what each worker said last
        local tail = "\nruns: " .. H.orket("runs --json", { cwd = shared }).stdout
        for k = 1, 3 do
          local out = H.read(shared .. "/w" .. k .. ".out") or ""
          local last = {}
          for line in out:gmatch("[^\n]+") do
            if not line:find('"type":"tool"', 1, true) and not line:find('"type":"model"', 1, true)
                and not line:find('"type":"turn_', 1, true) then
              last[#last + 1] = line
              if #last > 12 then table.remove(last, 1) end
            end
          end
          tail = tail .. "\nw" .. k .. ": " .. table.concat(last, "\n  ") .. "\n  err: " .. (H.read(shared .. "/w" .. k .. ".err") or "")
        end
        assert.same(c, got[id], id .. (why and ("\n" .. table.concat(why.lines, "\n")) or "") .. tail)
      end
    end
    assert.equal(N, n)
    lines_ok(solo)
    lines_ok(shared)
    -- the kills landed while cards were held: some were taken over from a dead worker
    local out = ""
    for k = 1, 3 do out = out .. (H.read(shared .. "/w" .. k .. ".out") or "") end
    assert.matches('"type":"lease_taken_over"', out)
    local runs = cjson.decode(H.orket("runs --json", { cwd = shared }).stdout)
    assert.equal(1, #runs.runs)
    assert.equal("done", runs.runs[1].status)
  end)

  it("refuses bad arguments and an unknown target by name", function()
    local dir = project(fake.url, 3)
    local r = H.orket("worker --lease-ms 5", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("%-%-lease%-ms needs an integer of at least 30", r.stderr)
    r = H.orket("worker a b", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("give one project directory", r.stderr)
    r = H.orket("worker --start NOPE --drain", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches('no card "NOPE"', r.stderr)
  end)

  it("releases a card's lease in the commit that records its last turn's end", function()
    local dir = project(fake.url, 6, 50)
    local pid = start_worker(dir, 1, true)
    local db = assert(project_mod.open_store(dir, false))
    -- no snapshot of the store shows a card done and still leased
    local looks = 0
    while alive(pid) do
      local held = assert(db:read(function()
        local out = {}
        local live = {}
        for _, l in ipairs(leases.live(db)) do live[l.card] = true end
        for _, c in ipairs(require("orket.board").open(db):list { type = "issue" }) do
          if c.status == "done" and live[c.id] then out[#out + 1] = c.id end
        end
        return out
      end))
      assert.same({}, held)
      looks = looks + 1
      orket.sleep(5)
    end
    db:close()
    assert.is_true(looks > 5)
    assert.equal("done", cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs[1].status)
    assert.not_matches('"type":"lease_lost"', H.read(dir .. "/w1.out"))
  end)

  it("waits for a card whose lease runs out while it looks, and takes it over", function()
    -- A dead worker's lease on W-1 runs out between this worker's claims and its question
    -- whether other workers still hold cards. Both answers must come from one moment: else
    -- the lease reads as neither claimable nor held, and the run ends stalled with W-1
    -- undone. The driver runs the real worker command, in `orket lua`, with the store's
    -- claim wrapped: the first claim plants the dead worker's lease; once W-1 is all that
    -- is left, the lease is renewed to run out a millisecond after the claim's transaction
    -- time, and the round takes a little longer than that.
    local dir = project(fake.url, 2)
    H.write(dir .. "/drive.lua", [[
local uv = require "luv"
local leases = require "orket.store.leases"
local claim, planted, expired = leases.claim, false, false
leases.claim = function(db, o)
  -- the dead worker's lease on W-1, through the store's own operations (either backend)
  if not planted then
    planted = true
    claim(db, { worker = "dead", run = o.run, ids = { "W-1" }, ttl_ms = 60000 })
  end
  local got = claim(db, o)
  -- (limit 2, the worker's concurrency: no turn is in flight)
  if not expired and #got == 0 and o.limit == 2
      and db:row("SELECT COUNT(*) AS n FROM cards WHERE type = 'issue' AND status <> 'done'").n == 1 then
    expired = true
    leases.renew(db, "dead", 1) -- to 1 ms after the transaction's time
    io.stderr:write("the lease ran out in the round\n")
    uv.sleep(30)
  end
  return got
end
-- (the command runs its loop once more at its end: here the script's loop does that)
local rt = require "orket.c.runtime"
local run = rt.run
rt.run = function(mode, ...) if mode ~= "nowait" then return run(mode, ...) end end
os.exit(require("orket.cli").main { [0] = "orket", "worker", "--start", "W", "--drain", "--lease-ms", "2000",
  "--concurrency", "2" })
]])
    local r = H.orket("lua drive.lua", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("the lease ran out in the round", r.stderr)
    assert.matches('"card":"W%-1","from":"dead","run_id":1,"type":"lease_taken_over"', r.stdout)
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout)
    assert.equal("done", runs.runs[1].status)
    local st = board_state(dir)
    assert.equal("done", st["W-1"].status)
    assert.equal("done", st["W-2"].status)
    assert.equal("W-1\n", H.read(dir .. "/workspace/W-1.line"))
  end)

  -- SIGHUP (its terminal closed) stops it as SIGTERM does (docs/workers.md)
  for _, sig in ipairs { "TERM", "HUP" } do
    it("stops on SIG" .. sig .. " releasing its leases, and leaves the run to the other workers", function()
      local dir = project(fake.url, 10, 300)
      local pid = start_worker(dir, 1, true)
      local db = assert(project_mod.open_store(dir, false))
      H.wait_for(function()
        orket.sleep(20)
        return #leases.live(db) > 0
      end, "a lease", 1000)
      os.execute("kill -" .. sig .. " " .. pid)
      H.wait_for(function() orket.sleep(20) return not alive(pid) end, "the worker to stop", 1000)
      assert.same({}, leases.live(db))
      assert.equal("running", require("orket.store.runs").get(db, 1).status)
      db:close()
      local out = H.read(dir .. "/w1.out")
      assert.matches('"type":"worker_end"', out)
      assert.equal("", H.read(dir .. "/w1.err") or "")
      -- a worker started later finishes the run
      local r = H.orket("worker --drain --lease-ms 2500", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      assert.equal("done", cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs[1].status)
    end)
  end

  -- A run left to the workers, ended (orket runs stop, a full disk) and carried on with
  -- `orket resume`, was worked in the resuming process alone and stayed ended in the store:
  -- the idle workers never joined it, and when that process died its cards were left for
  -- good. It is left to the workers again, as a start is: they join it, and take it over.
  it("hands a resumed run back to the workers: an idle one joins it, and finishes it when the resume is killed", function()
    local n = 8
    local dir = project(fake.url, n, 150)
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    db:close()
    assert.equal(0, H.orket("runs stop " .. id, { cwd = dir }).status)
    local function bg(cmd, out)
      local p = io.popen(string.format("cd %s && exec %s %s >%s/%s.out 2>%s/%s.err & echo $!", H.quote(dir),
        H.quote(H.BIN), cmd, H.quote(dir), out, H.quote(dir), out))
      local pid = tonumber(p:read("l"))
      p:close()
      return pid
    end
    local idle = bg("worker --lease-ms " .. LEASE_MS .. " --name idle", "idle")
    local res
    -- (one finally: a second one replaces the first)
    finally(function() os.execute(string.format("kill -KILL %d %s 2>/dev/null", idle, res or "")) end)
    H.wait_for(function() return (H.read(dir .. "/idle.out") or ""):find('"worker_start"', 1, true) end, "the idle worker", 300)
    res = bg("resume " .. id .. " --concurrency 1", "res")
    local function turns(name)
      local k = 0
      for line in (H.read(dir .. "/" .. name .. ".out") or ""):gmatch("[^\n]+") do
        local ok, ev = pcall(cjson.decode, line)
        if ok and type(ev) == "table" and ev.type == "turn_start" and ev.run_id == id then k = k + 1 end
      end
      return k
    end
    -- the run is running for every worker again, and the idle one works it beside the resume
    H.wait_for(function() orket.sleep(20) return turns("res") > 0 and turns("idle") > 0 end, "both to work the run", 800)
    assert.equal("", H.read(dir .. "/res.err") or "")
    -- the resuming process killed mid-run: the idle worker takes its cards over and ends it
    os.execute("kill -KILL " .. res)
    H.wait_for(function()
      orket.sleep(50)
      local dbr = assert(project_mod.open_store(dir, false))
      local st = require("orket.store.runs").get(dbr, id).status
      dbr:close()
      return st == "done"
    end, "the run to end done", 2000)
    for i = 1, n do
      local card = "W-" .. i
      assert.equal(card .. "\n", H.read(dir .. "/workspace/" .. card .. ".line"), card .. "'s effect")
    end
    db = assert(project_mod.open_store(dir, false))
    local ends = {}
    for _, e in ipairs(db:events {}) do
      if e.kind == "run_end" and e.run == id then ends[#ends + 1] = e.data.status end
    end
    assert.same({}, leases.live(db))
    db:close()
    assert.same({ "interrupted", "done" }, ends)
    -- a run that is done is not resumed
    local r = H.orket("worker --resume " .. id .. " --drain", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("run " .. id .. " is done; nothing to resume", r.stderr, 1, true)
  end)

  -- `orket resume RUN` of a run left to the workers ran a worker with --drain: it worked
  -- every run left to the workers, not RUN alone, and exited only once none was left.
  it("resumes a run left to the workers alone: another run left to them stays untouched", function()
    local dir = WP.project(fake.url, { epics = { { id = "A", n = 3 }, { id = "B", n = 3 } },
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    local db = assert(project_mod.open_store(dir, true))
    local a = assert(db:record_run { target = "A", kind = "epic", data = { workers = true } })
    db:close()
    assert.equal(0, H.orket("runs stop " .. a, { cwd = dir }).status)
    db = assert(project_mod.open_store(dir, false))
    local b = assert(db:record_run { target = "B", kind = "epic", data = { workers = true } })
    db:close()
    local r = H.orket("resume " .. a .. " --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local turns = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.type == "turn_start" then turns[ev.run_id] = (turns[ev.run_id] or 0) + 1 end
    end
    assert.is_true((turns[a] or 0) > 0)
    assert.is_nil(turns[b])
    db = assert(project_mod.open_store(dir, false))
    local store_runs = require "orket.store.runs"
    assert.equal("done", store_runs.get(db, a).status)
    assert.equal("running", store_runs.get(db, b).status)
    for _, e in ipairs(db:events {}) do assert.is_false(e.run == b and e.kind == "turn_start", "a turn of run " .. b) end
    db:close()
  end)

  -- On a terminal the resume of a run left to the workers printed the worker's JSON Lines,
  -- and Ctrl-C left the run running with no worker, its cards held, nothing said.
  it("resumes a run left to the workers on a terminal with the live view; Ctrl-C ends it, says how to continue, exit 130", function()
    local PTY = H.BIN:gsub("orket$", "ptydrive")
    local dir = project(fake.url, 4, 300)
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    db:close()
    assert.equal(0, H.orket("runs stop " .. id, { cwd = dir }).status)
    local function pty(args, steps)
      H.write(dir .. "/steps", table.concat(steps, "\n") .. "\n")
      local p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s %s <steps 2>&1",
        H.quote(dir), H.quote(PTY), H.quote(H.BIN), args))
      local out = p:read("a")
      p:close()
      return out
    end
    local out = pty("resume " .. id .. " --concurrency 1", { "expect W-1", "keys \\x03",
      "expect continue with: ", "expect resume " .. id })
    assert.matches("%[ptydrive: FAILED, exit 130%]", out)
    assert.is_nil(out:find('"type"', 1, true), "no JSON Lines on a terminal")
    assert.matches("run " .. id .. " W interrupted", out, 1, true)
    db = assert(project_mod.open_store(dir, false))
    assert.equal("interrupted", require("orket.store.runs").get(db, id).status)
    assert.same({}, leases.live(db))
    db:close()
    -- carried on as the hint says, to its end and its summary
    out = pty("resume " .. id, { "expect run " .. id .. " W done", "expect cards (4): done 4" })
    assert.matches("%[ptydrive: ok, exit 0%]", out)
  end)

  it("leaves a resumed run with the workers on Ctrl-C when another worker works it now, and says so", function()
    local PTY = H.BIN:gsub("orket$", "ptydrive")
    local n = 12
    local dir = project(fake.url, n, 300)
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    db:close()
    assert.equal(0, H.orket("runs stop " .. id, { cwd = dir }).status)
    local p = io.popen(string.format("cd %s && exec %s worker --lease-ms %d --name idle >idle.out 2>idle.err & echo $!",
      H.quote(dir), H.quote(H.BIN), LEASE_MS))
    local idle = tonumber(p:read("l"))
    p:close()
    finally(function() os.execute(string.format("kill -KILL %d 2>/dev/null", idle)) end)
    H.wait_for(function() return (H.read(dir .. "/idle.out") or ""):find('"worker_start"', 1, true) end, "the idle worker", 300)
    H.write(dir .. "/steps", "expect W-\nsleep 1500\nkeys \\x03\nexpect is left to the workers\n")
    p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s resume %d --concurrency 1 <steps 2>&1",
      H.quote(dir), H.quote(PTY), H.quote(H.BIN), id))
    local out = p:read("a")
    p:close()
    assert.matches("%[ptydrive: FAILED, exit 130%]", out)
    assert.matches("worked by worker idle", out, 1, true)
    assert.matches("orket runs stop " .. id, out, 1, true)
    -- the run stays with the workers: the idle one ends it
    H.wait_for(function()
      orket.sleep(50)
      local dbr = assert(project_mod.open_store(dir, false))
      local st = require("orket.store.runs").get(dbr, id).status
      dbr:close()
      return st == "done"
    end, "the run to end done", 2000)
  end)

  it("ends a resumed run left to the workers on SIGINT off a terminal too, saying how to continue, exit 130", function()
    local dir = project(fake.url, 4, 300)
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    db:close()
    assert.equal(0, H.orket("runs stop " .. id, { cwd = dir }).status)
    os.execute(string.format("cd %s && (%s resume %d --concurrency 1 >res.out 2>res.err & echo $! >res.pid; wait $!; echo $? >res.rc) &",
      H.quote(dir), H.quote(H.BIN), id))
    local pid = H.wait_for(function() return tonumber((H.read(dir .. "/res.pid") or ""):match("%d+")) end, "the pid")
    finally(function() os.execute(string.format("kill -KILL %d 2>/dev/null", pid)) end)
    H.wait_for(function() orket.sleep(20) return (H.read(dir .. "/res.out") or ""):find('"turn_start"', 1, true) end, "a turn", 800)
    os.execute("kill -INT " .. pid)
    local rc = H.wait_for(function() orket.sleep(20) return tonumber((H.read(dir .. "/res.rc") or ""):match("%d+")) end, "its exit", 800)
    assert.equal(130, rc)
    assert.matches("run " .. id .. " interrupted; continue with: .*resume " .. id, H.read(dir .. "/res.err"))
    db = assert(project_mod.open_store(dir, false))
    assert.equal("interrupted", require("orket.store.runs").get(db, id).status)
    db:close()
  end)

  -- `orket runs` said a run was running but not which worker worked which card: an operator
  -- with several workers (some on other machines) could not tell who held what.
  it("orket runs names the cards workers hold now and the worker holding each", function()
    local dir = project(fake.url, 2)
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    local ops = require("orket.engine.lease").ops(db)
    assert(db:tx(function()
      return #ops.claim(db, { worker = "far#0123456789abcdef", run = id, ids = { "W-2" }, ttl_ms = 600000 }) == 1
    end))
    local r = H.orket("runs --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local run = cjson.decode(r.stdout).runs[1]
    -- a card of it held: running, not "queued" (no worker has it open and none holds a card)
    assert.equal("running", run.state or run.status)
    assert.equal(1, #run.leases)
    assert.equal("far", run.leases[1].worker)
    assert.equal("W-2", run.leases[1].card)
    assert.is_string(run.leases[1].expires_at)
    r = H.orket("runs", { cwd = dir })
    assert.matches("worked now: W%-2 %(far, lease ends in %d+ min%)", r.stdout)
    -- none held: nothing said
    assert(db:tx(function() return ops.release(db, "far#0123456789abcdef") == 1 end))
    db:close()
    assert.is_nil(cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs[1].leases)
    assert.is_nil(H.orket("runs", { cwd = dir }).stdout:find("worked now", 1, true))
  end)

  -- A worker with a run open and no card of it leased (the others' cards held, or waiting
  -- for a person) was shown nowhere: `orket runs` looked as if no worker had the run.
  it("orket runs names a worker between cards, with how long it has had the run open", function()
    -- (slow: a turn of the worker's lasts long enough to be seen)
    local dir = project(fake.url, 2, 1500)
    local db = assert(project_mod.open_store(dir, true))
    local id = assert(db:record_run { target = "W", kind = "epic", data = { workers = true } })
    -- none has it: the listing says so, as far as this folder knows, and how to give it one
    -- (not 'orket resume', which refuses a run still left to the workers)
    local NONE = "no worker of this folder has it open and none holds a card of it: 'orket worker' in the project "
      .. "starts one ('orket serve --workers N' too)\n"
    local r = H.orket("runs", { cwd = dir })
    assert.matches(NONE, r.stdout, 1, true)
    assert.is_nil(r.stdout:find("orket resume", 1, true))
    -- nothing left to claim: every card is held by another worker (of another folder: the
    -- run is not waiting then)
    local ops = require("orket.engine.lease").ops(db)
    assert(db:tx(function()
      return #ops.claim(db, { worker = "far#0123456789abcdef", run = id, ids = { "W-1", "W-2" }, ttl_ms = 600000 }) == 2
    end))
    assert.is_nil(H.orket("runs", { cwd = dir }).stdout:find(NONE, 1, true))
    local p = io.popen(string.format("cd %s && exec %s worker --lease-ms %d --name between >b.out 2>b.err & echo $!",
      H.quote(dir), H.quote(H.BIN), LEASE_MS))
    local pid = tonumber(p:read("l"))
    p:close()
    finally(function() os.execute(string.format("kill -KILL %d 2>/dev/null", pid)) end)
    H.wait_for(function()
      orket.sleep(20)
      return H.orket("runs", { cwd = dir }).stdout:find("idle, between cards: between (joined the run ", 1, true)
    end, "the worker between cards", 3000)
    -- a command changing cards is refused naming that worker: it named orket serve and its
    -- stop route, which a worker's run refuses
    local rr = H.orket("retry W-1", { cwd = dir })
    assert.equal(75, rr.status)
    assert.matches(string.format("run %d is worked by worker between in process %d (orket worker); wait for it to "
      .. "end, or stop that worker (SIGTERM", id, pid), rr.stderr, 1, true)
    r = H.orket("runs --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local run = cjson.decode(r.stdout).runs[1]
    assert.equal(1, #run.idle)
    assert.equal("between", run.idle[1].worker)
    assert.equal(pid, run.idle[1].pid)
    -- (with its milliseconds, as the other times)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", run.idle[1].since)
    assert.equal(2, #run.leases)
    assert.is_nil(H.orket("runs", { cwd = dir }).stdout:find(NONE, 1, true))
    -- a lease of an earlier worker of the same --name (killed, its lease not yet run out)
    -- does not hide this one: they are told apart by the lease's holder, not its name
    assert(db:tx(function()
      return ops.release(db, "far#0123456789abcdef", "W-1") == 1
        and #ops.claim(db, { worker = "between#fedcba9876543210", run = id, ids = { "W-1" }, ttl_ms = 600000 }) == 1
    end))
    run = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs[1]
    assert.equal(1, #(run.idle or {}))
    assert.equal("between", run.idle[1].worker)
    assert.is_nil(run.leases[1].holder) -- (the token is the keeper's own)
    -- given a card, it works it, and is not listed idle then
    assert(db:tx(function() return ops.release(db, "between#fedcba9876543210") == 1 end))
    run = H.wait_for(function()
      local rr = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs[1]
      for _, l in ipairs(rr.leases or {}) do
        if l.worker == "between" then return rr end
      end
    end, "the worker to claim W-1", 3000)
    assert.is_nil(run.idle)
    -- stopped, it is no longer listed
    os.execute("kill -TERM " .. pid)
    H.wait_for(function() return not H.alive(pid) end, "the worker to end", 3000)
    assert.is_nil(cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs[1].idle)
    db:close()
  end)

  it("works two runs side by side, its turns at once shared between them", function()
    -- two epics' runs left to the workers; one worker with two turns at once gives each run
    -- one (its fair share), so a turn of each is in flight together; working them in turn,
    -- it never had turns of both
    local dir = WP.project(fake.url, { epics = { { id = "A", n = 4 }, { id = "B", n = 4 } }, slow = 150,
      store_url = backends.name() == "pg" and backends.fresh_url() or nil })
    H.write(dir .. "/record.lua", [[
local db = assert(require("orket.project").open_store(".", false))
for _, t in ipairs { "A", "B" } do assert(db:record_run { target = t, kind = "epic", data = { workers = true } }) end
db:close()
]])
    local rec = H.orket("lua record.lua", { cwd = dir })
    assert.equal(0, rec.status, rec.stderr)
    local r = H.orket("worker --drain --concurrency 2 --lease-ms 2500", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal(2, WP.side_by_side(r.stdout), r.stdout:sub(-3000))
    for _, run in ipairs(cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs) do
      assert.equal("done", run.status)
    end
    for _, e in ipairs { "A", "B" } do
      for i = 1, 4 do assert.equal(e .. "-" .. i .. "\n", H.read(dir .. "/workspace/" .. e .. "-" .. i .. ".line")) end
    end
  end)

  it("orket serve's workers stop when the server is killed with SIGKILL", function()
    local dir = project(fake.url, 3)
    local s = H.serve(dir, { args = "--workers 2" })
    local kids = H.wait_for(function()
      orket.sleep(20)
      local p = io.popen("ps -o pid= --ppid " .. s.pid)
      local out = {}
      for pid in p:read("a"):gmatch("%d+") do out[#out + 1] = tonumber(pid) end
      p:close()
      return #out == 2 and out
    end, "the server's two workers", 500)
    os.execute("kill -KILL " .. s.pid)
    for _, pid in ipairs(kids) do
      H.wait_for(function() orket.sleep(20) return not alive(pid) end, "worker " .. pid .. " to stop", 500)
    end
    H.kill_servers()
  end)

  -- in a container the server is pid 1, which its workers took for the pid an orphan's
  -- parent has: each stopped as soon as it started, and the server started it again, forever
  it("orket serve's workers work when the server is pid 1, as in a container", function()
    -- root makes the pid namespace alone, keeping its own credentials (the PostgreSQL
    -- server's socket is another user's, which root in a user namespace may not open);
    -- another user needs a user namespace for it
    local idp = io.popen("id -u")
    local root = idp:read("l") == "0"
    idp:close()
    local unshare = root and "unshare -pf" or "unshare -Urpf"
    if not root and backends.name() == "pg" then
      return pending("skipped: in a user namespace the PostgreSQL server's socket is not this user's to open")
    end
    local ok = os.execute(unshare .. " --mount-proc true >/dev/null 2>&1")
    if not ok then return pending("skipped: unshare cannot make a pid namespace here") end
    local dir = project(fake.url, 3)
    local key = H.api_key(dir, "op", "operator")
    os.execute(string.format("cd %s && { %s --kill-child=SIGKILL --mount-proc %s serve --workers 1 "
      .. "--listen 127.0.0.1:0 >serve.out 2>serve.err & echo $! >serve.pid; wait $!; echo $? >serve.rc; } "
      .. ">/dev/null 2>&1 &", H.quote(dir), unshare, H.quote(H.BIN)))
    local outer = H.wait_for(function() return tonumber((H.read(dir .. "/serve.pid") or ""):match("^%d+")) end,
      "the server's pid")
    local done, err = pcall(function()
      local port = H.wait_for(function()
        return (H.read(dir .. "/serve.out") or ""):match("listening on http://127%.0%.0%.1:(%d+)")
      end, "the server to listen", 3000)
      local s = { url = "http://127.0.0.1:" .. port, port = tonumber(port) }
      local st, doc = H.api(s, "POST", "/v1/runs", key, { target = "W" })
      assert.equal(201, st)
      H.wait_for(function()
        orket.sleep(90)
        local _, d = H.api(s, "GET", "/v1/runs/" .. math.tointeger(doc.run.id), key)
        return d and d.run and d.run.state == "done"
      end, "the worker to finish the run", 1500)
      assert.is_nil((H.read(dir .. "/serve.err") or ""):find('"event":"worker_exit"', 1, true),
        H.read(dir .. "/serve.err"))
    end)
    os.execute("kill -KILL " .. outer)
    H.wait_for(function() return H.read(dir .. "/serve.rc") end, "the server's end")
    assert(done, tostring(err) .. "\n" .. (H.read(dir .. "/serve.err") or ""):sub(-2000))
  end)

  it("orket serve --workers leaves the runs of POST /v1/runs to its workers and stops them with it", function()
    local dir = project(fake.url, 20)
    local key = H.api_key(dir, "op", "operator")
    local s = H.serve(dir, { args = "--workers 2" })
    local st, doc = H.api(s, "POST", "/v1/runs", key, { target = "W" })
    assert.equal(201, st)
    assert.is_false(doc.run.live)
    assert.truthy(doc.run.state == "queued" or doc.run.state == "running", doc.run.state)
    local state
    local ok, werr = pcall(H.wait_for, function()
      orket.sleep(90) -- under the server's rate limit
      local _, d = H.api(s, "GET", "/v1/runs/" .. math.tointeger(doc.run.id), key)
      state = d and d.run and d.run.state
      return state == "done"
    end, "the workers to finish the run", 1500)
    assert(ok, tostring(werr) .. " (state " .. tostring(state) .. "): " .. s.log():sub(-3000))
    local pids = {}
    for pid in s.log():gmatch('"worker":"[^"]*:(%d+)"') do pids[tonumber(pid)] = true end
    assert.equal(2, (function() local n = 0; for _ in pairs(pids) do n = n + 1 end; return n end)())
    assert.equal(0, s.stop())
    for pid in pairs(pids) do assert.is_false(alive(pid), "worker " .. pid .. " still runs") end
    for i = 1, 20 do assert.equal("W-" .. i .. "\n", H.read(dir .. "/workspace/W-" .. i .. ".line")) end
  end)

  it("orket serve --workers 0 records the runs of POST /v1/runs for workers started apart", function()
    -- serve and the workers as two Deployments (deploy/k8s/): the server runs nothing itself
    local dir = project(fake.url, 4)
    local key = H.api_key(dir, "op", "operator")
    local s = H.serve(dir, { args = "--workers 0" })
    local st, doc = H.api(s, "POST", "/v1/runs", key, { target = "W" })
    assert.equal(201, st)
    assert.is_false(doc.run.live)
    orket.sleep(300)
    local _, d = H.api(s, "GET", "/v1/runs/" .. math.tointeger(doc.run.id), key)
    assert.equal("queued", d.run.state) -- no worker yet: nobody works it, not even the server
    local r = H.orket("worker --drain --lease-ms 2500", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    _, d = H.api(s, "GET", "/v1/runs/" .. math.tointeger(doc.run.id), key)
    assert.equal("done", d.run.state)
    assert.equal(0, s.stop())
    for i = 1, 4 do assert.equal("W-" .. i .. "\n", H.read(dir .. "/workspace/W-" .. i .. ".line")) end
  end)

  -- POST /v1/runs/RUN/resume of a run left to the workers and ended carried it on in the
  -- server alone, the store still saying it ended: its workers never joined it.
  it("orket serve --workers hands a resumed run left to the workers back to them", function()
    local dir = project(fake.url, 4, 100)
    local key = H.api_key(dir, "op", "operator")
    local s = H.serve(dir, { args = "--workers 0" })
    local st, doc = H.api(s, "POST", "/v1/runs", key, { target = "W" })
    assert.equal(201, st)
    local id = math.tointeger(doc.run.id)
    st = H.api(s, "POST", "/v1/runs/" .. id .. "/stop", key)
    assert.equal(202, st)
    local db = assert(project_mod.open_store(dir, false))
    local runs = require "orket.store.runs"
    assert.equal("interrupted", runs.get(db, id).status)
    st, doc = H.api(s, "POST", "/v1/runs/" .. id .. "/resume", key)
    assert.equal(202, st, cjson.encode(doc))
    assert.is_false(doc.run.live) -- not worked in the server
    assert.equal("running", runs.get(db, id).status) -- left to the workers again
    assert.equal(0, db:row("SELECT count(*) AS n FROM turns").n)
    db:close()
    local r = H.orket("worker --drain --lease-ms 2500", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local _, d = H.api(s, "GET", "/v1/runs/" .. id, key)
    assert.equal("done", d.run.state)
    assert.equal(0, s.stop())
    for i = 1, 4 do assert.equal("W-" .. i .. "\n", H.read(dir .. "/workspace/W-" .. i .. ".line")) end
  end)
end)
