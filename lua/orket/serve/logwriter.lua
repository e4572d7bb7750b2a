-- orket.serve.logwriter: a long-running command's log lines to stderr without the loop ever
-- waiting on its reader. A blocking write there held the whole server, /health included,
-- once a pipe nobody read was full (`orket serve 2>&1 | tee` stopped, a stalled collector).
-- The lines go through a pipe of our own to a thread whose blocking writes wait instead.
-- Not libuv on fd 2 itself: uv_pipe_open sets O_NONBLOCK on fd 2's file description, which
-- the workers, sandboxes and the shell share (a dup shares it too), and their writes would
-- then fail with EAGAIN. Past MAX_BYTES queued, whole lines are dropped and counted; once
-- the queue is down to half, one line says how many. A regular file (or one that is not a
-- pipe, socket or terminal) keeps plain writes: no reader can hold those. orket run's
-- stdout goes this way too (its JSON Lines, or its live view's frames: raw), waiting at
-- its end for the reader until a stop signal (finish).
local uv = require "luv"
local rt = require "orket.c.runtime"
local jsonout = require "orket.jsonout"
local stopsignals = require "orket.stopsignals"

local M = {}

M.MAX_BYTES = 4 * 1024 * 1024
M.CHUNK = 64 * 1024 -- the most handed to the thread's pipe in one write
M.FLUSH_MS = 500 -- what the close waits for the queue, at most (inside docker stop's 10 s)
-- How long the thread has to say it started (its luv loaded): one that did not by then,
-- at the close, is taken for one that could not, whose end would never come
M.START_MS = 2000

-- The thread's body, in a Lua state of its own (luv dumps it: no upvalues): reads the pipe
-- until its end, writes it to fd out. Whole lines in writes of at most 4096 bytes (PIPE_BUF:
-- the workers' lines, written to the same pipe, never land inside one), a longer line
-- alone; raw (1: a terminal's frames, no lines to keep whole), all it read at once. A reader
-- gone (EPIPE) makes the rest read and dropped; closing ack says it ended, or, closed at
-- once when the reader is gone, that it is (the writer's on_gone).
local function drain(rfd, ack, out, raw)
  -- lazy: the thread's own Lua state, whose luv is its own. Its loop takes descriptors: at
  -- the process's limit its load fails, and raised here, where luv's call of this body is
  -- not protected, the process would abort (start_thread asks for spare ones first)
  local loaded, tuv = pcall(require, "luv")
  if not loaded then return false end
  tuv.fs_write(ack, "r") -- started (orket.serve.logwriter's close need not wait for an end that never comes)
  local broken = false
  local function put(s)
    local at = 0
    while not broken and at < #s do
      local n, err = tuv.fs_write(out, at == 0 and s or s:sub(at + 1))
      if n then at = at + n
      elseif err:find("^EAGAIN") or err:find("^EINTR") then tuv.sleep(5) -- another made fd 2 non-blocking
      else
        broken = true
        tuv.fs_close(ack)
        ack = nil
      end
    end
  end
  local function whole_lines(text)
    local first, last, pos = 1, nil, 1
    while true do
      local nl = text:find("\n", pos, true)
      if not nl then break end
      if last and nl - first + 1 > 4096 then
        put(text:sub(first, last))
        first = last + 1
      end
      last, pos = nl, nl + 1
    end
    if not last then return text end
    put(text:sub(first, last))
    return text:sub(last + 1)
  end
  local ok = pcall(function() -- an error here would end the process (luv's thread call)
    local rest = ""
    while true do
      local data, err = tuv.fs_read(rfd, 65536)
      if data and data ~= "" then
        if raw == 1 then put(data) else rest = whole_lines(rest .. data) end
      elseif not (err and err:find("^EINTR")) then break end
    end
    put(rest)
  end)
  tuv.fs_close(rfd)
  if ack then tuv.fs_close(ack) end
  return ok
end

local Writer = {}
Writer.__index = Writer

-- the thread and the two pipes: the lines' (our end non-blocking, its own description) and
-- the ack, whose end says the thread wrote all -> true | nil, message (nothing left open)
-- Whether n pipes (2n descriptors) can be had now; given back at once. The thread's own Lua
-- state opens luv, whose loop takes descriptors (epoll's, a signal pipe's): at a limit that
-- leaves none, luv raises there, where nothing catches it, and the process aborts (PANIC).
local function spare_fds(n)
  local got, ok = {}, true
  for _ = 1, n do
    local p = uv.pipe()
    if not p then ok = false break end
    got[#got + 1] = p
  end
  for _, p in ipairs(got) do
    uv.fs_close(p.read)
    uv.fs_close(p.write)
  end
  return ok
end

local function start_thread(self, fd)
  local lines, lerr = uv.pipe()
  if not lines then return nil, lerr end
  local ack, aerr = uv.pipe()
  if not ack then
    uv.fs_close(lines.read)
    uv.fs_close(lines.write)
    return nil, aerr
  end
  -- a small stack: the body is shallow, and 8 MiB more counts against ulimit -v. Integers
  -- only as arguments: a thread still blocked when the Lua state goes only reads its luv
  -- object at its end, it frees nothing there
  local thread, terr
  if spare_fds(4) then
    thread, terr = uv.new_thread({ stack_size = 256 * 1024 }, drain, lines.read, ack.write, fd, self.raw and 1 or 0)
  else
    terr = "EMFILE: too few file descriptors left for its loop (ulimit -n)"
  end
  if not thread then
    for _, f in ipairs { lines.read, lines.write, ack.read, ack.write } do uv.fs_close(f) end
    return nil, terr
  end
  self.thread = thread
  self.pipe = uv.new_pipe(false)
  self.pipe:open(lines.write)
  self.ack = uv.new_pipe(false)
  self.ack:open(ack.read)
  self.opened_at = uv.now()
  self.ack:read_start(function(_, data)
    if data then
      self.started = true
      return
    end
    self.ended = true
    if not self.closed then self:_gone() end -- the thread's write failed: the reader is gone
  end)
  return true
end

-- the reader gone (a write failed, EPIPE): on_gone told, once
function Writer:_gone()
  if self.gone then return end
  self.gone = true
  if self.on_gone then self.on_gone() end
end

--- open{[fd=2], [max_bytes=M.MAX_BYTES], dropped_line=fn(n) -> text[, on_gone=fn()][,
--- as_stderr=true][, raw=true]} -> writer, nil | writer, message: the thread could not
--- start, and the writes are plain ones (the caller says so). dropped_line makes the line
--- (without its "\n") said after n lines dropped; on_gone is called once when a write to fd
--- fails (its reader gone: `orket worker | head`; a plain write's failure, a full disk,
--- too), the lines after it dropped; as_stderr installs the writer's stand-in as io.stderr
--- (writer:stderr()) while a thread writes. raw (a terminal's frames, orket run's live
--- view): each write goes out whole as it is, no line waiting for its end, and one past the
--- bound is dropped whole, counted, with no line said (dropped_line is not needed).
function M.open(o)
  local fd = o.fd or 2
  local self = setmetatable({ fd = fd, max = o.max_bytes or M.MAX_BYTES, dropped_line = o.dropped_line,
    on_gone = o.on_gone, queue = {}, head = 1, queued = 0, writing = false, drops = 0, total = 0, partial = "",
    plain = true, raw = o.raw and true or false }, Writer)
  if uv.guess_handle(fd) == "file" then return self end
  local ok, err = start_thread(self, fd)
  if not ok then return self, "the log's writer thread: " .. tostring(err) .. "; its lines are written in the loop" end
  self.plain = false
  if o.as_stderr then io.stderr = self:stderr() end
  return self
end

--- dropped_event(n[, counted]) -> the JSON line a log of JSON lines says after n lines
--- dropped (a dropped_line); counted: the metric that counts them, named in it
function M.dropped_event(n, counted)
  return jsonout.encode { event = "log_dropped", dropped = n, t = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    message = string.format("stderr's reader fell behind: %d log lines were dropped (%d MiB were waiting)%s", n,
      M.MAX_BYTES >> 20, counted and ("; " .. counted .. " counts them") or "") }
end

-- the plain write: one system call a line (fd 2 is unbuffered); one that fails is the
-- reader's end (on_gone). fd 1 through io.stdout, so that orket.cli's check of the output
-- sees the failure (a full disk) and says it.
local function write_fd(self, text)
  if self.gone then return end
  local ok
  if self.fd == 2 then
    ok = (self.real or io.stderr):write(text)
  elseif self.fd == 1 then
    ok = io.stdout:write(text)
    if ok then ok = io.stdout:flush() end
  else
    ok = uv.fs_write(self.fd, text)
  end
  if not ok and self.on_gone then self:_gone() end
end

function Writer:_pump()
  if self.writing or self.head > #self.queue or self.pipe:is_closing() then return end
  local parts, n = {}, 0
  while self.head <= #self.queue and n < M.CHUNK do
    local s = self.queue[self.head]
    self.queue[self.head] = nil
    self.head = self.head + 1
    parts[#parts + 1] = s
    n = n + #s
  end
  if self.head > #self.queue then self.queue, self.head = {}, 1 end
  self.writing = true
  self.pipe:write(parts, function(err)
    self.writing = false
    self.queued = self.queued - n
    if err and not self.closed then return self:_fall_back(parts) end
    -- dropping stops at half the bound, not at the first free byte: a run of drops, said once
    if self.drops > 0 and self.queued <= self.max // 2 then self:_said() end
    self:_pump()
  end)
end

-- what text counts as, dropped: its lines, or one write (raw)
local function units(self, text)
  if self.raw then return 1 end
  local _, lines = text:gsub("\n", "")
  return lines
end

-- The thread gone (its pipe refused the chunk lost): the lines are written in the loop
-- from now on, as before there was a thread, lost's counted as dropped
function Writer:_fall_back(lost)
  for _, text in ipairs(lost) do
    local n = units(self, text)
    self.drops, self.total = self.drops + n, self.total + n
  end
  self:__close()
  self.plain = true
  for i = self.head, #self.queue do write_fd(self, self.queue[i]) end
  self.queue, self.head, self.queued = {}, 1, 0
  if self.dropped_line and self.drops > 0 then write_fd(self, self.dropped_line(self.drops) .. "\n") end
  self.drops = 0
end

-- the line saying how many were dropped, past the bound (it is one line; none when raw)
function Writer:_said()
  local n = self.drops
  self.drops = 0
  if not self.dropped_line then return end
  local text = self.dropped_line(n) .. "\n"
  self.queue[#self.queue + 1] = text
  self.queued = self.queued + #text
end

-- text: whole lines, each ending in "\n"
function Writer:_put(text)
  if self.gone then return end -- (its reader is: on_gone)
  if self.plain then return write_fd(self, text) end
  if self.closed then return end
  if self.drops > 0 or self.queued + #text > self.max then
    local n = units(self, text)
    self.drops, self.total = self.drops + n, self.total + n
    return
  end
  self.queue[#self.queue + 1] = text
  self.queued = self.queued + #text
  self:_pump()
end

--- writer:line(text): one log line (text without its "\n")
function Writer:line(text) self:_put(text .. "\n") end

--- writer:write(...): as a file's write; whole lines go out, a line's start waits for its
--- end (raw: all of it goes out)
function Writer:write(...)
  if self.raw then
    local text = table.concat({ ... })
    if text ~= "" then self:_put(text) end
    return self
  end
  local text = self.partial .. table.concat({ ... })
  local cut = text:match(".*()\n")
  if cut then
    self.partial = text:sub(cut + 1)
    self:_put(text:sub(1, cut))
  else
    self.partial = text
  end
  return self
end

--- writer:dropped() -> the lines dropped since open
function Writer:dropped() return self.total end

--- writer:stderr() -> a stand-in for io.stderr whose writes are this writer's (the other
--- methods are the real file's); install it as io.stderr, close() puts the real one back
function Writer:stderr()
  self.real = self.real or io.stderr
  local real, w = self.real, self
  local proxy = {}
  function proxy.write(_, ...)
    w:write(...)
    return proxy
  end
  function proxy.flush() return proxy end
  return setmetatable(proxy, { __index = function(_, k)
    local f = real[k]
    if type(f) == "function" then return function(_, ...) return f(real, ...) end end
  end })
end

-- as a to-be-closed variable: a command that raised gets the real io.stderr back for its
-- last words, and the loop is not held by the pipes (the thread writes what reached it;
-- the rest is lost: close() is the way that writes it)
function Writer:__close()
  if self.real and io.stderr ~= self.real then io.stderr = self.real end
  self.closed = true
  for _, h in ipairs { self.pipe or false, self.ack or false } do
    if h and not h:is_closing() then h:close() end
  end
end

-- waits (a task) until cond() or self.deadline (uv.now() ms; cut() may bring it nearer) ->
-- cond(); looked at every 5 ms, then less often, up to 50 ms (a wait for a slow reader may be long)
local function wait_until(self, cond)
  local pause = 5
  while not cond() and uv.now() < self.deadline do
    rt.sleep(math.min(pause, math.max(1, self.deadline - uv.now())))
    pause = math.min(pause * 2, 50)
  end
  return cond()
end

--- writer:cut(): a stop was asked (a signal): a close under way, or one to come, waits for
--- the reader M.FLUSH_MS more at most, counted from the later of now and its start
function Writer:cut()
  uv.update_time()
  self.cut_at = self.cut_at or uv.now()
  if self.deadline then self.deadline = math.min(self.deadline, uv.now() + M.FLUSH_MS) end
end

--- writer:close([within_ms]) (in a task) -> all: what is queued written, within within_ms
--- (M.FLUSH_MS; math.huge: as long as the reader takes, until cut()) at most; a reader that
--- does not take it in time loses it (all false), the process ends all the same (a reader
--- gone is no loss here: on_gone said it). io.stderr is the real one again.
function Writer:close(within_ms)
  if self.closed then return self.all_written end
  if self.real then io.stderr = self.real end
  if self.partial ~= "" then self:write("\n") end
  self.closed = true
  self.all_written = true
  if self.plain then return true end
  if self.drops > 0 then self:_said() end
  self:_pump()
  uv.update_time()
  self.deadline = uv.now() + (self.cut_at and M.FLUSH_MS or within_ms or M.FLUSH_MS)
  -- a thread that never said it started (its luv could not load) takes nothing and ends
  -- never: not waited for past M.START_MS from the open
  local function lost() return not self.started and uv.now() - self.opened_at > M.START_MS end
  wait_until(self, function() return lost() or (not self.writing and self.head > #self.queue) end)
  self.pipe:close() -- the thread reads the end, writes the rest, and closes the ack
  wait_until(self, function() return self.ended or lost() end)
  local ended = self.ended
  self.ack:close()
  self.all_written = ended and true or false
  -- a thread still held by its reader is left: the process's exit ends it
  if ended then self.thread:join() end
  return self.all_written
end

--- writer:finish() (in a task) -> all, as close's: closed as close(math.huge)
--- closes, the wait for the reader cut (cut()) by a stop signal (SIGINT, SIGTERM, SIGHUP
--- unless ignored at the start: orket.stopsignals.names) that comes meanwhile. orket run's
--- stdout: its last events wait for a slow reader, as a blocking write waited, but a stop
--- is heard. SIGPIPE is caught meanwhile: a reader gone makes the thread's write fail.
function Writer:finish()
  if self.closed or self.plain then return self:close() end
  local handles = {}
  for _, name in ipairs(stopsignals.names()) do
    local h = uv.new_signal()
    h:start(name, function() self:cut() end)
    handles[#handles + 1] = h
  end
  local pipe = uv.new_signal()
  pipe:start("sigpipe", function() end)
  handles[#handles + 1] = pipe
  local ok = self:close(math.huge)
  for _, h in ipairs(handles) do h:close() end
  return ok
end

return M
