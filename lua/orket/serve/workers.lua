-- orket.serve.workers: `orket serve --workers N` keeps N `orket worker` processes (children
-- of the server, same binary, same project) working the runs the server leaves to them
-- (POST /v1/runs then records the run for the workers instead of executing it here). Child
-- processes rather than tasks: a worker's blocking waits (a SQLite write lock, the git
-- lock) stall only itself, and a crash of one loses only its leases, which the others take
-- over. A child that ends while the server runs is started again after a second, and after
-- twice as long each time it ends again soon after its start (up to RESTART_CAP_MS: one
-- that cannot connect to a full database was started every second, forever); stop()
-- tells each what is left of the server's stop budget (a line on its fd 3, read with
-- --stop-budget-fd: its telemetry drain is cut to fit), sends SIGTERM and waits for them. Their JSON Lines go to the server's stderr.
local uv = require "luv"
local rt = require "orket.c.runtime"

local M = {}
local Pool = {}
Pool.__index = Pool

M.RESTART_MS = 1000
M.RESTART_CAP_MS = 60000
-- a child that ran this long before it ended is failing afresh: started again after RESTART_MS
M.STEADY_MS = 60000

--- start{dir=, n=, bin=, args=, log=fn(fields)} -> pool
function M.start(o)
  local self = setmetatable({ dir = o.dir, n = o.n, bin = o.bin or uv.exepath(), args = o.args or {},
    log = o.log or function() end, kids = {}, stopping = false, fails = {}, timers = {} }, Pool)
  for k = 1, o.n do self:spawn(k) end
  return self
end

function Pool:spawn(k)
  if self.stopping then return end
  local args = { "worker", self.dir, "--with-parent", "--parent-pid", string.format("%d", uv.os_getpid()),
    "--stop-budget-fd", "3" }
  for _, a in ipairs(self.args) do args[#args + 1] = a end
  local handle, pid
  local budget = uv.new_pipe(false) -- the child's fd 3: what is left of the stop (stop())
  local started = uv.now()
  handle, pid = uv.spawn(self.bin, { args = args, stdio = { 0, 2, 2, budget } }, function(code, signal)
    handle:close()
    if not budget:is_closing() then budget:close() end
    self.kids[k] = nil
    if self.stopping then return end
    local fails = uv.now() - started >= M.STEADY_MS and 1 or (self.fails[k] or 0) + 1
    self.fails[k] = fails
    local wait = math.min(M.RESTART_MS << math.min(fails - 1, 30), M.RESTART_CAP_MS)
    self.log { event = "worker_exit", worker = k, pid = pid, code = code, signal = signal, restart_ms = wait,
      message = fails > 1 and string.format("worker %d ended %d times in a row soon after its start; started again "
        .. "in %g s (the wait doubles while it keeps ending, up to %g s)", k, fails, wait / 1000,
        M.RESTART_CAP_MS / 1000) or nil }
    local t = uv.new_timer()
    self.timers[t] = true
    t:start(wait, 0, function()
      self.timers[t] = nil
      t:close()
      self:spawn(k)
    end)
  end)
  if not handle then
    budget:close()
    self.log { event = "error", message = "orket serve: cannot start worker " .. k .. ": " .. tostring(pid) }
    return
  end
  self.kids[k] = { handle = handle, pid = pid, budget = budget }
end

--- pids() -> array of the live children's pids
function Pool:pids()
  local out = {}
  for _, kid in pairs(self.kids) do out[#out + 1] = kid.pid end
  table.sort(out)
  return out
end

--- stop([left_ms]): SIGTERM to every child, then waits (in a task) until they are gone.
--- left_ms: what is left of the server's stop budget, written to each child first (its
--- drain fits it: orket.cmd.worker's drain_within); nil: the children keep their own.
function Pool:stop(left_ms)
  self.stopping = true
  -- (a restart waiting its turn would hold the loop up to RESTART_CAP_MS)
  for t in pairs(self.timers) do
    if not t:is_closing() then t:close() end
  end
  self.timers = {}
  for _, kid in pairs(self.kids) do
    if left_ms and kid.budget then
      pcall(kid.budget.write, kid.budget, string.format("%d\n", math.max(0, math.floor(left_ms))))
    end
    pcall(kid.handle.kill, kid.handle, "sigterm")
  end
  while next(self.kids) do rt.sleep(20) end
end

return M
