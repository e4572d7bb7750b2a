-- orket.engine.spend's money budgets shared between processes, on SQLite and on PostgreSQL
-- (tests/backends.lua): runs in one server, and workers on one run, each keep their own
-- totals, and each sees before a call what the others recorded (docs/cost.md). Each view
-- below is one process's run: its own state, on the one store.
local H = require "tests.helpers"
local F = require "tests.engine_fakes"
local spend = require "orket.engine.spend"

local PRICE = { input = "1", cached_input = "0.5", output = "2", currency = "USD" }
-- a request estimated at 1000 prompt tokens and 1000 output tokens: 0.003 USD
local REQ = { model = "p:m", messages = { { role = "user", content = string.rep("x", 4000) } }, max_tokens = 1000 }

-- one process's run of run_id, with money budgets {cost_per_X = micro-USD}
local function view(db, b, run_id, budgets)
  local parsed = {}
  for k, v in pairs(budgets) do parsed[k] = { micros = v, currency = "USD" } end
  return { run_id = run_id, db = db, board = b, emit = function() end, add_tokens = function() end,
    settings = { models = { prices = { ["p:m"] = PRICE } }, budgets = parsed } }
end

-- a call of the view's on card, checked, answered with 1000 + 1000 tokens (0.003 USD) and
-- recorded as the engine records it: the hold goes once the row is committed
local function call(v, card)
  local job = { model = "p:m", card_id = card }
  local over = spend.check(v, job, REQ)
  if over then return over end
  local money = spend.record(v, job, { prompt_tokens = 1000, completion_tokens = 1000 }, REQ)
  assert(v.db:tx(function()
    return v.db:record_turn { run = v.run_id, card = card, seat = "senior_developer", turn = 1, model = "p:m",
      prompt_tokens = 1000, completion_tokens = 1000, data = { step = 1, cost = money.cost, currency = money.currency } }
  end))
  spend.release(v, job)
  return nil
end

describe("money budgets shared by processes (" .. require("tests.backends").name() .. ")", function()
  after_each(H.cleanup)

  local function fixture()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "one" }, { id = "E-2", summary = "two" } })
    local r1 = assert(db:record_run { target = "E-1", kind = "issue" })
    local r2 = assert(db:record_run { target = "E-2", kind = "issue" })
    return db, b, r1, r2
  end

  it("read nothing up to a mark of 0: the store was empty when it was taken", function()
    local db, b, r1 = fixture()
    local v = view(db, b, r1, { cost_per_card = 50000 })
    assert.is_nil(call(v, "E-1"))
    local costs = require "orket.store.costs"
    assert.is_nil(costs.totals(db, { run = r1, upto_turn = 0, upto_event = 0 }).cost.USD)
    assert.equal(3000, costs.totals(db, { run = r1 }).cost.USD)
    db:close()
  end)

  it("keep a committed call's hold while a check that began before its commit is in flight", function()
    local db, b, r1 = fixture()
    local v = view(db, b, r1, { cost_per_card = 5000 })
    assert.is_nil(call(v, "E-1")) -- the run's totals read: 0.003 spent
    v.settings.budgets.cost_per_card.micros = 8500 -- room for one call more, not two
    -- A's call is checked (its hold: 0.003 USD), answered and recorded
    local a = { model = "p:m", card_id = "E-1" }
    assert.is_nil(spend.check(v, a, REQ))
    local money = spend.record(v, a, { prompt_tokens = 1000, completion_tokens = 1000 }, REQ)
    -- B's check: A's row commits while B's reads wait (PostgreSQL), after B caught up
    local costs = require "orket.store.costs"
    local marks = costs.approved_marks
    costs.approved_marks = function(...)
      costs.approved_marks = marks
      assert(v.db:tx(function()
        return v.db:record_turn { run = v.run_id, card = "E-1", seat = "senior_developer", turn = 2, model = "p:m",
          prompt_tokens = 1000, completion_tokens = 1000, data = { step = 1, cost = money.cost, currency = money.currency } }
      end))
      spend.committed(v, a)
      return marks(...)
    end
    local over = spend.check(v, { model = "p:m", card_id = "E-1" }, REQ)
    costs.approved_marks = marks
    -- 0.003 + A's 0.003 (not in B's read, still held) + B's 0.003 > 0.0085: B waits
    assert.is_true(over and over.room)
    -- but not for a wake: A's commit gave its wake before B waited, and A's turn may end
    -- with that call; B's next check's read is what lets A's hold go (the engine's turn
    -- waited for ever)
    local co = coroutine.create(function() spend.wait_room(v) end)
    assert(coroutine.resume(co))
    require("luv").run("nowait")
    assert.equal("dead", coroutine.status(co))
    -- the next check's read counts A's row, and A's hold goes: 0.006 spent, and B's 0.003
    -- would pass the budget
    over = spend.check(v, { model = "p:m", card_id = "E-1" }, REQ)
    assert.equal("budget", over and over.ended)
    assert.matches("spent 0.006 USD", over.detail)
    db:close()
  end)

  it("count the day's spending of every run: another run's calls stop this one's", function()
    local db, b, r1, r2 = fixture()
    local a, other = view(db, b, r1, { cost_per_day = 10000 }), view(db, b, r2, { cost_per_day = 10000 })
    -- the other run reads its totals first, then the first run spends 0.009 USD
    assert.is_nil(call(other, "E-2"))
    assert.is_nil(call(a, "E-1"))
    assert.is_nil(call(a, "E-1"))
    -- 0.009 of 0.01 spent in the day: the next call (0.003) fits in neither run
    local over = call(other, "E-2")
    assert.equal("canceled", over and over.ended)
    assert.matches("money budget: the day %d+%-%d+%-%d+ %(UTC; the next begins at 00:00 UTC%) spent 0.009 USD of its "
      .. "0.01 USD", over.detail)
    assert.equal("canceled", (call(a, "E-1") or {}).ended)
    db:close()
  end)

  it("take the day from the store's clock, which dates the calls, whatever this process's clock says", function()
    local db, b, r1 = fixture()
    local v = view(db, b, r1, { cost_per_day = 5000 })
    assert.is_nil(call(v, "E-1")) -- 0.003 of the day's 0.005 spent
    -- this process's clock a day ahead of the store's (a worker on another machine than its
    -- PostgreSQL server): the calls are dated by the store, and so is the day
    local date = os.date
    local ahead = date("!%Y-%m-%d", os.time() + 86400)
    finally(function() os.date = date end)
    os.date = function(f, t) return date(f, t or os.time() + 86400) end
    for _, w in ipairs { v, view(db, b, r1, { cost_per_day = 5000 }) } do -- its totals read, and read afresh
      local over = call(w, "E-1")
      assert.equal("canceled", over and over.ended)
      assert.matches("money budget: the day %d+%-%d+%-%d+ %(UTC; the next begins at 00:00 UTC%) spent 0.003 USD of "
        .. "its 0.005 USD", over.detail)
      assert.is_nil(over.detail:find(ahead, 1, true), over.detail)
    end
    db:close()
  end)

  it("forget the days gone by: a run going on for days keeps the day's total alone, each day's budget whole", function()
    local db, b, r1 = fixture()
    local v = view(db, b, r1, { cost_per_day = 7000 })
    local warned = {} -- budget_warning events by day
    v.emit = function(_, ev) if ev.type == "budget_warning" then warned[ev.id] = (warned[ev.id] or 0) + 1 end end
    assert.is_nil(call(v, "E-1")) -- the totals read: 0.003 of today's 0.007
    assert.is_nil(call(v, "E-1")) -- caught up: 0.006
    assert.equal("canceled", (call(view(db, b, r1, { cost_per_day = 7000 }), "E-1") or {}).ended)
    -- the store's clock passes midnight, day after day (its "e" row names the day)
    local costs = require "orket.store.costs"
    local since = costs.since
    finally(function() costs.since = since end)
    for n = 1, 5 do
      costs.since = function(...)
        local rows = since(...)
        for _, r in ipairs(rows) do
          if r.src == "e" then r.currency = string.format("2999-01-%02d", n) end
        end
        return rows
      end
      -- the new day's total is read afresh (nothing recorded on it) and counts its calls
      assert.is_nil(call(v, "E-1"))
      assert.is_nil(call(v, "E-1"))
      local over = call(v, "E-1")
      assert.equal("canceled", over and over.ended)
      assert.matches(string.format("the day 2999%%-01%%-%02d %%(UTC; the next begins at 00:00 UTC%%) spent 0.006 USD of its "
        .. "0.007 USD", n), over.detail)
      local days, keys = 0, 0
      for _ in pairs(v.spend.by.day) do days = days + 1 end
      for _, t in pairs(v.spend.totals) do
        if t.scope == "day" then
          keys = keys + 1
          assert.equal(string.format("2999-01-%02d", n), t.id)
          assert.equal(6000, t.micros)
        end
      end
      assert.equal(1, days)
      assert.equal(1, keys)
      -- each day warned of once (0.006 of 0.007 is past 80%), and only today's mark kept
      assert.equal(1, warned[string.format("2999-01-%02d", n)])
      local marks = {}
      for key in pairs(v.spend.warned) do marks[#marks + 1] = key end
      assert.same({ string.format("day:2999-01-%02d@0:USD", n) }, marks)
    end
    db:close()
  end)

  it("keep today's total, its holds and its warning when a catch-up reads the day before after today", function()
    -- on PostgreSQL two turns' catch-ups run on the pool at once: one whose read began
    -- before midnight may end after one begun after it (or the store's clock steps back)
    local db, b, r1 = fixture()
    local v = view(db, b, r1, { cost_per_day = 15000 })
    local warned = {}
    v.emit = function(_, ev) if ev.type == "budget_warning" then warned[ev.id] = (warned[ev.id] or 0) + 1 end end
    local costs = require "orket.store.costs"
    local _, _, today = costs.heads(db) -- the store's day, which dates the calls recorded
    local y, m, d = today:match("^(%d+)-(%d+)-(%d+)$")
    local yesterday = os.date("!%Y-%m-%d", os.time { year = tonumber(y), month = tonumber(m), day = tonumber(d) - 1, hour = 12 })
    local since, day = costs.since, today
    finally(function() costs.since = since end)
    costs.since = function(...)
      local rows = since(...)
      for _, r in ipairs(rows) do if r.src == "e" then r.currency = day end end
      return rows
    end
    for _ = 1, 4 do assert.is_nil(call(v, "E-1")) end -- 0.012 of today's 0.015 spent
    -- A: 80% spent, said; A's estimate (0.003) fits, and is held while A is in flight
    local a = { model = "p:m", card_id = "E-1" }
    assert.is_nil(spend.check(v, a, REQ))
    assert.equal(1, warned[today])
    -- a catch-up reads yesterday, after today's: its call is checked against yesterday's total
    day = yesterday
    local c = { model = "p:m", card_id = "E-1" }
    spend.check(v, c, REQ)
    spend.release(v, c)
    -- today again: 0.012 spent + A's 0.003 held + B's 0.003 > 0.015, so B waits for A; and
    -- today's 80% is not said again
    day = today
    local over = spend.check(v, { model = "p:m", card_id = "E-1" }, REQ)
    assert.is_true(over ~= nil and over.room == true, "B went out with A's hold forgotten")
    assert.equal(1, warned[today])
    -- yesterday's total goes once today is read again
    for _, t in pairs(v.spend.totals) do
      if t.scope == "day" then assert.equal(today, t.id) end
    end
    assert.is_nil(v.spend.by.day[yesterday])
    spend.release(v, a)
    db:close()
  end)

  it("count every worker's calls in the run's budget, and charged failures too", function()
    local db, b, r1 = fixture()
    local w1, w2 = view(db, b, r1, { cost_per_run = 10000 }), view(db, b, r1, { cost_per_run = 10000 })
    assert.is_nil(call(w1, "E-1"))
    assert.is_nil(call(w2, "E-2"))
    -- a call of w1's whose usage was refused, charged 0.003 USD (its model_failure event)
    assert(db:tx(function()
      db:event { kind = "model_failure", card = "E-1", run = r1, data = { model = "p:m", prompt_tokens = 1000,
        completion_tokens = 1000, cost = 3000, currency = "USD" } }
      return true
    end))
    local over = call(w2, "E-2")
    assert.equal("canceled", over and over.ended)
    assert.matches("the run %d+ spent 0.009 USD of its 0.01 USD", over.detail)
    db:close()
  end)

  it("count the epic's calls of every process, its cards' own budgets apart", function()
    local db, b, r1, r2 = fixture()
    local budgets = { cost_per_epic = 10000, cost_per_card = 7000 }
    local a, other = view(db, b, r1, budgets), view(db, b, r2, budgets)
    assert.is_nil(call(other, "E-2"))
    assert.is_nil(call(a, "E-1"))
    assert.is_nil(call(a, "E-1"))
    -- E-2's own budget has room (0.003 of 0.007), its epic's has not (0.009 of 0.01)
    local over = call(other, "E-2")
    assert.equal("budget", over and over.ended)
    assert.same({ "epic", "E", 9000 }, { over.money.scope, over.money.id, over.money.spent })
    db:close()
  end)

  it("sum their totals again after a rolled-back transaction that held a read", function()
    local db, b, r1 = fixture()
    local v = view(db, b, r1, { cost_per_run = 1000000 })
    assert.is_nil(call(v, "E-1")) -- 0.003 spent
    -- a step's transaction: its call's row (0.001) written, the next check made inside it
    -- (its catch-up reads the row), then rolled back
    local ok, err = db:tx(function()
      assert(db:record_turn { run = r1, card = "E-1", seat = "senior_developer", turn = 2, model = "p:m",
        prompt_tokens = 1, completion_tokens = 1, data = { step = 1, cost = 1000, currency = "USD" } })
      local job = { model = "p:m", card_id = "E-1" }
      assert.is_nil(spend.check(v, job, REQ))
      spend.release(v, job)
      return nil, "the step failed"
    end)
    assert.same({ nil, "the step failed" }, { ok, err })
    assert.is_nil(call(v, "E-1")) -- 0.003 more, recorded next (on SQLite under the undone row's id)
    v.settings.budgets.cost_per_run.micros = 8500 -- no room for 0.003 more
    local over = spend.check(v, { model = "p:m", card_id = "E-1" }, REQ)
    assert.equal("canceled", over and over.ended)
    -- PostgreSQL gives no id twice: there the undone call stays counted (spending less, never more)
    local sqlite = require("tests.backends").name() == "sqlite"
    assert.matches("the run %d+ spent " .. (sqlite and "0.006" or "0.007") .. " USD of its 0.0085 USD", over.detail)
    db:close()
  end)
end)
