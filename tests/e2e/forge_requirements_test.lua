-- A card people keep sending back on the forge waits for a person: the third
-- changes-requested review (review.requirements_review_after) puts it in
-- waiting_for_developer(input) with the reviewers' notes as its question when the webhook
-- arrives; the next run gives the architect one turn on the requirements review and ends
-- stalled, saying it waits for a person (not failed by a budget); 'orket answer' starts the
-- card over and closes the review.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local G = require "orket.c.gitrepo"
local crypto = require "orket.c.crypto"
local cjson = require "cjson"

local SECRET, TOKEN = F.FORGE_SECRET, F.FORGE_TOKEN

-- the coder writes a different a.txt each run and hands it in; the architect comments on
-- anything it is given and never hands it in (the model that used to be worked to its budget)
local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
local rules = {}
for run = 1, 6 do
  rules[#rules + 1] = { role = "coder", card = "F-1", run = run, match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "a.txt", content = "take " .. run .. "\n" }) } } }
end
rules[#rules + 1] = { role = "coder", match = '"path"', reply = { tool_calls = {
  call("update_issue_status", { status = "code_review" }) } } }
rules[#rules + 1] = { role = "architect", match = "^Issue ", reply = { tool_calls = {
  call("add_issue_comment", { body = "The acceptance does not say which format a.txt takes." }) } } }
return { rules = rules, default = { content = "Nothing more to do." } }
]]

local function project(forge_url)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  assert(G.init_bare(dir .. "/remote.git"))
  H.write(dir .. "/orket.lua", string.format([[
name = "forge"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } },
  lead_architect = { roles = { "architect" } } }
git = { remote = %q, forge = "gitea", repo = "acme/notes", api_url = %q, token_env = "FORGE_TOKEN",
  webhook_secret_env = "FORGE_HOOK_SECRET" }
review = { human = true }
]], "file://" .. dir .. "/remote.git", forge_url))
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/epics/f.json", cjson.encode { id = "F", name = "Forge", description = "Reviewed by people.",
    issues = { { id = "F-1", summary = "Write a.txt", seat = "senior_developer" } } })
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function card(dir, id)
  return H.card_json(dir, id)
end

local function events(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
  return out
end

local function run(dir, args)
  return H.orket((args or "run F") .. " --json", { cwd = dir, env = { FORGE_TOKEN = TOKEN } })
end

-- a Gitea "changes requested" review of pull request number, its text making it a review of its own
local function rejected(number, text)
  return cjson.encode {
    action = "reviewed", number = number,
    pull_request = { id = 10 + number, number = number, user = { login = "orket-bot" }, state = "open",
      merged = false, head = { ref = "orket/F-1", sha = string.rep("0", 40) }, base = { ref = "main" } },
    repository = { id = 7, name = "notes", full_name = "acme/notes", owner = { login = "acme" } },
    sender = { id = 3, login = "alice" },
    review = { type = "pull_request_review_rejected", content = text },
  }
end

local function deliver(s, id, body)
  local status, text = H.fetch { url = s.url .. "/v1/webhooks/gitea", method = "POST", total_timeout_ms = 30000,
    headers = { "Content-Type: application/json", "X-Gitea-Event: pull_request",
      "X-Gitea-Event-Type: pull_request_review_rejected", "X-Gitea-Delivery: " .. id,
      "X-Gitea-Signature: " .. crypto.hmac_sha256(SECRET, body) }, body = body }
  return status, cjson.decode(text)
end

describe("a card whose requirements are unclear", function()
  local forge
  before_each(function() forge = H.fake_forge() end)
  after_each(function()
    H.kill_servers()
    forge.stop()
    H.cleanup()
  end)

  it("waits for a person from the third changes-requested webhook on, and an answer lets it go on", function()
    local dir = project(forge.url)
    local r = run(dir)
    assert.equal(3, r.status, r.stderr .. r.stdout) -- waiting for review on the forge
    local c = card(dir, "F-1")
    assert.equal("waiting_for_developer", c.card.status)
    assert.equal("review", c.card.wait_reason)
    local number = math.tointeger(c.forge.pull_request.number)
    local s = H.serve(dir, { env = { FORGE_HOOK_SECRET = SECRET } })

    local notes = { "a.txt is not what I meant.", "Still not right.", "This is not it either." }
    for i, note in ipairs(notes) do
      local code, doc = deliver(s, "d-" .. i, rejected(number, note))
      assert.equal(200, code)
      c = card(dir, "F-1")
      assert.equal(i, math.tointeger(c.card.retries))
      if i < #notes then
        assert.equal("in_progress", doc.outcome)
        assert.equal("in_progress", c.card.status)
        -- the rework goes back to the people on the forge
        r = run(dir)
        assert.equal(3, r.status, r.stderr .. r.stdout)
        assert.equal("waiting_for_developer", card(dir, "F-1").card.status)
        assert.equal("review", card(dir, "F-1").card.wait_reason)
      else
        -- the threshold acts on the delivery itself, not at the next run
        assert.equal("waiting_for_input", doc.outcome)
        assert.equal("waiting_for_developer", c.card.status)
        assert.equal("input", c.card.wait_reason)
      end
    end
    -- the question on the card carries every reviewer's note and how to answer
    local question = c.comments[#c.comments]
    assert.equal("orket", question.author)
    assert.matches("waiting for a person", question.body, 1, true)
    for _, note in ipairs(notes) do assert.matches(note, question.body, 1, true) end
    assert.matches("orket answer F-1", question.body, 1, true)
    -- a redelivery of the third review changes nothing
    local code, doc = deliver(s, "d-3", rejected(number, notes[3]))
    assert.equal(200, code)
    assert.equal("duplicate", doc.outcome)
    assert.equal(3, math.tointeger(card(dir, "F-1").card.retries))
    -- a fourth review while it waits for a person is not taken for a decision
    code, doc = deliver(s, "d-4", rejected(number, "And another thing."))
    assert.equal(200, code)
    assert.equal("ignored", doc.outcome)
    assert.matches("waits for input", doc.reason, 1, true)
    assert.equal(3, math.tointeger(card(dir, "F-1").card.retries))
    local rr
    for _, x in ipairs(cjson.decode(H.orket("board --json", { cwd = dir }).stdout).cards) do
      if type(x.summary) == "string" and x.summary:match("^Requirements review") then
        assert.is_nil(rr, "one requirements review")
        rr = x
      end
    end
    assert.is_not_nil(rr)
    assert.equal("lead_architect", rr.seat)
    assert.equal("ready", rr.status)

    -- the next run: the architect takes one turn on the review, which then waits for a person too
    r = run(dir)
    assert.equal(3, r.status, r.stderr .. r.stdout) -- stalled, not failed (1)
    local evs = events(r.stdout)
    local turns = 0
    for _, ev in ipairs(evs) do
      assert.is_false(ev.type == "card_blocked", "a card was blocked: " .. tostring(ev.detail))
      if ev.type == "turn_start" and ev.card == rr.id then turns = turns + 1 end
    end
    assert.equal(1, turns)
    local last = evs[#evs]
    assert.equal("run_end", last.type)
    assert.equal("stalled", last.status)
    table.sort(last.waiting)
    local want = { "F-1", rr.id }
    table.sort(want)
    assert.same(want, last.waiting)
    local review_card = card(dir, rr.id)
    assert.equal("waiting_for_developer", review_card.card.status)
    assert.equal("input", review_card.card.wait_reason)
    local said = {}
    for _, k in ipairs(review_card.comments) do said[#said + 1] = k.author .. ": " .. k.body end
    assert.matches("lead_architect: The acceptance does not say", table.concat(said, "\n"), 1, true)
    local stall
    for _, ev in ipairs(evs) do if ev.type == "stall" then stall = ev end end
    for _, sc in ipairs(stall.cards) do
      assert.equal("input", sc.waits_for)
      assert.matches("^waiting for input from a person", sc.reason)
      -- both are answered on the card whose requirements are in question
      assert.equal('orket answer F-1 "your answer"', sc.next)
    end
    -- a run that finds nothing but cards waiting for a person takes no turn and says so again
    r = run(dir, "resume")
    assert.equal(3, r.status, r.stderr .. r.stdout)
    evs = events(r.stdout)
    for _, ev in ipairs(evs) do assert.is_false(ev.type == "turn_start", "a turn was taken: " .. tostring(ev.card)) end
    assert.same(want, evs[#evs].waiting)

    -- answering the review card answers the card it reviews: started over, the review closed
    r = H.orket('answer ' .. rr.id .. ' "Plain text, one line."', { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    c = card(dir, "F-1")
    assert.equal("ready", c.card.status)
    assert.equal(0, math.tointeger(c.card.retries))
    assert.matches("^local:", c.comments[#c.comments].author) -- the local operator answered
    assert.equal("archived", card(dir, rr.id).card.status)
    -- and the card is worked again and goes back to the forge's review
    r = run(dir)
    assert.equal(3, r.status, r.stderr .. r.stdout)
    c = card(dir, "F-1")
    assert.equal("waiting_for_developer", c.card.status)
    assert.equal("review", c.card.wait_reason)
    assert.equal(0, s.stop())
  end)
end)
