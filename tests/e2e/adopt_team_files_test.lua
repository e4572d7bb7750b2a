-- `orket init` on a team's repository that has folders named as Orket's scripts' (a build
-- script's tools/, Ansible's roles/, OPA's policies/): they are the team's files, in the
-- workspace, and the agents' file tools change them as any other; Orket's own roles/, tools/
-- and policies/ are the project folder's, beside workspace/, where no agent reaches.
local H = require "tests.helpers"

local GC = require "tests.gitcards"
local sh, git = GC.sh, GC.git

describe("adopting a repository with tools/, roles/ and policies/ of its own", function()
  after_each(function() H.cleanup() end)

  it("lets a card change them and merges its work into main", function()
    local dir = H.tmpdir() .. "/p"
    local ws = dir .. "/workspace"
    sh("mkdir -p " .. H.quote(ws .. "/tools") .. " " .. H.quote(ws .. "/policies") .. " && cd " .. H.quote(ws)
      .. " && git init -q -b main && git config user.email a@b && git config user.name A"
      .. " && printf '#!/bin/sh\\necho tool v1\\n' > tools/build.sh && chmod +x tools/build.sh"
      .. " && echo 'package authz' > policies/authz.rego && git add -A && git commit -qm initial")
    -- init makes no example epic on a team's repository (docs/guide/adopting.md): the card is this epic's
    assert(os.execute("mkdir -p " .. H.quote(dir .. "/epics") .. " && cp " .. H.quote(H.ROOT .. "/templates/project/epics/start.json")
      .. " " .. H.quote(dir .. "/epics/")))
    local init = H.orket("init --yes .", { cwd = dir })
    assert.equal(0, init.status, init.stderr)
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return {
  rules = {
    { role = "coder", card = "START-1", match = "^Issue ", reply = { tool_calls = {
      call("write_file", { path = "tools/build.sh", content = "#!/bin/sh\necho tool v2\n" }),
      call("write_file", { path = "roles/web/tasks/main.yml", content = "- name: web\n" }),
      call("write_file", { path = "policies/authz.rego", content = "package authz\ndefault allow := false\n" }),
      call("add_issue_comment", { body = "Changed the team's build script, role and policy." }) } } },
    { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
    { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
  },
  default = { content = "Nothing more to do." },
}
]])
    local r = H.orket("run START-1", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches('"status":"done"', r.stdout)
    local log = H.orket("log", { cwd = dir }).stdout
    assert.is_nil(log:find("PATH_PROTECTED", 1, true), log)
    assert.is_nil(log:find("write_file failed", 1, true), log)
    -- the card's changes to the team's files are on main
    assert.equal("#!/bin/sh\necho tool v2\n", git(ws, "show main:tools/build.sh"))
    assert.matches("^100755 ", git(ws, "ls-tree main tools/build.sh")) -- still the team's executable
    assert.equal("- name: web\n", git(ws, "show main:roles/web/tasks/main.yml"))
    assert.equal("package authz\ndefault allow := false\n", git(ws, "show main:policies/authz.rego"))
    -- and the project's own script folders, beside workspace/, were not touched
    assert.is_nil(io.open(dir .. "/tools/build.sh"))
    assert.is_nil(io.open(dir .. "/roles/web/tasks/main.yml"))
  end)
end)
