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
-- then the tools' and system text across three processes (identical or not). What tracing
-- costs is bench/tracing.lua's.
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

if not os.getenv("KEEP") then for _, d in ipairs(dirs) do os.execute("rm -rf " .. q(d)) end end

print(string.format("each seat's tools and system text across 3 processes: %s (target: identical)",
  (texts[1] == texts[2] and texts[1] == texts[3] and #texts[1] > 0) and "identical" or "DIFFERENT"))
