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

--- serve(orket, dir, limits) -> {port=, pid=, stop()}: `orket serve` in dir as its own
--- process on an ephemeral loopback port, ORKET_SERVE_LIMITS=limits, its request log read
--- and dropped; returns in the calling task once it listens. stop() sends SIGTERM.
function M.serve(orket, dir, limits)
  local co = coroutine.running()
  local out, errp = uv.new_pipe(false), uv.new_pipe(false)
  local h, pid = assert(uv.spawn(orket, { args = { "serve", dir, "--listen", "127.0.0.1:0" },
    env = { "ORKET_SERVE_LIMITS=" .. limits, "PATH=" .. os.getenv("PATH"), "NO_COLOR=1", "ORKET_HISTORY=" },
    stdio = { nil, out, errp } }, function() end))
  errp:read_start(function() end)
  local buf, port = ""
  out:read_start(function(_, data)
    if port or not data then return end
    buf = buf .. data
    local p = buf:match("listening on http://[%d.]+:(%d+)")
    if p then
      port = tonumber(p)
      task.resume(co)
    end
  end)
  coroutine.yield()
  return { port = port, pid = pid, stop = function()
    h:kill("sigterm")
    out:close()
    errp:close()
    h:close()
  end }
end

return M
