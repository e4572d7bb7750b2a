-- orket.llm.common: what the wire formats share: failure classes, HTTP status
-- classification, secret redaction, token estimates and the normalized result.
local json = require "cjson.safe"
local http = require "orket.c.http"
local jsonout = require "orket.jsonout"
local urlencode = require "orket.urlencode"
local inert = require "orket.inert"

local M = {}

M.CLASSES = { transient = true, rate_limited = true, auth = true, bad_request = true,
  quota = true, timeout = true, canceled = true }

-- Endpoint URLs per provider table, made once: a provider's base_url does not change
-- after the client is built (a new configuration makes new provider tables).
local endpoints = setmetatable({}, { __mode = "k" })

--- endpoint(provider, path) -> provider.base_url without trailing slashes .. path
function M.endpoint(p, path)
  local by_path = endpoints[p]
  if not by_path then
    by_path = {}
    endpoints[p] = by_path
  end
  local url = by_path[path]
  if not url then
    url = (p.base_url:gsub("/+$", "")) .. path
    by_path[path] = url
  end
  return url
end

-- deeper than any schema the tool registry accepts (SCHEMA_MAX_NESTING, core/schema.h):
-- past it a caller's own schema is sent as it is
local SCHEMA_DEPTH = 64

local function copy_with(t, k, v)
  local out = {}
  for kk, vv in pairs(t) do out[kk] = vv end
  out[k] = v
  return out
end

-- The schema without empty `required` lists, in it and in the schemas under its
-- properties and items (the registry's schemas nest only there); p itself when it has none.
local function without_empty_required(p, depth)
  if type(p) ~= "table" or depth > SCHEMA_DEPTH then return p end
  local out = p
  if type(p.required) == "table" and next(p.required) == nil then out = copy_with(p, "required", nil) end
  local props = p.properties
  if type(props) == "table" then
    local nprops = props
    for name, sub in pairs(props) do
      local n = without_empty_required(sub, depth + 1)
      if n ~= sub then nprops = copy_with(nprops, name, n) end
    end
    if nprops ~= props then out = copy_with(out, "properties", nprops) end
  end
  local items = without_empty_required(p.items, depth + 1)
  if items ~= p.items then out = copy_with(out, "items", items) end
  return out
end

--- tool_parameters(schema) -> the schema as the wire formats send it: an empty object
--- schema for none, and without an empty `required` (in it or in the schemas under its
--- properties and items), which the encoder can only write as {}: an object, where a JSON
--- schema wants a list, and a server that reads it into a list of strings refuses the
--- request. The caller's tables are not changed.
function M.tool_parameters(p)
  if p == nil then return { type = "object", properties = {} } end
  return without_empty_required(p, 1)
end

-- One tool as both wire formats (OpenAI's, Ollama's) send it.
local function wire_tool(t)
  return { type = "function", ["function"] = { name = t.name, description = t.description,
    parameters = M.tool_parameters(t.parameters) } }
end

local tool_texts = setmetatable({}, { __mode = "k" }) -- fixed tool entry -> its JSON text

-- Joined lists: first entry -> up to JOINED_MAX records {entry1, ..., entryN, text=}, the
-- newest first. The engine hands a fresh list every turn (registry:specs), so a list is
-- known by its entries, compared in order at every request: a list with other entries, in
-- another order, or of another length (a role's own list, a list a hot reload made from new
-- entries, a list changed in place) is joined again, never served stale.
local joined = setmetatable({}, { __mode = "k" })
local JOINED_MAX = 4 -- lists kept per first entry (the roles' lists share their first tools)

-- Whether kept holds tools' entries, as ipairs walks tools (to its first nil), by index:
-- ipairs' step is a C call per entry.
local function same_entries(kept, tools)
  local i = 1
  local t = tools[1]
  while t ~= nil do
    if kept[i] ~= t then return false end
    i = i + 1
    t = tools[i]
  end
  return kept[i] == nil
end

-- The JSON text of tools' list from each entry's kept text (made here at its first use),
-- kept as a record of the entries -> record | nil when an entry cannot be encoded.
local function join(tools)
  local parts, rec = {}, {}
  for i, t in ipairs(tools) do
    local text = tool_texts[t]
    if not text then
      -- keys sorted: the same tools are the same bytes in every process (lua-cjson's
      -- order follows the table's hash, which differs between processes), so a server's
      -- prompt cache keeps them across restarts, resumes and workers
      local ok, enc = pcall(jsonout.encode, wire_tool(t))
      if not ok then return nil end
      text = enc
      tool_texts[t] = text
    end
    parts[i], rec[i] = text, t
  end
  rec.text = "[" .. table.concat(parts, ",") .. "]"
  return rec
end

-- The kept record of tools' list (see joined): the one of the same entries, or joined now
-- and kept -> record | nil when an entry cannot be encoded (nothing is kept then).
local function kept_list(tools)
  local first = tools[1]
  local recs = joined[first]
  if recs then
    for i = 1, #recs do
      local rec = recs[i]
      if same_entries(rec, tools) then return rec end
    end
  end
  local rec = join(tools)
  if not rec then return nil end
  if not recs then
    recs = {}
    joined[first] = recs
  end
  table.insert(recs, 1, rec)
  recs[JOINED_MAX + 1] = nil
  return rec
end

--- wire_tools(req) -> tools, text: req.tools as the wire formats send them, either as a
--- list of tables for the body (tools) or, with req.fixed_tools, as the JSON text of that
--- list (text), for the transport to join into the encoded body; nil, nil without tools.
--- fixed_tools is the caller's word that the entries and the tables in them do not
--- change: each entry's text is made once and kept (weak, by entry), and so is the text of
--- the whole list (by its entries, in order: see joined). The tools are most of a request
--- (their schemas) and the same every step. An entry that cannot be encoded gives the
--- tables, whose encoding with the body then reports the error.
function M.wire_tools(req)
  local tools = req.tools
  if not tools or #tools == 0 then return nil, nil end
  if req.fixed_tools and tools[1] ~= nil then
    local rec = kept_list(tools)
    if rec then return nil, rec.text end
  end
  local list = {}
  for i, t in ipairs(tools) do list[i] = wire_tool(t) end
  return list, nil
end

-- The characters of the entries, each encoded as it is given (not as the wire sends it;
-- one that cannot be encoded counts none): what a request's estimate has always counted.
local function entries_chars(tools)
  local n = 0
  for _, t in ipairs(tools) do n = n + #(json.encode(t) or "") end
  return n
end

--- tools_chars(req) -> the characters req.tools count for in the request's estimate
--- (spend's, before a call under a money budget). With req.fixed_tools, counted once per
--- list and kept with its text (see joined): encoding every schema at every call cost more
--- than the rest of the budget's check. The same number either way.
function M.tools_chars(req)
  local tools = req.tools
  if not tools then return 0 end
  if req.fixed_tools and tools[1] ~= nil then
    local rec = kept_list(tools)
    if rec then
      local n = rec.chars
      if not n then
        n = entries_chars(tools)
        rec.chars = n
      end
      return n
    end
  end
  return entries_chars(tools)
end

--- err(class, message, extra) -> a failure record {class=, message=, retryable=, ...}
function M.err(class, message, extra)
  local e = extra or {}
  e.class, e.message = class, message
  if e.retryable == nil then e.retryable = class == "transient" or class == "rate_limited" end
  return e
end

-- Error codes/types servers put in bodies, by class.
local QUOTA = { insufficient_quota = true, quota_exceeded = true, billing_hard_limit_reached = true }
local AUTH = { invalid_api_key = true, authentication_error = true, permission_denied = true }

--- classify_error_object(e) -> class for an {"error": {...}} body or event
function M.classify_error_object(e)
  if type(e) ~= "table" then return "transient" end
  local code, typ = tostring(e.code or ""), tostring(e.type or "")
  if QUOTA[code] or QUOTA[typ] then return "quota" end
  if AUTH[code] or AUTH[typ] then return "auth" end
  if code:find("rate_limit") or typ:find("rate_limit") then return "rate_limited" end
  if typ == "invalid_request_error" then return "bad_request" end
  return "transient"
end

--- error_text(body) -> the message a server put in an error body (OpenAI or Ollama shape)
function M.error_text(body)
  local t = json.decode(body or "")
  -- the server's text, quoted safe (inert.quote): it goes into the failure's message
  if type(t) == "table" then
    if type(t.error) == "table" and t.error.message then return inert.quote(t.error.message, 300), t.error end
    if type(t.error) == "string" then return inert.quote(t.error, 300), { message = t.error } end
    if t.message then return inert.quote(t.message, 300), t end
  end
  body = tostring(body or ""):gsub("%s+", " ")
  return inert.quote(body, 200), nil
end

--- classify_status(status, body) -> class, retryable
--- Retried: 408, 409, 429 (unless the quota is gone), 5xx. Never: 400, 401, 403, 404, 413.
function M.classify_status(status, err_obj)
  if status == 429 then
    if M.classify_error_object(err_obj) == "quota" then return "quota", false end
    return "rate_limited", true
  end
  if status == 401 or status == 403 then return "auth", false end
  if status == 408 or status == 409 or status >= 500 then return "transient", true end
  if err_obj and M.classify_error_object(err_obj) == "quota" then return "quota", false end
  return "bad_request", false
end

--- is_loopback(url) -> true when the URL's host is this machine (localhost, 127.x.x.x,
--- [::1], 0.0.0.0): a refused connection there means nothing listens, not a network fault.
function M.is_loopback(url)
  local rest = tostring(url):match("^%a[%w+.-]*://(.*)$")
  if not rest then return false end
  rest = rest:gsub("^[^/@]*@", "") -- user info
  local host = rest:match("^%[([^%]]+)%]") or rest:match("^([^/:?#]+)")
  host = host and host:lower()
  if not host then return false end
  return host == "localhost" or host:find("%.localhost%.?$") ~= nil or host == "::1" or host == "0.0.0.0"
    or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

--- refused(message) -> true when a transport failure is libcurl's failed connect (nothing
--- accepted the connection): "Failed to connect to H port P ...: Couldn't connect to
--- server" (or "Could not", or "Connection refused" in older libcurl).
function M.refused(message)
  local m = tostring(message)
  return m:find("Failed to connect to ", 1, true) ~= nil or m:find("Couldn't connect to server", 1, true) ~= nil
    or m:find("Could not connect to server", 1, true) ~= nil or m:find("Connection refused", 1, true) ~= nil
end

--- duration(ms) -> "850 ms", "3.2 s": how long a call took, for messages
function M.duration(ms)
  ms = math.max(0, ms or 0)
  if ms < 1000 then return string.format("%d ms", math.floor(ms + 0.5)) end
  return string.format("%.1f s", ms / 1000)
end

--- attempts_text(n, ms) -> "1 attempt in 5 ms", "4 attempts over 3.2 s"
function M.attempts_text(n, ms)
  if n == 1 then return "1 attempt in " .. M.duration(ms) end
  return string.format("%d attempts over %s", n, M.duration(ms))
end

--- malformed(wire, what) -> the failure for a response whose JSON parsed but is not of the
--- wire format's shape (a tool call that is a number, a name that is an object): a model
--- failure like a malformed body, classified and retried as one, never a Lua error.
function M.malformed(wire, what)
  -- what may quote the server (a repeated key's name, a part's type)
  return M.err("transient", wire .. ": malformed response: " .. inert.quote(what, 400), { malformed = true })
end

--- decoding(w) -> the decoding half of a wire format, on the one decoder of the streamed
--- chat formats (core/chatwire.c, orket.c.http's decoder and request{decode=}): new_state,
--- from_decoded, on_event, parse, decoded. w = {name=, kind=, piece= (what one streamed
--- piece is called), not_object= (the message for a piece that is no object),
--- server_error=function(value) -> failure, to_delta=function(st, piece) -> on_delta's
--- event | nil (default: the piece as the decoder made it)}.
function M.decoding(w)
  local D = {}

  -- A failure as the decoder reported it, as the wire format's classified failure.
  local function failure(data, body, failed, why, why_string)
    if failed == "json" then
      -- the event's own bytes, quoted safe: it may hold NUL or bytes that are not UTF-8,
      -- and the message is stored (PostgreSQL refused it, and with it the failure's record)
      if body then return M.err("transient", w.name .. ": malformed response body (" .. inert.quote(why) .. ")") end
      return M.err("transient", w.name .. ": malformed " .. w.piece .. " (" .. inert.quote(why) .. "): " .. inert.quote(data, 80))
    elseif failed == "not_object" then
      return M.err("transient", w.not_object)
    elseif failed == "error" then
      if why_string then return w.server_error(why) end
      return w.server_error(json.decode(why))
    end
    return M.malformed(w.name, why)
  end

  local function take(st, data, emit, body)
    local dec = st.dec
    if not dec then -- decoded by the request: what comes here is the piece it failed on
      local d = st.d
      if not d.failed then error("orket.llm: a piece after a decoded stream that did not fail", 2) end
      return failure(data, body, d.failed, d.why, d.why_string)
    end
    local list = st.deltas and {} or nil -- pieces as tables only for a caller that takes them
    local n, failed, why, why_string = dec:take(data, list)
    if not n then return failure(data, body, failed, why, why_string) end
    if n > 0 then
      if not list then return emit(false) end
      for i = 1, n do emit(w.to_delta and w.to_delta(st, list[i]) or list[i]) end
    end
  end

  --- new_state() -> st: a fresh decoder; from_decoded(d) -> st: what request{decode=} decoded
  function D.new_state() return { dec = http.decoder(w.kind) } end
  function D.from_decoded(d) return { d = d } end
  --- on_event(st, data, emit) -> nil | failure: one SSE data payload or NDJSON line;
  --- parse(st, body, emit) -> nil | failure: a whole non-streamed response.
  function D.on_event(st, data, emit) return take(st, data, emit, false) end
  function D.parse(st, body, emit) return take(st, body, emit, true) end
  --- decoded(st) -> the decoded state (see core/lhttp.c's lh_push_decoded)
  function D.decoded(st) return st.d or st.dec:result() end
  return D
end

--- redact(text, secrets) -> text with each secret, bearer or basic token and sk-... key masked
function M.redact(text, secrets)
  text = tostring(text)
  for _, s in ipairs(secrets or {}) do
    if #s >= 4 and text:find(s, 1, true) then text = M.redact_exact(text, s) end
  end
  text = text:gsub("([Bb]earer%s+)[%w%-%._~+/=]+", "%1[redacted]")
  -- an echoed "Authorization: Basic <base64 of user:password>" as Bearer's (the secrets above
  -- hold the one base_url makes; this catches any other). Only what looks like base64: whole
  -- quads, with a digit, '+', '/', '=' or mixed case, so "Basic authentication" stays.
  text = text:gsub("([Bb]asic%s+)([%w+/]+=*)", function(lead, t)
    if #t >= 8 and #t % 4 == 0 and (t:find("[%d+/=]") or (t:find("%l") and t:find("%u", 2))) then
      return lead .. "[redacted]"
    end
  end)
  text = text:gsub("sk%-[%w%-_]+", "sk-[redacted]")
  return text
end

--- mask(value, secrets) -> value with every occurrence of each secret (4 bytes or more) in
--- its strings (values and keys) replaced by "[redacted]", nested tables walked in place to
--- any depth (a server decides how deep its tool call arguments nest; each table once).
--- Only the exact secrets: a model writing about "sk-..." strings or Bearer headers must not
--- have its answer rewritten.
function M.mask(value, secrets, seen)
  if type(value) == "string" then
    for _, s in ipairs(secrets) do
      if #s >= 4 and value:find(s, 1, true) then value = M.redact_exact(value, s) end
    end
    return value
  end
  if type(value) == "table" then
    seen = seen or {}
    if seen[value] then return value end
    seen[value] = true
    local renamed
    for k, v in pairs(value) do
      if type(v) == "string" or type(v) == "table" then value[k] = M.mask(v, secrets, seen) end
      if type(k) == "string" and M.mask(k, secrets) ~= k then
        renamed = renamed or {}
        renamed[#renamed + 1] = k
      end
    end
    -- a decoded object's names are the server's too (tool call arguments)
    for _, k in ipairs(renamed or {}) do
      local v = value[k]
      value[k] = nil
      value[M.mask(k, secrets)] = v
    end
  end
  return value
end

--- userinfo(url) -> the "user:password" a URL names its server with, as written and
--- percent-decoded, and the password alone likewise, each 4 bytes or more (the secrets
--- masked with the key: libcurl sends them, and every message quoting the URL would show
--- them) | {}
function M.userinfo(url)
  local ui = type(url) == "string" and url:match("^%a[%w+.-]*://([^/?#@]*)@") or nil
  local out = {}
  if not ui then return out end
  local pw = ui:match(":(.*)$")
  for _, s in ipairs { ui, urlencode.unescape(ui), pw, pw and urlencode.unescape(pw) } do
    if #s >= 4 then out[#out + 1] = s end
  end
  return out
end

--- without_userinfo(url) -> url without its "user:password@": what a message may show
M.without_userinfo = urlencode.without_userinfo

--- mask_calls(calls, secrets): each tool call's raw_arguments, JSON text, may hold a secret
--- in an escaped form that mask's exact search misses ("\/" as lua-cjson writes a "/", as
--- Ollama's arguments are encoded here; any "\u0073" a server chooses): when the decoded
--- text holds one, it is written again from its masked value (the arguments the gate reads
--- were masked already). Text that does not decode is left as it came.
function M.mask_calls(calls, secrets)
  for _, c in ipairs(calls or {}) do
    local raw = c.raw_arguments
    if type(raw) == "string" and raw:find("\\", 1, true) then
      local v = json.decode(raw)
      if type(v) == "table" or type(v) == "string" then
        local before = json.encode(v)
        v = M.mask(v, secrets)
        local after = json.encode(v)
        if after and after ~= before then c.raw_arguments = after end
      end
    end
  end
end

function M.redact_exact(text, s)
  local out, i = {}, 1
  while true do
    local a, b = text:find(s, i, true)
    if not a then break end
    out[#out + 1] = text:sub(i, a - 1)
    out[#out + 1] = "[redacted]"
    i = b + 1
  end
  out[#out + 1] = text:sub(i)
  return table.concat(out)
end

--- name_text(v) -> v as a name: a whole number decoded from JSON as a float is "5", not "5.0"
--- | nil for what is no name (an object, a list, null: a table's address said nothing)
function M.name_text(v)
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return string.format("%d", v)
  end
  if type(v) ~= "string" and type(v) ~= "number" then return nil end
  return tostring(v)
end

--- estimate_tokens(text) -> a rough count (4 characters a token), for servers that send none
function M.estimate_tokens(n_chars)
  return math.ceil(n_chars / 4)
end

function M.messages_chars(messages)
  local n = 0
  if not messages then return 0 end
  -- by index, as ipairs walks, and no empty table for a message without calls: a money
  -- budget's check counts the request's messages before every call
  local i = 1
  local m = messages[i]
  while m ~= nil do
    local content = m.content
    if type(content) == "string" then n = n + #content end
    local calls = m.tool_calls
    if calls then
      local j = 1
      local c = calls[j]
      while c ~= nil do
        n = n + #(c.name or "") + #(c.raw_arguments or json.encode(c.arguments or {}) or "")
        j = j + 1
        c = calls[j]
      end
    end
    i = i + 1
    m = messages[i]
  end
  return n
end

--- MAX_ARGUMENTS: the most bytes of one call's arguments (their JSON text) a model may send,
--- as the engine's own reading of calls allows (orket.toolcalls). A call past it is the
--- model's error: its arguments are not decoded nor kept whole, only their first
--- ARGUMENTS_SHOWN bytes (the journal stores each call and later requests send it again)
M.MAX_ARGUMENTS = require("orket.toolcalls").MAX_ARGUMENTS
M.ARGUMENTS_SHOWN = 1024

--- capped(call) -> call, refused (arguments_error) and its raw_arguments clipped when they
--- are longer than MAX_ARGUMENTS
function M.capped(call)
  local raw = call.raw_arguments
  if #raw <= M.MAX_ARGUMENTS then return call end
  call.arguments = {}
  call.raw_arguments = inert.clip(raw, M.ARGUMENTS_SHOWN)
  call.arguments_error = string.format("arguments are %d bytes, more than the %d (%d MiB) a tool call may send; "
    .. "send less in one call (a large file in parts)", #raw, M.MAX_ARGUMENTS, M.MAX_ARGUMENTS >> 20)
  return call
end

--- tool_call(id, name, raw_arguments | arguments) -> normalized call
--- arguments is always a table; when the model's JSON does not parse, it is {} and
--- arguments_error says why (the gate refuses such a call with that reason).
function M.tool_call(id, name, raw, args)
  local call = { id = id, name = name }
  if args ~= nil then
    -- (Ollama's arguments come decoded: a JSON null is cjson.null, a list a table)
    local object = type(args) == "table" and not (next(args) ~= nil and args[1] ~= nil)
    call.arguments = object and args or {}
    call.raw_arguments = json.encode(args) or "{}"
    if not object then
      call.arguments_error = "arguments are a " .. (args == json.null and "JSON null" or type(args) == "table"
        and "JSON array" or type(args)) .. ", not an object"
    end
    return M.capped(call)
  end
  raw = raw or ""
  call.raw_arguments = raw
  if #raw > M.MAX_ARGUMENTS then return M.capped(call) end
  if raw:match("^%s*$") then
    call.arguments = {}
    return call
  end
  local t, perr = json.decode(raw)
  -- a JSON array decodes to a table too; only an object is a set of named arguments
  if type(t) == "table" and raw:match("^%s*{") then
    call.arguments = t
  else
    call.arguments = {}
    local what = t == nil and ("not valid JSON (" .. tostring(perr) .. ")")
      or ("a JSON " .. (type(t) == "table" and "array" or type(t) == "userdata" and "null" or type(t)) .. ", not an object")
    call.arguments_error = "arguments are " .. what
  end
  return call
end

-- s as utf8_result keeps it -> s, escaped: where names the field (a string, or for a call
-- its index with field), written into escaped (a list made when first needed) only when s
-- held such bytes: a reply's fields are checked at every request, and seldom need it.
local function storable(s, escaped, where, field)
  if type(s) ~= "string" then return s, escaped end
  local out, at = inert.bytes(s)
  if at then
    escaped = escaped or {}
    local what = field and string.format("tool_calls[%d].%s", where, field) or where
    escaped[#escaped + 1] = string.format("%s (byte %d)", what, at)
  end
  return out, escaped
end

local NAME_FIELDS = { "model", "request_id" }

--- utf8_result(result) -> result with the model's text made storable: both stores keep text
--- as UTF-8 (PostgreSQL refuses other bytes), and the model's output is hostile. Content,
--- call ids and names with bytes that are not UTF-8 keep them as \xNN (result.escaped
--- lists the fields, for the journal); a call whose arguments hold such bytes is refused
--- through arguments_error (the model sees why and can send it again), its raw_arguments
--- kept escaped the same way. The one place every provider's reply passes.
function M.utf8_result(r)
  local escaped
  r.content, escaped = storable(r.content, escaped, "content")
  -- the names the server gives go into the journal's columns too: a NUL or a control there
  -- is no name (PostgreSQL refuses NUL in text), shown as line() shows it
  for _, k in ipairs(NAME_FIELDS) do
    local v = r[k]
    if type(v) == "string" and inert.line(v) ~= v then
      r[k] = inert.line(v)
      escaped = escaped or {}
      escaped[#escaped + 1] = k
    end
  end
  -- walked as ipairs walks (to the first nil), by index
  local calls, i = r.tool_calls, 1
  local c = calls and calls[1] or nil
  while c ~= nil do
    c.id, escaped = storable(c.id, escaped, i, "id")
    c.name, escaped = storable(c.name, escaped, i, "name")
    local raw, bad = inert.bytes(c.raw_arguments or "")
    if bad then
      escaped = escaped or {}
      escaped[#escaped + 1] = string.format("tool_calls[%d].arguments (byte %d)", i, bad)
      c.raw_arguments, c.arguments = raw, {}
      c.arguments_error = string.format("arguments are not valid UTF-8 (byte %d of the arguments' JSON is "
        .. "not part of a UTF-8 character, shown here as \\xNN); send the text as UTF-8", bad)
    end
    i = i + 1
    c = calls[i]
  end
  if escaped then r.escaped = escaped end
  return r
end

--- finish_usage(usage, req, content, calls) -> usage, flagged estimated when needed.
--- req: the request, its messages and its tools (the tools' definitions are most of a
--- request's body, and an estimate without them let a card pass tokens_per_card 3.5 times
--- over): the same prompt estimate as the spend's before the call (orket.engine.spend). cached_tokens (of prompt_tokens,
--- served from the provider's prompt cache) only when the provider said so: an estimate
--- of it would be a guess at a price.
function M.finish_usage(u, req, content, calls)
  local out = { prompt_tokens = u and u.prompt_tokens, completion_tokens = u and u.completion_tokens,
    cached_tokens = u and math.tointeger(u.cached_tokens), estimated = false }
  if out.prompt_tokens == nil then
    out.prompt_tokens = M.estimate_tokens(M.messages_chars(req.messages) + M.tools_chars(req))
    out.estimated = true
    -- the cached tokens the provider counted are of the prompt: an estimate below them is
    -- raised to them, so that no record says more cached tokens than prompt tokens
    if out.cached_tokens and out.cached_tokens > out.prompt_tokens then out.prompt_tokens = out.cached_tokens end
  end
  if out.completion_tokens == nil then
    local n = #(content or "")
    for _, c in ipairs(calls or {}) do n = n + #c.name + #c.raw_arguments end
    out.completion_tokens = M.estimate_tokens(n)
    out.estimated = true
  end
  return out
end

return M
