-- orket.serve.changes: GET /v1/cards/{id}/diff, what an agent changed on a card
-- (orket.views.change builds the document; this file only answers), and GET
-- /v1/violations, the gate's refusals across the board (orket.store.violations).
local change = require "orket.views.change"
local violations = require "orket.store.violations"
local board_mod = require "orket.board"
local jsonout = require "orket.jsonout"
local cjson = require "cjson"
local routes = require "orket.serve.routes"

local M = {}

local err, whole_or_most = routes.err, routes.whole_or_most

-- The query's parameters of these names, each a whole number from 1, set in into -> into |
-- nil, why (a bad_query, as every route's malformed query is). Digits past an integer
-- read as the largest one, as a listing's ?limit= reads them: the route's cap then holds.
local function counts(q, names, into)
  for _, k in ipairs(names) do
    if q[k] ~= nil then
      into[k] = whole_or_most(q[k])
      if not into[k] or into[k] < 1 then return nil, "?" .. k .. "= takes a whole number from 1" end
    end
  end
  return into
end

local function diff(_, ctx)
  local id = ctx.params.id
  if not board_mod.open(ctx.db):get(id) then return err(404, "not_found", "no card " .. id) end
  local caps, bad = counts(ctx.query, { "max_files", "max_bytes" }, {})
  if not caps then return err(400, "bad_query", bad) end
  caps.max_files = caps.max_files and math.min(caps.max_files, change.MAX_FILES)
  caps.max_bytes = caps.max_bytes and math.min(caps.max_bytes, change.MAX_BYTES)
  local doc, e, code = change.of(ctx.db, ctx.dir, id, caps)
  if not doc then
    if code == "ENOENT" then return err(404, "not_found", e) end
    return err(500, "internal", e)
  end
  return 200, doc
end

local function list(_, ctx)
  local q = ctx.query
  -- a card that is not there is 404, an empty ?card= 400, as the event streams' (a filter on a
  -- typo answered empty lists, as though the card had no violations)
  local card, cst, cdoc = routes.card_query(ctx)
  if card == false then return cst, cdoc end
  local opts, bad = counts(q, { "before" }, { card = card, rule = q.rule })
  if not opts then return err(400, "bad_query", bad) end
  local lst, ldoc
  opts.limit, lst, ldoc = routes.limit(q.limit, 50, violations.MAX)
  if not opts.limit then return lst, ldoc end
  local rows, e = violations.list(ctx.db, opts)
  if not rows then return err(500, "internal", e) end
  local out = {}
  for i, v in ipairs(rows) do
    out[i] = { id = v.id, card = v.card or cjson.null, run = v.run or cjson.null, turn = v.turn or cjson.null,
      seat = v.seat or cjson.null, rule = v.rule, attempt = v.attempt and jsonout.plain(v.attempt) or cjson.null,
      reason = v.detail or cjson.null, remedy = v.remedy or cjson.null, created_at = v.created_at }
  end
  local counts = {}
  for i, r in ipairs(violations.by_rule(ctx.db) or {}) do counts[i] = { rule = r.rule, n = r.n } end
  local cards = {}
  for i, r in ipairs(violations.by_card(ctx.db) or {}) do cards[i] = { card = r.card_id, n = r.n } end
  local limit = opts.limit
  return 200, { format = "orket.violations/1", violations = jsonout.array(out), by_rule = jsonout.array(counts),
    by_card = jsonout.array(cards), next_before = #out == limit and out[#out].id or cjson.null }
end

local STR, INT = { type = "string" }, { type = "integer" }
local NSTR, NINT = { type = { "string", "null" } }, { type = { "integer", "null" } }

M.CHANGE = { type = "object", required = { "format", "card", "branch", "base", "tip", "commits", "files", "truncated" },
  properties = { format = { type = "string", enum = { "orket.change/1" } }, card = STR, branch = STR, base = STR, tip = STR,
    base_from = { type = "string", enum = { "main", "merge", "main_taken", "first_turn" } }, merged = NSTR,
    commits = { type = "array", items = { type = "object", properties = { id = STR, turn = INT, run = NINT, seat = NSTR } } },
    files = { type = "array", items = { type = "object", required = { "path", "status", "binary" }, properties = {
      path = STR, old_path = NSTR, status = { type = "string", enum = { "A", "D", "M", "R", "T" } },
      binary = { type = "boolean" }, additions = INT, deletions = INT, patch = NSTR, omitted = { type = "boolean" } } } },
    changed = INT, bytes = INT, truncated = { type = "boolean" } } }

M.VIOLATIONS = { type = "object", required = { "format", "violations", "by_rule" },
  properties = { format = { type = "string", enum = { "orket.violations/1" } },
    violations = { type = "array", items = { type = "object", required = { "id", "rule", "created_at" }, properties = {
      id = INT, card = NSTR, run = NINT, turn = NINT, seat = NSTR, rule = STR, attempt = NSTR, reason = NSTR,
      remedy = NSTR, created_at = STR } } },
    by_rule = { type = "array", items = { type = "object", properties = { rule = STR, n = INT } } },
    by_card = { type = "array", items = { type = "object", properties = { card = STR, n = INT } } },
    next_before = NINT } }

--- add(router): the two routes, for viewers
function M.add(router)
  router:add("GET", "/v1/cards/{id}/diff", { handler = diff, role = "viewer", name = "card_diff",
    summary = "What the card's branch changed against main, and the commit of each turn (orket.change/1)",
    query = { { name = "max_files", type = "integer", description = "list at most this many files (300 at most)" },
      { name = "max_bytes", type = "integer", description = "diff text at most this long in all (262144 at most)" } },
    responses = { [200] = { schema = M.CHANGE, description = "the change; a binary or too large file is named, its diff left out" } } })
  router:add("GET", "/v1/violations", { handler = list, role = "viewer", name = "violations",
    summary = "The gate's refusals across the board, newest first (orket.violations/1)",
    query = { { name = "card", description = "only this card's (a card that is not there: 404; empty: 400)" }, { name = "rule", description = "only this rule's" },
      { name = "before", type = "integer", description = "only ids below this (the next page: next_before)" },
      { name = "limit", type = "integer", description = "at most this many (50; 200 at most)" } },
    responses = { [200] = { schema = M.VIOLATIONS, description = "the violations, and how many each rule and card has" } } })
end

return M
