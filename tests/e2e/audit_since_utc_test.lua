-- `orket audit export --since DATE` reads the date as its midnight UTC, whatever the
-- machine's time zone (the entries' times are UTC): its help said neither that nor that a
-- time must end in Z, so an operator east of UTC got entries from 05:30 local time without a
-- word, and a time with an offset was refused without saying why.
local H = require "tests.helpers"

describe("audit export --since", function()
  after_each(H.cleanup)

  it("says in its help and its usage error that a date is UTC and a time ends in Z", function()
    local r = H.orket("audit --help")
    assert.equal(0, r.status, r.stderr)
    local help = r.stdout:gsub("%s+", " ")
    assert.matches("a date (2026-11-01, from its midnight UTC, not local time)", help, 1, true)
    assert.matches("no offset such as +05:30", help, 1, true)
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init --yes " .. H.quote(dir .. "/p")).status)
    r = H.orket("audit export --since 2026-11-01T12:00:00+05:30", { cwd = dir .. "/p", env = { TZ = "Asia/Kolkata" } })
    assert.equal(2, r.status)
    assert.matches("an offset such as +05:30 is not taken", r.stderr, 1, true)
    assert.matches("from its midnight UTC", r.stderr, 1, true)
  end)
end)
