-- The error line of a run or resume that did not start has one shape: "next" is always
-- there, null when there is no command to name. Before, with no project (`orket run START
-- --json -C /tmp`) the key was left out, while `orket run NOPE --json` had it: a consumer
-- reading .next met a KeyError in one case only.
local H = require "tests.helpers"
local cjson = require "cjson"

describe("orket run --json's error line", function()
  after_each(H.cleanup)

  it("always has next, null when there is none", function()
    local empty = H.tmpdir()
    for _, words in ipairs { "run START --json", "resume --json" } do
      local r = H.orket(words .. " -C " .. H.quote(empty))
      assert.equal(1, r.status, r.stderr)
      assert.matches('"next":null', r.stdout, 1, true)
      local ev = cjson.decode(r.stdout)
      assert.equal("ENOENT", ev.code)
      assert.equal(cjson.null, ev.next)
    end
    -- one with a command keeps it
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    local ev = cjson.decode(H.orket("run NOPE --json", { cwd = dir }).stdout)
    assert.equal("orket board", ev.next)
  end)
end)
