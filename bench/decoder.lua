-- bench/decoder.lua: the two decoders of streamed chat events side by side: the C decoder
-- (http.decode_stream / request{decode=}, core/chatwire.c) and the Lua wire formats
-- (orket.llm.openai, ollama), first on the same event sequences in memory, then in the
-- transport (64 streams against the fake model server, client CPU per request), each pair
-- alternated five times in one run; prints both figures and the ratio, min/median/max.
-- Run: build/orket lua bench/decoder.lua
package.path = package.orket_home .. "/?.lua;" .. package.path
local http = require "orket.c.http"
local openai = require "orket.llm.openai"
local ollama = require "orket.llm.ollama"
local llm = require "orket.llm"
local task = require "orket.task"
local json = require "cjson"
local uv = require "luv"

local ROUNDS = 5

local function spread(l)
  local s = {}
  for i, v in ipairs(l) do s[i] = v end
  table.sort(s)
  return s[1], s[(#s + 1) // 2], s[#s]
end
local function line(name, l, unit)
  return string.format("  %-22s min %8.2f  median %8.2f  max %8.2f", name, spread(l)) .. (unit and (" " .. unit) or "")
end

-- ---- in memory: the shapes the fake server sends -----------------------------------------
local function delta(d, finish)
  return json.encode { id = "chatcmpl-fake1", object = "chat.completion.chunk", model = "fake:chunks=8",
    choices = { { index = 0, delta = d, finish_reason = finish or json.null } } }
end
local function oa(n)
  local ev = { delta { role = "assistant", content = "" } }
  for i = 1, n do ev[#ev + 1] = delta { content = "tok" .. i .. " " } end
  ev[#ev + 1] = delta({}, "stop")
  ev[#ev + 1] = string.format('{"id":"chatcmpl-fake1","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":%d,"total_tokens":%d}}', n, 11 + n)
  return ev
end
local function tools(n)
  local ev = {}
  for i = 1, n do
    local tc = { index = 0, ["function"] = { arguments = i == 1 and '{"path":' or (i == n and '"a.txt"}' or "") } }
    if i == 1 then tc.id = "call_1"; tc.type = "function"; tc["function"].name = "write_file" end
    ev[#ev + 1] = delta { tool_calls = { tc } }
  end
  ev[#ev + 1] = delta({}, "tool_calls")
  return ev
end
local function ol(n)
  local ev = {}
  for i = 1, n do ev[i] = json.encode { model = "m", message = { role = "assistant", content = "tok" .. i .. " " }, done = false } end
  ev[#ev + 1] = json.encode { model = "m", message = { role = "assistant", content = "" }, done = true, done_reason = "stop", prompt_eval_count = 11, eval_count = n }
  return ev
end
local SHAPES = { { "openai 8 pieces", "openai", oa(8), 2000 }, { "openai 200 pieces", "openai", oa(200), 100 },
  { "openai tool call 8", "openai", tools(8), 2000 }, { "ollama 8 lines", "ollama", ol(8), 2000 } }
local WIRES = { openai = openai, ollama = ollama }
local function by_lua(kind, events)
  local wire = WIRES[kind]
  local st = wire.new_state()
  for i = 1, #events do assert(not wire.on_event(st, events[i], function() end)) end
  return assert(wire.finish(st, true))
end
-- as the transport does: C as far as it goes, the Lua wire format from its state
local function by_c(kind, events)
  local wire = WIRES[kind]
  local d, taken = http.decode_stream(kind, events)
  local st = wire.from_decoded(d)
  for i = taken + 1, #events do assert(not wire.on_event(st, events[i], function() end)) end
  return assert(wire.finish(st, true)), taken
end
local function us(fn, kind, ev, reps)
  collectgarbage()
  local t = uv.hrtime()
  for _ = 1, reps do fn(kind, ev) end
  return (uv.hrtime() - t) / 1e3 / reps
end
print("decoder: in memory, us per stream decoded (events in, result out)")
for _, s in ipairs(SHAPES) do
  local name, kind, ev, reps = s[1], s[2], s[3], s[4]
  local _, taken = by_c(kind, ev)
  local cs, ls, rs = {}, {}, {}
  for r = 1, ROUNDS do
    cs[r] = us(by_c, kind, ev, reps)
    ls[r] = us(by_lua, kind, ev, reps)
    rs[r] = ls[r] / cs[r]
  end
  print(string.format(" %s (%d events, %d of them decoded in C)", name, #ev, taken))
  print(line("C", cs, "us"))
  print(line("Lua", ls, "us"))
  print(line("Lua / C", rs, "x"))
end

-- ---- in the transport ------------------------------------------------------------------
-- The transport decodes in C unless the caller takes deltas; here the option is dropped on
-- the way to the binding, so the same requests go through the Lua wire format instead.
local fake = require("tests.fake_server").start()
local client = llm.new { default = "fake:chunks=8", providers = { fake = { kind = "openai",
  base_url = fake.url .. "/v1", max_concurrency = 1000, retry = { max_attempts = 1 } } } }
local MSG = { { role = "user", content = "benchmark" } }
local request, lua_only = http.request, false
http.request = function(o)
  if lua_only then o.decode = nil end
  return request(o)
end
local function run(n, each, model)
  local tasks = {}
  for i = 1, n do
    tasks[i] = task.spawn(function()
      for _ = 1, each do assert(client:chat { model = model, messages = MSG }) end
    end)
  end
  for i = 1, n do assert(tasks[i]:join()) end
end
print("decoder: transport, 64 streams, client CPU per request")
for _, m in ipairs { { "fake:chunks=8,nolog", 10 }, { "fake:chunks=200,nolog", 3 } } do
  local model, each = m[1], m[2]
  run(8, 2, model)
  local cs, ls, rs = {}, {}, {}
  for r = 1, ROUNDS do
    for _, mode in ipairs { "c", "lua" } do
      lua_only = mode == "lua"
      collectgarbage()
      local c0 = os.clock()
      run(64, each, model)
      local cpu = (os.clock() - c0) * 1e6 / (64 * each)
      if lua_only then ls[r] = cpu else cs[r] = cpu end
    end
    rs[r] = ls[r] / cs[r]
  end
  print(" " .. model)
  print(line("C", cs, "us"))
  print(line("Lua", ls, "us"))
  print(line("Lua / C", rs, "x"))
end
http.request = request
fake:stop()
