-- The named operations the board, the ready order, the run loop, git work and the event
-- stream call (orket.store.cards, comments, journal, keys), with the same assertions on
-- the backend under test (tests.backends: SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local B = require "tests.backends"

local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"

local function open()
  local db = B.open_store()
  local imports = require "orket.store.imports"
  imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 2, seat = "developer" })
  imports.insert_card(db, { id = "E-1", type = "issue", parent = "E", name = "one", priority = 2, seat = "developer" })
  return db
end

describe("board operations on " .. B.name(), function()
  after_each(H.cleanup)

  it("cards: a card with its dependencies, lists, heads, counts, status changes, new issues", function()
    local db = open()
    local sc = require "orket.store.cards"
    local imports = require "orket.store.imports"
    imports.insert_card(db, { id = "E-2", type = "issue", parent = "E", name = "two", priority = 3, seat = "developer" })
    imports.insert_card(db, { id = "R", type = "rock", name = "rock", priority = 2 })
    assert.is_nil(sc.get(db, "nope"))
    sc.insert_issue(db, { id = "E-3", parent = "E", name = "three", summary = "s", priority = 1, seat = "developer" })
    sc.add_dependency(db, "E-3", "E-1", 1)
    sc.add_dependency(db, "E-3", "E-2", 2)
    sc.add_dependency(db, "E-3", "E-1", 3) -- already there: nothing
    local c = sc.get(db, "E-3")
    assert.same({ "E-1", "E-2" }, c.depends_on)
    assert.same({ "E-3", "issue", "E", "ready", 1, "s" }, { c.id, c.type, c.parent, c.status, c.priority, c.summary })
    assert.matches(ISO, c.created_at)
    assert.matches(ISO, c.updated_at)
    assert.same({ id = "E-3", type = "issue", parent = "E", status = "ready" }, sc.head(db, "E-3"))
    assert.is_nil(sc.head(db, "nope"))
    assert.equal(3, sc.child_count(db, "E"))
    assert.equal(2, sc.open_dependencies(db, "E-3", "E"))
    sc.set_status(db, "E-1", "done", nil, "developer", 0)
    assert.equal(1, sc.open_dependencies(db, "E-3", "E"))
    sc.set_status(db, "E-2", "blocked", "resource", nil, 1)
    local e2 = sc.get(db, "E-2")
    assert.same({ "blocked", "resource", 1 }, { e2.status, e2.wait_reason, e2.retries })
    sc.reset_retries(db, "E-2")
    assert.equal(0, sc.get(db, "E-2").retries)
    local counts = {}
    for _, r in ipairs(sc.child_statuses(db, "E")) do counts[r.status] = r.n end
    assert.same({ done = 1, blocked = 1, ready = 1 }, counts)
    local final = { "archived", "canceled", "done" }
    assert.is_true(sc.has_child_outside(db, "E", final))
    assert.is_false(sc.has_child_outside(db, "E-1", final)) -- no children
    sc.set_status(db, "E-2", "canceled", nil, nil, 0)
    assert.is_true(sc.has_child_outside(db, "E", final)) -- E-3 is still ready
    sc.set_status(db, "E-3", "done", nil, "developer", 0)
    assert.is_false(sc.has_child_outside(db, "E", final))
    assert.is_true(sc.has_child_outside(db, "E", { "done" })) -- E-2 is canceled
    sc.set_status(db, "E-2", "blocked", "resource", nil, 0)
    sc.set_status(db, "E-3", "ready", nil, nil, 0)
    local function ids(list)
      local out = {}
      for i, x in ipairs(list) do out[i] = x.id end
      return out
    end
    assert.same({ "E-1", "E-2", "E-3" }, ids(sc.children(db, "E")))
    assert.same({ "E-1", "E-2", "E-3" }, ids(sc.list(db, { epic = "E" })))
    assert.same({ "E-2", "E-3" }, ids(sc.list(db, { status = { "ready", "blocked" }, type = { "issue" } })))
    assert.same({ "E", "R" }, ids(sc.list(db, { type = { "epic", "rock" } })))
    assert.same({}, sc.list(db, { rock = "R" }))
    assert.same({}, sc.list(db, { status = {} }))
    assert.same({ "E-1", "E-2" }, ids(sc.list(db, { epic = "E", status = { "done", "blocked" } })))
    assert.same({ "E-1", "E-2" }, sc.list(db, { epic = "E" })[3].depends_on)
    assert.same({ "E-1", "E-3" }, ids(sc.some(db, { "E-3", "nope", "E-1" })))
    assert.is_nil(sc.some(db, { "E-3" })[1].depends_on)
    local light = sc.light(db)
    assert.equal(5, #light)
    assert.same({ id = "E-3", type = "issue", parent = "E", priority = 1, status = "ready" }, light[5])
    local deps = sc.dependencies(db)
    assert.same({ "E-3", "E-1" }, { deps[1].card_id, deps[1].depends_on })
    assert.is_true(sc.exists(db, "E-3"))
    assert.is_false(sc.exists(db, "nope"))
    assert.is_true(sc.is_issue(db, "E-3"))
    assert.is_false(sc.is_issue(db, "E"))
    db:close()
  end)

  it("cards: issues created in one transaction are listed in the order they were created", function()
    local db = open()
    local sc = require "orket.store.cards"
    assert(db:tx(function()
      for _, id in ipairs { "E-9", "E-10", "E-11" } do sc.insert_issue(db, { id = id, parent = "E", priority = 2 }) end
      return true
    end))
    local got = {}
    for i, c in ipairs(sc.children(db, "E")) do got[i] = c.id end
    assert.same({ "E-1", "E-9", "E-10", "E-11" }, got)
    got = {}
    for _, c in ipairs(sc.light(db)) do got[#got + 1] = c.id end
    assert.same({ "E", "E-1", "E-9", "E-10", "E-11" }, got)
    db:close()
  end)

  it("comments: written now, read back with the card's id", function()
    local db = open()
    local sc = require "orket.store.comments"
    local a = sc.insert(db, "E-1", "alice", "first")
    local b = sc.insert(db, "E-1", "bob", "second")
    sc.insert(db, "E", "carol", "elsewhere")
    local c = sc.get(db, a)
    assert.same({ a, "E-1", "alice", "first" }, { c.id, c.card, c.author, c.body })
    assert.matches(ISO, c.created_at)
    assert.is_nil(sc.get(db, 999))
    local list = sc.of_card(db, "E-1")
    assert.same({ a, b }, { list[1].id, list[2].id })
    db:close()
  end)

  it("journal: the newest id, what follows an id, a card's commits, merges and cancel", function()
    local db = open()
    local sj = require "orket.store.journal_reads"
    local before = sj.latest_id(db)
    local run = assert(db:record_run { target = "E", kind = "epic" })
    local c1 = db:event { kind = "commit", card = "E-1", run = run, actor = "developer", data = { id = "abc", turn = 1 } }
    db:event { kind = "merge_conflict", card = "E-1", data = { paths = {} } }
    assert.equal("merge_conflict", sj.last_merge_mark(db, "E-1"))
    db:event { kind = "merge_main", card = "E-1", data = {} }
    assert.equal("merge_main", sj.last_merge_mark(db, "E-1"))
    assert.is_nil(sj.last_merge_mark(db, "E"))
    assert.is_nil(sj.last_merge(db, "E-1"))
    db:event { kind = "merge", card = "E-1", data = { id = "m1" } }
    db:event { kind = "merge", card = "E-1", data = { id = "m2" } }
    assert.equal("m2", sj.last_merge(db, "E-1").id)
    local commits = sj.commits(db, "E-1")
    assert.equal(1, #commits)
    assert.same({ run, "developer", "abc", 1 }, { commits[1].run_id, commits[1].actor, commits[1].data.id, commits[1].data.turn })
    assert.is_nil(sj.last_cancel(db, "E-1"))
    db:event { kind = "transition", card = "E-1", actor = "alice", data = { from = "ready", to = "canceled", note = "out of scope" } }
    db:event { kind = "transition", card = "E-1", actor = "bob", data = { from = "ready", to = "in_progress" } }
    assert.same({ actor = "alice", note = "out of scope" }, sj.last_cancel(db, "E-1"))
    db:event { kind = "requirements_review", card = "E-1", data = { issue = "E-9" } }
    assert.same({ { issue = "E-9" } }, sj.card_event_data(db, "E-1", "requirements_review"))
    local latest = sj.latest_id(db)
    assert.is_true(latest > before)
    local after = sj.kinds_after(db, c1)
    assert.same({ "merge_conflict", "E-1" }, { after[1].kind, after[1].card_id })
    assert.equal(latest, after[#after].id)
    -- the ready order's read: only its kinds, then the newest event (its kind not one of them)
    db:event { kind = "transition", card = "E-1", data = { from = "in_progress", to = "ready" } }
    local moved = sj.latest_id(db)
    db:event { kind = "comment", card = "E-1", data = {} }
    local ev = sj.order_events_after(db, latest)
    assert.same({ { moved, "transition", "E-1" }, { moved + 1, "comment", "E-1" } },
      { { ev[1].id, ev[1].kind, ev[1].card_id }, { ev[2].id, ev[2].kind, ev[2].card_id } })
    assert.equal(2, #ev)
    local kinds = {}
    for i, e in ipairs(sj.order_events_after(db, c1)) do kinds[i] = e.kind end
    assert.same({ "transition", "transition", "transition", "comment" }, kinds) -- no merge marks, no review
    assert.same({}, sj.order_events_after(db, moved + 1))
    local mine = sj.entries_after(db, before, run, nil, 10)
    assert.same({ "run_start", "commit" }, { mine[1].kind, mine[2].kind })
    assert.equal("string", type(mine[2].data)) -- the JSON text as stored
    assert.same({ id = "abc", turn = 1 }, require("cjson").decode(mine[2].data))
    assert.matches(ISO, mine[2].at)
    assert.equal(c1, sj.entries_after(db, before, nil, "E-1", 1)[1].id)
    db:close()
  end)

  it("keys: the write probe changes nothing and is rolled back with its transaction", function()
    local db = open()
    local sk = require "orket.store.keys"
    local _, err = db:tx(function()
      assert(sk.write_probe(db))
      return nil, "probe"
    end)
    assert.equal("probe", err)
    assert.equal(0, sk.total_count(db))
    db:close()
  end)
end)
