-- orket.store.pglisten: a LISTEN connection of its own (never a pooled one: LISTEN belongs
-- to a session) that survives losing the server. Notifications are only a wake-up: one
-- sent while the listener was disconnected is lost, so after a reconnect wait() says so
-- and the caller re-reads from its cursor (the journal's event ids, pgevents.after).
local cpg = require "orket.c.pg"
local rt = require "orket.c.runtime"

local M = {}

local Listener = {}
Listener.__index = Listener

--- new{url=, channels={...}, connect_timeout_ms = 10000, retry_ms = 1000,
---   wake_on_connect = false} -> listener
--- Channel names are identifiers ([A-Za-z_][A-Za-z0-9_]*): LISTEN takes no parameter, so
--- nothing else is ever put into its SQL. Connects on the first wait(). wake_on_connect:
--- wait() returns at once (no notes, info.reconnected) after each (re)connect, so a caller
--- that re-reads its cursor then does so before it waits, not at the next notification.
function M.new(o)
  if type(o) ~= "table" or type(o.url) ~= "string" then
    error("bad argument #1 to 'new' (a table with url = \"postgresql://...\" expected)", 2)
  end
  if type(o.channels) ~= "table" or #o.channels == 0 then
    error("bad argument #1 to 'new' (channels must list at least one channel)", 2)
  end
  for i, ch in ipairs(o.channels) do
    if type(ch) ~= "string" or not ch:match("^[%a_][%w_]*$") or #ch > 63 then
      error(string.format("bad argument #1 to 'new' (channels[%d] must be an identifier of at most 63 characters)", i), 2)
    end
  end
  return setmetatable({ url = o.url, channels = { table.unpack(o.channels) },
    connect_timeout_ms = o.connect_timeout_ms or 10000, retry_ms = o.retry_ms or 1000,
    wake_on_connect = o.wake_on_connect and true or false, conn = nil, fresh = false, closed = false }, Listener)
end

-- Connects and LISTENs; true | nil, message.
function Listener:connect()
  local c, err = cpg.connect(self.url, { connect_timeout_ms = self.connect_timeout_ms })
  if not c then return nil, err end
  for _, ch in ipairs(self.channels) do
    local ok, lerr = c:exec("LISTEN " .. ch)
    if not ok then
      c:close()
      return nil, lerr
    end
  end
  if self.closed then -- closed while it connected: keep no connection
    c:close()
    return nil, "pg listener: closed"
  end
  self.conn, self.fresh = c, true
  return true
end

--- listener:wait([timeout_ms]) -> notes, info | nil, message, "ENOTCONN" (closed)
--- notes: {{channel=, payload=, pid=}, ...}, empty when timeout_ms (0: none) passed first.
--- info.reconnected: the connection was (re)made since the last call, so notifications may
--- have been missed: re-read from the cursor. info.error: why the last connect failed
--- (the listener tries again every retry_ms until the timeout).
function Listener:wait(timeout_ms)
  local deadline = timeout_ms and timeout_ms > 0 and rt.now() + timeout_ms or nil
  local last_error
  while not self.closed do
    local left = deadline and math.max(0, math.ceil(deadline - rt.now())) or nil
    if self.conn == nil or self.conn:state() == "broken" then
      if self.conn then self.conn:close() end
      self.conn = nil
      local ok, err = self:connect()
      if not ok then
        if self.closed then break end
        last_error = err
        if left and left <= 0 then return {}, { error = last_error } end
        -- the runtime's own sleep: `orket serve` has no global `orket`, and the listener's
        -- task died there at its first failed reconnect
        rt.sleep(left and math.min(left, self.retry_ms) or self.retry_ms)
        goto continue
      end
      if self.wake_on_connect then
        self.fresh = false
        return {}, { reconnected = true }
      end
      left = deadline and math.max(0, math.ceil(deadline - rt.now())) or nil
    end
    do
      local notes = self.conn:notifications(left == nil and 0 or math.max(1, left))
      if notes then
        local info = { reconnected = self.fresh or nil }
        self.fresh = false
        return notes, info
      end
      -- lost while waiting: reconnect in the next round
    end
    ::continue::
  end
  return nil, "pg listener: closed", "ENOTCONN"
end

--- listener:close(): idempotent
function Listener:close()
  self.closed = true
  if self.conn then self.conn:close() end
  self.conn = nil
end

return M
