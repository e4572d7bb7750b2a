-- Secrets handled wrongly, by a person or the machine (docs/secrets.md): a value typed as
-- NAME=VALUE, or where the name goes, is refused and never repeated; a value with a line
-- break is refused naming the secret; a key file ORKET_SECRETS_KEY_FILE names is not rotated
-- under another project's store; the secret store's key (or any file in .orket/) is refused
-- as an encrypted backup's key, which the next rotation would replace; with the key file
-- missing a run names orket.lua's line and the secret, validate says a named key file is
-- not there, and orket serve answers a webhook's sender or a person signing in a plain 503
-- that shows no path, the cause in its log.
local H = require "tests.helpers"
local cjson = require "cjson"
local oidc = require "tests.oidc"

local LEAK = "sk-live-LEAKME123456"

local function has(text, what) return text:find(what, 1, true) ~= nil end

local function run_ok(r, what)
  assert(r.status == 0, what .. " failed: " .. r.stderr .. r.stdout)
  return r
end

-- a project of one issue whose model key is secret "MODEL_KEY" (orket.lua's line 4)
local function project(name, dir)
  dir = dir or H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/epics/m.json", [[
{ "id": "M", "name": "Model", "issues": [ { "id": "M-1", "summary": "Do it", "seat": "senior_developer" } ] }
]])
  H.write(dir .. "/orket.lua", string.format([[
name = %q
models = { default = "fake:x", providers = { fake = { kind = "openai",
  base_url = "http://127.0.0.1:9/v1",
  api_key = secret "MODEL_KEY" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], name))
  run_ok(H.orket("import", { cwd = dir }), "import")
  return dir
end

after_each(function()
  H.kill_servers()
  oidc.stop_all()
  H.cleanup()
end)

describe("orket secrets misused", function()
  it("never repeats a value typed as NAME=VALUE, or where the name goes, and refuses one with a line break", function()
    local dir = project("p")
    for _, c in ipairs { "secrets set MODEL_KEY=" .. LEAK, "secrets set " .. LEAK, "secrets rm " .. LEAK } do
      local r = H.orket(c, { cwd = dir, stdin = "" })
      assert.equal(2, r.status, c)
      assert.is_false(has(r.stderr .. r.stdout, "LEAKME"), r.stderr)
      assert.matches("not repeated here", r.stderr, 1, true)
    end
    local r = H.orket("secrets set MODEL_KEY=" .. LEAK, { cwd = dir, stdin = "" })
    assert.matches("NAME=VALUE is refused", r.stderr, 1, true)
    assert.matches("it is in the shell's history", r.stderr, 1, true)
    r = H.orket("secrets set MODEL_KEY", { cwd = dir, stdin = "sk-abcdef123\r\nX-Injected: yes\n" })
    assert.equal(1, r.status)
    assert.matches("secrets set: secret MODEL_KEY: the value holds a line break at byte 13", r.stderr, 1, true)
    r = H.orket("secrets set MODEL_KEY", { cwd = dir, stdin = "   " })
    assert.equal(1, r.status)
    assert.matches("secret MODEL_KEY: the value is only spaces", r.stderr, 1, true)
  end)

  it("rotates a key file ORKET_SECRETS_KEY_FILE names only on the word that no other store uses it", function()
    local pa, pb = project("pa"), project("pb")
    local env = { ORKET_SECRETS_KEY_FILE = H.tmpdir() .. "/shared.key" }
    run_ok(H.orket("secrets set MODEL_KEY", { cwd = pa, stdin = "key-for-A-1234", env = env }), "set A")
    run_ok(H.orket("secrets set MODEL_KEY", { cwd = pb, stdin = "key-for-B-5678", env = env }), "set B")
    local r = H.orket("secrets rotate", { cwd = pa, env = env })
    assert.equal(1, r.status)
    assert.matches("comes from ORKET_SECRETS_KEY_FILE, which other projects' stores may use too", r.stderr, 1, true)
    assert.matches("orket secrets rotate --not-shared", r.stderr, 1, true)
    run_ok(H.orket("validate", { cwd = pb, env = env }), "B after A's refused rotation")
    r = run_ok(H.orket("secrets rotate --not-shared", { cwd = pa, env = env }), "rotate --not-shared")
    assert.matches("rotated the key: 1 secret sealed again", r.stdout, 1, true)
    run_ok(H.orket("validate", { cwd = pa, env = env }), "A after its rotation")
  end)

  it("refuses the secret store's key, or a file in .orket/, as an encrypted backup's key", function()
    local dir = project("p")
    run_ok(H.orket("secrets set MODEL_KEY", { cwd = dir, stdin = "sk-x-1234567" }), "set")
    local out = H.tmpdir() .. "/b.enc"
    local r = H.orket("backup " .. H.quote(out) .. " --encrypt --key-file .orket/secrets.key", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("--key-file .orket/secrets.key: is the secret store's key file (./.orket/secrets.key): "
      .. "'orket secrets rotate' replaces it", r.stderr, 1, true)
    H.write(dir .. "/.orket/backup.key", string.rep("b", 32))
    os.execute("chmod 600 " .. H.quote(dir .. "/.orket/backup.key"))
    r = H.orket("backup " .. H.quote(out) .. " --encrypt --key-file .orket/backup.key", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("--key-file .orket/backup.key: is in the project's .orket", r.stderr, 1, true)
    assert.is_nil(require("luv").fs_stat(out))
  end)

  it("without the key file: the run names orket.lua's line and the secret; validate a named key file missing", function()
    local dir = project("p")
    run_ok(H.orket("secrets set MODEL_KEY", { cwd = dir, stdin = "sk-x-1234567" }), "set")
    local env = { ORKET_SECRETS_KEY_FILE = dir .. "/nonexist" }
    local r = H.orket("validate", { cwd = dir, env = env })
    assert.equal(1, r.status, r.stdout)
    assert.matches('orket.lua:4: models.providers.fake.api_key: secret "MODEL_KEY" cannot be opened: no secret key '
      .. "file at " .. env.ORKET_SECRETS_KEY_FILE, r.stdout, 1, true)
    os.rename(dir .. "/.orket/secrets.key", dir .. "/key.away")
    r = H.orket("run M", { cwd = dir })
    assert.equal(1, r.status, r.stderr)
    assert.matches('orket.lua:4: models.providers.fake.api_key: secret "MODEL_KEY" cannot be opened: no secret key '
      .. "file at ./.orket/secrets.key", r.stderr, 1, true)
  end)
end)

describe("orket serve with a secret it cannot open", function()
  it("answers a signed webhook delivery 503 with no path, the cause in its log", function()
    local crypto = require "orket.c.crypto"
    local HOOK = "hook-e2e-5b0c1d-secret"
    local dir = H.example("webapp")
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. '\ngit = { remote = "file:///nowhere.git", '
      .. 'forge = "github", repo = "acme/notes", api_url = "http://forge.invalid", token = secret "FORGE_TOKEN", webhook_secret = secret "HOOK" }\n')
    run_ok(H.orket("secrets set HOOK", { cwd = dir, stdin = HOOK }), "set HOOK")
    run_ok(H.orket("secrets set FORGE_TOKEN", { cwd = dir, stdin = "forge-token-1234" }), "set FORGE_TOKEN")
    local s = H.serve(dir)
    os.rename(dir .. "/.orket/secrets.key", dir .. "/key.away")
    local body = cjson.encode { zen = "hi", hook_id = 1, repository = { full_name = "acme/notes" } }
    local st, text = H.fetch { url = s.url .. "/v1/webhooks/github", method = "POST", body = body,
      headers = { "X-GitHub-Event: ping", "X-GitHub-Delivery: d-1",
        "X-Hub-Signature-256: sha256=" .. crypto.hmac_sha256(HOOK, body) } }
    assert.equal(503, st, text)
    local doc = cjson.decode(text)
    assert.equal("unavailable", doc.error.code)
    assert.is_false(has(text, ".orket") or has(text, "secrets.key") or has(text, dir), text)
    assert.equal(0, s.stop())
    local log = s.log() .. (H.read(dir .. "/serve.out") or "")
    assert.matches('git.webhook_secret: secret \\"HOOK\\" cannot be opened: no secret key file at', log, 1, true)
  end)

  it("answers a person's sign-in callback 503 with no path, the cause in its log", function()
    local port = H.free_port()
    local cb = "http://127.0.0.1:" .. port .. "/v1/sign-in/oidc/callback"
    local p, why = oidc.start { mode = "forger", redirect_uri = cb, keys = { oidc.key("k1") } }
    if not p then return pending(why) end
    local dir = H.example("webapp")
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. string.format([[

sign_in = {
  oidc = { issuer = %q, client_id = %q, client_secret = secret "OIDC_CLIENT",
    redirect_uri = %q, timeout_ms = 2000 },
  roles = { devs = "operator", admins = "admin" },
}
]], p.issuer, oidc.CLIENT_ID, cb))
    run_ok(H.orket("secrets set OIDC_CLIENT", { cwd = dir, stdin = oidc.CLIENT_SECRET }), "set OIDC_CLIENT")
    local s = H.serve(dir, { listen = "127.0.0.1:" .. port })
    os.rename(dir .. "/.orket/secrets.key", dir .. "/key.away")
    local jar = oidc.jar()
    local st, text, h = oidc.get(jar, s.url .. "/v1/sign-in/oidc")
    assert.equal(303, st, text)
    local state = h.location:match("state=(%x+)")
    st, text = oidc.get(jar, cb .. "?code=x&state=" .. state)
    assert.equal(503, st, text)
    assert.equal("unavailable", cjson.decode(text).error.code)
    assert.is_false(has(text, ".orket") or has(text, "secrets.key") or has(text, dir), text)
    assert.equal(0, s.stop())
    local log = s.log() .. (H.read(dir .. "/serve.out") or "")
    assert.matches('sign_in.oidc.client_secret: secret \\"OIDC_CLIENT\\" cannot be opened: no secret key file at', log,
      1, true)
  end)
end)
