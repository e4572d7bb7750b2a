-- orket.sandboxes.phase: a rock's bug-fix phase (docs/sandbox.md). It opens when the rock is
-- done; bugs are issue cards in a "bugs" epic under the rock (orket.actions.bugs), filed by
-- people, by the sandboxes' failing health checks (with their last log lines) and by
-- acceptance checks, an open bug with the same fingerprint getting a comment instead of a twin. A
-- tick (orket serve's loop, each run and worker at its start, `orket bugfix tick`) opens
-- the phases due, files what the health checks found and ends a phase by
-- orket.sandboxes.bugfix's rule: its sandboxes stop and its open bugs move to a new
-- phase-2 rock. Times come from orket.clock; the rows are orket.store.bugfix's.
local uv = require "luv"
local rt = require "orket.c.runtime"
local cjson = require "cjson.safe"
local task = require "orket.task"
local config = require "orket.config"
local clock_mod = require "orket.clock"
local board_mod = require "orket.board"
local cards = require "orket.store.cards"
local ops = require "orket.store.bugfix"
local sandboxes = require "orket.store.sandboxes"
local sj = require "orket.store.journal_reads"
local rule = require "orket.sandboxes.bugfix"
local service = require "orket.sandboxes.service"
local database = require "orket.sandboxes.database"
local accept = require "orket.sandboxes.accept"
local filing = require "orket.actions.bugs"
local DEFAULTS = require("orket.settings.sandbox").DEFAULTS.bug_fix

local M = {}

M.LOG_LINES = 30         -- the log lines a health bug carries ...
M.LOG_BYTES = 8192       -- ... from at most this many of the log's last bytes
M.EVENTS_MAX = 200       -- sandbox events turned into bugs per tick

local FINAL = board_mod.FINAL
local ENGINE = board_mod.ENGINE

local iso = filing.iso
M.iso = iso
local check_store, free_id, new_card = filing.check_store, filing.free_id, filing.new_card

-- ---- the phase's life ---------------------------------------------------------------------

-- The live sandboxes of the folder dir (a real path), ids, and those of the other folders
-- sharing the store, {id=, folder=} (folder: the path the row names, nil for none; with
-- machine= and runs_on= for a row at dir's path that another machine runs). A
-- phase's end stops only the first: another folder (or another machine's folder at the
-- same path, not shared here) runs its own sandboxes, and stops them itself; a phase's start
-- journals the first as its own, the others apart.
local function live_of(db, dir)
  local mine, left = {}, {}
  for _, r in ipairs(sandboxes.list(db, false)) do
    if service.of_folder(r, dir) then
      mine[#mine + 1] = r.id
    else
      -- (a row at this very path runs elsewhere: where it runs is said with it)
      local home = service.folder_of(r)
      left[#left + 1] = { id = r.id, folder = home, machine = home == dir and service.machine_of(r) or nil,
        runs_on = home == dir and service.runs_on(r) or nil }
    end
  end
  table.sort(mine)
  table.sort(left, function(a, b) return a.id < b.id end)
  return mine, left
end

--- LEFT_TAKEN: the file a tick makes (O_EXCL) in the directory of a sandbox of its folder
--- that a phase's end, ticked in another folder, left running: the tick that makes it stops
--- the sandbox; any other, in any process that sees the folder, finds it and does not.
M.LEFT_TAKEN = "bugfix-left-taken"

local function taken(row)
  local home = service.dir_of(row)
  return not home or uv.fs_stat(home .. "/" .. M.LEFT_TAKEN) ~= nil
end

-- The sandboxes of the folder dir (a real path) that the end of a phase, ticked in another
-- folder, left running (its bugfix_end's left), still live, still dir's and not taken yet
-- (LEFT_TAKEN; a row with no directory cannot be marked, and is not taken):
-- {{rock=, phase=, rows={...}}...}, each sandbox with the newest end that left it. None
-- while a phase is open: the sandboxes serve it, and its own end lists them again.
local function left_for(db, dir)
  if #ops.list(db, true) > 0 then return {} end
  local mine = {}
  for _, r in ipairs(sandboxes.list(db, false)) do
    if service.of_folder(r, dir) and not taken(r) then mine[math.tointeger(r.id)] = r end
  end
  if next(mine) == nil then return {} end
  local out, phases = {}, ops.list(db, false)
  for i = #phases, 1, -1 do
    if next(mine) == nil then break end -- every one found: the older phases are not read
    local p = phases[i]
    for _, ev in ipairs(p.status == "ended" and db:events { card = p.rock_id } or {}) do
      local d = ev.data
      if ev.kind == "bugfix_end" and d.phase == p.id and type(d.left) == "table" then
        local rows = {}
        for _, l in ipairs(d.left) do
          local id = math.tointeger(l.id)
          if id and mine[id] then rows[#rows + 1], mine[id] = mine[id], nil end
        end
        if #rows > 0 then out[#out + 1] = { rock = p.rock_id, phase = p.id, rows = rows } end
      end
    end
  end
  return out
end

-- Takes what left_for finds, each sandbox once: the tick that makes its LEFT_TAKEN file
-- (an exclusive create: one of several ticks of the folder, whatever their processes) takes
-- it. Returns {{rock=, phase=, ids={...}}...}, the ids taken here, for the caller to stop.
local function take_left(db, dir)
  local out = {}
  for _, g in ipairs(left_for(db, dir)) do
    local ids = {}
    for _, r in ipairs(g.rows) do
      local fd = uv.fs_open(service.dir_of(r) .. "/" .. M.LEFT_TAKEN, "wx", 384)
      if fd then
        uv.fs_write(fd, string.format("%s %s\n", g.rock, tostring(g.phase)))
        uv.fs_close(fd)
        ids[#ids + 1] = math.tointeger(r.id)
      end
    end
    if #ids > 0 then out[#out + 1] = { rock = g.rock, phase = g.phase, ids = ids } end
  end
  return out
end

-- the real path of the folder dir (default the current one), as live_of takes it
local function real(dir)
  return uv.fs_realpath(dir or ".") or dir or "."
end

--- start(db, rock, {clock=, settings=, dir=}) -> phase id | nil when the rock has one
--- already: opens the rock's phase now (journal: bugfix_start, with the live sandboxes of
--- the folder dir that opens it, default the current one, as the phase's, and those of the
--- other folders sharing the store apart: others, {id=, folder=, machine=, runs_on=} as a
--- phase's end's left). The sandboxes live now stay up.
function M.start(db, rock, o)
  check_store(db, "start")
  o = o or {}
  local at = (o.clock or clock_mod.system()):now()
  local days = o.settings and o.settings.days or DEFAULTS.days
  local dir = real(o.dir)
  return db:tx(function()
    local id = ops.start(db, rock, at, ops.last_event(db))
    if not id then return false end
    local mine, others = live_of(db, dir)
    db:event { kind = "bugfix_start", card = rock, actor = "orket", data = { rock = rock, phase = id,
      started_at = iso(at), ends_at = iso(at + days * clock_mod.DAY), sandboxes = mine, others = others } }
    return id
  end) or nil
end

--- after_done(board, card_id, {clock=, settings=, dir=}) -> phase id | nil: opens the phase
--- of the card's rock when the rock is done now (after a card's merge in the folder dir)
function M.after_done(b, card_id, o)
  local c = b:get(card_id)
  c = c and b:ancestor(c, "rock")
  if not (c and c.status == "done") then return nil end
  return M.start(b.db, c.id, o)
end

-- the last lines of a sandbox's log (its socket's directory holds app.log)
local function log_tail(row)
  local home = service.dir_of(row)
  return home and accept.log_tail(home .. "/app.log", M.LOG_LINES, M.LOG_BYTES) or nil
end

-- A failing health check or an app that exited, as a bug report | nil (a sandbox whose
-- owner went away did not fail on its own).
local function health_report(db, ev, at)
  local d = cjson.decode(ev.data or "") or {}
  if type(d) ~= "table" then return nil end
  if ev.kind == "sandbox_exit" and d.code == nil and d.signal == nil then return nil end
  local target = type(d.target) == "string" and d.target or "main"
  local detail = type(d.detail) == "string" and d.detail:sub(1, 300)
    or (ev.kind == "sandbox_exit" and "the app exited" or "unhealthy")
  local id = math.tointeger(d.id) -- a number from JSON is a float: "Sandbox 3.0"
  local row = id and sandboxes.get(db, id)
  local tail = log_tail(row)
  local what = ev.kind == "sandbox_exit" and "ended" or "failed its health check"
  -- when it happened is the event's time, not the tick's (a minute later with serve's
  -- interval, hours later when the tick is a later `orket run`)
  local when = ev.at or (ev.id and sj.event_at(db, ev.id))
  when = type(when) == "string" and when:gsub("^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d)%.%d+Z$", "%1Z") or iso(at)
  local body = string.format("Sandbox %s (%s) %s at %s: %s\n", id and tostring(id) or tostring(d.id), target, what,
    when, detail)
  if tail and tail ~= "" then body = body .. "\nIts last log lines:\n\n```\n" .. tail .. "\n```\n" end
  return { title = string.format("sandbox %s: %s", target, detail), body = body:sub(1, filing.BODY_MAX),
    -- the same failure again is the same bug: numbers that change between runs (ports,
    -- pids, sizes) are left out
    fingerprint = ("health " .. target .. " " .. ev.kind .. " " .. detail:gsub("%d%d%d%d+", "#")):sub(1, filing.FINGERPRINT_MAX) }
end

-- Files what the sandboxes' health checks found since the phase last looked.
local function file_health(db, p, at, filed)
  local evs = ops.sandbox_events(db, p.seen_event, M.EVENTS_MAX)
  if #evs == 0 then return end
  local reports = {}
  for _, ev in ipairs(evs) do reports[#reports + 1] = health_report(db, ev, at) end
  -- taken in the same transaction as the bugs: two tickers never file them twice
  local ok, err = db:tx(function()
    if not ops.take_events(db, p.id, p.seen_event, evs[#evs].id) then return false end
    for _, r in ipairs(reports) do
      local id, dup_or_err, code = filing.file_bug(db, { rock = p.rock_id, title = r.title, body = r.body,
        fingerprint = r.fingerprint, source = "health", clock = { now = function() return at end } })
      if not id then return nil, dup_or_err, code end
      filed[#filed + 1] = { card = id, duplicate = dup_or_err, rock = p.rock_id, source = "health" }
    end
    return true
  end)
  if ok == nil then error(err, 0) end
end

-- Ends phase p (its status st says why): its open issues move to a new phase-2 rock, with
-- their ids and history; the epics they left follow. Returns what it did, or nil when
-- another process ended it first. dir: the real path of the folder whose tick ends it (its
-- sandboxes are the ones to stop).
local function finish(db, p, st, at, dir)
  local b = board_mod.open(db)
  local out
  local ok, err = db:tx(function()
    local open = ops.open_cards(db, p.rock_id)
    local next_rock, epic
    local left = {}
    if #open > 0 then
      next_rock = free_id(db, p.rock_id .. "-2")
      local rock = cards.head(db, p.rock_id)
      new_card(db, { id = next_rock, type = "rock", name = "Bug-fix phase 2 of " .. p.rock_id,
        summary = "The bugs still open when " .. p.rock_id .. "'s bug-fix phase ended", seat = rock and rock.seat })
      epic = next_rock .. "-bugs"
      new_card(db, { id = epic, type = "epic", parent = next_rock, name = "Bugs",
        summary = "Bugs carried over from " .. p.rock_id })
      for _, id in ipairs(open) do
        local c = cards.head(db, id)
        left[c.parent] = true
        ops.move_card(db, id, epic)
        db:event { kind = "bug_moved", card = id, actor = "orket", data = { from = c.parent, to = epic,
          rock = next_rock } }
      end
    end
    if not ops.finish(db, p.id, at, st.reason, next_rock) then return false end
    for e in pairs(left) do
      if #b:children(e) == 0 then
        local moved, merr, mcode = b:transition(e, "canceled", { actor = ENGINE,
          note = "its open issues moved to " .. next_rock })
        if not moved then return nil, merr, mcode end
      else
        b:follow(e)
      end
    end
    if epic then b:follow(epic) end
    local stop, left = {}, {}
    if #ops.list(db, true) == 0 then stop, left = live_of(db, dir) end
    out = { rock = p.rock_id, phase = p.id, reason = st.reason, next_rock = next_rock, moved = open, sandboxes = stop,
      left = left }
    db:event { kind = "bugfix_end", card = p.rock_id, actor = "orket", data = { rock = p.rock_id, phase = p.id,
      reason = st.reason, ended_at = iso(at), next_rock = next_rock, moved = open, sandboxes = stop, left = left } }
    return true
  end)
  if ok == nil then error(err, 0) end
  return ok and out or nil
end

-- stops the sandboxes ids -> {{id=, ok=, error=}...}
local function stop_each(db, stop, ids)
  local out = {}
  for _, id in ipairs(ids) do
    local ok, serr = stop(db, id)
    out[#out + 1] = { id = id, ok = ok and true or false, error = not ok and serr or nil }
  end
  return out
end

local function settings_of(o)
  if o.settings then return o.settings.bug_fix or o.settings end
  local _, s = config.settings(o.dir or ".", true)
  if type(s) ~= "table" then error("bugfix: " .. tostring(s), 0) end
  return s.bug_fix
end

-- one phase's status as the CLI and the API show it
local function describe(db, p, bf, now)
  local times = ops.times(db, p.id)
  local bugs = ops.bugs(db, p.id)
  local open = 0
  for _, x in ipairs(bugs) do if not FINAL[x.status] then open = open + 1 end end
  local out = { rock = p.rock_id, phase = p.id, status = p.status, started_at = iso(p.started_at),
    bugs = #bugs, open_bugs = open, epic = p.epic_id }
  if p.status == "ended" then
    out.ended_at, out.reason, out.next_rock = iso(p.ended_at), p.reason, p.next_rock
    out.days = (p.ended_at - p.started_at) / clock_mod.DAY
    out.bugs_per_day = #times / math.max(1, out.days)
  else
    local st = rule.status(p.started_at, times, now, bf)
    out.day, out.rate, out.bugs_per_day, out.ends_at, out.extended = st.day, st.rate, st.overall, iso(st.ends_at),
      st.extended
    -- its end passed and no tick has ended it yet (bug_fix.check_interval_ms, a run's or a
    -- worker's start): said, where an end in the past was shown as to come
    if st.ended then out.end_passed, out.end_reason = true, st.reason end
  end
  return out, times
end

--- status(db, {settings=, dir=, clock=}) -> the phases, oldest first: {rock, phase, status
--- ("open"|"ended"), started_at, day, rate (bugs in the last 24 hours), bugs_per_day, ends_at,
--- extended, bugs, open_bugs, epic; once ended: ended_at, reason, next_rock}. An open phase
--- whose end has passed (the next tick ends it) has end_passed = true and end_reason (why
--- it ends: the tick's reason).
function M.status(db, o)
  check_store(db, "status")
  o = o or {}
  local bf = settings_of(o)
  local now = (o.clock or clock_mod.system()):now()
  local out = {}
  for _, p in ipairs(ops.list(db, false)) do out[#out + 1] = (describe(db, p, bf, now)) end
  return out
end

--- tick(db, {dir=, settings=, clock=, stop=, recheck=}) -> {started={rock...}, filed={{card=,
--- duplicate=, rock=, source=}...}, rechecked={...}, ended={{rock=, reason=, next_rock=,
--- moved={...}, sandboxes={...}, stopped={{id=, ok=, error=}...}, left={{id=, folder=, machine=, runs_on=}...}}...},
--- left_stopped={{rock=, phase=, ids={...}, stopped={...}}...}, phases=status(...)}
--- Opens the phases of rocks done and without one, files the bugs the sandboxes' health
--- checks found (the newest open phase takes them), runs the open phases' acceptance
--- checks again when they are due (recheck: orket.sandboxes.recheck's due, given by the
--- caller), and ends each phase whose time is over: its open bugs move to a phase-2 rock
--- and, when no other phase is open, the live sandboxes of this folder (dir, default the
--- current one) stop (stop(db, id), by default orket.sandboxes.service's, which waits: call
--- it in a task); those of other folders sharing the store are left, and said (left).
--- Those a phase's end ticked in another folder left of this folder's stop here, once
--- (left_stopped), and with them this folder's kept databases go.
--- Raises on a store error.
function M.tick(db, o)
  check_store(db, "tick")
  o = o or {}
  local bf = settings_of(o)
  local clk = o.clock or clock_mod.system()
  local report = { started = {}, filed = {}, ended = {} }
  local dir = real(o.dir)
  for _, rock in ipairs(ops.unstarted(db)) do
    if M.start(db, rock, { clock = clk, settings = bf, dir = dir }) then report.started[#report.started + 1] = rock end
  end
  local open = ops.list(db, true)
  local now = clk:now()
  if #open > 0 then file_health(db, open[#open], now, report.filed) end
  report.rechecked = {}
  if o.recheck and #open > 0 then
    report.rechecked = o.recheck(db, open, { settings = bf, project = o.settings and o.settings.bug_fix and o.settings,
      now = now, filed = report.filed, dir = o.dir })
  end
  for _, p in ipairs(ops.list(db, true)) do
    local st = rule.status(p.started_at, ops.times(db, p.id), now, bf)
    if st.ended then
      local done = finish(db, p, st, now, dir)
      if done then report.ended[#report.ended + 1] = done end
    end
  end
  local stop = o.stop or service.stop
  for _, e in ipairs(report.ended) do e.stopped = stop_each(db, stop, e.sandboxes) end
  -- what a phase's end ticked in another folder left of this one's: stopped here, once
  report.left_stopped = take_left(db, dir)
  for _, g in ipairs(report.left_stopped) do g.stopped = stop_each(db, stop, g.ids) end
  -- the last phase ended (here, or in another folder that left this one's sandboxes): the
  -- databases kept for its redeploys are taken by no one now (the sandboxes just stopped
  -- kept none: no phase was open at their end)
  if (#report.ended > 0 or #report.left_stopped > 0) and o.dir and #ops.list(db, true) == 0 then
    database.drop_kept(o.dir)
  end
  report.phases = M.status(db, { settings = bf, clock = clk })
  return report
end

--- left_line(g) -> what a tick said of g, one of its left_stopped: "R: the end of its bug-fix
--- phase, ticked in another folder, left N of this folder's sandbox(es) running: stopped
--- here (ids)", with those that failed to stop
function M.left_line(g)
  local ids, failed = {}, {}
  for _, x in ipairs(g.stopped) do
    ids[#ids + 1] = tostring(x.id)
    if not x.ok then failed[#failed + 1] = string.format("%s: %s", tostring(x.id), tostring(x.error)) end
  end
  return string.format("%s: the end of its bug-fix phase, ticked in another folder, left %d of this folder's "
    .. "sandbox(es) running: stopped here (%s)%s", g.rock, #g.stopped, table.concat(ids, ", "),
    #failed > 0 and ("; failed to stop " .. table.concat(failed, "; ")) or "")
end

--- at_start(db, settings, dir, emit [, recheck]): a tick at a run's or a worker's start, what
--- it did told as events {type="bugfix", action="start"|"bug"|"end" (stopped, left: the
--- sandboxes it stopped here and those it left to other folders, counted)|"left_stopped" (with
--- message)|"error", ...} and
--- {type="sandbox_check_skipped", card=, name=, why=, sandbox=}; a failed
--- tick is an event too and the run goes on (the phases wait for the next tick)
function M.at_start(db, settings, dir, emit, recheck)
  local ok, r = pcall(M.tick, db, { settings = settings, dir = dir, recheck = recheck })
  if not ok then
    emit { type = "bugfix", action = "error", message = tostring(r) }
    return
  end
  for _, rock in ipairs(r.started) do emit { type = "bugfix", action = "start", rock = rock } end
  for _, f in ipairs(r.filed) do
    emit { type = "bugfix", action = "bug", card = f.card, duplicate = f.duplicate, rock = f.rock, source = f.source }
  end
  -- acceptance checks that could not run here (no browser): said, never a bug
  for _, x in ipairs(r.rechecked or {}) do
    for _, k in ipairs(x.skipped or {}) do
      emit { type = "sandbox_check_skipped", card = k.card, name = k.name, why = k.why, sandbox = x.sandbox }
    end
  end
  for _, e in ipairs(r.ended) do
    emit { type = "bugfix", action = "end", rock = e.rock, reason = e.reason, next_rock = e.next_rock,
      moved = #e.moved, stopped = #e.stopped, left = #e.left }
  end
  for _, g in ipairs(r.left_stopped) do
    emit { type = "bugfix", action = "left_stopped", rock = g.rock, stopped = #g.stopped, message = M.left_line(g) }
  end
end

--- ticker{db=, dir=, log=fn(fields), stop=, recheck=} -> {close=fn}: ticks every bug_fix.check_interval_ms
--- (read again from orket.lua each time) on the loop, each tick in a task of its own, the
--- first at once; a failed tick is logged and the next one comes as usual. stop: as
--- tick's (orket serve stops the sandboxes it owns itself).
function M.ticker(o)
  local timer = uv.new_timer()
  local closed, busy = false, false
  local function arm(ms)
    if not closed then timer:start(ms, 0, function()
      busy = true
      task.spawn(function()
        local interval = DEFAULTS.check_interval_ms
        local ok, err = pcall(function()
          local cfg, s = config.settings(o.dir, true)
          if not cfg then error(tostring(s), 0) end
          interval = s.bug_fix.check_interval_ms
          local r = M.tick(o.db, { settings = s, dir = o.dir, stop = o.stop, recheck = o.recheck })
          for _, rock in ipairs(r.started) do o.log { event = "bugfix_start", rock = rock } end
          for _, f in ipairs(r.filed) do
            o.log { event = "bug_filed", card = f.card, duplicate = f.duplicate, rock = f.rock, source = f.source }
          end
          for _, e in ipairs(r.ended) do o.log { event = "bugfix_end", rock = e.rock, next_rock = e.next_rock, reason = e.reason,
            stopped = #e.stopped, left = #e.left } end
          for _, g in ipairs(r.left_stopped) do
            o.log { event = "bugfix_left_stopped", rock = g.rock, stopped = #g.stopped }
          end
        end)
        if not ok and not closed then o.log { event = "error", message = "bug-fix phase: " .. tostring(err) } end
        busy = false
        arm(interval)
      end)
    end) end
  end
  timer:unref()
  arm(0)
  -- close(): no tick after it; one in flight is waited for (the store closes next)
  return { close = function()
    closed = true
    if not timer:is_closing() then timer:close() end
    if busy then task.spawn(function() while busy do rt.sleep(20) end end):join() end
  end }
end

return M
