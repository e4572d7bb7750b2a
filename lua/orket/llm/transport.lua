-- orket.llm.transport: one chat call to an HTTP provider (openai or ollama wire format):
-- attempts over orket.c.http with timeouts and size caps, classification of each failure,
-- retries with exponential backoff, jitter and Retry-After, and a per-provider limit on
-- requests in flight. Keys come from the provider's private state, never from config.
local http = require "orket.c.http"
local rt = require "orket.c.runtime"
local json = require "cjson.safe"
local common = require "orket.llm.common"
local cost = require "orket.cost"
local inert = require "orket.inert"

local M = {}

local body_hint -- (below)

M.WIRES = { openai = require "orket.llm.openai", ollama = require "orket.llm.ollama" }

M.DEFAULT_TIMEOUTS = { connect_ms = 10000, first_byte_ms = 120000, idle_ms = 60000, total_ms = 600000 }
M.DEFAULT_RETRY = { max_attempts = 4, base_ms = 500, max_ms = 30000 }
M.DEFAULT_CONCURRENCY = 16
M.DEFAULT_MAX_BYTES = 16 << 20

-- ---- one attempt ---------------------------------------------------------------------------

local function retry_after_ms(h)
  local best
  local ms = tonumber(h["retry-after-ms"])
  if ms and ms >= 0 then best = ms end
  local ra = h["retry-after"]
  if ra then
    local s = tonumber(ra)
    if not s then
      local at = http.parse_date(ra)
      if at then s = math.max(0, at - os.time()) end
    end
    if s and s >= 0 and (best == nil or s * 1000 > best) then best = s * 1000 end
  end
  return best
end

local function read_all(hr, cap)
  local parts, n = {}, 0
  while true do
    local ev, msg, code, phase = hr:read()
    if ev == false then break end
    if ev == nil then return nil, msg, code, phase end
    for _, s in ipairs(ev) do
      parts[#parts + 1] = s
      n = n + #s
    end
    if cap and n > cap then break end
  end
  return table.concat(parts)
end

local function transport_error(msg, code, phase)
  if code == "timeout" then
    return common.err("timeout", msg .. " (" .. tostring(phase) .. " timeout)",
      { retryable = phase == "connect", phase = phase })
  elseif code == "canceled" then
    return common.err("canceled", msg)
  elseif code == "transient" then
    return common.err("transient", msg)
  end
  return common.err("bad_request", msg) -- too_large, bad URL, malformed reply
end

-- Whether a failure to get headers is a refused connection to this machine (nothing
-- listens there): code and msg as hr:headers() gives them. Never one through a proxy (the
-- HTTP client names it in the message): the refusal was the proxy's, not the model server's.
-- (The client sends nothing on this machine through a proxy; this is in case it ever does.)
local function refused_here(code, msg, url)
  return code == "transient" and common.refused(msg) and common.is_loopback(url)
    and not tostring(msg):find(" (through the proxy ", 1, true)
end

-- The wire state: what the binding decoded (noting when its first piece arrived, as emit
-- would have), or a fresh decoder for a caller that takes the pieces one by one.
local function stream_state(hr, wire, started, emit_deltas, emit)
  local d = hr:decoded()
  local st
  if d then
    st = wire.from_decoded(d)
    if d.first_delta_ms then emit(false, d.first_delta_ms) end
  else
    st = wire.new_state()
    st.deltas = emit_deltas -- build delta tables only for a caller that takes them
  end
  st.started = started
  return st
end

-- The provider's table under field, made at its first use.
local function kept(p, field)
  local t = p[field]
  if not t then
    t = {}
    p[field] = t
  end
  return t
end

-- Runs one HTTP attempt. Returns a result, or nil and a failure record.
-- The request header lines for a provider, streamed or not: the same with every request,
-- so made once (the HTTP binding then reuses its header list too).
local function request_headers(p, wire, stream)
  local cache = kept(p, "request_headers")
  local headers = cache[stream]
  if headers then return headers end
  headers = { "Content-Type: application/json", "Accept: " .. (stream and (wire.framing == "sse" and "text/event-stream" or "application/x-ndjson") or "application/json") }
  if p.key then headers[#headers + 1] = "Authorization: Bearer " .. p.key end
  for k, v in pairs(p.conf.headers or {}) do headers[#headers + 1] = k .. ": " .. v end
  cache[stream] = headers
  return headers
end

--- rekeyed(p): p.key was replaced (orket.llm reads a secret again when its store changes):
--- the header lines made with the old one are made again at the next request
function M.rekeyed(p) p.request_headers = nil end

-- Kept texts of a request body's members other than its messages, per provider; past this
-- many the provider's are dropped and made again (a caller varying max_tokens, say).
local TAILS_MAX = 32

-- The text of body (from wire.build): its messages, encoded per request, then the text of
-- its other members and the tools' (tools_text, from common.wire_tools), as its last
-- member. Without options, a tool_choice table or tools given as tables, the other members
-- are a function of the provider, the model, stream, max_tokens, tool_choice and the tools
-- (see the wire formats' build), so their text is kept and reused. -> text | nil, message
local function request_text(p, body, tools_text, req, model, stream)
  local msgs = body.messages
  body.messages = nil -- the table is build's, made for this request
  local tails, key, tail = p.request_tails, nil, nil
  if req.options == nil and body.tools == nil and type(req.tool_choice) ~= "table" then
    -- the model last: the fields before it hold no NUL, so no two requests share a key.
    -- Each model's last key is kept with what it was made of (its requests repeat them;
    -- seats on different models take turns), emptied with the tails' keep below.
    local keys = kept(p, "request_keys")
    local last = keys[model]
    if last and last[1] == stream and last[2] == req.max_tokens and last[3] == req.tool_choice then
      key = last[4]
    else
      key = tostring(stream) .. "\0" .. tostring(req.max_tokens) .. "\0" .. tostring(req.tool_choice) .. "\0" .. model
      keys[model] = { stream, req.max_tokens, req.tool_choice, key }
    end
    local by_tools = tails and tails[key]
    tail = by_tools and by_tools[tools_text or false]
  end
  if not tail then
    local rest, err = json.encode(body)
    if not rest then return nil, err end
    -- body holds model and stream at least: its text is an object with members
    assert(rest:byte(1) == 0x7b and rest:byte(-1) == 0x7d and #rest > 2, "llm: a request body must be a JSON object with members")
    tail = "," .. rest:sub(2, -2) .. (tools_text and (',"tools":' .. tools_text) or "") .. "}"
    if key then
      if not tails or tails.n >= TAILS_MAX then
        tails = { n = 0 }
        p.request_tails = tails
        p.request_keys = nil
      end
      local by_tools = tails[key]
      if not by_tools then
        by_tools = {}
        tails[key] = by_tools
      end
      by_tools[tools_text or false] = tail
      tails.n = tails.n + 1
    end
  end
  local text, err = json.encode(msgs)
  if not text then return nil, err end
  return '{"messages":' .. text .. tail
end

-- the most bytes of a failure's message (its sources quote a server's text shorter)
local MESSAGE_MAX = 2000

-- the most bytes of a name a server gives (its model, a call's id and name, the request's id)
M.NAME_MAX = 256

-- s cut to NAME_MAX bytes, with how long it was (orket.inert.clip) | s when not a long string
local function clipped(s)
  if type(s) ~= "string" or #s <= M.NAME_MAX then return s end
  return inert.clip(s, M.NAME_MAX)
end

-- The Content-Encoding of a body that is compressed (gzip, br, deflate...) | nil: Orket
-- asks for none and decodes none, so such a body reads as no JSON at all.
local function encoded_body(h)
  local enc = h["content-encoding"]
  if enc and enc:find("%S") and not enc:lower():match("^%s*identity%s*$") then return inert.quote(enc, 60) end
  return nil
end

-- What a 200 body that could not be read was, by its headers: " (the server ...)" | "".
body_hint = function(h, stream)
  local enc = encoded_body(h)
  if enc then
    return string.format(" (the server sent the body compressed, Content-Encoding %s, which Orket does not ask for "
      .. "nor decode: a proxy before the model server compresses it)", enc)
  end
  local ctype = h["content-type"] and inert.quote(h["content-type"], 100)
  if not stream and ctype and not ctype:find("json") then
    local what = ctype:find("event%-stream") and "a stream of events, not a whole JSON answer (does the server stream "
      .. "whatever it is asked?)" or ctype:find("ndjson") and "lines of JSON, not one JSON answer"
      or "not JSON: is base_url a model server's API?"
    return string.format(" (the server answered 200 with Content-Type %s, %s)", ctype, what)
  end
  return ""
end

-- Closes with an attempt however it ends: a task cancelled while it waits (its run stopped)
-- is not resumed, so req.sent_whole tells its caller whether the server had the whole
-- request, which it bills (chat clears it when the attempt returns).
local SENT_MARK = { __close = function(m) m.req.sent_whole = m.hr:sent() or nil end }

local function attempt(p, wire, model, req, stream, deadline, emit, emit_deltas)
  local url, body, tools_text = wire.build(p.conf, model, req, stream)
  local encoded, jerr = request_text(p, body, tools_text, req, model, stream)
  if not encoded then return nil, common.err("bad_request", "llm: cannot encode the request: " .. tostring(jerr)) end
  local headers = request_headers(p, wire, stream)
  if req.traceparent then -- (the run's trace context: a copy, the kept list is every call's)
    headers = table.move(headers, 1, #headers, 1, {})
    headers[#headers + 1] = "traceparent: " .. req.traceparent
  end
  local t = p.timeouts
  local total = t.total_ms
  if deadline then
    local left = deadline - rt.now()
    if left <= 0 then
      return nil, common.err("timeout", "llm: " .. (req.timeout_source or "the call's timeout_ms") .. " ran out",
        { retryable = false, phase = "total" })
    end
    if total == 0 or left < total then total = math.max(1, math.floor(left)) end
  end
  local started = rt.now()
  -- Without an on_delta nobody needs the events one by one: the binding decodes the
  -- stream in C as it arrives and the task wakes once, at the end (see docs/llm.md).
  -- http.request reads its options before it returns, so one table per provider serves
  -- every request; each field that varies is set every time.
  local o = p.request_opts
  if not o then
    o = { method = "POST", connect_timeout_ms = t.connect_ms, first_byte_timeout_ms = t.first_byte_ms,
      idle_timeout_ms = t.idle_ms, max_bytes = p.max_bytes }
    p.request_opts = o
  end
  o.url, o.headers, o.body, o.total_timeout_ms = url, headers, encoded, total
  o.framing = stream and wire.framing or "raw"
  o.decode = stream and not emit_deltas and p.conf.kind or nil
  local hr <close>, herr = http.request(o)
  o.body = nil -- not kept alive by the provider
  if not hr then return nil, common.err("bad_request", herr) end
  local _ <close> = setmetatable({ hr = hr, req = req }, SENT_MARK)
  local status, h, code, phase = hr:headers()
  if not status then
    local e = transport_error(h, code, phase)
    -- nothing accepts connections on this machine's port: retried like any connection
    -- error (a local server may be restarting), then reported as what it most likely is
    if refused_here(code, h, url) then e.refused_local = true end
    -- no socket could be made here (core/http.c's words for EMFILE, ENFILE: this process's,
    -- never a server's text, as no answer came): the machine's fault, not the provider's
    if code == "transient" and tostring(h):find(": no socket could be opened (", 1, true) then e.host_fault = true end
    return nil, e
  end
  if status < 200 or status > 299 then
    local text = read_all(hr, 65536) or ""
    local msg, obj = common.error_text(text)
    local class, retryable = common.classify_status(status, obj)
    if status >= 300 and status < 400 then
      msg = "redirect to " .. inert.quote(h.location, 300) .. " not followed (fix base_url)"
    end
    return nil, common.err(class, string.format("HTTP %d: %s", status, msg),
      { retryable = retryable, retry_after_ms = retry_after_ms(h), status = status })
  end
  local st
  if stream then
    while true do
      local ev, msg, ecode, ephase = hr:read()
      if ev == false then break end
      -- with decode=, an event comes here only when the decoder failed on it (and every
      -- event after it); on a failure this notes whether pieces had arrived (then it is
      -- not retried)
      st = st or stream_state(hr, wire, started, emit_deltas, emit)
      if ev == nil then
        -- one event past the framer's cap (1 MiB): a whole answer of the same size, not
        -- streamed, is taken up to max_response_bytes
        if ecode == "too_large" and tostring(msg):find("streamed event", 1, true) then
          msg = string.format("%s (1 MiB; models.providers.%s.stream = false takes its answers whole, up to "
            .. "max_response_bytes)", msg, p.name)
        end
        return nil, transport_error(msg, ecode, ephase)
      end
      for _, data in ipairs(ev) do
        local e = wire.on_event(st, data, emit)
        if e then return nil, e end
      end
    end
    st = st or stream_state(hr, wire, started, emit_deltas, emit)
    st.stream_done = hr:stream_done() -- [DONE] came: the stream is whole
  else
    st = wire.new_state()
    st.started = started
    st.deltas = emit_deltas -- the whole answer arrives as one delta
    local text, msg, ecode, ephase = read_all(hr)
    if not text then return nil, transport_error(msg, ecode, ephase) end
    local e = wire.parse(st, text, emit)
    if e then
      -- a whole 200 answer of JSON the wire format could not read (a repeated key, a field
      -- of the wrong type) was the model's work, and billed: charged as a cut answer is,
      -- never asked again unpaid. A body that is no JSON at all (a proxy's page) was not,
      -- nor the server's own refusal ({"error": ...}: no answer was made).
      local doc = json.decode(text)
      if type(doc) == "table" and doc.error == nil then e.billed = true end
      -- a body that is no JSON says what it is when its headers do (a proxy's page, a
      -- compressed body), as a stream's does below
      if doc == nil then e.message = e.message .. body_hint(h, false) end
      return nil, e
    end
  end
  local content, calls, finish, usage, smodel, id = wire.finish(st, stream)
  if content == nil then
    -- a 200 that was no stream at all (a web page, a proxy's text) says so, not just
    -- that the stream ended early
    local ctype = h["content-type"] and inert.quote(h["content-type"], 100)
    local coded = encoded_body(h)
    if stream and coded and calls and calls.message then
      calls.message = calls.message .. body_hint(h, true)
    elseif stream and ctype and not ctype:find("event%-stream") and not ctype:find("json") and calls and calls.message then
      calls.message = string.format("%s (the server answered 200 with Content-Type %s, not a stream of events: is base_url a model server's API?)",
        calls.message, ctype)
    elseif stream and ctype and ctype:find("json") and not ctype:find("ndjson") and p.conf.kind == "openai"
      and calls and calls.message then
      -- a server (or a proxy before it) that answers whole whatever `stream` says: asked
      -- again, it answers whole again
      calls.message = string.format("%s (the server answered 200 with Content-Type %s, a whole answer, not a stream "
        .. "of events: set models.providers.%s.stream = false)", calls.message, ctype, p.name)
      -- final: the engine's model_retries would get the same whole answer again. Not
      -- charged: the body was not read as an answer (it may be an error object)
      calls.retryable, calls.final = false, true
    end
    return nil, calls
  end
  -- a count that is no count (negative, a fraction, past any context) fails the call:
  -- priced, it would lower what the budgets see spent. Never retried (the class of a
  -- response past the size cap): each try is billed, and a server that says it once
  -- says it again.
  local why = usage and cost.usage_error(usage)
  if why then
    -- the provider billed the call all the same: the caller charges it (orket.engine.spend)
    -- and keeps the counts for the operator
    return nil, common.err("bad_request", p.conf.kind .. ": the answer's usage is refused: " .. why,
      { refused_usage = cost.storable_usage(usage) })
  end
  local note
  if usage then usage, note = cost.counted(usage) end
  usage = common.finish_usage(usage, req, content, calls)
  usage.note = note
  -- names a server sends are kept short: they go into every record, line and span of the
  -- call (a 300 KB model name was stored and printed whole); content and arguments have
  -- their own caps
  for _, c in ipairs(calls) do
    c.id, c.name = clipped(c.id), clipped(c.name)
  end
  return {
    content = content, tool_calls = calls, finish_reason = finish, usage = usage,
    model = clipped(smodel) or model, request_id = clipped(h["x-request-id"] or id),
  }
end

local function backoff(r, n)
  local base = r.base_ms * 2 ^ (n - 1)
  local d = base / 2 + math.random() * base / 2 -- "equal jitter": never less than half
  return math.min(d, r.max_ms)
end

-- The message for a refused connection to a provider on this machine: which provider,
-- where, and what to do about it.
local function nothing_listening(p)
  local start = p.conf.kind == "ollama" and "Is Ollama running? Start it with 'ollama serve'"
    or "Is the model server running? Start it"
  local env = p.conf.base_url_env
  -- empty or only spaces is unset, as config.apply_env takes it: not what points here
  local set = env and os.getenv(env)
  local other = (set and set:find("%S") and ("check " .. env .. ", which points here"))
    or (env and ("set " .. env .. " to where it listens"))
    or ("fix models.providers." .. p.name .. ".base_url in orket.lua")
  local where = common.without_userinfo(p.conf.base_url) -- never a password in a URL
  return common.redact(string.format("provider %s: nothing is listening at %s (connection refused). %s, or %s.",
    p.name, where, start, other), p.secrets)
end

-- Who a failure's message is about: "provider NAME (KIND, BASE_URL), model MODEL: ". Several
-- providers of one kind often share a host or a gateway; the URL alone did not say which
-- one failed, nor for which model.
local function asked(p, model)
  return string.format("provider %s (%s, %s), model %s: ", p.name, p.conf.kind,
    common.without_userinfo(p.conf.base_url), model)
end

--- chat(p, model, req) -> result | nil, message, CLASS, failure
--- failure = {attempts=, elapsed_ms=, error= the last attempt's error, final=, delivered=,
--- retry_after_ms= the wait the server's last answer asked for (Retry-After), if any,
--- out_of_time= true when the call's timeout_ms left no time for the next attempt,
--- host_fault= true when no socket could be opened: this process out of descriptors}:
--- delivered is true when the answer had begun (tokens came) before it failed; final is
--- true when the provider's retry policy already ran its course on this failure (retried
--- up to retry.max_attempts, out of time, or the server asked to wait longer than
--- retry.max_ms) or asking again would get the same failure
--- (a whole answer to a streamed request), so a
--- caller asking again would only multiply the wait; false when the client left a retry to
--- the caller (tokens had arrived, a timeout other than connect, a class never retried).
--- p: the client's provider state {name, conf, key, sem, timeouts, retry, max_bytes}.
--- req.on_retry(ev), optional: called before each wait between attempts with {attempt=,
--- max_attempts=, elapsed_ms=, delay_ms=, class=, message=, status=, retry_after_ms=, why=}
--- (why: "HTTP 429 Retry-After", "HTTP 503", "connect timeout", ...); unlike on_delta it
--- leaves the stream decoded in C. req.timeout_source: what set timeout_ms, named when it
--- leaves no time to retry ("budgets.wall_ms_per_card = 5000").
function M.chat(p, model, req)
  local wire = M.WIRES[p.conf.kind]
  local stream = req.stream
  if stream == nil then stream = p.conf.stream ~= false end
  local t0 = rt.now()
  local deadline = req.timeout_ms and (t0 + req.timeout_ms) or nil
  local first_token
  local delivered = false
  local on_delta = req.on_delta
  -- ev is false when there is no on_delta (the wire formats then skip building it); at is
  -- when the piece arrived, when it was decoded earlier (rt.now()'s clock)
  local function emit(ev, at)
    if first_token == nil then first_token = (at or rt.now()) - t0 end
    delivered = true
    if on_delta then on_delta(ev) end
  end
  local n = 0
  while true do
    n = n + 1
    local ok, res, err
    do
      local slot <close> = p.sem:hold(deadline)
      if slot then
        ok, res, err = pcall(attempt, p, wire, model, req, stream, deadline, emit, on_delta ~= nil)
      else
        ok, err = true, common.err("timeout", string.format(
          "llm: %s ran out waiting for one of %s's %d request slots (max_concurrency)",
          req.timeout_source or "the call's timeout_ms", p.name, p.sem.limit), { retryable = false, phase = "queue" })
      end
    end
    req.sent_whole = nil -- (only an attempt that never returned leaves it: SENT_MARK)
    if not ok then error(res, 0) end -- a bug, or on_delta raised: the caller's to see
    if res then
      -- a server that echoes the key back (in the answer, a tool call, or any other field
      -- such as the model name or the response id) must not get it into the journal, the
      -- log or a card: every string of the result is masked, keys included (a provider
      -- without a key has nothing to mask: the walk is skipped)
      if p.secrets and p.secrets[1] then
        res = common.mask(res, p.secrets)
        common.mask_calls(res.tool_calls, p.secrets)
      end
      res.provider = p.name
      res.attempts = n
      res.timings = { first_token_ms = first_token, total_ms = rt.now() - t0 }
      return res
    end
    -- every message passes here: whatever server text it quotes, it is made safe to store
    -- (valid UTF-8, no NUL; inert.quote), as the sources quote it already
    local msg = inert.quote(common.redact(err.message, p.secrets), MESSAGE_MAX)
    if err.refused_local then msg = nothing_listening(p) else msg = asked(p, model) .. msg end
    local elapsed = rt.now() - t0
    -- delivered: the answer had begun (tokens came) when it failed, or came whole and could
    -- not be read, so the provider billed it
    local billed = delivered or err.billed or false
    local failure = { attempts = n, elapsed_ms = elapsed, error = msg, final = false, refused_usage = err.refused_usage,
      delivered = billed or nil, retry_after_ms = err.retry_after_ms, host_fault = err.host_fault }
    -- Retry what may pass next time, unless tokens were already shown to the caller or billed.
    if not err.retryable or billed or n >= p.retry.max_attempts then
      failure.final = err.final or (err.retryable and not billed)
      if n > 1 then msg = msg .. " (gave up after " .. common.attempts_text(n, elapsed) .. ")" end
      return nil, msg, err.class, failure
    end
    local delay = math.min(backoff(p.retry, n), p.retry.max_ms)
    local asked = err.retry_after_ms
    if asked and asked > p.retry.max_ms then
      -- the server asked for longer than the policy waits: asked again inside its window,
      -- it would only refuse again (and may count it against the quota). The failure is
      -- final, and says what was asked and what allows less; the engine may wait it out
      -- (docs/engine.md, "Model failures")
      failure.final = true
      return nil, string.format("%s (%s; the server asked to wait %s (Retry-After), more than "
        .. "models.providers.%s.retry.max_ms allows (%s): not asked again before then)", msg,
        common.attempts_text(n, elapsed), common.duration(asked), p.name, common.duration(p.retry.max_ms)),
        err.class, failure
    end
    if asked then delay = math.max(delay, asked) end
    if deadline and rt.now() + delay >= deadline then
      -- named as the caller set it (the engine: the card's or the run's wall budget)
      failure.final, failure.out_of_time = true, true
      local what = asked and string.format("the server asked to wait %s (Retry-After)", common.duration(asked))
        or string.format("the next attempt was due in %s", common.duration(delay))
      return nil, string.format("%s (%s; no time left to retry: %s, and %s leaves %s)", msg,
        common.attempts_text(n, elapsed), what, req.timeout_source or "the call's timeout_ms",
        common.duration(deadline - rt.now())), err.class, failure
    end
    -- the wait said before it begins, so a caller can show it (a 429's Retry-After, a 5xx's
    -- backoff): on_retry without decoding the stream in Lua, on_delta as one of its pieces
    local why = err.status and string.format("HTTP %d%s", err.status, asked and " Retry-After" or "")
      or err.class == "timeout" and (tostring(err.phase) .. " timeout")
      or err.refused_local and "connection refused" or err.host_fault and "no socket" or "transient failure"
    local on_retry = req.on_retry
    if on_retry or on_delta then
      local ev = { type = "retry", attempt = n, max_attempts = p.retry.max_attempts, elapsed_ms = elapsed,
        delay_ms = delay, class = err.class, message = msg, status = err.status, retry_after_ms = asked, why = why }
      if on_retry then on_retry(ev) end
      if on_delta then on_delta(ev) end
    end
    rt.sleep(delay)
  end
end

--- health(p) -> {ms=, models={...}} | nil, message, CLASS: one GET of the model list
function M.health(p)
  local wire = M.WIRES[p.conf.kind]
  local headers = {}
  if p.key then headers[1] = "Authorization: Bearer " .. p.key end
  local t0 = rt.now()
  local hr <close>, herr = http.request { url = wire.health_url(p.conf), headers = headers,
    connect_timeout_ms = math.min(p.timeouts.connect_ms, 5000), total_timeout_ms = 10000, max_bytes = 4 << 20 }
  if not hr then return nil, common.redact(herr, p.secrets), "bad_request" end
  local status, h, code, phase = hr:headers()
  if not status then
    local e = transport_error(h, code, phase)
    if refused_here(code, h, p.conf.base_url) then
      return nil, nothing_listening(p), e.class
    end
    return nil, common.redact(e.message, p.secrets), e.class
  end
  local body, msg, ecode, ephase = read_all(hr)
  if not body then
    local e = transport_error(msg, ecode, ephase)
    return nil, common.redact(e.message, p.secrets), e.class
  end
  if status ~= 200 then
    local text, obj = common.error_text(body)
    local class = common.classify_status(status, obj)
    if status >= 300 and status < 400 then
      text = "redirect to " .. inert.quote(h.location, 300) .. " not followed (fix base_url)"
    end
    return nil, common.redact(string.format("HTTP %d: %s", status, text), p.secrets), class
  end
  local models = wire.health_models(body)
  if not models then
    return nil, "HTTP 200, but the answer is not a model list (is base_url a model server's API?)", "bad_request"
  end
  return { ms = rt.now() - t0, models = models }
end

return M
