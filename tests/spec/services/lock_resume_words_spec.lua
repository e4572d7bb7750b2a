-- The refusal of a new run beside a run that did not finish (the "together" review, finding
-- 3): shared by `orket run` and POST /v1/runs, it named only 'orket resume N', a terminal's
-- command, to an API client; it names the route too.
local H = require "tests.helpers"
local B = require "tests.backends"
local recorded = require "orket.engine.recorded"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"

describe("a new run refused beside an unfinished run", function()
  local db
  before_each(function()
    db = B.open_store()
    assert(db:tx(function()
      imports.insert_card(db, { id = "D", type = "epic", name = "D", priority = 2, seat = "developer" })
      imports.insert_card(db, { id = "D-1", type = "issue", parent = "D", name = "D-1", priority = 2, seat = "developer" })
      return true
    end))
  end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("says how to continue it from a terminal and over the API", function()
    local run = db:record_run { target = "D", kind = "epic" }
    assert(db:tx(function()
      db:event { kind = "turn_begin", card = "D-1", run = run, data = { turn = 1, phase = "work" } }
      assert(db:record_turn { run = run, card = "D-1", seat = "developer", turn = 1, response = { content = "a" },
        data = { step = 1 } })
      return true
    end))
    local _, why = recorded.unfinished_overlap(db, board_mod.open(db), "D-1")
    assert.matches(string.format("continue it with 'orket resume %d' (over the API: POST /v1/runs/%d/resume)", run, run),
      why, 1, true)
  end)
end)
