-- /metrics' turn and card durations after a real run whose calls take a second each: a
-- turn's begin is written with its first commit, after its first model call, and keeps how
-- long after the turn began (turn_begin's lead_ms), so a one-call turn reads as its call's
-- time, not about 0 s; and a done card archived takes nothing back from the histogram
-- (docs/serve.md, GET /metrics).
local H = require "tests.helpers"
local cjson = require "cjson"

-- the coder's one call asks for review; the reviewer's one call moves the card to done;
-- each call takes DELAY ms
local DELAY = 1000
local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "SLOW-1", match = "^Issue ", reply = { delay_ms = ]] .. DELAY .. [[, tool_calls = {
    call("write_file", { path = "a.txt", content = "a\n" }),
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", card = "SLOW-1", match = "^Issue ", reply = { delay_ms = ]] .. DELAY .. [[, tool_calls = {
    call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

local function project()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "slow"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/epics/slow.json", [[
{ "id": "SLOW", "name": "Slow", "issues": [ { "id": "SLOW-1", "summary": "Write a.txt", "seat": "senior_developer" } ] }
]])
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function value(text, sample)
  local at = text:find("\n" .. sample .. " ", 1, true)
  assert(at, "no sample " .. sample)
  return tonumber(text:match("^(%S+)", at + #sample + 2))
end

describe("/metrics' durations after a run of one-second calls", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("count each turn's first call, and keep a card archived after done", function()
    local dir = project()
    local r = H.orket("run SLOW --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr .. r.stdout)
    -- each fresh turn's begin says how long after the turn's start it was written
    local db = assert(require("orket.project").open_store(dir, false))
    local begins = require("orket.store.backend").rows(db, "SELECT data FROM events WHERE kind = 'turn_begin' ORDER BY id")
    db:close()
    assert.is_true(#begins >= 2, "two turns at least")
    for _, b in ipairs(begins) do
      local d = type(b.data) == "table" and b.data or cjson.decode(b.data)
      assert.is_true(type(d.lead_ms) == "number" and d.lead_ms >= DELAY, cjson.encode(d))
    end
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local _, _, text = H.api(s, "GET", "/metrics", op)
    text = "\n" .. text
    local turns = value(text, "orket_turn_duration_seconds_count")
    assert.is_true(turns >= 2, text)
    -- every turn made one call of DELAY ms at least: none is under DELAY
    assert.is_true(value(text, "orket_turn_duration_seconds_sum") >= turns * DELAY / 1000, text)
    assert.equal(0, value(text, 'orket_turn_duration_seconds_bucket{le="1"}'))
    -- the card took the coder's call and the reviewer's
    assert.equal(1, value(text, 'orket_card_duration_seconds_count{type="issue"}'))
    local card_sum = value(text, 'orket_card_duration_seconds_sum{type="issue"}')
    assert.is_true(card_sum >= 2 * DELAY / 1000, text)
    -- archived: the card is no longer done; its move to done was, and stays counted
    local st, doc = H.api(s, "POST", "/v1/cards/SLOW-1/move", op, { to = "archived" })
    assert.equal(200, st, cjson.encode(doc))
    local _, _, again = H.api(s, "GET", "/metrics", op)
    again = "\n" .. again
    assert.equal(1, value(again, 'orket_card_duration_seconds_count{type="issue"}'))
    assert.equal(card_sum, value(again, 'orket_card_duration_seconds_sum{type="issue"}'))
    assert.equal(1, value(again, 'orket_card_duration_seconds_bucket{type="issue",le="+Inf"}'))
    assert.equal(0, s.stop())
  end)
end)
