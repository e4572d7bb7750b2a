-- orket serve behind a reverse proxy it trusts (docs/serve.md, "Behind a reverse proxy"),
-- end to end with the binary on 127.0.0.1, the test standing for the proxy: with
-- serve.trusted_proxies listing loopback, a request's client is the address
-- X-Forwarded-For names, so one client's wrong passwords hold off its own sign-ins, not
-- another's; what a client prepends itself is not believed; without the setting the header
-- is ignored; a bad entry stops the server at its start, naming the setting and the entry.
local H = require "tests.helpers"

local JSON = "Content-Type: application/json"
local PW = "correct horse battery"

-- a project with alice, its orket.lua ending with extra; its server with two failed
-- authentications per address and none back during the test
local function served(extra)
  local dir = H.example("webapp")
  if extra then H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. "\n" .. extra .. "\n") end
  H.ok(H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = PW } }), "users add")
  return H.serve(dir, { env = { ORKET_SERVE_LIMITS = "auth_fail_burst=2,auth_fail_rate=0.0001" } })
end

-- a password sign-in as alice through the proxy, for the client xff names -> its status
local function sign_in(s, password, xff)
  return (H.request(s, "POST", "/v1/session", { JSON, "X-Forwarded-For: " .. xff }, { user = "alice", password = password }))
end

-- the addresses of the log's sign-in lines, in order
local function addrs(s)
  local out = {}
  for line in s.log():gmatch("[^\n]+") do
    local ok, l = pcall(require("cjson").decode, line)
    if ok and type(l) == "table" and l.route == "/v1/session" then out[#out + 1] = l.addr end
  end
  return out
end

describe("orket serve behind a trusted proxy", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("holds off password sign-ins by the forwarded address, not the proxy's", function()
    local s = served('serve = { trusted_proxies = { "127.0.0.1", "::1" } }')
    -- 203.0.113.7 guesses: its two failures are its own, then it is held off
    assert.equal(401, sign_in(s, "wrong one", "203.0.113.7"))
    assert.equal(401, sign_in(s, "wrong two", "203.0.113.7"))
    assert.equal(429, sign_in(s, PW, "203.0.113.7"))
    -- prepending another address changes nothing: the proxy's own entry is the rightmost
    assert.equal(429, sign_in(s, PW, "198.51.100.20, 203.0.113.7"))
    -- another client behind the same proxy signs in, and its wrong password is its own
    assert.equal(200, sign_in(s, PW, "198.51.100.20"))
    assert.equal(401, sign_in(s, "wrong three", "198.51.100.20"))
    assert.equal(200, sign_in(s, PW, "203.0.113.7, 198.51.100.20")) -- 203.0.113.7 claimed by the client
    assert.equal(0, s.stop())
    assert.same({ "203.0.113.7", "203.0.113.7", "203.0.113.7", "203.0.113.7", "198.51.100.20", "198.51.100.20",
      "198.51.100.20" }, addrs(s))
  end)

  -- without the setting, and with one that does not list the peer (a proxy elsewhere)
  for _, extra in ipairs { false, 'serve = { trusted_proxies = { "10.0.0.0/8", "2001:db8::/32" } }' } do
    it("ignores X-Forwarded-For from a peer not listed: every client is the peer's address ("
      .. (extra or "no setting") .. ")", function()
      local s = served(extra or nil)
      assert.equal(401, sign_in(s, "wrong one", "203.0.113.7"))
      assert.equal(401, sign_in(s, "wrong two", "203.0.113.7"))
      assert.equal(429, sign_in(s, PW, "198.51.100.20")) -- the proxy's count, everyone's
      assert.equal(0, s.stop())
      assert.same({ "127.0.0.1", "127.0.0.1", "127.0.0.1" }, addrs(s))
    end)
  end

  it("refuses to start with an entry that is no address or network, naming the setting and the entry", function()
    local dir = H.example("webapp")
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "")
      .. '\nserve = { trusted_proxies = { "127.0.0.1", "10.0.0.1/8" } }\n')
    local msg = 'orket.lua: serve.trusted_proxies[2]: "10.0.0.1/8": has bits set past its /8 prefix: the network is '
      .. "10.0.0.0/8"
    local ok, err = pcall(H.serve, dir)
    assert.is_false(ok)
    assert.matches(msg, err, 1, true)
    -- orket validate says it too, with its line
    local r = H.orket("validate", { cwd = dir })
    assert.is_not.equal(0, r.status)
    assert.matches(msg:gsub("^orket.lua: ", "orket.lua:2: "), r.stdout, 1, true)
  end)
end)
