-- The provider's callback against a provider that signs what the test asks (tests.oidc's
-- forger, on loopback): each sign-in has a cookie of its own, so two begun in one browser
-- (two tabs) both finish, a callback held off by 429 finishes when retried, and the
-- browser never holds more than a few; an ID token longer than a bearer's cap (a person in
-- many groups) is taken; and a person the provider's valid ID token leaves with no role is disabled, their
-- session ended (docs/teams.md, Offboarding), not only refused.
local H = require "tests.helpers"
local cjson = require "cjson"
local oidc = require "tests.oidc"

local req = H.request

local function project(issuer, port)
  local dir = H.example("webapp")
  H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. string.format([[

sign_in = {
  oidc = { issuer = %q, client_id = %q, client_secret_env = "OIDC_SECRET",
    redirect_uri = "http://127.0.0.1:%d/v1/sign-in/oidc/callback", timeout_ms = 2000 },
  roles = { devs = "operator", admins = "admin" },
}
]], issuer, oidc.CLIENT_ID, port))
  return dir
end

-- the orket_oidc_ cookies a jar holds for url's origin
local function sign_in_cookies(jar, url)
  local n = 0
  for name in pairs(jar.by[url:match("^(https?://[^/]+)")] or {}) do
    if name:find("^orket_oidc_%x+$") then n = n + 1 end
  end
  return n
end

describe("the provider's callback", function()
  after_each(function()
    H.kill_servers()
    oidc.stop_all()
    H.cleanup()
  end)

  it("finishes each sign-in begun in one browser, after a 429 too, caps their cookies, takes a long ID token "
    .. "past a bearer's cap, and disables a kept person the provider leaves with no role", function()
    local port = H.free_port()
    local cb = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback"
    local key = oidc.key("k1")
    local p, why = oidc.start { mode = "forger", redirect_uri = cb, keys = { key } }
    if not p then return pending(why) end
    local dir = project(p.issuer, port)
    H.ok(H.orket("users add root --role admin --password-env PW", { cwd = dir, env = { PW = "root-password-1" } }), "add")
    local s = H.serve(dir, { listen = "127.0.0.1:" .. port, env = { OIDC_SECRET = oidc.CLIENT_SECRET } })

    -- begin(jar) -> the state and nonce of a sign-in begun in the jar's browser
    local function begin(jar)
      local st, body, h = oidc.get(jar, s.url .. "/v1/sign-in/oidc")
      assert.equal(303, st, body)
      local state = h.location:match("state=(%x+)")
      assert.matches("orket_oidc_" .. state .. "=%x+; Path=/v1/sign%-in/oidc; HttpOnly; SameSite=Lax", h["set-cookie"])
      return state, h.location:match("nonce=(%x+)")
    end
    -- finish(jar, state, nonce, sub, groups) -> status, body, headers of the callback, the
    -- provider's ID token naming sub in groups
    local function finish(jar, state, nonce, sub, groups, extra)
      local c = { iss = p.issuer, aud = oidc.CLIENT_ID, sub = sub, preferred_username = sub, nonce = nonce,
        groups = groups, exp = os.time() + 300, iat = os.time() }
      for k, v in pairs(extra or {}) do c[k] = v end
      p.answer(oidc.mint(key, c))
      return oidc.get(jar, cb .. "?code=x&state=" .. state)
    end

    -- two tabs of one browser: both sign-ins finish, in either order
    local jar = oidc.jar()
    local s1, n1 = begin(jar)
    local s2, n2 = begin(jar)
    assert.equal(2, sign_in_cookies(jar, s.url))
    local st, body = finish(jar, s2, n2, "boss", { "admins" })
    assert.equal(303, st, body)
    st, body = finish(jar, s1, n1, "boss", { "admins" })
    assert.equal(303, st, body)
    assert.equal(0, sign_in_cookies(jar, s.url))

    -- a browser sent to begin again and again holds a few cookies, the newest
    local last
    for _ = 1, 7 do last = { begin(jar) } end
    assert.equal(4, sign_in_cookies(jar, s.url))
    st, body = finish(jar, last[1], last[2], "boss", { "admins" })
    assert.equal(303, st, body)

    -- a person in 800 groups: an ID token of about 24 KB, past a bearer's 16 KiB, is taken
    -- (the cap past it, said with the size, is orket.auth.jwt's: oidc_leaver_spec)
    local groups = { "devs" }
    for i = 1, 800 do groups[#groups + 1] = "corp-dept-team-group-" .. i end
    local state, nonce = begin(jar)
    st, body = finish(jar, state, nonce, "many", groups)
    assert.equal(303, st, body)
    assert.equal("operator", cjson.decode(body).role)

    -- the address held off: the callback's 429 keeps its cookie, and the retry finishes
    state, nonce = begin(jar)
    local h
    for _ = 1, 12 do H.fetch { url = s.url .. "/v1/board", headers = { "Authorization: Bearer ork_mistyped" } } end
    p.answer("")
    st, body, h = oidc.get(jar, cb .. "?code=x&state=" .. state)
    assert.equal(429, st, body)
    assert.is_nil(h["set-cookie"])
    require("luv").sleep((tonumber(h["retry-after"]) + 1) * 1000)
    st, body, h = finish(jar, state, nonce, "boss", { "admins" })
    assert.equal(303, st, body)
    local session = assert(h["set-cookie"]:match("(orket_session=ors_%x+)"))
    local me
    st, me = req(s, "GET", "/v1/session", { "Cookie: " .. session })
    assert.same({ 200, "boss", "admin" }, { st, me.user.name, me.role })

    -- the provider lists boss in no group now: refused, and disabled (root stays the admin)
    require("luv").sleep(6000) -- a failed authentication allowed again, one per 5 s
    jar = oidc.jar()
    state, nonce = begin(jar)
    st, body = finish(jar, state, nonce, "boss", setmetatable({}, cjson.array_mt))
    assert.equal(401, st, body)
    assert.matches("none of this person's groups has a role on this server; boss was disabled here",
      cjson.decode(body).error.message)
    assert.equal(401, (req(s, "GET", "/v1/session", { "Cookie: " .. session })))
    local users = cjson.decode(H.ok(H.orket("users list --json", { cwd = dir }), "users list").stdout).users
    local off = {}
    for _, u in ipairs(users) do off[u.name] = u.disabled_at ~= nil end
    assert.same({ boss = true, many = false, root = false }, off)
  end)
end)
