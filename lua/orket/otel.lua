-- orket.otel: traces (and the GenAI client metrics) of runs, over OTLP/HTTP with JSON encoding
-- (docs/observability.md). A tracer turns the engine's events into spans named and
-- described by the OpenTelemetry GenAI semantic conventions: one `invoke_agent` span per
-- agent turn, one `chat` span per model call, one `execute_tool` span per tool call, under
-- one span of the run; the card, run and project are attributes. Spans wait in a bounded
-- queue and leave in batches from a task of their own: export never blocks a run or fails
-- it. A full queue or a collector that is down or refuses a batch costs counted drops.
-- Prompt and answer text are never exported.
local cjson = require "cjson.safe"
local jsonout = require "orket.jsonout"
local uv = require "luv"
local http = require "orket.c.http"
local crypto = require "orket.c.crypto"
local task = require "orket.task"
local rt = require "orket.c.runtime"

local M = {}

local type, mtype = type, math.type

M.QUEUE_MAX = 2048 -- spans held while the exporter is busy or the collector away; more are dropped
M.BATCH = 256      -- spans sent in one request
M.RETRIES = 2      -- times a batch answered 429 or 503 is sent again (backoff below)
M.BACKOFF_MS = 200
M.TIMEOUTS = { connect_timeout_ms = 1000, total_timeout_ms = 5000 }

-- n (8 or 16) random bytes as hex, from a pool drawn 512 bytes at a time (a span takes 8
-- or 24: one draw per id made every span cost a system call), read as 64-bit integers and
-- written by one format (a format of a byte each was a fifth of a span's cost)
local POOL = 512
local function hex(tr, n)
  if #tr.pool - tr.pool_at + 1 < n then tr.pool, tr.pool_at = crypto.random_bytes(POOL), 1 end
  local at = tr.pool_at
  tr.pool_at = at + n
  if n == 8 then return string.format("%016x", (string.unpack("<i8", tr.pool, at))) end
  local a, b = string.unpack("<i8i8", tr.pool, at)
  return string.format("%016x%016x", a, b)
end

-- the wall clock in nanoseconds (an integer), and as OTLP's JSON writes 64-bit integers (text)
local function now_int()
  local s, us = uv.gettimeofday()
  return s * 1000000000 + us * 1000
end
local function now_ns() return tostring(now_int()) end

-- "k1=v1,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES): values
-- percent-decoded, as the specification writes them
local function pairs_of(text)
  local out = {}
  for part in (text or ""):gmatch("[^,]+") do
    local k, v = part:match("^%s*([^=]-)%s*=%s*(.-)%s*$")
    if k and k ~= "" then
      out[#out + 1] = { k, (v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) }
    end
  end
  return out
end

--- config(getenv, telemetry) -> {url=, metrics_url=, headers=, resource=} | nil (no export).
--- The standard variables win over orket.lua's `telemetry` section: OTEL_SDK_DISABLED,
--- OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the whole URL), OTEL_EXPORTER_OTLP_ENDPOINT (a base
--- URL: /v1/traces is added), OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME,
--- OTEL_RESOURCE_ATTRIBUTES.
function M.config(getenv, telemetry)
  getenv = getenv or os.getenv
  telemetry = telemetry or {}
  if (getenv("OTEL_SDK_DISABLED") or ""):lower() == "true" then return nil end
  local base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
  if not base or base == "" then base = telemetry.endpoint end
  base = base and base:gsub("/+$", "")
  local url = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
  if not url or url == "" then url = base and (base .. "/v1/traces") end
  local murl = getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
  if not murl or murl == "" then murl = base and (base .. "/v1/metrics") end
  if url and not url:match("^https?://[^/]") then url = nil end
  if murl and not murl:match("^https?://[^/]") then murl = nil end
  if not url and not murl then return nil end
  local headers = { "Content-Type: application/json" }
  for _, kv in ipairs(pairs_of(getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or getenv("OTEL_EXPORTER_OTLP_HEADERS"))) do
    if not (kv[1] .. kv[2]):find("[\r\n]") then headers[#headers + 1] = kv[1] .. ": " .. kv[2] end
  end
  local resource = {}
  for _, kv in ipairs(pairs_of(getenv("OTEL_RESOURCE_ATTRIBUTES"))) do resource[kv[1]] = kv[2] end
  local service = getenv("OTEL_SERVICE_NAME")
  if not service or service == "" then service = resource["service.name"] or telemetry.service_name or "orket" end
  resource["service.name"] = service
  return { url = url, metrics_url = murl, headers = headers, resource = resource }
end

local function value_of(v)
  if math.type(v) == "integer" then return { intValue = string.format("%d", v) }
  elseif type(v) == "number" then return { doubleValue = v }
  elseif type(v) == "boolean" then return { boolValue = v } end
  return { stringValue = tostring(v) }
end

-- An OTLP attribute list from a table (strings, integers, floats, booleans), keys sorted.
local function attributes(t)
  local keys = {}
  for k, v in pairs(t) do if v ~= nil then keys[#keys + 1] = k end end
  table.sort(keys)
  local out = jsonout.array()
  for i, k in ipairs(keys) do out[i] = { key = k, value = value_of(t[k]) } end
  return out
end

-- A span as OTLP's JSON mapping writes it: the encoder writes these keys, its others (a
-- span's attributes while it is open) are left out.
local SPAN = jsonout.shape { "attributes", "endTimeUnixNano", "kind", "name", "parentSpanId", "spanId",
  "startTimeUnixNano", "status", "traceId" }

-- The attributes of the spans that stay open (a run, a turn) in the order they are
-- exported: a fixed list, where sorting each span's keys was most of what a span cost. A
-- model call's and a tool call's spans make their list at once, in the same order.
local KEYS = {
  run = { "orket.project", "orket.run.id", "orket.run.status", "orket.run.target" },
  turn = { "gen_ai.agent.name", "gen_ai.conversation.id", "gen_ai.operation.name", "gen_ai.provider.name",
    "gen_ai.request.model", "orket.card.id", "orket.model", "orket.outcome", "orket.phase", "orket.project",
    "orket.run.id", "orket.seat", "orket.turn" },
}

M.ENTRIES_MAX = 4096 -- attribute entries kept for reuse; past it new ones are made each time

-- The OTLP attribute of key k and value v. An entry of a string, an integer or a boolean
-- is made once and reused (the operation, model, provider, project, run, card and step
-- repeat across spans), up to ENTRIES_MAX of them, with its JSON text, which the encoder
-- copies into every span that has it (jsonout.encoded) instead of walking it again.
-- Integers are kept apart: 1 and 1.0 are one key of a table, and the one is intValue, the
-- other doubleValue.
local function encoded_entry(k, value)
  local e = jsonout.encoded(jsonout.encode { key = k, value = value })
  e.key, e.value = k, value
  return e
end

local function entry(tr, k, v)
  local kinds
  local tv = type(v)
  if tv == "string" or tv == "boolean" then kinds = tr.entries
  elseif mtype(v) == "integer" then kinds = tr.ints
  else return { key = k, value = value_of(v) } end
  local by = kinds[k]
  local e = by and by[v]
  if e then return e end
  local value = value_of(v)
  if tr.nentries >= M.ENTRIES_MAX then return { key = k, value = value } end
  e = encoded_entry(k, value)
  if not by then
    by = {}
    kinds[k] = by
  end
  by[v] = e
  tr.nentries = tr.nentries + 1
  return e
end

-- Sets out[n + 1] to the attribute k = v unless v is nil (v may be an entry made before);
-- returns the list's new length.
local function put(tr, out, n, k, v)
  if v == nil then return n end
  out[n + 1] = type(v) == "table" and v or entry(tr, k, v)
  return n + 1
end

-- Sets out[n + 1] to the entry e unless it is nil or false; returns the list's new length.
local function push(out, n, e)
  if not e then return n end
  out[n + 1] = e
  return n + 1
end

-- A list with room for n (at most 16) entries, and the list cut to its first n: an
-- attribute list grown an entry at a time was made five times over.
local function blank(n)
  if n <= 8 then return { false, false, false, false, false, false, false, false } end
  return { false, false, false, false, false, false, false, false, false, false, false, false, false, false, false, false }
end
local function cut(out, n)
  for i = n + 1, #out do out[i] = nil end
  return out
end

-- A span's attributes (the table t) in its kind's order (keys).
local function span_attributes(tr, keys, t)
  local out, n = blank(#keys), 0
  for _, k in ipairs(keys) do n = put(tr, out, n, k, t[k]) end
  return cut(out, n)
end

local Tracer = {}
Tracer.__index = Tracer

--- new(cfg, project) -> tracer: spans from the engine's events (tracer:event(ev)), exported
--- as cfg (config's) says. project: the project's name, an attribute of every span.
function M.new(cfg, project)
  return setmetatable({ cfg = cfg, project = project, queue = {}, dropped = 0, exported = 0, failed = 0,
    open = {}, busy = false, hists = {}, points = {}, pool = "", pool_at = 1, entries = {}, ints = {}, nentries = 0 }, Tracer)
end

-- The GenAI conventions' client metrics and their advised bucket boundaries.
M.TOKEN_BUCKETS = { 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864 }
M.DURATION_BUCKETS = { 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92 }

-- A new histogram of metric `name` for the attributes `attrs`, among the run's points.
local function histogram(tr, name, buckets, attrs)
  local h = { name = name, buckets = buckets, attrs = attrs, counts = {}, count = 0, sum = 0 }
  for i = 1, #buckets + 1 do h.counts[i] = 0 end
  tr.points[#tr.points + 1] = h
  return h
end

local function add(h, v)
  local buckets = h.buckets
  local i, n = 1, #buckets
  while i <= n and v > buckets[i] do i = i + 1 end
  h.counts[i] = h.counts[i] + 1
  h.count, h.sum = h.count + 1, h.sum + v
  if not h.min or v < h.min then h.min = v end
  if not h.max or v > h.max then h.max = v end
end

local function call_attrs(provider, model, kind)
  return { ["gen_ai.operation.name"] = "chat", ["gen_ai.provider.name"] = provider,
    ["gen_ai.request.model"] = model, ["gen_ai.token.type"] = kind }
end

-- Adds a model call's tokens (integers or nil) and wall time (seconds or nil) to its
-- provider and model's histograms, each made at its first use: two lookups a call.
function Tracer:observe_call(provider, model, input, output, seconds)
  local by = self.hists[provider or false]
  if not by then
    by = {}
    self.hists[provider or false] = by
  end
  local mh = by[model or false]
  if not mh then
    mh = {}
    by[model or false] = mh
  end
  if input then
    mh.input = mh.input or histogram(self, "gen_ai.client.token.usage", M.TOKEN_BUCKETS, call_attrs(provider, model, "input"))
    add(mh.input, input)
  end
  if output then
    mh.output = mh.output or histogram(self, "gen_ai.client.token.usage", M.TOKEN_BUCKETS, call_attrs(provider, model, "output"))
    add(mh.output, output)
  end
  if seconds then
    mh.duration = mh.duration or histogram(self, "gen_ai.client.operation.duration", M.DURATION_BUCKETS,
      call_attrs(provider, model, nil))
    add(mh.duration, seconds)
  end
end

-- A span of kind `kind` (KEYS') begun now (or at start_ns), not yet queued, with the
-- attributes attrs (a table, turned into the list at its end); or, kind nil, with the
-- list `attrs` already made (a span that ends as it begins, its keys in order).
function Tracer:begin(kind, name, parent, attrs, start_ns)
  local sp = setmetatable({ name = name, traceId = parent and parent.traceId or hex(self, 16), spanId = hex(self, 8),
    parentSpanId = parent and parent.spanId or nil, kind = 1, startTimeUnixNano = start_ns or now_ns() }, SPAN)
  if kind then
    attrs["orket.project"] = attrs["orket.project"] or self.project
    sp.attrs, sp.keys = attrs, KEYS[kind]
  else
    sp.attributes = attrs
  end
  return sp
end

-- Ends a span and queues it; a full queue drops it (counted).
function Tracer:finish(sp, failed, message)
  sp.endTimeUnixNano = now_ns()
  if failed then sp.status = { code = 2, message = message } end
  if #self.queue >= M.QUEUE_MAX then
    self.dropped = self.dropped + 1
    return
  end
  if sp.attrs then
    sp.attributes = span_attributes(self, sp.keys, sp.attrs)
    sp.attrs, sp.keys = nil, nil
  end
  self.queue[#self.queue + 1] = sp
  if #self.queue >= M.BATCH then self:flush() end
end

-- The open span of a turn, by card and turn (two lookups: a key made of both cost two
-- conversions of a number to text an event).
-- An event without them (none of the engine's) keys on false.
local function turn_of(tr, ev)
  local by = tr.open[ev.card or false]
  return by and by[ev.turn or false]
end

local function split_model(spec)
  local p, m = tostring(spec or ""):match("^([^:]+):(.+)$")
  return p, m or spec
end

-- The entries a turn's model and tool spans share (and the model spans' name), looked up
-- at the turn's first call and kept with its span (false: the turn has no such value).
local CONVERSATION, CHAT, EXECUTE_TOOL, PROVIDER, MODEL, CARD, PROJECT, RUN, CHAT_NAME = 1, 2, 3, 4, 5, 6, 7, 8, 9
function Tracer:common(parent)
  local pa = parent.attrs
  local model, provider = pa["gen_ai.request.model"], pa["gen_ai.provider.name"]
  local card, project, run = pa["orket.card.id"], pa["orket.project"], pa["orket.run.id"]
  -- a list, not a record: a table of nine named fields took 570 bytes a turn
  local c = { pa["gen_ai.conversation.id"], entry(self, "gen_ai.operation.name", "chat"),
    entry(self, "gen_ai.operation.name", "execute_tool"),
    provider ~= nil and entry(self, "gen_ai.provider.name", provider) or false,
    model ~= nil and entry(self, "gen_ai.request.model", model) or false,
    card ~= nil and entry(self, "orket.card.id", card) or false,
    project ~= nil and entry(self, "orket.project", project) or false,
    run ~= nil and entry(self, "orket.run.id", run) or false, "chat " .. tostring(model) }
  parent.common = c
  return c
end

--- tracer:event(ev): the engine's event ev (orket run --json's) as spans
function Tracer:event(ev)
  local t = ev.type
  if t == "run_start" then
    self.run = self:begin("run", "orket run " .. tostring(ev.target or ""), nil, { ["orket.run.id"] = ev.run_id,
      ["orket.run.target"] = ev.target })
  elseif t == "turn_start" and self.run then
    local provider, model = split_model(ev.model)
    local by = self.open[ev.card or false]
    if not by then
      by = {}
      self.open[ev.card or false] = by
    end
    by[ev.turn or false] = self:begin("turn", "invoke_agent " .. tostring(ev.role), self.run, {
      ["gen_ai.operation.name"] = "invoke_agent", ["gen_ai.agent.name"] = ev.role,
      ["gen_ai.provider.name"] = provider, ["gen_ai.request.model"] = model,
      -- the turn's own: made once for its span and its calls', never kept for reuse
      ["gen_ai.conversation.id"] = encoded_entry("gen_ai.conversation.id", { stringValue =
        string.format("%s/%s/%s", tostring(ev.run_id), tostring(ev.card), tostring(ev.turn)) }),
      ["orket.card.id"] = ev.card, ["orket.run.id"] = ev.run_id, ["orket.seat"] = ev.seat, ["orket.phase"] = ev.phase,
      ["orket.turn"] = ev.turn, ["orket.model"] = ev.model })
  elseif t == "model" then
    local parent = turn_of(self, ev)
    if not parent then return end
    local c = parent.common or self:common(parent)
    local pa = parent.attrs
    local provider, model = pa["gen_ai.provider.name"], pa["gen_ai.request.model"]
    -- the call began latency_ms before its event
    local ms = math.tointeger(ev.latency_ms)
    local input, output = math.tointeger(ev.prompt_tokens), math.tointeger(ev.completion_tokens)
    -- a span that ends as it begins: its attributes made at once, keys sorted; the turn's
    -- own entries looked up once a turn
    local a, n = blank(14), 0
    n = push(a, n, c[CONVERSATION])
    n = push(a, n, c[CHAT])
    n = push(a, n, c[PROVIDER])
    n = push(a, n, c[MODEL])
    n = put(self, a, n, "gen_ai.response.model", ev.response_model)
    n = put(self, a, n, "gen_ai.usage.cache_read.input_tokens", math.tointeger(ev.cached_tokens))
    n = put(self, a, n, "gen_ai.usage.input_tokens", input)
    n = put(self, a, n, "gen_ai.usage.output_tokens", output)
    n = push(a, n, c[CARD])
    n = put(self, a, n, "orket.cost.currency", ev.currency)
    n = put(self, a, n, "orket.cost.micros", math.tointeger(ev.cost))
    n = push(a, n, c[PROJECT])
    n = push(a, n, c[RUN])
    cut(a, put(self, a, n, "orket.step", ev.step))
    local sp = self:begin(nil, c[CHAT_NAME], parent, a, ms and tostring(now_int() - ms * 1000000) or nil)
    sp.kind = 3 -- client
    self:finish(sp)
    self:observe_call(provider, model, input, output, ms and ms / 1000)
  elseif t == "tool" then
    local parent = turn_of(self, ev)
    if not parent then return end
    local c = parent.common or self:common(parent)
    local a, n = blank(8), 0 -- keys sorted, as a chat span's
    n = push(a, n, c[EXECUTE_TOOL])
    n = put(self, a, n, "gen_ai.tool.call.id", ev.call_id)
    n = put(self, a, n, "gen_ai.tool.name", ev.tool)
    n = push(a, n, c[CARD])
    n = push(a, n, c[PROJECT])
    n = push(a, n, c[RUN])
    n = put(self, a, n, "orket.tool.code", ev.code)
    cut(a, put(self, a, n, "orket.tool.denied", ev.denied))
    local ms = math.tointeger(ev.ms)
    local sp = self:begin(nil, "execute_tool " .. tostring(ev.tool), parent, a, ms and tostring(now_int() - ms * 1000000) or nil)
    self:finish(sp, not ev.ok, ev.code)
  elseif t == "turn_end" then
    local sp = turn_of(self, ev)
    if not sp then return end
    self.open[ev.card or false][ev.turn or false] = nil
    sp.attrs["orket.outcome"] = ev.outcome
    self:finish(sp, ev.outcome == "model_error" or ev.outcome == "engine_error" or ev.outcome == "role_error", ev.outcome)
  elseif t == "run_end" and self.run then
    for card, by in pairs(self.open) do -- turns cut short (a stop): ended with the run
      self.open[card] = nil
      for _, sp in pairs(by) do self:finish(sp, true, "the run ended") end
    end
    self.run.attrs["orket.run.status"] = ev.status
    self:finish(self.run, ev.status == "failed", ev.status)
    self.metrics_body = self:metrics(self.run.startTimeUnixNano)
    self.run = nil
    self:flush()
  end
end

-- One batch's request body (OTLP's ExportTraceServiceRequest in its JSON mapping).
function Tracer:body(spans)
  return jsonout.encode { resourceSpans = { {
    resource = { attributes = attributes(self.cfg.resource) },
    scopeSpans = { { scope = { name = "orket" }, spans = spans } } } } }
end

-- The run's client metrics (OTLP's ExportMetricsServiceRequest in its JSON mapping):
-- cumulative histograms from the run's start | nil when there are none.
function Tracer:metrics(start_ns)
  if #self.points == 0 or not self.cfg.metrics_url then return nil end
  local now, by_name, list = now_ns(), {}, {}
  local DESC = { ["gen_ai.client.token.usage"] = { "Measures number of input and output tokens used", "{token}" },
    ["gen_ai.client.operation.duration"] = { "GenAI operation duration", "s" } }
  for _, h in ipairs(self.points) do
    local m = by_name[h.name]
    if not m then
      m = { name = h.name, description = DESC[h.name][1], unit = DESC[h.name][2],
        histogram = { aggregationTemporality = 2, dataPoints = {} } }
      by_name[h.name] = m
      list[#list + 1] = m
    end
    local counts = {}
    for i, c in ipairs(h.counts) do counts[i] = string.format("%d", c) end
    local dp = { attributes = attributes(h.attrs), startTimeUnixNano = start_ns, timeUnixNano = now,
      count = string.format("%d", h.count), sum = h.sum, bucketCounts = counts, explicitBounds = h.buckets,
      min = h.min, max = h.max }
    table.insert(m.histogram.dataPoints, dp)
  end
  self.hists, self.points = {}, {}
  return cjson.encode { resourceMetrics = { {
    resource = { attributes = attributes(self.cfg.resource) },
    scopeMetrics = { { scope = { name = "orket" }, metrics = list } } } } }
end

-- Sends one batch of spans (or a body given): true | false, why. 429 and 503 are sent
-- again after a backoff.
function Tracer:send(spans, url, body)
  body = body or self:body(spans)
  for attempt = 0, M.RETRIES do
    local hr <close>, err = http.request { url = url or self.cfg.url, method = "POST", headers = self.cfg.headers,
      body = body, max_bytes = 65536, connect_timeout_ms = M.TIMEOUTS.connect_timeout_ms,
      total_timeout_ms = M.TIMEOUTS.total_timeout_ms }
    if not hr then return false, tostring(err) end
    local status, h = hr:headers()
    if not status then return false, tostring(h) end
    while true do -- the answer's body is read and left
      local ev = hr:read()
      if not ev then break end
    end
    if status >= 200 and status < 300 then return true end
    if (status ~= 429 and status ~= 503) or attempt == M.RETRIES then return false, "HTTP " .. status end
    rt.sleep(M.BACKOFF_MS * (1 << attempt))
  end
  return false, "retries spent"
end

--- tracer:flush(): sends what is queued, in batches, from a task of its own (one at a
--- time); returns at once. A batch that cannot be sent is dropped and counted.
function Tracer:flush()
  if self.busy or (#self.queue == 0 and not self.metrics_body) then return end
  self.busy = true
  self.flusher = task.spawn(function()
    if not self.cfg.url then self.queue = {} end -- metrics only
    while #self.queue > 0 or self.metrics_body do
      if #self.queue == 0 then -- the run's metrics, after its spans
        local body = self.metrics_body
        self.metrics_body = nil
        local ok, sent, why = pcall(self.send, self, nil, self.cfg.metrics_url, body)
        if ok and sent then self.metrics_exported = (self.metrics_exported or 0) + 1
        else
          self.metrics_dropped = (self.metrics_dropped or 0) + 1
          self.last_error = ok and why or tostring(sent)
        end
        goto continue
      end
      local q = self.queue
      local batch = table.move(q, 1, math.min(#q, M.BATCH), 1, {})
      self.queue = table.move(q, #batch + 1, #q, 1, {})
      local ok, sent, why = pcall(self.send, self, batch)
      if ok and sent then
        self.exported = self.exported + #batch
      else
        self.dropped, self.failed = self.dropped + #batch, self.failed + 1
        self.last_error = ok and why or tostring(sent)
      end
      ::continue::
    end
    self.busy = false
  end)
end

--- tracer:drain() -> stats: waits for the spans queued to be sent (or dropped)
function Tracer:drain()
  self:flush()
  while self.busy and self.flusher do self.flusher:join() end
  return self:stats()
end

--- tracer:stats() -> {exported=, dropped=, queued=, failed= (batches), last_error=}
function Tracer:stats()
  return { exported = self.exported, dropped = self.dropped, queued = #self.queue, failed = self.failed,
    last_error = self.last_error, metrics_exported = self.metrics_exported or 0,
    metrics_dropped = self.metrics_dropped or 0 }
end

return M
