-- bench.tracing: what exporting traces costs a run (docs/observability.md), per card, with
-- tracing on against off in the same run of the bench. The workload: `orket run` on a board
-- of cards (a coder writes a file and hands in, the reviewer approves) with the scripted
-- model; traces go to a port that refuses, so every span is built, encoded and dropped.
-- Per card is the slope between a board of SMALL and one of LARGE cards: what a process
-- pays once (loading libcurl at its first export, which a run whose model is served over
-- HTTP has paid already) is not charged to its cards. Two measures:
--   - instructions, counted by callgrind (valgrind; skipped, and said so, without it): the
--     same every run to a fraction of a percent, so the figure a shared machine cannot move;
--   - CPU time of the process (its own clock, bench/prompt_wire.lua), in ROUNDS rounds that
--     alternate on and off (and which goes first): each round's ratio of the slopes, as
--     min/median/max, and each round's ratio of two LARGE runs (what a whole run pays).
-- Target: the per-card ratio <= 1.05.
--   build/orket lua bench/tracing.lua [ROUNDS [COUNTED_ROUNDS]]   (defaults 9 and 3; about 2 minutes)
package.path = package.orket_home .. "/?.lua;" .. package.path
local cjson = require "cjson"
local stats = require "bench.stats"

local bin = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local root = package.orket_home
local ROUNDS = tonumber(arg and arg[1]) or 9
local COUNTED = tonumber(arg and arg[2]) or 3
local SMALL, LARGE = 10, 50
local OFF, ON = "OTEL_SDK_DISABLED=true", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9"

local H = require "tests.helpers"
local q, write = H.quote, H.write

-- a command's output (its stdout and stderr)
local function sh(cmd) return select(2, H.sh(cmd)) end

-- A board of n cards, imported, in a directory of its own: each run gets a fresh copy.
local templates = {}
local function template(n)
  if templates[n] then return templates[n] end
  local d = sh("mktemp -d /tmp/orket-bench.XXXXXX"):gsub("%s+$", "")
  local issues = {}
  for i = 1, n do issues[i] = { id = "M-" .. i, summary = "Piece " .. i, seat = "senior_developer" } end
  os.execute("mkdir -p " .. q(d .. "/epics"))
  write(d .. "/orket.lua", [[
name = "many"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
concurrency = 2
]])
  write(d .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = { call("write_file", { path = "f.txt", content = "x" }),
    call("add_issue_comment", { body = "Wrote it." }) } } },
  { role = "coder", reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]])
  write(d .. "/epics/m.json", cjson.encode { id = "M", name = "Many", description = "Many small pieces.", issues = issues })
  sh(string.format("cd %s && %s import >/dev/null 2>&1", q(d), q(bin)))
  templates[n] = d
  return d
end

-- runs `orket run M` on a fresh copy of the n-card board under prefix (env and a tool),
-- returns the command's stderr
local function run(n, env, prefix)
  local d = sh("mktemp -d /tmp/orket-bench.XXXXXX"):gsub("%s+$", "")
  os.execute(string.format("cp -R %s/. %s", q(template(n)), q(d)))
  local out = sh(string.format("(cd %s && %s %s %s lua %s - run M 2>&1 >/dev/null)", q(d), env, prefix or "", q(bin),
    q(root .. "/bench/prompt_wire.lua")))
  os.execute("rm -rf " .. q(d))
  return out
end

local function cpu(n, env) return tonumber(run(n, env):match("bench cpu ([%d%.]+)")) end

local function counted(n, env)
  local out = run(n, env, "valgrind --tool=callgrind --callgrind-out-file=/dev/null")
  local c = out:match("Collected : (%d+)")
  return c and tonumber(c)
end

-- rounds(n, measure) -> per card without and with traces, their ratios, and the ratios of
-- two LARGE runs: n rounds of four runs, the sides alternated (a run pays for the disk
-- writes the run before it left: its fsyncs wait on them, so a fixed order charged them to
-- one side), per card the slope between the two sizes
local function rounds(n, measure)
  local r = { off = {}, on = {}, card = {}, whole = {} }
  for i = 1, n do
    local off_l, on_l, off_s, on_s
    if i % 2 == 1 then
      off_l, on_l, off_s, on_s = measure(LARGE, OFF), measure(LARGE, ON), measure(SMALL, OFF), measure(SMALL, ON)
    else
      on_l, off_l, on_s, off_s = measure(LARGE, ON), measure(LARGE, OFF), measure(SMALL, ON), measure(SMALL, OFF)
    end
    if off_l and on_l and off_s and on_s then
      local coff, con = (off_l - off_s) / (LARGE - SMALL), (on_l - on_s) / (LARGE - SMALL)
      r.off[#r.off + 1], r.on[#r.on + 1] = coff, con
      if coff > 0 then r.card[#r.card + 1] = con / coff end
      r.whole[#r.whole + 1] = on_l / off_l
    end
  end
  return r
end

local function scaled(t, k)
  local o = {}
  for i, v in ipairs(t) do o[i] = v * k end
  return o
end

local cpu_r = rounds(ROUNDS, cpu)
local have_valgrind = sh("command -v valgrind"):find("%S") ~= nil
local ins_r = have_valgrind and rounds(COUNTED, counted) or { card = {} }
if not os.getenv("KEEP") then for _, d in pairs(templates) do os.execute("rm -rf " .. q(d)) end end

if #ins_r.card > 0 then
  print(string.format("instructions per card (callgrind, %d rounds, slope of %d against %d cards): without traces "
    .. "(floor) %s M; with traces %s M; ratio %s (target <= 1.05)", #ins_r.card, LARGE, SMALL,
    stats.line(scaled(ins_r.off, 1e-6), "%.3f"), stats.line(scaled(ins_r.on, 1e-6), "%.3f"), stats.line(ins_r.card, "%.3f")))
  print(string.format("instructions of a whole %d-card run (libcurl's loading included): ratio %s", LARGE,
    stats.line(ins_r.whole, "%.3f")))
elseif not have_valgrind then
  print("instructions per card: skipped, valgrind is not installed (scripts/deps.sh --bench)")
else
  print("instructions per card: not measured (a run under callgrind failed)")
end
if #cpu_r.card > 0 then
  print(string.format("CPU per card (%d rounds, slope of %d against %d cards): without traces (floor) %s ms; with "
    .. "traces %s ms; paired ratio %s (target <= 1.05)", #cpu_r.card, LARGE, SMALL, stats.line(scaled(cpu_r.off, 1e3), "%.3f"),
    stats.line(scaled(cpu_r.on, 1e3), "%.3f"), stats.line(cpu_r.card, "%.3f")))
  print(string.format("CPU of a whole %d-card run (libcurl's loading included): paired ratio %s", LARGE,
    stats.line(cpu_r.whole, "%.3f")))
else
  print("CPU per card: not measured (the runs failed)")
end
