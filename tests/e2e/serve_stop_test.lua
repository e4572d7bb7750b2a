-- orket serve's stop, as its clients see it (docs/serve.md, Running it): every event stream
-- ends with its last chunk (a clean end, not a cut transfer), and a request still in flight
-- when the drain ends gets 503, which the log line says too (not a 400 sent to no one).
-- Raw sockets (luv), so that the bytes on the wire are what is checked.
local H = require "tests.helpers"
local cjson = require "cjson"
local uv = require "luv"

local wait_for = H.wait_for

local sockets = {} -- closed after each test (an open luv handle at exit crashes)

-- raw(port, text) -> conn {got() -> data, closed; write(s)}
local function raw(port, text)
  local c = uv.new_tcp()
  sockets[#sockets + 1] = c
  local st = { data = {}, closed = false, connected = false }
  c:connect("127.0.0.1", port, function(err)
    if err then st.closed = true return end
    st.connected = true
    c:write(text)
    c:read_start(function(_, d)
      if d then st.data[#st.data + 1] = d else st.closed = true end
    end)
  end)
  wait_for(function() return st.connected or st.closed end, "a connection")
  return {
    got = function() return table.concat(st.data), st.closed end,
    write = function(s) if not c:is_closing() then c:write(s) end end,
  }
end

local function ended(dir)
  return wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the server's end")
end

-- the log's request lines (JSON ones with a route)
local function log_lines(s)
  local out = {}
  for line in s.log():gmatch("[^\n]+") do
    local v = cjson.decode(line)
    if type(v) == "table" and v.route then out[#out + 1] = v end
  end
  return out
end

describe("orket serve's stop", function()
  local sigpipe
  setup(function()
    sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
  end)
  teardown(function() sigpipe:close() end)
  after_each(function()
    for _, c in ipairs(sockets) do if not c:is_closing() then c:close() end end
    sockets = {}
    H.kill_servers()
    H.cleanup()
  end)

  -- one stream of six ended cleanly: the rest were cut when the daemon stopped with their
  -- last chunk unsent (curl: exit 18, "transfer closed with outstanding read data remaining")
  it("ends every event stream with its last chunk", function()
    local dir = H.example("webapp")
    local admin = H.api_key(dir, "admin", "admin")
    local s = H.serve(dir)
    local streams = {}
    for i = 1, 6 do
      local path = ({ "/v1/events?after=0", "/v1/events", "/v1/events?after=3" })[(i - 1) % 3 + 1]
      streams[i] = raw(s.port, "GET " .. path .. " HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " .. admin
        .. "\r\nAccept: text/event-stream\r\n\r\n")
    end
    for i, c in ipairs(streams) do
      wait_for(function() return c.got():find("\r\n\r\n", 1, true) end, "stream " .. i .. "'s headers")
      assert.matches("^HTTP/1.1 200 ", (c.got()))
      assert.matches("\r\nTransfer%-Encoding: chunked\r\n", (c.got()))
    end
    orket.sleep(200) -- the replays sent
    os.execute("kill -TERM " .. s.pid)
    assert.equal("0", ended(dir))
    for i, c in ipairs(streams) do
      wait_for(function() return select(2, c.got()) end, "stream " .. i .. "'s close")
      local data = c.got()
      assert(data:sub(-7) == "\r\n0\r\n\r\n", "stream " .. i .. " was cut: it ends " .. string.format("%q", data:sub(-40)))
    end
  end)

  -- a body still coming when the drain (3 s) ended: the client read nothing and EOF, the
  -- log said 400
  it("answers 503 to a request whose body still comes at the drain's end, and logs 503", function()
    local dir = H.example("webapp")
    local admin = H.api_key(dir, "admin", "admin")
    local s = H.serve(dir)
    local c = raw(s.port, "POST /v1/cards/API-2/comments HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " .. admin
      .. "\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"body\":\"")
    local sending = true
    local feeder = orket.spawn(function()
      while sending do
        c.write(string.rep("x", 20))
        orket.sleep(200)
      end
    end)
    orket.sleep(500)
    local t0 = uv.now()
    os.execute("kill -TERM " .. s.pid)
    wait_for(function() return c.got():find("\r\n\r\n", 1, true) or select(2, c.got()) end, "an answer")
    local data = c.got()
    assert.matches("^HTTP/1.1 503 Service Unavailable\r\n", data)
    assert.matches("\r\nRetry%-After: 1\r\n", data)
    assert.matches("\r\nConnection: close\r\n", data)
    wait_for(function() return c.got():find("}}", 1, true) end, "the answer's body")
    local doc = cjson.decode(c.got():match("\r\n\r\n(.*)$"))
    assert.equal("unavailable", doc.error.code)
    assert.matches("the server is stopping", doc.error.message)
    -- after the drain, not before: the request had its 3 s to finish
    assert(uv.now() - t0 >= 2500, "answered after " .. (uv.now() - t0) .. " ms")
    assert.equal("0", ended(dir))
    sending = false
    feeder:join()
    local post
    for _, l in ipairs(log_lines(s)) do
      if l.method == "POST" then post = l end
    end
    assert(post, "no log line for the POST: " .. s.log())
    assert.equal("/v1/cards/{id}/comments", post.route)
    assert.equal(503, post.status)
  end)
end)
