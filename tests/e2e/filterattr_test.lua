-- A team's repository under Git LFS (`*.bin filter=lfs`), adopted, on a machine whose git
-- runs the lfs filter (a stand-in for git-lfs in the person's ~/.gitconfig: its clean
-- command stores the content and writes an LFS pointer). Orket runs no filter driver, and a
-- card's new .bin went into main as its raw bytes, which git then showed as modified right
-- after the run. Now it is left out, the turn's record naming the path, the attribute and
-- the driver; a card's change to a tracked .bin blocks the card (`system`) with that reason.
local H = require "tests.helpers"
local cjson = require "cjson"

local GC = require "tests.gitcards"
local sh, git = GC.sh, GC.git

describe("a filter= attribute (Git LFS) in an adopted repository", function()
  after_each(function() H.cleanup() end)

  it("keeps a card's raw file out of main, says so, and blocks a card that changes a tracked one", function()
    local root = H.tmpdir()
    local home = root .. "/home"
    local dir = root .. "/p"
    local ws = dir .. "/workspace"
    sh("mkdir -p " .. H.quote(home .. "/lfs") .. " " .. H.quote(ws .. "/assets"))
    -- the stand-in: clean stores the content by its sha256 and prints a pointer; smudge gives it back
    H.write(home .. "/lfs-clean", "#!/bin/sh\nf=$(mktemp) && cat >\"$f\" && oid=$(sha256sum <\"$f\" | cut -d' ' -f1)"
      .. " && size=$(wc -c <\"$f\") && mv \"$f\" " .. home .. "/lfs/$oid"
      .. " && printf 'version https://git-lfs.github.com/spec/v1\\noid sha256:%s\\nsize %s\\n' \"$oid\" $size\n")
    H.write(home .. "/lfs-smudge", "#!/bin/sh\noid=$(sed -n 's/^oid sha256://p') && cat " .. home .. "/lfs/$oid\n")
    sh("chmod +x " .. H.quote(home .. "/lfs-clean") .. " " .. H.quote(home .. "/lfs-smudge"))
    H.write(home .. "/.gitconfig", "[user]\n\tname = A Person\n\temail = a@example.com\n[filter \"lfs\"]\n\tclean = "
      .. home .. "/lfs-clean\n\tsmudge = " .. home .. "/lfs-smudge\n\trequired = true\n")
    local env = { HOME = home, GIT_CONFIG_NOSYSTEM = "1", XDG_CONFIG_HOME = home .. "/.config" }
    local function in_home(cmd) return "export HOME=" .. H.quote(home) .. " GIT_CONFIG_NOSYSTEM=1; " .. cmd end
    sh(in_home("cd " .. H.quote(ws) .. " && git init -q -b main"
      .. " && printf '*.bin filter=lfs diff=lfs merge=lfs -text\\n' > .gitattributes"
      .. " && echo 'the old logo' > assets/old.bin && echo hi > notes.txt && git add -A && git commit -qm initial"))
    assert.matches("^version https://git%-lfs", git(ws, "cat-file -p main:assets/old.bin")) -- through the filter
    sh("mkdir -p " .. H.quote(dir .. "/epics"))
    H.write(dir .. "/epics/adopt.json", [[{ "id": "ADOPT", "name": "Adopt", "issues": [
      { "id": "ADOPT-1", "summary": "Add a logo", "seat": "senior_developer", "description": "Add assets/logo.bin.",
        "acceptance": ["assets/logo.bin exists"] },
      { "id": "ADOPT-2", "summary": "Change the old logo", "seat": "senior_developer", "depends_on": ["ADOPT-1"],
        "description": "Replace assets/old.bin.", "acceptance": ["assets/old.bin is new"] } ] }]])
    assert.equal(0, H.orket("init --yes .", { cwd = dir, env = env }).status)
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
local function work(card, files)
  local calls = {}
  for path, content in pairs(files) do calls[#calls + 1] = call("write_file", { path = path, content = content }) end
  calls[#calls + 1] = call("add_issue_comment", { body = "Done." })
  return { role = "coder", card = card, match = "^Issue ", reply = { tool_calls = calls } }
end
return {
  rules = {
    work("ADOPT-1", { ["assets/logo.bin"] = "binary-ish payload\n", ["credits.txt"] = "logo by us\n" }),
    work("ADOPT-2", { ["assets/old.bin"] = "the new old logo\n" }),
    { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
    { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
  },
  default = { content = "Nothing more to do." },
}
]])
    local r = H.orket("run ADOPT", { cwd = dir, env = env })
    -- the card's raw file is not in main, nor in workspace/; the rest of its work is
    assert.equal("logo by us\n", git(ws, "show main:credits.txt"))
    assert.equal("", git(ws, "ls-tree -r --name-only main -- assets/logo.bin"))
    local st = io.popen(in_home("git -C " .. H.quote(ws) .. " status --short"))
    assert.equal("", st:read("a")) -- git, whose filter runs, sees nothing changed
    st:close()
    local log = H.orket("log", { cwd = dir, env = env }).stdout
    assert.matches("[git] left out: assets/logo.bin (its attributes say filter=lfs: git commits it through the "
      .. "filter driver lfs, which Orket does not run: not committed)", log, 1, true)
    -- the tracked one: never committed raw; the card is blocked, naming why
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("^version https://git%-lfs", git(ws, "cat-file -p main:assets/old.bin"))
    local c = cjson.decode(H.orket("card ADOPT-2 --json", { cwd = dir, env = env }).stdout)
    assert.equal("blocked", c.card.status)
    assert.equal("system", c.card.wait_reason)
    assert.matches("assets/old.bin changed, and its attributes say filter=lfs", c.comments[#c.comments].body, 1, true)
  end)
end)
