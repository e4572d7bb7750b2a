-- The stall report at a run's end (scheduler.stuck) on large boards: a long dependency chain
-- is walked once, not once per waiting card (counted in board reads, not timed: a quadratic
-- walk of 3,000 cards read the board about 4.5 million times, and with more cards than the
-- board's cache each read was a query, the event loop held for minutes), and a card that
-- waits for many dependencies names the first ten and counts the others.
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local scheduler = require "orket.engine.scheduler"
local imports = require "orket.store.imports"

local CODER = { seat = "senior_developer", roles = { "coder" } }

-- Cards E-1..E-n under epic E, made in that order in one transaction (b:create checks each
-- for a cycle, too slow for thousands); deps(i) -> the ids card E-i depends on; done(i) ->
-- whether E-i is done.
local function board_of(n, deps, done)
  local db, b = F.fixture(H.tmpdir() .. "/o.db", {})
  assert(db:tx(function()
    for i = 1, n do
      imports.insert_card(db, { id = "E-" .. i, type = "issue", parent = "E", summary = "step " .. i, priority = 2,
        seat = "senior_developer" })
    end
    for i = 1, n do
      for pos, d in ipairs(deps(i)) do imports.add_dependency(db, "E-" .. i, d, pos) end
      if done and done(i) then assert(db:run("UPDATE cards SET status = 'done' WHERE id = ?", "E-" .. i)) end
    end
    return true
  end))
  return db, b
end

-- Runs the report with the board's reads counted: reads, {card = entry}
local function counted_report(b)
  local cards = scheduler.scope(b, { id = "E", type = "epic" })
  local reads, get, comments = 0, b.get, b.comments
  b.get = function(self, id) reads = reads + 1; return get(self, id) end
  b.comments = function(self, id) reads = reads + 1; return comments(self, id) end
  local ok, out = pcall(scheduler.stuck, b, cards, { run = 7 })
  b.get, b.comments = nil, nil
  assert(ok, out)
  local by = {}
  for _, s in ipairs(out) do by[s.card] = s end
  return reads, by, #out
end

local function block(b, id)
  assert(b:transition(id, "in_progress", { actor = CODER }))
  assert(b:transition(id, "blocked", { actor = CODER, reason = "system" }))
end

describe("the stall report", function()
  after_each(H.cleanup)

  local N = 3000

  it("walks a long chain once: board reads linear in its cards", function()
    -- E-i waits for E-(i-1); E-1 is blocked, so every other card's next step is E-1's
    local db, b = board_of(N, function(i) return i > 1 and { "E-" .. (i - 1) } or {} end)
    block(b, "E-1")
    local reads, by, n = counted_report(b)
    assert.equal(N, n)
    assert.is_true(reads <= 3 * N, string.format("%d board reads for %d cards (at most %d)", reads, N, 3 * N))
    assert.equal("once the model answers again, orket retry E-1", by["E-1"].next)
    assert.equal("waits for E-1 (blocked, blocked: the model or a role failed)", by["E-2"].reason)
    assert.equal("waits for E-2999 (ready, not finished)", by["E-" .. N].reason)
    for i = 2, N do assert.equal("once the model answers again, orket retry E-1", by["E-" .. i].next, "E-" .. i) end
    db:close()
  end)

  it("walks a chain listed from its far end once, however deep", function()
    -- the first card listed waits for the whole chain: E-i waits for E-(i+1), E-N is blocked
    local db, b = board_of(N, function(i) return i < N and { "E-" .. (i + 1) } or {} end)
    block(b, "E-" .. N)
    local reads, by = counted_report(b)
    assert.is_true(reads <= 3 * N, string.format("%d board reads for %d cards (at most %d)", reads, N, 3 * N))
    for i = 1, N - 1 do
      assert.equal("once the model answers again, orket retry E-" .. N, by["E-" .. i].next, "E-" .. i)
    end
    db:close()
  end)

  it("names the first ten unfinished dependencies of a card, then how many more", function()
    -- E-2..E-6 are done. E-1 waits for E-2..E-1001 (995 unfinished), E-1002 for E-2..E-16
    -- (ten unfinished: none left out), E-1003 for E-2..E-21 (fifteen)
    local last = { [1] = 1001, [1002] = 16, [1003] = 21 }
    local db, b = board_of(1003, function(i)
      local deps = {}
      for d = 2, last[i] or 1 do deps[#deps + 1] = "E-" .. d end
      return deps
    end, function(i) return i >= 2 and i <= 6 end)
    local _, by = counted_report(b)
    local ten = {}
    for d = 7, 16 do ten[#ten + 1] = "E-" .. d .. " (ready, not finished)" end
    ten = "waits for " .. table.concat(ten, ", ")
    -- (a length first: a failure here does not print the 29 KB line it finds)
    assert.is_true(#by["E-1"].reason < 400, #by["E-1"].reason .. " bytes")
    assert.equal(ten .. " and 985 more", by["E-1"].reason)
    assert.equal("orket run E", by["E-1"].next)
    assert.equal(ten, by["E-1002"].reason)
    assert.equal(ten .. " and 5 more", by["E-1003"].reason)
    db:close()
  end)

  -- The report of a board of tens of thousands of cards holds the thread for a second or
  -- more: the loop gets a pass meanwhile, and a stop asked then (a signal's handler, run on
  -- the loop) ends the run interrupted. Here the board's reads are made slow (1 ms each) and
  -- a timer asks the stop 5 ms into the report: without a pass it fires only after the
  -- report, and the run ended stalled.
  it("lets the loop run while it is made, and a stop asked then interrupts the run", function()
    local uv = require "luv"
    local issues = { { id = "E-1", summary = "ask [input]" } }
    for i = 2, 200 do issues[i] = { id = "E-" .. i, summary = "step " .. i, depends_on = { "E-" .. (i - 1) } } end
    local db, b = F.fixture(H.tmpdir() .. "/o.db", issues)
    local e = F.engine(db, b, {})
    local stuck, reads, timer = scheduler.stuck, 0, nil
    scheduler.stuck = function(board, cards, why)
      local get = board.get
      board.get = function(self, id)
        reads = reads + 1
        local t = uv.hrtime()
        repeat until uv.hrtime() - t >= 1e6
        return get(self, id)
      end
      timer = uv.new_timer()
      timer:start(5, 0, function() e:stop() end)
      local ok, out = pcall(stuck, board, cards, why)
      board.get = nil
      if not ok then error(out, 0) end
      return out
    end
    local ok, status, report = pcall(e.execute, e, assert(e:start("E")))
    scheduler.stuck = stuck
    if timer then timer:close() end
    assert(ok, status)
    assert.equal("interrupted", status)
    assert.same({}, report.stuck)
    assert.is_true(reads > 0 and reads < 199, reads .. " reads")
    db:close()
  end)
end)
