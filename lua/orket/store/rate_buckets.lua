-- orket.store.rate_buckets: token buckets kept in the store, for the limits every `orket
-- serve` on one database must share (failed authentications per address: a guesser gains
-- nothing by spreading its tries over the servers). A bucket holds up to `burst` tokens
-- and gains `rate` a second; times are wall-clock milliseconds, the same on every server.
-- The take is one statement, so two servers taking at once both count. Written once for
-- both backends (orket.store.dialect).
local M = {}

-- the tokens a bucket holds now: at most burst (?3), refilled at rate (?5) since at_ms
local REFILLED = "CASE WHEN rate_buckets.tokens + (?4 - rate_buckets.at_ms) * ?5 / 1000.0 < ?3 "
  .. "THEN rate_buckets.tokens + (?4 - rate_buckets.at_ms) * ?5 / 1000.0 ELSE ?3 END"

--- take(db, scope, name, now_ms, rate, burst) -> changes | nil, msg, CODE: one token if
--- the bucket has one (a new bucket starts full); the buckets of scope full again by now
--- are dropped
function M.take(db, scope, name, now_ms, rate, burst)
  local ok, err, code = db:run("INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES (?1, ?2, ?3 - 1, ?4) "
    .. "ON CONFLICT (scope, name) DO UPDATE SET tokens = CASE WHEN " .. REFILLED .. " >= 1 THEN " .. REFILLED
    .. " - 1 ELSE " .. REFILLED .. " END, at_ms = ?4", scope, name, burst, now_ms, rate)
  if not ok then return nil, err, code end
  return db:run("DELETE FROM rate_buckets WHERE scope = ? AND at_ms < ?", scope, now_ms - math.ceil(burst / rate * 1000))
end

--- row(db, scope, name) -> {tokens=, at_ms=} | false (never taken from, or full again and
--- dropped) | nil, msg, CODE
function M.row(db, scope, name)
  local rows, err, code = db:rows("SELECT tokens, at_ms FROM rate_buckets WHERE scope = ? AND name = ?", scope, name)
  if not rows then return nil, err, code end
  return rows[1] or false
end

--- refilled(row, now_ms, rate, burst) -> the tokens a bucket of row (as M.row gives it)
--- holds at now_ms
function M.refilled(row, now_ms, rate, burst)
  if not row then return burst end
  return math.min(burst, row.tokens + (now_ms - row.at_ms) * rate / 1000)
end

--- tokens(db, scope, name, now_ms, rate, burst) -> the tokens the bucket holds now (burst
--- for one never taken from) | nil, msg, CODE
function M.tokens(db, scope, name, now_ms, rate, burst)
  local row, err, code = M.row(db, scope, name)
  if row == nil then return nil, err, code end
  return M.refilled(row, now_ms, rate, burst)
end

return M
