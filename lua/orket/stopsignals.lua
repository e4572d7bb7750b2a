-- orket.stopsignals: SIGINT, SIGTERM and SIGHUP for a long-running command (orket serve, orket
-- worker), and held around a short command's step that writes files (hold). The first one
-- stops a long-running command; from then on all three are ignored, so the kernel drops the
-- rest as they are sent. Handled one callback each, a storm of them (a supervisor's retry
-- loop) could be sent faster than the loop ran the callbacks: libuv reads its signal pipe
-- again while the read comes back full, and the stop never ended.
local uv = require "luv"
local rt = require "orket.c.runtime"

local M = {}

-- How long a statement of a stopping `orket serve` or `orket worker` may wait for its
-- store's answer: one that waits longer (the audit's checkpoint, a run's last writes, a
-- lease's release) takes the server for gone, and the stop's statements are given up
-- (orket.store.pgpool's stop_within), so a PostgreSQL that stopped answering (frozen, a
-- dropped network) cannot hold the stop past its 9 s (otel.STOP_BUDGET_MS); a store that
-- answers is never given up, however long the stop's own work takes.
M.STORE_MS = 6000

--- bound_store(db[, ms]): from now, db's statements wait at most ms (M.STORE_MS) each for
--- an answer (then the server is taken for gone); nothing to do on SQLite, whose statements
--- wait for no server
function M.bound_store(db, ms)
  if db and db.stop_within then db:stop_within(ms or M.STORE_MS) end
end

-- ignored_at_start() -> function(signum) -> whether the signal was ignored when this
-- process started (`nohup`, a script's `&`): the kernel's SigIgn mask (/proc/self/status),
-- bit N-1 for signal N. Such a signal stays ignored.
function M.ignored_at_start()
  local f = io.open("/proc/self/status", "r")
  local text = f and f:read("a") or ""
  if f then f:close() end
  local mask = tonumber(text:match("\nSigIgn:%s*(%x+)") or "0", 16) or 0
  return function(signum) return (mask >> (signum - 1)) & 1 == 1 end
end

--- names() -> the stop signals a long-running command handles, as luv names them: "sigint",
--- "sigterm" and "sighup" (its terminal closed), but not SIGHUP when it was ignored at the
--- start, as under nohup: the operator asked the command to outlive its terminal.
function M.names()
  local names = { "sigint", "sigterm" }
  if not M.ignored_at_start()(1) then names[#names + 1] = "sighup" end
  return names
end

--- on_stop(stop) -> the signal handles: stop(name) on the first of names()' signals, once.
--- Keep the handles open until the process ends (the runtime closes them last): closed,
--- the default action would be back, and a late SIGTERM would end it with 143.
function M.on_stop(stop)
  local handles, stopped = {}, false
  for _, name in ipairs(M.names()) do
    local h = uv.new_signal()
    h:start(name, function()
      if stopped then return end -- sent before the first was handled
      stopped = true
      rt.ignore_stop_signals()
      stop(name)
    end)
    handles[#handles + 1] = h
  end
  return handles
end

--- hold(fn) -> signal | nil, fn's results: fn run with SIGINT, SIGTERM and SIGHUP (those not
--- ignored when the process started) held until it returns, so that a short command's
--- step that writes files (init's project) ends whole or is undone by its
--- caller, never cut halfway. signal: "SIGINT", "SIGTERM" or "SIGHUP", the first sent
--- meanwhile; then each has its default action back.
function M.hold(fn)
  local got
  local handles = {}
  local ignored = M.ignored_at_start()
  for name, signum in pairs { sigint = 2, sigterm = 15, sighup = 1 } do
    if not ignored(signum) then
      local h = uv.new_signal()
      h:start(name, function() got = got or name:upper() end)
      handles[#handles + 1] = h
    end
  end
  local res = table.pack(pcall(fn))
  -- the loop reads the signals' pipe only when it runs: a command runs it once here, a
  -- task (the loop already running) waits a moment
  if not pcall(rt.run, "nowait") then rt.sleep(1) end
  for _, h in ipairs(handles) do
    h:stop()
    h:close()
  end
  -- fn raised: raised again, the signals given back first (else Ctrl-C would stay held)
  if not res[1] then error(res[2], 0) end
  return got, table.unpack(res, 2, res.n)
end

--- STATUS: a command a signal stopped exits as the signal would have ended it
M.STATUS = { SIGINT = 130, SIGTERM = 143, SIGHUP = 129 }

return M
