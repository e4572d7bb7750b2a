-- Benchmark of sandboxes (docs/sandbox.md): each figure against a floor measured in the same
-- run, the two alternated ROUNDS times, printed with floor, figure, ratio, then min/median/max.
-- 1. Start to healthy: orket.sandboxes.service.up of a small node app (tree copied, every
--    confinement layer, its own network namespace, the relay, the store's rows, its HTTP
--    health check through the socket) against a bare uv.spawn of the same command on a host
--    port plus its first successful GET of the same path (asked every 10 ms).
--    Target: figure <= 1.5x the floor (median).
-- 2. Proxy: wrk at CONNS connections for SECONDS through `orket serve`'s
--    /v1/sandboxes/ID/app/ (its own process, with its local token) against wrk straight to
--    the same app run bare on a host port. Target: requests/s >= 0.5x the floor (median).
--    Alongside, what bounds any proxy here: bench/proxyfloor.c, the least proxy built on the
--    libraries orket serve uses (libmicrohttpd answering with what libcurl fetched, on one
--    libuv loop, nothing else), through the same sandbox socket and straight to the bare app;
--    the server's own GET /health (what any of its routes can answer); and bench/mhdfloor.c,
--    libmicrohttpd alone (what any server on it can answer).
--    The server's CPU time per request is printed too, and the least proxy's: they move far less
--    with the machine's load.
--    Target, against that least proxy through the same socket: orket's proxy >= 0.8x (median).
-- 3. Three at once: three service.up started together until all are healthy, each then
--    answering through its own socket, against three bare spawns and probes together.
-- 4. Three services in one sandbox (a compose file: db, then backend, then frontend, each
--    started once the one before answers): service.up until the frontend is healthy,
--    against the same three commands spawned bare in that order, each waited for by a TCP
--    connect every 10 ms, then the frontend's GET /health. The services are the same small
--    node app (a database's own start, initdb, is not what this measures).
--    Target: figure <= 1.5x the floor (median).
--   build/orket lua bench/sandbox.lua [ROUNDS] [SECONDS] [PARTS]
-- PARTS: the figures to measure, comma-separated names of start, proxy, three, services
-- (default: all)
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local task = require "orket.task"
local http = require "orket.c.http"
local proc = require "orket.c.proc"
local rt = require "orket.c.runtime"
local stats = require "bench.stats"
local run = require("bench.spawn").run -- a program run to its end

local ROUNDS = tonumber(arg and arg[1]) or 5
local SECONDS = tonumber(arg and arg[2]) or 2
local CONNS = 32
local PARTS = {}
for name in ((arg and arg[3]) or "start,proxy,three,services"):gmatch("[^,]+") do PARTS[name] = true end
local ORKET = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local MHDFLOOR = os.getenv("ORKET_MHDFLOOR") or (package.orket_home .. "/build/mhdfloor")
local PROXYFLOOR = os.getenv("ORKET_PROXYFLOOR") or (package.orket_home .. "/build/proxyfloor")

local app = require "bench.sandboxapp"
local APP, write = app.APP, app.write


local function offered()
  local p = proc.probe()
  if not (p.netns and p.userns) then return nil, "the kernel offers no network or user namespace here" end
  if not os.execute("command -v node >/dev/null 2>&1") then return nil, "node is not installed" end
  -- (wrk only loads the proxy)
  if PARTS.proxy and not os.execute("command -v wrk >/dev/null 2>&1") then
    return nil, "wrk is not installed (make bench-deps)"
  end
  -- the floors are bench targets of their own (make bench builds them); without one the
  -- proxy's part would fail halfway, with a sandbox and a server up
  for _, f in ipairs(PARTS.proxy and { MHDFLOOR, PROXYFLOOR } or {}) do
    if not uv.fs_access(f, "x") then return nil, f .. " is not built (make bench builds it)" end
  end
  return true
end

-- main's tree is what a sandbox runs: the workspace a repository with it committed
local commit_main = app.commit_main

local function project() return app.project("orket-bench", "sandbench") end

local free_port = require("tests.helpers").free_port

-- GET url (through sock when given) -> status | nil
local function get(url, sock, headers)
  local r = http.request { url = url, unix_socket = sock, headers = headers, total_timeout_ms = 1000,
    connect_timeout_ms = 1000 }
  if not r then return nil end
  local guard <close> = r
  local status = r:headers()
  if not status then return nil end
  while r:read() do end
  return status
end

-- The floor: the same command spawned bare on a host port, asked GET /health every 10 ms
-- until it answers 2xx; -> milliseconds, a stop() that ends it and waits
local function bare_up(dir)
  local port = free_port()
  local t0 = uv.hrtime()
  local exited = false
  local h
  h = assert(uv.spawn("node", { args = { "server.js" }, cwd = dir .. "/workspace",
    env = { "PORT=" .. port, "HOST=127.0.0.1", "PATH=" .. os.getenv("PATH") }, stdio = { nil, nil, 2 } },
    function()
      exited = true
      h:close()
    end))
  while true do
    local st = get("http://127.0.0.1:" .. port .. "/health")
    if st and st >= 200 and st < 400 then break end
    assert(not exited, "the bare app exited")
    rt.sleep(10)
  end
  local ms = (uv.hrtime() - t0) / 1e6
  return ms, function()
    h:kill("sigterm")
    while not exited do rt.sleep(5) end
  end, port
end

local service = require "orket.sandboxes.service"

-- The figure: service.up until healthy; -> milliseconds, the sandbox
local function sandbox_up(dir, db, s)
  local t0 = uv.hrtime()
  local sb, err = service.up { dir = dir, db = db, settings = s }
  assert(sb, err)
  return (uv.hrtime() - t0) / 1e6, sb
end

local function together(n, fn)
  local t0 = uv.hrtime()
  local ts, outs = {}, {}
  for i = 1, n do ts[i] = task.spawn(function() outs[i] = { fn() } end) end
  for i = 1, n do assert(ts[i]:join()) end
  return (uv.hrtime() - t0) / 1e6, outs
end

-- The CPU time (user and system, in seconds) process pid has used, from /proc; nil where
-- there is none. Requests/s swing with what else runs on the machine; the server's CPU
-- time per request moves far less, so the two are printed side by side.
local TICKS = tonumber(io.popen("getconf CLK_TCK 2>/dev/null"):read("l") or "") or 100
local function cpu_seconds(pid)
  local f = pid and io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local line = f:read("a")
  f:close()
  local fields = {}
  for w in (line:match("%) (.*)$") or ""):gmatch("%S+") do fields[#fields + 1] = w end -- after the name
  local utime, stime = tonumber(fields[12]), tonumber(fields[13]) -- stat's fields 14 and 15
  return utime and stime and (utime + stime) / TICKS
end

-- spawn_until(file, args, env, stderr, pattern, ms, what) -> handle, its stdout pipe, what
-- it printed once that matches pattern (raises after ms)
local function spawn_until(file, args, env, stderr, pattern, ms, what)
  local out = uv.new_pipe(false)
  local h = assert(uv.spawn(file, { args = args, env = env, stdio = { nil, out, stderr } }, function() end))
  local buf = ""
  out:read_start(function(_, d) if d then buf = buf .. d end end)
  local waited = 0
  while not buf:find(pattern) do
    rt.sleep(20)
    waited = waited + 20
    assert(waited < ms, what .. " did not start: " .. buf)
  end
  return h, out, buf
end

-- wrk on url (with headers) -> requests/s, socket errors, requests made
local function wrk(url, headers)
  local args = { "-t", "1", "-c", tostring(CONNS), "-d", SECONDS .. "s" }
  for _, hd in ipairs(headers or {}) do args[#args + 1] = "-H"; args[#args + 1] = hd end
  args[#args + 1] = url
  local code, out = run("wrk", args)
  assert(code == 0, "wrk failed: " .. out)
  local non2xx = out:match("Non%-2xx or 3xx responses: (%d+)")
  assert(not non2xx, "wrk saw error answers (" .. tostring(non2xx) .. "): " .. out)
  local errs = out:match("Socket errors: ([^\n]+)")
  local rps = tonumber(out:match("Requests/sec:%s+([%d.]+)"))
  assert(rps, "cannot read wrk's output: " .. out)
  return rps, errs, tonumber(out:match("(%d+) requests in"))
end

-- wrk as above, and the microseconds of pid's CPU time per request (nil without /proc)
local function wrk_cpu(pid, url, headers)
  local c0 = cpu_seconds(pid)
  local rps, errs, n = wrk(url, headers)
  local c1 = cpu_seconds(pid)
  return rps, errs, c0 and c1 and n and n > 0 and (c1 - c0) / n * 1e6 or nil
end

local t = task.spawn(function()
  local ok, why = offered()
  if not ok then
    print("sandbox benchmark skipped: " .. why)
    return
  end
  local dir, db, s = project()
  -- warm both (page cache, node's first start)
  local _, stop = bare_up(dir)
  stop()
  local _, sb = sandbox_up(dir, db, s)
  sb:stop("bench")

  -- 1. start to healthy
  if PARTS.start then
    print(string.format("1. start to healthy (ms), %d rounds alternated:", ROUNDS))
    local fl, fig, ratio = {}, {}, {}
    for round = 1, ROUNDS do
      local f, fstop = bare_up(dir)
      fstop()
      local g, gsb = sandbox_up(dir, db, s)
      gsb:stop("bench")
      fl[round], fig[round], ratio[round] = f, g, g / f
      print(string.format("  round %d: floor (bare spawn + first probe) %7.2f ms  sandbox up to healthy %7.2f ms  ratio %5.2f",
        round, f, g, g / f))
    end
    print("  floor:  " .. stats.line(fl) .. " ms")
    print("  figure: " .. stats.line(fig) .. " ms")
    print("  ratio:  " .. stats.line(ratio) .. "  (target <= 1.5x) -> " .. (stats.pct(ratio, 0.5) <= 1.5 and "met" or "MISSED"))
  end

  -- 2. the proxy: orket serve on the project, the sandbox this process owns
  if PARTS.proxy then
    local psb
    _, psb = sandbox_up(dir, db, s)
    local env = { "ORKET_SERVE_LIMITS=addr_rate=1000000,addr_burst=1000000,key_rate=1000000,key_burst=1000000,"
      .. "max_connections=512,max_per_ip=512", "PATH=" .. os.getenv("PATH"), "NO_COLOR=1", "ORKET_HISTORY=" }
    local null = uv.fs_open("/dev/null", "w", 0)
    local sh, out, buf = spawn_until(ORKET, { "serve", dir, "--listen", "127.0.0.1:0" }, env, null, "token=ort_%x+",
      20000, "orket serve")
    local base = "http://127.0.0.1:" .. buf:match("listening on http://[%d.]+:(%d+)")
    local auth = { "Authorization: Bearer " .. buf:match("token=(ort_%x+)") }
    local app_url = base .. "/v1/sandboxes/" .. psb.id .. "/app/notes"
    assert(get(app_url, nil, auth) == 200, "the proxy does not answer 200 at " .. app_url)
    local direct_port, dstop
    _, dstop, direct_port = bare_up(dir)
    local direct_url = "http://127.0.0.1:" .. direct_port .. "/notes"
    -- the HTTP server library alone (bench/mhdfloor.c: libmicrohttpd on a libuv loop, driven
    -- as orket serve drives it, answering a fixed body): the most a route of any server
    -- built on it can answer here
    local board = dir .. "/.bench-board.json"
    write(board, "{}")
    local mh, mout, mbuf = spawn_until(MHDFLOOR, { board }, nil, nil, "port %d+", 10000, "bench/mhdfloor.c")
    local mhd_url = "http://127.0.0.1:" .. mbuf:match("port (%d+)") .. "/health"
    -- the least proxy on the same libraries: through the sandbox's socket, and to the bare app
    local fh, fout, fbuf = spawn_until(PROXYFLOOR, { "http://sandbox", psb.socket }, nil, nil, "port %d+", 10000,
      "bench/proxyfloor.c")
    local fs_url = "http://127.0.0.1:" .. fbuf:match("port (%d+)") .. "/notes"
    local th, tout, tbuf = spawn_until(PROXYFLOOR, { "http://127.0.0.1:" .. direct_port }, nil, nil, "port %d+",
      10000, "bench/proxyfloor.c")
    local ft_url = "http://127.0.0.1:" .. tbuf:match("port (%d+)") .. "/notes"
    assert(get(fs_url) == 200 and get(ft_url) == 200, "bench/proxyfloor.c does not answer 200")
    print(string.format("2. requests/s at %d connections for %d s, %d rounds alternated:", CONNS, SECONDS, ROUNDS))
    local dr, pr, prr, hr, pc, hc, mr, mrr = {}, {}, {}, {}, {}, {}, {}, {}
    local fsr, ftr, fsrr, ftrr, fpr = {}, {}, {}, {}, {}
    local fc, pfc = {}, {} -- the least proxy's CPU time per request, and orket's over it
    local spid = sh:get_pid()
    for round = 1, ROUNDS do
      local d, derr = wrk(direct_url)
      local p, perr, pcpu = wrk_cpu(spid, app_url, auth)
      local fsock, _, fcpu = wrk_cpu(fh:get_pid(), fs_url)
      local ftcp = wrk(ft_url)
      -- context, not the floor: the server's cheapest route, the most any route of it answers
      local _, _, hcpu
      hr[round], _, hcpu = wrk_cpu(spid, base .. "/health")
      mr[round] = wrk(mhd_url)
      dr[round], pr[round], prr[round], mrr[round] = d, p, p / d, mr[round] / d
      fsr[round], ftr[round], fsrr[round], ftrr[round], fpr[round] = fsock, ftcp, fsock / d, ftcp / d, p / fsock
      pc[#pc + 1], hc[#hc + 1] = pcpu, hcpu
      print(string.format("  round %d: floor (direct) %7.0f  proxy %7.0f  ratio %5.2f  | least proxy: via the socket "
        .. "%7.0f (%4.2f), to the bare app %7.0f (%4.2f) | /health %7.0f, libmicrohttpd alone %7.0f%s", round, d, p,
        p / d, fsock, fsock / d, ftcp, ftcp / d, hr[round], mr[round],
        (derr or perr) and ("  socket errors: " .. tostring(derr) .. " / " .. tostring(perr)) or ""))
      if pcpu and hcpu and fcpu then
        fc[#fc + 1], pfc[#pfc + 1] = fcpu, pcpu / fcpu
        print(string.format("           CPU time per request: orket serve's proxy %5.0f us, the least proxy's %5.0f us "
          .. "(%4.2fx)  /health %5.0f us", pcpu, fcpu, pcpu / fcpu, hcpu))
      end
    end
    print("  floor:  " .. stats.line(dr, "%.0f") .. " requests/s")
    print("  figure: " .. stats.line(pr, "%.0f") .. " requests/s")
    print("  ratio:  " .. stats.line(prr) .. "  (target >= 0.5x) -> " .. (stats.pct(prr, 0.5) >= 0.5 and "met" or "MISSED"))
    print("  the least proxy on libmicrohttpd and libcurl (bench/proxyfloor.c), over the floor:")
    print("    through the same sandbox socket: " .. stats.line(fsrr) .. "  (" .. stats.line(fsr, "%.0f") .. " requests/s)")
    print("    straight to the bare app:        " .. stats.line(ftrr) .. "  (" .. stats.line(ftr, "%.0f") .. " requests/s)")
    print("    orket's proxy over the least one through the same socket: " .. stats.line(fpr) .. "  (target >= 0.8x) -> "
      .. (stats.pct(fpr, 0.5) >= 0.8 and "met" or "MISSED"))
    print("  orket serve's own /health: " .. stats.line(hr, "%.0f") .. " requests/s")
    print("  libmicrohttpd alone (bench/mhdfloor.c, a fixed answer): " .. stats.line(mr, "%.0f")
      .. " requests/s, over the floor " .. stats.line(mrr))
    if #pc > 0 and #hc > 0 then
      print("  orket serve's CPU time per request: proxy " .. stats.line(pc, "%.0f") .. " us, /health "
        .. stats.line(hc, "%.0f") .. " us")
    end
    -- steadier than requests/s: the proxies share the machine with wrk and the app
    if #fc > 0 then
      print("  the least proxy's CPU time per request: " .. stats.line(fc, "%.0f") .. " us; orket's proxy over it "
        .. stats.line(pfc))
    end
    fh:kill("sigterm")
    fout:close()
    th:kill("sigterm")
    tout:close()
    dstop()
    mh:kill("sigterm")
    mout:close()
    sh:kill("sigterm")
    out:close()
    uv.fs_close(null)
    psb:stop("bench")
  end

  -- 3. three at once
  if PARTS.three then
    print(string.format("3. three at once, to all healthy (ms), %d rounds alternated:", ROUNDS))
    local f3, g3, r3 = {}, {}, {}
    for round = 1, ROUNDS do
      local f, fouts = together(3, function() return bare_up(dir) end)
      for _, o in ipairs(fouts) do o[2]() end
      local g, gouts = together(3, function() return sandbox_up(dir, db, s) end)
      local ports, ids = {}, {}
      for i, o in ipairs(gouts) do
        local sbx = o[2]
        assert(get("http://sandbox/health", sbx.socket) == 200, "sandbox " .. sbx.id .. " does not answer")
        ports[i], ids[i] = sbx.port, sbx.id
      end
      assert(ids[1] ~= ids[2] and ids[2] ~= ids[3] and ids[1] ~= ids[3])
      for _, o in ipairs(gouts) do o[2]:stop("bench") end
      f3[round], g3[round], r3[round] = f, g, g / f
      print(string.format("  round %d: floor (3 bare) %7.2f ms  3 sandboxes %7.2f ms  ratio %5.2f  (ports %s)", round, f,
        g, g / f, table.concat(ports, " ")))
    end
    print("  floor:  " .. stats.line(f3) .. " ms")
    print("  figure: " .. stats.line(g3) .. " ms")
    print("  ratio:  " .. stats.line(r3) .. "  (three sandboxes at once, each answering on its own socket)")
  end
  -- 4. three services in one sandbox
  if PARTS.services then
    local sdir = io.popen("mktemp -d /tmp/orket-bench.XXXXXX"):read("l")
    uv.fs_mkdir(sdir .. "/workspace", 493)
    write(sdir .. "/workspace/server.js", APP)
    write(sdir .. "/workspace/compose.yaml", [[
services:
  db:
    command: ["node", "server.js"]
  backend:
    command: ["node", "server.js"]
    depends_on: [db]
  frontend:
    command: ["node", "server.js"]
    ports: ["8080"]
    depends_on: [backend]
]])
    write(sdir .. "/orket.lua", [[
name = "servicebench"
sandbox = { health = { http = "/health", interval_ms = 100, timeout_ms = 1000, start_timeout_ms = 20000 } }
]])
    commit_main(sdir)
    local sdb = assert(require("orket.store").open(sdir .. "/.orket/orket.db"))
    local _, ss = assert(require("orket.config").settings(sdir, true))
    -- the floor: the three in order, each waited for by a connect, then the last one's GET
    local function bare_three()
      local t0 = uv.hrtime()
      local hs, stops = {}, {}
      for i = 1, 3 do
        local port = free_port()
        local exited = false
        local h
        h = assert(uv.spawn("node", { args = { "server.js" }, cwd = sdir .. "/workspace",
          env = { "PORT=" .. port, "HOST=127.0.0.1", "PATH=" .. os.getenv("PATH") }, stdio = { nil, nil, 2 } },
          function()
            exited = true
            h:close()
          end))
        hs[i] = h
        stops[i] = function()
          h:kill("sigterm")
          while not exited do rt.sleep(5) end
        end
        if i < 3 then
          while true do
            local c = uv.new_tcp()
            local done, okc = false, false
            c:connect("127.0.0.1", port, function(e) done, okc = true, not e end)
            while not done do rt.sleep(1) end
            c:close()
            if okc then break end
            assert(not exited, "a bare service exited")
            rt.sleep(10)
          end
        else
          while true do
            local st = get("http://127.0.0.1:" .. port .. "/health")
            if st and st >= 200 and st < 400 then break end
            rt.sleep(10)
          end
        end
      end
      local ms = (uv.hrtime() - t0) / 1e6
      for _, stop_one in ipairs(stops) do stop_one() end
      return ms
    end
    print(string.format("4. three services in one sandbox, to healthy (ms), %d rounds alternated:", ROUNDS))
    local sb0 = assert(service.up { dir = sdir, db = sdb, settings = ss }) -- warm
    sb0:stop("bench")
    local f4, g4, r4 = {}, {}, {}
    for round = 1, ROUNDS do
      local f = bare_three()
      local t0 = uv.hrtime()
      local sbx, err = service.up { dir = sdir, db = sdb, settings = ss }
      assert(sbx, err)
      local g = (uv.hrtime() - t0) / 1e6
      sbx:stop("bench")
      f4[round], g4[round], r4[round] = f, g, g / f
      print(string.format("  round %d: floor (3 bare, in order) %7.2f ms  sandbox of 3 %7.2f ms  ratio %5.2f", round, f, g, g / f))
    end
    print("  floor:  " .. stats.line(f4) .. " ms")
    print("  figure: " .. stats.line(g4) .. " ms")
    print("  ratio:  " .. stats.line(r4) .. "  (target <= 1.5x) -> " .. (stats.pct(r4, 0.5) <= 1.5 and "met" or "MISSED"))
    sdb:close()
    os.execute("rm -rf '" .. sdir .. "'")
  end
  db:close()
  os.execute("rm -rf '" .. dir .. "'")
end)
local ok, err = t:join()
if not ok then error(err, 0) end
