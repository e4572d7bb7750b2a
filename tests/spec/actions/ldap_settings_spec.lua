-- orket.settings.signin's sign_in.ldap: a bind_dn comes with its password. With neither
-- bind_password nor bind_password_env the section is refused, naming the field; with a
-- bind_password_env whose variable is unset or blank, service_password says so (orket
-- validate and the server's start refuse on it; other commands, which do not bind, never
-- read it). A bind with a DN and no password would be an unauthenticated bind.
local settings = require "orket.settings"
local signin = require "orket.settings.signin"

local BASE = { url = "ldap://127.0.0.1:389", base_dn = "ou=people,dc=example,dc=org" }

local function ldap(over)
  local t = {}
  for k, v in pairs(BASE) do t[k] = v end
  for k, v in pairs(over) do t[k] = v end
  return t
end

describe("sign_in.ldap's bind_dn", function()
  it("is refused without bind_password or bind_password_env, naming the field", function()
    local s, err = settings.resolve { sign_in = { ldap = ldap { bind_dn = "cn=orket,dc=example,dc=org" } } }
    assert.is_nil(s)
    assert.matches("^orket%.lua: sign_in%.ldap%.bind_password: is required with bind_dn %(secret \"NAME\", or "
      .. "bind_password_env naming the variable that holds it%): a bind with a DN and no password is an "
      .. "unauthenticated bind", err)
    -- either one is enough; no bind_dn needs neither (an anonymous search)
    assert(settings.resolve { sign_in = { ldap = ldap { bind_dn = "cn=o", bind_password_env = "LDAP_PW" } } })
    assert(settings.resolve { sign_in = { ldap = ldap { bind_dn = "cn=o", bind_password = { secret = "LDAP_BIND" } } } })
    assert(settings.resolve { sign_in = { ldap = ldap {} } })
  end)

  it("whose bind_password_env is unset or blank is said by service_password, with the variable's name", function()
    local section = ldap { bind_dn = "cn=o", bind_password_env = "LDAP_PW" }
    local function env(v) return function(k) return k == "LDAP_PW" and v or nil end end
    for _, v in ipairs { false, "", "   " } do
      assert.equal("orket.lua: sign_in.ldap.bind_password_env: LDAP_PW is unset or empty, and bind_dn needs its "
        .. "password: a bind with a DN and no password is an unauthenticated bind, which a directory may take for "
        .. "anonymous; set LDAP_PW in the server's environment, or give bind_password = secret \"NAME\"",
        signin.service_password(section, env(v or nil)))
    end
    assert.is_nil(signin.service_password(section, env("pw")))
    -- the secret store's value stands behind the variable; no bind_dn binds nothing
    assert.is_nil(signin.service_password(ldap { bind_dn = "cn=o", bind_password_env = "LDAP_PW",
      bind_password = { secret = "LDAP_BIND" } }, env(nil)))
    assert.is_nil(signin.service_password(ldap { bind_password_env = "LDAP_PW" }, env(nil)))
    assert.is_nil(signin.service_password(nil, env(nil)))
  end)
end)
