-- orket.serve.mcp_http: the /mcp route of orket serve, MCP's Streamable HTTP transport. POST takes
-- one JSON-RPC message (or, in a 2025-03-26 session, a batch) and answers a request with
-- JSON (a notification or a response: 202);
-- initialize starts a session (Mcp-Session-Id), bound to the API key that made it; DELETE
-- ends it; GET is no route of it (the router's 405, whose Allow is OPTIONS's: server-to-
-- client messages go only in answers here). The
-- key's role decides what the tools may do (orket.serve.mcp_server: a viewer cannot write);
-- Accept must allow application/json, the only type answered in (406), MCP-Protocol-Version
-- a version this server speaks (400; another than the session's is answered in the
-- session's: the official conformance suite sends 2025-03-26 in a 2025-11-25 session).
-- Outside a session the stateless revision's rules hold: an unsupported version is its
-- -32022 and a header that differs from _meta's version its -32020 (400). Before the key, a
-- browser Origin must be loopback or in serve.cors, and so must the Host on a server
-- listening on loopback (DNS rebinding).
local crypto = require "orket.c.crypto"
local rpc = require "orket.mcp.jsonrpc"
local server = require "orket.serve.mcp_server"
local projects = require "orket.serve.projects"
local jsonout = require "orket.jsonout"
local auth = require "orket.serve.auth"
local routes = require "orket.serve.routes"
local body_answer = require "orket.serve.body"
local uv = require "luv"
local rt = require "orket.c.runtime"

local M = {}

M.MAX_SESSIONS = 1024
-- sessions of one key (a person's keys together: who.id): its oldest one ends when it
-- makes one more, so that one key cannot fill the server's and shut every other key out
M.MAX_PER_KEY = 32
M.IDLE_MS = 30 * 60 * 1000 -- a session unused this long is forgotten

local err = routes.err
local KNOWN = {}
for _, v in ipairs(server.VERSIONS) do KNOWN[v] = true end

-- The sessions of a server, by its store handle: by_id: id -> {s = session, key =, used =};
-- n: how many; of_key: key -> how many
local registries = setmetatable({}, { __mode = "k" })
local function sessions_of(db)
  local r = registries[db]
  if not r then
    r = { by_id = {}, n = 0, of_key = {} }
    registries[db] = r
  end
  return r
end

local function now() return uv.now() end

local function drop(reg, id)
  local e = reg.by_id[id]
  e.s:close()
  reg.by_id[id], reg.n = nil, reg.n - 1
  local left = reg.of_key[e.key] - 1
  reg.of_key[e.key] = left > 0 and left or nil
end

local function forget_idle(reg)
  local t = now()
  for id, e in pairs(reg.by_id) do
    if t - e.used > M.IDLE_MS then drop(reg, id) end
  end
end

-- The key's least recently used session ends when it is at its cap
local function make_room(reg, key)
  if (reg.of_key[key] or 0) < M.MAX_PER_KEY then return end
  local oldest, at
  for id, e in pairs(reg.by_id) do
    if e.key == key and (not at or e.used < at) then oldest, at = id, e.used end
  end
  drop(reg, oldest)
end

-- A browser's Origin (DNS rebinding): loopback origins and orket.lua's serve.cors only.
local function origin_ok(req, server)
  local o = req.headers.origin
  if o == nil then return true end -- not a browser
  if type(o) ~= "string" then return false end
  local host = o:match("^https?://([^/]+)$")
  if host and auth.loopback_host(host) then return true end
  local cors = server and server.cors
  return cors ~= nil and cors[o:lower()] == true
end

-- The Host a server on loopback answers: a loopback name, or the host of an origin serve.cors
-- lists. Under DNS rebinding the browser sends the attacker's name; a server listening on
-- another address is reached by names this one cannot know, and its keys guard it.
local function host_ok(req, server)
  if not (server and server.auth and server.auth.loopback) then return true end
  local h = req.headers.host
  if auth.loopback_host(h) then return true end
  if type(h) ~= "string" then return false end
  h = h:lower()
  for o in pairs(server.cors or {}) do
    if o:match("^https?://(.+)$") == h then return true end
  end
  return false
end

--- guard(req, ctx) -> nil | status, code, message, remedy: what /mcp refuses before any key
--- is checked, as MCP's transport asks (a foreign Origin is 403 whoever sends it). The
--- remedy is this case's own: forbidden's shared one lists every 403's, a key among them,
--- which is no way out of this one.
function M.guard(req, ctx)
  if not origin_ok(req, ctx.server) then
    return 403, "forbidden", "this Origin may not use /mcp", "send from outside a browser (no Origin), or add the "
      .. "page's origin to `serve.cors` in orket.lua; no key helps (DNS rebinding is refused whoever asks)"
  end
  if not host_ok(req, ctx.server) then
    return 403, "forbidden", "this server listens on loopback: /mcp answers loopback host names only (or serve.cors's)",
      "reach /mcp by a loopback name (localhost, 127.0.0.1 or [::1], any port), or add an origin of this host name "
      .. "to `serve.cors` in orket.lua; no key helps (DNS rebinding is refused whoever asks)"
  end
end

-- A client's header in a message: its first n bytes, printable ASCII only (cut first, so
-- that the scan stays short whatever was sent)
local function quoted(s, n) return (tostring(s):sub(1, n):gsub("[^\32-\126]", "?")) end

-- The q an Accept header gives application/json: that of the most specific range matching
-- it (RFC 9110 §12.5.1: application/json, then application/*, then */*; the highest among
-- ranges as specific), nil when none does. Quoted parameter values are blanked first, so
-- that a comma, ";" or "q=" inside one is not read; parameters other than q are not compared.
local function json_q(accept)
  local best, rank = nil, 0
  for part in accept:gsub('"[^"]*"', '""'):gmatch("[^,]+") do
    local t = (part:match("^%s*([^;%s]+)") or ""):lower()
    local r = t == "application/json" and 3 or t == "application/*" and 2 or t == "*/*" and 1 or 0
    if r > 0 and r >= rank then
      local q = tonumber(part:lower():match(";%s*q%s*=%s*([%d.]+)") or "1") or 1
      if r > rank or q > best then best = q end
      rank = r
    end
  end
  return best
end

--- not_acceptable(accept) -> nil | message: a POST's Accept must allow application/json,
--- the only type /mcp answers in (a 406 means no representation the client takes). The
--- transport asks clients to list text/event-stream as well; a server that never streams
--- has no need of it, so a client listing JSON alone is answered (as the Python SDK's
--- server does in its JSON mode). No Accept, or an empty one, is any type (RFC 9110
--- §12.5.1): some plain HTTP clients send none (curl and libcurl send */*).
function M.not_acceptable(accept)
  if accept == nil or not tostring(accept):find("%S") then return nil end
  local q = json_q(tostring(accept))
  if q and q > 0 then return nil end
  return "Accept must allow application/json, the only type /mcp answers in; it was: " .. quoted(accept, 128)
end
local not_acceptable = M.not_acceptable

local function key_of(ctx) return ctx.who and (ctx.who.id or (ctx.who.local_use and "local")) or "local" end

local function reply(req, ctx, status, text, headers)
  ctx.status = status
  local h = { "Cache-Control: no-store", "X-Content-Type-Options: nosniff" }
  if text then h[#h + 1] = "Content-Type: application/json; charset=utf-8" end
  for _, x in ipairs(ctx.headers or {}) do h[#h + 1] = x end
  for _, x in ipairs(headers or {}) do h[#h + 1] = x end
  req:respond(status, h, text and (text .. "\n") or "")
end

local function rpc_reply(req, ctx, status, msg, headers)
  return reply(req, ctx, status, rpc.encode(msg), headers)
end

-- The session of this id and this key, its use noted | nil: another key's session is not
-- found either (its id says nothing to anyone else).
local function session_of(ctx, sid)
  local entry = sessions_of(ctx.db).by_id[sid]
  if not entry or entry.key ~= key_of(ctx) then return nil end
  entry.used = now()
  -- the role this request was checked with (its person's now: demoted, or their
  -- directory's groups changed), not the one of initialize
  if ctx.who then entry.s.who.role, entry.s.who.key_id = ctx.who.role, ctx.who.key_id end
  return entry
end

-- Nothing to answer (notifications and responses): 202.
local function accepted(req, ctx)
  ctx.status = 202
  req:respond(202, ctx.headers or {}, "")
end

-- A JSON-RPC batch: only in a session that negotiated 2025-03-26, the one revision with
-- batches; answered with the array of its answers (202 when it held none to answer).
local function batch(req, ctx, text)
  local sid = req.headers["mcp-session-id"]
  local entry = sid and session_of(ctx, sid)
  if sid and not entry then return rpc_reply(req, ctx, 404, rpc.error(nil, -32001, "no such MCP session; initialize again")) end
  if not entry or not entry.s:takes_batches() then
    return rpc_reply(req, ctx, 400, rpc.error(nil, rpc.INVALID_REQUEST,
      "batches are not part of MCP since 2025-06-18: send one message at a time"))
  end
  ctx.note = "mcp batch"
  -- each message after the first takes a request's token (the first took the request's),
  -- and the loop's other requests go between them
  -- and between them the session may end (DELETE, evicted) or the server stop: the rest is
  -- then not run
  local reg = sessions_of(ctx.db)
  local out = entry.s:handle_batch(text, { take = ctx.take_more, pause = function() rt.sleep(0) end,
    live = function() return reg.by_id[sid] == entry and not (ctx.server and ctx.server.stopping) end })
  if not out then return accepted(req, ctx) end
  return reply(req, ctx, 200, out)
end

-- The tools' caller: the request's person and the key they came with (the audit names the
-- key, so that a leaked key's acts are told apart: orket.serve.writes.audited)
local function identity(ctx)
  local w = ctx.who
  if not w then return { role = "operator" } end
  return { id = w.id, role = w.role, user = w.user, key_id = w.key_id }
end

-- whether /mcp was reached under a project's prefix: its tools' writes are audited with
-- the project's routes, as the same writes over HTTP are
local function scoped(ctx) return type(ctx.route) == "string" and ctx.route:find("^/v1/projects/") ~= nil end

-- A tool the session's role may not call is refused in the words of the REST route's 403:
-- the role needed in the request's project, the one held there, who grants it. ctx.who is
-- the caller as a member of the project (orket.serve.init's grant); the role is the one of
-- each request (session_of)
local function refusal(ctx)
  local srv, w = ctx.server, ctx.who
  if not (srv and w and w.project) then return nil end
  return function(role, need) return projects.refusal(srv.db, w, role, need, w.project, srv.signin) end
end

local function recheck(req, ctx)
  if not ctx.server then return true end
  return ctx.server:recheck(req, ctx)
end

local function post(req, ctx)
  -- Accept and the version header before the body is read: they refuse the request
  -- whatever it holds, so its body is not waited for
  local bad_accept = not_acceptable(req.headers.accept)
  if bad_accept then return rpc_reply(req, ctx, 406, rpc.error(nil, rpc.INVALID_REQUEST, bad_accept)) end
  local pv = req.headers["mcp-protocol-version"]
  local sid = req.headers["mcp-session-id"]
  if pv and not KNOWN[pv] then
    -- outside a session, the stateless revision's UnsupportedProtocolVersionError: a client
    -- that speaks both eras reads its data.supported before it falls back to initialize
    if not sid then return rpc_reply(req, ctx, 400, server.unsupported_version(nil, pv)) end
    return rpc_reply(req, ctx, 400, rpc.error(nil, rpc.INVALID_REQUEST, "unsupported MCP-Protocol-Version: " .. quoted(pv, 32)
      .. " (this server speaks " .. table.concat(server.VERSIONS, ", ") .. ")"))
  end
  local text, berr, bcode = req:body()
  if not text then return err(body_answer.failure(bcode, tostring(berr))) end
  -- the key may have been revoked while the body came (orket.serve.init, Server:recheck)
  local rok, rst, rcode, rmsg, rremedy = recheck(req, ctx)
  if not rok then return err(rst, rcode, rmsg, rremedy) end
  if #text > rpc.MAX_MESSAGE then return err(413, "too_large", "the message is too large") end
  if rpc.is_batch(text) then return batch(req, ctx, text) end
  local msg, kind = server.decode(text)
  if not msg then return rpc_reply(req, ctx, 400, rpc.error(kind.id, kind.code, kind.message)) end
  local reg = sessions_of(ctx.db)
  local entry
  if kind == "request" and msg.method == "initialize" and not sid then
    forget_idle(reg)
    local key = key_of(ctx)
    -- at the server's cap, the caller's own oldest would make room for it: counted as gone
    local mine = (reg.of_key[key] or 0) >= M.MAX_PER_KEY and 1 or 0
    if reg.n - mine >= M.MAX_SESSIONS then return err(503, "busy", "too many MCP sessions; end some (DELETE /mcp)") end
    local s = server.new { db = ctx.db, dir = ctx.dir, who = identity(ctx), scoped = scoped(ctx), refusal = refusal(ctx),
      log = function(f) if ctx.server then ctx.server:_log(f) end end }
    local res = s:handle(msg, kind)
    if not res.result then return rpc_reply(req, ctx, 400, res) end
    make_room(reg, key) -- only once the new one is made: a refused initialize ends none
    sid = crypto.random_id(16)
    reg.by_id[sid], reg.n = { s = s, key = key, used = now() }, reg.n + 1
    reg.of_key[key] = (reg.of_key[key] or 0) + 1
    ctx.note = "mcp initialize"
    return rpc_reply(req, ctx, 200, res, { "Mcp-Session-Id: " .. sid })
  end
  local meta_version = type(msg.params) == "table" and type(msg.params._meta) == "table"
    and msg.params._meta["io.modelcontextprotocol/protocolVersion"]
  if sid then
    entry = session_of(ctx, sid)
    if not entry then return rpc_reply(req, ctx, 404, rpc.error(msg.id, -32001, "no such MCP session; initialize again")) end
  elseif meta_version then
    -- the stateless revision: no session, each request says its version, and the header
    -- must say the same (its transport: 400 with HeaderMismatch)
    if pv and pv ~= meta_version then
      return rpc_reply(req, ctx, 400, rpc.error(msg.id, server.HEADER_MISMATCH, "header mismatch: MCP-Protocol-Version is "
        .. quoted(pv, 32) .. ", the body's _meta io.modelcontextprotocol/protocolVersion "
        .. (type(meta_version) == "string" and quoted(meta_version, 32) or "is not a string")))
    end
    entry = { s = server.new { db = ctx.db, dir = ctx.dir, who = identity(ctx), scoped = scoped(ctx),
      refusal = refusal(ctx) } }
  else
    return rpc_reply(req, ctx, 400, rpc.error(msg.id, rpc.INVALID_REQUEST, "Mcp-Session-Id is required (initialize first)"))
  end
  ctx.note = kind == "request" and ("mcp " .. msg.method:sub(1, 64)) or nil
  local res = entry.s:handle(msg, kind)
  if not res then return accepted(req, ctx) end
  -- the stateless revision's unsupported version is a 400 over HTTP (its transport)
  local unsupported = not sid and res.error and res.error.code == server.UNSUPPORTED_VERSION
  return rpc_reply(req, ctx, unsupported and 400 or 200, res)
end

local function delete(req, ctx)
  local reg = sessions_of(ctx.db)
  local sid = req.headers["mcp-session-id"]
  local entry = sid and reg.by_id[sid]
  if not entry or entry.key ~= key_of(ctx) then return err(404, "not_found", "no such MCP session") end
  drop(reg, sid)
  reply(req, ctx, 204)
end

-- What POST /mcp answers, for the API's document: JSON-RPC 2.0 messages, whose error has an
-- integer code (and jsonrpc and id beside it), not the API's error
local ID = { type = { "string", "number", "null" } }
local RPC_ERROR = { type = "object", additionalProperties = false, required = { "jsonrpc", "id", "error" }, properties = {
  jsonrpc = { enum = { "2.0" } }, id = ID, error = { type = "object", additionalProperties = false,
    required = { "code", "message" }, properties = { code = { type = "integer" }, message = { type = "string" },
      data = { description = "the error's details (an unsupported version's supported and requested)" } } } } }
-- a 400 is a JSON-RPC error, but for a body that could not be read: the API's error then
local RPC_OR_API = { type = "object", additionalProperties = false, required = { "error" }, properties = {
  jsonrpc = { enum = { "2.0" } }, id = ID, error = { type = "object", additionalProperties = false,
    required = { "code", "message" }, properties = { code = { type = { "integer", "string" } },
      message = { type = "string" }, data = RPC_ERROR.properties.error.properties.data, remedy = { type = "string" } } } } }
local ANSWER = { type = { "object", "array" }, description = "a JSON-RPC response (result or error); to a batch, "
  .. "the array of its responses" }

--- add(router): POST and DELETE /mcp (any key; the tools check the key's role). GET is left
--- to the router's 405: the transport lets a GET be a stream or 405, and one Allow then
--- names what the path takes, as OPTIONS says (orket.serve.web)
function M.add(router)
  router:add("POST", "/mcp", { handler = post, guard = M.guard, role = "viewer", name = "mcp", body = "raw",
    summary = "MCP over Streamable HTTP: one JSON-RPC message (docs/mcp.md)", responses = {
      [200] = { schema = ANSWER, description = "the answer to a request" },
      [202] = { description = "a notification or a response: nothing to answer (no body)" },
      [400] = { schema = RPC_OR_API, description = "a JSON-RPC error (error.code an integer: -32700 not JSON, "
        .. "-32600 not a valid request or no session, -32020 and -32022 the stateless revision's version refusals, "
        .. "an initialize's own), or the API's error (error.code a string) for a body that could not be read" },
      [404] = { schema = RPC_ERROR, description = "no such MCP session (a JSON-RPC error, -32001): initialize again" },
      [406] = { schema = RPC_ERROR, description = "Accept does not allow application/json, the only type /mcp "
        .. "answers in (a JSON-RPC error, -32600)" } } })
  router:add("DELETE", "/mcp", { handler = delete, guard = M.guard, role = "viewer", name = "mcp_end", summary = "End an MCP session",
    responses = { [204] = { description = "the session ended (no body)" } } })
end

--- close_all(db): every MCP session of the server using db ends
function M.close_all(db)
  local reg = sessions_of(db)
  for id in pairs(reg.by_id) do drop(reg, id) end
end

return M
