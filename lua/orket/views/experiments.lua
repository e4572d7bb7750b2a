-- orket.views.experiments: an experiment's report as data, the orket.experiment/1 document
-- (docs/cost.md, "Experiments") that `orket experiments report NAME --json` prints and
-- GET /v1/experiments/{name} answers, and its text. Both arms are counted the same way,
-- from the store: cards, done, rejections in review, turns, tokens, cost and wall time.
-- Uses orket.store.experiments and orket.store.costs.
local store = require "orket.store.experiments"
local costs = require "orket.store.costs"
local cost = require "orket.cost"
local inert = require "orket.inert"
local jsonout = require "orket.jsonout"

local M = {}

M.ARMS = { "control", "variant" }

local function per(n, cards) return cards > 0 and n / cards or nil end

-- One arm's sums over its cards' rows.
local function arm_of(db, rows)
  local a = { cards = #rows, done = 0, rejections = 0, turns = 0, calls = 0, priced = 0,
    input = 0, cached = 0, output = 0, cost = {}, wall = { cards = 0, ms = 0 }, models = {} }
  for _, r in ipairs(rows) do
    if r.status == "done" then a.done = a.done + 1 end
    a.rejections, a.turns = a.rejections + r.rejections, a.turns + r.turns
    if r.wall_ms then a.wall.cards, a.wall.ms = a.wall.cards + 1, a.wall.ms + r.wall_ms end
    -- by model and currency: the models the arm's calls went to, and what they cost
    for _, m in ipairs(costs.rows(db, { card = r.card })) do
      for _, k in ipairs { "calls", "priced", "input", "cached", "output" } do a[k] = a[k] + (m[k] or 0) end
      if m.currency and (m.priced or 0) > 0 then cost.add(a.cost, m.currency, m.micros) end
      a.models[m.model or "?"] = true
    end
  end
  local n = a.cards
  local models = {}
  for m in pairs(a.models) do models[#models + 1] = m end
  table.sort(models)
  -- absent with no cards, like the other figures per card (docs/cost.md)
  local cost_per = n > 0 and {} or nil
  for c, m in pairs(cost_per and a.cost or {}) do cost_per[c] = math.floor(m / n + 0.5) end
  return {
    cards = n, done = a.done, done_rate = per(a.done, n),
    rejections = a.rejections, rejections_per_card = per(a.rejections, n),
    turns = a.turns, turns_per_card = per(a.turns, n),
    tokens = { calls = a.calls, input = a.input, cached = a.cached, output = a.output },
    tokens_per_card = per(a.input + a.output, n),
    -- calls of unknown cost (no price, no usage) are counted apart, never as 0
    cost = a.cost, cost_per_card = cost_per, unpriced_calls = a.calls - a.priced,
    wall = { done_cards = a.wall.cards, ms = a.wall.ms, ms_per_card = per(a.wall.ms, a.wall.cards) },
    models = jsonout.array(models),
  }
end

--- doc(db, name [, configured]) -> the orket.experiment/1 document | nil, msg, "ENOENT".
--- configured: orket.lua's experiments (settings.experiments): the experiment's share,
--- model and role as set now; one neither set nor in the store is unknown.
function M.doc(db, name, configured)
  local x = configured and configured[name]
  local rows = store.cards(db, name)
  if not x and #rows == 0 then
    local known = store.names(db)
    for n in pairs(configured or {}) do
      local seen = false
      for _, k in ipairs(known) do seen = seen or k == n end
      if not seen then known[#known + 1] = n end
    end
    table.sort(known)
    return nil, string.format("no experiment named %q (experiments: %s)", name,
      #known > 0 and table.concat(known, ", ") or "none; set them in orket.lua's experiments"), "ENOENT"
  end
  local by = { control = {}, variant = {} }
  for _, r in ipairs(rows) do table.insert(by[r.arm], r) end
  local arms = {}
  for _, k in ipairs(M.ARMS) do arms[k] = arm_of(db, by[k]) end
  return { format = "orket.experiment/1", experiment = name, configured = x and { share = x.share, model = x.model,
    role = x.role } or nil, arms = arms }
end

local function num(v, fmt) return v and string.format(fmt, v) or "-" end

--- text(doc) -> the report as lines for a terminal
function M.text(doc)
  local c, v = doc.arms.control, doc.arms.variant
  local x = doc.configured
  local head = string.format("experiment %s: %s\n", inert.line(doc.experiment), x and string.format("share %s%s%s",
    tostring(x.share), x.model and (", model " .. inert.line(x.model)) or "", x.role and (", role " .. inert.line(x.role)) or "")
    or "no longer in orket.lua (its cards keep their arms)")
  local lines = { head, string.format("%-22s %16s %16s\n", "", "control", "variant") }
  local function row(label, a, b) lines[#lines + 1] = string.format("%-22s %16s %16s\n", label, a, b) end
  local function done(a) return a.cards > 0 and string.format("%d (%.0f%%)", a.done, a.done_rate * 100) or "0" end
  -- nothing charged (no call answered, none billed) is 0; unknown is only a call without a price
  local function money(a)
    if a.cards == 0 then return "-" end
    return cost.text(a.cost_per_card) or (a.unpriced_calls > 0 and "unknown" or "0 (none charged)")
  end
  local function wall(a) return a.wall.ms_per_card and string.format("%.1fs", a.wall.ms_per_card / 1000) or "-" end
  row("cards", tostring(c.cards), tostring(v.cards))
  row("done", done(c), done(v))
  row("rejections (per card)", string.format("%d (%s)", c.rejections, num(c.rejections_per_card, "%.2f")),
    string.format("%d (%s)", v.rejections, num(v.rejections_per_card, "%.2f")))
  row("turns per card", num(c.turns_per_card, "%.2f"), num(v.turns_per_card, "%.2f"))
  row("tokens per card", num(c.tokens_per_card, "%.0f"), num(v.tokens_per_card, "%.0f"))
  row("cost per card", money(c), money(v))
  -- the calls the cost leaves out (no price, no usage), as orket card says them: a variant
  -- on an unpriced model looked cheaper by its priced reviews alone
  if c.unpriced_calls > 0 or v.unpriced_calls > 0 then
    row("calls of unknown cost", tostring(c.unpriced_calls), tostring(v.unpriced_calls))
  end
  row("wall per done card", wall(c), wall(v))
  return table.concat(lines)
end

return M
