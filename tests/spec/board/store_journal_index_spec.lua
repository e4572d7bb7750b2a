-- A card's journal is read by the events_card index on both backends (tests.backends), never
-- by a walk of the whole journal: db:events{card=} (a card's history: orket card, GET
-- /v1/cards/{id} and every API write's answer) and the event stream of one card
-- (journal_reads.entries_after). The statements the reads run are explained, through a
-- store that records them.
local H = require "tests.helpers"
local B = require "tests.backends"

-- plan_of(db, fn) -> the query plans (one text) of every statement fn(spy) reads through spy
local function plan_of(db, fn)
  local plan = {}
  local function explain(_, sql, ...)
    local args = table.pack(...)
    assert(db:tx(function()
      local pre = "EXPLAIN QUERY PLAN "
      if B.name() == "pg" then
        -- a tiny table: told off a sequential scan, the planner takes an index it can use
        assert(db:exec("SET LOCAL enable_seqscan = off"))
        pre = "EXPLAIN "
      end
      for _, r in ipairs(assert(db:rows(pre .. sql,
        table.unpack(args, 1, args.n)))) do
        plan[#plan + 1] = r.detail or r["QUERY PLAN"]
      end
      return true
    end))
    return {}
  end
  local spy = setmetatable({ rows = explain, conn = { rows = explain } }, { __index = db })
  fn(spy)
  return table.concat(plan, "\n")
end

local function assert_by_card_index(plan)
  assert.truthy(plan:find("events_card", 1, true), plan)
  assert.is_nil(plan:find("SCAN events", 1, true), plan)
  assert.is_nil(plan:find("Seq Scan on events", 1, true), plan)
  assert.is_nil(plan:find("INTEGER PRIMARY KEY", 1, true), plan)
end

describe("a card's journal on " .. B.name(), function()
  after_each(H.cleanup)

  local function open()
    local db = B.open_store()
    local run = db:record_run { target = "E", kind = "epic" }
    assert(db:tx(function()
      for i = 1, 40 do db:event { kind = "note", card = "C" .. (i % 4), run = run, data = { n = i } } end
      db:event { kind = "note", data = { n = 0 } }
      return true
    end))
    return db, run
  end

  it("db:events{card=} reads the card's rows by events_card, and answers as before", function()
    local db, run = open()
    assert_by_card_index(plan_of(db, function(spy) spy:events { card = "C1" } end))
    assert_by_card_index(plan_of(db, function(spy) spy:events { card = "C1", run = run, after = 3, limit = 2 } end))
    local all = db:events { card = "C1" }
    assert.equal(10, #all)
    for _, e in ipairs(all) do assert.equal("C1", e.card) end
    local page = db:events { card = "C1", run = run, after = all[2].id, limit = 2 }
    assert.same({ all[3].id, all[4].id }, { page[1].id, page[2].id })
    assert.same({}, db:events { card = "C1", run = run + 1 })
    -- no card: every event, or a run's, from `after`
    local n = assert(db:row("SELECT COUNT(*) AS n FROM events")).n
    local nrun = assert(db:row("SELECT COUNT(*) AS n FROM events WHERE run_id = ?", run)).n
    assert.is_true(nrun >= 40 and n > nrun)
    assert.equal(n, #db:events {})
    assert.equal(nrun, #db:events { run = run })
    assert.equal(3, #db:events { after = all[10].id, limit = 3 })
    db:close()
  end)

  it("an event stream of one card reads by events_card", function()
    local db, run = open()
    local sj = require "orket.store.journal_reads"
    assert_by_card_index(plan_of(db, function(spy) sj.entries_after(spy, 0, nil, "C2", 100) end))
    assert_by_card_index(plan_of(db, function(spy) sj.entries_after(spy, 0, run, "C2", 100) end))
    assert.equal(10, #sj.entries_after(db, 0, nil, "C2", 100))
    assert.equal(10, #sj.entries_after(db, 0, run, "C2", 100))
    assert.equal(0, #sj.entries_after(db, 0, run + 1, "C2", 100))
    local n = assert(db:row("SELECT COUNT(*) AS n FROM events")).n
    local nrun = assert(db:row("SELECT COUNT(*) AS n FROM events WHERE run_id = ?", run)).n
    assert.equal(n, #sj.entries_after(db, 0, nil, nil, 100))
    assert.equal(nrun, #sj.entries_after(db, 0, run, nil, 100))
    assert.equal(5, #sj.entries_after(db, 0, nil, nil, 5))
    db:close()
  end)
end)
