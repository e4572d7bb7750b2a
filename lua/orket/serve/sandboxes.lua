-- orket.serve.sandboxes: the sandboxes over HTTP (docs/sandbox.md, docs/serve.md): list,
-- one, its log's tail, and (operator) start, stop and restart. A sandbox started here is
-- owned by the server (orket.sandboxes.service: it probes and records it, and stops it when
-- the server stops); one another process owns is stopped through that owner.
local service = require "orket.sandboxes.service"
local ops = require "orket.store.sandboxes"
local jsonout = require "orket.jsonout"
local routes = require "orket.serve.routes"
local body_answer = require "orket.serve.body"
local router_mod = require "orket.serve.router"
local urlencode = require "orket.urlencode"
local writes = require "orket.serve.writes"
local cjson = require "cjson.safe"
local inert = require "orket.inert"
local rt = require "orket.c.runtime"
local httpd = require "orket.c.httpd"
local uv = require "luv"
local config = require "orket.config"
local openapi = require "orket.serve.openapi"

local M = {}

local err = routes.err

-- the log's tail an answer carries at most
M.LOG_TAIL = 64 * 1024

-- db -> {id -> sandbox} owned by this process
local owned = setmetatable({}, { __mode = "k" })
local function mine(db)
  owned[db] = owned[db] or {}
  return owned[db]
end

--- doc(row) -> the JSON document of a sandbox (orket sandbox list --json's shape)
function M.doc(row)
  return { id = row.id, status = row.status, target = row.target, commit = row.commit_id or cjson.null, port = row.port,
    socket = row.socket,
    command = cjson.decode(row.command) or cjson.null, owner_pid = row.owner_pid or cjson.null,
    machine = service.machine_of(row) or cjson.null, elsewhere = service.elsewhere_live(row),
    started_at = row.started_at, healthy_at = row.healthy_at or cjson.null, ended_at = row.ended_at or cjson.null,
    detail = row.detail or cjson.null, exit_code = row.exit_code or cjson.null,
    exit_signal = row.exit_signal or cjson.null }
end

local function named(ctx)
  local id = routes.whole(ctx.params.id or "")
  local row = id and service.get(ctx.db, id)
  if not row then return nil, err(404, "not_found", "no sandbox " .. tostring(ctx.params.id)) end
  return row
end

-- The proxy's rows, each read again ROW_TTL_MS after it was: a page's many requests do not
-- each read the store. A sandbox another process stopped meanwhile answers 502 (its socket
-- is gone) instead of 409, for at most that long; one this server stops is forgotten at once.
M.ROW_TTL_MS = 1000
-- db -> {id's text -> {row=, at=}}: found by the request's own text, with no search to
-- read it as a number
local recent = setmetatable({}, { __mode = "k" })
-- the servers whose proxy's memory holds a decision (forward, below): a row forgotten is
-- forgotten there too
local memo_servers = setmetatable({}, { __mode = "k" })
local function forget(db)
  recent[db] = nil -- every entry of the row, whatever text named it (stops are rare)
  for server in pairs(memo_servers) do server:proxy_forget() end
end

local function named_recent(ctx)
  local raw = ctx.params.id or ""
  local rows = recent[ctx.db]
  if not rows then
    rows = {}
    recent[ctx.db] = rows
  end
  local now = uv.now()
  local hit = rows[raw]
  if hit and now - hit.at < M.ROW_TTL_MS then
    ctx.row_until = hit.at + M.ROW_TTL_MS
    return hit.row
  end
  local row, st, doc = named(ctx)
  -- kept under the id's own text only ("07" is read each time): as many entries as rows
  if row and raw == tostring(row.id) then
    rows[raw] = { row = row, at = now }
    ctx.row_until = now + M.ROW_TTL_MS -- until it is read again: the proxy's memory too
  end
  return row, st, doc
end

--- recent_row(ctx) -> the row of sandbox ctx.params.id, read again after ROW_TTL_MS | nil,
--- status, error document
M.recent_row = named_recent

local function audit(ctx, action)
  ctx.db:tx(function()
    writes.audited(ctx, { actor = writes.principal(ctx).seat, action = action })
    return true
  end)
end

-- flag(ctx, name) -> whether ?name= is on (1 or true; absent, 0 or false: off) | nil,
-- status, doc for any other value: "?all=yes" read as off answered something else than asked
local function flag(ctx, name)
  local v = ctx.query[name]
  if v == nil or v == "0" or v == "false" then return false end
  if v == "1" or v == "true" then return true end
  return nil, err(400, "bad_query", string.format("?%s= takes 1 (or true) or 0 (or false), not %s", name,
    cjson.encode(v):gsub("\\/", "/")))
end

local function list(_, ctx)
  local all, st, doc = flag(ctx, "all")
  if all == nil then return st, doc end
  local out = {}
  for i, r in ipairs(service.list(ctx.db, all)) do out[i] = M.doc(r) end
  return 200, { sandboxes = jsonout.array(out) }
end

local function get(_, ctx)
  local row, st, doc = named(ctx)
  if not row then return st, doc end
  return 200, { sandbox = M.doc(row) }
end

-- The log's lines as Server-Sent Events (`event: log`, one per line, cut at LINE_MAX), from
-- its last 64 KiB on, following it (across rotations) until the sandbox ends (`event: end`,
-- its status), the client goes or the server stops.
M.LINE_MAX = 4096
M.BATCH = 65536
M.FOLLOW_POLL_MS = 250
-- watcher(req, ctx, stop, over) -> the hub's watch of a stream of req's caller | nil
-- (local use, or no server): stop() once the caller may no longer read it
local function watcher(req, ctx, stop, over)
  local srv = ctx.server
  if not (srv and ctx.hub and ctx.who) or ctx.who.local_use then return nil end
  return ctx.hub:watch { still = function() return srv:still_allowed(req, ctx) end, stop = stop, over = over }
end

local function follow(req, ctx, row, path)
  if ctx.server and not ctx.server:take_stream(req, ctx) then return end -- answered 429
  local s, serr = req:sse { "X-Accel-Buffering: no" }
  if not s then return err(500, "internal", serr) end
  ctx.status = 200
  -- ended as an event stream is once its caller may read no more (a key revoked, a person
  -- disabled or taken out of the project): checked by the hub at such a row and at each
  -- heartbeat (orket.serve.events, hub:watch)
  local cut = false
  local watch = watcher(req, ctx, function()
    cut = true
    s:close()
  end, function() return cut or not pcall(req.gone, req) end) -- (a request closed: over, however it ended)
  local log, pending = service.log_reader(path, M.LOG_TAIL), ""
  -- however it ends (a cut while a send waited on a slow client raises there)
  local _ <close> = setmetatable({}, { __close = function()
    log.close()
    if watch then ctx.hub:unwatch(watch) end
    s:close()
  end })
  -- A chunk's lines found by position, never by copying what follows each one: the app
  -- decides its log, and 64 KiB of newlines split by copying the rest at every line held
  -- the server's one loop for seconds. Sent in batches of at most M.BATCH bytes, each
  -- waited for when the client is behind; the chunk's end yields to the loop.
  local function send_lines(text)
    if pending ~= "" then text = pending .. text end -- pending: one unended line, under LINE_MAX
    pending = ""
    local out, size, pos, n = {}, 0, 1, #text
    local function flush()
      if cut then return false end -- (its stream is closed: a send would raise)
      if size == 0 then return true end
      local ok = s:send(table.concat(out))
      out, size = {}, 0
      return ok and not s:drain() and not cut
    end
    while pos <= n do
      local nl = text:find("\n", pos, true)
      local stop, nextpos
      if nl then
        stop, nextpos = nl - 1, nl + 1
      elseif n - pos + 1 > M.LINE_MAX then
        stop, nextpos = pos + M.LINE_MAX - 1, pos + M.LINE_MAX -- a line that long is cut, its rest a line of its own
      else
        pending = text:sub(pos)
        break
      end
      -- the app's text is hostile: escaped, and one SSE line (no CR or LF left in it)
      local ev = "event: log\ndata: " .. inert.line(text:sub(pos, math.min(stop, pos + M.LINE_MAX - 1))) .. "\n\n"
      out[#out + 1], size = ev, size + #ev
      if size >= M.BATCH and not flush() then return false end
      pos = nextpos
    end
    return flush()
  end
  while not cut and not req:gone() and not (ctx.server and ctx.server.stopping) do
    local chunk = log.read()
    if chunk then
      if not send_lines(chunk) then break end
      rt.sleep(0) -- the loop's other requests and runs go before the next chunk
    else
      local now = ops.get(ctx.db, row.id)
      if not now or not ops.LIVE[now.status] then
        if pending ~= "" then send_lines("\n") end -- its last line, unended
        if not cut then s:send("event: end\ndata: " .. cjson.encode { id = row.id, status = now and now.status } .. "\n\n") end
        break
      end
      rt.sleep(M.FOLLOW_POLL_MS)
    end
  end
end

local function logs(req, ctx)
  local row, st, doc = named(ctx)
  if not row then return st, doc end
  -- its folder removed by retention (sandbox.keep_ended): said so, not an empty log
  local removed = service.log_removed(row, ctx.dir)
  if removed then return err(404, "not_found", removed) end
  local path = ctx.dir .. "/.orket/sandboxes/" .. row.id .. "/app.log"
  local on, fst, fdoc = flag(ctx, "follow")
  if on == nil then return fst, fdoc end
  if on then return follow(req, ctx, row, path) end
  local f = io.open(path, "r")
  local text, truncated = "", false
  if f then
    local size = f:seek("end")
    if size > M.LOG_TAIL then
      truncated = true
      f:seek("set", size - M.LOG_TAIL)
    else
      f:seek("set", 0)
    end
    text = f:read("a") or ""
    f:close()
  end
  -- the app's output is hostile text: JSON escapes it, and what is not UTF-8 is replaced
  return 200, { id = row.id, log = inert.text(text), truncated = truncated }
end

local function start(_, ctx)
  local cfg, s = config.settings(ctx.dir, true)
  if not cfg then return err(422, "bad_config", tostring(s)) end
  audit(ctx, "sandbox_up")
  local sb, msg, code, tail = service.up { dir = ctx.dir, db = ctx.db, settings = s }
  if not sb then
    local status = (code == "EINVAL" or code == "ENOTSUP") and 422 or 502
    return status, { error = { code = code == "ETIMEDOUT" and "unhealthy" or "not_started", message = msg,
      log = inert.text((tail or ""):sub(-4096)) } }
  end
  mine(ctx.db)[sb.id] = sb
  return 201, { sandbox = M.doc(assert(ops.get(ctx.db, sb.id))) }
end

local function stop_one(ctx, row)
  forget(ctx.db)
  local sb = mine(ctx.db)[row.id]
  if sb then
    sb:stop("stopped through the API")
    mine(ctx.db)[row.id] = nil
    return true
  end
  return service.stop(ctx.db, row.id)
end

-- the 409 of a sandbox another machine (or another container of this host) runs, whose
-- folder is not shared here
local function elsewhere(row)
  return err(409, "conflict", string.format("sandbox %d runs %s (%s) whose folder this server does "
    .. "not share", row.id, service.runs_on(row), tostring(service.machine_of(row))),
    string.format("stop it where it runs; when that is gone for good, end its row: POST "
      .. "/v1/sandboxes/%d/stop?force=1 (or orket sandbox stop --force %d)", row.id, row.id))
end

local function stop(_, ctx)
  local row, st, doc = named(ctx)
  if not row then return st, doc end
  if not ops.LIVE[row.status] then
    -- the conflict code's general remedy ("read it again and retry") would get this again
    return err(409, "conflict", string.format("sandbox %d is %s already", row.id, row.status),
      string.format("nothing to stop: it has ended (POST /v1/sandboxes/%d/restart starts main's tree again)", row.id))
  end
  local force, fst, fdoc = flag(ctx, "force")
  if force == nil then return fst, fdoc end
  -- another machine's, whose folder is not shared here: its owner cannot be asked from here.
  -- A conflict of where it runs, not a failure of a server this one depends on
  if not force and service.unreachable(row) then return elsewhere(row) end
  audit(ctx, force and "sandbox_stop_force" or "sandbox_stop")
  local ok, msg
  if force then
    forget(ctx.db)
    ok, msg = service.force_stop(ctx.db, row.id, "forced through the API by " .. tostring(writes.principal(ctx).seat))
  else
    ok, msg = stop_one(ctx, row)
  end
  if not ok then return err(502, "not_stopped", msg) end
  return 200, { sandbox = M.doc(assert(ops.get(ctx.db, row.id))) }
end

local function restart(req, ctx)
  local row, st, doc = named(ctx)
  if not row then return st, doc end
  if ops.LIVE[row.status] and service.unreachable(row) then return elsewhere(row) end
  if ops.LIVE[row.status] then
    local ok, msg = stop_one(ctx, row)
    if not ok then return err(502, "not_stopped", msg) end
  end
  return start(req, ctx)
end

-- ---- the proxy ---------------------------------------------------------------------------

-- an answer from the app carries at most this much; it begins within this long, and once
-- begun is never silent this long (no total: an event stream or a long download that keeps
-- sending goes on)
M.PROXY_MAX_BYTES = 64 * 1024 * 1024
M.PROXY_TIMEOUT_MS = 120000
M.PROXY_IDLE_MS = 120000
-- its headers complete within this long too: header lines or interim 1xx answers dripped
-- one by one meet no silence limit, and would hold the client with nothing sent
M.PROXY_HEADERS_MS = 120000
-- requests to one sandbox's app in progress at once at most, on all its routes (with no
-- total time, an app's stream holds its connection as long as it sends): past it, 503
-- app_busy with Retry-After. Of them, at most PROXY_LIVE_EACH from one client address, so
-- that one client holding streams cannot get every other 503: counted by address, not key,
-- because every request has one (local use and a session have no key), the proxy's memory
-- starts pumps in C where the address is at hand, and it is what max_per_ip bounds already.
-- An IPv6 address counts by its /64. The address is the client's: behind a proxy listed in
-- serve.trusted_proxies, the one its X-Forwarded-For names (core/httpd.c). A loopback or
-- unix-socket client is held to no share: that is a front end (nginx, Caddy) not listed,
-- whose users all come from its one address, or this machine's own use.
-- ORKET_SERVE_LIMITS' app_live_max and app_live_each set them (0: these)
M.PROXY_LIVE_MAX = 32
M.PROXY_LIVE_EACH = 16
-- loopback and unix-socket clients held to the share too (the tests: a second loopback
-- address stands for another client)
M.PROXY_EACH_LOCAL = false
M.PROXY_BUSY_RETRY_S = 5
-- and the app takes the connection within this long (its accept queue full: it does not)
M.PROXY_CONNECT_MS = 5000
-- bytes queued to the client before the proxy waits for it to take half of them; and bytes
-- read from the app ahead of the proxy, past which nothing more is read from it until the
-- proxy takes them: a client that does not read costs about these two, not the answer
M.QUEUE_HIGH = 128 * 1024
M.APP_AHEAD = 32 * 1024
-- an answer complete when its headers are read, and at most this long, is sent in one
-- piece; any other is streamed. No more than the read-ahead: past it the app's socket is
-- not read until the client takes its part, so a longer answer is never complete by then
M.WHOLE_MAX = M.APP_AHEAD
-- the request headers passed on to the app: never the caller's key or cookies (the app is
-- the agents' code), nor what belongs to this hop
-- (picked from the request by the pump, in C: no table or string of them made in Lua)
-- (all of RFC 9110 13's conditions: without If-Range a resumed download would take a range
-- of a file changed since, and without If-Match or If-Unmodified-Since a write meant to
-- fail on a change, 412, would overwrite it)
local PASS_IN = { "accept", "accept-language", "content-type", "if-none-match", "if-modified-since", "if-match",
  "if-unmodified-since", "if-range", "range", "user-agent" }
-- the answer's headers passed back (each value under 4 KiB): never Set-Cookie (the app
-- would set cookies on this server's origin), nor what belongs to this hop
-- (Content-Encoding: the body is passed as the app sent it, so it must say how it is coded,
-- or a browser shows an app's gzip, sent unasked, as the bytes it is)
M.PASS_OUT = { "content-type", "content-encoding", "cache-control", "etag", "last-modified", "location",
  "content-language", "content-disposition", "accept-ranges", "content-range", "link" }

local enc = urlencode.encode

-- the app's part of a raw request path (the route's {path*}, rest as the router gives it:
-- decoded, its trailing "/" dropped), as the client sent it: the last segments of the raw
-- path, as many as rest holds, and its trailing "/" (an app redirecting /docs to /docs/
-- looped forever without it). The router refused what could change the route or leave the
-- app's root ("." and "..", encoded or not, "%2F", "%5C", a control byte, an empty
-- segment, an invalid escape), so each raw segment stands for rest's.
local function raw_rest(raw, rest, clean)
  local slash = #raw > 1 and raw:byte(-1) == 47
  if rest == "" then return "" end
  if clean then return slash and rest .. "/" or rest end -- the raw path's own bytes
  local n = 1
  for _ in rest:gmatch("/") do n = n + 1 end
  local stop = slash and #raw - 1 or #raw
  local at = stop + 1
  for _ = 1, n do
    repeat at = at - 1 until at < 1 or raw:byte(at) == 47
    if at < 1 then return nil end
  end
  return raw:sub(at + 1, stop) .. (slash and "/" or "")
end

-- what a path may carry to the app as it is: RFC 3986's pchar (unreserved, sub-delimiters,
-- ":" and "@"), its escapes (each valid: the router decoded them) and "/"; any other byte
-- ("[", "]", "|", which a browser sends as typed) is escaped
local NOT_PATH = "[^%w%-%._~!$&'()*+,;=:@/%%]"
local function path_escape(c) return string.format("%%%02X", c:byte()) end

-- (clean: app_route found the whole path plain, nothing to encode in it and no empty
-- segment; raw: the request's path as sent)
local function target_url(raw, path, query, clean, raw_query)
  path = path or ""
  local rest = type(raw) == "string" and raw_rest(raw, path, clean)
  local url
  if rest then
    if not clean and rest:find(NOT_PATH) then rest = rest:gsub(NOT_PATH, path_escape) end
    url = "http://sandbox/" .. rest
  else -- no raw path (a handler's test): the decoded segments, each escaped
    local segs = {}
    for seg in path:gmatch("[^/]+") do segs[#segs + 1] = enc(seg) end
    url = "http://sandbox/" .. table.concat(segs, "/")
  end
  -- the query as the client sent it (its order, repeats, "+", a name without "=", an
  -- empty pair), as the app's own origin passes it: rebuilt from the parsed names, a repeat
  -- lost its later values and an empty pair became a name of its own
  if raw_query and raw_query ~= "" then return url .. "?" .. raw_query end
  if not query or next(query) == nil then return url end
  local names = {}
  for k in pairs(query) do names[#names + 1] = k end
  table.sort(names)
  local q = {}
  for i, k in ipairs(names) do q[i] = enc(k) .. "=" .. enc(query[k]) end
  return url .. "?" .. table.concat(q, "&")
end

-- The app's answer, streamed back: its status, the headers above, and a policy that makes
-- any page it serves an origin of its own (CSP sandbox): agent-written script never runs
-- as this server's web board.
local function proxy(req, ctx)
  local row, st, doc = named_recent(ctx)
  if not row then return st, doc end
  return M.forward(req, ctx, row, target_url(req.path, ctx.params.path, ctx.query, ctx.params.clean, req.raw_query))
end

local CSP = "Content-Security-Policy: sandbox allow-scripts allow-forms"
-- the methods whose request without a body is usual (RFC 9110 9.3.5, 9.3.7)
local BODILESS = { DELETE = true, OPTIONS = true }

-- What every request to a sandbox's app shares (its socket, the limits, the answer's fixed
-- lines, the headers passed back), checked and copied once per sandbox and origin kind
-- (httpd.proxy_kept), not per request; collected with the sandbox's last use. An app on
-- its own origin has one own (orket.serve.apps' OWN_ORIGIN): its pass and cookies are kept
-- with the socket's options
local kept_api = setmetatable({}, { __mode = "v" }) -- socket -> kept
local kept_own = setmetatable({}, { __mode = "v" })
-- socket -> a kept of it, whose count of requests in progress (max_live) its others share
local live_of = setmetatable({}, { __mode = "v" })
local function live_with(socket)
  local k = live_of[socket]
  if k then return k end
  -- the one remembered was collected: another still in use carries the count
  for _, by in ipairs { kept_api, kept_own } do
    for at, kept in pairs(by) do
      if at == socket or at:sub(1, #socket + 1) == socket .. "\n" then return kept end
    end
  end
end
-- kept -> {body, note, timeout body}: the 502's body, the log's note start and the 504's
-- body of a request that ends in C
local failed_of = setmetatable({}, { __mode = "k" })
-- (the remedy names the sandbox: the code's own says "ID", which the reader had to replace)
local function logs_remedy(row, more) return string.format("`orket sandbox logs %d`%s", row.id, more or "") end
local function bad_gateway(row)
  return err(502, "bad_gateway", string.format("sandbox %d's app gave no answer that could be passed on "
    .. "(GET /v1/sandboxes/%d/logs shows its log)", row.id, row.id), logs_remedy(row))
end
-- a time in ms as a person reads it: whole seconds, else milliseconds (never "0 s")
local function span(ms)
  return ms % 1000 == 0 and string.format("%d s", ms // 1000) or string.format("%d ms", ms)
end
-- an app that gave no answer in time: a gateway's timeout (RFC 9110 15.6.5), not an answer
-- that was bad, its text true to the deadline that passed (phase, http's): when nothing
-- came, the first byte's, and the connection's (libcurl's connect timeout is one too: an
-- app whose accept queue is full), which the log's note tells apart; when the app began
-- its answer and stopped short of its headers ("headers", "idle"), theirs and silence's
local function gateway_timeout(row, phase)
  if phase == "headers" or phase == "idle" then
    return err(504, "gateway_timeout", string.format("sandbox %d's app began an answer but did not complete "
      .. "its headers within %s, or fell silent for %s (GET /v1/sandboxes/%d/logs shows its log)", row.id,
      span(M.PROXY_HEADERS_MS), span(M.PROXY_IDLE_MS), row.id),
      logs_remedy(row, "; an answer that takes long can be streamed as it is made"))
  end
  -- a silent app meets whichever of the first byte's and the headers' deadlines is shorter
  return err(504, "gateway_timeout", string.format("sandbox %d's app gave no answer within %s, or did not "
    .. "take the connection within %s (GET /v1/sandboxes/%d/logs shows its log)", row.id,
    span(math.min(M.PROXY_TIMEOUT_MS, M.PROXY_HEADERS_MS)), span(M.PROXY_CONNECT_MS), row.id),
    logs_remedy(row, "; an answer that takes long can be streamed as it is made"))
end
-- The app's requests in progress at most, and from one address at most: the server's
-- limits (ORKET_SERVE_LIMITS app_live_max, app_live_each), where not 0, else these. One
-- address's share is half the whole unless set
local function live_limits(l)
  local max = l and l.app_live_max and l.app_live_max > 0 and l.app_live_max or M.PROXY_LIVE_MAX
  local each = l and l.app_live_each and l.app_live_each > 0 and l.app_live_each
  if not each then each = max == M.PROXY_LIVE_MAX and M.PROXY_LIVE_EACH or math.max(1, max // 2) end
  return max, each
end
-- as many requests to the app in progress as it may have: answered at once, not queued
-- (full: req:proxy's, "address" when this address's share is what is full)
local function app_busy(ctx, row, full)
  ctx.headers = ctx.headers or {}
  table.insert(ctx.headers, "Retry-After: " .. M.PROXY_BUSY_RETRY_S)
  local max, each = live_limits(ctx.server and ctx.server.limits)
  if full == "address" then
    return err(503, "app_busy", string.format("sandbox %d's app has %d requests in progress (streams or slow "
      .. "answers) from this address, the most one address may have at once; retry after %d s", row.id,
      each, M.PROXY_BUSY_RETRY_S))
  end
  return err(503, "app_busy", string.format("sandbox %d's app has %d requests in progress (streams or slow "
    .. "answers), the most it may have at once; retry after %d s", row.id, max, M.PROXY_BUSY_RETRY_S))
end
-- The proxy's memory (core/lhttpd.c, docs/serve.md "The proxy's memory"): a request
-- proxied here may be proxied again from C, with no Lua, when it comes again the same
-- (method, path, address, every header) under the same store stamp, until its row is read
-- again. Only one whose whole decision follows from those: a GET or HEAD without a query
-- on the API's route of the server's own store, its stamp read before its key was
-- checked, by local use or an API key the store alone vouches for (a session's cookie
-- and a provider's token expire by the clock; a directory's or a provider's person is
-- asked of them, not of the store). -> req:proxy's memo option | nil
local function memo_of(req, ctx, method, body, own)
  if own or body ~= nil or not ctx.own or not ctx.row_until or (method ~= "GET" and method ~= "HEAD") then return nil end
  local server, who = ctx.server, ctx.who
  if ctx.db ~= server.db or not who or (ctx.query and next(ctx.query) ~= nil) then return nil end
  if not who.local_use then
    if who.source ~= nil and who.source ~= "local" then return nil end -- a plain key, or a local account's
    local h = req.headers.authorization
    if not (h and h:find("^[Bb][Ee][Aa][Rr][Ee][Rr] +ork_")) then return nil end
  end
  memo_servers[server] = true
  return { own = ctx.own, dv = ctx.dv, until_ms = ctx.row_until, rate_key = who.id }
end

-- The app's other names for itself in a redirect: the address it listens on in its
-- sandbox ($HOST:$PORT, or what a framework builds from it), which no client reaches
local function internal_origins(row)
  local port = math.tointeger(row.port)
  if not port then return nil end
  local out = {}
  for i, host in ipairs { "127.0.0.1", "localhost", "[::1]", "0.0.0.0" } do
    out[i] = "http://" .. host .. ":" .. port .. "/"
  end
  return out
end

-- (prefix: on the API's route, the path the app's root is reached at, "/v1/sandboxes/ID/app/":
-- the app's redirects to its own URLs, "http://sandbox/x", "http://127.0.0.1:PORT/x" or "/x",
-- are made to lead there; on its own origin, a redirect to its listening address is made
-- "/x", on the origin the browser is at)
local function kept_of(row, own, prefix, limits)
  local by_socket = own and kept_own or kept_api
  local at = prefix and (row.socket .. "\n" .. prefix) or row.socket
  local kept = by_socket[at]
  if not kept then
    local max, each = live_limits(limits)
    kept = httpd.proxy_kept { unix_socket = row.socket, connect_timeout_ms = M.PROXY_CONNECT_MS,
      first_byte_timeout_ms = M.PROXY_TIMEOUT_MS, idle_timeout_ms = M.PROXY_IDLE_MS,
      headers_timeout_ms = M.PROXY_HEADERS_MS, max_live = max, max_live_each = each,
      each_skip_local = not M.PROXY_EACH_LOCAL, live_with = live_with(row.socket),
      max_bytes = M.PROXY_MAX_BYTES, read_ahead = M.APP_AHEAD, queue_high = M.QUEUE_HIGH, whole_max = M.WHOLE_MAX,
      lines = { "X-Content-Type-Options: nosniff", "X-Orket-Sandbox: " .. row.id, not own and CSP or nil },
      pass = own and own.pass or M.PASS_OUT, cookies = own and own.cookies, pass_in = PASS_IN,
      location_from = "http://sandbox/", location_to = prefix or "/", location_also = internal_origins(row),
      -- under the API's prefix a Link's "/style.css" is the app's, not the server root's; on
      -- its own origin the app's paths are the origin's, and its Links pass as written
      location_links = prefix ~= nil }
    by_socket[at] = kept
    live_of[row.socket] = kept
    local _, doc = bad_gateway(row)
    local _, tdoc = gateway_timeout(row)
    local _, hdoc = gateway_timeout(row, "headers")
    failed_of[kept] = { jsonout.encode(doc) .. "\n", "sandbox " .. row.id .. ": ", jsonout.encode(tdoc) .. "\n",
      jsonout.encode(hdoc) .. "\n" }
  end
  return kept
end

--- forward(req, ctx, row, url [, own, still]) -> as a handler: req passed to the app of sandbox
--- row at url, its answer streamed back by the pump (req:proxy, in C: no Lua per chunk).
--- own: the app is on an origin of its own (orket.serve.apps): {headers = fn(req) -> more
--- request headers, pass = more answer header names, cookies = the cookie names the app
--- may not set (its other Set-Cookie pass, host-only)}; without it the answer carries the
--- CSP sandbox policy instead.
function M.forward(req, ctx, row, url, own, still)
  local method = req.method -- each field of a request is a call into C: read once
  if row.status ~= "healthy" and row.status ~= "unhealthy" then
    return err(409, "not_running", string.format("sandbox %d is %s", row.id, row.status))
  end
  local body, typeless
  if method ~= "GET" and method ~= "HEAD" then
    local text, berr, bcode = req:body()
    if not text then return err(body_answer.failure(bcode, tostring(berr))) end
    -- the caller asked again: a key revoked while the body came sends nothing on
    -- (orket.serve.init, Server:recheck; an app's own origin checks its session itself)
    if ctx.server and not own then
      local rok, rst, rcode, rmsg, rremedy = ctx.server:recheck(req, ctx)
      if not rok then return err(rst, rcode, rmsg, rremedy) end
    elseif still and not still(true) then
      ctx.auth = "app_ended"
      return err(403, "forbidden", "the app's session ended or may no longer write: open the app again from Orket's board")
    end
    local rh = req.headers
    -- a DELETE or OPTIONS sent without a body goes on without one, not with a length of 0
    if text ~= "" or not BODILESS[method] or rh["content-length"] or rh["transfer-encoding"] then body = text end
    typeless = body ~= nil and rh["content-type"] == nil
  end
  local headers = own and own.headers(req, ctx)
  -- libcurl labels a body it sends as a form unless told otherwise: the app is told no type
  -- the client did not send (an empty line keeps libcurl's default out)
  if typeless then
    headers = headers or {}
    headers[#headers + 1] = "Content-Type:"
  end
  -- the API's route: the app's root is its sandbox's "/app/", under the project's prefix
  -- (its name as the client wrote it) when the route the router chose was a project's; built
  -- from that, never searched for in the path, whose rest is the app's and may hold
  -- "/sandboxes/X/app/" too
  local prefix
  if not own then
    prefix = "/sandboxes/" .. row.id .. "/app/"
    local p = type(req.path) == "string" and ctx.route and ctx.route:find("^/v1/projects/")
      and req.path:match("^/v1/projects/([^/]+)/")
    prefix = (p and not p:find("%c")) and ("/v1/projects/" .. p .. prefix) or ("/v1" .. prefix)
  end
  local kept = kept_of(row, own, prefix, ctx.server and ctx.server.limits)
  -- the request ends in C when the pump does (its 502, with ctx.headers as send adds them,
  -- the counts, the log line: httpd.proxy_tally of its route), and this task goes on at once
  local tally = ctx.server and ctx.server.tallies[ctx.route]
  if tally then
    local failed = failed_of[kept]
    local started, serr, _, _, full = req:proxy { url = url, method = method == "HEAD" and "GET" or method, headers = headers,
      body = body, kept = kept, tally = tally, t0 = ctx.t0, key = ctx.key, project = ctx.log_project,
      fail_body = failed[1], fail_more = ctx.headers, fail_note = failed[2], timeout_body = failed[3],
      headers_timeout_body = failed[4],
      memo = memo_of(req, ctx, method, body, own) }
    if started then
      ctx.ended = true
      -- a long answer (a stream) is cut once its caller may read no more, as a log
      -- followed is; the memory's own (started in C) are cut at such a row (init.lua)
      local over = function() return not pcall(req.gone, req) end
      if not own then
        watcher(req, ctx, function() req:cut() end, over)
      elseif still and ctx.hub then -- (the app's session, asked as its requests ask it)
        ctx.hub:watch { still = function() return still(false) end, stop = function() req:cut() end, over = over }
      end
      return
    end
    ctx.note = "sandbox " .. row.id .. ": " .. tostring(serr)
    if full then return app_busy(ctx, row, full) end
    return bad_gateway(row)
  end
  local status, note, _, timed_out, full, phase = req:proxy { url = url, method = method == "HEAD" and "GET" or method,
    headers = headers, body = body, kept = kept }
  if not status then
    -- what libcurl said of it is for the log line, not the client (the app's own log says more)
    ctx.note = "sandbox " .. row.id .. ": " .. tostring(note)
    if full then return app_busy(ctx, row, full) end
    if timed_out then return gateway_timeout(row, phase) end
    return bad_gateway(row)
  end
  ctx.status, ctx.note = status, note
end

--- stop_sandbox(db, id) -> true | nil, message, CODE: stops a live sandbox, this server's
--- own through its handle (signalling its owner would signal the server), another's
--- through its owner (orket.sandboxes.service.stop)
function M.stop_sandbox(db, id)
  forget(db)
  local sb = mine(db)[id]
  if sb then
    sb:stop("its bug-fix phase ended")
    mine(db)[id] = nil
    return true
  end
  return service.stop(db, id)
end

--- stop_all(db): stops the sandboxes this server owns (it is stopping)
function M.stop_all(db)
  for id, sb in pairs(mine(db)) do
    forget(db)
    sb:stop("the server stopped")
    mine(db)[id] = nil
  end
end

local SANDBOX = { type = "object", required = { "id", "status", "port", "socket" }, properties = {
  id = { type = "integer" }, status = { enum = { "starting", "healthy", "unhealthy", "stopped", "exited" } },
  target = { type = "string" }, port = { type = "integer" }, socket = { type = "string" },
  command = { type = "array", items = { type = "string" } }, detail = { type = { "string", "null" } } } }
local ONE = { type = "object", required = { "sandbox" }, properties = { sandbox = SANDBOX } }

-- ---- the proxy's routes known from the path ----------------------------------------------

local APP_PREFIX = "/v1/sandboxes/"

local ID_AT = #APP_PREFIX + 1

-- app_route's answer, worked out
local function route_of(path)
  if path:find(APP_PREFIX, 1, true) ~= 1 then return nil end
  local slash = path:find("/", ID_AT, true)
  if not slash or path:sub(slash, slash + 3) ~= "/app" then return nil end
  local rest = path:sub(slash + 4)
  if rest ~= "" and rest:byte(1) ~= 47 then return nil end -- /app.../: another route
  local id = path:sub(ID_AT, slash - 1)
  if id == "" or id:byte(1) == 46 or rest:find("//", 1, true) or rest:find("/.", 1, true) then return nil end
  -- one search for both: a path of unreserved characters is plain too (orket.serve.router)
  local clean = not path:find("[^%w%-%._~/]")
  if not clean and not router_mod.plain(path) then return nil end
  if rest:byte(-1) == 47 then rest = rest:sub(1, -2) end -- "/a/" is "/a", as the router has it
  return id, rest:sub(2), clean
end

-- app_route's answers kept per path, KEPT_PATHS at most (then all dropped, so hostile
-- paths cannot grow it): a page asks for the same few paths again and again, and each
-- answer took five searches of the path, one of them character by character
local KEPT_PATHS = 256
local kept_paths, nkept = {}, 0
local NOT_APP = {}

--- app_route(path) -> id, rest, clean | nil: the raw id and rest of a path of the proxy's route
--- (/v1/sandboxes/{id}/app/{path*}) as the router would give them (orket.serve.router), with
--- a few plain searches instead of the path's split and the route tree's walk. nil for any
--- path it is not sure of (an escape, a control byte, a backslash, a segment that is empty
--- or starts with "."): those go the router's way, which refuses or routes them. clean: the
--- whole path is of unreserved characters and slashes, rest then the app's URL path as it is.
function M.app_route(path)
  local k = kept_paths[path]
  if k == nil then
    if #path > 2048 then return nil end
    local id, rest, clean = route_of(path)
    k = id and { id, rest, clean } or NOT_APP
    if nkept >= KEPT_PATHS then kept_paths, nkept = {}, 0 end
    kept_paths[path], nkept = k, nkept + 1
  end
  return k[1], k[2], k[3]
end

--- app_path(path) -> id, rest | nil: app_route's first two
function M.app_path(path)
  local id, rest = M.app_route(path)
  return id, rest
end

--- app_routes(router) -> {method -> route}: the proxy's route of each method (HEAD: GET's),
--- as the router matches them
function M.app_routes(router)
  local out = {}
  for _, m in ipairs { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" } do
    local r = router:match(m, { "v1", "sandboxes", "1", "app", "x" })
    out[m] = assert(r and r.handler == proxy and r, "the proxy's route is not the router's")
  end
  return out
end

-- The proxy's answers in the API's document: the app's own, whatever their status and type
-- (default), and this server's refusals, each with its code (an app's answer of the same
-- status is passed on as the app gave it)
local function refusal(text) return { schema = openapi.ERROR, description = text .. "; or the app's own answer" } end
local PROXIED = {
  default = { description = "the app's answer, passed on: its status, Content-Type and body as the app gave them "
    .. "(docs/serve.md, The sandbox's app)", media = "*/*", schema = {} },
  [409] = refusal("not_running: the sandbox is not running (the message says its status)"),
  [502] = refusal("bad_gateway: the app gave no answer that could be passed on"),
  [503] = refusal("app_busy: the app has as many requests in progress as it may have, from all or from this address "
    .. "(Retry-After); or busy or unavailable, as on every route"),
  [504] = refusal("gateway_timeout: the app gave no answer, or no complete headers, in time"),
}

--- add(router): the sandbox routes
function M.add(router)
  router:add("GET", "/v1/sandboxes", { handler = list, role = "viewer", name = "sandboxes",
    summary = "The live sandboxes (?all=1: the ended ones too), newest first",
    query = { { name = "all", description = "1 (or true): the ended sandboxes too" } }, responses = { [200] = { schema = {
      type = "object", required = { "sandboxes" }, properties = { sandboxes = { type = "array", items = SANDBOX } } } } } })
  router:add("POST", "/v1/sandboxes", { handler = start, role = "operator", name = "sandbox_up", errors = { 422, 502 },
    summary = "Start main's tree in a sandbox this server owns; answers once it is healthy",
    responses = { [201] = { schema = ONE } } })
  router:add("GET", "/v1/sandboxes/{id}", { handler = get, role = "viewer", name = "sandbox", summary = "One sandbox",
    responses = { [200] = { schema = ONE } } })
  router:add("GET", "/v1/sandboxes/{id}/logs", { handler = logs, role = "viewer", name = "sandbox_logs",
    summary = "The tail of a sandbox's log (at most 64 KiB); ?follow=1: its lines as Server-Sent Events until it ends",
    query = { { name = "follow", description = "1: follow the log as Server-Sent Events" } }, responses = { [200] = { schema = { type = "object",
      required = { "id", "log", "truncated" }, properties = { id = { type = "integer" }, log = { type = "string" },
        truncated = { type = "boolean" } } } } } })
  router:add("POST", "/v1/sandboxes/{id}/stop", { handler = stop, role = "operator", name = "sandbox_stop",
    errors = { 409, 502 }, summary = "Stop a live sandbox",
    query = { { name = "force", description = "1: end the row of a sandbox whose owner cannot be asked (another "
      .. "machine's, that machine gone): marked exited, no file touched" } },
    responses = { [200] = { schema = ONE } } })
  -- the app itself: reading it is a viewer's, anything else an operator's. Its query is the
  -- app's, passed on whole (any_query: none is refused here)
  for _, m in ipairs { "GET", "POST", "PUT", "PATCH", "DELETE" } do
    router:add(m, "/v1/sandboxes/{id}/app/{path*}", { handler = proxy, role = m == "GET" and "viewer" or "operator",
      name = "sandbox_app_" .. m:lower(), any_query = true, body = "raw", responses = PROXIED,
      summary = "The sandbox's app, through its socket (the rest of the path and the query are passed on)" })
  end
  router:add("POST", "/v1/sandboxes/{id}/restart", { handler = restart, role = "operator", name = "sandbox_restart",
    errors = { 409, 422, 502 }, summary = "Stop a sandbox (if live) and start main's tree again",
    responses = { [201] = { schema = ONE } } })
end

return M
