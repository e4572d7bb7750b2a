-- `orket resume --model BAD` is a usage error of resume: it shows resume's usage, not run's
-- (the check is run's, shared, and printed the usage of `orket run`).
local H = require "tests.helpers"

describe("orket resume --model with a model that cannot be called", function()
  after_each(H.cleanup)

  it("shows resume's usage", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    -- a run killed as its first turn asks its model: one to resume
    local r = H.orket("run START", { cwd = dir, env = { ORKET_FAULT = "before_model:1" } })
    assert.are_not.equal(0, r.status)
    r = H.orket("resume --model nope:x", { cwd = dir })
    assert.equal(2, r.status, r.stderr)
    assert.matches("^orket: %-%-model nope:x: names provider 'nope', which is not configured", r.stderr)
    assert.matches("\nusage: orket resume %[RUN%]", r.stderr)
    assert.is_nil(r.stderr:find("usage: orket run", 1, true))
    -- run's own usage error still shows run's
    r = H.orket("run START --model nope:x", { cwd = dir })
    assert.equal(2, r.status, r.stderr)
    assert.matches("\nusage: orket run EPIC|ROCK|CARD", r.stderr, 1, true)
  end)
end)
