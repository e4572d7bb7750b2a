-- orket.serve.apps: each sandbox's app on an origin of its own (docs/serve.md, "Apps on
-- their own origins"). A request whose Host is ID.BASE (serve.app_origin) goes whole to
-- sandbox ID's app (its path, query and cookies), never to the API. A person opens the app
-- from the board: GET /v1/sandboxes/{id}/open hands a short-lived, single-use ticket to
-- the app's origin, which trades it for a cookie of that host only, bound to the person's
-- key (and board session) and to the sandbox; it never carries the board's session. The
-- tickets and app sessions live in the store (orket.store.app_grants), so any `orket
-- serve` on one database redeems and honours them. Uses orket.serve.sandboxes.forward.
local crypto = require "orket.c.crypto"
local cjson = require "cjson.safe"
local cookie = require "orket.serve.cookie"
local keys = require "orket.serve.keys"
local localuse = require "orket.serve.localuse"
local routes = require "orket.serve.routes"
local sandboxes = require "orket.serve.sandboxes"
local session = require "orket.serve.session"
local keys_store = require "orket.store.keys"
local sessions = require "orket.store.sessions"
local grants = require "orket.store.app_grants"
local users = require "orket.store.users"
local accounts = require "orket.serve.accounts"
local projects = require "orket.serve.projects"
local auth = require "orket.serve.auth"

local M = {}

M.COOKIE = "orket_app"
M.TICKET_PATH = "/__orket/ticket"
M.TICKET_TTL_S = 60
M.TTL_S = session.TTL_S -- an app session ends with the board's, and 8 hours after it began at most
M.MAX_TICKETS = 1024
M.TICKETS_PER_KEY = 16 -- waiting tickets of one key or person (429 past it)
M.MAX_SESSIONS = 4096

local SAFE = { GET = true, HEAD = true, OPTIONS = true }
-- what the proxy passes (req:proxy, core/lhttpd.c): another method is refused before it
local PROXIED = { GET = true, HEAD = true, POST = true, PUT = true, PATCH = true, DELETE = true, OPTIONS = true }
local ALLOW = "Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
-- Orket's own cookies: never passed to an app, never set by one
local OWN = { [M.COOKIE] = true, [session.COOKIE] = true, [localuse.COOKIE] = true }
-- what else crosses on the app's own origin, beyond orket.serve.sandboxes' lists: what a
-- deployed app sees of a browser (Origin and Referer for its own CSRF checks) and sends
-- back (its policies, Vary, a challenge, its CORS answers). What its own script and the
-- browser send it for itself: its CSRF token's header (Django's X-CSRFToken, Rails'
-- X-CSRF-Token, Angular's and Laravel's X-XSRF-TOKEN: without them its script's writes are
-- refused), Last-Event-ID (an EventSource resuming), and Authorization (the answer to its
-- own WWW-Authenticate, or its own token), but never one that is Orket's (a key, ork_; the
-- local token, ort_): no browser sends Orket's to this origin, but a person's client
-- might. Never Access-Control-Allow-Credentials: the cookie a request to the app carries
-- is Orket's sign-in (orket_app), not the app's, and with it another origin's script (a
-- page of another app, same-site with this one) could read the app as the person; without
-- it a page of another origin reads only what the app answers with no credentials
local PASS_IN = { origin = true, referer = true, ["x-requested-with"] = true, ["x-csrf-token"] = true,
  ["x-csrftoken"] = true, ["x-xsrf-token"] = true, ["last-event-id"] = true, authorization = true }
-- The issuer a JWT-shaped token names (its claims read, not verified) | nil
local function jwt_issuer(token)
  local mid = token:match("^[%w_-]+%.([%w_-]+)%.[%w_-]*$")
  if not mid or #mid > 16384 then return nil end
  mid = mid:gsub("-", "+"):gsub("_", "/")
  local text = crypto.base64_decode(mid .. string.rep("=", (4 - #mid % 4) % 4))
  local claims = text and cjson.decode(text)
  return type(claims) == "table" and type(claims.iss) == "string" and claims.iss or nil
end

-- An Authorization carrying one of Orket's credentials, in any case and spacing of its
-- scheme: orket.serve.keys' ork_, the local token's ort_, and with OpenID Connect sign-in a
-- token of its provider (Orket takes one as the person: orket.serve.auth). An app's own
-- token, a JWT of another issuer among them, is the app's.
local function orkets(v, oidc)
  -- (each of a repeated header's values, which the server joins with commas)
  for part in v:gmatch("[^,]+") do
    local token = part:match("^%s*[Bb][Ee][Aa][Rr][Ee][Rr]%s+([^%s,]+)")
    if token and (token:find("^or[kt]_") or (oidc ~= nil and jwt_issuer(token) == oidc.cfg.issuer)) then
      return true
    end
  end
  return false
end
local PASS_OUT = { "vary", "content-security-policy", "x-frame-options", "referrer-policy", "allow", "retry-after",
  "www-authenticate", "access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers",
  "access-control-expose-headers", "access-control-max-age" }

local err = routes.err

local function digest(token) return crypto.hash(token, 32) end

local Apps = {}
Apps.__index = Apps

--- new(template) -> apps: template is serve.app_origin (orket.settings checked it):
--- http(s)://{id}.BASE[:{port}|:PORT]
function M.new(template)
  local scheme, base, port = template:match("^(https?)://{id}%.([^:]+)(.*)$")
  assert(scheme, "serve.app_origin: not an origin template")
  return setmetatable({ scheme = scheme, base = base, port = port, dot_base = "." .. base,
    pattern = "^(%d+)%." .. base:gsub("%p", "%%%0") .. "$", hosts = {}, nhosts = 0 }, Apps)
end

-- The sandbox id a Host names, or false
local function id_of_host(self, host)
  host = host:lower()
  -- the API's requests (most) name no app: one plain search says so, where the pattern
  -- would run the step-counted matcher twice (orket.c.pattern)
  if not host:find(self.dot_base, 1, true) then return false end
  local id = host:gsub(":%d+$", ""):match(self.pattern)
  return id and math.tointeger(tonumber(id)) or false
end

--- apps:sandbox_of(req[, headers]) -> the sandbox id the request's Host names | nil (the
--- API's), kept per Host (orket.serve.auth.kept_per_host); headers: req.headers, read already
function Apps:sandbox_of(req, headers)
  local host = (headers or req.headers).host
  if type(host) ~= "string" or #host > 255 then return nil end
  return auth.kept_per_host(self, host, id_of_host) or nil
end

--- apps:origin(id, req) -> the origin of sandbox id's app, as the browser that sent req
--- reaches it ({port}: the port req's Host names, none when it names none)
function Apps:origin(id, req)
  local port = self.port
  if port == ":{port}" then
    local p = (req.headers.host or ""):match(":(%d+)$")
    port = p and (":" .. p) or ""
  end
  return self.scheme .. "://" .. id .. "." .. self.base .. port
end

-- (e.now: the store's clock as the grant was read, orket.store.app_grants)
local function dead(e) return e.expires_s <= (e.now or os.time()) end

-- ---- the board's side: the ticket ---------------------------------------------------------

-- a path the app should open at: its own absolute path, never another origin ("//host")
local function next_path(p)
  if type(p) ~= "string" or #p > 2048 or p:sub(1, 1) ~= "/" or p:sub(2, 2) == "/" or p:sub(2, 2) == "\\"
      or p:find("[%z\1-\32\127]") then
    return nil
  end
  return p
end

-- GET /v1/sandboxes/{id}/open[?path=/x]: a ticket for the person, then 303 to the app's
-- origin, which redeems it. Only the board's own page opens an app (a link another site or
-- the app itself follows, as the browser says, gets 403).
local function open(req, ctx)
  local site = req.headers["sec-fetch-site"]
  if site and site ~= "same-origin" and site ~= "none" then
    return err(403, "forbidden", "an app is opened from the board's own page",
      "open it from the board's Sandboxes list (Open the app), in this browser")
  end
  local apps = ctx.server.apps
  -- a sandbox that does not exist is 404, as on the other sandbox routes
  local row, st, doc = sandboxes.recent_row(ctx)
  if not row then return st, doc end
  if ctx.project and ctx.project ~= "default" then
    -- an app's origin names a sandbox by its id, which only the default project's store
    -- settles (docs/teams.md); another project's app goes through its proxy route
    local at = "/v1/projects/" .. ctx.project .. "/sandboxes/" .. math.tointeger(row.id) .. "/app/"
    return err(409, "conflict", "apps on their own origin are the default project's; open this one at " .. at,
      "open " .. at .. " (the board's Open the app does)")
  end
  if row.status ~= "healthy" and row.status ~= "unhealthy" then
    return err(409, "not_running", string.format("sandbox %d is %s", row.id, row.status))
  end
  local start = "/"
  if ctx.query.path then
    start = next_path(ctx.query.path)
    if not start then return err(400, "bad_query", "path must be an absolute path on the app's origin, e.g. /notes") end
  end
  local who = ctx.who
  local role = who.role
  -- local use reads with no token at all: writing to the app needs what writing does
  if who.local_use and not localuse.allows({ method = "POST", remote = req.remote, headers = req.headers },
      ctx.server.auth.token) then
    role = "viewer"
  end
  local db, key = ctx.db, who.key_id or who.id
  local now = grants.now(db)
  -- a key's share of the tickets waiting (each is used up as it is redeemed): one key
  -- cannot fill the server's and keep everyone else from opening apps
  if grants.of_key(db, "ticket", key, now) >= M.TICKETS_PER_KEY then
    ctx.headers = ctx.headers or {}
    table.insert(ctx.headers, "Retry-After: " .. M.TICKET_TTL_S)
    return err(429, "rate_limited", "too many of your app tickets are waiting; open the app with one of them, or retry in a minute")
  end
  if grants.live(db, "ticket", now) >= M.MAX_TICKETS then
    return err(503, "busy", "too many app tickets waiting; retry in a minute")
  end
  local token = crypto.random_id(32)
  grants.insert(db, digest(token), "ticket", { sandbox = math.tointeger(row.id), key = key,
    local_use = who.local_use,
    board = who.session, board_expires = who.expires, role = role, start = start, expires_s = now + M.TICKET_TTL_S })
  local url = apps:origin(math.tointeger(row.id), req) .. M.TICKET_PATH .. "?t=" .. token
  ctx.headers = ctx.headers or {}
  table.insert(ctx.headers, "Location: " .. url)
  table.insert(ctx.headers, "Referrer-Policy: no-referrer")
  ctx.note = "app ticket for sandbox " .. math.tointeger(row.id)
  return 303, { url = url, expires_in_s = M.TICKET_TTL_S }
end

-- ---- the app's side ----------------------------------------------------------------------

local function text(req, ctx, status, msg, extra)
  ctx.status = status
  local h = { "Content-Type: text/plain; charset=utf-8", "Cache-Control: no-store", "X-Content-Type-Options: nosniff",
    "Referrer-Policy: no-referrer" }
  for _, x in ipairs(extra or {}) do h[#h + 1] = x end
  req:respond(status, h, msg .. "\n")
end

-- The role an identity has in the default project, whose sandboxes apps are | nil, why not
local function role_of(db, who, why)
  if not who then return nil, why end
  local role = projects.role_in(db, who, projects.DEFAULT)
  if not role then return nil, "not_member" end
  return role
end

-- load() -> identity | nil, why, as the rest of the server takes it: also vouched for by
-- auth (orket.serve.auth's vouch: the directory's look, a provider's key's lifetime), read
-- again when the directory's look may have changed their role
local function vouched(a, load)
  local who, why = load()
  if not who or not (a and who.source) then return who, why end
  local fine, looked, _, _, vwhy = a:vouch(who)
  if not fine then return nil, vwhy end
  if looked then return load() end
  return who
end

-- A person's role now | nil, why they may act no more (disabled, not a member, the
-- directory's or the key's lifetime's word)
local function person_role(db, a, name)
  return role_of(db, vouched(a, function()
    local u = users.get(db, name)
    if not u or u.disabled_at then return nil, "disabled" end
    return accounts.identity(u.name, u.role, u.hash)
  end))
end

-- The role a key acts with now: its person's, never above its own (accounts.of_key), or its own
local function key_role(db, a, k)
  return role_of(db, vouched(a, function()
    return accounts.of_key(db, { id = k.key_id or k.id, name = k.name, role = k.role, user = k.user_name })
  end))
end

-- The role a grant's person may act with now | nil, why they may act no more: the board's
-- session signed out, expired or its key revoked; the key revoked; local use ended; the
-- person disabled, out of the project, or no longer vouched for as the server's other
-- requests are (a: the server's orket.serve.auth). Asked at each request, so that a person
-- made a viewer since the ticket reads the app and writes no more.
local function current_role(db, a, e)
  if e.board then
    local row = sessions.lookup(db, e.board) -- a key's session, else a person's
    if row then
      -- (row.now: the store's clock, as the board's own session is judged: orket.serve.session)
      if row.revoked_at or row.expires <= (row.now or os.time()) then return nil, "app_board_ended" end
      return key_role(db, a, row)
    end
    local p = users.session_lookup(db, e.board)
    if not p or p.expires <= (p.now or os.time()) then return nil, "app_board_ended" end
    return person_role(db, a, p.name)
  elseif e.key then
    local k = keys_store.get(db, e.key)
    if not k or k.revoked_at then return nil, "revoked" end
    return key_role(db, a, k)
  elseif e.local_use and keys.any_made(db) ~= false then
    -- a key or a person exists now: local use has ended (or the store cannot say: none is
    -- let in on a guess)
    return nil, "app_local_ended"
  end
  return e.role
end

-- ---- a ticket another site may have sent: confirmed on the app's origin -------------------

-- The origin of a URL or of an Origin header (scheme://host[:port], lower-case, without
-- its scheme's default port) | nil ("null", or no URL)
local function origin_of(url)
  local scheme, host = url:match("^(%a[%w+.-]*)://([^/?#]*)")
  if not scheme then return nil end
  scheme, host = scheme:lower(), host:lower()
  local default = ({ http = ":80", https = ":443" })[scheme]
  if default and host:sub(-#default) == default then host = host:sub(1, -#default - 1) end
  return scheme .. "://" .. host
end

-- Whether something other than the person or the app's own page may have sent the browser
-- to a ticket (docs/serve.md, "Apps on their own origins"): a ticket is a bearer URL any
-- holder of a key can make, so a page of another site (or another app's, same-site with
-- this one) could sign the person's browser in to the app as someone else. The browser's
-- Sec-Fetch-Site: anything but same-origin (the app's own page) and none (typed, a
-- bookmark). Without it (a browser sends it to https and localhost origins only; a client
-- that is no browser, never) an Origin or Referer of another origin, the page's own word.
function Apps:_foreign(req, id)
  local h = req.headers
  local site = h["sec-fetch-site"]
  if site then return site ~= "same-origin" and site ~= "none" end
  local own = origin_of(self:origin(id, req))
  for _, name in ipairs { "origin", "referer" } do
    local v = h[name]
    if type(v) == "string" and v ~= "" and origin_of(v) ~= own then return true end
  end
  return false
end

-- Whether a POST comes from the app's own origin: its Origin, or the browser's Sec-Fetch-Site
function Apps:_same_origin(req, id)
  local h = req.headers
  return (type(h.origin) == "string" and origin_of(h.origin) == origin_of(self:origin(id, req)))
    or h["sec-fetch-site"] == "same-origin"
end

local function html(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;" }))
end

-- Whose session a ticket opens, in a person's words
local function holder(db, e)
  if e.local_use then return "this machine's local use (no sign-in)" end
  local key = tostring(e.key or "")
  if key:sub(1, #accounts.PREFIX) == accounts.PREFIX then return key:sub(#accounts.PREFIX + 1) end
  local k = keys_store.get(db, key)
  if not k then return "key " .. key end
  return k.user_name and (k.user_name .. " (key " .. k.name .. ")") or ("key " .. k.name)
end

-- no script, no style, no frame: a form posting to this origin alone; same-origin, so that
-- the form's POST carries its Origin (no-referrer would make it "null")
local CONFIRM_HEADERS = { "Content-Type: text/html; charset=utf-8", "Cache-Control: no-store",
  "X-Content-Type-Options: nosniff", "Referrer-Policy: same-origin", "X-Frame-Options: DENY",
  "Content-Security-Policy: default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'" }

-- The page that asks the person before a ticket from another site signs them in: whose
-- session and which sandbox, and a button posting the ticket back (taken only from here)
local function confirm(req, ctx, id, e, t)
  local who, role = html(holder(ctx.db, e)), html(e.role)
  ctx.status, ctx.note = 200, "app ticket for sandbox " .. id .. " to confirm: another site sent it"
  req:respond(200, CONFIRM_HEADERS, table.concat {
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">',
    "<title>Open sandbox ", id, "'s app?</title></head><body>\n<h1>Open sandbox ", id, "'s app as ", who, "?</h1>\n",
    "<p>This link signs this browser in to sandbox ", id, "'s app as <b>", who, "</b> (", role, ").</p>\n",
    "<p>Go on only if you just opened the app from Orket's board yourself. A link another page sent you to ",
    "would let whoever made it see what you do in the app: then close this page.</p>\n",
    '<form method="post" action="', M.TICKET_PATH, "?t=", t, '"><button type="submit">Open the app as ', who,
    "</button></form>\n</body></html>\n" })
end

-- GET /__orket/ticket?t=...: the ticket (used up whatever follows) for the app's cookie; from
-- another site, a page that asks first, whose POST (from this origin only) is the same
function Apps:_redeem(req, ctx, id)
  local t = type(req.query) == "table" and req.query.t
  local d = type(t) == "string" and #t == 64 and t:match("^%x+$") and digest(t)
  if req.method == "POST" and not self:_same_origin(req, id) then
    ctx.auth = "app_ticket"
    return text(req, ctx, 403, "This page confirms an app's link on the app's own page only: open the app again from "
      .. "Orket's board.")
  end
  local ask = req.method ~= "POST" and self:_foreign(req, id)
  local e -- read only while the page asks: its POST takes it
  if d and ask then e = grants.get(ctx.db, d, "ticket") elseif d then e = grants.take(ctx.db, d, "ticket") end
  -- and its person may still act (a ticket of local use ends when the first key is made)
  if not e or dead(e) or e.sandbox ~= id or not current_role(ctx.db, ctx.server.auth, e) then
    ctx.auth = "app_ticket"
    return text(req, ctx, 403, "This link to the app has expired or was used already: open the app again from Orket's board.")
  end
  if ask then return confirm(req, ctx, id, e, t) end
  local now = e.now or grants.now(ctx.db)
  if grants.live(ctx.db, "session", now) >= M.MAX_SESSIONS then
    return text(req, ctx, 503, "Too many people have this server's apps open; retry later.")
  end
  local token = crypto.random_id(32)
  local expires_s = now + M.TTL_S
  if e.board_expires then expires_s = math.min(expires_s, e.board_expires) end
  grants.insert(ctx.db, digest(token), "session", { sandbox = id, key = e.key, local_use = e.local_use, board = e.board,
    role = e.role, expires_s = expires_s })
  ctx.key = e.key
  -- host-only (no Domain): the cookie goes to this app's host and nowhere else; Lax, so
  -- that the redirect chain begun on the board's site carries it
  local c = string.format("Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%d%s", M.COOKIE, token,
    math.max(0, expires_s - now), session.secure(req) and "; Secure" or "")
  return text(req, ctx, 303, "", { "Location: " .. e.start, c })
end

-- the person of the request's app cookie, still signed in, for sandbox id, and the role
-- they act with now | nil, why
function Apps:_person(req, db, a, id)
  local token = cookie.get(req, M.COOKIE)
  if type(token) ~= "string" or #token ~= 64 or not token:match("^%x+$") then return nil, "app_missing" end
  local h = digest(token)
  local e = grants.get(db, h, "session")
  if not e or e.sandbox ~= id then return nil, "app_unknown" end
  local role, why
  if dead(e) then why = "app_expired" else role, why = current_role(db, a, e) end
  if not role then
    grants.delete(db, h)
    return nil, why
  end
  -- never above the role the ticket was made with
  return e, projects.lower(role, e.role)
end

-- a cookie pair's name, as orket.serve.cookie reads it | nil for a pair without "=" or a name
local function name_of(pair) return (cookie.pair(pair)) end

-- text without the spaces around it (searches that run once over it: orket.serve.cookie.pair)
local function trim(text)
  local at = text:find("%S")
  return at and text:match("^.*%S", at) or ""
end

-- The app's pairs of a Cookie value, Orket's taken out: pairs are split on ";", as the
-- server joins repeated Cookie lines (RFC 6265 5.4). A front end that joined them with ","
-- instead (as other repeated fields are) leaves one of Orket's after a comma: a pair
-- holding one of Orket's between commas loses that part, and keeps the rest as sent (an
-- app's value holding a comma, "list=a,b", passes whole). A pair without "=" is dropped.
local function app_cookies(c)
  local kept = {}
  for pair in c:gmatch("[^;]+") do
    if pair:find(",", 1, true) then
      local parts, cut = {}, false
      for part in pair:gmatch("[^,]+") do
        if OWN[name_of(part)] then cut = true else parts[#parts + 1] = part end
      end
      if cut then pair = table.concat(parts, ",") end
    elseif OWN[name_of(pair)] then
      pair = ""
    end
    pair = trim(pair)
    if name_of(pair) then kept[#kept + 1] = pair end
  end
  return kept
end

-- The request's cookies but Orket's own, for the app
local function pass_in(req, ctx)
  local out = {}
  local oidc = ctx and ctx.server and ctx.server.oidc
  for k, v in pairs(req.headers or {}) do
    if PASS_IN[k] and not tostring(v):find("[\r\n]") and not (k == "authorization" and orkets(tostring(v), oidc)) then
      out[#out + 1] = k .. ": " .. v
    end
  end
  local c = req.headers.cookie
  if type(c) == "string" then
    local kept = app_cookies(c)
    if #kept > 0 and not c:find("[\r\n]") then out[#out + 1] = "Cookie: " .. table.concat(kept, "; ") end
  end
  -- behind an https proxy the app builds https links, as it would deployed behind one
  if session.secure(req) then out[#out + 1] = "X-Forwarded-Proto: https" end
  return out
end

-- What crosses back on the app's own origin: its cookies (the pump makes each host-only,
-- and passes none of Orket's names) and the headers of both lists
local OWN_NAMES, PASS_BACK = {}, {}
for name in pairs(OWN) do OWN_NAMES[#OWN_NAMES + 1] = name end
for _, name in ipairs(sandboxes.PASS_OUT) do PASS_BACK[#PASS_BACK + 1] = name end
for _, name in ipairs(PASS_OUT) do PASS_BACK[#PASS_BACK + 1] = name end
local OWN_ORIGIN = { headers = pass_in, pass = PASS_BACK, cookies = OWN_NAMES }

-- a raw path and query as they may go on to the app: RFC 3986's characters, and those a
-- browser sends unencoded though RFC 3986 has them encoded (the WHATWG URL standard's
-- percent-encode sets leave "[]|^{}\`" as typed in a query, "[]|" in a path: a script's
-- fetch("/items?page[size]=10") sends them so); never a space, a control byte, a quote,
-- "<", ">" or "#", which a browser always encodes. A path holds no "\" (a browser makes it
-- "/"), so no "\..\" reaches an app that reads "\" as "/" as a dot segment
local PATH_OK = "^/[%w%-%._~!$&'()*+,;=:@/%%%[%]|]*$"
local QUERY_OK = "^[%w%-%._~!$&'()*+,;=:@/?%%%[%]|^{}\\`]*$"

-- the route a request to an app's origin is logged and counted under
M.ROUTE = "(app)"

--- apps:handle(req, ctx, id) -> as a handler: a request to sandbox id's origin
function Apps:handle(req, ctx, id)
  ctx.route = M.ROUTE
  if req.path == M.TICKET_PATH and (req.method == "GET" or req.method == "POST") then return self:_redeem(req, ctx, id) end
  if not PROXIED[req.method] then
    return text(req, ctx, 405, "The app's origin passes GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS only.", { ALLOW })
  end
  local who, role = self:_person(req, ctx.db, ctx.server.auth, id) -- role: who acts with now; without who, why not
  if not who then
    ctx.auth = role
    return text(req, ctx, 401, "Open this app from Orket's board (its Sandboxes list: Open the app): "
      .. "the app's origin takes no key, only the sign-in the board hands over.")
  end
  ctx.key = who.key
  if not SAFE[req.method] and not keys.allows(role, "operator") then
    return text(req, ctx, 403, "Writing to the app needs the operator role.")
  end
  -- The app's cookie is SameSite=Lax, and every app is same-site with every other: a
  -- script on another sandbox's page (the agents' code) could post to this app, its write
  -- signed in as the person who opened it. A write is passed only from the app's own page
  -- (or typed: Sec-Fetch-Site none; or a client that is no browser, which sends no cookie
  -- it was not given); the app's own forms still post to it.
  if not SAFE[req.method] and self:_foreign(req, id) then
    ctx.auth = "app_foreign_page"
    return text(req, ctx, 403, "A page of another origin may not write to this app: only the app's own pages "
      .. "post to it (the browser's Sec-Fetch-Site, or else its Origin, said the request came from elsewhere).")
  end
  if req.too_large then
    -- an upload a person makes in the app's form: what the cap is and what sets it
    local max = ctx.server and ctx.server.limits and ctx.server.limits.max_body_bytes
    return text(req, ctx, 413, "The request body is larger than the server accepts"
      .. (max and string.format(" (at most %d bytes: ORKET_SERVE_LIMITS max_body_bytes on orket serve sets it)", max)
        or "") .. ".")
  end
  if type(req.path) ~= "string" or #req.path > 4096 or not req.path:match(PATH_OK) then
    return text(req, ctx, 400, "The path has characters a URL may not hold.")
  end
  -- the query exactly as the browser sent it (its order, repeats, "+", a name without "=",
  -- an empty pair): an app that checks a signature over it, or reads it in order, works
  -- as deployed. nil only without a "?" (or when the server ran out of memory keeping it,
  -- which the parsed arguments then show)
  local query = req.raw_query
  if query == nil then
    if type(req.query) == "table" and next(req.query) ~= nil then
      return text(req, ctx, 503, "The server could not keep the query; try again.")
    end
    query = ""
  end
  if not query:match(QUERY_OK) then return text(req, ctx, 400, "The query has characters a URL may not hold.") end
  ctx.params = { id = tostring(id) }
  local row, st, doc = sandboxes.recent_row(ctx)
  if not row then return st, doc end
  -- the Host the browser sent (it named this app, so it is digits and the base): the app
  -- builds its absolute links and redirects from it, as it would deployed
  local url = "http://" .. req.headers.host:lower() .. req.path .. (req.raw_query and ("?" .. query) or "")
  -- asked again once a write's body is read, and while a long answer streams: a session
  -- signed out or revoked, a person disabled or made a viewer meanwhile goes no further
  -- (as the API's requests: orket.serve.init, Server:recheck; orket.serve.events, hub:watch)
  local function still(write)
    local w, r = self:_person(req, ctx.db, ctx.server.auth, id)
    return w ~= nil and (not write or keys.allows(r, "operator"))
  end
  return sandboxes.forward(req, ctx, row, url, OWN_ORIGIN, still)
end

--- add(router): GET /v1/sandboxes/{id}/open
function M.add(router)
  router:add("GET", "/v1/sandboxes/{id}/open", { handler = open, role = "viewer", name = "sandbox_open",
    errors = { 409 }, query = { { name = "path", description = "the app's path to open at (default /)" } },
    summary = "Open the sandbox's app on its own origin: 303 to it with a single-use ticket, which the app's "
      .. "origin trades for a cookie of its own (docs/serve.md, \"Apps on their own origins\")",
    responses = { [303] = { schema = { type = "object", required = { "url" }, properties = {
      url = { type = "string" }, expires_in_s = { type = "integer" } } } } } })
end

return M
