-- orket.store.restore_runs: run ids never given twice, even after a restore. A store restored
-- from an older backup knows only the runs up to it, and gave the later ones' ids out again:
-- a card's branch that still held a dropped run's commit (its Orket-Turn trailer RUN/CARD/TURN)
-- then met a new run's turn of the same key, which took that commit for its own ("made before
-- a restart") and merged the dropped run's files into main. As sandbox ids are
-- (orket.sandboxes.service), each id the replaced store gave out and the restored one lacks
-- is kept by a row of its own, ended, saying so: read before the copy (given), written in the
-- copy's transaction (keep), on either backend by the same statements.
local runs = require "orket.store.runs"
local statement = require("orket.store.dialect").statement
local cjson = require "cjson.safe"
local fieldline = require "orket.fieldline"

local M = {}

--- STATUS: a kept id's row's: ended, and passed over by a resume that names no run while
--- any other run is not done (orket resume: a stopped run that recorded no model response)
M.STATUS = "stopped"

--- REASON: why such a row is there (its data's restore.reason)
M.REASON = "its id was given out by the store this restore replaced, whose run the backup does not hold; the row "
  .. "keeps the id from being given again"

-- the most rows of the replaced store read for their targets; older kept ids are named "?"
M.READ_MAX = 10000

-- (no run_start or run_end event: the journal's runs are runs that worked, and a later
-- restore counts the events after its backup's newest as work it drops)
local INSERT = statement(function(d)
  return "INSERT INTO runs (target, kind, status, started_at, ended_at, data) VALUES (?, ?, '" .. M.STATUS .. "', "
    .. d.now .. ", " .. d.now .. ", ?)"
end)

local function int(v) return math.tointeger(tonumber(v)) end

--- given(db) -> {upto=, rows = {[id] = {target=, kind=}}} | nil: the ids the store db gave
--- out (read before a restore replaces it): its highest, and the newest READ_MAX runs'
--- targets; nil when it has none. Raises on a store error.
function M.given(db)
  local upto = int(runs.latest_id(db))
  if not upto then return nil end
  local rows = {}
  local read = assert(db:rows("SELECT id, target, kind FROM runs WHERE id > ? ORDER BY id", upto - M.READ_MAX))
  for _, r in ipairs(read) do
    rows[int(r.id)] = { target = tostring(r.target), kind = tostring(r.kind) }
  end
  return { upto = upto, rows = rows }
end

-- the most cards worked_cards names
M.CARDS_MAX = 10000

--- kept(row) -> the restore's words ({file=, reason=}) when the run row (its data, JSON
--- text or decoded) is one keep wrote, a dropped run's id that never ran in this store
--- (nothing to resume), else nil
function M.kept(row)
  local data = row and row.data
  if type(data) == "string" then data = cjson.decode(data) end
  local r = type(data) == "table" and data.restore
  return type(r) == "table" and type(r.reason) == "string" and r or nil
end

--- worked_cards(db, since) -> {card id, ...} (sorted, at most CARDS_MAX): the cards runs
--- worked on in the store's journal after since (a time; nil: in all of it), read before a
--- restore of a backup whose newest event is at since replaces it: the cards whose branches
--- and directories may hold that dropped work. Raises on a store error.
function M.worked_cards(db, since)
  local sql = "SELECT DISTINCT card_id FROM events WHERE card_id IS NOT NULL AND run_id IS NOT NULL"
    .. (since and " AND at > ?" or "") .. " ORDER BY card_id LIMIT " .. M.CARDS_MAX
  local out = {}
  local rows, err
  if since then rows, err = db:rows(sql, since) else rows, err = db:rows(sql) end
  for _, r in ipairs(assert(rows, err)) do out[#out + 1] = tostring(r.card_id) end
  return out
end

--- keep(db, given, file) -> {from=, to=} | nil: inside the restore's transaction, once the
--- store holds the backup: a row for each id from the store's next up to given.upto
--- (given(): the replaced store's), so that its next run's id is above every one that store
--- gave out; file: the backup restored, named in each row's data. nil: none was needed.
--- An upto read off commits (given.guessed: a store that could not be read) keeps at most
--- READ_MAX ids past the backup's: a commit's text names any number.
--- Raises on a store error (the transaction rolls back).
function M.keep(db, given, file)
  if not (given and given.upto) then return nil end
  local have, from = int(runs.latest_id(db)) or 0, nil
  local upto = given.guessed and math.min(given.upto, have + M.READ_MAX) or given.upto
  while have < upto do
    local next_id = have + 1
    local old = given.rows and given.rows[next_id] or {}
    local data = assert(cjson.encode { restore = { file = file, reason = M.REASON } })
    assert(db:run(INSERT(db), old.target or "?", old.kind or "?", data))
    local id = int(runs.latest_id(db))
    -- (an id that did not move would loop for ever: a store that gives none out is broken)
    if not id or id <= have then error("store: a run row was written, and the highest run id stayed " .. have, 0) end
    from, have = from or id, id
  end
  return from and { from = from, to = have }
end

-- What a restore needs of the store it replaces is read before the copy; a restore killed
-- after the copy is run again on a store that holds the backup already, which gave those ids
-- out to no one and worked no card since. So it is written (synced) beside the restore's
-- marker (.orket/restore.pending, orket.audit.restore) before the copy, read by the rerun,
-- and removed with the marker.
M.NOTE = "restore.pending-runs"
-- the most bytes of a note read (READ_MAX rows and CARDS_MAX cards fit well under it)
M.NOTE_MAX = 8 * 1024 * 1024

local function note_path(dir) return (dir or ".") .. "/.orket/" .. M.NOTE end

--- needs{given=, cards=, all=, guessed=} -> what a restore needs: given (given(), or nil),
--- cards (worked_cards), all (every card branch is looked at: the store could not be read),
--- guessed (given's upto is read off commits) -> {upto=, rows=, cards=, all=, guessed=}
function M.needs(o)
  local g = o.given or {}
  return { upto = g.upto, rows = g.rows or {}, cards = o.cards or {}, all = o.all or false,
    guessed = o.guessed or false }
end

--- merged(a, b) -> the needs of both (b: an earlier restore's, killed after its copy | nil)
function M.merged(a, b)
  if not b then return a end
  local out = { upto = a.upto, rows = {}, cards = {}, all = a.all or b.all, guessed = a.guessed }
  -- (the higher upto, with whether it was read off commits)
  if b.upto and (not out.upto or b.upto > out.upto) then out.upto, out.guessed = b.upto, b.guessed end
  for _, side in ipairs { b, a } do
    for id, r in pairs(side.rows) do out.rows[id] = r end
  end
  local seen = {}
  for _, side in ipairs { a, b } do
    for _, c in ipairs(side.cards) do
      if not seen[c] and #out.cards < M.CARDS_MAX then
        seen[c] = true
        out.cards[#out.cards + 1] = c
      end
    end
  end
  table.sort(out.cards)
  return out
end

--- note(dir, needs) -> true | nil, msg, CODE: needs written (synced) for a rerun
function M.note(dir, needs)
  local rows = {}
  for id, r in pairs(needs.rows) do rows[#rows + 1] = { id, r.target, r.kind } end
  local text = assert(cjson.encode { upto = needs.upto, rows = rows, cards = needs.cards, all = needs.all,
    guessed = needs.guessed })
  return fieldline.write_whole(note_path(dir), text .. "\n", 384)
end

--- noted(dir) -> the needs an earlier restore noted (its marker still there) | nil (none,
--- or not readable as one: the rerun reads what it can)
function M.noted(dir)
  local f = io.open(note_path(dir), "r")
  if not f then return nil end
  local text = f:read(M.NOTE_MAX + 1) or ""
  f:close()
  local m = #text <= M.NOTE_MAX and cjson.decode(text)
  if type(m) ~= "table" then return nil end
  local out = { upto = int(m.upto), rows = {}, cards = {}, all = m.all == true, guessed = m.guessed == true }
  for _, r in ipairs(type(m.rows) == "table" and m.rows or {}) do
    local id = type(r) == "table" and int(r[1])
    if id then out.rows[id] = { target = tostring(r[2]), kind = tostring(r[3]) } end
  end
  for _, c in ipairs(type(m.cards) == "table" and m.cards or {}) do
    if type(c) == "string" and #out.cards < M.CARDS_MAX then out.cards[#out.cards + 1] = c end
  end
  return out
end

--- unnote(dir): the note removed (the restore recorded, or none pending)
function M.unnote(dir)
  os.remove(note_path(dir))
end

return M
