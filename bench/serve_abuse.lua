-- Benchmark of orket serve under connection abuse (docs/serve.md, Limits), its default
-- connection limits (512 connections, 64 per address, headers within 10 s) unchanged; only
-- the per-address request rate is raised, so that the probe itself is never refused.
-- 1. Latency beside a flood: one client asks GET /health and a small GET /v1/cards/{id}, one
--    request at a time, PROBES times each, on an idle server (the floor) and then while 400
--    idle connections and 64 slow clients (a header byte every 500 ms) hold the server (464,
--    under the cap), alternated ROUNDS times. Target: each route's p99 within 2x the idle
--    server's p99 of the same round.
-- 2. Recovery after the cap: 520 idle connections at once (past the cap: 8 wait in the
--    backlog), held past the header deadline (here HEADER_MS, shortened so the rounds stay
--    short), then closed; the time until GET /health answers again. Target: within one
--    header deadline (before the fix for the cap it never answered again).
--   build/orket lua bench/serve_abuse.lua [ROUNDS] [PROBES] [HEADER_MS]
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local cjson = require "cjson"
local task = require "orket.task"
local http = require "orket.c.http"
local sleep = require("orket.c.runtime").sleep
local stats = require "bench.stats"
local spawn = require "bench.spawn"

local ROUNDS = tonumber(arg and arg[1]) or 3
local PROBES = tonumber(arg and arg[2]) or 200
local HEADER_MS = tonumber(arg and arg[3]) or 3000
local ORKET = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local RATE = "addr_rate=1000000000,addr_burst=1000000000"

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A project with one epic of 20 issues, imported.
local function project()
  local dir = io.popen("mktemp -d /tmp/orket-bench.XXXXXX"):read("l")
  uv.fs_mkdir(dir .. "/epics", 493)
  local issues = {}
  for i = 1, 20 do issues[i] = { id = "S-" .. i, summary = "Issue " .. i, seat = "senior_developer" } end
  write(dir .. "/epics/bench.json", cjson.encode { id = "S", name = "Bench", issues = issues })
  local db = assert(require("orket.store").open(dir .. "/.orket/orket.db"))
  assert(require("orket.import").import(db, dir))
  db:close()
  return dir
end

-- One GET -> status, ms
local function get(url, timeout_ms)
  local t0 = uv.hrtime()
  local r = http.request { url = url, total_timeout_ms = timeout_ms }
  if not r then return nil, (uv.hrtime() - t0) / 1e6 end
  local status = r:headers()
  while status do
    local ev = r:read()
    if not ev then break end
  end
  r:close()
  return status, (uv.hrtime() - t0) / 1e6
end

-- PROBES requests to url one after another -> their times (ms); every one must answer 200
local function probe(url)
  local t = {}
  for i = 1, PROBES do
    local st, ms = get(url, 10000)
    assert(st == 200, "the probe of " .. url .. " got " .. tostring(st))
    t[i] = ms
  end
  return t
end

-- n connections, 50 from each loopback address from 127.0.0.FIRST on -> list; each is
-- idle, or (slow) sends a request's headers a byte every 500 ms and never ends them
local function connections(port, n, first, per, slow)
  local list, open = {}, 0
  for i = 1, n do
    local c = uv.new_tcp()
    list[i] = c
    c:bind("127.0.0." .. (first + (i - 1) // per), 0)
    c:connect("127.0.0.1", port, function(err)
      open = open + 1
      if err or not slow then return end
      c:write("GET /health HTTP/1.1\r\nHost: localhost\r\n")
      c:read_start(function() end)
      local t = uv.new_timer()
      t:start(500, 500, function()
        if c:is_closing() then t:close() else c:write("X") end
      end)
    end)
  end
  while open < n do sleep(10) end
  return list
end

local function close_all(list)
  for _, c in ipairs(list) do if not c:is_closing() then c:close() end end
end

local function latency_part(dir)
  local s = spawn.serve(ORKET, dir, RATE)
  local base = "http://127.0.0.1:" .. s.port
  local routes = { { "/health", "/health" }, { "card", "/v1/cards/S-7" } }
  get(base .. routes[2][2], 10000) -- warm: the first card read loads what later ones share
  local ratios = { {}, {} }
  print(string.format("Latency beside a flood: %d requests per route one at a time, idle (the floor) and with 400 idle "
    .. "connections and 64 slow clients open (default limits), %d rounds", PROBES, ROUNDS))
  for round = 1, ROUNDS do
    local idle = {}
    for k, r in ipairs(routes) do idle[k] = probe(base .. r[2]) end
    local held = connections(s.port, 400, 2, 50, false)
    local slow = connections(s.port, 64, 10, 32, true)
    sleep(200) -- the server has taken them all
    local loaded = {}
    for k, r in ipairs(routes) do loaded[k] = probe(base .. r[2]) end
    close_all(held)
    close_all(slow)
    for k, r in ipairs(routes) do
      local f, v = stats.pct(idle[k], 0.99), stats.pct(loaded[k], 0.99)
      ratios[k][round] = v / f
      print(string.format("  %-7s round %d: floor (idle) p99 %6.2f ms p50 %6.2f ms | under the flood p99 %6.2f ms "
        .. "p50 %6.2f ms | ratio p99 %.2f", r[1], round, f, stats.pct(idle[k], 0.5), v, stats.pct(loaded[k], 0.5), v / f))
    end
    sleep(500) -- the closes are taken before the next idle round
  end
  for k, r in ipairs(routes) do
    local _, med = stats.spread(ratios[k])
    print(string.format("  %-7s p99 under the flood / idle p99: %s; target <= 2 -> %s", r[1], stats.line(ratios[k]),
      med <= 2 and "met" or "MISSED"))
  end
  s.stop()
end

local function recovery_part(dir)
  local s = spawn.serve(ORKET, dir, RATE .. ",header_timeout_ms=" .. HEADER_MS)
  local url = "http://127.0.0.1:" .. s.port .. "/health"
  local took = {}
  print(string.format("Recovery after the cap: 520 idle connections at once (cap 512), held %d ms (the header deadline, "
    .. "%d ms, and 1 s), closed; then GET /health until it answers, %d rounds", HEADER_MS + 1000, HEADER_MS, ROUNDS))
  for round = 1, ROUNDS do
    local held = connections(s.port, 520, 20 + (round - 1) * 11, 50, false)
    sleep(HEADER_MS + 1000)
    close_all(held)
    local t0 = uv.hrtime()
    local st
    repeat
      st = get(url, 200)
    until st == 200 or (uv.hrtime() - t0) / 1e6 > 3 * HEADER_MS
    took[round] = (uv.hrtime() - t0) / 1e6
    print(string.format("  round %d: answered %s after %.1f ms; / the header deadline: %.3f", round,
      st == 200 and "200" or "NOTHING", took[round], took[round] / HEADER_MS))
    sleep(500)
  end
  local r = {}
  for i, v in ipairs(took) do r[i] = v / HEADER_MS end
  print(string.format("  time to answer again / the header deadline: %s; target <= 1 -> %s", stats.line(r, "%.3f"),
    stats.pct(r, 1) <= 1 and "met" or "MISSED"))
  s.stop()
end

local t = task.spawn(function()
  local dir = project()
  latency_part(dir)
  recovery_part(dir)
  os.execute("rm -rf '" .. dir .. "'")
end)
local ok, err = t:join()
if not ok then error(err, 0) end
