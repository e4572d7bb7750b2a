-- sign_in.oidc.client_secret = secret "NAME" that the server cannot open (its key file
-- missing or wrong): the sign-in's finish says so as the server's own fault (ESECRET), with
-- the setting, the secret and the remedy, for the server's log alone (orket.serve.signin
-- answers the person a plain 503); nothing is sent to the provider.
local cjson = require "cjson"
local oidc = require "orket.auth.oidc"
local store = require "orket.store.secrets"
local secret = require "orket.settings.secret"
local H = require "tests.helpers"

local function no_env() return nil end

describe("an OpenID Connect client secret the server cannot open", function()
  after_each(H.cleanup)

  it("fails the sign-in's finish as the server's fault, naming the setting and the secret", function()
    local dir = H.tmpdir()
    assert(store.set(dir, "OIDC_CLIENT", "client-secret-1234", no_env))
    local _, key = store.paths(dir)
    os.remove(key)
    local base = "http://127.0.0.1:9"
    local cfg = { issuer = base, client_id = "orket", redirect_uri = "http://board.example/v1/sign-in/oidc/callback",
      client_secret = { secret = "OIDC_CLIENT" } }
    secret.bind_all(cfg, dir)
    local p = oidc.new(cfg, {}, function() return 1000 end)
    p.doc, p.doc_until = cjson.decode(cjson.encode { issuer = base, authorization_endpoint = base .. "/auth",
      token_endpoint = base .. "/token", jwks_uri = base .. "/jwks", code_challenge_methods_supported = { "S256" } }),
      math.huge
    local url, browser = p:begin()
    local claims, msg, code = p:finish({ state = url:match("[?&]state=(%x+)"), code = "x" }, browser)
    assert.same({ nil, "ESECRET" }, { claims, code })
    assert.matches('orket.lua: sign_in.oidc.client_secret: secret "OIDC_CLIENT" cannot be opened: no secret key file at '
      .. key, msg, 1, true)
    assert.matches("restore " .. key .. " from where it was kept", msg, 1, true)
  end)
end)
