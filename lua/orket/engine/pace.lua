-- orket.engine.pace: one heavy step per turn of the loop, across every task that asks. The
-- runs a server executes (orket.engine.executor) pass here before each step that takes
-- milliseconds of the loop (compiling the scripts, opening the repository, making a card's
-- worktree): ten runs started at once then take their steps one per turn of the loop, with
-- as much time left to other requests after each long one, and a request waits for about
-- one step, not all of them. Uses luv's timer and
-- orket.c.runtime's sleep (a task waiting here can be cancelled as in any sleep).
local uv = require "luv"
local rt = require "orket.c.runtime"

local M = {}

local Pacer = {}
Pacer.__index = Pacer

--- new() -> pacer
function M.new() return setmetatable({ next = 1, serving = 0 }, Pacer) end

--- pacer:pass(): waits (in a task) until this caller's turn: the first caller of a quiet
--- pacer goes at once, the others one per turn of the loop, in the order they asked
function Pacer:pass()
  local ticket = self.next
  self.next = ticket + 1
  if ticket == self.serving + 1 and not self.timer then -- nobody ahead: go, and let the next wait a turn
    self.serving = ticket
    self:_tick()
    return
  end
  self:_tick()
  while self.serving < ticket do rt.sleep(1) end
end

-- A turn of the loop lets the next ticket go, unless the last turn was long (a step, or
-- anything else, held the loop): then as long again is left to the rest (the requests
-- that waited meanwhile, each served in a turn of its own) before the next step, so heavy
-- steps take at most about half the loop's time. The timer stops once none waits.
function Pacer:_tick()
  if self.timer then return end
  self.timer = uv.new_timer()
  local last, free_at = uv.hrtime(), 0
  self.timer:start(1, 1, function()
    local now = uv.hrtime()
    local held = (now - last) / 1e6 - 1
    last = now
    if held > 2 then free_at = now + held * 1e6 end
    if now < free_at then return end
    if self.serving + 1 < self.next then
      self.serving = self.serving + 1
    else
      self.timer:close()
      self.timer = nil
    end
  end)
  self.timer:unref() -- the waiters' sleeps keep the loop alive, not the pacer
end

return M
