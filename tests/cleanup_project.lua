-- The "cleanup" project of the approval tests (end to end and in the browser): two issues
-- worked by the scripted model, and a policy that holds delete_file for a developer's
-- approval. make() -> the project's directory, imported.
local H = require "tests.helpers"

local M = {}

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "CLEAN-1", match = "Refused request", reply = { tool_calls = {
    call("add_issue_comment", { body = "Left old.txt in place as the developer asked." }),
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "coder", card = "CLEAN-1", match = "^Issue ", reply = { tool_calls = {
    call("delete_file", { path = "old.txt" }) } } },
  { role = "coder", card = "CLEAN-2", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "new.txt", content = "new\n" }) } } },
  { role = "coder", match = '"deleted"', reply = { tool_calls = {
    call("add_issue_comment", { body = "Deleted old.txt." }),
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "coder", match = '"path"', reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = {
    call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

function M.make()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "policies", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "cleanup"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = {
  senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" } },
}
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/policies/default.lua",
    [[ask { tool = "delete_file", path = "**", reason = "deleting files needs a developer's approval" }]] .. "\n")
  H.write(dir .. "/epics/clean.json", [[
{ "id": "CLEAN", "name": "Clean up", "issues": [
  { "id": "CLEAN-1", "summary": "Remove old.txt", "seat": "senior_developer" },
  { "id": "CLEAN-2", "summary": "Write new.txt", "seat": "senior_developer" } ] }
]])
  H.write(dir .. "/workspace/old.txt", "old\n")
  require("tests.backends").project(dir)
  local r = H.orket("import", { cwd = dir })
  if r.status ~= 0 then error("orket import failed: " .. tostring(r.stderr), 2) end
  return dir
end

return M
