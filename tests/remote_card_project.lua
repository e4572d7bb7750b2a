-- What the e2e tests of a card's branch on a remote start from: a project of one card, K-1,
-- whose scripted team writes k1.txt, hands it in and has it approved, with git.remote set.
local H = require "tests.helpers"
local cjson = require "cjson"

local M = {}

M.SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "K-1", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "k1.txt", content = "one\n" }) } } },
  { match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

--- make(dir, name, remote): the project in dir (its epics imported), named name, pushing to remote
function M.make(dir, name, remote)
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/orket.lua", string.format([[
name = %q
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
git = { remote = %q }
]], name, remote))
  H.write(dir .. "/script.lua", M.SCRIPT)
  H.write(dir .. "/epics/k.json", cjson.encode { id = "K", name = "K", description = "k",
    issues = { { id = "K-1", summary = "Write k1.txt", seat = "senior_developer" } } })
  local r = H.orket("import", { cwd = dir })
  assert(r.status == 0, r.stderr .. r.stdout)
  return dir
end

return M
