-- orket.store.cards: the cards table and its dependencies as named operations op(db, ...)
-- -> plain Lua values: the board's reads and writes (orket.board holds the rules: the
-- state machine, the cache, the journal events), the ready order's, and the card reads
-- other modules need. A card is {id, type, parent, name, summary, description, note,
-- requirements, acceptance, priority, seat, department, status, wait_reason, retries,
-- worked_by, source, created_at, updated_at} and, where said, depends_on (the ids it
-- depends on, in their order). Lists are in creation order. A failing statement raises.
-- The statements' text is fixed (built once here), so each is prepared once per
-- connection: the board's reads are the engine's hottest path.
local cjson = require "cjson"
local dialect = require "orket.store.dialect"
-- a one-row read that fails raises (orket.store.backend.row): a lost store must not read as
-- no such card
local one = require("orket.store.backend").row

local M = {}
local sql = dialect.statement

local COLUMNS = [[id, type, parent, name, summary, description, note, requirements,
  acceptance, priority, seat, department, status, wait_reason, retries, worked_by, source,
  created_at, updated_at]]
local SELECT = "SELECT " .. COLUMNS .. " FROM cards WHERE "
local ORDER = " ORDER BY created_at, rowid"

local GET = SELECT .. "id = ?"
local GET_DEPS = "SELECT depends_on FROM dependencies WHERE card_id = ? ORDER BY position"
local ALL_DEPS = "SELECT card_id, depends_on FROM dependencies ORDER BY card_id, position"

--- get(db, id) -> the card with depends_on | nil
function M.get(db, id)
  local c = one(db, GET, id)
  if c == nil then return nil end
  local deps = {}
  for i, d in ipairs(assert(db:rows(GET_DEPS, id))) do deps[i] = d.depends_on end
  c.depends_on = deps
  return c
end

--- dependencies(db) -> every dependency {card_id, depends_on}, by card and position
function M.dependencies(db)
  return assert(db:rows(ALL_DEPS))
end

local WHOLE_DEPS = 256 -- cards loaded at once from which all dependencies are read

-- The cards matching `where` (SQL over table cards, with params) with depends_on.
local function load(db, where, ...)
  local rows = assert(db:rows(SELECT .. where .. ORDER, ...))
  local by_id = {}
  for _, c in ipairs(rows) do
    c.depends_on = {}
    by_id[c.id] = c
  end
  if #rows > 0 then
    -- Many cards: every edge in one plain read, kept where its card is here, costs less
    -- than running the card query again as a subquery.
    local deps
    if #rows >= WHOLE_DEPS then
      deps = assert(db:rows(ALL_DEPS))
    else
      deps = assert(db:rows("SELECT card_id, depends_on FROM dependencies WHERE card_id IN "
        .. "(SELECT id FROM cards WHERE " .. where .. ") ORDER BY card_id, position", ...))
    end
    for _, d in ipairs(deps) do
      local c = by_id[d.card_id]
      if c then c.depends_on[#c.depends_on + 1] = d.depends_on end
    end
  end
  return rows
end

--- list(db, q) -> the cards with depends_on matching every filter of q: status (array of
--- statuses), type (array of types), epic (the epic's children), rock (the rock's epics
--- and their children); {} for every card
function M.list(db, q)
  local where, params = { "1" }, {}
  local function any_of(col, list)
    local marks = {}
    for i, v in ipairs(list) do
      marks[i] = "?"
      params[#params + 1] = v
    end
    where[#where + 1] = col .. " IN (" .. table.concat(marks, ",") .. ")"
  end
  if q.status then any_of("status", q.status) end
  if q.type then any_of("type", q.type) end
  if q.epic ~= nil then
    where[#where + 1] = "parent = ?"
    params[#params + 1] = q.epic
  end
  if q.rock ~= nil then
    where[#where + 1] = "(parent = ? OR parent IN (SELECT id FROM cards WHERE parent = ? AND type = 'epic'))"
    params[#params + 1] = q.rock
    params[#params + 1] = q.rock
  end
  return load(db, table.concat(where, " AND "), table.unpack(params))
end

--- children(db, id) -> the cards whose parent is id, with depends_on
function M.children(db, id)
  return load(db, "parent = ?", id)
end

--- some(db, ids) -> the cards of those ids that exist, without depends_on (one read)
function M.some(db, ids)
  return assert(db:rows(SELECT .. "id IN (SELECT value FROM json_each(?))" .. ORDER, cjson.encode(ids)))
end

local LIGHT = sql(function(d)
  return "SELECT id, type, parent, priority, status FROM cards ORDER BY cards.created_at, cards." .. d.order
end)

--- light(db) -> every card's {id, type, parent, priority, status}
function M.light(db)
  return assert(db:rows(LIGHT(db)))
end

--- head(db, id) -> {id, type, parent, status} of the card | nil
function M.head(db, id)
  return one(db, "SELECT id, type, parent, status FROM cards WHERE id = ?", id)
end

--- exists(db, id) -> true when a card with that id exists
function M.exists(db, id)
  return one(db, "SELECT 1 AS x FROM cards WHERE id = ?", id) ~= nil
end

--- case_fold(db, lower) -> the ids of the cards whose id lower-cased (by the database) is lower
function M.case_fold(db, lower)
  return assert(db:rows("SELECT id FROM cards WHERE lower(id) = ?", lower))
end

--- ids(db) -> every card's {id}
function M.ids(db)
  return assert(db:rows("SELECT id FROM cards"))
end

--- is_issue(db, id) -> true when the card exists and is an issue
function M.is_issue(db, id)
  return one(db, "SELECT id FROM cards WHERE id = ? AND type = 'issue'", id) ~= nil
end

--- child_count(db, id) -> how many cards have id as their parent
function M.child_count(db, id)
  return one(db, "SELECT count(*) AS n FROM cards WHERE parent = ?", id).n
end

--- child_statuses(db, id) -> {status, n} for each status among the children of id
function M.child_statuses(db, id)
  return assert(db:rows("SELECT status, count(*) AS n FROM cards WHERE parent = ? GROUP BY status", id))
end

-- has_child_outside's text for n statuses, built once per n: a text built per call was
-- garbage, and the store looks its prepared statement up by the whole text. The statuses
-- are compared one by one, not with NOT IN: SQLite builds an IN list of more than two
-- values into a temporary b-tree on every run of the statement, which cost more than the
-- rest of it (status is NOT NULL, so both say the same).
local CHILD_OUTSIDE = setmetatable({}, { __index = function(t, n)
  local q = {}
  for i = 1, n do q[i] = " AND status <> ?" .. (i + 1) end
  local text = "SELECT 1 AS x FROM cards WHERE parent = ?1" .. table.concat(q) .. " ORDER BY rowid DESC LIMIT 1"
  t[n] = text
  return text
end })

--- has_child_outside(db, id, statuses) -> true when a child of id has a status not in the
--- list (the board asks with its final statuses). It stops at the first such child, newest
--- first (the cards_parent index's own order): the older children are the likelier to be
--- finished, where child_statuses counts them all (1,000 rows under a large epic).
function M.has_child_outside(db, id, statuses)
  return one(db, CHILD_OUTSIDE[#statuses], id, table.unpack(statuses)) ~= nil
end

-- id's count, then epic's unless it is id again: `d.card_id = ?1 OR d.card_id = ?2` read both
-- through a temporary b-tree (to count a row once), built at every call, 47k against 19k
local OPEN_DEPS = [[SELECT (SELECT count(*) FROM dependencies d JOIN cards t ON t.id = d.depends_on
    WHERE d.card_id = ?1 AND t.status <> 'done')
  + (SELECT count(*) FROM dependencies d JOIN cards t ON t.id = d.depends_on
    WHERE d.card_id = ?2 AND ?2 <> ?1 AND t.status <> 'done') AS n]]

--- open_dependencies(db, id, epic) -> how many of the cards that id or epic (its epic, or
--- id again) depend on are not done
function M.open_dependencies(db, id, epic)
  return one(db, OPEN_DEPS, id, epic).n
end

local SET_STATUS = sql(function(d)
  return "UPDATE cards SET status = ?, wait_reason = ?, worked_by = ?, retries = retries + ?, updated_at = " .. d.now
    .. " WHERE id = ?"
end)

--- set_status(db, id, status, wait_reason, worked_by, retry): the card's status and wait
--- reason, who worked it, retries grown by retry (0 or 1), updated now (the transaction's
--- time: no RETURNING, which doubled the statement's cost)
function M.set_status(db, id, status, wait_reason, worked_by, retry)
  assert(db:run(SET_STATUS(db), status, wait_reason, worked_by, retry, id))
end

--- reset_retries(db, id): the card's rework count back to 0
function M.reset_retries(db, id)
  assert(db:run("UPDATE cards SET retries = 0 WHERE id = ?", id))
end

--- insert_issue(db, c): a new issue created now, status ready. c: {id, parent, name,
--- summary, description, note, requirements, acceptance, priority, seat}
function M.insert_issue(db, c)
  assert(db:run("INSERT INTO cards (id, type, parent, name, summary, description, note, requirements, "
    .. "acceptance, priority, seat, created_at, updated_at) VALUES (?, 'issue', ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    .. db.dialect.created .. ", " .. db.dialect.now .. ")", c.id, c.parent, c.name, c.summary, c.description, c.note,
    c.requirements, c.acceptance, c.priority, c.seat))
end

--- add_dependency(db, id, on, position): id depends on `on` (nothing when it already does)
function M.add_dependency(db, id, on, position)
  assert(db:run("INSERT INTO dependencies (card_id, depends_on, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    id, on, position))
end

return require("orket.store.backend").twin("cards", M)
