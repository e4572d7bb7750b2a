-- Secrets by name end to end (docs/secrets.md): `orket secrets set` takes the value from
-- stdin and refuses it as an argument without repeating it; the store and its key file are
-- mode 600 and hold no clear value; a run sends the model provider's api_key = secret
-- "NAME" in the Authorization header only, and the value is not in a model request's body,
-- the traces, the journal, `orket log`, `orket validate` or `orket models`; each set,
-- rotate and rm is in the journal and the audit's hash chain with the local operator and
-- the name; an unknown name is orket.lua's error with its line and field; orket serve
-- checks a forge's webhooks with git.webhook_secret = secret "NAME". On both backends
-- (the audit is in the store; the secrets are files of the project).
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local uv = require "luv"
local backends = require "tests.backends"

local fake = F.model_server(teardown)

local VALUE = "sk-e2e-Qm9vYmFyIHNlY3JldA-value"
local MODEL = "tool=write_file,tool_times=1,prompt=50"

local function orket_lua(key_setting)
  return string.format([[
name = "secretive"
models = { default = "fake:%s",
  providers = { fake = { kind = "openai", base_url = %q,
    %s } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 1 }
]], MODEL, fake.url .. "/v1", key_setting)
end

-- a project of one issue on the backend under test, imported; its provider line is
-- "max_concurrency = 1" until use_key changes it (at line 4 either way)
local function project()
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/epics/m.json", [[
{ "id": "M", "name": "Model", "issues": [ { "id": "M-1", "summary": "Do it", "seat": "senior_developer" } ] }
]])
  H.write(dir .. "/orket.lua", orket_lua("max_concurrency = 1"))
  backends.project(dir)
  assert(H.orket("import", { cwd = dir }).status == 0, "the project did not import")
  return dir
end

local function use_key(dir, setting)
  H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua"):gsub("max_concurrency = 1", setting)))
end

local function has(text, what) return text:find(what, 1, true) ~= nil end

after_each(function()
  H.kill_servers()
  H.cleanup()
end)

local function run_ok(r, what)
  assert(r.status == 0, what .. " failed: " .. r.stderr .. r.stdout)
  return r
end

describe("orket secrets", function()
  before_each(function() fake.reset() end)

  it("keep a model key sealed, send it only as the provider's key, and audit every change", function()
    local dir = project()
    use_key(dir, 'api_key = secret "MODEL_KEY"')

    -- an unknown name: orket.lua's error, with its line and field
    local r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches('orket.lua:4: models.providers.fake.api_key: secret "MODEL_KEY" is not in the project\'s secret store',
      r.stdout, 1, true)
    r = H.orket("run M", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches('orket.lua:4: models.providers.fake.api_key: secret "MODEL_KEY"', r.stderr, 1, true)

    -- the value as an argument: refused, and not repeated
    r = H.orket("secrets set MODEL_KEY " .. VALUE, { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("takes the value on stdin, never as an argument", r.stderr, 1, true)
    assert.is_false(has(r.stderr .. r.stdout, VALUE))
    assert.is_nil(uv.fs_stat(dir .. "/.orket/secrets.json"))

    r = run_ok(H.orket("secrets set MODEL_KEY", { cwd = dir, stdin = VALUE .. "\n" }), "secrets set")
    assert.matches("^set secret MODEL_KEY %(as local:[%w_.-]+%)\n$", r.stdout)
    assert.equal(384, uv.fs_stat(dir .. "/.orket/secrets.key").mode & 511)
    assert.equal(384, uv.fs_stat(dir .. "/.orket/secrets.json").mode & 511)
    assert.is_false(has(H.read(dir .. "/.orket/secrets.json"), VALUE))
    r = run_ok(H.orket("secrets list --json", { cwd = dir }), "secrets list")
    local list = cjson.decode(r.stdout).secrets
    assert.same({ "MODEL_KEY" }, { list[1].name })
    assert.is_false(has(r.stdout, VALUE))

    -- checked, listed and run: the value goes out only as the key
    r = run_ok(H.orket("validate", { cwd = dir }), "validate")
    assert.is_false(has(r.stdout .. r.stderr, VALUE))
    r = run_ok(H.orket("models --no-check", { cwd = dir }), "models")
    assert.matches("key: secret:MODEL_KEY", r.stdout, 1, true)
    assert.is_false(has(r.stdout .. r.stderr, VALUE))
    r = H.orket("run M", { cwd = dir, env = { OTEL_EXPORTER_OTLP_ENDPOINT = fake.url } })
    assert.is_true(r.status == 0 or r.status == 1 or r.status == 3, r.stderr)
    assert.is_false(has(r.stdout .. r.stderr, VALUE))
    local chats, traces = 0, 0
    for _, e in ipairs(fake.log()) do
      if e.path:match("/chat/completions$") then
        chats = chats + 1
        assert.equal("Bearer " .. VALUE, e.authorization)
        assert.is_false(has(cjson.encode(e.request), VALUE), "the key is in a model request's body")
      elseif e.path:match("/v1/traces$") then
        traces = traces + 1
        assert.is_false(has(cjson.encode(e.request), VALUE), "the key is in a trace")
      end
    end
    assert.is_true(chats >= 1)
    assert.is_true(traces >= 1)
    r = run_ok(H.orket("log --full", { cwd = dir }), "log")
    assert.is_true(has(r.stdout, "write_file"))
    assert.is_false(has(r.stdout, VALUE))
    r = run_ok(H.orket("log --json", { cwd = dir }), "log --json")
    assert.is_false(has(r.stdout, VALUE))

    -- rotated and removed; each change journaled and audited by name, never by value
    local key = H.read(dir .. "/.orket/secrets.key")
    r = run_ok(H.orket("secrets rotate", { cwd = dir }), "rotate")
    assert.matches("rotated the key: 1 secret sealed again", r.stdout, 1, true)
    assert.are_not.equal(key, H.read(dir .. "/.orket/secrets.key"))
    run_ok(H.orket("validate", { cwd = dir }), "validate after rotate")
    run_ok(H.orket("secrets rm MODEL_KEY", { cwd = dir }), "rm")
    r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("orket.lua:4: models.providers.fake.api_key:", r.stdout, 1, true)
    -- a container gives it by the environment
    run_ok(H.orket("validate", { cwd = dir, env = { ORKET_SECRET_MODEL_KEY = "x" } }), "validate with the variable")

    r = run_ok(H.orket("audit export", { cwd = dir }), "audit export")
    assert.is_false(has(r.stdout, VALUE))
    local acts = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local e = cjson.decode(line)
      if e.action and e.action:match("^secret_") then
        assert.matches("^local:", e.actor)
        acts[#acts + 1] = e.action .. " " .. e.route
      end
    end
    assert.same({ "secret_set cli: secrets set MODEL_KEY", "secret_rotate cli: secrets rotate",
      "secret_rm cli: secrets rm MODEL_KEY" }, acts)
    run_ok(H.orket("audit verify", { cwd = dir }), "audit verify")
    assert.is_nil(H.store_file_holding(dir, VALUE))
  end)

  it("check a forge's webhooks with git.webhook_secret = secret \"NAME\" in orket serve", function()
    local crypto = require "orket.c.crypto"
    local HOOK = "hook-e2e-5b0c1d-secret"
    local dir = H.example("webapp")
    -- appended: on PostgreSQL the file already names the test's database
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. '\ngit = { remote = "file:///nowhere.git", '
      .. 'forge = "github", repo = "acme/notes", api_url = "http://forge.invalid", token = secret "FORGE_TOKEN", '
      .. 'webhook_secret = secret "HOOK" }\n')
    run_ok(H.orket("secrets set HOOK", { cwd = dir, stdin = HOOK }), "set HOOK")
    run_ok(H.orket("secrets set FORGE_TOKEN", { cwd = dir, stdin = VALUE }), "set FORGE_TOKEN")
    local s = H.serve(dir)
    local body = cjson.encode { action = "closed", repository = { full_name = "acme/notes" }, sender = { login = "bob" },
      pull_request = { number = 7, merged = false, updated_at = os.date("!%Y-%m-%dT%H:%M:%SZ"),
        user = { login = "orket-bot" }, base = { ref = "main" },
        head = { ref = "orket/API-2", sha = ("ab"):rep(20), repo = { full_name = "acme/notes" } } } }
    local function deliver(key, id)
      local st, text = H.fetch { url = s.url .. "/v1/webhooks/github", method = "POST", body = body,
        headers = { "X-GitHub-Event: pull_request", "X-GitHub-Delivery: " .. id,
          "X-Hub-Signature-256: sha256=" .. crypto.hmac_sha256(key, body) } }
      return st, cjson.decode(text)
    end
    local st, doc = deliver("not the secret", "d-0")
    assert.same({ 401, "bad_signature" }, { st, doc.error.code })
    st, doc = deliver(HOOK, "d-1")
    assert.equal(200, st, cjson.encode(doc))
    assert.equal("blocked", doc.outcome)
    assert.equal(0, s.stop())
    local out = H.read(dir .. "/serve.out") or ""
    assert.is_false(has(out, HOOK) or has(out, VALUE))
    assert.is_nil(H.store_file_holding(dir, HOOK))
  end)

  it("refuse a key file others may read or of the wrong size, changing nothing", function()
    local dir = project()
    run_ok(H.orket("secrets set A", { cwd = dir, stdin = "alpha" }), "set")
    local key = dir .. "/.orket/secrets.key"
    uv.fs_chmod(key, 420)
    local r = H.orket("secrets set B", { cwd = dir, stdin = "beta" })
    assert.equal(1, r.status)
    assert.matches("the secret key file ./.orket/secrets.key: its mode lets other users read it; chmod 600 it",
      r.stderr, 1, true)
    uv.fs_chmod(key, 384)
    H.write(key, "too short")
    uv.fs_chmod(key, 384)
    r = H.orket("secrets rotate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("must hold 32 bytes, or 64 hex digits", r.stderr, 1, true)
    r = run_ok(H.orket("secrets list", { cwd = dir }), "list")
    assert.matches("^A%s+set %S+\n$", r.stdout)
    r = run_ok(H.orket("audit export", { cwd = dir }), "audit export")
    local n = select(2, r.stdout:gsub('"action":"secret_', ""))
    assert.equal(1, n) -- the refused changes left no entry
    r = H.orket("secrets set B", { cwd = dir, stdin = "" })
    assert.equal(1, r.status)
    assert.matches("stdin is empty", r.stderr, 1, true)
  end)

  -- a value copied in the file under another name passed validate: the run's first model
  -- call was the first to say it
  it("validate opens each secret orket.lua names, and says one changed or sealed under another name", function()
    local dir = project()
    run_ok(H.orket("secrets set MODEL_KEY", { cwd = dir, stdin = VALUE }), "set")
    run_ok(H.orket("secrets set OTHER", { cwd = dir, stdin = "other" }), "set")
    use_key(dir, 'api_key = secret "MODEL_KEY"')
    run_ok(H.orket("validate", { cwd = dir }), "validate")
    local path = dir .. "/.orket/secrets.json"
    local doc = cjson.decode(H.read(path))
    doc.secrets.MODEL_KEY.value = doc.secrets.OTHER.value
    H.write(path, cjson.encode(doc))
    local r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches('orket.lua:4: models.providers.fake.api_key: secret "MODEL_KEY" cannot be opened: secret MODEL_KEY: '
      .. "sealed under another name (the store was changed)", r.stdout, 1, true)
    assert.is_nil(r.stdout:find(VALUE, 1, true))
    assert.is_nil(r.stdout:find("other\n", 1, true))
    -- a checkout without the key file: the values are not judged there
    os.rename(dir .. "/.orket/secrets.key", dir .. "/key.away")
    run_ok(H.orket("validate", { cwd = dir }), "validate without the key")
  end)

  -- a mistyped -C said "no secrets" and exit 0, as a project without any would
  it("list says there is no project in a directory that holds none, not that it has no secrets", function()
    local tmp = H.tmpdir()
    for _, c in ipairs { "secrets list -C " .. H.quote(tmp .. "/nowhere"), "secrets list --json -C " .. H.quote(tmp) } do
      local r = H.orket(c, { cwd = tmp })
      assert.equal(1, r.status, c)
      assert.equal("", r.stdout, c)
      assert.matches("^orket: secrets list: no project in " .. tmp:gsub("%p", "%%%0"), r.stderr, c)
    end
    local dir = project()
    local r = run_ok(H.orket("secrets list --json -C " .. H.quote(dir), { cwd = tmp }), "list")
    assert.equal('{"secrets":[]}\n', r.stdout)
  end)
end)
