-- orket.store.pgdb: the store on PostgreSQL, with the API of the SQLite store
-- (orket.store's DB: tx, read, run, rows, row, exec, event, events, record_*, violations,
-- close) and the same return shapes, so the board, the engine and the named operations'
-- PostgreSQL twins (orket.store.pg.*) run on either. db.backend is "pg".
--
-- Statements go through a pool (orket.store.pgpool). A transaction pins one connection for
-- the task (the coroutine) that opened it: every statement that task issues while it is
-- open goes on that connection, so the callers that pass `db` around inside db:tx (the
-- engine's step commit) need not know. Nested db:tx are savepoints. Unlike SQLite's, the
-- transaction's function waits on its own statements (docs/store.md, "The transaction
-- contract on a database a round trip away"). Called outside any task (a command's main
-- chunk), a statement or a transaction runs in a task of its own that the caller joins.
local pgpool = require "orket.store.pgpool"
local pg_schema = require "orket.store.pg_schema"
local pgevents = require "orket.store.pgevents"
local records = require "orket.store.records"
local json = require "cjson.safe"
local task = require "orket.task"
local pg = require "orket.c.pg"
local dialect = require "orket.store.dialect"

local numbered = dialect.numbered

local M = {}

-- SQL for a stored time: the transaction's time, as SQLite's orket_now()
M.NOW = dialect.pg.now
-- iso(col[, as]) -> SQL giving a timestamptz column as the SQLite store's text
-- (ISO 8601 UTC with milliseconds, 2024-05-01T12:00:00.123Z)
M.iso = dialect.pg.time

local DB = {}
DB.__index = DB
M.DB = DB

-- Runs f(...) in a task and waits for it: the statements of a caller outside any task (the
-- main chunk of a command) need one to wait in. A failure is raised again here.
local function in_task(f, ...)
  local t = task.spawn(f, ...)
  local r = table.pack(t:join())
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

local function outside_task()
  return not coroutine.isyieldable()
end

-- db.conn for modules that ask the connection directly (the board: now(), cards_stamp).
-- Another process's commit cannot be seen without a round trip, so the card stamp lasts
-- one transaction: inside a write transaction no other writer can change cards (the
-- journal's lock is held from BEGIN) and a read transaction sees one snapshot, so the
-- board may keep the cards it read until the transaction ends, this task writes to cards
-- (any statement other than a SELECT that names the table) or a savepoint rolls back.
-- Outside a transaction nothing is cached.
local Conn = {}
Conn.__index = Conn
--- conn:now() -> the transaction's time as stored (outside one: the clock's); PostgreSQL's
--- now() is the transaction's start, so it is read once per transaction
function Conn:now()
  local t = self.db.open[coroutine.running()]
  if t and t.now then return t.now end
  local r = assert(self.db:row("SELECT " .. M.iso("now()", "now")))
  if t then t.now = r.now end
  return r.now
end
--- conn:cards_stamp() -> generation, version | nil: the task's open transaction and its
--- count of writes to cards (board's cache: what it read holds while both stay the same)
function Conn:cards_stamp()
  local t = self.db.open[coroutine.running()]
  if not t then return nil end
  return t, t.cards
end
--- conn:run(sql, ...) -> as db:run (the records write through the connection on both stores)
function Conn:run(sql, ...) return self.db:run(sql, ...) end
--- conn:rollbacks() -> how many transactions or savepoints that wrote were rolled back on
--- this store (SQLite's conn:rollbacks(); any task's here: what one read may be undone)
function Conn:rollbacks() return self.db.undone end
function Conn:depth()
  local t = self.db.open[coroutine.running()]
  return t and t.depth + 1 or 0
end

--- open(url, opts) -> db | nil, msg, CODE. Migrates the database (pg_schema) first.
--- opts: size (connections, default 4), query_timeout_ms, connect_timeout_ms,
--- acquire_timeout_ms, liveness_ms (as pgpool's: a statement unanswered that long has its
--- server checked, and fails as the store's loss when the server answers nothing).
function M.open(url, opts)
  opts = opts or {}
  if outside_task() then return in_task(M.open, url, opts) end
  local pool = pgpool.new { url = url, size = opts.size, query_timeout_ms = opts.query_timeout_ms,
    connect_timeout_ms = opts.connect_timeout_ms, acquire_timeout_ms = opts.acquire_timeout_ms,
    liveness_ms = opts.liveness_ms }
  local v, err, code = pg_schema.migrate(pool)
  if not v then
    pool:close()
    return nil, "store: " .. pg.scrub(url) .. ": " .. tostring(err):gsub("^store: ", ""), code
  end
  -- (err: migrate's warning, that any role may connect: `orket serve` logs it)
  local self = setmetatable({ pool = pool, url = url, backend = "pg", dialect = dialect.pg, path = pg.scrub(url),
    open = setmetatable({}, { __mode = "k" }), public_warning = err, undone = 0 }, DB)
  self.conn = setmetatable({ db = self }, Conn)
  return self
end

-- ---- statements ---------------------------------------------------------------------

-- Whether a statement may change what board:get reads (a card, or its dependencies): the
-- board's cache of the transaction (Conn:cards_stamp) is dropped after one. Read by its
-- verbs, not by the table's name alone: a lease claim joins cards but changes none.
local CARD_WRITES = { "update%s+cards%f[^%w_]", "into%s+cards%f[^%w_]", "delete%s+from%s+cards%f[^%w_]",
  "update%s+dependencies", "into%s+dependencies", "delete%s+from%s+dependencies", "truncate" }
local function writes_cards(sql)
  if not (sql:find("cards", 1, true) or sql:find("dependencies", 1, true)) then return false end
  local s = sql:lower()
  for _, p in ipairs(CARD_WRITES) do
    if s:find(p) then return true end
  end
  return false
end

--- db:query(sql, ...) -> rows, affected, command | nil, msg, CODE, sqlstate: on the task's
--- open transaction when it has one, else on any free connection. Placeholders: $1, $2,
--- ... or SQLite's ? and ?N (orket.store.dialect.numbered), so one operation serves both.
function DB:query(sql, ...)
  sql = numbered(sql)
  local t = self.open[coroutine.running()]
  if t then return t:statement("query", sql, ...) end
  if outside_task() then return in_task(self.query, self, sql, ...) end
  return self:_note(self.pool:query(sql, ...))
end

--- db:rows(sql, ...) -> rows | nil, msg, CODE   ($1, $2, ... or ? placeholders)
function DB:rows(sql, ...)
  local rows, err, code, state = self:query(sql, ...)
  if rows == nil then return nil, err, code, state end
  return rows
end

--- db:row(sql, ...) -> the first row | nil (no row) | nil, msg, CODE
function DB:row(sql, ...)
  local rows, err, code, state = self:query(sql, ...)
  if rows == nil then return nil, err, code, state end
  return rows[1]
end

--- db:run(sql, ...) -> changes, id | nil, msg, CODE. id: the first row's `id` column of a
--- statement with RETURNING id (PostgreSQL has no last insert id).
function DB:run(sql, ...)
  local rows, n, code, state = self:query(sql, ...)
  if rows == nil then return nil, n, code, state end
  local first = rows[1]
  return n, first and first.id
end

--- db:exec(script) -> true | nil, msg, CODE (statements without parameters)
function DB:exec(script)
  local t = self.open[coroutine.running()]
  if t then return t:statement("exec", script) end
  if outside_task() then return in_task(self.exec, self, script) end
  local lease <close>, err, code, state = self.pool:acquire()
  if not lease then return self:_note(nil, err, code, state) end
  return self:_note(lease.conn:exec(script))
end

--- db:version() -> the PostgreSQL schema version (pg_schema's numbering)
function DB:version()
  if outside_task() then return in_task(self.version, self) end
  local v, err, code = pg_schema.version(self.pool)
  if v then return v end
  return nil, err, code
end

-- ---- the store's own failures ---------------------------------------------------------

-- What says the server itself is gone or cannot take writes, not a statement's own error:
-- a connection refused, lost or unusable, or not had in time (a server that stops
-- answering, frozen or behind a dropped network: pgpool gives its connect timeout and its
-- acquire timeout SQLSTATE 08001, and a statement already sent to it fails once a check of
-- the server has no answer either, pgpool's liveness_ms, with 08006; a query's own
-- query_timeout_ms on a live connection is that statement's failure, not the server's,
-- and no SQLSTATE comes with it); SQLSTATE classes 08 (connection exception), 53
-- (insufficient resources: disk full, out of memory), 58 (system error: I/O) and 57P
-- (the server shutting down, or not yet accepting connections), and 25P03 (the server ended
-- the session of a transaction left idle past db:idle_tx_limit: the connection is gone).
local LOST = { ECONNECT = true, ECONNRESET = true, ENOTCONN = true }
local function store_failure(code, state)
  if LOST[code] then return true end
  if type(state) ~= "string" then return false end
  if state == "25P03" then return true end
  local class = state:sub(1, 2)
  return class == "08" or class == "53" or class == "58" or state:sub(1, 3) == "57P"
end

-- notes a failure of the store (the first since clear_journal_error) and passes the
-- answer on as it was
function DB:_note(a, err, code, state)
  if a == nil and code == "EBUSY" then
    -- the server's words name no holder and no remedy; a person meets them at a command's end
    err = string.format("%s: another connection held the store's lock past the lock timeout (%d s); a long "
      .. "transaction, or a stopped process holding one (pg_stat_activity names it); retry once it ends",
      tostring(err):gsub("%s+$", ""), M.LOCK_TIMEOUT_MS // 1000)
  end
  if a == nil and store_failure(code, state) then
    local msg = string.format("PostgreSQL: %s", tostring(err):gsub("%s+$", ""))
    self.failure = self.failure or msg
    -- counted for journal_mark: a run carried on beside others sees only its own
    self.failures, self.last_failure = (self.failures or 0) + 1, msg
  end
  return a, err, code, state
end

--- db:journal_error([since]) -> message | nil: the first failure of the server itself
--- (gone, refusing connections, out of disk, an I/O error) since clear_journal_error(), or
--- with since (a journal_mark()) the last one after that mark; SQLite's store answers the
--- same for its file. A run that meets one ends (Run:journal_broken). A lock wait is never
--- noted here (store_failure), so SQLite's owned (the threads a lock counts for) is not
--- needed and a second argument is ignored.
function DB:journal_error(since)
  if since then return (self.failures or 0) > since and self.last_failure or nil end
  return self.failure
end
--- db:journal_mark() -> n: a mark of the failures so far, for journal_error(since): a run's
--- own count of them, without clearing the flag other runs of this handle may need
function DB:journal_mark() return self.failures or 0 end
function DB:clear_journal_error() self.failure = nil end

-- ---- transactions -------------------------------------------------------------------

local function describe(e)
  if type(e) == "string" then return e end
  return "(a " .. type(e) .. " was raised, not a message)"
end

-- fn's packed pcall results -> true when they commit: fn did not raise and did not return
-- nil, msg
local function succeeded(r)
  return r[1] and not (r[2] == nil and r.n >= 3 and r[3] ~= nil)
end

local function outcome(r)
  if not r[1] then return nil, describe(r[2]), "ETX" end
  return table.unpack(r, 2, r.n)
end

-- A write transaction takes the journal's lock at BEGIN (one round trip with it), as
-- SQLite's BEGIN IMMEDIATE takes the write lock: one writer at a time on the database.
-- That keeps event ids a safe cursor (pgevents), and no writer can hold the journal lock
-- while it waits for a row another writer holds (taken at the first event instead, it
-- deadlocked two turns: each held what the other wanted). The wait for it is bounded as
-- SQLite's busy_timeout bounds its own. READ COMMITTED is named, not left to a role's or
-- the database's default_transaction_isolation: every statement after the lock must see
-- what the previous holder committed (the journal's id cursor; a run's start asking
-- whether an overlapping run is live, docs/store.md "Several servers"), where REPEATABLE
-- READ or SERIALIZABLE would read the snapshot taken before the wait.
M.LOCK_TIMEOUT_MS = 30000
-- idle_ms (db:idle_tx_limit): the server ends the session of a write transaction whose
-- client sends nothing inside it for that long, as a stalled process's
local function begin_write(idle_ms)
  return string.format("BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = %d; %s"
    .. "SELECT pg_advisory_xact_lock(%d)", M.LOCK_TIMEOUT_MS,
    idle_ms and string.format("SET LOCAL idle_in_transaction_session_timeout = %d; ", idle_ms) or "", pgevents.LOCK)
end
local BEGIN_WRITE = begin_write(nil)
local BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ"

-- Savepoints cost round trips, and most nested transactions (a board move, a record) end
-- well, so a savepoint is sent only before the first statement inside it (one that runs
-- none has nothing to undo) and never released (COMMIT releases them all; a later one of
-- the same name hides it, and ROLLBACK TO finds the latest). What RELEASE used to tell,
-- that a statement inside failed and fn went on, the transaction keeps: t.aborted, the
-- failed statement's message, until a ROLLBACK TO clears it.
local Tx = {}
Tx.__index = Tx

-- A write transaction's events are kept (t.ev, in order; the first t.evf of them written)
-- and written together, in one statement, before the transaction reads the journal (any
-- statement naming events) and at COMMIT: a turn's six or so events cost one round trip,
-- not six. The journal's lock is held from BEGIN, so the ids they take are the same as one
-- by one. A ROLLBACK TO undoes what was written after its savepoint: the events kept
-- before the savepoint began are kept again (t.evsp), those kept after it are dropped.
local INSERT_EVENTS = [[INSERT INTO events (at, kind, card_id, run_id, actor, data)
  SELECT now(), x->>'k', x->>'c', (x->>'r')::int8, x->>'a', x->'d'
  FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS u(x, n) ORDER BY n]]

--- t:flush(upto) -> true | nil, msg, CODE, sqlstate: writes the kept events up to the upto-th
function Tx:flush(upto)
  local ev, from = self.ev, self.evf + 1
  if not ev or upto < from then return true end
  local parts = {}
  for i = from, upto do parts[#parts + 1] = ev[i] end
  local ok, err, code, state = self.db:_note(self.conn:query(INSERT_EVENTS, "[" .. table.concat(parts, ",") .. "]"))
  if not ok then
    self.aborted = err
    return nil, err, code, state
  end
  self.evf = upto
  return true
end

--- t:send_savepoints() -> true | nil, msg, CODE, sqlstate: sends the savepoints opened but
--- not sent yet, outermost first
function Tx:send_savepoints()
  for d = self.sp_unsent, self.depth do
    if self.ev then self.evsp[d] = self.evf end
    local ok, err, code, state = self.db:_note(self.conn:query("SAVEPOINT orket_" .. d))
    if not ok then
      self.aborted = err
      return nil, err, code, state
    end
  end
  self.sp_unsent = nil
  return true
end

--- t:statement(method, sql, ...) -> the connection's answer (conn:query or conn:exec) to a
--- statement of the transaction: sent after the savepoints not sent yet, and after the
--- kept events when it names the journal; a failure leaves the transaction failed
--- (t.aborted) and a write to cards moves the board's stamp
function Tx:statement(method, sql, ...)
  if self.sp_unsent then
    local ok, err, code, state = self:send_savepoints()
    if not ok then return nil, err, code, state end
  end
  if self.ev and #self.ev > self.evf and sql:find("events", 1, true) then
    local ok, err, code, state = self:flush(#self.ev)
    if not ok then return nil, err, code, state end
  end
  if writes_cards(sql) then self.cards = self.cards + 1 end
  local conn = self.conn
  local a, b, c, d = self.db:_note(conn[method](conn, sql, ...))
  if a == nil then self.aborted = b end
  return a, b, c, d
end

-- After the nested transaction at depth failed: the events kept since it began are
-- dropped, and when its savepoint was sent (sent) the ones written after that were undone
-- by the ROLLBACK TO, so those kept before it began are to be written again.
function Tx:forget_events(depth, sent)
  local ev = self.ev
  if not ev then return end
  local m = self.evmark[depth]
  for i = #ev, m + 1, -1 do ev[i] = nil end
  if sent and self.evf > self.evsp[depth] then self.evf = self.evsp[depth] end
  if self.evf > m then self.evf = m end
end

local function nested(t, fn, ...)
  t.depth = t.depth + 1
  local depth, name = t.depth, "orket_" .. t.depth
  t.sp_unsent = t.sp_unsent or depth
  if t.ev then t.evmark[depth] = #t.ev end
  local restore <close> = setmetatable({}, { __close = function()
    t.depth = depth - 1
    if t.sp_unsent and t.sp_unsent > t.depth then t.sp_unsent = nil end
  end })
  local r = table.pack(pcall(fn, ...))
  local sent = not (t.sp_unsent and t.sp_unsent <= depth)
  if succeeded(r) then
    if not t.aborted then return outcome(r) end
    -- a statement failed inside and fn went on: what it did is undone
    local why = t.aborted
    if sent then t.db.undone = t.db.undone + 1 end
    if sent and t.conn:query("ROLLBACK TO SAVEPOINT " .. name) then t.aborted = nil end
    t.cards = t.cards + 1
    t:forget_events(depth, sent)
    return nil, "store: the savepoint was rolled back: a statement in it failed (" .. tostring(why) .. ")", "ETX"
  end
  if sent then
    t.db.undone = t.db.undone + 1
    if t.conn:query("ROLLBACK TO SAVEPOINT " .. name) then t.aborted = nil end
    t.cards = t.cards + 1 -- what the board read or wrote inside may be undone
  end
  t:forget_events(depth, sent)
  return outcome(r)
end

function DB:_tx(begin, fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'tx' (function expected, got " .. type(fn) .. ")", 3) end
  if outside_task() then return in_task(self._tx, self, begin, fn, ...) end
  local co = coroutine.running()
  local open = self.open[co]
  if open then return nested(open, fn, ...) end
  local lease <close>, err, code, state = self.pool:acquire()
  if not lease then return self:_note(nil, err, code, state) end
  local c = lease.conn
  -- until COMMIT or ROLLBACK has answered the connection is not clean: a task cancelled
  -- meanwhile gets it closed on release, and the server rolls the transaction back
  lease.in_tx = true
  local ok, berr, bcode, bstate = self:_note(c:exec(begin))
  -- the journal's lock not had within lock_timeout: waited for once more. The server's
  -- timer runs on the wall clock, so a server paused past it (a stopped VM, SIGSTOP) times
  -- out every waiter the moment it goes on, though the holder may be done by then; a card's
  -- turn refused so was blocked as the system's fault.
  local write = begin ~= BEGIN_READ
  if not ok and bcode == "EBUSY" and write and c:query("ROLLBACK") then
    ok, berr, bcode, bstate = self:_note(c:exec(begin))
  end
  if not ok then
    if c:query("ROLLBACK") then lease.in_tx = false end
    return nil, berr, bcode, bstate
  end
  local t = setmetatable({ db = self, conn = c, depth = 0, write = write, cards = 0, ev = write and {} or nil, evf = 0,
    evmark = write and {} or nil, evsp = write and {} or nil }, Tx)
  self.open[co] = t
  local mark <close> = setmetatable({}, { __close = function() self.open[co] = nil end })
  local r = table.pack(pcall(fn, ...))
  self.open[co] = nil
  if not succeeded(r) then
    if write then self.undone = self.undone + 1 end
    if c:query("ROLLBACK") then lease.in_tx = false end
    return outcome(r)
  end
  if not t.aborted and not t:flush(#(t.ev or {})) then
    self.undone = self.undone + 1
    if c:query("ROLLBACK") then
      lease.in_tx = false
      return nil, "store: the transaction was rolled back: its events could not be written (" .. tostring(t.aborted) .. ")", "ETX"
    end
  end
  local done, cerr, ctag, cstate = self:_note(c:query("COMMIT"))
  if not done then
    if write then self.undone = self.undone + 1 end -- (what was written is not committed)
    return nil, cerr, ctag, cstate
  end
  lease.in_tx = false
  if ctag == "ROLLBACK" then -- PostgreSQL's answer to COMMIT in a failed transaction
    self.undone = self.undone + 1
    return nil, "store: the transaction was rolled back: a statement in it failed", "ETX"
  end
  return outcome(r)
end

--- db:tx(fn, ...) -> fn's results | nil, msg, CODE. Runs fn(...) in a transaction on a
--- connection pinned for this task, holding the journal's lock (one writer at a time);
--- rolls back when fn raises (ETX) or returns nil, msg[, CODE]. Nests (savepoints). fn may
--- wait on the store's statements only.
function DB:tx(fn, ...) return self:_tx(self.begin_write or BEGIN_WRITE, fn, ...) end

--- db:read(fn, ...) -> as tx, in one snapshot (REPEATABLE READ) for a group of reads
function DB:read(fn, ...) return self:_tx(BEGIN_READ, fn, ...) end

--- db:idle_tx_limit(ms): from now on the server ends a write transaction of this handle, and
--- its session, once its client has sent nothing inside it for ms (the smallest asked for
--- wins; PostgreSQL's idle_in_transaction_session_timeout). A write transaction holds the
--- journal's lock: a process stopped inside one (SIGSTOP, a debugger, a frozen VM) kept
--- every other writer waiting for as long as it stood still, and a worker's cards from the
--- worker that would take them over (orket.engine.lease asks for its lease's time). The
--- stalled process, woken, finds its connection gone (a failure of the store's, _note).
--- Work of the process's own between two statements of a transaction (git on the loop) is
--- idle time to the server too: ms must exceed the longest such work (docs/store.md).
function DB:idle_tx_limit(ms)
  if math.type(ms) ~= "integer" or ms < 1 then error("bad argument #1 to 'idle_tx_limit' (positive integer expected)", 2) end
  if self.idle_ms and self.idle_ms <= ms then return end
  self.idle_ms, self.begin_write = ms, begin_write(ms)
end

--- db:in_tx([mode]) -> true while this task has a transaction open (mode "write": one
--- opened by db:tx, which holds the journal's lock, not by db:read)
function DB:in_tx(mode)
  local t = self.open[coroutine.running()]
  if mode == "write" then return t ~= nil and t.write end
  return t ~= nil
end

--- db:stop_within(ms): the process stops: a statement that waits longer than ms for its
--- answer takes the server for gone, and the rest are given up (orket.store.pgpool's
--- stop_within; SQLite's store has no server to wait for)
function DB:stop_within(ms)
  if self.pool then self.pool:stop_within(ms) end
end

function DB:close()
  if self.pool then self.pool:close() end
end
DB.__close = DB.close

-- ---- the journal and the records -----------------------------------------------------

M.encode = records.encode

-- the statement interface pgevents wants, bound to this task's transaction
local Q = {}
Q.__index = Q
function Q:query(sql, ...) return self.db:query(sql, ...) end

--- db:event{kind=, card=, run=, actor=, data=} -> event id | nil. Appends one journal row
--- under the journal's advisory lock (pgevents.append: ids stay a safe cursor); inside the
--- change's transaction, or in one of its own. In a write transaction the row is kept and
--- written with the transaction's others (Tx:flush), so no id is returned.
function DB:event(e)
  if type(e) ~= "table" or type(e.kind) ~= "string" then
    error("bad argument #1 to 'event' (table with a string 'kind' expected)", 2)
  end
  if not self:in_tx() then
    -- alone in its transaction: written at once, so its id is known
    return assert(self:tx(function() return assert(pgevents.insert(setmetatable({ db = self }, Q), e)) end))
  end
  local t = self.open[coroutine.running()]
  if t.ev then
    -- kept, written with the transaction's others (Tx:flush); its id is not known yet
    t.ev[#t.ev + 1] = pgevents.item(e)
    return nil
  end
  return assert(pgevents.append(setmetatable({ db = self }, Q), e)) -- in db:read: not under the lock yet
end

local EVENT_COLS = "id, " .. pgevents.AT .. [[ AS at, kind, card_id AS card, run_id AS run, actor, data::text AS data]]

-- One statement per case, as orket.store's: a generic plan of "$1 IS NULL OR card_id = $1"
-- cannot use events_card, and one card's rows would cost a walk of the journal.
local EVENTS_OF_CARD = "SELECT " .. EVENT_COLS .. [[ FROM events
    WHERE card_id = $1 AND ($2::int8 IS NULL OR run_id = $2) AND id > $3 ORDER BY id LIMIT $4]]
local EVENTS_AFTER = "SELECT " .. EVENT_COLS .. [[ FROM events
    WHERE id > $2 AND ($1::int8 IS NULL OR run_id = $1) ORDER BY id LIMIT $3]]

--- db:events{card=, run=, after=, limit=} -> array of {id, at, kind, card, run, actor, data}
function DB:events(q)
  q = q or {}
  local limit = (q.limit and q.limit >= 0) and q.limit or nil
  local rows
  if q.card ~= nil then
    rows = assert(self:rows(EVENTS_OF_CARD, q.card, q.run, q.after or 0, limit))
  else
    rows = assert(self:rows(EVENTS_AFTER, q.run, q.after or 0, limit))
  end
  for _, r in ipairs(rows) do r.data = json.decode(r.data) or {} end
  return rows
end

-- the record_* API (orket.store.records) on PostgreSQL's statements
records.install(DB, {
  run = "INSERT INTO runs (target, kind, started_at, data) VALUES ($1, $2, now(), $3::jsonb) RETURNING id",
  finish_run = "UPDATE runs SET status = $1, ended_at = now() WHERE id = $2",
  finish_running = "UPDATE runs SET status = $1, ended_at = now() WHERE id = $2 AND (status = 'running' "
    .. "OR ($1 = 'done' AND status IN ('stalled', 'failed')))",
  turn = [[INSERT INTO turns (run_id, card_id, seat, role, turn, model, request,
      response, prompt_tokens, completion_tokens, created_at, data)
      VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8::json, $9, $10, now(), $11::jsonb) RETURNING id]],
  tool_call = [[INSERT INTO tool_calls (turn_id, call_id, tool, arguments, result, ok,
    error_code, gate_code, created_at) VALUES ($1, $2, $3, $4::json, $5::json, $6, $7, $8, now()) RETURNING id]],
  finish_tool_call = [[UPDATE tool_calls SET result = $1::json, ok = $2, error_code = $3
      WHERE id = $4 AND result IS NULL]],
  gate_decision = [[INSERT INTO gate_decisions (turn_id, tool_call_id, tool, verdict, code,
      reason, remedy, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now()) RETURNING id]],
  violation = [[INSERT INTO violations (turn_id, card_id, seat, rule, attempt, detail, remedy, created_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, now()) RETURNING id]],
  violations = "SELECT id, turn_id, seat, rule, attempt, detail, remedy, " .. M.iso("created_at")
    .. " FROM violations WHERE card_id = $1 ORDER BY id",
}, function(v) if v == nil then return nil end return v and true or false end)

return M
