-- orket.engine.scheduler: which cards get a turn next, and the wait for a free slot. Cards
-- in review go first (finishing work unblocks most), then cards in progress, then the
-- board's ready order (priority, critical path, age). Cards agents create are seen on the
-- next pass because the scope is read from the board each time.
local uv = require "luv"
local task = require "orket.task"

local M = {}

local FINAL = { done = true, canceled = true, archived = true }
M.FINAL = FINAL

--- scope(board, target) -> issues under target (target itself when it is an issue)
function M.scope(board, target)
  if target.type == "issue" then return { assert(board:get(target.id)) } end
  local q = target.type == "epic" and { epic = target.id, type = "issue" } or { rock = target.id, type = "issue" }
  local out = {}
  for _, c in ipairs(board:list(q)) do
    if c.type == "issue" then out[#out + 1] = c end
  end
  return out
end

local function by_priority(a, b)
  if a.priority ~= b.priority then return a.priority > b.priority end
  if a.created_at ~= b.created_at then return a.created_at < b.created_at end
  return a.id < b.id
end

--- candidates(board, target, busy) -> cards to start, in order (busy: id -> true)
function M.candidates(board, target, cards, busy)
  local review, working = {}, {}
  for _, c in ipairs(cards) do
    if not busy[c.id] then
      if c.status == "code_review" then review[#review + 1] = c
      elseif c.status == "in_progress" then working[#working + 1] = c end
    end
  end
  table.sort(review, by_priority)
  table.sort(working, by_priority)
  local out = {}
  for _, c in ipairs(review) do out[#out + 1] = c end
  for _, c in ipairs(working) do out[#out + 1] = c end
  local ready
  if target.type == "issue" then
    ready = {}
    for _, c in ipairs(board:ready(target.parent)) do
      if c.id == target.id then ready[1] = c end
    end
  else
    ready = board:ready(target.id)
  end
  for _, c in ipairs(ready) do
    if not busy[c.id] then out[#out + 1] = c end
  end
  return out
end

--- stuck(board, cards) -> array of {card=, status=, reason=} for every unfinished card
function M.stuck(board, cards)
  local out = {}
  for _, c in ipairs(cards) do
    if not FINAL[c.status] then
      local why
      if c.status == "waiting_for_developer" then
        why = "waiting for input"
      elseif c.status == "blocked" then
        why = "blocked (" .. tostring(c.wait_reason) .. ")"
      else
        local waits = {}
        for _, d in ipairs(c.depends_on or {}) do
          local dc = board:get(d)
          if dc and dc.status ~= "done" then
            local failed = dc.status == "blocked" or dc.status == "canceled" or dc.status == "waiting_for_developer"
            waits[#waits + 1] = d .. " (" .. dc.status .. (failed and ", failed dependency" or "") .. ")"
          end
        end
        why = #waits > 0 and ("waits for " .. table.concat(waits, ", ")) or ("cannot be scheduled from " .. c.status)
      end
      local cs = board:comments(c.id)
      local last = cs[#cs]
      if last and (c.status == "blocked" or c.status == "waiting_for_developer") then why = why .. ": " .. last.body end
      out[#out + 1] = { card = c.id, status = c.status, wait_reason = c.wait_reason, reason = why }
    end
  end
  return out
end

--- Waker: lets the scheduler's task sleep until a turn ends or a stop is asked for.
--- The resume happens from the loop (a zero timer), never nested inside the ending task.
local Waker = {}
Waker.__index = Waker

function M.waker() return setmetatable({ pending = false }, Waker) end

function Waker:wait()
  if self.pending then
    self.pending = false
    return
  end
  self.co = coroutine.running()
  coroutine.yield()
  self.co = nil
end

function Waker:wake()
  if not self.co then
    self.pending = true
    return
  end
  local co, timer = self.co, uv.new_timer()
  self.co = nil
  timer:start(0, 0, function()
    timer:close()
    task.resume(co)
  end)
end

return M
