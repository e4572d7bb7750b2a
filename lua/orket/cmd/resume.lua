-- orket resume [RUN]: continues a run that was interrupted, killed or stalled (after
-- 'orket answer'), from its journal: recorded model responses and tool calls are not repeated.
local run_cmd = require "orket.cmd.run"
local runs = require "orket.store.runs"
local cmdline = require "orket.cmdline"
local recorded = require "orket.engine.recorded"
local localuse = require "orket.serve.localuse"

local cmd = { name = "resume", summary = "continue an interrupted or stalled run",
  args = run_cmd.options { "RUN", optional = true, key = "target",
    check = function(v) return cmdline.integer(v) and v, "RUN must be a run number (see 'orket runs')" end } }
cmd.help = [[
Continues RUN (default: the latest run that is not done) where it stopped. Model responses
and tool calls already in the journal are used as recorded, so nothing is asked or done twice.
A run left to the workers (orket worker --start, orket serve --workers) is left to them
again, as when it started: this process works it, that run alone, as a worker does
('orket worker --resume RUN'), and every idle worker of the store joins it; it exits when
the run ends. Ctrl-C ends the run (interrupted) unless another worker works it now.]]

-- The run to resume: target's, else the latest not done -> row | nil, message. A store that
-- cannot be read gives its own message (ECORRUPT: the file is damaged), never "no run".
local function find_run(db, target)
  local row, err
  if target then
    row, err = runs.get(db, cmdline.integer(target))
  else
    row, err = runs.latest_not_done(db)
  end
  if row or err then return row, err end
  if target then return nil, "no run " .. target .. " (see 'orket runs')" end
  local recent, rerr = runs.recent(db, 1)
  if not recent then return nil, rerr end
  return nil, recent[1] and "no run to resume (every run is done)"
    or "no run to resume: nothing has run yet; start one with 'orket run EPIC'"
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

local function to_workers(o, cli, id)
  local args = { "--resume", tostring(id), o.dir or "." }
  if o.model then args[#args + 1] = "--model"; args[#args + 1] = o.model end
  if o.concurrency then args[#args + 1] = "--concurrency"; args[#args + 1] = tostring(o.concurrency) end
  local where = (o.dir and o.dir ~= ".") and (" -C " .. cli.shell_quote(o.dir)) or ""
  local again = cli.program() .. " resume " .. id .. where
  local inner, view, stop_view, held = { only = id }, nil, nil, nil
  if not o.json then
    view, stop_view = run_cmd.live(function() return inner.e end, function() return again end)
    inner.emit = function(ev)
      -- a stop's run_end waits until the run is ended here or left to the workers
      if ev.type == "run_end" and inner.state and inner.state.stopping then held = ev; return end
      view:event(ev)
    end
  end
  local st = require("orket.cmd.worker").run(args, cli, inner)
  local function close_view()
    if not view then return end
    if view.frames > 0 then view:finish() end
    stop_view()
  end
  if st ~= 0 then
    close_view()
    return st
  end
  local db = cli.open_store(o.dir, false)
  if not db then
    close_view()
    return 1
  end
  local row = runs.get(db, id)
  local stopping = inner.state and inner.state.stopping
  if stopping and row and row.status == "running" then
    local stopped, kind, msg = localuse.audited(db, "stop", row.target, function() return recorded.stop_queued(db, id) end)
    -- (not_queued: it ended meanwhile, another worker concluded it: said as it ended)
    if stopped or kind ~= "not_queued" then
      db:close()
      if stopped then
        if view then
          held = held or { type = "run_end" }
          held.status = "interrupted"
          view:event(held) -- its summary says how to continue
          close_view()
        else
          cli.err("run %d interrupted; continue with: %s", id, again)
        end
      else
        if view then
          if held then held.status = "running"; view:event(held) end
          close_view()
        end
        -- stop_queued's refusals are (nil, kind, message); a transaction that failed is
        -- (nil, message, CODE)
        if not (kind == "conflict" or kind == "store") then msg = kind end
        cli.err("run %d is left to the workers, unfinished: %s; 'orket runs stop %d' ends it once no worker "
          .. "works it, then '%s' carries it on", id, tostring(msg), id, again)
      end
      return 130
    end
    row = runs.get(db, id)
  end
  if held and view then
    held.status = row and row.status or held.status
    view:event(held)
  end
  db:close()
  close_view()
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
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local row, err = find_run(db, o.target)
  db:close()
  if not row then
    cli.err("%s", err)
    return 1
  end
  if row.status == "done" then
    cli.err("run %d is done; nothing to resume", row.id)
    return 1
  end
  if recorded.left_to_workers { status = "running", data = row.data } and row.status ~= "running" then
    return to_workers(o, cli, row.id)
  end
  return run_cmd.execute(o, cli, row.id)
end

return cmd
