-- orket.store.pg.memory: orket.store.memory's operations on PostgreSQL. The search runs on
-- the generated tsvector memory.search ('simple' configuration) with the terms SQLite's
-- FTS5 gets (orket.store.memory.terms): each word of the query as a prefix, any of them
-- matching; a word the tokenizer splits (foo_bar) is a phrase whose last part is a
-- prefix, as FTS5 reads "foo_bar"*; each gram of an unspaced script a substring of the
-- newest entries' text or tags. Ranked by ts_rank plus the grams held (higher is better),
-- then newest.
local iso = require("orket.store.pgdb").iso
local sm = require "orket.store.memory"

local M = {}

local function split(tags)
  local out = {}
  for t in tags:gmatch("%S+") do out[#out + 1] = t end
  return out
end

-- {"how", "do", "deploy"} -> "how:* | do:* | deploy:*". Only letters, digits and bytes of
-- UTF-8 characters reach to_tsquery (terms' words), so no word is read as its syntax.
local function ts_query(words)
  local out = {}
  for _, w in ipairs(words) do
    local parts = {}
    for p in w:gmatch("[%w\128-\255]+") do parts[#parts + 1] = p end
    if #parts > 0 then
      parts[#parts] = parts[#parts] .. ":*"
      out[#out + 1] = #parts == 1 and parts[1] or "(" .. table.concat(parts, " <-> ") .. ")"
    end
  end
  return table.concat(out, " | ")
end

local ROW = "SELECT m.id, m.card_id AS card, m.text, m.tags, " .. iso("m.created_at") .. ", "

-- the statement of a search for words alone (no gram: the tsquery is $4; $3 the oldest time kept)
local WORDS = ROW .. [[ts_rank(m.search, q)::float8 AS score FROM memory m, to_tsquery('simple', $4) q
  WHERE m.search @@ q AND ($1::text IS NULL OR m.card_id = $1)
  AND ($3::timestamptz IS NULL OR m.created_at > $3::timestamptz) ORDER BY score DESC, m.id DESC LIMIT $2]]

function M.search(db, query, card, limit, since)
  local words, grams = sm.terms(query)
  local match = ts_query(words)
  if match == "" and #grams == 0 then return {} end
  -- $1 the card (nil: every card), $2 the limit, $3 the oldest time kept (nil: any), then
  -- what the query has
  local found, args, n = {}, { card, limit, since }, 3
  local function arg(v)
    n = n + 1
    args[n] = v
    return "$" .. n
  end
  if match ~= "" then
    found[1] = "SELECT m.id, ts_rank(m.search, q)::float8 FROM memory m, to_tsquery('simple', " .. arg(match)
      .. ") q WHERE m.search @@ q"
  end
  local sql = WORDS
  if #grams > 0 then
    local scan, held = arg(sm.GRAM_SCAN), {}
    for i, g in ipairs(grams) do held[i] = "(strpos(t, " .. arg(g) .. ") > 0)::int" end
    found[#found + 1] = "SELECT id, s FROM (SELECT id, (" .. table.concat(held, " + ") .. [[)::float8 AS s FROM
      (SELECT id, text || ' ' || tags AS t FROM memory WHERE $1::text IS NULL OR card_id = $1
      ORDER BY id DESC LIMIT ]] .. scan .. ") c) h WHERE s > 0"
    sql = "WITH found(id, s) AS (" .. table.concat(found, " UNION ALL ") .. ")\n" .. ROW
      .. [[sum(found.s)::float8 AS score FROM found JOIN memory m ON m.id = found.id
      WHERE ($1::text IS NULL OR m.card_id = $1) AND ($3::timestamptz IS NULL OR m.created_at > $3::timestamptz)
      GROUP BY m.id ORDER BY score DESC, m.id DESC LIMIT $2]]
  end
  local rows, err, code = db:rows(sql, table.unpack(args, 1, n))
  if not rows then return nil, err, code end
  for _, r in ipairs(rows) do r.tags = split(r.tags) end
  return rows
end

return M
