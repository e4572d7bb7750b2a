-- One server, many projects, end to end on the backend the suite runs on (SQLite, or
-- PostgreSQL under tests/with_pg.lua): `orket projects add` hosts a second project; each
-- person sees only the projects they are members of, and reaching another's by its name,
-- in every route the router serves (enumerated here, so that a new route cannot escape the
-- check), answers 404; a viewer's write is refused; writes are named by their person.
local F = require "tests.fixtures"
local H = require "tests.helpers"
local WD = require "tests.webdriver"
local cjson = require "cjson"

local PASS = "correct horse battery"
local JSON = "Content-Type: application/json"
local ROOMY = F.ROOMY

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

-- the PostgreSQL URL a project folder's orket.lua names (tests.backends.project) | nil
local function pg_url(dir)
  local url
  for u in H.read(dir .. "/orket.lua"):gmatch('store = { url = "([^"]+)" }') do url = u end
  return url
end

-- on PostgreSQL, the folder's database is given an id of its own, as a database made by
-- its own migration has (the tests' databases are copies of one template, which keeps it)
local function own_identity(dir)
  local url = pg_url(dir)
  if not url then return end
  local db = assert(require("orket.store").open_url(url))
  assert(db:run("UPDATE store_identity SET id = md5(random()::text)"))
  db:close()
end

local function add(dir, name, role)
  return ok(H.orket("users add " .. name .. " --role " .. role .. " --password-env PW", { cwd = dir,
    env = { PW = PASS } }), "users add " .. name)
end

local function req(s, method, path, headers, body)
  local status, text, hs = H.fetch { url = s.url .. path, method = method, headers = headers or {},
    body = body and cjson.encode(body) or nil, total_timeout_ms = 20000 }
  return status, text ~= "" and require("cjson.safe").decode(text) or nil, hs or {}
end

-- a person signed in: {cookie header, csrf header}
local function sign_in(s, user, password)
  local st, doc, h = req(s, "POST", "/v1/session", { JSON }, { user = user, password = password or PASS })
  assert(st == 200, "sign-in of " .. user .. ": " .. tostring(st))
  return { "Cookie: " .. h["set-cookie"]:match("^(orket_session=ors_%x+);"), "X-CSRF-Token: " .. doc.csrf, JSON }
end

-- two projects: "default" (webapp) where alice develops, and "notes" where bob develops
local function two_projects()
  local dir = H.example("webapp")
  local other = H.example("notes")
  local r = ok(H.orket("projects add " .. other .. " --name notes", { cwd = dir }), "projects add")
  assert.matches("added project notes", r.stdout, 1, true)
  assert.matches("acting as the local operator (local:", r.stderr, 1, true)
  add(dir, "alice", "operator")
  add(dir, "bob", "viewer")
  ok(H.orket("projects revoke default bob", { cwd = dir }), "revoke")
  ok(H.orket("projects grant notes bob developer", { cwd = dir }), "grant")
  return dir, other
end

-- a route's pattern with its parameters filled
local function filled(pattern) return (pattern:gsub("{[%w_]+%*}", "x/y"):gsub("{[%w_]+}", "1")) end

-- the same, under project p
local function scoped(p, pattern)
  local path = filled(pattern)
  return "/v1/projects/" .. p .. (path:match("^/v1(/.*)$") or path)
end

-- the routes that need no key: each says nothing of a project, or checks its own secret;
-- under a project's prefix each answers a stranger the same for any name (the probes want
-- a member's key there, a webhook is refused as for a bad signature: tested below)
local OPEN = { health = true, ready = true, session_create = true, webhook_gitea = true, webhook_github = true,
  branding = true,
  -- the server's ways of signing in, and the provider's redirect and callback: a session is
  -- the server's, and the callback checks its own state, nonce and ID token
  sign_in_ways = true, sign_in_oidc = true, sign_in_oidc_callback = true }

describe("one server, many projects", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("shows each person only their projects, and every route of another's answers 404", function()
    local dir = two_projects()
    -- a project added and removed again: its rows say its name, folder and members too
    ok(H.orket("projects add " .. H.example("adder") .. " --name secret_lab", { cwd = dir }), "projects add")
    ok(H.orket("projects remove secret_lab", { cwd = dir }), "projects remove")
    -- the commands' writes are in the audit's hash chain, named by the local operator
    local r = ok(H.orket("audit export", { cwd = dir }), "audit export")
    assert.matches('"action":"member_grant","actor":"local:[%w._-]+"', r.stdout)
    assert.matches('"action":"project_add","actor":"local:[%w._-]+"', r.stdout)
    r = ok(H.orket("projects list --json", { cwd = dir }), "list")
    local listed = cjson.decode(r.stdout).projects
    assert.same({ "default", "notes" }, { listed[1].name, listed[2].name })
    assert.same({ { name = "bob", role = "developer" } }, listed[2].members)
    local s = H.serve(dir, ROOMY)
    local alice, bob = sign_in(s, "alice"), sign_in(s, "bob")

    local st, doc = req(s, "GET", "/v1/projects", alice)
    assert.same({ 200, 1, "default", "developer" }, { st, #doc.projects, doc.projects[1].name, doc.projects[1].role })
    st, doc = req(s, "GET", "/v1/projects", bob)
    assert.same({ 200, 1, "notes" }, { st, #doc.projects, doc.projects[1].name })
    -- a server key of no person, operator: a developer of the default project, by the
    -- project's name for that role as a person's (it said "operator")
    local sk = ok(H.orket("keys create srv-ops --role operator", { cwd = dir }), "a server key").stdout:gsub("\n$", "")
    st, doc = req(s, "GET", "/v1/projects", { "Authorization: Bearer " .. sk })
    assert.same({ 200, 1, "default", "developer" }, { st, #doc.projects, doc.projects[1].name, doc.projects[1].role })

    -- each reads their own, under the project's path (and alice under the old path too)
    st, doc = req(s, "GET", "/v1/projects/notes/board", bob)
    assert.equal(200, st)
    assert.matches("NOTES%-1", cjson.encode(doc))
    assert.equal(200, (req(s, "GET", "/v1/board", alice)))
    assert.equal(200, (req(s, "GET", "/v1/projects/default/cards/API-2", alice)))
    -- by id through one's own project, another's card does not exist
    assert.equal(404, (req(s, "GET", "/v1/cards/NOTES-1", alice)))
    assert.equal(404, (req(s, "GET", "/v1/board", bob)))

    -- every route of the router, inside the project the person is not a member of
    local routes = require("orket.serve").router().routes
    assert.is_true(#routes > 40)
    local seen = 0
    for _, route in ipairs(routes) do
      if route.role then
        for who, creds in pairs { alice = { alice, "notes" }, bob = { bob, "default" } } do
          local path = scoped(creds[2], route.pattern)
          st, doc = req(s, route.method, path, creds[1], route.method ~= "GET" and {} or nil)
          assert(st == 404 or st == 403, string.format("%s %s as %s: %d", route.method, path, who, st))
          seen = seen + 1
        end
        if not route.server then -- bob reaches the default project by its old paths no more
          st = req(s, route.method, filled(route.pattern), bob, route.method ~= "GET" and {} or nil)
          assert(st == 404 or st == 403, string.format("%s %s as bob: %d", route.method, route.pattern, st))
        end
      else
        assert(OPEN[route.name], "a route without a key: " .. route.name .. "; say here why it is safe")
      end
    end
    assert.is_true(seen > 80)
    -- a project that does not exist answers as one that is not yours
    st, doc = req(s, "GET", "/v1/projects/nope/board", alice)
    assert.same({ 404, "no such project, or not yours" }, { st, doc.error.message })
    -- nor does the default project's journal show it: the rows about the server's people
    -- (accounts, keys, sessions, projects' members) are its admins' alone
    local ev = H.stream { url = s.url .. "/v1/events?after=0", headers = { alice[1] } }
    assert.equal(200, (req(s, "POST", "/v1/cards/API-2/comments", alice, { body = "the replay's end" })))
    H.wait_for(function() return ev.text():find("event: comment", 1, true) end, "alice's comment on her stream: "
      .. tostring(ev.status) .. " " .. ev.text():sub(1, 300))
    local seen = ev.text()
    ev.close()
    assert.matches("event: import", seen, 1, true)
    for _, kind in ipairs { "member_grant", "member_revoke", "project_add", "project_remove", "user_add",
      "session_start" } do
      assert.is_nil(seen:find("event: " .. kind, 1, true), kind)
    end
    assert.is_nil(seen:find('"notes"', 1, true))
    assert.is_nil(seen:find("secret_lab", 1, true))
    assert.equal(0, s.stop())
  end)

  it("answers the routes that take no key the same for a project one is not a member of as for no project", function()
    local dir, other = two_projects()
    local crypto = require "orket.c.crypto"
    local body = '{"action":"closed","repository":{"full_name":"acme/notes"}}'
    local function answer(s, method, path, headers, text)
      local st, got = H.fetch { url = s.url .. path, method = method, headers = headers, body = text, total_timeout_ms = 20000 }
      local doc = require("cjson.safe").decode(got or "")
      return { st, doc and doc.error and doc.error.code, doc and doc.error and doc.error.message }
    end
    -- each key-less route of a project (never the server's own: those are 404 under a
    -- prefix), asked by a stranger and by a signed-in non-member, with what a forge sends
    local function same_for_all(s)
      local alice = sign_in(s, "alice") -- a member of default only
      local tries = {}
      for _, route in ipairs(require("orket.serve").router().routes) do
        if not route.role and not route.server then
          local path = filled(route.pattern):gsub("^/v1", "")
          local hook = route.name:match("^webhook_(%a+)$")
          local sigs = hook and { {}, { "X-Hub-Signature-256: sha1=00" }, { "X-Gitea-Signature: sha256=00" },
            { "X-Hub-Signature-256: sha256=" .. crypto.hmac_sha256("a guess", body) },
            { "X-Gitea-Signature: " .. crypto.hmac_sha256("a guess", body) } } or { {} }
          for _, sig in ipairs(sigs) do
            for _, creds in ipairs { { JSON }, alice } do
              local h = { "X-GitHub-Delivery: d-1", "X-GitHub-Event: pull_request", table.unpack(creds) }
              for _, x in ipairs(sig) do h[#h + 1] = x end
              local there = answer(s, route.method, "/v1/projects/notes" .. path, h, route.method == "POST" and body or nil)
              local none = answer(s, route.method, "/v1/projects/nope" .. path, h, route.method == "POST" and body or nil)
              assert.same(none, there, route.method .. " " .. path .. " " .. table.concat(h, "; "))
              tries[#tries + 1] = there
            end
          end
        end
      end
      assert.is_true(#tries >= 14)
      return tries
    end
    local s = H.serve(dir)
    local tries = same_for_all(s) -- notes has no webhook secret: not told either
    assert.same({ 401, "unauthorized" }, { tries[1][1], tries[1][2] }) -- a probe without a key
    -- a member's probes answer for the project
    local bob = sign_in(s, "bob")
    assert.equal(200, (req(s, "GET", "/v1/projects/notes/ready", bob)))
    assert.equal(200, (req(s, "GET", "/v1/projects/notes/health", bob)))
    assert.equal(200, (req(s, "GET", "/ready")))
    assert.equal(0, s.stop())
    -- with a secret, a delivery it signs is taken, and every other is refused as for no project
    H.write(other .. "/orket.lua", H.read(other .. "/orket.lua") .. '\ngit = { webhook_secret_env = "HOOK_SECRET" }\n')
    s = H.serve(dir, { env = { HOOK_SECRET = "the-notes-secret" } })
    same_for_all(s)
    local signed = answer(s, "POST", "/v1/projects/notes/webhooks/github", { "X-GitHub-Delivery: d-1",
      "X-GitHub-Event: pull_request", "X-Hub-Signature-256: sha256=" .. crypto.hmac_sha256("the-notes-secret", body) }, body)
    assert.equal(200, signed[1])
    assert.equal(0, s.stop())
  end)

  it("names the person behind a write in the project's journal and audit; a viewer's write is refused", function()
    local dir, other = two_projects()
    add(dir, "viv", "viewer")
    ok(H.orket("projects grant notes viv viewer", { cwd = dir }), "grant")
    local s = H.serve(dir)
    local bob, viv = sign_in(s, "bob"), sign_in(s, "viv")
    local st = req(s, "POST", "/v1/projects/notes/cards/NOTES-1/comments", bob, { body = "on it" })
    assert.equal(200, st)
    st = req(s, "POST", "/v1/projects/notes/cards/NOTES-1/comments", viv, { body = "me too" })
    assert.equal(403, st)
    local doc
    st, doc = req(s, "GET", "/v1/projects/notes/audit", bob)
    assert.equal(200, st)
    local last = doc.entries[#doc.entries]
    assert.same({ "user:bob", "comment", "NOTES-1" }, { last.actor, last.action, last.card })
    assert.equal(0, s.stop())
    -- in the notes project's own store and its CLI
    local r = ok(H.orket("card NOTES-1", { cwd = other }), "card")
    assert.matches("user:bob", r.stdout, 1, true)
    r = ok(H.orket("audit verify", { cwd = other }), "verify")
  end)

  it("says at its start that people sign in once one exists, not the local token, and tells a token sent "
    .. "anyway why it is refused", function()
    local dir = H.example("webapp")
    local s = H.serve(dir)
    local old = assert(s.token, "before anyone: the board's address with the local token")
    s.stop()
    add(dir, "alice", "operator")
    s = H.serve(dir)
    assert.is_nil(s.token)
    assert.matches("no API key yet, and people sign in: the web board at " .. s.url .. "/ ", H.read(dir .. "/serve.out"), 1, true)
    local st, doc = req(s, "GET", "/v1/board", { "Authorization: Bearer " .. old })
    assert.equal(401, st)
    assert.matches("the local token works only before any key or person exists", doc.error.message, 1, true)
    assert.equal(200, (req(s, "GET", "/v1/board", sign_in(s, "alice"))))
    s.stop()
  end)

  it("holds a person's key made on the server's machine to the person's strongest role, as the API does", function()
    local dir = two_projects()
    add(dir, "root", "admin")
    -- bob develops in notes alone: an operator key at most (a developer's), never an admin's
    local r = H.orket("keys create bob-admin --role admin --for bob", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("bob's strongest role is developer: a key of theirs may be operator (a developer's) or lower, not "
      .. "admin; grant bob the admin role in a project first (orket projects grant PROJECT bob admin)", r.stderr, 1, true)
    assert.equal("", r.stdout)
    ok(H.orket("keys create bob-ops --role operator --for bob", { cwd = dir }), "an operator key for a developer")
    -- a server admin may have an admin key; a person of no project none at all
    ok(H.orket("keys create root-admin --role admin --for root", { cwd = dir }), "a server admin's admin key")
    ok(H.orket("projects revoke notes bob", { cwd = dir }), "revoke")
    r = H.orket("keys create bob-view --role viewer --for bob", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("bob is a member of no project: a key of theirs would reach nothing", r.stderr, 1, true)
    -- nothing was stored for the refused ones
    local list = ok(H.orket("keys list", { cwd = dir }), "keys list").stdout
    assert.is_nil(list:find("bob-admin", 1, true))
    assert.is_nil(list:find("bob-view", 1, true))
    assert.matches("bob-ops", list, 1, true)
    -- no such person: named as before
    r = H.orket("keys create x --role viewer --for nobody", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("no person named 'nobody'", r.stderr, 1, true)
  end)

  -- "NAME|ID is an empty word" said neither what was empty nor what a name may be; passwd
  -- asked for a password (or complained of stdin) before saying there was no such person
  it("says an empty key name is one, and that a person is unknown before asking a password", function()
    local dir = H.example("webapp")
    local r = H.orket("keys create '' --role viewer", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("orket: keys create: the key's name is empty; a key's name is 1 to 64 ASCII characters: "
      .. "letters, digits, '.', '_' or '-', starting with a letter or digit\n", r.stderr, 1, true)
    r = H.orket("keys revoke ''", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("orket: keys revoke: the key's id or name is empty\n", r.stderr, 1, true)
    r = H.orket("users passwd nobody", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("no person named 'nobody'", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("terminal", 1, true))
    r = H.orket("users passwd nobody --password-stdin", { cwd = dir, stdin = "\n" })
    assert.equal(1, r.status)
    assert.matches("no person named 'nobody'", r.stderr, 1, true)
  end)

  it("gives each person their own keys, and the server's admins the people API", function()
    local dir = two_projects()
    add(dir, "root", "admin")
    local r = ok(H.orket("keys create bob-cli --role viewer --for bob", { cwd = dir }), "keys create --for")
    local cli_key = { "Authorization: Bearer " .. r.stdout:gsub("%s+$", "") }
    assert.matches("of bob", r.stderr, 1, true)
    local s = H.serve(dir)
    assert.equal(200, (req(s, "GET", "/v1/projects/notes/board", cli_key)))
    assert.equal(404, (req(s, "GET", "/v1/board", cli_key)))
    local bob, root = sign_in(s, "bob"), sign_in(s, "root")
    -- bob's personal key acts as bob, in bob's projects only; shown once, stored hashed
    local st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "bob-ci", role = "operator" })
    assert.same({ 201, "bob" }, { st, doc.user })
    local key, key_id = doc.key, doc.id
    assert.is_nil(H.store_file_holding(dir, key:match("_(%x+)$")))
    local kh = { "Authorization: Bearer " .. key, JSON }
    assert.equal(200, (req(s, "GET", "/v1/projects/notes/board", kh)))
    assert.equal(404, (req(s, "GET", "/v1/board", kh)))
    assert.equal(200, (req(s, "POST", "/v1/projects/notes/cards/NOTES-2/comments", kh, { body = "from CI" })))
    st, doc = req(s, "GET", "/v1/projects/notes/audit", kh)
    assert.same({ "user:bob", "comment", "NOTES-2" }, { doc.entries[#doc.entries].actor, doc.entries[#doc.entries].action,
      doc.entries[#doc.entries].card })
    -- named as bob, with the key it came through beside him: a leaked key is traced to its id
    assert.equal(key_id, doc.entries[#doc.entries].key)
    assert.equal(200, (req(s, "POST", "/v1/projects/notes/cards/NOTES-2/comments", bob, { body = "by hand" })))
    st, doc = req(s, "GET", "/v1/projects/notes/audit", kh)
    assert.same({ "user:bob", "comment" }, { doc.entries[#doc.entries].actor, doc.entries[#doc.entries].action })
    assert.is_nil(doc.entries[#doc.entries].key) -- his sign-in's session is no key
    -- one person's writes alone, who did what
    add(dir, "carol", "operator")
    ok(H.orket("projects grant notes carol developer", { cwd = dir }), "grant carol")
    assert.equal(200, (req(s, "POST", "/v1/projects/notes/cards/NOTES-2/comments", sign_in(s, "carol"), { body = "c" })))
    st, doc = req(s, "GET", "/v1/projects/notes/audit?actor=user:bob", kh)
    assert.same({ 200, 2 }, { st, #doc.entries })
    for _, e in ipairs(doc.entries) do assert.equal("user:bob", e.actor) end
    st, doc = req(s, "GET", "/v1/projects/notes/audit?actor=user%3Acarol&limit=5", kh)
    assert.same({ 200, 1, "user:carol" }, { st, #doc.entries, doc.entries[1].actor })
    st, doc = req(s, "GET", "/v1/projects/notes/audit?actor=", kh)
    assert.same({ 400, "bad_query" }, { st, doc.error.code })
    st, doc = req(s, "GET", "/v1/projects/notes/audit?actor=" .. ("x"):rep(201), kh)
    assert.same({ 400, "bad_query" }, { st, doc.error.code })
    -- a person's key is no actor (its person is): its writes alone are ?key=
    st, doc = req(s, "GET", "/v1/projects/notes/audit?actor=" .. key_id, root)
    assert.same({ 200, 0 }, { st, #doc.entries })
    st, doc = req(s, "GET", "/v1/projects/notes/audit?key=" .. key_id, root)
    assert.same({ 200, 1, "user:bob", key_id, "comment" }, { st, #doc.entries, doc.entries[1].actor, doc.entries[1].key,
      doc.entries[1].action })
    st, doc = req(s, "GET", "/v1/projects/notes/audit?actor=user:carol&key=" .. key_id, root)
    assert.same({ 200, 0 }, { st, #doc.entries })
    st, doc = req(s, "GET", "/v1/projects/notes/audit?key=", root)
    assert.same({ 400, "bad_query" }, { st, doc.error.code })
    -- which key bob used is the server's admins' and his own to read, as whom a change was
    -- about is: carol, a developer there, reads his writes without it, and her ?key= keeps
    -- her own writes alone (it told her, entry by entry, which of bob's went through it)
    local carol = sign_in(s, "carol")
    st, doc = req(s, "GET", "/v1/projects/notes/audit?actor=user:bob", carol)
    assert.same({ 200, 2, "user:bob" }, { st, #doc.entries, doc.entries[1].actor })
    for _, e in ipairs(doc.entries) do assert.is_nil(e.key) end
    st, doc = req(s, "GET", "/v1/projects/notes/audit?key=" .. key_id, carol)
    assert.same({ 200, 0 }, { st, #doc.entries })
    st, doc = req(s, "GET", "/v1/projects/notes/audit?actor=user:bob&key=" .. key_id, carol)
    assert.same({ 403, "forbidden" }, { st, doc.error.code })
    -- bob reads his own through it, by any of his keys or sessions
    st, doc = req(s, "GET", "/v1/projects/notes/audit?key=" .. key_id, bob)
    assert.same({ 200, 1, "user:bob", key_id }, { st, #doc.entries, doc.entries[1].actor, doc.entries[1].key })
    -- and the API's description says so, both filters named
    st, doc = req(s, "GET", "/v1/openapi.json", root)
    local named = {}
    for _, q in ipairs(doc.paths["/v1/audit"].get.parameters) do named[q.name] = q.description end
    assert.matches("user:NAME", named.actor, 1, true)
    assert.matches("person's key", named.key, 1, true)
    assert.matches("server's admins", doc.paths["/v1/audit"].get.responses["200"].content["application/json"].schema
      .properties.entries.items.properties.key.description, 1, true)
    -- a viewer key never writes, whatever its person may
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "bob-ro", role = "viewer" })
    assert.equal(201, st)
    local ro = { "Authorization: Bearer " .. doc.key, JSON }
    assert.equal(403, (req(s, "POST", "/v1/projects/notes/cards/NOTES-2/comments", ro, { body = "no" })))
    -- and says so: a viewer, with no session (no CSRF token, no end) when sent as a Bearer token
    st, doc = req(s, "GET", "/v1/session", ro)
    assert.same({ 200, "viewer", "bob" }, { st, doc.role, doc.user.name })
    assert.is_nil(doc.expires_at)
    assert.is_nil(doc.csrf)
    -- nor mints a stronger key; and a server admin's viewer key is no admin
    st, doc = req(s, "POST", "/v1/me/keys", ro, { name = "bob-up", role = "operator" })
    assert.equal(403, st)
    assert.equal("ask for a role no stronger than viewer, or make the key with a key of that role or higher "
      .. "(docs/teams.md#keys)", doc.error.remedy)
    -- nor opens a session that writes: a session opened with it is the key's, a viewer
    local ro_key = ro[1]:match("Bearer (%S+)")
    local h
    st, doc, h = req(s, "POST", "/v1/session", { JSON }, { key = ro_key })
    assert.same({ 200, "viewer" }, { st, doc.role })
    local ro_session = { "Cookie: " .. h["set-cookie"]:match("^(orket_session=ors_%x+);"), "X-CSRF-Token: " .. doc.csrf, JSON }
    assert.equal(200, (req(s, "GET", "/v1/projects/notes/board", ro_session)))
    assert.equal(403, (req(s, "POST", "/v1/projects/notes/cards/NOTES-2/comments", ro_session, { body = "no" })))
    -- nor a person one stronger than their strongest role anywhere: bob is no admin
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "bob-admin", role = "admin" })
    assert.equal(403, st)
    assert.matches("your strongest role is developer", doc.error.message)
    assert.matches("^ask for a role no stronger than your strongest; a stronger one is an admin's", doc.error.remedy)
    st, doc = req(s, "POST", "/v1/me/keys", root, { name = "root-ro", role = "viewer" })
    assert.equal(201, st)
    local root_ro = { "Authorization: Bearer " .. doc.key, JSON }
    assert.equal(403, (req(s, "GET", "/v1/users", root_ro)))
    assert.equal(403, (req(s, "POST", "/v1/cards/API-2/comments", root_ro, { body = "no" })))
    assert.equal(200, (req(s, "GET", "/v1/projects/notes/board", root_ro)))
    -- nor reads the journal's rows about people, which are the server's admins' (its person's
    -- session does); a comment of root's marks the end of both replays
    local capped = H.stream { url = s.url .. "/v1/events?after=0", headers = { root_ro[1] } }
    local full = H.stream { url = s.url .. "/v1/events?after=0", headers = { root[1] } }
    assert.equal(200, (req(s, "POST", "/v1/cards/API-2/comments", root, { body = "the replays' end" })))
    for _, ev in ipairs { capped, full } do
      H.wait_for(function() return ev.text():find("event: comment", 1, true) end, "root's comment")
      ev.close()
    end
    assert.is_nil(capped.text():find("event: member_grant", 1, true))
    -- bob's key_create, an API write about people, is not on it; root's own sign-ins are (a
    -- person's own, through any of their keys: as GET /v1/audit gives them)
    for line in capped.text():gmatch("data: ([^\n]+)") do
      if line:find('"subject"%s*:') then
        local e = cjson.decode(line)
        assert.same({ "user:root", true }, { e.actor, e.data.action == "sign_in" or e.data.action == "sign_out" }, line)
      end
    end
    assert.matches('"subject"%s*:%s*{', full.text())
    assert.is_nil(capped.text():find("event: user_add", 1, true))
    assert.matches("event: member_grant", full.text(), 1, true)
    st, doc = req(s, "GET", "/v1/me/keys", bob)
    assert.same({ 200, 3, "bob-ci" }, { st, #doc.keys, doc.keys[2].name })
    assert.is_nil(doc.keys[2].key)

    -- the people API is for the server's admins
    assert.equal(403, (req(s, "GET", "/v1/users", bob)))
    st, doc = req(s, "GET", "/v1/users", root)
    assert.equal(200, st)
    local people = {}
    for _, u in ipairs(doc.users) do people[u.name] = u end
    assert.same({ { name = "notes", role = "developer" } }, people.bob.projects)
    assert.equal(3, #people.bob.first_keys)
    assert.is_true(people.root.admin)
    -- disabling bob ends his session and stops his keys at once
    assert.equal(200, (req(s, "POST", "/v1/users/bob/disable", root)))
    assert.equal(401, (req(s, "GET", "/v1/projects", bob)))
    assert.equal(401, (req(s, "GET", "/v1/projects/notes/board", kh)))
    st, doc = req(s, "POST", "/v1/users/bob/enable", root)
    assert.equal(200, st)
    -- the enable says which of his keys work again, never a secret
    local back = {}
    for _, k in ipairs(doc.first_keys) do
      assert.is_nil(k.key)
      back[k.name] = k.role
    end
    assert.same({ 3, 3 }, { #doc.first_keys, doc.live_key_count })
    assert.truthy(back["bob-ci"])
    assert.equal(200, (req(s, "GET", "/v1/projects/notes/board", kh)))
    -- a role in another project, then a key revoked by an admin
    st, doc = req(s, "PUT", "/v1/users/bob/projects/default", root, { role = "viewer" })
    assert.same({ 200, "viewer" }, { st, doc.role })
    assert.equal(200, (req(s, "GET", "/v1/board", kh)))
    assert.equal(403, (req(s, "POST", "/v1/cards/API-2/comments", kh, { body = "viewer here" })))
    assert.equal(404, (req(s, "PUT", "/v1/users/bob/projects/nope", root, { role = "viewer" })))
    assert.equal(200, (req(s, "DELETE", "/v1/users/bob/keys/" .. key_id, root)))
    assert.equal(401, (req(s, "GET", "/v1/projects/notes/board", kh)))
    assert.equal(404, (req(s, "DELETE", "/v1/me/keys/" .. key_id, sign_in(s, "alice"))))
    -- each change is audited under its person's name
    st, doc = req(s, "GET", "/v1/audit", root)
    local acts = {}
    for _, e in ipairs(doc.entries) do acts[#acts + 1] = e.actor .. " " .. e.action end
    local all = table.concat(acts, "\n")
    for _, want in ipairs { "user:bob key_create", "user:root user_disable", "user:root user_enable",
      "user:root member_grant", "user:root key_revoke" } do
      assert.matches(want, all, 1, true)
    end
    assert.equal(0, s.stop())
  end)

  it("pages GET /v1/users by name, as the audit's listings page, and says so in its description", function()
    local dir = two_projects() -- alice and bob
    add(dir, "root", "admin")
    add(dir, "dave", "viewer")
    ok(H.orket("keys create dave-ci --role viewer --for dave", { cwd = dir }), "keys create --for dave")
    local s = H.serve(dir)
    local root = sign_in(s, "root")
    -- two at a time: alice, bob | dave, root | nothing, each person with their own projects and keys
    local st, doc = req(s, "GET", "/v1/users?limit=2", root)
    assert.same({ 200, { "alice", "bob" }, "bob" }, { st, { doc.users[1].name, doc.users[2].name }, doc.next })
    assert.same({ "default", "notes" }, doc.projects)
    assert.same({ { name = "notes", role = "developer" } }, doc.users[2].projects)
    st, doc = req(s, "GET", "/v1/users?limit=2&after=" .. doc.next, root)
    assert.same({ 200, { "dave", "root" }, "root" }, { st, { doc.users[1].name, doc.users[2].name }, doc.next })
    assert.same({ "dave-ci" }, { doc.users[1].first_keys[1].name })
    assert.same({ { name = "default", role = "viewer" } }, doc.users[1].projects)
    assert.same({ 0, true }, { #doc.users[2].first_keys, doc.users[2].admin })
    st, doc = req(s, "GET", "/v1/users?limit=2&after=root", root)
    assert.same({ 200, 0 }, { st, #doc.users })
    assert.is_nil(doc.next)
    -- a page not full is the last: no next; 100 when no limit is given
    st, doc = req(s, "GET", "/v1/users?after=bob", root)
    assert.same({ 200, 2 }, { st, #doc.users })
    assert.is_nil(doc.next)
    st, doc = req(s, "GET", "/v1/users", root)
    assert.same({ 200, 4 }, { st, #doc.users })
    -- each parameter checked, and one the route does not take refused
    for _, q in ipairs { "limit=0", "limit=x", "after=Bob%20", "after=", "page=2" } do
      st, doc = req(s, "GET", "/v1/users?" .. q, root)
      assert.same({ 400, "bad_query" }, { st, doc.error.code }, q)
    end
    st, doc = req(s, "GET", "/v1/users?limit=5000", root)
    assert.same({ 200, 4 }, { st, #doc.users })
    -- 200 more people (rows as a directory's sign-ins add them, no password to hash): a
    -- limit above 200 is held to 200, and no limit is 100; each person keeps their own
    -- projects and keys in a page of many
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:tx(function()
      for i = 1, 200 do require("orket.store.users").insert(db, string.format("p%03d", i), "viewer", "!ldap:test") end
      return true
    end))
    db:close()
    assert.equal(200, (req(s, "PUT", "/v1/users/p150/projects/notes", root, { role = "viewer" })))
    st, doc = req(s, "GET", "/v1/users?limit=5000", root) -- alice, bob, dave, p001 ... p197
    assert.same({ 200, 200, "p197" }, { st, #doc.users, doc.next })
    local by = {}
    for _, u in ipairs(doc.users) do by[u.name] = u end
    assert.same({ { name = "notes", role = "developer" } }, by.bob.projects)
    assert.same({ "dave-ci", 0 }, { by.dave.first_keys[1].name, #by.bob.first_keys })
    assert.same({ { name = "notes", role = "viewer" } }, by.p150.projects)
    assert.same({ 0, 0 }, { #by.p149.projects, #by.p151.first_keys })
    st, doc = req(s, "GET", "/v1/users", root)
    assert.same({ 200, 100, "p097" }, { st, #doc.users, doc.next })
    st, doc = req(s, "GET", "/v1/users?after=p197", root)
    assert.same({ 200, { "p198", "p199", "p200", "root" } }, { st, { doc.users[1].name, doc.users[2].name,
      doc.users[3].name, doc.users[4].name } })
    assert.same({ 0, true }, { #doc.users[4].first_keys, doc.users[4].admin })
    -- the API's description names both, and the answer's next
    st, doc = req(s, "GET", "/v1/openapi.json", root)
    local named = {}
    for _, q in ipairs(doc.paths["/v1/users"].get.parameters) do named[q.name] = q.schema.type end
    assert.same({ after = "string", limit = "integer" }, named)
    assert.matches("?after=", doc.paths["/v1/users"].get.responses["200"].content["application/json"].schema
      .properties.next.description, 1, true)
    assert.equal(0, s.stop())
  end)

  it("pages the keys listings as GET /v1/users pages its people, in each listing's own order", function()
    local dir = two_projects() -- alice and bob
    add(dir, "root", "admin")
    add(dir, "dave", "viewer")
    -- 250 keys of dave's and one of alice's. Their times are set so that the listing's order
    -- (oldest first, then by id) is neither the ids' order nor the times' alone: key i is
    -- made at second i // 2, so two keys share each time, and the pairs 100/101 and 200/201
    -- straddle the pages of 100; the ids are in another order than i. Alice's key shares a
    -- time with dave's k120 and k121.
    local db = assert(require("orket.project").open_store(dir, false))
    local sk = require "orket.store.keys"
    local made = {} -- {time, id} of each key, the listing's order worked out here
    local function at(t) return string.format("2026-01-01T00:%02d:%02d.000Z", t // 60, t % 60) end
    assert(db:tx(function()
      for i = 1, 250 do
        local id = string.format("%016x", 4096 + i * 7919 % 1000)
        sk.insert(db, id, "k" .. i, "viewer", "h", "dave")
        assert(db:run("UPDATE api_keys SET created_at = ? WHERE id = ?", at(i // 2), id))
        made[#made + 1] = { i // 2, id, "dave" }
      end
      sk.insert(db, "00000000000a11ce", "alice-ci", "viewer", "h", "alice")
      assert(db:run("UPDATE api_keys SET created_at = ? WHERE id = ?", at(60), "00000000000a11ce"))
      made[#made + 1] = { 60, "00000000000a11ce", "alice" }
      return true
    end))
    db:close()
    table.sort(made, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
    local daves, every = {}, {}
    for _, k in ipairs(made) do
      every[#every + 1] = k[2]
      if k[3] == "dave" then daves[#daves + 1] = k[2] end
    end
    -- neither order alone would give it
    local by_id = { table.unpack(daves) }
    table.sort(by_id)
    assert.are_not.same(by_id, daves)
    local s = H.serve(dir)
    local root, dave = sign_in(s, "root"), sign_in(s, "dave")
    -- every page followed by its next gives the whole listing, in its order, once each
    local function walk(path, who, limit)
      local ids, after, pages = {}, nil, 0
      repeat
        local st, doc = req(s, "GET", path .. "?limit=" .. limit .. (after and ("&after=" .. after) or ""), who)
        assert.equal(200, st, path)
        assert.is_true(#doc.keys <= limit)
        for _, k in ipairs(doc.keys) do ids[#ids + 1] = k.id end
        after, pages = doc.next, pages + 1
      until not after
      return ids, pages
    end
    assert.same({ daves, 3 }, { walk("/v1/users/dave/keys", root, 100) })
    assert.same({ daves, 3 }, { walk("/v1/me/keys", dave, 100) })
    assert.same({ every, 2 }, { walk("/v1/keys", root, 200) })
    -- 100 when no limit is given, 200 at most; a full page names its next
    local st, doc = req(s, "GET", "/v1/me/keys", dave)
    assert.same({ 200, 100, daves[100] }, { st, #doc.keys, doc.next })
    st, doc = req(s, "GET", "/v1/users/dave/keys?limit=5000", root)
    assert.same({ 200, 200, daves[200] }, { st, #doc.keys, doc.next })
    st, doc = req(s, "GET", "/v1/users/dave/keys?after=" .. daves[250], root)
    assert.same({ 200, 0 }, { st, #doc.keys })
    assert.is_nil(doc.next)
    -- each parameter checked: another person's key is no place in one's own listing
    for _, q in ipairs { "limit=0", "limit=x", "after=zz", "after=", "after=00000000000a11ce", "after=0000000000000000",
      "page=2" } do
      st, doc = req(s, "GET", "/v1/me/keys?" .. q, dave)
      assert.same({ 400, "bad_query" }, { st, doc.error.code }, q)
    end
    st, doc = req(s, "GET", "/v1/keys?limit=1&after=" .. every[1], root)
    assert.same({ 200, every[2] }, { st, doc.keys[1].id })
    assert.equal(0, s.stop())
  end)

  it("says in each sign-in refusal what happened and what to do, alike for a name that exists and one that does not",
    function()
    local dir = two_projects() -- alice and bob
    add(dir, "root", "admin")
    add(dir, "dave", "viewer")
    local s = H.serve(dir, ROOMY) -- the refusals below, from one address, are not held off
    local root, alice = sign_in(s, "root"), sign_in(s, "alice")
    -- bob's key, made before the refusals below count against this address
    local st, doc = req(s, "POST", "/v1/me/keys", sign_in(s, "bob"), { name = "b", role = "viewer" })
    local bob_secret = doc.key
    local bob_key = { "Authorization: Bearer " .. bob_secret }
    assert.equal(200, (req(s, "POST", "/v1/users/dave/disable", root)))
    -- a wrong password, an unknown name, a disabled person: one message, one remedy, which
    -- says what to do (no word of keys or of the local socket, which a person signing in has not)
    local seen
    for _, try in ipairs { { "alice", "wrong password" }, { "zed", PASS }, { "dave", PASS } } do
      st, doc = req(s, "POST", "/v1/session", { JSON }, { user = try[1], password = try[2] })
      assert.same({ 401, "the name or password is not valid" }, { st, doc.error.message }, try[1])
      seen = seen or doc.error.remedy
      assert.equal(seen, doc.error.remedy, try[1])
    end
    assert.matches("check both and try again", seen, 1, true)
    assert.matches("orket users passwd NAME", seen, 1, true)
    assert.is_nil(seen:find("Bearer", 1, true))
    assert.is_nil(seen:find("serve.sock", 1, true))
    -- a key unknown and a key revoked: the same, saying how a key is sent and made
    st, doc = req(s, "POST", "/v1/me/keys", alice, { name = "old", role = "viewer" })
    local revoked = doc.key
    assert.equal(200, (req(s, "DELETE", "/v1/users/alice/keys/" .. doc.id, root)))
    local key_remedy
    for _, k in ipairs { "ork_0123456789abcdef_00", revoked } do
      st, doc = req(s, "POST", "/v1/session", { JSON }, { key = k })
      assert.same({ 401, "the API key is not valid" }, { st, doc.error.message })
      key_remedy = key_remedy or doc.error.remedy
      assert.equal(key_remedy, doc.error.remedy)
      st, doc = req(s, "GET", "/v1/projects", { "Authorization: Bearer " .. k })
      assert.same({ 401, key_remedy }, { st, doc.error.remedy })
    end
    assert.matches("POST /v1/me/keys", key_remedy, 1, true)
    -- a body of neither or both says which it held
    st, doc = req(s, "POST", "/v1/session", { JSON }, { user = "alice" })
    assert.same({ 400, "a sign-in takes an API key or a name and password, one of the two: the body held a name "
      .. "without a password" }, { st, doc.error.message })
    st, doc = req(s, "POST", "/v1/session", { JSON }, { user = "alice", password = PASS, key = "k" })
    assert.matches("held both$", doc.error.message)
    st, doc = req(s, "POST", "/v1/session", { JSON }, { password = PASS, key = "k" })
    assert.same({ 400, true }, { st, doc.error.message:find("held a key with a password$") ~= nil })
    -- a session signed out of says so, and to sign in again
    assert.equal(200, (req(s, "DELETE", "/v1/session", alice)))
    st, doc = req(s, "GET", "/v1/projects", alice)
    assert.equal(401, st)
    assert.matches("signed out of", doc.error.message, 1, true)
    assert.matches("^sign in again", doc.error.remedy)
    -- no credential at all, and a header that is no bearer key, are told apart
    st, doc = req(s, "GET", "/v1/projects")
    assert.same({ 401, true }, { st, doc.error.message:find("carried neither", 1, true) ~= nil })
    st, doc = req(s, "GET", "/v1/projects", { "Authorization: Basic YWxpY2U6eA==" })
    assert.same({ 401, true }, { st, doc.error.message:find("not a bearer key", 1, true) ~= nil })
    -- a valid key of a disabled person: who sets it right
    assert.equal(200, (req(s, "POST", "/v1/users/bob/disable", root)))
    st, doc = req(s, "GET", "/v1/projects", bob_key)
    assert.same({ 401, "the key's person was disabled" }, { st, doc.error.message })
    assert.matches("orket users enable NAME", doc.error.remedy, 1, true)
    -- the same key signing in is told the same, not to retype a key that is right
    local sst, sdoc = req(s, "POST", "/v1/session", { JSON }, { key = bob_secret })
    assert.same({ 401, doc.error.message, doc.error.remedy }, { sst, sdoc.error.message, sdoc.error.remedy })
    -- a sign-in takes "ALICE" as alice; the people API, given her name in capitals, says so
    st, doc = req(s, "PUT", "/v1/users/ALICE/projects/notes", root, { role = "viewer" })
    assert.same({ 404, "no person named 'ALICE' (a person's name is lower case: 'alice')" }, { st, doc.error.message })
    st, doc = req(s, "POST", "/v1/users/Alice/keys", root, { name = "k", role = "viewer" })
    assert.same({ 404, "no person named 'Alice' (a person's name is lower case: 'alice')" }, { st, doc.error.message })
    -- only a person who exists, under a name a person may have, is named
    st, doc = req(s, "PUT", "/v1/users/ZED/projects/notes", root, { role = "viewer" })
    assert.same({ 404, "no person named 'ZED'" }, { st, doc.error.message })
    st, doc = req(s, "POST", "/v1/users/Alice!/keys", root, { name = "k", role = "viewer" })
    assert.same({ 404, "no person named 'Alice!'" }, { st, doc.error.message })
    assert.equal(0, s.stop())
  end)

  it("tells a sign-in held off how many seconds to wait, in words for the sign-in form", function()
    local dir = two_projects() -- alice and bob
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "auth_fail_burst=4,auth_fail_rate=0.001,"
      .. "account_fail_burst=2,account_fail_rate=0.001" } })
    local function try(user)
      local st, doc = req(s, "POST", "/v1/session", { JSON }, { user = user, password = "wrong password" })
      return st, doc.error
    end
    -- the name's hold, then the address's: each says the wait in seconds, no header's name
    assert.same({ 401, 401 }, { (try("alice")), (try("alice")) })
    local st, e = try("alice")
    assert.same({ 429, "rate_limited" }, { st, e.code })
    local wait = e.message:match("retry after (%d+) s$")
    assert.equal("wait " .. wait .. " s and try again, or ask a server admin to lift the hold on the name at once "
      .. "(orket users unlock NAME) (docs/serve.md#limits)", e.remedy)
    assert.same({ 401, 401 }, { (try("zed")), (try("zed")) })
    st, e = try("bob")
    assert.same({ 429, true }, { st, e.message:find("authentications from this address", 1, true) ~= nil })
    wait = e.message:match("retry after (%d+) s$")
    assert.equal("wait " .. wait .. " s and try again (docs/serve.md#limits)", e.remedy)
    assert.equal(0, s.stop())
  end)

  it("shows two people of two projects only theirs in Chromium, and an admin the people page, branded", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = two_projects()
    add(dir, "root", "admin")
    -- 200 more people between bob and root (rows as a directory's sign-ins add them, no
    -- password to hash): root is on the people page's second page of GET /v1/users
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:tx(function()
      for i = 1, 200 do require("orket.store.users").insert(db, string.format("p%03d", i), "viewer", "!ldap:test") end
      return true
    end))
    db:close()
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "")
      .. '\nserve = { branding = { name = "Acme Works", colors = { accent = "#aa3300" } } }\n')
    local s = H.serve(dir, ROOMY)
    WD.with({ width = 1280, height = 900 }, function(wd)
      local function sign_in_as(name)
        wd:go(s.url .. "/")
        wd:type(wd:wait("#user", "the sign-in form"), name)
        wd:type(wd:find("#password"), PASS)
        wd:press("#signin-button")
      end
      local function sign_out()
        wd:press("#signout")
        wd:wait("#user", "the sign-in form again")
      end
      local function cards() return F.board_cards(wd) end
      -- the branding, on the sign-in page
      wd:go(s.url .. "/")
      wd:wait("#user", "the sign-in form")
      H.wait_for(function() return wd:text_of("#signin-title") == "Sign in to Acme Works" end, "the server's name")
      assert.equal("Acme Works board", wd:text_of("#brand-name"))
      assert.equal("#aa3300", wd:js("return getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"))
      -- a refused sign-in shows what happened and what to do
      wd:type(wd:find("#user"), "alice")
      wd:type(wd:find("#password"), "not her password")
      wd:press("#signin-button")
      H.wait_for(function() return (wd:text_of("#signin-error") or ""):find("check both and try again", 1, true) end,
        "the refusal's remedy on the sign-in form")
      assert.matches("^the name or password is not valid%. ", wd:text_of("#signin-error"))
      wd:js("document.getElementById('user').value = ''; document.getElementById('password').value = ''")

      -- alice: the default project only, no switcher, no people page
      sign_in_as("alice")
      wd:wait('#tree li[data-card="API-2"]', "alice's board")
      assert.is_nil(cards():find("NOTES", 1, true))
      assert.is_true(wd:js("return document.getElementById('project-box').hidden"))
      assert.is_true(wd:js("return document.getElementById('people').hidden"))
      sign_out()
      -- bob: the notes project only
      sign_in_as("bob")
      wd:wait('#tree li[data-card="NOTES-1"]', "bob's board")
      assert.is_nil(cards():find("API", 1, true))
      assert.matches("bob · developer", wd:text_of("#who"))
      sign_out()

      -- root, a server admin: both projects through the switcher, and the people page
      sign_in_as("root")
      wd:wait('#tree li[data-card="API-2"]', "root's default board")
      wd:wait("#project-box", "the project switcher")
      wd:js("const p = document.getElementById('project'); p.value = 'notes'; p.dispatchEvent(new Event('change'))")
      wd:wait('#tree li[data-card="NOTES-1"]', "the notes project's board")
      H.wait_for(function() return not cards():find("API", 1, true) end, "the default project's cards gone")
      wd:wait('#people-list tr[data-person="bob"]', "the people page")
      wd:wait('#people-list tr[data-person="root"]', "the people page's second page")
      assert.equal(203, wd:js("return document.querySelectorAll('#people-list tr[data-person]').length"))
      assert.matches("notes · developer", wd:text_of('#people-list tr[data-person="bob"]'))
      wd:press('#people-list tr[data-person="bob"] button.small:not(.link)', "bob's Disable button")
      H.wait_for(function() return wd:text_of('#people-list tr[data-person="bob"] .state') == "disabled" end,
        "bob disabled")
    end)
    -- disabled on the page: refused at once
    assert.equal(401, (req(s, "POST", "/v1/session", { JSON }, { user = "bob", password = PASS })))
    assert.equal(0, s.stop())
  end)

  it("lets an admin revoke a person's 6th live key on the people page, which says truly what it does not show, "
    .. "and reads their every key once, again only when made or revoked elsewhere", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = two_projects()
    add(dir, "root", "admin")
    for i = 1, 7 do ok(H.orket("keys create ci" .. i .. " --role viewer --for alice", { cwd = dir }), "key " .. i) end
    local s = H.serve(dir, ROOMY)
    local root = sign_in(s, "root")
    local st, doc = req(s, "GET", "/v1/users/alice/keys", root)
    assert.same({ 200, 7 }, { st, #doc.keys })
    local ids = {} -- ci1 ... ci7, oldest first
    for i, k in ipairs(doc.keys) do ids[i] = k.id end
    -- ci2 revoked: six live keys, five of them in GET /v1/users
    assert.equal(200, (req(s, "DELETE", "/v1/users/alice/keys/" .. ids[2], root)))
    WD.with({ width = 1280, height = 900 }, function(wd)
      wd:go(s.url .. "/")
      wd:type(wd:wait("#user", "the sign-in form"), "root")
      wd:type(wd:find("#password"), PASS)
      wd:press("#signin-button")
      local row = '#people-list tr[data-person="alice"]'
      wd:wait(row, "the people page")
      local function shown()
        return wd:js("return Array.from(document.querySelectorAll(arguments[0])).map((e) => e.dataset.key)",
          row .. " li[data-key]")
      end
      H.wait_for(function() return #shown() == 5 end, "alice's first live keys")
      assert.same({ ids[1], ids[3], ids[4], ids[5], ids[6] }, shown())
      assert.matches("^2 keys not shown %(1 live%)", wd:text_of(row .. " li.more"))
      local function reads() return wd:js("return window.orketBoardStats.keys") end
      -- a change in the panel, its row drawn again: the old row marked, waited out
      local function change(press, what, said, n)
        wd:js("document.querySelector(arguments[0]).dataset.stale = '1'", row)
        press()
        H.wait_for(function() return wd:text_of("#people-status") == said end, what .. " said")
        H.wait_for(function()
          return wd:js("return document.querySelectorAll(arguments[0]).length", row .. ":not([data-stale]) li[data-key]") == n
        end, "the row drawn again after " .. what)
      end
      local function grant(role)
        wd:js("document.getElementById('grant-user').value = 'bob'; document.getElementById('grant-project').value = "
          .. "'default'; document.getElementById('grant-role').value = arguments[0]", role)
        wd:press("#grant-button", "the Grant button")
      end
      wd:press(row .. " li.more button", "the Show all keys button")
      H.wait_for(function() return #shown() == 6 end, "every live key of alice's")
      assert.same({ ids[1], ids[3], ids[4], ids[5], ids[6], ids[7] }, shown())
      assert.equal("1 revoked key not shown", wd:text_of(row .. " li.more"))
      assert.equal(1, reads())
      -- another's change draws the page again: alice's keys from the read kept, not read again
      change(function() grant("viewer") end, "a grant", "bob is viewer in default", 6)
      assert.same({ ids[1], ids[3], ids[4], ids[5], ids[6], ids[7] }, shown())
      assert.equal("1 revoked key not shown", wd:text_of(row .. " li.more"))
      assert.equal(1, reads())
      wd:press(row .. ' li[data-key="' .. ids[7] .. '"] button', "the 6th live key's Revoke")
      H.wait_for(function() return wd:text_of("#people-status") == "revoked ci7" end, "the revoke said")
      -- drawn again: every live key is among the first now, and the rest said
      H.wait_for(function() return wd:text_of(row .. " li.more") == "2 revoked keys not shown" end, "the row again")
      assert.same({ ids[1], ids[3], ids[4], ids[5], ids[6] }, shown())
      assert.equal(1, reads())
      -- two keys made elsewhere: the counts GET /v1/users gives are no longer those of the
      -- keys read, which are read again at the next drawing
      local made = {}
      for i = 8, 9 do
        local cst, cdoc = req(s, "POST", "/v1/users/alice/keys", root, { name = "ci" .. i, role = "viewer" })
        assert.equal(201, cst)
        made[i] = cdoc.id
      end
      change(function() grant("developer") end, "a grant", "bob is developer in default", 7)
      -- ci8 and ci9 may be made in one millisecond: then their order is their random ids'
      local now, pair = shown(), { made[8], made[9] }
      local last = { now[6], now[7] }
      table.sort(pair)
      table.sort(last)
      assert.same({ ids[1], ids[3], ids[4], ids[5], ids[6] }, { now[1], now[2], now[3], now[4], now[5] })
      assert.same(pair, last)
      assert.equal(7, #now)
      assert.equal(2, reads())
      -- revoked here while more live keys are left than the first hold: the read kept, the
      -- answer's key marked revoked in it
      change(function() wd:press(row .. ' li[data-key="' .. made[8] .. '"] button', "ci8's Revoke") end,
        "the revoke", "revoked ci8", 6)
      assert.same({ ids[1], ids[3], ids[4], ids[5], ids[6], made[9] }, shown())
      assert.equal("3 revoked keys not shown", wd:text_of(row .. " li.more"))
      assert.equal(2, reads())
      -- one more made elsewhere (read again: 7 live), then ci9, a live key past the first
      -- five, revoked elsewhere: as many keys as read, one fewer live, so read again, and
      -- ci9 is no longer shown with a Revoke of its own
      local cst, cdoc = req(s, "POST", "/v1/users/alice/keys", root, { name = "ci10", role = "viewer" })
      assert.equal(201, cst)
      made[10] = cdoc.id
      change(function() grant("viewer") end, "a grant", "bob is viewer in default", 7)
      assert.same({ ids[1], ids[3], ids[4], ids[5], ids[6], made[9], made[10] }, shown())
      assert.equal(3, reads())
      assert.equal(200, (req(s, "DELETE", "/v1/users/alice/keys/" .. made[9], root)))
      change(function() grant("developer") end, "a grant", "bob is developer in default", 6)
      assert.same({ ids[1], ids[3], ids[4], ids[5], ids[6], made[10] }, shown())
      assert.equal("4 revoked keys not shown", wd:text_of(row .. " li.more"))
      assert.equal(4, reads())
    end)
    st, doc = req(s, "GET", "/v1/users/alice/keys", root)
    assert.same({ 200, "ci7", true, cjson.null }, { st, doc.keys[7].name, doc.keys[7].revoked_at ~= cjson.null,
      doc.keys[6].revoked_at })
    -- (ci8 and ci9 in either order: made in one millisecond, their order is their ids', above)
    local eight, nine = doc.keys[8].name, doc.keys[9].name
    if eight > nine then eight, nine = nine, eight end
    assert.same({ "ci8", true, "ci9", true, "ci10", cjson.null }, { eight,
      doc.keys[8].revoked_at ~= cjson.null, nine, doc.keys[9].revoked_at ~= cjson.null,
      doc.keys[10].name, doc.keys[10].revoked_at })
    assert.equal(0, s.stop())
  end)

  it("refuses one store hosted as two projects, at `orket projects add` and at the server's start, naming both", function()
    local pg = require("tests.backends").name() == "pg"
    local dir = H.example("notes")
    local other = H.example("notes", { import = false })
    if pg then
      -- the other folder's orket.lua names the default project's database (a copied orket.lua)
      local url = H.read(dir .. "/orket.lua"):match("store = { url = (%b\"\") }")
      H.write(other .. "/orket.lua", (H.read(other .. "/orket.lua"):gsub("store = { url = %b\"\" }", "store = { url = " .. url .. " }")))
      local r = H.orket("projects add " .. other .. " --name mirror", { cwd = dir })
      assert.equal(1, r.status, r.stdout)
      assert.matches("projects 'default' %(.-%) and 'mirror' %(.-%) are one store %(the same PostgreSQL database%)", r.stderr)
      assert.equal(1, #cjson.decode(H.orket("projects --json", { cwd = dir }).stdout).projects) -- not added
    end
    -- orket.lua's serve.projects names the same store again (on SQLite: the default's own folder)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format("\nserve = { projects = { mirror = %q } }\n",
      pg and other or "."))
    local r = H.orket("serve --listen 127.0.0.1:0", { cwd = dir, wrap = "timeout 60" })
    assert.equal(1, r.status, r.stderr)
    assert.matches("projects 'default' %(.-%) and 'mirror' %(.-%) are one store %(the same "
      .. (pg and "PostgreSQL database" or "SQLite file"), r.stderr)
  end)

  -- the same folder added again was "projects 'p' (DIR) and 'p' (DIR) are one store": the
  -- one project named twice as if two, instead of the add's own refusal
  it("refuses a folder added again by its name or as served already, not as two projects on one store", function()
    local dir = H.example("notes")
    local other = H.example("notes")
    ok(H.orket("projects add " .. H.quote(other) .. " --name second", { cwd = dir }), "projects add second")
    local r = H.orket("projects add " .. H.quote(other) .. " --name second", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("projects: a project named 'second' exists already\n$", r.stderr)
    r = H.orket("projects add " .. H.quote(other) .. " --name third", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches(" is served already, as project 'second'\n$", r.stderr)
    assert.not_matches("one store", r.stderr, 1, true)
    assert.equal(2, #cjson.decode(H.orket("projects --json", { cwd = dir }).stdout).projects)
    -- a folder orket.lua's serve.projects serves: added under another name, the next start
    -- refused both as one store
    local conf = H.example("notes")
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\nserve = { projects = { web = " .. string.format("%q", conf) .. " } }\n")
    r = H.orket("projects add " .. H.quote(conf) .. " --name web2", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches(" is served already, as project 'web'\n$", r.stderr)
    assert.equal(3, #cjson.decode(H.orket("projects --json", { cwd = dir }).stdout).projects)
  end)

  it("starts when sign_in.project_roles maps groups into a project that is gone, that one left out", function()
    local dir, gone = H.example("notes"), H.example("notes")
    ok(H.orket("projects add " .. gone .. " --name gone", { cwd = dir }), "projects add gone")
    os.execute("rm -rf " .. H.quote(gone))
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. [[

sign_in = {
  oidc = { issuer = "http://127.0.0.1:1", client_id = "orket", client_secret_env = "OIDC_SECRET",
    redirect_uri = "http://127.0.0.1:1/v1/sign-in/oidc/callback", timeout_ms = 2000 },
  project_roles = { gone = { devs = "viewer" } },
}
]])
    local s = H.serve(dir, { env = { OIDC_SECRET = "client-secret-for-tests" } })
    local st, ready = req(s, "GET", "/ready")
    assert.equal(200, st)
    assert.equal(1, ready.projects_unavailable)
    assert.matches('"project":"gone"', s.log(), 1, true)
    assert.equal(0, s.stop())
  end)

  it("serves the other projects when one is gone, that one a 503 naming it; orket projects remove stops hosting it", function()
    local dir = H.example("notes")
    local other, gone = H.example("notes"), H.example("notes")
    ok(H.orket("projects add " .. other .. " --name other", { cwd = dir }), "projects add other")
    ok(H.orket("projects add " .. gone .. " --name gone", { cwd = dir }), "projects add gone")
    add(dir, "alice", "operator")
    ok(H.orket("projects grant gone alice developer", { cwd = dir }), "grant")
    ok(H.orket("projects grant other alice viewer", { cwd = dir }), "grant")
    add(dir, "root", "admin")
    os.execute("rm -rf " .. H.quote(gone)) -- the team moved or deleted its project
    local s = H.serve(dir)
    local alice = sign_in(s, "alice")
    assert.equal(200, (req(s, "GET", "/v1/projects/other/board", alice)))
    local st, doc = req(s, "GET", "/v1/projects/gone/board", alice)
    assert.equal(503, st)
    assert.equal("project_unavailable", doc.error.code)
    assert.matches("project 'gone' %(.-%) is unavailable: ", doc.error.message)
    -- what mends a folder gone (moved): not the store's 'orket init DIR', which would host
    -- an empty project under the old name
    assert.matches("its folder is gone (moved or removed); if it moved, 'orket projects remove gone' and "
      .. "'orket projects add NEW_FOLDER' host it from there", doc.error.message, 1, true)
    assert.is_nil(doc.error.message:find("orket init", 1, true))
    local _, listed = req(s, "GET", "/v1/projects", alice)
    local names = {}
    for _, p in ipairs(listed.projects) do names[#names + 1] = p.name end
    assert.same({ "default", "gone", "other" }, names)
    local rst, ready = req(s, "GET", "/ready")
    assert.equal(200, rst) -- ready for the others
    assert.equal(1, ready.projects_unavailable) -- counted: a project's name is for its members
    -- routes without a key answer for it as for a project that does not exist (never a
    -- handler without its database, and nothing said to a stranger of its being there):
    -- the probes want a member's key, a webhook a signature
    for _, m in ipairs { { "GET", "/ready", 401, "unauthorized" }, { "GET", "/health", 401, "unauthorized" },
      { "POST", "/webhooks/github", 401, "bad_signature" } } do
      local gst, gdoc = req(s, m[1], "/v1/projects/gone" .. m[2], { JSON }, m[1] == "POST" and {} or nil)
      local nst, ndoc = req(s, m[1], "/v1/projects/nope" .. m[2], { JSON }, m[1] == "POST" and {} or nil)
      assert.same({ m[3], m[4] }, { nst, ndoc.error.code }, m[2])
      assert.same({ nst, ndoc.error.code, ndoc.error.message }, { gst, gdoc and gdoc.error and gdoc.error.code,
        gdoc and gdoc.error and gdoc.error.message }, m[2])
    end
    -- to its members, its probes say it is unavailable, as its other routes do
    st, doc = req(s, "GET", "/v1/projects/gone/ready", alice)
    assert.same({ 503, "project_unavailable" }, { st, doc.error.code })
    assert.matches('"project":"gone"', s.log(), 1, true)
    -- no longer hosted, its memberships gone with it
    local r = ok(H.orket("projects remove gone", { cwd = dir }), "projects remove")
    assert.matches("removed project gone %(.-%) and its 1 membership%(s%)", r.stdout)
    -- and no longer listed, even to an admin (an admin of every name: only the store's
    -- word that it was removed leaves it out of theirs)
    for _, who in ipairs { alice, sign_in(s, "root") } do
      _, listed = req(s, "GET", "/v1/projects", who)
      names = {}
      for _, p in ipairs(listed.projects) do names[#names + 1] = p.name end
      assert.same({ "default", "other" }, names)
    end
    r = H.orket("projects remove gone", { cwd = dir })
    assert.same({ 1, "orket: projects: no project named 'gone' was added\n" }, { r.status, r.stderr })
    assert.equal(2, H.orket("projects remove default", { cwd = dir }).status)
    local all = cjson.decode(H.orket("projects --json", { cwd = dir }).stdout).projects
    assert.same({ "default", "other" }, { all[1].name, all[2].name, all[3] })
    assert.matches('"action":"project_remove"', H.orket("audit export", { cwd = dir }).stdout, 1, true)
    assert.equal(0, s.stop())
    s = H.serve(dir)
    assert.equal(404, (req(s, "GET", "/v1/projects/gone/board", sign_in(s, "alice"))))
    assert.equal(0, s.stop())
  end)

  it("drops the members of a project name that names another store now, and says so at the server's start", function()
    local dir = H.example("notes")
    local oldteam, hr = H.example("notes"), H.example("notes")
    local conf = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", conf .. string.format("\nserve = { projects = { team = %q } }\n", oldteam))
    add(dir, "bob", "viewer")
    ok(H.orket("projects revoke default bob", { cwd = dir }), "revoke")
    ok(H.orket("projects grant team bob developer", { cwd = dir }), "grant")
    local s = H.serve(dir)
    assert.equal(200, (req(s, "GET", "/v1/projects/team/board", sign_in(s, "bob"))))
    assert.equal(0, s.stop())
    -- oldteam retired, its name given to HR's project
    own_identity(hr)
    H.write(dir .. "/orket.lua", conf .. string.format("\nserve = { projects = { team = %q } }\n", hr))
    s = H.serve(dir)
    assert.equal(404, (req(s, "GET", "/v1/projects/team/board", sign_in(s, "bob"))))
    assert.matches("project 'team' names another store than before %(.-%): its 1 earlier membership%(s%) were dropped", s.log())
    assert.equal(0, s.stop())
    local function members()
      for _, p in ipairs(cjson.decode(H.orket("projects --json", { cwd = dir }).stdout).projects) do
        if p.name == "team" then return #p.members end
      end
    end
    assert.equal(0, members())
    -- the memberships dropped are in the audit's chain, under the server's start
    assert.matches('"action":"project_rebound","actor":"[^"]+","at":"[^"]+","detail":"project=team"',
      H.orket("audit export", { cwd = dir }).stdout)
    -- granted again, bob is a member of HR's project, and stays one
    ok(H.orket("projects grant team bob viewer", { cwd = dir }), "grant again")
    s = H.serve(dir)
    assert.equal(200, (req(s, "GET", "/v1/projects/team/board", sign_in(s, "bob"))))
    assert.is_nil(s.log():find("project_rebound", 1, true))
    assert.equal(0, s.stop())
    assert.equal(1, members())
  end)

  it("keeps the members of a project whose store was restored from a backup, or moved", function()
    local dir, team = H.example("notes"), H.example("notes")
    local conf = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", conf .. string.format("\nserve = { projects = { team = %q } }\n", team))
    add(dir, "bob", "viewer")
    ok(H.orket("projects grant team bob developer", { cwd = dir }), "grant")
    local s = H.serve(dir)
    assert.equal(200, (req(s, "GET", "/v1/projects/team/board", sign_in(s, "bob"))))
    assert.equal(0, s.stop())
    -- the store restored: on PostgreSQL into a new database (another oid: a dump restored,
    -- a cluster moved), on SQLite its folder copied elsewhere
    local restored = H.tmpdir() .. "/restored"
    os.execute("cp -a " .. H.quote(team) .. " " .. H.quote(restored))
    local url = pg_url(team)
    if url then
      local old = url:match("^postgres[ql]*://[^/]*/([^?]+)")
      local new = old .. "_r"
      local admin = assert(require("orket.c.pg").connect(os.getenv("ORKET_TEST_DATABASE_URL")))
      assert(admin:query("CREATE DATABASE " .. new .. " TEMPLATE " .. old))
      finally(function()
        admin:query("DROP DATABASE IF EXISTS " .. new .. " WITH (FORCE)")
        admin:close()
      end)
      H.write(restored .. "/orket.lua", H.read(restored .. "/orket.lua") .. string.format("\nstore = { url = %q }\n",
        (url:gsub("/" .. old, "/" .. new, 1))))
    end
    H.write(dir .. "/orket.lua", conf .. string.format("\nserve = { projects = { team = %q } }\n", restored))
    s = H.serve(dir)
    assert.equal(200, (req(s, "GET", "/v1/projects/team/board", sign_in(s, "bob"))))
    assert.is_nil(s.log():find("names another store", 1, true))
    assert.equal(0, s.stop())
    -- a binding made when the database's oid was part of the id names the same store
    local sp = require "orket.store.projects"
    assert.is_true(sp.same_store("5e1f:16384", "5e1f"))
    assert.is_false(sp.same_store("5e1f:16384", "77aa"))
    assert.is_false(sp.same_store("5e1f", "77aa"))
  end)

  it("serves a project removed, or added again from another folder, no more until restarted, nor grants roles in it",
    function()
    local dir, a, b = H.example("webapp"), H.example("notes"), H.example("notes")
    own_identity(b) -- another store (the tests' PostgreSQL databases are copies of one)
    ok(H.orket("projects add " .. a .. " --name notes", { cwd = dir }), "add A")
    add(dir, "root", "admin")
    add(dir, "bob", "viewer")
    add(dir, "carol", "viewer")
    ok(H.orket("projects grant notes bob developer", { cwd = dir }), "grant bob")
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = ROOMY.env.ORKET_SERVE_LIMITS .. ",heartbeat_ms=100" } })
    local bob, root = sign_in(s, "bob"), sign_in(s, "root")
    assert.equal(200, (req(s, "POST", "/v1/projects/notes/cards/NOTES-1/comments", bob, { body = "SECRET-OF-A" })))
    local stream = H.stream { url = s.url .. "/v1/projects/notes/events", headers = { root[1] }, total_timeout_ms = 60000 }
    assert.equal(200, stream.status)
    -- what every route of notes answers a server admin, and a grant in it, once notes changed
    local function refused(why)
      local st, doc = req(s, "GET", "/v1/projects/notes/cards/NOTES-1", root)
      assert.same({ 409, "project_changed" }, { st, doc.error.code })
      assert.equal("project 'notes' " .. why .. " since this server started: it serves the project no more, nor "
        .. "grants roles in it, until it is restarted", doc.error.message)
      assert.matches("restart the server", doc.error.remedy, 1, true)
      assert.is_nil(cjson.encode(doc):find("SECRET", 1, true))
      st, doc = req(s, "PUT", "/v1/users/carol/projects/notes", root, { role = "viewer" })
      assert.same({ 409, "project_changed" }, { st, doc.error.code })
      st, doc = req(s, "POST", "/v1/users", root, { name = "dan", role = "viewer", password = PASS, project = "notes" })
      assert.same({ 409, "project_changed" }, { st, doc.error.code })
      -- to a stranger it is a project that is not theirs, as one that never was
      local nst, ndoc = req(s, "POST", "/v1/projects/nope/webhooks/github", { JSON }, {})
      st, doc = req(s, "POST", "/v1/projects/notes/webhooks/github", { JSON }, {})
      assert.same({ nst, ndoc.error.message }, { st, doc.error.message })
      assert.equal(404, (req(s, "GET", "/v1/projects/notes/board", bob))) -- his membership went with it
    end
    ok(H.orket("projects remove notes", { cwd = dir }), "remove")
    refused("was removed (orket projects remove)")
    H.wait_for(function() return stream.done() end, "the admin's stream of the removed project to end", 3000)
    stream.close()
    ok(H.orket("projects add " .. b .. " --name notes", { cwd = dir }), "add B")
    refused("was removed and added again from another folder")
    -- granted on the server's machine, carol is a member of B, which this server does not serve
    ok(H.orket("projects grant notes carol viewer", { cwd = dir }), "grant carol")
    local st, doc = req(s, "GET", "/v1/projects/notes/cards/NOTES-1", sign_in(s, "carol"))
    assert.same({ 409, "project_changed" }, { st, doc.error.code })
    assert.is_nil(cjson.encode(doc):find("SECRET", 1, true))
    assert.equal(200, (req(s, "GET", "/v1/board", root))) -- the others are served as before
    assert.equal(0, s.stop())
    -- restarted: notes is B, carol's grant is B's, and A's comment is nowhere
    s = H.serve(dir, ROOMY)
    st, doc = req(s, "GET", "/v1/projects/notes/cards/NOTES-1", sign_in(s, "carol"))
    assert.equal(200, st)
    assert.is_nil(cjson.encode(doc):find("SECRET", 1, true))
    assert.equal(200, (req(s, "PUT", "/v1/users/bob/projects/notes", sign_in(s, "root"), { role = "viewer" })))
    assert.equal(0, s.stop())
  end)

  it("lists the projects as they are now: one removed left out, one added or added again since the start "
    .. "said to be served from the next", function()
    local dir, a, b, c = H.example("webapp"), H.example("notes"), H.example("notes"), H.example("notes")
    own_identity(b)
    own_identity(c)
    ok(H.orket("projects add " .. a .. " --name notes", { cwd = dir }), "add A")
    add(dir, "root", "admin")
    add(dir, "bob", "viewer")
    ok(H.orket("projects grant notes bob developer", { cwd = dir }), "grant bob")
    local s = H.serve(dir, ROOMY)
    local bob, root = sign_in(s, "bob"), sign_in(s, "root")
    -- name -> role, and why it changed when it did
    local function listed(who)
      local st, doc = req(s, "GET", "/v1/projects", who)
      assert.equal(200, st)
      local out = {}
      for _, p in ipairs(doc.projects) do out[#out + 1] = p.name .. ":" .. p.role .. (p.changed and (" " .. p.changed) or "") end
      return out
    end
    assert.same({ "default:admin", "notes:admin" }, listed(root))
    assert.same({ "default:viewer", "notes:developer" }, listed(bob))
    ok(H.orket("projects remove notes", { cwd = dir }), "remove")
    assert.same({ "default:admin" }, listed(root))
    assert.same({ "default:viewer" }, listed(bob))
    -- added again from another folder, and A's folder under a new name (a rename)
    ok(H.orket("projects add " .. b .. " --name notes", { cwd = dir }), "add B")
    ok(H.orket("projects add " .. c .. " --name wiki", { cwd = dir }), "add C as wiki")
    ok(H.orket("projects grant wiki bob viewer", { cwd = dir }), "grant in wiki")
    local again = "notes:admin project 'notes' was removed and added again from another folder since this server "
      .. "started: it serves the project no more, nor grants roles in it, until it is restarted"
    local added = " project 'wiki' was added since this server started: it is served from the server's next start"
    assert.same({ "default:admin", again, "wiki:admin" .. added }, listed(root))
    assert.same({ "default:viewer", "wiki:viewer" .. added }, listed(bob))
    -- a grant in the project added since, or a person added into it, is refused as the list
    -- says, not as a project that does not exist
    local st, doc = req(s, "PUT", "/v1/users/bob/projects/wiki", root, { role = "developer" })
    assert.same({ 409, "project_changed", added:sub(2) }, { st, doc.error.code, doc.error.message })
    st, doc = req(s, "POST", "/v1/users", root, { name = "dora", role = "viewer", password = PASS, project = "wiki" })
    assert.same({ 409, "project_changed" }, { st, doc.error.code })
    st, doc = req(s, "PUT", "/v1/users/bob/projects/nope", root, { role = "developer" })
    assert.same({ 404, "no project named 'nope' (the projects hosted: default, notes)" }, { st, doc.error.message })
    assert.equal(0, s.stop())
    s = H.serve(dir, ROOMY)
    bob, root = sign_in(s, "bob"), sign_in(s, "root")
    assert.same({ "default:admin", "notes:admin", "wiki:admin" }, listed(root))
    assert.same({ "default:viewer", "wiki:viewer" }, listed(bob))
    assert.equal(0, s.stop())
  end)

  it("serves a project of serve.projects no more once its name is bound to another store", function()
    local dir, team, hr = H.example("notes"), H.example("notes"), H.example("notes")
    own_identity(hr)
    local conf = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", conf .. string.format("\nserve = { projects = { team = %q } }\n", team))
    add(dir, "bob", "viewer")
    ok(H.orket("projects grant team bob developer", { cwd = dir }), "grant")
    local s = H.serve(dir, ROOMY)
    local bob = sign_in(s, "bob")
    assert.equal(200, (req(s, "GET", "/v1/projects/team/board", bob)))
    -- the name given to HR's project while the server runs; a grant there binds it to HR's store
    H.write(dir .. "/orket.lua", conf .. string.format("\nserve = { projects = { team = %q } }\n", hr))
    assert.equal(200, (req(s, "GET", "/v1/projects/team/board", bob))) -- nothing bound yet
    ok(H.orket("projects grant team bob viewer", { cwd = dir }), "grant in HR's")
    local st, doc = req(s, "GET", "/v1/projects/team/board", bob)
    assert.same({ 409, "project_changed" }, { st, doc.error.code })
    assert.matches("project 'team' was pointed at another store (orket.lua's serve.projects) since this server started",
      doc.error.message, 1, true)
    -- listed so, in the same words, with the role bob has in it now
    st, doc = req(s, "GET", "/v1/projects", bob)
    local listed = {}
    for _, p in ipairs(doc.projects) do listed[p.name] = p end
    assert.same({ 200, "viewer" }, { st, listed.team.role })
    assert.matches("project 'team' was pointed at another store (orket.lua's serve.projects) since this server started",
      listed.team.changed, 1, true)
    assert.is_nil(listed.default.changed)
    -- nor does a role granted there now make a key that strong (the command line holds it
    -- so already): bob's strongest is what this server grants, the default project's viewer
    ok(H.orket("projects grant team bob admin", { cwd = dir }), "admin in HR's")
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "strong", role = "admin" })
    assert.same({ 403, "your strongest role is viewer: a key of yours may be viewer or lower, not admin" },
      { st, doc.error and doc.error.message })
    assert.equal(201, (req(s, "POST", "/v1/me/keys", bob, { name = "weak", role = "viewer" })))
    assert.equal(0, s.stop())
  end)

  it("serves local use every project as the operator, and no people's routes", function()
    local dir = H.example("webapp")
    local other = H.example("notes")
    ok(H.orket("projects add " .. other .. " --name notes", { cwd = dir }), "projects add")
    local s = H.serve(dir)
    local st, doc = req(s, "GET", "/v1/projects", {})
    assert.same({ 200, 2 }, { st, #doc.projects })
    -- (the operator's role by a project's name for it, as a person's membership says it)
    assert.same({ "developer", "developer" }, { doc.projects[1].role, doc.projects[2].role })
    assert.equal(200, (req(s, "GET", "/v1/projects/notes/board", {})))
    assert.equal(403, (req(s, "GET", "/v1/users", {})))
    assert.equal(403, (req(s, "POST", "/v1/users", { JSON }, { name = "eve", role = "admin", password = PASS })))
    assert.equal(0, s.stop())
    -- a bad branding is a bad setting: named, and the server does not start on it
    H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. '\nserve = { branding = { colors = { accent = "red" } } }\n')
    local r = H.orket("validate", { cwd = dir })
    assert.is_true(r.status ~= 0)
    assert.matches("serve.branding.colors.accent: must be a colour #rgb or #rrggbb", r.stdout .. r.stderr, 1, true)
    r = H.orket("serve --listen 127.0.0.1:0", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("serve.branding.colors.accent", r.stderr, 1, true)
  end)

  it("answers a grant of the role a person holds already as unchanged, journaled and audited nowhere", function()
    local dir = two_projects() -- bob a developer of notes, granted on the server's machine
    add(dir, "root", "admin")
    -- the journal's member_grant events and the chain's entries, counted
    local function counted()
      local db = assert(require("orket.project").open_store(dir, false))
      local n = {
        events = assert(db:row("SELECT count(*) AS n FROM events WHERE kind = 'member_grant'")).n,
        entries = assert(db:row("SELECT count(*) AS n FROM audit_log")).n,
      }
      db:close()
      return n
    end
    local before = counted()
    local r = ok(H.orket("projects grant notes bob developer", { cwd = dir }), "grant again")
    assert.equal("notes: bob is developer already (unchanged)\n", r.stdout)
    assert.same(before, counted())
    local s = H.serve(dir)
    local root = sign_in(s, "root")
    before = counted()
    local st, doc = req(s, "PUT", "/v1/users/bob/projects/notes", root, { role = "developer" })
    assert.same({ 200, { project = "notes", user = "bob", role = "developer", unchanged = true } }, { st, doc })
    assert.same(before, counted())
    -- a grant that changes the role is one, as before
    st, doc = req(s, "PUT", "/v1/users/bob/projects/notes", root, { role = "viewer" })
    assert.same({ 200, false }, { st, doc.unchanged })
    assert.same({ events = before.events + 1, entries = before.entries + 1 }, counted())
    assert.equal(0, s.stop())
  end)

  it("answers a role held already, and a disable or enable done already, as unchanged, audited nowhere", function()
    local dir = two_projects()
    add(dir, "root", "admin")
    local function counted()
      local db = assert(require("orket.project").open_store(dir, false))
      local n = {
        events = assert(db:row("SELECT count(*) AS n FROM events WHERE kind IN ('user_role', 'user_disable', "
          .. "'user_enable')")).n,
        entries = assert(db:row("SELECT count(*) AS n FROM audit_log")).n,
      }
      db:close()
      return n
    end
    local s = H.serve(dir)
    local root = sign_in(s, "root")
    local before = counted()
    local st, doc = req(s, "PUT", "/v1/users/alice/role", root, { role = "operator" })
    assert.same({ 200, false, true }, { st, doc.changed, doc.unchanged })
    st, doc = req(s, "POST", "/v1/users/alice/enable", root)
    assert.same({ 200, false, true }, { st, doc.changed, doc.unchanged })
    assert.same(before, counted())
    -- a change is one, and a second time it is not
    st, doc = req(s, "POST", "/v1/users/bob/disable", root)
    assert.same({ 200, true, false }, { st, doc.changed, doc.unchanged })
    st, doc = req(s, "POST", "/v1/users/bob/disable", root)
    assert.same({ 200, false, true }, { st, doc.changed, doc.unchanged })
    st, doc = req(s, "PUT", "/v1/users/alice/role", root, { role = "viewer" })
    assert.same({ 200, true, false }, { st, doc.changed, doc.unchanged })
    assert.same({ events = before.events + 2, entries = before.entries + 2 }, counted())
    -- on the server's machine too
    before = counted()
    ok(H.orket("users role alice viewer", { cwd = dir }), "role again")
    ok(H.orket("users disable bob", { cwd = dir }), "disable again")
    assert.same(before, counted())
    assert.equal(0, s.stop())
  end)

  it("lists each person's first keys and how many they have, every key of theirs on the keys route", function()
    local dir = two_projects()
    add(dir, "root", "admin")
    for i = 1, 7 do ok(H.orket("keys create ci" .. i .. " --role viewer --for alice", { cwd = dir }), "key " .. i) end
    local s = H.serve(dir)
    local root = sign_in(s, "root")
    local st, doc = req(s, "GET", "/v1/users/alice/keys", root)
    assert.equal("ci2", doc.keys[2].name)
    assert.equal(200, (req(s, "DELETE", "/v1/users/alice/keys/" .. doc.keys[2].id, root)))
    st, doc = req(s, "GET", "/v1/users", root)
    -- a new format: `keys` held every key in orket.users/1, and a client of it finds none
    -- rather than too few
    assert.same({ 200, "orket.users/2" }, { st, doc.format })
    local alice
    for _, u in ipairs(doc.users) do if u.name == "alice" then alice = u end end
    assert.is_nil(alice.keys)
    assert.same({ 7, 6, 5, "ci1", "ci6" }, { alice.key_count, alice.live_key_count, #alice.first_keys,
      alice.first_keys[1].name, alice.first_keys[5].name })
    st, doc = req(s, "GET", "/v1/users/alice/keys", root)
    assert.same({ 200, 7 }, { st, #doc.keys })
    st, doc = req(s, "GET", "/v1/openapi.json", root)
    local person = doc.paths["/v1/users"].get.responses["200"].content["application/json"].schema.properties.users.items
    assert.matches("GET /v1/users/{name}/keys lists them all", person.properties.first_keys.description, 1, true)
    assert.same({ "integer", "integer" }, { person.properties.key_count.type, person.properties.live_key_count.type })
    assert.equal(0, s.stop())
  end)

  it("names whom each people and key change was about in the audit's chain, which verify protects", function()
    local dir = two_projects()
    add(dir, "root", "admin")
    ok(H.orket("keys create bob-cli --role viewer --for bob", { cwd = dir }), "keys create")
    local s = H.serve(dir)
    local root = sign_in(s, "root")
    assert.equal(200, (req(s, "PUT", "/v1/users/alice/projects/notes", root, { role = "viewer" })))
    assert.equal(200, (req(s, "DELETE", "/v1/users/alice/projects/notes", root)))
    assert.equal(200, (req(s, "POST", "/v1/users/bob/disable", root)))
    local st, doc = req(s, "POST", "/v1/users/alice/keys", root, { name = "alice-ci", role = "viewer" })
    assert.equal(201, st)
    local key_id = doc.id
    st, doc = req(s, "GET", "/v1/audit", root)
    local by = {}
    for _, e in ipairs(doc.entries) do by[e.action] = e.subject end
    assert.same({ person = "alice", project = "notes", role = "viewer" }, by.member_grant)
    assert.same({ person = "alice", project = "notes" }, by.member_revoke)
    assert.same({ person = "bob", role = "viewer" }, by.user_disable)
    assert.same({ person = "alice", key = "alice-ci", keyid = key_id, role = "viewer" }, by.key_create)
    assert.is_nil(doc.entries[1].key)
    -- whom is the server's admins' to read: a member of the default project sees who acted only
    st, doc = req(s, "GET", "/v1/audit", sign_in(s, "alice"))
    assert.equal(200, st)
    for _, e in ipairs(doc.entries) do assert.is_nil(e.subject, e.action) end
    assert.equal(0, s.stop())
    -- the chain holds the same, the command's writes too, and never a key's secret
    local r = ok(H.orket("audit export", { cwd = dir }), "export")
    local details = {}
    for l in r.stdout:gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.kind == "write" then details[#details + 1] = e.route .. " " .. e.action .. " " .. tostring(e.detail) end
    end
    local all = table.concat(details, "\n")
    for _, want in ipairs { "cli project_add project=notes", "cli user_add person=alice project=default role=operator",
      "cli member_revoke person=bob project=default", "cli member_grant person=bob project=notes role=developer",
      "cli key_create key=bob-cli keyid=", "/v1/users/{name}/projects/{project} member_grant person=alice project=notes role=viewer",
      "/v1/users/{name}/disable user_disable person=bob role=viewer",
      "/v1/users/{name}/keys key_create key=alice-ci keyid=" .. key_id .. " person=alice role=viewer" } do
      assert.matches(want, all, 1, true)
    end
    ok(H.orket("audit verify", { cwd = dir }), "verify")
    -- whoever rewrites whom a grant was about, in the store, is caught
    H.write(dir .. "/t.lua", [[
local db = assert(require("orket.project").open_store(".", false))
if db.backend == "pg" then assert(db:exec("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
else assert(db:exec("DROP TRIGGER IF EXISTS audit_log_append_only")) end
assert(db:run("UPDATE audit_log SET detail = 'person=mallory project=notes role=admin' WHERE action = 'member_grant'"
  .. " AND route <> 'cli'"))
db:close()
]])
    ok(H.orket("lua t.lua", { cwd = dir }), "tamper")
    r = H.orket("audit verify", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("was changed: its hash does not match its content (write by user:root)", r.stdout, 1, true)
  end)

  it("records each sign-in and sign-out by person in the audit and its chain: the way and the session, never the address",
    function()
    local dir = two_projects()
    add(dir, "root", "admin")
    local bob_key = ok(H.orket("keys create bob-cli --role viewer --for bob", { cwd = dir }), "keys create --for")
      .stdout:gsub("%s+$", "")
    local ci_key = ok(H.orket("keys create ci --role operator", { cwd = dir }), "keys create").stdout:gsub("%s+$", "")
    local bob_id, ci_id = bob_key:match("^ork_(%x+)_"), ci_key:match("^ork_(%x+)_")
    local s = H.serve(dir)
    local root = sign_in(s, "root")
    -- a wrong password is refused and counted, and written nowhere in the audit
    assert.equal(401, (req(s, "POST", "/v1/session", { JSON }, { user = "alice", password = "not it" })))
    H.wait_for(function() return s.log():find('"auth":"wrong"', 1, true) end, "the refused sign-in's log line", 3000)
    local alice = sign_in(s, "alice")
    local alice_token = alice[1]:match("ors_%x+")
    assert.equal(200, (req(s, "DELETE", "/v1/session", alice)))
    -- a person's own key, and a key of no person
    local st, _, h = req(s, "POST", "/v1/session", { JSON }, { key = bob_key })
    assert.equal(200, st)
    assert.matches("^orket_session=ors_%x+;", h["set-cookie"])
    assert.equal(200, (req(s, "POST", "/v1/session", { JSON }, { key = ci_key })))
    local doc
    st, doc = req(s, "GET", "/v1/audit", root)
    assert.equal(200, st)
    local seen = {}
    for _, e in ipairs(doc.entries) do
      if e.action == "sign_in" or e.action == "sign_out" then
        assert.equal("/v1/session", e.route)
        seen[#seen + 1] = e
      end
    end
    assert.equal(5, #seen) -- root, alice in and out, bob, ci: the failed one is not there
    local function subj(e) return e.actor .. " " .. e.action .. " " .. tostring(e.key) end
    assert.same({ "user:root sign_in nil", "user:alice sign_in nil", "user:alice sign_out nil",
      "user:bob sign_in " .. bob_id, "" .. ci_id .. " sign_in nil" }, { subj(seen[1]), subj(seen[2]), subj(seen[3]),
      subj(seen[4]), subj(seen[5]) })
    local sess = seen[2].subject.session
    assert.matches("^%x+$", sess)
    assert.equal(16, #sess)
    assert.same({ person = "alice", via = "password", session = sess }, seen[2].subject)
    -- the sign-out names the session the sign-in opened
    assert.same({ person = "alice", via = "password", session = sess }, seen[3].subject)
    assert.same({ person = "bob", via = "key", session = seen[4].subject.session },
      seen[4].subject)
    assert.same({ key = "ci", keyid = ci_id, via = "key", session = seen[5].subject.session },
      seen[5].subject)
    assert.are_not.equal(sess, seen[1].subject.session)
    -- the session's name is not its token, nor its CSRF token
    assert.is_nil(alice_token:find(sess, 1, true))
    assert.is_nil(alice[2]:find(sess, 1, true))
    -- by person, by key: the existing filters
    st, doc = req(s, "GET", "/v1/audit?actor=user:alice", root)
    assert.equal(200, st)
    local acts = {}
    for _, e in ipairs(doc.entries) do acts[#acts + 1] = e.action end
    assert.same({ "sign_in", "sign_out" }, acts)
    st, doc = req(s, "GET", "/v1/audit?key=" .. bob_id, root)
    assert.equal(1, #doc.entries)
    assert.same({ "user:bob", "sign_in" }, { doc.entries[1].actor, doc.entries[1].action })
    st, doc = req(s, "GET", "/v1/audit?actor=" .. ci_id, root)
    assert.equal(1, #doc.entries)
    assert.equal("sign_in", doc.entries[1].action)
    -- whom, how and which session are the server's admins' to read, as every subject is
    local alice2 = sign_in(s, "alice")
    st, doc = req(s, "GET", "/v1/audit?actor=user:alice", alice2)
    assert.equal(200, st)
    assert.equal(3, #doc.entries)
    for _, e in ipairs(doc.entries) do assert.is_nil(e.subject) end
    -- and a member who is no server admin sees her own sign-ins, never another's, not even
    -- who or when: root's, bob's (a member of notes alone) and the key ci's are not hers
    st, doc = req(s, "GET", "/v1/audit", alice2)
    assert.equal(200, st)
    local hers = {}
    for _, e in ipairs(doc.entries) do
      assert.is_nil(e.subject)
      if e.action == "sign_in" or e.action == "sign_out" then hers[#hers + 1] = e.actor .. " " .. e.action end
    end
    assert.same({ "user:alice sign_in", "user:alice sign_out", "user:alice sign_in" }, hers)
    for _, who in ipairs { "user:root", "user:bob", ci_id } do
      st, doc = req(s, "GET", "/v1/audit?actor=" .. who, alice2)
      assert.same({ 200, 0 }, { st, #doc.entries }, who)
    end
    st, doc = req(s, "GET", "/v1/audit?key=" .. bob_id, alice2)
    assert.same({ 200, 0 }, { st, #doc.entries })
    -- a key of no person (no server admin) is told of its own sign-in alone
    st, doc = req(s, "GET", "/v1/audit", { "Authorization: Bearer " .. ci_key })
    assert.equal(200, st)
    local its = {}
    for _, e in ipairs(doc.entries) do
      if e.action == "sign_in" or e.action == "sign_out" then its[#its + 1] = e.actor .. " " .. e.action end
    end
    assert.same({ ci_id .. " sign_in" }, its)
    -- the event streams carry them to the server's admins alone (an API write with a
    -- subject is a row about people); a comment of alice's marks the end of both replays
    local hers_ev = H.stream { url = s.url .. "/v1/events?after=0", headers = { alice2[1] } }
    local roots_ev = H.stream { url = s.url .. "/v1/events?after=0", headers = { root[1] } }
    assert.equal(200, (req(s, "POST", "/v1/cards/API-2/comments", alice2, { body = "the replays' end" })))
    for _, ev in ipairs { hers_ev, roots_ev } do
      H.wait_for(function() return ev.text():find("event: comment", 1, true) end, "alice's comment")
      ev.close()
    end
    -- (alice's own are on hers: below, "lets any signed-in person list their own sign-ins");
    -- each row decoded, so that a change of the message's layout cannot make this pass
    local her_signs = {}
    for line in hers_ev.text():gmatch("data: ([^\n]+)") do
      local e = cjson.decode(line)
      if type(e.data) == "table" and (e.data.action == "sign_in" or e.data.action == "sign_out") then
        her_signs[#her_signs + 1] = e.actor .. " " .. e.data.action
      end
    end
    assert.same({ "user:alice sign_in", "user:alice sign_out", "user:alice sign_in" }, her_signs)
    assert.is_nil(hers_ev.text():find("event: session_", 1, true))
    local _, n_signs = roots_ev.text():gsub('"action"%s*:%s*"sign_', "")
    assert.equal(6, n_signs) -- root, alice in, out and in again, bob, ci
    assert.equal(0, s.stop())
    -- the chain holds the same, never a token, a key or a password; and verify passes
    local r = ok(H.orket("audit export", { cwd = dir }), "export")
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.action == "sign_in" or e.action == "sign_out" then
        lines[#lines + 1] = e.actor .. " " .. e.route .. " " .. e.action .. " " .. e.detail
      end
    end
    assert.equal(6, #lines) -- alice signed in again
    assert.equal("user:alice /v1/session sign_in person=alice session=" .. sess .. " via=password",
      lines[2])
    assert.equal("user:alice /v1/session sign_out person=alice session=" .. sess .. " via=password",
      lines[3])
    assert.equal(ci_id .. " /v1/session sign_in key=ci keyid=" .. ci_id .. " session="
      .. seen[5].subject.session .. " via=key", lines[5])
    -- nor the client's address (the request log has it, under the operator's retention)
    for _, secret in ipairs { alice_token:sub(5), bob_key, ci_key, PASS, "not it", "127.0.0.1", "address=" } do
      assert.is_nil(r.stdout:find(secret, 1, true), secret)
    end
    ok(H.orket("audit verify", { cwd = dir }), "verify")
  end)

  it("lets any signed-in person list their own sign-ins and sign-outs, a member of other projects only too, "
    .. "and shows them their own on their event stream, never another's, with no address", function()
    local dir = two_projects() -- bob: a member of notes alone
    add(dir, "root", "admin")
    local ci_key = ok(H.orket("keys create ci --role operator", { cwd = dir }), "keys create").stdout:gsub("%s+$", "")
    local ci_id = ci_key:match("^ork_(%x+)_")
    local s = H.serve(dir)
    local root = sign_in(s, "root")
    local bob1 = sign_in(s, "bob")
    assert.equal(200, (req(s, "DELETE", "/v1/session", bob1)))
    local alice = sign_in(s, "alice")
    local bob = sign_in(s, "bob")
    assert.equal(200, (req(s, "POST", "/v1/session", { JSON }, { key = ci_key })))
    -- the default project's audit is not bob's: it holds his sign-ins all the same
    assert.equal(404, (req(s, "GET", "/v1/audit", bob)))
    local st, doc = req(s, "GET", "/v1/session/audit", bob)
    assert.equal(200, st)
    local got = {}
    for _, e in ipairs(doc.entries) do
      assert.equal("user:bob", e.actor)
      assert.equal("/v1/session", e.route)
      assert.equal("bob", e.subject.person)
      assert.equal("password", e.subject.via)
      assert.matches("^%x+$", e.subject.session)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", e.at)
      got[#got + 1] = e.action
    end
    assert.same({ "sign_in", "sign_out", "sign_in" }, got)
    assert.equal(doc.entries[1].subject.session, doc.entries[2].subject.session) -- the one session in and out
    assert.is_nil(doc.next)
    -- paged as the audit is
    local page
    st, page = req(s, "GET", "/v1/session/audit?limit=2", bob)
    assert.same({ 200, 2 }, { st, #page.entries })
    assert.equal(page.entries[2].id, page.next)
    st, page = req(s, "GET", "/v1/session/audit?after=" .. math.tointeger(page.next), bob)
    assert.same({ 200, 1, doc.entries[3].id }, { st, #page.entries, page.entries[1].id })
    assert.equal(400, (req(s, "GET", "/v1/session/audit?limit=0", bob)))
    assert.equal(400, (req(s, "GET", "/v1/session/audit?after=x", bob)))
    -- only their own: another's is not a thing to ask for here (no ?actor=)
    st, doc = req(s, "GET", "/v1/session/audit?actor=user:root", alice)
    assert.same({ 400, "bad_query" }, { st, doc.error.code })
    st, doc = req(s, "GET", "/v1/session/audit", alice)
    assert.equal(200, st)
    assert.equal(1, #doc.entries)
    assert.same({ "user:alice", "sign_in", "alice" }, { doc.entries[1].actor, doc.entries[1].action,
      doc.entries[1].subject.person })
    st, doc = req(s, "GET", "/v1/session/audit", { "Authorization: Bearer " .. ci_key })
    assert.equal(200, st)
    assert.equal(1, #doc.entries)
    assert.same({ ci_id, "sign_in", "ci", "key" }, { doc.entries[1].actor, doc.entries[1].action,
      doc.entries[1].subject.key, doc.entries[1].subject.via })
    -- no session, no key: nothing to list
    assert.equal(401, (req(s, "GET", "/v1/session/audit")))
    -- alice's stream: her own sign-in (its api_write, as the audit gives it), no one else's; a
    -- comment of hers marks the end of the replay
    local ev = H.stream { url = s.url .. "/v1/events?after=0", headers = { alice[1] } }
    assert.equal(200, (req(s, "POST", "/v1/cards/API-2/comments", alice, { body = "the replay's end" })))
    H.wait_for(function() return ev.text():find("event: comment", 1, true) end, "alice's comment")
    -- live too: her next sign-in comes on the open stream, root's does not
    sign_in(s, "root")
    local alice2 = sign_in(s, "alice")
    H.wait_for(function() return select(2, ev.text():gsub('"action"%s*:%s*"sign_in"', "")) >= 2 end, "her live sign-in")
    assert.equal(200, (req(s, "POST", "/v1/cards/API-2/comments", alice2, { body = "the live end" })))
    H.wait_for(function() return select(2, ev.text():gsub("event: comment", "")) >= 2 end, "alice's second comment")
    ev.close()
    local text = ev.text()
    local signs = {}
    for line in text:gmatch("data: ([^\n]+)") do
      local e = cjson.decode(line)
      if e.kind == "api_write" and (e.data.action == "sign_in" or e.data.action == "sign_out") then
        assert.equal("user:alice", e.actor)
        assert.same({ person = "alice", via = "password", session = e.data.subject.session }, e.data.subject)
        -- the row's whole shape: no field (an address, the key) beyond the audit's own
        local fields = {}
        for k in pairs(e.data) do fields[#fields + 1] = k end
        table.sort(fields)
        assert.same({ "action", "route", "subject" }, fields)
        signs[#signs + 1] = e.data.action
      end
    end
    assert.same({ "sign_in", "sign_in" }, signs)
    -- the journal's own rows of the same acts stay the server's admins'
    assert.is_nil(text:find("event: session_", 1, true))
    -- nor is the address her sign-ins came from anywhere on it (the one the server's log
    -- gives her sign-in, not one assumed)
    local addr
    for line in s.log():gmatch("[^\n]+") do
      if line:find('"method":"POST"', 1, true) and line:find('"route":"[^"]*session[^"]*"') then
        addr = addr or line:match('"addr":"([^"]+)"')
      end
    end
    assert.truthy(addr, "the sign-in's address in the server's log")
    assert.is_nil(text:find(addr, 1, true), addr)
    -- bob's stream is his project's: a stream of the default project is not his
    assert.equal(404, (req(s, "GET", "/v1/events?after=0", bob)))
    -- root, a server admin, reads them all as before
    st, doc = req(s, "GET", "/v1/audit?actor=user:bob", root)
    assert.same({ 200, 3 }, { st, #doc.entries })
    -- a bare name is no actor: refused, pointing at user:bob, not answered with no entries
    for _, name in ipairs { "bob", "nobody" } do
      st, doc = req(s, "GET", "/v1/audit?actor=" .. name, root)
      assert.same({ 400, "bad_query" }, { st, doc.error.code })
      assert.matches("(user:" .. name .. "?)", doc.error.message, 1, true)
    end
    -- an actor of a kind no entry has (another than user:, or user: with no name) is
    -- refused, not answered with no entries, and alike whether or not the name is a person's
    local said = {}
    for _, q in ipairs { "x:bob", "x:nobody", "local:", "github:bob", "user:", ":bob", "User:bob" } do
      st, doc = req(s, "GET", "/v1/audit?actor=" .. q, root)
      assert.same({ 400, "bad_query" }, { st, doc.error.code }, q)
      said[q] = doc.error.message
    end
    assert.equal(said["x:bob"], said["x:nobody"])
    assert.matches("no entry's actor is of the kind 'x:'", said["x:bob"], 1, true)
    assert.matches("local: needs a name after it", said["local:"], 1, true)
    assert.matches("user: needs a name after it", said["user:"], 1, true)
    assert.matches("orket audit export", doc.error.remedy, 1, true)
    -- each refusal of ?actor= names every actor it takes: local (no-key mode) too, and where
    -- the local operator's local:USER entries are
    for _, q in ipairs { "bob", "", ("x"):rep(201), "x:y" } do
      st, doc = req(s, "GET", "/v1/audit?actor=" .. q, root)
      assert.same({ 400, "bad_query" }, { st, doc.error.code })
      for _, form in ipairs { "user:NAME for a person", "the id of a key of no person (16 hex digits)",
          "local for the server's no-key mode", "local:USER for orket mcp serve" } do
        assert.matches(form, doc.error.message, 1, true)
      end
    end
    assert.equal(200, (req(s, "GET", "/v1/audit?actor=local", root)))
    -- orket mcp serve's writes are local:USER's in the journal: they can be asked for
    st, doc = req(s, "GET", "/v1/audit?actor=local:nobody", root)
    assert.same({ 200, 0 }, { st, #doc.entries })
    assert.equal(0, s.stop())
  end)

  it("sets a person's password and server-admin role, and keeps the last enabled admin", function()
    local dir = two_projects()
    add(dir, "root", "admin")
    local s = H.serve(dir)
    local root, bob = sign_in(s, "root"), sign_in(s, "bob")
    -- a server admin is an admin of every project: taking them out of one would change nothing
    local st, doc = req(s, "DELETE", "/v1/users/root/projects/default", root)
    assert.same({ 409, "conflict" }, { st, doc.error.code })
    assert.matches("root is a server admin, an admin of every project", doc.error.message, 1, true)
    -- the OpenAPI document lists the 409s these routes answer
    local _, api = req(s, "GET", "/v1/openapi.json", root)
    for _, op in ipairs { { "delete", "/v1/users/{name}/projects/{project}" }, { "put", "/v1/users/{name}/projects/{project}" },
        { "post", "/v1/users/{name}/disable" } } do
      assert.is_table(api.paths[op[2]][op[1]].responses["409"], op[1] .. " " .. op[2])
    end
    local r = H.orket("projects revoke default root", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("take that away first ('orket users role root operator')", r.stderr, 1, true)
    -- the last enabled admin neither disables nor demotes themselves, here or on the machine
    st, doc = req(s, "POST", "/v1/users/root/disable", root)
    assert.same({ 409, "conflict" }, { st, doc.error.code })
    assert.matches("root is the last enabled server admin", doc.error.message, 1, true)
    -- with what a caller of the API can do: add a new admin over it
    assert.matches("or a new local account with 'orket users add NAME --role admin' (POST /v1/users with role admin)",
      doc.error.message, 1, true)
    assert.matches("POST /v1/users {\"name\", \"role\": \"admin\", \"password\"} for a new one", doc.error.remedy,
      1, true)
    st, doc = req(s, "PUT", "/v1/users/root/role", root, { role = "operator" })
    assert.equal(409, st)
    r = H.orket("users role root viewer", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("root is the last enabled server admin", r.stderr, 1, true)
    assert.equal(200, (req(s, "GET", "/v1/users", root)))
    -- alice made an admin on the machine, then unmade one through the API; then root may go
    r = ok(H.orket("users role alice admin", { cwd = dir }), "users role")
    assert.matches("alice is admin now (was operator)", r.stdout, 1, true)
    local alice = sign_in(s, "alice")
    assert.equal(200, (req(s, "GET", "/v1/users", alice)))
    st, doc = req(s, "PUT", "/v1/users/alice/role", root, { role = "operator" })
    assert.same({ 200, "operator", "admin", false, true }, { st, doc.role, doc.was, doc.admin, doc.changed })
    assert.equal(403, (req(s, "GET", "/v1/users", alice)))
    assert.equal(400, (req(s, "PUT", "/v1/users/alice/role", root, { role = "developer" })))
    assert.equal(404, (req(s, "PUT", "/v1/users/nobody/role", root, { role = "viewer" })))
    -- a password set by an admin: the person's password sessions end, the old password stops
    local NEW = "a brand new passphrase"
    st, doc = req(s, "PUT", "/v1/users/bob/password", { root[1], JSON }, { password = NEW })
    assert.equal(403, st) -- a session's write without its CSRF token
    assert.equal(400, (req(s, "PUT", "/v1/users/bob/password", root, { password = "short" })))
    st, doc = req(s, "PUT", "/v1/users/bob/password", root, { password = NEW })
    assert.same({ 200, "bob", true }, { st, doc.name, doc.password_set })
    assert.equal(401, (req(s, "GET", "/v1/projects", bob)))
    assert.equal(401, (req(s, "POST", "/v1/session", { JSON }, { user = "bob", password = PASS })))
    assert.equal(200, (req(s, "POST", "/v1/session", { JSON }, { user = "bob", password = NEW })))
    -- root's own: his other session ends, the one he set it with goes on
    local root2 = sign_in(s, "root")
    assert.equal(200, (req(s, "PUT", "/v1/users/root/password", root, { password = NEW })))
    assert.equal(200, (req(s, "GET", "/v1/users", root)))
    assert.equal(401, (req(s, "GET", "/v1/users", root2)))
    -- on the machine the last admin is disabled all the same (a leaver is never kept), with a word
    r = ok(H.orket("users disable root", { cwd = dir }), "disable root")
    assert.matches("no enabled server admin is left", r.stderr, 1, true)
    assert.matches("users: no enabled server admin is left: until one is made, people and keys are managed on this "
      .. "machine (or with a server key of role admin, if one is kept); to make one: a local account with 'orket "
      .. "users role NAME admin' (PUT /v1/users/NAME/role); where people sign in through a provider or directory, "
      .. "one of theirs by a group that sign_in.roles maps to admin (at their next sign-in, or the directory's next "
      .. "look); or a new local account with 'orket users add NAME --role admin' (POST /v1/users with role admin)\n",
      r.stderr, 1, true)
    assert.equal(401, (req(s, "GET", "/v1/users", root)))
    ok(H.orket("users enable root", { cwd = dir }), "enable root")
    root = sign_in(s, "root", NEW)
    -- on the machine, from the environment, never an argument
    r = ok(H.orket("users passwd alice --password-env PW2", { cwd = dir, env = { PW2 = NEW } }), "users passwd")
    assert.matches("set the password of alice", r.stdout, 1, true)
    assert.equal(401, (req(s, "GET", "/v1/projects", alice)))
    assert.equal(200, (req(s, "POST", "/v1/session", { JSON }, { user = "alice", password = NEW })))
    -- or as standard input's first line, for a script
    ok(H.orket("users passwd alice --password-stdin", { cwd = dir, stdin = "piped passphrase\nignored\n" }), "stdin")
    assert.equal(200, (req(s, "POST", "/v1/session", { JSON }, { user = "alice", password = "piped passphrase" })))
    r = H.orket("users passwd alice --password-stdin", { cwd = dir, stdin = "\n" })
    assert.equal(1, r.status)
    assert.matches("standard input's first line is empty", r.stderr, 1, true)
    r = H.orket("users passwd alice --role admin", { cwd = dir })
    assert.equal(2, r.status)
    r = H.orket("users role alice", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("users role needs NAME and a role", r.stderr, 1, true)
    -- each audited with whom it was about
    st, doc = req(s, "GET", "/v1/audit?limit=200", root)
    local seen = {}
    for _, e in ipairs(doc.entries) do
      if e.subject then seen[#seen + 1] = e.action .. " " .. e.subject.person .. " " .. tostring(e.subject.role) end
    end
    local all = table.concat(seen, "\n")
    for _, want in ipairs { "user_role alice operator", "user_password bob nil", "user_password root nil" } do
      assert.matches(want, all, 1, true)
    end
    assert.equal(0, s.stop())
    r = ok(H.orket("audit export", { cwd = dir }), "export")
    assert.matches('"action":"user_role","actor":"local:[^"]*","at":"[^"]*","detail":"person=alice role=admin"', r.stdout)
    assert.matches('"action":"user_password","actor":"local:[^"]*","at":"[^"]*","detail":"person=alice"', r.stdout)
    assert.is_nil(r.stdout:find(NEW, 1, true))
  end)

  it("keeps key names per person, so that one person's key says nothing of another's", function()
    local dir = two_projects()
    ok(H.orket("keys create ci --role viewer", { cwd = dir }), "the server's own key named ci")
    local s = H.serve(dir)
    local alice, bob = sign_in(s, "alice"), sign_in(s, "bob")
    local st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "ci", role = "viewer" })
    assert.equal(201, st)
    local bob_id = doc.id
    st = req(s, "POST", "/v1/me/keys", alice, { name = "ci", role = "viewer" })
    assert.equal(201, st)
    -- one's own name twice is still refused, saying nothing of anyone else
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "ci", role = "viewer" })
    assert.same({ 409, "a key named 'ci' exists already among bob's keys; revoke it first or choose another name" },
      { st, doc.error.message })
    assert.equal(0, s.stop())
    -- a name several hold is revoked by its id; the name alone is refused, naming each
    local r = H.orket("keys revoke ci", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("3 keys are named 'ci': revoke one by its id: ", r.stderr, 1, true)
    assert.matches(bob_id .. " (bob)", r.stderr, 1, true)
    r = ok(H.orket("keys revoke " .. bob_id, { cwd = dir }), "revoke by id")
    assert.matches("revoked key " .. bob_id .. " (ci, viewer, of bob)\n", r.stdout, 1, true)
    r = ok(H.orket("keys create ci --role viewer --for bob", { cwd = dir }), "bob's ci again")
  end)

  it("tells a person of no project who asks for a key that a grant comes first, not a weaker role", function()
    local dir = two_projects()
    add(dir, "carol", "viewer")
    ok(H.orket("projects revoke default carol", { cwd = dir }), "revoke")
    local s = H.serve(dir)
    local st, doc = req(s, "POST", "/v1/me/keys", sign_in(s, "carol"), { name = "ci", role = "viewer" })
    assert.same({ 403, "forbidden" }, { st, doc.error.code })
    assert.matches("your strongest role is none (a member of no project)", doc.error.message, 1, true)
    assert.equal("a server admin grants you a role in a project first (orket projects grant PROJECT carol ROLE, or "
      .. "PUT /v1/users/carol/projects/PROJECT {role}); then make the key (docs/teams.md#roles)", doc.error.remedy)
    assert.equal(0, s.stop())
  end)

  it("holds an admin's key for a person to the person's strongest role", function()
    local dir = two_projects()
    add(dir, "root", "admin")
    local s = H.serve(dir)
    local root = sign_in(s, "root")
    -- bob is a developer in notes only: an admin key of his would be a server admin's the day
    -- he were promoted, wherever it had been pasted meanwhile
    local st, doc = req(s, "POST", "/v1/users/bob/keys", root, { name = "bob-admin", role = "admin" })
    assert.same({ 403, "forbidden", "bob's strongest role is developer: a key of theirs may be operator (a "
      .. "developer's) or lower, not admin" }, { st, doc.error.code, doc.error.message })
    assert.matches("grant bob the admin role in a project first (PUT /v1/users/bob/projects/PROJECT "
      .. "{\"role\": \"admin\"})", doc.error.remedy, 1, true)
    assert.equal(201, (req(s, "POST", "/v1/users/bob/keys", root, { name = "bob-ci", role = "operator" })))
    assert.equal(404, (req(s, "POST", "/v1/users/ghost/keys", root, { name = "x", role = "viewer" })))
    -- a server admin's keys may be admin keys; a person of no project gets none
    assert.equal(201, (req(s, "POST", "/v1/users/root/keys", root, { name = "root-ci", role = "admin" })))
    ok(H.orket("projects revoke notes bob", { cwd = dir }), "revoke")
    st, doc = req(s, "POST", "/v1/users/bob/keys", root, { name = "bob-ro", role = "viewer" })
    assert.same({ 403, "bob is a member of no project: a key of theirs would reach nothing" }, { st, doc.error.message })
    assert.equal(0, s.stop())
  end)

  it("counts a membership of a project no longer hosted for no key, and takes it out", function()
    local dir, team = H.example("notes"), H.example("notes")
    local conf = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", conf .. string.format("\nserve = { projects = { team = %q } }\n", team))
    add(dir, "root", "admin")
    add(dir, "bob", "viewer")
    ok(H.orket("projects grant team bob admin", { cwd = dir }), "grant")
    local s = H.serve(dir)
    assert.equal(201, (req(s, "POST", "/v1/users/bob/keys", sign_in(s, "root"), { name = "a1", role = "admin" })))
    assert.equal(0, s.stop())
    -- team taken out of serve.projects, not removed: its membership is left, reaching nothing
    H.write(dir .. "/orket.lua", conf)
    s = H.serve(dir)
    local root = sign_in(s, "root")
    local st, doc = req(s, "POST", "/v1/users/bob/keys", root, { name = "a2", role = "admin" })
    assert.same({ 403, "bob's strongest role is viewer: a key of theirs may be viewer or lower, not admin" },
      { st, doc.error.message })
    st, doc = req(s, "DELETE", "/v1/users/bob/projects/team", root)
    assert.same({ 200, "team", true }, { st, doc.project, doc.revoked })
    st, doc = req(s, "DELETE", "/v1/users/bob/projects/team", root)
    assert.same({ 404, "no project named 'team' (the projects hosted: default)" }, { st, doc.error.message })
    assert.equal(0, s.stop())
  end)

  it("says in each refusal of people, keys and roles what the caller is and what would help", function()
    local dir = two_projects()
    add(dir, "root", "admin")
    local s = H.serve(dir)
    local root, alice, bob = sign_in(s, "root"), sign_in(s, "alice"), sign_in(s, "bob")
    -- a conflict of people or keys is not cured by asking again, as the general 409 said
    local st, doc = req(s, "PUT", "/v1/users/root/role", root, { role = "operator" })
    assert.same({ 409, "conflict" }, { st, doc.error.code })
    assert.matches("^make another person a server admin first %(PUT /v1/users/NAME/role", doc.error.remedy)
    st, doc = req(s, "POST", "/v1/users", root, { name = "alice", role = "viewer", password = PASS })
    assert.same({ 409, "choose another name" }, { st, doc.error.remedy }) -- a person's name: no key frees it
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "dup", role = "viewer" })
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "dup", role = "viewer" })
    assert.same({ 409, "choose another name (a key's is free again once the key that has it is revoked)" },
      { st, doc.error.remedy })
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "ro", role = "viewer" })
    local ro, ro_id = { "Authorization: Bearer " .. doc.key, JSON }, doc.id
    assert.equal(200, (req(s, "DELETE", "/v1/me/keys/" .. ro_id, bob)))
    st, doc = req(s, "DELETE", "/v1/me/keys/" .. ro_id, bob)
    assert.same({ 409, "nothing to do: it was done already" }, { st, doc.error.remedy })
    st, doc = req(s, "DELETE", "/v1/users/root/projects/default", root)
    assert.matches("^take the server admin role away first", doc.error.remedy)
    -- a role refused says which role, where, what the caller has there, and who can change it
    st, doc = req(s, "GET", "/v1/users", alice)
    assert.same({ 403, "this is for the server's admins, and this request does not act as one",
      "people, keys and projects are managed by the server's admins alone: ask one to do it, or, if you are to manage "
        .. "them, to make you one (PUT /v1/users/alice/role {\"role\": \"admin\"}, or 'orket users role alice admin') "
        .. "(docs/teams.md#roles)" }, { st, doc.error.message, doc.error.remedy })
    ok(H.orket("projects grant default bob viewer", { cwd = dir }), "grant")
    st, doc = req(s, "POST", "/v1/cards/API-2/comments", bob, { body = "no" })
    assert.same({ 403, "this needs the developer role in project 'default'; you act there as viewer",
      "a server admin grants it (PUT /v1/users/bob/projects/default {\"role\": \"developer\"}, or 'orket projects "
        .. "grant default bob developer') (docs/teams.md#roles)" }, { st, doc.error.message, doc.error.remedy })
    -- when the key is the limit, not the person, it says so
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "ro2", role = "viewer" })
    ro = { "Authorization: Bearer " .. doc.key, JSON }
    st, doc = req(s, "POST", "/v1/projects/notes/cards/NOTES-2/comments", ro, { body = "no" })
    assert.same({ 403, "this needs the developer role in project 'notes'; you act there as viewer" },
      { st, doc.error.message })
    local capped = "this viewer key (or a session opened with it) acts with no more than viewer, whatever its "
      .. "person's roles: use a key of that role or the session of a sign-in, whose person holds the role "
      .. "(docs/teams.md#keys)"
    assert.equal(capped, doc.error.remedy)
    -- the same whatever the person may: a server admin's viewer key (one that leaked) tells
    -- its holder no more of its person than a viewer's does, and a viewer's viewer key is
    -- told of the key, which a grant alone would not cure
    st, doc = req(s, "GET", "/v1/users", ro)
    assert.same({ 403, capped }, { st, doc.error.remedy })
    st, doc = req(s, "POST", "/v1/me/keys", root, { name = "root-ro", role = "viewer" })
    local root_ro = { "Authorization: Bearer " .. doc.key, JSON }
    st, doc = req(s, "GET", "/v1/users", root_ro)
    assert.same({ 403, capped }, { st, doc.error.remedy })
    st, doc = req(s, "POST", "/v1/cards/API-2/comments", root_ro, { body = "no" })
    assert.same({ 403, capped }, { st, doc.error.remedy })
    st, doc = req(s, "POST", "/v1/cards/API-2/comments", ro, { body = "no" })
    assert.same({ 403, "this needs the developer role in project 'default'; you act there as viewer", capped },
      { st, doc.error.message, doc.error.remedy })
    st, doc = req(s, "POST", "/v1/me/keys", ro, { name = "up", role = "operator" })
    assert.same({ 403, "a viewer key makes keys of its role or lower" }, { st, doc.error.message })
    st, doc = req(s, "POST", "/v1/me/keys", bob, { name = "op", role = "operator" })
    st, doc = req(s, "POST", "/v1/me/keys", { "Authorization: Bearer " .. doc.key, JSON }, { name = "up", role = "admin" })
    assert.same({ 403, "an operator key makes keys of its role or lower" }, { st, doc.error.message })
    -- a key's name is never an id's shape: revoking "that name" would revoke the key of that id
    st, doc = req(s, "POST", "/v1/me/keys", root, { name = ro_id, role = "viewer" })
    -- (named body.name, as every other body error)
    assert.same({ 400, "body.name: a key's name may not be 16 hex digits, as a key's id is (revoking it by name "
      .. "would find the id)" }, { st, doc.error.message })
    st, doc = req(s, "POST", "/v1/keys", root, { name = "0123456789abcdef", role = "viewer" })
    assert.same({ 400, "body.name: a key's name may not be 16 hex digits" }, { st, doc.error.message:sub(1, 48) })
    assert.equal(201, (req(s, "POST", "/v1/keys", root, { name = "0123456789abcdeg", role = "viewer" })))
    -- taking out of a project names what does not exist, as granting does
    st, doc = req(s, "DELETE", "/v1/users/ghost/projects/notes", root)
    assert.same({ 404, "no person named 'ghost'" }, { st, doc.error.message })
    st, doc = req(s, "DELETE", "/v1/users/bob/projects/nope", root)
    assert.same({ 404, "no project named 'nope' (the projects hosted: default, notes)" }, { st, doc.error.message })
    st, doc = req(s, "DELETE", "/v1/users/alice/projects/notes", root)
    assert.same({ 404, "'alice' is not a member of 'notes'" }, { st, doc.error.message })
    -- an account's admin is a server admin: never made by what reads as a project's admin
    st, doc = req(s, "POST", "/v1/users", root, { name = "dan", role = "admin", password = PASS, project = "notes" })
    assert.same({ 400, "body.role: admin makes a server admin (an admin of every project, who manages people), not an "
      .. "admin of 'notes' alone" }, { st, doc.error.message })
    assert.matches("then PUT /v1/users/NAME/projects/notes {\"role\": \"admin\"}", doc.error.remedy, 1, true)
    assert.equal(404, (req(s, "GET", "/v1/users/dan/keys", root)))
    -- a person's bad name or short password is named by its field
    st, doc = req(s, "POST", "/v1/users", root, { name = "Dan Smith", role = "viewer", password = PASS })
    assert.same({ 400, "body.name: a person's name is 1 to 64 ASCII characters: lowercase letters, digits, '.', '_' or "
      .. "'-', starting with a letter" }, { st, doc.error.message })
    -- (by the schema the OpenAPI document gives, which counts characters: orket.serve.people)
    local short = "body.password: string of 5 characters is shorter than the minimum of 8 characters"
    st, doc = req(s, "POST", "/v1/users", root, { name = "dan", role = "viewer", password = "short" })
    assert.same({ 400, short }, { st, doc.error.message })
    st, doc = req(s, "PUT", "/v1/users/alice/password", root, { password = "short" })
    assert.same({ 400, short }, { st, doc.error.message })
    -- a body's field is a field, not a tool's argument
    st, doc = req(s, "POST", "/v1/users", root, { name = "dan", role = "viewer", password = PASS, team = "x" })
    assert.same({ 400, "body.team: unknown field; this route takes only the fields GET /v1/openapi.json lists for it" },
      { st, doc.error.message })
    st, doc = req(s, "PUT", "/v1/users/alice/projects/notes", root, {})
    assert.same({ 400, "body.role: a required field is missing" }, { st, doc.error.message })
    -- the audit's paging names the bound it broke
    st, doc = req(s, "GET", "/v1/audit?limit=0", root)
    assert.same({ 400, "?limit= takes a whole number from 1 to 200 (100 when absent)" }, { st, doc.error.message })
    st, doc = req(s, "GET", "/v1/audit?after=x", root)
    assert.same({ 400, "?after= takes the id the page starts after (the last page's next), a whole number (0: from "
      .. "the first)" }, { st, doc.error.message })
    assert.equal(0, s.stop())
  end)

  it("ends a person's open event stream once they leave the project or are disabled", function()
    local dir = two_projects()
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = ROOMY.env.ORKET_SERVE_LIMITS .. ",heartbeat_ms=100" } })
    local bob = sign_in(s, "bob")
    local key = ok(H.orket("keys create bob-ci --role viewer --for bob", { cwd = dir }), "key").stdout:gsub("%s+$", "")
    local by_cookie = H.stream { url = s.url .. "/v1/projects/notes/events", headers = { bob[1] }, total_timeout_ms = 60000 }
    local by_key = H.stream { url = s.url .. "/v1/projects/notes/events", total_timeout_ms = 60000,
      headers = { "Authorization: Bearer " .. key } }
    assert.same({ 200, 200 }, { by_cookie.status, by_key.status })
    H.wait_for(function() return by_key.text():find("heartbeat", 1, true) end, "a heartbeat")
    ok(H.orket("projects revoke notes bob", { cwd = dir }), "revoke")
    H.wait_for(function() return by_cookie.done() and by_key.done() end, "bob's streams to end", 3000)
    by_cookie.close()
    by_key.close()
    -- a member again, then disabled: the same
    ok(H.orket("projects grant notes bob viewer", { cwd = dir }), "grant")
    local again = H.stream { url = s.url .. "/v1/projects/notes/events", total_timeout_ms = 60000,
      headers = { "Authorization: Bearer " .. key } }
    assert.equal(200, again.status)
    ok(H.orket("users disable bob", { cwd = dir }), "disable")
    H.wait_for(function() return again.done() end, "the stream of a disabled person to end", 3000)
    again.close()
    assert.equal(0, s.stop())
  end)

  -- A member of two projects: the address's #project= is followed in the open tab (a link
  -- to the other project followed, Back after a switch); the page showed the project it
  -- started on under the other's address.
  it("follows the address's project in an open tab in Chromium: a link to the other, then Back", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = two_projects()
    ok(H.orket("projects grant notes alice developer", { cwd = dir }), "grant")
    local s = H.serve(dir, ROOMY)
    WD.with({ width = 1280, height = 900 }, function(wd)
      wd:go(s.url .. "/")
      wd:type(wd:wait("#user", "the sign-in form"), "alice")
      wd:type(wd:find("#password"), PASS)
      wd:press("#signin-button")
      wd:wait('#tree li[data-card="API-2"]', "alice's default board")
      wd:wait("#project-box", "the project switcher")
      wd:press('#tree li[data-card="API-2"] > .card-link')
      H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == "API-2" end,
        "API-2's pane", 3000)
      wd:js("location.hash = 'project=notes'")
      wd:wait('#tree li[data-card="NOTES-1"]', "the notes project's board")
      -- the last project's card is not left in the pane
      assert.is_true(wd:js("return document.getElementById('detail-body').hidden"))
      H.wait_for(function() return not F.board_cards(wd):find("API", 1, true) end, "the default project's cards gone")
      assert.equal("notes", wd:js("return document.getElementById('project').value"))
      assert.matches("alice · developer", wd:text_of("#who"))
      wd:js("history.back()")
      wd:wait('#tree li[data-card="API-2"]', "the default board again, after Back")
      H.wait_for(function() return not F.board_cards(wd):find("NOTES", 1, true) end, "the notes cards gone")
      assert.equal("default", wd:js("return document.getElementById('project').value"))
      -- a project the person is not in changes nothing, and the address names the one shown again
      wd:js("location.hash = 'project=nope'")
      H.wait_for(function() return wd:js("return location.hash") == "#project=default" end, "the address set back", 3000)
      assert.equal("default", wd:js("return document.getElementById('project').value"))
      wd:wait('#tree li[data-card="API-2"]', "the default board still")
    end)
    assert.equal(0, s.stop())
  end)

  -- One browser, two people one after the other (a shared machine): the second sees
  -- nothing of the first's project, not even the card the first left open; nor does a
  -- switch of project keep the last project's card in the pane.
  it("shows the next person in a tab nothing of the last one's project in Chromium", function()
    local chromium, why = WD.available()
    if not chromium then return pending("skipped: " .. why) end
    local dir = two_projects()
    add(dir, "carol", "admin")
    local s = H.serve(dir, ROOMY)
    WD.with({ width = 1280, height = 900 }, function(wd)
      local function sign_in_as(name)
        wd:wait("#user", "the sign-in form")
        H.wait_for(function() return not wd:js("return document.getElementById('signin').hidden") end, "the sign-in form shown")
        wd:js("document.getElementById('user').value = ''")
        wd:type(wd:find("#user"), name)
        wd:type(wd:find("#password"), PASS)
        wd:press("#signin-button")
      end
      wd:go(s.url .. "/")
      sign_in_as("alice")
      wd:press('#tree li[data-card="API-2"] > .card-link')
      H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == "API-2" end,
        "API-2's pane", 3000)
      wd:press("#signout")
      sign_in_as("bob")
      wd:wait('#tree li[data-card="NOTES-1"]', "bob's board")
      os.execute("sleep 1") -- (what comes after the board: the panels, the pane)
      assert.is_nil((wd:js("return document.getElementById('app').textContent") or ""):find("API-", 1, true))
      assert.is_true(wd:js("return document.getElementById('detail-body').hidden"))
      assert.is_false(wd:js("return document.getElementById('detail-none').hidden"))
      -- nor an admin's grant choices (every person, every project) or a draft typed in a card
      wd:press("#signout")
      sign_in_as("carol")
      wd:wait('#tree li[data-card="API-2"]', "carol's board")
      H.wait_for(function() return wd:js("return document.getElementById('grant-project').options.length") > 0 end,
        "the grant choices", 5000)
      wd:press('#tree li[data-card="API-2"] > .card-link')
      H.wait_for(function() return wd:js("return document.getElementById('detail').dataset.card") == "API-2" end,
        "API-2's pane", 3000)
      wd:js("document.getElementById('comment-text').value = 'carol was here'")
      wd:press("#signout")
      sign_in_as("bob")
      wd:wait('#tree li[data-card="NOTES-1"]', "bob's board again")
      os.execute("sleep 1")
      assert.equal(0, wd:js("return document.getElementById('grant-project').options.length"))
      assert.equal(0, wd:js("return document.getElementById('grant-user').options.length"))
      assert.equal("", wd:js("return document.getElementById('comment-text').value"))
    end)
    assert.equal(0, s.stop())
  end)
end)
