-- tests/run.sh's check after each test file (tests/leaks.lua): a file that leaves a process,
-- or a temp dir, behind fails, with a message naming each; a file that cleans up passes.
local H = require "tests.helpers"

teardown(function() H.cleanup() end)

-- run_one(text) -> the file's line, its log: text run as a test file, as the pool runs one
local function run_one(text)
  local dir = H.tmpdir()
  H.write(dir .. "/made_up_test.lua", text)
  local out = dir .. "/out"
  os.execute("mkdir " .. H.quote(out))
  local p = io.popen(string.format("cd %s && sh tests/run.sh --one-of %s e2e %s 2>&1", H.quote(H.ROOT), H.quote(out),
    H.quote(dir .. "/made_up_test.lua")))
  local line = p:read("a")
  p:close()
  local lp = io.popen("cat " .. H.quote(out) .. "/*.log")
  local log = lp:read("a")
  lp:close()
  return line, log
end

describe("the check after each test file", function()
  it("fails a file that leaves a process and a temp dir, naming both, and removes them", function()
    local mark = "3000." .. math.random(1, 1e9) -- a sleep no other process has
    local line, log = run_one(string.format([[
local H = require "tests.helpers"
it("starts a program and forgets it", function()
  local d = H.tmpdir()
  os.execute("cd " .. H.quote(d) .. " && (exec sleep %s >/dev/null 2>&1 &)")
end)
]], mark))
    assert.matches("1 passed, 1 failed, 0 skipped", line, 1, true)
    assert.matches("leaked: process %d+: sleep " .. mark:gsub("%.", "%%."), log)
    assert.matches("leaked: temp dir [^\n]*/orket%-%w%w%w%w%.%w+\n", log)
    -- killed by the check: gone once the kernel has reaped it (a loaded machine takes a moment)
    H.wait_for(function() return #H.processes(mark) == 0 end, "the leaked sleep to be gone")
  end)

  it("passes a file that cleans up after itself", function()
    local line, log = run_one([[
local H = require "tests.helpers"
teardown(function() H.cleanup() end)
it("makes a dir and runs a program in it", function()
  local d = H.tmpdir()
  os.execute("cd " .. H.quote(d) .. " && sleep 0.1")
end)
]])
    assert.matches("1 passed, 0 failed, 0 skipped", line, 1, true)
    assert.is_nil(log:find("leaked", 1, true))
  end)
end)
