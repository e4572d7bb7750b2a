-- How orket serve refuses, end to end: a person's route asked by a server key (403, as every
-- 403 is said), a webhook body that is not a JSON object (every kind alike), a key's name
-- by the one rule the CLI and the API share, and the people panel's refusals in the web
-- board's error style.
local F = require "tests.fixtures"
local H = require "tests.helpers"
local WD = require "tests.webdriver"
local cjson = require "cjson"
local keys = require "orket.serve.keys"

local PASS = "correct horse battery"
local JSON = "Content-Type: application/json"

local function add(dir, name, role)
  return H.ok(H.orket("users add " .. name .. " --role " .. role .. " --password-env PW", { cwd = dir,
    env = { PW = PASS } }), "users add " .. name)
end

-- the member names of an error answer's error object, sorted
local function shape(doc)
  local names = {}
  for k in pairs(doc.error) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ",")
end

describe("a person's routes (/v1/me/keys) asked by a caller that is no person", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("answer 403 forbidden, shaped as the server's other 403s, and the OpenAPI document says so", function()
    local dir = H.example("webapp")
    local admin = H.api_key(dir, "boss", "admin")
    local viewer = H.api_key(dir, "ci", "viewer")
    local s = H.serve(dir)
    -- another 403 of the server, for its shape: a viewer key asking for the keys
    local st, other = H.api(s, "GET", "/v1/keys", viewer)
    assert.same({ 403, "forbidden" }, { st, other.error.code })
    local asks = { { "POST", "/v1/me/keys", { name = "mine", role = "viewer" } }, { "GET", "/v1/me/keys" },
      { "DELETE", "/v1/me/keys/0123456789abcdef" } }
    for _, key in ipairs { admin, viewer } do
      for _, a in ipairs(asks) do
        local what = a[1] .. " " .. a[2]
        local doc, text
        st, doc, text = H.api(s, a[1], a[2], key, a[3])
        assert.equal(403, st, what .. ": " .. tostring(text))
        assert.equal("forbidden", doc.error.code, what)
        assert.equal(shape(other), shape(doc), what)
        assert.matches("only a person has personal keys", doc.error.message, 1, true)
        assert.matches("/v1/keys", doc.error.remedy, 1, true)
      end
    end
    -- no key was made by the refused POST
    st, other = H.api(s, "GET", "/v1/keys", admin)
    assert.equal(200, st)
    for _, k in ipairs(other.keys) do assert.is_not.equal("mine", k.name) end
    -- the route's 403 is described as what it is
    local _, api = H.api(s, "GET", "/v1/openapi.json", admin)
    for _, m in ipairs { "post", "get" } do
      local r403 = assert(api.paths["/v1/me/keys"][m].responses["403"], m)
      assert.matches("not a person", r403.description, 1, true)
      assert.same({ "error" }, r403.content["application/json"].schema.required)
    end
    assert.equal(0, s.stop())
  end)
end)

describe("a signed webhook body that is not a JSON object", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is refused alike whatever it is (an array, empty or not, a string, a number, true, false, null)", function()
    local crypto = require "orket.c.crypto"
    local dir = H.example("webapp")
    -- appended: on PostgreSQL the file already names the test's database
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. '\ngit = { remote = "file:///nowhere.git", '
      .. 'forge = "github", repo = "acme/notes", api_url = "http://forge.invalid", token_env = "FORGE_TOKEN", '
      .. 'webhook_secret_env = "HOOK_SECRET" }\n')
    local s = H.serve(dir, { env = { HOOK_SECRET = "s3cret" } })
    local n = 0
    local function deliver(body)
      n = n + 1
      local st, text = H.fetch { url = s.url .. "/v1/webhooks/github", method = "POST", body = body,
        headers = { "X-GitHub-Event: pull_request", "X-GitHub-Delivery: d-" .. n,
          "X-Hub-Signature-256: sha256=" .. crypto.hmac_sha256("s3cret", body) } }
      return st, cjson.decode(text)
    end
    local history = #H.card_json(dir, "API-2").history
    for _, body in ipairs { "[]", " [ ] ", "[1]", '[{"action": "closed"}]', '"closed"', "1", "-2.5", "true", "false",
        "null", "\n[]\n" } do
      local st, doc = deliver(body)
      assert.same({ 400, "bad_json" }, { st, doc.error and doc.error.code }, body .. ": " .. cjson.encode(doc))
      assert.matches("^the body must be a JSON object", doc.error.message)
    end
    assert.equal(history, #H.card_json(dir, "API-2").history)
    -- an object is read (one that names nothing here: ignored), with whitespace before it too
    for _, body in ipairs { "{}", ' \n\t{"action": "opened"}' } do
      local st, doc = deliver(body)
      assert.same({ 200, "ignored" }, { st, doc.outcome }, body)
    end
    assert.equal(0, s.stop())
  end)
end)

describe("a key's name", function()
  after_each(H.cleanup)

  it("is held to one rule, said in the same words by orket keys create and the API", function()
    local dir = H.example("webapp")
    local cases = { { "", "the key's name is empty; " .. keys.NAME_RULE }, { "bad name", keys.NAME_RULE },
      { "_x", keys.NAME_RULE }, { ("n"):rep(keys.NAME_MAX + 1), keys.NAME_RULE },
      { "0123456789abcdef", "a key's name may not be 16 hex digits, as a key's id is" } }
    for _, c in ipairs(cases) do
      local r = H.orket("keys create " .. H.quote(c[1]) .. " --role viewer", { cwd = dir })
      assert.equal(2, r.status, c[1])
      assert.matches("orket: keys create: " .. c[2], r.stderr, 1, true)
      assert.matches("usage: orket keys create NAME", r.stderr, 1, true)
      -- the store's create says the same
      local db = assert(require("orket.project").open_store(dir))
      local key, msg, code = keys.create(db, dir, c[1], "viewer")
      db:close()
      assert.same({ "EUSAGE", true }, { code, msg:find(c[2], 1, true) == 1 }, c[1])
      assert.is_nil(key)
    end
    assert.equal(0, H.orket("keys create " .. ("n"):rep(keys.NAME_MAX) .. " --role viewer", { cwd = dir }).status)
    assert.equal(keys.NAME_MAX, keys.NAME_SCHEMA.maxLength)
  end)
end)

describe("the web board's people panel", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("shows a refusal in the error style the other panels use, and a change done in its own", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = H.example("webapp")
    add(dir, "root", "admin")
    add(dir, "bob", "viewer")
    local s = H.serve(dir, F.ROOMY)
    WD.with({ width = 1280, height = 900 }, function(wd)
      wd:go(s.url .. "/")
      wd:type(wd:wait("#user", "the sign-in form"), "root")
      wd:type(wd:find("#password"), PASS)
      wd:press("#signin-button")
      local row = '#people-list tr[data-person="root"]'
      wd:wait(row, "the people page")
      local function status()
        return wd:js("const e = document.getElementById('people-status'); return [e.textContent, e.className, "
          .. "getComputedStyle(e).color]")
      end
      -- the error style's color, as the sign-in form's error line has it
      local red = wd:js("return getComputedStyle(document.getElementById('signin-error')).color")
      -- root is the last enabled server admin: disabling them is refused (409)
      wd:press(row .. " button.small:not(.link)", "root's Disable button")
      H.wait_for(function() return (status()[1] or ""):find("last enabled server admin", 1, true) end, "the refusal said")
      local said = status()
      assert.equal("error", said[2])
      assert.equal(red, said[3])
      -- a change done: said in the panel's own (hint) style, no red left over
      wd:js("document.getElementById('grant-user').value = 'bob'; document.getElementById('grant-project').value = "
        .. "'default'; document.getElementById('grant-role').value = 'developer'")
      wd:press("#grant-button", "the Grant button")
      H.wait_for(function() return status()[1] == "bob is developer in default" end, "the grant said")
      said = status()
      assert.equal("hint", said[2])
      assert.is_not.equal(red, said[3])
    end)
    assert.equal(0, s.stop())
  end)
end)

-- A write that takes no body took any: resume's {"model": ...} answered 202 with the model
-- dropped without a word, and "not json" was never read
describe("a write route that takes no body", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses a body that says anything, and takes none or {}", function()
    local dir = H.example("webapp")
    local op = H.api_key(dir, "op", "operator")
    local admin = H.api_key(dir, "boss", "admin")
    H.ok(H.orket("users add ann --role operator --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    local s = H.serve(dir)
    for _, case in ipairs {
      { "POST", "/v1/runs/1/resume", op, '{"model":"nowhere:x"}', "bad_request", 'the field "model" is not one it reads' },
      { "POST", "/v1/runs/1/stop", op, "this is not json", "bad_json" },
      { "POST", "/v1/sandboxes", op, '{"card":"NOPE"}', "bad_request", 'the field "card" is not one it reads' },
      { "POST", "/v1/users/ann/unlock", admin, "[1]", "bad_request", "this route takes no body" },
      { "DELETE", "/v1/users/ann/keys/nope", admin, '"x"', "bad_request", "this route takes no body" },
    } do
      local st, doc, text = H.api(s, case[1], case[2], case[3], case[4])
      assert.equal(400, st, case[2] .. ": " .. tostring(text))
      assert.equal(case[5], doc.error.code, text)
      if case[6] then assert.matches(case[6], doc.error.message, 1, true) end
    end
    -- none, or an empty object, is read as before (the run is not there: 404)
    assert.equal(404, (H.api(s, "POST", "/v1/runs/77/stop", op)))
    assert.equal(404, (H.api(s, "POST", "/v1/runs/77/stop", op, "{}")))
    local st, doc = H.api(s, "POST", "/v1/users/ann/unlock", admin, "{ }")
    assert.equal(200, st, cjson.encode(doc))
  end)
end)
