-- A remote given as a path or file:// URL is pushed to through libgit2's local transport,
-- which writes the refs itself and runs none of the remote's hooks: a remote whose git would
-- run one is refused before anything is written (EREJECTED, the hook named, and how to have
-- its hooks run), for main's push (orket.actions.mainline) and a card's branch alike.
-- core/gitrepo/remote.c; tests/c/test_gitrepo.c covers core.hooksPath and receive.* too.
local uv = require "luv"
local mainline = require "orket.actions.mainline"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local MF = require "tests.mainline_fixture"
local WHO, sh = MF.WHO, MF.sh

describe("a remote on this machine with hooks", function()
  local base, db, repo, global
  before_each(function()
    -- the machine's own global git settings (a core.hooksPath of the person running the
    -- tests) are not the test's
    global = os.getenv("GIT_CONFIG_GLOBAL")
    base = H.tmpdir()
    H.write(base .. "/global.gitconfig", "")
    uv.os_setenv("GIT_CONFIG_GLOBAL", base .. "/global.gitconfig")
    db, repo = MF.make(base)
  end)
  after_each(function()
    if global then uv.os_setenv("GIT_CONFIG_GLOBAL", global) else uv.os_unsetenv("GIT_CONFIG_GLOBAL") end
    repo:close()
    db:close()
    H.cleanup()
  end)

  local function hook(name)
    local p = base .. "/remote.git/hooks/" .. name
    H.write(p, "#!/bin/sh\necho 'pushes are frozen' >&2\nexit 1\n")
    sh("chmod +x " .. H.quote(p))
    return p
  end

  for _, form in ipairs { "path", "file://" } do
    it("is refused before anything is written, the hook named (" .. form .. ")", function()
      local url = (form == "path" and "" or "file://") .. base .. "/remote.git"
      local p = hook("pre-receive")
      local out = mainline.sync { db = db, repo = repo, g = { remote = url }, sleep = function() end }
      assert.equal("failed", out.code)
      assert.matches(p, out.error, 1, true)
      assert.matches("nothing was pushed", out.error, 1, true)
      assert.matches("git://, ssh or http(s)", out.error, 1, true)
      assert.same({}, assert(G.ls_remote(url)))
      local evs = db:events {}
      assert.equal("push_failed", evs[#evs].kind)
      assert.equal("EREJECTED", evs[#evs].data.code)
      -- a card's branch too
      assert(repo:worktree("C-1", base .. "/wt/C-1"))
      H.write(base .. "/wt/C-1/c.txt", "c\n")
      assert(repo:commit("C-1", { name = WHO.name, email = WHO.email, message = "C-1" }))
      local ok, err, code = repo:push(url, "orket/C-1", { force = true })
      assert.is_nil(ok)
      assert.equal("EREJECTED", code)
      assert.matches(p, err, 1, true)
      assert.same({}, assert(G.ls_remote(url)))
      -- the hook gone (or not executable), the push goes
      sh("chmod -x " .. H.quote(p))
      assert.equal("pushed", mainline.sync { db = db, repo = repo, g = { remote = url }, sleep = function() end }.code)
      assert.equal(repo:head("main"), assert(G.ls_remote(url))["refs/heads/main"])
    end)
  end

  it("counts the hooks of the remote's core.hooksPath, where git would look", function()
    sh("mkdir -p " .. H.quote(base .. "/remote.git/policy") .. " && git -C " .. H.quote(base .. "/remote.git")
      .. " config core.hooksPath policy")
    H.write(base .. "/remote.git/policy/post-receive", "#!/bin/sh\nexit 0\n")
    sh("chmod +x " .. H.quote(base .. "/remote.git/policy/post-receive"))
    local out = mainline.sync { db = db, repo = repo, g = { remote = base .. "/remote.git" }, sleep = function() end }
    assert.equal("failed", out.code)
    assert.matches("remote.git/policy/post-receive", out.error, 1, true)
  end)
end)
