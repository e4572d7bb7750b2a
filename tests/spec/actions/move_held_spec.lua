-- orket.actions.move of a card waiting for an approval: refused (EUSAGE) as
-- orket.actions.retry refuses a retry, naming the request and the routes that decide it,
-- and nothing moved; a move to canceled ends the card as a cancel does. A move used to leave
-- the request undecided on a card no longer waiting: no decision possible, every later ask
-- of its model refused while it stood.
local move = require "orket.actions.move"
local approvals = require "orket.actions.approvals"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

local DEV = { seat = "senior_developer", roles = { "coder" } }
local PERSON = { seat = "user:alice", roles = {}, by = "person" }

describe("actions.move of a card waiting for an approval", function()
  local db, b
  before_each(function()
    db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "one" } })
    assert(b:transition("E-1", "in_progress", { actor = DEV }))
    assert(approvals.request(db, b, { card = "E-1", seat = "senior_developer", turn = 1, tool = "delete_file",
      args = { path = "a.txt" }, rule = "POLICY_ASK", reason = "deletions need approval", actor = DEV }))
  end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  local function mv(to, reason)
    return db:tx(function()
      return move.move { db = db, board = b, card = "E-1", to = to, opts = { actor = PERSON, reason = reason },
        event_actor = PERSON.seat }
    end)
  end

  it("refuses it, naming the request and how to decide it, and moves nothing", function()
    local id = approvals.pending(db, "E-1").id
    for _, to in ipairs { "ready", "blocked", "in_progress" } do
      local out, err, code = mv(to, to == "blocked" and "resource" or nil)
      assert.is_nil(out)
      assert.equal("EUSAGE", code)
      assert.equal(string.format('E-1 waits for approval of delete_file {"path":"a.txt"} (request #%d), which is '
        .. "decided, not moved: approve it (POST /v1/cards/E-1/approve) or deny it (POST /v1/cards/E-1/deny)", id), err)
    end
    assert.equal("waiting_for_developer", b:get("E-1").status)
    assert.equal(id, approvals.pending(db, "E-1").id)
  end)

  it("lets a move to canceled end the card, as a cancel does", function()
    local out = assert(mv("canceled"))
    assert.equal("moved", out.code)
    assert.equal("canceled", b:get("E-1").status)
  end)

  it("moves it once the request is decided", function()
    assert(approvals.decide(db, b, "E-1", { decision = "deny", note = "keep a.txt", by = "user:alice" }))
    assert.equal("ready", b:get("E-1").status)
    assert(mv("blocked", "resource"))
    assert.equal("blocked", b:get("E-1").status)
  end)
end)
