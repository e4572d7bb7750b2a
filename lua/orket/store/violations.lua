-- orket.store.violations: the policy violations of the whole board, newest first. Each is a
-- gate denial (a tool the role may not use, a path, an operator's policy rule, a move the
-- state machine refused) that db:record_violation (orket.store.records) wrote with its turn
-- and a "violation" journal event. One query for both stores.
local M = {}

M.MAX = 200 -- rows a page holds at most

local COLUMNS = [[SELECT v.id, v.card_id, t.run_id, t.turn, v.seat, v.rule, v.attempt, v.detail, v.remedy,
  v.created_at FROM violations v LEFT JOIN turns t ON t.id = v.turn_id]]

--- list(db, {card=, rule=, before=, limit=}) -> array of {id, card, run, turn, seat, rule,
--- attempt, detail, remedy, created_at}, newest first | nil, msg, CODE. before: only ids
--- below it (the next page); limit: 50 by default, M.MAX at most.
function M.list(db, q)
  q = q or {}
  local where, args = {}, {}
  for _, f in ipairs { { "card", "v.card_id = ?" }, { "rule", "v.rule = ?" }, { "before", "v.id < ?" } } do
    if q[f[1]] ~= nil then
      where[#where + 1] = f[2]
      args[#args + 1] = q[f[1]]
    end
  end
  args[#args + 1] = math.min(q.limit or 50, M.MAX)
  local sql = COLUMNS .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "") .. " ORDER BY v.id DESC LIMIT ?"
  local rows, err, code = db:rows(sql, table.unpack(args))
  if not rows then return nil, err, code end
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = { id = r.id, card = r.card_id, run = r.run_id, turn = r.turn, seat = r.seat, rule = r.rule,
      attempt = r.attempt, detail = r.detail, remedy = r.remedy, created_at = r.created_at }
  end
  return out
end

--- by_rule(db) -> array of {rule, n}: how many violations each rule has, most first
function M.by_rule(db)
  return db:rows("SELECT rule, COUNT(*) AS n FROM violations GROUP BY rule ORDER BY n DESC, rule LIMIT ?", M.MAX)
end

M.MAX_CARDS = 1000 -- cards by_card counts at most (those with the most violations)

--- by_card(db) -> array of {card_id, n}: how many violations each card has, most first
function M.by_card(db)
  return db:rows([[SELECT card_id, COUNT(*) AS n FROM violations WHERE card_id IS NOT NULL GROUP BY card_id
    ORDER BY n DESC, card_id LIMIT ?]], M.MAX_CARDS)
end

return M
