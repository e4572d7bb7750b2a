-- The secret store's key over a project's life (orket.store.secrets, docs/secrets.md): a key
-- file ORKET_SECRETS_KEY_FILE names is not rotated unless the caller says no other store
-- uses it (one rotation would leave the others' values unopenable); a store emptied after
-- its key was lost takes a new key; a lost, wrong or damaged key is said with the way out,
-- never with advice to make a new random key; a value that cannot be a credential (a line
-- break, a NUL, only spaces) is refused at set naming the secret; a refused name is never
-- repeated (it may be the value); a misspelt name gets the nearest one.
local H = require "tests.helpers"
local uv = require "luv"
local store = require "orket.store.secrets"
local secret = require "orket.settings.secret"

local function no_env() return nil end
local function env_key(path) return function(k) return k == store.KEY_ENV and path or nil end end

describe("the secret store's key", function()
  after_each(H.cleanup)

  it("named by ORKET_SECRETS_KEY_FILE, is rotated only on the caller's word that no other store uses it", function()
    local a, b = H.tmpdir(), H.tmpdir()
    local shared = H.tmpdir() .. "/shared.key"
    local env = env_key(shared)
    assert(store.set(a, "MODEL_KEY", "key-for-A-1234", env))
    assert(store.set(b, "MODEL_KEY", "key-for-B-5678", env))
    local before = H.read(shared)
    local n, err, code = store.rotate(a, env)
    assert.same({ nil, "EINVAL" }, { n, code })
    assert.matches("the key file " .. shared .. " comes from ORKET_SECRETS_KEY_FILE", err, 1, true)
    assert.matches("orket secrets rotate --not-shared", err, 1, true)
    assert.matches("copy " .. shared .. " to " .. a .. "/.orket/secrets.key", err, 1, true)
    assert.equal(before, H.read(shared))
    assert.equal("key-for-B-5678", store.reveal(b, "MODEL_KEY", env))
    -- the caller's word: rotated (and then b's values are lost, as the word said there were none)
    assert.equal(1, store.rotate(a, env, { not_shared = true }))
    assert.are_not.equal(before, H.read(shared))
    assert.equal("key-for-A-1234", store.reveal(a, "MODEL_KEY", env))
    -- the variable naming the project's own key file is the project's own key
    local c = H.tmpdir()
    assert(store.set(c, "X", "value-x", no_env))
    assert.equal(1, store.rotate(c, env_key(c .. "/.orket/secrets.key")))
    assert.equal(1, store.rotate(c, no_env))
  end)

  it("is taken new by a store whose every value was removed after its key was lost", function()
    local dir = H.tmpdir()
    assert(store.set(dir, "MODEL_KEY", "v-123456", no_env))
    local _, key = store.paths(dir)
    H.write(key, string.rep("k", 32)) -- lost: another key in its place
    local v, err, code = store.reveal(dir, "MODEL_KEY", no_env)
    assert.same({ nil, "EKEY" }, { v, code })
    -- the way out is said
    assert.matches("restore " .. key .. " from where it was kept", err, 1, true)
    assert.matches("remove each secret ('orket secrets rm NAME') and set them again", err, 1, true)
    assert.equal("EKEY", select(3, store.set(dir, "OTHER", "o-1234", no_env)))
    assert(store.remove(dir, "MODEL_KEY"))
    assert(store.set(dir, "MODEL_KEY", "newval1234", no_env))
    assert.equal("newval1234", store.reveal(dir, "MODEL_KEY", no_env))
    -- the key file gone too: a new one is made
    assert(store.remove(dir, "MODEL_KEY"))
    os.remove(key)
    assert(store.set(dir, "MODEL_KEY", "again-1234", no_env))
    assert.equal(32, uv.fs_stat(key).size)
    assert.equal("again-1234", store.reveal(dir, "MODEL_KEY", no_env))
    -- an empty store rotates with no old key to open
    assert(store.remove(dir, "MODEL_KEY"))
    H.write(key, "not a key")
    assert.equal(0, store.rotate(dir, no_env))
    assert.equal(32, uv.fs_stat(key).size)
  end)

  it("damaged (cut short), is said damaged with the way to restore it, never to make a new one", function()
    local dir = H.tmpdir()
    assert(store.set(dir, "A", "alpha-1234", no_env))
    local _, key = store.paths(dir)
    H.write(key, H.read(key):sub(1, 31))
    uv.fs_chmod(key, 384)
    for _, f in ipairs { function() return store.reveal(dir, "A", no_env) end,
      function() return store.set(dir, "B", "beta-1234", no_env) end, function() return store.rotate(dir, no_env) end } do
      local v, err, code = f()
      assert.same({ nil, "EINVAL" }, { v, code })
      assert.matches("the secret key file " .. key .. " is damaged: it must hold 32 bytes, or 64 hex digits (it has 31 "
        .. "bytes); restore " .. key .. " from where it was kept", err, 1, true)
      assert.is_nil(err:find("head -c 32", 1, true))
    end
  end)
end)

describe("a secret's value and name", function()
  after_each(H.cleanup)

  it("refuses a value with a line break, a NUL or only spaces, naming the secret and changing nothing", function()
    local dir = H.tmpdir()
    assert(store.set(dir, "MODEL_KEY", "sk-good-1234", no_env))
    local before = H.read((store.paths(dir)))
    for value, why in pairs { ["sk-abcdef123\r\nX-Injected: yes"] = "holds a line break at byte 13",
      ["sk-abc\n"] = "holds a line break at byte 7", ["sk\0abc"] = "holds a NUL at byte 3",
      ["   "] = "is only spaces", ["\t \t"] = "is only spaces" } do
      local ok, err, code = store.set(dir, "MODEL_KEY", value, no_env)
      assert.same({ nil, "EINVAL" }, { ok, code })
      assert.matches("secret MODEL_KEY: the value " .. why, err, 1, true)
      assert.is_nil(err:find(value, 1, true))
    end
    assert.equal(before, H.read((store.paths(dir))))
    assert.equal("sk-good-1234", store.reveal(dir, "MODEL_KEY", no_env))
  end)

  it("refused, is never repeated: it may be the value", function()
    for word, why in pairs { ["MODEL_KEY=sk-live-LEAKME123456"] = "holds '='", ["sk-live-LEAKME123456"] = "another character",
      ["9sklive"] = "starts with a digit", [string.rep("A", 65)] = "has 65 bytes" } do
      local ok, err = store.check_name(word)
      assert.is_nil(ok)
      assert.matches("at most 64 bytes", err, 1, true)
      assert.matches(why, err, 1, true)
      assert.is_nil(err:find(word, 1, true), word)
      assert.is_nil(err:find("LEAKME", 1, true))
    end
  end)

  it("misspelt, is answered with the nearest name the store has", function()
    local dir = H.tmpdir()
    assert(store.set(dir, "FORGE_TOKEN", "tok-123456", no_env))
    local ok, err, code = store.remove(dir, "FORGE_TOKN")
    assert.same({ nil, "ENOENT" }, { ok, code })
    assert.equal("no secret named FORGE_TOKN; did you mean FORGE_TOKEN?", err)
    local problems = secret.problems({ { path = "git.token", name = "FORGE_TOKN" } }, dir, no_env)
    assert.same({ "orket.lua: git.token: secret \"FORGE_TOKN\" is not in the project's secret store, which has "
      .. "FORGE_TOKEN: did you mean secret \"FORGE_TOKEN\"?" }, problems)
    -- nothing near: both ways to give it
    problems = secret.problems({ { path = "git.token", name = "ZZZ" } }, dir, no_env)
    assert.matches("set it with 'orket secrets set ZZZ', or set ORKET_SECRET_ZZZ", problems[1], 1, true)
  end)

  it("is checked against a key file ORKET_SECRETS_KEY_FILE names that is not there (a mistyped path)", function()
    local dir = H.tmpdir()
    assert(store.set(dir, "MODEL_KEY", "sk-good-1234", no_env))
    local found = { { path = "models.providers.fake.api_key", name = "MODEL_KEY" } }
    local missing = H.tmpdir() .. "/nonexist"
    local problems = secret.problems(found, dir, env_key(missing))
    assert.equal(1, #problems)
    assert.matches("orket.lua: models.providers.fake.api_key: secret \"MODEL_KEY\" cannot be opened: no secret key "
      .. "file at " .. missing, problems[1], 1, true)
    -- a checkout that holds no key file (none named): the values are not judged
    os.remove(select(2, store.paths(dir)))
    assert.same({}, secret.problems(found, dir, no_env))
  end)

  it("a forge token it cannot open is named, at its orket.lua line, as a model key is", function()
    local dir = H.tmpdir()
    H.write(dir .. "/orket.lua", 'name = "p"\ngit = {\n  token = secret "FORGE_TOKEN",\n}\n')
    assert(store.set(dir, "FORGE_TOKEN", "tok-1234", no_env))
    local missing = H.tmpdir() .. "/nonexist"
    local v, msg = require("orket.forge").token({ token = { secret = "FORGE_TOKEN", dir = dir } }, env_key(missing))
    assert.is_nil(v)
    assert.matches('^orket.lua:3: git.token: secret "FORGE_TOKEN" cannot be opened: no secret key file at ', msg)
  end)
end)
