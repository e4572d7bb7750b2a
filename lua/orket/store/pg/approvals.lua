-- orket.store.pg.approvals: orket.store.approvals' operations on PostgreSQL (same names
-- and shapes: times as ISO text).
local iso = require("orket.store.pgdb").iso

local M = {}

local COLS = "id, run_id AS run, card_id AS card, seat, turn, turn_id, tool, arguments, digest, rule, reason, "
  .. iso("requested_at") .. ", decision, " .. iso("decided_at") .. ", decided_by, note, " .. iso("used_at")
  .. ", used_turn_id"

function M.pending(db, card)
  return db:row("SELECT " .. COLS .. " FROM approvals WHERE card_id = $1 AND decision IS NULL", card)
end

function M.list(db, card)
  return assert(db:rows("SELECT " .. COLS .. " FROM approvals WHERE card_id = $1 ORDER BY id", card))
end

function M.get(db, id)
  return db:row("SELECT " .. COLS .. " FROM approvals WHERE id = $1", id)
end

function M.approved(db, card, tool, digest)
  return db:row("SELECT " .. COLS .. [[ FROM approvals WHERE card_id = $1 AND tool = $2 AND digest = $3
    AND decision = 'approve' AND used_at IS NULL ORDER BY id LIMIT 1]], card, tool, digest)
end

function M.refused(db, card, tool, digest)
  return db:row("SELECT " .. COLS .. [[ FROM approvals WHERE card_id = $1 AND tool = $2 AND digest = $3
    AND decision = 'deny' ORDER BY id DESC LIMIT 1]], card, tool, digest)
end

-- A second undecided request is refused by the partial unique index. The caller goes on in
-- its transaction after that refusal (it answers EEXIST), which a failed statement would
-- abort on PostgreSQL: the conflict is skipped instead and reported as SQLite reports it.
function M.insert(db, r)
  local n, id, code = db:run([[INSERT INTO approvals (run_id, card_id, seat, turn, turn_id, tool, arguments, digest,
    rule, reason, requested_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
    ON CONFLICT (card_id) WHERE decision IS NULL DO NOTHING RETURNING id]],
    r.run, r.card, r.seat, r.turn, r.turn_id, r.tool, r.arguments, r.digest, r.rule, r.reason)
  if not n then return nil, id, code end
  if n == 0 then return nil, "UNIQUE constraint failed: approvals.card_id (an undecided request)", "ECONSTRAINT" end
  return id
end

function M.mark_used(db, id, turn_id)
  local n = assert(db:run([[UPDATE approvals SET used_at = now(), used_turn_id = $1 WHERE id = $2
    AND used_at IS NULL AND decision = 'approve']], turn_id, id))
  return n == 1
end

function M.set_decision(db, id, decision, by, note)
  assert(db:run("UPDATE approvals SET decision = $1, decided_at = now(), decided_by = $2, note = $3 WHERE id = $4",
    decision, by, note, id))
end

return M
