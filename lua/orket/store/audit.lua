-- orket.store.audit: the audit_log table (the audit's hash chain, orket.audit.chain) as
-- named operations op(db, ...) -> plain Lua values; a store error raises. Written once for
-- both backends (orket.store.dialect). Rows are never updated (a trigger refuses it);
-- whole rows leave only through delete_through, which retention calls.
local M = {}

local COLS = "seq, at, kind, actor, action, card_id AS card, route, detail, prev, hash, sig"

--- head(db) -> the newest row {seq, at, kind, ..., hash} | nil when the audit is empty
function M.head(db)
  return db:row("SELECT " .. COLS .. " FROM audit_log ORDER BY seq DESC LIMIT 1")
end

--- last_signed(db) -> seq of the newest checkpoint or retention row | 0
function M.last_signed(db)
  local r = db:row("SELECT max(seq) AS s FROM audit_log WHERE sig IS NOT NULL")
  return r and r.s and math.tointeger(tonumber(r.s)) or 0
end

--- insert(db, row): one row {seq, at, kind, actor, action, card, route, detail, prev, hash, sig}
function M.insert(db, r)
  assert(db:run([[INSERT INTO audit_log (seq, at, kind, actor, action, card_id, route, detail, prev, hash, sig)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]], r.seq, r.at, r.kind, r.actor, r.action, r.card, r.route, r.detail,
    r.prev, r.hash, r.sig))
end

--- page(db, after, limit) -> rows with seq > after, in seq order, at most limit
function M.page(db, after, limit)
  return assert(db:rows("SELECT " .. COLS .. " FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", after, limit))
end

--- since(db, at, after, limit) -> rows at or after the time at (ISO text), seq > after, in
--- seq order, at most limit
function M.since(db, at, after, limit)
  return assert(db:rows("SELECT " .. COLS .. " FROM audit_log WHERE at >= ? AND seq > ? ORDER BY seq LIMIT ?",
    at, after, limit))
end

--- older_than(db, at, below) -> the highest seq below `below` whose row is older than at | nil
function M.older_than(db, at, below)
  local r = db:row("SELECT max(seq) AS s FROM audit_log WHERE at < ? AND seq < ?", at, below)
  return r and r.s and math.tointeger(tonumber(r.s)) or nil
end

--- get(db, seq) -> the row | nil
function M.get(db, seq)
  return db:row("SELECT " .. COLS .. " FROM audit_log WHERE seq = ?", seq)
end

--- delete_through(db, seq) -> rows removed: every row up to seq, whole
function M.delete_through(db, seq)
  return (assert(db:run("DELETE FROM audit_log WHERE seq <= ?", seq)))
end

--- key_event(db) -> {id=, at=, key=} of the journal's newest audit_key event (a signing
--- key made for this project's chain) | nil when it has none
function M.key_event(db)
  local r = db:row("SELECT id, at, data FROM events WHERE kind = 'audit_key' ORDER BY id DESC LIMIT 1")
  if not r then return nil end
  local d = require("cjson.safe").decode(r.data or "") -- lazy: only here
  return { id = math.tointeger(tonumber(r.id)), at = r.at, key = type(d) == "table" and d.key or nil }
end

return M
