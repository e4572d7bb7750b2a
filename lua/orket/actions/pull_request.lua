-- orket.actions.pull_request: what follows a card's merge on the forge: its pull request
-- ends. Merged through the forge's API while its head is still the commit Orket pushed
-- (orket.forge.merge_pr, sha-guarded); when the forge refuses (the head moved: someone
-- force-pushed the branch; not mergeable; merged otherwise), Gitea is told it was merged
-- by Orket's merge commit (mark_merged), and otherwise it is closed with a comment naming
-- that commit; a head main does not hold (a person's commits pushed after the head Orket
-- merged) is never marked merged: closed with a comment that says they are not in main.
-- Each end is journaled once (`pull_request_end`). With or without a forge, the card's branch
-- on the remote is read again after the merge (branch_left): commits pushed there during the
-- review that main lacks are said, once. Network: call it in a task, outside any
-- transaction. Rows: orket.store.forge. Contract: docs/git.md.
local forge = require "orket.forge"
local sf = require "orket.store.forge"
local sj = require "orket.store.journal_reads"
local prbranch = require "orket.actions.prbranch"
local board_mod = require "orket.board"

local M = {}

-- Whether the card's pull request `number` has ended already (journaled).
local function ended(db, card, number)
  for _, d in ipairs(sj.card_event_data(db, card, "pull_request_end")) do
    if math.tointeger(d.number) == number then return true end
  end
  return false
end

local function record(db, card, run_id, data)
  local ok, err = db:tx(function()
    db:event { kind = "pull_request_end", card = card, run = run_id, data = data }
    return true
  end)
  if not ok then return nil, err end
  return true
end

--- pending(db, card) -> whether the card has a pull request Orket knows that has not ended
function M.pending(db, card)
  local row = sf.pull_request(db, card)
  local number = row and math.tointeger(row.number)
  return number ~= nil and not ended(db, card, number)
end

--- after_merge{db=, g=, token= (or token_error=), card=, merge_id=, run_id=, by_person=, holds=}
--- -> {code=, number=, sha=, error=} | nil (the card has no open pull request Orket knows,
--- or its end is journaled already). code: "merged" (through the API), "merged_on_forge"
--- (a person merged it, or the forge found it merged), "marked_merged" (Gitea told Orket's
--- merge commit), "closed" (closed with a comment naming it), "closed_on_forge" (closed
--- there already), "failed" (the forge could not be asked or refused the close: nothing is
--- journaled, the pull request stays open; the caller says why, and the next run tries
--- again: pending).
--- by_person: a webhook said a person merged it: journaled without asking the forge.
--- holds(sha) -> whether main holds that commit (false: it does not, or the repository lacks
--- it): a refused merge of a head main does not hold is closed, never marked merged.
function M.after_merge(o)
  local g, db = o.g, o.db
  if not g or not g.forge then return nil end
  local row = sf.pull_request(db, o.card)
  local number = row and math.tointeger(row.number)
  if not number or ended(db, o.card, number) then return nil end
  local function done(code, extra)
    local data = { number = number, how = code, merge = o.merge_id }
    for k, v in pairs(extra or {}) do data[k] = v end
    record(db, o.card, o.run_id, data)
    data.code = code
    return data
  end
  if o.by_person then return done("merged_on_forge") end
  local token = o.token
  if not token then return { code = "failed", number = number, error = o.token_error } end
  local pr, err = forge.get_pr(g, token, number)
  if not pr then return { code = "failed", number = number, error = err } end
  if pr.merged then return done("merged_on_forge", { sha = pr.merge_commit }) end
  if pr.state ~= "open" then return done("closed_on_forge") end
  local m, merr, mcode = forge.merge_pr(g, token, number, { head = row.head,
    title = string.format("Merge orket/%s (Orket card %s)", o.card, o.card),
    message = string.format("Merged by Orket; main holds it as %s.", tostring(o.merge_id)) })
  if m then return done("merged", { sha = m.sha }) end
  if mcode ~= "ECONFLICT" and mcode ~= "EINVAL" then
    -- down, rate-limited, no rights: nothing ended
    return { code = "failed", number = number, error = merr }
  end
  -- the pull request's head holds commits main does not (a person pushed to the branch after
  -- the head Orket merged): marked merged, it would claim them merged; closed, it says so
  if pr.head and o.holds and o.holds(pr.head:lower()) == false then
    local note = string.format("Orket merged orket/%s into main as %s, but this pull request's head %s has commits "
      .. "main does not hold (pushed after the head Orket merged), so it is closed, not marked merged: those "
      .. "commits are not in main. Push them to a new branch and open a pull request for them (the forge did not "
      .. "merge it: %s).", o.card, tostring(o.merge_id), pr.head, tostring(merr))
    local ok, cerr = forge.close_pr(g, token, number, note)
    if not ok then return { code = "failed", number = number, error = cerr } end
    return done("closed", { refused = merr, head = pr.head })
  end
  -- the forge merged differently (or not at all): main has the card as Orket merged it
  if o.merge_id and forge.mark_merged(g, token, number, o.merge_id) then
    return done("marked_merged", { refused = merr })
  end
  local note = string.format("Orket merged orket/%s into main as %s, so this pull request is closed "
    .. "(the forge did not merge it: %s).", o.card, tostring(o.merge_id), tostring(merr))
  local ok, cerr = forge.close_pr(g, token, number, note)
  if not ok then return { code = "failed", number = number, error = cerr } end
  return done("closed", { refused = merr })
end

--- branch_left{db=, g=, repo=, card=, merge_id=, run_id=[, auth=]} -> nil (no remote, or main
--- holds all the remote's orket/<card> has) | {code = "left_out", from=, merge=} | {code =
--- "failed", error=} (the branch could not be read: nothing journaled; the caller says it).
--- After a card's merge into main, with or without a forge: its branch on the remote is read
--- again (prbranch.fetch). Commits pushed there after the review's read of it (the review's
--- move to done refuses those it saw: orket.actions.finish.branch_pushed) were not reviewed
--- and are not in main; they are not dropped without a word either: once per head, a
--- remote_branch event (kind "left_out") and a comment on the card name them, where they are
--- kept and how to take them in. Network: call it in a task, outside any transaction.
function M.branch_left(o)
  local g, db, card = o.g, o.db, o.card
  if not g or not g.remote or not o.repo then return nil end
  local rid, err = prbranch.fetch(o.repo, g, card, o.auth)
  if rid == nil then return { code = "failed", error = err } end
  if rid == false or o.repo:contains("refs/heads/main", rid) == true then return nil end
  for _, d in ipairs(sj.card_event_data(db, card, "remote_branch")) do
    if d.kind == "left_out" and d.from == rid then return nil end
  end
  local kept = "refs/remotes/orket-branches/orket/" .. card
  local why = string.format("Commits pushed to orket/%s on the remote during its review (up to %s) are not in main: "
    .. "the card was merged as reviewed (%s), without them. They stay on the remote's orket/%s (and in workspace/'s "
    .. "repository as %s); to have them merged, hand them to a new card, or merge them by hand: git -C workspace "
    .. "merge %s", card, rid, tostring(o.merge_id), card, kept, rid)
  local ok, werr = db:tx(function()
    db:event { kind = "remote_branch", card = card, run = o.run_id, actor = "orket",
      data = { kind = "left_out", from = rid, merge = o.merge_id, kept = kept } }
    assert(board_mod.open(db):comment(card, { author = "orket", body = why }))
    return true
  end)
  if not ok then return { code = "failed", error = werr } end
  return { code = "left_out", from = rid, merge = o.merge_id }
end

return M
