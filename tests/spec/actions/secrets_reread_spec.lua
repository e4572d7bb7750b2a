-- A model provider's api_key = secret "NAME" is read again when the secret store changes
-- (docs/secrets.md: `orket secrets set` during a run or under `orket serve` is taken at
-- the next request, not the key the client opened with), and a key that cannot be opened
-- is orket.lua's error at the setting, naming the secret (a command adds its line).
local llm = require "orket.llm"
local store = require "orket.store.secrets"
local secret = require "orket.settings.secret"
local task = require "orket.task"
local H = require "tests.helpers"

local function no_env() return nil end

-- a client of one openai provider at url whose api_key is secret "MODEL_KEY" of dir
local function client(dir, url)
  local models = { providers = { x = { kind = "openai", base_url = url .. "/v1", retry = { max_attempts = 1 },
    api_key = { secret = "MODEL_KEY" } } } }
  secret.bind_all(models, dir)
  return llm.open(models, { getenv = no_env })
end

describe("a model key kept as a secret", function()
  after_each(H.cleanup)

  it("is read again at the next request once the store has changed", function()
    local dir = H.tmpdir()
    assert(store.set(dir, "MODEL_KEY", "key-OLD-11111111", no_env))
    local ok, auths = task.spawn(function()
      local fake = require("tests.fake_server").start()
      local c = assert(client(dir, fake.url))
      local function ask()
        local r, msg = c:chat { model = "x:ok", messages = { { role = "user", content = "hi" } } }
        assert(r, msg)
      end
      ask()
      assert(store.set(dir, "MODEL_KEY", "key-NEW-22222222", no_env))
      ask()
      ask()
      local out = {}
      for _, e in ipairs(fake.log()) do out[#out + 1] = e.authorization end
      fake.stop()
      return out
    end):join()
    assert(ok, auths)
    assert.same({ "Bearer key-OLD-11111111", "Bearer key-NEW-22222222", "Bearer key-NEW-22222222" }, auths)
  end)

  it("that cannot be read at the next request fails it naming the setting and the secret", function()
    local dir = H.tmpdir()
    assert(store.set(dir, "MODEL_KEY", "key-OLD-11111111", no_env))
    local c = assert(client(dir, "http://127.0.0.1:9"))
    os.remove(select(2, store.paths(dir))) -- the key lost, then the store written again (as a set would)
    local file = store.paths(dir)
    local text = H.read(file)
    os.remove(file)
    H.write(file, text)
    local ok, r, msg, class = task.spawn(function()
      return c:chat { model = "x:ok", messages = { { role = "user", content = "hi" } } }
    end):join()
    assert.is_true(ok, r)
    assert.is_nil(r)
    assert.equal("auth", class)
    assert.matches('^orket%.lua: models%.providers%.x%.api_key: secret "MODEL_KEY" cannot be opened: no secret key file at',
      msg)
  end)

  it("that cannot be opened when the client opens is orket.lua's error at the setting, naming the secret", function()
    local dir = H.tmpdir()
    assert(store.set(dir, "MODEL_KEY", "key-OLD-11111111", no_env))
    os.remove(select(2, store.paths(dir)))
    local c, err, code = client(dir, "http://127.0.0.1:9")
    assert.same({ nil, "EINVAL" }, { c, code })
    assert.matches('^orket%.lua: models%.providers%.x%.api_key: secret "MODEL_KEY" cannot be opened: no secret key file at',
      err)
  end)
end)
