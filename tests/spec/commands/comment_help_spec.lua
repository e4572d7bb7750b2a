-- orket comment --help says the limit a comment is held to as it is: characters (code
-- points, as the API's schema counts them), not bytes. It said "At most 64 KiB" while a
-- comment of 40,000 "é" (80,000 bytes) was taken, as the API takes it.
local H = require "tests.helpers"
local board_mod = require "orket.board"
local cli = require "orket.cli"

describe("orket comment --help", function()
  after_each(H.cleanup)

  it("gives the limit in characters, the count the command and the API hold a comment to", function()
    local r = H.orket("comment --help")
    assert.equal(0, r.status, r.stderr)
    local help = r.stdout:gsub("%s+", " ")
    assert.matches("At most " .. board_mod.TEXT_MAX .. " characters (Unicode code points, however many bytes each takes)",
      help, 1, true)
    assert.is_nil(help:find("KiB", 1, true))
    -- the count it names: as many two-byte characters are taken, twice as many bytes
    local cmd = require "orket.cmd.comment"
    assert.is_nil(cli.bad_text(cmd, string.rep("é", board_mod.TEXT_MAX), "the comment", board_mod.TEXT_MAX))
  end)
end)
