-- orket.serve.ratelimit: token buckets by name (a key id, a client address). Each bucket
-- holds up to `burst` tokens and gains `rate` a second; a request takes one. The buckets
-- kept in memory are C's (core/ratelimit.c, orket.c.ratelimit), so that /health, answered
-- in C (core/health.c), takes from the same ones: a bounded table (past `max` names the
-- full ones are forgotten, and if none is full the oldest half goes, so a flood of
-- addresses cannot grow it without end). The buckets shared by every server are the
-- store's (orket.store.rate_buckets).
local crl = require "orket.c.ratelimit"
local buckets = require "orket.store.rate_buckets"
local uv = require "luv"

local M = {}

--- new{rate=, burst=, max=} -> limiter (rate: tokens a second; max: names kept, 10000):
--- limiter:take(name, now_ms) -> true | false, retry_after_seconds (a whole number >= 1);
--- limiter:empty(name, now_ms) -> false | retry_after_seconds, whether a take would fail,
--- without taking; limiter:count() -> the names kept
function M.new(o)
  assert(type(o) == "table" and o.rate and o.rate > 0 and o.burst and o.burst >= 1,
    "bad argument #1 to 'new' (rate > 0 and burst >= 1 expected)")
  return crl.new(o.rate, o.burst, o.max or 10000)
end

-- ---- shared by every server: the buckets in the store -----------------------------------

local Shared = {}
Shared.__index = Shared

--- shared(db, scope, {rate=, burst=[, max=]}) -> a limiter with take and empty as above, its
--- buckets in the store (orket.store.rate_buckets) under scope, so every `orket serve` on one
--- database counts together, and reserve and give back (below). max: the names kept at most
--- (none: those full again are dropped, no more): past it, those that would be full again
--- soonest go first, never one held off now; when every other is held off, a new name is
--- not kept but counted in one bucket all such names share (M.OVERFLOW). The now_ms its
--- methods are given is ignored: the store's buckets need one clock for every server, the
--- database's on PostgreSQL, the machine's wall clock on SQLite (orket.store.rate_buckets).
function M.shared(db, scope, o)
  assert(type(o) == "table" and o.rate and o.rate > 0 and o.burst and o.burst >= 1,
    "bad argument #3 to 'shared' (rate > 0 and burst >= 1 expected)")
  assert(o.max == nil or (math.type(o.max) == "integer" and o.max >= 1),
    "bad argument #3 to 'shared' (max: a whole number >= 1 expected)")
  return setmetatable({ db = db, scope = scope, rate = o.rate, burst = o.burst, max = o.max }, Shared)
end

--- The bucket the names past max share while the names kept are all held off
M.OVERFLOW = buckets.OVERFLOW

local function wall_ms()
  local s, us = uv.gettimeofday()
  return s * 1000 + us // 1000
end

-- When the store cannot be reached (a failover) the limit lets requests through: the key
-- or session they carry cannot be checked either, and they get 503 for that.

-- the bucket a name new to a full scope is counted in: its own when the scope has room or
-- room is made (others not held off dropped), else the overflow's, its own forgotten (a
-- name being guessed at is never freed to make room) -> the bucket's name
function Shared:_kept(name, now)
  if not self.max or name == M.OVERFLOW then return name end
  if buckets.trim(self.db, self.scope, self.max, self.rate, name, now) ~= false then return name end
  buckets.clear(self.db, self.scope, name)
  return M.OVERFLOW
end

--- limiter:take(name): a token taken when there is one
function Shared:take(name)
  local now = wall_ms()
  local new = self.max and buckets.row(self.db, self.scope, name) == false
  if not buckets.take(self.db, self.scope, name, now, self.rate, self.burst) then return end
  -- only a name new to the scope can take it past max: the count is not paid for the others
  if new and self:_kept(name, now) == M.OVERFLOW then
    buckets.take(self.db, self.scope, M.OVERFLOW, now, self.rate, self.burst)
  end
end

--- limiter:reserve(name) -> bucket (the name a token was taken from: name's, or M.OVERFLOW)
--- | false, retry_after_seconds: a token taken only when there is one, in one statement,
--- so that servers asking at once never get more tokens than there are (the check it
--- guards is done after, on the token: a failure keeps it taken, a success gives it back).
--- The store unreachable: name (let through, as above)
function Shared:reserve(name)
  local now = wall_ms()
  local new = self.max and buckets.row(self.db, self.scope, name) == false
  local got = buckets.take_if(self.db, self.scope, name, now, self.rate, self.burst)
  if got == nil then return name end
  local bucket = name
  if got and new then
    bucket = self:_kept(name, now)
    if bucket == M.OVERFLOW then got = buckets.take_if(self.db, self.scope, bucket, now, self.rate, self.burst) end
    if got == nil then return bucket end
  end
  if got then return bucket end
  return false, self:empty(bucket) or 1
end

--- limiter:give(bucket): a token reserve took given back (the check it guarded succeeded,
--- or could not be done)
function Shared:give(bucket)
  buckets.give(self.db, self.scope, bucket, wall_ms(), self.rate, self.burst)
end

-- The rows read under one store stamp, 1024 names at most (then all dropped)
M.MAX_KEPT = 1024

--- limiter:empty(name[, _, own, dv]) -> false | retry_after_seconds. With the store's stamp
--- (db.conn:stamp(), read before: SQLite's), the bucket's row is kept while the stamp stays
--- the same: neither this connection nor another wrote to the store since it was read, so
--- it is still the row (the tokens it holds now are worked out from it and the clock)
function Shared:empty(name, _, own, dv)
  local now = wall_ms()
  local tokens
  if own then
    if own ~= self.own or dv ~= self.dv then self.own, self.dv, self.rows, self.nrows = own, dv, {}, 0 end
    local row = self.rows[name]
    if row == nil then
      row = buckets.row(self.db, self.scope, name)
      if row == nil then return false end -- the store unreachable: as below
      if self.nrows >= M.MAX_KEPT then self.rows, self.nrows = {}, 0 end
      self.rows[name], self.nrows = row, self.nrows + 1
    end
    tokens = buckets.refilled(row, now, self.rate, self.burst)
  else
    tokens = buckets.tokens(self.db, self.scope, name, now, self.rate, self.burst)
  end
  if not tokens or tokens >= 1 then return false end
  return crl.retry_after(tokens, self.rate)
end

return M
