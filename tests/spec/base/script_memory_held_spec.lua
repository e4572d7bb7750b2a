-- The memory budget bounds what a script keeps between its calls, not only what one call
-- allocates; and a memory error names the script's line, as the other budgets' do.
local scriptenv = require "orket.scriptenv"
local tools = require "orket.tools"
local H = require "tests.helpers"

local MiB = 1024 * 1024

local function fn(box, src, name)
  local ok, f = box:pcall(assert(box:load(src, name)))
  assert(ok, f)
  return f
end

describe("what a script keeps between calls", function()
  after_each(function() H.cleanup() end)
  it("is capped at its memory budget: the call over it fails, and the box is refused after", function()
    local box = scriptenv.new { name = "keeper.lua", memory = 8 * MiB, instructions = 0, timeout_ms = 10000 }
    local keep = fn(box, "local keep = {}\nreturn function() keep[#keep + 1] = ('k'):rep(3 << 20) .. #keep "
      .. "return #keep end", "keeper.lua")
    local results = {}
    for i = 1, 6 do results[i] = { box:pcall(keep) } end
    assert.same({ true, 1 }, results[1])
    assert.same({ true, 2 }, results[2])
    -- each call alone is within 8 MiB, but the third leaves 9 MiB kept
    assert.is_false(results[3][1])
    assert.equal("ENOMEM", results[3][3])
    assert.matches("^script: memory limit exceeded: the script holds %d+ MiB between its calls, more than its 8 MiB "
      .. "budget", results[3][2])
    for i = 4, 6 do assert.same(results[3], results[i]) end
  end)

  it("counts what a coroutine or a global keeps, too", function()
    local box = scriptenv.new { name = "co.lua", memory = 8 * MiB, instructions = 0, timeout_ms = 10000 }
    local f = fn(box, [[
      local co = coroutine.wrap(function()
        local mine = {}
        while true do mine[#mine + 1] = ("c"):rep(3 << 20) .. #mine coroutine.yield(#mine) end
      end)
      return function() KEPT = rawget(_G, "KEPT") or ("g"):rep(1 << 20) .. "" return co() end]], "co.lua")
    assert.is_true((box:pcall(f)))
    assert.is_true((box:pcall(f)))
    local ok, err, code = box:pcall(f)
    assert.is_false(ok)
    assert.equal("ENOMEM", code)
    assert.matches("the script holds", err, 1, true)
  end)

  it("does not count garbage: a script that keeps nothing runs on, whatever its calls allocate", function()
    local box = scriptenv.new { name = "churn.lua", memory = 8 * MiB, instructions = 0, timeout_ms = 10000 }
    local f = fn(box, "local last\nreturn function() local t = {} for i = 1, 5 do t[i] = ('g'):rep(1 << 20) .. i end "
      .. "last = #t[5] return last end", "churn.lua")
    for _ = 1, 40 do
      local ok, v = box:pcall(f)
      assert.is_true(ok, v)
    end
  end)

  it("fails a tool's call that keeps more than the tool's budget, and every later call", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/tools")
    H.write(dir .. "/tools/probe.lua", [[
local keep = {}
return { name = "probe", description = "p", effect = "read",
  parameters = { type = "object", properties = {} },
  handler = function()
    for i = 1, 100 do keep[#keep + 1] = ("y"):rep(1 << 20) .. #keep end
    return { retained_mib = #keep }
  end }
]])
    local reg = assert(tools.load({ dir .. "/tools/probe.lua" }, dir))
    local rs = {}
    for i = 1, 4 do rs[i] = reg:run("probe", {}, {}) end
    assert.is_true(rs[1].ok, rs[1].error)
    assert.is_true(rs[2].ok, rs[2].error)
    -- 300 MiB kept after the third call, over the handler's 256 MiB
    assert.is_false(rs[3].ok)
    assert.matches("^probe: the tool failed: tools/probe%.lua: script: memory limit exceeded: the script holds %d+ "
      .. "MiB between its calls, more than its 256 MiB budget", rs[3].error)
    assert.is_false(rs[4].ok)
    assert.equal(rs[3].error, rs[4].error)
  end)
end)

describe("a memory error", function()
  -- (what earlier tests kept is garbage now: a ceiling is measured from what is in use)
  before_each(function() collectgarbage() end)
  local function run(src, name)
    local box = scriptenv.new { name = name, instructions = 0, timeout_ms = 20000 }
    local ok, err, code = box:pcall(assert(box:load(src, name)))
    return ok, scriptenv.first_line(err), code
  end

  it("names the script's line: a string.rep that cannot fit", function()
    local ok, err, code = run("local t = {}\nfor i = 1, 100 do t[i] = ('x'):rep(1 << 20) .. i end\nreturn 1",
      "roles/coder.lua")
    assert.is_false(ok)
    assert.equal("ENOMEM", code)
    assert.equal("roles/coder.lua:2: script: memory limit exceeded (64 MiB)", err)
  end)

  it("names the script's line: unbounded recursion", function()
    local ok, err, code = run("local x = 1\nlocal function f() return 1 + f() end\nf()", "orket.lua")
    assert.is_false(ok)
    assert.equal("ENOMEM", code)
    assert.equal("orket.lua:2: script: memory limit exceeded (64 MiB)", err)
  end)

  it("names the script's line: tables built in a loop, even when the script catches the error", function()
    local ok, err, code = run("local t = {}\nwhile true do\n  pcall(function() t[#t + 1] = { 1, 2, 3, 4 } end)\nend",
      "policies/p.lua")
    assert.is_false(ok)
    assert.equal("ENOMEM", code)
    assert.matches("^policies/p%.lua:3: script: memory limit exceeded %(64 MiB%)", err)
  end)
end)
