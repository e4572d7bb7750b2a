-- bench/board.lua: import of a 10,000-card epic, board:ready on it, and 1,000 transitions
-- each committed with its journal event. Run: build/orket lua bench/board.lua
local store = require "orket.store"
local import = require "orket.import"
local board_mod = require "orket.board"
local uv = require "luv"

local N, MOVES = 10000, 1000

local tmp = assert(uv.fs_mkdtemp("/tmp/orket-bench.XXXXXX"))
assert(uv.fs_mkdir(tmp .. "/epics", 493))

-- A wide, realistic graph: each issue depends on up to two earlier ones.
local issues = {}
for i = 1, N do
  local deps = {}
  if i > 10 and i % 3 ~= 0 then deps[#deps + 1] = "BIG-" .. (i - 7) end
  if i > 100 and i % 5 == 0 then deps[#deps + 1] = "BIG-" .. (i - 97) end
  issues[i] = { id = "BIG-" .. i, summary = "issue number " .. i, priority = (i % 3) + 1,
    seat = "senior_developer", depends_on = deps, description = string.rep("words ", 20) }
end
local f = assert(io.open(tmp .. "/epics/big.json", "w"))
f:write(assert(require("cjson").encode { id = "BIG", name = "A big epic", issues = issues }))
f:close()

local function ms(t0) return (uv.hrtime() - t0) / 1e6 end

local db = assert(store.open(tmp .. "/.orket/orket.db"))
local t0 = uv.hrtime()
local r = assert(import.import(db, tmp))
local import_ms = ms(t0)
assert(r.created == N + 1)
t0 = uv.hrtime()
local r2 = assert(import.import(db, tmp))
local reimport_ms = ms(t0)
assert(r2.unchanged == N + 1)

local b = board_mod.open(db)
t0 = uv.hrtime()
local ready = assert(b:ready("BIG"))
local ready_ms = ms(t0)

local actor = { seat = "senior_developer", roles = { "senior_developer" } }
local ids = {}
for i = 1, MOVES do ids[i] = "BIG-" .. i end
local events0 = db:row("SELECT count(*) AS n FROM events").n
t0 = uv.hrtime()
local moved = 0
for _, id in ipairs(ids) do
  -- ready -> blocked(resource) or ready -> canceled, whichever the card allows: one commit each
  if b:transition(id, "blocked", { actor = actor, reason = "resource" }) then moved = moved + 1 end
end
local moves_ms = ms(t0)
assert(db:row("SELECT count(*) AS n FROM events").n - events0 == moved)

print(string.format("board: import %d cards: %.0f ms (%.1f us/card)", N + 1, import_ms, import_ms * 1000 / (N + 1)))
print(string.format("board: re-import unchanged: %.0f ms", reimport_ms))
print(string.format("board: ready() on %d cards: %.1f ms (%d runnable)", N, ready_ms, #ready))
print(string.format("board: %d transitions, each its own commit with its event: %.0f ms (%.0f us each, %.0f/s)",
  moved, moves_ms, moves_ms * 1000 / moved, moved / (moves_ms / 1000)))
db:close()
os.execute("rm -rf '" .. tmp .. "'")
