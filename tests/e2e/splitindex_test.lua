-- A person whose global git config has core.splitIndex = true (a common big-repository
-- setting): every git command of theirs in workspace/ writes main's index split, which
-- libgit2 cannot read, so main's view cannot follow Orket's merges. The run and `orket status`
-- name the setting and the commands that hold (the one-off `update-index --no-split-index`
-- is undone by the person's next git command), and say plainly that a commit made in
-- workspace/ meanwhile commits main's older files over the merges: its index still holds them.
local H = require "tests.helpers"

local GC = require "tests.gitcards"
local sh, git = GC.sh, GC.git

describe("a person's core.splitIndex = true", function()
  after_each(function() H.cleanup() end)

  it("is named with the commands that hold, and the commit that would undo the merges is warned of", function()
    local root = H.tmpdir()
    local home = root .. "/home"
    sh("mkdir -p " .. H.quote(home))
    H.write(home .. "/.gitconfig", "[user]\n\tname = A Person\n\temail = a@example.com\n[core]\n\tsplitIndex = true\n")
    local env = { HOME = home, GIT_CONFIG_NOSYSTEM = "1", XDG_CONFIG_HOME = home .. "/.config" }
    local function in_home(cmd) return "export HOME=" .. H.quote(home) .. " GIT_CONFIG_NOSYSTEM=1; " .. cmd end
    assert.equal(0, H.orket("init --yes p", { cwd = root, env = env }).status)
    local dir = root .. "/p"
    local ws = dir .. "/workspace"
    local r = H.orket("run START", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    -- any git command of the person's writes main's index, split under the setting
    sh(in_home("git -C " .. H.quote(ws) .. " add -A"))
    assert.truthy(H.read(ws .. "/.git/index"):find("link", 13, true))
    -- another epic whose card changes hello.txt
    H.write(dir .. "/epics/more.json", [[{ "id": "MORE", "name": "More", "issues": [
      { "id": "MORE-1", "summary": "Change the greeting", "seat": "senior_developer",
        "description": "Make hello.txt warmer.", "acceptance": ["hello.txt is warmer"] } ] }]])
    H.write(dir .. "/script.lua", H.read(dir .. "/script.lua"):gsub("rules = {", [[rules = {
    { role = "coder", card = "MORE-1", match = "^Issue ", reply = { tool_calls = {
      { name = "write_file", arguments = { path = "hello.txt", content = "A warm hello.\n" } },
      { name = "add_issue_comment", arguments = { body = "Warmer." } } } } },]], 1))
    assert.equal(0, H.orket("import", { cwd = dir, env = env }).status)
    r = H.orket("run MORE", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    local fix = "git config --global core.splitIndex false (or, for workspace/ alone, git -C workspace config "
      .. "core.splitIndex false), then git -C workspace update-index --no-split-index makes it readable for good"
    assert.matches('"action":"view_stale"', r.stdout, 1, true)
    assert.matches("core.splitIndex is true in " .. home .. "/.gitconfig (your global git config)", r.stdout, 1, true)
    assert.matches(fix, r.stdout, 1, true)
    local s = H.orket("status", { cwd = dir, env = env })
    assert.equal(0, s.status, s.stderr)
    assert.matches("workspace/ is behind main: its refresh failed", s.stdout, 1, true)
    assert.matches(fix, s.stdout, 1, true)
    -- the trap, said plainly: the person's index still holds main's older files
    assert.matches("a commit made in workspace/ before then commits main's older files, which its index still "
      .. "holds, over those merges", s.stdout, 1, true)
    assert.equal("M  hello.txt\n", git(ws, "status --short --untracked-files=no"))

    -- the commands named hold: a later git command no longer splits the index, and the next
    -- refresh (here a resume with every run done) catches up
    sh(in_home("cd " .. H.quote(dir) .. " && git config --global core.splitIndex false"
      .. " && git -C workspace update-index --no-split-index && git -C workspace add -A"))
    assert.equal("DIRC", H.read(ws .. "/.git/index"):sub(1, 4))
    assert.is_nil(H.read(ws .. "/.git/index"):find("link", 13, true))
    r = H.orket("resume", { cwd = dir, env = env })
    assert.matches("workspace/ caught up with main", r.stderr, 1, true)
    assert.equal("A warm hello.\n", H.read(ws .. "/hello.txt"))
    assert.equal("", git(ws, "status --short"))
  end)
end)
