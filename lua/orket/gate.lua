-- orket.gate: every tool call an agent makes is judged here before it runs. The decision is
-- core/gate.c's alone, in one call (tool exists, role, malformed arguments, argument schema,
-- paths, limits, status change through the state machine, operator policy); this layer
-- gathers its input, runs policy predicates under the script budget, and records every
-- decision (and every denial as a policy violation) through the record(kind, data)
-- function it is handed. `orket gate check` and a run both call check. Contract:
-- docs/policies.md.
local cgate = require "orket.c.gate"
local cschema = require "orket.c.schema"
local cjson = require "cjson.safe"

local M = {}

-- The kinds of effect a tool declares and what each means (writes, outside, program,
-- recover, declared): core/gate.c's one table, read here by the engine and the registry.
M.EFFECTS = cgate.effects
local NO_EFFECT = {}
local NO_TABLE = {} -- an absent actor or card: only read

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

local function clip(s)
  if #s > 500 then s = s:sub(1, 500) .. "..." end
  return s
end

-- The arguments as recorded: their JSON, or the model's own text when it did not parse.
local function summarize(args, raw)
  if raw then return clip(raw) end
  local ok, json = pcall(cjson.encode, args)
  return clip(ok and json or "(arguments not encodable)")
end

-- What a policy predicate is shown, made only when a rule has one and gate.c asks: gate.c
-- calls this with the rule's index, the input check was handed and the call an earlier
-- predicate of the same check was shown (nil for the first), and hands the next the call
-- returned. One function for every check, not a closure (and its upvalues) per call.
local function predicate(i, input, call)
  if not call then
    local actor, card = input.actor or NO_TABLE, input.card or NO_TABLE
    call = { tool = input.tool, args = input.args, seat = actor.seat, roles = actor.roles or {}, card = card.id,
      status = card.status }
  end
  local matched, err = input.policies:predicate(i, call)
  return matched, err, call
end

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
---       record=fn, commands={program names}} -> {verdict="allow"|"deny"|"ask", code=, reason=, remedy=, rule=}
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
  local actor = input.actor or NO_TABLE
  if type(actor) ~= "table" then error("bad argument #1 to 'check' (actor must be a table)", 2) end
  list_of_strings(actor.roles, "actor.roles")
  local card = input.card or NO_TABLE
  local tools = input.tools
  local def = tools and tools:get(input.tool) -- looked up here, before the checks below, as ever
  local args_error = input.args_error
  if args_error ~= nil and type(args_error) ~= "string" then error("bad argument #1 to 'check' (args_error must be a string)", 2) end
  local raw_args = args_error and type(input.raw_args) == "string" and input.raw_args or nil
  -- merged over the defaults by gate.c as it reads them (a limit left nil is the default's),
  -- not copied into a fresh table at every call
  local limits = input.limits
  if limits and type(limits) ~= "table" then error("bad argument #1 to 'check' (limits must be a table)", 2) end

  -- gate.c reads the input where it is (the actor's, the card's and the counters' tables,
  -- the tool's definition, the policy set's rules): nothing is copied for it
  local d = cgate.check_call(input, def, input.policies, M.DEFAULT_LIMITS, predicate)
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
