-- GET /metrics keeps its sums and histograms over the journal, the turns and the tool calls
-- between scrapes (orket.serve.metrics' counters): a scrape reads the rows written since the
-- last one, so a scrape's cost does not grow with the store (docs/serve.md, GET /metrics). Its text is the same as a first scrape's of the same store:
-- calls that get their result later, label values past MAX_SERIES, a store replaced under the
-- server. On SQLite, old rows made unreadable after the first scrape show that no later
-- scrape reads them.
local H = require "tests.helpers"
local B = require "tests.backends"
local serve_metrics = require "orket.serve.metrics"

local function open()
  local db = B.open_store()
  local imports = require "orket.store.imports"
  assert(db:tx(function()
    imports.insert_card(db, { id = "E", type = "epic", name = "epic", priority = 2, seat = "developer" })
    for i = 1, 4 do
      imports.insert_card(db, { id = "E-" .. i, type = "issue", parent = "E", name = "c" .. i, priority = 2, seat = "developer" })
    end
    return true
  end))
  return db
end

-- n turns of card `card` in run, from turn number `from`: each a model call (model m), a
-- tool call the gate allowed, a decision, a violation, its begin and end, and a move to done
local function work(db, run, card, from, n, m)
  assert(db:tx(function()
    for i = from, from + n - 1 do
      db:event { kind = "turn_begin", card = card, run = run, data = { turn = i } }
      local t = assert(db:record_turn { run = run, card = card, seat = "dev", turn = i, model = m, prompt_tokens = i,
        completion_tokens = 1, data = { latency_ms = 10 * i, cost = i, currency = "USD", cached_tokens = 1 } })
      assert(db:record_tool_call { turn = t, call_id = "c" .. i, tool = "read_file", arguments = {}, result = { x = 1 },
        ok = (i % 2 == 0), gate_code = "ALLOWED", run = run, card = card, seat = "dev" })
      assert(db:record_gate_decision { turn = t, tool = "rm", verdict = "deny", code = "DENY", run = run, card = card })
      assert(db:record_violation { turn = t, card = card, seat = "dev", rule = "ESAME", attempt = "x", run = run })
      db:event { kind = "turn_end", card = card, run = run, data = { turn = i } }
      db:event { kind = "transition", card = card, run = run, data = { from = "ready", to = "in_progress" } }
      db:event { kind = "transition", card = card, run = run, data = { from = "in_progress", to = "done" } }
    end
    return true
  end))
  assert(db:exec("UPDATE cards SET status = 'done' WHERE id = '" .. card .. "'"))
end

-- a scrape of the kept counters and one of new counters (a first scrape) give one text
local function same(db, kept)
  local first = serve_metrics.render(db, serve_metrics.new(), 0)
  local text = serve_metrics.render(db, kept, 0)
  if first ~= text then -- the lines that differ, not two whole pages
    local a, b = {}, {}
    for l in first:gmatch("[^\n]+") do a[l] = true end
    for l in text:gmatch("[^\n]+") do b[l] = true end
    local only = {}
    for l in pairs(a) do if not b[l] then only[#only + 1] = "first only: " .. l end end
    for l in pairs(b) do if not a[l] then only[#only + 1] = "kept only: " .. l end end
    table.sort(only)
    error(table.concat(only, "\n") .. (#only == 0 and "\n(the same lines in another order)" or ""), 2)
  end
  return text
end

describe("/metrics' sums kept between scrapes on " .. B.name(), function()
  after_each(H.cleanup)

  it("count what a first scrape counts, as rows come, calls end and label values pass the cap", function()
    local db = open()
    local kept = serve_metrics.new()
    same(db, kept)
    local run = db:record_run { target = "E", kind = "epic" }
    work(db, run, "E-1", 1, 3, "m3")
    local text = same(db, kept)
    assert.matches('\norket_turns_total 3\n', text, 1, true)
    assert.matches('\norket_model_calls_total{model="m3"} 3\n', text, 1, true)
    -- a call started, counted pending, then ended: counted as it ends
    local t = assert(db:record_turn { run = run, card = "E-2", seat = "dev", turn = 1, model = "m3" })
    local tc = assert(db:start_tool_call { turn = t, call_id = "s", tool = "write_file", arguments = {}, run = run,
      card = "E-2", seat = "dev" })
    text = same(db, kept)
    assert.matches('tool="write_file",verdict="approved",outcome="pending"} 1\n', text, 1, true)
    same(db, kept)
    assert(db:finish_tool_call(tc, { result = { ok = true }, ok = true, tool = "write_file", turn = t, run = run }))
    text = same(db, kept)
    assert.matches('tool="write_file",verdict="approved",outcome="ok"} 1\n', text, 1, true)
    assert.is_nil(text:find('outcome="pending"} 1', 1, true), text)
    -- the same card turn again (a second step) is no new turn; another run's is
    db:record_turn { run = run, card = "E-2", seat = "dev", turn = 1, model = "m3" }
    assert.matches('\norket_turns_total 4\n', same(db, kept), 1, true)
    db:record_turn { run = db:record_run { target = "E", kind = "epic" }, card = "E-2", seat = "dev", turn = 1 }
    assert.matches('\norket_turns_total 5\n', same(db, kept), 1, true)
    -- label values past the cap: the first MAX_SERIES, whatever came first
    local max = serve_metrics.MAX_SERIES
    serve_metrics.MAX_SERIES = 2
    local ok, err = pcall(function()
      same(db, kept)
      work(db, run, "E-3", 10, 2, "m1")
      work(db, run, "E-3", 20, 1, "m2")
      text = same(db, kept)
      assert.matches('\norket_model_calls_total{model="m1"} 2\n', text, 1, true)
      assert.is_nil(text:find('model="m3"', 1, true), text)
    end)
    serve_metrics.MAX_SERIES = max
    assert(ok, err)
    same(db, kept)
    db:close()
  end)

  it("count a store put in the place of another (a restore) from its start", function()
    local db, other = open(), open()
    local kept = serve_metrics.new()
    work(db, db:record_run { target = "E", kind = "epic" }, "E-1", 1, 5, "m")
    work(other, other:record_run { target = "E", kind = "epic" }, "E-1", 1, 2, "m")
    same(db, kept)
    -- the server's store restored from another: the same connection, other rows
    if kept.sums then kept.sums[other] = kept.sums[db] end
    assert.matches('\norket_turns_total 2\n', same(other, kept), 1, true)
    db:close()
    other:close()
  end)

  local sqlite_it = B.name() == "sqlite" and it
    or function(name) pending(name .. " [SQLite only: its JSON text can be made unreadable]") end

  sqlite_it("read only the rows written since the last scrape, the histograms' too", function()
    local db = open()
    local kept = serve_metrics.new()
    local run = db:record_run { target = "E", kind = "epic" }
    work(db, run, "E-1", 1, 6, "m")
    work(db, run, "E-2", 1, 6, "m")
    same(db, kept)
    -- every row so far unreadable to a query that reads its JSON
    assert(db:exec("DROP TRIGGER events_append_only_update"))
    assert(db:exec([[UPDATE turns SET data = 'x{', response = 'x{'; UPDATE tool_calls SET result = 'x{';
      UPDATE events SET data = 'x{']]))
    assert.is_false(pcall(serve_metrics.render, db, serve_metrics.new(), 0)) -- a first scrape reads them
    -- newer rows, of other cards (a turn's begin is read by its card)
    work(db, run, "E-3", 1, 2, "m")
    work(db, run, "E-4", 1, 2, "m")
    local text = serve_metrics.render(db, kept, 0)
    assert.matches('\norket_turns_total 16\n', text, 1, true)
    assert.matches('\norket_model_calls_total{model="m"} 16\n', text, 1, true)
    -- the histograms kept as the counters: every call, turn and move to done counted once
    assert.matches('\norket_model_call_duration_seconds_count{model="m"} 16\n', text, 1, true)
    assert.matches('\norket_turn_duration_seconds_count 16\n', text, 1, true)
    assert.matches('\norket_card_duration_seconds_count{type="issue"} 16\n', text, 1, true)
    assert.matches('\norket_gate_violations_total{rule="ESAME"} 16\n', text, 1, true)
    assert.matches('tool="read_file",verdict="allow",outcome="ok"} 8\n', text, 1, true)
    db:close()
  end)
end)
