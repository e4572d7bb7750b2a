-- orket resume [RUN]: continues a run that was interrupted, killed or stalled (after
-- 'orket answer'), from its journal: recorded model responses and tool calls are not repeated.
local run_cmd = require "orket.cmd.run"
local config = require "orket.config"
local runs = require "orket.store.runs"
local restore_runs = require "orket.store.restore_runs"
local turns = require "orket.store.turns"
local cmdline = require "orket.cmdline"
local recorded = require "orket.engine.recorded"
local claims = require "orket.engine.claims"
local localuse = require "orket.serve.localuse"
local setup = require "orket.engine.setup"
local gitwork = require "orket.engine.gitwork"
local board = require "orket.board"
local status_view = require "orket.views.status"
local inert = require "orket.inert"
local uv = require "luv"

local cmd = { name = "resume", summary = "continue an interrupted or stalled run",
  args = run_cmd.options({ "RUN", optional = true, key = "target",
    check = function(v) return cmdline.integer(v) and v, "RUN must be a run number (see 'orket runs')" end },
    "give one run") }
cmd.help = [[
Continues RUN (default: the latest run that is not done and that no process executes now, such
as a server's run going beside one killed here, passing over a stopped run that recorded no
model response, such as a REPL turn the card did not get) where it stopped. Model responses
and tool calls already in the journal are used as recorded, so nothing is asked or done twice.
Cards of the run's target that a model failure which passes with time blocked (the server
down, busy or slow: transient, rate_limited or timeout, once the run's later rounds ran
out) are taken back to ready first, each said, their budgets going on as they were ('orket
retry CARD' starts them over); a resume left to the workers (below) too.
A run left to the workers (orket worker --start, orket serve --workers) is left to them
again, as when it started: this process works it, that run alone, as a worker does
('orket worker --resume RUN'), and every idle worker of the store joins it; it exits when
the run ends. Ctrl-C ends the run (interrupted) unless another worker works it now.
With every run done there is nothing to resume (exit status 1), but main's view (workspace/)
is still refreshed as a run's start refreshes it: the line says whether it caught up with
main, or why not. A RUN that does not exist is bad input (exit status 2); the other exit
statuses, and the JSON line of a resume that does not start, are orket run's.]]

-- No run left to resume -> nil, message, CODE, exit status[, the command that goes on]:
-- every run done (EALREADY), or nothing has run (ENOENT)
local function nothing_to_resume(dir, db)
  local recent, rerr = runs.recent(db, 1)
  if not recent then return nil, rerr end
  -- the newest row a restore's, keeping a dropped run's id: not done, never ran here, and
  -- not resumed; "every run is done" hid it, and the cards it had are worked by a new run
  -- (only the newest: once a run came after the restore, that run is the one that went on)
  local r = recent[1]
  local kept = r and r.status ~= "done" and restore_runs.kept(r)
  if kept then
    -- (the placeholder inside the command's text: alone in quotes, the tree's check of error codes reads it as one)
    local again = ((r.target and r.target ~= "?") and ("orket run " .. inert.shell_word(r.target)) or "orket run EPIC")
      .. config.at(dir)
    return nil, string.format("no run to resume: run %d never ran in this store (its row keeps an id the store "
      .. "replaced by the restore of %s gave out), and no other run is unfinished; '%s' works its cards again",
      r.id, tostring(kept.file), again), "EALREADY", 1, again
  end
  if recent[1] then return nil, "no run to resume (every run is done)", "EALREADY", 1 end
  return nil, "no run to resume: nothing has run yet; start one with 'orket run EPIC'", "ENOENT", 1
end

-- The run to resume: target's, else the latest not done that no process is executing now
-- (a server's run going beside one killed here is not the one to carry on; when every one
-- is going, the latest, whose refusal says so) -> row | nil, message[, the refusal's code
-- and exit status: no run RUN, bad input (2); every run done (EALREADY); nothing has run;
-- then the command that goes on, when it is not the code's].
-- A store that cannot be read gives its own message (ECORRUPT: the file is damaged), never
-- "no run".
local function find_run(dir, db, target)
  local row, err
  if target then
    row, err = runs.get(db, cmdline.integer(target))
  else
    local going = {}
    for _, r in ipairs((claims.going(dir, db))) do going[r.id] = true end
    local candidates = runs.not_done(db, 20)
    -- a stopped run that recorded no model response (a REPL turn the card did not get) has
    -- nothing to carry on: a killed or interrupted run before it is the one meant
    -- (a row a restore wrote to keep a dropped run's id never ran here: not_done leaves it out)
    local empty_stop
    for _, r in ipairs(candidates) do
      if not going[r.id] then
        if r.status == "stopped" and turns.count(db, r.id) == 0 then
          empty_stop = empty_stop or r
        else
          row = r
          break
        end
      end
    end
    row = row or empty_stop or candidates[1]
  end
  if row or err then return row, err end
  if target then return nil, "no run " .. target .. " (see 'orket runs')", "ENOENT", 2 end
  return nothing_to_resume(dir, db)
end

-- recover(dir, db) -> true | nil, msg: what a run's start does first (gitwork.recover),
-- with no run: stale locks removed, the cards' directories settled, main's view refreshed.
-- Under .orket/git.lock, as a worker's repository is (an idle worker shares it).
local function recover(dir, db)
  local git, err = gitwork.open(dir .. "/workspace", dir .. "/.orket/worktrees")
  if not git then return nil, err end
  git.repo = gitwork.guard(git.repo, dir .. "/.orket/git.lock", git.state)
  -- (a done card's directory that uncommitted changes keep stays, as at a run's start; its
  -- event belongs in a run's journal, and there is no run)
  local ok, rerr = gitwork.recover { git = git, board = board.open(db), emit = function() end }
  git.repo:close()
  return ok, rerr
end

-- With every run done, a resume still refreshes main's view as a run's start does, under
-- the project's run lock: what says a view behind main "catches up at the next 'orket
-- resume'" holds then too -> what it did, a clause for the "no run" line
local function refresh_view(dir, db)
  local gone = config.workspace_gone(dir) -- a missing workspace/ is made anew by a run, not here
  if not gone and not uv.fs_lstat(dir .. "/workspace/.git") then gone = select(2, status_view.of_project(dir)) end
  -- (a reason may name a git -C workspace command: it runs in the project's folder)
  local where = dir ~= "." and " (git's commands run in " .. config.dir_word(dir) .. ")" or ""
  if gone then return "workspace/ was not refreshed: " .. tostring(gone) .. where end
  local lock, lerr = setup.lock(dir, { db = db, what = "resume" })
  if not lock then return "workspace/ was not refreshed: " .. tostring(lerr) end
  local ok, rerr = recover(dir, db)
  lock:release()
  if not ok then return "workspace/ was not refreshed: " .. tostring(rerr) .. where end
  local doc, derr = status_view.of_project(dir)
  if not doc then return "workspace/ was refreshed, but could not be read after: " .. tostring(derr) end
  -- (its reason may name a git -C workspace command: orket status says where that runs)
  if doc.behind then
    return string.format("workspace/ is still behind main: %s; 'orket status%s' says more", doc.behind.reason,
      config.at(dir))
  end
  local n = #doc.diverged
  return "workspace/ caught up with main" .. (n > 0 and string.format(" (keeping your version of %d path%s "
    .. "where main has another: 'orket status%s' shows %s)", n, n == 1 and "" or "s", config.at(dir),
    n == 1 and "it" or "them") or "")
end

-- A run left to the workers, ended, resumed as a start of one is made (orket worker
-- --start): left to the workers again and worked here as a worker, that run alone, until
-- it is no longer left to them; its exit status then the run's, as a resume's. Worked here
-- alone, beside the workers' runs, it stayed ended in the store: the idle workers never
-- joined it, and once this process died nothing took its cards up again.
-- On a terminal the live view and its summary, as any resume's; else JSON Lines.
-- SIGINT/SIGTERM: the run ended here as 'orket runs stop' ends it (interrupted, so that a
-- resume carries it on), unless another worker works it now: then it stays theirs, said.
local EXIT = { done = 0, failed = 1, stalled = 3, interrupted = 130 }

-- The live view of a resume left to the workers, on a terminal (nil with --json): its
-- events from the worker (a stop's run_end held until the run is ended here or left to
-- the workers) -> shown {view, stop, held}
local function live(o, inner, again)
  if o.json then return {} end
  local shown = {}
  shown.view, shown.stop = run_cmd.live(function() return inner.e end, function() return again end)
  inner.emit = function(ev)
    if ev.type == "run_start" then shown.opened = true end
    if ev.type == "run_end" and inner.state and inner.state.stopping then shown.held = ev; return end
    shown.view:event(ev)
  end
  return shown
end

-- The held run_end shown with status (when there is a view), then the view closed.
local function close_live(shown, status)
  if not shown.view then return end
  if status and shown.held then
    shown.held.status = status
    shown.view:event(shown.held)
  end
  if shown.view.frames > 0 then shown.view:finish() end
  shown.stop()
end

-- A signal stopped the worker while the run was still running: ended here as 'orket runs
-- stop' ends it, unless another worker works it now -> 130 | nil (it ended meanwhile:
-- another worker concluded it, said as it ended)
local function stop_here(db, id, shown, cli, again, target)
  local stopped, kind, msg = localuse.audited(db, "stop", target, function() return recorded.stop_queued(db, id) end)
  if not stopped and kind == "not_queued" then return nil end
  db:close()
  if stopped then
    if shown.view then
      shown.held = shown.held or { type = "run_end" }
      close_live(shown, "interrupted") -- its summary says how to continue
    else
      cli.err("run %d interrupted; continue with: %s", id, again)
    end
    return 130
  end
  close_live(shown, "running")
  -- stop_queued's refusals are (nil, kind, message); a transaction that failed is
  -- (nil, message, CODE)
  if not (kind == "conflict" or kind == "store") then msg = kind end
  cli.err("run %d is left to the workers, unfinished: %s; 'orket runs stop %d' ends it once no worker "
    .. "works it, then '%s' carries it on", id, tostring(msg), id, again)
  return 130
end

local function to_workers(o, cli, id)
  local words = { "--resume", tostring(id), o.dir or "." }
  local where = config.at(o.dir)
  local again = cli.program() .. " resume " .. id .. where
  local inner = { only = id, model = o.model, concurrency = o.concurrency }
  local shown = live(o, inner, again)
  local st = require("orket.cmd.worker").run(words, cli, inner) -- lazy: only this path works as a worker
  local db = st == 0 and cli.open_store(o.dir, false)
  if not db then
    close_live(shown)
    return st ~= 0 and st or 1
  end
  local row = runs.get(db, id)
  if inner.state and inner.state.stopping and row and row.status == "running" then
    local code = stop_here(db, id, shown, cli, again, row.target)
    if code then return code end
    row = runs.get(db, id)
  end
  db:close()
  close_live(shown, row and row.status or (shown.held and shown.held.status))
  -- stopped before its worker opened it (as it joined): the view showed no run_end
  if shown.view and not shown.opened and not shown.held and row and row.status == "interrupted" then
    cli.err("run %d was stopped before this resume opened it; continue with: %s", id, again)
  end
  -- (a row that cannot be read is no success)
  local code = row and EXIT[row.status]
  if row and row.status == "running" then code = 130 end
  if not code then
    cli.err("run %d: its status could not be read (%s)", id, row and tostring(row.status) or "no row")
    return 1
  end
  return code
end

function cmd.run(args, cli)
  local o, st = run_cmd.parse(args, cli, cmd)
  if not o then return st end
  if run_cmd.closed_stdout(cli) then return 1 end
  -- (its code kept for the refusal's JSON line, as orket run's)
  local db, oerr, ocode = cli.open_store_or_why(o.dir, false)
  if not db then return run_cmd.refuse(o, cli, { code = ocode or "EINVAL", message = oerr }) end
  local row, err, code, status, again = find_run(o.dir, db, o.target)
  -- (exit status 1 all the same: there was no run to resume)
  if code == "EALREADY" then err = err .. "; " .. refresh_view(o.dir or ".", db) end
  db:close()
  -- a refusal said as run's are: with --json, a line a script reads too (its code)
  if not row then
    if again then
      return run_cmd.refuse(o, cli, { code = code, message = err, status = status, next = again })
    end
    local nxt = code and (o.target and "orket runs" or code == "ENOENT" and "orket run EPIC") or nil
    return run_cmd.refuse(o, cli, { code = code, message = err, status = status or 1,
      next = nxt and (nxt .. config.at(o.dir)) })
  end
  if row.status == "done" then
    return run_cmd.refuse(o, cli, { code = "EALREADY", message = string.format("run %d is done; nothing to resume", row.id) })
  end
  local kept = restore_runs.kept(row)
  if kept then
    return run_cmd.refuse(o, cli, { code = "EALREADY", message = string.format("run %d never ran in this store: %s "
      .. "(the restore of %s); nothing to resume", row.id, kept.reason, tostring(kept.file)) })
  end
  if recorded.left_to_workers { status = "running", data = row.data } and row.status ~= "running" then
    return to_workers(o, cli, row.id)
  end
  return run_cmd.execute(o, cli, row.id, cmd)
end

return cmd
