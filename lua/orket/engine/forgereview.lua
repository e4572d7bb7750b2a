-- orket.engine.forgereview: what a person's decision on a card's pull request does to the
-- card: an approval (or a merge on the forge) finishes it (orket.actions.move: merged into
-- main, done; a conflict sends it back), changes requested send it back to work (to a
-- requirements review once it was sent back review.requirements_review_after times:
-- orket.engine.review, its seat chosen by routing.lua), and a closed pull request blocks it.
-- Each runs in the caller's transaction and records the decision in the card's review cycle.
-- The webhook routes (orket.serve.webhooks) check and read deliveries, then call this.
-- Rows: orket.store.forge. Contract: docs/git.md.
local move = require "orket.actions.move"
local sf = require "orket.store.forge"
local cards = require "orket.store.cards"
local review = require "orket.engine.review"
local routing = require "orket.engine.routing"
local G = require "orket.c.gitrepo"
local prbranch = require "orket.actions.prbranch"
local board_mod = require "orket.board"
local inert = require "orket.inert"

local M = {}

-- the most of a review's text kept (the cycle's note; the card's comment, its heading
-- included): a comment's limit
M.COMMENT_MAX = board_mod.TEXT_MAX
local CHANGES = "Changes requested on the forge:\n\n"

-- The first n bytes of a review's text, cut on a character's start: half a character is
-- invalid UTF-8, which a model's request and PostgreSQL refuse.
local function cut(body, n)
  return body and inert.cut(body, n) or nil
end

-- The card's id, with ev.card_head set to its branch's head in the project's repository:
-- the commit an approval would merge (orket.actions.move merges the card's branch), which
-- action_for compares the approval's commit with. Not the head recorded for its pull
-- request: after a rework whose push failed (or a kill before its record) the two differ,
-- and an approval of the recorded one would merge the rework nobody reviewed.
local function found(ev, card, dir)
  -- only an approval (or a merge on the forge: both merge the card's branch) is matched
  -- with it: no other event opens the repository
  local repo = (ev.kind == "approved" or ev.kind == "merged") and dir and G.open(dir .. "/workspace")
  if repo then
    local head = repo:head("orket/" .. card)
    -- a take-in's merge with conflict markers at the head is never merged into main
    ev.card_unresolved = prbranch.unresolved(repo, card)
    repo:close()
    ev.card_head = type(head) == "string" and head:lower() or nil
  end
  return card
end

--- card_of(db, g, ev[, dir]) -> the card a pull request belongs to: by its number as Orket
--- opened it, else by its branch | nil. Sets ev.card_head (the card's branch head in dir's
--- repository: what an approval would merge).
function M.card_of(db, g, ev, dir)
  -- only a pull request Orket could have opened: from this repository's own branch into
  -- main. A fork's branch of that name is anyone's, and a pull request into another branch
  -- (a backport) is no merge into main. By its recorded number too, when the event names
  -- another head repository or base: a store whose hand-in took a fork's pull request for
  -- the card's (before find_pr checked) must not merge the card on that one's merge.
  local own_head = ev.head_repo and ev.head_repo:lower() == (g.repo or ""):lower()
  if ev.number and (own_head or not ev.head_repo) and (ev.base == nil or ev.base == "main") then
    local card = sf.card_of_pull_request(db, ev.number, g.repo)
    if card then return found(ev, card, dir) end
  end
  -- by its branch: (none named is none taken: GitHub names no head repository once a fork
  -- is deleted)
  if not own_head then return nil end
  if ev.base ~= "main" then return nil end
  local id = ev.branch and ev.branch:match("^orket/(.+)$")
  if id and cards.is_issue(db, id) then return found(ev, id, dir) end
  return nil
end

-- The open review cycle gets the decision; without one (the card was reviewed by a seat
-- as well, or the forge acted before Orket handed it in) a decided cycle is added.
local function decide_cycle(db, card, ev, delivery)
  local open = sf.undecided_cycle(db, card)
  local body = cut(ev.body, M.COMMENT_MAX)
  if open then
    sf.decide_cycle(db, open, ev.kind, ev.reviewer, body, delivery)
  else
    sf.add_decided_cycle(db, card, sf.next_cycle(db, card), ev.number, ev.kind, ev.reviewer, body, delivery)
  end
end

local REVIEWABLE = { waiting_for_developer = true, code_review = true }
-- statuses a merge on the forge leaves as they are
local SETTLED = { blocked = true, canceled = true, archived = true }

-- Brings a card waiting for people back to code_review, where a review's decision is taken.
local function to_review(board, c, actor, note)
  if c.status ~= "waiting_for_developer" then return true end
  return board:transition(c.id, "code_review", { actor = actor, note = note })
end

-- approved, or merged on the forge: the card is finished (orket.actions.finish: merged into
-- main and done; a conflict sends it back to in_progress as the engine does). Returns
-- outcome | nil, msg, CODE.
local function approve(o)
  local db, board, c, ev, actor = o.db, o.board, o.card, o.ev, o.actor
  -- a merge is no approval: the card's history says what the person did
  local ok, terr, tcode = to_review(board, c, actor, ev.kind == "merged" and "merged on the forge"
    or "approved on the forge")
  if not ok then return nil, terr, tcode end
  local opts = { actor = actor,
    note = (ev.kind == "merged" and "merged on the forge by " or "approved on the forge by ") .. actor.seat }
  local res, ferr, fcode = move.move { db = db, board = board, card = c.id, to = "done", opts = opts,
    workspace = o.dir .. "/workspace", remote = ev.remote_main, event_actor = actor.seat }
  if not res then return nil, ferr, fcode end
  decide_cycle(db, c.id, ev, o.delivery)
  ev.merge_id = res.merge and res.merge.id
  return res.code
end

-- The seat a requirements review filed on a webhook goes to: the routing's escalation
-- choice (the architect), as a run would choose it, else its worker choice, else the card's
-- seat. A broken routing.lua (the run will say so) does not cost the person's decision.
local function architect(dir, s, c)
  local r = routing.load(dir .. "/routing.lua", dir)
  for _, kind in ipairs { "escalation", "worker" } do
    local seat = r and r:choose(kind, c, s.team)
    if type(seat) == "string" and s.team[seat] then return seat end
  end
  return c.seat or "orket"
end

-- changes requested: the card goes back to work; once it has been sent back
-- review.requirements_review_after times, it waits for a person at once, with the
-- reviewers' notes as its question (orket.engine.review), not at the next run.
local function changes(o)
  local board, c, ev, actor, s = o.board, o.card, o.ev, o.actor, o.settings
  local ok, terr, tcode = to_review(board, c, actor, "changes requested on the forge")
  if not ok then return nil, terr, tcode end
  local text = ev.body and ev.body:find("%S") and cut(ev.body, M.COMMENT_MAX - #CHANGES) or "(no text)"
  assert(board:comment(c.id, { author = actor.seat, body = CHANGES .. text }))
  ok, terr, tcode = board:transition(c.id, "in_progress", { actor = actor, note = "changes requested on the forge" })
  if not ok then return nil, terr, tcode end
  decide_cycle(o.db, c.id, ev, o.delivery)
  local now = board:get(c.id)
  if not review.needs_requirements_review(s, now) then return "in_progress" end
  local new, rerr, rcode = review.requirements_review({ db = o.db, board = board, settings = s }, now,
    architect(o.dir, s, now), actor)
  if not new then return nil, rerr, rcode end
  return "waiting_for_input"
end

local function closed(o)
  local board, c, ev, actor = o.board, o.card, o.ev, o.actor
  local ok, terr, tcode = to_review(board, c, actor, "pull request closed on the forge")
  if not ok then return nil, terr, tcode end
  local why = string.format("The pull request%s was closed on the forge by %s without being merged.",
    ev.number and (" #" .. ev.number) or "", actor.seat)
  assert(board:comment(c.id, { author = actor.seat, body = why }))
  ok, terr, tcode = board:transition(c.id, "blocked", { actor = actor, reason = "review", note = why })
  if not ok then return nil, terr, tcode end
  -- that pull request is over: the card's next hand-in opens a new one
  sf.forget_pull_request(o.db, c.id)
  decide_cycle(o.db, c.id, ev, o.delivery)
  return "blocked"
end

-- merged on the forge, but not the card's head in review: the card is in work (a rework
-- runs, its work is verified) or its branch moved past what the forge merged (a rework
-- handed in since). Merging the card's branch would put commits nobody reviewed into main,
-- and the pull request is over: the card is blocked for a person, as a hand-in that finds
-- its pull request merged blocks it (orket.engine.pull_request), and that pull request
-- forgotten (a retried card's next hand-in opens a new one). ev.said: why, for the answer.
local function merged_elsewhere(o)
  local board, c, ev, actor = o.board, o.card, o.ev, o.actor
  local ok, terr, tcode = to_review(board, c, actor, "merged on the forge")
  if not ok then return nil, terr, tcode end
  local what = ev.number and (" #" .. ev.number) or ""
  local why
  if REVIEWABLE[c.status] and (c.status ~= "waiting_for_developer" or c.wait_reason == "review") then
    why = string.format("The pull request%s was merged on the forge by %s at %s, not at the card's head %s "
      .. "(work since, which nobody reviewed there)", what, actor.seat,
      ev.commit and ("commit " .. ev.commit) or "a head it does not name", tostring(ev.card_head))
  else
    why = string.format("The pull request%s was merged on the forge by %s while the card was %s, not in review",
      what, actor.seat, c.status)
  end
  why = why .. ": Orket did not merge the card's branch into main, nor finish the card; Orket's main is unchanged "
    .. "(the forge's holds the pull request's merge). Whether the card's head goes into main is a person's call: "
    .. "retry the card to have its head reviewed on a new pull request, or close it."
  assert(board:comment(c.id, { author = actor.seat, body = why }))
  ok, terr, tcode = board:transition(c.id, "blocked", { actor = actor, reason = "review", note = why })
  if not ok then return nil, terr, tcode end
  sf.forget_pull_request(o.db, c.id)
  decide_cycle(o.db, c.id, ev, o.delivery)
  ev.said = why
  return "blocked"
end

local ACTIONS = { approve = approve, changes = changes, closed = closed, merged_elsewhere = merged_elsewhere }

-- GitHub's author_association values of people with access to the repository
local DECIDES = { OWNER = true, MEMBER = true, COLLABORATOR = true }

--- action_for(card, ev) -> what the forge's event does to the card ("approve": finished,
--- "changes": back to work, "closed": blocked, "merged_elsewhere": a merge on the forge of
--- what is not the card's head in review, blocked; ev.main_holds: the fetched remote main
--- holds the card's head) | nil, why it changes nothing[, "other_head":
--- an approval of a commit other than the card's head | "unresolved": the card's head is a
--- take-in's merge with conflict markers never resolved]. An approval acts only when its
--- commit (ev.commit) is the card's branch head (ev.card_head, card_of).
function M.action_for(c, ev)
  -- GitHub takes an approval or a request for changes from any account that can see the
  -- pull request, and marks whose: only those with access to the repository decide (as
  -- branch protection counts them); Orket merges and pushes with its own token's rights.
  -- Asked first: a stranger's review gets no word on the card, whatever its state.
  if ev.association and not DECIDES[ev.association] then
    return nil, string.format("%s is not a member or collaborator of the repository (author_association %s): only "
      .. "a review by someone with access to it is acted on", tostring(ev.reviewer), ev.association), "no_access"
  end
  if c.status == "done" then return nil, "the card is done already" end
  if ev.kind == "closed" then
    if c.status == "canceled" or c.status == "archived" or c.status == "blocked" then
      return nil, "the card is " .. c.status
    end
    return "closed"
  end
  -- a merge while the card is in work (a rework running, its work verified) or waits for
  -- something else: the forge's pull request is over, and the card's branch may hold what
  -- nobody reviewed there
  if ev.kind == "merged" and not SETTLED[c.status]
    and (not REVIEWABLE[c.status] or c.status == "waiting_for_developer" and c.wait_reason ~= "review") then
    return "merged_elsewhere"
  end
  if not REVIEWABLE[c.status] then return nil, "the card is " .. c.status .. ", not in review" end
  if c.status == "waiting_for_developer" and c.wait_reason ~= "review" then
    return nil, "the card waits for " .. tostring(c.wait_reason) .. ", not for a review"
  end
  if ev.kind == "changes_requested" then return "changes" end
  if ev.kind == "approved" and ev.author and ev.reviewer == ev.author then
    return nil, "the pull request's author (" .. ev.author .. ", who pushed the card's work) cannot approve it"
  end
  -- Only the commit a person approved may be merged: an approval of an older head (delivered
  -- after a rework was pushed), or of a commit someone else pushed, leaves the card waiting
  -- for a review of the head Orket pushed.
  if ev.kind == "approved" then
    local want = ev.card_head
    if not want then return nil, "the card has no branch in the project's repository to match the approval with" end
    if not ev.commit then
      return nil, "the approval names no commit, so it cannot be matched with the card's head " .. want
        .. ", which a merge would take; the card waits for a review of that head"
    end
    if ev.commit ~= want then
      -- "other_head": the caller says why on the card and the pull request when it is a
      -- person's commit (orket.serve.webhooks)
      return nil, "the approval is of commit " .. ev.commit .. ", not of the card's head " .. want
        .. ", which a merge would take; the card waits for a review of that head", "other_head"
    end
  end
  if ev.card_unresolved then
    -- a merge on the forge happened there already: what is not done is Orket's side of it
    return nil, "the card's head " .. ev.card_unresolved .. " is a merge of commits pushed to its branch with "
      .. "conflict markers never resolved; " .. (ev.kind == "merged"
        and "the forge's merge is not taken into Orket's main, nor the card finished" or "it is not merged")
      .. ", and the card goes back to work at its next run", "unresolved"
  end
  -- a merge of another head than the card's (a rework handed in since): finished only when
  -- the forge's main holds the card's head all the same (ev.main_holds: a person's commit
  -- merged on top of it); a squash merge names the card's head
  if ev.kind == "merged" and ev.card_head and ev.commit ~= ev.card_head and not ev.main_holds then
    return "merged_elsewhere"
  end
  return "approve"
end


--- apply(action, {db=, dir=, board=, card= (its row), ev=, actor=, delivery=, settings=}) ->
--- outcome ("done", "merge_conflict", "work_lost", "in_progress", "waiting_for_input", "blocked") | nil,
--- msg, CODE: action_for's answer done to the card, inside the caller's transaction; the
--- decision is recorded in the card's review cycle (ev.merge_id set by a merge; ev.said by
--- merged_elsewhere: what it said on the card)
function M.apply(action, o)
  return assert(ACTIONS[action], "no forge review action " .. tostring(action))(o)
end

return M
