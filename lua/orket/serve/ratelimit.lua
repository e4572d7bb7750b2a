-- orket.serve.ratelimit: token buckets by name (a key id, a client address). Each bucket
-- holds up to `burst` tokens and gains `rate` a second; a request takes one. The table of
-- buckets is bounded: past `max` names, the full ones (idle clients) are forgotten, and if
-- none is full the oldest half goes, so a flood of addresses cannot grow it without end.
local M = {}

local Limiter = {}
Limiter.__index = Limiter

--- new{rate=, burst=, max=} -> limiter (rate: tokens a second; max: names kept, 10000)
function M.new(o)
  assert(type(o) == "table" and o.rate and o.rate > 0 and o.burst and o.burst >= 1,
    "bad argument #1 to 'new' (rate > 0 and burst >= 1 expected)")
  return setmetatable({ rate = o.rate, burst = o.burst, max = o.max or 10000, buckets = {}, n = 0 }, Limiter)
end

local function refill(self, b, now)
  b.tokens = math.min(self.burst, b.tokens + (now - b.at) / 1000 * self.rate)
  b.at = now
end

function Limiter:_prune(now)
  local keep, n = {}, 0
  for k, b in pairs(self.buckets) do
    refill(self, b, now)
    if b.tokens < self.burst then keep[k], n = b, n + 1 end
  end
  if n >= self.max then -- everyone is busy: forget the least recently seen half
    local list = {}
    for k, b in pairs(keep) do list[#list + 1] = { k = k, at = b.seen } end
    table.sort(list, function(a, c) return a.at < c.at end)
    for i = 1, #list // 2 do keep[list[i].k] = nil; n = n - 1 end
  end
  self.buckets, self.n = keep, n
end

local function bucket(self, name, now)
  local b = self.buckets[name]
  if not b then
    if self.n >= self.max then self:_prune(now) end
    b = { tokens = self.burst, at = now }
    self.buckets[name] = b
    self.n = self.n + 1
  end
  refill(self, b, now)
  b.seen = now
  return b
end

--- limiter:take(name, now_ms) -> true | false, retry_after_seconds (a whole number >= 1)
function Limiter:take(name, now)
  local b = bucket(self, name, now)
  if b.tokens >= 1 then
    b.tokens = b.tokens - 1
    return true
  end
  return false, math.max(1, math.ceil((1 - b.tokens) / self.rate))
end

--- limiter:empty(name, now_ms) -> false | retry_after_seconds: whether a take would fail,
--- without taking
function Limiter:empty(name, now)
  local b = self.buckets[name]
  if not b then return false end
  refill(self, b, now)
  if b.tokens >= 1 then return false end
  return math.max(1, math.ceil((1 - b.tokens) / self.rate))
end

return M
