-- orket.views.status: main's view (the workspace folder) as data, the orket.status/1
-- document that `orket status --json` and GET /v1/status give: each path where the view
-- holds a person's version rather than main's, what main has there, and the commands that
-- take main's version or keep the person's; and, with git.remote, main against the remote's
-- main as last fetched or pushed (docs/git.md). Uses orket.c.gitrepo.
local uv = require "luv"
local jsonout = require "orket.jsonout"
local inert = require "orket.inert"
local config = require "orket.config"
local gitrepo = require "orket.c.gitrepo"
local lockfile = require "orket.c.lockfile"
local mainline = require "orket.actions.mainline"
local gitwork = require "orket.engine.gitwork"
local project = require "orket.project"

local M = {}

M.FORMAT = "orket.status/1"

-- The commands, as argument lists run from the project's directory (a person's shell
-- quotes them; a client shows them as it likes). Taking main's version replaces the
-- person's file at the path; what git would delete besides (a directory of theirs at the
-- path, with all it holds, or their file or symlink on the way to it, view.at) is first
-- moved aside to NAME.yours, never deleted (a numbered backup keeps one already there).
-- Every path given to git is taken as it is written (--literal-pathspecs): the names are
-- the agents' choice, and as a pathspec `:!notes` means every file but `notes`, `:/` the
-- whole tree.
local function git(...) return { "git", "--literal-pathspecs", "-C", "workspace", ... } end

-- A file or symlink of the person's on the way (view.at) is where main has a folder: once
-- moved aside (by the commands of any path behind it), main's folder is there, so the move
-- runs only while that is not so; else running every listed path's commands in turn moved
-- main's own files aside again into NAME.yours.~N~.
M.ASIDE_UNLESS_FOLDER = 'test -d "$1" && ! test -L "$1" || mv --backup=numbered -T -- "$1" "$1.yours"'

local function take_main(path, main, view)
  local out, aside = {}, view.at or (view.kind == "directory" and path)
  if view.at then
    out[1] = { "sh", "-c", M.ASIDE_UNLESS_FOLDER, "sh", "workspace/" .. view.at }
  elseif aside then
    out[1] = { "mv", "--backup=numbered", "-T", "--", "workspace/" .. aside, "workspace/" .. aside .. ".yours" }
  end
  if main.kind ~= "none" then
    out[#out + 1] = git("checkout", "main", "--", path)
  elseif not aside then
    -- main has nothing there: the person's file goes from the index too, where they staged
    -- it (only from the disk, the next commit of theirs put it back into main), then from
    -- the disk where it was never staged (git rm leaves an untracked file)
    out[1] = git("rm", "-f", "-q", "--ignore-unmatch", "--", path)
    out[2] = { "rm", "-f", "--", "workspace/" .. path }
  end
  return out
end

-- What catches a view up that is behind main: any refresh (recover() removes a lock a
-- killed write of Orket's left, never a person's git's, then refreshes). Until then main's
-- index holds the files of main before the merges the view missed, so a person's ordinary
-- `git add mine && git commit` puts those back over the merges: said plainly, as nothing
-- else catches it (the merges stay in main's history, so no lost-history check fires).
M.CATCH_UP = "once that is settled it catches up at the next merge into main, or at the next 'orket run' or 'orket resume'; "
  .. "until then 'git -C workspace status' shows main's newer files as changes of yours, and a commit made in workspace/ "
  .. "before then commits main's older files, which its index still holds, over those merges"

-- What follows a merge of Orket's the view has not followed yet (its refresh under way, or a
-- process stopped before it): any refresh does, and a run's start makes one.
M.UNFOLLOWED = "a refresh under way finishes it, else the next merge into main, 'orket run' or 'orket resume' follows it; "
  .. "until then 'git -C workspace status' shows that merge as staged changes reverting it, which a commit made in "
  .. "workspace/ meanwhile would commit"

-- What catches up a view that waits for main to be checked out (its reason says how).
M.WAITS = "what it keeps of yours where main changed is listed, with the commands that settle it, once main is checked out there"

--- behind_line(reason) -> the one line that says main's view could not follow main, and why
function M.behind_line(reason)
  return string.format("workspace/ is behind main: its refresh failed (%s); %s", tostring(reason), M.CATCH_UP)
end

-- Keeping the person's version commits it: what sits on the way (view.at) is what is theirs.
-- git commits no FIFO, socket or device ("other"): no command then. A directory of theirs
-- where main has a file is committed by its folder's pathspec (`b.txt/`): `-- b.txt` makes
-- git's commit take the directory for a submodule and fail. Where main has nothing, their
-- file is untracked, and git's add refuses one a .gitignore (or their own excludes) matches:
-- a path named alone is added with -f then (a directory's ignored files stay out).
local function keep_view(path, main, view)
  if view.kind == "other" then return {} end
  local keep = view.at or path
  local dir = view.kind == "directory" and not view.at
  local only = dir and keep .. "/" or keep
  return {
    (main.kind == "none" and not dir) and git("add", "-A", "-f", "--", keep) or git("add", "-A", "--", keep),
    git("commit", "-m", "Keep my version of " .. keep, "--", only),
  }
end

-- What a -f keep command does to a file git ignores in workspace/ (a person's own .env, say):
-- it is committed into main, from where every card's folder, and so the model provider, gets
-- it. The view's question is the person's git's, so their own excludes count too.
M.IGNORED_WARNING = "ignored by git here (a .gitignore rule, .git/info/exclude or core.excludesFile): keeping yours "
  .. "commits it into main, where every card and the model provider see it"

local function commands(list)
  local out = {}
  for i, argv in ipairs(list) do out[i] = jsonout.array(argv) end
  return jsonout.array(out)
end

--- of_repo(repo[, forget]) -> the orket.status/1 document | nil, msg, CODE: repo an open
--- orket.c.gitrepo handle on the project's workspace; forget: the caller holds the
--- project's git lock, so the view's state may drop the paths that no longer differ
function M.of_repo(repo, forget)
  local main, herr, hcode = repo:head("main")
  if not main then return nil, herr, hcode end
  -- err: why the view is behind main, if it is; waits: a person's branch is checked out
  -- there, nothing listed (the commands would act on their branch)
  local paths, err, code, unfollowed = repo:view_status(forget)
  if not paths then return nil, err, code end
  local waits = code == true
  local behind = err and { reason = err, catch_up = waits and M.WAITS or unfollowed and M.UNFOLLOWED or M.CATCH_UP,
    waits = waits or nil, unfollowed = unfollowed or nil } or nil
  local diverged = {}
  for i, p in ipairs(paths) do
    local forced = p.ignored and p.view.kind ~= "other" and p.view.kind ~= "directory" or nil
    diverged[i] = { path = p.path, main = p.main, view = p.view,
      take_main = commands(take_main(p.path, p.main, p.view)), keep_view = commands(keep_view(p.path, p.main, p.view)),
      keep_warning = forced and M.IGNORED_WARNING or nil }
  end
  -- main moved by a person (a reset, amend, rebase...) that the view did not follow: said
  -- while paths are listed, with the commands that settle every listed path (each path's
  -- own are below it)
  local moved = #diverged > 0 and repo:view_moved() or nil
  if moved then
    local take, keep = {}, {}
    for _, p in ipairs(paths) do
      for _, c in ipairs(take_main(p.path, p.main, p.view)) do take[#take + 1] = c end
      for _, c in ipairs(keep_view(p.path, p.main, p.view)) do keep[#keep + 1] = c end
    end
    moved = { by = "person", from = moved.from, to = moved.to, take_main = commands(take), keep_view = commands(keep) }
  end
  return { format = M.FORMAT, main = main, diverged = jsonout.array(diverged), behind = behind, moved = moved }
end

--- NO_COMMANDS: what a JSON document says in place of the commands of a path that is not
--- UTF-8: JSON carries such bytes only as U+FFFD, so its commands would name another file
M.NO_COMMANDS = "the path is not UTF-8, which JSON carries only as U+FFFD: its commands are in orket status's text"

-- argv lists without those naming a word that is not UTF-8
local function utf8_only(list)
  local out = {}
  for _, argv in ipairs(list) do
    local ok = true
    for _, w in ipairs(argv) do ok = ok and utf8.len(w) ~= nil end
    if ok then out[#out + 1] = argv end
  end
  return jsonout.array(out)
end

--- as_json(doc) -> doc as `orket status --json` and GET /v1/status give it: a path that is
--- not UTF-8 has no commands (no_commands says why), and the commands that settle every
--- path after a person's move leave its out; the text form keeps them all, quoted bytes and all
function M.as_json(doc)
  doc.given_dir = nil -- (the caller's spelling of dir, for its hints: dir says where, absolute)
  for _, d in ipairs(doc.diverged) do
    if not utf8.len(d.path) then
      d.take_main, d.keep_view, d.no_commands = jsonout.array {}, jsonout.array {}, M.NO_COMMANDS
    end
  end
  if doc.moved then doc.moved.take_main, doc.moved.keep_view = utf8_only(doc.moved.take_main), utf8_only(doc.moved.keep_view) end
  return doc
end

M.LOCK_MS = 200

--- of_project(dir) -> the document | nil, msg, CODE: the project at dir (ENOENT: its
--- workspace is not a repository), with dir, the project's folder as an absolute path (the
--- commands' argv lists run there: a program that asked from elsewhere, workspace/ say,
--- cannot run them as they are), and given_dir, dir as the caller was given it (for the
--- hints that name the project with -C; not in the JSON). A read: nothing in workspace/ is
--- written
--- lost_of(dir, repo[, db]) -> {cards=, count=, message=} | nil: the done cards whose merge
--- main no longer holds (a person's reset moved it back past them, or a rewrite), as a run's
--- start finds them (orket.engine.gitwork lost_merges: one read of the journal and one lookup
--- when nothing is lost), said with its history_lost advice. db: the store, else opened here to
--- read (none, or one that does not open: nil, as the view has nothing to say of the board).
function M.lost_of(dir, repo, db)
  local own = not db
  if own then
    local ok, opened = pcall(project.open_store, dir, false, true)
    db = ok and opened or nil
  end
  if not db then return nil end
  local ok, cards, count, how = pcall(gitwork.lost_merges, db, repo, false)
  if own then db:close() end
  if not ok or not cards then return nil end
  return { cards = jsonout.array(cards), count = count, message = gitwork.history_note(cards, count, false, nil, how) }
end

--- of_project(dir[, db]) (db: the project's store when the caller has it open)
function M.of_project(dir, db)
  local repo, err, code = gitrepo.open(dir .. "/workspace")
  local folder = not repo and code == "ENOENT" and io.open(dir .. "/workspace") -- without its repository
  if folder then
    folder:close()
    return nil, "workspace/ has no git repository: the next 'orket run' makes one of what workspace/ holds "
      .. "(the history of a removed one is not brought back)", code
  end
  if not repo then return nil, err, code end
  -- the git lock, shared (no merge's refresh writes the view's state meanwhile), to drop the
  -- state's resolved paths; held by a run's merge for long, the status reads without it
  local lk = lockfile.wait(dir .. "/.orket/git.lock", "shared", M.LOCK_MS)
  local doc, derr, dcode = M.of_repo(repo, lk ~= nil)
  if lk then lk:release() end
  -- main against the remote's, as last fetched (an orket.lua that does not load: not said)
  local cfg, s = config.settings(dir)
  if doc and cfg then doc.remote = M.remote_of(repo, s.git) end
  if doc then doc.lost = M.lost_of(dir, repo, db) end
  repo:close()
  -- a person's git merge under way in workspace/: git refuses the keep commands' partial
  -- commit until it is concluded or aborted
  local merge_head = doc and #doc.diverged > 0 and io.open(dir .. "/workspace/.git/MERGE_HEAD")
  if merge_head then
    merge_head:close()
    doc.merging = M.MERGING
  end
  if doc then doc.dir, doc.given_dir = uv.fs_realpath(dir), dir end
  return doc, derr, dcode
end

--- remote_of(repo, g) -> main against git.remote's main as Orket last fetched or pushed it
--- (no network: the refs of workspace/'s repository, mainline.TRACKING and DROPPED) | nil
--- without git.remote: {url= (without credentials), main= (that commit, absent when none is
--- known), state= "same" | "ahead" (main has commits the remote lacks: the next merge or run
--- pushes them) | "behind" (the next merge or run merges the remote's) | "diverged" (a
--- person merges them: commands, by_hand's argv lists, then a run pushes) | "unknown"
--- (nothing fetched or pushed yet), dropped= (the commit the remote's main was at before a
--- person moved it back past commits main holds; the next push puts them back)}
function M.remote_of(repo, g)
  if not (g and g.remote) then return nil end
  local out = { url = mainline.shown_url(g.remote), state = "unknown" }
  -- the repository's own refs, listed as a remote's: the binding reads no ref by name but a branch's
  local ok, refs = pcall(gitrepo.ls_remote, repo:path())
  refs = ok and type(refs) == "table" and refs or {}
  local main, at = repo:head("main"), refs[mainline.TRACKING]
  out.main, out.dropped = at, refs[mainline.DROPPED]
  if not main or not at then return out end
  if at == main then
    out.state = "same"
  elseif repo:contains("refs/heads/main", at) then
    out.state = "ahead"
  elseif repo:contains(mainline.TRACKING, main) then
    out.state = "behind"
  else
    out.state = "diverged"
    out.commands = commands(mainline.by_hand(g.remote))
  end
  return out
end

--- hide_folders(doc) -> doc without what names the machine's folders, for a client elsewhere
--- (GET /v1/status, as it leaves out dir): a remote given as a path or file:// URL loses its
--- url and its commands (which name it), keeping its state
function M.hide_folders(doc)
  local r = doc and doc.remote
  if r and (r.url:match("^file:") or not r.url:match("^%a[%w+.-]*://")) then r.url, r.commands = nil, nil end
  return doc
end

--- MERGING: what the document says while a person's git merge is under way in workspace/
M.MERGING = "a git merge of yours is under way in workspace/: git keeps yours only once it is concluded (git -C "
  .. "workspace commit) or aborted (git -C workspace merge --abort)"

--- note(doc) -> one line naming the diverged paths, or nil when there are none: what a
--- run's output says after its merges (a view behind main is said at the merge, by its
--- git view_stale event). Each path as a shell word, as orket status writes it: a name an
--- agent made can hold a newline, which would start a line of the terminal's Orket never
--- wrote. Its 'orket status' names the project with -C as the run was given it (of_project's
--- given_dir), as the run's other hints do: typed where the run was, it finds the project
function M.note(doc)
  local n = doc and #doc.diverged or 0
  if n == 0 then return nil end
  local names = {}
  for i = 1, math.min(n, 5) do names[i] = inert.shell_word(doc.diverged[i].path) end
  return string.format("workspace/ keeps your version of %s where main has another (%d path%s); "
    .. "'orket status%s' shows both and how to take main's or keep yours",
    table.concat(names, ", ") .. (n > 5 and ", ..." or ""), n, n == 1 and "" or "s", config.at(doc.given_dir))
end

return M
