-- orket.store.rate_buckets: token buckets kept in the store, for the limits every `orket
-- serve` on one database must share (failed authentications per address: a guesser gains
-- nothing by spreading its tries over the servers). A bucket holds up to `burst` tokens
-- and gains `rate` a second. Times are milliseconds of one clock for every server: on
-- PostgreSQL the database's (statement_timestamp(), as the leases use now()), since the
-- servers' clocks may disagree; on SQLite, one machine's, the caller's now_ms. A bucket
-- stamped later than now (a clock stepped back) gains nothing until then, and never loses
-- tokens: a server whose clock is behind another's once read every bucket that one wrote
-- as emptied by the skew, and refused valid keys. The take is one statement, so two
-- servers taking at once both count. Written once for both backends.
local M = {}

-- The database's clock in milliseconds (PostgreSQL)
local PG_NOW = "(floor(extract(epoch FROM statement_timestamp()) * 1000))::bigint"

-- the statements for a backend: on PostgreSQL now is the database's, and the caller's
-- now_ms is not a parameter (rate is ?4 there, ?5 on SQLite)
local function statements(pg)
  local now, rate = pg and PG_NOW or "?4", pg and "?4" or "?5"
  local elapsed = "(CASE WHEN " .. now .. " > rate_buckets.at_ms THEN " .. now .. " - rate_buckets.at_ms ELSE 0 END)"
  local gained = "rate_buckets.tokens + " .. elapsed .. " * " .. rate .. " / 1000.0"
  -- the tokens a bucket holds now: at most burst (?3)
  local refilled = "CASE WHEN " .. gained .. " < ?3 THEN " .. gained .. " ELSE ?3 END"
  return {
    take = "INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES (?1, ?2, ?3 - 1, " .. now .. ") "
      .. "ON CONFLICT (scope, name) DO UPDATE SET tokens = CASE WHEN " .. refilled .. " >= 1 THEN " .. refilled
      .. " - 1 ELSE " .. refilled .. " END, at_ms = " .. now,
    -- ?2: how long a bucket takes to fill (ms); ?3 (SQLite): now
    drop = "DELETE FROM rate_buckets WHERE scope = ?1 AND at_ms < " .. (pg and PG_NOW or "?3") .. " - ?2",
    row = "SELECT tokens, at_ms" .. (pg and ", " .. PG_NOW .. " AS now_ms" or "")
      .. " FROM rate_buckets WHERE scope = ?1 AND name = ?2",
  }
end
local SQL = { sqlite = statements(false), pg = statements(true) }
local function sql(db) return db.backend == "pg" and SQL.pg or SQL.sqlite end

--- take(db, scope, name, now_ms, rate, burst) -> changes | nil, msg, CODE: one token if
--- the bucket has one (a new bucket starts full); the buckets of scope full again by now
--- are dropped. now_ms: the caller's clock, used on SQLite only
function M.take(db, scope, name, now_ms, rate, burst)
  local pg = db.backend == "pg"
  local s, fill_ms = sql(db), math.ceil(burst / rate * 1000)
  local ok, err, code
  if pg then ok, err, code = db:run(s.take, scope, name, burst, rate)
  else ok, err, code = db:run(s.take, scope, name, burst, now_ms, rate) end
  if not ok then return nil, err, code end
  if pg then return db:run(s.drop, scope, fill_ms) end
  return db:run(s.drop, scope, fill_ms, now_ms)
end

-- The names of a scope beyond max, least held back first: those whose buckets would be full
-- again soonest (?3: rate). A flood of names tried once each is forgotten before a name
-- emptied by its guesses is.
local TRIM_COUNT = "SELECT count(*) AS n FROM rate_buckets WHERE scope = ?1"
local TRIM = "DELETE FROM rate_buckets WHERE scope = ?1 AND name IN (SELECT name FROM rate_buckets WHERE scope = ?1 "
  .. "ORDER BY at_ms - tokens * 1000.0 / ?3, name LIMIT ?2)"

--- trim(db, scope, max, rate) -> true | nil, msg, CODE: keeps at most max buckets of scope,
--- dropping those that would be full again soonest
function M.trim(db, scope, max, rate)
  local row, err, code = db:row(TRIM_COUNT, scope)
  if not row then return nil, err, code end
  local over = math.floor((tonumber(row.n) or 0) - max)
  if over <= 0 then return true end
  return db:run(TRIM, scope, over, rate)
end

--- clear(db, scope, name) -> changes (1: the name had a bucket, 0: none) | nil, msg, CODE:
--- forgets the name's bucket, as if never taken from (an admin's unlock)
function M.clear(db, scope, name)
  return db:run("DELETE FROM rate_buckets WHERE scope = ?1 AND name = ?2", scope, name)
end

--- row(db, scope, name) -> {tokens=, at_ms=[, now_ms= the database's clock (PostgreSQL)]}
--- | false (never taken from, or full again and dropped) | nil, msg, CODE
function M.row(db, scope, name)
  local rows, err, code = db:rows(sql(db).row, scope, name)
  if not rows then return nil, err, code end
  return rows[1] or false
end

--- refilled(row, now_ms, rate, burst) -> the tokens a bucket of row (as M.row gives it)
--- holds at now_ms (the row's own now_ms, the database's clock, when it has one)
function M.refilled(row, now_ms, rate, burst)
  if not row then return burst end
  local elapsed = math.max(0, (row.now_ms or now_ms) - row.at_ms)
  return math.min(burst, row.tokens + elapsed * rate / 1000)
end

--- tokens(db, scope, name, now_ms, rate, burst) -> the tokens the bucket holds now (burst
--- for one never taken from) | nil, msg, CODE
function M.tokens(db, scope, name, now_ms, rate, burst)
  local row, err, code = M.row(db, scope, name)
  if row == nil then return nil, err, code end
  return M.refilled(row, now_ms, rate, burst)
end

return M
