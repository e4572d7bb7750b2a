-- orket.handles: every luv handle the process makes is noted (weakly, so a handle dropped
-- and collected goes as usual), and the runtime closes those still open before the Lua
-- state goes (core/runtime.c, rt_close): luv's close callback needs Lua alive, and a
-- handle left open at exit would otherwise be finished after lua_close, a crash.
local uv = require "luv"

local M = {}

-- luv's constructors of handles (requests and threads are not handles)
M.MAKERS = { "new_timer", "new_prepare", "new_check", "new_idle", "new_async", "new_poll", "new_socket_poll",
  "new_signal", "new_tcp", "new_pipe", "new_tty", "new_udp", "new_fs_event", "new_fs_poll", "spawn" }

local open = setmetatable({}, { __mode = "k" })
local tracking = false

--- track(): from now on every handle made through luv is noted (idempotent); the runtime
--- calls close_all at exit (the registry's "orket.close_handles").
function M.track()
  if tracking then return end
  tracking = true
  for _, name in ipairs(M.MAKERS) do
    local make = uv[name]
    if make then
      uv[name] = function(...)
        local h, a, b = make(...)
        if h ~= nil then open[h] = true end
        return h, a, b
      end
    end
  end
  debug.getregistry()["orket.close_handles"] = M.close_all
end

--- close_all() -> how many were closed: closes each noted handle not closed yet; their
--- close callbacks run on the loop's next pass, while Lua is still there.
function M.close_all()
  local n = 0
  for h in pairs(open) do
    local ok, closing = pcall(h.is_closing, h)
    if ok and not closing then
      pcall(h.close, h)
      n = n + 1
    end
  end
  return n
end

return M
