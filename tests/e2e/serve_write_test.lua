-- orket serve's writes end to end: the binary on 127.0.0.1 with an ephemeral port; cards
-- created, moved, commented, answered, approved, retried and canceled through the state
-- machine as the key's person, roles enforced, the audit naming the key's id, never the key.
local H = require "tests.helpers"
local cjson = require "cjson"
local http = require "orket.c.http"

local function wait_for(pred, what)
  for _ = 1, 1000 do
    local v = pred()
    if v then return v end
    orket.sleep(10)
  end
  error("timed out waiting for " .. what)
end

local running = {}

local function start(dir)
  os.execute(string.format("cd %s && { %s serve --listen 127.0.0.1:0 >serve.out 2>serve.err & echo $! >serve.pid; "
    .. "wait $!; echo $? >serve.rc; } >/dev/null 2>&1 &", H.quote(dir), H.quote(H.BIN)))
  local port = wait_for(function()
    local out = H.read(dir .. "/serve.out")
    return out and out:match("listening on http://127%.0%.0%.1:(%d+)")
  end, "the server to listen")
  local s = { url = "http://127.0.0.1:" .. port, pid = tonumber(H.read(dir .. "/serve.pid")) }
  running[s.pid] = true
  function s.log() return H.read(dir .. "/serve.err") or "" end
  function s.stop()
    os.execute("kill -TERM " .. s.pid)
    running[s.pid] = nil
    local rc = wait_for(function() return (H.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the server to exit")
    os.remove(dir .. "/serve.rc")
    return tonumber(rc)
  end
  return s
end

-- call(s, method, path, key, body) -> status, decoded document
local function call(s, method, path, key, body)
  local headers = { "Content-Type: application/json" }
  if key then headers[#headers + 1] = "Authorization: Bearer " .. key end
  local r <close> = assert(http.request { url = s.url .. path, method = method, headers = headers,
    body = body and (type(body) == "string" and body or cjson.encode(body)) or nil, total_timeout_ms = 20000 })
  local status = r:headers()
  local parts = {}
  while true do
    local ev = r:read()
    if not ev then break end
    for _, x in ipairs(ev) do parts[#parts + 1] = x end
  end
  local text = table.concat(parts)
  return status, text ~= "" and cjson.decode(text) or nil, text
end

local function key(dir, name, role)
  local r = H.orket("keys create " .. name .. " --role " .. role, { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  local k = r.stdout:gsub("\n$", "")
  return k, k:match("^ork_(%x+)_")
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
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

describe("orket serve writes", function()
  after_each(function()
    for pid in pairs(running) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    running = {}
    H.cleanup()
  end)

  it("creates, moves, comments and cancels as the key's person; viewers may not; audit names the key", function()
    local dir = H.example("webapp")
    local op, op_id = key(dir, "ops", "operator")
    local viewer = key(dir, "ci", "viewer")
    local s = start(dir)
    local st, doc = call(s, "POST", "/v1/cards", viewer, { parent = "API", summary = "Nope" })
    assert.equal(403, st)
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
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "API", summary = "Metrics", priority = "High" })
    assert.equal(201, st)
    local new_id = doc.card.id
    assert.is_string(new_id)
    assert.equal(0, H.orket("card " .. new_id, { cwd = dir }).status)
    st, doc = call(s, "POST", "/v1/cards", op, { parent = "NOPE", summary = "x" })
    assert.equal(404, st)
    -- an illegal move: 409 with the state machine's code, nothing changed
    st, doc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "done" })
    assert.equal(409, st)
    assert.matches("^E[A-Z_]+$", doc.error.code)
    assert.equal("ready", cjson.decode(H.orket("card API-1 --json", { cwd = dir }).stdout).card.status)
    st, doc = call(s, "POST", "/v1/cards/API-1/move", op, { to = "no_such_status" })
    assert.equal(400, st)
    st, doc = call(s, "POST", "/v1/cards/NOPE/move", op, { to = "in_progress" })
    assert.equal(404, st)
    st, doc = call(s, "POST", "/v1/cards/API-1/comments", op, { body = "Looks fine." })
    assert.equal(200, st, cjson.encode(doc))
    st, doc = call(s, "POST", "/v1/cards/API-4/cancel", op, { reason = "not needed" })
    assert.equal(200, st, cjson.encode(doc))
    assert.equal("canceled", cjson.decode(H.orket("card API-4 --json", { cwd = dir }).stdout).card.status)
    st, doc = call(s, "POST", "/v1/cards/API-4/cancel", op, { reason = "again" })
    assert.equal(409, st)
    -- the audit: each write with the key's id; viewers may read it
    st, doc = call(s, "GET", "/v1/audit", viewer)
    assert.equal(200, st)
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
    local function status(id) return cjson.decode(H.orket("card " .. id .. " --json", { cwd = dir }).stdout).card.status end
    assert.equal("waiting_for_developer", status("CLEAN-1"))
    -- /metrics after the run: promtool accepts it, and the run's figures are there
    local mr <close> = assert(http.request { url = s.url .. "/metrics", headers = { "Authorization: Bearer " .. op },
      total_timeout_ms = 20000 })
    assert.equal(200, (mr:headers()))
    local parts = {}
    while true do
      local ev = mr:read()
      if not ev then break end
      for _, x in ipairs(ev) do parts[#parts + 1] = x end
    end
    local metrics = table.concat(parts)
    H.write(dir .. "/metrics.txt", metrics)
    local pt = io.popen("promtool check metrics < " .. H.quote(dir .. "/metrics.txt") .. " 2>&1; echo rc=$?")
    local pout = pt:read("a")
    pt:close()
    assert.matches("rc=0\n$", pout)
    for _, family in ipairs { "orket_cards", "orket_runs", "orket_turns_total", "orket_model_calls_total",
      "orket_model_tokens_total", "orket_model_call_duration_seconds", "orket_tool_calls_total",
      "orket_gate_violations_total", "orket_approvals_waiting", "orket_http_requests_total",
      "orket_http_request_duration_seconds", "orket_sse_clients" } do
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
    assert.equal("ready", status("CLEAN-1"))
    st, doc = call(s, "POST", "/v1/cards/CLEAN-1/approve", op, {})
    assert.equal(409, st)
    assert.equal("ESTATE", doc.error.code)
    -- a question: answered with text, or retried; a card that does not wait: 409
    assert.equal("waiting_for_developer", status("CLEAN-2"))
    assert.equal("waiting_for_developer", status("CLEAN-3"))
    st, doc = call(s, "POST", "/v1/cards/CLEAN-2/answer", op, { text = "new.txt" })
    assert.equal(200, st, cjson.encode(doc))
    assert.equal("ready", status("CLEAN-2"))
    assert.equal("new.txt", doc.comments[#doc.comments].body)
    assert.equal(op_id, doc.comments[#doc.comments].author)
    st, doc = call(s, "POST", "/v1/cards/CLEAN-2/answer", op, { text = "again" })
    assert.equal(409, st)
    assert.equal("ESTATE", doc.error.code)
    st, doc = call(s, "POST", "/v1/cards/CLEAN-3/retry", op, { note = "go on" })
    assert.equal(200, st, cjson.encode(doc))
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
end)
