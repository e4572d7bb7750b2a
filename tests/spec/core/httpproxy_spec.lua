-- req:proxy (core/httpproxy.c): the pump from an upstream on a unix socket to a server
-- request, with no Lua per chunk. The upstream is orket.c.httpd on a unix socket, or a raw
-- luv pipe server where it must misbehave; clients are orket.c.http and raw luv sockets.
local httpd = require "orket.c.httpd"
local http = require "orket.c.http"
local F = require "tests.fixtures"
local H = require "tests.helpers"
local task = require "orket.task"
local uv = require "luv"
local rt = require "orket.c.runtime"

-- A front server whose every request is proxied to the upstream at sock with opts (its
-- own fields win), the outcomes kept in order
local function front(sock, opts)
  local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
  local outcomes = {}
  task.spawn(function()
    while true do
      local req = srv:accept()
      if not req then return end
      task.spawn(function()
        local o = { url = "http://app" .. req.path, unix_socket = sock, method = req.method,
          total_timeout_ms = 30000 }
        for k, v in pairs(opts or {}) do o[k] = v end
        if req.method == "POST" then o.body = req:body() end
        local status, note, bytes, timed_out, full, phase = req:proxy(o)
        -- timed_out and full only when true: the outcomes of the other tests are compared whole
        outcomes[#outcomes + 1] = { status = status, note = note, bytes = bytes, timed_out = timed_out or nil,
          full = full or nil, phase = phase }
        if not status then req:respond(502, {}, "failed: " .. tostring(note)) end
        req:close()
      end)
    end
  end)
  return srv, "http://127.0.0.1:" .. srv:port(), outcomes
end

-- An upstream on a unix socket whose every request runs handler(req) in a task
local function upstream(handler)
  local sock = H.tmpdir() .. "/app.sock"
  local srv = assert(httpd.listen { unix = sock })
  task.spawn(function()
    while true do
      local req = srv:accept()
      if not req then return end
      task.spawn(function()
        handler(req)
        req:close()
      end)
    end
  end)
  return srv, sock
end

-- An upstream that answers each connection with text, then closes it
local function raw_upstream(text)
  local sock = H.tmpdir() .. "/raw.sock"
  local srv = uv.new_pipe(false)
  assert(srv:bind(sock))
  srv:listen(16, function()
    local c = uv.new_pipe(false)
    srv:accept(c)
    c:read_start(function(_, d)
      if d and d:find("\r\n\r\n", 1, true) then
        c:read_stop()
        c:write(text, function() c:close() end)
      end
    end)
  end)
  return srv, sock
end

-- Writes text to the front on one connection and returns every byte it answers, once it
-- closes the connection
local function exchange(port, text)
  local c = uv.new_tcp()
  local got, closed = {}, false
  c:connect("127.0.0.1", port, function(e)
    assert(not e, e)
    c:write(text)
    c:read_start(function(_, d) if d then got[#got + 1] = d else closed = true end end)
  end)
  H.wait_for(function() return closed end, "the answers' end", 5000)
  c:close()
  return table.concat(got)
end

local function fetch(url, o)
  o = o or {}
  local r <close> = assert(http.request { url = url, method = o.method, body = o.body, total_timeout_ms = 30000 })
  local status, headers = r:headers()
  assert(status, headers)
  local parts = {}
  while true do
    local ev, e = r:read()
    -- o.broken: an answer expected to end in an error, returned 4th
    if ev == nil and o.broken then return status, headers, table.concat(parts), e end
    assert(ev ~= nil, e)
    if not ev then break end
    for _, p in ipairs(ev) do parts[#parts + 1] = p end
  end
  return status, headers, table.concat(parts)
end

-- What req:proxy raises for each of options, on one request of a server of its own
local function proxy_errors(options)
  local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
  local errs = {}
  task.spawn(function()
    local req = srv:accept()
    for _, o in ipairs(options) do
      local ok, e = pcall(req.proxy, req, o)
      errs[#errs + 1] = not ok and e or "accepted"
    end
    req:respond(200, {}, "")
    req:close()
  end)
  fetch("http://127.0.0.1:" .. srv:port() .. "/")
  srv:close()
  return errs
end

describe("req:proxy", function()
  after_each(function() H.cleanup() end)

  it("answers with the upstream's status, the headers passed, its own lines and the body whole", function()
    local app, sock = upstream(function(req)
      req:respond(201, { "Content-Type: application/json", "ETag: \"v1\"", "Set-Cookie: a=1",
        "X-Secret: no" }, '{"path":"' .. req.path .. '"}')
    end)
    local srv, base, outcomes = front(sock, { lines = { "X-Mark: yes" }, pass = { "content-type", "etag" } })
    local status, headers, body = fetch(base .. "/x/y")
    assert.equal(201, status)
    assert.equal('{"path":"/x/y"}', body)
    assert.equal("application/json", headers["content-type"])
    assert.equal('"v1"', headers.etag)
    assert.equal("yes", headers["x-mark"])
    assert.is_nil(headers["set-cookie"]) -- no cookies= given: none crosses
    assert.is_nil(headers["x-secret"])
    assert.equal(tostring(#body), headers["content-length"]) -- whole: sent with its length
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.same({ status = 201, bytes = #body }, outcomes[1])
    srv:close()
    app:close()
  end)

  -- pass_in: the request's own headers of those names go to the app, picked in C as
  -- req.headers has them (a repeated name joined), before the headers given
  it("passes the request's headers named in pass_in, and no other, before the lines given", function()
    local seen
    local app, sock = upstream(function(req)
      seen = req.headers
      req:respond(200, { "Content-Type: text/plain" }, "ok")
    end)
    local srv, _, outcomes = front(sock, { pass_in = { "accept", "x-twice", "range" }, headers = { "X-Given: 1" } })
    local got = exchange(srv:port(), "GET /h HTTP/1.1\r\nHost: x\r\nACCEPT: text/plain\r\nX-Twice: a\r\n"
      .. "Authorization: Bearer secret\r\nCookie: c=1\r\nx-twice: b\r\nConnection: close\r\n\r\n")
    assert.matches("^HTTP/1.1 200", got)
    assert.equal("text/plain", seen.accept)
    assert.equal("a, b", seen["x-twice"])
    assert.equal("1", seen["x-given"])
    assert.is_nil(seen.range) -- not sent: no line
    assert.is_nil(seen.authorization)
    assert.is_nil(seen.cookie)
    H.wait_for(function() return outcomes[1] end, "the outcome")
    srv:close()
    app:close()
  end)

  it("passes the upstream's cookies host-only, never those of the names refused", function()
    local app, sock = upstream(function(req)
      req:respond(200, { "Set-Cookie: a=1; Domain=example.com; Path=/", "Set-Cookie: orket_app=stolen",
        "Set-Cookie: b=2;domain=x;Secure", "Set-Cookie: c=3; Expires=Thu, 01 Jan 2037 00:00:00 GMT; HttpOnly" }, "ok")
    end)
    local srv, base = front(sock, { cookies = { "orket_app" } })
    local _, headers = fetch(base .. "/")
    -- each of the app's lines on its own (an Expires date's comma splits nothing); this
    -- client joins them with ", "
    assert.equal("a=1; Path=/, b=2;Secure, c=3; Expires=Thu, 01 Jan 2037 00:00:00 GMT; HttpOnly",
      headers["set-cookie"])
    srv:close()
    app:close()
  end)

  it("leaves out a passed header with an empty value, and answers", function()
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVary: \r\nContent-Type: text/plain\r\n\r\nok")
    local srv, base, outcomes = front(sock, { pass = { "vary", "content-type" } })
    local status, headers, body = fetch(base .. "/")
    assert.equal(200, status)
    assert.equal("ok", body)
    assert.equal("text/plain", headers["content-type"])
    assert.is_nil(headers.vary)
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.same({ status = 200, bytes = 2 }, outcomes[1])
    srv:close()
    app:close()
  end)

  it("leaves out a passed header whose value holds a control byte, and passes HTAB", function()
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nLocation: /x\vY\fZ\127\r\n"
      .. "Content-Type: text/html\27[31m\r\nVary: a,\tb\r\nETag: \"e\"\r\n\r\nok")
    local srv, base, outcomes = front(sock, { pass = { "location", "content-type", "vary", "etag" } })
    local status, headers, body = fetch(base .. "/")
    assert.equal(200, status)
    assert.equal("ok", body)
    assert.is_nil(headers.location)
    assert.is_nil(headers["content-type"])
    assert.equal("a,\tb", headers.vary)
    assert.equal('"e"', headers.etag)
    H.wait_for(function() return outcomes[1] end, "the outcome")
    srv:close()
    app:close()
  end)

  -- obs-fold (RFC 9112 5.2): a proxy replaces each fold with a space or refuses the answer;
  -- cut at the fold, an app's cookie would lose its HttpOnly, Secure and SameSite
  it("joins a folded header's lines with one space, never making a continuation a header", function()
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
      .. "Set-Cookie: sid=abc; Path=/;\r\n HttpOnly; Secure;\r\n\t SameSite=Strict\r\n"
      .. "Content-Security-Policy: default-src 'self';  \r\n   frame-ancestors 'none'\r\n"
      .. "Vary: a\r\n X-Injected: yes\r\nETag:\r\n \"e\"\r\nX-Blank: b\r\n \t \r\n"
      .. "Content-Type: text/plain\r\n x\1y\r\n\r\nok")
    local srv, base, outcomes = front(sock, { cookies = {}, pass = { "content-security-policy", "vary", "etag",
      "x-blank", "content-type", "x-injected" } })
    local status, headers, body = fetch(base .. "/")
    assert.equal(200, status)
    assert.equal("ok", body)
    assert.equal("sid=abc; Path=/; HttpOnly; Secure; SameSite=Strict", headers["set-cookie"])
    assert.equal("default-src 'self'; frame-ancestors 'none'", headers["content-security-policy"])
    assert.equal("a X-Injected: yes", headers.vary) -- a continuation's "Name:" is more of the value
    assert.is_nil(headers["x-injected"])
    assert.equal('"e"', headers.etag) -- the fold of an empty value: no space before it
    assert.equal("b", headers["x-blank"])
    assert.is_nil(headers["content-type"]) -- the control byte of its continuation
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.same({ status = 200, bytes = 2 }, outcomes[1])
    srv:close()
    app:close()
  end)

  it("counts a folded header's lines toward the 64 KiB of an answer's headers", function()
    local lines = {}
    for i = 1, 20 do lines[i] = " " .. string.rep("v", 4000) end
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVary: a\r\n"
      .. table.concat(lines, "\r\n") .. "\r\n\r\nok")
    local srv, base, outcomes = front(sock, { pass = { "vary" } })
    local status, _, body = fetch(base .. "/")
    assert.equal(502, status)
    assert.matches("response headers exceed 64 KiB", body)
    assert.is_nil(outcomes[1].status)
    srv:close()
    app:close()
  end)

  -- a passed name is matched whole: an app's header longer than a pass name with the same
  -- first letters is not that name (and is compared without reading past the shorter one:
  -- the sanitizer build reads out of bounds otherwise)
  it("matches passed names whole, for an app's header longer than one of them", function()
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Security-Policy: x\r\n"
      .. "Content-Encoding: identity\r\nContent-Type: text/plain\r\nContent-R: no\r\n\r\nok")
    local srv, base, outcomes = front(sock, { pass = { "content-type", "content-r", "content-range" } })
    local status, headers, body = fetch(base .. "/")
    assert.equal(200, status)
    assert.equal("ok", body)
    assert.equal("text/plain", headers["content-type"])
    assert.equal("no", headers["content-r"])
    assert.is_nil(headers["content-security-policy"])
    assert.is_nil(headers["content-encoding"])
    H.wait_for(function() return outcomes[1] end, "the outcome")
    srv:close()
    app:close()
  end)

  -- A proxy under a path prefix: the upstream's own URLs in Location lead back through it
  it("makes a Location to the upstream's own URLs one under location_to", function()
    local opts = { pass = { "location" }, location_from = "http://sandbox/", location_to = "/p/3/app/" }
    for given, want in pairs { ["http://sandbox/a?b=1"] = "/p/3/app/a?b=1", ["/x/y"] = "/p/3/app/x/y", ["/"] = "/p/3/app/",
      ["//other.example/x"] = "//other.example/x", ["/\\other.example"] = "/\\other.example", ["rel/x"] = "/p/3/app/rel/x",
      ["http://other.example/x"] = "http://other.example/x", ["http://sandboxes/x"] = "http://sandboxes/x",
      -- made "/p/3/app//x" these would be harmless, but under a location_to "/" they would
      -- lead a browser to host x ("/\\x" and "/<TAB>/x" read as "//x"): passed as they are
      ["http://sandbox//evil.example/"] = "http://sandbox//evil.example/",
      ["http://sandbox/\\evil.example/"] = "http://sandbox/\\evil.example/",
      ["http://sandbox/\t/evil.example/"] = "http://sandbox/\t/evil.example/",
      ["/\t/evil.example/"] = "/\t/evil.example/",
      -- dot segments are removed and never climb above the app's root, so that a browser
      -- following the Location stays with the app (a backslash and "%2e" read as it reads them)
      ["/../../../../v1/keys"] = "/p/3/app/v1/keys", ["http://sandbox/./../../v1/board?x=/../"] = "/p/3/app/v1/board?x=/../",
      ["/a/b/../c/./d"] = "/p/3/app/a/c/d", ["/a/.."] = "/p/3/app/", ["/a/."] = "/p/3/app/a/",
      ["/a\\..\\..\\v1"] = "/p/3/app/v1", ["/%2e%2E/%2e./.%2E/v1#/../x"] = "/p/3/app/v1#/../x",
      ["/x/..//evil.example/"] = "/p/3/app/evil.example/", ["/a//b/...x/..."] = "/p/3/app/a//b/...x/...",
      -- a browser drops a URL's tabs before it reads it: ".<TAB>." is ".."
      ["/.\t./.\t./v1/keys"] = "/p/3/app/v1/keys", ["/%2e\t%2E/x\ty"] = "/p/3/app/xy" } do
      local app, sock = raw_upstream("HTTP/1.1 302 Found\r\nLocation: " .. given .. "\r\nContent-Length: 0\r\n\r\n")
      local srv, base = front(sock, opts)
      local status, headers = fetch(base .. "/")
      assert.equal(302, status)
      assert.equal(want, headers.location, given)
      srv:close()
      app:close()
    end
    -- without them, as it is
    local app, sock = raw_upstream("HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")
    local srv, base = front(sock, { pass = { "location" } })
    assert.equal("/x", select(2, fetch(base .. "/")).location)
    srv:close()
    app:close()
    for _, bad in ipairs { { location_from = "http://sandbox/" }, { location_to = "/p/" },
      { location_from = "", location_to = "/p/" }, { location_from = "http://sandbox/", location_to = "/p/\r\nX: 1" } } do
      bad.unix_socket = sock
      local ok, e = pcall(httpd.proxy_kept, bad)
      assert.is_false(ok, next(bad))
      assert.matches("location_from and location_to must be given together, as non-empty strings without "
        .. "control bytes", e, 1, true)
    end
  end)

  -- Under a path prefix a client resolves a relative Location against the proxied URL and
  -- follows it with its key: "../../../cards/X" led it from /v1/sandboxes/N/app/x onto the
  -- API's own routes. A relative reference is resolved against the app's request instead
  -- (RFC 3986 5.2, dot segments stopping at the app's root) and put under location_to; a URL
  -- of this server's own host (Host, X-Forwarded-Host) passes only under location_to, and
  -- one that leads elsewhere on it is answered 502 by the pump, saying why
  it("resolves a relative Location against the app's request and refuses one onto the server's routes", function()
    local opts = { pass = { "location", "link" }, location_from = "http://sandbox/", location_to = "/p/3/app/",
      location_links = true }
    local function via(given, host, also)
      local app, sock = raw_upstream("HTTP/1.1 307 Temporary Redirect\r\nLocation: " .. given
        .. "\r\nContent-Length: 0\r\n\r\n")
      -- the app is asked for the path and query the client gave (as orket.serve.sandboxes asks it)
      local o = { url = "http://app/a/b?x=1" }
      for k, v in pairs(opts) do o[k] = v end
      local srv, base, outcomes = front(sock, o)
      local r <close> = assert(http.request { url = base .. "/a/b?x=1", method = "POST", body = "{}",
        headers = { "Host: " .. (host or "orket.example:8443"), also or "X-Forwarded-Host: board.example, other" },
        total_timeout_ms = 30000 })
      local status, headers = r:headers()
      local parts = {}
      while true do
        local ev, e = r:read()
        assert(ev ~= nil, e)
        if not ev then break end
        for _, p in ipairs(ev) do parts[#parts + 1] = p end
      end
      srv:close()
      app:close()
      return status, headers, table.concat(parts), outcomes[1]
    end
    for given, want in pairs { ["c"] = "/p/3/app/a/c", ["./c/../d"] = "/p/3/app/a/d",
      ["../../../cards/START-1/comments"] = "/p/3/app/cards/START-1/comments",
      ["../../v1/keys"] = "/p/3/app/v1/keys", ["%2e%2e/%2E%2e/%2e%2E/v1/keys"] = "/p/3/app/v1/keys",
      ["..\\..\\..\\v1\\keys"] = "/p/3/app/v1/keys", [".\t./.\t./.\t./v1"] = "/p/3/app/v1",
      ["\\v1\\keys"] = "/p/3/app/v1/keys", ["http:../../../v1/keys"] = "/p/3/app/v1/keys",
      ["HTTPS:x"] = "/p/3/app/a/x", ["?page=2"] = "/p/3/app/a/b?page=2", ["#top"] = "/p/3/app/a/b?x=1#top",
      ["c?r=../../x#../y"] = "/p/3/app/a/c?r=../../x#../y",
      -- another host's, another scheme's: as they are
      ["//other.example/v1/keys"] = "//other.example/v1/keys", ["https://other.example/x"] = "https://other.example/x",
      ["http://orket.example:8444/v1/keys"] = "http://orket.example:8444/v1/keys", ["mailto:a@b.example"] = "mailto:a@b.example",
      -- this server's own URL under the app's route: its path, dot segments removed
      ["http://orket.example:8443/p/3/app/x?y=1"] = "/p/3/app/x?y=1", ["//Orket.Example.:8443/p/3/app/./x"] = "/p/3/app/x",
      ["https://board.example/p/3/app/x"] = "/p/3/app/x" } do
      local status, headers = via(given)
      assert.equal(307, status, given)
      assert.equal(want, headers.location, given)
    end
    -- this server's own URLs elsewhere: a 502 naming why, no Location
    for _, given in ipairs { "http://orket.example:8443/v1/keys", "//orket.example:8443/v1/cards/X/comments",
      "http://orket.example:8443/p/3/app/../../v1/keys", "http://orket.example:8443/p/3/app/%2e%2e/%2E%2E/v1",
      "http://someone@orket.example:8443/v1/keys", "HTTP://ORKET.EXAMPLE:08443/v1", "http:\\\\orket.example:8443\\v1",
      "\\\\orket.example:8443/v1", "http:///orket.example:8443/v1", "http://orket.example:8443",
      "http://orket.ex%61mple:8443/v1", "http://board.example/v1/keys", "https://board.example:443/v1/keys",
      "http://orket.example:8443/p/3/app" } do
      local status, headers, body, outcome = via(given)
      assert.equal(502, status, given)
      assert.is_nil(headers.location, given)
      assert.equal("application/json", headers["content-type"])
      assert.matches('"code":"bad_gateway"', body, 1, true)
      assert.matches("the app's redirect leads out of its route onto this server's own", body, 1, true)
      assert.equal(502, outcome.status)
      assert.matches("its Location is not passed on", outcome.note, 1, true)
    end
    -- an address in another of the forms a browser reads: the same host
    local status = via("http://2130706433:8443/v1/keys", "127.0.0.1:8443")
    assert.equal(502, status)
    status = via("http://0x7f.1:8443/v1/keys", "127.0.0.1:8443")
    assert.equal(502, status)
    -- an IPv6 address in another spelling, and a name beyond ASCII (a client maps fullwidth
    -- letters and the ideographic full stop to ASCII before it connects: it may be this
    -- server), are taken for this server's: they passed unchanged, and a client followed them
    status = via("http://[0:0:0:0:0:0:0:1]:8443/v1/keys", "[::1]:8443")
    assert.equal(502, status)
    for _, given in ipairs { "http://\xef\xbd\x8frket.example:8443/v1/keys", "http://orket\xe3\x80\x82example:8443/v1/keys",
      "http://%EF%BD%8Frket.example:8443/v1/keys" } do
      assert.equal(502, (via(given)), given)
    end
    -- the name a front proxy says it was reached by in RFC 7239's Forwarded, as a token or quoted
    assert.equal(502, (via("http://front.example/v1/keys", "10.0.0.5:8443", 'Forwarded: for=192.0.2.1;host="front.example";proto=http')))
    assert.equal(502, (via("https://front.example/v1/keys", "10.0.0.5:8443", "Forwarded: host=front.example, host=other.example")))
    -- another host's, in those spellings too, as it is
    local st2, h2 = via("http://[::2]:8443/x", "[::1]:8443")
    assert.same({ 307, "http://[::2]:8443/x" }, { st2, h2.location })
    -- a Link's URLs are judged the same; one onto this server's routes leaves the Link out
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nLink: <../../x.css>; rel=preload, <http://orket.example:8443/v1/keys>; "
      .. "rel=next\r\nContent-Length: 0\r\n\r\n")
    local srv, base = front(sock, opts)
    local r <close> = assert(http.request { url = base .. "/a/b", headers = { "Host: orket.example:8443" } })
    local st, headers = r:headers()
    assert.equal(200, st)
    assert.is_nil(headers.link)
    srv:close()
    app:close()
    app, sock = raw_upstream("HTTP/1.1 200 OK\r\nLink: <../../x.css>; rel=preload; anchor=\"..\\/..\\/y\"\r\n"
      .. "Content-Length: 0\r\n\r\n")
    srv, base = front(sock, opts)
    local r2 <close> = assert(http.request { url = base .. "/a/b", headers = { "Host: orket.example:8443" } })
    st, headers = r2:headers()
    assert.equal('</p/3/app/x.css>; rel=preload; anchor="/p/3/app/y"', headers.link)
    srv:close()
    app:close()
  end)

  -- A Location longer than a header's 4 KiB (an OAuth or SAML redirect's) passes up to 16
  -- KiB; a longer one is a 502 saying so, not a redirect without its Location
  it("passes a Location up to 16 KiB and answers 502 for a longer one", function()
    local opts = { pass = { "location" }, location_from = "http://sandbox/", location_to = "/p/3/app/" }
    local long = "/cb?state=" .. string.rep("a", 6000)
    local app, sock = raw_upstream("HTTP/1.1 303 See Other\r\nLocation: " .. long .. "\r\nContent-Length: 0\r\n\r\n")
    local srv, base = front(sock, opts)
    local status, headers = fetch(base .. "/")
    assert.equal(303, status)
    assert.equal("/p/3/app" .. long, headers.location)
    srv:close()
    app:close()
    app, sock = raw_upstream("HTTP/1.1 303 See Other\r\nLocation: /cb?state=" .. string.rep("a", 17000)
      .. "\r\nContent-Length: 0\r\n\r\n")
    local outcomes
    srv, base, outcomes = front(sock, opts)
    local st, hs, body = fetch(base .. "/")
    assert.equal(502, st)
    assert.is_nil(hs.location)
    assert.matches("the app's redirect has a Location of 17010 bytes, longer than the 16384 passed on", body, 1, true)
    assert.equal(502, outcomes[1].status)
    srv:close()
    app:close()
  end)

  -- The upstream's other names for itself (the address it listens on), as location_from:
  -- a start, its origin alone, without case; another port or host passes as it is
  it("makes a Location to any of location_also's starts one under location_to", function()
    local opts = { pass = { "location" }, location_from = "http://sandbox/", location_to = "/p/3/app/",
      location_also = { "http://127.0.0.1:8080/", "http://localhost:8080/" } }
    for given, want in pairs { ["http://127.0.0.1:8080/a?b=1"] = "/p/3/app/a?b=1",
      ["http://localhost:8080/x"] = "/p/3/app/x", ["HTTP://LocalHost:8080/x"] = "/p/3/app/x",
      ["http://127.0.0.1:8080"] = "/p/3/app/", ["http://127.0.0.1:8080?q=1"] = "/p/3/app/?q=1",
      ["http://sandbox"] = "/p/3/app/", ["http://sandbox#top"] = "/p/3/app/#top",
      ["http://127.0.0.1:80800/x"] = "http://127.0.0.1:80800/x", ["http://127.0.0.1:8081/x"] = "http://127.0.0.1:8081/x",
      ["http://127.0.0.1:8080.evil/x"] = "http://127.0.0.1:8080.evil/x", ["/y"] = "/p/3/app/y",
      -- what would be another host's URL after a location_to "/" (an open redirect on an
      -- app's own origin) passes as it is, whatever location_to is
      ["http://127.0.0.1:8080//evil.example/x"] = "http://127.0.0.1:8080//evil.example/x",
      ["http://127.0.0.1:8080/\\evil.example/x"] = "http://127.0.0.1:8080/\\evil.example/x",
      ["http://127.0.0.1:8080/\t/evil.example/x"] = "http://127.0.0.1:8080/\t/evil.example/x" } do
      local app, sock = raw_upstream("HTTP/1.1 302 Found\r\nLocation: " .. given .. "\r\nContent-Length: 0\r\n\r\n")
      local srv, base = front(sock, opts)
      local status, headers = fetch(base .. "/")
      assert.equal(302, status)
      assert.equal(want, headers.location, given)
      srv:close()
      app:close()
    end
    for _, c in ipairs {
      { { location_also = { "http://127.0.0.1:8080/" } }, "location_also goes with location_from and location_to" },
      { { location_from = "http://sandbox/", location_to = "/p/", location_also = { "" } },
        "location_also%[1%] must be a non%-empty string without control bytes" },
      { { location_from = "http://sandbox/", location_to = "/p/", location_also = { "http://a/\27" } },
        "location_also%[1%] must be a non%-empty string without control bytes" },
      { { location_from = "http://sandbox/", location_to = "/p/", location_also = { 3 } }, "location_also%[1%] must be a string" },
      -- a NUL would cut the start short: "http://" would match every http URL
      { { location_from = "http://sandbox/", location_to = "/p/", location_also = { "http://\0x/" } },
        "location_also%[1%] must be a non%-empty string without control bytes" },
      { { location_from = "http://sandbox/\0", location_to = "/p/" }, "location_from and location_to must be given together" },
    } do
      local ok, e = pcall(httpd.proxy_kept, c[1])
      assert.is_false(ok)
      assert.matches(c[2], e)
    end
  end)

  -- RFC 8288: a Link's URI-references are made as a Location is, under location_links: a
  -- "/style.css" preloaded by a page under a path prefix is the app's, not the server root's.
  -- Its grammar read whole: a quoted string's commas and semicolons are its own, an anchor
  -- parameter is a URI-reference too; one not of the grammar, or of too many links, is left
  -- out; without location_links, as the app wrote it
  it("makes a Link's URI-references under location_to as a Location's, by RFC 8288's grammar", function()
    local opts = { pass = { "link" }, location_from = "http://sandbox/", location_to = "/p/3/app/",
      location_also = { "http://127.0.0.1:8080/" }, location_links = true }
    local many = {}
    for i = 1, 33 do many[i] = "</" .. i .. ".css>; rel=preload" end
    for _, c in ipairs {
      { "</style.css>; rel=preload; as=style", "</p/3/app/style.css>; rel=preload; as=style" },
      { "<http://sandbox/next?p=2>; rel=\"next, really; yes\", </a.js>;rel=preload",
        "</p/3/app/next?p=2>; rel=\"next, really; yes\", </p/3/app/a.js>;rel=preload" },
      { "<http://127.0.0.1:8080/x>; rel=\"a\\\"b, </not-a-link>\", <https://other.example/x>; rel=alternate",
        "</p/3/app/x>; rel=\"a\\\"b, </not-a-link>\", <https://other.example/x>; rel=alternate" },
      { "<rel.css>; rel=stylesheet; anchor=\"/#top\"", "</p/3/app/rel.css>; rel=stylesheet; anchor=\"/p/3/app/#top\"" },
      { "<rel.css>; Anchor = /here", "</p/3/app/rel.css>; Anchor = /p/3/app/here" },
      { ", </a>,, </b> ; rel=x ,", ", </p/3/app/a>,, </p/3/app/b> ; rel=x ," },
      -- the Location's guard: what would name another host under a location_to "/"
      { "<//evil.example/>; rel=x, </\\evil.example/>, <http://sandbox//evil.example/>",
        "<//evil.example/>; rel=x, </\\evil.example/>, <http://sandbox//evil.example/>" },
      { table.concat(many, ", ", 1, 32), (table.concat(many, ", ", 1, 32):gsub("</", "</p/3/app/")) },
      -- left out
      { table.concat(many, ", "), nil },
      { "/style.css; rel=preload", nil },
      { "</style.css; rel=preload", nil },
      { "</a>; rel=\"open", nil },
      { "</a> x", nil },
      { "</a>; =x", nil },
      { "</a>; rel=", nil },
      -- a backslash is no token's (RFC 9110 5.6.2): taken as written, "\\/x" is "//x"
      { "</a>; anchor=\\/evil.example/", nil },
      { "</a>; rel=next\\x", nil },
    } do
      local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nLink: " .. c[1] .. "\r\nContent-Length: 2\r\n\r\nok")
      local srv, base = front(sock, opts)
      local status, headers, body = fetch(base .. "/")
      assert.equal(200, status)
      assert.equal("ok", body)
      assert.equal(c[2], headers.link, c[1])
      srv:close()
      app:close()
    end
    -- without location_links (an app on its own origin): as written
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nLink: </style.css>; rel=preload, <http://127.0.0.1:8080/x>\r\n"
      .. "Content-Length: 0\r\n\r\n")
    local srv, base = front(sock, { pass = { "link" }, location_from = "http://sandbox/", location_to = "/",
      location_also = { "http://127.0.0.1:8080/" } })
    assert.equal("</style.css>; rel=preload, <http://127.0.0.1:8080/x>", select(2, fetch(base .. "/")).link)
    srv:close()
    app:close()
    for _, bad in ipairs { { { location_links = true }, "location_links goes with location_from and location_to" },
      { { location_from = "http://sandbox/", location_to = "/p/", location_links = 1 }, "location_links must be a boolean" } } do
      local ok, e = pcall(httpd.proxy_kept, bad[1])
      assert.is_false(ok)
      assert.matches(bad[2], e, 1, true)
    end
  end)

  -- An anchor in a quoted string is its value (RFC 9110 5.6.4: a quoted-pair "\\c" is c),
  -- judged as a Location is: an escape neither hides the app's own URL nor slips one past
  -- the guard; what follows the start passes as the app escaped it
  it("reads a quoted anchor's quoted-pairs before making it the client's", function()
    local opts = { pass = { "link" }, location_from = "http://sandbox/", location_to = "/p/3/app/",
      location_also = { "http://127.0.0.1:8080/" }, location_links = true }
    for _, c in ipairs {
      { [[</a>; anchor="\/x"]], [[</p/3/app/a>; anchor="/p/3/app/x"]] },
      { [[</a>; anchor="http:\/\/sandbox\/x\"y"; rel=next]], [[</p/3/app/a>; anchor="/p/3/app/x\"y"; rel=next]] },
      { [[</a>; anchor="\h\t\t\p://127.0.0.1:8080"]], [[</p/3/app/a>; anchor="/p/3/app/"]] },
      -- a quoted comma and semicolon stay the anchor's, its quote escaped
      { [[</a>; anchor="/q\", </b>; x", </c>]], [[</p/3/app/a>; anchor="/p/3/app/q\", </b>; x", </p/3/app/c>]] },
      -- the guard: what would name another host under a location_to "/", as written
      { [[</a>; anchor="\/\/evil.example/"]], [[</p/3/app/a>; anchor="\/\/evil.example/"]] },
      { [[</a>; anchor="/\\evil.example/"]], [[</p/3/app/a>; anchor="/\\evil.example/"]] },
      { [[</a>; anchor="http://sandbox/\/evil.example/"]], [[</p/3/app/a>; anchor="http://sandbox/\/evil.example/"]] },
      -- and what would to a client that only strips the quotes: the rest as the app escaped
      -- it, "\evil" after the "/" a browser's "//evil"; an escape further on is no matter
      { [[</a>; anchor="http://sandbox/\evil.example/x"]], [[</p/3/app/a>; anchor="http://sandbox/\evil.example/x"]] },
      { [[</a>; anchor="\/\evil.example/x"]], [[</p/3/app/a>; anchor="\/\evil.example/x"]] },
      { [[</a>; anchor="\h\t\t\p:\/\/sandbox\/\x"]], [[</p/3/app/a>; anchor="\h\t\t\p:\/\/sandbox\/\x"]] },
      { [[</a>; anchor="http://127.0.0.1:8080\?q"]], [[</p/3/app/a>; anchor="http://127.0.0.1:8080\?q"]] },
      { [[</a>; anchor="\h\t\t\p://sandbox/x\\"]], [[</p/3/app/a>; anchor="/p/3/app/x\\"]] },
      -- another host's, escaped or not, and another parameter's value: as written
      { [[</a>; anchor="https:\/\/other.example/x"; title="\/x"]], [[</p/3/app/a>; anchor="https:\/\/other.example/x"; title="\/x"]] },
    } do
      local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nLink: " .. c[1] .. "\r\nContent-Length: 2\r\n\r\nok")
      local srv, base = front(sock, opts)
      local status, headers, body = fetch(base .. "/")
      assert.equal(200, status)
      assert.equal("ok", body)
      assert.equal(c[2], headers.link, c[1])
      srv:close()
      app:close()
    end
  end)

  -- A Link's anchor parameters are rewritten as its links are, and capped as they are: one
  -- link may carry many; and a location_to holding a Link's own delimiters is refused, as
  -- it would add links or parameters of its own
  it("caps a Link's anchors as its links, and refuses a location_to of Link's delimiters", function()
    local opts = { pass = { "link" }, location_from = "http://sandbox/", location_to = "/p/3/app/",
      location_links = true }
    local anchors = {}
    for i = 1, 33 do anchors[i] = "anchor=/" .. i end
    local at32 = "</a>; " .. table.concat(anchors, "; ", 1, 32)
    for _, c in ipairs {
      { at32, (at32:gsub("/(%w+)", "/p/3/app/%1")) },
      { "</a>; " .. table.concat(anchors, "; "), nil },
      { "</a>; anchor=/1, </b>; " .. table.concat(anchors, "; ", 2, 33), nil }, -- counted across links
    } do
      local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nLink: " .. c[1] .. "\r\nContent-Length: 2\r\n\r\nok")
      local srv, base = front(sock, opts)
      local status, headers, body = fetch(base .. "/")
      assert.equal(200, status)
      assert.equal("ok", body)
      assert.equal(c[2], headers.link, c[1])
      srv:close()
      app:close()
    end
    for _, to in ipairs { "/p>, <//evil/", "/p<", "/p\"", "/p,", "/p;rel=x", "/p x", "/p\\" } do
      local ok, e = pcall(httpd.proxy_kept, { location_from = "http://sandbox/", location_to = to, location_links = true })
      assert.is_false(ok, to)
      assert.matches("location_to holds one of < > \" , ; \\ or a space", e, 1, true)
      -- without location_links it is a Location's only, written whole
      assert.truthy(httpd.proxy_kept { location_from = "http://sandbox/", location_to = to })
    end
  end)

  -- RFC 9110 15: a status is 100-599; any other the app gives is a bad gateway's
  it("answers 502 for an app's status past 599", function()
    for _, code in ipairs { 600, 999 } do
      local app, sock = raw_upstream("HTTP/1.1 " .. code .. " Odd\r\nContent-Length: 2\r\n\r\nok")
      local srv, base, outcomes = front(sock)
      local status = fetch(base .. "/")
      assert.equal(502, status)
      H.wait_for(function() return outcomes[1] end, "the outcome")
      assert.equal(502, outcomes[1].status)
      srv:close()
      app:close()
    end
  end)

  it("leaves the answer to its caller when the server refuses the app's headers", function()
    -- a header name longer than the server takes (127 bytes) is refused by it
    local long = string.rep("x", 200)
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" .. long .. ": v\r\n\r\nok")
    local srv, base, outcomes = front(sock, { pass = { long } })
    local status, _, body = fetch(base .. "/")
    assert.equal(502, status)
    assert.matches("headers were refused", body)
    assert.is_nil(outcomes[1].status)
    assert.matches("headers were refused", outcomes[1].note)
    srv:close()
    app:close()
  end)

  -- serve asks the app for GET in place of HEAD: whatever comes, the client gets headers
  -- alone, with the app's length, and its connection stays in step for the next request
  local function head_then_get(big, length)
    local app, sock = upstream(function(req)
      if req.path == "/big" then big(req)
      else req:respond(200, {}, "second") end
    end)
    local srv, _, outcomes = front(sock, { method = "GET", pass = { "content-type" } })
    local c = uv.new_tcp()
    local got, closed = {}, false
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:write("HEAD /big HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      c:read_start(function(_, d) if d then got[#got + 1] = d else closed = true end end)
    end)
    H.wait_for(function() return closed end, "the answers' end", 5000)
    c:close()
    local text = table.concat(got)
    local head, rest = text:match("^(HTTP/1.1 200 [^\r]*\r\n.-\r\n\r\n)(.*)$")
    assert.is_string(head, text:sub(1, 300))
    assert.matches("\r\nContent%-Length: " .. length .. "\r\n", head)
    assert.matches("\r\ncontent%-type: text/plain\r\n", head:lower())
    assert.matches("^HTTP/1.1 200 [^\r]*\r\n.-\r\n\r\nsecond$", rest)
    H.wait_for(function() return outcomes[2] end, "the outcomes")
    assert.same({ status = 200, bytes = 0 }, outcomes[1])
    srv:close()
    app:close()
  end

  it("answers HEAD with the headers alone, never a streamed body", function()
    head_then_get(function(req) req:respond(200, { "Content-Type: text/plain" }, string.rep("h", 300000)) end, 300000)
  end)

  -- the GET's length is unknown, so no Content-Length is sent (0 would be a false one), nor
  -- a chunk: the connection closes after the head, the next request left unanswered
  it("answers HEAD of an answer of unknown length without a length, never a chunk", function()
    local app, sock = upstream(function(req)
      local st = assert(req:stream(200, { "Content-Type: text/plain" }))
      st:send(string.rep("h", 300000))
      st:close()
    end)
    local srv, _, outcomes = front(sock, { method = "GET" })
    local text = exchange(srv:port(), "HEAD /big HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert.matches("^HTTP/1.1 200 [^\r]*\r\n.-\r\n\r\n$", text)
    assert.is_nil(text:lower():find("content-length", 1, true), text)
    assert.is_nil(text:lower():find("transfer-encoding", 1, true), text)
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.same({ status = 200, bytes = 0 }, outcomes[1])
    srv:close()
    app:close()
  end)

  -- RFC 9110 8.6: a 304's Content-Length is that of the body a 200 would have, so the app's
  -- is passed, never a 0 of this hop's; without one, none (and no chunk); a 204 has none
  it("passes a 304's Content-Length from the app, or none, and none on a 204", function()
    local function answer(head)
      local app, sock = raw_upstream(head)
      local srv = front(sock, { pass = { "etag" } })
      -- the same answer twice on one connection: the first must keep it in step
      local text = exchange(srv:port(), "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        .. "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      srv:close()
      app:close()
      return text
    end
    local text = answer("HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"v\"\r\n\r\n")
    local first, second = text:match("^(HTTP/1.1 304 [^\r]*\r\n.-\r\n\r\n)(HTTP/1.1 304 [^\r]*\r\n.-\r\n\r\n)$")
    assert.is_string(first, text)
    assert.matches("\r\nContent%-Length: 1234\r\n", first)
    assert.matches("\r\nContent%-Length: 1234\r\n", second)
    text = answer("HTTP/1.1 304 Not Modified\r\nETag: \"v\"\r\n\r\n")
    assert.matches("^HTTP/1.1 304 [^\r]*\r\n.-\r\n\r\n$", text)
    assert.matches('\r\netag: "v"\r\n', text:lower())
    assert.is_nil(text:lower():find("content-length", 1, true), text)
    assert.is_nil(text:lower():find("transfer-encoding", 1, true), text)
    text = answer("HTTP/1.1 204 No Content\r\n\r\n")
    assert.matches("^HTTP/1.1 204 [^\r]*\r\n.-\r\n\r\nHTTP/1.1 204 [^\r]*\r\n.-\r\n\r\n$", text)
    assert.is_nil(text:lower():find("content-length", 1, true), text)
  end)

  it("leaves the answer to its caller when the headers passed back exceed 32 KiB", function()
    local hs = {}
    for i = 1, 15 do hs[i] = "Set-Cookie: c" .. i .. "=" .. string.rep("v", 4000) end
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" .. table.concat(hs, "\r\n")
      .. "\r\n\r\nok")
    local srv, base, outcomes = front(sock, { cookies = {} })
    local status, _, body = fetch(base .. "/")
    assert.equal(502, status)
    assert.matches("headers passed back exceed 32 KiB", body)
    assert.is_nil(outcomes[1].status)
    srv:close()
    app:close()
  end)

  -- the transfer pauses at its read-ahead, so an answer longer than it is never complete
  -- when its headers arrive: it is streamed, whatever whole_max says, with the app's
  -- Content-Length (a client shows a download's progress), its first part reaching the
  -- client while the app still holds the rest
  it("streams an answer past the read-ahead with its length, so serve's whole_max is no more than it", function()
    local sock = H.tmpdir() .. "/held.sock"
    local app, conn = uv.new_pipe(false), nil
    assert(app:bind(sock))
    app:listen(16, function()
      conn = uv.new_pipe(false)
      app:accept(conn)
      conn:read_start(function(_, d)
        if d and d:find("\r\n\r\n", 1, true) then
          conn:read_stop()
          conn:write("HTTP/1.1 200 OK\r\nContent-Length: 102400\r\n\r\n" .. string.rep("q", 40960))
        end
      end)
    end)
    local srv, _, outcomes = front(sock, { read_ahead = 32 * 1024, whole_max = 256 * 1024 })
    local c = uv.new_tcp()
    local got, closed = {}, false
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      c:read_start(function(_, d) if d then got[#got + 1] = d else closed = true end end)
    end)
    local function body_so_far()
      local text = table.concat(got)
      local at = text:find("\r\n\r\n", 1, true)
      return at and text:sub(at + 4), at and text:sub(1, at + 1)
    end
    H.wait_for(function() local b = body_so_far() return b and #b >= 40960 end, "the first part, the rest held")
    local _, head = body_so_far()
    assert.matches("^HTTP/1.1 200", head)
    assert.matches("\r\nContent%-Length: 102400\r\n", head)
    assert.is_nil(head:lower():find("transfer-encoding", 1, true), head)
    assert.is_false(closed)
    conn:write(string.rep("q", 102400 - 40960))
    H.wait_for(function() return closed end, "the answer's end")
    c:close()
    assert.equal(string.rep("q", 102400), (body_so_far()))
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.same({ status = 200, bytes = 102400 }, outcomes[1])
    local sandboxes = require "orket.serve.sandboxes"
    assert.is_true(sandboxes.WHOLE_MAX <= sandboxes.APP_AHEAD)
    conn:close()
    srv:close()
    app:close()
  end)

  -- An answer of a known length is over once all of it is sent: the server then ends the
  -- client's request, which may come before the transfer has said it ended (its last
  -- piece handed over as it resumed from a pause); that is no client that left
  it("counts a streamed answer whole once its length is sent, before the transfer says it ended", function()
    local size = 2 * 1024 * 1024
    local app, sock = upstream(function(req) req:respond(200, { "Content-Type: application/octet-stream" },
      string.rep("z", size)) end)
    local srv, base, outcomes = front(sock, { read_ahead = 4 * 1024, queue_high = 8 * 1024 })
    for i = 1, 6 do
      local status, headers, body = fetch(base .. "/" .. i)
      assert.equal(200, status)
      assert.equal(tostring(size), headers["content-length"])
      assert.equal(size, #body)
      H.wait_for(function() return outcomes[i] end, "the outcome")
      assert.same({ status = 200, bytes = size }, outcomes[i])
    end
    srv:close()
    app:close()
  end)

  -- RFC 9112 6.3: a Transfer-Encoding frames the answer, not a Content-Length beside it,
  -- which is not passed on; an answer of neither is streamed chunked
  it("streams chunked an answer framed by its Transfer-Encoding, or by nothing", function()
    local chunk = string.rep("w", 40000)
    for _, text in ipairs { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      .. string.format("%x", #chunk) .. "\r\n" .. chunk .. "\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" .. chunk } do
      local app, sock = raw_upstream(text)
      local srv, base, outcomes = front(sock, { read_ahead = 16 * 1024 })
      local status, headers, body = fetch(base .. "/")
      assert.equal(200, status)
      assert.equal(#chunk, #body)
      assert.is_nil(headers["content-length"])
      assert.equal("chunked", headers["transfer-encoding"])
      H.wait_for(function() return outcomes[1] end, "the outcome")
      assert.same({ status = 200, bytes = #chunk }, outcomes[1])
      srv:close()
      app:close()
    end
  end)

  it("forwards a request's body", function()
    local app, sock = upstream(function(req)
      req:respond(200, {}, req.method .. " " .. assert(req:body()))
    end)
    local srv, base = front(sock)
    local status, _, body = fetch(base .. "/form", { method = "POST", body = "a=1&b=2" })
    assert.equal(200, status)
    assert.equal("POST a=1&b=2", body)
    srv:close()
    app:close()
  end)

  it("streams a long answer in order, within its queues", function()
    local total = 4 * 1024 * 1024
    local app, sock = upstream(function(req)
      local s = assert(req:stream(200, { "Content-Type: text/plain" }))
      local i = 0
      while i * 1024 < total do
        local piece = string.format("%08d", i) .. string.rep("x", 1016)
        if s:queued() > 64 * 1024 and s:drain(32 * 1024) then return end
        assert(s:send(piece))
        i = i + 1
      end
      s:close()
    end)
    local srv, base, outcomes = front(sock)
    local status, headers, body = fetch(base .. "/big")
    assert.equal(200, status)
    assert.is_nil(headers["content-length"])
    assert.equal(total, #body)
    for i = 0, total // 1024 - 1, 997 do
      assert.equal(string.format("%08d", i), body:sub(i * 1024 + 1, i * 1024 + 8))
    end
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.same({ status = 200, bytes = total }, outcomes[1])
    srv:close()
    app:close()
  end)

  -- A client that does not read costs about the read-ahead and the client's queue: the
  -- upstream is held back (its own stream waits), the client is never dropped for it (the
  -- front's stream cap, 1 MiB, is never reached), and it gets everything once it reads.
  local function holds_back(opts)
    local total, sent = 16 * 1024 * 1024, 0
    local app, sock = upstream(function(req)
      local s = assert(req:stream(200, {}))
      local piece = string.rep("r", 8192)
      while sent < total do
        if s:queued() > 32 * 1024 and s:drain(16 * 1024) then return end
        if not s:send(piece) then return end
        sent = sent + #piece
      end
      s:close()
    end)
    local srv, _, outcomes = front(sock, opts)
    local c = uv.new_tcp()
    local got, closed = 0, false
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:write("GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    end)
    H.wait_for(function() return sent > 0 end, "the upstream's first bytes")
    orket.sleep(500)
    -- the socket buffers on both hops hold some MiB at most; never the whole answer
    assert.is_true(sent < total // 2, "the upstream sent " .. sent)
    assert.is_nil(outcomes[1])
    c:read_start(function(_, d)
      if d then got = got + #d else closed = true end
    end)
    H.wait_for(function() return closed end, "the answer's end", 2000)
    c:close()
    assert.is_true(got > total, "got " .. got) -- the body, its chunk framing and headers
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.same({ status = 200, bytes = total }, outcomes[1])
    srv:close()
    app:close()
  end

  it("holds the upstream back for a client that does not read, and drops neither", function()
    holds_back { read_ahead = 32 * 1024, queue_high = 128 * 1024 }
  end)

  it("holds the upstream back with the default read-ahead and queue", function()
    holds_back {}
  end)

  -- The total timeout is the app's own time: a slow client's reading, the transfer paused
  -- for it, is not counted (the app answers at once; the client takes it after the
  -- timeout has passed twice over)
  it("counts none of a slow client's reading toward the app's total timeout", function()
    local total = 16 * 1024 * 1024 -- more than the socket buffers on both hops hold
    local app, sock = upstream(function(req) F.stream_at_once(req, total, "t") end)
    -- (the app's own time: as long as the 16 MiB take with a client that reads, which the
    -- tests above give 2 s)
    local srv, _, outcomes = front(sock, { total_timeout_ms = 2000 })
    local c = uv.new_tcp()
    local got, closed, asked = 0, false, false
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:write("GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", function() asked = true end)
    end)
    H.wait_for(function() return asked end, "the request sent")
    orket.sleep(4200)
    assert.is_nil(outcomes[1]) -- held back, not cut
    c:read_start(function(_, d)
      if d then got = got + #d else closed = true end
    end)
    H.wait_for(function() return closed end, "the answer's end", 10000)
    c:close()
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.same({ status = 200, bytes = total }, outcomes[1])
    assert.is_true(got > total, "got " .. got) -- the body, its chunk framing and headers
    srv:close()
    app:close()
  end)

  -- A client that never reads is closed by the server's own idle timeout (no byte either
  -- way), which the proxy's stream does not hold off, and the app's transfer goes with it
  it("lets the server's idle timeout close a client that never reads", function()
    local app_done
    local app, sock = upstream(function(req)
      F.stream_at_once(req, 64 * 1024 * 1024, "n") -- never sent whole
      app_done = true
    end)
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0, idle_timeout_s = 1 })
    local outcome
    task.spawn(function()
      local req = srv:accept()
      outcome = { req:proxy { url = "http://app/", unix_socket = sock, total_timeout_ms = 60000 } }
      req:close()
    end)
    local c = uv.new_tcp()
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:write("GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
    end)
    H.wait_for(function() return outcome end, "the outcome", 10000)
    assert.equal(200, outcome[1])
    assert.equal("the client left", outcome[2])
    H.wait_for(function() return app_done end, "the upstream's end")
    c:close()
    srv:close()
    app:close()
  end)

  it("stops the upstream's transfer when the client leaves mid-answer", function()
    local app_done
    local app, sock = upstream(function(req)
      local s = assert(req:stream(200, {}))
      local piece = string.rep("l", 8192)
      for _ = 1, 100000 do -- 800 MB: never sent whole
        if s:queued() > 32 * 1024 and s:drain(16 * 1024) then break end
        if not s:send(piece) then break end
      end
      app_done = true
    end)
    local srv, _, outcomes = front(sock)
    local c = uv.new_tcp()
    local got = 0
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:write("GET /leave HTTP/1.1\r\nHost: x\r\n\r\n")
      c:read_start(function(_, d) if d then got = got + #d end end)
    end)
    H.wait_for(function() return got > 256 * 1024 end, "a part of the answer")
    c:close()
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.equal(200, outcomes[1].status)
    assert.equal("the client left", outcomes[1].note)
    -- the upstream sees its own client (the pump's transfer) gone
    H.wait_for(function() return app_done end, "the upstream's end")
    srv:close()
    app:close()
  end)

  -- An app that takes requests and never answers them (asked: how many it read)
  local function mute_app()
    local sock = H.tmpdir() .. "/mute.sock"
    local app = uv.new_pipe(false)
    local seen = { asked = false, ends = 0 }
    assert(app:bind(sock))
    app:listen(16, function()
      local c = uv.new_pipe(false)
      app:accept(c)
      c:read_start(function(_, d)
        if d then seen.asked = true else seen.ends = seen.ends + 1; c:close() end
      end)
    end)
    return app, sock, seen
  end

  -- A client that asks the mute app, sends early (when given) its next request, then
  -- leaves: the pump must say 499 and stop the transfer to the app
  local function left_before_answer(early)
    local app, sock, seen = mute_app()
    local srv, _, outcomes = front(sock)
    local c = uv.new_tcp()
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    end)
    H.wait_for(function() return seen.asked end, "the request at the app")
    if early then
      c:write(early)
      rt.sleep(100) -- the watch sees those bytes first
    end
    c:close()
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.equal(499, outcomes[1].status)
    H.wait_for(function() return seen.ends > 0 end, "the transfer's end at the app")
    srv:close()
    app:close()
  end

  -- libmicrohttpd does not look at a request's connection while it waits for its answer:
  -- the client's leaving is watched for, and stops the transfer at once, not when (if
  -- ever) the app answers
  it("stops the upstream's transfer when the client leaves before the answer", function()
    left_before_answer()
  end)

  -- a client that sent its next request early (pipelining) and then left is still seen
  -- leaving: its bytes waiting on the socket must not end the watch
  it("stops the upstream's transfer when the client sends its next request early, then leaves", function()
    left_before_answer("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
  end)

  -- a connection's watch is kept between its requests: a client whose first request was
  -- answered, and which leaves before its second one is, is still seen leaving
  it("stops the upstream's transfer when a kept-alive client leaves before its second answer", function()
    local sock = H.tmpdir() .. "/once.sock"
    local app = uv.new_pipe(false)
    local seen = { asked = 0, ends = 0 }
    assert(app:bind(sock))
    app:listen(16, function()
      local c = uv.new_pipe(false)
      app:accept(c)
      c:read_start(function(_, d) -- answers the first request, then none
        if not d then
          seen.ends = seen.ends + 1
          c:close()
          return
        end
        local _, n = d:gsub("\r\n\r\n", "")
        for _ = 1, n do
          seen.asked = seen.asked + 1
          if seen.asked == 1 then c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") end
        end
      end)
    end)
    local srv, _, outcomes = front(sock)
    local c, got = uv.new_tcp(), ""
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:read_start(function(_, d) if d then got = got .. d end end)
      c:write("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
    end)
    H.wait_for(function() return got:find("\r\n\r\nok", 1, true) end, "the first answer")
    assert.matches("^HTTP/1.1 200", got)
    c:write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    H.wait_for(function() return seen.asked == 2 end, "the second request at the app")
    c:close()
    H.wait_for(function() return outcomes[2] end, "the second outcome")
    assert.equal(200, outcomes[1].status)
    assert.equal(499, outcomes[2].status)
    H.wait_for(function() return seen.ends > 0 end, "the transfer's end at the app")
    srv:close()
    app:close()
  end)

  -- the server closed (serve's drain over) while the app had not answered: libmicrohttpd
  -- was given 503 for it, and that is what the pump says was sent (serve logs it)
  it("says 503 was sent when the server closes while the app has not answered", function()
    local app, sock, seen = mute_app()
    local srv, url, outcomes = front(sock)
    local got
    task.spawn(function() got = { fetch(url .. "/slow") } end)
    H.wait_for(function() return seen.asked end, "the request at the app")
    srv:close()
    H.wait_for(function() return outcomes[1] and got end, "the outcome and the answer")
    assert.equal(503, got[1])
    assert.equal(503, outcomes[1].status)
    app:close()
  end)

  -- a broken-off answer ends without the chunked terminator: the client sees it cut
  it("cuts the stream when the upstream dies mid-body, and says so", function()
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nContent-Type: text/plain\r\n\r\n"
      .. string.rep("d", 1000))
    local srv, base, outcomes = front(sock)
    local status, _, body, e = fetch(base .. "/dies", { broken = true })
    assert.equal(200, status)
    assert.equal(string.rep("d", 1000), body)
    assert.is_string(e)
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.equal(200, outcomes[1].status)
    assert.matches("^the app's answer broke off: ", outcomes[1].note)
    srv:close()
    app:close()
  end)

  it("cuts an answer over max_bytes, and says so", function()
    local app, sock = upstream(function(req)
      req:respond(200, {}, string.rep("m", 256 * 1024))
    end)
    local srv, base, outcomes = front(sock, { max_bytes = 64 * 1024 })
    local status, _, body, e = fetch(base .. "/huge", { broken = true })
    assert.equal(200, status)
    assert.is_true(#body <= 64 * 1024, "got " .. #body)
    assert.is_string(e)
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.matches("broke off", outcomes[1].note)
    srv:close()
    app:close()
  end)

  -- RFC 9112 6.3: Content-Length lines that differ make the app's framing invalid; a proxy
  -- answers 502 rather than pass on a body of one length or the other
  it("leaves the answer to its caller when the upstream's Content-Length lines differ", function()
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nokokok")
    local srv, base, outcomes = front(sock)
    local status, _, body = fetch(base .. "/")
    assert.equal(502, status)
    assert.matches("Content-Length twice, differing", body, 1, true)
    assert.is_nil(outcomes[1].status)
    srv:close()
    app:close()
    -- one line that is not one number (RFC 9112 6.3: invalid, as lines that differ):
    -- libcurl would read its first digits
    for _, cl in ipairs { "2, 5", "2abc", "2 5", "+2" } do
      local app1, sock1 = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: " .. cl .. "\r\n\r\nokokok")
      local srv1, base1, outcomes1 = front(sock1)
      local st1, _, body1 = fetch(base1 .. "/")
      assert.equal(502, st1, cl)
      assert.matches("Content-Length that is not one number", body1, 1, true)
      assert.is_nil(outcomes1[1].status)
      srv1:close()
      app1:close()
    end
    -- the same length twice (RFC 9112 6.3 lets it pass), or listed twice in one line, and a
    -- Transfer-Encoding's answer, wherever the Transfer-Encoding comes among the lines
    for _, text in ipairs { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 2, 02 \r\n\r\nok",
      "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n2\r\nok\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2abc\r\n\r\n2\r\nok\r\n0\r\n\r\n" } do
      local app2, sock2 = raw_upstream(text)
      local srv2, base2 = front(sock2)
      local st2, _, body2 = fetch(base2 .. "/")
      assert.equal(200, st2, text)
      assert.equal("ok", body2)
      srv2:close()
      app2:close()
    end
  end)

  -- past 18 digits libcurl drops the length and reads to the close: the app's 4 bytes of a
  -- declared 10^20 would pass as a whole chunked answer
  it("leaves the answer to its caller when the upstream's Content-Length is too large to read", function()
    local app, sock = raw_upstream("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nokok")
    local srv, base, outcomes = front(sock)
    local status, _, body = fetch(base .. "/")
    assert.equal(502, status)
    assert.matches("Content-Length too large to read", body, 1, true)
    assert.is_nil(outcomes[1].status)
    srv:close()
    app:close()
  end)

  -- An app that sends more than its Content-Length while its answer streams: the client
  -- gets the declared bytes, framed by them, and its next request on the connection is
  -- answered
  it("passes no more than the app's Content-Length of a streamed answer, and answers the next request", function()
    -- the proxy hangs up while this writes: that must not end the test's process
    local sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
    local sock = H.tmpdir() .. "/over.sock"
    local app, conns = uv.new_pipe(false), {}
    assert(app:bind(sock))
    app:listen(16, function()
      local c = uv.new_pipe(false)
      app:accept(c)
      conns[#conns + 1] = c
      c:read_start(function(_, d)
        if not (d and d:find("\r\n\r\n", 1, true)) then return end
        c:read_stop()
        if d:find("GET /second", 1, true) then
          c:write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond", function() c:close() end)
          return
        end
        c:write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc")
        local t = uv.new_timer()
        t:start(200, 0, function() -- the answer streams meanwhile; then 2 bytes and 8 more
          t:close()
          c:write("de-EXTRA-", function() c:close() end)
        end)
      end)
    end)
    local srv, _, outcomes = front(sock)
    local c = uv.new_tcp()
    local got = {}
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:write("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
      c:read_start(function(_, d) if d then got[#got + 1] = d end end)
    end)
    H.wait_for(function() return table.concat(got):find("\r\n\r\nabcde", 1, true) end, "the first answer")
    H.wait_for(function() return outcomes[1] end, "the first outcome")
    assert.same({ status = 200, bytes = 5 }, outcomes[1])
    c:write("GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    H.wait_for(function() return table.concat(got):find("second$") end, "the second answer")
    local text = table.concat(got)
    local at = text:find("HTTP/1.1 ", 2, true)
    local first, second = text:sub(1, at - 1), text:sub(at)
    assert.matches("\r\nContent%-Length: 5\r\n", first)
    assert.matches("\r\n\r\nabcde$", first) -- nothing of the extra bytes
    assert.matches("^HTTP/1.1 200", second)
    assert.matches("\r\n\r\nsecond$", second)
    c:close()
    srv:close()
    app:close()
    sigpipe:close()
  end)

  it("leaves the answer to its caller when the upstream fails before answering", function()
    local srv, base, outcomes = front(H.tmpdir() .. "/nobody.sock", { connect_timeout_ms = 2000 })
    local status, _, body = fetch(base .. "/")
    assert.equal(502, status)
    assert.matches("^failed: ", body)
    assert.is_nil(outcomes[1].status)
    assert.is_string(outcomes[1].note)
    assert.is_nil(outcomes[1].timed_out) -- refused at once: no timeout of the upstream's
    srv:close()
  end)

  -- An upstream that takes the request and never answers: its caller is told it timed out
  -- (a 504 then, RFC 9110 15.6.5, not the 502 of an answer that was bad)
  it("tells its caller the upstream gave no answer in time", function()
    local sock = H.tmpdir() .. "/mute.sock"
    local mute = uv.new_pipe(false)
    local held = {}
    assert(mute:bind(sock))
    mute:listen(16, function()
      local c = uv.new_pipe(false)
      mute:accept(c)
      held[#held + 1] = c
      c:read_start(function() end) -- reads the request, answers nothing
    end)
    local srv, base, outcomes = front(sock, { total_timeout_ms = 400 })
    local t0 = uv.now()
    local status = fetch(base .. "/")
    assert.equal(502, status) -- the front above answers every failure 502
    assert.is_true(uv.now() - t0 >= 350)
    assert.is_nil(outcomes[1].status)
    assert.is_true(outcomes[1].timed_out)
    assert.matches("no complete response within 400 ms", outcomes[1].note, 1, true)
    srv:close()
    for _, c in ipairs(held) do c:close() end
    mute:close()
  end)

  -- An upstream that sends nothing has passed its first-byte deadline, not its headers',
  -- when the two are the same: said so (the phase, http's), as the caller's 504 and log
  -- line would say it
  it("says a silent upstream passed its first-byte deadline when the headers' is the same", function()
    local sock = H.tmpdir() .. "/mute.sock"
    local mute = uv.new_pipe(false)
    local held = {}
    assert(mute:bind(sock))
    mute:listen(16, function()
      local c = uv.new_pipe(false)
      mute:accept(c)
      held[#held + 1] = c
      c:read_start(function() end) -- reads the request, answers nothing
    end)
    local srv, base, outcomes = front(sock, { total_timeout_ms = 0, first_byte_timeout_ms = 400,
      headers_timeout_ms = 400, idle_timeout_ms = 400 })
    assert.equal(502, (fetch(base .. "/")))
    assert.is_true(outcomes[1].timed_out)
    assert.equal("first_byte", outcomes[1].phase)
    assert.matches("no response within 400 ms", outcomes[1].note, 1, true)
    srv:close()
    for _, c in ipairs(held) do c:close() end
    mute:close()
  end)

  -- With no total timeout, an answer that keeps sending goes on past the first-byte and
  -- idle limits together (an event stream); silence past the idle limit cuts it, and an
  -- answer not begun within the first-byte limit is one not given in time
  it("holds a stream that keeps sending to its first-byte and idle limits, not a total", function()
    local limits = { total_timeout_ms = 0, first_byte_timeout_ms = 400, idle_timeout_ms = 400 }
    local app, sock = upstream(function(req)
      local s = assert(req:stream(200, { "Content-Type: text/event-stream" }))
      for i = 1, 12 do -- 1.2 s in all, never 400 ms silent
        if not s:send("data: " .. i .. "\n\n") then return end
        orket.sleep(100)
      end
      if req.path == "/stalls" then orket.sleep(1500) end
      s:close()
    end)
    local srv, base, outcomes = front(sock, limits)
    local t0 = uv.now()
    local status, _, body = fetch(base .. "/ticks")
    assert.equal(200, status)
    assert.is_true(uv.now() - t0 >= 1000)
    assert.matches("data: 12\n\n$", body)
    H.wait_for(function() return outcomes[1] end, "the outcome")
    assert.same({ status = 200, bytes = #body }, outcomes[1])
    -- silent past the idle limit: cut, and said why
    local _, _, cut, e = fetch(base .. "/stalls", { broken = true })
    assert.matches("data: 12\n\n$", cut)
    assert.is_string(e)
    H.wait_for(function() return outcomes[2] end, "the outcome")
    assert.matches("stalled for 400 ms", outcomes[2].note, 1, true)
    srv:close()
    app:close()
    -- no answer begun within the first-byte limit: timed out, for the caller's 504
    local held = {}
    local msock = H.tmpdir() .. "/mute2.sock"
    local mute = uv.new_pipe(false)
    assert(mute:bind(msock))
    mute:listen(16, function()
      local c = uv.new_pipe(false)
      mute:accept(c)
      held[#held + 1] = c
      c:read_start(function() end)
    end)
    local msrv, mbase, mout = front(msock, limits)
    assert.equal(502, (fetch(mbase .. "/")))
    assert.is_true(mout[1].timed_out)
    assert.matches("no response within 400 ms", mout[1].note, 1, true)
    msrv:close()
    for _, c in ipairs(held) do c:close() end
    mute:close()
  end)

  -- An app that drips its headers, a line or an interim 1xx answer at a time, meets no idle
  -- or first-byte limit: its headers' own limit makes it one that gave no answer in time
  it("times out an upstream whose headers never end, however it keeps sending", function()
    -- the proxy hangs up while this writes: that must not end the test's process
    local sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
    for _, step in ipairs { "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n", "X-Drip: 1\r\n" } do
      local sock = H.tmpdir() .. "/drip.sock"
      local app, held = uv.new_pipe(false), {}
      assert(app:bind(sock))
      app:listen(16, function()
        local c = uv.new_pipe(false)
        app:accept(c)
        local t = uv.new_timer()
        held[#held + 1] = { c, t }
        c:read_start(function(_, d)
          if not (d and d:find("\r\n\r\n", 1, true)) then return end
          c:read_stop()
          if step:find("^X") then c:write("HTTP/1.1 200 OK\r\n") end
          local n = 0
          t:start(0, 100, function() -- 2 s of it, then an answer: after the limit
            n = n + 1
            if n <= 20 then c:write(step) else t:stop() c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") end
          end)
        end)
      end)
      local srv, base, outcomes = front(sock, { total_timeout_ms = 0, first_byte_timeout_ms = 400, idle_timeout_ms = 400,
        headers_timeout_ms = 600 })
      local t0 = uv.now()
      assert.equal(502, (fetch(base .. "/"))) -- the front answers every failure 502
      assert.is_true(uv.now() - t0 < 1500, step)
      assert.is_nil(outcomes[1].status)
      assert.is_true(outcomes[1].timed_out, step)
      assert.matches("no complete response headers within 600 ms", outcomes[1].note, 1, true)
      srv:close()
      for _, h in ipairs(held) do h[2]:close() h[1]:close() end
      app:close()
    end
    sigpipe:close()
  end)

  -- A request proxied from a stream of 1000 bytes the upstream never ends; stop(req, t),
  -- in a task, once they reached the client: req:proxy's return and the client's bytes
  local function stopped_mid_stream(stop)
    local app, sock = upstream(function(req)
      local s = assert(req:stream(200, {}))
      s:send(string.rep("i", 1000))
      req:wait_gone()
    end)
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
    local req, t, result
    task.spawn(function()
      req = srv:accept()
      t = task.spawn(function()
        local r <close> = req
        result = table.pack(r:proxy { url = "http://app/", unix_socket = sock, total_timeout_ms = 30000 })
      end)
    end)
    local c = uv.new_tcp()
    local got, closed = {}, false
    c:connect("127.0.0.1", srv:port(), function(e)
      assert(not e, e)
      c:write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      c:read_start(function(_, d) if d then got[#got + 1] = d else closed = true end end)
    end)
    H.wait_for(function() return table.concat(got):find(string.rep("i", 1000), 1, true) end, "the first bytes")
    task.spawn(function() stop(req, t) end)
    H.wait_for(function() return closed end, "the client's end")
    c:close()
    srv:close()
    app:close()
    return result, table.concat(got)
  end

  it("wakes its task with nil, message when another task closes the request", function()
    local result, text = stopped_mid_stream(function(req) req:close() end)
    assert.equal(2, result.n)
    assert.is_nil(result[1])
    assert.equal("the request was closed while proxying", result[2])
    assert.is_false(text:sub(-5) == "0\r\n\r\n", "the cut answer ended as if whole")
  end)

  it("cuts the client's answer when its task is cancelled mid-stream", function()
    local result, text = stopped_mid_stream(function(_, t) t:cancel() end)
    assert.is_nil(result)
    assert.is_false(text:sub(-5) == "0\r\n\r\n", "the cut answer ended as if whole")
  end)

  it("checks its arguments", function()
    local errs = proxy_errors {
      { url = "ftp://x" },
      { url = "http://x", unix_socket = "relative" },
      { url = "http://x", lines = { "no colon" } },
      { url = "http://x", pass = { 3 } },
      { url = "http://x", max_bytes = -1 },
      { url = "http://x", pass = { "etag", "Content-Length" } },
      { url = "http://x", pass = { "transfer-encoding" } },
      { url = "http://x", method = "GET / HTTP/1.1\r\nX-Injected: 1\r\nX:" },
      { url = "http://x", method = "TRACE" },
      { url = "http://x", pass_in = { "accept", "Transfer-Encoding" } },
    }
    assert.matches("url must start with http://", errs[1])
    assert.matches("unix_socket must be an absolute path", errs[2])
    assert.matches("lines%[1%] must be", errs[3])
    assert.matches("pass%[1%] must be a string", errs[4])
    assert.matches("max_bytes must be a non%-negative integer", errs[5])
    assert.matches("pass%[2%] names content%-length, which belongs to this hop", errs[6])
    assert.matches("pass%[1%] names transfer%-encoding", errs[7])
    assert.matches("method must be one of GET, HEAD", errs[8])
    assert.matches("method must be one of", errs[9])
    assert.matches("pass_in%[2%] names transfer%-encoding, which belongs to this hop", errs[10])
  end)

  -- httpd.proxy_kept: the options every request to one upstream shares, checked and copied
  -- once; each request gives only its url, method, headers and body
  it("answers through kept options as through the same options given each time", function()
    local app, sock = upstream(function(req)
      req:respond(201, { "Content-Type: application/json", "ETag: \"v1\"", "Set-Cookie: a=1", "Set-Cookie: s=2",
        "X-Secret: no" }, '{"path":"' .. req.path .. '"}')
    end)
    local o = { unix_socket = sock, total_timeout_ms = 30000, lines = { "X-Mark: yes" },
      pass = { "content-type", "etag" }, cookies = { "s" } }
    local kept = httpd.proxy_kept(o)
    assert.equal("proxy options", tostring(kept))
    o.lines[1], o.unix_socket = "X-Mark: changed", "/nowhere" -- copied: later changes are not seen
    local srv, base, outcomes = front("/nowhere/either", { kept = kept })
    for i = 1, 3 do
      local status, headers, body = fetch(base .. "/x/" .. i)
      assert.equal(201, status)
      assert.equal('{"path":"/x/' .. i .. '"}', body)
      assert.equal("yes", headers["x-mark"])
      assert.equal('"v1"', headers.etag)
      assert.equal("a=1", headers["set-cookie"]) -- s refused, a passed
      assert.is_nil(headers["x-secret"])
    end
    H.wait_for(function() return outcomes[3] end, "the outcomes")
    getmetatable(kept).__close(kept)
    getmetatable(kept).__close(kept) -- idempotent
    assert.equal("proxy options (closed)", tostring(kept))
    srv:close()
    app:close()
  end)

  it("keeps its options for a pump still running when they are closed", function()
    local release, arrived = false, false
    local app, sock = upstream(function(req)
      arrived = true
      H.wait_for(function() return release end, "the release", 10000)
      req:respond(200, { "Content-Type: text/plain" }, "late")
    end)
    local kept = httpd.proxy_kept { unix_socket = sock, total_timeout_ms = 30000, lines = { "X-Mark: kept" },
      pass = { "content-type" } }
    local srv, base = front("/nowhere", { kept = kept })
    local got
    task.spawn(function() got = { fetch(base .. "/slow") } end)
    -- the app has the request: the pump is running, holding its reference
    H.wait_for(function() return arrived end, "the proxied request", 10000)
    getmetatable(kept).__close(kept) -- the pump's own reference keeps them
    kept = nil
    collectgarbage()
    release = true
    H.wait_for(function() return got end, "the answer", 10000)
    assert.equal(200, got[1])
    assert.equal("late", got[3])
    assert.equal("kept", got[2]["x-mark"])
    srv:close()
    app:close()
  end)

  -- max_live bounds the pumps running at once with one kept's count, shared by another's
  -- through live_with: one more is refused, nothing started (full); a pump's end frees its
  -- place
  it("refuses a request past max_live, counted with live_with's kept", function()
    local release, arrived = false, 0
    local app, sock = upstream(function(req)
      arrived = arrived + 1
      H.wait_for(function() return release end, "the release", 10000)
      req:respond(200, {}, "late")
    end)
    local a = httpd.proxy_kept { unix_socket = sock, total_timeout_ms = 30000, max_live = 2 }
    local b = httpd.proxy_kept { unix_socket = sock, total_timeout_ms = 30000, max_live = 2, live_with = a }
    local other = httpd.proxy_kept { unix_socket = sock, total_timeout_ms = 30000, max_live = 2 }
    local srv_a, base_a, out_a = front("/nowhere", { kept = a })
    local srv_b, base_b, out_b = front("/nowhere", { kept = b })
    local srv_o, base_o, out_o = front("/nowhere", { kept = other })
    local got = {}
    task.spawn(function() got[1] = { fetch(base_a .. "/1") } end)
    task.spawn(function() got[2] = { fetch(base_b .. "/2") } end)
    H.wait_for(function() return arrived == 2 end, "two requests at the app", 10000)
    -- the third, on either: refused at once, the app never asked
    for _, c in ipairs { { base_a, out_a }, { base_b, out_b } } do
      assert.equal(502, (fetch(c[1] .. "/3"))) -- the front answers every failure 502
      local o = c[2][#c[2]]
      assert.is_true(o.full)
      assert.is_nil(o.status)
      assert.matches("2 requests to the app are in progress already", o.note, 1, true)
    end
    -- a kept with its own count is not held by theirs
    task.spawn(function() got[3] = { fetch(base_o .. "/4") } end)
    H.wait_for(function() return arrived == 3 end, "the other kept's request", 10000)
    assert.equal(3, arrived)
    release = true
    H.wait_for(function() return got[1] and got[2] and got[3] end, "the answers", 10000)
    for i = 1, 3 do assert.equal("late", got[i][3]) end
    H.wait_for(function() return #out_a == 2 and #out_b == 2 end, "the outcomes")
    -- over: their places are free again
    local status, _, body = fetch(base_b .. "/5")
    assert.equal(200, status)
    assert.equal("late", body)
    assert.is_nil(out_b[3].full)
    local ok, e = pcall(httpd.proxy_kept, { live_with = "no" })
    assert.is_false(ok)
    assert.matches("live_with must be an open httpd.proxy_kept", e)
    srv_a:close()
    srv_b:close()
    srv_o:close()
    app:close()
  end)

  -- max_live_each: of max_live, one client address's share, so that one client holding
  -- streams cannot get every other refused; another address still reaches the app, and a
  -- pump's end gives its address's place back. Clients from 127.0.0.1 and 127.0.0.2 (both
  -- loopback) on raw sockets
  it("refuses an address past max_live_each while another address still reaches the app", function()
    local release, arrived = false, 0
    local app, sock = upstream(function(req)
      arrived = arrived + 1
      H.wait_for(function() return release end, "the release", 10000)
      req:respond(200, {}, "late")
    end)
    local kept = httpd.proxy_kept { unix_socket = sock, total_timeout_ms = 30000, max_live = 4, max_live_each = 2 }
    local srv, base, out = front("/nowhere", { kept = kept })
    local port = srv:port()
    -- a GET from addr on a raw socket: -> a function that says whether its answer is whole,
    -- and the answer
    local function from(addr, path)
      local c, got, closed = uv.new_tcp(), {}, false
      assert(c:bind(addr, 0))
      c:connect("127.0.0.1", port, function(e)
        assert(not e, e)
        c:write("GET " .. path .. " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        c:read_start(function(_, d) if d then got[#got + 1] = d else closed = true c:close() end end)
      end)
      return function() return closed end, function() return table.concat(got) end
    end
    local d1, a1 = from("127.0.0.1", "/1")
    local d2, a2 = from("127.0.0.1", "/2")
    H.wait_for(function() return arrived == 2 end, "two requests at the app", 10000)
    -- a third from the same address: refused at once, the app never asked
    local d3, a3 = from("127.0.0.1", "/3")
    H.wait_for(d3, "the refusal", 10000)
    assert.matches("^HTTP/1.1 502", a3()) -- the front answers every failure 502
    local o = out[#out]
    assert.equal("address", o.full)
    assert.is_nil(o.status)
    assert.matches("2 requests to the app from 127.0.0.1 are in progress already", o.note, 1, true)
    -- another address: its share is its own
    local d4, a4 = from("127.0.0.2", "/4")
    H.wait_for(function() return arrived == 3 end, "the other address's request", 10000)
    release = true
    for _, c in ipairs { { d1, a1 }, { d2, a2 }, { d4, a4 } } do
      H.wait_for(c[1], "the answers", 10000)
      assert.matches("^HTTP/1.1 200.*late$", c[2]())
    end
    -- over: the address's places are free again
    local d5, a5 = from("127.0.0.1", "/5")
    H.wait_for(d5, "the answer", 10000)
    assert.matches("^HTTP/1.1 200.*late$", a5())
    local ok, e = pcall(httpd.proxy_kept, { max_live_each = 2 })
    assert.is_false(ok)
    assert.matches("max_live_each goes with max_live", e, 1, true)
    srv:close()
    app:close()
  end)

  -- A front end's users all come from its loopback address, and this machine's own use from
  -- loopback or a unix socket: each_skip_local holds them to no share, only to max_live.
  -- Any other IPv6 client counts by its /64 (its network: it may use many addresses of it);
  -- ::1 stands for one here, its share named
  it("holds local clients to no share with each_skip_local, and counts an IPv6 address by its /64", function()
    local release, arrived = false, 0
    local app, sock = upstream(function(req)
      arrived = arrived + 1
      H.wait_for(function() return release end, "the release", 10000)
      req:respond(200, {}, "late")
    end)
    local kept = httpd.proxy_kept { unix_socket = sock, total_timeout_ms = 30000, max_live = 3, max_live_each = 1,
      each_skip_local = true }
    local srv, base, out = front("/nowhere", { kept = kept })
    local got = {}
    for i = 1, 3 do task.spawn(function() got[i] = { fetch(base .. "/" .. i) } end) end
    H.wait_for(function() return arrived == 3 end, "three requests from one loopback address at the app", 10000)
    local st = fetch(base .. "/4") -- past max_live: the whole count
    assert.equal(502, st)
    assert.is_true(out[#out].full)
    release = true
    H.wait_for(function() return got[1] and got[2] and got[3] end, "the answers", 10000)
    for i = 1, 3 do assert.equal(200, got[i][1]) end
    srv:close()
    local ok, e = pcall(httpd.proxy_kept, { max_live = 2, max_live_each = 1, each_skip_local = 1 })
    assert.is_false(ok)
    assert.matches("each_skip_local must be a boolean", e, 1, true)
    -- IPv6, not skipped: the share is ::1's /64
    release, arrived = false, 0
    local kept6 = httpd.proxy_kept { unix_socket = sock, total_timeout_ms = 30000, max_live = 3, max_live_each = 1 }
    local srv6 = assert(httpd.listen { host = "::1", port = 0 })
    local notes = {}
    task.spawn(function()
      while true do
        local req = srv6:accept()
        if not req then return end
        task.spawn(function()
          local status, note = req:proxy { url = "http://app" .. req.path, method = "GET", kept = kept6 }
          notes[#notes + 1] = note
          if not status then req:respond(502, {}, "failed") end
          req:close()
        end)
      end
    end)
    local base6 = "http://[::1]:" .. srv6:port()
    local first
    task.spawn(function() first = { fetch(base6 .. "/1") } end)
    H.wait_for(function() return arrived == 1 end, "the first request at the app", 10000)
    assert.equal(502, (fetch(base6 .. "/2")))
    assert.matches("1 requests to the app from ::/64 are in progress already", notes[#notes], 1, true)
    release = true
    H.wait_for(function() return first end, "the first answer", 10000)
    assert.equal(200, first[1])
    srv6:close()
    app:close()
  end)

  it("checks kept options' arguments, and refuses a closed one", function()
    for _, c in ipairs {
      { { unix_socket = "relative" }, "bad argument #1 to 'proxy_kept' %(unix_socket must be an absolute path" },
      { { lines = { "no colon" } }, "bad argument #1 to 'proxy_kept' %(lines%[1%] must be" },
      { { pass = { "etag", "Content-Length" } }, "pass%[2%] names content%-length, which belongs to this hop" },
      -- a name twice, in any case, would pass its header twice (and was once counted once)
      { { pass_in = { "x-a", "accept", "X-A" } }, "pass_in%[3%] names x%-a again" },
      { { pass_in = { "accept", "Host" } }, "pass_in%[2%] names host, which belongs to this hop" },
      { { pass_in = { "Proxy-Authorization" } }, "pass_in%[1%] names proxy%-authorization, which belongs to this hop" },
      { { max_bytes = -1 }, "max_bytes must be a non%-negative integer" },
      { { cookies = { false } }, "cookies%[1%] must be a string" },
    } do
      local ok, e = pcall(httpd.proxy_kept, c[1])
      assert.is_false(ok)
      assert.matches(c[2], e)
    end
    assert.has_error(function() httpd.proxy_kept() end)
    local closed = httpd.proxy_kept {}
    getmetatable(closed).__close(closed)
    local errs = proxy_errors { { url = "http://x", kept = closed }, { url = "http://x", kept = "no" },
      { url = "ftp://x", kept = httpd.proxy_kept {} } }
    assert.matches("kept must be an open httpd.proxy_kept", errs[1])
    assert.matches("kept must be an open httpd.proxy_kept", errs[2])
    assert.matches("url must start with http://", errs[3])
  end)
end)
