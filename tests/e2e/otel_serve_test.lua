-- orket serve's telemetry while it serves (docs/observability.md): a collector that keeps
-- refusing its runs' exports is said in the server's log as it happens (telemetry_failing,
-- then telemetry_recovered) and counted on GET /metrics, which promtool accepts; and a
-- run's trace id is on GET /v1/runs/{id}, GET /v1/runs, `orket runs --json` and the OpenAPI
-- run schema, the one its exported spans carry. Against the fake server's loopback
-- collector (under /fail/N/ it answers 500 to the first N exports of that path).
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local fake = F.model_server(teardown)

local MODEL = "tool=write_file,tool_times=1,prompt=50,cached=20,chunks=3"

-- a project of two epics, M and N, one issue each: two runs for one server
local function project()
  local dir = fake.one_issue(string.format([[
name = "traced"
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], MODEL, fake.url .. "/v1"))
  H.write(dir .. "/epics/n.json", [[
{ "id": "N", "name": "Next", "issues": [ { "id": "N-1", "summary": "Do it too", "seat": "senior_developer" } ] }
]])
  assert(H.orket("import", { cwd = dir }).status == 0, "the second epic did not import")
  return dir
end

local function exports(kind)
  local out = {}
  for _, e in ipairs(fake.log()) do if e.path:match("/v1/" .. kind .. "$") then out[#out + 1] = e end end
  return out
end

-- the items of an export's request: spans, or data points
local function items(e)
  local n = 0
  for _, rs in ipairs(e.request.resourceSpans or {}) do
    for _, ss in ipairs(rs.scopeSpans) do n = n + #ss.spans end
  end
  for _, rm in ipairs(e.request.resourceMetrics or {}) do
    for _, sm in ipairs(rm.scopeMetrics) do
      for _, m in ipairs(sm.metrics) do n = n + #(m.histogram or m.sum).dataPoints end
    end
  end
  return n
end

-- a run of target started over the API, waited for to its end (its engine let go) -> its RUN
local function run(s, key, target)
  local st, doc = H.api(s, "POST", "/v1/runs", key, { target = target })
  assert.equal(201, st, cjson.encode(doc))
  local id = math.tointeger(doc.run.id)
  return H.wait_for(function()
    local _, d = H.api(s, "GET", "/v1/runs/" .. id, key)
    return d and d.run and not d.run.live and d.run.state ~= "running" and d.run
  end, "run " .. id .. " to end", 3000)
end

-- the server's log lines of these events
local function said(s, events)
  local out = {}
  for line in s.log():gmatch("[^\n]+") do
    local ok, doc = pcall(cjson.decode, line)
    if ok and type(doc) == "table" and events[doc.event] then out[#out + 1] = doc end
  end
  return out
end

local HEALTH = { telemetry_failing = true, telemetry_recovered = true }

describe("orket serve's telemetry", function()
  before_each(function() fake.reset() end)

  -- a collector down, or answering 500, for the server's whole life was said nowhere
  it("says a collector refusing its runs' exports in its log as it happens, and when it takes them again, "
    .. "counted on GET /metrics", function()
    local dir = project()
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir, { env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = fake.url .. "/fail/1/v1/traces",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = fake.url .. "/fail/1/v1/metrics",
      OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20T0KEN" } })
    run(s, op, "M")
    -- its end's exports, refused: one line a signal, the server still serving
    local lines = H.wait_for(function()
      local l = said(s, HEALTH)
      return #l >= 2 and l
    end, "the telemetry_failing lines", 3000)
    local by = {}
    for _, l in ipairs(lines) do by[l.signal] = l end
    for _, signal in ipairs { "traces", "metrics" } do
      local l = assert(by[signal], s.log())
      assert.same({ "telemetry_failing", fake.url, "refused" }, { l.event, l.endpoint, l.reason }, cjson.encode(l))
      assert.matches('the collector answered "fake" with HTTP 500', l.message, 1, true)
      assert.is_true(l.dropped > 0, cjson.encode(l))
    end
    -- the next run's exports taken: said at once
    run(s, op, "N")
    lines = H.wait_for(function()
      local l = said(s, HEALTH)
      return #l >= 4 and l
    end, "the telemetry_recovered lines", 3000)
    assert.equal(4, #lines, s.log())
    for i = 3, 4 do
      assert.same({ "telemetry_recovered", fake.url }, { lines[i].event, lines[i].endpoint }, cjson.encode(lines[i]))
    end
    assert.is_nil(s.log():find("T0KEN", 1, true))
    -- GET /metrics counts what the collector refused and what it took, by signal
    local want = { traces = { 0, 0 }, metrics = { 0, 0 } }
    for _, kind in ipairs { "traces", "metrics" } do
      for _, e in ipairs(exports(kind)) do
        local w = want[kind]
        if e.status == 200 then w[1] = w[1] + items(e) else w[2] = w[2] + items(e) end
      end
    end
    assert.is_true(want.traces[1] > 0 and want.traces[2] > 0 and want.metrics[1] > 0 and want.metrics[2] > 0,
      cjson.encode(want))
    local st, text = H.fetch { url = s.url .. "/metrics", headers = { "Authorization: Bearer " .. op } }
    assert.equal(200, st)
    for _, kind in ipairs { "traces", "metrics" } do
      assert.matches(string.format('\norket_telemetry_exported_total{signal="%s"} %d\n', kind, want[kind][1]), text, 1,
        true)
      assert.matches(string.format('\norket_telemetry_dropped_total{signal="%s",reason="refused"} %d\n', kind,
        want[kind][2]), text, 1, true)
    end
    H.write(dir .. "/metrics.txt", text)
    local pt = io.popen("promtool check metrics < " .. H.quote(dir .. "/metrics.txt") .. " 2>&1; echo rc=$?")
    local pout = pt:read("a")
    pt:close()
    if pout:match("not found") then
      pending("promtool is not installed: " .. pout)
    else
      assert.matches("rc=0\n$", pout)
    end
    assert.equal(0, s.stop())
  end)

  -- a served run's trace id was only in the server's stderr; orket.run.id, the doc's other
  -- way to find it, restarts at 1 in every project
  it("gives a run's trace id, its spans', on GET /v1/runs/{id}, GET /v1/runs, orket runs --json and the "
    .. "OpenAPI run schema", function()
    local dir = project()
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir, { env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url } })
    local r = run(s, op, "M")
    local traces = H.wait_for(function()
      local seen = {}
      for _, e in ipairs(exports("traces")) do
        for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do
          if sp.name == "orket run M" then seen[sp.traceId] = true end
        end
      end
      return next(seen) and seen
    end, "the run's span", 3000)
    assert.matches("^" .. ("%x"):rep(32) .. "$", r.trace_id)
    assert.is_true(traces[r.trace_id], cjson.encode(traces))
    local _, list = H.api(s, "GET", "/v1/runs", op)
    assert.equal(r.trace_id, list.runs[1].trace_id)
    local _, oa = H.api(s, "GET", "/v1/openapi.json", op)
    local schema = oa.paths["/v1/runs/{id}"].get.responses["200"].content["application/json"].schema
    schema = schema.properties.run
    assert.truthy(schema.properties.trace_id, cjson.encode(schema))
    local required = {}
    for _, k in ipairs(schema.required) do required[k] = true end
    assert.is_true(required.trace_id)
    assert.equal(0, s.stop())
    local out = H.orket("runs --json", { cwd = dir })
    assert.equal(0, out.status, out.stderr)
    local doc = cjson.decode(out.stdout)
    assert.equal(r.trace_id, doc.runs[1].trace_id)
    -- a run orket run started: the trace id its run_start gave
    local events = fake.run_events(dir, "N")
    doc = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout)
    assert.equal(events.run_start[1].trace_id, doc.runs[1].trace_id)
    assert.not_equal(r.trace_id, doc.runs[1].trace_id)
  end)
end)
