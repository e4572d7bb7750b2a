-- orket.otel: traces (and the GenAI client metrics) of runs, over OTLP/HTTP with JSON encoding
-- (docs/observability.md). A tracer turns the engine's events into spans named and
-- described by the OpenTelemetry GenAI semantic conventions: one `invoke_agent` span per
-- agent turn, one `chat` span per model call, one `execute_tool` span per tool call, under
-- one span of each start of the run, in the run's one trace (a resume continues it); the
-- card, run and project are attributes. Spans wait in a bounded
-- queue and leave in batches from a task of their own: export never blocks a run or fails
-- it. A full queue or a collector that is down or refuses a batch costs counted drops.
-- Prompt and answer text are never exported.
local jsonout = require "orket.jsonout"
local uv = require "luv"
local http = require "orket.c.http"
local crypto = require "orket.c.crypto"
local task = require "orket.task"
local rt = require "orket.c.runtime"
local otlpspan = require "orket.c.otlpspan"
local inert = require "orket.inert"
local urlencode = require "orket.urlencode"
local cjson = require "cjson.safe"

local M = {}

-- spans held while the exporter is busy or the collector away; more are dropped
-- (OTEL_BSP_MAX_QUEUE_SIZE overrides it, up to QUEUE_LIMIT: held in memory, each up to ~24 KB)
M.QUEUE_MAX = 2048
M.QUEUE_LIMIT = 65536
M.BATCH = 256      -- spans sent in one request, at most (OTEL_BSP_MAX_EXPORT_BATCH_SIZE overrides it)
-- The spans written so far leave at least this often (OTEL_BSP_SCHEDULE_DELAY overrides it),
-- and the metrics so far (OTEL_METRIC_EXPORT_INTERVAL), the specification's defaults: sent
-- only when a batch filled and at the run's end, a start killed (kill -9, a crash) lost all
-- it had not sent, a run of a few dozen turns everything.
M.SCHEDULE_DELAY_MS = 5000
M.METRIC_INTERVAL_MS = 60000
-- The most bytes of one request's body (telemetry.max_request_bytes overrides it): a batch
-- whose text would pass it leaves as several requests. A span's texts are cut to 4096
-- bytes each, but escaped they reach about 24 KB, and 256 spans of those passed what
-- collectors and gateways take (the OpenTelemetry Collector's default is about 20 MiB,
-- many gateways a few), which refused the whole batch.
M.MAX_REQUEST_BYTES = 4 * 1024 * 1024
M.RETRIES = 2      -- times a batch answered 429 or 503 is sent again (backoff below)
M.BACKOFF_MS = 200
-- One request's time: total_timeout_ms is the specification's OTEL_EXPORTER_OTLP_TIMEOUT
-- (_TRACES_TIMEOUT, _METRICS_TIMEOUT), whose default is 10 s. Orket keeps 5 s: `orket run`
-- waits for its last export before it exits, and a collector that takes connections and
-- never answers costs that wait one request's timeout. The connection has at most 1 s of it.
M.TIMEOUTS = { connect_timeout_ms = 1000, total_timeout_ms = 5000 }
-- One export's time, its retries and their backoff included (OTEL_BSP_EXPORT_TIMEOUT for a
-- batch of spans, OTEL_METRIC_EXPORT_TIMEOUT for the metrics): the specification's default,
-- which three requests of 5 s and their backoff stay within.
M.EXPORT_TIMEOUT_MS = 30000
-- How long `orket serve` and `orket worker` wait at their shutdown for what is left to send
-- (drain_all): one request's default timeout. A collector that is down or never answers
-- never holds their stop longer. `orket serve` also keeps its whole stop within
-- STOP_BUDGET_MS of the signal (its drain gets what is left of it, up to SHUTDOWN_MS):
-- `docker stop` sends SIGKILL 10 s after SIGTERM, and before this drain come the server's
-- requests (drain_ms, 3 s), its runs' and sandboxes' stop, and its workers' (their own
-- drains included, unbounded by this budget: runs or sandboxes slow to stop take it past).
M.SHUTDOWN_MS = 5000
M.STOP_BUDGET_MS = 9000
-- A timeout of 0 is the specification's "no limit"; the other layer still bounds it (a
-- request by its export's time, an export by its requests'), and both 0 by this "very
-- large duration" (the specification's word): a day, the longest one request of the HTTP
-- client may take (a larger request timeout is taken as a day too). A drain's deadline (a
-- stop's) bounds every one of them. Timeouts are read up to the specification's 2^31 - 1.
M.NO_LIMIT_MS = 86400000
M.TIMEOUT_MAX = 2147483647

-- A random 64-bit id (a span's, or half a trace's), from a pool drawn 512 bytes at a time:
-- one draw per id made every span cost a system call.
local POOL = 512
local function random_id(tr)
  if tr.pool_at + 7 > #tr.pool then tr.pool, tr.pool_at = crypto.random_bytes(POOL), 1 end
  local v
  v, tr.pool_at = string.unpack("<i8", tr.pool, tr.pool_at)
  return v
end

-- the wall clock in nanoseconds (an integer), and as OTLP's JSON writes 64-bit integers (text)
local function now_int()
  local s, us = uv.gettimeofday()
  return s * 1000000000 + us * 1000
end
local function now_ns() return tostring(now_int()) end

-- OTEL_RESOURCE_ATTRIBUTES' "k1=v1,k2=v2" pairs, values percent-decoded, as the
-- specification writes them. An entry that is not key=value (no "=", or no key) is left
-- out and said into warnings by its place, never its text (a value may hold a secret);
-- dropped silently, an attribute a dashboard filters on went missing with nothing said.
local function resource_pairs(text, warnings)
  local out, i = {}, 0
  for part in ((text or "") .. ","):gmatch("([^,]*),") do
    i = i + 1
    local k, v = part:match("^%s*([^=]-)%s*=%s*(.-)%s*$")
    if k and k ~= "" then
      out[#out + 1] = { k, urlencode.unescape(v) }
    elseif part:find("%S") then -- (an empty entry, as after a comma at the end, is none)
      warnings[#warnings + 1] = string.format("OTEL_RESOURCE_ATTRIBUTES: entry %d %s: left out of the resource; "
        .. "write it as key=value, entries separated by commas", i, k and "has no key" or "is not key=value")
    end
  end
  return out
end

-- An HTTP header's name (RFC 9110's token)
local TOKEN = "^[%w!#$%%&'*+%-.^_`|~]+$"

-- A headers variable's key=value pairs that make headers, values percent-decoded. An entry
-- that makes none (no "=", as "Authorization: Bearer ..." written as the header itself; a
-- name that is no header name; a value holding a line break or another control byte) is
-- left out and said into warnings by its place, never its text (it may hold the key):
-- dropped silently, the exports went unauthenticated and the collector's 401 said nothing
-- of why.
local function header_pairs(text, var, warnings)
  local out, i = {}, 0
  for part in ((text or "") .. ","):gmatch("([^,]*),") do
    i = i + 1
    local k, v = part:match("^%s*([^=]-)%s*=%s*(.-)%s*$")
    v = v and urlencode.unescape(v)
    local why = not k and "is not key=value"
      or not k:match(TOKEN) and "has a key that is not an HTTP header name"
      or v:find("[\0-\8\10-\31\127]") and "has a value with a control character (a line break...) after percent-decoding"
    if why and part:find("%S") then -- (an empty entry, as after a comma at the end, is none)
      warnings[#warnings + 1] = string.format("%s: entry %d %s: that header is not sent; write the headers as "
        .. "key=value pairs separated by commas, values percent-encoded (authorization=Bearer%%20...)", var, i, why)
    elseif not why then
      out[#out + 1] = { k, v }
    end
  end
  return out
end

-- A signal's protocol (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, _METRICS_PROTOCOL; else
-- OTEL_EXPORTER_OTLP_PROTOCOL, as the specification orders them; empty or only spaces is
-- unset): nil | a warning | nil, why. Orket speaks OTLP/HTTP with JSON (http/json).
-- http/protobuf, the specification's default and so often set by habit, is sent as JSON to
-- the same URL, which collectors' OTLP/HTTP receivers (the OpenTelemetry Collector's) take
-- by its Content-Type: refusing it would stop runs that export fine. A value the
-- specification does not name is warned of and ignored, as it orders for an enum. gRPC is
-- another transport (port 4317 speaks nothing else): every export would fail, for ever,
-- with a transport error that does not say why, so the caller building a tracer refuses it.
local function protocol(getenv, own)
  local function read(var)
    local v = getenv(var)
    return v and v:match("^%s*(.-)%s*$") or ""
  end
  local var, value = own, read(own)
  if value == "" then var, value = "OTEL_EXPORTER_OTLP_PROTOCOL", read("OTEL_EXPORTER_OTLP_PROTOCOL") end
  if value == "" then return nil end
  local p = value:lower() -- the specification: enum values ignore case
  if p == "http/json" then return nil end
  if p == "http/protobuf" then
    return string.format("%s=%s: Orket sends OTLP/HTTP with JSON (http/json) to the same URL, which the "
      .. "OpenTelemetry Collector's OTLP/HTTP receiver takes by its Content-Type; set %s=http/json to say so "
      .. "(a backend that takes only protobuf refuses the exports, said at each run's end)", var, value, var)
  end
  if p == "grpc" then
    return nil, string.format("%s=%s: Orket exports OTLP over HTTP with JSON (http/json), not gRPC; set %s=http/json "
      .. "(or unset it) and point the endpoint at the collector's OTLP/HTTP port (4318 by default; 4317 speaks "
      .. "only gRPC)", var, value, var)
  end
  return string.format("%s=%s: not a protocol (the specification's: grpc, http/protobuf, http/json): ignored, "
    .. "Orket sends OTLP/HTTP with JSON (http/json); set %s=http/json or unset it", var, value, var)
end

-- What to point at instead of an exporter the specification names that Orket does not
-- have (OTEL_TRACES_EXPORTER's, OTEL_METRICS_EXPORTER's; jaeger was one): each a way to get
-- the signal there from OTLP.
local COLLECTOR_DEBUG = "the OpenTelemetry Collector's debug exporter writes what it receives"
local OTHER_EXPORTERS = {
  zipkin = "the OpenTelemetry Collector's zipkin exporter sends them on to Zipkin",
  jaeger = "Jaeger takes OTLP itself",
  prometheus = "orket serve's GET /metrics is Prometheus's to scrape, and the OpenTelemetry Collector's "
    .. "prometheus exporter serves what it receives",
  console = COLLECTOR_DEBUG, logging = COLLECTOR_DEBUG, ["otlp/stdout"] = COLLECTOR_DEBUG,
}

-- A signal's exporter (OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER: a comma-separated list,
-- case and spaces ignored): true (otlp, the default) | false. Orket understands otlp and
-- none only. Any other name in the list (an exporter Orket does not have, zipkin, console,
-- otlp/stdout..., or a typo) turns that signal off, said once (into warnings) with the
-- variable and its value, as the specification orders for a value not recognised: exporting
-- it over OTLP would send it where it was not meant to go, and refusing to start stopped
-- servers and workers over a telemetry setting often set fleet-wide.
local function exporter(getenv, var, warnings)
  local value = (getenv(var) or ""):match("^%s*(.-)%s*$")
  local otlp, named, other = false, false, nil
  for item in value:gmatch("[^,]+") do
    local name = item:match("^%s*(.-)%s*$"):lower()
    if name == "otlp" or name == "none" then
      named, otlp = true, otlp or name == "otlp"
    elseif name ~= "" then
      other = other or name
    end
  end
  if other then
    local what = var == "OTEL_TRACES_EXPORTER" and "traces" or "metrics"
    local hint = OTHER_EXPORTERS[other]
    warnings[#warnings + 1] = string.format("%s=%s: %s (Orket understands otlp and none): the %s are not "
      .. "exported; set %s=otlp (or unset it) to export them over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT%s, or "
      .. "%s=none to leave them off without this warning",
      var, value, hint and ("Orket has no " .. other .. " exporter") or (other .. " is not an exporter"), what, var,
      hint and (" (" .. hint .. ")") or "", var)
    return false
  end
  if not named then return true end
  return otlp
end

-- A variable holding a whole number of milliseconds or spans (OTEL_BSP_SCHEDULE_DELAY...):
-- the number | nil (unset, empty, or not one from 1 to max: warned of into warnings, the
-- default kept, as the specification orders for a value that cannot be parsed).
-- (min: 1, or 0 for a timeout, where 0 is the specification's "no limit")
local function count_of(getenv, var, max, default, warnings, min)
  min = min or 1
  local v = (getenv(var) or ""):match("^%s*(.-)%s*$")
  if v == "" then return nil end
  local n = v:match("^%d+$") and math.tointeger(tonumber(v))
  if n and n >= min and n <= max then return n end
  warnings[#warnings + 1] = string.format("%s=%s: not a whole number from %d to %d: ignored, the default (%d) "
    .. "kept", var, v, min, max, default)
  return nil
end

-- What a warning or message says of an endpoint's value: its scheme and host:port, never
-- a user, password, path, query or fragment (a key may be in any of them); "..." stands for
-- each part left out. A password holding "/", "?" or "#" ends the authority early (what
-- follows its ":" would pass for a port), so a value with an "@" past its authority says no
-- host at all; without a scheme a host is said only with its port (a lone word may be a
-- key pasted in the wrong variable). -> text, scheme | nil, host | nil, port | nil (those
-- said: the scheme in lower case)
function M.shown_endpoint(v)
  local scheme, rest = v:match("^(%a[%w+.-]*)://(.*)$")
  rest = scheme and rest or v
  local auth = rest:match("^[^/?#]*")
  local tail = rest:sub(#auth + 1)
  local user, host = auth:match("^(.*)@(.*)$")
  host = host or auth
  local ported = host:match("^[%w._~%%-]+:%d+$") or host:match("^%[[%x:.]+%]:%d+$")
  local safe = not tail:find("@", 1, true)
    and (ported or scheme and (host:match("^[%w._~%%-]+$") or host:match("^%[[%x:.]+%]$")))
  scheme = scheme and scheme:lower()
  local text = (scheme and scheme .. "://" or "") .. (user and safe and "...@" or "")
    .. (safe and host or "...") .. (safe and tail ~= "" and tail:sub(1, 1) .. "..." or "")
  return text, scheme, safe and host or nil, safe and ported and true or nil
end

-- The endpoint a URL names, for the run's end and its warnings: scheme://host:port, never
-- the user, password, path or query (a key may be there): M.shown_endpoint.
local function endpoint_of(url)
  local _, scheme, host = M.shown_endpoint(tostring(url))
  if not scheme then return "the collector" end
  return scheme .. "://" .. (host or "...")
end

-- ---- the exports' health: counted for the process, said while it fails -------------------
-- What each signal's exports did in this process, whatever run or tracer made them, by
-- signal: items exported (spans; the metrics' data points) and dropped, by reason. orket
-- serve's GET /metrics has them (orket_telemetry_*_total), and its log says a collector that
-- keeps failing while it fails (M.report): a stop's warnings (drop_lines) say only what that
-- stop lost, so a collector down, or refusing, for a server's whole life was said nowhere.
-- The reasons, a fixed set (a label's values): queue_full (the queue of spans full),
-- invalid (a span or event that could not be written, or one alone over the cap on a
-- request's size), unreachable (no answer: refused, reset, DNS, TLS), timeout (no answer in
-- time), refused (an HTTP error), throttled (429 or 503 to the last retry, or a Retry-After
-- past the export's time), rejected (a partial success), deadline (the export's time, or a
-- run's end's or a stop's wait, ran out before it was sent).
M.REASONS = {
  traces = { "queue_full", "invalid", "unreachable", "timeout", "refused", "throttled", "rejected", "deadline" },
  metrics = { "unreachable", "timeout", "refused", "throttled", "rejected", "deadline" },
}
M.SIGNALS = { "traces", "metrics" }
-- How often a failing signal's warning may come, per signal and endpoint: a collector down
-- for hours fails every batch of every run (one each OTEL_BSP_SCHEDULE_DELAY) and every
-- metrics export; a line each buried the log and, past its 4 MiB queue, dropped its other
-- lines. One a minute says it still fails, with the counts since the line before; GET
-- /metrics has every drop as it happens.
M.REPORT_EVERY_MS = 60000
-- Where a long-lived process says its exports' health: function(fields) (orket serve: a
-- JSON line of its log) | nil (orket run, orket worker: their stop's warnings say it).
M.report = nil

local function new_counts()
  local c = {}
  for _, s in ipairs(M.SIGNALS) do c[s] = { exported = 0, dropped = {} } end
  return c
end
M.counts = new_counts()
-- by signal and endpoint: {signal=, endpoint=, failing=, since= (the streak's first failure,
-- the loop's ms), streak= (dropped in it), dropped=, exported= (since the last line),
-- reason=, why= (the latest failure's), said_at=, said_failing= (this streak's line said),
-- recovered= (not said yet), timer= (a line held)}
M.health = {}

--- counted() -> {{signal=, exported=, dropped = {{reason=, n=}...}}...}: the process's
--- counts, every signal and each of its reasons (0 too), in a fixed order (GET /metrics')
function M.counted()
  local out = {}
  for _, s in ipairs(M.SIGNALS) do
    local c, dropped = M.counts[s], {}
    for _, r in ipairs(M.REASONS[s]) do dropped[#dropped + 1] = { reason = r, n = c.dropped[r] or 0 } end
    out[#out + 1] = { signal = s, exported = c.exported, dropped = dropped }
  end
  return out
end

local function total_dropped(c)
  local n = 0
  for _, v in pairs(c.dropped) do n = n + v end
  return n
end

-- A signal's health line now, if there is one to say: a streak going (what it dropped since
-- the line before), or its end (what the whole streak dropped)
local function say_health(h)
  if h.timer then
    if not h.timer:is_closing() then h.timer:close() end
    h.timer = nil
  end
  uv.update_time()
  local now, c = uv.now(), M.counts[h.signal]
  local fields
  if h.failing and h.dropped > 0 then
    fields = { event = "telemetry_failing", signal = h.signal, endpoint = h.endpoint, reason = h.reason,
      message = h.why, dropped = h.dropped, exported = h.exported, failing_for_s = (now - h.since) // 1000,
      exported_total = c.exported, dropped_total = total_dropped(c) }
    h.said_failing = true
  elseif not h.failing and h.recovered then
    fields = { event = "telemetry_recovered", signal = h.signal, endpoint = h.endpoint, dropped = h.streak,
      failed_for_s = (now - h.since) // 1000, exported_total = c.exported, dropped_total = total_dropped(c) }
    h.recovered, h.streak, h.said_failing = false, 0, false
  else
    return
  end
  h.said_at, h.dropped, h.exported = now, 0, 0
  local report = M.report
  if report then pcall(report, fields) end
end

-- Says h's news now or, within REPORT_EVERY_MS of its last line, when that ends (a timer,
-- unref'd). The end of a streak whose line was said is said at once: at most two lines an
-- interval, however the collector flaps.
local function tell(h)
  if not M.report or M.stopping then return end
  uv.update_time()
  local left = h.said_at and h.said_at + M.REPORT_EVERY_MS - uv.now() or 0
  if left <= 0 or (h.recovered and h.said_failing) then return say_health(h) end
  if h.timer then return end
  h.timer = uv.new_timer()
  h.timer:start(left, 0, function()
    if not M.stopping then say_health(h) end
  end)
  h.timer:unref()
end

--- note(signal, url, exported, dropped, reason, why): what one export (or one span's drop)
--- did, counted for the process and said as M.report's health lines (reason: of
--- M.REASONS[signal]; why: its text, naming the endpoint, never its user, password or query)
local health_keys = {} -- signal -> url -> its key in M.health (a URL's endpoint read once)
function M.note(signal, url, exported, dropped, reason, why)
  if not url then return end -- (the signal not exported: nothing of it is sent or lost)
  local c = M.counts[signal]
  c.exported = c.exported + exported
  if dropped > 0 then c.dropped[reason] = (c.dropped[reason] or 0) + dropped end
  health_keys[signal] = health_keys[signal] or {}
  local key = health_keys[signal][url]
  if not key then
    key = signal .. "\0" .. endpoint_of(url)
    health_keys[signal][url] = key
  end
  local h = M.health[key]
  if not h then
    h = { signal = signal, endpoint = endpoint_of(url), failing = false, streak = 0, dropped = 0, exported = 0 }
    M.health[key] = h
  end
  h.exported = h.exported + exported
  if dropped > 0 then
    if not h.failing then
      uv.update_time()
      h.failing, h.since, h.recovered = true, h.recovered and h.since or uv.now(), false
    end
    h.dropped, h.streak, h.reason, h.why = h.dropped + dropped, h.streak + dropped, reason, why
    tell(h)
  elseif exported > 0 and h.failing then
    h.failing, h.recovered = false, true
    tell(h)
  end
end

-- At a stop's signal: the lines held are said now; what the stop loses is its drain's to
-- say (drop_lines), so no more lines come.
local function stop_health()
  for _, h in pairs(M.health) do
    if h.timer then say_health(h) end
  end
  M.stopping = true
end

--- http_url(v) -> v as an http(s) URL with a host, spaces around it left out and its scheme
--- in lower case (a URL's scheme is case-insensitive: "HTTP://c:4318") | nil: the one check
--- of a collector's or a provider's URL, for orket.lua's and the environment's alike
function M.http_url(v)
  if type(v) ~= "string" then return nil end
  local scheme, rest = v:match("^%s*(%a[%w+.-]*)://([^/%s].-)%s*$")
  scheme = scheme and scheme:lower()
  if scheme == "http" or scheme == "https" then return scheme .. "://" .. rest end
  return nil
end

-- An http(s) URL with an "@" past its authority: a user or password holding an unencoded
-- "/", "?" or "#" ends the authority there (RFC 3986), so libcurl sends to a host made of
-- the user info's start, and its error text names that host: part of the password. Warned
-- of into warnings by name alone (the value may hold the password), asking for it encoded.
local function userinfo_warning(name, url, warnings)
  local rest = url:match("^%a[%w+.-]*://(.*)$") or url
  if not rest:find("@", #rest:match("^[^/?#]*") + 1, true) then return end
  warnings[#warnings + 1] = name .. ": has an '@' past its host: where it ends a user or password, write its "
    .. "'/', '?' and '#' percent-encoded (%2F, %3F, %23), or the export goes to a host made of the user info's "
    .. "start, and its errors can show part of the password"
end

local SIGNAL_PATH = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "/v1/traces",
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = "/v1/metrics" }

-- An endpoint variable (OTEL_EXPORTER_OTLP_ENDPOINT, _TRACES_ENDPOINT, _METRICS_ENDPOINT):
-- its URL, the scheme in lower case | nil (unset, empty or only spaces). Spaces around it
-- are left out and the scheme's case ignored (a URL's scheme is case-insensitive). One
-- that is not an http(s) URL ("collector:4318", a scheme left out, as is common;
-- "grpc://...") is ignored as the specification orders for a value that cannot be used,
-- and said into warnings by shown_endpoint's parts alone: silently dropped, it turned
-- export off (or sent that signal nowhere) with nothing to say why.
local function endpoint_var(getenv, var, warnings)
  local v = (getenv(var) or ""):match("^%s*(.-)%s*$")
  if v == "" then return nil end
  local url = M.http_url(v)
  if url then
    userinfo_warning(var, url, warnings)
    return url
  end
  local shown, given, host, port = M.shown_endpoint(v)
  warnings[#warnings + 1] = string.format("%s=%s: not an http:// or https:// URL: ignored%s; set it to the "
    .. "collector's OTLP/HTTP URL, e.g. http://%s%s", var, shown,
    var == "OTEL_EXPORTER_OTLP_ENDPOINT" and " (telemetry.endpoint of orket.lua, when set, is used instead)"
      or " (the base endpoint's, when there is one, is used instead)",
    not given and port and host or "127.0.0.1:4318", SIGNAL_PATH[var] or "")
  return nil
end

--- config(getenv, telemetry) -> {url=, metrics_url=, headers=, metrics_headers=, resource=,
--- max_request_bytes=, schedule_delay_ms=, batch=, metric_interval_ms=, warnings=} | nil
--- (no export) | {off = true, warnings=} (no export, and warnings to say: an exporter not
--- understood turned the signals off) | nil, message, "EINVAL" (gRPC, named with its
--- variable: what builds a tracer refuses to start). resource has service.name and
--- service.instance.id (the process's, M.instance_id, unless OTEL_RESOURCE_ATTRIBUTES sets it).
--- The standard variables win over orket.lua's `telemetry` section: OTEL_SDK_DISABLED,
--- OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER (none, or a name other than otlp: that
--- signal is not exported),
--- OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the whole URL), OTEL_EXPORTER_OTLP_ENDPOINT (a base
--- URL: /v1/traces is added), OTEL_EXPORTER_OTLP_HEADERS (OTEL_EXPORTER_OTLP_TRACES_HEADERS,
--- _METRICS_HEADERS: each signal's, instead), OTEL_EXPORTER_OTLP_PROTOCOL (_TRACES_PROTOCOL,
--- _METRICS_PROTOCOL: each signal's, instead; only a signal that is exported is checked),
--- OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_SCHEDULE_DELAY and
--- OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_EXPORT_TIMEOUT and
--- OTEL_EXPORTER_OTLP_TRACES_TIMEOUT (read with the traces), OTEL_METRIC_EXPORT_INTERVAL,
--- OTEL_METRIC_EXPORT_TIMEOUT and OTEL_EXPORTER_OTLP_METRICS_TIMEOUT (with the metrics),
--- OTEL_EXPORTER_OTLP_TIMEOUT (a signal's without its own): queue_max=, timeout_ms=,
--- metrics_timeout_ms=, export_timeout_ms=, metrics_export_timeout_ms= and the others nil
--- unless set and good. warnings: texts to say once (otel.say).
function M.config(getenv, telemetry)
  getenv = getenv or os.getenv
  -- orket serve asks before orket.settings checks the section: a bad one is its to name
  if type(telemetry) ~= "table" then telemetry = {} end
  -- a boolean of the specification: true (case and spaces aside) turns every signal off;
  -- anything but true, false or empty is false, said
  local warnings = {}
  local disabled = (getenv("OTEL_SDK_DISABLED") or ""):match("^%s*(.-)%s*$")
  if disabled:lower() == "true" then return nil end
  if disabled ~= "" and disabled:lower() ~= "false" then
    warnings[1] = string.format("OTEL_SDK_DISABLED=%s: not true or false: taken as false, export stays on; "
      .. "set OTEL_SDK_DISABLED=true to turn it off", disabled)
  end
  local base = endpoint_var(getenv, "OTEL_EXPORTER_OTLP_ENDPOINT", warnings)
  if not base then
    base = M.http_url(telemetry.endpoint)
    if base then userinfo_warning("orket.lua's telemetry.endpoint", base, warnings) end
  end
  -- a signal's path goes at the end of the base's path, before its query (a collector's
  -- tenant, ?tenant=a, is kept for both signals); a fragment is never sent, so it is said
  local query = ""
  -- (an '@' past the host: where the authority ends is the user's to say, warned of above)
  if base and base:match("^%a[%w+.-]*://[^/?#]*[/?#].*@") then
    base = base:gsub("/+$", "")
  elseif base then
    local fragment
    base, query, fragment = base:match("^([^?#]*)(%??[^#]*)(#?.*)$")
    base = base:gsub("/+$", "")
    if fragment ~= "" then
      -- (not shown: the URL's other parts may hold a token, as its query may)
      warnings[#warnings + 1] = "the collector's base URL (OTEL_EXPORTER_OTLP_ENDPOINT or telemetry.endpoint) has a "
        .. "fragment (#...): a fragment is never sent, so it is left out; put what it says in the path or the query"
    end
  end
  local url = endpoint_var(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", warnings)
  if not url then url = base and (base .. "/v1/traces" .. query) end
  local murl = endpoint_var(getenv, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", warnings)
  if not murl then murl = base and (base .. "/v1/metrics" .. query) end
  -- a signal's exporter is read only when it has a collector, as its protocol is: a command
  -- that exports nothing never warns of it
  if url and not exporter(getenv, "OTEL_TRACES_EXPORTER", warnings) then url = nil end
  if murl and not exporter(getenv, "OTEL_METRICS_EXPORTER", warnings) then murl = nil end
  -- both off: nothing exported, but what was not understood is said
  if not url and not murl then
    if #warnings > 0 then return { warnings = warnings, off = true } end
    return nil
  end
  for _, sig in ipairs { { url, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL" }, { murl, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL" } } do
    if sig[1] then
      local warning, err = protocol(getenv, sig[2])
      if err then return nil, err, "EINVAL" end
      -- the shared variable's warning once, though both signals read it
      if warning and warning ~= warnings[#warnings] then warnings[#warnings + 1] = warning end
    end
  end
  -- each signal's own headers, else the shared ones: the traces' (a backend's key) sent with
  -- the metrics went to the metrics' endpoint, another backend perhaps, and its own were
  -- never sent
  local function headers_of(own)
    local headers = { "Content-Type: application/json" }
    local var, v = own, getenv(own)
    if v == nil or v == "" then var, v = "OTEL_EXPORTER_OTLP_HEADERS", getenv("OTEL_EXPORTER_OTLP_HEADERS") end -- empty is unset (the spec)
    for _, kv in ipairs(header_pairs(v, var, warnings)) do headers[#headers + 1] = kv[1] .. ": " .. kv[2] end
    return headers
  end
  local headers = headers_of("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
  local metrics_headers = headers_of("OTEL_EXPORTER_OTLP_METRICS_HEADERS")
  local resource = {}
  for _, kv in ipairs(resource_pairs(getenv("OTEL_RESOURCE_ATTRIBUTES"), warnings)) do resource[kv[1]] = kv[2] end
  -- empty or only spaces is unset (the specification's rule for every variable), as
  -- OTEL_RESOURCE_ATTRIBUTES' service.name is: a blank name filed the traces under no
  -- service a backend can show (orket.lua's telemetry.service_name refuses one)
  local function named(v)
    v = type(v) == "string" and v:match("^%s*(.-)%s*$")
    return v ~= "" and v or nil
  end
  resource["service.name"] = named(getenv("OTEL_SERVICE_NAME")) or named(resource["service.name"])
    or telemetry.service_name or "orket"
  -- the process's own id (the semantic conventions' service.instance.id): each process's
  -- metrics are a stream of their own, never taken for another worker's or run's
  if not resource["service.instance.id"] or resource["service.instance.id"] == "" then
    resource["service.instance.id"] = M.instance_id()
  end
  -- (a day at most: a timer's delay, not a way to turn export off)
  local DAY = 86400000
  local delay = url and count_of(getenv, "OTEL_BSP_SCHEDULE_DELAY", DAY, M.SCHEDULE_DELAY_MS, warnings)
  local queue = url and count_of(getenv, "OTEL_BSP_MAX_QUEUE_SIZE", M.QUEUE_LIMIT, M.QUEUE_MAX, warnings)
  -- a batch is never larger than the queue (the specification's rule): a default batch over
  -- a small queue never filled, and every span past the queue waited for the timer, dropped
  local batch = url and count_of(getenv, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", queue or M.QUEUE_MAX,
    math.min(M.BATCH, queue or M.QUEUE_MAX), warnings)
  if queue then batch = math.min(batch or M.BATCH, queue) end
  local interval = murl and count_of(getenv, "OTEL_METRIC_EXPORT_INTERVAL", DAY, M.METRIC_INTERVAL_MS, warnings)
  -- a request's timeout: the signal's own variable, else the shared one (one not good is
  -- said and taken as unset, as the specification orders)
  -- (a timeout: 0, "no limit", to the specification's largest, M.TIMEOUT_MAX)
  local function timeout_of(own)
    return count_of(getenv, own, M.TIMEOUT_MAX, M.TIMEOUTS.total_timeout_ms, warnings, 0)
      or count_of(getenv, "OTEL_EXPORTER_OTLP_TIMEOUT", M.TIMEOUT_MAX, M.TIMEOUTS.total_timeout_ms, warnings, 0)
  end
  local timeout = url and timeout_of("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
  local mtimeout = murl and timeout_of("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT")
  local export = url and count_of(getenv, "OTEL_BSP_EXPORT_TIMEOUT", M.TIMEOUT_MAX, M.EXPORT_TIMEOUT_MS, warnings, 0)
  local mexport = murl and count_of(getenv, "OTEL_METRIC_EXPORT_TIMEOUT", M.TIMEOUT_MAX, M.EXPORT_TIMEOUT_MS, warnings, 0)
  -- W3C trace context on the model calls (a gateway's or a served model's own spans join the
  -- run's trace): on unless OTEL_PROPAGATORS names neither tracecontext nor none's absence
  -- (the specification's list; "none" turns it off, as a name it does not know is warned of)
  local propagate = url ~= nil
  local props = getenv("OTEL_PROPAGATORS")
  if url and props and props:match("%S") then
    propagate = false
    for name in props:gmatch("[^,]+") do
      name = name:match("^%s*(.-)%s*$"):lower()
      if name == "tracecontext" then propagate = true
      elseif name ~= "none" and name ~= "baggage" then
        warnings[#warnings + 1] = string.format("OTEL_PROPAGATORS: %q is not a propagator Orket sends (tracecontext; "
          .. "none): ignored", name)
      end
    end
  end
  -- the shared variable's warning once, though both signals read it
  local seen, said = {}, {}
  for _, w in ipairs(warnings) do
    if not seen[w] then seen[w], said[#said + 1] = true, w end
  end
  return { url = url, metrics_url = murl, headers = headers, metrics_headers = metrics_headers, resource = resource,
    max_request_bytes = telemetry.max_request_bytes, schedule_delay_ms = delay or nil, batch = batch or nil,
    queue_max = queue or nil, metric_interval_ms = interval or nil, timeout_ms = timeout or nil,
    metrics_timeout_ms = mtimeout or nil, export_timeout_ms = export or nil, metrics_export_timeout_ms = mexport or nil,
    propagate = propagate or nil, warnings = said }
end

-- An OTLP attribute list from a table (strings, integers, floats, booleans), keys sorted:
-- the resource's and the metrics'. Written by orket.c.otlpspan, as a span's attributes are:
-- one rule for every attribute's value.
local function attributes(t)
  local keys, values = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do values[i] = t[k] end
  return jsonout.encoded(otlpspan.attributes(keys, values, #keys))
end

-- Each kind of span's attributes, in the order they are exported (sorted). A span's
-- values are a list in this order, nil where the event gave none: the writer (C) leaves
-- those out. `error.type` (first) is set only on a span whose status is ERROR, with the
-- failure's class, as the GenAI conventions ask. A span is written as it ends, into a buffer outside the Lua heap, so it costs
-- no table, id or time text: what a span allocated was most of what it cost (the
-- collector marks and sweeps for every byte a program allocates).
local KEYS = {
  run = { "error.type", "orket.project", "orket.run.id", "orket.run.resumed", "orket.run.status", "orket.run.target",
    "orket.worker" },
  turn = { "error.type", "gen_ai.agent.name", "gen_ai.conversation.id", "gen_ai.operation.name", "gen_ai.provider.name",
    "gen_ai.request.model", "orket.card.id", "orket.model", "orket.outcome", "orket.phase", "orket.project",
    "orket.run.id", "orket.seat", "orket.turn" },
  chat = { "error.type", "gen_ai.conversation.id", "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
    "gen_ai.response.model", "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens", "orket.card.id", "orket.cost.currency", "orket.cost.micros", "orket.project",
    "orket.run.id", "orket.step" },
  tool = { "error.type", "gen_ai.operation.name", "gen_ai.tool.call.id", "gen_ai.tool.name", "orket.card.id", "orket.project",
    "orket.run.id", "orket.tool.code", "orket.tool.denied", "orket.tool.open" },
}
-- the positions of the values a turn's record holds (KEYS.turn's)
local T_ERROR, T_AGENT, T_CONV, T_OP, T_PROVIDER, T_MODEL, T_CARD, T_ORKET_MODEL, T_OUTCOME, T_PHASE, T_PROJECT, T_RUN,
  T_SEAT, T_TURN = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14

local INTERNAL, CLIENT = 1, 3 -- span kinds

local Tracer = {}
Tracer.__index = Tracer

--- instance_id() -> 32 lowercase hex digits, drawn once a process: its
--- service.instance.id. Two processes (workers, `orket run`s side by side) exporting one
--- metric with the same resource were one stream with two writers, whose cumulative
--- totals a backend read as resets.
function M.instance_id()
  M.instance = M.instance or M.new_trace_id() -- (the same 16 random bytes, as hex)
  return M.instance
end

-- Where a configuration's warning goes: "orket: warning: ..." on stderr; orket serve points
-- it at its JSON-lines log. M.warned: those said, each once a process (a server makes a
-- tracer per run).
M.warned = {}
function M.warn(text) io.stderr:write("orket: warning: ", inert.text(text), "\n") end -- a variable's value: inert

--- say(cfg): config's warnings, each through otel.warn once a process.
function M.say(cfg)
  for _, w in ipairs(cfg and cfg.warnings or {}) do
    if not M.warned[w] then
      M.warned[w] = true
      M.warn(w)
    end
  end
end

-- The client metrics' state, one a process for each collector and resource, as an SDK's
-- one MeterProvider: the runs of a process, side by side (a server's) or one after another,
-- add to one set of cumulative histograms, counted from its first call and never reset, so
-- each export is the newest value of one stream with one writer. (A tracer's own, as
-- before, made two runs of a server two writers of one stream, their totals alternating.)
-- M.meters: by metrics endpoint and resource. A meter: hists (by provider, then model),
-- points (its histograms), sums (its cost counters), start (its first call's time), observed (calls counted), timer
-- (its export's, from its first call), via (the tracer that handed it its latest totals,
-- whose sender is its transport), live (its tracers not closed), idle (exports since it had
-- none), body/busy/flusher (its own sender: one slot, one task), exported/dropped/error/
-- last_failed (its exports' counts).
M.meters = {}
-- Every tracer of the process, for drain_all at its stop (weak: a tracer of a run long
-- over goes with its engine; one still sending is held by its sender's task).
M.tracers = setmetatable({}, { __mode = "k" })
-- A meter with no live tracer (its project's endpoint or service name changed in a long
-- serve, or the project no longer served) is forgotten after this many more exports: it
-- sent its last totals, and a later run starts a new stream (a new start time: a reset).
M.METER_IDLE_EXPORTS = 10

-- Keyed by endpoint and resource alone: what else a meter sends by (its interval, headers
-- and timeouts: its first tracer's, and its latest tracer's sender) comes from the
-- environment only, the same for every tracer of a process (orket.lua's telemetry names an
-- endpoint and a service, both in the key). Keying on them too would make two writers of
-- one stream, the series a backend reads as resets.
local function meter_of(cfg)
  if not cfg.metrics_url then return { hists = {}, points = {}, sums = {}, observed = 0, live = 0 } end -- counted, never sent
  local names = {}
  for k in pairs(cfg.resource or {}) do names[#names + 1] = tostring(k) end
  table.sort(names)
  local key = { cfg.metrics_url }
  for _, k in ipairs(names) do key[#key + 1] = k .. "=" .. tostring(cfg.resource[k]) end
  key = table.concat(key, "\0")
  local m = M.meters[key]
  if not m then
    m = { key = key, hists = {}, points = {}, sums = {}, observed = 0, live = 0,
      interval = cfg.metric_interval_ms or M.METRIC_INTERVAL_MS }
    M.meters[key] = m
  end
  return m
end

--- new(cfg, project[, store_id[, worker]]) -> tracer: spans from the engine's events
--- (tracer:event(ev)), exported as cfg (config's) says (its warnings said: otel.say).
--- project: the project's name, an attribute of every span. store_id: the store's own random
--- id (store_identity), from which the trace id of a run recorded without one is made
--- (M.trace_of); without it such a run's start draws one. worker: the name of the orket
--- worker whose runs these are, on each start's run span (orket.worker).
function M.new(cfg, project, store_id, worker)
  M.say(cfg)
  -- the batch's text around its spans, encoded once: the request (OTLP's
  -- ExportTraceServiceRequest in its JSON mapping) with an empty list of spans, cut there
  local doc = jsonout.encode { resourceSpans = { {
    resource = { attributes = attributes(cfg.resource) },
    scopeSpans = { { scope = { name = "orket" }, spans = jsonout.array() } } } } }
  local at = doc:find("%[%]}%]}%]}$")
  local prefix, suffix = doc:sub(1, at - 1), doc:sub(at + 2)
  local tr = setmetatable({ cfg = cfg, project = project, store_id = store_id,
    worker = worker, queue = {}, queued = 0, dropped = 0, exported = 0, failed = 0, oversized = 0, open = {},
    busy = false, pool = "", pool_at = 1, writer = otlpspan.writer(),
    prefix = prefix, suffix = suffix,
    frame = #prefix + #suffix + 2, -- a request's bytes around its spans' text (their list's brackets too)
    -- a model or tool span's values, written over for each (a list made at its size)
    values = { false, false, false, false, false, false, false, false, false, false, false, false, false, false, false } },
    Tracer)
  tr:attach()
  M.tracers[tr] = true
  return tr
end

-- A trace id's 32 hex digits as its two halves (64-bit integers) | nil when they are not
-- one (all zeros is invalid to OTLP).
local function halves(hex)
  if type(hex) ~= "string" or #hex ~= 32 or not hex:match("^%x+$") or not hex:match("[1-9a-fA-F]") then return nil end
  return string.unpack(">i8>i8", (hex:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)))
end

--- new_trace_id() -> 32 lowercase hex digits: a run's trace id, 16 random bytes drawn where
--- the run is first recorded (orket.engine's start, into the run's data as trace_id), and
--- read back by every start of it after (run_start's trace_id).
function M.new_trace_id()
  return (crypto.random_bytes(16):gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

--- trace_of(store_id, run_id) -> hi, lo: the trace id of a run recorded before runs kept
--- their own (trace_id in the run's data), the same at every start of it (two 64-bit
--- integers, its 16 bytes' halves). A hash of the store's random id (orket.store.projects
--- .store_id, which orket restore keeps) and the run's id: a copy of the
--- store (orket restore, pg_dump) keeps that id and gives its next runs
--- ids the original gave too, so only runs recorded before use it.
function M.trace_of(store_id, run_id)
  return halves(crypto.hash(string.format("orket.run.trace\0%s\0%s", store_id, tostring(run_id)), 16))
end

--- run_trace_id(stored, store_id, run_id) -> a run's trace id as its spans carry it, 32
--- lowercase hex digits | nil: stored (its data's trace_id) when it is one, else, for a run
--- recorded before runs kept theirs, trace_of's (store_id: the store's own id), else nil
--- (a store that cannot say its id: each start of such a run draws its own). What the API
--- and `orket runs --json` show: orket.run.id restarts at 1 in every project.
function M.run_trace_id(stored, store_id, run_id)
  if halves(stored) then return stored:lower() end
  if type(store_id) ~= "string" or run_id == nil then return nil end
  local hi, lo = M.trace_of(store_id, run_id)
  return hi and string.format("%016x%016x", hi, lo) or nil
end

-- The GenAI conventions' client metrics and their advised bucket boundaries.
M.TOKEN_BUCKETS = { 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864 }
M.DURATION_BUCKETS = { 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92 }

-- A new histogram of metric `name` for the attributes `attrs`, among the meter's points.
local function histogram(m, name, buckets, attrs)
  local h = { name = name, buckets = buckets, attrs = attrs, counts = {}, count = 0, sum = 0 }
  for i = 1, #buckets + 1 do h.counts[i] = 0 end
  m.points[#m.points + 1] = h
  return h
end

-- The meter's timer, every OTEL_METRIC_EXPORT_INTERVAL ms from its first call for the
-- life of the process, unref'd (it never keeps a process alive): the totals so far, each
-- interval, changed or not, as the SDK's periodic reader does (a quiet series still
-- reported, never taken as gone), through its own sender. With no live tracer, it stops
-- after METER_IDLE_EXPORTS of them and is forgotten.
local function forget(m)
  if m.timer and not m.timer:is_closing() then m.timer:close() end
  m.timer, m.gone = nil, true
  if M.meters[m.key] == m then M.meters[m.key] = nil end
end

-- Hands the meter's totals so far (tr's body of them) to its sender: one slot, a newer body
-- replacing one still waiting (cumulative, it holds it), and one task sending them in turn,
-- so an older, lower total never arrives after a newer one, and never waits behind spans.
-- (m.exported, m.dropped: its exports; m.rejected: the data points partial successes
-- rejected; the process's counts, M.note, count data points)
local function export_meter(tr)
  local m = tr.meter
  local body, points = tr:metrics()
  if not body then return end
  m.body, m.points_n, m.via = body, points, tr
  if m.busy then return end
  m.busy = true
  m.flusher = task.spawn(function()
    while m.body do
      local b, n, via = m.body, m.points_n, m.via
      m.body, m.sending = nil, n
      local url = via.cfg.metrics_url
      local ok, sent, why, reason, rejected = pcall(via.send, via, b, url, via.cfg.metrics_headers, true)
      m.sending = nil
      if m.cut then -- counted dropped at a stop's deadline (end_drain), never twice; a body
        m.cut = nil -- handed over since is a later export's, sent and counted as any
      elseif ok and sent then
        m.exported, m.last_failed = (m.exported or 0) + 1, nil
        rejected = math.min(math.tointeger(rejected) or 0, n)
        if rejected > 0 then m.rejected, m.rejected_error = (m.rejected or 0) + rejected, why end
        M.note("metrics", url, n - rejected, rejected, "rejected", why)
      else
        m.dropped, m.last_failed = (m.dropped or 0) + 1, true
        m.error = ok and why or tostring(sent)
        M.note("metrics", url, 0, n, ok and (reason or "refused") or "invalid", m.error)
      end
    end
    m.busy, m.cut = false, nil
  end)
end

local function start_meter(m)
  m.timer = uv.new_timer()
  m.timer:start(m.interval, m.interval, function()
    local tr = m.via
    if not tr then return end
    local ok, err = pcall(export_meter, tr)
    if not ok then tr.last_error = "a timed export: " .. tostring(err) end
    if m.live == 0 then
      m.idle = (m.idle or 0) + 1
      if m.idle >= M.METER_IDLE_EXPORTS then forget(m) end
    end
  end)
  m.timer:unref()
end

-- tracer:attach(): the tracer uses its configuration's meter (a new one when its own was
-- forgotten), counted live until it closes.
function Tracer:attach()
  if self.attached then return end
  local m = self.meter
  if not m or m.gone then
    m = meter_of(self.cfg)
    self.meter, self.points = m, m.points -- (points: the meter's, read by specs)
  end
  m.live, m.idle, self.attached = m.live + 1, 0, true
end

--- reset(): forgets the process's meters, their timers stopped (for tests: a process's
--- metrics otherwise count from its first call to its end).
function M.reset()
  for _, m in pairs(M.meters) do forget(m) end
  M.meters, M.stop_held = {}, nil
  M.tracers = setmetatable({}, { __mode = "k" })
  for _, h in pairs(M.health) do
    if h.timer and not h.timer:is_closing() then h.timer:close() end
  end
  M.health, M.counts, M.stopping = {}, new_counts(), nil
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

-- The metric of what the calls cost (docs/observability.md): the GenAI conventions have
-- none, and without it a collector's users saw tokens but no money (GET /metrics had it)
M.COST_METRIC = "orket.client.cost"

-- Adds a call's cost (micro-units) in currency to its provider and model's counter of it,
-- made at its first use.
local function add_cost(m, mh, provider, model, micros, currency)
  mh.cost = mh.cost or {}
  local c = mh.cost[currency]
  if not c then
    local attrs = call_attrs(provider, model, nil)
    attrs["orket.cost.currency"] = currency
    c = { name = M.COST_METRIC, attrs = attrs, value = 0 }
    mh.cost[currency] = c
    m.sums[#m.sums + 1] = c
  end
  -- a sum that never wraps, as every sum of costs (orket.cost.plus); below 0 counts as 0
  if micros > 0 then c.value = c.value > math.maxinteger - micros and math.maxinteger or c.value + micros end
end

-- Adds a model call's tokens (integers or nil) and wall time (seconds or nil) to its
-- provider and model's histograms, each made at its first use: two lookups a call.
-- failed: a failed call's class, its duration's `error.type` (the GenAI conventions count a
-- failed operation's duration, told apart by that attribute); its tokens are never counted.
-- micros, currency: its cost (a failed call's charge too), to the cost counter.
function Tracer:observe_call(provider, model, input, output, seconds, failed, micros, currency)
  local m = self.meter
  m.observed, m.start, m.via = m.observed + 1, m.start or now_int(), self
  if self.cfg.metrics_url and not m.timer then start_meter(m) end
  local by = m.hists[provider or false]
  if not by then
    by = {}
    m.hists[provider or false] = by
  end
  local mh = by[model or false]
  if not mh then
    mh = {}
    by[model or false] = mh
  end
  if input then
    mh.input = mh.input
      or histogram(m, "gen_ai.client.token.usage", M.TOKEN_BUCKETS, call_attrs(provider, model, "input"))
    add(mh.input, input)
  end
  if output then
    mh.output = mh.output
      or histogram(m, "gen_ai.client.token.usage", M.TOKEN_BUCKETS, call_attrs(provider, model, "output"))
    add(mh.output, output)
  end
  if seconds and failed then
    mh.failed = mh.failed or {}
    local h = mh.failed[failed]
    if not h then
      local attrs = call_attrs(provider, model, nil)
      attrs["error.type"] = failed
      h = histogram(m, "gen_ai.client.operation.duration", M.DURATION_BUCKETS, attrs)
      mh.failed[failed] = h
    end
    add(h, seconds)
  elseif seconds then
    mh.duration = mh.duration or histogram(m, "gen_ai.client.operation.duration", M.DURATION_BUCKETS,
      call_attrs(provider, model, nil))
    add(mh.duration, seconds)
  end
  if math.type(micros) == "integer" and type(currency) == "string" then
    add_cost(m, mh, provider, model, micros, currency)
  end
end

-- Writes a span that ends now, of this run's trace; a full queue drops it (counted).
-- status: nil for OK, true or a message for ERROR. A full batch is sealed and sent.
-- A batch's request stays under the cap on its size (Tracer:overflow).
function Tracer:write(name, id, parent_id, kind, start_ns, status, keys, values)
  if not self.cfg.url then return end -- the traces not exported (the metrics alone): nothing to build
  local w = self.writer
  local max = self.cfg.queue_max or M.QUEUE_MAX
  if self.queued + w:count() >= max then
    self.dropped = self.dropped + 1
    -- (its text made once a tracer: a backlog drops many)
    self.full_why = self.full_why or string.format("%s: the queue of spans was full (%d: OTEL_BSP_MAX_QUEUE_SIZE): "
      .. "the collector takes them slower than the runs make them", endpoint_of(self.cfg.url), max)
    M.note("traces", self.cfg.url, 0, 1, "queue_full", self.full_why)
    return
  end
  local n, bytes = w:span(name, self.trace_hi, self.trace_lo, id, parent_id, kind, start_ns, now_int(), status, keys,
    values, #keys)
  if bytes + self.frame > (self.cfg.max_request_bytes or M.MAX_REQUEST_BYTES) then self:overflow(n)
  elseif n >= (self.cfg.batch or M.BATCH) then self:flush() end
end

-- The span just written (the writer's n-th) took its batch's request past the cap: the
-- spans before it leave as one request and it begins the next batch. A span that alone
-- passes the cap (a cap set small; its texts are cut, so never the default's) is dropped,
-- counted as oversized and said as the export's last error: no span is lost unsaid.
function Tracer:overflow(n)
  local w, cap = self.writer, self.cfg.max_request_bytes or M.MAX_REQUEST_BYTES
  if n > 1 then
    local body, k = w:take(self.prefix, self.suffix, true)
    self.queue[#self.queue + 1] = { body = body, n = k }
    self.queued = self.queued + k
  end
  local _, bytes = w:count()
  if bytes + self.frame > cap then
    w:take(self.prefix, self.suffix):free()
    self.dropped, self.oversized = self.dropped + 1, self.oversized + 1
    self.last_error = string.format("a span's request would take %d bytes, over the cap of %d "
      .. "(telemetry.max_request_bytes): the span was dropped", bytes + self.frame, cap)
    M.note("traces", self.cfg.url, 0, 1, "invalid", self.last_error)
  end
  self:send_queued()
end

--- tracer:seal(): the spans written so far become one batch of the queue: {body=, n=},
--- body its request's (a jsonout buffer, sent as it is: its bytes are outside the Lua heap)
function Tracer:seal()
  if self.writer:count() == 0 then return end
  local body, n = self.writer:take(self.prefix, self.suffix)
  self.queue[#self.queue + 1] = { body = body, n = n }
  self.queued = self.queued + n
end

-- The open span of a turn, by card and turn (two lookups: a key made of both cost two
-- conversions of a number to text an event).
-- An event without them (none of the engine's) keys on false.
local function turn_of(tr, ev)
  local by = tr.open[ev.card or false]
  return by and by[ev.turn or false]
end

--- tracer:traceparent(card, turn) -> the W3C traceparent header's value for the turn's next
--- model call | nil (traces not exported, OTEL_PROPAGATORS without tracecontext, or no such
--- turn open): its chat span takes the id sent (the model event's), so a gateway's spans
--- that read it are that span's children in the run's trace
function Tracer:traceparent(card, turn)
  if not (self.cfg.url and self.cfg.propagate and self.trace_hi) then return nil end
  local by = self.open[card or false]
  local parent = by and by[turn or false]
  if not parent then return nil end
  local id = random_id(self)
  parent.next_chat = id
  return string.format("00-%016x%016x-%016x-01", self.trace_hi, self.trace_lo, id)
end

local function split_model(spec)
  local p, m = tostring(spec or ""):match("^([^:]+):(.+)$")
  return p, m or spec
end

-- A turn's span ended: its outcome, ERROR for the failures of a turn.
local function end_turn(tr, sp, outcome, message)
  sp[T_OUTCOME] = outcome
  local failed = message or ((outcome == "model_error" or outcome == "engine_error" or outcome == "role_error")
    and tostring(outcome))
  sp[T_ERROR] = failed and tostring(outcome or "cut_short") or nil
  tr:write(sp.name, sp.id, tr.run.id, INTERNAL, sp.start, failed or nil, KEYS.turn, sp)
end

-- an event's optional text (a code, an outcome) as a status message
local function message_of(v) return v ~= nil and tostring(v) or true end

-- an event as spans (Tracer:event's work, unprotected)
local function on_event(self, ev)
  local t = ev.type
  if t == "run_start" then
    -- a run that died open on this engine (an error escaped it, no close since) ends as
    -- failed, in its own trace, as close() ends it: its span and turns were dropped
    if self.run then on_event(self, { type = "run_end", status = "failed" }) end
    -- one trace for the run, whatever process starts, resumes or joins it: the id drawn when
    -- the run was recorded (its data's trace_id); a run recorded before runs kept one, a hash
    -- of the store's id and its own. Each start's run span is a root of its own in it (the
    -- one a crash cut never came); a resume's is marked resumed, a worker's names the worker
    -- (workers work a run side by side: joining it is not resuming it)
    local hi, lo = halves(ev.trace_id)
    if not hi and self.store_id and ev.run_id then hi, lo = M.trace_of(self.store_id, ev.run_id) end
    if not hi then hi, lo = random_id(self), random_id(self) end
    self.trace_hi, self.trace_lo = hi, lo
    self:attach() -- closed since its last run: live again
    self.run = { nil, self.project, ev.run_id, (ev.resumed == true and not self.worker) or nil, nil, ev.target,
      self.worker, name = "orket run " .. tostring(ev.target or ""), id = random_id(self), start = now_int() }
    self:start_timers()
  elseif t == "turn_start" and self.run then
    local provider, model = split_model(ev.model)
    local by = self.open[ev.card or false]
    if not by then
      by = {}
      self.open[ev.card or false] = by
    end
    -- the turn's values in KEYS.turn's order; its model and tool spans read theirs here
    by[ev.turn or false] = { nil, ev.role, string.format("%s/%s/%s", tostring(ev.run_id), tostring(ev.card), tostring(ev.turn)),
      "invoke_agent", provider, model, ev.card, ev.model, nil, ev.phase, self.project, ev.run_id, ev.seat, ev.turn,
      name = "invoke_agent " .. tostring(ev.role), chat = "chat " .. tostring(model), id = random_id(self),
      start = now_int() }
  elseif t == "model" or t == "model_failure" then
    local parent = turn_of(self, ev)
    if not parent then return end
    -- model_failure: a call that failed, with what it was charged when it was (a stream cut
    -- after it began, a refused usage), its fields a model event's and its class: an ERROR
    -- span whose error.type is the class (orket.engine.turn's call_model emits one for each
    -- failed call, canceled ones aside)
    local failed = t == "model_failure" and tostring(ev.class or "model_error") or nil
    -- the call began latency_ms before its event
    local ms = math.tointeger(ev.latency_ms)
    local input, output = math.tointeger(ev.prompt_tokens), math.tointeger(ev.completion_tokens)
    local v = self.values
    -- gen_ai.response.model is the model an answer named: a failed call's event names the
    -- one asked ("provider:model"), which a backend would list as a model of its own
    v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8] = failed, parent[T_CONV], "chat", parent[T_PROVIDER], parent[T_MODEL],
      not failed and ev.response_model or nil, math.tointeger(ev.cached_tokens), input
    v[9], v[10], v[11], v[12], v[13], v[14], v[15] = output, parent[T_CARD], ev.currency, math.tointeger(ev.cost),
      parent[T_PROJECT], parent[T_RUN], ev.step
    -- the id its traceparent sent, when one was (Tracer:traceparent)
    local id = parent.next_chat or random_id(self)
    parent.next_chat = nil
    self:write(parent.chat, id, parent.id, CLIENT, ms and now_int() - ms * 1000000 or now_int(), failed,
      KEYS.chat, v)
    -- the client metrics: a failed call's duration, by its error.type, but never its tokens
    -- (what a cut stream was charged is the span's and docs/cost.md's, not usage)
    local micros = math.tointeger(ev.cost)
    if failed then
      self:observe_call(parent[T_PROVIDER], parent[T_MODEL], nil, nil, ms and ms / 1000, failed, micros, ev.currency)
    else
      self:observe_call(parent[T_PROVIDER], parent[T_MODEL], input, output, ms and ms / 1000, nil, micros, ev.currency)
    end
  elseif t == "tool" then
    local parent = turn_of(self, ev)
    if not parent then return end
    local v = self.values
    -- a call the run's stop left open (ev.open: a full disk met inside it) is not the
    -- tool's failure: resume redoes it. Its status stays unset, orket.tool.open says so.
    local failed = not ev.ok and not ev.open
    v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9] = failed and tostring(ev.code or "failed") or nil,
      "execute_tool", ev.call_id, ev.tool, parent[T_CARD], parent[T_PROJECT], parent[T_RUN], ev.code, ev.denied
    v[10] = ev.open and true or nil
    local ms = math.tointeger(ev.ms)
    self:write("execute_tool " .. tostring(ev.tool), random_id(self), parent.id, INTERNAL,
      ms and now_int() - ms * 1000000 or now_int(), failed and message_of(ev.code) or nil, KEYS.tool, v)
  elseif t == "turn_end" then
    local sp = turn_of(self, ev)
    if not sp then return end
    self.open[ev.card or false][ev.turn or false] = nil
    end_turn(self, sp, ev.outcome)
  elseif t == "run_end" and self.run then
    for card, by in pairs(self.open) do -- turns cut short (a stop): ended with the run
      self.open[card] = nil
      for _, sp in pairs(by) do end_turn(self, sp, sp[T_OUTCOME], "the run ended") end
    end
    local run = self.run
    run[1], run[5] = ev.status == "failed" and "failed" or nil, ev.status
    self:write(run.name, run.id, nil, INTERNAL, run.start, ev.status == "failed" and message_of(ev.status) or nil,
      KEYS.run, run)
    self:stop_timers()
    self.run = nil
    self:flush()
    -- the totals so far, kept counting, after the spans' request has begun (a worker or
    -- server does not wait for them at its exit: the spans go first, as they did)
    export_meter(self)
  end
end

--- tracer:event(ev): the engine's event ev (orket run --json's) as spans. Tracing never
--- fails a run: an event it cannot write (a field of a kind a span cannot hold) costs a
--- counted drop, its error kept as last_error, never an error in the turn that emitted it.
function Tracer:event(ev)
  local ok, err = pcall(on_event, self, ev)
  if not ok then
    self.dropped = self.dropped + 1
    self.last_error = "an event not traced: " .. tostring(err)
    M.note("traces", self.cfg.url, 0, 1, "invalid", self.last_error)
  end
end

-- The process's client metrics (its meter's; OTLP's ExportMetricsServiceRequest in its
-- JSON mapping) and how many data points it holds: cumulative histograms from the meter's
-- first call | nil when there are none. Never reset: each export holds the totals since
-- that start, which a backend takes as the newest value of one series, never adding them up.
function Tracer:metrics()
  local m = self.meter
  if (#m.points == 0 and #m.sums == 0) or not self.cfg.metrics_url then return nil end
  local start_ns = tostring(m.start)
  local now, by_name, list = now_ns(), {}, {}
  local DESC = { ["gen_ai.client.token.usage"] = { "Measures number of input and output tokens used", "{token}" },
    ["gen_ai.client.operation.duration"] = { "GenAI operation duration", "s" } }
  for _, h in ipairs(m.points) do
    local metric = by_name[h.name]
    if not metric then
      metric = { name = h.name, description = DESC[h.name][1], unit = DESC[h.name][2],
        histogram = { aggregationTemporality = 2, dataPoints = {} } }
      by_name[h.name] = metric
      list[#list + 1] = metric
    end
    local counts = {}
    for i, c in ipairs(h.counts) do counts[i] = string.format("%d", c) end
    local dp = { attributes = attributes(h.attrs), startTimeUnixNano = start_ns, timeUnixNano = now,
      count = string.format("%d", h.count), sum = h.sum, bucketCounts = counts, explicitBounds = h.buckets,
      min = h.min, max = h.max }
    table.insert(metric.histogram.dataPoints, dp)
  end
  -- the calls' cost: a cumulative, monotonic sum in micro-units, by currency
  local cost_metric
  for _, c in ipairs(m.sums) do
    if not cost_metric then
      cost_metric = { name = M.COST_METRIC, unit = "{micro-unit}", description = "Cost of the model calls, in "
        .. "millionths of a unit of orket.cost.currency (charged failures included)",
        sum = { aggregationTemporality = 2, isMonotonic = true, dataPoints = {} } }
      list[#list + 1] = cost_metric
    end
    table.insert(cost_metric.sum.dataPoints, { attributes = attributes(c.attrs), startTimeUnixNano = start_ns,
      timeUnixNano = now, asInt = string.format("%d", c.value) })
  end
  -- a value JSON cannot hold costs the metrics, never the run
  local ok, body = pcall(jsonout.encode, { resourceMetrics = { {
    resource = { attributes = attributes(self.cfg.resource) },
    scopeMetrics = { { scope = { name = "orket" }, metrics = list } } } } })
  if not ok then return nil end
  return body, #m.points + #m.sums
end

-- How long the run's end waits for one endpoint, in TIMEOUTS' totals: a backstop for a
-- collector that answers but slowly (one that never answers is given up on at its first
-- request that times out or cannot connect).
M.DRAIN_ALLOWANCES = 3

-- What is read of a collector's answer, and said of its text. OTLP/HTTP answers in the
-- request's encoding (JSON here: Orket sends Content-Type application/json), with a
-- partialSuccess on a 2xx and a google.rpc.Status on an error, a few hundred bytes; the
-- request's max_bytes (ANSWER_MAX) bounds what is read at all, and a body past it is not
-- read. The collector's texts (errorMessage, message) are said cut to MESSAGE_MAX bytes
-- at a character's start, control characters made spaces (it is the collector's text, in
-- a log line or on a terminal).
M.ANSWER_MAX = 65536
M.MESSAGE_MAX = 512

local function collector_text(s)
  if type(s) ~= "string" then return nil end
  s = s:gsub("[%c\127]", " "):gsub("\194[\128-\159]", " "):match("^%s*(.-)%s*$")
  if #s > M.MESSAGE_MAX then
    local cut = M.MESSAGE_MAX
    while cut > 0 and ((s:byte(cut + 1) or 0) & 0xC0) == 0x80 do cut = cut - 1 end
    s = s:sub(1, cut) .. "..."
  end
  return s ~= "" and s or nil
end

-- The answer's JSON object | nil: no body, a body not read whole, another media type than
-- JSON (a gateway's HTML page, protobuf), or not a JSON object
local function answer_json(hr, h)
  local ctype = type(h) == "table" and h["content-type"] or ""
  if ctype ~= "" and not ctype:lower():find("json", 1, true) then ctype = nil end
  local parts = {}
  while true do -- (read whole, as before, so the connection is kept for the next request)
    local ev = hr:read()
    if not ev then
      if ev == nil then parts = nil end -- a body past ANSWER_MAX, or cut
      break
    end
    if parts and ctype then
      for _, chunk in ipairs(ev) do parts[#parts + 1] = chunk end
    end
  end
  if not (ctype and parts and #parts > 0) then return nil end
  local doc = cjson.decode(table.concat(parts))
  return type(doc) == "table" and doc or nil
end

-- An int64 as proto3's JSON mapping writes it (text, or a number) -> integer >= 0 | nil
local function int64(v)
  if type(v) == "string" and v:match("^%d+$") then
    return #v > 18 and math.maxinteger or math.tointeger(tonumber(v))
  end
  if math.type(v) == "integer" then return v >= 0 and v or nil end
  if math.type(v) == "float" and v >= 0 and v == math.floor(v) then
    return v >= 2 ^ 62 and math.maxinteger or math.tointeger(v)
  end
  return nil
end

-- A 429's or 503's Retry-After (RFC 9110: delta-seconds, or an HTTP-date) -> the ms it asks
-- (math.huge past 10^9 s), its text for a message | nil (none, or neither form)
local function retry_after(h)
  local v = type(h) == "table" and h["retry-after"]
  if type(v) ~= "string" then return nil end
  v = v:match("^%s*(.-)%s*$")
  if v:match("^%d+$") then
    if #v > 9 then return math.huge, "more than 10^9 s" end
    local s = math.tointeger(tonumber(v))
    return s * 1000, string.format("%d s", s)
  end
  local at = http.parse_date(v)
  if not at then return nil end
  local s = math.max(0, at - os.time())
  return s * 1000, string.format("%d s (until %s)", s, collector_text(v))
end

-- Sends one request's body (a batch of spans, or to url with headers the metrics, metrics
-- true): true | true, why, "rejected", n (a partial success: the collector took the rest)
-- | false, why, reason (of M.REASONS), each why naming the endpoint and, when it gave one,
-- what the collector said.
-- Each request has its signal's timeout (OTEL_EXPORTER_OTLP_*TIMEOUT, Orket's 5 s by
-- default, 1 s of it to connect); 429 and 503 are sent again after a backoff (200 ms,
-- then 400) or the wait the collector's Retry-After asks when longer, all within the
-- export's own time (OTEL_BSP_EXPORT_TIMEOUT, OTEL_METRIC_EXPORT_TIMEOUT): a wait that
-- would end past it (or past a drain's deadline) is not begun, the batch given up at once.
-- While a drain waits (the run's end, a server's or worker's stop), each endpoint has its
-- own allowance: its requests go on while it answers, up to DRAIN_ALLOWANCES times the
-- request's timeout from its first request, and never past the drain's deadline (drain_by:
-- a stop's); once one times out or cannot connect, what is left for it is dropped at once.
-- Each batch waiting its own full timeout on a collector that took connections and never
-- answered held the process's exit for that many times 5 s; one allowance shared by all the
-- endpoints dropped, unsent, the metrics bound for another, healthy one.
function Tracer:send(body, url, headers, metrics)
  local cfg = self.cfg
  url, headers = url or cfg.url, headers or cfg.headers
  local per, export = cfg.timeout_ms, cfg.export_timeout_ms
  if metrics then per, export = cfg.metrics_timeout_ms, cfg.metrics_export_timeout_ms end
  per, export = per or M.TIMEOUTS.total_timeout_ms, export or M.EXPORT_TIMEOUT_MS
  local said = export -- (the export's timeout as its variable gave it, for its message)
  local var = metrics and "OTEL_METRIC_EXPORT_TIMEOUT" or "OTEL_BSP_EXPORT_TIMEOUT"
  -- 0, no limit: the other layer bounds it (both 0: the specification's largest timeout)
  if per == 0 and export == 0 then per, export = M.NO_LIMIT_MS, M.NO_LIMIT_MS
  elseif per == 0 then per = export
  elseif export == 0 then export = (M.RETRIES + 1) * per + M.BACKOFF_MS * ((1 << M.RETRIES) - 1) end
  per = math.min(per, M.NO_LIMIT_MS)
  -- the bound the messages name: the one that applied, never "0 ms"
  local took = string.format("%d ms (%s)", said, var)
  if said == 0 then
    took = string.format("%d ms (%s=0: %s)", export, var, export == M.NO_LIMIT_MS
      and "its requests' timeout 0 too, a day" or string.format("its %d requests and their backoff", M.RETRIES + 1))
  end
  local where = endpoint_of(url)
  uv.update_time()
  local export_by = uv.now() + export
  local ending = self.ending and self.ending[where]
  if self.ending and not ending then
    ending = { by = math.min(uv.now() + M.DRAIN_ALLOWANCES * per, self.drain_by or math.huge) }
    self.ending[where] = ending
  end
  for attempt = 0, M.RETRIES do
    local total = per
    if ending then
      if ending.dead then return false, ending.dead, ending.dead_reason end
      uv.update_time()
      -- (the drain's deadline re-read: a stop signal may have cut it since, Tracer:cut_drain)
      if self.drain_by and self.drain_by <= uv.now() then
        return false, string.format("%s: not sent %s", where, self:deadline_text()), "deadline"
      end
      local left = ending.by - uv.now()
      if left <= 0 then
        return false, string.format("%s took more than %d ms in all at the %s", where,
          math.min(M.DRAIN_ALLOWANCES * per, self.drain_ms or math.huge), self.drain_by and "process's stop" or "run's end"),
          "deadline"
      end
      if self.drain_by then left = math.min(left, self.drain_by - uv.now()) end
      total = math.min(total, left)
    end
    uv.update_time()
    local left = export_by - uv.now()
    if left <= 0 then
      return false, string.format("%s: the export took more than %s", where, took), "deadline"
    end
    total = math.min(total, left)
    local connect = math.min(M.TIMEOUTS.connect_timeout_ms, total)
    local hr <close>, err, code = http.request { url = url, method = "POST", headers = headers,
      body = body, max_bytes = M.ANSWER_MAX, connect_timeout_ms = connect, total_timeout_ms = total }
    local status, h
    if hr then status, h, code = hr:headers() end
    if not status then -- no answer: while draining, the rest for this endpoint is not sent
      local why = tostring(hr and h or err)
      if not why:find(where, 1, true) then why = where .. ": " .. why end
      local reason = code == "timeout" and "timeout" or "unreachable"
      -- (the drain may have begun while this request waited)
      ending = ending or (self.ending and self.ending[where])
      if self.ending and not ending then
        ending = { by = uv.now() }
        self.ending[where] = ending
      end
      if ending then
        ending.dead = string.format("%s (at the %s; what was left for it was not sent)", why,
          self.drain_by and "process's stop" or "run's end")
        ending.dead_reason = reason
      end
      return false, why, reason
    end
    local doc = answer_json(hr, h)
    if status >= 200 and status < 300 then
      -- a partial success: what the collector rejected is dropped, and said with its message
      local partial = doc and (doc.partialSuccess or doc.partial_success)
      local rejected = type(partial) == "table" and int64(metrics and (partial.rejectedDataPoints
        or partial.rejected_data_points) or (partial.rejectedSpans or partial.rejected_spans))
      if not rejected or rejected == 0 then return true end
      local text = collector_text(partial.errorMessage or partial.error_message)
      return true, where .. ": rejected by the collector (a partial success)" .. (text and ("; it said: " .. text) or ""),
        "rejected", rejected
    end
    -- an error's google.rpc.Status: its message, said with the status (which ends the text)
    local text = doc and collector_text(doc.message)
    local answered = text and string.format('the collector answered "%s" with HTTP %d', text, status)
      or string.format("HTTP %d", status)
    if (status ~= 429 and status ~= 503) or attempt == M.RETRIES then
      return false, where .. ": " .. answered, (status == 429 or status == 503) and "throttled" or "refused"
    end
    -- the backoff, or the wait Retry-After asks when longer; one that would end past the
    -- export's time (or the drain's) is not begun: the retry after it could not be made
    local backoff = M.BACKOFF_MS * (1 << attempt)
    local asked, asked_text = retry_after(h)
    local wait = math.max(backoff, asked or 0)
    uv.update_time()
    if export_by - uv.now() <= wait then
      if asked and asked > backoff then
        return false, string.format("%s: %s, and the collector asked to wait %s (Retry-After), more than is left "
          .. "of the export's %s: not sent again", where, answered, asked_text, took), "throttled"
      end
      return false, string.format("%s: %s, and the export took more than %s", where, answered, took), "throttled"
    end
    if ending and math.min(ending.by, self.drain_by or math.huge) - uv.now() <= wait then
      return false, string.format("%s: %s, and no time was left for a retry at the %s%s", where, answered,
        self.drain_by and "process's stop" or "run's end", asked and asked > backoff
          and string.format(" (the collector asked to wait %s, Retry-After)", asked_text) or ""), "throttled"
    end
    rt.sleep(wait)
  end
  return false, where .. ": retries spent", "throttled"
end

--- tracer:flush(): sends what is queued, in batches, from a task of its own (one at a
--- time); returns at once. A batch that cannot be sent is dropped and counted.
function Tracer:flush()
  self:seal()
  self:send_queued()
end

-- Sends the batches queued, from a task of its own (one at a time), leaving the writer's
-- spans where they are: flush seals them first. (The metrics have their meter's sender.)
function Tracer:send_queued()
  if self.busy or #self.queue == 0 then return end
  self.busy = true
  self.flusher = task.spawn(function()
    while #self.queue > 0 do
      local batch = table.remove(self.queue, 1)
      self.queued, self.sending = self.queued - batch.n, batch.n
      local ok, sent, why, reason, rejected = pcall(self.send, self, batch.body)
      self.sending = nil
      batch.body:free() -- sent or dropped: its bytes go now, not when the collector comes
      if self.cut then -- counted dropped at a stop's deadline (end_drain), never twice
        self.cut = nil
      elseif ok and sent then
        -- a partial success: what the collector rejected (at most the batch) is dropped
        rejected = math.min(math.tointeger(rejected) or 0, batch.n)
        self.exported, self.dropped = self.exported + batch.n - rejected, self.dropped + rejected
        if rejected > 0 then
          self.last_error = why
          if self.ending then self.drain_error = why end
        end
        M.note("traces", self.cfg.url, batch.n - rejected, rejected, "rejected", why)
      else
        self.dropped, self.failed = self.dropped + batch.n, self.failed + 1
        self.last_error = ok and why or tostring(sent)
        -- (the drain's own reason, kept even when it repeats an earlier one: drain_all)
        if self.ending then self.drain_error = self.last_error end
        M.note("traces", self.cfg.url, 0, batch.n, ok and (reason or "refused") or "invalid", self.last_error)
      end
    end
    self.busy = false
  end)
end

-- A timer calling fn(self) every ms on the loop, unref'd: it never keeps a process alive
-- after its run. A tick only seals what was written and starts the exporter's task
-- (send_queued): the engine never waits on the collector. A tick's failure is the export's
-- last error, never the run's.
local function every(self, ms, fn)
  local t = uv.new_timer()
  t:start(ms, ms, function()
    local ok, err = pcall(fn, self)
    if not ok then self.last_error = "a timed export: " .. tostring(err) end
  end)
  t:unref()
  return t
end

--- tracer:start_timers(): at a run's start, the spans written so far leave every
--- OTEL_BSP_SCHEDULE_DELAY ms, so a start killed or crashed loses only what its last tick
--- had not sent. (The metrics leave on their meter's timer, one a process: start_meter.)
function Tracer:start_timers()
  self:stop_timers()
  if self.cfg.url then
    self.span_timer = every(self, self.cfg.schedule_delay_ms or M.SCHEDULE_DELAY_MS, Tracer.tick_spans)
  end
end

--- tracer:stop_timers(): at the run's end (its flush sends the rest), at close and drain.
function Tracer:stop_timers()
  local t = self.span_timer
  self.span_timer = nil
  if t and not t:is_closing() then t:close() end
end

--- tracer:close(): its engine is closed. A run it never ended (an error escaped after
--- run_start, so no run_end came) ends here as failed: its open turns, its run span and the
--- metrics so far are sent, and its timer stops (it pinned the tracer for the life of a
--- server).
function Tracer:close()
  if self.run then self:event { type = "run_end", status = "failed" } end
  self:stop_timers()
  if self.attached then -- one tracer fewer on its meter; one never counting is forgotten now
    local m = self.meter
    self.attached, m.live = false, m.live - 1
    if m.live == 0 and not m.timer and m.key then forget(m) end
  end
end

-- the spans timer's tick: what was written leaves as a batch (the queue's too, its sender
-- idle). While a request is in flight the spans stay in the writer, so a collector slower
-- than the tick gets them as fewer, fuller requests (a batch leaves full at BATCH spans, as
-- the specification's batch processor does), not one small request a tick piling up behind
-- it for the run's end to drop.
function Tracer:tick_spans()
  if self.busy then return end
  if self.writer:count() > 0 then self:flush() else self:send_queued() end
end

--- tracer:drain([within_ms]) -> stats: waits for the spans queued and the metrics handed
--- to their sender (the run's end's, close's) to be sent (or dropped). Call it in a task.
--- Each endpoint is given its own allowance (Tracer:send); what it learnt (a dead collector)
--- lasts this drain only, so a later drain tries again. within_ms (a process's stop): no
--- wait past it, a request still in flight then left to the process's exit. Without it, a
--- stop signal may still cut the wait (Tracer:cut_drain).
function Tracer:drain(within_ms)
  uv.update_time()
  local by = within_ms and uv.now() + within_ms
  self:begin_drain(by, within_ms)
  return self:end_drain()
end

-- A drain's start: the run ended (close), the rest sealed and handed to the sender, each
-- endpoint's allowance from now, none past by (nil: the allowances alone).
function Tracer:begin_drain(by, within_ms)
  self:close()
  self.ending, self.drain_by, self.drain_ms, self.drain_cut, self.drain_error = {}, by, within_ms, nil, nil
  self.before = { exported = self.exported, dropped = self.dropped, error = self.last_error }
  self:flush()
end

--- tracer:cut_drain(): a stop signal came while the drain waits (orket run's end, whose
--- wait is bounded only by the exporter's timeouts, a day at most): it ends now, what was
--- not sent counted dropped and said, as at a server's stop. Nothing when not draining.
function Tracer:cut_drain()
  if not self.ending then return end
  uv.update_time()
  self.drain_by, self.drain_cut = uv.now(), true
end

-- what a drain's deadline was, for the messages of what it cut
function Tracer:deadline_text()
  if self.drain_cut then return "before the stop signal that ended the wait" end
  if self.drain_ms == 0 then
    return string.format("in time: no time was left of the stop's %d s", M.STOP_BUDGET_MS // 1000)
  end
  return string.format("within %d ms of the process's stop", self.drain_ms)
end

-- A drain's wait: the spans' sender and the meter's done, or its deadline (drain_by, re-read
-- at each poll: a stop signal may set it later) passed -> stats. What is still queued then
-- is counted dropped, said as the last error.
function Tracer:end_drain()
  local m = self.meter
  while (self.busy or m.busy) and uv.now() < (self.drain_by or math.huge) do rt.sleep(10) end
  if self.busy then
    self.last_error = string.format("%s did not take the last spans %s", endpoint_of(self.cfg.url),
      self:deadline_text())
    self.drain_error = self.last_error
    -- counted dropped now, as the process exits before they are sent: the batch in flight
    -- is not counted again when its request ends (cut), and those queued are let go
    local lost = self.queued + (self.sending or 0)
    self.dropped = self.dropped + lost
    M.note("traces", self.cfg.url, 0, lost, "deadline", self.last_error)
    for _, b in ipairs(self.queue) do b.body:free() end
    self.queue, self.queued, self.cut = {}, 0, self.sending ~= nil
  end
  if m.busy and not m.cut then -- (a meter several tracers share: counted once a stop)
    m.cut, m.body = true, nil
    m.dropped, m.last_failed = (m.dropped or 0) + 1, true
    m.error = string.format("%s did not take the last metrics %s", endpoint_of(self.cfg.metrics_url),
      self:deadline_text())
    M.note("metrics", self.cfg.metrics_url, 0, m.sending or 0, "deadline", m.error)
  end
  self.ending, self.drain_by, self.drain_ms, self.drain_cut = nil, nil, nil, nil
  return self:stats()
end

--- mark_stop(): a process's stop signal came. What its tracers and meters export or drop
--- from now on is its stop's, counted by drain_all though it happened before the drain
--- began: a server's runs stop at the signal and their ends' exports leave at once, but its
--- drain waits for its workers' (5 s); a collector that never answers failed those exports
--- (5 s each) before then, and the loss was said nowhere. Only the first call counts. The
--- tracers are held till the process ends (M.tracers is weak: a stopped run's engine may go
--- before the drain, and its loss with it).
function M.mark_stop()
  M.stop_held = M.stop_held or {}
  for tr in pairs(M.tracers) do
    M.stop_held[tr] = true
    tr.stop_mark = tr.stop_mark or { exported = tr.exported, dropped = tr.dropped, error = tr.last_error }
    local m = tr.meter
    if m and not m.stop_mark then
      m.stop_mark = { exported = m.exported or 0, dropped = m.dropped or 0, rejected = m.rejected or 0 }
    end
  end
  if not M.stopping then stop_health() end
end

--- drain_all(within_ms) -> stats: every tracer of the process drained at once (a server's
--- runs each had their own), within within_ms in all (M.SHUTDOWN_MS at a stop). What this
--- stop did alone (from its signal on, mark_stop, else from this drain's start), never what
--- earlier runs' tracers still alive counted: exported,
--- dropped (last_error: the reason of one of them, said during this drain),
--- metrics_exported, metrics_dropped, metrics_last_failed and metrics_error (a meter's
--- last export of this drain failed), metrics_rejected and metrics_rejected_error (data
--- points partial successes rejected). Call it in a task, once the runs have stopped.
function M.drain_all(within_ms)
  uv.update_time()
  local by, list = uv.now() + within_ms, {}
  for tr in pairs(M.tracers) do list[#list + 1] = tr end
  local meters, mlist = {}, {}
  for _, tr in ipairs(list) do
    local m = tr.meter
    if m and not meters[m] then -- a meter shared by tracers counted once
      meters[m] = m.stop_mark or { exported = m.exported or 0, dropped = m.dropped or 0, rejected = m.rejected or 0 }
      mlist[#mlist + 1] = m
    end
  end
  for _, tr in ipairs(list) do tr:begin_drain(by, within_ms) end
  local out = { exported = 0, dropped = 0, metrics_exported = 0, metrics_dropped = 0, metrics_rejected = 0 }
  for _, tr in ipairs(list) do
    local before = tr.stop_mark or tr.before
    local st = tr:end_drain()
    local dropped = st.dropped - before.dropped
    out.exported, out.dropped = out.exported + st.exported - before.exported, out.dropped + dropped
    if dropped > 0 then -- (this drain's reason, though an earlier export failed the same way)
      out.last_error = tr.drain_error or (st.last_error ~= before.error and st.last_error) or out.last_error
    end
  end
  for _, m in ipairs(mlist) do
    local exported, dropped = (m.exported or 0) - meters[m].exported, (m.dropped or 0) - meters[m].dropped
    out.metrics_exported, out.metrics_dropped = out.metrics_exported + exported, out.metrics_dropped + dropped
    if dropped > 0 and m.last_failed then out.metrics_last_failed, out.metrics_error = true, m.error end
    local rejected = (m.rejected or 0) - (meters[m].rejected or 0)
    if rejected > 0 then
      out.metrics_rejected, out.metrics_rejected_error = out.metrics_rejected + rejected, m.rejected_error
    end
  end
  return out
end

--- drop_lines(st) -> texts: what a drain's stats (drain, drain_all) say was lost, for its
--- command to write as its own (orket run and orket worker on stderr, serve in its log):
--- spans dropped (a partial success's rejected ones too), metrics whose last export failed
--- (one that went after a failed one carried all the failed one had), and data points a
--- partial success rejected.
function M.drop_lines(st)
  local out = {}
  if st.dropped > 0 then
    out[1] = string.format("traces: %d spans exported, %d dropped (%s)", st.exported, st.dropped,
      tostring(st.last_error or "queue full"))
  end
  if st.metrics_last_failed then out[#out + 1] = string.format("metrics: not exported (%s)", tostring(st.metrics_error)) end
  if (st.metrics_rejected or 0) > 0 then
    out[#out + 1] = string.format("metrics: %d data points rejected (%s)", st.metrics_rejected,
      tostring(st.metrics_rejected_error))
  end
  return out
end

--- stop_within(elapsed_ms) -> ms: how long orket serve's drain may wait, elapsed_ms after
--- its stop's signal: SHUTDOWN_MS, or what is left of STOP_BUDGET_MS when less (0 at most).
function M.stop_within(elapsed_ms)
  return math.max(0, math.min(M.SHUTDOWN_MS, M.STOP_BUDGET_MS - elapsed_ms))
end

--- stop_drain(within_ms) -> texts: drain_all for a process's stop, its losses as drop_lines
--- (a drain that failed, said too, never silent). Call it in a task.
function M.stop_drain(within_ms)
  local ok, st = pcall(M.drain_all, within_ms)
  if not ok then return { "telemetry drain: " .. tostring(st) } end
  return M.drop_lines(st)
end

--- tracer:stats() -> {exported=, dropped=, queued=, failed= (batches), oversized= (spans
--- dropped, each alone over the cap on a request's size, counted in dropped too; nil when
--- none), last_error=,
--- metrics_exported=, metrics_dropped=, metrics_error=, metrics_last_failed= (true when its
--- meter's last export failed: a later one that went holds all an earlier one had),
--- metrics_rejected= (data points partial successes rejected; nil when none), metrics_rejected_error=}
function Tracer:stats()
  local m = self.meter
  return { exported = self.exported, dropped = self.dropped, queued = self.queued + self.writer:count(), failed = self.failed,
    oversized = self.oversized > 0 and self.oversized or nil, last_error = self.last_error,
    metrics_exported = m.exported or 0, metrics_dropped = m.dropped or 0, metrics_error = m.error,
    metrics_last_failed = m.last_failed, metrics_rejected = m.rejected, metrics_rejected_error = m.rejected_error }
end

return M
