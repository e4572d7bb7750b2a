-- orket serve's runs end to end: the binary on 127.0.0.1 with an ephemeral port and the
-- scripted model; runs started, followed on their event stream, listed, read, stopped and
-- resumed over HTTP; disjoint runs at once, overlapping ones refused (also against `orket
-- run` in another process); SIGTERM mid-run and `orket resume` after it.
local H = require "tests.helpers"
local cjson = require "cjson"
local schema = require "orket.c.schema"

local wait_for = H.wait_for
local start = H.serve

local call = H.api

local key = H.api_key

-- follow(s, path, key) -> a stream reader: text() so far, done(), close()
local function follow(s, path, k)
  local st = H.stream { url = s.url .. path, headers = { "Authorization: Bearer " .. k }, total_timeout_ms = 60000 }
  assert.equal(200, st.status)
  return st
end

-- v cut at depth levels: the validator caps nesting (tool arguments), and the API's
-- schemas say nothing below a few levels (a transcript's messages nest deeper)
local function cut(v, depth)
  if type(v) ~= "table" then return v end
  if depth == 0 then return {} end
  local out = {}
  for k, x in pairs(v) do out[k] = cut(x, depth - 1) end
  return out
end

-- The answer conforms to the schema the server's OpenAPI document gives for it (checked
-- with the server's own validator), and the check can fail.
local function conforms(api, method, pattern, status, doc)
  local op = assert(api.paths[pattern], pattern)[method:lower()]
  local body_schema = assert(op.responses[tostring(status)], pattern .. " " .. status).content["application/json"].schema
  local ok, msg = schema.validate(body_schema, cut(doc, 4))
  assert(ok, string.format("%s %s %d: %s", method, pattern, status, tostring(msg)))
  assert.is_nil((schema.validate(body_schema, { unexpected = true })))
end

-- The scripted team: each card's coder writes CARD.txt and hands in, the reviewer approves.
-- slow: cards whose first answer takes a minute (a run that is still going, for sure).
local function script(slow)
  local list = {}
  for _, c in ipairs(slow or {}) do list[#list + 1] = string.format("[%q] = true", c) end
  return [[
local slow = { ]] .. table.concat(list, ", ") .. [[ }
local function call(name, args) return { name = name, arguments = args } end
local rules = {}
for _, c in ipairs { "A-1", "B-1", "C-1" } do
  rules[#rules + 1] = { role = "coder", card = c, match = "^Issue ", reply = { delay_ms = slow[c] and 60000 or 0,
    tool_calls = { call("write_file", { path = c .. ".txt", content = c .. "\n" }) } } }
end
rules[#rules + 1] = { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } }
rules[#rules + 1] = { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = {
  call("update_issue_status", { status = "done" }) } } }
return { rules = rules, default = { content = "Nothing more to do." } }
]]
end

-- Three epics of one issue each (A, B, C), imported.
local function project(slow)
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "workspace", "policies" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "three"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
  H.write(dir .. "/script.lua", script(slow))
  for _, e in ipairs { "A", "B", "C" } do
    H.write(dir .. "/epics/" .. e:lower() .. ".json", string.format([[
{ "id": "%s", "name": "Epic %s", "issues": [ { "id": "%s-1", "summary": "Write %s-1.txt", "seat": "senior_developer" } ] }
]], e, e, e, e))
  end
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function card_status(dir, id)
  return H.card_json(dir, id).card.status
end

-- two_folders() -> dir, an operator key, dir2 | nil (on SQLite): the project (A-1 slow) and a
-- second folder of it on the same PostgreSQL store (its orket.lua names the database; the
-- key pepper copied, as docs/guide/deploying.md says), with no run lock of the first
local function two_folders()
  if require("tests.backends").name() ~= "pg" then return nil end
  local dir = project { "A-1" }
  local op = key(dir, "ops", "operator")
  local dir2 = H.tmpdir()
  os.execute(string.format("cp -R %s/. %s && rm -rf %s/.orket/runs", H.quote(dir), H.quote(dir2), H.quote(dir2)))
  return dir, op, dir2
end

local LIMITS = { ORKET_SERVE_LIMITS = "poll_ms=20,auth_fail_burst=100" }

describe("orket serve runs", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("starts a run, follows it to done on its stream, lists, gets and reads its transcript", function()
    local dir = project()
    local op, op_id = key(dir, "ops", "operator")
    local viewer = key(dir, "watch", "viewer")
    local s = start(dir, { env = LIMITS })
    local st, api = call(s, "GET", "/v1/openapi.json", viewer)
    assert.equal(200, st)
    -- a viewer may not start runs; bad bodies are refused naming the field
    st = call(s, "POST", "/v1/runs", viewer, { target = "A" })
    assert.equal(403, st)
    for _, c in ipairs {
      { {}, "target" }, { { target = "A", concurrency = 0 }, "concurrency" }, { { target = "A", concurrency = 65 }, "concurrency" },
      { { target = "A", concurrency = "2" }, "concurrency" }, { { target = "A", bogus = 1 }, "bogus" },
      { { target = "A", model = "nowhere:x" }, "model" }, { { target = 7 }, "target" },
    } do
      local bst, doc = call(s, "POST", "/v1/runs", op, c[1])
      assert.equal(400, bst, cjson.encode(c[1]))
      assert.matches("body%." .. c[2], doc.error.message)
      conforms(api, "POST", "/v1/runs", 400, doc)
    end
    local nst, ndoc = call(s, "POST", "/v1/runs", op, { target = "NOPE" })
    assert.equal(404, nst)
    assert.equal("not_found", ndoc.error.code)
    -- the run, to done on its own event stream
    local rst, run = call(s, "POST", "/v1/runs", op, { target = "A", concurrency = 2 })
    assert.equal(201, rst)
    conforms(api, "POST", "/v1/runs", 201, run)
    local id = math.tointeger(run.run.id) -- cjson reads numbers as floats
    assert.equal("A", run.run.target)
    assert.equal("epic", run.run.kind)
    assert.equal(2, run.run.concurrency)
    local events = follow(s, "/v1/runs/" .. id .. "/events?after=0", viewer)
    wait_for(function() return events.text():find("event: run_end", 1, true) end, "the run's end on its stream", 3000)
    events.close()
    -- decoded: the stored JSON is spliced in as it is kept (PostgreSQL's jsonb spaces it)
    assert.equal("done", cjson.decode(events.text():match("event: run_end\ndata: ([^\n]+)")).data.status)
    assert.matches("event: turn_begin", events.text())
    for run_id in events.text():gmatch('"run":(%w+)') do assert.equal(tostring(id), run_id) end
    st, run = call(s, "GET", "/v1/runs/" .. id, viewer)
    assert.equal(200, st)
    conforms(api, "GET", "/v1/runs/{id}", 200, run)
    assert.equal("done", run.run.state)
    assert.is_false(run.run.live)
    assert.is_string(run.run.ended_at)
    assert.equal("done", card_status(dir, "A-1"))
    local list
    st, list = call(s, "GET", "/v1/runs", viewer)
    assert.equal(200, st)
    conforms(api, "GET", "/v1/runs", 200, list)
    assert.equal(id, math.tointeger(list.runs[1].id))
    assert.equal(1, #(select(2, call(s, "GET", "/v1/runs?state=done", viewer))).runs)
    assert.equal(0, #(select(2, call(s, "GET", "/v1/runs?state=running", viewer))).runs)
    assert.equal(400, (call(s, "GET", "/v1/runs?limit=0", viewer)))
    -- a state no run is ever in is a typo, refused naming the states, not an empty list
    local bad_st, bad = call(s, "GET", "/v1/runs?state=runing", viewer)
    assert.equal(400, bad_st)
    assert.equal("bad_query", bad.error.code)
    assert.matches("interrupted, stopped, killed, queued", bad.error.message)
    assert.equal(0, #(select(2, call(s, "GET", "/v1/runs?state=queued", viewer))).runs)
    assert.equal(404, (call(s, "GET", "/v1/runs/99", viewer)))
    -- the transcript is what `orket log RUN --json` prints
    local tr
    st, tr = call(s, "GET", "/v1/runs/" .. id .. "/transcript", viewer)
    assert.equal(200, st)
    conforms(api, "GET", "/v1/runs/{id}/transcript", 200, tr)
    local log = H.orket("log " .. id .. " --json", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    assert.same(cjson.decode(log.stdout), tr)
    assert.equal("orket.log/1", tr.format)
    local calls = 0
    for _, ev in ipairs(tr.events) do if ev.kind == "turn" then calls = calls + 1 end end
    assert.is_true(calls >= 3)
    -- the start is in the audit under the key's id; the model calls' latency in /metrics
    local _, audit = call(s, "GET", "/v1/audit", viewer)
    local last = audit.entries[#audit.entries]
    assert.same({ op_id, "run", "/v1/runs", "A" }, { last.actor, last.action, last.route, last.card })
    local _, _, metrics = call(s, "GET", "/metrics", viewer)
    assert.equal(tostring(calls), metrics:match('orket_model_call_duration_seconds_count{model="scripted:team"} (%d+)'))
    assert.matches('orket_runs{status="done"} 1\n', metrics, 1, true)
    -- stop and resume want a run in a state for that; the start's advice on an overlap
    -- (asking again gets the same answer, stop the run in the way) is not theirs, nor the
    -- vocabulary's "read it again and retry" (the same answer again): a done run has
    -- nothing to do, and a new run is what can be
    local sdoc
    st, sdoc = call(s, "POST", "/v1/runs/" .. id .. "/stop", op)
    assert.equal(409, st)
    local dst, ddoc = call(s, "POST", "/v1/runs/" .. id .. "/resume", op)
    assert.equal(409, dst)
    conforms(api, "POST", "/v1/runs/{id}/resume", 409, ddoc)
    conforms(api, "POST", "/v1/runs/{id}/stop", 409, sdoc)
    for _, d in ipairs { sdoc, ddoc } do
      assert.equal("conflict", d.error.code)
      assert.equal("nothing to do: run " .. id .. " ended done; start a new run with POST /v1/runs", d.error.remedy)
    end
    -- a run a REPL turn ended stopped (orket.terminal.console) is listed by its state, as
    -- the schema says it can be
    local db = assert(require("orket.project").open_store(dir, false))
    local stopped = assert(db:record_run { target = "B-1", kind = "issue" })
    assert.is_true(db:finish_run(stopped, "stopped"))
    db:close()
    st, list = call(s, "GET", "/v1/runs?state=stopped", viewer)
    assert.equal(200, st, cjson.encode(list))
    conforms(api, "GET", "/v1/runs", 200, list)
    assert.equal(1, #list.runs)
    assert.same({ stopped, "stopped" }, { math.tointeger(list.runs[1].id), list.runs[1].state })
    assert.equal(0, s.stop())
  end)

  -- a resume was checked in the CLI alone: the server resumed a run whose team lost its
  -- reviewer seat into a block no retry lifts
  -- an archived epic's issues are not worked: a new run of it is refused at once, saying
  -- how to end them, as orket run refuses it (rather than start, work nothing and stall)
  it("refuses a run of an epic a person archived, naming it and how to end its issues", function()
    local dir = project()
    local op = key(dir, "ops", "operator")
    local s = start(dir, { env = LIMITS })
    local st, doc = call(s, "POST", "/v1/cards/B/move", op, { to = "archived" })
    assert.equal(200, st, cjson.encode(doc))
    st, doc = call(s, "POST", "/v1/runs", op, { target = "B" })
    assert.equal(409, st, cjson.encode(doc))
    assert.matches("B is archived", doc.error.message, 1, true)
    assert.matches("orket cancel", doc.error.message, 1, true)
    st = call(s, "POST", "/v1/runs", op, { target = "A" }) -- another epic's run is not
    assert.equal(201, st)
    assert.equal(0, s.stop())
  end)

  it("refuses to resume a run whose team has no reviewer now, naming orket.lua's line, as the CLI does", function()
    local dir = project { "A-1" }
    local op = key(dir, "ops", "operator")
    local s = start(dir, { env = LIMITS })
    local st, run = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(201, st)
    local id = math.tointeger(run.run.id)
    assert.equal(202, (call(s, "POST", "/v1/runs/" .. id .. "/stop", op)))
    wait_for(function() return select(2, call(s, "GET", "/v1/runs/" .. id, op)).run.state == "interrupted" end,
      "run " .. id .. " interrupted")
    local orig = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", (orig:gsub(", integrity_guard = { roles = { \"integrity_guard\" } }", "")))
    local rst, refused = call(s, "POST", "/v1/runs/" .. id .. "/resume", op)
    assert.equal(409, rst)
    assert.matches("^orket%.lua:3: team: no seat holds the integrity_guard role", refused.error.message)
    assert.equal("interrupted", select(2, call(s, "GET", "/v1/runs/" .. id, op)).run.state)
    -- a new run is refused with the same words and line
    local nst, ndoc = call(s, "POST", "/v1/runs", op, { target = "B" })
    assert.equal(409, nst)
    assert.matches("^orket%.lua:3: team: no seat holds the integrity_guard role", ndoc.error.message)
    local cli = H.orket("resume " .. id, { cwd = dir })
    assert.equal(1, cli.status)
    assert.matches("orket: orket.lua:3: team: no seat holds the integrity_guard role", cli.stderr, 1, true)
    H.write(dir .. "/orket.lua", orig)
    H.write(dir .. "/script.lua", script())
    assert.equal(202, (call(s, "POST", "/v1/runs/" .. id .. "/resume", op)))
    -- worked again, its row says so (not its old end), as a command-line resume's does
    local db = assert(require("orket.project").open_store(dir, false))
    local now = db:row("SELECT status FROM runs WHERE id = ?", id).status
    db:close()
    assert.not_equal("interrupted", now)
    wait_for(function() return select(2, call(s, "GET", "/v1/runs/" .. id, op)).run.state == "done" end,
      "run " .. id .. " done", 3000)
    assert.equal(0, s.stop())
  end)

  it("runs disjoint epics at once, refuses an overlap here and in orket run, stops and resumes", function()
    local dir = project { "A-1", "B-1" }
    local op = key(dir, "ops", "operator")
    local s = start(dir, { env = LIMITS })
    local st, a = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(201, st)
    local b
    st, b = call(s, "POST", "/v1/runs", op, { target = "B" })
    assert.equal(201, st)
    a, b = math.tointeger(a.run.id), math.tointeger(b.run.id)
    -- both go at once (each waits on its model for a minute)
    local _, going = call(s, "GET", "/v1/runs?state=running", op)
    assert.equal(2, #going.runs)
    for _, r in ipairs(going.runs) do assert.is_true(r.live) end
    -- an edit to the scripts is hot-reloaded into each live run (journaled with its id)
    H.write(dir .. "/policies/extra.lua", 'deny { tool = "delete_file", path = "*.txt", reason = "keep them" }\n')
    for _, id in ipairs { a, b } do
      wait_for(function()
        for _, ev in ipairs(select(2, call(s, "GET", "/v1/runs/" .. id .. "/transcript", op)).events) do
          if ev.kind == "reload" then return ev.data.files[1] == "policies/extra.lua" end
        end
      end, "run " .. id .. "'s reload")
    end
    -- an overlap is refused, over HTTP and by `orket run` in another process
    local cst, conflict = call(s, "POST", "/v1/runs", op, { target = "A-1" })
    assert.equal(409, cst)
    assert.equal("conflict", conflict.error.code)
    assert.matches("run " .. a .. " %(A%) is working", conflict.error.message)
    -- not "read it again and retry": asked again, the answer would be the same
    assert.matches("asked again before that changes, the answer is the same", conflict.error.remedy, 1, true)
    -- a resume of a run going here: nothing to do now
    local rst, rdoc = call(s, "POST", "/v1/runs/" .. a .. "/resume", op)
    assert.same({ 409, "conflict" }, { rst, rdoc.error.code })
    assert.equal("nothing to do: run " .. a .. " is running already; to resume it later, stop it first (POST /v1/runs/"
      .. a .. "/stop to the server that executes it)", rdoc.error.remedy)
    local cli = H.orket("run B --json", { cwd = dir })
    assert.equal(75, cli.status) -- busy: the server's run has these cards (ERUNGOING)
    assert.matches("run " .. b .. " %(B%) is working on", cli.stderr)
    -- a disjoint epic runs from the command line meanwhile; the server's runs stay live
    cli = H.orket("run C --json", { cwd = dir })
    assert.equal(0, cli.status, cli.stderr)
    assert.equal("done", card_status(dir, "C-1"))
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    local states = {}
    for _, r in ipairs(runs) do states[math.tointeger(r.id)] = r.status end
    assert.same({ [a] = "running", [b] = "running", [3] = "done" }, states)
    -- and a command changing cards waits for the server's runs
    local retry = H.orket("retry C-1", { cwd = dir })
    assert.equal(75, retry.status) -- busy: the same command later may pass
    assert.matches("is going in process %d+ %(orket serve%)", retry.stderr)
    -- stop both (as Ctrl-C stops orket run), then resume them with a quick model
    for _, id in ipairs { a, b } do
      local sst, sdoc = call(s, "POST", "/v1/runs/" .. id .. "/stop", op)
      assert.equal(202, sst)
      assert.equal(id, sdoc.run.id)
    end
    for _, id in ipairs { a, b } do
      wait_for(function() return select(2, call(s, "GET", "/v1/runs/" .. id, op)).run.state == "interrupted" end,
        "run " .. id .. " interrupted")
    end
    -- stopped again: nothing to stop, and the refusal says what can be done with it
    local again, adoc = call(s, "POST", "/v1/runs/" .. a .. "/stop", op)
    assert.same({ 409, "conflict" }, { again, adoc.error.code })
    assert.equal("nothing to do: run " .. a .. " ended interrupted; POST /v1/runs/" .. a .. "/resume continues it, "
      .. "or start a new run with POST /v1/runs", adoc.error.remedy)
    H.write(dir .. "/script.lua", script())
    for _, id in ipairs { a, b } do
      local rst, rdoc = call(s, "POST", "/v1/runs/" .. id .. "/resume", op)
      assert.equal(202, rst)
      assert.equal(id, rdoc.run.id)
      -- running again: the interruption's end is not its end
      assert.same({ "running", cjson.null }, { rdoc.run.state, rdoc.run.ended_at })
    end
    for _, id in ipairs { a, b } do
      wait_for(function() return select(2, call(s, "GET", "/v1/runs/" .. id, op)).run.state == "done" end,
        "run " .. id .. " done", 3000)
    end
    assert.equal("done", card_status(dir, "A-1"))
    assert.equal("done", card_status(dir, "B-1"))
    local _, audit = call(s, "GET", "/v1/audit", op)
    local actions = {}
    for _, e in ipairs(audit.entries) do actions[#actions + 1] = e.action end
    assert.same({ "run", "run", "stop", "stop", "resume", "resume" }, actions)
    assert.equal(0, s.stop())
  end)

  -- with --workers each worker's stderr, the server's, carries its runs' events; the
  -- server's own runs (no --workers) wrote nothing there, a run that failed none the less
  it("logs its own runs' start, end and blocked cards, as its workers' are", function()
    local dir = project()
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. [[
models.providers.openai = { kind = "openai", retry = { max_attempts = 1 } }
models.default = "openai:gpt-x"
budgets = { backoff_ms = 1 } -- the engine's later rounds (25 x backoff_ms, doubling) in 375 ms
]])
    local op = key(dir, "ops", "operator")
    local s = start(dir, { env = { ORKET_SERVE_LIMITS = LIMITS.ORKET_SERVE_LIMITS, OPENAI_BASE_URL = "http://127.0.0.1:9",
      OPENAI_API_KEY = "x" } })
    local st, run = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(201, st, cjson.encode(run))
    local id = run.run.id
    wait_for(function() return s.log():find('"event":"run_end"', 1, true) end, "the run's end in the log", 3000)
    local lines = {}
    for line in s.log():gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.run == id then lines[#lines + 1] = ev end
    end
    assert.equal("run_start", lines[1].event)
    assert.equal("A", lines[1].target)
    local blocked = lines[#lines - 1]
    assert.same({ "card_blocked", "A-1", "system" }, { blocked.event, blocked.card, blocked.reason })
    assert.matches("nothing is listening at http://127.0.0.1:9", blocked.detail, 1, true)
    assert.same({ "run_end", "failed" }, { lines[#lines].event, lines[#lines].status })
    -- and the run's record says why, as its end journaled it
    local gst, got = call(s, "GET", "/v1/runs/" .. math.tointeger(id), op)
    assert.equal(200, gst)
    assert.is_string(got.run.reason, cjson.encode(got))
    assert.matches("A-1", got.run.reason, 1, true)
    assert.equal(0, s.stop())
  end)

  it("stops its runs on SIGTERM and exits 0; orket resume finishes them", function()
    local dir = project { "A-1" }
    local op = key(dir, "ops", "operator")
    local s = start(dir, { env = LIMITS })
    local st, run = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(201, st)
    assert.is_true(run.run.live)
    assert.equal(0, s.stop())
    assert.is_nil(s.log():find('"event":"error"', 1, true), s.log())
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal("interrupted", runs[1].status)
    H.write(dir .. "/script.lua", script())
    local r = H.orket("resume " .. math.tointeger(run.run.id) .. " --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local last = cjson.decode(r.stdout:match("([^\n]+)\n$"))
    assert.same({ "run_end", "done" }, { last.type, last.status })
    assert.equal("done", card_status(dir, "A-1"))
  end)

  it("sees a run a server of another folder executes on one PostgreSQL store as running, and refuses its resume", function()
    local dir, op, dir2 = two_folders()
    if not dir then
      return pending("PostgreSQL only: a SQLite store lives in its project folder, whose run locks every process sees")
    end
    local s = start(dir, { env = LIMITS })
    local s2 = start(dir2, { env = LIMITS })
    local st, run = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(201, st)
    local id = math.tointeger(run.run.id)
    local _, there = call(s2, "GET", "/v1/runs/" .. id, op)
    assert.same({ "running", false }, { there.run.state, there.run.live })
    assert.equal("running", cjson.decode(H.orket("runs --json", { cwd = dir2 }).stdout).runs[1].status)
    local rst, refused = call(s2, "POST", "/v1/runs/" .. id .. "/resume", op)
    assert.equal(409, rst)
    assert.matches("run " .. id .. " %(A%) is working on the same target now", refused.error.message)
    local sst, stopped = call(s2, "POST", "/v1/runs/" .. id .. "/stop", op)
    assert.equal(409, sst)
    assert.matches("going in another process", stopped.error.message)
    -- stopped where it goes, it is resumed in the other folder's server and ends there, once
    assert.equal(202, (call(s, "POST", "/v1/runs/" .. id .. "/stop", op)))
    wait_for(function() return select(2, call(s2, "GET", "/v1/runs/" .. id, op)).run.state == "interrupted" end,
      "run " .. id .. " interrupted")
    H.write(dir2 .. "/script.lua", script())
    assert.equal(202, (call(s2, "POST", "/v1/runs/" .. id .. "/resume", op)))
    wait_for(function() return select(2, call(s, "GET", "/v1/runs/" .. id, op)).run.state == "done" end,
      "run " .. id .. " done", 3000)
    assert.equal("done", card_status(dir, "A-1"))
    assert.equal(0, s.stop())
    assert.equal(0, s2.stop())
  end)

  -- Each folder's claim section (.orket/claim.lock) is its own: the store keeps the
  -- decision one at a time. Before, both servers made a run of the target, each working
  -- its cards (every card's turns twice).
  it("starts one run of a target two servers of other folders on one PostgreSQL store are asked for at once", function()
    local dir, op, dir2 = two_folders()
    if not dir then
      return pending("PostgreSQL only: a SQLite store lives in its project folder, whose run locks every process sees")
    end
    H.write(dir .. "/script.lua", script { "A-1", "B-1", "C-1" })
    H.write(dir2 .. "/script.lua", script { "A-1", "B-1", "C-1" })
    local s = start(dir, { env = LIMITS })
    local s2 = start(dir2, { env = LIMITS })
    for _, target in ipairs { "A", "B", "C" } do
      local a = orket.spawn(call, s, "POST", "/v1/runs", op, { target = target })
      local b = orket.spawn(call, s2, "POST", "/v1/runs", op, { target = target })
      local _, sa, ra = a:join()
      local _, sb, rb = b:join()
      local codes = { sa, sb }
      table.sort(codes)
      assert.same({ 201, 409 }, codes, target)
      assert.matches("is working on the same target now", (sa == 409 and ra or rb).error.message)
    end
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal(3, #runs)
    assert.equal(0, s.stop())
    assert.equal(0, s2.stop())
  end)

  -- A role raising as it loads was answered by the path the server loaded it from (its
  -- absolute one), a field's error relative to the project: both relative now, as the CLI's.
  it("answers a start whose role script raises as it loads 409 project_error, naming the file relative to the project", function()
    local dir = project()
    local op = key(dir, "ops", "operator")
    local s = start(dir, { env = LIMITS, args = "--workers 0" })
    os.execute("mkdir -p " .. H.quote(dir .. "/roles"))
    H.write(dir .. "/roles/pilot.lua", 'local x = 1\nerror("kaput")\n')
    local st, doc = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(409, st, cjson.encode(doc))
    assert.equal("project_error", doc.error.code)
    assert.matches("^roles/pilot%.lua:2: kaput", doc.error.message)
    -- a field's error, as before, the same form
    H.write(dir .. "/roles/pilot.lua", 'return {\n  intent = "fly",\n  tools = {},\n  sytem = "s",\n}\n')
    st, doc = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(409, st, cjson.encode(doc))
    assert.matches("^roles/pilot%.lua:4: unknown field 'sytem'", doc.error.message)
    assert.equal(0, s.stop())
  end)

  -- A run left to the workers holds no lease until a worker claims one of its cards, so the
  -- question did not see it: two servers of one store (or one asked twice) each queued a
  -- run of the target, 3 runs of A for 3 asks.
  it("queues one run of a target two `serve --workers 0` servers of one PostgreSQL store are asked for", function()
    local dir, op, dir2 = two_folders()
    if not dir then
      return pending("PostgreSQL only: a SQLite store lives in its project folder, whose run locks every process sees")
    end
    local s = start(dir, { env = LIMITS, args = "--workers 0" })
    local s2 = start(dir2, { env = LIMITS, args = "--workers 0" })
    local st, doc = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(201, st, cjson.encode(doc))
    for _, server in ipairs { s2, s } do
      local st2, doc2 = call(server, "POST", "/v1/runs", op, { target = "A" })
      assert.equal(409, st2, cjson.encode(doc2))
      assert.matches("run " .. math.tointeger(doc.run.id) .. " %(A%) is left to the workers and not finished", doc2.error.message)
    end
    -- nor a card of it, nor `orket run` of it in either folder
    st, doc = call(s2, "POST", "/v1/runs", op, { target = "A-1" })
    assert.equal(409, st, cjson.encode(doc))
    local r = H.orket("run A --json", { cwd = dir2 })
    assert.equal(75, r.status) -- busy (docs/guide/deploying.md, "A run that did not start")
    local runs = cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs
    assert.equal(1, #runs)
    assert.equal(0, s.stop())
    assert.equal(0, s2.stop())
  end)

  -- A run left to the workers that no worker ever works (the workers scaled to 0, gone)
  -- kept out every overlapping run for ever, and its stop answered 409 (not executed here).
  it("ends a run left to the workers that none works on its stop, after which an overlapping `orket run` goes", function()
    local dir = project()
    local op = key(dir, "ops", "operator")
    local viewer = key(dir, "watch", "viewer")
    local s = start(dir, { env = LIMITS, args = "--workers 0" })
    local st, doc = call(s, "POST", "/v1/runs", op, { target = "A" })
    assert.equal(201, st, cjson.encode(doc))
    local id = math.tointeger(doc.run.id)
    -- the refusal names the run and how to end it
    local st2, doc2 = call(s, "POST", "/v1/runs", op, { target = "A-1" })
    assert.equal(409, st2, cjson.encode(doc2))
    assert.matches("'orket runs stop " .. id .. "' or POST /v1/runs/" .. id .. "/stop", doc2.error.message, 1, true)
    -- a worker works a card of it now (its lease in the store): named, not cut
    local db = assert(require("orket.project").open_store(dir, false))
    local ops = require("orket.engine.lease").ops(db)
    assert(db:tx(function()
      return #ops.claim(db, { worker = "far#0123456789abcdef", run = id, ids = { "A-1" }, ttl_ms = 600000 }) == 1
    end))
    st2, doc2 = call(s, "POST", "/v1/runs/" .. id .. "/stop", op)
    assert.equal(409, st2, cjson.encode(doc2))
    assert.matches("run " .. id .. " is worked by worker far now (card A-1): stop that worker", doc2.error.message, 1, true)
    assert(db:tx(function() return ops.release(db, "far#0123456789abcdef") == 1 end))
    -- a viewer may not; an operator ends it, interrupted, its end journaled once
    assert.equal(403, (call(s, "POST", "/v1/runs/" .. id .. "/stop", viewer)))
    st2, doc2 = call(s, "POST", "/v1/runs/" .. id .. "/stop", op)
    assert.equal(202, st2, cjson.encode(doc2))
    assert.equal("interrupted", doc2.run.state)
    local ends = {}
    for _, e in ipairs(db:events { run = id }) do
      if e.kind == "run_end" then ends[#ends + 1] = e.data.status end
    end
    db:close()
    assert.same({ "interrupted" }, ends)
    st2, doc2 = call(s, "POST", "/v1/runs/" .. id .. "/stop", op)
    assert.equal(409, st2, cjson.encode(doc2))
    assert.matches("run " .. id .. " is not going", doc2.error.message, 1, true)
    assert.equal(0, s.stop())
    local r = H.orket("run A-1 --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", card_status(dir, "A-1"))
  end)

  -- A resume asked only whether a live run overlapped: an interrupted run of a card of a
  -- run left to the workers (no lease until a worker claims a card) was executed beside it,
  -- and a run still left to the workers was executed here as the workers took it up.
  it("refuses a resume beside a run left to the workers, and of one still left to them", function()
    local dir = project()
    local op = key(dir, "ops", "operator")
    local db = assert(require("orket.project").open_store(dir, false))
    local old = assert(db:record_run { target = "A-1", kind = "issue" })
    assert(db:finish_run(old, "interrupted")) -- no turn begun: nothing half done
    local id = assert(db:record_run { target = "A", kind = "epic", data = { workers = true } })
    local s = start(dir, { env = LIMITS, args = "--workers 0" })
    for _, rid in ipairs { old, id } do
      local st, doc = call(s, "POST", "/v1/runs/" .. rid .. "/resume", op)
      assert.equal(409, st, cjson.encode(doc))
      assert.matches("run " .. id .. " (A) is left to the workers and not finished", doc.error.message, 1, true)
      assert.matches("'orket runs stop " .. id .. "' or POST /v1/runs/" .. id .. "/stop", doc.error.message, 1, true)
    end
    assert.equal("interrupted", db:row("SELECT status FROM runs WHERE id = ?", old).status)
    assert.equal(0, db:row("SELECT count(*) AS n FROM turns").n)
    db:close()
    assert.equal(0, s.stop())
  end)

  -- A server started without --workers carries a run begun for the workers on itself when
  -- asked to resume it, as the docs say. Its row keeps its ended status until the server
  -- ends it, so it is not among the runs left to the workers; and a worker asked to join it
  -- is refused (the server's run lock and lease), as it would work its cards beside the
  -- server, which takes no card leases. `orket runs stop`, which ends a run left to the
  -- workers, does not end it under the server: the server's stop route does.
  it("carries a run begun for the workers on itself without --workers: no worker joins it, runs stop leaves it", function()
    local dir = project { "A-1" }
    local op = key(dir, "ops", "operator")
    local db = assert(require("orket.project").open_store(dir, false))
    local id = assert(db:record_run { target = "A", kind = "epic", data = { workers = true } })
    assert(db:finish_run(id, "interrupted"))
    local s = start(dir, { env = LIMITS })
    local st, doc = call(s, "POST", "/v1/runs/" .. id .. "/resume", op)
    assert.equal(202, st, cjson.encode(doc))
    assert.same({ true, "running" }, { doc.run.live, doc.run.state })
    -- no worker takes it up
    assert.same({}, require("orket.store.leases").queued(db))
    local claims = require "orket.engine.claims"
    assert.is_nil(claims.join_worker(dir, db, require("orket.board").open(db), { id = id, target = "A" }))
    -- the CLI's stop refuses it, naming the server's stop; the run goes on
    local r = H.orket("runs stop " .. id, { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("POST /v1/runs/" .. id .. "/stop to its server", r.stderr, 1, true)
    assert.is_true(select(2, call(s, "GET", "/v1/runs/" .. id, op)).run.live)
    -- the server's stop ends it
    st, doc = call(s, "POST", "/v1/runs/" .. id .. "/stop", op)
    assert.equal(202, st, cjson.encode(doc))
    wait_for(function() return select(2, call(s, "GET", "/v1/runs/" .. id, op)).run.state == "interrupted" end,
      "run " .. id .. " interrupted")
    local ends = {}
    for _, e in ipairs(db:events { run = id }) do
      if e.kind == "run_end" then ends[#ends + 1] = e.data.status end
    end
    db:close()
    assert.same({ "interrupted", "interrupted" }, ends) -- (the first: the recorded one before the resume)
    assert.equal(0, s.stop())
  end)

  it("sees an `orket run` of another folder on one PostgreSQL store as running, and refuses its resume", function()
    local dir, op, dir2 = two_folders()
    if not dir then
      return pending("PostgreSQL only: a SQLite store lives in its project folder, whose run locks every process sees")
    end
    os.execute(string.format("cd %s && { %s run A --json >r.out 2>r.err & echo $! >r.pid; wait $!; echo $? >r.rc; } "
      .. ">/dev/null 2>&1 &", H.quote(dir), H.quote(H.BIN)))
    local pid = wait_for(function() return tonumber((H.read(dir .. "/r.pid") or ""):match("%d+")) end, "the run's pid")
    finally(function() H.end_started(dir, "r.pid", "r.rc", true) end)
    wait_for(function() return (H.read(dir .. "/r.out") or ""):find('"turn_start"', 1, true) end, "the run's first turn")
    local s2 = start(dir2, { env = LIMITS })
    local _, there = call(s2, "GET", "/v1/runs/1", op)
    assert.same({ "running", false }, { there.run.state, there.run.live })
    local rst, refused = call(s2, "POST", "/v1/runs/1/resume", op)
    assert.equal(409, rst)
    assert.matches("run 1 %(A%) is working on the same target now", refused.error.message)
    os.execute("kill -INT " .. pid)
    wait_for(function() return (H.read(dir .. "/r.rc") or ""):match("%d+") end, "the run to stop")
    assert.equal("interrupted", select(2, call(s2, "GET", "/v1/runs/1", op)).run.state)
    assert.equal(0, s2.stop())
  end)

  -- race(dir, dir2, words) -> the folder refused, the one going, rc(folder): `orket WORDS[d]`
  -- started in both folders while the journal's lock is held here, so each asks its
  -- question and then waits at its first write: both have asked before either records or
  -- leases a run (the race, every time). One is refused (exit 1); the other works on.
  local function race(dir, dir2, words)
    local url = H.read(dir .. "/orket.lua"):match('store = { url = "(.-)" }')
    local c = assert(require("orket.c.pg").connect(url))
    finally(function() c:close() end)
    local LOCK = require("orket.store.pgevents").LOCK
    assert(c:query("SELECT pg_advisory_lock($1)", LOCK))
    local both = {}
    for _, d in ipairs { dir, dir2 } do
      both[#both + 1] = string.format("cd %s && { %s %s --json >r.out 2>r.err & echo $! >r.pid; wait $!; echo $? >r.rc; } "
        .. ">/dev/null 2>&1 &", H.quote(d), H.quote(H.BIN), words[d])
    end
    os.execute(table.concat(both, "\n"))
    finally(function()
      H.end_started(dir, "r.pid", "r.rc", true)
      H.end_started(dir2, "r.pid", "r.rc", true)
    end)
    wait_for(function() return H.lock_waiters(c, LOCK) >= 2 end, "both to wait for the journal's lock", 3000)
    assert(c:query("SELECT pg_advisory_unlock($1)", LOCK))
    local function rc(d) return (H.read(d .. "/r.rc") or ""):match("%d+") end
    local refused = wait_for(function() return (rc(dir) and dir) or (rc(dir2) and dir2) end, "one to be refused", 3000)
    local going = refused == dir and dir2 or dir
    assert.equal("75", rc(refused), H.read(refused .. "/r.err")) -- busy
    assert.matches("is working on the same target now", H.read(refused .. "/r.err"))
    wait_for(function() return (H.read(going .. "/r.out") or ""):find('"turn_start"', 1, true) end, "the other's first turn")
    assert.is_nil(rc(going))
    return refused, going, rc
  end

  -- As two servers (above): `orket run` decides under its folder's claim section, which a
  -- process of another folder does not see. Before, both made a run of A (3 times in 4).
  it("starts one run of a target `orket run` is asked for at once in two folders on one PostgreSQL store", function()
    local dir, _, dir2 = two_folders()
    if not dir then
      return pending("PostgreSQL only: a SQLite store lives in its project folder, whose run locks every process sees")
    end
    local _, going, rc = race(dir, dir2, { [dir] = "run A", [dir2] = "run A" })
    assert.equal(1, #cjson.decode(H.orket("runs --json", { cwd = dir }).stdout).runs)
    os.execute("kill -INT " .. H.read(going .. "/r.pid"))
    wait_for(function() return rc(going) end, "the run to stop")
  end)

  -- `orket resume` asked its question under the folder's claim section and took the run's
  -- lease in a transaction of its own: a new run of the same cards in another folder passed
  -- between the two, and both worked them. The question and the lease are one write now.
  it("resumes a run or starts a new one of its cards, not both, asked at once in two folders on one PostgreSQL store", function()
    local dir, _, dir2 = two_folders()
    if not dir then
      return pending("PostgreSQL only: a SQLite store lives in its project folder, whose run locks every process sees")
    end
    local db = assert(require("orket.project").open_store(dir, false))
    local old = assert(db:record_run { target = "A", kind = "epic" })
    assert(db:finish_run(old, "interrupted")) -- no turn begun: a new run of A may go instead
    db:close()
    local _, going, rc = race(dir, dir2, { [dir] = "resume " .. old, [dir2] = "run A" })
    os.execute("kill -INT " .. H.read(going .. "/r.pid"))
    wait_for(function() return rc(going) end, "the run to stop")
  end)

  it("exits cleanly with a luv handle left open", function()
    local dir = H.tmpdir()
    H.write(dir .. "/open.lua", [[
local uv = require "luv"
local idle = uv.new_tcp()
local t = uv.new_timer()
t:start(600000, 0, function() end)
t:unref()
print("left open", idle ~= nil)
]])
    local r = H.orket("lua open.lua", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("left open\ttrue\n", r.stdout)
  end)
end)
