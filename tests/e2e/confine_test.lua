-- The binary's hidden helper mode (`orket --confine-exec`), what the process runner spawns:
-- it runs before any Lua, refuses to start outside the runner (no report pipe on fd 3),
-- reports a malformed spec on fd 3 and never runs a program it could not confine as asked.
local H = require "tests.helpers"

teardown(H.cleanup)

-- Runs `orket ARGS` with fd 3 (the report pipe) going to what we read, if `report`, and
-- only `env` (the words of env(1)) for its environment, as the runner spawns it.
local function helper(args, report, env)
  local dir = H.tmpdir()
  local redirect = report and string.format("3>%s/report", dir) or "3>&-"
  local cmd = string.format("setsid env -i %s %s --confine-exec %s %s >%s/out 2>%s/err </dev/null; echo $?",
    env or "", H.quote(H.BIN), args, redirect, dir, dir)
  local p = io.popen(cmd)
  local status = tonumber(p:read("a"))
  p:close()
  return { status = status, report = H.read(dir .. "/report"), stdout = H.read(dir .. "/out"), stderr = H.read(dir .. "/err") }
end

describe("orket --confine-exec", function()
  it("does nothing without the runner's report pipe", function()
    local r = helper("'0 0 0 0 0 0 0 0' /tmp '' 0 sh -c 'echo ran'", false)
    assert.equal(127, r.status)
    assert.equal("", r.stdout)
    assert.equal("", r.stderr)
  end)

  it("reports a malformed spec and runs nothing", function()
    local r = helper("'0 0 x' /tmp '' 0 sh -c 'echo ran'", true)
    assert.equal(127, r.status)
    assert.equal("", r.stdout)
    assert.matches("^F spec bad numbers", r.report)
    r = helper("", true)
    assert.equal(127, r.status)
    assert.equal("F spec too few arguments\n", r.report)
  end)

  it("refuses an environment that does not hold what the spec counts", function()
    -- the count is in argv, the entries in the environment (argv is readable by any user)
    local r = helper("'0 0 0 0 0 0 0 0' /tmp '' 1 sh -c 'echo ran'", true, "PATH=/usr/bin:/bin")
    assert.equal(127, r.status)
    assert.equal("", r.stdout)
    assert.equal("F spec the environment holds 0 entries, the spec counts 1\n", r.report)
  end)

  it("fails closed on a required layer switched off", function()
    -- want nothing optional, require netns (bit 8 = 256)
    local r = helper("'0 256 0 0 0 0 0 0' /tmp '' 0 sh -c 'echo ran'", true)
    assert.equal(127, r.status)
    assert.equal("", r.stdout)
    assert.matches("F netns required layer 'netns' is not available: switched off", r.report)
  end)

  it("runs the program with the layers it reports", function()
    local ws = H.tmpdir()
    local r = helper("'0 0 0 0 0 0 0 0' " .. H.quote(ws) .. " '' 2 sh -c 'echo ran; pwd; echo \"$A\"; env | sort; exit 4'",
      true, "'ORKET_CONFINE_ENV_1=A=x y' ORKET_CONFINE_ENV_0=PATH=/usr/bin:/bin OTHER=1")
    assert.equal(4, r.status)
    -- the program's environment: the prefixed entries, without their prefix; nothing else
    assert.equal("ran\n" .. ws .. "\nx y\nA=x y\nPATH=/usr/bin:/bin\nPWD=" .. ws .. "\n", r.stdout)
    -- session fds env cwd rlimits = 31; no optional layer asked for
    assert.matches("\nL 31 %d+\n", r.report)
    assert.matches("\nX %d+ %d+\n$", r.report)
  end)
end)
