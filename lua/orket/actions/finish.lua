-- orket.actions.finish: finishing a card, the one home of the merge-on-done rule. In the
-- caller's transaction: the card's branch merged into main (a fetched remote main first),
-- then the move to done and a `merge` event; a conflict instead comments, sends the card
-- back to in_progress and journals `merge_conflict`. The answer is data ({code = ...}), which
-- the engine's tools and the webhooks render in their own words. Uses a repository of
-- orket.c.gitrepo and a board (orket.board). Contract: docs/git.md.
local sj = require "orket.store.journal_reads"
local sf = require "orket.store.forge"
local inert = require "orket.inert"
local gitdiff = require "orket.c.gitdiff"

local M = {}

-- Who the engine's merge commits are by.
M.ENGINE = { name = "orket", email = "orket@orket.invalid" }

-- How often a merge is tried again when main moved meanwhile (another process merged).
M.MERGE_TRIES = 4

--- send_back(db, board, id, paths, actor, run_id) -> why | nil, msg, CODE: a merge of the
--- card into main conflicted in paths: in one transaction the engine comments why, moves the
--- card code_review -> in_progress (a rework) as actor, and journals a merge_conflict event,
--- so the card's next turn begins with main merged in.
function M.send_back(db, board, id, paths, actor, run_id)
  -- the model's instruction for which files to fix: a path holding ", ", a space, a newline
  -- or a control is quoted as `orket status` quotes it ('a, b', $'a\nb'), so no list reads
  -- as another
  local shown = {}
  for i, p in ipairs(paths) do shown[i] = inert.shell_word(p) end
  local files = table.concat(shown, ", ")
  local why = string.format("Merging orket/%s into main conflicts in: %s. The engine sent the card back to "
    .. "in_progress; its next turn starts with main merged into its branch, conflict markers in those files "
    .. "to resolve.", id, files)
  local sent, serr, scode = db:tx(function()
    assert(board:comment(id, { author = "orket", body = why }))
    local t, terr, tcode = board:transition(id, "in_progress", { actor = actor, note = "merge conflict: " .. files })
    if not t then return nil, terr, tcode end
    db:event { kind = "merge_conflict", card = id, run = run_id, data = { paths = paths } }
    return true
  end)
  if not sent then return nil, serr, scode end
  return why
end

--- view_data(data, m) -> data: a merge event's data with what main's view kept of a
--- person's (m a merge answer of orket.c.gitrepo): `diverged`, the count, and
--- `diverged_paths`, its first paths (capped in the core), when there were any
function M.view_data(data, m)
  if (m.diverged or 0) > 0 then
    data.diverged, data.diverged_paths = m.diverged, m.diverged_paths
  end
  return data
end

--- work_lost(db, repo, id) -> the card's newest recorded commit ({id=, turn=}) when neither
--- its branch nor main holds it | nil | nil, msg, CODE. A branch lost with workspace/'s
--- repository (removed and made again at the next run, at main's tip) or moved back by a
--- person would merge as "uptodate" and finish the card without its work.
function M.work_lost(db, repo, id)
  local c = sj.last_commit(db, id)
  if not c or type(c.id) ~= "string" then return nil end
  for _, ref in ipairs { "refs/heads/orket/" .. id, "refs/heads/main" } do
    local has, err, code = repo:contains(ref, c.id)
    if has then return nil end
    -- a missing branch holds nothing; an id that is no commit id cannot be looked for
    if has == nil and code == "EINVAL" then return nil end
    if has == nil and code ~= "ENOENT" then return nil, err, code end
  end
  return c
end

-- The card's work is gone: in the caller's transaction the engine says so on the card, moves
-- it back to in_progress (its next turn starts from main, the branch made again there when
-- missing) and journals work_lost. -> why | nil, msg, CODE
local function send_back_lost(o, lost)
  local why = string.format("orket/%s no longer holds the card's work: neither it nor main has its last commit "
    .. "(%s, turn %s), as when workspace/'s repository was removed and made again or the branch was moved back. "
    .. "The engine sent the card back to in_progress to do the work again.", o.card, lost.id:sub(1, 12),
    tostring(math.tointeger(lost.turn) or lost.turn or "?"))
  local ok, err, code = o.board:transition(o.card, "in_progress", { actor = o.conflict_actor, note = "work lost: " .. lost.id })
  if not ok then return nil, why .. " It could not be moved: " .. tostring(err), code end
  assert(o.board:comment(o.card, { author = "orket", body = why }))
  o.db:event { kind = "work_lost", card = o.card, run = o.run_id, data = { id = lost.id, turn = lost.turn } }
  return why
end

-- The remote's main, fetched before the transaction (orket.actions.mainline), merged into
-- main first so the card merges onto what the remote holds. A conflict there is main's, not
-- the card's: it is journaled (push_failed) and the card merges onto local main; the push
-- that follows says the remote diverged.
local function take_remote(o)
  local m, err, code, paths = o.repo:merge_remote_to_main(M.ENGINE)
  if m and m.kind ~= "uptodate" then
    o.db:event { kind = "merge_remote", card = o.card, run = o.run_id, data = M.view_data({ id = m.id, kind = m.kind, stale = m.stale }, m) }
  elseif not m and code == "ECONFLICT" then
    o.db:event { kind = "push_failed", card = o.card, run = o.run_id,
      data = { error = err, code = code, paths = paths } }
  elseif not m and code ~= "ENOENT" then
    return nil, err, code
  end
  return true
end

--- branch_pushed(db, repo, card) -> {from = the remote's head, pushed = the head Orket pushed for review} | nil:
--- the remote's orket/<card> as last fetched (refs/remotes/orket-branches/orket/<card>: a hand-in's
--- fetch, or the review's, beside the remote's main) holds commits on top of the head Orket last
--- pushed for review (the pull_requests row's) that the card's branch lacks: someone pushed them
--- after the hand-in. A branch that does not descend from what Orket pushed is the hand-in's to
--- replace (orket.actions.prbranch), not this. Commits main, or the remote's main as last
--- fetched, holds already (a person merged the pull request on the forge) are no one's to take
--- in: not this either. Local reads only: in a transaction too.
function M.branch_pushed(db, repo, card)
  local row = sf.pull_request(db, card)
  local pushed = row and row.head
  if type(pushed) ~= "string" then return nil end
  local ref = "refs/remotes/orket-branches/orket/" .. card
  -- none fetched (ENOENT), or not on top of what Orket pushed
  if repo:contains(ref, pushed) ~= true then return nil end
  local objects = gitdiff.open(repo:path())
  local from = objects and objects:resolve(ref)
  if objects then objects:close() end
  if type(from) ~= "string" or from == pushed then return nil end
  for _, held in ipairs { "refs/heads/orket/" .. card, "refs/heads/main", "refs/remotes/orket/main" } do
    if repo:contains(held, from) == true then return nil end
  end
  return { from = from, pushed = pushed }
end

-- The refusal of a move to done while branch_pushed says so: what merges into main is what
-- was reviewed, and the person's commits are not dropped either. -> msg
local function pushed_refusal(card, p)
  return string.format("board: %s: the remote's orket/%s has commits Orket did not push (its head %s, on top of %s "
    .. "pushed for review): the card is neither merged without them nor with them unreviewed. It stays in "
    .. "code_review: its next hand-in takes them into its branch (a conflict with its work sends it back to "
    .. "in_progress) and pushes it for review again.", card, card, p.from, p.pushed)
end

--- finish{db=, board=, card=, opts=, repo=, remote=, run_id=, event_actor=, conflict_actor=, hit=}
--- -> {code = "done", card = moved, merge = {id=, kind=, stale=, diverged=, diverged_paths=} | nil}
---  | {code = "merge_conflict", paths = {...}, why = text}
---  | {code = "work_lost", commit = id, why = text} (the card is back in in_progress)
---  | nil, msg, CODE (the move refused, a git failure: EAGAIN when main kept moving)
--- Moves card to done with opts (the board's transition options: actor, note), merging
--- orket/<card> into main first when repo is given (nil: the card has no branch, only the
--- move; branch = false: the repository has no branch of it, so only the move, once main is
--- known to hold its recorded work). remote (true or false: the project has a remote; true: its main
--- was fetched): merge the fetched remote main first, and refuse the move (ECONFLICT, nothing
--- written) while the remote's orket/<card> holds commits pushed after the hand-in
--- (branch_pushed). A card whose
--- newest recorded commit neither its branch nor main holds is not finished (work_lost). On
--- a conflict the card is sent back (send_back, by conflict_actor). hit(name): the engine's kill points (orket.engine.fault:
--- after_git_merge), handed in so this layer needs nothing of the engine's. Call it inside
--- the caller's transaction.
function M.finish(o)
  local board, id = o.board, o.card
  local ok, err, code = board:check_transition(id, "done", o.opts)
  if not ok then return nil, err, code end
  local res, paths
  if o.repo and o.branch ~= false and o.remote ~= nil then
    local p = M.branch_pushed(o.db, o.repo, id)
    if p then return nil, pushed_refusal(id, p), "ECONFLICT" end
  end
  if o.repo then
    -- first, so work the forge merged into the remote's main counts as main's
    if o.remote then
      ok, err, code = take_remote(o)
      if not ok then return nil, err, code end
    end
    local lost, lerr, lcode = M.work_lost(o.db, o.repo, id)
    if lerr then return nil, lerr, lcode end
    if lost then
      local why, serr, scode = send_back_lost(o, lost)
      if not why then return nil, serr, scode end
      return { code = "work_lost", commit = lost.id, why = why }
    end
  end
  if o.repo and o.branch ~= false then
    -- main moved meanwhile (a run in another process merged): merge again onto the new tip
    for _ = 1, M.MERGE_TRIES do
      res, err, code, paths = o.repo:merge_to_main(id, M.ENGINE)
      if res or code ~= "EAGAIN" then break end
    end
    if not res and code == "ECONFLICT" then
      local why, serr, scode = M.send_back(o.db, board, id, paths, o.conflict_actor, o.run_id)
      if not why then return nil, serr, scode end
      return { code = "merge_conflict", paths = paths, why = why }
    end
    if not res then return nil, err, code end
    if o.hit then o.hit("after_git_merge") end
  end
  local moved, terr, tcode = board:transition(id, "done", o.opts)
  if not moved then return nil, terr, tcode end
  if res then
    o.db:event { kind = "merge", card = id, run = o.run_id, actor = o.event_actor,
      data = M.view_data({ id = res.id, kind = res.kind, branch = "orket/" .. id, stale = res.stale }, res) }
  end
  return { code = "done", card = moved, merge = res }
end

return M
