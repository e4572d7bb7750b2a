-- End to end: a file the turn's file tools wrote that a .gitignore rule keeps out of the
-- commit is named in the turn's end (git_skipped) and in `orket log` ("left out"), also when
-- the turn ran a program, so that its commit walks the whole directory (docs/git.md, What git
-- reads of a worktree). A program's own output cannot be named: it gets no note.
local H = require "tests.helpers"
local cjson = require "cjson"

local NOTE = " (matched by a .gitignore rule: not committed)"

-- A project with one issue IGN-1 whose coder follows `rules` (scripted rules, `call`
-- defined), with verify.commands = { commands }; workspace/ holds a .gitignore that keeps
-- build/ and *.log out.
local function project(rules, commands)
  local dir = H.tmpdir()
  H.write(dir .. "/orket.lua", [[
name = "t"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
verify = { commands = { "]] .. (commands or "sh") .. [[" } }
]])
  H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
]] .. rules .. [[
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "done" } }
]])
  os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " " .. H.quote(dir .. "/workspace"))
  H.write(dir .. "/workspace/.gitignore", "build/\n*.log\n")
  H.write(dir .. "/epics/ign.json", [[{ "id": "IGN", "issues": [ { "id": "IGN-1", "summary": "build", "seat": "dev" } ] }]])
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

-- a coder's first turn making calls, then handing in
local function first_turn(calls)
  return [[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
]] .. calls .. [[
    call("update_issue_status", { status = "code_review" }) } } },
]]
end

-- the stored end of IGN-1's turn (default 1, the coder's first), as `orket log --json` gives it
local function coder_turn_end(dir, turn)
  local log = H.orket("log --json", { cwd = dir })
  assert.equal(0, log.status, log.stderr)
  for _, ev in ipairs(cjson.decode(log.stdout).events) do
    if ev.kind == "turn_end" and ev.card == "IGN-1" and ev.data.turn == (turn or 1) then return ev.data end
  end
  error("no turn_end of IGN-1 turn " .. (turn or 1) .. " in\n" .. log.stdout)
end

describe("a turn's ignored files", function()
  after_each(H.cleanup)

  it("are noted when the turn also ran a program (the commit walks the whole directory)", function()
    local dir = project(first_turn [[
    call("write_file", { path = "build/w.o", content = "object\n" }),
    call("write_file", { path = "q.log", content = "log\n" }),
    call("write_file", { path = "kept.txt", content = "kept\n" }),
    call("run_command", { argv = { "sh", "-c", "mkdir -p build && echo prog > build/prog.o && echo made > made.txt" } }),
]])
    local r = H.orket("run IGN --json", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local ev = coder_turn_end(dir)
    -- the file tools' paths are named; the program's build/prog.o cannot be (docs/git.md)
    assert.same({ "build/w.o" .. NOTE, "q.log" .. NOTE }, ev.git_skipped)
    -- and in the run's own turn_end event, which the live view says on the screen
    local said
    for line in r.stdout:gmatch("[^\n]+") do
      local e = cjson.decode(line)
      if e.type == "turn_end" and e.card == "IGN-1" and e.git_skipped then said = e.git_skipped end
    end
    assert.same({ "build/w.o" .. NOTE, "q.log" .. NOTE }, said)
    local log = H.orket("log", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    assert.matches("%[git%] left out: build/w%.o %(matched by a %.gitignore rule: not committed%), q%.log", log.stdout)
    -- what was not ignored, the tools' and the program's, is committed and merged
    assert.equal("kept\n", H.read(dir .. "/workspace/kept.txt"))
    assert.equal("made\n", H.read(dir .. "/workspace/made.txt"))
    assert.is_nil(H.read(dir .. "/workspace/build/w.o"))
  end)

  it("are noted when only the file tools wrote (the commit stages the named paths)", function()
    local dir = project(first_turn [[
    call("write_file", { path = "build/y.o", content = "object\n" }),
    call("write_file", { path = "z.log", content = "log\n" }),
    call("write_file", { path = "seven.txt", content = "seven\n" }),
]])
    local r = H.orket("run IGN", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local ev = coder_turn_end(dir)
    assert.same({ "build/y.o" .. NOTE, "z.log" .. NOTE }, ev.git_skipped)
    assert.equal("seven\n", H.read(dir .. "/workspace/seven.txt"))
  end)

  it("are noted in a turn after an approval, in a run resumed by another process", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "build/a.o", content = "a\n" }),
    call("run_command", { argv = { "touch", "made.txt" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = {
    call("write_file", { path = "build/b.o", content = "b\n" }),
    call("update_issue_status", { status = "code_review" }) } } },
]], "make")
    local r = H.orket("run IGN", { cwd = dir })
    assert.equal(3, r.status, r.stdout .. r.stderr) -- touch waits for a developer's approval
    assert.same({ "build/a.o" .. NOTE }, coder_turn_end(dir, 1).git_skipped)
    assert.equal(0, H.orket("answer IGN-1 --approve", { cwd = dir }).status)
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    -- the turn asked again wrote both, and ran the program: its commit walked
    assert.same({ "build/a.o" .. NOTE, "build/b.o" .. NOTE }, coder_turn_end(dir, 2).git_skipped)
    assert.equal("", H.read(dir .. "/workspace/made.txt"))
  end)
end)
