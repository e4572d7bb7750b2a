-- orket.project: where a project's files are (docs/store.md): the store lives at
-- DIR/.orket/orket.db. Shared by the commands that open a project's board.
local store = require "orket.store"
local pgurl = require "orket.store.pgurl"
local config = require "orket.config"
local uv = require "luv"
local lockfile = require "orket.c.lockfile"
local scriptfile = require "orket.scriptfile"
local inert = require "orket.inert"

local M = {}

-- In the current directory the path is written as the user would (.orket/orket.db): it
-- is what error messages show.
function M.db_path(dir)
  if dir == nil or dir == "." then return ".orket/orket.db" end
  return (dir:gsub("/+$", "")) .. "/.orket/orket.db" -- "/" gives "/.orket/orket.db", not "//..."
end

-- Whether orket.lua's text (read, not run) could set the store: the word `store` anywhere
-- in it, a comment's too, or a text that cannot be read. Without it the project's store is
-- its SQLite file whatever the rest of the file says.
local function may_name_store(dir)
  local src = scriptfile.read((dir or ".") .. "/orket.lua")
  return not src or src:find("%f[%w_]store%f[^%w_]") ~= nil
end

--- database_url(dir[, getenv[, broken_ok]]) -> the project's PostgreSQL URL | false (its
--- SQLite file) | nil, msg, CODE: ORKET_DATABASE_URL, else orket.lua's store.url
--- (orket.store.pgurl). Without an orket.lua, the SQLite file. An orket.lua that does not
--- load is its error: it may name a PostgreSQL database, and a command that took the SQLite
--- file instead would read, or import into, a board beside the project's. broken_ok (a
--- command that only reads or copies the store): such an orket.lua whose text names no
--- store at all is the SQLite file -> false, nil, nil, its error (to warn with).
function M.database_url(dir, getenv, broken_ok)
  getenv = getenv or os.getenv
  local env = getenv(pgurl.ENV)
  if env and env ~= "" then return pgurl.resolve(nil, getenv) end
  local data, err, code = config.read(dir)
  if not data and code ~= "ENOENT" then
    -- (a folder that cannot be one: no orket.lua to fix)
    if not broken_ok or code == "ENOTDIR" or code == "ENAMETOOLONG" then return nil, err, code or "EINVAL" end
    if not may_name_store(dir) then return false, nil, nil, err end
    return nil, string.format("%s; it may set the store (store.url), so which store to read cannot be told until it "
      .. "loads: fix it, or give the store as %s (nothing was read)", err, pgurl.ENV), code or "EINVAL"
  end
  return pgurl.resolve(data and data.store, getenv)
end

--- open_store(dir, create [, reading]) -> db | nil, msg, CODE. On PostgreSQL (database_url)
--- the server's database, migrated on open (create and reading change nothing there).
--- Without create, a missing
--- store is an error that says to import first (reading commands never create files).
--- reading: the command only reads, so a store it cannot open for writing (a read-only
--- file system, a file it may not write, a full disk) is opened read-only instead; "serving"
--- (a server, which keeps the store open): not for a full disk, which passes, and the server
--- would stay read-only after space is freed (the open fails, saying so). getenv: as
--- database_url's (orket serve opens its other projects without ORKET_DATABASE_URL).
--- broken_ok: as database_url's, for a command that only reads or copies the store; an
--- orket.lua that does not load, and names no store, leaves the SQLite file, opened if it
--- is there -> db, nil, nil, orket.lua's error (the caller warns with it).
-- .orket/ holds the store, the keys' pepper and the lock files (0600), whose shared locks
-- would let anyone who may open one hold off runs and workers: an older or hand-made one
-- that others may enter is made its owner's alone. Only its owner may change it; only
-- group and other bits are taken away (a .orket/ made read-only stays so).
local function private_home(home, st)
  if st and st.type == "directory" and st.mode & 0x3f ~= 0 and st.uid == uv.getuid() then
    uv.fs_chmod(home, st.mode & 0xfc0) -- (setuid, setgid and sticky bits kept)
  end
end

-- .orket/ holds the store, the secrets' key beside the secrets and the worktrees: machine
-- state, never a repository's. A project kept inside another repository (a monorepo, a
-- dotfiles folder) had it all committed by that repository's `git add -A`; an ignore file
-- of its own keeps it out wherever the project lies. Best effort: a read-only .orket/ is
-- read as it is.
local function ignored_home(home)
  local path = home .. "/.gitignore"
  if uv.fs_lstat(path) then return end
  local f = io.open(path, "wb")
  if not f then return end
  f:write("# machine state of an orket project (the store, secrets' key, worktrees): never committed\n*\n")
  f:close()
end

--- ensure_home(home, st) -> true | nil, message: a project's .orket/ (st: its fs_stat, nil
--- when there is none) made, private, when absent (another process making it meanwhile is
--- as good); one already there taken to its owner alone (private_home). Either way it
--- ignores itself for git (ignored_home).
function M.ensure_home(home, st)
  if st then
    private_home(home, st)
    if st.type == "directory" then ignored_home(home) end
    return true
  end
  local ok, err = uv.fs_mkdir(home, 448)
  if not ok and not uv.fs_lstat(home) then return nil, err end
  ignored_home(home)
  return true
end

--- not_entered(home, path, st) -> nil, message, "EACCES": the store inside home (its
--- fs_stat st), a folder this process may not enter, said with its owner and what to do
function M.not_entered(home, path, st)
  local me = uv.getuid()
  return nil, string.format("store: %s: permission denied: %s is uid %d's (mode %04o) and this process runs as uid %d, "
    .. "which may not enter it; run the command as the project's owner (docker or podman run --user %d:%d, a pod's "
    .. "securityContext runAsUser: %d); %s", path, home, st.uid, st.mode & 0xfff, me, st.uid, st.gid, st.uid,
    "only its owner's commands use .orket/, which they keep 0700 (docs/store.md)"), "EACCES"
end

function M.open_store(dir, create, reading, getenv, broken_ok)
  local url, uerr, ucode, broken = M.database_url(dir, getenv, broken_ok)
  if url == nil then return nil, uerr, ucode end
  if broken then
    -- the store it would read is there; else orket.lua's error is the one to fix first
    local path = M.db_path(dir)
    if not uv.fs_stat(path) then
      return nil, string.format("%s (and no store at %s to read meanwhile)", broken, path), "EINVAL"
    end
  end
  if url then
    -- the project's machine-local files (the run lock, worktrees, the keys' pepper) stay
    -- in its .orket/, which no SQLite file made here
    local home = (dir or ".") .. "/.orket"
    local hst = uv.fs_stat(home)
    if hst or uv.fs_stat(dir or ".") then M.ensure_home(home, hst) end
    local db, err, code = store.open_url(url)
    if db then return db end
    -- which setting named the database: the operator fixes that one
    local env = (getenv or os.getenv)(pgurl.ENV)
    local from = (env and env ~= "") and pgurl.ENV or ("store.url in " .. ((dir and dir ~= ".") and dir .. "/" or "") .. "orket.lua")
    return nil, string.format("%s (URL from %s)", tostring(err), from), code
  end
  local path = M.db_path(dir)
  local home = path:match("^(.*)/[^/]+$")
  local st = uv.fs_stat(home)
  if st and st.type ~= "directory" then
    -- SQLite would only say "unable to open database file", or we "not found"
    return nil, string.format("%s is not a directory (the board lives in %s); move the file away", home, path),
      "ENOTDIR"
  end
  -- the store holds the accounts' password hashes: a new .orket/ is private, and the
  -- store (SQLite gives its -wal/-shm the store's mode) is 0600, an older 0644 one too
  local dbst = uv.fs_stat(path)
  if dbst and dbst.type == "directory" then
    return nil, string.format("store: %s is a folder, not the store; move it away (or 'orket restore' a backup)",
      path), "EISDIR"
  end
  if st or create then M.ensure_home(home, st) end
  -- another uid's .orket/ (0700: a container run as another user than the project's
  -- owner) cannot be entered: its store looked missing, and the advice was to import
  if st and not uv.fs_access(home, "X") then return M.not_entered(home, path, st) end
  local function writable() return uv.fs_access(home, "W") and uv.fs_access(path, "W") end
  local function unwritable()
    return nil, string.format("store: %s cannot be written (a read-only file system, or no write permission "
      .. "on it or on %s); this command changes the board: run it where the project is writable "
      .. "(orket board, card, runs and log only read)", path, home), "EREADONLY"
  end
  local db, err, code = store.open(path, { create = create })
  -- SQLite opens a file it may not write read-only, without a word, and a writer met
  -- "attempt to write a readonly database" at its first write: said now, as a read-only
  -- file system is (below)
  if db and not reading and dbst and not writable() then
    db:close()
    return unwritable()
  end
  if db then
    for _, p in ipairs { path, path .. "-wal", path .. "-shm" } do
      local fst = uv.fs_stat(p)
      if fst and fst.mode & 0x3f ~= 0 then uv.fs_chmod(p, fst.mode & 0x1c0) end
    end
  end
  -- an upgrade is one-way: said once, by whichever command met it (a status, a backup),
  -- with the copy an older orket still opens (orket.store's keep_before_upgrade)
  local up = db and db.upgraded
  if up then
    io.stderr:write(string.format("orket: upgraded the store %s from schema version %d to %d: an older orket "
      .. "cannot open it now; %s\n", inert.line(path), up.from, up.to, up.kept
      and string.format("the file as it was is kept at %s (what an older orket opens, docs/guide/deploying.md, "
        .. "\"Upgrading\")", inert.line(up.kept))
      or ("no copy of it as it was could be kept (" .. inert.line(up.not_kept or "?") .. ")")))
  end
  -- a full disk (ENOSPC; a quota too, where the store says it so): the board is read, and
  -- backed up to another disk, as docs/store.md says reading commands do when the store
  -- cannot be written
  if not db and (code == "ECANTOPEN" or code == "EREADONLY" or (code == "ENOSPC" and reading ~= "serving")) then
    if reading then
      local rdb, rerr, rcode = store.open(path, { readonly = true })
      if rdb then return rdb end
      if rcode == "EVERSION" then err, code = rerr, rcode end
    elseif st then
      -- SQLite only says "unable to open database file": say that it is about writing
      if not writable() then return unwritable() end
    end
  end
  if not db and code == "ENOENT" then
    -- no orket.lua either: not a project at all, and importing would not help
    -- (looked at, not opened: opening an orket.lua that is a FIFO would block)
    local f = uv.fs_stat((dir or ".") .. "/orket.lua")
    -- inside a project's workspace/ (main's working tree), init would make a project in it
    local advice = f and ("run " .. config.command("import", dir) .. " first")
      or ("no orket.lua " .. ((dir or ".") == "." and "here" or "there") .. " either: "
        .. config.no_project(dir, "a project"))
    return nil, string.format("no board in %s (%s not found); %s", dir or ".", path, advice), code
  end
  if db and broken then return db, nil, nil, broken end
  return db, err, code
end

--- run_state(dir, status, run_id) -> the status to show for run run_id, stored as status:
--- a run stored as "running" whose process is gone (killed, the machine restarted) shows
--- "killed". The project's run lock tells (orket.c.lockfile probe, which does not take
--- it): nobody holds it, or its holder works another run (the run id it tagged the lock
--- with). A lock held without a tag (taken by an older orket, or not yet tagged) or that
--- cannot be read leaves "running". A run orket serve executes shows "running" (its own lock),
--- as does a run an `orket worker` works (ID.PID.lock); a run left to workers (workers: its
--- data says so) that no worker works now shows "queued".
function M.run_state(dir, status, run_id, workers)
  local home = M.db_path(dir):match("^(.*)/[^/]+$")
  -- orket serve holds a lock per run it executes (orket.engine.claims), resumed ones too
  if lockfile.probe(string.format("%s/runs/%d.lock", home, run_id)) then return "running" end
  if status ~= "running" then return status end
  if workers then
    -- read to the end: luv frees a listing's entries only as they are read
    local d, state = uv.fs_scandir(home .. "/runs"), "queued"
    while d do
      local name = uv.fs_scandir_next(d)
      if not name then break end
      if state == "queued" and name:match("^" .. run_id .. "%.%d+%.lock$") and lockfile.probe(home .. "/runs/" .. name) then
        state = "running"
      end
    end
    return state
  end
  local held, _, tag = lockfile.probe(home .. "/run.lock")
  if held == false or (held and tag and tag ~= run_id) then return "killed" end
  return status
end

return M
