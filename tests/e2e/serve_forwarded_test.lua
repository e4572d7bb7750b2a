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

-- raw_post(from, port, path, headers, body) -> status: a POST to 127.0.0.1:port from the
-- loopback address from (a client of its own to the proxy in front)
local function raw_post(from, port, path, headers, body)
  local uv = require "luv"
  local c, got, closed = uv.new_tcp(), {}, false
  assert(c:bind(from, 0))
  c:connect("127.0.0.1", port, function(err)
    assert(not err, err)
    c:write(string.format("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\nContent-Length: %d\r\n%s\r\n%s",
      path, port, #body, table.concat(headers, "\r\n") .. "\r\n", body))
    c:read_start(function(_, d) if d then got[#got + 1] = d else closed = true end end)
  end)
  H.wait_for(function() return closed end, "the answer from " .. from, 20000)
  c:close()
  return tonumber(table.concat(got):match("^HTTP/1%.1 (%d+)"))
end

-- nginx as docs/serve.md sets it up, the lines that matter here (plain HTTP on a loopback port)
local function nginx_conf(dir, port, upstream)
  local tmp = dir .. "/tmp"
  return string.format([[
daemon off;
master_process off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;
  server {
    listen 127.0.0.1:%d;
    location / {
      proxy_pass http://127.0.0.1:%d;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering off;
      proxy_read_timeout 60s;
    }
  }
}
]], dir, dir, tmp, tmp, tmp, tmp, tmp, port, upstream)
end

local function caddy_conf(port, upstream)
  return string.format([[
{
  admin off
  auto_https off
}
http://127.0.0.1:%d {
  bind 127.0.0.1
  reverse_proxy 127.0.0.1:%d {
    flush_interval -1
  }
}
]], port, upstream)
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

  -- The proxy in front for real: its clients on 127.0.0.2 and 127.0.0.3 (the proxy itself
  -- reaches the server from 127.0.0.1, the one address listed), each counted by its own
  -- address; the header 127.0.0.2 sends naming 127.0.0.3 is the client's, never read.
  for _, front in ipairs { "nginx", "caddy" } do
    it("counts each client of " .. front .. " by its own address, set up as docs/serve.md says", function()
      if not os.execute("command -v " .. front .. " >/dev/null 2>&1") then
        return pending(front .. " is not installed (scripts/deps.sh --test installs it)")
      end
      local s = served('serve = { trusted_proxies = { "127.0.0.1" } }')
      local pport, pdir = H.free_port(), H.tmpdir()
      local pid = H.front(front, pdir, front == "nginx" and nginx_conf(pdir, pport, s.port) or caddy_conf(pport, s.port))
      local ok, err = pcall(function()
        H.wait_for(function()
          return H.fetch { url = "http://127.0.0.1:" .. pport .. "/health", total_timeout_ms = 2000 } == 200
        end, front .. " to pass requests on (" .. tostring(H.read(pdir .. "/out")) .. ")", 2000)
        local function try(from, password, extra)
          return raw_post(from, pport, "/v1/session", { JSON, extra }, require("cjson").encode { user = "alice",
            password = password })
        end
        assert.equal(401, try("127.0.0.2", "wrong one", "X-Forwarded-For: 127.0.0.3"))
        assert.equal(401, try("127.0.0.2", "wrong two", "X-Forwarded-For: 198.51.100.20"))
        assert.equal(429, try("127.0.0.2", PW, "X-Forwarded-For: 127.0.0.3"))
        assert.equal(200, try("127.0.0.3", PW, "X-Trace: 1"))
        assert.equal(401, try("127.0.0.3", "wrong three", "X-Trace: 1"))
      end)
      os.execute("kill " .. pid)
      assert(ok, err)
      assert.equal(0, s.stop())
      assert.same({ "127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3" }, addrs(s))
    end)
  end

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
    local rest = msg:gsub("^orket%.lua: ", "")
    assert.matches("orket%.lua:%d+: " .. rest:gsub("%p", "%%%0"), r.stdout)
  end)
end)
