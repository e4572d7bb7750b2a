-- orket.engine.runset: the runs one `orket worker` works side by side, each in a task of
-- its own with an engine of its own over the worker's store (as orket.engine.executor does
-- for a server's runs), sharing the worker's lease keeper and its turns at once
-- (orket.engine.share). The worker's loop starts the runs left to workers here, stops them
-- all when it stops or loses the store, and waits for them. Contract: docs/workers.md.
local uv = require "luv"
local task = require "orket.task"
local reload = require "orket.engine.reload"
local scheduler = require "orket.engine.scheduler"
local journal_reads = require "orket.store.journal_reads"
local store_runs = require "orket.store.runs"

local M = {}
local Set = {}
Set.__index = Set

--- new{db=, keeper=, share=, open=, join=, leave=, journal=} -> set. keeper: the worker's
--- orket.engine.lease, whose leases on a run's cards go when the run ends here; share: the
--- runs' orket.engine.share;
--- open(row) -> engine | nil, msg: an engine for the run; join(row) -> hold | nil: the
--- worker may work the run (nil: not now); leave(hold); journal (optional; M.journal(db)
--- is the worker's): {last() -> the newest event's id, stops(from, to) -> {{id=, run=}}:
--- the runs ended interrupted by an event in (from, to]}, for stop_ended;
--- status(id) (optional) -> the run's status now and the journal's end (nil: unknown), read
--- together, asked once the worker joined and opened it.
--- set.failed: the first error a run's engine raised (not the store's loss), which stops
--- the worker; set.lost: the store's failure a run of the set met (store_failure);
--- set.count: the runs in flight.
function M.new(o)
  return setmetatable({ db = o.db, keeper = o.keeper, share = o.share, open = o.open, join = o.join, leave = o.leave,
    journal = o.journal, live = {}, count = 0,
    waker = scheduler.waker() }, Set)
end

--- journal(db) -> the journal a worker's set asks (new's journal) over the store's reads:
--- the run's status and the journal's end in one statement (orket.store.runs'
--- status_and_end), so no stop and resume can commit between the two
function M.journal(db)
  return { last = function() return math.tointeger(journal_reads.latest_id(db)) end,
    stops = function(from, to) return store_runs.stops_between(db, from, to) end,
    status = function(id) return store_runs.status_and_end(db, id) end }
end

--- start(row) -> true when the run is worked here (now or already)
function Set:start(row)
  if self.live[row.id] then return true end
  -- the journal's end before the join: a stop of the run after it is one of this open
  -- (stop_ended); read after, a stop in between would be missed
  local mark = self.journal and select(2, pcall(self.journal.last))
  if mark ~= nil and math.type(mark) ~= "integer" then return false end -- (the store lost: the loop finds it)
  -- (a store lost while the worker asks, in its loop's task: the loop finds it, its own
  -- failure, and waits)
  local jok, hold = pcall(self.join, row)
  if not (jok and hold) then return false end
  local e, err = self.open(row)
  if not e then
    self.leave(hold)
    self.failed = self.failed or tostring(err)
    return false
  end
  -- A stop and a resume that both landed while it joined (or opened) were taken for a stop
  -- of this open: stopped at the next look, it put a second run_end on stdout. Nothing of
  -- the open has run yet, so the run is read again with the journal's end: resumed
  -- (running), the open is fresh and its mark that end (a later stop is after it); stopped
  -- (interrupted), it is not opened. The two are one read: read one after the other, a
  -- stop and a resume committed between them gave a resumed run a mark from before its
  -- stop. (The end unread: the mark before the join, as before; the read failing: opened
  -- with that mark, as before.)
  if self.journal and self.journal.status then
    local sok, status, last = pcall(self.journal.status, row.id)
    if sok and status == "interrupted" then
      e.close_all()
      self.leave(hold)
      return false
    end
    if sok and math.type(last) == "integer" then mark = last end
  end
  local entry = { id = row.id, e = e, watcher = reload.watch(e), mark = mark }
  self.live[row.id] = entry
  self.count = self.count + 1
  entry.task = task.spawn(function()
    local ok, res, report = pcall(e.execute, e, row.id)
    -- the store's failure that ended the run: met by its own tasks (its report's
    -- store_lost: Run:journal_broken), or, when it raised, by its loop, this task (a lock
    -- met there; a failure of the file itself whoever met it). Any other error is Orket's
    -- own and stops the worker, as it did when it worked one run; a lock another task of
    -- the process met (a lease renewal's) is neither. Noted before anything below waits,
    -- so a wait_all that returned finds it.
    local lost
    if ok then lost = type(report) == "table" and report.store_lost or nil
    else lost = self.db:journal_error(nil, { [coroutine.running()] = true }) end
    if lost then self.lost = self.lost or lost
    elseif not ok then self.failed = self.failed or tostring(res) end
    -- (first: whatever fails below, wait_all does not wait for this run again)
    self.live[row.id] = nil
    self.count = self.count - 1
    -- (a run that raised gave back none of its turns: they go now)
    if self.share then self.share:leave(row.id) end
    -- (with the store lost they run out instead, or are claimed again on its return)
    if self.keeper then pcall(self.keeper.release_run, self.keeper, row.id) end
    entry.watcher:close()
    e.close_all()
    self.leave(hold)
    self.waker:wake()
  end)
  return true
end

--- store_failure() -> the store's failure one of the set's runs met | nil: one that ended
--- for it or raised with it (set.lost), or one in flight stopping for it (its run's
--- journal_failed). A lock another task of the process met (SQLite's EBUSY) is not one:
--- each run counts a lock only where its own tasks met it (Run:journal_broken), and the
--- worker does the same. forget_failure() drops set.lost, the runs having all ended.
function Set:store_failure()
  if self.lost then return self.lost end
  for _, entry in pairs(self.live) do
    local run = entry.e.current
    if run and run.journal_failed then return run.journal_failed end
  end
  return nil
end

function Set:forget_failure() self.lost = nil end

--- stop_all(): every run in flight stops (its turns cancelled where they wait, the run left
--- running for the workers: Run:conclude)
function Set:stop_all()
  for _, entry in pairs(self.live) do entry.e:stop() end
  self.waker:wake()
end

--- stop_ended(queued, status_of): the runs in flight that are no longer left to the workers
--- (queued: ops.queued's rows) and were ended interrupted meanwhile (status_of(id) -> the
--- run's status: `orket runs stop`, POST /v1/runs/ID/stop, from a process that saw no lease
--- of this worker on them) stop here, as on stop_all; a run another worker concluded
--- (done, stalled, failed) is not: its cards are worked to the end, as before
function Set:stop_ended(queued, status_of)
  local left = {}
  for _, r in ipairs(queued) do left[r.id] = true end
  for id, entry in pairs(self.live) do
    -- a run whose row is gone (the store restored from an older backup) ends here too: its
    -- cards' leases could no longer be written
    local status = not left[id] and not entry.ended and status_of(id)
    if status == "interrupted" or status == "gone" then
      entry.ended = true
      entry.e:stop()
    end
  end
  self:stop_resumed()
end

-- A run stopped and resumed between two looks (`orket runs stop N`, then `orket resume N`
-- within a poll) is left to the workers again when the worker looks: its status never
-- read interrupted here, and the worker went on with the open the stop ended, as if no stop
-- had been. The stop's run_end in the journal, after the open's mark, stops it the same
-- way; the worker joins the resumed run afresh at a later look, once the old open ended.
function Set:stop_resumed()
  if not (self.journal and next(self.live)) then return end
  local from
  for _, entry in pairs(self.live) do
    if entry.mark and (not from or entry.mark < from) then from = entry.mark end
  end
  if not from then return end
  -- (a store lost here: the loop's next question finds it)
  local ok, last = pcall(self.journal.last)
  if not (ok and math.type(last) == "integer") then return end
  -- the journal has not moved since every open's mark: no stop to look for (the worker
  -- polls often, and the stops' question scans the events)
  if last <= from then return end
  local sok, stops = pcall(self.journal.stops, from, last)
  if not sok then return end
  for _, s in ipairs(stops) do
    local entry = self.live[s.run]
    if entry and not entry.ended and entry.mark and s.id > entry.mark then
      entry.ended = true
      entry.e:stop()
    end
  end
  for _, entry in pairs(self.live) do
    if entry.mark and entry.mark < last then entry.mark = last end
  end
end

--- wait(ms): until a run ends, stop_all, or ms pass
function Set:wait(ms)
  local t = uv.new_timer()
  t:start(ms, 0, function() self.waker:wake() end)
  self.waker:wait()
  t:close()
end

--- wait_all(): until every run in flight has ended
function Set:wait_all()
  while true do
    local _, entry = next(self.live)
    if not entry then return end
    entry.task:join()
  end
end

return M
