-- orket.memory: what agents learn, kept in the store (orket.store.memory) and searched
-- by full text (SQLite FTS5, BM25 ranking) and, for scripts written without spaces
-- (Japanese, Chinese, Thai), by two-character pieces found as substrings
-- (orket.store.memory's terms). Queries are treated as words, never as FTS syntax, because
-- they come from model output: any word may match, as a prefix, best first.
local sm = require "orket.store.memory"
local cards = require "orket.store.cards"
local json = require "cjson.safe"
local inert = require "orket.inert"

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
  -- the store keeps tags space-joined (orket.store.memory): a tag holding whitespace came
  -- back as two, an empty one not at all. Refused as the model's data, not raised.
  for i, t in ipairs(tags) do
    if t == "" then return nil, string.format("memory: tags[%d] is empty; a tag is one word", i), "EINVAL" end
    if t:find("%s") then
      local joined = t:gsub("^%s+", ""):gsub("%s+$", ""):gsub("%s+", "-")
      return nil, string.format('memory: tags[%d] "%s" holds whitespace; a tag is one word (as "%s")', i,
        inert.line(inert.clip(t, 60)), inert.line(inert.cut(joined, 60))), "EINVAL"
    end
  end
  if not e.text:find("%S") then return nil, "memory: nothing to remember (empty text)", "EINVAL" end
  if #e.text > M.MAX_TEXT then return nil, "memory: text longer than 64 KiB; summarise it first", "EINVAL" end
  local db = self.db
  return db:tx(function()
    if e.card and not cards.exists(db, e.card) then
      return nil, string.format("memory: no card %s", inert.named(e.card)), "ENOENT"
    end
    local id = sm.insert(db, e.card, e.text, tags)
    local actor = type(e.actor) == "table" and e.actor.seat or nil
    db:event { kind = "memory", card = e.card, run = self.run, actor = actor, data = { memory = id } }
    local row = sm.get(db, id)
    row.tags = tags
    return row
  end)
end

-- what a bad argument was, for its message: a number as written ("5.0" says it is a
-- float), anything else by its type
local function got(v)
  if type(v) == "number" then return tostring(v) end
  if type(v) == "string" then return "a string" end
  return type(v)
end

--- memory:recall(query, {limit=10, card=, max_age_days=}) -> array of {id, card, text, tags,
---   created_at, score} best first (score: higher is better). max_age_days (an integer, 0 or
---   nil: no limit): only entries at most that many whole days old (as
---   orket.engine.context.age_days counts them, by this machine's clock), left out by the
---   store's search itself, so the limit counts entries within the age.
function Memory:recall(query, opts)
  if type(query) ~= "string" then error("bad argument #1 to 'recall' (string expected, got " .. type(query) .. ")", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #2 to 'recall' (table expected)", 2) end
  local limit = opts.limit or 10
  if math.type(limit) ~= "integer" then
    error("bad argument #2 to 'recall' (limit must be an integer from 1 to 100, got " .. got(limit) .. ")", 2)
  end
  if limit < 1 or limit > M.MAX_LIMIT then
    error("bad argument #2 to 'recall' (limit must be an integer from 1 to 100)", 2)
  end
  if opts.card ~= nil and type(opts.card) ~= "string" then error("bad argument #2 to 'recall' (card must be a string)", 2) end
  local days = opts.max_age_days or 0
  if math.type(days) ~= "integer" or days < 0 then
    error("bad argument #2 to 'recall' (max_age_days must be a non-negative integer, got " .. got(days) .. ")", 2)
  end
  -- an empty memory answers without the full-text search or building its query (the
  -- engine asks at the start of every turn). Entries are never deleted, so once one is seen
  -- the question is not asked again (were the sight a rolled-back write's, the search finds
  -- nothing).
  if not self.filled then
    if sm.is_empty(self.db) then return {} end
    self.filled = true
  end
  -- age_days is whole days: an entry is at most `days` old while less than days + 1 have
  -- passed, so the entries kept are those created after this instant (a stored time)
  -- (an age reaching back before 1970 limits nothing: os.date refuses such a time, and a
  -- year of fewer than four digits would compare wrongly as text)
  local cut = days > 0 and days < os.time() // 86400 and os.time() - (days + 1) * 86400 or nil
  local since = cut and cut > 0 and os.date("!%Y-%m-%dT%H:%M:%S.000Z", cut) or nil
  return sm.search(self.db, query, opts.card, limit, since)
end

M.json = json
return M
