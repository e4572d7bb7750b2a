-- Benchmark of orket serve (docs/serve.md) on a 1,000-card board.
-- 1. HTTP: wrk at 64 connections against GET /health and GET /v1/board, alternated ROUNDS
--    times with the floor, bench/mhdfloor.c (a bare libmicrohttpd server on a libuv loop,
--    driven the same way, answering the same bytes from responses built once). orket's
--    server runs in this process, on this loop, logging to /dev/null as it would to stderr;
--    a 1 ms timer on the same loop stands for an engine turn waiting to run, and its worst
--    lateness under each route's load is compared with the longest single request's
--    handling (the log line's "us"); and, free of the machine's noise, the most requests
--    finished while it was overdue (between its due time and its firing).
--    Targets: /health >= 0.5x the floor's requests/s; GET /v1/board p99 < 5 ms; the timer
--    delayed by one request's handling at most: at most 1 request finished while overdue
--    (its worst lateness against the longest handling is printed too, but on a busy machine
--    the scheduler's pauses land in both).
-- 2. SSE fan-out: `orket serve` as its own process, SUBS subscribers to one run's events
--    (GET /v1/runs/ID/events) opened from here on loopback, then COMMITS journal commits
--    from this process (another connection, as `orket comment` would be): the time from
--    the commit to the last subscriber's receipt (p50/p99), and the server's RSS growth per
--    subscriber (VmRSS after the subscribers minus before, / SUBS), ROUNDS times.
--    Target: <= 20 KB each at the median.
--   build/orket lua bench/serve.lua [ROUNDS] [SECONDS] [SUBS] [COMMITS]
-- ORKET_BENCH_PART=http or sse runs that part alone.
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local cjson = require "cjson"
local task = require "orket.task"
local jsonout = require "orket.jsonout"

local ROUNDS = tonumber(arg and arg[1]) or 3
local SECONDS = tonumber(arg and arg[2]) or 3
local SUBS = tonumber(arg and arg[3]) or 1000
local COMMITS = tonumber(arg and arg[4]) or 20
local CONNS = 64

local ORKET = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local FLOOR = os.getenv("ORKET_MHDFLOOR") or (package.orket_home .. "/build/mhdfloor")

-- The subscribers need a descriptor each, here and in the server: raise the soft limit by
-- running again under `ulimit -n` when it is too low (luv cannot set it).
local function nofile()
  local f = io.open("/proc/self/limits")
  local s = f and f:read("a") or ""
  if f then f:close() end
  local soft = s:match("Max open files%s+(%d+)")
  return tonumber(soft) or math.huge
end
local NEED = SUBS * 2 + 256
if nofile() < NEED and os.getenv("ORKET_BENCH_RAISED") == nil then
  local cmd = string.format("ulimit -n %d && ORKET_BENCH_RAISED=1 exec %q lua %q %d %d %d %d", NEED, ORKET,
    package.orket_home .. "/bench/serve.lua", ROUNDS, SECONDS, SUBS, COMMITS)
  local ok = os.execute(cmd)
  if not ok then error("bench/serve.lua: could not run again with a higher descriptor limit (" .. NEED .. ")", 0) end
  return
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local stats = require "bench.stats"
local spawn = require "bench.spawn"
local run = spawn.run -- a program run to its end
local pct = stats.pct
local spread = stats.line

-- A project with one epic of 1,000 issues, imported (as bench/engine.lua makes it).
local function project(n)
  local dir = io.popen("mktemp -d /tmp/orket-bench.XXXXXX"):read("l")
  uv.fs_mkdir(dir .. "/epics", 493)
  local issues = {}
  for i = 1, n do
    issues[i] = { id = "S-" .. i, summary = "Issue " .. i, description = "Benchmark issue number " .. i .. ".",
      seat = "senior_developer", depends_on = (i % 10 == 0) and { "S-" .. (i - 1) } or nil }
  end
  write(dir .. "/epics/bench.json", cjson.encode { id = "S", name = "Bench", issues = issues })
  local db = assert(require("orket.store").open(dir .. "/.orket/orket.db"))
  assert(require("orket.import").import(db, dir))
  return dir, db
end


-- A wrk figure in milliseconds from "12.3us", "1.5ms", "2.0s"
local function ms(v, unit)
  v = tonumber(v)
  if unit == "us" then return v / 1e3 elseif unit == "s" then return v * 1e3 elseif unit == "m" then return v * 6e4 end
  return v
end

-- wrk at CONNS connections for SECONDS on url -> {rps=, p50=, p99=} (ms)
local function wrk(url)
  local code, out = run("wrk", { "-t", "1", "-c", tostring(CONNS), "-d", SECONDS .. "s", "--latency", url })
  assert(code == 0, "wrk failed: " .. out)
  local r = { rps = tonumber(out:match("Requests/sec:%s+([%d.]+)")) }
  local v, u = out:match("\n%s+50%%%s+([%d.]+)(%a+)")
  r.p50 = ms(v, u)
  v, u = out:match("\n%s+99%%%s+([%d.]+)(%a+)")
  r.p99 = ms(v, u)
  local non2xx = out:match("Non%-2xx or 3xx responses: (%d+)")
  assert(not non2xx, "wrk saw error answers (" .. tostring(non2xx) .. "): " .. out)
  assert(r.rps and r.p50 and r.p99, "cannot read wrk's output: " .. out)
  return r
end

-- Starts a program that prints its address on the first line of stdout; -> handle, port
local function start_server(file, args, pattern)
  local co = coroutine.running()
  local out = uv.new_pipe(false)
  local h = assert(uv.spawn(file, { args = args, stdio = { nil, out, 2 } }, function() end))
  local buf, port = ""
  out:read_start(function(err, data)
    if port or not data then return end
    buf = buf .. data
    local p = buf:match(pattern)
    if p then
      port = tonumber(p)
      task.resume(co)
    end
  end)
  coroutine.yield()
  return h, port, out
end

local function rss_kb(pid)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s+(%d+) kB"))
end

-------------------------------------------------------------------------------------------
-- 1. HTTP
local function http_part(dir, db)
  local serve = require "orket.serve"
  local limits = assert(serve.limits("max_connections=4096,max_per_ip=4096,addr_rate=1000000000,addr_burst=1000000000"))
  local devnull = assert(io.open("/dev/null", "w"))
  devnull:setvbuf("no") -- a write per line, as to stderr
  local handled = {}
  local due, overdue = nil, 0 -- the timer's due time (hrtime); requests finished after it
  local server = assert(serve.new { dir = dir, db = db, host = "127.0.0.1", port = 0, limits = limits,
    log = function(line)
      local us = line:match('"us":(%d+)')
      if us then handled[#handled + 1] = tonumber(us) end
      if due and uv.hrtime() > due then overdue = overdue + 1 end
      devnull:write(line, "\n")
    end })
  local running = task.spawn(server.run, server)
  local board = jsonout.encode(assert(require("orket.views.board").json_doc(db))) .. "\n"
  local bfile = dir .. "/board.json"
  write(bfile, board)
  local fh, fport, fout = start_server(FLOOR, { bfile }, "port (%d+)")

  -- the stand-in for an engine turn: a 1 ms timer on this loop, its lateness recorded
  local late, timer, armed, behind = {}, uv.new_timer(), nil, {}
  local function arm()
    armed = uv.hrtime()
    due, overdue = armed + 1e6, 0
    timer:start(1, 0, function()
      late[#late + 1] = math.max(0, (uv.hrtime() - armed) / 1e6 - 1)
      behind[#behind + 1] = overdue
      arm()
    end)
  end

  local res = { health = { floor = {}, orket = {} }, board = { floor = {}, orket = {} } }
  local lateness = { health = {}, board = {} } -- per route: its rounds' samples, pooled
  local handled_ms = { health = {}, board = {} }
  local overdue_max = { health = 0, board = 0 }
  for round = 1, ROUNDS do
    for _, what in ipairs { "health", "board" } do
      local path = what == "health" and "/health" or "/v1/board"
      res[what].floor[round] = wrk("http://127.0.0.1:" .. fport .. path)
      late, handled, behind = {}, {}, {}
      uv.update_time()
      arm()
      res[what].orket[round] = wrk("http://127.0.0.1:" .. server:port() .. path)
      timer:stop()
      due = nil
      for _, n in ipairs(behind) do overdue_max[what] = math.max(overdue_max[what], n) end
      res[what].orket[round].late_p99, res[what].orket[round].late_max = pct(late, 0.99), pct(late, 1)
      res[what].orket[round].h_max = pct(handled, 1) / 1e3
      res[what].orket[round].h_p99 = pct(handled, 0.99) / 1e3
      for _, v in ipairs(late) do lateness[what][#lateness[what] + 1] = v end
      for _, v in ipairs(handled) do handled_ms[what][#handled_ms[what] + 1] = v / 1e3 end
    end
  end
  timer:close()
  fh:kill("sigterm")
  fh:close()
  fout:close()
  task.spawn(server.stop, server):join()
  running:join()
  devnull:close()

  print(string.format("HTTP: wrk -t1 -c%d -d%ds --latency, %d rounds alternated with the floor (bench/mhdfloor.c); "
    .. "board body %d bytes (%d cards)", CONNS, SECONDS, ROUNDS, #board, db:row("SELECT count(*) AS n FROM cards").n))
  for _, what in ipairs { "health", "board" } do
    local f, o = res[what].floor, res[what].orket
    local rps_r, p50_r, p99_r = {}, {}, {}
    for i = 1, ROUNDS do
      print(string.format("  %-6s round %d: floor %8.0f req/s p50 %6.2f ms p99 %6.2f ms | orket %8.0f req/s p50 %6.2f ms "
        .. "p99 %6.2f ms | ratio req/s %.2f p50 %.2f p99 %.2f", what, i, f[i].rps, f[i].p50, f[i].p99,
        o[i].rps, o[i].p50, o[i].p99, o[i].rps / f[i].rps, o[i].p50 / f[i].p50, o[i].p99 / f[i].p99))
      rps_r[i], p50_r[i], p99_r[i] = o[i].rps / f[i].rps, o[i].p50 / f[i].p50, o[i].p99 / f[i].p99
    end
    print(string.format("  %-6s orket/floor req/s: %s", what, spread(rps_r)))
    print(string.format("  %-6s orket/floor p50:   %s", what, spread(p50_r)))
    print(string.format("  %-6s orket/floor p99:   %s", what, spread(p99_r)))
  end
  local hr, bp = {}, {}
  for i = 1, ROUNDS do
    hr[i] = res.health.orket[i].rps / res.health.floor[i].rps
    bp[i] = res.board.orket[i].p99
  end
  print(string.format("  target /health >= 0.5x the floor's req/s: median %.2f -> %s", pct(hr, 0.5),
    pct(hr, 0.5) >= 0.5 and "met" or "MISSED"))
  local fp = {}
  for i = 1, ROUNDS do fp[i] = res.board.floor[i].p99 end
  print(string.format("  target GET /v1/board p99 < 5 ms at %d connections: %s ms -> %s (the floor's p99: %s ms)", CONNS,
    spread(bp), pct(bp, 0.5) < 5 and "met" or "MISSED", spread(fp)))
  -- With every connection always waiting on an answer, the mean latency is the connections
  -- over the requests/s (Little's law): the floor's own throughput sets the least p50 there.
  local least = {}
  for i = 1, ROUNDS do least[i] = CONNS / res.board.floor[i].rps * 1e3 end
  print(string.format("  %d connections / the floor's board req/s = %s ms: the mean latency no server reaches "
    .. "below, on this machine, without answering faster than the floor", CONNS, spread(least)))
  -- "never delayed by more than one request's handling": the worst lateness against the
  -- longest handling, per route (pooled, the board's many samples would hide /health's few)
  for _, what in ipairs { "health", "board" } do
    local l, h = lateness[what], handled_ms[what]
    local lmax, hmax = pct(l, 1), pct(h, 1)
    print(string.format("  1 ms timer on the serve loop under %s load: %d firings in %d s; lateness p50 %.2f p99 %.2f "
      .. "max %.2f ms; one request's handling p99 %.2f max %.2f ms; worst lateness / longest handling %.2f "
      .. "(the scheduler's pauses of the process land in both)",
      what, #l, ROUNDS * SECONDS, pct(l, 0.5), pct(l, 0.99), lmax, pct(h, 0.99), hmax, lmax / hmax))
    print(string.format("  the timer under %s load: at most %d request(s) finished while it was overdue; target <= 1 -> %s",
      what, overdue_max[what], overdue_max[what] <= 1 and "met" or "MISSED"))
  end
end

-------------------------------------------------------------------------------------------
-- 2. SSE fan-out
local function sse_part(dir, db)
  local run_id = assert(db:record_run { target = "S", kind = "bench" })
  local srv = spawn.serve(ORKET, dir, "max_connections=" .. (SUBS + 64) .. ",max_per_ip=" .. (SUBS + 64)
    .. ",addr_rate=1000000000,addr_burst=1000000000")
  local port, pid = srv.port, srv.pid
  local co = coroutine.running()
  -- warm: a board read and one subscriber come and gone, so the baseline holds what the
  -- first request loads
  run("wrk", { "-t", "1", "-c", "4", "-d", "1s", "http://127.0.0.1:" .. port .. "/v1/board" })
  local before = rss_kb(pid)

  local request = string.format("GET /v1/runs/%d/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n",
    run_id, port)
  local clients, ready, waiting, mark, got, t_commit = {}, 0, nil, nil, 0, nil
  local lat = {}
  for i = 1, SUBS do
    local c = { tcp = uv.new_tcp(), tail = "" }
    clients[i] = c
    c.tcp:connect("127.0.0.1", port, function(err)
      assert(not err, err)
      c.tcp:write(request)
      c.tcp:read_start(function(rerr, data)
        if not data then return end
        local s = c.tail .. data
        if not c.ready and s:find("retry: 2000", 1, true) then
          c.ready = true
          ready = ready + 1
          if ready == SUBS and waiting == "ready" then waiting = nil task.resume(co) end
        end
        if mark and c.seen ~= mark and s:find(mark, 1, true) then
          c.seen = mark
          got = got + 1
          if got == SUBS then
            lat[#lat + 1] = (uv.hrtime() - t_commit) / 1e6
            if waiting == "mark" then waiting = nil task.resume(co) end
          end
        end
        c.tail = s:sub(-64)
      end)
    end)
  end
  if ready < SUBS then
    waiting = "ready"
    coroutine.yield()
  end
  collectgarbage()
  require("orket.c.runtime").sleep(500) -- let the server settle
  local after = rss_kb(pid)
  for k = 1, COMMITS do
    mark, got = '"mark":"m' .. k .. '"', 0
    assert(db:tx(function()
      db:event { kind = "comment", run = run_id, card = "S-1", actor = "bench", data = { mark = "m" .. k } }
      return true
    end))
    t_commit = uv.hrtime()
    waiting = "mark"
    coroutine.yield()
    require("orket.c.runtime").sleep(50 + (k * 37) % 200) -- commits at times unrelated to the poll's
  end
  for _, c in ipairs(clients) do c.tcp:close() end
  srv.stop()
  local per = (after - before) / SUBS
  print(string.format("SSE fan-out: %d subscribers to run %d's events (one orket serve process), %d commits from another",
    SUBS, run_id, COMMITS))
  print(string.format("  commit -> last subscriber's receipt: p50 %.2f ms p99 %.2f ms (%s)", pct(lat, 0.5), pct(lat, 0.99),
    spread(lat)))
  print(string.format("  server RSS %.1f MB before, %.1f MB with the subscribers: %.1f KB per subscriber",
    before / 1024, after / 1024, per))
  return per
end

-- the SSE part ROUNDS times (a new server each): RSS per subscriber, min/median/max
local function sse_rounds(dir, db)
  local per = {}
  for r = 1, ROUNDS do per[r] = sse_part(dir, db) end
  print(string.format("SSE RSS per subscriber, %d rounds: %s KB; target <= 20 KB at the median -> %s", ROUNDS,
    spread(per, "%.1f"), pct(per, 0.5) <= 20 and "met" or "MISSED"))
end

local t = task.spawn(function()
  local dir, db = project(1000)
  local part = os.getenv("ORKET_BENCH_PART")
  if part ~= "sse" then http_part(dir, db) end
  if part ~= "http" then sse_rounds(dir, db) end
  db:close()
  os.execute("rm -rf '" .. dir .. "'")
end)
local ok, err = t:join()
if not ok then error(err, 0) end
