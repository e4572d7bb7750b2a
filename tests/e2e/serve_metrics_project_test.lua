-- orket_state_machine_refusals_total{source="api"} is counted per project, and the server's
-- HTTP families are on the default project's page alone: a project's /metrics tells its
-- members nothing of another project's refused writes or traffic (docs/teams.md).
local H = require "tests.helpers"

local PASS = "correct horse battery"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

local function refusals(s, path, key)
  local st, text = H.fetch { url = s.url .. path, headers = { "Authorization: Bearer " .. key }, total_timeout_ms = 10000 }
  assert.equal(200, st)
  return tonumber(text:match('orket_state_machine_refusals_total{rule="ETRANSITION",source="api"} (%d+)'))
end

describe("the API's state-machine refusals in /metrics", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("are each project's own", function()
    local dir = H.example("webapp")
    local other = H.example("notes")
    ok(H.orket("projects add " .. other .. " --name notes", { cwd = dir }), "projects add")
    ok(H.orket("users add boss --role admin --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    ok(H.orket("users add bob --role viewer --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    local boss = ok(H.orket("keys create bk --role admin --for boss", { cwd = dir }), "key").stdout:gsub("\n$", "")
    local bob = ok(H.orket("keys create bv --role viewer --for bob", { cwd = dir }), "key").stdout:gsub("\n$", "")
    local s = H.serve(dir)
    assert.equal(0, refusals(s, "/metrics", bob))
    local st, doc = H.api(s, "POST", "/v1/projects/notes/cards/NOTES-1/move", boss, { to = "done" })
    assert.equal(409, st)
    assert.equal("ETRANSITION", doc.error.code)
    assert.equal(0, refusals(s, "/metrics", bob)) -- the default project's: none there
    assert.equal(1, refusals(s, "/v1/projects/notes/metrics", boss))
    st = H.api(s, "POST", "/v1/cards/API-2/move", boss, { to = "done" })
    assert.equal(409, st)
    assert.equal(1, refusals(s, "/metrics", bob))
    assert.equal(1, refusals(s, "/v1/projects/notes/metrics", boss))
  end)

  -- the server's request counters are by route, never by project: another project's page
  -- would tell its members how much traffic every other project has (docs/teams.md)
  it("has the server's HTTP families on the default project's page alone", function()
    local dir = H.example("webapp")
    local other = H.example("notes")
    ok(H.orket("projects add " .. other .. " --name notes", { cwd = dir }), "projects add")
    ok(H.orket("users add boss --role admin --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    local boss = ok(H.orket("keys create bk --role admin --for boss", { cwd = dir }), "key").stdout:gsub("\n$", "")
    local s = H.serve(dir)
    assert.equal(200, (H.api(s, "GET", "/v1/projects/notes/cards/NOTES-1", boss)))
    local function page(path)
      local st, text = H.fetch { url = s.url .. path, headers = { "Authorization: Bearer " .. boss }, total_timeout_ms = 10000 }
      assert.equal(200, st)
      return text
    end
    local theirs = page("/v1/projects/notes/metrics")
    assert.is_nil(theirs:find("orket_http_", 1, true), theirs)
    assert.truthy(theirs:find("\norket_cards{", 1, true)) -- the project's own figures are there
    local default = page("/metrics")
    assert.truthy(default:find('\norket_http_requests_total{route="/v1/projects/{p}/cards/{id}",status="200"} 1\n', 1, true),
      default)
    assert.truthy(default:find("\n# TYPE orket_http_request_duration_seconds histogram\n", 1, true))
    assert.truthy(page("/v1/projects/default/metrics"):find("\norket_http_requests_total{", 1, true))
  end)
end)
