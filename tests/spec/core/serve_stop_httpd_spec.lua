-- orket.c.httpd's stop in two steps (srv:shut(), the loop sending, then srv:close()), as
-- orket serve stops: streams the owner ended end with their last chunk, a stream still open
-- is cut, what is unanswered gets 503 JSON, a request coming meanwhile on a kept-alive
-- connection gets 503 and a close, and srv:pending() says when all of it is sent.
local httpd = require "orket.c.httpd"
local H = require "tests.helpers"
local task = require "orket.task"
local uv = require "luv"

local sockets = {}

-- raw(port, text) -> conn {got() -> data, closed; write(s)}
local function raw(port, text)
  local c = uv.new_tcp()
  sockets[#sockets + 1] = c
  local st = { data = {}, closed = false, connected = false }
  c:connect("127.0.0.1", port, function(err)
    assert(not err, err)
    st.connected = true
    c:write(text)
    c:read_start(function(_, d)
      if d then st.data[#st.data + 1] = d else st.closed = true end
    end)
  end)
  H.wait_for(function() return st.connected end, "a connection")
  return { got = function() return table.concat(st.data), st.closed end,
    write = function(s) if not c:is_closing() then c:write(s) end end }
end

local function closed(c, what) H.wait_for(function() return select(2, c.got()) end, what) end

describe("orket.c.httpd's stop: shut, send, close", function()
  after_each(function()
    for _, c in ipairs(sockets) do if not c:is_closing() then c:close() end end
    sockets = {}
  end)

  it("sends the ends, the 503s and the refusals before the close", function()
    local streams, held = {}, {}
    local srv = assert(httpd.listen { host = "127.0.0.1", port = 0 })
    task.spawn(function()
      while true do
        local req = srv:accept()
        if not req then return end
        task.spawn(function()
          if req.path == "/ok" then return req:respond(200, { "Content-Type: text/plain" }, "ok") end
          if req.path:find("^/events") then
            local s = assert(req:sse())
            assert(s:send("data: first\n\n"))
            streams[req.path] = s
            return
          end
          if req.path == "/body" then
            held.body = { req:body() } -- waits: the body never comes whole
            return
          end
          held[#held + 1] = req -- never answered
        end)
      end
    end)
    local port = srv:port()
    local ended = raw(port, "GET /events/ended HTTP/1.1\r\nHost: x\r\n\r\n")
    local open = raw(port, "GET /events/open HTTP/1.1\r\nHost: x\r\n\r\n")
    local waiting = raw(port, "GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
    local body = raw(port, "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":")
    local kept = raw(port, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    H.wait_for(function() return streams["/events/ended"] and streams["/events/open"] and #held == 1 end,
      "the streams and the held request")
    H.wait_for(function() return kept.got():find("\r\n\r\nok", 1, true) end, "the kept-alive answer")
    orket.sleep(50) -- the body's first bytes read
    assert.equal(4, srv:pending()) -- the streams, the held request, the body
    streams["/events/ended"]:close() -- as the hub ends its streams
    srv:stop_accepting()
    srv:shut()
    srv:shut() -- once
    kept.write("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n") -- a next request on a connection still open
    H.wait_for(function() return srv:pending() == 0 end, "everything sent", 400)
    -- the owner of the body heard it as the stop (its answer, the 503, was sent)
    H.wait_for(function() return held.body end, "the body's owner told")
    assert.same({ nil, "the server is stopping", "ESHUTDOWN" }, { held.body[1], held.body[2], held.body[3] })
    srv:close()
    for _, c in ipairs { ended, open, waiting, body, kept } do closed(c, "a close") end
    -- the stream its owner ended: its last chunk; the one still open: cut
    assert.equal("\r\n0\r\n\r\n", ended.got():sub(-7))
    assert.matches("data: first", (open.got()))
    assert.not_equal("\r\n0\r\n\r\n", open.got():sub(-7))
    for _, c in ipairs { waiting, body } do
      local data = c.got()
      assert.matches("^HTTP/1.1 503 Service Unavailable\r\n", data)
      assert.matches("\r\nRetry%-After: 1\r\n", data)
      assert.matches('"code":"unavailable","message":"the server is stopping', data, 1, true)
    end
    local second = kept.got():match("^.-\r\n\r\nok(.*)$")
    assert.matches("^HTTP/1.1 503 Service Unavailable\r\n", second)
    assert.matches("\r\nConnection: close\r\n", second)
    assert.matches('"code":"unavailable"', second, 1, true)
    assert.is_true(held[1]:gone())
    held[1]:close()
    for _, s in pairs(streams) do s:close() end
    srv:close() -- idempotent
  end)
end)
