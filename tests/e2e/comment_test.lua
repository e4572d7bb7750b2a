-- orket comment end to end: a person's comment on a card from the command line, as orket
-- serve's POST /v1/cards/{id}/comments takes one: on the card as the local operator's, in
-- the audit chain, and read by the model on the card's next turn. Before, only the API and
-- the web board could comment; a person at the terminal had no way to give an agent a hint.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  -- the comment is in the brief of the card's turn: the model acts on it
  { role = "coder", card = "HINT-1", match = "local:[%w._-]+: the port is 8080", reply = { tool_calls = {
    call("write_file", { path = "port.txt", content = "8080\n" }) } } },
  { role = "coder", card = "HINT-1", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "port.txt", content = "no idea\n" }) } } },
  { role = "coder", match = '"path"', reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = {
    call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

local function project()
  return F.scripted_project { name = "hint", script = SCRIPT, epics = { ["hint.json"] = [[
{ "id": "HINT", "name": "Hints", "issues": [
  { "id": "HINT-1", "summary": "Write the port to port.txt", "seat": "senior_developer" } ] }
]] } }
end

describe("orket comment", function()
  after_each(H.cleanup)

  it("comments on a card as the local operator, audited, and the model reads it on the card's turn", function()
    local dir = project()
    local r = H.orket("comment HINT-1 'the port is 8080'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("^commented on HINT%-1 %(comment #%d+%)\n$", r.stdout)
    assert.matches("^orket: acting as the local operator %(local:", r.stderr)
    local c = H.card_json(dir, "HINT-1")
    assert.matches("^local:[%w._-]+$", c.comments[1].author)
    assert.equal("the port is 8080", c.comments[1].body)
    assert.equal("ready", c.card.status) -- a comment moves nothing
    -- in the audit chain, as the API's comment is
    local ex = H.orket("audit export --format jsonl", { cwd = dir })
    assert.equal(0, ex.status, ex.stderr)
    local entry
    for l in ex.stdout:gmatch("[^\n]+") do
      local e = cjson.decode(l)
      if e.action == "comment" then entry = e end
    end
    assert.same({ "write", "HINT-1", "cli" }, { entry.kind, entry.card, entry.route })
    assert.matches("^local:", entry.actor)
    -- the card's turn reads it in its brief
    r = H.orket("run HINT --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("8080\n", H.read(dir .. "/workspace/port.txt"))
  end)

  it("refuses an empty comment, two words, an unknown card and one over 64 KiB, naming each", function()
    local dir = project()
    local r = H.orket("comment HINT-1 ' '", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("comment needs the text, e.g. orket comment HINT-1 ", r.stderr, 1, true)
    r = H.orket("comment HINT-1 two words", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("give the comment as one argument (quote it)", r.stderr, 1, true)
    r = H.orket("comment NOPE-1 hello", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches('no card "NOPE-1"', r.stderr, 1, true)
    r = H.orket("comment HINT-1 " .. ("x"):rep(65537), { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("the comment is 65537 characters, over the 65536 it may have", r.stderr, 1, true)
    assert.equal(0, #H.card_json(dir, "HINT-1").comments)
  end)

  -- a person's text reaches the models in JSON requests: a byte that is not UTF-8 was kept
  -- and sent raw, breaking every request of the card for a strict reader; the reasons and
  -- notes were not held to the API's caps
  it("refuses a person's text that is not UTF-8, or over the API's cap, on every command that takes one", function()
    local dir = project()
    local bad = H.quote("bad \255 byte")
    local long = ("x"):rep(4097)
    for _, case in ipairs {
      { "comment HINT-1 " .. bad, "the comment is not valid UTF-8 text (byte 5 of 10 is not)" },
      { "answer HINT-1 " .. bad, "the answer is not valid UTF-8 text (byte 5 of 10 is not)" },
      { "answer HINT-1 --deny " .. bad, "the reason is not valid UTF-8 text (byte 5 of 10 is not)" },
      { "answer HINT-1 --approve " .. bad, "the note is not valid UTF-8 text (byte 5 of 10 is not)" },
      { "cancel HINT-1 " .. bad, "the reason is not valid UTF-8 text (byte 5 of 10 is not)" },
      { "cancel HINT-1 " .. long, "the reason is 4097 characters, over the 4096 it may have" },
      { "retry HINT-1 " .. bad, "the note is not valid UTF-8 text (byte 5 of 10 is not)" },
      { "retry HINT-1 " .. long, "the note is 4097 characters, over the 4096 it may have" },
      { "bug R " .. bad, "the text is not valid UTF-8 text (byte 5 of 10 is not)" },
      { "bug R ok --body " .. bad, "--body is not valid UTF-8 text (byte 5 of 10 is not)" },
    } do
      local r = H.orket(case[1], { cwd = dir })
      assert.equal(2, r.status, case[1] .. ": " .. r.stderr)
      assert.matches(case[2], r.stderr, 1, true)
    end
    local c = H.card_json(dir, "HINT-1")
    assert.equal(0, #c.comments)
    assert.equal("ready", c.card.status)
  end)
end)
