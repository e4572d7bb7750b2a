-- Local accounts end to end, on the backend the suite runs on (SQLite, or PostgreSQL under
-- tests/with_pg.lua): `orket users add` stores only an Argon2id hash; a person signs in
-- with name and password for a session cookie, writes with its CSRF token as user:NAME,
-- which the journal's audit and the hash chain name; a wrong password, an unknown name and
-- a viewer's write are refused; disabling a person ends their live session at once; and
-- the web board signs a person in through its form in Chromium.
local H = require "tests.helpers"
local WD = require "tests.webdriver"
local cjson = require "cjson"

local PASS = "correct horse battery"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr))
  return r
end

local function add(dir, name, role, pass)
  return ok(H.orket("users add " .. name .. " --role " .. role .. " --password-env PW", { cwd = dir,
    env = { PW = pass or PASS } }), "users add " .. name)
end

local function req(s, method, path, headers, body)
  local status, text, hs = H.fetch { url = s.url .. path, method = method, headers = headers or {},
    body = body and cjson.encode(body) or nil, total_timeout_ms = 20000 }
  return status, text ~= "" and cjson.decode(text) or nil, hs or {}
end

local JSON = "Content-Type: application/json"

local function sign_in(s, user, pass)
  local st, doc, h = req(s, "POST", "/v1/session", { JSON }, { user = user, password = pass })
  local jar = h["set-cookie"] and ("Cookie: " .. h["set-cookie"]:match("^(orket_session=ors_%x+);")) or nil
  return st, doc, jar
end

describe("local accounts", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("sign a person in, name them in the audit, refuse bad input, and end a disabled person's session", function()
    local dir = H.example("webapp")
    add(dir, "alice", "operator")
    add(dir, "viv", "viewer")
    -- only the Argon2id hash is stored
    local r = ok(H.orket("users list --json", { cwd = dir }), "list")
    local doc = cjson.decode(r.stdout)
    assert.equal("orket.user_list/1", doc.format)
    local list = doc.users
    assert.same({ "alice", "viv" }, { list[1].name, list[2].name })
    assert.same({ "operator", "viewer" }, { list[1].role, list[2].role })
    assert.is_nil(r.stdout:find("argon2", 1, true))
    assert.is_nil(H.store_file_holding(dir, PASS))
    local s = H.serve(dir)

    -- refusals: a wrong password, an unknown name, half a body; none sets a cookie
    local st, doc, jar = sign_in(s, "alice", "wrong password")
    assert.same({ 401, "unauthorized" }, { st, doc.error.code })
    assert.matches("the name or password is not valid", doc.error.message, 1, true)
    assert.is_nil(jar)
    st, doc = sign_in(s, "mallory", PASS)
    assert.same({ 401, "the name or password is not valid" }, { st, doc.error.message })
    st = req(s, "POST", "/v1/session", { JSON }, { user = "alice" })
    assert.equal(400, st)
    -- with a person and no key the server is no longer open to local use
    st = req(s, "GET", "/v1/board", {})
    assert.equal(401, st)

    st, doc, jar = sign_in(s, "alice", PASS)
    assert.equal(200, st)
    assert.same({ "operator", "alice" }, { doc.role, doc.user.name })
    local csrf = doc.csrf
    st, doc = req(s, "GET", "/v1/session", { jar })
    assert.same({ 200, "alice" }, { st, doc.user.name })
    -- a write without the CSRF token is refused; with it, it is the person's
    st = req(s, "POST", "/v1/cards/API-2/comments", { JSON, jar }, { body = "looks good" })
    assert.equal(403, st)
    st = req(s, "POST", "/v1/cards/API-2/comments", { JSON, jar, "X-CSRF-Token: " .. csrf }, { body = "looks good" })
    assert.equal(200, st)
    st, doc = req(s, "GET", "/v1/audit", { jar })
    assert.equal(200, st)
    local last = doc.entries[#doc.entries]
    assert.same({ "user:alice", "comment", "API-2" }, { last.actor, last.action, last.card })

    -- a viewer reads, and may not write
    local _, vdoc, vjar = sign_in(s, "viv", PASS)
    st = req(s, "POST", "/v1/cards/API-2/comments", { JSON, vjar, "X-CSRF-Token: " .. vdoc.csrf }, { body = "x" })
    assert.equal(403, st)
    assert.equal(200, (req(s, "GET", "/v1/board", { vjar })))

    -- disabling alice ends her live session at once, and she cannot sign in again
    r = ok(H.orket("users disable alice", { cwd = dir }), "disable")
    assert.matches("disabled alice (operator)", r.stdout, 1, true)
    st, doc = req(s, "GET", "/v1/board", { jar })
    assert.equal(401, st)
    assert.matches("sign in again", doc.error.message, 1, true)
    st = sign_in(s, "alice", PASS)
    assert.equal(401, st)
    ok(H.orket("users enable alice", { cwd = dir }), "enable")
    assert.equal(200, (sign_in(s, "alice", PASS)))
    assert.equal(0, s.stop())

    -- the hash chain names her too
    r = ok(H.orket("audit export", { cwd = dir }), "export")
    assert.matches('"actor":"user:alice"', r.stdout, 1, true)
    ok(H.orket("audit verify", { cwd = dir }), "verify")
  end)

  it("checks names, roles and passwords, and never takes a password as an argument", function()
    local dir = H.example("webapp")
    local r = H.orket("users add Alice --role operator --password-env PW", { cwd = dir, env = { PW = PASS } })
    assert.equal(2, r.status)
    assert.matches("lowercase letters", r.stderr, 1, true)
    r = H.orket("users add alice --role boss --password-env PW", { cwd = dir, env = { PW = PASS } })
    assert.equal(2, r.status)
    r = H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = "short" } })
    assert.equal(2, r.status)
    assert.matches("a password must be 8 to 1024 characters", r.stderr, 1, true)
    r = H.orket("users add alice --role operator --password " .. PASS, { cwd = dir })
    assert.equal(2, r.status)
    r = H.orket("users add alice --role operator", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("no terminal", r.stderr, 1, true)
    -- both ways without a terminal are named, not only the variable
    assert.matches("give --password-env VAR or --password-stdin\n", r.stderr, 1, true)
    add(dir, "alice", "operator")
    r = H.orket("users add alice --role viewer --password-env PW", { cwd = dir, env = { PW = PASS } })
    assert.equal(1, r.status)
    assert.matches("exists already", r.stderr, 1, true)
    r = H.orket("users disable nobody", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("no person named 'nobody'", r.stderr, 1, true)
  end)

  -- the last --role won, so `--role viewer --role admin` made an admin (as it did a key)
  it("refuses --role given twice with two values, and adds nobody", function()
    local dir = H.example("webapp")
    local r = H.orket("users add bob --role viewer --role admin --password-env PW", { cwd = dir, env = { PW = PASS } })
    assert.equal(2, r.status)
    assert.matches("--role given twice, 'viewer' and 'admin': give it once", r.stderr, 1, true)
    r = ok(H.orket("users list --json", { cwd = dir }), "list")
    assert.same({}, cjson.decode(r.stdout).users)
    add(dir, "bob", "viewer --role viewer") -- the same role twice is one
  end)

  it("signs a person in through the web board's form in Chromium", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = H.example("webapp")
    add(dir, "alice", "operator")
    local s = H.serve(dir)
    WD.with({ width = 1280, height = 900 }, function(wd)
      wd:go(s.url .. "/")
      wd:type(wd:wait("#user", "the sign-in form"), "alice")
      wd:type(wd:find("#password"), PASS)
      wd:press("#signin-button")
      wd:wait('#tree li[data-card="API-2"]', "the board's tree")
      -- the header names the role in the project shown: an operator account develops in the default project
      assert.matches("alice · developer", wd:text_of("#who"))
      -- the password is not kept by the page; the session is an HttpOnly cookie it cannot read
      assert.equal("", wd:js("return document.getElementById('password').value"))
      assert.equal("", wd:js("return document.cookie"))
    end)
  end)
end)
