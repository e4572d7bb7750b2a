-- orket serve logs and counts the requests it refuses at their headers, before any route
-- runs (core/httpd.c: a 431 for headers over the cap, framing that could be read two ways,
-- a duplicate Host, a target that is not valid), as it does every other request
-- (docs/serve.md, "Logs"): a line of the one format with route "-", the status and the
-- answer's message as note, and a count in orket_http_requests_total{route="-"}. The binary
-- on 127.0.0.1, the requests written on raw sockets (no client library sends them).
local H = require "tests.helpers"
local cjson = require "cjson"
local uv = require "luv"

-- once(port, text) -> the whole answer, the server having closed the connection
local function once(port, text)
  local c = uv.new_tcp()
  local st = { data = {}, closed = false }
  c:connect("127.0.0.1", port, function(err)
    if err then st.closed = true return end
    c:write(text)
    c:read_start(function(_, d) if d then st.data[#st.data + 1] = d else st.closed = true end end)
  end)
  local ok, e = pcall(H.wait_for, function() return st.closed end, "the server's close")
  c:close()
  assert(ok, e)
  return table.concat(st.data)
end

local function head(extra, line)
  return (line or "GET /v1/board HTTP/1.1") .. "\r\nHost: 127.0.0.1\r\n" .. (extra or "") .. "Connection: close\r\n\r\n"
end

describe("orket serve's refusals at the headers", function()
  local sigpipe
  setup(function() -- a refusal closes while the client may still write: EPIPE, not SIGPIPE
    sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
  end)
  teardown(function() sigpipe:close() end)
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("logs each with route \"-\", its status and why, and counts it in orket_http_requests_total", function()
    local s = H.serve(H.example("webapp"))
    local cases = {
      { head("X-Big: " .. ("a"):rep(20000) .. "\r\n"), 431,
        "the request line and headers are larger than the server accepts (at most 16384 bytes: ORKET_SERVE_LIMITS "
          .. "max_header_bytes on orket serve sets it)" },
      { head("Content-Length: 2\r\nContent-Length: 40\r\n", "POST /v1/cards/API-2/comments HTTP/1.1") .. "{}", 400,
        "the request has more than one Content-Length", "POST" },
      { head("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "POST /v1/cards/API-2/comments HTTP/1.1")
        .. "0\r\n\r\n", 400, "the request has both Content-Length and Transfer-Encoding", "POST" },
      { head("Host: evil\r\n"), 400, "the request has more than one Host" },
      { head(nil, "GET /v1/cards/\xff\xfe HTTP/1.1"), 400,
        "the request target holds a byte above 0x7f (percent-encode it, as %C3%A9)" },
    }
    for _, c in ipairs(cases) do assert.matches("^HTTP/1.1 " .. c[2], once(s.port, c[1])) end
    local st, text = H.fetch { url = s.url .. "/metrics", total_timeout_ms = 20000 }
    assert.equal(200, st, text)
    assert.matches('\norket_http_requests_total{route="-",status="431"} 1\n', text, 1, true)
    assert.matches('\norket_http_requests_total{route="-",status="400"} 4\n', text, 1, true)
    assert.equal(0, s.stop())
    local lines = {}
    for l in s.log():gmatch("[^\n]+") do
      local d = cjson.decode(l)
      if d.route == "-" then lines[#lines + 1] = d end
    end
    assert.equal(#cases, #lines)
    for i, c in ipairs(cases) do
      local l = lines[i]
      assert.equal("number", type(l.us))
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", l.t)
      l.t, l.us = nil, nil
      assert.same({ addr = "127.0.0.1", key = cjson.null, method = c[4] or "GET", note = c[3], route = "-", status = c[2] }, l)
    end
  end)
end)
