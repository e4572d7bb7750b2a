-- orket.serve: the HTTP API of a project (orket serve). Each request runs in a task (one
-- kept, once its request is done, for a request to come): rate limit by address, route, authenticate (orket.serve.auth) and authorise by
-- role, rate limit by key, then the handler (orket.serve.routes). Errors are JSON
-- {"error":{"code","message"}}; one JSON line per request goes to the log (method, route,
-- status, microseconds, key id: never a key, a cookie or the raw path). A plain GET
-- /health goes the same way in C, inside libmicrohttpd's callback (core/health.c).
local httpd = require "orket.c.httpd"
local chealth = require "orket.c.health"
local task = require "orket.task"
local uv = require "luv"
local jsonout = require "orket.jsonout"
local audit_chain = require "orket.audit.chain"
local router_mod = require "orket.serve.router"
local routes = require "orket.serve.routes"
local auth_mod = require "orket.serve.auth"
local ratelimit = require "orket.serve.ratelimit"
local keys = require "orket.serve.keys"
local writes = require "orket.serve.writes"
local admin = require "orket.serve.admin"
local metrics = require "orket.serve.metrics"
local runs = require "orket.serve.runs"
local openapi = require "orket.serve.openapi"
local session = require "orket.serve.session"
local accounts = require "orket.serve.accounts"
local signin = require "orket.serve.signin"
local identity = require "orket.serve.identity"
local fieldline = require "orket.fieldline"
local scriptfile = require "orket.scriptfile"
local webhooks = require "orket.serve.webhooks"
local sandboxes = require "orket.serve.sandboxes"
local apps = require "orket.serve.apps"
local bugs = require "orket.serve.bugs"
local changes = require "orket.serve.changes"
local mcp_http = require "orket.serve.mcp_http"
local projects = require "orket.serve.projects"
local people = require "orket.serve.people"
local web = require "orket.serve.web"
local body_mod = require "orket.serve.body"
local cjson = require "cjson"
local errors = require "orket.errors"
local rt = require "orket.c.runtime"
local sourcepos = require "orket.sourcepos"
local revoking = require "orket.audit.revoking"

local M = {}

-- Tunable limits (docs/serve.md); ORKET_SERVE_LIMITS="name=value,..." overrides them.
M.DEFAULTS = {
  max_header_bytes = 16384, max_body_bytes = 1048576, max_connections = 512, max_per_ip = 64,
  max_bodies_bytes = 64 * 1048576, -- the bodies being read at once, in all (core/httpd.c)
  idle_timeout_s = 30, header_timeout_ms = 10000, body_timeout_ms = 30000,
  body_min_rate = 4096, -- bytes a second a body must bring in each body_timeout_ms (core/httpd.c)
  max_stream_queue = 1048576, heartbeat_ms = 15000,
  -- streams (event streams, logs followed) open at once: in all (0: three quarters of
  -- max_connections, so that they never hold every connection) and per key
  max_streams = 0, max_streams_per_key = 16, poll_ms = 20, listen_poll_ms = 5000,
  addr_rate = 50, addr_burst = 100, key_rate = 50, key_burst = 100,
  auth_fail_rate = 0.2, auth_fail_burst = 10, drain_ms = 3000,
  -- failed password sign-ins per account name (orket.serve.session): ten, then one a minute
  account_fail_rate = 1 / 60, account_fail_burst = 10, account_fail_names = 10000,
  webhook_max_age_s = 3 * 86400, -- orket.serve.webhooks
  -- a sandbox's app's requests in progress at once (0: orket.serve.sandboxes' 32), and of
  -- them from one client address (0: half of those; loopback and unix-socket clients, a
  -- front end's or this machine's, are held to no share). A client's address is the one a
  -- proxy of serve.trusted_proxies forwards for (X-Forwarded-For, core/httpd.c), everywhere
  app_live_max = 0, app_live_each = 0,
}
-- The limits that are counts of requests: whole numbers, at most WHOLE_MAX (more live
-- answers than any server holds connections; the proxy refuses larger counts itself)
local WHOLE = { app_live_max = true, app_live_each = true }
local WHOLE_MAX = 65536

-- The limits a 0 would turn off rather than set (a bucket that never holds a token, a cap
-- that keeps no name): refused, saying what each takes (there is no "off" for them)
local FLOORS = {
  auth_fail_rate = "a number above 0 (tokens a second)", auth_fail_burst = "a number from 1 (tokens)",
  account_fail_rate = "a number above 0 (tokens a second)", account_fail_burst = "a number from 1 (tokens)",
  account_fail_names = "a whole number from 1 (the names kept)",
}
local function floor_ok(k, n)
  if k:find("_rate$") then return n > 0 end
  if k == "account_fail_names" then return math.tointeger(n) ~= nil and n >= 1 end
  return n >= 1
end

-- Every other limit is a count, a size or a time in whole units, as the listener and the
-- timers take it (a fraction, or one past an int, raised there at start-up)
local INT_MAX = 2147483647
-- A limiter's tokens a second (a fraction may do); body_min_rate is bytes a second, whole
local function tokens(k) return k:find("_rate$") and k ~= "body_min_rate" end
-- the most the listener takes of each of its own (core/lhttpd.c's listen): more was taken
-- here and raised there at start-up, an internal error
local LISTEN_MAX = { max_header_bytes = 1 << 24, max_connections = 100000, max_per_ip = 100000,
  idle_timeout_s = 86400, header_timeout_ms = 86400000, body_timeout_ms = 86400000, body_min_rate = 1 << 30,
  max_stream_queue = 1 << 30 }
local function most(k) return math.min(LISTEN_MAX[k] or INT_MAX, INT_MAX) end
local function whole_ok(k, n)
  if tokens(k) or k:find("_burst$") or WHOLE[k] then return true end
  return math.tointeger(n) ~= nil and n >= 0 and n <= most(k)
end

--- limits(spec) -> limits | nil, msg: the defaults with "name=value,..." applied
function M.limits(spec)
  local l = {}
  for k, v in pairs(M.DEFAULTS) do l[k] = v end
  for item in (spec or ""):gmatch("[^,]+") do
    item = item:match("^%s*(.-)%s*$")
    local k, v = item:match("^([%w_]+)%s*=%s*([%d.]+)$")
    if not k or M.DEFAULTS[k] == nil or not tonumber(v) then
      return nil, "bad limit '" .. item .. "' (name=number, names: see docs/serve.md)"
    end
    local n = tonumber(v)
    if WHOLE[k] and not (math.tointeger(n) and n <= WHOLE_MAX) then
      return nil, "bad limit '" .. item .. "': " .. k .. " takes a whole number from 0 to " .. WHOLE_MAX
        .. " (0: its default)"
    end
    if WHOLE[k] then n = math.tointeger(n) end
    if FLOORS[k] and not floor_ok(k, n) then
      return nil, "bad limit '" .. item .. "': " .. k .. " takes " .. FLOORS[k]
        .. "; the failed sign-in limits cannot be turned off (docs/serve.md, Limits)"
    end
    -- every other limiter's rate of 0 or burst below one token refills nothing: refused, not
    -- met by the limiter's own check at start-up
    local limiter = tokens(k) and "a number above 0 (tokens a second)"
      or k:find("_burst$") and "a number from 1 (tokens)"
    if limiter and not floor_ok(k, n) then return nil, "bad limit '" .. item .. "': " .. k .. " takes " .. limiter end
    if not whole_ok(k, n) then
      return nil, "bad limit '" .. item .. "': " .. k .. " takes a whole number from 0 to " .. most(k)
    end
    if math.tointeger(n) and not tokens(k) then n = math.tointeger(n) end
    l[k] = n
  end
  return l
end

local Server = {}
Server.__index = Server

local JSON_HEADERS = { "Content-Type: application/json; charset=utf-8", "Cache-Control: no-store",
  "X-Content-Type-Options: nosniff" }

-- A handler's document, or JSON text it already encoded (jsonout.encoded): a kept answer is
-- sent as it is, with the same headers as any other.
M.encoded = jsonout.encoded

-- A kept answer goes out from one shared copy of its bytes (httpd.blob), made the first
-- time its text is sent: a 1,000-card board is 400 KB, which every answer copied before.
-- The last few texts' copies are kept; answers still being sent hold theirs.
local MAX_BLOBS = 4

local function blob_of(server, text)
  local b = server.blobs[text]
  if not b then
    if server.nblobs >= MAX_BLOBS then server.blobs, server.nblobs = {}, 0 end
    b = httpd.blob(text)
    server.blobs[text], server.nblobs = b, server.nblobs + 1
  end
  return b
end

local function send(req, ctx, status, doc, extra)
  ctx.status = status
  local headers = { JSON_HEADERS[1], JSON_HEADERS[2], JSON_HEADERS[3] }
  local n, more = 3, ctx.headers -- CORS, Set-Cookie; then the caller's
  for _ = 1, 2 do
    if more then
      for i = 1, #more do headers[n + i] = more[i] end
      n = n + #more
    end
    more = extra
  end
  local body
  if jsonout.is_encoded(doc) then body = ctx.server and blob_of(ctx.server, doc.text) or doc.text
  else body = jsonout.encode(doc) .. "\n" end
  return req:respond(status, headers, body)
end

-- the methods that write, and the most a write that takes no body may send ({} and such)
local WRITES = router_mod.WRITES
local NO_BODY_MAX = 4096
local no_body, grant -- (below)

-- The journal's kinds that may take an API key's right away (the proxy's memory holds
-- only a key's requests: orket.serve.sandboxes' memo_of), from the one list of such acts
local KEY_REVOKING = revoking.KEY_KINDS

-- seconds a client waits before trying a write the store's lock turned away (EBUSY) again
local BUSY_RETRY_S = 2

local function fail(req, ctx, status, code, message, extra, remedy)
  local _, doc = errors.answer(status, code, message, remedy)
  return send(req, ctx, status, doc, extra)
end

local function listen(l, where)
  local opts = { max_header_bytes = l.max_header_bytes, max_body_bytes = l.max_body_bytes,
    max_bodies_bytes = l.max_bodies_bytes,
    max_connections = l.max_connections, max_per_ip = l.max_per_ip, idle_timeout_s = l.idle_timeout_s,
    header_timeout_ms = l.header_timeout_ms, body_timeout_ms = l.body_timeout_ms, body_min_rate = l.body_min_rate,
    max_stream_queue = l.max_stream_queue }
  for k, v in pairs(where) do opts[k] = v end
  return httpd.listen(opts)
end

-- The server's log function as it is when called (a test swaps it), through a weak
-- reference: the health keeps its log function from the registry, and a closure over the
-- server would keep a server dropped without stop() for good.
local function log_of(self)
  local ref = setmetatable({ self }, { __mode = "v" })
  return function(line)
    local s = ref[1]
    if s then s.log(line) end
  end
end

-- GET /health, answered in C inside libmicrohttpd's run (core/health.c; docs/serve.md,
-- "/health"): the address's token from self.by_addr's buckets, CORS as web.front sets it,
-- the log line to self.log, the metrics counted there and read by /metrics. What it does
-- not settle (an app's origin, an address out of tokens) comes here as any request.
local function health_answer(self)
  local cors = {}
  for origin in pairs(self.cors) do cors[#cors + 1] = origin end
  local h = chealth.new { headers = { JSON_HEADERS[1], JSON_HEADERS[2], JSON_HEADERS[3], web.VARY },
    body = jsonout.encode(routes.health_doc) .. "\n", cors = cors, cors_expose = web.EXPOSE,
    app_base = self.apps.base, buckets = metrics.BUCKETS, by_addr = self.by_addr,
    log = log_of(self) }
  self.metrics:count_elsewhere("/health", 200, h)
  self.srv:quick({ "/health" }, h)
  if self.usrv then self.usrv:quick({ "/health" }, h) end
  return h
end

--- router() -> the router of every route the server serves (tests enumerate it)
function M.router()
  local r = router_mod.new()
  for _, m in ipairs { routes, writes, admin, metrics, runs, openapi, session, webhooks, sandboxes, apps, bugs,
    changes, -- a card's diff, the violations
    mcp_http, -- /mcp (docs/mcp.md)
    signin, -- /v1/sign-in/oidc (docs/teams.md)
    projects, people } do
    m.add(r)
  end
  return r
end

--- new{dir=, db=, host=, port=, limits=, log=fn(line), unix=, local_token=, projects=, unavailable=}
--- -> server | nil, msg, CODE. unix: a path where this user's processes are served too (a
--- unix socket, mode 0600); local_token: what a write needs before any key exists
--- (orket.serve.localuse); projects: the other projects served, {name, dir, db} each (their
--- stores opened and closed by the caller), dir and db being the default project's
--- (orket.serve.projects); unavailable: those whose store did not open, {name, dir,
--- unavailable = why} each (their routes answer 503 with why)
function M.new(o)
  local l = o.limits or M.limits()
  -- read first: the listener is made with the proxies whose X-Forwarded-For it believes
  local ss, cerr, audit_s = web.settings(o.dir)
  if not ss then return nil, cerr, "EINVAL" end
  local srv, err, code = listen(l, { host = o.host, port = o.port, trusted_proxies = ss.trusted_proxies })
  if not srv then return nil, err, code end
  local usrv
  if o.unix then -- without it (a path too long, a file in the way) the token still serves
    local uerr
    usrv, uerr = listen(l, { unix = o.unix })
    if not usrv and o.log then
      o.log(jsonout.encode { event = "error", message = "no unix socket: " .. tostring(uerr), t = os.date("!%Y-%m-%dT%H:%M:%SZ") })
    end
  end
  -- the socket file this server made: a server started after it in the same project takes
  -- the path over with a file of its own, which this one's stop must leave alone
  local ust = usrv and uv.fs_stat(o.unix)
  local self = setmetatable({ srv = srv, usrv = usrv, unix = usrv and o.unix, dir = o.dir, db = o.db, limits = l,
    unix_id = ust and { dev = ust.dev, ino = ust.ino },
    log = o.log or function() end, inflight = 0, blobs = {}, nblobs = 0, idle = {},
    nstreams = 0, streams_of = {}, -- open streams, in all and per caller (take_stream)
    main_push = nil, -- {again=} while main is pushed after a webhook's merge (orket.serve.webhooks)
  }, Server)
  self.router = M.router()
  self.app_routes = sandboxes.app_routes(self.router)
  self.metrics = metrics.new()
  -- the sandbox proxy's requests, on the API's route (the default project's and a hosted
  -- one's, as ctx.route names them) and on an app's origin, end in C when their pump does
  -- (orket.serve.sandboxes.forward): route -> its tally, whose counts are added in to the
  -- metrics and which writes their log lines. A route without one is proxied the blocking
  -- way, whose stream no revocation cuts.
  self.tallies = {}
  local api_route = self.app_routes.GET.pattern
  for _, route in ipairs { api_route, projects.scoped_pattern(api_route), apps.ROUTE } do
    self.tallies[route] = httpd.proxy_tally { route = route, buckets = metrics.BUCKETS, log = log_of(self),
      fail_headers = JSON_HEADERS }
    self.metrics:count_elsewhere(route, nil, self.tallies[route])
  end
  -- requests refused at their headers in C, before any route (a 431, framing read two ways,
  -- a duplicate Host): logged and counted as route "-" by a tally of their own (core/httpd.c)
  self.refused = httpd.proxy_tally { route = "-", buckets = metrics.BUCKETS, log = log_of(self) }
  self.metrics:count_elsewhere("-", nil, self.refused)
  srv:refusals(self.refused)
  if usrv then usrv:refusals(self.refused) end
  self.audit = audit_s -- checkpoint_every, retention_days (orket.settings.audit)
  self.cors = {}
  for _, origin in ipairs(ss.cors) do self.cors[origin] = true end
  self.apps = apps.new(ss.app_origin)
  self.auth = auth_mod.new(o.db, o.dir, httpd.is_loopback(o.host), o.local_token)
  self.auth.cors = self.cors
  local sok, serr = signin.attach(self, o.dir)
  if not sok then
    srv:close()
    if usrv then usrv:close() end
    return nil, serr, "EINVAL"
  end
  self.by_addr = ratelimit.new { rate = l.addr_rate, burst = l.addr_burst }
  self.by_key = ratelimit.new { rate = l.key_rate, burst = l.key_burst }
  self.health = health_answer(self)
  -- in the store: a guesser gains nothing by spreading its tries over several servers
  self.auth_fails = ratelimit.shared(o.db, "auth_fail", { rate = l.auth_fail_rate, burst = l.auth_fail_burst })
  -- and per account name, whatever the address: a guesser spread over many addresses
  self.account_fails = ratelimit.shared(o.db, accounts.FAIL_SCOPE, { rate = l.account_fail_rate,
    burst = l.account_fail_burst, max = l.account_fail_names })
  -- the store's stamp of its connection (SQLite's: db.conn:stamp()), none on PostgreSQL
  self.stamped = type(o.db.conn) == "userdata" and o.db.conn.stamp or nil
  local hub_opts = { poll_ms = l.poll_ms, listen_poll_ms = l.listen_poll_ms, heartbeat_ms = l.heartbeat_ms,
    on_error = function(msg) self:_log { event = "error", message = msg } end }
  self.hub = routes.events.new(o.db, hub_opts)
  self.branding = ss.branding
  -- each project with its own store, directory and journal's hub
  self.projects = { [projects.DEFAULT] = { name = projects.DEFAULT, dir = o.dir, db = o.db, hub = self.hub } }
  self.project_names = { projects.DEFAULT }
  for _, p in ipairs(o.projects or {}) do
    self.projects[p.name] = projects.opened(o.db, { name = p.name, dir = p.dir, db = p.db,
      hub = routes.events.new(p.db, hub_opts) })
    self.project_names[#self.project_names + 1] = p.name
  end
  -- projects whose store did not open: listed to their members, every route of theirs a 503
  self.unavailable = {}
  for _, p in ipairs(o.unavailable or {}) do
    self.unavailable[p.name] = p
    projects.mark_stored(o.db, p) -- so GET /v1/projects can tell one removed since
    self.project_names[#self.project_names + 1] = p.name
  end
  table.sort(self.project_names, function(a, b) return a == projects.DEFAULT or (b ~= projects.DEFAULT and a < b) end)
  -- people and keys live in the default project's store: a revocation journaled there has
  -- every project's streams checked before anything more is delivered (orket.serve.events)
  self.hub.on_revoke = function(_, r)
    for _, p in pairs(self.projects) do p.hub:recheck() end
    -- the proxy's memory's requests (started in C, their callers unknown there) may be a
    -- revoked key's streams: each one's key asked again, those refused cut (docs/serve.md)
    if r and KEY_REVOKING[r.kind] and not self.stopping then
      self:_cut_memo_refused(self.srv)
      if self.usrv then self:_cut_memo_refused(self.usrv) end
    end
  end
  -- a group map for a project this server does not host would grant nothing: a mistake;
  -- one whose store did not open is hosted, left out as everywhere else (logged, a 503).
  -- Said with its line, as orket validate says it
  local hosted = {}
  for name in pairs(self.projects) do hosted[name] = true end
  for name in pairs(self.unavailable) do hosted[name] = true end
  local unhosted = identity.unhosted(self.signin.project_roles, hosted)[1]
  if unhosted then
    srv:close()
    if usrv then usrv:close() end
    self.health:close() -- the limiter lent back
    return nil, o.dir and fieldline.locate(unhosted, o.dir, function(path) return (scriptfile.read(path)) end)
      or unhosted, "EINVAL"
  end
  -- the proxy's memory (docs/serve.md, "The proxy's memory"): a proxied request decided
  -- here is proxied from C when it comes again the same, under the same store stamp
  -- (SQLite's: none on PostgreSQL), taking from the same limiters
  if self.stamped then
    for _, s in ipairs { srv, usrv } do s:proxy_memo { conn = o.db.conn, by_addr = self.by_addr, by_key = self.by_key } end
  end
  return self
end

--- server:changed(name) -> nil | why: the project the server opened under the name at its
--- start is no longer what the store names (removed, or added again from elsewhere:
--- orket.serve.projects.changed); the default project never is
function Server:changed(name)
  local p = name ~= projects.DEFAULT and self.projects[name]
  return p and projects.changed(self.db, p) or nil
end

--- server:proxy_forget(): the proxy's memory forgets what it decided (a sandbox this
--- server stopped: its next request is answered 409 here, not proxied to a socket gone)
function Server:proxy_forget()
  if self.stopping then return end -- off already
  self.srv:proxy_forget()
  if self.usrv then self.usrv:proxy_forget() end
end

function Server:port() return self.srv:port() end

--- server:checkpoint(force, db, dir[, at_stop]): the audit's checkpoint and retention
--- (orket.audit.chain), after a request's audited write has committed, and at the stop
--- (force: the tail signed, whatever its length). A failure is logged; the write it follows
--- stands. At the stop a store that did not answer in time (orket.stopsignals.STORE_MS) is
--- said as the checkpoint skipped: the tail stays chained, and the next one signs it.
function Server:checkpoint(force, db, dir, at_stop)
  local a = self.audit or {}
  local function failed(err)
    local msg = "audit checkpoint: " .. tostring(err)
    if at_stop then
      msg = "audit checkpoint: skipped at the stop: " .. tostring(err) .. "; the entries since the last checkpoint "
        .. "stay chained, and the next checkpoint (a write's, or the next stop's) signs them"
    end
    self:_log { event = "error", message = msg }
  end
  local ok, perr = pcall(function()
    local res, err = audit_chain.checkpoint(db or self.db, dir or self.dir, { force = force, every = a.checkpoint_every,
      retention_days = a.retention_days })
    if not res then failed(err) end
  end)
  if not ok then failed(perr) end
end

-- the log lines' stamp, its text made once a second (every request has one)
function Server:_stamp()
  local now = os.time()
  if now ~= self.log_sec then self.log_sec, self.log_t = now, os.date("!%Y-%m-%dT%H:%M:%SZ", now) end
  return self.log_t
end

function Server:_log(fields)
  fields.t = self:_stamp()
  -- a background task's failure (the event stream's read, the bug-fix phase's tick, a run)
  -- is most often the store's, raised through assert(): said without the source positions
  -- of Orket's own library, as the command line says it (docs/store.md); a request's 500
  -- keeps them for its report
  if fields.event == "error" and not fields.route and type(fields.message) == "string" then
    fields.message = sourcepos.plain(fields.message)
  end
  self.log(jsonout.encode(fields))
end

local function now_ms() return uv.now() end

local function too_many(req, ctx, retry, what)
  return fail(req, ctx, 429, "rate_limited", "too many " .. what .. "; retry after " .. retry .. " s",
    { "Retry-After: " .. retry })
end

-- A credential refused (401) -> the address's wait, answered 429 instead of the 401, while
-- its failed authentications are held off (not counted then: a flood of them writes
-- nothing) | nil, the failure counted. Only a refused credential is held off: a valid key or
-- session is no guess that came true (each carries 256 random bits: ork_'s secret, ors_'s
-- token), and checking one costs what the request it came with does (one read by its id or
-- hash, one BLAKE2b, compared in constant time: orket.serve.keys, session), which the
-- address's request limit bounds. What keeps a key or session from being guessed is its
-- bits, not this limit: a held-off guesser learns from 200 or 429 what it would from 200 or
-- 401, and every refused credential gets the same 429.
local function refused_credential(self, remote)
  -- the stamp read again: checking may have waited (a provider's keys), others failed meanwhile
  local own, dv
  if self.stamped then own, dv = self.stamped(self.db.conn) end
  local wait = self.auth_fails:empty(remote, now_ms(), own, dv)
  if wait then return wait end
  self.auth_fails:take(remote, now_ms())
end

-- The caller as a member of the project; local use's is the same for every request: made
-- once per project
local function member(proj, who, role)
  local is_local = who == auth_mod.LOCAL
  if is_local and proj.local_member then return proj.local_member end
  local m = setmetatable({ role = role, project = proj.name }, { __index = who })
  if is_local then proj.local_member = m end
  return m
end

-- The caller's role for the request's route (ctx.granted), ctx.who made the member of its
-- project -> nil | status, code, message[, remedy]: refused. changed: the project's
-- changed (Server:changed), for a scoped route
function grant(self, ctx, who, changed)
  local g = ctx.granted
  local route, proj, role = g.route, g.proj, nil
  if route.server then
    role = projects.server_role(self.db, who)
  else
    -- a project's route: the caller's role in it; one they are not a member of is
    -- answered as one that does not exist
    role = proj and projects.role_in(self.db, who, proj.name)
    if not role then return 404, "not_found", "no such project, or not yours" end
    if proj.unavailable then return 503, "project_unavailable", proj.unavailable end
    if changed then return 409, "project_changed", changed end
    ctx.who = member(proj, who, role)
  end
  if not keys.allows(role, g.need) then
    local msg, remedy = projects.refusal(self.db, who, role, g.need, not route.server and proj.name or nil,
      self.signin)
    return 403, "forbidden", msg, remedy
  end
end

--- server:recheck(req, ctx) -> true | nil, status, code, message[, remedy]: whether the
--- caller checked when the headers came may still make the request, asked again once its
--- body is read (up to body_timeout_ms later): a key revoked, a person disabled, demoted
--- or taken out of the project meanwhile must not have a write already sent go through.
--- Nothing is read while the store's stamp is the one the check was made under (no
--- connection wrote since); on PostgreSQL (no stamp) the check is made again. Routes that
--- read their own body (body = "raw": /mcp, the proxy's writes) call it after reading it.
function Server:recheck(req, ctx)
  local g, was = ctx.granted, ctx.who
  if not g or not was or was.local_use then return true end
  local own, dv
  if self.stamped then
    own, dv = self.stamped(self.db.conn)
    if own == ctx.own and dv == ctx.dv then return true end
  end
  local who, st, code, msg, why, remedy = self.auth:check(req, own, dv)
  if not who then
    ctx.auth = why
    return nil, st, code, msg, remedy
  end
  local rst, rcode, rmsg, rremedy = grant(self, ctx, who, g.scoped and g.proj and self:changed(g.proj.name))
  if rst then
    ctx.who = was
    return nil, rst, rcode, rmsg, rremedy
  end
  if g.route.server then ctx.who = who end
  ctx.own, ctx.dv = own, dv
  return true
end

-- A forge's webhook routes (orket.serve.webhooks) -> the forge
local HOOKS = { webhook_gitea = "gitea", webhook_github = "github" }

-- where a caller refused an unknown query parameter finds each route's
local QUERY_REMEDY = "GET /v1/openapi.json lists each route's query parameters (docs/serve.md)"

-- The request's whole way; ctx collects what the log line says.
function Server:_dispatch(req, ctx)
  local remote = req.remote -- each field of a request is a call into C: read once
  local ok, retry = self.by_addr:take(remote, now_ms())
  if not ok then return too_many(req, ctx, retry, "requests from this address") end
  local headers, method, path = req.headers, req.method, req.path
  -- a sandbox's app, on an origin of its own (its Host): never the API's routes
  local app = self.apps:sandbox_of(req, headers)
  if app then
    local astatus, adoc = self.apps:handle(req, ctx, app)
    if astatus then return send(req, ctx, astatus, adoc) end
    return
  end
  if web.front(self, req, ctx, headers, method, path) then return end -- the web board's files, CORS
  local route, status_or_params, allowed, scoped, proj = self:_app_route(method, path)
  if not route then
    local segs, perr = router_mod.segments(path)
    if not segs then return fail(req, ctx, 400, "bad_path", perr) end
    route, status_or_params, allowed, scoped, proj = self:_route(req, segs)
  end
  if not route then
    local status = status_or_params
    if status == 405 then
      -- what the route is answered to: its methods, HEAD with a GET (served as one) and
      -- OPTIONS (every path's, orket.serve.web), as OPTIONS itself says
      local list = web.allow(allowed)
      return fail(req, ctx, 405, "method_not_allowed", "this route takes " .. list, { "Allow: " .. list })
    end
    return fail(req, ctx, 404, "not_found", "no such route")
  end
  ctx.route = scoped and projects.scoped_pattern(route.pattern) or route.pattern
  -- the log line names the project a project's route was asked of (one that exists here)
  if scoped and proj then ctx.log_project = proj.name end
  -- the role the route needs: under a project's prefix, a probe (/ready, /health) says how
  -- that project is, which is its members' to ask, as any other of its routes
  local need = route.role or (scoped and route.scoped_role) or nil
  -- a forge's webhook under a project's prefix takes no key (its signature is its
  -- authentication): in a project that does not exist or did not open, it is refused as
  -- one whose signature does not match, so that a name cannot be probed through it
  local hook = scoped and not need and HOOKS[route.name]
  ctx.scoped_hook = hook and true or nil -- (its refusals are a stand-in's: orket.serve.webhooks)
  local handler = route.handler
  -- a project removed or added again since the start: its members are told (below), a
  -- stranger's request answered as for one that does not exist
  local changed = scoped and proj and not proj.unavailable and self:changed(proj.name)
  if hook and (not proj or proj.unavailable or changed) then handler, proj = webhooks.stand_in(hook), nil end
  -- the server's own routes (people, keys, sign-in) are not a project's; a project's route
  -- without a key answers only for a project that exists and opened (with one: after the
  -- key, below): one whose store did not open is, to a stranger, one that does not exist
  -- (a server's route says so, whatever the project: "not yours" was false to a member, and
  -- the answer is the same for every name, so it tells no project's existence)
  if scoped and route.server then
    return fail(req, ctx, 404, "not_found", web.not_scoped(route))
  end
  if scoped and (not proj or proj.unavailable or changed) and not need and not hook then
    return fail(req, ctx, 404, "not_found", "no such project, or not yours")
  end
  if route.guard then -- what a route refuses before any key (MCP's Origin and Host)
    local gst, gcode, gmsg, gremedy = route.guard(req, ctx)
    if gst then return fail(req, ctx, gst, gcode, gmsg, nil, gremedy) end
  end
  if need then
    -- the store's stamp (SQLite's; nil on PostgreSQL), read once for the key's reads: each
    -- is kept while it stays the same (no write to the store by any connection since)
    local own, dv
    if self.stamped then own, dv = self.stamped(self.db.conn) end
    ctx.own, ctx.dv = own, dv -- the proxy's memory keeps a decision under them (orket.serve.sandboxes)
    -- the credential first, the address's failed authentications only for one refused
    -- (refused_credential): behind a reverse proxy not in serve.trusted_proxies every client
    -- has the proxy's address, and one guesser must not hold off everyone's valid keys and
    -- sessions
    local who, st, code, msg, why, remedy, as = self.auth:check(req, own, dv)
    if not who then
      ctx.auth, ctx.key = why, as -- (as: whose valid session a refused write rode)
      -- (a request with no credential at all is no guess: every load of the board before
      -- its sign-in asks so, and counted, ten loads from one address refused the right password)
      local wait = st == 401 and why ~= "missing" and refused_credential(self, remote)
      if wait then return too_many(req, ctx, wait, "failed authentications from this address") end
      return fail(req, ctx, st, code, msg, st == 401 and { 'WWW-Authenticate: Bearer realm="orket"' } or nil, remedy)
    end
    ctx.key, ctx.who = who.key_id or who.id, who
    ctx.granted = { route = route, proj = proj, need = need, scoped = scoped } -- for Server:recheck
    local rst, rcode, rmsg, rremedy = grant(self, ctx, who, changed)
    if rst then return fail(req, ctx, rst, rcode, rmsg, nil, rremedy) end
    if who.id then
      local kok, kretry = self.by_key:take(who.id, now_ms())
      if not kok then return too_many(req, ctx, kretry, "requests with this key") end
    end
    -- a request that carries more (an MCP batch's messages) takes a token for each of them
    ctx.take_more = function()
      local t = now_ms()
      return self.by_addr:take(remote, t) and (not who.id or self.by_key:take(who.id, t)) or false
    end
  end
  if req.too_large then
    -- the cap and what sets it, as an app's own origin says (an upload through the proxy)
    return fail(req, ctx, 413, "too_large", string.format("the request body is larger than the server accepts "
      .. "(at most %d bytes: ORKET_SERVE_LIMITS max_body_bytes on orket serve sets it)", self.limits.max_body_bytes))
  end
  local query, bad = router_mod.query(req.query)
  if not query then return fail(req, ctx, 400, "bad_query", "the query has an invalid escape or a control character") end
  -- a parameter the route does not declare is refused, not ignored (orket.serve.router);
  -- an app's own origin and the board's files were answered before: their queries are theirs
  local unknown = router_mod.unknown_query(route, query)
  if unknown then return fail(req, ctx, 400, "bad_query", unknown, nil, QUERY_REMEDY) end
  ctx.query, ctx.params = query, status_or_params
  if proj then ctx.db, ctx.dir, ctx.hub, ctx.project = proj.db, proj.dir, proj.hub, proj.name end
  -- a body read as JSON (a route's, or the {} a write that takes none allows: the route's
  -- media, orket.serve.router) is sent as JSON: a form's or a text's body read as JSON anyway
  -- was a second reading of it. The media type itself, its parameters (charset) aside:
  -- "application/jsonx" is another. Checked before the body, and only when one comes: a
  -- POST with none is not mislabelled (a route that takes none takes it; one that needs a
  -- body says it is empty)
  local sent = headers["transfer-encoding"] or (headers["content-length"] and headers["content-length"] ~= "0")
  if route.media and sent and (headers["content-type"] or ""):lower():match("^%s*([^;%s]*)") ~= route.media then
    return fail(req, ctx, 415, "unsupported_media_type", "send the body with Content-Type: " .. route.media)
  end
  if route.body == "json" then -- read only now: refusals above come before any of it
    local value, bst, bcode, bmsg = body_mod.json(req, route.max_body)
    if value == nil then return fail(req, ctx, bst, bcode, bmsg) end
    value = body_mod.without_nulls(route.schema, value)
    ctx.body = value
    local sok, serr = writes.check(route, value)
    if not sok then return fail(req, ctx, 400, "bad_request", serr) end
  elseif route.body == nil and WRITES[req.method] and sent then
    local bst, bcode, bmsg = no_body(req)
    if bst then return fail(req, ctx, bst, bcode, bmsg) end
    ctx.body_read = true
  end
  -- the credential and role asked again when a body was read meanwhile (Server:recheck)
  if route.body == "json" or ctx.body_read then
    local rok, rst, rcode, rmsg, rremedy = self:recheck(req, ctx)
    if not rok then
      return fail(req, ctx, rst, rcode, rmsg, rst == 401 and { 'WWW-Authenticate: Bearer realm="orket"' } or nil, rremedy)
    end
  end
  -- no handler without its project's database (every path to here answered an unavailable one)
  assert(not (proj and proj.unavailable), "a route of an unavailable project reached its handler")
  local hstatus, doc = handler(req, ctx)
  -- a project without a webhook secret would tell a stranger it is there (and how it is
  -- set up): its refusal is the one of a bad signature too (the log's note says which)
  if hook and hstatus == 401 and doc.error.code == "no_secret" then hstatus, doc = webhooks.mismatch() end
  -- the store's lock held past its wait by another process: a client (or a balancer) that
  -- reads Retry-After sends the write again, where a 409 read as a lasting conflict
  if hstatus == 503 and type(doc) == "table" and doc.error and doc.error.code == "EBUSY" then
    return send(req, ctx, hstatus, doc, { "Retry-After: " .. BUSY_RETRY_S })
  end
  if hstatus then return send(req, ctx, hstatus, doc) end
end

-- A write that takes no body (a run's stop, a sandbox's start, a person's unlock: routes with
-- no body declared; those that read theirs say body = "raw") sent one: {} passes, as a
-- client that always sends JSON writes it; anything else is refused, naming what it gave,
-- so that a field the client believes was honoured (resume's "model") is not dropped
-- without a word. -> nil | status, code, message
function no_body(req)
  local value, bst, bcode, bmsg = body_mod.json(req, NO_BODY_MAX)
  if value == nil then
    -- (an array too: cjson reads [] as {}, the text tells it: orket.serve.body)
    if bmsg == body_mod.NOT_OBJECT then
      bmsg = "the body must be a JSON object, and this route takes no body: send none (or {})"
    end
    return bst, bcode, bmsg
  end
  local keys = {}
  for k in pairs(value) do keys[#keys + 1] = tostring(k) end
  if #keys == 0 then return nil end
  table.sort(keys)
  return 400, "bad_request", string.format("this route takes no body: the field %s is not one it reads; send none "
    .. "(or {})", cjson.encode(keys[1]))
end

-- Whose streams a request's count among: its key's (a session's key, as the log line's
-- key); nil for local use (one person, bounded by max_streams alone)
local function stream_owner(who)
  if not who or who.local_use then return nil end
  return who.key_id or who.id
end

--- server:take_stream(req, ctx) -> true | false, once answered 429: a stream (an event
--- stream, a log followed) counted against max_streams and its caller's
--- max_streams_per_key until its handler returns (_serve gives it back). A stream holds its
--- connection for as long as its client likes: one key must not hold them all.
function Server:take_stream(req, ctx)
  if ctx.stream_owner ~= nil then return true end
  local l = self.limits
  local total = l.max_streams > 0 and l.max_streams or (l.max_connections * 3) // 4
  if self.nstreams >= total then
    too_many(req, ctx, 5, "streams open on this server (" .. total .. ")")
    return false
  end
  local owner = stream_owner(ctx.who) or false
  if owner and (self.streams_of[owner] or 0) >= l.max_streams_per_key then
    too_many(req, ctx, 5, "streams open with this key (" .. l.max_streams_per_key .. "); close one")
    return false
  end
  self.nstreams = self.nstreams + 1
  if owner then self.streams_of[owner] = (self.streams_of[owner] or 0) + 1 end
  ctx.stream_owner = owner
  return true
end

local function give_stream(self, ctx)
  local owner = ctx.stream_owner
  ctx.stream_owner = nil
  self.nstreams = self.nstreams - 1
  if owner then
    local n = self.streams_of[owner] - 1
    self.streams_of[owner] = n > 0 and n or nil
  end
end

--- server:still_allowed(req, ctx) -> whether the caller of a request answered with a
--- stream may still read it: their key or session still valid, still a member of the
--- project, and the project still the one the server opened (asked again at each
--- heartbeat: orket.serve.events)
function Server:still_allowed(req, ctx)
  if ctx.who.local_use then return true end
  local who = self.auth:check(req)
  return who ~= nil and projects.role_in(self.db, who, ctx.project or projects.DEFAULT) ~= nil
    and not self:changed(ctx.project or projects.DEFAULT)
end

-- Cuts srv's requests proxied from the memory whose caller may no longer read them. The
-- memory holds the default project's app routes only, for an API key or local use
-- (orket.serve.sandboxes, memo_of): each is checked as a request's is (local use's token
-- is refused once a key exists; one without a header, the unix socket's, never); a check
-- that fails (the store unreadable) cuts, as it refuses a request.
function Server:_cut_memo_refused(srv)
  local cut = {}
  for _, p in ipairs(srv:proxy_running()) do
    if p.authorization then
      local ok, allowed = pcall(self.still_allowed, self,
        { method = "GET", headers = { authorization = p.authorization } }, { who = {} })
      if not (ok and allowed) then cut[#cut + 1] = p.id end
    end
  end
  if cut[1] then srv:proxy_cut(cut) end
end

-- The route of a request's segments -> route, params | nil, 404/405, allowed; then whether
-- it came under /v1/projects/{p}/ and its project (nil: none of that name). Inside a
-- project a route is its /v1/ route, else the route as it is (/mcp, /metrics).
function Server:_route(req, segs)
  local pname, inner, bare = projects.scope(segs)
  if not pname then
    local r, p, a = self.router:match(req.method, segs)
    return r, p, a, false, self.projects[projects.DEFAULT]
  end
  local r, p, a = self.router:match(req.method, inner)
  if not r and p == 404 and bare then r, p, a = self.router:match(req.method, bare) end
  return r, p, a, true, self.projects[pname] or self.unavailable[pname]
end

-- The sandbox proxy's route of a request's method and path, as _route gives it, known from
-- the path without the router (a page's many requests to an app come this way:
-- orket.serve.sandboxes.app_route) | nil
function Server:_app_route(method, path)
  local route = self.app_routes[method]
  if not route then return nil end
  local id, rest, clean = sandboxes.app_route(path)
  if not id then return nil end
  return route, { id = id, path = rest, clean = clean }, nil, false, self.projects[projects.DEFAULT]
end

-- A request in flight until _serve returns or raises: a raise (its log line, metrics or
-- checkpoint failing) must not leave it counted, or stop() would wait for it.
function Server:_handle(req)
  self.inflight = self.inflight + 1
  local ok, err = pcall(self._serve, self, req)
  self.inflight = self.inflight - 1
  if not ok then error(err, 0) end
end

function Server:_serve(req)
  local t0 = uv.hrtime()
  local ctx = { db = self.db, dir = self.dir, hub = self.hub, metrics = self.metrics, route = "-", server = self, t0 = t0 }
  local ok, err = xpcall(self._dispatch, debug.traceback, self, req, ctx)
  if ctx.stream_owner ~= nil then give_stream(self, ctx) end -- its stream ended, or raised
  if ok and ctx.ended then return end -- its end is the proxy's pump's, in C (sandboxes.forward)
  if not ok then
    self:_log { event = "error", route = ctx.route, message = tostring(err) }
    if not ctx.status then fail(req, ctx, 500, "internal", "the server failed; its log says why") end
  end
  if ctx.audited then self:checkpoint(false, ctx.db, ctx.dir) end
  local us = (uv.hrtime() - t0) // 1000
  self.metrics:request(ctx.route, ctx.status or 500, us / 1e6)
  -- the request's line, made in C from its fields (core/health.c: /health's is the same)
  self.log(chealth.line(req.remote, ctx.auth, ctx.key or cjson.null, req.method, ctx.note, ctx.log_project, ctx.route,
    ctx.status or 500, self:_stamp(), us, req.trusted_peer and req.peer or nil))
  req:close()
end

-- A request's task is kept, once its request is done, for a request to come: a task a
-- request made a coroutine and the task's tables, and grew the coroutine's stack again,
-- each time. M.MAX_IDLE wait at most (a burst's others end); a request takes the last one
-- to have waited, or starts another.
M.MAX_IDLE = 64

-- first: {req}, emptied at once. The task's body keeps its arguments for as long as it runs,
-- and a waiting task must hold no request (its headers carry credentials).
local function worker(self, first)
  local req = first[1]
  first[1] = nil
  while req do
    self:_handle(req)
    req = nil
    local idle = self.idle
    if #idle >= M.MAX_IDLE or self.stopping then return end
    idle[#idle + 1] = coroutine.running()
    req = coroutine.yield() -- nil: the server stops
  end
end

local function accept_all(self, srv)
  local idle = self.idle
  while true do
    local req = srv:accept()
    if not req then break end
    local co = idle[#idle]
    if co then
      idle[#idle] = nil
      task.resume(co, req)
    else
      task.spawn(worker, self, { req })
    end
  end
end

--- server:run(): accepts requests (on the unix socket too) until stop() (call it inside a task)
function Server:run()
  -- the decoy hash an unknown name's password is checked against, made now rather than at
  -- the first unknown name (which would take twice as long): when there are names to guess
  if self.signin.ldap or accounts.count(self.db) > 0 then accounts.prepare() end
  local side = self.usrv and task.spawn(accept_all, self, self.usrv)
  accept_all(self, self.srv)
  if side then side:join() end
end

-- whether a proxied request that ends in C is still running
function Server:_proxied()
  for _, tally in pairs(self.tallies) do
    if tally:active() > 0 then return true end
  end
  return false
end

-- ms a stop gives the loop, after the drain, to send the 503s and the streams' ends
M.SHUT_MS = 1000

--- server:stop(): stops accepting, ends the event streams, lets requests in flight finish
--- (for drain_ms at most), answers 503 to the rest (sent within SHUT_MS), then closes;
--- run() returns. Call it inside a task.
function Server:stop()
  if self.stopping then return end
  self.stopping = true
  self.srv:stop_accepting()
  if self.usrv then self.usrv:stop_accepting() end
  -- the proxy's memory off, its limiters lent back: a request still coming goes the Lua
  -- way, counted in flight for the drain below
  self.srv:proxy_memo(nil)
  if self.usrv then self.usrv:proxy_memo(nil) end
  for _, p in pairs(self.projects) do p.hub:close() end
  local deadline = uv.now() + self.limits.drain_ms
  while (self.inflight > 0 or self:_proxied()) and uv.now() < deadline do rt.sleep(10) end
  -- what is left unanswered gets 503 (a body still coming too), the streams' last chunks go
  -- out: the loop sends them, for SHUT_MS at most, before close() cuts what is left
  self.srv:shut()
  if self.usrv then self.usrv:shut() end
  local sent_by = uv.now() + M.SHUT_MS
  while (self.srv:pending() > 0 or (self.usrv and self.usrv:pending() > 0)) and uv.now() < sent_by do rt.sleep(10) end
  -- each audit's tail signed before the server goes (bounded: the signal bounded the store's wait)
  for _, p in pairs(self.projects) do self:checkpoint(true, p.db, p.dir, true) end
  self.srv:close()
  local idle = self.idle
  self.idle = {}
  for i = #idle, 1, -1 do task.resume(idle[i], nil) end -- the waiting tasks end
  if self.usrv then
    self.usrv:close()
    -- the socket file: nothing listens on it any more, unless another server took the path
    local st, id = uv.fs_stat(self.unix), self.unix_id
    if st and id and st.dev == id.dev and st.ino == id.ino then os.remove(self.unix) end
  end
  self.health:close() -- no server calls it now: the limiter lent back, its counts kept for /metrics
end

return M
