-- End to end: what a program changes in a card's directory is judged at every commit that
-- walks it whole (orket.engine.progwrites), also where the turn's file tools wrote first, a
-- folder the program made a file (or a link) of, and leftovers no program of this run made.
local H = require "tests.helpers"
local cjson = require "cjson"
local uv = require "luv"

local card = H.card_json

-- A project with one issue ONE-1 whose coder follows `rules`; `files` in main's first commit
local function project(rules, files)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. H.quote(dir .. "/epics"))
  H.write(dir .. "/orket.lua", [[
name = "t"
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
concurrency = 1
verify = { commands = { "sh", "ln" } }
]])
  H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
]] .. rules .. [[
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "done" } }
]])
  for path, text in pairs(files) do
    local parent = (dir .. "/workspace/" .. path):match("^(.*)/")
    os.execute("mkdir -p " .. H.quote(parent))
    H.write(dir .. "/workspace/" .. path, text)
  end
  H.write(dir .. "/epics/one.json", '{ "id": "ONE", "issues": [ { "id": "ONE-1", "summary": "build it", "seat": "dev" } ] }\n')
  require("tests.backends").project(dir)
  assert.equal(0, H.orket("import", { cwd = dir }).status)
  return dir
end

local function main_has(dir, path) return H.read(dir .. "/workspace/" .. path) end

-- `orket run ONE` in dir, which ends 0 with ONE-1 done -> ONE-1's card
local function run_done(dir)
  local r = H.orket("run ONE", { cwd = dir })
  assert.equal(0, r.status, r.stdout .. r.stderr)
  local c = card(dir, "ONE-1")
  assert.equal("done", c.card.status, cjson.encode(c.comments))
  return c
end

local function by_path(c)
  local out = {}
  for _, v in ipairs(c.violations) do out[v.attempt:match("(%S+)$")] = v end
  return out
end

describe("a program's changes (touched paths, folders, leftovers)", function()
  after_each(H.cleanup)

  it("to a file the turn's write_file wrote: its deletion is judged as delete_file", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = "README.md", content = "readme2\n" }),
    call("run_command", { argv = { "sh", "-c", "rm README.md" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], { ["README.md"] = "readme\n" })
    local c = run_done(dir)
    -- the deletion asks (the default policy), a program's cannot wait: put back as the
    -- branch had it before the turn (the turn's write_file and the rm both left out)
    assert.equal("readme\n", main_has(dir, "README.md"))
    local v = assert(by_path(c)["README.md"], cjson.encode(c.violations))
    assert.equal("POLICY_ASK", v.rule)
    assert.matches(" deleted README%.md$", v.attempt)
  end)

  it("to a move's destination: the source's deletion is judged once the destination is gone", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("move_file", { from = "README.md", to = "docs/README.md" }),
    call("run_command", { argv = { "sh", "-c", "rm docs/README.md" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], { ["README.md"] = "readme\n" })
    local c = run_done(dir)
    -- the move was judged as a move; the program's rm of where it went deleted the file,
    -- which the default policy asks about: put back, not merged as gone
    assert.equal("readme\n", main_has(dir, "README.md"))
    local v = assert(by_path(c)["README.md"], cjson.encode(c.violations))
    assert.equal("POLICY_ASK", v.rule)
  end)

  it("that make a file of a folder the branch has: the folder and what it held are put back", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("run_command", { argv = { "sh", "-c", "rm -rf .github/workflows && echo x > .github/workflows && echo ok > b.txt" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], { [".github/workflows/ci.yml"] = "old ci\n", [".github/workflows/sub/deep.yml"] = "deep\n", ["README.md"] = "r\n" })
    local c = run_done(dir)
    assert.equal("old ci\n", main_has(dir, ".github/workflows/ci.yml"))
    assert.equal("deep\n", main_has(dir, ".github/workflows/sub/deep.yml"))
    assert.equal("ok\n", main_has(dir, "b.txt"))
    local v = by_path(c)
    assert.is_truthy(v[".github/workflows"], cjson.encode(c.violations))
    assert.is_truthy(v[".github/workflows/ci.yml"])
    assert.is_truthy(v[".github/workflows/sub/deep.yml"])
  end)

  it("that make a link of a folder: put back without anything outside the card's directory touched", function()
    local outside = H.tmpdir()
    H.write(outside .. "/keep.txt", "keep\n")
    os.execute("mkdir -p " .. H.quote(outside .. "/workflows"))
    H.write(outside .. "/workflows/ci.yml", "outside ci\n")
    local dir = project(string.format([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("run_command", { argv = { "sh", "-c", "rm -rf .github && ln -s %s .github" } }) } } },
  { role = "coder", match = '"exit":0', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], outside), { [".github/workflows/ci.yml"] = "old ci\n", ["README.md"] = "r\n" })
    local c = run_done(dir)
    assert.equal("old ci\n", main_has(dir, ".github/workflows/ci.yml"))
    assert.equal("directory", uv.fs_lstat(dir .. "/workspace/.github").type)
    assert.equal("keep\n", H.read(outside .. "/keep.txt"))
    assert.equal("outside ci\n", H.read(outside .. "/workflows/ci.yml"))
  end)

  it("left in the card's directory before this run: judged at the next run's commit", function()
    local dir = project([[
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("write_file", { path = ".github/workflows/ci.yml", content = "approved ci\n" }) } } },
  { role = "coder", match = '"path":"%.github', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
]], { ["README.md"] = "readme\n" })
    local r = H.orket("run ONE", { cwd = dir })
    assert.equal(3, r.status, r.stdout .. r.stderr) -- waits for the approval of the CI write
    -- what a killed run's program (or another worker's) left in the card's directory
    local wt = dir .. "/.orket/worktrees/ONE-1"
    assert.is_truthy(uv.fs_stat(wt))
    os.execute("mkdir -p " .. H.quote(wt .. "/.github/workflows"))
    H.write(wt .. "/.github/workflows/evil.yml", "steal\n")
    os.remove(wt .. "/README.md")
    assert.equal(0, H.orket("answer ONE-1 --request 1 --approve", { cwd = dir }).status)
    r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local c = card(dir, "ONE-1")
    assert.equal("done", c.card.status)
    assert.equal("approved ci\n", main_has(dir, ".github/workflows/ci.yml"))
    assert.is_nil(main_has(dir, ".github/workflows/evil.yml"))
    assert.equal("readme\n", main_has(dir, "README.md"))
    local v = by_path(c)
    assert.is_truthy(v[".github/workflows/evil.yml"], cjson.encode(c.violations))
    assert.matches("^a program run in the card's directory", v[".github/workflows/evil.yml"].attempt)
    assert.is_truthy(v["README.md"])
  end)
end)
