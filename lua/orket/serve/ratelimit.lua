-- orket.serve.ratelimit: token buckets by name (a key id, a client address). Each bucket
-- holds up to `burst` tokens and gains `rate` a second; a request takes one. The table of
-- buckets is bounded: past `max` names, the full ones (idle clients) are forgotten, and if
-- none is full the oldest half goes, so a flood of addresses cannot grow it without end.
local buckets = require "orket.store.rate_buckets"
local uv = require "luv"

local M = {}

local Limiter = {}
Limiter.__index = Limiter

-- the whole seconds (at least 1) until a bucket of `tokens` has one again
local function retry_after(tokens, rate) return math.max(1, math.ceil((1 - tokens) / rate)) end

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
  return false, retry_after(b.tokens, self.rate)
end

--- limiter:empty(name, now_ms) -> false | retry_after_seconds: whether a take would fail,
--- without taking
function Limiter:empty(name, now)
  local b = self.buckets[name]
  if not b then return false end
  refill(self, b, now)
  if b.tokens >= 1 then return false end
  return retry_after(b.tokens, self.rate)
end

-- ---- shared by every server: the buckets in the store -----------------------------------

local Shared = {}
Shared.__index = Shared

--- shared(db, scope, {rate=, burst=}) -> a limiter with take and empty as above, its buckets
--- in the store (orket.store.rate_buckets) under scope, so every `orket serve` on one
--- database counts together. The now_ms its methods are given is ignored: the store's
--- buckets need the wall clock, the same on every server.
function M.shared(db, scope, o)
  assert(type(o) == "table" and o.rate and o.rate > 0 and o.burst and o.burst >= 1,
    "bad argument #3 to 'shared' (rate > 0 and burst >= 1 expected)")
  return setmetatable({ db = db, scope = scope, rate = o.rate, burst = o.burst }, Shared)
end

local function wall_ms()
  local s, us = uv.gettimeofday()
  return s * 1000 + us // 1000
end

-- When the store cannot be reached (a failover) the limit lets requests through: the key
-- or session they carry cannot be checked either, and they get 503 for that.

--- limiter:take(name): a token taken when there is one
function Shared:take(name)
  buckets.take(self.db, self.scope, name, wall_ms(), self.rate, self.burst)
end

--- limiter:empty(name) -> false | retry_after_seconds
function Shared:empty(name)
  local tokens = buckets.tokens(self.db, self.scope, name, wall_ms(), self.rate, self.burst)
  if not tokens or tokens >= 1 then return false end
  return retry_after(tokens, self.rate)
end

return M
