-- orket.task: tasks are coroutines driven by the libuv loop. A task runs until it waits on a
-- C operation (orket.sleep, an HTTP request, a subprocess); the loop resumes it when the
-- operation completes, through the waker installed here. Many tasks can wait at once.
local rt = require "orket.c.runtime"
local uv = require "luv"

local M = {}

local by_co = setmetatable({}, { __mode = "k" }) -- coroutine -> task
local Task = {}
Task.__index = Task

-- Failures nobody joined go here (see collect); the CLI prints them. Replace on_unhandled
-- to handle them elsewhere.
M.unhandled = {}
function M.on_unhandled(t, err)
  M.unhandled[#M.unhandled + 1] = err
end

-- Tasks that failed before anybody joined them. Whether anybody will is known only later:
-- spawn runs a task at once, so one that fails before its first wait has failed before the
-- spawner could join it (`orket lua -e 'error("x")'` printed the error twice).
local failed_unjoined = {}

--- collect() -> M.unhandled, with every task that failed and was never joined since
function M.collect()
  local list = failed_unjoined
  failed_unjoined = {}
  for _, t in ipairs(list) do
    if not t.observed then M.on_unhandled(t, t.error) end
  end
  return M.unhandled
end

local function describe(err)
  if type(err) == "string" then return err end
  local mt = getmetatable(err)
  if type(mt) == "table" and mt.__tostring then
    local ok, s = pcall(tostring, err)
    if ok and type(s) == "string" then return s end
  end
  return "(a " .. type(err) .. " was raised, not a message)"
end

local function settle(t)
  local joiners = t.joiners
  t.joiners = {}
  for _, co in ipairs(joiners) do
    -- a joiner cancelled meanwhile is closed (dead): resumed, it would turn failed
    if coroutine.status(co) == "suspended" then M.resume(co) end
  end
  if t.state == "failed" and #joiners == 0 and not t.observed then
    failed_unjoined[#failed_unjoined + 1] = t
  end
end

-- Resumes a task's coroutine with the values of its finished wait.
local function step(t, ...)
  local co = t.co
  local ok, err_or_first = coroutine.resume(co, ...)
  if coroutine.status(co) ~= "dead" then return end -- waiting again
  if ok then
    t.state = "done"
    t.results = t.pending_results
  else
    t.state = "failed"
    t.error = debug.traceback(co, describe(err_or_first))
    coroutine.close(co)
  end
  t.pending_results = nil
  settle(t)
end

-- The body wrapper keeps the results, so step() need not pack them on every resume.
local function body(t, fn, ...)
  t.pending_results = table.pack(fn(...))
end

-- Resumes a coroutine whose wait finished (called by the runtime from the loop).
function M.resume(co, ...)
  local t = by_co[co]
  if t then return step(t, ...) end
  -- A plain coroutine waiting inside a task: resume it where it stopped.
  local ok, err = coroutine.resume(co, ...)
  if not ok then M.on_unhandled(nil, debug.traceback(co, describe(err))) end
end

rt.set_waker(M.resume)

-- A task whose coroutine has not run yet: its first resume hands body the task, the
-- function and its arguments, so no closure or copy of them is made to start it.
local function made(state)
  local t = setmetatable({ state = state, joiners = {} }, Task)
  t.co = coroutine.create(body)
  by_co[t.co] = t
  return t
end

--- new(fn, ...) -> task, not yet started (start it with task:start()).
function M.new(fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'new' (function expected, got " .. type(fn) .. ")", 2) end
  local t = made("new")
  t.fn, t.args = fn, table.pack(...)
  return t
end

--- spawn(fn, ...) -> task: starts fn(...) as a task; it runs until its first wait.
function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'spawn' (function expected, got " .. type(fn) .. ")", 2) end
  local t = made("running") -- a server spawns one a request: its arguments go straight in
  step(t, t, fn, ...)
  return t
end

function Task:start()
  if self.state ~= "new" then error("task already started", 2) end
  self.state = "running"
  local fn, args = self.fn, self.args
  self.fn, self.args = nil, nil
  step(self, self, fn, table.unpack(args, 1, args.n))
  return self
end

--- task:join() -> true, results... | false, error: waits for the task to end. Inside a task
--- this suspends the caller; from the main thread it runs the loop until the task ends.
function Task:join()
  self.observed = true
  if self.state == "new" or self.state == "running" then
    local me, main = coroutine.running()
    if main or not coroutine.isyieldable() then
      while self.state == "running" or self.state == "new" do
        if self.state == "new" then self:start() end
        if self.state == "running" and not rt.run("once") and self.state == "running" then
          self.state = "failed"
          self.error = "task never finished: it yielded without waiting on anything"
          coroutine.close(self.co)
        end
      end
    else
      if me == self.co then error("a task cannot join itself", 2) end
      if self.state == "new" then self:start() end
      if self.state == "running" then
        self.joiners[#self.joiners + 1] = me
        coroutine.yield()
      end
    end
  end
  if self.state == "done" then return true, table.unpack(self.results, 1, self.results.n) end
  return false, self.error
end

--- task:cancel(): stops the task where it waits; it ends in state "canceled".
function Task:cancel()
  if self.state ~= "running" and self.state ~= "new" then return false end
  rt.cancel(self.co)
  if coroutine.status(self.co) == "suspended" then coroutine.close(self.co) end
  self.state = "canceled"
  self.error = "canceled"
  self.observed = true
  settle(self)
  return true
end

function Task:__tostring()
  return "task (" .. self.state .. ")"
end

--- turn(): suspends the calling task for one turn of the loop that polls for I/O after it
--- suspended, and no longer: a signal that came while the task held the thread (a blocking
--- store call, a long export) has had its handler run when it returns. No clock: a short
--- sleep's timer may come due before that poll (a callback later in the poll that resumed
--- the task holding the thread). An idle handle keeps that poll from waiting, and the check
--- handle, run right after a poll, resumes the task only once the idle one has run since (a
--- task resumed by an I/O callback suspends after its turn's poll, before its check phase).
--- Not a runtime wait: it is not counted in rt.stats().waits, and a script's memory
--- ceiling stays while it waits.
function M.turn()
  local co, polled = coroutine.running(), false
  local idle, check
  -- declared before the handles: closes those made however the task goes on (resumed,
  -- cancelled: its coroutine closed, or the second handle's making failed)
  local _ <close> = setmetatable({}, { __close = function()
    if idle then idle:close() end
    if check then check:close() end
  end })
  idle = assert(uv.new_idle())
  check = assert(uv.new_check())
  idle:start(function() polled = true end)
  check:start(function()
    if not polled then return end
    idle:stop()
    check:stop()
    M.resume(co)
  end)
  coroutine.yield()
end

--- current() -> the running task, or nil.
function M.current()
  return by_co[coroutine.running()]
end

return M
