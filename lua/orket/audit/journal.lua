-- orket.audit.journal: the journal's api_write rows checked against the audit chain's
-- entries (orket audit verify). The journal holds no hashes: a row reattributed, removed or
-- made up would pass unseen, while GET /v1/audit and orket card read it. orket serve writes
-- each row with its chain entry, in one transaction (orket.serve.writes' audited): the row
-- names the entry (data.chain = its seq), and the entry says a row was written with it
-- (journal=api_write in its hashed detail). Rows and entries written before that carry
-- neither, and are not checked; neither are entries retention removed.
local sj = require "orket.store.journal_reads"
local ops = require "orket.store.audit"
local chain = require "orket.audit.chain"

local M = {}

local PAGE = 1000
local MAX = 50 -- problems named one by one; past that, counted

-- the providers' and directories' rows (orket.serve.identity's audited) name no entry yet:
-- not taken for rows made up, were one to name a card
local UNLINKED = { ldap = true, oidc = true }

local function int(v) return math.tointeger(tonumber(v)) end
local null = require("cjson.safe").null

-- a JSON value as the entry's words took it: a whole number read back as a float (3.0) is
-- the integer it was written as
local function plain(v)
  if v == null then return nil end
  if math.type(v) == "float" and math.tointeger(v) then return math.tointeger(v) end
  return v
end

-- the detail a row's entry must have: its subject and decision words, and the mark
local function detail_of(d)
  local words = {}
  for k, v in pairs(type(d.subject) == "table" and d.subject or {}) do words[k] = plain(v) end
  for k, v in pairs(type(d.decision) == "table" and d.decision or {}) do words[k] = plain(v) end
  words.journal = "api_write"
  local ok, text = pcall(chain.subject, words)
  return ok and text or nil
end

-- the first field a row and its entry disagree on -> name, the row's, the entry's | nil
local function differs(r, e)
  local d = r.data
  local pairs_ = { { "actor", r.actor, e.actor }, { "action", d.action, e.action }, { "card", r.card, e.card },
    { "route", d.route, e.route }, { "detail", detail_of(d), e.detail } }
  for _, p in ipairs(pairs_) do
    local a, b = plain(p[2]), plain(p[3])
    if tostring(a) ~= tostring(b) then return p[1], a == nil and "none" or a, b == nil and "none" or b end
  end
end

--- check(db) -> problems: each api_write row whose entry disagrees with it (actor, action,
--- card, route, subject and decision), or names an entry the chain does not hold, two rows
--- naming one entry, a card's row naming none written after rows that do (the people and
--- session rows, which have no card, name none: orket.serve.writes), and each entry written
--- with a row the journal no longer holds. The chain's own checks are orket.audit.verify's.
--- The journal's rows are read once and the chain once, in pages: a row's entry is matched
--- as the chain's pass reaches it, not read on its own (a query a row).
function M.check(db)
  local problems, extra = {}, 0
  local function problem(fmt, ...)
    if #problems < MAX then problems[#problems + 1] = string.format(fmt, ...) else extra = extra + 1 end
  end
  local first = db:read(function() return ops.page(db, 0, 1) end)[1]
  local first_seq = first and int(first.seq) or math.huge
  -- seq -> what its row says (only the fields compared: the rows' data stays unkept)
  local linked, linking = {}, nil -- linking: the first row that names an entry
  local after = 0
  while true do
    local rows = db:read(function() return sj.api_writes(db, after, PAGE) end)
    for _, r in ipairs(rows) do
      local d = type(r.data) == "table" and r.data or {}
      local seq = int(d.chain)
      local what = string.format("journal row %d (api_write %s by %s)", r.id, tostring(d.action), tostring(r.actor))
      if seq then
        linking = linking or r.id
        if linked[seq] then
          problem("%s names audit entry %d, as journal row %d does: one of them was made up or changed", what, seq,
            linked[seq].id)
        elseif seq >= first_seq then
          linked[seq] = { id = r.id, what = what, actor = r.actor, card = r.card,
            data = { action = d.action, route = d.route, subject = d.subject, decision = d.decision } }
        end
      elseif linking and r.card ~= nil and r.card ~= null and not UNLINKED[r.actor] then
        problem("%s names no audit entry, though it was written after journal row %d, which does: it was made up "
          .. "or changed", what, linking)
      end
    end
    if #rows < PAGE then break end
    after = rows[#rows].id
  end
  -- the chain's pass: each entry a row names is compared; each written with a row must
  -- still have it
  local seq = 0
  while true do
    local rows = db:read(function() return ops.page(db, seq, PAGE) end)
    for _, e in ipairs(rows) do
      local s = int(e.seq)
      local r = linked[s]
      if r then
        r.seen = true
        local field, mine, theirs = differs(r, e)
        if field then
          problem("%s disagrees with audit entry %d on its %s: the journal says %s, the chain %s: the journal "
            .. "row was changed (the chain's entry is the record)", r.what, s, field, tostring(mine),
            tostring(theirs))
        end
      elseif e.kind == "write" and chain.detail(e).journal == "api_write" then
        problem("audit entry %d (%s by %s%s) was written with a journal row (api_write), which the journal no "
          .. "longer holds: it was removed", s, tostring(e.action), tostring(e.actor),
          e.card and (", card " .. e.card) or "")
      end
    end
    if #rows < PAGE then break end
    seq = int(rows[#rows].seq)
  end
  local missing = {}
  for s, r in pairs(linked) do if not r.seen then missing[#missing + 1] = s end end
  table.sort(missing)
  for _, s in ipairs(missing) do
    problem("%s names audit entry %d, which the chain does not hold", linked[s].what, s)
  end
  if extra > 0 then
    problems[#problems + 1] = string.format("and %d more disagreements of the journal with the chain", extra)
  end
  return problems
end

return M
