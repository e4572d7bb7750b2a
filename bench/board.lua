-- bench/board.lua: a 10,000-card board (a rock, its epics, issues with dependencies and
-- priorities): import, then the ready order and the whole board as `orket board --json`
-- prints it, each beside its floor (a bare read of the same rows through the store binding)
-- alternated in one run, then 1,000 transitions each committed with its journal event.
-- Run: build/orket lua bench/board.lua [ALTERNATIONS]
package.path = package.orket_home .. "/?.lua;" .. package.path
local store = require "orket.store"
local import = require "orket.import"
local board_mod = require "orket.board"
local boardview = require "orket.views.board"
local cjson = require "cjson"
local uv = require "luv"

local EPICS, ISSUES = 20, 9979 -- with the rock: 10,000 cards
local ROUNDS = tonumber(arg and arg[1]) or 5
local MOVES = 1000

local tmp = assert(uv.fs_mkdtemp("/tmp/orket-bench.XXXXXX"))
assert(uv.fs_mkdir(tmp .. "/epics", 493))

-- A wide, realistic graph: each issue depends on up to two earlier ones (often in another
-- epic), a few epics on an earlier epic; priorities high, medium and low.
local epics = {}
for e = 1, EPICS do
  epics[e] = { id = "E" .. e, name = "epic " .. e, issues = {} }
  if e > 1 and e % 4 == 0 then epics[e].depends_on = { "E" .. (e - 3) } end
end
for i = 1, ISSUES do
  local deps = {}
  if i > 10 and i % 3 ~= 0 then deps[#deps + 1] = "BIG-" .. (i - 7) end
  if i > 100 and i % 5 == 0 then deps[#deps + 1] = "BIG-" .. (i - 97) end
  local list = epics[(i % EPICS) + 1].issues
  list[#list + 1] = { id = "BIG-" .. i, summary = "issue number " .. i, priority = (i % 3) + 1,
    seat = "senior_developer", depends_on = deps, description = string.rep("words ", 20) }
end
local rock = { type = "rock", id = "R", name = "the rock", epics = {} }
for e = 1, EPICS do
  rock.epics[e] = { epic = "E" .. e }
  local f = assert(io.open(tmp .. "/epics/e" .. e .. ".json", "w"))
  f:write(cjson.encode(epics[e]))
  f:close()
end
local f = assert(io.open(tmp .. "/epics/rock.json", "w"))
f:write(cjson.encode(rock))
f:close()

local function ms(t0) return (uv.hrtime() - t0) / 1e6 end

local db = assert(store.open(tmp .. "/.orket/orket.db"))
local t0 = uv.hrtime()
local r = assert(import.import(db, tmp))
local import_ms = ms(t0)
local CARDS = 1 + EPICS + ISSUES
assert(r.created == CARDS, r.created)
t0 = uv.hrtime()
local r2 = assert(import.import(db, tmp))
local reimport_ms = ms(t0)
assert(r2.unchanged == CARDS)

local b = board_mod.open(db)

-- The floor: every column of every card, and every dependency, read once.
local function floor()
  local cards = assert(db:rows([[SELECT id, type, parent, name, summary, description, note, requirements,
    acceptance, priority, seat, department, status, wait_reason, retries, worked_by, source,
    created_at, updated_at FROM cards ORDER BY created_at, rowid]]))
  local deps = assert(db:rows("SELECT card_id, depends_on FROM dependencies ORDER BY card_id, position"))
  return #cards + #deps
end

local runnable, json_bytes
local function ready() runnable = #assert(b:ready()) end
local function json() json_bytes = #assert(boardview.json(b)) end

local function timed(fn)
  collectgarbage()
  local s = uv.hrtime()
  fn()
  return (uv.hrtime() - s) / 1e6
end

floor(); ready(); json() -- warm the page cache and the code
local samples = { floor = {}, ready = {}, json = {}, ready_x = {}, json_x = {} }
for i = 1, ROUNDS do
  local fl = timed(floor)
  local rd = timed(ready)
  local js = timed(json)
  samples.floor[i], samples.ready[i], samples.json[i] = fl, rd, js
  samples.ready_x[i], samples.json_x[i] = rd / fl, js / fl
end

local spread = require("bench.stats").spread
local function line(name, list, unit)
  local lo, med, hi = spread(list)
  return string.format("%-34s min %8.2f  median %8.2f  max %8.2f %s", name, lo, med, hi, unit)
end

print(string.format("board: import %d cards: %.0f ms (%.1f us/card)", CARDS, import_ms, import_ms * 1000 / CARDS))
print(string.format("board: re-import unchanged: %.0f ms", reimport_ms))
print(string.format("board: %d cards, %d alternations of floor / ready / json (%d runnable, %d bytes of JSON)",
  CARDS, ROUNDS, runnable, json_bytes))
print("board: " .. line("floor (bare read of cards, deps)", samples.floor, "ms"))
print("board: " .. line("ready order (target < 10 ms)", samples.ready, "ms"))
print("board: " .. line("ready / floor", samples.ready_x, "x"))
print("board: " .. line("board --json (target < 30 ms)", samples.json, "ms"))
print("board: " .. line("board --json / floor", samples.json_x, "x"))

local actor = { seat = "senior_developer", roles = { "senior_developer" } }
local events0 = db:row("SELECT count(*) AS n FROM events").n
t0 = uv.hrtime()
local moved = 0
for i = 1, MOVES do
  -- ready -> blocked(resource), where the card allows it: one commit each
  if b:transition("BIG-" .. i, "blocked", { actor = actor, reason = "resource" }) then moved = moved + 1 end
end
local moves_ms = ms(t0)
assert(db:row("SELECT count(*) AS n FROM events").n - events0 >= moved)
print(string.format("board: %d transitions, each its own commit with its event: %.0f ms (%.0f us each, %.0f/s)",
  moved, moves_ms, moves_ms * 1000 / moved, moved / (moves_ms / 1000)))
db:close()
if os.getenv("ORKET_BENCH_KEEP") then print("kept " .. tmp) return end
os.execute("rm -rf '" .. tmp .. "'")
