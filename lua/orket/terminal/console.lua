-- orket.terminal.console: a project opened for debugging, as `project` in `orket repl`: the
-- board, store, model client, gate, tools and engine at hand, plus helpers to see the
-- messages a role would send, run one turn of one card, replay a recorded run through the
-- replay provider, and reload the scripts. Uses orket.engine.setup, .turn, .reload,
-- orket.import and orket.llm. Contract: docs/engine.md, "The REPL".
local uv = require "luv"
local cjson = require "cjson.safe"
local setup = require "orket.engine.setup"
local scheduler = require "orket.engine.scheduler"
local board_mod = require "orket.board"
local turn = require "orket.engine.turn"
local reload = require "orket.engine.reload"
local roles = require "orket.engine.roles"
local engine_recorded = require "orket.engine.recorded"
local runlease = require "orket.engine.runlease"
local task = require "orket.task"
local approvals = require "orket.actions.approvals"
local turns = require "orket.store.turns"
local tree = require "orket.tree"
local llm = require "orket.llm"
local runs = require "orket.store.runs"
local store = require "orket.store"
local import = require "orket.import"
local localuse = require "orket.serve.localuse"

local M = {}

local Project = {}
-- Scripts are read through the engine, so a reload shows at once.
local LIVE = { roles = true, tools = true, policies = true, routing = true, settings = true, llm = true,
  board = true, db = true, memory = true, workspace = true, gate = true }
Project.__index = function(p, k)
  if LIVE[k] then return p.engine[k] end
  return Project[k]
end

-- engine_of(p) -> p's engine, opened from p.dir as p._opts says | nil, msg, CODE
local function engine_of(p)
  local opts = p._opts
  return setup.open(p.dir, { model = opts.model, emit = function(ev)
    p.events[#p.events + 1] = ev
    if #p.events > 200 then table.remove(p.events, 1) end
    if opts.emit then opts.emit(ev) end
  end })
end

--- open(dir[, {emit=, model=}]) -> project | nil, msg, CODE: the fields below, and the helpers.
--- project.dir: the project's folder
--- project.board: the board (board:get(ID), board:children(ID); docs/board.md)
--- project.db: the store (db:row(SQL, ...), db:rows(SQL, ...); docs/store.md)
--- project.memory: project memory (what roles recall)
--- project.llm: the model client (llm:chat{model=, messages=}; docs/llm.md)
--- project.gate: the gate as the engine calls it, deciding each tool call (docs/policies.md)
---   project.gate{tool=, args=, actor={seat=, roles={...}}[, card=, allowed={tool names}]}
---   -> {verdict=, code=, reason=, remedy=, rule_name=}: orket.gate.check with the project's
---   tools, policies (as last reloaded) and limits; it records nothing. args is a table; a
---   recorded call's are JSON text, in the `arguments` column of project.db's tool_calls.
---   Would the last write_file pass now?
---     c = project.db:row("SELECT * FROM tool_calls WHERE tool = ? ORDER BY id DESC", "write_file")
---     t = project.db:row("SELECT seat FROM turns WHERE id = ?", c.turn_id)
---     project.gate{tool = c.tool, args = orket.json.decode(c.arguments),
---       actor = {seat = t.seat, roles = project.settings.team[t.seat].roles}}
--- project.tools: the tool registry (tools.names, tools:specs(NAMES); docs/tools.md)
--- project.policies: the policy set the gate applies
--- project.roles: the loaded roles (roles.by_name.coder; docs/roles.md)
--- project.routing: who takes a card and with which model (routing.lua)
--- project.settings: orket.lua as resolved (team, budgets, limits, models)
--- project.workspace: the workspace the agents write in (confined)
--- project.engine: the engine (engine:start, engine:execute, engine:prepare; docs/engine.md)
--- project.events: the engine's last 200 events, oldest first
function M.open(dir, opts)
  opts = opts or {}
  local p = { dir = dir, events = {}, _opts = opts }
  local e, err, code = engine_of(p)
  if not e then return nil, err, code end
  p.engine = e
  return setmetatable(p, Project)
end

local PHASES = { work = true, rework = true, review = true, escalation = true }

-- A wrong argument is answered as a wrong card or run is (nil, msg, CODE), never raised: in
-- the REPL a raise printed a traceback into Orket's files for a typing slip.
local function bad_arg(n, fname, what, v)
  return nil, string.format("bad argument #%d to '%s' (%s expected, got %s)", n, fname, what,
    v == nil and "no value" or type(v)), "EUSAGE"
end

-- The issue id names (turns are an issue's: an epic or rock is run, not worked).
local function card_of(p, id, fname)
  if type(id) ~= "string" then return bad_arg(1, fname, "card id", id) end
  local c, err, code = p.engine.board:get(id)
  if not c then return nil, err, code end
  if c.type ~= "issue" then
    return nil, string.format("%s is %s %s; turns are an issue's (orket run %s runs its issues)", c.id,
      c.type == "epic" and "an" or "a", c.type, c.id), "ETYPE"
  end
  return c
end

-- The seat, phase and role a card's next turn would have (what Engine:prepare decides,
-- without its side effects; escalation only when asked for).
local function plan(p, card, opts)
  local e, team = p.engine, p.engine.settings.team
  local phase = opts.phase
  if phase ~= nil and not PHASES[phase] then
    return nil, "bad argument #2 to 'messages' (phase must be work, rework, review or escalation, got "
      .. tostring(phase) .. ")", "EUSAGE"
  end
  if not phase then
    if card.status == "code_review" then phase = "review"
    elseif card.status == "in_progress" and (card.retries or 0) > 0 then phase = "rework"
    else phase = "work" end
  end
  local seat = opts.seat
  if not seat then
    local kind = (phase == "review" and "reviewer") or (phase == "escalation" and "escalation") or "worker"
    seat = e.routing:choose(kind, card, team)
  end
  if not seat or not team[seat] then
    return nil, string.format("no seat in the team can take the %s turn of %s (seat %s)", phase, card.id, tostring(seat)), "ESEAT"
  end
  local role = e:role_for(seat, phase)
  if not role then return nil, "seat " .. seat .. " has no role for " .. phase, "EROLE" end
  return { seat = seat, phase = phase, role = role }
end

--- project:messages(card_id[, {phase=, seat=, turn=}]) -> messages, info | nil, msg, CODE
--- The messages the role would send at the start of the card's next turn, built by the
--- role script from the board as it is now. The model is not called; nothing is written.
--- info: {seat=, role=, phase=, model=, tools={names}}.
function Project:messages(card_id, opts)
  opts = opts or {}
  if type(opts) ~= "table" then return bad_arg(2, "messages", "{phase=, seat=, turn=}", opts) end
  local t = opts.turn
  if t ~= nil and not (type(t) == "number" and math.tointeger(t) and t >= 1) then
    return nil, string.format("bad argument #2 to 'messages' (turn must be a whole number from 1, got %s)",
      type(t) == "string" and string.format("%q", t) or tostring(t)), "EUSAGE"
  end
  local card, err, code = card_of(self, card_id, "messages")
  if not card then return nil, err, code end
  local pl, perr, pcode = plan(self, card, opts)
  if not pl then return nil, perr, pcode end
  local e = self.engine
  local job = { seat = pl.seat, role = pl.role, phase = pl.phase, turn = math.tointeger(t) or 1,
    tool_specs = e.tools:specs(pl.role.tools) }
  local msgs, merr, mcode = roles.messages(pl.role, turn.context(e, job, card, {}))
  if not msgs then return nil, merr, mcode end
  local default = e.settings.models and e.settings.models.default
  local model = e.model or e.routing:choose("model", { seat = pl.seat, role = pl.role.name, card = card,
    phase = pl.phase, team = e.settings.team, role_model = pl.role.model, default = default })
  local names = {}
  for i, s in ipairs(job.tool_specs) do names[i] = s.name end
  return msgs, { seat = pl.seat, role = pl.role.name, phase = pl.phase, model = model, tools = names }
end

local TAKES_TURNS = { ready = true, in_progress = true, code_review = true }

-- A ready card that cannot start while a card it depends on (or its epic's) is not done ->
-- the board's refusal with what it waits for, and its code (EDEPENDENCY) | nil
local function waits(board, card)
  if card.status ~= "ready" then return nil end
  local ok, err, code = board:check_transition(card.id, "in_progress", { actor = board_mod.ENGINE })
  if ok or code ~= "EDEPENDENCY" then return nil end
  local st = scheduler.stuck(board, { card })[1]
  if st then
    err = string.format("%s (%s: %s%s)", err, card.id, st.reason, st.next and ("; next: " .. st.next) or "")
  end
  return err, code
end

--- project:turn(card_id[, {model=}]) -> {run=, turn=, seat=, role=, phase=, outcome=, detail=, status=}
---   | nil, msg, CODE (EUSAGE: model is not "provider:model" with a configured provider;
---   ESTATUS: the card's status takes no turn; EDEPENDENCY: a ready card waits for a card it
---   depends on that is not done (the message names it), refused before a run starts;
---   ENOTURN: the engine gave it none, the message (and its run's end) saying why;
---   EUNFINISHED: a stopped run left a turn of these cards half done; ELOCKED: another
---   process holds the folder's run lock; ERUNGOING: a run of these cards goes, in any
---   folder of the store, or is left to the workers and not finished: the message names it
---   and how to end it; ELEASELOST: the run's lease became another process's during the
---   turn, which wrote no more of it). Runs one turn of one
--- card for real (model, gate, tools, journal) as a run of that card, which ends "done"
--- when the card is done, "interrupted" when its run stopped and left the turn open
--- (outcome "canceled": a new turn of the card is refused, EUNFINISHED, while it is), and
--- "stopped" otherwise (`orket resume RUN` continues either). Must run
--- in a task (the REPL runs each line in one).
function Project:turn(card_id, opts)
  opts = opts or {}
  if type(opts) ~= "table" then return bad_arg(2, "turn", "{model=}", opts) end
  local card, err, code = card_of(self, card_id, "turn")
  if not card then return nil, err, code end
  local model = opts.model
  if model == "" then model = nil end
  -- as `orket run --model`: a model that cannot be called is refused before a run starts,
  -- instead of blocking the card with a model_error
  if model ~= nil then
    local mok, merr = llm.check_model(self.engine.llm, model)
    if not mok then return nil, string.format("model %s: %s", tostring(model), merr), "EUSAGE" end
  end
  if not TAKES_TURNS[card.status] then
    return nil, string.format("%s is %s; only ready, in_progress and code_review cards take turns", card.id, card.status), "ESTATUS"
  end
  -- nor does a ready card whose dependency is not done (Run:turn_job skips it): refused as
  -- the board refuses its start, naming what it waits for, before a run is recorded for nothing
  local derr, dcode = waits(self.engine.board, card)
  if derr then return nil, derr, dcode end
  -- a turn writes the board like a run does: not while `orket run` works this project
  local lock <close>, lerr, lcode = setup.lock(self.dir, { what = "run" })
  if not lock then return nil, lerr, lcode end
  local e = self.engine
  -- as `orket run` starts one (the same decision, record and lease in one write
  -- transaction): not beside a live run of these cards in any folder of the store, a run
  -- of them left to the workers, or one that left a turn half done (it goes on with resume)
  -- (prune = false: the turn is not in the folder's claim section, where a worker's half-made
  -- hold of a run lock file cannot be; stale files are left to the next start that is)
  local run, rerr, rcode, kind = engine_recorded.start(self.dir, e, card.id, { model = model, own_run_lock = true,
    prune = false })
  if not run then
    -- a refusal that is not a lock has its own code: its remedy names `orket runs`, not a pid
    if not rcode then rcode = (kind == "unfinished" and "EUNFINISHED") or (kind == "conflict" and "ERUNGOING") or nil end
    return nil, rerr, rcode
  end
  local r = e:use_run(run) -- the run's own state: this turn's tokens, clock, counters, model
  if model then r.model = model end
  lock:tag(run) -- so `orket runs` can tell this run from one that was killed
  -- as `orket run`: its lease renewed while the turn goes (a model may think longer than the
  -- lease lives), and each step written only while the lease is this process's (the fence);
  -- found another's (the store away too long and the run taken elsewhere), the turn is
  -- cancelled as by Ctrl-C, and its status is left to the process that has the run now
  local me = task.current()
  local lost = false
  runlease.watch(e.db, run, e, function()
    if lost then return end -- (found at the run's end: nothing left to cancel)
    lost = true
    if me then me:cancel() end
  end)
  -- its own to-be-closed variable, so that an error closing the status guard below still
  -- stops the renewals and lets the lease go (else an idle REPL kept the run "live")
  local _lease <close> = setmetatable({}, { __close = function()
    e.run_fence = nil -- the engine is the REPL's, long-lived: the next turn installs its own
    runlease.drop(e.db, run)
  end })
  -- the run's end, written only while the lease is ours (asked in the same transaction)
  local function finish(status, reason)
    return e.db:tx(function()
      if lost or not runlease.fence(e.db, run) then
        lost = true
        return true
      end
      return e.db:finish_run(run, status, { reason = reason })
    end)
  end
  -- Ctrl-C in the REPL cancels this task where it waits: the run must not stay "running".
  -- The turn goes in a task of the run's own (r.tasks), which the run's stop cancels as
  -- `orket run`'s does: a call the server already had is then charged and journaled
  -- (spend.aborted, turn.record_aborted; docs/cost.md), not dropped and sent again uncounted.
  local finished, turn_task = false, nil
  local guard <close> = setmetatable({}, { __close = function()
    if turn_task and not finished then
      r:stop()
      if not lost then turn.record_aborted(r) end
    end
    e:use_run(nil)
    if not finished and not lost then finish("interrupted") end
  end })
  local job = r:prepare(card)
  local out
  if job then
    turn_task = task.spawn(function() return r:take_turn(job) end)
    r.tasks[turn_task] = true
    local ok, res = turn_task:join()
    r.tasks[turn_task] = nil
    if not ok then error(res, 0) end
    out = res
  end
  local now = assert(e.board:get(card.id))
  -- a turn its run's stop left open (a full disk met by the turn) is resume's to go on
  -- with, as after Ctrl-C: a "stopped" run is never resumed, so it would stay half done
  local open = out and out.ended == "canceled"
  -- a card that got no turn was skipped for a reason (Run:skip), kept with its run's end so
  -- that `orket log` and GET /v1/runs/N say why the run is empty
  local skipped = not job and r.skipped and r.skipped[card.id] or nil
  local why = skipped and string.format("%s got no turn: %s", card.id, skipped) or nil
  assert(finish((open and "interrupted") or (now.status == "done" and "done") or "stopped", why))
  finished = true
  if lost then
    return nil, string.format("run %d stops: its lease in the store is another process's now (the store was away "
      .. "too long); see `orket runs`", run), "ELEASELOST"
  end
  if not job then
    return nil, string.format("%s got no turn (status %s): %s", card.id, now.status, skipped or "see project.events"),
      "ENOTURN"
  end
  return { run = run, turn = job.turn, seat = job.seat, role = job.role.name, phase = job.phase,
    outcome = out.ended, detail = out.detail, status = now.status }
end


-- The replay provider's source: the recorded response of step `call` of a turn of `run`.
local function recorded(db, run)
  return function(key)
    local response = turns.step_response(db, run, key.card, key.seat, key.turn, key.call)
    if not response then return nil, "the run has no such step" end
    return cjson.decode(response)
  end
end

--- project:replay(run_id[, {keep=, emit=}]) -> report | nil, msg, CODE
--- Runs the recorded run's target again on a scratch copy of the project (a fresh store
--- imported from epics/, an empty workspace, in .orket/replay-RUN-XXXXXX, removed unless
--- keep) with the project's current scripts, every model call answered by the replay
--- provider from the recorded run. Shows whether the engine and scripts as they are now
--- reach the same board from the same model answers.
--- report: {status=, calls= (model calls made), recorded= (responses in the run),
---   missing={"CARD turn T step S (SEAT)"...} (calls the recording had no answer for: the
---   replay took another path), cards={id={replay=, now=}}, differs={ids whose status now
---   differs from the replay's}, tokens=, dir= (with keep: a folder `orket log -C DIR`,
---   runs, board and card read)}
function Project:replay(run_id, opts)
  opts = opts or {}
  -- (a float such as 1.0 is the number it says; 1.5 names no run: "an integer", not "number
  -- expected, got number")
  if math.type(run_id) == "float" and math.tointeger(run_id) then run_id = math.tointeger(run_id) end
  if math.type(run_id) == "float" then
    return nil, string.format("bad argument #1 to 'replay' (run number expected: an integer, got %s)", run_id), "EUSAGE"
  end
  if math.type(run_id) ~= "integer" then return bad_arg(1, "replay", "run number", run_id) end
  if type(opts) ~= "table" then return bad_arg(2, "replay", "{keep=, emit=}", opts) end
  local e = self.engine
  local row = runs.get(e.db, run_id)
  if not row then return nil, "no run " .. run_id .. " (see 'orket runs')", "ENOENT" end
  local base = self.dir .. "/.orket"
  local scratch, merr = uv.fs_mkdtemp(base .. "/replay-" .. run_id .. "-XXXXXX")
  if not scratch then return nil, "replay: cannot make a scratch folder in " .. base .. ": " .. tostring(merr), "EIO" end
  -- however the replay ends (a return, an error, Ctrl-C closing the REPL's task), the
  -- scratch copy goes unless kept; _replay_in has closed its store and workspace by then
  local _ <close> = setmetatable({}, { __close = function()
    if not opts.keep then tree.remove(scratch) end
  end })
  local report, err, code = self:_replay_in(scratch, row, opts)
  if opts.keep then
    -- a folder the read commands open (-C DIR): its store where a project's is, and an
    -- orket.lua of its own that names no store (the project's may name PostgreSQL's)
    local f = io.open(scratch .. "/orket.lua", "w")
    if f then
      f:write("-- the replay of run ", run_id, " that project:replay kept: its store (.orket/orket.db) and ",
        "workspace,\n-- for orket log, runs, board and card -C THIS_FOLDER; not a project to run\n",
        "name = \"replay-", run_id, "\"\n")
      f:close()
    end
    if report then report.dir = scratch end
  end
  return report, err, code
end

function Project:_replay_in(scratch, row, opts)
  local e = self.engine
  uv.fs_mkdir(scratch .. "/.orket", tonumber("700", 8))
  local db, derr, dcode = store.open(scratch .. "/.orket/orket.db")
  if not db then return nil, derr, dcode end
  local r -- the replay's engine, once opened
  -- On every way out: turns still in flight (an error or a cancel mid-run) are cancelled
  -- before the store and workspace they use are closed.
  local _ <close> = setmetatable({}, { __close = function()
    if r then
      r:stop()
      r.close_all()
    else
      db:close()
    end
  end })
  local ok, ierr, icode = import.import(db, self.dir)
  if not ok then return nil, "replay: " .. tostring(ierr), icode end
  local calls, missing = 0, {}
  local source = recorded(e.db, row.id)
  -- Every provider of orket.lua answers from the recording, so each call goes to the model
  -- the recorded run's went to (its --model, else the routing's) and models.prices prices it
  -- as that call was priced: a money budget stops the replay's card at the recorded step.
  -- (One unpriced "replay:recorded" never stopped it, and the replay asked for steps the
  -- recording had not, as if a script had changed.)
  local models = {}
  for k, v in pairs(e.models or {}) do models[k] = v end
  models.providers = {}
  for name in pairs((e.models or {}).providers or {}) do models.providers[name] = { kind = "replay" } end
  local client = llm.new(models, { replay = function(key)
      calls = calls + 1
      local rec, why = source(key)
      if not rec then
        missing[#missing + 1] = string.format("%s turn %d step %d (%s)", key.card, key.turn, key.call, key.seat)
      end
      return rec, why
    end })
  local data = type(row.data) == "table" and row.data or cjson.decode(row.data or "{}") or {}
  -- The scripts as loaded now (after any reload), not a second copy from disk.
  local re, rerr, rcode = setup.open(self.dir, { db = db, workspace = scratch .. "/workspace", llm = client,
    model = data.model, emit = opts.emit,
    scripts = { roles = e.roles, tools = e.tools, policies = e.policies, routing = e.routing } })
  if not re then return nil, rerr, rcode end
  r = re
  local id, serr, scode = r:start(row.target)
  if not id then return nil, serr, scode end
  local status = r:execute(id)
  local report = { status = status, calls = calls, missing = missing, cards = {}, differs = {},
    recorded = turns.count(e.db, row.id),
    tokens = engine_recorded.tokens(db, id) }
  for _, c in ipairs(r.board:list {}) do
    local now = e.board:get(c.id)
    report.cards[c.id] = { replay = c.status, now = now and now.status or nil }
    if not now or now.status ~= c.status then report.differs[#report.differs + 1] = c.id end
  end
  table.sort(report.differs)
  return report
end

--- project:approvals(card_id) -> the card's approval requests, oldest first (see docs/store.md)
function Project:approvals(card_id)
  if type(card_id) ~= "string" then return bad_arg(1, "approvals", "card id", card_id) end
  local c, err, code = self.engine.board:get(card_id) -- an unknown card is not one without requests
  if not c then return nil, err, code end
  return approvals.list(self.engine.db, card_id)
end

--- project:approve(card_id[, note]) / project:deny(card_id, reason) -> request | nil, msg, CODE
--- What `orket answer CARD --approve|--deny` does: decides the card's pending request (approve
--- also lets a card a money budget stopped go on: orket.actions.budget_wait).
-- As `orket answer` decides (cmd/answer.lua): by the local operator, in the audit chain, the
-- decision and its audit entry in one transaction; the REPL is a person at this machine too.
local function decide(p, card_id, decision, note)
  local actor = localuse.as_operator()
  local db = p.engine.db
  return localuse.audited(db, decision, card_id, function()
    return approvals.decide(db, p.engine.board, card_id, { decision = decision, note = note, by = actor.seat })
  end, function(r) -- the chain's detail, as orket answer's
    local words = { [decision == "deny" and "reason" or "note"] = note }
    return require("orket.audit.chain").card_decision(decision, words, r) -- lazy: as the store
  end)
end

function Project:approve(card_id, note)
  if type(card_id) ~= "string" then return bad_arg(1, "approve", "card id", card_id) end
  if note ~= nil and type(note) ~= "string" then return bad_arg(2, "approve", "note string", note) end
  return decide(self, card_id, "approve", note)
end

function Project:deny(card_id, reason)
  if type(card_id) ~= "string" then return bad_arg(1, "deny", "card id", card_id) end
  if type(reason) ~= "string" then return bad_arg(2, "deny", "reason string", reason) end
  return decide(self, card_id, "deny", reason)
end

--- project:reload() -> true | nil, "file:line: message", CODE: the watcher's reload, now.
function Project:reload() return reload.apply(self.engine) end

--- project:close(): closes the store and workspace (idempotent); the helpers then answer
--- nil, msg, "ECLOSED" until project:reopen().
function Project:close()
  if self.closed then return end
  rawset(self, "closed", true)
  self.engine.close_all()
end

--- project:reopen() -> project | nil, msg, CODE: opens the store, workspace and scripts of a
--- closed project again (from disk, as the REPL's start does); an open one is left as it is.
function Project:reopen()
  if not rawget(self, "closed") then return self end
  local e, err, code = engine_of(self)
  if not e then return nil, err, code end
  rawset(self, "engine", e)
  rawset(self, "closed", nil)
  return self
end

-- A helper called on a closed project, or with a dot (`project.messages("X")`: the card id
-- taken for the project), is answered as a value as a wrong argument is: raised, it came as
-- "calling 'row' on bad self (store is closed)" from deep in Orket's files, or as a card id
-- "expected, got no value" that was given.
for _, name in ipairs { "messages", "turn", "replay", "approvals", "approve", "deny", "reload" } do
  local helper = Project[name]
  Project[name] = function(self, ...)
    if getmetatable(self) ~= Project then
      return nil, string.format("project.%s was called without the project: call it project:%s(...), with a colon",
        name, name), "EUSAGE"
    end
    if rawget(self, "closed") then
      return nil, string.format("the project %s is closed (project:close()): project:reopen() opens it again", self.dir),
        "ECLOSED"
    end
    return helper(self, ...)
  end
end

return M
