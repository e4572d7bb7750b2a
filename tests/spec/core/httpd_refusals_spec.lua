-- orket.c.httpd: srv:refusals(tally): the requests refused at their headers, before any is
-- made of them (a 431, framing that could be read two ways, a duplicate Host, a target that
-- is not valid), counted by the tally and logged through its log function in the one log
-- line format (core/health.c), as orket serve logs every other request (docs/serve.md,
-- "Logs"). Raw luv sockets: these requests are what no client library sends.
local httpd = require "orket.c.httpd"
local cjson = require "cjson"
local task = require "orket.task"
local uv = require "luv"

local BUCKETS = { 0.005, 0.01, 0.1, 1 }

local function serve(opts)
  opts.host, opts.port = "127.0.0.1", 0
  local srv = assert(httpd.listen(opts))
  task.spawn(function()
    while true do
      local req = srv:accept()
      if not req then return end
      task.spawn(function() req:respond(200, { "Content-Type: text/plain" }, "handed") end)
    end
  end)
  return srv
end

-- once(port, text) -> the whole answer, the server having closed (or answered a keep-alive)
local function once(port, text)
  local c = uv.new_tcp()
  local data, closed, connected = {}, false, false
  c:connect("127.0.0.1", port, function(err)
    assert(not err, err)
    connected = true
    c:write(text)
    c:read_start(function(_, d) if d then data[#data + 1] = d else closed = true end end)
  end)
  for _ = 1, 2000 do
    if closed or table.concat(data):find("handed$") then break end
    orket.sleep(2)
  end
  c:close()
  assert(connected and (closed or table.concat(data):find("handed$")), "no answer to " .. text:sub(1, 60))
  return table.concat(data)
end

local function head(extra, line)
  return (line or "GET /v1/board HTTP/1.1") .. "\r\nHost: 127.0.0.1\r\n" .. (extra or "") .. "Connection: close\r\n\r\n"
end

describe("orket.c.httpd srv:refusals", function()
  it("counts and logs each request refused at its headers, with its status and the answer's message", function()
    local lines = {}
    local srv = serve { max_header_bytes = 2048 }
    local tally = httpd.proxy_tally { route = "-", buckets = BUCKETS, log = function(l) lines[#lines + 1] = l end }
    srv:refusals(tally)
    local cases = {
      { head("X-Big: " .. ("a"):rep(3000) .. "\r\n"), 431,
        "the request line and headers are larger than the server accepts (at most 2048 bytes: ORKET_SERVE_LIMITS "
          .. "max_header_bytes on orket serve sets it)" },
      { head("Content-Length: 2\r\nContent-Length: 40\r\n", "POST /c HTTP/1.1") .. "{}", 400,
        "the request has more than one Content-Length", "POST" },
      { head("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "POST /c HTTP/1.1") .. "0\r\n\r\n", 400,
        "the request has both Content-Length and Transfer-Encoding", "POST" },
      { head("Host: evil\r\n"), 400, "the request has more than one Host" },
      { head(nil, "GET /v1/cards/\xff\xfe HTTP/1.1"), 400,
        "the request target holds a byte above 0x7f (percent-encode it, as %C3%A9)" },
      { head("Transfer-Encoding: gzip\r\n", "POST /c HTTP/1.1"), 501, "the server reads no transfer coding but chunked alone",
        "POST" },
    }
    for i, c in ipairs(cases) do
      local got = once(srv:port(), c[1])
      assert.matches("^HTTP/1.1 " .. c[2], got)
      -- as every other answer's: its type is the one it says
      assert.matches("\r\nX-Content-Type-Options: nosniff\r\n", got:match("^.-\r\n\r\n"), 1, true)
      assert.equal(i, #lines, "a log line for case " .. i)
      local l = cjson.decode(lines[i])
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", l.t)
      assert.matches(',"us":%d+}$', lines[i])
      l.t, l.us = nil, nil
      assert.same({ addr = "127.0.0.1", key = cjson.null, method = c[4] or "GET", note = c[3], route = "-", status = c[2] }, l)
      -- the fields in the one format's order (health_line_write)
      assert.matches('^{"addr":"127.0.0.1","key":null,"method":"' .. (c[4] or "GET") .. '","note":', lines[i])
    end
    local n, sum, counts, statuses = tally:stats()
    assert.equal(#cases, n)
    assert.is_true(sum >= 0)
    local bucketed = 0
    for _, k in ipairs(counts) do bucketed = bucketed + k end
    assert.is_true(bucketed <= n)
    assert.same({ [400] = 4, [431] = 1, [501] = 1 }, statuses)
    -- a sound request is its handler's: neither counted nor logged here
    assert.matches("handed$", once(srv:port(), head()))
    assert.equal(#cases, (tally:stats()))
    assert.equal(#cases, #lines)
    -- set none: refused still, told to no one
    srv:refusals(nil)
    assert.matches("^HTTP/1.1 400", once(srv:port(), head("Host: evil\r\n")))
    assert.equal(#cases, (tally:stats()))
    assert.equal(#cases, #lines)
    srv:close()
  end)

  it("leaves out a method that is no token, the refusal being of it", function()
    local lines = {}
    local srv = serve {}
    srv:refusals(httpd.proxy_tally { route = "-", buckets = BUCKETS, log = function(l) lines[#lines + 1] = l end })
    assert.matches("^HTTP/1.1 400", once(srv:port(), head(nil, "G(T / HTTP/1.1")))
    assert.equal(1, #lines)
    local l = cjson.decode(lines[1])
    assert.is_nil(l.method)
    assert.equal("the request's method is not a token (RFC 9110 9.1)", l.note)
    srv:close()
  end)

  it("logs the client a trusted proxy names, and the proxy as via", function()
    local lines = {}
    local srv = serve { trusted_proxies = { "127.0.0.1" } }
    srv:refusals(httpd.proxy_tally { route = "-", buckets = BUCKETS, log = function(l) lines[#lines + 1] = l end })
    assert.matches("^HTTP/1.1 400", once(srv:port(), head("X-Forwarded-For: 203.0.113.7\r\nHost: evil\r\n")))
    local l = cjson.decode(lines[1])
    assert.equal("203.0.113.7", l.addr)
    assert.equal("127.0.0.1", l.via)
    srv:close()
  end)

  it("reports a log function's error, which may not close the server, and goes on", function()
    local rt = require "orket.c.runtime"
    local reported = {}
    local srv
    srv = serve {}
    srv:refusals(httpd.proxy_tally { route = "-", buckets = BUCKETS, log = function() srv:close() end })
    rt.set_reporter(function(msg) reported[#reported + 1] = msg end)
    local ok, got = pcall(once, srv:port(), head("Host: evil\r\n"))
    rt.set_reporter(function(msg) io.stderr:write("orket: ", tostring(msg), "\n") end)
    assert.is_true(ok, got)
    assert.matches("^HTTP/1.1 400", got)
    assert.equal(1, #reported)
    assert.matches("a server cannot be closed from its quick function", reported[1])
    assert.matches("handed$", once(srv:port(), head()))
    srv:close()
  end)

  it("keeps the server while a tally is set, and checks its argument", function()
    local lines = {}
    local srv = serve {}
    assert.has_error(function() srv:refusals("no") end)
    assert.has_error(function() srv:refusals({}) end)
    srv:refusals(httpd.proxy_tally { route = "-", buckets = BUCKETS, log = function(l) lines[#lines + 1] = l end })
    local port = srv:port()
    local weak = setmetatable({ srv }, { __mode = "v" })
    srv = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_not_nil(weak[1], "the server was collected while its refusals were counted")
    assert.matches("^HTTP/1.1 400", once(port, head("Host: evil\r\n")))
    assert.equal(1, #lines)
    weak[1]:close()
    -- closed: the tally let go, and srv:refusals refused
    assert.has_error(function() weak[1]:refusals(nil) end)
  end)
end)
