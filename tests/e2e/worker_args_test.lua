-- orket worker's arguments refused before anything is opened (the soak file
-- tests/e2e/workers_test.lua works the runs themselves).
local H = require "tests.helpers"

describe("orket worker's arguments", function()
  after_each(H.cleanup)

  -- a lease too long for the store to date was taken, and the worker failed at its first
  -- claim with the store's own error (NOT NULL constraint failed: leases.expires_at)
  it("refuses a --lease-ms longer than a day, naming it, before a run is started", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    for _, v in ipairs { "9000000000000000", "86400001" } do
      local r = H.orket("worker --start START --drain --lease-ms " .. v, { cwd = dir })
      assert.equal(2, r.status, v)
      assert.matches("%-%-lease%-ms needs an integer of at least 30 and at most 86400000 %(a day%)", r.stderr, nil, false, "--lease-ms " .. v)
    end
    -- the word given is said (a typo, a unit: which flag's value was wrong is plain)
    for _, v in ipairs { "abc", "0", "30s" } do
      local r = H.orket("worker --start START --drain --lease-ms " .. v, { cwd = dir })
      assert.equal(2, r.status, v)
      assert.matches("at most 86400000 (a day), not '" .. v .. "'", r.stderr, 1, true)
    end
    assert.equal(0, #require("cjson").decode(H.orket("runs --json", { cwd = dir }).stdout).runs)
    -- a day is taken (the worker, alone, works the starter's scripted cards to the end)
    local r = H.orket("worker --start START --drain --lease-ms 86400000", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches('"lease_ms":86400000', r.stdout)
  end)
end)
