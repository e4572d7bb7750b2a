-- A run of a target whose issues are all finished: not refused (it still settles what main
-- owes), it says why it did nothing, at its end and in the journal that `orket log` reads.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"

local SCRIPT = [[return { rules = {
  { role = "coder", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "code_review" } } } } },
  { role = "integrity_guard", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "done" } } } } },
}, default = { content = "Nothing more to do." } }
]]

local function project()
  return F.scripted_project { name = "again", script = SCRIPT, epics = { ["a.json"] = [[
{ "id": "A", "name": "Again", "issues": [ { "id": "A-1", "summary": "Do it", "seat": "senior_developer" } ] }
]] } }
end

-- the JSON Lines of a command's stdout, the last of type kind
local function last_of(stdout, kind)
  local found
  for line in stdout:gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and type(ev) == "table" and ev.type == kind then found = ev end
  end
  return found
end

describe("a run of a target already done", function()
  after_each(H.cleanup)

  it("ends done, saying why it did nothing, and orket log shows it", function()
    local dir = project()
    local r = H.orket("run A --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.is_nil(last_of(r.stdout, "run_end").reason)
    assert.matches("\nrun done\n", H.orket("log 1", { cwd = dir }).stdout, 1, true)
    r = H.orket("run A --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local ended = last_of(r.stdout, "run_end")
    assert.same({ "done", "every issue of A (1) was already done when the run began" }, { ended.status, ended.reason })
    local log = H.orket("log 2", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    assert.matches("\nrun done: every issue of A (1) was already done when the run began\n", log.stdout, 1, true)
  end)
end)
