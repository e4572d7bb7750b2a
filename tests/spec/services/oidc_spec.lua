-- orket.auth.oidc against a provider stand-in served in this process (orket.c.httpd): the
-- discovery URL of an issuer with a trailing slash, the authorization request it makes, the
-- state spent once and bound to the browser, a begun sign-in that expires, the cap on begun
-- sign-ins, keys fetched again for an unknown kid but not more than once a minute, one fetch
-- of the keys (and of discovery, for sign-ins begun) for concurrent requests and a failed
-- one kept for a while, answers
-- over the cap, and groups made a role.
local cjson = require "cjson"
local httpd = require "orket.c.httpd"
local jose = require "orket.c.jose"
local oidc = require "orket.auth.oidc"
local task = require "orket.task"

local srv_base -- the stand-in's URL, for documents that name it

-- a stand-in provider: routes path -> function(req) -> status, body; counts each path asked
local function provider(routes)
  local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
  local asked = {}
  task.spawn(function()
    while true do
      local req = srv:accept()
      if not req then return end
      task.spawn(function()
        asked[req.path] = (asked[req.path] or 0) + 1
        local route = routes[req.path]
        if not route then return req:respond(404, nil, "{}") end
        local status, body = route(req)
        req:respond(status, { "Content-Type: application/json" }, body)
      end)
    end
  end)
  return srv, "http://127.0.0.1:" .. srv:port(), asked
end

local function discovery(issuer, base)
  return cjson.encode { issuer = issuer, authorization_endpoint = base .. "/auth?tenant=t1",
    token_endpoint = base .. "/token", jwks_uri = base .. "/jwks", code_challenge_methods_supported = { "S256" } }
end

local CFG = { client_id = "orket", redirect_uri = "http://board.example/v1/sign-in/oidc/callback" }
local function cfg(issuer, over)
  local c = { issuer = issuer }
  for k, v in pairs(CFG) do c[k] = v end
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end

describe("orket.auth.oidc", function()
  it("discovers an issuer with a trailing slash, and asks for a code with PKCE, state and nonce", function()
    local issuer
    local srv, base, asked = provider {
      ["/.well-known/openid-configuration"] = function() return 200, discovery(issuer, srv_base) end }
    srv_base = base
    issuer = base .. "/"
    local p = oidc.new(cfg(issuer))
    local url, browser = p:begin()
    assert.is_string(url, browser)
    assert.equal(1, asked["/.well-known/openid-configuration"])
    assert.matches("^" .. base:gsub("%p", "%%%0") .. "/auth%?tenant=t1&", url)
    local q = {}
    for k, v in url:match("%?(.*)$"):gmatch("([^&=]+)=([^&]*)") do q[k] = v end
    assert.same({ "code", "orket", "S256", "openid%20profile%20email" },
      { q.response_type, q.client_id, q.code_challenge_method, q.scope })
    assert.equal("http%3A%2F%2Fboard.example%2Fv1%2Fsign-in%2Foidc%2Fcallback", q.redirect_uri)
    assert.matches("^%x+$", q.state)
    assert.matches("^%x+$", q.nonce)
    assert.equal(43, #q.code_challenge)
    -- kept: a second sign-in does not ask again
    p:begin()
    assert.equal(1, asked["/.well-known/openid-configuration"])
    srv:close()
  end)

  it("spends a state once, binds it to its browser, and lets it expire", function()
    local srv, base = provider {}
    srv_base = base
    local clock = 1000
    local p = oidc.new(cfg(base), {}, function() return clock end)
    p.doc, p.doc_until = cjson.decode(discovery(base, base)), math.huge -- no fetch needed
    local url, browser = p:begin()
    local state = url:match("[?&]state=(%x+)")
    local c, msg, code = p:finish({ state = state, code = "x" }, "another-browser")
    assert.same({ nil, "EAUTH" }, { c, code })
    assert.matches("another browser", msg)
    c, msg = p:finish({ state = state, code = "x" }, browser)
    assert.is_nil(c)
    assert.matches("used already", msg)
    url, browser = p:begin()
    state = url:match("[?&]state=(%x+)")
    clock = clock + oidc.PENDING_S + 1
    c, msg = p:finish({ state = state, code = "x" }, browser)
    assert.is_nil(c)
    assert.matches("took too long", msg)
    -- the provider's own refusal, once state and browser are right
    url, browser = p:begin()
    c, msg = p:finish({ state = url:match("[?&]state=(%x+)"), error = "access_denied" }, browser)
    assert.is_nil(c)
    assert.matches("refused the sign%-in %(access_denied%)", msg)
    -- begun sign-ins are capped: past the cap, the oldest are forgotten, not the memory
    for _ = 1, oidc.MAX_PENDING + 10 do p:begin() end
    assert.is_true(p.npending <= oidc.MAX_PENDING)
    srv:close()
  end)

  it("drops only the oldest begun sign-ins past the cap, and an address's own past its cap", function()
    local srv, base = provider {}
    srv_base = base
    local clock = 1000
    local p = oidc.new(cfg(base), {}, function() return clock end)
    p.doc, p.doc_until = cjson.decode(discovery(base, base)), math.huge
    local function begun(address)
      local url, browser = p:begin(address)
      return { state = url:match("[?&]state=(%x+)"), browser = browser }
    end
    local function alive(b) -- still pending: its callback gets past the state (to the browser check)
      local _, msg = p:finish({ state = b.state, code = "x" }, "not-its-browser")
      return not msg:find("unknown or was used already", 1, true)
    end
    -- a person's sign-in in flight, then a flood from one address: it ends the flood's own
    local victim = begun("192.0.2.1")
    local flood = {}
    for i = 1, oidc.MAX_PENDING + 10 do flood[i] = begun("198.51.100.7") end
    assert.equal(oidc.MAX_PENDING_PER_ADDRESS + 1, p.npending)
    assert.is_true(alive(victim))
    assert.is_false(alive(flood[1]))
    assert.is_true(alive(flood[#flood]))
    -- a flood from many addresses: the oldest go, one at a time, never all of them
    clock = clock + 1
    local first = begun("192.0.2.2")
    local many = {}
    for i = 1, oidc.MAX_PENDING - 1 do many[i] = begun("203.0.113." .. (i % 200)) end
    assert.equal(oidc.MAX_PENDING, p.npending)
    local next_one = many[1]
    many[#many + 1] = begun("203.0.113.250")
    assert.equal(oidc.MAX_PENDING, p.npending)
    assert.is_false(alive(first)) -- the oldest, dropped for the newest
    assert.is_true(alive(next_one))
    -- expired ones go first, before anyone in time is dropped
    clock = clock + oidc.PENDING_S
    local fresh = begun("192.0.2.3")
    assert.equal(1, p.npending)
    assert.is_true(alive(fresh))
    -- without an address (a proxy's, everyone's), only the cap of all applies
    clock = clock + oidc.PENDING_S + 1
    local behind = {}
    for i = 1, oidc.MAX_PENDING_PER_ADDRESS + 5 do behind[i] = begun(nil) end
    assert.equal(oidc.MAX_PENDING_PER_ADDRESS + 5, p.npending)
    assert.is_true(alive(behind[1]))
    -- finished ones leave the count, and their address's
    assert.same({}, p.by_address)
    srv:close()
  end)

  it("fetches the keys again for an unknown kid, at most once a minute", function()
    local key = cjson.decode(jose.keygen("RSA"))
    local pub = cjson.decode(jose.public(cjson.encode(key)))
    pub.kid = "old"
    local srv, base, asked = provider {
      ["/.well-known/openid-configuration"] = function() return 200, discovery(srv_base, srv_base) end,
      ["/jwks"] = function() return 200, cjson.encode { keys = { pub } } end }
    srv_base = base
    local clock = os.time()
    local p = oidc.new(cfg(base), { devs = "operator" }, function() return clock end)
    local function token(kid)
      return jose.sign(cjson.encode(key), "RS256", kid, cjson.encode { iss = base, aud = "orket", sub = "a",
        exp = clock + 60, groups = { "devs" } })
    end
    assert.equal("a", assert(p:bearer(token("old"))).sub)
    assert.equal(1, asked["/jwks"])
    -- the provider rotates: the new kid fetches the set again, and finds it
    pub.kid = "new"
    assert.equal("a", assert(p:bearer(token("new"))).sub)
    assert.equal(2, asked["/jwks"])
    -- a kid it does not have fetches again only after a minute
    local c, msg = p:bearer(token("nobody"))
    assert.is_nil(c)
    assert.matches("'nobody' is not in the provider's JWKS", msg)
    assert.equal(2, asked["/jwks"])
    clock = clock + oidc.REFETCH_S
    assert.is_nil(p:bearer(token("nobody")))
    assert.equal(3, asked["/jwks"])
    assert.same({ name = "a", role = "operator", groups = { "devs" } }, p:person { sub = "A", groups = { "devs" } })
    -- no role: who they are, and whether the claims listed their groups (a leaver's) or left them out
    assert.same({ nil, "none of this person's groups has a role on this server", "EAUTH", { name = "b", listed = false } },
      { p:person { sub = "b" } })
    assert.same({ name = "c", listed = true }, select(4, p:person { sub = "C", groups = setmetatable({}, cjson.array_mt) }))
    assert.same({ name = "d", listed = true }, select(4, p:person { sub = "d", groups = { "leavers" } }))
    assert.same({ name = "e", listed = true }, select(4, p:person { sub = "e", groups = "leavers" }))
    assert.same({ name = "f", listed = false }, select(4, p:person { sub = "f", groups = { team = "x" } }))
    srv:close()
  end)

  it("during an outage, fetches the keys once for concurrent tokens, and not again for FAILED_S", function()
    local key = cjson.decode(jose.keygen("RSA"))
    local srv, base, asked = provider {
      ["/.well-known/openid-configuration"] = function() return 503, "{}" end }
    srv_base = base
    local clock = os.time()
    local p = oidc.new(cfg(base), {}, function() return clock end)
    local token = jose.sign(cjson.encode(key), "RS256", "k1", cjson.encode { iss = base, aud = "orket", sub = "a",
      exp = clock + 60 })
    local function burst(n)
      local ts = {}
      for i = 1, n do ts[i] = task.spawn(function() return p:bearer(token) end) end
      for i = 1, n do
        local ok, c, msg, code = ts[i]:join()
        assert.is_true(ok)
        assert.is_nil(c)
        assert.same({ "the provider refused (HTTP 503)", "EAUTH" }, { msg, code })
      end
    end
    local WELL_KNOWN = "/.well-known/openid-configuration"
    burst(8)
    assert.equal(1, asked[WELL_KNOWN])
    -- within FAILED_S the failure is answered from memory
    clock = clock + oidc.FAILED_S - 1
    burst(8)
    assert.equal(1, asked[WELL_KNOWN])
    -- after it, one fetch again
    clock = clock + 1
    burst(8)
    assert.equal(2, asked[WELL_KNOWN])
    srv:close()
  end)

  -- the browser's paths (begin, finish) read discovery themselves: a failed fetch was not
  -- remembered, so during an outage every sign-in begun was a fetch of its own
  it("during an outage, fetches discovery once for concurrent sign-ins begun, and not again for FAILED_S", function()
    local up = false
    local srv, base, asked = provider {
      ["/.well-known/openid-configuration"] = function()
        if up then return 200, discovery(srv_base, srv_base) end
        return 503, "{}"
      end }
    srv_base = base
    local clock = os.time()
    local p = oidc.new(cfg(base), {}, function() return clock end)
    local function burst(n, want)
      local ts = {}
      for i = 1, n do ts[i] = task.spawn(function() return p:begin("192.0.2." .. i) end) end
      for i = 1, n do
        local ok, url, msg, code = ts[i]:join()
        assert.is_true(ok, url)
        if want then
          assert.matches("^" .. base:gsub("%p", "%%%0") .. "/auth%?tenant=t1&", url)
        else
          assert.is_nil(url)
          assert.same({ "the provider refused (HTTP 503)", "EAUTH" }, { msg, code })
        end
      end
    end
    local WELL_KNOWN = "/.well-known/openid-configuration"
    burst(8)
    assert.equal(1, asked[WELL_KNOWN])
    clock = clock + oidc.FAILED_S - 1
    burst(8)
    assert.equal(1, asked[WELL_KNOWN])
    -- after it, one fetch again, which finds the provider back: kept from then on
    clock = clock + 1
    up = true
    burst(8, true)
    assert.equal(2, asked[WELL_KNOWN])
    burst(8, true)
    assert.equal(2, asked[WELL_KNOWN])
    srv:close()
  end)

  it("refuses a discovery document of another issuer, without endpoints, or over the cap", function()
    local docs = {
      cjson.encode { issuer = "http://elsewhere" },
      "[1, 2]",
      "{" .. string.rep(" ", oidc.MAX_BYTES) .. "}",
    }
    local i = 0
    local srv, base = provider { ["/.well-known/openid-configuration"] = function() return 200, docs[i] end }
    for n, want in ipairs { "another issuer", "not a JSON object", "larger than" } do
      i = n
      local doc, msg, code = oidc.new(cfg(base)):discover()
      assert.is_nil(doc)
      assert.equal("EPROTO", code)
      assert.matches(want, msg)
    end
    docs[4] = cjson.encode { issuer = base, authorization_endpoint = "javascript:alert(1)", token_endpoint = base,
      jwks_uri = base }
    i = 4
    local doc, msg = oidc.new(cfg(base)):discover()
    assert.is_nil(doc)
    assert.matches("no usable authorization_endpoint", msg)
    srv:close()
  end)
end)
