-- orket.engine.run: one run of the engine: its id, its target, the turns in flight and
-- everything it learns while it goes (tokens spent, cards skipped and why, the budget or
-- journal failure that ended it, the wall clock, the per-run counters). Made fresh by
-- Engine:execute (and by the REPL's project:turn through Engine:use_run), so nothing of
-- one run leaks into the next. What a run does not own it reads from its engine (store,
-- board, settings, scripts: a hot reload swaps the engine's, and the next turn sees them).
-- Contract: docs/engine.md.
local rt = require "orket.c.runtime"
local uv = require "luv"
local task = require "orket.task"
local settings_mod = require "orket.settings"
local scheduler = require "orket.engine.scheduler"
local turn = require "orket.engine.turn"
local recorded = require "orket.engine.recorded"
local review = require "orket.engine.review"
local fault = require "orket.engine.fault"
local verify = require "orket.engine.verify"
local pull_request = require "orket.engine.pull_request"
local board_mod = require "orket.board"
local gitwork = require "orket.engine.gitwork"
local store_runs = require "orket.store.runs"
local store_journal = require "orket.store.journal_reads"
local json = require "cjson.safe"
local roles_mod = require "orket.engine.roles"
local spend = require "orket.engine.spend"
local experiments = require "orket.engine.experiments"
local store_experiments = require "orket.store.experiments"
local sourcepos = require "orket.sourcepos"
local inert = require "orket.inert"
local errors = require "orket.errors"

local M = {}
local Run = {}
M.Run = Run

-- A run's own fields and methods first, then its engine's: the run's metatable looks in a
-- table of Run's methods whose own metatable looks in the engine. The chain is followed
-- in C; a Lua __index function was a call for every engine field a turn reads (about 250).
-- A run holds only the fields new declares (those starting nil included, in FIELDS): a new
-- field, or one meant for the engine, is an error where it is written. The check runs
-- only when a field is absent, so a run's own writes cost nothing more.
local FIELDS = {}
M.FIELDS = FIELDS

local function class_of(engine)
  local cls = setmetatable({}, { __index = engine })
  for k, v in pairs(Run) do cls[k] = v end
  return { __index = cls, __name = "orket.engine.run", __newindex = function(t, k, v)
    if not FIELDS[k] then error("a run has no field '" .. tostring(k) .. "' (orket.engine.run.new)", 2) end
    rawset(t, k, v)
  end }
end

-- every field of a run: those new sets and those it leaves nil until the run needs them
for _, k in ipairs { "engine", "run_id", "model", "tasks", "run_counters", "skipped", "stopping", "halted",
  "journal_failed", "journal_base", "git_failed", "git_failed_tool", "git_moved_away", "git_unready", "tokens_used", "card_tokens_used", "spend", "money_checking",
  "money_reads", "money_deferred", "card_clock",
  "run_deadline", "round_after", "waker", "main_push", "forge_publishing", "forge_failed", "verify_held", "git_known", "deploys", "internal_failed",
  "threads", "began_finished", "cut_answers" } do
  FIELDS[k] = true
end

--- new(engine, run_id) -> run: the per-run state, empty. model: the engine's override
--- (--model), else the one the run was started with (execute sets it from the run's row).
function M.new(engine, id)
  if type(engine) ~= "table" then error("bad argument #1 to 'new' (engine expected)", 2) end
  if math.type(id) ~= "integer" then error("bad argument #2 to 'new' (run id integer expected)", 2) end
  return setmetatable({
    engine = engine,
    run_id = id,
    model = engine.model,
    tasks = {},        -- turns in flight: task -> true
    -- the run's own threads (its loop's and its jobs' tasks' coroutines), weak: a lock met
    -- by one of them ends the run, one met by another task of the process does not
    -- (journal_broken)
    threads = setmetatable({}, { __mode = "k" }),
    run_counters = {}, -- the gate's per-run counters (calls, bytes, files)
    skipped = {},      -- card id -> why it was left as it was this round
    stopping = false,  -- no new turns; execute returns "interrupted" unless halted or journal_failed
    halted = nil,      -- the run budget that ended the run (run_budget_spent)
    journal_failed = nil, -- the store's file error that ended the run (journal_broken)
    journal_base = nil, -- a carried-on run's mark of the store's failures at its start (db:journal_mark)
    git_failed = nil, -- the repository's disk full, which ended the run (git_broken), or gone (git_moved)
    git_failed_tool = nil, -- {name=, code=, host=, said=}: the tool whose own words git_failed is (git_broken)
    git_moved_away = nil, -- true when git_failed says the project moved (git_moved)
    git_unready = nil, -- true when git_failed is what settling the repository met (unready)
    internal_failed = nil, -- an error in Orket's own code that ended a turn's task (start_jobs)
    tokens_used = nil, -- the run's tokens, a tally (run_tokens)
    card_tokens_used = nil, -- card id -> its tokens since its last retry, a tally (card_tokens)
    card_clock = nil,  -- card id -> when its wall budget started (turn.lua)
    run_deadline = nil, -- rt.now() when wall_ms_per_run runs out
    round_after = nil, -- inside a scheduling round: what runs after it commits (after_commit); false after
    waker = nil,       -- the scheduler's waker while execute loops
    main_push = nil,   -- {again=} while main is pushed to git.remote (gitwork.push_main)
    forge_publishing = nil, -- true while pull requests are published (orket.engine.pull_request)
    forge_failed = nil, -- card id -> the forge's last failure for it (orket.engine.pull_request)
    verify_held = nil, -- card id -> why its verification could not run (orket.engine.verify)
    deploys = nil,     -- {{card=, owner_pid=}...}: sandboxes deployed after its merges (gitwork.deploys_end)
  }, class_of(engine))
end

function Run:emit(ev)
  ev.run_id = self.run_id
  local tracer = self.engine.tracer -- spans of the run (orket.otel), before the stream's handler
  if tracer then tracer:event(ev) end
  local fn = self.engine.emit_fn
  if fn then fn(ev) end
end

local function seat_actor(run, seat)
  local s = run.settings.team[seat]
  return { seat = seat, roles = s and { table.unpack(s.roles) } or {} }
end

-- The records of blocking a card: a comment saying why and the move to blocked, in one
-- transaction (a savepoint of the caller's). true, moved | nil, msg, CODE. A card that has
-- left the statuses a turn works from (handed in meanwhile, done) is left as it is (moved
-- false); a ready one is blocked too: a card whose turns ran out, answered since.
-- The move is the engine's (a reviewer's own moves out of code_review are only done or in_progress),
-- journaled under the seat whose turn it ends.
local BLOCKABLE = { ready = true, in_progress = true, code_review = true }
local function block_records(run, id, actor, reason, why, to)
  return run.db:tx(function()
    local status = assert(run.board:status(id))
    -- a ready card only to blocked (a money budget's waiting_for_developer is a turn's end,
    -- which the state machine does not take from ready)
    if not BLOCKABLE[status] or (status == "ready" and (to or "blocked") ~= "blocked") then return true, false end
    assert(run.board:comment(id, { author = "orket", body = why }))
    local t, terr, tcode = run.board:transition(id, to or "blocked",
      { actor = { seat = actor.seat, roles = actor.roles, by = "engine" }, reason = reason, note = why })
    if not t then return nil, terr, tcode end
    return true, true
  end)
end

-- Runs fn once what was just written is durable: at once, or, inside a scheduling round's
-- transaction, after it commits, so no event announces a change a crash could still undo
-- and the after_transition fault point kills after the commit, as its name says.
function Run:after_commit(fn)
  if self.round_after then
    self.round_after[#self.round_after + 1] = fn
  else
    fn()
  end
end

-- Moves a card to blocked with a reason and a comment saying why (one transaction).
-- -> whether the card moved
function Run:block(card, actor, reason, why)
  local ok, moved = block_records(self, card.id, actor, reason, why)
  if ok and not moved then return false end
  self:after_commit(function()
    self:emit { type = "card_blocked", card = card.id, reason = reason, detail = why, error = not ok and moved or nil }
    fault.hit("after_transition")
  end)
  return ok ~= nil
end

-- A routing choice: the value, or nil plus why the card cannot be scheduled when a
-- project's routing.lua raised an error (its first line: routing.lua:LINE: message).
local function route(run, kind, ...)
  local v, err = run.routing:choose(kind, ...)
  if err == nil then return v end
  -- routing.lua is loaded named from the project (routing.load's base): its errors say
  -- routing.lua:LINE already, under any directory
  local msg = tostring(err):gsub("^routing " .. kind .. ": ", ""):match("^[^\n]*")
  return nil, string.format("routing error in %s's %s: %s", run.routing.file and "routing.lua" or "the built-in routing",
    kind, msg)
end

-- Leaves a card as it is this round, saying why (card_skipped, once for one reason); the run's stall report
-- gives the same reason for it (conclude), not a guess from its status.
function Run:skip(card, why)
  self.skipped = self.skipped or {}
  -- said once: a card skipped again for the same reason in a later round is no news
  if self.skipped[card.id] ~= why then self:emit { type = "card_skipped", card = card.id, reason = why } end
  self.skipped[card.id] = why
  return nil, false
end

-- The turns a card took in this run since its last retry: its workers' (work, rework,
-- escalation) and its reviews', counted apart; turns_per_card bounds each. Review turns do
-- not use up the workers' budget, so a card rejected again and again reaches escalation and
-- the requirements review with the default budgets; a reviewer that never decides is still
-- bounded. A turn a money budget stopped before its first call is not counted: it asked
-- nothing. The retry event is read only when a count reaches the budget.
local function count_turns(turns, review_phase, since)
  local n = 0
  for i = 1, #turns do
    local t = turns[i]
    if t.id > since and (t.phase == "review") == review_phase and not t.no_call then n = n + 1 end
  end
  return n
end

local function turns_used(run, card, turns, review_phase)
  local used = count_turns(turns, review_phase, 0)
  if used >= run.settings.budgets.turns_per_card then
    used = count_turns(turns, review_phase, recorded.last_retry(run.db, card.id))
  end
  return used
end

-- Run:prepare's named steps. Each that may end the decision returns true and prepare's
-- answer (job | nil, whether the board changed); otherwise false and what it found. They
-- run inside the round's transaction (pick_round): a kill -9 anywhere in them rolls back
-- every move they made (a block, a requirements review filed), and the next run decides
-- again from the same journal.

-- What comes before a new turn: a hand-in verified (verify.lua), pushed with its pull
-- request (pull_request.lua), or a requirements review left to a person. -> true, answer... |
-- false, card (as now read)
function Run:before_turn(card, turns)
  -- a hand-in with acceptance checks is verified before review (engine/verify.lua)
  local vjob, now, verr = verify.prepare(self, card)
  if vjob then return true, vjob end
  if verr then return true, self:skip(card, verr) end
  card = now
  -- a hand-in on a project with a remote is pushed (and its pull request opened) first
  local fjob, ferr, fwait = pull_request.prepare(self, card)
  if fjob then return true, fjob end
  if ferr then return true, self:skip(card, ferr) end
  if fwait then return true, nil, false end
  -- a requirements review is a question for a person: the architect gets a turn to give its
  -- view or hand it in (a rejected hand-in is reworked, and escalated, as any card's is); a
  -- work turn that ended with it still in progress leaves it to a person, not to turn after
  -- turn until the budget blocks it and fails the run
  local last = turns[#turns]
  local of = card.status == "in_progress" and last and (last.phase == "work" or last.phase == "rework")
    and review.reviewed_card(self.db, card.id)
  if of then
    local actor = seat_actor(self, card.worked_by or "orket")
    actor.by = "engine"
    local ok, err = review.await_person(self, card, actor, of)
    self:after_commit(function()
      self:emit { type = "requirements_review", card = card.id, of = of, waiting = true, error = not ok and err or nil }
    end)
    return true, nil, true
  end
  return false, card
end

-- The new turn's phase from the card's status and its rejections: a rejected card is
-- reworked, escalated to the architect, or its requirements reviewed. -> true, answer... |
-- false, phase, seat (an escalation's), chooser
function Run:turn_phase(card)
  local team = self.settings.team
  if card.status == "code_review" then return false, "review", nil, "worker" end
  if card.status ~= "in_progress" then return false, "work", nil, "worker" end
  local next_step = review.after_rejection(self, card)
  if next_step == "requirements" then
    -- files no turn, so no turn budget stands in its way
    local arch, aerr = route(self, "escalation", card, team)
    if aerr then return true, self:skip(card, aerr) end
    if not arch then
      arch, aerr = route(self, "worker", card, team)
      if aerr then return true, self:skip(card, aerr) end
    end
    local new, err = review.requirements_review(self, card, arch, seat_actor(self, card.worked_by or arch))
    self:after_commit(function()
      self:emit { type = "requirements_review", card = card.id, issue = new and new.id or nil, error = err }
    end)
    return true, nil, true
  elseif next_step == "escalate" then
    local seat, why = route(self, "escalation", card, team)
    if why then return true, self:skip(card, why) end
    if seat then return false, "escalation", seat, "escalation" end
  end
  return false, (card.retries or 0) > 0 and "rework" or "work", nil, "worker"
end

-- A call repeated this many times, and nothing else, in the turns that spent a budget is a
-- model going round in circles
M.REPEATS_MIN = 3

-- A budget spent in vain (Run:turns_spent, end_turn_records): every call of the turns that
-- spent it (their numbers) was refused by the gate, or failed in the tool itself, or they
-- made one call again and again, so more of the budget would go the same way. -> what those
-- calls were, what would help instead, and the detail (the gate's reason, the tool's error,
-- the call) | nil: the budget's own advice stands. Read from the calls recorded, and only
-- when a budget stops a card. one: the numbers are a single turn's.
local function spent_in_vain(run, card_id, numbers, one)
  local s = recorded.spent_calls(run.db, run.run_id, card_id, numbers)
  if not s or s.n == 0 then return nil end
  local their = one and "its" or "their"
  if s.tool_failed == s.n then
    -- the tool's own line (tools/boom.lua:4) names what to fix, as a failing rule's does
    local res = recorded.call_result(run.db, s.tool_id) or {}
    local why = inert.clip((tostring(res.error or "ETOOL"):gsub("%.$", "")), turn.EVENT_REASON_MAX)
    local where = why:match("the tool failed: ([^%s]-%.lua:%d+):")
    local shown = {}
    for i, t in ipairs(s.tools) do shown[i] = inert.line(inert.clip(t, 64)) end
    return string.format("every one of %s %d tool call%s %s (%d ETOOL: %s)", their, s.n, s.n == 1 and "" or "s",
      scheduler.TOOL_FAILED, s.n, table.concat(shown, ", ")),
      string.format("ETOOL%s: %s", where and (" " .. where) or "",
        (errors.plain(errors.remedy("ETOOL")):gsub("%.$", ""))),
      "The tool's error: " .. why .. "."
  end
  if s.refused == s.n then
    local codes = {}
    for code, c in pairs(s.codes) do codes[#codes + 1] = { code = code, n = c.n, id = c.id } end
    -- the most frequent refusal (of two as frequent, the later) says what to fix
    table.sort(codes, function(a, b)
      if a.n ~= b.n then return a.n > b.n end
      return a.id > b.id
    end)
    local top, counts = codes[1], {}
    for i, c in ipairs(codes) do counts[i] = c.n .. " " .. c.code end
    local res = recorded.call_result(run.db, top.id) or {}
    local why = inert.clip((tostring(res.error or top.code):gsub("^denied: ", ""):gsub("%.$", "")),
      turn.EVENT_REASON_MAX)
    -- a rule whose predicate fails is named by the line it failed at; a deny by its rule
    local where = top.code == "POLICY_ERROR" and why:match("failed: ([^%s]-%.lua:%d+):") or res.rule
    local remedy = errors.remedy(top.code)
    if remedy and remedy:find("^nothing") then remedy = nil end -- (refused by design: the model must stop)
    local fix = string.format("%s%s: %s", top.code, where and (" " .. where) or "", remedy
      and errors.plain(remedy):gsub("%.$", "") or "the model keeps making calls the gate refuses: give the seat "
      .. "another model, or say in its role's prompt what is refused")
    return string.format("every one of %s %d tool call%s %s (%s)", their, s.n, s.n == 1 and "" or "s",
      scheduler.REFUSED, table.concat(counts, ", ")), fix, "The gate's reason: " .. why .. "."
  end
  if s.same and s.n >= M.REPEATS_MIN then
    return string.format("in %s the model %s (%d times)", one and "it" or "them", scheduler.REPEATED, s.n),
      "the model repeats itself: give the seat another model, or change its role's prompt",
      string.format("The call: %s %s.", inert.line(s.same.tool), inert.clip(s.same.args, 200, inert.line))
  end
  return nil
end

-- A budget's block note when spent_in_vain found why: head ("Stopped after 6 work turns
-- (budgets.turns_per_card)"), the calls and what helps instead of more budget first (a
-- run's end journals the note cut at 300 bytes: stuck_note), then the detail. The stall's
-- next step is read from it (scheduler.NOT_HELPED).
local function in_vain_note(head, budget, card_id, calls, fix, detail)
  return string.format("%s: %s, so raising budgets.%s %s%s; then 'orket retry %s' puts it back to ready. %s", head,
    calls, budget, scheduler.NOT_HELPED, fix, card_id, detail)
end

-- Blocks the card when its turns of this kind are spent (budgets.turns_per_card), saying
-- what would help. -> spent, moved (whether the block moved the card: a card it could not
-- move is skipped, which changes nothing)
function Run:turns_spent(card, turns, phase)
  local used = turns_used(self, card, turns, phase == "review")
  if used < self.settings.budgets.turns_per_card then return false end
  local worker = card.worked_by or route(self, "worker", card, self.settings.team) or "orket"
  local why
  local since = recorded.last_retry(self.db, card.id)
  if not recorded.called_tools(self.db, self.run_id, card.id, phase == "review", since) then
    -- more turns would not help a model that answers in prose; on a variant's model the
    -- seat's model is not the one to change
    local arm = phase ~= "review" and not self.model and experiments.variant(self, card, phase) or nil
    local variant = arm and arm.model and (" " .. experiments.decides(arm.experiment, arm.model)) or ""
    -- the provider cut the last answer: that, not tool calling, is what to look at, so the
    -- note says it in place of the tool-calling advice (a json dialect would change nothing
    -- about an output limit or a content filter). NO_TOOL stays in each: the stuck report
    -- reads it (scheduler), and CUT or FILTERED beside it.
    local cut = self.cut_answers and self.cut_answers[card.id]
    local kind = phase == "review" and "review" or "work"
    if cut and cut.reason == "length" then
      why = string.format("Stopped after %d %s turns " .. scheduler.NO_TOOL .. ", " .. scheduler.CUT
        .. "; raising budgets.turns_per_card would not help. The model's last answer: %s; then 'orket retry "
        .. "%s' puts it back to ready.%s", used, kind, cut.text, card.id, variant)
    elseif cut then
      why = string.format("Stopped after %d %s turns " .. scheduler.NO_TOOL .. ", " .. scheduler.FILTERED
        .. "; raising budgets.turns_per_card would not help. The model's last answer: %s: reword the card, or "
        .. "give %s another model, then 'orket retry %s' puts it back to ready.%s", used, kind, cut.text,
        variant ~= "" and "it" or "the seat", card.id, variant)
    else
      why = string.format("Stopped after %d %s turns " .. scheduler.NO_TOOL .. ", so it could not "
        .. "hand the card in; raising budgets.turns_per_card would not help. Check that the model can call "
        .. "tools (a model without native tool calls needs the role's dialect = \"json\") or give %s "
        .. "another model, then 'orket retry %s' puts it back to ready.%s", used, kind,
        variant ~= "" and "it" or "the seat", card.id, variant)
    end
  else
    -- the turns counted (count_turns): were their calls all refused, or one call repeated?
    local numbers = {}
    for _, t in ipairs(turns) do
      if t.id > since and (t.phase == "review") == (phase == "review") and not t.no_call then
        numbers[#numbers + 1] = t.turn
      end
    end
    local calls, fix, detail = spent_in_vain(self, card.id, numbers)
    local head = string.format("Stopped after %d %s turns%s (budgets.turns_per_card)", used,
      phase == "review" and "review" or "work", phase == "review" and " without a decision" or "")
    if calls then
      why = in_vain_note(head, "turns_per_card", card.id, calls, fix, detail)
    elseif phase == "review" then
      why = string.format("%s; raise the budget, then 'orket retry %s' puts it back to ready.", head, card.id)
    else
      why = string.format("%s; raise the budget or split the issue, then 'orket retry %s' puts it back to ready.",
        head, card.id)
    end
  end
  -- a card the block could not move is left out of this run's rounds: picked again, it
  -- would be found spent again, and the round would never end. It is no change either: a
  -- round that said it changed the board is followed by another at once (wait_round), and
  -- with this card picked again in each, the run spun without end
  local moved = self:block(card, seat_actor(self, worker), "resource", why)
  if not moved then self:skip(card, why) end
  return true, moved
end

-- The seat of a new turn: a reviewer (never the seat that did the work) or a worker.
-- -> true, answer... | false, seat, chooser
function Run:turn_seat(card, phase, seat, chooser)
  local team = self.settings.team
  local why
  if phase == "review" then
    seat, why = route(self, "reviewer", card, team)
    if why then return true, self:skip(card, why) end
    if not seat and not self.routing.file then
      self:block(card, seat_actor(self, card.worked_by or "orket"), "review",
        "No seat holding integrity_guard other than " .. tostring(card.worked_by) .. " can review this card: a "
          .. "retry alone meets the same block; give another seat integrity_guard in orket.lua's team, or seat the "
          .. "card elsewhere (orket validate names such cards), then retry it.")
      return true, nil, true
    end
    if not seat then return true, self:skip(card, "routing.lua's reviewer chose no seat for this card") end
    if seat == card.worked_by then
      return true, self:skip(card, string.format("routing.lua's reviewer chose %s, the seat that did the work; a "
        .. "card is reviewed by another seat holding integrity_guard", seat))
    end
    return false, seat, "reviewer"
  end
  if not seat then
    seat, why = route(self, "worker", card, team)
    if why then return true, self:skip(card, why) end
  end
  return false, seat, chooser
end

-- The seat's role for the phase. -> true, answer... | false, role
function Run:turn_role(card, open, phase, seat, chooser)
  local team = self.settings.team
  if not seat or not team[seat] then
    if seat ~= nil and self.routing.file and not open then
      return true, self:skip(card, string.format("routing.lua's %s chose %q, which is not a seat of orket.lua's team (%s)",
        chooser, tostring(seat), table.concat(settings_mod.seats(self.settings), ", ")))
    end
    return true, self:skip(card, "no seat in the team can work it (seat " .. tostring(seat or card.seat) .. ")")
  end
  local role = self:role_for(seat, phase)
  if not role then
    local want = (phase == "review" and "integrity_guard") or (phase == "escalation" and "architect") or nil
    return true, self:skip(card, string.format("seat %s has no %s role for a %s turn (it holds: %s)", seat,
      want or "known", phase, table.concat(team[seat].roles, ", ")))
  end
  return false, role
end

-- The model a turn uses (docs/roles.md) -> model, variant | nil, nil, why the card waits.
-- Only routing.lua's choice is checked here: --model, the variant's model, the seat's, the
-- role's and models.default are checked before the run (a role's at each reload too).
local function turn_model(run, card, phase, seat, role, arm)
  -- a run's own --model is a person's choice for every card and wins
  if run.model then return run.model end
  -- a variant card's work turn runs on the variant's model: routing's choice would go unused
  if arm and arm.model then return arm.model, true end
  local t = { seat = seat, role = role.name, card = card, phase = phase, team = run.settings.team,
    role_model = role.model, default = run.settings.models and run.settings.models.default }
  local model, merr = route(run, "model", t)
  if merr then return nil, nil, merr end
  -- a choice of a provider not configured would spend a turn to fail: the card waits, saying why
  merr = run.routing:unusable_model(model, run.llm)
  if merr then return nil, nil, merr end
  -- routing.lua's nil is no choice: the built-in rule decides (the seat's, the role's, the default)
  if model == nil then model = run.routing.builtin.model(t) end
  -- no choice: the client's own default answers, so the turn names that model
  if model == nil and type(run.llm) == "table" then model = rawget(run.llm, "default") end
  return model
end

-- The job of a turn: its scripts (kept through a hot reload), tools, model, and whether a
-- new turn claims the card. arm: the card's experiment variant (experiments.variant).
-- -> job | nil, changed (skipped)
function Run:turn_job(card, open, turns, merge_mark, phase, seat, role, arm)
  local actor = seat_actor(self, seat)
  local job = {
    run = self.run_id, card_id = card.id, seat = seat, actor = actor, role = role, phase = phase,
    turn = open and open.turn or (#turns + 1),
    -- read with the turns: the turn begins with main merged in (gitwork.enter)
    needs_main = merge_mark == "merge_conflict",
  }
  -- The turn keeps the role and tools it starts with: a hot reload swaps self's, not the
  -- job's (the policies are not kept: each call is judged by the newest set, gate)
  job.tools = self.tools
  -- one order for every seat's tools, the shared ones first (a prompt cache's prefix)
  -- the kept order's list is kept until it changes, and so is its specs' array (tools.lua;
  -- an MCP proxy's tools come and go: made anew)
  local tools, order = job.tools, roles_mod.kept_tool_order(self.roles, role.tools)
  job.tool_specs = tools.kept_specs and tools:kept_specs(order) or tools:specs(order)
  local merr
  job.model, job.variant_model, merr = turn_model(self, card, phase, seat, role, arm)
  if merr then return self:skip(card, merr) end
  local status_now = assert(self.board:status(card.id))
  job.start_status = status_now
  if not open then
    -- The turn's begin (turn_begin, and the ready -> in_progress move) is written with the
    -- turn's first commit (begin_records): a turn killed before then left nothing to resume.
    -- Checked here so a card that cannot move is skipped before its model is asked.
    if status_now == "ready" then
      local ok, err = self.board:check_transition(card.id, "in_progress", { actor = actor })
      if not ok then return self:skip(card, err) end
      job.claim, job.start_status = true, "in_progress"
    end
    job.begun = false
  end
  job.fresh = not open
  if self.skipped then self.skipped[card.id] = nil end
  return job
end

-- Decides the next turn for a card: job, or nil plus whether the board changed. An open
-- turn (a killed run's) goes on as it was; a new one passes the steps above in order.
-- carried: the card is out of the run's target (scheduler's view:carry), and only the rest
-- of its open turn is given: none open, nil, false, false.
function Run:prepare(card, carried)
  -- a card whose epic or rock a person archived (or canceled) gets no turn, not even the
  -- rest of a half-done one: its work would be merged under a parent that says it is over
  local over = scheduler.ended_parent(self.board, card)
  if over then return self:skip(card, (scheduler.ended_why(over, card.id))) end
  local turns, merge_mark = recorded.turns(self.db, self.run_id, card.id)
  if #turns == 0 then
    -- no turn of this run on the card: it has spent none of the run's tokens on it (a
    -- response is journaled only inside a begun turn), so card_tokens need not sum them
    -- (a worker's tally still reads from no mark: its next reads take what others record)
    self.card_tokens_used = self.card_tokens_used or {}
    self.card_tokens_used[card.id] = self.card_tokens_used[card.id] or { n = 0, marks = 0, own = 0 }
  end
  local open = turns[#turns]
  if open and not open.open then open = nil end
  if carried and not open then return nil, false, false end
  local phase, seat, chooser = nil, nil, "worker"
  local done, a, b, c
  if open then
    phase, seat = open.phase, open.seat
  else
    done, a, b = self:before_turn(card, turns)
    if done then return a, b end
    card = a
    done, a, b, c = self:turn_phase(card)
    if done then return a, b end
    phase, seat, chooser = a, b, c
    local spent, moved = self:turns_spent(card, turns, phase)
    if spent then return nil, moved end
    done, a, b, c = self:turn_seat(card, phase, seat, chooser)
    if done then return a, b end
    seat, chooser = a, b
  end
  local role
  done, a, b = self:turn_role(card, open, phase, seat, chooser)
  if done then return a, b end
  role = a
  -- an experiment's variant plays its own role and model on the card's work turns
  local arm, arms, xerr = experiments.variant(self, card, phase)
  if xerr then return self:skip(card, xerr) end
  if arm and arm.role then role = self.roles.by_name[arm.role] end
  local job, changed = self:turn_job(card, open, turns, merge_mark, phase, seat, role, arm)
  if job then
    job.arms, job.experiment = arms, arm and arm.experiment
    -- the card's first turn starts now, before its first call: the report's wall time
    -- counts from here (its arms are written only with the turn's first commit)
    if arms then job.started_at = self.db.conn:now() end
    -- a fresh turn's start on this process's steady clock (no statement): its begin is
    -- written after its first model call, and says how long after (begin_records' lead_ms)
    if job.begun == false then job.t0 = uv.hrtime() end
  end
  return job, changed
end

--- begin_records(job) -> true | nil, msg, CODE: writes a fresh turn's begin once: the
--- ready -> in_progress move (when prepare saw the card ready) and the turn_begin event.
--- Called inside the turn's first transaction (turn.lua's first step, record_failure, or
--- end_turn_records), whose savepoint it needs no other of: a refused move writes nothing
--- (the transition has its own), and a raise rolls back the caller's transaction.
function Run:begin_records(job)
  if job.begun ~= false then return true end
  if job.claim and assert(self.board:status(job.card_id)) == "ready" then
    local t, terr, tcode = self.board:transition(job.card_id, "in_progress",
      { actor = job.actor, note = "turn " .. job.turn })
    if not t then return nil, terr, tcode end
  end
  self.db:event { kind = "turn_begin", card = job.card_id, run = self.run_id, actor = job.seat,
    data = { turn = job.turn, phase = job.phase, seat = job.seat, role = job.role.name, experiment = job.experiment,
      -- ms from the turn's start to this record (its first call's time): /metrics' durations
      lead_ms = job.t0 and (uv.hrtime() - job.t0) // 1000000 or nil } }
  -- the card's arms, chosen as its first turn was prepared, are fixed from here on
  if job.arms then store_experiments.record(self.db, job.card_id, job.arms, job.started_at) end
  job.begun = true -- the caller resets it when its transaction does not commit
  return true
end

-- end_turn_records' turn left open: the outcome of a turn the run's stop cancelled
local function left_open(out)
  out.ended, out.detail, out.blocked = "canceled", "the run stopped", nil
  return true
end

--- end_turn_records(job, out): writes what ends a turn: the block a failed turn leaves
--- (budget, model or role error), the escalation mark, the turn_end event. Called inside
--- the last step's transaction (turn.lua), so a turn's end costs no commit of its own, or
--- by finish_turn in one transaction. Sets out.recorded, out.status (the card's status
--- after) and out.blocked ({reason=, detail=, error=}) for finish_turn's events.
--- A turn whose end would block its card while the run stops (a signal, a budget of the
--- run, a full disk: the stop may come from the turn's own commit below) records no end:
--- out becomes {ended = "canceled"} and the turn stays open, as a stopped run leaves every
--- card for `orket resume` (docs/engine.md), whose next step reaches the same end and
--- records it, block and card_blocked event together. The turn's commit comes first, so
--- its `commit` event is journaled before the end (and, for a turn not yet begun, before
--- its turn_begin): nothing reads commit events by their place among a turn's.
function Run:end_turn_records(job, out)
  local reason, why, to
  -- an answer the provider cut, kept for the block that more such turns bring (turns_spent)
  if out.cut then
    self.cut_answers = self.cut_answers or {}
    self.cut_answers[job.card_id] = { text = out.cut, reason = out.cut_reason }
  end
  if out.ended == "budget" and out.money then
    -- a money budget waits for a person: `orket answer --approve` approves going on, a
    -- raised budget lets it go on at the next run (docs/cost.md); the amounts are journaled with it
    reason, why, to = "budget", "Turn stopped: " .. out.detail .. string.format(". Approve going on ('orket answer %s "
      .. "--approve', the web board's button), or raise the budget.", job.card_id), "waiting_for_developer"
  elseif out.ended == "budget" then
    reason, why = "resource", "Turn stopped: " .. out.detail .. "."
    -- a turn's own budget (its steps, its calls) spent on refused or repeated calls: more
    -- of it would go the same way
    local calls, fix, detail
    if out.budget then calls, fix, detail = spent_in_vain(self, job.card_id, { job.turn }, true) end
    if calls then why = in_vain_note("Turn stopped: " .. out.detail, out.budget, job.card_id, calls, fix, detail) end
  elseif out.ended == "model_error" then
    reason, why = "system", string.format("The model failed (%s): %s", tostring(out.class), tostring(out.detail))
    -- the seat's model is not what failed: the block says what decides this one
    if job.variant_model then
      why = why .. (why:match("[.!?]$") and " " or ". ") .. experiments.decides(job.experiment, job.model)
    end
  elseif out.ended == "role_error" or out.ended == "engine_error" then
    -- a card's comment is read by people and models: no place in Orket's own source
    reason, why = "system", "The turn failed: " .. sourcepos.plain(tostring(out.detail))
  end
  if reason and self.stopping then return left_open(out) end
  -- the turn's files are committed before its end is recorded (gitwork.commit)
  local gok, gerr, gcode = gitwork.commit(self, job)
  if not gok then out.git_error = gerr end
  -- what the commit left out (a .gitignore rule, a filter attribute): said at the turn's end
  if gok and type(gerr) == "table" and #gerr > 0 then out.git_skipped = gerr end
  -- the disk is full: the files stay for the card's next commit, and the run stops rather
  -- than spend the card's turns on a repository that cannot be written
  if not gok then self:git_broken(job.card_id, gerr, gcode) end
  if not gok and gcode == "EUNSAFE" and not reason then
    -- a worktree git may not read (a FIFO .gitignore, a rewritten .git): nothing of the card
    -- can be committed or merged until a person looks, so it stops here with the reason
    reason, why = "system", "The turn's files were not committed: " .. tostring(gerr)
  end
  if reason and self.stopping then return left_open(out) end
  if job.begun == false and not self:begin_records(job) then
    -- the card could not move: the turn still counts (turns_per_card), so it is not retried forever
    job.claim = false
    assert(self:begin_records(job))
  end
  -- the card as the turn left it, for an escalation's mark (read only then: the other
  -- writes below name the card by its id)
  local card = job.phase == "escalation" and assert(self.board:get(job.card_id))
  if to then self.db:event { kind = "budget_reached", card = job.card_id, run = self.run_id, data = out.money } end
  if reason then
    local ok, err = block_records(self, job.card_id, job.actor, reason, why, to)
    out.blocked = { reason = reason, detail = why, error = not ok and err or nil, money = out.money }
  end
  if job.phase == "escalation" then
    self.db:event { kind = "escalated", card = job.card_id, run = self.run_id, data = { key = card.retries or 0 } }
  end
  self.db:event { kind = "turn_end", card = job.card_id, run = self.run_id, actor = job.seat,
    data = { turn = job.turn, outcome = out.ended, detail = out.detail, git_error = out.git_error,
      git_skipped = gok and gerr or nil, no_call = out.no_call } }
  out.status = assert(self.board:status(job.card_id))
  out.recorded = true
  -- a worker's card that left the statuses a turn works is released with the turn's end:
  -- one commit, and other workers woken by it no longer see the card held (after_lease)
  local lease = self.lease
  if lease and not lease.ops.WORKABLE[out.status] then
    lease:release_with(job.card_id)
    out.released = true
  end
  return true
end

--- journal_broken([card]) -> true when the store failed during this run (SQLite's file full,
--- read-only, damaged, I/O error, or its lock held by another process past the busy timeout
--- where one of this run's own tasks wrote (EBUSY: a lock another task of the process met,
--- an API request's or a command's, is that task's failure, and the run goes on); the
--- PostgreSQL server gone, refusing connections, out of disk: db:journal_error()), false
--- otherwise. The first
--- time it says so it ends the run: nothing can go on without the journal (a card whose
--- step could not be written would be picked again and again), so the run stops, failed,
--- with the reason (conclude), every card keeping the status the journal holds, and
--- `orket resume` continues once the store can be written.
function Run:journal_broken(card)
  if self.journal_failed then return true end
  local msg = self.db:journal_error(self.journal_base, self.threads)
  if not msg then return false end
  self.journal_failed = msg
  self:emit { type = "journal_error", card = card, error = msg }
  self:stop()
  return true
end

--- git_broken(card, msg, code) -> true when a git operation failed for want of space
--- (code ENOSPC), or for a host's fault passed on under it (gitwork.host_fault: no more
--- files, a read-only or failing disk, a place Orket writes it may not): like the journal's
--- failure (journal_broken), that ends the run the first time, failed, with the reason, no
--- card blocked or charged for it, and `orket resume` carries on once it is put right.
--- tool ({name=, code=, host=, said=}): the stop is what a tool's call answered, named in
--- the event; said: in the tool's own words (a project tool's code), not ctx.fs's failure
--- passed on, so said as the tool's, not the repository's: the operator looks at the tool,
--- and a resume runs its call again.
function Run:git_broken(card, msg, code, tool)
  if code ~= "ENOSPC" then return false end
  if not self.git_failed then
    local said = tool and tool.said and tool or nil
    self.git_failed, self.git_failed_tool = tostring(msg), said
    local host
    if tool then host = tool.host else host = gitwork.host_fault(self, card, "EGIT", self.git_failed) end
    self:emit { type = "git", card = card, action = host and "host_fault" or "disk_full", tool = tool and tool.name,
      error = said and string.format("tool %s reported %s: %s", said.name, tostring(said.code), self.git_failed)
        or self.git_failed }
    self:stop()
  end
  return true
end

--- git_moved(card, out) -> true when a turn that failed (out) failed because the project's
--- repository is no longer where the run opened it (gitwork.moved): that ends the run the
--- first time, failed, with the reason, as a full disk does (git_broken): no card blocked
--- for it, and `orket resume` in the project's new place carries on. A turn that ended well
--- costs no look.
function Run:git_moved(card, out)
  if self.git_failed then return true end
  if out.ended ~= "engine_error" and out.ended ~= "role_error" and not out.git_error then return false end
  local why = gitwork.moved(self.git)
  if not why then return false end
  self.git_failed, self.git_moved_away = why, true
  self:emit { type = "git", card = card, action = "project_moved", error = why }
  self:stop()
  return true
end

--- unready(msg): what git met settling the repository at the run's start (gitwork.recover:
--- a low ulimit -n, a read-only disk, a repository it cannot read) ends the run there, failed,
--- as a full disk does (git_broken), said with its cause and, for the host's faults, their
--- remedy (gitwork.host_fault); it was raised, a traceback, and left the run killed with no step.
function Run:unready(msg)
  -- (no card: the places of every card are looked at for a refused access)
  local host = gitwork.host_fault(self, "", "EGIT", msg)
  self.git_failed, self.git_unready = host or tostring(msg), true
  self:emit { type = "git", action = "unready", error = self.git_failed }
  self:stop()
end

--- check_lease(job): in a worker (engine.lease set), raises unless the worker's lease on
--- job's card is live, marking job.lease_lost; called first in each transaction that writes
--- for a turn, so a worker that lost its card writes nothing more for it. A run whose
--- process holds its lease in the store (engine.run_fence: orket.engine.runlease.fence)
--- writes nothing once that lease is another's (the run resumed elsewhere).
function Run:check_lease(job)
  local fence = self.engine.run_fence
  if fence and not fence() then
    job.lease_lost = true
    error("run " .. tostring(self.run_id) .. ": its lease is another process's now", 0)
  end
  local lease = self.lease
  if not lease then return end
  local ok, err = pcall(lease.check, lease, job.card_id)
  if not ok then
    job.lease_lost = true
    error(err, 0)
  end
end

--- finish_turn(job, out): records the turn's end unless its last step did, then emits.
function Run:finish_turn(job, out)
  if out.ended == "canceled" then return end
  if job.lease_lost then
    -- another worker may work the card now: nothing more is written for it here
    out.ended = "lease_lost"
    self:emit { type = "lease_lost", card = job.card_id, seat = job.seat, turn = job.turn }
    return
  end
  -- a step of this turn (or of another) could not be written: the turn ends unrecorded,
  -- not blocked for it, so a resume takes it up again
  local broken = self:journal_broken(job.card_id) or self.git_failed ~= nil or self:git_moved(job.card_id, out)
  if not broken and not out.recorded then
    local begun = job.begun
    local ok, err = self.db:tx(function()
      self:check_lease(job)
      return self:end_turn_records(job, out)
    end)
    -- rolled back with the rest: a block never committed is never announced (card_blocked)
    if not ok then
      if out.released then self.lease:kept(job.card_id) end
      out.released, out.recorded = nil, nil
    end
    if not ok and job.lease_lost then return self:finish_turn(job, out) end
    -- the run stopped: the turn stays open, its end not recorded (end_turn_records)
    if ok and out.ended == "canceled" then return end
    if not ok then
      job.begun = begun
      broken = self:journal_broken(job.card_id)
      out.status = (self.board:status(job.card_id))
      out.blocked = out.blocked and { reason = out.blocked.reason, detail = out.blocked.detail, error = err }
    end
  end
  -- the lease went with the turn's end (end_turn_records): forgotten before a renewal could
  -- find it gone and call it lost
  if out.released then self.lease:forget(job.card_id) end
  -- a turn's end recorded before the run broke is in the store, its block with it: said
  -- as recorded (card_blocked), so the events agree with the store
  if broken and not out.recorded then
    out.blocked = nil
    out.ended = "journal_error"
    out.status = (self.board:status(job.card_id))
  end
  if out.blocked then
    self:emit { type = "card_blocked", card = job.card_id, reason = out.blocked.reason, detail = out.blocked.detail,
      error = out.blocked.error }
    fault.hit("after_transition")
  end
  self:emit { type = "turn_end", card = job.card_id, seat = job.seat, role = job.role.name, phase = job.phase,
    turn = job.turn, outcome = out.ended, status = out.status, git_skipped = out.git_skipped,
    -- (a turn that found its card could no longer start says why: nothing else does)
    detail = out.ended == "not_started" and out.detail or nil }
  fault.hit("turn_end")
end

-- take_turn's to-be-closed value: one metatable for every turn, not a closure per turn
local LEAVE = { __close = function(v) gitwork.leave(v.job) end }

--- take_turn(job) -> outcome: one turn of a prepared job, from its start to its recorded
--- end: in the card's git worktree (orket.engine.gitwork: made on its first turn, main
--- merged in after a conflict), the turn itself (orket.engine.turn), then finish_turn.
function Run:take_turn(job)
  -- the worktree's view is closed however the turn ends (an error in finish_turn included)
  local _ <close> = setmetatable({ job = job }, LEAVE)
  -- a server's runs make worktrees one per turn of its loop (orket.engine.pace)
  if self.engine.pace then self.engine.pace() end
  local ok, out, code = gitwork.enter(self, job)
  if not ok then self:git_broken(job.card_id, out, code) end
  if ok then
    ok, out = pcall(turn.run, self, job)
    -- the MCP server processes of the card's turn end before its files are committed
    if self.mcp then self.mcp:release(job.card_id) end
    if not ok and job.lease_lost then out = { ended = "lease_lost", detail = tostring(out) }
    elseif not ok then out = { ended = "engine_error", detail = tostring(out) } end
  else
    out = { ended = "engine_error", detail = "git: " .. tostring(out):gsub("^git: ", "") }
  end
  self:finish_turn(job, out)
  if out.status == "done" and out.ended ~= "journal_error" then
    local rok, rerr = gitwork.retire(self, job)
    if not rok then self:emit { type = "git", card = job.card_id, action = "worktree_kept", detail = rerr } end
  end
  -- what follows a merge, outside the turn's transactions: its pull request ends, main is
  -- pushed, and a sandbox of the new main may be due (sandbox.deploy)
  if job.merged then gitwork.after_merge(self, job.card_id, job.merged) end
  return out
end

--- after_lease(job, out): in a worker, a card that left the statuses a turn works is
--- released, so its lease does not outlive the work (a card still in progress or in review
--- stays with this worker, which gives it its next turn; not a carried one, job.carried). A
--- turn whose end was recorded released it then (end_turn_records); this releases it after
--- one whose end was not.
function Run:after_lease(job, out)
  local lease = self.lease
  if job.lease_lost or not lease.held[job.card_id] then return end
  local st = out and out.status or (self.board:status(job.card_id))
  -- a carried card (out of the run's target: view:carry) whose turn ended is its new
  -- parent's now, whatever its status: kept, its lease held it from that parent's run
  if lease.ops.WORKABLE[st] and not (job.carried and out and out.recorded) then return end
  pcall(function() assert(self.db:tx(function() lease:release(job.card_id); return true end)) end)
end

-- The token budgets' totals are tallies {n = the total, marks = what of the journal it has
-- read up to, reading = true while a read is under way}. A worker's run (self.lease) is
-- shared with the run's other workers, and its cards' leases move between them (failover):
-- its tallies are the journal's, caught up before each check with the rows every worker
-- recorded since the marks (by id), so a budget counts every process's tokens, not this
-- one's. read(db, run, marks, arg) -> n, reset (n is the whole total, not an addition),
-- marks'. One read at a time: on PostgreSQL a read waits, and two turns reading from the
-- same marks would each add the rows between (a turn that finds a read under way takes the
-- total as it stands, at most the rows of that read behind). A transaction or savepoint
-- that wrote and was rolled back since the last read may have held that read: the marks
-- may then be past rows that are gone, whose tokens the tally counted, and on SQLite past
-- ids the next rows take again (a call never counted); the tally is then read again whole
-- (start() -> the marks of nothing read).
-- (the mark is cleared however the read ends: an error, or its task cancelled while a read
-- waits (Run:stop), which closes the task's coroutine; a mark left behind would keep the
-- tally from ever being read again)
local READ_ENDS = { __close = function(tally) tally.reading = nil end }

local function catch_up(run, tally, read, arg, start)
  if not tally.reading then
    local conn = run.db.conn
    local undone = conn and conn.rollbacks and conn:rollbacks() or 0
    if tally.undone ~= undone then
      if tally.undone ~= nil then
        tally.n, tally.marks = 0, start()
        if tally.own then tally.own = 0 end
      end
      tally.undone = undone
    end
    tally.reading = true
    local _ <close> = setmetatable(tally, READ_ENDS)
    local n, reset, marks = read(run.db, run.run_id, tally.marks, arg)
    tally.marks, tally.n = marks, (reset and 0 or tally.n) + n
  end
  return tally.n
end

local function run_start() return { 0, 0 } end
local function card_start() return 0 end

local function run_read(db, run, m)
  local n, turn, event = recorded.tokens_since(db, run, m[1], m[2])
  return n, false, { turn, event }
end

local function card_read(db, run, mark, card)
  return recorded.card_tokens_since(db, run, card, mark)
end

--- run_tokens() -> tokens the run has spent: read from the journal once, then kept as a
--- running total (add_tokens), so the per-step budget check does not sum every turn; a
--- worker's caught up from the journal (catch_up), so budgets.tokens_per_run counts the
--- whole run's tokens, not this process's.
function Run:run_tokens()
  local t = self.tokens_used
  if self.lease then
    if not t then
      t = { n = 0, marks = run_start() }
      self.tokens_used = t
    end
    return catch_up(self, t, run_read, nil, run_start)
  end
  if not t then
    t = { n = recorded.tokens(self.db, self.run_id) }
    self.tokens_used = t
  end
  return t.n
end

--- card_tokens(card_id [, turn]) -> tokens the run has spent on the card since its last
--- retry: read from the journal the first time, then kept as a running total like the
--- run's; a worker's caught up from the journal like the run's (the card's events from the
--- mark on), so budgets.tokens_per_card counts what every worker spent on the card, and a
--- retry recorded meanwhile starts the count again. turn (the turn's job): a worker holds
--- the card's lease for the whole turn, and no other worker spends on the card meanwhile
--- (a lapsed lease's calls are refused), so its tally is caught up once a turn, at the
--- turn's first check, and its own calls are added to it after (add_tokens): one read a
--- turn, not one a step inside the step's transaction.
function Run:card_tokens(card_id, turn)
  local all = self.card_tokens_used
  if not all then
    all = {}
    self.card_tokens_used = all
  end
  local t = all[card_id]
  if self.lease then
    if not t then
      t = { n = 0, marks = card_start(), own = 0 }
      all[card_id] = t
    end
    if turn ~= nil and t.turn == turn then return t.n end
    if not t.reading then
      -- the journal's rows past the mark hold this worker's own calls, added meanwhile
      t.turn, t.n, t.own = turn, t.n - t.own, 0
    end
    return catch_up(self, t, card_read, card_id, card_start)
  end
  if not t then
    t = { n = (recorded.card_tokens_since(self.db, self.run_id, card_id, 0)) }
    all[card_id] = t
  end
  return t.n
end

--- add_tokens(n [, card_id]): adds a model response's tokens to the running totals.
function Run:add_tokens(n, card_id)
  -- (a worker's run total comes from the journal, where this response's row is counted;
  -- its card tally counts its own calls between reads: card_tokens)
  if self.lease then
    local c = card_id and self.card_tokens_used and self.card_tokens_used[card_id]
    if c then c.n, c.own = c.n + n, c.own + n end
    return
  end
  self:run_tokens()
  self.tokens_used.n = self.tokens_used.n + n
  local c = card_id and self.card_tokens_used and self.card_tokens_used[card_id]
  if c then c.n = c.n + n end
end

--- run_budget_spent([kind]) -> why | nil: the run's own budget that ran out ("tokens":
--- tokens_per_run, "wall": wall_ms_per_run, "calls": the gate's limits.calls_run; nil:
--- whichever has). A spent run budget ends
--- the run as stop() does, with this reason (execute, conclude), and blocks no card.
function Run:run_budget_spent(kind)
  local b = self.settings.budgets
  if (kind == nil or kind == "tokens") and b.tokens_per_run > 0 and self:run_tokens() >= b.tokens_per_run then
    return string.format("the run's token budget (budgets.tokens_per_run = %d) ran out", b.tokens_per_run)
  end
  if kind == "wall" or (kind == nil and self.run_deadline and rt.now() + 1 >= self.run_deadline) then
    return string.format("the run's time budget (budgets.wall_ms_per_run = %d) ran out", b.wall_ms_per_run)
  end
  -- the gate refuses every call past the run's limit: each card left would spend its turns
  -- on refusals and be blocked for a budget of its own
  local calls = self.settings.limits and self.settings.limits.calls_run
  if (kind == nil or kind == "calls") and calls and calls > 0 and (self.run_counters.calls or 0) >= calls then
    return string.format("the run's tool call limit (limits.calls_run = %d) was reached", calls)
  end
  return nil
end

--- stop(): no new turns; in-flight turns are cancelled where they wait (the journal stays
--- consistent: each step was written in its own transaction); execute() returns "interrupted"
--- unless the run stopped itself (a run budget, the journal).
function Run:stop()
  if self.stopping then return end
  self.stopping = true
  for t in pairs(self.tasks) do t:cancel() end
  self.tasks = {}
  if self.waker then self.waker:wake() end
end

-- Run:execute's named steps share one loop state, st: {target, conc, busy (card ids with a
-- turn or a verification in flight), inflight, waker, view, lease, share (a worker's turns
-- shared among its runs), denied (this round found no turn free in it), poll, clock, last_pass}.
-- Where a kill -9 can land and what makes it safe is said at each step: every step's
-- writes are in the journal's transactions, so a killed run resumes from what committed.

-- The run's start: its row, the repository settled, the run_start event, the wall clock.
-- Crash point: a kill before the first round leaves only what gitwork.recover and settle
-- committed, and a resume does the same again (both are idempotent).
-- {note = "every issue of E (3) was already done when the run began", ids = {id = true}}:
-- the target had nothing left to work (every issue in it done or canceled, or none), else nil
-- A resumed run says so only when a card of it was canceled meanwhile (a person's cancel while
-- it was stopped): one whose cards were all done before it stopped just ends done.
local function finished_at_start(board, target, resumed)
  local cards, done, ids = scheduler.scope(board, target), 0, {}
  for _, c in ipairs(cards) do
    if c.status == "done" then done = done + 1
    elseif c.status ~= "canceled" then return nil end
    ids[c.id] = true
  end
  if resumed and (#cards == 0 or done == #cards) then return nil end
  local what = done == #cards and "done" or done == 0 and "canceled" or "done or canceled"
  local at = resumed and "when the run resumed" or "when the run began"
  local note
  if #cards == 0 then note = string.format("%s has no issues to work", target.id)
  elseif target.type == "issue" then note = string.format("%s was already %s %s", target.id, what, at)
  else note = string.format("every issue of %s (%d) was already %s %s", target.id, #cards, what, at) end
  return { note = note, ids = ids, n = #cards }
end

-- the note of finished_at_start when the target's issues are still those it saw (an import
-- may have added one the run worked)
local function still_finished(began, cards)
  if not began or #cards ~= began.n then return nil end
  for _, c in ipairs(cards) do
    if not began.ids[c.id] then return nil end
  end
  return began.note
end

function Run:open_execution()
  local run_id = self.run_id
  local run = store_runs.get(self.db, run_id)
  if not run then error("bad argument #1 to 'execute' (no run " .. tostring(run_id) .. ")", 3) end
  local data = json.decode(run.data or "{}") or {}
  -- journal_broken reports what fails from here on; a worker's runs share their store, and
  -- the worker clears its failure itself once none of them is in flight (orket.engine.runset);
  -- a run carried on beside a server's other runs counts only failures after its start
  -- (db:journal_mark), the flag left to the runs that met it
  if self.engine.carry_on and self.db.journal_mark then self.journal_base = self.db:journal_mark()
  elseif not self.share then self.db:clear_journal_error() end
  self.threads[coroutine.running()] = true -- the run's loop (journal_broken)
  self.model = self.model or data.model
  local st = { conc = self.engine.concurrency or data.concurrency or self.settings.concurrency,
    target = assert(self.board:get(run.target)), busy = {}, inflight = 0, lease = self.lease, share = self.share }
  -- a worker's turns at once are shared among its runs (orket.engine.share); a run started
  -- with a concurrency of its own takes no more than that
  if st.share then st.conc = math.tointeger(data.concurrency) or st.share.limit end
  -- under the run lock: what a killed process left in the repository is settled first
  if self.lease then self.engine.no_git_recover = true end -- other workers' git work may be in flight
  local gok, gerr = gitwork.recover(self)
  if not gok then self:unready(gerr) end
  -- what an earlier merge left undone (the remote or the forge was down) is done now
  if not self.git_unready then
    gitwork.catch_up(self)
    self:settle(st.target)
  end
  -- a new run of a target with nothing left to work says so at its end (conclude); it is
  -- not refused, as such a run still settles what main owes (the git steps above); so does a
  -- resumed one whose cards were canceled while it was stopped
  if not st.lease then
    self.began_finished = finished_at_start(self.board, st.target, not (self.started_runs and self.started_runs[run_id]))
  end
  -- a card a money budget stopped goes on when orket.lua raised that budget since;
  -- crash point: one transaction, done again by a resume
  spend.release_raised(self, st.target)
  self.engine:observe_journal(run_id)
  -- trace_id: drawn when the run was recorded (Engine:start), so every start of it is in
  -- one trace (orket.otel); a run recorded before has none
  local resumed = not (self.started_runs and self.started_runs[run_id])
  self:emit { type = "run_start", target = st.target.id, concurrency = st.conc,
    resumed = resumed, trace_id = type(data.trace_id) == "string" and data.trace_id or nil }
  -- what was held until the run had begun (a watch that failed as it started) is said now,
  -- after run_start and with its id, as the run's own events are
  if self.engine.on_run_start then self.engine.on_run_start(run_id) end
  -- a resume takes back the cards a model failure that passes with time blocked: not a
  -- worker joining a run of the workers, which may be going on, but the one whose resume
  -- requeued it ended (requeued_runs); crash point: one transaction, done again by a resume
  if resumed and (not st.lease or self.requeued_runs[run_id]) then self:take_back(st.target) end
  -- done cards whose merges main lost (its repository made again): said, not a stop
  local lost, nlost, how
  if self.git and not self.git_unready then lost, nlost, how = gitwork.lost_merges(self.db, self.git.repo, self.git.made) end
  if lost then
    self:emit { type = "git", action = "history_lost", cards = lost, count = nlost, aside = self.git.aside,
      message = gitwork.history_note(lost, nlost, self.git.made, self.git.aside, how) }
  end
  -- The run's wall clock (restarted by a resume): model calls get what is left of it as
  -- their timeout (turn.lua), and this timer stops the run when it runs out, cancelling
  -- turns in flight wherever they wait, as a stop does.
  local wall = self.settings.budgets.wall_ms_per_run
  if wall > 0 then
    self.run_deadline = rt.now() + wall
    st.clock = uv.new_timer()
    st.clock:start(wall, 0, function()
      if not self.stopping then
        self.halted = self.halted or self:run_budget_spent("wall")
        self:stop()
      end
    end)
  end
  st.last_pass = rt.now() -- when the loop last ran its I/O for this task (wait_round)
  st.waker = scheduler.waker()
  st.view = scheduler.view(self.board, st.target)
  -- the turns a killed or stopped run left half done on cards an import has moved out of its
  -- target since: finished from the journal, then left to the cards' new parents (view:carry)
  if resumed then st.view:carry((recorded.open_turn_cards(self.db, run_id))) end
  self.waker = st.waker
  if st.share then st.share:join(run_id, st.waker) end
  if st.lease then
    -- other workers free cards and make new ones ready: look again now and then
    st.poll = uv.new_timer()
    st.poll:start(st.lease.poll_ms, st.lease.poll_ms, function()
      if st.inflight < st.conc and (not st.share or st.share:open(run_id)) then st.waker:wake() end
    end)
  end
  return st
end

--- take_back(target) -> ids of the cards moved back to ready: each card under target that
--- the engine blocked for a model failure that passes with time (transient, rate_limited,
--- timeout: a server down, busy or slow after the later rounds ran out) or for its role's
--- script's error (fixed in its file, hot reloaded: scheduler.take_back),
--- in one transaction, each said (card_taken_back). Its budgets are not started over, as
--- `orket retry` starts them: its turns and tokens so far still count.
function Run:take_back(target)
  local ok, moved = self.db:tx(function() return true, scheduler.take_back(self.board, target, self.run_id) end)
  if not ok then
    if not self:journal_broken() then self:emit { type = "journal_error", error = moved } end
    return {}
  end
  local ids = {}
  for _, m in ipairs(moved) do
    ids[#ids + 1] = m.card
    self:emit { type = "card_taken_back", card = m.card, class = m.class, role = m.role }
  end
  return ids
end

-- pick_round's transaction: the view brought up to date, then the picks, each prepared
-- (jobs gets the jobs). -> true, changed, others
local function round_picks(run, st, room, jobs)
  local changed, others, lease = false, false, st.lease
  st.view:refresh()
  if room > 0 then
    -- a worker starts only the cards it holds a lease on, claimed in the view's order
    local cands, state
    if lease then
      cands = lease:candidates(st.view, st.busy, run.run_id, function() return room - #jobs end)
    else
      cands, state = st.view:candidates(st.busy)
    end
    local view = st.view
    for c in cands, state do
      if #jobs >= room or run.stopping then break end
      local carried = view:is_carried(c.id)
      local job, acted, open = run:prepare(c, carried)
      changed = changed or acted
      if job then
        st.busy[c.id] = true
        jobs[#jobs + 1] = job
        job.carried = carried or nil
      end
      -- a carried card gets the rest of its turn once (one skipped is asked again next pass)
      if carried and (job or open == false) then view:carried_done(c.id) end
    end
  end
  if lease then
    lease:release_idle(st.busy, run.run_id)
    -- Whether other workers still hold cards is asked in this same transaction: its
    -- time is the one the claims above saw, so a lease that ran out since cannot read
    -- as neither live (to claim) nor held (to wait for), ending the run as stalled.
    if st.inflight == 0 and #jobs == 0 and not changed and not st.denied then others = lease:others_busy(run.run_id) end
  end
  return true, changed, others
end

-- One round's picks: the board's news and every pick share one transaction (one lock, one
-- snapshot); the turns start after it commits, so none runs inside it. -> jobs, changed,
-- others (other workers still hold cards), after (callbacks for once it committed) | nil,
-- err. Crash point: a kill inside it rolls the round back whole (the claims of a worker's
-- leases, the moves prepare made); nothing of a turn is written here.
function Run:pick_round(st)
  local jobs, after = {}, {}
  -- the turns this round may start: taken from the worker's share before the round (its
  -- transaction may wait on the store while another run's round goes), the rest given back
  local room = st.conc - st.inflight
  if st.share then room = st.share:take(self.run_id, room) end
  st.denied = st.share ~= nil and room == 0 and st.share:queued(self.run_id)
  self.round_after = after
  local ok, changed, others = self.db:tx(round_picks, self, st, room, jobs)
  -- false, not nil: the field stays set, so the next round's write is a plain one, not
  -- the run's field check (a nil write goes through __newindex each time)
  self.round_after = false
  if st.share then st.share:give(self.run_id, ok and room - #jobs or room) end
  if not ok then return nil, changed end
  return jobs, changed, others, after
end

-- A turn's task's body (start_jobs): the turn, then a worker's lease on its card
local function turn_task(run, st, job)
  local out = run:take_turn(job)
  if st.lease then run:after_lease(job, out) end
end

-- Starts each picked job in a task of its own: a verification or a push (verify.lua,
-- pull_request.lua), else a turn (take_turn). Each frees its card and wakes the loop when it
-- ends. Crash point: none here; each task's writes are its own steps' transactions.
function Run:start_jobs(st, jobs)
  local function done(t, job)
    -- a lock its task met after its turn's last look (a worker's lease write) is looked for
    -- while the task's thread, held weakly (threads), can still be matched
    self:journal_broken(job.card_id)
    self.tasks[t] = nil
    st.busy[job.card_id] = nil
    st.inflight = st.inflight - 1
    if st.share then st.share:give(self.run_id, 1) end
    st.waker:wake()
  end
  for i = 1, #jobs do -- pick_round's list, without holes
    local job = jobs[i]
    st.inflight = st.inflight + 1
    local t
    if job.verify or job.forge then
      t = task.new(function()
        local tok, terr = pcall(job.verify and verify.run or pull_request.run, self, job)
        if not tok then self:emit { type = "verify_end", card = job.card_id, passed = false, error = tostring(terr) } end
        done(t, job)
      end)
    else
      self:emit { type = "turn_start", card = job.card_id, seat = job.seat, role = job.role.name, phase = job.phase,
        turn = job.turn, model = job.model }
      t = task.new(function()
        -- an error here is Orket's own (a turn's failures are its outcomes): it ends the
        -- run failed, said on stderr with its traceback, rather than leaving the run waiting
        -- for a task that is gone
        local ok, terr = xpcall(turn_task, debug.traceback, self, st, job)
        -- (a read the lost store failed raises too: that is the store's loss, which ends the
        -- run as journal_broken says, not a bug of Orket's)
        local internal = not ok and not self:journal_broken(job.card_id)
        if internal then
          io.stderr:write("orket: internal error in ", job.card_id, "'s turn: ", tostring(terr), "\n")
          self.internal_failed = self.internal_failed or (job.card_id .. ": " .. tostring(terr):match("^[^\n]*"))
        end
        done(t, job)
        if internal then self:stop() end
      end)
    end
    self.tasks[t] = true
    self.threads[t.co] = true -- its writes are the run's own (journal_broken)
    t:start()
  end
end

-- Waits for the next round's reason -> true to go on, false when the run has nothing left.
function Run:wait_round(st, changed, others)
  local w = st.waker
  if st.inflight > 0 or st.denied then
    -- (a run of a worker's that found no turn free waits for one: its share wakes it)
    if w:wait() then st.last_pass = rt.now() end
  elseif w.pending then
    -- turns ended without waiting on the loop (a scripted model answers at once): look
    -- again. Every 50 ms of such rounds the loop gets one pass through its I/O, where a
    -- signal or a closed stdout stops the run; without it a run that never waits could
    -- not be stopped. A 1 ms sleep, since a 0 ms timer started from a timer callback runs
    -- in the same timers phase (libuv 1.44) and never reaches the poll.
    w.pending = false
    if rt.now() - st.last_pass >= 50 then
      rt.sleep(1)
      st.last_pass = rt.now()
    end
  elseif not changed then
    -- a worker waits while other workers hold cards of the run: theirs may come back
    -- (a worker that dies leaves its cards to be taken over when their leases expire)
    if not others then return false end
    st.lease:idle(st.lease.poll_ms)
    st.last_pass = rt.now()
  end
  return true
end

local function close_execution(self, st)
  if st.share then st.share:leave(self.run_id) end
  if st.poll then st.poll:close() end
  if st.clock then st.clock:close() end
  self.waker = nil
end

--- run:execute() -> status ("done"|"failed"|"stalled"|"interrupted"), report {stuck=,
--- reason=, canceled=}. Must run in a task; the engine has made this run its current one
--- (Engine:execute). On a run that was killed it continues from the journal: rounds of
--- picks (pick_round), turns started (start_jobs), waits (wait_round), until nothing is
--- left or the run stops.
function Run:execute()
  local st = self:open_execution()
  while not self.stopping do
    -- a turn that saw a run budget run out ended itself (e.halted); the others stop here
    -- written only when it says something (a nil write goes through __newindex each round)
    if not self.halted then
      local spent = self:run_budget_spent()
      if spent then self.halted = spent end
    end
    if self.halted then
      self:stop()
      break
    end
    local jobs, changed, others, after = self:pick_round(st)
    if not jobs and self:journal_broken() then break end
    if not jobs then
      close_execution(self, st)
      error(changed, 0)
    end
    for i = 1, #after do after[i]() end
    self:start_jobs(st, jobs)
    if not self:wait_round(st, changed, others) then break end
  end
  -- the calls its own stop aborted after they were sent: billed, so charged (docs/cost.md)
  turn.record_aborted(self)
  -- a money budget's reason says what the run had spent when it ended, those calls counted
  if self.halted then self.halted = spend.halted_now(self) end
  close_execution(self, st)
  return self:conclude(st.target, st.view)
end

-- The stall report's pause (scheduler.stuck): a report of tens of thousands of cards holds
-- the thread for a second or more, so every 50 ms the loop gets a pass (as wait_round gives
-- it), where a signal stops the run and a server answers; true once a stop was asked.
function Run:report_pause()
  local last = rt.now()
  return function()
    if rt.now() - last >= 50 and task.current() then
      rt.sleep(1)
      last = rt.now()
    end
    return self.stopping and not self.halted
  end
end

-- "an import moved E-1, E-2 out of E during the run (now under F: 'orket run F' works them)":
-- the cards an import took out of the run's target while it went (view:left()), which the
-- run left alone from then on. nil when none did.
local function left_note(target, left)
  if #left == 0 then return nil end
  local ids, under, parents = {}, {}, {}
  for i, l in ipairs(left) do
    ids[i] = l.id
    local p = l.parent or "no parent"
    if not under[p] then under[p] = {}; parents[#parents + 1] = p end
    table.insert(under[p], l.id)
  end
  local where
  if #parents == 1 and left[1].parent then
    where = string.format("now under %s: 'orket run %s' works %s", left[1].parent, left[1].parent,
      #left == 1 and "it" or "them")
  elseif #parents == 1 then
    where = "now with no parent"
  else
    local parts = {}
    for i, p in ipairs(parents) do
      parts[i] = table.concat(under[p], ", ") .. (i == 1 and " now" or "")
        .. (p == "no parent" and " with no parent" or (" under " .. p))
    end
    where = table.concat(parts, ", ")
  end
  return string.format("an import moved %s out of %s during the run (%s)", table.concat(ids, ", "), target.id, where)
end

-- The cards the view carried (view:carry: a turn left half done on each when the run stopped,
-- an import having moved it out of target since) that are still out of it: finished, the ids
-- of those whose turn this run ended; open, {card=, turn=} of those whose turn is still open
-- (not given: skipped, or in a status no turn is given in)
local function carried_turns(run, view, target)
  local finished, open = {}, {}
  for _, id in ipairs(view:carried_cards()) do
    local c = run.board:get(id)
    if c and not scheduler.under(run.board, target.id, id) then
      local turns = recorded.turns(run.db, run.run_id, id)
      local last = turns[#turns]
      if last and last.open then open[#open + 1] = { card = c, turn = last } else finished[#finished + 1] = id end
    end
  end
  return finished, open
end

-- left (view:left()'s {id=, parent=}) but the cards of lines ({card=}...)
local function without(left, lines)
  local drop, out = {}, {}
  for _, l in ipairs(lines) do drop[l.card] = true end
  for _, l in ipairs(left) do
    if not drop[l.id] then out[#out + 1] = l end
  end
  return out
end

-- The stall report's lines of the carried cards whose turn is still open (carried_turns),
-- each saying so first: the run stays the one to finish that turn ('orket resume')
local function carried_stuck(run, target, open)
  local cards = {}
  for i, o in ipairs(open) do cards[i] = o.card end
  local out = scheduler.stuck(run.board, cards, { skipped = run.skipped, halted = run.halted, run = run.run_id }) or {}
  local turn_of = {}
  for _, o in ipairs(open) do turn_of[o.card.id] = o.turn end
  for _, s in ipairs(out) do
    local t, c = turn_of[s.card], run.board:get(s.card)
    s.reason = string.format("its %s turn %d, left half done when the run stopped, is not finished (an import moved "
      .. "it out of %s; it is under %s now): %s", tostring(t.phase), t.turn, target.id, tostring(c and c.parent),
      tostring(s.reason))
  end
  return out
end

-- "E-2 (canceled by developer: out of scope)": who canceled a card and why, from its last move.
local function canceled_note(run, c)
  local h = store_journal.last_cancel(run.db, c.id)
  if not h then return c.id end
  return string.format("%s (canceled by %s%s)", c.id, tostring(h.actor), h.note and (": " .. h.note) or "")
end

-- At most this many cards of the stall report are journaled with the run's end, each line
-- cut at STUCK_CUT bytes: a run of 50,000 stuck cards must not write megabytes into one event
local STUCK_SHOWN, STUCK_CUT = 20, 300

-- "2 cards did not finish:\nE-1 (blocked): REASON; next: COMMAND\n...": the stall report
-- (scheduler.stuck) as lines, bounded | nil when it is empty
local function stuck_note(stuck)
  if #stuck == 0 then return nil end
  local lines = { string.format("%d card%s did not finish:", #stuck, #stuck == 1 and "" or "s") }
  for i = 1, math.min(#stuck, STUCK_SHOWN) do
    local s = stuck[i]
    -- (one line each: a reason ends with the card's last comment, which may have many)
    local line = string.format("%s (%s): %s%s", s.card, s.status, tostring(s.reason),
      s.next and ("; next: " .. s.next) or ""):gsub("%s*\n%s*", " ")
    lines[#lines + 1] = inert.clip(line, STUCK_CUT)
  end
  if #stuck > STUCK_SHOWN then
    lines[#lines + 1] = string.format("and %d more ('orket board' shows them)", #stuck - STUCK_SHOWN)
  end
  return table.concat(lines, "\n")
end

function Run:conclude(target, view)
  local status, stuck, reason, cards = "done", {}, nil, nil
  -- the store lost while the run went: whatever it made raise (an internal error's report
  -- included) was the loss
  self:journal_broken()
  if self.journal_failed and self.lease then
    -- a worker leaves the run running for every worker, and says so: it is not failed
    status = "interrupted"
    reason = string.format("the store was lost (%s); the run is left running for the workers", self.journal_failed)
  elseif self.journal_failed then
    status = "failed"
    -- (a database server's remedy is not a file's)
    reason = string.format("the journal could not be written (%s); once the store can be written (%s), "
      .. "'orket resume %d' carries on", self.journal_failed, self.db.dialect.name == "pg"
      and "its database server reached again, a primary that takes writes"
      or "free space, raise a disk quota or a file-size limit, fix its permissions",
      self.run_id)
  elseif self.internal_failed then
    status = "failed"
    reason = string.format("an internal error ended the run (%s; its traceback is on stderr): please report it; "
      .. "'orket resume %d' carries on", self.internal_failed, self.run_id)
  elseif self.git_unready then
    status = "failed"
    reason = string.format("the repository could not be made ready for the run (%s); once that is fixed, "
      .. "'orket resume %d' carries on", self.git_failed, self.run_id)
  elseif self.git_moved_away then
    status = "failed"
    reason = string.format("%s; 'orket resume %d' in its new place carries on", self.git_failed, self.run_id)
  elseif self.git_failed_tool then
    status = "failed"
    -- the tool's own answer: the repository was never at fault, and a resume asks the tool again
    local t = self.git_failed_tool
    reason = string.format("tool %s reported %s (%s), which stops the run as %s does; %s, 'orket resume %d' runs "
      .. "that call again (and stops again if the tool reports it again)", t.name, tostring(t.code), self.git_failed,
      t.host and "a fault of the host's" or "a full disk", t.host and "once that is fixed" or "once there is room",
      self.run_id)
  elseif self.git_failed then
    status = "failed"
    -- a file a tool wrote into a card's directory (the workspace layer's error) or git's
    -- (a model call that could not open a socket stops the run as a host fault: orket.engine.turn)
    local what = self.git_failed:find("^workspace: ") and "the workspace could not be written"
      or self.git_failed:find("^provider ") and "the model could not be asked"
      or "the repository could not be written"
    -- a host fault's message names its own remedy (gitwork.host_fault), a full disk's does not
    local host = gitwork.host_fault(self, "", "EGIT", self.git_failed)
    reason = string.format("%s (%s); %s, 'orket resume %d' carries on", what, self.git_failed,
      host and "once that is fixed" or "once there is room on its disk", self.run_id)
  elseif self.stopping and not self.halted then
    status = "interrupted"
  else
    cards = scheduler.scope(self.board, target)
    stuck = scheduler.stuck(self.board, cards, { skipped = self.skipped, halted = self.halted, run = self.run_id,
      pause = self:report_pause() })
  end
  local carried_done, carried_left
  if not stuck then
    -- a stop asked while the report was made ends the run as one asked before it
    status, stuck = "interrupted", {}
  elseif cards then
    if view then
      local open
      carried_done, open = carried_turns(self, view, target)
      if open[1] then
        local more = carried_stuck(self, target, open)
        table.move(more, 1, #more, #stuck + 1, stuck)
        if more[1] then carried_left = more end
      end
    end
    if #stuck > 0 then
      status = "stalled"
      for _, s in ipairs(stuck) do
        -- a budget or an error failed the run; an agent's block for a resource it waits for did not
        if s.status == "blocked" and (s.wait_reason == "system" or (s.wait_reason == "resource"
            and scheduler.blocked_for_budget(self.board, s.card))) then
          status = "failed"
        end
      end
      if self.halted then
        reason = self.halted .. "; raise it in orket.lua, then 'orket resume' carries on"
      end
      -- every card left is under an epic or rock a person ended: said once for the run
      local ended = scheduler.ended_target(self.board, target, cards)
      if ended then reason = reason and (reason .. "; " .. ended) or ended end
    end
    -- cards an import moved away: said, so a run that ends with less done than its epic
    -- had, or with nothing, is not a mystery
    -- (a carried card whose turn is still open is no new parent's yet: carried_left says it)
    local moved = view and left_note(target, carried_left and without(view:left(), carried_left) or view:left())
    if moved and #cards == 0 then moved = string.format("%s has no issues left: %s", target.id, moved) end
    if moved then reason = reason and (reason .. "; " .. moved) or moved end
    -- the turns such cards had half done, finished here from the journal before they were left
    if carried_done and carried_done[1] then
      local done_note = string.format("the half-done turn%s of %s %s finished first", #carried_done == 1 and "" or "s",
        table.concat(carried_done, ", "), #carried_done == 1 and "was" or "were")
      reason = reason and (reason .. "; " .. done_note) or done_note
    end
    -- a carried turn still open (its card skipped, or moved by a person to a status no turn
    -- is given in): the run stays unfinished, as a run done or stalled no longer keeps a new
    -- run of the card's new parent from redoing that turn (recorded.unfinished_overlap)
    if carried_left then
      status = "interrupted"
      local ids = {}
      for i, c in ipairs(carried_left) do ids[i] = c.card end
      local one = #ids == 1
      local note = string.format("the run is left interrupted: the half-done turn%s of %s, which an import moved out "
        .. "of %s, could not be finished here (%s below says why); 'orket resume %d' finishes %s once that is put "
        .. "right, and until then a run that holds %s is refused, as it would redo %s", one and "" or "s",
        table.concat(ids, ", "), target.id, one and "its line" or "their lines", self.run_id, one and "it" or "them",
        table.concat(ids, " or "), one and "that turn" or "those turns")
      reason = reason and (reason .. "; " .. note) or note
    end
    if status == "done" and not reason then reason = still_finished(self.began_finished, cards) end
    -- (a run whose lease went to another process writes nothing more of it: below; a fence
    -- that could not be asked leaves that to the end's own transaction)
    local fence = self.engine.run_fence
    if not fence or select(2, pcall(fence)) ~= false then self:settle(target) end
  end
  -- canceled cards are a person's decision, not work done: the run says which
  local canceled = {}
  if status == "done" then
    for _, c in ipairs(scheduler.scope(self.board, target)) do
      if c.status == "canceled" then canceled[#canceled + 1] = canceled_note(self, c) end
    end
  end
  -- a worker that stops leaves the run to the others (and to itself when it comes back);
  -- so does one that lost the store (a failover): the others may still write, and it
  -- carries on itself once the store answers again (orket worker)
  -- Each worker of a run concludes it: only the one that moves it from running journals its
  -- run_end (and sets its status and ended_at); the others find it ended and say so
  -- without writing it again (ended_by_other: the status it ended with).
  -- A run whose process holds its lease in the store (a server's, `orket run`'s) ends it only
  -- while the lease is still its own, asked in the end's own transaction: a process paused
  -- past its lease, the run resumed elsewhere meanwhile, wrote interrupted over the live run
  -- (and its run_end), and the holder then took the run for stopped by another.
  local fok, ferr, ended_by_other, elsewhere = true, nil, nil, false
  -- the stall report is this process's event only: its cards are journaled with the end too,
  -- so a run a server or a worker executed says why it stopped (orket log, its stream)
  local note = stuck_note(stuck)
  local journaled = note and (reason and (reason .. "\n" .. note) or note) or reason
  -- (a worker's run left interrupted for a carried turn is ended so: left running, the
  -- workers would take it up again and again; orket resume hands it back to them)
  if not (self.lease and ((status == "interrupted" and not carried_left) or self.journal_failed)) then
    local fence = self.engine.run_fence
    fok, ferr = self.db:tx(function()
      if fence and not fence() then
        elsewhere = true
        return true
      end
      return self.db:finish_run(self.run_id, status, { running = self.lease and true or nil, reason = journaled })
    end)
    if fok == false then fok, ended_by_other, ferr = true, ferr, nil end
  end
  if elsewhere then
    status = "interrupted"
    reason = string.format("run %d goes on in another process, which resumed it and holds its lease now (this "
      .. "process or its store was away longer than the lease); nothing more of it is written here", self.run_id)
  end
  if not fok then
    -- the run's row stays "running" (it shows as killed): said, not raised
    if not self.journal_failed then error(ferr, 0) end
  end
  -- the checks of the sandboxes this run deployed: waited for, their skipped ones said; with
  -- the store gone they cannot be read, and the run's end must still be said
  local tokens
  if self.journal_failed then
    pcall(gitwork.deploys_end, self)
    local tok, n = pcall(recorded.tokens, self.db, self.run_id)
    tokens = tok and n or (self.tokens_used and self.tokens_used.n)
  else
    gitwork.deploys_end(self)
    tokens = recorded.tokens(self.db, self.run_id)
  end
  if #stuck > 0 then self:emit { type = "stall", cards = stuck, reason = reason } end
  -- the cards that wait for a person's answer or approval: a stalled run may be only that
  local waiting = {}
  for _, s in ipairs(stuck) do
    if s.waits_for == "input" or s.waits_for == "approval" or s.waits_for == "budget" then waiting[#waiting + 1] = s.card end
  end
  self:emit { type = "run_end", status = status, reason = reason, tokens = tokens,
    canceled = #canceled > 0 and canceled or nil, waiting = #waiting > 0 and waiting or nil,
    ended_by_other = ended_by_other, stuck_note = note }
  -- store_lost: why the store failed under the run (a server waits for it and carries on)
  return status, { stuck = stuck, reason = reason, canceled = canceled, waiting = waiting,
    store_lost = self.journal_failed, elsewhere = elsewhere or nil }
end

--- settle(target): brings an epic or rock target and its epics in line with their issues
--- (board:follow), for boards from before parents followed their children.
function Run:settle(target)
  if target.type == "issue" then return end
  assert(self.db:tx(function()
    if target.type == "rock" then
      for _, e in ipairs(self.board:children(target.id)) do
        if e.type == "epic" then self.board:follow(e.id) end
      end
    end
    self.board:follow(target.id)
    return true
  end))
end

return M
