-- orket.serve.metrics: GET /metrics in the Prometheus text format 0.0.4. The board's,
-- runs' and model's figures are counted from the store at scrape time (aggregate queries,
-- at most MAX_SERIES label values each); the sums and histograms over the journal, turns
-- and tool calls are kept between scrapes, each scrape adding the rows written since the
-- last (store_sums): a histogram's counts, as a counter's, never go down while the server lives;
-- the HTTP ones come from the server's own counters (orket.serve.metrics.new, fed by each
-- request's log line). Queries: orket.store.metrics.
local cost = require "orket.cost"
local counts = require "orket.store.metrics"
local sandboxes = require "orket.store.sandboxes"
local serve_runs = require "orket.serve.runs"
local errors = require "orket.errors"
local DEFAULT = require("orket.settings.team").DEFAULT_PROJECT -- the default project (orket.serve.projects)

local M = {}

M.MAX_SERIES = 100 -- label values per family from the store (models, tools): bounds a scrape
M.BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }
M.MODEL_BUCKETS = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 }
M.TURN_BUCKETS = { 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600 }
M.CARD_BUCKETS = { 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800 }

-- The state machine's refusal codes (docs/board.md); TRANSITION_ILLEGAL: the gate's own
-- name for a refusal without one.
M.SM_RULES = {}
for _, c in ipairs { "ETYPE", "ESTATUS", "ESAME", "ETERMINAL", "ETRANSITION", "EREASON_REQUIRED", "EREASON_INVALID",
  "EREASON_UNEXPECTED", "EDEPENDENCY", "EREVIEWER", "ESELF_REVIEW", "EPERSON", "EREVIEW_DECISION",
  "TRANSITION_ILLEGAL" } do M.SM_RULES[c] = true end

local function esc(v)
  return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

local function labels(l)
  if not l or #l == 0 then return "" end
  local out = {}
  for i = 1, #l, 2 do out[#out + 1] = l[i] .. '="' .. esc(l[i + 1]) .. '"' end
  return "{" .. table.concat(out, ",") .. "}"
end

local function num(v)
  if type(v) == "string" then return v end -- an exact decimal already (a cost)
  if math.type(v) == "integer" then return tostring(v) end
  if v == math.huge then return "+Inf" end
  return string.format("%.17g", v)
end

-- A text builder: family(name, type, help) then sample(name, labels, value).
local function builder()
  local out = {}
  local b = {}
  function b.family(name, kind, help)
    out[#out + 1] = "# HELP " .. name .. " " .. help:gsub("\\", "\\\\"):gsub("\n", "\\n")
    out[#out + 1] = "# TYPE " .. name .. " " .. kind
  end
  function b.sample(name, l, v) out[#out + 1] = name .. labels(l) .. " " .. num(v) end
  -- hist: {buckets = {upper...}, counts = {per bucket, not cumulative}, sum=, count=}
  function b.histogram(name, l, h)
    local cum = 0
    for i, le in ipairs(h.buckets) do
      cum = cum + (h.counts[i] or 0)
      local ll = { table.unpack(l) }
      ll[#ll + 1], ll[#ll + 2] = "le", string.format("%.14g", le)
      b.sample(name .. "_bucket", ll, cum)
    end
    local ll = { table.unpack(l) }
    ll[#ll + 1], ll[#ll + 2] = "le", "+Inf"
    b.sample(name .. "_bucket", ll, h.count)
    b.sample(name .. "_sum", l, h.sum + 0.0)
    b.sample(name .. "_count", l, h.count)
  end
  function b.text() return table.concat(out, "\n") .. "\n" end
  return b
end

local function new_hist(buckets) return { buckets = buckets, counts = {}, sum = 0, count = 0 } end

local function observe(h, v)
  for i, le in ipairs(h.buckets) do
    if v <= le then
      h.counts[i] = (h.counts[i] or 0) + 1
      break
    end
  end
  h.sum, h.count = h.sum + v, h.count + 1
end

-- The server's counters.
local Counters = {}
Counters.__index = Counters

--- new() -> counters; counters:request(route, status, seconds)
--- sums: the store's counted figures kept between scrapes, per store (store_sums)
function M.new()
  return setmetatable({ requests = {}, durations = {}, refusals = {}, elsewhere = {}, keys = {},
    sums = setmetatable({}, { __mode = "k" }) }, Counters)
end

--- counters:count_elsewhere(route, status, source): requests answered with status on route
--- are also counted by source (source:stats() -> count, sum seconds, {count per bucket of
--- M.BUCKETS, not cumulative}: /health's, counted in C), added in when /metrics renders.
--- status nil: source:stats() gives a fourth value, {status -> count} (the proxied requests
--- that end in C: httpd.proxy_tally)
function Counters:count_elsewhere(route, status, source)
  self.elsewhere[#self.elsewhere + 1] = { route = route, status = status, source = source }
end

-- The requests and durations with what is counted elsewhere added in (copies).
local function merged(counters)
  local requests, durations = {}, {}
  for k, v in pairs(counters.requests) do requests[k] = v end
  for k, h in pairs(counters.durations) do durations[k] = h end
  for _, e in ipairs(counters.elsewhere) do
    local n, sum, counts, statuses = e.source:stats()
    if n > 0 then
      for status, sn in pairs(statuses or { [e.status] = n }) do
        local key = e.route .. "\0" .. status
        requests[key] = (requests[key] or 0) + sn
      end
      local h, m = durations[e.route] or new_hist(M.BUCKETS), new_hist(M.BUCKETS)
      for i = 1, #M.BUCKETS do m.counts[i] = (h.counts[i] or 0) + (counts[i] or 0) end
      m.sum, m.count = h.sum + sum, h.count + n
      durations[e.route] = m
    end
  end
  return requests, durations
end

--- counters:log_drops(source): the server's log lines dropped, source:dropped() -> their
--- count since the start (orket.serve.logwriter: a reader of stderr that fell behind)
function Counters:log_drops(source) self.log_source = source end

--- counters:telemetry(counted): the process's OTLP exports, counted() -> {{signal=,
--- exported=, dropped = {{reason=, n=}...}}...}, every signal and reason (orket.otel.counted)
function Counters:telemetry(counted) self.telemetry_counted = counted end

--- counters:refused(code[, project]): an API write the state machine refused in project
--- (default: the default one; other codes are not counted). Counted per project: a
--- project's /metrics must not tell its members of another's activity (docs/teams.md)
function Counters:refused(code, project)
  if not M.SM_RULES[code] then return end
  project = project or DEFAULT
  local by = self.refusals[project]
  if not by then
    by = {}
    self.refusals[project] = by
  end
  by[code] = (by[code] or 0) + 1
end

function Counters:request(route, status, seconds)
  -- the key's text made once per route and status, not per request
  local by_status = self.keys[route]
  if not by_status then
    by_status = {}
    self.keys[route] = by_status
  end
  local key = by_status[status]
  if not key then
    key = route .. "\0" .. status
    by_status[status] = key
  end
  self.requests[key] = (self.requests[key] or 0) + 1
  local h = self.durations[route]
  if not h then
    h = new_hist(M.BUCKETS)
    self.durations[route] = h
  end
  observe(h, seconds)
end

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

-- a + b for the sums of store_sums: an integer sum stops at the largest integer, never
-- wraps to a negative (as orket.store.costs' totals)
local function plus(a, b)
  a, b = a or 0, b or 0
  if math.type(a) == "integer" and math.type(b) == "integer" then
    if b > 0 and a > math.maxinteger - b then return math.maxinteger end
    if b < 0 and a < math.mininteger - b then return math.mininteger end
  end
  return a + b
end

-- A family's rows kept by key (key(r)): rows of a later span add their fields `add` to the
-- kept row of their key. Only the first `lim` keys in `before` order are kept, as the
-- store's query keeps them: those are the first `lim` of the whole table too, each whole,
-- since a span's first `lim` holds every one of them it has.
local function fold(kept, rows, key, add, lim, before)
  for _, r in ipairs(rows) do
    local k = key(r)
    local t = kept[k]
    if t then
      for _, f in ipairs(add) do t[f] = plus(t[f], r[f]) end
    else
      t = {}
      for f, v in pairs(r) do t[f] = v end
      kept[k] = t
    end
  end
  local ks = {}
  for k in pairs(kept) do ks[#ks + 1] = k end
  table.sort(ks, before)
  for i = lim + 1, #ks do kept[ks[i]] = nil end
  local out = {}
  for i = 1, math.min(lim, #ks) do out[i] = kept[ks[i]] end
  return out
end

local function joined(...) local t = table.pack(...) return function(r)
  local out = {}
  for i = 1, t.n do out[i] = tostring(r[t[i]]) end
  return table.concat(out, "\0")
end end

local function asc(a, b) return a < b end
-- done_by_day's: the latest days first, then the type
local function latest(a, b)
  local da, db_ = a:sub(1, 10), b:sub(1, 10)
  if da ~= db_ then return da > db_ end
  return a < b
end

-- The counters' reads, each a family: its key, its summed fields, its order
local SUMS = {
  { "models", joined("model"), { "n", "tin", "tout", "tcached" }, asc },
  { "costs", joined("model", "currency"), { "micros" }, asc },
  { "allowed_calls", joined("tool"), { "n" }, asc },
  { "gate_decisions", joined("tool", "verdict"), { "n" }, asc },
  { "violations", joined("rule"), { "n" }, asc },
  { "done_by_day", joined("day", "type"), { "n" }, latest },
  { "tool_outcomes", joined("tool", "verdict", "outcome"), { "n" }, asc },
}

local function copy_hist(h)
  local c = new_hist(h.buckets)
  for i, n in pairs(h.counts) do c.counts[i] = n end
  c.sum, c.count = h.sum, h.count
  return c
end

-- rows of orket.store.metrics' bucketed reads ({b, n, sum}) added to h
local function add_counted(h, r)
  if r.b >= 1 then h.counts[r.b] = (h.counts[r.b] or 0) + r.n end
  h.sum, h.count = h.sum + (tonumber(r.sum) or 0), h.count + r.n
end

-- The histograms' counts of st with the span's rows added (the models': those of models,
-- the model families' rows kept) -> {model = {[model] = h}, card = {[type] = h}, turn = h}
local function store_hists(st, db, span, lim, models)
  local kept = st.hist
  local by_model = {}
  for _, r in ipairs(models) do by_model[r.model] = kept.model[r.model] or new_hist(M.MODEL_BUCKETS) end
  kept.model = by_model
  for _, r in ipairs(counts.model_latencies(db, span, M.MODEL_BUCKETS, lim)) do
    if by_model[r.model] then add_counted(by_model[r.model], r) end
  end
  for _, t in ipairs { "rock", "epic", "issue" } do kept.card[t] = kept.card[t] or new_hist(M.CARD_BUCKETS) end
  for _, r in ipairs(counts.card_durations(db, span, M.CARD_BUCKETS)) do
    if kept.card[r.type] then add_counted(kept.card[r.type], r) end
  end
  kept.turn = kept.turn or new_hist(M.TURN_BUCKETS)
  for _, r in ipairs(counts.turn_durations(db, span, M.TURN_BUCKETS)) do add_counted(kept.turn, r) end
  -- copies: st is kept for the next scrape, which adds to its own copy (sums_state)
  local out = { model = {}, card = {}, turn = copy_hist(kept.turn) }
  for m, h in pairs(by_model) do out.model[m] = copy_hist(h) end
  for t, h in pairs(kept.card) do out.card[t] = copy_hist(h) end
  return out
end

-- A new state of store_sums: st's copy (its kept rows copied: a scrape on PostgreSQL waits
-- on the loop, and another may start from st meanwhile), or an empty one (nil) for cap lim
local function sums_state(st, lim)
  local new = { at = {}, stamp = {}, card_turns = st and st.card_turns or 0, open = {}, lim = lim }
  for _, t in ipairs(counts.TABLES) do
    new.at[t[1]], new.stamp[t[1]] = st and st.at[t[1]] or 0, st and st.stamp[t[1]]
  end
  for id in pairs(st and st.open or {}) do new.open[id] = true end
  new.hist = { model = {}, card = {} }
  local kept = st and st.hist
  if kept then
    for m, h in pairs(kept.model) do new.hist.model[m] = copy_hist(h) end
    for t, h in pairs(kept.card) do new.hist.card[t] = copy_hist(h) end
    new.hist.turn = copy_hist(kept.turn)
  end
  for _, f in ipairs(SUMS) do
    new[f[1]] = {}
    for k, r in pairs(st and st[f[1]] or {}) do
      local c = {}
      for name, v in pairs(r) do c[name] = v end
      new[f[1]][k] = c
    end
  end
  return new
end

-- The tool calls without a result yet (the span's, and those open at st's last scrape):
-- into st's kept sums once they have one (a call's result is written once), else counted
-- as they are now. -> the tool_outcomes rows of this scrape
local function open_outcomes(st, db, span, lim)
  local ids = {}
  for id in pairs(st.open) do ids[#ids + 1] = string.format("%d", id) end
  local closed, open, still = {}, {}, {}
  for _, r in ipairs(counts.open_calls(db, span, "[" .. table.concat(ids, ",") .. "]")) do
    r.n = 1
    if r.closed == 1 or r.closed == true then
      closed[#closed + 1] = r
    else
      open[#open + 1] = r
      still[r.id] = true
    end
    r.id, r.closed = nil, nil
  end
  st.open = still
  local o = SUMS[#SUMS]
  local shown = {}
  fold(shown, fold(st.tool_outcomes, closed, o[2], o[3], lim, o[4]), o[2], o[3], lim, o[4]) -- copies
  return fold(shown, open, o[2], o[3], lim, o[4])
end

-- The store's sums for this scrape: {models=, costs=, ..., card_turns=}, each family's rows
-- as orket.store.metrics' whole-table reads give them. Kept in counters.sums per store,
-- with each table's newest id read (at) and that row's time (stamp): a scrape reads only
-- the rows written since (ids become visible in order on both backends: docs/store.md). A
-- store whose rows at those ids differ (restored under the server) is counted again from
-- its start.
local function store_sums(counters, db, lim)
  local base = counters.sums[db]
  local st = base
  if st and st.lim ~= lim then st = nil end -- kept to another cap: what it left out is not kept
  local h = counts.heads(db, st and st.at)
  for _, t in ipairs(st and counts.TABLES or {}) do
    if st.at[t[1]] > 0 and h[t[1] .. "_at"] ~= st.stamp[t[1]] then st = nil break end
  end
  st = sums_state(st, lim)
  local span = { final = true }
  for _, t in ipairs(counts.TABLES) do span[t[1] .. "0"], span[t[1] .. "1"] = st.at[t[1]], h[t[1]] end
  local out = { card_turns = st.card_turns + counts.card_turns(db, span) }
  for _, f in ipairs(SUMS) do out[f[1]] = fold(st[f[1]], counts[f[1]](db, lim, span), f[2], f[3], lim, f[4]) end
  out.tool_outcomes = open_outcomes(st, db, span, lim)
  out.hist = store_hists(st, db, span, lim, out.models)
  -- the latest days kept, written oldest first (as the store's read gives them)
  table.sort(out.done_by_day, function(a, b)
    if a.day ~= b.day then return a.day < b.day end
    return a.type < b.type
  end)
  st.card_turns = out.card_turns
  for _, t in ipairs(counts.TABLES) do st.at[t[1]], st.stamp[t[1]] = h[t[1]], h[t[1] .. "_last"] end
  -- kept unless another scrape kept its own since this one began (its sums are as right)
  if counters.sums[db] == base then counters.sums[db] = st end
  return out
end

-- Every status a card or a run may have, so each family has samples from the start.
local CARD_STATUSES = { "ready", "in_progress", "blocked", "waiting_for_developer", "ready_for_testing",
  "code_review", "done", "canceled", "archived" }

-- orket_http_requests_total and orket_http_request_duration_seconds from the counters, and
-- orket_log_lines_dropped_total (the server's own too: its log is every project's)
local function http_families(b, counters)
  b.family("orket_http_requests_total", "counter", "HTTP requests answered, by route pattern and status.")
  local requests, durations = merged(counters)
  local rk = sorted_keys(requests)
  if #rk == 0 then b.sample("orket_http_requests_total", { "route", "/metrics", "status", "200" }, 0) end
  for _, k in ipairs(rk) do
    local route, status = k:match("^(.-)%z(.*)$")
    b.sample("orket_http_requests_total", { "route", route, "status", status }, requests[k])
  end
  b.family("orket_http_request_duration_seconds", "histogram", "HTTP request handling time, by route pattern.")
  local dk = sorted_keys(durations)
  if #dk == 0 then b.histogram("orket_http_request_duration_seconds", { "route", "/metrics" }, new_hist(M.BUCKETS)) end
  for _, route in ipairs(dk) do b.histogram("orket_http_request_duration_seconds", { "route", route }, durations[route]) end
  b.family("orket_log_lines_dropped_total", "counter", "Log lines dropped because stderr's reader fell behind.")
  b.sample("orket_log_lines_dropped_total", nil, counters.log_source and counters.log_source:dropped() or 0)
end

-- orket_telemetry_exported_total and orket_telemetry_dropped_total: the process's OTLP
-- exports (the server's own runs'; its --workers are processes of their own), so that a
-- collector that keeps refusing them can be alerted on; none without a source
local function telemetry_families(b, counters)
  local counted = counters.telemetry_counted
  if not counted then return end
  local list = counted()
  b.family("orket_telemetry_exported_total", "counter",
    "Telemetry this server's runs exported over OTLP that the collector took, by signal (traces: spans; metrics: data points).")
  for _, s in ipairs(list) do b.sample("orket_telemetry_exported_total", { "signal", s.signal }, s.exported) end
  b.family("orket_telemetry_dropped_total", "counter",
    "Telemetry this server's runs dropped instead of exporting, by signal (traces: spans; metrics: data points) and reason.")
  for _, s in ipairs(list) do
    for _, d in ipairs(s.dropped) do
      b.sample("orket_telemetry_dropped_total", { "signal", s.signal, "reason", d.reason }, d.n)
    end
  end
end

-- the event streams' families: sse_clients, and the journal's reads and notifications
local function sse_families(b, sse_clients, reads, notified)
  b.family("orket_sse_clients", "gauge", "Clients following an event stream.")
  b.sample("orket_sse_clients", nil, sse_clients)
  if reads then
    b.family("orket_sse_journal_reads_total", "counter",
      "Journal reads for the event stream, by what caused them (timer; on PostgreSQL notify, reconnect, fallback).")
    for _, why in ipairs { "timer", "notify", "reconnect", "fallback" } do
      b.sample("orket_sse_journal_reads_total", { "reason", why }, reads[why] or 0)
    end
  end
  if notified then
    b.family("orket_sse_notifications_carried_total", "counter",
      "On PostgreSQL, notifications whose events reached the event stream from their payload, with no journal read.")
    b.sample("orket_sse_notifications_carried_total", nil, notified)
  end
end

--- render(db, counters, sse_clients[, shown[, reads[, notified]]]) -> text; shown: {[stored status] = {[state
--- now] = n}} for runs whose state now differs from the stored one (orket.serve.runs:
--- live, or killed), counted by the state now; reads: hub:journal_reads(); notified:
--- hub:notified() (PostgreSQL only); project: whose API refusals are counted (default: the
--- default project); only the default project's text has the server's HTTP families
function M.render(db, counters, sse_clients, shown, reads, notified, project)
  local b = builder()
  local lim = M.MAX_SERIES

  b.family("orket_cards", "gauge", "Cards on the board by type and status.")
  local seen = {}
  for _, r in ipairs(counts.cards(db, lim)) do
    seen[r.type .. "\0" .. r.status] = r.n
  end
  for _, t in ipairs { "rock", "epic", "issue" } do
    for _, s in ipairs(CARD_STATUSES) do b.sample("orket_cards", { "type", t, "status", s }, seen[t .. "\0" .. s] or 0) end
  end

  b.family("orket_runs", "gauge", "Runs by state (running: going now; killed: stored as running, its process gone).")
  local runs = {}
  for _, r in ipairs(counts.runs(db, lim)) do runs[r.status] = r.n end
  for from, to in pairs(shown or {}) do
    for state, n in pairs(to) do
      runs[from] = (runs[from] or 0) - n
      runs[state] = (runs[state] or 0) + n
    end
  end
  -- every state a run can be shown in has its sample, 0 until a run is in it
  for _, s in ipairs(serve_runs.STATES) do runs[s] = runs[s] or 0 end
  for _, s in ipairs(sorted_keys(runs)) do b.sample("orket_runs", { "status", s }, runs[s]) end

  b.family("orket_turns_total", "counter", "Turns worked (distinct card turns).")
  local sums = store_sums(counters, db, lim)
  b.sample("orket_turns_total", nil, sums.card_turns)

  local models = sums.models
  local calls, tokens = {}, {}
  for _, r in ipairs(models) do
    calls[#calls + 1] = { { "model", r.model }, r.n }
    tokens[#tokens + 1] = { { "model", r.model, "direction", "in" }, r.tin }
    tokens[#tokens + 1] = { { "model", r.model, "direction", "out" }, r.tout }
  end
  b.family("orket_model_calls_total", "counter", "Model calls answered, by model.")
  for _, s in ipairs(calls) do b.sample("orket_model_calls_total", s[1], s[2]) end
  b.family("orket_model_tokens_total", "counter", "Tokens by model and direction (in: prompt, out: completion).")
  for _, s in ipairs(tokens) do b.sample("orket_model_tokens_total", s[1], s[2]) end
  b.family("orket_model_cached_tokens_total", "counter",
    "Prompt tokens the provider served from its prompt cache (of direction in), by model, where it says so.")
  for _, r in ipairs(models) do b.sample("orket_model_cached_tokens_total", { "model", r.model }, r.tcached or 0) end
  -- the exact sum of micro-units, written as a decimal (docs/cost.md), the charges of
  -- refused usages with it; calls of a model without a price have no cost and are not in it
  b.family("orket_cost_total", "counter", "What model calls cost, by model and currency (units of the currency).")
  for _, r in ipairs(sums.costs) do
    b.sample("orket_cost_total", { "model", r.model, "currency", r.currency }, cost.format(r.micros))
  end

  -- latency as the engine records it in a turn's data (latency_ms); calls without it are
  -- left out of the histogram. Its models are the other model families' (at most lim): the
  -- label is the name a provider answers with, which it may make new at every call
  b.family("orket_model_call_duration_seconds", "histogram", "Model call latency, by model.")
  local lat = sums.hist.model
  if next(lat) == nil then lat[""] = new_hist(M.MODEL_BUCKETS) end
  for _, m in ipairs(sorted_keys(lat)) do b.histogram("orket_model_call_duration_seconds", { "model", m }, lat[m]) end

  -- a call the gate allowed outright carries its code (tool_calls.gate_code); every other
  -- verdict is a gate_decisions row (store.lua): the two never count the same call
  b.family("orket_tool_calls_total", "counter", "Tool calls by tool and the gate's verdict.")
  local tc = {}
  for _, r in ipairs(sums.allowed_calls) do tc[r.tool .. "\0" .. r.verdict] = r.n end
  for _, r in ipairs(sums.gate_decisions) do
    local k = r.tool .. "\0" .. r.verdict
    tc[k] = (tc[k] or 0) + r.n
  end
  if next(tc) == nil then tc["\0allow"] = 0 end
  for _, k in ipairs(sorted_keys(tc)) do
    local tool, verdict = k:match("^(.-)%z(.*)$")
    b.sample("orket_tool_calls_total", { "tool", tool, "verdict", verdict }, tc[k])
  end

  b.family("orket_gate_violations_total", "counter", "Gate violations by rule.")
  local vs = sums.violations
  if #vs == 0 then b.sample("orket_gate_violations_total", { "rule", "" }, 0) end
  for _, r in ipairs(vs) do b.sample("orket_gate_violations_total", { "rule", r.rule }, r.n) end

  -- what a team asks of its board: cards done per day, how long a card and a turn take,
  -- how tool calls end, which state-machine rules refuse moves
  b.family("orket_cards_done_total", "counter", "Moves of cards to done, by UTC day (the latest days) and card type.")
  local done = sums.done_by_day
  -- an empty family is today's, by the store's day as the budgets count it
  if #done == 0 then b.sample("orket_cards_done_total", { "day", counts.today(db), "type", "issue" }, 0) end
  for _, r in ipairs(done) do b.sample("orket_cards_done_total", { "day", r.day, "type", r.type }, r.n) end

  b.family("orket_card_duration_seconds", "histogram", "Time from a card's first in_progress to its done, by card type.")
  local cd = sums.hist.card
  for _, t in ipairs { "rock", "epic", "issue" } do b.histogram("orket_card_duration_seconds", { "type", t }, cd[t]) end

  b.family("orket_turn_duration_seconds", "histogram", "Time from a turn's begin to its end.")
  b.histogram("orket_turn_duration_seconds", {}, sums.hist.turn)

  b.family("orket_tool_call_outcomes_total", "counter",
    "Tool calls by tool, the gate's verdict (allow, approved, ask, deny) and outcome (ok, error, refused, held, pending).")
  local outcomes = sums.tool_outcomes
  if #outcomes == 0 then
    b.sample("orket_tool_call_outcomes_total", { "tool", "", "verdict", "allow", "outcome", "ok" }, 0)
  end
  for _, r in ipairs(outcomes) do
    b.sample("orket_tool_call_outcomes_total", { "tool", r.tool, "verdict", r.verdict, "outcome", r.outcome }, r.n)
  end

  -- an agent's move the state machine refuses is a gate denial kept as a violation named
  -- by the machine's code; a refused API write is counted by this server
  b.family("orket_state_machine_refusals_total", "counter",
    "Moves the state machine refused, by rule (its code) and source (agent: recorded; api: this server's).")
  local by_rule = {}
  for _, r in ipairs(vs) do
    if M.SM_RULES[r.rule] then by_rule[r.rule] = r.n end
  end
  local api = counters.refusals[project or DEFAULT] or {}
  for _, rule in ipairs(sorted_keys(M.SM_RULES)) do
    b.sample("orket_state_machine_refusals_total", { "rule", rule, "source", "agent" }, by_rule[rule] or 0)
    b.sample("orket_state_machine_refusals_total", { "rule", rule, "source", "api" }, api[rule] or 0)
  end

  b.family("orket_approvals_waiting", "gauge", "Tool calls held for a developer's approval.")
  b.sample("orket_approvals_waiting", nil, counts.approvals_waiting(db))

  b.family("orket_sandboxes", "gauge", "Live sandboxes by status, as recorded (docs/sandbox.md).")
  local by_status = { starting = 0, healthy = 0, unhealthy = 0 }
  local ups = sandboxes.uptimes(db, lim)
  for _, r in ipairs(ups) do by_status[r.status] = (by_status[r.status] or 0) + 1 end
  for _, st in ipairs { "starting", "healthy", "unhealthy" } do b.sample("orket_sandboxes", { "status", st }, by_status[st]) end
  b.family("orket_sandbox_uptime_seconds", "gauge", "Seconds since each live sandbox started, by sandbox id.")
  for _, r in ipairs(ups) do
    b.sample("orket_sandbox_uptime_seconds", { "id", tostring(math.tointeger(r.id) or r.id) }, math.max(0, r.uptime_s or 0))
  end

  -- the server's requests, of every project: on the default project's page alone (a
  -- project's /metrics tells its members nothing of another's traffic: docs/teams.md)
  if (project or DEFAULT) == DEFAULT then
    http_families(b, counters)
    telemetry_families(b, counters)
  end
  sse_families(b, sse_clients, reads, notified)
  return b.text()
end

local function handler(req, ctx)
  local shown = serve_runs.shown_states(ctx.db, ctx.dir)
  local text, rerr = ctx.db:read(M.render, ctx.db, ctx.metrics, ctx.hub:count(), shown, ctx.hub:journal_reads(),
    ctx.db.backend == "pg" and ctx.hub:notified() or nil, ctx.project)
  -- an empty 200 would be a good scrape with no samples: every series would go stale unseen
  if not text then
    ctx.note = "store: " .. tostring(rerr)
    return errors.answer(503, "unavailable", "the store cannot be read just now; try again")
  end
  ctx.status = 200
  -- for a HEAD too: libmicrohttpd sends its length and no body (RFC 9110 9.3.2)
  req:respond(200, { "Content-Type: text/plain; version=0.0.4; charset=utf-8", "Cache-Control: no-store" }, text)
end

--- add(router): GET /metrics (viewer: once keys exist, a scraper sends one as a Bearer token)
function M.add(router)
  router:add("GET", "/metrics", { handler = handler, role = "viewer", name = "metrics",
    summary = "Prometheus metrics (text format 0.0.4)",
    responses = { [200] = { media = "text/plain", schema = { type = "string" }, description = "the metrics" } } })
end

return M
