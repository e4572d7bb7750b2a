-- orket.store.pgevents: the event journal on PostgreSQL, the first of the store's named
-- operations for that backend (docs/store.md, "Toward PostgreSQL"). PostgreSQL takes an
-- identity value at INSERT, not at COMMIT: without care, event 11 can commit while event 10
-- is still in flight, and a reader whose cursor moved to 11 never sees 10 (SSE's
-- Last-Event-ID, the scheduler's follow). append() therefore takes a transaction-level
-- advisory lock before it inserts: the transaction that took id N holds it until it
-- commits or rolls back, so no later id becomes visible before N. Ids stay a safe cursor;
-- a rollback leaves a gap, never a late arrival.
local json = require "cjson.safe"
local records = require "orket.store.records"

local M = {}

M.LOCK = 0x6f726b6574 + 1 -- the journal's advisory lock key (pg_schema.LOCK + 1)

-- ISO 8601 UTC with milliseconds, as the SQLite store writes every time
M.AT = [[to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')]]

--- append(q, {kind=, card=, run=, actor=, data=}) -> id | nil, message, code
--- q: a connection or a pool transaction inside BEGIN..COMMIT (the event commits with the
--- change it records). Take it as late in the transaction as the change allows: the lock
--- is held until the end, and other writers of events wait for it.
function M.append(q, e)
  local ok, err, code, state = q:query("SELECT pg_advisory_xact_lock($1)", M.LOCK)
  if not ok then return nil, err, code, state end
  return M.insert(q, e)
end

--- item(e) -> the event as one element of the JSON array the store's batched insert reads
--- ({"k": kind, "c": card, "r": run, "a": actor, "d": data}); raises on data that is not JSON
function M.item(e)
  local data = records.encode(e.data, "event data")
  local run = e.run
  if run ~= nil and math.type(run) ~= "integer" then run = math.tointeger(run) or error("pgevents: event run is not an integer", 3) end
  return string.format('{"k":%s,"c":%s,"r":%s,"a":%s,"d":%s}', json.encode(e.kind), e.card == nil and "null" or json.encode(e.card),
    run == nil and "null" or tostring(run), e.actor == nil and "null" or json.encode(e.actor), data)
end

--- insert(q, e) -> id | nil, message, code: append's insert alone, for a transaction that
--- already holds the lock (the PostgreSQL store's write transactions take it at BEGIN)
function M.insert(q, e)
  local data = records.encode(e.data, "event data")
  local rows, err, code, state = q:query([[INSERT INTO events (at, kind, card_id, run_id, actor, data)
    VALUES (now(), $1, $2, $3, $4, $5::jsonb) RETURNING id]], e.kind, e.card, e.run, e.actor, data)
  if not rows then return nil, err, code, state end
  return rows[1].id
end

--- after(q, cursor[, limit]) -> {{id, at, kind, card, run, actor, data}, ...} with id > cursor,
--- oldest first (data decoded) | nil, message, code
function M.after(q, cursor, limit)
  local rows, err, code, state = q:query("SELECT id, " .. M.AT .. [[ AS at, kind, card_id, run_id, actor, data::text AS data
    FROM events WHERE id > $1 ORDER BY id LIMIT $2]], cursor or 0, limit or 1000)
  if not rows then return nil, err, code, state end
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = { id = r.id, at = r.at, kind = r.kind, card = r.card_id, run = r.run_id, actor = r.actor,
      data = json.decode(r.data) }
  end
  return out
end

return M
