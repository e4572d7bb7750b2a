-- orket.profile: a sampling profiler for the Lua side, for benchmarks and investigations.
-- A count hook samples the running thread every `every` VM instructions and charges the
-- wall time since the previous sample (luv's hrtime) to the sampled stack, so time spent in
-- C functions (SQLite, cjson, the script environment) lands on the Lua line that called them.
-- debug.sethook keeps a Lua hook per thread, so coroutines created while it runs are hooked
-- through a wrapped coroutine.create; a sandboxed script call (orket.scriptenv) chains our
-- hook to its budget's and restores it after, so the script's own lines are sampled (not
-- the coroutines a script makes: they are not hooked through coroutine.create).
local uv = require "luv"

local M = {}
local Profiler = {}
Profiler.__index = Profiler

local getinfo, sethook, hrtime = debug.getinfo, debug.sethook, uv.hrtime

--- start{every=, depth=, vm=, alloc=} -> profiler. Hooks the running thread (and so every
--- coroutine it creates from now on). every: instructions between samples (default 1000);
--- depth: frames charged inclusively above the sampled one (default 12); vm: charge each
--- sample its instructions instead of the wall time since the last (report() then counts
--- thousands of VM instructions), so a long C call (git, a commit's fsync) is not charged
--- to the next Lua line sampled; alloc: charge each sample the bytes the Lua heap grew by
--- since the last (report() then counts KB), with the collector stopped until stop() so
--- the heap only grows; it samples every 10 instructions unless every is given, so what a
--- line allocates (itself or in the C it calls) is charged to it. The profiler's own
--- allocations (its keys, getinfo's tables) are made after the heap is read and before it
--- is read again, so they are not charged.
function M.start(opts)
  opts = opts or {}
  local p = setmetatable({ self_ns = {}, incl_ns = {}, total_ns = 0, samples = 0, paused = false,
    every = opts.every or (opts.alloc and 10 or 1000), depth = opts.depth or 12 }, Profiler)
  local self_ns, incl_ns, depth = p.self_ns, p.incl_ns, p.depth
  local vm = opts.vm and p.every or nil
  local alloc = opts.alloc and true or false
  p.vm, p.alloc = vm ~= nil, alloc
  local seen = {}
  local last = hrtime()
  local heap -- alloc: the heap's size (KB) when the last sample was done with
  local charge
  p.hook = function()
    local dt
    if alloc then
      dt = (collectgarbage("count") - heap) * 1024
    else
      local now = hrtime()
      dt = vm or now - last
      last = now
    end
    if not p.paused then charge(dt) end
    if alloc then heap = collectgarbage("count") end
  end
  -- (called by the hook: the sampled function is 3 levels up, or 4 inside a sandboxed call,
  -- which calls the hook through a C function; count events fire only in Lua functions)
  charge = function(dt)
    p.samples = p.samples + 1
    p.total_ns = p.total_ns + dt
    local base = 3
    local info = getinfo(3, "Sl")
    if info and info.what == "C" then
      base = 4
      info = getinfo(4, "Sl")
    end
    if not info then return end
    local key = info.short_src .. ":" .. (info.currentline or 0)
    self_ns[key] = (self_ns[key] or 0) + dt
    -- inclusive: each distinct calling line up the stack, once per sample
    local n = 0
    for level = base, base + depth do
      local f = level == base and info or getinfo(level, "Sl")
      if not f then break end
      if f.what ~= "C" then
        local k = f.short_src .. ":" .. (f.currentline or 0)
        if seen[k] ~= p.samples then
          seen[k] = p.samples
          incl_ns[k] = (incl_ns[k] or 0) + dt
          n = n + 1
        end
      end
    end
  end
  p.reset_clock = function()
    last = hrtime()
    if alloc then heap = collectgarbage("count") end
  end
  if alloc then
    collectgarbage("stop")
    heap = collectgarbage("count")
  end
  local create = coroutine.create
  p.create = create
  coroutine.create = function(f)
    local co = create(f)
    sethook(co, p.hook, "", p.every)
    return co
  end
  sethook(p.hook, "", p.every)
  return p
end

--- pause() / resume(): time between them is not charged (e.g. waiting on a model).
function Profiler:pause() self.paused = true end

function Profiler:resume()
  self.reset_clock()
  self.paused = false
end

--- stop(): removes the hook from the running thread and stops hooking new coroutines
--- (those already hooked keep sampling into this profiler until they end).
function Profiler:stop()
  sethook()
  coroutine.create = self.create
  self.paused = true
  if self.alloc then collectgarbage("restart") end
end

local function top(t, n)
  local list = {}
  for k, v in pairs(t) do list[#list + 1] = { k, v } end
  table.sort(list, function(a, b) return a[2] > b[2] end)
  local out = {}
  for i = 1, math.min(n, #list) do out[i] = list[i] end
  return out
end

--- report(n, per) -> text: the n costliest lines by self time and by inclusive time, in
--- microseconds per `per` units (e.g. turns) and as a share of the sampled time.
function Profiler:report(n, per)
  n, per = n or 25, per or 1
  -- vm: thousands of instructions (1e3 of the "ns" charged) per unit, not microseconds;
  -- alloc: KB (1e3 bytes)
  local unit = self.vm and "k instructions" or self.alloc and "KB" or "us"
  local total_unit = self.vm and "k instructions" or self.alloc and "KB" or "ms"
  local out = { string.format("%d samples, %.1f %s sampled (%.1f %s per unit)", self.samples,
    self.total_ns / ((self.vm or self.alloc) and 1e3 or 1e6), total_unit, self.total_ns / 1e3 / per, unit) }
  for _, part in ipairs { { "self", self.self_ns }, { "inclusive", self.incl_ns } } do
    out[#out + 1] = "-- " .. part[1] .. " (" .. unit .. " per unit, share)"
    for _, e in ipairs(top(part[2], n)) do
      out[#out + 1] = string.format("%8.1f %5.1f%%  %s", e[2] / 1e3 / per, 100 * e[2] / math.max(1, self.total_ns), e[1])
    end
  end
  return table.concat(out, "\n")
end

return M
