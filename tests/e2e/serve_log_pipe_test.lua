-- orket serve with its stderr (the request log) a pipe nobody reads: the log is written by a
-- thread of its own (orket.serve.logwriter), so once the pipe is full the server still answers
-- every request, /health first; past the writer's bound lines are dropped and counted
-- (orket_log_lines_dropped_total), and once the reader takes them again one log_dropped
-- line says how many. Before, each line was a blocking write on the loop: the server froze
-- after some 64 KiB of lines (docs/serve.md, "Running it"). The binary on 127.0.0.1, its
-- stderr a FIFO this test holds open and does not read until it says so.
local H = require "tests.helpers"
local cjson = require "cjson"
local uv = require "luv"
local logwriter = require "orket.serve.logwriter"

local O_NONBLOCK = 2048 -- (Linux: opening a FIFO's read end without waiting for a writer)

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- the server, its stderr the FIFO at dir/err.fifo -> {port=, pid=}
local function serve_to_fifo(dir)
  os.execute(string.format("cd %s && { ORKET_SERVE_LIMITS=addr_rate=1000000,addr_burst=1000000 %s serve --listen "
    .. "127.0.0.1:0 >serve.out 2>err.fifo & echo $! >serve.pid; wait $!; echo $? >serve.rc; } >/dev/null 2>&1 &",
    sh_quote(dir), sh_quote(H.BIN)))
  local port = H.wait_for(function() return (H.read(dir .. "/serve.out") or ""):match("listening on http://127%.0%.0%.1:(%d+)") end,
    "the server to listen", 3000)
  local pid = H.wait_for(function() return tonumber((H.read(dir .. "/serve.pid") or ""):match("^%d+")) end, "its pid")
  return { port = tonumber(port), pid = pid }
end

-- -> count(piece) -> how many status lines ("HTTP/1.1 200") the pieces read so far held. One
-- may straddle two reads: the end of each is kept for the next, but only as much as can
-- hold a status line's start and not a whole one (which is counted already: keeping 20
-- bytes counted one ending in a read's last 8 bytes twice, 5001 answers for 5000).
local STATUS, STATUS_LEN = "HTTP/1%.1 %d%d%d", #"HTTP/1.1 200"
local function status_counter()
  local got, tail = 0, ""
  return function(piece)
    local text = tail .. piece
    for _ in text:gmatch(STATUS) do got = got + 1 end
    tail = text:sub(-(STATUS_LEN - 1))
    return got
  end
end

-- n GET /health pipelined on one connection -> how many answers came within ms
local function flood(port, n, ms)
  local c = uv.new_tcp()
  local st, count = { got = 0 }, status_counter()
  c:connect("127.0.0.1", port, function(err)
    if err then return end
    c:write(("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"):rep(n))
    c:read_start(function(_, d)
      if d then st.got = count(d) end
    end)
  end)
  local deadline = uv.now() + ms
  while st.got < n and uv.now() < deadline do orket.sleep(20) end
  c:close()
  return st.got
end

describe("the flood's count of answers", function()
  it("counts each once however the reads split them", function()
    local answer = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
    local stream = answer:rep(3)
    for a = 1, #stream - 1 do
      for b = a + 1, #stream do
        local count = status_counter()
        count(stream:sub(1, a - 1))
        count(stream:sub(a, b - 1))
        assert.equal(3, count(stream:sub(b)), string.format("split at %d and %d", a, b))
      end
    end
  end)
end)

describe("orket serve with its stderr a pipe nobody reads", function()
  local dir, s, rfd, reader
  after_each(function()
    if reader then
      if not reader:is_closing() then reader:close() end
    elseif rfd then
      uv.fs_close(rfd)
    end
    if s and not (H.read(dir .. "/serve.rc") or ""):match("^%d+") then
      os.execute("kill -KILL " .. s.pid)
      H.wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the killed server's shell")
    end
    s, reader, rfd = nil, nil, nil
    H.cleanup()
  end)

  it("answers /health while the pipe is full, drops past the bound, and says how many once it is read", function()
    dir = H.example("notes")
    assert(os.execute("mkfifo " .. sh_quote(dir .. "/err.fifo")))
    rfd = assert(uv.fs_open(dir .. "/err.fifo", O_NONBLOCK, 0))
    s = serve_to_fifo(dir)
    -- fd 2 is left blocking: its file description is the workers' and the shell's too
    local fdinfo = assert(H.read("/proc/" .. s.pid .. "/fdinfo/2"))
    assert.equal(0, tonumber(fdinfo:match("flags:%s*(%d+)"), 8) & O_NONBLOCK, fdinfo)
    -- a log line is about 110 bytes: this many fill the FIFO, the writer's own pipe and its
    -- bound of logwriter.MAX_BYTES, with room to spare
    local n = (logwriter.MAX_BYTES + 2 * 65536) // 100 + 2000
    local sent = 0
    while sent < n do
      local got = flood(s.port, 5000, 10000)
      assert.equal(5000, got, "the server stopped answering after " .. (sent + got) .. " requests")
      sent = sent + got
    end
    local t0 = uv.hrtime()
    local st = H.fetch { url = "http://127.0.0.1:" .. s.port .. "/health", total_timeout_ms = 3000 }
    assert.equal(200, st)
    assert((uv.hrtime() - t0) / 1e6 < 2000, "/health answered only after two seconds")
    local mst, metrics = H.fetch { url = "http://127.0.0.1:" .. s.port .. "/metrics", total_timeout_ms = 5000 }
    assert.equal(200, mst, metrics)
    local dropped = tonumber(metrics:match("\norket_log_lines_dropped_total (%d+)\n"))
    assert(dropped and dropped > 0, "no log line was dropped: " .. tostring(dropped))

    -- read it now: the lines queued come, then the one that says how many were dropped
    local data, eof = {}, false
    reader = uv.new_pipe(false)
    reader:open(rfd)
    reader:read_start(function(_, d) if d then data[#data + 1] = d else eof = true end end)
    local said = H.wait_for(function() return table.concat(data):match('\n(%{[^\n]*"event":"log_dropped"[^\n]*%})\n') end,
      "the log_dropped line")
    local line = cjson.decode(said)
    -- (the /metrics request's own line may be among them: it was written after its answer)
    assert(line.dropped == dropped or line.dropped == dropped + 1, said)
    assert.matches("log lines were dropped", line.message)
    -- every line whole, the requests' and the stop's
    os.execute("kill -TERM " .. s.pid)
    H.wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the server to exit")
    assert.equal("0", H.read(dir .. "/serve.rc"):match("^%d+"))
    H.wait_for(function() return eof end, "the log's end")
    assert.equal("\n", table.concat(data):sub(-1))
    local lines = 0
    for l in table.concat(data):gmatch("[^\n]+") do
      assert(pcall(cjson.decode, l), "not a whole JSON line: " .. l:sub(1, 200))
      lines = lines + 1
    end
    assert(lines + dropped >= sent, string.format("%d lines read and %d dropped for %d requests", lines, dropped, sent))
  end)
end)
