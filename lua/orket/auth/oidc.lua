-- orket.auth.oidc: one OpenID Connect provider, named by its issuer URL. Its settings come
-- from discovery (ISSUER/.well-known/openid-configuration) and its keys from its JWKS, each
-- fetched with orket.c.http (libcurl), capped and timed out, and kept for an hour. A
-- browser signs in with the authorization code flow and PKCE (S256): begin() makes the
-- state, nonce and verifier, finish() checks the state, trades the code for tokens and
-- checks the ID token (orket.auth.jwt). bearer() checks an API token from the same
-- provider. Group claims give the role (orket.settings.signin.role_of).
local cjson = require "cjson.safe"
local crypto = require "orket.c.crypto"
local http = require "orket.c.http"
local jose = require "orket.c.jose"
local jwt = require "orket.auth.jwt"
local task = require "orket.task"
local urlencode = require "orket.urlencode"
local secret = require "orket.settings.secret"
local signin = require "orket.settings.signin"

local M = {}

M.MAX_BYTES = 256 * 1024   -- a discovery document, a JWKS or a token answer: larger is refused
M.TIMEOUT_MS = 5000        -- each fetch from the provider, connect to last byte
M.KEEP_S = 3600            -- discovery and keys are fetched again after this
M.REFETCH_S = 60           -- an unknown kid fetches the keys again at most this often
M.FAILED_S = 10            -- a failed fetch of discovery or the keys is answered from memory for this long
M.PENDING_S = 600          -- a sign-in begun must finish within this
M.MAX_PENDING = 1024       -- sign-ins begun and not finished, at most (the oldest dropped)
M.MAX_PENDING_PER_ADDRESS = 32 -- of those, begun from one address (its own oldest dropped)

local Provider = {}
Provider.__index = Provider

--- new(cfg[, now]) -> provider; cfg: sign_in.oidc checked by orket.settings.signin, with
--- roles (sign_in.roles); now: a clock (tests), default os.time
function M.new(cfg, roles, now)
  -- pending: state -> the sign-in begun, each linked to the one begun before (older) and
  -- after (newer), from oldest to newest; by_address: address -> how many it began
  return setmetatable({ cfg = cfg, roles = roles or {}, now = now or os.time, pending = {}, npending = 0,
    oldest = nil, newest = nil, by_address = {} }, Provider)
end

-- a begun sign-in forgotten: finished, expired or dropped for a newer one
function Provider:_forget(state)
  local p = self.pending[state]
  if not p then return end
  self.pending[state], self.npending = nil, self.npending - 1
  if p.older then self.pending[p.older].newer = p.newer else self.oldest = p.newer end
  if p.newer then self.pending[p.newer].older = p.older else self.newest = p.older end
  if p.address then
    local n = self.by_address[p.address] - 1
    self.by_address[p.address] = n > 0 and n or nil
  end
  return p
end

-- room for one more sign-in begun from address: the expired ones go; past the address's
-- own cap, its oldest; past the cap of all, the oldest. A flood ends the flooder's own
-- sign-ins, or at worst the oldest, never every one in flight.
function Provider:_make_room(address, now)
  while self.oldest and self.pending[self.oldest].expires <= now do self:_forget(self.oldest) end
  if address and (self.by_address[address] or 0) >= M.MAX_PENDING_PER_ADDRESS then
    local s = self.oldest
    while s and self.pending[s].address ~= address do s = self.pending[s].newer end
    self:_forget(s)
  end
  while self.npending >= M.MAX_PENDING do self:_forget(self.oldest) end
end

-- fetch(url, o) -> body | nil, msg, code: one exchange with the provider, its answer
-- capped; anything but a 200 is the provider's refusal, quoted briefly
function Provider:fetch(url, o)
  o = o or {}
  local t = self.cfg.timeout_ms or M.TIMEOUT_MS
  local r <close>, err = http.request { url = url, method = o.method or "GET", headers = o.headers, body = o.body,
    connect_timeout_ms = t, total_timeout_ms = t, max_bytes = M.MAX_BYTES }
  if not r then return nil, "the provider cannot be reached: " .. tostring(err), "EUNAVAILABLE" end
  local status, h, hcode = r:headers()
  if not status then
    if hcode == "timeout" then
      return nil, string.format("the provider did not answer within %d ms (%s)", t, url), "EUNAVAILABLE"
    end
    return nil, "the provider cannot be reached (" .. url .. "): " .. tostring(h), "EUNAVAILABLE"
  end
  local parts = {}
  while true do
    local ev, rerr = r:read()
    if ev == false then break end
    if ev == nil then
      if r:received() > M.MAX_BYTES then
        return nil, string.format("the provider's answer is larger than %d bytes", M.MAX_BYTES), "EPROTO"
      end
      return nil, "the provider's answer broke off: " .. tostring(rerr), "EUNAVAILABLE"
    end
    for _, s in ipairs(ev) do parts[#parts + 1] = s end
  end
  local body = table.concat(parts)
  if status ~= 200 then
    local doc = cjson.decode(body)
    local why = type(doc) == "table" and type(doc.error) == "string" and doc.error:sub(1, 100) or ("HTTP " .. status)
    return nil, "the provider refused (" .. why .. ")", "EAUTH"
  end
  return body
end

-- json(url, o) -> table | nil, msg, code: a JSON object from the provider
function Provider:json(url, o)
  local body, err, code = self:fetch(url, o)
  if not body then return nil, err, code end
  local doc = cjson.decode(body)
  if type(doc) ~= "table" or doc[1] ~= nil then -- (an array decodes to a table too)
    return nil, "the provider answered something that is not a JSON object (" .. url .. ")", "EPROTO"
  end
  return doc
end

local function http_url(v) return type(v) == "string" and v:match("^https?://[^/]") ~= nil and #v <= 2048 end

-- shared(self, slot, fn) -> the task under way in self[slot], else a new one running
-- fn(self): one fetch at a time, so that concurrent requests wait for one answer instead of
-- each asking the provider. Its own task, so that a request cancelled while waiting does
-- not end it for the others.
local function shared(self, slot, fn)
  if self[slot] then return self[slot] end
  local t = task.new(function()
    local ok, a, b, c = pcall(fn, self)
    self[slot] = nil
    if not ok then error(a, 0) end
    return a, b, c
  end)
  self[slot] = t -- before it starts: a fetch that ends without waiting clears it
  return t:start()
end

-- _discover() -> the discovery document | nil, msg, code: fetched and checked, kept
-- KEEP_S, a failure FAILED_S
function Provider:_discover()
  local doc, err, code = self:_fetch_discovery()
  if doc then
    self.doc, self.doc_until, self.doc_failed = doc, self.now() + M.KEEP_S, nil
  else
    self.doc_failed = { until_s = self.now() + M.FAILED_S, msg = err, code = code }
  end
  return doc, err, code
end

--- provider:discover() -> the discovery document | nil, msg, code. Its issuer must be the
--- configured one exactly (OpenID Connect Discovery 4.3), its endpoints http(s) URLs. A
--- failure is answered from memory for FAILED_S, and requests arriving while a fetch is
--- under way wait for it: during the provider's outage every sign-in begun or finished was
--- a fetch of its own (each up to TIMEOUT_MS), as many as clients asked.
function Provider:discover()
  local now = self.now()
  if self.doc and now < self.doc_until then return self.doc end
  local f = self.doc_failed
  if f and now < f.until_s and not self.discovering then return nil, f.msg, f.code end
  local ok, doc, err, code = shared(self, "discovering", self._discover):join()
  if not ok then error(doc, 0) end
  return doc, err, code
end

-- _fetch_discovery() -> the discovery document | nil, msg, code
function Provider:_fetch_discovery()
  -- the issuer's path, its trailing slash removed, then the well-known path (Discovery 4.1)
  local doc, err, code = self:json(self.cfg.issuer:gsub("/$", "") .. "/.well-known/openid-configuration")
  if not doc then return nil, err, code end
  if doc.issuer ~= self.cfg.issuer then
    return nil, "the provider's discovery document names another issuer than " .. self.cfg.issuer, "EPROTO"
  end
  for _, k in ipairs { "authorization_endpoint", "token_endpoint", "jwks_uri" } do
    if not http_url(doc[k]) then return nil, "the provider's discovery document has no usable " .. k, "EPROTO" end
  end
  local methods = doc.code_challenge_methods_supported
  if type(methods) == "table" then
    local s256 = false
    for _, m in ipairs(methods) do s256 = s256 or m == "S256" end
    if not s256 then return nil, "the provider does not support PKCE with S256", "EPROTO" end
  end
  return doc
end

-- _fetch_keys() -> keys | nil, msg, code: discovery (when not kept), then the JWKS
function Provider:_fetch_keys()
  local doc, derr, dcode = self:discover()
  if not doc then return nil, derr, dcode end
  local set, err, code = self:json(doc.jwks_uri)
  if not set then return nil, err, code end
  if type(set.keys) ~= "table" then return nil, "the provider's JWKS has no keys", "EPROTO" end
  return set.keys
end

-- _keys_fetched() -> keys | nil, msg, code: fetched, kept KEEP_S, a failure FAILED_S
function Provider:_keys_fetched()
  local keys, err, code = self:_fetch_keys()
  local now = self.now()
  if keys then
    self.jwks, self.jwks_until, self.failed = keys, now + M.KEEP_S, nil
  else
    self.failed = { until_s = now + M.FAILED_S, msg = err, code = code }
  end
  return keys, err, code
end

-- _fetching() -> the task fetching the keys: the one under way, else a new one (shared)
function Provider:_fetching() return shared(self, "fetching", self._keys_fetched) end

--- provider:keys(again) -> the JWKS's keys | nil, msg, code; again: a token named a kid
--- not in the kept set (the provider may have rotated its keys), so fetch anew; at most once
--- a REFETCH_S, or made-up kids would make every request a fetch. A failed fetch is kept for
--- FAILED_S and answered from memory, or during an outage every token would be a fetch.
function Provider:keys(again)
  local now = self.now()
  local refetch = again and (self.refetched_at == nil or now >= self.refetched_at + M.REFETCH_S)
  if self.jwks and now < self.jwks_until and not refetch then return self.jwks end
  if not self.fetching then
    local f = self.failed
    if f and now < f.until_s then return nil, f.msg, f.code end
    if refetch then self.refetched_at = now end
  end
  local ok, keys, err, code = self:_fetching():join()
  if not ok then error(keys, 0) end
  return keys, err, code
end

-- check(token, audience, nonce[, max_bytes, what]) -> claims | nil, msg, code: against the
-- kept keys, then once more against keys fetched anew when the token's kid is not among
-- them; max_bytes and what as orket.auth.jwt's verify takes them
function Provider:check(token, audience, nonce, max_bytes, what)
  local want = { issuer = self.cfg.issuer, audience = audience, nonce = nonce, skew_s = self.cfg.clock_skew_s,
    now = self.now(), max_bytes = max_bytes, what = what }
  local keys, kerr, kcode = self:keys(false)
  if not keys then return nil, kerr, kcode end
  local claims, err, code, why = jwt.verify(token, keys, want)
  if why == "unknown_kid" then
    keys, kerr, kcode = self:keys(true)
    if not keys then return nil, kerr, kcode end
    claims, err, code = jwt.verify(token, keys, want)
  end
  return claims, err, code
end

--- provider:pending_until(state) -> when the sign-in begun with state expires | nil (none
--- such in flight: finished, expired or never begun)
function Provider:pending_until(state)
  local p = type(state) == "string" and self.pending[state] or nil
  if p and p.expires > self.now() then return p.expires end
end

--- provider:begin([address]) -> authorization URL, browser secret, state: a sign-in started
--- (from the client address, when given). The secret goes into the browser's cookie;
--- finish() wants it back with the state, so that only the browser that began a sign-in
--- can finish it (no sign-in CSRF).
function Provider:begin(address)
  local doc, err, code = self:discover()
  if not doc then return nil, err, code end
  local state, nonce, verifier, browser = crypto.random_id(32), crypto.random_id(32), crypto.random_id(32),
    crypto.random_id(32)
  local now = self.now()
  self:_make_room(address, now)
  local newest = self.newest
  self.pending[state] = { nonce = nonce, verifier = verifier, browser = crypto.hash(browser, 32), expires = now + M.PENDING_S,
    address = address, older = newest }
  if newest then self.pending[newest].newer = state else self.oldest = state end
  self.newest, self.npending = state, self.npending + 1
  if address then self.by_address[address] = (self.by_address[address] or 0) + 1 end
  local cfg = self.cfg
  local q = urlencode.form { response_type = "code", client_id = cfg.client_id, redirect_uri = cfg.redirect_uri,
    scope = table.concat(cfg.scopes or { "openid", "profile", "email" }, " "), state = state, nonce = nonce,
    code_challenge = jose.pkce_challenge(verifier), code_challenge_method = "S256" }
  local ep = doc.authorization_endpoint
  return ep .. (ep:find("?", 1, true) and "&" or "?") .. q, browser, state
end

--- provider:finish(query, browser) -> claims | nil, msg, code: the callback's query {code,
--- state} (or {error}) and the browser's secret. The state is used once, whatever follows.
function Provider:finish(query, browser)
  local state = query.state
  local p = type(state) == "string" and self:_forget(state) or nil
  if not p then return nil, "the sign-in's state is unknown or was used already; sign in again", "EAUTH" end
  if p.expires <= self.now() then return nil, "the sign-in took too long; sign in again", "EAUTH" end
  if type(browser) ~= "string" or not crypto.equal(crypto.hash(browser, 32), p.browser) then
    return nil, "this sign-in's browser cookie is missing or belongs to another sign-in (was it begun in another "
      .. "browser?)", "EAUTH"
  end
  if query.error then return nil, "the provider refused the sign-in (" .. tostring(query.error):sub(1, 100) .. ")", "EAUTH" end
  if type(query.code) ~= "string" or query.code == "" or #query.code > 2048 then
    return nil, "the provider sent no authorization code", "EAUTH"
  end
  local doc, derr, dcode = self:discover()
  if not doc then return nil, derr, dcode end
  local cfg = self.cfg
  local form = { grant_type = "authorization_code", code = query.code, redirect_uri = cfg.redirect_uri,
    client_id = cfg.client_id, code_verifier = p.verifier }
  -- the environment variable client_secret_env, else secret "NAME" (orket.settings.secret)
  local client_secret, serr = secret.value(cfg.client_secret, cfg.client_secret_env)
  if serr then
    -- the server's fault, not the person's: ESECRET, said whole only in the server's log
    -- (orket.serve.signin), as the store's words name its files
    return nil, secret.unopened("sign_in.oidc.client_secret", secret.name_of(cfg.client_secret), serr), "ESECRET"
  end
  if client_secret and client_secret ~= "" then form.client_secret = client_secret end
  local tokens, terr, tcode = self:json(doc.token_endpoint, { method = "POST", body = urlencode.form(form),
    headers = { "Content-Type: application/x-www-form-urlencoded", "Accept: application/json" } })
  if not tokens then return nil, terr, tcode end
  if type(tokens.id_token) ~= "string" then return nil, "the provider's answer has no ID token", "EPROTO" end
  return self:check(tokens.id_token, cfg.client_id, p.nonce, jwt.MAX_ID_TOKEN_BYTES, "the ID token")
end

--- provider:bearer(token) -> claims | nil, msg, code: an API token of this provider, for
--- api_audience (default: the client id); no nonce
function Provider:bearer(token)
  return self:check(token, self.cfg.api_audience or self.cfg.client_id, nil)
end

-- whether a groups claim is a list (a JSON array, empty included, or one group as a string)
local function listed(groups)
  if type(groups) == "string" then return true end
  if type(groups) ~= "table" then return false end
  local n = 0
  for _ in pairs(groups) do n = n + 1 end
  return n == #groups
end

--- provider:person(claims) -> {name, role, groups} | nil, msg, "EAUTH", unroled: who the
--- claims name (name_claim, default preferred_username, else sub) and the role their
--- groups give. None: unroled = {name, listed}, listed whether the claims list their groups
--- (a leaver's, taken out of every group that gives a role) rather than leave the claim out
--- (a token that does not carry groups, which says nothing of the person)
function Provider:person(claims)
  local name = claims[self.cfg.name_claim or "preferred_username"]
  if type(name) ~= "string" then name = claims.sub end
  name = type(name) == "string" and name:lower() or nil
  local raw = claims[self.cfg.groups_claim or "groups"]
  local groups = raw
  if type(groups) == "string" then groups = { groups } end
  if type(groups) ~= "table" then groups = {} end
  local role = signin.role_of(groups, self.roles, self.cfg.default_role)
  -- someone's groups gave a role: the map is known to match (orket.serve.signin's no_role
  -- disables a leaver only then, not everyone after a typo in sign_in.roles)
  if role then self.matched = true end
  if not role then
    return nil, "none of this person's groups has a role on this server", "EAUTH", { name = name, listed = listed(raw) }
  end
  return { name = name, role = role, groups = groups }
end

return M
