-- orket resume [RUN]: continues a run that was interrupted, killed or stalled (after
-- 'orket answer'), from its journal: recorded model responses and tool calls are not repeated.
local run_cmd = require "orket.cmd.run"
local runs = require "orket.store.runs"
local cmdline = require "orket.cmdline"
local recorded = require "orket.engine.recorded"

local cmd = { name = "resume", summary = "continue an interrupted or stalled run",
  args = run_cmd.options { "RUN", optional = true, key = "target",
    check = function(v) return cmdline.integer(v) and v, "RUN must be a run number (see 'orket runs')" end } }
cmd.help = [[
Continues RUN (default: the latest run that is not done) where it stopped. Model responses
and tool calls already in the journal are used as recorded, so nothing is asked or done twice.
A run left to the workers (orket worker --start, orket serve --workers) is left to them
again, as when it started: this process works it as a worker does ('orket worker --resume
RUN --drain', JSON Lines), and every idle worker of the store joins it.]]

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
-- --start): left to the workers again and worked here as a worker, until no run is left to
-- them; its exit status then the run's, as a resume's. Worked here alone, beside the
-- workers' runs, it stayed ended in the store: the idle workers never joined it, and once
-- this process died nothing took its cards up again.
local function to_workers(o, cli, id)
  local args = { "--resume", tostring(id), "--drain", o.dir or "." }
  if o.model then args[#args + 1] = "--model"; args[#args + 1] = o.model end
  if o.concurrency then args[#args + 1] = "--concurrency"; args[#args + 1] = tostring(o.concurrency) end
  local st = require("orket.cmd.worker").run(args, cli)
  if st ~= 0 then return st end
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local row = runs.get(db, id)
  db:close()
  return ({ done = 0, failed = 1, stalled = 3, interrupted = 130, running = 130 })[row and row.status] or 0
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
