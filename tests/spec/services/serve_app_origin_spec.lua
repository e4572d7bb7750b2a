-- A sandbox's app on an origin of its own (orket.serve.apps), in one process: orket serve
-- answering a Host of ID.sandbox.localhost, the app a raw server on a unix socket, the
-- app's session made in the store as its ticket would make it. What reaches the app and
-- what comes back, as a browser would send and see it.
local ops = require "orket.store.sandboxes"
local crypto = require "orket.c.crypto"
local grants = require "orket.store.app_grants"
local uv = require "luv"
local cjson = require "cjson"
local H = require "tests.helpers"
local F = require "tests.fixtures"

describe("an app on its own origin", function()
  after_each(function() H.cleanup() end)

  -- A raw app at a new socket: each request's line is answered by answer(line), or never
  -- when it gives nil. -> the listener, its socket, the connections it holds
  local function raw_app(answer)
    local sock = H.tmpdir() .. "/app.sock"
    local srv = uv.new_pipe(false)
    local held = {}
    assert(srv:bind(sock))
    srv:listen(16, function()
      local c = uv.new_pipe(false)
      srv:accept(c)
      held[#held + 1] = c
      local got = ""
      c:read_start(function(_, d)
        if not d then return end
        got = got .. d
        if not got:find("\r\n\r\n", 1, true) then return end
        c:read_stop()
        local text = answer(got:match("^([^\r\n]*)"))
        if text then c:write(text, function() c:close() end) end
      end)
    end)
    return srv, sock, held
  end

  -- A local-use server of a store with one healthy sandbox at sock, and a person's app
  -- session for it. -> a function request(path) -> status, body, headers; the log's lines;
  -- the stop; the sandbox's id; the server; its store; its directory
  local function server(sock, port)
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local srv, stop = F.served { dir = dir, db = db, host = "127.0.0.1", port = 0 }
    local pid = uv.os_getpid() -- owned by this process, which lives: not reconciled as ended
    local id = ops.insert(db, { target = "main", port = port or 0, socket = sock, command = "[]", owner_pid = pid,
      owner_start = require("orket.sandboxes.service").start_time(pid) })
    ops.set_status(db, id, "healthy")
    local token = crypto.random_id(32)
    grants.insert(db, crypto.hash(token, 32), "session", { sandbox = math.tointeger(id), local_use = true,
      role = "operator", expires_s = os.time() + 3600 })
    local lines = {}
    srv.log = function(line) lines[#lines + 1] = cjson.decode(line) end
    local host = "Host: " .. math.tointeger(id) .. ".sandbox.localhost:" .. srv:port()
    -- (more: the request's other header lines; method and body: a write's)
    return function(path, more, method, body)
      local hs = { host, "Cookie: orket_app=" .. token }
      for _, h in ipairs(more or {}) do hs[#hs + 1] = h end
      return H.fetch { url = "http://127.0.0.1:" .. srv:port() .. path, total_timeout_ms = 20000, headers = hs,
        method = method, body = body }
    end, lines, stop, math.tointeger(id), srv, db, dir
  end

  local ECHO = function(line)
    return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " .. #line .. "\r\n\r\n" .. line
  end

  -- What a script's fetch("/items?page[size]=10") sends: the WHATWG URL standard leaves
  -- these unencoded, and the app's own server takes them
  it("passes the path's and query's characters a browser sends unencoded", function()
    local app, sock = raw_app(ECHO)
    local request, _, stop = server(sock)
    for _, target in ipairs { "/items?filter[name]=a&page[size]=10", "/items?ids[]=1&ids[]=2", "/a[0]/b|c",
      "/q?x=a|b^c", "/q?json={x}", "/q?x=`b`\\c" } do
      local st, body = request(target)
      assert.equal(200, st, target .. ": " .. tostring(body))
      assert.equal("GET " .. target .. " HTTP/1.1", body)
    end
    -- what a browser always encodes is still refused, as no browser's
    assert.equal(400, (request('/a"b')))
    assert.equal(400, (request("/q?x=<b>")))
    -- and in a path, what a browser encodes there ("{}^`") or turns into "/" ("\"): no
    -- "\..\" reaches an app that reads "\" as "/"
    for _, target in ipairs { "/a\\..\\..\\b", "/a{b}", "/a^b", "/a`b" } do
      assert.equal(400, (request(target)), target)
    end
    stop()
    app:close()
  end)

  -- the query reaches the app as the browser sent it: not re-ordered nor re-written (an
  -- app that checks a signature over its query, or reads its pairs in order, works as
  -- deployed), an empty pair, a name without "=", a "+" and a repeated name kept
  it("passes the query on byte for byte, in the order sent", function()
    local app, sock = raw_app(ECHO)
    local request, _, stop = server(sock)
    for _, target in ipairs { "/q?b=2&a=1&flag&&c=%41", "/q?z=a+b&sig=Zz%3d&x=1&x=2", "/q?", "/q?&", "/q?a=1?b" } do
      local st, body = request(target)
      assert.equal(200, st, target .. ": " .. tostring(body))
      assert.equal("GET " .. target .. " HTTP/1.1", body)
    end
    stop()
    app:close()
  end)

  -- the body passes as the app coded it: its Content-Encoding with it, or a browser shows
  -- the coded bytes as the page
  -- What the app's own script and the browser send it for itself: its CSRF token's header
  -- (without it Django answers the script's writes 403), Last-Event-ID (an EventSource
  -- resuming), Authorization (its own Basic challenge's answer, its own token); never one
  -- of Orket's credentials, nor Orket's cookie
  -- Every app is same-site with every other, and the app's cookie is SameSite=Lax: a
  -- script on another sandbox's page posted to this app as the person who opened it
  it("passes a write from the app's own page only, never one another origin's page sent", function()
    local reached = 0
    local app, sock = raw_app(function(line)
      reached = reached + 1
      return ECHO(line)
    end)
    local request, lines, stop, id, srv = server(sock)
    local own = "http://" .. id .. ".sandbox.localhost:" .. srv:port()
    local sibling = "http://" .. (id + 1) .. ".sandbox.localhost:" .. srv:port()
    local form = { "Content-Type: application/x-www-form-urlencoded" }
    local function post(...)
      local hs = { table.unpack(form) }
      for _, h in ipairs { ... } do hs[#hs + 1] = h end
      return request("/notes", hs, "POST", "text=x")
    end
    for _, refused in ipairs {
      { "Sec-Fetch-Site: same-site", "Origin: " .. sibling },
      { "Sec-Fetch-Site: cross-site", "Origin: http://evil.example" },
      { "Origin: " .. sibling }, -- a browser that sends no Sec-Fetch-Site
      { "Origin: null" },
      { "Referer: " .. sibling .. "/page" },
    } do
      local st, body = post(table.unpack(refused))
      assert.equal(403, st, table.concat(refused, " ") .. ": " .. body)
      assert.truthy(body:find("another origin", 1, true), body)
      assert.equal("app_foreign_page", lines[#lines].auth)
    end
    assert.equal(0, reached)
    -- the app's own form, a typed request, a client that is no browser; a sibling's GET passes
    for _, passed in ipairs {
      { "Sec-Fetch-Site: same-origin", "Origin: " .. own },
      { "Origin: " .. own },
      { "Sec-Fetch-Site: none" },
      {},
    } do
      local st, body = post(table.unpack(passed))
      assert.equal(200, st, table.concat(passed, " ") .. ": " .. body)
      assert.equal("POST /notes HTTP/1.1", body)
    end
    local st = request("/notes", { "Sec-Fetch-Site: same-site" })
    assert.equal(200, st)
    assert.equal(5, reached)
    stop()
    app:close()
  end)

  it("passes the app its CSRF headers, Last-Event-ID and its own Authorization, never Orket's", function()
    local sock = H.tmpdir() .. "/app.sock"
    local app = uv.new_pipe(false)
    assert(app:bind(sock))
    app:listen(16, function()
      local c = uv.new_pipe(false)
      app:accept(c)
      local got = ""
      c:read_start(function(_, d)
        if not d then return end
        got = got .. d
        local head = got:match("^(.-\r\n)\r\n")
        if not head then return end
        c:read_stop()
        c:write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " .. #head .. "\r\n\r\n" .. head,
          function() c:close() end)
      end)
    end)
    local request, _, stop = server(sock)
    local st, body = request("/api/save", { "X-CSRF-Token: t1", "X-CSRFToken: t2", "X-XSRF-TOKEN: t3",
      "Last-Event-ID: 41", "Authorization: Basic YTpi" })
    assert.equal(200, st, body)
    local got = body:lower()
    for _, want in ipairs { "x-csrf-token: t1", "x-csrftoken: t2", "x-xsrf-token: t3", "last-event-id: 41",
      "authorization: basic ytpi" } do
      assert.truthy(got:find(want, 1, true), want .. " in " .. body)
    end
    assert.is_nil(got:find("orket_app", 1, true), body)
    for _, orkets in ipairs { "Bearer ork_0123456789abcdef_00", "bearer  ort_abc" } do
      st, body = request("/api/save", { "Authorization: " .. orkets })
      assert.equal(200, st, body)
      assert.is_nil(body:lower():find("authorization", 1, true), body)
    end
    -- the app's own bearer token passes
    st, body = request("/api/save", { "Authorization: Bearer eyJhbGciOi.app.token" })
    assert.truthy(body:find("Bearer eyJhbGciOi.app.token", 1, true), body)
    stop()
    -- with OpenID Connect sign-in, a token of its provider is Orket's (orket.serve.auth takes
    -- one as the person): kept from the app; a JWT of the app's own issuer passes
    local srv
    request, _, stop, _, srv = server(sock)
    srv.oidc = { cfg = { issuer = "https://id.example" } }
    local provider = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkLmV4YW1wbGUiLCJzdWIiOiJwIn0.c2ln"
    local own = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2FwcC5leGFtcGxlIiwic3ViIjoicCJ9.c2ln"
    st, body = request("/api/save", { "Authorization: Bearer " .. provider })
    assert.equal(200, st, body)
    assert.is_nil(body:lower():find("authorization", 1, true), body)
    st, body = request("/api/save", { "Authorization: Bearer " .. own })
    assert.truthy(body:find("Bearer " .. own, 1, true), body)
    -- a repeated header, joined with a comma, is Orket's when any of its values is
    st, body = request("/api/save", { "Authorization: Bearer " .. own, "Authorization: Bearer ork_0123456789abcdef_00" })
    assert.equal(200, st, body)
    assert.is_nil(body:lower():find("ork_", 1, true), body)
    stop()
    app:close()
  end)

  it("passes back the Content-Encoding of the body the app sent", function()
    local gz = "\31\139\8\0\0\0\0\0\0\3\203\72\205\201\201\87\72\175\202\44\0\0\25\106\210\223\10\0\0\0"
    local app, sock = raw_app(function()
      return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: " .. #gz
        .. "\r\n\r\n" .. gz
    end)
    local request, _, stop = server(sock)
    local st, body, headers = request("/hello.txt")
    assert.equal(200, st)
    assert.equal(gz, body) -- as sent, not decoded on the way
    local h = {}
    for k, v in pairs(headers) do h[k:lower()] = v end
    assert.equal("gzip", h["content-encoding"])
    assert.equal("text/plain", h["content-type"])
    stop()
    app:close()
  end)

  -- as deployed: its links and its CORS answers pass back, but never a grant of
  -- credentials (the cookie it is reached with is Orket's sign-in, which no other origin's
  -- script may read the app with)
  it("passes back the app's Link and CORS headers, never Access-Control-Allow-Credentials", function()
    local app, sock = raw_app(function()
      return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nLink: </style.css>; rel=preload; as=style\r\n"
        .. "Access-Control-Allow-Origin: http://4.sandbox.localhost\r\nAccess-Control-Allow-Credentials: true\r\n"
        .. "Access-Control-Expose-Headers: Link\r\nAccess-Control-Allow-Methods: GET, POST\r\n"
        .. "Access-Control-Allow-Headers: X-Thing\r\nAccess-Control-Max-Age: 60\r\nContent-Length: 2\r\n\r\nok"
    end)
    local request, _, stop = server(sock)
    local st, body, headers = request("/list")
    assert.equal(200, st, body)
    local h = {}
    for k, v in pairs(headers) do h[k:lower()] = v end
    assert.equal("</style.css>; rel=preload; as=style", h.link)
    assert.equal("http://4.sandbox.localhost", h["access-control-allow-origin"])
    assert.equal("Link", h["access-control-expose-headers"])
    assert.equal("GET, POST", h["access-control-allow-methods"])
    assert.equal("X-Thing", h["access-control-allow-headers"])
    assert.equal("60", h["access-control-max-age"])
    assert.is_nil(h["access-control-allow-credentials"])
    stop()
    app:close()
  end)

  -- a redirect to the address the app listens on in its sandbox ($HOST:$PORT), which no
  -- browser reaches, is made a path on the app's own origin; another host's stays
  it("makes the app's redirects to its listening address ones on its own origin", function()
    -- (the last four: made "//evil.example/x" on the app's origin, or what a browser reads as
    -- that, they would lead a person from the app's URL to another site; they pass as they
    -- are, leading nowhere, as before any was rewritten)
    local to = { "http://127.0.0.1:8080/landed?x=1", "http://localhost:8080", "/kept", "http://example.com/x",
      "http://127.0.0.1:8081/y", "http://127.0.0.1:8080//evil.example/x", "http://127.0.0.1:8080/\\evil.example/x",
      "http://127.0.0.1:8080/\t/evil.example/x", "http://sandbox//evil.example/" }
    local app, sock = raw_app(function(line)
      local i = tonumber(line:match("^GET /(%d+)"))
      return "HTTP/1.1 302 Found\r\nLocation: " .. to[i] .. "\r\nContent-Length: 0\r\n\r\n"
    end)
    local request, _, stop = server(sock, 8080)
    local want = { "/landed?x=1", "/", "/kept", "http://example.com/x", "http://127.0.0.1:8081/y", to[6], to[7], to[8],
      to[9] }
    for i = 1, #to do
      local st, _, headers = request("/" .. i)
      assert.equal(302, st, to[i])
      local h = {}
      for k, v in pairs(headers) do h[k:lower()] = v end
      assert.equal(want[i], h.location, to[i])
    end
    stop()
    app:close()
  end)

  -- the cap on an app's requests in progress holds on its own origin too: 503 app_busy,
  -- with when to retry (shortened here)
  it("answers 503 app_busy past the requests its app may have in progress", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was = sandboxes.PROXY_LIVE_MAX
    sandboxes.PROXY_LIVE_MAX = 1 -- read once per socket, as its kept options are made
    local app, sock, held = raw_app(function(line) if not line:find("^GET /held") then return ECHO(line) end end)
    local ok, e = pcall(function()
      local request, _, stop, id = server(sock)
      local got
      require("orket.task").spawn(function() got = { request("/held") } end)
      H.wait_for(function() return #held == 1 end, "the held request at the app")
      local st, body, headers = request("/next")
      assert.equal(503, st, body)
      local doc = cjson.decode(body)
      assert.equal("app_busy", doc.error.code)
      assert.matches("sandbox " .. id .. "'s app has 1 requests in progress", doc.error.message, 1, true)
      local h = {}
      for k, v in pairs(headers) do h[k:lower()] = v end
      assert.equal("5", h["retry-after"])
      assert.equal(1, #held) -- the app never saw it
      held[1]:write(ECHO("GET /held HTTP/1.1"), function() held[1]:close() end)
      H.wait_for(function() return got end, "the held answer")
      assert.equal(200, got[1])
      stop()
    end)
    sandboxes.PROXY_LIVE_MAX = was
    app:close()
    assert(ok, e)
  end)

  -- RFC 9110 15.6.5: no answer in time is a gateway's timeout
  it("answers 504 when the app takes the request and never answers", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was = sandboxes.PROXY_TIMEOUT_MS
    sandboxes.PROXY_TIMEOUT_MS = 1000 -- read once per socket, as its kept options are made
    local app, sock, held = raw_app(function() return nil end)
    local ok, e = pcall(function()
      local request, lines, stop, id = server(sock)
      local st, body = request("/slow")
      assert.equal(504, st, body)
      local doc = cjson.decode(body)
      assert.equal("gateway_timeout", doc.error.code)
      assert.matches("sandbox " .. id .. "'s app gave no answer within 1 s", doc.error.message, 1, true)
      H.wait_for(function()
        for _, l in ipairs(lines) do if l.route == "(app)" then return l end end
      end, "the log line")
      for _, l in ipairs(lines) do if l.route == "(app)" then assert.equal(504, l.status) end end
      stop()
    end)
    sandboxes.PROXY_TIMEOUT_MS = was
    for _, c in ipairs(held) do c:close() end
    app:close()
    assert(ok, e)
  end)
  -- RFC 9112 5.2: a folded header reaches the browser whole, its lines joined by a space
  -- (cut at the fold, the app's cookie lost HttpOnly, Secure and SameSite)
  it("passes back an app's folded header whole, as one line", function()
    local app, sock = raw_app(function()
      return "HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc; Path=/;\r\n HttpOnly; Secure; SameSite=Strict\r\n"
        .. "Content-Security-Policy: default-src 'self';\r\n\tframe-ancestors 'none'\r\n"
        .. "Vary: Accept\r\n Access-Control-Allow-Credentials: true\r\nContent-Length: 2\r\n\r\nhi"
    end)
    local request, _, stop = server(sock)
    local st, body, h = request("/")
    assert.equal(200, st, body)
    assert.equal("sid=abc; Path=/; HttpOnly; Secure; SameSite=Strict", h["set-cookie"] or h["Set-Cookie"])
    assert.equal("default-src 'self'; frame-ancestors 'none'", h["content-security-policy"])
    -- a continuation is never a header of its own
    assert.equal("Accept Access-Control-Allow-Credentials: true", h.vary)
    assert.is_nil(h["access-control-allow-credentials"])
    stop()
    app:close()
  end)

  -- pentest: a ticket is a bearer URL any key can make; a page of another site (or another
  -- app's, same-site with this one) sending the browser to one would sign it in to the app
  -- as the ticket's maker. Such a redemption asks on a page of the app's origin first, and
  -- only that page's POST (same-origin) takes the ticket.
  describe("a ticket another page sent", function()
    local function lower(h)
      local out = {}
      for k, v in pairs(h or {}) do out[tostring(k):lower()] = v end
      return out
    end

    -- a server, and ticket(g) -> a new ticket of sandbox id (g: the grant's fields)
    local function with_tickets(sock)
      local request, lines, stop, id, srv, db, dir = server(sock)
      local function ticket(g)
        local t = crypto.random_id(32)
        local e = { sandbox = id, local_use = true, role = "operator", start = "/landed", expires_s = os.time() + 60 }
        for k, v in pairs(g or {}) do e[k] = v end
        grants.insert(db, crypto.hash(t, 32), "ticket", e)
        return t, crypto.hash(t, 32)
      end
      -- redeem(t, method, headers) -> status, body, headers (lower-case names), no app cookie sent
      local function redeem(t, method, headers)
        local hs = { "Host: " .. id .. ".sandbox.localhost:" .. srv:port() }
        for _, x in ipairs(headers or {}) do hs[#hs + 1] = x end
        local st, body, h = H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/__orket/ticket?t=" .. t,
          method = method, body = method == "POST" and "" or nil, headers = hs, total_timeout_ms = 20000 }
        return st, body, lower(h)
      end
      return ticket, redeem, stop, id, srv, db, dir, lines, request
    end

    it("answers a page that asks, and signs in only through its same-origin POST", function()
      local app, sock = raw_app(ECHO)
      local ticket, redeem, stop, id, srv, db = with_tickets(sock)
      local own = "http://" .. id .. ".sandbox.localhost:" .. srv:port()
      local t, hash = ticket()
      for _, hs in ipairs { { "Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: navigate" }, { "Sec-Fetch-Site: same-site" },
        { "Referer: http://evil.example/page" }, { "Origin: null" }, { "Referer: http://" .. id + 1 .. ".sandbox.localhost:"
          .. srv:port() .. "/" } } do
        local st, body, h = redeem(t, "GET", hs)
        assert.equal(200, st, hs[1] .. ": " .. body)
        assert.is_nil(h["set-cookie"], hs[1])
        assert.equal("text/html; charset=utf-8", h["content-type"])
        assert.matches("default-src 'none'", h["content-security-policy"], 1, true)
        assert.matches("frame-ancestors 'none'", h["content-security-policy"], 1, true)
        assert.equal("DENY", h["x-frame-options"])
        assert.equal("same-origin", h["referrer-policy"]) -- the POST then carries its Origin
        assert.equal("no-store", h["cache-control"])
        assert.matches("<title>Open sandbox " .. id .. "'s app?</title>", body, 1, true)
        assert.matches("local use", body, 1, true) -- whose session it opens
        assert.matches('<form method="post" action="/__orket/ticket?t=' .. t .. '">', body, 1, true)
        assert.is_nil(body:find("<script", 1, true))
        assert.is_not_nil(grants.get(db, hash, "ticket"), "the page leaves the ticket for its POST")
      end
      -- a POST not from the app's own page is refused, the ticket kept
      for _, hs in ipairs { { "Origin: http://evil.example", "Sec-Fetch-Site: cross-site" }, { "Origin: null" },
        { "Sec-Fetch-Site: same-site" }, {}, { "Origin: http://" .. id + 1 .. ".sandbox.localhost:" .. srv:port() } } do
        local st, body, h = redeem(t, "POST", hs)
        assert.equal(403, st, (hs[1] or "none") .. ": " .. body)
        assert.is_nil(h["set-cookie"])
        assert.is_not_nil(grants.get(db, hash, "ticket"))
      end
      -- the page's POST: the ticket taken for the app's cookie, then to the start path
      local st, body, h = redeem(t, "POST", { "Origin: " .. own, "Sec-Fetch-Site: same-origin" })
      assert.equal(303, st, body)
      assert.equal("/landed", h.location)
      assert.matches("^orket_app=%x+; Path=/; HttpOnly; SameSite=Lax", h["set-cookie"])
      assert.is_nil(grants.get(db, hash, "ticket"))
      assert.equal(403, (redeem(t, "POST", { "Origin: " .. own })))
      -- by its Sec-Fetch-Site alone (Origin left out), and the app's origin with its default port
      t = ticket()
      assert.equal(303, (redeem(t, "POST", { "Sec-Fetch-Site: same-origin" })))
      stop()
      app:close()
    end)

    it("signs in at once when the person typed it, or the app's own page or no browser sent it", function()
      local app, sock = raw_app(ECHO)
      local ticket, redeem, stop, id, srv = with_tickets(sock)
      local own = "http://" .. id .. ".sandbox.localhost:" .. srv:port()
      for _, hs in ipairs { { "Sec-Fetch-Site: none", "Sec-Fetch-Mode: navigate" }, { "Sec-Fetch-Site: same-origin" }, {},
        { "Referer: " .. own .. "/page" }, { "Origin: " .. own:upper():gsub("^HTTP", "http") } } do
        local st, body, h = redeem(ticket(), "GET", hs)
        assert.equal(303, st, (hs[1] or "none") .. ": " .. body)
        assert.equal("/landed", h.location)
        assert.matches("^orket_app=%x+;", h["set-cookie"])
      end
      -- an expired or used one is refused either way, with no page
      local t = ticket { expires_s = os.time() - 1 }
      assert.equal(403, (redeem(t, "GET", { "Sec-Fetch-Site: cross-site" })))
      assert.equal(403, (redeem(string.rep("a", 64), "GET", { "Sec-Fetch-Site: cross-site" })))
      stop()
      app:close()
    end)

    it("names the key whose session it opens", function()
      local app, sock = raw_app(ECHO)
      local ticket, redeem, stop, _, _, db, dir = with_tickets(sock)
      local _, k = assert(require("orket.serve.keys").create(db, dir, "ci", "viewer"))
      local st, body = redeem(ticket { local_use = false, key = k.id, role = "viewer" }, "GET",
        { "Sec-Fetch-Site: cross-site" })
      assert.equal(200, st, body)
      assert.matches("as <b>key ci</b> (viewer)", body, 1, true)
      assert.matches(">Open the app as key ci</button>", body, 1, true)
      stop()
      app:close()
    end)

    it("refuses opening an app from another site with a remedy of its own", function()
      local app, sock = raw_app(ECHO)
      local _, _, stop, id, srv, db, dir = with_tickets(sock)
      local key = assert(require("orket.serve.keys").create(db, dir, "ci", "viewer"))
      local auth = "Authorization: Bearer " .. key
      -- (a key's request: local use's own guard refuses another site's before any route)
      local st, body = H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/v1/sandboxes/" .. id .. "/open",
        headers = { auth, "Sec-Fetch-Site: same-site" }, total_timeout_ms = 20000 }
      assert.equal(403, st, body)
      local doc = cjson.decode(body)
      assert.equal("an app is opened from the board's own page", doc.error.message)
      assert.equal("open it from the board's Sandboxes list (Open the app), in this browser", doc.error.remedy)
      -- a sandbox that does not exist: 404, as on the other sandbox routes
      st, body = H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/v1/sandboxes/999/open", headers = { auth },
        total_timeout_ms = 20000 }
      assert.equal(404, st, body)
      stop()
      app:close()
    end)
  end)
end)
