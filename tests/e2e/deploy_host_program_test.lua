-- A sandbox whose program this host does not have (go not installed: exec's ENOENT on a
-- bare name) is a limit of the host, not a fault of the app: a deploy used to file it as
-- each card's failed check, a bug or follow-up no change to the tree could fix. The start
-- is now skipped with why, as for a socket path too long (tests/e2e/host_sandbox_path_test.lua);
-- a program named by its path in the tree (./server) is still the app's.
local H = require "tests.helpers"
local cjson = require "cjson"
local backends = require "tests.backends"
local proc = require "orket.c.proc"

local MISSING = "orket-test-no-such-runtime"

local SCRIPT = [[return { rules = {
  { role = "coder", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "code_review" } } } } },
  { role = "integrity_guard", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "done" } } } } },
}, default = { content = "Nothing more to do." } }
]]

local function project(command)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  os.remove(dir .. "/epics/start.json")
  H.write(dir .. "/epics/e.json", cjson.encode { id = "E", name = "Serve", issues = { { id = "E-1",
    summary = "Serve the page", seat = "senior_developer",
    sandbox_checks = { { http = { path = "/", name = "the page" } } } } } })
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/workspace/main.go", "package main\n")
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format([[

team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
sandbox = { deploy = "merge", command = { %q, "run", "." },
  health = { http = "/", interval_ms = 200, timeout_ms = 1000, start_timeout_ms = 15000 } }
]], command))
  backends.project(dir)
  r = H.orket("import", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return dir
end

local function offered()
  local p = proc.probe()
  return p.netns and p.userns
end

describe("a sandbox's program this host does not have", function()
  after_each(function() H.cleanup() end)

  it("skips a deploy's checks with why: no bug, no follow-up", function()
    if not offered() then return pending("the kernel offers no network namespace here") end
    local dir = project(MISSING)
    local r = H.orket("run E --json", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local evs = {}
    for line in r.stdout:gmatch("[^\n]+") do evs[#evs + 1] = cjson.decode(line) end
    local ended, skipped, failed = evs[#evs], nil, nil
    for _, ev in ipairs(evs) do
      if ev.type == "sandbox_check_skipped" then skipped = ev end
      if ev.type == "sandbox_check_failed" then failed = ev end
    end
    assert.equal("run_end", ended.type)
    assert.equal("done", ended.status)
    assert.is_nil(failed, r.stdout)
    assert.is_table(skipped, r.stdout)
    assert.equal("E-1", skipped.card)
    assert.equal("the sandbox starts", skipped.name)
    assert.matches(MISSING .. " is not installed here", skipped.why, 1, true)
    assert.equal("done", H.card_json(dir, "E-1").card.status)
    local board = H.orket("board --json", { cwd = dir })
    assert.not_matches("Sandbox checks fail for", board.stdout, 1, true)
    -- by hand, said the same way
    local up = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, up.status, up.stdout .. up.stderr)
    assert.matches("sandbox: a limit of this host, not a fault of the app: " .. MISSING .. " is not installed here: "
      .. "cannot run " .. MISSING .. ": no such file or directory (ENOENT); the sandbox looks for it in "
      .. "PATH=/usr/local/bin:/usr/bin:/bin", up.stderr, 1, true)
  end)

  it("still sends back a program named by its path in the tree that is not there", function()
    if not offered() then return pending("the kernel offers no network namespace here") end
    local dir = project("./" .. MISSING)
    local r = H.orket("run E --json", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local failed
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cjson.decode(line)
      if ev.type == "sandbox_check_failed" then failed = ev end
    end
    assert.is_table(failed, r.stdout)
    assert.equal("E-1", failed.card)
    assert.same({ "the sandbox starts" }, failed.failed)
    assert.matches("Sandbox checks fail for E-1", H.orket("board --json", { cwd = dir }).stdout, 1, true)
  end)
end)
