-- orket.mcp.client: one connection to an MCP server, as Orket's agents use it. stdio: the
-- server runs under the confinement helper (orket.c.proc's helper_argv: the layers and
-- limits of agent code; the network only with network = true), spawned with luv and pipes;
-- Streamable HTTP: each message POSTed with libcurl (orket.c.http), answered with JSON or an
-- event stream. Requests wait in the calling task with a timeout; a timed-out or cancelled
-- one is cancelled at the server too. Everything the server sends is hostile data: capped,
-- checked, and a server that keeps breaking the protocol is disconnected.
local uv = require "luv"
local cjson = require "cjson.safe"
local task = require "orket.task"
local rpc = require "orket.mcp.jsonrpc"
local linestream = require "orket.mcp.linestream"
local jsonout = require "orket.jsonout"
local tree = require "orket.tree"
local gate = require "orket.c.gate"
local proc = require "orket.c.proc"
local http = require "orket.c.http"
local rt = require "orket.c.runtime"
local common = require "orket.llm.common"
local secret = require "orket.settings.secret"
local inert = require "orket.inert"
local errors = require "orket.errors"

local cut, clip = inert.cut, inert.clip

local M = {}

M.PROTOCOL = "2025-11-25"
-- The versions a server may answer initialize with. Servers of SDKs older than 2025-06-18
-- answer their own (MCP lets them): their messages are a subset of the later ones', and a
-- 2025-03-26 server may send JSON-RPC batches, which are read. 2024-11-05's HTTP transport
-- was another (HTTP+SSE): that version is taken over stdio only.
M.ACCEPTED = { ["2025-11-25"] = true, ["2025-06-18"] = true, ["2025-03-26"] = true, ["2024-11-05"] = "stdio" }
local BATCHES = { ["2025-03-26"] = true }
M.MAX_BAD = 50              -- protocol errors (malformed, unknown ids) before disconnecting
M.MAX_TOOLS = 256           -- tools kept from one server
M.OVER_CAP = "more than " .. M.MAX_TOOLS .. " tools" -- why each past them is refused
M.MAX_SCHEMA_BYTES = 65536  -- a tool's input schema, encoded
M.MAX_SCHEMA_DEPTH = 16
M.MAX_DESCRIPTION = 2048
M.RESULT_CAP = 65536        -- bytes of a result's text the model reads
M.STDERR_KEEP = 2048        -- the end of a stdio server's stderr, for error messages
-- Requests from the server (ping) are answered within bounds, each excess one a protocol
-- error: a server sending them without end would otherwise grow our write queue (stdio,
-- when it never reads) or our connections (HTTP: one POST per answer) without limit.
M.SERVER_REQUESTS_PER_S = 20 -- answered in any one second
M.MAX_UNREAD = 256 * 1024    -- stdio: bytes written and not yet read by the server
M.MAX_ANSWERS_OUT = 4        -- HTTP: answers being POSTed at once
-- A stdio server's rlimits: it lives as long as the engine, so a day of CPU; data 4 GiB
M.LIMITS = { cpu_seconds = 86400, memory = 4 * 1024 * 1024 * 1024, open_files = 1024 }

local Conn = {}
Conn.__index = Conn

local function now() return uv.now() end

-- ---- messages: each names its server once ------------------------------------------------

--- bare(name, msg) -> msg without its leading "mcp.NAME: " (however often it is there): the
--- reason a server went down is said where the server is named already (mcp list's line,
--- "the MCP server NAME is down (...)"), so it carries no name of its own
function M.bare(name, msg)
  local p = "mcp." .. tostring(name) .. ": "
  msg = tostring(msg)
  while msg:sub(1, #p) == p do msg = msg:sub(#p + 1) end
  return msg
end

--- named(name, msg) -> "mcp.NAME: msg", the name said once: an error a call or a start returns
function M.named(name, msg) return "mcp." .. tostring(name) .. ": " .. M.bare(name, msg) end

-- An answer too large to read came after the server took the request (over stdio, its id
-- unread: every request waiting then): it may have run. Said as EDOWN's lost session says
-- it, so that a model does not call a write again blindly.
M.TOO_LARGE = "the server sent a message larger than " .. rpc.MAX_MESSAGE .. " bytes, not read: it had taken the "
  .. "request, so whether it ran is unknown; check its effect before calling it again"

-- ---- checks on what a server advertises -------------------------------------------------

-- A tool's input schema: plain JSON Schema of bounded size and depth, no references (the
-- gate checks arguments against it and resolves none; a $ref loop could not hurt it, but a
-- schema it cannot read would let any argument through).
local TYPES = { string = true, number = true, integer = true, boolean = true, object = true, array = true, null = true }

-- The keywords the gate reads (type, required, and the subschemas it follows: properties,
-- items, additionalProperties) are well formed: an unknown type made every call with that
-- argument a denial ("expected nonsense"), and a required that is not a list of names was
-- skipped, so calls without the argument reached the server unchecked.
-- A keyword sent as null is one not sent (a Go server's nil slice or map: "required": null),
-- as the gate reads it.
local function check_keywords(v, where)
  if type(v) ~= "table" then return true end
  local function given(x) if x ~= cjson.null then return x end end
  local t = given(v.type)
  if t ~= nil then
    local names = type(t) == "table" and t or { t }
    if type(t) ~= "string" and not (type(t) == "table" and jsonout.is_array(t) and #t > 0) then
      return nil, where .. ".type must be a type name or a list of them"
    end
    for _, n in ipairs(names) do
      if not TYPES[n] then return nil, where .. ".type: " .. (type(n) == "string" and ("unknown type '"
        .. clip(n, 40) .. "'") or "a type name is a string") end
    end
  end
  local req = given(v.required)
  if req ~= nil then
    if type(req) ~= "table" or not jsonout.is_array(req) then return nil, where .. ".required must be a list of property names" end
    for i, n in ipairs(req) do
      if type(n) ~= "string" then return nil, where .. ".required[" .. i .. "] must be a string" end
    end
  end
  if given(v.properties) ~= nil then
    if type(v.properties) ~= "table" or (jsonout.is_array(v.properties) and next(v.properties) ~= nil) then
      return nil, where .. ".properties must be an object of schemas"
    end
    local keys = {}
    for k in pairs(v.properties) do keys[#keys + 1] = tostring(k) end
    table.sort(keys) -- the same property named each time
    for _, k in ipairs(keys) do
      local ok, err = check_keywords(v.properties[k], where .. ".properties." .. clip(k, 64))
      if not ok then return nil, err end
    end
  end
  for _, k in ipairs { "items", "additionalProperties" } do
    if type(v[k]) == "table" and not jsonout.is_array(v[k]) then
      local ok, err = check_keywords(v[k], where .. "." .. k)
      if not ok then return nil, err end
    end
  end
  return true
end

local function check_schema(s)
  if type(s) ~= "table" then return nil, "inputSchema is not an object" end
  local nodes = 0
  local function walk(v, depth)
    nodes = nodes + 1
    if nodes > 5000 then return nil, "inputSchema has more than 5000 values" end
    if depth > M.MAX_SCHEMA_DEPTH then return nil, "inputSchema is nested deeper than " .. M.MAX_SCHEMA_DEPTH end
    if type(v) == "table" then
      for k, x in pairs(v) do
        if k == "$ref" or k == "$dynamicRef" or k == "$recursiveRef" then
          return nil, "inputSchema uses " .. k .. " (references are not resolved)"
        end
        local ok, err = walk(x, depth + 1)
        if not ok then return nil, err end
      end
    end
    return true
  end
  local ok, err = walk(s, 0)
  if not ok then return nil, err end
  local text = jsonout.encode(s)
  if #text > M.MAX_SCHEMA_BYTES then return nil, "inputSchema is larger than " .. M.MAX_SCHEMA_BYTES .. " bytes" end
  if s.type ~= "object" then return nil, "inputSchema.type must be \"object\"" end
  local kok, kerr = check_keywords(s, "inputSchema")
  if not kok then return nil, kerr end
  local cok, compiled = pcall(gate.compile_schema, s)
  -- (the checker names its fields from inputSchema already)
  if not cok then
    local m = tostring(compiled)
    return nil, m:find("^inputSchema") and m or ("inputSchema: " .. m)
  end
  return compiled
end

local is_array = jsonout.is_array -- a JSON array as lua-cjson reads one


--- orket_spelling(tool) -> the tool's name as Orket's tool names spell it: MCP allows "-" and
--- "." in a tool's name (2025-11-25: "admin.tools.list"), providers' tool names neither of
--- them, so each reads "_"
local function orket_spelling(tool) return (tool:gsub("[%-%.]", "_")) end
M.orket_spelling = orket_spelling

--- tools_of(list) -> kept {name=, description=, schema=, compiled=}..., refused {name=, why=}...
--- A refused name is shown escaped (orket.inert.line: a NUL, a line break, an escape
--- sequence never reach a log line or a terminal raw), and one refused for its characters
--- says its place in the listing (its position, from 1, across the pages).
function M.tools_of(list)
  local kept, refused, seen, cands, count = {}, {}, {}, {}, {}
  for i, t in ipairs(type(list) == "table" and list or {}) do
    -- not `t.name or nil`: a name sent as false must be shown false, not as a missing one
    local name = nil
    if type(t) == "table" then name = t.name end
    if type(t) ~= "table" then
      -- an entry that is not an object is shown as the server sent it (its JSON: 42, "x",
      -- false, null; escaped), not as Lua's reading of its name
      local ok, shown = pcall(jsonout.encode, t)
      refused[#refused + 1] = { name = clip(ok and shown or "?", 64), why = "a tool must be an object" }
    elseif type(name) ~= "string" or not name:match("^[%w_%-%.]+$") or #name > 64 then
      -- a name that is not a string is shown as the server sent it (42, not Lua's 42.0)
      local ok, shown = true, name
      if type(name) ~= "string" then ok, shown = pcall(jsonout.encode, name) end
      -- a control character (a NUL...) is said as such: read as a C string, or printed,
      -- the name would be another (cut at the NUL) or break the line it is shown on
      local control = type(name) == "string" and name:find("%c")
      refused[#refused + 1] = { name = clip(ok and shown or "?", 64, inert.line), why = string.format(
        "the name must be letters, digits, _, - or . (64 at most)%s (tool %d of the server's tools/list)",
        control and "; this one holds a control character, shown escaped" or "", i) }
    elseif seen[name] then
      refused[#refused + 1] = { name = name, why = "listed twice" }
    else
      seen[name] = true
      local compiled, why = check_schema(t.inputSchema)
      if not compiled then
        refused[#refused + 1] = { name = name, why = why }
      else
        -- a refused tool blocks no other of its Orket name
        local as = orket_spelling(name)
        count[as] = count[as] or {}
        table.insert(count[as], name)
        local d = type(t.description) == "string" and t.description or ""
        cands[#cands + 1] = { name = name, description = cut(d, M.MAX_DESCRIPTION), schema = t.inputSchema, compiled = compiled }
      end
    end
  end
  for _, c in ipairs(cands) do
    local same = count[orket_spelling(c.name)]
    if #same > 1 then
      -- a "-" or "." reads "_" in Orket's name: which of them it reached would hang on the
      -- listing's order (which may change at each listing), so none does, as across servers
      local others = {}
      for _, n in ipairs(same) do if n ~= c.name then others[#others + 1] = n end end
      refused[#refused + 1] = { name = c.name, why = "its Orket name is also that of " .. table.concat(others, ", ")
        .. " (a - or . reads _): each of them is refused" }
    elseif #kept >= M.MAX_TOOLS then
      refused[#refused + 1] = { name = c.name, why = M.OVER_CAP }
    else
      kept[#kept + 1] = c
    end
  end
  return kept, refused
end

-- ---- results ---------------------------------------------------------------------------

local function cap(s, n)
  if #s <= n then return s end
  local head = cut(s, n)
  return head .. string.format("\n[... %d more bytes omitted ...]", #s - #head)
end

--- result_of(r) -> {ok=true, result={text=, structured=, resources=}} | {ok=false, error=, code=}:
--- a tool's result as the model reads it, capped: its texts, notes and resources together
--- take RESULT_CAP bytes at most (however many items carry them), then one note of how many
--- more items were left out.
function M.result_of(r)
  if type(r) ~= "table" then return { ok = false, error = "the server's result is not an object", code = "EPROTO" } end
  -- content is MCP's list of items: anything else is the server's mistake, not an empty
  -- success. A result without it, or with null (Go's nil slice, which real servers send), is
  -- one with no items.
  local content = r.content
  if content == cjson.null then content = nil end
  if content ~= nil and not is_array(content) then
    -- a failed tool is still the tool's failure: the model should mend its call, not retry
    -- as after a broken protocol
    if r.isError == true then
      return { ok = false, error = "the tool reported an error (its content, not an array, is not shown)", code = "EMCP_TOOL" }
    end
    return { ok = false, error = "the content of the server's result is not an array", code = "EPROTO" }
  end
  local texts, resources, left, omitted = {}, {}, M.RESULT_CAP, 0
  local function str(v, n) return type(v) == "string" and v:sub(1, n) or nil end
  for _, c in ipairs(content or {}) do
    if type(c) ~= "table" then -- nothing to show
    elseif left <= 0 then
      omitted = omitted + 1
    elseif c.type == "text" and type(c.text) == "string" then
      local t = cap(c.text, left)
      texts[#texts + 1] = t
      left = left - #t - 2 -- and the line between two (\n, as JSON writes it)
    elseif c.type == "resource" and type(c.resource) == "table" then
      local res = c.resource
      local e = { uri = str(res.uri, 512), mimeType = str(res.mimeType, 128), blob_bytes = type(res.blob) == "string" and #res.blob or nil }
      left = left - #(e.uri or "") - #(e.mimeType or "") - 48
      e.text = type(res.text) == "string" and cap(res.text, math.max(left, 0)) or nil
      left = left - #(e.text or "")
      resources[#resources + 1] = e
    elseif c.type == "resource_link" then
      local e = { uri = str(c.uri, 512), name = str(c.name, 256) }
      resources[#resources + 1] = e
      left = left - #(e.uri or "") - #(e.name or "") - 24
    elseif c.type == "image" or c.type == "audio" then
      local t = string.format("[%s content, %s, %d bytes of base64: not shown]", c.type,
        str(c.mimeType, 64) or "?", type(c.data) == "string" and #c.data or 0)
      texts[#texts + 1] = t
      left = left - #t - 2 -- and the line between two (\n, as JSON writes it)
    end
  end
  if omitted > 0 then
    texts[#texts + 1] = string.format("[... %d more content items omitted: the result's %d bytes are used up ...]", omitted, M.RESULT_CAP)
  end
  local text = table.concat(texts, "\n")
  if r.isError == true then
    return { ok = false, error = text ~= "" and cap(text, 4096) or "the tool reported an error", code = "EMCP_TOOL" }
  end
  local out = { text = text }
  if r.structuredContent ~= nil and r.structuredContent ~= cjson.null then
    local ok, enc = pcall(jsonout.encode, r.structuredContent)
    if ok and #enc <= M.RESULT_CAP then out.structured = r.structuredContent
    else out.structured_omitted = "structuredContent larger than " .. M.RESULT_CAP .. " bytes (or not JSON)" end
  end
  if #resources > 0 then out.resources = resources end
  return { ok = true, result = out }
end

-- ---- the connection ----------------------------------------------------------------------

--- new(spec, o) -> conn (not started). spec: a server of orket.settings.mcp; o: {cwd=
--- absolute dir a stdio server runs in and may write (default: its own temp dir, a scratch
--- directory nothing else reads), env=fn(name) for headers_env, log=fn(fields),
--- on_notify=fn(conn, msg), on_close=fn(conn, why), limits= the runner's limits instead of
--- M.LIMITS, refusals= a table the connections of one server share: the refused tools last
--- logged, project_dir= the folder of orket.lua (a relative path of the command is looked
--- for there when the server could not start: _view_hint)}
function M.new(spec, o)
  o = o or {}
  local self = setmetatable({ spec = spec, name = spec.name, cwd = o.cwd, getenv = o.env or os.getenv, limits = o.limits,
    project_dir = o.project_dir,
    on_notify = o.on_notify, on_close = o.on_close, on_lost = o.on_lost, refusals = o.refusals or {},
    pending = {}, next_id = 0, bad = 0, state = "new", stderr_tail = "" }, Conn)
  local log = o.log or function() end
  -- a server's text (errors, stderr) may quote what it was given: never logged as it came
  self.log = function(f)
    if f.message ~= nil then f.message = self:redact(f.message) end
    return log(f)
  end
  return self
end

-- The values this server was given as credentials: what secret "NAME" gave its env and
-- headers (_given) and its headers_env variables' values. Worked out once a start has read
-- them (each call masks its result with them); a value of env written in orket.lua is not
-- one: it is in the project's files already, and masking a LOG_LEVEL's "warn" or a path in
-- every result would garble them. Each is also taken as JSON writes it inside a string (a
-- result's text is often JSON), and a header's last word alone ("Bearer TOKEN": TOKEN).
function Conn:_secrets()
  if self.secrets then return self.secrets end
  local out, seen = {}, {}
  local function add(v)
    if type(v) ~= "string" or seen[v] then return end
    seen[v] = true
    out[#out + 1] = v
    local j = cjson.encode(v)
    if j and j:sub(2, -2) ~= v then add(j:sub(2, -2)) end
  end
  for _, var in pairs(self.spec.headers_env or {}) do
    local v = self.getenv(var)
    add(v)
    if type(v) == "string" then add(v:match("^%S+%s+(%S+)%s*$")) end
  end
  for _, v in pairs(self.given_secrets or {}) do
    add(v)
    add(v:match("^%S+%s+(%S+)%s*$"))
  end
  if self.given_secrets then self.secrets = out end -- before a start, worked out each time
  return out
end

--- conn:redact(v) -> v with the credentials this server was given (_secrets) masked: a
--- text (an error, its stderr, a log line; bearer tokens and sk- keys masked there too, as
--- the journal masks a provider's errors), or a successful result's table (its text,
--- structured content and resources, walked in place, those secrets only: a tool's output
--- may well speak of sk- keys). A server may quote what it was given anywhere, so nothing
--- it says reaches the model, a log or the output unmasked. Secrets shorter than 4 bytes
--- are not masked (docs/secrets.md).
-- A number in v (walked in place) that writes a secret (a PIN as a JSON number) becomes
-- "[redacted]"; nums: {[secret]=true}.
local function mask_numbers(v, nums, seen)
  if seen[v] then return end
  seen[v] = true
  for k, x in pairs(v) do
    if type(x) == "table" then mask_numbers(x, nums, seen)
    elseif type(x) == "number" and (nums[tostring(x)] or nums[string.format("%.17g", x)]
        or (x == math.floor(x) and math.abs(x) < 2^63 and nums[string.format("%d", x)])) then
      v[k] = "[redacted]"
    end
  end
end

function Conn:redact(v)
  local secrets = self:_secrets()
  if type(v) == "table" then
    if #secrets == 0 then return v end
    local nums
    for _, x in ipairs(secrets) do
      if #x >= 4 and tonumber(x) then nums = nums or {} nums[x] = true end
    end
    if nums then mask_numbers(v, nums, {}) end
    return common.mask(v, secrets)
  end
  return common.redact(v, secrets)
end

function Conn:_fail_pending(msg, code)
  local p = self.pending
  self.pending = {}
  for _, w in pairs(p) do w.finish(nil, msg, code) end
end

function Conn:_protocol_error(why)
  self.bad = self.bad + 1
  self.log { event = "mcp_protocol_error", server = self.name, message = why }
  if self.bad >= M.MAX_BAD then
    self:close("the server broke the protocol " .. self.bad .. " times (last: " .. why .. ")")
  end
end

-- One message from the server.
function Conn:_dispatch(msg, kind)
  if kind == "response" then
    local w = self.pending[msg.id]
    if not w then
      local asked = self:_retyped(msg.id)
      if asked then return self:_refuse_retyped(asked, msg.id) end
      return self:_protocol_error("a response to id " .. tostring(msg.id) .. ", which was never sent or already ended")
    end
    self.pending[msg.id] = nil
    if msg.error then
      local e = msg.error
      return w.finish(nil, type(e.message) == "string" and e.message:sub(1, 1024) or "error", "EMCP_" .. tostring(e.code))
    end
    return w.finish(msg.result)
  elseif kind == "request" then
    local over = self:_over_answer_bounds()
    if over then return self:_protocol_error(over) end
    -- a server asking us something: ping is answered; sampling, roots, elicitation are not offered
    if msg.method == "ping" then return self:_answer(rpc.result(msg.id, {})) end
    return self:_answer(rpc.error(msg.id, rpc.METHOD_NOT_FOUND, "not supported by this client: " .. msg.method:sub(1, 64)))
  elseif self.on_notify then
    self.on_notify(self, msg)
  end
end

-- The id of a waiting request that a response's id is, but of another type: this client
-- sends integer ids, and a server answering 1 with "1" answers that request | nil
function Conn:_retyped(id)
  local n = type(id) == "string" and math.tointeger(tonumber(id))
  if n and tostring(n) == id and self.pending[n] then return n end
end

-- A response to request asked whose id came as a string: refused, as JSON-RPC 2.0 asks
-- (a response's id is the request's, "the same value"). The request fails at once saying
-- so, rather than wait for an answer that came and time out, which `orket mcp list` and
-- `orket validate` showed as the server's silence; the stray id is a protocol error too.
function Conn:_refuse_retyped(asked, id)
  local w = self.pending[asked]
  self.pending[asked] = nil
  self:_protocol_error(string.format("a response to id %s (a string), where request %d (a number) waits",
    jsonout.encode(id), asked))
  return w.finish(nil, string.format("mcp.%s: %s: the server answered request %d with the id %s (a string); "
    .. "JSON-RPC 2.0 requires the id as sent (%d, a number), so the answer is refused", self.name, w.method, asked,
    jsonout.encode(id), asked), "EPROTO")
end

-- Why a request from the server is not answered (see SERVER_REQUESTS_PER_S) | nil
function Conn:_over_answer_bounds()
  local t = now()
  if not self.asked_at or t - self.asked_at >= 1000 then self.asked_at, self.asked = t, 0 end
  self.asked = self.asked + 1
  if self.asked > M.SERVER_REQUESTS_PER_S then
    return "more than " .. M.SERVER_REQUESTS_PER_S .. " requests from the server in a second"
  end
  if self.spec.transport == "http" then
    if (self.answers_out or 0) >= M.MAX_ANSWERS_OUT then
      return "a request from the server while " .. M.MAX_ANSWERS_OUT .. " answers are still being sent"
    end
  elseif self.pipes and self.pipes[1]:get_write_queue_size() > M.MAX_UNREAD then
    return "a request from the server while it leaves more than " .. M.MAX_UNREAD .. " bytes unread"
  end
end

-- An answer to the server's request; over HTTP, counted while it is POSTed
function Conn:_answer(msg)
  if self.spec.transport ~= "http" then return self:_send(msg) end
  self.answers_out = (self.answers_out or 0) + 1
  task.spawn(function()
    local ok, err = self:_post(rpc.encode(msg), self.spec.timeout_ms, true)
    self.answers_out = self.answers_out - 1
    if not ok then self.log { event = "mcp_error", server = self.name, message = tostring(err) } end
  end)
  return true
end

-- The id of the response that could not be decoded, where it can only be the message's own:
-- its first member (or the one after "jsonrpc"), or its last (or the one before a last
-- "jsonrpc") | nil. Read on the text with every byte above 127 made "?" first (JSON's
-- syntax is ASCII, so a message that is only not UTF-8 decodes then, and says whether it is
-- a response); else (too deep) by where the id can be, and never when a "method" is seen
-- among its first members or as its last: a request's id is the server's own, not Orket's.
local function response_id(text)
  local ascii = text:gsub("[\128-\255]", "?")
  local msg, kind = rpc.decode(ascii)
  if msg then return kind == "response" and msg.id or nil end
  if kind and kind.id ~= nil then return not kind.method and kind.id or nil end
  local head, tail = text:sub(1, 200), text:sub(-200)
  if head:find('^%s*{[^{}%[%]]-"method"%s*:') or tail:find('"method"%s*:%s*"[^"]*"%s*}%s*$') then return nil end
  return math.tointeger(tonumber(head:match('^%s*{%s*"id"%s*:%s*(%d+)%s*[,}]')
    or head:match('^%s*{%s*"jsonrpc"%s*:%s*"2%.0"%s*,%s*"id"%s*:%s*(%d+)%s*[,}]')
    or tail:match('[,{]%s*"id"%s*:%s*(%d+)%s*}%s*$')
    -- or the one before a last "jsonrpc" (an error as encoders that sort keys write it)
    or tail:match('[,{]%s*"id"%s*:%s*(%d+)%s*,%s*"jsonrpc"%s*:%s*"2%.0"%s*}%s*$') or ""))
end

function Conn:_line(text)
  if BATCHES[self.version] and rpc.is_batch(text) then
    -- a JSON-RPC batch, in the one version that has them: each message as if sent alone (a
    -- request of the server's among them is answered alone too)
    local items, e = rpc.decode_batch(text)
    if not items then
      -- one that is only not UTF-8 is read again as ASCII (as response_id does): each
      -- response in it fails its call at once rather than time out
      local again = rpc.decode_batch((text:gsub("[\128-\255]", "?"))) or {}
      for _, it in ipairs(again) do
        local id = it.kind == "response" and it.msg.id or (it.err and not it.err.method and it.err.id) or nil
        if id ~= nil and self.pending[id] then self:_unreadable(id, e.message) end
      end
      return self:_protocol_error(e.message)
    end
    for _, it in ipairs(items) do
      if self.state == "closed" then return end
      if it.err then self:_unreadable(it.err.id ~= nil and not it.err.method and it.err.id or nil, it.err.message)
      else self:_dispatch(it.msg, it.kind) end
    end
    return
  end
  local msg, kind = rpc.decode(text)
  if not msg then
    -- a response that cannot be read (too deep, not JSON, not UTF-8) still fails the request
    -- it names at once, rather than leaving it to time out: by the message's own id, never
    -- an "id" inside its result nor the id of a request of the server's, which would fail
    -- another call
    return self:_unreadable(response_id(text), kind.message)
  end
  self:_dispatch(msg, kind)
end

-- A message that could not be read: the request it answers (id, if known) fails at once
function Conn:_unreadable(id, why)
  local w = id ~= nil and self.pending[id]
  if w then
    self.pending[id] = nil
    w.finish(nil, "mcp." .. self.name .. ": the server's answer could not be read: " .. why, "EPROTO")
  end
  return self:_protocol_error(why)
end

-- ---- stdio -------------------------------------------------------------------------------


-- A stdio server's scratch dir, named as a run's temp dir is (core/proc.c): for this process
-- and its PID namespace, so that once this process is killed outright, the next Orket's
-- first start (proc_sweep_tmp) knows the dir for a leftover and removes it.
local function scratch_dir()
  local ns = uv.fs_stat("/proc/self/ns/pid")
  return uv.fs_mkdtemp(string.format("/tmp/orket-mcp-%d-%d-XXXXXX", uv.os_getpid(), ns and ns.ino or 0))
end

-- The helper's "E errno program" line as words: "cannot run PROG: no such file or directory (ENOENT)"
local function exec_failure(data)
  local errno, prog = data:match("E (%d+) ([^\n]*)")
  return errno and errors.exec_failure(errno, prog) or nil
end

-- How long, once the server exited, the end of its stderr and the helper's report are
-- waited for (they come on pipes of their own, maybe after the exit is seen; a process it
-- left behind may hold stderr open)
M.DRAIN_MS = 500

-- The server exited: the connection closes saying why, once its stderr and the helper's
-- report have been read to their end (or DRAIN_MS after the exit): what they say is the
-- reason (a command that could not be run, a traceback), not only the exit status.
function Conn:_exited()
  if not self.exit or self.state == "closed" then return end
  local d = self.drained
  if not (d.stderr and d.report) and not d.timer then
    d.timer = uv.new_timer()
    d.timer:start(M.DRAIN_MS, 0, function()
      d.timer:close()
      d.stderr, d.report = true, true
      self:_exited()
    end)
    return
  end
  if not (d.stderr and d.report) then return end
  if d.timer and not d.timer:is_closing() then d.timer:close() end
  local e = self.exit
  local why = string.format("the server exited (%s)", e.signal ~= 0 and ("signal " .. e.signal) or ("status " .. e.code))
  if self.start_failure then why = self.start_failure
  elseif self.stderr_tail ~= "" then why = why .. ": " .. self.stderr_tail:gsub("%s+$", ""):sub(-400) end
  -- before it answered initialize: maybe it could not read its own program
  if self.state == "starting" then why = why .. self:_view_hint() end
  self:close(why)
end

-- The directories a stdio server sees of this machine besides its read_only, its working
-- directory and its temp dir: the system's (core/confine.c's view, whose /etc files and
-- devices hold no server's program)
local SYSTEM_DIRS = proc.system_dirs()

local function under(path, dir) return path == dir or path:sub(1, #dir + 1) == dir .. "/" end

-- conn:_relative_hint() -> "; PATH is relative ..." | nil: a relative path of the command
-- (a word past the program, or a program with a slash in it) that names a file in the
-- project's folder but none in the server's own directory, where the server looks for it.
function Conn:_relative_hint()
  local own, base = self.cwd or self.tmpdir, self.project_dir
  if not base then return nil end
  for i, a in ipairs(self.spec.command or {}) do
    if type(a) == "string" and a ~= "" and not a:find("^[/-]") and (i > 1 or a:find("/", 1, true))
        and not (own and uv.fs_stat(own .. "/" .. a)) then
      local path = uv.fs_realpath(base .. "/" .. a)
      local st = path and uv.fs_stat(path)
      if st and st.type == "file" then
        local dir, seen = path:match("^(.+)/[^/]*$") or "/", false
        for _, d in ipairs(self.spec.read_only or {}) do seen = seen or under(path, d) end
        return string.format("; %s is a relative path, and the server runs in a directory of its own, where there "
          .. "is no such file: give it as %s in mcp.servers.%s.command%s (docs/mcp.md)", inert.line(a),
          jsonout.encode(path), self.name, seen and "" or (", and add " .. jsonout.encode(dir) .. " to its read_only"))
      end
    end
  end
  return nil
end

--- conn:_view_hint() -> "; PATH is outside ...: add ... to mcp.servers.NAME.read_only" | "":
--- for a stdio server that exited, or could not be run, before it answered initialize.
--- Confined, it sees only the system's directories and its read_only, so a program or
--- script of its command elsewhere is missing to it, and the interpreter says only "no such
--- file" (python3: can't open file ...; cannot run /opt/x/server): the first absolute path
--- of its command that exists here but is outside that view is named, with the setting.
function Conn:_view_hint()
  local rel = self:_relative_hint()
  if rel then return rel end
  local seen = { table.unpack(SYSTEM_DIRS) }
  for _, d in ipairs(self.spec.read_only or {}) do seen[#seen + 1] = d end
  if self.tmpdir then seen[#seen + 1] = self.tmpdir end
  if self.cwd then seen[#seen + 1] = self.cwd end
  for _, a in ipairs(self.spec.command or {}) do
    local st = type(a) == "string" and a:sub(1, 1) == "/" and uv.fs_stat(a)
    local inside = false
    for _, d in ipairs(st and seen or {}) do inside = inside or under(a, d) end
    local dir = st and (st.type == "directory" and a or a:match("^(.+)/[^/]*$"))
    if dir and not inside then
      return string.format("; %s is outside what the server sees of this machine (the system's directories and "
        .. "its read_only): add %s to mcp.servers.%s.read_only in orket.lua (docs/mcp.md)", inert.line(a),
        jsonout.encode(dir), self.name)
    end
  end
  return ""
end

function Conn:_start_stdio()
  local tmp, terr = scratch_dir()
  if not tmp then return nil, "cannot make a temp dir: " .. tostring(terr), "ESPAWN" end
  self.tmpdir = tmp
  local s = self.spec
  local layers = s.network and { netns = false, landlock_net = false } or nil
  local ok, argv, henv = pcall(proc.helper_argv, { argv = s.command, cwd = self.cwd or tmp, tmpdir = tmp, env = self.env,
    limits = self.limits or M.LIMITS, layers = layers, read_only = s.read_only })
  if not ok or type(argv) ~= "table" then return nil, "mcp." .. self.name .. ": " .. tostring(argv), "ESPAWN" end
  local pin, pout, perr, prep = uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false)
  self.pipes = { pin, pout, perr, prep }
  local handle, pid = uv.spawn(argv[1], { args = { table.unpack(argv, 2) }, stdio = { pin, pout, perr, prep },
    env = henv, detached = true }, function(code, sig)
      self.exit = { code = code, signal = sig }
      if self.proc and not self.proc:is_closing() then self.proc:close() end
      self:_exited()
    end)
  if not handle then
    for _, p in ipairs(self.pipes) do p:close() end
    self.pipes = nil
    return nil, "cannot start " .. tostring(s.command[1]) .. ": " .. tostring(pid), "ESPAWN"
  end
  self.proc, self.pid = handle, pid
  -- A write to a server whose end has gone (its helper could not start it, or it exited)
  -- raises SIGPIPE, whose default action ends this process: `orket validate`, or a run
  -- whose own signal handlers were not set yet or already gone, died with status 141.
  -- Caught while the server's pipes are open (closed with them), the write fails instead.
  local guard = uv.new_signal()
  guard:start("sigpipe", function() end)
  guard:unref()
  self.pipes[#self.pipes + 1] = guard
  self.drained = {}
  perr:read_start(function(_, data)
    if data then self.stderr_tail = (self.stderr_tail .. data):sub(-M.STDERR_KEEP)
    else self.drained.stderr = true self:_exited() end
  end)
  prep:read_start(function(_, data)
    -- the helper's report: "F layer message" when it could not start the program, "E errno
    -- program" when it could not exec it
    if data then
      local f = data:match("F %S+ ([^\n]*)")
      f = f and ("the confinement helper: " .. f) or exec_failure(data)
      if f then self.start_failure = f end
    else
      self.drained.report = true
      self:_exited()
    end
  end)
  self.reader = linestream.reader(pout, rpc.MAX_MESSAGE)
  self.read_task = task.spawn(function()
    while true do
      local line, err = self.reader:next()
      if line then
        self:_line(line)
      elseif err == "too_long" then
        -- its id is not known: every waiting request fails rather than wait for nothing
        self:_fail_pending(M.TOO_LARGE, "ETOOLARGE")
        self:_protocol_error("a message larger than " .. rpc.MAX_MESSAGE .. " bytes")
      else
        break
      end
      if self.state == "closed" then break end
    end
  end)
  function self._write(text)
    if pin:is_closing() then return nil, "closed" end
    pin:write(text .. "\n")
    return true
  end
  return true
end

-- ---- Streamable HTTP ---------------------------------------------------------------------

function Conn:_headers()
  local h = { "Content-Type: application/json", "Accept: application/json, text/event-stream" }
  if self.version then h[#h + 1] = "MCP-Protocol-Version: " .. self.version end
  if self.session then h[#h + 1] = "Mcp-Session-Id: " .. self.session end
  for name, var in pairs(self.spec.headers_env or {}) do
    local v = self.getenv(var)
    if v and not v:find("[\r\n]") then h[#h + 1] = name .. ": " .. v end
  end
  for name, v in pairs(self.headers or {}) do
    if not v:find("[\r\n]") then h[#h + 1] = name .. ": " .. v end
  end
  return h
end

-- The transport's codes for what a caller of this module reads (docs/mcp.md)
function Conn:_http_error(msg, code)
  if code == "too_large" then
    return nil, M.named(self.name, M.TOO_LARGE), "ETOOLARGE"
  end
  return nil, "mcp." .. self.name .. ": " .. tostring(msg), code == "timeout" and "ETIMEDOUT" or code or "EHTTP"
end

-- Where a redirect's Location points, by its origin only (scheme://host[:port], the rule of
-- every HTTP message): a hosted server's key is often in the URL's path or query, which a
-- redirect echoes back, and this message reaches logs, a run's events and the model
function Conn:_where(location)
  if type(location) ~= "string" then return "nowhere" end
  local here = http.origin(self.spec.url)
  local there = http.origin(location)
  if not there then
    -- a relative reference: on this server unless it names a host (//host/...)
    return location:find("^//") and "another host" or ("another path on this server (" .. tostring(here) .. ")")
  end
  if there:lower() == tostring(here):lower() then return "another path on this server (" .. there .. ")" end
  return there
end

-- POSTs one message; what comes back (JSON or an event stream) is dispatched as it arrives.
-- An event stream is split into events by the transport as bytes arrive (framing "auto"), in
-- time linear in its size and with the cap checked on every chunk, so a huge or endless
-- event is refused as soon as it passes 4 MiB and never holds the loop.
function Conn:_post(text, timeout_ms, no_response)
  local sent = self.session -- the session this message is sent in: a 404 ends it
  local r, err, code = http.request { url = self.spec.url, method = "POST", headers = self:_headers(), body = text,
    total_timeout_ms = timeout_ms, connect_timeout_ms = math.min(timeout_ms, 10000), framing = "auto",
    max_bytes = rpc.MAX_MESSAGE, max_event = rpc.MAX_MESSAGE }
  if not r then return nil, err, code end
  local guard <close> = r
  local status, headers = r:headers()
  if not status then return nil, "mcp." .. self.name .. ": " .. tostring(headers), "EHTTP" end
  local h = {}
  for k, v in pairs(type(headers) == "table" and headers or {}) do h[tostring(k):lower()] = v end
  if h["mcp-session-id"] and not self.session then self.session = tostring(h["mcp-session-id"]):sub(1, 256) end
  -- what came instead of an answer is said as it came: a redirect (not followed: the
  -- message and its headers would go where it says) and a page that is not JSON were both
  -- "answered without a response"
  if status >= 300 and status < 400 then
    return nil, string.format("mcp.%s: HTTP %d: a redirect to %s, not followed (if that is the server, its url)",
      self.name, status, self:_where(h.location)), "EHTTP"
  end
  local sse = r:framing() == "sse"
  local parts = {}
  while true do
    local ev, rerr, rcode = r:read()
    if ev == nil then return self:_http_error(rerr, rcode) end
    if not ev then break end
    -- disconnected while this stream was read (it broke the protocol): the rest is not read
    if self.state == "closed" then return nil, "mcp." .. self.name .. ": " .. tostring(self.why), "EDOWN" end
    for _, x in ipairs(ev) do
      if sse then
        if self.state == "closed" then break end
        self:_line(x)
      else
        parts[#parts + 1] = x
      end
    end
  end
  if status == 202 then return true end
  if status >= 400 then
    local msg = string.format("mcp.%s: HTTP %d: %s", self.name, status, table.concat(parts):sub(1, 300))
    if status == 404 and sent then
      -- the server has forgotten the session (restarted, ended it idle, or another replica
      -- took the POST): it did not take this message. MCP asks for a new session, which only
      -- a new initialize opens; the calls in flight in this one still get their answers
      return nil, self:_session_lost(sent, msg), "ESESSION"
    end
    return nil, msg, "EHTTP"
  end
  if not sse then
    local body = table.concat(parts)
    -- a body that parses is read whatever its type says (sloppy servers send JSON as
    -- text/plain); one that does not, under a type that is not JSON (a login page), is said
    -- by its type, not as "answered without a response" or a protocol error. The answer to a
    -- notification or to the server's request (no_response) carries nothing to read.
    local ctype = type(h["content-type"]) == "string" and h["content-type"] or nil
    if no_response then
      -- the protocol answers a notification with 202 and no body; a server that answers
      -- every POST with 200 and a body of its own ({} or {"ok": true}) says nothing to read:
      -- only a message of the protocol in it is read, nothing else is a protocol error
      local ok, v = pcall(cjson.decode, body)
      if not (ok and type(v) == "table" and (v.jsonrpc ~= nil or (BATCHES[self.version] and type(v[1]) == "table"))) then
        return true
      end
    end
    if ctype and not ctype:lower():find("json", 1, true) and cjson.decode(body) == nil then
      return nil, string.format("mcp.%s: HTTP %d with Content-Type %s, not application/json or text/event-stream",
        self.name, status, ctype:sub(1, 100)), "EPROTO"
    end
    if body:find("%S") then self:_line(body) end
  end
  return true
end

-- The session sent was answered 404 (msg, what it said) -> the message of the call it
-- answered. The connection is lost at once and once: its owner (the manager, on_lost) opens
-- another for new calls, a new request on this one fails ESESSION unsent, and the requests
-- in flight end on their own streams (answered, or timed out) before it closes. Nothing is
-- DELETEd: the server has no such session.
function Conn:_session_lost(sent, msg)
  local said = msg:gsub("^mcp%.[^:]*: ", "") .. ": the server no longer knows the MCP session, so it did not take this call"
  said = "mcp." .. self.name .. ": " .. said
  if self.lost or self.session ~= sent or self.state == "closed" then return said end
  self.lost = true
  if self.on_lost then self.on_lost(self) end
  self:_retire()
  return said
end

-- A lost connection closes once no request of it waits any more
function Conn:_retire()
  if self.lost and next(self.pending) == nil then
    self:close("the server has forgotten the MCP session (HTTP 404)")
  end
end

-- ---- requests ----------------------------------------------------------------------------

function Conn:_send(msg)
  local text = rpc.encode(msg)
  if self.spec.transport == "http" then
    task.spawn(function()
      local ok, err = self:_post(text, self.spec.timeout_ms, true)
      if not ok then self.log { event = "mcp_error", server = self.name, message = tostring(err) } end
    end)
    return true
  end
  if not self._write then return nil end
  return self._write(text)
end

--- conn:request(method, params, timeout_ms) -> result | nil, message, CODE (inside a task).
--- ETIMEDOUT: no answer in time (the server is told the request is cancelled); EDOWN: the
--- connection ended first. If the calling task is cancelled, the request is cancelled too.
function Conn:request(method, params, timeout_ms)
  if self.state == "closed" then return nil, "mcp." .. self.name .. ": not connected", "EDOWN" end
  if self.lost then
    return nil, "mcp." .. self.name .. ": the server has forgotten the MCP session (HTTP 404): this request was not sent", "ESESSION"
  end
  self.next_id = self.next_id + 1
  local id = self.next_id
  timeout_ms = timeout_ms or self.spec.timeout_ms
  local co = coroutine.running()
  local w = { done = false, method = method }
  local timer
  local function finish(...)
    if w.done then return end
    w.done, w.res = true, table.pack(...)
    if timer and not timer:is_closing() then timer:close() end
    if w.waiting then task.resume(co) end
  end
  w.finish = finish
  self.pending[id] = w
  -- MCP forbids a client to cancel its initialize: a server that never answered it is
  -- closed instead (the start fails), never told to cancel it
  local function cancel(reason)
    if method ~= "initialize" then
      self:_send(rpc.notification("notifications/cancelled", { requestId = id, reason = reason }))
    end
  end
  local guard <close> = setmetatable({}, { __close = function()
    if not w.done then -- the task was cancelled: so is the request
      w.done = true
      if timer and not timer:is_closing() then timer:close() end
      self.pending[id] = nil
      cancel("cancelled")
      self:_retire()
    end
  end })
  timer = uv.new_timer()
  timer:start(timeout_ms, 0, function()
    if w.done then return end
    self.pending[id] = nil
    cancel("timed out")
    finish(nil, string.format("mcp.%s: %s got no answer in %d ms", self.name, method, timeout_ms), "ETIMEDOUT")
  end)
  local msg = rpc.request(id, method, params or setmetatable({}, nil))
  if self.spec.transport == "http" then
    local ok, err, code = self:_post(rpc.encode(msg), timeout_ms)
    if not ok then finish(nil, err, code) end
    -- the method first: a start says "initialize: " once, where it is not said already
    if not w.done then finish(nil, "mcp." .. self.name .. ": " .. method .. ": the server answered without a response", "EPROTO") end
  else
    local ok = self._write and self._write(rpc.encode(msg))
    if not ok then finish(nil, "mcp." .. self.name .. ": not connected", "EDOWN") end
  end
  if not w.done then
    w.waiting = true
    coroutine.yield()
  end
  self.pending[id] = nil
  self:_retire()
  if w.res[1] == nil and w.res[2] ~= nil then
    -- Orket's errors name the server once; a JSON-RPC error (EMCP_<code>) is the server's own text
    local own = tostring(w.res[3]):find("^EMCP_")
    w.res[2] = self:redact(own and w.res[2] or M.named(self.name, w.res[2]))
  end
  return table.unpack(w.res, 1, w.res.n)
end

function Conn:notify(method, params)
  return self:_send(rpc.notification(method, params))
end

-- The server's env and headers with each secret "NAME" read (orket.settings.secret), kept on
-- the connection only (and masked by redact) -> true | nil, msg
function Conn:_given()
  self.env, self.headers, self.secrets = {}, {}, nil
  local given = {}
  for _, part in ipairs { "env", "headers" } do
    for k, v in pairs(self.spec[part] or {}) do
      local value, err = v, nil
      if secret.name_of(v) then value, err = secret.value(v, nil, self.getenv) end
      if not value then return nil, string.format("%s.%s: %s", part, k, err or ("secret " .. v.secret .. " is not set")) end
      self[part][k] = value
      if value ~= v then given[#given + 1] = value end
    end
  end
  self.given_secrets = given
  return true
end

--- conn:start([limit_ms]) -> true | nil, message, CODE (inside a task): spawns or reaches the
--- server, initializes, and lists its tools (conn.tools, conn.refused). limit_ms: the time
--- the whole start may take (a card's call starting its own process: the call's timeout or
--- what is left of the turn's wall budget), past which it fails ETIMEDOUT
function Conn:start(limit_ms)
  local deadline = limit_ms and now() + limit_ms
  local function left() return deadline and math.max(1, deadline - now()) end
  self.state = "starting"
  local given, gerr = self:_given()
  if not given then
    self:close(gerr)
    return nil, M.named(self.name, gerr), "EINVAL"
  end
  if self.spec.transport == "stdio" then
    local ok, err, code = self:_start_stdio()
    if not ok then
      self:close(err)
      return nil, M.named(self.name, err), code
    end
  end
  local r, err, code = self:request("initialize", { protocolVersion = M.PROTOCOL, capabilities = {},
    clientInfo = { name = "orket", version = rt.version() } }, deadline and math.min(self.spec.timeout_ms or 30000, left()))
  if not r then
    -- "initialize" said once: a timeout's message says it already
    -- a server that exited first has said why it closed (with _view_hint's words)
    local why = self.state == "closed" and self.why or self.start_failure or M.bare(self.name, err)
    if not why:find("^initialize") then why = "initialize: " .. why end
    self:close(why)
    return nil, M.named(self.name, why), code
  end
  local accepted = type(r) == "table" and M.ACCEPTED[r.protocolVersion]
  if not accepted or (accepted ~= true and accepted ~= self.spec.transport) then
    local v = type(r) == "table" and tostring(r.protocolVersion):sub(1, 32) or "?"
    self:close("unsupported protocol version " .. v)
    return nil, "mcp." .. self.name .. ": the server speaks protocol " .. v .. ", not 2025-11-25, 2025-06-18 or 2025-03-26"
      .. (self.spec.transport == "stdio" and " (or 2024-11-05)" or ""), "EPROTO"
  end
  self.version = r.protocolVersion
  self.server_info = type(r.serverInfo) == "table" and r.serverInfo or {}
  self.capabilities = type(r.capabilities) == "table" and r.capabilities or {}
  if self.spec.transport == "http" then
    -- over HTTP a notification is POSTed by a task of its own (_send), which the listing's
    -- POST could overtake: a server holding to MCP's order (no request before initialized:
    -- the Python SDK's) refused the listing and was marked down. Its answer is waited for.
    -- A refusal is logged, not fatal: a server that cares says so in the listing.
    local nok, nerr = self:_post(rpc.encode(rpc.notification("notifications/initialized")),
      math.min(self.spec.timeout_ms or 30000, left() or math.huge), true)
    if not nok then self.log { event = "mcp_error", server = self.name, message = tostring(nerr) } end
    if self.state == "closed" then return nil, M.named(self.name, self.why), "EDOWN" end
  else
    self:notify("notifications/initialized")
  end
  local ok, lerr, lcode = self:list_tools(left())
  if not ok then
    self:close(lerr)
    return nil, M.named(self.name, lerr), lcode
  end
  self.state = "ready"
  return true
end

-- One listing's bounds. Its pages may hold a single tool each, so it is bounded by what it
-- brings rather than by pages: MAX_TOOLS * 2 tools, MAX_LIST_BYTES of pages (their JSON:
-- tools, descriptions, schemas and cursors together, all held until the last page) and
-- LIST_TIMEOUTS of the server's timeout_ms in all (the old 20 pages' worst case), so a
-- server that pages slowly without end holds neither memory nor a start. MAX_PAGES stops
-- a server whose cursors never end with pages of nothing.
M.MAX_PAGES = M.MAX_TOOLS * 2 + 2
M.MAX_LIST_BYTES = 8 * 1024 * 1024
M.LIST_TIMEOUTS = 20

--- conn:list_tools([limit_ms]) -> true | nil, msg, CODE: tools/list, every page within the
--- bounds above; a listing cut short keeps the tools of the pages read, and says so (once,
--- and again when why changes). limit_ms: the caller's time (a card's call), when shorter
--- than those bounds: a listing that does not end within it fails ETIMEDOUT, not cut short
function Conn:list_tools(limit_ms)
  local all, cursor, seen, bytes, pages, cut_why = {}, nil, {}, 0, 0, nil
  local timeout = self.spec.timeout_ms or 30000
  local bounded = limit_ms and limit_ms < timeout * M.LIST_TIMEOUTS
  local deadline = now() + (bounded and limit_ms or timeout * M.LIST_TIMEOUTS)
  while true do
    if pages >= M.MAX_PAGES then
      cut_why = "more than " .. M.MAX_PAGES .. " pages"
      break
    end
    local left = deadline - now()
    if left <= 0 and bounded then
      return nil, M.named(self.name, string.format("tools/list did not end within %d ms (%d page%s read)", limit_ms,
        pages, pages == 1 and "" or "s")), "ETIMEDOUT"
    end
    if left <= 0 then
      cut_why = string.format("it took more than %d ms", timeout * M.LIST_TIMEOUTS)
      break
    end
    pages = pages + 1
    local r, err, code = self:request("tools/list", cursor and { cursor = cursor } or nil, math.min(timeout, left))
    if not r and code == "ETIMEDOUT" and pages > 1 and left < timeout and not bounded then
      cut_why = string.format("it took more than %d ms", timeout * M.LIST_TIMEOUTS)
      break
    end
    if not r and code == "EMCP_-32601" and pages == 1 and type(self.capabilities) == "table" and self.capabilities.tools == nil then
      -- a server that declares no tools (only resources or prompts) may not have the method:
      -- it has no tools, rather than being down and restarted without end
      break
    end
    if not r then
      local why = M.bare(self.name, err)
      return nil, M.named(self.name, why:find("^tools/list") and why or ("tools/list: " .. why)), code
    end
    -- a listing whose tools is not MCP's array is the server's mistake, not "0 tools"
    if type(r) ~= "table" then return nil, M.named(self.name, "tools/list: the server's result is not an object"), "EPROTO" end
    -- missing or null (Go's nil slice, as real servers with no tools send it) is no tools
    local tools = r.tools
    if tools == nil or tools == cjson.null then tools = {} end
    if not is_array(tools) then
      return nil, M.named(self.name, "tools/list: the tools of the server's result are not an array"), "EPROTO"
    end
    -- the page's size as JSON: what holding it costs (it came as at most MAX_MESSAGE bytes)
    bytes = bytes + #(cjson.encode(r) or "")
    if bytes > M.MAX_LIST_BYTES then
      cut_why = "its pages passed " .. M.MAX_LIST_BYTES .. " bytes (the last one read is not kept)"
      break
    end
    for _, t in ipairs(tools) do
      if #all >= M.MAX_TOOLS * 2 then
        cut_why = "more than " .. (M.MAX_TOOLS * 2) .. " tools"
        break
      end
      all[#all + 1] = t
    end
    if cut_why then break end
    cursor = type(r.nextCursor) == "string" and r.nextCursor or nil
    if not cursor then break end
    -- a cursor given before would list the same pages again
    if seen[cursor] then
      cut_why = "its cursor " .. clip(cursor, 64, jsonout.encode) .. " came again"
      break
    end
    seen[cursor] = true
  end
  if cut_why then
    -- the count, not "the pages before": a page of 5,000 tools had its first 512 kept
    cut_why = string.format("tools/list stopped after %d page%s: %s; the listing is the %d tools read before that, "
      .. "any later ones are left out", pages, pages == 1 and "" or "s", cut_why, #all)
  end
  self.list_cut = cut_why -- for orket mcp list: the tools it shows are not all the server has
  if cut_why ~= self.refusals.cut_said then
    self.refusals.cut_said = cut_why
    if cut_why then self.log { event = "mcp_protocol_error", server = self.name, message = cut_why } end
  end
  self.tools, self.refused = M.tools_of(all)
  -- said once, and again only when it changes: a server listing again and again (or each
  -- card's process of it) would otherwise repeat the same lines without end
  local parts = {}
  for _, f in ipairs(self.refused) do parts[#parts + 1] = f.name .. "\0" .. f.why end
  local said = table.concat(parts, "\n")
  if said ~= self.refusals.said then
    self.refusals.said = said
    for _, f in ipairs(self.refused) do
      self.log { event = "mcp_tool_refused", server = self.name, tool = f.name, message = f.why }
    end
  end
  return true
end

--- conn:call(tool, args [, timeout_ms]) -> {ok=, result= | error=, code=} (inside a task)
function Conn:call(tool, args, timeout_ms)
  local r, err, code = self:request("tools/call", { name = tool, arguments = args }, timeout_ms)
  if not r then return { ok = false, error = tostring(err), code = code or "EMCP" } end
  -- what the server sent is masked before result_of caps it (a text's 64 KiB, an error's
  -- 4096 bytes, a uri's 512): a cut through a secret would leave its prefix unmasked
  if type(r) == "table" then r = self:redact(r) end
  local res = M.result_of(r)
  -- a failed result the server's tool gave (EMCP_TOOL) is its own text; any other is Orket's
  -- reading of the answer, said with the server's and the tool's names
  if res.error and res.code ~= "EMCP_TOOL" then res.error = M.named(self.name, "tool " .. tostring(tool) .. ": " .. res.error) end
  if res.error then res.error = self:redact(res.error) end
  -- a successful result may quote a secret as much as an error (a tool echoing its config
  -- or the request's headers): masked before the model, the journal or a log sees it
  if res.result then res.result = self:redact(res.result) end
  return res
end

--- conn:close([why]): ends the connection (idempotent): waiting requests fail with EDOWN, a
--- stdio server's process tree is killed, on_close is told why.
function Conn:close(why)
  if self.state == "closed" then return end
  self.state = "closed"
  self.why = self:redact(M.bare(self.name, why or "closed"))
  -- the owner hears first: a waiting task resumed below may call again at once
  if self.on_close then self.on_close(self, self.why) end
  -- a call in flight when the server forgot its session may have run (another replica may
  -- have lost it, or the server ended it while the call ran): it is not said "not run"
  self:_fail_pending(self.lost and (self.why .. "; the server had forgotten this call's MCP session (HTTP 404) meanwhile: "
    .. "whether it ran is unknown, so check its effect before calling it again") or self.why, "EDOWN")
  if self.reader then self.reader:close() end
  if self.pipes then
    for _, p in ipairs(self.pipes) do if not p:is_closing() then p:close() end end
  end
  if self.pid and not self.exit then
    -- the helper kills the program's tree on SIGTERM; the group kill is the backstop
    uv.kill(self.pid, "sigterm")
    -- the handle stays open for the exit (wait_gone waits on it) until a last bound, so a
    -- helper that never ends cannot hold the loop
    local pid, proc = self.pid, self.proc
    local t = uv.new_timer()
    t:start(2000, 0, function()
      if proc and not proc:is_closing() then
        uv.kill(-pid, "sigkill")
        t:start(5000, 0, function()
          t:close()
          if not proc:is_closing() then proc:close() end
        end)
      else
        t:close()
      end
    end)
  end
  if self.tmpdir then pcall(tree.remove, self.tmpdir) self.tmpdir = nil end
  if self.session and self.spec.transport == "http" and not self.lost then
    -- the server may forget the session now (it would after its own idle time otherwise)
    local headers = self:_headers()
    task.spawn(function()
      local r = http.request { url = self.spec.url, method = "DELETE", headers = headers,
        total_timeout_ms = 2000 }
      if r then
        pcall(r.headers, r)
        r:close()
      end
    end)
  end
end

--- conn:wait_gone(deadline) -> true | false: (inside a task, after close) waits until a
--- stdio server's helper has exited, or uv.now() reaches deadline. The helper exits only once
--- the program's whole tree is reaped (core/confine.c's sweep), so nothing of the server
--- writes after a true answer.
function Conn:wait_gone(deadline)
  while self.pid and not self.exit and self.proc and not self.proc:is_closing() do
    -- (the exit's callback sets exit; the handle closes before it only at close's last bound)
    if uv.now() >= deadline then return false end
    rt.sleep(5)
  end
  return true
end

M.Conn = Conn
return M
