-- orket.engine.share: the turns one `orket worker` runs at once (--concurrency), shared
-- among the runs it works side by side. Each run may hold its fair share (the limit over
-- the runs, rounded up) and no more; a run that found no free turn queues, and turns that
-- end go to the queued runs first, oldest first, so a run whose turns end one after
-- another cannot take every freed turn from the others. Pure bookkeeping: the runs
-- (orket.engine.run) ask it in their scheduling rounds and it wakes their loops.
local M = {}
local Share = {}
Share.__index = Share

--- new(limit) -> share: limit, turns at once across the runs (a positive integer)
function M.new(limit)
  if math.type(limit) ~= "integer" or limit < 1 then error("bad argument #1 to 'new' (positive integer expected)", 2) end
  return setmetatable({ limit = limit, used = 0, runs = {}, count = 0, queue = {} }, Share)
end

-- run id's place in the queue, or nil
local function place(self, id)
  for i, q in ipairs(self.queue) do
    if q == id then return i end
  end
end

local function dequeue(self, id)
  local i = place(self, id)
  if i then table.remove(self.queue, i) end
end

-- wakes the queued runs that a free turn may now go to
local function wake_queued(self)
  local free = self.limit - self.used
  for i = 1, math.min(free, #self.queue) do
    local r = self.runs[self.queue[i]]
    if r and r.waker then r.waker:wake() end
  end
end

--- join(id, waker): run id takes part (waker: its loop's, woken when a turn may be its)
function Share:join(id, waker)
  if not self.runs[id] then self.count = self.count + 1 end
  self.runs[id] = { inflight = 0, waker = waker }
end

--- leave(id): run id has ended; its queued place goes
function Share:leave(id)
  local r = self.runs[id]
  if not r then return end
  self.used = self.used - r.inflight
  self.runs[id] = nil
  self.count = self.count - 1
  dequeue(self, id)
  wake_queued(self)
end

--- fair() -> the most turns one run may hold now
function Share:fair()
  return math.max(1, -(-self.limit // math.max(1, self.count)))
end

--- open(id) -> true when run id could be given a turn now (a cheap look, nothing taken)
function Share:open(id)
  local r = self.runs[id]
  return r ~= nil and r.inflight < self:fair() and self.used < self.limit
end

--- take(id, want) -> n: up to want turns for run id, taken now (give back what a round did
--- not start with give); 0 queues the run when its fair share has room but no turn is free
function Share:take(id, want)
  local r = self.runs[id]
  if not r or want <= 0 then return 0 end
  local mine = self:fair() - r.inflight
  if mine <= 0 then
    -- its share shrank (more runs joined) while it waited: it waits no more, others go first
    if self:queued(id) then self:unqueue(id) end
    return 0
  end
  -- the runs queued before this one are served first
  local at = place(self, id)
  local ahead = (at or #self.queue + 1) - 1
  local n = math.min(want, mine, self.limit - self.used - ahead)
  if n <= 0 then
    if not at then self.queue[#self.queue + 1] = id end
    return 0
  end
  dequeue(self, id)
  r.inflight = r.inflight + n
  self.used = self.used + n
  return n
end

--- give(id, n): n turns taken and not started (or ended) go back; queued runs are woken
function Share:give(id, n)
  local r = self.runs[id]
  if not r or n <= 0 then return end
  r.inflight = r.inflight - n
  self.used = self.used - n
  wake_queued(self)
end

--- queued(id) -> true while run id waits for a turn
function Share:queued(id)
  return place(self, id) ~= nil
end

--- unqueue(id): run id had a turn free and nothing to start: its place goes to the others
function Share:unqueue(id)
  if not self:queued(id) then return end
  dequeue(self, id)
  wake_queued(self)
end

return M
