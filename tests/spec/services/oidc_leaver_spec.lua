-- A provider's valid word that a person it names has no role here (orket.serve.signin's
-- no_role, through its bearer and its callback): a person kept here whose groups the token
-- lists, none mapped, is disabled as the directory's look disables a leaver, audited with
-- the actor oidc; never the last enabled server admin; one whose token leaves the groups
-- claim out, or who is not kept here yet, is only refused. And orket.auth.jwt's refusals of
-- a token over its cap (named with its size) and of one with a crit header (RFC 7515).
local B = require "tests.backends"
local H = require "tests.helpers"
local cjson = require "cjson"
local identity = require "orket.serve.identity"
local oidc = require "orket.auth.oidc"
local signin = require "orket.serve.signin"
local users = require "orket.store.users"

local ISS = "https://id.example"

-- a provider whose every token is valid and says claims (its person() is the real one's);
-- its group map has matched someone already (fresh: not yet, as at a server's start)
local function provider(claims, fresh)
  local p = oidc.new({ issuer = ISS, client_id = "orket" }, { devs = "operator", admins = "admin" })
  function p.bearer() return claims end
  p.matched = not fresh or nil
  return p
end

local function disabled(db, name) return users.get(db, name).disabled_at ~= nil end

describe("a provider's token that gives a kept person no role", function()
  local db
  before_each(function() db = B.open_store() end)
  after_each(function()
    db:close()
    H.cleanup()
  end)

  it("disables them (sessions ended, keys stopped), audited with the actor oidc, and refuses the token", function()
    assert(identity.federated(db, { name = "boss", role = "admin" }, "oidc", ISS .. " sub-boss"))
    assert(identity.federated(db, { name = "root", role = "admin" }, "oidc", ISS .. " sub-root"))
    local no, status, code, msg, why, remedy = signin.bearer(db, provider {
      sub = "sub-boss", preferred_username = "boss", groups = setmetatable({}, cjson.array_mt) }, "t")
    assert.same({ nil, 403, "forbidden" }, { no, status, code })
    assert.equal("none of this person's groups has a role on this server; boss was disabled here", msg)
    assert.matches("oidc: disabled boss, no%-role", why)
    assert.matches("orket users enable NAME", remedy)
    assert.is_true(disabled(db, "boss"))
    local entry = assert(db:row("SELECT actor, route, detail FROM audit_log WHERE action = 'user_disable'"))
    assert.same({ "oidc", "sign_in", "person=boss role=admin why=no-role" }, { entry.actor, entry.route, entry.detail })
    -- a token with a role again does not bring them back: an admin enables them
    local p = provider { sub = "sub-boss", preferred_username = "boss", groups = { "admins" } }
    local st
    no, st, code, msg = signin.bearer(db, p, "t")
    assert.same({ nil, 401, "this person was disabled" }, { no, st, msg })
  end)

  -- one typo in sign_in.roles would otherwise disable everyone who signs in after it
  it("disables nobody while the group map has matched no one since the start, and says so", function()
    assert(identity.federated(db, { name = "boss", role = "admin" }, "oidc", ISS .. " sub-boss"))
    assert(identity.federated(db, { name = "root", role = "admin" }, "oidc", ISS .. " sub-root"))
    local p = provider({ sub = "sub-boss", preferred_username = "boss", groups = { "admnis" } }, true)
    local no, status, _, msg, why = signin.bearer(db, p, "t")
    assert.same({ nil, 403 }, { no, status })
    assert.equal("none of this person's groups has a role on this server", msg)
    assert.matches("not disabled: no one's groups have matched sign_in.roles", why)
    assert.is_false(disabled(db, "boss"))
    -- once the map matched someone, a leaver is disabled
    assert(p:person { sub = "sub-root", preferred_username = "root", groups = { "admins" } })
    assert.is_true(p.matched)
    signin.bearer(db, p, "t")
    assert.is_true(disabled(db, "boss"))
  end)

  it("finds the subject under the name it held before, when the token brings another", function()
    assert(identity.federated(db, { name = "kate", role = "operator" }, "oidc", ISS .. " sub-kate"))
    assert(signin.bearer(db, provider { sub = "sub-kate", preferred_username = "katherine", groups = { "leavers" } }, "t")
      == nil)
    assert.is_true(disabled(db, "kate"))
  end)

  it("keeps the last enabled server admin enabled, says why in the log, and still refuses the token", function()
    assert(identity.federated(db, { name = "boss", role = "admin" }, "oidc", ISS .. " sub-boss"))
    local no, status, _, msg, why = signin.bearer(db, provider {
      sub = "sub-boss", preferred_username = "boss", groups = { "leavers" } }, "t")
    assert.same({ nil, 403, "none of this person's groups has a role on this server" }, { no, status, msg })
    assert.matches("boss is the last enabled server admin", why)
    assert.is_false(disabled(db, "boss"))
    assert.is_nil(db:row("SELECT actor FROM audit_log WHERE action = 'user_disable'"))
  end)

  it("only refuses a token that leaves the groups claim out, and a person not kept here", function()
    assert(identity.federated(db, { name = "dora", role = "operator" }, "oidc", ISS .. " sub-dora"))
    local no, status, _, msg = signin.bearer(db, provider { sub = "sub-dora", preferred_username = "dora" }, "t")
    assert.same({ nil, 403, "none of this person's groups has a role on this server" }, { no, status, msg })
    assert.is_false(disabled(db, "dora"))
    no, status, _, msg = signin.bearer(db, provider { sub = "sub-new", preferred_username = "newbie", groups = {} }, "t")
    assert.same({ nil, 403, "none of this person's groups has a role on this server" }, { no, status, msg })
    assert.is_nil(users.get(db, "newbie"))
    -- a local account of that name is no subject of the provider's: left alone
    assert(db:tx(function()
      users.insert(db, "lena", "operator", "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA")
      return true
    end))
    signin.bearer(db, provider { sub = "sub-lena", preferred_username = "lena", groups = { "leavers" } }, "t")
    assert.is_false(disabled(db, "lena"))
  end)
end)

describe("orket.auth.jwt's caps and headers", function()
  after_each(function() H.cleanup() end)
  local jose = require "orket.c.jose"
  local jwt = require "orket.auth.jwt"
  local NOW = 1800000000
  local rsa = jose.keygen("RSA")
  local pub = cjson.decode(jose.public(rsa))
  pub.kid, pub.use = "r1", "sig"
  local WANT = { issuer = ISS, audience = "orket", now = NOW }
  local function claims(extra)
    local c = { iss = ISS, aud = "orket", sub = "u-1", exp = NOW + 300, iat = NOW }
    for k, v in pairs(extra or {}) do c[k] = v end
    return cjson.encode(c)
  end

  it("names a token's size and the cap when it is longer, the ID token's cap apart from a bearer's", function()
    local groups = {}
    for i = 1, 600 do groups[i] = "corp-dept-team-group-" .. i end
    local long = assert(jose.sign(rsa, "RS256", "r1", claims { groups = groups }))
    assert.is_true(#long > jwt.MAX_BEARER_BYTES)
    assert.is_true(jwt.looks_like(long)) -- a JWT still, told why it is refused
    local no, msg, code = jwt.verify(long, { pub }, WANT)
    assert.same({ nil, "EINVAL" }, { no, code })
    assert.equal(string.format("the token is %d bytes, longer than the %d accepted (a long groups claim makes it so: "
      .. "have the provider list fewer groups in it, a groups filter)", #long, jwt.MAX_BEARER_BYTES), msg)
    -- the same token as an ID token (a person in 600 groups) is taken; one past its cap is not
    local want = { issuer = ISS, audience = "orket", now = NOW, max_bytes = jwt.MAX_ID_TOKEN_BYTES, what = "the ID token" }
    assert.equal("u-1", assert(jwt.verify(long, { pub }, want)).sub)
    for i = 601, 11000 do groups[i] = "corp-dept-team-group-" .. i end
    local longer = assert(jose.sign(rsa, "RS256", "r1", claims { groups = groups }))
    assert.is_true(#longer > jwt.MAX_ID_TOKEN_BYTES)
    assert.matches("^the ID token is " .. #longer .. " bytes, longer than the " .. jwt.MAX_ID_TOKEN_BYTES, select(2,
      jwt.verify(longer, { pub }, want)))
  end)

  it("refuses a validly signed token whose header has crit (RFC 7515 4.1.11)", function()
    if os.execute("command -v openssl >/dev/null 2>&1") ~= true then return pending("openssl is not installed") end
    local dir = H.tmpdir()
    local function sh(cmd)
      local f = assert(io.popen("cd " .. H.quote(dir) .. " && " .. cmd))
      local out = f:read("a")
      assert(f:close(), cmd)
      return out
    end
    local function b64url(path) return (sh("openssl base64 -A -in " .. path):gsub("+", "-"):gsub("/", "_"):gsub("=", "")) end
    sh("openssl genrsa -out k.pem 2048 2>/dev/null")
    local hex = sh("openssl rsa -in k.pem -noout -modulus"):match("Modulus=(%x+)")
    H.write(dir .. "/n.bin", (hex:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end)))
    local key = { kty = "RSA", e = "AQAB", n = b64url("n.bin"), kid = "o1", use = "sig" }
    local function signed(header)
      H.write(dir .. "/h", cjson.encode(header))
      H.write(dir .. "/c", claims())
      local input = b64url("h") .. "." .. b64url("c")
      H.write(dir .. "/in", input)
      sh("openssl dgst -sha256 -sign k.pem -out sig in")
      return input .. "." .. b64url("sig")
    end
    -- the same signer without crit is accepted: only the header differs
    assert.equal("u-1", (jwt.verify(signed { alg = "RS256", kid = "o1" }, { key }, WANT) or {}).sub)
    for _, h in ipairs { { alg = "RS256", kid = "o1", crit = { "exp" }, exp = 1 },
      { alg = "RS256", kid = "o1", b64 = false, crit = { "b64" } } } do
      local no, msg, code = jwt.verify(signed(h), { key }, WANT)
      assert.same({ nil, "EAUTH" }, { no, code })
      assert.equal("the token's header names extensions it must be read with (crit), and this server knows none", msg)
    end
  end)
end)

describe("a provider or directory reached in clear", function()
  it("is warned of at the server's start when on another host, not on this machine", function()
    local function warned(oidc_issuer, ldap_url)
      return #signin.cleartext { oidc = oidc_issuer and { issuer = oidc_issuer } or nil,
        ldap = ldap_url and { url = ldap_url } or nil }
    end
    assert.equal(2, warned("http://id.example.com/realms/acme", "ldap://ldap.example.com"))
    assert.matches("sign_in.oidc.issuer: http://id.example.com is plain http:// to another host",
      signin.cleartext({ oidc = { issuer = "http://id.example.com" } })[1])
    assert.matches("sign_in.ldap.url: ldap://10.0.0.5:389 is plain ldap:// to another host",
      signin.cleartext({ ldap = { url = "ldap://10.0.0.5:389" } })[1])
    for _, ok in ipairs { { "https://id.example.com", "ldaps://ldap.example.com" }, { "http://127.0.0.1:8080", "ldap:///" },
      { "http://localhost/x", "ldap://[::1]:389" }, { nil, "ldapi://%2Frun%2Fslapd" } } do
      assert.equal(0, warned(ok[1], ok[2]), tostring(ok[1]) .. " " .. ok[2])
    end
  end)
end)
