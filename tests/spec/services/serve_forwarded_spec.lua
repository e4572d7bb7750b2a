-- The client behind a trusted reverse proxy (docs/serve.md, "Behind a reverse proxy"):
-- httpd.listen's trusted_proxies, X-Forwarded-For read from the right only when the
-- connection's peer is listed, the peer kept apart (req.peer, the connection caps' address);
-- serve.trusted_proxies in orket.lua checked entry by entry; the sandbox proxy's share of an
-- app counted by the forwarded address; X-Forwarded-Proto believed from a listed peer.
local httpd = require "orket.c.httpd"
local task = require "orket.task"
local uv = require "luv"
local cjson = require "cjson"
local H = require "tests.helpers"
local F = require "tests.fixtures"

-- serve(opts) -> srv, url, seen: a server on loopback whose every request is answered 200
-- with its remote, peer and trusted_peer; seen[path] keeps them by path
local function serve(opts)
  opts.host = opts.host or "127.0.0.1"
  opts.port = 0
  local srv = assert(httpd.listen(opts))
  local seen = {}
  task.spawn(function()
    while true do
      local req = srv:accept()
      if not req then return end
      task.spawn(function()
        seen[req.path] = { remote = req.remote, peer = req.peer, trusted = req.trusted_peer }
        req:respond(200, { "Content-Type: text/plain" }, req.remote)
        req:close()
      end)
    end
  end)
  local shown = opts.host:find(":", 1, true) and ("[" .. opts.host .. "]") or opts.host
  return srv, "http://" .. shown .. ":" .. srv:port(), seen
end

-- the address a request with these header lines is counted under
local function remote_of(url, headers)
  local st, body = H.fetch { url = url .. "/r", headers = headers }
  assert.equal(200, st, body)
  return body
end

local XFF = "X-Forwarded-For: "

-- n header lines X-Forwarded-For: value
local function lines_of(n, value)
  local out = {}
  for i = 1, n do out[i] = XFF .. value end
  return out
end

describe("httpd's trusted proxies", function()
  after_each(H.cleanup)

  it("ignores X-Forwarded-For without trusted proxies, and from a peer not listed", function()
    local srv, url, seen = serve {}
    assert.equal("127.0.0.1", remote_of(url, { XFF .. "203.0.113.7" }))
    assert.same({ remote = "127.0.0.1", peer = "127.0.0.1" }, seen["/r"])
    srv:close()
    srv, url, seen = serve { trusted_proxies = { "10.0.0.0/8", "::1" } }
    assert.equal("127.0.0.1", remote_of(url, { XFF .. "203.0.113.7" }))
    assert.same({ remote = "127.0.0.1", peer = "127.0.0.1" }, seen["/r"])
    srv:close()
  end)

  it("takes the first untrusted address from the right when the peer is trusted", function()
    local srv, url, seen = serve { trusted_proxies = { "127.0.0.1", "10.0.0.0/8", "2001:db8:ffff::/48" } }
    assert.equal("203.0.113.7", remote_of(url, { XFF .. "203.0.113.7" }))
    assert.same({ remote = "203.0.113.7", peer = "127.0.0.1", trusted = true }, seen["/r"])
    -- what the client wrote itself, left of what the proxy added, is never believed
    assert.equal("203.0.113.7", remote_of(url, { XFF .. "198.51.100.1, 203.0.113.7" }))
    assert.equal("203.0.113.7", remote_of(url, { XFF .. "not an address, 999.1.1.1, 203.0.113.7" }))
    -- trusted hops skipped, the IPv4-mapped and IPv6 forms too
    assert.equal("198.51.100.9", remote_of(url, { XFF .. "6.6.6.6, 198.51.100.9, 10.1.2.3, ::ffff:10.9.9.9" }))
    assert.equal("2001:db8::1", remote_of(url, { XFF .. "2001:DB8:0::1, 2001:db8:ffff::5" })) -- as inet_ntop writes it
    -- several lines are one list in order: the last line's last entry is the rightmost
    assert.equal("198.51.100.9", remote_of(url, { XFF .. "6.6.6.6", XFF .. "198.51.100.9, 10.0.0.1" }))
    assert.equal("198.51.100.9", remote_of(url, { XFF .. "6.6.6.6, 198.51.100.9", XFF .. "10.0.0.1" }))
    assert.equal("198.51.100.9", remote_of(url, { XFF .. "6.6.6.6, 198.51.100.9", "x-forwarded-for: 10.0.0.1" }))
    -- empty entries are skipped (a list's rule, RFC 9110 5.6.1)
    assert.equal("198.51.100.9", remote_of(url, { XFF .. "198.51.100.9, , 10.0.0.1," }))
    -- a header the client made long is read only as far as the first untrusted entry
    assert.equal("203.0.113.7", remote_of(url, { XFF .. string.rep("1.1.1.1, ", 1000) .. "203.0.113.7" }))
    srv:close()
  end)

  it("falls back to the peer on an entry that is no address, when all are trusted, or past the cap", function()
    local srv, url, seen = serve { trusted_proxies = { "127.0.0.1", "10.0.0.0/8" } }
    for _, h in ipairs {
      { XFF .. "203.0.113.7, junk" }, -- what a trusted hop vouched for is no address
      { XFF .. "203.0.113.7, 10.0.0.1:8080" }, -- with a port
      { XFF .. "[2001:db8::1]" },
      { XFF .. "fe80::1%eth0" },
      { XFF .. "10.0.0.1, 10.0.0.2" }, -- every entry trusted
      { XFF .. "" },
      {}, -- none at all
      -- 16 entries read (HTTPD_XFF_MAX), all trusted: the one before them is not read
      { XFF .. "203.0.113.7, " .. string.rep("10.0.0.1, ", 16):sub(1, -3) },
      { XFF .. "203.0.113.7", table.unpack(lines_of(16, "10.0.0.1")) },
      { XFF .. "203.0.113.7", table.unpack(lines_of(8, ",")) }, -- empty entries count
    } do
      assert.equal("127.0.0.1", remote_of(url, h), table.concat(h, " | "))
      assert.same({ remote = "127.0.0.1", peer = "127.0.0.1", trusted = true }, seen["/r"])
    end
    -- one less than the cap of trusted entries: the one before them is still read
    assert.equal("203.0.113.7", remote_of(url, { XFF .. "203.0.113.7, " .. string.rep("10.0.0.1, ", 15):sub(1, -3) }))
    srv:close()
  end)

  it("gives a quick answer's function the forwarded address too", function()
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0, trusted_proxies = { "127.0.0.1" } })
    local got
    local via
    srv:quick({ "/q" }, function(_, _, remote, _, _, v)
      got, via = remote, v
      return 200, { "Content-Type: text/plain" }, remote
    end)
    local st, body = H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/q", headers = { XFF .. "1.2.3.4, 203.0.113.7" } }
    assert.same({ 200, "203.0.113.7", "203.0.113.7", "127.0.0.1" }, { st, body, got, via })
    srv:close()
  end)

  it("refuses an entry that is no address or network, naming it", function()
    for entry, why in pairs {
      ["10.0.0.1/8"] = "has bits set past its /8 prefix: the network is 10.0.0.0/8",
      ["2001:db8::1/32"] = "has bits set past its /32 prefix: the network is 2001:db8::/32",
      ["10.0.0.0/33"] = "the prefix after '/' must be a number of bits from 1 to 32",
      ["::/0"] = "the prefix after '/' must be a number of bits from 1 to 128",
      ["0.0.0.0/0"] = "from 1 to 32", ["1.2.3.4/08"] = "from 1 to 32", ["1.2.3.4/"] = "from 1 to 32",
      ["localhost"] = "not a numeric IPv4 or IPv6 address", [" 127.0.0.1"] = "not a numeric",
      ["fe80::1%eth0"] = "not a numeric", ["unix"] = "not a numeric", [""] = "not a numeric",
    } do
      local ok, err = httpd.trusted_proxy(entry)
      assert.is_nil(ok, entry)
      assert.matches(why, err, 1, true)
      local lok, lerr = pcall(httpd.listen, { host = "127.0.0.1", port = 0, trusted_proxies = { "::1", entry } })
      assert.is_false(lok, entry)
      assert.matches("trusted_proxies[2] '" .. entry .. "': ", lerr, 1, true)
      assert.matches(why, lerr, 1, true)
    end
    for _, entry in ipairs { "127.0.0.1", "::1", "10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32", "::ffff:10.0.0.0/104" } do
      assert.is_true(httpd.trusted_proxy(entry), entry)
    end
  end)
end)

describe("orket.lua's serve.trusted_proxies", function()
  after_each(H.cleanup)

  local web = require "orket.serve.web"

  it("is read from orket.lua, and a bad entry refused naming the setting and the entry", function()
    local dir = H.tmpdir()
    assert.same({}, web.settings(dir).trusted_proxies) -- none: X-Forwarded-For is ignored
    H.write(dir .. "/orket.lua", 'serve = { trusted_proxies = { "127.0.0.1", "::1", "10.0.0.0/8" } }\n')
    assert.same({ "127.0.0.1", "::1", "10.0.0.0/8" }, web.settings(dir).trusted_proxies)
    for src, msg in pairs {
      ['{ "127.0.0.1", "10.0.0.1/8" }'] = 'orket.lua: serve.trusted_proxies[2]: "10.0.0.1/8": has bits set past its '
        .. "/8 prefix: the network is 10.0.0.0/8",
      ['{ "proxy.example" }'] = 'orket.lua: serve.trusted_proxies[1]: "proxy.example": not a numeric IPv4 or IPv6 address',
      ['{ "::/0" }'] = 'orket.lua: serve.trusted_proxies[1]: "::/0": the prefix after \'/\' must be a number of bits '
        .. "from 1 to 128",
      ["{ 127 }"] = "orket.lua: serve.trusted_proxies[1]: must be a string",
      ['"127.0.0.1"'] = "orket.lua: serve.trusted_proxies: must be an array of addresses or networks",
      ['{ a = "127.0.0.1" }'] = "orket.lua: serve.trusted_proxies: must be an array (no named fields)",
    } do
      H.write(dir .. "/orket.lua", "serve = { trusted_proxies = " .. src .. " }\n")
      local s, err = web.settings(dir)
      assert.is_nil(s, src)
      assert.matches(msg, err, 1, true)
    end
    local many = {}
    for i = 1, 257 do many[i] = string.format('"10.0.%d.%d"', i // 256, i % 256) end
    H.write(dir .. "/orket.lua", "serve = { trusted_proxies = { " .. table.concat(many, ", ") .. " } }\n")
    assert.matches("serve.trusted_proxies: lists 257 addresses or networks; at most 256", select(2, web.settings(dir)), 1, true)
  end)

  it("is refused by orket.serve before it listens", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    H.write(dir .. "/orket.lua", 'serve = { trusted_proxies = { "10.0.0.1/8" } }\n')
    local db = require("tests.backends").open_store()
    local srv, err, code = require("orket.serve").new { dir = dir, db = db, host = "127.0.0.1", port = 0 }
    db:close()
    assert.is_nil(srv)
    assert.equal("EINVAL", code)
    assert.matches('serve.trusted_proxies[1]: "10.0.0.1/8"', err, 1, true)
  end)
end)

describe("orket.serve behind a trusted proxy", function()
  after_each(H.cleanup)

  -- a local-use server of a store with one healthy sandbox reached at sock (as
  -- serve_proxy_end_spec's), its orket.lua trusting the proxy on loopback
  local function server(sock)
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    H.write(dir .. "/orket.lua", 'serve = { trusted_proxies = { "127.0.0.1" } }\n')
    local db = require("tests.backends").open_store()
    local srv, stop = F.served { dir = dir, db = db, host = "127.0.0.1", port = 0 }
    local pid = uv.os_getpid()
    local ops = require "orket.store.sandboxes"
    local id = ops.insert(db, { target = "main", port = 0, socket = sock, command = "[]", owner_pid = pid,
      owner_start = require("orket.sandboxes.service").start_time(pid) })
    ops.set_status(db, id, "healthy")
    local lines = {}
    srv.log = function(line) lines[#lines + 1] = cjson.decode(line) end
    return srv, "http://127.0.0.1:" .. srv:port() .. "/v1/sandboxes/" .. id .. "/app", lines, stop
  end

  -- One client behind the proxy cannot take all of an app's places: its forwarded address
  -- has its share, as a client reached directly has; another forwarded address still gets
  -- through. (Without the setting every one of them is the proxy's loopback address, held
  -- to no share: the third request would reach the app.)
  it("holds each forwarded address to its share of an app's places", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was, was_each = sandboxes.PROXY_LIVE_MAX, sandboxes.PROXY_LIVE_EACH
    sandboxes.PROXY_LIVE_MAX, sandboxes.PROXY_LIVE_EACH = 4, 2
    local release, arrived = false, 0
    local sock = H.tmpdir() .. "/app.sock"
    local up = assert(httpd.listen { unix = sock })
    task.spawn(function()
      while true do
        local req = up:accept()
        if not req then return end
        task.spawn(function()
          arrived = arrived + 1
          H.wait_for(function() return release end, "the release", 10000)
          req:respond(200, { "Content-Type: text/plain" }, "late")
          req:close()
        end)
      end
    end)
    local ok, e = pcall(function()
      local _, url, lines, stop = server(sock)
      local a, b = { XFF .. "6.6.6.6, 203.0.113.7" }, { XFF .. "203.0.113.8" }
      local got = {}
      task.spawn(function() got[1] = { H.fetch { url = url .. "/1", headers = a } } end)
      task.spawn(function() got[2] = { H.fetch { url = url .. "/2", headers = a } } end)
      H.wait_for(function() return arrived == 2 end, "two requests at the app", 10000)
      local st, body = H.fetch { url = url .. "/3", headers = { XFF .. "198.51.100.1, 203.0.113.7" } }
      assert.equal(503, st, body)
      assert.matches("from this address", cjson.decode(body).error.message, 1, true)
      task.spawn(function() got[3] = { H.fetch { url = url .. "/4", headers = b } } end)
      H.wait_for(function() return arrived == 3 end, "the other address's request at the app", 10000)
      release = true
      H.wait_for(function() return got[1] and got[2] and got[3] end, "the answers", 10000)
      assert.same({ 200, 200, 200 }, { got[1][1], got[2][1], got[3][1] })
      -- each log line names the client, not the proxy, and the proxy as via: the answers
      -- ended in C (the app's pump), the refusal in Lua, and /health answered in C
      assert.equal(200, (H.fetch { url = url:gsub("/v1/sandboxes/.*", "/health"), headers = { XFF .. "203.0.113.9" } }))
      H.wait_for(function() return #lines >= 5 end, "the log lines")
      local addrs, vias = {}, {}
      for _, l in ipairs(lines) do
        if l.addr then addrs[l.addr] = (addrs[l.addr] or 0) + 1 end
        vias[#vias + 1] = l.via
      end
      assert.same({ ["203.0.113.7"] = 3, ["203.0.113.8"] = 1, ["203.0.113.9"] = 1 }, addrs)
      assert.same({ "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1" }, vias)
      stop()
    end)
    sandboxes.PROXY_LIVE_MAX, sandboxes.PROXY_LIVE_EACH = was, was_each
    release = true
    up:close()
    assert(ok, e)
  end)
end)

describe("X-Forwarded-Proto", function()
  after_each(H.cleanup)

  local session = require "orket.serve.session"

  -- this machine's address that is not loopback, the peer of a connection from it to it
  local function own_address()
    for _, list in pairs(uv.interface_addresses()) do
      for _, a in ipairs(list) do
        if a.family == "inet" and not a.internal and not httpd.is_loopback(a.ip) then return a.ip end
      end
    end
  end

  -- A proxy on another machine, listed, is believed as one on loopback always was; one not
  -- listed is not. Its peer stands for that machine: this one's own address that is not
  -- loopback, which a connection from it to it has as its peer.
  it("is believed from a trusted proxy's peer, not from another peer that is not loopback", function()
    local ip = own_address()
    if not ip then
      io.write("\n  skipped: this machine has no address but loopback to connect from\n")
      pending("skipped: this machine has no address but loopback to connect from")
      return
    end
    for _, case in ipairs { { trusted = { ip }, secure = true }, { trusted = {}, secure = false } } do
      local srv = assert(httpd.listen { host = ip, port = 0, trusted_proxies = case.trusted })
      local seen
      task.spawn(function()
        local req = srv:accept()
        seen = { secure = session.secure(req), peer = req.peer, remote = req.remote }
        req:respond(200, { "Content-Type: text/plain" }, "ok")
        req:close()
      end)
      local st = H.fetch { url = "http://" .. ip .. ":" .. srv:port() .. "/", headers = { "X-Forwarded-Proto: https",
        XFF .. "203.0.113.7" } }
      assert.equal(200, st)
      assert.equal(case.secure, seen.secure, ip)
      assert.equal(ip, seen.peer)
      assert.equal(case.secure and "203.0.113.7" or ip, seen.remote)
      srv:close()
    end
  end)
end)
