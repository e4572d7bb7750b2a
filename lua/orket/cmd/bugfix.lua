-- orket bugfix status|tick [--json]: the rocks' bug-fix phases (orket.sandboxes.phase). status
-- shows each phase: its day, its bugs and their rate, when it ends; tick does now what
-- orket serve's loop and each run do: opens the phases due, files what the sandboxes'
-- health checks found, ends the phases whose time is over.
local inert = require "orket.inert"
local jsonout = require "orket.jsonout"
local phase = require "orket.sandboxes.phase"
local recheck = require "orket.sandboxes.recheck"
local task = require "orket.task"
local cmdline = require "orket.cmdline"

local cmd = { name = "bugfix", summary = "the rocks' bug-fix phases: status, or tick now" }
cmd.args = {
  text = "an argument", extra = "status and tick take no other argument",
  { "status|tick", key = "sub", missing = "bugfix needs status or tick",
    check = cmdline.one_of({ "status", "tick" }, "unknown subcommand '%s'") },
  { "--json", help = "print the phases (and for tick what it did) as JSON" },
  cmdline.DIR,
}
cmd.help = [[
A rock's bug-fix phase opens when the rock is done and lasts bug_fix.days; it is extended a
day at a time while more than bug_fix.extend_above bugs came in the last day, up to
bug_fix.max_days (docs/sandbox.md). 'status' lists the phases. 'tick' opens the phases of
rocks done since, files a bug for each failing health check of the sandboxes (with their last
log lines; the same failure again is a comment on the open bug), and ends each phase whose
time is over: this folder's live sandboxes stop (other folders sharing the store are left,
and said; each stops its own at its next tick, once) and its open bugs move to a new rock
ROCK-2.
'orket serve' ticks every bug_fix.check_interval_ms, and each run and worker at its start.
--json prints the phases (and for tick what it did) as JSON.]]

local function show(p)
  local line = string.format("%s: %s", p.rock, p.status)
  if p.status == "open" then
    line = line .. string.format(", day %d, %d bug(s) (%d open), %d in the last 24 h, %.2f a day; %s %s%s",
      p.day, p.bugs, p.open_bugs, p.rate, p.bugs_per_day, p.end_passed and "ended" or "ends", p.ends_at,
      p.extended > 0 and string.format(" (extended %d day(s))", p.extended) or "")
    -- an end passed is said so (it was shown as to come): the phase waits for a tick
    if p.end_passed then
      line = line .. string.format(": %s; the next tick closes the phase ('orket bugfix tick' does now)", p.end_reason)
    end
  else
    line = line .. string.format(" %s (%s), %d bug(s), %.2f a day%s", p.ended_at, p.reason, p.bugs, p.bugs_per_day,
      p.next_rock and ("; open bugs moved to " .. p.next_rock) or "")
  end
  return line
end

-- tick's result as JSON arrays where it holds lists (an empty one is [], not {}).
local function as_arrays(r)
  r.phases = jsonout.array(r.phases)
  if not r.started then return r end
  r.started, r.filed, r.ended = jsonout.array(r.started), jsonout.array(r.filed), jsonout.array(r.ended)
  r.rechecked = jsonout.array(r.rechecked or {})
  for _, x in ipairs(r.rechecked) do x.cards, x.failing = jsonout.array(x.cards), jsonout.array(x.failing) end
  for _, e in ipairs(r.ended) do
    e.moved, e.sandboxes, e.stopped = jsonout.array(e.moved), jsonout.array(e.sandboxes), jsonout.array(e.stopped)
    e.left = jsonout.array(e.left or {})
  end
  r.left_stopped = jsonout.array(r.left_stopped or {})
  for _, g in ipairs(r.left_stopped) do g.ids, g.stopped = jsonout.array(g.ids), jsonout.array(g.stopped) end
  return r
end

-- The sandboxes of other folders sharing the store a phase's end left running, as a clause
-- ("" for none): each folder stops its own.
local function left_text(left)
  if #left == 0 then return "" end
  local each = {}
  for i, l in ipairs(left) do
    -- (a row at this folder's path runs elsewhere: HOST:/path only on another machine)
    local where = l.folder or "?"
    if l.runs_on == "on another machine" or (l.machine and not l.runs_on) then
      where = l.machine .. ":" .. where
    elseif l.runs_on then
      where = string.format("%s %s: %s", where, l.runs_on, l.machine or "?")
    end
    each[i] = string.format("%d (%s)", l.id, inert.text(where))
  end
  return string.format("; left running, other folders': %s", table.concat(each, ", "))
end

-- What tick did, a line each.
local function print_tick(r)
  for _, rock in ipairs(r.started) do io.stdout:write(string.format("%s: its bug-fix phase started\n", rock)) end
  for _, f in ipairs(r.filed) do
    io.stdout:write(string.format("%s: %s (%s)\n", f.card, f.duplicate and "seen again" or "filed",
      f.source == "acceptance" and "failing acceptance checks" or "a failing health check"))
  end
  for _, x in ipairs(r.rechecked or {}) do
    io.stdout:write(string.format("%s: acceptance checks of %d card(s) run again on sandbox %d: %s\n", x.rock, #x.cards,
      x.sandbox, #x.failing == 0 and "all pass" or ("failing " .. table.concat(x.failing, " "))))
  end
  for _, e in ipairs(r.ended) do
    io.stdout:write(string.format("%s: its bug-fix phase ended (%s)%s; %d sandbox(es) stopped%s\n", e.rock, e.reason,
      e.next_rock and string.format("; %d open bug(s) moved to %s", #e.moved, e.next_rock) or "", #e.stopped,
      left_text(e.left or {})))
  end
  for _, g in ipairs(r.left_stopped or {}) do io.stdout:write(phase.left_line(g), "\n") end
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local cfg, s = cli.project_settings(o.dir, true)
  if not cfg then return 1 end
  local db = cli.open_store(o.dir, false, o.sub == "status")
  if not db then return 1 end
  local ok, r = task.spawn(function()
    if o.sub == "status" then return { phases = phase.status(db, { settings = s }) } end
    return phase.tick(db, { settings = s, dir = o.dir, recheck = recheck.due })
  end):join()
  db:close()
  if not ok then
    cli.err("%s", tostring(r))
    return 1
  end
  if o.json then
    io.stdout:write(jsonout.encode(as_arrays(r)), "\n")
    return 0
  end
  if o.sub == "tick" then print_tick(r) end
  if #r.phases == 0 then io.stdout:write("no bug-fix phase yet: one opens when a rock is done\n") end
  for _, p in ipairs(r.phases) do io.stdout:write(show(p), "\n") end
  return 0
end

return cmd
