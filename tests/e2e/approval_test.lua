-- A policy that asks before delete_file, end to end with the scripted model: the run stops
-- with the card waiting for approval and the file still there; 'orket answer --approve'
-- then 'orket resume' deletes it and the card reaches done; '--deny' keeps the file and the
-- model reads the refusal; a kill right after the request resumes consistently.
local H = require "tests.helpers"
local cjson = require "cjson"

local project = require("tests.cleanup_project").make

local card = H.card_json

local function events(stdout)
  local out = {}
  for line in stdout:gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
  return out
end

-- Runs until the card waits for approval; checks what every view of it says.
local function run_to_wait(dir)
  local r = H.orket("run CLEAN --json", { cwd = dir })
  assert.equal(3, r.status, r.stderr)
  local evs = events(r.stdout)
  local stall, held
  for _, ev in ipairs(evs) do
    if ev.type == "stall" then stall = ev end
    if ev.type == "approval_requested" then held = ev end
  end
  assert.equal("CLEAN-1", held.card)
  assert.equal("delete_file", held.tool)
  assert.equal(1, #stall.cards)
  local s = stall.cards[1]
  assert.equal("CLEAN-1", s.card)
  assert.equal("approval", s.waits_for)
  assert.matches('waiting for approval of delete_file {"path":"old.txt"} %(request #1%)', s.reason)
  assert.equal("stalled", evs[#evs].status)
  assert.equal("old\n", H.read(dir .. "/workspace/old.txt"))
  local c = card(dir, "CLEAN-1")
  assert.equal("waiting_for_developer", c.card.status)
  assert.equal(1, #c.approvals)
  assert.equal("delete_file", c.approvals[1].tool)
  assert.same({ path = "old.txt" }, c.approvals[1].arguments)
  assert.equal(cjson.null, c.approvals[1].decision)
  assert.equal("done", card(dir, "CLEAN-2").card.status) -- the other card was not held up
  local text = H.orket("card CLEAN-1", { cwd = dir }).stdout
  assert.matches("status:%s+waiting_for_developer %(waiting: approval #1%)", text)
  assert.matches('#1 %S+ pending: delete_file {"path":"old.txt"}', text)
end

describe("approvals end to end", function()
  after_each(H.cleanup)

  it("the troubleshooting guide's commands for POLICY_ASK decide a held call", function()
    local text = assert(H.read(H.ROOT .. "/docs/guide/troubleshooting.md"))
    local row = assert(text:match("\n| `POLICY_ASK` |[^\n]*"), "no POLICY_ASK row")
    local n = 0
    for form in row:gmatch("`orket (answer [^`]+)`") do
      n = n + 1
      local dir = project()
      run_to_wait(dir)
      -- (the card's one request is #1)
      local r = H.orket(form:gsub("CARD", "CLEAN-1"):gsub("%-%-request N", "--request 1"), { cwd = dir })
      assert.equal(0, r.status, "orket " .. form .. ": " .. r.stderr)
      assert.equal("ready", card(dir, "CLEAN-1").card.status)
    end
    assert.is_true(n >= 2, "the row names no `orket answer` to approve and to refuse: " .. row)
  end)

  it("shows a request of a card canceled while it waited as no longer answerable", function()
    local dir = project()
    run_to_wait(dir)
    assert.equal(0, H.orket('cancel CLEAN-1 "not needed"', { cwd = dir }).status)
    local text = H.orket("card CLEAN-1", { cwd = dir }).stdout
    assert.matches('#1 %S+ unanswered, the card is canceled: delete_file {"path":"old.txt"}', text)
    assert.not_matches("answer: orket answer", text, 1, true)
    local r = H.orket("answer CLEAN-1 --approve", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("CLEAN-1 is canceled, not waiting for an approval", r.stderr, 1, true)
  end)

  it("waits for approval, then deletes the file once approved and finishes the card", function()
    local dir = project()
    run_to_wait(dir)
    -- plain text is for questions; the card names its state when the flag does not fit
    local r = H.orket('answer CLEAN-1 "sure"', { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("CLEAN%-1 waits for approval of delete_file .- use 'orket answer CLEAN%-1 %-%-request 1 %-%-approve", r.stderr)
    r = H.orket("answer CLEAN-2 --approve", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("CLEAN%-2 is done, not waiting for an approval", r.stderr)
    r = H.orket("answer CLEAN-1 --approve --deny x", { cwd = dir })
    assert.equal(2, r.status)
    r = H.orket('answer CLEAN-1 --approve "it is unused"', { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("approved request #1 of CLEAN%-1", r.stdout)
    assert.equal("ready", card(dir, "CLEAN-1").card.status)

    r = H.orket("resume --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.is_nil(H.read(dir .. "/workspace/old.txt"))
    local c = card(dir, "CLEAN-1")
    assert.equal("done", c.card.status)
    assert.equal("approve", c.approvals[1].decision)
    assert.equal("it is unused", c.approvals[1].note)
    assert.is_string(c.approvals[1].used_at)
    local log = H.orket("log 1", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    assert.matches("%[gate%] delete_file ask: POLICY_ASK", log.stdout)
    assert.matches('%[ask%] CLEAN%-1 waits for approval #1: delete_file {"path":"old.txt"}', log.stdout)
    assert.matches("local:[%w._-]+ approved approval #1 %(delete_file%): it is unused", log.stdout)
    assert.matches("%[gate%] delete_file allow: APPROVED", log.stdout)
    assert.matches("%[result%] delete_file ok", log.stdout)
    r = H.orket("answer CLEAN-1 --approve", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("CLEAN%-1 is done, not waiting for an approval", r.stderr)
  end)

  it("keeps the file when the developer refuses, and the model reads why", function()
    local dir = project()
    run_to_wait(dir)
    local r = H.orket("answer CLEAN-1 --deny", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("%-%-deny needs a reason", r.stderr)
    r = H.orket('answer CLEAN-1 --deny "keep it, the importer reads it"', { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("run CLEAN --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("old\n", H.read(dir .. "/workspace/old.txt"))
    local c = card(dir, "CLEAN-1")
    assert.equal("done", c.card.status)
    assert.equal("deny", c.approvals[1].decision)
    local bodies = {}
    for _, m in ipairs(c.comments) do bodies[#bodies + 1] = m.author .. ": " .. m.body end
    bodies = table.concat(bodies, "\n")
    assert.matches("local:[%w._-]+: Refused request #1: delete_file {\"path\":\"old.txt\"}%. Reason: keep it, the importer reads it", bodies)
    assert.matches("senior_developer: Left old.txt in place as the developer asked%.", bodies)
  end)

  it("is consistent after a kill right after the request", function()
    local dir = project()
    -- CLEAN-1 alone: its first tool call is the held delete_file
    local r = H.orket("run CLEAN-1 --json", { cwd = dir, env = { ORKET_FAULT = "after_tool:1" } })
    assert.equal(137, r.status, r.stderr)
    local c = card(dir, "CLEAN-1")
    assert.equal("waiting_for_developer", c.card.status)
    assert.equal(1, #c.approvals)
    r = H.orket("resume --json", { cwd = dir })
    assert.equal(3, r.status, r.stderr) -- still waiting: nothing was asked twice
    assert.equal(1, #card(dir, "CLEAN-1").approvals)
    assert.equal(0, H.orket("answer CLEAN-1 --approve", { cwd = dir }).status)
    r = H.orket("resume --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.is_nil(H.read(dir .. "/workspace/old.txt"))
    assert.equal("done", card(dir, "CLEAN-1").card.status)
  end)
end)
