-- A card waiting for an approval that a person cancels: the cancel is no decision on the
-- held call (orket.actions.move), so the request stays undecided, and nothing can decide it
-- any more. GET /v1/board's `held` (orket.store.approvals.held_cards) and the gauge
-- orket_approvals_waiting (orket.store.metrics.approvals_waiting) counted it for good, so
-- an alert on the gauge never cleared. They leave out finished cards. On the backend under
-- test (tests.backends: SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local B = require "tests.backends"
local approvals = require "orket.actions.approvals"
local move = require "orket.actions.move"
local store_approvals = require "orket.store.approvals"
local metrics = require "orket.store.metrics"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"

local DEV = { seat = "senior_developer", roles = { "coder" } }
local PERSON = { seat = "user:alice", roles = {}, by = "person" }

describe("an approval left undecided by a cancel, on " .. B.name(), function()
  local db, b
  before_each(function()
    db = B.open_store()
    assert(db:tx(function()
      imports.insert_card(db, { id = "E", type = "epic", name = "E", priority = 2, seat = "developer" })
      for _, id in ipairs { "E-1", "E-2" } do
        imports.insert_card(db, { id = id, type = "issue", parent = "E", name = id, priority = 2,
          seat = "senior_developer" })
      end
      return true
    end))
    b = board_mod.open(db)
    for _, id in ipairs { "E-1", "E-2" } do
      assert(b:transition(id, "in_progress", { actor = DEV }))
      assert(approvals.request(db, b, { card = id, seat = "senior_developer", turn = 1, tool = "delete_file",
        args = { path = id .. ".txt" }, rule = "POLICY_ASK", reason = "deletions need approval", actor = DEV }))
    end
  end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("is no longer held nor counted as waiting, and stays undecided", function()
    assert.same({ "E-1", "E-2" }, store_approvals.held_cards(db))
    assert.equal(2, metrics.approvals_waiting(db))
    assert(db:tx(function()
      return move.move { db = db, board = b, card = "E-1", to = "canceled",
        opts = { actor = PERSON, note = "dropped from plan" }, event_actor = PERSON.seat }
    end))
    assert.equal("canceled", b:get("E-1").status)
    assert.same({ "E-2" }, store_approvals.held_cards(db))
    assert.equal(1, metrics.approvals_waiting(db))
    -- the request itself is as the cancel left it: nobody decided it
    local r = store_approvals.list(db, "E-1")[1]
    assert.is_nil(r.decision)
    assert.is_nil(r.decided_by)
    -- the other card's decision still counts it out as before
    local p = approvals.pending(db, "E-2")
    assert(db:tx(function()
      return approvals.decide(db, b, "E-2", { decision = "approve", by = "user:alice", approval = p.id })
    end))
    assert.same({}, store_approvals.held_cards(db))
    assert.equal(0, metrics.approvals_waiting(db))
  end)
end)
