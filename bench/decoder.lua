-- bench/decoder.lua: the decoder of streamed chat events (core/chatwire.c through
-- orket.llm.openai, ollama), first on event sequences in memory beside its floor, lua-cjson
-- decoding the same events and nothing more (the least a decoder written in Lua would
-- pay before applying a single rule); then in the transport (64 streams against the fake
-- model server, client CPU per request), decoded inside the request (request{decode=}, one
-- wake per response) beside piece by piece as on_delta takes them. Each pair alternated
-- five times in one run; prints both figures and the ratio, min/median/max.
-- Run: build/orket lua bench/decoder.lua
package.path = package.orket_home .. "/?.lua;" .. package.path
local openai = require "orket.llm.openai"
local ollama = require "orket.llm.ollama"
local llm = require "orket.llm"
local task = require "orket.task"
local json = require "cjson"
local uv = require "luv"

local ROUNDS = 5

local spread = require("bench.stats").spread
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
-- the floor: each event decoded by lua-cjson, nothing kept
local function by_cjson(_, events)
  for i = 1, #events do json.decode(events[i]) end
end
-- the decoder, as a caller without on_delta uses it: every event, then the result
local function by_decoder(kind, events)
  local wire = WIRES[kind]
  local st = wire.new_state()
  for i = 1, #events do assert(not wire.on_event(st, events[i], function() end)) end
  return assert(wire.finish(st, true))
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
  local fs, ds, rs = {}, {}, {}
  for r = 1, ROUNDS do
    fs[r] = us(by_cjson, kind, ev, reps)
    ds[r] = us(by_decoder, kind, ev, reps)
    rs[r] = ds[r] / fs[r]
  end
  print(string.format(" %s (%d events)", name, #ev))
  print(line("floor (cjson only)", fs, "us"))
  print(line("decoder", ds, "us"))
  print(line("decoder / floor", rs, "x"))
end

-- ---- in the transport ------------------------------------------------------------------
-- Without on_delta the request decodes the stream and the task wakes once; with one, each
-- event comes to Lua and its pieces reach the callback as they are decoded.
local fake = require("tests.fake_server").start()
local client = llm.new { default = "fake:chunks=8", providers = { fake = { kind = "openai",
  base_url = fake.url .. "/v1", max_concurrency = 1000, retry = { max_attempts = 1 } } } }
local MSG = { { role = "user", content = "benchmark" } }
local pieces = 0
local function on_delta() pieces = pieces + 1 end
local function run(n, each, model, deltas)
  local tasks = {}
  for i = 1, n do
    tasks[i] = task.spawn(function()
      for _ = 1, each do assert(client:chat { model = model, messages = MSG, on_delta = deltas and on_delta or nil }) end
    end)
  end
  for i = 1, n do assert(tasks[i]:join()) end
end
print("decoder: transport, 64 streams, client CPU per request")
for _, m in ipairs { { "fake:chunks=8,nolog", 10 }, { "fake:chunks=200,nolog", 3 } } do
  local model, each = m[1], m[2]
  run(8, 2, model, false)
  local cs, ps, rs = {}, {}, {}
  for r = 1, ROUNDS do
    for _, deltas in ipairs { false, true } do
      collectgarbage()
      local c0 = os.clock()
      run(64, each, model, deltas)
      local cpu = (os.clock() - c0) * 1e6 / (64 * each)
      if deltas then ps[r] = cpu else cs[r] = cpu end
    end
    rs[r] = ps[r] / cs[r]
  end
  print(" " .. model)
  print(line("in the request", cs, "us"))
  print(line("piece by piece", ps, "us"))
  print(line("pieces / request", rs, "x"))
end
assert(pieces > 0)
fake:stop()
