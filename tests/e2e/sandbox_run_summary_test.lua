-- A run that deploys its merged card's sandbox waits for the deploy's acceptance checks at
-- its end, and its end summary (run_end in --json) lists those that could not run here,
-- with their reasons: here a browser check whose browser cannot start (a TMPDIR too long
-- for the browser's socket), never a failure or a bug.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local backends = require "tests.backends"

local SERVER = [[
const http = require('http');
http.createServer((req, res) => res.end(req.url === '/notes' ? 'notes' : 'ok'))
  .listen(Number(process.env.PORT), '127.0.0.1');
]]

local function project(o)
  o = o or {}
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  os.remove(dir .. "/epics/start.json")
  H.write(dir .. "/epics/e.json", cjson.encode { id = "E", name = "Serve notes", issues = { { id = "E-1",
    summary = "Serve the notes", seat = "senior_developer", sandbox_checks = o.checks or {
      { http = { path = "/notes", name = "the notes" } },
      { browser = { path = "/", selector = "body", name = "the page" } } } } } })
  H.write(dir .. "/script.lua", F.HAND_IN_SCRIPT)
  H.write(dir .. "/workspace/server.js", SERVER)
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. [[

team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
sandbox = { deploy = "]] .. (o.deploy or "merge") .. [[", command = { "node", "server.js" },
  health = { http = "/", interval_ms = 200, timeout_ms = 1000, start_timeout_ms = 15000 } }
]])
  backends.project(dir)
  r = H.orket("import", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return dir
end

local function events(stdout)
  local out = {}
  for line in stdout:gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
  return out
end

describe("a run's end summary", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("lists the deploy's acceptance checks that could not run here, with their reasons", function()
    local p = require("orket.c.proc").probe()
    if not (p.netns and p.userns and os.execute("command -v node >/dev/null 2>&1")) then
      return pending("the kernel offers no network namespace here, or node is missing")
    end
    local dir = project()
    -- a TMPDIR whose browser profile's socket path would be too long: no browser starts
    local tmp = H.tmpdir() .. "/" .. string.rep("t", 90)
    assert(os.execute("mkdir -p " .. H.quote(tmp) .. " && chmod 0777 " .. H.quote(tmp)))
    local r = H.orket("run E --json", { cwd = dir, env = { TMPDIR = tmp } })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local evs = events(r.stdout)
    local ended, said = evs[#evs], nil
    for _, ev in ipairs(evs) do
      if ev.type == "sandbox_check_skipped" then said = ev end
    end
    assert.equal("run_end", ended.type)
    assert.equal("done", ended.status)
    -- said as the run ended, once its deploy's checks had run, and again in run_end
    assert.is_table(said, r.stdout)
    assert.equal("E-1", said.card)
    assert.equal("the page", said.name)
    assert.matches("too long for a unix socket", said.why, 1, true)
    assert.equal(1, #ended.skipped_checks)
    assert.same({ card = "E-1", name = "the page", why = said.why, sandbox = said.sandbox }, ended.skipped_checks[1])
    -- skipped, never failed: the card stays done and the HTTP check passed
    assert.equal("done", H.card_json(dir, "E-1").card.status)
    local check
    for _, ev in ipairs(H.card_json(dir, "E-1").history) do
      if ev.kind == "sandbox_check" then check = ev end
    end
    assert.is_true(check.data.passed)
    assert.is_true(check.data.results[1].ok)
    local sb = H.healthy_sandbox(dir, {})
    assert.equal(0, H.orket("sandbox stop " .. math.tointeger(sb.id), { cwd = dir }).status)
  end)

  -- with deploy = "epic" the checks run once the epic is done: a failure then sends nothing
  -- back within the run, and the run ended "done" without a word of it
  it("says the deploy's acceptance checks that failed after the epic was done, and what was filed", function()
    if not os.execute("command -v node >/dev/null 2>&1") then return pending("node is missing") end
    local dir = project { deploy = "epic", checks = { { http = { path = "/notes", name = "the notes",
      contains = "a word the app never says" } } } }
    local r = H.orket("run E --json", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local evs = events(r.stdout)
    local ended, said = evs[#evs], nil
    for _, ev in ipairs(evs) do
      if ev.type == "sandbox_check_failed" then said = ev end
    end
    assert.equal("run_end", ended.type)
    assert.is_table(said, r.stdout)
    assert.same({ "E-1", "followup", { "the notes" } }, { said.card, said.outcome, said.failed })
    assert.is_string(said.followup)
    assert.same({ { card = "E-1", sandbox = said.sandbox, outcome = "followup", followup = said.followup,
      failed = { "the notes" } } }, ended.failed_checks)
    -- the follow-up is a card the next run works
    assert.equal("ready", H.card_json(dir, said.followup).card.status)
    local sb = H.healthy_sandbox(dir, {})
    assert.equal(0, H.orket("sandbox stop " .. math.tointeger(sb.id), { cwd = dir }).status)
  end)
end)
