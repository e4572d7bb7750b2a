-- .orket/ and its lock files are the owner's alone: an older .orket/ that others may enter
-- is tightened when a command opens the project, and the lock files are made 0600.
local H = require "tests.helpers"

local function mode(path)
  local st = assert(require("luv").fs_stat(path), path)
  return string.format("%o", st.mode & 0xfff)
end

describe(".orket/ and its lock files", function()
  after_each(function() H.cleanup() end)

  it("an existing 0755 .orket/ becomes 0700 when a command opens the project", function()
    local ex = H.example("notes")
    assert(os.execute("chmod 755 " .. H.quote(ex .. "/.orket")))
    H.ok(H.orket("board", { cwd = ex }), "board")
    assert.equal("700", mode(ex .. "/.orket"))
    -- only others' bits go: a .orket/ made read-only by its owner stays read-only
    assert(os.execute("chmod 555 " .. H.quote(ex .. "/.orket")))
    H.ok(H.orket("board", { cwd = ex }), "board")
    assert.equal("500", mode(ex .. "/.orket"))
    -- and a setgid bit its owner set stays (only group and other bits go)
    assert(os.execute("chmod 2775 " .. H.quote(ex .. "/.orket")))
    H.ok(H.orket("board", { cwd = ex }), "board")
    assert.equal("2700", mode(ex .. "/.orket"))
    assert(os.execute("chmod 700 " .. H.quote(ex .. "/.orket")))
  end)

  it("run.lock and git.lock are 0600 under umask 022, older 0644 ones too", function()
    local ex = H.example("notes")
    local r = H.sh(string.format("cd %s && umask 022 && %s run NOTES --json >/dev/null", H.quote(ex), H.quote(H.BIN)))
    assert.equal(0, r)
    assert.equal("600", mode(ex .. "/.orket/run.lock"))
    assert.equal("600", mode(ex .. "/.orket/git.lock"))
    assert(os.execute(string.format("chmod 644 %s %s", H.quote(ex .. "/.orket/run.lock"), H.quote(ex .. "/.orket/git.lock"))))
    H.sh(string.format("cd %s && umask 022 && %s run NOTES --json >/dev/null", H.quote(ex), H.quote(H.BIN)))
    assert.equal("600", mode(ex .. "/.orket/run.lock"))
    assert.equal("600", mode(ex .. "/.orket/git.lock"))
  end)
end)
