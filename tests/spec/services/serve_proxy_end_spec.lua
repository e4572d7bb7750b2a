-- orket.serve's sandbox proxy on the API's route: the request ends in C when its pump does
-- (httpd.proxy_tally: the 502 when the app gave nothing to pass on, the counts, the log
-- line), and the request's task is free for the next request meanwhile.
local httpd = require "orket.c.httpd"
local ops = require "orket.store.sandboxes"
local task = require "orket.task"
local uv = require "luv"
local cjson = require "cjson"
local H = require "tests.helpers"
local F = require "tests.fixtures"

local ROUTE = "/v1/sandboxes/{id}/app/{path}"

describe("orket.serve's proxied requests", function()
  after_each(function() H.cleanup() end)

  -- a local-use server of a store with one healthy sandbox reached at sock; its log lines kept
  -- (token: the local token a write needs; port: the one the app listens on in its sandbox)
  -- (unix: a path where the server listens too)
  local function server(sock, limits, token, port, unix)
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket"))
    local db = require("tests.backends").open_store()
    local srv, stop = F.served { dir = dir, db = db, host = "127.0.0.1", port = 0, limits = limits, local_token = token,
      unix = unix }
    -- after the start, which ends the sandboxes whose owner is gone
    local pid = uv.os_getpid() -- owned by this process, which lives: not reconciled as ended
    local id = ops.insert(db, { target = "main", port = port or 0, socket = sock, command = "[]", owner_pid = pid,
      owner_start = require("orket.sandboxes.service").start_time(pid) })
    ops.set_status(db, id, "healthy")
    local lines = {}
    srv.log = function(line) lines[#lines + 1] = cjson.decode(line) end
    return srv, "http://127.0.0.1:" .. srv:port() .. "/v1/sandboxes/" .. id .. "/app", lines, stop, id
  end

  -- an app on a unix socket whose every request runs handle(req) in a task
  local function app(handle)
    local sock = H.tmpdir() .. "/app.sock"
    local up = assert(httpd.listen { unix = sock })
    task.spawn(function()
      while true do
        local req = up:accept()
        if not req then return end
        task.spawn(function()
          handle(req)
          req:close()
        end)
      end
    end)
    return up, sock
  end

  -- the proxied lines of the log
  local function proxied(lines)
    local out = {}
    for _, l in ipairs(lines) do
      if l.route == ROUTE then out[#out + 1] = l end
    end
    return out
  end

  it("frees the request's task while the app answers, and logs and counts the answer", function()
    local gate = false
    local up, sock = app(function(req)
      H.wait_for(function() return gate end, "the gate")
      req:respond(201, { "Content-Type: text/plain" }, "made " .. req.path)
    end)
    local srv, url, lines, stop = server(sock)
    local got
    task.spawn(function() got = { H.fetch { url = url .. "/notes" } } end)
    H.wait_for(function() return srv.tallies[ROUTE]:active() == 1 end, "the pump")
    -- the task went back to wait for a request while the pump still runs
    assert.equal(1, #srv.idle)
    assert.equal(0, srv.inflight)
    assert.equal(0, #proxied(lines))
    gate = true
    H.wait_for(function() return got ~= nil end, "the answer")
    assert.equal(201, got[1])
    assert.equal("made /notes", got[2])
    H.wait_for(function() return #proxied(lines) == 1 end, "the log line")
    local l = proxied(lines)[1]
    assert.same({ "127.0.0.1", cjson.null, "GET", 201 }, { l.addr, l.key, l.method, l.status })
    assert.is_nil(l.auth)
    assert.is_nil(l.via) -- no trusted proxy: the peer is the client
    assert.equal("number", type(l.us))
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", l.t)
    assert.equal(0, srv.tallies[ROUTE]:active())
    local m = require("orket.serve.metrics")
    local text = m.render(srv.db, srv.metrics, 0)
    assert.matches('orket_http_requests_total{route="' .. ROUTE:gsub("%p", "%%%0") .. '",status="201"} 1', text)
    assert.matches('orket_http_request_duration_seconds_count{route="' .. ROUTE:gsub("%p", "%%%0") .. '"} 1', text)
    stop()
    up:close()
  end)

  it("answers 502 as JSON when the app gives nothing to pass on, its reason in the log only", function()
    local sock = H.tmpdir() .. "/raw.sock"
    local raw = uv.new_pipe(false)
    assert(raw:bind(sock))
    raw:listen(16, function()
      local c = uv.new_pipe(false)
      raw:accept(c)
      c:write("not http at all\r\n\r\n", function() c:close() end)
    end)
    local srv, url, lines, stop, id = server(sock)
    local st, body, headers = H.fetch { url = url .. "/x" }
    assert.equal(502, st, body)
    assert.matches("^application/json", headers["content-type"])
    assert.equal("Origin", headers.vary) -- as every answer of the API
    local doc = cjson.decode(body)
    assert.equal("bad_gateway", doc.error.code)
    assert.matches("gave no answer that could be passed on", doc.error.message, 1, true)
    -- the remedy names the sandbox, not a literal "ID"
    assert.equal("`orket sandbox logs " .. id .. "`", doc.error.remedy)
    H.wait_for(function() return #proxied(lines) == 1 end, "the log line")
    local l = proxied(lines)[1]
    assert.equal(502, l.status)
    assert.equal("sandbox " .. id .. ": ", l.note:sub(1, #("sandbox " .. id .. ": ")))
    assert.is_true(#l.note > #("sandbox " .. id .. ": "))
    assert.matches('status="502"} 1', require("orket.serve.metrics").render(srv.db, srv.metrics, 0), 1, true)
    stop()
    raw:close()
  end)

  -- RFC 9110 15.6.5: an app that took the request and gave no answer within the proxy's
  -- time is a gateway's timeout, 504, not the 502 of an answer that could not be passed on
  it("answers 504 as JSON when the app takes the request and never answers", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was = sandboxes.PROXY_TIMEOUT_MS
    sandboxes.PROXY_TIMEOUT_MS = 1000 -- read once per socket, as its kept options are made
    local up, sock = app(function(req) req:wait_gone() end) -- takes the request, never answers
    local ok, e = pcall(function()
      local srv, url, lines, stop, id = server(sock)
      local t0 = uv.now()
      local st, body, headers = H.fetch { url = url .. "/slow" }
      assert.equal(504, st, body)
      assert.is_true(uv.now() - t0 >= 900)
      assert.matches("^application/json", headers["content-type"])
      assert.equal("Origin", headers.vary)
      local doc = cjson.decode(body)
      assert.equal("gateway_timeout", doc.error.code)
      assert.matches("sandbox " .. id .. "'s app gave no answer within 1 s", doc.error.message, 1, true)
      H.wait_for(function() return #proxied(lines) == 1 end, "the log line")
      local l = proxied(lines)[1]
      assert.equal(504, l.status)
      assert.matches("^sandbox " .. id .. ": .+", l.note)
      assert.matches('status="504"} 1', require("orket.serve.metrics").render(srv.db, srv.metrics, 0), 1, true)
      stop()
    end)
    sandboxes.PROXY_TIMEOUT_MS = was
    up:close()
    assert(ok, e)
  end)

  -- A silent app passes its first-byte deadline and its headers' at once when the two are
  -- the same (as by default): it is logged and answered as one that gave no answer, the
  -- first byte's time named, not as one slow with its headers
  it("logs and answers a silent app's 504 by its first-byte deadline when the headers' is the same", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was, was_h = sandboxes.PROXY_TIMEOUT_MS, sandboxes.PROXY_HEADERS_MS
    sandboxes.PROXY_TIMEOUT_MS, sandboxes.PROXY_HEADERS_MS = 1000, 1000 -- read once per socket
    local up, sock = app(function(req) req:wait_gone() end) -- takes the request, never answers
    local ok, e = pcall(function()
      local _, url, lines, stop, id = server(sock)
      local st, body = H.fetch { url = url .. "/slow" }
      assert.equal(504, st, body)
      assert.matches("sandbox " .. id .. "'s app gave no answer within 1 s", cjson.decode(body).error.message, 1, true)
      H.wait_for(function() return #proxied(lines) == 1 end, "the log line")
      assert.matches("no response within 1000 ms", proxied(lines)[1].note, 1, true)
      stop()
    end)
    sandboxes.PROXY_TIMEOUT_MS, sandboxes.PROXY_HEADERS_MS = was, was_h
    up:close()
    assert(ok, e)
  end)

  -- and when the headers' deadline is the shorter, a silent app meets it first: still one
  -- that gave no answer (within that time), never one that "began an answer"
  it("logs and answers a silent app's 504 as no answer when the headers' deadline is the shorter", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was_h = sandboxes.PROXY_HEADERS_MS
    sandboxes.PROXY_HEADERS_MS = 800 -- read once per socket; the first byte's stays 2 min
    local up, sock = app(function(req) req:wait_gone() end) -- takes the request, never answers
    local ok, e = pcall(function()
      local _, url, lines, stop, id = server(sock)
      local st, body = H.fetch { url = url .. "/slow" }
      assert.equal(504, st, body)
      local msg = cjson.decode(body).error.message
      assert.matches("sandbox " .. id .. "'s app gave no answer within 800 ms", msg, 1, true)
      assert.is_nil(msg:find("began an answer", 1, true))
      H.wait_for(function() return #proxied(lines) == 1 end, "the log line")
      assert.matches("no response within 800 ms", proxied(lines)[1].note, 1, true)
      stop()
    end)
    sandboxes.PROXY_HEADERS_MS = was_h
    up:close()
    assert(ok, e)
  end)

  -- A page under the route preloads "/style.css": the app's, so its Link leads through the
  -- route as a redirect does (a project's prefix kept), by the same guard
  it("makes the app's Link URLs lead through the proxy's route", function()
    local up, sock = app(function(req)
      req:respond(200, { "Content-Type: text/html", "Link: </style.css>; rel=preload; as=style, "
        .. "<http://127.0.0.1:8080/next?p=2>; rel=\"next\", <//evil.example/x>; rel=\"a, b\", <rel.js>" }, "ok")
    end)
    local _, url, _, stop, id = server(sock, nil, nil, 8080)
    local purl = url:gsub("/v1/sandboxes/", "/v1/projects/default/sandboxes/")
    for _, c in ipairs { { url, "/v1/sandboxes/" .. id .. "/app/" },
      { purl, "/v1/projects/default/sandboxes/" .. id .. "/app/" } } do
      local st, body, headers = H.fetch { url = c[1] .. "/page" }
      assert.equal(200, st, body)
      assert.equal("<" .. c[2] .. "style.css>; rel=preload; as=style, <" .. c[2] .. "next?p=2>; rel=\"next\", "
        .. "<//evil.example/x>; rel=\"a, b\", <" .. c[2] .. "rel.js>", headers.link or headers.Link)
    end
    stop()
    up:close()
  end)

  -- an app's redirect to its own URLs (built from the Host it is sent, or an absolute
  -- path) leads back through the proxy's route, not to a host "sandbox" or the server's root
  it("makes the app's redirects to its own URLs lead through the proxy's route", function()
    local up, sock = app(function(req)
      local to = req.path == "/abs" and ("http://" .. req.headers.host .. "/landed?x=1") or "/landed"
      req:respond(302, { "Location: " .. to }, "")
    end)
    local _, url, _, stop, id = server(sock)
    for _, p in ipairs { "/abs", "/rel" } do
      local st, _, headers = H.fetch { url = url .. p, follow = false }
      assert.equal(302, st)
      local want = "/v1/sandboxes/" .. id .. "/app/landed" .. (p == "/abs" and "?x=1" or "")
      assert.equal(want, headers.location or headers.Location, p)
    end
    -- the app's root is the route's, whatever the app's own path holds after it
    local st, _, headers = H.fetch { url = url .. "/docs/sandboxes/7/app/rel", follow = false }
    assert.equal(302, st)
    assert.equal("/v1/sandboxes/" .. id .. "/app/landed", headers.location or headers.Location)
    -- through a project's prefix, the redirect stays under it
    local purl = url:gsub("/v1/sandboxes/", "/v1/projects/default/sandboxes/")
    for _, p in ipairs { "/abs", "/docs/sandboxes/7/app/rel" } do
      st, _, headers = H.fetch { url = purl .. p, follow = false }
      assert.equal(302, st)
      local want = "/v1/projects/default/sandboxes/" .. id .. "/app/landed" .. (p == "/abs" and "?x=1" or "")
      assert.equal(want, headers.location or headers.Location, p)
    end
    stop()
    up:close()
  end)

  -- A client resolves a relative Location against the proxied URL and follows it with its
  -- key (curl -L, requests, fetch; a 307 with its method and body): "../../../cards/X" from
  -- /v1/sandboxes/ID/app/notes was /v1/cards/X, the API's own route, written with the
  -- caller's key. It is resolved against the app's request instead, its dot segments stopping
  -- at the app's root; a URL of this server's own host outside the route is a 502 saying why
  it("keeps the app's relative redirects under the proxy's route, and refuses one onto the API", function()
    local host
    local up, sock = app(function(req)
      local to = req.path == "/notes" and "../../../cards/START-1/comments"
        or req.path == "/deep/er/x" and "..\\..\\%2e%2e/../v1/keys"
        or ("http://" .. host .. "/v1/cards/START-1/comments")
      req:respond(307, { "Location: " .. to }, "")
    end)
    local _, url, _, stop, id = server(sock)
    host = url:match("^http://([^/]+)")
    local route = "/v1/sandboxes/" .. id .. "/app/"
    for p, want in pairs { ["/notes"] = route .. "cards/START-1/comments", ["/deep/er/x"] = route .. "v1/keys" } do
      local st, _, headers = H.fetch { url = url .. p, follow = false }
      assert.equal(307, st, p)
      assert.equal(want, headers.location or headers.Location, p)
    end
    local st, body, headers = H.fetch { url = url .. "/abs", follow = false }
    assert.equal(502, st)
    assert.is_nil(headers.location or headers.Location)
    assert.matches("the app's redirect leads out of its route onto this server's own", body, 1, true)
    stop()
    up:close()
  end)

  -- an app's redirect to the address it listens on in its sandbox (a framework that builds
  -- it from $HOST:$PORT), which no client reaches, leads through the route too
  it("makes the app's redirects to its listening address lead through the proxy's route", function()
    local to = { "http://127.0.0.1:8080/landed?x=1", "http://localhost:8080/a", "http://127.0.0.1:8080",
      "http://[::1]:8080/b", "http://0.0.0.0:8080/c", "http://127.0.0.1:9090/d" }
    local up, sock = app(function(req)
      req:respond(302, { "Location: " .. to[tonumber(req.path:sub(2))] }, "")
    end)
    local _, url, _, stop, id = server(sock, nil, nil, 8080)
    local route = "/v1/sandboxes/" .. id .. "/app/"
    local want = { route .. "landed?x=1", route .. "a", route, route .. "b", route .. "c", "http://127.0.0.1:9090/d" }
    for i = 1, #to do
      local st, _, headers = H.fetch { url = url .. "/" .. i, follow = false }
      assert.equal(302, st, to[i])
      assert.equal(want[i], headers.location or headers.Location, to[i])
    end
    stop()
    up:close()
  end)

  -- RFC 8288 links pass back (a next page, a preload), their URLs the app's own made as a
  -- redirect's are; the app's CORS answers do not: the route is this server's origin, whose
  -- readers serve.cors alone chooses
  it("passes back the app's Link, never its Access-Control headers", function()
    local up, sock = app(function(req)
      req:respond(200, { "Content-Type: text/plain", "Link: <http://sandbox/p/2>; rel=\"next\"",
        "Access-Control-Allow-Origin: *", "Access-Control-Allow-Credentials: true",
        "Access-Control-Expose-Headers: Link" }, "ok")
    end)
    local _, url, _, stop, id = server(sock)
    local st, body, headers = H.fetch { url = url .. "/list" }
    assert.equal(200, st, body)
    local hs = {}
    for k, v in pairs(headers) do hs[k:lower()] = v end
    assert.equal('</v1/sandboxes/' .. id .. '/app/p/2>; rel="next"', hs.link)
    assert.is_nil(hs["access-control-allow-origin"])
    assert.is_nil(hs["access-control-allow-credentials"])
    assert.is_nil(hs["access-control-expose-headers"])
    stop()
    up:close()
  end)

  -- No total timeout: an app's event stream that keeps sending passes the proxy's time
  -- (first byte and silence, shortened here) as long as it sends; a silence past it cuts it
  it("passes an app's stream that keeps sending past the proxy's time, and cuts one gone silent", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was, was_idle = sandboxes.PROXY_TIMEOUT_MS, sandboxes.PROXY_IDLE_MS
    sandboxes.PROXY_TIMEOUT_MS, sandboxes.PROXY_IDLE_MS = 500, 500 -- read once per socket
    local up, sock = app(function(req)
      local s = assert(req:stream(200, { "Content-Type: text/event-stream" }))
      for i = 1, 15 do -- 1.5 s, three times the proxy's time, never silent 500 ms
        if not s:send("data: " .. i .. "\n\n") then return end
        orket.sleep(100)
      end
      if req.path == "/quiet" then orket.sleep(1500) end
      s:close()
    end)
    local ok, e = pcall(function()
      local _, url, lines, stop = server(sock)
      local t0 = uv.now()
      local st, body, headers = H.fetch { url = url .. "/events", total_timeout_ms = 10000 }
      assert.equal(200, st, body)
      assert.is_true(uv.now() - t0 >= 1400)
      assert.equal("text/event-stream", headers["content-type"])
      assert.matches("data: 15\n\n$", body)
      H.wait_for(function() return #proxied(lines) == 1 end, "the log line")
      assert.equal(200, proxied(lines)[1].status)
      assert.is_nil(proxied(lines)[1].note)
      local cut = H.stream { url = url .. "/quiet", total_timeout_ms = 10000 }
      H.wait_for(function() return cut.done() end, "the silent stream cut", 5000)
      assert.matches("data: 15\n\n$", cut.text())
      cut.close()
      H.wait_for(function() return #proxied(lines) == 2 end, "the log line")
      assert.matches("stalled for 500 ms", proxied(lines)[2].note, 1, true)
      stop()
    end)
    sandboxes.PROXY_TIMEOUT_MS, sandboxes.PROXY_IDLE_MS = was, was_idle
    up:close()
    assert(ok, e)
  end)

  -- An app that drips interim answers (103) keeps no connection past the headers' limit:
  -- 504, as one that never answered (shortened here)
  it("answers 504 when the app's headers never end, however it keeps sending", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was = sandboxes.PROXY_HEADERS_MS
    sandboxes.PROXY_HEADERS_MS = 800 -- read once per socket, as its kept options are made
    -- the proxy hangs up while this writes: that must not end the test's process
    local sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
    local sock = H.tmpdir() .. "/drip.sock"
    local up, held = uv.new_pipe(false), {}
    assert(up:bind(sock))
    up:listen(16, function()
      local c, t = uv.new_pipe(false), uv.new_timer()
      up:accept(c)
      held[#held + 1] = { c, t }
      c:read_start(function(_, d)
        if not (d and d:find("\r\n\r\n", 1, true)) then return end
        c:read_stop()
        local n = 0
        t:start(0, 100, function() -- 3 s of 103s, then an answer: after the limit
          n = n + 1
          if n <= 30 then c:write("HTTP/1.1 103 Early Hints\r\n\r\n")
          else t:stop() c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") end
        end)
      end)
    end)
    local ok, e = pcall(function()
      local _, url, lines, stop = server(sock)
      local t0 = uv.now()
      local st, body = H.fetch { url = url .. "/drip" }
      assert.equal(504, st, body)
      assert.is_true(uv.now() - t0 < 2500)
      assert.equal("gateway_timeout", cjson.decode(body).error.code)
      H.wait_for(function() return #proxied(lines) == 1 end, "the log line")
      assert.equal(504, proxied(lines)[1].status)
      assert.matches("no complete response headers within 800 ms", proxied(lines)[1].note, 1, true)
      -- the 504 names the deadline that passed: the headers', not the first byte's
      assert.matches("began an answer but did not complete its headers within 800 ms",
        cjson.decode(body).error.message, 1, true)
      stop()
    end)
    sandboxes.PROXY_HEADERS_MS = was
    for _, h in ipairs(held) do h[2]:close() h[1]:close() end
    up:close()
    sigpipe:close()
    assert(ok, e)
  end)

  -- An app that sends part of its status line or headers and then nothing is one that
  -- began an answer and did not complete its headers: 504 from C (the fast path's body made
  -- once per socket), with gateway_timeout's text and remedy (orket.errors), the headers'
  -- deadline named (shortened here), not the first byte's
  it("answers 504 with gateway_timeout's text when the app stalls mid-headers", function()
    local sandboxes = require "orket.serve.sandboxes"
    local errors = require "orket.errors"
    local was = sandboxes.PROXY_HEADERS_MS
    -- each part's app and server, ended after it and by the finally when an assertion fails
    -- (the app's connections first: a request held open would keep the stop waiting)
    local open = {}
    local function close(o)
      for _, c in ipairs(o.held) do if not c:is_closing() then c:close() end end
      if not o.up:is_closing() then o.up:close() end
      if o.stop then o.stop() end
      o.stop = nil
    end
    finally(function()
      sandboxes.PROXY_HEADERS_MS = was
      for _, o in ipairs(open) do close(o) end
    end)
    sandboxes.PROXY_HEADERS_MS = 800 -- read once per socket, as its kept options are made
    for _, part in ipairs { "HTTP/1.1 20", "HTTP/1.1 200 OK\r\nContent-Type: text/pl" } do
      local sock = H.tmpdir() .. "/stall.sock"
      local o = { up = uv.new_pipe(false), held = {} }
      open[#open + 1] = o
      assert(o.up:bind(sock))
      o.up:listen(16, function()
        local c = uv.new_pipe(false)
        o.up:accept(c)
        o.held[#o.held + 1] = c
        c:read_start(function(_, d)
          if not (d and d:find("\r\n\r\n", 1, true)) then return end
          c:read_stop()
          c:write(part) -- then nothing, the connection held open
        end)
      end)
      local _, url, lines, stop, id = server(sock)
      o.stop = stop
      local t0 = uv.now()
      local st, body, headers = H.fetch { url = url .. "/stall", total_timeout_ms = 60000 }
      local took = uv.now() - t0
      assert.equal(504, st, body)
      -- the shortened deadline waited out, and the answer long before the first byte's
      -- (PROXY_TIMEOUT_MS, 120 s) could pass: bounds wide enough for a loaded machine, the
      -- message below naming which deadline it was
      assert.is_true(took >= 750, part .. ": took " .. took .. " ms")
      assert.is_true(took < sandboxes.PROXY_TIMEOUT_MS / 2, part .. ": took " .. took .. " ms")
      assert.matches("^application/json", headers["content-type"])
      local doc = cjson.decode(body)
      assert.equal("gateway_timeout", doc.error.code)
      assert.equal(errors.CODES.gateway_timeout.remedy:gsub("ID", tostring(id)), doc.error.remedy)
      H.wait_for(function() return #proxied(lines) == 1 end, "the log line")
      assert.equal(504, proxied(lines)[1].status)
      if part:find("\r\n", 1, true) then
        assert.equal(string.format("sandbox %d's app began an answer but did not complete its headers within 800 ms, "
          .. "or fell silent for 120 s (GET /v1/sandboxes/%d/logs shows its log)", id, id), doc.error.message)
        assert.matches("no complete response headers within 800 ms", proxied(lines)[1].note, 1, true)
      else
        -- the transfer sees the answer by its whole lines (libcurl's): a status line cut
        -- short is no answer yet, timed by the same (shorter) deadline
        assert.equal(string.format("sandbox %d's app gave no answer within 800 ms, or did not take the connection "
          .. "within 5 s (GET /v1/sandboxes/%d/logs shows its log)", id, id), doc.error.message)
        assert.matches("no response within 800 ms", proxied(lines)[1].note, 1, true)
      end
      close(o)
    end
  end)

  -- With no total time, an app's streams last as long as they send: one sandbox's app has
  -- at most PROXY_LIVE_MAX requests in progress, on all its routes together (shortened
  -- here); one more is answered 503 at once, with when to retry
  it("answers 503 app_busy past the requests an app may have in progress, on all its routes", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was = sandboxes.PROXY_LIVE_MAX
    sandboxes.PROXY_LIVE_MAX = 2 -- read once per socket, as its kept options are made
    local release, arrived = false, 0
    local up, sock = app(function(req)
      arrived = arrived + 1
      H.wait_for(function() return release end, "the release", 10000)
      req:respond(200, { "Content-Type: text/plain" }, "late")
    end)
    local ok, e = pcall(function()
      local _, url, lines, stop, id = server(sock)
      local purl = url:gsub("/v1/sandboxes/", "/v1/projects/default/sandboxes/")
      local got = {}
      task.spawn(function() got[1] = { H.fetch { url = url .. "/1" } } end)
      task.spawn(function() got[2] = { H.fetch { url = purl .. "/2" } } end) -- another route's kept
      H.wait_for(function() return arrived == 2 end, "two requests at the app", 10000)
      for _, u in ipairs { url .. "/3", purl .. "/3" } do
        local st, body, headers = H.fetch { url = u }
        assert.equal(503, st, body)
        local doc = cjson.decode(body)
        assert.equal("app_busy", doc.error.code)
        assert.matches("sandbox " .. id .. "'s app has 2 requests in progress", doc.error.message, 1, true)
        assert.equal("5", headers["retry-after"] or headers["Retry-After"])
      end
      assert.equal(2, arrived)
      release = true
      H.wait_for(function() return got[1] and got[2] end, "the answers", 10000)
      assert.equal("late", got[1][2])
      assert.equal("late", got[2][2])
      -- their places free again
      H.wait_for(function()
        local n = 0
        for _, l in ipairs(lines) do if l.status == 200 then n = n + 1 end end
        return n == 2
      end, "the two answers' log lines")
      local st, body = H.fetch { url = url .. "/4" }
      assert.equal(200, st, body)
      stop()
    end)
    sandboxes.PROXY_LIVE_MAX = was
    release = true
    up:close()
    assert(ok, e)
  end)

  -- One client cannot take all of an app's places: one address has at most
  -- PROXY_LIVE_EACH of them (shortened here); past it that address is answered 503 while
  -- another (127.0.0.2, on a raw socket) still reaches the app. Loopback clients are held
  -- to the share here only because PROXY_EACH_LOCAL says so: they stand for two clients
  it("answers 503 app_busy to an address past its share while another still reaches the app", function()
    local sandboxes = require "orket.serve.sandboxes"
    local was, was_each, was_local = sandboxes.PROXY_LIVE_MAX, sandboxes.PROXY_LIVE_EACH, sandboxes.PROXY_EACH_LOCAL
    sandboxes.PROXY_LIVE_MAX, sandboxes.PROXY_LIVE_EACH = 4, 2 -- read once per socket
    sandboxes.PROXY_EACH_LOCAL = true
    local release, arrived = false, 0
    local up, sock = app(function(req)
      arrived = arrived + 1
      H.wait_for(function() return release end, "the release", 10000)
      req:respond(200, { "Content-Type: text/plain" }, "late")
    end)
    local ok, e = pcall(function()
      local srv, url, _, stop, id = server(sock)
      local got = {}
      task.spawn(function() got[1] = { H.fetch { url = url .. "/1" } } end)
      task.spawn(function() got[2] = { H.fetch { url = url .. "/2" } } end)
      H.wait_for(function() return arrived == 2 end, "two requests at the app", 10000)
      local st, body, headers = H.fetch { url = url .. "/3" }
      assert.equal(503, st, body)
      local doc = cjson.decode(body)
      assert.equal("app_busy", doc.error.code)
      assert.matches("sandbox " .. id .. "'s app has 2 requests in progress (streams or slow answers) from this "
        .. "address", doc.error.message, 1, true)
      assert.equal("5", headers["retry-after"] or headers["Retry-After"])
      assert.equal(2, arrived)
      -- another address: a raw request from 127.0.0.2
      local c, text, closed = uv.new_tcp(), {}, false
      assert(c:bind("127.0.0.2", 0))
      c:connect("127.0.0.1", srv:port(), function(err)
        assert(not err, err)
        c:write("GET " .. url:match("^http://[^/]+(.*)$") .. "/4 HTTP/1.1\r\nHost: 127.0.0.1:" .. srv:port()
          .. "\r\nConnection: close\r\n\r\n")
        c:read_start(function(_, d) if d then text[#text + 1] = d else closed = true end end)
      end)
      H.wait_for(function() return arrived == 3 end, "the other address's request at the app", 10000)
      release = true
      H.wait_for(function() return closed and got[1] and got[2] end, "the answers", 10000)
      c:close()
      assert.matches("^HTTP/1.1 200.*late$", table.concat(text))
      assert.equal("late", got[1][2])
      assert.equal("late", got[2][2])
      stop()
    end)
    sandboxes.PROXY_LIVE_MAX, sandboxes.PROXY_LIVE_EACH, sandboxes.PROXY_EACH_LOCAL = was, was_each, was_local
    release = true
    up:close()
    assert(ok, e)
  end)

  -- Behind a front end (nginx, Caddy) not in serve.trusted_proxies every user comes from its
  -- loopback address, which the server cannot tell apart: a loopback client is held to no
  -- share, only to the whole count, both set by ORKET_SERVE_LIMITS (app_live_max,
  -- app_live_each), which takes whole numbers only
  it("holds a loopback client to no share of an app's places, and takes both limits from ORKET_SERVE_LIMITS", function()
    local serve = require "orket.serve"
    local l, lerr = serve.limits("app_live_each=1.5")
    assert.is_nil(l)
    assert.matches("app_live_each takes a whole number", lerr, 1, true)
    -- a count past any server's connections is refused at start, not at every request
    l, lerr = serve.limits("app_live_max=2000000000000")
    assert.is_nil(l)
    assert.matches("app_live_max takes a whole number from 0 to 65536", lerr, 1, true)
    local release, arrived = false, 0
    local up, sock = app(function(req)
      arrived = arrived + 1
      H.wait_for(function() return release end, "the release", 10000)
      req:respond(200, { "Content-Type: text/plain" }, "late")
    end)
    local ok, e = pcall(function()
      local _, url, _, stop, id = server(sock, assert(serve.limits("app_live_max=3,app_live_each=1")))
      local got = {}
      for i = 1, 3 do task.spawn(function() got[i] = { H.fetch { url = url .. "/" .. i } } end) end
      H.wait_for(function() return arrived == 3 end, "three requests from one loopback address at the app", 10000)
      local st, body, headers = H.fetch { url = url .. "/4" }
      assert.equal(503, st, body)
      local doc = cjson.decode(body)
      assert.equal("app_busy", doc.error.code)
      assert.matches("sandbox " .. id .. "'s app has 3 requests in progress (streams or slow answers), the most it "
        .. "may have", doc.error.message, 1, true)
      assert.equal("5", headers["retry-after"] or headers["Retry-After"])
      assert.equal(3, arrived)
      release = true
      H.wait_for(function() return got[1] and got[2] and got[3] end, "the answers", 10000)
      for i = 1, 3 do assert.equal("late", got[i][2]) end
      stop()
    end)
    release = true
    up:close()
    assert(ok, e)
  end)

  -- This machine's own use over the server's unix socket is held to no share either, only
  -- to the whole count: more requests in progress than app_live_each all reach the app
  it("holds a unix-socket client to no share of an app's places, only to their whole count", function()
    local serve = require "orket.serve"
    local release, arrived = false, 0
    local up, sock = app(function(req)
      arrived = arrived + 1
      H.wait_for(function() return release end, "the release", 10000)
      req:respond(200, { "Content-Type: text/plain" }, "late")
    end)
    local stop -- (one finally: a second call would replace the first)
    finally(function()
      release = true -- the held requests answered, so the stop need not wait on them
      if stop then stop() end
      up:close()
    end)
    local unix = H.tmpdir() .. "/serve.sock"
    local _, url, id
    _, url, _, stop, id = server(sock, assert(serve.limits("app_live_max=3,app_live_each=1")), nil, nil, unix)
    local path = url:match("^http://[^/]+(.*)$")
    local function over_unix(p) return H.fetch { url = "http://127.0.0.1" .. path .. p, unix_socket = unix } end
    local got = {}
    for i = 1, 3 do task.spawn(function() got[i] = { over_unix("/" .. i) } end) end
    H.wait_for(function() return arrived == 3 end, "three requests over the unix socket at the app", 10000)
    -- the whole count still holds
    local st, body = over_unix("/4")
    assert.equal(503, st, body)
    assert.matches("sandbox " .. id .. "'s app has 3 requests in progress (streams or slow answers), the most it "
      .. "may have", cjson.decode(body).error.message, 1, true)
    assert.equal(3, arrived)
    release = true
    H.wait_for(function() return got[1] and got[2] and got[3] end, "the answers", 10000)
    for i = 1, 3 do assert.equal(200, got[i][1], got[i][2]) assert.equal("late", got[i][2]) end
  end)

  -- RFC 9110 13: a request's conditions reach the app, which alone can judge them (a
  -- resumed download's If-Range, a write's If-Match)
  it("passes the request's conditions on to the app", function()
    local NAMES = { "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", "if-range", "range" }
    local up, sock = app(function(req)
      local got = {}
      for _, n in ipairs(NAMES) do got[#got + 1] = n .. "=" .. tostring(req.headers[n]) end
      req:respond(200, { "Content-Type: text/plain" }, table.concat(got, "\n"))
    end)
    local _, url, _, stop = server(sock)
    local st, body = H.fetch { url = url .. "/file", headers = { 'If-Match: "a"', 'If-None-Match: "b"',
      "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT", "If-Unmodified-Since: Sun, 02 Jan 2000 00:00:00 GMT",
      'If-Range: "c"', "Range: bytes=10-" } }
    assert.equal(200, st, body)
    assert.equal(table.concat({ 'if-match="a"', 'if-none-match="b"', "if-modified-since=Sat, 01 Jan 2000 00:00:00 GMT",
      "if-unmodified-since=Sun, 02 Jan 2000 00:00:00 GMT", 'if-range="c"', "range=bytes=10-" }, "\n"), body)
    stop()
    up:close()
  end)

  -- an upload to the app past the server's body cap: the answer says the cap and what sets
  -- it, as the app's own origin does, and the app never sees it
  it("answers 413 naming the body cap and what sets it for an upload past it", function()
    local seen = 0
    local up, sock = app(function(req)
      seen = seen + 1
      req:respond(200, {}, "ok")
    end)
    local token = "ort_" .. string.rep("ab", 16)
    local _, url, _, stop = server(sock, require("orket.serve").limits("max_body_bytes=1000"), token)
    local st, body = H.fetch { url = url .. "/upload", method = "POST", body = string.rep("u", 5000),
      headers = { "Authorization: Bearer " .. token, "Content-Type: application/octet-stream" } }
    assert.equal(413, st, body)
    local doc = cjson.decode(body)
    assert.equal("too_large", doc.error.code)
    assert.matches("at most 1000 bytes: ORKET_SERVE_LIMITS max_body_bytes on orket serve sets it", doc.error.message, 1, true)
    -- sent chunked, its length unknown until it passes the cap: refused mid-upload, from C,
    -- with the same message
    local port, path = url:match("^http://127%.0%.0%.1:(%d+)(/.*)$")
    local c = uv.new_tcp()
    local got, closed, connected = {}, false, false
    c:connect("127.0.0.1", tonumber(port), function(err)
      assert(not err, err)
      connected = true
      c:write("POST " .. path .. "/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " .. token
        .. "\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
      c:read_start(function(_, d) if d then got[#got + 1] = d else closed = true end end)
    end)
    while not connected do orket.sleep(1) end
    local t = uv.new_timer()
    t:start(1, 5, function() if not c:is_closing() then c:write("100\r\n" .. string.rep("u", 256) .. "\r\n") end end)
    for _ = 1, 1000 do
      if closed then break end
      orket.sleep(5)
    end
    t:close()
    c:close()
    local answer = table.concat(got)
    assert.matches("^HTTP/1.1 413", answer)
    doc = cjson.decode(answer:match("\r\n\r\n(.*)$"))
    assert.equal("too_large", doc.error.code)
    assert.matches("at most 1000 bytes: ORKET_SERVE_LIMITS max_body_bytes on orket serve sets it", doc.error.message, 1, true)
    assert.equal(0, seen)
    stop()
    up:close()
  end)

  it("is waited for by the stop, and answered 503 and logged when the stop comes first", function()
    local up, sock = app(function(req) req:wait_gone() end) -- never answers
    local srv, url, lines, stop = server(sock, require("orket.serve").limits("drain_ms=300"))
    local got
    task.spawn(function() got = { H.fetch { url = url .. "/slow" } } end)
    H.wait_for(function() return srv.tallies[ROUTE]:active() == 1 end, "the pump")
    local t0 = uv.now()
    stop()
    assert.is_true(uv.now() - t0 >= 250, "the stop waited for the request")
    H.wait_for(function() return got ~= nil end, "the answer")
    assert.equal(503, got[1])
    assert.equal(0, srv.tallies[ROUTE]:active())
    local l = proxied(lines)[1]
    assert.equal(503, l and l.status)
    up:close()
  end)

  -- the sanitizer build's layer is what sees a read of the freed pump here
  it("lets the log line's function close the server the request came through", function()
    local sock = H.tmpdir() .. "/hangup.sock"
    local raw = uv.new_pipe(false)
    assert(raw:bind(sock))
    raw:listen(16, function()
      local c = uv.new_pipe(false)
      raw:accept(c)
      c:close()
    end)
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
    local logged
    local tally = httpd.proxy_tally { route = "/r", buckets = { 0.1, 1 }, fail_headers = { "X-A: 1" },
      log = function(line)
        logged = cjson.decode(line)
        srv:close()
      end }
    task.spawn(function()
      local req = srv:accept()
      req:proxy { url = "http://app/", unix_socket = sock, tally = tally, t0 = uv.hrtime(), fail_body = "bad\n",
        fail_note = "note: " }
    end)
    H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/" }
    H.wait_for(function() return logged ~= nil end, "the log line")
    assert.equal(502, logged.status)
    assert.equal(0, tally:active())
    raw:close()
  end)

  it("refuses a tally's bad options before any pump starts", function()
    local log = function() end
    assert.has_error(function() httpd.proxy_tally { buckets = {}, log = log } end)
    assert.has_error(function() httpd.proxy_tally { route = "/r", buckets = { 1, 1 }, log = log } end)
    assert.has_error(function() httpd.proxy_tally { route = "/r", buckets = {}, log = log, fail_headers = { "a\nb: c" } } end)
    local tally = httpd.proxy_tally { route = "/r", buckets = { 0.1, 1 }, log = log, fail_headers = { "X-A: 1" } }
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
    local err, err2, err3
    task.spawn(function()
      local req = srv:accept()
      local ok, e = pcall(req.proxy, req, { url = "http://app/", unix_socket = H.tmpdir() .. "/none.sock",
        tally = tally, t0 = 0, fail_more = { "no colon here" } })
      err = not ok and e or "accepted"
      -- the end reads these inside the pump's callbacks, where nothing may raise
      local ok2, e2 = pcall(req.proxy, req, { url = "http://app/", unix_socket = H.tmpdir() .. "/none.sock",
        tally = tally, t0 = 0, fail_body = "{}" })
      err2 = not ok2 and e2 or "accepted"
      local ok3, e3 = pcall(req.proxy, req, { url = "http://app/", unix_socket = H.tmpdir() .. "/none.sock",
        tally = tally, t0 = 0, fail_body = "{}", fail_note = "n", key = 7 })
      err3 = not ok3 and e3 or "accepted"
      req:respond(200, {}, "")
      req:close()
    end)
    assert.equal(200, (H.fetch { url = "http://127.0.0.1:" .. srv:port() .. "/" }))
    srv:close()
    assert.matches("headers must be", err)
    assert.matches("fail_body and fail_note must be strings", err2, 1, true)
    assert.matches("key must be a string", err3, 1, true)
    assert.equal(0, tally:active())
  end)
end)
