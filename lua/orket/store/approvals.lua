-- orket.store.approvals: the approvals table (tool calls the gate held for a developer) as
-- named operations; the rules (digests, comments, card moves) are orket.actions.approvals'.
-- Each is op(db, ...) -> rows as tables (run_id read as run, card_id as card; times as ISO
-- text) | nil. Written once for both backends (orket.store.dialect).
local M = {}

-- the columns of a request, for the dialect d
local function cols(d)
  return "id, run_id AS run, card_id AS card, seat, turn, turn_id, tool, arguments, digest, rule, reason, "
    .. d.time("requested_at") .. ", decision, " .. d.time("decided_at") .. ", decided_by, note, " .. d.time("used_at")
    .. ", used_turn_id"
end

--- pending(db, card) -> the card's undecided request | nil
function M.pending(db, card)
  return db:row("SELECT " .. cols(db.dialect) .. " FROM approvals WHERE card_id = ? AND decision IS NULL", card)
end

-- "'archived', 'canceled', 'done'": the statuses of a finished card, as SQL. A cancel ends a
-- card waiting for a decision and leaves its request unanswered (orket.actions.move: a
-- cancel is no decision on the call), which nothing can decide any more: the reads of what
-- waits leave those out, as no one is to decide them.
local FINISHED = {}
for st in pairs(require("orket.card").FINAL) do FINISHED[#FINISHED + 1] = "'" .. st .. "'" end
table.sort(FINISHED)
FINISHED = table.concat(FINISHED, ", ")
M.FINISHED_SQL = FINISHED

--- held_cards(db) -> the ids of the unfinished cards with an undecided request, sorted (at
--- most one a card: the partial unique index this read walks); raises on a store error
function M.held_cards(db)
  local ids = {}
  for _, r in ipairs(assert(db:rows("SELECT a.card_id AS card FROM approvals a JOIN cards c ON c.id = a.card_id "
    .. "WHERE a.decision IS NULL AND c.status NOT IN (" .. FINISHED .. ")"))) do
    ids[#ids + 1] = r.card
  end
  table.sort(ids) -- (by bytes on both stores: PostgreSQL's ORDER BY follows its collation)
  return ids
end

--- list(db, card) -> every request of the card, oldest first (raises on a store error)
function M.list(db, card)
  return assert(db:rows("SELECT " .. cols(db.dialect) .. " FROM approvals WHERE card_id = ? ORDER BY id", card))
end

--- get(db, id) -> request | nil
function M.get(db, id)
  return db:row("SELECT " .. cols(db.dialect) .. " FROM approvals WHERE id = ?", id)
end

--- approved(db, card, tool, digest) -> the oldest approved, unused request for this call | nil
function M.approved(db, card, tool, digest)
  return db:row("SELECT " .. cols(db.dialect) .. [[ FROM approvals WHERE card_id = ? AND tool = ? AND digest = ?
    AND decision = 'approve' AND used_at IS NULL ORDER BY id LIMIT 1]], card, tool, digest)
end

--- refused(db, card, tool, digest) -> the latest denied request for this call | nil
function M.refused(db, card, tool, digest)
  return db:row("SELECT " .. cols(db.dialect) .. [[ FROM approvals WHERE card_id = ? AND tool = ? AND digest = ?
    AND decision = 'deny' ORDER BY id DESC LIMIT 1]], card, tool, digest)
end

--- insert(db, r) -> id | nil, msg, CODE (ECONSTRAINT naming UNIQUE: the card already has
--- an undecided request). r: {run=, card=, seat=, turn=, turn_id=, tool=, arguments=,
--- digest=, rule=, reason=}; requested now.
-- The partial unique index refuses a second undecided request. The caller goes on in its
-- transaction after that refusal (it answers EEXIST), which a failed statement would abort
-- on PostgreSQL: the conflict is skipped instead and reported as a constraint's refusal.
function M.insert(db, r)
  local d = db.dialect
  local n, id, code = db:run("INSERT INTO approvals (run_id, card_id, seat, turn, turn_id, tool, arguments, digest, "
    .. "rule, reason, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " .. d.now .. ") "
    .. "ON CONFLICT (card_id) WHERE decision IS NULL DO NOTHING" .. d.returning_id,
    r.run, r.card, r.seat, r.turn, r.turn_id, r.tool, r.arguments, r.digest, r.rule, r.reason)
  if not n then return nil, id, code end
  if n == 0 then return nil, "UNIQUE constraint failed: approvals.card_id (an undecided request)", "ECONSTRAINT" end
  return id
end

--- mark_used(db, id, turn_id) -> true when request id was an unused approval, now used
function M.mark_used(db, id, turn_id)
  local n = assert(db:run("UPDATE approvals SET used_at = " .. db.dialect.now .. ", used_turn_id = ? WHERE id = ? "
    .. "AND used_at IS NULL AND decision = 'approve'", turn_id, id))
  return n == 1
end

--- set_decision(db, id, decision, by, note): decided now (raises on a store error)
function M.set_decision(db, id, decision, by, note)
  assert(db:run("UPDATE approvals SET decision = ?, decided_at = " .. db.dialect.now .. ", decided_by = ?, note = ? "
    .. "WHERE id = ?", decision, by, note, id))
end

return M
