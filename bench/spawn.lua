-- bench.spawn: running a program (wrk, a helper) to its end from a benchmark's task, on the
-- loop; one implementation for every bench that reads a program's output. Uses luv and
-- orket.task.
local uv = require "luv"
local task = require "orket.task"

local M = {}

--- run(file, args) -> exit code, stdout: file spawned with args (stderr passed through),
--- waited for in the calling task until it exits and its output ends
function M.run(file, args)
  local co = coroutine.running()
  local out, chunks = uv.new_pipe(false), {}
  local code, closed, h
  local function done()
    if code ~= nil and closed then task.resume(co) end
  end
  h = assert(uv.spawn(file, { args = args, stdio = { nil, out, 2 } }, function(c)
    h:close()
    code = c
    done()
  end))
  out:read_start(function(_, data)
    if data then chunks[#chunks + 1] = data return end
    out:close()
    closed = true
    done()
  end)
  coroutine.yield()
  return code, table.concat(chunks)
end

return M
