-- orket.profile: a sampling profiler for the Lua side, for benchmarks and investigations.
-- A count hook samples the running thread every `every` VM instructions and charges the
-- wall time since the previous sample (luv's hrtime) to the sampled stack, so time spent in
-- C functions (SQLite, cjson, the sandbox) lands on the Lua line that called them.
-- debug.sethook keeps a Lua hook per thread, so coroutines created while it runs are hooked
-- through a wrapped coroutine.create; sandboxed calls swap in their budget hook and restore
-- ours, so their time goes to the caller's line.
local uv = require "luv"

local M = {}
local Profiler = {}
Profiler.__index = Profiler

local getinfo, sethook, hrtime = debug.getinfo, debug.sethook, uv.hrtime

--- start{every=, depth=, vm=} -> profiler. Hooks the running thread (and so every coroutine it
--- creates from now on). every: instructions between samples (default 1000); depth: frames
--- charged inclusively above the sampled one (default 12); vm: charge each sample its
--- instructions instead of the wall time since the last (report() then counts thousands of
--- VM instructions), so a long C call (git, a commit's fsync) is not charged to the next
--- Lua line sampled.
function M.start(opts)
  opts = opts or {}
  local p = setmetatable({ self_ns = {}, incl_ns = {}, total_ns = 0, samples = 0, paused = false,
    every = opts.every or 1000, depth = opts.depth or 12 }, Profiler)
  local self_ns, incl_ns, depth = p.self_ns, p.incl_ns, p.depth
  local vm = opts.vm and p.every or nil
  p.vm = vm ~= nil
  local seen = {}
  local last = hrtime()
  p.hook = function()
    local now = hrtime()
    local dt = vm or now - last
    last = now
    if p.paused then return end
    p.samples = p.samples + 1
    p.total_ns = p.total_ns + dt
    local info = getinfo(2, "Sl")
    if not info then return end
    local key = info.short_src .. ":" .. (info.currentline or 0)
    self_ns[key] = (self_ns[key] or 0) + dt
    -- inclusive: each distinct calling line up the stack, once per sample
    local n = 0
    for level = 2, 2 + depth do
      local f = level == 2 and info or getinfo(level, "Sl")
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
  p.reset_clock = function() last = hrtime() end
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
  -- vm: thousands of instructions (1e3 of the "ns" charged) per unit, not microseconds
  local unit = self.vm and "k instructions" or "us"
  local out = { string.format("%d samples, %.1f %s sampled (%.1f %s per unit)", self.samples,
    self.total_ns / (self.vm and 1e3 or 1e6), self.vm and "k instructions" or "ms", self.total_ns / 1e3 / per, unit) }
  for _, part in ipairs { { "self", self.self_ns }, { "inclusive", self.incl_ns } } do
    out[#out + 1] = "-- " .. part[1] .. " (" .. unit .. " per unit, share)"
    for _, e in ipairs(top(part[2], n)) do
      out[#out + 1] = string.format("%8.1f %5.1f%%  %s", e[2] / 1e3 / per, 100 * e[2] / math.max(1, self.total_ns), e[1])
    end
  end
  return table.concat(out, "\n")
end

return M
