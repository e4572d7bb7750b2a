-- `orket init` on a folder whose workspace/ already holds a team's files (its repository, or
-- files init makes one of): the example epic's cards write files of their own (README.md)
-- into main, so init makes none there, and the next step it prints (write an epic, import,
-- run it) leaves the team's README.md on main as the team wrote it. A fresh project, and an
-- empty workspace/, still get the example (the quick start).
local H = require "tests.helpers"

local GC = require "tests.gitcards"
local sh, git = GC.sh, GC.git

local TEAM_README = "# Payments service\n\nHow to build: make.\n"

-- a project folder dir whose workspace/ is a team's repository on main holding README.md
local function team_repo(dir)
  local ws = dir .. "/workspace"
  sh("mkdir -p " .. H.quote(ws) .. " && cd " .. H.quote(ws) .. " && git init -q -b main"
    .. " && git config user.email a@b && git config user.name A && printf %s " .. H.quote(TEAM_README)
    .. " > README.md && echo 'package main' > main.go && git add -A && git commit -qm init")
  return ws
end

-- The team's first epic and the scripted model's answers for it (a stand-in for the real
-- model the printed step asks for): DOCS-1 writes docs/payments.md.
local EPIC = [[{ "id": "DOCS", "name": "Docs", "issues": [
  { "id": "DOCS-1", "summary": "Describe the service", "description": "Write docs/payments.md.",
    "acceptance": ["docs/payments.md exists"] } ] }]]
local SCRIPT = [[
local function call(name, args) return { name = name, arguments = args } end
return {
  rules = {
    { role = "coder", card = "DOCS-1", match = "^Issue ", reply = { tool_calls = {
      call("write_file", { path = "docs/payments.md", content = "Payments.\n" }),
      call("add_issue_comment", { body = "Wrote docs/payments.md." }) } } },
    { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
    { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
  },
  default = { content = "Nothing more to do." },
}
]]

-- the command of init's "next:" line (what follows its last ", then "), run by a shell in
-- the folder init ran in, after doing what the line asks first: the epic written into
-- epics/, and its id given for EPIC -> the shell's output, exit status
local function follow(out, top, project)
  local line = assert(out:match("\nnext: ([^\n]+)\n$"), out)
  local command = line:match(".*, then (.+)$") or line
  if command:find("EPIC", 1, true) then
    H.write(project .. "/epics/docs.json", EPIC)
    H.write(project .. "/script.lua", SCRIPT)
    command = command:gsub("EPIC", "DOCS")
  end
  local p = io.popen("cd " .. H.quote(top) .. " && " .. command .. " 2>&1; echo \"rc=$?\"")
  local text = p:read("a")
  p:close()
  return text, tonumber(text:match("rc=(%d+)\n$"))
end

describe("orket init on a team's repository", function()
  after_each(H.cleanup)

  it("makes no example epic, and its next step keeps the team's README.md on main", function()
    local top = H.tmpdir()
    local dir = top .. "/p"
    local ws = team_repo(dir)
    local r = H.orket("init --yes p", { cwd = top })
    assert.equal(0, r.status, r.stderr)
    local out, rc = follow(r.stdout, top, dir)
    assert.equal(0, rc, out)
    -- the team's README.md is main's still, and the team's card's work is merged beside it
    assert.equal(TEAM_README, git(ws, "show main:README.md"))
    assert.equal(TEAM_README, H.read(ws .. "/README.md"))
    assert.equal("Payments.\n", git(ws, "show main:docs/payments.md"))
    local board = H.orket("board", { cwd = dir }).stdout
    assert.matches("DOCS%-1%s+done", board)
    assert.is_nil(board:find("START", 1, true), board)
    -- what init said: what it made, why no example, and the step for an adopted repository
    assert.matches("created a project in p: orket.lua, epics/ (empty), script.lua (offline model), workspace/ (git)\n",
      r.stdout, 1, true)
    assert.matches("workspace/ already holds files (your repository's): init wrote no example epic", r.stdout, 1, true)
    assert.matches("\nnext: write an epic into p/epics/ (docs/guide/adopting.md) and set models.default in "
      .. "orket.lua to a real model", r.stdout, 1, true)
    assert.matches(", then cd p && [^\n]* import && [^\n]* run EPIC\n$", r.stdout)
  end)

  it("takes files in a workspace/ without a repository, or only in main, for the team's too", function()
    local top = H.tmpdir()
    sh("mkdir -p " .. H.quote(top .. "/p/workspace") .. " && printf %s " .. H.quote(TEAM_README) .. " > "
      .. H.quote(top .. "/p/workspace/README.md"))
    local r = H.orket("init --yes .", { cwd = top .. "/p" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("init wrote no example epic", r.stdout, 1, true)
    assert.matches("\nnext: write an epic into epics/ [^\n]*, then [^\n]* import && [^\n]* run EPIC\n$", r.stdout)
    assert.is_nil(H.read(top .. "/p/epics/start.json"))
    assert.equal(TEAM_README, git(top .. "/p/workspace", "show main:README.md"))
    -- and main's files, all deleted from the working tree but for .git
    local ws = team_repo(top .. "/q")
    sh("cd " .. H.quote(ws) .. " && rm README.md main.go")
    r = H.orket("init --yes q", { cwd = top })
    assert.equal(0, r.status, r.stderr)
    assert.matches("init wrote no example epic", r.stdout, 1, true)
    assert.is_nil(H.read(top .. "/q/epics/start.json"))
  end)

  it("keeps the example for an empty workspace/, and a repository with no commit yet", function()
    local top = H.tmpdir()
    sh("mkdir -p " .. H.quote(top .. "/a/workspace") .. " " .. H.quote(top .. "/b/workspace")
      .. " && git -C " .. H.quote(top .. "/b/workspace") .. " init -q -b main")
    for _, p in ipairs { "a", "b" } do
      local r = H.orket("init --yes " .. p, { cwd = top })
      assert.equal(0, r.status, r.stderr)
      assert.matches("epics/start.json (epic START, 2 issues)", r.stdout, 1, true)
      assert.matches("\nnext: cd " .. p .. " && [^\n]* run START\n$", r.stdout)
      assert.is_nil(r.stdout:find("no example epic", 1, true))
    end
  end)

  it("on a terminal does not offer the example, and says why", function()
    local PTY = H.BIN:gsub("orket$", "ptydrive")
    local top = H.tmpdir()
    team_repo(top .. "/p")
    H.write(top .. "/steps", table.concat({
      "expect Project name [p]: ", "send ", "expect Model provider (scripted/ollama/openai) [scripted]: ", "send oll",
      "expect Model [qwen2.5-coder:7b]: ", "send ", "expect Forge (none/gitea/github) [none]: ", "send ",
      "expect Start from: empty (workspace/ already holds your repository's files: no example)", "expect next: write an epic into p/epics/",
    }, "\n") .. "\n")
    local p = io.popen(string.format("cd %s && env TERM=dumb %s -t 30 -- %s init p <%s 2>&1", H.quote(top),
      H.quote(PTY), H.quote(H.BIN), H.quote(top .. "/steps")))
    local out = p:read("a")
    p:close()
    assert.matches("%[ptydrive: ok, exit 0%]", out)
    assert.is_nil(out:find("(example/empty)", 1, true), out)
    -- a real model: nothing to say of the offline one
    assert.is_nil(out:find("models.default", 1, true), out)
    assert.is_nil(H.read(top .. "/p/epics/start.json"))
  end)
end)
