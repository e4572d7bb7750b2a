-- A requirements review is a question for a person: the architect gets one turn on it,
-- and when that turn does not hand it in the review waits for a person instead of being
-- worked until its turn budget blocks it and fails the run. Answering the review answers
-- the card it reviews. (orket.engine.review, run.lua, orket answer.)
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local answer = require "orket.actions.answer"
local review = require "orket.engine.review"

-- a reviewer that always rejects E-1; an architect that comments and never hands in
local function llm_for(b)
  local llm = F.llm(b)
  local inner = llm.chat
  function llm:chat(req)
    local m = req.meta
    if m.role == "integrity_guard" and m.step == 1 and m.card == "E-1" then
      return { content = "", tool_calls = { { id = "x", name = "add_issue_comment", arguments = { body = "still wrong" } },
        { id = "y", name = "update_issue_status", arguments = { status = "in_progress" } } }, usage = {} }
    end
    if m.role == "architect" and m.card ~= "E-1" then
      return { content = "", tool_calls = m.step == 1 and { { id = "a", name = "add_issue_comment",
        arguments = { body = "the acceptance contradicts itself" } } } or {}, usage = {} }
    end
    return inner(self, req)
  end
  return llm
end

describe("a requirements review", function()
  after_each(H.cleanup)

  it("takes one architect turn, then waits for a person; the run stalls instead of failing", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "hard" } })
    local e, events = F.engine(db, b, { llm = llm_for(b) })
    local status, info = e:execute(assert(e:start("E")))
    assert.equal("stalled", status)
    local rr = b:get("E-2")
    assert.matches("^Requirements review", rr.summary)
    assert.equal("E-1", review.reviewed_card(db, "E-2"))
    assert.is_nil(review.reviewed_card(db, "E-1"))
    assert.equal("waiting_for_developer", rr.status)
    assert.equal("input", rr.wait_reason)
    local turns, ended = 0, nil
    for _, ev in ipairs(events) do
      assert.is_false(ev.type == "card_blocked", "a card was blocked: " .. tostring(ev.detail))
      if ev.type == "turn_start" and ev.card == "E-2" then turns = turns + 1 end
      if ev.type == "run_end" then ended = ev end
    end
    assert.equal(1, turns)
    assert.same({ "E-1", "E-2" }, info.waiting)
    assert.same({ "E-1", "E-2" }, ended.waiting)
    -- the question is on the card, with the reviewers' notes
    local cs = b:comments("E-1")
    assert.matches("waiting for a person", cs[#cs].body, 1, true)
    assert.matches("integrity_guard: still wrong", cs[#cs].body, 1, true)
    -- a second run leaves both waiting and takes no turn
    local before = db:row("SELECT count(*) AS n FROM turns").n
    assert.equal("stalled", (e:execute(assert(e:start("E")))))
    assert.equal(before, db:row("SELECT count(*) AS n FROM turns").n)
    -- the answer given to the review goes to the card it reviews
    assert(answer.answer(db, b, "E-2", "The acceptance stands.", { seat = "developer", roles = {} }))
    assert.equal("ready", b:get("E-1").status)
    assert.equal(0, b:get("E-1").retries)
    assert.equal("archived", b:get("E-2").status)
  end)

  it("a card's own question is answered as before, not redirected", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "[input]" } })
    local e = F.engine(db, b, { llm = F.llm(b) })
    assert.equal("stalled", (e:execute(assert(e:start("E")))))
    assert.is_nil(review.reviewed_card(db, "E-1"))
    assert(answer.answer(db, b, "E-1", "sqlite", { seat = "developer", roles = {} }))
    assert.equal("ready", b:get("E-1").status)
  end)
end)
