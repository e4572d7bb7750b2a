-- orket.serve.workers: `orket serve --workers N` keeps N `orket worker` processes (children
-- of the server, same binary, same project) working the runs the server leaves to them
-- (POST /v1/runs then records the run for the workers instead of executing it here). Child
-- processes rather than tasks: a worker's blocking waits (a SQLite write lock, the git
-- lock) stall only itself, and a crash of one loses only its leases, which the others take
-- over. A child that ends while the server runs is started again after a second; stop()
-- sends SIGTERM to each and waits for them. Their JSON Lines go to the server's stderr.
local uv = require "luv"
local rt = require "orket.c.runtime"

local M = {}
local Pool = {}
Pool.__index = Pool

M.RESTART_MS = 1000

--- start{dir=, n=, bin=, args=, log=fn(fields)} -> pool
function M.start(o)
  local self = setmetatable({ dir = o.dir, n = o.n, bin = o.bin or uv.exepath(), args = o.args or {},
    log = o.log or function() end, kids = {}, stopping = false }, Pool)
  for k = 1, o.n do self:spawn(k) end
  return self
end

function Pool:spawn(k)
  if self.stopping then return end
  local args = { "worker", self.dir, "--with-parent" }
  for _, a in ipairs(self.args) do args[#args + 1] = a end
  local handle, pid
  handle, pid = uv.spawn(self.bin, { args = args, stdio = { 0, 2, 2 } }, function(code, signal)
    handle:close()
    self.kids[k] = nil
    if self.stopping then return end
    self.log { event = "worker_exit", worker = k, pid = pid, code = code, signal = signal }
    local t = uv.new_timer()
    t:start(M.RESTART_MS, 0, function()
      t:close()
      self:spawn(k)
    end)
  end)
  if not handle then
    self.log { event = "error", message = "orket serve: cannot start worker " .. k .. ": " .. tostring(pid) }
    return
  end
  self.kids[k] = { handle = handle, pid = pid }
end

--- pids() -> array of the live children's pids
function Pool:pids()
  local out = {}
  for _, kid in pairs(self.kids) do out[#out + 1] = kid.pid end
  table.sort(out)
  return out
end

--- stop(): SIGTERM to every child, then waits (in a task) until they are gone
function Pool:stop()
  self.stopping = true
  for _, kid in pairs(self.kids) do pcall(kid.handle.kill, kid.handle, "sigterm") end
  while next(self.kids) do rt.sleep(20) end
end

return M
