-- The secret store (orket.store.secrets) and secret "NAME" in orket.lua
-- (orket.settings.secret): values sealed at rest under a 0600 key file, refused under a
-- wrong key, a loose or wrong-sized key file, or a value moved to another name; rotation
-- re-seals every value and a rotation cut short is finished; references print as
-- secret:NAME and give their value by the documented precedence; an unknown name is
-- orket.lua's error with its line and field; the model client and the forge read them.
local H = require "tests.helpers"
local uv = require "luv"
local store = require "orket.store.secrets"
local secret = require "orket.settings.secret"
local config = require "orket.config"
local llm = require "orket.llm"
local forge = require "orket.forge"

local VALUE = "ghp_Zq8vN3tTopSecretValue42"

local function project() return H.tmpdir() end -- its .orket/ made by the first set

local function no_env() return nil end

local function mode(path) return uv.fs_stat(path).mode & 511 end

describe("the secret store", function()
  after_each(H.cleanup)

  it("seals each value under a key file it makes with mode 600, and lists names only", function()
    local dir = project()
    local res = assert(store.set(dir, "FORGE_TOKEN", VALUE, no_env))
    assert.same({ "FORGE_TOKEN", false }, { res.name, res.replaced })
    assert.equal(VALUE, store.reveal(dir, "FORGE_TOKEN", no_env))
    local file, key = store.paths(dir)
    assert.equal(384, mode(key))
    assert.equal(32, uv.fs_stat(key).size)
    assert.equal(384, mode(file))
    local text = H.read(file)
    assert.is_nil(text:find(VALUE, 1, true))
    assert.is_nil(text:find((VALUE:gsub(".", function(c) return string.format("%02x", c:byte()) end)), 1, true))
    assert.truthy(text:find("FORGE_TOKEN", 1, true)) -- names are clear: listing needs no key
    local list = assert(store.list(dir))
    assert.same({ "FORGE_TOKEN" }, { list[1].name })
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", list[1].set_at)
    assert.is_nil(list[1].value)
    assert.is_true(store.set(dir, "FORGE_TOKEN", "other", no_env).replaced)
    assert.equal("other", store.reveal(dir, "FORGE_TOKEN", no_env))
    assert.is_true(store.remove(dir, "FORGE_TOKEN"))
    local ok, err, code = store.remove(dir, "FORGE_TOKEN")
    assert.same({ nil, "ENOENT" }, { ok, code })
    assert.matches("no secret named FORGE_TOKEN", err)
  end)

  it("refuses bad names and values, a loose or wrong-sized key file, and a wrong key", function()
    local dir = project()
    for _, n in ipairs { "1X", "A-B", "", string.rep("A", 65) } do
      local ok, err, code = store.set(dir, n, "v", no_env)
      assert.same({ nil, "EINVAL" }, { ok, code })
      assert.matches("a secret's name is letters, digits and _", err)
    end
    assert.same({ nil, "EINVAL" }, { select(1, store.set(dir, "A", "", no_env)), select(3, store.set(dir, "A", "", no_env)) })
    assert(store.set(dir, "A", VALUE, no_env))
    local _, key = store.paths(dir)
    uv.fs_chmod(key, 420)
    local v, err, code = store.reveal(dir, "A", no_env)
    assert.same({ nil, "EPERM" }, { v, code })
    assert.equal("the secret key file " .. key .. ": its mode lets other users read it; chmod 600 it", err)
    uv.fs_chmod(key, 384)
    -- a folder (a Secret mounted as a volume) is said so, never "chmod 600 it"
    local sealed = require "orket.store.sealed"
    uv.fs_mkdir(dir .. "/keydir", 448)
    assert.same({ nil, "--key-file " .. dir .. "/keydir: is a folder, not a key file (name the file that holds the key)",
      "EINVAL" }, { sealed.read_key_file(dir .. "/keydir") })
    -- a pipe (--key-file <(pass show k)) is read as a file is
    local fifo = dir .. "/keypipe"
    assert(os.execute(string.format("mkfifo -m 600 %s && (printf '%%s' %s > %s &)", H.quote(fifo),
      string.rep("ab", 32), H.quote(fifo))))
    assert.equal(string.rep("\171", 32), sealed.read_key_file(fifo))
    local good = H.read(key)
    H.write(key, "short")
    uv.fs_chmod(key, 384)
    v, err, code = store.reveal(dir, "A", no_env)
    assert.same({ nil, "EINVAL" }, { v, code })
    assert.matches("must hold 32 bytes, or 64 hex digits %(it has 5 bytes%)", err)
    H.write(key, string.rep("k", 32))
    v, err, code = store.reveal(dir, "A", no_env)
    assert.same({ nil, "EKEY" }, { v, code })
    assert.matches("is not the key the store's values were sealed under", err)
    H.write(key, good)
    os.remove(key)
    v, err, code = store.reveal(dir, "A", no_env)
    assert.same({ nil, "ENOENT" }, { v, code })
    assert.matches("no secret key file at " .. key:gsub("%p", "%%%0"), err)
    -- and a key elsewhere, named by the environment
    local other = H.tmpdir() .. "/k"
    H.write(other, good)
    uv.fs_chmod(other, 384)
    assert.equal(VALUE, store.reveal(dir, "A", function(k) return k == store.KEY_ENV and other or nil end))
  end)

  it("makes one change at a time: another waits for the store's lock", function()
    local dir = project()
    assert(store.set(dir, "A", "alpha", no_env))
    local held = assert(require("orket.c.lockfile").acquire(dir .. "/.orket/secrets.lock"))
    local wait = store.LOCK_WAIT_MS
    store.LOCK_WAIT_MS = 50
    local ok, _, code = store.set(dir, "B", "beta", no_env)
    local rok, _, rcode = store.rotate(dir, no_env)
    store.LOCK_WAIT_MS = wait
    held:release()
    assert.same({ nil, "EBUSY", nil, "EBUSY" }, { ok, code, rok, rcode })
    assert(store.set(dir, "B", "beta", no_env))
    assert.equal(2, #store.list(dir))
  end)

  it("refuses a value moved under another name", function()
    local dir = project()
    assert(store.set(dir, "A", "value of a", no_env))
    assert(store.set(dir, "B", "value of b", no_env))
    local file = store.paths(dir)
    local doc = require("cjson").decode(H.read(file))
    doc.secrets.B.value = doc.secrets.A.value
    H.write(file, require("cjson").encode(doc))
    local v, err, code = store.reveal(dir, "B", no_env)
    assert.same({ nil, "ETAMPERED" }, { v, code })
    assert.matches("sealed under another name", err)
    -- an edited document is refused whole, naming the file
    doc.secrets.B.rotated_at = require("cjson").null
    H.write(file, require("cjson").encode(doc))
    local list, lerr, lcode = store.list(dir)
    assert.same({ nil, "EINVAL" }, { list, lcode })
    assert.equal(file .. ": not a secret store of this version (was it edited?)", lerr)
  end)

  it("rotates every value under a new key, and finishes a rotation cut short", function()
    local dir = project()
    assert(store.set(dir, "A", "alpha", no_env))
    assert(store.set(dir, "B", "beta", no_env))
    local file, key = store.paths(dir)
    local old_key, old_store = H.read(key), H.read(file)
    assert.equal(2, store.rotate(dir, no_env))
    assert.are_not.equal(old_key, H.read(key))
    assert.equal(384, mode(key))
    assert.is_nil(uv.fs_stat(key .. ".next"))
    assert.same({ "alpha", "beta" }, { store.reveal(dir, "A", no_env), store.reveal(dir, "B", no_env) })
    assert.truthy(store.list(dir)[1].rotated_at)
    -- the old key opens nothing of the new store
    local new_key = H.read(key)
    H.write(key, old_key)
    assert.equal("EKEY", select(3, store.reveal(dir, "A", no_env)))
    -- cut after the store was replaced, before the key was: the next use finishes it
    H.write(key .. ".next", new_key)
    uv.fs_chmod(key .. ".next", 384)
    assert.equal("alpha", store.reveal(dir, "A", no_env))
    assert.equal(new_key, H.read(key))
    -- cut before: the old store and key, whole
    H.write(file, old_store)
    H.write(key, old_key)
    assert.equal("beta", store.reveal(dir, "B", no_env))
  end)
end)

describe("secret \"NAME\" in orket.lua", function()
  after_each(H.cleanup)

  it("is bound to the project, prints as secret:NAME, and gives its value by precedence", function()
    local dir = project()
    assert(store.set(dir, "MODEL_KEY", VALUE, no_env))
    local data = { git = { token = { secret = "MODEL_KEY" } } }
    local found = secret.bind_all(data, dir)
    assert.same({ { path = "git.token", name = "MODEL_KEY" } }, found)
    local ref = data.git.token
    assert.equal("secret:MODEL_KEY", tostring(ref))
    assert.is_nil(tostring(ref):find(VALUE, 1, true))
    assert.same({}, secret.problems(found, dir, no_env))
    assert.equal(VALUE, secret.value(ref, nil, no_env))
    local env = { ORKET_SECRET_MODEL_KEY = "from-env", TOKEN = "from-var" }
    local getenv = function(k) return env[k] end
    assert.equal("from-var", secret.value(ref, "TOKEN", getenv))
    assert.equal("from-env", secret.value(ref, nil, getenv))
    env.TOKEN = ""
    assert.equal("from-env", secret.value(ref, "TOKEN", getenv))
    assert.is_nil(secret.value(nil, "UNSET", no_env))
  end)

  it("names the file, line and field of an unknown or malformed secret", function()
    local dir = project()
    H.write(dir .. "/orket.lua", "name = 'p'\ngit = { remote = '/r',\n  forge = 'gitea', repo = 'a/b', api_url = 'http://h',\n"
      .. "  token = secret \"NOPE\" }\n")
    local cfg, err, code = config.load(dir)
    assert.same({ nil, "EINVAL" }, { cfg, code })
    assert.equal("orket.lua:4: git.token: secret \"NOPE\" is not in the project's secret store (set it with "
      .. "'orket secrets set NOPE', or set ORKET_SECRET_NOPE)", err)
    -- given by the environment, it is known
    assert(config.load(dir, function(k) return k == "ORKET_SECRET_NOPE" and "x" or nil end))
    H.write(dir .. "/orket.lua", "name = 'p'\n\nx = secret(\"9lives\")\n")
    cfg, err = config.load(dir)
    assert.is_nil(cfg)
    assert.matches("^orket%.lua:3: secret: a secret's name is letters", err)
    H.write(dir .. "/orket.lua", "git = { remote = '/r', forge = 'gitea', repo = 'a/b', api_url = 'http://h',\n"
      .. "  token = 'ghp_plain' }\n")
    local _, serr = config.settings(dir)
    assert.matches("^orket%.lua:2: git%.token: must be secret \"NAME\"", serr)
  end)

  it("gives a provider's api_key to the model client and git.token to the forge, never into the config", function()
    local dir = project()
    assert(store.set(dir, "MODEL_KEY", VALUE, no_env))
    assert(store.set(dir, "FORGE_TOKEN", "forge-" .. VALUE, no_env))
    H.write(dir .. "/orket.lua", [[
models = { default = "x:m", providers = { x = { kind = "openai", base_url = "http://127.0.0.1:9/v1",
  api_key = secret "MODEL_KEY" } } }
git = { remote = "/r", forge = "gitea", repo = "a/b", api_url = "http://h", token = secret "FORGE_TOKEN" }
]])
    local cfg, s = assert(config.settings(dir))
    local cjson = require "cjson"
    assert.is_nil(cjson.encode(cfg.models):find(VALUE, 1, true))
    assert.is_nil(cjson.encode(s.git):find(VALUE, 1, true))
    assert.equal("secret:MODEL_KEY", tostring(cfg.models.providers.x.api_key))
    local client = assert(llm.open(cfg, { getenv = no_env }))
    local d = client:describe("x")
    assert.same({ true, "MODEL_KEY" }, { d.key_set, d.key_secret })
    assert.equal(VALUE, client.providers.x.key)
    assert.equal("forge-" .. VALUE, forge.token(s.git, no_env))
    -- the variable git.token_env names wins when it is set
    assert.equal("from-var", forge.token({ token = s.git.token, token_env = "T" },
      function(k) return k == "T" and "from-var" or nil end))
    -- a store without the key: a clear error, not a request without a key
    os.remove(select(2, store.paths(dir)))
    local c2, err, code = llm.open(cfg, { getenv = no_env })
    assert.same({ nil, "EINVAL" }, { c2, code })
    assert.matches("^orket%.lua:2: models%.providers%.x%.api_key: secret \"MODEL_KEY\" cannot be opened: no secret key file at", err)
    local t, terr = forge.token(s.git, no_env)
    assert.is_nil(t)
    assert.matches("^orket%.lua:3: git%.token: secret \"FORGE_TOKEN\" cannot be opened: no secret key file", terr)
  end)
end)
