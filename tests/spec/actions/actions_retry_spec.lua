-- orket.actions.retry: a blocked or waiting card back to ready with its counters reset and a
-- retry event; a card waiting for an approval is refused (EUSAGE) with the request, since an
-- approval is decided, not retried; and what the board refuses comes back as it says.
local retry = require "orket.actions.retry"
local approvals = require "orket.actions.approvals"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

local DEV = { seat = "senior_developer", roles = { "coder" } }
local PERSON = { seat = "operator", roles = {} }

describe("actions.retry", function()
  local db, b
  before_each(function()
    db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "one" } })
    assert(b:transition("E-1", "in_progress", { actor = DEV }))
  end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("puts a blocked card back to ready, with the note as a comment and a retry event", function()
    assert(b:transition("E-1", "blocked", { actor = DEV, reason = "resource" }))
    local c = assert(retry.retry(db, b, "E-1", PERSON, "more budget now"))
    assert.equal("ready", c.status)
    assert.equal("ready", b:get("E-1").status)
    local comments = b:comments("E-1")
    assert.equal("more budget now", comments[#comments].body)
    local evs = db:events { card = "E-1" }
    local last = evs[#evs]
    assert.equal("retry", last.kind)
    assert.equal("blocked", last.data.from)
    assert.equal("resource", last.data.reason)
  end)

  it("refuses a card waiting for an approval, naming the request", function()
    assert(approvals.request(db, b, { card = "E-1", seat = "senior_developer", turn = 1, tool = "delete_file",
      args = { path = "old.txt" }, rule = "POLICY_ASK", reason = "deletions need approval", actor = DEV }))
    assert.equal("waiting_for_developer", b:get("E-1").status)
    local c, err, code, detail = retry.retry(db, b, "E-1", PERSON)
    assert.is_nil(c)
    assert.equal("EUSAGE", code)
    assert.matches("E%-1 waits for approval of delete_file", err)
    assert.matches("which is decided, not retried", err, 1, true)
    assert.equal("E-1", detail.card)
    assert.equal(approvals.pending(db, "E-1").id, detail.approval.id)
    assert.equal("waiting_for_developer", b:get("E-1").status)
  end)

  it("passes on what the board refuses", function()
    local c, err, code = retry.retry(db, b, "E-1", PERSON)
    assert.is_nil(c)
    assert.equal("ESTATE", code)
    assert.matches("only a blocked, waiting or ready_for_testing card can be retried", err, 1, true)
    c, _, code = retry.retry(db, b, "nope", PERSON)
    assert.is_nil(c)
    assert.equal("ENOENT", code)
  end)
end)
