-- orket.serve.mcp_server: Orket's board as an MCP server, independent of the transport. A session
-- takes decoded JSON-RPC messages and answers them; its tools are the HTTP API's routes
-- (orket.serve.routes, .writes, .runs) called with the same ctx, so a tool call and the
-- matching HTTP request run the same handler, checks and audit. Resources are cards and run
-- transcripts; subscriptions are fed from the journal (orket.store.journal_reads) on a timer.
-- Prompts and completions: orket.mcp.prompts.
local uv = require "luv"
local task = require "orket.task"
local cschema = require "orket.c.schema"
local jsonout = require "orket.jsonout"
local rpc = require "orket.mcp.jsonrpc"
local body = require "orket.serve.body"
local router_mod = require "orket.serve.router"
local keys = require "orket.serve.keys"
local projects = require "orket.serve.projects"
local sj = require "orket.store.journal_reads"
local card_view = require "orket.views.card"
local log_view = require "orket.views.log"
local routes = require "orket.serve.routes"
local writes = require "orket.serve.writes"
local runs = require "orket.serve.runs"
local rt = require "orket.c.runtime"
local store_runs = require "orket.store.runs"
local board = require "orket.board"
local prompts = require "orket.mcp.prompts"
local inert = require "orket.inert"

local M = {}

-- Newest first. 2026-07-28 is stateless (no initialize; the version rides in each request's
-- _meta); the others negotiate in initialize. The older revisions' messages are a subset of
-- what this server sends (fields they do not know, as structuredContent, are ignored by their
-- clients), so a client of any of them is answered in its own.
M.VERSIONS = { "2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05" }
local HANDSHAKE = { ["2025-11-25"] = true, ["2025-06-18"] = true, ["2025-03-26"] = true, ["2024-11-05"] = true }
local STATELESS = "2026-07-28"
local META_VERSION = "io.modelcontextprotocol/protocolVersion"

M.NOT_INITIALIZED = -32002 -- implementation-defined range: a request before initialize
M.RESOURCE_NOT_FOUND = -32002 -- 2025-11-25's code; 2026-07-28 uses invalid params
-- 2026-07-28's codes: a request's headers and body disagree; its version is not spoken
M.HEADER_MISMATCH = -32020
M.UNSUPPORTED_VERSION = -32022

M.PAGE = 100         -- tools/list and resources/list entries per page
M.POLL_MS = 250      -- how often the journal is read for subscriptions
M.MAX_SUBSCRIPTIONS = 256

local null = rpc.null

local function str(max, desc) return { type = "string", minLength = 1, maxLength = max, description = desc } end

-- The tools: each names a route of the HTTP API, where its arguments go (path parameters,
-- query, body) and the role it needs (the route's own).
local function tool(name, route, description, path, query, readonly)
  return { name = name, route = route, description = description, path = path or {}, query = query or {}, readonly = readonly }
end

local TOOLS = {
  tool("board", "board", "The board: rocks, epics and issues with status, seat and priority (orket.board/1). "
    .. "root: an epic or rock to show alone.", nil, { root = str(128, "an epic or rock id") }, true),
  tool("get_card", "card", "One card with its comments, history and what it waits on (orket.card/1).",
    { id = str(128, "the card id") }, nil, true),
  tool("list_runs", "runs", "Runs, newest first.", nil, { state = { type = "string", enum = runs.STATES, description = "only runs in this state" },
    limit = { type = "integer", minimum = 1, maximum = 200, description = "at most this many (50)" } }, true),
  tool("get_run", "run", "One run.", { id = { type = "integer", minimum = 1, description = "the run id" } }, nil, true),
  tool("run_transcript", "run_transcript", "A run's transcript: its events and transitions (orket.log/1), a page "
    .. "at a time (next: the after of the next page), each text cut at " .. log_view.FIELD_MAX .. " bytes "
    .. "(an event's cut lists its texts cut).",
    { id = { type = "integer", minimum = 1, description = "the run id" } },
    { after = { type = "integer", minimum = 0, description = "the events after this event id (0: from the first)" } }, true),
  tool("create_issue", "create", "File a new issue under an epic."),
  tool("comment", "comment", "Comment on a card.", { id = str(128, "the card id") }),
  tool("answer", "answer", "Answer a card waiting for input; it goes back to ready. (A card a money budget "
    .. "stopped is approved, not answered.)", { id = str(128, "the card id") }),
  -- a decision names the request it decides (approval, as get_card shows it): one asked for
  -- after the card was read is never decided by it (orket.serve.writes refuses one without)
  tool("approve", "approve", "Approve the tool call a card waits on (it runs once on the card's next turn): "
    .. "approval is the number of the request (get_card's approvals[].id), the one you were shown; or let a card a "
    .. "money budget stopped go on, one budget's worth more (no approval).", { id = str(128, "the card id") }),
  tool("deny", "deny", "Refuse the tool call a card waits on, with a reason the model can act on: approval is "
    .. "the number of the request (get_card's approvals[].id).", { id = str(128, "the card id") }),
  tool("retry", "retry", "Get a blocked or waiting card moving again.", { id = str(128, "the card id") }),
  tool("start_run", "run_start", "Start a run of an epic, a rock or a card in this process."),
}
M.TOOLS = TOOLS

local function copy(t)
  local o = {}
  for k, v in pairs(t) do o[k] = type(v) == "table" and copy(v) or v end
  return o
end

-- The router of every API route, built once: tools find their route here by name.
local shared_router
local function api_router()
  if shared_router then return shared_router end
  local r = router_mod.new()
  routes.add(r)
  writes.add(r)
  runs.add(r)
  local by_name = {}
  for _, route in ipairs(r.routes) do if route.name then by_name[route.name] = route end end
  shared_router = { router = r, by_name = by_name }
  return shared_router
end

-- A tool's input schema: its path and query arguments and the route's body, one strict object.
local function input_schema(t, route)
  local props, required = {}, {}
  local body = route.schema
  if body then
    for k, v in pairs(body.properties) do props[k] = copy(v) end
    for _, k in ipairs(body.required or {}) do required[#required + 1] = k end
  end
  for k, v in pairs(t.query) do props[k] = copy(v) end
  for k, v in pairs(t.path) do
    props[k] = copy(v)
    required[#required + 1] = k
  end
  -- "priority" takes a number or High/Medium/Low over HTTP; an empty schema reads as any
  -- value, and a schema of two types is one some clients cannot map: the number alone, a
  -- whole one as the route takes it (3 and 3.0; 2.5 is refused)
  if props.priority and next(props.priority) == nil then
    props.priority = { type = "integer", minimum = 0, maximum = 10, description = "3 high, 2 medium, 1 low (0 to 10)" }
  end
  table.sort(required)
  return { type = "object", properties = props, required = jsonout.array(required), additionalProperties = false }
end

--- session:allowed(def) -> whether the session's role may call the tool
function M:allowed(def) return keys.allows(self.who.role, def.route.role) end

--- session:may_write() -> whether any writing tool is the session's
function M:may_write()
  for _, d in ipairs(self.tools) do if not d.t.readonly and self:allowed(d) then return true end end
  return false
end

local function tool_defs()
  local api = api_router()
  local out = {}
  for _, t in ipairs(TOOLS) do
    local route = assert(api.by_name[t.route], t.route)
    out[#out + 1] = { t = t, route = route, schema = input_schema(t, route) }
  end
  return out
end

--- new{db=, dir=, who=, send=fn(msg), log=fn(fields), read_only=, scoped=, refusal=} -> session. who: {id=,
--- role=[, user=, key_id=]} (an API key, a person and the key they came with, or the local
--- user: nil id, role admin); send: writes one message to
--- the peer (notifications); without send, resources cannot be subscribed to; read_only:
--- the server was started read-only (who a viewer), which its refusals say; scoped: reached
--- under /v1/projects/{p}/ (its writes are audited with the project's routes); refusal:
--- fn(role, need) -> message, remedy: a tool's 403 in the words of the REST route's, naming
--- the project (orket.serve.projects.refusal), given by the transport that knows it.
function M.new(o)
  local self = setmetatable({ db = o.db, dir = o.dir, who = o.who or { role = "admin" }, send = o.send, read_only = o.read_only,
    scoped = o.scoped, refusal = o.refusal,
    state = "new", subs = {}, nsubs = 0, tools = tool_defs(), log = o.log or function() end }, { __index = M })
  return self
end

local function version_of(params)
  local meta = type(params) == "table" and params._meta
  return type(meta) == "table" and meta[META_VERSION] or nil
end

--- unsupported_version(id, requested) -> 2026-07-28's UnsupportedProtocolVersionError: the
--- versions spoken in data.supported, for a client to pick one and retry
function M.unsupported_version(id, requested)
  return rpc.error(id, M.UNSUPPORTED_VERSION, "unsupported protocol version", { supported = jsonout.array { table.unpack(M.VERSIONS) },
    requested = type(requested) == "string" and requested:sub(1, 64) or null })
end

local function server_info()
  return { name = "orket", title = "Orket", version = rt.version() }
end

local function capabilities(self)
  return { tools = { listChanged = false }, resources = { subscribe = self.send ~= nil, listChanged = false }, logging = {},
    prompts = { listChanged = false }, completions = {} }
end

-- ---- logging (notifications/message) ---------------------------------------------------

-- RFC 5424's severities, least severe first, as MCP names them.
M.LOG_LEVELS = { "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency" }
local SEVERITY = {}
for i, l in ipairs(M.LOG_LEVELS) do SEVERITY[l] = i end

--- session:notify_log(level, data): a notifications/message to the client, when it set a
--- level (logging/setLevel) this one reaches and there is a stream to send on (stdio; over
--- HTTP this server sends messages only in answers). Nothing is sent before the client asks:
--- a client that never set a level is not sent lines it did not expect.
function M:notify_log(level, data)
  if not self.send or not self.log_level or SEVERITY[level] < self.log_level then return end
  self.send(rpc.notification("notifications/message", { level = level, logger = "orket", data = data }))
end

-- What the session may do, said as the session can do it: the writing tools only for a role
-- that may write, subscriptions only where there is a stream to notify on.
local function instructions(self)
  local can = { "read cards, the board and runs" }
  if self:may_write() then
    can[#can + 1] = "file issues, comment, answer, approve or deny a waiting tool call, retry a card, start a run"
  end
  return "Orket's board: " .. table.concat(can, "; ") .. ". Resources: orket://cards/{id} and "
    .. "orket://runs/{id}/transcript" .. (self.send and " (subscribe for updates)." or " (read them again for updates).")
end

-- ---- tools -----------------------------------------------------------------------------

-- The largest integer a JSON number (read as a double) holds exactly, with its neighbours
local MAX_EXACT = 2 ^ 53 - 1

local function tool_error(code, message, status, remedy)
  return { isError = true, content = jsonout.array { { type = "text", text = code .. ": " .. message
      .. (remedy and ("; " .. remedy) or "") } },
    structuredContent = { error = { code = code, message = message, status = status, remedy = remedy } } }
end

--- as_arguments(schema, message) -> a route's message with each `body.X` naming one of the
--- tool's arguments said `arguments.X`, as the tool's own checks say it (start_run's bad
--- model came as "body.model ...": the MCP caller sent no body)
function M.as_arguments(schema, message)
  if type(message) ~= "string" then return message end
  return (message:gsub("%f[%w_.]body%.([%a_][%w_]*)", function(name)
    if schema.properties[name] then return "arguments." .. name end
  end))
end

-- Calls the tool's route handler as the HTTP API would; the answer as a tool result.
function M:call_tool(def, args)
  local t, route = def.t, def.route
  if not self:allowed(def) then
    -- a read-only server's refusal is its mode's, which no role changes
    if self.read_only then return tool_error("forbidden", "this server is read-only (--read-only): " .. t.name .. " writes", 403) end
    -- over HTTP, the REST route's words: the role in the project, the one held, who grants it
    if self.refusal then
      local msg, remedy = self.refusal(self.who.role, route.role)
      return tool_error("forbidden", msg, 403, remedy)
    end
    return tool_error("forbidden", "this needs the " .. route.role .. " role", 403)
  end
  local ok, msg = cschema.validate(def.schema, args)
  if not ok then return tool_error("bad_request", (tostring(msg):gsub("^args", "arguments")), 400) end
  -- JSON Schema's integer is any whole number, 1e20 too, and the JSON-RPC decoder reads
  -- every number as a double: exact only up to 2^53-1 in size. One past it may be another id
  -- rounded (9007199254740993 arrives as ...992) and would be asked for silently, or reach
  -- the route as "1e+20" (a run "not found"): refused, saying why
  for k, v in pairs(args) do
    local p = def.schema.properties[k]
    if p and p.type == "integer" and type(v) == "number" then
      local ok, shown = pcall(jsonout.encode, v)
      shown = ok and shown or tostring(v)
      if math.abs(v) > MAX_EXACT then
        return tool_error("bad_request", string.format("arguments.%s: %s is past 2^53-1 (9007199254740991) in size, "
          .. "where a JSON number stops being exact (it may be another number, rounded)", k, shown), 400)
      elseif not math.tointeger(v) then
        return tool_error("bad_request", string.format("arguments.%s: %s is not a whole number", k, shown), 400)
      end
    end
  end
  local pattern = self.scoped and projects.scoped_pattern(route.pattern) or route.pattern
  local ctx = { db = self.db, dir = self.dir, who = self.who.id and self.who or nil, route = pattern,
    params = {}, query = {}, body = nil, mcp = true, operator = self.who.operator }
  local body = route.body == "json" and {} or nil
  for k, v in pairs(args) do
    if t.path[k] then ctx.params[k] = tostring(math.tointeger(v) or v)
    elseif t.query[k] then ctx.query[k] = tostring(math.tointeger(v) or v)
    elseif body then body[k] = v end
  end
  ctx.body = body
  local hok, status, doc = xpcall(route.handler, debug.traceback, nil, ctx)
  if not hok then
    self.log { event = "error", tool = t.name, message = tostring(status) }
    return tool_error("internal", "the server failed; its log says why", 500)
  end

  if status < 400 and jsonout.is_encoded(doc) then
    -- a kept answer already encoded (the board): its text as it is; decoding it again would
    -- lose which empty tables are arrays, and structuredContent is optional
    return { content = jsonout.array { { type = "text", text = (doc.text:gsub("\n$", "")) } } }
  end
  if status >= 400 then
    local e = type(doc) == "table" and doc.error or {}
    return tool_error(e.code or "error", M.as_arguments(def.schema, e.message or "failed"), status)
  end
  -- the route has run (a write committed): nothing from here on may turn it into a failure
  local fok, res = pcall(self.answer_of, self, t, doc)
  if fok then return res end
  self.log { event = "error", tool = t.name, message = "answer: " .. tostring(res) }
  return { content = jsonout.array { { type = "text", text = t.name .. (t.readonly and " could not show its answer"
    or " was done, but its answer could not be shown") .. " (the server's log says why)" } } }
end

-- ---- answer sizes ----------------------------------------------------------------------

-- One tool answer is kept within ANSWER_MAX bytes of JSON, a quarter of the 4 MiB message
-- Orket's own client reads (rpc.MAX_MESSAGE; the official SDK's stdio reads 10 MiB), so that
-- the envelope, escaping and a client with a smaller limit have room. Unbounded, a card of
-- many long comments made an 11 MB line: the SDK's session died, Orket's client refused it
-- (after the comment it answered was written). A card's comments are what grows without
-- bound: each body is cut at COMMENT_MAX bytes and the newest are kept while their JSON
-- fits CARD_LISTS_MAX.comments; its other lists likewise (the newest kept), each cut said
-- in the document's "omitted", with where the whole card is read.
M.ANSWER_MAX = 1024 * 1024
M.COMMENT_MAX = 8 * 1024
M.CARD_LISTS_MAX = { comments = 256 * 1024, history = 128 * 1024, approvals = 256 * 1024,
  verifications = 128 * 1024, violations = 64 * 1024 }
local CARD_LISTS = { "comments", "history", "approvals", "verifications", "violations" }
-- revisions before structuredContent (2025-06-18): their clients read the text alone
local TEXT_ONLY = { ["2025-03-26"] = true, ["2024-11-05"] = true }

--- fit_card(doc) -> the orket.card/1 document cut to fit an MCP answer (the same table when
--- nothing was cut): comment bodies past COMMENT_MAX cut (body_bytes: the whole length), the
--- oldest entries of a list past its share left out, and omitted = {comments = N, ...,
--- read = where the whole card is} when any was
function M.fit_card(doc)
  local omitted, any = {}, false
  local out = {}
  for k, v in pairs(doc) do out[k] = v end
  local cm = {}
  for i, c in ipairs(doc.comments or {}) do
    if type(c.body) == "string" and #c.body > M.COMMENT_MAX then
      c = { id = c.id, author = c.author, created_at = c.created_at, body = inert.cut(c.body, M.COMMENT_MAX),
        body_bytes = #c.body, cut = true }
      omitted.comment_bodies_cut = (omitted.comment_bodies_cut or 0) + 1
      any = true
    end
    cm[i] = c
  end
  out.comments = jsonout.array(cm)
  for _, name in ipairs(CARD_LISTS) do
    local list = out[name]
    if type(list) == "table" then
      local budget, used, from = M.CARD_LISTS_MAX[name], 0, #list + 1
      -- newest last in each list: walk back from the end while the entries fit
      for i = #list, 1, -1 do
        used = used + #jsonout.encode(list[i]) + 1
        if used > budget then break end
        from = i
      end
      if from > 1 then
        local kept = {}
        for i = from, #list do kept[#kept + 1] = list[i] end
        out[name] = jsonout.array(kept)
        omitted[name] = from - 1
        any = true
      end
    end
  end
  if not any then return doc end
  local id = type(doc.card) == "table" and doc.card.id or "ID"
  omitted.read = "this answer is cut to fit an MCP message (" .. M.ANSWER_MAX .. " bytes): each list's count is its oldest "
    .. "entries left out, comment_bodies_cut the bodies cut at " .. M.COMMENT_MAX .. " bytes (body_bytes: the whole); GET /v1/cards/" .. tostring(id) .. " (the HTTP API) or `orket card " .. tostring(id) .. " --json` gives the whole card"
  out.omitted = omitted
  return out
end

--- session:answer_of(t, doc) -> the tool result of a route's answer: the JSON as text and as
--- structuredContent, a card cut to fit (fit_card); when the two together would pass
--- ANSWER_MAX, the text is a note pointing at structuredContent rather than a second copy
--- (a pre-2025-06-18 session, whose client has no structuredContent, gets the text alone)
function M:answer_of(t, doc)
  if type(doc) == "table" and doc.format == "orket.card/1" then doc = M.fit_card(doc) end
  local text = jsonout.encode(doc)
  if #text > M.ANSWER_MAX then
    return { content = jsonout.array { { type = "text", text = M.too_large(t, doc, #text) } } }
  end
  -- the text block as JSON holds the text escaped again: at most twice its bytes
  if #text * 3 > M.ANSWER_MAX then
    if TEXT_ONLY[self.version] then return { content = jsonout.array { { type = "text", text = text } } } end
    text = string.format("%s: the answer's JSON (%d bytes) is in structuredContent; not repeated here, to keep the "
      .. "answer within %d bytes", t.name, #text, M.ANSWER_MAX)
  end
  return { content = jsonout.array { { type = "text", text = text } }, structuredContent = doc }
end

--- too_large(t, doc, n) -> the note that stands for an answer of n bytes that cutting could not
--- bring within ANSWER_MAX (a write's note says it was done: it was)
function M.too_large(t, doc, n)
  local id = type(doc) == "table" and type(doc.card) == "table" and doc.card.id or nil
  return string.format("%s%s: its answer (%d bytes of JSON) is past the %d bytes of an MCP answer and is not shown%s",
    t.name, t.readonly and "" or " was done", n, M.ANSWER_MAX,
    id and ("; GET /v1/cards/" .. id .. " (the HTTP API) or `orket card " .. id .. " --json` gives it") or "")
end

--- session:tool_text(name, args) -> the text a tool call answers | nil, message (its error)
function M:tool_text(name, args)
  for _, d in ipairs(self.tools) do
    if d.t.name == name then
      local res = self:call_tool(d, args)
      if res.isError then return nil, res.content[1].text end
      return res.content[1].text
    end
  end
  return nil, "no tool " .. name
end

-- ---- resources -------------------------------------------------------------------------

local function card_uri(id) return "orket://cards/" .. id end
local function run_uri(id) return "orket://runs/" .. id .. "/transcript" end

-- What a URI names: "card", id | "run", id | nil
local function parse_uri(uri)
  if type(uri) ~= "string" or #uri > 512 then return nil end
  local c = uri:match("^orket://cards/([%w_.%-]+)$")
  if c then return "card", c end
  local r = uri:match("^orket://runs/(%d+)/transcript$")
  if r then return "run", math.tointeger(tonumber(r)) end
  return nil
end

function M:resource_text(uri)
  local kind, id = parse_uri(uri)
  if kind == "card" then
    local doc = card_view.json_doc(self.db, id, self.dir)
    -- cut as get_card's answer is (a resource's read is one message too)
    if doc then
      local text = jsonout.encode(M.fit_card(doc))
      return #text <= M.ANSWER_MAX and text or jsonout.encode { format = "orket.card/1", card = doc.card,
        omitted = { read = M.too_large({ name = "orket://cards/" .. id, readonly = true }, doc, #text) } }
    end
  elseif kind == "run" and id and store_runs.get(self.db, id) then
    local doc = log_view.served(self.db, self.dir, id) -- (its first page: the tool gives the others)
    if doc then return jsonout.encode(doc) end
  end
  return nil
end

-- Every resource: the cards in creation order, then the runs newest first.
function M:resource_list()
  local out = {}
  for _, c in ipairs(board.open(self.db):list {}) do
    out[#out + 1] = { uri = card_uri(c.id), name = c.id, title = c.summary or c.name, mimeType = "application/json",
      description = c.type .. ", " .. c.status }
  end
  for _, r in ipairs(store_runs.recent(self.db, 200)) do
    out[#out + 1] = { uri = run_uri(r.id), name = "run " .. r.id, title = "transcript of run " .. r.id .. " (" .. tostring(r.target) .. ")",
      mimeType = "application/json" }
  end
  return out
end

-- The journal read for subscriptions: one timer per session, while it has any.
function M:_poll()
  local rows = sj.entries_after(self.db, self.after, nil, nil, 500)
  local seen = {}
  for _, r in ipairs(rows) do
    self.after = r.id
    for _, uri in ipairs { r.card_id and card_uri(r.card_id), r.run_id and run_uri(math.tointeger(r.run_id) or r.run_id) } do
      if uri and self.subs[uri] and not seen[uri] then
        seen[uri] = true
        self.send(rpc.notification("notifications/resources/updated", { uri = uri }))
      end
    end
  end
end

function M:_watch()
  if self.timer then return end
  self.after = sj.latest_id(self.db)
  self.timer = uv.new_timer()
  -- each read in a task of its own, one at a time: on PostgreSQL a store read waits on the
  -- loop, which a timer's callback cannot do (every read failed there, and no update was
  -- ever sent)
  self.timer:start(M.POLL_MS, M.POLL_MS, function()
    if self.polling then return end
    self.polling = true
    task.spawn(function()
      local ok, err = pcall(self._poll, self)
      self.polling = false
      if not ok then self.log { event = "error", message = "subscriptions: " .. tostring(err) } end
    end)
  end)
end

--- session:close(): stops the journal timer (idempotent)
function M:close()
  if self.timer and not self.timer:is_closing() then self.timer:close() end
  self.timer = nil
  self.state = "closed"
end

-- ---- methods ---------------------------------------------------------------------------

local function page(list, cursor, size)
  local start = 1
  if cursor ~= nil then
    start = type(cursor) == "string" and math.tointeger(tonumber(cursor:match("^%d+$") or "")) or nil
    if not start or start < 1 or start > #list + 1 then return nil end
  end
  local out = {}
  for i = start, math.min(#list, start + size - 1) do out[#out + 1] = list[i] end
  local nxt = start + size <= #list and tostring(start + size) or nil
  return jsonout.array(out), nxt
end

local function bad_params(msg) return nil, rpc.INVALID_PARAMS, msg end

local methods = {}

function methods.ping() return {} end

function methods.initialize(self, p)
  if type(p.protocolVersion) ~= "string" then return bad_params("initialize needs protocolVersion (a string)") end
  if self.state ~= "new" then return nil, rpc.INVALID_REQUEST, "already initialized" end
  -- the client's version when we speak it, else our newest that has this handshake
  local v = HANDSHAKE[p.protocolVersion] and p.protocolVersion or "2025-11-25"
  self.version, self.state = v, "initialized"
  self.client = type(p.clientInfo) == "table" and p.clientInfo or nil
  return { protocolVersion = v, capabilities = capabilities(self), serverInfo = server_info(), instructions = instructions(self) }
end

methods["server/discover"] = function(self)
  return { supportedVersions = jsonout.array { table.unpack(M.VERSIONS) }, capabilities = capabilities(self),
    serverInfo = server_info(), instructions = instructions(self) }
end

methods["logging/setLevel"] = function(self, p)
  if not SEVERITY[p.level] then
    return bad_params("logging/setLevel needs level, one of " .. table.concat(M.LOG_LEVELS, ", "))
  end
  self.log_level = SEVERITY[p.level]
  return {}
end

methods["tools/list"] = function(self, p)
  local all = {}
  for _, d in ipairs(self.tools) do
    -- a tool the role may not call is not offered (a call still answers "forbidden")
    if self:allowed(d) then
      all[#all + 1] = { name = d.t.name, description = d.t.description, inputSchema = d.schema,
        annotations = { readOnlyHint = d.t.readonly == true, destructiveHint = false, openWorldHint = false } }
    end
  end
  local items, nxt = page(all, p.cursor, M.PAGE)
  if not items then return bad_params("invalid cursor") end
  return { tools = items, nextCursor = nxt }
end

methods["tools/call"] = function(self, p)
  if type(p.name) ~= "string" then return bad_params("tools/call needs name (a string)") end
  local args = p.arguments
  if args == nil then args = {} end
  if type(args) ~= "table" then return bad_params("arguments must be an object") end
  for _, d in ipairs(self.tools) do
    if d.t.name == p.name then
      local res = self:call_tool(d, args)
      -- each call, for a client that set a level: refusals as warnings, the server's own
      -- failures as errors, writes as info, reads as debug
      local e = res.isError and res.structuredContent.error
      local level = e and (e.code == "internal" and "error" or "warning") or (d.t.readonly and "debug" or "info")
      self:notify_log(level, { tool = p.name, error = e or nil })
      return res
    end
  end
  return bad_params("unknown tool: " .. p.name:sub(1, 128))
end

methods["prompts/list"] = function(_, p)
  local items, nxt = page(prompts.list(), p.cursor, M.PAGE)
  if not items then return bad_params("invalid cursor") end
  return { prompts = items, nextCursor = nxt }
end

methods["prompts/get"] = function(self, p) return prompts.get(self, p.name, p.arguments) end

methods["completion/complete"] = function(self, p) return prompts.complete(self, p.ref, p.argument) end

methods["resources/list"] = function(self, p)
  local items, nxt = page(self:resource_list(), p.cursor, M.PAGE)
  if not items then return bad_params("invalid cursor") end
  return { resources = items, nextCursor = nxt }
end

methods["resources/templates/list"] = function()
  return { resourceTemplates = jsonout.array {
    { uriTemplate = "orket://cards/{id}", name = "card", title = "A card (orket.card/1)", mimeType = "application/json" },
    { uriTemplate = "orket://runs/{id}/transcript", name = "run_transcript", title = "A run's transcript (orket.log/1)",
      mimeType = "application/json" } } }
end

function M:_not_found(uri)
  local code = self.version == STATELESS and rpc.INVALID_PARAMS or M.RESOURCE_NOT_FOUND
  return nil, code, "resource not found", { uri = uri }
end

methods["resources/read"] = function(self, p)
  if type(p.uri) ~= "string" then return bad_params("resources/read needs uri (a string)") end
  local text = self:resource_text(p.uri)
  if not text then return self:_not_found(p.uri) end
  return { contents = jsonout.array { { uri = p.uri, mimeType = "application/json", text = text } } }
end

methods["resources/subscribe"] = function(self, p)
  if not self.send then return nil, rpc.METHOD_NOT_FOUND, "subscriptions need a stream to the client: use stdio (orket mcp serve)" end
  if type(p.uri) ~= "string" then return bad_params("resources/subscribe needs uri (a string)") end
  if not parse_uri(p.uri) or not self:resource_text(p.uri) then return self:_not_found(p.uri) end
  if not self.subs[p.uri] then
    if self.nsubs >= M.MAX_SUBSCRIPTIONS then return bad_params("too many subscriptions (" .. M.MAX_SUBSCRIPTIONS .. ")") end
    self.subs[p.uri], self.nsubs = true, self.nsubs + 1
  end
  self:_watch()
  return {}
end

methods["resources/unsubscribe"] = function(self, p)
  if type(p.uri) ~= "string" then return bad_params("resources/unsubscribe needs uri (a string)") end
  if self.subs[p.uri] then self.subs[p.uri], self.nsubs = nil, self.nsubs - 1 end
  return {}
end

-- Methods a client may send before initialize.
local BEFORE_INIT = { initialize = true, ping = true, ["server/discover"] = true }

--- session:handle(msg, kind) -> response message | nil (for notifications and responses).
--- msg, kind as orket.mcp.jsonrpc.decode gives them.
function M:handle(msg, kind)
  if kind == "notification" then
    if msg.method == "notifications/initialized" and self.state == "initialized" then self.state = "ready" end
    return nil -- cancellations and progress: every call here answers at once
  end
  if kind == "response" then return nil end -- we send no requests
  local id, method = msg.id, msg.method
  local params = msg.params
  if params == nil or params == null then params = {} end
  local f = methods[method]
  if not f then return rpc.error(id, rpc.METHOD_NOT_FOUND, "method not found: " .. method:sub(1, 128)) end
  local stateless = version_of(params)
  -- a session that negotiated its version in initialize speaks that one: the _meta key is the
  -- stateless revision's, which the session's own does not define, so it is not read there
  -- (a dual-era client sends it anyway; it was answered -32022 (unsupported) even when it
  -- named the session's own version)
  if stateless ~= nil and HANDSHAKE[self.version] then stateless = nil end
  if stateless ~= nil then
    if stateless ~= STATELESS then return M.unsupported_version(id, stateless) end
    if method == "initialize" then return rpc.error(id, rpc.METHOD_NOT_FOUND, "initialize is not part of " .. STATELESS) end
    self.version = self.version or STATELESS
  elseif self.state == "new" and not BEFORE_INIT[method] then
    return rpc.error(id, M.NOT_INITIALIZED, "not initialized: send initialize first")
  end
  local ok, res, code, emsg, data = xpcall(f, debug.traceback, self, params)
  if not ok then
    self.log { event = "error", method = method, message = tostring(res) }
    return rpc.error(id, rpc.INTERNAL_ERROR, "internal error; the server's log says why")
  end
  if res == nil then return rpc.error(id, code, emsg, data) end
  if stateless then
    res.resultType = "complete"
    res._meta = { ["io.modelcontextprotocol/serverInfo"] = server_info() }
  end
  return rpc.result(id, res)
end

-- What the JSON of a message (or a batch: the whole text) holds that the HTTP API refuses
-- too (orket.serve.body.refusal: a NUL in a text, a key given twice): -32602 with the API's
-- words, so that nothing reaches the board through one door that the other refuses. The id
-- is the message's, unless "id" is the key given twice (which copy is meant is unknown).
local function refused(text, v, id)
  local code, why, key = body.refusal(text, v, "the message")
  if not code then return nil end
  return rpc.error(key ~= "id" and id or nil, rpc.INVALID_PARAMS, why)
end

-- JSON-RPC batches are 2025-03-26's alone (the revisions after it removed them): a session
-- that negotiated it takes them, every other refuses them.
local BATCHES = { ["2025-03-26"] = true }

--- session:takes_batches() -> whether this session's version has JSON-RPC batches
function M:takes_batches() return BATCHES[self.version] == true end

-- A batch's answer is built in memory and sent whole: once its answers so far reach this,
-- the messages left are not run (each request answered BATCH_TOO_LARGE), so that one batch
-- of large reads cannot hold the server's memory (the answer is at most this plus one answer).
M.BATCH_ANSWER_CAP = rpc.MAX_MESSAGE
M.RATE_LIMITED = -32029      -- implementation-defined range: a batch's message past the key's rate
M.BATCH_TOO_LARGE = -32013   -- a batch's message not run: the answer reached BATCH_ANSWER_CAP
M.SESSION_ENDED = -32001     -- a batch's message not run: its session ended (as an unknown session's)

--- session:handle_batch(text [, o]) -> response text | nil: a batch in (initialize may not be
--- in one), the array of its answers out, in order; nil when it held only notifications and
--- responses. o: {take = fn() -> whether the message after the first may run (a rate
--- limit's token; once one is refused, so are the rest), pause = fn() called between
--- messages (the HTTP server yields to its loop there), live = fn() -> whether the session
--- and its server still go after a pause (once not, the rest is not run), cap = bytes
--- (BATCH_ANSWER_CAP)}
function M:handle_batch(text, o)
  o = o or {}
  local items, e = rpc.decode_batch(text)
  if not items then return rpc.encode(rpc.error(e.id, e.code, e.message)) end
  -- read as the HTTP API reads a body: refused whole, none of its messages run
  local whole = {}
  for i, it in ipairs(items) do whole[i] = it.msg or false end
  local bad = refused(text, whole)
  if bad then return rpc.encode(bad) end
  local cap = o.cap or M.BATCH_ANSWER_CAP
  local out, size, limited, full, ended = {}, 2, false, false, false
  for i, it in ipairs(items) do
    if i > 1 then
      if o.pause then o.pause() end
      if not ended and o.live and not o.live() then ended = true end
      if not ended and not limited and not full and o.take and not o.take() then limited = true end
    end
    local id = it.err and it.err.id or (it.kind == "request" and it.msg.id) or nil
    local res
    if ended then
      if id ~= nil then res = rpc.error(id, M.SESSION_ENDED, "the MCP session or its server ended during this batch: the messages from here on were not run") end
    elseif limited then
      -- a notification past the limit is dropped, as one after the cap: it asks for no answer
      if id ~= nil then res = rpc.error(id, M.RATE_LIMITED, "rate limited: this batch's messages from here on went past the requests allowed to this key; they were not run (send them again later)") end
    elseif full then
      if id ~= nil then res = rpc.error(id, M.BATCH_TOO_LARGE, "this batch's answer reached " .. cap .. " bytes: the messages from here on were not run (send them again, or alone)") end
    elseif it.err then
      res = rpc.error(it.err.id, it.err.code, it.err.message)
    elseif it.kind == "request" and it.msg.method == "initialize" then
      res = rpc.error(it.msg.id, rpc.INVALID_REQUEST, "initialize may not be part of a batch")
    else
      res = self:handle(it.msg, it.kind)
    end
    if res then
      local enc = jsonout.encode(res)
      out[#out + 1] = enc
      size = size + #enc + 1
      if size >= cap then full = true end
    end
  end
  if #out == 0 then return nil end
  return "[" .. table.concat(out, ",") .. "]"
end

--- decode(text) -> msg, kind | nil, error object: orket.mcp.jsonrpc.decode, and a message
--- refused as the HTTP API refuses its body (refused, above) is an error with its words
function M.decode(text)
  local msg, kind = rpc.decode(text)
  if not msg then return nil, kind end
  local e = refused(text, msg, msg.id)
  if e then return nil, { code = e.error.code, message = e.error.message, id = e.id ~= null and e.id or nil, method = msg.method ~= nil } end
  return msg, kind
end

--- session:handle_text(line) -> response text | nil: one message as text in, one out (a
--- batch, where the session takes them: session:handle_batch)
function M:handle_text(text)
  if rpc.is_batch(text) and self:takes_batches() then return self:handle_batch(text) end
  local msg, kind = M.decode(text)
  if not msg then
    local e = kind
    return rpc.encode(rpc.error(e.id, e.code, e.message))
  end
  local res = self:handle(msg, kind)
  return res and rpc.encode(res) or nil
end

return M
