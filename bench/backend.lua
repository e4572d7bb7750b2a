-- bench/backend.lua: what the backend dispatch (orket.store.backend.twin) costs SQLite's
-- hot path. The floor is a named operation called directly (the module loaded without
-- its twin); the figure the same operation through the dispatch, as every caller now
-- calls it. Two operations: journal.last_retry (an indexed read, the engine asks it every
-- step) and cards.exists (the cheapest read there is). Alternated rounds, min/median/max.
-- Run: build/orket lua bench/backend.lua [ROUNDS]
package.path = package.orket_home .. "/?.lua;" .. package.path
local store = require "orket.store"
local stats = require "bench.stats"
local rt = require "orket.c.runtime"
local uv = require "luv"

local ROUNDS = tonumber(arg and arg[1]) or 7
local CALLS = 20000

-- the module as it would be without dispatch: loaded with a backend whose twin() is the identity
local function raw(name)
  local saved = package.loaded["orket.store.backend"]
  package.loaded["orket.store.backend"] = { twin = function(_, m) return m end }
  local m = assert(loadfile(package.searchpath("orket.store." .. name, package.path)))()
  package.loaded["orket.store.backend"] = saved
  return m
end

local tmp = assert(uv.fs_mkdtemp("/tmp/orket-bench.XXXXXX"))
local db = assert(store.open(tmp .. "/orket.db"))
local imports = require "orket.store.imports"
assert(db:tx(function()
  for i = 1, 200 do imports.insert_card(db, { id = "C-" .. i, type = "issue", priority = 2 }) end
  for i = 1, 2000 do db:event { kind = i % 10 == 0 and "retry" or "transition", card = "C-" .. (i % 200 + 1) } end
  return true
end))

local function time(f)
  local t0 = rt.hrtime and rt.hrtime() or uv.hrtime()
  for i = 1, CALLS do f(db, "C-" .. (i % 200 + 1)) end
  return ((rt.hrtime and rt.hrtime() or uv.hrtime()) - t0) / CALLS / 1000 -- us per call
end

for _, op in ipairs { { "journal", "last_retry" }, { "cards", "exists" } } do
  local direct, twin = raw(op[1])[op[2]], require("orket.store." .. op[1])[op[2]]
  local floors, figures, ratios = {}, {}, {}
  time(direct); time(twin) -- warm the statement cache
  for r = 1, ROUNDS do
    local a, b
    if r % 2 == 1 then a = time(direct); b = time(twin) else b = time(twin); a = time(direct) end
    floors[r], figures[r], ratios[r] = a, b, b / a
  end
  print(string.format("%s.%s: floor (direct) %s us, figure (dispatched) %s us, ratio %s", op[1], op[2],
    stats.line(floors, "%.3f"), stats.line(figures, "%.3f"), stats.line(ratios, "%.3f")))
end
db:close()
os.execute("rm -rf " .. tmp)
