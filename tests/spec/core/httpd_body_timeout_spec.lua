-- orket.c.httpd: a request body's deadline. A body that keeps arriving is read whole however
-- long it takes (a large upload over a slow uplink was cut at 30 s in all, whatever its
-- rate), while one that stops for body_timeout_ms, or brings fewer bytes than the minimum
-- rate in any window of body_timeout_ms (a slow-loris client, or one that sends most of its
-- body at once and then trickles), is answered 408 and closed. The 408 and the 431 name their limit and the setting that raises it, as the 413
-- does. Raw luv sockets, on loopback.
local httpd = require "orket.c.httpd"
local task = require "orket.task"
local uv = require "luv"

-- a server whose every request is answered with its body's length, or left to the 408
local function serve(opts)
  opts.host, opts.port = "127.0.0.1", 0
  local srv = assert(httpd.listen(opts))
  task.spawn(function()
    while true do
      local req = srv:accept()
      if not req then return end
      task.spawn(function()
        local body = req:body()
        if body then req:respond(200, { "Content-Type: text/plain" }, "got " .. #body) end
        req:close()
      end)
    end
  end)
  return srv
end

-- a connection sending head, then the body in steps: each {bytes, then wait ms}; ->
-- everything the server sent, whether it closed, the ms from the head to the answer's start
local function send(port, head, steps)
  local c = uv.new_tcp()
  local data, closed, connected, first = {}, false, false, nil
  c:connect("127.0.0.1", port, function(err)
    assert(not err, err)
    connected = true
    c:read_start(function(_, d)
      if d then
        first = first or uv.now()
        data[#data + 1] = d
      else
        closed = true
      end
    end)
  end)
  while not connected do orket.sleep(1) end
  local t0 = uv.now()
  c:write(head)
  for _, s in ipairs(steps) do
    if closed or #data > 0 then break end
    if s[1] ~= "" then c:write(s[1]) end
    local till = uv.now() + s[2]
    repeat orket.sleep(5) until closed or #data > 0 or uv.now() >= till
  end
  for _ = 1, 2000 do
    if closed then break end
    orket.sleep(5)
  end
  c:close()
  return table.concat(data), closed, first and first - t0
end

local function post(len) return "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: " .. len .. "\r\n\r\n" end

describe("orket.c.httpd's body deadline", function()
  it("reads a body that keeps arriving long past body_timeout_ms", function()
    local srv = serve { body_timeout_ms = 1000, idle_timeout_s = 1 }
    -- 2,000 bytes every 100 ms (20 KB/s) for 3 s: three times the deadline
    local steps = {}
    for i = 1, 30 do steps[i] = { ("x"):rep(2000), 100 } end
    local text, _, at = send(srv:port(), post(60000), steps)
    assert.matches("^HTTP/1.1 200 ", text)
    assert.matches("got 60000$", text)
    assert.is_true(at >= 2500, "answered after the whole body")
    srv:close()
  end)

  it("answers 408 to a body trickled in slower than the minimum rate, at body_timeout_ms", function()
    local srv = serve { body_timeout_ms = 1000 }
    local steps = {}
    for i = 1, 100 do steps[i] = { "x", 100 } end -- a byte every 100 ms: a slow-loris client
    local text, closed, at = send(srv:port(), post(100), steps)
    assert.matches("^HTTP/1.1 408 Request Timeout\r\n", text)
    assert.is_true(closed)
    assert.is_true(at >= 950 and at < 2500, "cut at the deadline, not later: " .. tostring(at))
    local msg = text:match('"message":"([^"]*)"')
    assert.equal("the request body came too slowly: each 1 s of it must bring at least 4096 bytes a second "
      .. "(ORKET_SERVE_LIMITS body_timeout_ms on orket serve sets the 1 s, body_min_rate the bytes)", msg)
    srv:close()
  end)

  it("takes the minimum rate from body_min_rate: a slow uplink below the default is read whole", function()
    -- 300 bytes every 100 ms (3 KB/s, below the default 4,096) for three windows
    local steps = {}
    for i = 1, 30 do steps[i] = { ("x"):rep(300), 100 } end
    local srv = serve { body_timeout_ms = 1000, idle_timeout_s = 1, body_min_rate = 1024 }
    local text = send(srv:port(), post(9000), steps)
    assert.matches("^HTTP/1.1 200 ", text)
    assert.matches("got 9000$", text)
    srv:close()
    -- the same client against the default rate: cut as its first window ends
    srv = serve { body_timeout_ms = 1000, idle_timeout_s = 1 }
    text = send(srv:port(), post(9000), steps)
    assert.matches("^HTTP/1.1 408 Request Timeout\r\n", text)
    assert.matches("at least 4096 bytes a second", text, 1, true)
    srv:close()
    -- and its 408 names the rate it was given
    srv = serve { body_timeout_ms = 1000, body_min_rate = 10000 }
    text = send(srv:port(), post(9000), steps)
    assert.matches("at least 10000 bytes a second", text, 1, true)
    srv:close()
  end)

  it("answers 408 to a body that stops arriving for body_timeout_ms, however much came before", function()
    local srv = serve { body_timeout_ms = 1000, idle_timeout_s = 1 }
    local steps = {}
    for i = 1, 20 do steps[i] = { ("x"):rep(2000), 100 } end -- 2 s of it, then nothing
    steps[#steps + 1] = { "", 5000 }
    local text, closed, at = send(srv:port(), post(100000), steps)
    assert.matches("^HTTP/1.1 408 Request Timeout\r\n", text)
    assert.is_true(closed)
    assert.is_true(at >= 2800 and at < 4500, "a second or so after the last byte: " .. tostring(at))
    assert.equal("the request body stopped arriving: none of it came for 1 s (ORKET_SERVE_LIMITS body_timeout_ms"
      .. " on orket serve sets it)", text:match('"message":"([^"]*)"'))
    srv:close()
    -- a deadline of a part of a second is said in ms (its first window full enough, so that
    -- only the silence after it is at fault)
    srv = serve { body_timeout_ms = 600 }
    text = send(srv:port(), post(5000), { { ("x"):rep(3000), 3000 } })
    assert.matches("none of it came for 600 ms (", text, 1, true)
    srv:close()
  end)

  it("answers 408 to a body sent mostly at once, then trickled: no credit carried past a window", function()
    local srv = serve { body_timeout_ms = 1000, idle_timeout_s = 1 }
    -- 40,000 bytes at once (ten windows' worth at the minimum rate), then a byte every 900 ms:
    -- never silent for 1 s, and above the rate averaged since the start for 10 s
    local steps = { { ("x"):rep(40000), 900 } }
    for i = 2, 25 do steps[i] = { "x", 900 } end
    local text, closed, at = send(srv:port(), post(40100), steps)
    assert.matches("^HTTP/1.1 408 Request Timeout\r\n", text)
    assert.is_true(closed)
    -- the second window ([1 s, 2 s)) holds a byte or two: cut as it ends (late by a loaded
    -- machine's timers at most, never a window early)
    assert.is_true(at >= 1900 and at < 3500, "cut as the first short window ends: " .. tostring(at))
    assert.matches("the request body came too slowly: each 1 s of it", text, 1, true)
    srv:close()
    -- above the rate in small steps (1,000 bytes every 100 ms, 2.5 times it, so that a loaded
    -- machine's late timers keep it above) for four windows: read whole
    srv = serve { body_timeout_ms = 1000, idle_timeout_s = 1 }
    steps = {}
    for i = 1, 40 do steps[i] = { ("x"):rep(1000), 100 } end
    text = send(srv:port(), post(40000), steps)
    assert.matches("^HTTP/1.1 200 ", text)
    assert.matches("got 40000$", text)
    srv:close()
  end)

  it("names the header cap and max_header_bytes in its 431", function()
    local srv = serve { max_header_bytes = 2048 }
    local text = send(srv:port(), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " .. ("a"):rep(3000) .. "\r\n\r\n", {})
    assert.matches("^HTTP/1.1 431 ", text)
    assert.equal("the request line and headers are larger than the server accepts (at most 2048 bytes: "
      .. "ORKET_SERVE_LIMITS max_header_bytes on orket serve sets it)", text:match('"message":"([^"]*)"'))
    srv:close()
  end)
end)
