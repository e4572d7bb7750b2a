-- orket.serve.logwriter: log lines to a pipe whose reader stopped never wait, keep their order
-- and stay whole; past the bound they are dropped and counted, and one line says how many
-- once the queue is down to half; the pipe's flags stay as they were (no O_NONBLOCK for the
-- other writers that share it); a regular file keeps plain writes.
local H = require "tests.helpers"
local uv = require "luv"
local logwriter = require "orket.serve.logwriter"

local O_NONBLOCK = 2048 -- (Linux's, octal 04000, as /proc/self/fdinfo shows the flags)

local function said(n) return "DROPPED " .. n end

-- a pipe nobody reads yet -> its fds, and reading() -> finish(): reads it from now on;
-- finish() closes the write end and returns what the pipe held until its end
local function stalled_pipe()
  local p = assert(uv.pipe())
  function p.reading()
    local data, done = {}, false
    local r = uv.new_pipe(false)
    r:open(p.read)
    r:read_start(function(_, d) if d then data[#data + 1] = d else done = true end end)
    return function()
      uv.fs_close(p.write)
      H.wait_for(function() return done end, "the pipe's end")
      r:close()
      return table.concat(data)
    end
  end
  return p
end

local function flags(fd)
  local text = assert(H.read("/proc/self/fdinfo/" .. fd))
  return tonumber(text:match("flags:%s*(%d+)"), 8)
end

describe("orket.serve.logwriter", function()
  after_each(H.cleanup)

  it("never waits on a reader that stopped: drops past the bound, says how many, keeps the order", function()
    local p = stalled_pipe()
    local before = flags(p.write)
    local w = logwriter.open { fd = p.write, max_bytes = 100000, dropped_line = said }
    assert.is_false(w.plain)
    assert.equal(before, flags(p.write)) -- the writers that share it are left as they were
    assert.equal(0, before & O_NONBLOCK)
    local t0 = uv.hrtime()
    for i = 1, 20000 do w:line(string.format("line %06d %s", i, ("x"):rep(40))) end
    assert((uv.hrtime() - t0) / 1e6 < 2000, "the lines waited")
    local dropped = w:dropped()
    assert(dropped > 10000, "dropped: " .. dropped)
    local finish = p.reading()
    orket.sleep(50)
    w:line("line 020001 after")
    w:close(5000)
    local text = finish()
    local last, n, notice = 0, 0, nil
    for l in text:gmatch("[^\n]*\n") do
      n = n + 1
      local k = tonumber(l:match("^line (%d+)"))
      if k then
        assert(k > last, "out of order: " .. l)
        last = k
      else
        assert.is_nil(notice, "a second notice: " .. l)
        notice = l
      end
    end
    assert.equal(said(dropped) .. "\n", notice)
    assert.equal(20001, last)
    assert.equal(20001 - dropped + 1, n)
    assert.equal("\n", text:sub(-1))
  end)

  it("writes whole lines of a file's write: a line's start waits for its end, the close ends the last", function()
    local p = stalled_pipe()
    local w = logwriter.open { fd = p.write, dropped_line = said }
    local f = w:stderr()
    assert.equal(f, f:write("one ", 2, "\ntwo"))
    f:write(" more\nthree\nfou")
    f:write("r")
    local finish = p.reading()
    w:close()
    assert.equal("one 2\ntwo more\nthree\nfour\n", finish())
  end)

  it("gives io.stderr back at the close", function()
    local real = io.stderr
    local p = stalled_pipe()
    local w = logwriter.open { fd = p.write, dropped_line = said }
    io.stderr = w:stderr()
    assert.are_not.equal(real, io.stderr)
    io.stderr:write("through it\n")
    local finish = p.reading()
    w:close()
    assert.equal(real, io.stderr)
    assert.equal("through it\n", finish())
  end)

  it("keeps a regular file's writes plain, at once", function()
    local path = H.tmpdir() .. "/log"
    local fd = assert(uv.fs_open(path, "w", 420))
    local w = logwriter.open { fd = fd, dropped_line = said }
    assert.is_true(w.plain)
    w:line("at once")
    assert.equal("at once\n", H.read(path))
    w:close()
    uv.fs_close(fd)
  end)

  it("closes within its bound when the reader never reads", function()
    local p = stalled_pipe()
    local sigpipe = uv.new_signal() -- the thread's write, once the read end closes: EPIPE, not the signal
    sigpipe:start("sigpipe", function() end)
    local w = logwriter.open { fd = p.write, dropped_line = said }
    for i = 1, 5000 do w:line(string.format("line %06d %s", i, ("x"):rep(100))) end
    uv.update_time()
    local t0 = uv.now()
    w:close(200)
    uv.update_time()
    assert(uv.now() - t0 < 1000, "the close waited " .. (uv.now() - t0) .. " ms")
    -- the thread, held by the full pipe, ends once the read end is gone (EPIPE: it writes no
    -- more), before the write end's number is given back
    uv.fs_close(p.read)
    orket.sleep(50)
    uv.fs_close(p.write)
    sigpipe:close()
  end)

  it("raw: each write goes out whole, no line waiting for its end, and one past the bound is dropped whole", function()
    local p = stalled_pipe()
    local w = logwriter.open { fd = p.write, raw = true, max_bytes = 1000 }
    assert.is_false(w.plain)
    w:write("\27[2Aframe one")
    w:write("")
    for _ = 1, 50 do w:write(("x"):rep(100)) end -- past the bound: whole writes dropped, no line said
    assert(w:dropped() > 30, "dropped: " .. w:dropped())
    local finish = p.reading()
    orket.sleep(50)
    w:write("\27[Hlast frame")
    assert.is_true(w:close(5000))
    local text = finish()
    local first, last = "\27[2Aframe one", "\27[Hlast frame"
    assert.equal(first, text:sub(1, #first))
    assert.equal(last, text:sub(-#last))
    assert.equal(0, (#text - #first - #last) % 100)
  end)

  it("finishes when the reader has taken all, however late, or a moment after a cut", function()
    local sigpipe = uv.new_signal()
    sigpipe:start("sigpipe", function() end)
    -- a reader that starts late gets every line
    local p = stalled_pipe()
    local w = logwriter.open { fd = p.write, dropped_line = said }
    for i = 1, 2000 do w:line(string.format("line %06d %s", i, ("x"):rep(100))) end
    local finish
    local reader = uv.new_timer()
    reader:start(1500, 0, function() finish = p.reading() end) -- later than FLUSH_MS
    assert.is_true(w:finish())
    reader:close()
    local text = finish()
    local _, n = text:gsub("\n", "")
    assert.equal(2000, n)
    -- one that never reads: finish waits until cut (a stop signal), then FLUSH_MS at most
    local q = stalled_pipe()
    w = logwriter.open { fd = q.write, dropped_line = said }
    for i = 1, 2000 do w:line(string.format("line %06d %s", i, ("x"):rep(100))) end
    local cutter = uv.new_timer()
    cutter:start(300, 0, function() w:cut() end)
    uv.update_time()
    local t0 = uv.now()
    assert.is_false(w:finish())
    uv.update_time()
    local took = uv.now() - t0
    assert(took >= 300 and took < 300 + logwriter.FLUSH_MS + 500, "finish took " .. took .. " ms")
    cutter:close()
    -- a cut before the close: FLUSH_MS from the close's start, not from the cut
    local r = stalled_pipe()
    local v = logwriter.open { fd = r.write, dropped_line = said }
    v:cut()
    orket.sleep(logwriter.FLUSH_MS + 100)
    v:line("after the cut")
    local late = r.reading()
    assert.is_true(v:finish())
    assert.equal("after the cut\n", late())
    uv.fs_close(q.read)
    orket.sleep(50)
    uv.fs_close(q.write)
    sigpipe:close()
  end)

  it("tells on_gone once when its reader is gone, from the thread or a plain write, and drops the rest", function()
    local guard = uv.new_signal() -- (a write to a pipe with no reader: EPIPE, not SIGPIPE)
    guard:start("sigpipe", function() end)
    local p = assert(uv.pipe())
    uv.fs_close(p.read)
    local gone = 0
    local w = logwriter.open { fd = p.write, dropped_line = said, on_gone = function() gone = gone + 1 end }
    assert.is_false(w.plain)
    w:line("to nobody")
    H.wait_for(function() return gone > 0 end, "on_gone")
    w:line("after")
    orket.sleep(20)
    w:close(1000)
    uv.fs_close(p.write)
    guard:close()
    assert.equal(1, gone)
    -- a file that refuses the write (ENOSPC): plain writes, the same word
    local fd = assert(uv.fs_open("/dev/full", "w", 0))
    local f = logwriter.open { fd = fd, dropped_line = said, on_gone = function() gone = gone + 1 end }
    assert.is_true(f.plain)
    f:line("full")
    f:line("fuller")
    f:close()
    uv.fs_close(fd)
    assert.equal(2, gone)
  end)
end)
