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

--- The bucket the names past a scope's cap share while every name kept is held off
--- (orket.serve.ratelimit): longer than any name a request can bring (a sign-in's user: 64
--- characters at most), so no one's; never trimmed, nor counted among the names kept.
M.OVERFLOW = "(the names past the cap, counted together while every name kept is held off)"
local NOT_OVERFLOW = " AND name <> '" .. M.OVERFLOW .. "'"

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
  local take = "INSERT INTO rate_buckets (scope, name, tokens, at_ms) VALUES (?1, ?2, ?3 - 1, " .. now .. ") "
    .. "ON CONFLICT (scope, name) DO UPDATE SET tokens = CASE WHEN " .. refilled .. " >= 1 THEN " .. refilled
    .. " - 1 ELSE " .. refilled .. " END, at_ms = " .. now
  return {
    take = take,
    -- one token only when there is one, in one statement: two servers asking for the last
    -- token at once do not both get it (1 change: taken; 0: none there)
    take_if = take .. " WHERE " .. refilled .. " >= 1",
    -- a token given back: the bucket dropped when it is full again (forgotten, as below)
    give_drop = "DELETE FROM rate_buckets WHERE scope = ?1 AND name = ?2 AND " .. refilled .. " + 1 >= ?3",
    give = "UPDATE rate_buckets SET tokens = CASE WHEN " .. refilled .. " + 1 < ?3 THEN " .. refilled
      .. " + 1 ELSE ?3 END, at_ms = " .. now .. " WHERE scope = ?1 AND name = ?2",
    -- ?2: how long a bucket takes to fill (ms); ?3 (SQLite): now
    drop = "DELETE FROM rate_buckets WHERE scope = ?1 AND at_ms < " .. (pg and PG_NOW or "?3") .. " - ?2",
    row = "SELECT tokens, at_ms" .. (pg and ", " .. PG_NOW .. " AS now_ms" or "")
      .. " FROM rate_buckets WHERE scope = ?1 AND name = ?2",
    -- the names of scope ?1 beyond the cap (?3 of them), but ?2 (the one just taken from)
    -- and those held off now (under a token: never freed by a flood of other names), least
    -- held back first: those that would be full again soonest
    trim = "DELETE FROM rate_buckets WHERE scope = ?1 AND name IN (SELECT name FROM rate_buckets WHERE scope = ?1 "
      .. "AND name <> ?2" .. NOT_OVERFLOW .. " AND " .. gained .. " >= 1 ORDER BY at_ms - tokens * 1000.0 / " .. rate .. ", name LIMIT ?3)",
  }
end
local SQL = { sqlite = statements(false), pg = statements(true) }
local function sql(db) return db.backend == "pg" and SQL.pg or SQL.sqlite end

-- run(db, statement, scope, name, burst, now_ms, rate): a statement of the bucket's, its
-- parameters as the backend numbers them (no now_ms on PostgreSQL)
local function run(db, st, scope, name, burst, now_ms, rate)
  if db.backend == "pg" then return db:run(sql(db)[st], scope, name, burst, rate) end
  return db:run(sql(db)[st], scope, name, burst, now_ms, rate)
end

-- the buckets of scope full again by now dropped -> changes | nil, msg, CODE
local function drop(db, scope, now_ms, rate, burst)
  local fill_ms = math.ceil(burst / rate * 1000)
  if db.backend == "pg" then return db:run(sql(db).drop, scope, fill_ms) end
  return db:run(sql(db).drop, scope, fill_ms, now_ms)
end

--- take(db, scope, name, now_ms, rate, burst) -> changes | nil, msg, CODE: one token if
--- the bucket has one (a new bucket starts full); the buckets of scope full again by now
--- are dropped. now_ms: the caller's clock, used on SQLite only
function M.take(db, scope, name, now_ms, rate, burst)
  local ok, err, code = run(db, "take", scope, name, burst, now_ms, rate)
  if not ok then return nil, err, code end
  return drop(db, scope, now_ms, rate, burst)
end

--- take_if(db, scope, name, now_ms, rate, burst) -> true (a token taken) | false (none
--- there: the bucket left as it was) | nil, msg, CODE; the buckets of scope full again by
--- now are dropped, as take's
function M.take_if(db, scope, name, now_ms, rate, burst)
  local n, err, code = run(db, "take_if", scope, name, burst, now_ms, rate)
  if not n then return nil, err, code end
  if n == 0 then return false end
  local ok, derr, dcode = drop(db, scope, now_ms, rate, burst)
  if not ok then return nil, derr, dcode end
  return true
end

--- give(db, scope, name, now_ms, rate, burst) -> true | nil, msg, CODE: a token taken
--- given back (at most burst; a bucket full again is dropped)
function M.give(db, scope, name, now_ms, rate, burst)
  local ok, err, code = run(db, "give_drop", scope, name, burst, now_ms, rate)
  if not ok then return nil, err, code end
  ok, err, code = run(db, "give", scope, name, burst, now_ms, rate)
  if not ok then return nil, err, code end
  return true
end

local COUNT = "SELECT count(*) AS n FROM rate_buckets WHERE scope = ?1" .. NOT_OVERFLOW

--- trim(db, scope, max, rate, keep, now_ms) -> true (at most max buckets of scope now) |
--- false (more: those left are held off, or keep) | nil, msg, CODE. Drops the buckets of
--- scope beyond max that would be full again soonest, never keep's (the one just taken
--- from) nor one held off now (under a token: a flood of other names never frees a name
--- being guessed at). now_ms: the caller's clock, used on SQLite only.
function M.trim(db, scope, max, rate, keep, now_ms)
  local row, err, code = db:row(COUNT, scope)
  if not row then return nil, err, code end
  local over = math.floor((tonumber(row.n) or 0) - max)
  if over <= 0 then return true end
  local n
  if db.backend == "pg" then n, err, code = db:run(sql(db).trim, scope, keep or "", over, rate)
  else n, err, code = db:run(sql(db).trim, scope, keep or "", over, now_ms, rate) end
  if not n then return nil, err, code end
  return n >= over
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
