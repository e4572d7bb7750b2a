-- orket.store.costs: tokens by kind and cost of the model calls (turns rows) of a scope:
-- a run, a card, an epic or a rock with the cards under it, a day, or the whole journal.
-- A turns row's data holds cached_tokens, cost (integer micro-units) and currency when
-- known (orket.engine.spend writes them; docs/cost.md). Written once for both backends
-- (orket.store.dialect's JSON pieces).
local M = {}

-- Each filter: its SQL condition on turns t and how many parameters it takes.
local FILTERS = {
  { "run", "t.run_id = ?", 1 },
  { "card", "t.card_id = ?", 1 },
  { "epic", "t.card_id IN (SELECT id FROM cards WHERE id = ? OR parent = ?)", 2 },
  { "rock", "t.card_id IN (SELECT id FROM cards WHERE id = ? OR parent = ? OR parent IN "
    .. "(SELECT id FROM cards WHERE parent = ?))", 3 },
  { "since", "t.created_at >= ?", 1 },
  { "after_turn", "t.id > ?", 1 },
}

--- spent(d, col) -> SQL of the cost (integer micro-units) in the JSON column col of
--- dialect d, a cost below 0 (recorded before usages were checked) counted as 0: every
--- sum of costs (here, /metrics) reads this one
function M.spent(d, col)
  local cost = d.json_int(col, "cost")
  return "CASE WHEN " .. cost .. " < 0 THEN 0 ELSE " .. cost .. " END"
end

--- rows(db, f) -> array of {model=, currency=, micros=, priced=, calls=, input=, cached=,
--- output=}, one per model and currency, for the calls matching every filter of
--- f {run=, card=, epic=, rock=, since= (a stored time's text), after_turn= (turns id)}.
--- input counts every prompt token (cached ones too); priced counts the calls with a cost.
function M.rows(db, f)
  local d = db.dialect
  local where, args = {}, {}
  for _, flt in ipairs(FILTERS) do
    local v = f and f[flt[1]]
    if v ~= nil then
      where[#where + 1] = flt[2]
      for _ = 1, flt[3] do args[#args + 1] = v end
    end
  end
  local cost, cached = d.json_int("t.data", "cost"), d.json_int("t.data", "cached_tokens")
  local spent = M.spent(d, "t.data")
  local q = "SELECT t.model AS model, " .. d.json_text("t.data", "currency") .. " AS currency, "
    .. d.integer("COALESCE(SUM(" .. spent .. "), 0)") .. " AS micros, "
    .. d.integer("COUNT(" .. cost .. ")") .. " AS priced, " .. d.integer("COUNT(*)") .. " AS calls, "
    .. d.integer("COALESCE(SUM(t.prompt_tokens), 0)") .. " AS input, "
    .. d.integer("COALESCE(SUM(" .. cached .. "), 0)") .. " AS cached, "
    .. d.integer("COALESCE(SUM(t.completion_tokens), 0)") .. " AS output FROM turns t"
    .. (#where > 0 and (" WHERE " .. table.concat(where, " AND ")) or "") .. " GROUP BY 1, 2 ORDER BY 1, 2"
  return assert(db:rows(q, table.unpack(args)))
end

--- totals(db, f) -> {cost = {currency = micros}, calls=, priced=, input=, cached=, output=}:
--- rows summed over models
function M.totals(db, f)
  local out = { cost = {}, calls = 0, priced = 0, input = 0, cached = 0, output = 0 }
  for _, r in ipairs(M.rows(db, f)) do
    for _, k in ipairs { "calls", "priced", "input", "cached", "output" } do out[k] = out[k] + (r[k] or 0) end
    if r.currency and (r.priced or 0) > 0 then out.cost[r.currency] = (out.cost[r.currency] or 0) + r.micros end
  end
  return out
end

--- approved_after(db, card) -> the turns id the card's last budget_approved event marks
--- (0: none): a person approved going on, so its money budgets count the calls after it
function M.approved_after(db, card)
  local row = db:row("SELECT " .. db.dialect.json_int("data", "turn") .. " AS turn FROM events WHERE card_id = ? "
    .. "AND kind = 'budget_approved' ORDER BY id DESC LIMIT 1", card)
  return row and row.turn or 0
end

--- last_turn(db) -> the newest turns row's id (0: none): a mark later sums start after
function M.last_turn(db)
  local row = db:row("SELECT max(id) AS id FROM turns")
  return row and row.id or 0
end

return M
