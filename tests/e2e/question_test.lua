-- request_input end to end with the scripted model: the agent asks a question, the run stops
-- with the card waiting for input (exit 3), 'orket answer CARD "text"' answers it, and
-- 'orket resume' finishes the card with the model reading the answer in its brief.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  -- the question and then the answer are in the brief of the turn after it: the model acts
  { role = "coder", card = "ASK-1", match = "Question: Which database should I use%?.-local:[%w._-]+: use sqlite", reply = { tool_calls = {
    call("write_file", { path = "db.txt", content = "sqlite\n" }) } } },
  { role = "coder", card = "ASK-1", match = "^Issue ", reply = { tool_calls = {
    call("request_input", { question = "Which database should I use?" }) } } },
  { role = "coder", match = '"path"', reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = {
    call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

local function project()
  return F.scripted_project { name = "ask", script = SCRIPT, epics = { ["ask.json"] = [[
{ "id": "ASK", "name": "Pick a database", "issues": [
  { "id": "ASK-1", "summary": "Write the chosen database to db.txt", "seat": "senior_developer" } ] }
]] } }
end

local card = H.card_json

describe("request_input end to end", function()
  after_each(H.cleanup)

  it("asks the developer, waits, and finishes with the answer", function()
    local dir = project()
    local r = H.orket("run ASK --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    local stall, denied
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.type == "stall" then stall = ev end
      if ev.type == "tool" and ev.denied then denied = ev end
    end
    assert.is_nil(denied)
    assert.equal("ASK-1", stall.cards[1].card)
    local c = card(dir, "ASK-1")
    assert.equal("waiting_for_developer", c.card.status)
    assert.equal("input", c.card.wait_reason)
    local shown = H.orket("card ASK-1", { cwd = dir }).stdout
    assert.matches("status:%s+waiting_for_developer %(waiting: input%)", shown)
    assert.matches("senior_developer: Question: Which database should I use%?", shown)

    r = H.orket('answer ASK-1 "use sqlite"', { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- commands that work as given (`orket run` alone is a usage error)
    assert.matches("answered ASK-1; continue with 'orket resume' or 'orket run ASK-1'\n", r.stdout, 1, true)
    assert.equal("ready", card(dir, "ASK-1").card.status)

    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("sqlite\n", H.read(dir .. "/workspace/db.txt"))
    c = card(dir, "ASK-1")
    assert.equal("done", c.card.status)
    local bodies = {}
    for _, k in ipairs(c.comments) do bodies[#bodies + 1] = k.author .. ": " .. k.body end
    assert.matches("local:[%w._-]+: use sqlite", table.concat(bodies, "\n"))
  end)

  it("blocks an answered card whose turns are spent once, and the run ends", function()
    -- before, the block left a ready card as it was while the budget said it was spent:
    -- the scheduler picked it again at once, forever, and never let a signal in
    local dir = F.scripted_project { name = "ask", script = SCRIPT, settings = "budgets = { turns_per_card = 1 }\n",
      epics = { ["ask.json"] = [[
{ "id": "ASK", "name": "Pick a database", "issues": [
  { "id": "ASK-1", "summary": "Write the chosen database to db.txt", "seat": "senior_developer" } ] }
]] } }
    assert.equal(3, H.orket("run ASK --json", { cwd = dir }).status)
    assert.equal(0, H.orket('answer ASK-1 "something else"', { cwd = dir }).status)
    local r = H.orket("resume --json", { cwd = dir, wrap = "timeout -s KILL 60" })
    assert.equal(1, r.status, r.stderr)
    local blocked, ended = 0, nil
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.type == "card_blocked" then blocked = blocked + 1 end
      if ev.type == "run_end" then ended = ev end
    end
    assert.equal(1, blocked)
    assert.equal("failed", ended.status)
    local c = card(dir, "ASK-1")
    assert.same({ "blocked", "resource" }, { c.card.status, c.card.wait_reason })
    assert.matches("budgets.turns_per_card", c.comments[#c.comments].body, 1, true)
  end)

  it("answering a requirements review starts the card's rejection count over", function()
    local dir = project()
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") ..
      "review = { escalate_after = 2, requirements_review_after = 2 }\n")
    -- the coder hands in at once; the reviewer always sends it back
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", card = "ASK-1", match = "^Issue ", reply = { tool_calls = {
    call("add_issue_comment", { body = "Not what the issue asks." }),
    call("update_issue_status", { status = "in_progress" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]])
    local r = H.orket("run ASK-1 --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr)
    local c = card(dir, "ASK-1").card
    assert.equal("waiting_for_developer", c.status)
    assert.equal(2, c.retries)
    r = H.orket('answer ASK-1 "The requirements stand; write db.txt."', { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    c = card(dir, "ASK-1").card
    assert.equal("ready", c.status)
    assert.equal(0, c.retries)
    -- the answer closes the review it answers, so it keeps no epic open
    local cards = cjson.decode(H.orket("board --json", { cwd = dir }).stdout).cards
    local reviews = 0
    for _, x in ipairs(cards) do
      if type(x.summary) == "string" and x.summary:match("^Requirements review") then
        reviews = reviews + 1
        assert.equal("archived", x.status)
      end
    end
    assert.equal(1, reviews)
  end)
end)
