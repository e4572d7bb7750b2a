-- PostgreSQL round trips on the loop (orket.c.pg: a task waits, the loop goes on) against
-- the floor measured in the same run: a blocking libpq client (bench/pgfloor.c,
-- PQexecParams) doing the same `SELECT $1::int8` on the same server. The two alternate over
-- several rounds; each round prints floor, figure and ratio, then min/median/max of the
-- ratio. Also: the same round trips from 4 tasks on a pool of 4 connections, as
-- round trips per second. Skipped without PostgreSQL 15 or a C compiler.
local PG = require "tests.pg"
local H = require "tests.helpers"
local pg = require "orket.c.pg"
local pgpool = require "orket.store.pgpool"
local uv = require "luv"

local ROUNDS = tonumber(arg[1]) or 5
local N = tonumber(arg[2]) or 2000

local ok, why = PG.available()
if not ok then
  print("skipped: " .. why)
  return
end
local dir = H.tmpdir()
local floor_bin = dir .. "/pgfloor"
if not os.execute(string.format("cc -O2 -o %s %s/bench/pgfloor.c $(pkg-config --cflags --libs libpq) 2>/dev/null",
    H.quote(floor_bin), H.quote(H.ROOT))) then
  print("skipped: cannot build bench/pgfloor.c (no C compiler or libpq-dev)")
  H.cleanup()
  return
end

local server = PG.start()
local function run()
  local function floor_us()
    local p = io.popen(string.format("%s %s %d", H.quote(floor_bin), H.quote(server.url), N))
    local out = p:read("a")
    p:close()
    return assert(tonumber(out), "pgfloor failed: " .. out)
  end

  local conn = assert(pg.connect(server.url))
  local function figure_us()
    local t0 = uv.hrtime()
    for i = 1, N do
      local rows = conn:query("SELECT $1::int8 AS v", i)
      assert(rows and rows[1].v == i)
    end
    return (uv.hrtime() - t0) / 1e3 / N
  end

  figure_us() -- warm both sides once
  floor_us()
  local ratios = {}
  print(string.format("round trip `SELECT $1::int8`, %d per round (us each)", N))
  for r = 1, ROUNDS do
    local f = floor_us()
    local x = figure_us()
    ratios[r] = x / f
    print(string.format("  round %d: floor %.1f us  figure %.1f us  ratio %.2f", r, f, x, x / f))
  end
  table.sort(ratios)
  print(string.format("  ratio min/median/max: %.2f / %.2f / %.2f", ratios[1], ratios[(#ratios + 1) // 2], ratios[#ratios]))
  conn:close()

  local pool = pgpool.new { url = server.url, size = 4 }
  local t0 = uv.hrtime()
  local tasks = {}
  for w = 1, 4 do
    tasks[w] = orket.spawn(function()
      for i = 1, N do assert(pool:row("SELECT $1::int8 AS v", i)) end
    end)
  end
  for _, t in ipairs(tasks) do assert(t:join()) end
  local s = (uv.hrtime() - t0) / 1e9
  print(string.format("pool of 4, 4 tasks: %d round trips in %.2f s: %.0f per second", 4 * N, s, 4 * N / s))
  pool:close()
end
local okr, err = pcall(run)
server.stop()
H.cleanup()
if not okr then error(err, 0) end
