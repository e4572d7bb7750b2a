-- orket.store.memory: the memory table and its FTS5 index as named operations. Tags are
-- kept as one space-separated text column; the operations take and give arrays. The
-- full-text query syntax (FTS5 MATCH, bm25) stays here; PostgreSQL's search is its own
-- (orket.store.pg.memory), the rest is written once for both (orket.store.dialect).

local M = {}

local function split(tags)
  local out = {}
  for t in tags:gmatch("%S+") do out[#out + 1] = t end
  return out
end

--- insert(db, card, text, tags) -> id (raises on a store error); written now
function M.insert(db, card, text, tags)
  local d = db.dialect
  local _, id = assert(db:run("INSERT INTO memory (card_id, text, tags, created_at) VALUES (?, ?, ?, " .. d.now .. ")"
    .. d.returning_id, card, text, table.concat(tags, " ")))
  return id
end

--- get(db, id) -> {id, card, text, tags = {...}, created_at} | nil
function M.get(db, id)
  local row = db:row("SELECT id, card_id AS card, text, tags, " .. db.dialect.time("created_at") .. " FROM memory WHERE id = ?",
    id)
  if row then row.tags = split(row.tags) end
  return row
end

--- is_empty(db) -> true when nothing is remembered
function M.is_empty(db)
  return db:row("SELECT 1 AS x FROM memory LIMIT 1") == nil
end

-- "how do we deploy?" -> '"how"* OR "do"* OR "we"* OR "deploy"*': the words of a query
-- from model output, never FTS syntax; any may match, as a prefix (stemmers mangle query
-- prefixes)
local function fts_query(q)
  local words = {}
  for w in q:gmatch("[%w_\128-\255]+") do
    if #words >= 32 then break end
    words[#words + 1] = '"' .. w .. '"*' -- prefix: "deploy" finds "deployments"
  end
  return table.concat(words, " OR ")
end

--- search(db, query, card, limit) -> array of {id, card, text, tags = {...}, created_at,
--- score} best first (score: higher is better; card nil: every card) | nil, msg, CODE.
--- A query with no words finds nothing.
function M.search(db, query, card, limit)
  local match = fts_query(query)
  if match == "" then return {} end
  local rows, err, code = db:rows([[SELECT m.id, m.card_id AS card, m.text, m.tags, m.created_at,
      -bm25(memory_fts) AS score FROM memory_fts JOIN memory m ON m.id = memory_fts.rowid
      WHERE memory_fts MATCH ? AND (?2 IS NULL OR m.card_id = ?2) ORDER BY bm25(memory_fts), m.id DESC LIMIT ?3]],
    match, card, limit)
  if not rows then return nil, err, code end
  for _, r in ipairs(rows) do r.tags = split(r.tags) end
  return rows
end

return require("orket.store.backend").twin("memory", M)
