-- What a new user meets on the command line: a project's mistakes are refused by every
-- command that reads them (not only by validate), with the file, field and exit status
-- the docs promise.
local H = require "tests.helpers"

local function project()
  local dir = H.tmpdir()
  assert.equal(0, H.orket("init p", { cwd = dir }).status)
  return dir .. "/p"
end

local function append(path, text)
  local f = assert(io.open(path, "ab"))
  f:write(text)
  f:close()
end

describe("a project's orket.lua", function()
  after_each(H.cleanup)

  it("with a misspelt top-level setting is refused by run and models, not run with defaults", function()
    local p = project()
    append(p .. "/orket.lua", "concurency = 1\n")
    for _, cmd in ipairs { "run START", "models --no-check" } do
      local r = H.orket(cmd, { cwd = p })
      assert.equal(1, r.status, cmd .. ": " .. r.stdout)
      assert.matches("orket.lua: concurency: unknown setting", r.stderr, 1, true)
    end
    assert.is_nil(H.read(p .. "/workspace/hello.txt"))
    assert.matches("START%-1%s+ready", H.orket("board", { cwd = p }).stdout)
  end)
end)
