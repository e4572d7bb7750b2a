-- Traces over OTLP/HTTP with JSON (docs/observability.md), against the fake server's
-- loopback collector, which keeps every export's decoded body: the GenAI conventions' span
-- names and attributes, one trace per run with its parents, the standard OTEL_* variables;
-- a collector that is down or refuses costs counted drops, never the run. The exports are
-- also read through the official OTLP protobuf definitions (npm, tests/otel/otlp_check.js),
-- skipped with the reason printed when npm cannot install them.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local npm = require "tests.npm"

local fake = F.model_server(teardown)

-- the coder calls write_file once, then ends its turn
local MODEL = "tool=write_file,tool_times=1,prompt=50,cached=20,chunks=3"

local function project(budgets)
  return fake.one_issue(string.format([[
name = "traced"
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1%s }
]], MODEL, fake.url .. "/v1", budgets or ""))
end

local function exports(kind)
  local out = {}
  for _, e in ipairs(fake.log()) do if e.path:match("/v1/" .. (kind or "traces") .. "$") then out[#out + 1] = e end end
  return out
end

local function attrs(list)
  local t = {}
  for _, a in ipairs(list or {}) do
    local v = a.value
    t[a.key] = v.stringValue or v.intValue or v.boolValue or v.doubleValue
  end
  return t
end

describe("traces", function()
  before_each(function() fake.reset() end)

  it("follow the GenAI conventions: a run, its agent turns, model calls and tool calls", function()
    local dir = project()
    local r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url,
      OTEL_SERVICE_NAME = "orket-test", OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20t0ken",
      OTEL_RESOURCE_ATTRIBUTES = "deployment.environment=test" } })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    assert.is_nil(r.stderr:find("traces:", 1, true), r.stderr)
    local ex = exports()
    assert.is_true(#ex >= 1)
    assert.equal("application/json", ex[1].content_type)
    assert.equal("Bearer t0ken", ex[1].authorization)
    local spans, by_name, trace = {}, {}, nil
    for _, e in ipairs(ex) do
      local rs = e.request.resourceSpans[1]
      local res = attrs(rs.resource.attributes)
      assert.same({ "orket-test", "test" }, { res["service.name"], res["deployment.environment"] })
      assert.equal("orket", rs.scopeSpans[1].scope.name)
      for _, sp in ipairs(rs.scopeSpans[1].spans) do
        spans[#spans + 1] = sp
        by_name[sp.name] = sp
        assert.matches("^%x+$", sp.traceId)
        assert.equal(32, #sp.traceId)
        assert.equal(16, #sp.spanId)
        trace = trace or sp.traceId
        assert.equal(trace, sp.traceId) -- one trace for the run
        assert.matches("^%d+$", sp.startTimeUnixNano)
        assert.matches("^%d+$", sp.endTimeUnixNano)
        assert.is_true(#sp.startTimeUnixNano < #sp.endTimeUnixNano or sp.startTimeUnixNano <= sp.endTimeUnixNano)
      end
    end
    local run, agent = by_name["orket run M"], by_name["invoke_agent coder"]
    local chat, tool = by_name["chat " .. MODEL], by_name["execute_tool write_file"]
    assert.truthy(run and agent and chat and tool, cjson.encode(spans))
    assert.is_nil(run.parentSpanId)
    assert.equal(run.spanId, agent.parentSpanId)
    assert.equal(agent.spanId, chat.parentSpanId)
    assert.equal(agent.spanId, tool.parentSpanId)
    local a, c, t = attrs(agent.attributes), attrs(chat.attributes), attrs(tool.attributes)
    assert.same({ "invoke_agent", "coder", "M-1", "traced" },
      { a["gen_ai.operation.name"], a["gen_ai.agent.name"], a["orket.card.id"], a["orket.project"] })
    assert.same({ "chat", "fake", MODEL, "50", "3", "20", "M-1" }, { c["gen_ai.operation.name"], c["gen_ai.provider.name"],
      c["gen_ai.request.model"], c["gen_ai.usage.input_tokens"], c["gen_ai.usage.output_tokens"],
      c["gen_ai.usage.cache_read.input_tokens"], c["orket.card.id"] })
    assert.equal(3, chat.kind) -- a client span
    assert.same({ "execute_tool", "write_file", "M-1" }, { t["gen_ai.operation.name"], t["gen_ai.tool.name"], t["orket.card.id"] })
    assert.equal(a["orket.run.id"], c["orket.run.id"])
    -- no prompt or answer text leaves
    assert.is_nil(cjson.encode(ex[1].request):find("Do it", 1, true))

    -- the GenAI client metrics, once at the run's end: tokens by type, call durations
    local mx = exports("metrics")
    assert.equal(1, #mx)
    local rm = mx[1].request.resourceMetrics[1]
    assert.equal("orket-test", attrs(rm.resource.attributes)["service.name"])
    local points = {}
    for _, m in ipairs(rm.scopeMetrics[1].metrics) do
      for _, dp in ipairs(m.histogram.dataPoints) do
        local pa = attrs(dp.attributes)
        points[m.name .. "/" .. tostring(pa["gen_ai.token.type"])] = dp
        assert.same({ "chat", "fake", MODEL }, { pa["gen_ai.operation.name"], pa["gen_ai.provider.name"], pa["gen_ai.request.model"] })
        assert.equal(2, m.histogram.aggregationTemporality) -- cumulative
      end
    end
    -- two model calls: 50 prompt tokens and 3 output tokens each
    assert.same({ "2", 100 }, { points["gen_ai.client.token.usage/input"].count, points["gen_ai.client.token.usage/input"].sum })
    assert.same({ "2", 6 }, { points["gen_ai.client.token.usage/output"].count, points["gen_ai.client.token.usage/output"].sum })
    assert.equal("2", points["gen_ai.client.operation.duration/nil"].count)
  end)

  it("send each model call its chat span's W3C traceparent, unless OTEL_PROPAGATORS leaves tracecontext out", function()
    local dir = project()
    local r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url } })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    local chats = {}
    for _, e in ipairs(exports()) do
      for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do
        if sp.name:match("^chat ") then chats["00-" .. sp.traceId .. "-" .. sp.spanId .. "-01"] = true end
      end
    end
    local calls = 0
    for _, e in ipairs(fake.log()) do
      if e.path == "/v1/chat/completions" then
        calls = calls + 1
        assert.matches("^00%-%x+%-%x+%-01$", e.traceparent or "none")
        assert.is_true(chats[e.traceparent], tostring(e.traceparent) .. " is no chat span's")
        chats[e.traceparent] = nil -- each call its own span
      end
    end
    assert.equal(2, calls)
    -- propagation off: the calls carry none, the spans go on
    for _, env in ipairs { { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url, OTEL_PROPAGATORS = "none" }, {} } do
      fake.reset()
      dir = project()
      r = H.orket("run M", { cwd = dir, env = env })
      assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
      calls = 0
      for _, e in ipairs(fake.log()) do
        if e.path == "/v1/chat/completions" then
          calls = calls + 1
          assert.is_nil(e.traceparent)
        end
      end
      assert.equal(2, calls)
      assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT and true or false, #exports() > 0)
    end
  end)

  it("show a failed model call as its own chat span, ERROR with its class and its charge", function()
    local dir = fake.one_issue(string.format([[
models = { default = "fake:disconnect_after=2", providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { model_retries = 1, backoff_ms = 1 }
]], fake.url .. "/v1"))
    local r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url } })
    assert.equal(1, r.status, r.stderr)
    local chats, turn = {}, nil
    for _, e in ipairs(exports()) do
      for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do
        if sp.name == "chat disconnect_after=2" then chats[#chats + 1] = sp end
        if sp.name == "invoke_agent coder" then turn = sp end
      end
    end
    -- the call, the one asked again at once and the 4 of the later rounds: each cut after
    -- tokens arrived, charged
    assert.equal(6, #chats, cjson.encode(exports()))
    for _, sp in ipairs(chats) do
      local a = attrs(sp.attributes)
      assert.same({ 2, "transient", "transient", "chat", "M-1" }, { sp.status.code, sp.status.message,
        a["error.type"], a["gen_ai.operation.name"], a["orket.card.id"] })
      assert.is_true(tonumber(a["gen_ai.usage.output_tokens"]) > 0, cjson.encode(sp))
      assert.equal(turn.spanId, sp.parentSpanId)
    end
    -- in the client metrics the calls' durations, by error.type (the GenAI conventions), and
    -- no tokens: no call answered
    local mx = exports("metrics")
    assert.equal(1, #mx)
    local points = {}
    for _, m in ipairs(mx[1].request.resourceMetrics[1].scopeMetrics[1].metrics) do
      for _, dp in ipairs(m.histogram.dataPoints) do
        local a = attrs(dp.attributes)
        points[#points + 1] = { m.name, a["error.type"], a["gen_ai.request.model"], tostring(dp.count) }
      end
    end
    assert.same({ { "gen_ai.client.operation.duration", "transient", "disconnect_after=2", "6" } }, points)
  end)

  it("cost a counted drop, never the run, when the collector is down or refuses", function()
    local dir = project()
    local base = H.orket("run M", { cwd = dir })
    for _, case in ipairs {
      { env = { OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:9" }, why = "" }, -- nothing listens
      { env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = fake.url .. "/status/500/v1/traces" }, why = "HTTP 500", tries = 1 },
      { env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = fake.url .. "/status/413/v1/traces" }, why = "HTTP 413", tries = 1 },
      { env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = fake.url .. "/status/503/v1/traces" }, why = "HTTP 503", tries = 3 },
    } do
      fake.reset()
      H.orket("retry M-1", { cwd = dir })
      local r = H.orket("run M", { cwd = dir, env = case.env })
      assert.equal(base.status, r.status, r.stderr)
      assert.matches("warning: traces: 0 spans exported, %d+ dropped %(.*" .. case.why .. ".*%)", r.stderr)
      if case.tries then assert.equal(case.tries, #exports()) end -- 503 is sent again, 500 and 413 not
    end
  end)

  -- said only when the metrics' last export failed (a later one carries an earlier one's
  -- totals): here every one fails, the last too
  it("say the metrics were not exported when their last export failed", function()
    local dir = project()
    local r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = fake.url .. "/v1/traces",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = fake.url .. "/status/500/v1/metrics" } })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    assert.matches("warning: metrics: not exported %(.*HTTP 500%)", r.stderr)
    assert.is_nil(r.stderr:find("warning: traces:", 1, true), r.stderr)
  end)

  -- and not when only an earlier one failed: a collector down for the run's first timed
  -- export, up again for the later ones (each cumulative, carrying the first one's totals)
  it("say nothing of the metrics when only an earlier export failed", function()
    -- a model answering slowly, so the timer exports several times during the run
    local dir = fake.one_issue(string.format([[
name = "traced"
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], MODEL .. ",first_byte_ms=300", fake.url .. "/v1"))
    local r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = fake.url .. "/v1/traces",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = fake.url .. "/fail/1/v1/metrics", OTEL_METRIC_EXPORT_INTERVAL = "100" } })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    -- the case happened: the first export refused, a later one taken
    local got = {}
    for _, e in ipairs(exports("metrics")) do got[#got + 1] = e.status end
    assert.is_true(#got >= 2, "metrics exports: " .. #got)
    assert.same({ 500, 200 }, { got[1], got[#got] })
    assert.is_nil(r.stderr:find("metrics:", 1, true), r.stderr)
    assert.is_nil(r.stderr:find("warning: traces:", 1, true), r.stderr)
  end)

  it("read back the same through the official OTLP protobuf definitions (npm)", function()
    local ndir, why = npm.ensure()
    if not ndir then return pending("@opentelemetry/otlp-transformer from npm: " .. why) end
    local dir = project()
    H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url } })
    local bodies = {}
    for i, e in ipairs(exports()) do bodies[i] = e.request end
    assert.is_true(#bodies >= 1)
    bodies[#bodies + 1] = exports("metrics")[1].request
    H.write(dir .. "/bodies.json", cjson.encode(bodies))
    local r = npm.node("otel/otlp_check.js", { dir .. "/bodies.json" })
    assert.equal(0, r.status, r.stderr)
    local names, keys, seen = {}, {}, {}
    for _, sp in ipairs(cjson.decode(r.stdout).spans) do
      if not seen[sp.name] then names[#names + 1] = sp.name end
      seen[sp.name] = true
      for _, k in ipairs(sp.attributes) do keys[k] = true end
    end
    table.sort(names)
    -- the two model calls (the tool call, then the turn's end), the tool, the turn, the run
    assert.same({ "chat " .. MODEL, "execute_tool write_file", "invoke_agent coder", "orket run M" }, names)
    -- the GenAI conventions' attribute names
    for _, k in ipairs { "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
      "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.agent.name", "gen_ai.tool.name",
      "gen_ai.conversation.id" } do
      assert.is_true(keys[k], k)
    end
    local ms = {}
    for _, m in ipairs(cjson.decode(r.stdout).metrics) do ms[m.name .. " " .. m.unit] = true end
    assert.same({ ["gen_ai.client.token.usage {token}"] = true, ["gen_ai.client.operation.duration s"] = true }, ms)
  end)

  -- the calls' cost (orket.client.cost, a cumulative monotonic sum): a collector's users saw
  -- tokens but no money; read back through the same definitions
  it("send a priced run's cost with the client metrics, read back the same through the OTLP definitions", function()
    local ndir, why = npm.ensure()
    if not ndir then return pending("@opentelemetry/otlp-transformer from npm: " .. why) end
    local dir = fake.one_issue(string.format([[
name = "traced"
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } },
  prices = { ["fake:%s"] = { input = "2.50", cached_input = "1.25", output = "10", currency = "USD" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], MODEL, fake.url .. "/v1", MODEL))
    H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url } })
    local body = exports("metrics")[1].request
    H.write(dir .. "/bodies.json", cjson.encode { body })
    local r = npm.node("otel/otlp_check.js", { dir .. "/bodies.json" })
    assert.equal(0, r.status, r.stderr)
    local cost
    for _, m in ipairs(cjson.decode(r.stdout).metrics) do if m.name == "orket.client.cost" then cost = m end end
    assert(cost, r.stdout)
    assert.same({ "{micro-unit}", true, 2 }, { cost.unit, cost.monotonic, cost.temporality })
    table.sort(cost.attributes)
    assert.same({ "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "orket.cost.currency" },
      cost.attributes)
    -- what the journal says the run cost
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal(string.format("%d", runs[1].cost.USD), cost.count)
  end)

  -- the traces' own headers (a backend's key) went with the metrics too, to the metrics'
  -- endpoint, and the metrics' own were never sent
  it("send each signal's own headers, the shared ones to a signal without its own", function()
    local dir = project()
    H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url,
      OTEL_EXPORTER_OTLP_TRACES_HEADERS = "authorization=Bearer%20traces-key",
      OTEL_EXPORTER_OTLP_METRICS_HEADERS = "authorization=Bearer%20metrics-key" } })
    assert.is_true(#exports() >= 1)
    for _, e in ipairs(exports()) do assert.equal("Bearer traces-key", e.authorization) end
    assert.equal(1, #exports("metrics"))
    assert.equal("Bearer metrics-key", exports("metrics")[1].authorization)
    fake.reset()
    H.orket("retry M-1", { cwd = dir })
    H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url,
      OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20shared",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS = "authorization=Bearer%20traces-key" } })
    assert.equal("Bearer traces-key", exports()[1].authorization)
    assert.equal("Bearer shared", exports("metrics")[1].authorization)
  end)

  -- the protocol was never read: gRPC's port got JSON and every export failed, for ever
  it("refuse to start on OTEL_EXPORTER_OTLP_PROTOCOL=grpc, and send JSON for http/protobuf, said once", function()
    local dir = project()
    local r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url,
      OTEL_EXPORTER_OTLP_PROTOCOL = "grpc" } })
    assert.equal(1, r.status, r.stderr)
    assert.matches("orket: OTEL_EXPORTER_OTLP_PROTOCOL=grpc: Orket exports OTLP over HTTP with JSON %(http/json%), "
      .. "not gRPC", r.stderr)
    assert.equal(0, #fake.log()) -- no model asked, nothing exported
    -- only what builds a tracer refuses: a command that never exports goes on (validate, as
    -- with a bad ORKET_MODEL, reads no such variable)
    for _, args in ipairs { "models --no-check", "validate", "board" } do
      local other = H.orket(args, { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url,
        OTEL_EXPORTER_OTLP_PROTOCOL = "grpc" } })
      assert.equal(0, other.status, args .. ": " .. other.stderr)
      assert.is_nil(other.stderr:find("OTEL_", 1, true), other.stderr)
    end
    r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "http/protobuf" } })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    local _, said = r.stderr:gsub("orket: warning: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf: Orket sends "
      .. "OTLP/HTTP with JSON", "")
    assert.equal(1, said, r.stderr)
    assert.is_true(#exports() >= 1)
    assert.equal("application/json", exports()[1].content_type)
    assert.equal(1, #exports("metrics"))
  end)

  -- the specification: an enum's value it does not name is warned of and ignored (it was
  -- refused, by every command)
  it("send JSON for a protocol the specification does not name, said once, naming the variable and value", function()
    local dir = project()
    local r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url,
      OTEL_EXPORTER_OTLP_PROTOCOL = "http" } })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    local _, said = r.stderr:gsub("orket: warning: OTEL_EXPORTER_OTLP_PROTOCOL=http: not a protocol %(the "
      .. "specification's: grpc, http/protobuf, http/json%): ignored, Orket sends OTLP/HTTP with JSON", "")
    assert.equal(1, said, r.stderr) -- both signals read it: one warning
    assert.is_true(#exports() >= 1)
    assert.equal("application/json", exports()[1].content_type)
    assert.equal(1, #exports("metrics"))
  end)

  -- serve started and answered /ready 503 for ever on gRPC; its warning was a plain line in
  -- its JSON-lines log
  it("refuse orket serve at its start on gRPC, and say http/protobuf in its JSON-lines log, once", function()
    local dir = project()
    -- (a timeout: a server that started would hold the file until the layer's timeout)
    local r = H.orket("serve --listen 127.0.0.1:0", { cwd = dir, wrap = "timeout 60",
      env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url, OTEL_EXPORTER_OTLP_PROTOCOL = "grpc" } })
    assert.equal(1, r.status, r.stderr)
    assert.matches("^orket: OTEL_EXPORTER_OTLP_PROTOCOL=grpc: Orket exports OTLP over HTTP with JSON", r.stderr)
    assert.is_nil(r.stdout:find("listening", 1, true), r.stdout)
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir, { env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url, OTEL_EXPORTER_OTLP_PROTOCOL = "http/protobuf" } })
    local st = H.api(s, "POST", "/v1/runs", op, { target = "M" })
    assert.equal(201, st)
    H.wait_for(function() return #exports() >= 1 end, "the server's run's spans", 3000)
    assert.equal(0, s.stop())
    local warnings = {}
    for line in s.log():gmatch("[^\n]+") do
      local ok, doc = pcall(cjson.decode, line)
      assert(ok and type(doc) == "table", "not a JSON line: " .. line)
      if doc.event == "warning" then warnings[#warnings + 1] = doc.message end
    end
    assert.equal(1, #warnings, s.log()) -- at the start, not again at the run's tracer
    assert.matches("^OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf: Orket sends OTLP/HTTP with JSON", warnings[1])
    assert.equal("application/json", exports()[1].content_type)
  end)

  -- OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER were not read: none exported all the
  -- same, and zipkin sent OTLP to the endpoint unsaid. Then an exporter Orket does not have
  -- stopped run, resume, worker and serve (often set fleet-wide: prometheus): it turns its
  -- signal off now, said once, and the rest goes on
  it("leave out a signal whose exporter is none or one Orket does not have, said, run and serve going on", function()
    local dir = project()
    local r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url, OTEL_TRACES_EXPORTER = "none" } })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    assert.same({ 0, 1 }, { #exports(), #exports("metrics") })
    assert.is_nil(r.stderr:find("OTEL_TRACES_EXPORTER", 1, true), r.stderr)
    fake.reset()
    r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url, OTEL_METRICS_EXPORTER = "NONE" } })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    assert.is_true(#exports() >= 1)
    assert.equal(0, #exports("metrics"))
    local said = "OTEL_TRACES_EXPORTER=zipkin: Orket has no zipkin exporter (Orket understands otlp and none): the traces "
      .. "are not exported; set OTEL_TRACES_EXPORTER=otlp (or unset it) to export them over OTLP to "
      .. "OTEL_EXPORTER_OTLP_ENDPOINT (the OpenTelemetry Collector's zipkin exporter sends them on to Zipkin), or "
      .. "OTEL_TRACES_EXPORTER=none to leave them off without this warning"
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url, OTEL_TRACES_EXPORTER = "zipkin" }
    fake.reset()
    dir = project() -- a card to work again
    r = H.orket("run M", { cwd = dir, env = env, wrap = "timeout 120" })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    local _, n = r.stderr:gsub("orket: warning: " .. said:gsub("%p", "%%%0"), "")
    assert.equal(1, n, r.stderr)
    assert.same({ 0, 1 }, { #exports(), #exports("metrics") })
    -- the server starts, says it once in its log, and its run's metrics go
    fake.reset()
    dir = project()
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir, { env = env })
    assert.equal(201, (H.api(s, "POST", "/v1/runs", op, { target = "M" })))
    H.wait_for(function() return #exports("metrics") >= 1 end, "the server's run's metrics", 30000)
    assert.equal(0, s.stop())
    local warnings = {}
    for line in s.log():gmatch("[^\n]+") do
      local ok, doc = pcall(cjson.decode, line)
      if ok and type(doc) == "table" and doc.event == "warning" then warnings[#warnings + 1] = doc.message end
    end
    assert.same({ said }, warnings)
    assert.equal(0, #exports())
  end)

  -- a resumed run drew a new trace: its spans could not be found from its first start's.
  -- Then a hash of the store's id and the run's: a copied store's runs shared traces. The
  -- trace id is drawn when the run is recorded now, kept in its data, read back by a resume
  it("keep a run's trace when it is resumed, the resume's turns in it under its own root, marked", function()
    local dir = project(", tokens_per_run = 10")
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url }
    local r = H.orket("run M --json", { cwd = dir, env = env })
    assert.equal(3, r.status, r.stderr) -- the token budget ran out: resumable
    local start = cjson.decode(r.stdout:match("[^\n]+"))
    assert.equal("run_start", start.type)
    assert.matches("^%x+$", start.trace_id)
    assert.equal(32, #start.trace_id)
    local first = #exports()
    -- the budget raised: the resume works the card again, its turn and model call traced
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua"):gsub(", tokens_per_run = 10", "")))
    r = H.orket("resume --json", { cwd = dir, env = env })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    local again = cjson.decode(r.stdout:match("[^\n]+"))
    assert.same({ "run_start", true, start.trace_id }, { again.type, again.resumed, again.trace_id })
    local runs, traces, resumed = {}, {}, {}
    for i, e in ipairs(exports()) do
      for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do
        traces[sp.traceId] = true
        if sp.name == "orket run M" then runs[#runs + 1] = sp end
        if i > first then resumed[#resumed + 1] = sp end
      end
    end
    assert.same({ [start.trace_id] = true }, traces) -- one trace, the run's: both starts' spans
    assert.equal(2, #runs)
    assert.same({ nil, nil }, { runs[1].parentSpanId, runs[2].parentSpanId })
    assert.not_equal(runs[1].spanId, runs[2].spanId)
    local a1, a2 = attrs(runs[1].attributes), attrs(runs[2].attributes)
    assert.equal(a1["orket.run.id"], a2["orket.run.id"])
    assert.same({ nil, true }, { a1["orket.run.resumed"], a2["orket.run.resumed"] })
    -- the resume's own turn and model call, under its root
    local by = {}
    for _, sp in ipairs(resumed) do by[sp.name] = sp end
    local agent, chat = by["invoke_agent coder"], by["chat " .. MODEL]
    assert.truthy(agent and chat, cjson.encode(resumed))
    assert.equal(runs[2].spanId, agent.parentSpanId)
    assert.equal(agent.spanId, chat.parentSpanId)
  end)

  -- a worker working a run marked its run span resumed, though it only joined the run
  it("name the worker on its run span, which is never marked resumed", function()
    local dir = project()
    local r = H.orket("worker --name wa --start M --drain", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url },
      wrap = "timeout 120" })
    -- as orket run exits for the run (turns_per_card = 1: it may not end done)
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    local runs = {}
    for _, e in ipairs(exports()) do
      for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do
        if sp.name == "orket run M" then runs[#runs + 1] = attrs(sp.attributes) end
      end
    end
    assert.equal(1, #runs)
    assert.same({ "wa", nil }, { runs[1]["orket.worker"], runs[1]["orket.run.resumed"] })
  end)

  -- the trace id was a hash of the store's id and the run's: a copy of the project (its
  -- store's id kept) gave its run 1 the original's run 1's trace
  it("give the runs of a copied project traces of their own", function()
    local dir = project()
    local copy = H.tmpdir()
    os.execute("cp -R " .. H.quote(dir .. "/.") .. " " .. H.quote(copy))
    local env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url }
    local traces = {}
    for _, d in ipairs { dir, copy } do
      local r = H.orket("run M", { cwd = d, env = env })
      assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    end
    local ids = {}
    for _, e in ipairs(exports()) do
      for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do
        if sp.name == "orket run M" then
          ids[#ids + 1] = attrs(sp.attributes)["orket.run.id"]
          traces[#traces + 1] = sp.traceId
        end
      end
    end
    assert.same({ "1", "1" }, ids) -- the same run id in both
    assert.not_equal(traces[1], traces[2])
  end)

  -- spans left only in batches of 256 and at the run's end, the metrics only at its end: a
  -- start killed (kill -9, a crash) midway through a few dozen turns had sent nothing. They
  -- leave on timers now (OTEL_BSP_SCHEDULE_DELAY, OTEL_METRIC_EXPORT_INTERVAL)
  it("send the spans and metrics of finished turns on timers, so a start killed midway has sent them", function()
    local issues = {}
    for i = 1, 40 do issues[i] = string.format('{ "id": "K-%d", "summary": "Do %d", "seat": "senior_developer" }', i, i) end
    -- each answer takes 100 ms: the run lasts seconds, each turn one model call
    -- each answer takes 300 ms: 40 turns last 12 s or more, past any wait below
    local dir = fake.one_issue(string.format([[
name = "killed"
models = { default = "fake:first_byte_ms=300,chunks=2", providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], fake.url .. "/v1"))
    H.write(dir .. "/epics/k.json", '{ "id": "K", "name": "Killed", "issues": [ ' .. table.concat(issues, ", ") .. " ] }")
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local env = string.format("OTEL_EXPORTER_OTLP_ENDPOINT=%s OTEL_BSP_SCHEDULE_DELAY=200 "
      .. "OTEL_METRIC_EXPORT_INTERVAL=200", H.quote(fake.url))
    os.execute(string.format("cd %s && { env %s %s run K --json --concurrency 1 >out.jsonl 2>err.txt & echo $! >pid; "
      .. "wait $!; echo $? >rc; } >/dev/null 2>&1 &", H.quote(dir), env, H.quote(H.BIN)))
    finally(function() H.end_started(dir, "pid", "rc", true) end)
    local function count(pattern)
      local n = 0
      for _ in (H.read(dir .. "/out.jsonl") or ""):gmatch(pattern) do n = n + 1 end
      return n
    end
    -- what the collector holds: spans by name, the metrics' exports, their last call count
    local function collected()
      local by, mx, last = {}, exports("metrics"), 0
      for _, e in ipairs(exports()) do
        for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do by[sp.name] = (by[sp.name] or 0) + 1 end
      end
      for _, e in ipairs(mx) do
        for _, m in ipairs(e.request.resourceMetrics[1].scopeMetrics[1].metrics) do
          if m.name == "gen_ai.client.operation.duration" then last = tonumber(m.histogram.dataPoints[1].count) end
        end
      end
      return by, mx, last
    end
    -- once 3 turns have ended, the collector is waited on (never a fixed pause) for their
    -- spans, their calls' and two metrics exports, then the run is killed: without the
    -- timers nothing comes before the run's end, and the wait times out
    local turns, calls = H.wait_for(function()
      local n = count('"type":"turn_end"')
      return n >= 3 and n, count('"type":"model"')
    end, "3 turns to end")
    calls = count('"type":"model"') -- (one call a turn: those of the turns ended, at least)
    H.wait_for(function()
      local by, mx, last = collected()
      return (by["invoke_agent coder"] or 0) >= turns and (by["chat first_byte_ms=300,chunks=2"] or 0) >= calls
        and #mx >= 2 and last >= calls
    end, "the spans and metrics of ended turns to reach the collector while the run goes on")
    local pid = assert(tonumber((H.read(dir .. "/pid") or ""):match("^%d+")), "no pid")
    os.execute("kill -9 " .. pid)
    -- (a number: the shell's `echo $? >rc` makes the file empty before it writes it)
    H.wait_for(function() return (H.read(dir .. "/rc") or ""):match("^%d+") end, "the killed run's shell to end")
    assert.equal("137", (H.read(dir .. "/rc"):match("^%d+")), H.read(dir .. "/err.txt")) -- killed, not ended
    local by, mx, last = collected()
    -- no run span (it never ended)
    assert.is_nil(by["orket run K"], cjson.encode(by))
    -- the metrics: cumulative from the process's first call, each export the totals so far,
    -- at least two, with one start time and counts that never go down
    assert.is_true(#mx >= 2, #mx .. " metrics exports")
    local start, prev = nil, 0
    for _, e in ipairs(mx) do
      for _, m in ipairs(e.request.resourceMetrics[1].scopeMetrics[1].metrics) do
        if m.name == "gen_ai.client.operation.duration" then
          assert.equal(2, m.histogram.aggregationTemporality)
          local dp = m.histogram.dataPoints[1]
          start = start or dp.startTimeUnixNano
          assert.equal(start, dp.startTimeUnixNano)
          assert.is_true(tonumber(dp.count) >= prev, cjson.encode(mx))
          prev = tonumber(dp.count)
        end
      end
    end
    assert.is_true(last >= calls, last .. " calls counted, " .. calls .. " made")
  end)

  -- orket serve and orket worker did not wait at their stop for what their runs' ends had
  -- only begun to send: the last spans (the stopped run's own) and metrics were lost. Both
  -- drain now, as orket run does, within otel.SHUTDOWN_MS. The timers are set past the
  -- test, so only the stop's drain can send them
  describe("at a stop (SIGTERM)", function()
    -- (model: the fake's settings, so a second project's calls tell apart from the first's)
    local function slow_project(model)
      local issues = {}
      for i = 1, 40 do issues[i] = string.format('{ "id": "K-%d", "summary": "Do %d", "seat": "senior_developer" }', i, i) end
      local dir = fake.one_issue(string.format([[
name = "stopped"
concurrency = 1
models = { default = "fake:%s", providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], model or "first_byte_ms=300,chunks=2", fake.url .. "/v1"))
      H.write(dir .. "/epics/k.json", '{ "id": "K", "name": "Stopped", "issues": [ ' .. table.concat(issues, ", ") .. " ] }")
      assert.equal(0, H.orket("import", { cwd = dir }).status)
      return dir
    end
    local ENV = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url, OTEL_BSP_SCHEDULE_DELAY = "600000",
      OTEL_METRIC_EXPORT_INTERVAL = "600000" }
    local function model_calls()
      local n = 0
      for _, e in ipairs(fake.log()) do if e.path:match("/chat/completions$") then n = n + 1 end end
      return n
    end
    -- the stopped run's span, its ended turns' and the metrics reached the collector (one
    -- turn at a time: the third call began once two turns had ended, their calls counted)
    local function assert_sent(what, said)
      local by = {}
      for _, e in ipairs(exports()) do
        for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do by[sp.name] = (by[sp.name] or 0) + 1 end
      end
      assert.equal(1, by["orket run K"], what .. ": " .. cjson.encode(by))
      assert.is_true((by["invoke_agent coder"] or 0) >= 2, what .. ": " .. cjson.encode(by))
      assert.is_true(#exports("metrics") >= 1, what .. ": no metrics " .. said)
    end

    -- an orket worker started in the background, its third model call made, nothing sent
    -- yet: its folder and pid (endpoint: the collector's base URL, fake.url's by default)
    local function started_worker(endpoint)
      local dir = slow_project()
      local env = ""
      for k, v in pairs(ENV) do
        if k == "OTEL_EXPORTER_OTLP_ENDPOINT" then v = endpoint or v end
        env = env .. k .. "=" .. H.quote(v) .. " "
      end
      os.execute(string.format("cd %s && { env %s %s worker --name wa --start K >out.jsonl 2>err.txt & echo $! >pid; "
        .. "wait $!; echo $? >rc; } >/dev/null 2>&1 &", H.quote(dir), env, H.quote(H.BIN)))
      finally(function() H.end_started(dir, "pid", "rc", true) end)
      H.wait_for(function() return model_calls() >= 3 end, "the worker's third model call")
      assert.equal(0, #exports()) -- nothing sent yet: the timers are far off
      return dir, assert(tonumber((H.read(dir .. "/pid") or ""):match("^%d+")), "no pid")
    end
    local function exit_code(dir)
      return H.wait_for(function() return (H.read(dir .. "/rc") or ""):match("^%d+") end, "the worker to exit")
    end

    it("send orket worker's last spans and metrics before it exits", function()
      local dir, pid = started_worker()
      os.execute("kill -TERM " .. pid)
      assert.equal("0", exit_code(dir), H.read(dir .. "/err.txt"))
      assert_sent("worker", H.read(dir .. "/err.txt") or "")
    end)

    -- the worker drained its own engine's tracer, which wrote nothing: its runs' tracers
    -- (an engine each) were not waited for, and it exited as soon as the metrics went
    it("wait for the spans of orket worker's runs, though the metrics are answered first", function()
      local dir, pid = started_worker(fake.url .. "/slow/2000")
      local uv = require "luv"
      local h0 = uv.hrtime()
      os.execute("kill -TERM " .. pid)
      assert.equal("0", exit_code(dir), H.read(dir .. "/err.txt"))
      local ms = (uv.hrtime() - h0) / 1e6
      assert.is_true(ms >= 1900, "the worker exited " .. ms .. " ms after SIGTERM")
      local answered = false
      for _, e in ipairs(exports()) do
        for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do
          if sp.name == "orket run K" and e.answered then answered = true end
        end
      end
      assert.is_true(answered, "the stopped run's span was never answered")
      assert_sent("worker", H.read(dir .. "/err.txt") or "")
      assert.equal("", H.read(dir .. "/err.txt") or "")
    end)

    -- the signals' handles were closed before the drain: a second SIGTERM during it (the
    -- server's, after a Ctrl-C reached its workers) ended the worker with 143
    it("keep orket worker's exit 0 at a second SIGTERM during its drain", function()
      local dir, pid = started_worker(fake.url .. "/slow/3000")
      os.execute("kill -TERM " .. pid)
      require("orket.c.runtime").sleep(1000)
      os.execute("kill -TERM " .. pid)
      assert.equal("0", exit_code(dir), H.read(dir .. "/err.txt"))
      assert_sent("worker", H.read(dir .. "/err.txt") or "")
    end)

    -- orket run's end waits for its spans as long as the exporter's timeouts allow (both 0:
    -- a day), and a Ctrl-C then only stopped an engine already done: the terminal hung
    it("give up orket run's drain at a Ctrl-C after its run, the rest said as dropped", function()
      local dir = project()
      local env = ""
      for k, v in pairs { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url .. "/slow/600000", OTEL_EXPORTER_OTLP_TIMEOUT = "0",
        OTEL_BSP_EXPORT_TIMEOUT = "0", OTEL_BSP_SCHEDULE_DELAY = "600000" } do
        env = env .. k .. "=" .. H.quote(v) .. " "
      end
      os.execute(string.format("cd %s && { env %s %s run M >out.txt 2>err.txt & echo $! >pid; "
        .. "wait $!; echo $? >rc; } >/dev/null 2>&1 &", H.quote(dir), env, H.quote(H.BIN)))
      finally(function() H.end_started(dir, "pid", "rc", true) end)
      H.wait_for(function() return #exports() >= 1 end, "the run's end's spans sent")
      require("orket.c.runtime").sleep(300) -- waiting on the collector, which never answers in time
      assert.is_nil((H.read(dir .. "/rc") or ""):match("^%d+"), H.read(dir .. "/err.txt"))
      local pid = assert(tonumber((H.read(dir .. "/pid") or ""):match("^%d+")), "no pid")
      local uv = require "luv"
      local h0 = uv.hrtime()
      os.execute("kill -INT " .. pid)
      local rc = H.wait_for(function() return (H.read(dir .. "/rc") or ""):match("^%d+") end, "orket run to exit")
      local ms = (uv.hrtime() - h0) / 1e6
      local err = H.read(dir .. "/err.txt") or ""
      assert.is_true(ms < 1000, "orket run exited " .. ms .. " ms after SIGINT")
      assert.is_true(rc == "0" or rc == "1" or rc == "3", rc .. ": " .. err)
      assert.matches("warning: traces: %d+ spans exported, %d+ dropped "
        .. "%(.*before the stop signal that ended the wait%)", err)
    end)

    it("send orket serve's runs' last spans and metrics before it exits", function()
      local dir = slow_project()
      local op = H.api_key(dir, "ops", "operator")
      local s = H.serve(dir, { env = ENV })
      assert.equal(201, (H.api(s, "POST", "/v1/runs", op, { target = "K" })))
      H.wait_for(function() return model_calls() >= 3 end, "the server's run's third model call")
      assert.equal(0, #exports())
      assert.equal(0, s.stop())
      assert_sent("serve", s.log())
    end)

    local HOSTED_MODEL = "first_byte_ms=300,chunks=3"
    -- the pids of the orket processes working in dir (the server, its workers) -> set
    local function project_pids(dir)
      local uv = require "luv"
      local want, bin = uv.fs_realpath(dir), uv.fs_realpath(H.BIN)
      local out, h = {}, assert(uv.fs_scandir("/proc"))
      while true do
        local name = uv.fs_scandir_next(h)
        if not name then break end
        if name:match("^%d+$") and uv.fs_readlink("/proc/" .. name .. "/cwd") == want
            and uv.fs_readlink("/proc/" .. name .. "/exe") == bin then
          out[tonumber(name)] = true
        end
      end
      return out
    end
    -- orket serve --workers 2 stopped the way `docker stop` stops it: SIGTERM, then SIGKILL
    -- 10 s later. Its workers work the default project's run, the server itself a hosted
    -- project's (the workers work only the default project), so both kinds of drain run:
    -- the workers' (5 s at most each, begun once the server's runs have stopped) and the
    -- server's own (what is left of the 9 s budget). Returns the server, its folder, its
    -- workers' pids and the time of the signal once the stop has been sent; the caller waits for the exit.
    local function serve_with_workers(endpoint)
      local dir, other = slow_project(), slow_project(HOSTED_MODEL)
      -- an operator of both projects: a person granted the hosted one, and their key
      for _, cmd in ipairs { "projects add " .. H.quote(other) .. " --name hosted", "users add ops --role operator "
        .. "--password-env PW", "projects grant hosted ops operator" } do
        local r = H.orket(cmd, { cwd = dir, env = { PW = "a long test password" } })
        assert.equal(0, r.status, cmd .. ": " .. r.stderr)
      end
      local r = H.orket("keys create opkey --role operator --for ops", { cwd = dir })
      assert.equal(0, r.status, r.stderr)
      local op = r.stdout:gsub("\n$", "")
      local env = {}
      for k, v in pairs(ENV) do env[k] = v end
      env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint
      local s = H.serve(dir, { args = "--workers 2", env = env })
      local st, _, text = H.api(s, "POST", "/v1/runs", op, { target = "K" })
      assert.equal(201, st, text)
      st, _, text = H.api(s, "POST", "/v1/projects/hosted/runs", op, { target = "K" })
      assert.equal(201, st, text)
      local function calls(model)
        local n = 0
        for _, e in ipairs(fake.log()) do
          if e.path:match("/chat/completions$") and e.model == model then n = n + 1 end
        end
        return n
      end
      -- two turns of each run ended (their calls answered and their spans ended: a call
      -- after each, by the same process). The server's run has one turn at a time, so its
      -- third call began after its second turn ended; each worker has one of its own
      -- (concurrency is a worker's), so of four calls begun two at most are still in flight.
      H.wait_for(function() return calls("first_byte_ms=300,chunks=2") >= 4 and calls(HOSTED_MODEL) >= 3 end,
        "four model calls of the workers' run and three of the server's")
      local kids = H.wait_for(function()
        local p = io.popen("ps -o pid= --ppid " .. s.pid)
        local out = {}
        for pid in p:read("a"):gmatch("%d+") do out[#out + 1] = tonumber(pid) end
        p:close()
        return #out == 2 and out
      end, "the server's two workers")
      local named = project_pids(dir) -- (the check for orphans below finds a worker by its folder)
      assert.same({ true, true }, { named[kids[1]], named[kids[2]] })
      local uv = require "luv"
      local t0 = uv.hrtime()
      os.execute("kill -TERM " .. s.pid)
      return s, dir, kids, t0
    end
    -- the server's exit status and how long after the signal its shell saw it exit (asked
    -- every 20 ms: the bound is checked to the tenth of a second)
    local function exited(dir, t0)
      local uv = require "luv"
      for _ = 1, 3000 do
        local rc = (H.read(dir .. "/serve.rc") or ""):match("^%d+")
        if rc then return tonumber(rc), (uv.hrtime() - t0) / 1e6 end
        require("orket.c.runtime").sleep(20)
      end
      error("the server did not exit within 60 s of SIGTERM")
    end
    -- no worker left behind: the two seen gone (not even a zombie), and no orket process at
    -- all working in the project's folder (a worker started again during the stop)
    local function assert_no_orphans(kids, dir, log)
      for _, pid in ipairs(kids) do assert.is_false(H.alive(pid), "worker " .. pid .. " outlived the server: " .. log) end
      for pid in pairs(project_pids(dir)) do
        assert.is_false(H.alive(pid), "process " .. pid .. " of the project outlived the server: " .. log)
      end
    end
    -- the warnings of the server's log: the server's own (its JSON lines) and its workers'
    -- (their stderr, the server's: `orket: warning: ...` lines)
    local function warnings(log)
      local server, workers = {}, {}
      for line in log:gmatch("[^\n]+") do
        local ok, doc = pcall(cjson.decode, line)
        if ok and type(doc) == "table" and doc.event == "warning" then server[#server + 1] = doc.message
        elseif not ok and line:match("warning: ") then workers[#workers + 1] = line end
      end
      return server, workers
    end

    -- a collector that takes the connections and never answers: the whole stop stays within
    -- docker stop's 10 s, exit 0, and what was not sent is counted and said, once a process
    it("keep orket serve --workers' stop within 10 s of SIGTERM when the collector never answers, the loss said", function()
      -- the collector: accepts, reads, never answers
      local hole = H.tmpdir()
      local code = "local uv = require 'luv'; local srv = uv.new_tcp(); assert(srv:bind('127.0.0.1', 0)); "
        .. "local conns = {}; assert(srv:listen(128, function(err) if err then return end; local c = uv.new_tcp(); "
        .. "srv:accept(c); conns[#conns + 1] = c; c:read_start(function() end) end)); "
        .. "io.stdout:write('listening ', srv:getsockname().port, '\\n'); io.stdout:flush(); orket.sleep(600000)"
      os.execute(string.format("cd %s && { %s lua -e %s >out 2>err & echo $! >pid; wait $!; echo $? >rc; } >/dev/null 2>&1 &",
        H.quote(hole), H.quote(H.BIN), H.quote(code)))
      finally(function() H.end_started(hole, "pid", "rc", true) end)
      local port = H.wait_for(function() return (H.read(hole .. "/out") or ""):match("listening (%d+)") end,
        "the silent collector to listen")
      local s, dir, kids, t0 = serve_with_workers("http://127.0.0.1:" .. port)
      local rc, ms = exited(dir, t0)
      local log = s.log()
      assert.equal(0, rc, log)
      -- docker stop's SIGKILL comes at 10 s: the documented bound, no margin added
      assert.is_true(ms < 10000, "the server exited " .. ms .. " ms after SIGTERM: " .. log:sub(-3000))
      -- the workers' drains (5 s at most) ran out against the silent collector: the stop was not
      -- ended early, before anything had a chance to go
      assert.is_true(ms >= 4900, "the server exited " .. ms .. " ms after SIGTERM")
      assert_no_orphans(kids, dir, log)
      local server, workers = warnings(log)
      -- the server's own run: its spans counted dropped, said once in a JSON warning line
      local traces = {}
      for _, m in ipairs(server) do if m:match("^traces: ") then traces[#traces + 1] = m end end
      assert.equal(1, #traces, log)
      local sent, lost = traces[1]:match("^traces: (%d+) spans exported, (%d+) dropped %(.+%)$")
      assert.truthy(sent, traces[1])
      assert.same({ 0, true }, { tonumber(sent), tonumber(lost) >= 3 }, traces[1]) -- the run's span, two turns at least
      -- the workers': each worker that worked says its loss once, on the server's stderr
      local wtraces = {}
      for _, l in ipairs(workers) do if l:match("warning: traces: ") then wtraces[#wtraces + 1] = l end end
      assert.is_true(#wtraces >= 1 and #wtraces <= 2, log)
      local wlost = 0
      for _, l in ipairs(wtraces) do
        local ws, wl = l:match("warning: traces: (%d+) spans exported, (%d+) dropped %(.+%)$")
        assert.truthy(ws, l)
        assert.equal(0, tonumber(ws), l)
        wlost = wlost + tonumber(wl)
      end
      assert.is_true(wlost >= 3, log) -- the workers' run's span and two turns at least
      -- the metrics' last exports failed too: said once by the server, at most once by a worker
      local m, wm = 0, 0
      for _, msg in ipairs(server) do if msg:match("^metrics: not exported %(") then m = m + 1 end end
      for _, l in ipairs(workers) do if l:match("warning: metrics: not exported %(") then wm = wm + 1 end end
      assert.same({ 1, true }, { m, wm >= 1 and wm <= 2 }, log)
    end)

    -- a collector that answers: the spans of the server's run and of its workers' arrive
    -- before the server exits, nothing said lost
    it("send the spans of orket serve's own runs and of its workers' before the server exits", function()
      local s, dir, kids, t0 = serve_with_workers(fake.url)
      local rc, ms = exited(dir, t0)
      local log = s.log()
      assert.equal(0, rc, log)
      assert.is_true(ms < 10000, "the server exited " .. ms .. " ms after SIGTERM: " .. log:sub(-3000))
      assert_no_orphans(kids, dir, log)
      local server, workers = warnings(log)
      assert.same({}, server, log)
      assert.same({}, workers, log)
      -- the run spans: the server's (no worker named on it), and the workers' (one root a worker
      -- that joined the run: both, most often)
      local by_worker, by_server, turns = 0, 0, {}
      for _, e in ipairs(exports()) do
        for _, sp in ipairs(e.request.resourceSpans[1].scopeSpans[1].spans) do
          local a = attrs(sp.attributes)
          if sp.name == "orket run K" then
            if a["orket.worker"] then by_worker = by_worker + 1 else by_server = by_server + 1 end
          end
          if sp.name:match("^chat ") then turns[sp.name] = (turns[sp.name] or 0) + 1 end
        end
      end
      assert.same({ true, 1 }, { by_worker == 1 or by_worker == 2, by_server }, cjson.encode(turns))
      -- each run's ended model calls, two at least
      assert.is_true((turns["chat first_byte_ms=300,chunks=2"] or 0) >= 2, cjson.encode(turns))
      assert.is_true((turns["chat " .. HOSTED_MODEL] or 0) >= 2, cjson.encode(turns))
      assert.is_true(#exports("metrics") >= 2, "metrics exports: " .. #exports("metrics")) -- the server's and a worker's
    end)
  end)

  it("are off without a collector, and OTEL_SDK_DISABLED turns them off", function()
    local dir = project()
    H.orket("run M", { cwd = dir, env = { OTEL_SDK_DISABLED = "true", OTEL_EXPORTER_OTLP_ENDPOINT = fake.url } })
    assert.equal(0, #exports())
  end)
end)
