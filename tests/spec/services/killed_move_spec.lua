-- The guard against redoing a half-done turn, card by card: a killed run of X left a turn
-- on X-1 half done, and an import moved X-1 under Y. Compared by the runs' targets alone
-- on the board as it is now, a run of Y passed the guard and asked the model and ran the
-- tools of that turn again. On the backend under test (tests.backends: SQLite, or
-- PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local B = require "tests.backends"
local recorded = require "orket.engine.recorded"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"

local function card(db, id, typ, parent)
  imports.insert_card(db, { id = id, type = typ, parent = parent, name = id, priority = 2, seat = "developer" })
end

-- a run of target with a turn begun on each of cards, its first step recorded
local function killed(db, target, cards)
  local run = db:record_run { target = target, kind = "epic" }
  assert(db:tx(function()
    for _, c in ipairs(cards) do
      db:event { kind = "turn_begin", card = c, run = run, data = { turn = 1, phase = "work" } }
      assert(db:record_turn { run = run, card = c, seat = "developer", turn = 1, response = { content = "a" },
        data = { step = 1 } })
    end
    return true
  end))
  return run
end

describe("a new run's guard against a killed run's half-done turn, on " .. B.name(), function()
  local db
  before_each(function()
    db = B.open_store()
    assert(db:tx(function()
      for _, e in ipairs { "X", "Y", "Z" } do card(db, e, "epic") end
      card(db, "X-1", "issue", "X")
      card(db, "X-2", "issue", "X")
      card(db, "X-3", "issue", "X")
      return true
    end))
  end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  local function move(id, to)
    assert(db:run("UPDATE cards SET parent = ? WHERE id = ?", to, id))
  end

  it("holds for the target that holds the card now, after an import moved it", function()
    local run = killed(db, "X", { "X-1" })
    move("X-1", "Y")
    local board = board_mod.open(db)
    local other, why = recorded.unfinished_overlap(db, board, "Y")
    assert.equal(run, (other or {}).id)
    assert.matches("run " .. run .. " (X) did not finish (it was killed) and left a turn on X-1 half done "
      .. "(X-1 is now under Y: an import moved it): continue it with 'orket resume " .. run .. "'", why, 1, true)
    -- the card itself, and still its old epic (the run's target)
    assert.equal(run, (recorded.unfinished_overlap(db, board, "X-1") or {}).id)
    assert.equal(run, (recorded.unfinished_overlap(db, board, "X") or {}).id)
    -- not a target that holds none of its cards
    assert.is_nil(recorded.unfinished_overlap(db, board, "Z"))
    -- a run of Y is kind "unfinished" to in_the_way
    local _, _, kind = recorded.in_the_way(H.tmpdir(), db, board, "Y", { prune = false })
    assert.equal("unfinished", kind)
    -- the turn ended: nothing half done any more
    db:event { kind = "turn_end", card = "X-1", run = run, data = { turn = 1, outcome = "handed_in" } }
    assert.is_nil(recorded.unfinished_overlap(db, board, "Y"))
  end)

  it("says a live run's turn on a moved card as a run working it now", function()
    local run = killed(db, "X", { "X-1" })
    move("X-1", "Y")
    local other, why, live = recorded.unfinished_overlap(db, board_mod.open(db), "Y", { { id = run, pid = 4242 } })
    assert.is_true(live)
    assert.same({ run, 4242, "X" }, { other.id, other.pid, other.target })
    assert.matches("run " .. run .. " (X) is finishing a turn on X-1 now, begun before an import moved it (X-1 is "
      .. "now under Y): wait for it to end", why, 1, true)
  end)

  it("counts a turn begun with no step recorded as nothing to redo", function()
    local run = db:record_run { target = "X", kind = "epic" }
    db:event { kind = "turn_begin", card = "X-1", run = run, data = { turn = 1 } }
    move("X-1", "Y")
    assert.is_nil(recorded.unfinished_overlap(db, board_mod.open(db), "Y"))
    -- a model failure is a step recorded
    db:event { kind = "model_failure", card = "X-1", run = run, data = { class = "transient", error = "x" } }
    assert.equal(run, (recorded.unfinished_overlap(db, board_mod.open(db), "Y") or {}).id)
  end)

  it("reads a bounded number of cards, and takes a run with more as in the way of every run", function()
    local max = recorded.OPEN_TURNS_MAX
    finally(function() recorded.OPEN_TURNS_MAX = max end)
    recorded.OPEN_TURNS_MAX = 2
    local run = killed(db, "X", { "X-1", "X-2", "X-3" })
    local cards, more = recorded.open_turn_cards(db, run)
    assert.same({ { "X-1", "X-2" }, true }, { cards, more })
    local _, why = recorded.unfinished_overlap(db, board_mod.open(db), "Z")
    assert.matches("left turns half done on more than 2 cards", why, 1, true)
    recorded.OPEN_TURNS_MAX = 3
    assert.same({ { "X-1", "X-2", "X-3" }, false }, { recorded.open_turn_cards(db, run) })
    assert.is_nil(recorded.unfinished_overlap(db, board_mod.open(db), "Z"))
  end)
end)
