-- A run and the issues under an epic or rock a person archived or canceled: archiving does
-- not end the children (the state machine archives from any status), and a run worked them
-- to done and merged them under a parent that says it is over. None gets a turn now, not even
-- one under way when its parent was archived; the run's end says which parent and how to
-- end them. And a stalled run's end, journaled, carries its stuck cards (a server's run had
-- only "stalled" to show).
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local scheduler = require "orket.engine.scheduler"

local PERSON = { seat = "developer", roles = {}, by = "person" }

local function turns_of(events)
  local n = {}
  for _, ev in ipairs(events) do
    if ev.type == "turn_start" then n[ev.card] = (n[ev.card] or 0) + 1 end
  end
  return n
end

local function run_end(db)
  local last
  for _, ev in ipairs(db:events {}) do
    if ev.kind == "run_end" then last = ev end
  end
  return last
end

describe("issues under an archived parent", function()
  after_each(H.cleanup)

  it("get no turn: a run of the archived epic works none and says why", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" } })
    assert(b:transition("E", "archived", { actor = PERSON }))
    local e, events = F.engine(db, b)
    local status, report = e:execute(assert(e:start("E")))
    assert.equal("stalled", status)
    assert.same({}, turns_of(events))
    assert.equal("ready", b:get("E-1").status)
    assert.equal("E is archived: the 2 unfinished issues under it are not worked; end each (E-1, E-2) with orket "
      .. "cancel ID \"reason\" (or archive it: POST /v1/cards/ID/move {\"to\":\"archived\"})", report.reason)
    for _, s in ipairs(report.stuck) do
      assert.equal("E is archived: its issues are not worked", s.reason)
      assert.equal(string.format("orket cancel %s \"reason\" (or archive it: POST /v1/cards/%s/move "
        .. "{\"to\":\"archived\"})", s.card, s.card), s.next)
    end
    -- what refuses `orket run E`, and `orket run E-1`
    assert.equal(report.reason, scheduler.ended_target(b, b:get("E")))
    assert.matches("^E is archived: its issues are not worked; end E%-1 with orket cancel E%-1",
      scheduler.ended_target(b, b:get("E-1")))
    db:close()
  end)

  it("get no new turn once the parent is archived during the run", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" }, { id = "E-2", summary = "b" } })
    local client = F.llm(b)
    local chat = client.chat
    function client:chat(req)
      -- a person archives the epic while E-1's work turn goes
      if req.meta.card == "E-1" and req.meta.step == 1 then assert(b:transition("E", "archived", { actor = PERSON })) end
      return chat(self, req)
    end
    local e, events = F.engine(db, b, { llm = client, concurrency = 1 })
    local status, report = e:execute(assert(e:start("E")))
    assert.equal("stalled", status)
    -- the turn in flight ended (E-1 handed in); no review of it, no turn of E-2
    assert.same({ ["E-1"] = 1 }, turns_of(events))
    assert.equal("code_review", b:get("E-1").status)
    assert.equal("ready", b:get("E-2").status)
    assert.matches("^E is archived: the 2 unfinished issues", report.reason)
    local skipped = {}
    for _, ev in ipairs(events) do
      if ev.type == "card_skipped" then skipped[ev.card] = ev.reason end
    end
    assert.equal("E is archived: its issues are not worked", skipped["E-1"])
    db:close()
  end)

  it("are left out of a rock's run, its other epics worked", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "a" } })
    assert(db:tx(function()
      local imports = require "orket.store.imports"
      imports.insert_card(db, { id = "R", type = "rock", name = "Rock", priority = 2 })
      imports.insert_card(db, { id = "G", type = "epic", parent = "R", name = "Other", priority = 2 })
      assert(db:run("UPDATE cards SET parent = 'R' WHERE id = 'E'"))
      return true
    end))
    b.cache = nil
    assert(b:create { parent = "G", id = "G-1", summary = "g", seat = "senior_developer" })
    assert(b:transition("E", "archived", { actor = PERSON }))
    assert.is_nil(scheduler.ended_target(b, b:get("R")))
    local e, events = F.engine(db, b)
    local status, report = e:execute(assert(e:start("R")))
    assert.equal("stalled", status)
    assert.same({ ["G-1"] = 2 }, turns_of(events))
    assert.equal("done", b:get("G-1").status)
    assert.equal("ready", b:get("E-1").status)
    -- what is left is all under E, the run's reason says so; a rock with other work left is
    -- not refused (ended_target above), its cards under E said one by one
    assert.matches("^E is archived: the 1 unfinished issue under it is not worked; end each %(E%-1%)", report.reason)
    assert.equal("E is archived: its issues are not worked", report.stuck[1].reason)
    db:close()
  end)
end)

describe("a stalled run's end in the journal", function()
  after_each(H.cleanup)

  it("carries each stuck card's reason and next command", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", {
      { id = "E-1", summary = "ask [input]" }, { id = "E-2", summary = "after", depends_on = { "E-1" } } })
    local e, events = F.engine(db, b)
    local status = e:execute(assert(e:start("E")))
    assert.equal("stalled", status)
    local ev = run_end(db)
    assert.equal("stalled", ev.data.status)
    assert.equal("2 cards did not finish:\n"
      .. "E-1 (waiting_for_developer): waiting for input from a person; next: orket answer E-1 "
      .. "\"your answer\"\n"
      .. "E-2 (ready): waits for E-1 (waiting_for_developer, waiting for the developer); next: orket answer E-1 "
      .. "\"your answer\"", ev.data.reason)
    -- the process's own event keeps its reason (none here) and says the same as stuck_note
    assert.equal("run_end", events[#events].type)
    assert.is_nil(events[#events].reason)
    assert.equal(ev.data.reason, events[#events].stuck_note)
    db:close()
  end)

  it("is bounded: 20 cards, each line cut, then how many more", function()
    local issues = {}
    for i = 1, 25 do issues[i] = { id = "E-" .. i, summary = "ask [input]" } end
    local db, b = F.fixture(H.tmpdir() .. "/o.db", issues)
    -- a long comment on each, which its stall reason ends with, on lines of its own
    for i = 1, 25 do
      assert(b:comment("E-" .. i, { author = "developer", body = "first line\n" .. string.rep("x", 400) }))
    end
    local e = F.engine(db, b, { concurrency = 4 })
    assert.equal("stalled", (e:execute(assert(e:start("E")))))
    local lines = {}
    for l in (run_end(db).data.reason .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
    assert.equal(22, #lines)
    assert.equal("25 cards did not finish:", lines[1])
    assert.equal("and 5 more ('orket board' shows them)", lines[22])
    for i = 2, 21 do assert.is_true(#lines[i] <= 300 + 20, lines[i]) end
    assert.matches("^E%-1 %(waiting_for_developer%): waiting for input from a person: first line xxx.*%.%.%. %(%d+ "
      .. "bytes%)$", lines[2])
    db:close()
  end)
end)
