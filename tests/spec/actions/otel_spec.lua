-- orket.otel's spans as built from the engine's events (docs/observability.md): every
-- attribute an event gives is exported, keys in order, and ids are random hex drawn from a
-- pool (a system call per id made each span cost more than its own work).
local otel = require "orket.otel"
local crypto = require "orket.c.crypto"
local cjson = require "cjson"

-- the process's metrics count from its first call to its end: each spec counts from none
before_each(function() otel.reset() end)

-- A tracer whose flush keeps the spans of the batches queued (decoded from their request
-- bodies) instead of sending them.
local function tracer()
  local cfg = otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end)
  local tr = otel.new(cfg, "proj")
  local spans, bodies = {}, {}
  tr.flush = function(self)
    self:seal()
    for _, b in ipairs(self.queue) do
      local text = b.body:text()
      bodies[#bodies + 1] = text
      local doc = cjson.decode(text)
      -- the service and the process's own id (service.instance.id: otel.instance_id)
      assert.same({ { key = "service.instance.id", value = { stringValue = otel.instance_id() } },
        { key = "service.name", value = { stringValue = "orket" } } }, doc.resourceSpans[1].resource.attributes)
      local list = doc.resourceSpans[1].scopeSpans[1].spans
      assert.equal(b.n, #list)
      for _, sp in ipairs(list) do spans[#spans + 1] = sp end
    end
    self.queue, self.queued = {}, 0
  end
  return tr, spans, bodies
end

local function keys(sp)
  local out = {}
  for i, a in ipairs(sp.attributes) do out[i] = a.key end
  return out
end

local function run_events(tr, cards)
  tr:event { type = "run_start", run_id = 7, target = "M" }
  for i = 1, cards do
    local card = "M-" .. i
    tr:event { type = "turn_start", run_id = 7, card = card, turn = 1, role = "coder", seat = "dev", phase = "work",
      model = "fake:m1" }
    tr:event { type = "model", run_id = 7, card = card, turn = 1, step = 1, latency_ms = 12, prompt_tokens = 50,
      completion_tokens = 3, cached_tokens = 20, cost = 1500, currency = "USD", response_model = "m1-2024" }
    tr:event { type = "tool", run_id = 7, card = card, turn = 1, tool = "write_file", call_id = "call_1", ok = false,
      code = "EACCES", denied = true, ms = 2 }
    tr:event { type = "turn_end", run_id = 7, card = card, turn = 1, outcome = "handed_in" }
  end
  tr:event { type = "run_end", run_id = 7, status = "done" }
end

describe("otel spans", function()
  it("export every attribute their event gives, keys sorted", function()
    local tr, spans = tracer()
    run_events(tr, 1)
    local by = {}
    for _, sp in ipairs(spans) do by[sp.name] = sp end
    assert.same({ "gen_ai.conversation.id", "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
      "gen_ai.response.model", "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.input_tokens",
      "gen_ai.usage.output_tokens", "orket.card.id", "orket.cost.currency", "orket.cost.micros", "orket.project",
      "orket.run.id", "orket.step" }, keys(by["chat m1"]))
    assert.same({ "error.type", "gen_ai.operation.name", "gen_ai.tool.call.id", "gen_ai.tool.name", "orket.card.id",
      "orket.project", "orket.run.id", "orket.tool.code", "orket.tool.denied" }, keys(by["execute_tool write_file"]))
    assert.same({ "gen_ai.agent.name", "gen_ai.conversation.id", "gen_ai.operation.name", "gen_ai.provider.name",
      "gen_ai.request.model", "orket.card.id", "orket.model", "orket.outcome", "orket.phase", "orket.project",
      "orket.run.id", "orket.seat", "orket.turn" }, keys(by["invoke_agent coder"]))
    assert.same({ "orket.project", "orket.run.id", "orket.run.status", "orket.run.target" }, keys(by["orket run M"]))
    local v = {}
    for _, a in ipairs(by["chat m1"].attributes) do v[a.key] = a.value end
    assert.same({ intValue = "50" }, v["gen_ai.usage.input_tokens"])
    assert.same({ stringValue = "USD" }, v["orket.cost.currency"])
    local t = {}
    for _, a in ipairs(by["execute_tool write_file"].attributes) do t[a.key] = a.value end
    assert.same({ boolValue = true }, t["orket.tool.denied"])
  end)

  it("never raise into the run: an event they cannot write is a counted drop, the rest still traced", function()
    local tr, spans = tracer()
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", seat = "dev", phase = "work",
      model = "fake:m1" }
    -- a step that is a table: no span attribute can hold it
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = { 1 }, latency_ms = 12, prompt_tokens = 5,
      completion_tokens = 1 }
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "handed_in" }
    tr:event { type = "run_end", run_id = 7, status = "done" }
    local st = tr:stats()
    assert.equal(1, st.dropped)
    assert.matches("an event not traced", st.last_error)
    local names = {}
    for _, sp in ipairs(spans) do names[#names + 1] = sp.name end
    table.sort(names)
    assert.same({ "invoke_agent coder", "orket run M" }, names)
  end)

  it("keep an integer's and a float's attribute apart though they are one table key", function()
    local tr, spans = tracer()
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, prompt_tokens = 5 }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1.0, prompt_tokens = 5 }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, prompt_tokens = 5 }
    tr:flush()
    local steps = {}
    for _, sp in ipairs(spans) do
      for _, a in ipairs(sp.attributes) do
        if a.key == "orket.step" then steps[#steps + 1] = a.value end
      end
    end
    assert.same({ { intValue = "1" }, { doubleValue = 1 }, { intValue = "1" } }, steps)
  end)

  it("draw their ids from a pool of random bytes, distinct hex of 16 and 8 bytes", function()
    local draws, draw = 0, crypto.random_bytes
    crypto.random_bytes = function(n)
      draws = draws + 1
      return draw(n)
    end
    local tr, spans = tracer()
    local ok, err = pcall(run_events, tr, 100)
    crypto.random_bytes = draw
    assert(ok, err)
    assert.equal(301, #spans)
    local seen = {}
    for _, sp in ipairs(spans) do
      assert.matches("^" .. string.rep("%x", 16) .. "$", sp.spanId)
      assert.matches("^" .. string.rep("%x", 32) .. "$", sp.traceId)
      assert.is_nil(seen[sp.spanId])
      seen[sp.spanId] = true
      assert.equal(spans[#spans].traceId, sp.traceId)
    end
    -- 301 spans of 8 bytes and one trace id of 16: a few draws, not one per id
    assert.is_true(draws <= 10, "draws: " .. draws)
  end)

  it("write each span as it ends into batches of BATCH, counting what a full queue drops", function()
    local batch, max = otel.BATCH, otel.QUEUE_MAX
    otel.BATCH, otel.QUEUE_MAX = 4, 6
    local tr, spans, bodies = tracer()
    local flush = tr.flush
    tr.flush = function(self) self:seal() end -- batches are made, none leaves: the queue fills
    local ok, err = pcall(run_events, tr, 3)
    otel.BATCH, otel.QUEUE_MAX = batch, max
    assert(ok, err)
    -- 10 spans made: 6 queued (a batch of 4, and 2 sealed at the run's end), 4 dropped
    assert.same({ exported = 0, dropped = 4, queued = 6, failed = 0, metrics_exported = 0, metrics_dropped = 0 },
      tr:stats())
    assert.equal(2, #tr.queue)
    -- a batch's body is a buffer outside the Lua heap, freed at once once sent
    local body = tr.queue[1].body
    assert.equal(#body:text(), #body)
    assert.equal(4, #cjson.decode(body:text()).resourceSpans[1].scopeSpans[1].spans)
    flush(tr)
    body:free()
    assert.equal(0, #body)
    assert.equal("", body:text())
    assert.equal(2, #bodies)
    assert.equal(6, #spans)
    assert.equal(0, tr:stats().queued)
  end)

  it("write an attribute's text escaped, and a failed span's status", function()
    local tr, spans = tracer()
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-\"1\"\n", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "tool", run_id = 7, card = "M-\"1\"\n", turn = 1, tool = "x", ok = false, ms = 1 }
    tr:event { type = "run_end", run_id = 7, status = "stopped" }
    local by = {}
    for _, sp in ipairs(spans) do by[sp.name] = sp end
    assert.same({ code = 2 }, by["execute_tool x"].status)
    assert.same({ code = 2, message = "the run ended" }, by["invoke_agent coder"].status)
    assert.is_nil(by["orket run M"].status)
    local card
    for _, a in ipairs(by["execute_tool x"].attributes) do if a.key == "orket.card.id" then card = a.value end end
    assert.same({ stringValue = "M-\"1\"\n" }, card)
    assert.is_true(tonumber(by["invoke_agent coder"].startTimeUnixNano) <= tonumber(by["invoke_agent coder"].endTimeUnixNano))
  end)

  it("leave a call the run's stop left open (a full disk met inside it) unset, marked open, not failed", function()
    local tr, spans = tracer()
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "tool", run_id = 7, card = "M-1", turn = 1, tool = "w", call_id = "c1", ok = false,
      code = "ENOSPC", open = true, ms = 1 }
    tr:event { type = "tool", run_id = 7, card = "M-1", turn = 1, tool = "x", call_id = "c2", ok = false, code = "EIO", ms = 1 }
    tr:event { type = "run_end", run_id = 7, status = "failed" }
    local by = {}
    for _, sp in ipairs(spans) do by[sp.name] = sp end
    local function attrs(sp)
      local t = {}
      for _, a in ipairs(sp.attributes) do t[a.key] = a.value end
      return t
    end
    assert.is_nil(by["execute_tool w"].status)
    local a = attrs(by["execute_tool w"])
    assert.same({ boolValue = true }, a["orket.tool.open"])
    assert.same({ stringValue = "ENOSPC" }, a["orket.tool.code"])
    assert.is_nil(a["error.type"])
    -- a failure the model reads stays an error, with no open mark
    assert.same(2, by["execute_tool x"].status.code)
    a = attrs(by["execute_tool x"])
    assert.is_nil(a["orket.tool.open"])
    assert.same({ stringValue = "EIO" }, a["error.type"])
  end)

  it("cut a text from outside (a tool name a model made up, a server's model name) to 4096 bytes, whole characters", function()
    local tr, spans = tracer()
    local huge = ("x"):rep(200000)
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    -- 4095 plain bytes, then 2-byte characters: the cut falls inside the first of them
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, latency_ms = 1,
      response_model = ("a"):rep(4095) .. ("é"):rep(100) }
    tr:event { type = "tool", run_id = 7, card = "M-1", turn = 1, tool = huge, call_id = huge, ok = false, code = huge }
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "handed_in" }
    tr:event { type = "run_end", run_id = 7, status = "done" }
    assert.equal(0, tr:stats().dropped)
    local tool, chat
    for _, sp in ipairs(spans) do
      if sp.name:match("^execute_tool") then tool = sp elseif sp.name == "chat m1" then chat = sp end
    end
    -- lengths compared, not the texts: a failure prints no 200 KB
    assert.same({ 4096, true }, { #tool.name, tool.name == "execute_tool " .. ("x"):rep(4096 - #"execute_tool ") })
    assert.same({ 4096, true }, { #tool.status.message, tool.status.message == ("x"):rep(4096) })
    for _, a in ipairs(tool.attributes) do
      if a.value.stringValue then assert.is_true(#a.value.stringValue <= 4096, a.key) end
    end
    local model
    for _, a in ipairs(chat.attributes) do if a.key == "gen_ai.response.model" then model = a.value.stringValue end end
    assert.equal(("a"):rep(4095), model) -- no half character (no U+FFFD)
  end)

  it("give each span whose status is ERROR its error.type, and no other span one", function()
    local tr, spans = tracer()
    local function attr(sp, key)
      for _, a in ipairs(sp.attributes) do if a.key == key then return a.value.stringValue end end
    end
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "tool", run_id = 7, card = "M-1", turn = 1, tool = "x", ok = false, code = "EPERM", ms = 1 }
    tr:event { type = "tool", run_id = 7, card = "M-1", turn = 1, tool = "y", ok = true, ms = 1 }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, latency_ms = 5 }
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "model_error" }
    tr:event { type = "turn_start", run_id = 7, card = "M-2", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "turn_end", run_id = 7, card = "M-2", turn = 1, outcome = "handed_in" }
    tr:event { type = "run_end", run_id = 7, status = "failed" }
    local errs = {}
    for _, sp in ipairs(spans) do
      local e = attr(sp, "error.type")
      assert.equal(sp.status ~= nil, e ~= nil, sp.name)
      if e then errs[#errs + 1] = sp.name .. "=" .. e end
    end
    table.sort(errs)
    assert.same({ "execute_tool x=EPERM", "invoke_agent coder=model_error", "orket run M=failed" }, errs)
  end)

  it("make a failed model call's event an ERROR chat span with its class and charge, its duration in the "
    .. "metrics by error.type, never its tokens", function()
    local tr, spans = tracer()
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    -- a stream cut after it began: charged
    tr:event { type = "model_failure", run_id = 7, card = "M-1", turn = 1, step = 1, class = "transient",
      latency_ms = 40, prompt_tokens = 50, completion_tokens = 7, cost = 900, currency = "USD", response_model = "m1" }
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "model_error" }
    tr:flush()
    local chat
    for _, sp in ipairs(spans) do if sp.name == "chat m1" then chat = sp end end
    assert(chat, "no chat span")
    assert.equal(3, chat.kind)
    assert.same({ code = 2, message = "transient" }, chat.status)
    local v = {}
    for _, a in ipairs(chat.attributes) do v[a.key] = a.value.stringValue or a.value.intValue end
    assert.same({ "transient", "50", "7", "900", "USD" }, { v["error.type"], v["gen_ai.usage.input_tokens"],
      v["gen_ai.usage.output_tokens"], v["orket.cost.micros"], v["orket.cost.currency"] })
    -- its duration is in the client metrics, by its error.type; its tokens are not
    assert.equal(1, #tr.points)
    assert.same({ "gen_ai.client.operation.duration", "transient", 1, 0.04 },
      { tr.points[1].name, tr.points[1].attrs["error.type"], tr.points[1].count, tr.points[1].sum })
  end)

  -- the GenAI conventions: the duration metric records failed operations too, by error.type;
  -- they were left out, so a provider failing slowly looked fast and the failures uncounted
  it("count a failed call's duration by its error.type apart from answered calls, never its tokens", function()
    local tr = tracer()
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, latency_ms = 100, prompt_tokens = 10,
      completion_tokens = 2 }
    tr:event { type = "model_failure", run_id = 7, card = "M-1", turn = 1, step = 2, class = "transient",
      latency_ms = 2000, prompt_tokens = 50, completion_tokens = 7 }
    tr:event { type = "model_failure", run_id = 7, card = "M-1", turn = 1, step = 3, class = "transient",
      latency_ms = 3000 }
    tr:event { type = "model_failure", run_id = 7, card = "M-1", turn = 1, step = 4, class = "auth", latency_ms = 5 }
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "model_error" }
    local body = assert(tr:metrics())
    local got = {}
    for _, m in ipairs(cjson.decode(body).resourceMetrics[1].scopeMetrics[1].metrics) do
      for _, dp in ipairs(m.histogram.dataPoints) do
        local a = {}
        for _, kv in ipairs(dp.attributes) do a[kv.key] = kv.value.stringValue end
        got[#got + 1] = string.format("%s %s %s: %s %g", m.name, tostring(a["gen_ai.token.type"]),
          tostring(a["error.type"]), dp.count, dp.sum)
        assert.same({ "chat", "fake", "m1" }, { a["gen_ai.operation.name"], a["gen_ai.provider.name"],
          a["gen_ai.request.model"] })
      end
    end
    table.sort(got)
    assert.same({
      "gen_ai.client.operation.duration nil auth: 1 0.005",
      "gen_ai.client.operation.duration nil nil: 1 0.1",
      "gen_ai.client.operation.duration nil transient: 2 5",
      "gen_ai.client.token.usage input nil: 1 10",
      "gen_ai.client.token.usage output nil: 1 2",
    }, got)
  end)
end)

-- A run resumed (after a crash, a stop) drew a new trace: its spans were not to be found
-- from its first start's. Its trace id is now made from the store's id and the run's.
describe("otel's trace of a run", function()
  local function starts(store_id, run_id, resumed, trace_id, worker)
    local cfg = otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end)
    local tr = otel.new(cfg, "proj", store_id, worker)
    local spans = {}
    tr.flush = function(self)
      self:seal()
      for _, b in ipairs(self.queue) do
        for _, sp in ipairs(cjson.decode(b.body:text()).resourceSpans[1].scopeSpans[1].spans) do spans[#spans + 1] = sp end
      end
      self.queue, self.queued = {}, 0
    end
    tr:event { type = "run_start", run_id = run_id, target = "M", resumed = resumed, trace_id = trace_id }
    tr:event { type = "turn_start", run_id = run_id, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "turn_end", run_id = run_id, card = "M-1", turn = 1, outcome = "handed_in" }
    tr:event { type = "run_end", run_id = run_id, status = "done" }
    return spans
  end
  local function attr(sp, key)
    for _, a in ipairs(sp.attributes) do
      if a.key == key then return a.value.boolValue == nil and a.value.stringValue or a.value.boolValue end
    end
  end

  -- the trace id was a hash of the store's id and the run's: a copy of the store (orket
  -- restore, pg_dump, a copied project folder) keeps both, and gave its next run the trace
  -- of the original's run of that id
  it("take the trace id the run was recorded with, at every start, whatever the store's id", function()
    local store = "5f1c0a9e2b7d4c3e8a6f0b1d2c3e4f5a"
    local id = "0af7651916cd43dd8448eb211c80319c"
    local first, resumed = starts(store, 1, false, id), starts(store, 1, true, id:upper())
    for _, sp in ipairs(first) do assert.equal(id, sp.traceId) end
    for _, sp in ipairs(resumed) do assert.equal(id, sp.traceId) end
    -- a copy's run 1, its own id drawn: another trace, though the store's id and run id match
    local copy = starts(store, 1, false, "b7ad6b7169203331b7ad6b7169203331")
    assert.equal("b7ad6b7169203331b7ad6b7169203331", copy[1].traceId)
    -- not a trace id (its length, its digits, all zeros): the run's hash, as for a run recorded before
    local hash = crypto.hash("orket.run.trace\0" .. store .. "\0" .. "1", 16)
    for _, bad in ipairs { "0af76519", "0af7651916cd43dd8448eb211c80319g", string.rep("0", 32), 7 } do
      assert.equal(hash, starts(store, 1, false, bad)[1].traceId, tostring(bad))
    end
    -- drawn: 32 hex digits, another each time
    local a, b = otel.new_trace_id(), otel.new_trace_id()
    assert.matches("^%x+$", a)
    assert.same({ 32, true }, { #a, a ~= b })
  end)

  -- every worker working a run made a root span marked resumed, though none was resumed
  it("name the worker on its start's run span, never marked resumed: workers join a run side by side", function()
    local id = "0af7651916cd43dd8448eb211c80319c"
    local a = starts(nil, 1, false, id, "w1")
    local b = starts(nil, 1, true, id, "w2")
    assert.same({ id, id }, { a[2].traceId, b[2].traceId })
    assert.same({ "orket run M", "orket run M" }, { a[2].name, b[2].name })
    assert.same({ "w1", "w2" }, { attr(a[2], "orket.worker"), attr(b[2], "orket.worker") })
    assert.same({ nil, nil }, { attr(a[2], "orket.run.resumed"), attr(b[2], "orket.run.resumed") })
    assert.is_nil(attr(starts(nil, 1, false, id)[2], "orket.worker"))
  end)

  it("continue a run recorded without a trace id at every start, by the store's id, each start's run span "
    .. "a root of its own, a resume's marked", function()
    local store = "5f1c0a9e2b7d4c3e8a6f0b1d2c3e4f5a"
    local first, resumed = starts(store, 7, false), starts(store, 7, true)
    assert.equal(2, #first)
    assert.equal(2, #resumed)
    local trace = first[1].traceId
    assert.equal(crypto.hash("orket.run.trace\0" .. store .. "\0" .. "7", 16), trace)
    for _, sp in ipairs(first) do assert.equal(trace, sp.traceId) end
    for _, sp in ipairs(resumed) do assert.equal(trace, sp.traceId) end
    assert.is_nil(first[2].parentSpanId)
    assert.is_nil(resumed[2].parentSpanId)
    assert.not_equal(first[2].spanId, resumed[2].spanId) -- two starts: two run spans, no id twice
    assert.equal(resumed[2].spanId, resumed[1].parentSpanId)
    assert.is_nil(attr(first[2], "orket.run.resumed"))
    assert.is_true(attr(resumed[2], "orket.run.resumed"))
    -- another run, another store (its run 7): other traces
    assert.not_equal(trace, starts(store, 8)[1].traceId)
    assert.not_equal(trace, starts("0123456789abcdef0123456789abcdef", 7)[1].traceId)
    -- no store id (a stand-in store): a trace drawn at each start, as before
    assert.not_equal(starts(nil, 7)[1].traceId, starts(nil, 7)[1].traceId)
  end)

  -- the engine itself: the id drawn where the run is recorded, in its data (JSON, on either
  -- backend: tests.backends), read back by the resume, whose turns are in that trace under
  -- its own root
  it("draw a run's trace id where it is recorded, keep it in its data, and continue it when resumed", function()
    local H = require "tests.helpers"
    local F = require "tests.engine_fakes"
    local ok, err = pcall(function()
      local db, b = F.fixture(H.tmpdir() .. "/o.db", F.STANDARD)
      local cfg = otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end)
      local function traced(opts)
        local spans = {}
        -- the same store id for every tracer: a copy's runs must not share traces by it
        opts.tracer = otel.new(cfg, "proj", "5f1c0a9e2b7d4c3e8a6f0b1d2c3e4f5a")
        opts.tracer.flush = function(self)
          self:seal()
          for _, q in ipairs(self.queue) do
            for _, sp in ipairs(cjson.decode(q.body:text()).resourceSpans[1].scopeSpans[1].spans) do
              spans[#spans + 1] = sp
            end
          end
          self.queue, self.queued = {}, 0
        end
        return F.engine(opts.db, opts.b, opts), spans
      end
      local ev1, ev2 = {}, {}
      local e, first = traced { db = db, b = b, events = ev1 }
      local id = assert(e:start("E"))
      local trace = cjson.decode(require("orket.store.runs").get(db, id).data).trace_id
      assert.matches("^%x+$", trace)
      assert.equal(32, #trace)
      local n, inner = 0, e.llm.chat
      e.llm.chat = function(self, req)
        n = n + 1
        if n == 5 then e:stop() return nil, "canceled", "canceled" end
        return inner(self, req)
      end
      assert.equal("interrupted", (e:execute(id)))
      local e2, second = traced { db = db, b = b, events = ev2 }
      assert.equal("done", (e2:execute(id)))
      assert.same({ trace, trace }, { ev1[1].trace_id, ev2[1].trace_id })
      local roots = {}
      for _, list in ipairs { first, second } do
        for _, sp in ipairs(list) do
          assert.equal(trace, sp.traceId)
          if sp.name == "orket run E" then roots[#roots + 1] = sp end
        end
      end
      assert.equal(2, #roots)
      local root2, agents = roots[2], 0
      assert.equal(root2, second[#second]) -- the resume's root, its last span
      for _, sp in ipairs(second) do
        if sp.name:match("^invoke_agent") then
          agents = agents + 1
          assert.equal(root2.spanId, sp.parentSpanId)
        end
      end
      assert.is_true(agents > 0)
      -- another run of a store with the same id, and the same run id (a copy): its own trace
      local db2, b2 = F.fixture(H.tmpdir() .. "/p.db", F.STANDARD)
      local e3, third = traced { db = db2, b = b2 }
      local id3 = assert(e3:start("E"))
      assert.equal(id, id3)
      assert.equal("done", (e3:execute(id3)))
      assert.not_equal(trace, third[1].traceId)
      assert.equal(cjson.decode(require("orket.store.runs").get(db2, id3).data).trace_id, third[1].traceId)
    end)
    H.cleanup()
    assert(ok, err)
  end)

  it("take the store's id where an engine's tracer is built, the same at each open", function()
    local H = require "tests.helpers"
    local setup = require "orket.engine.setup"
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9" }
    local function getenv(k) return env[k] end
    local ids = {}
    local ok, err = pcall(function()
      assert(require("orket.project").open_store(dir, true)):close()
      for i = 1, 2 do
        local e, db = assert(setup.open(dir, { getenv = getenv }))
        ids[i] = { e.tracer.store_id, require("orket.store.projects").store_id(db) }
        e.close_all()
      end
    end)
    H.cleanup()
    assert(ok, err)
    assert.matches("^%x+$", ids[1][1])
    assert.same({ ids[1][2], ids[1][2] }, { ids[1][1], ids[2][1] })
  end)

  -- the runs recorded before runs kept their trace id keep their traces: the word a restore
  -- adds to the store's id (for event streams) is not the id a tracer hashes
  it("take the same store id after orket restore, where an engine's tracer is built", function()
    local H = require "tests.helpers"
    local setup = require "orket.engine.setup"
    local backup = require "orket.store.backup"
    local sp = require "orket.store.projects"
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9" }
    local function getenv(k) return env[k] end
    local ids, whole = {}, {}
    local ok, err = pcall(function()
      assert(require("orket.project").open_store(dir, true)):close()
      for i = 1, 2 do
        local e, db = assert(setup.open(dir, { getenv = getenv }))
        ids[i], whole[i] = e.tracer.store_id, sp.journal_store_id(db)
        if i == 1 then
          assert(backup.backup(db, dir .. "/b.db"))
          assert(backup.restore(db, dir .. "/b.db"))
        end
        e.close_all()
      end
    end)
    H.cleanup()
    assert(ok, err)
    assert.are_not.equal(whole[1], whole[2]) -- restored: the id streams are given is another
    assert.matches("^%x+$", ids[1])
    assert.equal(ids[1], ids[2])
  end)
end)

describe("otel's configuration", function()
  it("treat an empty signal's headers as unset: the shared ones go, as with an empty endpoint", function()
    for _, own in ipairs { "OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS" } do
      local env = { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9", [own] = "",
        OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20shared" }
      local cfg = otel.config(function(k) return env[k] end)
      local want = { "Content-Type: application/json", "authorization: Bearer shared" }
      assert.same(want, cfg.headers, own)
      assert.same(want, cfg.metrics_headers, own)
    end
  end)

  local function config(env) return otel.config(function(k) return env[k] end) end
  local BASE = "http://127.0.0.1:4317"

  it("refuse gRPC, naming the variable and its value", function()
    local cfg, err, code = config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_PROTOCOL = "grpc" }
    assert.is_nil(cfg)
    assert.equal("EINVAL", code)
    assert.matches("^OTEL_EXPORTER_OTLP_PROTOCOL=grpc: Orket exports OTLP over HTTP with JSON %(http/json%), not gRPC",
      err)
    assert.matches("4318", err, 1, true)
    -- a signal's own variable wins over the shared one, either way; enum values ignore case
    cfg, err = config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_PROTOCOL = "http/json",
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = "GRPC" }
    assert.is_nil(cfg)
    assert.matches("^OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=GRPC: ", err)
    cfg, err = config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_PROTOCOL = "grpc",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "http/json", OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = " HTTP/JSON " }
    assert(cfg, err)
    assert.same({}, cfg.warnings)
  end)

  it("propagate trace context with traces exported, unless OTEL_PROPAGATORS leaves tracecontext out", function()
    assert.is_true(assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE }).propagate)
    assert.is_true(assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_PROPAGATORS = " baggage, TraceContext" }).propagate)
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_PROPAGATORS = "none" })
    assert.same({ nil, {} }, { cfg.propagate, cfg.warnings })
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_PROPAGATORS = "b3" })
    assert.is_nil(cfg.propagate)
    assert.same({ 'OTEL_PROPAGATORS: "b3" is not a propagator Orket sends (tracecontext; none): ignored' }, cfg.warnings)
    -- the metrics alone: no trace to name
    cfg = assert(config { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = BASE .. "/v1/metrics" })
    assert.is_nil(cfg.propagate)
  end)

  -- a base URL's query (a collector's tenant) stays after each signal's path, where it was
  -- joined after it (/?tenant=a/v1/traces); a fragment is left out, said
  it("puts each signal's path before the base URL's query, and leaves a fragment out, said", function()
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE .. "/otlp/?tenant=a&x=%2F" })
    assert.same({ BASE .. "/otlp/v1/traces?tenant=a&x=%2F", BASE .. "/otlp/v1/metrics?tenant=a&x=%2F", {} },
      { cfg.url, cfg.metrics_url, cfg.warnings })
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE .. "#secret" })
    assert.same({ BASE .. "/v1/traces", BASE .. "/v1/metrics" }, { cfg.url, cfg.metrics_url })
    assert.equal(1, #cfg.warnings)
    assert.matches("has a fragment (#...): a fragment is never sent", cfg.warnings[1], 1, true)
    assert.is_nil(cfg.warnings[1]:find("secret", 1, true))
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE .. "?t=1#f" })
    assert.same({ BASE .. "/v1/traces?t=1", BASE .. "/v1/metrics?t=1", 1 }, { cfg.url, cfg.metrics_url, #cfg.warnings })
  end)

  -- the specification, for an enum: a value it does not recognise MUST be warned of and
  -- ignored (a typo, a vendor's spelling); it was refused, stopping every command
  it("warn of a protocol the specification does not name, naming the variable and its value, and send http/json", function()
    for _, value in ipairs { "http", "http/jsonn", "HTTP/2" } do
      local cfg, err = config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = value }
      assert(cfg, err)
      assert.equal(BASE .. "/v1/traces", cfg.url)
      assert.equal("Content-Type: application/json", cfg.headers[1])
      assert.same({ "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=" .. value .. ": not a protocol (the specification's: grpc, "
        .. "http/protobuf, http/json): ignored, Orket sends OTLP/HTTP with JSON (http/json); set "
        .. "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json or unset it" }, cfg.warnings)
    end
    -- the shared variable, read by both signals: one warning
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_PROTOCOL = "http" })
    assert.equal(1, #cfg.warnings)
    assert.matches("^OTEL_EXPORTER_OTLP_PROTOCOL=http: not a protocol", cfg.warnings[1])
  end)

  it("check only the protocol of a signal that is exported", function()
    assert.is_nil(select(2, config { OTEL_EXPORTER_OTLP_PROTOCOL = "grpc" })) -- no collector: no export
    assert.is_nil(select(2, config { OTEL_EXPORTER_OTLP_PROTOCOL = "grpc", OTEL_SDK_DISABLED = "true",
      OTEL_EXPORTER_OTLP_ENDPOINT = BASE }))
    local cfg, err = config { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = "http://127.0.0.1:4318/v1/metrics",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "grpc", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "collector:4317" }
    assert(cfg, err)
    assert.is_nil(cfg.url)
    -- an empty variable is unset: the shared one rules
    cfg, err = config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "",
      OTEL_EXPORTER_OTLP_PROTOCOL = "grpc" }
    assert.is_nil(cfg)
    assert.matches("^OTEL_EXPORTER_OTLP_PROTOCOL=grpc", err)
  end)

  it("take a protocol of only spaces as unset, the shared one ruling", function()
    local cfg, err = config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_PROTOCOL = " \t " }
    assert(cfg, err)
    assert.same({}, cfg.warnings)
    cfg, err = config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "  ",
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = " ", OTEL_EXPORTER_OTLP_PROTOCOL = "grpc" }
    assert.is_nil(cfg)
    assert.matches("^OTEL_EXPORTER_OTLP_PROTOCOL=grpc: ", err)
  end)

  it("read the export's pace (OTEL_BSP_*, OTEL_METRIC_EXPORT_INTERVAL), a bad value said and the default kept", function()
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9", OTEL_BSP_SCHEDULE_DELAY = " 200 ",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "64", OTEL_METRIC_EXPORT_INTERVAL = "1000" })
    assert.same({ 200, 64, 1000, {} }, { cfg.schedule_delay_ms, cfg.batch, cfg.metric_interval_ms, cfg.warnings })
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9", OTEL_BSP_SCHEDULE_DELAY = "5s",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "4096", OTEL_METRIC_EXPORT_INTERVAL = "0" })
    assert.same({ nil, nil, nil }, { cfg.schedule_delay_ms, cfg.batch, cfg.metric_interval_ms })
    assert.same({
      "OTEL_BSP_SCHEDULE_DELAY=5s: not a whole number from 1 to 86400000: ignored, the default (5000) kept",
      "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=4096: not a whole number from 1 to 2048: ignored, the default (256) kept",
      "OTEL_METRIC_EXPORT_INTERVAL=0: not a whole number from 1 to 86400000: ignored, the default (60000) kept",
    }, cfg.warnings)
    -- a signal not exported: its variables not read
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9", OTEL_METRICS_EXPORTER = "none",
      OTEL_METRIC_EXPORT_INTERVAL = "x" })
    assert.same({}, cfg.warnings)
    -- the batch's size is read where a span is written
    local tr = otel.new(assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "2" }), "proj")
    local sealed = 0
    tr.flush = function(self) sealed = sealed + 1; self:seal() end
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, latency_ms = 12 }
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "handed_in" }
    assert.same({ 1, 2 }, { sealed, tr.queue[1].n })
    tr:stop_timers()
  end)

  -- OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_EXPORT_TIMEOUT, OTEL_METRIC_EXPORT_TIMEOUT and
  -- OTEL_EXPORTER_OTLP_TIMEOUT (_TRACES_, _METRICS_) were not read: the queue was 2048 and a
  -- request's timeout 5 s whatever they said
  it("read the queue's size and the timeouts, a signal's own over the shared one, a bad value said", function()
    local E = "http://127.0.0.1:9"
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = E, OTEL_BSP_MAX_QUEUE_SIZE = "8192",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "4096", OTEL_BSP_EXPORT_TIMEOUT = "9000", OTEL_METRIC_EXPORT_TIMEOUT = "7000",
      OTEL_EXPORTER_OTLP_TIMEOUT = "2500", OTEL_EXPORTER_OTLP_METRICS_TIMEOUT = "1500" })
    assert.same({ 8192, 4096, 9000, 7000, 2500, 1500, {} }, { cfg.queue_max, cfg.batch, cfg.export_timeout_ms,
      cfg.metrics_export_timeout_ms, cfg.timeout_ms, cfg.metrics_timeout_ms, cfg.warnings })
    -- unset: Orket's defaults, read where they are used
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = E })
    assert.same({ nil, nil, nil, nil, nil }, { cfg.queue_max, cfg.export_timeout_ms, cfg.metrics_export_timeout_ms,
      cfg.timeout_ms, cfg.metrics_timeout_ms })
    -- bad values: said, each once, the default (or the shared variable) kept
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = E, OTEL_BSP_MAX_QUEUE_SIZE = "0",
      OTEL_BSP_EXPORT_TIMEOUT = "30s", OTEL_METRIC_EXPORT_TIMEOUT = "-1", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT = "1.5",
      OTEL_EXPORTER_OTLP_TIMEOUT = "x" })
    assert.same({ nil, nil, nil, nil, nil }, { cfg.queue_max, cfg.export_timeout_ms, cfg.metrics_export_timeout_ms,
      cfg.timeout_ms, cfg.metrics_timeout_ms })
    assert.same({
      "OTEL_BSP_MAX_QUEUE_SIZE=0: not a whole number from 1 to 65536: ignored, the default (2048) kept",
      "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=1.5: not a whole number from 0 to 2147483647: ignored, the default (5000) kept",
      "OTEL_EXPORTER_OTLP_TIMEOUT=x: not a whole number from 0 to 2147483647: ignored, the default (5000) kept",
      "OTEL_BSP_EXPORT_TIMEOUT=30s: not a whole number from 0 to 2147483647: ignored, the default (30000) kept",
      "OTEL_METRIC_EXPORT_TIMEOUT=-1: not a whole number from 0 to 2147483647: ignored, the default (30000) kept",
    }, cfg.warnings)
    -- a bad signal's own: the shared one rules
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = E, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT = "",
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT = "soon", OTEL_EXPORTER_OTLP_TIMEOUT = "800" })
    assert.same({ 800, 800 }, { cfg.timeout_ms, cfg.metrics_timeout_ms })
    -- 0, the specification's "no limit", taken (its meaning: Tracer:send); past a day too
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = E, OTEL_EXPORTER_OTLP_TIMEOUT = "0",
      OTEL_BSP_EXPORT_TIMEOUT = "0", OTEL_METRIC_EXPORT_TIMEOUT = "2147483647" })
    assert.same({ 0, 0, 0, 2147483647, {} }, { cfg.timeout_ms, cfg.metrics_timeout_ms, cfg.export_timeout_ms,
      cfg.metrics_export_timeout_ms, cfg.warnings })
    -- a batch is at most the queue, the default batch too (the specification's rule)
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = E, OTEL_BSP_MAX_QUEUE_SIZE = "100",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "200" })
    assert.same({ 100, 100 }, { cfg.queue_max, cfg.batch })
    assert.same({ "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=200: not a whole number from 1 to 100: ignored, the default (100) "
      .. "kept" }, cfg.warnings)
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = E, OTEL_BSP_MAX_QUEUE_SIZE = "100" })
    assert.same({ 100, 100, {} }, { cfg.queue_max, cfg.batch, cfg.warnings })
    -- and so a small queue fills a batch, sent, never spans dropped while the collector takes them
    local small = otel.new(cfg, "proj")
    small.send = function() return true end
    run_events(small, 50) -- 151 spans, a queue of 100: a batch of 100 sent at its 100th
    assert.same({ 0, 151 }, { small.dropped, small.exported + small:stats().queued })
    -- a signal not exported: its variables not read
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = E, OTEL_TRACES_EXPORTER = "none", OTEL_BSP_MAX_QUEUE_SIZE = "x",
      OTEL_BSP_EXPORT_TIMEOUT = "x", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT = "x" })
    assert.same({}, cfg.warnings)
    -- the queue's size is where a span is written: past it, spans are dropped, counted
    local tr = otel.new(assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = E, OTEL_BSP_MAX_QUEUE_SIZE = "3" }), "proj")
    tr.flush = function(self) self:seal() end
    run_events(tr, 2) -- 7 spans: 3 kept, 4 dropped
    assert.same({ 3, 4 }, { tr.queued, tr.dropped })
  end)

  it("send JSON for http/protobuf, said once a process, naming the variable", function()
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9",
      OTEL_EXPORTER_OTLP_PROTOCOL = "http/protobuf" })
    assert.equal(1, #cfg.warnings) -- both signals read the shared variable: one warning
    assert.matches("^OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf: Orket sends OTLP/HTTP with JSON", cfg.warnings[1])
    assert.equal("Content-Type: application/json", cfg.headers[1])
    local said, warn, warned = {}, otel.warn, otel.warned
    otel.warn, otel.warned = function(text) said[#said + 1] = text end, {}
    local ok, err = pcall(function()
      otel.new(cfg, "proj")
      otel.new(assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_PROTOCOL = "http/protobuf" }), "proj") -- a server's next run
    end)
    otel.warn, otel.warned = warn, warned
    assert(ok, err)
    assert.same(cfg.warnings, said)
  end)

  -- OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER were not read: with a collector named,
  -- none still exported, and zipkin exported over OTLP unsaid
  it("turn a signal off for its exporter none, case and spaces aside, the other signal exported", function()
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_TRACES_EXPORTER = " NONE " })
    assert.same({ nil, BASE .. "/v1/metrics" }, { cfg.url, cfg.metrics_url })
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_METRICS_EXPORTER = "none" })
    assert.same({ BASE .. "/v1/traces", nil }, { cfg.url, cfg.metrics_url })
    assert.same({}, cfg.warnings)
    assert.is_nil(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_TRACES_EXPORTER = "none",
      OTEL_METRICS_EXPORTER = "None" })
    -- otlp, or a list that names it, exports; the signal's own endpoint is turned off too
    cfg = assert(config { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = BASE .. "/v1/traces", OTEL_TRACES_EXPORTER = "otlp,none",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = BASE .. "/v1/metrics", OTEL_METRICS_EXPORTER = "none" })
    assert.same({ BASE .. "/v1/traces", nil }, { cfg.url, cfg.metrics_url })
    -- a signal turned off has its protocol unread: gRPC for it refuses nothing
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_METRICS_EXPORTER = "none",
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = "grpc" })
    assert.is_nil(cfg.metrics_url)
  end)

  -- an entry that makes no header ("Authorization: Bearer ..." written as the header
  -- itself) was dropped with nothing said: the exports went without it, refused by the
  -- collector as unauthenticated
  it("warn of a headers entry that makes no header, by its place and never its text, and send the rest", function()
    local function warned(var, i, why)
      return string.format("%s: entry %d %s: that header is not sent; write the headers as key=value pairs "
        .. "separated by commas, values percent-encoded (authorization=Bearer%%20...)", var, i, why)
    end
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE,
      OTEL_EXPORTER_OTLP_HEADERS = "Authorization: Bearer s3cret,x-a=1, bad key=s3cret,x-b=a%0d%0aEvil:%201,x-c = b%09c,=s3cret," })
    local want = { "Content-Type: application/json", "x-a: 1", "x-c: b\tc" }
    assert.same(want, cfg.headers)
    assert.same(want, cfg.metrics_headers)
    -- once each, though both signals read the shared variable
    assert.same({ warned("OTEL_EXPORTER_OTLP_HEADERS", 1, "is not key=value"),
      warned("OTEL_EXPORTER_OTLP_HEADERS", 3, "has a key that is not an HTTP header name"),
      warned("OTEL_EXPORTER_OTLP_HEADERS", 4, "has a value with a control character (a line break...) after "
        .. "percent-decoding"),
      warned("OTEL_EXPORTER_OTLP_HEADERS", 6, "has a key that is not an HTTP header name") }, cfg.warnings)
    -- a signal's own variable is named as its own
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_METRICS_HEADERS = "api-key" })
    assert.same({ warned("OTEL_EXPORTER_OTLP_METRICS_HEADERS", 1, "is not key=value") }, cfg.warnings)
    assert.same({ "Content-Type: application/json" }, cfg.metrics_headers)
  end)

  -- an endpoint variable without its scheme ("collector:4318", as often written) turned
  -- export off, or one signal's, with nothing said
  it("warn of an endpoint variable that is not an http(s) URL, naming it, and ignore it", function()
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = "collector:4318" })
    assert.is_true(cfg.off)
    assert.same({ "OTEL_EXPORTER_OTLP_ENDPOINT=collector:4318: not an http:// or https:// URL: ignored "
      .. "(telemetry.endpoint of orket.lua, when set, is used instead); set it to the collector's OTLP/HTTP URL, "
      .. "e.g. http://collector:4318" }, cfg.warnings)
    -- orket.lua's endpoint is used instead
    cfg = assert(otel.config(function(k) return ({ OTEL_EXPORTER_OTLP_ENDPOINT = "collector:4318" })[k] end,
      { endpoint = BASE }))
    assert.same({ BASE .. "/v1/traces", BASE .. "/v1/metrics", 1 }, { cfg.url, cfg.metrics_url, #cfg.warnings })
    -- a signal's own: the base's URL instead, the other signal unchanged
    cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "collector:4318/v1/traces",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = "grpc://collector:4317" })
    assert.same({ BASE .. "/v1/traces", BASE .. "/v1/metrics" }, { cfg.url, cfg.metrics_url })
    assert.equal(2, #cfg.warnings)
    assert.matches("^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=collector:4318/%.%.%.: not an http", cfg.warnings[1])
    assert.matches("^OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=grpc://collector:4317: not an http", cfg.warnings[2])
  end)

  -- The warning said the value with only a user:password without "/" cut out: a password
  -- holding "/" ("me:pa/ss@host", where the authority ends early) was said whole, and so
  -- was a query's key, twice (in the value and in the "e.g." URL made from it)
  it("say of an endpoint variable's value only its scheme and host:port, never a user, password, path or query", function()
    local function warning(var, v)
      local cfg = assert(config { [var] = v })
      assert.equal(1, #cfg.warnings, v)
      return cfg.warnings[1]
    end
    local B, T = "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    local cases = {
      { B, "grpc://me:pa/ss@collector:4317", "grpc://...", "127.0.0.1:4318" },
      { B, "me:pa/ss@collector:4318", "...", "127.0.0.1:4318" },
      { B, "me:1234/ss@collector:4318", "...", "127.0.0.1:4318" }, -- "me:1234" would pass for host:port
      { B, "me:pa?ss@collector:4318", "...", "127.0.0.1:4318" },
      { T, "collector:4318/v1/traces?api_key=SECRET", "collector:4318/...", "collector:4318/v1/traces" },
      { T, "collector:4318?api_key=SECRET", "collector:4318?...", "collector:4318/v1/traces" },
      { B, "me:s3cret@collector:4318", "...@collector:4318", "collector:4318" },
      { B, "grpcs://me:s3cret@collector:4317/x#SECRET", "grpcs://...@collector:4317/...", "127.0.0.1:4318" },
      { B, "GRPC://[::1]:4317", "grpc://[::1]:4317", "127.0.0.1:4318" },
      -- a lone word without a scheme may be a key set in the wrong variable
      { B, "sk-live-SECRET", "...", "127.0.0.1:4318" },
    }
    for _, c in ipairs(cases) do
      local text = warning(c[1], c[2])
      assert.equal(c[1] .. "=" .. c[3] .. ": not an http:// or https:// URL: ignored", text:match("^.-ignored"), c[2])
      assert.equal(c[4], text:match("e%.g%. http://(.*)$"), c[2])
      for _, secret in ipairs { "pa", "ss", "s3cret", "1234", "SECRET", "api_key", "me:" } do
        assert.is_nil(text:find(secret, 1, true), secret .. " said in " .. text)
      end
    end
  end)

  -- "http://me:pa/ss@collector:4318" (a password holding "/") was taken without a word: libcurl
  -- sent to host "me", port "pa" and its errors named that host, a part of the password
  it("warn of an endpoint whose user info may hold an unencoded '/', '?' or '#', by its name alone", function()
    local B, T = "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    local want = ": has an '@' past its host: where it ends a user or password, write its '/', '?' and '#' "
      .. "percent-encoded (%2F, %3F, %23), or the export goes to a host made of the user info's start, and its "
      .. "errors can show part of the password"
    for _, c in ipairs { { B, "http://me:pa/ss@collector:4318" }, { T, "https://tok/SECRET@collector/v1/traces" },
      { B, "http://me:pa?ss@collector:4318" }, { B, "HTTP://me:pa#ss@collector:4318" } } do
      local cfg = assert(config { [c[1]] = c[2] })
      assert.same({ c[1] .. want }, cfg.warnings, c[2])
      assert.is_truthy(cfg.url, c[2]) -- still used: a warning, as the value may be a path's "@"
    end
    local cfg = assert(otel.config(function() return nil end, { endpoint = "http://me:pa/ss@collector:4318" }))
    assert.same({ "orket.lua's telemetry.endpoint" .. want }, cfg.warnings)
    -- encoded, or a user info ending before the host: nothing to say
    for _, v in ipairs { "http://me:pa%2Fss@collector:4318", "http://me:p@ss@collector:4318/v1", "http://collector:4318" } do
      assert.same({}, assert(config { [B] = v }).warnings, v)
    end
  end)

  -- "HTTP://collector:4318" (a scheme is case-insensitive) and a value with spaces around it
  -- (pasted) were refused as not http(s) URLs
  it("take an endpoint variable's scheme in any case and leave out the spaces around it", function()
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = " HTTP://collector:4318/ \n" })
    assert.same({ "http://collector:4318/v1/traces", "http://collector:4318/v1/metrics", {} },
      { cfg.url, cfg.metrics_url, cfg.warnings })
    cfg = assert(config { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "\tHttps://collector:4318/v1/traces",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = "hTTp://m:4318/v1/metrics  " })
    assert.same({ "https://collector:4318/v1/traces", "http://m:4318/v1/metrics", {} },
      { cfg.url, cfg.metrics_url, cfg.warnings })
    -- only spaces: unset, as empty
    assert.is_nil(config { OTEL_EXPORTER_OTLP_ENDPOINT = "  " })
    -- the endpoint a failed export names has the same parts alone
    assert.same({ "http://...", "http", nil }, { otel.shown_endpoint("HTTP://me:12/ss@collector:4318/v1/traces") })
    assert.same({ "https://...@collector/...", "https", "collector" },
      { otel.shown_endpoint("https://me:s3cret@collector/v1/traces?k=SECRET") })
  end)

  it("turn every signal off for OTEL_SDK_DISABLED=true, case and spaces aside, and warn of another value", function()
    for _, v in ipairs { "true", "TRUE", " True " } do
      assert.is_nil(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_SDK_DISABLED = v }, v)
    end
    for _, v in ipairs { "false", "", " FALSE" } do
      assert.same({}, assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_SDK_DISABLED = v }).warnings, v)
    end
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_SDK_DISABLED = "1" })
    assert.equal(BASE .. "/v1/traces", cfg.url)
    assert.same({ "OTEL_SDK_DISABLED=1: not true or false: taken as false, export stays on; set "
      .. "OTEL_SDK_DISABLED=true to turn it off" }, cfg.warnings)
  end)

  -- an exporter Orket does not have was refused as gRPC is: orket serve, orket worker and
  -- every run stopped over a variable often set fleet-wide (prometheus); a typo in a list
  -- with none was said to export over OTLP and exported nothing
  it("turn a signal off for an exporter it does not understand, warning with the variable, its value and "
    .. "what happens", function()
    local function said(var, value, first, hint)
      local what = var == "OTEL_TRACES_EXPORTER" and "traces" or "metrics"
      return string.format("%s=%s: %s (Orket understands otlp and none): the %s are not exported; set %s=otlp "
        .. "(or unset it) to export them over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT%s, or %s=none to leave them off "
        .. "without this warning", var, value, first, what, var, hint and (" (" .. hint .. ")") or "", var)
    end
    local debug = "the OpenTelemetry Collector's debug exporter writes what it receives"
    for _, c in ipairs {
      { "OTEL_TRACES_EXPORTER", "zipkin", "Orket has no zipkin exporter",
        "the OpenTelemetry Collector's zipkin exporter sends them on to Zipkin" },
      { "OTEL_METRICS_EXPORTER", "Prometheus", "Orket has no prometheus exporter",
        "orket serve's GET /metrics is Prometheus's to scrape, and the OpenTelemetry Collector's prometheus "
          .. "exporter serves what it receives" },
      { "OTEL_TRACES_EXPORTER", "otlp,console", "Orket has no console exporter", debug },
      { "OTEL_METRICS_EXPORTER", "logging", "Orket has no logging exporter", debug },
      { "OTEL_TRACES_EXPORTER", "otlp/stdout", "Orket has no otlp/stdout exporter", debug },
      { "OTEL_TRACES_EXPORTER", "jaeger", "Orket has no jaeger exporter", "Jaeger takes OTLP itself" },
      { "OTEL_TRACES_EXPORTER", "otlpp", "otlpp is not an exporter" },
      { "OTEL_TRACES_EXPORTER", "otlpp,none", "otlpp is not an exporter" },
      { "OTEL_METRICS_EXPORTER", "none, Zipkin", "Orket has no zipkin exporter",
        "the OpenTelemetry Collector's zipkin exporter sends them on to Zipkin" },
    } do
      local cfg, err = config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, [c[1]] = c[2] }
      assert(cfg, err)
      assert.same({ said(c[1], c[2], c[3], c[4]) }, cfg.warnings, c[2])
      -- that signal off, the other exported
      if c[1] == "OTEL_TRACES_EXPORTER" then assert.same({ nil, BASE .. "/v1/metrics" }, { cfg.url, cfg.metrics_url })
      else assert.same({ BASE .. "/v1/traces", nil }, { cfg.url, cfg.metrics_url }) end
    end
    -- both off: nothing exported, the warning still to say
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_TRACES_EXPORTER = "zipkin",
      OTEL_METRICS_EXPORTER = "none" })
    assert.same({ true, nil, nil, 1 }, { cfg.off, cfg.url, cfg.metrics_url, #cfg.warnings })
    -- read only for a signal exported, as the protocol: no collector, or disabled
    assert.is_nil(config { OTEL_TRACES_EXPORTER = "zipkin" })
    assert.is_nil(config { OTEL_TRACES_EXPORTER = "zipkin", OTEL_SDK_DISABLED = "true", OTEL_EXPORTER_OTLP_ENDPOINT = BASE })
  end)

  it("open an engine with an exporter Orket does not have, that signal off and said once, nothing refused", function()
    local H = require "tests.helpers"
    local setup = require "orket.engine.setup"
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_METRICS_EXPORTER = "prometheus" }
    local function getenv(k) return env[k] end
    local said, warn, warned = {}, otel.warn, otel.warned
    otel.warn, otel.warned = function(text) said[#said + 1] = text end, {}
    local got = {}
    local ok, err = pcall(function()
      assert(require("orket.project").open_store(dir, true)):close()
      for _ = 1, 2 do -- a server's or a worker's next run: not said again
        local e = assert(setup.open(dir, { getenv = getenv }))
        got[#got + 1] = { e.tracer.cfg.url, e.tracer.cfg.metrics_url }
        e.close_all()
      end
      -- both signals off: no tracer, said all the same
      env.OTEL_TRACES_EXPORTER = "console"
      local e = assert(setup.open(dir, { getenv = getenv }))
      got[#got + 1] = e.tracer == nil
      e.close_all()
    end)
    otel.warn, otel.warned = warn, warned
    H.cleanup()
    assert(ok, err)
    assert.same({ { BASE .. "/v1/traces" }, { BASE .. "/v1/traces" }, true }, got)
    assert.equal(2, #said)
    assert.matches("^OTEL_METRICS_EXPORTER=prometheus: Orket has no prometheus exporter", said[1])
    assert.matches("^OTEL_TRACES_EXPORTER=console: Orket has no console exporter", said[2])
  end)

  -- with the traces off and the metrics on, every span was still written and thrown away
  it("write no span when the traces are off, the metrics still kept", function()
    local cfg = assert(config { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_TRACES_EXPORTER = "none" })
    local tr = otel.new(cfg, "proj")
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, latency_ms = 100, prompt_tokens = 10,
      completion_tokens = 2 }
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "handed_in" }
    assert.equal(0, (tr.writer:count())) -- the chat and invoke_agent spans were written here
    assert.equal(3, #tr.points) -- input, output tokens and the duration
  end)

  -- gRPC was refused by orket.lua's loading: every command, those that never export too
  -- (orket models, version --check, gate's settings read in silence)
  it("leave orket.lua's loading alone, and refuse gRPC where an engine's tracer is built, before anything opens", function()
    local H = require "tests.helpers"
    local setup = require "orket.engine.setup"
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = BASE, OTEL_EXPORTER_OTLP_PROTOCOL = "grpc" }
    local function getenv(k) return env[k] end
    local loaded, lerr = require("orket.config").load(dir, getenv)
    local e, err, code = setup.open(dir, { getenv = getenv })
    local made = require("luv").fs_stat(dir .. "/workspace")
    env.OTEL_EXPORTER_OTLP_PROTOCOL = "http/json"
    local db = assert(require("orket.project").open_store(dir, true))
    db:close()
    local e2, err2 = setup.open(dir, { getenv = getenv })
    local traced = e2 and e2.tracer ~= nil
    if e2 then e2.close_all() end
    H.cleanup()
    assert(loaded, lerr)
    assert.is_nil(e)
    assert.equal("EINVAL", code)
    assert.matches("^OTEL_EXPORTER_OTLP_PROTOCOL=grpc: Orket exports OTLP over HTTP with JSON", err)
    assert.is_nil(made) -- refused before the workspace (and the store, the repository) opened
    assert(e2, err2)
    assert.is_true(traced)
  end)
end)

describe("otel's timers", function()
  local rt, task = require "orket.c.runtime", require "orket.task"
  local function wait(ms) assert(task.spawn(function() rt.sleep(ms) end):join()) end

  -- A tracer on env whose sends are kept (spans: their names; metrics: {name, count, start}
  -- of each data point, and the resource's service.instance.id as .instance).
  local function kept(env, spans, metrics)
    local tr = otel.new(assert(otel.config(function(k) return env[k] end)), "proj")
    tr.send = function(self, body, url)
      local doc = cjson.decode(type(body) == "string" and body or body:text())
      if url == self.cfg.metrics_url then
        local by = {}
        for _, a in ipairs(doc.resourceMetrics[1].resource.attributes) do
          if a.key == "service.instance.id" then by.instance = a.value.stringValue end
        end
        for _, m in ipairs(doc.resourceMetrics[1].scopeMetrics[1].metrics) do
          for _, dp in ipairs(m.histogram.dataPoints) do
            assert.equal(2, m.histogram.aggregationTemporality) -- cumulative
            by[#by + 1] = { m.name, dp.count, dp.startTimeUnixNano }
          end
        end
        metrics[#metrics + 1] = by
      else
        for _, sp in ipairs(doc.resourceSpans[1].scopeSpans[1].spans) do spans[#spans + 1] = sp.name end
      end
      return true
    end
    return tr
  end
  local function turn(tr, card, run)
    tr:event { type = "turn_start", run_id = run or 7, card = card, turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "model", run_id = run or 7, card = card, turn = 1, step = 1, latency_ms = 12, prompt_tokens = 50,
      completion_tokens = 3 }
    tr:event { type = "turn_end", run_id = run or 7, card = card, turn = 1, outcome = "handed_in" }
  end
  local FAST = { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9", OTEL_BSP_SCHEDULE_DELAY = "20",
    OTEL_METRIC_EXPORT_INTERVAL = "20" }

  -- the spans left only when a batch of 256 filled and at the run's end, the metrics only
  -- at its end: a start killed midway had sent nothing
  it("send the spans written and the metrics so far while the run goes on, never holding the process", function()
    local spans, metrics = {}, {}
    local tr = kept(FAST, spans, metrics)
    tr:event { type = "run_start", run_id = 7, target = "M" }
    turn(tr, "M-1")
    -- unref'd: a run that never ends (an error) leaves no timer holding its process
    local meter = tr.meter
    assert.same({ false, false }, { tr.span_timer:has_ref(), meter.timer:has_ref() })
    wait(150)
    assert.same({ "chat m1", "invoke_agent coder" }, spans)
    assert.is_true(#metrics >= 1)
    local first = metrics[#metrics]
    assert.same({ "1", "1", "1" }, { first[1][2], first[2][2], first[3][2] })
    turn(tr, "M-2")
    wait(150)
    assert.equal(4, #spans)
    -- the totals from the first call, not the calls since the last export (a backend takes
    -- each as the series' newest value: added up, they would count the first call twice)
    local second = metrics[#metrics]
    for i, p in ipairs(second) do assert.same({ first[i][1], "2", first[i][3] }, p) end
    -- nothing counted since: the same totals still sent each interval (the SDK's periodic
    -- reader's way: a quiet series is not taken for one gone)
    local n = #metrics
    wait(100)
    assert.is_true(#metrics > n)
    for i, p in ipairs(metrics[#metrics]) do assert.same({ first[i][1], "2", first[i][3] }, p) end
    tr:event { type = "run_end", run_id = 7, status = "done" }
    assert.is_nil(tr.span_timer) -- stopped: the run's end sent the rest
    tr:drain()
    assert.same({ "chat m1", "invoke_agent coder", "chat m1", "invoke_agent coder", "orket run M" }, spans)
    for i, p in ipairs(metrics[#metrics]) do assert.same({ first[i][1], "2", first[i][3] }, p) end
    -- the next run of the process goes on counting, in the same series (never reset)
    tr:event { type = "run_start", run_id = 8, target = "M" }
    turn(tr, "M-3", 8)
    tr:event { type = "run_end", run_id = 8, status = "done" }
    tr:drain()
    assert.same({ first[1][1], "3", first[1][3] }, metrics[#metrics][1])
  end)

  -- a collector that answered, but slower than the tick, got one small request a tick, which
  -- piled up behind it for the run's end to drop
  it("send a slow collector fewer, fuller requests, not one a tick", function()
    local spans, requests = {}, 0
    local tr = kept(FAST, spans, {})
    local send = tr.send
    tr.send = function(self, body, url)
      if url ~= self.cfg.metrics_url then
        requests = requests + 1
        rt.sleep(120) -- six ticks
      end
      return send(self, body, url)
    end
    tr:event { type = "run_start", run_id = 7, target = "M" }
    for i = 1, 30 do -- 60 spans over about 600 ms: 30 ticks
      turn(tr, "M-" .. i)
      wait(20)
    end
    tr:event { type = "run_end", run_id = 7, status = "done" }
    tr:drain()
    assert.equal(61, #spans)
    assert.is_true(requests <= 10, "requests: " .. requests)
  end)

  -- each run's tracer kept its own totals from its own start: two runs of a server side by
  -- side sent one series (one resource, scope and attributes) with two writers, alternating
  -- 3, 1, 4, 1, which a backend read as counter resets
  it("count the runs of a process side by side in one series, one timer, its totals never lowered", function()
    local spans, metrics = {}, {}
    local a, b = kept(FAST, spans, metrics), kept(FAST, spans, metrics)
    a:event { type = "run_start", run_id = 1, target = "A" }
    b:event { type = "run_start", run_id = 2, target = "B" }
    for i = 1, 3 do turn(a, "A-" .. i, 1) end
    wait(60)
    turn(b, "B-1", 2)
    wait(60)
    a:event { type = "run_end", run_id = 1, status = "done" } -- A's end lowers nothing of B's
    wait(60)
    turn(b, "B-2", 2)
    wait(60)
    b:event { type = "run_end", run_id = 2, status = "done" }
    b:drain()
    local counts, starts, instances = {}, {}, {}
    for _, by in ipairs(metrics) do
      counts[#counts + 1] = tonumber(by[1][2])
      starts[by[1][3]] = true
      instances[#instances + 1] = by.instance
    end
    for i = 2, #counts do assert.is_true(counts[i] >= counts[i - 1], table.concat(counts, " ")) end
    assert.equal(5, counts[#counts])
    local n = 0
    for _ in pairs(starts) do n = n + 1 end
    assert.equal(1, n) -- one start time: one series
    for _, want in ipairs { 3, 4 } do
      local seen = false
      for _, c in ipairs(counts) do seen = seen or c == want end
      assert.is_true(seen, table.concat(counts, " "))
    end
    for _, id in ipairs(instances) do assert.equal(otel.instance_id(), id) end -- the process's id
    -- one meter for the process, one timer
    assert.is_true(a.meter == b.meter)
    local timers = 0
    for _, m in pairs(otel.meters) do if m.timer then timers = timers + 1 end end
    assert.equal(1, timers)
  end)

  -- two processes (workers, `orket run`s side by side) sent one resource: one stream, two writers
  it("give each process its own service.instance.id, the same for all its runs, OTEL_RESOURCE_ATTRIBUTES' kept", function()
    local H = require "tests.helpers"
    local function id_of(env) return otel.config(function(k) return env[k] end).resource["service.instance.id"] end
    local mine = id_of(FAST)
    assert.matches("^%x+$", mine)
    assert.equal(32, #mine)
    assert.equal(mine, id_of(FAST))
    assert.equal("w-1", id_of { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9",
      OTEL_RESOURCE_ATTRIBUTES = "service.instance.id=w-1" })
    local code = [[io.write(require("orket.otel").config(function(k)
      if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end).resource["service.instance.id"])]]
    local ids = {}
    for i = 1, 2 do
      local p = assert(io.popen(H.quote(H.BIN) .. " lua -e " .. H.quote(code)))
      ids[i] = p:read("a")
      p:close()
      assert.matches("^%x+$", ids[i])
      assert.equal(32, #ids[i])
    end
    assert.are_not.equal(ids[1], ids[2])
    assert.are_not.equal(mine, ids[1])
  end)

  -- an entry without "=" was dropped with nothing said: an attribute went missing unexplained
  it("keep OTEL_RESOURCE_ATTRIBUTES' good entries and warn of each bad one by its place, never its text", function()
    local cfg = otel.config(function(k)
      return ({ OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9",
        OTEL_RESOURCE_ATTRIBUTES = "team=a%20b,tok3n-s3cret, =x,,deployment.environment=prod," })[k]
    end)
    assert.equal("a b", cfg.resource.team)
    assert.equal("prod", cfg.resource["deployment.environment"])
    local said = {}
    for _, w in ipairs(cfg.warnings) do
      if w:find("OTEL_RESOURCE_ATTRIBUTES", 1, true) then said[#said + 1] = w end
    end
    assert.same({
      "OTEL_RESOURCE_ATTRIBUTES: entry 2 is not key=value: left out of the resource; write it as key=value, "
        .. "entries separated by commas",
      "OTEL_RESOURCE_ATTRIBUTES: entry 3 has no key: left out of the resource; write it as key=value, "
        .. "entries separated by commas",
    }, said)
  end)

  -- a run that died without run_end (a Lua error after run_start) kept its timer ticking for
  -- the life of a server, its turns and run span unsent, its calls never exported
  it("end a run its engine closed without run_end as failed, its spans and metrics sent, its timer stopped", function()
    local spans, metrics = {}, {}
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9" }
    local tr = kept(env, spans, metrics)
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "model", run_id = 7, card = "M-1", turn = 1, step = 1, latency_ms = 12, prompt_tokens = 50,
      completion_tokens = 3 }
    assert.is_not_nil(tr.span_timer)
    tr:close()
    assert.is_nil(tr.span_timer)
    assert.is_nil(tr.run)
    tr:drain()
    assert.same({ "chat m1", "invoke_agent coder", "orket run M" }, spans)
    assert.equal(1, #metrics)
    assert.equal("1", metrics[1][1][2])
    -- the next run begins with no turn of the dead one's
    tr:event { type = "run_start", run_id = 8, target = "M" }
    assert.same({}, tr.open)
    tr:close()
  end)

  it("end the run at the engine's close_all when an error escaped the run after run_start", function()
    local H = require "tests.helpers"
    local setup = require "orket.engine.setup"
    local dir = H.tmpdir()
    os.execute("cp -R " .. H.quote(H.ROOT .. "/examples/notes/.") .. " " .. H.quote(dir))
    local db = assert(require("orket.project").open_store(dir, true))
    assert(require("orket.import").import(db, dir))
    db:close()
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9" }
    local e = assert(setup.open(dir, { getenv = function(k) return env[k] end }))
    local tr = assert(e.tracer)
    local sent = {}
    tr.send = function(_, body)
      if type(body) ~= "string" then
        for _, sp in ipairs(cjson.decode(body:text()).resourceSpans[1].scopeSpans[1].spans) do
          local et
          for _, a in ipairs(sp.attributes) do if a.key == "error.type" then et = a.value.stringValue end end
          sent[#sent + 1] = sp.name .. "=" .. tostring(et)
        end
      end
      return true
    end
    e.on_run_start = function() error("injected after run_start", 0) end
    local ok, err = pcall(e.execute, e, assert(e:start("NOTES")))
    local open_run, timer = tr.run ~= nil, tr.span_timer ~= nil
    e.close_all()
    local after = { tr.run, tr.span_timer }
    tr:drain()
    H.cleanup()
    assert.is_false(ok)
    assert.matches("injected after run_start", tostring(err))
    assert.same({ true, true }, { open_run, timer }) -- the run died open
    assert.same({}, after)
    assert.same({ "orket run NOTES=failed" }, sent)
  end)

  -- the counts of a metrics body's duration data points, and its resource's service.name
  local function count_of(body)
    local doc = cjson.decode(type(body) == "string" and body or body:text())
    local service
    for _, a in ipairs(doc.resourceMetrics[1].resource.attributes) do
      if a.key == "service.name" then service = a.value.stringValue end
    end
    for _, m in ipairs(doc.resourceMetrics[1].scopeMetrics[1].metrics) do
      if m.name == "gen_ai.client.operation.duration" then return tonumber(m.histogram.dataPoints[1].count), service end
    end
  end

  -- each tracer's slot and sender sent the meter's totals: a slow collector's request of an
  -- older total arrived after another tracer's newer one (the totals went down), and the
  -- metrics waited behind every span batch of their tracer
  it("send a meter's totals from its own slot and sender, in order, never behind the spans", function()
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9" } -- (the timer's 60 s never ticks here)
    local arrived = {}
    local function slow(tr, span_ms, metrics_ms)
      tr.send = function(self, body, url)
        local metrics = url == self.cfg.metrics_url
        rt.sleep(metrics and metrics_ms or span_ms)
        if metrics then arrived[#arrived + 1] = count_of(body) end -- the collector takes it as it answers
        return true
      end
      return tr
    end
    local cfg = assert(otel.config(function(k) return env[k] end))
    local a, b = slow(otel.new(cfg, "proj"), 0, 100), slow(otel.new(cfg, "proj"), 0, 0)
    a:event { type = "run_start", run_id = 1, target = "A" }
    turn(a, "A-1", 1)
    a:event { type = "run_end", run_id = 1, status = "done" } -- 1, through A's slow request
    b:event { type = "run_start", run_id = 2, target = "B" }
    turn(b, "B-1", 2)
    turn(b, "B-2", 2)
    b:event { type = "run_end", run_id = 2, status = "done" } -- 3, waiting its turn in the slot
    a:drain()
    b:drain()
    assert.same({ 1, 3 }, arrived)
    -- a backlog of span batches, 100 ms each: the metrics leave beside them, not after
    arrived = {}
    local batch = otel.BATCH
    otel.BATCH = 2
    local ok, err = pcall(function()
      local c = slow(otel.new(cfg, "proj"), 100, 0)
      c:event { type = "run_start", run_id = 3, target = "C" }
      for i = 1, 3 do turn(c, "C-" .. i, 3) end -- 6 spans: 3 batches, and the run's
      c:event { type = "run_end", run_id = 3, status = "done" }
      wait(50)
      assert.same({ 6 }, arrived)
      assert.is_true(c.busy) -- the spans still going
      c:drain()
    end)
    otel.BATCH = batch
    assert(ok, err)
  end)

  -- a meter was kept, and exported, for the life of the process: a project's endpoint or
  -- service name changed in a long serve left the old one sending stale totals every interval
  it("forget a meter no tracer uses after a bounded number of exports, a later run starting a new one", function()
    local idle = otel.METER_IDLE_EXPORTS
    otel.METER_IDLE_EXPORTS = 2
    local ok, err = pcall(function()
      local spans, metrics = {}, {}
      local a, b = kept(FAST, spans, metrics), kept(FAST, spans, metrics)
      local m = a.meter
      a:event { type = "run_start", run_id = 1, target = "A" }
      turn(a, "A-1", 1)
      a:event { type = "run_end", run_id = 1, status = "done" }
      a:close()
      wait(150) -- B, open, keeps it: exported each interval
      assert.is_not_nil(otel.meters[m.key])
      local n = #metrics
      b:close()
      wait(150)
      -- its last tracer closed: two more exports, then forgotten, its timer stopped
      assert.equal(n + 2, #metrics)
      assert.is_nil(otel.meters[m.key])
      assert.is_nil(m.timer)
      wait(60)
      assert.equal(n + 2, #metrics)
      -- a later run on the tracer: a new meter, counting from its own start
      a:event { type = "run_start", run_id = 2, target = "A" }
      turn(a, "A-2", 2)
      a:event { type = "run_end", run_id = 2, status = "done" }
      a:drain()
      assert.is_false(a.meter == m)
      assert.equal(a.meter, otel.meters[m.key])
      assert.equal("1", metrics[#metrics][1][2])
      assert.are_not.equal(metrics[1][1][3], metrics[#metrics][1][3])
      -- a meter that never counted is forgotten as its last tracer closes
      local c = kept({ OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:8" }, spans, metrics)
      local key = c.meter.key
      assert.is_not_nil(otel.meters[key])
      c:close()
      assert.is_nil(otel.meters[key])
    end)
    otel.METER_IDLE_EXPORTS = idle
    assert(ok, err)
  end)

  -- every failed metrics request was counted as the run's totals not exported: one blip of
  -- a long run's periodic exports warned, though the later ones carried everything
  it("say the metrics were not exported only when their last export failed", function()
    local failing, sent = { true }, 0
    local tr = otel.new(assert(otel.config(function(k) return FAST[k] end)), "proj")
    tr.send = function(self, _, url)
      if url ~= self.cfg.metrics_url then return true end
      if table.remove(failing, 1) then return false, "down" end
      sent = sent + 1
      return true
    end
    tr:event { type = "run_start", run_id = 7, target = "M" }
    turn(tr, "M-1")
    -- the failed periodic export and one that went after it (20 ms apart; waited for, not
    -- timed: a loaded machine's timers run late)
    for _ = 1, 250 do
      if sent >= 1 then break end
      wait(20)
    end
    tr:event { type = "run_end", run_id = 7, status = "done" }
    local st = tr:drain()
    assert.equal(1, st.metrics_dropped)
    assert.is_true(st.metrics_exported >= 2)
    assert.is_nil(st.metrics_last_failed)
    -- the last one failed: said
    tr.send = function(self, _, url) return url ~= self.cfg.metrics_url, "down" end
    tr:event { type = "run_start", run_id = 8, target = "M" }
    turn(tr, "M-2", 8)
    tr:event { type = "run_end", run_id = 8, status = "done" }
    st = tr:drain()
    assert.is_true(st.metrics_last_failed)
    assert.equal("down", st.metrics_error)
  end)

  -- one meter for all (or by endpoint alone) mixed two projects' streams in one
  it("keep a meter for each metrics endpoint and resource, each export its own counts", function()
    local sent = {}
    local function on(endpoint, service)
      local tr = otel.new(assert(otel.config(function() end, { endpoint = endpoint, service_name = service })), "proj")
      tr.send = function(self, body, url)
        if url == self.cfg.metrics_url then
          local n, svc = count_of(body)
          sent[#sent + 1] = string.format("%s %s %d", url, svc, n)
        end
        return true
      end
      return tr
    end
    local trs = { on("http://127.0.0.1:9", "a"), on("http://127.0.0.1:9", "b"), on("http://127.0.0.1:8", "a") }
    for i, tr in ipairs(trs) do
      tr:event { type = "run_start", run_id = i, target = "M" }
      for k = 1, i do turn(tr, "M-" .. k, i) end
      tr:event { type = "run_end", run_id = i, status = "done" }
      tr:drain()
    end
    local n = 0
    for _ in pairs(otel.meters) do n = n + 1 end
    assert.equal(3, n)
    assert.same({ "http://127.0.0.1:9/v1/metrics a 1", "http://127.0.0.1:9/v1/metrics b 2",
      "http://127.0.0.1:8/v1/metrics a 3" }, sent)
  end)

  -- a second run_start on an engine whose run died open (no close between: the console's
  -- engine) replaced the run, its span and open turns dropped unsaid
  it("end a run that died open as failed at the engine's next run_start, its turns with it", function()
    local spans = {}
    local tr = otel.new(assert(otel.config(function(k)
      if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end)), "proj")
    tr.send = function(self, body, url)
      if url ~= self.cfg.metrics_url then
        for _, sp in ipairs(cjson.decode(body:text()).resourceSpans[1].scopeSpans[1].spans) do
          local et
          for _, a in ipairs(sp.attributes) do if a.key == "error.type" then et = a.value.stringValue end end
          spans[#spans + 1] = string.format("%s %s %s", sp.name, sp.traceId:sub(1, 2), tostring(et))
        end
      end
      return true
    end
    local M7, N8 = ("a"):rep(32), ("b"):rep(32)
    tr:event { type = "run_start", run_id = 7, target = "M", trace_id = M7 }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    tr:event { type = "run_start", run_id = 8, target = "N", trace_id = N8 }
    assert.same({}, tr.open) -- the dead run's turn is ended, not left to the next run
    turn(tr, "N-1", 8)
    tr:event { type = "run_end", run_id = 8, status = "done" }
    tr:drain()
    -- (each in its own run's trace)
    assert.same({ "invoke_agent coder aa cut_short", "orket run M aa failed", "chat m1 bb nil",
      "invoke_agent coder bb nil", "orket run N bb nil" }, spans)
  end)
end)

describe("otel's span writer and its buffers", function()
  local otlpspan = require "orket.c.otlpspan"
  local http = require "orket.c.http"
  local httpd = require "orket.c.httpd"
  local task = require "orket.task"

  it("refuse to free a batch's buffer while a request sends it, and free it once closed", function()
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0, max_body_bytes = 1 << 22 })
    task.spawn(function()
      while true do
        local req = srv:accept()
        if not req then return end
        task.spawn(function()
          local b, err = req:body()
          req:respond(200, { "Content-Type: text/plain" }, b and tostring(#b) or err)
        end)
      end
    end)
    local w = otlpspan.writer()
    -- more than a socket takes at once: the request still reads the bytes after it starts
    for i = 1, 3000 do w:span(("x"):rep(100), 1, 2, i, nil, 1, 1, 2, nil, { "k" }, { ("v"):rep(100) }, 1) end
    local buf = w:take("{", "}")
    local size = #buf
    local function post()
      return assert(http.request { url = "http://127.0.0.1:" .. srv:port() .. "/", method = "POST", body = buf,
        headers = { "Content-Type: application/json" } })
    end
    local hr, hr2 = post(), post()
    assert.has_error(function() buf:free() end, "jsonout: the buffer is being sent by 2 request(s); close them first")
    collectgarbage()
    for _, r in ipairs { hr, hr2 } do
      assert.equal(200, r:headers())
      local got = {}
      while true do
        local evs, err = r:read()
        assert(evs ~= nil, err)
        if not evs then break end
        got[#got + 1] = table.concat(evs)
      end
      assert.equal(tostring(size), table.concat(got))
    end
    hr:close()
    assert.has_error(function() buf:free() end, "jsonout: the buffer is being sent by 1 request(s); close them first")
    hr2:close()
    hr2:close()
    buf:free()
    assert.equal(0, #buf)
    srv:close()
  end)

  it("wait at the run's end one timeout in all for a collector that never answers, not one per batch", function()
    local uv = require "luv"
    -- takes connections and never answers
    local srv, conns = uv.new_tcp(), {}
    srv:bind("127.0.0.1", 0)
    srv:listen(16, function()
      local c = uv.new_tcp()
      srv:accept(c)
      conns[#conns + 1] = c
      c:read_start(function() end)
    end)
    local base = "http://127.0.0.1:" .. srv:getsockname().port
    local tr = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return base end end), "proj")
    local batch, timeouts = otel.BATCH, otel.TIMEOUTS
    otel.BATCH, otel.TIMEOUTS = 4, { connect_timeout_ms = 1000, total_timeout_ms = 400 }
    local ok, err = pcall(function()
      run_events(tr, 3) -- 10 spans: batches of 4, 4 and 2, then the metrics
      local t0 = uv.hrtime()
      local st = tr:drain()
      local ms = (uv.hrtime() - t0) / 1e6
      -- the first request's timeout (400 ms), then the rest dropped at once; before, each of
      -- the 3 batches and the metrics waited 400 ms apart (1.6 s)
      assert.is_true(ms < 1000, "drained in " .. ms .. " ms")
      assert.same({ 0, 10, 1 }, { st.exported, st.dropped, st.metrics_dropped })
      assert.is_string(st.metrics_error)
    end)
    otel.BATCH, otel.TIMEOUTS = batch, timeouts
    for _, c in ipairs(conns) do c:close() end
    srv:close()
    assert(ok, err)
  end)

  -- A listener that takes connections and never answers: its base URL, and close().
  local function never_answers()
    local uv = require "luv"
    local srv, conns = uv.new_tcp(), {}
    srv:bind("127.0.0.1", 0)
    srv:listen(16, function()
      local c = uv.new_tcp()
      srv:accept(c)
      conns[#conns + 1] = c
      c:read_start(function() end)
    end)
    return "http://127.0.0.1:" .. srv:getsockname().port, function()
      for _, c in ipairs(conns) do c:close() end
      srv:close()
    end
  end

  -- A collector that answers 200 to each request after delay_ms: its base URL, the paths
  -- it was sent, and close(). bodies: a list given, each request's body added to it.
  local function answers(delay_ms, bodies, status)
    local rt = require "orket.c.runtime"
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0, max_body_bytes = 1 << 22 })
    local paths = {}
    task.spawn(function()
      while true do
        local req = srv:accept()
        if not req then return end
        task.spawn(function()
          local body = req:body()
          if bodies then bodies[#bodies + 1] = body end
          if delay_ms > 0 then rt.sleep(delay_ms) end
          paths[#paths + 1] = req.path or true
          req:respond(status or 200, { "Content-Type: application/json" }, "{}")
        end)
      end
    end)
    return "http://127.0.0.1:" .. srv:port(), paths, function() srv:close() end
  end

  local function with_timeouts(f)
    local batch, timeouts = otel.BATCH, otel.TIMEOUTS
    otel.BATCH, otel.TIMEOUTS = 4, { connect_timeout_ms = 1000, total_timeout_ms = 400 }
    local ok, err = pcall(f)
    otel.BATCH, otel.TIMEOUTS = batch, timeouts
    assert(ok, err)
  end

  it("send the metrics to their own endpoint at the run's end when the traces' collector never answers", function()
    local dead, close_dead = never_answers()
    local up, paths, close_up = answers(0)
    local env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = dead .. "/v1/traces",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = up .. "/v1/metrics" }
    with_timeouts(function()
      local tr = otel.new(otel.config(function(k) return env[k] end), "proj")
      run_events(tr, 3)
      local uv = require "luv"
      local t0 = uv.hrtime()
      local st = tr:drain()
      local ms = (uv.hrtime() - t0) / 1e6
      -- before: the traces used up the one allowance, and the metrics were dropped unsent,
      -- blamed on "the collector"
      assert.same({ 0, 10, 1, 0 }, { st.exported, st.dropped, st.metrics_exported, st.metrics_dropped })
      assert.equal(1, #paths)
      assert.matches(dead, st.last_error, 1, true) -- the endpoint that failed is named
      assert.is_true(ms < 1000, "drained in " .. ms .. " ms")
    end)
    close_dead(); close_up()
  end)

  it("wait at the run's end for a collector that answers slowly, past one request's timeout in all", function()
    local up, paths, close_up = answers(150)
    with_timeouts(function()
      local tr = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return up end end), "proj")
      run_events(tr, 3) -- 3 batches and the metrics, 150 ms each: 600 ms, more than 400
      local st = tr:drain()
      assert.same({ 10, 0, 1, 0 }, { st.exported, st.dropped, st.metrics_exported, st.metrics_dropped },
        tostring(st.last_error or st.metrics_error))
      assert.equal(4, #paths)
    end)
    close_up()
  end)

  -- a request's timeout was 5 s whatever OTEL_EXPORTER_OTLP_TIMEOUT said
  it("give each request the signal's timeout, and each export OTEL_BSP_EXPORT_TIMEOUT in all", function()
    local dead, close_dead = never_answers()
    local uv = require "luv"
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = dead, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT = "300",
      OTEL_EXPORTER_OTLP_METRICS_TIMEOUT = "200" }
    local tr = otel.new(otel.config(function(k) return env[k] end), "proj")
    local t0 = uv.hrtime()
    local ok, why = tr:send("{}")
    local ms = (uv.hrtime() - t0) / 1e6
    assert.is_false(ok)
    assert.is_true(ms >= 250 and ms < 1500, "the traces' request took " .. ms .. " ms")
    t0 = uv.hrtime()
    ok = tr:send("{}", tr.cfg.metrics_url, tr.cfg.metrics_headers, true)
    ms = (uv.hrtime() - t0) / 1e6
    assert.is_false(ok)
    assert.is_true(ms >= 150 and ms < 1000, "the metrics' request took " .. ms .. " ms")
    -- the export's own time bounds a request within it, retries and all
    env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, env.OTEL_BSP_EXPORT_TIMEOUT = "5000", "250"
    tr = otel.new(otel.config(function(k) return env[k] end), "proj")
    t0 = uv.hrtime()
    ok, why = tr:send("{}")
    ms = (uv.hrtime() - t0) / 1e6
    assert.is_false(ok, why)
    assert.is_true(ms < 1500, "the export took " .. ms .. " ms")
    -- a request timeout of 0 (no limit of its own) is bounded by its export's: never a
    -- request with no timeout at all
    env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, env.OTEL_BSP_EXPORT_TIMEOUT = "0", "300"
    tr = otel.new(otel.config(function(k) return env[k] end), "proj")
    t0 = uv.hrtime()
    ok, why = tr:send("{}")
    ms = (uv.hrtime() - t0) / 1e6
    assert.is_false(ok, why)
    assert.is_true(ms >= 250 and ms < 1500, "the export took " .. ms .. " ms")
    close_dead()
  end)

  -- a backoff was slept though the retry after it was past the export's time: 200 ms, then
  -- 400 more, before the export said it took more than its 500 (500, not less: the retry
  -- at 200 ms keeps 300 ms for its answer on a loaded machine)
  it("not sleep a backoff past the export's time, saying so", function()
    local uv = require "luv"
    local busy, paths, close_busy = answers(0, nil, 503)
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = busy, OTEL_BSP_EXPORT_TIMEOUT = "500" }
    local tr = otel.new(otel.config(function(k) return env[k] end), "proj")
    local t0 = uv.hrtime()
    local ok, why = tr:send("{}")
    local ms = (uv.hrtime() - t0) / 1e6
    assert.is_false(ok)
    assert.matches("HTTP 503, and the export took more than 500 ms (OTEL_BSP_EXPORT_TIMEOUT)", why, 1, true)
    assert.equal(2, #paths) -- at once, and after 200 ms; the next would come 400 ms after
    assert.is_true(ms < 600, "the export took " .. ms .. " ms")
    close_busy()
  end)

  -- orket serve and orket worker did not wait at their stop for what was left to send
  it("drain every tracer of the process at a stop, none waiting past the deadline", function()
    local uv = require "luv"
    local up, paths, close_up = answers(0)
    local dead, close_dead = never_answers()
    with_timeouts(function()
      otel.TIMEOUTS = { connect_timeout_ms = 1000, total_timeout_ms = 5000 }
      -- two runs of a server, each its own tracer, their ends' batches handed over, not sent
      local a = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return up end end), "a")
      local b = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return up end end), "b")
      run_events(a, 1)
      run_events(b, 1)
      a:close(); b:close()
      local st = otel.drain_all(3000)
      assert.same({ 8, 0 }, { st.exported, st.dropped }, tostring(st.last_error))
      assert.is_true(st.metrics_exported >= 1 and not st.metrics_last_failed, tostring(st.metrics_error))
      assert.is_true(#paths >= 3) -- the two runs' batches and the metrics
      -- a collector that never answers: the run's end's requests began before the drain,
      -- each with its own 1.5 s, which the drain does not wait for (only its cut returns
      -- in time)
      otel.reset()
      otel.TIMEOUTS = { connect_timeout_ms = 1000, total_timeout_ms = 1500 }
      local c = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return dead end end), "c")
      run_events(c, 1)
      c:close()
      require("orket.c.runtime").sleep(20)
      local t0 = uv.hrtime()
      st = otel.drain_all(300)
      local ms = (uv.hrtime() - t0) / 1e6
      assert.is_true(ms < 1000, "drained in " .. ms .. " ms")
      assert.same({ 0, 4 }, { st.exported, st.dropped })
      assert.matches("within 300 ms of the process's stop", st.last_error, 1, true)
      assert.is_true(st.metrics_last_failed)
      -- the cut requests' end counts nothing again, and a later drain says only its own
      require("orket.c.runtime").sleep(1600)
      assert.same({ 4, 0, 1 }, { c.dropped, c:stats().queued, c:stats().metrics_dropped })
      st = otel.drain_all(300)
      assert.same({ 0, 0, {} }, { st.exported, st.dropped, otel.drop_lines(st) })
    end)
    close_up(); close_dead()
  end)

  -- the drain's reason was taken only when it differed from the tracer's last one: the same
  -- HTTP 500 again at the stop was said as "queue full"
  it("say a stop's drain's reason though an earlier export failed the same way", function()
    otel.reset()
    local up, _, close_up = answers(0, nil, 500)
    with_timeouts(function()
      local tr = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return up end end), "p")
      run_events(tr, 1)
      assert.matches(": HTTP 500", tr:drain().last_error, 1, true)
      run_events(tr, 1)
      local st = otel.drain_all(3000)
      assert.equal(4, st.dropped)
      assert.matches("^traces: 0 spans exported, 4 dropped %(.*: HTTP 500%)$", otel.drop_lines(st)[1])
    end)
    close_up()
  end)

  -- after a stop's cut, the meter threw away a body handed over later (a later run's end in
  -- a process that goes on), uncounted
  it("send and count a metrics export handed over after a stop's cut", function()
    otel.reset()
    local up, _, close_up = answers(400)
    with_timeouts(function()
      otel.TIMEOUTS = { connect_timeout_ms = 1000, total_timeout_ms = 1500 }
      local get = function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return up end end
      local a = otel.new(otel.config(get), "a")
      run_events(a, 1)
      local st = otel.drain_all(100) -- the spans and metrics in flight, cut
      assert.is_true(st.metrics_last_failed)
      assert.matches("within 100 ms of the process's stop", st.metrics_error, 1, true)
      local m = a.meter
      local exported, dropped = m.exported or 0, m.dropped
      local b = otel.new(otel.config(get), "b")
      assert.equal(m, b.meter)
      run_events(b, 1) -- its end's totals handed over while the cut request still waits
      require("orket.c.runtime").sleep(1200)
      assert.same({ exported + 1, dropped }, { m.exported, m.dropped })
    end)
    close_up()
  end)

  -- orket serve's runs stop at its signal and their ends' exports leave at once, but its own
  -- drain begins only once its workers have drained (5 s): a collector that never answers
  -- had failed those exports (one request's timeout) by then, and their loss was said nowhere
  it("say at a stop's drain what its runs' ends lost from the stop's signal on, though before the drain", function()
    otel.reset()
    local dead, close_dead = never_answers()
    with_timeouts(function()
      local get = function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return dead end end
      -- a run that ended before the stop: its loss is not the stop's
      local early = otel.new(otel.config(get), "early")
      run_events(early, 1)
      require("orket.c.runtime").sleep(600)
      assert.equal(4, early.dropped)
      local a = otel.new(otel.config(get), "a")
      otel.mark_stop() -- the signal, while a's run goes on
      otel.mark_stop() -- (a second signal moves nothing)
      run_events(a, 1) -- stopped: its end's spans and metrics leave, each request 400 ms
      require("orket.c.runtime").sleep(600)
      assert.same({ 4, false }, { a.dropped, a.busy })
      local st = otel.drain_all(300)
      assert.same({ 0, 4, true }, { st.exported, st.dropped, st.metrics_last_failed })
      local lines = otel.drop_lines(st)
      assert.matches("^traces: 0 spans exported, 4 dropped %(.*no complete response within 400 ms%)$", lines[1])
      assert.matches("^metrics: not exported %(", lines[2])
    end)
    close_dead()
  end)

  -- a timeout of 0, or a stop's budget spent, was said as "more than 0 ms" and "within 0 ms"
  it("name the bound that applied in its messages, never 0 ms", function()
    otel.reset()
    local dead, close_dead = never_answers()
    with_timeouts(function()
      local tr = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return dead end end), "p")
      run_events(tr, 1)
      tr:close()
      local st = otel.drain_all(0)
      assert.equal(4, st.dropped)
      assert.matches("no time was left of the stop's 9 s", st.last_error, 1, true)
      assert.is_nil(st.last_error:find("0 ms", 1, true), st.last_error)
    end)
    close_dead()
    -- a collector answering 503 past the request's timeout (100 ms) with OTEL_BSP_EXPORT_TIMEOUT=0:
    -- the export's bound is its 3 requests and their backoff, 3 x 100 + 200 + 400 ms
    local http = require "orket.c.http"
    local request = http.request
    http.request = function()
      require("orket.c.runtime").sleep(400)
      return setmetatable({ headers = function() return 503, {} end, read = function() end },
        { __close = function() end })
    end
    local ok, sent, why = pcall(function()
      local env = { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9", OTEL_EXPORTER_OTLP_TIMEOUT = "100",
        OTEL_BSP_EXPORT_TIMEOUT = "0" }
      local tr = otel.new(otel.config(function(k) return env[k] end), "p")
      return tr:send("{}")
    end)
    http.request = request
    assert.is_true(ok, tostring(sent))
    assert.is_false(sent)
    assert.matches("HTTP 503, and the export took more than 900 ms "
      .. "(OTEL_BSP_EXPORT_TIMEOUT=0: its 3 requests and their backoff)", why, 1, true)
  end)

  -- orket serve's drain took its 5 s after its requests' 3 s and its workers' own drains:
  -- past docker stop's 10 s before SIGKILL
  it("give orket serve's drain what is left of its stop's budget, 5 s at most", function()
    assert.same({ 5000, 5000, 3000, 0, 0 }, { otel.stop_within(0), otel.stop_within(4000), otel.stop_within(6000),
      otel.stop_within(9000), otel.stop_within(12000) })
    assert.is_true(otel.STOP_BUDGET_MS < 10000)
  end)

  it("send again at a second drain, the first one's allowance long spent", function()
    local up, paths, close_up = answers(0)
    with_timeouts(function()
      local tr = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return up end end), "proj")
      run_events(tr, 1)
      assert.equal(4, tr:drain().exported)
      require("orket.c.runtime").sleep(1300) -- more than the first drain's allowance (3 x 400 ms)
      run_events(tr, 1)
      local st = tr:drain()
      assert.same({ 8, 0, 2 }, { st.exported, st.dropped, st.metrics_exported }, tostring(st.last_error))
      assert.equal(4, #paths)
    end)
    close_up()
  end)

  -- A run of one turn whose tools have names of 4096 control bytes, each escaped as \u0001
  -- (about 49 KB a span: its name and gen_ai.tool.name), sent to a collector that keeps
  -- the bodies, under a cap of `cap` bytes a request: the bodies and the tracer's stats.
  local function big_spans(cap, tools)
    local bodies = {}
    local up, _, close_up = answers(0, bodies)
    local tr = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return up end end,
      { max_request_bytes = cap }), "proj")
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "turn_start", run_id = 7, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
    for i = 1, tools do
      tr:event { type = "tool", run_id = 7, card = "M-1", turn = 1, tool = ("\1"):rep(4096), call_id = "c" .. i,
        ok = true, ms = 1 }
    end
    tr:event { type = "turn_end", run_id = 7, card = "M-1", turn = 1, outcome = "handed_in" }
    tr:event { type = "run_end", run_id = 7, status = "done" }
    local st = tr:drain()
    close_up()
    local spans = {}
    for _, b in ipairs(bodies) do
      local doc = cjson.decode(b)
      if doc.resourceSpans then
        for _, sp in ipairs(doc.resourceSpans[1].scopeSpans[1].spans) do spans[#spans + 1] = sp end
      end
    end
    return bodies, st, spans
  end

  it("split a batch whose request would pass the cap on its size into several, every span sent", function()
    local cap = 200000
    local bodies, st, spans = big_spans(cap, 20) -- about 1 MB of spans
    assert.same({ 22, 0 }, { st.exported, st.dropped }, tostring(st.last_error))
    assert.is_nil(st.oversized)
    assert.equal(22, #spans)
    local calls = {}
    for _, sp in ipairs(spans) do
      for _, a in ipairs(sp.attributes) do
        if a.key == "gen_ai.tool.call.id" then calls[#calls + 1] = a.value.stringValue end
      end
    end
    local want = {}
    for i = 1, 20 do want[i] = "c" .. i end
    assert.same(want, calls) -- every tool's span, each once, in the order they ended
    local traces = 0
    for _, b in ipairs(bodies) do
      if b:find('"resourceSpans"', 1, true) then
        traces = traces + 1
        assert.is_true(#b <= cap, #b .. " bytes in one request")
      end
    end
    assert.is_true(traces >= 5, traces .. " requests") -- 1 MB under a cap of 200 KB
  end)

  it("drop a span that alone passes the cap, counted and said, and send the rest", function()
    local bodies, st, spans = big_spans(30000, 2) -- each tool's span about 49 KB
    assert.same({ 2, 2, 2 }, { st.exported, st.dropped, st.oversized })
    assert.matches("over the cap of 30000 %(telemetry.max_request_bytes%): the span was dropped", st.last_error)
    local names = {}
    for _, sp in ipairs(spans) do names[#names + 1] = sp.name end
    table.sort(names)
    assert.same({ "invoke_agent coder", "orket run M" }, names)
    for _, b in ipairs(bodies) do assert.is_true(#b <= 30000, #b .. " bytes in one request") end
  end)

  -- A tracer whose batches stay queued (nothing sent) under a cap of `cap` bytes a request,
  -- in a run's trace; put(tr, name, text): a span of one attribute. queued(tr): the queued
  -- requests' sizes and their spans' names, the writer's spans sealed first.
  local function capped(cap)
    local tr = otel.new(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end,
      { max_request_bytes = cap }), "proj")
    tr.send_queued = function() end
    tr:event { type = "run_start", run_id = 7, target = "M" }
    return tr
  end
  local function put(tr, name, text) tr:write(name, 1, nil, 1, 10, nil, { "k" }, { text or ("x"):rep(100) }) end
  local function queued(tr)
    tr:seal()
    local sizes, names = {}, {}
    for _, b in ipairs(tr.queue) do
      local text = b.body:text()
      sizes[#sizes + 1] = #text
      local list = {}
      for _, sp in ipairs(cjson.decode(text).resourceSpans[1].scopeSpans[1].spans) do list[#list + 1] = sp.name end
      names[#names + 1] = list
    end
    return sizes, names
  end

  it("send a request of exactly the cap whole, and split one a byte over it", function()
    local tr = capped(1 << 30)
    put(tr, "a")
    local _, one = tr.writer:count()
    put(tr, "b")
    local _, two = tr.writer:count()
    local whole = tr.frame + two -- the request's body: its frame, the two spans and their comma
    assert.same({ { whole }, { { "a", "b" } } }, { queued(tr) })
    tr = capped(whole)
    put(tr, "a")
    put(tr, "b")
    assert.same({ { whole }, { { "a", "b" } } }, { queued(tr) })
    assert.equal(0, tr.dropped)
    tr = capped(whole - 1)
    put(tr, "a")
    put(tr, "b")
    assert.same({ { tr.frame + one, tr.frame + one }, { { "a" }, { "b" } } }, { queued(tr) })
    assert.equal(0, tr.dropped)
    tr = capped(tr.frame + one - 1) -- neither span fits alone
    put(tr, "a")
    put(tr, "b")
    assert.same({ {}, {} }, { queued(tr) })
    assert.same({ 2, 2 }, { tr.dropped, tr.oversized })
  end)

  it("send the spans before one that alone passes the cap, drop it, and go on after it in order", function()
    local tr = capped(2000)
    put(tr, "a", "small")
    put(tr, "b", "small")
    put(tr, "big", ("x"):rep(5000))
    put(tr, "c", "small")
    local sizes, names = queued(tr)
    assert.same({ { "a", "b" }, { "c" } }, names)
    for _, n in ipairs(sizes) do assert.is_true(n <= 2000, n .. " bytes") end
    assert.same({ 1, 1 }, { tr.dropped, tr.oversized })
    assert.matches("over the cap of 2000 %(telemetry.max_request_bytes%): the span was dropped", tr.last_error)
  end)

  it("hold a batch's last span for the next when taking the rest, the text valid JSON each time", function()
    local w = otlpspan.writer()
    for i = 1, 3 do w:span("s" .. i, 1, 2, i, nil, 1, 10, 20, nil, { "k" }, { "v" }, 1) end
    local n, bytes = w:count()
    assert.equal(3, n)
    local first, k = w:take("", "", true)
    assert.equal(2, k)
    local list = cjson.decode(first:text())
    assert.same({ "s1", "s2" }, { list[1].name, list[2].name })
    local n2, bytes2 = w:count()
    assert.equal(1, n2)
    assert.is_true(bytes2 < bytes)
    assert.equal(2, select(1, w:span("s4", 1, 2, 4, nil, 1, 10, 20, nil, { "k" }, { "v" }, 1)))
    local rest = cjson.decode(w:take("", ""):text())
    assert.same({ "s3", "s4" }, { rest[1].name, rest[2].name })
    w:span("s5", 1, 2, 5, nil, 1, 10, 20, nil, { "k" }, { "v" }, 1)
    assert.has_error(function() w:take("", "", true) end, "otlpspan: take(hold_last) needs two spans (has 1)")
  end)

  -- the spans in a writer's batch, decoded (the batch must be valid JSON)
  local function spans_of(w)
    local text = w:take("", ""):text()
    local ok, list = pcall(cjson.decode, text)
    assert(ok, "not JSON: " .. text)
    return list
  end

  local function span(w, name, kind, start_ns, end_ns, keys, values)
    return w:span(name, 1, 2, 3, nil, kind or 1, start_ns or 10, end_ns or 20, nil, keys or { "k" }, values or { "v" },
      #(keys or { "k" }))
  end

  it("refuse a value that is not a string, number or boolean before writing any of its span", function()
    local w = otlpspan.writer()
    span(w, "a")
    local raising = setmetatable({}, { __tostring = function() error("boom") end })
    assert.has_error(function() span(w, "b", 1, 10, 20, { "k", "t" }, { "v", raising }) end,
      "otlpspan: values[2] is a table (a string, number or boolean expected)")
    assert.has_error(function() span(w, "b", 1, 10, 20, { "k" }, { print }) end,
      "otlpspan: values[1] is a function (a string, number or boolean expected)")
    assert.has_error(function() span(w, "b", 1, 10, 20, { "k", 2 }, { "v", "w" }) end, "otlpspan: key 2 is not a string")
    assert.equal(1, w:count())
    span(w, "c", 1, 10, 20, { "s", "i", "f", "b", "gone" }, { "v", -3, 0.5, false, nil })
    local list = spans_of(w)
    assert.same({ "a", "c" }, { list[1].name, list[2].name })
    assert.same({ { key = "s", value = { stringValue = "v" } }, { key = "i", value = { intValue = "-3" } },
      { key = "f", value = { doubleValue = 0.5 } }, { key = "b", value = { boolValue = false } } }, list[2].attributes)
  end)

  it("refuse a kind outside SpanKind's 0..5 and negative times, naming the argument", function()
    local w = otlpspan.writer()
    span(w, "a", 0)
    span(w, "b", 5)
    assert.has_error(function() span(w, "x", 6) end, "bad argument #6 to 'span' (kind must be a SpanKind, 0 to 5)")
    assert.has_error(function() span(w, "x", -1) end, "bad argument #6 to 'span' (kind must be a SpanKind, 0 to 5)")
    assert.has_error(function() span(w, "x", 1, -5) end, "bad argument #7 to 'span' (start_ns must not be negative)")
    assert.has_error(function() span(w, "x", 1, 0, math.mininteger) end,
      "bad argument #8 to 'span' (end_ns must not be negative)")
    local list = spans_of(w)
    assert.equal(2, #list)
    assert.same({ 0, 5 }, { list[1].kind, list[2].kind })
    assert.same({ "10", "20" }, { list[1].startTimeUnixNano, list[1].endTimeUnixNano })
  end)

  it("write the resource's attributes by a span's rules, NaN as proto3 JSON names it", function()
    local cfg = otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end)
    cfg.resource.ratio, cfg.resource.n, cfg.resource.f, cfg.resource.b = 0 / 0, -3, 0.5, true
    cfg.resource["service.instance.id"] = nil -- (random: the keys below are the rules')
    local tr = otel.new(cfg, "proj")
    tr.flush = function(self) self:seal() end
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "run_end", run_id = 7, status = "done" }
    local doc = cjson.decode(tr.queue[1].body:text())
    local want = { { key = "b", value = { boolValue = true } }, { key = "f", value = { doubleValue = 0.5 } },
      { key = "n", value = { intValue = "-3" } }, { key = "ratio", value = { doubleValue = "NaN" } },
      { key = "service.name", value = { stringValue = "orket" } } }
    assert.same(want, doc.resourceSpans[1].resource.attributes)
    -- the same values as a span's attributes: the same text
    local keys, values = { "b", "f", "n", "ratio", "service.name" }, { true, 0.5, -3, 0 / 0, "orket" }
    local w = otlpspan.writer()
    span(w, "s", 1, 10, 20, keys, values)
    local text = w:take("", ""):text()
    assert.equal(otlpspan.attributes(keys, values, 5), text:match('^%[{"attributes":(%b[])'))
    assert.equal("[]", otlpspan.attributes({}, {}, 0))
    assert.has_error(function() otlpspan.attributes({ "k" }, { {} }, 1) end,
      "otlpspan: values[1] is a table (a string, number or boolean expected)")
  end)

  it("take an empty batch with an empty prefix and suffix", function()
    local buf, n = otlpspan.writer():take("", "")
    assert.equal("[]", buf:text())
    assert.equal(0, n)
  end)
end)
