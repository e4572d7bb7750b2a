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
--- database counts together. max: the names kept at most (none: those full again are
--- dropped, no more), past it those that would be full again soonest go first. The now_ms its methods are given is ignored: the store's
--- buckets need one clock for every server, the database's on PostgreSQL, the machine's
--- wall clock on SQLite (orket.store.rate_buckets).
function M.shared(db, scope, o)
  assert(type(o) == "table" and o.rate and o.rate > 0 and o.burst and o.burst >= 1,
    "bad argument #3 to 'shared' (rate > 0 and burst >= 1 expected)")
  return setmetatable({ db = db, scope = scope, rate = o.rate, burst = o.burst, max = o.max }, Shared)
end

local function wall_ms()
  local s, us = uv.gettimeofday()
  return s * 1000 + us // 1000
end

-- When the store cannot be reached (a failover) the limit lets requests through: the key
-- or session they carry cannot be checked either, and they get 503 for that.

--- limiter:take(name): a token taken when there is one
function Shared:take(name)
  if buckets.take(self.db, self.scope, name, wall_ms(), self.rate, self.burst) and self.max then
    buckets.trim(self.db, self.scope, self.max, self.rate)
  end
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
