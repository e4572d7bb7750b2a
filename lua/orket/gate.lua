-- orket.gate: every tool call an agent makes is judged here before it runs. The decision is
-- core/gate.c's alone, in one call (tool exists, role, malformed arguments, argument schema,
-- paths, limits, status change through the state machine, operator policy); this layer
-- gathers its input, runs policy predicates under the script budget, and records every
-- decision (and every denial as a policy violation) through the record(kind, data)
-- function it is handed. `orket gate check` and a run both call check. Contract:
-- docs/policies.md.
local inert = require "orket.inert"
local cgate = require "orket.c.gate"
local cschema = require "orket.c.schema"
local cjson = require "cjson.safe"

local M = {}

-- The kinds of effect a tool declares and what each means (writes, outside, program,
-- recover, declared): core/gate.c's one table, read here by the engine and the registry.
M.EFFECTS = cgate.effects
local NO_EFFECT = {}

--- effect(def) -> the flags of a tool definition's effect kind ({} for none or unknown)
function M.effect(def)
  return def and M.EFFECTS[def.effect] or NO_EFFECT
end

M.DEFAULT_LIMITS = {
  calls_turn = 50, calls_run = 1000,
  bytes_turn = 4 * 1024 * 1024, bytes_run = 64 * 1024 * 1024,
  files_turn = 100, files_run = 2000,
}

local function list_of_strings(v, what)
  if v == nil then return {} end
  if type(v) ~= "table" then error("bad argument #1 to 'check' (" .. what .. " must be a list of strings)", 3) end
  local i, s = 1, v[1]
  while s ~= nil do -- as ipairs walks it, by index
    if type(s) ~= "string" then error("bad argument #1 to 'check' (" .. what .. "[" .. i .. "] must be a string)", 3) end
    i = i + 1
    s = v[i]
  end
  return v
end

local function clip(s) return inert.clip(s, 500) end

-- The arguments as recorded: their JSON, or the model's own text when it did not parse.
local function summarize(args, raw)
  if raw then return clip(raw) end
  local ok, json = pcall(cjson.encode, args)
  return clip(ok and json or "(arguments not encodable)")
end

-- What a policy predicate is shown, made only when a rule has one and gate.c asks: gate.c
-- calls this with the rule's index and the table check handed it. One function for every
-- check, not a closure (and its upvalues) per call.
local function predicate(i, t)
  local call = t.call
  if not call then
    call = { tool = t.tool, args = t.call_args, seat = t.seat, roles = t.roles, card = t.call_card, status = t.card_status }
    t.call = call
  end
  return t.policies:predicate(i, call)
end

-- The table check hands gate.c, kept from one check to the next rather than made (a
-- thousand bytes) for each: every field is written at every check. A check inside another
-- (from a policy predicate) gets a fresh one.
local scratch, scratch_busy = {}, false
-- Released with the call's own values dropped: a call's arguments (a file's whole content)
-- are not kept alive until the next check.
local RELEASE = setmetatable({}, { __close = function()
  scratch.args, scratch.call_args, scratch.call, scratch.schema = nil, nil, nil, nil
  scratch_busy = false
end })
local NO_ARGS = {} -- gate.c only reads it

-- A recorded decision's args, summarized when first read: its metatable holds the input
-- it came from, and one function serves every decision (a closure per check was a
-- closure, its upvalues and a metatable).
local function lazy_args(t, k)
  if k ~= "args" then return nil end
  local input = getmetatable(t).input
  local raw = input.args_error and type(input.raw_args) == "string" and input.raw_args or nil
  local v = summarize(input.args, raw)
  rawset(t, "args", v)
  return v
end

--- check{actor={seat=, roles={}}, tool=, args=, args_error=, raw_args=, card=,
---       counters={turn=, run=}, limits=, tools=registry, policies=set, allowed={tool names},
---       record=fn, commands={program names}} -> {verdict="allow"|"deny"|"ask", code=, reason=, remedy=, rule=,
---       rule_name=}
--- (rule: the index of the policy rule that decided, rule_name its "file:line"; nil when none did)
--- The decision is core/gate.c's alone, this only gathers its input (commands: the
--- programs a tool that runs one runs unasked, orket.lua's verify.commands): the card's facts
--- (card.id, status, type, worked_by, deps_done; nil deps_done counts as done) for the
--- state machine, which gate.c asks itself; args_error (why the model's argument text is not
--- a JSON object) for ARGS_MALFORMED; raw_args (that text) is what the records show in
--- place of args. record(kind, data) receives "gate_decision" for every call and
--- "policy_violation" for every denial (data: what, why, how_to_fix, code, tool, args,
--- card, seat).
function M.check(input)
  if type(input) ~= "table" then error("bad argument #1 to 'check' (table expected, got " .. type(input) .. ")", 2) end
  if type(input.tool) ~= "string" then error("bad argument #1 to 'check' (tool must be a string)", 2) end
  local actor = input.actor or {}
  if type(actor) ~= "table" then error("bad argument #1 to 'check' (actor must be a table)", 2) end
  local roles = list_of_strings(actor.roles, "actor.roles")
  local card = input.card or {}
  -- a registry of the wrong type, or a definition that is not a table, is refused: counted
  -- as known (def ~= nil), the tool would pass the first check with no schema or effect
  local tools = input.tools
  if tools ~= nil and type(tools) ~= "table" then
    error("bad argument #1 to 'check' (tools must be a tool registry, got " .. type(tools) .. ")", 2)
  end
  local def = tools and tools:get(input.tool)
  if def ~= nil and type(def) ~= "table" then
    error("bad argument #1 to 'check' (tools:get('" .. input.tool .. "') must return a tool definition or nil, got "
      .. type(def) .. ")", 2)
  end
  local counters = input.counters or {}
  local policies = input.policies
  local args_error = input.args_error
  if args_error ~= nil and type(args_error) ~= "string" then error("bad argument #1 to 'check' (args_error must be a string)", 2) end
  local raw_args = args_error and type(input.raw_args) == "string" and input.raw_args or nil
  -- merged over the defaults by gate.c as it reads them (a limit left nil is the default's),
  -- not copied into a fresh table at every call
  local limits = input.limits or nil -- false: the defaults, as nil
  if limits ~= nil and type(limits) ~= "table" then error("bad argument #1 to 'check' (limits must be a table)", 2) end

  local t = scratch
  if scratch_busy then t = {} else scratch_busy = true end
  local _ <close> = t == scratch and RELEASE or nil
  t.seat, t.roles, t.tool = actor.seat, roles, input.tool
  t.tool_known, t.schema = def ~= nil, def and (def.compiled_schema or def.parameters)
  -- the lists are gate.c's to check (it walks them anyway): a walk here too was as dear
  t.effect, t.commands = def and def.effect, input.commands
  t.fixed_status, t.fixed_reason = def and def.status, def and def.wait_reason
  t.allowed = input.allowed
  t.args, t.args_error = input.args == nil and NO_ARGS or input.args, args_error
  t.card_id, t.card_status, t.card_type = card.id and tostring(card.id), card.status, card.type
  t.card_worked_by, t.card_deps_done = card.worked_by, card.deps_done
  t.turn, t.run, t.limits, t.default_limits = counters.turn, counters.run, limits, M.DEFAULT_LIMITS
  t.schema_limits = input.schema_limits
  t.rules = policies and (policies.compiled or policies.rules) or nil
  t.predicate, t.policies, t.call_args, t.call_card, t.call = policies and predicate or nil, policies, input.args, card.id, nil
  local d = cgate.check(t)
  -- the rule's place in the set that judged the call ("policies/x.lua:3"), beside its index:
  -- a denial's event names it, and a hot reload may swap the engine's set right after
  if d.rule and policies then
    local r = policies.rules[d.rule]
    d.rule_name = r and r.name or nil
  end
  local record = input.record
  if record then
    -- args (the arguments' JSON, cut at 500 bytes) is encoded only when the recorder
    -- reads it: the engine keeps an allowed call's decision in its tool_calls row
    record("gate_decision", setmetatable({
      tool = input.tool, seat = actor.seat, card = card.id,
      verdict = d.verdict, code = d.code, reason = d.reason, remedy = d.remedy,
    }, { __index = lazy_args, input = input }))
    if d.verdict == "deny" then
      record("policy_violation", {
        what = input.tool .. " " .. summarize(input.args, raw_args), why = d.reason, how_to_fix = d.remedy,
        code = d.code, tool = input.tool, seat = actor.seat, card = card.id,
      })
    end
  end
  return d
end

--- card_facts(board, card) -> {id=, status=, type=, worked_by=, deps_done=}: what the gate
--- needs to know of the card a call is made on, read the same way for a run and for
--- `orket gate check --card` (deps_done: every card it or its epic depends on is done).
--- into: a table to write them in (the engine's, one per turn: check keeps nothing of it).
function M.card_facts(board, card, into)
  -- the board's own count: a card's depends_on and, for an issue, its epic's
  local done = board:open_deps(card) == 0
  if into == nil then
    return { id = card.id, status = card.status, type = card.type, worked_by = card.worked_by, deps_done = done }
  end
  into.id, into.status, into.type, into.worked_by, into.deps_done = card.id, card.status, card.type, card.worked_by, done
  return into
end

local SCOPES = { "turn", "run" }

--- counters_add(counters, tool_def, args) -> counters after an allowed call ran
--- (calls +1; bytes of "content" arguments; files named by "path" arguments of writers,
--- wherever they sit in the arguments: core/gate.c's own walk, so the counters and the
--- gate's limits agree).
function M.counters_add(counters, def, args)
  local bytes, files = 0, 0
  if def and type(args) == "table" then
    bytes, files = cgate.measure(def.compiled_schema or def.parameters or {}, args, def.effect)
  end
  for i = 1, #SCOPES do
    local scope = SCOPES[i]
    local c = counters[scope] or {}
    counters[scope] = c
    c.calls = (c.calls or 0) + 1
    c.bytes = (c.bytes or 0) + bytes
    c.files = (c.files or 0) + files
  end
  return counters
end

M.glob = cgate.glob
M.validate = cschema.validate

return M
