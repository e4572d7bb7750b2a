-- orket cancel end to end: a person ends a card without review, journaled as theirs with
-- the reason; the run whose target holds it says so; an agent's cancel is refused.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local card = F.card

local function call(name, args) return string.format("{ name = %q, arguments = %s }", name, args) end

-- the coder tries to cancel its card first, then hands it in; the reviewer approves
local SCRIPT = [[return { rules = {
  { role = "coder", card = "C-1", sequence = {
    { tool_calls = { ]] .. call("update_issue_status", '{ status = "canceled", note = "too hard" }') .. [[ } },
    { tool_calls = { ]] .. call("update_issue_status", '{ status = "code_review" }') .. [[ } } } },
  { role = "integrity_guard", reply = { tool_calls = { ]] .. call("update_issue_status", '{ status = "done" }') .. [[ } } },
}, default = { content = "Nothing more to do." } }
]]

local function project()
  return F.scripted_project { name = "cancel", script = SCRIPT, epics = { ["c.json"] = [[
{ "id": "C", "name": "Cancel", "issues": [
  { "id": "C-1", "summary": "Do it", "seat": "senior_developer" },
  { "id": "C-2", "summary": "Drop it", "seat": "senior_developer" } ] }
]] } }
end

describe("orket cancel", function()
  after_each(H.cleanup)

  it("cancels a card as the local operator, and the run says which cards were canceled", function()
    local dir = project()
    local r = H.orket("cancel C-2 'no longer needed'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("C-2 is canceled\n", r.stdout)
    local c = card(dir, "C-2")
    assert.equal("canceled", c.status)
    -- the command acts as the local operator (local:USER), and says so
    assert.matches("^acting as the local operator %(local:", (r.stderr:gsub("^orket: ", "")))
    assert.matches("^local:[%w._-]+: Canceled: no longer needed$", c.comments[1].author .. ": " .. c.comments[1].body)
    local moved = c.history[#c.history]
    for _, ev in ipairs(c.history) do if ev.kind == "transition" then moved = ev end end
    assert.same({ c.comments[1].author, "person", "no longer needed" }, { moved.actor, moved.data.by, moved.data.note })

    r = H.orket("run C --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local last
    for line in r.stdout:gmatch("[^\n]+") do last = cjson.decode(line) end
    assert.equal("run_end", last.type)
    assert.equal("done", last.status)
    assert.same({ "C-2 (canceled by " .. moved.actor .. ": no longer needed)" }, last.canceled)
    -- the coder's own cancel was refused: its card was reviewed and done, and so is the epic
    assert.equal("done", card(dir, "C-1").status)
    assert.equal("done", card(dir, "C").status)
  end)

  it("refuses without a reason, an unknown card and a finished one", function()
    local dir = project()
    local r = H.orket("cancel C-1", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("cancel needs a reason", r.stderr)
    r = H.orket("cancel", { cwd = dir })
    assert.equal(2, r.status)
    r = H.orket("cancel NOPE 'why'", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("no card \"NOPE\"", r.stderr)
    r = H.orket("cancel C 'the whole epic'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("C is canceled, and the 2 issues under it\n", r.stdout)
    r = H.orket("cancel C-1 'again'", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("already canceled", r.stderr)
    assert.matches("\n  cancel ", H.orket("help").stdout)
  end)

  it("says where a done card is archived, since no command archives", function()
    local dir = project()
    assert.equal(0, H.orket("cancel C-2 'not needed'", { cwd = dir }).status)
    assert.equal(0, H.orket("run C", { cwd = dir }).status)
    assert.equal("done", card(dir, "C").status)
    local r = H.orket("cancel C 'too late'", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("it may only go to archived (file a new card to reopen the work); a person archives it on "
      .. "orket serve's board, or with POST /v1/cards/C/move {\"to\":\"archived\"} (docs/serve.md)", r.stderr, 1, true)
  end)
end)
