-- orket.serve.signin: signing people in through the identity provider of orket.lua's
-- sign_in section (orket.settings.signin, docs/teams.md). GET /v1/sign-in/oidc sends the
-- browser to the provider (authorization code with PKCE, orket.auth.oidc) with a cookie that
-- binds the sign-in to that browser; GET /v1/sign-in/oidc/callback checks state, cookie and
-- ID token, keeps the person (orket.serve.identity) and starts their board session
-- (orket.serve.session). API bearer tokens of the same provider are checked by bearer().
local config = require "orket.config"
local cookie = require "orket.serve.cookie"
local directory = require "orket.serve.directory"
local httpd = require "orket.c.httpd"
local oidc = require "orket.auth.oidc"
local openapi = require "orket.serve.openapi"
local identity = require "orket.serve.identity"
local routes = require "orket.serve.routes"
local session = require "orket.serve.session"
local settings = require "orket.settings"
local signin_settings = require "orket.settings.signin"
local uv = require "luv"

local err = routes.err

local M = {}

M.COOKIE = "orket_oidc" -- each sign-in's cookie is this, "_" and its state
M.PATH = "/v1/sign-in/oidc"
M.MAX_COOKIES = 4 -- sign-ins in flight in one browser (tabs): past it, its oldest cookie goes

--- load(dir) -> the sign_in section of dir's orket.lua | nil, msg (its path and field)
function M.load(dir)
  local data = config.read(dir)
  local s, serr = settings.resolve { sign_in = data and data.sign_in or nil }
  if not s then return nil, config.placed(dir, serr) end
  return s.sign_in
end

-- whether url's host is this machine (or none: ldap:/// is libldap's default, the local one)
local function local_host(url)
  local host = url:match("^%a+://%[([^%]]*)%]") or url:match("^%a+://([^/:?]*)") or ""
  return host == "" or host:lower() == "localhost" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil or host == "::1"
end

--- cleartext(signin) -> array of warnings: a provider or directory of sign_in reached in
--- clear on another host, where anyone on the path reads (ldap://: every password) or
--- changes (http://: the provider's keys, and so anyone's sign-in) what passes
function M.cleartext(s)
  local out = {}
  if s.oidc and s.oidc.issuer:match("^http://") and not local_host(s.oidc.issuer) then
    out[#out + 1] = "orket.lua: sign_in.oidc.issuer: " .. s.oidc.issuer .. " is plain http:// to another host: its "
      .. "keys and the token exchange pass in clear, and whoever is on the path can sign anyone in; use https://"
  end
  if s.ldap and s.ldap.url:match("^ldap://") and not local_host(s.ldap.url) then
    out[#out + 1] = "orket.lua: sign_in.ldap.url: " .. s.ldap.url .. " is plain ldap:// to another host: every "
      .. "password passes in clear; use ldaps://, or ldapi:// on this machine"
  end
  return out
end

--- attach(server, dir) -> true | nil, msg: the server's sign-in section and provider
function M.attach(server, dir)
  local s, serr = M.load(dir)
  if not s then return nil, serr end
  -- a bind_dn whose password's variable is unset or blank: the service could not bind
  local nopw = signin_settings.service_password(s.ldap)
  if nopw then return nil, config.placed(dir, nopw) end
  for _, line in ipairs(M.cleartext(s)) do server:_log { event = "warning", message = line } end
  server.signin = s
  server.oidc = s.oidc and oidc.new(s.oidc, s.roles) or nil
  server.auth.oidc = server.oidc
  server.auth.project_roles = s.project_roles
  -- the directory's people looked at again while they use their keys and sessions
  server.auth.directory = s.ldap and directory.new(s, function(fields) server:_log(fields) end) or nil
  return true
end

-- the provider's failure as an answer: its being down or unusable is not the person's
-- fault (502), a refusal is (401). A client secret the server cannot read (ESECRET: its key
-- file missing or wrong) is the server's own fault: 503 with no detail, as the store's
-- words name its files; the cause and its remedy go to the server's log only.
local function provider_failed(ctx, msg, code)
  ctx.auth = "oidc: " .. tostring(msg)
  if code == "ESECRET" then
    return err(503, "unavailable", "the server cannot finish sign-ins through the provider just now",
      "try again later; the server's operator finds the cause in its log")
  end
  if code == "EUNAVAILABLE" or code == "EPROTO" then
    return err(502, "provider_unavailable", "the identity provider cannot be used just now: " .. tostring(msg))
  end
  return err(401, "unauthorized", "sign-in refused: " .. tostring(msg), "sign in again from the board's link to the "
    .. "provider (" .. M.PATH .. "), in this browser, finishing within ten minutes; a refusal about the person (their "
    .. "name, their groups, their account disabled) is a server admin's or the provider's to set right: the server's log "
    .. "has it (docs/teams.md#openid-connect)")
end

-- the cookie of the sign-in begun with state: one each, so that sign-ins begun in two tabs
-- of a browser each finish, and a callback's answer ends its own sign-in's cookie alone
local function cookie_name(state) return M.COOKIE .. "_" .. state end

-- a state this server could have made (hex), fit to name a cookie
local function state_of(query)
  local st = query and query.state
  return type(st) == "string" and #st <= 128 and st:match("^%x+$") and st or nil
end

local function browser_cookie(req, state, value, max_age)
  return string.format("Set-Cookie: %s=%s; Path=%s; HttpOnly; SameSite=Lax; Max-Age=%d%s", cookie_name(state), value,
    M.PATH, max_age, session.secure(req) and "; Secure" or "")
end

-- the Set-Cookie lines that end the browser's sign-in cookies no sign-in in flight here
-- holds any more, and its oldest past MAX_COOKIES - 1 (room for the one begun now): anyone's
-- page can send a browser to begin sign-ins, which must not grow its cookies without end
local function stale_cookies(req, p)
  local live, out = {}, {}
  for name in tostring(req.headers.cookie or ""):gmatch("([^=;%s]+)=") do
    local state = name:match("^" .. M.COOKIE .. "_(%x+)$")
    state = state and #state <= 128 and state or nil
    local until_s = state and p:pending_until(state)
    if until_s then
      live[#live + 1] = { state = state, until_s = until_s }
    elseif state then
      out[#out + 1] = browser_cookie(req, state, "", 0)
    end
  end
  table.sort(live, function(a, b) return a.until_s < b.until_s end)
  for i = 1, #live - (M.MAX_COOKIES - 1) do out[#out + 1] = browser_cookie(req, live[i].state, "", 0) end
  return out
end

-- GET /v1/sign-in/oidc: to the provider. The cookie is SameSite=Lax, not Strict: the
-- provider's redirect back is a navigation from its site, which must carry it.
local function begin(req, ctx)
  local p = ctx.server.oidc
  if not p then
    return err(404, "not_found", "sign-in through a provider is not set up: add sign_in.oidc to orket.lua (docs/teams.md)")
  end
  -- each address's begun sign-ins are capped apart, but not a proxy's in front of the
  -- server (loopback or the unix socket: docs/teams.md): that one is everyone's. Behind a
  -- proxy of serve.trusted_proxies the address is the client's it forwards for (core/httpd.c)
  local remote = req.remote
  local own = not (remote:find("^unix") or httpd.is_loopback(remote)) and remote or nil
  local url, browser, state = p:begin(own) -- (failed: nil, msg, code)
  if not url then return provider_failed(ctx, browser, state) end
  ctx.headers = ctx.headers or {}
  table.insert(ctx.headers, "Location: " .. url)
  for _, line in ipairs(stale_cookies(req, p)) do table.insert(ctx.headers, line) end
  table.insert(ctx.headers, browser_cookie(req, state, browser, oidc.PENDING_S))
  table.insert(ctx.headers, "Referrer-Policy: no-referrer")
  return 303, { location = url }
end

-- GET /v1/sign-in/oidc/callback?code=&state=: back from the provider
local function callback(req, ctx)
  local p = ctx.server.oidc
  if not p then return err(404, "not_found", "sign-in through a provider is not set up") end
  ctx.headers = ctx.headers or {}
  local fails, now = ctx.server.auth_fails, uv.now()
  -- an address that failed too often is held off as for any sign-in (the state stays
  -- unused, and its cookie kept: the remedy is to retry)
  local wait = fails:empty(req.remote, now)
  if wait then
    table.insert(ctx.headers, "Retry-After: " .. wait)
    return err(429, "rate_limited", "too many failed authentications from this address; retry after " .. wait .. " s")
  end
  local state = state_of(ctx.query)
  -- this sign-in's cookie, used once whatever follows (another sign-in's is left alone)
  if state then table.insert(ctx.headers, browser_cookie(req, state, "", 0)) end
  local claims, msg, code = p:finish(ctx.query, state and cookie.get(req, cookie_name(state)))
  if not claims then
    if code == "EAUTH" then fails:take(req.remote, now) end
    return provider_failed(ctx, msg, code)
  end
  local person, perr, _, unroled = p:person(claims)
  local who, ferr, note
  if person then
    who, ferr = identity.federated(ctx.db, person, "oidc", p.cfg.issuer .. " " .. claims.sub, ctx.server.signin.project_roles)
  else
    perr, note = M.no_role(ctx.db, p, claims, perr, unroled)
  end
  if not who then
    fails:take(req.remote, now)
    local status, body = provider_failed(ctx, perr or ferr, "EAUTH")
    if note then ctx.auth = ctx.auth .. "; " .. note end
    return status, body
  end
  ctx.key = who.id
  -- disabled after the look above (an admin's disable committed meanwhile): no session
  if not session.start_person(req, ctx, who) then
    fails:take(req.remote, now)
    return provider_failed(ctx, "this person was disabled", "EAUTH")
  end
  table.insert(ctx.headers, "Location: /")
  table.insert(ctx.headers, "Referrer-Policy: no-referrer")
  return 303, { signed_in = true, user = { name = who.name }, role = who.role }
end

--- no_role(db, provider, claims, msg, unroled) -> message, note (for the log) | nil: the
--- provider's valid word that the person its claims name has no role here (msg, unroled:
--- orket.auth.oidc's person). Their groups listed and none mapped, a person kept here as that
--- subject is disabled, as the directory's look disables its leavers (docs/teams.md,
--- Offboarding): their sessions end and their keys stop, not only this sign-in or token;
--- never the last enabled server admin (note says so). A claim left out tells nothing.
function M.no_role(db, provider, claims, msg, unroled)
  if not (unroled and unroled.listed) then return msg end
  -- a map that has matched nobody since the server started (a group renamed or misspelt in
  -- sign_in.roles, the provider sending ids for names) is taken for a mistake: refused, not
  -- disabled, or one typo would disable everyone who signs in
  if not provider.matched then
    return msg, "not disabled: no one's groups have matched sign_in.roles since the server started"
  end
  local r, err = identity.unvouched(db, "oidc", provider.cfg.issuer .. " " .. claims.sub, unroled.name)
  if err then return msg, "store: " .. tostring(err) end
  if not r then return msg end
  if r.kept then return msg, r.kept end
  return msg .. "; " .. r.name .. " was disabled here", r.changed and ("oidc: disabled " .. r.name .. ", no-role") or nil
end

-- What a valid token's person refused about themselves is told (their name is a local
-- account's, a directory person's or another subject's, or not usable here): another token
-- of theirs is refused alike
M.PERSON_REMEDY = "a refusal about the person (their name or subject) is a server admin's or the provider's to set "
  .. "right, not the token's: another token of theirs is refused alike; the server's log has it "
  .. "(docs/teams.md#api-access-with-the-providers-tokens)"

--- bearer(db, provider, token, project_roles) -> identity | nil, status, code, message, why
--- [, remedy]:
--- an API token of the provider, for its person as a sign-in would be (kept here at the
--- first, bound to the token's subject, its memberships following its groups, refused when
--- disabled)
function M.bearer(db, provider, token, project_roles)
  local claims, msg, code = provider:bearer(token)
  if not claims then
    if code == "EUNAVAILABLE" or code == "EPROTO" then
      return nil, 502, "provider_unavailable", "the identity provider cannot be used just now to check the token",
        "oidc: " .. tostring(msg)
    end
    return nil, 401, "unauthorized", "the token is not valid: " .. tostring(msg), "jwt: " .. tostring(msg),
      "ask the provider for a new token (its tokens last minutes) and send it as Authorization: Bearer; or sign in "
        .. "from the board's link to the provider (docs/teams.md#openid-connect)"
  end
  local person, perr, _, unroled = provider:person(claims)
  if not person or not person.name then
    local note
    if not person then perr, note = M.no_role(db, provider, claims, perr, unroled) end
    -- the fix is the provider's (or orket.lua's), not a key or another page: said so
    local remedy = perr and "the provider must put the person in a group sign_in.roles maps to a role, or "
        .. "sign_in.oidc.default_role give one (docs/teams.md)"
      or "the provider's token must name the person: the claim sign_in.oidc.name_claim names (default "
        .. "preferred_username) or sub (docs/teams.md)"
    if perr and perr:find("was disabled here", 1, true) then
      remedy = remedy .. "; then a server admin enables them again (orket users enable NAME, or POST "
        .. "/v1/users/NAME/enable: docs/teams.md#offboarding)"
    end
    return nil, 403, "forbidden", tostring(perr or "the token names no person"),
      "jwt: no role" .. (note and "; " .. note or ""), remedy
  end
  local who, ferr, fcode = identity.federated(db, person, "oidc", provider.cfg.issuer .. " " .. claims.sub, project_roles)
  if not who then
    if fcode == "EAUTH" then
      -- a refusal about the person, whom the valid token names: no key or token helps, who
      -- sets it right does (a disabled person's: who enables them, as for a key of theirs)
      return nil, 401, "unauthorized", tostring(ferr), "jwt: " .. tostring(ferr),
        tostring(ferr):find("disabled", 1, true) and session.DISABLED_REMEDY or M.PERSON_REMEDY
    end
    return nil, 503, "unavailable", "the store cannot be reached just now; try again", "store: " .. tostring(ferr)
  end
  return who
end

-- GET /v1/sign-in: which ways of signing in the server offers besides keys and local
-- accounts (the sign-in page shows the provider's link); no secret in it
local function ways(_, ctx)
  local s = ctx.server.signin or {}
  return 200, { oidc = s.oidc ~= nil, ldap = s.ldap ~= nil }
end

--- add(router): the sign-in routes
function M.add(router)
  router:add("GET", "/v1/sign-in", { handler = ways, server = true, name = "sign_in_ways",
    summary = "The ways of signing in this server offers: an OpenID Connect provider, an LDAP directory",
    responses = { [200] = { schema = { type = "object", required = { "oidc", "ldap" },
      properties = { oidc = { type = "boolean" }, ldap = { type = "boolean" } } } } } })
  router:add("GET", M.PATH, { handler = begin, server = true, name = "sign_in_oidc",
    any_query = true, -- a sign-in a provider starts (an app tile) adds iss, login_hint, target_link_uri
    summary = "Sign in through the OpenID Connect provider: redirects there (authorization code with PKCE)",
    responses = { [303] = { schema = { type = "object", properties = { location = { type = "string" } } },
      description = "to the provider's authorization endpoint" },
      [404] = { schema = openapi.ERROR, description = "no provider is set up (sign_in.oidc)" },
      [502] = { schema = openapi.ERROR, description = "the provider is down, slow or answers garbage" } } })
  router:add("GET", M.PATH .. "/callback", { handler = callback, server = true, name = "sign_in_oidc_callback",
    any_query = true, -- the provider's: it adds its own (session_state, iss) to code and state
    summary = "Where the provider sends the browser back: checks state and ID token, sets the session cookie",
    responses = { [303] = { schema = { type = "object" }, description = "signed in (Set-Cookie: orket_session=...)" },
      [401] = { schema = openapi.ERROR, description = "the state, the browser, the code or the ID token is refused" },
      [502] = { schema = openapi.ERROR, description = "the provider is down, slow or answers garbage" },
      [503] = { schema = openapi.ERROR, description = "the server cannot read its client secret (the log says why)" } } })
end

return M
