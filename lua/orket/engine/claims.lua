-- orket.engine.claims: which runs are going now, in any process, and whether a new run may
-- work a target. A run works its target and everything under it; two runs overlap when
-- their targets are the same card or one holds the other, and overlapping runs never go
-- at once. A run is live while its process holds its lock (orket.c.lockfile, dropped by
-- the kernel when the process dies, so none goes stale): `orket run` and `orket resume`
-- hold the project's run lock (.orket/run.lock, tagged with the run id), `orket serve`
-- holds .orket/runs/ID.lock for each run it executes, and each `orket worker` working run
-- ID holds .orket/runs/ID.PID.lock (several workers share a run: each works the cards it
-- holds a lease on, orket.engine.lease; a worker on another machine is known by its
-- leases in the store). Those locks are seen only by processes sharing the folder: a run
-- executed by `orket serve` is also leased in the store (orket.engine.runlease), so a
-- process of the same PostgreSQL store in another folder sees it live too. Deciding that a run may go,
-- recording it and taking its lock happen under .orket/claim.lock (held for milliseconds,
-- never across a model call), so two processes of the folder cannot both decide yes; for
-- processes of one store in other folders, the callers ask again in the write transaction
-- that records the run and takes its store lease, which the store runs one at a time
-- (docs/store.md, "Several servers"). Contract: docs/serve.md, "Runs".
local lockfile = require "orket.c.lockfile"
local uv = require "luv"
local lease = require "orket.engine.lease"
local store_runs = require "orket.store.runs"
local runlease = require "orket.engine.runlease"
local project = require "orket.project"
local store_leases = require "orket.store.leases"

local M = {}

M.WAIT_MS = 3000 -- how long enter() waits for another process's short critical section

local function home(dir) return (dir == nil or dir == ".") and ".orket" or (dir .. "/.orket") end
local function run_path(dir, id) return string.format("%s/runs/%d.lock", home(dir), id) end
local function worker_path(dir, id, pid) return string.format("%s/runs/%d.%d.lock", home(dir), id, pid) end
-- beside a worker's lock: its --name, for `orket runs` to name a worker between its cards
-- (the keeper's holder, NAME#TOKEN: a worker restarted under the same --name is another)
local function name_path(lock_path) return (lock_path:gsub("%.lock$", ".name")) end

--- spent(since, slept) -> the ms a wait begun at uv.hrtime() since has taken: its sleeps' sum
--- or the clock's, the larger. The tries take time of their own (a holder's line read again),
--- and a wait that counted its sleeps alone ran on far past its bound.
function M.spent(since, slept)
  return math.max(slept, (uv.hrtime() - since) // 1000000)
end

--- enter(dir[, sleep]) -> claim (claim:release()) | nil, msg, "ESTARTING"|CODE: the critical
--- section of starting a run. sleep(ms) waits between tries (default: uv.sleep, which
--- blocks; a server passes a sleep that yields to the loop). ESTARTING: another process
--- held it past WAIT_MS; the message names that process (orket.errors says how to see it).
function M.enter(dir, sleep)
  sleep = sleep or uv.sleep
  local path = home(dir) .. "/claim.lock"
  local waited, since = 0, uv.hrtime()
  while true do
    local lk, err, code, holder = lockfile.acquire(path)
    if lk then return lk end
    if code == "EBUSY" and M.spent(since, waited) >= M.WAIT_MS then
      return nil, string.format("another process is starting a run on this project%s and held its start "
        .. "(.orket/claim.lock) for %d ms; try again", holder and (" (process " .. holder .. ")") or "",
        M.WAIT_MS), "ESTARTING"
    end
    if code ~= "EBUSY" then return nil, err, code or "EIO" end
    sleep(5)
    waited = waited + 5
  end
end

--- live(dir[, {own_run_lock=true, prune=true}]) -> array of {id=, pid=, by="run"|"serve"|"worker"},
--- busy | nil: the runs going now, in any process. busy: the run lock is held for something
--- that is not a run (a command changing cards, or an `orket run` before it tagged the
--- lock): {pid=, what=}, its pid and the word its holder wrote (lockfile's what). own_run_lock: the caller holds the run lock itself (it is not probed).
--- prune (only inside enter(), where no hold() is half done): run lock files nobody holds,
--- left by a server that was killed, are removed.
function M.live(dir, o)
  local out, busy = {}, nil
  if not (o and o.own_run_lock) then
    local held, pid, tag, what = lockfile.probe(home(dir) .. "/run.lock")
    if held and tag then out[#out + 1] = { id = tag, pid = pid, by = "run" }
    elseif held then busy = { pid = pid or 0, what = what } end
  end
  local dirh = uv.fs_scandir(home(dir) .. "/runs")
  while dirh do
    local name = uv.fs_scandir_next(dirh)
    if not name then break end
    local id = math.tointeger(tonumber(name:match("^(%d+)%.lock$")))
    local wid, wpid = name:match("^(%d+)%.(%d+)%.lock$")
    local path = id and run_path(dir, id)
    if wid then
      id = math.tointeger(tonumber(wid))
      path = worker_path(dir, id, math.tointeger(tonumber(wpid)))
    end
    if id then
      local held, pid = lockfile.probe(path)
      if held then out[#out + 1] = { id = id, pid = pid, by = wid and "worker" or "serve" }
      elseif held == false and o and o.prune then
        os.remove(path)
        if wid then os.remove(name_path(path)) end
      end
    end
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out, busy
end

--- is_live(dir, id[, db]) -> pid | owner | nil: run id is going in some process (its lock
--- is held, or, with db, its lease in the store is live: the owner's name)
function M.is_live(dir, id, db)
  local held, pid = lockfile.probe(run_path(dir, id))
  if held then return pid or 0 end
  local rheld, rpid, tag = lockfile.probe(home(dir) .. "/run.lock")
  if rheld and tag == id then return rpid or 0 end
  for _, r in ipairs(M.live(dir, { own_run_lock = true })) do
    if r.id == id then return r.pid or 0 end
  end
  return db and runlease.holders(db)[id] or nil
end

--- state(dir, db, status, id[, workers[, leased]]) -> the state to show for run id
--- (orket.project.run_state), "running" also when another process of the store, in
--- another folder, holds its lease, and when a card of a run left to the workers is leased
--- (a worker of another folder, or one killed whose lease has not run out: docs/workers.md's
--- queued is a run no worker has open and whose cards none holds). leased: whether one is,
--- from a caller that read the live leases already (else they are read here)
function M.state(dir, db, status, id, workers, leased)
  local st = project.run_state(dir, status, id, workers)
  if st == "killed" and runlease.holders(db)[id] then return "running" end
  if st == "queued" and db then
    if leased == nil then leased = store_leases.live(db, id)[1] ~= nil end
    if leased then return "running" end
  end
  return st
end

--- chain(board, id) -> set of id and its ancestors
function M.chain(board, id)
  local out = {}
  while id and not out[id] do
    out[id] = true
    local c = board:get(id)
    id = c and c.parent
  end
  return out
end

--- overlaps(board, a, b) -> true when runs of targets a and b would share a card
function M.overlaps(board, a, b)
  return M.chain(board, a)[b] == true or M.chain(board, b)[a] == true
end

--- going(dir, db[, o]) -> runs, busy: live's runs (o as live's), then the runs live only in
--- the store: a worker's live lease elsewhere (pid = "worker NAME") and a server's run lease
--- of another folder (pid = its owner), once a run
function M.going(dir, db, o)
  local runs, busy = M.live(dir, o)
  return M.with_store(db, runs, runlease.holders(db)), busy
end

--- with_store(db, runs, holders) -> runs: going's, from live's runs and the run leases'
--- holders (runlease.holders) read by the caller
function M.with_store(db, runs, holders)
  local seen = {}
  for _, r in ipairs(runs) do seen[r.id] = true end
  for _, l in ipairs(lease.ops(db).live(db)) do
    if not seen[l.run] then
      seen[l.run] = true
      runs[#runs + 1] = { id = l.run, pid = "worker " .. l.worker, by = "worker", worker = l.worker }
    end
  end
  for id, owner in pairs(holders) do
    if not seen[id] then
      seen[id] = true
      runs[#runs + 1] = { id = id, pid = owner, by = "lease" }
    end
  end
  return runs
end

--- conflict(dir, db, board, target[, {own_run_lock=, except=, prune=}]) -> nil | {id=, target=, pid=},
--- message: the first live run whose cards overlap target's (live() says which run is
--- live; a run whose cards workers hold live leases on is live too, wherever the workers
--- are). except: a run id that does not count (the run a worker joins). Ask it inside
--- enter(); prune = false for a caller outside it (the REPL's turn): stale run lock files
--- are then left for the next enter() (live's rule).
function M.conflict(dir, db, board, target, o)
  local runs, busy = M.going(dir, db, { own_run_lock = o and o.own_run_lock, prune = not (o and o.prune == false) })
  return M.overlapping(db, board, target, runs, busy, o and o.except)
end

-- How a run known only by its run lease is said, after its owner: another host's (or
-- container's) is another folder's run (this folder's would hold its lock file here); this
-- process's own is said so, never as another folder's; another process of this machine
-- may be of this folder too, its run ended while the store could not take the lease's drop
local function lease_words(owner)
  if owner == runlease.owner() then return " (this process), known from its run lease in the store" end
  local where = tostring(owner):match("^.*/([^/]+)/%d+%.?%d*/%x+$")
  if runlease.place and where == runlease.place then
    return string.format(", known from its run lease in the store, not from a lock here: another folder's run, or one "
      .. "that process ended while the store could not be written (its lease lapses within %d s)",
      runlease.TTL_MS // 1000)
  end
  return ", known from its run lease in the store: another folder's run"
end

--- overlapping(db, board, target, runs, busy[, except]) -> conflict's answer from going's runs and busy
function M.overlapping(db, board, target, runs, busy, except)
  if except then
    for i = #runs, 1, -1 do if runs[i].id == except then table.remove(runs, i) end end
  end
  if busy then
    -- a run between its lock and its tag holds it for minutes; anything else for a moment
    local what = busy.what == "run" and "an orket run starting" or busy.what and ("orket " .. busy.what)
      or "a command changing cards"
    return { pid = busy.pid }, string.format("the project's run lock is held by process %d (%s); try again when it "
      .. "is done", busy.pid, what)
  end
  for _, r in ipairs(runs) do
    local row = store_runs.get(db, r.id)
    if row and M.overlaps(board, target, row.target) then
      r.target = row.target
      -- a run known only by its run lease in the store: by its owner as recorded
      -- (host/place/pid...), as orket import says it; the lease does not say which kind of
      -- process holds it (an `orket run` of another folder, or a server). A worker known only
      -- by its card leases there: by its name (HOST:PID by default: a pid of another
      -- machine, perhaps), never as a process of this one
      local who = r.worker and string.format("worker %s, known from its leases in the store; not a process here",
        r.worker) or string.format("process %s%s", tostring(r.pid), r.by == "serve" and ", a server"
        or r.by == "lease" and lease_words(r.pid) or "")
      return r, string.format("run %d (%s) is working on %s now (%s); two runs never work the same card: "
        .. "wait for it to end or stop it", r.id, row.target, row.target == target and "the same target"
        or "cards of " .. target, who)
    end
  end
  return nil
end

-- The host's failures that make a lock's folder or file impossible to have, as codes
local HOST_CODES = { ENOSPC = "ENOSPC", EDQUOT = "ENOSPC", EROFS = "EROFS", EACCES = "EACCES" }

-- runs_dir(dir) -> true | nil, msg, CODE: .orket/runs, the run locks' folder, made at the
-- first run of the folder's server or worker. A full disk refuses it, and the lock file's
-- open then said only "No such file or directory" (as a conflict): said as the folder's.
local function runs_dir(dir)
  local path = home(dir) .. "/runs"
  local ok, err, code = uv.fs_mkdir(path, 448)
  if ok or code == "EEXIST" or uv.fs_stat(path) then return true end
  local host = HOST_CODES[code]
  if not host then return true end -- (the lock file's open says the rest)
  local fix = host == "ENOSPC" and "free space on its file system (df " .. home(dir) .. ")"
    or host == "EROFS" and "remount it read-write" or "give .orket/ back to the project's owner"
  return nil, string.format("cannot make %s, the folder of the runs' locks: %s; %s, then start or resume the run again",
    path, tostring(err):match("^%u+: (.-): ") or tostring(err), fix), host
end

--- hold(dir, id) -> lock | nil, msg, CODE: takes run id's lock (a server executing it)
function M.hold(dir, id)
  local made, merr, mcode = runs_dir(dir)
  if not made then return nil, merr, mcode end
  local lk, err, code = lockfile.acquire(run_path(dir, id))
  if not lk then
    if code == "EBUSY" then return nil, string.format("run %d is going in another process", id), code end
    return nil, err, code
  end
  lk:tag(id)
  return lk
end

--- hold_worker(dir, id[, holder]) -> hold | nil, msg, CODE: this worker process works run
--- id (its lock, .orket/runs/ID.PID.lock, tagged with the id; several workers hold one
--- each); holder: its lease keeper's (NAME#TOKEN), written beside it (ID.PID.name) for
--- workers_open
function M.hold_worker(dir, id, holder)
  local made, merr, mcode = runs_dir(dir)
  if not made then return nil, merr, mcode end
  local path = worker_path(dir, id, uv.os_getpid())
  local lk, err, code = lockfile.acquire(path)
  if not lk then return nil, err, code end
  lk:tag(id)
  -- (none: a name an earlier process of this pid left, its lock never pruned, is not this one's)
  os.remove(name_path(path))
  if holder then
    local f = io.open(name_path(path), "w")
    if f then
      f:write(holder)
      f:close()
    end
  end
  return { lock = lk, path = path }
end

--- workers_open(dir) -> {[run id] = {{pid=, holder=, name=, since=, since_ns=}}}: the workers
--- of this folder that have a run open now (its lock held), whether or not they hold a card
--- of it: holder their lease keeper's (NAME#TOKEN) and name their --name (nil when not
--- written), since the time (seconds since the epoch, and its nanoseconds) they joined it
function M.workers_open(dir)
  local out = {}
  for _, r in ipairs(M.live(dir, { own_run_lock = true })) do
    if r.by == "worker" and math.type(r.pid) == "integer" then
      -- (its pid is the holder's: a worker's lock is named by its own pid)
      local path = worker_path(dir, r.id, r.pid)
      local f = io.open(name_path(path))
      local holder = f and f:read("a")
      if f then f:close() end
      if holder == "" then holder = nil end
      local st = uv.fs_stat(path)
      out[r.id] = out[r.id] or {}
      table.insert(out[r.id], { pid = r.pid, holder = holder, name = holder and store_leases.name_of(holder),
        since = st and st.mtime.sec, since_ns = st and st.mtime.nsec })
    end
  end
  return out
end

-- whether a whole-run process executes run id (`orket serve`'s run lock or its store lease,
-- `orket run`'s tagged run lock; runs: live's, holders: runlease.holders'): conflict(except
-- = id) leaves the run's own locks out, so a worker joined such a run and worked its cards
-- beside that process, which takes no card leases
local function run_whole(runs, holders, id)
  for _, r in ipairs(runs) do
    if r.id == id and r.by ~= "worker" then return true end
  end
  return holders[id] ~= nil
end

--- join_worker(dir, db, board, row[, sleep[, holder]]) -> hold | nil: a worker joins run row
--- (its id and target; holder: as hold_worker's) unless a whole-run process (`orket run`,
--- `orket serve`) works it or an overlapping run is live, decided under the claim section
--- (enter). An error while it
--- asks (the store lost) is raised once the claim section is left: held until the lock's
--- garbage collection, it kept every other worker of the project from joining a run.
function M.join_worker(dir, db, board, row, sleep, holder)
  local claim = M.enter(dir, sleep)
  if not claim then return nil end
  local ok, other = pcall(function()
    -- the locks and the run leases read once, for both questions
    local runs, busy = M.live(dir, { prune = true })
    local holders = runlease.holders(db)
    if run_whole(runs, holders, row.id) then return true end
    return (M.overlapping(db, board, row.target, M.with_store(db, runs, holders), busy, row.id))
  end)
  local hold
  if ok and not other then hold = M.hold_worker(dir, row.id, holder) end
  claim:release()
  if not ok then error(other, 0) end
  return hold
end

--- release_worker(hold): this worker is done with the run
function M.release_worker(h)
  os.remove(name_path(h.path))
  os.remove(h.path)
  h.lock:release()
end

--- release(dir, id, lock): the run is over here; its lock file goes (removed while still
--- held, so nobody sees a stale file held) and the lock is freed.
function M.release(dir, id, lk)
  os.remove(run_path(dir, id))
  lk:release()
end

return M
