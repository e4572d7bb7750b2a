-- orket.engine.runset: the runs one `orket worker` works side by side, each in a task of
-- its own with an engine of its own over the worker's store (as orket.engine.executor does
-- for a server's runs), sharing the worker's lease keeper and its turns at once
-- (orket.engine.share). The worker's loop starts the runs left to workers here, stops them
-- all when it stops or loses the store, and waits for them. Contract: docs/workers.md.
local uv = require "luv"
local task = require "orket.task"
local reload = require "orket.engine.reload"
local scheduler = require "orket.engine.scheduler"

local M = {}
local Set = {}
Set.__index = Set

--- new{db=, keeper=, share=, open=, join=, leave=} -> set. keeper: the worker's
--- orket.engine.lease, whose leases on a run's cards go when the run ends here; share: the
--- runs' orket.engine.share;
--- open(row) -> engine | nil, msg: an engine for the run; join(row) -> hold | nil: the
--- worker may work the run (nil: not now); leave(hold).
--- set.failed: the first error a run's engine raised (not the store's loss), which stops
--- the worker; set.count: the runs in flight.
function M.new(o)
  return setmetatable({ db = o.db, keeper = o.keeper, share = o.share, open = o.open, join = o.join, leave = o.leave, live = {}, count = 0,
    waker = scheduler.waker() }, Set)
end

--- start(row) -> true when the run is worked here (now or already)
function Set:start(row)
  if self.live[row.id] then return true end
  -- (a store lost while the worker asks: its loop finds db:journal_error() and waits)
  local jok, hold = pcall(self.join, row)
  if not (jok and hold) then return false end
  local e, err = self.open(row)
  if not e then
    self.leave(hold)
    self.failed = self.failed or tostring(err)
    return false
  end
  local entry = { id = row.id, e = e, watcher = reload.watch(e) }
  self.live[row.id] = entry
  self.count = self.count + 1
  entry.task = task.spawn(function()
    local ok, res = pcall(e.execute, e, row.id)
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
    -- an error with the store gone is the loss's (the worker waits for the store); any
    -- other is Orket's own and stops the worker, as it did when it worked one run
    if not ok and not self.db:journal_error() then self.failed = self.failed or tostring(res) end
    self.waker:wake()
  end)
  return true
end

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
    if not left[id] and not entry.ended and status_of(id) == "interrupted" then
      entry.ended = true
      entry.e:stop()
    end
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
