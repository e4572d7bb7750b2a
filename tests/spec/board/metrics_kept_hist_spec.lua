-- /metrics' duration histograms on the backend under test (tests.backends): a turn's and a
-- card's time start when the turn began, its first model call included (turn_begin's
-- lead_ms: the begin is written after that call), and the histograms are kept between
-- scrapes as the counters are, so their counts never go down: not when a done card is
-- archived, not when its move to done is old (docs/serve.md, GET /metrics).
local H = require "tests.helpers"
local B = require "tests.backends"
local serve_metrics = require "orket.serve.metrics"

local function open()
  local db = B.open_store()
  local imports = require "orket.store.imports"
  assert(db:tx(function()
    imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 2, seat = "developer" })
    for i = 1, 3 do
      imports.insert_card(db, { id = "E-" .. i, type = "issue", parent = "E", name = "c" .. i, priority = 2, seat = "developer" })
    end
    return true
  end))
  return db
end

-- an event dated `when` (minutes:seconds.ms past 10:00; the journal is append-only and dated
-- by the store's clock: rows written as dated)
local function at(db, kind, card, run, when, data)
  assert(db:exec(string.format([[INSERT INTO events (at, kind, card_id, run_id, data)
    VALUES ('2026-03-01T10:%sZ', '%s', '%s', %d, '%s')]], when, kind, card, run, data)))
end

-- a card worked in one turn as the engine writes it: the claim and turn_begin share the
-- first commit's time, `lead` ms after the turn began (its first call), then its end and done
local function worked(db, card, run, begun, ended, lead)
  at(db, "transition", card, run, begun, '{"from": "ready", "to": "in_progress"}')
  at(db, "turn_begin", card, run, begun, lead and string.format('{"turn": 1, "lead_ms": %d}', lead) or '{"turn": 1}')
  at(db, "turn_end", card, run, ended, '{"turn": 1}')
  at(db, "transition", card, run, ended, '{"from": "in_progress", "to": "done"}')
  assert(db:exec("UPDATE cards SET status = 'done' WHERE id = '" .. card .. "'"))
end

local function value(text, sample)
  local s = text:find("\n" .. sample .. " ", 1, true)
  assert(s, "no sample " .. sample .. " in:\n" .. text)
  return tonumber(text:match("^(%S+)", s + #sample + 2))
end

-- every _bucket, _sum and _count sample of the duration families: name -> value
local function hist_samples(text)
  local out = {}
  for name, v in text:gmatch("\n(orket_[%w_]*duration_seconds_%l+[^ ]*) (%S+)") do
    if not name:find("^orket_http") then out[name] = tonumber(v) end
  end
  return out
end

describe("/metrics' duration histograms on " .. B.name(), function()
  after_each(H.cleanup)

  it("count a turn's and a card's time from the turn's start: its first call included", function()
    local db = open()
    local run = db:record_run { target = "E", kind = "epic" }
    -- the first call took 3 s (its commit at 00:03.000), the turn ended 0.5 s later
    worked(db, "E-1", run, "00:03.000", "00:03.500", 3000)
    local text = serve_metrics.render(db, serve_metrics.new(), 0)
    assert.equal(1, value(text, "orket_turn_duration_seconds_count"))
    assert.is_true(math.abs(value(text, "orket_turn_duration_seconds_sum") - 3.5) < 0.01, text)
    assert.equal(0, value(text, 'orket_turn_duration_seconds_bucket{le="1"}'))
    assert.equal(1, value(text, 'orket_turn_duration_seconds_bucket{le="5"}'))
    assert.is_true(math.abs(value(text, 'orket_card_duration_seconds_sum{type="issue"}') - 3.5) < 0.01, text)
    -- a begin without lead_ms (written before it was kept) counts from its own time
    local db2 = open()
    worked(db2, "E-1", db2:record_run { target = "E", kind = "epic" }, "00:03.000", "00:03.500", nil)
    local t2 = serve_metrics.render(db2, serve_metrics.new(), 0)
    assert.is_true(math.abs(value(t2, "orket_turn_duration_seconds_sum") - 0.5) < 0.01, t2)
    db:close()
    db2:close()
  end)

  it("never go down: a done card archived, and kept scrapes count what a first one counts", function()
    local db = open()
    local kept = serve_metrics.new()
    local run = db:record_run { target = "E", kind = "epic" }
    worked(db, "E-1", run, "00:01.000", "00:02.000", 500)
    worked(db, "E-2", run, "00:03.000", "00:05.000", 0)
    local before = hist_samples("\n" .. serve_metrics.render(db, kept, 0))
    assert.equal(2, before['orket_card_duration_seconds_count{type="issue"}'])
    -- a person archives both done cards: the cards are no longer done, their moves to done stay
    for _, c in ipairs { "E-1", "E-2" } do
      at(db, "transition", c, run, "00:09.000", '{"from": "done", "to": "archived"}')
      assert(db:exec("UPDATE cards SET status = 'archived' WHERE id = '" .. c .. "'"))
    end
    local after = hist_samples("\n" .. serve_metrics.render(db, kept, 0))
    assert.same(before, after)
    -- a first scrape (a restarted server) counts the same: no reset to explain
    assert.same(before, hist_samples("\n" .. serve_metrics.render(db, serve_metrics.new(), 0)))
    -- a third card done: every sample of the kept ones is at least what it was
    worked(db, "E-3", run, "00:10.000", "00:11.000", 0)
    local more = hist_samples("\n" .. serve_metrics.render(db, kept, 0))
    for name, v in pairs(before) do assert.is_true(more[name] >= v, name) end
    assert.equal(3, more['orket_card_duration_seconds_count{type="issue"}'])
    assert.equal(3, more["orket_turn_duration_seconds_count"])
    db:close()
  end)
end)
