-- orket.c.http's first byte and idle deadlines against a server that sends its headers at
-- once and its body later (a model server reading the prompt before its first token): the
-- wait for the body is the first byte's, and the idle clock starts at the body.
local http = require "orket.c.http"
local uv = require "luv"

-- A server that answers every request with a 200's headers at once, then after body_ms
-- (nil: never) one event, and closes
local function headers_first(body_ms)
  local srv = uv.new_tcp()
  assert(srv:bind("127.0.0.1", 0))
  local open = {}
  srv:listen(16, function()
    local c = uv.new_tcp()
    srv:accept(c)
    open[#open + 1] = c
    c:read_start(function(_, d)
      if not d then
        if not c:is_closing() then c:close() end
        return
      end
      if not d:find("\r\n\r\n", 1, true) then return end
      c:write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
      if body_ms then
        local t = uv.new_timer()
        t:start(body_ms, 0, function()
          t:close()
          if not c:is_closing() then c:write("data: first\n\n", function() c:shutdown() end) end
        end)
      end
    end)
  end)
  local function stop()
    srv:close()
    for _, c in ipairs(open) do if not c:is_closing() then c:close() end end
  end
  return "http://127.0.0.1:" .. srv:getsockname().port .. "/v1/chat", stop
end

-- every event of the answer | nil, message, code, phase
local function events(url, o)
  o.url, o.method, o.body = url, "POST", "{}"
  local r <close> = assert(http.request(o))
  local status, msg, code, phase = r:headers()
  if not status then return nil, msg, code, phase end
  local got = {}
  while true do
    local ev, e, ecode, ephase = r:read()
    if ev == nil then return nil, e, ecode, ephase end
    if not ev then return got end
    for _, p in ipairs(ev) do got[#got + 1] = p end
  end
end

describe("orket.c.http's deadlines", function()
  it("waits for a body after the headers as long as the first byte's deadline, not the idle one", function()
    local url, stop = headers_first(600)
    local got, msg = events(url, { first_byte_timeout_ms = 5000, idle_timeout_ms = 200, total_timeout_ms = 10000 })
    stop()
    assert(got, msg)
    assert.equal("data: first\n\n", table.concat(got))
  end)

  it("says the headers came and then nothing when the first byte's deadline passes", function()
    local url, stop = headers_first(nil)
    local got, msg, code, phase = events(url, { first_byte_timeout_ms = 400, idle_timeout_ms = 100,
      total_timeout_ms = 10000 })
    stop()
    assert.is_nil(got)
    assert.same({ "no response body within 400 ms (the headers came, then nothing)", "timeout", "first_byte" },
      { msg:match("^POST %S+: (.*)$"), code, phase })
  end)

  it("without a first byte's deadline, counts silence after the headers as a stall", function()
    local url, stop = headers_first(nil)
    local got, msg, code, phase = events(url, { idle_timeout_ms = 300, total_timeout_ms = 10000 })
    stop()
    assert.is_nil(got)
    assert.same({ "the response stalled for 300 ms", "timeout", "idle" }, { msg:match("^POST %S+: (.*)$"), code, phase })
  end)
end)
