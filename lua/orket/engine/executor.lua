-- orket.engine.executor: runs executed inside a long-lived process (`orket serve`, its MCP
-- endpoint), on its loop, each with an engine of its own over the process's store
-- (orket.engine.setup with keep_db: its own board and memory views, scripts, model client
-- and hot reload), so several runs on disjoint cards go at once. orket.engine.claims keeps
-- overlapping runs apart, in this process and against `orket run` in others. A stop is the
-- engine's (as SIGINT on `orket run`): the journal stays consistent and the run can be
-- resumed. Answers are data; the routes (orket.serve.runs) say them over HTTP.
local rt = require "orket.c.runtime"
local pace = require "orket.engine.pace"
local task = require "orket.task"
local setup = require "orket.engine.setup"
local reload = require "orket.engine.reload"
local claims = require "orket.engine.claims"
local runlease = require "orket.engine.runlease"
local store_runs = require "orket.store.runs"
local restore_runs = require "orket.store.restore_runs"
local recorded = require "orket.engine.recorded"
local leases = require "orket.store.leases"
local scheduler = require "orket.engine.scheduler"

local M = {}

-- The runs each process executes, by its store handle: {live = {id -> entry}, closing=,
-- workers= (runs are left to the process's workers), log=fn(fields), pacer = orket.engine.pace:
-- their heavy steps, one per turn of the loop}.
local registries = setmetatable({}, { __mode = "k" })

--- registry(db) -> the live runs of the process using store db
function M.registry(db)
  local r = registries[db]
  if not r then
    r = { live = {}, pacer = pace.new() }
    registries[db] = r
  end
  return r
end

-- The events of a run this process executes that its log (reg.log, orket serve's stderr)
-- gets, as a worker's stderr carries its runs' events under orket serve --workers: without
-- them a run started through the API that failed, or a reload refused, was in no log.
local LOGGED = { run_start = true, run_end = true, card_blocked = true, reload_error = true, reload_held = true,
  journal_error = true }

local function logged(reg)
  return function(ev)
    if not (reg.log and LOGGED[ev.type]) then return end
    local f = { event = ev.type, run = ev.run_id }
    -- (plain fields: a file list or a usage table is the journal's to keep)
    for k, v in pairs(ev) do
      if k ~= "type" and k ~= "run_id" and type(v) ~= "table" and type(v) ~= "function" then f[k] = v end
    end
    reg.log(f)
  end
end

-- An engine for one run over the process's store: e | nil, kind ("bad_request",
-- "project_error"), msg.
local function engine(dir, db, model, concurrency)
  -- one heavy step of it per turn of the loop, across all runs starting (orket.engine.pace):
  -- ten runs started at once let other requests through between their steps
  local pacer = M.registry(db).pacer
  local function pass() pacer:pass() end
  -- and each turn's worktree (orket.engine.run)
  local e, msg, code = setup.open(dir, { db = db, keep_db = true, model = model, concurrency = concurrency,
    yield = pass, pace = pass, emit = logged(M.registry(db)) })
  if e then return e end
  if code == "EUSAGE" then return nil, "bad_request", (tostring(msg):gsub("^%-%-model", "body.model")) end
  return nil, "project_error", tostring(msg)
end

M.STORE_WAIT_MS = 300000 -- how long a run stopped by a lost store waits for it before it is left killed
M.CARRY_ON = 3 -- how many times one launch of a run carries on after its store came back

local function say(reg, fields) if reg.log then reg.log(fields) end end

-- The run's lease kept (orket.engine.runlease); found another's (it lapsed while the store
-- was away, and another process took it), the run stops. While the run waits for its store
-- (store_back) the wait takes the lease again itself.
local function lease_lost(reg, entry, e)
  if entry.waiting or not e or entry.lost == e then return end
  entry.lost = e -- said once per engine (a renewal and a step may both find it)
  say(reg, { event = "error", run = entry.id, message = "run lease lost: the run stops here and goes on in the "
    .. "process that resumed it and holds its lease now; nothing more of it is written here" })
  e:stop()
end

local function keep_lease(db, reg, entry)
  runlease.keep(db, entry.id, function() lease_lost(reg, entry, entry.e) end)
end

-- Each step of e's run is written only while this process holds the run's lease; found
-- another's, the run stops (orket.engine.runlease.guard)
local function fence(db, reg, entry, e)
  runlease.guard(db, entry.id, e, function() lease_lost(reg, entry, e) end)
end

-- The statuses a run stopped by a lost store is left with: running (its end could not be
-- written), or failed when its store answered again in time for its own end (Run:conclude).
-- Any other was written by another process meanwhile: it finished or stopped the run.
local LEFT_AS = { running = true, failed = true }

-- The carry-on of entry's run by engine e, once its store answers: a resume like any other
-- (recorded.resume: in_the_way asked and the run's lease taken in one write transaction,
-- inside the folder's claim section), the run itself not in its own way (its lock is held
-- here, its lease may be renewed already), its status still as this process left it. Taken
-- again without asking, a run whose outage outlasted its lease went on beside an
-- overlapping run another server started meanwhile, each working the cards.
-- -> id | nil, message, CODE, kind (a refusal: nil, message, nil, kind)
local function carry_on(dir, db, e, id)
  local claim <close>, cerr, ccode = claims.enter(dir, rt.sleep)
  if not claim then return nil, cerr, ccode end
  return recorded.resume(dir, db, e.board, id, { held = true, expect = LEFT_AS })
end

-- Waits for the store to be back for entry's run (M.STORE_WAIT_MS at most; the server
-- stopping or the run stopped ends the wait) -> a fresh engine over its run (carried on:
-- carry_on passed) | nil, why not, kind (done, in another's way, ended elsewhere, its
-- engine not made; the wait's time up: no kind). Back means written, not only read: a
-- standby that answers but is not yet promoted (read-only) is waited for, as a store that
-- does not answer; so is the project's run lock held for a moment by a command of the
-- folder (kind "busy": passing, not an overlap; ended for good, the run was left).
local function wait_store(dir, db, reg, entry)
  local deadline = rt.now() + M.STORE_WAIT_MS
  local e, last, answered
  while not (reg.closing or entry.stopped) and rt.now() < deadline do
    local ok, row = pcall(store_runs.get, db, entry.id)
    if ok and type(row) == "table" then
      answered = true
      if row.status == "done" then
        if e then e.close_all() end
        return nil, "it is done"
      end
      if not e then
        local ek, emsg
        ok, e, ek, emsg = pcall(engine, dir, db)
        if not ok then e, last = nil, e
        elseif not e then return nil, emsg, ek end
      end
      if e then
        local cok, id, msg, code, why = pcall(carry_on, dir, db, e, entry.id)
        if cok and id then return e end
        if cok and ((why and why ~= "busy") or code == "ENOENT") then
          e.close_all()
          return nil, msg, why
        end
        last = cok and msg or id -- the store still away or read-only, or the run lock busy: asked again
      end
    elseif not ok then
      last = row
    end
    rt.sleep(500)
  end
  if e then e.close_all() end
  local wait = M.STORE_WAIT_MS // 1000
  if answered then
    return nil, string.format("it could not be carried on within %d s (the store answers; the last try: %s)",
      wait, tostring(last))
  end
  return nil, string.format("the store did not answer within %d s%s", wait, last and " (" .. tostring(last) .. ")" or "")
end

-- After a run stopped because its store was lost (a PostgreSQL restart or failover): waits
-- for the store to answer (M.STORE_WAIT_MS at most; the server stopping or the run stopped
-- ends the wait), then a fresh engine carries the run on from its journal, under the same
-- lock, resumed as any resume is (carry_on) -> the new engine | nil (the run is left:
-- killed, resumable; its lease and lock are then released by launch).
local function store_back(dir, db, reg, entry, why)
  local id = entry.id
  say(reg, { event = "error", run = id, message = string.format("run %d stopped: the store was lost (%s); it carries on "
    .. "here once the store answers (waiting %d s at most)", id, tostring(why), M.STORE_WAIT_MS // 1000) })
  entry.waiting = true
  local e, msg, kind = wait_store(dir, db, reg, entry)
  entry.waiting = false
  if e and (reg.closing or entry.stopped) then
    e.close_all()
    e = nil
  end
  if not e then
    if reg.closing then msg = "the server is stopping"
    elseif entry.stopped then msg = "it was stopped" end
    say(reg, { event = "error", run = id, message = string.format("run %d is not carried on: %s; resume it "
      .. "(POST /v1/runs/%d/resume, orket resume %d)", id, tostring(msg), id, id), kind = kind })
    return nil
  end
  -- as a start beside other runs (claim_and): the server's other runs went on, or started,
  -- and their git work may be in flight, so no crash's leftovers are taken (this run's own
  -- git state was not left by a crash); and the store's failure flag, which they may yet
  -- need, is left to them: this run counts only failures after its own start
  e.no_git_recover = true
  e.carry_on = true
  fence(db, reg, entry, e)
  keep_lease(db, reg, entry)
  say(reg, { event = "run_resumed", run = id, message = string.format("run %d carries on: the store answers again", id) })
  return e
end

-- Runs e's run id in a task of its own (it starts on the loop's next turn); when it ends,
-- its scripts watcher, engine and lock go. A run the loss of its store stopped waits for the
-- store and carries on (store_back), where before it was left killed without a word.
local function launch(dir, db, e, id, lk)
  local reg = M.registry(db)
  local entry = { id = id, e = e, lock = lk, watcher = reload.watch(e) }
  reg.live[id] = entry
  keep_lease(db, reg, entry)
  fence(db, reg, entry, e)
  entry.task = task.spawn(function()
    rt.sleep(1)
    local ok, res, report
    while entry.e do
      ok, res, report = pcall(entry.e.execute, entry.e, id)
      local lost = ok and type(report) == "table" and report.store_lost
      -- its run_end is journaled: shown as it ended (orket.serve.runs) while its engine,
      -- lease and lock go, so a client that read run_end on its stream reads the run ended
      entry.ended = ok and not lost
      entry.watcher:close()
      entry.e.close_all()
      entry.e = nil
      -- a database server that comes back carries the run on, a few times at most (a store
      -- that answers but refuses every write, its disk full, would stop it again and again);
      -- a SQLite file that failed (full, read-only) is said and left to `orket resume`
      entry.carried = (entry.carried or 0) + 1
      if lost and db.backend == "pg" and entry.carried <= M.CARRY_ON then
        local bok, back = pcall(store_back, dir, db, reg, entry, lost)
        entry.waiting = false
        if not bok then
          say(reg, { event = "error", run = id, message = "run " .. id .. " is not carried on: " .. tostring(back) })
        end
        entry.e = bok and back or nil
        if entry.e then entry.watcher = reload.watch(entry.e) end
      elseif lost then
        say(reg, { event = "error", run = id, message = string.format("run %d stopped: the store failed (%s); "
          .. "resume it once the store can be written (POST /v1/runs/%d/resume, orket resume %d)", id, lost, id, id) })
      end
    end
    runlease.drop(db, id)
    claims.release(dir, id, lk)
    reg.live[id] = nil
    if not ok then say(reg, { event = "error", run = id, message = tostring(res) }) end
  end)
  return entry
end

-- decide(): what claim_and decides, once it holds the claim section. held(id, lk): the
-- run's lock was taken (released by claim_and when the decision is not committed).
local function decide(dir, db, e, target, resuming, make, no_hold, held)
  -- (a resume too is refused beside a run left to the workers: recorded.in_the_way)
  local other, why, kind = recorded.in_the_way(dir, db, e.board, target, { resuming = resuming })
  -- the run lock held for a moment by a command changing cards (no run): passing, not an
  -- overlap, as another process's start is (a 503 with Retry-After, where it was a 409)
  if other and kind == "busy" then return nil, "starting", why end
  if other then return nil, "conflict", why end
  -- every card left under an epic or rock a person archived or canceled: a new run would
  -- work none of it (as orket run refuses it)
  local card = not resuming and e.board:get(target)
  local ended = card and scheduler.ended_target(e.board, card)
  if ended then return nil, "conflict", ended end
  -- another run's git work may be in flight: a crash's leftovers are not taken now
  if claims.live(dir)[1] then e.no_git_recover = true end
  local id, merr, mcode = make()
  if not id then return nil, mcode or "conflict", tostring(merr) end
  -- left to the workers (orket serve --workers), which hold it as they work it
  if no_hold then return id end
  local lk, lerr, lcode = claims.hold(dir, id)
  -- (a full disk that keeps the lock from being had is no run in the way: its own answer)
  if not lk then return nil, lcode == "ENOSPC" and lcode or "conflict", lerr end
  held(id, lk)
  -- the store's lease, seen by every process of the store whatever its folder
  local holder = runlease.take(db, id)
  if holder then
    return nil, "conflict", string.format("run %d is going in another process of this store (%s)", id, holder)
  end
  return id, lk
end

-- Claims target for a run (claims.enter; nothing overlapping is live, no half-done turn of
-- a killed run is in the way unless resuming), then make() -> id | nil, msg, CODE records it
-- and its lock is taken. -> id, lock | nil, kind ("conflict", "starting" or make's CODE), msg
local function claim_and(dir, db, e, target, resuming, make, no_hold)
  -- (to be closed: a store that fails while it is asked must not keep the claim section
  -- held until the lock's garbage collection, every other start on the project waiting)
  local claim <close>, cerr, ccode = claims.enter(dir, rt.sleep)
  -- another process held the section past its wait (ESTARTING): passing, not an overlap
  if not claim then return nil, ccode == "ESTARTING" and "starting" or ccode == "ENOSPC" and ccode or "conflict", cerr end
  -- The claim section is the folder's: servers of one store in other folders (docs/store.md,
  -- "Several servers") pass it at once. So the question, the run's record and its lease
  -- are one write transaction, which the store runs one at a time (SQLite's BEGIN
  -- IMMEDIATE, the journal's lock on PostgreSQL): two servers asked to start the same
  -- target at once made two runs of it, each working its cards. A refusal rolls back.
  local d, hid, hlk
  local r = table.pack(db:tx(function()
    d = table.pack(pcall(decide, dir, db, e, target, resuming, make, no_hold,
      function(id, lk) hid, hlk = id, lk end))
    if not d[1] then error(d[2], 0) end
    return table.unpack(d, 2, d.n)
  end))
  if r[1] then return table.unpack(r, 1, r.n) end
  if hlk then claims.release(dir, hid, hlk) end
  if d and not d[1] then error(d[2], 0) end
  if d and d[2] == nil then return table.unpack(d, 2, d.n) end -- refused (nil, kind, msg)
  -- decided, or not asked at all (the transaction could not begin), and not committed
  return nil, r[3] or "conflict", tostring(r[2])
end

-- claim_and, engine e closed unless the claim is made (an error raised too)
local function claimed(dir, db, e, ...)
  local ok, id, lk, msg = pcall(claim_and, dir, db, e, ...)
  if not (ok and id) then e.close_all() end
  if not ok then error(id, 0) end
  return id, lk, msg
end

--- start{dir=, db=, target=, model=, concurrency=} -> run id, go | nil, kind, msg. go():
--- the run starts in this process (nil: the process's workers take it up). kind: "stopping"
--- (the process is stopping), "bad_request", "project_error", "conflict" (its cards overlap a
--- live run), "starting" (another process held the start of a run past its wait:
--- ESTARTING; try again) or the store's CODE.
function M.start(o)
  local reg = M.registry(o.db)
  if reg.closing then return nil, "stopping", "the server is stopping" end
  local e, kind, msg = engine(o.dir, o.db, o.model, o.concurrency)
  if not e then return nil, kind, msg end
  local id, lk, cmsg = claimed(o.dir, o.db, e, o.target, false, function()
    return e:start(o.target, { concurrency = o.concurrency, model = o.model, workers = reg.workers })
  end, reg.workers)
  if not id then return nil, lk, cmsg end
  if reg.workers then
    e.close_all()
    return id, nil
  end
  return id, function() launch(o.dir, o.db, e, id, lk) end
end

--- resume{dir=, db=, row= (the run's row)} -> run id, go | nil, kind, msg: as start, for a
--- run interrupted, stalled or killed (go nil: a run left to the workers, handed back to the
--- process's workers)
function M.resume(o)
  local reg, row = M.registry(o.db), o.row
  if reg.closing then return nil, "stopping", "the server is stopping" end
  if reg.live[row.id] then return nil, "conflict", string.format("run %d is going in this server", row.id) end
  if row.status == "done" then return nil, "conflict", string.format("run %d is done; nothing to resume", row.id) end
  if restore_runs.kept(row) then
    return nil, "conflict", string.format("run %d never ran in this store: its id was kept by a restore; nothing to "
      .. "resume", row.id)
  end
  local e, kind, msg = engine(o.dir, o.db)
  if not e then return nil, kind, msg end
  -- A run left to the workers goes back to them, as a start of one does here (running,
  -- in the claim's transaction): resumed in the server alone, it stayed ended in the store
  -- and the workers never joined it (docs/workers.md)
  local to_workers = reg.workers and recorded.left_to_workers { status = "running", data = row.data }
  local id, lk, cmsg = claimed(o.dir, o.db, e, row.target, true, function()
    if to_workers and not leases.requeue(o.db, row.id) then
      return nil, string.format("run %d is %s; not resumed", row.id, tostring(row.status)), "conflict"
    end
    recorded.reopen(o.db, row) -- (as a command-line resume's)
    return row.id
  end, to_workers)
  if not id then return nil, lk, cmsg end
  if to_workers then
    e.close_all()
    return id, nil
  end
  return id, function() launch(o.dir, o.db, e, id, lk) end
end

--- stop(dir, db, row) -> true | nil, "conflict", msg: the engine of a run this process
--- executes is asked to stop (resumable); a run left to the workers that no worker works
--- now is ended here, interrupted (recorded.stop_queued: its workers may be gone for good)
function M.stop(dir, db, row)
  local entry = M.registry(db).live[row.id]
  if not entry then
    if recorded.left_to_workers(row) then
      local done, kind, msg = recorded.stop_queued(db, row.id)
      if done then return true end
      if kind ~= "not_queued" then return nil, "conflict", msg end
    end
    local pid = claims.is_live(dir, row.id, db)
    if pid then
      return nil, "conflict", string.format("run %d is going in another process (%s); stop it there", row.id, pid)
    end
    return nil, "conflict", string.format("run %d is not going (%s)", row.id, claims.state(dir, db, row.status, row.id))
  end
  entry.stopped = true -- a run waiting for its store waits no more
  if entry.e then entry.e:stop() end
  return true
end

--- stop_all(db): no new runs; every live run of the process using db is stopped (as stop)
function M.stop_all(db)
  local reg = M.registry(db)
  reg.closing = true
  for _, entry in pairs(reg.live) do
    if entry.e then entry.e:stop() end
  end
end

--- wait_all(db): waits for the live runs to end (inside a task or from the main thread)
function M.wait_all(db)
  local reg = M.registry(db)
  while true do
    local _, entry = next(reg.live)
    if not entry then break end
    entry.task:join()
    reg.live[entry.id] = nil
  end
end

return M
