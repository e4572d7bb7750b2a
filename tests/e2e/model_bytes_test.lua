-- Model output with bytes that are not UTF-8, end to end on the store the tests run on (SQLite,
-- or PostgreSQL under tests/with_pg.lua, which refuses such bytes in text): the call is
-- refused with a reason the model sees, the turn and the run go on, and the journal keeps
-- the bytes escaped, noting it.
local H = require "tests.helpers"

local ORKET_LUA = [[
name = "bytes"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]]

-- The coder's first reply holds a call whose argument and content carry a byte 0xff; once
-- it has been told why that call was refused, it hands the card in.
local SCRIPT = [[return { rules = {
  { role = "coder", match = "not valid UTF%-8", reply = { tool_calls = {
    { name = "update_issue_status", arguments = { status = "code_review" } } } } },
  { role = "coder", reply = { content = "caf\xff", tool_calls = {
    { name = "update_issue_status", arguments = { status = "code_review", note = "caf\xff" } } } } },
  { role = "integrity_guard", reply = { tool_calls = {
    { name = "update_issue_status", arguments = { status = "done" } } } } },
}, default = { content = "Nothing more to do." } }
]]

describe("model output that is not UTF-8", function()
  after_each(H.cleanup)

  it("is refused with a reason the model sees and journaled escaped, on either store", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    H.write(dir .. "/orket.lua", ORKET_LUA)
    H.write(dir .. "/script.lua", SCRIPT)
    H.write(dir .. "/epics/b.json", [[
{ "id": "B", "name": "Bytes", "issues": [ { "id": "B-1", "summary": "Do it", "seat": "senior_developer" } ] }
]])
    require("tests.backends").project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("run B", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", H.card_json(dir, "B-1").card.status)
    r = H.orket("log --full", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- the refused call's text as the model sent it, the byte escaped, and why it was refused
    assert.matches('%[call%] update_issue_status {[^\n]*"caf\\xff"', r.stdout)
    assert.matches("arguments are not valid UTF%-8 %(byte %d+ of", r.stdout)
    assert.matches("[assistant] caf\\xff", r.stdout, 1, true)
  end)

  -- A server's event that is no JSON, holding a raw NUL and bytes that are not UTF-8, is
  -- quoted in the failure's message: PostgreSQL refused that message, rolled the failure's
  -- record back and left the card ready, to be taken again until its tokens ran out.
  it("from a server, quoted in a failure, is journaled escaped and blocks the card once, on either store", function()
    local fake = require("tests.fake_server").start()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
    H.write(dir .. "/orket.lua", string.format([[
name = "bytes"
models = { default = "fake:wire=bad_event", providers = {
  fake = { kind = "openai", base_url = %q, retry = { max_attempts = 2, base_ms = 1, max_ms = 5 } } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { model_retries = 1, backoff_ms = 1 }
]], fake.url .. "/v1"))
    H.write(dir .. "/epics/b.json", [[
{ "id": "B", "name": "Bytes", "issues": [ { "id": "B-1", "summary": "Do it", "seat": "senior_developer" } ] }
]])
    require("tests.backends").project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("run B --json", { cwd = dir })
    fake.stop()
    local kinds, blocked = {}, {}
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = require("cjson").decode(line)
      kinds[#kinds + 1] = ev.type
      if ev.type == "card_blocked" then
        assert.is_nil(ev.error, line) -- (its record failed)
        blocked[#blocked + 1] = ev
      end
    end
    assert.is_nil(table.concat(kinds, " "):find("journal_error"), table.concat(kinds, " "))
    assert.equal(1, #blocked, table.concat(kinds, " "))
    assert.matches('raw\\x00nul \\xff\\xfe"}}], oops}', blocked[1].detail, 1, true)
    assert.equal("blocked", H.card_json(dir, "B-1").card.status)
    -- the journal kept the failures: the engine's first call, the one it asked again at
    -- once, and the 4 of its later rounds
    r = H.orket("log --full", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local failed = 0
    for _ in r.stdout:gmatch("%[model failed%]") do failed = failed + 1 end
    assert.equal(6, failed, r.stdout)
    assert.matches("raw\\x00nul \\xff\\xfe", r.stdout, 1, true)
  end)

  -- an answer the provider cut (finish_reason length, content_filter) with no tool call was
  -- said as the model ending its turn, and its block blamed tool calling
  for _, finish in ipairs { "length", "content_filter" } do
    it("cut by the provider (finish_reason " .. finish .. ") says so in the turn and in the card's block", function()
      local fake = require("tests.fake_server").start()
      local dir = H.tmpdir()
      os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
      H.write(dir .. "/orket.lua", string.format([[
name = "cut"
models = { default = "fake:wire=%s", providers = { fake = { kind = "openai", base_url = %q } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { turns_per_card = 2 }
]], finish, fake.url .. "/v1"))
      H.write(dir .. "/epics/b.json", [[
{ "id": "B", "name": "Cut", "issues": [ { "id": "B-1", "summary": "Do it", "seat": "senior_developer" } ] }
]])
      require("tests.backends").project(dir)
      assert.equal(0, H.orket("import", { cwd = dir }).status)
      local r = H.orket("run B --json", { cwd = dir })
      fake.stop()
      local blocked
      for line in r.stdout:gmatch("[^\n]+") do
        local ev = require("cjson").decode(line)
        if ev.type == "card_blocked" then blocked = ev end
      end
      assert.is_table(blocked, r.stdout)
      assert.matches("The model's last answer: " .. (finish == "length" and "the answer was cut at the output limit "
        .. "(finish_reason length): raise budgets.max_output_tokens" or "the provider's content filter stopped the "
        .. "answer (finish_reason content_filter)"), blocked.detail, 1, true)
    end)
  end
end)
