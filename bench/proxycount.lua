-- Benchmark of the sandbox proxy counted, not timed: machine instructions per proxied
-- request of `orket serve` (GET /v1/sandboxes/ID/app/notes with its local token, as
-- bench/sandbox.lua's proxy part asks it) against the least proxy on the same libraries
-- (bench/proxyfloor.c) through the same sandbox socket. Each server runs under callgrind;
-- after WARM requests its counts are zeroed (callgrind_control -z), N requests are made one
-- after another on one kept-alive connection, and its counts are dumped (-d): the dump's
-- total over N is the figure. Requests/s swing with the machine's load; these counts move
-- by about 1% between runs, so before/after comparisons alternate the builds
-- (ORKET_BEFORE, below).
-- Target (docs/serve.md, the sandbox proxy): orket's proxy >= 0.8x the least proxy's
-- requests/s, about <= 1.25x its instructions.
--   build/orket lua bench/proxycount.lua [N [ROUNDS]]   (defaults 1000, 2; floor and
--   orket alternated ROUNDS times; with ORKET_BEFORE=another build's orket, that build is
--   counted in each round too, between the two, and its figures printed beside;
--   ORKET_PROXYCOUNT_KEY=1: with an API key made first, as a server past local use is asked,
--   instead of the local token)
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local task = require "orket.task"
local http = require "orket.c.http"
local proc = require "orket.c.proc"
local rt = require "orket.c.runtime"
local stats = require "bench.stats"

local N = tonumber(arg and arg[1]) or 1000
local ROUNDS = tonumber(arg and arg[2]) or 2
local WARM = 100
local ORKET = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local BEFORE = os.getenv("ORKET_BEFORE")
local PROXYFLOOR = os.getenv("ORKET_PROXYFLOOR") or (package.orket_home .. "/build/proxyfloor")
local q = require("tests.helpers").quote

local app = require "bench.sandboxapp"


local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function offered()
  local p = proc.probe()
  if not (p.netns and p.userns) then return nil, "the kernel offers no network or user namespace here" end
  for _, tool in ipairs { "node", "valgrind", "callgrind_control" } do
    if not sh("command -v " .. tool) then return nil, tool .. " is not installed" end
  end
  if not uv.fs_access(PROXYFLOOR, "x") then return nil, PROXYFLOOR .. " is not built (make bench builds it)" end
  return true
end

local function project() return app.project("orket-proxycount", "proxycount") end

-- GET url (headers) -> status | nil; the client's connections are kept between requests
local function get(url, headers)
  local r = http.request { url = url, headers = headers, total_timeout_ms = 60000, connect_timeout_ms = 60000 }
  if not r then return nil end
  local guard <close> = r
  local status = r:headers()
  if not status then return nil end
  while r:read() do end
  return status
end

-- file with args under callgrind, until its stdout matches pattern; N requests to the url
-- and headers made by url_of(what it printed) counted -> instructions per request
local function count(file, args, env, pattern, url_of)
  local out_file = os.tmpname()
  local vargs = { "--tool=callgrind", "--callgrind-out-file=" .. out_file, file }
  for _, a in ipairs(args) do vargs[#vargs + 1] = a end
  local out = uv.new_pipe(false)
  local null = uv.fs_open("/dev/null", "w", 0)
  local exited = false
  local h = assert(uv.spawn("valgrind", { args = vargs, env = env, stdio = { nil, out, null } },
    function() exited = true end))
  local buf = ""
  out:read_start(function(_, d) if d then buf = buf .. d end end)
  local waited = 0
  while not buf:find(pattern) do
    rt.sleep(50)
    waited = waited + 50
    assert(not exited and waited < 120000, file .. " did not start: " .. buf)
  end
  local url, headers = url_of(buf)
  for _ = 1, WARM do assert(get(url, headers) == 200, "no 200 from " .. url) end
  local pid = h:get_pid()
  local ok, why = sh("callgrind_control -z " .. pid)
  assert(ok, why)
  for _ = 1, N do assert(get(url, headers) == 200, "no 200 from " .. url) end
  ok, why = sh("callgrind_control -d " .. pid)
  assert(ok, why)
  h:kill("sigterm")
  while not exited do rt.sleep(20) end
  out:close()
  uv.fs_close(null)
  -- the dump after the zero is the one numbered highest (the exit's is out_file itself)
  local dumps = {}
  for name in io.popen("ls " .. q(out_file) .. ".* 2>/dev/null"):lines() do dumps[#dumps + 1] = name end
  table.sort(dumps, function(a, b) return tonumber(a:match("%.(%d+)$")) < tonumber(b:match("%.(%d+)$")) end)
  assert(#dumps > 0, "callgrind wrote no dump")
  local total
  for line in io.lines(dumps[#dumps]) do
    total = tonumber(line:match("^summary:%s*(%d+)")) or tonumber(line:match("^totals:%s*(%d+)")) or total
  end
  -- ORKET_PROXYCOUNT_KEEP=DIR keeps the counted dumps there, for callgrind_annotate
  local keep = os.getenv("ORKET_PROXYCOUNT_KEEP")
  if keep then os.rename(dumps[#dumps], keep .. "/" .. file:match("[^/]+$") .. "." .. pid .. ".callgrind") end
  for _, d in ipairs(dumps) do os.remove(d) end
  os.remove(out_file)
  assert(total, "no total in callgrind's dump")
  return total / N
end

local t = task.spawn(function()
  local ok, why = offered()
  if not ok then
    print("proxy count skipped: " .. why)
    return
  end
  local dir, db, s = project()
  local key = os.getenv("ORKET_PROXYCOUNT_KEY") == "1"
    and assert(require("orket.serve.keys").create(db, dir, "proxycount", "operator"))
  local service = require "orket.sandboxes.service"
  local sb = assert(service.up { dir = dir, db = db, settings = s })
  -- the journal's poll (every poll_ms) is the loop's, not a request's: under callgrind a
  -- request takes tens of milliseconds, and polls every 20 ms would count about one a request
  local env = { "ORKET_SERVE_LIMITS=addr_rate=1000000,addr_burst=1000000,key_rate=1000000,key_burst=1000000,"
    .. "poll_ms=600000",
    "PATH=" .. os.getenv("PATH"), "NO_COLOR=1", "ORKET_HISTORY=" }
  local function serve_url(buf)
    return "http://127.0.0.1:" .. buf:match("listening on http://[%d.]+:(%d+)") .. "/v1/sandboxes/" .. sb.id
      .. "/app/notes", { "Authorization: Bearer " .. (key or buf:match("token=(ort_%x+)")) }
  end
  local function floor_url(buf) return "http://127.0.0.1:" .. buf:match("port (%d+)") .. "/notes" end
  print(string.format("instructions per proxied request (callgrind, %d requests after %d, one kept-alive "
    .. "connection, %s), %d rounds alternated:", N, WARM, key and "an API key" or "the local token", ROUNDS))
  local cok, cerr = pcall(function()
    local fl, fig, ratio, bfig, bratio = {}, {}, {}, {}, {}
    local function serve(bin)
      return count(bin, { "serve", dir, "--listen", "127.0.0.1:0" }, env,
        key and "listening on http://[%d.]+:%d+\n" or "token=ort_%x+", serve_url)
    end
    for round = 1, ROUNDS do
      local f = count(PROXYFLOOR, { "http://sandbox", sb.socket }, { "PATH=" .. os.getenv("PATH") }, "port %d+",
        floor_url)
      local b = BEFORE and serve(BEFORE)
      local g = serve(ORKET)
      fl[round], fig[round], ratio[round] = f, g, g / f
      if b then bfig[round], bratio[round] = b, b / f end
      print(string.format("  round %d: floor (bench/proxyfloor.c) %9.0f  orket serve %9.0f  ratio %5.2f%s", round, f, g,
        g / f, b and string.format("  | before %9.0f  ratio %5.2f", b, b / f) or ""))
    end
    print("  floor:  " .. stats.line(fl, "%.0f"))
    if BEFORE then
      print("  before: " .. stats.line(bfig, "%.0f") .. "  ratio " .. stats.line(bratio))
    end
    print("  figure: " .. stats.line(fig, "%.0f"))
    print("  ratio:  " .. stats.line(ratio) .. "  (target <= 1.25x) -> " .. (stats.pct(ratio, 0.5) <= 1.25 and "met"
      or "MISSED"))
  end)
  sb:stop("bench") -- on a failure too: the sandbox's checks would keep this process up
  db:close()
  os.execute("rm -rf " .. q(dir))
  if not cok then error(cerr, 0) end
end)
local ok, err = t:join()
if not ok then error(err, 0) end
