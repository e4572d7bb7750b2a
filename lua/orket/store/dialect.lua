-- orket.store.dialect: what differs between the store's two SQL dialects, one table per
-- backend (db.dialect), so that a named operation is written once for both: its SQL in
-- SQLite's way with `?` placeholders, and the pieces that differ taken from the table. A
-- PostgreSQL connection numbers the placeholders itself (numbered). An operation whose
-- SQL differs beyond these (JSON functions, locking, upserts on other keys) keeps a
-- PostgreSQL twin in orket.store.pg (orket.store.backend). Contract: docs/store.md.
local M = {}

-- a stored time as the SQLite store's text (ISO 8601 UTC with milliseconds), named as the
-- column (or `as`)
local function pg_time(col, as)
  return "to_char(" .. col .. [[ AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ]]
    .. (as or col:match("[%w_]+$"))
end

-- a column as it is stored, named `as` when given
local function plain(col, as) return as and (col .. " AS " .. as) or col end

M.sqlite = {
  name = "sqlite",
  now = "orket_now()",          -- the transaction's time, as a stored time (a test's clock moves it)
  created = "orket_now()",      -- a new card's time: PostgreSQL's tells apart cards made in one transaction
  wall = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", -- the wall clock as the statement runs
  -- the UTC day of the transaction's time (now), as text YYYY-MM-DD, and its first instant as
  -- a stored time: the day budget's, by the clock that dates the rows
  today = "substr(orket_now(), 1, 10)",
  day_start = "substr(orket_now(), 1, 10) || 'T00:00:00.000Z'",
  returning_id = "",            -- db:run's second value is the new row's id already
  time = plain,                  -- a stored time, selected (ISO text already)
  json = plain,                  -- a JSON column, as its text (stored as text already)
  integer = function(expr) return expr end, -- a sum read back as a Lua integer
  flag = function(col) return col end, -- a true/false column, read as 1/0
  bool = function(v) return v and 1 or 0 end, -- a Lua boolean, written to such a column
  json_param = "?",             -- a parameter written to a JSON column
  -- a JSON column's top-level member, as an integer or as text (NULL when absent)
  json_int = function(col, key) return "json_extract(" .. col .. ", '$." .. key .. "')" end,
  json_text = function(col, key) return "json_extract(" .. col .. ", '$." .. key .. "')" end,
  order = "rowid",              -- after created_at: the order rows were written in
  -- the milliseconds from stored time a to stored time b, as an integer
  ms_between = function(a, b) return "CAST(ROUND((julianday(" .. b .. ") - julianday(" .. a .. ")) * 86400000) AS INTEGER)" end,
}

M.pg = {
  name = "pg",
  now = "now()",
  created = "clock_timestamp()",
  wall = "clock_timestamp()",
  today = "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
  day_start = "(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')",
  returning_id = " RETURNING id", -- PostgreSQL has no last insert id
  time = pg_time,
  json = function(col, as) return col .. "::text AS " .. (as or col:match("[%w_]+$")) end,
  integer = function(expr) return expr .. "::int8" end, -- sum() of integers is numeric
  flag = function(col) return col .. "::int AS " .. col:match("[%w_]+$") end,
  bool = function(v) return v and true or false end,
  json_param = "?::jsonb",
  json_int = function(col, key) return "(" .. col .. "->>'" .. key .. "')::int8" end,
  json_text = function(col, key) return "(" .. col .. "->>'" .. key .. "')" end,
  order = "id",                 -- created (clock_timestamp()) already tells rows apart
  ms_between = function(a, b) return "round(EXTRACT(EPOCH FROM (" .. b .. " - " .. a .. ")) * 1000)::int8" end,
}

-- SQL text -> the same with each `?` (in order) or `?N` as PostgreSQL's `$N`; quoted text,
-- quoted names and comments are left as they are. Statements are mostly literals, so the
-- answers are kept, up to a bound (a statement built per call, an IN list of many lengths,
-- must not grow the cache without end).
local cache, cached, CACHE_MAX = {}, 0, 2000

local function number(sql)
  local out, n, i, len = {}, 0, 1, #sql
  local from = 1
  while i <= len do
    local c = sql:sub(i, i)
    if c == "'" or c == '"' then
      local j = i + 1
      while true do -- a doubled quote is one quote inside the text
        local k = sql:find(c, j, true)
        if not k then i = len break end
        if sql:sub(k + 1, k + 1) == c then j = k + 2 else i = k break end
      end
    elseif c == "-" and sql:sub(i + 1, i + 1) == "-" then
      i = (sql:find("\n", i, true) or len)
    elseif c == "?" then
      out[#out + 1] = sql:sub(from, i - 1)
      local digits = sql:match("^%d+", i + 1)
      -- as SQLite numbers them: a bare ? is one more than the largest number so far
      if digits then
        out[#out + 1] = "$" .. digits
        i = i + #digits
        n = math.max(n, tonumber(digits))
      else
        n = n + 1
        out[#out + 1] = "$" .. n
      end
      from = i + 1
    end
    i = i + 1
  end
  if from == 1 then return sql end
  out[#out + 1] = sql:sub(from)
  return table.concat(out)
end

--- statement(build) -> sql(db): the statement build(dialect) makes, made once per dialect
--- (for the operations a turn runs many times)
function M.statement(build)
  local made = {}
  return function(db)
    local d = db.dialect
    local s = made[d]
    if not s then
      s = build(d)
      made[d] = s
    end
    return s
  end
end

--- numbered(sql) -> sql with PostgreSQL's numbered placeholders ($1, $2, ...) for SQLite's
--- `?` and `?N`
function M.numbered(sql)
  local s = cache[sql]
  if s then return s end
  s = number(sql)
  if cached >= CACHE_MAX then cache, cached = {}, 0 end
  cache[sql], cached = s, cached + 1
  return s
end

return M
