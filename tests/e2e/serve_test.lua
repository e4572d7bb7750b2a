-- orket serve and orket keys end to end: the binary on 127.0.0.1 with an ephemeral port,
-- talked to with libcurl (orket.c.http) and with raw sockets (luv) for what no polite
-- client sends: keys, bad input and attacks, the event stream, SIGTERM.
local H = require "tests.helpers"
local cjson = require "cjson"
local uv = require "luv"

local wait_for = H.wait_for

local start = H.serve

-- get(url, {headers=, method=, body=}) -> status, body, headers
local function get(url, o)
  o = o or {}
  return H.fetch { url = url, method = o.method, body = o.body, headers = o.headers, total_timeout_ms = 20000 }
end

local function bearer(key) return { "Authorization: Bearer " .. key } end

-- raw(port, text [, from]) -> conn {got() -> data, closed; write(s); close()}; from: the
-- local address to connect from (127.0.0.x: another client address on loopback)
local sockets = {} -- every raw socket, closed after each test (an open luv handle at exit crashes)

local function raw(port, text, from, later)
  local c = uv.new_tcp()
  sockets[#sockets + 1] = c
  if from then assert(c:bind(from, 0)) end
  local st = { data = {}, closed = false, connected = false }
  c:connect("127.0.0.1", port, function(err)
    if err then st.closed = true return end
    st.connected = true
    if text then c:write(text) end
    c:read_start(function(_, d)
      if d then st.data[#st.data + 1] = d else st.closed = true end
    end)
  end)
  local conn = { st = st }
  function conn.got() return table.concat(st.data), st.closed end
  function conn.write(s) if not c:is_closing() then c:write(s) end end
  function conn.close() if not c:is_closing() then c:close() end end
  function conn.connected() return st.connected or st.closed end
  if not later then wait_for(conn.connected, "a connection") end
  return conn
end

local function project()
  local dir = H.example("webapp")
  return dir
end

local key = H.api_key

describe("orket serve", function()
  -- A server that answers and closes while a raw client still writes would end this
  -- process with SIGPIPE: the write fails with EPIPE instead.
  local sigpipe
  setup(function()
    sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
  end)
  teardown(function() sigpipe:close() end)

  after_each(function()
    H.kill_servers()
    for _, c in ipairs(sockets) do
      if not c:is_closing() then c:close() end
    end
    sockets = {}
    H.cleanup()
  end)

  it("serves the probes, the board and a card as the CLI prints them, and logs each request", function()
    local dir = project()
    local s = start(dir)
    local st, b = get(s.url .. "/health")
    assert.equal(200, st)
    assert.same({ status = "ok" }, cjson.decode(b))
    st, b = get(s.url .. "/ready")
    assert.equal(200, st, b)
    st, b = get(s.url .. "/v1/board")
    assert.equal(200, st)
    -- the API's board is the CLI's, with the journal's id it was read at, the store's id and
    -- the cards waiting on a held tool call (none here) added
    local function api_board(text)
      local d = cjson.decode(text)
      assert.is_true(math.type(d.journal_id) == "integer" or d.journal_id == math.floor(d.journal_id))
      assert.matches("^%x+$", d.store)
      assert.same({}, d.held)
      d.journal_id, d.store, d.held = nil, nil, nil
      return d
    end
    assert.same(cjson.decode(H.orket("board --json", { cwd = dir }).stdout), api_board(b))
    -- a change from another process is seen by the next read (the text is kept until then)
    local db = assert(require("orket.project").open_store(dir, false)) -- the project's backend
    assert(db:run("UPDATE cards SET summary = 'Changed elsewhere' WHERE id = 'API-2'"))
    db:close()
    st, b = get(s.url .. "/v1/board")
    assert.equal(200, st)
    assert.matches("Changed elsewhere", b)
    assert.same(cjson.decode(H.orket("board --json", { cwd = dir }).stdout), api_board(b))
    st, b = get(s.url .. "/v1/cards/API-2")
    assert.equal(200, st)
    assert.same(cjson.decode(H.orket("card API-2 --json", { cwd = dir }).stdout), cjson.decode(b))
    st, b = get(s.url .. "/v1/cards/NOPE")
    assert.equal(404, st)
    assert.same({ error = { code = "not_found", message = 'board: no card "NOPE"' } }, cjson.decode(b))
    local h
    st, b, h = get(s.url .. "/v1/board", { method = "POST", body = "{}" })
    assert.equal(405, st)
    assert.equal("GET, HEAD, OPTIONS", h.allow) -- as OPTIONS says: HEAD with GET, OPTIONS on every path
    assert.equal(0, s.stop())
    local lines = {}
    for l in s.log():gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(l) end
    assert.equal(9, #lines) -- seven requests, then the stop's two lines
    assert.same({ "stopping", "stopped" }, { lines[8].event, lines[9].event })
    assert.equal("/v1/cards/{id}", lines[5].route)
    assert.equal("GET", lines[5].method)
    assert.equal(200, lines[5].status)
    assert.equal("number", type(lines[5].us))
  end)

  it("is not ready while orket.lua does not resolve to settings a run could start with", function()
    local dir = project()
    local s = start(dir)
    assert.equal(200, (get(s.url .. "/ready")))
    local f = assert(io.open(dir .. "/orket.lua", "a"))
    f:write('\ngit = { forge = "github", repo = "o/r" }\n') -- a forge needs a remote
    f:close()
    local st, b = get(s.url .. "/ready")
    assert.equal(503, st, b)
    local doc = cjson.decode(b)
    assert.equal("not_ready", doc.status)
    assert.matches("^orket.lua:%d+: git.remote: is needed with git.forge", doc.problems[1]) -- (at the git table)
    assert.equal(0, s.stop())
  end)

  -- A rolling upgrade: the new server migrates the store while the old one still serves.
  -- The old one said ready, and took requests with the schema it knew.
  it("is not ready once a newer orket migrated the store", function()
    local dir = project()
    local s = start(dir)
    assert.equal(200, (get(s.url .. "/ready")))
    local db = assert(require("orket.project").open_store(dir, false))
    if db.backend == "pg" then
      assert(db:run("UPDATE orket_schema SET version = version + 1"))
    else
      assert(db:run(string.format("PRAGMA user_version = %d", #require("orket.store").migrations + 1)))
    end
    db:close()
    local st, b = get(s.url .. "/ready")
    assert.equal(503, st, b)
    local doc = cjson.decode(b)
    assert.equal("not_ready", doc.status)
    assert.matches("^the store's schema is version %d+, newer than this orket knows %(%d+%): a newer orket migrated it",
      doc.problems[1])
    assert.equal(0, s.stop())
  end)

  it("refuses path tricks", function()
    local dir = project()
    local s = start(dir)
    for _, p in ipairs { "/v1/cards/%2e%2e", "/v1/cards/API-2%00", "/v1/cards/..%2fboard",
      "/v1/cards/%2E%2E%2F%2E%2E%2Forket.lua", "/v1/%2e/board" } do
      local st, b = get(s.url .. p)
      assert.equal(400, st, p)
      assert.equal("bad_path", cjson.decode(b).error.code)
    end
    -- a raw request line no client library would send
    local c = raw(s.port, "GET /v1/../v1/board HTTP/1.1\r\nHost: localhost\r\n\r\n")
    wait_for(function() return (c.got()):find("\r\n\r\n", 1, true) end, "an answer")
    assert.matches("^HTTP/1.1 400", (c.got()))
    c.close()
    assert.equal(400, (get(s.url .. "/v1/events?card=a%00b")))
    assert.equal(0, s.stop())
  end)

  it("describes its API in a document an independent OpenAPI 3.1 validator accepts", function()
    local bin, why = require("tests.npm").bin("validate-api")
    if not bin then
      return pending("the OpenAPI validator from npm: " .. why)
    end
    local dir = project()
    local s = start(dir)
    local st, text = get(s.url .. "/v1/openapi.json", { headers = bearer(key(dir, "look", "viewer")) })
    assert.equal(200, st)
    local file = H.tmpdir() .. "/openapi.json"
    H.write(file, text)
    local p = io.popen(H.quote(bin) .. " " .. H.quote(file) .. " 2>&1; echo \"rc=$?\"")
    local out = p:read("a")
    p:close()
    assert.matches("rc=0%s*$", out, out)
    assert.matches('"valid": true', out)
    -- every response says what it is (3.1 requires a description): the errors' table too
    local doc = cjson.decode(text)
    for path, item in pairs(doc.paths) do
      for method, op in pairs(item) do
        for status, r in pairs(op.responses) do
          assert.equal("string", type(r.description), method .. " " .. path .. " " .. status)
        end
      end
    end
    assert.equal(0, s.stop())
  end)

  it("without keys serves loopback names only, and refuses to listen elsewhere", function()
    local dir = project()
    local s = start(dir)
    assert.equal(200, (get(s.url .. "/v1/board", { headers = { "Host: localhost:1" } })))
    local st, b = get(s.url .. "/v1/board", { headers = { "Host: evil.example:80" } })
    assert.equal(403, st)
    assert.equal("forbidden", cjson.decode(b).error.code)
    -- a Host's trailing dot is accepted as sent, and names no loopback name (text compared)
    st, b = get(s.url .. "/v1/board", { headers = { "Host: localhost.:1" } })
    assert.equal(403, st)
    assert.equal("forbidden", cjson.decode(b).error.code)
    assert.equal(0, s.stop())
    local r = H.orket("serve --listen 0.0.0.0:0", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("refusing to listen on 0%.0%.0%.0 without an API key", r.stderr)
  end)

  it("checks keys before reading a body, and never shows a key", function()
    local dir = project()
    local k, _, made = key(dir, "ci", "viewer")
    assert.matches("^ork_%x+_%x+$", k)
    assert.matches("shown once", made.stderr)
    local _, secret = k:match("^ork_(%x+)_(%x+)$")
    local s = start(dir)
    local function status(headers) return (get(s.url .. "/v1/board", { headers = headers })) end
    assert.equal(401, status())
    assert.equal(401, status { "Authorization: Basic " .. k })
    assert.equal(401, status(bearer("ork_nope")))
    assert.equal(401, status(bearer(k:sub(1, -2) .. (k:sub(-1) == "a" and "b" or "a"))))
    assert.equal(200, status(bearer(k)))
    local st, _, h = get(s.url .. "/v1/board")
    assert.equal(401, st)
    assert.equal('Bearer realm="orket"', h["www-authenticate"])
    -- 401 before the body: 1 GB declared, none sent, the answer comes at once
    local c = raw(s.port, "POST /v1/board HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000\r\n\r\n")
    wait_for(function() local _, closed = c.got(); return closed end, "the close")
    assert.matches("^HTTP/1.1 405", (c.got())) -- a route that takes no body: refused before auth
    c = raw(s.port, "GET /v1/board HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000\r\n\r\n")
    wait_for(function() local _, closed = c.got(); return closed end, "the close")
    assert.matches("^HTTP/1.1 401", (c.got()))
    -- with the key, the declared size alone is refused
    c = raw(s.port, "GET /v1/board HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " .. k
      .. "\r\nContent-Length: 1000000000\r\n\r\n")
    wait_for(function() local _, closed = c.got(); return closed end, "the close")
    assert.matches("^HTTP/1.1 413", (c.got()))
    -- revoked: refused at once by the running server
    assert.equal(0, H.orket("keys revoke ci", { cwd = dir }).status)
    assert.equal(401, status(bearer(k)))
    assert.equal(401, status()) -- revoking the last key does not open the server again
    assert.equal(0, s.stop())
    local list = H.orket("keys list --json", { cwd = dir })
    assert.equal(0, list.status)
    assert.is_string(cjson.decode(list.stdout).keys[1].revoked_at)
    -- nowhere: not in the log, the store (WAL included), the journal or any listing
    local files = { s.log(), list.stdout, H.orket("keys list", { cwd = dir }).stdout,
      H.read(dir .. "/.orket/orket.db") or "", H.read(dir .. "/.orket/orket.db-wal") or "" }
    for _, text in ipairs(files) do
      assert.is_nil(text:find(secret, 1, true))
      assert.is_nil(text:find(k, 1, true))
    end
  end)

  it("limits the rate of failed authentications and of each key, with Retry-After", function()
    local dir = project()
    local k = key(dir, "ci", "viewer")
    local s = start(dir, { env = { ORKET_SERVE_LIMITS = "auth_fail_burst=2,auth_fail_rate=0.01,key_burst=3,key_rate=0.01" } })
    for _ = 1, 3 do assert.equal(200, (get(s.url .. "/v1/board", { headers = bearer(k) }))) end
    local st, b, h = get(s.url .. "/v1/board", { headers = bearer(k) })
    assert.equal(429, st)
    assert.equal("rate_limited", cjson.decode(b).error.code)
    assert.matches("^%d+$", h["retry-after"])
    assert.equal(401, (get(s.url .. "/v1/cards/API-1", { headers = bearer("x") })))
    assert.equal(401, (get(s.url .. "/v1/cards/API-1", { headers = bearer("y") })))
    st, _, h = get(s.url .. "/v1/cards/API-1", { headers = bearer("z") })
    assert.equal(429, st)
    assert.is_true(tonumber(h["retry-after"]) >= 1)
    assert.equal(200, (get(s.url .. "/health"))) -- probes need no key
    assert.equal(0, s.stop())
  end)

  it("answers a GET with endless chunked data or a lying length, and keeps serving", function()
    local dir = project()
    local s = start(dir, { env = { ORKET_SERVE_LIMITS = "header_timeout_ms=300" } })
    local c = raw(s.port, "GET /v1/board HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
    local t = uv.new_timer()
    t:start(1, 1, function() c.write("400\r\n" .. string.rep("x", 1024) .. "\r\n") end)
    wait_for(function() local _, closed = c.got(); return closed end, "the close")
    t:close()
    c.close()
    assert.matches("^HTTP/1.1 200", (c.got())) -- answered without reading the body, then closed
    c = raw(s.port, "GET /v1/board HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc")
    wait_for(function() local _, closed = c.got(); return closed end, "the close")
    assert.matches("^HTTP/1.1 200", (c.got()))
    -- headers that never end are cut off
    c = raw(s.port, "GET /v1/board HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1")
    wait_for(function() local _, closed = c.got(); return closed end, "the close")
    assert.equal("", (c.got()))
    -- headers over the cap
    c = raw(s.port, "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " .. string.rep("b", 40000) .. "\r\n\r\n")
    wait_for(function() local _, closed = c.got(); return closed end, "the close")
    assert.matches("^HTTP/1.1 431", (c.got()))
    assert.equal(200, (get(s.url .. "/health")))
    assert.equal(0, s.stop())
  end)

  it("serves others while 500 slow connections hang on", function()
    local dir = project()
    -- their headers may wait longer than the default 10 s while 500 connect on a loaded machine
    local s = start(dir, { env = { ORKET_SERVE_LIMITS = "header_timeout_ms=120000" } })
    local conns = {}
    for i = 1, 500 do
      -- from ten loopback addresses, to stay within the per-address limit
      conns[i] = raw(s.port, "GET /v1/board HTTP/1.1\r\nHost: localhost\r\n", "127.0.0." .. (2 + i % 10))
    end
    local st, b = get(s.url .. "/v1/board")
    assert.equal(200, st)
    assert.equal("orket.board/1", cjson.decode(b).format)
    local open = 0
    for _, c in ipairs(conns) do
      local _, closed = c.got()
      if not closed then open = open + 1 end
      c.close()
    end
    assert.equal(500, open) -- they were all still there while the board was served
    assert.equal(0, s.stop())
  end)

  it("refuses framing that could be read two ways with a 400 and a close, before any handler (RFC 9112)", function()
    local dir = project()
    local op = key(dir, "ops", "operator")
    local s = start(dir)
    local head = "POST /v1/cards/API-2/comments HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " .. op
      .. "\r\nContent-Type: application/json\r\n"
    local smuggled = "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"
    local function once(text, status, mhd)
      local c = raw(s.port, text)
      wait_for(function() local _, closed = c.got(); return closed end, "the close")
      local got = c.got()
      c.close()
      assert.matches("^HTTP/1%.1 " .. status, got)
      assert.matches("\r\n[Cc]onnection: close\r\n", got)
      if mhd then return end -- refused by libmicrohttpd itself, with its own page, before us
      assert.matches('"error":{"code":"', got, 1, true, text)
      local _, answers = got:gsub("HTTP/1%.1 %d%d%d", "")
      assert.equal(1, answers, got) -- what followed was never read as a request
      return got
    end
    -- Content-Length with Transfer-Encoding (6.1): the body read as chunked left a request behind
    local chunked = "d\r\n{\"body\":\"x\"}\r\n0\r\n\r\n" .. smuggled
    once(head .. "Content-Length: " .. #chunked .. "\r\nTransfer-Encoding: chunked\r\n\r\n" .. chunked, 400)
    once(head .. "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" .. chunked, 400)
    -- two lengths (6.3), different or the same, and a list
    once(head .. "Content-Length: 13\r\nContent-Length: 60\r\n\r\n{\"body\":\"x\"}" .. smuggled, 400)
    once(head .. "Content-Length: 13\r\nContent-Length: 13\r\n\r\n{\"body\":\"x\"}", 400)
    once(head .. "Content-Length: 13, 13\r\n\r\n{\"body\":\"x\"}", 400, "libmicrohttpd")
    -- on every route, a GET's too
    once("GET /health HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
      .. smuggled, 400)
    -- two transfer codings, or one it does not read
    once(head .. "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" .. chunked, 400)
    once(head .. "Transfer-Encoding: gzip, chunked\r\n\r\n" .. chunked, 501)
    -- a space before the colon (RFC 9112 5.1): the name was kept with it, framed nothing,
    -- and what a lenient front end took for the body was read here as a request of its own
    once(head .. "Content-Length : " .. (13 + #smuggled) .. "\r\n\r\n{\"body\":\"x\"}" .. smuggled, 400)
    once(head .. "Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n" .. chunked, 400)
    once("GET /health HTTP/1.1\r\nHost: localhost\r\nX-Bad Name: 1\r\n\r\n", 400)
    -- a line folded onto a framing header (5.2): libmicrohttpd 0.9.75 appends it to the name
    -- ("Content-Length5"), so the length a front end joined it into framed nothing here
    once(head .. "Content-Length:\r\n " .. (13 + #smuggled) .. "\r\n\r\n{\"body\":\"x\"}" .. smuggled, 400)
    once(head .. "Transfer-Encoding:\r\n chunked\r\n\r\n" .. chunked, 400)
    -- one Host, and a target without a space (3.2, 3): refused by us, as JSON; libmicrohttpd's
    -- own refusal of a missing Host wrote its header block twice, and of a space, nothing
    once("GET /health HTTP/1.1\r\n\r\n", 400)
    once("GET /health HTTP/1.1\r\nHost: localhost\r\nHost: elsewhere.example\r\n\r\n", 400)
    once("GET /health HTTP/1.1\r\nHost: localhost\r\n elsewhere.example\r\n\r\n", 400)
    once("GET /he alth HTTP/1.1\r\nHost: localhost\r\n\r\n", 400)
    -- a target in absolute form (3.2.2) other than http://host/path: another scheme, a user,
    -- no host; said so
    local function says(text, why)
      local c = raw(s.port, text)
      wait_for(function() local _, closed = c.got(); return closed end, "the close")
      local got = c.got()
      c.close()
      assert.matches("^HTTP/1%.1 400", got)
      assert.matches('"code":"bad_request","message":"' .. why, got, 1, true)
    end
    says("GET ftp://localhost/health HTTP/1.1\r\nHost: localhost\r\n\r\n",
      "the request target's scheme 'ftp' is not http or https")
    says("GET http://u@localhost/health HTTP/1.1\r\nHost: localhost\r\n\r\n", "the request target names a user")
    says("GET http:///health HTTP/1.1\r\nHost: localhost\r\n\r\n", "the request target's host is empty")
    -- a CR that ends no line (2.2), kept in the value by libmicrohttpd: one header here, two
    -- for a front end that ended the line at it
    says("GET /health HTTP/1.1\r\nHost: localhost\r\nX-A: 1\rHost: elsewhere.example\r\n\r\n",
      "the X-A header's value holds a CR that ends no line")
    -- (a front end that framed the body by the length it read after the CR: no length here,
    -- and the body read as requests of its own)
    once(head .. "X-Note: a\rContent-Length: " .. (13 + #smuggled) .. "\r\n\r\n{\"body\":\"x\"}" .. smuggled, 400)
    -- the same in a chunked body's trailers (7.1.2): a front end that ended them at the CR
    -- sent what followed as a request of its own, read here as more trailers and never
    -- answered; now the one answer is a 400, and the connection closes
    local got = once("POST /v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-T: a\r\r\nGET /a:b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400)
    assert.matches("the X-T trailer's value holds a CR that ends no line", got, 1, true)
    -- (a request line holding a colon, as one in absolute form does, reads as a trailer)
    got = once(head .. "Transfer-Encoding: chunked\r\n\r\nd\r\n{\"body\":\"x\"}\r\n0\r\nX-T: a\r\r\n"
      .. "GET http://localhost/health HTTP/1.1\r\nHost: localhost\r\n\r\n", 400)
    assert.matches("the X-T trailer's value holds a CR that ends no line", got, 1, true)
    -- a control character in the target (a CR where a front end may have ended the line):
    -- framing too, before the router
    got = once("GET /health\rX HTTP/1.1\r\nHost: localhost\r\n\r\n", 400)
    assert.matches("the request target holds a control character", got, 1, true)
    got = once("GET /v1/board?x=\rGET%20/health HTTP/1.1\r\nHost: localhost\r\n\r\n", 400)
    assert.matches("the request target holds a control character", got, 1, true)
    -- an absolute target's authority is parsed, not only its characters
    says("GET http://a:b:c/health HTTP/1.1\r\nHost: localhost\r\n\r\n", "the request target's host has more than one colon")
    says("GET http://LOCALHOST./health HTTP/1.1\r\nHost: localhost\r\n\r\n", "the request target's host has an empty label")
    -- a NUL in the target (the library ended the target's string at it: /health NUL ... was
    -- answered as /health) and a byte above 0x7f, on the quick /health too
    got = once("GET /health\0/../v1/board HTTP/1.1\r\nHost: localhost\r\n\r\n", 400)
    assert.matches("the request target holds a NUL byte", got, 1, true)
    got = once("GET /health?\233 HTTP/1.1\r\nHost: localhost\r\n\r\n", 400)
    assert.matches("the request target holds a byte above 0x7f", got, 1, true)
    -- a Host that is no host and port (RFC 9110 7.2, RFC 9112 3.2)
    says("GET /health HTTP/1.1\r\nHost: localhost:80a\r\n\r\n", "the Host header's port is not a number from 0 to 65535")
    says("GET /v1/board HTTP/1.1\r\nHost: local host\r\n\r\n", "the Host header's host holds a character no host may")
    -- a NUL in the method (the library ended the method's string at it)
    says("GET\0X /v1/board HTTP/1.1\r\nHost: localhost\r\n\r\n", "the request's method holds a NUL byte")
    -- Transfer-Encoding on HTTP/1.0 (6.1): faulty framing, never read as chunked
    once("POST /v1/session HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      .. "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" .. smuggled, 400)
    -- HTTP/1.0 names no Host
    local c10 = raw(s.port, "GET /health HTTP/1.0\r\n\r\n")
    wait_for(function() local _, closed = c10.got(); return closed end, "the HTTP/1.0 answer")
    assert.matches("^HTTP/1%.1 200", (c10.got()))
    c10.close()
    -- and sound framing still works, both ways
    local st = get(s.url .. "/v1/cards/API-2/comments", { method = "POST", headers = { "Authorization: Bearer " .. op,
      "Content-Type: application/json", "Transfer-Encoding: chunked" }, body = cjson.encode { body = "chunked" } })
    assert.equal(200, st)
    st = get(s.url .. "/v1/cards/API-2/comments", { method = "POST", headers = { "Authorization: Bearer " .. op,
      "Content-Type: application/json" }, body = cjson.encode { body = "sized" } })
    assert.equal(200, st)
    assert.equal(0, s.stop())
  end)

  -- RFC 9112 3.2.2: a target in absolute form is accepted, and its host, never a Host header
  -- beside it, says which origin the request is for: the API's or a sandbox's app's
  -- (docs/serve.md, "Apps on their own origins"; tests/e2e/serve_apps_test.lua reaches an app so)
  it("accepts a target in absolute form, whose host decides the origin over the Host header", function()
    local dir = project()
    local v = key(dir, "v", "viewer")
    local s = start(dir)
    local function ask(target, host, more)
      local c = raw(s.port, "GET " .. target .. " HTTP/1.1\r\nHost: " .. host .. "\r\n" .. (more or "")
        .. "Connection: close\r\n\r\n")
      wait_for(function() local _, closed = c.got(); return closed end, "the answer")
      local got = c.got()
      c.close()
      return tonumber(got:match("^HTTP/1%.1 (%d+)")), got:match("\r\n\r\n(.*)$")
    end
    local api, app = "127.0.0.1:" .. s.port, "3.sandbox.localhost:" .. s.port
    local st, b = ask("http://" .. api .. "/health", "localhost")
    assert.equal(200, st, b)
    assert.same({ status = "ok" }, cjson.decode(b))
    -- the query after the path is the route's as ever (?root= one epic alone)
    st, b = ask("http://" .. api .. "/v1/board?root=API", app, "Authorization: Bearer " .. v .. "\r\n")
    assert.equal(200, st, b)
    assert.equal("orket.board/1", cjson.decode(b).format)
    -- named the app's origin: the app's (no sign-in here: its 401), whatever Host says
    st, b = ask("http://" .. app .. "/health", api)
    assert.equal(401, st, b)
    assert.matches("Open this app from Orket's board", b, 1, true)
    st, b = ask("http://" .. app .. "/v1/board", api, "Authorization: Bearer " .. v .. "\r\n")
    assert.equal(401, st, b)
    -- the log names the route the path took, not the target
    assert.matches('"route":"/health","status":200', s.log(), 1, true)
    assert.equal(0, s.stop())
  end)

  it("answers pipelined requests in order", function()
    local dir = project()
    local v = key(dir, "v", "viewer")
    local s = start(dir)
    local paths = { "/v1/cards/API-1", "/health", "/v1/cards/API-2", "/v1/board", "/v1/cards/API-1", "/nope" }
    local text = {}
    for i, p in ipairs(paths) do
      text[i] = "GET " .. p .. " HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " .. v .. "\r\n\r\n"
    end
    local c = raw(s.port, table.concat(text))
    local function statuses()
      local out = {}
      for st in (c.got()):gmatch("HTTP/1%.1 (%d%d%d)") do out[#out + 1] = tonumber(st) end
      return out
    end
    wait_for(function() local _, closed = c.got(); return closed or #statuses() == 6 end, "six answers or a close")
    orket.sleep(100) -- nothing more comes
    local got = c.got()
    c.close()
    local st = statuses()
    if #st < 6 then -- the only other way: one answer that says it closes
      assert.equal(1, #st, got)
      assert.matches("\r\n[Cc]onnection: close\r\n", got)
    else
      assert.same({ 200, 200, 200, 200, 200, 404 }, st)
      local ids = {}
      for id in got:gmatch('"card":{[^}]-"id":"(API%-%d)"') do ids[#ids + 1] = id end
      local order = {}
      for piece in got:gmatch("HTTP/1%.1 %d%d%d.-\r\n\r\n[^\n]*") do
        order[#order + 1] = piece:match('"format":"(orket%.%a+)/1"') or piece:match('"status":"ok"') and "health"
          or piece:match('"not_found"') and "nope"
      end
      assert.same({ "orket.card", "health", "orket.card", "orket.board", "orket.card", "nope" }, order)
    end
    assert.equal(0, s.stop())
  end)

  it("ends with 0 however many SIGTERMs come while it stops", function()
    for _ = 1, 6 do
      local dir = project()
      local s = start(dir)
      -- SIGTERM after SIGTERM, as fast as the shell sends them, until the process is gone: one lands
      -- in every moment of its stop, the last ones too
      os.execute(string.format("while kill -TERM %d 2>/dev/null; do :; done", s.pid))
      local rc = wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the server's end")
      assert.equal("0", rc)
    end
  end)

  it("ignores SIGINT, SIGTERM and SIGHUP from the first one on, while it stops", function()
    local dir = project()
    local s = start(dir)
    -- a write whose body is half sent: in flight, the stop waits for it (drain_ms, 3 s)
    local c = raw(s.port, "POST /v1/cards/API-2/comments HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
      .. s.token .. "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te")
    orket.sleep(300)
    os.execute("kill -TERM " .. s.pid)
    -- all three ignored (SigIgn's bits 2, 15 and 1), so the kernel drops the next as they are sent:
    -- handled one callback each, a storm of them could outrun the loop
    local function ignored()
      local status = H.read("/proc/" .. s.pid .. "/status")
      local mask = status and tonumber(status:match("\nSigIgn:%s*(%x+)"), 16)
      return mask and (mask >> 1) & 1 == 1 and (mask >> 14) & 1 == 1 and mask & 1 == 1
    end
    wait_for(ignored, "SIGINT, SIGTERM and SIGHUP ignored")
    os.execute("kill -INT " .. s.pid .. "; kill -TERM " .. s.pid .. "; kill -HUP " .. s.pid)
    c.close()
    local rc = wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the server's end")
    assert.equal("0", rc)
  end)

  -- its terminal closed (SIGHUP) ended it at once with 129, its socket and token file left
  -- in .orket/ and its runs not stopped as a stop stops them; `orket run` took SIGHUP as a stop
  it("stops on SIGHUP as on SIGTERM: exit 0, its socket and token removed", function()
    local dir = project()
    local s = start(dir)
    wait_for(function() return H.read(dir .. "/.orket/serve.token") end, "the token file")
    os.execute("kill -HUP " .. s.pid)
    local rc = wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the server's end")
    assert.equal("0", rc, H.read(dir .. "/serve.err"))
    assert.is_nil(io.open(dir .. "/.orket/serve.token"))
    assert.is_nil(uv.fs_lstat(dir .. "/.orket/serve.sock"))
    -- the log says it stopped, and on which signal (it just ended: a logrotate's SIGHUP took a
    -- server down without a word)
    local log = H.read(dir .. "/serve.err")
    assert.matches('{"event":"stopping","signal":"SIGHUP","t":"[^"]+"}\n', log)
    assert.matches('{"event":"stopped","ms":%d+,"signal":"SIGHUP","t":"[^"]+"}\n', log)
  end)

  -- under nohup SIGHUP is ignored from the start, and stays so: the server goes on
  it("keeps serving on SIGHUP when it was ignored at the start, as under nohup", function()
    local dir = project()
    local wrap = H.tmpdir() .. "/nohup-orket"
    H.write(wrap, "#!/bin/sh\ntrap '' HUP\nexec " .. H.quote(H.BIN) .. ' "$@"\n')
    os.execute("chmod +x " .. H.quote(wrap))
    local bin = H.BIN
    H.BIN = wrap
    local started, s = pcall(start, dir)
    H.BIN = bin
    assert(started, s)
    wait_for(function() return H.read(dir .. "/.orket/serve.token") end, "the token file")
    os.execute("kill -HUP " .. s.pid)
    orket.sleep(500)
    assert.is_nil(H.read(dir .. "/serve.rc"))
    assert.is_true(H.alive(s.pid))
    assert.equal(0, s.stop())
  end)

  -- a closed terminal can send SIGHUP twice (the kernel's, then the shell's to its job): only
  -- SIGINT and SIGTERM were ignored once it stopped, and one SIGHUP landing while its
  -- handles closed ended the clean stop with 129
  it("ends with 0 however many SIGHUPs come while it stops", function()
    for _ = 1, 6 do
      local dir = project()
      local s = start(dir)
      os.execute(string.format("while kill -HUP %d 2>/dev/null; do :; done", s.pid))
      local rc = wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the server's end")
      assert.equal("0", rc)
    end
  end)

  it("answers again once a flood past the connection cap has closed", function()
    -- the default limits: 512 connections, 64 per address, headers within 10 s
    local s = start(project())
    local conns = {}
    -- past the cap, 50 from each loopback address, all at once (the server then drops them
    -- at one pass of its deadlines): 8 wait in the backlog
    for i = 1, 520 do conns[i] = raw(s.port, nil, "127.0.0." .. (2 + (i - 1) // 50), true) end
    wait_for(function()
      for _, c in ipairs(conns) do if not c.connected() then return false end end
      return true
    end, "520 connections")
    orket.sleep(14000) -- past the header deadline: the server drops the 512 it took
    for _, c in ipairs(conns) do c.close() end
    -- within one header deadline, not for good
    local st = H.fetch { url = s.url .. "/health", total_timeout_ms = 10000 }
    assert.equal(200, st)
    assert.equal(0, s.stop())
  end)

  it("streams the journal: replay, Last-Event-ID, filters, live events of another process, heartbeats", function()
    local dir = project()
    local admin = key(dir, "admin", "admin")
    local s = start(dir, { env = { ORKET_SERVE_LIMITS = "poll_ms=20,heartbeat_ms=100" } })
    -- open(path, headers) -> a stream reader: text() so far, close()
    local function open(path, headers)
      return H.stream { url = s.url .. path, headers = headers, total_timeout_ms = 30000 }
    end
    local function ids(text)
      local out = {}
      for id in text:gmatch("\nid: (%d+)") do out[#out + 1] = tonumber(id) end
      return out
    end
    local all = open("/v1/events?after=0", bearer(admin))
    assert.equal(200, all.status)
    assert.equal("text/event-stream; charset=utf-8", all.headers["content-type"])
    wait_for(function() return #ids(all.text()) >= 11 end, "the replay") -- 10 imports and the key
    local got = ids(all.text())
    for i = 2, #got do assert.equal(got[i - 1] + 1, got[i]) end
    assert.matches('event: import\ndata: {"id":1,"at":"[^"]+","kind":"import","card":"LAUNCH","run":null', all.text())
    -- Last-Event-ID wins over nothing and replays after it
    local after5 = open("/v1/events", { "Authorization: Bearer " .. admin, "Last-Event-ID: 5" })
    wait_for(function() return #ids(after5.text()) >= 6 end, "the replay after 5")
    assert.equal(6, ids(after5.text())[1])
    -- a card filter
    local one = open("/v1/events?after=0&card=API-2", bearer(admin))
    -- live: an event written by another process (orket keys) reaches the streams
    local live = open("/v1/events", bearer(admin))
    orket.sleep(50)
    assert.equal(0, H.orket("keys create second --role viewer", { cwd = dir }).status)
    wait_for(function() return live.text():find("event: key_create", 1, true) end, "the live event")
    wait_for(function() return #ids(all.text()) >= 12 end, "the live event after the replay")
    assert.is_nil(live.text():find("event: import", 1, true)) -- live only: no replay
    wait_for(function() return live.text():find(": heartbeat\n\n", 1, true) end, "a heartbeat")
    for id in one.text():gmatch('"card":"([^"]*)"') do assert.equal("API-2", id) end
    assert.equal(1, #ids(one.text()))
    assert.equal(404, (get(s.url .. "/v1/runs/999/events", { headers = bearer(admin) })))
    assert.equal(400, (get(s.url .. "/v1/events?after=x", { headers = bearer(admin) })))
    -- SIGTERM ends the streams and exits 0
    assert.equal(0, s.stop())
    for _, st in ipairs { all, after5, one, live } do
      wait_for(st.done, "the stream's end")
      st.close()
    end
  end)

  -- a revoked key's open stream ran on to the next heartbeat (15 s), getting what was written
  -- meanwhile: the revocation's own row has the streams checked before it is delivered
  it("ends a revoked key's open stream before anything written after the revocation reaches it", function()
    local dir = project()
    local admin = key(dir, "admin", "admin")
    local viewer = key(dir, "watcher", "viewer")
    local s = start(dir, { env = { ORKET_SERVE_LIMITS = "poll_ms=20,heartbeat_ms=600000" } })
    local watch = H.stream { url = s.url .. "/v1/events", headers = bearer(viewer), total_timeout_ms = 30000 }
    local other = H.stream { url = s.url .. "/v1/events", headers = bearer(admin), total_timeout_ms = 30000 }
    assert.equal(200, watch.status)
    orket.sleep(50)
    assert.equal(0, H.orket("keys revoke watcher", { cwd = dir }).status)
    assert.equal(200, (get(s.url .. "/v1/cards/API-2/comments", { method = "POST", headers = { "Authorization: Bearer "
      .. admin, "Content-Type: application/json" }, body = '{"body":"after the revocation"}' })))
    wait_for(function() return other.text():find("event: comment", 1, true) end, "the comment on the other stream")
    wait_for(watch.done, "the revoked key's stream ended")
    assert.is_nil(watch.text():find("after the revocation", 1, true))
    assert.is_nil(watch.text():find("event: comment", 1, true))
    assert.equal(0, s.stop())
    for _, st in ipairs { watch, other } do st.close() end
  end)

  -- On PostgreSQL the hub waits on the events trigger's NOTIFY: with the fallback read set
  -- to ten minutes, an event that reaches a stream at all was read because of a notification
  -- (or a reconnect), and the counters in /metrics say which.
  local pg_it = require("tests.backends").name() == "pg" and it
    or function(name) pending(name .. " [on PostgreSQL only: the PostgreSQL layer of tests/run.sh runs it]") end
  pg_it("on PostgreSQL, carries events written by another server or process to every server's streams on NOTIFY, "
    .. "and after its listener's connection is ended", function()
    local dir = project()
    local admin = key(dir, "admin", "admin")
    -- (the test asks /metrics every 10 ms while it waits: no rate limit in the way)
    local limits = { ORKET_SERVE_LIMITS = "listen_poll_ms=600000,heartbeat_ms=600000,"
      .. "addr_rate=100000,addr_burst=100000,key_rate=100000,key_burst=100000" }
    local a = start(dir, { env = limits })
    -- a second server on the same database, from a directory of its own (its own serve.* files)
    local dir2 = require("tests.fixtures").server_copy(dir)
    local b = start(dir2, { env = limits })
    local function reads(s)
      local st, text = get(s.url .. "/metrics", { headers = bearer(admin) })
      assert.equal(200, st, text)
      local out = {}
      for why, n in text:gmatch('orket_sse_journal_reads_total{reason="(%w+)"} (%d+)') do out[why] = tonumber(n) end
      out.carried = tonumber(text:match("\norket_sse_notifications_carried_total (%d+)"))
      assert.is_number(out.notify, text)
      assert.is_number(out.carried, text)
      return out
    end
    -- each listener's first connection reads once (anything committed before it LISTENed)
    wait_for(function() return reads(a).reconnect >= 1 and reads(b).reconnect >= 1 end, "the listeners")
    local live = H.stream { url = a.url .. "/v1/events", headers = bearer(admin), total_timeout_ms = 60000 }
    assert.equal(200, live.status)
    orket.sleep(50)
    local ra, rb = reads(a), reads(b)
    assert.same({ timer = 0, fallback = 0 }, { timer = ra.timer, fallback = ra.fallback }) -- no 20 ms poll
    -- a comment written through server B reaches A's stream; its NOTIFY carries it, so
    -- neither server reads the journal for it (a second server costs no second read)
    local st, body = get(b.url .. "/v1/cards/API-2/comments", { method = "POST", headers = { bearer(admin)[1],
      "Content-Type: application/json" },
      body = '{"body":"Written through B."}' })
    assert.equal(200, st, body)
    wait_for(function() return live.text():find("event: comment\n", 1, true) end, "B's comment on A's stream")
    wait_for(function() return reads(a).carried > ra.carried and reads(b).carried > rb.carried end, "both servers' notifications")
    assert.same({ ra.notify, rb.notify }, { reads(a).notify, reads(b).notify })
    -- an event too large for a payload (8000 bytes) is announced without it, and read from
    -- the journal
    local big = string.rep("x", 9000)
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:tx(function()
      db:event { kind = "comment", card = "API-2", actor = "test", data = { pad = big } }
      return true
    end))
    wait_for(function() return live.text():find(big, 1, true) end, "the large event on A's stream")
    wait_for(function() return reads(a).notify > ra.notify and reads(b).notify > rb.notify end, "both servers' reads")
    -- idle: nothing is read without a notification
    ra = reads(a)
    orket.sleep(300)
    assert.same(ra, reads(a))
    -- end both listeners' server processes; an event committed meanwhile (another process,
    -- orket keys) still arrives: the listener connects again and the hub re-reads its cursor
    local killed = assert(db:rows("SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
      .. "WHERE datname = current_database() AND query LIKE 'LISTEN%'"))
    assert.equal(2, #killed)
    db:close()
    assert.equal(0, H.orket("keys create second --role viewer", { cwd = dir }).status)
    wait_for(function() return live.text():find("event: key_create", 1, true) end, "the event after the kill")
    wait_for(function() return reads(a).reconnect > ra.reconnect end, "A's listener again")
    -- and later events arrive on its new connection's notifications
    ra = reads(a)
    assert.equal(0, H.orket("keys create third --role viewer", { cwd = dir }).status)
    wait_for(function() return select(2, live.text():gsub("event: key_create", "")) == 2 end, "the next event")
    assert.is_true(reads(a).carried > ra.carried)
    assert.equal(0, reads(a).fallback)
    assert.equal(0, b.stop())
    assert.equal(0, a.stop())
    wait_for(live.done, "the stream's end")
    live.close()
  end)

  -- Two servers on one database are one service: what a client made on one (a session, a
  -- cursor in the journal, a webhook delivery's id) holds on the other.
  pg_it("on PostgreSQL, serves any request on any of two servers: a session, a stream moved with Last-Event-ID, "
    .. "a webhook delivered to both", function()
    local crypto = require "orket.c.crypto"
    local dir = project()
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\ngit = { remote = \"file://" .. dir .. "/remote.git\", forge = \"gitea\", repo = \"acme/notes\", "
      .. "token_env = \"FORGE_TOKEN\", api_url = \"http://127.0.0.1:9\", "
      .. "webhook_secret_env = \"FORGE_HOOK_SECRET\" }\n")
    local admin = key(dir, "admin", "admin")
    local env = { FORGE_HOOK_SECRET = "s3cret", ORKET_SERVE_LIMITS = "heartbeat_ms=600000,auth_fail_rate=0.01,auth_fail_burst=2" }
    local a = start(dir, { env = env })
    local dir2 = require("tests.fixtures").server_copy(dir)
    local b = start(dir2, { env = env })
    -- a session made on A reads and writes on B; signed out on B, it is gone on A too
    local st, text, hs = get(a.url .. "/v1/session", { method = "POST", headers = { "Content-Type: application/json" },
      body = cjson.encode { key = admin } })
    assert.equal(200, st, text)
    local cookie = assert(hs["set-cookie"]):match("^([^;]+)")
    local csrf = cjson.decode(text).csrf
    assert.equal(200, (get(b.url .. "/v1/board", { headers = { "Cookie: " .. cookie } })))
    st, text = get(b.url .. "/v1/cards/API-2/comments", { method = "POST", headers = { "Cookie: " .. cookie,
      "X-CSRF-Token: " .. csrf, "Content-Type: application/json" }, body = '{"body":"Through B with a session from A."}' })
    assert.equal(200, st, text)
    -- a stream on A, ended; the client goes on at B from its last id: nothing lost, nothing twice
    local function ids(t)
      local out = {}
      for id in t:gmatch("\nid: (%d+)") do out[#out + 1] = tonumber(id) end
      return out
    end
    local on_a = H.stream { url = a.url .. "/v1/events?after=0", headers = bearer(admin), total_timeout_ms = 60000 }
    wait_for(function() return on_a.text():find("Through B", 1, true) or on_a.text():find("event: comment\n", 1, true) end,
      "the replay on A")
    orket.sleep(100)
    local seen_a = ids(on_a.text())
    on_a.close()
    local last = seen_a[#seen_a]
    -- written while the client is away, through A
    assert.equal(200, (get(a.url .. "/v1/cards/API-2/comments", { method = "POST", headers = { bearer(admin)[1],
      "Content-Type: application/json" },
      body = '{"body":"While the client moved."}' })))
    local on_b = H.stream { url = b.url .. "/v1/events", headers = { "Authorization: Bearer " .. admin,
      "Last-Event-ID: " .. last }, total_timeout_ms = 60000 }
    wait_for(function() return select(2, on_b.text():gsub("event: comment\n", "")) >= 1 end, "the missed event on B")
    -- and live: written through A, seen on B
    assert.equal(200, (get(a.url .. "/v1/cards/API-2/comments", { method = "POST", headers = { bearer(admin)[1],
      "Content-Type: application/json" },
      body = '{"body":"Live through A."}' })))
    wait_for(function() return select(2, on_b.text():gsub("event: comment\n", "")) >= 2 end, "A's live event on B")
    orket.sleep(100)
    local all = seen_a
    for _, id in ipairs(ids(on_b.text())) do all[#all + 1] = id end
    local db = assert(require("orket.project").open_store(dir, false))
    local journal = {}
    for _, r in ipairs(assert(db:rows("SELECT id FROM events ORDER BY id"))) do journal[#journal + 1] = r.id end
    assert.same(journal, all) -- every event once, in order, across the move
    -- one delivery sent to both servers (in turn, then at once) acts once: one row, the
    -- other answer a duplicate
    local body = H.read(H.ROOT .. "/tests/fixtures/forge/gitea_review_rejected.json"):gsub('"number": 1,', '"number": 99,')
    local function deliver(s, id)
      local dst, dtext = H.fetch { url = s.url .. "/v1/webhooks/gitea", method = "POST", body = body,
        headers = { "Content-Type: application/json", "X-Gitea-Event: pull_request", "X-Gitea-Event-Type: pull_request_review_rejected",
          "X-Gitea-Delivery: " .. id, "X-Gitea-Signature: " .. crypto.hmac_sha256("s3cret", body) }, total_timeout_ms = 20000 }
      assert.equal(200, dst, dtext)
      return cjson.decode(dtext).outcome
    end
    assert.equal("ignored", deliver(a, "d-1"))
    assert.equal("duplicate", deliver(b, "d-1"))
    local outs = {}
    local t1 = orket.spawn(function() outs[1] = deliver(a, "d-2") end)
    local t2 = orket.spawn(function() outs[2] = deliver(b, "d-2") end)
    assert(t1:join())
    assert(t2:join())
    local rows = assert(db:rows("SELECT delivery FROM webhook_deliveries ORDER BY delivery"))
    db:close()
    assert.equal(2, #rows)
    assert.same({ "d-1", "d-2" }, { rows[1].delivery, rows[2].delivery })
    -- failed authentications count over both servers: two on A, and B refuses the
    -- address's next one; its valid key still acts there
    local bad = "ork_0000000000000000_" .. string.rep("0", 43)
    assert.equal(401, (get(a.url .. "/v1/board", { headers = bearer(bad) })))
    assert.equal(401, (get(a.url .. "/v1/board", { headers = bearer(bad) })))
    assert.equal(429, (get(b.url .. "/v1/board", { headers = bearer(bad) })))
    assert.equal(200, (get(b.url .. "/v1/board", { headers = bearer(admin) })))
    assert.equal(0, b.stop())
    assert.equal(0, a.stop())
    on_b.close()
  end)
end)
