-- A merge into main that fails because workspace/'s repository lacks an object the merge
-- reads (libgit2's "object not found": history a shallow or partial clone never fetched, a
-- damaged repository) is no tool error a model can put right: it was handed to the reviewer
-- as one, turn after turn, until the card was blocked with "raise the budget", with nothing
-- about git on it. The card is blocked (`system`) at once instead, git's words in its comment.
local H = require "tests.helpers"
local cjson = require "cjson"

local GC = require "tests.gitcards"
local sh, git = GC.sh, GC.git

describe("a merge that fails for an object the repository lacks", function()
  after_each(function() H.cleanup() end)

  it("blocks the card as the system's, naming git's error, after one review turn", function()
    local dir = H.tmpdir() .. "/p"
    local ws = dir .. "/workspace"
    -- a team's repository of two commits, its objects loose
    sh("mkdir -p " .. H.quote(ws .. "/src") .. " && cd " .. H.quote(ws) .. " && git init -q -b main"
      .. " && git config user.email a@b && git config user.name A && echo one > src/f1.c && git add -A"
      .. " && git commit -qm one && echo two > src/f2.c && git add -A && git commit -qm two")
    sh("mkdir -p " .. H.quote(dir .. "/epics"))
    H.write(dir .. "/epics/adopt.json", [[{ "id": "ADOPT", "name": "Adopt", "issues": [
      { "id": "ADOPT-1", "summary": "Edit f1", "seat": "senior_developer", "description": "Edit src/f1.c.",
        "acceptance": ["src/f1.c is edited"] },
      { "id": "ADOPT-2", "summary": "Add f4", "seat": "senior_developer", "description": "Add src/f4.c.",
        "acceptance": ["src/f4.c exists"] } ] }]])
    assert.equal(0, H.orket("init --yes .", { cwd = dir }).status)
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
local function work(card, path, content)
  return { role = "coder", card = card, match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = path, content = content }), call("add_issue_comment", { body = "Done." }) } } }
end
return {
  rules = {
    work("ADOPT-1", "src/f1.c", "one, edited\n"),
    work("ADOPT-2", "src/f4.c", "four\n"),
    { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
    { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
  },
  default = { content = "Nothing more to do." },
}
]])
    -- the first commit's object gone: what a merge base search past the second one reads
    local first = git(ws, "rev-parse main~1"):match("%x+")
    sh("rm -f " .. H.quote(ws .. "/.git/objects/" .. first:sub(1, 2) .. "/" .. first:sub(3)))
    -- both cards branch from main before either merges: the second merge is a real one
    local r = H.orket("run ADOPT --concurrency 2", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    local blocked, other
    for _, id in ipairs { "ADOPT-1", "ADOPT-2" } do
      local c = cjson.decode(H.orket("card " .. id .. " --json", { cwd = dir }).stdout)
      if c.card.status == "blocked" then blocked = c else other = c end
    end
    assert.truthy(blocked, r.stdout)
    assert.equal("done", other.card.status)
    assert.equal("system", blocked.card.wait_reason)
    local last = blocked.comments[#blocked.comments].body
    assert.matches("merge base: object not found", last, 1, true)
    assert.matches("orket retry " .. blocked.card.id, last, 1, true)
    assert.is_nil(last:find("raise the budget", 1, true), last)
    -- the stall report's next step is the repository's repair, not a role's or the model's
    local stall
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.type == "stall" then stall = ev end
    end
    local next_step
    for _, c in ipairs(stall and stall.cards or {}) do if c.card == blocked.card.id then next_step = c.next end end
    assert.equal("put workspace/'s repository right as the card's last comment says, then orket retry "
      .. blocked.card.id, next_step)
    -- one review turn, not the budget's worth
    local reviews = 0
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.type == "turn_start" and ev.card == blocked.card.id and ev.phase == "review" then reviews = reviews + 1 end
    end
    assert.equal(1, reviews, r.stdout)
  end)
end)
