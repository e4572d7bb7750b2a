-- orket.sandboxes.service: a sandbox's life (docs/sandbox.md). main's tree at a recorded
-- commit, written out of the repository's objects (orket.sandboxes.source), runs as a service under the confinement runner (orket.c.proc's helper, every layer agent code
-- gets) in a network namespace of its own with its loopback up; the helper relays a unix
-- socket (.orket/sandboxes/ID/app.sock) to the app's port inside, so nothing listens on the
-- host. The process that starts a sandbox owns it: it writes the log, probes health and
-- records each change (the sandboxes table, journal events sandbox_*); the sandbox ends
-- with it (the helper dies with its parent, the PID namespace with the helper). Uses luv,
-- orket.c.proc, orket.c.http, orket.store.sandboxes.
local uv = require "luv"
local rt = require "orket.c.runtime"
local cjson = require "cjson.safe"
local proc = require "orket.c.proc"
local http = require "orket.c.http"
local errors = require "orket.errors"
local task = require "orket.task"
local plan_mod = require "orket.sandboxes.plan"
local source = require "orket.sandboxes.source"
local ops = require "orket.store.sandboxes"
local supervise = require "orket.sandboxes.supervise"
local database = require "orket.sandboxes.database"
local pidstart = require "orket.sandboxes.pidstart"
local bugfix_rows = require "orket.store.bugfix"
local tree = require "orket.tree"
local inert = require "orket.inert"
local lockfile = require "orket.c.lockfile"
local fieldline = require "orket.fieldline"

local M = {}

-- the app's limits: a day of CPU time (a service mostly waits), the memory agent code gets
M.LIMITS = { cpu_seconds = 86400, memory = 2 * 1024 * 1024 * 1024, open_files = 1024, processes = 256 }
-- the first port told to an app; each sandbox has its own loopback, so the number only has
-- to differ between live sandboxes for the journal and the logs to tell them apart
M.PORT_BASE = 8080
-- a unix socket path is at most 107 bytes, and the probe socket adds ".probe"
local SUN_MAX = 107 - #".probe"
M.SUN_MAX = SUN_MAX
-- How a start failure that is this host's limit, not the app's, begins: a deploy's
-- acceptance checks are then skipped, not failed (orket.sandboxes.deploy.start_failed).
M.HOST_LIMIT = "sandbox: a limit of this host, not a fault of the app: "

--- socket_path_problem(dir, id) -> message | nil: why sandbox id of the project at dir
--- (its real path) cannot have its socket, DIR/.orket/sandboxes/ID/app.sock, where a
--- unix socket's path must fit (with ".probe"): a long checkout path on a CI runner.
--- Said by the start, and ahead of it by orket validate and orket sandbox plan.
function M.socket_path_problem(dir, id)
  local sock = dir .. "/.orket/sandboxes/" .. tostring(id) .. "/app.sock"
  if #sock <= SUN_MAX then return nil end
  return string.format("the sandbox's socket path %s is %d bytes, longer than a unix socket allows (%d, with "
    .. "its \".probe\"); move the project to a path of at most %d bytes (it is %d), e.g. a shorter checkout "
    .. "directory", sock, #sock, SUN_MAX, SUN_MAX - (#sock - #dir), #dir)
end

--- path_warning(dir) -> message | nil: socket_path_problem for the project at dir's next
--- sandbox (the id after the highest it has used), before any is started
function M.path_warning(dir)
  local real = uv.fs_realpath(dir) or dir
  return M.socket_path_problem(real, M.highest_dir(real) + 1)
end

-- ---- processes named by pid and start time ----------------------------------------------

--- sockets(row) -> {name -> socket path} of a sandbox of several services (row: its
--- socket, port and command as the store keeps them, the command a JSON list of
--- "name:port=command", a job's "name=command"): the entry's the sandbox's socket, each
--- other's socket.PORT, which the runner's helper relays to that port; a job none (it has
--- no port). {} for a sandbox of one service.
function M.sockets(row)
  local out, list = {}, type(row.command) == "string" and cjson.decode(row.command) or nil
  if type(list) ~= "table" or type(row.socket) ~= "string" then return out end
  local any = false
  for _, item in ipairs(list) do
    if type(item) ~= "string" then return {} end
    local name, port = item:match("^([%w][%w_.-]*):(%d+)=")
    if name then
      port = math.tointeger(tonumber(port))
      out[name], any = port == row.port and row.socket or (row.socket .. "." .. port), true
    elseif not item:match("^[%a][%w_-]*=") then
      return {} -- a single service's argv
    end
  end
  return any and out or {}
end

--- how long a sandbox's services have to end after a stop, as `docker stop`'s 10 s: then what
--- is left is killed (orket.lua's sandbox.stop_timeout_ms sets it)
M.STOP_TIMEOUT_MS = 10000
--- past that time, how long the script of several services may take to kill what is left
--- (it does at the time's end) before its owner has the helper kill every process
M.STOP_SLACK_MS = 1000

--- how long a deploy waits for a sandbox it replaces to end (its stop included): under the
--- 30 s a detached `up` waits for its owner's row, so the deploy's own failure is what it says
M.REPLACE_WAIT_MS = 25000

--- replace_wait_ms(stop_ms) -> how long a deploy waits for the sandbox it replaces, with stops
--- of stop_ms (sandbox.stop_timeout_ms): REPLACE_WAIT_MS, longer by what stop_ms passes 10 s
--- by, so that a stop given more time is not cut short by the deploy waiting on it
function M.replace_wait_ms(stop_ms)
  return M.REPLACE_WAIT_MS + math.max(0, (stop_ms or M.STOP_TIMEOUT_MS) - M.STOP_TIMEOUT_MS)
end

--- how long a deploy waits for the deploy before it (deploy.lock) to end
M.DEPLOY_LOCK_WAIT_MS = 120000

--- deploy_lock_wait_ms(stop_ms) -> how long a deploy waits for the deploy before it, with
--- stops of stop_ms: DEPLOY_LOCK_WAIT_MS, longer by what that deploy's wait for the sandbox
--- it replaces is (replace_wait_ms), so that a longer stop does not fail the deploy behind it
function M.deploy_lock_wait_ms(stop_ms)
  return M.DEPLOY_LOCK_WAIT_MS + M.replace_wait_ms(stop_ms) - M.REPLACE_WAIT_MS
end

-- The file in a sandbox's directory its owner writes as it stops it: how long that may take,
-- in ms (its bound), so that the process that asked (M.stop) waits that long for the end
local STOPPING = "stopping"

-- a row's sandbox directory, DIR/.orket/sandboxes/ID, named by its socket | nil
local function home_of(row)
  return type(row.socket) == "string" and row.socket:match("^(/.+/%.orket/sandboxes/%d+)/app%.sock$") or nil
end

--- of_folder(row, dir) -> whether the sandbox of a row is the folder dir's (its real path):
--- a store several folders share (one PostgreSQL database) holds each folder's sandboxes,
--- and a row names its folder by its socket, DIR/.orket/sandboxes/ID/app.sock, written with
--- the row. One whose socket names no folder (an older Orket's row, before it wrote its
--- socket) counts as dir's. Another machine's row (M.where) naming the same path is dir's
--- only when the folder is shared (its sandbox's directory is here): machines that each
--- keep a folder at one path share the store, not the folder.
function M.of_folder(row, dir)
  local home = M.folder_of(row)
  if home and home ~= dir then return false end
  if M.where(row) ~= "elsewhere" then return true end
  local sbdir = home_of(row)
  return sbdir and uv.fs_stat(sbdir) ~= nil or false
end

--- folder_of(row) -> the folder a row's socket names | nil (none)
function M.folder_of(row)
  return type(row.socket) == "string" and row.socket:match("^(/.+)/%.orket/sandboxes/%d+/app%.sock$") or nil
end

--- pick(rows, dir[, healthy]) -> the newest row of main of the folder dir (a real path),
--- only a healthy one when healthy | nil, and the rows of main that other folders' are (for
--- elsewhere): the one rule of every picker of "this folder's sandbox" (the agents' tools,
--- `orket sandbox check`, the bug-fix phase's recheck)
function M.pick(rows, dir, healthy)
  local best, others = nil, {}
  for _, r in ipairs(rows) do
    if r.target == "main" and (not healthy or r.status == "healthy") then
      if not M.of_folder(r, dir) then
        others[#others + 1] = r
      elseif not best or r.id > best.id then
        best = r
      end
    end
  end
  return best, others
end

--- elsewhere(rows, dir) -> a clause naming those of rows that are other folders' than dir (a
--- real path) and where they run | nil (none is): why a picker of dir's sandbox found none
--- while the store shows some
function M.elsewhere(rows, dir)
  local ids, homes, seen = {}, {}, {}
  for _, r in ipairs(rows) do
    local home = M.folder_of(r)
    if home and not M.of_folder(r, dir) then
      -- (the same path on another machine is that machine's folder; in another container
      -- of this host, that container's, whose host name is this one's)
      if home == dir and M.runs_on(r) == "on another machine" then
        home = tostring(M.machine_of(r)) .. ":" .. home
      elseif home == dir then
        home = home .. " " .. M.runs_on(r)
      end
      ids[#ids + 1] = tostring(math.tointeger(r.id) or r.id)
      if not seen[home] then
        seen[home] = true
        homes[#homes + 1] = home
      end
    end
  end
  if #ids == 0 then return nil end
  return string.format("%s %s %s %s sharing this store (%s)", #ids == 1 and "sandbox" or "sandboxes",
    table.concat(ids, ", "), #ids == 1 and "runs in" or "run in", #homes == 1 and "another folder" or "other folders",
    table.concat(homes, ", "))
end

--- start_time(pid) -> the process's start time (orket.sandboxes.pidstart)
M.start_time = pidstart.start_time

--- where(row) -> where a sandbox row's owner runs, as this process can judge it: "here"
--- (this machine, boot and pid namespace: its pid means something here), "rebooted" (this
--- host, another boot id: the owner ended with the boot, its pid means nothing),
--- "elsewhere" (another machine, or another pid namespace of this one: neither its pid nor
--- its end can be judged here) or "unknown" (a row written before rows named their
--- machine, or this process cannot read its own place): judged by its pid, as it always was
function M.where(row)
  local machine = row.owner_machine
  if type(machine) ~= "string" or machine == "" then return "unknown" end
  if not pidstart.place then return "elsewhere" end -- (this process cannot tell whose it is)
  local host, boot, place = pidstart.parse_machine(machine)
  if not host then return "unknown" end -- (not a machine's text: judged as a row without one)
  if place == pidstart.place then return "here" end
  if host == pidstart.host and boot ~= pidstart.boot then return "rebooted" end
  return "elsewhere"
end

--- machine_of(row) -> the host name of the machine a row's owner runs on | nil (not recorded)
function M.machine_of(row)
  return (pidstart.parse_machine(row.owner_machine))
end

--- runs_on(row) -> where another's row runs, said truly, for a row `where` finds
--- "elsewhere" (the caller adds machine_of's host name). The boot id comes first: it is
--- random per kernel boot and not namespaced, so a row of this boot id runs on this very
--- kernel, "in another container or pid namespace on this host", whatever host name it
--- gives (a container has its own by default); else another host name is "on another
--- machine"; this host name while this process cannot read its own place, "on a machine
--- of this host's name (this process cannot tell its own place)"; a machine's text that
--- does not parse (or none), "somewhere this process cannot tell"
function M.runs_on(row)
  local host, boot = pidstart.parse_machine(row.owner_machine)
  if not host then return "somewhere this process cannot tell" end
  if pidstart.boot and boot == pidstart.boot then return "in another container or pid namespace on this host" end
  if host ~= pidstart.host then return "on another machine" end
  if not pidstart.place then return "on a machine of this host's name (this process cannot tell its own place)" end
  -- (where calls a row of this host name and another boot "rebooted": ended, not elsewhere)
  return "on another boot of this host"
end

--- elsewhere_live(row) -> whether a live row is another machine's (or another pid
--- namespace's), whose owner only that machine can judge: it is shown as it was recorded
function M.elsewhere_live(row)
  return ops.LIVE[row.status] == true and M.where(row) == "elsewhere"
end

--- unreachable(row) -> whether a live row's owner can be neither judged nor asked from here:
--- another machine's, with no lock and no directory of it seen here (its folder is not shared)
function M.unreachable(row)
  local home = home_of(row)
  return M.elsewhere_live(row) and M.owner_lock(row) == nil and not (home and uv.fs_stat(home))
end

--- owned_by(row, pid) -> whether the row's owner is the process pid of this machine (a
--- row another machine wrote may name the same pid)
function M.owned_by(row, pid)
  if math.tointeger(row.owner_pid) ~= math.tointeger(pid) then return false end
  local w = M.where(row)
  return w == "here" or w == "unknown"
end

--- OWNER_LOCK: the file in a sandbox's directory its owner holds a lock on (orket.c.lockfile)
--- for the sandbox's whole life, taken before its row is seen. The kernel drops it when the
--- owner ends, however it ends; any process that sees the directory, in any pid namespace or
--- container on this kernel (or a client of a shared file system that passes locks on), can
--- ask whether it is held.
M.OWNER_LOCK = "owner.lock"

--- owner_lock(row) -> true (its owner's lock is held: alive), false (the file is there and
--- nobody holds it: the owner ended) | nil (no lock file seen here: its directory is on
--- another machine, or the row is older than the lock). A lock that cannot be read is taken
--- as held (alive): see owner_alive
function M.owner_lock(row)
  local home = home_of(row)
  if not home then return nil end
  local path = home .. "/" .. M.OWNER_LOCK
  if not uv.fs_stat(path) then return nil end
  local held, err = lockfile.probe(path)
  if held == nil and err then return true end
  return held == true
end

-- whether the row's owner ran on this kernel (this boot id, any pid namespace): only there
-- is a free lock proof that it ended
local function same_kernel(row)
  local _, boot = pidstart.parse_machine(row.owner_machine)
  return boot ~= nil and boot == pidstart.boot
end

-- whether a row's owner is (as far as this process can tell) still running it. The owner's
-- lock, when its file is seen here, decides when held, whatever the machine the row names;
-- free, it decides only for an owner of this kernel (a container restarted on this host, a
-- new pid namespace, leaves a lock nobody holds): a shared file system that does not pass
-- locks on (NFS mounted nolock or local_lock, most FUSE) shows another machine's held lock
-- as free, and ending that row would move a live app's databases. Without a lock that
-- decides, only a row of this machine is judged by its pid: another machine's is alive as
-- recorded (its own commands end it, or stop --force), one of a boot before this one is not.
-- An entry that cannot be read (EMFILE, EACCES) is taken as alive: reconciling a live
-- sandbox would move its databases and remove its temp folder from under the app
local function owner_alive(row)
  local locked = M.owner_lock(row)
  if locked == true then return true end
  local w = M.where(row)
  if locked == false and (w == "here" or w == "rebooted" or same_kernel(row)) then return false end
  if w == "elsewhere" then return true end
  if w == "rebooted" then return false end
  if not (row.owner_pid and row.owner_start) then return false end
  return pidstart.same(row.owner_pid, row.owner_start)
end

local function record(db, id, status, detail, exit, kind, data)
  local ok, err = db:tx(function()
    ops.set_status(db, id, status, detail, exit)
    db:event { kind = kind, data = data }
    return true
  end)
  return ok, err
end

-- whether sandbox id is live as the store holds it now (a failed read: taken as live, as
-- before this second look)
local function still_live(db, id)
  local ok, row = pcall(ops.get, db, id)
  if not ok then return true end
  return row ~= nil and ops.LIVE[row.status] == true
end

-- records an end as record does, only while the row is live (read in the same
-- transaction, which holds the store's write lock): true when it did
local function record_if_live(db, id, status, detail, kind, data)
  local ok = db:tx(function()
    if not still_live(db, id) then return false end
    ops.set_status(db, id, status, detail)
    db:event { kind = kind, data = data }
    return true
  end)
  return ok == true
end

--- END_TRIES, END_PAUSE_MS: how often an owner asks the store to record its sandbox's end,
--- the pause growing by END_PAUSE_MS after each failure (a connection dropped, a lock wait
--- cut short). An end left unrecorded is read later, once the owner's lock is free, as the
--- owner's death ("its owner ended"), not as the stop or exit it was.
M.END_TRIES, M.END_PAUSE_MS = 4, 250

-- records an owner's end of its sandbox as record does, asking again after a failure (only
-- in a task, which may wait). One whose first COMMIT failed after the server had it is not
-- written twice: the row already ended as asked is taken as recorded. A failure that stays
-- is said on stderr (a detached owner's owner.log), with the store's reason.
local function record_end(db, id, status, detail, exit, kind, data)
  local ok, err = record(db, id, status, detail, exit, kind, data)
  local tries = 1
  while not ok and tries < M.END_TRIES and coroutine.isyieldable() do
    rt.sleep(M.END_PAUSE_MS * tries)
    tries = tries + 1
    local got, row = pcall(ops.get, db, id)
    if got and row and row.status == status then return true end
    ok, err = record(db, id, status, detail, exit, kind, data)
  end
  if not ok then
    io.stderr:write(string.format("sandbox %s: its end (%s) was not recorded after %d tries: %s\n", tostring(id),
      status, tries, inert.text(tostring(err))))
  end
  return ok, err
end
M._record_end = record_end

-- A killed owner's helper dies with it and leaves its listening sockets: the entry's
-- app.sock, its health probe's and each relayed service's. Only sockets are removed.
local function remove_sockets(row)
  local paths = { row.socket, row.socket .. ".probe" }
  for _, path in pairs(M.sockets(row)) do paths[#paths + 1] = path end
  for _, path in ipairs(paths) do
    local st = uv.fs_lstat(path)
    if st and st.type == "socket" then os.remove(path) end
  end
end

-- the databases Orket ran in a row's sandbox ({name=, database=}...; its command names each
-- service's, a database's as "db:8081=postgresql"): only if there is one is its temp dir's
-- db/ the databases'
local function row_databases(row)
  local out = {}
  local ok, list = pcall(cjson.decode, type(row.command) == "string" and row.command or "")
  if not ok or type(list) ~= "table" then return out end
  for _, item in ipairs(list) do
    local name, kind = (type(item) == "string" and item or ""):match("^([%w][%w_.-]*):%d+=(%l+)$")
    if kind == "postgresql" or kind == "sqlite" then out[#out + 1] = { name = name, database = kind } end
  end
  return out
end

-- a plan's database services ({name=, database=}...)
local function plan_databases(services)
  local out = {}
  for _, sv in ipairs(services or {}) do
    if sv.database then out[#out + 1] = { name = sv.name, database = sv.database } end
  end
  return out
end

-- In a sandbox's directory when its databases are NOT the line a bug-fix phase keeps: a
-- second sandbox started beside a live one of its target (it made fresh ones of its own), or
-- one whose orket.lua says sandbox.database = "fresh". Written after the kept databases are
-- taken, and never by one that took them, so a crash, a failed write or a sandbox started
-- before this mark existed leaves none: its databases are kept (the last to end wins), at
-- worst disk used, never the phase's data lost. A deploy is marked as any start is (one
-- that slipped in while it waited for the sandboxes it replaces may hold the line).
local SIDE = "side-databases"

-- whether the sandbox whose directory is home is marked SIDE (a plain file, never a link)
local function marked_side(home)
  local st = uv.fs_lstat(home .. "/" .. SIDE)
  return st ~= nil and st.type == "file"
end

-- whether an ending sandbox's databases (home: its directory) go aside for the next one:
-- it is not marked SIDE, and a bug-fix phase is open to take them again. Otherwise they go
-- with its temp folder: nothing would take them, and a cluster is tens of MB.
local function hands_on(db, home)
  if marked_side(home) then return false end
  local ok, open = pcall(bugfix_rows.list, db, true)
  -- the store not answering: kept, as before (the next start drops what it does not take)
  return not ok or #open > 0
end

-- whether another live sandbox of target runs whose databases are not marked SIDE (any id:
-- rows are inserted long before their take, so a higher id may have taken the phase's data).
-- A start that took is the line and never asks; one that took nothing while such a row runs
-- is marked side, so two starts are never both the line (both side at worst: nothing lost).
-- A store may be shared by several folders: another folder's sandbox keeps its databases
-- there, never here, so it is not this line (one whose folder its socket does not say counts).
local function beside(db, id, target, dir)
  for _, other in ipairs(ops.list(db, false)) do
    if other.id ~= id and other.target == target and M.of_folder(other, dir) then
      if not marked_side(dir .. "/.orket/sandboxes/" .. other.id) then return true end
    end
  end
  return false
end

-- marks home's databases SIDE: true | nil, message (they are then kept as the line's)
local function mark_side(home)
  local f, err = io.open(home .. "/" .. SIDE, "w")
  if not f then return nil, err end
  local ok, werr = f:close()
  if not ok then
    os.remove(home .. "/" .. SIDE)
    return nil, werr
  end
  return true
end
M._hands_on, M._mark_side, M._beside, M.SIDE = hands_on, mark_side, beside, SIDE

--- reconcile(db) -> the rows marked exited: a live row whose owner is gone (killed, or the
--- machine restarted) is a sandbox that ended with it (the helper dies with its parent).
--- Only rows of this machine (where) are judged: another machine's row is left as it is
function M.reconcile(db)
  local out = {}
  for _, row in ipairs(ops.list(db, false)) do
    -- read again once its owner reads gone: an owner records its end before it lets its
    -- lock go, so a row read live before that end and judged after it has ended already
    -- (stopped as asked): marking it exited would overwrite that end, and put its kept
    -- databases away a second time
    if not owner_alive(row) and still_live(db, row.id) then
      local why = M.where(row) == "rebooted"
        and string.format("its owner (pid %s) ended with its machine's restart, and the sandbox with it",
          tostring(row.owner_pid))
        or string.format("its owner (pid %s) ended, and the sandbox with it", tostring(row.owner_pid))
      -- what its owner would have removed: the tree's copy and the temp dir (the log stays)
      local home = home_of(row)
      if home then
        -- its databases wait for the next sandbox of its target, as at any end (a bug-fix
        -- phase's data is not lost to a killed owner or a restarted machine; without an
        -- open phase, or when they are not its line, they go with the temp folder)
        -- (those whose making its owner did not see end are not kept: database.put_kept)
        local dbs = row_databases(row)
        if #dbs > 0 then
          database.put_kept(home:match("^(.+)/%.orket/sandboxes/%d+$"), row.target, home, dbs, hands_on(db, home))
        end
        tree.remove(home .. "/tree")
        tree.remove(home .. "/tmp")
        os.remove(home .. "/" .. STOPPING)
        remove_sockets(row)
      end
      -- recorded only now: a start meanwhile sees it live (and marks itself side), not an
      -- ended sandbox whose databases are not yet kept. Only while it is live: another look
      -- (a process of its own) may have recorded the end first
      if record_if_live(db, row.id, "exited", why, "sandbox_exit", { id = row.id, target = row.target, detail = why }) then
        out[#out + 1] = row.id
      end
    end
  end
  return out
end

-- ---- retention ---------------------------------------------------------------------------

--- PRUNED: the file in DIR/.orket/sandboxes holding the highest id whose directory retention
--- removed (sandbox.keep_ended): no start gives an id at or below it again (highest_dir), and
--- a removed sandbox's log is said removed, not missing (log_removed)
M.PRUNED = "pruned"
--- PRUNE_LOCK: held while a prune runs there; a prune meanwhile does nothing (the one
--- running removes the same)
M.PRUNE_LOCK = "prune.lock"

-- the ids that name an entry of base (DIR/.orket/sandboxes: the sandboxes' directories), newest first
local function folder_ids(base)
  local ids = {}
  local it = uv.fs_scandir(base)
  while it do
    local name = uv.fs_scandir_next(it)
    if not name then break end
    local n = name:match("^%d+$") and math.tointeger(tonumber(name))
    if n then ids[#ids + 1] = n end
  end
  table.sort(ids, function(a, b) return a > b end)
  return ids
end

-- the states a sandbox ended in: only these are pruned (any other, or one added later, is not)
local ENDED = { stopped = true, exited = true }

--- pruned_upto(dir) -> the highest sandbox id whose directory retention removed from dir's
--- .orket/sandboxes, 0 for none
function M.pruned_upto(dir)
  local f = io.open(dir .. "/.orket/sandboxes/" .. M.PRUNED, "r")
  if not f then return 0 end
  local n = math.tointeger(tonumber((f:read(32) or ""):match("^(%d+)%s*$") or ""))
  f:close()
  return n or 0
end

-- why an ended sandbox's directory (home) past keep_ended stays | nil (it may go): its
-- owner's lock is held (or cannot be read: taken as held, as owner_lock does), databases are
-- still in its temp folder (an end that did not hand them on: they may be a bug-fix phase's
-- data), or its owner ran where neither its end nor its lock can be judged from here
local function prune_guard(row, home)
  local lock = home .. "/" .. M.OWNER_LOCK
  local seen = uv.fs_stat(lock) ~= nil
  if seen and lockfile.probe(lock) ~= false then return "its owner's lock is held" end
  if uv.fs_lstat(database.folder(home)) then return "its databases are still in its folder" end
  -- another pid namespace of this kernel (a container restarted) is judged by its lock, seen
  -- free; another machine's folder is that machine's to prune
  if M.where(row) == "elsewhere" and not (seen and same_kernel(row)) then
    return string.format("its owner ran %s (%s), which prunes it", M.runs_on(row), tostring(M.machine_of(row) or "?"))
  end
  return nil
end

-- removes the directory home of sandbox id past keep_ended, the highest id removed written
-- first (upto: the one written so far): a folder removed is never one whose log is said
-- missing -> the new upto, and why it stays when it could not be removed whole | nil,
-- message (PRUNED not written: nothing removed)
local function prune_one(base, home, id, upto)
  if id > upto then
    local ok, werr = fieldline.write_whole(base .. "/" .. M.PRUNED, id .. "\n", 384)
    if not ok then return nil, werr end
  end
  tree.remove(home)
  -- (best effort: what could not be removed stays, and is tried again at the next prune)
  if uv.fs_lstat(home) then return math.max(id, upto), "it could not be removed whole" end
  return math.max(id, upto)
end

--- prune(db, dir, keep) -> {removed = {id...}, kept = {{id=, why=}...}, ended = N, busy = true
--- when another prune ran} | nil, message, CODE: retention (orket.lua's sandbox.keep_ended).
--- Of the folder dir's ended sandboxes (stopped or exited) whose directory is there, the
--- newest keep stay; each older one's directory (its log and rotations, its owner's files)
--- is removed, but for one prune_guard keeps (kept, with why). A directory is only removed
--- when its row names it (its socket): one whose row is gone, unknown, another folder's or
--- live is left, and not said. Reads a row per directory: the store's rows stay.
function M.prune(db, dir, keep)
  dir = uv.fs_realpath(dir) or dir
  local base = dir .. "/.orket/sandboxes"
  local out = { removed = {}, kept = {}, ended = 0 }
  if not uv.fs_stat(base) then return out end
  local lk, lerr, lcode = lockfile.acquire(base .. "/" .. M.PRUNE_LOCK)
  if not lk and lcode == "EBUSY" then
    out.busy = true
    return out
  end
  if not lk then return nil, "sandbox retention: " .. tostring(lerr), lcode end
  local _ <close> = setmetatable({}, { __close = function() lk:release() end })
  local upto = M.pruned_upto(dir)
  for _, id in ipairs(folder_ids(base)) do
    local home = base .. "/" .. id
    local st, row = uv.fs_lstat(home), nil
    if st and st.type == "directory" then row = ops.get(db, id) end
    if row and ENDED[row.status] and home_of(row) == home then
      out.ended = out.ended + 1
      local why = out.ended > keep and prune_guard(row, home)
      if why then out.kept[#out.kept + 1] = { id = id, why = why }
      elseif out.ended > keep then
        local stays
        upto, stays = prune_one(base, home, id, upto)
        if not upto then return nil, "sandbox retention: " .. tostring(stays), "EIO" end
        if stays then out.kept[#out.kept + 1] = { id = id, why = stays }
        else out.removed[#out.removed + 1] = id end
      end
    end
  end
  return out
end

--- log_removed(row, dir) -> why sandbox row's log is not there | nil (not removed by
--- retention): an ended sandbox of the folder dir (its socket says) whose directory is gone
--- and whose id retention reached (pruned_upto)
function M.log_removed(row, dir)
  dir = uv.fs_realpath(dir) or dir
  if not row or not ENDED[row.status] or M.folder_of(row) ~= dir then return nil end
  local home = dir .. "/.orket/sandboxes/" .. math.tointeger(row.id)
  if uv.fs_lstat(home) or row.id > M.pruned_upto(dir) then return nil end
  return string.format("sandbox %d's log was removed by retention: orket.lua's sandbox.keep_ended keeps the folders "
    .. "(and logs) of the newest ended sandboxes only, and this one's, %s, was removed", row.id, home)
end

-- at a start: retention as the settings say (a settings table without keep_ended, made by
-- hand, prunes nothing); a failure is said on stderr, never the start's
local function prune_at_start(db, dir, s)
  if not s.keep_ended then return end
  local ok, res, err = pcall(M.prune, db, dir, s.keep_ended)
  if not ok or not res then
    io.stderr:write("sandbox: retention (sandbox.keep_ended) failed: ", inert.text(tostring(ok and err or res)), "\n")
  end
end

-- ---- the log ---------------------------------------------------------------------------

-- app.log, rotated at max bytes into app.log.1 ... app.log.KEEP (the oldest dropped)
local Log = {}
Log.__index = Log

local function open_log(path, max, keep)
  local l = setmetatable({ path = path, max = max, keep = keep, size = 0, tail = "" }, Log)
  l.f = assert(io.open(path, "a"))
  l.f:setvbuf("no")
  l.size = l.f:seek("end") or 0
  return l
end

function Log:write(data)
  if not self.f then return end
  self.tail = (self.tail .. data):sub(-4096)
  while #data > 0 do
    local room = self.max - self.size
    if room <= 0 then
      self:rotate()
      room = self.max
    end
    local piece = data:sub(1, room)
    self.f:write(piece)
    self.size = self.size + #piece
    data = data:sub(#piece + 1)
  end
end

function Log:rotate()
  self.f:close()
  os.remove(self.path .. "." .. self.keep)
  for i = self.keep - 1, 1, -1 do os.rename(self.path .. "." .. i, self.path .. "." .. (i + 1)) end
  if self.keep > 0 then os.rename(self.path, self.path .. ".1") else os.remove(self.path) end
  self.f = assert(io.open(self.path, "w"))
  self.f:setvbuf("no")
  self.size = 0
end

function Log:close()
  if self.f then self.f:close() end
  self.f = nil
end

--- log_reader(path, tail) -> reader: reader:read() -> the log's next bytes (at most 64 KiB)
--- | nil when there are none yet; it follows the file at path across rotations (a file
--- shorter than what was read is a new one, read from its start) and waits for one not
--- there yet. It starts at the last tail bytes (nil: the start). reader:close().
function M.log_reader(path, tail)
  local r = {}
  local f
  local function open()
    f = io.open(path, "r")
    if f and tail then
      local size = f:seek("end")
      f:seek("set", size > tail and size - tail or 0)
    end
    tail = nil -- only the first file is read from its tail
  end
  function r.read()
    if f then
      local st = uv.fs_stat(path)
      if st and f:seek("cur") > st.size then
        f:close()
        f = io.open(path, "r")
      end
    else
      open()
    end
    return f and f:read(65536)
  end
  function r.close() if f then f:close() end f = nil end
  return r
end

-- ---- probes ------------------------------------------------------------------------------

-- The relay's probe socket answers "up" when the app's port takes a connection.
local function probe_tcp(sock, timeout_ms)
  local pipe = uv.new_pipe(false)
  local done, answer = false, ""
  pipe:connect(sock .. ".probe", function(err)
    if err then
      done = true
      return
    end
    pipe:read_start(function(rerr, data)
      if rerr or not data then done = true else answer = (answer .. data):sub(1, 200) end
    end)
  end)
  local t0 = uv.now()
  while not done and uv.now() - t0 < timeout_ms do rt.sleep(10) end
  if not pipe:is_closing() then pipe:close() end
  if answer:match("^up") then return true end
  return false, answer:match("^down (.-)%s*$") or (done and "the probe socket closed" or "no answer")
end

-- A GET that got no answer: while nothing listens on the app's port, the relay takes the
-- connection and closes it, and libcurl says only that ("select/poll returned error",
-- "Empty reply"); the probe socket says why the port is down ("connection refused").
local function no_answer(sock, path, err, timeout_ms)
  local up, why = probe_tcp(sock, math.min(timeout_ms, 1000))
  if not up then return string.format("GET %s: nothing listens on the app's port (%s)", path, why) end
  return string.format("GET %s: %s", path, tostring(err):gsub("^%u+ http://sandbox%S*: ", ""))
end

-- quick: a failure without an answer is returned as libcurl said it, and true after it (the
-- start's probes come every 10 ms: no_answer is asked once, when the start gives up)
local function probe_http(sock, path, timeout_ms, quick)
  local r, err = http.request { url = "http://sandbox" .. path, unix_socket = sock, total_timeout_ms = timeout_ms,
    connect_timeout_ms = timeout_ms, max_bytes = 65536 }
  if not r then return false, quick and tostring(err) or no_answer(sock, path, err, timeout_ms), true end
  local guard <close> = r
  local status, herr = r:headers()
  if not status then return false, quick and tostring(herr) or no_answer(sock, path, herr, timeout_ms), true end
  if status >= 200 and status < 400 then return true end
  return false, "HTTP " .. status
end

local function probe(sb, quick)
  local h = sb.plan.health
  if h.kind == "http" then return probe_http(sb.socket, h.path, h.timeout_ms, quick) end
  return probe_tcp(sb.socket, h.timeout_ms)
end

-- ---- a sandbox this process owns ----------------------------------------------------------

local Sandbox = {}
Sandbox.__index = Sandbox

-- Until a sandbox is healthy, probes come 10 ms apart for START_FAST_MS after its runner
-- starts and after the runner says a service starts (the entry of several is started last,
-- and answers within tens of ms), then at pauses doubling up to START_PROBE_MAX_MS: a failed
-- probe costs a connect through the relay, and a start is not rounded up by 100 ms.
M.START_PROBE_MAX_MS = 50
M.START_FAST_MS = 250

--- start_pause(previous [, fast]) -> the pause before the next probe while a sandbox starts
--- (the first: start_pause(nil); fast: within START_FAST_MS of a service's start), in ms
function M.start_pause(previous, fast)
  if not previous or fast then return 10 end
  return math.min(previous * 2, M.START_PROBE_MAX_MS)
end

-- What the kernel offers this user, asked once a process: the probe starts processes of its
-- own (about 100 ms), and a server or a run that starts sandboxes one after another would
-- pay it each time for an answer that does not change.
local offered_here
local function kernel()
  offered_here = offered_here or proc.probe()
  return offered_here
end
--- offered() -> what the kernel offers this user (orket.c.proc's probe, asked once a process)
M.offered = kernel

--- highest_dir(dir) -> the highest sandbox id with a directory in dir's .orket/sandboxes, or
--- whose directory retention removed (pruned_upto), 0 for none
function M.highest_dir(dir)
  return math.max(folder_ids(dir .. "/.orket/sandboxes")[1] or 0, M.pruned_upto(dir))
end

--- running(db) -> the sandboxes of the store whose owner still runs them (rows, newest
--- first): the others are marked ended first (reconcile)
function M.running(db)
  M.reconcile(db)
  return ops.list(db, false)
end

--- up{dir=, db=, settings=, target=, commit=, replace=, stopping=, emit=, on_healthy=} ->
--- sandbox | nil, message, CODE, log tail, its id (once it had one). commit: what to run (a commit id; default main's
--- head now), its tree written from the repository's objects and named in the row, the
--- journal and sandbox.commit. on_healthy(sandbox): called once it is healthy, before up
--- returns (a deploy's acceptance checks, which the next deploy must not cut short).
--- replace: the live sandboxes of the same target are stopped first;
--- stopping(): a reason once the caller was asked to stop (the start ends, recorded stopped).
--- Starts main's tree as a service and waits (in the calling task) until it is healthy, or
--- until health.start_timeout_ms passes, the app exits or the helper refuses: then it is
--- stopped, recorded, and the error carries the log's tail. emit(event) hears each change.
function M.up(o)
  local dir = uv.fs_realpath(o.dir) or o.dir
  local s = o.settings.sandbox -- (sandbox.network = true is refused with orket.lua: orket.settings.sandbox)
  local offered = kernel()
  if not offered.netns then
    return nil, "sandbox: this kernel refuses a network namespace to this user, and a sandbox needs one (its own "
      .. "loopback, reached only through its socket)", "ENOTSUP"
  end
  -- main's tree at the commit, written before the row exists: what runs is what was planned
  local staged = source.scratch(dir)
  local _ <close> = setmetatable({}, { __close = function() if staged then tree.remove(staged) end end })
  local commit, xerr, xcode = source.export(dir, o.commit, staged)
  if not commit then
    staged = nil -- (the export removed what it wrote)
    return nil, xerr, xcode
  end
  local p, perr = source.plan_in(staged, s)
  if not p then return nil, perr, "EINVAL" end
  local db = o.db
  local lk
  if o.replace then
    -- deploys one at a time: the next waits until this one's sandbox is healthy (its owner
    -- then stops it on a signal) or has failed, so it finds it and replaces it
    uv.fs_mkdir(dir .. "/.orket/sandboxes", 448)
    -- polled, not waited on in the thread: a signal meanwhile runs its handler, and the
    -- deploy then ends having asked nothing to stop
    local path, t0 = dir .. "/.orket/sandboxes/deploy.lock", uv.now()
    while true do
      local lerr, lcode
      lk, lerr, lcode = lockfile.acquire(path)
      if lk then break end
      if lcode ~= "EBUSY" then return nil, "sandbox: " .. tostring(lerr), lcode end
      local asked = o.stopping and o.stopping()
      if asked then
        return nil, string.format("sandbox: the deploy %s before it started (it waited for the deploy before it; "
          .. "nothing was asked to stop)", asked), "ECANCELED"
      end
      local lock_wait = M.deploy_lock_wait_ms(s.stop_timeout_ms)
      if uv.now() - t0 >= lock_wait then
        return nil, string.format("sandbox: %s stayed locked by another deploy for %d ms", path, lock_wait), "EBUSY"
      end
      rt.sleep(50)
    end
  end
  local _l <close> = setmetatable({}, { __close = function() if lk then lk:release() end end })
  M.reconcile(db)
  if o.replace then
    -- a deploy: the live sandboxes of the same target make way (each through its owner).
    -- One that has not ended when the stop gives up is waited for (it holds the phase's
    -- data, handed on at its end), up to replace_wait_ms: a deploy started beside it would
    -- start on the seed and, as the line, replace that data at its own end. Never ended: the
    -- deploy fails, starting nothing
    -- A stop asked meanwhile (Ctrl-C) ends the wait as it ends a start: nothing started
    -- (ECANCELED); the sandbox asked to make way still ends, by its owner.
    -- (asked: the sandboxes it asked to stop, each of them still ending by its owner)
    local asked_ids = {}
    local function cancelled(why)
      if #asked_ids == 0 then
        return nil, string.format("sandbox: the deploy %s before it started (nothing was asked to stop)", why),
          "ECANCELED"
      end
      return nil, string.format("sandbox: the deploy %s before it started (%s %s, which it replaces, %s asked to "
        .. "stop)", why, #asked_ids == 1 and "sandbox" or "sandboxes", table.concat(asked_ids, ", "),
        #asked_ids == 1 and "was" or "were"), "ECANCELED"
    end
    -- Only this folder's: another folder sharing the store runs its own sandboxes of the
    -- target, which its own deploys replace
    for _, row in ipairs(ops.list(db, false)) do
      if row.target == (o.target or "main") and M.of_folder(row, dir) then
        -- a signal that came during the export, the reconcile or the last wait: its handler
        -- runs in this turn of the loop, before this sandbox is asked to make way
        task.turn()
        local why = o.stopping and o.stopping()
        if why then return cancelled(why) end
        local t0 = uv.now()
        asked_ids[#asked_ids + 1] = row.id
        local stopped, serr, scode = M.stop(db, row.id, nil, o.stopping)
        if scode == "ECANCELED" then return cancelled(serr) end
        local now = not stopped and ops.get(db, row.id)
        while now and ops.LIVE[now.status] do
          local asked = o.stopping and o.stopping()
          if asked then return cancelled(asked) end
          if uv.now() - t0 >= M.replace_wait_ms(s.stop_timeout_ms) then
            return nil, string.format("sandbox: the deploy did not start: sandbox %d, which it replaces, did not end "
              .. "within %d ms (%s); stop it (orket sandbox stop %d) and deploy again", row.id,
              M.replace_wait_ms(s.stop_timeout_ms),
              tostring(serr), row.id), "ETIMEDOUT"
          end
          rt.sleep(100)
          -- (its owner killed meanwhile: get records its end, and hands its data on, here)
          now = M.get(db, row.id)
        end
      end
    end
  end
  local used, port = ops.ports(db), M.PORT_BASE
  while used[port] do port = port + 1 end
  local argv, shown = plan_mod.argv(p, "127.0.0.1", port), nil
  if p.services then
    -- several services: one program (a script of orket.sandboxes.supervise) starts them in
    -- the sandbox's namespace; the row names each service's command
    shown = {}
    local ports = supervise.ports(p, port)
    for _, sv in ipairs(p.services) do
      -- (a job has no port: "migrate=...")
      shown[#shown + 1] = string.format("%s%s=%s", sv.name, ports[sv.name] and (":" .. ports[sv.name]) or "",
        sv.command and table.concat(sv.command, " ") or tostring(sv.database))
    end
  end
  -- every service but the entry is relayed from a socket of its own, app.sock.PORT, so
  -- checks (and people) reach each one from outside
  local relayed = {}
  if p.services then
    local ports = supervise.ports(p, port)
    for _, sv in ipairs(p.services) do
      if ports[sv.name] and ports[sv.name] ~= port then relayed[#relayed + 1] = ports[sv.name] end
    end
  end
  local me = math.tointeger(uv.os_getpid())
  local owner_start = M.start_time(me)
  local row = { target = o.target or "main", port = port, socket = "", command = cjson.encode(shown or argv),
    commit = commit, owner_pid = me, owner_start = owner_start, owner_machine = pidstart.machine }
  -- ids are never reused: a directory of this id was made by a sandbox the store no longer
  -- holds (it was restored from a backup older than it). Its row stays, ended, to say so.
  -- One transaction: a detached `up` waiting for its owner's newest row never sees a
  -- skipped one as the sandbox started.
  -- Its socket, which names its folder, in the same transaction: a deploy of another folder
  -- sharing the store never sees it without one (as this folder's, to replace).
  -- Its owner's lock (OWNER_LOCK) is taken in the same transaction, before the row is
  -- seen: whoever reads the row finds the lock held while this process lives.
  local used_dirs = M.highest_dir(dir)
  local owner_lk, lkerr, lkcode
  local id, ierr, icode = db:tx(function()
    local n = ops.insert(db, row)
    while n <= used_dirs do
      ops.set_status(db, n, "exited", "not started: its id was taken before the store was restored")
      n = ops.insert(db, row)
    end
    ops.set_socket(db, n, dir .. "/.orket/sandboxes/" .. n .. "/app.sock")
    -- .orket/ is the store's (or, on PostgreSQL, made with it)
    uv.fs_mkdir(dir .. "/.orket/sandboxes", 448)
    uv.fs_mkdir(dir .. "/.orket/sandboxes/" .. n, 448)
    if owner_lk then owner_lk:release() end -- (a transaction run again never holds two)
    owner_lk, lkerr, lkcode = lockfile.acquire(dir .. "/.orket/sandboxes/" .. n .. "/" .. M.OWNER_LOCK)
    -- (not taken: the row is not kept, and the start fails)
    if not owner_lk then return nil, "sandbox: its owner's lock: " .. tostring(lkerr), lkcode end
    return n
  end)
  if not id then
    if owner_lk then owner_lk:release() end -- (the row was not committed)
    return nil, ierr, icode
  end
  local home = dir .. "/.orket/sandboxes/" .. id
  -- the row is there (live): retention never takes this sandbox's directory
  prune_at_start(db, dir, s)
  local sock = home .. "/app.sock"
  local sb = setmetatable({ id = id, db = db, dir = dir, home = home, socket = sock, port = port, plan = p,
    owner_lock = owner_lk,
    services = M.sockets { socket = sock, port = port, command = row.command },
    commit = commit, target = o.target or "main", emit = o.emit or function() end, status = "starting",
    stop_ms = s.stop_timeout_ms or M.STOP_TIMEOUT_MS }, Sandbox)
  -- its stop's bound: the services' time, and for several the script's own kills after it
  sb.stop_bound_ms = sb.stop_ms + (p.services and M.STOP_SLACK_MS or 0)
  local function fail(msg, code)
    sb:_kill()
    while sb.handle and not sb.exited do rt.sleep(10) end
    sb:_end("exited", msg)
    sb:_finish()
    return nil, msg, code, sb.log and sb.log.tail or "", id
  end
  if p.services then
    -- healthy only once the script says every service is started (and those it checks
    -- healthy), not when the entry answers: services started after it (a worker that
    -- depends_on the api) may still fail to start
    sb.all_mark = supervise.SAY .. supervise.ALL_WORDS
    -- the entry's port is probed only once the script says the entry starts: before that, a
    -- service listening on the entry's port (one that ignores $PORT) would pass for it
    for _, sv in ipairs(p.services) do
      if sv.entry then sb.entry_mark, sb.entry_name = supervise.SAY .. supervise.start_words(sv.name), sv.name end
      -- an entry with its check turned off and no port published: nothing answers the
      -- owner's probe, so the script's word that it stayed alive is its health
      if supervise.settles_entry(sv) then
        sb.settle_mark = supervise.SAY .. supervise.up_words(sv.name)
      end
    end
  end
  local long = M.socket_path_problem(dir, id)
  if long then return fail(M.HOST_LIMIT .. long, "ENAMETOOLONG") end
  -- .orket/ is the store's (or, on PostgreSQL, made with it)
  uv.fs_mkdir(dir .. "/.orket/sandboxes", 448)
  uv.fs_mkdir(home, 448)
  local moved, merr = os.rename(staged, home .. "/tree")
  if not moved then return fail("sandbox: placing main's tree: " .. tostring(merr), "EIO") end
  staged = nil
  uv.fs_mkdir(home .. "/tmp", 448)
  sb.log = open_log(home .. "/app.log", s.log_max_bytes, s.log_keep)
  local env = {}
  for k, v in pairs(s.env or {}) do env[k] = v end
  env.HOST = "127.0.0.1"
  local cwd = home .. "/tree" .. (p.dir ~= "" and ("/" .. p.dir) or "")
  if p.services then
    -- its databases: the kept ones of an open bug-fix phase moved in (sandbox.database =
    -- "bugfix"), else made fresh; SQLite's made now, PostgreSQL's by the script
    local keep = s.database == "bugfix" and #bugfix_rows.list(db, true) > 0
    local took = database.take_kept(dir, sb.target, home, keep)
    -- not the line of the phase's data (SIDE): a start with databases fresh by setting, or
    -- one that took nothing while another sandbox of its target runs beside it (that one
    -- keeps the line). A deploy too: the sandboxes it replaced have ended, but a start that
    -- slipped in while it waited for them may have taken what they handed on.
    local side = s.database ~= "bugfix"
    if not side and not took then side = beside(db, id, sb.target, dir) end
    if side then
      local marked, merr = M._mark_side(home) -- (through M: a test makes it fail)
      -- unmarked, its fresh databases would be kept at its end as the line's and displace the
      -- phase's data: the start fails instead (it took nothing, so nothing is lost)
      if not marked then
        return fail(string.format("sandbox: its databases could not be marked its own (%s), so they would be kept "
          .. "at its end over those of the bug-fix phase's sandbox of %s", tostring(merr), sb.target), "EIO")
      end
    end
    -- a SQLite seed runs in a child process meanwhile: a stop asked then kills it
    local asked
    local dok, derr, dcode = database.prepare(home, home .. "/tree", p.services, function()
      asked = asked or (o.stopping and o.stopping()) or sb:_stop_asked()
      return asked
    end)
    if dcode == "ECANCELED" then
      -- stopped: the databases made or taken (kept ones) wait for the next, as at any end
      sb.stopping, sb.databases = asked, plan_databases(p.services)
      sb:_finish()
      return nil, string.format("sandbox %d: %s before it was healthy", id, asked), "ECANCELED", sb.log.tail
    end
    -- made or taken, they wait for the next start, a failed seed's too (its own file is
    -- gone): the kept ones of a bug-fix phase are not lost to a bad seed
    sb.databases = plan_databases(p.services)
    if not dok then return fail("sandbox: " .. derr, "EINVAL") end
    local aerr
    argv, aerr = supervise.argv(p, port, env, p.health.start_timeout_ms, { home = home, tree = home .. "/tree",
      stop_ms = sb.stop_ms })
    if not argv then return fail("sandbox: " .. aerr, "ENOENT") end
    cwd = home .. "/tree"
  end
  env[p.port_env] = tostring(port)
  -- sessions: setsid passes seccomp (PostgreSQL's server processes each call it). The
  -- seccomp layer refuses it elsewhere so that no process leaves the group a kill reaches;
  -- here the sandbox's PID namespace ends every process with it, whatever its session, and
  -- the helper lets it through only when that namespace is there.
  local ok, hargv, henv = pcall(proc.helper_argv, { argv = argv, cwd = cwd, tmpdir = home .. "/tmp", env = env,
    limits = M.LIMITS, loopback = true, sessions = true, layers = { landlock_net = false },
    relay = { path = sock, port = port, services = relayed[1] and relayed or nil } })
  if not ok then return fail("sandbox: " .. tostring(hargv), "EINVAL") end
  if not sb:_spawn(hargv, henv) then return fail(sb.failure or "sandbox: the runner did not start", "ESPAWN") end
  assert(record(db, id, "starting", nil, nil, "sandbox_start", { id = id, target = sb.target, port = port,
    command = shown or argv, commit = commit }))
  sb.emit { type = "sandbox", id = id, status = "starting", commit = commit }
  -- healthy before the start timeout, or it is stopped
  local failed, ferr, fcode = sb:_await_healthy(o.stopping, p.health)
  if failed == "stopped" then return nil, ferr, fcode, sb.log.tail end
  if failed then return fail(ferr, fcode) end
  sb:_set("healthy", nil, "sandbox_healthy")
  sb.watch = task.spawn(function() sb:_watch() end)
  -- still under the deploy lock: the next deploy cannot replace it while this runs
  if o.on_healthy then
    -- a failure there is its own: the sandbox it ran against stays up
    local ok, err = pcall(o.on_healthy, sb)
    if not ok then sb.emit { type = "sandbox", id = id, status = "healthy", detail = "after it was healthy: " .. tostring(err) } end
  end
  return sb
end

-- sb:_await_healthy(stopping, health) -> nil once healthy | "stopped", message, CODE (asked
-- to stop while it started: ended and recorded) | "failed", message, CODE (to be failed).
-- Probes pace as start_pause says; the sleep between is cut short when the runner says a
-- service starts, so the entry is asked soon after it was started.
function Sandbox:_await_healthy(stopping, h)
  local t0 = uv.now()
  local last, unanswered, pause, next_probe, fast_until = nil, false, nil, t0, t0 + M.START_FAST_MS
  while true do
    local asked = (stopping and stopping()) or self:_stop_asked()
    if asked then
      -- stopped while it started (a signal to its owner, a deploy replacing it)
      self.stopping = asked
      self:_kill()
      while not self.exited do rt.sleep(10) end
      self:_finish()
      return "stopped", string.format("sandbox %d: %s before it was healthy", self.id, asked), "ECANCELED"
    end
    if self.exited then
      -- status 0 before it was healthy: most often a command that starts the app in the
      -- background and returns (a daemon mode, "app &"), which ends the sandbox with it
      local e = self.exited
      local bg = not self.said and e.code == 0 and (e.signal or 0) == 0
        and "; the command must stay in the foreground while the app runs (one that starts it in the background "
          .. "and returns ends the sandbox, and every process of it)" or ""
      local missing = self:_missing_program()
      if missing then return "failed", missing, "ENOPROG" end
      return "failed", self.failure or string.format("sandbox %d: the app exited (%s) before it was healthy%s%s",
        self.id, self:_exit_text(), self:_said_text(), bg), "EEXIT"
    end
    if self.progressed then
      self.progressed = false
      fast_until, next_probe = uv.now() + M.START_FAST_MS, math.min(next_probe, uv.now() + 10)
    end
    if self.settle_mark then
      -- probed by nothing: up once the script says it stayed alive (and, the last to
      -- start, every service is started)
      if self.settled and not self.all_mark then return nil end
    elseif self.answered then
      -- the entry answered: healthy once the script has started (and checked) every service
      if not self.all_mark then return nil end
    elseif self.relay_ready and not self.entry_mark and uv.now() >= next_probe then
      local good, why, silent = probe(self, true)
      if good and not self.all_mark then return nil end
      -- (answered, it is not asked again while the services after it start)
      if good then self.answered, next_probe = true, math.huge end
      last, unanswered = why, silent
      pause = M.start_pause(pause, uv.now() < fast_until)
      next_probe = uv.now() + math.min(pause, h.interval_ms) -- (or the interval, when shorter)
    end
    if uv.now() - t0 >= h.start_timeout_ms then
      if unanswered then last = no_answer(self.socket, h.path, last, h.timeout_ms) end
      local hint, job = "", false
      for _, sv in ipairs(self.plan.services or {}) do
        if sv.name == self.starting_name then
          hint, job = supervise.tcp_hint(sv, self.starting_port, self.plan.port_env), sv.job
        end
      end
      if self.entry_mark then
        -- a job (service_completed_successfully) is awaited to its end, not to be healthy
        last = string.format("%s was not started yet: %s", self.entry_name, self.starting_name
          and (job and (self.starting_name .. ", a job run before it, had not ended yet")
            or (self.starting_name .. ", started before it, was not healthy yet" .. hint)) or "no service had started")
      elseif self.answered or (self.settle_mark and self.settled) then
        -- the entry was up, a service after it (or the script's own check of the entry) not yet
        last = self.starting_name == self.entry_name
          and string.format("%s answered, but its own health check had not passed yet%s", self.entry_name, hint)
          or string.format("%s answered, but %s, %s", self.entry_name, tostring(self.starting_name),
            job and "a job run after it, had not ended yet" or ("started after it, was not healthy yet" .. hint))
      elseif self.entry_name and not self.settle_mark then
        -- the entry started and never answered: named with its port, as a service the
        -- script checks is (of five services, "Connection refused" named none)
        last = h.kind == "http"
          and string.format("%s did not pass its health check on its port %d (its $%s)%s", self.entry_name,
            self.port, self.plan.port_env, last and (": " .. last) or "")
          or string.format("%s: nothing answered a TCP connect to its port %d (its $%s) on 127.0.0.1%s",
            self.entry_name, self.port, self.plan.port_env, last and (" (" .. last .. ")") or "")
      end
      return "failed", string.format("sandbox %d: not healthy within %d ms (health.start_timeout_ms)%s", self.id,
        h.start_timeout_ms, last and (": " .. last) or ""), "ETIMEDOUT"
    end
    rt.sleep(math.max(1, math.min(10, next_probe - uv.now())))
  end
end

-- The app's program not found where the sandbox looks (ENOENT on a bare name: a runtime
-- such as go not installed on this host) -> the failure as this host's limit | nil. No
-- change to the tree installs it, so a deploy skips the checks rather than filing a bug
-- (orket.sandboxes.deploy.host_limit). A path (./server) names the tree's file: the app's.
function Sandbox:_missing_program()
  local prog = self.exec_prog
  if not prog or prog:find("/", 1, true) or rt.errno_text(self.exec_errno or 0) ~= "ENOENT" then return nil end
  local path = self.plan.env and self.plan.env.PATH or "/usr/local/bin:/usr/bin:/bin"
  return string.format("%s%s is not installed here: %s; the sandbox looks for it in PATH=%s, and of the "
    .. "host's programs sees only those under /usr (not /opt, not a home folder): install it there on this host, or "
    .. "name the program by its path in the tree (sandbox.command)", M.HOST_LIMIT, inert.clip(prog, 80),
    (self.failure:gsub("^sandbox: ", "")), inert.clip(path, 200))
end

--- dir_of(row) -> the directory of a sandbox row's socket (its home, holding app.log) | nil
function M.dir_of(row)
  return row and type(row.socket) == "string" and row.socket:match("^(.*)/[^/]+$") or nil
end

--- read_report(pipe, st, refused, prefix): reads the confinement helper's report
--- (confine.h) from pipe, line by line: an F line (a layer it could not apply) sets
--- st.failure to "REFUSED (LAYER): MESSAGE", an E line (the exec failed) to "PREFIX" ..
--- errors.exec_failure(...), and an R line (its relays listen) st.relay_ready
function M.read_report(pipe, st, refused, prefix)
  local buf = ""
  pipe:read_start(function(_, data)
    if not data then return end
    buf = buf .. data
    while true do
      local line, rest = buf:match("^([^\n]*)\n(.*)$")
      if not line then break end
      buf = rest
      local layer, msg = line:match("^F (%S+) (.*)$")
      if layer then st.failure = refused .. " (" .. layer .. "): " .. msg end
      local errno, prog = line:match("^E (%d+) (.*)$")
      if errno then
        st.failure = prefix .. errors.exec_failure(errno, prog)
        st.exec_errno, st.exec_prog = math.tointeger(tonumber(errno)), prog
      end
      if line:match("^R ") then st.relay_ready = true end
    end
    if #buf > 4096 then buf = "" end
  end)
end

function Sandbox:_spawn(hargv, henv)
  local pout, perr, prep = uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false)
  self.pipes = { pout, perr, prep }
  local handle, pid = uv.spawn(hargv[1], { args = { table.unpack(hargv, 2) }, stdio = { nil, pout, perr, prep },
    env = henv, detached = true }, function(code, sig)
      -- only noted here: what follows (the store, the files) is done by the task watching
      self.exited = { code = code, signal = sig }
      if self.handle and not self.handle:is_closing() then self.handle:close() end
      if self.kill_timer and not self.kill_timer:is_closing() then self.kill_timer:close() end
    end)
  if not handle then
    for _, pp in ipairs(self.pipes) do pp:close() end
    self.failure = "sandbox: cannot start the runner: " .. tostring(pid)
    return false
  end
  self.handle, self.pid = handle, pid
  -- a line reader a pipe: a line is taken whole from the pipe it came on, never joined
  -- with the other's text
  local function to_log()
    local said = M.line_reader(function(line) self:_said_line(line) end)
    return function(_, data)
      if not data then return end
      self.log:write(data)
      -- the runner of several services says each start: the start's probes come soon again
      if data:find(supervise.SAY .. "starting ", 1, true) then self.progressed = true end
      if self.entry_name then said(data) end
    end
  end
  pout:read_start(to_log())
  perr:read_start(to_log())
  M.read_report(prep, self, "sandbox: the runner refused", "sandbox: ")
  return true
end

-- A stop asked by another process (M.stop): the file STOP in the sandbox's directory, with
-- the reason. Its owner looks for it (the start and the watch, every 100 ms at most), so a
-- stop never signals the owner, which may be `orket serve` with other work than this one.
local STOP = "stop"
--- how long a stop asked of another process waits for the owner to take it and end the
--- sandbox, besides the owner's stop time once it says it is stopping
M.STOP_WAIT_MS = 5000

--- sb:_stop_asked() -> the reason of a stop another process asked for | nil (the request
--- is taken: the file removed)
function Sandbox:_stop_asked()
  local path = self.home .. "/" .. STOP
  if not uv.fs_stat(path) then
    -- the sandbox's directory removed (its project deleted): no stop can be asked any more,
    -- and the app's copy of the tree went with it
    if not uv.fs_stat(self.home) then return "its directory was removed" end
    return nil
  end
  local f = io.open(path, "r")
  local why = f and f:read(512) or ""
  if f then f:close() end
  os.remove(path)
  why = why:gsub("[%c]", " "):match("^%s*(.-)%s*$")
  return why ~= "" and why or "stopped"
end

function Sandbox:_exit_text()
  local e = self.exited or {}
  if e.signal and e.signal ~= 0 then return "signal " .. e.signal end
  return "status " .. tostring(e.code)
end

-- The script of several services says which one ended or failed its start; the row's detail
-- names it then ("the app exited (status 1): backend ended (status 3)"), not only the
-- script's own status. Only whole lines beginning with supervise.SAY are the script's: a
-- service's lines reach the same pipe as "[name] ...".
local SAID = { "^(.+ ended %(status %d+%) before it was healthy)", "^(.+ ended %(status %d+%))",
  "^(.+ was not healthy .+)", "^([%a][%w_-]*: .+ failed %(status %d+%))$", "^([%a][%w_-]*: .+ failed)$",
  "^([%a][%w_-]*: its port %d+ .+ was taken before it started, .+)$" }

function Sandbox:_said_line(line)
  if line:sub(1, #supervise.SAY) ~= supervise.SAY then return end
  if self.entry_mark and line:sub(1, #self.entry_mark) == self.entry_mark then self.entry_mark = nil end
  if self.settle_mark and not self.entry_mark and line:sub(1, #self.settle_mark) == self.settle_mark then
    self.settled = true
  end
  if self.all_mark and line == self.all_mark then self.all_mark = nil end
  local words = line:sub(#supervise.SAY + 1)
  local name, port = words:match("^starting (%S+) on port (%d+)")
  if name then self.starting_name, self.starting_port = name, port
  else self.starting_name = words:match("^starting (%S+)") or self.starting_name end
  for _, pat in ipairs(SAID) do
    local what = words:match(pat)
    if what then self.said = what:sub(1, 300) break end
  end
end

--- line_reader(on_line[, max]) -> read(data): hands on_line each whole line of what one
--- pipe gave so far. A line still unended after max bytes (400) is a service's (the
--- script's own lines are short): it is dropped up to its end, never taken from its middle.
function M.line_reader(on_line, max)
  max = max or 400
  local carry, skip = "", false
  return function(data)
    local buf = carry .. data
    if skip then
      local nl = buf:find("\n", 1, true)
      if not nl then carry = "" return end
      buf, skip = buf:sub(nl + 1), false
    end
    -- plain finds, each byte looked at once: the patterns "([^\n]*)\n" and "[^\n]*$" try
    -- every start in a line that has no end yet (and the latter in every line), which is
    -- quadratic: a service writing 5000-byte lines held its owner's CPU at 1.4 s a 64 KiB
    -- read, its log and its stop falling behind
    local at = 1
    while true do
      local nl = buf:find("\n", at, true)
      if not nl then break end
      on_line(buf:sub(at, nl - 1))
      at = nl + 1
    end
    carry = buf:sub(at)
    if #carry > max then carry, skip = "", true end
  end
end

-- what the script said of its end, after the app's: ": backend ended (status 3)" | ""
function Sandbox:_said_text()
  return self.said and (": " .. self.said) or ""
end

function Sandbox:_set(status, detail, kind)
  if self.status == status or self.ended then return end
  self.status = status
  record(self.db, self.id, status, detail, nil, kind, { id = self.id, target = self.target, detail = detail })
  self.emit { type = "sandbox", id = self.id, status = status, detail = detail }
end

-- Records the end once: stopped (asked) or exited (the app ended, or failed to start).
function Sandbox:_end(status, detail)
  if self.ended then return end
  self.ended = true
  self.status = status
  local e = self.exited or {}
  record_end(self.db, self.id, status, detail, { code = e.code, signal = e.signal },
    status == "stopped" and "sandbox_stop" or "sandbox_exit", { id = self.id, target = self.target, detail = detail,
      code = e.code, signal = e.signal })
  self.emit { type = "sandbox", id = self.id, status = status, detail = detail }
end

-- Once the app has ended: closes the pipes and the log, removes the tree's copy (the log
-- stays for `orket sandbox logs`) and records the end (stopped when asked, else exited).
function Sandbox:_finish()
  if self.finishing then return end
  self.finishing = true
  for _, pp in ipairs(self.pipes or {}) do
    if not pp:is_closing() then pp:close() end
  end
  if self.log then self.log:close() end
  -- its databases wait for the next sandbox of its target while a phase is open and they
  -- are its line (hands_on); else they go with the temp folder. Handed on first (a rename):
  -- an owner killed while the tree's copy (maybe a large one) is removed has already kept them
  if self.databases then
    database.put_kept(self.dir, self.target, self.home, self.databases, hands_on(self.db, self.home))
  end
  tree.remove(self.home .. "/tree")
  tree.remove(self.home .. "/tmp")
  os.remove(self.home .. "/" .. STOPPING)
  if self.stopping then self:_end("stopped", self.stopping)
  else self:_end("exited", string.format("the app exited (%s)%s", self:_exit_text(), self:_said_text())) end
  -- the end is recorded: only now may a look from elsewhere find the owner's lock free (it
  -- would record an end of its own, and remove what this one hands on)
  if self.owner_lock then self.owner_lock:release() end
  -- only now: a waiter (stop, wait) may close the store next, and on PostgreSQL the record
  -- above waited on the loop
  self.finished = true
end

-- Stops the app, once: as `docker stop`, it is asked to end, and what is left when its stop's
-- time is over is killed. SIGUSR1 has the helper send the program SIGTERM (the app, or the
-- script of several services, which signals each in their order: orket.sandboxes.supervise);
-- SIGTERM, at the bound, has it kill every process of the sandbox. The owner's own end
-- (killed) ends the helper, and every process with it, as before.
function Sandbox:_kill()
  if self.killing or not self.handle or self.handle:is_closing() or self.exited then return end
  self.killing = true
  self.handle:kill("sigusr1")
  local t = uv.new_timer()
  self.kill_timer = t
  t:start(self.stop_bound_ms or M.STOP_TIMEOUT_MS, 0, function()
    if not t:is_closing() then t:close() end
    if self.handle and not self.handle:is_closing() and not self.exited then self.handle:kill("sigterm") end
  end)
  -- (another process's stop waits for the end as long as this may take: M.stop)
  if self.home then
    local f = io.open(self.home .. "/" .. STOPPING, "w")
    if f then
      f:write(tostring(self.stop_bound_ms or M.STOP_TIMEOUT_MS))
      f:close()
    end
  end
end

-- Probes every interval: unhealthy after `failures` in a row, healthy again at the next
-- success.
function Sandbox:_watch()
  local h, misses = self.plan.health, 0
  local next_probe = uv.now() + h.interval_ms
  while not self.exited do
    rt.sleep(math.min(100, h.interval_ms))
    local asked = not self.stopping and self:_stop_asked()
    if asked then
      self.stopping = asked
      self:_kill()
    end
    -- an entry without a check or a port is healthy while it runs; its end ends the sandbox
    if not self.exited and not self.settle_mark and uv.now() >= next_probe then
      local good, why = probe(self)
      next_probe = uv.now() + h.interval_ms
      if self.exited then break end
      if good then
        misses = 0
        self:_set("healthy", nil, "sandbox_healthy")
      else
        misses = misses + 1
        if misses >= h.failures then self:_set("unhealthy", why, "sandbox_unhealthy") end
      end
    end
  end
  self:_finish()
end

--- sb:stop(why) -> true: stops the app (its whole tree) and waits for it to end
function Sandbox:stop(why)
  if self.finished then return true end
  self.stopping = why or "stopped"
  self:_kill()
  while not self.finished do rt.sleep(20) end
  return true
end

--- sb:wait(): waits (in the calling task) until the app ends
function Sandbox:wait()
  while not self.finished do rt.sleep(100) end
end

-- ---- sandboxes another process owns ------------------------------------------------------

-- the row of sandbox id, live | nil, message, CODE (none such, or ended already)
local function live_row(db, id)
  local row = ops.get(db, id)
  if not row then return nil, "sandbox " .. tostring(id) .. ": no such sandbox", "ENOENT" end
  if not ops.LIVE[row.status] then
    return nil, string.format("sandbox %d is %s already", row.id, row.status), "EINVAL"
  end
  return row
end

--- stop(db, id [, why [, stopping]]) -> true | nil, message, CODE: asks the owner of a live sandbox to
--- stop it (through the sandbox's directory: the owner, a background `orket sandbox up` or
--- `orket serve`, sees the request within 100 ms and records the stop, why its detail), or
--- marks a sandbox whose owner is gone. stopping(): a reason once the caller was asked to
--- stop: the wait for the owner ends (nil, that reason, "ECANCELED"), the stop still asked
function M.stop(db, id, why, stopping)
  local row, why_not, code = live_row(db, id)
  if not row then return nil, why_not, code end
  if not owner_alive(row) then
    M.reconcile(db)
    return true
  end
  -- asked through its directory, never by a signal: the owner may be a server
  local home = home_of(row)
  if not home then return nil, "sandbox " .. id .. ": its directory is not known", "EINVAL" end
  -- another machine's owner sees the request only through a folder both share
  if M.where(row) == "elsewhere" and not uv.fs_stat(home) then
    return nil, string.format("sandbox %d runs %s (%s) whose folder this one does not share: stop it there "
      .. "(orket sandbox stop %d), or, when it is gone, end its row: orket sandbox stop --force %d",
      row.id, M.runs_on(row), M.machine_of(row) or "?", row.id, row.id), "EINVAL"
  end
  local tmp = string.format("%s/%s.%d", home, STOP, uv.os_getpid())
  local f, ferr = io.open(tmp, "w")
  if not f then return nil, "sandbox " .. id .. ": cannot ask its owner to stop it: " .. tostring(ferr), "EPERM" end
  f:write(why or "stopped")
  f:close()
  local ok, rerr = os.rename(tmp, home .. "/" .. STOP)
  if not ok then
    os.remove(tmp)
    return nil, "sandbox " .. id .. ": cannot ask its owner to stop it: " .. tostring(rerr), "EPERM"
  end
  -- the owner records the end; wait for it a little, and once it says it is stopping (its
  -- services given their time to end: Sandbox:_kill), as long as that may take
  local t0, limit, took, looked = uv.now(), M.STOP_WAIT_MS, false, uv.now()
  while true do
    local r = ops.get(db, id)
    if r and not ops.LIVE[r.status] then return true end
    -- its owner killed meanwhile (the sandbox ended with it): marked so, as when it was
    -- gone before the ask, not waited for to the end of its stop's time
    if r and uv.now() - looked >= 500 then
      looked = uv.now()
      if not owner_alive(r) then
        M.reconcile(db)
        return true
      end
    end
    local asked = stopping and stopping()
    if asked then return nil, asked, "ECANCELED" end
    if not took then
      local f = io.open(home .. "/" .. STOPPING, "r")
      local ms = f and math.tointeger(tonumber(f:read(16)))
      if f then f:close() end
      -- (bounded: the file is the app's owner's, but a folder others may write)
      if ms and ms > 0 then
        took, limit = true, math.max(limit, uv.now() - t0 + math.min(ms, 3600000) + M.STOP_WAIT_MS)
      end
    end
    if uv.now() - t0 >= limit then break end
    rt.sleep(25)
  end
  return nil, string.format("sandbox %d: its owner did not stop it within %d s", id, limit // 1000), "ETIMEDOUT"
end

--- force_stop(db, id, who [, stopping]) -> true | nil, message, CODE: ends a live sandbox
--- whose owner cannot be asked: another machine's whose folder is not shared here (that
--- machine gone for good), or a shared folder's whose owner does not answer and holds no
--- lock here. Its row is marked exited, who forced it in its detail; no file is touched
--- (what it left is that machine's, or stays for a person to read). A sandbox whose owner
--- can be judged or asked from here is stopped as stop does; one whose owner's lock is
--- held here is never forced (its owner is alive: its stop answered, or it is refused).
function M.force_stop(db, id, who, stopping)
  local row, why_not, code = live_row(db, id)
  if not row then return nil, why_not, code end
  if not M.unreachable(row) then
    local ok, err, code = M.stop(db, id, nil, stopping)
    -- a shared folder's owner that did not answer, with no lock to say it is alive (a row
    -- older than the lock, or a machine gone): forced below. Any other failure stands.
    if ok or code ~= "ETIMEDOUT" or M.owner_lock(row) ~= nil or M.where(row) ~= "elsewhere" then
      return ok, err, code
    end
    row = ops.get(db, id)
    if not (row and ops.LIVE[row.status]) then return true end
  end
  local detail = string.format("ended by force (%s): its owner (pid %s on %s) could not be asked; nothing of it was "
    .. "removed", who or "orket sandbox stop --force", tostring(row.owner_pid), tostring(M.machine_of(row) or "?"))
  local ok, err = record(db, row.id, "exited", detail, nil, "sandbox_exit",
    { id = row.id, target = row.target, detail = detail, forced = true })
  if not ok then return nil, "sandbox " .. row.id .. ": " .. tostring(err), "EIO" end
  return true
end

-- owner.log's size past which the next owner's start moves it to owner.log.1 (the one
-- before dropped): every detached owner appends to it, for as long as the folder lives
M.OWNER_LOG_MAX = 1 << 20

--- owner_output(home) -> path, descriptor open to append (nil: it could not be opened),
--- its stat: home's owner.log, moved to owner.log.1 first once it holds OWNER_LOG_MAX
function M.owner_output(home)
  local path = home .. "/owner.log"
  local st = uv.fs_stat(path)
  if st and st.size >= M.OWNER_LOG_MAX then os.rename(path, path .. ".1") end
  local fd = uv.fs_open(path, "a", 384)
  return path, fd, fd and uv.fs_fstat(fd)
end

--- owner_file(path, ino) -> the owner's output file of inode ino open to read, at path or
--- moved to PATH.1 since | nil (moved on twice, or ino unknown and path gone)
function M.owner_file(path, ino)
  for _, p in ipairs { path, path .. ".1" } do
    local st = uv.fs_stat(p)
    if st and (ino == nil or st.ino == ino) then return io.open(p, "r") end
    if ino == nil then return nil end
  end
  return nil
end

--- start_owner(dir, {replace=, commit=, card=, run=, on_exit=}) -> pid, path of its output,
--- where its output begins in that file (every owner appends to it), the file's inode (it
--- may be moved to PATH.1 meanwhile: owner_output) | nil, message:
--- `orket sandbox up [--replace] [--commit ID] [--card CARD [--run RUN]] -C DIR` in the
--- background, in its own session, its own output (not the app's: that is the sandbox's log)
--- appended to .orket/sandboxes/owner.log; on_exit(code) hears it end. card: the merged card
--- whose acceptance checks run once it is healthy (run: the run that merged it, for the
--- journal). The process is not waited for: it owns the sandbox it starts.
function M.start_owner(dir, o)
  o = o or {}
  local home = (uv.fs_realpath(dir) or dir) .. "/.orket/sandboxes"
  uv.fs_mkdir(home, 448)
  local out_path, out, ost = M.owner_output(home)
  local null = uv.fs_open("/dev/null", "r", 0)
  local handle, pid
  local args = { "sandbox", "up", "-C", dir }
  if o.replace then args[#args + 1] = "--replace" end
  if o.commit then
    args[#args + 1] = "--commit"
    args[#args + 1] = o.commit
  end
  if o.card then
    args[#args + 1] = "--card"
    args[#args + 1] = o.card
    if o.run then
      args[#args + 1] = "--run"
      args[#args + 1] = tostring(o.run)
    end
  end
  handle, pid = uv.spawn(uv.exepath(), { args = args,
    stdio = { null, out or null, out or null }, detached = true }, function(code)
      if handle and not handle:is_closing() then handle:close() end
      if o.on_exit then o.on_exit(code) end
    end)
  uv.fs_close(null)
  if out then uv.fs_close(out) end
  if not handle then return nil, tostring(pid) end
  handle:unref()
  return pid, out_path, ost and ost.size or 0, ost and ost.ino
end

--- list(db, all) -> the sandboxes (live ones unless all), after reconcile (other machines'
--- live rows as recorded)
function M.list(db, all)
  M.reconcile(db)
  return ops.list(db, all)
end

--- get(db, id) -> the sandbox's row | nil (no such sandbox); raises on a store error (not
--- "no such sandbox"). A live row of this machine whose owner is gone is marked exited first
--- (a server killed and started again would otherwise read its old sandbox healthy while
--- nothing answers on its socket); another machine's is returned as recorded (where)
function M.get(db, id)
  local row = ops.get(db, id)
  if row and ops.LIVE[row.status] and not owner_alive(row) then
    M.reconcile(db)
    row = ops.get(db, id)
  end
  return row
end

return M
