-- glob(pattern, s[, opts]) in a policy file or a script takes only the options it knows
-- (core/lgate.c): a misspelt one ({icase = true}) is refused, naming it and the one it
-- takes, where before it was ignored and the match stayed case-sensitive without a word.
local H = require "tests.helpers"
local policy = require "orket.policy"
local cgate = require "orket.c.gate"

describe("glob's options", function()
  after_each(H.cleanup)

  it("refuses an option it does not know, naming it and ignore_case", function()
    for _, opts in ipairs { { icase = true }, { ignore_case = true, ignorecase = true }, { true } } do
      local ok, err = pcall(cgate.glob, "a", "A", opts)
      assert.is_false(ok)
      local name = next(opts) == 1 and "1" or (opts.icase and "icase" or "ignorecase")
      assert.matches("bad argument #3 to '[%w.]*glob' %(unknown field '" .. name .. "'; it takes ignore_case%)", err)
    end
    -- the known one, alone, still works either way
    assert.is_true(cgate.glob("a", "A", { ignore_case = true }))
    assert.is_false(cgate.glob("a", "A", { ignore_case = false }))
    assert.is_false(cgate.glob("a", "A", {}))
  end)

  it("says so at the policy file's line, where it was silently case-sensitive", function()
    local dir = H.tmpdir()
    H.write(dir .. "/p.lua", '-- a rule of its own\nassert(glob("a", "A", {icase = true}), "no match")\n')
    local set, msg = policy.load({ dir .. "/p.lua" }, dir)
    assert.is_nil(set)
    assert.matches("p.lua:2:", msg, 1, true)
    assert.matches("unknown field 'icase'; it takes ignore_case", msg, 1, true)
  end)
end)
