-- orket.serve's proxy's memory (docs/serve.md, "The proxy's memory"): a request proxied the
-- Lua way is proxied again from C when it comes again the same, under the same store stamp,
-- until its sandbox's row is read again; anything else goes the Lua way. SQLite's only:
-- on PostgreSQL (no stamp) every request goes the Lua way.
local httpd = require "orket.c.httpd"
local ops = require "orket.store.sandboxes"
local keys = require "orket.serve.keys"
local sandboxes = require "orket.serve.sandboxes"
local task = require "orket.task"
local uv = require "luv"
local cjson = require "cjson"
local H = require "tests.helpers"
local F = require "tests.fixtures"

local ROUTE = "/v1/sandboxes/{id}/app/{path}"

describe("orket.serve's proxy's memory", function()
  local ttl = sandboxes.ROW_TTL_MS
  after_each(function()
    sandboxes.ROW_TTL_MS = ttl
    H.cleanup()
  end)

  -- an app on a unix socket answering each request with its method, path and a count
  local function app()
    local sock = H.tmpdir() .. "/app.sock"
    local up = assert(httpd.listen { unix = sock })
    local n = 0
    task.spawn(function()
      while true do
        local req = up:accept()
        if not req then return end
        n = n + 1
        req:respond(200, { "Content-Type: text/plain" }, req.method .. " " .. req.path .. " " .. n)
        req:close()
      end
    end)
    return up, sock
  end

  -- a server of a store with one healthy sandbox at sock, counting the requests that went
  -- the Lua way (its dispatch); its log lines kept
  local function server(sock, limits)
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local backends, store = require "tests.backends", require "orket.store"
    local where = backends.name() == "pg" and backends.fresh_url() or H.tmpdir() .. "/orket.db"
    local open = function() return assert(backends.name() == "pg" and store.open_url(where) or store.open(where)) end
    local db = open()
    local srv, stop = F.served { dir = dir, db = db, host = "127.0.0.1", port = 0, limits = limits }
    local pid = uv.os_getpid()
    local id = ops.insert(db, { target = "main", port = 0, socket = sock, command = "[]", owner_pid = pid,
      owner_start = require("orket.sandboxes.service").start_time(pid) })
    ops.set_status(db, id, "healthy")
    local lines = {}
    srv.log = function(line) lines[#lines + 1] = cjson.decode(line) end
    local seen = { n = 0 }
    local dispatch = srv._dispatch
    srv._dispatch = function(self, req, ctx)
      seen.n = seen.n + 1
      return dispatch(self, req, ctx)
    end
    local memo = type(db.conn) == "userdata" -- SQLite's store: the stamp
    return { srv = srv, db = db, dir = dir, id = id, lines = lines, seen = seen, memo = memo, stop = stop, open = open,
      url = "http://127.0.0.1:" .. srv:port() .. "/v1/sandboxes/" .. id .. "/app" }
  end

  local function proxied(lines)
    local out = {}
    for _, l in ipairs(lines) do
      if l.route == ROUTE then out[#out + 1] = l end
    end
    return out
  end

  -- the status of text sent on a connection of its own to port (from the address from, by
  -- default 127.0.0.1), and the whole answer, read once the server closes it (orket's client
  -- has no HEAD: it would wait for a body)
  local function exchange(port, text, from)
    local c = uv.new_tcp()
    if from then assert(c:bind(from, 0)) end
    local got, closed = {}, false
    c:connect("127.0.0.1", port, function(e)
      assert(not e, e)
      c:write(text)
      c:read_start(function(_, d) if d then got[#got + 1] = d else closed = true end end)
    end)
    H.wait_for(function() return closed end, "the answer's end", 5000)
    c:close()
    local text_back = table.concat(got)
    return tonumber(text_back:match("^HTTP/1%.1 (%d%d%d)")), text_back
  end

  -- how many of the requests went the Lua way: all of them without the memory
  local function lua_way(s, with_memory) return s.memo and with_memory or s.seen.n end

  it("proxies the same request again from C, answered, logged and counted as the first", function()
    sandboxes.ROW_TTL_MS = 60000 -- the row never read again here: each request counted is one decided
    local up, sock = app()
    local s = server(sock)
    local a = { H.fetch { url = s.url .. "/notes" } }
    local b = { H.fetch { url = s.url .. "/notes" } }
    local c = { H.fetch { url = s.url .. "/notes" } }
    assert.same({ 200, "GET /notes 1" }, { a[1], a[2] })
    assert.same({ 200, "GET /notes 2" }, { b[1], b[2] })
    assert.same({ 200, "GET /notes 3" }, { c[1], c[2] })
    -- the answer's own lines, as the Lua way's pump gives them
    assert.equal(a[3]["x-orket-sandbox"], c[3]["x-orket-sandbox"])
    assert.equal(a[3]["content-security-policy"], c[3]["content-security-policy"])
    assert.equal(lua_way(s, 1), s.seen.n)
    assert.equal(s.memo and 1 or 0, s.srv.srv:proxy_memo_count())
    H.wait_for(function() return #proxied(s.lines) == 3 end, "the log lines")
    local first, last = proxied(s.lines)[1], proxied(s.lines)[3]
    for _, k in ipairs { "addr", "key", "method", "route", "status" } do assert.same(first[k], last[k]) end
    assert.is_nil(last.note)
    assert.equal(3, (s.srv.tallies[ROUTE]:stats()))
    assert.equal(0, s.srv.tallies[ROUTE]:active())
    s.stop()
    up:close()
  end)

  it("goes the Lua way for a write to the store, another header, method or query", function()
    sandboxes.ROW_TTL_MS = 60000
    local up, sock = app()
    local s = server(sock)
    local get = function(o) return (H.fetch(o)) end
    assert.equal(200, get { url = s.url .. "/x" })
    assert.equal(200, get { url = s.url .. "/x" })
    assert.equal(lua_way(s, 1), s.seen.n)
    -- any write, by any connection, moves the stamp: decided again, then remembered again
    ops.set_status(s.db, s.id, "healthy")
    assert.equal(200, get { url = s.url .. "/x" })
    assert.equal(lua_way(s, 2), s.seen.n)
    assert.equal(200, get { url = s.url .. "/x" })
    assert.equal(lua_way(s, 2), s.seen.n)
    -- a header more, or one of another value: another request
    assert.equal(200, get { url = s.url .. "/x", headers = { "X-Other: 1" } })
    assert.equal(lua_way(s, 3), s.seen.n)
    assert.equal(200, get { url = s.url .. "/x", headers = { "X-Other: 2" } })
    assert.equal(lua_way(s, 4), s.seen.n)
    assert.equal(200, get { url = s.url .. "/x", headers = { "X-Other: 2" } })
    assert.equal(lua_way(s, 4), s.seen.n)
    -- a HEAD is its own request, remembered apart
    local port = s.srv:port()
    local head = "HEAD /v1/sandboxes/" .. s.id .. "/app/x HTTP/1.1\r\nHost: 127.0.0.1:" .. port
      .. "\r\nConnection: close\r\n\r\n"
    assert.equal(200, exchange(port, head))
    local hst, htext = exchange(port, head)
    assert.equal(200, hst)
    assert.equal(lua_way(s, 5), s.seen.n)
    assert.matches("\r\n[Cc]ontent%-[Ll]ength: %d+\r\n", htext) -- the GET's length ...
    assert.equal("", htext:match("\r\n\r\n(.*)$")) -- ... and no body
    -- another address is another request, and a request from it is remembered apart
    local ast = exchange(port, head, "127.0.0.2")
    assert.equal(200, ast)
    assert.equal(lua_way(s, 6), s.seen.n)
    -- a query is never remembered (its target is more than the path)
    assert.equal(200, get { url = s.url .. "/x?a=1" })
    assert.equal(200, get { url = s.url .. "/x?a=1" })
    assert.equal(lua_way(s, 8), s.seen.n)
    s.stop()
    up:close()
  end)

  it("refuses a key revoked at once, and takes its tokens from the same buckets", function()
    sandboxes.ROW_TTL_MS = 60000
    local up, sock = app()
    local s = server(sock, require("orket.serve").limits("key_rate=0.001,key_burst=5"))
    local key, info = keys.create(s.db, s.dir, "k", "admin")
    assert.truthy(key, info)
    local auth = { "Authorization: Bearer " .. key }
    assert.equal(200, (H.fetch { url = s.url .. "/y", headers = auth }))
    assert.equal(200, (H.fetch { url = s.url .. "/y", headers = auth }))
    assert.equal(lua_way(s, 1), s.seen.n)
    -- a request with a body is never remembered
    local post = { url = s.url .. "/y", method = "POST", body = "b", headers = { auth[1], "Content-Type: text/plain" } }
    local st1, b1 = H.fetch(post)
    local st2, b2 = H.fetch(post)
    assert.same({ 200, "POST /y 3", 200, "POST /y 4" }, { st1, b1, st2, b2 })
    assert.equal(lua_way(s, 3), s.seen.n)
    assert.equal(200, (H.fetch { url = s.url .. "/y", headers = auth }))
    assert.equal(lua_way(s, 3), s.seen.n)
    -- the key's sixth request: its bucket is empty, whichever way the others went
    local st, body, h = H.fetch { url = s.url .. "/y", headers = auth }
    assert.equal(429, st, body)
    assert.truthy(h["retry-after"])
    assert.matches("requests with this key", body, 1, true)
    -- the lines of the requests from the memory name the key as the others
    H.wait_for(function() return #proxied(s.lines) == 6 end, "the log lines")
    local statuses = {}
    for i, l in ipairs(proxied(s.lines)) do
      statuses[i] = l.status
      assert.equal(info.id, l.key)
    end
    table.sort(statuses)
    assert.same({ 200, 200, 200, 200, 200, 429 }, statuses)
    assert(keys.revoke(s.db, "k"))
    local st2, body2 = H.fetch { url = s.url .. "/y", headers = auth }
    assert.equal(401, st2, body2)
    s.stop()
    up:close()
  end)

  it("holds a decision until the sandbox's row is read again, and none once the server stops", function()
    sandboxes.ROW_TTL_MS = 200
    local up, sock = app()
    local s = server(sock)
    assert.equal(200, (H.fetch { url = s.url .. "/z" }))
    assert.equal(200, (H.fetch { url = s.url .. "/z" }))
    assert.equal(lua_way(s, 1), s.seen.n)
    uv.sleep(250)
    assert.equal(200, (H.fetch { url = s.url .. "/z" }))
    assert.equal(lua_way(s, 2), s.seen.n)
    -- a sandbox this server forgets (one it stopped) is forgotten by the memory too
    if s.memo then
      assert.equal(1, s.srv.srv:proxy_memo_count())
      s.srv:proxy_forget()
      assert.equal(0, s.srv.srv:proxy_memo_count())
    end
    local srv = s.srv.srv
    s.stop()
    assert.equal(0, srv:proxy_memo_count())
    up:close()
  end)

  it("decides again after a write through another connection, and takes the address's tokens", function()
    sandboxes.ROW_TTL_MS = 60000
    local up, sock = app()
    local s = server(sock, require("orket.serve").limits("addr_rate=0.001,addr_burst=4"))
    local key = assert(keys.create(s.db, s.dir, "k", "admin"))
    local auth = { "Authorization: Bearer " .. key }
    assert.equal(200, (H.fetch { url = s.url .. "/w", headers = auth }))
    assert.equal(200, (H.fetch { url = s.url .. "/w", headers = auth }))
    assert.equal(lua_way(s, 1), s.seen.n)
    -- another process's write: SQLite's data_version moves, not this connection's own count
    local other = s.open()
    assert(keys.revoke(other, "k"))
    other:close()
    assert.equal(401, (H.fetch { url = s.url .. "/w", headers = auth }))
    assert.equal(lua_way(s, 2), s.seen.n)
    -- the address's bucket (4) ran out with the fourth request: the fifth, the same as the
    -- second, is answered 429 the Lua way
    local key2 = assert(keys.create(s.db, s.dir, "k2", "admin"))
    local auth2 = { "Authorization: Bearer " .. key2 }
    assert.equal(200, (H.fetch { url = s.url .. "/w", headers = auth2 }))
    local st, body = H.fetch { url = s.url .. "/w", headers = auth2 }
    assert.equal(429, st, body)
    assert.matches("requests from this address", body, 1, true)
    s.stop()
    up:close()
  end)

  it("drops a decision that no longer holds with no request coming: its credentials are not kept", function()
    sandboxes.ROW_TTL_MS = 60000
    local up, sock = app()
    local s = server(sock)
    local key = assert(keys.create(s.db, s.dir, "k", "admin"))
    local auth = { "Authorization: Bearer " .. key }
    assert.equal(200, (H.fetch { url = s.url .. "/v", headers = auth }))
    assert.equal(s.memo and 1 or 0, s.srv.srv:proxy_memo_count())
    if not s.memo then -- PostgreSQL: nothing is remembered, so nothing is held
      s.stop()
      up:close()
      return
    end
    -- revoked by another process, and no request after: the memory's timer drops it
    local other = s.open()
    assert(keys.revoke(other, "k"))
    other:close()
    H.wait_for(function() return s.srv.srv:proxy_memo_count() == 0 end, "the entry swept", 3000)
    -- past its time too (the sandbox's row is to be read again)
    sandboxes.ROW_TTL_MS = 100
    local key2 = assert(keys.create(s.db, s.dir, "k2", "admin"))
    assert.equal(200, (H.fetch { url = s.url .. "/v", headers = { "Authorization: Bearer " .. key2 } }))
    assert.equal(1, s.srv.srv:proxy_memo_count())
    H.wait_for(function() return s.srv.srv:proxy_memo_count() == 0 end, "the expired entry swept", 3000)
    s.stop()
    up:close()
  end)

  it("answers the app's failure from the memory as the Lua way does, and ends in flight at the stop", function()
    sandboxes.ROW_TTL_MS = 60000
    -- an app that answers its first connection, gives its second bytes that are not HTTP and
    -- never answers its third
    local sock = H.tmpdir() .. "/odd.sock"
    local raw = uv.new_pipe(false)
    assert(raw:bind(sock))
    local n, held = 0, {}
    raw:listen(16, function()
      local c = uv.new_pipe(false)
      raw:accept(c)
      n = n + 1
      local which = n
      c:read_start(function(_, d)
        if not (d and d:find("\r\n\r\n", 1, true)) then return end
        c:read_stop()
        if which == 1 then
          c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", function() c:close() end)
        elseif which == 2 then
          c:write("not http at all\r\n\r\n", function() c:close() end)
        else
          held[#held + 1] = c
        end
      end)
    end)
    local s = server(sock, require("orket.serve").limits("drain_ms=200"))
    assert.equal(200, (H.fetch { url = s.url .. "/f" }))
    local st, body, h = H.fetch { url = s.url .. "/f" }
    assert.equal(lua_way(s, 1), s.seen.n)
    assert.equal(502, st, body)
    assert.matches("^application/json", h["content-type"])
    assert.equal("Origin", h.vary)
    assert.equal("bad_gateway", cjson.decode(body).error.code)
    local got
    task.spawn(function() got = { H.fetch { url = s.url .. "/f" } } end)
    H.wait_for(function() return s.srv.tallies[ROUTE]:active() == 1 end, "the pump")
    assert.equal(lua_way(s, 1), s.seen.n)
    s.stop()
    H.wait_for(function() return got ~= nil end, "the answer")
    assert.equal(503, got[1])
    assert.equal(0, s.srv.tallies[ROUTE]:active())
    local lines = proxied(s.lines)
    assert.same({ 200, 502, 503 }, { lines[1].status, lines[2].status, lines[3].status })
    assert.equal("sandbox " .. s.id .. ": ", lines[2].note:sub(1, #("sandbox " .. s.id .. ": ")))
    for _, c in ipairs(held) do c:close() end
    raw:close()
  end)

  -- RFC 9110 15.6.5: an app that takes the request and never answers is a gateway's
  -- timeout, from the memory as the Lua way
  it("answers 504 from the memory when the app never answers, as the Lua way does", function()
    sandboxes.ROW_TTL_MS = 60000
    local was = sandboxes.PROXY_TIMEOUT_MS
    sandboxes.PROXY_TIMEOUT_MS = 800 -- read once per socket, as its kept options are made
    local sock = H.tmpdir() .. "/mute.sock"
    local raw = uv.new_pipe(false)
    assert(raw:bind(sock))
    local n, held = 0, {}
    raw:listen(16, function()
      local c = uv.new_pipe(false)
      raw:accept(c)
      n = n + 1
      local which = n
      c:read_start(function(_, d)
        if not (d and d:find("\r\n\r\n", 1, true)) then return end
        c:read_stop()
        if which == 1 then
          c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", function() c:close() end)
        else
          held[#held + 1] = c -- taken, never answered
        end
      end)
    end)
    local ok, e = pcall(function()
      local s = server(sock)
      assert.equal(200, (H.fetch { url = s.url .. "/t" }))
      local st, body, h = H.fetch { url = s.url .. "/t" }
      assert.equal(lua_way(s, 1), s.seen.n)
      assert.equal(504, st, body)
      assert.matches("^application/json", h["content-type"])
      assert.equal("gateway_timeout", cjson.decode(body).error.code)
      -- a time under a second said in ms, not as "0 s"; and the connect timeout, also a 504
      assert.matches("gave no answer within 800 ms, or did not take the connection within 5 s",
        cjson.decode(body).error.message, 1, true)
      H.wait_for(function() return #proxied(s.lines) == 2 end, "the log lines")
      assert.equal(504, proxied(s.lines)[2].status)
      s.stop()
    end)
    sandboxes.PROXY_TIMEOUT_MS = was
    for _, c in ipairs(held) do c:close() end
    raw:close()
    assert(ok, e)
  end)

  -- The memory starts a pump only within the address's share of the app's places (shortened
  -- here; loopback held to it as PROXY_EACH_LOCAL says, standing for a client): a request
  -- past it goes the Lua way and is answered 503 app_busy naming the address, not refused
  -- by the pump as a 502; another address still reaches the app
  it("answers 503 app_busy from the memory to an address past its share, as the Lua way does", function()
    sandboxes.ROW_TTL_MS = 60000
    local was, was_each, was_local = sandboxes.PROXY_LIVE_MAX, sandboxes.PROXY_LIVE_EACH, sandboxes.PROXY_EACH_LOCAL
    sandboxes.PROXY_LIVE_MAX, sandboxes.PROXY_LIVE_EACH = 4, 1 -- read once per socket
    sandboxes.PROXY_EACH_LOCAL = true
    local release, held = false, 0
    local sock = H.tmpdir() .. "/app.sock"
    local up = assert(httpd.listen { unix = sock })
    task.spawn(function() -- /hold is held until the release, anything else answered at once
      while true do
        local req = up:accept()
        if not req then return end
        task.spawn(function()
          if req.path == "/hold" then
            held = held + 1
            H.wait_for(function() return release end, "the release", 10000)
          end
          req:respond(200, { "Content-Type: text/plain" }, req.method .. " " .. req.path)
          req:close()
        end)
      end
    end)
    local ok, e = pcall(function()
      local s = server(sock)
      assert.equal(200, (H.fetch { url = s.url .. "/notes" }))
      assert.equal(200, (H.fetch { url = s.url .. "/notes" })) -- from the memory
      assert.equal(lua_way(s, 1), s.seen.n)
      local got
      task.spawn(function() got = { H.fetch { url = s.url .. "/hold" } } end)
      H.wait_for(function() return held == 1 end, "the held request at the app", 10000)
      local n = s.seen.n
      local st, body, h = H.fetch { url = s.url .. "/notes" }
      assert.equal(503, st, body)
      local doc = cjson.decode(body)
      assert.equal("app_busy", doc.error.code)
      assert.matches("requests in progress (streams or slow answers) from this address", doc.error.message, 1, true)
      assert.equal("5", h["retry-after"])
      assert.equal(n + 1, s.seen.n) -- the Lua way answered it
      -- another address's own request reaches the app meanwhile
      local path = s.url:match("^http://[^/]+(.*)$") .. "/notes"
      local st2, text = exchange(s.srv:port(), "GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1:" .. s.srv:port()
        .. "\r\nConnection: close\r\n\r\n", "127.0.0.2")
      assert.equal(200, st2, text)
      release = true
      H.wait_for(function() return got end, "the held answer", 10000)
      assert.equal(200, got[1])
      -- its place given back: the memory's request goes again
      assert.equal(200, (H.fetch { url = s.url .. "/notes" }))
      s.stop()
    end)
    sandboxes.PROXY_LIVE_MAX, sandboxes.PROXY_LIVE_EACH, sandboxes.PROXY_EACH_LOCAL = was, was_each, was_local
    release = true
    up:close()
    assert(ok, e)
  end)

  -- A request from the memory has no Lua object of its own: the state's close, which
  -- finalizes the tallies before the server made before them, must not end it through a
  -- finalized tally. A process of its own, left with such a request in flight at its exit.
  it("lets the process exit with a request from the memory in flight", function()
    local dir = H.tmpdir()
    local script = dir .. "/exit.lua"
    H.write(script, [[
package.path = package.orket_home .. "/?.lua;" .. package.path
local httpd = require "orket.c.httpd"
local http = require "orket.c.http"
local task = require "orket.task"
local uv = require "luv"
local rt = require "orket.c.runtime"
local ops = require "orket.store.sandboxes"
local dir = ]] .. string.format("%q", dir) .. [[

KEEP = {}
task.spawn(function()
  local up = assert(httpd.listen { unix = dir .. "/app.sock" })
  local n = 0
  task.spawn(function()
    while true do
      local req = up:accept()
      if not req then return end
      n = n + 1
      if n == 1 then
        req:respond(200, {}, "one")
        req:close()
      else
        KEEP[#KEEP + 1] = req -- held: the second is in flight at the exit
      end
    end
  end)
  os.execute("mkdir -p '" .. dir .. "/p/.orket'")
  local db = assert(require("orket.store").open(dir .. "/p/.orket/orket.db"))
  local srv = assert(require("orket.serve").new { dir = dir .. "/p", db = db, host = "127.0.0.1", port = 0 })
  task.spawn(srv.run, srv)
  local pid = uv.os_getpid()
  local id = ops.insert(db, { target = "main", port = 0, socket = dir .. "/app.sock", command = "[]", owner_pid = pid,
    owner_start = require("orket.sandboxes.service").start_time(pid) })
  ops.set_status(db, id, "healthy")
  KEEP.srv, KEEP.up, KEEP.db = srv, up, db
  local url = "http://127.0.0.1:" .. srv:port() .. "/v1/sandboxes/" .. id .. "/app/x"
  local function get()
    local r <close> = assert(http.request { url = url })
    return (r:headers())
  end
  assert(get() == 200)
  assert(srv.srv:proxy_memo_count() == 1, "remembered")
  task.spawn(get)
  rt.sleep(300)
  local active = 0
  for _, t in pairs(srv.tallies) do active = active + t:active() end
  assert(active == 1, "one request in flight")
  io.stdout:write("in flight\n")
  io.stdout:flush()
  os.exit(7, true)
end):join()
]])
    local r = H.orket("lua " .. H.quote(script))
    assert.equal("in flight\n", r.stdout, r.stderr)
    assert.equal(7, r.status, r.stderr)
  end)

  it("refuses a bad memo option before its pump starts", function()
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
    local tally = httpd.proxy_tally { route = "/r", buckets = { 1 }, log = function() end }
    local kept = httpd.proxy_kept { unix_socket = H.tmpdir() .. "/none.sock" }
    local errs = {}
    task.spawn(function()
      local req = srv:accept()
      local base = { url = "http://app/", kept = kept, tally = tally, t0 = 0, fail_body = "{}", fail_note = "n" }
      for i, memo in ipairs { { own = 1, dv = 1 }, { own = "x", dv = 1, until_ms = 1 }, 7,
        { own = 1, dv = 1, until_ms = 1, rate_key = 5 } } do
        local o = {}
        for k, v in pairs(base) do o[k] = v end
        o.memo = memo
        local ok, e = pcall(req.proxy, req, o)
        errs[i] = not ok and e or "accepted"
      end
      local ok, e = pcall(req.proxy, req, { url = "http://app/", unix_socket = H.tmpdir() .. "/none.sock",
        tally = tally, t0 = 0, fail_body = "{}", fail_note = "n", memo = { own = 1, dv = 1, until_ms = 1 } })
      errs[5] = not ok and e or "accepted"
      req:respond(200, {}, "")
      req:close()
    end)
    assert.equal(200, (H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/" }))
    for i = 1, 5 do assert.matches("memo must be", errs[i], 1, true) end
    assert.equal(0, tally:active())
    local rl = require "orket.c.ratelimit"
    assert.error_matches(function() srv:proxy_memo { conn = {}, by_addr = rl.new(1, 1), by_key = rl.new(1, 1) } end,
      "conn must be an open store connection", 1, true)
    srv:close()
  end)
end)
