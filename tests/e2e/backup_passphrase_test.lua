-- An encrypted backup's passphrase is no shorter than an account's password: the file is
-- attacked offline.
local H = require "tests.helpers"

describe("orket backup --encrypt with a passphrase", function()
  after_each(function() H.cleanup() end)

  it("refuses one shorter than 8 bytes, naming the variable, and writes nothing", function()
    local dir = H.example("webapp")
    local file = H.tmpdir() .. "/board.enc"
    local r = H.orket("backup " .. H.quote(file) .. " --encrypt --passphrase-env BACKUP_PASS",
      { cwd = dir, env = { BACKUP_PASS = "a" } })
    assert.equal(1, r.status)
    assert.matches("--passphrase-env BACKUP_PASS has 1 bytes; an encrypted backup's passphrase needs at least 8",
      r.stderr, 1, true)
    assert.is_nil(io.open(file))
    r = H.orket("backup " .. H.quote(file) .. " --encrypt --passphrase-env BACKUP_PASS",
      { cwd = dir, env = { BACKUP_PASS = "12345678" } })
    assert.equal(0, r.status, r.stderr)
  end)
end)
