-- orket run EPIC|ROCK|CARD: runs the team over the board (orket.engine). JSON Lines events
-- with --json or when stdout is not a terminal, else a live view of the run. Exit:
-- 0 done, 1 failed, 2 usage or an unknown target, 3 stalled or waiting for input, 75 busy
-- (another run works the project), 130 interrupted.
local uv = require "luv"
local task = require "orket.task"
local setup = require "orket.engine.setup"
local reload = require "orket.engine.reload"
local jsonout = require "orket.jsonout"
local liveview = require "orket.terminal.liveview"
local scheduler = require "orket.engine.scheduler"
local import = require "orket.import"
local status_view = require "orket.views.status"
local recorded = require "orket.engine.recorded"
local claims = require "orket.engine.claims"
local runlease = require "orket.engine.runlease"
local phase = require "orket.sandboxes.phase"
local recheck = require "orket.sandboxes.recheck"
local bugs = require "orket.actions.bugs"
local lineedit = require "orket.c.lineedit"
local runs = require "orket.store.runs"
local rt = require "orket.c.runtime"
local cmdline = require "orket.cmdline"
local settings = require "orket.settings"
local config = require "orket.config"
local stopsignals = require "orket.stopsignals"
local otel = require "orket.otel"
local logwriter = require "orket.serve.logwriter"
local errors = require "orket.errors"
local cjson = require "cjson"
local inert = require "orket.inert"

local cmd = { name = "run", summary = "run the team on an epic, a rock or a card" }

--- concurrency(v) -> --concurrency's value (run, resume and worker): an integer from 1 to
--- the API's cap, else nil and why.
function cmd.concurrency(v)
  local n = cmdline.integer(v)
  if not n or n < 1 or n > settings.CONCURRENCY_MAX then
    return nil, string.format("--concurrency needs an integer from 1 to %d (got %s)", settings.CONCURRENCY_MAX, v)
  end
  return n
end

--- options(target [, extra]) -> the declaration of run's words with target (its
--- positional), which orket resume shares; extra: what a second word is told ("give one
--- target", resume's "give one run")
function cmd.options(target, extra)
  return { extra = extra or "give one target", target,
    { "--model", value = "M", what = "a value", help = "every seat's model for this run, as provider:model (as ORKET_MODEL)" },
    { "--json", help = "print the engine's events as JSON Lines (the default when stdout is not a terminal)" },
    { "--concurrency", value = "N", what = "a value", check = cmd.concurrency,
      help = "turns run at once, at most " .. settings.CONCURRENCY_MAX .. " (default: orket.lua's)" },
    cmdline.DIR }
end
cmd.args = cmd.options { "EPIC|ROCK|CARD", key = "target", missing = "run needs an epic, rock or card id" }
cmd.help = [[
Works every issue under the target to done: each card gets turns from the seat routing
chooses, review by a seat holding integrity_guard, escalation after repeated rejections.
Every model response and tool call is journaled in .orket/orket.db; a run stopped by
Ctrl-C, SIGTERM, SIGHUP or a crash continues with 'orket resume'. --model overrides
every seat's model (as ORKET_MODEL does). Edits to roles/, tools/, policies/ and
routing.lua are reloaded while the run goes on (from each card's next turn; a broken edit
is reported and the old version kept). Exit status: 0 done, 1 failed (or not started: a
killed run to resume first, a project that does not load), 2 a target that names no card,
3 stalled or waiting for input (the reasons are printed), 75 busy (another run works the
project or these cards: the same command later may pass), 130 interrupted. A run that does
not start prints, with --json, one line {"type":"error","code","message","next","exit"}
as well as its message on stderr. A closed stdout (>&-) starts no run. On a terminal the
run is shown as a live view (cards by status, each seat's turn, tokens, time) ending with
a summary; --json, or stdout not a terminal, prints the engine's events as JSON Lines
instead.]]

-- Stdout written by a thread (orket.serve.logwriter; o: its options), so that the loop never
-- waits on the reader: a reader that stopped reading (a stalled log shipper) held the run
-- in a blocking write, its stop signals unheard, its lock kept. A regular file (a full
-- disk, /dev/full) keeps plain writes, whose failure orket.cli's check says.
local function open_stdout(o)
  o.fd = 1
  local out, warn = logwriter.open(o)
  if warn then io.stderr:write("orket: warning: ", warn, "\n") end
  return out
end

-- stdout's last lines (out) written as long as its reader takes them, until a stop signal
-- (logwriter's finish); what a stalled reader was left is said here -> ... (as given)
local function finish_output(out, ...)
  local ok, all = task.spawn(out.finish, out):join()
  if ok and not all then
    io.stderr:write("orket: warning: stdout's reader stopped reading: the last of the output was not written\n")
  end
  return ...
end

-- JSON Lines on stdout -> emit, writer. When the reader goes away (`orket run X | head -1`),
-- the write fails (SIGPIPE is caught while a run goes, so it does not kill the process)
-- and the run stops as on SIGINT: journal consistent, state interrupted, `orket resume`
-- continues. Any other failed write (a full disk) stops it the same way, and the command
-- then says so and ends with 1 (orket.cli's output check). Past 4 MiB waiting for the
-- reader, events are dropped, then one event says how many, as orket worker's
-- (output_dropped).
local function json_lines(on_broken)
  local out = open_stdout { on_gone = on_broken, dropped_line = function(n)
    return jsonout.encode { type = "output_dropped", dropped = n, message = string.format(
      "stdout's reader fell behind: %d events were dropped (%d MiB were waiting)", n, logwriter.MAX_BYTES >> 20) }
  end }
  return function(ev)
    local ok, line = pcall(jsonout.encode, ev)
    if ok then out:line(line) end
  end, out
end

--- parse(args, cli, c) -> opts | nil, status: the words of run (or of c, which declares
--- them with cmd.options); JSON Lines when stdout is not a terminal.
function cmd.parse(args, cli, c)
  local o, st = cli.parse(c or cmd, args)
  if not o then return nil, st end
  if o.json == nil and uv.guess_handle(1) ~= "tty" then o.json = true end
  return o
end

--- EXIT: the exit status of a run that ended so, by its status (orket worker --drain's too)
cmd.EXIT = { done = 0, failed = 1, stalled = 3, interrupted = 130 }
local EXIT = cmd.EXIT

-- A run refused before it started exits by the refusal's code (orket.cli's BUSY: another run
-- works the project or these cards, or holds the start of one, 75). A target that names no
-- card or run is bad input, 2 (its caller says so); any other refusal (EUNFINISHED: resume
-- first) is 1.

--- KIND_CODE: the code of a refusal by its kind (orket.engine.recorded.in_the_way's), as
--- the REPL's turn gives it: a run holds the lock, a run of these cards goes (or is left
--- to the workers), a killed run left a turn of them half done, the run ended meanwhile
cmd.KIND_CODE = { busy = "ELOCKED", conflict = "ERUNGOING", unfinished = "EUNFINISHED", ended = "EALREADY" }

--- refuse(o, cli, r[, emit]) -> exit status: a run that could not start (or resume), said
--- on stderr as every failure is (cli.fail), and with --json as one line on stdout too,
--- {"type":"error","code":CODE,"message":...,"next":...,"exit":N}, so that a script tells
--- busy from "resume first" from a typo without reading English; next is null when there is
--- no command to name (the key is always there: one shape). r: {code=, message=, next=
--- (the command that goes on, else the code's remedy), status= (else busy's 75, else 1)};
--- emit: the run's JSON writer once it is open (its lines stay in order), else stdout.
function cmd.refuse(o, cli, r, emit)
  local busy = cli.fail(r.code, "%s", r.message)
  local status = r.status or busy or 1
  if o.json and r.code then
    local nxt = r.next or cli.PERSON_REMEDY[r.code] or errors.remedy(r.code, r.message)
    local ev = { type = "error", code = r.code, message = cli.plain(r.message), next = nxt and errors.plain(nxt) or cjson.null,
      exit = status }
    if emit then emit(ev) else io.stdout:write(jsonout.encode(ev), "\n") end
  end
  return status
end

--- execute(o, cli, run_id_or_nil) -> exit status: starts (or resumes) a run in a task,
--- stopping gracefully on SIGINT/SIGTERM.
-- The live view on stdout (a terminal): redrawn by a 100 ms timer as well as by events,
-- so the elapsed time moves while a model thinks; its size follows SIGWINCH. Its frames
-- written by a thread (raw: open_stdout), as the JSON Lines are: a terminal that stopped
-- taking output (Ctrl-S, a stalled connection) held the loop and its signals.
-- -> view, stop (its timers), writer
local function live_view(get_engine, resume)
  local function size()
    local w, h = lineedit.term_size(1)
    return (w and w > 0) and w or 80, h
  end
  local w, h = size()
  local out = open_stdout { raw = true }
  local view = liveview.new {
    write = function(s) out:write(s) end,
    now = function() return uv.hrtime() // 1000000 end,
    color = liveview.color_on(1), plain = liveview.dumb(), width = w, height = h,
    scope = function(id)
      local e = get_engine()
      local target = e and e.board:get(id)
      return target and scheduler.scope(e.board, target) or {}
    end,
    resume = resume,
  }
  local timer, winch = uv.new_timer(), uv.new_signal()
  -- a frame may read the board (the target's scope), which on PostgreSQL waits on the
  -- server: drawn in a task, one at a time, since a timer's callback cannot wait
  local drawing = false
  timer:start(100, 100, function()
    if drawing then return end
    drawing = true
    task.spawn(function()
      local ok, err = pcall(view.tick, view)
      drawing = false
      if not ok then error(err, 0) end
    end)
  end)
  timer:unref()
  winch:start("sigwinch", function() view.width, view.height = size() end)
  winch:unref()
  return view, function()
    timer:close()
    winch:close()
  end, out
end

--- live(get_engine, resume) -> view, stop_view: the live view on stdout (orket resume of a
--- run left to the workers draws it too); stop_view() (once the view is finished) waits
--- for the terminal to take the last frame, until a stop signal.
function cmd.live(get_engine, resume)
  local view, stop, out = live_view(get_engine, resume)
  return view, function()
    stop()
    finish_output(out)
  end
end

-- The sandbox checks the run skipped (sandbox_check_skipped: its start's rechecks, its
-- deploys' checks) listed again in run_end as skipped_checks, the end summary of JSON Lines
-- (the live view keeps its own list).
local function with_skipped(emit)
  local skipped, failed = {}, {}
  return function(ev)
    if ev.type == "sandbox_check_skipped" then
      skipped[#skipped + 1] = { card = ev.card, name = ev.name, why = ev.why, sandbox = ev.sandbox }
    elseif ev.type == "sandbox_check_failed" then
      failed[#failed + 1] = { card = ev.card, sandbox = ev.sandbox, outcome = ev.outcome, followup = ev.followup,
        failed = ev.failed }
    elseif ev.type == "run_end" then
      if #skipped > 0 then ev.skipped_checks = skipped end
      if #failed > 0 then ev.failed_checks = failed end
    end
    emit(ev)
  end
end

-- Where the run's events go -> emit, view | nil, stop_view | nil, stdout's writer (to be
-- finished: finish_output): JSON Lines, or the live view on a terminal. held.e is the
-- engine once it is open (the view and a broken pipe reach it through held).
local function output(o, cli, held)
  if o.json then
    -- stopped from the loop, as a signal would: the write that failed may be inside a turn
    -- (which stop() cancels) or inside a transaction
    local emit, out = json_lines(function()
      local later = uv.new_timer()
      later:start(0, 0, function()
        later:close()
        if held.e then held.e:stop() end
      end)
    end)
    return with_skipped(emit), nil, nil, out
  end
  -- the exact line that continues this run: this binary, this project
  local where = config.at(o.dir)
  local view, stop_view, out = live_view(function() return held.e end,
    function(id) return cli.program() .. " resume " .. id .. where end)
  return function(ev) view:event(ev) end, view, stop_view, out
end

-- A refusal of in_the_way's kind (orket.engine.recorded), other the run in the way: a
-- killed run's half-done turn names the resume that goes on -> {code=, message=, next=}
local function in_the_way_refusal(o, other, why, kind)
  local code = cmd.KIND_CODE[kind]
  local nxt = code == "EUNFINISHED" and type(other) == "table" and other.id
    and string.format("orket resume %d%s", other.id, config.at(o.dir)) or nil
  return { code = code, message = why, next = nxt }
end

-- The run lock, and the claim that no other run overlaps this one: runs of orket serve may
-- go meanwhile, on other cards; under the claim (released once the run is recorded and the
-- lock tagged) none may overlap it (orket.engine.claims) -> lock, claim | nil, the refusal
-- ({code=, message=, next=}: the lock's or the claim's CODE, ELOCKED, ESTARTING, whose
-- remedies say how to find the holder, or in_the_way's).
local function take_lock(e, o, resume_id)
  local lock, lerr, lcode = setup.lock(o.dir, { runs_ok = true })
  if not lock then return nil, { code = lcode, message = lerr } end
  local claim, cerr, ccode = claims.enter(o.dir)
  if not claim then
    lock:release()
    return nil, { code = ccode, message = cerr }
  end
  local target, other, why, kind = o.target, nil, nil, nil
  if resume_id then
    -- a store that cannot be read is said, not taken for a run with no target to check
    local row, rerr = runs.get(e.db, resume_id)
    target, other, why = row and row.target, rerr ~= nil, rerr
  end
  -- asked again with the run's record (or the resumed run's lease) in work()
  if target then
    other, why, kind = recorded.in_the_way(o.dir, e.db, e.board, target, { own_run_lock = true,
      resuming = resume_id ~= nil })
  end
  if other then
    claim:release()
    lock:release()
    return nil, in_the_way_refusal(o, other, why, kind)
  end
  if claims.live(o.dir, { own_run_lock = true })[1] then
    e.no_git_recover = true -- another run's git work may be in flight: nothing is taken for a crash's leftovers
  end
  return lock, claim
end

-- SIGINT, SIGTERM and SIGHUP (its terminal closed; not under nohup: stopsignals.names) stop
-- the run; once the run has ended, they cut the telemetry's drain (bounded only by the
-- exporter's timeouts, up to a day), its rest said as dropped, and the wait for stdout's
-- reader (out: its writer, finish_output) to a moment; a closed stdout is a failed write,
-- seen by json_lines.
local function on_signals(e, out)
  local signals = {}
  for _, name in ipairs(stopsignals.names()) do
    local h = uv.new_signal()
    h:start(name, function()
      e:stop()
      if e.tracer then e.tracer:cut_drain() end
      out:cut()
    end)
    signals[#signals + 1] = h
  end
  local pipe = uv.new_signal()
  pipe:start("sigpipe", function() end)
  signals[#signals + 1] = pipe
  return signals
end

-- Edits to epics/ reach the board only through `orket import`: a function that says so
-- (an event, or a warning on a terminal), the run working the board as it is. Said even
-- when the run cannot start: an epic added and not imported yet is the likeliest reason
-- for "no card".
local function epics_warning(e, o, emit, cli)
  local changed, unread = import.changed(e.db, o.dir)
  return function(run_id)
    if unread then
      -- (a file it could not read is neither changed nor removed: said as what it is)
      local msg = "could not tell whether epics/ changed since the last import: " .. unread
      if o.json then emit { type = "epics_unread", run_id = run_id, message = msg } else cli.err("warning: %s", msg) end
    end
    if #changed == 0 then return end
    local msg = string.format("%s changed since the last import; this run works the board as imported: "
      .. "run %s to apply them", table.concat(changed, ", "), config.command("import", o.dir))
    if o.json then
      emit { type = "epics_changed", run_id = run_id, files = changed, message = msg }
    else
      cli.err("warning: %s", msg)
    end
  end
end

-- A rock whose bug-fix phase ended has handed its open bugs (and new ones) to a phase-2
-- rock: said, so a run of the old one that finds nothing to do is not a mystery (the live
-- view says an event's message as a note).
local function say_phase_moved(e, o, emit)
  if not o.target then return end
  local went = bugs.bug_rock(e.db, o.target)
  if went and went ~= o.target then
    local msg = string.format("%s's bug-fix phase has ended; its open bugs and new ones went to %s: "
      .. "run 'orket run %s%s'", o.target, went, went, config.at(o.dir))
    emit { type = "bugfix", action = "moved", rock = o.target, next_rock = went, message = msg }
  end
end

-- The run's lease in the store kept, and each of its steps written only while it is this
-- process's (orket.engine.runlease); found another's, the run stops
local function keep_lease(e, id, cli)
  runlease.watch(e.db, id, e, function()
    -- (this process may have been the one away, paused: not only its store)
    cli.err("run %d stops here: its lease in the store is another process's now (this process or its store was away "
      .. "longer than the lease); the run goes on in that process, and nothing more of it is written here", id)
    e:stop()
  end)
end

-- The claim section is the folder's: a process of the same store in another folder passes
-- it at once (docs/store.md, "Several servers"). So the question is asked again with the
-- run's record (a resumed run's: its lease) and its lease in one write transaction, which
-- the store runs one at a time: two `orket run`s of one target in two folders made two runs
-- of it, and a resume went beside a new run of its cards. A resumed run's team is checked
-- as a new run's is (orket.lua may have changed since): without a reviewer seat its cards
-- were worked into a block no retry lifts. -> run id | nil, the refusal {code=, message=,
-- next=, status=}: a target that names no card is bad input (2, as a usage error)
local function record(e, o, resume_id)
  local id, msg, code, kind
  if not resume_id then
    -- said as the command's own words (the board's named the board: "board: no card")
    local target = e.board:get(o.target)
    if not target then
      return nil, { code = "ENOENT", message = string.format("no card %s (see 'orket board')", inert.named(o.target)),
        next = "orket board" .. config.at(o.dir), status = 2 }
    end
    -- every card left under an epic or rock a person archived or canceled: a run would
    -- work none of it (Run:prepare skips them), so it is refused, saying how to end them
    local ended = scheduler.ended_target(e.board, target)
    if ended then return nil, { code = "ETERMINAL", message = ended } end
    id, msg, code, kind = recorded.start(o.dir, e, o.target, { concurrency = o.concurrency, model = o.model,
      own_run_lock = true })
  else
    local ok, cerr, ccode = setup.resumable(o.dir, e)
    if not ok then return nil, { code = ccode, message = cerr } end
    id, msg, code, kind = recorded.resume(o.dir, e.db, e.board, resume_id, { own_run_lock = true })
  end
  if id then return id end
  if kind then return nil, in_the_way_refusal(o, nil, msg, kind) end
  return nil, { code = code, message = msg }
end

-- The run itself, in a task: started (or resumed), recorded, worked -> its status, the
-- view's note for a terminal | nil, nil, the exit status of its refusal (said).
local function work(e, o, resume_id, lock, claim, emit, cli)
  local warn = epics_warning(e, o, emit, cli)
  -- the bug-fix phases (docs/sandbox.md): bugs the sandboxes' health checks found are
  -- filed before the run reads its scope, so this run works them
  phase.at_start(e.db, e.settings, o.dir, emit, recheck.due)
  say_phase_moved(e, o, emit)
  local id, refusal = record(e, o, resume_id)
  if not id then
    warn(nil)
    -- the team's problems name orket.lua's line, as `orket validate` does
    refusal.message = cli.in_dir(o.dir, config.placed(o.dir, refusal.message))
    return nil, nil, cmd.refuse(o, cli, refusal, emit)
  end
  warn(id)
  lock:tag(id) -- so `orket runs` can tell this run from one that was killed
  claim:release()
  keep_lease(e, id, cli)
  local status = e:execute(id)
  runlease.drop(e.db, id)
  -- a person's file the merges could not take is named here, once, as `orket status` does
  local vdoc = status_view.of_project(o.dir)
  local vnote = status_view.note(vdoc)
  if vnote and o.json then
    local paths = {}
    for i, d in ipairs(vdoc.diverged) do paths[i] = d.path end
    emit { type = "view_diverged", run_id = id, paths = paths, message = vnote }
    vnote = nil
  end
  return status, vnote -- a terminal's note is said once the live view is done with it
end

-- The last spans leave before the process does (bounded by the exporter's timeouts, or cut
-- by a stop signal: on_signals); what a collector did not take is said (otel.drop_lines),
-- never a failure of the run. (The drain polls its deadline: in a task of its own.)
local function drain_traces(e, cli)
  if not e.tracer then return end
  local ok, st = task.spawn(e.tracer.drain, e.tracer):join()
  local lines = ok and otel.drop_lines(st) or { "telemetry drain: " .. tostring(st) }
  for _, line in ipairs(lines) do cli.err("warning: %s", line) end
end

-- --model's model (else ORKET_MODEL's, its equivalent: every turn's model either way, as
-- orket.engine.routing.override_model reads them) that its server does not list -> why,
-- what named it | nil: refused as a provider not configured is, before a card is touched,
-- else each card that reaches the model would be blocked on it (the server asked in a
-- task: client:unserved). No other model is asked for: a run without either asks nothing.
local function unserved_model(e, o)
  local model = o.model or settings.env_model()
  if not model then return nil end
  local _, why = task.spawn(e.llm.unserved, e.llm, model):join()
  return why, o.model and ("--model " .. o.model) or ("ORKET_MODEL=" .. model)
end

-- The run's engine, its --model checked -> e | nil, the exit status (said; a usage error
-- shows the usage of caller, the command the person typed: run or resume)
local function open_engine(o, cli, emit, stop_view, resume_id, caller)
  local e, err, code = setup.open(o.dir, { model = o.model, concurrency = o.concurrency, emit = emit })
  if not e then
    if stop_view then stop_view() end
    if code == "EUSAGE" then return nil, cli.usage_error(caller, "%s", err) end -- a bad --model
    return nil, cmd.refuse(o, cli, { code = code or "EINVAL", message = cli.in_dir(o.dir, err) }, emit)
  end
  local unserved, named
  if not resume_id then unserved, named = unserved_model(e, o) end
  if unserved then
    if stop_view then stop_view() end
    e.close_all()
    if o.model then return nil, cli.usage_error(caller, "%s: %s", named, unserved) end
    -- (a variable's value: no usage to show)
    return nil, cmd.refuse(o, cli, { code = "EINVAL", message = named .. ": " .. unserved }, emit)
  end
  return e
end

-- The run over: its stop signals and watcher closed, the live view's end drawn, the engine
-- closed -> the SIGPIPE handle, kept until the last events are written (a reader gone while
-- the thread still writes them is a failed write, not the process's end)
local function wind_down(e, signals, watcher, view, stop_view)
  local sigpipe = table.remove(signals)
  for _, h in ipairs(signals) do h:close() end
  watcher:close()
  if view then
    if view.frames > 0 then view:finish() end
    stop_view()
  end
  rt.run("nowait")
  e.close_all()
  return sigpipe
end

local function execute(o, cli, resume_id, caller)
  local held = {}
  local emit, view, stop_view, out = output(o, cli, held)
  local e, exit = open_engine(o, cli, emit, stop_view, resume_id, caller)
  held.e = e
  if not e then return finish_output(out, exit) end
  local lock, claim = take_lock(e, o, resume_id)
  if not lock then
    if stop_view then stop_view() end
    e.close_all()
    return finish_output(out, cmd.refuse(o, cli, claim, emit)) -- (its JSON line written first)
  end
  -- Edits to roles/, tools/, policies/ and routing.lua apply from the next turn on.
  local watcher, signals = reload.watch(e), on_signals(e, out)
  local ok, status, view_note, refused = task.spawn(work, e, o, resume_id, lock, claim, emit, cli):join()
  claim:release() -- the run could not start
  drain_traces(e, cli)
  local sigpipe = wind_down(e, signals, watcher, view, stop_view)
  lock:release()
  -- the last events wait for stdout's reader with the run over and its lock given back
  finish_output(out)
  sigpipe:close()
  if view_note then cli.err("note: %s", view_note) end
  cli.flush_unhandled()
  if not ok then
    cli.err("%s", status)
    return 1
  end
  return status and EXIT[status] or refused or 1
end

-- A workspace/ that is a file stops the run before anything is opened, said as `orket status`
-- says it, with the command that clears the way (the workspace's own message named no fix).
-- One that is missing is made anew by the run (docs/git.md). caller: the command whose usage
-- a usage error shows (resume passes its own), run's when not given.
-- A stdout the caller closed (`>&-`: core/main.c puts a read-only /dev/null in its place),
-- or opened only for reading, is refused before the run starts: its first event's write
-- would fail and stop it as on SIGINT, which left the run done or interrupted by how fast it
-- was (orket.cli stdout_unwritable).

--- closed_stdout(cli) -> 1 (said) | nil: stdout cannot be written (cli.stdout_unwritable), so
--- no run starts (orket resume asks it first too)
function cmd.closed_stdout(cli)
  if not cli.stdout_unwritable() then return nil end
  cli.err("cannot write the output: stdout is closed (or open only for reading), so the run's events could not "
    .. "be written and no run was started; send it to a file, a pipe or /dev/null")
  return 1
end

function cmd.execute(o, cli, resume_id, caller)
  local gone, code = config.workspace_gone(o.dir)
  if gone and code == "ENOTDIR" then return cmd.refuse(o, cli, { code = code, message = gone }) end
  return cmd.closed_stdout(cli) or execute(o, cli, resume_id, caller or cmd)
end

--- continue_hint(dir, db, board, id, cli[, own_run_lock]) -> "continue with ...": what gets card id going
--- again once a person put it back to ready (orket answer, orket retry), decided as a run's
--- start is refused (recorded.in_the_way): a live run of it takes it up on its next pass; a
--- killed or interrupted one that left a turn half done is resumed, as a new run is refused
--- then; a card under an archived or canceled parent is worked by neither.
function cmd.continue_hint(dir, db, board, id, cli, own_run_lock)
  local where = config.at(dir)
  local card = board:get(id)
  local over = card and scheduler.ended_parent(board, card)
  if over then
    local why, how = scheduler.ended_why(over, id)
    return string.format("no run works it: %s; end it with %s", why, how)
  end
  -- (a store that cannot be read: the plain hint, the answer itself is made)
  local ok, other, _, kind = pcall(recorded.in_the_way, dir, db, board, id, { own_run_lock = own_run_lock, prune = false })
  if ok and other and other.id then
    if kind == "unfinished" then
      return string.format("continue with 'orket resume %d%s' (run %d of %s left a turn half done: a new run "
        .. "would redo it, so 'orket run' is refused)", other.id, where, other.id, tostring(other.target))
    end
    local who = other.worker and ("worker " .. other.worker) or other.pid and ("process " .. tostring(other.pid))
    if who then
      return string.format("run %d (%s, %s) is going and takes it up on its next pass", other.id,
        tostring(other.target), who)
    end
    return string.format("run %d (%s) is left to the workers, which take it up", other.id, tostring(other.target))
  end
  return string.format("continue with 'orket resume%s' or 'orket run %s%s'", where, cli.shell_quote(id), where)
end

function cmd.run(args, cli)
  local o, st = cmd.parse(args, cli, cmd)
  if not o then return st end
  return cmd.execute(o, cli, nil)
end

return cmd
