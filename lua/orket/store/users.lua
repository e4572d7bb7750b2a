-- orket.store.users: the users and user_sessions tables (local accounts, orket.serve.
-- accounts) as named operations op(db, ...) -> plain Lua values; a store error raises.
-- Only a password's Argon2id hash is stored, and a BLAKE2b of each session token. Written
-- once for both backends (orket.store.dialect).
local sessions = require "orket.store.sessions"

local M = {}

--- unknown(db, name) -> what to say of a name no person has: a person's name is lower case
--- (a sign-in takes "Bob" as bob), so one given in another case names the person it
--- means, when there is one (a stored name is a valid one: every insert checks it). Its
--- callers are the server's admins and the server's machine, who may list the people.
function M.unknown(db, name)
  name = tostring(name)
  local lower = name:lower()
  local hint = lower ~= name and M.get(db, lower) and (" (a person's name is lower case: '" .. lower .. "')") or ""
  return "no person named '" .. name .. "'" .. hint
end

--- insert(db, name, role, hash): a person added now
function M.insert(db, name, role, hash)
  assert(db:run("INSERT INTO users (name, role, hash, created_at) VALUES (?, ?, ?, " .. db.dialect.now .. ")",
    name, role, hash))
end

--- get(db, name) -> {name, role, hash, created_at, disabled_at} | nil
function M.get(db, name)
  local d = db.dialect
  return db:row("SELECT name, role, hash, " .. d.time("created_at") .. ", " .. d.time("disabled_at")
    .. " FROM users WHERE name = ?", name)
end

--- with_hash(db, hash) -> {name, role, disabled_at}... of the people holding that hash: for a
--- person of a provider (its "!oidc:" mark), every name their subject holds here. A scan
--- (no index on hash): asked only when a sign-in's name is not already its subject's, and
--- when an admin disables such a person.
function M.with_hash(db, hash)
  local d = db.dialect
  local r, err = db:rows("SELECT name, role, " .. d.time("disabled_at") .. " FROM users WHERE hash = ? ORDER BY name", hash)
  if r == nil then error(err or "store: a read failed", 0) end
  return r
end

--- list(db[, after, limit]) -> array of {name, role, created_at, disabled_at, signs_in =
--- "password" | "oidc" | "ldap"}, by name:
--- every person, or (a page) at most limit of those whose name sorts after after
function M.list(db, after, limit)
  local d = db.dialect
  -- how each signs in, from the hash column's mark (orket.serve.identity), never the hash
  local cols = "SELECT name, role, " .. d.time("created_at") .. ", " .. d.time("disabled_at") .. ", CASE "
    .. "WHEN hash LIKE '!oidc:%' THEN 'oidc' WHEN hash LIKE '!ldap:%' THEN 'ldap' ELSE 'password' END AS signs_in "
    .. "FROM users"
  if not limit then return assert(db:rows(cols .. " ORDER BY name")) end
  return assert(db:rows(cols .. " WHERE name > ? ORDER BY name LIMIT ?", after or "", limit))
end

--- count(db) -> people ever added, disabled or not
function M.count(db)
  return assert(db:row("SELECT count(*) AS n FROM users")).n
end

--- set_disabled(db, name, disabled) -> changes: disabled now, or enabled again
function M.set_disabled(db, name, disabled)
  if disabled then
    return (assert(db:run("UPDATE users SET disabled_at = " .. db.dialect.now .. " WHERE name = ? AND disabled_at IS NULL", name)))
  end
  return (assert(db:run("UPDATE users SET disabled_at = NULL WHERE name = ? AND disabled_at IS NOT NULL", name)))
end

--- set_role(db, name, role) -> changes: the person's role, as their provider's groups now give it
function M.set_role(db, name, role)
  return (assert(db:run("UPDATE users SET role = ? WHERE name = ? AND role <> ?", role, name, role)))
end

--- other_admins(db, name) -> how many people other than name are enabled server admins
function M.other_admins(db, name)
  return assert(db:row("SELECT count(*) AS n FROM users WHERE role = 'admin' AND disabled_at IS NULL AND name <> ?",
    name)).n
end

--- promotable(db, name) -> whether some enabled local account other than name (a password
--- of theirs here: a person of a provider or directory has a "!source:" mark instead) is
--- not a server admin, whom `orket users role NAME admin` could make one
function M.promotable(db, name)
  local r, err = db:row("SELECT name FROM users WHERE role <> 'admin' AND disabled_at IS NULL AND name <> ? "
    .. "AND hash NOT LIKE '!%' LIMIT 1", name)
  if r == nil and err then error(err, 0) end
  return r ~= nil
end

--- set_hash(db, name, hash) -> changes: the person's password, as its Argon2id hash
function M.set_hash(db, name, hash)
  return (assert(db:run("UPDATE users SET hash = ? WHERE name = ?", hash, name)))
end

--- session_insert(db, hash, name, expires): a person's session created now
function M.session_insert(db, hash, name, expires)
  assert(db:run("INSERT INTO user_sessions (hash, user_name, created_at, expires) VALUES (?, ?, " .. db.dialect.now
    .. ", ?)", hash, name, expires))
end

--- session_lookup(db, hash[, now]) -> {name, expires, role, hash (the person's),
--- disabled_at, now} | nil: now is the time to judge expires by, as sessions.lookup's
function M.session_lookup(db, hash, now)
  local c = sessions.clock(db)
  local row, err = db:row("SELECT s.user_name AS name, s.expires, u.role, u.hash, "
    .. db.dialect.time("u.disabled_at", "disabled_at") .. (c and (", " .. c .. " AS now") or "")
    .. " FROM user_sessions s JOIN users u ON u.name = s.user_name WHERE s.hash = ?", hash)
  if row and not c then row.now = now or os.time() end
  return row, err
end

--- session_delete(db, hash): one session ends
function M.session_delete(db, hash)
  assert(db:run("DELETE FROM user_sessions WHERE hash = ?", hash))
end

--- sessions_end(db, name) -> changes: every session of the person ends, those signed in
--- with one of their personal keys too
function M.sessions_end(db, name)
  assert(db:run("DELETE FROM sessions WHERE key_id IN (SELECT id FROM api_keys WHERE user_name = ?)", name))
  return (assert(db:run("DELETE FROM user_sessions WHERE user_name = ?", name)))
end

--- password_sessions_end(db, name[, keep]) -> changes: every session the person signed in
--- to with their password ends, but the one whose hash is keep
function M.password_sessions_end(db, name, keep)
  return (assert(db:run("DELETE FROM user_sessions WHERE user_name = ? AND hash <> ?", name, keep or "")))
end

--- sessions_trim(db, name, keep, now): expired sessions end (at now; on PostgreSQL by the
--- database's clock, as sessions.delete_expired), and all but the person's keep sessions
--- that expire last (the later made first, as sessions.keep_newest)
function M.sessions_trim(db, name, keep, now)
  local c = sessions.clock(db)
  if c then assert(db:run("DELETE FROM user_sessions WHERE expires <= " .. c))
  else assert(db:run("DELETE FROM user_sessions WHERE expires <= ?", now)) end
  assert(db:run("DELETE FROM user_sessions WHERE user_name = ?1 AND hash NOT IN (SELECT hash FROM user_sessions "
    .. "WHERE user_name = ?1 ORDER BY expires DESC, " .. sessions.newest_first(db) .. " LIMIT ?2)", name, keep))
end

return M
