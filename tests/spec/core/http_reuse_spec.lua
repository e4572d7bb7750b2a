-- orket.c.http on a kept connection the server drops as the next request arrives: the
-- peer's reset reaches the loop as an error on the socket, and libcurl must read it
-- itself to know the connection died unused and send the request again on a new one
-- (a provider's keep-alive timeout fires just as a sign-in's token POST reuses it).
local http = require "orket.c.http"
local uv = require "luv"

-- A server that answers each connection's first request and resets the connection at
-- its second; conns counts the connections it took
local function resetting_server()
  local srv = uv.new_tcp()
  assert(srv:bind("127.0.0.1", 0))
  local st = { conns = 0, open = {} }
  srv:listen(16, function()
    local c = uv.new_tcp()
    srv:accept(c)
    st.conns = st.conns + 1
    st.open[#st.open + 1] = c
    local seen, buf = 0, ""
    c:read_start(function(_, d)
      if not d then
        if not c:is_closing() then c:close() end
        return
      end
      buf = buf .. d
      -- a request is whole at its blank line and, for a POST, its 4-byte body
      while true do
        local head_end = buf:find("\r\n\r\n", 1, true)
        if not head_end then return end
        local len = tonumber(buf:sub(1, head_end):lower():match("content%-length: (%d+)")) or 0
        if #buf < head_end + 3 + len then return end
        buf = buf:sub(head_end + 4 + len)
        seen = seen + 1
        if seen == 1 then
          c:write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        else
          c:read_stop()
          c:close_reset()
          return
        end
      end
    end)
  end)
  return srv, "http://127.0.0.1:" .. srv:getsockname().port, st
end

local function post(url)
  local r <close>, err = http.request { url = url, method = "POST", body = "a=b&", total_timeout_ms = 5000,
    connect_timeout_ms = 5000 }
  assert(r, err)
  local status, h = r:headers()
  if not status then return nil, h end
  local parts = {}
  while true do
    local ev, e = r:read()
    if ev == nil then return nil, e end
    if not ev then break end
    for _, p in ipairs(ev) do parts[#parts + 1] = p end
  end
  return status, table.concat(parts)
end

describe("orket.c.http on a kept connection", function()
  it("sends a POST again on a new connection when the server resets the kept one at the request", function()
    local srv, url, st = resetting_server()
    assert.same({ 200, "ok" }, { post(url .. "/token") })
    assert.equal(1, st.conns)
    -- the kept connection is reused, reset, and the request goes again on a second
    assert.same({ 200, "ok" }, { post(url .. "/token") })
    assert.equal(2, st.conns)
    srv:close()
    for _, c in ipairs(st.open) do if not c:is_closing() then c:close() end end
  end)
end)
