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
local inert = require "orket.inert"
local urlencode = require "orket.urlencode"
local G = require "orket.c.gitrepo"
local rt = require "orket.c.runtime"

local M = {}

--- TRACKING: where fetch_main keeps the remote's main as last fetched (or pushed: a push of
--- main moves it too); DROPPED: where the fetch records the remote's main as it was before a
--- person moved it back past commits main holds, until the remote holds them again (the
--- next push of main puts them back). Both in workspace/'s repository (core/gitrepo/remote.c).
M.TRACKING = "refs/remotes/orket/main"
M.DROPPED = "refs/orket/remote-main-dropped"

--- shown_url(url) -> url without the user and password an http(s) URL may carry: as a
--- message or a command names the remote (a person's git asks for their own credentials)
M.shown_url = urlencode.without_userinfo

--- by_hand(url) -> the commands, as argv lists run in the project's folder, that merge the
--- remote's main into main when the two conflict: a person's git pulls it into workspace/
--- (main's view, on main), they resolve and commit there, and the next run pushes main
function M.by_hand(url)
  return { { "git", "-C", "workspace", "pull", "--no-rebase", M.shown_url(url), "main" },
    { "git", "-C", "workspace", "commit", "--no-edit" } }
end

--- RERUN: how by_hand_text names the run that pushes main after (a caller that knows the
--- target puts it in place of EPIC)
M.RERUN = "'orket run EPIC'"

--- by_hand_text(url, paths, rerun) -> the sentence that says how (by_hand's commands, the
--- conflicting paths added between the two, then rerun: the command of a run, default
--- RERUN)
function M.by_hand_text(url, paths, rerun)
  local cmds = M.by_hand(url)
  local function line(argv)
    local w = {}
    for i, a in ipairs(argv) do w[i] = inert.shell_word(a) end
    return table.concat(w, " ")
  end
  local names = {}
  for i, p in ipairs(paths or {}) do
    if i > 5 then
      names[#names] = names[#names] .. " ..."
      break
    end
    names[i] = inert.shell_word(p)
  end
  local add = #names > 0 and ("git -C workspace add -- " .. table.concat(names, " ")) or "git -C workspace add them"
  return string.format("merge them by hand, in the project's folder: %s, resolve the conflicts it leaves (edit the "
    .. "files, then %s), %s; then %s (any run, or 'orket resume') pushes main", line(cmds[1]), add, line(cmds[2]),
    rerun or M.RERUN)
end

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
--- remote's main, kept for the next finish (orket.actions.finish merges it first). A remote
--- that had main and has it no more is ENOENT, its message saying what a person can do
--- (a push of main is refused so too: core/gitrepo/remote.c).
function M.fetch(repo, g, auth)
  return repo:fetch_main(g.remote, auth)
end

-- The remote's main moved back past commits main holds, as a fetch recorded (M.DROPPED) ->
-- the commit it was at then | nil. Read through the repository's own refs, listed as a
-- remote's (the binding reads no ref by name but a branch's)
local function dropped(repo, rid)
  if not rid or repo:contains(M.DROPPED, rid) == nil then return nil end
  local ok, refs = pcall(G.ls_remote, repo:path())
  return ok and type(refs) == "table" and refs[M.DROPPED] or "?"
end

-- How many times a push is tried; between tries budgets.backoff_ms (the model's retries'
-- backoff), doubled each time.
M.TRIES = 4
M.BACKOFF_MS = 200

--- sync{db=, repo=, g=, auth= (or auth_error=), card=, run_id=, backoff_ms=, sleep=}
--- -> {code=, id=, attempts=, error=, paths=, rewound=}: makes the remote's main hold local main.
--- code: "uptodate" (nothing to push),
--- "pushed" (rewound = {from=, to=, note=} when the remote's main had moved back past
--- commits main holds, which the push put back: journaled with the push), "diverged" (the
--- remote's main conflicts with main in paths: a person must merge, error says how;
--- journaled as push_failed), "failed" (the remote could not be reached or refused,
--- after TRIES tries, or at once when it lost its main; journaled as push_failed with the
--- last error). sleep(ms) waits
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
    local rid, ferr, fcode = M.fetch(repo, g, auth)
    local head = repo:head("main")
    if rid == nil then
      err, code = ferr, fcode
    elseif rid == head then
      return { code = "uptodate", id = head, attempts = attempt }
    else
      if rid then
        local m, merr, mcode, paths = repo:merge_remote_to_main(finish.ENGINE)
        if not m and mcode == "ECONFLICT" then
          -- the error carries the commands (the run's output and the journal show it)
          merr = tostring(merr) .. "; " .. M.by_hand_text(g.remote, paths)
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
      -- a person moved the remote's main back past commits main holds (to drop them?): the
      -- push puts them back, as any clone's would, and says so (read before the push, which
      -- clears the record)
      local was = dropped(repo, rid)
      -- the push waits on the thread pool, where a merge of this process may move main
      -- meanwhile: what it sent is what it answers, not the head read above
      local pushed, perr, pcode = repo:push(g.remote, "main", auth)
      if pushed then
        local rewound = was and { from = was, to = rid, note = string.format("the remote's main had moved back past "
          .. "commits pushed before (from %s to %s, which lacks them): pushed again, with them", was:sub(1, 12),
          rid:sub(1, 12)) }
        event(db, "push", o.card, o.run_id, { id = pushed, attempts = attempt, rewound = rewound })
        return { code = "pushed", id = pushed, attempts = attempt, rewound = rewound }
      end
      err, code = perr, pcode
    end
    -- refused credentials do not get better by waiting, nor does a remote that lost its
    -- main; a remote that moved between the fetch and the push is fetched again at once
    if code == "ENOENT" then break end
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
