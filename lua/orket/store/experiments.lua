-- orket.store.experiments: each card's arm in the project's experiments (the
-- experiment_cards table; docs/cost.md, "Experiments"), written once with the card's first
-- work turn, and the figures of an experiment's cards that a report compares. Written once
-- for both backends (orket.store.dialect).
local M = {}

--- of(db, card) -> array of {experiment=, arm=, model=, role=}: the card's arms, by
--- experiment ({} before its first work turn)
-- one text (not joined per call): the store's statement cache finds it by its address
local OF = "SELECT experiment, arm, model, role FROM experiment_cards WHERE card_id = ? ORDER BY experiment"

function M.of(db, card)
  return assert(db:rows(OF, card))
end

--- record(db, card, arms[, at]): writes the card's arms ({experiment=, arm=, model=, role=}...)
--- unless it has some already: an arm is never changed once written. Inside the caller's
--- transaction. at: when the card's first turn began, as a stored time (db.conn:now() then);
--- the transaction's time without it. The first turn's first commit comes after its first
--- model call, so its time would leave that call out of the report's wall time.
function M.record(db, card, arms, at)
  if #M.of(db, card) > 0 then return end
  for _, a in ipairs(arms) do
    assert(db:run("INSERT INTO experiment_cards (experiment, card_id, arm, model, role, assigned_at) "
      .. "VALUES (?, ?, ?, ?, ?, COALESCE(?, " .. db.dialect.now .. ")) ON CONFLICT DO NOTHING",
      a.experiment, card, a.arm, a.model, a.role, at))
  end
end

--- started(db, card) -> true when the card has had a turn (any seat's, any run)
function M.started(db, card)
  return db:row("SELECT 1 AS one FROM events WHERE card_id = ? AND kind = 'turn_begin' LIMIT 1", card) ~= nil
end

--- names(db) -> sorted array of the experiments any card is in
function M.names(db)
  local out = {}
  for _, r in ipairs(assert(db:rows("SELECT DISTINCT experiment FROM experiment_cards ORDER BY experiment"))) do
    out[#out + 1] = r.experiment
  end
  return out
end

--- cards(db, name) -> array of {card=, arm=, model=, role=, status=, rejections=, turns=,
--- wall_ms=}, by arm then card: each card of the experiment, with the times a reviewer
--- sent it back (code_review -> in_progress), its turns (any seat's), and for a done card
--- the milliseconds from the start of its first work turn (assigned_at: before its first
--- model call) to done (nil otherwise)
function M.cards(db, name)
  local d = db.dialect
  local from, to = d.json_text("e.data", "from"), d.json_text("e.data", "to")
  local q = "SELECT x.card_id AS card, x.arm AS arm, x.model AS model, x.role AS role, c.status AS status, "
    .. d.integer("(SELECT COUNT(*) FROM events e WHERE e.card_id = x.card_id AND e.kind = 'transition' AND "
      .. from .. " = 'code_review' AND " .. to .. " = 'in_progress')") .. " AS rejections, "
    .. d.integer("(SELECT COUNT(*) FROM events e WHERE e.card_id = x.card_id AND e.kind = 'turn_begin')") .. " AS turns, "
    .. "(SELECT " .. d.ms_between("x.assigned_at", "MAX(e.at)") .. " FROM events e WHERE e.card_id = x.card_id "
      .. "AND e.kind = 'transition' AND " .. to .. " = 'done') AS wall_ms "
    .. "FROM experiment_cards x JOIN cards c ON c.id = x.card_id WHERE x.experiment = ? ORDER BY x.arm, x.card_id"
  return assert(db:rows(q, name))
end

return M
