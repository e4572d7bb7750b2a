-- orket.workspace: a write, a mkdir or a move that would give the tree a name git refuses
-- (what Windows or macOS reads as .git) or folders nested past libgit2's 100 levels is
-- refused before anything is written, naming the component and the rule; the names beside
-- them are written, and a card's commit of them succeeds (orket.c.gitrepo).
local W = require "orket.workspace"
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local WHO = { name = "coder", email = "coder@orket.invalid" }

local REFUSED = {
  { "z/git~1/config", "git~1", "Windows" },
  { "z/GIT~1", "GIT~1", "Windows" },
  { "x/.git /config", ".git ", "Windows" },
  { "y/.git./config", ".git.", "Windows" },
  { "y/.GiT. ./config", ".GiT. .", "Windows" },
  { "w/.git::$INDEX_ALLOCATION/config", ".git::$INDEX_ALLOCATION", "Windows" },
  { "w/git~1:stream", "git~1:stream", "Windows" },
  { "v/.git\\x", ".git\\x", "Windows" },
  { "u/.g\u{200c}it/config", ".g\u{200c}it", "macOS" },
  { "u/\u{feff}.GIT", "\u{feff}.GIT", "macOS" },
}
-- beside them, and committed by libgit2 as they are
local ACCEPTED = { "a/.gitx", "a/git~2", "a/.git.:x", "a/git~1x", "a/.git x", "a/x.git", "a/.gitignore2" }

local function exists(path) return os.execute("test -e " .. H.quote(path)) == true end

describe("workspace names git refuses", function()
  local root, ws
  before_each(function()
    root = H.tmpdir()
    ws = assert(W.open(root))
  end)
  after_each(function()
    ws:close()
    H.cleanup()
  end)

  it("refuses them in a write, an append, a mkdir and a move's target, naming the name and the rule", function()
    H.write(root .. "/src.txt", "x")
    for _, case in ipairs(REFUSED) do
      local path, name, system = case[1], case[2], case[3]
      local parent = path:match("^(.*)/[^/]*$")
      for _, try in ipairs {
        { "write", function() return ws:write(path, "x") end },
        { "append", function() return ws:append(path, "x") end },
        { "mkdir", function() return ws:mkdir(path) end },
        { "move", function() return ws:move("src.txt", path) end },
      } do
        local ok, err, code = try[2]()
        assert.is_nil(ok, try[1] .. " " .. path)
        assert.equal("EINVAL", code)
        assert.matches("workspace: " .. try[1] .. ": the name '" .. name .. "' in " .. path .. " cannot be committed: "
          .. system .. " reads it as .git", err, 1, true)
        assert.matches("choose another name", err, 1, true)
      end
      -- nothing made on the way: not even the parent folder of the refused name
      if parent and parent:find("/") then assert.is_false(exists(root .. "/" .. parent), parent) end
    end
    assert.equal("x", H.read(root .. "/src.txt"))
  end)

  it("refuses more than 99 levels of folders, in a mkdir, a write and a move deeper", function()
    local ok, err, code = ws:mkdir(string.rep("d/", 100))
    assert.is_nil(ok)
    assert.equal("EINVAL", code)
    assert.matches("mkdir: 100 levels of folders, and git commits at most 99", err, 1, true)
    assert.is_false(exists(root .. "/d"))
    assert.is_true(ws:mkdir(string.rep("d/", 99)))
    assert.truthy(ws:write(string.rep("d/", 99) .. "f", "x"))
    ok, err = ws:write(string.rep("d/", 100) .. "f", "x")
    assert.is_nil(ok)
    assert.matches("write: 100 levels of folders", err, 1, true)
    -- a folder 50 deep moved under 50 more: 100 levels
    assert.is_true(ws:mkdir(string.rep("m/", 50)))
    assert.is_true(ws:mkdir(string.rep("n/", 50)))
    ok, err, code = ws:move("m", string.rep("n/", 50) .. "m")
    assert.is_nil(ok)
    assert.equal("EINVAL", code)
    assert.matches("move: m would hold 100 levels of folders at n/n/", err, 1, true)
    assert.is_true(exists(root .. "/m"))
    assert.is_true(ws:move("m", string.rep("n/", 49) .. "m"))
  end)

  it("leaves delete and a move away from such a name as they were, to clean up", function()
    assert(os.execute("mkdir -p " .. H.quote(root .. "/z/git~1")))
    H.write(root .. "/z/git~1/config", "x")
    assert.is_true(ws:move("z/git~1/config", "z/config"))
    assert.is_true(ws:delete("z/git~1"))
  end)

  it("writes the names beside them, and the card's commit of them succeeds", function()
    H.write(root .. "/README", "hello\n")
    local repo = assert(G.init(root, WHO))
    local wt = assert(repo:worktree("C1", H.tmpdir() .. "/C1"))
    -- about git's rules: ".git.:x" is a name Windows has no room for (docs/workspace.md,
    -- *Names a Windows or macOS clone cannot check out*), allowed here as for a team on Linux
    local cw = assert(W.open(wt, { portable_names = false }))
    for _, path in ipairs(ACCEPTED) do
      assert.truthy(cw:mkdir("a"))
      assert.truthy(cw:write(path, "x"), path)
    end
    assert.is_true(cw:mkdir(string.rep("d/", 99)))
    assert.truthy(cw:write(string.rep("d/", 99) .. "f", "x"))
    local id, kind = repo:commit("C1", { name = WHO.name, email = WHO.email, message = "C1: turn 1" })
    assert.is_string(id, kind)
    assert.equal("committed", kind)
    cw:close()
    repo:close()
  end)
end)
