-- The precompiled library (core/bytecode.h): orket loads its own modules from the bytecode
-- linked into it while their files are the ones it was made from, naming the files in
-- errors and debug information as a source load does; a file edited since is loaded from
-- its source; ORKET_NO_BYTECODE leaves every module to Lua's searchers.
local H = require "tests.helpers"

-- run(code [, env]) -> stdout, as `orket lua -e code` printed it (its status checked)
local function run(code, env)
  local r = H.orket("lua -e " .. H.quote(code), { env = env, wrap = "timeout 60" })
  assert.equal(0, r.status, r.stderr)
  return r.stdout
end

-- the line `function M.main` is on in lua/orket/cli.lua
local function main_line(home)
  local n = 0
  for line in io.lines(home .. "/lua/orket/cli.lua") do
    n = n + 1
    if line:find("^function M%.main%(") then return n end
  end
end

describe("the precompiled library", function()
  after_each(H.cleanup)

  it("loads orket's modules in place of their sources, named by their files", function()
    local out = run([[
local s = package.searchers[2]
local f, path = s("orket.cli")
print(type(f), path)
print(s("orket.no_such_module"))
print(s("busted"))
local i = debug.getinfo(require("orket.cli").main, "S")
print(i.source, i.linedefined)
print(select(2, pcall(require("orket.cli").err, nil)))
]])
    local cli = H.ROOT .. "/lua/orket/cli.lua"
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.equal("function\t" .. cli, lines[1])
    assert.equal("no module 'orket.no_such_module' in Orket's precompiled library", lines[2])
    assert.equal("no module 'busted' in Orket's precompiled library", lines[3])
    assert.equal("@" .. cli .. "\t" .. main_line(H.ROOT), lines[4])
    -- an error raised in a precompiled module names its file and line
    assert.matches("^" .. cli:gsub("%p", "%%%0") .. ":%d+: bad argument", lines[5])
  end)

  it("leaves a module whose file changed to its source, and keeps using the others", function()
    -- a copy of the library with one module edited: same length, other bytes (the size
    -- alone would not tell them apart), then one with a line added
    local home = H.tmpdir()
    assert(os.execute("cp -R " .. H.quote(H.ROOT .. "/lua") .. " " .. H.quote(home .. "/lua")))
    local file = home .. "/lua/orket/pretty.lua"
    local text = H.read(file)
    local edited, n = text:gsub("return M%s*$", "return { M = M }")
    assert.equal(1, n)
    local env = { ORKET_HOME = home }
    H.write(file, edited)
    local out = run([[
print(type(require("orket.pretty").M))
print(package.searchers[2]("orket.pretty"))
local _, path = package.searchers[2]("orket.cli")
print(path)
]], env)
    assert.equal("table\n" .. home .. "/lua/orket/pretty.lua is not the file Orket's precompiled 'orket.pretty' was made from\n"
      .. home .. "/lua/orket/cli.lua\n", out)
    -- a missing file is not served from the bundle either
    os.remove(file)
    out = run([[print(pcall(require, "orket.pretty"))]], env)
    assert.matches("^false\tmodule 'orket.pretty' not found", out)
  end)

  it("is not used under ORKET_NO_BYTECODE", function()
    local with = run([[print(#package.searchers)]])
    local without = run([[print(#package.searchers, debug.getinfo(require("orket.cli").main, "S").source)]],
      { ORKET_NO_BYTECODE = "1" })
    assert.equal(tonumber(with), 5)
    assert.equal("4\t@" .. H.ROOT .. "/lua/orket/cli.lua\n", without)
  end)
end)
