-- orket.semaphore: a counting semaphore for tasks (orket.task): a limit on work in flight,
-- waits with a deadline, slots held as to-be-closed variables. Used by the model client's
-- per-provider limit (orket.llm.transport) and the PostgreSQL pool (orket.store.pgpool).
local rt = require "orket.c.runtime"
local task = require "orket.task"
local uv = require "luv"

local M = {}

local Sem = {}
Sem.__index = Sem

--- new(limit) -> a semaphore letting limit holders in at once
function M.new(limit) return setmetatable({ limit = limit, active = 0, queue = {} }, Sem) end

-- acquire(deadline) -> true, or false when deadline (rt.now() ms) passed first: a call
-- with a timeout_ms must not wait longer than that for a slot either.
function Sem:acquire(deadline)
  if self.active < self.limit then
    self.active = self.active + 1
    return true
  end
  local w = { co = coroutine.running() }
  self.queue[#self.queue + 1] = w
  local timer
  -- a cancelled waiter's coroutine is closed: its timer goes with it
  local guard <close> = setmetatable({}, { __close = function()
    w.done = true
    if timer and not timer:is_closing() then timer:close() end
  end })
  if deadline then
    timer = uv.new_timer()
    timer:start(math.max(0, math.ceil(deadline - rt.now())), 0, function()
      timer:close()
      if w.done then return end
      w.done, w.late = true, true
      for i, q in ipairs(self.queue) do
        if q == w then
          table.remove(self.queue, i)
          break
        end
      end
      task.resume(w.co)
    end)
  end
  coroutine.yield() -- release() hands the slot over and resumes us, or the timer does
  return not w.late
end

function Sem:release()
  while #self.queue > 0 do
    local w = table.remove(self.queue, 1)
    if not w.done and coroutine.status(w.co) == "suspended" then -- a cancelled task's is dead
      w.done = true
      task.resume(w.co)
      return
    end
  end
  self.active = self.active - 1
end

--- wake_all(): every waiter gets false now, as if its deadline had passed (a pool whose
--- stop's deadline passed: orket.store.pgpool)
function Sem:wake_all()
  local queue = self.queue
  self.queue = {}
  for _, w in ipairs(queue) do
    if not w.done and coroutine.status(w.co) == "suspended" then
      w.done, w.late = true, true
      task.resume(w.co)
    end
  end
end

-- hold(deadline) -> a to-be-closed slot, or nil when deadline passed first: released when
-- the holder's block ends, including when its task is cancelled (coroutine.close closes
-- pending to-be-closed variables). The slot is the semaphore itself (a to-be-closed
-- variable is closed exactly once), so holding one makes no table.
Sem.__close = Sem.release

function Sem:hold(deadline)
  if not self:acquire(deadline) then return nil end
  return self
end

return M
