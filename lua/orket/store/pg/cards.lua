-- orket.store.pg.cards: orket.store.cards' operations on PostgreSQL (same names and
-- shapes: times as ISO text). A card and its dependencies come back in one round trip (a
-- json_agg of the edges, decoded here). Creation order is created_at, then the id: the
-- cards table has no insertion order of its own on PostgreSQL (SQLite's rowid), so a card
-- is created at clock_timestamp(), which moves between the statements of a transaction,
-- not at the transaction's now(): cards created in one transaction (an import, issues a
-- turn files) keep the order they were written in.
local iso = require("orket.store.pgdb").iso
local cjson = require "cjson"
local one = require("orket.store.backend").row

local M = {}

local COLUMNS = "id, type, parent, name, summary, description, note, requirements, acceptance, priority, seat, "
  .. "department, status, wait_reason, retries, worked_by, source, " .. iso("created_at") .. ", " .. iso("updated_at")
local DEPS = ", (SELECT json_agg(d.depends_on ORDER BY d.position) FROM dependencies d WHERE d.card_id = cards.id)::text AS deps"
local ORDER = " ORDER BY cards.created_at, cards.id"

-- the rows' deps (JSON text) as depends_on arrays
local function with_deps(rows)
  for _, c in ipairs(rows) do
    c.depends_on = c.deps and cjson.decode(c.deps) or {}
    c.deps = nil
  end
  return rows
end

local GET = "SELECT " .. COLUMNS .. DEPS .. " FROM cards WHERE id = $1"

function M.get(db, id)
  local c = one(db, GET, id)
  if c == nil then return nil end
  return with_deps({ c })[1]
end

function M.list(db, q)
  local where, params = { "true" }, {}
  local function param(v)
    params[#params + 1] = v
    return "$" .. #params
  end
  local function any_of(col, list)
    local marks = {}
    for i, v in ipairs(list) do marks[i] = param(v) end
    -- SQLite takes an empty IN (), PostgreSQL does not
    where[#where + 1] = #marks == 0 and "false" or col .. " IN (" .. table.concat(marks, ",") .. ")"
  end
  if q.status then any_of("status", q.status) end
  if q.type then any_of("type", q.type) end
  if q.epic ~= nil then where[#where + 1] = "parent = " .. param(q.epic) end
  if q.rock ~= nil then
    local r = param(q.rock)
    where[#where + 1] = "(parent = " .. r .. " OR parent IN (SELECT c.id FROM cards c WHERE c.parent = " .. r
      .. " AND c.type = 'epic'))"
  end
  return with_deps(assert(db:rows("SELECT " .. COLUMNS .. DEPS .. " FROM cards WHERE " .. table.concat(where, " AND ")
    .. ORDER, table.unpack(params))))
end

function M.children(db, id)
  return with_deps(assert(db:rows("SELECT " .. COLUMNS .. DEPS .. " FROM cards WHERE parent = $1" .. ORDER, id)))
end

function M.some(db, ids)
  return assert(db:rows("SELECT " .. COLUMNS .. " FROM cards WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))"
    .. ORDER, cjson.encode(ids)))
end

-- the text for n statuses, built once per n (as orket.store.cards's)
local CHILD_OUTSIDE = setmetatable({}, { __index = function(t, n)
  local q = {}
  for i = 1, n do q[i] = "$" .. (i + 1) end
  local text = "SELECT 1 AS x FROM cards WHERE parent = $1 AND status NOT IN (" .. table.concat(q, ", ") .. ") LIMIT 1"
  t[n] = text
  return text
end })

function M.has_child_outside(db, id, statuses)
  return one(db, CHILD_OUTSIDE[#statuses], id, table.unpack(statuses)) ~= nil
end

return M
