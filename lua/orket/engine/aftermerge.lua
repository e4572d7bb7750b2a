-- orket.engine.aftermerge: the one home of what follows a card's merge into main, for a run
-- or a worker (orket.engine.run) and for `orket serve` (a forge's webhook, a person's move
-- through the API): the remote's main fetched before a move that may merge, then the card's
-- pull request ends on the forge (orket.actions.pull_request),
-- main is made the remote's main (orket.actions.mainline: fetched, merged, pushed with its
-- retries), one push at a time for each owner, and a sandbox of main is deployed when
-- sandbox.deploy asks for one (orket.sandboxes.deploy). Network: call it in a task, outside
-- any transaction.
local G = require "orket.c.gitrepo"
local forge = require "orket.forge"
local mainline = require "orket.actions.mainline"
local pull_request = require "orket.actions.pull_request"
local deploy = require "orket.sandboxes.deploy"
local config = require "orket.config"
local board_mod = require "orket.board"
local task = require "orket.task"

local M = {}

-- The project's git settings, read now (orket.lua may change while serving) | nil
local function git_of(dir)
  local cfg, s = config.settings(dir)
  return cfg and s.git or nil
end

--- fetch_main{g= (default: the project's, read now), repo= (or dir=: the project, its
--- repository opened for it)} -> the remote main's id | false (the remote has no main) |
--- nil, msg (no remote, no repository, or it could not be fetched): the remote's main kept for
--- a move that may merge, so finish merges what people merged on the forge first
--- (orket.actions.mainline.fetch)
function M.fetch_main(o)
  local g = o.g
  if g == nil and o.dir then g = git_of(o.dir) end
  if not g or not g.remote then return nil, "no git.remote" end
  local repo = o.repo or G.open(o.dir .. "/workspace")
  if not repo then return nil, "the project has no repository" end
  local auth, aerr = mainline.auth(g)
  local ok, id, ferr = pcall(mainline.fetch, repo, g, auth or {})
  if not o.repo then repo:close() end
  if not ok then return nil, tostring(id) end
  if id == nil then return nil, tostring(ferr) .. (aerr and (" (" .. aerr .. ")") or "") end
  return id
end

--- later(o): after_merge(o) in a task of its own, so `orket serve` answers the request that
--- merged at once; o.settings are the project's, read now when not given (orket.lua may
--- change while serving), o.board the store's. o.say(fields), when given, is told each step
--- that failed ({step=, card=, code=, error=}): nobody waits for the task, and a pull
--- request left open on the forge, or main not pushed, was said nowhere.
function M.later(o)
  if not o.settings then
    local cfg, s = config.settings(o.dir)
    if not cfg then return nil end
    o.settings = s
  end
  o.board = o.board or board_mod.open(o.db)
  return task.spawn(function()
    local out = M.after_merge(o)
    for _, step in ipairs { "pull_request", "branch", "push", "deploy" } do
      local r = out[step]
      -- (a deploy that failed says only its error)
      if o.say and type(r) == "table" and (r.code == "failed" or r.code == "diverged" or r.code == "left_out"
        or (not r.code and r.error)) then
        o.say { event = "after_merge", step = step, card = o.card, code = r.code or "failed",
          error = r.error and tostring(r.error) }
      end
    end
    return out
  end)
end

--- end_pull_request{db=, g=, card=, merge_id=, run_id=, by_person=, token= (or token_error=),
--- repo= (or dir=: the project's repository, opened to ask whether main holds a commit)}
--- -> the outcome of orket.actions.pull_request.after_merge | nil (no forge, no pull request
--- to end). The forge's token is read here unless given (a caller ending many takes it once),
--- and never kept; an error raised there is a failed end, said, not raised.
function M.end_pull_request(o)
  local g = o.g
  if not g or not g.forge then return nil end
  local token, terr = o.token, o.token_error
  if not token and not terr then token, terr = forge.token(g) end
  -- whether main holds a commit: the pull request's head, when the forge refuses its merge
  local function holds(id)
    local repo = o.repo or (o.dir and G.open(o.dir .. "/workspace"))
    if not repo then return nil end
    local has = repo:contains("refs/heads/main", id)
    if not o.repo then repo:close() end
    return has
  end
  local ok, out = pcall(pull_request.after_merge, { db = o.db, g = g, token = token, token_error = terr,
    card = o.card, merge_id = o.merge_id, run_id = o.run_id, by_person = o.by_person, holds = holds })
  token = nil
  if not ok then return { code = "failed", error = tostring(out) } end
  return out
end

--- branch_left{db=, g=, repo= (or dir=), card=, merge_id=, run_id=} -> the outcome of
--- orket.actions.pull_request.branch_left | nil: commits pushed to the card's branch on the
--- remote during its review, not in main, said; an error raised is a failure, said
function M.branch_left(o)
  local repo = o.repo or (o.dir and G.open(o.dir .. "/workspace"))
  if not repo then return nil end
  local ok, out = pcall(pull_request.branch_left, { db = o.db, g = o.g, repo = repo, card = o.card,
    merge_id = o.merge_id, run_id = o.run_id })
  if not o.repo then repo:close() end
  if not ok then return { code = "failed", error = tostring(out) } end
  return out
end

--- push_main{owner=, db=, g=, repo= (or dir=: the project, its repository opened for the
--- push), card=, run_id=, backoff_ms=} -> the outcome of orket.actions.mainline.sync | nil (no
--- remote, no repository, or a push of the same owner already going, which is asked to go
--- once more). owner: the table that holds the push in flight (owner.main_push = {again=}),
--- a run or a server: two merges in a row make one push after the other, never two at once.
function M.push_main(o)
  local g, owner = o.g, o.owner or {}
  if not g or not g.remote then return nil end
  if owner.main_push then
    owner.main_push.again = true
    return nil
  end
  owner.main_push = { again = true }
  local ok, out = pcall(function()
    local res
    while owner.main_push.again do
      owner.main_push.again = false
      local repo = o.repo or G.open(o.dir .. "/workspace")
      if repo then
        local auth, aerr = mainline.auth(g)
        local sok, sres = pcall(mainline.sync, { db = o.db, repo = repo, g = g, auth = auth, auth_error = aerr,
          card = o.card, run_id = o.run_id, backoff_ms = o.backoff_ms })
        if not o.repo then repo:close() end
        if not sok then error(sres, 0) end
        res = sres
      end
    end
    return res
  end)
  owner.main_push = nil
  if not ok then return { code = "failed", error = tostring(out) } end
  return out
end

--- after_merge{owner=, dir=, db=, board=, settings=, repo=, card=, merge_id=, run_id=,
--- by_person=, deploy=} -> {pull_request=, push=, deploy=}: each step's outcome (nil: not
--- due). The pull request and the push need git.remote; the deploy, sandbox.deploy (deploy =
--- false: not for this card, e.g. all but the last of one push's cards).
function M.after_merge(o)
  local s = o.settings or {}
  local g = s.git
  local out = {}
  if g and g.remote then
    out.pull_request = M.end_pull_request { db = o.db, g = g, card = o.card, merge_id = o.merge_id, run_id = o.run_id,
      by_person = o.by_person, repo = o.repo, dir = o.dir }
    out.branch = M.branch_left { db = o.db, g = g, repo = o.repo, dir = o.dir, card = o.card, merge_id = o.merge_id,
      run_id = o.run_id }
    out.push = M.push_main { owner = o.owner, db = o.db, g = g, repo = o.repo, dir = o.dir, card = o.card,
      run_id = o.run_id, backoff_ms = s.budgets and s.budgets.backoff_ms }
  end
  if o.deploy ~= false then out.deploy = deploy.after_merge_at(o.dir, s, o.board, o.card, o.run_id) end
  return out
end

return M
