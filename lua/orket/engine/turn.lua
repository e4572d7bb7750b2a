-- orket.engine.turn: one seat working one card. Compose messages (role script) -> call the
-- model (or read the recorded response back on resume) -> parse tool calls -> gate each ->
-- execute -> return results to the model -> repeat, until the model stops, the card's
-- status changes, or a budget ends the turn. Each model response is journaled before its
-- calls run; each call's gate decision, effect and result are written in one transaction.
local cjson = require "cjson.safe"
local rt = require "orket.c.runtime"
local roles = require "orket.engine.roles"
local context = require "orket.engine.context"
local journal = require "orket.engine.journal"
local fault = require "orket.engine.fault"
local approvals = require "orket.engine.approvals"

local M = {}

M.RETRYABLE = { transient = true, rate_limited = true, timeout = true }

local function encode(v)
  return cjson.encode(v) or "null"
end

--- context(e, job, card, history) -> the plain context object a role builds its messages from
--- The dependencies' part is read once per turn (job.deps_ctx): they are finished work, and
--- a turn of several steps asked the store for each one's comments at every step. The role
--- gets a copy, so the cached table cannot be changed through it.
local function make_context(e, job, card, history)
  local ids = table.concat(card.depends_on or {}, "\0")
  local deps = job.deps_ctx
  if not deps or job.deps_ids ~= ids then
    deps = {}
    for _, id in ipairs(card.depends_on or {}) do
      local d = e.board:get(id)
      if d then
        local cs = e.board:comments(id)
        local last = cs[#cs]
        deps[#deps + 1] = { id = d.id, summary = d.summary, status = d.status, outcome = last and last.body or nil }
      end
    end
    job.deps_ctx, job.deps_ids = deps, ids
  end
  local comments = {}
  for _, c in ipairs(e.board:comments(card.id)) do comments[#comments + 1] = { author = c.author, body = c.body } end
  return {
    card = card, deps = deps, comments = comments, seat = job.seat, role = job.role.name,
    phase = job.phase, turn = job.turn, tools = job.tool_specs,
    memory = context.recall(e.memory, card, e.settings.context),
    history = context.window(history, e.settings.context),
    project = { name = e.settings.name, vision = e.settings.vision },
  }
end

M.context = make_context

-- Calls the model, retrying transient failures with exponential backoff.
local function call_model(e, job, req)
  local b = e.settings.budgets
  local tries = 0
  while true do
    local res, msg, class = e.llm:chat(req)
    if res then return res end
    class = class or "transient"
    if not M.RETRYABLE[class] or tries >= b.model_retries or e.stopping then return nil, msg, class end
    tries = tries + 1
    local delay = b.backoff_ms * (1 << (tries - 1))
    e:emit { type = "model_retry", card = job.card_id, seat = job.seat, class = class, error = msg,
      attempt = tries, delay_ms = delay }
    rt.sleep(delay)
  end
end

-- Gates and runs one call in one transaction with its records; returns the result table.
local function execute(e, job, turn_id, key, call, counters, card)
  local actor = job.actor
  local res
  local ok, err = e.db:tx(function()
    local function record(kind, d)
      if kind == "gate_decision" then
        assert(e.db:record_gate_decision { turn = turn_id, tool = d.tool, verdict = d.verdict, code = d.code,
          reason = d.reason, remedy = d.remedy, run = job.run, card = job.card_id, seat = job.seat })
      elseif kind == "policy_violation" then
        assert(e.db:record_violation { turn = turn_id, card = job.card_id, seat = job.seat,
          rule = d.code or "denied", attempt = d.what, detail = d.why, remedy = d.how_to_fix, run = job.run })
      end
    end
    local decision = e.gate {
      actor = actor, tool = call.name, args = call.arguments, card = card, counters = counters,
      allowed = job.role.tools, record = record, tools = job.tools, policies = job.policies,
    }
    local asked
    if decision.verdict == "ask" then
      -- an approved request lets this exact call through; otherwise it is held for a developer
      decision, asked = approvals.on_ask(e, job, turn_id, call, card, decision)
    end
    local tools = job.tools or e.tools
    if asked then
      res = asked
    elseif decision.verdict == "allow" then
      -- what a tool reads on its own (search_files) obeys the policies read_file obeys
      local function may_read(path)
        return e.gate { actor = actor, tool = "read_file", args = { path = path }, card = card,
          tools = job.tools, policies = job.policies }.verdict == "allow"
      end
      local ctx = { fs = e.workspace, board = e.board, memory = e.memory, card = card, actor = actor,
        may_read = may_read }
      res = tools:run(call.name, call.arguments, ctx)
      if res.ok and e.count then e.count(counters, tools:get(call.name), call.arguments) end
    else
      res = { ok = false, denied = true, verdict = decision.verdict, code = decision.code,
        error = "denied: " .. tostring(decision.reason or decision.code), remedy = decision.remedy }
    end
    assert(e.db:record_tool_call { turn = turn_id, call_id = key, tool = call.name, arguments = call.arguments,
      result = res, ok = res.ok, error_code = res.code, run = job.run, card = job.card_id, seat = job.seat })
    return true
  end)
  if not ok then res = { ok = false, error = "engine: " .. tostring(err), code = "EENGINE" } end
  return res
end

local function result_message(job, call, res)
  local content = res.ok and encode(res.result) or encode { error = res.error, code = res.code, remedy = res.remedy }
  if job.role.dialect == "json" then
    return { role = "user", content = "Result of " .. call.name .. ": " .. content }
  end
  return { role = "tool", tool_call_id = call.id, name = call.name, content = content }
end

--- run(e, job) -> outcome {ended = "handed_in"|"stopped"|"budget"|"model_error"|"role_error"|"canceled",
---   detail = text, class = model error class}
--- job: {run=, card_id=, seat=, actor=, role=, phase=, turn=, model=, tool_specs=, start_status=,
---   tools=, policies=} (the scripts the turn started with; absent: the engine's)
function M.run(e, job)
  local b = e.settings.budgets
  local history, calls_in_turn, counters = {}, 0, { turn = {}, run = e.run_counters }
  local step = 0
  while true do
    step = step + 1
    if step > b.steps_per_turn then
      return { ended = "budget", detail = string.format("the turn used all %d model steps (budgets.steps_per_turn)", b.steps_per_turn) }
    end
    local card = assert(e.board:get(job.card_id))
    if card.status ~= job.start_status then return { ended = "handed_in", detail = card.status } end
    -- A turn this process began (job.fresh) has no recorded steps or calls to read back.
    local rec = not job.fresh and journal.step(e.db, job.run, job.card_id, job.turn, step)
    local response, turn_id
    if rec then
      response, turn_id = rec.response, rec.id
    else
      if b.tokens_per_card > 0 and e:card_tokens(job.card_id) >= b.tokens_per_card then
        return { ended = "budget", detail = string.format("the card used its %d tokens (budgets.tokens_per_card)", b.tokens_per_card) }
      end
      if b.wall_ms_per_card > 0 then
        -- the card's clock starts at its first model call of this process (like the run's,
        -- it restarts when a killed run is resumed)
        e.card_clock = e.card_clock or {}
        local t0 = e.card_clock[job.card_id]
        if not t0 then
          t0 = rt.now()
          e.card_clock[job.card_id] = t0
        elseif rt.now() - t0 > b.wall_ms_per_card then
          return { ended = "budget", detail = string.format("the card used its %d ms (budgets.wall_ms_per_card)", b.wall_ms_per_card) }
        end
      end
      if b.tokens_per_run > 0 and e:run_tokens() >= b.tokens_per_run then
        return { ended = "budget", detail = string.format("the run used its %d tokens (budgets.tokens_per_run)", b.tokens_per_run) }
      end
      local msgs, merr = roles.messages(job.role, make_context(e, job, card, history))
      if not msgs then return { ended = "role_error", detail = merr } end
      fault.hit("before_model")
      local req = {
        model = job.model, messages = msgs, tools = job.role.dialect == "native" and job.tool_specs or nil,
        meta = { run = job.run, card = job.card_id, role = job.role.name, seat = job.seat, turn = job.turn,
          step = step, phase = job.phase },
      }
      local res, err, class = call_model(e, job, req)
      if not res then
        if class == "canceled" or e.stopping then return { ended = "canceled", detail = err } end
        return { ended = "model_error", detail = err, class = class }
      end
      response = {
        content = res.content or "", tool_calls = res.tool_calls or {}, finish_reason = res.finish_reason,
        usage = res.usage, model = res.model, provider = res.provider,
      }
      local usage = res.usage or {}
      turn_id = assert(e.db:record_turn { run = job.run, card = job.card_id, seat = job.seat, role = job.role.name,
        turn = job.turn, model = res.model or job.model, request = { model = job.model, messages = msgs },
        response = response, prompt_tokens = usage.prompt_tokens, completion_tokens = usage.completion_tokens,
        data = { step = step, phase = job.phase } })
      e:add_tokens((usage.prompt_tokens or 0) + (usage.completion_tokens or 0), job.card_id)
      e:emit { type = "model", card = job.card_id, seat = job.seat, turn = job.turn, step = step,
        prompt_tokens = usage.prompt_tokens, completion_tokens = usage.completion_tokens }
      fault.hit("after_model")
    end
    local calls = response.tool_calls or {}
    if #calls == 0 and job.role.dialect == "json" and e.toolcalls then
      local parsed, perr = e.toolcalls.from_text(response.content or "")
      if parsed then
        calls = parsed
      elseif perr then
        history[#history + 1] = { role = "assistant", content = response.content }
        history[#history + 1] = { role = "user", content = "Your tool call could not be read: " .. perr
          .. ". Write it as {\"tool\": \"NAME\", \"args\": {...}}." }
        goto continue
      end
    end
    history[#history + 1] = { role = "assistant", content = response.content,
      tool_calls = (#calls > 0 and job.role.dialect == "native") and calls or nil }
    if #calls == 0 then return { ended = "stopped", detail = "the model ended its turn" } end
    for i, call in ipairs(calls) do
      local key = tostring(i)
      local res = not job.fresh and journal.tool_call(e.db, turn_id, key)
      if not res then
        calls_in_turn = calls_in_turn + 1
        if calls_in_turn > b.tool_calls_per_turn then
          return { ended = "budget", detail = string.format("the turn made more than %d tool calls (budgets.tool_calls_per_turn)", b.tool_calls_per_turn) }
        end
        fault.hit("before_tool")
        res = execute(e, job, turn_id, key, call, counters, assert(e.board:get(job.card_id)))
        fault.hit("after_tool")
        e:emit { type = "tool", card = job.card_id, seat = job.seat, tool = call.name, ok = res.ok,
          code = res.code, denied = res.denied or nil }
        if res.held then
          e:emit { type = "approval_requested", card = job.card_id, seat = job.seat, tool = call.name,
            approval = res.approval, reason = res.error }
        end
      else
        calls_in_turn = calls_in_turn + 1
      end
      -- a held call ends the turn (recorded or replayed): the card waits for the developer
      if res.held then return { ended = "handed_in", detail = "waiting for approval #" .. tostring(res.approval) } end
      history[#history + 1] = result_message(job, call, res)
    end
    ::continue::
  end
end

return M
