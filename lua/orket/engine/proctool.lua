-- orket.engine.proctool: what a tool with effect = "process" (run_command, run_tests) asks
-- for, run by the engine in the confined runner (orket.c.proc) in the card's workspace,
-- with the project's verify settings (layers, require). The handler only builds the
-- request, under the script budget, in the step's transaction before the call's intent
-- (turn.lua's program_request: one that fails never left an intent); the program runs
-- here, between two transactions of the turn's step (turn.lua's run_effect), as a file
-- effect does, so the loop goes on while it
-- runs and its result is journaled before the model reads it. Contract: docs/tools.md.
local verify = require "orket.engine.verify"
local proc = require "orket.c.proc"
local rt = require "orket.c.runtime"
local M = {}

M.OUTPUT_CAP = 16384 -- bytes of each of stdout and stderr the model reads: head and tail
M.MAX_STEPS = 16

local function argv_text(a)
  local out = {}
  for i, s in ipairs(a) do out[i] = s:find("[%s'\"]") and string.format("%q", s) or s end
  return table.concat(out, " ")
end
M.argv_text = argv_text

-- The handler's request, checked as hostile data: {steps = {{command = argv, name=,
-- expect_exit=}...}, timeout_ms=}. -> steps | nil, why
local function steps_of(req)
  if type(req) ~= "table" or type(req.steps) ~= "table" then return nil, "the request must be {steps = {...}}" end
  local steps = {}
  for i, s in ipairs(req.steps) do
    if i > M.MAX_STEPS then return nil, "more than " .. M.MAX_STEPS .. " steps" end
    local c = type(s) == "table" and s.command
    if type(c) ~= "table" or #c == 0 then return nil, "steps[" .. i .. "].command must be an argv array" end
    for j, a in ipairs(c) do
      if type(a) ~= "string" or a:find("\0", 1, true) then
        return nil, string.format("steps[%d].command[%d] must be a string without NUL bytes", i, j)
      end
    end
    local x = s.expect_exit
    if x ~= nil and math.type(x) ~= "integer" then return nil, "steps[" .. i .. "].expect_exit must be an integer" end
    steps[i] = { command = c, name = type(s.name) == "string" and s.name or nil, expect_exit = x }
  end
  if #steps == 0 then return nil, "the request has no steps" end
  return steps
end

--- unjudged(run, def, args, req) -> why | nil: a project's process tool runs only programs
--- the gate judged or the project allows. The gate's program check (docs/policies.md, check
--- 9) reads the call's argv; a tool that takes its program from another argument (or makes
--- one up) passed it unasked. So each step's program must be args.argv[1] (judged: allowed,
--- a policy's allow, an approval) or one of verify.commands. Orket's own tools (run_tests:
--- the project's own checks; run_command: argv) are not held to it.
function M.unjudged(run, def, args, req)
  local home = rt.home() .. "/tools/"
  local own = def and type(def.file) == "string" and def.file:sub(1, #home) == home
  if own or type(req) ~= "table" or type(req.steps) ~= "table" then return nil end
  local judged = type(args) == "table" and type(args.argv) == "table" and args.argv[1] or nil
  local allowed = {}
  for _, c in ipairs((run.settings.verify or {}).commands or {}) do allowed[c] = true end
  for i, s in ipairs(req.steps) do
    local prog = type(s) == "table" and type(s.command) == "table" and s.command[1]
    if type(prog) == "string" and prog ~= judged and not allowed[prog] then
      return string.format("steps[%d] runs %q, which the gate did not judge (it reads args.argv) and verify.commands "
        .. "does not list: a project's process tool runs only programs the project allows", i, prog)
    end
  end
  return nil
end

-- One finished run as the model reads it.
-- The confinement that held (names) and what did not, with why (the kernel's refusal or
-- "switched off"), so the model and the journal know what the program could reach.
local function shape(step, r)
  local out = { command = argv_text(step.command), reason = r.reason, exit = r.code, signal = r.signal,
    stdout = r.stdout, stderr = r.stderr, wall_ms = math.floor(r.wall_ms or 0),
    layers = table.concat(r.layers or {}, " ") }
  if next(r.missing or {}) then out.layers_missing = r.missing end
  if r.layer_note then out.layers_note = r.layer_note end
  if r.truncated then
    out.truncated = true
    out.stdout_bytes, out.stderr_bytes = r.stdout_bytes, r.stderr_bytes
  end
  return out
end

--- run(run, card_id, name, req, left_ms) -> {ok=true, result=} | {ok=false, error=, code=}
--- Runs the request's steps in order, each confined in the card's workspace (verify.cwd),
--- with verify's layers, require and view paths (verify.run_opts), until one ends other than with its expect_exit
--- (when it gives one). The timeout is the request's, else verify.timeout_ms, cut to what
--- is left of the turn's wall budgets (left_ms, nil: none). A program that ran and failed
--- is a result (ok = true, exit and output); one that could not run is a failure: ENOENT
--- (no such program), ELAYER (a required layer missing), ESPAWN.
function M.run(run, card_id, name, req, left_ms)
  local steps, why = steps_of(req)
  if not steps then return { ok = false, error = name .. ": " .. why, code = "ETOOL" } end
  local v = run.settings.verify or {}
  local cwd, cerr = verify.cwd(run, card_id)
  if not cwd then return { ok = false, error = name .. ": no workspace to run in: " .. tostring(cerr), code = "ESPAWN" } end
  local o, oerr = verify.run_opts(run, v, cwd, name)
  if not o then return { ok = false, error = name .. ": " .. oerr, code = "ESPAWN" } end
  -- a number from JSON (an issue's verification) may be a float: 200.0
  local t = type(req.timeout_ms) == "number" and req.timeout_ms >= 1 and req.timeout_ms < 2 ^ 31 and req.timeout_ms
  local timeout = t and math.floor(t) or v.timeout_ms or 120000
  if left_ms then timeout = math.max(1, math.min(timeout, math.floor(left_ms))) end
  local results, passed = {}, true
  for _, s in ipairs(steps) do
    o.argv, o.cwd, o.timeout_ms, o.output_cap = s.command, cwd, timeout, M.OUTPUT_CAP
    local r, err, code = proc.run(o)
    if not r then
      return { ok = false, error = string.format("%s: %s could not run: %s", name, argv_text(s.command), tostring(err)),
        code = code or "ESPAWN" }
    end
    results[#results + 1] = shape(s, r)
    if s.expect_exit ~= nil and not (r.reason == "exit" and r.code == s.expect_exit) then
      passed = false
      results[#results].failed = s.name or true
      break
    end
  end
  if #steps == 1 and steps[1].expect_exit == nil then return { ok = true, result = results[1] } end
  return { ok = true, result = { passed = passed, runs = results } }
end

return M
