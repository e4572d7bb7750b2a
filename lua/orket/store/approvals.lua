-- orket.store.approvals: the approvals table (tool calls the gate held for a developer) as
-- named operations; the rules (digests, comments, card moves) are orket.actions.approvals'.
-- Each is op(db, ...) -> rows as tables (run_id read as run, card_id as card) | nil.
local store = require "orket.store"

local M = {}

local NOW = store.NOW
local COLS = [[id, run_id AS run, card_id AS card, seat, turn, turn_id, tool, arguments, digest, rule,
  reason, requested_at, decision, decided_at, decided_by, note, used_at, used_turn_id]]

--- pending(db, card) -> the card's undecided request | nil
function M.pending(db, card)
  return db:row("SELECT " .. COLS .. " FROM approvals WHERE card_id = ? AND decision IS NULL", card)
end

--- list(db, card) -> every request of the card, oldest first (raises on a store error)
function M.list(db, card)
  return assert(db:rows("SELECT " .. COLS .. " FROM approvals WHERE card_id = ? ORDER BY id", card))
end

--- get(db, id) -> request | nil
function M.get(db, id)
  return db:row("SELECT " .. COLS .. " FROM approvals WHERE id = ?", id)
end

--- approved(db, card, tool, digest) -> the oldest approved, unused request for this call | nil
function M.approved(db, card, tool, digest)
  return db:row("SELECT " .. COLS .. [[ FROM approvals WHERE card_id = ? AND tool = ? AND digest = ?
    AND decision = 'approve' AND used_at IS NULL ORDER BY id LIMIT 1]], card, tool, digest)
end

--- refused(db, card, tool, digest) -> the latest denied request for this call | nil
function M.refused(db, card, tool, digest)
  return db:row("SELECT " .. COLS .. [[ FROM approvals WHERE card_id = ? AND tool = ? AND digest = ?
    AND decision = 'deny' ORDER BY id DESC LIMIT 1]], card, tool, digest)
end

--- insert(db, r) -> id | nil, msg, CODE (ECONSTRAINT naming UNIQUE: the card already has
--- an undecided request). r: {run=, card=, seat=, turn=, turn_id=, tool=, arguments=,
--- digest=, rule=, reason=}; requested now.
function M.insert(db, r)
  local n, id, code = db:run("INSERT INTO approvals (run_id, card_id, seat, turn, turn_id, tool, arguments, digest, "
    .. "rule, reason, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " .. NOW .. ")",
    r.run, r.card, r.seat, r.turn, r.turn_id, r.tool, r.arguments, r.digest, r.rule, r.reason)
  if not n then return nil, id, code end
  return id
end

--- mark_used(db, id, turn_id) -> true when request id was an unused approval, now used
function M.mark_used(db, id, turn_id)
  local n = assert(db:run("UPDATE approvals SET used_at = " .. NOW .. ", used_turn_id = ? WHERE id = ? "
    .. "AND used_at IS NULL AND decision = 'approve'", turn_id, id))
  return n == 1
end

--- set_decision(db, id, decision, by, note): decided now (raises on a store error)
function M.set_decision(db, id, decision, by, note)
  assert(db:run("UPDATE approvals SET decision = ?, decided_at = " .. NOW .. ", decided_by = ?, note = ? WHERE id = ?",
    decision, by, note, id))
end

return require("orket.store.backend").twin("approvals", M)
