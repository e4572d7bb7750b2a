-- orket.engine.lease: a worker's leases on the cards it works (`orket worker`), over the
-- store's named operations (orket.store.leases, or its PostgreSQL twin). A run with a lease
-- keeper works only the cards the keeper claimed (Run:execute asks it for candidates, in
-- the engine's order); every step's transaction checks the card's lease first (check), so
-- a worker whose lapsed lease another worker took over writes nothing more for the card,
-- and the taker resumes it from the journal. A timer renews the leases every third of their
-- time (a lapsed one nobody took too); what a renewal no longer finds is lost, and an
-- effect outside the store (a file write) is not started on a card whose lease is not known
-- fresh, and runs under the card's fence (a lock file the worker that takes the card over
-- waits on). Contract: docs/workers.md.
local uv = require "luv"
local rt = require "orket.c.runtime"
local crypto = require "orket.c.crypto"
local task = require "orket.task"
local leases = require "orket.store.leases"
local pglisten = require "orket.store.pglisten"
local lockfile = require "orket.c.lockfile"
local fault = require "orket.engine.fault"

local M = {}
local Lease = {}
Lease.__index = Lease

M.LOST = "lease lost: another worker may work this card now"

-- The least idle time inside a write transaction that a keeper asks the server to end it
-- after (new): a lease shorter than this (the tests' own) cuts short no slow machine's
M.IDLE_TX_MIN_MS = 1000

--- ops(db) -> the leases operations (orket.store.leases, which dispatches to its
--- PostgreSQL twin by db's backend)
function M.ops() return leases end

-- How long a wait for a card's fence goes unsaid, then again between sayings: the holder
-- is in an effect (a build, a test run) or stalled (SIGSTOP, a debugger), and the wait
-- has no end of its own, so the operator is told which process holds it
M.FENCE_SAY_MS = 10000
M.FENCE_SAY_AGAIN_MS = 60000

--- new{db=, worker=, ttl_ms=, on_event=[, say=, fence_say_ms=]} -> keeper. say(msg): where a
--- long wait for a fence is told (stderr). worker: this worker's name, shown in
--- events and listings; ttl_ms: how long a lease lives unrenewed. keeper.worker, the
--- leases' holder, is the name with a token of this keeper's own ("NAME#16 hex digits"):
--- two processes given one name (or HOST:PID alike in two containers) are two holders, and
--- never both work a card (orket.store.leases.name_of gives the name back).
function M.new(o)
  if type(o) ~= "table" or o.db == nil or type(o.worker) ~= "string" then
    error("bad argument #1 to 'new' ({db=, worker=, ttl_ms=} expected)", 2)
  end
  local ttl = o.ttl_ms or 30000
  if math.type(ttl) ~= "integer" or ttl < 30 then error("bad argument #1 to 'new' (ttl_ms: integer >= 30 expected)", 2) end
  -- a write transaction this process leaves idle past the lease (stopped inside it) holds
  -- the store's journal lock, and so the cards, from the worker that would take them over:
  -- the server ends it (PostgreSQL; SQLite's cannot wait on the loop)
  -- Twice the lease: a worker's own work between two statements counts as idle too (git on
  -- the loop inside a step's transaction), and work that holds the loop for longer than
  -- the lease has let its leases lapse already (their renewal waits on the same loop)
  if type(o.db.idle_tx_limit) == "function" then o.db:idle_tx_limit(math.max(2 * ttl, M.IDLE_TX_MIN_MS)) end
  local token = crypto.random_bytes(8):gsub(".", function(c) return string.format("%02x", c:byte()) end)
  return setmetatable({ db = o.db, ops = M.ops(o.db), name = o.worker, worker = o.worker .. "#" .. token, ttl_ms = ttl, held = {}, round = {}, run_of = {},
    marks = 0, marked = {}, releasing = {}, poll_ms = o.poll_ms or 100, on_event = o.on_event or function() end,
    say = o.say or function(msg) io.stderr:write("orket: " .. msg .. "\n") end, -- (one write: a shared stderr)
    fence_say_ms = o.fence_say_ms or M.FENCE_SAY_MS }, Lease)
end

-- A local deadline a little before the lease's: the clocks of this process and the
-- database's agree to within the renewal's round trip, so a fifth of the lease is kept
-- as a margin before an effect is started. It is dated from `from`, the time just before
-- the statement that set the lease (the store dates the lease from that statement): dated
-- from its answer, a statement that waited (the store's write lock, a loaded server) moved
-- the worker's deadline past the store's. Each mark is numbered (marked[card]), so that
-- a renewal judges only the cards marked before it began (renew).
function Lease:mark(card, from)
  self.held[card] = from + self.ttl_ms * 4 // 5
  self.marks = self.marks + 1
  self.marked[card] = self.marks
end

--- claim(run_id, ids, limit) -> array of card ids held (inside the caller's transaction):
--- see orket.store.leases.claim. A card taken over from another worker is announced.
function Lease:claim(run_id, ids, limit)
  local from = rt.now()
  local got = self.ops.claim(self.db, { worker = self.worker, run = run_id, ids = ids, limit = limit,
    ttl_ms = self.ttl_ms })
  if #got > 0 then fault.hit("in_claim") end -- (inside the scheduling round's transaction)
  local out = {}
  -- one keeper serves every run its worker works side by side: a round's claims are its run's
  local round = self.round[run_id] or {}
  self.round[run_id] = round
  for i, c in ipairs(got) do
    out[i] = c.card
    self:mark(c.card, from)
    round[c.card] = true
    self.run_of[c.card] = run_id
    if c.taken_from then
      self.on_event { type = "lease_taken_over", card = c.card, from = c.taken_from, run_id = run_id }
    end
  end
  return out
end

--- candidates(view, busy, want) -> iterator over the view's candidates that this worker
--- holds, claiming them in the view's order a few at a time: want() says how many more
--- cards the caller can start. Runs inside the scheduling round's transaction.
function Lease:candidates(view, busy, run_id, want)
  local it, state = view:candidates(busy)
  local done = false
  local ready, i, cards = {}, 0, {}
  return function()
    while true do
      i = i + 1
      if ready[i] then return ready[i] end
      local need = want()
      if done or need <= 0 then return nil end
      ready, i, cards = {}, 0, {}
      local ids = {}
      while #ids < math.max(16, need * 4) do
        local c = it(state)
        if not c then
          done = true
          break
        end
        ids[#ids + 1] = c.id
        cards[c.id] = c
      end
      for k, id in ipairs(self:claim(run_id, ids, need)) do ready[k] = cards[id] end
      if #ready == 0 and done then return nil end
    end
  end
end

--- idle(ms): waits up to ms for work to appear. On PostgreSQL a listener on orket_events
--- (its own connection, made at the first wait) ends the wait early when another process
--- commits journal events (a card moved, a lease released with its card); on SQLite, or
--- while the listener cannot connect, it sleeps. A wake-up only: the caller looks again.
function Lease:idle(ms)
  if self.wait_task then
    -- another of this lease's tasks reads the listener (one reader a connection): this one
    -- is woken with it, by what it hears or by the end of its wait
    self.wait_task:join()
    return
  end
  if self.db.backend == "pg" and not self.no_listen then
    if not self.listener then
      self.listener = pglisten.new { url = self.db.url, channels = { "orket_events" } }
    end
    local listener, t = self.listener, nil
    -- the wait is a task of its own, cleared by itself when it ends: a caller cancelled
    -- while it waits leaves no finished wait behind for the next ones to join
    t = task.new(function()
      local notes, info = listener:wait(ms * 5) -- woken by commits: a longer wait costs no latency
      if self.wait_task == t then self.wait_task = nil end
      return notes ~= nil and not (info and info.error)
    end)
    self.wait_task = t
    t:start()
    local ok, heard = t:join()
    if ok and heard then return end
    self.no_listen = true -- the listener cannot connect: poll from now on
  end
  rt.sleep(ms)
end

--- release_idle(busy, run_id): at the end of run_id's scheduling round, drops the leases
--- claimed in it on cards that got no turn (skipped, blocked or moved by the engine instead)
function Lease:release_idle(busy, run_id)
  for card in pairs(self.round[run_id] or {}) do
    if not busy[card] then self:release(card) end
  end
  self.round[run_id] = nil
end

--- others_busy(run_id) -> true while other workers hold live leases on run's cards
function Lease:others_busy(run_id)
  return self.ops.others(self.db, run_id, self.worker) > 0
end

--- check(card): raises M.LOST unless card's lease row still names this worker, live or
--- lapsed with nobody having taken it (inside a step's transaction, so the check and the
--- step's writes are one)
function Lease:check(card)
  if not self.ops.holds(self.db, card, self.worker) then
    self:forget(card)
    error(M.LOST, 0)
  end
end

--- forget(card): drops what this keeper knows of its lease on card (its deadline, mark and
--- run), the store left as it is: the lease ended otherwise (check found it gone; a turn's
--- end released it in its own transaction). A long-lived worker kept one entry per card it
--- ever worked.
function Lease:forget(card)
  self.held[card], self.run_of[card], self.marked[card], self.releasing[card] = nil, nil, nil, nil
end

--- fresh(card) -> true when the lease on card was renewed recently enough to start an
--- effect outside the store
function Lease:fresh(card)
  local until_ = self.held[card]
  return until_ ~= nil and rt.now() < until_
end

--- fence(card, dir) -> a held lock (release it when the effect is over) | error(LOST): an
--- effect outside the store starts only under a lock on a file of the card's in the
--- project's home (dir/.orket/effects/CARD.lock), taken before the lease is judged fresh
--- and held until the effect ends. The lease fences the store's writes only: a worker
--- stalled (a loaded machine, SIGSTOP) between judging its lease fresh and its effect, past
--- the lease, ran the effect after the worker that took the card over had recovered the
--- call, so it ran twice. Under the lock the taker's recovery waits for an effect begun (the
--- kernel drops the lock of a killed worker), and a worker that gets the lock after a
--- takeover finds its deadline gone by: its deadline comes before the store's lease end,
--- which comes before the taker's claim. Workers of one folder share its card directories;
--- another folder's effects are in its own.
function Lease:fence(card, dir)
  local home = (dir or ".") .. "/.orket/effects"
  local path = home .. "/" .. card .. ".lock" -- (a card id is a file name: orket.board.id_ok)
  local made, since, said_at = false, nil, nil
  while true do
    local lk, err, code, holder = lockfile.acquire(path)
    if not lk and code ~= "EBUSY" and not made then
      -- the folder is made at the first effect, and again if someone removed it meanwhile
      local ok, merr, mcode = uv.fs_mkdir(home, tonumber("700", 8))
      if not ok and mcode ~= "EEXIST" then error("lease: cannot make " .. home .. ": " .. tostring(merr), 0) end
      made = true
      lk, err, code = lockfile.acquire(path)
    end
    if lk then
      if self:fresh(card) then return lk end
      lk:release()
      error(M.LOST, 0)
    elseif code == "EBUSY" then
      -- another process of this folder is in an effect on the card: waited for, however
      -- long (its effect must be seen before the card's call is recovered), and said
      local now = rt.now()
      since = since or now
      if now - since >= self.fence_say_ms and (not said_at or now - said_at >= M.FENCE_SAY_AGAIN_MS) then
        said_at = now
        self.say(string.format("card %s waits for its effect's fence (%s), held by %s for %d s: its effect "
          .. "runs there, or that process is stalled (stopped, a debugger); the kernel frees the fence when "
          .. "it exits", card, path, holder and ("process " .. holder) or "another process", (now - since) // 1000))
      end
      rt.sleep(self.poll_ms // 2)
    else
      error("lease: cannot lock " .. path .. ": " .. tostring(err), 0)
    end
  end
end

--- release(card | nil): drops card's lease (all of this worker's when nil), in a
--- transaction of its own unless inside the caller's
function Lease:release(card)
  self.ops.release(self.db, self.worker, card)
  if card then
    self:forget(card)
  else
    self.held, self.run_of, self.marked, self.releasing = {}, {}, {}, {}
  end
end

--- release_with(card): releases card's lease inside the caller's transaction (a turn's
--- end), the card still known until the caller sees the commit (forget) or the rollback
--- (kept). Meanwhile a renewal that no longer finds the lease does not call it lost: on
--- PostgreSQL the renewal runs on a connection of its own, waits on the release's row lock,
--- and can be answered before the turn that committed the release; it said a card whose
--- turn had just ended normally was lost.
function Lease:release_with(card)
  self.ops.release(self.db, self.worker, card)
  self.releasing[card] = true
end

--- kept(card): the transaction that released card's lease (release_with) rolled back: the
--- lease is held as before, and judged by renewals again
function Lease:kept(card) self.releasing[card] = nil end

--- release_run(run_id): drops this worker's leases on run_id's cards (the run ended here;
--- a card it left in progress, as a full disk leaves one, would otherwise stay held while
--- the worker renews its other runs' leases, and another worker's run would wait for it)
function Lease:release_run(run_id)
  local cards = {}
  for card, r in pairs(self.run_of) do
    if r == run_id then cards[#cards + 1] = card end
  end
  if #cards == 0 then return end
  assert(self.db:tx(function()
    for _, card in ipairs(cards) do self:release(card) end
    return true
  end))
end

--- renew() -> set of cards lost since the last renewal. A card claimed while the renewal
--- waited (on PostgreSQL its statement and the namesakes' read yield to the scheduling
--- round's claims) is not in what the renewal found, but its lease is fresh: only the cards
--- marked before the renewal began are judged by it (else a card just claimed was said
--- lost, and its turn stopped at its first effect while the worker still held the lease).
--- The renewal is no transaction of the keeper's: each of its statements commits on the
--- server whole (orket.store.leases.renew). In a transaction, a worker stalled between its
--- UPDATE and its COMMIT (SIGSTOP, a debugger, a loaded machine) kept its lease rows, and
--- on PostgreSQL the journal's lock, from every worker that would take its cards over, for
--- as long as it stood still.
function Lease:renew()
  -- only the cards this keeper holds: a lapsed row still naming it is renewed (nobody took
  -- it: a wall clock stepped past the lease), and one it forgot must lapse
  local mine = {}
  for card in pairs(self.held) do mine[#mine + 1] = card end
  -- both before the statement: the store dates the lease from the statement, once any
  -- wait for its write lock is over, so a deadline dated from here is the earlier one
  local from, began = self.marks, rt.now()
  local ok, now = pcall(self.ops.renew, self.db, self.worker, self.ttl_ms, mine)
  if #mine > 0 then fault.hit("in_renewal") end -- (answered: nothing of the store's held now)
  local lost = {}
  if not ok then return lost end -- the store did not answer: the leases run out unless a later renewal works
  self:warn_namesakes()
  for card in pairs(self.held) do
    if now[card] then
      self:mark(card, began)
    elseif not self.releasing[card] and (self.marked[card] or 0) <= from then
      self.held[card], self.marked[card] = nil, nil
      lost[card] = true
      self.on_event { type = "lease_lost", card = card, run_id = self.run_of[card] }
    end
  end
  return lost
end

--- warn_namesakes(): says once (worker_name_shared) when another live process holds leases
--- under this worker's name: both work safely (the holder is the process), but their
--- events cannot be told apart
function Lease:warn_namesakes()
  if self.warned_name then return end
  local ok, n = pcall(self.ops.namesakes, self.db, self.worker)
  if ok and n > 0 then
    self.warned_name = true
    self.on_event { type = "worker_name_shared", name = self.name, leases = n }
  end
end

--- start(): renews every third of the lease's time until close()
function Lease:start()
  if self.timer then return end
  local period = math.max(10, self.ttl_ms // 3)
  self.timer = uv.new_timer()
  self.timer:start(period, period, function()
    if self.renewing then return end
    self.renewing = true
    task.spawn(function()
      self:renew()
      self.renewing = false
    end)
  end)
  self.timer:unref()
end

--- close(): stops renewing and releases every lease (idempotent)
function Lease:close()
  if self.listener then
    self.listener:close()
    self.listener = nil
  end
  if self.timer then
    self.timer:close()
    self.timer = nil
  end
  if self.closed then return end
  self.closed = true
  pcall(function() assert(self.db:tx(function() self:release(nil); return true end)) end)
end

return M
