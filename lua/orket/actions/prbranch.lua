-- orket.actions.prbranch: a card's branch on the remote (its pull request's head) as people
-- leave it: commits someone pushed there on top of Orket's are taken into the card's branch,
-- never dropped, at a hand-in (orket.engine.pull_request: fetched before the card's branch is
-- pushed over it), and never merged by an approval (orket.serve.webhooks refuses an approval
-- of a head Orket did not push: a webhook may not name the commit that was reviewed). The fetch
-- waits on the thread pool (repo:fetch_branch), bounded by FETCH_TIMEOUT_MS: call it in a task,
-- outside any transaction. Contract: docs/git.md ("Pull requests end", "A hand-in").
local task = require "orket.task"
local rt = require "orket.c.runtime"
local finish = require "orket.actions.finish"
local mainline = require "orket.actions.mainline"
local gitdiff = require "orket.c.gitdiff"
local board_mod = require "orket.board"
local inert = require "orket.inert"

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

--- take_pushed{repo=, g=, auth=, card=, pushed=, attach=[, taking=]} -> {code="none", remote=} (the
--- remote holds nothing of another's: missing, remote false, what Orket pushed, or in the
--- card's branch already; remote: its head as fetched) |
--- {code="taken", kind=, id=, from=} (the remote's commits on top of pushed are in the card's
--- branch now: kind "fastforward" or "merged") | {code="conflict", paths=, id=} (merged with
--- conflict markers in paths) | {code="rewritten", id=} (the remote's branch does not descend
--- from pushed: not a person's addition, the push replaces it as before) | nil, msg[, CODE]
--- (the remote could not be read, or the merge failed: CODE its error's, as EDIRTY). Before a hand-in pushes the card's branch over the remote's.
--- attach() and then taking(remote head) (true | nil, msg: a refusal stops the take-in) are
--- called just before the merge, only when there is something to take in.
function M.take_pushed(o)
  local repo, card = o.repo, o.card
  local rid, ferr = M.fetch(repo, o.g, card, o.auth)
  if rid == nil then return nil, ferr end
  if rid == false or rid == o.pushed then return { code = "none", remote = rid } end
  if repo:contains("refs/heads/orket/" .. card, rid) == true then return { code = "none", remote = rid } end
  if not o.pushed or repo:contains(tracking(card), o.pushed) ~= true then return { code = "rewritten", id = rid } end
  local aok, aerr = o.attach()
  if not aok then return nil, aerr end
  if o.taking then
    local tok, terr = o.taking(rid)
    if not tok then return nil, terr end
  end
  local m, merr, mcode = repo:merge_remote_to_card(card, finish.ENGINE, false)
  if not m then return nil, merr, mcode end
  if m.kind == "conflict" then return { code = "conflict", paths = m.conflicts, id = m.id, from = rid } end
  return { code = "taken", kind = m.kind, id = m.id, from = rid }
end

-- Why a push of a card's branch was refused (EREJECTED) -> "moved" (the branch moved since it
-- was read: a commit pushed meanwhile, as libgit2 found before sending, the remote's branch
-- holding commits this repository lacks, or as the remote reports of a ref that moved under
-- the push) | "remote", its words (its report, orket.c.gitrepo's "the remote refused <ref>
-- (<status>)": a hook, a rule of its, a protected branch; inert, capped at REFUSAL_MAX) |
-- "refused", the whole message (Orket's own refusal on the remote's behalf, as of a hook a
-- push to a path would not run: it says why and what to do).
local MOVED = { "non%-fast%-forward", "fetch first", "stale info", "failed to lock", "cannot lock", "but expected" }
local MOVED_HERE = { "not present locally", "non%-fastforwardable" } -- libgit2's own (GIT_ENONFASTFORWARD)
M.REFUSAL_MAX = 200
function M.refusal(err)
  local s = tostring(err)
  local said = s:match("the remote refused %S+ %((.*)$")
  if not said then
    for _, p in ipairs(MOVED_HERE) do
      if s:find(p) then return "moved" end
    end
    return "refused", s
  end
  said = said:gsub("%)$", "", 1)
  local status = said:match("^[^)]*")
  for _, p in ipairs(MOVED) do
    if status:find(p) then return "moved" end
  end
  return "remote", inert.line(inert.clip(said, M.REFUSAL_MAX))
end

--- push{repo=, g=, auth=, card=, got=} -> the id pushed | nil, msg, CODE: the card's branch
--- pushed after take_pushed answered got. Forced only over a branch it replaces (rewritten, or
--- a head the card's branch does not hold); else a plain push, so a commit pushed to the
--- remote after the fetch refuses it (EREJECTED: read again at the next hand-in) instead of
--- being pushed over. EREJECTED is said as what the remote said (refusal): its own refusal (a
--- hook, a rule; its words quoted, capped at REFUSAL_MAX), Orket's on its behalf, or the branch
--- having moved.
function M.push(o)
  local repo, card, got = o.repo, o.card, o.got
  local auth = {}
  for k, v in pairs(o.auth or {}) do auth[k] = v end
  auth.force = got.code == "rewritten"
    or (got.code == "none" and got.remote and repo:contains("refs/heads/orket/" .. card, got.remote) ~= true)
    or nil
  local id, err, code = repo:push(o.g.remote, "orket/" .. card, auth)
  if not id and code == "EREJECTED" then
    local why, said = M.refusal(err)
    if why == "remote" then
      return nil, string.format("the remote refused orket/%s: \"%s\" (its hook or rule, not a push meanwhile); "
        .. "nothing was pushed, the next hand-in tries again", card, said), code
    elseif why == "refused" then
      return nil, string.format("orket/%s was not pushed, not for a push meanwhile: %s", card, said), code
    end
    return nil, string.format("the remote's orket/%s moved after it was read (a push meanwhile), so it is not pushed "
      .. "over; the next hand-in takes it in: %s", card, tostring(err)), code
  end
  return id, err, code
end

--- unresolved(repo, card) -> id, {path...} | nil: the card's head when it is a take-in's merge
--- that left conflict markers (merge_remote_to_card's summary says so) with nothing committed
--- on top, and the files it put markers in (read from its diff against the card's side; empty
--- when they cannot be read). Such a head is never verified, pushed or merged: its send-back
--- never committed (a kill, a lost lease), and the card goes back when it is next looked at.
function M.unresolved(repo, card)
  local log = repo:log("orket/" .. card, 1)
  local c = log and log[1]
  if not (c and c.parents == 2 and c.summary == string.format("Merge the remote's orket/%s into orket/%s, with "
    .. "conflicts to resolve", card, card)) then
    return nil
  end
  local paths = {}
  local objects = gitdiff.open(repo:path())
  local parents = objects and objects:parents(c.id)
  local d = parents and parents[1] and objects:diff(parents[1], c.id)
  for _, f in ipairs(d and d.files or {}) do
    if f.patch and (f.patch:find("\n%+<<<<<<< ") or f.patch:find("^%+<<<<<<< ")) then paths[#paths + 1] = f.path end
  end
  if objects then objects:close() end
  return c.id, paths
end

--- send_back(board, card, c) -> the card | nil, msg, CODE: inside the caller's transaction,
--- a card whose take-in conflicts with its work goes back to in_progress (from code_review or
--- ready_for_testing) with a comment naming the files, as a conflict with main does
--- (orket.actions.finish); nothing was pushed. c: take_pushed's conflict {paths=, from=}, or
--- {unresolved=true, id=, paths=} (unresolved's answer: a merge whose send-back never
--- committed).
function M.send_back(board, card, c)
  local files = c.paths and #c.paths > 0 and table.concat(c.paths, ", ") or nil
  local why
  if c.unresolved then
    why = string.format("The head of orket/%s (%s) merges commits pushed to it on the remote with conflict markers "
      .. "that were never resolved, in: %s (the card was not sent back after that merge). The engine sent the card "
      .. "back to in_progress, and nothing was pushed.", card, tostring(c.id),
      files or "the files that commit's message lists")
  else
    why = string.format("Commits pushed to orket/%s on the remote (%s) conflict with the card's work in: %s. "
      .. "They were merged into its branch with conflict markers in those files to resolve; the engine sent the card "
      .. "back to in_progress, and nothing was pushed.", card, tostring(c.from), tostring(files))
  end
  assert(board:comment(card, { author = "orket", body = why }))
  return board:transition(card, "in_progress", { actor = board_mod.ENGINE,
    note = "conflict with the remote's orket/" .. card .. ": " .. (files or "the files its merge lists") })
end

return M
