-- orket.engine.turn: one seat working one card. Compose messages (role script) -> call the
-- model (or read the recorded response back on resume) -> parse tool calls -> gate each ->
-- execute -> return results to the model -> repeat, until the model stops, the card's
-- status changes, or a budget ends the turn. A step's records (response, each call's gate
-- decision, effect and result, the turn's end) are one transaction, committed before the
-- next model call; a call with effects on files, or that runs a program, commits its
-- intent first (commit_step).
local cjson = require "cjson.safe"
local rt = require "orket.c.runtime"
local roles = require "orket.engine.roles"
local context = require "orket.engine.context"
local recorded = require "orket.engine.recorded"
local fault = require "orket.engine.fault"
local approvals = require "orket.actions.approvals"
local common = require "orket.llm.common"
local jsonout = require "orket.jsonout"
local settings_mod = require "orket.settings"
local errors = require "orket.errors"
local gate_mod = require "orket.gate"
local gitwork = require "orket.engine.gitwork"
local verify = require "orket.engine.verify"
local sandboxtool = require "orket.engine.sandboxtool"
local proctool = require "orket.engine.proctool"
local progwrites = require "orket.engine.progwrites"
local tools_mod = require "orket.tools"
local lease = require "orket.engine.lease"
local spend = require "orket.engine.spend"
local inert = require "orket.inert"

local M = {}

M.RETRYABLE = { transient = true, rate_limited = true, timeout = true }

-- lua-cjson writes "/" as "\/": valid JSON, but paths read worse and cost the model tokens
local function encode(v)
  return jsonout.plain(cjson.encode(v) or "null")
end

-- A tool's result as the model reads it, through orket.jsonout: keys sorted, so the same
-- result reads the same in every process (a result read back from the journal on resume
-- is written exactly as it was the first time; lua-cjson's order follows each table's
-- hash layout), and "/" plain. Lua has one empty table for an empty list and an empty
-- object, which lua-cjson writes as {}; the tools' results use it for empty lists (no
-- match, an empty folder, no dependencies), so here it is written []. A result jsonout
-- does not take (an object with keys that are not strings, a sparse list) is written as
-- lua-cjson writes it.

-- One walk of a result: whether it holds an empty table (written as a list), and whether a
-- whole number from 2^53 on (orket.jsonout writes every digit of one; read back from the
-- journal it is a double, which jsonout writes in 14 digits: on resume it would read
-- otherwise than the first time). Stops once it knows both.
local function shape(t, empty, long)
  if next(t) == nil then empty = true end
  for _, v in pairs(t) do
    if empty and long then break end
    if type(v) == "table" then
      empty, long = shape(v, empty, long)
    elseif not long and (math.type(v) == "integer" or (math.type(v) == "float" and v == math.floor(v)))
      and (v >= 2 ^ 53 or v <= -2 ^ 53) then
      long = true
    end
  end
  return empty, long
end

-- a copy of t with each whole number from 2^53 on as the journal's reader gives it back (a
-- double, which orket.jsonout writes in lua-cjson's 14 digits), the rest as it is: only
-- such numbers change, not every number of the result
local BIG = 2 ^ 53
local function rounded(t)
  local out = {}
  for k, x in pairs(t) do
    if type(x) == "table" then
      x = rounded(x)
    elseif math.type(x) and (x >= BIG or x <= -BIG) and x == math.floor(x) then
      x = tonumber(string.format("%.14g", x))
    end
    out[k] = x
  end
  return setmetatable(out, getmetatable(t))
end

-- a copy with every empty table marked as a list
local function lists_marked(t)
  if next(t) == nil then return jsonout.array {} end
  local out = {}
  for k, v in pairs(t) do out[k] = type(v) == "table" and lists_marked(v) or v end
  return out
end

local function encode_result(v)
  if type(v) ~= "table" then return encode(v) end
  local empty, long = shape(v, false, false)
  -- such numbers are written as the journal will give them back: the same bytes on resume.
  -- The journal keeps every digit (orket.store.records' encode_exact), and a whole number up
  -- below 2^53 reads back as the same double, which jsonout writes with every digit again;
  -- from 2^53 on (2^53 + 1 reads back as 2^53) as a double jsonout writes in 14 digits, so
  -- it is sent so.
  if long then v = rounded(v) end
  local ok, text = pcall(jsonout.encode, empty and lists_marked(v) or v)
  if ok then return text end
  return encode(v)
end
M.encode_result = encode_result

-- The share of context.max_chars the brief's comments may take, in percent (beside the
-- recalled memory's, context.MEMORY_PERCENT): the brief is outside the window max_chars
-- bounds and is sent at every step, and 30 comments of 60 KB made each call 1.8 MB.
M.COMMENTS_PERCENT = 25

-- What one comment weighs in the brief: its text as prompt.comments writes it ("- a: b\n")
local function comment_chars(c)
  return #tostring(c.author or "?") + #tostring(c.body or "") + 4
end

--- fold_comments(list, max_chars, card_id) -> list (itself when it fits) | a list within
--- COMMENTS_PERCENT of max_chars: the newest comments whole, the older ones left out behind
--- one first entry of orket's saying how many, their bytes and where to read them (its
--- `omitted` = {comments=, bytes=}); a newest comment past the share alone is clipped
--- (inert.clip's mark). The cut is at a stable place: the comments are taken from the oldest
--- in groups of at least half the share, and the kept part starts at the first group's start
--- after which the rest fits, so new comments leave it where it was (the brief then only
--- grows at its end, as without a fold) until they pass the share and it moves a group on
--- (a prompt cache's prefix: docs/cost.md).
local function fold_comments(list, max_chars, card_id)
  if not max_chars or max_chars < 1 or #list == 0 then return list end
  local share = math.max(1, max_chars * M.COMMENTS_PERCENT // 100)
  local sizes, total = {}, 0
  for i, c in ipairs(list) do
    sizes[i] = comment_chars(c)
    total = total + sizes[i]
  end
  if total <= share then return list end
  -- the groups' starts, from the oldest (before: the bytes of the comments before i)
  local from, before, group = nil, 0, share
  for i = 1, #list do
    if group >= share // 2 then
      if total - before <= share then
        from = i
        break
      end
      group = 0
    end
    group = group + sizes[i]
    before = before + sizes[i]
  end
  local kept = {}
  if not from then
    -- the last group alone passes the share: the newest comments whole while they fit
    local rest = 0
    from = #list + 1
    while from > 1 and rest + sizes[from - 1] <= share do
      from = from - 1
      rest = rest + sizes[from]
    end
    if from > #list then
      -- the newest alone passes it: clipped, its whole length said
      local c = list[#list]
      from = #list
      kept[1] = { author = c.author, body = inert.clip(tostring(c.body or ""), math.max(1, share - comment_chars {
        author = c.author, body = "" })) }
    end
  end
  if #kept == 0 then table.move(list, from, #list, 1, kept) end
  if from == 1 then return kept end
  local left = 0
  for i = 1, from - 1 do left = left + #tostring(list[i].body or "") end
  table.insert(kept, 1, { author = "orket", omitted = { comments = from - 1, bytes = left },
    body = string.format("(%d earlier comment%s, %d bytes, left out of this brief to keep it within %d%% of "
      .. "context.max_chars; 'orket card %s' shows every comment)", from - 1, from == 2 and "" or "s", left,
      M.COMMENTS_PERCENT, tostring(card_id)) })
  return kept
end
M.fold_comments = fold_comments

--- context(run, job, card, history) -> the plain context object a role builds its messages from
--- The dependencies' part is read once per turn (job.deps_ctx): they are finished work, and
--- a turn of several steps asked the store for each one's comments at every step. The role
--- gets a copy, so the cached table cannot be changed through it.
local function make_context(run, job, card, history)
  local ids = table.concat(card.depends_on or {}, "\0")
  local deps = job.deps_ctx
  if not deps or job.deps_ids ~= ids then
    deps = {}
    for _, id in ipairs(card.depends_on or {}) do
      local d = run.board:get(id)
      if d then
        local cs = run.board:comments(id)
        local last = cs[#cs]
        deps[#deps + 1] = { id = d.id, summary = d.summary, status = d.status, outcome = last and last.body or nil }
      end
    end
    job.deps_ctx, job.deps_ids = deps, ids
  end
  -- The brief holds the comments and the memory as the turn's first step saw them: a
  -- comment made during the turn joins the history as a message at its end, instead of
  -- rewriting the brief and with it every later token a prompt cache kept (docs/cost.md).
  local comments = job.comments_ctx
  if not comments then
    comments = {}
    for _, c in ipairs(run.board:comments(card.id)) do
      comments[#comments + 1] = { author = c.author, body = c.body }
      job.comments_seen = math.max(job.comments_seen or 0, c.id or 0)
    end
    -- bounded once, at the turn's first step: the brief stays the same bytes at every step
    comments = fold_comments(comments, run.settings.context and run.settings.context.max_chars, card.id)
    job.comments_ctx = comments
    job.recall_ctx = context.recall(run.memory, card, run.settings.context)
  else
    for _, c in ipairs(run.board:comments(card.id)) do
      if (c.id or 0) > (job.comments_seen or 0) then
        -- the seat's own comments are in the history already, as its tool calls; a quiet
        -- one (an approval's use, noted for later turns) is the turn's own doing too
        if c.author ~= job.seat and not (job.quiet_comments and job.quiet_comments[c.id]) then
          history[#history + 1] = { role = "user", content = string.format("A new comment on %s from %s:\n%s",
            card.id, tostring(c.author), tostring(c.body)) }
        end
        job.comments_seen = c.id
      end
    end
  end
  local window
  -- the steps folded into the summary: recorded with the call (docs/cost.md, orket log --cache)
  window, job.summarized = context.window(history, run.settings.context)
  return {
    card = card, deps = deps, comments = comments, seat = job.seat, role = job.role.name,
    phase = job.phase, turn = job.turn, tools = job.tool_specs,
    memory = job.recall_ctx,
    history = window,
    project = { name = run.settings.name, vision = run.settings.vision },
    -- the reviewer sees the engine's last check of the work it judges (engine/verify.lua)
    verification = job.phase == "review" and verify.last(run.db, card.id) or nil,
  }
end

M.context = make_context

-- A failed model call is part of the run's story, as a response is: a resumed run hands
-- both to the model client in order (Engine:observe_journal), so a provider that counts its
-- answers (scripted sequences) counts this one too. A canceled call is not: the run was
-- stopped, and the resumed run asks again, as an uninterrupted one asked once. -> true
-- when it was journaled
-- The journal's model_failure event of a call; charged: what a billed call is charged
-- ({model=, provider=, prompt_tokens=, completion_tokens=, cached_tokens=, cost=,
-- currency=, refused_usage=, cut=, aborted=}), what the sums count; nil when not charged.
local function failure_event(run, job, req, class, msg, charged)
  local c = charged or {}
  run.db:event { kind = "model_failure", card = job.card_id, run = job.run, actor = job.seat,
    data = { turn = job.turn, step = req.meta.step, role = job.role.name, phase = job.phase, class = class,
      error = msg, request = { model = req.model, messages = req.messages },
      model = c.model, provider = c.provider, prompt_tokens = c.prompt_tokens, completion_tokens = c.completion_tokens,
      cached_tokens = c.cached_tokens, cost = c.cost, currency = c.currency, refused_usage = c.refused_usage,
      cut = c.cut, aborted = c.aborted } }
end

-- The model_failure a charged call says on the run's output, once journaled
local function emit_charged(run, job, req, class, charged, response_model)
  run:emit { type = "model_failure", card = job.card_id, seat = job.seat, turn = job.turn, step = req.meta.step,
    class = class, prompt_tokens = charged.prompt_tokens, completion_tokens = charged.completion_tokens,
    cost = charged.cost, currency = charged.currency, response_model = response_model }
end

local function record_failure(run, job, req, class, msg, charged)
  -- a charged call (its answer's usage refused, cut after it began, or sent whole before
  -- the run's own stop aborted it) was billed, stopping or not
  if not charged and (class == "canceled" or run.stopping) then return end
  local begun = job.begun
  local ok, err = run.db:tx(function()
    run:check_lease(job)
    -- a fresh turn's begin (the claim, turn_begin) goes first, as with a response: the
    -- journal then tells the turn's story in order. A card that cannot move is left to
    -- end_turn_records, as after a response.
    run:begin_records(job)
    failure_event(run, job, req, class, msg, charged)
    return true
  end)
  if not ok and job.lease_lost then error(err, 0) end
  if not ok then
    job.begun = begun -- rolled back with the rest
    -- the store's file failed: that ends the run (Engine:journal_broken); else only said
    if not (run.journal_broken and run:journal_broken(job.card_id)) then
      run:emit { type = "journal_error", card = job.card_id, error = err }
    end
  end
  return ok
end

--- record_aborted(run): charges and journals the calls the run's stop aborted after
--- they were sent (spend.aborted), each as a charged model_failure of class canceled, at its
--- estimate: the provider billed them. Run once the run's turns are stopped.
function M.record_aborted(run)
  for _, a in ipairs(spend.taken_aborted(run)) do
    local job, req = a.job, a.req
    local charged = spend.abort_charge(run, job, req)
    local msg = (run.halted and "the run stopped (" .. tostring(run.halted) .. ")" or "the run was stopped")
      .. " after the request was sent: charged at its estimate"
    -- (a lost lease raises: nothing more to write); said only once journaled, as charged
    local pok, written = pcall(record_failure, run, job, req, "canceled", msg, charged)
    if pok and written then emit_charged(run, job, req, "canceled", charged, charged.model) end
  end
end

-- A call answered after the worker lost the card's lease (a stall past it: the step's
-- transaction found the lease another's) was billed, and its answer is dropped: the
-- worker that took the card over asks again. It is journaled as a charged model_failure
-- of class lease_lost, outside the card's story (no lease check, no turn begun: the card
-- is another worker's now), so every budget and `usage` count it. Before, it was left out.
local function record_lost_call(run, job, model)
  local res, req = model.res, model.req
  local usage = res.usage or {}
  local money = spend.record(run, job, usage, req)
  -- (named as the turns row of an answer recorded names it: the sums by model count both alike)
  local charged = { model = res.model or job.model, provider = res.provider,
    prompt_tokens = math.tointeger(usage.prompt_tokens) or 0, completion_tokens = math.tointeger(usage.completion_tokens) or 0,
    cached_tokens = money.cached_tokens, cost = money.cost, currency = money.currency }
  local ok, err = run.db:tx(function()
    failure_event(run, job, req, "lease_lost", "the worker lost the card's lease before it recorded the answer: "
      .. "charged, the answer dropped (the worker that took the card over asks again)", charged)
    return true
  end)
  if ok then
    spend.committed(run, job)
    run:add_tokens(charged.prompt_tokens + charged.completion_tokens, job.card_id)
    emit_charged(run, job, req, "lease_lost", charged, res.model)
  elseif not (run.journal_broken and run:journal_broken(job.card_id)) then
    run:emit { type = "journal_error", card = job.card_id, error = err }
  end
end

-- The wall-clock budgets a turn runs under: what ends it, or nil plus the ms left of the
-- card's and the run's (nil: no limit). The run's ends the run, as a stop does (the turn is
-- cancelled, its card keeps its status: run.halted says why); the card's blocks the card.
-- The card's clock starts at its first model call of this process (like the run's, it
-- restarts when a killed run is resumed). A timer may fire up to a millisecond before the
-- monotonic clock says its time is up, so the last millisecond counts as spent.
-- The third value names the budget that leaves the least (as a model call's timeout_source).
local function wall_left(run, job)
  local b, now = run.settings.budgets, rt.now()
  local left, source
  if run.run_deadline then
    left = run.run_deadline - now
    if left <= 1 then
      run.halted = run.halted or run:run_budget_spent("wall")
      return { ended = "canceled", detail = run.halted }
    end
    source = "budgets.wall_ms_per_run = " .. b.wall_ms_per_run
  end
  if b.wall_ms_per_card > 0 then
    run.card_clock = run.card_clock or {}
    local t0 = run.card_clock[job.card_id]
    if not t0 then
      t0 = now
      run.card_clock[job.card_id] = t0
    end
    local card_left = t0 + b.wall_ms_per_card - now
    if card_left <= 1 then
      return { ended = "budget", detail = string.format("the card used its %d ms (budgets.wall_ms_per_card)", b.wall_ms_per_card) }
    end
    if not left or card_left < left then left, source = card_left, "budgets.wall_ms_per_card = " .. b.wall_ms_per_card end
  end
  return nil, left, source
end

-- The engine's later rounds ("Model failures" in docs/engine.md): a call that failed for a
-- reason that passes (RETRYABLE), once the client's retries and the engine's own
-- (model_retries) are spent, is asked again after a longer wait, up to LATER_ROUNDS times:
-- LATER_FACTOR * backoff_ms, doubling each round (5, 10, 20 and 40 s with the default
-- 200 ms: long enough for a model server's restart, a gateway's rollout), at least what the
-- server asked for (Retry-After), at most LATER_MAX_MS. The card keeps its turn while it
-- waits; the run's other cards go on.
M.LATER_ROUNDS = 4
M.LATER_FACTOR = 25
M.LATER_MAX_MS = 120000

-- The wait before later round n (1-based) after failure -> ms | nil, why there is none
-- (the server asked for longer than the engine waits; what is left of a wall budget is
-- shorter: said unless the client said so already, out_of_time)
local function later_wait(b, n, failure, left, source)
  local wait = math.min(b.backoff_ms * M.LATER_FACTOR * (1 << (n - 1)), M.LATER_MAX_MS)
  local asked = math.tointeger(failure.retry_after_ms) or tonumber(failure.retry_after_ms)
  if asked and asked > M.LATER_MAX_MS then
    return nil, string.format("not asked again later: the server's wait is longer than the %s the engine waits at most",
      common.duration(M.LATER_MAX_MS))
  end
  if asked and asked > wait then wait = math.ceil(asked) end
  if left and wait >= left then
    if failure.out_of_time then return nil, nil end
    return nil, string.format("not asked again later: %s leaves %s, less than the next round's wait (%s)",
      tostring(source), common.duration(left), common.duration(wait))
  end
  return wait
end

-- Calls the model. A failure the client left to its caller (a stream cut after tokens
-- arrived, a first-byte or idle timeout, any failure of a provider without retries of its
-- own) is asked again at once after backoff_ms * 2^n, while the attempts so far, the
-- client's included, are at most budgets.model_retries; an HTTP provider's client retries
-- transient failures itself (its `retry` setting) and says so (failure.final), so those are
-- not asked again at once (that would multiply its attempts and its waits). After either,
-- a failure that passes gets the later rounds above before it blocks the card. The
-- client's own waits are said as they begin (model_retry, by = "client"), so a 429's
-- Retry-After does not look like a silent model. The call's timeout_ms is what is left of
-- the wall budgets, so a call cannot outlast them: when one runs out mid-call (or
-- mid-backoff), the fourth result is the outcome that ends the turn.
local function call_model(run, job, req)
  local b = run.settings.budgets
  local attempts, retries, rounds, t0 = 0, 0, 0, rt.now()
  req.on_retry = function(r)
    run:emit { type = "model_retry", card = job.card_id, seat = job.seat, class = r.class, error = r.message,
      attempts = attempts + r.attempt, elapsed_ms = math.floor(rt.now() - t0), by = "client",
      attempt = r.attempt, max_attempts = r.max_attempts, delay_ms = math.floor(r.delay_ms), why = r.why,
      retry_after_ms = r.retry_after_ms and math.floor(r.retry_after_ms) }
  end
  while true do
    local over, left, source = wall_left(run, job)
    if over then return nil, over.detail, "budget", over end
    req.timeout_ms = left and math.max(1, math.ceil(left)) or nil
    req.timeout_source = source
    -- a call that could pass a money budget is not sent (docs/cost.md); one that fits
    -- only once the calls in flight end waits for them
    over = spend.check(run, job, req)
    while over and over.room do
      spend.wait_room(run)
      over = spend.check(run, job, req)
    end
    if over then return nil, over.detail, "budget", over end
    local sent = rt.now()
    job.called = true -- (a money budget that stops a turn before any call leaves it uncounted)
    job.calling = req -- (the run's stop may close the turn mid-call: spend.aborted)
    -- the call's chat span as its trace context (orket.otel), each attempt its own
    local tracer = run.engine.tracer
    req.traceparent = tracer and tracer:traceparent(job.card_id, job.turn) or nil
    local res, msg, class, failure = run.llm:chat(req)
    job.calling = nil
    if res then return res end
    -- a refused usage's call was billed, and so was an answer cut after it began: charged,
    -- not only released
    local f = type(failure) == "table" and failure or nil
    local charged = spend.refused(run, job, req, f and f.refused_usage) or (f and f.delivered and spend.cut(run, job, req))
    class = class or "transient"
    record_failure(run, job, req, class, msg, charged)
    -- the failed call said as a call (its tracer's ERROR chat span, orket.otel), with what
    -- it was charged when it was; a canceled one (the run stopping) is no call's failure
    if class ~= "canceled" then
      run:emit { type = "model_failure", card = job.card_id, seat = job.seat, turn = job.turn, step = req.meta.step,
        class = class, latency_ms = math.floor(rt.now() - sent), prompt_tokens = charged and charged.prompt_tokens,
        completion_tokens = charged and charged.completion_tokens, cost = charged and charged.cost,
        currency = charged and charged.currency, response_model = charged and charged.model }
    end
    -- the charge is in the store now (the next check reads it): the hold goes
    spend.committed(run, job)
    -- no socket to ask it with (out of descriptors: the transport's host_fault) is the
    -- machine's, as a full disk is: the run stops, the turn left open for `orket resume`,
    -- never the card blocked as if its model had failed (Run:git_broken)
    if type(failure) == "table" and failure.host_fault and not run.stopping then
      run:git_broken(job.card_id, msg, "ENOSPC")
      return nil, msg, "canceled"
    end
    if left then
      over = wall_left(run, job)
      if over then return nil, over.detail, "budget", over end
    end
    failure = type(failure) == "table" and failure or {} -- providers without retries say nothing
    attempts = attempts + (math.tointeger(failure.attempts) or 1)
    local last = failure.error or msg
    local passes = M.RETRYABLE[class] and not run.stopping
    local delay, round, why
    if passes and not failure.final and attempts <= b.model_retries then
      delay = b.backoff_ms * (1 << retries)
    elseif passes and rounds < M.LATER_ROUNDS then
      local _, now_left, now_source = wall_left(run, job)
      delay, why = later_wait(b, rounds + 1, failure, now_left, now_source)
      if delay then round = rounds + 1 end
    end
    if not delay then
      -- after asking again, the message counts every attempt (and round), not only the last call's
      if retries > 0 then
        msg = string.format("%s (gave up after %s%s)", last, common.attempts_text(attempts, rt.now() - t0),
          rounds > 0 and string.format(", in %d rounds", rounds + 1) or "")
      end
      if why then msg = msg .. "; " .. why end
      return nil, msg, class
    end
    retries = retries + 1
    rounds = round or rounds
    run:emit { type = "model_retry", card = job.card_id, seat = job.seat, class = class, error = last,
      attempts = attempts, elapsed_ms = math.floor(rt.now() - t0), retry = retries, delay_ms = delay,
      round = round, rounds = round and M.LATER_ROUNDS or nil }
    local _, now_left = wall_left(run, job)
    rt.sleep(now_left and math.min(delay, math.max(1, math.ceil(now_left))) or delay)
  end
end

-- The ctx a tool handler (or recover) gets. own: the handler may have card itself (its
-- only use is this handler's call), else it gets a copy.
local function tool_ctx(run, job, card, own)
  -- what a tool reads on its own (search_files) obeys the policies read_file obeys, on the
  -- card of the call in hand as the call began (the handler may change its own card): one
  -- function per turn, not a closure per call
  local facts = job.call_card
  if not facts then
    facts = {}
    job.call_card = facts
  end
  facts.id, facts.status, facts.type, facts.worked_by = card.id, card.status, card.type, card.worked_by
  if not job.may_read then
    -- -> whether the read is allowed, and the gate's reason and code when not (a path outside
    -- the workspace is confinement, not a policy: the handler is told which)
    job.may_read = function(path)
      -- (the newest policy set, as for the turn's calls: execute_tx)
      local d = run.gate { actor = job.actor, tool = "read_file", args = { path = path }, card = job.call_card,
        tools = tools_mod.READ_TOOLS }
      return d.verdict == "allow", d.reason, d.code
    end
  end
  if not job.may_change then
    -- a writing handler's change of the workspace (ctx.fs write, append, mkdir, delete,
    -- move), judged as the file tool that makes it (as: the registry of those, the tools
    -- module's) by the same gate and newest policies; recorded as a refused read is (not:
    -- the handler and the model read why)
    job.may_change = function(tool, args, as)
      local d = run.gate { actor = job.actor, tool = tool, args = args, card = job.call_card, tools = as }
      return d.verdict == "allow", d.reason, d.code, d.verdict
    end
  end
  if job.move == nil then job.move = gitwork.mover(run, job) or false end
  -- the team's seats, listed once per settings (a reload brings new settings); the
  -- registry hands the handler its own copy
  if job.seats_of ~= run.settings then job.seats, job.seats_of = settings_mod.seats(run.settings), run.settings end
  -- the host's side of the ctx, read by the registry as the call begins (it builds the
  -- handler's own): one table for the turn, written again for each call
  local ctx = job.tool_ctx
  if not ctx then
    ctx = {}
    job.tool_ctx = ctx
  end
  ctx.fs, ctx.board, ctx.move, ctx.memory, ctx.card = job.fs or run.workspace, run.board, job.move or nil, run.memory, card
  ctx.actor, ctx.may_read, ctx.seats, ctx.own_card, ctx.tests = job.actor, job.may_read, job.seats, own, nil
  ctx.may_change = job.may_change
  return ctx
end

-- The gate's recorder for the turn's calls (one per turn): an allowed call's decision is
-- recorded in its tool_calls row (gate_code), a refusal in rows of its own. x: the call in
-- hand's state (execute's).
local function gate_recorder(run, job)
  local function record(kind, d)
    local x = job.exec
    if kind == "gate_decision" and d.verdict == "allow" then
      x.allowed_by = d.code or "ALLOWED"
    elseif kind == "gate_decision" then
      assert(run.db:record_gate_decision { turn = x.turn_id, tool = d.tool, verdict = d.verdict, code = d.code,
        reason = d.reason, remedy = d.remedy, run = job.run, card = job.card_id, seat = job.seat })
    elseif kind == "policy_violation" then
      assert(run.db:record_violation { turn = x.turn_id, card = job.card_id, seat = job.seat,
        rule = d.code or "denied", attempt = d.what, detail = d.why, remedy = d.how_to_fix, run = job.run })
    end
  end
  return record
end

-- The codes of a call's failure that say its disk is full (a file written into the card's
-- directory, a commit a tool makes: the workspace's and the git layer's ENOSPC, EDQUOT
-- from a project tool's script). The host's other faults (too many open files, a read-only
-- or failing disk, Orket's own places made unwritable) are gitwork.host_fault's.
local DISK_FULL = { ENOSPC = true, EDQUOT = true }

-- The store's failure noted so far (db:journal_error) | nil. A busy store (SQLite's
-- EBUSY, another connection holding the lock past the busy timeout) is not its failure
-- here: the write waited, nothing of the file was lost.
local function store_failed(run)
  local jerr, jcode = run.db:journal_error(run.journal_base)
  if jerr and jcode ~= "EBUSY" then return jerr end
  return nil
end

-- What of a call stops the run -> its error and "disk", "tool" or "journal" | nil. A full disk or
-- another fault of the host's: its failure's code says so (DISK_FULL), or its message
-- (gitwork.host_fault, which adds the remedy), or the mover's commit or merge met one whatever
-- the tool then answered (job.call_stop: a project tool may pass the move's failure on with
-- a code of its own, none, or as a success). The store: the call failed and the store's
-- file (or server) failed while it ran (journaled: was_broken, store_failed before the
-- call), whatever code the tool gave the failure it met. Such a call is left open for
-- resume (step_open); only a failure that does not stop the run is the tool's answer.
-- A stop the tool's own result gave (its code or its message: a project tool's, or what
-- ctx.fs met passed on) is "tool", so that the stop names the tool (step_open,
-- Run:git_broken) rather than the repository; the mover's (job.call_stop) is "disk".
-- The store's rule is for an in-store call only (was_broken nil on the effect path): its
-- handler runs inside the step's transaction, nothing else runs meanwhile, so a failure
-- then is its own. An effect runs between transactions, while other runs of the process
-- use the store (SQLite's failure is noted per process): its result is recorded, and left
-- open only when that record itself cannot be written (the step's transaction fails).
local function call_stop(run, job, res, was_broken)
  local stop = job.call_stop
  job.call_stop = nil
  if stop then return stop, "disk" end
  if res.ok then return nil end
  if DISK_FULL[res.code] then return tostring(res.error), "tool" end
  local host = gitwork.host_fault(run, job.card_id, res.code, res.error)
  if host then return host, "tool" end
  if was_broken == false then
    local jerr = store_failed(run)
    if jerr then return tostring(jerr), "journal" end
  end
  return nil
end

-- A "process" tool's request, its handler's answer with the issue's checks (ctx.tests) and
-- their timeout when the call gives none -> {ok=true, result=request} | a failure
local function program_request(run, job, call, card)
  local tools = job.tools or run.tools
  local ctx = tool_ctx(run, job, card)
  local checks = verify.checks(run, card)
  ctx.tests = checks and checks.steps or nil
  local req = tools:run(call.name, call.arguments, ctx)
  -- the issue's own timeout for its checks, unless the call gives one
  if req.ok and checks and type(req.result) == "table" and req.result.timeout_ms == nil then
    req.result.timeout_ms = checks.timeout_ms
  end
  return req
end

-- What a call's result reads as to the model. A failure or a denial is written like a
-- result (keys sorted), so it too reads the same when a resumed run hands it to the model again.
local function result_content(res)
  if res.ok then return encode_result(res.result) end
  -- the failure's own remedy, else its code's (orket.errors)
  return encode_result { error = res.error, code = res.code,
    remedy = errors.plain(res.remedy or errors.remedy(res.code)) } -- (its links as words: the model has no docs/guide/)
end

-- What tool results may hand the model, encoded as it reads them (result_content): one
-- call's, one step's (a response's calls) and one turn's. Nothing else held them: a
-- response of 32 reads of a binary file wrote 179 MB to the store, and a turn's history
-- past the role's 64 MiB failed the card. Checked before a result is journaled; past a
-- cap the call's result is a failure (E2BIG) that says how much to ask for instead, and
-- neither the store nor the model's context holds what it left out. A read of 1 MiB of text
-- (read_file's largest) fits a call's.
M.RESULT_MAX = 2 * 1024 * 1024
M.STEP_RESULTS_MAX = 8 * 1024 * 1024
M.TURN_RESULTS_MAX = 16 * 1024 * 1024

-- A cheap bound of v's encoding's size (a string's byte is at most 6 characters: \u00XX)
local function size_bound(v, depth)
  local t = type(v)
  if t == "string" then return 6 * #v + 2 end
  if t ~= "table" then return 32 end
  if depth > 16 then return math.huge end
  local n = 2
  for k, x in pairs(v) do n = n + size_bound(k, depth + 1) + size_bound(x, depth + 1) + 2 end
  return n
end

-- A result this small is counted by its bound, not encoded twice: a result is written for the
-- model only when a next step asks for it (flush_results), not at every turn's last call.
local SMALL_RESULT = 16 * 1024

-- res as the model may have it: itself (its encoding counted, and kept for flush_results),
-- or the failure that takes its place past a cap.
local function capped(run, job, st, call, res)
  if res.held then return res end
  local n = size_bound(res.ok and res.result or { res.error, res.code, res.remedy }, 0) + (res.ok and 0 or 1024)
  local text
  if n > SMALL_RESULT then
    text = result_content(res)
    n = #text
  end
  local over, ask
  if n > M.RESULT_MAX then
    over = string.format("its result of %d bytes is over the %d one call may return", n, M.RESULT_MAX)
  elseif st.step_bytes + n > M.STEP_RESULTS_MAX then
    over = string.format("its result of %d bytes would take this response's results past the %d bytes one step "
      .. "may return (%d so far)", n, M.STEP_RESULTS_MAX, st.step_bytes)
    ask = "make fewer such calls in one response"
  elseif st.turn_bytes + n > M.TURN_RESULTS_MAX then
    over = string.format("its result of %d bytes would take this turn's results past the %d bytes one turn may "
      .. "return (%d so far)", n, M.TURN_RESULTS_MAX, st.turn_bytes)
    ask = "keep what you need from what you read and ask for less"
  end
  if not over then
    st.step_bytes, st.turn_bytes = st.step_bytes + n, st.turn_bytes + n
    st.encoded[res] = text
    return res
  end
  local def = (job.tools or run.tools):get(call.name)
  local props = def and type(def.parameters) == "table" and type(def.parameters.properties) == "table"
    and def.parameters.properties or {}
  local less = props.limit and "ask for less: a smaller `limit`, then the rest with `offset`"
    or "ask for less at once (a narrower path, pattern or range)"
  local ran = res.ok and def and def.effect ~= "read"
    and "the call ran, and what it changed stays; only its result is left out. " or ""
  local remedy = ask and (ask .. ", or " .. less) or (less:sub(1, 1):upper() .. less:sub(2))
  return { ok = false, code = "E2BIG", error = call.name .. ": " .. over, remedy = ran .. remedy .. "." }
end

-- A call that stopped the run (call_stop's stop and kind), kept on x for execute (x.open is
-- what it reads) -> the transaction's failure: EIO for the journal's, ENOSPC otherwise
local function stopped(x, res, stop, kind)
  x.res, x.open, x.kind = res, stop, kind
  return nil, stop, kind == "journal" and "EIO" or "ENOSPC"
end

-- A handler run in a savepoint of its own (execute_tx's): one that raised or spent its budget
-- (registry:run's second value) is undone there, what it did on the board and in memory
-- with it, as a failing call rolls back only itself (docs/engine.md); the call's row and its
-- failure are recorded after, outside it. A handler's own `nil, msg, CODE` is an answer, and
-- what it did before it stays. x.res: the result; a raise of the host's goes on up.
local function guarded_run(x, tools, call, ctx)
  local res, raised = tools:run(call.name, call.arguments, ctx)
  x.res, x.raised = res, raised
  if raised then return nil, "the handler raised", "ETOOL" end
  return true
end

-- execute's savepoint: x = {turn_id=, key=, call=, counters=, card=, st=} in, x.res out (x.open:
-- the call stopped the run, call_stop's error; nothing of it kept).
local function execute_tx(run, job, x)
  local call, turn_id, key, card = x.call, x.turn_id, x.key, x.card
  job.exec = x
  job.gate_record = job.gate_record or gate_recorder(run, job)
  job.gate_facts = job.gate_facts or {}
  -- The policy set is the engine's newest at each call, not the one the turn started with (its
  -- role and tools stay the turn's): an emergency deny a hot reload took up holds from the very
  -- next call, and a denial names a rule the policy files hold now. A replayed call is not
  -- judged again (step_calls reads its record), so a resume repeats what was decided.
  local decision = run.gate {
    actor = job.actor, tool = call.name, args = call.arguments,
    card = gate_mod.card_facts(run.board, card, job.gate_facts),
    counters = x.counters, allowed = job.role.tools, record = job.gate_record, tools = job.tools,
    -- arguments the model sent that are not a JSON object are refused, never run as {}
    args_error = call.arguments_error, raw_args = call.arguments_error and call.raw_arguments or nil,
  }
  local asked, res
  if decision.verdict == "ask" then
    -- an approved request lets this exact call through; otherwise it is held for a developer
    decision, asked = approvals.on_ask(run, job, turn_id, call, card, decision)
  end
  local tools = job.tools or run.tools
  if asked then
    res = asked
    res.rule = decision.rule_name -- (held, or asked of no one: the rule that asks)
  elseif decision.verdict == "allow" then
    local def = tools:get(call.name)
    local effect = gate_mod.effect(def)
    local req
    if effect.program or def.effect == "sandbox" then
      -- a program's (or a live sandbox's) handler only builds the request: run here, before
      -- the intent, so one that fails (a full disk: call_stop) is left as an in-store call,
      -- redone on resume as the program never started (after the intent it would read
      -- EINTERRUPTED), and any other failure is the call's result, recorded below
      job.call_stop = nil
      local was_broken = store_failed(run) ~= nil
      if effect.program then req = program_request(run, job, call, card)
      else req = tools:run(call.name, call.arguments, tool_ctx(run, job, card)) end
      local stop, kind = call_stop(run, job, req, was_broken)
      if stop then
        return stopped(x, req, stop, kind)
      end
    end
    if effect.outside and (not req or req.ok) then
      x.res = { effect = true, req = req, id = assert(run.db:start_tool_call { turn = turn_id, call_id = key,
        tool = call.name, arguments = call.arguments, gate_code = x.allowed_by, run = job.run, card = job.card_id,
        seat = job.seat }) }
      return true
    end
    local stop, kind
    if req then
      res = req -- a program's (a sandbox's) request that failed (above)
    else
      -- the card is this call's read (step_calls), used no more once the handler has it
      job.call_stop = nil
      local was_broken = store_failed(run) ~= nil
      x.res, x.raised = nil, nil
      local done, err = run.db:tx(guarded_run, x, tools, call, tool_ctx(run, job, card, true))
      res = x.res
      -- raised inside, or the savepoint itself failed (a statement of the handler's the store
      -- refused, its effects rolled back): the store's failure, as before the savepoint, never
      -- a result recorded as done
      if res == nil or (not done and not x.raised) then error(err, 0) end
      stop, kind = call_stop(run, job, res, was_broken)
    end
    if stop then
      -- the call stopped the run: it is left unrecorded, all it wrote to the store rolled
      -- back, so a resume runs it again (as after a kill before it: docs/engine.md, crash points)
      return stopped(x, res, stop, kind)
    end
    if res.ok and run.count then run.count(x.counters, def, call.arguments) end
  else
    res = { ok = false, denied = true, verdict = decision.verdict, code = decision.code,
      error = "denied: " .. tostring(decision.reason or decision.code), remedy = decision.remedy,
      rule = decision.rule_name }
  end
  res = capped(run, job, x.st, call, res)
  x.res = res
  assert(run.db:record_tool_call { turn = turn_id, call_id = key, tool = call.name, arguments = call.arguments,
    result = res, ok = res.ok, error_code = res.code, gate_code = x.allowed_by, run = job.run, card = job.card_id,
    seat = job.seat })
  return true
end

-- Gates and runs one call in a savepoint of the step's transaction, with its records;
-- returns the result table, and the stop's error when the call stopped the run and was
-- left unrecorded (open). An allowed call of a tool whose effect is outside the store
-- (effect = "write") is not run here: its write-ahead intent is recorded and the result is
-- {effect = true, id = tool_calls row}; the step commits, runs it and records the result.
-- A move to done the call made (the mover: job.merged, job.conflict) is the turn's end's to
-- follow (after_merge: the pull request ended, main pushed, a deploy) only when the store
-- kept it: a call left open or failed is rolled back with the move, so they are as before it.
local function execute(run, job, turn_id, key, call, st, card)
  local x = { turn_id = turn_id, key = key, call = call, counters = st.counters, card = card, st = st }
  local merged, conflict = job.merged, job.conflict
  local ok, err = run.db:tx(execute_tx, run, job, x)
  if x.open or not ok then job.merged, job.conflict = merged, conflict end
  if x.open then return x.res, x.open, x.kind end
  if not ok then return { ok = false, error = "engine: " .. tostring(err), code = "EENGINE" } end
  return x.res
end

-- Runs a "write" call's effect between two transactions of its step. p: {call=, card=,
-- recovering=}; recovering: the journal holds the call's intent but no result, so a
-- process stopped while it ran: re-run only when the tool says that is safe. A "process"
-- tool's handler returns what to run; the program runs here (orket.engine.proctool).
local function run_effect(run, job, p, counters)
  local tools = job.tools or run.tools
  local call, ctx = p.call, tool_ctx(run, job, p.card)
  local def = tools:get(call.name)
  local process = gate_mod.effect(def).program
  -- a program (a process tool's, an MCP server's) may change any file of the card's
  -- directory: the commit judges what changed, naming this call (orket.engine.progwrites)
  if process or (def and def.effect == "mcp") then progwrites.ran(run, job.card_id, call) end
  local function effect()
    if def and def.effect == "mcp" and run.mcp then -- an MCP server's tool (orket.mcp.manager)
      local _, left = wall_left(run, job)
      -- a stdio server runs in the card's directory for the turn: what it writes is the
      -- card's change (verify.cwd: the next commit looks at the whole directory)
      local cwd, cerr = verify.cwd(run, job.card_id)
      if not cwd then return { ok = false, error = "engine: " .. tostring(cerr), code = "EIO" } end
      return run.mcp:call(call.name, call.arguments, left, { key = job.card_id, cwd = cwd })
    end
    if def and def.effect == "sandbox" then -- the project's live sandbox (orket.engine.sandboxtool)
      -- built in the step's transaction (execute_tx), or again when recovering
      local req = p.req or tools:run(call.name, call.arguments, ctx)
      if not req.ok then return req end
      return sandboxtool.run(run, job.card_id, call.name, req.result)
    end
    if not process then return tools:run(call.name, call.arguments, ctx) end
    -- built in the step's transaction (execute_tx), or again when recovering
    local req = p.req or program_request(run, job, call, p.card)
    if not req.ok then return req end
    local unjudged = proctool.unjudged(run, def, call.arguments, req.result)
    if unjudged then return { ok = false, error = call.name .. ": " .. unjudged, code = "ETOOL" } end
    local _, left = wall_left(run, job)
    return proctool.run(run, job.card_id, call.name, req.result, left)
  end
  -- a worker starts no effect on a card it may have lost (the worker that takes the card
  -- over finds the intent without a result and recovers it), and holds the card's fence
  -- until the effect ends (orket.engine.lease: fence)
  local fence
  if run.lease then
    local ok, lk = pcall(run.lease.fence, run.lease, job.card_id, run.dir)
    if not ok then
      if lk == lease.LOST then job.lease_lost = true end
      error(lk, 0)
    end
    fence = lk
  end
  local _ <close> = fence
  local res
  if p.recovering then
    local verdict, r = tools:recover(call.name, call.arguments, ctx)
    if verdict == "done" then
      res = r
    elseif verdict == "rerun" then
      res = effect()
    else
      res = { ok = false, code = "EINTERRUPTED",
        error = "the runtime stopped while " .. call.name .. " ran, so its effect on the workspace is unknown ("
          .. tostring(r) .. ")",
        remedy = "Check the workspace (e.g. read or list the files this call touches) before retrying it." }
    end
  else
    fault.hit("before_effect")
    res = effect()
  end
  if res.ok and run.count then run.count(counters, tools:get(call.name), call.arguments) end
  -- what a file tool wrote, for the commit's judgement (a move's source stays gone: its
  -- call was judged as a move, not as a deletion; orket.engine.progwrites)
  if res.ok and not process and gate_mod.effect(def).writes then progwrites.touched(job, call.arguments) end
  fault.hit("after_effect")
  return res
end

-- A call's message to the model; content: result_content(res) when known already (capped)
local function result_message(job, call, res, content)
  content = content or result_content(res)
  if job.role.dialect == "json" then
    return { role = "user", content = "Result of " .. call.name .. ": " .. content }
  end
  return { role = "tool", tool_call_id = call.id, name = call.name, content = content }
end
M.result_message = result_message

-- A call's result joins the history when the next step's messages are built (flush_results):
-- a turn's last step has no next one, and writing a result as the model reads it (keys
-- sorted, empty lists marked: a copy of the result and its encoding) was work for nothing
-- at every turn that ends on a call. The results wait in st.due, in order, call then result.
local function result_due(st, call, res)
  local due = st.due
  local n = #due
  due[n + 1], due[n + 2] = call, res
end

local function flush_results(job, st)
  local due, history = st.due, st.history
  local n = #due
  if n == 0 then return end
  for i = 1, n, 2 do history[#history + 1] = result_message(job, due[i], due[i + 1], st.encoded[due[i + 1]]) end
  st.due = {}
  st.encoded = setmetatable({}, { __mode = "k" })
end


-- Until a fresh turn's first commit moves its card from ready to in_progress, the turn
-- sees the card as that commit will leave it. card: the board's copy, the caller's own.
local function as_claimed(job, card)
  if job.begun == false and job.claim and card.status == "ready" then card.status = "in_progress" end
  return card
end

-- What ends the turn before step n runs: an outcome, or nil plus the card and the step's
-- record when the journal has it (a resumed turn). Runs inside the previous step's
-- transaction (or the turn's first read transaction), so its reads share one snapshot.
local function before_step(run, job, n)
  local b = run.settings.budgets
  -- a card handed in on the last step the turn allows is handed in: the hand-in is read first
  local card = as_claimed(job, assert(run.board:get(job.card_id)))
  if card.status ~= job.start_status then return { ended = "handed_in", detail = card.status } end
  if n > b.steps_per_turn then
    -- (budget: the turn's own, which Run:end_turn_records judges by the turn's calls)
    return { ended = "budget", budget = "steps_per_turn",
      detail = string.format("the turn used all %d model steps (budgets.steps_per_turn)", b.steps_per_turn) }
  end
  -- A turn this process began (job.fresh) has no recorded steps or calls to read back.
  local rec = not job.fresh and recorded.step(run.db, job.run, job.card_id, job.turn, n)
  if rec then return nil, card, rec end
  if b.tokens_per_run > 0 and run:run_tokens() >= b.tokens_per_run then
    -- the run's budget ends the run (Engine:execute stops it), not this card
    run.halted = run.halted or run:run_budget_spent("tokens")
    return { ended = "canceled", detail = run.halted }
  end
  local calls_over = run:run_budget_spent("calls")
  if calls_over then
    run.halted = run.halted or calls_over
    return { ended = "canceled", detail = run.halted }
  end
  local over = wall_left(run, job)
  if over then return over end
  if b.tokens_per_card > 0 and run:card_tokens(job.card_id, job) >= b.tokens_per_card then
    return { ended = "budget", detail = string.format("the card used its %d tokens (budgets.tokens_per_card)", b.tokens_per_card) }
  end
  return nil, card, nil
end

-- An answer with no tool call that the provider ended, by its finish_reason: what to say
local CUT_SHORT = {
  length = "the answer was cut at the output limit (finish_reason length): raise budgets.max_output_tokens, "
    .. "or give the seat a model with more room",
  content_filter = "the provider's content filter stopped the answer (finish_reason content_filter)",
}

-- The tool calls of a response; for the json dialect, read from its text. nil plus a note
-- for the model when the text held a call that could not be read.
local function calls_of(run, job, response)
  local calls = response.tool_calls or {}
  if #calls == 0 and job.role.dialect == "json" and run.toolcalls then
    local parsed, perr = run.toolcalls.from_text(response.content or "")
    if parsed and response.escaped then
      -- calls read from text whose bytes were escaped (orket.llm.common.utf8_result) are
      -- refused as a native call's would be, never run on the escaped text
      for _, c in ipairs(parsed) do
        c.arguments, c.arguments_error = {}, "the reply is not valid UTF-8 (" .. table.concat(response.escaped, ", ")
          .. "); send the text as UTF-8"
      end
    end
    if parsed then return parsed end
    if perr then return nil, perr end
  end
  return calls
end

-- The write side of one step (group commit): the model response, every call's gate
-- decision, effect and record, and the turn's end when it ends here, in ONE transaction,
-- committed before the next model call. A call with an effect outside the store splits it:
-- what the step has so far plus the call's intent commit first, the effect runs, and its
-- result opens the next transaction. Nothing here waits on the loop. Events are emitted
-- after the commit that makes them true.
--
-- The step's state, sp, lives across its transactions: {e, job, st, n, model, rec,
-- turn_id, calls, i (the next call), pending (a call whose effect ran, its result not yet
-- written), stop, stop_kind and stop_tool (a call's error: it stopped the run, step_open), out, next_card,
-- next_rec, events, tokens}. Crash points (fault.hit names the
-- ones the kill -9 suites aim at): before_model, before the response is written, leaves
-- nothing of the step (the model is asked again); after_model, with the response
-- committed, resumes from its record (rec), asking no model; before_tool leaves the call
-- unrecorded (it runs again); after an effect's intent committed (recorded.tool_call's
-- "started") the call is recovered, never run twice; after_tool, with its result
-- committed, goes on at the next call. A call that stops the run (call_stop) is left as one of
-- these kills would leave it (step_open): an in-store call as at before_tool, an effect's
-- as after its intent.

-- What a refused call's event says of why, at most this many bytes (the gate's reason, which
-- names the policy rule; the records keep it whole): a log shipper alerts on it, and one
-- event per call stays small.
M.EVENT_REASON_MAX = 300

-- The call's tool event. open: the call stopped the run and is left open (step_open).
local function after_call(sp, call, res, t0, open)
  local job = sp.job
  local reason
  if res.denied then reason = inert.clip((tostring(res.error):gsub("^denied: ", "")), M.EVENT_REASON_MAX) end
  -- ms: the call's wall time (its span's, orket.otel), from its gate check to its result
  sp.events[#sp.events + 1] = { type = "tool", card = job.card_id, seat = job.seat, turn = job.turn, call_id = call.id,
    ms = t0 and math.floor(rt.now() - t0) or nil, tool = call.name, ok = res.ok,
    code = res.code, denied = res.denied or nil, open = open or nil,
    -- a refusal's why and its rule ("policies/x.lua:3"); held: it waits for a person
    reason = reason, rule = res.denied and res.rule or nil, held = res.held or nil }
  if res.held then
    sp.events[#sp.events + 1] = { type = "approval_requested", card = job.card_id, seat = job.seat, tool = call.name,
      approval = res.approval, reason = res.error }
  end
end

-- The step's response, written once (a fresh turn's first commit also writes its begin:
-- the claim of the card, turn_begin), or read back from its record; its calls read and
-- the history told.
local function step_response(sp)
  local run, job, st, model = sp.run, sp.job, sp.st, sp.model
  local claimed, refused, rcode = run:begin_records(job)
  -- (any other refusal is no change of the board's that the card waits out: the turn fails
  -- with it, as before, and never pays a call a turn for a card that cannot start)
  if not claimed and rcode ~= "EDEPENDENCY" then error(refused, 0) end
  if not claimed then
    -- the card may no longer start (prepare checked the move, but the board changed while
    -- the model was asked: an import added a dependency that is not done). The state
    -- machine has the last word: the turn begins without the claim, its call is recorded
    -- and charged below, none of its tool calls runs, and it ends with no block, the card
    -- left as the board has it (a ready card then waits for its dependency).
    job.claim = false
    assert(run:begin_records(job))
  end
  local response
  if sp.rec then
    response, sp.turn_id = sp.rec.response, sp.rec.id
    job.turn_row = sp.turn_id -- (what the commit records a refused program write under)
  else
    local res, usage = model.res, model.res.usage or {}
    local money = spend.record(run, job, res.usage, model.req)
    response = {
      content = res.content or "", tool_calls = res.tool_calls or {}, finish_reason = res.finish_reason,
      usage = res.usage, model = res.model, provider = res.provider, escaped = res.escaped,
    }
    sp.turn_id = assert(run.db:record_turn { run = job.run, card = job.card_id, seat = job.seat, role = job.role.name,
      turn = job.turn, model = res.model or job.model, request = { model = job.model, messages = model.msgs },
      response = response, prompt_tokens = usage.prompt_tokens, completion_tokens = usage.completion_tokens,
      data = { step = sp.n, phase = job.phase, latency_ms = model.latency_ms, cached_tokens = money.cached_tokens,
        summarized = job.summarized ~= 0 and job.summarized or nil,
        -- counts the provider did not send, taken from the text: every usage sum says how
        -- many of its calls were so (orket.store.costs)
        estimated = usage.estimated == true and 1 or nil,
        cost = money.cost, currency = money.currency } })
    job.turn_row = sp.turn_id
    sp.tokens = (usage.prompt_tokens or 0) + (usage.completion_tokens or 0)
    run:add_tokens(sp.tokens, job.card_id)
    sp.events[#sp.events + 1] = { type = "model", card = job.card_id, seat = job.seat, turn = job.turn, step = sp.n,
      prompt_tokens = usage.prompt_tokens, completion_tokens = usage.completion_tokens,
      cached_tokens = money.cached_tokens, cost = money.cost, currency = money.currency,
      latency_ms = model.latency_ms, response_model = res.model }
  end
  if not claimed then
    local n = #(response.tool_calls or {})
    sp.calls = {}
    sp.out = { ended = "not_started", detail = string.format("the card could not start: %s (%s)", tostring(refused),
      n > 0 and string.format("the reply's %d tool call%s not run", n, n == 1 and " was" or "s were")
      or "the reply was not acted on") }
    return
  end
  -- a replayed step (a resumed turn) follows the one before without building messages
  flush_results(job, st)
  local calls, perr = calls_of(run, job, response)
  if not calls then
    sp.calls = {}
    st.history[#st.history + 1] = { role = "assistant", content = response.content }
    st.history[#st.history + 1] = { role = "user", content = "Your tool call could not be read: " .. perr
      .. ". Write it as {\"tool\": \"NAME\", \"args\": {...}}." }
    return
  end
  sp.calls = calls
  st.history[#st.history + 1] = { role = "assistant", content = response.content,
    tool_calls = (#calls > 0 and job.role.dialect == "native") and calls or nil }
  if #calls == 0 then
    -- an answer the provider cut (its output limit, its content filter) is no choice of the
    -- model's to end the turn: said, and kept for a block of the card (Run:turns_spent)
    local cut = CUT_SHORT[response.finish_reason]
    sp.out = { ended = "stopped", detail = cut or "the model ended its turn", cut = cut,
      cut_reason = cut and response.finish_reason or nil }
  end
end

-- A call that stopped the run (call_stop: a full disk met inside it) is the run's, as when
-- the engine's own commit meets one
-- (Run:git_broken, called once the step committed: commit_step): the run stops, for
-- `orket resume` once there is room, and the step ends here. The call stays open (an
-- effect's intent without its result, an in-store call unrecorded) and the step's later
-- calls unrecorded, so the resumed turn redoes them as after a kill (docs/tools.md, crash
-- safety), never showing the model a write that failed for want of space.
local function step_open(sp, call, res, t0, stop, kind)
  sp.stop, sp.stop_kind = stop, kind
  -- the tool whose result stopped it (call_stop's "tool"), and what it reported
  -- said: the words are the tool's own (a project tool's), not the workspace layer's that
  -- ctx.fs met and the tool passed on (the workspace's failure, said as before)
  if kind == "tool" then
    sp.stop_tool = { name = call.name, code = res.code, host = not DISK_FULL[res.code],
      said = not tostring(res.error):find("^workspace: ") }
  end
  after_call(sp, call, res, t0, true)
  sp.out = { ended = "canceled", detail = "the run stopped: " .. stop }
end

-- The result of the call whose effect ran between two transactions, written.
local function step_pending_result(sp)
  local p, job = sp.pending, sp.job
  sp.pending = nil
  if p.stop then return step_open(sp, p.call, p.res, p.t0, p.stop, p.stop_kind) end
  p.res = capped(sp.run, job, sp.st, p.call, p.res)
  assert(sp.run.db:finish_tool_call(p.id, { result = p.res, ok = p.res.ok, error_code = p.res.code, turn = sp.turn_id,
    tool = p.call.name, run = job.run, card = job.card_id, seat = job.seat }))
  after_call(sp, p.call, p.res, p.t0)
  result_due(sp.st, p.call, p.res)
end

-- A recorded call a resumed turn replays, as the commit's judging of what programs changed
-- needs it (orket.engine.progwrites): a program it ran marks the card's directory, and the
-- paths a call of a file tool changed were judged by that call.
local function replayed(run, job, call, res)
  local def = (job.tools or run.tools):get(call.name)
  local effect = gate_mod.effect(def)
  if res.denied then return end -- (refused: it ran nothing)
  if effect.program or (def and def.effect == "mcp") then
    progwrites.ran(run, job.card_id, call)
  elseif effect.writes and res.ok then
    progwrites.touched(job, call.arguments)
  end
end

-- The step's calls from the next one on, each gated and recorded (or replayed from its
-- record on a resumed turn). -> true when one with an effect outside the store must commit
-- its intent first (sp.pending), false when the calls are done or the turn ended.
local function step_calls(sp)
  local run, job, st = sp.run, sp.job, sp.st
  local limit = run.settings.budgets.tool_calls_per_turn
  while not sp.out and sp.i <= #sp.calls do
    if run.stopping then
      -- only one of this step's own calls can have stopped the run here (the mover's
      -- git_broken; a signal or a budget ends a turn where it waits instead): the step's
      -- later calls stay unrecorded, for the resumed turn to run, as after a kill before them
      sp.out = { ended = "canceled", detail = "the run stopped" }
      break
    end
    local call, key = sp.calls[sp.i], tostring(sp.i)
    sp.i = sp.i + 1
    local res, started
    if not job.fresh then res, started = recorded.tool_call(run.db, sp.turn_id, key) end
    st.calls_in_turn = st.calls_in_turn + 1
    if started then
      -- the process stopped between this call's intent and its result
      sp.pending = { call = call, id = started, card = assert(run.board:get(job.card_id)), recovering = true }
      return true
    end
    if res then replayed(run, job, call, res) end
    if not res then
      if st.calls_in_turn > limit then
        sp.out = { ended = "budget", budget = "tool_calls_per_turn",
          detail = string.format("the turn made more than %d tool calls (budgets.tool_calls_per_turn)", limit) }
        break
      end
      fault.hit("before_tool")
      local card = assert(run.board:get(job.card_id))
      local t0 = rt.now()
      local open, kind
      res, open, kind = execute(run, job, sp.turn_id, key, call, st, card)
      if open then
        step_open(sp, call, res, t0, open, kind)
        break
      end
      if res.effect then
        sp.pending = { call = call, id = res.id, card = card, t0 = t0, req = res.req }
        return true
      end
      after_call(sp, call, res, t0)
    end
    -- a held call ends the turn (recorded or replayed): the card waits for the developer
    if res.held then
      sp.out = { ended = "handed_in", detail = "waiting for approval #" .. tostring(res.approval) }
    else
      result_due(st, call, res)
    end
  end
  return false
end

-- One transaction of the step: the response (first), a pending result, the calls, and when
-- they are done the next step's checks and, when the turn ends, its end records.
local function step_segment(sp)
  sp.run:check_lease(sp.job)
  if not sp.turn_id then step_response(sp) end
  if sp.pending then step_pending_result(sp) end
  if sp.out then return true end -- the pending call stopped the run (step_open)
  if step_calls(sp) then return true end
  if not sp.out then sp.out, sp.next_card, sp.next_rec = before_step(sp.run, sp.job, sp.n + 1) end
  -- a canceled turn (a run budget ran out) stays open, as a stopped run leaves it
  if sp.out and sp.out.ended ~= "canceled" then sp.run:end_turn_records(sp.job, sp.out) end
  return true
end

-- Returns the turn's outcome (its records written, out.recorded), or nil plus the next
-- step's card and record.
local function commit_step(run, job, st, n, model, rec)
  local sp = { run = run, job = job, st = st, n = n, model = model, rec = rec, i = 1, events = {}, tokens = 0 }
  st.step_bytes = 0 -- (capped)
  local begun, first_done, turn_row = job.begun, false, job.turn_row
  while true do
    local merged, conflict = job.merged, job.conflict
    local ok, err = run.db:tx(step_segment, sp)
    if not ok then
      -- a move the segment made is rolled back with it (execute), and the lease's release
      job.merged, job.conflict = merged, conflict
      if sp.out and sp.out.released then
        run.lease:kept(job.card_id)
        sp.out.released = nil
      end
      -- the first transaction rolled back: the turn's begin and its tokens with it
      if not first_done then
        job.begun, job.turn_row = begun, turn_row
        if sp.tokens > 0 then run:add_tokens(-sp.tokens, job.card_id) end
        if job.lease_lost and not rec then record_lost_call(run, job, model) end
      end
      error(err, 0)
    end
    first_done = true
    -- the call's cost is in the store now (the next check reads it): its hold goes
    spend.committed(run, job)
    -- a call stopped the run (step_open): the run stops once what the step did is durable
    local stop, stop_kind = sp.stop, sp.stop_kind
    -- after_model and after_tool are where the response and each result are durable
    local events = sp.events
    local k, ev = 1, events[1]
    while ev ~= nil do -- as ipairs walks them, by index
      events[k] = nil
      run:emit(ev)
      if ev.type == "model" then fault.hit("after_model") elseif ev.type == "tool" then fault.hit("after_tool") end
      k = k + 1
      ev = events[k]
    end
    if stop and stop_kind == "journal" then run:journal_broken(job.card_id)
    elseif stop then run:git_broken(job.card_id, stop, "ENOSPC", stop_kind == "tool" and sp.stop_tool or nil) end
    if not sp.pending then return sp.out, sp.next_card, sp.next_rec end
    job.call_stop = nil
    sp.pending.res = run_effect(run, job, sp.pending, st.counters)
    -- (no store's rule between transactions: call_stop)
    sp.pending.stop, sp.pending.stop_kind = call_stop(run, job, sp.pending.res, nil)
  end
end

-- The first step's read transaction (run): its checks, then the role's messages
local function first_read(run, job, st)
  local o, c, r = before_step(run, job, 1)
  if o or r then return { o, c, r } end
  -- the card is this step's copy (before_step), the role's to keep: not copied again
  return { nil, c, nil, table.pack(roles.messages(job.role, make_context(run, job, c, st.history), true)) }
end

--- run(run, job) -> outcome {ended = "handed_in"|"stopped"|"budget"|"model_error"|"role_error"|"canceled",
---   detail = text, class = model error class, budget = the turn's own budget that ended it
---   ("steps_per_turn", "tool_calls_per_turn"), recorded = true when the turn's end records
---   are written (run:end_turn_records, in the last step's transaction)}
--- job: {run=, card_id=, seat=, actor=, role=, phase=, turn=, model=, tool_specs=, start_status=,
---   tools=} (the tools the turn started with; absent: the engine's; the policies are the
---   engine's newest, always)
function M.run(run, job)
  -- an open turn whose uncommitted changes went with its directory ended as it was entered
  -- (orket.engine.gitwork: lose_turn), its end recorded: nothing of it is replayed
  if job.lost then return job.lost end
  -- a call in flight's hold on the money budgets ends with the turn, however it ends
  local _ <close> = spend.guard(run, job)
  local st = { history = {}, due = {}, calls_in_turn = 0, counters = { turn = {}, run = run.run_counters },
    step_bytes = 0, turn_bytes = 0, encoded = setmetatable({}, { __mode = "k" }) }
  local step = 1
  -- The first step's checks and its messages share one read transaction (the later steps'
  -- checks run in the step before's commit): one snapshot, and one BEGIN and COMMIT fewer.
  local first = assert(run.db:read(first_read, run, job, st))
  local out, card, rec, built = first[1], first[2], first[3], first[4]
  if out then return out end
  while true do
    -- the run stopped while this turn went on without waiting (a full disk met by one of its
    -- tools, a budget, a signal): it asks the model no more; the turn stays open, as a
    -- cancelled one does, and a resume goes on from its recorded steps
    if run.stopping then return { ended = "canceled", detail = "the run stopped" } end
    local model
    if not rec then
      -- the role builds its messages from one snapshot of the board and memory
      flush_results(job, st)
      built = built or assert(run.db:read(function()
        return table.pack(roles.messages(job.role, make_context(run, job, card, st.history), true))
      end))
      local msgs, merr = built[1], built[2]
      built = nil
      if not msgs then return { ended = "role_error", detail = merr } end
      fault.hit("before_model")
      local req = {
        model = job.model, messages = msgs, tools = job.role.dialect == "native" and job.tool_specs or nil,
        fixed_tools = true, -- the registry's own entries (tools.lua: specs), never changed
        -- none by default: a provider's own limit (validate warns a money budget of it)
        max_tokens = run.settings.budgets.max_output_tokens > 0 and run.settings.budgets.max_output_tokens or nil,
        meta = { run = job.run, card = job.card_id, role = job.role.name, seat = job.seat, turn = job.turn,
          step = step, phase = job.phase },
      }
      local t0 = rt.now()
      local res, err, class, over = call_model(run, job, req)
      if not res then
        -- a money budget's wait before the turn's first call: the turn asked nothing, so it
        -- does not use up budgets.turns_per_card (approving would give the card no call)
        if over and over.money and step == 1 and not job.called then over.no_call = true end
        if over then return over end
        if class == "canceled" or run.stopping then return { ended = "canceled", detail = err } end
        return { ended = "model_error", detail = err, class = class }
      end
      -- latency_ms: the call's wall time, retries included (GET /metrics' histogram)
      model = { res = res, msgs = msgs, req = req, latency_ms = math.floor(rt.now() - t0) }
    end
    out, card, rec = commit_step(run, job, st, step, model, rec)
    if out then return out end
    step = step + 1
  end
end

return M
