-- Benchmark of a failover under workers (docs/workers.md, "A database that fails over"):
-- three `orket worker`s work an epic of ISSUES issues on a PostgreSQL primary with a
-- synchronous streaming standby (tests/pg.lua; store.url names both, read-write first);
-- once a few cards are done the primary is stopped at once and the standby promoted.
-- The floor is the promotion: from the primary's stop until `pg_ctl promote -w` says the
-- standby takes writes. The figure is the workers' resumption: from the same moment until
-- every worker has recorded a turn again (a turn_end in its output after the stop). Both
-- are measured in each of ROUNDS rounds, with min/median/max of the ratio.
-- Target: the workers resume within 2x the promotion.
--   build/orket lua bench/failover.lua [ROUNDS] [ISSUES]
-- Without PostgreSQL 15 installed it says so and prints nothing else.
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local stats = require "bench.stats"
local H = require "tests.helpers"
local PG = require "tests.pg"
local WP = require "tests.worker_project"

local ROUNDS = tonumber(arg and arg[1]) or 3
local N = tonumber(arg and arg[2]) or 60
local WORKERS = 3

local ok, why = PG.available()
if not ok then
  print("failover under workers: skipped (" .. why .. ")")
  return
end
local fake = require("tests.fake_server").start()

-- the number of turn_end lines in each worker's output
local function turn_ends(dir)
  local out = {}
  for k = 1, WORKERS do out[k] = select(2, (H.read(dir .. "/w" .. k .. ".out") or ""):gsub('"type":"turn_end"', "")) end
  return out
end

local function merged(dir)
  local p = io.popen("ls -1 " .. H.quote(dir .. "/workspace") .. " 2>/dev/null")
  local n = 0
  for name in p:lines() do if name:match("%.line$") then n = n + 1 end end
  p:close()
  return n
end

-- One failover -> promotion ms, resumption ms
local function round()
  local primary = PG.start { commits_survive_kill = true, sync_standby = true }
  local standby, pids = nil, {}
  local done <close> = setmetatable({}, { __close = function()
    for _, pid in ipairs(pids) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    if standby then standby.stop() end
    primary.stop()
  end })
  standby = PG.standby(primary)
  local url = primary.url:gsub("host=([^&]*)", "host=%1," .. standby.dir) .. "&target_session_attrs=read-write"
  -- every answer takes 30 ms: turns are always in flight
  local dir = WP.project(fake.url, { epics = { { id = "F", n = N } }, slow = 30, store_url = url })
  for k = 1, WORKERS do pids[k] = WP.start_worker(dir, k, { start = "F", lease_ms = 30000 }) end
  H.wait_for(function()
    orket.sleep(20)
    return merged(dir) >= 6
  end, "the first cards", 3000)
  local before = turn_ends(dir)
  local t0 = uv.hrtime()
  primary.kill()
  standby.promote()
  local promoted = (uv.hrtime() - t0) / 1e6
  H.wait_for(function()
    orket.sleep(5)
    local now = turn_ends(dir)
    for k = 1, WORKERS do if now[k] <= before[k] then return false end end
    return true
  end, "every worker to record a turn again", 6000)
  local resumed = (uv.hrtime() - t0) / 1e6
  return promoted, resumed
end

local promote, resume, ratio = {}, {}, {}
local ended <close> = setmetatable({}, { __close = function()
  fake.stop()
  H.cleanup()
end })
for r = 1, ROUNDS do
  promote[r], resume[r] = round()
  ratio[r] = resume[r] / promote[r]
  print(string.format("round %d: the standby promoted in %.0f ms, every worker working again after %.0f ms (ratio %.2f)",
    r, promote[r], resume[r], ratio[r]))
end
print(string.format("failover under %d workers, %d rounds (from the primary's stop):", WORKERS, ROUNDS))
print(string.format("  floor, the promotion (ms): %s", stats.line(promote, "%.0f")))
print(string.format("  every worker working again (ms): %s; ratio %s (target <= 2.00)", stats.line(resume, "%.0f"),
  stats.line(ratio)))
