-- A store read that fails raises the store's message: the runs, journal, card and sandbox
-- reads once answered such a failure as "nothing there" (no run, no move, no card, no
-- sandbox), so a new run could redo the turns a killed run left half done, a sandbox read
-- as gone and a lost store as "no such card".
local H = require "tests.helpers"
local store = require "orket.store"
local runs = require "orket.store.runs"
local sj = require "orket.store.journal_reads"
local sandboxes = require "orket.store.sandboxes"
local service = require "orket.sandboxes.service"
local recorded = require "orket.engine.recorded"
local costs = require "orket.store.costs"
local forge = require "orket.store.forge"

local BROKEN = "orket.db: database disk image is malformed"

-- The store's contract for a read that fails: nil, the message, a CODE (orket.c.store,
-- orket.store.pgdb), here for every statement.
local function failing(db)
  local function fail() return nil, BROKEN, "ECORRUPT" end
  return { dialect = db.dialect, backend = db.backend, row = fail, rows = fail }
end

-- each call (name -> function) raises the store's message
local function each_raises(calls)
  for name, call in pairs(calls) do
    local ok, err = pcall(call)
    assert.is_false(ok, name)
    assert.equal(BROKEN, tostring(err):sub(-#BROKEN), name) -- after a position, when there is one
  end
end

describe("store reads that fail", function()
  local db
  before_each(function() db = assert(store.open(H.tmpdir() .. "/orket.db")) end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("raise the store's message from the runs reads", function()
    local run = db:record_run { target = "E", kind = "epic" }
    local bad = failing(db)
    each_raises {
      unfinished = function() return runs.unfinished(bad) end,
      latest_id = function() return runs.latest_id(bad) end,
      any = function() return runs.any(bad) end,
      get = function() return runs.get(bad, run) end,
      recent = function() return runs.recent(bad, 5) end,
      running = function() return runs.running(bad) end,
      not_done = function() return runs.not_done(bad, 5) end,
      status_and_end = function() return runs.status_and_end(bad, run) end,
    }
    -- and a store that answers still tells "none" from a failure
    assert.is_true(runs.any(db))
    assert.is_nil(runs.get(db, run + 1))
  end)

  it("raise the store's message from the forge's reads", function()
    local imports = require "orket.store.imports"
    assert(db:tx(function()
      imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 2, seat = "developer" })
      imports.insert_card(db, { id = "E-1", type = "issue", parent = "E", name = "one", priority = 2, seat = "developer" })
      return true
    end))
    forge.save_pull_request(db, "E-1", "github", "o/r", 7, "https://example.test/o/r/pull/7", "abc")
    forge.open_cycle(db, "E-1", 1, 7, "abc")
    forge.record_delivery(db, "github", "d-1", "pull_request_review", "E-1", "approved", "id-1")
    local bad = failing(db)
    each_raises {
      pull_request = function() return forge.pull_request(bad, "E-1") end,
      pull_request_link = function() return forge.pull_request_link(bad, "E-1") end,
      card_of_pull_request = function() return forge.card_of_pull_request(bad, 7, "o/r") end,
      review_cycles = function() return forge.review_cycles(bad, "E-1") end,
      next_cycle = function() return forge.next_cycle(bad, "E-1") end,
      undecided_cycle = function() return forge.undecided_cycle(bad, "E-1") end,
      delivery_seen = function() return forge.delivery_seen(bad, "github", "d-2", "id-2") end,
    }
    -- and a store that answers still tells "none" from a failure
    assert.equal("E-1", forge.card_of_pull_request(db, 7, "o/r"))
    assert.is_nil(forge.card_of_pull_request(db, 8, "o/r"))
    assert.is_true(forge.delivery_seen(db, "github", "d-1", nil))
    assert.is_false(forge.delivery_seen(db, "github", "d-2", "id-2"))
    assert.same({}, forge.review_cycles(db, "E-2"))
    assert.is_nil(forge.pull_request_link(db, "E-2"))
  end)

  it("raise the store's message from the money budgets' marks", function()
    local bad = failing(db)
    each_raises {
      approved_after = function() return costs.approved_after(bad, "E-1") end,
      approved_marks = function() return costs.approved_marks(bad, "E-1") end,
      last_turn = function() return costs.last_turn(bad) end,
    }
    -- and a store that answers still tells "none" from a failure
    assert.same({ 0, 0 }, { costs.approved_after(db, "E-1") })
    assert.same({ card = { 0, 0 }, epic = { 0, 0 }, rock = { 0, 0 } }, costs.approved_marks(db, "E-1"))
    assert.equal(0, costs.last_turn(db))
  end)

  it("raise the store's message from the journal's reads", function()
    local run = db:record_run { target = "E", kind = "epic" }
    local row = runs.get(db, run)
    local bad = failing(db)
    each_raises {
      run_moves = function() return sj.run_moves(bad, row) end,
      open_turn_cards = function() return sj.open_turn_cards(bad, run, 10) end,
      last_retry = function() return sj.last_retry(bad, "E-1") end,
      recorded_step = function() return sj.recorded_step(bad, run, "E-1", 1, 1) end,
      tool_call = function() return sj.tool_call(bad, 1, "c1") end,
      run_tokens = function() return sj.run_tokens(bad, run) end,
      card_tokens_since = function() return sj.card_tokens_since(bad, run, "E-1", 0) end,
      turns_called_tools = function() return sj.turns_called_tools(bad, run, "E-1", false, 0) end,
      last_transition = function() return sj.last_transition(bad, "E-1") end,
      last_handin = function() return sj.last_handin(bad, "E-1") end,
      api_writes = function() return sj.api_writes(bad, 0, 10) end,
      last_cancel = function() return sj.last_cancel(bad, "E-1") end,
      last_merge_mark = function() return sj.last_merge_mark(bad, "E-1") end,
      commits = function() return sj.commits(bad, "E-1") end,
      last_merge = function() return sj.last_merge(bad, "E-1") end,
    }
    assert.same({}, sj.run_moves(db, row))
    assert.same({}, sj.open_turn_cards(db, run, 10))
  end)

  it("raise from the sandbox reads, not 'no such sandbox'", function()
    local bad = failing(db)
    each_raises {
      service_get = function() return service.get(bad, 1) end,
      get = function() return sandboxes.get(bad, 1) end,
      list = function() return sandboxes.list(bad, true) end,
      live = function() return sandboxes.list(bad, false) end,
      ports = function() return sandboxes.ports(bad) end,
    }
    assert.is_nil(service.get(db, 1))
  end)

  it("raise from the card reads, not 'no such card'", function()
    local cards = require "orket.store.cards"
    local bad = failing(db)
    each_raises {
      get = function() return cards.get(bad, "E-1") end,
      head = function() return cards.head(bad, "E-1") end,
      exists = function() return cards.exists(bad, "E-1") end,
      is_issue = function() return cards.is_issue(bad, "E-1") end,
      child_count = function() return cards.child_count(bad, "E") end,
      has_child_outside = function() return cards.has_child_outside(bad, "E", { "done" }) end,
      open_dependencies = function() return cards.open_dependencies(bad, "E-1", "E") end,
      uptimes = function() return sandboxes.uptimes(bad, 10) end,
    }
    -- a store that answers still tells "none" from a failure
    assert.is_false(cards.exists(db, "E-1"))
    assert.is_false(cards.is_issue(db, "E-1"))
    assert.is_nil(cards.head(db, "E-1"))
    assert.same({}, sandboxes.uptimes(db, 10))
  end)

  it("raise from the card reads on a real statement that fails, and keep its message for the command line", function()
    local cards = require "orket.store.cards"
    local backend = require "orket.store.backend"
    require("orket.store.imports").insert_card(db, { id = "E", type = "epic", name = "epic", priority = 1, seat = "developer" })
    assert.is_true(cards.exists(db, "E"))
    assert(db:exec("ALTER TABLE cards RENAME TO cards_gone"))
    backend.last_failure = nil
    for name, call in pairs {
      exists = function() return cards.exists(db, "E") end,
      is_issue = function() return cards.is_issue(db, "E") end,
      head = function() return cards.head(db, "E") end,
    } do
      local ok, err = pcall(call)
      assert.is_false(ok, name)
      assert.matches("no such table: cards", err, 1, true)
      assert.equal(err, backend.last_failure)
    end
    assert(db:exec("ALTER TABLE cards_gone RENAME TO cards"))
  end)

  it("stop a new run's check for a killed run's half-done turn, on a real statement that fails", function()
    local run = db:record_run { target = "E", kind = "epic" }
    require("orket.store.imports").insert_card(db, { id = "E", type = "epic", name = "epic", priority = 1, seat = "developer" })
    db:event { kind = "turn_begin", card = "E", run = run, data = { turn = 1 } }
    assert(db:record_turn { run = run, card = "E", seat = "dev", turn = 1, response = { content = "a" }, data = { step = 1 } })
    local board = require("orket.board").open(db)
    assert.equal(run, (recorded.unfinished_overlap(db, board, "E") or {}).id)
    -- the runs table unreadable: the check raises instead of finding no such run
    assert(db:exec("ALTER TABLE runs RENAME TO runs_gone"))
    local ok, err = pcall(recorded.unfinished_overlap, db, board, "E")
    assert.is_false(ok)
    assert.matches("no such table: runs", err, 1, true)
  end)
end)
