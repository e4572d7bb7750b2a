-- orket worker [DIR]: one of several processes working the runs left to workers on a shared
-- board (orket.engine.lease: each card it works is claimed with a lease it renews; a card
-- whose worker died is taken over and resumed from the journal). JSON Lines events on
-- stdout, each naming the worker. Exit: 0 when stopped (SIGTERM, SIGINT) or, with --drain,
-- when no run is left (with --start or --resume, as orket run would for that run: 1 failed,
-- 3 stalled, 130 interrupted); 1 on an error; 2 usage.
local uv = require "luv"
local rt = require "orket.c.runtime"
local stopsignals = require "orket.stopsignals"
local task = require "orket.task"
local otel = require "orket.otel"
local setup = require "orket.engine.setup"
local jsonout = require "orket.jsonout"
local claims = require "orket.engine.claims"
local recorded = require "orket.engine.recorded"
local lease_mod = require "orket.engine.lease"
local runset = require "orket.engine.runset"
local store_runs = require "orket.store.runs"
local share_mod = require "orket.engine.share"
local phase = require "orket.sandboxes.phase"
local recheck = require "orket.sandboxes.recheck"
local logwriter = require "orket.serve.logwriter"

local cmdline = require "orket.cmdline"
local inert = require "orket.inert"
local plain = require("orket.cli").plain
local settings = require "orket.settings"
local config = require "orket.config"
local project = require "orket.project"
local run_cmd = require "orket.cmd.run"

local cmd = { name = "worker", summary = "work the runs left to workers, with other workers, on a shared board" }
-- a reader of stdout gone is no failure of it (orket.cli output_checked)
cmd.outlives_reader = true
cmd.args = { extra = "give one project directory",
  { "DIR", optional = true, key = "dir", what = "a directory", once = cmdline.one_dir, check = cmdline.a_dir() },
  { "--start", value = "TARGET", what = "a value", help = "leave a run of TARGET (an epic, a rock or a card) to the workers, unless\n"
    .. "one is unfinished already, and work it" },
  { "--resume", value = "RUN", what = "a value", check = function(v) return cmdline.integer(v) and v,
      "--resume needs a run number (see 'orket runs')" end,
    help = "leave RUN, a run left to the workers and ended (interrupted, stalled, failed),\n"
    .. "to the workers again, and work it (orket resume RUN of such a run does so)" },
  { "--drain", help = "exit once no run is left to the workers (else wait for new ones); with\n"
    .. "--start or --resume, with the status orket run gives that run (1 failed, 3 stalled)" },
  { "--with-parent", help = "stop as on SIGTERM when the process that started it ends (orket serve\n"
    .. "--workers starts its workers so, even a server killed with SIGKILL)" },
  { "--parent-pid", value = "PID", key = "parent_pid", what = "a value",
    help = "with --with-parent: the pid of that process, as it knows it (orket serve gives its own: in a\n"
    .. "container the server may be pid 1, which an orphan's parent is too)",
    check = function(v) return cmdline.integer(v) and v, "PID must be a process id (a whole number)" end },
  { "--concurrency", value = "N", what = "a value", check = run_cmd.concurrency,
    help = "turns this worker runs at once, across the runs it works, at most " .. settings.CONCURRENCY_MAX .. "\n"
    .. "(default: orket.lua's)" },
  { "--lease-ms", value = "MS", what = "a value", default = 30000,
    check = function(v) return cmd.lease_ms(v) end,
    help = "how long a lease lives without renewal (renewed every third of it)" },
  { "--name", value = "NAME", what = "a value", help = "this worker's name, in its events and the leases' listings (default HOST:PID)" },
  { "--model", value = "M", what = "a value", help = "every seat's model in the runs this worker works, as provider:model\n"
    .. "(as ORKET_MODEL); with --start, refused when its server does not list it" },
  { "--stop-budget-fd", value = "FD", key = "stop_budget_fd", what = "a value",
    check = function(v) return cmd.budget_fd(v) end,
    help = "read from FD what is left of the stop's budget, in ms (a line), before SIGTERM\n"
    .. "(orket serve --workers tells its workers so: their drains fit its 9 s stop)" },
  { "-C", value = "DIR", key = "dir", what = "a directory", once = cmdline.one_dir, check = cmdline.a_dir("-C"),
    help = "the project's directory, as DIR (default: the current one)" },
}
cmd.help = [[
Works the runs left to workers in the project DIR (default: the current directory), side
by side (its --concurrency turns at once shared fairly among them), with
any number of other workers on this machine (sharing DIR and its .orket/orket.db) or, on a
PostgreSQL store, on other machines. Each card is claimed with a lease the worker renews
while it works; a worker that dies loses its leases when they expire (--lease-ms, default
30000), and another worker takes its cards over, resuming them from the journal: recorded
model responses and tool calls are not asked or done again.
SIGTERM or SIGINT stops it cleanly: turns in flight are cancelled where they wait (their
recorded steps stay), its leases are released, and the run is left to the other workers.
Events are printed as JSON Lines.
Exit status: 0 stopped (SIGTERM, SIGINT, SIGHUP) or, with --drain, no run left; with
--drain and --start or --resume, that run's as orket run gives it (0 done, 1 failed, 3
stalled, 130 interrupted); 1 an error; 2 usage error.]]


-- The longest lease: a day. Longer, a dead worker's cards wait that long for another, and
-- far longer the store cannot date its end (SQLite's dates stop at the year 9999): the
-- worker failed at its first claim with the store's own NOT NULL error.
cmd.LEASE_MS_MAX = 86400000

--- lease_ms(v) -> --lease-ms's integer | nil, message: from 30 to LEASE_MS_MAX
function cmd.lease_ms(v)
  local n = cmdline.integer(v)
  if not n or n < 30 or n > cmd.LEASE_MS_MAX then
    -- (the word given is said, as --concurrency's: a typo in a script's flags is found at once)
    return nil, string.format("--lease-ms needs an integer of at least 30 and at most %d (a day), not '%s'",
      cmd.LEASE_MS_MAX, inert.line(tostring(v)))
  end
  return n
end

-- Leaves a run of target to the workers, unless one is unfinished already: under the
-- claim section, so two workers started with the same --start make one run.
-- -> run id | nil, msg[, CODE] (ESTARTING: another process held the section; its remedy)
local function start_run(e, dir, o)
  local ops = lease_mod.ops(e.db)
  -- (to be closed: a store that fails under it must not hold it until garbage collection)
  local claim <close>, cerr, ccode = claims.enter(dir, rt.sleep)
  if not claim then return nil, cerr, ccode end
  -- The claim section is the folder's: a worker of the same store in another folder (on
  -- another machine) passes it at once. So the question and the run's record are one
  -- write transaction, which the store runs one at a time: two workers there made two runs.
  return e.db:tx(function()
    local id = ops.queued_for(e.db, o.start)
    if id then return id end
    -- (a queued run of another target sharing cards is in the way: one of the same target
    -- is joined above)
    local other, why = recorded.in_the_way(dir, e.db, e.board, o.start)
    if other then return nil, why end
    return e:start(o.start, { concurrency = o.concurrency, model = o.model, workers = true })
  end)
end

-- Leaves run id, left to the workers and ended (interrupted, stalled, failed), to the
-- workers again, as a start does: running, so every idle worker of the store joins it, this
-- one included. Decided under the claim section and in one write transaction, as a start
-- is: a resume asked apart went beside a run of overlapping cards. Resumed in one process
-- alone, the run stayed ended in the store, and the workers never took it up again, nor
-- its cards once that process died. An ended run requeued here is noted (e.requeued_runs):
-- this worker's start of it is a resume's, which takes back the cards a model failure that
-- passes with time blocked, as orket resume of a run of its own does. -> id | nil, msg[, CODE]
local function resume_run(e, dir, id)
  local ops = lease_mod.ops(e.db)
  local claim <close>, cerr, ccode = claims.enter(dir, rt.sleep)
  if not claim then return nil, cerr, ccode end
  return e.db:tx(function()
    local row = store_runs.get(e.db, id)
    if not row then return nil, string.format("no run %d (see 'orket runs')", id), "ENOENT" end
    if row.status == "done" then return nil, string.format("run %d is done; nothing to resume", id) end
    if not recorded.left_to_workers { status = "running", data = row.data } then
      return nil, string.format("run %d is not a run left to the workers; resume it with 'orket resume %d'", id, id)
    end
    if row.status == "running" then return id end -- left to them already: joined
    local other, why = recorded.in_the_way(dir, e.db, e.board, row.target, { resuming = true })
    if other then return nil, why end
    if not ops.requeue(e.db, id) then return nil, string.format("run %d is %s; not resumed", id, tostring(row.status)) end
    e.requeued_runs[id] = true
    return id
  end)
end

-- The store lost (PostgreSQL's primary gone, a standby not yet promoted): said once, then
-- the worker asks again, after 20 ms, then half as long again each time up to a second,
-- until the store answers, and works on: a promotion takes a few hundred milliseconds, and
-- a fixed second's wait made the workers' pause several times the database's own (waits
-- that doubled left it about 2x; growing by half, about 1.5x: bench/failover.lua). A
-- transaction in flight was rolled back whole; the run is left running for all.
-- st.lost: said already; st.wait: the next wait; st.back_at: when it came back last. A store
-- that answers on a pooled connection while new ones fail (max_connections reached) comes
-- back and goes again at once: a loss within FLAP_MS of its return keeps the wait it had,
-- growing, where starting again at 20 ms made ten losses and returns a second.
-- Called once no run is in flight: the failure noted for the process is cleared, and the
-- runs' (set.lost) with it.
local FLAP_MS = 5000
local function store_lost(e, emit, st, why, set)
  if not st.lost then
    -- what failed, not where in Orket (the position of the module that raised it)
    emit { type = "store_lost", error = plain(tostring(why)) }
    if not (st.back_at and rt.now() - st.back_at < FLAP_MS and st.wait) then st.wait = 20 end
  end
  st.lost = true
  e.db:clear_journal_error()
  set:forget_failure()
  rt.sleep(st.wait)
  st.wait = math.min(st.wait * 3 // 2, 1000)
end

-- The store answers again after a loss: said once, and when (store_lost's flaps)
local function store_back(emit, st)
  if not st.lost then return end
  emit { type = "store_back" }
  st.back_at = rt.now()
end

-- This worker's events: JSON Lines on stdout (out: its writer, open_output), each naming
-- the worker. When the reader goes away (`orket worker | head`), the write fails (SIGPIPE
-- is caught: stoppers) and the worker stops as on SIGINT, its leases given back
-- (broken.on), as `orket run` does.
local function emitter(name, broken, out)
  return function(ev)
    ev.worker = name
    local ok, line = pcall(jsonout.encode, ev)
    if ok and not broken.gone then out:line(line) end
  end
end

-- The worker's output written by threads (orket.serve.logwriter), so that its loop never
-- waits on a reader: its events on stdout, and io.stderr's lines (the leases', the runs',
-- the warnings). Under orket serve --workers both are the server's stderr, and a reader
-- that stopped there held the loop: the leases went unrenewed, another worker took the
-- cards over. Past 4 MiB waiting, lines are dropped and counted: an event of type
-- output_dropped says how many on stdout, a warning on stderr -> outputs (to be closed:
-- close_output), a warning to give | nil
-- (a raise: the real io.stderr back for its message, the threads' pipes closed)
local OUTPUTS = { __close = function(w) for _, x in ipairs(w) do x:__close() end end }

local function open_output(name, broken)
  local out, owarn = logwriter.open { fd = 1, on_gone = function()
    broken.gone = true
    if broken.on then broken.on() end
  end, dropped_line = function(n)
    return jsonout.encode { type = "output_dropped", worker = name, dropped = n, message = string.format(
      "stdout's reader fell behind: %d events were dropped (%d MiB were waiting)", n, logwriter.MAX_BYTES >> 20) }
  end }
  local err, ewarn = logwriter.open { as_stderr = true, dropped_line = function(n)
    return string.format("orket: warning: stderr's reader fell behind: %d lines were dropped", n)
  end }
  return setmetatable({ out, err }, OUTPUTS), owarn or ewarn
end

-- what the outputs queued written (logwriter.FLUSH_MS at most each), io.stderr the real one again
local function close_output(w)
  task.spawn(function() for _, x in ipairs(w) do x:close() end end):join()
end

-- The worker's events (emitter), and the outputs that write them (open_output; none for
-- orket resume's worker, whose events are resume's: inner.emit) -> emit, outputs
local function events(name, broken, inner, cli)
  if inner.emit then
    local to = inner.emit
    return function(ev) ev.worker = name; to(ev) end, setmetatable({}, OUTPUTS)
  end
  local output, owarn = open_output(name, broken)
  if owarn then cli.err("warning: %s", owarn) end
  return emitter(name, broken, output[1]), output
end

local function git_lock(o) return (o.dir == "." and "" or o.dir .. "/") .. ".orket/git.lock" end

-- The worker's own engine, with the lease keeper and the repository lock other workers
-- share (each operation on the repository under .orket/git.lock), checked -> e | nil, exit
-- status. Each run it works gets an engine of its own (runs), sharing the keeper.
local function open_engine(o, name, emit, cli)
  local e, err, code = setup.open(o.dir, { model = o.model, concurrency = o.concurrency, emit = emit,
    git_lock = git_lock(o),
    lease = { worker = name, ttl_ms = o.lease_ms, on_event = emit, poll_ms = math.min(200, math.max(10, o.lease_ms // 10)) } })
  if not e then
    if code == "EUSAGE" then return nil, cli.usage_error(cmd, "%s", err) end
    cli.fail(code, "%s", cli.in_dir(o.dir, err))
    return nil, 1
  end
  local ok_check, cherr, chcode = e:check()
  if not ok_check then
    e.close_all()
    cli.fail(chcode, "%s", cli.in_dir(o.dir, config.placed(o.dir, cherr)))
    return nil, 1
  end
  -- a PostgreSQL database other roles may still connect to, which Orket could not close
  if e.db.public_warning then cli.err("warning: %s", e.db.public_warning) end
  o.store_watch = cmd.store_watch(o.dir) -- (the file opened: work)
  return e
end

-- run_status(db, id) -> the run's status now ("gone": no such run); raises when the store does
local function run_status(db, id)
  local row = store_runs.get(db, id)
  -- (no row: the store was restored from a backup taken before the run, or the run removed)
  return row and row.status or "gone"
end

-- The events of run id's open (get_set() -> the runs' set): a run_end "interrupted" that the
-- worker's own stop made (a signal, --with-parent, another run's error) says that the run
-- is left running for the workers, as a run ended by the store's loss does. Bare, it read
-- as the run's end though the store still had it running and the other workers took it
-- up. A stop of the run itself (orket runs stop: entry.ended) is the run's end, and an
-- orket resume (o.only) ends the run itself when no other worker holds it.
local function run_emitter(emit, o, id, get_set)
  return function(ev)
    if ev.type == "run_end" and ev.status == "interrupted" and not ev.reason and not o.only then
      local entry = get_set().live[id]
      if not (entry and entry.ended) then ev.reason = "the worker stopped; the run is left running for the workers" end
    end
    emit(ev)
  end
end

-- The runs the worker works side by side: each with an engine of its own over the worker's
-- store, its lease keeper and its turns at once (--concurrency, else orket.lua's).
local function runs(e, o, emit)
  local share = share_mod.new(o.concurrency or e.settings.concurrency)
  local set
  set = runset.new { db = e.db, keeper = e.lease, share = share, leave = claims.release_worker,
    journal = runset.journal(e.db),
    -- (the keeper's holder, not the --name: a worker restarted under the same name is another)
    join = function(r) return claims.join_worker(o.dir, e.db, e.board, r, rt.sleep, e.lease.worker) end,
    open = function(r)
      local re, err = setup.open(o.dir, { db = e.db, keep_db = true, model = o.model,
        emit = run_emitter(emit, o, r.id, function() return set end),
        git_lock = git_lock(o), keeper = e.lease, share = share })
      -- a run --start recorded here begins fresh (run_start's resumed = false)
      if re and e.started_runs[r.id] then re.started_runs[r.id] = true end
      -- (once: a later open of it, the store lost and back, is a worker's join)
      if re and e.requeued_runs[r.id] then re.requeued_runs[r.id], e.requeued_runs[r.id] = true, nil end
      return re, err
    end }
  return set
end

-- What stops the worker: SIGINT, SIGTERM and, with --with-parent, the end of the process
-- that started it (parent: its pid, read first thing) -> the handles; state.stopping is set.
local function stoppers(e, o, parent, state, set, broken)
  local function stop(signal)
    state.stopping = true
    state.signal = state.signal or signal -- (nil: its parent's end)
    uv.update_time()
    state.stop_at = uv.now() -- (the stop's budget counts from here: drain_within)
    otel.mark_stop() -- what its runs' ends lose from now on is the stop's to say (as serve's)
    -- its statements (the loop's question, its runs' last writes, the leases' release) wait
    -- for the store STORE_MS at most, and no longer than the server that started it waits
    local ms = stopsignals.STORE_MS
    if state.stop_by then ms = math.max(0, math.min(ms, state.stop_by - state.stop_at)) end
    stopsignals.bound_store(e.db, ms)
    e:stop()
    set:stop_all()
  end
  local handles = stopsignals.on_stop(stop) -- the first one; the next are ignored
  local pipe = uv.new_signal()
  pipe:start("sigpipe", function() end) -- a write to a reader gone fails instead (emitter)
  handles[#handles + 1] = pipe
  broken.on = function() if not state.stopping then stop("sigpipe") end end
  if o.with_parent then
    -- its parent ended: this process was given to another (pid 1, or a subreaper). Without
    -- the parent's word for its pid, a parent of pid 1 at the start is taken for one that
    -- ended while this process started; with it, pid 1 is a live server (a container's)
    local want = o.parent_pid and math.tointeger(tonumber(o.parent_pid)) or parent
    local watch = uv.new_timer()
    watch:start(0, 500, function()
      if ((not o.parent_pid and parent == 1) or uv.os_getppid() ~= want) and not state.stopping then stop() end
    end)
    watch:unref()
    handles[#handles + 1] = watch
  end
  return handles
end

--- drain_within(state, now) -> the ms the worker's telemetry drain may take: otel.SHUTDOWN_MS,
--- cut at a stop (state.stop_at: its signal's time) to what is left of otel.STOP_BUDGET_MS
--- from the signal, and to what the server that started it said was left of its own stop
--- (state.stop_by, --stop-budget-fd: its budget began before it sent SIGTERM). Its runs
--- slow to stop took the stop past docker stop's 10 s before SIGKILL, 5 s more after them.
function cmd.drain_within(state, now)
  local within = otel.SHUTDOWN_MS
  if state.stop_at then within = otel.stop_within(now - state.stop_at) end
  if state.stop_by then within = math.max(0, math.min(within, state.stop_by - now)) end
  return within
end

--- budget_fd(word) -> word | nil, why: --stop-budget-fd's check, at parsing, before anything
--- opens it: a descriptor of at least 3 that is a pipe or a socket (serve's socketpair). Any
--- other (closed: then fd 3 is likely the loop's own; /dev/null, a file) would abort the
--- process when the loop watched it.
function cmd.budget_fd(v)
  local n = cmdline.integer(v) and math.tointeger(tonumber(v))
  if not n or n < 3 then return nil, "--stop-budget-fd needs a descriptor number of at least 3, not " .. v end
  -- one the caller passed: the loop's own pipes (4 to 7 here) are pipes too, and the worker
  -- reading one as its budget swallowed its signals' wake-ups (SIGTERM unheard) or aborted
  if rt.inherited_fd(n) == false then
    return nil, string.format("--stop-budget-fd %d: descriptor %d was not open when orket started (the caller "
      .. "passes it open: orket serve does)", n, n)
  end
  local kind = uv.guess_handle(n)
  if kind ~= "pipe" then
    return nil, string.format("--stop-budget-fd %d: descriptor %d is %s, not a pipe or socket", n, n,
      kind and ("a " .. kind) or "closed or of an unknown kind")
  end
  return v
end

--- budget_reader(fd, state) -> handle | nil, why: reads the line orket serve writes to its
--- worker's FD before SIGTERM (the ms left of its stop) into state.stop_by (loop time). The
--- descriptor is made close-on-exec: the programs the worker starts (a detached sandbox
--- helper, a seed shell) do not keep the server's socket open.
function cmd.budget_reader(fd, state)
  local cok, cwhy = rt.cloexec(fd)
  if not cok then return nil, cwhy end
  local pipe = uv.new_pipe(false)
  local ok, opened, why = pcall(pipe.open, pipe, fd)
  if not ok or not opened then
    pipe:close()
    return nil, tostring(ok and why or opened)
  end
  local buf = ""
  pipe:read_start(function(rerr, data)
    if rerr or not data then
      pipe:read_stop()
      return
    end
    buf = buf .. data
    local ms = buf:match("^(%d+)\n")
    local n = ms and math.tointeger(tonumber(ms))
    if n then
      uv.update_time()
      state.stop_by = uv.now() + n
      buf = ""
    elseif ms or #buf > 64 then
      buf = "" -- not a budget: ignored
    end
  end)
  pipe:unref() -- (never keeps the loop up)
  return pipe
end

-- The last spans and metrics of every run it worked (each run's engine has its own tracer)
-- leave before the process does, within otel.SHUTDOWN_MS in all, cut to fit the stop's
-- budget (drain_within): a collector that is down never holds the stop longer; what was
-- lost is said. Called before the signals' handles close: closed, their default action is
-- back, and a second SIGTERM during this wait would end the worker with 143 (orket.stopsignals).
local function drain_telemetry(cli, state)
  uv.update_time()
  local ok, lines = task.spawn(otel.stop_drain, cmd.drain_within(state, uv.now())):join()
  if not ok then lines = { "telemetry drain: " .. tostring(lines) } end
  for _, line in ipairs(lines) do cli.err("warning: %s", line) end
end

-- The worker's start: the run --start names left to workers, said (state.started: its
-- worker_end is said too), the bug-fix phases (docs/sandbox.md) ticked -> nil | failure
-- message[, CODE]. A --start or --resume that names nothing is said naming the argument,
-- as the other commands name a bad one (board's own "board: no card" named none).
local function begin(e, o, emit, state)
  if o.start then
    if not e.board:get(o.start) then
      return string.format("--start: no card %s (see 'orket board')", inert.named(o.start)), "ENOENT"
    end
    -- a model its server does not list, refused before the run is left to workers (orket run's):
    -- --model's, else ORKET_MODEL's, its equivalent
    local model = o.model or settings.env_model()
    local unserved = model and e.llm:unserved(model)
    if unserved then
      if o.model then return string.format("--model %s: %s", o.model, unserved), "EUSAGE" end
      return string.format("ORKET_MODEL=%s: %s", model, unserved), "EINVAL"
    end
    local id, serr, scode = start_run(e, o.dir, o)
    if not id then return serr, scode end
    state.run_id = id
  end
  if o.resume then
    local id, serr, scode = resume_run(e, o.dir, cmdline.integer(o.resume))
    -- (orket resume's own run, o.only, is its argument, not this option)
    if not id then return (scode == "ENOENT" and not o.only and "--resume: " or "") .. serr, scode end
    state.run_id = id
  end
  state.started = true
  emit { type = "worker_start", lease_ms = o.lease_ms }
  phase.at_start(e.db, e.settings, o.dir, emit, recheck.due)
end

-- orket resume RUN (o.only): that run alone of the queued ones, and the worker is done once
-- it is no longer left to the workers; the others are the workers'.
local function only_mine(queued, only)
  if not only then return queued end
  for _, r in ipairs(queued) do if r.id == only then return { r } end end
  return {}
end

--- store_gone(db, set, own) -> the message of the store's failure the worker stops its
--- runs and waits for | nil: one its runs met (set:store_failure(): a lock only where a
--- run's own tasks met it, Run:journal_broken), or one noted for the store
--- (db:journal_error) that concerns own, the worker loop's thread: a failure of the file
--- itself (full, read-only, damaged, I/O), whoever met it, or a lock (EBUSY) the loop's
--- own writes met. A lock another task of the process met (the lease keeper's renewal,
--- which tries again at its next period) neither stops the worker's runs nor keeps it
--- waiting, as it ends no run.
function cmd.store_gone(db, set, own)
  return set:store_failure() or db:journal_error(nil, own)
end

--- store_watch(dir) -> fn() -> nil | message: on SQLite, whether the file at the store's
--- path is still the one the worker opened (by device and inode). Removed or replaced
--- while the worker ran (rm -rf .orket and an import, a copy restored over it), the worker
--- went on in the file it had open, unseen by 'orket runs', and never joined the runs
--- left to the workers in the new one; nothing was said.
function cmd.store_watch(dir)
  local ok, url = pcall(project.database_url, dir)
  local path = project.db_path(dir)
  if ok and url then return function() end end
  local st = uv.fs_stat(path) -- (taken once the store is open: gone already, it is said at once)
  return function()
    local now = uv.fs_stat(path)
    if st and now and now.ino == st.ino and now.dev == st.dev then return nil end
    return string.format("the store %s was %s while the worker ran (it worked the file it had open, which "
      .. "is no longer the board's): start the worker again", config.shown(path), now and "replaced" or "removed")
  end
end

-- The worker's loop, in a task: starts each run left to workers that it can join, side by
-- side (set), until stopped (or, with --drain, none is left and none in flight) -> failure
-- message[, CODE] | nil. The store lost (a run met it, or the loop's own question): every
-- run in flight stops, leaving its turn unrecorded and the run running, and only once none
-- is in flight is the failure cleared and the store asked again, so that no run takes a
-- read that failed for a turn's own failure.
local function work(e, o, emit, state, set)
  local failed, fcode = begin(e, o, emit, state)
  if failed then return failed, fcode end
  local ops, keeper, st = lease_mod.ops(e.db), e.lease, { lost = false }
  local own = { [coroutine.running()] = true } -- the loop's task (store_gone)
  local swapped = o.store_watch
  while not state.stopping and not set.failed do
    set.failed = swapped() -- (its runs stop below, left running in the file they had)
    if set.failed then break end
    local queued, gone = nil, cmd.store_gone(e.db, set, own)
    if not gone then
      local qok, q = pcall(ops.queued, e.db)
      if qok then queued = q else gone = q end
    end
    if gone then
      set:stop_all()
      set:wait_all()
      store_lost(e, emit, st, gone, set)
    else
      store_back(emit, st)
      st.lost = false
      queued = only_mine(queued, o.only)
      if #queued == 0 and set.count == 0 and (o.drain or o.only) then break end
      set:stop_ended(queued, function(id)
        -- (a store lost here: the next round's question finds it)
        local ok, status = pcall(run_status, e.db, id)
        return ok and status or nil
      end)
      for _, r in ipairs(queued) do
        if state.stopping or set.failed then break end
        set:start(r)
      end
      if set.count == 0 and not state.stopping then keeper:idle(keeper.poll_ms * 2)
      elseif not state.stopping then set:wait(keeper.poll_ms * 2) end
    end
  end
  set:stop_all()
  set:wait_all()
  return set.failed
end

-- With --drain, the run --start or --resume named (state.run_id), ended: the worker exits
-- as 'orket run' would for it (1 failed, 3 stalled, 130 interrupted), so that a script
-- draining one target reads its outcome from the status, as from orket run's. A stop (a
-- signal, --with-parent) is 0 as ever; orket resume's worker (o.only) leaves its run's
-- status to orket resume. A status that cannot be read is no success. -> exit status
local function drained(e, o, state)
  if not (o.drain and state.run_id) or o.only or state.stopping then return 0 end
  local ok, status = pcall(run_status, e.db, state.run_id)
  return ok and run_cmd.EXIT[status] or 1
end

-- the reader of --stop-budget-fd's budget | nil (no such option, or one that cannot be read:
-- warned, and the stop keeps its own budget)
local function budget_handle(o, state, cli)
  if not o.stop_budget_fd then return nil end
  local reader, why = cmd.budget_reader(math.tointeger(tonumber(o.stop_budget_fd)), state)
  if not reader then
    cli.err("warning: --stop-budget-fd %s: %s (the stop keeps its own budget)", o.stop_budget_fd, tostring(why))
  end
  return reader
end

-- The stoppers' handles closed at the worker's end, but a signal's once one stopped it: those
-- stay open till the runtime closes them last (orket.stopsignals), as closed now they would
-- give SIGTERM its default action back, and a late one would end the stopped worker with 143.
local function close_handles(handles, state)
  for _, h in ipairs(handles) do
    if not (state.signal and h:get_type() == "signal") then h:close() end
  end
end

--- run(args, cli[, inner]) -> exit status. inner, for orket resume of a run left to the
--- workers (not a command-line word): {only = RUN: work that run alone and exit once it is
--- no longer left to the workers; model=, concurrency=: resume's own, as --model and
--- --concurrency; emit = fn(ev): the events, instead of JSON Lines}; the
--- worker sets inner.e (its engine, once open) and inner.state (state.stopping: a signal
--- stopped it).
-- The worker's words read, inner's taken in -> o | nil, exit status. --start with --resume is refused: a
-- resume refused after the start was recorded left that run to the workers, the command
-- failed, and the run kept every run of its cards out.
local function words(args, cli, inner)
  local o, st = cli.parse(cmd, args)
  if not o then return nil, st end
  o.only = inner.only
  -- (resume's own words, taken as its worker's)
  o.model = inner.model or o.model
  o.concurrency = inner.concurrency or o.concurrency
  if o.start and o.resume then
    return nil, cli.usage_error(cmd, "--start and --resume exclude each other: give one (a worker works every "
      .. "run left to the workers anyway)")
  end
  o.dir = o.dir or "."
  return o
end

function cmd.run(args, cli, inner)
  -- the parent, read first thing: one that died while this process started is pid 1 already
  local parent = uv.os_getppid()
  inner = inner or {}
  local o, st = words(args, cli, inner)
  if not o then return st end
  local name = o.name or string.format("%s:%d", uv.os_gethostname(), uv.os_getpid())
  local broken = {}
  local emit, output <close> = events(name, broken, inner, cli)
  local e, est = open_engine(o, name, emit, cli)
  if not e then
    close_output(output) -- (its message written)
    return est
  end
  inner.e = e
  local keeper = e.lease
  keeper:start()
  local state, set = { stopping = false }, runs(e, o, emit)
  inner.state = state
  local handles = stoppers(e, o, parent, state, set, broken)
  handles[#handles + 1] = budget_handle(o, state, cli)
  local ok, failure, fcode = task.spawn(work, e, o, emit, state, set):join()
  local code = ok and not failure and drained(e, o, state) or 0
  keeper:close()
  drain_telemetry(cli, state) -- (before the signals' handles close: drain_telemetry)
  close_handles(handles, state)
  if state.started then emit { type = "worker_end" } end -- (none said before its start: begin)
  rt.run("nowait")
  e.close_all()
  close_output(output)
  cli.flush_unhandled()
  if failure then
    -- with its remedy on a terminal (ESTARTING's, busy: 75)
    return cli.fail(fcode, "%s", cli.in_dir(o.dir, failure)) or 1
  end
  return ok and code or 1
end

return cmd
