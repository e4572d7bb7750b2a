-- A run's transcript as the API and the MCP server serve it (orket.views.log.served): each
-- text past FIELD_MAX cut as orket.inert.clip cuts (marked, its whole length said) and named
-- in its event's `cut`, the events a page at a time (`next`). The whole document was built in
-- memory per request: a run of eight 15 MB answers made 236 MB of JSON and took a server
-- from 36 MB to 744 MB of RSS for one GET /v1/runs/{id}/transcript (docs/serve.md, Runs).
local H = require "tests.helpers"
local store = require "orket.store"
local cjson = require "cjson"
local jsonout = require "orket.jsonout"
local log_view = require "orket.views.log"
local router_mod = require "orket.serve.router"
local runs = require "orket.serve.runs"
local mcp_server = require "orket.serve.mcp_server"

local BIG = 200 * 1024

-- A turn of run whose request's last message is last and whose answer is answer,
-- with a tool call whose result holds result -> the turn's id
local function turn(db, run, n, last, answer, result)
  local id = assert(db:record_turn { run = run, seat = "dev", role = "coder", turn = 1, model = "p:m",
    request = { model = "p:m", messages = { { role = "system", content = "be brief" }, { role = "user", content = last } } },
    response = { content = answer, provider = "p",
      tool_calls = { { id = "c" .. n, name = "write_file", arguments = { path = "a.txt", text = answer } } } },
    prompt_tokens = 1, completion_tokens = 1, data = { step = n } })
  assert(db:record_tool_call { turn = id, call_id = "c" .. n, tool = "write_file", arguments = { path = "a.txt" },
    result = { ok = true, text = result }, ok = true, gate_code = "ALLOWED", run = run, seat = "dev" })
  return id
end

-- the cut entries of an event by field
local function cuts(ev)
  local out = {}
  for _, c in ipairs(ev.cut or {}) do out[c.field] = c end
  return out
end

-- the route named name, as the server adds it
local function route(name)
  local r = router_mod.new()
  runs.add(r)
  for _, rt in ipairs(r.routes) do if rt.name == name then return rt end end
  error("no route " .. name)
end

describe("a run's transcript, served", function()
  local db, dir, saved
  before_each(function()
    dir = H.tmpdir()
    db = assert(store.open(dir .. "/orket.db"))
    saved = { log_view.FIELD_MAX, log_view.PAGE_MAX, log_view.FIELD_TIGHT }
  end)
  after_each(function()
    log_view.FIELD_MAX, log_view.PAGE_MAX, log_view.FIELD_TIGHT = table.unpack(saved)
    db:close()
    H.cleanup()
  end)

  it("cuts each text past FIELD_MAX, marked as orket log marks a clip, and names it with the bytes left out", function()
    local run = assert(db:record_run { target = "C-1", kind = "issue" })
    local big, answer = ("q"):rep(BIG), ("é"):rep(BIG // 2) -- (a cut never splits a character)
    turn(db, run, 1, big, answer, ("r"):rep(BIG))
    local doc = assert(log_view.served(db, dir, run))
    assert.equal(log_view.FIELD_MAX, doc.field_max)
    assert.is_nil(doc.next)
    local t, tc
    for _, ev in ipairs(doc.events) do
      if ev.kind == "turn" then t = ev elseif ev.kind == "tool_call" then tc = ev end
    end
    local m = t.turn.messages
    assert.equal("be brief", m[1].content) -- a short text whole
    -- (compared as booleans: a failure's message would print 64 KiB)
    assert.is_true(("q"):rep(log_view.FIELD_MAX) .. "... (" .. BIG .. " bytes)" == m[2].content)
    local kept = log_view.FIELD_MAX // 2 * 2 -- whole characters of 2 bytes
    assert.is_true(("é"):rep(kept // 2) .. "... (" .. #answer .. " bytes)" == t.turn.response.content)
    assert.is_true(t.turn.response.content == t.turn.response.tool_calls[1].arguments.text)
    local c = cuts(t)
    assert.same({ field = "/turn/messages/1/content", bytes = BIG, left_out = BIG - log_view.FIELD_MAX },
      c["/turn/messages/1/content"])
    assert.same({ field = "/turn/response/content", bytes = #answer, left_out = #answer - kept },
      c["/turn/response/content"])
    assert.truthy(c["/turn/response/tool_calls/0/arguments/text"])
    -- a tool call's result (JSON text) is a text like the others
    local rc = cuts(tc)["/result"]
    assert.equal(BIG + #'{"ok":true,"text":""}', rc.bytes)
    assert.equal(rc.bytes - log_view.FIELD_MAX, rc.left_out)
    local marker = "... (" .. rc.bytes .. " bytes)"
    assert.equal(log_view.FIELD_MAX + #marker, #tc.result)
    assert.equal(marker, tc.result:sub(-#marker))
    -- the document is orket.log/1 as before, with fields added, and valid JSON
    local text = jsonout.encode(doc)
    assert.truthy(#text < 5 * log_view.FIELD_MAX)
    assert.equal("orket.log/1", cjson.decode(text).format)
    -- the whole texts stay for `orket log RUN --full` (json_doc without a cap)
    local whole = assert(log_view.json_doc(db, dir, run))
    for _, ev in ipairs(whole.events) do
      if ev.turn then assert.is_true(big == ev.turn.messages[2].content) end
      assert.is_nil(ev.cut)
    end
    assert.is_nil(whole.field_max)
  end)

  it("gives the events a page at a time, next naming the after of the next page", function()
    local run = assert(db:record_run { target = "C-1", kind = "issue" })
    for n = 1, 6 do turn(db, run, n, ("m"):rep(3000), ("a"):rep(3000), "ok") end
    assert(db:tx(function()
      return db:event { kind = "transition", card = "C-1", run = run, actor = "agent", data = { from = "ready",
        to = "in_progress" } }
    end))
    local all = assert(log_view.json_doc(db, dir, run)).events
    log_view.PAGE_MAX = 20000 -- about two turns of 12 KB
    local got, after, pages = {}, 0, 0
    repeat
      local doc = assert(log_view.served(db, dir, run, after))
      pages = pages + 1
      assert.truthy(#doc.events >= 1)
      for _, ev in ipairs(doc.events) do got[#got + 1] = ev.id end
      -- the run's moves on the first page alone (they are among the events too)
      assert.equal(pages == 1 and 1 or 0, #doc.transitions)
      if doc.next then assert.equal(doc.events[#doc.events].id, doc.next) end
      after = doc.next
    until not after or pages > 50
    assert.truthy(pages > 2)
    local want = {}
    for i, ev in ipairs(all) do want[i] = ev.id end
    assert.same(want, got)
  end)

  it("keeps FIELD_TIGHT of each text past the page's end of an event that alone passes it", function()
    local run = assert(db:record_run { target = "C-1", kind = "issue" })
    turn(db, run, 1, ("m"):rep(BIG), ("a"):rep(BIG), "ok")
    log_view.PAGE_MAX = log_view.FIELD_MAX // 2
    -- (the run's first event fills a page of its own: the turn is the next page's first)
    local doc, t = assert(log_view.served(db, dir, run)), nil
    while not t do
      for _, ev in ipairs(doc.events) do if ev.turn then t = ev end end
      if not t then doc = assert(log_view.served(db, dir, run, assert(doc.next))) end
    end
    -- its first long text in key order (messages before response) kept FIELD_MAX, which
    -- passed the page's end; the others after it FIELD_TIGHT
    local c = cuts(t)
    assert.equal(log_view.FIELD_MAX, BIG - c["/turn/messages/1/content"].left_out)
    assert.equal(log_view.FIELD_TIGHT, BIG - c["/turn/response/content"].left_out)
    assert.equal(log_view.FIELD_TIGHT, BIG - c["/turn/response/tool_calls/0/arguments/text"].left_out)
    assert.truthy(#jsonout.encode(doc) < log_view.FIELD_MAX + 4 * log_view.FIELD_TIGHT + 4096)
  end)

  it("GET /v1/runs/{id}/transcript and the MCP tool and resource serve it cut, ?after= paging", function()
    local CAP = 64 * 1024 -- the documented cap (docs/serve.md, Runs)
    local run = assert(db:record_run { target = "C-1", kind = "issue" })
    turn(db, run, 1, ("q"):rep(BIG), "short", "ok")
    local h = route("run_transcript").handler
    local st, doc = h(nil, { db = db, dir = dir, params = { id = tostring(run) }, query = {} })
    assert.equal(200, st)
    assert.truthy(#jsonout.encode(doc) < 2 * CAP)
    assert.equal(CAP, doc.field_max)
    local first = doc.events[1].id
    st, doc = h(nil, { db = db, dir = dir, params = { id = tostring(run) }, query = { after = tostring(first) } })
    assert.equal(200, st)
    assert.not_equal(first, doc.events[1].id)
    st, doc = h(nil, { db = db, dir = dir, params = { id = tostring(run) }, query = { after = "-1" } })
    assert.same({ 400, "bad_query" }, { st, doc.error.code })
    -- the MCP server's tool (with after) and resource
    local s = mcp_server.new { db = db, dir = dir, who = { id = "k", role = "viewer" } }
    local text = assert(s:tool_text("run_transcript", { id = run }))
    assert.truthy(#text < 2 * CAP)
    assert.equal(CAP, cjson.decode(text).field_max)
    text = assert(s:tool_text("run_transcript", { id = run, after = first }))
    assert.not_equal(first, cjson.decode(text).events[1].id)
    text = assert(s:resource_text("orket://runs/" .. run .. "/transcript"))
    assert.truthy(#text < 2 * CAP)
  end)

  it("orket log RUN --json cuts as the API does, --json --full keeps every text whole", function()
    local CAP = 64 * 1024
    local proj = H.example("webapp", { import = false })
    local pdb = assert(require("orket.project").open_store(proj, true))
    local run = assert(pdb:record_run { target = "API", kind = "epic" })
    turn(pdb, run, 1, ("q"):rep(BIG), "short", "ok")
    pdb:close()
    local r = H.orket("log " .. run .. " --json", { cwd = proj })
    assert.equal(0, r.status)
    assert.truthy(#r.stdout < 2 * CAP)
    assert.equal(CAP, cjson.decode(r.stdout).field_max)
    r = H.orket("log " .. run .. " --json --full", { cwd = proj })
    assert.equal(0, r.status)
    assert.truthy(#r.stdout > BIG)
    assert.is_nil(cjson.decode(r.stdout).field_max)
    -- the text clips at 400 bytes saying the whole length, as before
    r = H.orket("log " .. run, { cwd = proj })
    assert.matches("qqq... (" .. BIG .. " bytes)", r.stdout, 1, true)
  end)
end)
