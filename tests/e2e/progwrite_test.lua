-- End to end: what a program changes in a card's directory (run_command) is judged at the
-- turn's commit as the file tools' writes are (orket.engine.progwrites). The default
-- policy's CI ask and a project's deny ... outside hold for a program's files as for
-- write_file: each path refused is put back as the branch has it (a new file removed, a
-- changed or deleted one restored), never reaches main, and is a policy violation naming
-- the program's call, which the agent reads in a comment; what the policies allow is
-- committed. A file a person approved as a write_file stays when a program runs after it.
local H = require "tests.helpers"
local cjson = require "cjson"

local card = H.card_json

-- A project with one issue ONE-1 whose coder follows `rules` (scripted rules, `call`
-- defined); `files` written into workspace/ (main's first commit); settings appended to
-- orket.lua; policies: {name = text} of policies/.
local function project(rules, o)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/policies"))
  H.write(dir .. "/orket.lua", [[
name = "t"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
concurrency = 1
verify = { commands = { "sh" } }
]])
  H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
]] .. rules .. [[
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "done" } }
]])
  for name, text in pairs(o.policies or {}) do H.write(dir .. "/policies/" .. name, text) end
  for path, text in pairs(o.files or {}) do
    local parent = (dir .. "/workspace/" .. path):match("^(.*)/")
    os.execute("mkdir -p " .. H.quote(parent))
    H.write(dir .. "/workspace/" .. path, text)
  end
  H.write(dir .. "/epics/one.json", string.format([[
{ "id": "ONE", "issues": [ { "id": "ONE-1", "summary": "build it", "seat": "dev"%s } ] }
]], o.verification and (', "verification": ' .. o.verification) or ""))
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function events(stdout)
  local out = {}
  for line in stdout:gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
  return out
end

-- main's file at path (its view, workspace/, follows main) | nil
local function main_has(dir, path) return H.read(dir .. "/workspace/" .. path) end

-- the card's branch's file at path | nil (the card's directory is parked once it is done)
local function branch_has(dir, path, card_id)
  local rc, out = H.sh("git -C " .. H.quote(dir .. "/workspace") .. " show " .. H.quote("orket/" .. (card_id or "ONE-1")
    .. ":" .. path))
  if rc ~= 0 then return nil end
  return out
end

-- the file's mode on the card's branch ("100755", "100644", "120000") | nil
local function branch_mode(dir, path)
  local rc, out = H.sh("git -C " .. H.quote(dir .. "/workspace") .. " ls-tree orket/ONE-1 -- " .. H.quote(path))
  if rc ~= 0 then return nil end
  return out:match("^(%d+)")
end

local function comment_by_orket(c, pattern)
  for _, m in ipairs(c.comments) do
    if m.author == "orket" and m.body:find(pattern) then return m.body end
  end
end

describe("a program's changes in a card's directory", function()
  after_each(H.cleanup)

  it("are judged as write_file and delete_file: the CI ask puts back the workflows, the rest is committed", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("run_command", { argv = { "sh", "-c", "mkdir -p .github/workflows src && "
      .. "printf 'steal: $ORKET_API_KEY\n' > .github/workflows/orket.yml && "
      .. "printf 'changed\n' > .github/workflows/ci.yml && printf 'built\n' > src/out.txt" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], { files = { [".github/workflows/ci.yml"] = "old ci\n", ["README.md"] = "readme\n" } })
    local r = H.orket("run ONE --json", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local c = card(dir, "ONE-1")
    assert.equal("done", c.card.status)
    -- main: the program's allowed file, the CI file as it was, no new workflow
    assert.equal("built\n", main_has(dir, "src/out.txt"))
    assert.equal("old ci\n", main_has(dir, ".github/workflows/ci.yml"))
    assert.is_nil(main_has(dir, ".github/workflows/orket.yml"))
    -- nor on the card's branch: put back in its directory, so no later commit takes them
    assert.equal("old ci\n", branch_has(dir, ".github/workflows/ci.yml"))
    assert.is_nil(branch_has(dir, ".github/workflows/orket.yml"))
    -- two violations, each naming the program's call, the path, the rule and why
    assert.equal(2, #c.violations)
    local by = {}
    for _, v in ipairs(c.violations) do by[v.attempt:match("(%S+)$")] = v end
    local v = assert(by[".github/workflows/orket.yml"], cjson.encode(c.violations))
    assert.equal("POLICY_ASK", v.rule)
    -- (the call cut at 200 bytes)
    assert.matches('^run_command {"argv":%["sh","%-c","mkdir %-p .- wrote %.github/workflows/orket%.yml$', v.attempt)
    assert.matches("CI configuration runs with the forge's secrets", v.reason)
    assert.matches("policy orket:policies/default.lua:%d+", v.reason)
    assert.matches("write_file", v.remedy)
    assert.equal("dev", v.seat)
    assert.is_truthy(by[".github/workflows/ci.yml"])
    -- the agent is told, in a comment its next turn reads
    local note = comment_by_orket(c, "put back as the branch has them")
    assert.is_truthy(note, cjson.encode(c.comments))
    assert.matches("%.github/workflows/orket%.yml: needs a developer's approval", note)
    assert.matches("write it with write_file", note)
    -- the run's output says it, with the rule
    local said
    for _, ev in ipairs(events(r.stdout)) do
      if ev.type == "program_writes_denied" then said = ev end
    end
    assert.is_table(said)
    assert.equal("ONE-1", said.card)
    assert.equal(2, said.count)
    assert.matches("^orket:policies/default.lua:%d+$", said.paths[1].rule)
  end)

  it("hold a project's deny ... outside, and put back a file the program deleted", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("run_command", { argv = { "sh", "-c", "mkdir -p etc src && echo root > etc/passwd.txt && "
      .. "echo ok > src/a.txt && rm README.md && chmod -x run.sh && echo changed >> run.sh" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], {
      files = { ["README.md"] = "readme\n", ["run.sh"] = "#!/bin/sh\necho run\n" },
      policies = { ["scope.lua"] = 'deny { role = "coder", tool = "write_file", outside = { "src/**" }, '
        .. 'reason = "coders change src/ only" }\n' },
    })
    os.execute("chmod +x " .. H.quote(dir .. "/workspace/run.sh"))
    -- run.sh's executable bit is in main's first commit
    assert.equal(0, H.orket("validate", { cwd = dir }).status)
    local r = H.orket("run ONE", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local c = card(dir, "ONE-1")
    assert.equal("done", c.card.status)
    assert.equal("ok\n", main_has(dir, "src/a.txt"))
    assert.is_nil(main_has(dir, "etc/passwd.txt"))
    assert.equal("readme\n", main_has(dir, "README.md")) -- deleted: delete_file asks (the default)
    assert.equal("#!/bin/sh\necho run\n", main_has(dir, "run.sh"))
    local mode = require("luv").fs_stat(dir .. "/workspace/run.sh").mode
    assert.equal(tonumber("111", 8), mode & tonumber("111", 8)) -- put back executable, as main has it
    local rules = {}
    for _, v in ipairs(c.violations) do rules[v.attempt:match("(%S+)$")] = v end
    assert.equal("POLICY_DENY", rules["etc/passwd.txt"].rule)
    assert.matches("coders change src/ only %(policy policies/scope.lua:1%)", rules["etc/passwd.txt"].reason)
    assert.matches(" deleted README%.md$", rules["README.md"].attempt)
    assert.equal("POLICY_ASK", rules["README.md"].rule)
    assert.equal("POLICY_DENY", rules["run.sh"].rule)
    -- the card's directory holds the branch's run.sh again, executable
    assert.equal("100755", branch_mode(dir, "run.sh"))
    assert.equal("#!/bin/sh\necho run\n", branch_has(dir, "run.sh"))
  end)

  it("are judged after a kill between the program and the commit, when resume replays its call", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("run_command", { argv = { "sh", "-c", "mkdir -p .github/workflows && echo x > .github/workflows/k.yml" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], { files = { ["README.md"] = "readme\n" } })
    local r = H.orket("run ONE", { cwd = dir, env = { ORKET_FAULT = "after_tool:1" } })
    assert.equal(137, r.status, r.stdout .. r.stderr)
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local c = card(dir, "ONE-1")
    assert.equal("done", c.card.status)
    assert.is_nil(main_has(dir, ".github/workflows/k.yml"))
    assert.equal(1, #c.violations)
    assert.matches('^run_command {"argv":%["sh","%-c",.- wrote %.github/workflows/k%.yml$', c.violations[1].attempt)
  end)

  it("leave what the turn's file tools changed as they judged it: a move's source stays gone", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("move_file", { from = "draft.txt", to = "notes/final.txt" }),
    call("run_command", { argv = { "sh", "-c", "echo built > out.txt" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], { files = { ["draft.txt"] = "draft\n" } })
    local r = H.orket("run ONE", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local c = card(dir, "ONE-1")
    assert.equal("done", c.card.status)
    assert.is_nil(main_has(dir, "draft.txt")) -- no delete_file asked for it: the move was judged
    assert.equal("draft\n", main_has(dir, "notes/final.txt"))
    assert.equal("built\n", main_has(dir, "out.txt"))
    assert.same({}, c.violations)
  end)

  it("made by the issue's checks are judged at the next commit, the reviewer's", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "src/a.txt", content = "a\n" }) } } },
  { role = "coder", match = '"path"', reply = { tool_calls = { call("update_issue_status", { status = "ready_for_testing" }) } } },
]], { files = { ["README.md"] = "readme\n" },
      verification = '{ "command": ["sh", "-c", "mkdir -p .github/workflows && echo x > .github/workflows/v.yml && '
        .. 'echo report > report.txt"] }' })
    local r = H.orket("run ONE", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local c = card(dir, "ONE-1")
    assert.equal("done", c.card.status)
    assert.equal("a\n", main_has(dir, "src/a.txt"))
    assert.is_nil(main_has(dir, ".github/workflows/v.yml"))
    assert.equal("report\n", main_has(dir, "report.txt"))
    assert.equal(1, #c.violations)
    assert.equal("guard", c.violations[1].seat)
    assert.matches("^a program run in the card's directory %(the issue's checks, or one a turn before ran%) wrote "
      .. "%.github/workflows/v%.yml$", c.violations[1].attempt)
  end)

  it("keep a file a person approved as a write_file when a program runs after it", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = ".github/workflows/ci.yml", content = "approved ci\n" }) } } },
  { role = "coder", match = '"path":"%.github', reply = { tool_calls = {
    call("run_command", { argv = { "sh", "-c", "echo built > out.txt" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], { files = { ["README.md"] = "readme\n" } })
    local r = H.orket("run ONE", { cwd = dir })
    assert.equal(3, r.status, r.stdout .. r.stderr) -- waits for the approval of the CI write
    assert.equal(0, H.orket("answer ONE-1 --request 1 --approve", { cwd = dir }).status)
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local c = card(dir, "ONE-1")
    assert.equal("done", c.card.status)
    assert.equal("approved ci\n", main_has(dir, ".github/workflows/ci.yml"))
    assert.equal("built\n", main_has(dir, "out.txt"))
    assert.same({}, c.violations)
  end)
end)
