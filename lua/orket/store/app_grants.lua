-- orket.store.app_grants: what lets a person into a sandbox's app (orket.serve.apps): the
-- single-use tickets the board hands out and the app sessions they are traded for, kept
-- as the BLAKE2b of their tokens (never a token), so that every `orket serve` on one
-- database honours what another made. Times are Unix seconds, by the store's clock as the
-- board's sessions are (orket.store.sessions: on PostgreSQL the database's, which every
-- server shares). Written once for both backends (orket.store.dialect).
local sessions = require "orket.store.sessions"

local M = {}

local COLS = "sandbox_id, key_id, local_use, board, board_expires, role, start, expires"

-- a row as the grant apps.lua uses ({sandbox, key, local_use, board, board_expires, role,
-- start, expires_s, now: the store's clock when it was read})
local function grant(r, now)
  if not r then return nil end
  return { sandbox = math.tointeger(r.sandbox_id), key = r.key_id, local_use = r.local_use == 1 or nil, board = r.board,
    board_expires = r.board_expires and math.tointeger(r.board_expires), role = r.role, start = r.start,
    expires_s = math.tointeger(r.expires), now = math.tointeger(r.now) or now }
end

--- now(db) -> the store's clock in Unix seconds (orket.store.sessions.now)
function M.now(db) return sessions.now(db, os.time()) end

--- live(db, kind, now) -> how many grants of kind ("ticket" | "session") have not ended;
--- the ended ones are dropped first (no timer keeps the table small: each new grant does)
function M.live(db, kind, now)
  assert(db:run("DELETE FROM app_grants WHERE expires <= ?", now))
  return assert(db:row("SELECT count(*) AS n FROM app_grants WHERE kind = ?", kind)).n
end

--- of_key(db, kind, key, now) -> how many grants of kind made with key (a key's id, or a
--- person's identity) have not ended
function M.of_key(db, kind, key, now)
  return assert(db:row("SELECT count(*) AS n FROM app_grants WHERE kind = ? AND key_id = ? AND expires > ?",
    kind, key, now)).n
end

--- insert(db, hash, kind, g): a grant {sandbox, key, local_use, board, board_expires, role,
--- start, expires_s}
function M.insert(db, hash, kind, g)
  assert(db:run("INSERT INTO app_grants (hash, kind, " .. COLS .. ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", hash, kind,
    g.sandbox, g.key, g.local_use and 1 or 0, g.board, g.board_expires, g.role, g.start, g.expires_s))
end

--- get(db, hash, kind) -> the grant, its now the store's clock (read in the same statement
--- on PostgreSQL) | nil
function M.get(db, hash, kind)
  local c = sessions.clock(db)
  return grant(db:row("SELECT " .. COLS .. (c and (", " .. c .. " AS now") or "")
    .. " FROM app_grants WHERE hash = ? AND kind = ?", hash, kind), os.time())
end

--- take(db, hash, kind) -> the grant, deleted in the same transaction (a ticket is used up
--- once, whichever server it reaches first) | nil
function M.take(db, hash, kind)
  local g, err = db:tx(function()
    local found = M.get(db, hash, kind)
    if found then assert(db:run("DELETE FROM app_grants WHERE hash = ?", hash)) end
    return found or false -- (nil with no message would read as a failed transaction)
  end)
  if g == nil then error(err, 2) end
  return g or nil
end

--- delete(db, hash): the grant ends
function M.delete(db, hash)
  assert(db:run("DELETE FROM app_grants WHERE hash = ?", hash))
end

return M
