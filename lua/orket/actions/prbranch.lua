-- orket.actions.prbranch: a card's branch on the remote (its pull request's head) as people
-- leave it: commits someone pushed there on top of Orket's are taken into the card's branch,
-- never dropped. The one home of that rule, for a forge's approval (orket.serve.webhooks:
-- the approved head merged only once it is the card's own) and for a hand-in
-- (orket.engine.pull_request: fetched before the card's branch is pushed over it). The fetch
-- waits on the thread pool (repo:fetch_branch), bounded by FETCH_TIMEOUT_MS: call it in a task,
-- outside any transaction. Contract: docs/git.md ("Pull requests end", "A hand-in").
local task = require "orket.task"
local rt = require "orket.c.runtime"
local finish = require "orket.actions.finish"
local mainline = require "orket.actions.mainline"

local M = {}

-- how long a fetch of a card's branch may take before Orket stops waiting for it
M.FETCH_TIMEOUT_MS = 30000

local function tracking(card) return "refs/remotes/orket-branches/orket/" .. card end

--- fetch(repo, g, card [, auth]) -> the remote's orket/<card> id (kept as
--- refs/remotes/orket-branches/orket/<card>) | false (the remote has no such branch) | nil,
--- msg, CODE (no remote, unreachable, refused, or not answered within FETCH_TIMEOUT_MS)
function M.fetch(repo, g, card, auth)
  if not g or not g.remote then return nil, "no git.remote", "EINVAL" end
  if not auth then
    local aerr
    auth, aerr = mainline.auth(g)
    if not auth then return nil, aerr, "EAUTH" end
  end
  -- the pool thread cannot be stopped: on a timeout its answer is dropped (the wait is
  -- cancelled), and the tracking ref it may still write is read only by the next fetch's caller
  local t = task.spawn(function() return repo:fetch_branch(g.remote, "orket/" .. card, auth) end)
  local timer = task.spawn(function()
    rt.sleep(M.FETCH_TIMEOUT_MS)
    t:cancel()
  end)
  local ok, id, err, code = t:join()
  timer:cancel()
  if not ok then
    if id == "canceled" then
      return nil, string.format("git: fetching orket/%s: no answer from the remote within %d ms", card,
        M.FETCH_TIMEOUT_MS), "ETIMEDOUT"
    end
    return nil, tostring(id), "EREMOTE"
  end
  if id == nil then return nil, err, code end
  return id
end

--- take_approved{repo=, g=, card=, commit=, head=, attach=} -> {code="taken", id=} (the card's
--- branch moved forward to commit, the approved head) | {code="stale"} (commit is in the card's
--- branch already: an older head's approval) | {code="refused", why=} | {code="failed", why=}.
--- An approval names commit, not the card's head: commit is taken only when the remote's
--- orket/<card> is that very commit and descends from head (a person added commits on top):
--- the card's branch is fast-forwarded to it. A rewritten branch (commit does not descend from
--- head), a branch that moved on after the approval, or one that cannot be fetched is refused,
--- and nothing moves. attach() -> true | nil, msg: gives the card's directory to repo first, so
--- its files follow the branch (its next turn sees the person's commits).
function M.take_approved(o)
  local repo, card, commit, head = o.repo, o.card, o.commit, o.head
  if repo:contains("refs/heads/orket/" .. card, commit) == true then return { code = "stale" } end
  local rid, ferr = M.fetch(repo, o.g, card)
  if rid == nil then
    return { code = "failed", why = string.format("the pull request's branch orket/%s could not be read from the "
      .. "remote (%s), so the approved commit %s cannot be taken in", card, tostring(ferr), commit) }
  end
  if rid ~= commit then
    return { code = "refused", why = rid and string.format("the remote's orket/%s is at %s, not at the approved "
      .. "commit %s: the branch moved after the review, which approves only its head", card, rid, commit)
      or string.format("the remote has no branch orket/%s holding the approved commit %s", card, commit) }
  end
  if repo:contains(tracking(card), head) ~= true then
    return { code = "refused", why = string.format("the approved head %s does not descend from Orket's head %s of "
      .. "orket/%s (its history was rewritten): the pull request's head has commits Orket cannot take in; push "
      .. "them on top of %s and approve again", commit, head, card, head) }
  end
  local aok, aerr = o.attach()
  if not aok then
    return { code = "failed", why = string.format("the card's directory could not take the approved commit %s: %s",
      commit, tostring(aerr)) }
  end
  local m, merr = repo:merge_remote_to_card(card, finish.ENGINE, true)
  if not m then
    return { code = "failed", why = string.format("orket/%s could not be moved to the approved commit %s: %s", card,
      commit, tostring(merr)) }
  end
  return { code = "taken", id = m.id }
end

--- take_pushed{repo=, g=, auth=, card=, pushed=, attach=} -> {code="none"} (the remote holds
--- nothing of another's: missing, what Orket pushed, or in the card's branch already) |
--- {code="taken", kind=, id=, from=} (the remote's commits on top of pushed are in the card's
--- branch now: kind "fastforward" or "merged") | {code="conflict", paths=, id=} (merged with
--- conflict markers in paths) | {code="rewritten", id=} (the remote's branch does not descend
--- from pushed: not a person's addition, the push replaces it as before) | nil, msg (the
--- remote could not be read). Before a hand-in pushes the card's branch over the remote's.
function M.take_pushed(o)
  local repo, card = o.repo, o.card
  local rid, ferr = M.fetch(repo, o.g, card, o.auth)
  if rid == nil then return nil, ferr end
  if rid == false or rid == o.pushed then return { code = "none" } end
  if repo:contains("refs/heads/orket/" .. card, rid) == true then return { code = "none" } end
  if not o.pushed or repo:contains(tracking(card), o.pushed) ~= true then return { code = "rewritten", id = rid } end
  local aok, aerr = o.attach()
  if not aok then return nil, aerr end
  local m, merr = repo:merge_remote_to_card(card, finish.ENGINE, false)
  if not m then return nil, merr end
  if m.kind == "conflict" then return { code = "conflict", paths = m.conflicts, id = m.id, from = rid } end
  return { code = "taken", kind = m.kind, id = m.id, from = rid }
end

return M
