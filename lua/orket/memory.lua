-- orket.memory: what agents learn, kept in the store and searched with SQLite FTS5 (BM25
-- ranking). Queries are treated as words, never as FTS syntax, because they come from model
-- output: any word may match, as a prefix (stemmers mangle query prefixes), best first.
local store = require "orket.store"
local json = require "cjson.safe"

local M = {}
local Memory = {}
Memory.__index = Memory

M.MAX_TEXT = 64 * 1024
M.MAX_LIMIT = 100

--- open(db) -> memory
function M.open(db)
  if type(db) ~= "table" or not db.conn then error("bad argument #1 to 'open' (store expected)", 2) end
  return setmetatable({ db = db }, Memory)
end

--- memory:set_run(run_id | nil): as board:set_run, the run whose work the next entries are
--- (their events carry its id).
function Memory:set_run(id)
  if id ~= nil and math.type(id) ~= "integer" then
    error("bad argument #1 to 'set_run' (run id integer or nil expected, got " .. type(id) .. ")", 2)
  end
  self.run = id
end

--- memory:remember{card=, text=, tags={...}, actor=} -> entry {id, card, text, tags, created_at}
---   | nil, msg, "EINVAL"|"ENOENT"
function Memory:remember(e)
  if type(e) ~= "table" or type(e.text) ~= "string" then
    error("bad argument #1 to 'remember' ({text=string, card=, tags=} expected)", 2)
  end
  if e.card ~= nil and type(e.card) ~= "string" then error("bad argument #1 to 'remember' (card must be a string)", 2) end
  local tags = e.tags or {}
  if type(tags) ~= "table" then error("bad argument #1 to 'remember' (tags must be an array of strings)", 2) end
  for i, t in ipairs(tags) do
    if type(t) ~= "string" then error(string.format("bad argument #1 to 'remember' (tags[%d] must be a string)", i), 2) end
  end
  if not e.text:find("%S") then return nil, "memory: nothing to remember (empty text)", "EINVAL" end
  if #e.text > M.MAX_TEXT then return nil, "memory: text longer than 64 KiB; summarise it first", "EINVAL" end
  local db = self.db
  return db:tx(function()
    if e.card and not db:row("SELECT 1 AS x FROM cards WHERE id = ?", e.card) then
      return nil, string.format("memory: no card %q", e.card), "ENOENT"
    end
    local _, id = assert(db:run("INSERT INTO memory (card_id, text, tags, created_at) VALUES (?, ?, ?, "
      .. store.NOW .. ")", e.card, e.text, table.concat(tags, " ")))
    local actor = type(e.actor) == "table" and e.actor.seat or nil
    db:event { kind = "memory", card = e.card, run = self.run, actor = actor, data = { memory = id } }
    local row = db:row("SELECT id, card_id AS card, text, tags, created_at FROM memory WHERE id = ?", id)
    row.tags = tags
    return row
  end)
end

-- "how do we deploy?" -> '"how"* OR "do"* OR "we"* OR "deploy"*'
local function fts_query(q)
  local words = {}
  for w in q:gmatch("[%w_\128-\255]+") do
    if #words >= 32 then break end
    words[#words + 1] = '"' .. w .. '"*' -- prefix: "deploy" finds "deployments"
  end
  return table.concat(words, " OR ")
end

--- memory:recall(query, {limit=10, card=}) -> array of {id, card, text, tags, created_at, score}
---   best first (score: higher is better).
function Memory:recall(query, opts)
  if type(query) ~= "string" then error("bad argument #1 to 'recall' (string expected, got " .. type(query) .. ")", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #2 to 'recall' (table expected)", 2) end
  local limit = opts.limit or 10
  if math.type(limit) ~= "integer" or limit < 1 or limit > M.MAX_LIMIT then
    error("bad argument #2 to 'recall' (limit must be an integer from 1 to 100)", 2)
  end
  if opts.card ~= nil and type(opts.card) ~= "string" then error("bad argument #2 to 'recall' (card must be a string)", 2) end
  -- an empty memory answers without the full-text search or building its query (the
  -- engine asks every step)
  if not self.db:row("SELECT 1 AS x FROM memory LIMIT 1") then return {} end
  local match = fts_query(query)
  if match == "" then return {} end
  local rows, err, code = self.db:rows([[SELECT m.id, m.card_id AS card, m.text, m.tags, m.created_at,
      -bm25(memory_fts) AS score FROM memory_fts JOIN memory m ON m.id = memory_fts.rowid
      WHERE memory_fts MATCH ? AND (?2 IS NULL OR m.card_id = ?2) ORDER BY bm25(memory_fts), m.id DESC LIMIT ?3]],
    match, opts.card, limit)
  if not rows then return nil, err, code end
  for _, r in ipairs(rows) do
    local tags = {}
    for t in r.tags:gmatch("%S+") do tags[#tags + 1] = t end
    r.tags = tags
  end
  return rows
end

M.json = json
return M
