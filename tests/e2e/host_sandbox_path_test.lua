-- A project whose path is too long for its sandbox's unix socket (a deep CI checkout, e.g.
-- /home/runner/work/REPO/REPO/...) is a limit of the host, not a fault of the cards: the
-- deploy's start failure used to be filed as each card's failed check, a bug or follow-up
-- issue per card that no change of theirs could fix. It is now the start skipped, said at
-- the run's end with the fix, and orket validate and orket sandbox plan warn beforehand.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local backends = require "tests.backends"

local SERVER = [[
const http = require('http');
http.createServer((req, res) => res.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');
]]

-- a project at a path of about 100 bytes: its socket, DIR/.orket/sandboxes/1/app.sock, is
-- past the 101 bytes a unix socket allows with ".probe"
local function project()
  local base = H.tmpdir()
  local dir = base .. "/" .. string.rep("w", math.max(8, 100 - #base - 1))
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  os.remove(dir .. "/epics/start.json")
  H.write(dir .. "/epics/e.json", cjson.encode { id = "E", name = "Serve", issues = { { id = "E-1",
    summary = "Serve the page", seat = "senior_developer",
    sandbox_checks = { { http = { path = "/", name = "the page" } } } } } })
  H.write(dir .. "/script.lua", F.HAND_IN_SCRIPT)
  H.write(dir .. "/workspace/server.js", SERVER)
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. [[

team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
sandbox = { deploy = "epic", command = { "node", "server.js" },
  health = { http = "/", interval_ms = 200, timeout_ms = 1000, start_timeout_ms = 15000 } }
]])
  backends.project(dir)
  r = H.orket("import", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return dir
end

describe("a project path too long for a sandbox's socket", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is warned of by validate and sandbox plan, and a deploy skips the checks: no bug, no follow-up", function()
    if not os.execute("command -v node >/dev/null 2>&1") then return pending("node is missing") end
    local dir = project()
    local v = H.orket("validate", { cwd = dir })
    assert.equal(0, v.status, v.stdout .. v.stderr)
    assert.matches("warning: orket.lua: sandbox.deploy = \"epic\": a sandbox cannot start in this folder: the "
      .. "sandbox's socket path ", v.stdout, 1, true)
    assert.matches("move the project to a path of at most", v.stdout, 1, true)
    assert.matches("(1 warning)", v.stdout, 1, true)
    local p = H.orket("sandbox plan --json", { cwd = dir })
    assert.equal(0, p.status, p.stderr)
    assert.is_table(cjson.decode(p.stdout)) -- the JSON stays whole
    assert.matches("orket: warning: a sandbox cannot start in this folder: ", p.stderr, 1, true)

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
    assert.matches("longer than a unix socket allows", skipped.why, 1, true)
    assert.matches("move the project to a path of at most", skipped.why, 1, true)
    -- the card stays done, and nothing was filed for it
    assert.equal("done", H.card_json(dir, "E-1").card.status)
    local board = H.orket("board --json", { cwd = dir })
    assert.equal(0, board.status, board.stderr)
    assert.not_matches("Sandbox checks fail for", board.stdout, 1, true)
    local check
    for _, ev in ipairs(H.card_json(dir, "E-1").history) do
      if ev.kind == "sandbox_check" then check = ev end
    end
    assert.is_table(check)
    assert.is_true(check.data.passed)
    assert.is_nil(check.data.followup)
  end)
end)
