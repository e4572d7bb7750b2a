-- docswalk finding 5: README says a command without -C DIR says so when given one. Before the
-- command it did (`orket -C demo init`); after it, only "unknown option '-C'", as if -C were
-- misspelt. Both forms now say "CMD does not take -C DIR" (exit 2).
local H = require "tests.helpers"

describe("-C after a command that takes none", function()
  after_each(H.cleanup)

  it("is said as before the command", function()
    local dir = H.tmpdir()
    for _, c in ipairs {
      { "init x -C demo", "init" }, { "init x -C=demo", "init" }, { "lua -C demo", "lua" },
      { "help -C demo", "help" }, { "-C demo init", "init" },
    } do
      local r = H.orket(c[1], { cwd = dir })
      assert.equal(2, r.status, c[1] .. ": " .. r.stderr)
      assert.matches("^orket: " .. c[2] .. " does not take %-C DIR\n", r.stderr)
    end
    -- another unknown option is still named as it is
    local r = H.orket("init x --jsn", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("^orket: unknown option '%-%-jsn'", r.stderr)
    assert.is_nil(io.open(dir .. "/x/orket.lua"))
  end)
end)
