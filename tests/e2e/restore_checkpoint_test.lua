-- orket restore --accept-unverified-audit of a backup whose checkpoints another key signed (a
-- new machine without the old .orket/audit.pub, or one with a key of its own): its summary
-- said "newest checkpoint none", though the backup has them. It names how many, the newest,
-- and the key that signed them, as orket audit verify words it. On the backend the suite
-- runs on (SQLite, or PostgreSQL under tests/with_pg.lua).
local H = require "tests.helpers"
local backends = require "tests.backends"

local ok = H.ok

-- a project with 2 checkpoints (entries 2 and 4) and an entry after them, and its backup ->
-- the backup's path, the key that signed them
local function signed_backup()
  local dir = H.example("webapp")
  ok(H.orket("keys create k1 --role viewer", { cwd = dir }), "key 1")
  ok(H.orket("audit checkpoint", { cwd = dir }), "checkpoint 2")
  ok(H.orket("keys create k2 --role viewer", { cwd = dir }), "key 2")
  ok(H.orket("audit checkpoint", { cwd = dir }), "checkpoint 4")
  ok(H.orket("keys create k3 --role viewer", { cwd = dir }), "key 3")
  local file = H.tmpdir() .. "/signed" .. (backends.name() == "pg" and ".export" or ".db")
  ok(H.orket("backup " .. H.quote(file), { cwd = dir }), "backup")
  return file, assert(H.read(dir .. "/.orket/audit.pub")):match("^(%x+)")
end

describe("orket restore of a backup signed with another key, accepted unverified", function()
  after_each(function() H.cleanup() end)

  it("names its checkpoints and their key where this project has no audit.pub", function()
    local file, key = signed_backup()
    local dir = H.example("webapp")
    local said = "its audit: 5 entries (1 to 5), 2 checkpoints (the newest at entry 4) signed with key " .. key
      .. ", and this project has no .orket/audit.pub to check them under; entries 1 to 5 cannot be verified (no "
      .. "checkpoint that this project can verify signs them and this store does not hold them)"
    local r = ok(H.orket("restore --check --accept-unverified-audit --accept-older-audit " .. H.quote(file),
      { cwd = dir }), "check")
    assert.matches(said, r.stdout, 1, true)
    r = ok(H.orket("restore --accept-unverified-audit --accept-older-audit " .. H.quote(file), { cwd = dir }),
      "restore")
    assert.matches("audit: the backup's" .. said:sub(4), r.stdout, 1, true)
    assert.not_matches("newest checkpoint none", r.stdout, 1, true)
  end)

  it("names its checkpoints and their key where this project signs with a key of its own", function()
    local file, key = signed_backup()
    local dir = H.example("webapp")
    ok(H.orket("keys create mine --role viewer", { cwd = dir }), "own key")
    ok(H.orket("audit checkpoint", { cwd = dir }), "own checkpoint")
    local own = assert(H.read(dir .. "/.orket/audit.pub")):match("^(%x+)")
    assert.are_not.equal(key, own)
    local r = ok(H.orket("restore --accept-unverified-audit --accept-older-audit " .. H.quote(file), { cwd = dir }),
      "restore")
    assert.matches("audit: the backup's audit: 5 entries (1 to 5), 2 checkpoints (the newest at entry 4) signed with "
      .. "another key (" .. key .. ") than .orket/audit.pub; entries 1 to 5 cannot be verified (no checkpoint that "
      .. "this project can verify signs them and this store does not hold them)", r.stdout, 1, true)
  end)
end)
