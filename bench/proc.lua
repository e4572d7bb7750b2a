-- The process runner: spawn, confine and reap `true` with every layer (orket.c.proc.run),
-- against the floor measured in the same run, a bare uv.spawn of `true` on the same loop.
-- The two alternate over several rounds; every figure is printed with its floor, the ratio
-- and the difference, then min/median/max over the rounds. Target: every layer together
-- costs under 5 ms p50 above the floor. Then 100 confined runs in flight at once.
package.path = package.orket_home .. "/?.lua;" .. package.path
local uv = require "luv"
local proc = require "orket.c.proc"
local task = require "orket.task"

local ROUNDS = tonumber(arg[1]) or 5
local PER_ROUND = tonumber(arg[2]) or 40
local INFLIGHT = 100

local ws = os.tmpname()
os.remove(ws)
assert(uv.fs_mkdir(ws, tonumber("755", 8)))

-- One bare spawn of `true`, waited for on the loop; milliseconds.
local function bare_once()
  local co = coroutine.running()
  local t0 = uv.hrtime()
  local h
  h = uv.spawn("true", { args = {}, stdio = {} }, function(code)
    h:close()
    task.resume(co, code)
  end)
  local code = coroutine.yield()
  assert(code == 0, "true exited " .. tostring(code))
  return (uv.hrtime() - t0) / 1e6
end

local function confined_once(layers)
  local t0 = uv.hrtime()
  local r, msg = proc.run { argv = { "true" }, cwd = ws, layers = layers }
  assert(r and r.code == 0, msg or (r and r.stderr))
  return (uv.hrtime() - t0) / 1e6
end

local pct = require("bench.stats").pct

-- CPU seconds this process and its reaped children have used (/proc/self/stat: utime,
-- stime, cutime, cstime in clock ticks of 10 ms). Wall times on a busy machine mostly
-- measure the wait for a CPU; CPU time per run is what a run costs whatever the load.
local function cpu_ms()
  local f = assert(io.open("/proc/self/stat"))
  local line = f:read("l")
  f:close()
  local rest = line:match("%) (.*)$")
  local fields = {}
  for v in rest:gmatch("%S+") do fields[#fields + 1] = v end
  -- after the command: state is field 3, utime 14 .. cstime 17 (so 12 .. 15 here)
  local ticks = 0
  for i = 12, 15 do ticks = ticks + tonumber(fields[i]) end
  return ticks * 10
end

-- p50, p99 of n calls of fn(...) in ms, and the CPU ms per call
local function batch(fn, n, ...)
  local t = {}
  local c0 = cpu_ms()
  for i = 1, n do t[i] = fn(...) end
  local cpu = (cpu_ms() - c0) / n
  return pct(t, 0.5), pct(t, 0.99), cpu
end

-- n at once: wall milliseconds until the last one is reaped.
local function bare_inflight(n)
  local co = coroutine.running()
  local left = n
  local t0 = uv.hrtime()
  for _ = 1, n do
    local h
    h = uv.spawn("true", { args = {}, stdio = {} }, function()
      h:close()
      left = left - 1
      if left == 0 then task.resume(co) end
    end)
  end
  coroutine.yield()
  return (uv.hrtime() - t0) / 1e6
end

local function confined_inflight(n)
  local t0 = uv.hrtime()
  local tasks = {}
  for i = 1, n do tasks[i] = orket.spawn(confined_once) end
  for i = 1, n do assert(tasks[i]:join()) end
  return (uv.hrtime() - t0) / 1e6
end

local function mmm(list)
  return string.format("min %7.2f  median %7.2f  max %7.2f", require("bench.stats").spread(list))
end

local probe = proc.probe()
local layers = {}
for _, name in ipairs(proc.layers().optional) do
  if probe[name] then layers[#layers + 1] = name end
end
print(string.format("layers this kernel offers: %s (Landlock ABI %d)", table.concat(layers, " "), probe.landlock_abi))
print("confinement helper: " .. proc.helper())
confined_once() -- warm up: page cache, the runner's context
bare_once()

local rows = { floor50 = {}, floor99 = {}, all50 = {}, all99 = {}, none50 = {}, ratio = {}, above = {}, helper = {},
  fcpu = {}, acpu = {}, cpu_above = {} }
print(string.format("%-6s %12s %12s %12s %12s %14s %8s %10s %10s %10s", "round", "floor p50", "floor p99", "all p50",
  "all p99", "helper only p50", "ratio", "above ms", "floor cpu", "all cpu"))
local none = { userns = false, netns = false, pidns = false, landlock = false, seccomp = false, no_new_privs = false }
for round = 1, ROUNDS do
  local f50, f99, fcpu = batch(bare_once, PER_ROUND)
  local a50, a99, acpu = batch(confined_once, PER_ROUND)
  rows.fcpu[round], rows.acpu[round], rows.cpu_above[round] = fcpu, acpu, acpu - fcpu
  local n50 = batch(confined_once, PER_ROUND, none)
  rows.floor50[round], rows.floor99[round], rows.all50[round], rows.all99[round] = f50, f99, a50, a99
  rows.none50[round], rows.ratio[round], rows.above[round] = n50, a50 / f50, a50 - f50
  print(string.format("%-6d %9.2f ms %9.2f ms %9.2f ms %9.2f ms %11.2f ms %7.1fx %10.2f %7.2f ms %7.2f ms", round,
    f50, f99, a50, a99, n50, a50 / f50, a50 - f50, fcpu, acpu))
end
print("over " .. ROUNDS .. " rounds of " .. PER_ROUND .. " runs each:")
print("  floor p50 (bare uv.spawn true)   " .. mmm(rows.floor50) .. " ms")
print("  all layers p50                   " .. mmm(rows.all50) .. " ms")
print("  all layers p99                   " .. mmm(rows.all99) .. " ms")
print("  helper, no optional layer, p50   " .. mmm(rows.none50) .. " ms")
print("  ratio all/floor (p50)            " .. mmm(rows.ratio) .. " x")
print("  all layers above the floor (p50) " .. mmm(rows.above) .. " ms   (target < 5 ms)")
print("  CPU per run, floor                " .. mmm(rows.fcpu) .. " ms   (this process and its children)")
print("  CPU per run, all layers           " .. mmm(rows.acpu) .. " ms")
print("  CPU per run above the floor       " .. mmm(rows.cpu_above) .. " ms")

print(string.format("%d at once:", INFLIGHT))
local fl, al, ratios = {}, {}, {}
for round = 1, 3 do
  fl[round] = bare_inflight(INFLIGHT)
  al[round] = confined_inflight(INFLIGHT)
  ratios[round] = al[round] / fl[round]
  print(string.format("  round %d: floor %8.2f ms  all layers %8.2f ms  ratio %5.1fx", round, fl[round], al[round],
    ratios[round]))
end
print("  floor        " .. mmm(fl) .. " ms")
print("  all layers   " .. mmm(al) .. " ms")
print("  ratio        " .. mmm(ratios) .. " x")
uv.fs_rmdir(ws)
