-- orket.store.memory: the memory table and its FTS5 index as named operations. Tags are
-- kept as one space-separated text column; the operations take and give arrays. The
-- full-text query syntax (FTS5 MATCH, bm25) stays here; PostgreSQL's search is its own
-- (orket.store.pg.memory), the rest is written once for both (orket.store.dialect), and
-- so is the reading of a query into its terms (terms).

local M = {}

-- at most this many terms (words and grams) of a query are searched for
local MAX_TERMS = 32
-- the substring search of grams reads at most this many entries, the newest (of the card
-- asked about): no index serves it. 1,000 entries of 490 bytes cost a query of 32 grams
-- 40 to 50 ms (SQLite and PostgreSQL, a loaded 2-CPU machine); the engine's recall asks at
-- the start of every turn, and the recall tool at every call
local GRAM_SCAN = 1000

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

-- Code points beyond ASCII that end a word: the punctuation, spaces, symbols and format
-- characters of the blocks text commonly holds, which FTS5's unicode61 tokenizer (letters,
-- digits and marks make its tokens) splits on too. Sorted ranges, first and last.
local SEPARATORS = {
  { 0x80, 0xA9 }, { 0xAB, 0xB1 }, { 0xB4, 0xB4 }, { 0xB6, 0xB8 }, { 0xBB, 0xBB }, { 0xBF, 0xBF },
  { 0xD7, 0xD7 }, { 0xF7, 0xF7 }, { 0x37E, 0x37E }, { 0x387, 0x387 }, { 0x55A, 0x55F }, { 0x589, 0x58A },
  { 0x5BE, 0x5BE }, { 0x5C0, 0x5C0 }, { 0x5C3, 0x5C3 }, { 0x5C6, 0x5C6 }, { 0x5F3, 0x5F4 },
  { 0x600, 0x60F }, { 0x61B, 0x61F }, { 0x66A, 0x66D }, { 0x6D4, 0x6D4 }, { 0x964, 0x965 },
  { 0x970, 0x970 }, { 0xE3F, 0xE3F }, { 0xE4F, 0xE4F }, { 0xE5A, 0xE5B }, { 0x2000, 0x206F },
  { 0x20A0, 0x20CF }, { 0x2190, 0x245F }, { 0x2500, 0x2775 }, { 0x2794, 0x2BFF }, { 0x2E00, 0x2E7F },
  { 0x3000, 0x3004 }, { 0x3008, 0x3020 }, { 0x3030, 0x3030 }, { 0x3036, 0x3037 }, { 0x303D, 0x303F },
  { 0x309B, 0x309C }, { 0x30A0, 0x30A0 }, { 0x30FB, 0x30FB }, { 0xFD3E, 0xFD3F }, { 0xFE00, 0xFE19 },
  { 0xFE30, 0xFE6F }, { 0xFEFF, 0xFEFF }, { 0xFF01, 0xFF0F }, { 0xFF1A, 0xFF20 }, { 0xFF3B, 0xFF40 },
  { 0xFF5B, 0xFF65 }, { 0xFFE0, 0xFFEF }, { 0xFFF9, 0xFFFD }, { 0x1F000, 0x1F0FF }, { 0x1F10D, 0x1FAFF },
  { 0xE0100, 0xE01EF },
}

-- The scripts written without spaces between words (Han, kana, Hangul, Thai, Lao, Khmer,
-- Myanmar; the separators above among them are found first): both stores' tokenizers keep
-- a run of their letters as one token, so a word inside a sentence is no token's prefix.
local UNSPACED = {
  { 0xE00, 0xEFF }, { 0x1000, 0x109F }, { 0x1100, 0x11FF }, { 0x1780, 0x17FF }, { 0x2E80, 0x2FDF },
  { 0x3005, 0x3007 }, { 0x3021, 0x3029 }, { 0x3031, 0x3035 }, { 0x3038, 0x303C }, { 0x3040, 0x31FF },
  { 0x3400, 0x4DBF }, { 0x4E00, 0x9FFF }, { 0xA960, 0xA97F }, { 0xAC00, 0xD7FF }, { 0xF900, 0xFAFF },
  { 0xFF66, 0xFFDC }, { 0x20000, 0x3FFFF },
}

local function within(ranges, cp)
  local lo, hi = 1, #ranges
  while lo <= hi do
    local mid = (lo + hi) // 2
    local r = ranges[mid]
    if cp < r[1] then hi = mid - 1 elseif cp > r[2] then lo = mid + 1 else return true end
  end
  return false
end

-- "sep", "unspaced" or "word" for one character (its bytes); bytes that are not one
-- UTF-8 character end a word, so no store is given text that is not UTF-8
local function class(ch)
  if utf8.len(ch) ~= 1 then return "sep" end
  local cp = utf8.codepoint(ch)
  if within(SEPARATORS, cp) then return "sep" end
  return within(UNSPACED, cp) and "unspaced" or "word"
end

--- terms(query) -> words, grams: what search looks for, at most MAX_TERMS of them in the
--- query's order. Words: its runs of letters, digits, marks and "_" (any other character,
--- ASCII or not, ends one, as the tokenizers read text), each searched for as a prefix.
--- Grams: of each run of an unspaced script (UNSPACED: "本番へのデプロイ"), its
--- overlapping two-character pieces ("本番", "番へ", ...; a one-character run itself), each
--- once, searched for as substrings, so that a word finds a sentence holding it and a
--- sentence the entries sharing its words. A function of text, not of a store: not
--- dispatched by backend.
local function terms(q)
  local words, grams, seen, n = {}, {}, {}, 0
  local function gram(g)
    if n < MAX_TERMS and not seen[g] then seen[g], n, grams[#grams + 1] = true, n + 1, g end
  end
  local function word(w)
    if n < MAX_TERMS and w ~= "" then n, words[#words + 1] = n + 1, w end
  end
  local function unspaced(run)
    if #run == 1 then gram(run[1]) end
    for k = 1, #run - 1 do gram(run[k] .. run[k + 1]) end
  end
  for w in q:gmatch("[%w_\128-\255]+") do
    if not w:find("[\128-\255]") then
      word(w)
    else
      local piece, run, i = {}, {}, 1
      while i <= #w do
        local _, e = w:find("^[\128-\191]*", i + 1)
        local ch = w:sub(i, e)
        local c = ch:find("^[%w_]$") and "word" or class(ch)
        if c ~= "word" then word(table.concat(piece)); piece = {} end
        if c ~= "unspaced" then unspaced(run); run = {} end
        if c == "word" then piece[#piece + 1] = ch elseif c == "unspaced" then run[#run + 1] = ch end
        i = e + 1
      end
      word(table.concat(piece))
      unspaced(run)
    end
    if n >= MAX_TERMS then break end
  end
  return words, grams
end

local ROW = "SELECT m.id, m.card_id AS card, m.text, m.tags, m.created_at, "

-- the statement of a search for words alone (no gram: the query's words are ?4): FTS5
-- keeps the best limit of its matches, within the age (?3), as it ranks them
local WORDS = ROW .. [[-bm25(memory_fts) AS score FROM memory_fts JOIN memory m ON m.id = memory_fts.rowid
  WHERE memory_fts MATCH ?4 AND (?1 IS NULL OR m.card_id = ?1) AND (?3 IS NULL OR m.created_at > ?3)
  ORDER BY bm25(memory_fts), m.id DESC LIMIT ?2]]

--- search(db, query, card, limit[, since]) -> array of {id, card, text, tags = {...},
--- created_at, score} best first (score: higher is better; card nil: every card; since, a
--- stored time as the store writes it, "2026-01-01T00:00:00.000Z": only entries created
--- after it, left out before the limit counts) | nil, msg, CODE.
--- The query's terms (terms): any may match, a word as a prefix ("deploy" finds
--- "deployments"; never FTS syntax: queries come from model output), a gram as a substring
--- of the text or tags of one of the newest GRAM_SCAN entries. Score: bm25's (negated) of
--- the words plus the number of the query's grams the entry holds. A query with no terms
--- finds nothing.

function M.search(db, query, card, limit, since)
  local words, grams = terms(query)
  if #words + #grams == 0 then return {} end
  -- ?1 the card (nil: every card), ?2 the limit, ?3 the oldest time kept (nil: any), then
  -- what the query has
  local found, args, n = {}, { card, limit, since }, 3
  local function arg(v)
    n = n + 1
    args[n] = v
    return "?" .. n
  end
  if #words > 0 then
    local quoted = {} -- each a phrase ("make_inst": make, then inst) whose last token is a prefix
    for i, w in ipairs(words) do quoted[i] = '"' .. w .. '"*' end
    found[1] = "SELECT rowid, -bm25(memory_fts) FROM memory_fts WHERE memory_fts MATCH " .. arg(table.concat(quoted, " OR "))
  end
  local sql = WORDS
  if #grams > 0 then
    local scan, held = arg(GRAM_SCAN), {}
    for i, g in ipairs(grams) do held[i] = "(instr(t, " .. arg(g) .. ") > 0)" end
    found[#found + 1] = "SELECT id, s FROM (SELECT id, " .. table.concat(held, " + ") .. [[ AS s FROM
      (SELECT id, text || ' ' || tags AS t FROM memory WHERE ?1 IS NULL OR card_id = ?1 ORDER BY id DESC LIMIT ]]
      .. scan .. ")) WHERE s > 0"
    -- MATERIALIZED: bm25 refuses to run inside the sum, where SQLite would otherwise move it
    sql = "WITH found(id, s) AS MATERIALIZED (" .. table.concat(found, " UNION ALL ") .. ")\n" .. ROW
      .. [[sum(found.s) AS score FROM found JOIN memory m ON m.id = found.id
      WHERE (?1 IS NULL OR m.card_id = ?1) AND (?3 IS NULL OR m.created_at > ?3)
      GROUP BY m.id ORDER BY score DESC, m.id DESC LIMIT ?2]]
  end
  local rows, err, code = db:rows(sql, table.unpack(args, 1, n))
  if not rows then return nil, err, code end
  for _, r in ipairs(rows) do r.tags = split(r.tags) end
  return rows
end

local ops = require("orket.store.backend").twin("memory", M)
-- what both backends' searches read (set after twin: terms is not an operation on a store)
ops.terms, ops.MAX_TERMS, ops.GRAM_SCAN = terms, MAX_TERMS, GRAM_SCAN
return ops
