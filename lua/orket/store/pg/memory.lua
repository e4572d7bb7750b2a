-- orket.store.pg.memory: orket.store.memory's operations on PostgreSQL. The search runs on
-- the generated tsvector memory.search ('simple' configuration) with the query SQLite's
-- FTS5 gets: each word of the query (at most 32) as a prefix, any of them matching; a
-- word the tokenizer splits (foo_bar) is a phrase whose last part is a prefix, as FTS5
-- reads "foo_bar"*. Ranked by ts_rank (higher is better), then newest.
local iso = require("orket.store.pgdb").iso

local M = {}

local function split(tags)
  local out = {}
  for t in tags:gmatch("%S+") do out[#out + 1] = t end
  return out
end

-- "how do we deploy?" -> "how:* | do:* | we:* | deploy:*". Only letters, digits and
-- bytes of UTF-8 characters reach to_tsquery, so no word is read as its syntax.
local function ts_query(q)
  local words = {}
  for w in q:gmatch("[%w_\128-\255]+") do
    if #words >= 32 then break end
    local parts = {}
    for p in w:gmatch("[%w\128-\255]+") do parts[#parts + 1] = p end
    if #parts > 0 then
      parts[#parts] = parts[#parts] .. ":*"
      words[#words + 1] = #parts == 1 and parts[1] or "(" .. table.concat(parts, " <-> ") .. ")"
    end
  end
  return table.concat(words, " | ")
end

function M.search(db, query, card, limit)
  local match = ts_query(query)
  if match == "" then return {} end
  local rows, err, code = db:rows("SELECT m.id, m.card_id AS card, m.text, m.tags, " .. iso("m.created_at")
    .. [[, ts_rank(m.search, q)::float8 AS score FROM memory m, to_tsquery('simple', $1) q
      WHERE m.search @@ q AND ($2::text IS NULL OR m.card_id = $2) ORDER BY score DESC, m.id DESC LIMIT $3]],
    match, card, limit)
  if not rows then return nil, err, code end
  for _, r in ipairs(rows) do r.tags = split(r.tags) end
  return rows
end

return M
