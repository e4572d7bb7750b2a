-- orket.sandboxes.database: a sandbox's databases (docs/sandbox.md, *A database per
-- sandbox*). PostgreSQL is Debian's server, run by the sandbox's script as one of its
-- services (a process, never an image): its cluster made by initdb in the sandbox's temp
-- folder, listening on its port on the sandbox's loopback only, then seeded from the
-- repository (a SQL file through psql, or a command). SQLite is a file in the same folder,
-- made here before the sandbox starts (the seed's SQL run by Orket's own SQLite in a child
-- process, confined to that file, a size, a time and the kernel's limits: seed_child.lua)
-- or by a seed command in the sandbox. Each is made fresh for a deploy and, unless orket.lua's
-- sandbox.database says "fresh", kept for the redeploys of an open bug-fix phase: the
-- folder moves out of an ending sandbox and into the next. The folder was the app's (its
-- $TMPDIR): a link there is never followed, only removed.
local uv = require "luv"
local rt = require "orket.c.runtime"
local sqlseed = require "orket.c.sqlseed"
local tree = require "orket.tree"
local fieldline = require "orket.fieldline"
local pidstart = require "orket.sandboxes.pidstart"
local workspace = require "orket.workspace"

local M = {}

M.USER = "app"   -- PostgreSQL's user and database in a sandbox (trust on its own loopback)
M.SEED_MAX = 16 * 1024 * 1024 -- bytes of a SQLite seed file
M.SEED_TIMEOUT_MS = 60000 -- a SQLite seed's time, then it is stopped and the start fails
M.SEED_GRACE_MS = 1000 -- past its time, a seed's process is killed (it did not end itself)
M.SEED_MEMORY_MAX = 1024 * 1024 * 1024 -- bytes of address space a SQLite seed's process may map
M.SEED_DB_MAX = 1024 * 1024 * 1024 -- bytes a SQLite seed's database (and its temp one) may reach
M.MARK = ".orket-seed" -- in a database's folder while its seed has not run
M.SCRATCH = ".orket-seed" -- in the sandbox's temp folder while a SQLite seed runs: its SQL, SQLite's temp files

--- pg_bin() -> the folder of the newest installed PostgreSQL's programs | nil
function M.pg_bin()
  local best, best_v
  local it = uv.fs_scandir("/usr/lib/postgresql")
  while it do
    local name = uv.fs_scandir_next(it)
    if not name then break end
    local v = tonumber(name)
    if v and uv.fs_access("/usr/lib/postgresql/" .. name .. "/bin/postgres", "X") and (not best_v or v > best_v) then
      best, best_v = "/usr/lib/postgresql/" .. name .. "/bin", v
    end
  end
  return best
end

--- folder(home) -> where a sandbox's databases live (its temp folder's db/)
function M.folder(home) return home .. "/tmp/db" end

--- sqlite_path(home, sv) -> the SQLite file of service sv
function M.sqlite_path(home, sv) return M.folder(home) .. "/" .. sv.name .. ".sqlite" end

--- url(home, sv, port) -> how the others reach database sv: postgresql://app@127.0.0.1:PORT/app,
--- or sqlite:////path/NAME.sqlite
function M.url(home, sv, port)
  if sv.database == "postgresql" then return string.format("postgresql://%s@127.0.0.1:%d/%s", M.USER, port, M.USER) end
  return "sqlite:///" .. M.sqlite_path(home, sv)
end

--- kept_path(dir, target) -> where the databases wait between two sandboxes of target
function M.kept_path(dir, target)
  return dir .. "/.orket/sandboxes/db." .. target:gsub("[^%w_-]", "_")
end

-- whether path is a real folder (lstat: a link to one is not); anything else there is
-- removed as itself, never through it
local function real_dir(path)
  local st = uv.fs_lstat(path)
  if not st then return false end
  if st.type == "directory" then return true end
  uv.fs_unlink(path)
  return false
end

-- A claim on kept databases: KEPT.in.PID.START.AT, the folder an ending sandbox's owner
-- renamed its databases to (put_kept), or a start re-claimed a dead one to (reclaim). PID and
-- START (/proc's start time, "0" where unknown) name its process, so a pid reused by a later
-- process does not keep a dead claim alive; AT (microseconds of the wall clock when claimed)
-- says which of several dead claims holds the newest data. A folder being removed is first
-- renamed to KEPT.gone.PID.START.AT, so no other process takes or claims it half removed.
local me_pid = math.tointeger(uv.os_getpid())
local me_start = pidstart.start_time(me_pid) or "0"

local function own_name(kept, what)
  local s, us = uv.gettimeofday()
  return string.format("%s.%s.%d.%s.%d", kept, what, me_pid, me_start, s * 1000000 + us)
end

-- the process a claim's (or a removal's) name gives: pid, start ("" or "0": unknown), at
local function named_by(rest)
  local pid, start, at = rest:match("^(%d+)%.?(%d*)%.?(%d*)$")
  return math.tointeger(tonumber(pid)), start, tonumber(at) or 0
end

-- whether the process pid (started at start, when known) still lives; this process's own
-- claims count as ended: its moves never yield midway, so one of them left is a leftover
local function alive(pid, start)
  if pid == me_pid and (start == "" or start == "0" or start == me_start) then return false end
  local ok, err = uv.kill(pid, 0)
  if ok == nil and not tostring(err):find("EPERM", 1, true) then return false end
  -- the pid lives: the same process only if its start time matches (EPERM: another user's)
  if start == "" or start == "0" then return true end
  -- (an entry there but unreadable: taken as alive, its claim left, a leak and not a loss)
  return pidstart.same(pid, start)
end

-- path removed, first renamed to a name of this process's own: another process never takes
-- or re-claims a folder half removed
local function discard(path, kept)
  local gone = own_name(kept or path, "gone")
  if os.rename(path, gone) then tree.remove(gone) end
end

-- A kept folder's claim time is kept beside it, in KEPT.kept-at (Orket's own folder, out of
-- the app's reach: inside the databases' folder the app could plant a link or a FIFO), so a
-- dead claim is compared with it: one claimed earlier never displaces it. No time (kept by
-- an older Orket), or anything there but a small file, counts as 0, as does a claim named
-- by its pid alone. The times are the wall clock's: a step backwards can misorder two, so
-- the loser of a reclaim is set aside (KEPT.prev...) until the phase ends, never removed.
local function at_path(kept) return kept .. ".kept-at" end
M.at_path = at_path

local function kept_at(kept)
  local path = at_path(kept)
  local st = uv.fs_lstat(path)
  if not st or st.type ~= "file" or st.size > 32 then return 0 end
  local f = io.open(path)
  if not f then return 0 end
  local at = tonumber(f:read(32) or "")
  f:close()
  return at or 0
end

-- written whole (a part file renamed over it): never seen half written; a failure leaves
-- the old time, or none (0), as before. Mode 438 (0666, less the umask): io.open's.
local function write_at(kept, at)
  fieldline.write_whole(at_path(kept), string.format("%d\n", at), 438)
end

-- the claim time in a name of own_name's
local function at_of(name) return tonumber(name:match("%.(%d+)$")) or 0 end

-- path renamed aside to a name of this process's own (KEPT.prev...), removed when the last
-- phase ends (drop_kept): true when it moved
local asides = 0
local function set_aside(path, kept)
  -- numbered: two set aside in one microsecond do not meet
  asides = asides + 1
  return os.rename(path, own_name(kept, "prev") .. "." .. asides) and true or false
end

--- reclaim(dir, target, keep): a folder an ending sandbox claimed for the kept databases
--- (put_kept) whose process was killed before its last rename. Several: the one claimed last
--- (by the time in its name) is the candidate. It takes the kept folder's place (keep) when
--- there is none or it was claimed no earlier than the kept folder was (its AT_FILE); the
--- loser, and the other dead claims, are set aside until the phase ends. keep false: they
--- are removed. One whose process still lives is left to it. A start first renames a claim
--- to one of its own: of two starts finding it, one wins.
function M.reclaim(dir, target, keep)
  local kept = M.kept_path(dir, target)
  local parent, base = kept:match("^(.*)/([^/]+)$")
  local claims = {}
  local it = uv.fs_scandir(parent)
  while it do
    local name = uv.fs_scandir_next(it)
    if not name then break end
    if name:sub(1, #base + 4) == base .. ".in." then
      local pid, start, at = named_by(name:sub(#base + 5))
      if pid and not alive(pid, start) then claims[#claims + 1] = { path = parent .. "/" .. name, at = at, name = name } end
    end
  end
  table.sort(claims, function(a, b) if a.at ~= b.at then return a.at < b.at end return a.name < b.name end)
  for i, c in ipairs(claims) do
    if keep and i == #claims then
      local mine = own_name(kept, "in")
      -- ours now, or another start took it first (then nothing here is touched)
      if os.rename(c.path, mine) then
        if real_dir(mine) then
          -- what the killed end already dropped (half made) is gone; what it had not checked
          -- yet, the start checks again (prepare, PG_INIT)
          local have = real_dir(kept)
          if not have or c.at >= kept_at(kept) then
            -- the kept folder it displaces is older by its time: set aside, not removed
            if have then set_aside(kept, kept) end
            write_at(kept, c.at)
            if not os.rename(mine, kept) then set_aside(mine, kept) end
          else
            -- claimed before the kept folder was: older, set aside
            set_aside(mine, kept)
          end
        end
      end
    elseif keep then
      set_aside(c.path, kept)
    else
      discard(c.path, kept)
    end
  end
end

--- drop_kept(dir): every target's kept databases removed, and every claim (or removal) of
--- a process that ended (the last bug-fix phase ended: nothing will take them again)
function M.drop_kept(dir)
  local parent = dir .. "/.orket/sandboxes"
  local it = uv.fs_scandir(parent)
  while it do
    local name = uv.fs_scandir_next(it)
    if not name then break end
    local rest = name:match("^db%.[%w_-]+%.in%.(.+)$") or name:match("^db%.[%w_-]+%.gone%.(.+)$")
    local pid, start = named_by(rest or "")
    if name:match("^db%.") and (not pid or not alive(pid, start)) then
      discard(parent .. "/" .. name, parent .. "/" .. (name:match("^(db%.[%w_-]+)") or name))
    end
  end
end

--- take_kept(dir, target, home, keep) -> whether the kept databases moved into home (keep
--- false: any kept ones are dropped, and every database is made fresh)
function M.take_kept(dir, target, home, keep)
  M.reclaim(dir, target, keep)
  local kept = M.kept_path(dir, target)
  if not real_dir(kept) then return false end
  if not keep then
    discard(kept)
    return false
  end
  return os.rename(kept, M.folder(home)) and true or false
end

-- removes a SQLite database's file and journals as themselves (never through a link)
local function remove_sqlite(path)
  for _, f in ipairs { path, path .. "-journal", path .. "-wal", path .. "-shm" } do
    local st = uv.fs_lstat(f)
    if st and st.type == "directory" then tree.remove(f) elseif st then uv.fs_unlink(f) end
  end
end

-- in folder, the databases of list ({name=, database=}) whose making did not end (a SQLite
-- file still marked, a cluster still marked or with no pg_control, a cluster's initdb under
-- way in NAME.new) removed: what a killed owner left half made is never kept
local function drop_unfinished(folder, list)
  for _, sv in ipairs(list) do
    local base = folder .. "/" .. sv.name
    if sv.database == "sqlite" then
      if uv.fs_lstat(base .. M.MARK) then
        remove_sqlite(base .. ".sqlite")
        tree.remove(base .. M.MARK)
      end
    elseif sv.database == "postgresql" then
      tree.remove(base .. ".new")
      local st = uv.fs_lstat(base)
      if st and (st.type ~= "directory" or uv.fs_lstat(base .. "/" .. M.MARK)
          or not uv.fs_lstat(base .. "/global/pg_control")) then
        tree.remove(base)
      end
    end
  end
end

--- put_kept(dir, target, home, list [, keep]): an ending sandbox's databases (list: its database
--- services, {name=, database=}) moved aside for the next one, but for those whose making
--- did not end (a link the app left in their place is not moved: it goes with the temp
--- folder). The folder is first claimed by a rename of its own, so of two processes ending
--- the same sandbox (two reconciles) only one moves it, and neither removes what the other moved.
--- keep false: nothing is moved, and they go with the temp folder (no one takes them again).
function M.put_kept(dir, target, home, list, keep)
  if keep == false then return end
  local from = M.folder(home)
  local st = uv.fs_lstat(from)
  if not st or st.type ~= "directory" then return end
  local kept = M.kept_path(dir, target)
  local claim = own_name(kept, "in")
  if not os.rename(from, claim) then return end
  drop_unfinished(claim, list or {})
  discard(kept)
  -- its time, beside it: a dead claim made before it never displaces it (reclaim)
  write_at(kept, at_of(claim))
  if not os.rename(claim, kept) then discard(claim, kept) end
end

-- the seed's SQL file, read from the tree through the confined workspace (the tree is the
-- agents' work: no symbolic link leads out of it): text | nil, message
local function seed_text(tree_dir, sv)
  local ws, werr = workspace.open(tree_dir)
  if not ws then return nil, sv.name .. ": " .. tostring(werr) end
  local st = ws:stat(sv.seed)
  local text, info
  if st and st.type == "file" and st.size <= M.SEED_MAX then text, info = ws:read(sv.seed, { limit = M.SEED_MAX }) end
  ws:close()
  if not st or st.type ~= "file" then return nil, string.format("%s: the seed %s is not a file of the repository", sv.name, sv.seed) end
  if st.size > M.SEED_MAX or (info and info.truncated) then
    return nil, string.format("%s: the seed %s is larger than %d bytes", sv.name, sv.seed, M.SEED_MAX)
  end
  if not text then return nil, string.format("%s: the seed %s cannot be read: %s", sv.name, sv.seed, tostring(info)) end
  -- SQLite would read a NUL as the text's end, and run the seed silently cut short
  if text:find("\0", 1, true) then return nil, "it holds a NUL byte, where SQLite would end it" end
  return text
end

-- the child's limits, set by the shell it starts in ($1 KiB of address space, $2 s of CPU:
-- SIGXCPU, then SIGKILL a second later; $3 blocks of 512 bytes a file); core files off: a
-- killed seed leaves nothing behind. A parent-death signal (util-linux's setpriv, where
-- there is one) kills it with its owner: a seed does not run on after a kill -9 of Orket.
local SEED_SH = 'ulimit -c 0; ulimit -v "$1" && ulimit -S -t "$2" && ulimit -H -t $(($2 + 1)) && ulimit -f "$3" '
  .. '|| exit 111; shift 3; [ -x /usr/bin/setpriv ] && exec /usr/bin/setpriv --pdeathsig KILL "$@"; exec "$@"'
local SEED_CHUNK = 'return require("orket.sandboxes.seed_child").main(...)'
local SIG = { [9] = "SIGKILL", [24] = "SIGXCPU", [25] = "SIGXFSZ" }

-- the child's answer when it wrote none: what ended it
local function seed_death(code, signal, err)
  if signal == 24 then return string.format("it ran longer than %d ms (a seed's time limit)", M.SEED_TIMEOUT_MS), "ETIMEDOUT" end
  if signal == 25 then
    return string.format("its files would grow past %d bytes (a seed's size limit)", M.SEED_DB_MAX), "EFBIG"
  end
  if err:find("not enough memory", 1, true) or err:find("out of memory", 1, true) or signal == 6 or signal == 11 then
    return string.format("it needed more than %d MiB of memory (a seed's memory limit)", M.SEED_MEMORY_MAX // 1048576),
      "ENOMEM"
  end
  local tail = err:gsub("%s+$", ""):sub(-300)
  return string.format("its process ended (%s)%s", signal ~= 0 and (SIG[signal] or ("signal " .. signal))
    or ("status " .. code), tail ~= "" and (": " .. tail) or ""), "EIO"
end

-- the seed run in the fresh file path by a child process of Orket's own binary (the
-- kernel bounds its memory, CPU time and files; it is SIGKILLed at the deadline or when
-- stopping() gives a reason, never waited for): true | nil, message, CODE. Its SQL and
-- SQLite's temp files are in scratch, a folder of the sandbox's temp folder.
local function run_seed(path, text, scratch, stopping)
  tree.remove(scratch)
  uv.fs_mkdir(scratch, 448)
  if not real_dir(scratch) then return nil, "cannot make its folder " .. scratch, "EIO" end
  local sqlfile = scratch .. "/seed.sql"
  local fd, oerr = uv.fs_open(sqlfile, "wx", 384)
  if not fd then return nil, "cannot write " .. sqlfile .. ": " .. tostring(oerr), "EIO" end
  local wrote = uv.fs_write(fd, text)
  uv.fs_close(fd)
  if wrote ~= #text then return nil, "cannot write " .. sqlfile, "EIO" end
  local out, err = uv.new_pipe(false), uv.new_pipe(false)
  local got = { out = {}, err = {}, open = 2 }
  local function reader(which, pipe)
    local n = 0
    return function(rerr, data)
      if data and n < 4096 then
        got[which][#got[which] + 1] = data:sub(1, 4096 - n)
        n = n + #data
      elseif not data or rerr then
        got.open = got.open - 1
        if not pipe:is_closing() then pipe:close() end
      end
    end
  end
  local env = { "SQLITE_TMPDIR=" .. scratch, "TMPDIR=" .. scratch, "LC_ALL=C" }
  if os.getenv("ORKET_NO_BYTECODE") then env[#env + 1] = "ORKET_NO_BYTECODE=" .. os.getenv("ORKET_NO_BYTECODE") end
  local exited, ecode, esig
  local handle, serr
  handle, serr = uv.spawn("/bin/sh", {
    args = { "-c", SEED_SH, "seed", sqlseed.SANITIZED and "unlimited" or tostring(M.SEED_MEMORY_MAX // 1024), tostring(M.SEED_TIMEOUT_MS // 1000 + 2),
      tostring((M.SEED_DB_MAX + 16 * 1048576) // 512), uv.exepath(), "lua", "-e", SEED_CHUNK, path, sqlfile,
      tostring(M.SEED_TIMEOUT_MS), tostring(M.SEED_DB_MAX) },
    env = env, cwd = scratch, stdio = { nil, out, err },
  }, function(code, signal)
    exited, ecode, esig = true, code, signal
    if not handle:is_closing() then handle:close() end
  end)
  if not handle then
    out:close()
    err:close()
    return nil, "the seed cannot start: " .. tostring(serr), "EIO"
  end
  out:read_start(reader("out", out))
  err:read_start(reader("err", err))
  local function drop()
    -- killed and let go: its exit callback closes it; nothing waits for it
    if not exited then pcall(uv.process_kill, handle, "sigkill") end
    if not handle:is_closing() then handle:unref() end
    for _, p in ipairs { out, err } do if not p:is_closing() then p:close() end end
  end
  -- its own deadline answers first; this one covers a single step that never looks at it
  local deadline = uv.now() + M.SEED_TIMEOUT_MS + M.SEED_GRACE_MS
  while not exited do
    local why = stopping and stopping()
    if why then
      drop()
      return nil, why, "ECANCELED"
    end
    if uv.now() >= deadline then
      drop()
      return nil, string.format("it ran longer than %d ms (a seed's time limit)", M.SEED_TIMEOUT_MS), "ETIMEDOUT"
    end
    rt.sleep(20)
  end
  local until_ms = uv.now() + 1000
  while got.open > 0 and uv.now() < until_ms do rt.sleep(5) end
  drop()
  local line = table.concat(got.out):match("^([^\n]*)")
  if line == "OK" and ecode == 0 and esig == 0 then return true end
  local code, msg = line:match("^(%u+)\t(.*)$")
  if code == "ENOMEM" then
    return nil, string.format("it needed more than %d MiB of memory (a seed's memory limit)", M.SEED_MEMORY_MAX // 1048576),
      "ENOMEM"
  end
  if code and esig == 0 then return nil, msg, code end
  if ecode == 111 and esig == 0 then return nil, "its limits cannot be set", "EIO" end
  local m, c = seed_death(ecode, esig, table.concat(got.err))
  return nil, m, c
end

-- the file of a database that is not made yet, and what a sandbox may have left where it
-- goes: a link (or folder) removed as itself. Whether it is made (a real file is there).
local function made(path)
  local st = uv.fs_lstat(path)
  if st and st.type == "file" then return true end
  if st and st.type == "directory" then tree.remove(path) elseif st then uv.fs_unlink(path) end
  return false
end

--- prepare(home, tree_dir, services [, stopping]) -> true | nil, message [, CODE]: the
--- SQLite files made that are not there yet (fresh), their seed SQL run; one with a seed
--- command gets the mark its first start runs it by. stopping() -> a reason once the start
--- is asked to stop (then nil, reason, "ECANCELED").
function M.prepare(home, tree_dir, services, stopping)
  uv.fs_mkdir(home .. "/tmp", 448)
  if not real_dir(M.folder(home)) then uv.fs_mkdir(M.folder(home), 448) end
  if not real_dir(M.folder(home)) then return nil, "cannot make the databases' folder " .. M.folder(home) end
  for _, sv in ipairs(services) do
    local path = M.sqlite_path(home, sv)
    local mark = M.folder(home) .. "/" .. sv.name .. M.MARK
    -- a kept file still marked is one whose making did not end (its seed command failed,
    -- or its owner was killed during its seed): it goes, with its journals, so the seed
    -- runs on a fresh file and not on top of its own half
    if sv.database == "sqlite" and uv.fs_lstat(mark) then remove_sqlite(path) end
    if sv.database == "sqlite" and not made(path) then
      -- marked before anything is written: unmarked only once made (and, for a seed
      -- command, once the command ran: SQLITE_SEED). Made anew (O_EXCL: never through a
      -- link left in its place); whatever is there goes as itself.
      local mst = uv.fs_lstat(mark)
      if mst and mst.type == "directory" then tree.remove(mark) elseif mst then uv.fs_unlink(mark) end
      local fd, ferr = uv.fs_open(mark, "wx", 384)
      if not fd then return nil, string.format("%s: cannot mark it as not made yet: %s", sv.name, tostring(ferr)) end
      uv.fs_close(fd)
      local text, terr = "", nil
      if sv.seed then text, terr = seed_text(tree_dir, sv) end
      local ok, eerr, ecode = false, terr, "EINVAL"
      if text then
        local scratch = home .. "/tmp/" .. M.SCRATCH
        ok, eerr, ecode = run_seed(path, text, scratch, stopping)
        tree.remove(scratch)
      end
      if not ok then
        os.remove(path)
        if ecode == "ECANCELED" then return nil, eerr, ecode end
        if sv.seed then return nil, string.format("%s: its seed %s failed: %s", sv.name, sv.seed, tostring(eerr)), ecode end
        return nil, sv.name .. ": " .. tostring(eerr), ecode
      end
      if not sv.seed_command then uv.fs_unlink(mark) end
    end
  end
  return true
end

-- bash, given the database's folder, PostgreSQL's programs' folder and its port as $1 $2
-- $3: a cluster made where none is. A cluster still marked to be seeded is one whose seed
-- failed or whose owner was killed: it goes whole (the roles and databases its half seed
-- made with it), as does one that never got its pg_control. initdb runs under NAME.new and
-- the cluster takes its name, marked, only once made: a killed initdb leaves no cluster.
-- A kept cluster's postmaster.pid is its last server's, in a namespace now gone: removed,
-- lest its pid be taken for a live process's in this one.
local PG_INIT = [[
d=$1; bin=$2
[ -L "$d" ] && rm -f -- "$d"
[ -f "$d/.orket-seed" ] && rm -rf -- "$d"
rm -rf -- "$d.new"
if [ -f "$d/global/pg_control" ]; then rm -f -- "$d/postmaster.pid"; exit 0; fi
rm -rf -- "$d"
"$bin/initdb" -D "$d.new" -U app --auth=trust -E UTF8 --no-sync >/dev/null && touch "$d.new/.orket-seed" && mv -- "$d.new" "$d"
]]

-- the same arguments, then the seed's command: once the server answers, a cluster still
-- marked (always a fresh one: PG_INIT) gets its database and its seed
local PG_SEED = [[
d=$1; bin=$2; port=$3; shift 3
[ -f "$d/.orket-seed" ] || exit 0
"$bin/createdb" -h 127.0.0.1 -p "$port" -U app app || exit 1
if [ "$#" -gt 0 ]; then "$@" || exit 1; fi
rm -f "$d/.orket-seed"
]]

-- a SQLite database's seed command, once
local SQLITE_SEED = [[
mark=$1; shift
[ -f "$mark" ] || exit 0
"$@" && rm -f "$mark"
]]

--- runs(home, tree_dir, sv, port) -> what the sandbox's script runs for database sv:
--- {before={{what=, argv=}...}, argv= (the server; nil for SQLite), health=argv,
--- after={{what=, argv=}...}} | nil, message
function M.runs(home, tree_dir, sv, port)
  if sv.database == "sqlite" then
    local out = { before = {} }
    if sv.seed_command then
      local argv = { "bash", "-c", SQLITE_SEED, "seed", M.folder(home) .. "/" .. sv.name .. M.MARK }
      for _, a in ipairs(sv.seed_command) do argv[#argv + 1] = a end
      out.before[1] = { what = "its seed command", argv = argv }
    end
    return out
  end
  local bin = M.pg_bin()
  if not bin then
    return nil, sv.name .. ": PostgreSQL is not installed (Debian: apt-get install postgresql)"
  end
  local d = M.folder(home) .. "/" .. sv.name
  local seed = {}
  if sv.seed then
    seed = { bin .. "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", tostring(port), "-U", M.USER,
      "-d", M.USER, "-f", tree_dir .. "/" .. sv.seed }
  elseif sv.seed_command then
    seed = sv.seed_command
  end
  local after = { "bash", "-c", PG_SEED, "seed", d, bin, tostring(port) }
  for _, a in ipairs(seed) do after[#after + 1] = a end
  return {
    before = { { what = "initdb", argv = { "bash", "-c", PG_INIT, "init", d, bin } } },
    -- no unix socket (the sandbox may not make one there); fsync off: a sandbox's data
    -- outlives a crash only as far as the server's recovery takes it
    argv = { bin .. "/postgres", "-D", d, "-h", "127.0.0.1", "-p", tostring(port), "-k", "", "-c", "fsync=off" },
    -- asking for the database postgres, which initdb makes: the default, the user's name,
    -- is made only after this check, and each probe's FATAL "database app does not exist"
    -- in the log read as the app's database missing
    health = { bin .. "/pg_isready", "-q", "-h", "127.0.0.1", "-p", tostring(port), "-U", M.USER, "-d", "postgres" },
    after = { { what = "its seed", argv = after } },
  }
end

return M
