-- A merged card whose tree the sandbox's plan refuses (here an image-only compose service,
-- redis, which Orket cannot run as a process) used to file nothing: the deploy said "no
-- sandbox started" in a run event alone, and `orket sandbox check --card` then ran the
-- card's checks against the sandbox of the commit before it and said "passed". The refusal
-- is now the card's failed check "the sandbox starts" (a follow-up, as for a failed start),
-- and check --card refuses a sandbox whose commit does not hold the card's merge.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local backends = require "tests.backends"
local proc = require "orket.c.proc"

local APP = [[
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), H).serve_forever()
]]

local COMPOSE = "services:\n  api:\n    build: .\n    command: [\"python3\", \"app.py\"]\n"
local BROKEN = COMPOSE .. "    depends_on: [cache]\n  cache:\n    image: redis:7-alpine\n"

-- AP-2 writes the compose file that adds the image-only service; AP-1 changes nothing
local SCRIPT = [[return { rules = {
  { card = "AP-2", role = "coder", sequence = {
    { tool_calls = { { name = "write_file", arguments = { path = "compose.yaml", content = %q } } } },
    { tool_calls = { { name = "update_issue_status", arguments = { status = "code_review" } } } } } },
  { role = "coder", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "code_review" } } } } },
  { role = "integrity_guard", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "done" } } } } },
}, default = { content = "Nothing more to do." } }
]]

local projects = {}
local function stop_all()
  for _, dir in ipairs(projects) do
    local r = H.orket("sandbox list --json", { cwd = dir })
    for _, row in ipairs(r.status == 0 and cjson.decode(r.stdout) or {}) do
      H.orket("sandbox stop " .. math.tointeger(row.id), { cwd = dir })
    end
  end
  projects = {}
  H.cleanup()
end

local function project()
  local dir = H.tmpdir() .. "/p"
  projects[#projects + 1] = dir
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  os.remove(dir .. "/epics/start.json")
  local checks = { { http = { path = "/health", status = 200 } } }
  H.write(dir .. "/epics/ap.json", cjson.encode { id = "AP", name = "App", issues = {
    { id = "AP-1", summary = "Serve", seat = "senior_developer", sandbox_checks = checks },
    { id = "AP-2", summary = "Cache", seat = "senior_developer", depends_on = { "AP-1" }, sandbox_checks = checks } } })
  H.write(dir .. "/script.lua", SCRIPT:format(BROKEN))
  H.write(dir .. "/workspace/app.py", APP)
  H.write(dir .. "/workspace/compose.yaml", COMPOSE)
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. [[

team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
sandbox = { deploy = "merge",
  health = { http = "/health", interval_ms = 200, timeout_ms = 1000, start_timeout_ms = 15000 } }
]])
  backends.project(dir)
  r = H.orket("import", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return dir
end

local function events(out)
  local evs = {}
  for line in out:gmatch("[^\n]+") do evs[#evs + 1] = cjson.decode(line) end
  return evs
end

describe("a merged card whose tree the sandbox's plan refuses", function()
  after_each(stop_all)

  it("fails its check 'the sandbox starts', and check --card refuses the older sandbox", function()
    local p = proc.probe()
    if not (p.netns and p.userns) then return pending("the kernel offers no network namespace here") end
    if not os.execute("command -v python3 >/dev/null 2>&1") then return pending("python3 is missing") end
    local dir = project()
    local r = H.orket("run AP --json --concurrency 1", { cwd = dir })
    local evs = events(r.stdout)
    local refused
    for _, ev in ipairs(evs) do
      if ev.type == "sandbox" and ev.action == "deploy" and ev.card == "AP-2" then refused = ev end
    end
    assert.is_table(refused, r.stdout .. r.stderr)
    assert.matches("no sandbox started: sandbox: compose.yaml:%d+: services.cache: image redis:7%-alpine only",
      refused.error)
    assert.is_nil(refused.owner_pid)
    -- and the run's end lists it among its failed checks
    local ended
    for _, ev in ipairs(evs) do if ev.type == "run_end" then ended = ev end end
    assert.is_table(ended, r.stdout)
    local listed = false
    for _, f in ipairs(ended.failed_checks or {}) do if f.card == "AP-2" then listed = true end end
    assert.is_true(listed, cjson.encode(ended))
    -- AP-2's check is journaled as failed, with the refusal, and a follow-up filed
    local check
    for _, ev in ipairs(H.card_json(dir, "AP-2").history) do
      if ev.kind == "sandbox_check" then check = ev end
    end
    assert.is_table(check, r.stdout)
    assert.is_false(check.data.passed)
    assert.equal("the sandbox starts", check.data.results[1].name)
    assert.matches("services.cache: image redis:7-alpine only", check.data.results[1].detail, 1, true)
    assert.equal("followup", check.data.outcome)
    assert.is_string(check.data.followup)
    assert.is_string(check.data.commit)
    local f = H.card_json(dir, check.data.followup)
    assert.equal("Sandbox checks fail for AP-2", f.card.summary)
    -- AP-1's sandbox (the commit before AP-2's merge) is still live: its checks would pass
    -- there, but it does not hold AP-2's change
    H.wait_for(function()
      local l = H.orket("sandbox list --json", { cwd = dir })
      local rows = l.status == 0 and cjson.decode(l.stdout) or {}
      return rows[1] and rows[1].status == "healthy"
    end, "AP-1's sandbox healthy")
    local c = H.orket("sandbox check --card AP-2", { cwd = dir })
    assert.equal(1, c.status, c.stdout .. c.stderr)
    assert.matches("does not hold AP%-2's change: AP%-2 was merged as %x+, which commit %x+ does not hold", c.stderr)
    assert.not_matches("passed", c.stdout, 1, true)
    -- AP-1's merge is in it: checked as before
    c = H.orket("sandbox check --card AP-1", { cwd = dir })
    assert.equal(0, c.status, c.stdout .. c.stderr)
    assert.matches("AP-1 (sandbox 1): passed", c.stdout, 1, true)
  end)
end)
