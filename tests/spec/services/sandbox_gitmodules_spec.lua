-- A compose service's folder that .gitmodules names is refused as a git submodule
-- (orket.sandboxes.composefile.folders): .gitmodules is read by git's config syntax as far
-- as a path needs (the key in any case, quoted values, trailing comments, only in a
-- submodule's section, paths normalised), and in time linear in its size, as the tree it
-- comes from is the agents' work and may hold anything.
local composefile = require "orket.sandboxes.composefile"
local workspace = require "orket.workspace"
local uv = require "luv"
local H = require "tests.helpers"

-- folders() of one service whose build folder is dir (missing in the tree), the tree's
-- .gitmodules holding gitmodules -> ok, err, seconds taken
local function build_in(dir, gitmodules)
  local root = H.tmpdir()
  H.write(root .. "/.gitmodules", gitmodules)
  local ws = assert(workspace.open(root))
  local services = { { name = "app", dir = dir, dir_field = "build", dir_line = 3, depends_on = {} } }
  local t0 = uv.hrtime()
  local ok, err = composefile.folders(services, "compose.yaml", ws)
  local secs = (uv.hrtime() - t0) / 1e9
  ws:close()
  return ok, err, secs
end

local SUB = "services.app.build: lib/app/ is a git submodule"
local NONE = "services.app.build: the repository has no folder lib/app/"

describe(".gitmodules as a compose service's folder check reads it", function()
  after_each(H.cleanup)

  it("takes the path git reads: any case of the key, quoted, with a trailing comment", function()
    for _, line in ipairs { "\tpath = lib/app", "\tPath = lib/app", "PATH=lib/app", '\tpath = "lib/app"',
      "\tpath = lib/app ; a comment", "\tpath = lib/app # a comment", '\tpath = "lib/app" ; c', "\tpath = lib/app\r" } do
      local ok, err = build_in("lib/app", '[submodule "app"]\n' .. line .. "\n\turl = https://example.invalid/a.git\n")
      assert.is_nil(ok, line)
      assert.matches(SUB, err, 1, true)
    end
  end)

  it("compares paths normalised: lib//app, ./lib/app/ and a build of lib/./app are one folder", function()
    for _, c in ipairs { { "lib//app", "lib/app" }, { "./lib/app/", "lib/app" }, { "lib/app", "lib/./app" },
      { "lib/./app", "./lib//app" } } do
      local ok, err = build_in(c[2], '[submodule "app"]\n\tpath = ' .. c[1] .. "\n")
      assert.is_nil(ok, c[1] .. " " .. c[2])
      assert.matches("services.app.build: " .. c[2] .. "/ is a git submodule", err, 1, true)
    end
  end)

  it("takes a path only in a submodule's section", function()
    for _, text in ipairs { "[core]\n\tpath = lib/app\n", "path = lib/app\n",
      '[submodule "app"]\n[other]\n\tpath = lib/app\n', '[submodules "app"]\n\tpath = lib/app\n',
      '[submodule "app"]\n\t# path = lib/app\n', '[submodule "app"]\n\tpathx = lib/app\n',
      '[submodule "app"]\n\tpath = "lib/app\n' } do
      local ok, err = build_in("lib/app", text)
      assert.is_nil(ok, text)
      assert.matches(NONE, err, 1, true)
    end
    -- the section's name in any case, and the older [submodule.NAME]
    for _, head in ipairs { '[SubModule "app"]', '[submodule   "a b"]', "[submodule.app]" } do
      local ok, err = build_in("lib/app", head .. "\n\tpath = lib/app\n")
      assert.is_nil(ok, head)
      assert.matches(SUB, err, 1, true)
    end
  end)

  -- The old pattern (^%s*path%s*=%s*(.-)%s*$) backtracked on blanks between non-blanks: a
  -- 64 KB line took half a minute, the server's loop blocked all along (the bound, 5 s, is
  -- far from both, for a loaded machine or the sanitizer build)
  it("reads a 64 KB hostile line at once, skipped as longer than any path", function()
    local hostile = "path=a" .. (" "):rep(65536 - 64) .. "b"
    local ok, err, secs = build_in("lib/app", '[submodule "app"]\n\tpath = lib/app\n' .. hostile .. "\n")
    assert.is_true(secs < 5, "took " .. secs .. " s")
    assert.is_nil(ok)
    assert.matches(SUB, err, 1, true)
    -- the longest line read, as hostile, one pass too; a longer one ends its section
    local long = "\tpath=lib/app" .. (" "):rep(composefile.GITMODULES_LINE - 20) .. "b"
    assert(#long <= composefile.GITMODULES_LINE)
    ok, err, secs = build_in("lib/app", '[submodule "app"]\n' .. long .. "\n")
    assert.is_true(secs < 5, "took " .. secs .. " s")
    assert.matches(NONE, err, 1, true) -- (its value is "lib/app   ...   b", another folder)
    ok, err = build_in("lib/app", '[submodule "app"]\n' .. ("#"):rep(composefile.GITMODULES_LINE + 1)
      .. "\n\tpath = lib/app\n")
    assert.matches(NONE, err, 1, true)
  end)
end)
