-- orket.store.backup: a project's store copied to one file and back. SQLite: the online backup
-- API (orket.c.store backup_to / restore_from), the file an orket store itself. PostgreSQL:
-- every table read in one REPEATABLE READ snapshot and written as JSON Lines, restored in
-- one transaction. A file is checked whole before anything is replaced (check).
local cstore = require "orket.c.store"
local json = require "cjson.safe"
local uv = require "luv"
local store = require "orket.store"
local pg_schema = require "orket.store.pg_schema"
local sealed = require "orket.store.sealed"
local lockfile = require "orket.c.lockfile"
local rt = require "orket.c.runtime"
local audit_ops = require "orket.store.audit"
local store_projects = require "orket.store.projects"
local backend = require "orket.store.backend"
local stopsignals = require "orket.stopsignals"
local task = require "orket.task"
local inert = require "orket.inert"

local M = {}

-- A path in a message is printed inert, as orket.config.shown prints one (the store layer
-- reads no config): a newline or an escape sequence in a file's name is written escaped,
-- and cannot split the message or reach the terminal raw. An error of the system or of
-- SQLite, which names the path as given, is made inert whole. Both are idempotent: orket
-- backup and restore find a path in the message by its shown form.
local shown = inert.line
local function inert_err(err) return shown(tostring(err)) end

-- The tables that make a file an orket store (any schema version has them).
local BOARD_TABLES = { "cards", "dependencies", "comments", "events" }

-- The first line of a PostgreSQL export says what follows.
local PG_FORMAT = "orket-pg-backup"

--- format(path) -> "sqlite" | "pg" | nil, msg, CODE: what kind of backup the file is
local function format_of(path)
  local st = uv.fs_stat(path)
  if not st then return nil, shown(path) .. ": no such file", "ENOENT" end
  if st.type ~= "file" then return nil, shown(path) .. ": not a regular file", "ENOTSTORE" end
  local f, err = io.open(path, "rb")
  if not f then return nil, inert_err(err), "EACCES" end
  local head = f:read(16) or ""
  f:close()
  if head == "SQLite format 3\0" then return "sqlite" end
  if head:sub(1, 2) == '{"' then return "pg" end
  return nil, shown(path) .. ": not an orket backup (neither an orket store nor an orket PostgreSQL export)", "ENOTSTORE"
end

-- The objects a SQLite store's schema holds, by "type name", as sqlite_master lists them.
-- SQLite's own statistics and AUTOINCREMENT counters are data the planner and inserts
-- keep, not schema orket makes: left out.
local SCHEMA_SQL = [[SELECT type, name, tbl_name, sql FROM sqlite_master
  WHERE NOT (type = 'table' AND name IN ('sqlite_sequence', 'sqlite_stat1', 'sqlite_stat4'))]]
local function schema_of(conn)
  local out = {}
  for _, r in ipairs(assert(conn:rows(SCHEMA_SQL))) do out[r.type .. " " .. r.name] = r end
  return out
end

--- schema_diff(conn, v[, only]) -> {{what=, why=}, ...} | nil, msg: each object (its type
--- and name, "trigger zz") where the SQLite store on conn (at schema version v) differs
--- from the schema orket's migrations make at v, in name order: why is "which orket's
--- schema does not have", "is missing" or "is defined otherwise than orket's". only: a set
--- of such names, the others not compared (verify's look at the append-only triggers).
--- Only sqlite_master's text is read, nothing in it runs; the reference is a store
--- migrated to v in memory.
function M.schema_diff(conn, v, only)
  local ref, err = store.open(":memory:", { upto = v })
  if not ref then return nil, "its schema cannot be compared with orket's: " .. tostring(err) end
  local want = schema_of(ref.conn)
  ref.conn:close()
  local have, names = schema_of(conn), {}
  for k in pairs(have) do names[#names + 1] = k end
  for k in pairs(want) do if not have[k] then names[#names + 1] = k end end
  table.sort(names)
  local out = {}
  for _, k in ipairs(names) do
    local h, w = have[k], want[k]
    local why = not w and "which orket's schema does not have" or not h and "is missing"
      or (h.sql ~= w.sql or h.tbl_name ~= w.tbl_name) and "is defined otherwise than orket's"
    if why and (not only or only[k]) then out[#out + 1] = { what = k, why = why } end
  end
  return out
end

--- schema_differs(conn, v) -> nil | msg, "ENOTSTORE": whether the SQLite store on conn
--- (at schema version v) holds another schema than orket's migrations make at v: a
--- trigger, view, table or index more or less, or one defined otherwise (schema_diff). A
--- backup's schema becomes the store's, and a trigger planted in it would act on every
--- later write (drop audit entries, grant a role), so it must be orket's own.
function M.schema_differs(conn, v)
  local diff, err = M.schema_diff(conn, v)
  if not diff then return err, "ENOTSTORE" end
  local d = diff[1]
  if not d then return nil end
  return string.format("its schema is not orket's (version %d): %s %s; a backup holds only the schema "
    .. "orket's migrations make, and a planted trigger or view would act on the restored store", v, d.what, d.why),
    "ENOTSTORE"
end

-- the append-only guards: each trigger, its table, and (PostgreSQL) the function it runs
local GUARDS = {
  { name = "audit_log_append_only", table = "audit_log", fn = "audit_log_append_only",
    lets = "the chain's entries can be changed in place" },
  { name = "events_append_only_update", table = "events", fn = "events_append_only",
    lets = "the journal's rows (GET /v1/audit, a card's history) can be changed or reattributed, which no hash shows" },
  { name = "events_append_only_delete", table = "events", fn = "events_append_only",
    lets = "the journal's rows (GET /v1/audit, a card's history) can be deleted, which no hash shows" },
  { name = "events_append_only_truncate", table = "events", fn = "events_append_only",
    lets = "the journal can be emptied at once, which no hash shows", pg = true },
}

local PG_GUARDS = [[SELECT t.tgname AS name, t.tgenabled::text AS enabled, p.proname AS fn, p.prosrc AS src,
    pg_get_triggerdef(t.oid) AS def
  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
  WHERE NOT t.tgisinternal AND t.tgrelid IN ('events'::regclass, 'audit_log'::regclass)]]

-- what PostgreSQL's schema (orket.store.pg_schema) makes of each guard: its trigger's
-- definition as pg_get_triggerdef writes it (the table's schema left out), and its
-- function's body, blanks folded
local function blanks(t) return (tostring(t):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")) end
local function pg_made()
  local defs, bodies = {}, {}
  for _, m in ipairs(pg_schema.migrations) do
    local sql = m.sql or ""
    for fn, body in sql:gmatch("CREATE FUNCTION ([%w_]+)%(%) RETURNS trigger LANGUAGE plpgsql AS %$%$(.-)%$%$") do
      bodies[fn] = blanks(body)
    end
    for name, def in sql:gmatch("CREATE TRIGGER ([%w_]+) (.-);") do defs[name] = blanks(def) end
  end
  return defs, bodies
end

-- each guard's problem on PostgreSQL: missing, not firing on every write (disabled, or
-- enabled for replicas only), defined otherwise than the schema makes it (other events, a
-- WHEN clause, another function), or running a function whose body is not the schema's
-- -> {{guard=, why=}}
local function pg_guards(db)
  local have, out = {}, {}
  local defs, bodies = pg_made()
  for _, r in ipairs(assert(db:rows(PG_GUARDS))) do have[r.name] = r end
  for _, g in ipairs(GUARDS) do
    local h = have[g.name]
    -- pg_get_triggerdef names the table with its schema and says FUNCTION with its own words
    local def = h and blanks(h.def):gsub("^CREATE TRIGGER [%w_]+ ", ""):gsub(" ON [%w_]+%.", " ON ")
    local why = not h and "is missing" or h.enabled == "D" and "is disabled"
      or h.enabled == "R" and "fires for replicas only"
      or (h.fn ~= g.fn or def ~= defs[g.name]) and "is defined otherwise than orket's (" .. tostring(def) .. ")"
      or blanks(h.src) ~= bodies[g.fn] and "runs a function that no longer refuses the change"
    if why then out[#out + 1] = { guard = g, why = why } end
  end
  return out
end

--- guard_problems(db) -> {text, ...}: the triggers that keep the audit's and the journal's
--- rows from being changed (and the journal's from being deleted) that are missing, disabled
--- or defined otherwise than orket's, each named with what that lets through (orket audit
--- verify). SQLite's are compared with the schema orket's migrations make (schema_diff),
--- as a backup's schema is; PostgreSQL's are read from pg_trigger.
function M.guard_problems(db)
  local found = {}
  if db.backend == "pg" then
    found = pg_guards(db)
  else
    local only, by = {}, {}
    for _, g in ipairs(GUARDS) do
      if not g.pg then only["trigger " .. g.name], by["trigger " .. g.name] = true, g end
    end
    local diff, err = M.schema_diff(db.conn, db.conn:version(), only)
    if not diff then return { "the store's append-only triggers cannot be checked: " .. tostring(err) } end
    for _, d in ipairs(diff) do found[#found + 1] = { guard = by[d.what], why = d.why } end
  end
  local out = {}
  for _, f in ipairs(found) do
    local g = f.guard
    out[#out + 1] = string.format("the store's trigger %s (on %s) %s: %s; someone with the database removed "
      .. "or changed it", g.name, g.table, f.why, g.lets)
  end
  return out
end

-- The columns that hold orket's JSON, {{table=, column=}}: read from the PostgreSQL
-- schema, whose json and jsonb columns are them (SQLite keeps them as text; a spec keeps
-- the two schemas' columns the same), so a column added there is checked here too.
local JSON_COLUMNS = (function()
  local out, seen = {}, {}
  local function add(t, c)
    if not seen[t .. "." .. c] then
      seen[t .. "." .. c] = true
      out[#out + 1] = { table = t, column = c }
    end
  end
  for _, m in ipairs(pg_schema.migrations) do
    local sql = m.sql or ""
    for t, body in sql:gmatch("CREATE TABLE ([%w_]+) (%b())") do
      for c in (body:sub(2, -2) .. "\n"):gmatch("%f[%w_]([%w_]+)%s+jsonb?[%s,]") do add(t, c) end
    end
    for t, c in sql:gmatch("ALTER TABLE ([%w_]+) ADD COLUMN ([%w_]+) jsonb?[%s;,]") do add(t, c) end
  end
  return out
end)()
M.JSON_COLUMNS = JSON_COLUMNS

-- The first row of a SQLite store whose JSON column holds no JSON -> "table.column of row
-- (key = value)" and how many such rows | nil. integrity_check reads the pages, not what
-- they hold: a changed byte inside a value passes it, and a JSON value so damaged would
-- make every read that looks inside it fail (a run's costs, a card's history).
local function json_damage(conn)
  for _, jc in ipairs(JSON_COLUMNS) do
    local t, c = jc.table, jc.column
    local cols, key = {}, "rowid"
    for _, r in ipairs(conn:rows(string.format("PRAGMA table_info(%q)", t)) or {}) do
      cols[r.name] = true
      if r.pk == 1 then key = r.name end
    end
    if cols[c] then
      local where = string.format("%q IS NOT NULL AND NOT json_valid(%q)", c, c)
      local bad = conn:row(string.format("SELECT %q AS k FROM %q WHERE %s LIMIT 1", key, t, where))
      if bad then
        local n = conn:row(string.format("SELECT count(*) AS n FROM %q WHERE %s", t, where)).n
        return string.format("%s.%s of row %s = %s", t, c, key, tostring(bad.k)), n
      end
    end
  end
end

-- check of a SQLite file: integrity, schema version, the board's tables, the JSON its JSON
-- columns hold; read-only.
local function check_sqlite(path)
  local conn, err, code = cstore.open(path, false, true)
  if not conn then return nil, inert_err(err), code end
  local function fail(msg, c)
    conn:close()
    return nil, msg, c
  end
  local rows, ierr, icode = conn:rows("PRAGMA integrity_check")
  if not rows then return fail(inert_err(ierr), icode == "ESQL" and "ECORRUPT" or icode) end
  if #rows ~= 1 or rows[1].integrity_check ~= "ok" then
    return fail(string.format("%s: damaged: %s", shown(path), inert_err(rows[1] and rows[1].integrity_check)), "ECORRUPT")
  end
  local v = conn:version()
  for _, t in ipairs(BOARD_TABLES) do
    if not conn:row("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", t) then
      return fail(string.format("%s: not an orket store (it has no %s table)", shown(path), t), "ENOTSTORE")
    end
  end
  if v < 1 or v > store.latest_version then
    return fail(string.format("%s: schema version %d, which this orket (%d) cannot read; use a newer orket",
      shown(path), v, store.latest_version), "EVERSION")
  end
  local differs, dcode = M.schema_differs(conn, v)
  if differs then return fail(string.format("%s: %s", shown(path), inert_err(differs)), dcode) end
  local bad, nbad = json_damage(conn)
  if bad then
    return fail(string.format("%s: damaged: %s is not JSON%s (a changed byte inside a value, which SQLite's "
      .. "integrity check does not see)", shown(path), inert_err(bad),
      nbad > 1 and string.format(", one of %d rows where that column is not", nbad) or ""), "ECORRUPT")
  end
  local n = conn:row("SELECT count(*) AS n FROM cards").n
  local e = conn:row("SELECT id, at FROM events ORDER BY id DESC LIMIT 1")
  conn:close()
  return { format = "sqlite", version = v, cards = n, newest = e and { id = e.id, at = e.at } or nil }
end

-- check of a PostgreSQL export: every line parses, every table's count matches, it ends.
local function read_pg(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, inert_err(err), "EACCES" end
  local head = json.decode(f:read("l") or "")
  if type(head) ~= "table" or head.format ~= PG_FORMAT or not math.tointeger(head.version) then
    f:close()
    return nil, shown(path) .. ": not an orket backup (its first line is no orket PostgreSQL export header)", "ENOTSTORE"
  end
  local tables, cur, ended = {}, nil, false
  local lineno = 1
  for line in f:lines() do
    lineno = lineno + 1
    local x = json.decode(line)
    if type(x) ~= "table" or ended then
      f:close()
      return nil, string.format("%s:%d: damaged export line", shown(path), lineno), "ECORRUPT"
    end
    if x.table then
      cur = { name = x.table, count = x.rows, rows = {} }
      tables[#tables + 1] = cur
    elseif x["end"] then
      ended = x["end"]
    elseif cur and x.row then
      cur.rows[#cur.rows + 1] = x.row
    else
      f:close()
      return nil, string.format("%s:%d: damaged export line", shown(path), lineno), "ECORRUPT"
    end
  end
  f:close()
  if not ended then return nil, shown(path) .. ": the export ends early (truncated)", "ECORRUPT" end
  local seen = {}
  for _, t in ipairs(tables) do
    -- a table twice would be imported twice, and judged as one of its sections
    if seen[t.name] then
      return nil, string.format("%s: table %s appears twice in the export", shown(path), shown(t.name)), "ECORRUPT"
    end
    if #t.rows ~= t.count then
      return nil, string.format("%s: table %s holds %d rows, its header says %d", shown(path), shown(t.name), #t.rows,
        t.count),
        "ECORRUPT"
    end
    seen[t.name] = t
  end
  for _, t in ipairs(BOARD_TABLES) do
    if not seen[t] then
      return nil, string.format("%s: not an orket store (it has no %s table)", shown(path), t), "ENOTSTORE"
    end
  end
  -- an export this orket's PostgreSQL schema has no version of cannot be restored by it:
  -- said by the check, not first by the restore
  local v, latest = math.tointeger(head.version), #pg_schema.migrations
  if v < 1 or v > latest then
    return nil, string.format("%s: an export of schema version %d, which this orket (%d) cannot read; use the orket "
      .. "that made it", shown(path), v, latest), "EVERSION"
  end
  local newest
  for _, r in ipairs(seen.events.rows) do
    local id = math.tointeger(r.id)
    if id and type(r.at) == "string" and (not newest or id > newest.id) then newest = { id = id, at = r.at } end
  end
  return { format = "pg", version = v, cards = #seen.cards.rows, tables = tables, newest = newest }
end

--- check(path) -> {format=, version=, cards=, newest= {id=, at=} | nil (its journal's
--- newest event)} | nil, msg, CODE: whether the file is a backup this orket can restore:
--- undamaged (SQLite's integrity_check and every JSON column's values, or every line and
--- count of an export), an orket store, and a schema version this orket knows.
--- Codes: ENOENT, ENOTSTORE, ECORRUPT, EVERSION.
function M.check(path)
  local fmt, err, code = format_of(path)
  if not fmt then return nil, err, code end
  if fmt == "sqlite" then return check_sqlite(path) end
  local info, perr, pcode = read_pg(path)
  if not info then return nil, perr, pcode end
  info.tables = nil
  return info
end

-- the schema version whose migration made audit_log: a store at it or after has the table
local AUDIT_VERSION = (function()
  for _, m in ipairs(store.migrations) do
    if m.sql and m.sql:find("CREATE TABLE audit_log", 1, true) then return m.version end
  end
  error("no migration makes audit_log")
end)()

--- rows_source(rows) -> rows (each with an integer seq), in seq order, as a chain
--- orket.audit.verify reads (an export's: orket audit verify --file)
local function rows_source(rows)
  table.sort(rows, function(a, b) return a.seq < b.seq end)
  local at = {}
  for _, r in ipairs(rows) do at[r.seq] = r end
  return {
    page = function(after, limit)
      local lo, hi = 1, #rows + 1 -- the first row whose seq is above after
      while lo < hi do
        local mid = (lo + hi) // 2
        if rows[mid].seq > after then hi = mid else lo = mid + 1 end
      end
      return table.move(rows, lo, math.min(lo + limit - 1, #rows), 1, {})
    end,
    get = function(seq) return at[seq] end,
  }
end

M.rows_source = rows_source

--- chain_row(x) -> an export's audit_log row (decoded JSON) as the chain's: JSON nulls
--- absent, card_id as card, seq an integer (nil when it is none)
local function chain_row(x)
  local r = {}
  for k, v in pairs(x) do
    if v ~= json.null then r[k == "card_id" and "card" or k] = v end
  end
  r.seq = math.tointeger(r.seq)
  return r
end
M.chain_row = chain_row

--- audit_source(path) -> src, close | nil, msg, CODE: the audit chain a backup holds,
--- read only, as orket.audit.verify's chain() reads one (src.page(after, limit),
--- src.get(seq)); close() when done. A store older than the chain (schema version 17 and
--- before) holds none: an empty chain.
function M.audit_source(path)
  local fmt, err, code = format_of(path)
  if not fmt then return nil, err, code end
  if fmt == "sqlite" then
    local conn, cerr, ccode = cstore.open(path, false, true)
    if not conn then return nil, inert_err(cerr), ccode end
    if not conn:row("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'") then
      local v = conn:version()
      conn:close()
      if v >= AUDIT_VERSION then
        return nil, string.format("%s: not an orket store (schema version %d has no audit_log table)", shown(path), v),
          "ENOTSTORE"
      end
      return rows_source({}), function() end
    end
    return { page = function(after, limit) return audit_ops.page(conn, after, limit) end,
      get = function(seq) return audit_ops.get(conn, seq) end }, function() conn:close() end
  end
  local info, perr, pcode = read_pg(path)
  if not info then return nil, perr, pcode end
  local rows = {}
  for _, t in ipairs(info.tables) do
    if t.name == "audit_log" then
      for i, x in ipairs(t.rows) do
        rows[i] = chain_row(x)
        if not rows[i].seq then return nil, string.format("%s: an audit_log row without a seq", shown(path)), "ECORRUPT" end
      end
    end
  end
  return rows_source(rows), function() end
end

-- The PostgreSQL tables in the order they were made (each refers only to earlier ones),
-- the schema's own bookkeeping left out.
local function pg_tables(db)
  local rows = assert(db:rows([[SELECT c.relname AS name FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname <> 'orket_schema' ORDER BY c.oid]]))
  local list = {}
  for _, r in ipairs(rows) do list[#list + 1] = r.name end
  return list
end

-- cards parents before children, so the rows go back in without breaking a reference
local ORDER = { cards = " ORDER BY CASE type WHEN 'rock' THEN 0 WHEN 'epic' THEN 1 ELSE 2 END, id" }

-- a write of path (a file orket writes itself: the PostgreSQL export) that failed with
-- io's msg and errno -> msg, CODE: path named, and the cause worded as it is for the
-- store's own files (orket.c.store's write_cause: a file-size limit with its value, a
-- used-up quota), coded ENOSPC as theirs are
local function write_failed(path, err, errno)
  local note, code = cstore.write_cause(math.tointeger(errno) or 0, path)
  if note == "" then note = " (" .. inert_err(err) .. ")" end
  return string.format("%s: cannot be written%s", shown(path), note), code or "EIO"
end

local function pg_export(db, path)
  local out, err = io.open(path, "wb")
  if not out then return nil, inert_err(err), "EACCES" end
  -- every write's result: the first that fails (a full disk, a file-size limit) ends the
  -- export, said of the file
  local failed
  local function put(...)
    local wok, werr, errno = out:write(...)
    if not wok then failed = { werr, errno } end
    return wok
  end
  local ok, rerr, rcode = db:read(function()
    local v = math.tointeger(tonumber(assert(db:version())))
    if not put(json.encode { format = PG_FORMAT, version = v }, "\n") then return nil end
    for _, t in ipairs(pg_tables(db)) do
      local rows = assert(db:rows(string.format("SELECT row_to_json(t)::text AS j FROM %q t%s", t, ORDER[t] or "")))
      if not put(json.encode { table = t, rows = #rows }, "\n") then return nil end
      for _, r in ipairs(rows) do
        if not put('{"row":', r.j, "}\n") then return nil end
      end
    end
    return put('{"end":true}\n') and true
  end)
  local cok, cerr, cerrno = out:close() -- (the buffer's last write)
  if failed then return nil, write_failed(path, failed[1], failed[2]) end
  if not ok then return nil, rerr, rcode end
  if not cok then return nil, write_failed(path, cerr, cerrno) end
  return true
end

local function pg_import(db, path, settle)
  local info, err, code = read_pg(path)
  if not info then return nil, err, code end
  local v = math.tointeger(tonumber(assert(db:version())))
  if info.version ~= v then
    return nil, string.format("%s: an export of schema version %d; this database is at %d: restore it with the "
      .. "orket that made it", shown(path), info.version, v), "EVERSION"
  end
  local have = {}
  for _, t in ipairs(pg_tables(db)) do have[t] = true end
  for _, t in ipairs(info.tables) do
    if not have[t.name] then
      return nil, string.format("%s: table %s is not in this database", shown(path), shown(t.name)), "ENOTSTORE"
    end
  end
  local names = {}
  for t in pairs(have) do names[#names + 1] = string.format("%q", t) end
  table.sort(names)
  return db:tx(function()
    -- the journal is append-only for everyone else; a restore replaces it whole, and the
    -- trigger is back before the transaction commits (DDL is transactional here)
    assert(db:exec("ALTER TABLE events DISABLE TRIGGER events_append_only_truncate"))
    assert(db:exec("TRUNCATE " .. table.concat(names, ", ") .. " RESTART IDENTITY CASCADE"))
    assert(db:exec("ALTER TABLE events ENABLE TRIGGER events_append_only_truncate"))
    for _, t in ipairs(info.tables) do
      local sql = string.format("INSERT INTO %q SELECT * FROM json_populate_record(NULL::%q, $1::json)", t.name, t.name)
      for _, r in ipairs(t.rows) do assert(db:run(sql, json.encode(r))) end
    end
    -- the serial columns go on after the highest restored id
    local serial = assert(db:rows([[SELECT table_name AS t, column_name AS c FROM information_schema.columns
      WHERE table_schema = current_schema() AND (column_default LIKE 'nextval(%' OR is_identity = 'YES')]]))
    for _, s in ipairs(serial) do
      assert(db:row(string.format("SELECT setval(pg_get_serial_sequence('%s', '%s'), coalesce(max(%q), 0) + 1, false) "
        .. "AS v FROM %q", s.t, s.c, s.c, s.t)))
    end
    -- another journal now: the store's id made anew with it (orket.store.projects.renew)
    store_projects.renew(db, have.store_identity)
    return true, settle and settle(db)
  end)
end

-- path.part-PID beside path: renamed onto it once whole and checked
local function part_of(path) return string.format("%s.part-%d", path, uv.os_getpid()) end

-- path's folder ("." for a bare name, "/" at the root) and last name
local function split(path)
  local dir, base = path:match("^(.*)/([^/]*)$")
  if not dir then return ".", path end
  return dir == "" and "/" or dir, base
end

--- sweep_parts(path) -> n: the copies (path.part-PID and its -journal) that backups to path
--- killed before their end left beside it, each a whole store (sealed or not), password
--- hashes and all, removed when no process of that PID lives (a live one's, another backup
--- going, is left alone)
function M.sweep_parts(path)
  local dir, base = split(path)
  local scan = uv.fs_scandir(dir)
  if not scan then return 0 end
  local n, prefix = 0, base .. ".part-"
  while true do
    local name, kind = uv.fs_scandir_next(scan)
    if not name then break end
    local rest = name:sub(1, #prefix) == prefix and name:sub(#prefix + 1)
    local pid = rest and math.tointeger(tonumber(rest:match("^(%d+)$") or rest:match("^(%d+)%-journal$")))
    if pid and kind == "file" and pid ~= uv.os_getpid() then
      -- (a live process, another user's too, is in /proc)
      if not uv.fs_stat("/proc/" .. pid) and os.remove(dir .. "/" .. name) then n = n + 1 end
    end
  end
  return n
end

-- path with its directory's symbolic links and dots resolved, its last name kept (target
-- refuses a link there) | nil when its directory does not exist
local function resolved(path)
  local dir, base = split(path)
  local real = uv.fs_realpath(dir)
  return real and (real:gsub("/$", "") .. "/" .. base)
end

-- The files SQLite keeps beside a store, which are the store as much as it is
local STORE_FILES = { "", "-wal", "-shm", "-journal" }

-- a file or folder's identity, its st_dev and st_ino | nil when it is not there: one folder
-- reached by two paths that no link resolves (a bind mount) is one identity
local function identity(path)
  local st = uv.fs_stat(path)
  return st and string.format("%d:%d", st.dev, st.ino)
end

-- which of store's files (STORE_FILES' suffix) real (a resolved path) names -> suffix | nil.
-- A rename replaces a directory entry: its folder and its name. The folder is told by its
-- identity, so a path through a bind mount of .orket/ is the store too; another name of
-- the file (a hard link) is another entry, which the rename replaces alone.
local function store_file(real, store)
  local sdir, sbase = split(uv.fs_realpath(store) or resolved(store) or store)
  local rdir, rbase = split(real)
  if sdir ~= rdir and (identity(sdir) or false) ~= identity(rdir) then return nil end
  for _, suffix in ipairs(STORE_FILES) do
    if rbase == sbase .. suffix then return suffix end
  end
end

-- the .orket/ real (a resolved path) is inside -> its words | nil: a known project's, by
-- its folder's identity, or any folder named .orket (another project's home, which holds
-- its store, pepper and keys), at any depth (.orket/worktrees/CARD/...)
local function in_home(real, homes)
  local ids = {}
  for _, h in ipairs(homes) do
    local id = identity(h.path)
    if id then ids[id] = ids[id] or h end
  end
  local dir = split(real)
  while true do
    local h = ids[identity(dir) or ""]
    if h then return h.what end
    local up, base = split(dir)
    if base == ".orket" then return string.format("%s, a project's .orket folder", shown(dir)) end
    if up == dir or base == "" then return nil end
    dir = up
  end
end

-- An existing SQLite file is a backup to replace when it holds the board's tables and no
-- connection has it open: a -wal or -shm beside it is a live database's (an orket backup
-- is written in rollback mode, one file). -> nil | why not
local function sqlite_not_backup(path)
  for _, s in ipairs { "-wal", "-shm" } do
    if uv.fs_lstat(path .. s) then
      return string.format("a SQLite database in use: %s is beside it, as beside a live store", shown(path .. s))
    end
  end
  -- a read-only open of a database in WAL mode makes its -wal and -shm (there were none):
  -- removed again
  local conn, err = cstore.open(path, false, true)
  local missing
  if conn then
    for _, t in ipairs(BOARD_TABLES) do
      if not missing and not conn:row("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", t) then
        missing = t
      end
    end
    conn:close()
  end
  os.remove(path .. "-wal")
  os.remove(path .. "-shm")
  if not conn then return "a SQLite file that cannot be read as an orket store: " .. inert_err(err) end
  if missing then return string.format("a SQLite database without the board's %s table", missing) end
end

-- An existing FILE that a backup may replace: one orket wrote (a SQLite store, an
-- encrypted backup, a PostgreSQL export), or an empty file (mktemp's), which holds nothing
-- -> nil | why not. Anything else (orket.lua, a git index, another program's file) would be
-- lost to a mistyped FILE.
local function not_a_backup(path, st)
  if st.size == 0 then return nil end
  local f, err = io.open(path, "rb")
  if not f then return "it cannot be read: " .. inert_err(err) end
  local head = f:read(256) or ""
  f:close()
  if head:sub(1, 16) == "SQLite format 3\0" then return sqlite_not_backup(path) end
  if sealed.is_sealed(path) then return nil end
  local h = json.decode(head:match("^([^\n]*)\n") or "")
  if type(h) == "table" and h.format == PG_FORMAT then return nil end
  return "neither an orket store, an encrypted orket backup nor an orket PostgreSQL export"
end

-- path (its lstat st) refused for its kind -> msg, CODE | nil: a rename replaces a link
-- itself and any node, and a directory is refused only once the copy is made
local function kind_refused(path, st)
  if st.type == "link" then
    return string.format("%s: is a symbolic link (to %s): a backup would replace the link, not the file it "
      .. "leads to; name the file itself", shown(path), shown(tostring(uv.fs_readlink(path)))), "EINVAL"
  end
  if st.type == "directory" then
    return shown(path) .. ": is a directory; give the backup's file name (DIR/board.backup)", "EISDIR"
  end
  if st.type ~= "file" then
    return string.format("%s: not a regular file (a %s): a backup replaces only a regular file", shown(path),
      ({ char = "character device", block = "block device" })[st.type] or st.type), "EINVAL"
  end
end

-- real (path resolved) refused as a hosted project's store (opts.projects) or as a file in
-- a .orket/ folder (the project's opts.home, a hosted one's, any) -> msg | nil
local function hosted_refused(real, path, opts)
  local homes = {}
  if opts.home then homes[1] = { path = opts.home, what = "the project's " .. shown(opts.home) } end
  for _, p in ipairs(opts.projects or {}) do
    local suffix = p.store and store_file(real, p.store)
    if suffix then
      return string.format("%s: is %s of project '%s' (%s), which this project's server hosts: renamed onto it, "
        .. "the copy would be swapped in under the connections that have it open; a backup goes to another file",
        shown(path), suffix == "" and "the store" or ("the " .. suffix:sub(2) .. " file of the store"), shown(p.name),
        shown(p.store .. suffix))
    end
    if p.home then
      homes[#homes + 1] = { path = p.home, what = string.format("the .orket folder of project '%s' (%s)", shown(p.name),
        shown(p.home)) }
    end
  end
  local home = in_home(real, homes)
  if home then
    return string.format("%s: is in %s, which holds its store and keys: keep backups elsewhere", shown(path), home)
  end
end

--- target(db, path[, opts]) -> true | nil, msg, CODE: whether path may become a backup of db.
--- The backup is renamed onto path, and a rename replaces the name it is given, whatever
--- that names. So path may not be a symbolic link: the link itself would be replaced, not
--- the file it leads to (/dev/stdout is one; the check would judge one file and the rename
--- replace another). An existing path must be a regular file: a device node such as
--- /dev/full or a fifo would be replaced, and a directory is refused only once the copy is
--- made. Nor may path be, by its place (its directory's links and dots resolved, or the
--- same directory by its st_dev and st_ino, as through a bind mount), the store or a file
--- SQLite keeps beside it: renamed onto the live store, the copy would be swapped in under
--- the connections that have it open, whose writes would then go to the file unlinked. So
--- for the project's store (db's SQLite file, or opts.store, its path, judged before the
--- store is opened) and for those of opts.projects ({name=, dir=, store=, home=}: the
--- projects its server hosts). Nor a file in a .orket/ folder, the project's (opts.home),
--- a hosted one's or any other (the pepper, the audit's and the secrets' keys are there);
--- nor one of opts.keys ({path=, what=}: a key file the project or this backup needs,
--- followed through its links to the file read). Nor an existing file that is no orket
--- backup (not_a_backup): an earlier backup at path is replaced, orket.lua is not.
--- Another name of one of these (a hard link) is not refused: the rename replaces that name
--- alone. opts.private: path is the private copy's, in .orket/ (plain_place), judged by
--- its shape alone.
function M.target(db, path, opts)
  opts = opts or {}
  local st = uv.fs_lstat(path)
  local msg, code = st and kind_refused(path, st)
  if msg then return nil, msg, code end
  local real = resolved(path)
  if not real then
    -- no such directory: the part file's create says so, but for one a project keeps
    if not opts.private and ("/" .. path):find("/.orket/", 1, true) then
      return nil, string.format("%s: is in a project's .orket folder, which holds its store and keys: keep backups "
        .. "elsewhere", shown(path)), "EINVAL"
    end
    return true
  end
  for _, key in ipairs(opts.keys or {}) do
    if real == (uv.fs_realpath(key.path) or resolved(key.path)) then
      return nil, string.format("%s: is %s; give another FILE", shown(path), shown(key.what)), "EINVAL"
    end
  end
  local store = opts.store or (db and db.path)
  local suffix = store and store_file(real, store)
  if suffix then
    return nil, string.format("%s: is %s (%s): a backup goes to another file", shown(path), suffix == ""
      and "the project's store" or ("the project's store's " .. suffix:sub(2) .. " file"), shown(store .. suffix)),
      "EINVAL"
  end
  if opts.private then return true end
  msg = hosted_refused(real, path, opts)
  if msg then return nil, msg, "EINVAL" end
  local why = st and not_a_backup(path, st)
  if why then
    return nil, string.format("%s: exists and is no orket backup (%s): a backup would replace it whole; give another "
      .. "FILE, or remove this one first if it may be lost", shown(path), why), "EINVAL"
  end
  return true
end

-- copy(db, part, guard) -> true | nil, msg, CODE: the store written into part. On
-- PostgreSQL, with a guard, in a task of its own that the guard's first signal cancels (its
-- query cancelled on the server): a stalled export stops there. SQLite's copy is one call
-- into C, of a local file; a signal is seen once it returns.
local function copy(db, part, guard)
  if db.backend ~= "pg" then return db.conn:backup_to(part) end
  if not guard then return pg_export(db, part) end
  local t = task.spawn(pg_export, db, part)
  guard.on_first = function() t:cancel() end
  local r = table.pack(t:join())
  guard.on_first = nil
  if not r[1] then return nil, inert_err(r[2]), "EINTERRUPTED" end
  return table.unpack(r, 2, r.n)
end

--- backup(db, path[, guard[, opts]]) -> {format=, version=, cards=} | nil, msg, CODE[, signal]:
--- the store db copied into path, replaced atomically once the copy is whole and checked;
--- the store keeps serving meanwhile. guard (on_stop's): a signal sent before the rename
--- removes the copy and leaves path as it was ("stopped by SIGINT; PATH was not changed").
--- opts: target's, path judged by them just before it is written.
function M.backup(db, path, guard, opts)
  local fits, terr, tcode = M.target(db, path, opts)
  if not fits then return nil, terr, tcode end
  local part = part_of(path)
  os.remove(part)
  -- made 0600 before anything is written into it, whatever the umask: it holds the
  -- accounts' password hashes (the writers below keep an existing file's mode)
  local fd, ferr = uv.fs_open(part, "wx", 384)
  if not fd then return nil, string.format("cannot create %s: %s", shown(part), inert_err(ferr)), "EIO" end
  uv.fs_fchmod(fd, 384)
  uv.fs_close(fd)
  local function drop()
    os.remove(part)
    os.remove(part .. "-journal")
  end
  if guard then guard.cleanups[#guard.cleanups + 1] = drop end
  local ok, err, code = copy(db, part, guard)
  if not ok then err = inert_err(err) end
  local info
  if ok then info, err, code = M.check(part) end
  local signal = guard and guard.stopped()
  if signal then
    drop()
    return nil, string.format("stopped by %s; %s was not changed", signal, shown(path)), "EINTERRUPTED", signal
  end
  if info then
    ok, err = os.rename(part, path)
    if not ok then err = string.format("cannot replace %s: %s", shown(path), inert_err(err)) end
  end
  if not (info and ok) then
    drop()
    return nil, err, code or "EIO"
  end
  return info
end

-- A private directory's owner holds this lock in it while it works: a directory whose lock
-- nobody holds was left by a process that is gone (killed, the machine restarted).
local OWNER_LOCK = "owner.lock"
-- A directory with no lock file yet is another process's between making it and locking it,
-- unless it is older than this (then an older orket's, which took no lock)
local UNLOCKED_GRACE_S = 600

-- private_dir(dir) -> path, lock | nil, msg, CODE: sealed.private_dir, held by this
-- process until lock:release() (after the directory is removed)
local function private_dir(dir)
  local tmp, err, code = sealed.private_dir(dir)
  if not tmp then return nil, err, code end
  local lock, lerr, lcode = lockfile.acquire(tmp .. "/" .. OWNER_LOCK)
  if not lock then
    sealed.remove_dir(tmp)
    return nil, string.format("cannot lock %s: %s", shown(tmp), inert_err(lerr)), lcode or "EIO"
  end
  return tmp, lock
end

-- sweep(dir) -> n: the private directories (DIR/.orket/sealed-*) of backups and restores
-- that were stopped before they removed them (each an unencrypted copy of a store) removed;
-- a live process's are left alone
local function sweep(dir)
  local home = (dir or ".") .. "/.orket"
  local scan = uv.fs_scandir(home)
  if not scan then return 0 end
  local n, now = 0, os.time()
  while true do
    local name, kind = uv.fs_scandir_next(scan)
    if not name then break end
    if name:match("^sealed%-%w+$") and kind == "directory" then
      local path = home .. "/" .. name
      local lpath = path .. "/" .. OWNER_LOCK
      local gone
      if uv.fs_stat(lpath) then
        -- taken, not probed: nobody can take it between the look and the removal
        local lock = lockfile.acquire(lpath)
        if lock then
          sealed.remove_dir(path)
          lock:release()
          gone = true
        end
      else
        local st = uv.fs_stat(path)
        if st and now - st.mtime.sec > UNLOCKED_GRACE_S then
          sealed.remove_dir(path)
          gone = true
        end
      end
      if gone then n = n + 1 end
    end
  end
  return n
end

--- on_stop([say]) -> guard: SIGINT, SIGTERM and SIGHUP (not when ignored at the start, as
--- under nohup: orket.stopsignals) held off while a copy exists, so that its owner removes it before it ends.
--- say(signal), if given, is called at the first, and a second then ends the process at
--- once, guard.cleanups run first (newest first): a copy that does not end is not waited
--- for. guard.stopped() -> "SIGINT" | "SIGTERM" | "SIGHUP" | nil (a signal sent during a
--- step, seen once the step is over); guard.close() gives the signals their default action back.
function M.on_stop(say)
  local g = { handles = {}, cleanups = {} }
  local ignored = stopsignals.ignored_at_start()
  for name, signum in pairs { sigint = 2, sigterm = 15, sighup = 1 } do
    if signum ~= 1 or not ignored(signum) then
      local h = uv.new_signal()
      h:start(name, function()
        if g.signal and say then
          for i = #g.cleanups, 1, -1 do pcall(g.cleanups[i]) end
          os.exit(M.STOP_STATUS[g.signal]) -- the C exit, not from inside the loop's callback a lua_close
        end
        g.signal = g.signal or name:upper()
        if say then say(g.signal) end
        if g.on_first then g.on_first() end
      end)
      g.handles[#g.handles + 1] = h
    end
  end
  function g.stopped()
    -- the loop reads the signal's pipe only when it runs: a command runs it once here, a
    -- task (the loop already running) waits a moment
    if not pcall(rt.run, "nowait") then rt.sleep(1) end
    return g.signal
  end
  function g.close()
    for _, h in ipairs(g.handles) do
      h:stop()
      h:close()
    end
  end
  return g
end

--- plain_place(dir[, say]) -> place | nil, msg, CODE: where an encrypted backup or restore
--- makes the store's plain copy: a private directory under DIR/.orket/ this process holds
--- (the ones killed backups and restores left swept first), SIGINT, SIGTERM and SIGHUP held
--- off while it exists (on_stop(say): with say, a second signal removes it and ends the
--- process). place.path: the copy's path; place.guard: the guard; place.stopped() -> the
--- signal sent meanwhile | nil (the loop run to see it, once a step is over);
--- place.signal() -> the signal seen so far | nil; place.close(): the directory removed,
--- the lock released, the signals' default action back.
function M.plain_place(dir, say)
  sweep(dir)
  local guard = M.on_stop(say)
  local tmp, lock, code = private_dir(dir)
  if not tmp then
    guard.close()
    return nil, lock, code
  end
  guard.cleanups[#guard.cleanups + 1] = function() sealed.remove_dir(tmp) end
  return { path = tmp .. "/plain", guard = guard, stopped = guard.stopped, signal = function() return guard.signal end,
    close = function()
      sealed.remove_dir(tmp)
      lock:release()
      guard.close()
    end }
end

--- STOP_STATUS: a command stopped by a signal while its plain copy existed exits as the
--- signal would have ended it (128 + its number)
M.STOP_STATUS = stopsignals.STATUS

--- SETTLE_REASON: the reason of the run_end a restore journals for a run left to the
--- workers that the backup holds as running (orket.cmd.restore ends it interrupted)
M.SETTLE_REASON = "restored from a backup taken while it ran: ended so that no worker carries it on by itself; "
  .. "orket resume carries it on"

-- the store's journal after a time (or all of it): its events, the runs and cards they
-- are of, and the newest one's time. A restore's own events (its record, the audit key it
-- made, the run_end of a run it settled) are no work of the store's: the audit's judgment
-- names those.
local function newer_sql(d, after)
  return "SELECT " .. d.integer("count(*)") .. " AS events, " .. d.integer("count(DISTINCT run_id)") .. " AS runs, "
    .. d.integer("count(DISTINCT card_id)") .. " AS cards, " .. d.time("max(at)", "newest")
    .. " FROM events WHERE kind NOT IN ('restore', 'audit_key') AND NOT (kind = 'run_end' AND "
    .. "coalesce(" .. d.json_text("data", "reason") .. ", '') = ?)" .. (after and " AND at > ?" or "")
end

--- newer(db, info) -> {events=, runs=, cards=, newest= (a time), since= (the backup's
--- newest event's time | nil)} | nil: what a restore of the backup (check's info) drops
--- from the store db that is newer than it: its journal's events after the backup's newest
--- (every one when the backup's journal is empty), and how many runs and cards they are of;
--- nil when it holds none. Times, not ids: a backup of another store shares no ids with it.
function M.newer(db, info)
  local since = info.newest and info.newest.at
  local r = since and backend.row(db, newer_sql(db.dialect, true), M.SETTLE_REASON, since)
    or backend.row(db, newer_sql(db.dialect), M.SETTLE_REASON)
  if not r or (r.events or 0) == 0 then return nil end
  return { events = r.events, runs = r.runs, cards = r.cards, newest = r.newest, since = since }
end

--- fits(db, path, info) -> true | nil, msg, "EINVAL": whether the backup at path (check's
--- info) restores into db: a SQLite backup into SQLite, an export into PostgreSQL
function M.fits(db, path, info)
  local want = db.backend == "pg" and "pg" or "sqlite"
  if info.format == want then return true end
  return nil, string.format("%s: a %s backup cannot be restored into a %s store", shown(path),
    info.format == "pg" and "PostgreSQL" or "SQLite", want == "pg" and "PostgreSQL" or "SQLite"), "EINVAL"
end

--- restore(db, path[, checked]) -> {format=, version=, cards=} | nil, msg, CODE: the
--- store's content replaced with the backup at path, checked first (nothing changes when
--- the check fails; checked: check(path)'s result when the caller has just checked it) and
--- replaced in one transaction. A SQLite backup restores into SQLite, an export into
--- PostgreSQL. An older SQLite backup is migrated when the store next opens. The store gets
--- a new id (orket.store.projects.renew): on PostgreSQL in the same transaction, on SQLite
--- in the next (info.unrenewed: why that failed, the content restored all the same).
--- settle(db), if given, runs in that transaction too, after the content is in; what it
--- returns is info.settled.
function M.restore(db, path, checked, settle)
  local info, err, code = checked, nil, nil
  if not info then info, err, code = M.check(path) end
  if not info then return nil, err, code end
  local fits, ferr, fcode = M.fits(db, path, info)
  if not fits then return nil, ferr, fcode end
  local want = db.backend == "pg" and "pg" or "sqlite"
  local ok, rerr, rcode
  if want == "pg" then ok, rerr, rcode = pg_import(db, path, settle) else ok, rerr, rcode = db.conn:restore_from(path) end
  if not ok then return nil, inert_err(rerr), rcode end
  if want == "pg" then info.settled = rerr end
  if want == "sqlite" then
    -- the pages are copied in a transaction of their own (SQLite's backup API), so the new
    -- id follows in the next: a board read between the two names the old id with the new
    -- journal, and its stream is told to start over once the new id is in, which is harmless.
    -- A backup older than migration 27 has no id; its migration draws one.
    local rok, nerr = db:tx(function()
      store_projects.renew(db, (info.version or 0) >= 27)
      return true, settle and settle(db)
    end)
    if rok then info.settled = nerr else info.unrenewed = tostring(nerr) end
  end
  return info
end

return M
