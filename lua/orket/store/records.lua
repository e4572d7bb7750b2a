-- orket.store.records: the record API the engine writes every step (runs, turns, tool
-- calls, gate decisions, policy violations), one implementation for both stores.
-- install(DB, sql, bool) adds the methods to a store's DB class; the backend gives only
-- its statements (sql, built once, so SQLite's prepared-statement cache finds them by the
-- same text) and how it stores a boolean. The DB must have run, rows, tx, event,
-- conn:depth() and conn:run().
local json = require "cjson.safe"
local inert = require "orket.inert"
local cjsonout = require "orket.c.jsonout"
local text_valid = require("orket.c.inert").valid
local runs = require "orket.store.runs"

local M = {}

-- The note a stored object carries when its text had bytes that are not UTF-8
M.ESCAPED_NOTE = "escaped_bytes"

-- v with every string in it (names too) as inert.bytes writes it; tables copied, their
-- metatables (cjson's array marks) kept
local function utf8_copy(v)
  if type(v) == "string" then return (inert.bytes(v)) end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[utf8_copy(k)] = utf8_copy(x) end
  return setmetatable(out, getmetatable(v))
end

--- encode(v, what) -> JSON text of v ("{}" for nil); raises naming what when v is not
--- JSON data (at the level of the record method's caller). Both stores keep UTF-8 text
--- (PostgreSQL refuses other bytes) and what is recorded holds hostile text (a tool's
--- result from a binary file, a read cut inside a character): bytes that are not UTF-8 are
--- written as \xNN, and an object says so in its escaped_bytes field, the same on both.
local function encode(v, what)
  if v == nil then return "{}" end
  local s, err = json.encode(v)
  if not s then error(string.format("store: %s is not JSON data: %s", what, err), 3) end
  if text_valid(s) then return s end
  local c = utf8_copy(v)
  if type(c) == "table" and next(c) ~= nil and rawlen(c) == 0 then
    c[M.ESCAPED_NOTE] = "bytes that are not UTF-8 are written as \\xNN"
  end
  return (json.encode(c))
end
M.encode = encode

-- encode for a tool call's arguments and result, with every digit of a number: lua-cjson
-- writes 14, so a resumed call ran with 1e+14 where the model gave 100000000000001, and a
-- result's 123456789012345 reached the model as 123456789012340. Text that is not
-- UTF-8 goes the way encode writes it. (orket.jsonout's writer itself: arguments decoded
-- from a model carry none of its marks, so none are given)
local NO_MARK = {}
local function encode_exact(v, what)
  -- the writer writes a byte that is not UTF-8 as \ufffd: arguments holding one (or that
  -- text itself, or what it cannot write) go the way encode writes them
  local ok, exact = pcall(cjsonout.encode, v, NO_MARK, NO_MARK)
  if v == nil or not ok or exact:find("\\ufffd") then return encode(v, what) end
  return exact
end
M.encode_exact = encode_exact

local function need(t, fname, k, ty, optional)
  local v = t[k]
  if v == nil and optional then return nil end
  if type(v) ~= ty then
    error(string.format("bad argument #1 to '%s' (field '%s' must be a %s)", fname, k, ty), 3)
  end
  return v
end

-- the statements a backend gives, each with the parameters in this order
M.STATEMENTS = {
  run = "runs (target, kind, data) -> id",
  finish_run = "status, id",
  finish_running = "status, id (a row whose status is running, or done over stalled or failed)",
  turn = "turns (run_id, card_id, seat, role, turn, model, request, response, prompt_tokens, "
    .. "completion_tokens, data) -> id",
  tool_call = "tool_calls (turn_id, call_id, tool, arguments, result, ok, error_code, gate_code) -> id",
  finish_tool_call = "result, ok, error_code, id (a row whose result IS NULL)",
  gate_decision = "gate_decisions (turn_id, tool_call_id, tool, verdict, code, reason, remedy) -> id",
  violation = "violations (turn_id, card_id, seat, rule, attempt, detail, remedy) -> id",
  violations = "card_id -> id, turn_id, seat, rule, attempt, detail, remedy, created_at",
}

--- install(DB, sql, bool) -> DB. sql: the statements named in M.STATEMENTS; bool(v) -> v
--- as the backend stores it (nil stays nil).
function M.install(DB, sql, bool)
  for name in pairs(M.STATEMENTS) do
    assert(type(sql[name]) == "string", "store records: no statement " .. name)
  end
  local RUN, FINISH_RUN, FINISH_RUNNING, TURN, TOOL_CALL = sql.run, sql.finish_run, sql.finish_running, sql.turn,
    sql.tool_call
  local FINISH_TOOL_CALL, GATE_DECISION, VIOLATION, VIOLATIONS =
    sql.finish_tool_call, sql.gate_decision, sql.violation, sql.violations

  -- One record + its event, all or nothing; returns the new row id. Alone, in a
  -- transaction of its own. Inside the caller's transaction without a savepoint of its own
  -- (a savepoint per record was a fifth of a record's cost): a failing row insert returns
  -- nil, msg, CODE with nothing written (a statement is atomic), and a failure after the
  -- row is written raises, which rolls back the caller's transaction (or savepoint), so a
  -- half record can never be committed.
  function DB:_record(insert, event, ...)
    local conn = self.conn
    if conn:depth() == 0 then
      local args = table.pack(...)
      local id, err, ecode = self:tx(function()
        local rid, rerr, rcode = self:_record(insert, event, table.unpack(args, 1, args.n))
        if not rid then return nil, rerr, rcode end
        return rid
      end)
      if not id then return nil, err, ecode end
      return id
    end
    local n, rid, code = conn:run(insert, ...) -- the connection's: no pass-through per row
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
    return self:_record(RUN, { kind = "run_start", run = "self", data = { target = r.target, kind = r.kind } },
      r.target, r.kind, encode(r.data, "run data"))
  end

  --- db:finish_run(id, status[, {running = true, reason = text}]) -> true | false, status | nil,
  --- msg, CODE (status: one of orket.store.runs.ENDS, "done", "failed", ...; another raises).
  --- reason: why it ended so, journaled with its run_end (orket log shows it). running:
  --- only a run still running is finished (the workers of one run each conclude it: the
  --- first one's end is the run's, journaled once, and the others get false and the status
  --- it ended with, nothing written), except that done replaces stalled or failed: a worker's
  --- own budget or fault ends it so while the others go on working its cards to the end.
  --- Without it a run of any status is finished (a resumed interrupted or stalled run ends so).
  function DB:finish_run(id, status, o)
    if math.type(id) ~= "integer" then error("bad argument #1 to 'finish_run' (integer expected)", 2) end
    if type(status) ~= "string" then error("bad argument #2 to 'finish_run' (string expected)", 2) end
    -- one list of the statuses a run can have (orket.store.runs): what lists or filters runs
    -- by status is never met by one it does not know
    if not runs.ENDED[status] then
      error(string.format("bad argument #2 to 'finish_run' (status %q: one of %s)", status,
        table.concat(runs.ENDS, ", ")), 2)
    end
    local only_running = type(o) == "table" and o.running
    local reason = type(o) == "table" and o.reason or nil
    if reason ~= nil and type(reason) ~= "string" then
      error("bad argument #3 to 'finish_run' (reason: string expected, got " .. type(reason) .. ")", 2)
    end
    return self:tx(function()
      local n = assert(self:run(only_running and FINISH_RUNNING or FINISH_RUN, status, id))
      if n == 0 then
        local r = only_running and self:row("SELECT status FROM runs WHERE id = ?", id)
        if r then return false, r.status end
        return nil, "store: no run " .. id, "ENOENT"
      end
      self:event { kind = "run_end", run = id, data = { status = status, reason = reason } }
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
    return self:_record(TURN,
      { kind = "turn", run = t.run, card = t.card, actor = t.seat, data = { role = t.role, turn = t.turn, model = t.model } },
      t.run, t.card, t.seat, t.role, t.turn, t.model,
      t.request ~= nil and encode_exact(t.request, "request") or nil,
      t.response ~= nil and encode_exact(t.response, "response") or nil,
      t.prompt_tokens, t.completion_tokens, encode(t.data, "turn data"))
  end

  -- One tool_calls row and its event: a whole call (record_tool_call) or, with no result
  -- yet, the intent of one (start_tool_call).
  local function insert_tool_call(db, c, kind, data, result, ok, error_code)
    data.turn, data.tool, data.gate = c.turn, c.tool, c.gate_code
    return db:_record(TOOL_CALL, { kind = kind, run = c.run, card = c.card, actor = c.seat, data = data },
      c.turn, c.call_id, c.tool, encode_exact(c.arguments, "arguments"), result, ok, error_code, c.gate_code)
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
      c.result ~= nil and encode_exact(c.result, "result") or nil, bool(c.ok), c.error_code)
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
    return self:tx(function()
      local n, err, code = self:run(FINISH_TOOL_CALL, c.result ~= nil and encode_exact(c.result, "result") or "null",
        bool(c.ok), c.error_code, id)
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
    return self:_record(GATE_DECISION,
      { kind = "gate_decision", run = d.run, card = d.card, actor = d.seat,
        data = { tool = d.tool, verdict = d.verdict, code = d.code } },
      d.turn, d.tool_call, d.tool, d.verdict, d.code, d.reason, d.remedy)
  end

  --- db:record_violation{turn=, card=, seat=, rule=, attempt=, detail=, remedy=, run=}
  ---   -> id | nil, msg, CODE. attempt: what was tried; detail: why it was refused;
  ---   remedy: how to fix it.
  function DB:record_violation(v)
    need(v, "record_violation", "rule", "string")
    return self:_record(VIOLATION,
      { kind = "violation", run = v.run, card = v.card, actor = v.seat,
        data = { rule = v.rule, attempt = v.attempt, detail = v.detail, remedy = v.remedy } },
      v.turn, v.card, v.seat, v.rule, v.attempt, v.detail, v.remedy)
  end

  --- db:violations(card_id) -> array of {id, turn, seat, rule, attempt, detail, remedy, created_at}
  function DB:violations(card)
    local out = {}
    for _, r in ipairs(assert(self:rows(VIOLATIONS, card))) do
      out[#out + 1] = { id = r.id, turn = r.turn_id, seat = r.seat, rule = r.rule, attempt = r.attempt,
        detail = r.detail, remedy = r.remedy, created_at = r.created_at }
    end
    return out
  end

  return DB
end

return M
