-- orket.engine.fault: named fault points for the kill-and-resume tests. With
-- ORKET_FAULT=NAME:N in the environment, the Nth time the engine reaches point NAME the
-- process sends itself SIGKILL (a real kill -9: nothing is flushed or cleaned up); with
-- ORKET_FAULT=NAME:N:stop, SIGSTOP instead (a process stalled there until the test sends
-- SIGCONT, as a loaded machine may stall it). Without the variable every point is a table
-- lookup and nothing else.
local uv = require "luv"

local M = {}
M.POINTS = { "before_model", "after_model", "before_tool", "after_tool", "before_effect", "after_effect",
  "after_transition", "turn_end", "after_git_commit", "after_git_merge",
  "after_git_merge_main", "after_git_push", "after_pull_request", "mid_verify", "after_take_in_conflict",
  "after_take_in", "before_take_in_merge", "after_restore_copy", "after_restore_entry",
  "in_renewal", "in_claim", "init_step" }

local spec = os.getenv("ORKET_FAULT")
local target, count, signal = nil, 0, "sigkill"
if spec and spec ~= "" then
  local name, n, how = spec:match("^([%w_]+):(%d+):?(%a*)$")
  target, count = name or spec, tonumber(n) or 1
  if how == "stop" then signal = "sigstop" end
end
local seen = 0

--- hit(name): called by the engine at each named point
function M.hit(name)
  if target ~= name then return end
  seen = seen + 1
  if seen == count then
    io.stdout:flush()
    uv.kill(uv.os_getpid(), signal)
  end
end

return M
