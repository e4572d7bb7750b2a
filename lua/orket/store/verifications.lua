-- orket.store.verifications: acceptance checks and their results as named operations: an
-- issue's checks (cards.verification, JSON) and the verifications rows, one per hand-in
-- checked. Each is op(db, ...) -> plain Lua values: passed as 1/0, times as ISO text, on
-- either backend (written once: orket.store.dialect).
local json = require "cjson.safe"
local dialect = require "orket.store.dialect"

local M = {}
local sql = dialect.statement

--- checks(db, card_id) -> the card's stored checks, decoded | nil (none, or not JSON)
-- built once per dialect: a text made again per call misses the store's statement cache's
-- quick find (by the text's address) and is hashed whole, every turn of a hand-in
local CHECKS = sql(function(d) return "SELECT " .. d.json("verification") .. " FROM cards WHERE id = ?" end)

function M.checks(db, card_id)
  local row = db:row(CHECKS(db), card_id)
  return row and row.verification and json.decode(row.verification) or nil
end

--- sandbox_checks(db, card_id) -> the card's checks against its running sandbox (the normal
--- form of orket.sandboxes.accept, stored beside its verification) | nil
function M.sandbox_checks(db, card_id)
  local spec = M.checks(db, card_id)
  local list = type(spec) == "table" and spec.sandbox_checks
  return type(list) == "table" and next(list) ~= nil and list or nil
end

--- insert(db, v) -> id (raises on a store error). v: {card=, run=, handin=, passed=bool,
--- command=, reason=, code=, signal=, wall_ms=, output=, layers=}; `at` is the clock's
--- time when the row is written.
function M.insert(db, v)
  local d = db.dialect
  local _, id = assert(db:run([[INSERT INTO verifications (card_id, run_id, handin, passed, command, reason, code, signal,
    wall_ms, output, layers, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ]] .. d.wall .. ")" .. d.returning_id,
    v.card, v.run, v.handin, d.bool(v.passed), v.command, v.reason, v.code, v.signal, v.wall_ms, v.output, v.layers))
  return id
end

-- every column
local function all(d)
  return "id, card_id, run_id, handin, " .. d.flag("passed") .. ", command, reason, code, signal, wall_ms, output, "
    .. "layers, " .. d.time("at")
end

-- the row of the card's highest id, found through max(): ORDER BY id DESC LIMIT 1 made SQLite
-- build a temporary b-tree at every call (a reviewer's every turn), five times this read
local LAST = sql(function(d)
  return "SELECT " .. all(d) .. " FROM verifications WHERE id = (SELECT max(id) FROM verifications WHERE card_id = ?)"
end)

--- last(db, card_id) -> the card's latest verification row | nil
function M.last(db, card_id)
  return db:row(LAST(db), card_id)
end

--- results(db, card_id) -> the card's verification rows, oldest first ({} on a store error)
function M.results(db, card_id)
  return db:rows("SELECT " .. all(db.dialect) .. " FROM verifications WHERE card_id = ? ORDER BY id", card_id) or {}
end

return M
