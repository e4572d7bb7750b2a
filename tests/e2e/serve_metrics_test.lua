-- /metrics after a scripted run: the families a team asks of its board (cards done by day,
-- card and turn durations, tool calls by verdict and outcome, state-machine refusals by
-- rule, models as provider:model) with the run's values, and promtool accepts the text.
local H = require "tests.helpers"
local cjson = require "cjson"

-- The coder of MET-1 tries to move its issue straight to done (the state machine refuses:
-- ETRANSITION, in_progress has no such move),
-- writes a file (allowed, ok), reads a missing one (allowed, an error) and deletes one
-- (held for approval); MET-2's coder only writes and asks for review.
local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "MET-1", match = "^Issue ", reply = { tool_calls = {
    call("update_issue_status", { status = "done" }),
    call("write_file", { path = "a.txt", content = "a\n" }),
    call("read_file", { path = "missing.txt" }),
    call("delete_file", { path = "old.txt" }) } } },
  { role = "coder", card = "MET-2", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "b.txt", content = "b\n" }),
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", card = "MET-2", match = "^Issue ", reply = { tool_calls = {
    call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

local function project()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "policies", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "metrics"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/policies/default.lua", [[ask { tool = "delete_file", path = "**", reason = "needs approval" }]] .. "\n")
  H.write(dir .. "/epics/met.json", [[
{ "id": "MET", "name": "Metrics", "issues": [
  { "id": "MET-1", "summary": "Tidy up", "seat": "senior_developer" },
  { "id": "MET-2", "summary": "Write b.txt", "seat": "senior_developer" } ] }
]])
  H.write(dir .. "/workspace/old.txt", "old\n")
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- value(text, sample) -> the number after the exact sample name and labels, or nil
local function value(text, sample)
  local at = text:find("\n" .. sample .. " ", 1, true)
  if not at then return nil end
  return tonumber(text:match("^(%S+)", at + #sample + 2))
end

describe("orket serve /metrics after a run", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("counts done cards by day, durations, tool outcomes, refusals by rule, provider:model; promtool accepts it", function()
    local dir = project()
    local r = H.orket("run MET --json", { cwd = dir })
    assert.is_true(r.status == 0 or r.status == 3, r.stderr .. r.stdout)
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    -- a refused API move: counted by this server under the machine's code (MET-2 is done;
    -- MET-1 waits for an approval, which a move is refused before the machine is asked)
    local st, doc = H.api(s, "POST", "/v1/cards/MET-2/move", op, { to = "ready" })
    assert.equal(409, st, cjson.encode(doc))
    local api_code = doc.error.code
    local _, _, text = H.api(s, "GET", "/metrics", op)
    -- a HEAD says the length a GET's body has (RFC 9110 9.3.2), within what a scrape adds
    local hst, _, hh = H.fetch { url = s.url .. "/metrics", method = "HEAD", headers = { "Authorization: Bearer " .. op } }
    assert.equal(200, hst)
    local hlen = tonumber(hh["Content-Length"] or hh["content-length"])
    assert.is_true(hlen > #text * 0.9, tostring(hlen) .. " against " .. #text)
    text = "\n" .. text
    H.write(dir .. "/metrics.txt", text:sub(2))
    local pt = io.popen("promtool check metrics < " .. H.quote(dir .. "/metrics.txt") .. " 2>&1; echo rc=$?")
    local pout = pt:read("a")
    pt:close()
    assert.matches("rc=0\n$", pout)
    -- cards done today, as the board says
    local board = cjson.decode(H.orket("board --json", { cwd = dir }).stdout)
    local done = 0
    for _, c in ipairs(board.cards) do if c.type == "issue" and c.status == "done" then done = done + 1 end end
    assert.equal(1, done) -- MET-2 reviewed and done
    local today = os.date("!%Y-%m-%d")
    assert.equal(done, value(text, string.format('orket_cards_done_total{day="%s",type="issue"}', today)))
    -- durations: one done issue; one observation per ended turn
    assert.equal(1, value(text, 'orket_card_duration_seconds_count{type="issue"}'))
    assert.equal(0, value(text, 'orket_card_duration_seconds_count{type="rock"}'))
    assert.is_true(value(text, 'orket_card_duration_seconds_sum{type="issue"}') >= 0)
    local turns = value(text, "orket_turns_total")
    assert.is_true(value(text, "orket_turn_duration_seconds_count") >= 2, "two turns at least")
    assert.is_true(value(text, "orket_turn_duration_seconds_count") <= turns)
    assert.equal(value(text, "orket_turn_duration_seconds_count"), value(text, 'orket_turn_duration_seconds_bucket{le="+Inf"}'))
    -- tool calls by verdict and outcome
    local function tool(t, v, o) return value(text, string.format('orket_tool_call_outcomes_total{tool="%s",verdict="%s",outcome="%s"}', t, v, o)) end
    assert.equal(1, tool("update_issue_status", "deny", "refused"))
    assert.equal(2, tool("update_issue_status", "allow", "ok"))
    assert.equal(2, tool("write_file", "allow", "ok"))
    assert.equal(1, tool("read_file", "allow", "error"))
    assert.equal(1, tool("delete_file", "ask", "held"))
    -- state-machine refusals by rule: the agent's ETRANSITION, the API's own code
    assert.equal(1, value(text, 'orket_state_machine_refusals_total{rule="ETRANSITION",source="agent"}'))
    assert.equal(0, value(text, 'orket_state_machine_refusals_total{rule="EREVIEWER",source="agent"}'))
    assert.equal(1, value(text, string.format('orket_state_machine_refusals_total{rule="%s",source="api"}', api_code)))
    assert.equal(0, value(text, 'orket_state_machine_refusals_total{rule="EREVIEWER",source="api"}'))
    -- models as provider:model
    assert.is_true(value(text, 'orket_model_calls_total{model="scripted:team"}') >= 2)
    assert.is_nil(text:find('model="team"', 1, true))
    assert.equal(0, s.stop())
  end)

  -- an empty 200 is a good scrape with no samples to Prometheus: every series would go stale
  -- with `up` still 1
  it("answers 503 when the store cannot be read, not an empty 200", function()
    local dir = project()
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local st = H.api(s, "GET", "/metrics", op)
    assert.equal(200, st)
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:exec("ALTER TABLE violations RENAME TO violations_gone"))
    db:close()
    local st2, doc = H.api(s, "GET", "/metrics", op)
    assert.equal(503, st2, cjson.encode(doc))
    assert.equal("unavailable", doc.error.code)
    -- the log's note is the store's own message (SQLite's "no such table: violations",
    -- PostgreSQL's relation "violations" does not exist), without Orket's source positions
    local note
    H.wait_for(function()
      for line in s.log():gmatch("[^\n]+") do
        local e = require("cjson.safe").decode(line)
        if type(e) == "table" and e.route == "/metrics" and e.status == 503 then note = e.note end
      end
      return note
    end, "the 503's log line", 3000)
    assert.matches("^store: .*violations", note)
    assert.is_nil(note:find("attempt to", 1, true), note)
    assert.is_nil(note:find("%.lua:%d+:"), note)
    assert.equal(0, s.stop())
  end)

  -- (a PostgreSQL server that is down gave the same: every request a 500 with a traceback
  -- in the log, until a key or person was seen)
  it("answers 503 when the store cannot say whether a key or person was ever made", function()
    local dir = project()
    local s = H.serve(dir)
    local db = assert(require("orket.project").open_store(dir, false))
    assert(db:exec("ALTER TABLE users RENAME TO users_gone"))
    db:close()
    local st, doc = H.api(s, "GET", "/v1/board")
    assert.equal(503, st, cjson.encode(doc))
    assert.equal("unavailable", doc.error.code)
    db = assert(require("orket.project").open_store(dir, false))
    assert(db:exec("ALTER TABLE users_gone RENAME TO users"))
    db:close()
    assert.equal(200, (H.api(s, "GET", "/v1/board")))
    assert.equal(0, s.stop())
  end)
end)
