-- Signing people in through an identity provider, end to end on the backend the suite runs
-- on: npm's oidc-provider (a certified OpenID Connect provider, tests.oidc) on loopback, the
-- browser's way through it driven over HTTP; Debian's slapd (tests.slapd) for LDAP. A person
-- signs in with the authorization code flow and PKCE, their groups give their role, the
-- journal names them; the same provider's tokens work as API bearers. Each bad input is a
-- clear refusal with nothing changed: a state used twice or begun in another browser, a
-- token signed by a key not in the JWKS or unsigned, a provider down, slow or answering
-- garbage, an LDAP filter injected through a name, a disabled person's live session. What
-- the directory changes of its people is listed by GET /v1/audit to the server's admins alone.
local F = require "tests.fixtures"
local H = require "tests.helpers"
local WD = require "tests.webdriver"
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
  assert.matches("orket_oidc_%x+=%x+; Path=/v1/sign%-in/oidc; HttpOnly; SameSite=Lax", h["set-cookie"])
  return jar, h.location
end

local function users_of(dir)
  local list = cjson.decode(ok(H.orket("users list --json", { cwd = dir }), "users list").stdout).users
  local names = {}
  for i, u in ipairs(list) do names[i] = u.name .. ":" .. u.role end
  return names
end

-- members_of(dir) -> sorted "PROJECT:NAME:ROLE" of every membership `orket projects list` shows
local function members_of(dir)
  local r = ok(H.orket("projects list --json", { cwd = dir }), "projects list")
  local members = {}
  for _, pr in ipairs(cjson.decode(r.stdout).projects) do
    for _, m in ipairs(pr.members or {}) do members[#members + 1] = pr.name .. ":" .. m.name .. ":" .. m.role end
  end
  table.sort(members)
  return members
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

    local st0, ways = req(s, "GET", "/v1/sign-in")
    assert.same({ 200, true, false }, { st0, ways.oidc, ways.ldap })
    local jar, auth_url = begin(s)
    -- the request to the provider: code flow, S256 challenge, state and nonce, our client
    assert.matches("^" .. p.issuer:gsub("%p", "%%%0") .. "/auth%?", auth_url)
    for _, want in ipairs { "response_type=code", "code_challenge_method=S256", "client_id=orket",
      "scope=openid%%20profile%%20email", "state=%x+", "nonce=%x+", "code_challenge=[%w_-]+" } do
      assert.matches(want, auth_url)
    end
    local back = oidc.through(jar, auth_url, callback, "alice")
    -- the callback in another browser (no cookie of this sign-in's) is refused, and spends the state
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
    -- her sign-in is audited as her write, by the provider's route (the refused ones are not)
    st, doc = req(s, "GET", "/v1/audit?actor=user:alice", { "Cookie: " .. session })
    assert.same({ "sign_in", "/v1/sign-in/oidc/callback", "comment" }, { doc.entries[1].action, doc.entries[1].route,
      doc.entries[2].action })

    -- signing out is a write: without the session's CSRF token it is refused
    st = req(s, "DELETE", "/v1/session", { "Cookie: " .. session })
    assert.equal(403, st)
    assert.equal(200, (req(s, "GET", "/v1/session", { "Cookie: " .. session })))

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
    -- the audit's chain: the one whole sign-in and its way, and it verifies
    local signs = {}
    for l in ok(H.orket("audit export", { cwd = dir }), "export").stdout:gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.action == "sign_in" then signs[#signs + 1] = e.actor .. " " .. e.route .. " " .. e.detail end
    end
    assert.equal(1, #signs)
    assert.matches("^user:alice /v1/sign%-in/oidc/callback person=alice session=%x+ via=oidc$",
      signs[1])
    ok(H.orket("audit verify", { cwd = dir }), "verify")
  end)

  it("stops a personal key a provider's person made sign_in.oidc.key_lifetime_days after it was made", function()
    local port = H.free_port()
    local callback = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback"
    local p, why = oidc.start { redirect_uri = callback, accounts = { root = { groups = { "admins" } } } }
    if not p then return pending(why) end
    local dir = project(p.issuer, port)
    local s = serve(dir, port)
    -- a token of ten minutes traded for a key
    local st, doc = req(s, "POST", "/v1/me/keys", { JSON, "Authorization: Bearer " .. oidc.id_token(p, callback, "root") },
      { name = "forever", role = "admin" })
    assert.equal(201, st)
    local kh, id = { "Authorization: Bearer " .. doc.key }, doc.id
    -- made_days_ago(n): the key's creation moved n days back
    local function made_days_ago(n)
      local db = assert(require("orket.project").open_store(dir, false))
      assert(db:run("UPDATE api_keys SET created_at = ? WHERE id = ?",
        os.date("!%Y-%m-%dT%H:%M:%S.000Z", os.time() - n * 86400), id))
      db:close()
    end
    made_days_ago(29)
    assert.equal(200, (req(s, "GET", "/v1/users", kh)))
    -- on day 29 the key cannot make its successor, nor can a session opened with it: only
    -- the provider's word (a sign-in's session, its token) makes a key
    st, doc = req(s, "POST", "/v1/me/keys", { JSON, kh[1] }, { name = "successor", role = "admin" })
    assert.same({ 403, "forbidden" }, { st, doc.error and doc.error.code })
    assert.matches("key_lifetime_days", doc.error.message, 1, true)
    -- its remedy is this refusal's: sign in through the provider, not the roles' text for a 403
    assert.matches("^sign in through the provider, or send its token", doc.error.remedy)
    local sst, sdoc, sh = req(s, "POST", "/v1/session", { JSON }, { key = kh[1]:match("ork_%S+") })
    assert.equal(200, sst)
    local cookie = "Cookie: " .. sh["set-cookie"]:match("(orket_session=ors_%x+)")
    st = req(s, "POST", "/v1/me/keys", { JSON, cookie, "X-CSRF-Token: " .. sdoc.csrf }, { name = "successor", role = "admin" })
    assert.equal(403, st)
    -- nor through the admins' routes, for their own name or for the server: each made a key
    -- of a new lifetime (a server key outliving the person too)
    for _, path in ipairs { "/v1/users/root/keys", "/v1/keys" } do
      st, doc = req(s, "POST", path, { JSON, kh[1] }, { name = "successor", role = "admin" })
      assert.same({ 403, "forbidden" }, { st, doc.error and doc.error.code }, path)
      assert.matches("key_lifetime_days", doc.error.message, 1, true)
    end
    made_days_ago(31) -- the default lifetime is 30 days
    st, doc = req(s, "GET", "/v1/users", kh)
    assert.equal(401, st)
    assert.matches("more than 30 days old", doc.error.message, 1, true)
    -- its remedy is the provider's sign-in, not a key's ("send Authorization: Bearer ork_...")
    assert.matches("^sign in through the provider", doc.error.remedy)
    -- and so does the session it opened
    assert.equal(401, (req(s, "GET", "/v1/users", { cookie })))
    s.stop()
    p.stop()
  end)

  it("takes the provider's tokens as API bearers, and refuses an expired one, another audience's, "
    .. "one signed by a key not in the JWKS, an unsigned one, a tampered one", function()
    local port = H.free_port()
    local callback = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback"
    local key = oidc.key("k1")
    local p, why = oidc.start { redirect_uri = callback, keys = { key },
      accounts = { alice = { groups = { "devs" } }, root = { groups = { "admins" } } } }
    if not p then return pending(why) end
    local dir = project(p.issuer, port)
    local s = serve(dir, port)
    local function bearer(t) return { "Authorization: Bearer " .. t } end

    local t = oidc.id_token(p, callback, "root")
    local st, doc = req(s, "GET", "/v1/session", bearer(t))
    assert.same({ 200, "admin", "root" }, { st, doc.role, doc.user.name })
    assert.equal(200, (req(s, "GET", "/v1/board", bearer(t))))
    local viewer = oidc.id_token(p, callback, "alice")
    assert.equal("operator", select(2, req(s, "GET", "/v1/session", bearer(viewer))).role)

    local now = os.time()
    local good = { iss = p.issuer, aud = oidc.CLIENT_ID, sub = "root", preferred_username = "root",
      groups = { "admins" }, exp = now + 300, iat = now }
    local function with(over)
      local c = {}
      for k, v in pairs(good) do c[k] = v end
      for k, v in pairs(over) do c[k] = v end
      return c
    end
    assert.equal(200, (req(s, "GET", "/v1/board", bearer(oidc.mint(key, good)))))
    -- a token of a person no group gives a role: the fix is the provider's, and the answer says so
    local nst, ndoc = req(s, "GET", "/v1/board",
      bearer(oidc.mint(key, with { sub = "zed", preferred_username = "zed", groups = { "nobody" } })))
    assert.same({ 403, "forbidden" }, { nst, ndoc.error.code })
    assert.matches("none of this person's groups has a role", ndoc.error.message, 1, true)
    assert.matches("^the provider must put the person in a group sign_in.roles maps to a role", ndoc.error.remedy)
    local function refused(token, pattern)
      local rst, rdoc = req(s, "GET", "/v1/board", bearer(token))
      assert.equal(401, rst, pattern)
      assert.matches(pattern, rdoc.error.message)
    end
    refused(oidc.mint(key, with { exp = now - 600 }), "the token expired at")
    refused(oidc.mint(key, with { aud = "someone-else" }), "another audience")
    refused(oidc.mint(key, with { iss = "http://127.0.0.1:1" }), "another issuer")
    refused(oidc.mint(oidc.key("k9"), good), "'k9' is not in the provider's JWKS")
    local stranger = oidc.key("k1") -- the provider's kid, another key
    refused(oidc.mint(stranger, good), "signature does not verify")
    local body = oidc.mint(key, good):match("^[^.]+%.([^.]+)%.")
    refused("eyJhbGciOiJub25lIn0." .. body .. ".", "'none' is not accepted")
    local parts = { t:match("^([^.]+)%.([^.]+)%.([^.]+)$") }
    refused(parts[1] .. "." .. oidc.mint(key, with { groups = { "admins" }, sub = "eve" }):match("^[^.]+%.([^.]+)%.")
      .. "." .. parts[3], "signature does not verify")
    -- the name is bound to the subject that first gave it: another subject naming itself
    -- root (a name a person may choose at some providers) is refused, as is a local account's
    refused(oidc.mint(key, with { sub = "someone-else" }), "the name 'root' belongs to another oidc subject")
    ok(H.orket("users add carol --role viewer --password-env PW", { cwd = dir, env = { PW = "long enough pw" } }), "add")
    refused(oidc.mint(key, with { sub = "carol", preferred_username = "carol" }), "signs in another way %(local%)")
    -- a person disabled here is refused with a good token
    ok(H.orket("users disable root", { cwd = dir }), "disable")
    refused(t, "disabled")
    s.stop()
    p.stop()
  end)

  it("tells a valid token refused about its person (their name a local account's or another subject's, or not "
    .. "usable here) who sets it right, not to send a key", function()
    local port = H.free_port()
    local callback = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback"
    local key = oidc.key("k1")
    local p, why = oidc.start { redirect_uri = callback, keys = { key } }
    if not p then return pending(why) end
    local dir = project(p.issuer, port)
    ok(H.orket("users add alice --role viewer --password-env PW", { cwd = dir, env = { PW = "long enough pw" } }), "add")
    local s = serve(dir, port)
    local now = os.time()
    local function token(sub, name)
      return oidc.mint(key, { iss = p.issuer, aud = oidc.CLIENT_ID, sub = sub, preferred_username = name,
        groups = { "devs" }, exp = now + 300, iat = now })
    end
    assert.equal(200, (req(s, "GET", "/v1/board", { "Authorization: Bearer " .. token("olga-1", "olga") })))
    for _, case in ipairs {
      { token("alice-at-idp", "alice"), "a person named 'alice' signs in another way (local)" },
      { token("olga-2", "olga"), "the name 'olga' belongs to another oidc subject" },
      { token("bob-1", "bob smith"), "the provider's name for this person is not usable here: " },
    } do
      local st, doc = req(s, "GET", "/v1/board", { "Authorization: Bearer " .. case[1] })
      assert.same({ 401, "unauthorized" }, { st, doc.error.code }, case[2])
      assert.matches(case[2], doc.error.message, 1, true)
      assert.equal("a refusal about the person (their name or subject) is a server admin's or the provider's to set "
        .. "right, not the token's: another token of theirs is refused alike; the server's log has it "
        .. "(docs/teams.md#api-access-with-the-providers-tokens)", doc.error.remedy, case[2])
    end
    s.stop()
    p.stop()
  end)

  it("refuses at the callback an ID token with a wrong nonce, for another audience, expired, unsigned, "
    .. "signed by a key not in the JWKS, or not a token, keeping nothing", function()
    local port = H.free_port()
    local key = oidc.key("k1")
    local pub = cjson.decode(jose.public(cjson.encode(key)))
    pub.kid, pub.use, pub.alg = "k1", "sig", "RS256"
    -- a provider that answers at its token endpoint whatever ID token the test wrote
    local p, why = oidc.start { mode = "forger", keys = { pub },
      redirect_uri = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback" }
    if not p then return pending(why) end
    local dir = project(p.issuer, port)
    local s = serve(dir, port)
    local now = os.time()
    local function claims(nonce, over)
      local c = { iss = p.issuer, aud = oidc.CLIENT_ID, sub = "alice", preferred_username = "alice",
        groups = { "devs" }, exp = now + 300, iat = now, nonce = nonce }
      for k, v in pairs(over or {}) do c[k] = v end
      return c
    end
    -- attempt(make) -> status, answer, headers: a sign-in whose ID token is make(nonce)
    local function attempt(make)
      local jar, url = begin(s)
      local state, nonce = url:match("[?&]state=(%x+)"), url:match("[?&]nonce=(%x+)")
      p.answer(make(nonce))
      local st, body, h = oidc.get(jar, s.url .. "/v1/sign-in/oidc/callback?code=c0de&state=" .. state)
      return st, cjson.decode(body), h
    end
    local cases = {
      { function() return oidc.mint(key, claims("0123abcd")) end, "nonce is not the one this sign%-in sent" },
      { function(n) return oidc.mint(key, claims(n, { aud = "another-client" })) end, "another audience" },
      { function(n) return oidc.mint(key, claims(n, { exp = now - 3600 })) end, "the token expired at" },
      { function(n) return "eyJhbGciOiJub25lIn0." .. oidc.mint(key, claims(n)):match("^[^.]+%.([^.]+)%.") .. "." end,
        "'none' is not accepted" },
      { function(n) return oidc.mint(oidc.key("k9"), claims(n)) end, "'k9' is not in the provider's JWKS" },
      { function(n) return oidc.mint(oidc.key("k1"), claims(n)) end, "signature does not verify" },
      { function() return "not-a-token" end, "not a JSON Web Token" },
    }
    for _, c in ipairs(cases) do
      local st, doc, h = attempt(c[1])
      assert.equal(401, st, c[2])
      assert.matches(c[2], doc.error.message)
      assert.is_nil((h["set-cookie"] or ""):find("orket_session=ors_", 1, true), c[2])
    end
    assert.same({}, users_of(dir))
    -- the same provider telling the truth signs alice in
    local st, _, h = attempt(function(n) return oidc.mint(key, claims(n)) end)
    assert.equal(303, st)
    assert.matches("orket_session=ors_%x+", h["set-cookie"])
    assert.same({ "alice:operator" }, users_of(dir))
    s.stop()
    p.stop()
  end)

  it("answers 502 when the provider is down, slow, answers garbage or names another issuer, changing nothing", function()
    local dir0 = nil
    for _, mode in ipairs { "down", "garbage", "slow", "wrong_issuer" } do
      local port = H.free_port()
      local issuer, p, why
      if mode == "down" then
        issuer = "http://127.0.0.1:" .. H.free_port()
      else
        p, why = oidc.start { mode = mode, redirect_uri = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback" }
        if not p then return pending(why) end
        issuer = p.issuer
      end
      local dir = project(issuer, port)
      dir0 = dir0 or dir
      local s = serve(dir, port)
      local st, doc, h = req(s, "GET", "/v1/sign-in/oidc")
      assert.equal(502, st, mode)
      assert.equal("provider_unavailable", doc.error.code, mode)
      assert.matches(({ down = "cannot be reached", garbage = "not a JSON object", slow = "did not answer",
        wrong_issuer = "another issuer" })[mode], doc.error.message)
      assert.is_nil(h["set-cookie"], mode)
      -- a bearer token cannot be checked either: 502, not 401
      local key = oidc.key("k1")
      st, doc = req(s, "GET", "/v1/board", { "Authorization: Bearer " .. oidc.mint(key, { iss = issuer,
        aud = oidc.CLIENT_ID, sub = "x", exp = os.time() + 60 }) })
      assert.same({ 502, "provider_unavailable" }, { st, doc.error.code }, mode)
      -- a callback with a made-up state: refused before the provider is asked
      st = req(s, "GET", "/v1/sign-in/oidc/callback?code=abc&state=" .. string.rep("a", 64))
      assert.equal(401, st)
      if mode == "down" then -- and a guesser of states is held off as any failed sign-in
        H.wait_for(function()
          return (req(s, "GET", "/v1/sign-in/oidc/callback?code=abc&state=" .. string.rep("b", 64))) == 429
        end, "the callback to be rate limited", 40)
      end
      assert.same({}, users_of(dir))
      s.stop()
      if p then p.stop() end
    end
  end)
end)

describe("sign-in through an OpenID Connect provider in Chromium", function()
  after_each(function()
    H.kill_servers()
    oidc.stop_all()
    H.cleanup()
  end)

  it("goes to the provider and back to the board, signed in, and signs out", function()
    local chromium, cwhy = WD.available()
    if not chromium then return pending("skipped: " .. cwhy) end
    local port = H.free_port()
    -- the provider's interaction page signs in alice (tests/oidc/provider.mjs)
    local p, why = oidc.start { redirect_uri = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback" }
    if not p then return pending(why) end
    local s = serve(project(p.issuer, port), port)
    WD.with({ width = 1280, height = 900 }, function(wd)
      wd:go(s.url .. "/")
      wd:wait("#signin-oidc", "the provider's link")
      H.wait_for(function() return wd:js("return !document.getElementById('signin-provider').hidden") end,
        "the provider's link shown")
      wd:press("#signin-oidc")
      wd:wait('#tree li[data-card="API-2"]', "the board's tree, signed in")
      assert.matches("alice · developer", wd:text_of("#who")) -- the role in the project: operator is developer
      -- the session is an HttpOnly cookie the page cannot read; the sign-in's cookie is spent
      assert.equal("", wd:js("return document.cookie"))
      assert.equal(s.url .. "/", wd:js("return location.href"))
      local function session_status()
        return wd:js("var x = new XMLHttpRequest(); x.open('GET', '/v1/session', false); x.send(); return x.status")
      end
      assert.equal(200, session_status())
      wd:press("#signout")
      H.wait_for(function() return session_status() == 401 end, "the session to end")
    end)
    s.stop()
    p.stop()
  end)
end)

-- a server of three projects, the default one (webapp), notes and hello (adder), whose people sign
-- in through the provider at issuer and whose groups make them members of default or notes
local function team_of_projects(issuer, port)
  local dir, dirs = H.example("webapp"), {}
  for _, name in ipairs { "notes", "hello" } do
    dirs[name] = H.example(name == "hello" and "adder" or name)
    ok(H.orket("projects add " .. dirs[name] .. " --name " .. name, { cwd = dir }), "projects add " .. name)
  end
  H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. string.format([[

sign_in = {
  oidc = { issuer = %q, client_id = %q, client_secret_env = "OIDC_SECRET",
    redirect_uri = "http://127.0.0.1:%d/v1/sign-in/oidc/callback", timeout_ms = 2000 },
  roles = { ["web-devs"] = "operator", ["notes-devs"] = "viewer" },
  project_roles = { default = { ["web-devs"] = "developer" }, notes = { ["notes-devs"] = "developer" } },
}
]], issuer, oidc.CLIENT_ID, port))
  return dir, dirs.notes
end

describe("group claims giving project roles, in Chromium", function()
  after_each(function()
    H.kill_servers()
    oidc.stop_all()
    H.cleanup()
  end)

  it("signs two people of two projects in through the provider; each sees only their project, "
    .. "and each move is audited under their name", function()
    local chromium, cwhy = WD.available()
    if not chromium then return pending("skipped: " .. cwhy) end
    local port = H.free_port()
    local key = oidc.key("k1")
    local p, why = oidc.start { redirect_uri = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback", keys = { key },
      accounts = { alice = { groups = { "web-devs" } }, bob = { groups = { "notes-devs" } } } }
    if not p then return pending(why) end
    local dir, notes = team_of_projects(p.issuer, port)
    local s = H.serve(dir, { listen = "127.0.0.1:" .. port,
      env = { OIDC_SECRET = oidc.CLIENT_SECRET, ORKET_SERVE_LIMITS = F.ROOMY.env.ORKET_SERVE_LIMITS } })
    -- in the page, with the page's session: status of a GET, or of a comment sent with the
    -- session's CSRF token
    local GET = "var x = new XMLHttpRequest(); x.open('GET', arguments[0], false); x.send(); return x.status"
    local COMMENT = [[var s = new XMLHttpRequest(); s.open('GET', '/v1/session', false); s.send();
      var x = new XMLHttpRequest(); x.open('POST', arguments[0], false);
      x.setRequestHeader('Content-Type', 'application/json');
      x.setRequestHeader('X-CSRF-Token', JSON.parse(s.responseText).csrf);
      x.send(JSON.stringify({ body: arguments[1] })); return x.status]]
    -- each person in a browser of their own: through the provider to the board, their
    -- project's cards only, the other's routes 404, a comment on their own card
    local people = {
      { name = "alice", card = "API-2", mine = "default", other = "notes", foreign = "NOTES" },
      { name = "bob", card = "NOTES-1", mine = "notes", other = "default", foreign = "API" },
    }
    for _, who in ipairs(people) do
      WD.with({ width = 1280, height = 900 }, function(wd)
        wd:go(p.issuer .. "/.well-known/openid-configuration") -- the provider's login signs in test_user
        wd:js("document.cookie = 'test_user=" .. who.name .. "; path=/'")
        wd:go(s.url .. "/")
        H.wait_for(function() return wd:js("return !document.getElementById('signin-provider').hidden") end,
          "the provider's link shown")
        wd:press("#signin-oidc")
        wd:wait('#tree li[data-card="' .. who.card .. '"]', who.name .. "'s board")
        assert.matches(who.name .. " · developer", wd:text_of("#who"))
        assert.is_nil(F.board_cards(wd):find(who.foreign, 1, true), who.name)
        assert.is_true(wd:js("return document.getElementById('project-box').hidden"), who.name) -- one project: no switcher
        assert.equal(200, wd:js(GET, "/v1/projects/" .. who.mine .. "/board"))
        for _, path in ipairs { "/v1/projects/" .. who.other .. "/board", "/v1/projects/hello/board",
          "/v1/projects/" .. who.other .. "/audit" } do
          assert.equal(404, wd:js(GET, path), who.name .. " " .. path)
        end
        assert.equal(200, wd:js(COMMENT, "/v1/projects/" .. who.mine .. "/cards/" .. who.card .. "/comments",
          "from " .. who.name .. " through the provider"))
        assert.equal(404, wd:js(COMMENT, "/v1/projects/" .. who.other .. "/cards/" .. (who.name == "alice" and "NOTES-1"
          or "API-2") .. "/comments", "not mine"))
      end)
    end
    assert.same({ "alice:operator", "bob:viewer" }, users_of(dir))
    -- each move in its project's audit, under its person's name; the memberships the groups
    -- gave in the server's, under the way they signed in
    local function exported(d) return ok(H.orket("audit export", { cwd = d }), "audit export").stdout end
    local server_audit = exported(dir)
    assert.matches('"action":"comment","actor":"user:alice","at":"[^"]+","card":"API%-2"', server_audit)
    -- nothing bob did in notes is in the server's audit: his sign-ins and sign-outs alone
    -- (sessions are the server's)
    local bobs = {}
    for l in server_audit:gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.actor == "user:bob" then
        assert.is_true(e.action == "sign_in" or e.action == "sign_out", l)
        bobs[#bobs + 1] = e.action
      end
    end
    assert.equal("sign_in", bobs[1])
    -- their sign-ins are the server's, kept with its people and sessions in the default
    -- project's audit, whichever project they work in
    for _, name in ipairs { "alice", "bob" } do
      assert.matches('"action":"sign_in","actor":"user:' .. name .. '","at":"[^"]+","detail":"'
        .. 'person=' .. name .. ' session=%x+ via=oidc"', server_audit)
    end
    local _, grants = server_audit:gsub('"action":"member_grant","actor":"oidc"', "")
    assert.equal(2, grants)
    -- whom each grant and addition was about is in the chain, as an admin's is
    for _, want in ipairs { '"action":"member_grant","actor":"oidc","at":"[^"]+","detail":"person=alice project=default role=developer"',
      '"action":"member_grant","actor":"oidc","at":"[^"]+","detail":"person=bob project=notes role=developer"',
      '"action":"user_add","actor":"oidc","at":"[^"]+","detail":"person=alice role=operator"',
      '"action":"user_add","actor":"oidc","at":"[^"]+","detail":"person=bob role=viewer"' } do
      assert.matches(want, server_audit)
    end
    local notes_audit = exported(notes)
    assert.matches('"action":"comment","actor":"user:bob","at":"[^"]+","card":"NOTES%-1"', notes_audit)
    assert.is_nil(notes_audit:find('"actor":"user:alice"', 1, true))
    assert.same({ "default:alice:developer", "notes:bob:developer" }, members_of(dir))

    -- bob's groups change at the provider (a token of it, as an API script would send): his
    -- memberships follow at once, and a role an admin granted in a project the map does not
    -- name stays
    ok(H.orket("projects grant hello bob viewer", { cwd = dir }), "grant")
    local now = os.time()
    local token = oidc.mint(key, { iss = p.issuer, aud = oidc.CLIENT_ID, sub = "bob", preferred_username = "bob",
      groups = { "web-devs" }, exp = now + 300, iat = now })
    local st, doc = req(s, "GET", "/v1/projects", { "Authorization: Bearer " .. token })
    assert.equal(200, st)
    local mine = {}
    for _, pr in ipairs(doc.projects) do mine[#mine + 1] = pr.name .. ":" .. pr.role end
    assert.same({ "default:developer", "hello:viewer" }, mine)
    assert.matches('"action":"member_revoke","actor":"oidc"', exported(dir))
    s.stop()
    p.stop()
  end)
end)

describe("group claims giving project roles: a map for a project not hosted", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("stops the server at its start, naming the field", function()
    local dir = team_of_projects("http://127.0.0.1:1", H.free_port())
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. '\nsign_in.project_roles.nope = { devs = "viewer" }\n')
    local r = H.orket("serve --listen 127.0.0.1:0", { cwd = dir, env = { OIDC_SECRET = oidc.CLIENT_SECRET } })
    assert.equal(1, r.status)
    assert.matches("sign_in.project_roles.nope: this server hosts no project named 'nope'", r.stderr, 1, true)
  end)

  it("a provider in clear on another host: orket validate warns as the server does, with its line", function()
    local dir = team_of_projects("http://id.example.com", H.free_port())
    local r = H.orket("validate", { cwd = dir, env = { OIDC_SECRET = oidc.CLIENT_SECRET } })
    local line = 0
    for l in H.read(dir .. "/orket.lua"):gmatch("[^\n]*\n") do
      line = line + 1
      if l:find("issuer =", 1, true) then break end
    end
    assert.matches(string.format("warning: orket.lua:%d: sign_in.oidc.issuer: http://id.example.com is plain http:// "
      .. "to another host", line), r.stdout, 1, true)
    -- on this machine it is not said
    dir = team_of_projects("http://127.0.0.1:1", H.free_port())
    r = H.orket("validate", { cwd = dir, env = { OIDC_SECRET = oidc.CLIENT_SECRET } })
    assert.is_nil(r.stdout:find("plain http://", 1, true))
  end)

  it("is reported by orket validate as the server refuses it, with its line; a project added to the store is "
    .. "hosted", function()
    local dir = team_of_projects("http://127.0.0.1:1", H.free_port())
    local env = { OIDC_SECRET = oidc.CLIENT_SECRET }
    -- notes, named in project_roles, was added with orket projects add: hosted (the example's
    -- epics have a problem of their own)
    assert.is_nil(H.orket("validate", { cwd = dir, env = env }).stdout:find("sign_in", 1, true))
    local text = H.read(dir .. "/orket.lua")
    local _, lines = text:gsub("\n", "")
    H.write(dir .. "/orket.lua", text .. 'sign_in.project_roles.nope = { devs = "viewer" }\n')
    local said = string.format("orket.lua:%d: sign_in.project_roles.nope: this server hosts no project named 'nope' "
      .. "(serve.projects, orket projects add)", lines + 1)
    local r = H.orket("validate", { cwd = dir, env = env })
    if require("tests.backends").name() == "pg" then
      -- validate opens no PostgreSQL store, so it cannot know the projects added there
      -- (docs/teams.md): the server alone says it
      assert.is_nil(r.stdout:find("sign_in", 1, true))
    else
      assert.equal(1, r.status)
      assert.matches(said, r.stdout, 1, true)
    end
    r = H.orket("serve --listen 127.0.0.1:0", { cwd = dir, env = env })
    assert.equal(1, r.status)
    assert.matches(said, r.stderr, 1, true)
  end)
end)

-- orket.lua's sign_in through the directory d, with ldap_extra fields in its ldap table and
-- extra fields in the section; o.anonymous: no bind_dn (the look searches anonymously);
-- o.base_dn: another base_dn
local function ldap_section(d, ldap_extra, extra, o)
  o = o or {}
  return string.format([[

sign_in = {
  ldap = { url = %q, base_dn = %q, group_base_dn = %q, %s
    %s %s },
  roles = { devs = "operator", admins = "admin" },
  %s
}
]], d.url, o.base_dn or slapd.PEOPLE, slapd.GROUPS,
    o.anonymous and "" or string.format('bind_dn = %q, bind_password_env = "LDAP_PW",', slapd.ADMIN_DN),
    (ldap_extra or ""):find("timeout_ms") and "" or "timeout_ms = 2000,", ldap_extra or "", extra or "")
end

-- a project signing people in through the directory d (ldap_section's arguments)
local function ldap_project(d, ldap_extra, extra, o)
  local dir = H.example("webapp")
  local base = H.read(dir .. "/orket.lua") or ""
  H.write(dir .. "/orket.lua", base .. ldap_section(d, ldap_extra, extra, o))
  return dir, base
end

-- who is disabled among the project's people: name -> true | false
local function disabled_of(dir)
  local people = cjson.decode(ok(H.orket("users list --json", { cwd = dir }), "users list").stdout).users
  local disabled = {}
  for _, u in ipairs(people) do disabled[u.name] = u.disabled_at ~= nil end
  return disabled
end

describe("a directory whose groups only a person bound as themselves may read", function()
  local d, why
  setup(function() d, why = slapd.start { acl = slapd.MEMBERS_FOR_USERS } end)
  teardown(function()
    if d then d.stop() end
    H.cleanup()
  end)
  after_each(function() H.kill_servers() end)

  it("keeps its people and their roles when an anonymous look sees none of their groups, and says so once",
    function()
    if not d then return pending(why) end
    local dir = ldap_project(d, "recheck_s = 1, grace_s = 600,", nil, { anonymous = true })
    local s = H.serve(dir)
    -- the groups read as alice herself at the sign-in
    local st, doc, h = req(s, "POST", "/v1/session", { JSON }, { user = "alice", password = "alice-pw" })
    assert.same({ 200, "operator" }, { st, doc.role })
    local cookie = "Cookie: " .. h["set-cookie"]:match("(orket_session=ors_%x+)")
    for _ = 1, 2 do
      orket.sleep(1100) -- recheck_s since the last look
      st, doc = req(s, "GET", "/v1/session", { cookie })
      assert.same({ 200, "operator" }, { st, doc.role })
    end
    assert.same({ alice = false }, disabled_of(dir))
    local _, told = s.log():gsub("lists no group of this person", "")
    assert.equal(1, told)
    -- her entry gone is still seen, and ends her
    d.modify([[
dn: uid=alice,ou=people,dc=example,dc=org
changetype: delete
]])
    orket.sleep(1100)
    assert.equal(401, (req(s, "GET", "/v1/session", { cookie })))
    assert.same({ alice = true }, disabled_of(dir))
    s.stop()
  end)
end)

describe("a directory's groups that would demote the last server admin", function()
  local d, why
  setup(function() d, why = slapd.start() end)
  teardown(function()
    if d then d.stop() end
    H.cleanup()
  end)
  after_each(function() H.kill_servers() end)

  it("keep them an admin, and the sign-in's log line and audit entry say why", function()
    if not d then return pending(why) end
    local dir = ldap_project(d)
    local s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } })
    local function sign_in() return req(s, "POST", "/v1/session", { JSON }, { user = "dave", password = "dave-pw" }) end
    local st, doc = sign_in()
    assert.same({ 200, "admin" }, { st, doc.role })
    -- the directory moves dave, the only server admin, from the admins to the developers
    d.modify([[
dn: cn=admins,ou=groups,dc=example,dc=org
changetype: modify
delete: memberUid
memberUid: Dave

dn: cn=devs,ou=groups,dc=example,dc=org
changetype: modify
add: member
member: uid=Dave,ou=people,dc=example,dc=org
]])
    st, doc = sign_in()
    assert.same({ 200, "admin" }, { st, doc.role })
    assert.same({ "dave:admin" }, users_of(dir))
    assert.matches("dave is the last enabled server admin: kept an admin though their groups give operator",
      s.log(), 1, true)
    s.stop()
    local kept = {}
    for l in ok(H.orket("audit export", { cwd = dir }), "export").stdout:gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.action == "sign_in" and e.detail:find("kept=", 1, true) then kept[#kept + 1] = e.detail:gsub("session=%x+ ", "") end
    end
    assert.same({ "groups=operator kept=admin person=dave via=ldap" }, kept)
  end)
end)

describe("a directory's look that finds the last server admin gone", function()
  local d, why
  setup(function() d, why = slapd.start() end)
  teardown(function()
    if d then d.stop() end
    H.cleanup()
  end)
  after_each(function() H.kill_servers() end)

  it("disables them all the same (a leaver is never kept), and the audit entry and the log line say why", function()
    if not d then return pending(why) end
    local dir = ldap_project(d, "recheck_s = 1, grace_s = 600,")
    local s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } })
    local st, doc, h = req(s, "POST", "/v1/session", { JSON }, { user = "dave", password = "dave-pw" })
    assert.same({ 200, "admin" }, { st, doc.role })
    local cookie = "Cookie: " .. h["set-cookie"]:match("(orket_session=ors_%x+)")
    local kst, kdoc = req(s, "POST", "/v1/me/keys", { JSON, cookie, "X-CSRF-Token: " .. doc.csrf },
      { name = "dave-ci", role = "admin" })
    assert.equal(201, kst)
    local key = { "Authorization: Bearer " .. kdoc.key }
    -- dave, the only server admin, leaves: his entry is deleted
    d.modify([[
dn: uid=Dave,ou=people,dc=example,dc=org
changetype: delete
]])
    orket.sleep(1100) -- recheck_s since the sign-in
    assert.equal(401, (req(s, "GET", "/v1/users", key)))
    assert.same({ dave = true }, disabled_of(dir))
    assert.matches("dave, the last enabled server admin, was disabled: ", s.log(), 1, true)
    assert.matches("(a leaver is never kept); no enabled server admin is left: until one is made, people and keys "
      .. "are managed on the server's machine (or with a server key of role admin, if one is kept); to make one: ",
      s.log(), 1, true)
    s.stop()
    local audited = {}
    for line in ok(H.orket("audit export", { cwd = dir }), "audit export").stdout:gmatch("[^\n]+") do
      local e = cjson.decode(line)
      if e.action == "user_disable" then
        audited[#audited + 1] = e.actor .. " " .. e.route .. " " .. tostring(e.detail)
      end
    end
    assert.same({ "ldap directory lastadmin=yes person=dave role=admin why=no-entry" }, audited)
  end)
end)

-- established_to(port) -> the TCP connections to this machine's port that are open (/proc/net/tcp)
local function established_to(port)
  local n = 0
  for line in io.lines("/proc/net/tcp") do
    local lport, state = line:match("^%s*%d+: %x+:(%x+) %x+:%x+ (%x%x)")
    if lport and tonumber(lport, 16) == port and state == "01" then n = n + 1 end
  end
  return n
end

describe("sign-in through an LDAP directory", function()
  local d, why
  setup(function() d, why = slapd.start() end)
  teardown(function()
    if d then d.stop() end
    H.cleanup()
  end)
  after_each(function() H.kill_servers() end)

  it("are named in lower case whichever case the name is typed in, with the groups that list the "
    .. "directory's own spelling", function()
    if not d then return pending(why) end
    local dir = ldap_project(d)
    local s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } })
    -- uid=Dave, listed as memberUid Dave (a posixGroup's memberUid is compared with case)
    for _, typed in ipairs { "Dave", "dave", "DAVE" } do
      local st, doc = req(s, "POST", "/v1/session", { JSON }, { user = typed, password = "dave-pw" })
      assert.same({ 200, "dave", "admin" }, { st, doc.user and doc.user.name, doc.role }, typed)
    end
    assert.same({ "dave:admin" }, users_of(dir))
    local st = req(s, "POST", "/v1/session", { JSON }, { user = "Dave", password = "wrong" })
    assert.equal(401, st)
    s.stop()
  end)

  it("holds a directory's person off by name whichever spelling is typed: one the directory would take for "
    .. "them (spaces at the ends, full-width, a dotted I) is refused before the directory is asked", function()
    if not d then return pending(why) end
    local dir = ldap_project(d)
    local s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW,
      ORKET_SERVE_LIMITS = "auth_fail_burst=100000,auth_fail_rate=1000,account_fail_burst=3,account_fail_rate=0.001" } })
    local function sign_in(user, pw) return (req(s, "POST", "/v1/session", { JSON }, { user = user, password = pw })) end
    for i = 1, 3 do assert.equal(401, sign_in("alice", "wrong" .. i)) end
    assert.equal(429, sign_in("alice", "alice-pw"))
    -- each its own bucket, so each must stop before the directory checks alice's password
    local variants = { " alice", "alice ", "  alice", "\239\189\129\239\189\140\239\189\137\239\189\131\239\189\133",
      "AL\196\176CE" }
    for _, v in ipairs(variants) do
      assert.equal(401, sign_in(v, "alice-pw"), v)
      assert.equal(401, sign_in(v, "wrong"), v)
    end
    local log = s.log()
    local _, refused = log:gsub("the directory not asked", "")
    assert.equal(2 * #variants, refused)
    -- the directory bound none of them as alice (federated's refusal, after a bind, is not there)
    assert.is_nil(log:find("not usable here", 1, true))
    -- Dave (uid=Dave) typed in another case is still the directory's
    assert.equal(200, sign_in("DAVE", "dave-pw"))
    s.stop()
  end)

  it("looks at its people again while they use keys and sessions: one gone from the directory is disabled, "
    .. "one whose groups changed gets their new role, and a directory down leaves the last answer for a while, "
    .. "then none", function()
    if not d then return pending(why) end
    d.modify([[
dn: uid=erin,ou=people,dc=example,dc=org
changetype: add
objectClass: inetOrgPerson
uid: erin
cn: Erin
sn: E
userPassword: erin-pw

dn: cn=admins,ou=groups,dc=example,dc=org
changetype: modify
add: memberUid
memberUid: erin
]])
    local dir = ldap_project(d, "recheck_s = 1, grace_s = 6,")
    -- a local server admin besides: Dave, demoted below, is not the last (who stays one)
    ok(H.orket("users add root --role admin --password-env PW", { cwd = dir, env = { PW = "local password" } }), "add")
    local s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } })
    -- signed_in(user, pw) -> their session's Cookie header, and their new admin key's headers
    local function signed_in(user, pw)
      local st, doc, h = req(s, "POST", "/v1/session", { JSON }, { user = user, password = pw })
      assert.same({ 200, "admin" }, { st, doc.role }, user)
      local cookie = "Cookie: " .. h["set-cookie"]:match("(orket_session=ors_%x+)")
      local kst, kdoc = req(s, "POST", "/v1/me/keys", { JSON, cookie, "X-CSRF-Token: " .. doc.csrf },
        { name = user .. "-ci", role = "admin" })
      assert.equal(201, kst, user)
      return cookie, { "Authorization: Bearer " .. kdoc.key }
    end
    local erin_session, erin_key = signed_in("erin", "erin-pw")
    local _, dave_key = signed_in("dave", "dave-pw")
    assert.equal(200, (req(s, "GET", "/v1/users", erin_key)))
    assert.equal(200, (req(s, "GET", "/v1/users", dave_key)))
    -- erin leaves the company; Dave moves from the admins to the developers. Neither signs in.
    d.modify([[
dn: cn=admins,ou=groups,dc=example,dc=org
changetype: modify
delete: memberUid
memberUid: erin
-
delete: memberUid
memberUid: Dave

dn: uid=erin,ou=people,dc=example,dc=org
changetype: delete

dn: cn=devs,ou=groups,dc=example,dc=org
changetype: modify
add: member
member: uid=Dave,ou=people,dc=example,dc=org
]])
    orket.sleep(1100) -- recheck_s since the sign-ins
    local st, doc = req(s, "POST", "/v1/users", erin_key, { name = "mallory", role = "admin", password = "correct horse battery 9" })
    assert.same({ 401, "the directory no longer gives this person a role here; they were disabled" },
      { st, doc.error and doc.error.message })
    assert.equal(401, (req(s, "GET", "/v1/board", { erin_session })))
    assert.same({ erin = true, dave = false, root = false }, disabled_of(dir))
    local audited = {}
    for line in ok(H.orket("audit export", { cwd = dir }), "audit export").stdout:gmatch("[^\n]+") do
      local e = cjson.decode(line)
      if e.action == "user_disable" then audited[#audited + 1] = e.actor .. " " .. e.route .. " " .. tostring(e.detail) end
    end
    assert.same({ "ldap directory person=erin role=admin" }, audited)
    st, doc = req(s, "GET", "/v1/session", dave_key)
    assert.same({ 200, "operator" }, { st, doc.role })
    assert.equal(403, (req(s, "GET", "/v1/users", dave_key)))

    -- the directory cannot be reached: the last answer stands for grace_s, then Dave is refused
    d.stop()
    orket.sleep(1100)
    assert.equal(200, (req(s, "GET", "/v1/session", dave_key)))
    H.wait_for(function() return req(s, "GET", "/v1/session", dave_key) == 502 end, "the grace to end")
    d.start()
    assert.equal(200, (req(s, "GET", "/v1/session", dave_key)))
    s.stop()
  end)

  it("takes a base_dn the directory does not hold for the directory's failure at a look, not for its people "
    .. "gone", function()
    if not d then return pending(why) end
    local dir, base = ldap_project(d, "recheck_s = 1, grace_s = 3,")
    local s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } })
    local st, doc, h = req(s, "POST", "/v1/session", { JSON }, { user = "bob", password = "bob-pw" })
    assert.same({ 200, "admin" }, { st, doc.role })
    local cookie = "Cookie: " .. h["set-cookie"]:match("(orket_session=ors_%x+)")
    local kst, kdoc = req(s, "POST", "/v1/me/keys", { JSON, cookie, "X-CSRF-Token: " .. doc.csrf },
      { name = "bob-ci", role = "admin" })
    assert.equal(201, kst)
    local key = { "Authorization: Bearer " .. kdoc.key }
    s.stop()
    -- a typo in base_dn (or a replica whose suffix is not loaded yet): noSuchObject
    H.write(dir .. "/orket.lua", base .. ldap_section(d, "recheck_s = 1, grace_s = 3,", nil,
      { base_dn = "ou=nobody," .. slapd.SUFFIX }))
    s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } })
    orket.sleep(1100) -- recheck_s since the start
    assert.equal(200, (req(s, "GET", "/v1/session", key)))
    H.wait_for(function() return req(s, "GET", "/v1/session", key) == 502 end, "the grace to end")
    assert.same({ bob = false }, disabled_of(dir))
    s.stop()
  end)

  it("keeps the directory's checks to a few at once: a hanging directory does not hold up a local account's "
    .. "sign-in", function()
    if not d then return pending(why) end
    local dir = ldap_project(d, "timeout_ms = 30000,")
    ok(H.orket("users add root --role admin --password-env PW", { cwd = dir, env = { PW = "local password" } }), "add")
    local s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } })
    local out = H.tmpdir()
    os.execute("kill -STOP " .. d.pid) -- the directory hangs: each check waits its timeout_ms
    local resumed = false
    local ok_run, err = pcall(function()
      for i = 1, 6 do
        os.execute(string.format("curl -s -o /dev/null -w '%%{http_code}' -H %s -d %s %s/v1/session >%s/%d.tmp 2>&1 && "
          .. "mv %s/%d.tmp %s/%d &", H.quote(JSON), H.quote('{"user":"alice","password":"alice-pw"}'), s.url, out, i,
          out, i, out, i))
      end
      -- the six are all in (their connections to the server open), waiting for the directory or their turn
      H.wait_for(function() return established_to(s.port) >= 6 end, "the directory's sign-ins to be sent")
      local st, doc = req(s, "POST", "/v1/session", { JSON }, { user = "root", password = "local password" })
      assert.same({ 200, "admin" }, { st, doc and doc.role })
      -- answered while every directory sign-in still waits
      local done = {}
      for i = 1, 6 do if H.read(out .. "/" .. i) then done[#done + 1] = i end end
      assert.same({}, done)
      os.execute("kill -CONT " .. d.pid)
      resumed = true
      for i = 1, 6 do
        local code = H.wait_for(function() return H.read(out .. "/" .. i) end, "directory sign-in " .. i)
        assert.equal("200", code, i)
      end
    end)
    if not resumed then os.execute("kill -CONT " .. d.pid) end
    assert(ok_run, err)
    s.stop()
  end)

  it("signs a person in with the directory's password and groups, refuses an injected name, "
    .. "says when the directory is down, and ends a disabled person's session", function()
    if not d then return pending(why) end
    -- the default project's role from the groups, not roles
    local dir = ldap_project(d, nil, 'project_roles = { default = { devs = "viewer" } },')
    ok(H.orket("users add carol --role viewer --password-env PW", { cwd = dir, env = { PW = "local password" } }), "add")
    local s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } })
    local function sign_in(user, pw) return req(s, "POST", "/v1/session", { JSON }, { user = user, password = pw }) end

    local st, doc, h = req(s, "GET", "/v1/sign-in")
    assert.same({ 200, false, true }, { st, doc.oidc, doc.ldap })
    st, doc, h = sign_in("alice", "alice-pw")
    assert.same({ 200, "operator", "alice" }, { st, doc.role, doc.user.name })
    local session = "Cookie: " .. h["set-cookie"]:match("(orket_session=ors_%x+)")
    st, doc = sign_in("bob", "bob-pw")
    assert.same({ 200, "admin" }, { st, doc.role })
    -- a local account is checked as one: the directory's carol does not sign in as her
    st = sign_in("carol", "carol-pw")
    assert.equal(401, st)
    assert.equal(200, (sign_in("carol", "local password")))
    for _, name in ipairs { "al*", "*", "alice)(uid=*" } do
      st, doc = sign_in(name, "alice-pw")
      assert.same({ 401, "the name or password is not valid" }, { st, doc.error.message }, name)
    end
    st = sign_in("alice", "wrong")
    assert.equal(401, st)
    assert.same({ "alice:operator", "bob:admin", "carol:viewer" }, users_of(dir))
    -- the default project's members: alice by her group's project role, carol as her account
    -- says; bob's groups map to none there (he is a server admin)
    assert.same({ "default:alice:viewer", "default:carol:viewer" }, members_of(dir))

    ok(H.orket("users disable alice", { cwd = dir }), "disable")
    assert.equal(401, (req(s, "GET", "/v1/board", { session })))
    st, doc = sign_in("alice", "alice-pw")
    assert.equal(401, st)

    d.stop()
    st, doc = sign_in("bob", "bob-pw")
    assert.same({ 502, "provider_unavailable" }, { st, doc.error.code })
    d = nil
    s.stop()
    -- the audit's chain: each whole sign-in by its way (the directory's, a local account's),
    -- none of the refused ones, and it verifies
    local signs = {}
    for l in ok(H.orket("audit export", { cwd = dir }), "export").stdout:gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.action == "sign_in" then signs[#signs + 1] = e.actor .. " " .. e.detail:gsub("session=%x+", "session=S") end
    end
    assert.same({ "user:alice person=alice session=S via=ldap",
      "user:bob person=bob session=S via=ldap",
      "user:carol person=carol session=S via=password" }, signs)
    ok(H.orket("audit verify", { cwd = dir }), "verify")
  end)
end)

describe("the directory's changes to its people in GET /v1/audit", function()
  local d, why
  setup(function() d, why = slapd.start() end)
  teardown(function()
    if d then d.stop() end
    H.cleanup()
  end)
  after_each(function() H.kill_servers() end)

  it("are listed to the server's admins (actor ldap, a look's with route directory), never to another caller",
    function()
    if not d then return pending(why) end
    local dir = ldap_project(d, "recheck_s = 1, grace_s = 600,")
    ok(H.orket("users add root --role admin --password-env PW", { cwd = dir, env = { PW = "local password" } }), "add")
    local s = H.serve(dir, { env = { LDAP_PW = slapd.ADMIN_PW } })
    local function session_of(user, pw)
      local st, doc, h = req(s, "POST", "/v1/session", { JSON }, { user = user, password = pw })
      assert.equal(200, st, user)
      return { "Cookie: " .. h["set-cookie"]:match("(orket_session=ors_%x+)") }, doc
    end
    local root = session_of("root", "local password")
    local alice, adoc = session_of("alice", "alice-pw")
    assert.equal("operator", adoc.role)
    -- ldap's entries: "ACTION ROUTE person=... role=..." as GET /v1/audit gives them
    local function ldap_rows(caller)
      local st, doc = req(s, "GET", "/v1/audit?actor=ldap", caller)
      assert.equal(200, st)
      local rows = {}
      for _, e in ipairs(doc.entries) do
        assert.equal("ldap", e.actor)
        local words = {}
        for k, v in pairs(e.subject or {}) do words[#words + 1] = k .. "=" .. v end
        table.sort(words)
        rows[#rows + 1] = e.action .. " " .. e.route .. " " .. table.concat(words, " ")
      end
      return rows
    end
    local signed = { "user_add sign_in person=alice role=operator",
      "member_grant sign_in person=alice project=default role=developer" }
    assert.same(signed, ldap_rows(root))
    -- another caller: refused by name (not an empty list, which reads as nothing changed),
    -- and left out of the whole list, as the sign-ins of others are
    local st, doc = req(s, "GET", "/v1/audit?actor=ldap", alice)
    assert.same({ 403, "forbidden" }, { st, doc.error.code })
    assert.matches("the server's admins' to read", doc.error.message, 1, true)
    st, doc = req(s, "GET", "/v1/audit", alice)
    assert.equal(200, st)
    for _, e in ipairs(doc.entries) do assert.are_not.equal("ldap", e.actor) end
    -- oidc is an actor too (none here), and every refusal of ?actor= names both
    st, doc = req(s, "GET", "/v1/audit?actor=oidc", root)
    assert.same({ 200, 0 }, { st, #doc.entries })
    st, doc = req(s, "GET", "/v1/audit?actor=lda", root)
    assert.same({ 400, "bad_query" }, { st, doc.error.code })
    assert.matches("ldap and oidc for what the directory and the provider changed of a person", doc.error.message, 1,
      true)
    -- the directory adds alice to the admins: the look (no sign-in of hers) is route directory
    d.modify([[
dn: cn=admins,ou=groups,dc=example,dc=org
changetype: modify
add: memberUid
memberUid: alice
]])
    orket.sleep(1100) -- recheck_s since her sign-in
    st, doc = req(s, "GET", "/v1/session", alice)
    assert.same({ 200, "admin" }, { st, doc.role })
    local looked = { table.unpack(signed) }
    looked[#looked + 1] = "user_role directory person=alice role=admin"
    looked[#looked + 1] = "member_grant directory person=alice project=default role=admin"
    assert.same(looked, ldap_rows(root))
    s.stop()
  end)
end)
