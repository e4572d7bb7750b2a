-- orket.actions.restore_branches: after a restore, the cards' branches and directories that
-- hold work the restored store does not know are put aside (docs/git.md). workspace/ is not
-- in a backup: a card's branch orket/CARD kept the commits of the runs the restore dropped
-- (a card they left blocked, failed or in progress), and its directory .orket/worktrees/CARD
-- their files. The card's next run took both up as its own, and merged the dropped run's
-- files into main without a word. So each such branch's tip goes to a ref of its own under
-- refs/orket/restored/ (repo:set_aside: reachable, named, a person takes it back with
-- git branch NAME REF), the branch back to the newest of its commits the store knows (the
-- card's progress as of the backup; removed when it knows none), and its directory under
-- .orket/lost/: the card goes on from what the store records.
local G = require "orket.c.gitrepo"
local lockfile = require "orket.c.lockfile"
local sj = require "orket.store.journal_reads"
local inert = require "orket.inert"
local tree = require "orket.tree"
local uv = require "luv"

local M = {}

M.REF_PREFIX = "refs/orket/restored/"
-- the most commits of a branch (those not on main, newest first) looked at
M.LOG_MAX = 1000
-- how long the repository's lock is waited for (another process's operation on it)
M.LOCK_MS = 30000

-- whether a commit's summary is one of the card's turns' (orket.engine.gitwork's message:
-- "<CARD>: turn N (<phase>, run R)"), a commit the store journals as its commit event
local function turn_summary(card, summary)
  local s = tostring(summary)
  return s:find(card .. ": turn ", 1, true) == 1 and s:match("%([%w_]+, run %d+%)$") ~= nil
end

-- What of the card's branch (its commits not on main, newest first) the store db journals:
-- nil (no branch, or every turn commit on it known) | {turn= (the newest turn commit it does
-- not know: a dropped run's) {id=, summary=}, unknown= (how many such), keep= the newest
-- commit it knows with none of those under it {id=, summary=} | nil (the branch goes whole)}
-- | nil, msg
local function unknown_turns(repo, db, card)
  local head, herr, hcode = repo:head("orket/" .. card)
  if not head then
    if hcode == "ENOENT" then return nil end -- (a card no turn of which began: an epic's)
    return nil, herr
  end
  local log, err = repo:log("orket/" .. card, M.LOG_MAX)
  if not log then return nil, err end
  local known, turn, oldest, unknown = nil, nil, nil, 0
  for i, c in ipairs(log) do
    if turn_summary(card, c.summary) then
      if not known then
        known = {}
        for _, r in ipairs(sj.commits(db, card)) do
          if type(r.data.id) == "string" then known[r.data.id] = true end
        end
      end
      if not known[c.id] then
        turn, oldest, unknown = turn or c, i, unknown + 1
      end
    end
  end
  if not turn then return nil end
  -- the log is topological, newest first: a commit's ancestors come after it, so the first
  -- known one past the oldest unknown has none of them under it (a log cut at LOG_MAX may
  -- hide older ones: the branch then goes whole, as it is set aside all the same)
  local keep
  if #log < M.LOG_MAX then
    for i = oldest + 1, #log do
      if known[log[i].id] then
        keep = log[i]
        break
      end
    end
  end
  return { turn = turn, unknown = unknown, keep = keep }
end

-- the most card branches looked at (a store that cannot be read: every one)
M.CARDS_MAX = 10000

-- The cards with a branch orket/CARD in repo's repository (listed as a fetch lists them) ->
-- {card, ...} sorted, at most CARDS_MAX | nil, msg
local function branch_cards(ws)
  local refs, err = G.ls_remote(uv.fs_realpath(ws) or ws)
  if not refs then return nil, err end
  local out = {}
  for name in pairs(refs) do
    local card = name:match("^refs/heads/orket/(.+)$")
    if card and G.card_valid(card) and #out < M.CARDS_MAX then out[#out + 1] = card end
  end
  table.sort(out)
  return out
end

--- scan{dir=} -> {cards = every card with a branch, upto = the highest run id its turn
--- commits (not on main) name | nil} | nil, msg: what a restore needs of a store that could
--- not be read, from workspace/ (no repository: nothing). Read before the copy, under the
--- project's run lock.
function M.scan(o)
  local ws = (o.dir or ".") .. "/workspace"
  local repo, err, code = G.open(ws)
  if not repo then
    if code == "ENOENT" then return { cards = {} } end
    return nil, err
  end
  local cards, cerr = branch_cards(ws)
  if not cards then
    repo:close()
    return nil, cerr
  end
  local upto
  for _, card in ipairs(cards) do
    for _, c in ipairs(repo:log("orket/" .. card, M.LOG_MAX) or {}) do
      local run = turn_summary(card, c.summary) and math.tointeger(tonumber(c.summary:match("run (%d+)%)$")))
      if run and (not upto or run > upto) then upto = run end
    end
  end
  repo:close()
  return { cards = cards, upto = upto }
end

-- the names in dir that can be cards' (a parked directory's starts with ".")
local function card_dirs(dir)
  local out = {}
  for _, name in ipairs(tree.names(dir)) do
    if G.card_valid(name) then out[#out + 1] = name end
  end
  return out
end

-- The card's directory and its state (index) moved under aside -> true | nil (it has none) |
-- nil, msg
local function move_dir(home, aside, card)
  local from = home .. "/worktrees/" .. card
  if not uv.fs_lstat(from) then return nil end
  for _, d in ipairs { home .. "/lost", aside, aside .. "/worktrees", aside .. "/worktree-state" } do
    uv.fs_mkdir(d, 448)
  end
  local state = home .. "/worktree-state/" .. card
  -- the state first, as a parked directory's: a directory without its index is emptied and
  -- written whole when a card takes it, never switched as if it held its index's tree
  if uv.fs_lstat(state) then
    local ok, err = uv.fs_rename(state, aside .. "/worktree-state/" .. card)
    if not ok then return nil, tostring(err) end
  end
  local ok, err = uv.fs_rename(from, aside .. "/worktrees/" .. card)
  if not ok then return nil, tostring(err) end
  return true
end

-- One card's branch and directory set aside where they hold what the store db does not know
-- (set_aside's) -> {card=, ...} | nil (nothing moved); problems appended to problems
local function one(o, home, repo, card, worked, problems)
  local plan, terr = unknown_turns(repo, o.db, card)
  if terr then problems[#problems + 1] = string.format("orket/%s could not be read: %s", card, inert.line(terr)) end
  local set
  local turn = plan and plan.turn
  if turn then
    local ref = M.REF_PREFIX .. o.stamp .. "/" .. card
    -- the commits the store knows stay on the branch: it moves back to the newest of them
    local id, serr = repo:set_aside(card, ref, plan.keep and plan.keep.id)
    if id then
      set = { card = card, id = id, turn = turn, unknown = plan.unknown, keep = plan.keep, ref = ref }
    else
      problems[#problems + 1] = string.format("orket/%s holds %s (%s), which the restored store does not know, "
        .. "and could not be set aside: %s", card, turn.id:sub(1, 12), inert.line(turn.summary), inert.line(serr))
    end
  end
  -- a dropped run's card's directory holds its files (an open turn's, uncommitted); one whose
  -- branch stayed (it could not be set aside, or read) keeps it, the two going together. A
  -- branch moved back goes with no directory too: its files and index are the tip's, which a
  -- card's directory must match (gitwork); the next attach writes it afresh from the branch.
  if set or (worked and not turn and not terr) then
    local lost = "lost/restore-" .. o.stamp -- (under .orket/)
    local moved, merr = move_dir(home, home .. "/" .. lost, card)
    if merr then
      problems[#problems + 1] = string.format(".orket/worktrees/%s could not be moved to .orket/%s: %s", card, lost,
        inert.line(merr))
    end
    if moved then
      set = set or { card = card }
      set.moved = ".orket/" .. lost .. "/worktrees/" .. card
    end
  end
  return set
end

--- set_aside{dir=, db=, worked=, stamp=, all=} -> {{card=, id= (the branch's head, now ref's), turn=
--- {id=, summary=} (its newest commit the store does not know), unknown= (how many turn
--- commits it does not know), keep= {id=, summary=} (the newest commit it knows, where the
--- branch now is) | nil (the branch was removed), ref=, moved= (the directory's new place,
--- from the project's folder) | nil}...}, {problem, ...}. dir: the project; db: its
--- store, holding the backup; worked: the cards the dropped runs worked on
--- (orket.store.restore_runs.worked_cards), whose directories go too; stamp: names the ref's
--- and the directories' place. The branches looked at are theirs and those of the cards with
--- a directory; with all=true (the replaced store could not be read), every card's. Under the project's run lock (no run goes), and the repository's lock, taken
--- here.
function M.set_aside(o)
  local home = (o.dir or ".") .. "/.orket"
  local repo, err, code = G.open((o.dir or ".") .. "/workspace")
  if not repo then
    if code == "ENOENT" then return {}, {} end -- no repository: no branch holds anything
    return {}, { "workspace/ could not be opened: " .. tostring(err) }
  end
  local lk, lerr = lockfile.wait(home .. "/git.lock", "exclusive", M.LOCK_MS)
  if not lk then
    repo:close()
    return {}, { ".orket/git.lock could not be taken: " .. tostring(lerr) }
  end
  local worked, cards = {}, {}
  for _, c in ipairs(o.worked or {}) do worked[c] = true end
  for _, c in ipairs(card_dirs(home .. "/worktrees")) do worked[c] = worked[c] or false end
  -- a store that could not be read named no cards: every card branch is looked at
  if o.all then
    local all, aerr = branch_cards((o.dir or ".") .. "/workspace")
    if not all then
      lk:release()
      repo:close()
      return {}, { "workspace/'s branches could not be listed: " .. inert.line(aerr) }
    end
    for _, c in ipairs(all) do worked[c] = worked[c] or false end
  end
  for c in pairs(worked) do
    if G.card_valid(c) then cards[#cards + 1] = c end -- (an epic's events name it too: no branch)
  end
  table.sort(cards)
  local out, problems = {}, {}
  for _, card in ipairs(cards) do
    local ok, set = pcall(one, o, home, repo, card, worked[card], problems)
    if not ok then problems[#problems + 1] = string.format("orket/%s: %s", card, inert.line(set)) end
    out[#out + 1] = ok and set or nil
  end
  lk:release()
  repo:close()
  return out, problems
end

return M
