-- orket.mcp.linestream: newline-delimited messages over a luv stream (MCP's stdio transport), for
-- both ends: a reader that splits a byte stream into lines with a cap on each line and on
-- how many wait unread (reading pauses until they are taken), read from inside a task.
local uv = require "luv"
local task = require "orket.task"

local M = {}

M.MAX_PENDING = 256 -- lines read but not yet taken; more and reading pauses

-- A regular file as a stream (stdin redirected from a file cannot be a libuv pipe): the
-- read_start/read_stop/close/is_closing that Reader uses, over asynchronous fs_read.
local FileStream = {}
FileStream.__index = FileStream

--- file_stream(fd) -> a stream reading fd (a regular file) from its current offset
function M.file_stream(fd)
  return setmetatable({ fd = fd }, FileStream)
end

function FileStream:_more()
  if self.reading or not self.cb or self.done then return end
  self.reading = true
  uv.fs_read(self.fd, 65536, -1, function(err, data)
    self.reading = false
    if self.done then return end
    local cb = self.cb
    if err then self.done = true
    elseif data == "" then self.done = true data = nil end
    if cb then cb(err, data) end
    self:_more()
  end)
end

function FileStream:read_start(cb) self.cb = cb self:_more() end
function FileStream:read_stop() self.cb = nil end
function FileStream:is_closing() return self.done == "closed" end
function FileStream:close() self.done, self.cb = "closed", nil end

local Reader = {}
Reader.__index = Reader

--- reader(stream, max_line) -> reader: starts reading stream. reader:next() (inside a task)
--- -> line | nil, "eof" | nil, "too_long" (that line was dropped; the next one follows) |
--- nil, message (a read error). reader:close() stops it (idempotent; closes the stream).
function M.reader(stream, max_line)
  local self = setmetatable({ stream = stream, max = max_line, parts = {}, size = 0, queue = {}, head = 1,
    skipping = false, paused = false }, Reader)
  self:_start()
  return self
end

function Reader:_push(item)
  self.queue[#self.queue + 1] = item
  if self.waiter then
    local co = self.waiter
    self.waiter = nil
    task.resume(co)
  end
  if #self.queue - self.head + 1 >= M.MAX_PENDING and not self.paused and not self.ended then
    self.paused = true
    self.stream:read_stop()
  end
end

function Reader:_data(chunk)
  local pos = 1
  while true do
    local nl = chunk:find("\n", pos, true)
    local piece = chunk:sub(pos, nl and nl - 1 or -1)
    if not self.skipping then
      if self.size + #piece > self.max then
        self.parts, self.size, self.skipping = {}, 0, true
        self:_push { err = "too_long" }
      else
        self.parts[#self.parts + 1] = piece
        self.size = self.size + #piece
      end
    end
    if not nl then break end
    if self.skipping then
      self.skipping = false
    else
      local line = table.concat(self.parts):gsub("\r$", "")
      self.parts, self.size = {}, 0
      if line:find("%S") then self:_push { line = line } end
    end
    pos = nl + 1
  end
end

function Reader:_start()
  self.stream:read_start(function(err, chunk)
    if err then
      self.ended = true
      self:_push { err = tostring(err) }
    elseif chunk then
      self:_data(chunk)
    else
      self.ended = true
      -- a last message the stream ends without its newline is still one (`printf '{...}'`,
      -- a peer that exits after its last write): read as a line, not dropped unsaid
      self:_data("\n")
      self:_push { err = "eof" }
    end
  end)
end

function Reader:next()
  while self.head > #self.queue do
    if self.closed then return nil, "eof" end
    self.waiter = coroutine.running()
    coroutine.yield()
  end
  local item = self.queue[self.head]
  self.queue[self.head] = nil
  self.head = self.head + 1
  if self.head > #self.queue then self.queue, self.head = {}, 1 end
  if self.paused and #self.queue - self.head + 1 < M.MAX_PENDING // 2 then
    self.paused = false
    self:_start()
  end
  if item.line then return item.line end
  if item.err == "eof" then self:_push { err = "eof" } end -- stays at the end for further calls
  return nil, item.err
end

function Reader:close()
  if self.closed then return end
  self.closed = true
  if not self.stream:is_closing() then self.stream:close() end
  if self.waiter then
    local co = self.waiter
    self.waiter = nil
    task.resume(co)
  end
end

return M
