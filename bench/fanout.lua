-- Benchmark of live events across servers (docs/workers.md, LISTEN/NOTIFY): SUBS
-- event-stream subscribers and EVENTS journal events (comments) written by this process on
-- a connection of its own, one transaction each, the subscribers all
-- on one `orket serve`, or split evenly over two on the same PostgreSQL database (the
-- tests' own server, tests/pg.lua). The figure is the CPU per delivered event (EVENTS x
-- SUBS deliveries, each subscriber's count checked), summed over every process: the
-- servers, PostgreSQL's (its postmaster's children, those that ended included) and this
-- one (the writer and the subscribers). The floor is one server; the two-server figure is
-- measured in the same run, alternated over ROUNDS rounds, with min/median/max of the
-- ratio. Target: two servers <= 1.2x one.
--   build/orket lua bench/fanout.lua [ROUNDS] [SUBS] [EVENTS]
-- Without PostgreSQL 15 installed it says so and prints nothing else.
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local stats = require "bench.stats"
local H = require "tests.helpers"
local PG = require "tests.pg"
local procstat = require "bench.procstat"

local ROUNDS = tonumber(arg and arg[1]) or 5
local SUBS = tonumber(arg and arg[2]) or 60 -- (at most 64: the connections a server takes from one address)
local EVENTS = tonumber(arg and arg[3]) or 1500
local LIMITS = "heartbeat_ms=600000,addr_rate=100000,addr_burst=100000,key_rate=100000,key_burst=100000"

local ok, why = PG.available()
if not ok then
  print("fan-out across servers: skipped (" .. why .. ")")
  return
end
local server = PG.start()
local dir = H.example("notes", { import = false })
require("tests.pg").on(dir, server.url)
local admin = H.api_key(dir, "admin", "admin")
local homes = { dir, require("tests.fixtures").server_copy(dir) }
-- the events are written from here, one transaction each, as another process of the project
-- would (a write through the API would add the request's own cost, which grows with the card)
local db = assert(require("orket.project").open_store(dir, false))

-- One measurement with k servers -> CPU microseconds per delivered event
local function measure(k)
  local servers = {}
  for i = 1, k do servers[i] = H.serve(homes[i], { env = { ORKET_SERVE_LIMITS = LIMITS } }) end
  -- each subscriber counts its comment events as they arrive (a chunk may end mid-line:
  -- the last few bytes are carried over)
  local subs, counts, pat = {}, {}, "event: comment\n"
  for s = 1, SUBS do
    counts[s] = 0
    local r = assert(require("orket.c.http").request { url = servers[(s - 1) % k + 1].url .. "/v1/events",
      headers = { "Authorization: Bearer " .. admin }, total_timeout_ms = 600000 })
    assert(r:headers() == 200, "a subscriber was refused")
    subs[s] = { r = r, t = orket.spawn(function()
      local carry = ""
      while true do
        local ev = r:read()
        if not ev then break end
        local text = carry .. table.concat(ev)
        counts[s] = counts[s] + select(2, text:gsub(pat, ""))
        carry = text:sub(-(#pat - 1))
      end
    end) }
  end
  orket.sleep(300)
  local function count(s) return counts[s] end
  local base = {}
  for s = 1, SUBS do base[s] = count(s) end
  local pids = {}
  for i = 1, k do pids[#pids + 1] = servers[i].pid end
  local c0, p0 = procstat.cpu_us(pids, server.dir .. "/data/postmaster.pid")
  for e = 1, EVENTS do
    assert(db:tx(function()
      db:event { kind = "comment", card = "NOTES-1", actor = "bench", data = { n = e } }
      return true
    end))
  end
  H.wait_for(function()
    orket.sleep(20)
    for s = 1, SUBS do if count(s) - base[s] < EVENTS then return false end end
    return true
  end, "every subscriber's events", 20000)
  local c1, p1 = procstat.cpu_us(pids, server.dir .. "/data/postmaster.pid")
  -- the servers' journal reads for the event streams, over every server (/metrics): a count,
  -- not a time, so the machine's noise does not touch it
  local reads = 0
  for i = 1, k do
    local st, text = H.fetch { url = servers[i].url .. "/metrics", headers = { "Authorization: Bearer " .. admin } }
    assert(st == 200, "/metrics answered " .. tostring(st))
    for n in text:gmatch('orket_sse_journal_reads_total{reason="%w+"} (%d+)') do reads = reads + tonumber(n) end
  end
  for s = 1, SUBS do
    assert(count(s) - base[s] == EVENTS, "a subscriber saw an event twice")
    subs[s].t:cancel()
    subs[s].r:close()
  end
  for i = 1, k do assert(servers[i].stop() == 0) end
  local n = EVENTS * SUBS
  return (c1 - c0) / n, string.format("servers %.1f, PostgreSQL %.1f, writer and subscribers %.1f; journal reads %.2f an event",
    (p1.servers - p0.servers) / n, (p1.postgres - p0.postgres) / n, (p1.self - p0.self) / n, reads / EVENTS)
end

local one, two, ratio = {}, {}, {}
-- (the server and the temp dirs go whatever happens)
local done <close> = setmetatable({}, { __close = function()
  db:close()
  H.kill_servers()
  server.stop()
  H.cleanup()
end })
for r = 1, ROUNDS do
  local parts1, parts2
  one[r], parts1 = measure(1)
  two[r], parts2 = measure(2)
  ratio[r] = two[r] / one[r]
  print(string.format("round %d: CPU per delivered event, 1 server %.1f us (%s), 2 servers %.1f us (%s); ratio %.2f",
    r, one[r], parts1, two[r], parts2, ratio[r]))
end
print(string.format("fan-out across servers, %d subscribers, %d events, %d rounds (CPU of every process):", SUBS, EVENTS,
  ROUNDS))
print(string.format("  floor, 1 server: us per delivered event %s", stats.line(one, "%.1f")))
print(string.format("  2 servers: us per delivered event %s; ratio %s (target <= 1.20)", stats.line(two, "%.1f"),
  stats.line(ratio)))
