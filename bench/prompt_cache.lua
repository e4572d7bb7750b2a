-- bench.prompt_cache: how much of each prompt a provider's prompt cache could reuse on the
-- agent workload (the notes example: coder, tool calls, hand-in, reviewer), from the
-- journal (`orket log --cache --json`, docs/cost.md):
--   same card and seat: the share of prompt characters that repeat the call before on the
--     same card and seat (a cache per conversation, as hosted providers keep);
--   one slot: the share that repeats the call just before, whatever its card and seat (what
--     a one-slot local server, Ollama's or llama.cpp's default, keeps);
-- the tools' and the json dialect's text across three processes (identical or not); and the
-- CPU time of a run with traces exported (to a port that refuses: every span built, encoded
-- and dropped) against one without, in alternated rounds of the same binary.
-- Figures, not pass/fail: the issue's targets are printed beside them.
local cjson = require "cjson"

local bin = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local root = package.orket_home

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local dir = sh("mktemp -d /tmp/orket-bench.XXXXXX"):gsub("%s+$", "")
os.execute("cp -R " .. q(root .. "/examples/notes/.") .. " " .. q(dir))
sh(string.format("cd %s && %s import >/dev/null 2>&1 && %s run NOTES >/dev/null 2>&1", q(dir), q(bin), q(bin)))
local doc = cjson.decode(sh(string.format("cd %s && %s log 1 --cache --json", q(dir), q(bin))))

-- one slot: each call against the call just before, in journal order
local function common_start(a, b)
  local n, i = math.min(#a, #b), 0
  while i < n and a:byte(i + 1) == b:byte(i + 1) do i = i + 1 end
  return i
end
local log = cjson.decode(sh(string.format("cd %s && %s log 1 --json", q(dir), q(bin))))
local prev, slot_prefix, slot_chars = nil, 0, 0
for _, ev in ipairs(log.events) do
  if ev.turn then
    local parts = {}
    for i, m in ipairs(ev.turn.messages) do
      parts[i] = tostring(m.role) .. "\0" .. (type(m.content) == "string" and m.content or "") .. "\1"
    end
    local text = table.concat(parts)
    if prev then
      slot_prefix, slot_chars = slot_prefix + common_start(prev, text), slot_chars + #text
    end
    prev = text
  end
end

-- three processes: the tools as sent and the json dialect's text
local script = dir .. "/tools_text.lua"
local f = assert(io.open(script, "w"))
f:write(string.format([[
local reg = assert(require("orket.tools").load_dirs { %q })
local specs = reg:specs()
local _, text = require("orket.llm.common").wire_tools { tools = specs, fixed_tools = true }
io.write(text, require("orket.engine.prompt").tool_dialect(specs))
]], root .. "/tools"))
f:close()
local texts = {}
for i = 1, 3 do texts[i] = sh(q(bin) .. " lua " .. q(script)) end

-- tracing on against off: user + system CPU seconds of `orket run NOTES`, alternated
local function cpu(env)
  local d = sh("mktemp -d /tmp/orket-bench.XXXXXX"):gsub("%s+$", "")
  os.execute("cp -R " .. q(root .. "/examples/notes/.") .. " " .. q(d))
  sh(string.format("cd %s && %s import >/dev/null 2>&1", q(d), q(bin)))
  local out = sh(string.format("cd %s && %s /usr/bin/time -f 'cpu %%U %%S' %s run NOTES 2>&1 >/dev/null", q(d), env, q(bin)))
  os.execute("rm -rf " .. q(d))
  local u, s = out:match("cpu ([%d%.]+) ([%d%.]+)")
  return u and (tonumber(u) + tonumber(s)) or nil
end
local on, off = {}, {}
for _ = 1, 3 do
  off[#off + 1] = cpu("OTEL_SDK_DISABLED=true")
  on[#on + 1] = cpu("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9")
end
os.execute("rm -rf " .. q(dir))

local function pct(a, b) return b > 0 and 100 * a / b or 0 / 0 end
print(string.format("calls %d; same card and seat: %.1f%% of prompt characters repeated the call before "
  .. "(%d calls after a first)", #doc.calls, pct(doc.total.prefix, doc.total.chars), doc.total.calls))
print(string.format("one slot (whatever card and seat): %.1f%% repeated the call just before (target >= 70%%)",
  pct(slot_prefix, slot_chars)))
print(string.format("tools and tool instructions across 3 processes: %s (target: identical)",
  (texts[1] == texts[2] and texts[1] == texts[3] and #texts[1] > 0) and "identical" or "DIFFERENT"))
local stats = require "bench.stats"
if #on == 3 and #off == 3 then
  local _, mon = stats.spread(on)
  local _, moff = stats.spread(off)
  print(string.format("a run's CPU with traces: median %.3f s, without: %.3f s, ratio %.3f (target <= 1.05)",
    mon, moff, moff > 0 and mon / moff or 0 / 0))
else
  print("a run's CPU with and without traces: not measured (/usr/bin/time gave no figure)")
end
