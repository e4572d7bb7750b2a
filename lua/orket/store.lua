-- orket.store: the board's database. open() creates or migrates the file (see
-- orket.store.migrations), and the object it returns wraps the C connection
-- (orket.c.store) with the append-only event journal and the record_* API the engine
-- uses for runs, turns, tool calls, gate decisions and policy violations: each record and
-- its journal event are written in one transaction.
local cstore = require "orket.c.store"
local lockfile = require "orket.c.lockfile"
local uv = require "luv"
local rt = require "orket.c.runtime"
local task = require "orket.task"
local json = require "cjson.safe"
local records = require "orket.store.records"
local dialect = require "orket.store.dialect"

local M = {}
M.migrations = require "orket.store.migrations"

-- SQL for "now" as stored everywhere: ISO 8601 UTC with milliseconds, the format of
-- strftime('%Y-%m-%dT%H:%M:%fZ', 'now'). orket_now() is core/store.c's: the transaction's
-- time, formatted once per transaction instead of once per row.
M.NOW = "orket_now()"
local NOW = M.NOW

local DB = {}
DB.__index = DB
DB.backend = "sqlite" -- orket.store.pgdb's are "pg"; the named operations dispatch on it
DB.dialect = dialect.sqlite -- what an operation's SQL takes from its backend (orket.store.dialect)

local encode = records.encode
M.encode = encode

local function mkdir_p(dir)
  local path = ""
  for part in dir:gmatch("[^/]+") do
    path = (path == "" and dir:sub(1, 1) ~= "/") and part or (path .. "/" .. part)
    if not uv.fs_stat(path) then
      local ok, err = uv.fs_mkdir(path, 493) -- 0755
      if not ok and not uv.fs_stat(path) then return nil, err end
    end
  end
  return true
end

local function too_new(path, v, n)
  return nil, string.format("store: %s has schema version %d, newer than this orket knows (%d); "
    .. "use a newer orket", path, v, n), "EVERSION"
end

-- A file's schema version, read without changing it -> n | nil (no database, or not one)
local function version_of(file)
  local c = cstore.open(file, false, true)
  if not c then return nil end
  local v = c:version()
  c:close()
  return v
end

-- Removes a copy that was not finished, and what SQLite left beside it
local function remove_part(file)
  for _, f in ipairs { file, file .. "-journal", file .. "-wal", file .. "-shm" } do uv.fs_unlink(f) end
end

-- The file as an older orket left it, kept beside it before an upgrade (PATH-schemaN.db,
-- 0600 as the store): an upgrade is one-way, so a rollback to that orket opens this copy
-- (docs/guide/deploying.md, "Upgrading"). Written under a name of this process's and put
-- in place only once it reads back at version v: a copy cut short (a full disk, a file-size
-- limit, a kill) is never the one said kept. -> its path | nil, why not (the upgrade goes on)
local function keep_before_upgrade(conn, path, v)
  local kept = (path:gsub("%.db$", "")) .. "-schema" .. v .. ".db"
  -- (always made anew: one left by an earlier upgrade, gone back from since, is older than
  -- the file now; a racing process's is replaced by an equal one)
  local part = kept .. ".part-" .. uv.os_getpid()
  remove_part(part)
  local ok, err = conn:exec("VACUUM INTO '" .. part:gsub("'", "''") .. "'")
  -- (read back: another process may have upgraded the store between the version read and
  -- the copy, which is then no copy of version v)
  if not ok or version_of(part) ~= v then
    remove_part(part)
    return nil, ok and "the store changed while it was copied" or tostring(err)
  end
  uv.fs_chmod(part, 384) -- 0600: it holds what the store holds (the accounts' hashes)
  local moved, merr = uv.fs_rename(part, kept)
  if not moved then
    remove_part(part)
    return nil, tostring(merr)
  end
  return kept
end

-- Applies the migrations newer than the file's version, all in one transaction: an upgrade
-- that fails part way leaves the file at the version it had, which the orket that made it
-- still opens (one saved step before a failing one left a version no orket could open, nor
-- restore a backup into). The version is re-read inside it so two processes opening a new
-- file do not both apply them.
local function migrate(conn, path, list, upto)
  for i, m in ipairs(list) do
    assert(m.version == i, "store migrations must be numbered 1, 2, 3, ...")
  end
  local latest = upto or #list
  local v, err, code = conn:version()
  if not v then return nil, err, code end
  if v > #list then return too_new(path, v, #list) end
  if v >= latest then return true end
  -- (a new file, version 0, has nothing an older orket made; a test's upto no user's)
  local upgrade = v > 0 and not upto and { from = v, to = latest }
  if upgrade then upgrade.kept, upgrade.not_kept = keep_before_upgrade(conn, path, v) end
  local m
  local ok, merr, mcode = conn:tx(function()
    -- another process may have upgraded it meanwhile (further, even): never lowered here,
    -- nor said upgraded by this one
    local at = conn:version()
    if at >= latest then
      upgrade = nil
      return true
    end
    for i = at + 1, latest do
      m = list[i]
      if m.apply then m.apply(conn) else assert(conn:exec(m.sql)) end
    end
    m = nil
    assert(conn:set_version(latest))
    return true
  end)
  if not ok then
    return nil, string.format("store: %s: migration %d (%s) failed: %s; nothing of the upgrade was kept (the "
      .. "file is at schema version %d, as before)", path, m and m.version or latest, m and m.name or "its version",
      merr, v), mcode
  end
  return true, upgrade or nil
end

-- A read-only connection cannot migrate: an older file is refused with what to do.
local function check_readonly_version(conn, path, n)
  local v, err, code = conn:version()
  if not v then return nil, err, code end
  if v > n then
    return too_new(path, v, n)
  elseif v < n then
    return nil, string.format("store: %s has schema version %d and cannot be upgraded to %d while it is "
      .. "read-only; run a command that writes (orket import) where it is writable", path, v, n), "EVERSION"
  end
  return true
end

-- An empty file where a store was (truncated by a crash, a full disk, a mistaken `: >`) is
-- refused: SQLite would take it for a new database, and the first command, a reader too,
-- would make an empty board over it. A file SQLite made and never wrote keeps its first
-- write in the WAL beside it.
local function emptied(path)
  local st = uv.fs_stat(path)
  if not (st and st.type == "file" and st.size == 0) then return nil end
  local wal = uv.fs_stat(path .. "-wal")
  if wal and wal.size > 0 then return nil end
  return string.format("store: cannot open %s: the file is empty (0 bytes), which no store is: `orket restore` a "
    .. "backup, or remove the file to start a new board (what the old one's cards made stays on main: importing "
    .. "and running them again does their work again)", path)
end

-- A new store is 0 bytes too, from SQLite's creating it to its first write (the header,
-- within cstore.open): the process making it holds this lock meanwhile, so an empty file is
-- judged only once no one holds it (two first commands at once on a new project, a serve
-- and a worker unit started together, called the other's new store damaged). Its file is
-- there only while a store is being made: its holder removes it.
local function creation_lock(path) return path .. ".lock" end

-- How long a process waits for another that is making the store (ms)
M.CREATE_WAIT_MS = 5000

local function creator_stuck(path, pid)
  return string.format("store: cannot open %s: another process%s is making it (it holds %s) and has not "
    .. "finished in %d ms; try again", path, pid and (" (pid " .. pid .. ")") or "", creation_lock(path),
    M.CREATE_WAIT_MS)
end

-- emptied(path) once no process is making the store: a reader waits, without taking the
-- lock (a read-only folder, and no lock file left behind)
local function emptied_settled(path)
  if not emptied(path) then return nil end
  local deadline = uv.hrtime() + M.CREATE_WAIT_MS * 1000000
  local held, pid = lockfile.probe(creation_lock(path))
  while held and uv.hrtime() < deadline do
    uv.sleep(2)
    held, pid = lockfile.probe(creation_lock(path))
  end
  local empty = emptied(path)
  if empty and held then return creator_stuck(path, pid), "EBUSY" end
  return empty, "ECORRUPT"
end

-- cstore.open(path, true) of a file not there or empty, under the creation lock: one
-- another process made meanwhile is opened as it is, and one still empty is damaged. Where
-- the lock cannot be made (a folder this process may not write) nothing can be created
-- either: SQLite's open says why, as before.
local function create_file(path)
  local lock = creation_lock(path)
  local lk, _, lcode = lockfile.wait(lock, "exclusive", M.CREATE_WAIT_MS)
  if not lk and lcode == "EBUSY" then
    local _, pid = lockfile.probe(lock)
    return nil, creator_stuck(path, pid), "EBUSY"
  end
  local conn, err, code
  local empty = emptied(path)
  if empty then err, code = empty, "ECORRUPT" else conn, err, code = cstore.open(path, true) end
  if lk then
    uv.fs_unlink(lock)
    lk:release()
  end
  return conn, err, code
end

--- open(path, opts) -> db | nil, msg, CODE
--- opts.create (default true): create the file and its directory when missing (else ENOENT).
--- opts.readonly: only read (nothing is created, migrated or written; the file must be at
--- the latest schema version); a board on a read-only file system opens this way.
--- opts.upto: migrate only up to this version (tests of older schemas).
function M.open(path, opts)
  if type(path) ~= "string" then error("bad argument #1 to 'open' (string expected, got " .. type(path) .. ")", 2) end
  opts = opts or {}
  local create = opts.create ~= false and not opts.readonly
  if not create and not uv.fs_stat(path) then
    return nil, "store: no database at " .. path, "ENOENT"
  end
  if not create then
    local empty, ecode = emptied_settled(path)
    if empty then return nil, empty, ecode end
  end
  if opts.readonly then
    local conn, err, code = cstore.open(path, false, true)
    if not conn then return nil, err, code end
    local ok, verr, vcode = check_readonly_version(conn, path, #M.migrations)
    if not ok then
      conn:close()
      return nil, verr, vcode
    end
    return setmetatable({ conn = conn, path = path, readonly = true }, DB)
  end
  local dir = path:match("^(.*)/[^/]+$")
  if create and dir and dir ~= "" then
    local ok, err = mkdir_p(dir)
    if not ok then return nil, "store: cannot create " .. dir .. ": " .. tostring(err), "ECANTOPEN" end
  end
  local st = uv.fs_stat(path)
  local conn, err, code
  if not create or (st and st.size > 0) then conn, err, code = cstore.open(path, create)
  else conn, err, code = create_file(path) end
  if not conn then return nil, err, code end
  local ok, merr, mcode = migrate(conn, path, M.migrations, opts.upto)
  if not ok then
    conn:close()
    return nil, merr, mcode
  end
  -- upgraded: {from=, to=, kept= | not_kept=}, said by the opener (orket.project)
  return setmetatable({ conn = conn, path = path, upgraded = merr }, DB)
end

M.latest_version = #M.migrations

--- open_url(url, opts) -> db | nil, msg, CODE: the store on the PostgreSQL server at url
--- (orket.store.pgdb, migrated by orket.store.pg_schema), with this module's API.
function M.open_url(url, opts)
  -- lazy: the PostgreSQL backend (pool, schema, journal) loads only for a store URL
  return require("orket.store.pgdb").open(url, opts)
end

-- Thin pass-throughs to the connection (see core/lstore.c for their contracts).
function DB:exec(sql) return self.conn:exec(sql) end
function DB:run(sql, ...) return self.conn:run(sql, ...) end
function DB:rows(sql, ...) return self.conn:rows(sql, ...) end
function DB:row(sql, ...) return self.conn:row(sql, ...) end
function DB:version() return self.conn:version() end

-- How often a write transaction looks again for the write lock another connection of this
-- process holds (waiting on the loop, for at most the busy timeout: core/lstore.c's tx)
M.HELD_POLL_MS = 5

-- What such a transaction does meanwhile: it sleeps on the loop when it is called in a
-- task, and says it cannot wait otherwise (it then fails at once, EBUSY)
cstore.set_held_wait(function()
  if not task.current() then return false end
  rt.sleep(M.HELD_POLL_MS)
  return true
end)

--- db:tx(fn, ...) -> fn's results | nil, msg, CODE. Rolls back when fn raises or returns
--- nil, msg[, CODE]. Nests (savepoints). fn cannot wait on the loop. While another
--- connection of this process holds the file's write lock (a transaction begun by hand and
--- kept open across a wait), the outermost one called in a task waits on the loop before
--- it begins, fn not yet run, for at most the busy timeout in all; then (or outside a
--- task) it fails, EBUSY, as a lock another process held past the busy timeout does.
function DB:tx(fn, ...) return self.conn:tx(fn, ...) end

--- db:read(fn, ...) -> fn's results | nil, msg, CODE. As tx, for a group of reads: one
--- snapshot and one WAL read lock instead of one per statement, and no write lock. fn
--- should not write and cannot wait on the loop.
function DB:read(fn, ...) return self.conn:read(fn, ...) end

function DB:close() self.conn:close() end
DB.__close = DB.close

--- db:journal_error([since, owned]) -> message, CODE | nil: the last failure of the database
--- file itself (damaged, read-only, full, I/O, or locked by another connection past the busy
--- timeout, EBUSY: orket.c.store's file_error) since clear_journal_error(). since is
--- PostgreSQL's (orket.store.pgdb answers the same for its server). owned: a set of threads
--- (a run's tasks, Run:journal_broken): a lock counts only when one of them met it, as the
--- process's other tasks' writes wait and fail on their own; the file's own failure counts
--- whoever met it. A run that meets one ends.
function DB:journal_error(_, owned) return cstore.file_error(owned) end
function DB:clear_journal_error() cstore.clear_file_error() end

-- built once: a statement is looked up by its text, and a string built per call is
-- hashed and compared in full each time
local INSERT_EVENT = "INSERT INTO events (at, kind, card_id, run_id, actor, data) VALUES (" .. NOW .. ", ?, ?, ?, ?, ?)"

--- db:event{kind=, card=, run=, actor=, data=} -> event id. Appends one journal row; call
--- it inside the transaction of the change it records.
function DB:event(e)
  if type(e) ~= "table" or type(e.kind) ~= "string" then
    error("bad argument #1 to 'event' (table with a string 'kind' expected)", 2)
  end
  local _, id = assert(self.conn:run(INSERT_EVENT, e.kind, e.card, e.run, e.actor, encode(e.data, "event data")))
  return id
end

-- One statement per case: "?1 IS NULL OR card_id = ?1" kept SQLite off events_card, and one
-- card's few rows cost a walk of the journal from `after` to its end. "+run_id": the run
-- filters the card's rows, it is no index to choose (events has none by run: migration 7).
local EVENTS_OF_CARD = [[SELECT id, at, kind, card_id AS card, run_id AS run, actor, data
    FROM events WHERE card_id = ?1 AND (?2 IS NULL OR +run_id = ?2) AND id > ?3 ORDER BY id LIMIT ?4]]
local EVENTS_AFTER = [[SELECT id, at, kind, card_id AS card, run_id AS run, actor, data
    FROM events WHERE id > ?2 AND (?1 IS NULL OR run_id = ?1) ORDER BY id LIMIT ?3]]

--- db:events{card=, run=, after=, limit=} -> array of {id, at, kind, card, run, actor, data}
function DB:events(q)
  q = q or {}
  local rows
  if q.card ~= nil then
    rows = assert(self.conn:rows(EVENTS_OF_CARD, q.card, q.run, q.after or 0, q.limit or -1))
  else
    rows = assert(self.conn:rows(EVENTS_AFTER, q.run, q.after or 0, q.limit or -1))
  end
  for _, r in ipairs(rows) do r.data = json.decode(r.data) or {} end
  return rows
end

-- the record_* API (orket.store.records) on SQLite's statements, built once
records.install(DB, {
  run = "INSERT INTO runs (target, kind, started_at, data) VALUES (?, ?, " .. NOW .. ", ?)",
  finish_run = "UPDATE runs SET status = ?, ended_at = " .. NOW .. " WHERE id = ?",
  finish_running = "UPDATE runs SET status = ?1, ended_at = " .. NOW .. " WHERE id = ?2 AND (status = 'running' "
    .. "OR (?1 = 'done' AND status IN ('stalled', 'failed')))",
  turn = [[INSERT INTO turns (run_id, card_id, seat, role, turn, model, request,
      response, prompt_tokens, completion_tokens, created_at, data)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ]] .. NOW .. ", ?)",
  tool_call = [[INSERT INTO tool_calls (turn_id, call_id, tool, arguments, result, ok,
    error_code, gate_code, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ]] .. NOW .. ")",
  finish_tool_call = [[UPDATE tool_calls SET result = ?, ok = ?, error_code = ?
      WHERE id = ? AND result IS NULL]],
  gate_decision = [[INSERT INTO gate_decisions (turn_id, tool_call_id, tool, verdict, code,
      reason, remedy, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ]] .. NOW .. ")",
  violation = [[INSERT INTO violations (turn_id, card_id, seat, rule, attempt, detail, remedy, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ]] .. NOW .. ")",
  violations = [[SELECT id, turn_id, seat, rule, attempt, detail, remedy, created_at
      FROM violations WHERE card_id = ? ORDER BY id]],
}, function(v) if v == nil then return nil end return v and 1 or 0 end)

return M
