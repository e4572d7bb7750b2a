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
end)
