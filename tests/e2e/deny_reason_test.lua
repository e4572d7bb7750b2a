-- End to end: a denied call says why. The `tool` event of `orket run --json` carries the
-- gate's reason (cut at 300 bytes) and the rule (file:line) beside code and denied; a held
-- call its rule and held. On a terminal, a dumb one too, the run's summary says how many
-- calls were denied and where `orket card` shows why.
local H = require "tests.helpers"
local cjson = require "cjson"

local PTY = H.BIN:gsub("orket$", "ptydrive")

local function project()
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/policies"))
  H.write(dir .. "/orket.lua", [[
name = "t"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
concurrency = 1
]])
  H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "docs/a.md", content = "a" }),
    call("write_file", { path = "docs/b.md", content = "b" }),
    call("write_file", { path = "long.txt", content = "c" }),
    call("write_file", { path = "src/ok.txt", content = "ok" }) } } },
  { role = "coder", match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "done" } }
]])
  H.write(dir .. "/policies/scope.lua", 'deny { tool = "write_file", path = "docs/**", reason = "docs are the writers\'" }\n'
    .. 'deny { tool = "write_file", path = "long.txt", reason = "' .. string.rep("x", 1000) .. '" }\n')
  H.write(dir .. "/epics/one.json", [[
{ "id": "ONE", "issues": [ { "id": "ONE-1", "summary": "write", "seat": "dev" } ] }
]])
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

describe("a denied call", function()
  after_each(H.cleanup)

  it("carries its reason and rule in the run's JSON Lines", function()
    local dir = project()
    local r = H.orket("run ONE --json", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local denied = {}
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.type == "tool" and ev.denied then denied[#denied + 1] = ev end
    end
    assert.equal(3, #denied)
    assert.equal("POLICY_DENY", denied[1].code)
    assert.equal("policies/scope.lua:1", denied[1].rule)
    assert.equal("write_file: docs are the writers' (policy policies/scope.lua:1)", denied[1].reason)
    assert.equal("policies/scope.lua:2", denied[3].rule)
    -- a long reason is cut, the event stays small
    assert.matches("^write_file: xxxx.-%.%.%. %(%d+ bytes%)$", denied[3].reason)
    assert.is_true(#denied[3].reason < 340)
  end)

  it("is counted in the summary of a run on a dumb terminal", function()
    local dir = project()
    H.write(dir .. "/steps", "expect orket card ONE-1 shows why\n")
    local p = io.popen(string.format("cd %s && env NO_COLOR= TERM=dumb %s -t 30 -- %s run ONE <steps 2>&1",
      H.quote(dir), H.quote(PTY), H.quote(H.BIN)))
    local out = p:read("a")
    p:close()
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.matches("3 calls denied: orket card ONE%-1 shows why", out)
    assert.is_nil(out:find("\27", 1, true), out)
  end)
end)
