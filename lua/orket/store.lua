-- orket.store: the board's database. open() creates or migrates the file (see
-- orket.store.migrations), and the object it returns wraps the C connection
-- (orket.c.store) with the append-only event journal and the record_* API the engine
-- uses for runs, turns, tool calls, gate decisions and policy violations: each record and
-- its journal event are written in one transaction.
local cstore = require "orket.c.store"
local json = require "cjson.safe"

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

local function encode(v, what)
  if v == nil then return "{}" end
  local s, err = json.encode(v)
  if not s then error(string.format("store: %s is not JSON data: %s", what, err), 3) end
  return s
end
M.encode = encode

local function mkdir_p(dir)
  local uv = require "luv"
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

-- Applies migrations newer than the file's version, each in its own transaction; the
-- version is re-read inside it so two processes opening a new file do not both apply it.
local function migrate(conn, path, list, upto)
  for i, m in ipairs(list) do
    assert(m.version == i, "store migrations must be numbered 1, 2, 3, ...")
  end
  local latest = upto or #list
  local v, err, code = conn:version()
  if not v then return nil, err, code end
  if v > #list then return too_new(path, v, #list) end
  for i = v + 1, latest do
    local m = list[i]
    local ok, merr, mcode = conn:tx(function()
      if conn:version() >= m.version then return true end
      assert(conn:exec(m.sql))
      assert(conn:set_version(m.version))
      return true
    end)
    if not ok then
      return nil, string.format("store: %s: migration %d (%s) failed: %s", path, m.version,
        m.name, merr), mcode
    end
  end
  return true
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

--- open(path, opts) -> db | nil, msg, CODE
--- opts.create (default true): create the file and its directory when missing (else ENOENT).
--- opts.readonly: only read (nothing is created, migrated or written; the file must be at
--- the latest schema version); a board on a read-only file system opens this way.
--- opts.upto: migrate only up to this version (tests of older schemas).
function M.open(path, opts)
  if type(path) ~= "string" then error("bad argument #1 to 'open' (string expected, got " .. type(path) .. ")", 2) end
  opts = opts or {}
  local create = opts.create ~= false and not opts.readonly
  local uv = require "luv"
  if not create and not uv.fs_stat(path) then
    return nil, "store: no database at " .. path, "ENOENT"
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
  local conn, err, code = cstore.open(path, create)
  if not conn then return nil, err, code end
  local ok, merr, mcode = migrate(conn, path, M.migrations, opts.upto)
  if not ok then
    conn:close()
    return nil, merr, mcode
  end
  return setmetatable({ conn = conn, path = path }, DB)
end

M.latest_version = #M.migrations

--- open_url(url, opts) -> db | nil, msg, CODE: the store on the PostgreSQL server at url
--- (orket.store.pgdb, migrated by orket.store.pg_schema), with this module's API.
function M.open_url(url, opts)
  return require("orket.store.pgdb").open(url, opts)
end

-- Thin pass-throughs to the connection (see core/lstore.c for their contracts).
function DB:exec(sql) return self.conn:exec(sql) end
function DB:run(sql, ...) return self.conn:run(sql, ...) end
function DB:rows(sql, ...) return self.conn:rows(sql, ...) end
function DB:row(sql, ...) return self.conn:row(sql, ...) end
function DB:version() return self.conn:version() end

--- db:tx(fn, ...) -> fn's results | nil, msg, CODE. Rolls back when fn raises or returns
--- nil, msg[, CODE]. Nests (savepoints). fn cannot wait on the loop.
function DB:tx(fn, ...) return self.conn:tx(fn, ...) end

--- db:read(fn, ...) -> fn's results | nil, msg, CODE. As tx, for a group of reads: one
--- snapshot and one WAL read lock instead of one per statement, and no write lock. fn
--- should not write and cannot wait on the loop.
function DB:read(fn, ...) return self.conn:read(fn, ...) end

function DB:close() self.conn:close() end
DB.__close = DB.close

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

--- db:events{card=, run=, after=, limit=} -> array of {id, at, kind, card, run, actor, data}
function DB:events(q)
  q = q or {}
  local rows = assert(self.conn:rows([[SELECT id, at, kind, card_id AS card, run_id AS run, actor, data
    FROM events WHERE (?1 IS NULL OR card_id = ?1) AND (?2 IS NULL OR run_id = ?2) AND id > ?3
    ORDER BY id LIMIT ?4]], q.card, q.run, q.after or 0, q.limit or -1))
  for _, r in ipairs(rows) do r.data = json.decode(r.data) or {} end
  return rows
end

local function need(t, fname, k, ty, optional)
  local v = t[k]
  if v == nil and optional then return nil end
  if type(v) ~= ty then
    error(string.format("bad argument #1 to '%s' (field '%s' must be a %s)", fname, k, ty), 3)
  end
  return v
end

-- One record + its event, all or nothing; returns the new row id. Alone, in a
-- transaction of its own. Inside the caller's transaction without a savepoint of its own
-- (a savepoint per record was a fifth of a record's cost): a failing row insert returns
-- nil, msg, CODE with nothing written (a statement is atomic), and a failure after the row
-- is written raises, which rolls back the caller's transaction (or savepoint), so a half
-- record can never be committed.
function DB:_record(insert, event, ...)
  local conn = self.conn
  if conn:depth() == 0 then
    local args = table.pack(...)
    local id, err, ecode = conn:tx(function()
      local rid, rerr, rcode = self:_record(insert, event, table.unpack(args, 1, args.n))
      if not rid then return nil, rerr, rcode end
      return rid
    end)
    if not id then return nil, err, ecode end
    return id
  end
  local n, rid, code = conn:run(insert, ...)
  if not n then return nil, rid, code end
  event.data = event.data or {}
  event.data.id = rid
  if event.run == "self" then event.run = rid end
  local ok, eerr = pcall(self.event, self, event)
  if not ok then error(string.format("store: the event of a record could not be written (%s); "
    .. "the enclosing transaction must roll back", tostring(eerr)), 0) end
  return rid
end

--- db:record_run{target=, kind=, data=} -> run id | nil, msg, CODE
function DB:record_run(r)
  need(r, "record_run", "target", "string")
  need(r, "record_run", "kind", "string")
  return self:_record("INSERT INTO runs (target, kind, started_at, data) VALUES (?, ?, " .. NOW .. ", ?)",
    { kind = "run_start", run = "self", data = { target = r.target, kind = r.kind } },
    r.target, r.kind, encode(r.data, "run data"))
end

--- db:finish_run(id, status) -> true | nil, msg, CODE  (status: "done", "failed", ...)
function DB:finish_run(id, status)
  if math.type(id) ~= "integer" then error("bad argument #1 to 'finish_run' (integer expected)", 2) end
  if type(status) ~= "string" then error("bad argument #2 to 'finish_run' (string expected)", 2) end
  return self.conn:tx(function()
    local n = assert(self.conn:run("UPDATE runs SET status = ?, ended_at = " .. NOW .. " WHERE id = ?", status, id))
    if n == 0 then return nil, "store: no run " .. id, "ENOENT" end
    self:event { kind = "run_end", run = id, data = { status = status } }
    return true
  end)
end

--- db:record_turn{run=, card=, seat=, role=, turn=, model=, request=, response=,
---   prompt_tokens=, completion_tokens=, data=} -> turn id | nil, msg, CODE
function DB:record_turn(t)
  need(t, "record_turn", "run", "number")
  need(t, "record_turn", "seat", "string")
  need(t, "record_turn", "turn", "number")
  need(t, "record_turn", "card", "string", true)
  return self:_record([[INSERT INTO turns (run_id, card_id, seat, role, turn, model, request,
      response, prompt_tokens, completion_tokens, created_at, data)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ]] .. NOW .. ", ?)",
    { kind = "turn", run = t.run, card = t.card, actor = t.seat, data = { role = t.role, turn = t.turn, model = t.model } },
    t.run, t.card, t.seat, t.role, t.turn, t.model,
    t.request ~= nil and encode(t.request, "request") or nil,
    t.response ~= nil and encode(t.response, "response") or nil,
    t.prompt_tokens, t.completion_tokens, encode(t.data, "turn data"))
end

-- One tool_calls row and its event: a whole call (record_tool_call) or, with no result
-- yet, the intent of one (start_tool_call).
local INSERT_TOOL_CALL = [[INSERT INTO tool_calls (turn_id, call_id, tool, arguments, result, ok,
    error_code, gate_code, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ]] .. NOW .. ")"

local function insert_tool_call(db, c, kind, data, result, ok, error_code)
  data.turn, data.tool, data.gate = c.turn, c.tool, c.gate_code
  return db:_record(INSERT_TOOL_CALL, { kind = kind, run = c.run, card = c.card, actor = c.seat, data = data },
    c.turn, c.call_id, c.tool, encode(c.arguments, "arguments"), result, ok, error_code, c.gate_code)
end

--- db:record_tool_call{turn=, call_id=, tool=, arguments=, result=, ok=, error_code=,
---   gate_code=, run=, card=, seat=} -> tool call id | nil, msg, CODE
--- gate_code: the code of the gate decision that allowed the call (ALLOWED, POLICY_ALLOW),
--- which then needs no gate_decisions row; nil when the decision is recorded there.
function DB:record_tool_call(c)
  need(c, "record_tool_call", "turn", "number")
  need(c, "record_tool_call", "tool", "string")
  need(c, "record_tool_call", "gate_code", "string", true)
  return insert_tool_call(self, c, "tool_call", { ok = c.ok, error_code = c.error_code },
    c.result ~= nil and encode(c.result, "result") or nil, c.ok == nil and nil or (c.ok and 1 or 0), c.error_code)
end

--- db:start_tool_call{turn=, call_id=, tool=, arguments=, gate_code=, run=, card=, seat=}
---   -> id | nil, msg, CODE
--- The write-ahead intent of a call whose effect is outside the store (files): the row
--- with no result yet, and a tool_call_started event. Commit it before the effect runs;
--- finish_tool_call records the result. A row left without a result means the process
--- stopped while the effect ran (orket.engine.turn decides what to do on resume).
function DB:start_tool_call(c)
  need(c, "start_tool_call", "turn", "number")
  need(c, "start_tool_call", "tool", "string")
  need(c, "start_tool_call", "gate_code", "string", true)
  return insert_tool_call(self, c, "tool_call_started", {}, nil, nil, nil)
end

--- db:finish_tool_call(id, {result=, ok=, error_code=, turn=, tool=, run=, card=, seat=})
---   -> true | nil, msg, CODE (ENOENT: no started call with that id, or it has a result)
--- Records the result of a started call and its tool_call event (as record_tool_call's).
function DB:finish_tool_call(id, c)
  if math.type(id) ~= "integer" then error("bad argument #1 to 'finish_tool_call' (integer expected)", 2) end
  need(c, "finish_tool_call", "tool", "string")
  return self.conn:tx(function()
    local n, err, code = self.conn:run([[UPDATE tool_calls SET result = ?, ok = ?, error_code = ?
      WHERE id = ? AND result IS NULL]], c.result ~= nil and encode(c.result, "result") or "null",
      c.ok == nil and nil or (c.ok and 1 or 0), c.error_code, id)
    if not n then return nil, err, code end
    if n == 0 then return nil, "store: no started tool call " .. id .. " without a result", "ENOENT" end
    self:event { kind = "tool_call", run = c.run, card = c.card, actor = c.seat,
      data = { id = id, turn = c.turn, tool = c.tool, ok = c.ok, error_code = c.error_code } }
    return true
  end)
end

--- db:record_gate_decision{turn=, tool_call=, tool=, verdict=, code=, reason=, remedy=,
---   run=, card=, seat=} -> id | nil, msg, CODE
function DB:record_gate_decision(d)
  need(d, "record_gate_decision", "verdict", "string")
  return self:_record([[INSERT INTO gate_decisions (turn_id, tool_call_id, tool, verdict, code,
      reason, remedy, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ]] .. NOW .. ")",
    { kind = "gate_decision", run = d.run, card = d.card, actor = d.seat,
      data = { tool = d.tool, verdict = d.verdict, code = d.code } },
    d.turn, d.tool_call, d.tool, d.verdict, d.code, d.reason, d.remedy)
end

--- db:record_violation{turn=, card=, seat=, rule=, attempt=, detail=, remedy=, run=}
---   -> id | nil, msg, CODE. attempt: what was tried; detail: why it was refused;
---   remedy: how to fix it.
function DB:record_violation(v)
  need(v, "record_violation", "rule", "string")
  return self:_record([[INSERT INTO violations (turn_id, card_id, seat, rule, attempt, detail, remedy, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ]] .. NOW .. ")",
    { kind = "violation", run = v.run, card = v.card, actor = v.seat,
      data = { rule = v.rule, attempt = v.attempt, detail = v.detail, remedy = v.remedy } },
    v.turn, v.card, v.seat, v.rule, v.attempt, v.detail, v.remedy)
end

--- db:violations(card_id) -> array of {id, turn, seat, rule, attempt, detail, remedy, created_at}
function DB:violations(card)
  local out = {}
  for _, r in ipairs(self:rows([[SELECT id, turn_id, seat, rule, attempt, detail, remedy, created_at
      FROM violations WHERE card_id = ? ORDER BY id]], card)) do
    out[#out + 1] = { id = r.id, turn = r.turn_id, seat = r.seat, rule = r.rule, attempt = r.attempt,
      detail = r.detail, remedy = r.remedy, created_at = r.created_at }
  end
  return out
end

return M
