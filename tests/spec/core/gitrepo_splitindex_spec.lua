-- orket.c.gitrepo and a person's git that keeps main's index split by a setting
-- (core.splitIndex = true: a common big-repository setting). libgit2 cannot read a split
-- index, so main's view cannot follow a merge; `git update-index --no-split-index` alone
-- does not hold, as the person's next git command splits the index again. The reason then
-- names the setting, where git reads it (workspace/.git/config, the global, XDG or system
-- config, GIT_CONFIG_PARAMETERS or GIT_CONFIG_COUNT), and the commands that hold.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"
local uv = require "luv"

local GC = require "tests.gitcards"
local WHO, GUARD, sh = GC.WHO, GC.GUARD, GC.sh

-- What git reads its config from; each test sets its own and puts the process's back.
local VARS = { "HOME", "XDG_CONFIG_HOME", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM",
  "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0" }

describe("orket.c.gitrepo with core.splitIndex set", function()
  local saved, home, proj, pws, r, p
  before_each(function()
    saved = {}
    for _, k in ipairs(VARS) do saved[k] = os.getenv(k) or false end
    for _, k in ipairs(VARS) do uv.os_unsetenv(k) end
    home = H.tmpdir() .. "/home"
    sh("mkdir -p " .. H.quote(home))
    uv.os_setenv("HOME", home)
    uv.os_setenv("GIT_CONFIG_NOSYSTEM", "1") -- the machine's /etc/gitconfig is no test's
    proj = H.tmpdir()
    pws = proj .. "/workspace"
    sh("mkdir -p " .. H.quote(pws))
    H.write(pws .. "/README", "hello\n")
    r = assert(G.init(pws, WHO))
    p = assert(r:worktree("S1", proj .. "/wt/S1"))
    H.write(p .. "/new.txt", "the card's\n")
    assert(r:commit("S1", { name = WHO.name, email = WHO.email, message = "work" }))
  end)
  after_each(function()
    r:close()
    for _, k in ipairs(VARS) do
      if saved[k] then uv.os_setenv(k, saved[k]) else uv.os_unsetenv(k) end
    end
    H.cleanup()
  end)

  local function git(args) sh("git -C " .. H.quote(pws) .. " " .. args .. " >/dev/null 2>&1") end

  -- the person's git splits main's index (as any command that writes it does under the
  -- setting); the merge stands, its view cannot follow -> the reason
  local function stale()
    git("update-index --split-index")
    local m = assert(r:merge_to_main("S1", GUARD))
    assert.is_string(m.stale)
    assert.matches("unsupported mandatory extension: 'link'", m.stale, 1, true)
    return m.stale
  end

  for _, case in ipairs {
    { what = "the global config", file = function() return home .. "/.gitconfig" end, level = "your global git config",
      fix = "git config --global core.splitIndex false" },
    { what = "the XDG config", file = function() return home .. "/xdg/git/config" end,
      env = function() uv.os_setenv("XDG_CONFIG_HOME", home .. "/xdg") end, level = "your global git config",
      fix = "git config --global core.splitIndex false" },
    { what = "GIT_CONFIG_GLOBAL's file", file = function() return home .. "/other.gitconfig" end,
      env = function() uv.os_setenv("GIT_CONFIG_GLOBAL", home .. "/other.gitconfig") end, level = "your global git config",
      fix = "git config --global core.splitIndex false" },
    { what = "the system's config", file = function() return home .. "/etc-gitconfig" end,
      env = function()
        uv.os_unsetenv("GIT_CONFIG_NOSYSTEM")
        uv.os_setenv("GIT_CONFIG_SYSTEM", home .. "/etc-gitconfig")
      end, level = "the system's git config", fix = "git config --global core.splitIndex false" },
    { what = "workspace/.git/config", file = function() return pws .. "/.git/config" end,
      level = "the repository's own config", fix = "git -C workspace config core.splitIndex false" },
  } do
    it("names the setting in " .. case.what .. " and the commands that hold", function()
      if case.env then case.env() end
      local file = case.file()
      sh("mkdir -p " .. H.quote(file:match("^(.*)/[^/]+$")))
      local f = assert(io.open(file, "a"))
      f:write("[core]\n\tsplitIndex = true\n") -- (appended: workspace/.git/config keeps its own)
      f:close()
      local why = stale()
      assert.matches("core.splitIndex is true in " .. file .. " (" .. case.level .. ")", why, 1, true)
      assert.matches(": " .. case.fix, why, 1, true)
      assert.matches(", then git -C workspace update-index --no-split-index makes it readable for good)", why, 1, true)
      if case.fix:find("global", 1, true) then -- the setting may be meant for the person's other repositories
        assert.matches("(or, for workspace/ alone, git -C workspace config core.splitIndex false)", why, 1, true)
      end
      -- the commands named hold: the next refresh follows, and a later git command of the
      -- person's no longer splits the index
      sh("cd " .. H.quote(proj) .. " && " .. case.fix .. " && git -C workspace update-index --no-split-index")
      git("add -A")
      assert.equal(0, assert(r:view_refresh()))
      assert.equal("the card's\n", H.read(pws .. "/new.txt"))
      assert.is_nil(select(2, assert(r:view_status())))
    end)
  end

  it("names the setting given by `git -c` (GIT_CONFIG_PARAMETERS, GIT_CONFIG_COUNT)", function()
    uv.os_setenv("GIT_CONFIG_PARAMETERS", "'user.name'='A' 'core.splitindex'='true'")
    local why = stale()
    assert.matches("core.splitIndex is true in GIT_CONFIG_PARAMETERS (a `git -c`, or the environment)", why, 1, true)
    assert.matches("leave core.splitIndex out of GIT_CONFIG_PARAMETERS, then git -C workspace update-index "
      .. "--no-split-index", why, 1, true)
    uv.os_unsetenv("GIT_CONFIG_PARAMETERS")
    uv.os_setenv("GIT_CONFIG_COUNT", "1")
    uv.os_setenv("GIT_CONFIG_KEY_0", "core.splitIndex")
    uv.os_setenv("GIT_CONFIG_VALUE_0", "yes")
    git("update-index --no-split-index")
    assert(r:view_refresh())
    H.write(p .. "/new.txt", "the card's, again\n")
    assert(r:commit("S1", { name = WHO.name, email = WHO.email, message = "more" }))
    why = stale()
    assert.matches("core.splitIndex is true in GIT_CONFIG_COUNT (a `git -c`, or the environment)", why, 1, true)
  end)

  it("says only the one-off command where no setting splits the index, or a later level turns it off", function()
    H.write(home .. "/.gitconfig", "[core]\n\tsplitIndex = true\n")
    git("config core.splitIndex false") -- workspace/.git/config's wins over the global one
    local why = stale()
    assert.not_matches("core.splitIndex", why, 1, true)
    assert.matches("(a form of git's index libgit2 cannot read: git -C workspace update-index --no-split-index makes "
      .. "it readable)", why, 1, true)
  end)
end)
