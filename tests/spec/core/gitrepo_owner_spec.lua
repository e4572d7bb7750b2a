-- orket.c.gitrepo's open and init of a repository this process may not use: another user's
-- (libgit2 1.5 said "config value 'safe.directory' was not found", GIT_ENOTFOUND, read as no
-- repository, and a run moved the cards' directories aside and made one over it), or a .git
-- it may not read (libgit2 says the same). Both are EACCES, naming the path, and nothing is
-- touched: never ENOENT, which makes a new repository.
local G = require "orket.c.gitrepo"
local H = require "tests.helpers"

local WHO = { name = "integrity_guard", email = "integrity_guard@orket.invalid" }
local ROOT = io.popen("id -u"):read("l") == "0"

describe("orket.c.gitrepo of a repository this process may not use", function()
  local ws
  before_each(function()
    ws = H.tmpdir() .. "/ws"
    assert(os.execute("mkdir -p " .. H.quote(ws)))
    H.write(ws .. "/README", "hello\n")
    assert(G.init(ws, WHO)):close()
  end)
  after_each(function()
    os.execute("chmod -R u+rwX " .. H.quote(ws) .. " && chown -R " .. io.popen("id -u"):read("l") .. " " .. H.quote(ws))
    H.cleanup()
  end)

  it("refuses another user's, naming both uids", function()
    if not ROOT then
      return pending("skipped: the repository must belong to another uid, and only root can chown it")
    end
    assert(os.execute("chown -R 12345 " .. H.quote(ws)))
    for _, f in ipairs { function() return G.open(ws) end, function() return G.init(ws, WHO) end } do
      local r, err, code = f()
      assert.is_nil(r)
      assert.equal("EACCES", code)
      assert.equal("git: " .. ws .. " belongs to uid 12345 and this process runs as uid 0: the repository is another "
        .. "user's, and git refuses it (what this process wrote there would not be the owner's); nothing was "
        .. "changed: run the command as the project's owner (sudo -u '#12345' ...)", err)
    end
    -- its .git alone another's: the same
    assert(os.execute("chown 0 " .. H.quote(ws)))
    local _, err, code = G.open(ws)
    assert.equal("EACCES", code)
    assert.matches(ws .. "/.git belongs to uid 12345", err, 1, true)
  end)

  it("refuses a .git it may not read, rather than finding no repository", function()
    if ROOT then return pending("skipped: root reads a .git whatever its modes") end
    assert(os.execute("chmod 000 " .. H.quote(ws .. "/.git")))
    for _, f in ipairs { function() return G.open(ws) end, function() return G.init(ws, WHO) end } do
      local r, err, code = f()
      assert.is_nil(r)
      assert.equal("EACCES", code)
      assert.matches("git: " .. ws .. "/.git cannot be read (Permission denied; mode 0000", err, 1, true)
    end
  end)
end)
