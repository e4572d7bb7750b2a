-- orket serve against its own OpenAPI document and RFC 9110, as a client written from them
-- meets it: OPTIONS names the methods of the path's route (as its 405 does) and 404s a path
-- no route takes; /mcp's 405 is one; real answers validate against the document's schemas
-- (with the server's own validator), which declares the statuses the server answers; the
-- web board's files take If-None-Match as caches send it.
local H = require "tests.helpers"
local cjson = require "cjson"
local schema = require "orket.c.schema"
local uv = require "luv"

local key = H.api_key

-- req(s, method, path, {headers}, body) -> status, decoded answer (nil when empty or not
-- JSON), headers (lower-case name -> value)
local function req(s, method, path, headers, body)
  local status, text, hs = H.fetch { url = s.url .. path, method = method, headers = headers or {},
    body = body and (type(body) == "string" and body or cjson.encode(body)) or nil, total_timeout_ms = 20000 }
  return status, text ~= "" and require("cjson.safe").decode(text) or nil, hs or {}, text
end

local function bearer(k) return "Authorization: Bearer " .. k end

-- raw(port, text) -> the whole answer to a request sent byte for byte ("OPTIONS *", which
-- no client library sends)
local function raw(port, text)
  local c = uv.new_tcp()
  local st = { data = {} }
  c:connect("127.0.0.1", port, function(err)
    if err then st.done = true return end
    c:write(text)
    c:read_start(function(_, d)
      if d then st.data[#st.data + 1] = d else st.done = true end
    end)
  end)
  H.wait_for(function() return st.done or table.concat(st.data):find("\r\n\r\n", 1, true) end, "an answer")
  c:close()
  return table.concat(st.data)
end

-- the document's nesting is deeper than a tool's arguments may be, its strings longer
local LIMITS = { max_depth = 16, max_string = 1 << 24, max_items = 1 << 20 }

-- response(api, method, pattern, status) -> the response the document declares
local function response(api, method, pattern, status)
  local op = assert(api.paths[pattern] and api.paths[pattern][method:lower()], method .. " " .. pattern)
  return assert(op.responses[tostring(status)], string.format("%s %s declares no %s", method, pattern, status))
end

-- conforms(api, method, pattern, status, doc): the answer validates against the schema the
-- document declares for it, and the check can fail
local function conforms(api, method, pattern, status, doc)
  local resp = response(api, method, pattern, status)
  local s = assert(resp.content and resp.content["application/json"], method .. " " .. pattern .. " " .. status
    .. ": no JSON").schema
  local ok, msg = schema.validate(s, doc, LIMITS)
  assert(ok, string.format("%s %s %s: %s", method, pattern, status, tostring(msg)))
  assert.is_nil((schema.validate(s, "not a document", LIMITS)))
end

local function serve(dir, o)
  H.write(dir .. "/orket.lua", (H.read(dir .. "/orket.lua") or "") .. 'serve = { cors = { "https://board.example" } }\n')
  return H.serve(dir, o)
end

describe("orket serve: OPTIONS and Allow", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("answers OPTIONS with the methods of the path's route, as its 405 does, and 404 where no route is", function()
    local dir = H.example("webapp")
    local adm = key(dir, "adm", "admin")
    local s = serve(dir)
    for path, allow in pairs { ["/v1/board"] = "GET, HEAD, OPTIONS", ["/v1/users"] = "GET, POST, HEAD, OPTIONS",
      ["/v1/cards/API-1/comments"] = "POST, OPTIONS", ["/mcp"] = "POST, DELETE, OPTIONS",
      ["/v1/projects/default/board"] = "GET, HEAD, OPTIONS", ["/health"] = "GET, HEAD, OPTIONS",
      ["/v1/sandboxes/1/app/x"] = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS" } do
      -- with a key and without: the same methods, and no key asked for
      for _, h in ipairs { {}, { bearer(adm) } } do
        local st, doc, hs = req(s, "OPTIONS", path, h)
        assert.same({ 204, allow, nil }, { st, hs.allow, doc }, path)
      end
      -- a method no route of the path takes: its 405 names the same ones
      local st, doc, hs = req(s, "TRACE", path, { bearer(adm) })
      assert.same({ 405, allow, "method_not_allowed" }, { st, hs.allow, doc.error.code }, path)
    end
    -- the web board's files are read only
    local st, _, hs = req(s, "OPTIONS", "/app.js")
    assert.same({ 204, "GET, HEAD, OPTIONS" }, { st, hs.allow })
    -- no route: 404, as GET says; a bad path: 400
    for _, path in ipairs { "/no/such/route", "/v1/nothing", "/v1/projects/default/nothing" } do
      local gst, gdoc = req(s, "GET", path, { bearer(adm) })
      local ost, odoc, ohs = req(s, "OPTIONS", path)
      assert.same({ 404, 404, "not_found", "not_found" }, { gst, ost, gdoc.error.code, odoc.error.code }, path)
      assert.is_nil(ohs.allow, path)
    end
    local bst, bdoc = req(s, "OPTIONS", "/v1/%2e%2e/board")
    assert.same({ 400, "bad_path" }, { bst, bdoc.error.code })
    -- the server's own routes are not served under a project's prefix: neither GET nor OPTIONS
    for _, path in ipairs { "/v1/projects/default/keys", "/v1/projects/default/openapi.json",
      "/v1/projects/default/users" } do
      local gst, gdoc = req(s, "GET", path, { bearer(adm) })
      local ost, odoc, ohs = req(s, "OPTIONS", path)
      assert.same({ 404, 404, "not_found", gdoc.error.message }, { gst, ost, odoc.error.code, odoc.error.message }, path)
      assert.is_nil(ohs.allow, path)
    end
    -- the asterisk form asks about the server: every method a route takes
    local answer = raw(s.port, "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert.matches("^HTTP/1%.1 204", answer)
    assert.matches("\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n", answer, 1, true)
    assert.equal(0, s.stop())
  end)

  it("gives a listed origin's preflight its route's Allow beside the CORS answer, and a 404 it can read", function()
    local dir = H.example("webapp")
    local s = serve(dir)
    local origin = "Origin: https://board.example"
    local st, _, hs = req(s, "OPTIONS", "/v1/board", { origin, "Access-Control-Request-Method: GET" })
    assert.same({ 204, "GET, HEAD, OPTIONS", "https://board.example", "GET, HEAD, POST, PUT, PATCH, DELETE", "600" },
      { st, hs.allow, hs["access-control-allow-origin"], hs["access-control-allow-methods"],
        hs["access-control-max-age"] })
    assert.matches("Authorization", hs["access-control-allow-headers"], 1, true)
    local nst, ndoc, nhs = req(s, "OPTIONS", "/no/such/route", { origin, "Access-Control-Request-Method: GET" })
    assert.same({ 404, "not_found", "https://board.example" }, { nst, ndoc.error.code, nhs["access-control-allow-origin"] })
    nst, ndoc, nhs = req(s, "OPTIONS", "/v1/projects/default/keys", { origin, "Access-Control-Request-Method: GET" })
    assert.same({ 404, "not_found", "https://board.example" }, { nst, ndoc.error.code, nhs["access-control-allow-origin"] })
    -- another origin: the Allow, no CORS
    st, _, hs = req(s, "OPTIONS", "/v1/board", { "Origin: https://evil.example", "Access-Control-Request-Method: GET" })
    assert.same({ 204, "GET, HEAD, OPTIONS" }, { st, hs.allow })
    assert.is_nil(hs["access-control-allow-origin"])
    assert.equal(0, s.stop())
  end)

  it("answers /mcp's GET and PUT with one 405: the Allow OPTIONS gives and the API's error body", function()
    local dir = H.example("webapp")
    local viewer = key(dir, "look", "viewer")
    local s = serve(dir)
    local _, _, ohs = req(s, "OPTIONS", "/mcp")
    for _, m in ipairs { "GET", "PUT", "PATCH" } do
      for _, accept in ipairs { "text/event-stream", "application/json" } do
        local st, doc, hs = req(s, m, "/mcp", { bearer(viewer), "Accept: " .. accept })
        assert.same({ 405, "POST, DELETE, OPTIONS", ohs.allow, "method_not_allowed" },
          { st, hs.allow, hs.allow, doc and doc.error.code }, m)
        assert.equal("application/json; charset=utf-8", hs["content-type"], m)
      end
    end
    local _, api = req(s, "GET", "/v1/openapi.json", { bearer(viewer) })
    assert.is_nil(api.paths["/mcp"].get) -- as no other route lists a method it does not take
    assert.equal(0, s.stop())
  end)
end)

describe("orket serve: real answers against the OpenAPI document", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  -- a server of the webapp example with an admin's key -> s, the key, the served document
  local function started()
    local dir = H.example("webapp")
    local adm = key(dir, "adm", "admin")
    local s = serve(dir)
    local _, api = req(s, "GET", "/v1/openapi.json", { bearer(adm) })
    return s, adm, api
  end

  it("validates the people listing, signs_in and all", function()
    local s, adm, api = started()
    assert.equal(201, (req(s, "POST", "/v1/users", { bearer(adm), "Content-Type: application/json" },
      { name = "alice", role = "operator", password = "longenough1" })))
    local st, doc = req(s, "GET", "/v1/users", { bearer(adm) })
    assert.same({ 200, "password" }, { st, doc.users[1].signs_in })
    conforms(api, "GET", "/v1/users", 200, doc)
    assert.equal(0, s.stop())
  end)

  it("validates /mcp's refusals: JSON-RPC errors, an integer code with jsonrpc and id", function()
    local s, adm, api = started()
    local mcp = { bearer(adm), "Content-Type: application/json", "Accept: application/json, text/event-stream" }
    local ping = { jsonrpc = "2.0", id = 1, method = "ping" }
    local st, doc = req(s, "POST", "/mcp", mcp, ping)
    assert.same({ 400, -32600 }, { st, doc.error.code })
    conforms(api, "POST", "/mcp", 400, doc)
    st, doc = req(s, "POST", "/mcp", { mcp[1], mcp[2], mcp[3], "Mcp-Session-Id: none-such" }, ping)
    assert.same({ 404, -32001 }, { st, doc.error.code })
    conforms(api, "POST", "/mcp", 404, doc)
    st, doc = req(s, "POST", "/mcp", { mcp[1], mcp[2], "Accept: text/html" }, ping)
    assert.same({ 406, -32600 }, { st, doc.error.code })
    conforms(api, "POST", "/mcp", 406, doc)
    st, doc = req(s, "POST", "/mcp", mcp, "{")
    assert.same({ 400, -32700 }, { st, doc.error.code })
    conforms(api, "POST", "/mcp", 400, doc)
    assert.equal(0, s.stop())
  end)

  it("declares the password's bounds as the server checks them", function()
    local s, adm, api = started()
    local json = { bearer(adm), "Content-Type: application/json" }
    assert.equal(201, (req(s, "POST", "/v1/users", json, { name = "alice", role = "operator", password = "longenough1" })))
    for _, op in ipairs { { "post", "/v1/users" }, { "put", "/v1/users/{name}/password" } } do
      local p = api.paths[op[2]][op[1]].requestBody.content["application/json"].schema.properties.password
      assert.same({ 8, 1024 }, { p.minLength, p.maxLength }, op[2])
    end
    local st, doc = req(s, "POST", "/v1/users", json, { name = "bob", role = "viewer", password = "short" })
    assert.same({ 400, "bad_request" }, { st, doc.error.code })
    assert.matches("body.password", doc.error.message, 1, true)
    st, doc = req(s, "PUT", "/v1/users/alice/password", json, { password = "short" })
    assert.same({ 400, "bad_request" }, { st, doc.error.code })
    assert.matches("body.password", doc.error.message, 1, true)
    -- counted in characters, as the schema counts them: 600 of 2 bytes are taken, 1025 are not
    st = req(s, "POST", "/v1/users", json, { name = "bob", role = "viewer", password = string.rep("é", 600) })
    assert.equal(201, st)
    st, doc = req(s, "POST", "/v1/users", json, { name = "carl", role = "viewer", password = string.rep("é", 1025) })
    assert.same({ 400, "body.password: string of 1025 characters is longer than the limit of 1024 characters" },
      { st, doc.error.message })
    assert.equal(0, s.stop())
  end)

  it("declares 429 on every route: the address's limit comes before any, those without a key too", function()
    local dir = H.example("webapp")
    local viewer = key(dir, "look", "viewer")
    -- three tokens for the address, none more for a long while
    local s = serve(dir, { env = { ORKET_SERVE_LIMITS = "addr_rate=0.001,addr_burst=3" } })
    local _, api = req(s, "GET", "/v1/openapi.json", { bearer(viewer) })
    for pattern, item in pairs(api.paths) do
      for method, op in pairs(item) do assert.is_table(op.responses["429"], method .. " " .. pattern) end
    end
    assert.equal(200, (req(s, "GET", "/health")))
    assert.equal(200, (req(s, "GET", "/v1/branding")))
    for _, path in ipairs { "/health", "/ready", "/v1/branding", "/v1/sign-in" } do
      local st, doc, hs = req(s, "GET", path)
      assert.same({ 429, "rate_limited" }, { st, doc.error.code }, path)
      assert.is_string(hs["retry-after"], path)
      conforms(api, "GET", path, 429, doc)
    end
    assert.equal(0, s.stop())
  end)

  it("declares 503 where a key or a body is read, and what the app proxy passes on", function()
    local s, _, api = started()
    for pattern, item in pairs(api.paths) do
      for method, op in pairs(item) do
        if op.security[1] or op.requestBody then assert.is_table(op.responses["503"], method .. " " .. pattern) end
      end
    end
    assert.is_table(response(api, "GET", "/metrics", 503))
    assert.is_table(response(api, "POST", "/v1/cards/{id}/comments", 503))
    local proxied = api.paths["/v1/sandboxes/{id}/app/{path}"]
    for _, m in ipairs { "get", "post", "put", "patch", "delete" } do
      local r = proxied[m].responses
      assert.is_table(r.default and r.default.content["*/*"], m)
      assert.matches("app_busy", r["503"].description, 1, true)
      assert.matches("not_running", r["409"].description, 1, true)
      assert.matches("gateway_timeout", r["504"].description, 1, true)
    end
    assert.equal(0, s.stop())
  end)

  it("names every route not served under a project's prefix, /v1/openapi.json and sign-in among them", function()
    local s, adm, api = started()
    local listed = api.info.description:match("all but the server's own: (.-), and the routes under them")
    assert.is_string(listed, api.info.description)
    local own = {}
    for p in listed:gmatch("/v1/[%w%-%.]+") do own[p] = true end
    for _, p in ipairs { "/v1/openapi.json", "/v1/sign-in", "/v1/session", "/v1/keys", "/v1/users", "/v1/me",
      "/v1/branding", "/v1/projects" } do
      assert.is_true(own[p], p)
    end
    -- each path the document has: a GET of it under the prefix is 404 when it is listed
    -- (not served there), and answered as without the prefix when it is not (an event
    -- stream aside)
    for pattern, item in pairs(api.paths) do
      local prefix = pattern:match("^/v1/[^/]+")
      local json = item.get and item.get.responses["200"] and item.get.responses["200"].content["application/json"]
      if json and prefix and not pattern:find("{", 1, true) then
        local st, doc = req(s, "GET", "/v1/projects/default" .. pattern:sub(4), { bearer(adm) })
        if own[prefix] then
          assert.same({ 404, "not_found" }, { st, doc and doc.error and doc.error.code }, pattern)
        else
          assert.equal((req(s, "GET", pattern, { bearer(adm) })), st, pattern)
        end
      end
    end
    assert.equal(0, s.stop())
  end)
end)

-- listed(schema, v, where): every field of the real answer v is one its schema lists, at every
-- depth the schema describes (an extra field only where additionalProperties is a schema),
-- and no object or non-empty list of v is left undescribed (a bare {"type":"object"} or an
-- array without items): a generated client types v's every field. A schema of no type (an
-- event's data, a call's arguments) takes any value, and says so in its description.
local function is_list(v) return rawlen(v) > 0 or next(v) == nil end
local function listed(s, v, where)
  if type(v) ~= "table" then return end
  assert(type(s) == "table", where .. ": no schema")
  if s.type == nil and s.properties == nil and s.items == nil then
    assert.is_string(s.description, where .. ": a schema of no type says what it holds")
    return
  end
  if is_list(v) and next(v) ~= nil then
    assert(type(s.items) == "table", where .. ": a list the schema gives no items")
    for i, x in ipairs(v) do listed(s.items, x, where .. "[" .. (i - 1) .. "]") end
  elseif not is_list(v) then
    local extra = type(s.additionalProperties) == "table" and s.additionalProperties or nil
    assert(s.properties or extra, where .. ": an object the schema does not describe")
    for k, x in pairs(v) do
      local ps = s.properties and s.properties[k] or extra
      assert(ps, where .. "." .. k .. ": a field the schema does not list")
      listed(ps, x, where .. "." .. k)
    end
  end
end

-- scripted: each issue's coder writes ID.txt and hands in, the reviewer approves
local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue A%-1", reply = { tool_calls = { call("write_file", { path = "A-1.txt", content = "A\n" }) } } },
  { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

-- an epic A of two issues, A-2 depending on A-1, imported -> dir
local function epic_project()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "workspace", "policies" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "typed"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/epics/a.json", [[
{ "id": "A", "name": "Epic A", "issues": [ { "id": "A-1", "summary": "Write A-1.txt", "seat": "senior_developer" },
  { "id": "A-2", "summary": "Later", "seat": "senior_developer", "priority": "High", "depends_on": ["A-1"] } ] }
]])
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

describe("orket serve: the OpenAPI document types the card, the board and the run", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("lists every field of a real card, board and run, at every depth, and they validate", function()
    local dir = epic_project()
    local op = key(dir, "ops", "operator")
    local s = serve(dir)
    local _, api = req(s, "GET", "/v1/openapi.json", { bearer(op) })
    local json = { bearer(op), "Content-Type: application/json" }
    local st, run = req(s, "POST", "/v1/runs", json, { target = "A-1" })
    assert.equal(201, st)
    local id = math.tointeger(run.run.id)
    H.wait_for(function() return select(2, req(s, "GET", "/v1/runs/" .. id, { bearer(op) })).run.state == "done" end,
      "the run's end", 3000)
    -- what no scripted run leaves: a violation and a verification on A-1, an approval asked
    -- on A-2 (it waits then) and its arm in an experiment
    st = req(s, "POST", "/v1/cards/A-2/move", json, { to = "in_progress" })
    assert.equal(200, st)
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:record_violation { card = "A-1", seat = "senior_developer", rule = "PATH_ESCAPE",
      attempt = "write_file {...}", detail = "outside", remedy = "a path inside" })
    require("orket.store.verifications").insert(db, { card = "A-1", run = id, handin = 9, passed = false,
      command = "make test", reason = "failed", code = 2, wall_ms = 5, output = "no", layers = "[]" })
    assert(require("orket.actions.approvals").request(db, require("orket.board").open(db), { card = "A-2",
      tool = "delete_file", args = { path = "x" }, rule = "POLICY_ASK", reason = "asks", seat = "senior_developer" }))
    assert(db:tx(function()
      require("orket.store.experiments").record(db, "A-2", { { experiment = "small", arm = "variant", model = "m:x",
        role = "coder" } })
      return true
    end))
    db:close()
    st, run = req(s, "POST", "/v1/cards/A-1/comments", json, { body = "seen" })
    assert.equal(200, st)
    local answers = { { "POST", "/v1/cards/{id}/comments", run } }
    for _, path in ipairs { "A-1", "A-2", "A" } do
      local gst, doc = req(s, "GET", "/v1/cards/" .. path, { bearer(op) })
      assert.equal(200, gst, path)
      answers[#answers + 1] = { "GET", "/v1/cards/{id}", doc }
    end
    -- the answers hold what the schema is checked against
    local a1, a2 = answers[2][3], answers[3][3]
    assert.same({ 1, 1, 1, true, true }, { #a1.violations, #a1.verifications, #a1.comments, #a1.history > 0,
      a1.usage.calls > 0 })
    assert.same({ 1, 1, "A-1" }, { #a2.approvals, #a2.experiments, a2.card.depends_on[1] })
    assert.is_table(a1.git)
    assert.is_true(#a1.usage_by_seat > 0)
    assert.same({ "A-1", "A-2" }, answers[4][3].children)
    for _, q in ipairs { "", "?root=A" } do
      local bst, doc = req(s, "GET", "/v1/board" .. q, { bearer(op) })
      assert.equal(200, bst)
      answers[#answers + 1] = { "GET", "/v1/board", doc }
    end
    local rst, one = req(s, "GET", "/v1/runs/" .. id, { bearer(op) })
    assert.same({ 200, "done" }, { rst, one.run.state })
    answers[#answers + 1] = { "GET", "/v1/runs/{id}", one }
    local lst, many = req(s, "GET", "/v1/runs", { bearer(op) })
    assert.equal(200, lst)
    answers[#answers + 1] = { "GET", "/v1/runs", many }
    for _, a in ipairs(answers) do
      conforms(api, a[1], a[2], 200, a[3])
      listed(response(api, a[1], a[2], 200).content["application/json"].schema, a[3], a[1] .. " " .. a[2])
    end
    -- the run's nullable fields are typed so, its usage's fields listed
    local RUN = response(api, "GET", "/v1/runs/{id}", 200).content["application/json"].schema.properties.run
    for _, f in ipairs { "ended_at", "model", "trace_id", "reason" } do
      assert.same({ "string", "null" }, RUN.properties[f].type, f)
    end
    assert.same({ "integer", "null" }, RUN.properties.concurrency.type)
    for _, f in ipairs { "calls", "priced", "input", "cached", "output", "cost" } do
      assert.is_table(RUN.properties.usage.properties[f], f)
    end
    assert.equal(0, s.stop())
  end)

  it("describes what POST /v1/cards and move take as the server takes them", function()
    local dir = H.example("webapp")
    local adm = key(dir, "adm", "admin")
    local s = serve(dir)
    local _, api = req(s, "GET", "/v1/openapi.json", { bearer(adm) })
    local json = { bearer(adm), "Content-Type: application/json" }
    local create = api.paths["/v1/cards"].post.requestBody.content["application/json"].schema.properties
    -- priority: 0..10, a word in any case, or null (absent)
    local kinds = {}
    for _, alt in ipairs(create.priority.oneOf) do kinds[#kinds + 1] = alt.type end
    assert.same({ "integer", "string", "null" }, kinds)
    assert.same({ 0, 10 }, { create.priority.oneOf[1].minimum, create.priority.oneOf[1].maximum })
    local word = create.priority.oneOf[2].pattern
    for _, w in ipairs { "High", "low", "MEDIUM" } do
      assert.equal(201, (req(s, "POST", "/v1/cards", json, { parent = "API", summary = "p", priority = w })), w)
      assert.is_truthy(w:match("^%a+$") and word:find(w:sub(1, 1), 1, true), w)
    end
    for _, bad in ipairs { "2", "urgent" } do
      local st, doc = req(s, "POST", "/v1/cards", json, { parent = "API", summary = "p", priority = bad })
      assert.same({ 400, "EINVAL" }, { st, doc.error.code }, bad)
    end
    -- the card's own id: ID_RULE's characters, 100 at most
    assert.same({ 100, "^[A-Za-z0-9][A-Za-z0-9_.-]*$" }, { create.id.maxLength, create.id.pattern })
    assert.matches("ASCII, 100 at most", create.id.description, 1, true)
    assert.equal(400, (req(s, "POST", "/v1/cards", json, { parent = "API", summary = "x", id = ("B"):rep(101) })))
    assert.equal(201, (req(s, "POST", "/v1/cards", json, { parent = "API", summary = "x", id = ("B"):rep(100) })))
    -- move's to: the statuses the state machine knows, and no other
    local to = api.paths["/v1/cards/{id}/move"].post.requestBody.content["application/json"].schema.properties.to
    assert.same(require("orket.c.statemachine").statuses(), to.enum)
    local st, doc = req(s, "POST", "/v1/cards/API-1/move", json, { to = "finished" })
    assert.equal(400, st)
    for _, w in ipairs(to.enum) do assert.matches(w, doc.error.message, 1, true) end
    -- and reason: the words the state machine takes
    local reason = api.paths["/v1/cards/{id}/move"].post.requestBody.content["application/json"].schema.properties.reason
    assert.same(require("orket.c.statemachine").reasons(), reason.enum)
    assert.equal(0, s.stop())
  end)
end)

describe("orket serve: the web board's files and If-None-Match", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("answers 304 to a weak form, a list that holds the tag, and *; 200 to others", function()
    local dir = H.example("webapp")
    local s = serve(dir)
    local st, _, hs, body = req(s, "GET", "/")
    assert.equal(200, st)
    local etag = hs.etag
    assert.matches('^"[^"]+"$', etag)
    for _, v in ipairs { etag, "W/" .. etag, '"x", ' .. etag, '"x",' .. etag .. ', "y"', "W/\"x\", W/" .. etag, "*",
      " * " } do
      local nst, _, nhs, nbody = req(s, "GET", "/", { "If-None-Match: " .. v })
      assert.same({ 304, "", etag }, { nst, nbody, nhs.etag }, v)
    end
    for _, v in ipairs { '"x"', "W/\"x\", \"y\"", etag:sub(2, -2), '"' .. etag, "**", "" } do
      local nst, _, _, nbody = req(s, "GET", "/", { "If-None-Match: " .. v })
      assert.same({ 200, body }, { nst, nbody }, v)
    end
    assert.equal(0, s.stop())
  end)
end)
