-- The "changes" project of the board's change and violation tests (the API end to end and
-- in the browser): the scripted coder of CHG-1 tries to write .git/config (a policy
-- violation), writes notes.txt and a binary data.bin, and the reviewer takes it to done
-- (merged into main); CHG-2's coder writes b.txt and its review never ends (blocked,
-- unmerged). make() -> the project's directory, imported and run once.
local H = require "tests.helpers"

local M = {}

local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", card = "CHG-1", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = ".git/config", content = "[core]\n" }),
    call("write_file", { path = "notes.txt", content = "hello\nworld\n" }),
    call("write_file", { path = "data.bin", content = "\0\1\2binary" }) } } },
  { role = "coder", card = "CHG-2", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "b.txt", content = "from B\n" }) } } },
  { role = "coder", match = '"path"', reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", card = "CHG-1", match = "^Issue ", reply = { tool_calls = {
    call("update_issue_status", { status = "done" }) } } },
}, default = { content = "Nothing more to do." } }
]]

function M.make()
  local dir = H.tmpdir()
  for _, d in ipairs { "epics", "workspace" } do os.execute("mkdir -p " .. H.quote(dir .. "/" .. d)) end
  H.write(dir .. "/orket.lua", [[
name = "changes"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = {
  senior_developer = { roles = { "coder" } },
  integrity_guard = { roles = { "integrity_guard" } },
}
]])
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/epics/chg.json", [[
{ "id": "CHG", "name": "Changes", "issues": [
  { "id": "CHG-1", "summary": "Write the notes", "seat": "senior_developer" },
  { "id": "CHG-2", "summary": "Write b", "seat": "senior_developer" } ] }
]])
  require("tests.backends").project(dir)
  local r = H.orket("import", { cwd = dir })
  if r.status ~= 0 then error("orket import failed: " .. tostring(r.stderr), 2) end
  r = H.orket("run CHG --json", { cwd = dir })
  -- CHG-2's review never ends, so the run fails; CHG-1 is done
  if r.status == 0 or not r.stdout:find('"status":"failed"', 1, true) then
    error("the run did not end as the fixture expects: " .. tostring(r.stdout) .. tostring(r.stderr), 2)
  end
  return dir
end

return M
