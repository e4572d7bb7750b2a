-- Benchmark: does starting runs stall orket serve's loop for other requests?
-- `orket serve` as its own process over a project of ROUNDS x 10 one-issue epics (the
-- scripted model, whose first answer waits a minute: the runs stay on the model, so what is
-- measured is their start). Clients here ask GET /health on CLIENTS connections, each
-- every PERIOD ms, a request's latency counted from when it was due (a stall delays every
-- request due meanwhile). Each round: IDLE seconds with nothing else going (the floor), then 10 runs
-- started at once (POST /v1/runs, with the local token) and /health measured from the
-- first POST until every run is answered and 1 s more (the figure); then the runs are
-- stopped and waited for. Printed: each round's /health p99 idle and starting and their
-- ratio, then min/median/max over the rounds. Target: the ratio's median under 10.
--   build/orket lua bench/serve_start.lua [ROUNDS] [IDLE]
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local cjson = require "cjson"
local task = require "orket.task"
local http = require "orket.c.http"
local rt = require "orket.c.runtime"
local stats = require "bench.stats"

local ROUNDS = tonumber(arg and arg[1]) or 3
local IDLE = tonumber(arg and arg[2]) or 2
local RUNS = 10
local CLIENTS = 4
local PERIOD = 25 -- ms between one client's requests: 160 requests/s in all (a loaded machine keeps up)
local ORKET = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = { { role = "coder", match = "^Issue ", reply = { delay_ms = 4000,
  tool_calls = { call("write_file", { path = "x.txt", content = "x\n" }) } } } },
  default = { content = "Nothing more to do." } }
]]

local function project()
  local dir = io.popen("mktemp -d /tmp/orket-bench.XXXXXX"):read("l")
  for _, d in ipairs { "epics", "workspace" } do uv.fs_mkdir(dir .. "/" .. d, 493) end
  write(dir .. "/orket.lua", [[
name = "starts"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
  write(dir .. "/script.lua", SCRIPT)
  for i = 1, ROUNDS * RUNS do
    write(string.format("%s/epics/e%d.json", dir, i), cjson.encode { id = "E" .. i, name = "Epic " .. i,
      issues = { { id = "E" .. i .. "-1", summary = "Write x.txt", seat = "senior_developer" } } })
  end
  local db = assert(require("orket.store").open(dir .. "/.orket/orket.db"))
  assert(require("orket.import").import(db, dir))
  db:close()
  return dir
end

-- one exchange -> status, body, milliseconds
local function fetch(url, method, headers, body)
  local t0 = uv.hrtime()
  local r <close> = assert(http.request { url = url, method = method, headers = headers, body = body,
    total_timeout_ms = 60000 })
  local status = r:headers()
  local parts = {}
  while status do
    local ev = r:read()
    if not ev then break end
    for _, x in ipairs(ev) do parts[#parts + 1] = x end
  end
  return status, table.concat(parts), (uv.hrtime() - t0) / 1e6
end

local t = task.spawn(function()
  local dir = project()
  local out = uv.new_pipe(false)
  local errp = uv.new_pipe(false)
  local env = { "ORKET_SERVE_LIMITS=addr_rate=1000000,addr_burst=1000000", "PATH=" .. os.getenv("PATH"),
    "NO_COLOR=1", "ORKET_HISTORY=" }
  local h = assert(uv.spawn(ORKET, { args = { "serve", dir, "--listen", "127.0.0.1:0" }, env = env,
    stdio = { nil, out, errp } }, function() end))
  -- the request log; ORKET_BENCH_SERVE_LOG names a file to keep it in (each POST's "us")
  local keep = os.getenv("ORKET_BENCH_SERVE_LOG") and assert(io.open(os.getenv("ORKET_BENCH_SERVE_LOG"), "w"))
  errp:read_start(function(_, d) if d and keep then keep:write(d) end end)
  local buf = ""
  out:read_start(function(_, d) if d then buf = buf .. d end end)
  while not buf:find("token=ort_%x+") do rt.sleep(20) end
  local base = "http://127.0.0.1:" .. buf:match("listening on http://[%d.]+:(%d+)")
  local auth = { "Authorization: Bearer " .. buf:match("token=(ort_%x+)"), "Content-Type: application/json" }

  -- /health on CLIENTS kept-alive connections of their own (raw sockets: no client pool in
  -- the way), each on a fixed schedule (one request every PERIOD ms), a request's latency
  -- counted from its scheduled time (as wrk2 does): a stalled server delays every request
  -- scheduled meanwhile, which a client asking back to back would not have sent (and its
  -- p99 would hide the stall)
  local port = tonumber(base:match(":(%d+)$"))
  local sampling, samples, stop = false, nil, false
  local clients = {}
  for i = 1, CLIENTS do
    local c = { tcp = uv.new_tcp(), buf = "", timer = uv.new_timer() }
    clients[i] = c
    local function send()
      if stop then return end
      c.tcp:write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    end
    c.tcp:connect("127.0.0.1", port, function(err)
      assert(not err, err)
      c.tcp:read_start(function(_, d)
        if not d then return end
        c.buf = c.buf .. d
        if c.buf:find('"ok"}\n', 1, true) then
          assert(c.buf:match("^HTTP/1.1 200"), c.buf)
          c.buf = ""
          local now = uv.hrtime()
          if sampling then samples[#samples + 1] = (now - c.due) / 1e6 end
          c.due = c.due + PERIOD * 1e6
          if c.due <= now then send() -- behind schedule: at once, its latency from its due time
          else c.timer:start(math.ceil((c.due - now) / 1e6), 0, send) end
        end
      end)
      c.due = uv.hrtime()
      send()
    end)
  end
  rt.sleep(500) -- warm

  local idle_p99, start_p99, ratio, starts = {}, {}, {}, {}
  for round = 1, ROUNDS do
    samples, sampling = {}, true
    rt.sleep(IDLE * 1000)
    sampling = false
    idle_p99[round] = stats.pct(samples, 0.99)
    local idle_max = stats.pct(samples, 1)
    local n_idle = #samples
    samples, sampling = {}, true
    local ids, posts, t0 = {}, {}, uv.hrtime()
    for i = 1, RUNS do
      posts[i] = task.spawn(function()
        local st, body = fetch(base .. "/v1/runs", "POST", auth, cjson.encode { target = "E" .. ((round - 1) * RUNS + i) })
        assert(st == 201, "POST /v1/runs: " .. tostring(st) .. " " .. body)
        ids[i] = math.tointeger(cjson.decode(body).run.id)
      end)
    end
    for _, p in ipairs(posts) do assert(p:join()) end
    starts[round] = (uv.hrtime() - t0) / 1e6
    rt.sleep(1000)
    sampling = false
    start_p99[round] = stats.pct(samples, 0.99)
    local start_max = stats.pct(samples, 1)
    ratio[round] = start_p99[round] / idle_p99[round]
    print(string.format("  round %d: /health p99 idle %.2f ms, max %.2f (%d requests) | while %d runs start %.2f ms, "
      .. "max %.2f (%d requests; the %d starts answered in %.0f ms) | ratio %.2f", round, idle_p99[round], idle_max, n_idle, RUNS,
      start_p99[round], start_max, #samples, RUNS, starts[round], ratio[round]))
    for _, id in ipairs(ids) do
      local sst, sbody = fetch(base .. "/v1/runs/" .. id .. "/stop", "POST", auth, "{}")
      assert(sst == 202, "stop: " .. tostring(sst) .. " " .. sbody)
    end
    for _, id in ipairs(ids) do
      while true do
        local _, body = fetch(base .. "/v1/runs/" .. id)
        if not cjson.decode(body).run.live then break end
        rt.sleep(50)
      end
    end
  end
  stop = true
  for _, c in ipairs(clients) do
    c.timer:close()
    c.tcp:close()
  end
  h:kill("sigterm")
  if keep then keep:close() end
  out:close()
  errp:close()
  h:close()
  os.execute("rm -rf '" .. dir .. "'")
  print(string.format("/health p99 while %d runs start (orket serve, %d clients each every " .. PERIOD .. " ms), %d rounds alternated "
    .. "with idle:", RUNS, CLIENTS, ROUNDS))
  print("  floor (idle p99, ms):        " .. stats.line(idle_p99))
  print("  figure (starting p99, ms):   " .. stats.line(start_p99))
  print("  ratio starting/idle:         " .. stats.line(ratio))
  print(string.format("  target ratio < 10x -> %s", stats.pct(ratio, 0.5) < 10 and "met" or "MISSED"))
end)
local ok, err = t:join()
if not ok then error(err, 0) end
