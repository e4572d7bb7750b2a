-- tests/run.sh's counts: a skipped test (busted's pending, the C tests' SKIP) is counted as
-- skipped, in each layer's line and in the closing "N passed, N failed, N skipped" line,
-- never as passed; and tests/npm.lua asks an unreachable registry once for the whole run,
-- with one short probe, instead of each file waiting out npm's install timeout. A test that
-- did not run (its setup failed) is counted as failed, never left out; --one-of's status
-- says whether its file failed.
local H = require "tests.helpers"
local uv = require "luv"

local function run(args, env)
  local vars = ""
  for k, v in pairs(env or {}) do vars = vars .. k .. "=" .. H.quote(v) .. " " end
  local p = io.popen(string.format("cd %s && env %s sh tests/run.sh %s 2>&1; echo \"rc=$?\"", H.quote(H.ROOT), vars, args))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("rc=(%d+)%s*$")), (out:gsub("rc=%d+%s*$", ""))
end

-- a path from the repository's root to DIR, for run.sh's BUILD argument (taken from its root)
local function from_root(dir)
  local up = H.ROOT:gsub("/+$", ""):gsub("[^/]+", "..")
  return up:sub(2) .. dir
end

describe("tests/run.sh", function()
  after_each(H.cleanup)

  it("counts a skipped test as skipped, in the layer's line and in the closing line", function()
    local dir = H.tmpdir()
    H.write(dir .. "/counts_test.lua", [[
describe("x", function()
  it("passes", function() end)
  it("skips", function() pending("no widget here") end)
  it("passes too", function() end)
end)
]])
    local rc, out = run("--files e2e " .. H.quote(dir .. "/counts_test.lua"))
    assert.equal(0, rc, out)
    assert.matches("\nspec: 2 passed, 0 failed, 1 skipped (e2e: 1 files)\n", out, 1, true)
    assert.matches("SKIP: x skips (no widget here)", out, 1, true)

    -- the closing line adds the C tests' skips (a stand-in test_core in a build dir of its own)
    local build = H.tmpdir()
    H.write(build .. "/test_core", "#!/bin/sh\necho '  skip one'\necho 'c: 3 passed, 0 failed, 2 skipped'\n")
    assert(uv.fs_chmod(build .. "/test_core", tonumber("755", 8)))
    rc, out = run(H.quote(from_root(build)), { TEST_LAYERS = "c" })
    assert.equal(0, rc, out)
    assert.matches("\n3 passed, 0 failed, 2 skipped\n$", out)
  end)

  it("counts a test that did not run, its setup or before_each or describe failing, as failed, naming why", function()
    local dir = H.tmpdir()
    H.write(dir .. "/unrun_test.lua", [[
describe("a", function()
  setup(function() error("no server here") end)
  it("first", function() end)
  it("second", function() end)
end)
describe("b", function()
  lazy_setup(function() error("no lazy server") end)
  it("lazy one", function() end)
  it("lazy two", function() end)
end)
describe("c", function()
  before_each(function() error("no fixture") end)
  it("each", function() end)
end)
describe("d", function()
  it("registered", function() end)
  error("the describe's body broke")
end)
describe("e", function()
  after_each(function() error("cleanup broke") end)
  it("runs", function() end)
end)
]])
    local rc, out = run("--files e2e " .. H.quote(dir .. "/unrun_test.lua"))
    assert.equal(1, rc, out)
    -- seven tests: one passed, six did not run, and the after_each's error one failure more
    assert.matches("\nspec: 1 passed, 7 failed, 0 skipped (e2e: 1 files)\n", out, 1, true)
    assert.matches("ERROR: a second\n +did not run: setup failed: [^\n]*no server here", out)
    assert.matches("ERROR: b lazy two\n +did not run: lazy_setup failed: [^\n]*no lazy server", out)
    assert.matches("ERROR: c each\n +did not run: before_each failed: [^\n]*no fixture", out)
    assert.matches("ERROR: d registered\n +did not run: describe failed: [^\n]*body broke", out)

    -- --one-of, as the pool and a person run one file: its line, and its status says it failed
    local o = H.tmpdir()
    rc, out = run("--one-of " .. H.quote(o) .. " e2e " .. H.quote(dir .. "/unrun_test.lua"))
    assert.equal(1, rc, out)
    assert.matches("1 passed, 7 failed, 0 skipped", out, 1, true)
    H.write(dir .. "/fine_test.lua", 'it("passes", function() end)\n')
    rc, out = run("--one-of " .. H.quote(o) .. " e2e " .. H.quote(dir .. "/fine_test.lua"))
    assert.equal(0, rc, out)
    assert.matches("1 passed, 0 failed, 0 skipped", out, 1, true)
  end)

  it("counts a nested describe whose body never ran as one failure named for it, with the error", function()
    local dir = H.tmpdir()
    -- busted runs a describe's body only once its parent's body and setup have run: a
    -- nested describe under a failing body or setup never registers its tests
    H.write(dir .. "/nested_test.lua", [[
describe("p", function()
  it("a", function() end)
  describe("child", function() it("c1", function() end); it("c2", function() end) end)
  error("p broke")
end)
describe("q", function()
  it("runs", function() end)
  describe("inner", function()
    describe("deeper", function() it("never found", function() end) end)
    error("inner broke")
  end)
  describe("sibling", function() it("sib", function() end) end)
end)
describe("r", function()
  setup(function() error("no server") end)
  describe("kid", function() it("k", function() end) end)
  insulate("kid2", function() it("k", function() end) end)
end)
]])
    local rc, out = run("--files e2e " .. H.quote(dir .. "/nested_test.lua"))
    assert.equal(1, rc, out)
    -- p: its test and its nested describe; q: inner's nested describe, which stands for
    -- inner's error; r: each nested describe (the setup's error shown once, above)
    assert.matches("\nspec: 2 passed, 5 failed, 0 skipped (e2e: 1 files)\n", out, 1, true)
    assert.matches("ERROR: p child\n +did not run: describe failed: [^\n]*nested_test%.lua:4: p broke", out)
    assert.matches("ERROR: q inner deeper\n +did not run: describe failed: [^\n]*nested_test%.lua:10: inner broke", out)
    assert.matches("ERROR: q inner\n +at [^\n]*nested_test%.lua:8\n +[^\n]*nested_test%.lua:10: inner broke", out)
    assert.matches("ERROR: r kid\n +did not run: setup failed: [^\n]*nested_test%.lua:15: no server", out)
    assert.matches("ERROR: r kid2\n +did not run: setup failed: [^\n]*nested_test%.lua:15: no server", out)
  end)

  it("lets no pending test that did not run cancel the error that stopped it", function()
    local dir = H.tmpdir()
    -- a pending test that never ran is counted skipped: the error that stopped it still
    -- fails the file
    H.write(dir .. "/pend_test.lua", [[
describe("f", function()
  setup(function() error("server down") end)
  pending("later")
end)
describe("g", function()
  pending("todo")
  error("g's body broke")
end)
]])
    local rc, out = run("--files e2e " .. H.quote(dir .. "/pend_test.lua"))
    assert.equal(1, rc, out)
    assert.matches("\nspec: 0 passed, 2 failed, 2 skipped (e2e: 1 files)\n", out, 1, true)
    assert.matches("SKIP: f later %(did not run: setup failed: [^\n]*server down%)", out)
  end)

  it("counts an after_each's or teardown's error once each time, beside a before_each's that stopped a test", function()
    local dir = H.tmpdir()
    -- a before_each that fails for one test is that test's failure; an after_each or a
    -- teardown that fails hid no test, and counts once each time: 1 + 3 + 1
    H.write(dir .. "/each_test.lua", [[
describe("z", function()
  local n = 0
  before_each(function() n = n + 1; if n == 2 then error("flaky fixture") end end)
  after_each(function() error("cleanup broke") end)
  teardown(function() error("teardown broke") end)
  it("t1", function() end)
  it("t2", function() end)
  it("t3", function() end)
end)
]])
    local rc, out = run("--files e2e " .. H.quote(dir .. "/each_test.lua"))
    assert.equal(1, rc, out)
    assert.matches("\nspec: 2 passed, 5 failed, 0 skipped (e2e: 1 files)\n", out, 1, true)
    assert.matches("ERROR: z t2\n +did not run: before_each failed: [^\n]*flaky fixture", out)
  end)

  it("fails a file that is not there with busted's own message", function()
    -- busted's own errors (a file that is not there) have no block: its message, and a failure
    local dir = H.tmpdir()
    local rc, out = run("--files e2e " .. H.quote(dir .. "/not_there_test.lua"))
    assert.equal(1, rc, out)
    assert.matches("Cannot find file or directory: [^\n]*not_there_test%.lua", out)
    assert.matches("not_there_test%.lua +0 passed, %d+ failed, 0 skipped", out) -- the file's own line
    assert.matches("\nspec: 0 passed, %d+ failed, 0 skipped %(e2e: 1 files%)\n", out)
    assert.no.matches("attempt to index", out, 1, true)
  end)

  it("refuses a number-like message that assert.matches would take for its init or plain", function()
    local dir = H.tmpdir()
    H.write(dir .. "/msg_test.lua", [[
it("plain", function() assert.matches("x%d", "x1", nil, "42") end)
it("init", function() assert.matches("x%d", "x1", "3\n") end)
it("words", function() assert.matches("x%d", "x1", nil, "run 42"); assert.matches("(", "x(", 1, true, "7") end)
it("a word message first", function()
  -- luassert takes "why" for the message, then 3 (or "3") for init: nothing taken amiss
  assert.matches("^x2", "x1x2", "why", 3)
  assert.matches("^x2", "x1x2", "why", "3")
  assert.matches("^x2", "x1x2", "3", "why")
  assert.error_matches(function() error("x1x2", 0) end, "^x2", "why", 3)
end)
]])
    local rc, out = run("--files e2e " .. H.quote(dir .. "/msg_test.lua"))
    assert.equal(1, rc, out)
    assert.matches("\nspec: 2 passed, 2 failed, 0 skipped (e2e: 1 files)\n", out, 1, true)
    assert.matches('argument 4, "42", would be taken for its plain, not for a message', out, 1, true)
    assert.matches("argument 3, \"3\\\n", out, 1, true)
  end)

  it("asks an unreachable npm registry once for the whole run, and skips what needs it", function()
    local real = io.popen("command -v npm"):read("l")
    if not real then return pending("npm is not installed: nothing to probe with") end
    -- a port nothing listens on: bound, then closed
    local s = uv.new_tcp()
    assert(s:bind("127.0.0.1", 0))
    local port = s:getsockname().port
    s:close()
    local dir = H.tmpdir()
    -- every npm the tests start goes through this, which notes its arguments
    H.write(dir .. "/npm", string.format("#!/bin/sh\necho \"$*\" >>%s\nexec %s \"$@\"\n",
      H.quote(dir .. "/calls"), H.quote(real)))
    assert(uv.fs_chmod(dir .. "/npm", tonumber("755", 8)))
    local files = {}
    for i = 1, 3 do
      files[i] = H.quote(dir .. "/npm" .. i .. "_test.lua")
      H.write(dir .. "/npm" .. i .. "_test.lua", [[
local npm = require "tests.npm"
describe("npm]] .. i .. [[", function()
  it("needs npm", function()
    local d, why = npm.ensure()
    if not d then return pending(why) end
  end)
end)
]])
    end
    local rc, out = run("--files e2e " .. table.concat(files, " "), {
      PATH = dir .. ":" .. os.getenv("PATH"),
      npm_config_registry = "http://127.0.0.1:" .. port .. "/",
      ORKET_TEST_NPM_CACHE = dir .. "/cache",
      TEST_JOBS = "3",
    })
    assert.equal(0, rc, out)
    assert.matches("\nspec: 0 passed, 0 failed, 3 skipped (e2e: 3 files)\n", out, 1, true)
    local _, skips = out:gsub("SKIP: npm%d needs npm %(the npm registry cannot be reached", "")
    assert.equal(3, skips, out)
    -- one probe, and no install tried
    local calls = assert(H.read(dir .. "/calls"))
    assert.matches("^ping [^\n]*\n$", calls)
  end)
  -- A test that prints that it skipped a part passes, and the count says nothing of the
  -- part: a part that may not run is a test of its own, which calls pending(reason). The
  -- files still printing are the debt, a list that only shrinks.
  it("finds no test printing a skip instead of counting it, beyond a list that only shrinks", function()
    local DEBT = {
      ["tests/spec/core/proc_relay_spec.lua"] = true, ["tests/spec/core/proc_spec.lua"] = true,
      ["tests/e2e/agent_view_test.lua"] = true, ["tests/e2e/fullstack_test.lua"] = true,
      ["tests/e2e/notes_web_test.lua"] = true,
    }
    local found = {}
    local p = io.popen("cd " .. H.quote(H.ROOT) .. " && ls tests/spec/*/*.lua tests/e2e/*.lua")
    for path in p:lines() do
      local text = H.read(H.ROOT .. "/" .. path)
      if text:find("print%([^\n]-[Ss][Kk][Ii][Pp][Pp][Ee][Dd]") then found[path] = true end
    end
    p:close()
    for path in pairs(found) do
      assert.is_true(DEBT[path] or false, path .. " prints that it skipped a part: make it a test that calls pending(reason)")
    end
    for path in pairs(DEBT) do
      assert.is_true(found[path] or false, path .. " no longer prints a skip: take it off the list")
    end
  end)
end)
