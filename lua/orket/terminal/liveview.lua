-- orket.terminal.liveview: the live view `orket run` shows on a terminal: cards by status,
-- what each seat is doing, tokens and elapsed time, redrawn in place with ANSI cursor moves
-- (at most one frame per `interval_ms`), and a final summary. It consumes the engine's
-- events (the same ones --json prints); the terminal, the clock and the board are passed
-- in, so specs drive it with a string buffer and a fake clock. Contract: docs/engine.md.
local approvals = require "orket.actions.approvals" -- the command that decides a request
local common = require "orket.llm.common" -- how attempts and durations read
local inert = require "orket.inert"
local mainline = require "orket.actions.mainline" -- how a diverged main's commands name the run after
local status_view = require "orket.views.status" -- the line saying main's view is behind
local uv = require "luv"

local M = {}

local View = {}
View.__index = View

-- Board order of the statuses (orket.board.statuses()); any other status follows, sorted.
local ORDER = { "ready", "in_progress", "code_review", "ready_for_testing", "waiting_for_developer",
  "blocked", "done", "canceled", "archived" }
local RANK = {}
for i, s in ipairs(ORDER) do RANK[s] = i end

local COLORS = {
  done = "32", in_progress = "33", code_review = "36", ready_for_testing = "36",
  blocked = "31", waiting_for_developer = "35", canceled = "90", archived = "90",
  interrupted = "33", stalled = "35", failed = "31", bold = "1", dim = "2",
}

--- dumb() -> true when TERM is "dumb" (Emacs' shell and compile buffers, some CI log
--- viewers): a terminal that shows escapes as text, so neither colour nor cursor moves.
--- TERM unset or empty counts as dumb, as git takes it: a runner that gives a command a
--- pseudo-terminal without naming one (cron under `script`, some CI agents) logs the bytes
function M.dumb()
  local term = os.getenv("TERM")
  return term == nil or term == "" or term == "dumb"
end

--- color_on(fd) -> true when fd is a terminal that is not dumb and NO_COLOR is unset or empty
function M.color_on(fd)
  local nc = os.getenv("NO_COLOR")
  if nc ~= nil and nc ~= "" then return false end
  return uv.guess_handle(fd or 1) == "tty" and not M.dumb()
end

--- new{write=fn(s), now=fn() -> ms, color=bool, plain=bool, width=n, height=n|nil, interval_ms=100,
---   scope=fn(target) -> cards, resume=fn(run_id) -> command}
--- -> view. write receives whole frames (cursor moves included); plain (a dumb terminal):
--- no frame is redrawn, only the notes as they come and the final summary; scope, optional, returns
--- the target's issues ({id=, status=}) so counts include cards no event has named yet;
--- resume, optional, the command line that continues run_id, which the summary of an
--- interrupted run gives (default "orket resume ID").
function M.new(o)
  if type(o) ~= "table" or type(o.write) ~= "function" or type(o.now) ~= "function" then
    error("bad argument #1 to 'new' (table with write and now functions expected)", 2)
  end
  local v = setmetatable({
    write = o.write, now = o.now, color = o.color and true or false, plain = o.plain and true or false,
    width = o.width or 80, height = o.height,
    interval = o.interval_ms or 100, scope = o.scope,
    resume = o.resume or function(id) return "orket resume " .. id end,
    started = o.now(), last_draw = nil, lines = 0, dirty = true, frames = 0,
    status = {}, order = {}, jobs = {}, seats = {}, notes = {},
    tokens = 0, turns = 0, retries = 0, finished = false,
    -- the gate's refusals: calls denied, and paths a program changed that were put back,
    -- each by card (the summary names where `orket card` shows why)
    denied = { calls = 0, paths = 0, cards = {}, order = {} },
  }, View)
  return v
end

function View:paint(s, code)
  if not self.color or not code then return s end
  return "\27[" .. code .. "m" .. s .. "\27[0m"
end

local function clock(ms)
  local s = ms // 1000
  if s >= 3600 then return string.format("%d:%02d:%02d", s // 3600, s // 60 % 60, s % 60) end
  return string.format("%02d:%02d", s // 60, s % 60)
end
M.clock = clock

local function thousands(n)
  local s = tostring(math.tointeger(n) or n)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end
M.thousands = thousands

function View:set_status(id, st)
  if not id or not st then return end
  if not self.status[id] then self.order[#self.order + 1] = id end
  self.status[id] = st
end

function View:refresh_scope()
  if not self.scope or not self.target then return end
  local ok, cards = pcall(self.scope, self.target)
  if ok and type(cards) == "table" then
    for _, c in ipairs(cards) do
      if c.id and c.status then self:set_status(inert.line(c.id), inert.line(c.status)) end
    end
  end
  self.scoped_at = self.now()
end

function View:note(s) self.notes[#self.notes + 1] = s end

-- counts n refusals of kind ("calls" or "paths") on card
function View:count_denied(card, kind, n)
  local d = self.denied
  d[kind] = d[kind] + n
  local c = d.cards[card]
  if not c then
    c = { calls = 0, paths = 0 }
    d.cards[card] = c
    d.order[#d.order + 1] = card
  end
  c[kind] = c[kind] + n
end

-- The summary's line of a kind of refusal, or nil when there was none: "3 calls denied:
-- orket card ONE-1 shows why", with each card's count when there are several
function View:denied_line(kind, what)
  local d = self.denied
  local n = d[kind]
  if n == 0 then return nil end
  local by = {}
  for _, card in ipairs(d.order) do
    local k = d.cards[card][kind]
    if k > 0 then by[#by + 1] = { card = card, n = k } end
  end
  local one = #by == 1 and by[1].card
  local each = {}
  if not one then
    for i = 1, math.min(#by, 10) do each[#each + 1] = by[i].card .. " " .. by[i].n end
    if #by > 10 then each[#each + 1] = "..." end
  end
  return string.format("%s%s: orket card %s shows why", what(n), one and "" or (" (" .. table.concat(each, ", ") .. ")"),
    one or "CARD")
end

-- A bug-fix phase's event as a note: ticked at the run's start (orket.sandboxes.phase), or
-- a run of a rock whose phase has ended (its message). The end counts the sandboxes it
-- stopped here and those it left running to other folders sharing the store, when any.
local function bugfix_line(ev)
  local rock = tostring(ev.rock)
  if ev.action == "start" then return rock .. ": its bug-fix phase started" end
  if ev.action == "bug" then
    return string.format("%s: a failing health check %s", tostring(ev.card), ev.duplicate and "seen again" or "filed as a bug")
  end
  if ev.action == "end" then
    local stopped, left = math.tointeger(ev.stopped) or 0, math.tointeger(ev.left) or 0
    return string.format("%s: its bug-fix phase ended (%s)%s%s%s", rock, tostring(ev.reason),
      ev.next_rock and ("; open bugs moved to " .. tostring(ev.next_rock)) or "",
      stopped > 0 and string.format("; %d sandbox(es) stopped", stopped) or "",
      left > 0 and string.format("; %d left running for other folders sharing the store", left) or "")
  end
  -- left_stopped and moved carry their sentence, which names the rock; an error, its message
  if ev.action == "left_stopped" or ev.action == "moved" then return tostring(ev.message) end
  return "bug-fix phase: " .. tostring(ev.message)
end

-- main's push to git.remote after a merge or at the run's start (orket.actions.mainline):
-- pushed says nothing, unless the remote's main had been moved back (rewound: the push put
-- commits back); main left unpushed (diverged: a person merges, its error says how; failed:
-- the next merge or run tries again) is said once for each reason, and again in the summary
-- while no later push went
function View:main_pushed(ev)
  if ev.outcome == "pushed" then
    self.unpushed = nil
    local r = ev.rewound
    local note = type(r) == "table" and r.note or type(r) == "string" and r
    if note then self:note("main pushed to the remote: " .. tostring(note)) end
    return
  end
  local why = tostring(ev.error or ev.outcome)
  -- the run that pushes main after a person's merge: this one's target again
  local at = self.target and why:find(mainline.RERUN, 1, true)
  if at then why = why:sub(1, at - 1) .. "'orket run " .. self.target .. "'" .. why:sub(at + #mainline.RERUN) end
  local line = string.format("main NOT pushed to the remote%s: %s", ev.outcome == "diverged" and " (it diverged)" or "",
    why)
  if line ~= self.unpushed then self:note(line) end
  self.unpushed = line
end

--- view:event(ev): folds one engine event into the view; draws when a frame is due.
function View:event(ev)
  -- events carry the model's text, tool names, agents' card ids and servers' error
  -- bodies: every string is made inert before it can reach the terminal (the only
  -- escapes a frame holds are the view's own colours and cursor moves)
  ev = inert.copy(ev)
  local t = ev.type
  if t == "run_start" then
    self.run_id, self.target, self.concurrency, self.resumed = ev.run_id, ev.target, ev.concurrency, ev.resumed
    self:refresh_scope()
  elseif t == "turn_start" then
    self.jobs[ev.card] = { seat = ev.seat, role = ev.role, phase = ev.phase, turn = ev.turn, step = 0, since = self.now() }
    self.seats[ev.seat] = true
    self:set_status(ev.card, ev.phase == "review" and "code_review" or "in_progress")
  elseif t == "model" then
    self.tokens = self.tokens + (ev.prompt_tokens or 0) + (ev.completion_tokens or 0)
    local j = self.jobs[ev.card]
    if j then j.step, j.tool, j.waiting = ev.step or j.step, nil, nil end
  elseif t == "model_failure" then
    -- a charged failure (a stream cut after it began, a refused usage, a call the run's stop
    -- aborted after it was sent) was billed: run_end and `orket log` count its tokens too
    self.tokens = self.tokens + (tonumber(ev.prompt_tokens) or 0) + (tonumber(ev.completion_tokens) or 0)
    local j = self.jobs[ev.card]
    if j then j.waiting = nil end
  elseif t == "tool" then
    local j = self.jobs[ev.card]
    if j then j.waiting = nil end
    -- a call the run's stop left open (a full disk met inside it) did not fail, nor succeed,
    -- whatever its tool answered (its effects were rolled back): resume redoes it
    if j then
      j.tool = ev.tool .. (ev.open and " left open for resume" or ev.ok and "" or (ev.held and " held for approval"
        or ev.denied and (" denied" .. (ev.rule and (" (" .. tostring(ev.rule) .. ")") or "")) or " failed"))
    end
    -- a held call waits for a person (approval_requested says it), not refused
    if ev.denied and not ev.held and not ev.open then self:count_denied(tostring(ev.card), "calls", 1) end
  elseif t == "program_writes_denied" then
    -- what a program changed that the policies refuse, put back at the commit
    local n = math.tointeger(ev.count) or 0
    self:count_denied(tostring(ev.card), "paths", n)
    local first = type(ev.paths) == "table" and ev.paths[1]
    self:note(string.format("%s: %d path%s a program changed put back, not committed (the policies refuse %s)%s",
      tostring(ev.card), n, n == 1 and "" or "s", n == 1 and "it" or "them",
      first and string.format(": %s: %s%s", tostring(first.path), tostring(first.reason), n > 1 and "; ..." or "") or ""))
  elseif t == "turn_end" then
    self.jobs[ev.card] = nil
    self.turns = self.turns + 1
    self:set_status(ev.card, ev.status)
    if ev.outcome == "not_started" then self:note(string.format("%s not started: %s", ev.card, tostring(ev.detail))) end
    -- files the card's commit left out (a .gitignore rule, a filter attribute), as orket log
    -- says them: on the screen too, where the guide says a run notes them
    if type(ev.git_skipped) == "table" and #ev.git_skipped > 0 then
      local shown = {}
      for i = 1, math.min(#ev.git_skipped, 3) do shown[i] = inert.line(tostring(ev.git_skipped[i])) end
      self:note(string.format("%s [git] left out: %s%s", ev.card, table.concat(shown, ", "),
        #ev.git_skipped > 3 and string.format(" and %d more (orket log)", #ev.git_skipped - 3) or ""))
    end
    -- agents may file cards during a turn: look at the board again, at most once a second
    if not self.scoped_at or self.now() - self.scoped_at >= 1000 then self:refresh_scope() end
  elseif t == "model_retry" then
    self.retries = self.retries + 1
    local delay = tonumber(ev.delay_ms) or 0
    local why
    if ev.by == "client" then
      -- the model client waits between its own attempts (a 429's Retry-After, a 5xx's backoff)
      why = tostring(ev.why or ev.class)
      self:note(string.format("%s model failed (%s), attempt %s of %s: %s; waiting %s (%s)", ev.card,
        tostring(ev.class), tostring(ev.attempt), tostring(ev.max_attempts), tostring(ev.error),
        common.duration(delay), why))
    elseif ev.round then
      -- the engine's later round: the card keeps its turn and waits longer
      why = string.format("round %s of %s after %s", tostring(ev.round), tostring(ev.rounds), tostring(ev.class))
      self:note(string.format("%s model failed (%s) after %s: %s; asking again in %s (later round %s of %s)", ev.card,
        tostring(ev.class), common.attempts_text(ev.attempts or 1, ev.elapsed_ms or 0), tostring(ev.error),
        common.duration(delay), tostring(ev.round), tostring(ev.rounds)))
    else
      why = tostring(ev.class)
      self:note(string.format("%s model failed (%s) after %s: %s; asking again in %s", ev.card, tostring(ev.class),
        common.attempts_text(ev.attempts or 1, ev.elapsed_ms or 0), tostring(ev.error), common.duration(delay)))
    end
    -- the turn's line says what it waits for, and for how long still, until its next event
    local j = self.jobs[ev.card]
    if j and why then j.waiting = { till = self.now() + delay, why = why } end
  elseif t == "card_taken_back" then
    self:set_status(ev.card, "ready")
    if ev.class == "role" then
      self:note(string.format("%s taken back: blocked when its role's script failed (%s); tried again, its budgets as "
        .. "they were", ev.card, tostring(ev.role)))
    else
      self:note(string.format("%s taken back: blocked when the model failed (%s); asked again, its budgets as they "
        .. "were", ev.card, tostring(ev.class)))
    end
  elseif t == "card_blocked" then
    self:set_status(ev.card, "blocked")
    self:note(string.format("%s blocked (%s): %s", ev.card, tostring(ev.reason), tostring(ev.detail)))
  elseif t == "git" and ev.action == "view_stale" then
    self:note(status_view.behind_line(ev.error)) -- main's view could not follow a merge
  elseif t == "git" and ev.action == "work_lost" then
    self:note(inert.line(ev.message)) -- an open turn's changes went with its card's directory
  elseif t == "git" and ev.action == "history_lost" then
    self:note(inert.line(ev.message)) -- done cards whose merges main no longer holds
  elseif t == "git" and ev.action == "push_main" then
    self:main_pushed(ev)
  elseif t == "git" and ev.action == "pack" and ev.outcome == "failed" then
    -- the repository's housekeeping at the run's end (orket.engine.gitwork.pack): a warning
    self:note("warning: workspace/.git could not be packed: " .. inert.line(ev.error))
  elseif t == "budget_unpriced" then
    self:note("warning: " .. inert.line(ev.message)) -- a model no money budget counts
  elseif t == "card_skipped" then
    self:note(string.format("%s skipped: %s", ev.card, tostring(ev.reason)))
  elseif t == "sandbox" and ev.action == "deploy" then
    -- a deploy after a merge (sandbox.deploy): started in the background, or why not
    self:note(ev.error and string.format("sandbox not deployed after %s: %s", tostring(ev.reason), tostring(ev.error))
      or string.format("sandbox deploying (%s): orket sandbox list shows it", tostring(ev.reason)))
  elseif t == "sandbox" and ev.action == "checks_pending" then
    -- a deploy's checks still running when the run ended: where they will show
    self.pending_checks = self.pending_checks or {}
    self.pending_checks[#self.pending_checks + 1] = tostring(ev.card)
    self:note(string.format("sandbox checks after %s still running: orket card %s shows them", tostring(ev.card),
      tostring(ev.card)))
  elseif t == "sandbox_check_failed" then
    -- a deployed card's acceptance checks failed after it was done: what was filed for it
    self.failed_checks = self.failed_checks or {}
    local names = type(ev.failed) == "table" and #ev.failed > 0 and (" (" .. table.concat(ev.failed, ", ") .. ")") or ""
    local line = string.format("%s in sandbox %s%s: %s", tostring(ev.card), tostring(ev.sandbox), names,
      ev.followup and ((ev.outcome == "bug" and "bug " or "follow-up ") .. tostring(ev.followup) .. " filed")
        or ev.outcome == "sent_back" and "sent back to the card" or "a comment on the card")
    self.failed_checks[#self.failed_checks + 1] = line
    self:note("sandbox checks failed: " .. line)
  elseif t == "sandbox_check_skipped" then
    -- an acceptance check that could not run here (no browser): kept for the summary
    self.skipped_checks = self.skipped_checks or {}
    local line = string.format("%s %s: %s", tostring(ev.card), tostring(ev.name), tostring(ev.why))
    self.skipped_checks[#self.skipped_checks + 1] = line
    self:note("sandbox check skipped: " .. line)
  elseif t == "bugfix" then
    self:note(bugfix_line(ev))
  elseif t == "approval_requested" then
    -- an event from an older store may lack the request's number: the card alone then
    local n = math.type(ev.approval) == "integer" and ev.approval
    self:note(string.format("%s waits for approval%s of %s (%s --approve or --deny)", ev.card,
      n and " #" .. n or "", tostring(ev.tool), n and approvals.command(ev.card, n) or "orket answer " .. ev.card))
  elseif t == "verify_start" then
    self:set_status(ev.card, "ready_for_testing")
  elseif t == "verify_end" then
    self:note(string.format("%s verification %s%s", ev.card, ev.passed and "passed" or "failed",
      ev.error and (": " .. tostring(ev.error)) or ""))
    self:refresh_scope()
  elseif t == "requirements_review" then
    if ev.of then
      self:note(string.format("%s waits for a person: the requirements of %s (orket answer %s \"text\")", ev.card, ev.of, ev.of))
    else
      self:note(string.format("%s waits for a person: requirements review %s", ev.card, tostring(ev.issue)))
    end
  elseif t == "reload" then
    self:note("reloaded scripts: " .. table.concat(ev.files or {}, ", "))
    -- orket.lua's sections this run does not take up (its prices, budgets, team)
    if type(ev.unapplied) == "table" and #ev.unapplied > 0 then
      self:note("  orket.lua: " .. table.concat(ev.unapplied, ", ") .. " changed; not applied to this run (a new run or `orket resume` takes them)")
    end
  elseif t == "reload_error" then
    self:note("reload refused, keeping the old scripts: " .. tostring(ev.error))
    -- every other broken file, each on its own line as orket validate says them
    for i = 2, type(ev.problems) == "table" and #ev.problems or 0 do self:note("  also: " .. tostring(ev.problems[i])) end
  elseif t == "reload_held" then
    self:note("hot reload: " .. inert.line(ev.message)) -- an emptied script kept as loaded
  elseif t == "watch_error" then
    self:note("hot reload: " .. tostring(ev.error))
  elseif t == "journal_error" then
    self:note(string.format("%s: could not write to the journal: %s", tostring(ev.card), tostring(ev.error)))
  elseif t == "stall" then
    self.stuck = ev.cards
  elseif t == "run_end" then
    self.end_status, self.end_tokens, self.end_reason = ev.status, ev.tokens, ev.reason
    self.canceled = ev.canceled
    self.waiting = ev.waiting
    self:refresh_scope()
    self:finish()
    return
  else
    return
  end
  self.dirty = true
  self:tick()
end

-- "ready 1  in_progress 2 ..." in board order, zero counts left out.
function View:counts()
  local n, total, extra = {}, 0, {}
  for _, id in ipairs(self.order) do
    local st = self.status[id]
    if not n[st] then
      n[st] = 0
      if not RANK[st] then extra[#extra + 1] = st end
    end
    n[st] = n[st] + 1
    total = total + 1
  end
  table.sort(extra)
  local parts = {}
  for _, list in ipairs { ORDER, extra } do
    for _, st in ipairs(list) do
      if n[st] then parts[#parts + 1] = self:paint(st .. " " .. n[st], COLORS[st]) end
    end
  end
  return parts, total
end

function View:ids_with(st)
  local out = {}
  for _, id in ipairs(self.order) do
    if self.status[id] == st then out[#out + 1] = id end
  end
  return out
end

-- Truncates to the terminal width counting visible characters only (escapes are free), so
-- no line wraps and the cursor moves of the next frame land where this frame began.
function View:fit(s)
  local out, n, i = {}, 0, 1
  while i <= #s do
    local esc = s:match("^\27%[[%d;]*m", i)
    if esc then
      out[#out + 1] = esc
      i = i + #esc
    else
      local ch = s:match("^[\0-\127\194-\244][\128-\191]*", i) or s:sub(i, i)
      if n >= self.width - 1 then
        if self.color then out[#out + 1] = "\27[0m" end
        break
      end
      out[#out + 1] = ch
      n = n + 1
      i = i + #ch
    end
  end
  return table.concat(out)
end

-- The run's end reason as its status reads: a run that stopped short (stalled, failed,
-- interrupted) "stopped: REASON"; a done run was not stopped, its reason (cards an import
-- moved away) is a note on the done run, "done: REASON".
function View:reason_line()
  return (self.end_status == "done" and "done: " or "stopped: ") .. self.end_reason
end

--- view:frame() -> array of lines: the live frame as it stands now
function View:frame()
  local now = self.now()
  local head = string.format("%s %s  %s  %s tokens  %d turn%s",
    self:paint("orket run" .. (self.run_id and (" " .. self.run_id) or ""), COLORS.bold),
    self.target or "", clock(now - self.started), thousands(self.tokens), self.turns, self.turns == 1 and "" or "s")
  if self.retries > 0 then head = head .. string.format("  %d retr%s", self.retries, self.retries == 1 and "y" or "ies") end
  local refused = self.denied.calls + self.denied.paths
  if refused > 0 then head = head .. "  " .. self:paint(string.format("%d denied", refused), COLORS.failed) end
  local lines = { head }
  if self.end_reason then lines[#lines + 1] = self:reason_line() end
  local parts, total = self:counts()
  lines[#lines + 1] = string.format("cards (%d): %s", total, #parts > 0 and table.concat(parts, "  ") or "none yet")
  for _, row in ipairs { { "in progress", "in_progress" }, { "in review", "code_review" } } do
    local ids = self:ids_with(row[2])
    if #ids > 0 then lines[#lines + 1] = string.format("  %-12s %s", row[1] .. ":", table.concat(ids, " ")) end
  end
  -- One line per turn in flight (a seat may hold several cards at once), then idle seats.
  local active, busy = {}, {}
  for card, j in pairs(self.jobs) do
    active[#active + 1] = { card = card, j = j }
    busy[j.seat] = true
  end
  table.sort(active, function(a, b)
    if a.j.seat ~= b.j.seat then return a.j.seat < b.j.seat end
    return a.card < b.card
  end)
  if next(self.seats) then lines[#lines + 1] = "seats:" end
  for _, a in ipairs(active) do
    local j = a.j
    -- a wait still under way: how long is left (rounded up to the second), and why
    local w = j.waiting and j.waiting.till > now and j.waiting
    local waiting = w and string.format(", waiting %d s: %s", math.ceil((w.till - now) / 1000), w.why) or ""
    lines[#lines + 1] = string.format("  %-22s %-10s %s (%s) turn %d step %d%s%s  %s", j.seat, a.card, j.role,
      j.phase, j.turn or 0, j.step, j.tool and (", " .. j.tool) or "", waiting, clock(now - j.since))
  end
  local idle = {}
  for s in pairs(self.seats) do if not busy[s] then idle[#idle + 1] = s end end
  table.sort(idle)
  for _, s in ipairs(idle) do lines[#lines + 1] = self:paint(string.format("  %-22s idle", s), COLORS.dim) end
  -- A frame taller than the terminal scrolls its top away, and the next redraw, which moves
  -- the cursor up by the frame's height, would then leave stale lines behind: cut it to fit,
  -- one row kept for the cursor.
  local max = self.height and math.max(3, self.height - 1)
  if max and #lines > max then
    local cut = #lines - (max - 1)
    for i = #lines, max, -1 do lines[i] = nil end
    lines[#lines + 1] = self:paint(string.format("  ... %d more line%s (a taller terminal shows them)", cut,
      cut == 1 and "" or "s"), COLORS.dim)
  end
  return lines
end

-- Erases the previous frame (cursor to its first line, clear to the end of the screen),
-- prints the queued notes (they stay, scrolling up) and then `lines`. The final summary
-- is not cut to the width: nothing is redrawn after it, so wrapping does no harm.
function View:draw(lines, whole)
  local out = {}
  if self.lines > 0 then out[#out + 1] = string.format("\r\27[%dA\27[J", self.lines) end
  for _, s in ipairs(self.notes) do out[#out + 1] = s .. "\n" end
  self.notes = {}
  -- plain: no cursor moves, so no live frame (it could not be taken back): the run's first
  -- line once, then only the notes and the summary
  if self.plain and not whole then
    lines = self.frames == 0 and { string.format("orket run %s %s", self.run_id or "", self.target or "") } or {}
  end
  local erase = self.plain and "" or "\27[K"
  for _, s in ipairs(lines) do out[#out + 1] = (whole and s or self:fit(s)) .. erase .. "\n" end
  self.lines = self.plain and 0 or #lines
  self.write(table.concat(out))
  self.last_draw = self.now()
  self.dirty = false
  self.frames = self.frames + 1
end

--- view:tick(): draws a frame when one is due: something changed, or the elapsed time
--- moved on a second, and `interval_ms` have passed since the last frame.
function View:tick()
  if self.finished then return end
  local now = self.now()
  if self.last_draw and now - self.last_draw < self.interval then return end
  if not self.dirty and self.last_draw and (now - self.started) // 1000 == (self.last_draw - self.started) // 1000 then
    return
  end
  self:draw(self:frame())
end

--- view:finish(): replaces the live frame with the final summary (run_end does this;
--- call it when the run ended without one, e.g. it could not start).
function View:finish()
  if self.finished then return end
  local now = self.now()
  local st = self.end_status or "stopped"
  -- run_end counts the whole run's tokens. After a resume the time and the turns are this
  -- session's, so this session's tokens go with them and the whole run's are said apart.
  local head = string.format("%s %s %s in %s, %s tokens, %d turn%s",
    self:paint("run" .. (self.run_id and (" " .. self.run_id) or ""), COLORS.bold), self.target or "",
    self:paint(st, COLORS[st]), clock(now - self.started),
    thousands(self.resumed and self.tokens or (self.end_tokens or self.tokens)), self.turns, self.turns == 1 and "" or "s")
  if self.resumed then
    head = head .. string.format(" in this session; %s tokens in the whole run",
      thousands(self.end_tokens or self.tokens))
  end
  local lines = { head }
  if self.end_reason then lines[#lines + 1] = self:reason_line() end
  if st == "interrupted" and self.run_id then lines[#lines + 1] = "continue with: " .. self.resume(self.run_id) end
  if self.waiting and #self.waiting > 0 then
    lines[#lines + 1] = "waiting for a person: " .. table.concat(self.waiting, ", ")
  end
  local parts, total = self:counts()
  lines[#lines + 1] = string.format("cards (%d): %s", total, #parts > 0 and table.concat(parts, "  ") or "none")
  -- what the gate refused: a done run may have had calls denied all along
  lines[#lines + 1] = self:denied_line("calls", function(n) return string.format("%d call%s denied", n, n == 1 and "" or "s") end)
  lines[#lines + 1] = self:denied_line("paths", function(n)
    return string.format("%d path%s a program changed put back, not committed", n, n == 1 and "" or "s")
  end)
  if self.canceled and #self.canceled > 0 then
    lines[#lines + 1] = string.format("not done: %d card%s canceled:", #self.canceled, #self.canceled == 1 and "" or "s")
    for _, s in ipairs(self.canceled) do lines[#lines + 1] = "  " .. s end
  end
  if self.failed_checks and #self.failed_checks > 0 then
    lines[#lines + 1] = "sandbox checks failed after the merge (the next run works what was filed):"
    for _, s in ipairs(self.failed_checks) do lines[#lines + 1] = "  " .. s end
  end
  if self.skipped_checks and #self.skipped_checks > 0 then
    lines[#lines + 1] = "sandbox checks skipped (they could not run here; no bug filed):"
    for _, s in ipairs(self.skipped_checks) do lines[#lines + 1] = "  " .. s end
  end
  if self.pending_checks and #self.pending_checks > 0 then
    lines[#lines + 1] = "sandbox checks still running after: " .. table.concat(self.pending_checks, ", ")
      .. " (orket card CARD shows them)"
  end
  -- the run's last push of main did not go: a person reading only the summary learns it
  if self.unpushed then lines[#lines + 1] = self.unpushed end
  if self.stuck and #self.stuck > 0 then
    lines[#lines + 1] = "stuck cards:"
    for _, s in ipairs(self.stuck) do
      lines[#lines + 1] = string.format("  %-10s %s", s.card, tostring(s.reason))
      if s.next then lines[#lines + 1] = string.format("  %-10s next: %s", "", s.next) end
    end
  end
  self:draw(lines, true)
  self.finished = true
end

return M
