-- Benchmark of live events across servers (docs/workers.md, LISTEN/NOTIFY): SUBS
-- event-stream subscribers and EVENTS journal events (comments) written by this process on
-- a connection of its own, one transaction each, on one PostgreSQL database (the tests'
-- own server, tests/pg.lua). The two set-ups run side by side, on the same events at the
-- same time: "one", every subscriber on one `orket serve`; "two", the subscribers split
-- evenly over two. The figure is the CPU per delivered event (EVENTS x SUBS deliveries,
-- each subscriber's count checked), summed over every process of a set-up: its servers,
-- its subscribers (a process of their own, bench/fanout_subs.lua), its servers'
-- PostgreSQL backends (told apart by PGAPPNAME), and what both share, counted in each:
-- this process (the writer) and the rest of PostgreSQL (the writer's backend among them).
-- Each process's CPU is the scheduler's own count (bench.procstat).
-- Measured one after the other, the two set-ups met a machine whose speed moved by up to 2x
-- between measurements of a few seconds (every part of one measurement halved together),
-- and the ratio of one round spanned 0.78-3.47; side by side, both meet the same machine.
-- Over ROUNDS rounds of EVENTS events, min/median/max of each and of the ratio.
-- Target: two servers <= 1.2x one at the median.
--   build/orket lua bench/fanout.lua [ROUNDS] [SUBS] [EVENTS]
-- Without PostgreSQL 15 installed it says so and prints nothing else.
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local stats = require "bench.stats"
local H = require "tests.helpers"
local PG = require "tests.pg"
local procstat = require "bench.procstat"

local ROUNDS = tonumber(arg and arg[1]) or 8
local SUBS = tonumber(arg and arg[2]) or 60 -- (at most 64: the connections a server takes from one address)
local EVENTS = tonumber(arg and arg[3]) or 1500
local LIMITS = "heartbeat_ms=600000,addr_rate=100000,addr_burst=100000,key_rate=100000,key_burst=100000"
local ORKET = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")

local ok, why = PG.available()
if not ok then
  print("fan-out across servers: skipped (" .. why .. ")")
  return
end
local server = PG.start()
local PIDFILE = server.dir .. "/data/postmaster.pid"
local dir = H.example("notes", { import = false })
require("tests.pg").on(dir, server.url)
local admin = H.api_key(dir, "admin", "admin")
local F = require "tests.fixtures"
local homes = { dir, F.server_copy(dir), F.server_copy(dir) }
-- the events are written from here, one transaction each, as another process of the project
-- would (a write through the API would add the request's own cost, which grows with the card)
local db = assert(require("orket.project").open_store(dir, false))

-- subscribers(urls) -> {pid, done(n): waits for "done n", close()}: bench/fanout_subs.lua
local function subscribers(urls)
  local out, input = uv.new_pipe(false), uv.new_pipe(false)
  local lines, buf = {}, ""
  local h, pid = assert(uv.spawn(ORKET, { args = { "lua", package.orket_home .. "/bench/fanout_subs.lua",
    tostring(EVENTS), admin, table.unpack(urls) }, stdio = { input, out, 2 } }, function() end))
  out:read_start(function(_, data)
    if not data then return end
    buf = buf .. data
    for line in buf:gmatch("([^\n]*)\n") do lines[line] = true end
    buf = buf:match("[^\n]*$")
  end)
  local s = { pid = pid }
  function s.wait(line) H.wait_for(function() return lines[line] end, "the subscribers' " .. line, 60000) end
  function s.close()
    input:close()
    out:close()
    h:close()
  end
  return s
end

-- the set-ups: their servers (PGAPPNAME names their PostgreSQL backends; one has the first
-- home, two the other two) and subscribers
local setups = {}
for i, name in ipairs { "one", "two" } do
  local list = {}
  for k = 1, i do
    list[k] = H.serve(homes[i + k - 1], { env = { ORKET_SERVE_LIMITS = LIMITS,
      PGAPPNAME = "orket_fanout_" .. name } })
  end
  setups[i] = { name = name, servers = list }
end
local urls = { {}, {} }
for s = 1, SUBS do
  urls[1][s] = setups[1].servers[1].url
  urls[2][s] = setups[2].servers[(s - 1) % 2 + 1].url
end
for i = 1, 2 do setups[i].subs = subscribers(urls[i]) end
for i = 1, 2 do setups[i].subs.wait("ready") end

-- the PostgreSQL backends of each set-up's servers, by pid
local function backends()
  local by = { orket_fanout_one = {}, orket_fanout_two = {} }
  for _, r in ipairs(assert(db:rows("SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE ?",
    "orket_fanout_%"))) do
    local list = by[r.application_name]
    if list then list[#list + 1] = math.tointeger(r.pid) end
  end
  return { by.orket_fanout_one, by.orket_fanout_two }
end

-- each set-up's own CPU (servers, subscribers, backends), and what both share, us
local function snapshot(pg_pids)
  local own, parts = {}, {}
  local pg_own = 0
  for i = 1, 2 do
    local pids = {}
    for k, s in ipairs(setups[i].servers) do pids[k] = s.pid end
    local sv, sb, pg = procstat.of(pids), procstat.of { setups[i].subs.pid }, procstat.of(pg_pids[i])
    own[i], parts[i] = sv + sb + pg, { servers = sv, subscribers = sb, postgres = pg }
    pg_own = pg_own + pg
  end
  return own, parts, procstat.self() + procstat.postgres(PIDFILE) - pg_own
end

local ratio, per = {}, { {}, {} }
-- (the servers, subscribers and the temp dirs go whatever happens)
local done <close> = setmetatable({}, { __close = function()
  for i = 1, 2 do setups[i].subs.close() end
  db:close()
  H.kill_servers()
  server.stop()
  H.cleanup()
end })
local n = EVENTS * SUBS
for r = 1, ROUNDS do
  local pg_pids = backends()
  local own0, parts0, shared0 = snapshot(pg_pids)
  for e = 1, EVENTS do
    assert(db:tx(function()
      db:event { kind = "comment", card = "NOTES-1", actor = "bench", data = { n = e } }
      return true
    end))
  end
  for i = 1, 2 do setups[i].subs.wait("done " .. r) end
  local own1, parts1, shared1 = snapshot(pg_pids)
  local shared = shared1 - shared0
  local line = {}
  for i = 1, 2 do
    per[i][r] = (own1[i] - own0[i] + shared) / n
    local p0, p1 = parts0[i], parts1[i]
    line[i] = string.format("%s %.1f us (servers %.1f, subscribers %.1f, their PostgreSQL backends %.1f)", setups[i].name,
      per[i][r], (p1.servers - p0.servers) / n, (p1.subscribers - p0.subscribers) / n, (p1.postgres - p0.postgres) / n)
  end
  ratio[r] = per[2][r] / per[1][r]
  print(string.format("round %d: CPU per delivered event, %s; %s; shared (the writer, the rest of PostgreSQL) %.1f us; "
    .. "ratio %.2f", r, line[1], line[2], shared / n, ratio[r]))
end
-- the servers' journal reads for the event streams (/metrics): a count, not a time, so the
-- machine's noise does not touch it
local reads = { 0, 0 }
for i = 1, 2 do
  for _, s in ipairs(setups[i].servers) do
    local st, text = H.fetch { url = s.url .. "/metrics", headers = { "Authorization: Bearer " .. admin } }
    assert(st == 200, "/metrics answered " .. tostring(st))
    for c in text:gmatch('orket_sse_journal_reads_total{reason="%w+"} (%d+)') do reads[i] = reads[i] + tonumber(c) end
  end
end
print(string.format("fan-out across servers, %d subscribers, %d events a round, %d rounds, the two set-ups side by side "
  .. "(CPU of every process):", SUBS, EVENTS, ROUNDS))
print(string.format("  floor, 1 server: us per delivered event %s; journal reads %.2f an event", stats.line(per[1], "%.1f"),
  reads[1] / (EVENTS * ROUNDS)))
print(string.format("  2 servers: us per delivered event %s; journal reads %.2f an event", stats.line(per[2], "%.1f"),
  reads[2] / (EVENTS * ROUNDS)))
print(string.format("  ratio %s (target <= 1.20 at the median) -> %s", stats.line(ratio),
  stats.pct(ratio, 0.5) <= 1.2 and "met" or "MISSED"))
