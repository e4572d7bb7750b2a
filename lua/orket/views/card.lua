-- orket.views.card: one card as data, the orket.card/1 document (docs/store.md) that
-- `orket card --json`, GET /v1/cards/{id} and the MCP server give: its fields, comments,
-- history, approvals, verifications, branch and pull request (the engine's reads of them).
local jsonout = require "orket.jsonout"
local board_mod = require "orket.board"
local board_view = require "orket.views.board"
local cjson = require "cjson"
local gitrepo = require "orket.c.gitrepo"
local gitdiff = require "orket.c.gitdiff"
local approvals = require "orket.actions.approvals"
local gitwork = require "orket.engine.gitwork"
local verify = require "orket.engine.verify"
local pull_request = require "orket.engine.pull_request"
local costs = require "orket.store.costs"
local log_view = require "orket.views.log"
local experiments = require "orket.store.experiments"
local safe_json = require "cjson.safe"

local M = {}

--- merge_lost(repo, card, id) -> what to say when main no longer holds id, the card's last merge
--- (a person's reset moved main back past it, or rewrote it) | nil: one lookup, the check a
--- run's start makes (orket.engine.gitwork lost_merges), said with its history_lost advice. A
--- merge this repository never had is another folder's (several servers on one store), as
--- there: not said.
function M.merge_lost(repo, card, id)
  if repo:contains("refs/heads/main", id) ~= false then return nil end
  local objects = gitdiff.open(repo:path())
  if not objects then return nil end
  local here, how = objects:resolve(id) ~= nil, nil
  if here then
    local tip = repo:head("main")
    how = tip and objects:merge_base("refs/heads/main", id) == tip and "back" or "rewritten"
  end
  objects:close()
  return here and gitwork.history_note({ card }, 1, false, nil, how) or nil
end

--- gather(db, id[, dir]) -> the parts of a card the text and the JSON show alike | nil, msg
-- dir: the project's folder, for the card's branch and its commits not on main yet
-- (docs/git.md), when its workspace is a repository.
function M.gather(db, id, dir)
  local b = board_mod.open(db)
  local c, gerr = b:get(id)
  if not c then return nil, gerr end
  local git
  local repo = gitrepo.open((dir or ".") .. "/workspace")
  if repo then
    git = gitwork.info(db, repo, c.id)
    if git and git.merged then git.lost = M.merge_lost(repo, c.id, git.merged) end
    repo:close()
  end
  local scope = { [c.type == "issue" and "card" or c.type] = c.id }
  local usage = costs.totals(db, scope)
  return { card = c, verifications = verify.results(db, id), comments = b:comments(id), history = b:history(id), kids = b:children(id),
    violations = db:violations(id), asks = approvals.list(db, c.id), git = git,
    forge = pull_request.info(db, c.id), usage = usage,
    -- its arm in each experiment (docs/cost.md), fixed at its first turn: a variant's model
    -- wins over its seat's, which nothing else on the card says
    arms = experiments.of(db, c.id),
    -- by the seat that made the calls: what review cost beside the work (none without calls)
    seats = usage.calls > 0 and costs.by_seat(db, scope) or {} }
end

--- doc_of(parts) -> the orket.card/1 document of gathered parts.
function M.doc_of(g)
  local c, comments, history, kids, violations, asks = g.card, g.comments, g.history, g.kids, g.violations, g.asks
  local hist = {}
  for i, e in ipairs(history) do
    -- an event's data is an object as orket writes it; a hand-edited one (JSON null, a
    -- string) is shown as it is, and read as no data
    local d = type(e.data) == "table" and log_view.event_data(e.kind, e.data) or {}
    -- a violation's attempt holds the call's arguments as the gate encoded them ("\/")
    if e.kind == "violation" and type(d.attempt) == "string" then d.attempt = jsonout.plain(d.attempt) end
    hist[i] = { id = e.id, at = e.at, kind = e.kind, actor = e.actor or cjson.null,
      run = e.run or cjson.null, data = e.data }
  end
  local cm = {}
  for i, m in ipairs(comments) do cm[i] = { id = m.id, author = m.author, body = m.body, created_at = m.created_at } end
  local ch = {}
  for i, k in ipairs(kids) do ch[i] = k.id end
  local vs = {}
  for i, v in ipairs(violations) do
    vs[i] = { id = v.id, created_at = v.created_at, seat = v.seat or cjson.null, rule = v.rule,
      attempt = v.attempt and jsonout.plain(v.attempt) or cjson.null, reason = v.detail or cjson.null, remedy = v.remedy or cjson.null }
  end
  local as = {}
  for i, a in ipairs(asks) do
    -- arguments over 16 KiB are stored cut (orket.actions.approvals), no longer JSON: given
    -- as the stored text and marked clipped, they do not fail the whole card
    local args = safe_json.decode(a.arguments)
    as[i] = { id = a.id, run = a.run or cjson.null, seat = a.seat or cjson.null, turn = a.turn or cjson.null,
      tool = a.tool, arguments = args == nil and a.arguments or args, clipped = args == nil, digest = a.digest,
      rule = a.rule or cjson.null, reason = a.reason or cjson.null, requested_at = a.requested_at,
      decision = a.decision or cjson.null, decided_at = a.decided_at or cjson.null,
      decided_by = a.decided_by or cjson.null, note = a.note or cjson.null, used_at = a.used_at or cjson.null }
  end
  local vf = {}
  for i, v in ipairs(g.verifications) do
    vf[i] = { id = v.id, at = v.at, run = v.run_id or cjson.null, passed = v.passed == 1, command = v.command,
      reason = v.reason, code = v.code or cjson.null, signal = v.signal or cjson.null, wall_ms = v.wall_ms or cjson.null,
      output = v.output, layers = v.layers }
  end
  local git = g.git
  return { format = "orket.card/1", card = board_view.card_json(c),
    children = jsonout.array(ch), comments = jsonout.array(cm), history = jsonout.array(hist),
    violations = jsonout.array(vs), approvals = jsonout.array(as), verifications = jsonout.array(vf), git = git and {
      branch = git.branch, merged = git.merged or cjson.null, lost = git.lost, commits = jsonout.array(git.commits) }
      or nil,
    forge = g.forge and { pull_request = g.forge.pull_request, reviews = jsonout.array(g.forge.reviews) } or nil,
    -- the model calls of the card (an epic's or a rock's: of the cards under it too), every
    -- run: tokens by kind, cost by currency in micro-units (docs/cost.md); and by seat
    usage = g.usage, usage_by_seat = jsonout.array(g.seats or {}),
    -- its arm in each experiment ([] before its first turn, or in none); model and role:
    -- the variant's at the card's first turn
    experiments = jsonout.array(g.arms or {}) }
end

--- json_doc(db, id [, dir]) -> the orket.card/1 document (what --json prints) | nil, msg
function M.json_doc(db, id, dir)
  local g, gerr = M.gather(db, id, dir)
  if not g then return nil, gerr end
  return M.doc_of(g)
end

return M
