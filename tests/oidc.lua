-- tests.oidc: npm's oidc-provider (a certified OpenID Connect provider) started on loopback
-- by a test (tests/oidc/provider.mjs), and a browser's way through its sign-in driven over
-- HTTP with a cookie jar per origin. start{mode=, redirect_uri=, accounts=, jwks=} -> {issuer,
-- port, stop()} | nil, why (npm unreachable: the test is pending with that reason).
local H = require "tests.helpers"
local npm = require "tests.npm"
local cjson = require "cjson"
local jose = require "orket.c.jose"

local M = {}

M.CLIENT_ID, M.CLIENT_SECRET = "orket", "client-secret-for-tests"

local started = {} -- pid -> true: providers no test stopped

--- key(kid) -> a private RSA JWK (table) for the provider to sign with
function M.key(kid)
  local k = cjson.decode(jose.keygen("RSA"))
  k.kid, k.use, k.alg = kid, "sig", "RS256"
  return k
end

function M.start(o)
  local dir, why = npm.ensure()
  if not dir then return nil, "oidc-provider from npm: " .. why end
  local tmp = H.tmpdir()
  local script = dir .. "/oidc-provider-test.mjs"
  -- (in npm's cache, which the files running beside this one share: signin_test runs on
  -- SQLite and on PostgreSQL at once, and a rewrite in place was read half written by the
  -- other's node)
  H.replace(script, assert(H.read(H.ROOT .. "/tests/oidc/provider.mjs")))
  local cfg = { port_file = tmp .. "/port", mode = o.mode or "provider", id_token_ttl = o.id_token_ttl,
    token_file = tmp .. "/id_token",
    client = { client_id = M.CLIENT_ID, client_secret = M.CLIENT_SECRET, redirect_uris = { o.redirect_uri } },
    jwks = { keys = o.keys or { M.key("k1") } }, accounts = o.accounts or { alice = { groups = { "devs" } } } }
  H.write(tmp .. "/config.json", cjson.encode(cfg))
  os.execute(string.format("cd %s && node %s %s >%s/out 2>%s/err & echo $! >%s/pid", H.quote(dir), H.quote(script),
    H.quote(tmp .. "/config.json"), tmp, tmp, tmp))
  local pid = H.wait_for(function() return tonumber((H.read(tmp .. "/pid") or ""):match("%d+")) end, "the provider's pid")
  local port = H.wait_for(function()
    if not H.alive(pid) then error("the provider did not start: " .. tostring(H.read(tmp .. "/err"))) end
    return tonumber(H.read(tmp .. "/port") or "")
  end, "the provider to listen")
  local p = { issuer = "http://127.0.0.1:" .. port, port = port, pid = pid, dir = tmp }
  -- forger: the ID token its token endpoint answers with next
  function p.answer(token) H.write(tmp .. "/id_token", token) end
  started[pid] = true
  function p.stop()
    started[pid] = nil
    os.execute("kill -TERM " .. pid)
    H.wait_for(function() return not H.alive(pid) end, "the provider to stop")
  end
  function p.log() return H.read(tmp .. "/err") or "" end
  return p
end

--- stop_all(): ends every provider a test started and did not stop (one failed half-way)
function M.stop_all()
  for pid in pairs(started) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  started = {}
end

local function origin_of(url) return url:match("^(https?://[^/]+)") end

--- jar() -> a cookie jar: jar:header(url) -> "Cookie: ..." | nil; jar:take(url, headers)
function M.jar()
  local j = { by = {} }
  function j:take(url, h)
    local sc = h and h["set-cookie"]
    if not sc then return end
    local o = origin_of(url)
    self.by[o] = self.by[o] or {}
    -- set-cookie lines arrive joined by ", " (and an Expires date holds one): each cookie
    -- is a name=value that follows the start or ", " and runs to its first ";"
    for piece in (", " .. sc):gmatch(", ([^;]+)") do
      local name, value = piece:match("^%s*([^=%s,]+)=(.*)$")
      if name then self.by[o][name] = value ~= "" and value or nil end
    end
  end
  function j:header(url)
    local c, parts = self.by[origin_of(url)], {}
    for k, v in pairs(c or {}) do parts[#parts + 1] = k .. "=" .. v end
    table.sort(parts)
    return #parts > 0 and ("Cookie: " .. table.concat(parts, "; ")) or nil
  end
  return j
end

--- get(jar, url) -> status, body, headers: one GET with the jar's cookies for url's origin
function M.get(jar, url, extra)
  local headers = { jar:header(url), extra }
  local status, body, h = H.fetch { url = url, headers = headers, total_timeout_ms = 20000 }
  jar:take(url, h)
  return status, body, h or {}
end

local function absolute(base, loc)
  if loc:match("^https?://") then return loc end
  return origin_of(base) .. loc
end

--- through(jar, url, stop_at, user) -> the first redirect to a URL starting with stop_at
--- (orket's callback), following the provider's redirects from url as a browser would; its
--- login signs in user
function M.through(jar, url, stop_at, user)
  for _ = 1, 12 do
    local status, body, h = M.get(jar, url)
    if status < 300 or status >= 400 or not h.location then
      error("the provider answered " .. status .. " at " .. url .. ": " .. body:sub(1, 300))
    end
    local loc = absolute(url, h.location)
    if loc:sub(1, #stop_at) == stop_at then return loc end
    if loc:find("/interaction/", 1, true) then loc = loc .. (loc:find("?", 1, true) and "&" or "?") .. "user=" .. user end
    url = loc
  end
  error("too many redirects through the provider")
end

--- id_token(p, redirect_uri, user) -> an ID token of provider p for user, got as a script
--- would: its own sign-in (PKCE) through the provider, the code traded at the token endpoint
function M.id_token(p, redirect_uri, user)
  local urlencode = require "orket.urlencode"
  local verifier = require("orket.c.crypto").random_id(32)
  local url = p.issuer .. "/auth?" .. urlencode.form { response_type = "code", client_id = M.CLIENT_ID,
    redirect_uri = redirect_uri, scope = "openid profile", state = "test-state", nonce = "test-nonce",
    code_challenge = jose.pkce_challenge(verifier), code_challenge_method = "S256" }
  local back = M.through(M.jar(), url, redirect_uri, user)
  local code = require("orket.serve.router").decode(assert(back:match("[?&]code=([^&]+)")), true)
  local status, body = H.fetch { url = p.issuer .. "/token", method = "POST",
    headers = { "Content-Type: application/x-www-form-urlencoded" }, total_timeout_ms = 20000,
    body = urlencode.form { grant_type = "authorization_code", code = code, redirect_uri = redirect_uri,
      client_id = M.CLIENT_ID, client_secret = M.CLIENT_SECRET, code_verifier = verifier } }
  assert(status == 200, "the token endpoint answered " .. status .. ": " .. body)
  return cjson.decode(body).id_token
end

--- mint(key, claims) -> a token signed with key (a private JWK table, as M.key makes) under
--- its kid: what the provider would sign, with the claims a test wants
function M.mint(key, claims)
  return assert(jose.sign(cjson.encode(key), "RS256", key.kid, cjson.encode(claims)))
end

return M
