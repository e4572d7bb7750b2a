-- orket.auth.jwt: a JSON Web Token checked as RFC 8725 asks: its signature by orket.c.jose
-- (libcjose) with the key its kid names in the provider's JWKS, the algorithm pinned (never
-- "none", never HMAC), then its claims: iss exactly, aud holding ours, exp, nbf and iat
-- within a bounded clock skew, and the nonce when one was sent. Used by orket.auth.oidc for
-- ID tokens and for API bearer tokens.
local cjson = require "cjson.safe"
local crypto = require "orket.c.crypto"
local jose = require "orket.c.jose"

local M = {}

M.MAX_SKEW_S = 300     -- clock skew tolerated at most (settings check it too)
M.DEFAULT_SKEW_S = 60
-- The longest token read, in bytes: a bearer in a request's header (which the server caps
-- too), and an ID token from the token endpoint (whose answer is capped at 256 KiB), where
-- a person in many groups makes a long one. Each is at most what orket.c.jose reads
-- (core/jose.h JOSE_MAX_TOKEN, 256 KiB).
M.MAX_BEARER_BYTES = 16384
M.MAX_ID_TOKEN_BYTES = 256 * 1024

local function refuse(msg) return nil, msg, "EAUTH" end

local function when(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(t)) end

--- looks_like(s) -> whether s has a JWS's compact shape (three base64url parts), as a
--- bearer token must to be taken for a JWT rather than an API key; whatever its length, so
--- that one too long is told so (verify), not taken for a mistyped key
function M.looks_like(s)
  return type(s) == "string" and s:match("^[%w_-]+%.[%w_-]+%.[%w_-]*$") ~= nil
end

-- the protected header's JSON object | nil (not base64url of a JSON object: orket.c.jose's
-- peek says why)
local function header_of(token)
  local part = token:match("^([%w_-]+)%.")
  part = part:gsub("-", "+"):gsub("_", "/")
  local text = crypto.base64_decode(part .. string.rep("=", (4 - #part % 4) % 4))
  local h = text and cjson.decode(text)
  return type(h) == "table" and h or nil
end

--- key_for(keys, header) -> the JWK (a table) that signed a token of header {alg, kid} |
--- nil, msg: by kid; a key without a kid only when the set holds one key of its type. A
--- key marked for encryption, or for another alg, is never used.
function M.key_for(keys, header)
  local kty = header.alg:sub(1, 1) == "E" and "EC" or "RSA"
  local found, n = nil, 0
  for _, k in ipairs(keys) do
    if type(k) == "table" and k.kty == kty and (k.use == nil or k.use == "sig")
        and (k.alg == nil or k.alg == header.alg) then
      if header.kid ~= "" and k.kid == header.kid then return k end
      if header.kid == "" then found, n = k, n + 1 end
    end
  end
  if header.kid == "" and n == 1 then return found end
  if header.kid == "" then return nil, "the token names no key (kid) and the provider's JWKS has no single key to use" end
  return nil, "the token's key '" .. header.kid:sub(1, 64) .. "' is not in the provider's JWKS"
end

local function has_audience(aud, want)
  if aud == want then return true end
  if type(aud) ~= "table" then return false end
  for _, a in ipairs(aud) do
    if a == want then return true end
  end
  return false
end

-- the claims' times, each a number: exp required, nbf and iat when present
local function check_times(c, now, skew)
  if math.type(c.exp) == nil then return refuse("the token has no expiry (exp)") end
  if now > c.exp + skew then return refuse("the token expired at " .. when(c.exp)) end
  if c.nbf ~= nil and (math.type(c.nbf) == nil or now + skew < c.nbf) then
    return refuse("the token is not valid before " .. (math.type(c.nbf) and when(c.nbf) or "a time it does not give"))
  end
  if c.iat ~= nil and (math.type(c.iat) == nil or c.iat > now + skew) then
    return refuse("the token says it was issued in the future")
  end
  return true
end

--- verify(token, keys, want) -> claims | nil, msg, code. keys: the JWKS's keys (array of
--- tables); want = {issuer=, audience=, nonce=, skew_s=, now=, max_bytes= (default
--- MAX_BEARER_BYTES), what= (the token's name in messages, default "the token")}. Codes: EINVAL (not a
--- token), EAUTH (refused: signature, algorithm, key, issuer, audience, time, nonce). A
--- kid missing from the set also returns a fourth value, "unknown_kid": the provider may
--- have rotated its keys, and the caller may fetch the JWKS again once.
function M.verify(token, keys, want)
  if not M.looks_like(token) then return nil, "not a JSON Web Token", "EINVAL" end
  local cap = want.max_bytes or M.MAX_BEARER_BYTES
  if #token > cap then
    return nil, string.format("%s is %d bytes, longer than the %d accepted (a long groups claim makes it so: have "
      .. "the provider list fewer groups in it, a groups filter)", want.what or "the token", #token, cap), "EINVAL"
  end
  local header, herr, hcode = jose.peek(token)
  if not header then return nil, herr, hcode end
  -- RFC 7515 4.1.11: a token with extensions its reader must understand is refused by one
  -- that understands none, as here, lest it be read without them
  local full = header_of(token)
  if not full then return nil, "the token's header is not a JSON object", "EINVAL" end
  if full.crit ~= nil then
    return refuse("the token's header names extensions it must be read with (crit), and this server knows none")
  end
  local key, kerr = M.key_for(keys, header)
  if not key then return nil, kerr, "EAUTH", "unknown_kid" end
  local payload, verr, vcode = jose.verify(assert(cjson.encode(key)), token, header.alg)
  if not payload then return nil, verr, vcode end
  local c = cjson.decode(payload)
  if type(c) ~= "table" then return nil, "the token's claims are not a JSON object", "EINVAL" end
  if c.iss ~= want.issuer then return refuse("the token was issued by another issuer") end
  if not has_audience(c.aud, want.audience) then return refuse("the token is for another audience") end
  -- several audiences: OpenID Connect Core 3.1.3.7 wants the authorized party to be us
  if type(c.aud) == "table" and #c.aud > 1 and c.azp ~= want.audience then
    return refuse("the token is for several audiences and its authorized party is not this server")
  end
  local skew = math.min(want.skew_s or M.DEFAULT_SKEW_S, M.MAX_SKEW_S)
  local ok, terr = check_times(c, want.now or os.time(), skew)
  if not ok then return nil, terr, "EAUTH" end
  if want.nonce ~= nil and not (type(c.nonce) == "string" and crypto.equal(c.nonce, want.nonce)) then
    return refuse("the token's nonce is not the one this sign-in sent")
  end
  if type(c.sub) ~= "string" or c.sub == "" then return refuse("the token names no subject (sub)") end
  return c
end

return M
