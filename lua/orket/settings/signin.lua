-- orket.settings.signin: orket.lua's sign_in section (docs/teams.md): people signing in to
-- `orket serve` through an OpenID Connect provider or an LDAP directory, and the groups
-- that give them a role. Checked as every other section: an unknown field, a wrong type or
-- a bad URL fails with its path.
--   sign_in = {
--     oidc = { issuer = "https://id.example", client_id = "orket", client_secret_env = "ORKET_OIDC_SECRET",
--              redirect_uri = "https://board.example/v1/sign-in/oidc/callback" },
--     ldap = { url = "ldap://127.0.0.1:389", base_dn = "ou=people,dc=example,dc=org" },
--     roles = { ["orket-admins"] = "admin", developers = "operator", everyone = "viewer" },
--   }
local secret = require "orket.settings.secret"

local M = {}

M.ROLES = { viewer = 1, operator = 2, admin = 3 }
M.MAX_SKEW_S = 300

local function fail(path, fmt, ...)
  error({ settings_error = "orket.lua: sign_in" .. (path ~= "" and "." .. path or "") .. ": " .. string.format(fmt, ...) }, 0)
end

local function str(v, p, max)
  if type(v) ~= "string" or v == "" or #v > (max or 1024) or v:find("[%c]") then
    fail(p, "must be a non-empty single-line string of at most %d bytes (got %s)", max or 1024, type(v))
  end
  return v
end

local function url(v, p, schemes)
  str(v, p)
  for _, s in ipairs(schemes) do
    if v:sub(1, #s + 3) == s .. "://" and #v > #s + 3 then return v end
  end
  fail(p, "must be a %s:// URL (got %q)", table.concat(schemes, ":// or "), v)
end

local function env_name(v, p)
  if type(v) ~= "string" or not v:match("^[%a_][%w_]*$") then
    fail(p, "must name an environment variable (letters, digits, '_'), never hold the secret itself")
  end
  return v
end

-- a credential: secret "NAME" from the project's secret store (docs/secrets.md), never text
local function credential(v, p) return secret.check(v, "sign_in." .. p) end

local function whole(v, p, lo, hi)
  if math.type(v) ~= "integer" or v < lo or v > hi then fail(p, "must be a whole number from %d to %d", lo, hi) end
  return v
end

local function role(v, p)
  if not M.ROLES[v] then fail(p, "must be viewer, operator or admin (got %s)", tostring(v)) end
  return v
end

local function strings(v, p)
  if type(v) ~= "table" or #v == 0 then fail(p, "must be a non-empty array of strings") end
  for i, s in pairs(v) do
    if math.type(i) ~= "integer" then fail(p, "must be an array (no named fields)") end
    str(s, p .. "[" .. i .. "]", 128)
  end
  return v
end

-- each field: its check (value, path) -> value
local OIDC = {
  -- kept as written: the ID token's iss must be it exactly, trailing slash and all (Auth0's has one)
  issuer = function(v, p) return url(v, p, { "https", "http" }) end,
  client_id = function(v, p) return str(v, p, 256) end,
  client_secret_env = env_name,
  client_secret = credential,
  redirect_uri = function(v, p) return url(v, p, { "https", "http" }) end,
  scopes = strings,
  groups_claim = function(v, p) return str(v, p, 64) end,
  name_claim = function(v, p) return str(v, p, 64) end,
  api_audience = function(v, p) return str(v, p, 256) end,
  clock_skew_s = function(v, p) return whole(v, p, 0, M.MAX_SKEW_S) end,
  timeout_ms = function(v, p) return whole(v, p, 100, 60000) end,
  default_role = role,
}
local OIDC_REQUIRED = { "issuer", "client_id", "redirect_uri" }

local LDAP = {
  url = function(v, p) return url(v, p, { "ldap", "ldaps", "ldapi" }) end,
  bind_dn = function(v, p) return str(v, p) end,
  bind_password_env = env_name,
  bind_password = credential,
  base_dn = function(v, p) return str(v, p) end,
  user_attr = function(v, p)
    if type(v) ~= "string" or not v:match("^%a[%w-]*$") then fail(p, "must be an attribute name such as uid") end
    return v
  end,
  group_base_dn = function(v, p) return str(v, p) end,
  timeout_ms = function(v, p) return whole(v, p, 100, 60000) end,
  default_role = role,
}
local LDAP_REQUIRED = { "url", "base_dn" }

local function fields(src, p, spec, required, known)
  if type(src) ~= "table" then fail(p, "must be a table (fields: %s)", known) end
  local out = {}
  for k, v in pairs(src) do
    local check = spec[k]
    if not check then fail(p .. "." .. tostring(k), "unknown setting (known: %s)", known) end
    out[k] = check(v, p .. "." .. k)
  end
  for _, k in ipairs(required) do
    if out[k] == nil then fail(p .. "." .. k, "is required") end
  end
  return out
end

--- section(src) -> {oidc=|nil, ldap=|nil, roles={group=role}}; raises {settings_error=}
function M.section(src)
  local out = { roles = {} }
  if src == nil then return out end
  if type(src) ~= "table" then fail("", "must be a table (fields: oidc, ldap, roles)") end
  for k, v in pairs(src) do
    if k == "oidc" then
      out.oidc = fields(v, "oidc", OIDC, OIDC_REQUIRED, "issuer, client_id, client_secret, client_secret_env, redirect_uri, scopes, "
        .. "groups_claim, name_claim, api_audience, clock_skew_s, timeout_ms, default_role")
    elseif k == "ldap" then
      out.ldap = fields(v, "ldap", LDAP, LDAP_REQUIRED, "url, bind_dn, bind_password, bind_password_env, base_dn, user_attr, "
        .. "group_base_dn, timeout_ms, default_role")
    elseif k == "roles" then
      if type(v) ~= "table" then fail("roles", "must map group names to roles, e.g. { developers = \"operator\" }") end
      for g, r in pairs(v) do
        str(g, "roles", 256)
        out.roles[g] = role(r, "roles[" .. string.format("%q", g) .. "]")
      end
    else
      fail(tostring(k), "unknown setting (known: oidc, ldap, roles)")
    end
  end
  return out
end

--- role_of(groups, roles, default) -> the highest role any of groups maps to, else default
--- (nil: the person has no role here)
function M.role_of(groups, roles, default)
  local best
  for _, g in ipairs(groups) do
    local r = type(g) == "string" and roles[g]
    if r and (not best or M.ROLES[r] > M.ROLES[best]) then best = r end
  end
  return best or default
end

return M
