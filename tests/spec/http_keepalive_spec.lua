-- orket.c.http's kept connections: a connection waits in libcurl's cache between requests
-- with its reading still watched on the loop (core/http.c). The next request reuses it; one
-- the server ends while it waits is let go without spinning the loop, and the next request
-- connects again. The server is a raw luv socket, so the test decides when it closes.
local uv = require "luv"
local http = require "orket.c.http"

-- server(close_after_ms) -> port, state {conns=}: answers "ok" to each request, keeping
-- the connection; with close_after_ms, closes it that long after each answer
local function server(close_after_ms)
  local srv = uv.new_tcp()
  assert(srv:bind("127.0.0.1", 0))
  local st = { conns = 0 }
  assert(srv:listen(16, function()
    local c = uv.new_tcp()
    srv:accept(c)
    st.conns = st.conns + 1
    local buf = ""
    c:read_start(function(_, data)
      if not data then
        if not c:is_closing() then c:close() end
        return
      end
      buf = buf .. data
      if buf:find("\r\n\r\n", 1, true) then
        buf = ""
        c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
        if close_after_ms then
          local t = uv.new_timer()
          t:start(close_after_ms, 0, function()
            t:close()
            if not c:is_closing() then c:close() end
          end)
        end
      end
    end)
  end))
  st.close = function() srv:close() end
  return srv:getsockname().port, st
end

local function get(port)
  local r <close> = assert(http.request { url = "http://127.0.0.1:" .. port .. "/", total_timeout_ms = 5000 })
  local status = r:headers()
  local parts = {}
  while true do
    local ev = r:read()
    if not ev then break end
    for _, x in ipairs(ev) do parts[#parts + 1] = x end
  end
  return status, table.concat(parts)
end

describe("orket.c.http kept connections", function()
  it("reuses a kept connection for the next request", function()
    local port, st = server()
    for _ = 1, 3 do
      local status, body = get(port)
      assert.equal(200, status)
      assert.equal("ok", body)
    end
    assert.equal(1, st.conns)
    st.close()
  end)

  it("lets a kept connection the server ended go without spinning, and connects again", function()
    local port, st = server(30)
    local status, body = get(port)
    assert.equal(200, status)
    assert.equal("ok", body)
    -- the server closes it meanwhile: the loop must not wake for it again and again
    local c0 = os.clock()
    orket.sleep(300)
    assert.is_true(os.clock() - c0 < 0.1, "the loop spun on a closed connection")
    status, body = get(port)
    assert.equal(200, status)
    assert.equal("ok", body)
    assert.equal(2, st.conns)
    st.close()
  end)
end)
