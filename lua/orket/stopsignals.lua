-- orket.stopsignals: SIGINT and SIGTERM for a long-running command (orket serve, orket
-- worker). The first one stops it; from then on both are ignored, so the kernel drops the
-- rest as they are sent. Handled one callback each, a storm of them (a supervisor's retry
-- loop) could be sent faster than the loop ran the callbacks: libuv reads its signal pipe
-- again while the read comes back full, and the stop never ended.
local uv = require "luv"
local rt = require "orket.c.runtime"

local M = {}

--- on_stop(stop) -> the signal handles: stop(name) on the first SIGINT or SIGTERM, once.
--- Keep the handles open until the process ends (the runtime closes them last): closed,
--- the default action would be back, and a late SIGTERM would end it with 143.
function M.on_stop(stop)
  local handles, stopped = {}, false
  for _, name in ipairs { "sigint", "sigterm" } do
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

return M
