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
--- Raises on a store error (the transaction rolls back).
function M.keep(db, given, file)
  if not given then return nil end
  local have, from = int(runs.latest_id(db)) or 0, nil
  while have < given.upto do
    local next_id = have + 1
    local old = given.rows[next_id] or {}
    local data = assert(cjson.encode { restore = { file = file, reason = M.REASON } })
    assert(db:run(INSERT(db), old.target or "?", old.kind or "?", data))
    local id = int(runs.latest_id(db))
    -- (an id that did not move would loop for ever: a store that gives none out is broken)
    if not id or id <= have then error("store: a run row was written, and the highest run id stayed " .. have, 0) end
    from, have = from or id, id
  end
  return from and { from = from, to = have }
end

return M
