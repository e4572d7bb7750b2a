-- An unknown card in a done issue's depends_on is said once, as unknown. Before, a second
-- problem took the id for a new ready card ("START-2 is done, so it was done without the
-- new dependency START-9 (ready)").
local H = require "tests.helpers"

describe("orket validate of an unknown dependency", function()
  after_each(H.cleanup)

  it("says only that the card is unknown", function()
    local dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir) .. " --yes").status)
    assert.equal(0, H.orket("run START", { cwd = dir }).status)
    local path = dir .. "/epics/start.json"
    H.write(path, (H.read(path):gsub('"depends_on": %["START%-1"%]', '"depends_on": ["START-9"]')))
    for _, args in ipairs({ "validate", "import" }) do
      local r = H.orket(args, { cwd = dir })
      assert.equal(1, r.status, args)
      local out = r.stdout .. r.stderr
      assert.matches('epics/start.json:10: issues%[1%]%.depends_on%[0%]: unknown card "START%-9"', out)
      assert.is_nil(out:find("(ready)", 1, true), out)
    end
    -- a real new card in the same place is still refused as done work without it
    H.write(path, (H.read(path):gsub('"depends_on": %["START%-9"%]', '"depends_on": ["START-3"]')
      :gsub('%]%s*}%s*$', ', { "id": "START-3", "summary": "more" } ] }\n')))
    local r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("START%-2 is done, so it was done without the new dependency START%-3 %(ready%)", r.stdout .. r.stderr)
  end)
end)
