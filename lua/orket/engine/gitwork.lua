-- orket.engine.gitwork: a run's use of the workspace repository (orket.c.gitrepo): each
-- card's turns work in its own worktree on orket/<CARD>, a turn's changed files are
-- committed when it ends, and the move to done merges the branch into main first (a
-- conflict sends the card back to in_progress; its next turn starts with main merged in).
-- Contract: docs/git.md.
local G = require "orket.c.gitrepo"
local FINAL = require("orket.card").FINAL
local finish = require "orket.actions.finish"
local pull_request = require "orket.actions.pull_request"
local prbranch = require "orket.actions.prbranch"
local forge = require "orket.forge"
local aftermerge = require "orket.engine.aftermerge"
local deploy = require "orket.sandboxes.deploy"
local fault = require "orket.engine.fault"
local sj = require "orket.store.journal_reads"
local recorded = require "orket.engine.recorded"
local progwrites = require "orket.engine.progwrites"
local gitdiff = require "orket.c.gitdiff"
local tree = require "orket.tree"
local uv = require "luv"
local lockfile = require "orket.c.lockfile"
local workspace = require "orket.workspace"
local rt = require "orket.c.runtime"

local M = {}

local ENGINE = finish.ENGINE

-- Processes that share one repository (several `orket worker`s on a project) take
-- .orket/git.lock around each operation on it: libgit2 refuses a ref or index another
-- process has locked (ELOCKED) rather than waiting. An OFD lock, so the kernel drops it
-- when its holder dies. Operations take milliseconds and some run inside a step's
-- transaction, so the wait blocks the thread (the kernel hands the lock over as soon as it
-- is free; at most WAIT_MS).
M.WAIT_MS = 30000
-- Inside a write transaction of a store whose server ends one left idle (db:idle_tx_limit: a
-- worker on PostgreSQL), the wait is cut into slices, with a statement on the transaction's
-- connection between two: a process stopped while it holds the lock (SIGSTOP, a debugger)
-- must not have the server end the waiting worker's transaction as idle, nor its loop stand
-- still meanwhile (its lease renewals run on it).
local function lock(path, mode, db)
  local lk, err, code
  if db and db.idle_ms and db:in_tx("write") then
    local slice, waited = math.max(50, db.idle_ms // 4), 0
    repeat
      lk, err, code = lockfile.wait(path, mode, math.min(slice, M.WAIT_MS - waited))
      waited = waited + slice
      if lk or code ~= "EBUSY" or waited >= M.WAIT_MS then break end
      local ok, kerr, kcode = db:row("SELECT 1 AS alive")
      if not ok then return nil, "git: waiting for the repository's lock " .. path .. ": " .. tostring(kerr), kcode end
    until false
  else
    lk, err, code = lockfile.wait(path, mode, M.WAIT_MS)
  end
  if lk then return lk end
  return nil, "git: " .. (code == "EBUSY" and "the repository stayed locked by another process" or tostring(err)),
    code or "EIO"
end

-- The lock each method takes. The rule: an operation that writes only its own card's files
-- (the worktree .orket/worktrees/<CARD>, its gitdir .git/worktrees/<CARD>, the ref
-- refs/heads/orket/<CARD> and its reflog, and loose objects, which libgit2 writes under
-- their content's name by an atomic rename) or only reads takes it shared: a card is worked
-- by one process at a time (its lease), and libgit2 replaces every ref atomically, so those
-- run side by side. Whatever writes what every card shares takes it exclusive: main's ref,
-- main's index and working tree, any ref's lock files (recover), or reads every worktree
-- while none may be half-written (check). A method not listed is exclusive. push reads refs
-- and objects on a handle of its own and waits on the thread pool: it takes no lock (held
-- across that wait, the lock would keep this process's own exclusive operations waiting for
-- it while the loop could not finish it).
M.LOCK_MODE = {
  worktree = "shared", -- makes orket/<CARD> from main (loose ref) and .git/worktrees/<CARD>
  worktree_path = "shared",
  worktree_remove = "shared", -- prunes only .git/worktrees/<CARD> and its directory
  attach = "shared", -- moves orket/<CARD>, writes the card's directory and its own index
  detach = "shared", -- removes the card's ignored files
  status = "shared",
  commit = "shared",
  merge_from_main = "shared", -- reads main, moves orket/<CARD>
  find_trailer = "shared",
  log = "shared",
  head = "shared",
  refresh = "shared", -- refresh() without a card settles main's working tree: exclusive
  merge_to_main = "exclusive",
  recover = "exclusive",
  check = "exclusive",
  push = "none",
  fetch_main = "none", -- like push; it writes only refs/remotes/orket/main (merge_remote_to_main: exclusive)
  fetch_branch = "none", -- like fetch_main; it writes only refs/remotes/orket-branches/<branch>
  merge_remote_to_card = "shared", -- as merge_from_main: moves orket/<CARD>
  -- packing writes a new pack and removes only loose files and older packs that pack holds
  -- (core/gitrepo/pack.c: safe beside other readers and writers, and beside another packer)
  pack = "shared",
  pack_count = "none", -- lists two directories
}

-- Making a worktree reads every other one (libgit2 refuses a branch another worktree has
-- checked out, and takes a worktree it cannot read while it is being made or removed for
-- one that has it), so adding and removing worktrees also take <lock>-worktrees.lock
-- (exclusive, after the shared lock): one at a time, while commits and the rest go on.
local function changes_worktrees(repo, k, card)
  if k == "worktree_remove" then return true end
  if k ~= "worktree" then return false end
  -- a card's worktree already made (the common case) is only reused
  local ok, path = pcall(repo.worktree_path, repo, card)
  return not (ok and path)
end

--- guard(repo, lock_path, state[, db]) -> a repository whose every method runs under the lock at
--- lock_path, shared or exclusive (M.LOCK_MODE). Holding it exclusive, no other Orket process
--- is inside an operation, so an ELOCKED answer is a lock file a killed process left, or a
--- person's git's in main's repository: repo:recover() removes a killed Orket process's (in
--- main's gitdir only where its write's record names it), clear_index_locks those of the
--- cards' directory states under state, and the call runs again (refused again where the
--- lock is a person's). db: the engine's store, whose
--- write transaction a wait for the lock keeps alive (lock). Holding it shared, another
--- process may be inside one: the shared lock is released, the exclusive one taken, and
--- then recover and the call again.
function M.guard(repo, lock_path, state, db)
  local cache = {}
  local wt_lock_path = lock_path:gsub("%.lock$", "") .. "-worktrees.lock"
  return setmetatable({}, { __index = function(_, k)
    local f = repo[k]
    if type(f) ~= "function" then return f end
    if k == "close" then return function() return repo:close() end end
    if not cache[k] then
      local mode = M.LOCK_MODE[k] or "exclusive"
      cache[k] = function(_, ...)
        if mode == "none" then return f(repo, ...) end
        local m = (k == "refresh" and (...) == nil) and "exclusive" or mode
        local lk, lerr, lcode = lock(lock_path, m, db)
        if not lk then return nil, lerr, lcode end
        local wl
        if m == "shared" and changes_worktrees(repo, k, (...)) then
          -- (not sliced: a slice yields, and git.lock is held here; another task of this
          -- process asking for it exclusive would wait on its own process)
          wl, lerr, lcode = lock(wt_lock_path, "exclusive")
          if not wl then
            lk:release()
            return nil, lerr, lcode
          end
        end
        local res = table.pack(pcall(f, repo, ...))
        if res[1] and res[2] == nil and res[4] == "ELOCKED" and k ~= "recover" then
          if m == "shared" then
            if wl then wl:release() end
            wl = nil
            lk:release()
            lk, lerr, lcode = lock(lock_path, "exclusive", db)
            if not lk then return nil, lerr, lcode end
          end
          repo:recover()
          if state then M.clear_index_locks(state) end
          res = table.pack(pcall(f, repo, ...))
        end
        if wl then wl:release() end
        lk:release()
        if not res[1] then error(res[2], 0) end
        return table.unpack(res, 2, res.n)
      end
    end
    return cache[k]
  end })
end

-- A repository about to be made of workspace/ (its own removed): the cards' directories,
-- parked or not, hold indexes of the removed one's objects, and the next card to take one
-- failed on it ("object not found"). They are moved aside, not deleted (an agent's
-- uncommitted work may be in one), before the repository is made, so that a kill between
-- the two leaves them aside already -> the folder they went to | nil (none) | nil, message
local function set_aside(worktrees, state)
  -- read to its end: luv frees a listing's entries only then (or when collected)
  local scan, any = uv.fs_scandir(worktrees), false
  while scan do
    if not uv.fs_scandir_next(scan) then break end
    any = true
  end
  if not any then return nil end
  local aside = worktrees:gsub("/worktrees$", "") .. "/lost/" .. os.date("!%Y%m%dT%H%M%SZ")
    .. string.format("-%d", uv.os_getpid())
  uv.fs_mkdir(aside:gsub("/[^/]+$", ""), 448)
  uv.fs_mkdir(aside, 448)
  local ok = uv.fs_rename(worktrees, aside .. "/worktrees")
  if ok and uv.fs_stat(state) then ok = uv.fs_rename(state, aside .. "/worktree-state") end
  if not ok then
    return nil, string.format("git: workspace/ has no repository, and the cards' directories of the removed one "
      .. "(%s) could not be moved aside to %s", worktrees, aside)
  end
  return aside
end

--- open(ws_dir, worktrees_dir) -> git {repo=, dir=, state=, made=, aside=} | nil, msg, CODE:
--- the workspace's repository, made (with a first commit of what is there) when the
--- workspace has none (made: true; aside: where the card directories left from a removed
--- one went) or a killed first run left it without main (under .orket/git.lock: two
--- processes starting on a new project make it once).
function M.open(ws_dir, worktrees)
  local lk = lock(worktrees:gsub("/worktrees$", "") .. "/git.lock", "exclusive")
  local _ <close> = setmetatable({}, { __close = function() if lk then lk:release() end end })
  local state = worktrees:gsub("/worktrees$", "") .. "/worktree-state"
  local repo, err, code = G.open(ws_dir)
  local made, aside = not repo and code == "ENOENT", nil
  if repo and not repo:head("main") then
    -- a first run killed before init's first commit: init again (it is idempotent)
    repo:close()
    repo, code = nil, "ENOENT"
  end
  -- only where there is no .git at all: one libgit2 found no repository in is a first run's
  -- init that was killed (its cards' directories went aside before it), never a repository
  -- to part the cards' directories from (another user's, one this process may not read:
  -- refused, EACCES, by G.open)
  if made and not uv.fs_lstat(ws_dir .. "/.git") then
    local aerr
    aside, aerr = set_aside(worktrees, state)
    if aerr then return nil, aerr, "EIO" end
  end
  if not repo and code == "ENOENT" then repo, err, code = G.init(ws_dir, ENGINE) end
  if not repo then return nil, err, code end
  -- what a run killed in the middle of putting a program's refused paths back left
  progwrites.sweep(state)
  local st = uv.fs_stat(repo:path())
  return { repo = repo, dir = worktrees, state = state, made = made, aside = aside,
    ino = st and st.ino, dev = st and st.dev }
end

--- moved(git) -> why | nil: why git work fails for good in this process: the repository
--- is no longer where it was opened (the project's folder moved or removed while a run
--- went on). libgit2 finds it by its path, so every later operation would fail ("no branch
--- main") and block each card it touched; the run stops instead (Run:git_moved).
function M.moved(git)
  if not git or not git.ino then return nil end
  local path = git.repo:path()
  local st = uv.fs_stat(path)
  if st and st.ino == git.ino and st.dev == git.dev then return nil end
  return string.format("the project's repository is no longer at %s: the project's folder was moved or removed "
    .. "while the run went on", path)
end

-- The git section when main has a remote to be pushed to.
local function remote_settings(run)
  local g = run.settings and run.settings.git
  if not run.git or not g or not g.remote then return nil end
  return g
end

local function author(job)
  return { name = string.format("%s (%s)", job.seat, job.role.name), email = job.seat .. "@orket.invalid" }
end

-- The turn key in a commit's Orket-Turn trailer: the same turn of the same run commits once.
local function turn_key(job)
  return string.format("%d/%s/%d", job.run, job.card_id, job.turn)
end

-- The card's last merge conflict with no later merge of main into its branch: the next turn
-- must begin with main merged in.
local function needs_main(db, card)
  return sj.last_merge_mark(db, card) == "merge_conflict"
end

-- A card's directory is <dir>/<CARD>, its index and checkout marker under <state>/<CARD>
-- (outside anything an agent can write). A done card's pair is parked as <dir>/.pool-<NAME>
-- and <state>/.pool-<NAME> (no card id starts with "."), and a card that has no directory
-- takes a parked one: the directory already holds a tree close to main's, so attaching it
-- writes only the paths that differ (docs/git.md). A rename is atomic, so two processes
-- never take the same one.
local function paths(git, name)
  return git.dir .. "/" .. name, git.state .. "/" .. name
end

local names = tree.names

-- Host faults: a failure of the machine's, not of the card's work, which no turn of the model
-- can put right (it was handed the error as a tool's, turns burned, and the card blocked with
-- "raise the budget"): the run stops as for a full disk, and `orket resume` carries on once it
-- is fixed. By its code (the workspace's, or a project tool's own), or by the C library's words
-- for it in a message whose code is git's or the layers' catch-all (EGIT, EIO); the most
-- specific first (ENFILE's words begin with EMFILE's).
local HOST = {
  { "ENFILE", "the system may open no more files: raise sysctl fs.file-max, or end what holds them" },
  { "EMFILE", "this process may open no more files: raise its limit, ulimit -n or systemd LimitNOFILE=" },
  { "EROFS", "the file system is mounted read-only: remount it read-write" },
  { "EIO", "the disk reported an I/O error: check it, dmesg and fsck, before going on" },
}
local HOST_WORDS = {}
for n = 1, 200 do
  local name, words = rt.errno_text(n)
  if name then HOST_WORDS[name] = words end
end

-- A refused access is the host's only where one of the places Orket itself writes for the
-- card (main's working tree and its .git, the card's directory and its state) may not be
-- written by this process (an owner or modes changed under the project); inside the card's
-- directory it is the agent's own work (a program it ran made a file read-only), which the
-- model is told as before -> the place's description | nil
local function unwritable(run, card)
  local git = run.git
  if not git then return nil end
  local ws = git.repo:path()
  local dir, state = paths(git, card)
  for _, p in ipairs { ws, ws .. "/.git", ws .. "/.git/objects", ws .. "/.git/refs/heads", dir, state } do
    local st = uv.fs_stat(p)
    local refused = st and not uv.fs_access(p, "WX")
    if refused and st.uid == uv.getuid() then
      return string.format("%s (mode %04o) may not be written by this process, its owner's: give the project "
        .. "back its modes, chmod -R u+rwX", p, st.mode & 4095)
    elseif refused then
      return string.format("%s belongs to uid %d and this process runs as uid %d, which may not write it: run "
        .. "orket as the project's owner, or give the project to the user orket runs as, chown -R", p, st.uid, uv.getuid())
    end
  end
  return nil
end

--- host_fault(run, card, code, msg) -> msg with the cause's remedy, its code (EMFILE, ENFILE,
--- EROFS, EIO, EACCES) | nil: whether a failure (a tool's result, a git operation of the
--- card's) is the host's (HOST, or a refused access to what Orket writes: unwritable), which
--- stops the run rather than reach the model.
function M.host_fault(run, card, code, msg)
  msg = tostring(msg)
  for _, h in ipairs(HOST) do
    local words = HOST_WORDS[h[1]]
    -- (EIO the code is the layers' word for any error of the system's: only its words count)
    if (code == h[1] and code ~= "EIO") or ((code == "EIO" or code == "EGIT") and words and msg:find(words, 1, true)) then
      return string.format("%s; %s", msg, h[2]), h[1]
    end
  end
  local denied = code == "EACCES" or ((code == "EIO" or code == "EGIT") and msg:find(HOST_WORDS.EACCES, 1, true))
  local where = denied and unwritable(run, card)
  if where then return string.format("%s; %s", msg, where), "EACCES" end
  return nil
end

-- STOPS: the code under which a failure stops the run (Run:git_broken stops for ENOSPC alone):
-- a host fault goes on under it, its message naming the real cause -> msg, code, the cause's
-- own code (host_fault's: what a tool's answer says, never ENOSPC for a want of descriptors)
local STOPS = "ENOSPC"
local function as_stop(run, card, msg, code)
  local host, cause = nil, nil
  if code ~= STOPS then host, cause = M.host_fault(run, card, code, msg) end
  if host then return host, STOPS, cause end
  return msg, code
end

local function take_parked(git, card_id)
  local dir, state = paths(git, card_id)
  if uv.fs_stat(dir) then return end
  for _, name in ipairs(names(git.dir)) do
    if name:sub(1, 6) == ".pool-" then
      local pdir, pstate = paths(git, name)
      -- the state first: once the directory is ours, its index must be where attach looks
      -- (without it attach empties the directory and writes the card's whole tree)
      if uv.fs_rename(pstate, state .. ".taking") then
        if uv.fs_rename(pdir, dir) then
          uv.fs_rename(state .. ".taking", state)
          return
        end
        uv.fs_rename(state .. ".taking", pstate) -- taken by another process meanwhile
      end
    end
  end
end

local function park(git, card_id)
  local dir, state = paths(git, card_id)
  local n, name = 0, ".pool-" .. card_id
  while uv.fs_stat(git.dir .. "/" .. name) or uv.fs_stat(git.state .. "/" .. name) do
    n = n + 1
    name = ".pool-" .. card_id .. "-" .. n
  end
  local pdir, pstate = paths(git, name)
  -- the state first: a directory parked without its index is emptied when taken
  if uv.fs_stat(state) then uv.fs_rename(state, pstate) end
  uv.fs_rename(dir, pdir)
end

--- clear_index_locks(state): removes the index.lock of every card's (and parked
--- directory's) state under state. Only for a caller that knows no operation is in flight:
--- recover before a run, or a worker holding .orket/git.lock exclusive (a lock is then one a
--- killed process left, which would refuse every later commit of that card).
function M.clear_index_locks(state)
  for _, name in ipairs(names(state)) do os.remove(state .. "/" .. name .. "/index.lock") end
end

-- What this process knows of a card's directory between commits. While only the turns'
-- file tools (job.fs, which notes every path it writes, appends to, deletes or moves) have
-- written there, the paths they touched are all that changed since the directory last
-- matched its index, and a commit stages those alone (repo:commit's paths): a walk of the
-- whole directory costs what main holds, not what the turn changed. run.git_known[card] =
-- {run=, turn=, paths={path=true...}} is set when the card's directory is handed out fresh
-- (made, or a parked one taken: detach left it matching its index), after each commit and
-- after main is merged in; it holds only while the card's turns follow one another here: a
-- turn of another process in between, or a resumed one, may have left files of its own.
-- all (when not nil) holds every path touched since the directory was handed out fresh,
-- committed or not: what detaching must check and clear (an ignored file a tool wrote).
-- A program run in the directory (verify.cwd) may change anything: known() forgets it, and
-- the next commit walks the whole directory.
local function known(run, card, v)
  if v ~= nil then
    run.git_known = run.git_known or {}
    run.git_known[card] = v or nil
  end
  return run.git_known and run.git_known[card]
end

--- forget(run, card_id): what this process knew of the card's directory is no longer true
--- (a program runs there): its next commit walks it whole
function M.forget(run, card_id)
  known(run, card_id, false) -- (a whole walk's commit judges what changed: orket.engine.progwrites)
end

--- worktree(run, card_id) -> the path of the card's working directory, attached to its
--- branch (made from main when it has none yet) | nil, msg (the one place that names where
--- a card's directory lives)
function M.worktree(run, card_id)
  if not G.card_valid(card_id) then return nil, "card id " .. card_id .. " cannot name a git branch" end
  local git = run.git
  -- attach makes the directories (and their parents) it needs; a missing git.dir only
  -- means nothing is parked there
  take_parked(git, card_id)
  local dir, state = paths(git, card_id)
  return git.repo:attach(card_id, dir, state)
end

-- An open turn (a killed run's, carried on by resume) replays its recorded calls without
-- running them again: what they changed in files is taken to be in the card's directory,
-- uncommitted until the turn's end. A directory not on disk (a restore into another folder:
-- a backup holds the store, and workspace/ holds only commits, never .orket/worktrees/; the
-- directory removed; a worker of another folder taking the card over) is made again from the
-- branch, without those changes: the turn would commit nothing, and a review could finish the
-- card without its work. -> the tools of the open turn's calls whose changes are gone | nil
local function lost_changes(run, job)
  if job.fresh then return nil end
  local tools, lost = job.tools or run.tools, {}
  for _, name in ipairs(recorded.effects(run.db, job.run, job.card_id, job.turn)) do
    -- a live sandbox's call changes no file of the card's (an unknown tool may have)
    local def = tools and tools:get(name)
    if not (def and def.effect == "sandbox") then lost[#lost + 1] = name end
  end
  if #lost == 0 then return nil end
  -- killed between the turn's commit and its end's record: the commit holds them
  local found = run.git.repo:find_trailer("orket/" .. job.card_id, "Orket-Turn", turn_key(job))
  if found then return nil end
  return lost
end

-- The statuses a work turn hands a card in with, which a review would take as the work done
local HANDED_IN = { code_review = true, ready_for_testing = true }

-- lost_changes found: in one transaction the engine says so on the card, ends the open turn
-- (outcome work_lost, its calls' recorded results dropped, so the card's next turn asks the
-- model again), moves a card the turn handed in back to in_progress, and writes a work_lost
-- event {turn, dir, tools}; then the run says it (a git event, action work_lost).
-- job.lost: the turn's outcome, for turn.run. -> true | nil, msg, CODE
local function lose_turn(run, job, tools, dir)
  local pd = run.project_dir and (run.project_dir:gsub("/$", "") .. "/")
  local shown = pd and dir:sub(1, #pd) == pd and dir:sub(#pd + 1) or dir
  local why = string.format("The card's directory %s was not on disk (a restore from a backup, which holds the "
    .. "store and not .orket/worktrees/, or the directory removed), so it was made again from orket/%s, which holds "
    .. "only committed work. Turn %d was still open, and what its calls (%s) changed there was never committed: it is "
    .. "gone. The engine ended that turn without their results; the card's next turn does the work again.",
    shown, job.card_id, job.turn, table.concat(tools, ", "))
  local out = { ended = "work_lost", detail = why }
  local ok, err, code = run.db:tx(function()
    run:check_lease(job)
    local card = assert(run.board:get(job.card_id))
    if job.phase ~= "review" and HANDED_IN[card.status] then
      local t, terr, tcode = run.board:transition(job.card_id, "in_progress",
        { actor = { seat = job.seat, roles = job.actor and job.actor.roles, by = "engine" }, note = "work lost: turn " .. job.turn })
      if not t then return nil, terr, tcode end
    end
    assert(run.board:comment(job.card_id, { author = "orket", body = why }))
    run.db:event { kind = "work_lost", card = job.card_id, run = run.run_id,
      data = { turn = job.turn, dir = shown, tools = tools } }
    return run:end_turn_records(job, out)
  end)
  if not ok then return nil, err, code end
  run:emit { type = "git", card = job.card_id, action = "work_lost", turn = job.turn, dir = shown, tools = tools,
    message = string.format("%s: %s was made again without turn %d's uncommitted changes (%s): the turn ends and "
      .. "the card is worked again", job.card_id, shown, job.turn, table.concat(tools, ", ")) }
  job.lost = out
  return true
end

-- M.enter's work, its failures as they came
local function enter(run, job)
  local git = run.git
  if not git then return true end
  local repo = git.repo
  local dir = paths(git, job.card_id)
  local existed = uv.fs_stat(dir)
  if not existed then
    -- asked before the directory is made: a kill before the turn's end is recorded leaves
    -- it missing, and the next resume asks again
    local lost = lost_changes(run, job)
    if lost then return lose_turn(run, job, lost, dir) end
  end
  local path, err, code = M.worktree(run, job.card_id)
  if not path then return nil, err, code end
  local k = known(run, job.card_id)
  if not existed then
    known(run, job.card_id, { run = job.run, turn = job.turn - 1, paths = {}, all = {} })
  elseif k and not (job.fresh and k.run == job.run and k.turn == job.turn - 1) then
    known(run, job.card_id, false)
  end
  -- prepare read the card's merge marks with its turns (job.needs_main); a job made
  -- elsewhere has them read here
  local needs = job.needs_main
  if needs == nil then needs = needs_main(run.db, job.card_id) end
  if needs then
    -- whatever an interrupted turn left is committed first (merge_from_main wants a clean
    -- tree), judged first as any whole commit is (orket.engine.progwrites): a program's
    -- leftovers the policies refuse are put back, not committed here unjudged
    local sok, serr, scode = progwrites.settle(run, job, dir, git.state)
    if not sok then return nil, serr, scode end
    local cid, cerr, ccode = repo:commit(job.card_id, { name = ENGINE.name, email = ENGINE.email,
      message = string.format("%s: work left before merging main", job.card_id) })
    if not cid then return nil, cerr, ccode end
    local m, merr, mcode = repo:merge_from_main(job.card_id, ENGINE)
    if not m then
      known(run, job.card_id, false) -- its checkout may be left half done: the next commit looks
      return nil, merr, mcode
    end
    -- committed whole, then files and index moved together: the directory matches its index
    local before = known(run, job.card_id)
    known(run, job.card_id, { run = job.run, turn = job.turn - 1, paths = {}, all = before and before.all })
    fault.hit("after_git_merge_main")
    local ok, werr = run.db:tx(function()
      run.db:event { kind = "merge_main", card = job.card_id, run = run.run_id,
        data = { id = m.id, kind = m.kind, conflicts = #m.conflicts > 0 and m.conflicts or nil } }
      return true
    end)
    if not ok then return nil, werr end
    run:emit { type = "git", card = job.card_id, action = "merge_main", kind = m.kind, id = m.id,
      paths = #m.conflicts > 0 and m.conflicts or nil }
  end
  -- a review may end in a merge: the remote's main is fetched now, outside the step's
  -- transaction, and finish merges it into main before the card (a conflict with what people
  -- merged on the forge is then the card's, sent back as any conflict)
  local g = remote_settings(run)
  if g and job.phase == "review" then
    job.remote_main = aftermerge.fetch_main { g = g, repo = repo } and true or false
    -- and the card's branch there: commits pushed to it after the hand-in refuse the move to
    -- done (orket.actions.finish.branch_pushed); a fetch that fails leaves what the last read
    pcall(prbranch.fetch, repo, g, job.card_id)
  end
  local fs, ferr, fcode = workspace.open(path, run.settings and run.settings.workspace)
  if not fs then return nil, ferr, fcode end
  job.fs = fs
  return true
end

--- enter(run, job) -> true | nil, msg, CODE: makes (or finds) the card's worktree, merges main into
--- it when the card's last merge conflicted, and opens the turn's workspace view on it
--- (job.fs, closed by leave). A host fault met (host_fault) comes as ENOSPC: the run stops.
function M.enter(run, job)
  local ok, err, code = enter(run, job)
  if ok then return ok end
  err, code = as_stop(run, job.card_id, err, code)
  return nil, err, code
end

--- said(run, card, out): a run's events for what followed a card's merge
--- (orket.engine.aftermerge's outcome: the pull request's end, main's push, a deploy)
function M.said(run, card, out)
  local pr, push, d = out.pull_request, out.push, out.deploy
  if pr then
    run:emit { type = "git", card = card, action = "pull_request_end", outcome = pr.code, number = pr.number,
      error = pr.error }
  end
  if out.branch then
    run:emit { type = "git", card = card, action = "branch_left", outcome = out.branch.code, from = out.branch.from,
      error = out.branch.error }
  end
  if push and push.code ~= "uptodate" then
    run:emit { type = "git", card = card, action = "push_main", outcome = push.code, id = push.id, error = push.error,
      paths = push.paths, rewound = push.rewound }
  end
  if d then
    run:emit { type = "sandbox", action = "deploy", card = card, reason = d.reason, commit = d.commit,
      owner_pid = d.owner_pid, error = d.error }
    -- its checks are waited for at the run's end (deploys_end); a deploy the plan refused
    -- (no owner) journaled its cards' failed check already: listed too, so the run's end
    -- names it among its failed checks
    if d.owner_pid or d.checks then
      run.deploys = run.deploys or {}
      run.deploys[#run.deploys + 1] = { card = card, owner_pid = d.owner_pid }
    end
  end
end

-- The workspace repository's housekeeping, git's gc.auto (which libgit2 never runs): every
-- commit and merge writes loose objects, a file each (5,000 cards: 29,000 files, 615 MB
-- where their pack takes 3 MB). At a run's end, never on a card's path, the loose objects
-- are estimated as git does (objects/17 times 256) and packed past gc.auto's 6,700; past
-- gc.autoPackLimit's 50 packs, the packs are consolidated too. Each pass takes at most
-- PACK_MAX_OBJECTS (the rest waits for the next run's end) and stops writing at PACK_MS.
M.PACK_LOOSE = 6700
M.PACK_PACKS = 50
M.PACK_MAX_OBJECTS = 100000
M.PACK_MS = 60000

--- pack(run): packs the repository when it is due (above), said as a {type="git",
--- action="pack"} event: outcome "packed" with what it did, or "failed" with the error (a
--- warning: the run's outcome is its cards', never its housekeeping's)
function M.pack(run)
  local repo = run.git and run.git.repo
  if not repo or type(repo.pack_count) ~= "function" then return end -- (a test's stand-in repository)
  local cok, c, err, code = pcall(repo.pack_count, repo)
  if not cok then c, err, code = nil, tostring(c), "EGIT" end
  if not c then
    run:emit { type = "git", action = "pack", outcome = "failed", error = err, code = code }
    return
  end
  -- git's test: more than gc.auto / 256 (rounded up) loose objects in objects/17
  local all = c.packs > M.PACK_PACKS
  if c.loose // 256 <= (M.PACK_LOOSE + 255) // 256 and not all then return end
  local t0 = uv.hrtime()
  local ok, res, perr, pcode = pcall(repo.pack, repo, { all = all, max_objects = M.PACK_MAX_OBJECTS,
    deadline_ms = M.PACK_MS })
  local ms = (uv.hrtime() - t0) // 1000000
  if not ok then res, perr, pcode = nil, tostring(res), "EGIT" end
  if res then
    run:emit { type = "git", action = "pack", outcome = "packed", all = all or nil, loose = res.loose,
      packed = res.packed, removed = res.removed, packs_gone = res.packs_gone, unread = res.unread, ms = ms }
  else
    run:emit { type = "git", action = "pack", outcome = "failed", all = all or nil, error = perr, code = pcode, ms = ms }
  end
end

--- deploys_end(run): at the run's end, the acceptance checks of the sandboxes it deployed
--- (run by their owners in the background) are waited for, within a bound
--- (orket.sandboxes.deploy.await_checks); those that could not run here are said as
--- sandbox_check_skipped events, so the run's summary lists them with their reasons, and
--- a deploy whose checks had not ended as {type="sandbox", action="checks_pending"}
function M.deploys_end(run)
  -- the run's git work is over: the repository's housekeeping (M.pack) first
  M.pack(run)
  if not (run.deploys and #run.deploys > 0 and run.settings and run.settings.sandbox) then return end
  local left = deploy.await_checks { db = run.db, board = run.board, settings = run.settings, deploys = run.deploys,
    run_id = run.run_id }
  for _, d in ipairs(left) do
    run:emit { type = "sandbox", action = "checks_pending", card = d.card, owner_pid = d.owner_pid }
  end
  local cards, seen = {}, {}
  for _, d in ipairs(run.deploys) do
    for _, id in ipairs(deploy.accepting(run.settings.sandbox.deploy, run.board, d.card)) do
      if not seen[id] then
        seen[id] = true
        cards[#cards + 1] = id
      end
    end
  end
  for _, k in ipairs(deploy.skipped_of(run.db, cards, run.run_id)) do
    run:emit { type = "sandbox_check_skipped", card = k.card, name = k.name, why = k.why, sandbox = k.sandbox }
  end
  -- a failure after the card was done (deploy = "epic", an epic's last merge) sends nothing
  -- back within the run: its follow-up or bug is filed, and said here, or the run ended
  -- "done" without a word of it
  for _, f in ipairs(deploy.failed_of(run.db, cards, run.run_id)) do
    run:emit { type = "sandbox_check_failed", card = f.card, sandbox = f.sandbox, outcome = f.outcome,
      followup = f.followup, failed = f.failed }
  end
end

--- after_merge(run, card, merge): what follows a card's merge into main, in a task outside
--- any transaction (orket.engine.aftermerge: its pull request ends, main is pushed, a
--- sandbox may be deployed), said in the run's events
function M.after_merge(run, card, merge)
  local out = aftermerge.after_merge { owner = run, dir = run.project_dir, db = run.db, board = run.board,
    settings = run.settings, repo = run.git and run.git.repo, card = card, merge_id = merge and merge.id, run_id = run.run_id }
  M.said(run, card, out)
  return out
end

--- catch_up(run): when a run starts, what an earlier merge left undone (the forge or the
--- remote down, a kill): the pull requests of done cards that have not ended end now, then
--- main is pushed.
function M.catch_up(run)
  local g = remote_settings(run)
  if not g then return end
  if g.forge then
    local token, terr
    for _, c in ipairs(run.board:list { status = "done", type = "issue" } or {}) do
      if pull_request.pending(run.db, c.id) then
        if not token and not terr then token, terr = forge.token(g) end
        local m = sj.last_merge(run.db, c.id)
        M.said(run, c.id, { pull_request = aftermerge.end_pull_request { db = run.db, g = g, token = token,
          token_error = terr, card = c.id, merge_id = m and m.id, run_id = run.run_id, repo = run.git.repo } })
      end
    end
    token = nil
  end
  M.said(run, nil, { push = aftermerge.push_main { owner = run, db = run.db, g = g, repo = run.git.repo, run_id = run.run_id,
    backoff_ms = run.settings.budgets.backoff_ms } })
end

--- leave(job): closes the turn's workspace view
function M.leave(job)
  if job.fs then
    job.fs:close()
    job.fs = nil
  end
end

--- retire(run, job) -> true | nil, msg, CODE: parks a done card's directory once its last
--- turn is recorded, for the next card without one (its branch, merged into main, stays; a
--- later turn attaches a directory again). Its ignored files are removed first; uncommitted
--- changes (a commit that failed) keep it where it is (EDIRTY).
function M.retire(run, job)
  if not run.git then return true end
  -- the turn's own last changes (after its commit) count too: the view notes them until closed
  local k, changes = known(run, job.card_id), job.fs and job.fs:take_changes()
  M.leave(job)
  known(run, job.card_id, false)
  local only
  if k and k.all and changes ~= false then
    for _, p in ipairs(changes or {}) do k.all[p] = true end
    only = {}
    for p in pairs(k.all) do only[#only + 1] = p end
    table.sort(only)
  end
  local ok, err, code = run.git.repo:detach(job.card_id, only and { paths = only })
  if ok == nil then return nil, err, code end
  if ok then park(run.git, job.card_id) end
  return true
end

--- commit(run, job) -> true, skipped | nil, msg, CODE: commits what the turn changed in the
--- card's worktree and journals the commit (a `commit` event), inside the caller's
--- transaction (the turn's end records). Committed first, recorded second: a kill between
--- the two leaves a commit that carries the turn's trailer, so the resumed turn finds it
--- ("exists") and never commits twice. skipped: what was left out ({"path (why)"...}: FIFOs,
--- sockets, devices, files over the cap, nested repositories, and the files the turn's tools
--- wrote that a .gitignore rule keeps out), nil when nothing was.
--- EUNSAFE: the worktree is not one git may read (a special .gitignore, a rewritten .git).
--- ENOSPC: a full disk, or another host fault (host_fault), named: the run stops.
function M.commit(run, job)
  local git = run.git
  if not git or not job.fs then return true end
  local who = author(job)
  -- the paths the turn's file tools touched join those not yet committed (known(), above)
  local k, changes = known(run, job.card_id), job.fs:take_changes()
  if k and not changes then k = known(run, job.card_id, false) end
  local only
  if k then
    for _, p in ipairs(changes) do
      k.paths[p] = true
      if k.all then k.all[p] = true end
    end
    only = {}
    for p in pairs(k.paths) do only[#only + 1] = p end
    table.sort(only)
    -- nothing touched since the directory last matched its tip, in this run: the commit would
    -- find the tree unchanged ("clean"), which is all a reviewer's turn usually leaves
    if #only == 0 and k.run == job.run then
      k.turn = job.turn
      return true
    end
  end
  -- walked whole (a program ran, a new or resumed run, another worker's turn): what changed
  -- there is judged first, as the file tools' writes are, whoever changed it and whenever,
  -- and a path the policies refuse is put back as the branch has it, so this commit leaves
  -- it out (orket.engine.progwrites)
  if not only then
    local sok, serr, scode = progwrites.settle(run, job, (paths(git, job.card_id)), git.state)
    if not sok then return nil, as_stop(run, job.card_id, serr, scode) end
  end
  -- the paths the turn's file tools wrote still get the note of one a .gitignore rule keeps
  -- out (a program's own output cannot be named, so it gets none)
  local id, kind, skipped = git.repo:commit(job.card_id, { name = who.name, email = who.email, turn = turn_key(job),
    message = string.format("%s: turn %d (%s, run %d)", job.card_id, job.turn, job.phase, job.run), paths = only,
    wrote = not only and changes or nil })
  if not id then return nil, as_stop(run, job.card_id, kind, skipped) end
  if kind ~= "exists" then
    known(run, job.card_id, { run = job.run, turn = job.turn, paths = {}, all = k and k.all })
  elseif k then -- this turn was committed before (a resumed turn): what it touched since waits for the next
    k.run, k.turn = job.run, job.turn
  end
  if #skipped == 0 then skipped = nil end
  fault.hit("after_git_commit")
  if kind ~= "clean" and id ~= job.commit then
    run.db:event { kind = "commit", card = job.card_id, run = run.run_id, actor = job.seat,
      data = { id = id, turn = job.turn, branch = "orket/" .. job.card_id, kind = kind } }
    job.commit = id
  end
  return true, skipped
end

M.ENGINE = ENGINE

--- send_back(...): orket.actions.finish.send_back (kept here for callers that know gitwork)
M.send_back = finish.send_back

-- A merge into main that fails because workspace/'s repository lacks an object the merge
-- reads (libgit2's "object not found": history a shallow or partial clone never fetched, an
-- object gone from a damaged repository) fails the same at every try, and no turn of the
-- model can put it right: handed to the reviewer as the tool's error, it was tried turn
-- after turn until the card was blocked with "raise the budget", nothing about git on it.
-- Only that class (EGIT, or ENOENT where libgit2's ENOTFOUND came through, with those
-- words): a conflict, a lock, a moved main and the host's faults have their own ways.
local function missing_object(code, msg)
  return (code == "EGIT" or code == "ENOENT") and tostring(msg):find("object not found", 1, true) ~= nil
end

-- Blocks the card (`system`) for such a merge failure, git's words in its comment -> the
-- tool's answer, which says so
local function block_unmergeable(run, job, id, msg)
  local why = string.format("The turn failed: merging orket/%s into main failed: %s. workspace/'s repository lacks an "
    .. "object the merge reads (history a shallow or partial clone never fetched, or a damaged repository), which no "
    .. "turn of the model can put right: fetch what is missing (git -C workspace fetch --unshallow for a shallow clone; "
    .. "git -C workspace fsck names what is gone), then orket retry %s.", id, msg, id)
  run:block({ id = id }, job.actor, "system", why)
  return "board: " .. id .. ": " .. msg .. "; the card is blocked for a person (system): no turn can fix this"
end

--- mover(run, job) -> move(id, to, opts) -> card | nil, msg, CODE | nil: how a turn's tools
--- move a card (orket.tools' board view) when the card has a worktree: moving the turn's
--- own card to done first commits the worktree, then finishes the card through
--- orket.actions.finish (its branch merged into main, the move, the merge event); any other
--- move is the board's. On a conflict nothing is merged: in the same transaction the card
--- goes back to in_progress with a comment naming the files, and the tool is told why. A
--- merge that fails for an object the repository lacks blocks the card (`system`) instead
--- (missing_object). job.merged or job.conflict says what happened, for the turn's end. nil
--- without git.
function M.mover(run, job)
  local board = run.board
  if not run.git or not job.fs then return nil end
  return function(id, to, opts)
    if to ~= "done" or id ~= job.card_id then return board:transition(id, to, opts) end
    local ok, err, code = board:check_transition(id, to, opts)
    if not ok then return nil, err, code end
    -- the card's MCP server processes end before its files are committed, as at the turn's
    -- end (orket.engine.run): one still running could write after the commit's judging
    if run.mcp then run.mcp:release(job.card_id) end
    local cok, cerr, ccode, ccause = M.commit(run, job)
    -- a full disk, or another host fault (host_fault), stops the run (Run:git_broken, once
    -- the call's step is committed): the call that moved is left open whatever its tool
    -- then answers (job.call_stop, orket.engine.turn), so resume redoes the move
    if not cok and ccode == "ENOSPC" then job.call_stop = tostring(cerr) end
    if not cok then
      return nil, "board: " .. id .. ": " .. tostring(cerr),
        ccause or ((ccode == "EUNSAFE" or ccode == "ENOSPC") and ccode or "EGIT")
    end
    local res, ferr, fcode = finish.finish { db = run.db, board = board, card = id, opts = opts, repo = run.git.repo,
      remote = job.remote_main, run_id = run.run_id, hit = fault.hit,
      conflict_actor = { seat = job.seat, roles = job.actor.roles, by = "engine" } }
    if not res then
      local fcause
      ferr, fcode, fcause = as_stop(run, id, ferr, fcode)
      if fcode == "ENOSPC" then job.call_stop = tostring(ferr) end
      if missing_object(fcode, ferr) then return nil, block_unmergeable(run, job, id, tostring(ferr)), fcode end
      if tostring(ferr):find("^git: ") then return nil, "board: " .. id .. ": " .. tostring(ferr), fcause or fcode end
      return nil, ferr, fcause or fcode
    end
    if res.code == "merge_conflict" then
      job.conflict = res.paths
      return nil, "board: " .. id .. ": " .. res.why, "ECONFLICT"
    end
    if res.code == "work_lost" then return nil, "board: " .. id .. ": " .. res.why, "ECONFLICT" end
    job.merged = res.merge
    if res.merge and res.merge.stale then -- main moved, its view could not follow: said now
      run:emit { type = "git", card = id, action = "view_stale", error = res.merge.stale }
    end
    return res.card
  end
end

--- recover(run) -> true | nil, msg: at the start of a run, under the project's run lock:
--- stale locks a killed process left are removed and every working tree settled; not
--- while another run goes (engine.no_git_recover), whose git work may be in flight. In main's
--- repository (workspace/.git, a person's too) only the locks a killed write of Orket's
--- recorded go: a person's git's (a commit whose editor is open holds index.lock) stay, and
--- the view says it waits for them (docs/git.md, Crash safety).
function M.recover(run)
  -- another run is going (orket.engine.claims): its git work may be in flight
  if not run.git or run.no_git_recover then return true end
  local n, err = run.git.repo:recover()
  if not n then return nil, err end
  -- an index lock a kill left in a card's (or a parked directory's) state is stale: no other
  -- run is going, and each directory is one process's at a time
  M.clear_index_locks(run.git.state)
  -- every card's directory is settled too (a checkout a kill interrupted); a directory whose
  -- state is missing (killed while it changed hands) is emptied and written again. A
  -- finished card's is parked, as retire parks a card done by its turn: one canceled, or
  -- done on the forge (a person's review, a webhook), kept its whole checkout for good.
  for _, name in ipairs(names(run.git.dir)) do
    if G.card_valid(name) and uv.fs_stat(run.git.state .. "/" .. name) then
      local ok, aerr = run.git.repo:attach(name, paths(run.git, name))
      if not ok then return nil, aerr end
      local c = run.board and run.board:get(name)
      if c and FINAL[c.status] then
        local dok, derr, dcode = run.git.repo:detach(name)
        if dok then park(run.git, name)
        elseif dok == nil and dcode ~= "EDIRTY" then -- (uncommitted changes keep it, as retire's)
          run:emit { type = "git", card = name, action = "worktree_kept", detail = derr }
        end
      end
    end
  end
  return true
end

--- lost_merges(db, repo, made) -> cards, count, how | nil: the cards whose last merge the
--- journal records and main's history here no longer holds, newest first, at most 20 named
--- of count; nil when main holds the journal's newest merge (one read and one lookup: the
--- common case). how (not made): "back" when main's tip is in the newest lost merge's
--- history (main moved back past it: a reset), else "rewritten" (an amend, a rebase, a reset
--- onto another line: the merged changes may well still be in main, only not those commits).
--- Said only where that is this folder's loss: the repository was made again
--- now (made), or the commit is here and main was moved back past it (a person's reset). A
--- commit this repository never had is another folder's merge (several servers on one
--- store, docs/store.md), a shallow clone's or a restore's, and is not said. Their cards
--- stay done: said at the run's start, never a stop (bringing the work back, or going on
--- without it, is the person's choice).
M.LOST_MERGES_READ = 500
function M.lost_merges(db, repo, made)
  local newest = sj.merges(db, 1)[1]
  if not newest or type(newest.data.id) ~= "string" or repo:contains("refs/heads/main", newest.data.id) ~= false then
    return nil
  end
  local objects = not made and gitdiff.open(repo:path())
  if not made and not objects then return nil end
  local function lost(id)
    if repo:contains("refs/heads/main", id) ~= false then return false end
    return made or objects:resolve(id) ~= nil
  end
  local cards, seen, n, how = {}, {}, 0, nil
  for _, r in ipairs(sj.merges(db, M.LOST_MERGES_READ)) do
    local id = r.data.id
    if type(id) == "string" and r.card_id and not seen[r.card_id] then
      seen[r.card_id] = true
      if lost(id) then
        n = n + 1
        if #cards < 20 then cards[#cards + 1] = r.card_id end
        if objects and not how then
          local tip = repo:head("main")
          how = tip and objects:merge_base("refs/heads/main", id) == tip and "back" or "rewritten"
        end
      end
    end
  end
  if objects then objects:close() end
  if n == 0 then return nil end
  return cards, n, how
end

--- history_note(cards, count, made [, aside [, how]]) -> the line that says so (made:
--- workspace/'s repository was made again now; aside: where the removed one's card
--- directories went; how: lost_merges')
function M.history_note(cards, count, made, aside, how)
  local named = table.concat(cards, ", ") .. (count > #cards and ", ..." or "")
  if not made and how == "rewritten" then
    -- an amend or rebase of a merged commit: the work is most likely in main still, and
    -- restoring .git would throw the person's rewrite away
    return string.format("main's history no longer holds the commits Orket merged for %d card%s (%s): main was "
      .. "rewritten since (an amend, a rebase, or a reset onto another line), so their changes may well still be in it; "
      .. "the cards keep their status. If that was your doing, nothing needs restoring ('git -C workspace log main' "
      .. "shows what main holds); if not, 'git -C workspace reflog main' shows where main was",
      count, count == 1 and "" or "s", named)
  end
  return string.format("main no longer holds the merged work of %d card%s (%s): %s; the cards keep their status. "
    .. "To bring the work back, %srestore workspace/.git (a copy of it, or main fetched from the forge's remote)%s",
    count, count == 1 and "" or "s", named,
    made and "workspace/ had no git repository, and a new one was made of what the folder held"
      or "main was moved back past their merges",
    made and "" or "move main forward again ('git -C workspace reflog main' shows where it was) or ",
    aside and ("; the removed repository's card directories are in " .. aside) or "")
end

--- info(db, repo, card) -> {branch=, commits={{id=, turn=, run=, seat=}...}, merged=} | nil:
--- what `orket card` shows: the branch, the turns' commits the journal recorded (oldest
--- first), the last merge into main
function M.info(db, repo, card)
  local branch = "orket/" .. card
  if not repo:head(branch) then return nil end
  local out = { branch = branch, commits = {} }
  for _, r in ipairs(sj.commits(db, card)) do
    local d = r.data
    out.commits[#out.commits + 1] = { id = d.id, turn = math.tointeger(d.turn) or d.turn, run = r.run_id, seat = r.actor }
  end
  local m = sj.last_merge(db, card)
  if m then out.merged = m.id end
  return out
end

return M
