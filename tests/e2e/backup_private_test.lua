-- Backups and the store hold the accounts' password hashes: they are made for the owner
-- only, whatever the umask.
local H = require "tests.helpers"
local backends = require "tests.backends"

local function mode(path)
  local st = assert(require("luv").fs_stat(path), path)
  return string.format("%o", st.mode & 0x1ff)
end

local function sh_ok(cmd)
  local rc, out = H.sh(cmd)
  assert(rc == 0, cmd .. ": " .. out)
  return out
end

describe("orket backup files and the store", function()
  after_each(function() H.cleanup() end)

  it("are 0600 (and a new .orket/ 0700) under umask 022", function()
    local tmp = H.tmpdir()
    local bin = H.quote(H.BIN)
    sh_ok(string.format("cd %s && umask 022 && %s init p >/dev/null", H.quote(tmp), bin))
    local dir = tmp .. "/p"
    backends.project(dir)
    sh_ok(string.format("cd %s && umask 022 && %s import >/dev/null", H.quote(dir), bin))
    if backends.name() == "sqlite" then
      assert.equal("600", mode(dir .. "/.orket/orket.db"))
      assert.equal("700", mode(dir .. "/.orket"))
    end
    sh_ok(string.format("cd %s && umask 022 && %s backup %s", H.quote(dir), bin, H.quote(tmp .. "/b.db")))
    assert.equal("600", mode(tmp .. "/b.db"))
    -- an existing backup file is replaced by a private one, even under umask 000
    sh_ok(string.format("chmod 644 %s && cd %s && umask 000 && %s backup %s", H.quote(tmp .. "/b.db"),
      H.quote(dir), bin, H.quote(tmp .. "/b.db")))
    assert.equal("600", mode(tmp .. "/b.db"))
  end)

  it("tightens an existing world-readable store when it opens it", function()
    if backends.name() ~= "sqlite" then return pending("SQLite only: a store file's mode") end
    local dir = H.example("webapp")
    sh_ok("chmod 644 " .. H.quote(dir .. "/.orket/orket.db"))
    H.ok(H.orket("board", { cwd = dir }), "board")
    assert.equal("600", mode(dir .. "/.orket/orket.db"))
  end)
end)
