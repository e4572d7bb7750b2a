-- bench/pgboard.lua: what the board costs on PostgreSQL without its card cache (a store
-- without cards_stamp reads every card). The floor is a bare round trip (SELECT 1) on the
-- same store; the figure board:get of one card of a 500-card board (the card and its
-- dependencies in one statement). For scale, the same board:get on SQLite with its cache.
-- Alternated rounds, min/median/max. Starts the tests' server (tests/pg.lua).
-- Run: build/orket lua bench/pgboard.lua [ROUNDS]
package.path = package.orket_home .. "/?.lua;" .. package.orket_home .. "/?/init.lua;" .. package.path
local PG = require "tests.pg"
local store = require "orket.store"
local board_mod = require "orket.board"
local stats = require "bench.stats"
local uv = require "luv"

local ROUNDS = tonumber(arg and arg[1]) or 5
local CALLS = 1000
local ok, why = PG.available()
if not ok then print("skipped: " .. why) return end
local server = PG.start()

local function fill(db)
  local imports = require "orket.store.imports"
  assert(db:tx(function()
    imports.insert_card(db, { id = "E", type = "epic", priority = 2 })
    for i = 1, 500 do
      imports.insert_card(db, { id = "E-" .. i, type = "issue", parent = "E", priority = 2 })
      if i > 1 then imports.add_dependency(db, "E-" .. i, "E-" .. (i - 1), 1) end
    end
    return true
  end))
  return board_mod.open(db)
end

local pg = assert(store.open_url(server.url))
local tmp = assert(uv.fs_mkdtemp("/tmp/orket-bench.XXXXXX"))
local lite = assert(store.open(tmp .. "/orket.db"))
local bpg, blite = fill(pg), fill(lite)

local function per_call(f)
  local t0 = uv.hrtime()
  for i = 1, CALLS do f(i) end
  return (uv.hrtime() - t0) / CALLS / 1000 -- us
end
local floor_f = function() assert(pg:row("SELECT 1 AS x")) end
local get_f = function(i) assert(bpg:get("E-" .. (i % 500 + 1))) end
local lite_f = function(i) assert(blite:get("E-" .. (i % 500 + 1))) end

local floors, figures, ratios, lites = {}, {}, {}, {}
for r = 1, ROUNDS do
  local a, b
  if r % 2 == 1 then a = per_call(floor_f); b = per_call(get_f) else b = per_call(get_f); a = per_call(floor_f) end
  floors[r], figures[r], ratios[r], lites[r] = a, b, b / a, per_call(lite_f)
end
print(string.format("round trip (floor) %s us", stats.line(floors, "%.1f")))
print(string.format("board:get on PostgreSQL, no cache (figure) %s us", stats.line(figures, "%.1f")))
print(string.format("ratio %s", stats.line(ratios, "%.2f")))
print(string.format("board:get on SQLite with its cache %s us", stats.line(lites, "%.1f")))
pg:close()
lite:close()
server.stop()
os.execute("rm -rf " .. tmp)
