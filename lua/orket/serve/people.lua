-- orket.serve.people: who a person is, whichever way they sign in. A local account checks
-- its Argon2id hash (orket.serve.accounts); a person of an OpenID Connect provider or an
-- LDAP directory is kept in the same users table, under the name the provider gives, with
-- no password: the hash column holds "!oidc" or "!ldap", which no password verifies and
-- which says where they come from. Their role follows their groups at each sign-in. So
-- `orket users disable NAME` ends a federated person's sessions at once too, and the
-- journal names every person "user:NAME" alike.
local accounts = require "orket.serve.accounts"
local ldap = require "orket.auth.ldap"
local users = require "orket.store.users"

local M = {}

M.MARK = { oidc = "!oidc", ldap = "!ldap" }

local function source_of(row)
  for src, mark in pairs(M.MARK) do
    if row.hash == mark then return src end
  end
  return "local"
end

--- federated(db, name, role, source) -> identity | nil, msg, code: the person a provider
--- (source "oidc" or "ldap") vouched for, added or given their groups' role now. Refused:
--- a name that is not a valid person's name, a local account of that name, a disabled person.
function M.federated(db, name, role, source)
  local ok, nerr = accounts.check_name(name)
  if not ok then return nil, "the provider's name for this person is not usable here: " .. nerr, "EAUTH" end
  return db:tx(function()
    local row = users.get(db, name)
    if row and source_of(row) ~= source then
      return nil, "a person named '" .. name .. "' signs in another way (" .. source_of(row) .. ")", "EAUTH"
    end
    if row and row.disabled_at then return nil, "this person was disabled", "EAUTH" end
    if not row then
      users.insert(db, name, role, M.MARK[source])
      db:event { kind = "user_add", actor = source, data = { name = name, role = role } }
    elseif users.set_role(db, name, role) > 0 then
      db:event { kind = "user_role", actor = source, data = { name = name, role = role, was = row.role } }
    end
    return accounts.identity(name, role)
  end)
end

--- identity(name, role) -> the identity a person's requests carry (orket.serve.accounts')
M.identity = accounts.identity

--- verify(db, signin, name, password) -> identity | nil, why (for the log only)[, code]: a
--- name and password, checked by the local account of that name, else by the LDAP
--- directory when sign_in.ldap is set (signin: orket.settings.signin's section); code
--- EUNAVAILABLE when the directory could not be asked (not the person's failure)
function M.verify(db, signin, name, password)
  if type(name) ~= "string" or type(password) ~= "string" then return nil, "malformed" end
  local row = accounts.check_name(name) and users.get(db, name) or nil
  if not (signin and signin.ldap) or (row and source_of(row) ~= "ldap") then
    return accounts.verify(db, name, password)
  end
  local who, err, code = ldap.verify(signin.ldap, signin.roles, name, password)
  if not who then return nil, "ldap: " .. tostring(err), code == "EUNAVAILABLE" and code or nil end
  local id, ferr = M.federated(db, name, who.role, "ldap")
  if not id then return nil, "ldap: " .. tostring(ferr) end
  return id
end

return M
