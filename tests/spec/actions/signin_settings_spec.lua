-- orket.settings.signin: orket.lua's sign_in section checked as every setting is, each
-- mistake named by its path; and the one rule that turns groups into a role.
local settings = require "orket.settings"
local signin = require "orket.settings.signin"

local function refused(section, pattern)
  local s, err = settings.resolve { sign_in = section }
  assert.is_nil(s)
  assert.matches(pattern, err)
end

local OIDC = { issuer = "https://id.example/", client_id = "orket",
  redirect_uri = "https://board.example/v1/sign-in/oidc/callback" }

local function with(over)
  local t = {}
  for k, v in pairs(OIDC) do t[k] = v end
  for k, v in pairs(over) do t[k] = v end
  return { oidc = t }
end

describe("sign_in settings", function()
  it("takes a provider, a directory and a group map; the issuer exactly as written", function()
    local s = assert(settings.resolve { sign_in = { oidc = OIDC, ldap = { url = "ldap://127.0.0.1:389",
      base_dn = "ou=people,dc=example,dc=org" }, roles = { devs = "operator" } } }).sign_in
    assert.equal("https://id.example/", s.oidc.issuer)
    assert.equal("ldap://127.0.0.1:389", s.ldap.url)
    assert.same({ devs = "operator" }, s.roles)
    assert.same({ roles = {} }, assert(settings.resolve {}).sign_in)
  end)

  it("names the field of each mistake", function()
    refused({ oidc = { client_id = "x", redirect_uri = OIDC.redirect_uri } }, "^orket.lua: sign_in.oidc.issuer: is required$")
    refused(with { issuer = "ftp://id.example" }, "^orket.lua: sign_in.oidc.issuer: must be a https:// or http:// URL")
    refused(with { client_secret_env = "not a name" }, "sign_in.oidc.client_secret_env: must name an environment variable")
    refused(with { clock_skew_s = 3600 }, "sign_in.oidc.clock_skew_s: must be a whole number from 0 to 300")
    refused(with { scopes = { "openid", 3 } }, "sign_in.oidc.scopes%[2%]")
    refused(with { default_role = "root" }, "sign_in.oidc.default_role: must be viewer, operator or admin")
    refused({ ldap = { url = "http://x", base_dn = "dc=x" } }, "sign_in.ldap.url: must be a ldap:// or ldaps:// or ldapi:// URL")
    refused({ ldap = { url = "ldap://x" } }, "sign_in.ldap.base_dn: is required")
    refused({ ldap = { url = "ldap://x", base_dn = "dc=x", user_attr = "uid=*)(" } }, "sign_in.ldap.user_attr")
    refused({ roles = { devs = "developer" } }, 'sign_in.roles%["devs"%]: must be viewer, operator or admin')
    refused({ sso = {} }, "^orket.lua: sign_in.sso: unknown setting %(known: oidc, ldap, roles, project_roles%)")
    refused(with { client_secret = "s3cret" }, 'sign_in.oidc.client_secret: must be secret "NAME"')
    refused({ ldap = { url = "ldap://x", base_dn = "dc=x", bind_password = "pw" } },
      'sign_in.ldap.bind_password: must be secret "NAME"')
    refused("yes", "^orket.lua: sign_in: must be a table")
    refused({ ldap = { url = "ldap://x", base_dn = "dc=x", recheck_s = 0 } },
      "sign_in.ldap.recheck_s: must be a whole number from 1 to 86400")
    refused({ ldap = { url = "ldap://x", base_dn = "dc=x", grace_s = 1.5 } },
      "sign_in.ldap.grace_s: must be a whole number from 0 to 604800")
    refused(with { key_lifetime_days = 0 }, "sign_in.oidc.key_lifetime_days: must be a whole number from 1 to 3650")
  end)

  it("takes how often the directory's people are looked at again, and how long a provider's people's keys last", function()
    local s = assert(settings.resolve { sign_in = { oidc = with({ key_lifetime_days = 7 }).oidc,
      ldap = { url = "ldap://x", base_dn = "dc=x", recheck_s = 60, grace_s = 0 } } }).sign_in
    assert.same({ 60, 0, 7 }, { s.ldap.recheck_s, s.ldap.grace_s, s.oidc.key_lifetime_days })
  end)

  it("takes a group map per project, each project's name and role checked", function()
    local s = assert(settings.resolve { sign_in = { project_roles = { web = { ["web-devs"] = "developer",
      everyone = "viewer" }, default = { admins = "admin" } } } }).sign_in
    assert.same({ web = { ["web-devs"] = "developer", everyone = "viewer" }, default = { admins = "admin" } }, s.project_roles)
    refused({ project_roles = { Web = { devs = "developer" } } }, "^orket.lua: sign_in.project_roles.Web: a project's name is")
    refused({ project_roles = { web = { devs = "operator" } } },
      '^orket.lua: sign_in.project_roles.web%["devs"%]: must be viewer, developer or admin %(got operator%)$')
    refused({ project_roles = { web = "developer" } }, "^orket.lua: sign_in.project_roles.web: must map group names to roles")
    refused({ project_roles = { "web" } }, "^orket.lua: sign_in.project_roles.1: a project's name is")
    refused({ project_roles = { web = { [""] = "viewer" } } }, "^orket.lua: sign_in.project_roles.web: must be a non%-empty")
  end)

  it("gives each mapped project the highest role the groups give there, or none", function()
    local map = { web = { devs = "developer", all = "viewer", leads = "admin" }, notes = { writers = "developer" } }
    assert.same({ web = "admin", notes = false }, signin.projects_of({ "all", "leads", "devs" }, map))
    assert.same({ web = "viewer", notes = "developer" }, signin.projects_of({ "all", "writers", 7 }, map))
    assert.same({ web = false, notes = false }, signin.projects_of({}, map))
    assert.same({}, signin.projects_of({ "devs" }, nil))
  end)

  it("gives the highest role any group maps to, else the default", function()
    local roles = { devs = "operator", admins = "admin", readers = "viewer" }
    assert.equal("admin", signin.role_of({ "readers", "admins", "devs" }, roles))
    assert.equal("operator", signin.role_of({ "devs", "other" }, roles))
    assert.is_nil(signin.role_of({ "other" }, roles))
    assert.equal("viewer", signin.role_of({}, roles, "viewer"))
    assert.equal("viewer", signin.role_of({ 3, {} }, roles, "viewer"))
  end)
end)
