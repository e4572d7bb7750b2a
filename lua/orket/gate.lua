-- orket.gate: every tool call an agent makes is judged here before it runs. The decision is
-- core/gate.c's (tool exists, role, argument schema, paths, limits, status change, operator
-- policy); this layer gathers its input, runs policy predicates under the script budget,
-- and records every decision (and every denial as a policy violation) through the
-- record(kind, data) function it is handed. Contract: docs/policies.md.
local cgate = require "orket.c.gate"

local M = {}

M.DEFAULT_LIMITS = {
  calls_turn = 50, calls_run = 1000,
  bytes_turn = 4 * 1024 * 1024, bytes_run = 64 * 1024 * 1024,
  files_turn = 100, files_run = 2000,
}

local function list_of_strings(v, what)
  if v == nil then return {} end
  if type(v) ~= "table" then error("bad argument #1 to 'check' (" .. what .. " must be a list of strings)", 3) end
  for i, s in ipairs(v) do
    if type(s) ~= "string" then error("bad argument #1 to 'check' (" .. what .. "[" .. i .. "] must be a string)", 3) end
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
  local ok, json = pcall(require("cjson.safe").encode, args)
  return clip(ok and json or "(arguments not encodable)")
end

--- check{actor={seat=, roles={}}, tool=, args=, args_error=, raw_args=, card=,
---       counters={turn=, run=}, limits=, tools=registry, policies=set, allowed={tool names},
---       check_transition=fn, record=fn} -> {verdict="allow"|"deny"|"ask", code=, reason=, remedy=, rule=}
--- args_error (why the model's argument text is not a JSON object) denies the call with
--- ARGS_MALFORMED once the tool and role checks pass; raw_args (that text) is what the
--- records show in place of args.
--- check_transition(card, to, actor) -> ok, code, msg [, remedy] decides status changes;
--- record(kind, data) receives "gate_decision" for every call and "policy_violation" for
--- every denial (data: what, why, how_to_fix, code, tool, args, card, seat).
function M.check(input)
  if type(input) ~= "table" then error("bad argument #1 to 'check' (table expected, got " .. type(input) .. ")", 2) end
  if type(input.tool) ~= "string" then error("bad argument #1 to 'check' (tool must be a string)", 2) end
  local actor = input.actor or {}
  if type(actor) ~= "table" then error("bad argument #1 to 'check' (actor must be a table)", 2) end
  local roles = list_of_strings(actor.roles, "actor.roles")
  local card = input.card or {}
  local tools = input.tools
  local def = tools and tools:get(input.tool)
  local counters = input.counters or {}
  local policies = input.policies
  local args_error = input.args_error
  if args_error ~= nil and type(args_error) ~= "string" then error("bad argument #1 to 'check' (args_error must be a string)", 2) end
  local raw_args = args_error and type(input.raw_args) == "string" and input.raw_args or nil
  local limits = {}
  for k, v in pairs(M.DEFAULT_LIMITS) do limits[k] = v end
  for k, v in pairs(input.limits or {}) do limits[k] = v end

  local call = {
    tool = input.tool, args = input.args, seat = actor.seat, roles = roles,
    card = card.id, status = card.status,
  }
  local c_input = {
    seat = actor.seat, roles = roles, tool = input.tool,
    tool_known = def ~= nil, schema = def and (def.compiled_schema or def.parameters),
    tool_writes = def ~= nil and def.effect == "write", fixed_status = def and def.status,
    allowed = input.allowed and list_of_strings(input.allowed, "allowed") or nil,
    args = input.args == nil and {} or input.args,
    card_id = card.id and tostring(card.id), card_status = card.status,
    turn = counters.turn, run = counters.run, limits = limits,
    schema_limits = input.schema_limits,
    rules = policies and (policies.compiled or policies.rules) or nil,
    predicate = policies and function(i) return policies:predicate(i, call) end or nil,
  }
  -- Status changes are always judged by the state machine; a caller that knows more
  -- (the engine knows whether dependencies are done) passes its own check_transition.
  local ct = input.check_transition or M.state_machine_check(input.args, def)
  do
    c_input.check_transition = function(to)
      local ok, code, msg, remedy = ct(card, to, actor)
      if ok then return true end
      return false, code, msg, remedy
    end
  end
  if args_error then
    -- Arguments that did not parse are not judged as {}: a tool with no required argument
    -- would run on them. Only "no such tool" and "not this role's tool" come first.
    c_input.args, c_input.rules, c_input.predicate, c_input.check_transition = {}, nil, nil, nil
  end
  local d = cgate.check(c_input)
  if args_error and d.code ~= "TOOL_UNKNOWN" and d.code ~= "ROLE_FORBIDDEN" then
    d = { verdict = "deny", code = "ARGS_MALFORMED",
      reason = input.tool .. ": the call's " .. args_error,
      remedy = "Send the arguments as one complete JSON object of the tool's parameters, e.g. {\"name\": \"value\"}." }
  end
  local record = input.record
  if record then
    -- args (the arguments' JSON, cut at 500 bytes) is encoded only when the recorder
    -- reads it: the engine keeps an allowed call's decision in its tool_calls row
    local args = input.args
    record("gate_decision", setmetatable({
      tool = input.tool, seat = actor.seat, card = card.id,
      verdict = d.verdict, code = d.code, reason = d.reason, remedy = d.remedy,
    }, { __index = function(t, k)
      if k ~= "args" then return nil end
      local v = summarize(args, raw_args)
      rawset(t, "args", v)
      return v
    end }))
    if d.verdict == "deny" then
      record("policy_violation", {
        what = input.tool .. " " .. summarize(input.args, raw_args), why = d.reason, how_to_fix = d.remedy,
        code = d.code, tool = input.tool, seat = actor.seat, card = card.id,
      })
    end
  end
  return d
end

--- state_machine_check(args [, tool_def]) -> check_transition function deciding from the
--- card's own fields (type, status, worked_by, deps_done) and the call's wait_reason; a
--- tool with a fixed status (request_input) enters it with the tool's own wait_reason.
function M.state_machine_check(args, def)
  local sm = require "orket.c.statemachine"
  local reason = type(args) == "table" and args.wait_reason or nil
  if reason ~= nil and type(reason) ~= "string" then reason = nil end -- the schema reports it
  local fixed = type(def) == "table" and def.status or nil
  local fixed_reason = type(def) == "table" and def.wait_reason or nil
  return function(card, to, actor)
    local why = reason
    if why == nil and to == fixed then why = fixed_reason end
    local ok, msg, code = sm.check {
      type = card.type or "issue", from = card.status, to = to, seat = actor.seat,
      roles = actor.roles, reason = why, worked_by = card.worked_by,
      deps_done = card.deps_done,
    }
    if ok then return true end
    return false, code, msg, require("orket.remedy").transition(code)
  end
end

-- What an allowed call adds to the counters, found the way core/gate.c finds it: "content"
-- strings and "path" strings (or lists of them) at any depth the schema describes. The walk
-- follows the schema, which schema_check caps at 16 levels.
local function measure(s, v, writes, acc, depth)
  if type(s) ~= "table" or v == nil or depth > 16 then return end
  if s.format == "content" then
    if type(v) == "string" then acc.bytes = acc.bytes + #v end
  elseif s.format == "path" then
    if not writes then return end
    if type(v) == "string" then
      acc.files = acc.files + 1
    elseif type(v) == "table" then
      for _, x in ipairs(v) do if type(x) == "string" then acc.files = acc.files + 1 end end
    end
  elseif type(v) == "table" then
    if s.items then
      for _, x in ipairs(v) do measure(s.items, x, writes, acc, depth + 1) end
    end
    if s.properties then
      for k, ps in pairs(s.properties) do measure(ps, rawget(v, k), writes, acc, depth + 1) end
    end
  end
end

--- counters_add(counters, tool_def, args) -> counters after an allowed call ran
--- (calls +1; bytes of "content" arguments; files named by "path" arguments of writers,
--- wherever they sit in the arguments).
function M.counters_add(counters, def, args)
  local acc = { bytes = 0, files = 0 }
  if def and type(args) == "table" then measure(def.parameters, args, def.effect == "write", acc, 0) end
  local bytes, files = acc.bytes, acc.files
  for _, scope in ipairs { "turn", "run" } do
    local c = counters[scope] or {}
    counters[scope] = c
    c.calls = (c.calls or 0) + 1
    c.bytes = (c.bytes or 0) + bytes
    c.files = (c.files or 0) + files
  end
  return counters
end

M.glob = cgate.glob
M.validate = cgate.validate

return M
