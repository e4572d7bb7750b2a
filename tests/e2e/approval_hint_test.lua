-- The "answer with" hints of a held call name its request: once a card has had a second
-- request, `orket answer CARD --approve` is refused (it must say which), so every hint
-- Orket prints (`orket card`'s answer: line, the card's comment, the stall's reason and
-- next, a text answer's refusal) says --request N and following it works. And the API's
-- ESTATE remedy names the card's route, not a literal {id}.
local H = require "tests.helpers"
local cjson = require "cjson"

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "A-2", match = "Refused request", reply = { tool_calls = {
    call("delete_file", { path = "important.txt" }) } } },
  { role = "coder", card = "A-2", match = "^Issue ", reply = { tool_calls = { call("delete_file", { path = "tmp.txt" }) } } },
}, default = { content = "Nothing more to do." } }
]]

-- A-2 asks to delete tmp.txt (request #1); refused, it asks to delete important.txt (#2)
local function project()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "policies", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "hints"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/policies/p.lua", 'ask { tool = "delete_file", path = "**", reason = "deletions need approval" }\n')
  H.write(dir .. "/epics/a.json", [[
{ "id": "A", "name": "A", "issues": [ { "id": "A-2", "summary": "two", "seat": "senior_developer" } ] }
]])
  for _, f in ipairs { "tmp.txt", "important.txt" } do H.write(dir .. "/workspace/" .. f, "x\n") end
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  assert.equal(3, H.orket("run A", { cwd = dir }).status)
  return dir
end

-- the command `orket card A-2`'s answer: line gives, without its --approve/--deny part
local function card_hint(dir)
  local text = H.orket("card A-2", { cwd = dir }).stdout
  return assert(text:match('answer: (orket answer A%-2 [^\n]-) %-%-approve %["note"%] | %-%-deny "reason"\n'), text)
end

describe("an approval's hints", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("name the request, so that following them decides a card's second request", function()
    local dir = project()
    -- the first request, refused as the card says
    local hint = card_hint(dir)
    assert.equal("orket answer A-2 --request 1", hint)
    local r = H.orket(hint:gsub("^orket ", "") .. " --deny 'keep tmp.txt'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- the second: the stall, the comment, the card and a text answer's refusal all name #2
    r = H.orket("run A-2 --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    local stall
    for l in r.stdout:gmatch("[^\n]+") do
      local ok, ev = pcall(cjson.decode, l)
      if ok and type(ev) == "table" and ev.type == "stall" then stall = ev end
    end
    assert(stall, r.stdout)
    local s = stall.cards[1]
    assert.equal(2, math.tointeger(s.approval))
    assert.equal('orket answer A-2 --request 2 --approve (or --deny "reason")', s.next)
    local tail = "answer with 'orket answer A-2 --request 2 --approve' or --deny \"reason\""
    assert.equal(tail, s.reason:sub(-#tail))
    local cs = H.card_json(dir, "A-2").comments
    local body
    for _, c in ipairs(cs) do if c.body:find("^Approval needed %(request #2%)") then body = c.body end end
    assert.matches("Answer with 'orket answer A%-2 %-%-request 2 %-%-approve' or %-%-deny \"reason\"%.$", assert(body))
    r = H.orket('answer A-2 "sure"', { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("use 'orket answer A-2 --request 2 --approve [\"note\"]' or --deny \"reason\"", r.stderr, 1, true)
    assert.matches('CARD [--request N] --approve ["note"] | CARD [--request N] --deny "reason"', r.stderr, 1, true)
    -- without the number it is refused; the card's hint has it, and works
    assert.equal(2, H.orket("answer A-2 --approve 'ok'", { cwd = dir }).status)
    hint = card_hint(dir)
    assert.equal("orket answer A-2 --request 2", hint)
    r = H.orket(hint:gsub("^orket ", "") .. " --approve 'ok'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches('^approved request #2 of A%-2 %(delete_file {"path":"important.txt"}%)', r.stdout)
    assert.equal("ready", H.card_json(dir, "A-2").card.status)
  end)

  it("over the API, a decision sent twice is refused with the card's route to look", function()
    local dir = project()
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local st, doc = H.api(s, "POST", "/v1/cards/A-2/deny", op, { approval = 1, reason = "no" })
    assert.equal(200, st, cjson.encode(doc))
    st, doc = H.api(s, "POST", "/v1/cards/A-2/deny", op, { approval = 1, reason = "no" })
    assert.equal(409, st)
    assert.equal("ESTATE", doc.error.code)
    assert.equal("GET /v1/cards/A-2 shows where it stands", doc.error.remedy)
  end)
end)
