-- Benchmark of the LLM transport: 1, 64 and 1,000 concurrent streaming chat requests on one
-- loop against the fake model server (a separate process, answering at once), printing
-- requests/s, latency p50/p99 per request (client start to result: includes queueing at
-- the single-threaded server), the added latency p50/p99 (from the server writing its last
-- piece of content to the client holding the whole normalized result, both on
-- CLOCK_MONOTONIC: what the transport, framing, decoding, task wake-up and queueing behind
-- the client's other requests add), errors, peak RSS and RSS per in-flight request. Each
-- concurrency runs in three shapes: "burst" (n requests started together, as a REPL user
-- or a scheduler pass would, bursts 20 ms apart), "steady" (n requests kept in flight,
-- each task starting its next request when the previous ends, like wrk -c n: with a
-- server that answers at once
-- this is a saturation test, and the queue forms in whichever process is slower), and
-- "paced" (steady, but the server streams its 8 pieces 5 ms apart, a model at ~200
-- tokens/s, and the n streams start spread over one answer's time so that, like
-- independent users, they do not finish in lock-step: the load real models put on the
-- transport).
--   build/orket lua bench/llm.lua [ROUNDS]
package.path = package.orket_home .. "/?.lua;" .. package.path
local llm = require "orket.llm"
local task = require "orket.task"
local rt = require "orket.c.runtime"

local rounds = tonumber(arg and arg[1]) or 5
local fake = require("tests.fake_server").start()

local function status_kb(field)
  local f = io.open("/proc/self/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s+(%d+) kB"))
end

local client = llm.new { default = "fake:chunks=8", providers = { fake = { kind = "openai",
  base_url = fake.url .. "/v1", max_concurrency = 1000, retry = { max_attempts = 1 } } } }
local MSG = { { role = "user", content = "benchmark" } }

local hrtime = require("luv").hrtime

-- n tasks, each making `each` requests one after another, so n are in flight at once.
-- each == 1 is a burst: all n start together and the client issues n requests while the
-- first answers arrive. each > 1 is steady state (like wrk -c n): a task's next request
-- starts when its previous one ends; the first request of every task is the burst and is
-- left out of the figures.
local function run(n, model, each, spread_ms)
  local lat, added, errors = {}, {}, 0
  local tasks = {}
  local t0 = rt.now()
  for i = 1, n do
    tasks[i] = task.spawn(function()
      local out = {}
      if spread_ms then orket.sleep((i - 1) * spread_ms / n) end
      for k = 1, each do
        local s = rt.now()
        local r, err = client:chat { model = model, messages = MSG }
        if not r then error(err) end
        local done = hrtime()
        local stamp = tonumber(r.content:match(" end=(%d+)$"))
        if each == 1 or k > 1 then out[#out + 1] = { rt.now() - s, stamp and (done - stamp) / 1e6 } end
      end
      return out
    end)
  end
  for i = 1, n do
    local ok, out = tasks[i]:join()
    if ok then
      for _, v in ipairs(out) do
        lat[#lat + 1] = v[1]
        added[#added + 1] = v[2]
      end
    else
      errors = errors + 1
    end
  end
  return rt.now() - t0, lat, errors, added
end

local pct = require("bench.stats").pct

run(8, "fake:chunks=8,nolog", 1) -- warm up connections and code paths

-- Memory per in-flight request: hold 1,000 streams open (the server waits before its first
-- byte) and compare the resident set with the idle one.
collectgarbage()
local before = status_kb("VmRSS")
local held = {}
for i = 1, 1000 do
  held[i] = task.spawn(function() return client:chat { model = "fake:first_byte_ms=800,nolog", messages = MSG } end)
end
orket.sleep(400)
local during = status_kb("VmRSS")
for i = 1, 1000 do held[i]:join() end
print(string.format("rss idle %d KB, with 1000 in flight %d KB: %.1f KB per in-flight request",
  before, during, (during - before) / 1000))

print(string.format("%-18s %9s %9s %9s %11s %11s %7s", "concurrency", "req/s", "p50 ms", "p99 ms",
  "added p50", "added p99", "errors"))
for _, mode in ipairs { "burst", "steady", "paced" } do
  for _, n in ipairs { 1, 64, 1000 } do
    local all, adds, errs, total_ms, reqs = {}, {}, 0, 0, 0
    -- enough rounds that p99 is not the third-worst answer of a run (64: 1,600 answers)
    local r = n == 1 and rounds * 50 or n == 64 and rounds * 5 or rounds
    local each = mode == "burst" and 1 or 20
    if mode ~= "burst" then r = math.max(1, r // 5) end
    if mode == "paced" then r, each = math.max(1, r // 2), n == 1 and 100 or 10 end
    local model = mode == "paced" and "fake:chunks=8,chunk_ms=5,stamp_end,nolog" or "fake:chunks=8,stamp_end,nolog"
    for _ = 1, r do
      -- paced streams are independent: their starts are spread over one answer's time
      -- (8 pieces 5 ms apart), or they would finish in lock-step, a burst every 45 ms
      local ms, lat, e, added = run(n, model, each, mode == "paced" and 45 or nil)
      -- bursts come apart, as a REPL user's or a scheduler pass's do: the last burst's
      -- streams finish reading their bodies' ends and their connections go back to the
      -- pool before the next one (back to back, some would be opened anew each round)
      if mode == "burst" then orket.sleep(20) end
      total_ms = total_ms + ms
      reqs = reqs + n * each
      errs = errs + e
      for _, v in ipairs(lat) do all[#all + 1] = v end
      for _, v in ipairs(added) do adds[#adds + 1] = v end
    end
    print(string.format("%-18s %9.0f %9.3f %9.3f %11.3f %11.3f %7d", n .. " " .. mode, reqs / (total_ms / 1000),
      pct(all, 0.5), pct(all, 0.99), pct(adds, 0.5), pct(adds, 0.99), errs))
  end
end

print(string.format("peak RSS (VmHWM) %d KB", status_kb("VmHWM")))

-- The floor under the rows above: the same requests to the same server from a C client
-- that only copies bodies (bench/curlfloor.c, built by `make bench`). What it adds is
-- libcurl's, loopback TCP's and the machine's; the rest of the figures above is orket's.
local floor_bin = os.getenv("ORKET_CURLFLOOR")
if floor_bin and io.open(floor_bin) then
  print("libcurl alone (bench/curlfloor.c: one multi handle, bodies copied, no framing, JSON or Lua):")
  for _, shape in ipairs { { 1, rounds * 50, 1, "1 burst" }, { 64, rounds * 5, 1, "64 burst" },
      { 64, math.max(1, rounds), 20, "64 steady" }, { 64, math.max(1, rounds // 2), 10, "64 paced", 45 } } do
    local p = io.popen(string.format("%s %s %s %d %d %d %s", floor_bin, fake.url .. "/v1/chat/completions",
      shape[5] and "fake:chunks=8,chunk_ms=5,stamp_end,nolog" or "fake:chunks=8,stamp_end,nolog", shape[1], shape[2],
      shape[3], shape[5] or ""))
    local out = p:read("a")
    p:close()
    local rps, p50, p99, cpu, errs, d50, d99 = out:match("^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)")
    if rps then
      -- as above, the result is held when the transfer is done; the piece with the stamp
      -- arrives a little before (the server still sends the finish, usage and [DONE])
      print(string.format("%-18s %9.0f %9s %9s %11.3f %11.3f %7d   last piece %.3f/%.3f ms, %s us CPU per request",
        shape[4], tonumber(rps), "", "", tonumber(d50), tonumber(d99), tonumber(errs), tonumber(p50), tonumber(p99), cpu))
    else
      print(shape[4] .. ": curlfloor failed: " .. out)
    end
  end
end

-- The targets, against the floor alternated in this process: orket's 64 streams and
-- curlfloor's same shape, ALT rounds each, in two shapes: steady (a saturation test: with a
-- server that answers at once, the queue forms in whichever process is slower, so the
-- latency there says which side is the bottleneck more than what the transport adds) and
-- paced (the server streaming 8 pieces 5 ms apart, the 64 streams started spread over one
-- answer: the load real models put on the transport, where a queue means the client made
-- one). The order alternates (orket first in odd rounds, the floor first in even ones), so
-- neither always runs on a server just warmed by the other. Figures: the added latency
-- (from the server's stamp to the whole result held: orket's client result, libcurl's
-- transfer done) p50 and p99, and CPU per request (this process's for orket, curlfloor's
-- own). Targets: p99 <= 1.5x the floor's, p50 <= 1.2x, CPU per request <= 1.5x.
if floor_bin and io.open(floor_bin) then
  local ALT = tonumber(os.getenv("ORKET_BENCH_ALT")) or 3
  local uv = require "luv"
  local stats = require "bench.stats"
  local function cpu_now()
    local u = uv.getrusage()
    return (u.utime.sec + u.stime.sec) * 1e6 + u.utime.usec + u.stime.usec
  end
  for _, shape in ipairs { { "steady", "fake:chunks=8,stamp_end,nolog", 20 },
      { "paced", "fake:chunks=8,chunk_ms=5,stamp_end,nolog", 10, 45 } } do
    local name, model, each, spread_ms = shape[1], shape[2], shape[3], shape[4]
    local r50, r99, rcpu = {}, {}, {}
    print(string.format("64 %s streams, alternated with libcurl alone (added latency ms; CPU us per request):", name))
    for round = 1, ALT do
      local o, f = {}, {}
      local function mine()
        local c0 = cpu_now()
        local _, _, errs, added = run(64, model, each, spread_ms)
        o.cpu, o.errs = (cpu_now() - c0) / (64 * each), errs
        o.p50, o.p99 = pct(added, 0.5), pct(added, 0.99)
      end
      local function floor()
        local p = io.popen(string.format("%s %s %s 64 1 %d %s", floor_bin, fake.url .. "/v1/chat/completions", model,
          each, spread_ms or ""))
        local out = p:read("a")
        p:close()
        local _, _, _, fcpu, ferrs, f50, f99 = out:match("^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)")
        f.cpu, f.errs, f.p50, f.p99 = tonumber(fcpu), ferrs, tonumber(f50), tonumber(f99)
        if not f.p99 then error("curlfloor failed: " .. out, 0) end
      end
      if round % 2 == 1 then mine(); floor() else floor(); mine() end
      r50[round], r99[round], rcpu[round] = o.p50 / f.p50, o.p99 / f.p99, o.cpu / f.cpu
      print(string.format("  round %d: floor p50 %.3f p99 %.3f CPU %.0f (%s errors) | orket p50 %.3f p99 %.3f CPU %.0f "
        .. "(%d errors) | ratio p50 %.2f p99 %.2f CPU %.2f", round, f.p50, f.p99, f.cpu, f.errs, o.p50, o.p99, o.cpu,
        o.errs, r50[round], r99[round], rcpu[round]))
    end
    for _, t in ipairs { { r50, 1.2, "p50" }, { r99, 1.5, "p99" }, { rcpu, 1.5, "CPU" } } do
      local _, med = stats.spread(t[1])
      print(string.format("  orket / floor %s %-4s %s; target <= %.1f -> %s", name, t[3], stats.line(t[1]), t[2],
        med <= t[2] and "met" or "MISSED"))
    end
  end
end
fake.stop()

-- The machine's own floor under these figures: how long this process goes without the CPU
-- while it never blocks, alone and with another process keeping every other CPU busy (as
-- the fake server does during the runs above). A gap here is the scheduler or the
-- hypervisor taking the CPU away, and any request in flight then waits for it too.
local function gaps(ms)
  local n3, n10, worst, lost = 0, 0, 0, 0
  local start = hrtime()
  local prev = start
  while prev - start < ms * 1e6 do
    local now = hrtime()
    local g = now - prev
    if g > 3e5 then n3, lost = n3 + 1, lost + g end
    if g > 1e6 then n10 = n10 + 1 end
    if g > worst then worst = g end
    prev = now
  end
  return string.format("%d gaps over 0.3 ms, %d over 1 ms, worst %.2f ms, %.1f ms lost", n3, n10,
    worst / 1e6, lost / 1e6)
end
print("scheduling gaps in 2 s of busy looping, alone:           " .. gaps(2000))
local busy = {}
for i = 1, math.max(1, #require("luv").cpu_info() - 1) do
  busy[i] = io.popen("exec timeout 3 sh -c 'while :; do :; done'", "r")
end
orket.sleep(100)
print("scheduling gaps in 2 s of busy looping, other CPUs busy: " .. gaps(2000))
for _, f in ipairs(busy) do f:close() end
