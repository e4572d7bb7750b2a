-- The exports' health (docs/observability.md): what a long-lived process (orket serve) says
-- of a collector that keeps failing while it fails, the counts its GET /metrics shows, an
-- OTLP/HTTP partial success, a refusing collector's own message, and Retry-After. Each
-- against a loopback collector in this process, answering as the test says.
local otel = require "orket.otel"
local cjson = require "cjson"
local httpd = require "orket.c.httpd"
local task = require "orket.task"
local rt = require "orket.c.runtime"
local uv = require "luv"
local H = require "tests.helpers"

local REPORT_EVERY_MS = otel.REPORT_EVERY_MS
before_each(function() otel.reset() end)
after_each(function()
  otel.report, otel.REPORT_EVERY_MS = nil, REPORT_EVERY_MS
  otel.reset()
  H.cleanup()
end)

local function wait(ms) assert(task.spawn(function() rt.sleep(ms) end):join()) end

local JSON = { "Content-Type: application/json" }

-- A collector answering each request with answer(i, path) -> status, headers (a list;
-- JSON's by default), body ("{}" by default): its base URL, what it took ({path=, at=}:
-- the loop's ms) and close()
local function collector(answer)
  local srv = assert(httpd.listen { host = "127.0.0.1", port = 0, max_body_bytes = 1 << 22 })
  local got = {}
  task.spawn(function()
    while true do
      local req = srv:accept()
      if not req then return end
      task.spawn(function()
        req:body()
        uv.update_time()
        got[#got + 1] = { path = req.path, at = uv.now() }
        local status, headers, body = answer(#got, req.path)
        req:respond(status, headers or JSON, body or "{}")
      end)
    end
  end)
  return "http://127.0.0.1:" .. srv:port(), got, function() srv:close() end
end

local function tracer(env)
  return otel.new(assert(otel.config(function(k) return env[k] end)), "proj")
end

-- one run of run_id: its run span and one card's turn, model call and tool call (4 spans);
-- the metrics' 4 data points (input and output tokens, duration, cost)
local function run_events(tr, run_id)
  tr:event { type = "run_start", run_id = run_id, target = "M" }
  tr:event { type = "turn_start", run_id = run_id, card = "M-1", turn = 1, role = "coder", model = "fake:m1" }
  tr:event { type = "model", run_id = run_id, card = "M-1", turn = 1, step = 1, latency_ms = 12, prompt_tokens = 50,
    completion_tokens = 3, cost = 1500, currency = "USD" }
  tr:event { type = "tool", run_id = run_id, card = "M-1", turn = 1, tool = "write_file", call_id = "c1", ok = true, ms = 2 }
  tr:event { type = "turn_end", run_id = run_id, card = "M-1", turn = 1, outcome = "handed_in" }
  tr:event { type = "run_end", run_id = run_id, status = "done" }
end

-- the run's end's exports, sent and answered (no drain: a server's runs end without one)
local function settle(tr)
  for _ = 1, 500 do
    if not tr.busy and not tr.meter.busy then return end
    wait(10)
  end
  error("the exports did not end")
end

local function poll(pred, what)
  for _ = 1, 600 do
    if pred() then return end
    wait(10)
  end
  error("waited for " .. what)
end

-- counted() as {signal = {exported=, reason = n...}}
local function counts()
  local out = {}
  for _, s in ipairs(otel.counted()) do
    local t = { exported = s.exported }
    for _, d in ipairs(s.dropped) do t[d.reason] = d.n end
    out[s.signal] = t
  end
  return out
end

describe("otel's run trace id", function()
  -- GET /v1/runs/{id} and orket runs --json show it: orket.run.id restarts in every project
  it("is the one a run's spans carry: its data's, else, for a run recorded before, the store's hash", function()
    local stored = "0123456789ABCDEF0123456789abcdef"
    assert.equal(stored:lower(), otel.run_trace_id(stored, "store-1", 7))
    assert.is_nil(otel.run_trace_id(("0"):rep(32), nil, 7)) -- all zeros: no trace id to OTLP
    assert.is_nil(otel.run_trace_id("not hex", nil, 7))
    -- a run recorded without one: what its tracer takes, from the store's id and its own
    local cfg = assert(otel.config(function(k) if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then return "http://127.0.0.1:9" end end))
    local tr = otel.new(cfg, "proj", "store-1")
    local traces = {}
    tr.flush = function(self)
      self:seal()
      for _, b in ipairs(self.queue) do
        for _, sp in ipairs(cjson.decode(b.body:text()).resourceSpans[1].scopeSpans[1].spans) do
          traces[#traces + 1] = sp.traceId
        end
      end
      self.queue, self.queued = {}, 0
    end
    tr:event { type = "run_start", run_id = 7, target = "M" }
    tr:event { type = "run_end", run_id = 7, status = "done" }
    assert.same({ otel.run_trace_id("not hex", "store-1", 7) }, traces)
    assert.not_equal(otel.run_trace_id(nil, "store-1", 7), otel.run_trace_id(nil, "store-2", 7))
    assert.is_nil(otel.run_trace_id(nil, nil, 7))
    tr:close()
  end)
end)

describe("otel's exports' health", function()
  -- orket serve said nothing of a collector down (or answering 500) for its whole life:
  -- only a stop said what that stop lost
  it("say a failing collector while it fails: at a streak's start, at most once an interval after, and when it "
    .. "takes the exports again", function()
    local failing = true
    local base, _, close = collector(function()
      if failing then return 500, JSON, '{"code":13,"message":"disk full"}' end
      return 200
    end)
    local lines = {}
    otel.report = function(f) lines[#lines + 1] = f end
    otel.REPORT_EVERY_MS = 2000
    local ok, err = pcall(function()
      local tr = tracer { OTEL_EXPORTER_OTLP_ENDPOINT = base:gsub("^http://", "http://me:s3cret@"),
        OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20T0KEN" }
      run_events(tr, 1)
      settle(tr)
      -- one line a signal at the streak's start: its endpoint without the user, the reason,
      -- the collector's message and the counts
      assert.equal(2, #lines, cjson.encode(lines))
      local by = {}
      for _, l in ipairs(lines) do by[l.signal] = l end
      for _, signal in ipairs { "traces", "metrics" } do
        local l = by[signal]
        assert.same({ "telemetry_failing", base, "refused", 4, 0, 0, 4 },
          { l.event, l.endpoint, l.reason, l.dropped, l.exported, l.exported_total, l.dropped_total }, cjson.encode(l))
        assert.matches('the collector answered "disk full" with HTTP 500', l.message, 1, true)
      end
      -- more failures within the interval: held, then one line a signal with what was
      -- dropped since the line before
      run_events(tr, 2)
      settle(tr)
      assert.equal(2, #lines, cjson.encode(lines))
      poll(function() return #lines == 4 end, "the held lines")
      for i = 3, 4 do
        assert.same({ "telemetry_failing", 4, 8 }, { lines[i].event, lines[i].dropped, lines[i].dropped_total },
          cjson.encode(lines[i]))
      end
      -- the collector back: said at once, with the streak's drops
      failing = false
      run_events(tr, 3)
      settle(tr)
      assert.equal(6, #lines, cjson.encode(lines))
      for i = 5, 6 do
        assert.same({ "telemetry_recovered", base, 8, 4 }, { lines[i].event, lines[i].endpoint, lines[i].dropped,
          lines[i].exported_total }, cjson.encode(lines[i]))
      end
      -- no line names the user, password or headers' token
      local text = cjson.encode(lines)
      assert.is_nil(text:find("s3cret", 1, true))
      assert.is_nil(text:find("T0KEN", 1, true))
      -- the process's counts, as GET /metrics shows them
      local c = counts()
      assert.same({ 4, 8, 0 }, { c.traces.exported, c.traces.refused, c.traces.queue_full })
      assert.same({ 4, 8 }, { c.metrics.exported, c.metrics.refused })
      tr:close()
    end)
    close()
    assert(ok, err)
  end)

  it("say what it held at a stop's signal, then leave the stop's drain to say the rest", function()
    local base, _, close = collector(function() return 503 end)
    local lines = {}
    otel.report = function(f) lines[#lines + 1] = f end
    otel.REPORT_EVERY_MS = 60000
    local ok, err = pcall(function()
      local tr = tracer { OTEL_EXPORTER_OTLP_ENDPOINT = base, OTEL_METRICS_EXPORTER = "none",
        OTEL_BSP_EXPORT_TIMEOUT = "100" }
      run_events(tr, 1)
      settle(tr)
      assert.equal(1, #lines)
      assert.same({ "traces", "throttled" }, { lines[1].signal, lines[1].reason })
      run_events(tr, 2)
      settle(tr)
      assert.equal(1, #lines) -- held: within the minute
      otel.mark_stop()
      assert.equal(2, #lines)
      assert.same({ "telemetry_failing", 4, 8 }, { lines[2].event, lines[2].dropped, lines[2].dropped_total })
      run_events(tr, 3)
      settle(tr)
      assert.equal(2, #lines)
      assert.equal(12, counts().traces.throttled) -- counted all the same
      tr:close()
    end)
    close()
    assert(ok, err)
  end)

  it("are GET /metrics' orket_telemetry_exported_total and orket_telemetry_dropped_total, on the default "
    .. "project's page", function()
    local B = require "tests.backends"
    local serve_metrics = require "orket.serve.metrics"
    otel.REPORT_EVERY_MS = 60000
    local base, _, close = collector(function(i) return i == 1 and 500 or 200 end)
    local db = B.open_store()
    local ok, err = pcall(function()
      local tr = tracer { OTEL_EXPORTER_OTLP_ENDPOINT = base, OTEL_METRICS_EXPORTER = "none", OTEL_BSP_MAX_QUEUE_SIZE = "3",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "3" }
      tr:event { type = "run_start", run_id = 1, target = "M" }
      tr.busy = true -- the exporter busy: the queue fills
      for i = 1, 5 do tr:write("s" .. i, i, nil, 1, 10, nil, { "k" }, { "v" }) end
      tr.busy = false
      tr:send_queued()
      settle(tr)
      tr:flush()
      settle(tr)
      local counters = serve_metrics.new()
      counters:telemetry(otel.counted)
      local text = serve_metrics.render(db, counters, 0)
      assert.matches('\norket_telemetry_exported_total{signal="traces"} 0\n', text, 1, true) -- nothing went yet
      assert.matches('\norket_telemetry_dropped_total{signal="traces",reason="refused"} 3\n', text, 1, true)
      assert.matches('\norket_telemetry_dropped_total{signal="traces",reason="queue_full"} 2\n', text, 1, true)
      assert.matches('\norket_telemetry_dropped_total{signal="metrics",reason="rejected"} 0\n', text, 1, true)
      assert.matches("# TYPE orket_telemetry_dropped_total counter\n", text, 1, true)
      -- a hosted project's page has none: the process's, as its HTTP figures
      assert.is_nil(serve_metrics.render(db, counters, 0, nil, nil, nil, "other"):find("orket_telemetry", 1, true))
      tr:close()
    end)
    db:close()
    close()
    assert(ok, err)
  end)

  -- a 200 whose partialSuccess rejected spans was taken as a full success, nothing said
  it("count what a partial success rejected as dropped, and say the collector's message, cut, no control "
    .. "characters", function()
    local long = ("x"):rep(5000)
    local base, _, close = collector(function(_, path)
      if path:match("traces$") then
        return 200, { "Content-Type: application/json; charset=utf-8" },
          '{"partialSuccess":{"rejectedSpans":"3","errorMessage":"3 spans too old\\n\\u001b[31mred"}}'
      end
      return 200, JSON, '{"partialSuccess":{"rejectedDataPoints":2,"errorMessage":"' .. long .. '"}}'
    end)
    local ok, err = pcall(function()
      local tr = tracer { OTEL_EXPORTER_OTLP_ENDPOINT = base }
      run_events(tr, 1)
      local st = tr:drain()
      assert.same({ 1, 3, 2 }, { st.exported, st.dropped, st.metrics_rejected }, tostring(st.last_error))
      assert.matches(base .. ": rejected by the collector (a partial success); it said: 3 spans too old", st.last_error,
        1, true)
      assert.is_nil(st.last_error:find("[%c\127]"))
      assert.is_true(#st.metrics_rejected_error < otel.MESSAGE_MAX + 200, #st.metrics_rejected_error)
      local said = otel.drop_lines(st)
      assert.equal(2, #said, cjson.encode(said))
      assert.matches("^traces: 1 spans exported, 3 dropped %(", said[1])
      assert.matches("^metrics: 2 data points rejected %(", said[2])
      local c = counts()
      assert.same({ 1, 3, 2, 2 }, { c.traces.exported, c.traces.rejected, c.metrics.exported, c.metrics.rejected })
    end)
    close()
    assert(ok, err)
  end)

  it("take a partial success that rejected nothing, and an answer in another encoding, as full successes", function()
    for _, answer in ipairs {
      { JSON, '{"partialSuccess":{"rejectedSpans":"0","errorMessage":"a warning only"}}' },
      { { "Content-Type: application/x-protobuf" }, '{"partialSuccess":{"rejectedSpans":"3"}}' },
      { JSON, '{"partialSuccess":{"rejectedSpans":"many"}}' },
    } do
      otel.reset()
      local base, _, close = collector(function() return 200, answer[1], answer[2] end)
      local ok, err = pcall(function()
        local st = tracer({ OTEL_EXPORTER_OTLP_ENDPOINT = base, OTEL_METRICS_EXPORTER = "none" })
        run_events(st, 1)
        st = st:drain()
        assert.same({ 4, 0 }, { st.exported, st.dropped }, answer[2])
      end)
      close()
      assert(ok, err)
    end
  end)

  -- a 400's google.rpc.Status was read and left: the warning said only "HTTP 400"
  it("say a refusing collector's own message, cut and without control characters", function()
    local base, got, close = collector(function(i)
      if i == 1 then return 400, JSON, '{"code":3,"message":"invalid span id\\r\\nX' .. ("y"):rep(3000) .. '"}' end
      return 502, { "Content-Type: text/html" }, "<html>bad gateway</html>"
    end)
    local ok, err = pcall(function()
      local tr = tracer { OTEL_EXPORTER_OTLP_ENDPOINT = base }
      local sent, why, reason = tr:send("{}")
      assert.same({ false, "refused" }, { sent, reason })
      assert.matches(base .. ': the collector answered "invalid span id  Xyyy', why, 1, true)
      assert.matches('..." with HTTP 400$', why)
      assert.is_true(#why < otel.MESSAGE_MAX + 100, #why)
      sent, why = tr:send("{}")
      assert.is_false(sent)
      assert.equal(base .. ": HTTP 502", why) -- not JSON: not read
      assert.equal(2, #got)
    end)
    close()
    assert(ok, err)
  end)

  -- a 429 asking for 30 s got its retries 200 and 400 ms later
  it("wait a 429's or 503's Retry-After, never less than the backoff, and give up at once on one past the "
    .. "export's time", function()
    local function case(first, env)
      local base, got, close = collector(function(i)
        if i == 1 then return first[1], { "Content-Type: application/json", first[2] } end
        return 200
      end)
      env.OTEL_EXPORTER_OTLP_ENDPOINT = base
      local tr = tracer(env)
      uv.update_time()
      local t0 = uv.now()
      local ok, sent, why, reason = pcall(tr.send, tr, "{}")
      uv.update_time()
      local ms = uv.now() - t0
      close()
      assert(ok, sent)
      return sent, why, reason, ms, got
    end
    local sent, why, _, ms, got = case({ 429, "Retry-After: 1" }, {})
    assert.is_true(sent, why)
    assert.equal(2, #got)
    assert.is_true(got[2].at - got[1].at >= 950, "retried after " .. (got[2].at - got[1].at) .. " ms")
    -- an HTTP-date: what is left to it (1 to 2 s, the date's second rounded down)
    sent, why, _, ms, got = case({ 503, "Retry-After: " .. os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2) }, {})
    assert.is_true(sent, why)
    assert.is_true(got[2].at - got[1].at >= 900, "retried after " .. (got[2].at - got[1].at) .. " ms")
    -- less than the backoff asked: the backoff
    sent, why, _, ms, got = case({ 503, "Retry-After: 0" }, {})
    assert.is_true(sent, why)
    assert.is_true(got[2].at - got[1].at >= 190, "retried after " .. (got[2].at - got[1].at) .. " ms")
    -- past the export's time: given up at once, the wait asked named
    local reason
    sent, why, reason, ms, got = case({ 429, "Retry-After: 30" }, { OTEL_BSP_EXPORT_TIMEOUT = "2000" })
    assert.same({ false, "throttled", 1 }, { sent, reason, #got })
    assert.is_true(ms < 500, "gave up after " .. ms .. " ms")
    assert.matches(": HTTP 429, and the collector asked to wait 30 s (Retry-After), more than is left of the "
      .. "export's 2000 ms (OTEL_BSP_EXPORT_TIMEOUT): not sent again", why, 1, true)
  end)
end)
