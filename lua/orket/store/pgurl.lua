-- orket.store.pgurl: where a PostgreSQL store is, from orket.lua's `store = {url = ...}`
-- or ORKET_DATABASE_URL (which wins). The URL never holds the password: libpq reads it
-- from PGPASSWORD or ~/.pgpass (or the file a passfile= parameter names), so it is never
-- in a project file, the store or a log.
local pg = require "orket.c.pg"
local urlencode = require "orket.urlencode"

local M = {}

M.ENV = "ORKET_DATABASE_URL"

local FIELDS = "url"

--- check(url, where) -> true | nil, "WHERE must ...": a postgresql:// (or postgres://) URL
--- without a password.
function M.check(url, where)
  if type(url) ~= "string" then return nil, where .. " must be a string (got " .. type(url) .. ")" end
  local rest = url:match("^postgresql://(.*)$") or url:match("^postgres://(.*)$")
  if not rest then
    return nil, where .. " must be a postgresql:// URL, e.g. postgresql://orket@db.example/orket (got "
      .. pg.scrub(url) .. ")"
  end
  if url:find("[%c ]") then return nil, where .. " must not contain spaces or control characters" end
  local authority = rest:match("^([^/?]*)")
  local userinfo = authority:match("^(.*)@")
  local query = rest:match("%?(.*)$") or ""
  -- (libpq reads a parameter's name with its percent escapes decoded: %70assword is password)
  local secret
  for key in ("&" .. query):gmatch("&([^&=]*)=") do
    key = urlencode.unescape(key)
    if key == "password" or key == "sslpassword" then secret = key end
  end
  if (userinfo and userinfo:find(":", 1, true)) or secret == "password" then
    return nil, where .. " must not contain the password: put it in PGPASSWORD or ~/.pgpass"
  end
  if secret then
    return nil, where .. " must not contain sslpassword, a secret: use a client key (sslkey=) without a passphrase, "
      .. "readable by Orket's user only"
  end
  -- Several hosts (a primary and its standbys): libpq takes the first that answers, and
  -- without target_session_attrs that may be a read-only standby, where every write fails.
  local hostparam = ("&" .. query):match("&host=([^&]*)")
  local hosts = authority:gsub("^.*@", "")
  if hosts:find(",", 1, true) or (hostparam and hostparam:find(",", 1, true)) then
    local tsa = ("&" .. query):match("&target_session_attrs=([^&]*)")
    if tsa ~= "read-write" and tsa ~= "primary" then
      return nil, where .. " names several hosts, so it must say target_session_attrs=read-write (or primary), "
        .. "or a standby may be taken for the primary (got " .. (tsa and "target_session_attrs=" .. tsa or "none") .. ")"
    end
  end
  return true
end

--- section(store) -> the checked `store` section of orket.lua ({url = ...} or nil)
---   | nil, "orket.lua: store...: message"
function M.section(store)
  if store == nil then return nil end
  if type(store) ~= "table" then return nil, "orket.lua: store: must be a table such as {url = \"postgresql://...\"}" end
  for k in pairs(store) do
    if k ~= "url" then return nil, "orket.lua: store." .. tostring(k) .. ": unknown setting (known: " .. FIELDS .. ")" end
  end
  if store.url ~= nil then
    local ok, err = M.check(store.url, "store.url")
    if not ok then return nil, "orket.lua: store.url: " .. err:gsub("^store%.url ", "") end
  end
  return { url = store.url }
end

--- resolve(store, getenv) -> url | false (the project's SQLite file) | nil, message, "EINVAL"
--- ORKET_DATABASE_URL, when set and not empty, wins over orket.lua's store.url.
function M.resolve(store, getenv)
  getenv = getenv or os.getenv
  local env = getenv(M.ENV)
  if env and env ~= "" then
    local ok, err = M.check(env, M.ENV)
    if not ok then return nil, err, "EINVAL" end
    return env
  end
  local s, err = M.section(store)
  if err then return nil, err, "EINVAL" end
  return s and s.url or false
end

return M
