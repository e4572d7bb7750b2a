-- End to end (docswalk finding 1): the file-name rule of roles/ and tools/ is their names'
-- (letters, digits and _; a tool's snake_case): roles/code-reviewer.lua passed the file
-- check, whose hint allowed a -, and was then refused as "name must be a word". The rename
-- hint names a file that loads; policies/ keeps its rule (a - is fine there).
local H = require "tests.helpers"
local F = require "tests.fixtures"

local ROLE = 'return { intent = "Review code.", tools = { "read_file" }, system = "You review." }\n'
local ROLE_RULE = "the file's name is no script's: a role is named NAME.lua, NAME of letters, digits and '_' "
  .. "(the role's name: seats and policies name it); "
local TOOL_RULE = "the file's name is no script's: a tool is named NAME.lua, NAME of lower-case letters, digits "
  .. "and '_', a letter first, at most 64 (the tool's name, which the model calls); "

local function validate(p)
  local v = H.orket("validate", { cwd = p })
  return v.status, v.stdout
end

describe("a role's or tool's file name", function()
  after_each(H.cleanup)

  it("is refused by the names' rule, with a rename that loads", function()
    local p = F.initialized { "roles", "tools", "policies" }
    for _, name in ipairs { "code.reviewer.lua", "code-reviewer.lua" } do
      H.write(p .. "/roles/" .. name, ROLE)
      local status, out = validate(p)
      assert.equal(1, status, out)
      assert.equal("roles/" .. name .. ": " .. ROLE_RULE .. "rename it roles/code_reviewer.lua, or move it out of "
        .. "roles/\n1 problem\n", out)
      os.remove(p .. "/roles/" .. name)
    end
    -- the rename the hint names loads
    H.write(p .. "/roles/code_reviewer.lua", ROLE)
    local status, out = validate(p)
    assert.equal(0, status, out)
    -- a name field that is no role's name is said with the name
    H.write(p .. "/roles/code_reviewer.lua", 'return { name = "code-reviewer", intent = "x", tools = {}, system = "s" }\n')
    status, out = validate(p)
    assert.equal(1, status, out)
    assert.matches('roles/code_reviewer.lua:1: name "code-reviewer" is no role\'s name: a role\'s name is letters, '
      .. "digits and _, and is its file's (roles/NAME.lua): leave the field out", out, 1, true)
    os.remove(p .. "/roles/code_reviewer.lua")
    for _, name in ipairs { "count-lines", "CountLines" } do
      H.write(p .. "/tools/" .. name .. ".lua", 'return { name = "' .. name .. '", description = "d", effect = "read", '
        .. "handler = function() return {} end }\n")
      status, out = validate(p)
      assert.equal(1, status, out)
      assert.equal("tools/" .. name .. ".lua: " .. TOOL_RULE .. "rename it tools/count_lines.lua, or move it out of "
        .. "tools/\n1 problem\n", out)
      os.remove(p .. "/tools/" .. name .. ".lua")
    end
    -- a policy's file name may hold a -
    H.write(p .. "/policies/no-writes.lua", 'deny { tool = "write_file", reason = "no" }\n')
    status, out = validate(p)
    assert.equal(0, status, out)
  end)
end)
