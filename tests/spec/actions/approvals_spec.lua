-- orket.actions.approvals: the digest of a call, requests and decisions in the store (one
-- transaction each, with the card's move), and the engine holding an "ask" call for a
-- developer, running it once approved, and never letting an approval beat a deny rule.
local approvals = require "orket.actions.approvals"
local gate = require "orket.gate"
local policy = require "orket.policy"
local H = require "tests.helpers"
local F = require "tests.engine_fakes"

local DEV = { seat = "senior_developer", roles = { "coder" } }

-- A card in progress, as a turn would have it.
local function working(issues)
  local db, b = F.fixture(H.tmpdir() .. "/o.db", issues or { { id = "E-1", summary = "task" } })
  assert(b:transition("E-1", "in_progress", { actor = DEV }))
  return db, b
end

local function ask(db, b, args)
  return approvals.request(db, b, { run = nil, card = "E-1", seat = "senior_developer", turn = 1,
    tool = "delete_file", args = args or { path = "old.txt" }, rule = "POLICY_ASK", reason = "deletions need approval",
    actor = DEV })
end

describe("approvals", function()
  after_each(H.cleanup)

  it("digests a call independently of key order, and tells different calls apart", function()
    local a = approvals.digest("write_file", { path = "a", content = "x", opts = { b = 1, a = { 1, 2 } } })
    local b = approvals.digest("write_file", { opts = { a = { 1, 2 }, b = 1 }, content = "x", path = "a" })
    assert.equal(a, b)
    assert.equal(64, #a)
    assert.not_equal(a, approvals.digest("write_file", { path = "a", content = "y", opts = { b = 1, a = { 1, 2 } } }))
    assert.not_equal(a, approvals.digest("move_file", { path = "a", content = "x", opts = { b = 1, a = { 1, 2 } } }))
    assert.not_equal(approvals.digest("t", { 1, 2 }), approvals.digest("t", { 2, 1 }))
    assert.equal('{"a":[1,2],"b":{"c":null,"d":"x\\"y/z\\\\/"}}',
      approvals.canonical { b = { d = 'x"y/z\\/', c = require("cjson").null }, a = { 1, 2 } })
    assert.has_error(function() approvals.digest(nil, {}) end, "bad argument #1 to 'digest' (string expected, got nil)")
    -- every digit of a number: with lua-cjson's 14 an approval of one id let another run
    assert.not_equal(approvals.digest("drop", { id = 100000000000001 }), approvals.digest("drop", { id = 100000000000002 }))
    assert.not_equal(approvals.digest("t", { x = 0.3 }), approvals.digest("t", { x = 0.30000000000000004 }))
    assert.equal('{"id":100000000000001,"x":0.30000000000000004}',
      approvals.canonical { id = 100000000000001.0, x = 0.30000000000000004 })
    -- numbers 14 digits say exactly are written as before (earlier digests hold)
    assert.equal('{"a":1.5,"b":3,"c":1e+300}', approvals.canonical { a = 1.5, b = 3, c = 1e300 })
  end)

  it("records a request with its comment and the card's wait, and refuses a second one", function()
    local db, b = working()
    local row = assert(ask(db, b))
    local c = b:get("E-1")
    assert.equal("waiting_for_developer", c.status)
    assert.equal("input", c.wait_reason)
    assert.equal("senior_developer", c.worked_by)
    assert.equal("delete_file", row.tool)
    assert.equal('{"path":"old.txt"}', row.arguments)
    assert.equal(approvals.digest("delete_file", { path = "old.txt" }), row.digest)
    assert.is_nil(row.decision)
    assert.same(row, approvals.pending(db, "E-1"))
    assert.matches('Approval needed %(request #1%): delete_file {"path":"old.txt"}%. Policy: deletions need approval',
      b:comments("E-1")[1].body)
    local n_events = db:row("SELECT count(*) AS n FROM events").n
    local again, err, code = ask(db, b, { path = "other.txt" })
    assert.is_nil(again)
    assert.equal("EEXIST", code)
    assert.matches("E%-1 already waits", err)
    assert.equal(n_events, db:row("SELECT count(*) AS n FROM events").n) -- nothing half-written
    assert.equal(1, #approvals.list(db, "E-1"))
  end)

  it("writes nothing when the card cannot wait from its status", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "task" } })
    local row, err, code = ask(db, b) -- E-1 is ready: ready -> waiting_for_developer is not a transition
    assert.is_nil(row)
    assert.equal("ETRANSITION", code)
    assert.matches("E%-1", err)
    assert.equal(0, #approvals.list(db, "E-1"))
    assert.equal(0, #b:comments("E-1"))
    assert.equal("ready", b:get("E-1").status)
  end)

  it("masks keys and clips long arguments in what it stores, but digests all of them", function()
    local db, b = working()
    local long = string.rep("x", approvals.ARGS_MAX + 10)
    local row = assert(approvals.request(db, b, { card = "E-1", tool = "write_file", actor = DEV,
      args = { path = "a", content = "key sk-abcdef123456 then " .. long } }))
    assert.is_nil(row.arguments:find("abcdef123456", 1, true))
    assert.matches("sk%-%[redacted%]", row.arguments)
    assert.matches("%.%.%.%(clipped: %d+ bytes in all; 'orket log RUN %-%-full' shows the call whole%)$", row.arguments)
    assert.equal(approvals.digest("write_file", { path = "a", content = "key sk-abcdef123456 then " .. long }), row.digest)
  end)

  it("decides a request in one transaction and explains misuse", function()
    local db, b = working()
    assert.has_error(function() approvals.decide(db, b, "E-1", { decision = "maybe" }) end,
      "bad argument #4 to 'decide' ({decision=\"approve\"|\"deny\"} expected)")
    assert.has_error(function() approvals.decide(db, b, nil, { decision = "approve" }) end,
      "bad argument #3 to 'decide' (card id expected)")
    local r, err, code = approvals.decide(db, b, "E-1", { decision = "approve" })
    assert.is_nil(r)
    assert.equal("ESTATE", code)
    assert.equal("E-1 is in_progress, not waiting for an approval", err)
    r, err, code = approvals.decide(db, b, "E-9", { decision = "approve" })
    assert.is_nil(r)
    assert.equal("ENOENT", code)
    assert(ask(db, b))
    r, err, code = approvals.decide(db, b, "E-1", { decision = "deny", note = "  " })
    assert.is_nil(r)
    assert.equal("EINVAL", code)
    assert.matches("reason", err)
    r = assert(approvals.decide(db, b, "E-1", { decision = "approve", note = "it is unused" }))
    assert.equal("approve", r.decision)
    assert.equal("developer", r.decided_by)
    assert.equal("it is unused", r.note)
    assert.is_string(r.decided_at)
    assert.equal("ready", b:get("E-1").status)
    local cs = b:comments("E-1")
    assert.equal("developer", cs[#cs].author)
    assert.matches("^Approved request #1: delete_file {\"path\":\"old.txt\"} %(it is unused%)%. Make exactly this call again", cs[#cs].body)
    local ev = db:events { card = "E-1" }
    local kinds = {}
    for _, e in ipairs(ev) do kinds[#kinds + 1] = e.kind end
    assert.same({ "approval_requested", "comment", "transition", "approval_decided", "comment", "transition" },
      { table.unpack(kinds, #kinds - 5) })
    -- decided once: a second decision is refused
    r, err, code = approvals.decide(db, b, "E-1", { decision = "deny", note = "no" })
    assert.is_nil(r)
    assert.equal("ESTATE", code)
  end)

  it("tells a question from an approval", function()
    local db, b = working()
    assert(b:transition("E-1", "waiting_for_developer", { actor = DEV, reason = "input", note = "which db?" }))
    local r, err, code = approvals.decide(db, b, "E-1", { decision = "approve" })
    assert.is_nil(r)
    assert.equal("ESTATE", code)
    assert.matches("waiting for an answer to a question, not for an approval; answer it with 'orket answer E%-1 \"text\"'", err)
  end)

  it("tells the second of two answers who answered first", function()
    local db, b = working()
    assert(b:transition("E-1", "waiting_for_developer", { actor = DEV, reason = "input", note = "which db?" }))
    local answer = require "orket.actions.answer"
    local bob = { seat = "user:bob", roles = {}, by = "person" }
    assert(answer.answer(db, b, "E-1", "PostgreSQL", bob))
    local ok, err, code = answer.answer(db, b, "E-1", "SQLite", { seat = "user:alice", roles = {}, by = "person" })
    assert.is_nil(ok)
    assert.equal("ESTATE", code)
    assert.matches("^E%-1 is ready, not waiting for input; it was answered by user:bob at %d%d%d%d%-", err)
  end)

  it("matches an approval to exactly its call, once", function()
    local db, b = working()
    assert(ask(db, b))
    assert(approvals.decide(db, b, "E-1", { decision = "approve" }))
    local d = approvals.digest("delete_file", { path = "old.txt" })
    assert.is_nil(approvals.approved(db, "E-1", "delete_file", approvals.digest("delete_file", { path = "other.txt" })))
    assert.is_nil(approvals.approved(db, "E-1", "move_file", d))
    assert.is_nil(approvals.approved(db, "E-2", "delete_file", d))
    local row = assert(approvals.approved(db, "E-1", "delete_file", d))
    assert(approvals.use(db, row, { turn_id = nil, run = nil, seat = "senior_developer" }))
    assert.is_nil(approvals.approved(db, "E-1", "delete_file", d))
    local ok, err, code = approvals.use(db, row, {})
    assert.is_nil(ok)
    assert.equal("ESTATE", code)
    assert.matches("not an unused approval", err)
  end)
end)

-- The engine with the real gate and a policy: the fake coder comments and writes
-- src/<card>.txt (step 1), then hands in (step 2). The fake tools have no schema, so the
-- policies match the path with args= rather than path=.
local function engine_with(db, b, src, events)
  local dir = H.tmpdir()
  H.write(dir .. "/p.lua", src)
  local set = assert(policy.load { dir .. "/p.lua" })
  local reg = F.tools()
  local e = F.engine(db, b, { tools = reg, events = events, gate = function(input)
    input.policies, input.tools = set, reg
    return gate.check(input)
  end })
  return e, reg
end

local function count(list, name)
  local n = 0
  for _, x in ipairs(list) do if x == name then n = n + 1 end end
  return n
end

describe("engine and approvals", function()
  after_each(H.cleanup)

  it("holds an asked call, runs it once approved, and reports the wait", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "task" }, { id = "E-2", summary = "other" } })
    local events = {}
    local e, reg = engine_with(db, b, [[ask { tool = "write_file", args = { path = "src/E-1*" }, reason = "writes to E-1 need approval" }]], events)
    local status, report = e:execute(assert(e:start("E")))
    assert.equal("stalled", status)
    assert.equal("done", b:get("E-2").status) -- other cards keep running
    assert.equal("waiting_for_developer", b:get("E-1").status)
    assert.equal(1, count(reg.calls, "write_file")) -- E-2's only
    assert.equal(1, #report.stuck)
    local s = report.stuck[1]
    assert.equal("E-1", s.card)
    assert.equal("approval", s.waits_for)
    assert.equal(1, s.approval)
    assert.matches([[waiting for approval of write_file {"content":"x","path":"src/E%-1%.txt"} %(request #1%): .-writes to E%-1 need approval.-'orket answer E%-1 %-%-request 1 %-%-approve']], s.reason)
    assert.equal('orket answer E-1 --request 1 --approve (or --deny "reason")', s.next)
    local held
    for _, ev in ipairs(events) do if ev.type == "approval_requested" then held = ev end end
    assert.equal("E-1", held.card)
    assert.equal(1, held.approval)
    -- the held call's record says so; the turn ended without another model step
    local tc = db:row("SELECT result FROM tool_calls WHERE tool = 'write_file' ORDER BY id LIMIT 1")
    assert.matches('"held":true', tc.result)
    assert.equal(1, db:row("SELECT count(*) AS n FROM turns WHERE card_id = 'E-1'").n)

    assert(approvals.decide(db, b, "E-1", { decision = "approve" }))
    status = e:execute(assert(e:start("E")))
    assert.equal("done", status)
    assert.equal("done", b:get("E-1").status)
    assert.equal(2, count(reg.calls, "write_file"))
    local row = approvals.list(db, "E-1")[1]
    assert.is_string(row.used_at)
    -- used in the transaction of the call it let through
    local call = db:row("SELECT turn_id, ok FROM tool_calls WHERE tool = 'write_file' ORDER BY id DESC LIMIT 1")
    assert.equal(row.used_turn_id, call.turn_id)
    -- a 0/1 column is boolean on PostgreSQL (orket.store.pg_schema)
    assert.equal(require("tests.backends").name() == "pg" or 1, call.ok)
    local g = db:row("SELECT verdict, reason FROM gate_decisions WHERE code = 'APPROVED'")
    assert.equal("allow", g.verdict)
    assert.matches("approved by developer %(request #1%)", g.reason)
  end)

  it("asks again after a refusal, and the model reads the refusal", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "task" } })
    local e, reg = engine_with(db, b, [[ask { tool = "write_file", reason = "writes need approval" }]])
    assert.equal("stalled", (e:execute(assert(e:start("E")))))
    assert(approvals.decide(db, b, "E-1", { decision = "deny", note = "write to docs/ instead" }))
    local status, report = e:execute(assert(e:start("E")))
    assert.equal("stalled", status)
    assert.equal(0, count(reg.calls, "write_file"))
    local rows = approvals.list(db, "E-1")
    assert.equal(2, #rows)
    assert.equal("deny", rows[1].decision)
    assert.is_nil(rows[2].decision)
    assert.equal("approval", report.stuck[1].waits_for)
    -- the second turn's brief carried the refusal
    local req = db:row("SELECT request FROM turns WHERE card_id = 'E-1' ORDER BY id DESC LIMIT 1").request
    assert.matches("Refused request #1: write_file .- Reason: write to docs.-instead", req)
    local asked_again
    for _, c in ipairs(b:comments("E-1")) do
      if c.body:find("Approval needed (request #2)", 1, true) then asked_again = c.body end
    end
    assert.matches("The developer refused this call before %(request #1: write to docs/ instead%)", asked_again)
  end)

  it("never lets an approval beat a deny rule", function()
    local db, b = F.fixture(H.tmpdir() .. "/o.db", { { id = "E-1", summary = "task" } })
    local e, reg = engine_with(db, b, [[
      deny { tool = "write_file", args = { path = "src/**" }, reason = "src is frozen" }
      ask { tool = "write_file", reason = "writes need approval" }]])
    -- an approved request for exactly the call the coder will make
    assert(b:transition("E-1", "in_progress", { actor = DEV }))
    assert(approvals.request(db, b, { card = "E-1", tool = "write_file", args = { path = "src/E-1.txt", content = "x" }, actor = DEV }))
    assert(approvals.decide(db, b, "E-1", { decision = "approve" }))
    e:execute(assert(e:start("E")))
    assert.equal(0, count(reg.calls, "write_file"))
    assert.is_nil(approvals.list(db, "E-1")[1].used_at)
    assert.equal(1, db:row("SELECT count(*) AS n FROM gate_decisions WHERE code = 'POLICY_DENY'").n)
  end)
end)
