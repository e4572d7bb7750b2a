-- orket.actions.move: a card moved through the state machine by a person or a forge's
-- event (the HTTP API, the web board, MCP clients, webhooks). A move to done finishes the
-- card as the engine's does (orket.actions.finish: its branch merged into main first when
-- the workspace's repository has one, a conflict sending the card back); any other move is
-- the board's. A card waiting for an approval is refused, as orket.actions.retry refuses
-- it: a move is no decision, and one that left the request undecided stranded the card (no
-- decision possible once it no longer waits, and every later ask of its model refused
-- while the request stood). Call it inside the caller's transaction. The answer is data.
-- Uses orket.board, orket.actions.approvals and orket.c.gitrepo.
local approvals = require "orket.actions.approvals"
local finish = require "orket.actions.finish"
local G = require "orket.c.gitrepo"

local M = {}

--- move{db=, board=, card=, to=, opts= (the board's transition options: actor, reason,
--- note), workspace= (the project's workspace folder: its repository, when it has one),
--- remote= (merge the fetched remote main first), event_actor=}
--- -> {code = "moved", card=} | {code = "done", card=, merge=} | {code = "merge_conflict",
---    paths=, why=} (the card is back in in_progress) | nil, msg, CODE (refused), detail:
---    EUSAGE, with detail {approval = the pending request, card=}, for a card waiting for
---    an approval, but on a move to canceled (which ends the card, the request unanswered,
---    as a cancel does: no decision is made up for it; what waits for a decision, GET
---    /v1/board's held and orket_approvals_waiting, leaves a finished card's out)
function M.move(o)
  local held = o.to ~= "canceled" and o.board:get(o.card)
  -- the check orket.actions.retry makes: a waiting card's undecided request
  local p, why
  if held then p, why = approvals.held(o.db, held, "moved") end
  if p then
    local id = held.id
    return nil, string.format("%s: approve it (POST /v1/cards/%s/approve) or deny it (POST /v1/cards/%s/deny)", why,
      id, id), "EUSAGE", { approval = p, card = id }
  end
  if o.to ~= "done" then
    local c, err, code = o.board:transition(o.card, o.to, o.opts)
    if not c then return nil, err, code end
    return { code = "moved", card = c }
  end
  local ok, err, code = o.board:check_transition(o.card, "done", o.opts)
  if not ok then return nil, err, code end
  local repo = o.workspace and G.open(o.workspace)
  local _ <close> = setmetatable({}, { __close = function() if repo then repo:close() end end })
  local actor = o.opts.actor
  -- a card without a branch (no repository, or never worked in one) is only moved, once main
  -- holds what it recorded
  return finish.finish { db = o.db, board = o.board, card = o.card, opts = o.opts, repo = repo,
    branch = repo and repo:head("orket/" .. o.card) and true or false, remote = o.remote, event_actor = o.event_actor,
    conflict_actor = { seat = actor.seat, roles = actor.roles, by = "engine" } }
end

return M
