-- bench.prompt_cache: what a prompt cache keeps of Orket's prompts (docs/cost.md), on three
-- workloads run with the scripted model: the agent workload (the notes example: coder, tool
-- calls, hand-in, reviewer), a long turn (25 steps, past the history window) and a comment
-- made during a turn. Each call is recorded as sent (bench/prompt_wire.lua: its messages and
-- its tools' JSON) and laid out as a local server's chat template renders it (the first
-- system message, the tools, the rest). Per workload:
--   uncached: the prompt characters a cache per card and seat (a hosted provider's) does not
--     hold (each call against the call before on its card and seat), against the floor: what
--     is new in each call (the answers and tool results since the call before; a card and
--     seat's first call whole);
--   one slot: the share that repeats the call just before, whatever its card and seat (what
--     a one-slot local server, Ollama's or llama.cpp's default, keeps);
-- then the tools' and system text across three processes (identical or not), and the CPU
-- time of a run with traces exported (to a port that refuses: every span built, encoded and
-- dropped) against one without, in alternated rounds of the same binary.
-- Figures, not pass/fail: the issue's targets are printed beside them.
local cjson = require "cjson"
local wire = require "bench.prompt_wire"
local stats = require "bench.stats"

local bin = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local root = package.orket_home

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local dirs = {}
local function project(files)
  local d = sh("mktemp -d /tmp/orket-bench.XXXXXX"):gsub("%s+$", "")
  dirs[#dirs + 1] = d
  if files.example then os.execute("cp -R " .. q(root .. "/examples/" .. files.example .. "/.") .. " " .. q(d)) end
  for name, text in pairs(files) do
    if name ~= "example" then
      os.execute("mkdir -p " .. q((d .. "/" .. name):match("^(.*)/")))
      write(d .. "/" .. name, text)
    end
  end
  return d
end

-- record(dir, epic[, comment]) -> the calls of `orket run EPIC` in dir, as sent
local function record(d, epic, comment)
  local out = d .. "/calls.jsonl"
  sh(string.format("cd %s && %s import >/dev/null 2>&1 && %s lua %s %s %s run %s >/dev/null 2>&1", q(d), q(bin), q(bin),
    q(root .. "/bench/prompt_wire.lua"), q(out), comment and q(comment) or "", epic))
  return wire.load(out)
end

-- A one-card epic whose coder takes `steps` steps: it writes a file of `lines` lines (30
-- characters each) at each of the first half, reads them back in the second, then hands in.
local function one_card(id, steps, lines, extra)
  local seq, half = {}, (steps - 1) // 2
  for i = 1, steps - 1 do
    if i <= half then
      seq[#seq + 1] = string.format("{ tool_calls = { call('write_file', { path = 'notes/%d.txt', "
        .. "content = string.rep('note %d: a line of the notes\\n', %d) }) } }", i, i, lines)
    else
      seq[#seq + 1] = string.format("{ tool_calls = { call('read_file', { path = 'notes/%d.txt' }) } }", i - half)
    end
  end
  seq[#seq + 1] = "{ tool_calls = { call('add_issue_comment', { body = 'Done.' }), call('update_issue_status', { status = 'code_review' }) } }"
  return {
    ["orket.lua"] = string.format([[
name = "notes"
vision = "A tiny notes service."
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
budgets = { steps_per_turn = %d, tool_calls_per_turn = %d, tokens_per_card = 0 }
%s
]], steps + 15, 2 * steps + 10, extra or ""),
    ["script.lua"] = string.format([[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "%s-1", sequence = { %s } },
  { role = "integrity_guard", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]], id, table.concat(seq, ",\n")),
    ["epics/e.json"] = cjson.encode { id = id, name = "Work", description = "One long piece of work.",
      issues = { { id = id .. "-1", summary = "Keep notes in a file", seat = "senior_developer",
        acceptance = { "notes.txt holds the notes" } } } },
  }
end

local workloads = {
  { name = "agent (notes example)", calls = record(project { example = "notes" }, "NOTES") },
  -- the default context settings (max_chars 32000, keep_percent 15): steps of about 1,700
  -- characters pass the window at about the 19th, and again every 17 steps after a move
  { name = "long turn (25 steps of about 1,700 characters, past context.max_chars)",
    calls = record(project(one_card("LONG", 25, 53)), "LONG") },
  { name = "longer turn (60 steps of about 1,700 characters)",
    calls = record(project(one_card("LONGER", 60, 53)), "LONGER") },
  { name = "a comment during a turn (at step 4 of 8)",
    calls = record(project(one_card("COM", 8, 20)), "COM", "comment=COM-1@4") },
}

local function pct(a, b) return b > 0 and 100 * a / b or 0 / 0 end
for _, w in ipairs(workloads) do
  local m = wire.measure(w.calls)
  print(string.format("%s: %d calls, %d prompt characters, the summary moved %d times", w.name, m.calls, m.chars,
    m.moves))
  if m.calls > 0 then
    local unc = m.chars - m.conv
    print(string.format("  uncached (cache per card and seat): %d characters, floor %d, ratio %.2f (target <= 1.2); "
      .. "per call: %s", unc, m.floor, m.floor > 0 and unc / m.floor or 0 / 0, stats.line(m.ratios)))
    print(string.format("  one slot (whatever card and seat): %.1f%% repeated the call just before (target >= 70%%)",
      pct(m.slot, m.chars)))
  end
end

-- three processes: each seat's system message and tools as sent, in two more runs of the
-- agent workload (the first is the one measured above)
local function seats_text(calls)
  local by_seat, names = {}, {}
  for _, c in ipairs(calls) do
    if not by_seat[c.seat] then
      names[#names + 1] = c.seat
      by_seat[c.seat] = (c.messages[1] and c.messages[1].content or "") .. "\0" .. (c.tools or "")
    end
  end
  table.sort(names)
  local parts = {}
  for _, n in ipairs(names) do parts[#parts + 1] = n .. "\0" .. by_seat[n] end
  return table.concat(parts, "\1")
end
local texts = { seats_text(workloads[1].calls) }
for i = 2, 3 do texts[i] = seats_text(record(project { example = "notes" }, "NOTES")) end

-- tracing on against off: the CPU time of `orket run` (this process's clock, around the
-- command: bench/prompt_wire.lua) on a board of n cards (a coder writes and hands in, the
-- reviewer approves), traces exported to a port that refuses (every span built, encoded and
-- dropped), alternated with runs without. The per-card figure is the slope between two
-- board sizes, so what a process pays once (loading libcurl for the first export, which a
-- run with a model server has loaded already) is not charged to its cards.
local function board(n)
  local issues = {}
  for i = 1, n do issues[i] = { id = "M-" .. i, summary = "Piece " .. i, seat = "senior_developer" } end
  return project {
    ["orket.lua"] = [[
name = "many"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
concurrency = 2
]],
    ["script.lua"] = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = { call("write_file", { path = "f.txt", content = "x" }),
    call("add_issue_comment", { body = "Wrote it." }) } } },
  { role = "coder", reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]],
    ["epics/m.json"] = cjson.encode { id = "M", name = "Many", description = "Many small pieces.", issues = issues },
  }
end
local function cpu(n, env)
  local d = board(n)
  local out = sh(string.format("cd %s && %s import >/dev/null 2>&1 && %s %s lua %s - run M 2>&1 >/dev/null", q(d), q(bin),
    env, q(bin), q(root .. "/bench/prompt_wire.lua")))
  os.execute("rm -rf " .. q(d))
  return tonumber(out:match("bench cpu ([%d%.]+)"))
end
local SMALL, LARGE, ROUNDS = 10, 50, 7
local OFF, ON = "OTEL_SDK_DISABLED=true", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9"
local runs = { off = {}, on = {}, off_small = {}, on_small = {} }
for r = 1, ROUNDS do
  -- which goes first alternates: a run pays for the disk writes the run before it left
  -- (its fsyncs wait on them), so a fixed order charged them to one side
  local a, b, c, e
  if r % 2 == 1 then
    a, b, c, e = cpu(LARGE, OFF), cpu(LARGE, ON), cpu(SMALL, OFF), cpu(SMALL, ON)
  else
    b, a, e, c = cpu(LARGE, ON), cpu(LARGE, OFF), cpu(SMALL, ON), cpu(SMALL, OFF)
  end
  if a and b and c and e then
    runs.off[#runs.off + 1], runs.on[#runs.on + 1] = a, b
    runs.off_small[#runs.off_small + 1], runs.on_small[#runs.on_small + 1] = c, e
  end
end
-- the per-card slope from each size's least CPU: other work on the machine only adds to a
-- run's CPU time, and a difference of two noisy medians swung by a quarter between rounds
local function least(t) return (stats.spread(t)) end
runs.card_off = #runs.off > 0 and (least(runs.off) - least(runs.off_small)) / (LARGE - SMALL) or nil
runs.card_on = #runs.on > 0 and (least(runs.on) - least(runs.on_small)) / (LARGE - SMALL) or nil
-- the tracer's own CPU per card, in this process: the events of a run of LARGE cards (its
-- --json stream) turned into spans and encoded in batches as the exporter sends them (the
-- sending left out), against the CPU per card of a run without traces (runs.card_off)
local events = {}
do
  local d = board(LARGE)
  local out = sh(string.format("cd %s && %s import >/dev/null 2>&1 && %s %s run M --json 2>/dev/null", q(d), q(bin), OFF, q(bin)))
  for line in out:gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and type(ev) == "table" and ev.type then
      -- lua-cjson reads every number as a float; the engine's ids, steps and tokens are integers
      for k, v in pairs(ev) do
        if type(v) == "number" then ev[k] = math.tointeger(v) or v end
      end
      events[#events + 1] = ev
    end
  end
end
local otel = require "orket.otel"
local ocfg = otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end)
local tracer_card = {}
for _ = 1, ROUNDS do
  local t0, reps = os.clock(), 20
  for _ = 1, reps do
    local tr = otel.new(ocfg, "many")
    tr.flush = function(self) -- encode each batch, as the exporter's task does, and drop it
      if #self.queue > 0 then self:body(self.queue) end
      self.queue, self.metrics_body = {}, nil
    end
    for _, ev in ipairs(events) do tr:event(ev) end
  end
  tracer_card[#tracer_card + 1] = (os.clock() - t0) / reps / LARGE
end
if not os.getenv("KEEP") then for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end end

print(string.format("each seat's tools and system text across 3 processes: %s (target: identical)",
  (texts[1] == texts[2] and texts[1] == texts[3] and #texts[1] > 0) and "identical" or "DIFFERENT"))
if #runs.on > 0 then
  local function ms(t) local o = {} for i, v in ipairs(t) do o[i] = v * 1000 end return o end
  local _, moff = stats.spread(runs.off)
  local _, mon = stats.spread(runs.on)
  print(string.format("a run of %d cards, CPU: without traces (floor) %s ms; with traces %s ms; ratio %.3f",
    LARGE, stats.line(ms(runs.off), "%.1f"), stats.line(ms(runs.on), "%.1f"), mon / moff))
  local coff, con = runs.card_off, runs.card_on
  print(string.format("CPU per card (the least of %d runs of %d cards against of %d): without traces (floor) %.3f ms; "
    .. "with traces %.3f ms; ratio %.3f (target <= 1.05)", #runs.on, LARGE, SMALL, coff * 1000, con * 1000, con / coff))
  local tcard = stats.spread(tracer_card) -- the least, as the runs' per card
  print(string.format("the tracer's own CPU per card (%d events of a %d-card run, spans built and encoded): %s ms; "
    .. "with the run's per card without traces (floor, %.3f ms): ratio %.3f (target <= 1.05)", #events, LARGE,
    stats.line(ms(tracer_card), "%.3f"), coff * 1000, (coff + tcard) / coff))
else
  print("a run's CPU with and without traces: not measured")
end
