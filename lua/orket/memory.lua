-- orket.memory: what agents learn, kept in the store (orket.store.memory) and searched
-- by full text (SQLite FTS5, BM25 ranking) and, for scripts written without spaces
-- (Japanese, Chinese, Thai), by two-character pieces found as substrings
-- (orket.store.memory's terms). Queries are treated as words, never as FTS syntax, because
-- they come from model output: any word may match, as a prefix, best first.
local sm = require "orket.store.memory"
local cards = require "orket.store.cards"
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
    if e.card and not cards.exists(db, e.card) then
      return nil, string.format("memory: no card %q", e.card), "ENOENT"
    end
    local id = sm.insert(db, e.card, e.text, tags)
    local actor = type(e.actor) == "table" and e.actor.seat or nil
    db:event { kind = "memory", card = e.card, run = self.run, actor = actor, data = { memory = id } }
    local row = sm.get(db, id)
    row.tags = tags
    return row
  end)
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
  -- engine asks every step). Entries are never deleted, so once one is seen the question
  -- is not asked again (were the sight a rolled-back write's, the search finds nothing).
  if not self.filled then
    if sm.is_empty(self.db) then return {} end
    self.filled = true
  end
  return sm.search(self.db, query, opts.card, limit)
end

M.json = json
return M
