-- orket.settings.signin: orket.lua's sign_in section (docs/teams.md): people signing in to
-- `orket serve` through an OpenID Connect provider or an LDAP directory, and the groups
-- that give them a role. Checked as every other section: an unknown field, a wrong type or
-- a bad URL fails with its path.
--   sign_in = {
--     oidc = { issuer = "https://id.example", client_id = "orket", client_secret_env = "ORKET_OIDC_SECRET",
--              redirect_uri = "https://board.example/v1/sign-in/oidc/callback" },
--     ldap = { url = "ldap://127.0.0.1:389", base_dn = "ou=people,dc=example,dc=org" },
--     roles = { ["orket-admins"] = "admin", developers = "operator", everyone = "viewer" },
--     project_roles = { web = { ["web-devs"] = "developer", everyone = "viewer" } },
--   }
local secret = require "orket.settings.secret"
local team = require "orket.settings.team"

local M = {}

M.ROLES = { viewer = 1, operator = 2, admin = 3 }
M.PROJECT_ROLES = { viewer = 1, developer = 2, admin = 3 } -- a project's roles (docs/teams.md, "Roles")
M.MAX_GROUPS = 256 -- groups named in one map
M.MAX_SKEW_S = 300
M.RECHECK_S = 300           -- sign_in.ldap.recheck_s's default
M.GRACE_S = 3600            -- sign_in.ldap.grace_s's default
M.KEY_LIFETIME_DAYS = 30    -- sign_in.oidc.key_lifetime_days's default

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

-- a map of group -> role (ranks: M.ROLES or M.PROJECT_ROLES), each role checked
local function group_map(v, p, ranks)
  local known = ranks == M.ROLES and "viewer, operator or admin" or "viewer, developer or admin"
  if type(v) ~= "table" then fail(p, "must map group names to roles, e.g. { developers = %q }",
    ranks == M.ROLES and "operator" or "developer") end
  local out, n = {}, 0
  for g, r in pairs(v) do
    str(g, p, 256)
    n = n + 1
    if n > M.MAX_GROUPS then fail(p, "maps more than %d groups", M.MAX_GROUPS) end
    if not ranks[r] then fail(p .. "[" .. string.format("%q", g) .. "]", "must be %s (got %s)", known, tostring(r)) end
    out[g] = r
  end
  return out
end

-- project_roles: project name -> its group map; a project's name as serve.projects takes it
local function project_roles(v)
  if type(v) ~= "table" then fail("project_roles", "must map project names to group maps, e.g. { web = { devs = \"developer\" } }") end
  local out, n = {}, 0
  for name, map in pairs(v) do
    local ok, nerr = team.project_name(name)
    if not ok then fail("project_roles." .. tostring(name), "%s", nerr) end
    n = n + 1
    if n > team.MAX_PROJECTS then fail("project_roles", "names more than %d projects", team.MAX_PROJECTS) end
    out[name] = group_map(map, "project_roles." .. name, M.PROJECT_ROLES)
  end
  return out
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
  -- days a personal key of a provider's person works (the provider cannot be asked about
  -- them without their token: docs/teams.md, "Offboarding")
  key_lifetime_days = function(v, p) return whole(v, p, 1, 3650) end,
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
  -- a person's entry and groups looked up again when their key or session is used this
  -- long after the last look; while the directory cannot be reached, the last answer
  -- holds for grace_s, then they are refused (docs/teams.md, "Offboarding")
  recheck_s = function(v, p) return whole(v, p, 1, 86400) end,
  grace_s = function(v, p) return whole(v, p, 0, 604800) end,
}
local LDAP_REQUIRED = { "url", "base_dn" }

-- what a bind_dn without its password is told: a simple bind with a DN and an empty
-- password is an unauthenticated bind (RFC 4513 5.1.2), which a directory that allows it
-- takes for anonymous, so the service's searches would run as nobody while orket.lua names
-- an account (and one that refuses it fails every sign-in with words that do not say why)
M.NO_BIND_PASSWORD = "sign_in.ldap.bind_dn is set with no password, so the service's bind is not sent: a bind with "
  .. "a DN and an empty password is an unauthenticated bind, which a directory may take for anonymous"

-- bind_dn needs bind_password or bind_password_env (which of the two is set, the other
-- field's variable included, is said at the start: M.service_password)
local function ldap_bind(out)
  if out.bind_dn and out.bind_password == nil and out.bind_password_env == nil then
    fail("ldap.bind_password", "is required with bind_dn (secret \"NAME\", or bind_password_env naming the "
      .. "variable that holds it): a bind with a DN and no password is an unauthenticated bind, which a directory "
      .. "may take for anonymous; leave bind_dn out to search anonymously")
  end
  return out
end

--- service_password(ldap[, getenv]) -> a message "orket.lua: sign_in.ldap.bind_password_env: ..."
--- | nil: the section's bind_dn gets its password from bind_password_env alone, and that
--- variable is unset or blank (empty or only spaces: orket.settings.secret's given), so
--- the service could not bind. `orket validate` and the server's start say it; the
--- settings check cannot, as every command reads them and only the server needs the
--- variable. A secret "NAME" missing is said by orket.settings.secret's problems.
function M.service_password(ldap, getenv)
  if not (ldap and ldap.bind_dn and ldap.bind_password == nil and ldap.bind_password_env) then return nil end
  if secret.given((getenv or os.getenv)(ldap.bind_password_env)) then return nil end
  return string.format("orket.lua: sign_in.ldap.bind_password_env: %s is unset or empty, and bind_dn needs its "
    .. "password: a bind with a DN and no password is an unauthenticated bind, which a directory may take for "
    .. "anonymous; set %s in the server's environment, or give bind_password = secret \"NAME\"",
    ldap.bind_password_env, ldap.bind_password_env)
end

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

--- section(src) -> {oidc=|nil, ldap=|nil, roles={group=role}, project_roles=|nil}; raises {settings_error=}
function M.section(src)
  local out = { roles = {} }
  if src == nil then return out end
  if type(src) ~= "table" then fail("", "must be a table (fields: oidc, ldap, roles, project_roles)") end
  for k, v in pairs(src) do
    if k == "oidc" then
      out.oidc = fields(v, "oidc", OIDC, OIDC_REQUIRED, "issuer, client_id, client_secret, client_secret_env, redirect_uri, scopes, "
        .. "groups_claim, name_claim, api_audience, clock_skew_s, timeout_ms, default_role, key_lifetime_days")
    elseif k == "ldap" then
      out.ldap = ldap_bind(fields(v, "ldap", LDAP, LDAP_REQUIRED, "url, bind_dn, bind_password, bind_password_env, "
        .. "base_dn, user_attr, group_base_dn, timeout_ms, default_role, recheck_s, grace_s"))
    elseif k == "roles" then
      out.roles = group_map(v, "roles", M.ROLES)
    elseif k == "project_roles" then
      out.project_roles = project_roles(v)
    else
      fail(tostring(k), "unknown setting (known: oidc, ldap, roles, project_roles)")
    end
  end
  return out
end

--- role_of(groups, roles, default, ranks) -> the highest role (by ranks, default M.ROLES)
--- any of groups maps to, else default (nil: the person has no role here)
function M.role_of(groups, roles, default, ranks)
  ranks = ranks or M.ROLES
  local best
  for _, g in ipairs(groups) do
    local r = type(g) == "string" and roles[g]
    if r and (not best or ranks[r] > ranks[best]) then best = r end
  end
  return best or default
end

--- projects_of(groups, project_roles) -> project -> the highest role the groups give there,
--- or false (none: no longer a member), for every project the map names
function M.projects_of(groups, project_roles)
  local out = {}
  for project, map in pairs(project_roles or {}) do
    out[project] = M.role_of(groups, map, nil, M.PROJECT_ROLES) or false
  end
  return out
end

return M
