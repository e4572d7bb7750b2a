-- orket.store.verifications: acceptance checks and their results as named operations: an
-- issue's checks (cards.verification, JSON) and the verifications rows, one per hand-in
-- checked. Each is op(db, ...) -> plain Lua values.
local json = require "cjson.safe"

local M = {}

--- checks(db, card_id) -> the card's stored checks, decoded | nil (none, or not JSON)
function M.checks(db, card_id)
  local row = db:row("SELECT verification FROM cards WHERE id = ?", card_id)
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
  local _, id = assert(db:run([[INSERT INTO verifications (card_id, run_id, handin, passed, command, reason, code, signal,
    wall_ms, output, layers, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))]],
    v.card, v.run, v.handin, v.passed and 1 or 0, v.command, v.reason, v.code, v.signal, v.wall_ms, v.output, v.layers))
  return id
end

--- last(db, card_id) -> the card's latest verification row | nil
function M.last(db, card_id)
  return db:row("SELECT * FROM verifications WHERE card_id = ? ORDER BY id DESC LIMIT 1", card_id)
end

--- results(db, card_id) -> the card's verification rows, oldest first ({} on a store error)
function M.results(db, card_id)
  return db:rows("SELECT * FROM verifications WHERE card_id = ? ORDER BY id", card_id) or {}
end

return require("orket.store.backend").twin("verifications", M)
