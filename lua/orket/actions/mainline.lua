-- orket.actions.mainline: main on the remote is main. After every merge into main (a run's,
-- a worker's, a webhook's) and at the start of each run, main is pushed to git.remote, never
-- forced: the remote's main is fetched first and, when it moved ahead (a person merged on
-- the forge), merged into main (orket.c.gitrepo's fetch_main, merge_remote_to_main). A remote
-- that cannot be reached is tried again with backoff, a bounded number of times; each outcome
-- is journaled (`push`, `push_failed`, `merge_remote`), and a push that failed is made by the
-- next merge or run. The network waits: call it in a task, outside any transaction.
-- Contract: docs/git.md.
local forge = require "orket.forge"
local finish = require "orket.actions.finish"
local rt = require "orket.c.runtime"

local M = {}

--- auth(g [, getenv]) -> the credentials for git.remote ({} without a forge: a path or a
--- remote that asks for none) | nil, msg (git.token_env not set)
function M.auth(g, getenv)
  if not g.forge then return {} end
  local token, err = forge.token(g, getenv)
  if not token then return nil, err end
  return { token = token, user = g.forge == "github" and "x-access-token" or "orket" }
end

local function event(db, kind, card, run_id, data)
  pcall(db.tx, db, function()
    db:event { kind = kind, card = card, run = run_id, data = data }
    return true
  end)
end

--- fetch(repo, g, auth) -> the remote main's id | false (it has none) | nil, msg, CODE: the
--- remote's main, kept for the next finish (orket.actions.finish merges it first)
function M.fetch(repo, g, auth)
  return repo:fetch_main(g.remote, auth)
end

-- How many times a push is tried; between tries budgets.backoff_ms (the model's retries'
-- backoff), doubled each time.
M.TRIES = 4
M.BACKOFF_MS = 200

--- sync{db=, repo=, g=, auth= (or auth_error=), card=, run_id=, backoff_ms=, sleep=}
--- -> {code=, id=, attempts=, error=, paths=}: makes the remote's main hold local main. code: "uptodate" (nothing to push),
--- "pushed", "diverged" (the remote's main conflicts with main in paths: a person must
--- merge; journaled as push_failed), "failed" (the remote could not be reached or refused,
--- after TRIES tries; journaled as push_failed with the last error). sleep(ms) waits
--- backoff_ms (BACKOFF_MS by default), doubled each time, between tries (the runtime's
--- sleep by default).
function M.sync(o)
  local repo, g, db = o.repo, o.g, o.db
  local sleep = o.sleep or rt.sleep
  local tries, backoff = M.TRIES, o.backoff_ms or M.BACKOFF_MS
  -- without the forge's token (not set where this runs) a remote that asks for none (a path)
  -- is still pushed to; one that asks is refused, and the error says what was missing
  local auth = o.auth or {}
  local err, code, n = nil, nil, 0
  for attempt = 1, tries do
    n = attempt
    local rid, ferr, fcode = repo:fetch_main(g.remote, auth)
    local head = repo:head("main")
    if rid == nil then
      err, code = ferr, fcode
    elseif rid == head then
      return { code = "uptodate", id = head, attempts = attempt }
    else
      if rid then
        local m, merr, mcode, paths = repo:merge_remote_to_main(finish.ENGINE)
        if not m and mcode == "ECONFLICT" then
          event(db, "push_failed", o.card, o.run_id, { error = merr, code = mcode, paths = paths, attempts = attempt })
          return { code = "diverged", error = merr, paths = paths, attempts = attempt }
        end
        if not m then
          event(db, "push_failed", o.card, o.run_id, { error = merr, code = mcode, attempts = attempt })
          return { code = "failed", error = merr, attempts = attempt }
        end
        if m.kind ~= "uptodate" then
          event(db, "merge_remote", o.card, o.run_id, finish.view_data({ id = m.id, kind = m.kind, stale = m.stale }, m))
        end
        head = m.id
        if head == rid then return { code = "uptodate", id = head, attempts = attempt } end
      end
      -- the push waits on the thread pool, where a merge of this process may move main
      -- meanwhile: what it sent is what it answers, not the head read above
      local pushed, perr, pcode = repo:push(g.remote, "main", auth)
      if pushed then
        event(db, "push", o.card, o.run_id, { id = pushed, attempts = attempt })
        return { code = "pushed", id = pushed, attempts = attempt }
      end
      err, code = perr, pcode
    end
    -- refused credentials do not get better by waiting; a remote that moved between the
    -- fetch and the push is fetched again at once
    if code == "EAUTH" then
      if o.auth_error then err = tostring(err) .. " (" .. o.auth_error .. ")" end
      break
    end
    if attempt < tries and code ~= "EREJECTED" then sleep(backoff * (1 << (attempt - 1))) end
  end
  event(db, "push_failed", o.card, o.run_id, { error = err, code = code, attempts = n })
  return { code = "failed", error = err, attempts = n }
end

return M
