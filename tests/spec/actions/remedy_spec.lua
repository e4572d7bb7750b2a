-- Each refusal of the state machine reaches the model with its own remedy: the gate's
-- denial of a status change says what to do about the rule that was broken.
local gate = require "orket.gate"
local tools = require "orket.tools"
local sm = require "orket.c.statemachine"
local H = require "tests.helpers"

local reg = assert(tools.load_dirs { H.ROOT .. "/tools" })

local function status_change(args, card, actor)
  return gate.check { tool = "update_issue_status", args = args, tools = reg,
    actor = actor or { seat = "senior_developer", roles = { "coder" } },
    card = card or { id = "ISS-1", type = "issue", status = "in_progress", worked_by = "senior_developer" } }
end

describe("remedies of state machine refusals", function()
  it("tells a worker who sets done to hand in for review", function()
    local d = status_change({ status = "done" }, { id = "ISS-1", type = "issue", status = "code_review" })
    assert.equal("deny", d.verdict)
    assert.equal("EREVIEWER", d.code)
    assert.matches("code_review", d.remedy, 1, true)
    assert.matches("integrity_guard", d.remedy, 1, true)
  end)

  it("tells a move to blocked without a reason which reasons there are", function()
    local d = status_change { status = "blocked" }
    assert.equal("deny", d.verdict)
    assert.equal("EREASON_REQUIRED", d.code)
    assert.matches("wait_reason", d.remedy, 1, true)
    assert.matches("resource, dependency, review, input or system", d.remedy, 1, true)
  end)

  it("gives each rule its own remedy, distinct from the generic one", function()
    local generic = "Choose a status this card may move to from its current one."
    local reviewer = status_change({ status = "done" }, { id = "ISS-1", type = "issue", status = "code_review" })
    local reason = status_change { status = "blocked" }
    local self_review = status_change({ status = "done" },
      { id = "ISS-1", type = "issue", status = "code_review", worked_by = "integrity_guard" },
      { seat = "integrity_guard", roles = { "integrity_guard" } })
    assert.equal("ESELF_REVIEW", self_review.code)
    assert.are_not.equal(reviewer.remedy, reason.remedy)
    for _, d in ipairs { reviewer, reason, self_review } do assert.are_not.equal(generic, d.remedy) end
    local seen = {}
    for _, code in ipairs(sm.codes()) do
      local r = sm.remedy(code)
      assert.is_string(r, code)
      assert.is_nil(seen[r], code .. " shares its remedy with " .. tostring(seen[r]))
      seen[r] = code
    end
    assert.is_nil(sm.remedy("ENOT_A_CODE")) -- the gate's generic remedy then
  end)
end)
