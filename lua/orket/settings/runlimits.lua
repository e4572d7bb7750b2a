-- orket.settings.runlimits: the limits of the programs agents run (acceptance checks and
-- tools with effect = "process"), as orket.lua's verify.limits and verify.tool_limits set
-- them. The server's defaults and ceilings are here, in one table: a project may set any
-- limit up to its ceiling, never past it. orket.settings checks the section; the engine
-- asks limits() for each run (orket.engine.verify). docs/verify.md, "Limits".
local M = {}

local GiB = 1024 * 1024 * 1024

-- name -> {default, max, min, what}. cpu_seconds has no default: a run's CPU limit is its
-- timeout plus a second (orket.c.proc), so a slow check is stopped by the timeout first.
M.CEILINGS = {
  cpu_seconds = { max = 86400, min = 1, what = "CPU seconds of each process" },
  memory = { default = 2 * GiB, max = 16 * GiB, min = 16 * 1024 * 1024, what = "bytes of data memory per process" },
  processes = { default = 1024, max = 4096, min = 8, what = "tasks at once (processes and threads)" },
  file_size = { default = GiB, max = 16 * GiB, min = 1024, what = "bytes of the largest file written" },
  open_files = { default = 256, max = 65536, min = 16, what = "open files per process" },
}

local NAMES = {}
for k in pairs(M.CEILINGS) do NAMES[#NAMES + 1] = k end
table.sort(NAMES)
M.NAMES = table.concat(NAMES, ", ")

--- check(v, path, fail) -> {name = n...}: one table of limits (verify.limits, or one tool's
--- in verify.tool_limits), each an integer within its ceiling; fail(path, fmt, ...) raises.
function M.check(v, path, fail)
  if type(v) ~= "table" then fail(path, "must be a table such as {processes = 256} (limits: %s)", M.NAMES) end
  local out = {}
  for k, n in pairs(v) do
    local p = path .. "." .. tostring(k)
    local c = M.CEILINGS[k]
    if not c then fail(p, "unknown limit (limits: %s)", M.NAMES) end
    if math.type(n) ~= "integer" and not (type(n) == "number" and n == math.floor(n) and n < 2 ^ 53) then
      fail(p, "must be an integer, not %s", type(n) == "number" and tostring(n) or type(n))
    end
    n = math.tointeger(n)
    if n < c.min or n > c.max then
      fail(p, "must be from %d to %d %s, the server's ceiling (got %d)", c.min, c.max, c.what, n)
    end
    out[k] = n
  end
  return out
end

--- tools(v, path, fail) -> {tool = limits...}: verify.tool_limits.
function M.tools(v, path, fail)
  if type(v) ~= "table" then fail(path, "must be a table such as {run_tests = {processes = 512}}") end
  local out = {}
  for tool, l in pairs(v) do
    if type(tool) ~= "string" or not tool:match("^[a-z][a-z0-9_]*$") then
      fail(path .. "." .. tostring(tool), "must name a tool (snake_case)")
    end
    out[tool] = M.check(l, path .. "." .. tool, fail)
  end
  return out
end

--- limits(v, tool) -> the limits of one run for the verify settings v: the defaults, the
--- project's verify.limits over them, then the tool's own (tool nil: the acceptance checks).
function M.limits(v, tool)
  local out = {}
  for k, c in pairs(M.CEILINGS) do out[k] = c.default end
  for k, n in pairs(v and v.limits or {}) do out[k] = n end
  local own = tool and v and v.tool_limits and v.tool_limits[tool]
  for k, n in pairs(own or {}) do out[k] = n end
  return out
end

return M
