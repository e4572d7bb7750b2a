-- Benchmark of `orket worker`: an epic of ISSUES issues (the engine benchmark's shape: every
-- issue two turns, the coder's and the reviewer's, one model call each; every tenth depends
-- on the one before) worked by 1, 2 and 4 worker processes (concurrency 1 each) sharing the
-- project and a PostgreSQL database (the tests' own server, tests/pg.lua), and by one
-- worker on SQLite, against the fake model server answering in 20 ms. Prints turns per
-- second and the overhead per turn (wall time per turn minus the model call's time the
-- journal recorded, at one worker); the floor is one worker on PostgreSQL, the figures 2
-- and 4 workers, alternated over ROUNDS rounds, with min/median/max of the ratios (target:
-- 4 workers >= 2.5x one). Then the claim rate of the leases on PostgreSQL: one claimer,
-- and four contending (tasks on four connections, FOR UPDATE SKIP LOCKED), each claiming
-- one card per transaction from a window of 16 candidates, as a worker's round does.
--   build/orket lua bench/workers.lua [ISSUES] [ROUNDS]
-- Without PostgreSQL 15 installed only the SQLite figures are printed.
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local stats = require "bench.stats"

local N = tonumber(arg and arg[1]) or 200
local ROUNDS = tonumber(arg and arg[2]) or 3
local BIN = os.getenv("ORKET_BIN") or (package.orket_home .. "/build/orket")
local q = require("tests.helpers").quote

local fake = require("tests.fake_server").start()

local function project(n, url)
  local dir = require("bench.project").make(n, fake.url .. "/v1", { model = "chunks=1,nolog,first_byte_ms=20,",
    extra = url and string.format("store = { url = %q }\n", url) })
  assert(os.execute(string.format("cd %s && %s import >/dev/null", q(dir), q(BIN))))
  return dir
end

-- PostgreSQL: the server, and a fresh database per run
local PG = require "tests.pg"
local server = PG.available() and PG.start() or nil
local dbs = 0
local function fresh_url()
  dbs = dbs + 1
  local name = "bench_" .. dbs
  local c <close> = assert(require("orket.c.pg").connect(server.url))
  assert(c:query("CREATE DATABASE " .. name))
  return (server.url:gsub("^(postgres[ql]*://[^/]*/)[^?]*", "%1" .. name)), name
end

-- One run of the epic by k workers -> turns/s, overhead us per turn (wall per turn minus the
-- recorded model latency; meaningful at k = 1)
local function run(k, pg)
  local url = pg and fresh_url()
  local dir = project(N, url)
  -- each worker under its own shell, which prints its status when it exits: reading those
  -- waits for all of them without polling (a poll that forks `kill -0` every few ms took
  -- CPU from the workers it measured)
  local shells = {}
  local t0 = uv.hrtime()
  for i = 1, k do
    shells[i] = io.popen(string.format("cd %s && %s worker --start B --drain --concurrency 1 --lease-ms 30000 "
      .. ">w%d.out 2>w%d.err; echo $?", q(dir), q(BIN), i, i))
  end
  for i = 1, k do
    local status = shells[i]:read("a")
    shells[i]:close()
    assert(tonumber(status) == 0, string.format("worker %d of %d exited with %s", i, k, status))
  end
  local wall = (uv.hrtime() - t0) / 1e9
  local r, done
  if url then
    local c <close> = assert(require("orket.c.pg").connect(url))
    r = assert(c:query([[SELECT COUNT(*)::int8 AS n, AVG((data->>'latency_ms')::float8) AS lat FROM turns]]))[1]
    done = assert(c:query("SELECT COUNT(*)::int8 AS n FROM cards WHERE type = 'issue' AND status = 'done'"))[1].n
  else
    local db = assert(require("orket.store").open(dir .. "/.orket/orket.db", { readonly = true }))
    r = db:row([[SELECT COUNT(*) AS n, AVG(json_extract(data, '$.latency_ms')) AS lat FROM turns]])
    done = db:row("SELECT COUNT(*) AS n FROM cards WHERE type = 'issue' AND status = 'done'").n
    db:close()
  end
  os.execute("rm -rf " .. q(dir))
  assert(done == N, string.format("%d workers left %d of %d issues done", k, done, N))
  local turns = r.n
  return turns / wall, (wall / turns) * 1e6 - (r.lat or 0) * 1000
end

local function claims_pg()
  if not server then return nil end
  local pool = require("orket.store.pgpool").new { url = (fresh_url()), size = 6 }
  assert(require("orket.store.pg_schema").migrate(pool))
  local ids = {}
  local function seed()
    assert(pool:tx(function(tx)
      assert(tx:query("DELETE FROM leases"))
      assert(tx:query("DELETE FROM cards"))
      assert(tx:query("DELETE FROM runs"))
      assert(tx:query("INSERT INTO runs (id, target, kind, started_at, data) VALUES (1, 'B', 'epic', now(), '{}')"))
      assert(tx:query([[INSERT INTO cards (id, type, status, created_at, updated_at)
        SELECT 'C-' || g, 'issue', 'ready', now(), now() FROM generate_series(1, 1000) g]]))
      return true
    end))
    for i = 1, 1000 do ids[i] = "C-" .. i end
  end
  local pgleases = require "orket.store.pg.leases"
  -- k claimers each claiming one card per transaction, in the same order, until none is left
  local function rate(k)
    seed()
    local tasks, ready = {}, 0
    local t0
    for w = 1, k do
      tasks[w] = orket.spawn(function()
        assert(pool:tx(function(tx)
          assert(tx:query("SELECT 1"))
          ready = ready + 1
          while ready < k do orket.sleep(1) end
          return true
        end))
        t0 = t0 or uv.hrtime()
        -- as a worker claims: a window of 16 candidates in the engine's order at a time,
        -- moving on when the window has nothing left for it
        -- (the cards it claimed are busy for it, as a worker's turns are: not offered again)
        local n, pos, mine = 0, 1, {}
        while pos <= #ids do
          local window = {}
          for i = pos, math.min(#ids, pos + 15) do
            if not mine[ids[i]] then window[#window + 1] = ids[i] end
          end
          local got = #window > 0 and assert(pool:tx(function(tx)
            return pgleases.claim(tx, { worker = "w" .. w, run = 1, ids = window, limit = 1, ttl_ms = 60000 })
          end)) or {}
          if #got == 0 then pos = pos + 16 else
            n = n + 1
            mine[got[1].card] = true
          end
        end
        return n
      end)
    end
    local total = 0
    for w = 1, k do
      local ok, n = tasks[w]:join()
      assert(ok, n)
      total = total + n
    end
    assert(total == 1000, "claimed " .. total)
    return total / ((uv.hrtime() - t0) / 1e9)
  end
  local one, four = {}, {}
  for _ = 1, ROUNDS do
    one[#one + 1] = rate(1)
    four[#four + 1] = rate(4)
  end
  pool:close()
  return one, four
end

local s1, sover, p1, p2, p4, pover = {}, {}, {}, {}, {}, {}
for round = 1, ROUNDS do
  s1[round], sover[round] = run(1, false)
  local line = string.format("round %d: SQLite 1 worker %.1f turns/s (overhead %.0f us/turn)", round, s1[round],
    sover[round])
  if server then
    p1[round], pover[round] = run(1, true)
    p2[round] = run(2, true)
    p4[round] = run(4, true)
    line = line .. string.format("; PostgreSQL 1 worker %.1f (overhead %.0f us/turn), 2 workers %.1f, 4 workers %.1f",
      p1[round], pover[round], p2[round], p4[round])
  end
  print(line)
end
print(string.format("%d issues, model 20 ms, concurrency 1 per worker, %d rounds:", N, ROUNDS))
print(string.format("  SQLite, 1 worker: turns/s %s; overhead per turn (us) %s", stats.line(s1, "%.1f"),
  stats.line(sover, "%.0f")))
if server then
  local r2, r4, rs = {}, {}, {}
  for i = 1, ROUNDS do r2[i], r4[i], rs[i] = p2[i] / p1[i], p4[i] / p1[i], p1[i] / s1[i] end
  print(string.format("  PostgreSQL, floor (1 worker): turns/s %s; overhead per turn (us) %s; against SQLite's one worker %s",
    stats.line(p1, "%.1f"), stats.line(pover, "%.0f"), stats.line(rs)))
  print(string.format("  PostgreSQL, 2 workers: turns/s %s; ratio %s", stats.line(p2, "%.1f"), stats.line(r2)))
  print(string.format("  PostgreSQL, 4 workers: turns/s %s; ratio %s (target >= 2.50)", stats.line(p4, "%.1f"),
    stats.line(r4)))
end
local one, four = claims_pg()
if one then
  local r = {}
  for i = 1, #one do r[i] = four[i] / one[i] end
  print("lease claims on PostgreSQL (one card per transaction, 1,000 ready cards):")
  print(string.format("  floor (1 claimer) claims/s: %s", stats.line(one, "%.0f")))
  print(string.format("  4 claimers contending (SKIP LOCKED) claims/s: %s; ratio %s", stats.line(four, "%.0f"),
    stats.line(r)))
else
  print("PostgreSQL: skipped (no PostgreSQL 15 here)")
end
if server then server.stop() end
fake.stop()
