-- bench/gate_check.lua: the gate's check alone, in a loop, with the input a run's turn hands
-- it (orket.engine.turn's execute: the coder's tools as the allowed list, the default
-- policies, the turn's counters and card facts, a recorder that keeps an allowed call's code),
-- for counting a check under callgrind: run it with N and 2N checks and divide the
-- difference by N (docs/engine.md, "Benchmark").
-- Run: build/orket lua bench/gate_check.lua [N] [nogc] [deny]
--   nogc: the collector stopped for the loop; deny: a call the policies refuse (a secrets
--   file), which records a decision and a violation, in place of update_issue_status.
local gate = require "orket.gate"
local tools = require "orket.tools"
local policy = require "orket.policy"

local n = tonumber(arg and arg[1]) or 1000
local flags = {}
for i = 2, arg and #arg or 0 do flags[arg[i]] = true end

local home = orket.home
local reg = assert(tools.load_dirs { home .. "/tools" })
local set = assert(policy.load(policy.files_in { home .. "/policies" }))
local coder = dofile(home .. "/roles/coder.lua")

local actor = { seat = "senior_developer", roles = { "coder" } }
local facts = { id = "ISS-1", status = "in_progress", type = "issue", worked_by = "senior_developer", deps_done = true }
local counters = { turn = { calls = 1, bytes = 0, files = 0 }, run = { calls = 40, bytes = 1200, files = 3 } }
local limits = { calls_turn = 50, calls_run = 1000, bytes_turn = 4 * 1024 * 1024, bytes_run = 64 * 1024 * 1024,
  files_turn = 100, files_run = 2000 }
local commands = { "make", "make test" }
local exec = {}
local kept = 0
local function record(kind, d) -- as the turn's recorder reads a decision
  if kind == "gate_decision" and d.verdict == "allow" then
    exec.allowed_by = d.code or "ALLOWED"
  else
    kept = kept + #d.tool + (d.code and 1 or 0)
  end
end

local tool, args = "update_issue_status", nil
if flags.deny then tool = "read_file" end
local function input(i)
  if flags.deny then args = { path = "conf/" .. (i % 7) .. ".env" }
  else args = { status = "code_review" } end
  return {
    actor = actor, tool = tool, args = args, card = facts, counters = counters, allowed = coder.tools,
    record = record, tools = reg, policies = set, limits = limits, commands = commands,
  }
end

-- the loop's verdicts are checked once, so a change that broke the check shows here
local d = gate.check(input(0))
assert(d.verdict == (flags.deny and "deny" or "allow"), d.verdict .. " " .. tostring(d.code) .. " " .. tostring(d.reason))
collectgarbage()
if flags.nogc then collectgarbage("stop") end
local t0 = orket.now()
for i = 1, n do gate.check(input(i)) end
local ms = orket.now() - t0
print(string.format("gate.check %s x%d  %.2f us/check", tool, n, ms * 1000 / n))
