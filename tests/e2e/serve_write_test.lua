-- orket serve's writes end to end: the binary on 127.0.0.1 with an ephemeral port; cards
-- created, moved, commented, answered, approved, retried and canceled through the state
-- machine as the key's person, roles enforced, the audit naming the key's id, never the key.
local H = require "tests.helpers"
local cjson = require "cjson"

local wait_for = H.wait_for

local start = H.serve

local call = H.api

local key = H.api_key

-- schema_of(api, method, pattern, status) -> the response schema the OpenAPI document gives
local function schema_of(api, method, pattern, status)
  local op = assert(api.paths[pattern], pattern)[method:lower()]
  assert(op, method .. " " .. pattern)
  local resp = assert(op.responses[tostring(status)], method .. " " .. pattern .. " " .. status)
  return assert(resp.content["application/json"], "not JSON").schema
end

-- A JSON-schema checker for answers: the keywords the API's schemas use, without the
-- depth cap orket.c.schema.validate puts on tool arguments (the OpenAPI document nests deep).
local function jtype(v)
  if v == cjson.null then return "null" end
  if type(v) == "table" then return (next(v) == nil or v[1] ~= nil) and "array" or "object" end
  if math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v)) then return "integer" end
  return type(v) == "number" and "number" or type(v) == "string" and "string" or type(v) == "boolean" and "boolean"
end

-- whether a value of JSON type t (v) is of the type a schema names, or of one of a list
local function type_ok(want, t, v)
  if type(want) == "table" then
    for _, w in ipairs(want) do
      if type_ok(w, t, v) then return true end
    end
    return false
  end
  return want == t or (want == "number" and t == "integer") or (t == "array" and next(v) == nil and want == "object")
end

local function check(schema, v, at)
  local t = jtype(v)
  if schema.type and not type_ok(schema.type, t, v) then
    local want = type(schema.type) == "table" and table.concat(schema.type, " or ") or schema.type
    return nil, at .. ": " .. t .. ", not " .. want
  end
  if schema.enum then
    local found = false
    for _, e in ipairs(schema.enum) do found = found or e == v end
    if not found then return nil, at .. ": not one of the enum" end
  end
  if t == "string" and schema.maxLength and utf8.len(v) > schema.maxLength then return nil, at .. ": too long" end
  if t == "object" then
    for _, r in ipairs(schema.required or {}) do
      if v[r] == nil then return nil, at .. ": no " .. r end
    end
    for k, x in pairs(v) do
      local sub = schema.properties and schema.properties[k]
      if sub then
        local ok, msg = check(sub, x, at .. "." .. k)
        if not ok then return nil, msg end
      elseif schema.properties and schema.additionalProperties == false then
        return nil, at .. ": unexpected " .. k
      end
    end
  end
  if t == "array" and schema.items then
    for i, x in ipairs(v) do
      local ok, msg = check(schema.items, x, at .. "[" .. i .. "]")
      if not ok then return nil, msg end
    end
  end
  return true
end

-- conforms(api, method, pattern, status, doc): the answer matches its described schema
local function conforms(api, method, pattern, status, doc)
  local ok, msg = check(schema_of(api, method, pattern, status), doc, "answer")
  assert(ok, string.format("%s %s %d: %s", method, pattern, status, tostring(msg)))
  -- the checker can fail: a wrong document does not pass
  assert.is_nil((check(schema_of(api, method, pattern, status), "not a document", "answer")))
end

local function fetch_api(s, key)
  local st, api = call(s, "GET", "/v1/openapi.json", key)
  assert.equal(200, st)
  assert.equal("3.1.0", api.openapi)
  return api
end

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "CLEAN-1", match = "^Issue ", reply = { tool_calls = {
    call("delete_file", { path = "old.txt" }) } } },
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("request_input", { question = "Which name should the file have?" }) } } },
}, default = { content = "Nothing more to do." } }
]]

-- A project whose run leaves CLEAN-1 waiting for an approval.
local function asking_project()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "policies", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "cleanup"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/policies/default.lua", [[ask { tool = "delete_file", path = "**", reason = "needs approval" }]] .. "\n")
  H.write(dir .. "/epics/clean.json", [[
{ "id": "CLEAN", "name": "Clean up", "issues": [
  { "id": "CLEAN-1", "summary": "Remove old.txt", "seat": "senior_developer" },
  { "id": "CLEAN-2", "summary": "Write new.txt", "seat": "senior_developer" },
  { "id": "CLEAN-3", "summary": "Write other.txt", "seat": "senior_developer" } ] }
]])
  H.write(dir .. "/workspace/old.txt", "old\n")
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

describe("orket serve writes", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("creates, moves, comments and cancels as the key's person; viewers may not; audit names the key", function()
    local dir = H.example("webapp")
    local op, op_id = key(dir, "ops", "operator")
    local viewer = key(dir, "ci", "viewer")
    local s = start(dir)
    local api = fetch_api(s, viewer)
    local st, doc = call(s, "POST", "/v1/cards", viewer, { parent = "API", summary = "Nope" })
    assert.equal(403, st)
    conforms(api, "POST", "/v1/cards", 403, doc)
    assert.equal("forbidden", doc.error.code)
    st = call(s, "POST", "/v1/cards/API-1/move", nil, { to = "in_progress" })
    assert.equal(401, st)
    -- schema and JSON checks
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "API" })
    assert.equal(400, st)
    assert.equal("bad_request", doc.error.code)
    assert.matches("summary", doc.error.message)
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "API", summary = "x", bogus = 1 })
    assert.equal(400, st)
    st, doc = call(s, "POST", "/v1/cards", op, "{not json")
    assert.equal(400, st)
    assert.equal("bad_json", doc.error.code)
    -- a key twice (the decoder would keep the last summary, a proxy may have read the first),
    -- escaped or not, at any depth (nothing is made: the audit below counts the creates)
    for _, text in ipairs { '{"parent":"API","summary":"ok","summary":"evil"}',
      '{"parent":"API","summary":"ok","\\u0073ummary":"evil"}',
      '{"parent":"API","summary":"x","requirements":[{"a":1,"a":2}]}' } do
      st, doc = call(s, "POST", "/v1/cards", op, text)
      assert.same({ 400, "bad_json" }, { st, doc.error.code }, text)
      assert.matches('the body gives the key "[a-z]+" twice in one object', doc.error.message, nil, text)
    end
    -- an id git cannot name the card's branch by is refused now, not at the card's first turn
    for _, id in ipairs { "X.lock", "A..B", "a." } do
      st, doc = call(s, "POST", "/v1/cards", op, { parent = "API", summary = "x", id = id })
      assert.equal(400, st, id)
      assert.matches("not ending in '.' or '.lock'", doc.error.message, 1, true)
    end
    -- a card id over ID_RULE's 100 bytes, within the schema's 128
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "API", summary = "x", id = ("A"):rep(101) })
    assert.equal(400, st)
    assert.matches("100 at most", doc.error.message, 1, true)
    -- an id differing only in case from a card's (the example's API-1): on a case-insensitive
    -- filesystem its directory and branch would be that card's; refused as a card that exists
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "API", summary = "x", id = "api-1" })
    assert.same({ 409, "EEXIST" }, { st, doc.error.code })
    conforms(api, "POST", "/v1/cards", 409, doc)
    assert.matches('card id "api-1" differs only in case from the card "API-1": a card\'s id names its directory '
      .. "and git branch", doc.error.message, 1, true)
    -- a seat the team does not have is refused now, naming the field and the team's seats,
    -- not failed at the card's first turn
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "API", summary = "x", seat = "nobody" })
    assert.equal(400, st)
    conforms(api, "POST", "/v1/cards", 400, doc)
    assert.equal('seat "nobody" is not a seat of this team (seats: integrity_guard, lead_architect, senior_developer)',
      doc.error.message)
    -- a fractional priority is refused, as import refuses it
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "API", summary = "Metrics", priority = 2.5 })
    assert.equal(400, st)
    assert.matches("priority must be a whole number from 0 to 10", doc.error.message, 1, true)
    local _, board_before = call(s, "GET", "/v1/board", op)
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "API", summary = "Metrics", priority = "High", seat = "lead_architect" })
    assert.equal(201, st)
    assert.equal("lead_architect", doc.card.seat)
    conforms(api, "POST", "/v1/cards", 201, doc)
    local new_id = doc.card.id
    assert.is_string(new_id)
    -- the board read before the write is not answered again
    local _, board_after = call(s, "GET", "/v1/board", op)
    assert.equal(#board_before.cards + 1, #board_after.cards)
    assert.equal(0, H.orket("card " .. new_id, { cwd = dir }).status)
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "NOPE", summary = "x" })
    assert.equal(404, st)
    -- an illegal move: 409 with the state machine's code, nothing changed
    st, doc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "done" })
    assert.equal(409, st)
    conforms(api, "POST", "/v1/cards/{id}/move", 409, doc)
    assert.matches("^E[A-Z_]+$", doc.error.code)
    assert.equal("ready", cjson.decode(H.orket("card API-1 --json", { cwd = dir }).stdout).card.status)
    st, doc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "no_such_status" })
    assert.equal(400, st)
    -- the remedy is a person's: the route's field is reason (wait_reason, the model's tool
    -- argument, is refused as an unknown field), and a card already there is no turn to end
    st, doc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "blocked" })
    assert.same({ 409, "EREASON_REQUIRED" }, { st, doc.error.code })
    assert.equal("send the move again with reason set to why the card waits: resource, dependency, review, input "
      .. "or system", doc.error.remedy)
    st, doc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "ready" })
    assert.same({ 409, "ESAME", "nothing to do: the card has that status already" },
      { st, doc.error.code, doc.error.remedy })
    -- an optional member sent as null is absent (the same 409 as without it); a required
    -- one is refused; the OpenAPI document says which may be null
    st, doc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "done", note = cjson.null, reason = cjson.null })
    assert.equal(409, st, cjson.encode(doc))
    st, doc = call(s, "POST", "/v1/cards/API-1/move", op, { to = cjson.null })
    assert.equal(400, st)
    assert.matches("to", doc.error.message)
    local move_body = api.paths["/v1/cards/{id}/move"].post.requestBody.content["application/json"].schema
    assert.same({ "string", "null" }, move_body.properties.note.type)
    assert.equal("string", move_body.properties.to.type)
    st, doc = call(s, "POST", "/v1/cards/NOPE/move", op, { to = "in_progress" })
    assert.equal(404, st)
    st, doc = call(s, "POST", "/v1/cards/API-1/comments", op, { body = "Looks fine." })
    assert.equal(200, st, cjson.encode(doc))
    conforms(api, "POST", "/v1/cards/{id}/comments", 200, doc)
    st, doc = call(s, "POST", "/v1/cards/API-4/cancel", op, { reason = "not needed" })
    assert.equal(200, st, cjson.encode(doc))
    conforms(api, "POST", "/v1/cards/{id}/cancel", 200, doc)
    assert.equal("canceled", cjson.decode(H.orket("card API-4 --json", { cwd = dir }).stdout).card.status)
    st, doc = call(s, "POST", "/v1/cards/API-4/cancel", op, { reason = "again" })
    assert.equal(409, st)
    -- a canceled card may still go to archived: its remedy says so, as its message does
    st, doc = call(s, "POST", "/v1/cards/API-4/move", op, { to = "ready" })
    assert.same({ 409, "ETERMINAL" }, { st, doc.error.code })
    assert.matches("it may only go to archived", doc.error.message, 1, true)
    assert.matches("^the card is final: at most it may be archived; ", doc.error.remedy)
    -- while another process holds the project's run lock (an `orket run`): 409 ELOCKED
    local _, stop = H.hold_lock(dir)
    local lst, ldoc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "in_progress" })
    stop()
    assert.equal(409, lst)
    assert.equal("ELOCKED", ldoc.error.code)
    assert.matches("another orket run is working on this project", ldoc.error.message, 1, true)
    assert.equal("ready", cjson.decode(H.orket("card API-1 --json", { cwd = dir }).stdout).card.status)
    -- a lock that cannot be had at all (its file a folder) is the server's failure: 500, not 409
    os.remove(dir .. "/.orket/run.lock")
    assert(os.execute("mkdir " .. H.quote(dir .. "/.orket/run.lock")))
    local ist, idoc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "in_progress" })
    os.execute("rmdir " .. H.quote(dir .. "/.orket/run.lock"))
    assert.equal(500, ist, cjson.encode(idoc))
    assert.equal("internal", idoc.error.code)
    assert.is_nil(idoc.error.message:find("run.lock", 1, true)) -- the path is the log's
    assert.equal("ready", cjson.decode(H.orket("card API-1 --json", { cwd = dir }).stdout).card.status)
    -- the audit: each write with the key's id; viewers may read it
    st, doc = call(s, "GET", "/v1/audit", viewer)
    assert.equal(200, st)
    conforms(api, "GET", "/v1/audit", 200, doc)
    local actions = {}
    for _, e in ipairs(doc.entries) do
      assert.equal(op_id, e.actor)
      actions[#actions + 1] = e.action
    end
    assert.same({ "create", "comment", "cancel" }, actions)
    st, doc = call(s, "GET", string.format("/v1/audit?after=%d&limit=1", doc.entries[1].id), viewer)
    assert.equal(200, st, cjson.encode(doc))
    assert.equal(1, #doc.entries)
    assert.equal("comment", doc.entries[1].action)
    -- the journal names the key's id as a person; the key itself is nowhere
    local hist = cjson.decode(H.orket("card API-1 --json", { cwd = dir }).stdout)
    local kinds = {}
    for _, e in ipairs(hist.history) do
      if e.kind == "comment" or e.kind == "api_write" then
        kinds[#kinds + 1] = e.kind
        assert.equal(op_id, e.actor)
      end
    end
    assert.same({ "comment", "api_write" }, kinds)
    assert.equal(op_id, hist.comments[#hist.comments].author)
    assert.equal(0, s.stop())
    local _, secret = op:match("^ork_(%x+)_(%x+)$")
    -- (on PostgreSQL the store is no file of the project: only the server's output is read)
    for _, f in ipairs { "serve.err", "serve.out", ".orket/orket.db" } do
      local text = H.read(dir .. "/" .. f) or ""
      assert.is_nil(text:find(secret, 1, true), f)
      assert.is_nil(text:find(op, 1, true), f)
    end
  end)

  it("approves a held tool call, answers a question and retries, through the state machine", function()
    local dir = asking_project()
    local r = H.orket("run CLEAN --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr .. r.stdout)
    assert.matches('"status":"waiting_for_developer"', r.stdout)
    local op, op_id = key(dir, "ops", "operator")
    local s = start(dir)
    local api = fetch_api(s, op)
    local function status(id) return cjson.decode(H.orket("card " .. id .. " --json", { cwd = dir }).stdout).card.status end
    assert.equal("waiting_for_developer", status("CLEAN-1"))
    -- /metrics after the run: promtool accepts it, and the run's figures are there
    local mstatus, metrics = H.fetch { url = s.url .. "/metrics", headers = { "Authorization: Bearer " .. op },
      total_timeout_ms = 20000 }
    assert.equal(200, mstatus)
    H.write(dir .. "/metrics.txt", metrics)
    local pt = io.popen("promtool check metrics < " .. H.quote(dir .. "/metrics.txt") .. " 2>&1; echo rc=$?")
    local pout = pt:read("a")
    pt:close()
    assert.matches("rc=0\n$", pout)
    for _, family in ipairs { "orket_cards", "orket_runs", "orket_turns_total", "orket_model_calls_total",
      "orket_model_tokens_total", "orket_model_call_duration_seconds", "orket_tool_calls_total",
      "orket_gate_violations_total", "orket_approvals_waiting", "orket_http_requests_total",
      "orket_http_request_duration_seconds", "orket_sse_clients", "orket_sse_journal_reads_total" } do
      assert.matches("\n" .. family .. "[_{ ]", "\n" .. metrics, nil, family)
    end
    assert.matches('orket_cards{type="issue",status="waiting_for_developer"} 3\n', metrics, 1, true)
    assert.matches('orket_runs{status="stalled"} 1\n', metrics, 1, true)
    assert.matches("orket_approvals_waiting 1\n", metrics, 1, true)
    assert.matches('orket_tool_calls_total{tool="delete_file",verdict="ask"} 1\n', metrics, 1, true)
    assert.matches('orket_model_tokens_total{model="[^"]+",direction="in"} [1-9]', metrics)
    -- text for a card waiting for an approval: 409, nothing changed
    local st, doc = call(s, "POST", "/v1/cards/CLEAN-1/answer", op, { text = "sure" })
    assert.equal(409, st)
    assert.equal("EUSAGE", doc.error.code)
    st, doc = call(s, "POST", "/v1/cards/CLEAN-1/retry", op, {})
    assert.equal(409, st)
    assert.equal("EUSAGE", doc.error.code)
    st, doc = call(s, "POST", "/v1/cards/CLEAN-1/deny", op, {})
    assert.equal(400, st)
    st, doc = call(s, "POST", "/v1/cards/CLEAN-1/approve", op, { note = "it is unused" })
    assert.equal(200, st, cjson.encode(doc))
    conforms(api, "POST", "/v1/cards/{id}/approve", 200, doc)
    assert.equal("ready", status("CLEAN-1"))
    st, doc = call(s, "POST", "/v1/cards/CLEAN-1/approve", op, {})
    assert.equal(409, st)
    assert.equal("ESTATE", doc.error.code)
    -- a question: answered with text, or retried; a card that does not wait: 409
    assert.equal("waiting_for_developer", status("CLEAN-2"))
    assert.equal("waiting_for_developer", status("CLEAN-3"))
    st, doc = call(s, "POST", "/v1/cards/CLEAN-2/answer", op, { text = "new.txt" })
    assert.equal(200, st, cjson.encode(doc))
    conforms(api, "POST", "/v1/cards/{id}/answer", 200, doc)
    assert.equal("ready", status("CLEAN-2"))
    assert.equal("new.txt", doc.comments[#doc.comments].body)
    assert.equal(op_id, doc.comments[#doc.comments].author)
    st, doc = call(s, "POST", "/v1/cards/CLEAN-2/answer", op, { text = "again" })
    assert.equal(409, st)
    assert.equal("ESTATE", doc.error.code)
    assert.equal("GET /v1/cards/CLEAN-2 shows where it stands", doc.error.remedy) -- a route, not a command
    st, doc = call(s, "POST", "/v1/cards/CLEAN-3/retry", op, { note = "go on" })
    assert.equal(200, st, cjson.encode(doc))
    conforms(api, "POST", "/v1/cards/{id}/retry", 200, doc)
    assert.equal("ready", status("CLEAN-3"))
    local hist = cjson.decode(H.orket("card CLEAN-1 --json", { cwd = dir }).stdout).history
    local seen
    for _, e in ipairs(hist) do
      if e.kind == "approval_decided" then seen = e end
    end
    assert.equal(op_id, seen.actor)
    st, doc = call(s, "GET", "/v1/audit", op)
    assert.equal(op_id, doc.entries[1].actor)
    assert.equal("approve", doc.entries[1].action)
    assert.equal(0, s.stop())
  end)

  it("describes every route it serves in its OpenAPI document, and serves every route described", function()
    local dir = H.example("webapp")
    local viewer = key(dir, "ci", "viewer")
    local op = key(dir, "ops", "operator")
    local s = start(dir, { env = { ORKET_SERVE_LIMITS = "auth_fail_burst=100" } })
    local api = fetch_api(s, viewer)
    -- the routes the server serves: its own router's table, built as orket serve builds it
    local serve = require "orket.serve"
    local db = assert(require("orket.store").open(dir .. "/.orket/orket.db"))
    local srv = assert(serve.new { dir = dir, db = db, host = "127.0.0.1", port = 0 })
    local served, described = {}, {}
    for _, r in ipairs(srv.router.routes) do
      served[r.method .. " " .. r.pattern] = true
      -- each body schema is one the validator accepts
      if r.schema then assert(require("orket.c.schema").check_schema(r.schema, r.pattern)) end
    end
    srv:stop() -- the listener and the journal hub's timers, which would keep the loop alive
    db:close()
    for pattern, ops in pairs(api.paths) do
      for method in pairs(ops) do described[method:upper() .. " " .. pattern] = true end
    end
    assert.same(served, described)
    -- and over HTTP each described route is found (no 404 "no such route", no 405); its
    -- parameters filled with a card or run that exists, no key: 401 shows the route matched
    local n = 0
    for name in pairs(described) do
      local method, pattern = name:match("^(%S+) (.+)$")
      local path = pattern:gsub("/runs/{id}", "/runs/1"):gsub("{id}", "API-1")
      local st, doc = call(s, method, path, nil, method == "POST" and {} or nil)
      assert.is_not.equal(405, st, name)
      assert.is_false(st == 404 and doc and doc.error.message == "no such route", name)
      n = n + 1
    end
    assert.is_true(n >= 17)
    -- the answers of the read routes match their described schemas
    for _, c in ipairs { { "/health", "/health" }, { "/ready", "/ready" }, { "/v1/board", "/v1/board" },
      { "/v1/cards/API-1", "/v1/cards/{id}" }, { "/v1/audit", "/v1/audit" }, { "/v1/openapi.json", "/v1/openapi.json" } } do
      local st, doc = call(s, "GET", c[1], viewer)
      assert.equal(200, st, c[1])
      conforms(api, "GET", c[2], 200, doc)
    end
    local st, doc = call(s, "GET", "/v1/cards/NOPE", viewer)
    assert.equal(404, st)
    conforms(api, "GET", "/v1/cards/{id}", 404, doc)
    st, doc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "in_progress", bogus = true })
    assert.equal(400, st)
    conforms(api, "POST", "/v1/cards/{id}/move", 400, doc)
    st, doc = call(s, "GET", "/v1/board", nil)
    assert.equal(401, st)
    conforms(api, "GET", "/v1/board", 401, doc)
    assert.equal(0, s.stop())
  end)
  it("answers a write the store's lock turned away 503 with Retry-After, not a conflict, and takes it after", function()
    if require("tests.backends").name() ~= "sqlite" then
      return pending("SQLite's busy timeout is 5 s; PostgreSQL's lock timeout (30 s) is tested in tests/spec")
    end
    local dir = H.example("webapp")
    local op = key(dir, "ops", "operator")
    local s = start(dir)
    -- this process holds the store's write lock past the server's wait for it
    local holder = assert(require("orket.project").open_store(dir))
    assert(holder:exec("BEGIN IMMEDIATE"))
    local st, doc, hs = H.request(s, "POST", "/v1/cards/API-1/comments",
      { "Content-Type: application/json", "Authorization: Bearer " .. op }, { body = "while locked" })
    assert(holder:exec("ROLLBACK"))
    holder:close()
    assert.equal(503, st)
    assert.equal("EBUSY", doc.error.code)
    conforms(fetch_api(s, op), "POST", "/v1/cards/{id}/comments", 503, doc) -- as the document declares it
    local retry
    for k, v in pairs(hs) do if tostring(k):lower() == "retry-after" then retry = v end end
    assert.equal("2", retry)
    assert.matches("retry", doc.error.remedy, 1, true)
    -- the lock gone, the same write is taken
    st = call(s, "POST", "/v1/cards/API-1/comments", op, { body = "after" })
    assert.equal(200, st)
    assert.equal(0, s.stop())
  end)

  it("answers a write whose statement fails 500, logged, not a conflict of the card's", function()
    local dir = H.example("webapp")
    local op = key(dir, "ops", "operator")
    local s = start(dir)
    local st = call(s, "POST", "/v1/cards/API-1/comments", op, { body = "first" })
    assert.equal(200, st)
    -- the comments' table gone under the server (renamed, so nothing else that names it changes)
    local db = assert(require("orket.project").open_store(dir))
    assert(db:exec("ALTER TABLE comments RENAME TO comments_gone"))
    db:close()
    local doc
    st, doc = call(s, "POST", "/v1/cards/API-1/comments", op, { body = "second" })
    assert.equal(500, st)
    assert.equal("internal", doc.error.code)
    assert.is_nil(doc.error.message:find("comments", 1, true)) -- the store's message stays in the log
    assert.matches("comments", s.log(), 1, true)
    -- a NUL byte in a text is the client's fault on both backends (PostgreSQL cannot keep one)
    st, doc = call(s, "POST", "/v1/cards/API-1/comments", op, '{"body":"a\\u0000b"}')
    assert.equal(400, st)
    assert.same({ "bad_request", "a text of the body holds a NUL byte (\\u0000)" }, { doc.error.code, doc.error.message })
    -- the escape written as text is no NUL
    st = call(s, "POST", "/v1/cards/API-1/comments", op, { body = "a \\u0000 b" })
    assert.equal(500, st) -- the comments' table is still gone: the body passed the check
    -- the table back: the server writes again, and the failed comment left nothing
    db = assert(require("orket.project").open_store(dir))
    assert(db:exec("ALTER TABLE comments_gone RENAME TO comments"))
    db:close()
    st = call(s, "POST", "/v1/cards/API-1/comments", op, { body = "third" })
    assert.equal(200, st)
    st, doc = call(s, "GET", "/v1/cards/API-1", op)
    assert.equal(200, st)
    local bodies = {}
    for _, c in ipairs(doc.card.comments or doc.comments or {}) do bodies[#bodies + 1] = c.body end
    assert.same({ "first", "third" }, bodies)
    assert.equal(0, s.stop())
  end)
end)
