-- orket.store.pgpool: a small pool of PostgreSQL connections (orket.c.pg) shared by the
-- tasks of one process. A statement runs on any free connection; a transaction pins one
-- connection from BEGIN to COMMIT, and only its own statements wait inside it. Connections
-- are made on demand up to `size`; a task that finds none free waits for one (a counting
-- semaphore, orket.semaphore). A connection that is not idle when handed back (lost,
-- or still draining a query its cancelled task abandoned) or that was inside a transaction
-- when its task died is closed, never reused: the server rolls its transaction back.
local cpg = require "orket.c.pg"
local rt = require "orket.c.runtime"
local semaphore = require("orket.semaphore").new
local task = require "orket.task"

local M = {}

-- liveness_ms: a statement without an answer for that long has its server checked with a
-- connection of its own to the same host (orket.c.pg; pg.h, pg_opts): one not had within
-- the host's connect deadline (the URL's connect_timeout, else 5 s) fails the statement
-- ETIMEDOUT with SQLSTATE 08006, the store's loss (a worker says store_lost, its runs
-- stop, and it carries on once a server answers: after a promotion, the new primary). A
-- server that answers the check, even with a refusal of its own, leaves the statement to
-- go on, so no statement fails for being slow (a migration, a backup's export, a lock
-- waited for): that is why this is a check rather than a deadline on each statement. A
-- server that stopped answering (frozen, behind a dropped network) held a statement sent
-- to it for as long as it stayed so: a worker's turns kept their cards and leases fresh
-- for minutes after a failover, and a /ready hung 100 s. query_timeout_ms stays 0: a
-- statement's own deadline would fail the slow ones too.
M.DEFAULTS = { size = 4, connect_timeout_ms = 10000, query_timeout_ms = 0, acquire_timeout_ms = 30000,
  liveness_ms = 5000 }

local Pool = {}
Pool.__index = Pool

--- new{url=, size=, connect_timeout_ms=, query_timeout_ms=, acquire_timeout_ms=, liveness_ms=} -> pool
--- Connects nothing yet. url: a postgresql:// URL or libpq key=value words.
function M.new(o)
  if type(o) ~= "table" or type(o.url) ~= "string" then
    error("bad argument #1 to 'new' (a table with url = \"postgresql://...\" expected)", 2)
  end
  local self = setmetatable({ url = o.url, idle = {}, busy = 0, closed = false,
    in_tx = setmetatable({}, { __mode = "k" }), out = {} }, Pool)
  for k, v in pairs(M.DEFAULTS) do
    local given = o[k]
    if given ~= nil and (math.type(given) ~= "integer" or given < 0) then
      error("bad argument #1 to 'new' (" .. k .. " must be an integer >= 0)", 2)
    end
    self[k] = given or v
  end
  if self.size < 1 then error("bad argument #1 to 'new' (size must be at least 1)", 2) end
  self.slots = semaphore(self.size)
  return self
end

-- A checked-out connection; closing the lease hands it back (or closes it when it is not
-- clean), so a task cancelled while it holds one leaks nothing: coroutine.close runs the
-- to-be-closed variables of the task it ends.
local Lease = {}
Lease.__index = Lease
Lease.__close = function(l) l.pool:release(l) end

-- The SQLSTATE given with a connection not had in time (a connect that timed out, no slot
-- free within acquire_timeout_ms): 08001, "unable to establish a connection". libpq names
-- no SQLSTATE for its own failures; this one tells them from a query's own timeout (the
-- same ETIMEDOUT on a live connection), so the store counts them as its loss (class 08).
M.UNREACHED = "08001"

-- Whether the server answers a connection of its own, made past the pool's size (and
-- closed at once) when none of the pool's was free in time: its statements may be slow or
-- waiting for a lock, which is no loss of the server; a server that stops answering (frozen,
-- a dropped network) holds every connection's statement and answers no new one. A refusal
-- the server itself sent (libpq's "FATAL:", as at its connection limit) is an answer. One
-- probe at a time: the others waiting meanwhile take the server for answering (they wait
-- once more, and the probe's task says the loss when there is one).
local PROBE = { __close = function(p)
  if p.c then p.c:close() end
  p.pool.probing = nil
end }
function Pool:answers()
  if self.probing then return true end
  self.probing = true
  local p <close> = setmetatable({ pool = self }, PROBE) -- (closed too when the task is cancelled)
  local err
  p.c, err = cpg.connect(self.url, { connect_timeout_ms = self.connect_timeout_ms, query_timeout_ms =
    self.connect_timeout_ms })
  if not p.c then return tostring(err):find("FATAL:", 1, true) ~= nil end
  return p.c:query("SELECT 1") ~= nil
end

--- pool:acquire() -> lease {conn} | nil, message, code, sqlstate: waits for a free slot (at
--- most acquire_timeout_ms; then, while the server answers a connection of its own
--- (answers), once more as long), then takes an idle connection or makes one. ETIMEDOUT
--- with SQLSTATE M.UNREACHED when the server answers no new connection (its statements
--- held by a server that stopped answering) or a connect timed out; without, when every
--- connection stayed busy with a server that answers (slow statements, a lock waited for).
--- Hand it back with pool:release(lease), or hold it in a to-be-closed variable.
function Pool:acquire()
  if self.closed then return nil, "pg pool: closed", "ENOTCONN" end
  if self.expired then return nil, self.expired, "ETIMEDOUT" end
  local wait = self.acquire_timeout_ms
  local deadline = wait > 0 and rt.now() + wait or nil
  local stop = self.stop_each
  if stop and (not deadline or deadline > rt.now() + stop) then deadline = rt.now() + stop end
  if not self.slots:acquire(deadline) then
    -- (at a stop, no probe: it would wait for its own connect)
    if stop then
      return nil, self.expired or string.format("pg pool: no connection free within the stop's %d ms", stop), "ETIMEDOUT"
    end
    local msg = string.format("pg pool: no connection free within %d ms (size %d)", wait, self.size)
    if not self:answers() then return nil, msg .. " and the server answers no new one", "ETIMEDOUT", M.UNREACHED end
    -- (a server back from a pause frees the connections its statements held: waited for)
    if self.closed or not self.slots:acquire(rt.now() + wait) then
      return nil, string.format("pg pool: no connection free within %d ms (size %d), the server answering: every "
        .. "connection was busy", 2 * wait, self.size), "ETIMEDOUT"
    end
  end
  self.busy = self.busy + 1
  local lease = setmetatable({ pool = self }, Lease)
  self.out[lease] = true
  if stop then self:watch() end
  while #self.idle > 0 do
    local c = table.remove(self.idle)
    if c:check() == "idle" then -- reads a termination the loop has not seen yet
      lease.conn = c
      return lease
    end
    c:close()
  end
  -- each host its own deadline (orket.c.pg); at a stop, the whole connect bounded by it too
  local cto = self.connect_timeout_ms
  if stop then cto = math.max(1, math.min(cto > 0 and cto or math.huge, stop)) end
  local c, err, code = cpg.connect(self.url, { connect_timeout_ms = math.tointeger(cto),
    total_timeout_ms = stop, query_timeout_ms = self.query_timeout_ms, liveness_ms = self.liveness_ms })
  if c and self.expired then c:give_up(self.expired) end -- (its statements answered as the others')
  if not c then
    self:release(lease)
    return nil, err, code, code == "ETIMEDOUT" and M.UNREACHED or nil
  end
  lease.conn = c
  return lease
end

--- pool:release(lease): idempotent. The connection goes back to the idle list when it is
--- idle and outside a transaction; otherwise it is closed.
function Pool:release(lease)
  if lease.released then return end
  lease.released = true
  self.out[lease] = nil
  local c = lease.conn
  lease.conn = nil
  if c then
    if not self.closed and not lease.in_tx and c:state() == "idle" then
      self.idle[#self.idle + 1] = c
    else
      c:close()
    end
  end
  self.busy = self.busy - 1
  self.slots:release()
end

--- pool:query(sql, ...) -> rows, affected, command | nil, message, code, sqlstate
--- One statement on a free connection. When the connection taken turns out to be dead
--- before anything was sent (ENOTCONN: the server restarted, the backend was terminated),
--- it is dropped and the statement goes to a new one, once.
function Pool:query(sql, ...)
  for attempt = 1, 2 do
    local lease <close>, err, code, state = self:acquire()
    if not lease then return nil, err, code, state end
    local r = table.pack(lease.conn:query(sql, ...))
    if r[1] ~= nil or r[3] ~= "ENOTCONN" or attempt == 2 then return table.unpack(r, 1, r.n) end
  end
end

--- pool:rows(sql, ...) -> rows | nil, message, code, sqlstate
function Pool:rows(sql, ...)
  local rows, err, code, state = self:query(sql, ...)
  if rows == nil then return nil, err, code, state end
  return rows
end

--- pool:row(sql, ...) -> the first row | nil (no row) | nil, message, code, sqlstate
function Pool:row(sql, ...)
  local rows, err, code, state = self:query(sql, ...)
  if rows == nil then return nil, err, code, state end
  return rows[1]
end

--- pool:run(sql, ...) -> affected rows | nil, message, code, sqlstate
function Pool:run(sql, ...)
  local rows, n, code, state = self:query(sql, ...)
  if rows == nil then return nil, n, code, state end
  return n
end

-- ---- transactions ------------------------------------------------------------------------

local Tx = {}
Tx.__index = Tx

local function tx_conn(tx)
  if tx.over then error("pg pool: the transaction is over (use tx only inside its function)", 3) end
  return tx.lease.conn
end

function Tx:query(sql, ...) return tx_conn(self):query(sql, ...) end
function Tx:rows(sql, ...)
  local rows, err, code, state = tx_conn(self):query(sql, ...)
  if rows == nil then return nil, err, code, state end
  return rows
end
function Tx:row(sql, ...)
  local rows, err, code, state = tx_conn(self):query(sql, ...)
  if rows == nil then return nil, err, code, state end
  return rows[1]
end
function Tx:run(sql, ...)
  local rows, n, code, state = tx_conn(self):query(sql, ...)
  if rows == nil then return nil, n, code, state end
  return n
end
--- tx:exec(script) -> true | nil, message, code, sqlstate: statements without parameters
function Tx:exec(script) return tx_conn(self):exec(script) end
--- tx:pid() -> the server process of the pinned connection (tests, diagnostics)
function Tx:pid() return tx_conn(self):pid() end

local function describe(e)
  if type(e) == "string" then return e end
  return "(a " .. type(e) .. " was raised, not a message)"
end

--- pool:tx(fn, ...) -> fn's results | nil, message, code
--- Runs fn(tx, ...) between BEGIN and COMMIT on one connection pinned for it; tx:query,
--- rows, row and run use that connection. Rolls back when fn raises (code ETX, the message
--- is the error) or returns nil, message[, code] (returned as they are), and when COMMIT
--- finds the transaction failed (a statement in it failed and fn went on: ETX). fn may
--- wait on its own statements; other waits (a model call) hold the connection and its
--- locks meanwhile, so do them outside.
function Pool:tx(fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'tx' (function expected, got " .. type(fn) .. ")", 2) end
  -- a second transaction from the same task would wait for a connection its first one
  -- may hold (a pool of one: forever), and would not be part of it anyway
  local co = coroutine.running()
  if self.in_tx[co] then
    error("pg pool: this task already has a transaction open; run the statements on its tx", 2)
  end
  self.in_tx[co] = true
  local mark <close> = setmetatable({}, { __close = function() self.in_tx[co] = nil end })
  local lease <close>, err, code, state = self:acquire()
  if not lease then return nil, err, code, state end
  -- until COMMIT or ROLLBACK has answered, the connection is not clean: if this task is
  -- cancelled, release() closes it and the server rolls the transaction back
  lease.in_tx = true
  local c = lease.conn
  local ok, berr, bcode, bstate = c:query("BEGIN")
  if not ok then return nil, berr, bcode, bstate end
  local tx = setmetatable({ lease = lease }, Tx)
  local r = table.pack(pcall(fn, tx, ...))
  tx.over = true
  local function rollback()
    if c:query("ROLLBACK") then lease.in_tx = false end
  end
  if not r[1] then
    rollback()
    return nil, describe(r[2]), "ETX"
  end
  if r[2] == nil and r.n >= 3 and r[3] ~= nil then
    rollback()
    return nil, r[3], r[4], r[5]
  end
  local done, cerr, ctag, cstate = c:query("COMMIT")
  if not done then return nil, cerr, ctag, cstate end
  lease.in_tx = false
  if ctag == "ROLLBACK" then -- PostgreSQL's answer to COMMIT in a failed transaction
    return nil, "pg pool: the transaction was rolled back: a statement in it failed", "ETX"
  end
  return table.unpack(r, 2, r.n)
end

--- pool:stats() -> {size=, idle=, busy=}
function Pool:stats() return { size = self.size, idle = #self.idle, busy = self.busy } end

--- pool:stop_within(ms): a process's stop (SIGTERM) bounds its statements: one that waits
--- longer than ms for its answer takes the server for gone, and it and every other one in
--- flight get nil, message, "ETIMEDOUT" (their connections given up, closed when handed
--- back), later ones the same at once. A server that answers is never given up, however
--- long the stop's own work takes. One that stopped answering with the connections open
--- (frozen, a dropped network) held the stop's statements (the audit's checkpoint, a
--- lease's release) for as long as it stayed so, and the process was killed at the end of
--- its grace period. Nothing is asked of it then: one that does not answer would not take
--- a cancel either. A wait for a free connection and a connect are bounded by ms too. A
--- later, longer bound changes nothing.
function Pool:stop_within(ms)
  ms = math.max(1, math.tointeger(ms) or math.ceil(ms))
  if self.closed or (self.stop_each and self.stop_each <= ms) then return end
  self.stop_each = ms
  self:watch()
end

-- The stop's watch: while connections are out, every quarter of the bound (20-250 ms), it
-- looks at each: one found waiting for an answer (busy) at every look for longer than the
-- bound gives the server up. (A look sees the connection, not which statement: a run of
-- statements each slower than a look, for the whole bound, counts as one, which a stop's
-- bound is meant to cut as well.) It ends when none is out (no timer keeps the process),
-- and the next acquire starts it again.
function Pool:watch()
  if self.stopper or self.closed or self.expired or not next(self.out) then return end
  self.stopper = task.spawn(function()
    while not self.closed and not self.expired and next(self.out) do
      rt.sleep(math.max(20, math.min(250, self.stop_each // 4)))
      local now = rt.now()
      for lease in pairs(self.out) do
        local c = lease.conn
        if c and c:state() == "busy" then
          lease.busy_since = lease.busy_since or now
          if now - lease.busy_since >= self.stop_each then
            self:give_up()
            break
          end
        else
          lease.busy_since = nil
        end
      end
    end
    self.stopper = nil
  end)
end

-- Every connection given up: the server did not answer a statement within the stop's bound
function Pool:give_up()
  self.expired = string.format("pg pool: a statement had no answer within the stop's %d ms: the server is taken "
    .. "for gone (given up; nothing more is asked of it before the exit)", self.stop_each)
  for lease in pairs(self.out) do
    if lease.conn then lease.conn:give_up(self.expired) end
  end
  for _, c in ipairs(self.idle) do c:close() end
  self.idle = {}
  self.slots:wake_all()
end

--- pool:close(): closes the idle connections; those in use close when handed back.
function Pool:close()
  if self.stopper then
    self.stopper:cancel()
    self.stopper = nil
  end
  self.closed = true
  for _, c in ipairs(self.idle) do c:close() end
  self.idle = {}
end

return M
