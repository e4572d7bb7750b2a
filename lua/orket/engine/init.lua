-- orket.engine: the long-lived engine of a project: its store, board, memory, settings,
-- model client, scripts (roles, tools, policies, routing; a hot reload swaps them here) and
-- the runs it started. Each run of an epic, a rock or one card is its own object
-- (orket.engine.run), made fresh by execute: the run picks cards (orket.engine.scheduler),
-- gives each a turn (orket.engine.turn) and ends done, failed, stalled or interrupted. Every
-- decision is journaled, so execute() on an existing run resumes it. Contract: docs/engine.md.
local settings_mod = require "orket.settings"
local run_mod = require "orket.engine.run"
local json = require "cjson.safe"
local sj = require "orket.store.journal_reads"
local runs = require "orket.store.runs"
local experiments = require "orket.settings.experiments"
local otel = require "orket.otel"
local config = require "orket.config"

local M = {}
local Engine = {}
Engine.__index = Engine

M.EXIT = { done = 0, failed = 1, stalled = 3, interrupted = 130 }

-- What an engine holds, declared, so that a mistyped or a new field is an error where it is
-- written rather than a nil read elsewhere (docs/engine.md, "The engine and its runs").
-- FIXED: its long-lived collaborators, given to new and never replaced (a sub-table, such as
-- settings, is theirs to keep). SCRIPTS: what a hot reload replaces, together, through
-- swap_scripts. STATE: the engine's own bookkeeping between runs; a run's state lives on
-- the run (orket.engine.run), never here.
local FIXED = {
  db = true, board = true, memory = true, settings = true, llm = true, gate = true, workspace = true,
  workspace_dir = true, project_dir = true, toolcalls = true, count = true, emit_fn = true, concurrency = true,
  model = true, dir = true, git = true, models = true, lease = true, pace = true, close_all = true,
  share = true, -- a worker's turns at once, shared among its runs (orket.engine.share)
  tracer = true, -- orket.otel's, when traces are exported (docs/observability.md)
}
local SCRIPTS = { roles = true, tools = true, policies = true, routing = true, mcp = true,
  -- each script's digest as the set in force was read (orket.engine.reload: its watch
  -- reloads what differs, an edit made before the watch began included)
  scripts_seen = true }
local STATE = { current = true, run_id = true, stop_requested = true, started_runs = true, reloads = true,
  requeued_runs = true, -- runs of the workers this process requeued (a resume's start: take_back)
  no_git_recover = true,
  reload_said = true, -- the reload error last said, not said again while it stands (orket.engine.reload)
  -- orket.lua's removal during the run, said; scripts removed meanwhile keep their loaded
  -- version until it is back (orket.engine.reload)
  orket_removed = true,
  -- (run_id) called once a run's run_start is said: the scripts' watcher says then what it
  -- held until the run began (orket.engine.reload)
  on_run_start = true,
  carry_on = true, -- a run carried on beside others after its store came back (orket.engine.executor)
  run_fence = true } -- () -> whether this process still holds the run's lease (orket.engine.runlease.fence)
M.FIELDS = { fixed = FIXED, scripts = SCRIPTS, state = STATE }

local fields_of = setmetatable({}, { __mode = "k" }) -- engine -> the table holding its fields

-- The engine is an empty table whose reads go to its fields (a table: the lookup stays in
-- C, as a run's does through it) and whose writes are checked here.
local function sealed(fields)
  local e = setmetatable({}, {
    __index = fields,
    __newindex = function(_, k, v)
      if STATE[k] then
        rawset(fields, k, v)
      elseif FIXED[k] or SCRIPTS[k] then
        error(string.format("engine.%s is %s", k, FIXED[k] and "fixed once the engine is made (orket.engine.new)"
          or "replaced only by a hot reload (engine:swap_scripts)"), 2)
      else
        error("engine has no field '" .. tostring(k) .. "'", 2)
      end
    end,
    __name = "orket.engine",
  })
  fields_of[e] = fields
  return e
end

--- new{db=, board=, memory=, settings=, llm=, tools=, gate=, roles=, routing=, workspace=,
---   toolcalls=, count=, emit=, model=, concurrency=, dir=, git=, mcp=, ...} -> engine,
--- whole: every field it will ever hold is given here (FIXED and SCRIPTS above) or is its
--- own bookkeeping (STATE); a field of neither kind is refused.
--- tools: registry with get(name), specs(names), run(name, args, ctx) -> {ok=, result=|error=, code=}
--- gate(input) -> {verdict=, code=, reason=, remedy=}; llm: client with :chat(req).
function M.new(o)
  if type(o) ~= "table" then error("bad argument #1 to 'new' (table expected)", 2) end
  for _, k in ipairs { "db", "board", "settings", "llm", "tools", "gate", "roles", "routing" } do
    if o[k] == nil then error("bad argument #1 to 'new' (field '" .. k .. "' is required)", 2) end
  end
  local fields = setmetatable({}, Engine)
  for k, v in pairs(o) do
    local name = k == "emit" and "emit_fn" or k
    if not (FIXED[name] or SCRIPTS[name]) then
      error("bad argument #1 to 'new' (no field '" .. tostring(k) .. "' in an engine)", 2)
    end
    fields[name] = v
  end
  fields.started_runs = {}
  fields.requeued_runs = {}
  local e = sealed(fields)
  return e
end

--- swap_scripts{roles=, tools=, policies=, routing=, mcp=} (any of them): the only write to
--- the scripts, by a hot reload (orket.engine.reload; a turn keeps the ones it started with)
--- and by the MCP servers' reconfiguration (orket.mcp.manager)
function Engine:swap_scripts(s)
  local fields = fields_of[self]
  for k, v in pairs(s) do
    if not SCRIPTS[k] then error("bad argument #1 to 'swap_scripts' (no script field '" .. tostring(k) .. "')", 2) end
    fields[k] = v
  end
end

--- use_run(run_id | nil) -> run | nil: makes a fresh run object for run_id the engine's
--- current run (engine.current, engine.run_id), and run_id the board's and memory's current
--- run, so every event written for the run's work (moves, comments, cards and memories the
--- tools make) carries its id; nil when the run's work is over. execute calls it; the
--- REPL's project:turn too, to give one card a turn in a run of its own.
function Engine:use_run(id)
  if id ~= nil then
    self.current = run_mod.new(self, id)
    -- a stop asked before the run began (a signal while it was set up) holds for it
    if self.stop_requested then self.current.stopping = true end
  else
    self.current = nil
  end
  self.run_id = id
  self.board:set_run(id)
  if self.memory then self.memory:set_run(id) end
  return self.current
end

--- emit(ev): an event for the current run's stream (the hot reload's, between runs too)
function Engine:emit(ev)
  ev.run_id = self.run_id
  -- spans first: the stream's own handler may keep or change ev
  if self.tracer then self.tracer:event(ev) end
  if self.emit_fn then self.emit_fn(ev) end
end

--- check_team(settings, roles) -> true | nil, msg, CODE: the team orket.lua sets can work a
--- run (a seat holding integrity_guard, roles that exist), roles as orket.engine.reload
--- loads them. The one check of a run's team: a new run's (Engine:start) and a resumed
--- run's (orket.engine.setup.resumable, for the CLI and the server alike). The message
--- names orket.lua's field ("orket.lua: team: ..."); config.placed adds its line.
function M.check_team(settings, roles)
  if #settings_mod.seats_with(settings, "integrity_guard") == 0 then
    return nil, "orket.lua: team: no seat holds the integrity_guard role, so nothing could be reviewed; add one to "
      .. "orket.lua's team, e.g. integrity_guard = { roles = { \"integrity_guard\" } }", "ENOREVIEWER"
  end
  for _, seat in ipairs(settings_mod.seats(settings)) do
    for i, r in ipairs(settings.team[seat].roles) do
      if not roles.by_name[r] then
        return nil, string.format("orket.lua: team.%s.roles[%d]: no role named %q (roles: %s)", seat, i, r,
          table.concat(roles.names, ", ")), "EROLE"
      end
    end
  end
  local xerr = experiments.check_roles(settings.experiments, roles.by_name)
  if xerr then return nil, xerr .. " (roles: " .. table.concat(roles.names, ", ") .. ")", "EROLE" end
  return true
end

--- check() -> true | nil, msg, CODE: the team can run (M.check_team on the engine's settings
--- and roles)
function Engine:check()
  return M.check_team(self.settings, self.roles)
end

--- start(target_id, {concurrency=, model=, workers=}) -> run_id | nil, msg, CODE. workers:
--- the run is left to `orket worker` processes (data.workers), not executed here.
--- The run's trace id (data.trace_id, orket.otel) is drawn here, where the run is first
--- recorded, and read back by every start of it (a resume, a worker joining), in any process:
--- a copy of the store (its id and run ids kept) gives its next runs traces of their own.
function Engine:start(target_id, opts)
  opts = opts or {}
  local target, err, code = self.board:get(target_id)
  if not target then return nil, err, code end
  local ok, cerr, ccode = self:check()
  -- with orket.lua's line, as a resume's refusal (orket.engine.setup.resumable) and validate say it
  if not ok then return nil, self.dir and config.placed(self.dir, cerr) or cerr, ccode end
  local id, rerr, rcode = self.db:record_run { target = target.id, kind = target.type,
    data = { concurrency = opts.concurrency, model = opts.model, workers = opts.workers,
      trace_id = otel.new_trace_id() } }
  if not id then return nil, rerr, rcode end
  self.started_runs[id] = true
  return id
end

-- Picks the role a seat plays for a phase.
local function role_for(engine, seat, phase)
  local s = engine.settings.team[seat]
  if not s then return nil end
  local want = (phase == "review" and "integrity_guard") or (phase == "escalation" and "architect") or nil
  -- the seat's roles walked as ipairs walks them, by index: this runs at every turn's prepare
  local roles = s.roles
  if want then
    local i, r = 1, roles[1]
    while r ~= nil do
      if r == want then return engine.roles.by_name[r] end
      i = i + 1
      r = roles[i]
    end
    return nil
  end
  local i, r = 1, roles[1]
  while r ~= nil do
    if r ~= "integrity_guard" then return engine.roles.by_name[r] end
    i = i + 1
    r = roles[i]
  end
  return engine.roles.by_name[s.roles[1]]
end

--- role_for(seat, phase) -> the role a seat plays for a phase ("work", "rework", "review",
--- "escalation") | nil
function Engine:role_for(seat, phase) return role_for(self, seat, phase) end

--- stop(): the current run takes no new turns and its turns in flight are cancelled where
--- they wait (the journal stays consistent: each step was written in its own transaction);
--- execute() returns "interrupted". A stopped engine starts no run after it.
function Engine:stop()
  self.stop_requested = true
  if self.current then self.current:stop() end
end

-- A resumed run answers its recorded steps from the journal, so the model client never
-- sees those requests; a provider with state between requests (scripted sequences) is
-- told about each, and about each failed call (turn.lua records those), in the order they
-- were recorded, so it goes on where it stopped and the run ends as an uninterrupted one
-- would.
function Engine:observe_journal(run_id)
  if not self.llm.observe then return end
  -- a run this engine just started has nothing to tell (and the query below reads the
  -- whole events table)
  if self.started_runs and self.started_runs[run_id] then return end
  -- responses (turns rows, through their "turn" events) and failed calls, in journal order
  for _, r in ipairs(sj.model_exchanges(self.db, run_id)) do
    local req, meta
    if r.kind == "turn" then
      local data = json.decode(r.tdata or "null") or {}
      req = json.decode(r.request or "null")
      meta = { run = run_id, card = r.card_id, role = r.role, seat = r.seat, turn = r.turn, step = data.step,
        phase = data.phase }
    else
      local d = json.decode(r.data or "null") or {}
      req = d.request
      meta = { run = run_id, card = r.card_id, role = d.role, seat = r.actor, turn = d.turn, step = d.step,
        phase = d.phase }
    end
    if type(req) == "table" and type(req.model) == "string" and type(req.messages) == "table" then
      self.llm:observe { model = req.model, messages = req.messages, meta = meta }
    end
  end
end

--- execute(run_id) -> status ("done"|"failed"|"stalled"|"interrupted"), report {stuck=,
--- reason=, canceled=}. Must run in a task. Runs run_id as a fresh run object
--- (orket.engine.run): nothing of an earlier run's state carries over. On a run that was
--- killed it continues from the journal.
function Engine:execute(run_id)
  if math.type(run_id) ~= "integer" or not runs.get(self.db, run_id) then
    error("bad argument #1 to 'execute' (no run " .. tostring(run_id) .. ")", 2)
  end
  local run = self:use_run(run_id)
  -- however execute ends (an error included), later writes are no longer the run's
  local _ <close> = setmetatable({}, { __close = function() self:use_run(nil) end })
  return run:execute()
end

M.settings = settings_mod
return M
