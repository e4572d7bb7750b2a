-- What is read-only to agents in a workspace: only what is Orket's or git's there (.git in any
-- folder, .orket/ at the root). A workspace is the team's repository (workspace/, a card's
-- worktree under .orket/worktrees); Orket's own roles/, tools/, policies/ and orket.lua lie in
-- the project folder above it, out of its reach, so a repository's own tools/build.sh, Ansible
-- roles/, OPA policies/ or orket.lua are the team's files, which agents may change. A project
-- that wants such a folder kept from agents says so in a policy (docs/guide/security.md).
local W = require "orket.workspace"
local gate = require "orket.gate"
local tools = require "orket.tools"
local policy = require "orket.policy"
local H = require "tests.helpers"

local reg = assert(tools.load_dirs { H.ROOT .. "/tools" })

local function check(tool, args, set)
  return gate.check { actor = { seat = "senior_developer", roles = { "coder" } }, tools = reg, policies = set,
    card = { id = "ISS-1", status = "in_progress" }, tool = tool, args = args }
end

local TEAMS = { "tools/build.sh", "roles/web/tasks/main.yml", "policies/authz.rego", "orket.lua", "tools",
  "sub/.orket/x", "sub/orket.lua" }

describe("a workspace's protected paths", function()
  after_each(H.cleanup)

  for _, mode in ipairs { "openat2", "walk" } do
    it("lets agents write the team's tools/, roles/, policies/ and orket.lua (" .. mode .. ")", function()
      local root = H.tmpdir() .. "/ws"
      assert(os.execute("mkdir -p " .. H.quote(root .. "/tools")))
      H.write(root .. "/tools/build.sh", "#!/bin/sh\necho tool v1\n")
      local ws = assert(W.open(root, { resolve = mode }))
      assert(ws:write("tools/build.sh", "#!/bin/sh\necho tool v2\n"))
      assert.equal("#!/bin/sh\necho tool v2\n", H.read(root .. "/tools/build.sh"))
      assert(ws:mkdir("roles/web/tasks"))
      assert(ws:write("roles/web/tasks/main.yml", "- name: x\n"))
      assert(ws:mkdir("policies"))
      assert(ws:write("policies/authz.rego", "package authz\n"))
      assert(ws:write("orket.lua", "-- the team's\n"))
      assert(ws:append("orket.lua", "return {}\n"))
      assert(ws:move("policies/authz.rego", "policies/main.rego"))
      assert(ws:delete("orket.lua"))
      -- what is Orket's or git's stays refused
      for _, p in ipairs { ".orket/orket.db", ".orket", ".git/config", ".git", "sub/.GIT/hooks/x" } do
        local ok, msg, code = ws:write(p, "pwned")
        assert.is_nil(ok, p)
        assert.equal("EPERM", code, p)
        assert.matches("protected path", msg, 1, true)
        assert.is_nil(ws:mkdir(p), p)
      end
      assert.is_nil(ws:move("tools", ".orket"))
      ws:close()
    end)
  end

  it("lets the gate allow writes to the team's files and refuse .git and .orket/ without calling them the team's",
    function()
      for _, p in ipairs(TEAMS) do
        assert.equal("ALLOWED", check("write_file", { path = p, content = "x" }).code, p)
      end
      assert.equal("ALLOWED", check("move_file", { from = "a", to = "policies/x.rego" }).code)
      for _, p in ipairs { ".orket/orket.db", ".git/config", "sub/.git" } do
        local d = check("write_file", { path = p, content = "x" })
        assert.equal("PATH_PROTECTED", d.code, p)
        assert.matches("names a protected path: " .. p, d.reason, 1, true)
        -- the remedy names only what is protected, never the team's own folders
        assert.matches(".git", d.remedy, 1, true)
        assert.matches(".orket/", d.remedy, 1, true)
        for _, name in ipairs { "roles/", "tools/", "policies/", "orket.lua", "Control files" } do
          assert.falsy(d.remedy:find(name, 1, true), name .. " in " .. d.remedy)
        end
      end
    end)

  it("keeps a folder of the team's from agents by a project's policy, in the team's words", function()
    local dir = H.tmpdir()
    H.write(dir .. "/protect.lua", [[
local READS = { read_file = true, list_directory = true, search_files = true }
deny { path = { "tools", "tools/**" }, when = function(call) return not READS[call.tool] end,
  reason = "tools/ holds the release scripts", remedy = "Describe the change in a comment for a person to make." }
]])
    local set = assert(policy.load { dir .. "/protect.lua" })
    local d = check("write_file", { path = "tools/build.sh", content = "x" }, set)
    assert.equal("POLICY_DENY", d.code)
    assert.matches("tools/ holds the release scripts", d.reason, 1, true)
    assert.equal("POLICY_DENY", check("move_file", { from = "tools", to = "old" }, set).code)
    assert.equal("allow", check("read_file", { path = "tools/build.sh" }, set).verdict)
    assert.equal("ALLOWED", check("write_file", { path = "src/a.c", content = "x" }, set).code)
  end)
end)
