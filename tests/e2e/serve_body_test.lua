-- How orket serve reads a request's body and a few of its queries, end to end: numbers as
-- JSON spells them (0x2, 010, +5, NaN and Infinity are no JSON), a JSON body sent as JSON
-- (415 otherwise, a POST with no body aside), an array never taken for an object, the
-- server's routes under a project's prefix said as such, ?key= of the audit for whoever
-- may see keys, and an event stream's id refused alike from the header and the query.
local H = require "tests.helpers"
local cjson = require "cjson"

local PASS = "correct horse battery"
local JSON = "Content-Type: application/json"

-- send(s, method, path, key, text, content_type) -> status, decoded answer (nil when none)
local function send(s, method, path, key, text, content_type)
  local headers = { "Authorization: Bearer " .. key }
  if content_type then headers[#headers + 1] = "Content-Type: " .. content_type end
  local st, got = H.fetch { url = s.url .. path, method = method, headers = headers, body = text,
    total_timeout_ms = 20000 }
  return st, got ~= "" and require("cjson.safe").decode(got) or nil
end

local function answer(st, doc) return { st, doc and doc.error and doc.error.code, doc and doc.error and doc.error.message } end

local function comments(dir) return #H.card_json(dir, "API-2").comments end

describe("orket serve's request bodies", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses numbers JSON does not have, as bad_json, and writes nothing", function()
    local dir = H.example("webapp")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local function cards() return #select(2, send(s, "GET", "/v1/board", op)).cards end
    local was = cards()
    for _, n in ipairs { "0x2", "010", "+5", "NaN", "Infinity", "-Infinity", "-01" } do
      local st, doc = send(s, "POST", "/v1/cards", op, '{"parent":"API","summary":"n","priority":' .. n .. "}", "application/json")
      assert.same({ 400, "bad_json" }, { st, doc.error and doc.error.code }, n)
      assert.matches("^the body is not JSON: ", doc.error.message)
    end
    -- a no-body route's {} reads the same way (the body's reader is one)
    local st, doc = send(s, "POST", "/v1/runs/1/stop", op, '{"x":0x1}', "application/json")
    assert.same({ 400, "bad_json" }, { st, doc.error.code })
    assert.equal(was, cards())
    -- JSON's own numbers still read (the board then says what it thinks of them)
    for _, n in ipairs { "0", "-1", "1.5e0", "2E+0" } do
      st, doc = send(s, "POST", "/v1/runs", op, '{"target":"NOPE","concurrency":' .. n .. "}", "application/json")
      assert.is_true(st == 400 or st == 404, n) -- (the run's concurrency, or no target NOPE)
      assert.not_equal("bad_json", doc.error.code, n)
    end
    assert.equal(0, s.stop())
  end)

  it("takes a JSON body only as application/json (415 otherwise), and a POST without a body as before", function()
    local dir = H.example("webapp")
    local op = H.api_key(dir, "ops", "operator")
    local admin = H.api_key(dir, "boss", "admin")
    local s = H.serve(dir)
    local before = comments(dir)
    for _, t in ipairs { "text/plain", "application/x-www-form-urlencoded", "application/xml", "application/jsonx",
        "multipart/form-data; boundary=x", false } do
      local st, doc = send(s, "POST", "/v1/cards/API-2/comments", op, '{"body":"x"}', t or nil)
      assert.same({ 415, "unsupported_media_type", "send the body with Content-Type: application/json" },
        answer(st, doc), tostring(t))
    end
    assert.equal(before, comments(dir))
    -- any case, with parameters
    for _, t in ipairs { "application/json", "Application/JSON; charset=utf-8", "application/json;charset=UTF-8" } do
      assert.equal(200, (send(s, "POST", "/v1/cards/API-2/comments", op, '{"body":"y"}', t)), t)
    end
    assert.equal(before + 3, comments(dir))
    -- the other routes that read a JSON body: a key, a run, a person's password
    assert.equal(415, (send(s, "POST", "/v1/runs", op, '{"target":"API"}', "text/plain")))
    assert.equal(415, (send(s, "POST", "/v1/keys", admin, '{"name":"x","role":"viewer"}', "text/plain")))
    assert.equal(415, (send(s, "PUT", "/v1/users/x/password", admin, '{"password":"long enough"}', "text/plain")))
    -- a route that takes no body: none at all, with no Content-Type, is taken (404: no run 1);
    -- a {} sent as a form's is not
    local st, doc = send(s, "POST", "/v1/runs/1/stop", op, nil, nil)
    assert.same({ 404, "not_found" }, { st, doc.error.code })
    st, doc = send(s, "POST", "/v1/runs/1/stop", op, "", nil)
    assert.same({ 404, "not_found" }, { st, doc.error.code })
    assert.equal(415, (send(s, "POST", "/v1/runs/1/stop", op, "{}", "application/x-www-form-urlencoded")))
    assert.equal(404, (send(s, "POST", "/v1/runs/1/stop", op, "{}", "application/json")))
    -- a route that needs a body, sent none: told the body is empty, not its media type
    st, doc = send(s, "POST", "/v1/cards/API-2/retry", op, nil, nil)
    assert.same({ 400, "bad_json" }, { st, doc.error.code })
    assert.matches("^the body is empty", doc.error.message)
    -- the OpenAPI document declares the 415 of each such route
    local _, api = send(s, "GET", "/v1/openapi.json", op)
    assert.is_table(api.paths["/v1/cards/{id}/comments"].post.responses["415"])
    assert.is_table(api.paths["/v1/runs/{id}/stop"].post.responses["415"])
    assert.equal(0, s.stop())
  end)

  it("refuses an array body as no object, [] as [5], on routes with fields and without", function()
    local dir = H.example("webapp")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local history = #H.card_json(dir, "API-2").history
    for _, text in ipairs { "[]", " \n[ ]", "[5]", '[{"to":"blocked"}]', '"x"', "5", "true", "null" } do
      for _, path in ipairs { "/v1/cards/API-2/move", "/v1/cards/API-2/retry", "/v1/cards/API-2/approve" } do
        local st, doc = send(s, "POST", path, op, text, "application/json")
        assert.same({ 400, "bad_request" }, { st, doc.error.code }, path .. " " .. text)
        assert.matches("^the body must be a JSON object", doc.error.message)
      end
      local st, doc = send(s, "POST", "/v1/runs/1/stop", op, text, "application/json")
      assert.same({ 400, "bad_request",
        "the body must be a JSON object, and this route takes no body: send none (or {})" },
        answer(st, doc), text)
    end
    assert.equal(history, #H.card_json(dir, "API-2").history)
    assert.equal(0, s.stop())
  end)
end)

describe("orket serve's routes and queries", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("says a server's route under a project's prefix is the server's, to its member and a stranger alike", function()
    local dir = H.example("webapp")
    local admin = H.api_key(dir, "boss", "admin")
    local s = H.serve(dir)
    for _, p in ipairs { "/v1/keys", "/v1/openapi.json", "/v1/users/{name}/keys" } do
      local want = { 404, "not_found", "this route is the server's, not a project's: it is served at " .. p
        .. " only (without /v1/projects/{p})" }
      local path = "/v1/projects/default" .. p:gsub("^/v1", ""):gsub("{name}", "alice")
      assert.same(want, answer(send(s, "GET", path, admin)), path)
      path = "/v1/projects/nope" .. p:gsub("^/v1", ""):gsub("{name}", "alice")
      assert.same(want, answer(send(s, "GET", path, "ork_0000000000000000_00")), path)
    end
    -- a project's route for a project that is not there is as before
    assert.same({ 404, "not_found", "no such project, or not yours" },
      answer(send(s, "GET", "/v1/projects/nope/board", admin)))
    assert.equal(0, s.stop())
  end)

  it("lets ?key= of the audit keep only what the caller may see of keys", function()
    local dir = H.example("webapp")
    local admin = H.api_key(dir, "boss", "admin")
    local viewer = H.api_key(dir, "ci", "viewer")
    for _, u in ipairs { "alice", "bob" } do
      H.ok(H.orket("users add " .. u .. " --role operator --password-env PW", { cwd = dir, env = { PW = PASS } }), u)
    end
    local function personal(name, user)
      local r = H.ok(H.orket("keys create " .. name .. " --role operator --for " .. user, { cwd = dir }), name)
      local k = r.stdout:gsub("\n$", "")
      return k, k:match("^ork_(%x+)_")
    end
    local kal, alid = personal("al", "alice")
    local kal2 = personal("al2", "alice")
    local kb = personal("bb", "bob")
    local s = H.serve(dir)
    assert.equal(200, (send(s, "POST", "/v1/cards/API-2/comments", kal, '{"body":"by alice"}', "application/json")))
    local path = "/v1/audit?key=" .. alid
    -- the server's admin, and alice through another of her keys, see the entry by her key
    for _, k in ipairs { admin, kal2, kal } do
      local st, doc = send(s, "GET", path, k)
      assert.equal(200, st)
      assert.equal(1, #doc.entries)
      assert.same({ "user:alice", alid }, { doc.entries[1].actor, doc.entries[1].key })
    end
    -- bob's ?key= keeps his own entries: none by alice's key, and nothing told of it
    local st, doc = send(s, "GET", path, kb)
    assert.same({ 200, 0 }, { st, #doc.entries })
    st, doc = send(s, "GET", path .. "&actor=user:alice", kb)
    assert.same({ 403, "forbidden" }, { st, doc.error.code })
    assert.matches("?actor=user:bob", doc.error.remedy, 1, true)
    -- a key of no person has no keys of its own: refused, with the way to its writes
    st, doc = send(s, "GET", path, viewer)
    assert.same({ 403, "forbidden" }, { st, doc.error.code })
    assert.matches("server admin", doc.error.remedy, 1, true)
    st, doc = send(s, "GET", "/v1/audit?key=0000000000000000", viewer)
    assert.same({ 403, "forbidden" }, { st, doc.error.code })
    assert.equal(0, s.stop())
  end)

  it("refuses a bad event id alike from the header and the query, and takes one past 64 bits as past the end", function()
    local dir = H.example("webapp")
    local viewer = H.api_key(dir, "ci", "viewer")
    local s = H.serve(dir)
    local want = { 400, "bad_query", "Last-Event-ID, ?lastEventId= and ?after= take a journal id (a whole number)" }
    assert.same(want, answer(send(s, "GET", "/v1/events?after=abc", viewer)))
    local st, got = H.fetch { url = s.url .. "/v1/events", headers = { "Authorization: Bearer " .. viewer,
      "Last-Event-ID: abc" }, total_timeout_ms = 20000 }
    assert.same(want, answer(st, cjson.decode(got)))
    -- as a listing's ?after= takes such digits: past the journal's end, so a reset first
    for _, h in ipairs { { "Last-Event-ID: 99999999999999999999" }, {} } do
      local q = h[1] and "" or "?after=99999999999999999999"
      local ev = H.stream { url = s.url .. "/v1/events" .. q, headers = { "Authorization: Bearer " .. viewer, h[1] },
        total_timeout_ms = 20000 }
      assert.equal(200, ev.status)
      H.wait_for(function() return ev.text():find("event: reset\n", 1, true) end, "the reset: " .. ev.text())
      ev.close()
    end
    -- a listing's ?after= says what it takes, for the audit's entries and a transcript's events alike
    assert.same({ 400, "bad_query", "?after= takes the id the page starts after (the last page's next), a whole "
      .. "number (0: from the first)" }, answer(send(s, "GET", "/v1/audit?after=x", viewer)))
    assert.equal(0, s.stop())
  end)
end)
