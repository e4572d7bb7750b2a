-- orket.board: cards, scheduling order, transitions through the C state machine with
-- their events, comments, create, history, memory; and docs/board.md against the code.
local H = require "tests.helpers"
local store = require "orket.store"
local B = require "tests.backends"
local board_mod = require "orket.board"
local sm = require "orket.c.statemachine"

local DEV = { seat = "developer", roles = { "senior_developer" } }
local REVIEWER = { seat = "reviewer", roles = { "integrity_guard" } }

-- A rock R and its epic E on the backend under test (tests.backends).
local function fixture()
  local db = B.open_store()
  local imports = require "orket.store.imports"
  assert(db:tx(function()
    imports.insert_card(db, { id = "R", type = "rock", priority = 2 })
    imports.insert_card(db, { id = "E", type = "epic", parent = "R", priority = 2 })
    return true
  end))
  return db, board_mod.open(db)
end

-- The card cache's own tests write around the board with SQLite's SQL.
local sqlite_it = B.name() == "sqlite" and it or function(name) pending(name .. " [SQLite only]") end

-- Moves an issue through the states to `to` with the right actors.
local function walk(b, id, path)
  for _, step in ipairs(path) do
    local c, err = b:transition(id, step[1], { actor = step[2] or DEV, reason = step[3] })
    assert(c, err)
  end
end

describe("board", function()
  local db, b
  before_each(function() db, b = fixture() end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("inside one transaction, a board sees what another board or the store's operations changed", function()
    assert(b:create { parent = "E", summary = "one", id = "T-1" })
    assert(b:create { parent = "E", summary = "two", id = "T-2" })
    local other = board_mod.open(db)
    local imports = require "orket.store.imports"
    assert(db:tx(function()
      assert.equal("ready", b:get("T-1").status)
      assert.same({}, other:get("T-2").depends_on)
      assert(other:transition("T-1", "in_progress", { actor = DEV }))
      assert.equal("in_progress", b:get("T-1").status)
      -- a card rewritten by the store's import operations (its row and its dependencies)
      assert.same({}, b:get("T-2").depends_on)
      imports.add_dependency(db, "T-2", "T-1", 1)
      imports.update_card(db, { id = "T-2", parent = "E", summary = "two, renamed", priority = 1 })
      local t2 = b:get("T-2")
      assert.same({ "T-1" }, t2.depends_on)
      assert.equal("two, renamed", t2.summary)
      -- a nested transaction that fails undoes its move, and both boards see the card as before
      assert.is_nil(db:tx(function()
        assert(b:transition("T-1", "code_review", { actor = DEV }))
        assert.equal("code_review", other:get("T-1").status)
        return nil, "no"
      end))
      assert.equal("in_progress", b:get("T-1").status)
      assert.equal("in_progress", other:get("T-1").status)
      return true
    end))
    assert.equal("in_progress", b:get("T-1").status)
  end)

  it("creates, gets and lists cards as plain tables", function()
    local a = assert(b:create { parent = "E", summary = "first", priority = "High", seat = "developer" })
    assert.equal("E-1", a.id)
    assert.equal(3, a.priority)
    assert.equal("ready", a.status)
    assert.same({}, a.depends_on)
    local c = assert(b:create { parent = "E", summary = "second", depends_on = { "E-1" }, id = "X-1" })
    assert.same({ "E-1" }, c.depends_on)
    assert.same({ nil, 'board: no card "nope"', "ENOENT" }, { b:get("nope") })
    -- status: the card's status alone, read where get reads the card
    assert.equal("ready", b:status("X-1"))
    assert.same({ nil, 'board: no card "nope"', "ENOENT" }, { b:status("nope") })
    assert.has_error(function() b:status(1) end, "bad argument #1 to 'status' (card id string expected, got number)")
    assert.equal(2, #b:list { epic = "E" })
    assert.equal(3, #b:list { rock = "R" })
    assert.equal(1, #b:list { type = "epic" })
    assert.equal(2, #b:list { status = { "ready" }, type = "issue" })
    assert.same({ nil, 'board: unknown status "finished"', "ESTATUS" }, { b:list { status = "finished" } })
    assert.same({ nil, 'board: card "X-1" already exists', "EEXIST" }, { b:create { parent = "E", summary = "s", id = "X-1" } })
    -- the rule import keeps: an id git cannot name a branch by is refused, not failed at its run
    for _, bad in ipairs { "X.lock", "A..B", "a.", "-rf" } do
      assert.same({ nil, 'board: bad card id "' .. bad .. '": an id is ' .. board_mod.ID_RULE, "EINVAL" },
        { b:create { parent = "E", summary = "s", id = bad } })
    end
    assert.matches("not ending in '.' or '.lock'", board_mod.ID_RULE, 1, true)
    assert.same({ nil, 'board: depends_on[0]: unknown card "Q"', "ENOENT" }, { b:create { parent = "E", summary = "s", depends_on = { "Q" } } })
    -- its own epic or rock: a dependency that could never be met, as import refuses
    assert.same({ nil, 'board: depends_on[1]: "E" is the epic the new card belongs to; it could never start '
      .. "(depend on that epic's issues instead)", "EINVAL" },
      { b:create { parent = "E", summary = "s", depends_on = { "E-1", "E" } } })
    assert.same({ nil, 'board: depends_on[0]: "R" is the rock the new card belongs to; it could never start '
      .. "(depend on that rock's issues instead)", "EINVAL" }, { b:create { parent = "E", summary = "s", depends_on = { "R" } } })
    assert.same({ nil, "board: R is a rock; new issues go under an epic", "EINVAL" }, { b:create { parent = "R", summary = "s" } })
    assert.same({ nil, "board: E-1 is an issue; new issues go under an epic", "EINVAL" }, { b:create { parent = "E-1", summary = "s" } })
    assert.equal("EINVAL", select(3, b:create { parent = "E", summary = " " }))
    assert.equal("EINVAL", select(3, b:create { parent = "E", summary = "s", priority = "urgent" }))
    -- a fraction reads as neither medium nor high: refused, as import refuses it
    assert.same({ nil, "board: priority must be a whole number from 0 to 10 (3 high, 2 medium, 1 low), not 2.5", "EINVAL" },
      { b:create { parent = "E", summary = "s", priority = 2.5 } })
    assert.has_error(function() b:get(1) end, "bad argument #1 to 'get' (card id string expected, got number)")
  end)

  it("refuses a new card whose dependencies close a cycle or could never be met, as import refuses them", function()
    local imports = require "orket.store.imports"
    assert(db:tx(function()
      imports.insert_card(db, { id = "X", type = "epic", parent = "R", priority = 2 })
      imports.insert_card(db, { id = "X-1", type = "issue", parent = "X", priority = 2 })
      imports.insert_card(db, { id = "Y", type = "epic", priority = 2 })
      imports.insert_card(db, { id = "Y-1", type = "issue", parent = "Y", priority = 2 })
      imports.add_dependency(db, "X-1", "E", 1) -- X-1 waits for E, so E's new issue cannot wait for X-1
      imports.add_dependency(db, "Y", "E", 1) -- Y's issues wait for E (through Y's depends_on)
      return true
    end))
    assert(b:create { parent = "E", summary = "first", id = "E-1" })
    assert.same({ nil, "board: depends_on[1]: dependency cycle: E-2 -> X-1 -> E -> E-2; the new card and X-1 would "
      .. "wait for each other for ever: drop the dependency", "EINVAL" },
      { b:create { parent = "E", summary = "s", id = "E-2", depends_on = { "E-1", "X-1" } } })
    -- through an epic's depends_on, said as that epic
    assert.same({ nil, "board: depends_on[0]: dependency cycle: E-2 -> Y-1 -> Y -> E -> E-2; the new card and Y-1 "
      .. "would wait for each other for ever: drop the dependency", "EINVAL" },
      { b:create { parent = "E", summary = "s", id = "E-2", depends_on = { "Y-1" } } })
    assert.is_nil(b:get("E-2"))
    -- the other way round is no cycle
    assert(b:create { parent = "Y", summary = "after E's first", id = "Y-2", depends_on = { "E-1" } })
    -- a cycle through the epic's own depends_on, on the board before: no card made under it
    -- closes it, and a new card whose own dependencies do not is made
    assert(db:tx(function()
      imports.insert_card(db, { id = "Z", type = "epic", priority = 2 })
      imports.insert_card(db, { id = "Z-1", type = "issue", parent = "Z", priority = 2 })
      imports.insert_card(db, { id = "W", type = "epic", priority = 2 })
      imports.add_dependency(db, "W", "Z-1", 1)
      imports.add_dependency(db, "Z-1", "W", 1)
      return true
    end))
    assert(b:create { parent = "W", summary = "unrelated", id = "W-1", depends_on = { "E-1" } })
    -- a canceled dependency is never done
    assert(b:cancel("Y-2", { actor = { seat = "developer", roles = {}, by = "person" }, reason = "not needed" }))
    assert.same({ nil, "board: depends_on[0]: Y-2 is canceled, so the new card could never start (a dependency holds "
      .. "back a start until it is done): drop the dependency, or depend on the card that does its work now", "EINVAL" },
      { b:create { parent = "E", summary = "s", depends_on = { "Y-2" } } })
  end)

  -- A card's id names its directory and git branch: on a case-insensitive filesystem
  -- (macOS, Windows) API-1 and api-1 are one, and one card's work would land in the other's.
  -- The board's one check serves create (POST /v1/cards, a run's follow-up issues) and import.
  it("refuses a new id differing only in case from a card's, and generates none", function()
    assert(db:tx(function()
      require("orket.store.imports").insert_card(db, { id = "F", type = "epic", parent = "R", priority = 2 })
      return true
    end))
    assert(b:create { parent = "F", summary = "s", id = "API-1" })
    local made, msg, code = b:create { parent = "E", summary = "s", id = "api-1" }
    assert.is_nil(made)
    assert.same({ 'board: card id "api-1" differs only in case from the card "API-1": ' .. board_mod.CASE_RULE
      .. "; choose another id", "EEXIST" }, { msg, code })
    assert.is_nil(b:get("api-1"))
    -- E's first issue would be E-1, whose twin e-1 is F's: passed over
    assert(b:create { parent = "F", summary = "s", id = "e-1" })
    assert.equal("E-2", assert(b:create { parent = "E", summary = "s" }).id)
    -- one query an id, or one read of every id for many: the same answer
    local few = board_mod.case_twins(db, { "api-1", "Api-1", "API-1", "E-1", "x" })
    assert.same({ ["api-1"] = "API-1", ["Api-1"] = "API-1", ["E-1"] = "e-1" }, few)
    local many = { "api-1", "Api-1", "API-1", "E-1", "x" }
    for i = 1, 10 do many[#many + 1] = "other-" .. i end
    assert.same(few, board_mod.case_twins(db, many))
    assert.same({}, board_mod.case_twins(db, {}))
  end)

  it("refuses a seat the team lacks, and an id made from a long epic's that breaks the id rule", function()
    local seats = { "developer", "reviewer" }
    assert.same({ nil, 'board: seat "nobody" is not a seat of this team (seats: developer, reviewer)', "EINVAL" },
      { b:create { parent = "E", summary = "s", seat = "nobody", seats = seats } })
    assert.equal("developer", assert(b:create { parent = "E", summary = "s", seat = "developer", seats = seats }).seat)
    -- without the team's seats (a caller that does not know them) the seat is taken as given
    assert(b:create { parent = "E", summary = "s", seat = "nobody" })
    assert.has_error(function() b:create { parent = "E", summary = "s", seats = "developer" } end,
      "bad argument #1 to 'create' (field 'seats' must be an array of seats)")
    -- an epic id of 99 bytes is within the rule; its issue's "-1" is not
    local long = ("L"):rep(99)
    assert(db:tx(function()
      require("orket.store.imports").insert_card(db, { id = long, type = "epic", parent = "R", priority = 2 })
      return true
    end))
    local card, msg, code = b:create { parent = long, summary = "s" }
    assert.is_nil(card)
    assert.equal("EINVAL", code)
    assert.matches('the new card\'s id "' .. long .. '-1" would break the id rule', msg, 1, true)
    assert.equal(101, #(long .. "-1"))
    assert.equal("LONG-1", assert(b:create { parent = long, summary = "s", id = "LONG-1" }).id)
  end)

  it("orders ready work by dependencies, priority, dependents, then age", function()
    local function mk(summary, prio, deps) return assert(b:create { parent = "E", summary = summary, priority = prio, depends_on = deps }).id end
    local low_old = mk("low old", 1)
    local med_a = mk("medium, nothing waits", 2)
    local med_b = mk("medium, two wait", 2)
    local high = mk("high", 3)
    mk("waits on med_b", 1, { med_b })
    local chain = mk("waits on med_b too", 1, { med_b })
    mk("waits on chain", 1, { chain })
    local low_new = mk("low new", 1)
    local ids = {}
    for _, c in ipairs(assert(b:ready("E"))) do ids[#ids + 1] = c.id end
    assert.same({ high, med_b, med_a, low_old, low_new }, ids)
    assert.equal(3, b:ready("E")[2].dependents)
    -- finishing med_b makes its dependents runnable
    walk(b, med_b, { { "in_progress" }, { "code_review" }, { "done", REVIEWER } })
    ids = {}
    for _, c in ipairs(b:ready("R")) do ids[#ids + 1] = c.id end
    assert.same({ high, med_a, chain }, { ids[1], ids[2], ids[3] })
    assert.equal(6, #b:ready())
    assert.same({ nil, 'board: no card "Z"', "ENOENT" }, { b:ready("Z") })
    assert.equal("EINVAL", select(3, b:ready(high)))
  end)

  it("moves an issue through review, recording worked_by, retries and one event per change", function()
    local id = assert(b:create { parent = "E", summary = "work" }).id
    walk(b, id, { { "in_progress" }, { "code_review" }, { "in_progress", REVIEWER }, { "ready_for_testing" },
      { "code_review" }, { "done", REVIEWER } })
    local c = b:get(id)
    assert.equal("done", c.status)
    assert.equal("developer", c.worked_by)
    assert.equal(1, c.retries)
    local moves = {}
    for _, e in ipairs(b:history(id)) do
      if e.kind == "transition" then moves[#moves + 1] = e.data.from .. ">" .. e.data.to .. ":" .. e.actor end
    end
    assert.same({ "ready>in_progress:developer", "in_progress>code_review:developer",
      "code_review>in_progress:reviewer", "in_progress>ready_for_testing:developer",
      "ready_for_testing>code_review:developer", "code_review>done:reviewer" }, moves)
  end)

  it("retries a blocked card: back to ready, retries reset, the note a comment, a retry event", function()
    local id = assert(b:create { parent = "E", summary = "work" }).id
    walk(b, id, { { "in_progress" }, { "code_review" }, { "in_progress", REVIEWER }, { "blocked", DEV, "system" } })
    assert.equal(1, b:get(id).retries)
    local me = { seat = "developer", roles = {} }
    local c = assert(b:retry(id, { actor = me, note = "the model is back" }))
    assert.equal("ready", c.status)
    assert.equal(0, c.retries)
    assert.is_nil(c.wait_reason)
    assert.equal(0, b:get(id).retries) -- the cache saw the reset too
    local cs = b:comments(id)
    assert.equal("developer: the model is back", cs[#cs].author .. ": " .. cs[#cs].body)
    local h = b:history(id)
    assert.equal("retry", h[#h].kind)
    assert.same({ from = "blocked", reason = "system", retries = 1 }, h[#h].data)
    assert.equal("blocked>ready", h[#h - 1].data.from .. ">" .. h[#h - 1].data.to)
    -- only blocked or waiting cards; nothing is written when refused
    local n = #b:history(id)
    assert.same({ nil, "board: " .. id .. " is ready; only a blocked, waiting or ready_for_testing card can be retried", "ESTATE" },
      { b:retry(id, { actor = me, note = "again" }) })
    assert.equal(n, #b:history(id))
    assert.equal(1, #b:comments(id))
    assert.same({ nil, 'board: no card "NOPE"', "ENOENT" }, { b:retry("NOPE", { actor = me }) })
  end)

  it("refuses every guarded move with its code, a helpful message, and writes nothing", function()
    local dep = assert(b:create { parent = "E", summary = "dep" }).id
    local id = assert(b:create { parent = "E", summary = "x", depends_on = { dep } }).id
    local events = #db:events()
    local function refused(to, opts, code, pattern)
      local c, msg, got = b:transition(id, to, opts)
      assert.is_nil(c)
      assert.equal(code, got, msg)
      assert.matches(pattern, msg)
    end
    refused("in_progress", { actor = DEV }, "EDEPENDENCY", "^board: E%-2: the issue cannot start while a card it depends on is not done")
    -- the state machine reads a status as a C string: this is a start to it too
    refused("in_progress\0x", { actor = DEV }, "EDEPENDENCY", "cannot start while a card it depends on is not done")
    local ok, _, code = b:check_transition(id, "in_progress\0x", { actor = DEV })
    assert.is_nil(ok)
    assert.equal("EDEPENDENCY", code)
    refused("done", { actor = REVIEWER }, "ETRANSITION", "from ready it may go to in_progress, blocked, canceled or archived")
    refused("blocked", { actor = DEV }, "EREASON_REQUIRED", "needs a wait reason")
    refused("blocked", { actor = DEV, reason = "lunch" }, "EREASON_INVALID", '"lunch"')
    refused("canceled", { actor = DEV, reason = "input" }, "EREASON_UNEXPECTED", "leave the reason out")
    refused("canceled", { actor = DEV }, "EPERSON", "only a person cancels or archives a card")
    refused("archived", { actor = REVIEWER }, "EPERSON", "orket cancel")
    refused("ready", { actor = DEV }, "ESAME", "already ready")
    refused("finished", { actor = DEV }, "ESTATUS", '"finished"')
    walk(b, dep, { { "in_progress" }, { "code_review" }, { "done", REVIEWER } })
    events = #db:events()
    walk(b, id, { { "blocked", DEV, "input" } })
    assert.equal("input", b:get(id).wait_reason)
    walk(b, id, { { "in_progress" } })
    assert.is_nil(b:get(id).wait_reason)
    walk(b, id, { { "code_review" } })
    refused("done", { actor = DEV }, "EREVIEWER", "only a seat holding the integrity_guard role")
    refused("done", { actor = { seat = "developer", roles = { "integrity_guard" } } }, "ESELF_REVIEW", "seat developer did the work")
    -- a reviewer approves or sends back, nothing else
    refused("blocked", { actor = REVIEWER, reason = "review" }, "EREVIEW_DECISION", "approved %(done%) or sent back")
    refused("ready_for_testing", { actor = REVIEWER }, "EREVIEW_DECISION", "nothing else")
    assert.equal(events + 3, #db:events())
    walk(b, id, { { "done", REVIEWER } })
    refused("in_progress", { actor = DEV }, "ETERMINAL", "which is final; it may only go to archived")
    walk(b, id, { { "archived", { seat = "developer", roles = {}, by = "person" } } })
    refused("ready", { actor = DEV }, "ETERMINAL", "archived, which is final")
    assert.same({ nil, 'board: no card "nope"', "ENOENT" }, { b:transition("nope", "done", { actor = DEV }) })
    assert.has_error(function() b:transition(id, "done", {}) end,
      "bad argument #3 to 'transition' (actor = {seat=string, roles={...}} expected)")
    assert.has_error(function() b:transition(id, 5, { actor = DEV }) end,
      "bad argument #2 to 'transition' (status string expected)")
  end)

  it("keeps comments and history", function()
    local id = assert(b:create { parent = "E", summary = "x", actor = DEV }).id
    local cm = assert(b:comment(id, { author = "developer", body = "started" }))
    assert.equal(id, cm.card)
    assert.same({ nil, "board: a comment needs a body", "EINVAL" }, { b:comment(id, { author = "a", body = "  " }) })
    assert.same({ nil, 'board: no card "nope"', "ENOENT" }, { b:comment("nope", { author = "a", body = "b" }) })
    assert.equal("started", b:comments(id)[1].body)
    local kinds = {}
    for _, e in ipairs(b:history(id)) do kinds[#kinds + 1] = e.kind end
    assert.same({ "create", "comment" }, kinds)
  end)

  it("retries a card handed in for testing on to review, and archives its open requirements review", function()
    local me = { seat = "developer", roles = {}, by = "person" }
    local id = assert(b:create { parent = "E", summary = "work" }).id
    walk(b, id, { { "in_progress" }, { "ready_for_testing" } })
    local c = assert(b:retry(id, { actor = me }))
    assert.equal("code_review", c.status)
    assert.equal("developer", c.worked_by) -- still the seat that did the work
    -- a requirements review filed for a card is answered by the retry that answers the card
    local rr = assert(b:create { parent = "E", summary = "Requirements review: work" })
    walk(b, id, { { "in_progress", REVIEWER }, { "waiting_for_developer", DEV, "input" } })
    db:event { kind = "requirements_review", card = id, data = { issue = rr.id, key = 1 } }
    assert(b:retry(id, { actor = me, note = "the criteria are right" }))
    assert.equal("archived", b:get(rr.id).status)
    -- nothing left open holds the epic: it is done once the card is
    walk(b, id, { { "in_progress" }, { "code_review" }, { "done", REVIEWER } })
    assert.equal("done", b:get("E").status)
    assert.equal("done", b:get("R").status)
  end)

  it("lets a person cancel a card, or an epic with the unfinished cards under it, with the reason", function()
    local me = { seat = "developer", roles = {}, by = "person" }
    local a = assert(b:create { parent = "E", summary = "a" }).id
    local z = assert(b:create { parent = "E", summary = "z" }).id
    walk(b, a, { { "in_progress" }, { "code_review" } })
    assert.same({ nil, "board: a cancel needs a reason", "EINVAL" }, { b:cancel(a, { actor = me, reason = " " }) })
    local _, _, code = b:cancel(a, { actor = DEV, reason = "no" })
    assert.equal("EPERSON", code)
    assert.equal("code_review", b:get(a).status)
    local c = assert(b:cancel("E", { actor = me, reason = "dropped" }))
    assert.equal("canceled", c.status)
    assert.equal("canceled", b:get(a).status)
    assert.equal("canceled", b:get(z).status)
    assert.equal("canceled", b:get("R").status) -- its only epic was canceled
    local cs = b:comments("E")
    assert.equal("developer: Canceled: dropped", cs[1].author .. ": " .. cs[1].body)
    local h = b:history(z)
    assert.same({ "developer", "person", "its epic E was canceled: dropped" }, { h[#h].actor, h[#h].data.by, h[#h].data.note })
    assert.equal("ESAME", select(3, b:cancel(a, { actor = me, reason = "again" })))
    assert.same({ nil, "board: epic E is canceled; file the issue under an epic that is not finished", "EINVAL" },
      { b:create { parent = "E", summary = "late" } })
  end)

  it("moves a parent after its children: started, then done; a canceled child does not block", function()
    local me = { seat = "developer", roles = {}, by = "person" }
    local a = assert(b:create { parent = "E", summary = "a" }).id
    local z = assert(b:create { parent = "E", summary = "z" }).id
    assert.equal("ready", b:get("E").status)
    walk(b, a, { { "in_progress" } })
    assert.same({ "in_progress", "in_progress" }, { b:get("E").status, b:get("R").status })
    walk(b, a, { { "code_review" }, { "done", REVIEWER } })
    assert.equal("in_progress", b:get("E").status)
    assert(b:cancel(z, { actor = me, reason = "not needed" }))
    assert.same({ "done", "done" }, { b:get("E").status, b:get("R").status })
    local h = b:history("E")
    assert.same({ "orket", "engine", "all its children are done" }, { h[#h].actor, h[#h].data.by, h[#h].data.note })
  end)

  it("tags the events it writes with the current run until it is cleared", function()
    local id = assert(b:create { parent = "E", summary = "before", actor = DEV }).id
    b:set_run(7)
    local made = assert(b:create { parent = "E", summary = "during", actor = DEV }).id
    assert(b:comment(id, { author = "developer", body = "on it" }))
    walk(b, id, { { "in_progress" }, { "blocked", DEV, "input" } })
    assert(b:retry(id, { actor = DEV, note = "again" }))
    b:set_run(nil)
    assert(b:transition(id, "in_progress", { actor = DEV }))
    local runs = {}
    for _, e in ipairs(db:events {}) do runs[#runs + 1] = e.kind .. ":" .. tostring(e.run) end
    -- the first start moves the epic and the rock too (parents follow their issues)
    assert.same({ "create:nil", "create:7", "comment:7", "transition:7", "transition:7", "transition:7",
      "transition:7", "comment:7", "transition:7", "retry:7", "transition:nil" }, runs)
    assert.equal(made, db:events { run = 7 }[1].card)
    assert.has_error(function() b:set_run("7") end, "bad argument #1 to 'set_run' (run id integer or nil expected, got string)")
  end)

  it("finds dependency cycles and names them", function()
    assert.same({ "A", "B", "C", "A" }, board_mod.find_cycle({ A = { "B" }, B = { "C" }, C = { "A" } }, { "A" }))
    assert.is_nil(board_mod.find_cycle({ A = { "B" }, B = { "C" } }, { "A", "B", "C" }))
    -- the cycle alone, not the path that led to it; a node already done is not walked again
    assert.same({ "B", "C", "B" }, board_mod.find_cycle({ A = { "B" }, B = { "C" }, C = { "D", "B" } }, { "A" }))
    assert.is_nil(board_mod.find_cycle({ A = { "C" }, B = { "C" }, C = {} }, { "A", "B" }))
  end)

  it("waits_for has the scheduler's edges: depends_on, the epic's depends_on, and a parent's children", function()
    local graph, via = board_mod.waits_for {
      { id = "E", type = "epic", deps = { "X" } },
      { id = "E-1", type = "issue", parent = "E", deps = { "Y" } },
      { id = "F", type = "epic", deps = {} },
      { id = "F-1", type = "issue", parent = "F", deps = {} },
      { id = "X", type = "issue", parent = "F", deps = {} },
      { id = "Y", type = "issue", parent = "F", deps = {} },
    }
    assert.same({ "X", "E-1" }, graph.E)
    assert.same({ "Y", "(epic E)" }, graph["E-1"])
    assert.same({ "X" }, graph["(epic E)"])
    assert.same({ "F-1", "X", "Y" }, graph.F)
    assert.same({}, graph["F-1"]) -- an epic without dependencies adds no node
    assert.same({ ["(epic E)"] = "E" }, via)
    assert.same({ "E-1", "(epic E)", "X", "E-1" }, board_mod.find_cycle(board_mod.waits_for {
      { id = "E", type = "epic", deps = { "X" } },
      { id = "E-1", type = "issue", parent = "E", deps = {} },
      { id = "X", type = "issue", parent = "F", deps = { "E-1" } },
    }, { "E-1" }))
  end)

  it("waits_for leaves out what no longer holds a card back: a canceled child, a finished card's waits", function()
    -- E-2 (depending on F-1, which depends on epic E) canceled: E waits for E-1 alone, so the
    -- board runs (as docs/board.md advises for a stall), and a re-import is not refused
    local function board(e2, e)
      return {
        { id = "E", type = "epic", deps = {}, status = e },
        { id = "E-1", type = "issue", parent = "E", deps = {}, status = "ready" },
        { id = "E-2", type = "issue", parent = "E", deps = { "F-1" }, status = e2 },
        { id = "F", type = "epic", deps = {}, status = "ready" },
        { id = "F-1", type = "issue", parent = "F", deps = { "E" }, status = "ready" },
      }
    end
    assert.same({ "E", "E-2", "F-1", "E" }, board_mod.find_cycle(board_mod.waits_for(board("ready")), { "E" }))
    assert.same({ "E", "E-2", "F-1", "E" }, board_mod.find_cycle(board_mod.waits_for(board(nil)), { "E" }))
    for _, gone in ipairs { "canceled", "archived" } do
      assert.is_nil(board_mod.find_cycle(board_mod.waits_for(board(gone)), { "E", "F-1" }), gone)
    end
    -- a done epic waits for none of its children
    assert.is_nil(board_mod.find_cycle(board_mod.waits_for(board("ready", "done")), { "E", "F-1" }))
    -- a finished issue no longer waits for its epic's dependencies
    local graph = board_mod.waits_for {
      { id = "E", type = "epic", deps = { "X" } },
      { id = "E-1", type = "issue", parent = "E", deps = {}, status = "done" },
      { id = "E-2", type = "issue", parent = "E", deps = {} },
      { id = "X", type = "issue", deps = {} },
    }
    assert.same({}, graph["E-1"])
    assert.same({ "(epic E)" }, graph["E-2"])
  end)

  it("finds a cycle through 200,000 cards without running out of stack", function()
    local n, graph, nodes = 200000, {}, {}
    for i = 1, n do
      nodes[i] = "A" .. i
      graph[nodes[i]] = { "A" .. (i % n + 1) }
    end
    local cyc = board_mod.find_cycle(graph, nodes)
    assert.equal(n + 1, #cyc)
    assert.equal("A1", cyc[1])
    assert.equal("A200000", cyc[n])
    assert.equal("A1", cyc[n + 1])
    graph[nodes[n]] = {} -- a chain as long: no cycle
    assert.is_nil(board_mod.find_cycle(graph, nodes))
    -- said shortened: its first cards and its last, and how many are left out
    assert.equal("A1 -> A2 -> A3 -> A4 -> A5 -> A6 -> A7 -> A8 -> A9 -> A10 -> A11 -> A12 -> ... (199983 more) -> "
      .. "A199996 -> A199997 -> A199998 -> A199999 -> A200000 -> A1", board_mod.cycle_text(cyc))
    assert.equal("A -> B -> A", board_mod.cycle_text { "A", "B", "A" })
  end)
end)

describe("memory", function()
  local db, b, mem
  before_each(function()
    db, b = fixture()
    mem = require("orket.memory").open(db)
  end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("remembers and recalls by meaning of the words, best first, per card", function()
    local id = assert(b:create { parent = "E", summary = "x" }).id
    assert(mem:remember { card = id, text = "Deployments use a blue-green strategy on the cluster", tags = { "ops" } })
    assert(mem:remember { text = "The API answers in JSON; deploying it needs the API key" })
    assert(mem:remember { text = "Unrelated note about colours" })
    local r = mem:recall("how do we deploy the cluster?")
    assert.equal(2, #r)
    assert.matches("blue%-green", r[1].text)
    assert.is_true(r[1].score >= r[2].score)
    assert.same({ "ops" }, r[1].tags)
    assert.equal(1, #mem:recall("deploy", { card = id }))
    assert.same({}, mem:recall('"); DROP TABLE memory; --'))
    assert.equal(1, #mem:recall('AND OR NOT * "colours'))
    assert.same({ nil, 'memory: no card "nope"', "ENOENT" }, { mem:remember { card = "nope", text = "x" } })
    assert.equal("EINVAL", select(3, mem:remember { text = " " }))
    assert.has_error(function() mem:recall("x", { limit = 0 }) end,
      "bad argument #2 to 'recall' (limit must be an integer from 1 to 100)")
  end)

  it("tags its events with the current run", function()
    mem:set_run(3)
    assert(mem:remember { text = "during the run" })
    mem:set_run(nil)
    assert(mem:remember { text = "after it" })
    local runs = {}
    for _, e in ipairs(db:events {}) do if e.kind == "memory" then runs[#runs + 1] = tostring(e.run) end end
    assert.same({ "3", "nil" }, runs)
  end)
end)

describe("docs/board.md", function()
  local doc = assert(H.read(H.ROOT .. "/docs/board.md"))

  it("lists exactly the transitions the C state machine allows", function()
    local from_doc = {}
    for ty, from, tos in doc:gmatch("\n| (%a+) | ([%a_]+) |([%a_, ]*)|") do
      if ty ~= "type" then
        for to in tos:gmatch("[%a_]+") do from_doc[ty .. ":" .. from .. ">" .. to] = true end
        from_doc[ty .. ":" .. from] = true
      end
    end
    local from_code = {}
    for _, ty in ipairs(sm.types()) do
      for from, tos in pairs(sm.transitions(ty)) do
        from_code[ty .. ":" .. from] = true
        for _, to in ipairs(tos) do from_code[ty .. ":" .. from .. ">" .. to] = true end
      end
    end
    assert.same(from_code, from_doc)
    local rows = 0
    for k in pairs(from_doc) do if not k:find(">") then rows = rows + 1 end end
    assert.equal(27, rows) -- 3 types x 9 statuses
  end)

  it("lists exactly the refusal codes sm_check returns", function()
    local in_doc = {}
    for code in doc:gmatch("\n| `(E[%u_]+)` |") do in_doc[#in_doc + 1] = code end
    table.sort(in_doc)
    local codes = sm.codes()
    table.sort(codes)
    assert.same(codes, in_doc)
  end)
end)

describe("card copy", function()
  local copy = require("orket.card").copy

  it("copies every field, those past a card's columns too, and depends_on as its own array", function()
    local deps = { "B", "C" }
    local c = { id = "A", type = "issue", status = "ready", note = "n", extra = { 1 }, [7] = "seven", depends_on = deps }
    local out = copy(c)
    assert.are_not.equal(c, out)
    assert.same(c, out)
    assert.are_not.equal(deps, out.depends_on)
    assert.equal(c.extra, out.extra) -- a shallow copy: only depends_on is copied again
    out.depends_on[1], out.status = "X", "done"
    assert.same({ "B", "C" }, c.depends_on)
    assert.equal("ready", c.status)
    -- raw: a field only the metatable gives is not copied, nor the metatable
    local via = copy(setmetatable({ depends_on = {} }, { __index = { id = "M" } }))
    assert.is_nil(getmetatable(via))
    assert.is_nil(via.id)
    -- depends_on as ipairs reads it: up to the first hole
    assert.same({ "a" }, copy({ depends_on = { "a", nil, "c" } }).depends_on)
  end)

  it("ignores arguments past the card", function()
    local c, other = { id = "A", depends_on = { "B" } }, {}
    local out = copy(c, other)
    assert.are_not.equal(other, out)
    assert.same({}, other)
    assert.same(c, out)
    assert.same(c, copy(c, 1))
    assert.same(c, copy(c, nil))
  end)

  it("refuses a card without a depends_on array", function()
    assert.has_error(function() copy { id = "A" } end, "card copy: depends_on is a nil, not a table")
  end)
end)

describe("board card cache", function()
  local db, b
  before_each(function() db, b = fixture() end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("hands out copies, so a caller's changes never reach the next get", function()
    assert(b:create { parent = "E", id = "A", summary = "a" })
    local a = assert(b:get("A"))
    a.status, a.depends_on[1] = "done", "X"
    local again = assert(b:get("A"))
    assert.equal("ready", again.status)
    assert.same({}, again.depends_on)
    -- a move's answer too: the engine hands it to tool scripts as it is
    local moved = assert(b:transition("A", "in_progress", { actor = DEV }))
    moved.status, moved.depends_on[1] = "blocked", "Y"
    again = assert(b:get("A"))
    assert.equal("in_progress", again.status)
    assert.same({}, again.depends_on)
  end)

  it("sees this board's transitions and creates at once", function()
    assert(b:create { parent = "E", id = "A", summary = "a" })
    assert(b:create { parent = "E", id = "B", summary = "b", depends_on = { "A" } })
    assert.equal("ready", b:get("A").status)
    assert.equal("ready", b:get("B").status)
    walk(b, "A", { { "in_progress" } })
    assert.equal("in_progress", b:get("A").status)
    assert.same({ "A" }, b:get("B").depends_on)
  end)

  sqlite_it("sees writes made around the board on the same connection and by another connection", function()
    assert(b:create { parent = "E", id = "A", summary = "a" })
    assert.equal("a", b:get("A").summary)
    assert(db:run("UPDATE cards SET summary = 'changed' WHERE id = 'A'"))
    assert.equal("changed", b:get("A").summary)
    local other = assert(store.open(db.path))
    assert(other:run("UPDATE cards SET status = 'canceled', summary = 'elsewhere' WHERE id = 'A'"))
    other:close()
    local a = b:get("A")
    assert.equal("canceled", a.status)
    assert.equal("elsewhere", a.summary)
  end)

  it("forgets what a rolled-back transaction changed", function()
    assert(b:create { parent = "E", id = "A", summary = "a" })
    local ok, err = db:tx(function()
      walk(b, "A", { { "in_progress" } })
      assert.equal("in_progress", b:get("A").status)
      return nil, "undo"
    end)
    assert.is_nil(ok)
    assert.equal("undo", err)
    assert.equal("ready", b:get("A").status)
    -- a raised error inside a nested transaction too
    db:tx(function()
      pcall(db.tx, db, function()
        walk(b, "A", { { "in_progress" } })
        error("boom")
      end)
      return true
    end)
    assert.equal("ready", b:get("A").status)
  end)

  it("returns from a transition the card the store holds", function()
    assert(b:create { parent = "E", id = "A", summary = "a" })
    assert(b:get("A"))
    local moved = assert(b:transition("A", "in_progress", { actor = DEV }))
    moved = assert(b:transition("A", "code_review", { actor = DEV }))
    moved = assert(b:transition("A", "in_progress", { actor = REVIEWER }))
    local stored = board_mod.open(db):get("A") -- a board with nothing cached
    assert.same(stored, moved)
    assert.equal(1, stored.retries)
    assert.equal("developer", stored.worked_by)
    assert.same(stored, b:get("A"))
  end)

  it("keeps the cards a list is asked to keep: their first get reads nothing, and gets copies", function()
    assert(b:create { parent = "E", id = "A", summary = "a" })
    assert(b:create { parent = "E", id = "B", summary = "b", depends_on = { "A" } })
    local cards_op = require "orket.store.cards"
    local get, reads = cards_op.get, 0
    local ok, err = pcall(function()
      -- (in a transaction: PostgreSQL's stamp is the transaction's)
      assert(db:tx(function()
        local fresh = board_mod.open(db)
        local listed = assert(fresh:list({ epic = "E" }, true))
        cards_op.get = function(...) reads = reads + 1 return get(...) end
        listed[2].summary, listed[2].depends_on[1] = "mine", "X"
        local got = assert(fresh:get("B"))
        assert.equal("b", got.summary)
        assert.same({ "A" }, got.depends_on)
        assert.equal("ready", fresh:status("A"))
        assert.equal(0, reads)
        return true
      end))
      -- without keep, a list fills nothing (another transaction: PostgreSQL's boards in
      -- one share their cache)
      assert(db:tx(function()
        local other = board_mod.open(db)
        assert(other:list { epic = "E" })
        assert(other:get("A"))
        assert.equal(1, reads)
        return true
      end))
    end)
    cards_op.get = get
    assert(ok, err)
  end)

  sqlite_it("keeps nothing of a list that a change to cards overtook", function()
    assert(b:create { parent = "E", id = "A", summary = "a" })
    local cards_op = require "orket.store.cards"
    local list = cards_op.list
    local ok, err = pcall(function()
      local fresh = board_mod.open(db)
      assert.equal("a", fresh:get("A").summary) -- stamped and cached before the list
      -- the list's read done, cards change before the board looks again
      cards_op.list = function(...)
        local rows = list(...)
        assert(db:run("UPDATE cards SET summary = 'changed' WHERE id = 'A'"))
        return rows
      end
      local listed = assert(fresh:list({ epic = "E" }, true))
      assert.equal("a", listed[1].summary)
      cards_op.list = list
      assert.equal("changed", fresh:get("A").summary)
    end)
    cards_op.list = list
    assert(ok, err)
  end)

  sqlite_it("forgets a card that is no longer in the store", function()
    assert(b:create { parent = "E", id = "A", summary = "a" })
    assert(b:get("A"))
    db:exec("PRAGMA foreign_keys=OFF")
    assert(db:run("DELETE FROM cards WHERE id = 'A'"))
    local c, err, code = b:get("A")
    assert.is_nil(c)
    assert.equal("ENOENT", code)
    assert.matches("no card", err)
  end)
end)
