-- orket.store.costs: tokens by kind and cost of the model calls (turns rows) of a scope:
-- a run, a card, an epic or a rock with the cards under it, a day, or the whole journal.
-- A turns row's data holds cached_tokens, cost (integer micro-units) and currency when
-- known (orket.engine.spend writes them; docs/cost.md). Written once for both backends
-- (orket.store.dialect's JSON pieces).
local cost = require "orket.cost"
local backend = require "orket.store.backend"
local dialect = require "orket.store.dialect"

local M = {}

-- Each filter: its SQL condition on a call's row r (turns, or the calls below), how many
-- parameters it takes, and whether it holds for the calls of turns rows ("turns") or of
-- charged model failures ("failures") only. after_turn marks a turns id, after_event an
-- events id: a scope counted from a moment names both.
local FILTERS = {
  { "run", "r.run_id = ?", 1 },
  { "card", "r.card_id = ?", 1 },
  { "epic", "r.card_id IN (SELECT id FROM cards WHERE id = ? OR parent = ?)", 2 },
  { "rock", "r.card_id IN (SELECT id FROM cards WHERE id = ? OR parent = ? OR parent IN "
    .. "(SELECT id FROM cards WHERE parent = ?))", 3 },
  { "since", "r.at >= ?", 1 },
  { "after_turn", "r.id > ?", 1, "turns" },
  { "after_event", "r.id > ?", 1, "failures" },
  { "upto_turn", "r.id + 0 <= ?", 1, "turns" },
  { "upto_event", "r.id + 0 <= ?", 1, "failures" },
}

-- A source of calls as rows r (id, run_id, card_id, at, model, data, est): the turns, and the
-- model failures whose answer's usage was refused, charged as the call's estimate
-- (orket.engine.spend.refused), whose data holds the charged tokens and cost. est is 1 for
-- a call whose counts were estimated (a turn's data.estimated, written by orket.engine.turn
-- when the provider sent none or not all; every charged failure), NULL otherwise.
local function sources(d)
  return {
    { "turns", "(SELECT id, run_id, card_id, created_at AS at, model, seat, data, prompt_tokens, completion_tokens, "
      .. d.json_int("data", "estimated") .. " AS est FROM turns)" },
    { "failures", "(SELECT id, run_id, card_id, at, " .. d.json_text("data", "model") .. " AS model, actor AS seat, data, "
      .. d.json_int("data", "prompt_tokens") .. " AS prompt_tokens, " .. d.json_int("data", "completion_tokens")
      .. " AS completion_tokens, 1 AS est FROM events WHERE kind = 'model_failure')" },
  }
end

--- spent(d, col) -> SQL of the cost (integer micro-units) in the JSON column col of
--- dialect d, a cost below 0 (recorded before usages were checked) counted as 0: every
--- sum of costs (here, /metrics) reads this one
function M.spent(d, col)
  local c = d.json_int(col, "cost")
  return "CASE WHEN " .. c .. " < 0 THEN 0 ELSE " .. c .. " END"
end

--- charged_tokens(d, col) -> SQL of the tokens a model_failure event's data col charged
--- (its answer's usage was refused: orket.engine.spend.refused), 0 for any other
function M.charged_tokens(d, col)
  return "COALESCE(" .. d.json_int(col, "prompt_tokens") .. " + " .. d.json_int(col, "completion_tokens") .. ", 0)"
end

--- query(d, f[, by]) -> SQL, args: the statement of rows(db, f) in dialect d (its plan is
--- checked for indexes: a budget reads it before each model call); by "seat": its rows
--- by the seat that made the calls (a turns row's seat, a model failure's actor) instead of
--- by model
function M.query(d, f, by)
  local key = by == "seat" and "seat" or "model"
  local parts, args = {}, {}
  for _, src in ipairs(sources(d)) do
    local name, from = src[1], src[2]
    local where = { name == "failures" and (d.json_int("r.data", "prompt_tokens") .. " IS NOT NULL") or "1 = 1" }
    for _, flt in ipairs(FILTERS) do
      local v = f and f[flt[1]]
      -- a mark after 0 (none) holds for every call: as a condition it would lead SQLite to
      -- read the ids' whole range in place of the day's or the card's index. A mark up to 0
      -- holds for none (nothing was there when it was taken), so it is kept.
      if v ~= nil and (flt[4] == nil or (flt[4] == name and (v ~= 0 or flt[1]:sub(1, 5) == "upto_"))) then
        where[#where + 1] = flt[2]
        for _ = 1, flt[3] do args[#args + 1] = v end
      end
    end
    parts[#parts + 1] = "SELECT r." .. key .. " AS " .. key .. ", " .. d.json_text("r.data", "currency") .. " AS currency, "
      .. d.json_int("r.data", "cost") .. " AS cost, " .. M.spent(d, "r.data") .. " AS spent, r.prompt_tokens AS pt, "
      .. d.json_int("r.data", "cached_tokens") .. " AS cached, r.completion_tokens AS ct, r.est AS est FROM " .. from
      .. " r WHERE " .. table.concat(where, " AND ")
  end
  local q = "SELECT " .. key .. ", currency, " .. d.integer("COALESCE(SUM(spent), 0)") .. " AS micros, "
    .. d.integer("COUNT(cost)") .. " AS priced, " .. d.integer("COUNT(*)") .. " AS calls, "
    .. d.integer("COALESCE(SUM(pt), 0)") .. " AS input, " .. d.integer("COALESCE(SUM(cached), 0)") .. " AS cached, "
    .. d.integer("COALESCE(SUM(ct), 0)") .. " AS output, " .. d.integer("COUNT(est)") .. " AS estimated FROM (" .. table.concat(parts, " UNION ALL ")
    .. ") c GROUP BY 1, 2 ORDER BY 1, 2"
  return q, args
end

-- read(db, q, ...) -> rows: a failed read raised as the store's error, named as such (orket.cli says
-- it in a line, no traceback): a JSON value damaged in the store fails every sum over it
local function read(db, q, ...)
  local rows, err = db:rows(q, ...)
  if rows then return rows end
  if tostring(err):find("malformed JSON", 1, true) then
    err = string.format("%s: a JSON value in the store is damaged (%s names its row); restore a good backup "
      .. "(docs/guide/deploying.md)", tostring(err), db.path and ("orket restore --check " .. db.path)
      or "orket restore --check FILE")
  end
  backend.last_failure = err -- as backend.rows raises one, with these words added
  error(err, 0)
end

--- rows(db, f) -> array of {model=, currency=, micros=, priced=, calls=, input=, cached=,
--- output=, estimated=}, one per model and currency, for the calls matching every filter of
--- f {run=, card=, epic=, rock=, since= (a stored time's text), after_turn= (turns id),
--- after_event= (events id), upto_turn=, upto_event= (the last ids counted)}. input counts every prompt token (cached ones too); priced
--- counts the calls with a cost, estimated those whose token counts were estimated. A call whose answer's usage was refused counts as charged.
function M.rows(db, f)
  local q, args = M.query(db.dialect, f)
  return read(db, q, table.unpack(args))
end

local function totals_of(out, r)
  for _, k in ipairs { "calls", "priced", "input", "cached", "output", "estimated" } do out[k] = out[k] + (r[k] or 0) end
  -- a sum that never wraps to a negative
  if r.currency and (r.priced or 0) > 0 then cost.add(out.cost, r.currency, r.micros) end
  return out
end

local function zero() return { cost = {}, calls = 0, priced = 0, input = 0, cached = 0, output = 0, estimated = 0 } end

--- totals(db, f) -> {cost = {currency = micros}, calls=, priced=, input=, cached=, output=, estimated=}:
--- rows summed over models
function M.totals(db, f)
  local out = zero()
  for _, r in ipairs(M.rows(db, f)) do totals_of(out, r) end
  return out
end

--- by_seat(db, f) -> array of totals (as totals') each with its seat, ordered by seat: the
--- calls of f's scope by the seat that made them (orket card's lines under its model line)
function M.by_seat(db, f)
  local q, args = M.query(db.dialect, f, "seat")
  local out, at = {}, {}
  for _, r in ipairs(read(db, q, table.unpack(args))) do
    local seat = r.seat or "-"
    if not at[seat] then
      at[seat] = zero()
      at[seat].seat = seat
      out[#out + 1] = at[seat]
    end
    totals_of(at[seat], r)
  end
  return out
end

--- heads(db) -> the newest turns id, the newest events id (0: none), the store's UTC day
--- (YYYY-MM-DD, by the clock that dates its rows: dialect.today): where a reader of the
--- calls recorded since (since) starts. Ids become visible in order on both backends (one
--- writer at a time: docs/store.md), so they are a safe cursor.
local heads_sql = dialect.statement(function(d)
  return "SELECT (SELECT COALESCE(MAX(id), 0) FROM turns) AS turn, "
    .. "(SELECT COALESCE(MAX(id), 0) FROM events) AS event, " .. d.today .. " AS day"
end)
function M.heads(db)
  local row = backend.row(db, heads_sql(db))
  if not row then error("the journal's ids could not be read", 0) end
  return row.turn, row.event, row.day
end

-- The calls recorded after a turns id and an events id, each with what decides its scopes
-- (its card's parent and grandparent, whether it is of the day), read by their primary
-- keys: as many rows as were recorded since, whatever the journal holds.
-- The parents are read per row by primary key (a join may be planned as a hash of every
-- card), and the failures by the events' ids (kind || '' keeps the partial indexes of
-- failures, which hold every failure of the journal, out of the plan).
local since_sql = dialect.statement(function(d)
  local cols = function(at)
    return "r.id, r.run_id, r.card_id, (SELECT parent FROM cards WHERE id = r.card_id) AS parent, "
      .. "(SELECT p.parent FROM cards p WHERE p.id = (SELECT parent FROM cards WHERE id = r.card_id)) AS grand, "
      .. d.json_text("r.data", "currency") .. " AS currency, " .. M.spent(d, "r.data") .. " AS spent, "
      .. "CASE WHEN " .. at .. " >= " .. d.day_start .. " THEN 1 ELSE 0 END AS in_day"
  end
  return "SELECT 't' AS src, " .. cols("r.created_at") .. " FROM turns r WHERE r.id > ?"
    .. " UNION ALL SELECT 'f', " .. cols("r.at") .. " FROM events r WHERE r.id > ? AND r.kind || '' = 'model_failure' AND "
    .. d.json_int("r.data", "prompt_tokens") .. " IS NOT NULL"
    .. " UNION ALL SELECT 'e', COALESCE(MAX(id), 0), NULL, NULL, NULL, NULL, " .. d.today .. ", NULL, NULL FROM events"
end)

--- since(db, turn, event) -> rows {src = "t" (a turns row) | "f" (a charged model
--- failure) | "e" (id: the newest events id seen; currency: the store's UTC day, as heads
--- gives it), id, run_id, card_id, parent, grand, currency, spent (nil: no cost), in_day (1
--- when recorded on or after the start of that day)}: every call any process recorded
--- after turns id `turn` and events id `event`, the money budgets' catch-up before a call
--- (orket.engine.spend). The day is the store's clock's, which dated the rows (on
--- PostgreSQL the server's now(), not the clock of the process that reads).
M.since_statement = since_sql -- (db) -> its SQL: the specs check its plan

function M.since(db, turn, event)
  return read(db, since_sql(db), turn, event)
end

--- approved_after(db, card) -> turn, event: the turns id the card's last budget_approved
--- event marks and that event's id (0, 0: none): a person approved going on, so its money
--- budgets count the calls after it (filters after_turn, after_event)
-- made once per dialect: a text joined at every call misses the statement cache's find by
-- address (the money budgets' check reads it before a call)
local approved_sql = dialect.statement(function(d)
  return "SELECT id, " .. d.json_int("data", "turn") .. " AS turn FROM events "
    .. "WHERE card_id = ? AND kind = 'budget_approved' ORDER BY id DESC LIMIT 1"
end)

function M.approved_after(db, card)
  -- a failed read raises: taken as "no approval" it would count calls a person approved
  local row = backend.row(db, approved_sql(db), card)
  if not row then return 0, 0 end
  return row.turn or 0, row.id
end

--- approved_marks(db, card) -> {card = {turn, event}, epic = ..., rock = ...}: for each of
--- the card's own money budgets, the marks of the card's last budget_approved event that
--- approved going on past that budget ({0, 0}: none). A person approves the scope whose
--- budget was reached (its data.scope): the card's budget approved leaves its epic's and
--- its rock's counting as they were. An approval recorded with no scope (before scopes
--- were recorded) counts for all three.
local marks_sql = dialect.statement(function(d)
  local scope = d.json_text("data", "scope")
  return "SELECT id, " .. d.json_int("data", "turn") .. " AS turn, " .. scope .. " AS scope FROM events "
    .. "WHERE id IN (SELECT MAX(id) FROM events WHERE card_id = ? AND kind = 'budget_approved' GROUP BY " .. scope .. ")"
end)

local CARD_SCOPES = { "card", "epic", "rock" }

function M.approved_marks(db, card)
  -- a failed read raises, as approved_after's
  local rows = read(db, marks_sql(db), card)
  local out = {}
  for _, s in ipairs(CARD_SCOPES) do
    local best
    for _, r in ipairs(rows) do
      if (r.scope == nil or r.scope == s) and (not best or r.id > best.id) then best = r end
    end
    out[s] = best and { best.turn or 0, best.id } or { 0, 0 }
  end
  return out
end

--- last_turn(db) -> the newest turns row's id (0: none): a mark later sums start after
function M.last_turn(db)
  local row = backend.row(db, "SELECT max(id) AS id FROM turns")
  return row and row.id or 0
end

return M
