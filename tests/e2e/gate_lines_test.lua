-- orket gate check places a mistake in a project's tool, role or policy file at its line,
-- in the very words `orket validate` and `orket run` give it (orket.fieldline).
local H = require "tests.helpers"

describe("orket gate check on a project file with a mistake", function()
  after_each(H.cleanup)

  local function project()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/tools " .. dir .. "/roles " .. dir .. "/policies")
    H.write(dir .. "/orket.lua", 'name = "g"\n')
    H.write(dir .. "/roles/tester.lua", 'return { intent = "Use t.", system = "Use t.",\n  tools = { "read_file" } }\n')
    return dir
  end

  -- the one line validate gives for the file, and gate check's error, from -C DIR
  local function both(dir)
    local v = H.orket("validate " .. H.quote(dir))
    local g = H.orket("gate check --role tester --tool read_file -C " .. H.quote(dir))
    assert.equal(1, g.status, g.stdout)
    assert.equal("", g.stdout)
    return v.stdout .. v.stderr, g.stderr
  end

  it("names a tool's schema mistake with its line", function()
    local dir = project()
    H.write(dir .. "/tools/t.lua", [[return {
  name = "t",
  description = "d",
  effect = "read",
  parameters = {
    type = "object",
    properties = { note = { type = "strnig" } } },
  handler = function(args, ctx) return {} end,
}
]])
    local v, g = both(dir)
    local want = "tools/t.lua:7: parameters.properties.note.type: unknown type 'strnig'"
    assert.matches(want, v, 1, true)
    assert.equal("orket: " .. dir .. "/" .. want .. "\n", g)
    -- from the project itself, the name validate gives
    local r = H.orket("gate check --role tester --tool read_file", { cwd = dir })
    assert.equal("orket: " .. want .. "\n", r.stderr)
  end)

  it("names a role's and a policy's field mistake with its line", function()
    local dir = project()
    H.write(dir .. "/roles/tester.lua", 'return { intent = "Use t.",\n  tools = { "read_file" },\n\n  system = 5 }\n')
    local v, g = both(dir)
    local want = "roles/tester.lua:4: system must be a string or a function(ctx)"
    assert.matches(want, v, 1, true)
    assert.equal("orket: " .. dir .. "/" .. want .. "\n", g)
    H.write(dir .. "/roles/tester.lua", 'return { intent = "Use t.", system = "Use t.",\n  tools = { "read_file" } }\n')
    H.write(dir .. "/policies/p.lua", 'deny {\n  tool = "t",\n  path = { "a", 7 } }\n')
    v, g = both(dir)
    local line = v:match("(policies/p%.lua:%d+: [^\n]*)")
    assert.truthy(line, v)
    assert.equal("orket: " .. dir .. "/" .. line .. "\n", g)
  end)
end)
