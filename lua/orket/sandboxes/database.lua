-- orket.sandboxes.database: a sandbox's databases (docs/sandbox.md, *A database per
-- sandbox*). PostgreSQL is Debian's server, run by the sandbox's script as one of its
-- services (a process, never an image): its cluster made by initdb in the sandbox's temp
-- folder, listening on its port on the sandbox's loopback only, then seeded from the
-- repository (a SQL file through psql, or a command). SQLite is a file in the same folder,
-- made here before the sandbox starts (the seed's SQL run by Orket's own SQLite, confined to
-- that file, a size and a time: orket.c.sqlseed) or by a seed command in the sandbox. Each is made fresh for a deploy and, unless orket.lua's
-- sandbox.database says "fresh", kept for the redeploys of an open bug-fix phase: the
-- folder moves out of an ending sandbox and into the next. The folder was the app's (its
-- $TMPDIR): a link there is never followed, only removed.
local uv = require "luv"
local rt = require "orket.c.runtime"
local sqlseed = require "orket.c.sqlseed"
local task = require "orket.task"
local tree = require "orket.tree"
local workspace = require "orket.workspace"

local M = {}

M.USER = "app"   -- PostgreSQL's user and database in a sandbox (trust on its own loopback)
M.SEED_MAX = 16 * 1024 * 1024 -- bytes of a SQLite seed file
M.SEED_TIMEOUT_MS = 60000 -- a SQLite seed's time, then it is stopped and the start fails
M.SEED_DB_MAX = 1024 * 1024 * 1024 -- bytes a SQLite seed's database (and its temp one) may reach
M.MARK = ".orket-seed" -- in a database's folder while its seed has not run

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

--- take_kept(dir, target, home, keep) -> whether the kept databases moved into home (keep
--- false: any kept ones are dropped, and every database is made fresh)
function M.take_kept(dir, target, home, keep)
  local kept = M.kept_path(dir, target)
  if not real_dir(kept) then return false end
  if not keep then
    tree.remove(kept)
    return false
  end
  return os.rename(kept, M.folder(home)) and true or false
end

--- put_kept(dir, target, home): an ending sandbox's databases moved aside for the next one
--- (a link the app left in their place is not: it goes with the temp folder)
function M.put_kept(dir, target, home)
  local from = M.folder(home)
  local st = uv.fs_lstat(from)
  if not st or st.type ~= "directory" then return end
  local kept = M.kept_path(dir, target)
  tree.remove(kept)
  os.rename(from, kept)
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
  return text
end

-- the seed run in the fresh file path on the pool; stopping() is asked meanwhile (a stop
-- ends the seed): true | nil, message, CODE
local function run_seed(path, text, stopping)
  local limits = { timeout_ms = M.SEED_TIMEOUT_MS, max_bytes = M.SEED_DB_MAX }
  if not stopping then return sqlseed.run(path, text, limits) end
  local t = task.spawn(sqlseed.run, path, text, limits)
  while t.state == "running" do
    local why = stopping()
    if why then
      t:cancel() -- the seed stops at its next look at the clock
      return nil, why, "ECANCELED"
    end
    rt.sleep(20)
  end
  local ok, a, b, c = t:join()
  if not ok then return nil, tostring(a), "EIO" end
  return a, b, c
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
    if sv.database == "sqlite" and not made(path) then
      local text, terr = "", nil
      if sv.seed then text, terr = seed_text(tree_dir, sv) end
      local ok, eerr, ecode = false, terr, "EINVAL"
      if text then ok, eerr, ecode = run_seed(path, text, stopping) end
      if not ok then
        os.remove(path)
        if ecode == "ECANCELED" then return nil, eerr, ecode end
        if sv.seed then return nil, string.format("%s: its seed %s failed: %s", sv.name, sv.seed, tostring(eerr)), ecode end
        return nil, sv.name .. ": " .. tostring(eerr), ecode
      end
      if sv.seed_command then
        -- made anew (O_EXCL: never through a link left in its place)
        local mark = M.folder(home) .. "/" .. sv.name .. M.MARK
        uv.fs_unlink(mark)
        local fd, ferr = uv.fs_open(mark, "wx", 384)
        if not fd then return nil, string.format("%s: cannot mark its seed command: %s", sv.name, tostring(ferr)) end
        uv.fs_close(fd)
      end
    end
  end
  return true
end

-- bash, given the database's folder, PostgreSQL's programs' folder and its port as $1 $2
-- $3: a cluster made where none is (then marked to be seeded)
local PG_INIT = [[
d=$1; bin=$2
[ -f "$d/PG_VERSION" ] && exit 0
mkdir -p "$d" && "$bin/initdb" -D "$d" -U app --auth=trust -E UTF8 --no-sync >/dev/null && touch "$d/.orket-seed"
]]

-- the same arguments, then the seed's command: once the server answers, a cluster still
-- marked gets its database and its seed
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
    health = { bin .. "/pg_isready", "-q", "-h", "127.0.0.1", "-p", tostring(port), "-U", M.USER },
    after = { { what = "its seed", argv = after } },
  }
end

return M
