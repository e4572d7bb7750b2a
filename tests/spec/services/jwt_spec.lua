-- orket.c.jose (libcjose) and orket.auth.jwt: tokens signed here with keys made here, checked
-- against a JWKS as a provider's would be; each refusal named, none of them passing.
local cjson = require "cjson"
local jose = require "orket.c.jose"
local jwt = require "orket.auth.jwt"

local ISS, AUD, NOW = "https://id.example", "orket", 1800000000

local rsa = jose.keygen("RSA")
local ec = jose.keygen("EC")
local function pub(k, kid)
  local t = cjson.decode(jose.public(k))
  t.kid, t.use = kid, "sig"
  return t
end
local KEYS = { pub(rsa, "r1"), pub(ec, "e1") }

local function claims(over)
  local c = { iss = ISS, aud = AUD, sub = "u-1", exp = NOW + 300, iat = NOW - 5, nonce = "n-1" }
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end
local function token(over, key, alg, kid)
  return assert(jose.sign(key or rsa, alg or "RS256", kid or "r1", cjson.encode(claims(over))))
end
local WANT = { issuer = ISS, audience = AUD, nonce = "n-1", now = NOW, skew_s = 60 }

describe("orket.c.jose", function()
  after_each(function() require("tests.helpers").cleanup() end)

  it("loads libcjose (and libldap) only on first use, never at start", function()
    local H = require "tests.helpers"
    local script = H.tmpdir() .. "/lazy.lua"
    H.write(script, [[
local function mapped(pat)
  local f = assert(io.open("/proc/self/maps"))
  local m = f:read("a")
  f:close()
  return m:find(pat) ~= nil
end
require "orket.c.jose"
require "orket.c.ldap"
local before = mapped("/libcjose%.so") or mapped("/libldap")
require("orket.c.jose").peek("a.b.c")
print(tostring(before) .. " " .. tostring(mapped("/libcjose%.so")))
]])
    local r = H.orket("lua " .. H.quote(script))
    assert.equal(0, r.status, r.stderr)
    assert.equal("false true\n", r.stdout)
  end)

  it("computes RFC 7636's S256 challenge (its appendix B vector)", function()
    assert.equal("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      jose.pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
  end)

  it("verifies a signature with the public key and refuses another key, alg or a changed byte", function()
    local t = token()
    assert.same({ alg = "RS256", kid = "r1" }, jose.peek(t))
    local payload = jose.verify(jose.public(rsa), t, "RS256")
    assert.equal("u-1", cjson.decode(payload).sub)
    local other = jose.keygen("RSA")
    local v, msg, code = jose.verify(jose.public(other), t, "RS256")
    assert.is_nil(v)
    assert.equal("EAUTH", code)
    assert.matches("signature", msg)
    assert.equal("EAUTH", select(3, jose.verify(jose.public(rsa), t, "PS256")))
    assert.equal("EAUTH", select(3, jose.verify(jose.public(ec), t, "RS256")))
    local tampered = t:gsub("%.([^.]+)%.", function(p) return "." .. p:sub(1, -2) .. (p:sub(-1) == "A" and "B" or "A") .. "." end)
    assert.is_nil(jose.verify(jose.public(rsa), tampered, "RS256"))
  end)

  it("refuses alg none and HMAC before any key is looked at", function()
    local body = token():match("^[^.]+%.([^.]+)%.")
    local none = "eyJhbGciOiJub25lIn0." .. body .. "."
    local h, msg, code = jose.peek(none)
    assert.is_nil(h)
    assert.equal("EAUTH", code)
    assert.matches("'none' is not accepted", msg)
    assert.equal("EAUTH", select(3, jose.peek("eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0." .. body .. ".c2ln")))
    assert.equal("EINVAL", select(3, jose.peek("not.a token")))
    assert.has_error(function() jose.peek() end, "bad argument #1 to 'peek' (string expected, got no value)")
  end)
end)

describe("orket.auth.jwt", function()
  it("accepts a good token, RSA and EC, and returns its claims", function()
    assert.equal("u-1", assert(jwt.verify(token(), KEYS, WANT)).sub)
    assert.equal("u-1", assert(jwt.verify(token(nil, ec, "ES256", "e1"), KEYS, WANT)).sub)
    assert.equal("u-1", assert(jwt.verify(token({ aud = { AUD } }), KEYS, WANT)).sub)
  end)

  local function refused(t, want, pattern)
    local c, msg, code = jwt.verify(t, KEYS, want or WANT)
    assert.is_nil(c)
    assert.equal("EAUTH", code)
    assert.matches(pattern, msg)
    return msg
  end

  it("refuses an expired token, beyond the skew only", function()
    refused(token({ exp = NOW - 61 }), nil, "expired at 2027%-01%-15T07:58:59Z")
    assert.truthy(jwt.verify(token({ exp = NOW - 59 }), KEYS, WANT))
    refused(token({ exp = "soon" }), nil, "no expiry")
    refused(token({ nbf = NOW + 120 }), nil, "not valid before")
    refused(token({ iat = NOW + 120 }), nil, "issued in the future")
    -- a skew asked beyond the bound is held to it
    local w = { issuer = ISS, audience = AUD, nonce = "n-1", now = NOW, skew_s = 100000 }
    refused(token({ exp = NOW - jwt.MAX_SKEW_S - 1 }), w, "expired")
  end)

  it("refuses another audience, another issuer, a wrong nonce, no subject", function()
    refused(token({ aud = "someone-else" }), nil, "another audience")
    refused(token({ aud = { AUD, "other" } }), nil, "authorized party")
    assert.truthy(jwt.verify(token({ aud = { AUD, "other" }, azp = AUD }), KEYS, WANT))
    refused(token({ iss = ISS .. "/" }), nil, "another issuer")
    refused(token({ nonce = "n-2" }), nil, "nonce")
    refused(token({ nonce = cjson.null }), nil, "nonce")
    refused(token({ sub = "" }), nil, "subject")
  end)

  it("refuses a key not in the JWKS, and says so for a second fetch", function()
    local stranger = jose.keygen("RSA")
    local c, msg, code, why = jwt.verify(token(nil, stranger, "RS256", "r9"), KEYS, WANT)
    assert.is_nil(c)
    assert.equal("EAUTH", code)
    assert.equal("unknown_kid", why)
    assert.matches("'r9' is not in the provider's JWKS", msg)
    -- the right kid on a stranger's signature
    refused(token(nil, stranger, "RS256", "r1"), nil, "signature")
    -- a key the set marks for encryption is never used to verify
    local enc = pub(rsa, "r1")
    enc.use = "enc"
    assert.is_nil(jwt.verify(token(), { enc }, WANT))
  end)

  it("refuses alg none and what is not a token", function()
    local body = token():match("^[^.]+%.([^.]+)%.")
    local c, msg, code = jwt.verify("eyJhbGciOiJub25lIn0." .. body .. ".", KEYS, WANT)
    assert.is_nil(c)
    assert.equal("EAUTH", code)
    assert.matches("none", msg)
    assert.equal("EINVAL", select(3, jwt.verify("ork_abc", KEYS, WANT)))
    assert.equal("EINVAL", select(3, jwt.verify(string.rep("a", 20000) .. ".b.c", KEYS, WANT)))
  end)
end)
