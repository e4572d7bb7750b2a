-- A stop of a sandbox of several services, as the services' script does it (orket.sandboxes.
-- supervise): as `docker compose down`, each service is sent SIGTERM (Orket's PostgreSQL
-- SIGINT), those that depend on others first, and has the stop's time to end before what is
-- left is killed. The script alone here, on this host's loopback, stopped by a SIGTERM as the
-- confinement helper passes it on; tests/e2e/sandbox_stop_test.lua stops whole sandboxes.
local uv = require "luv"
local supervise = require "orket.sandboxes.supervise"
local H = require "tests.helpers"
local F = require "tests.fixtures"

-- run(compose, stop_ms) -> dir, pid, rc(): the script of compose's services started in the
-- background in dir (its output in dir/out), its pid, and rc() its status once it ended
local function run(compose, stop_ms, env)
  local p = assert(F.sandbox_detect({ ["compose.yaml"] = compose }))
  local base = { HOST = "127.0.0.1" }
  for k, v in pairs(env or {}) do base[k] = v end
  local script = assert(supervise.script(p, supervise.ports(p, H.free_port()), base, 20000, { stop_ms = stop_ms }))
  local dir = H.tmpdir()
  H.write(dir .. "/s.sh", script)
  os.execute(string.format("cd %s && { bash s.sh >out 2>&1 </dev/null & echo $! >pid; wait $!; echo $? >rc; } "
    .. ">/dev/null 2>&1 &", H.quote(dir)))
  local pid = H.wait_for(function() return tonumber((H.read(dir .. "/pid") or ""):match("^%d+")) end, "the script's pid")
  return dir, pid, function() return tonumber((H.read(dir .. "/rc") or ""):match("^%d+")) end
end

local function said(dir) return H.read(dir .. "/out") or "" end

describe("a stop of a sandbox's services", function()
  local started = {}
  after_each(function()
    for _, dir in ipairs(started) do H.end_started(dir, "pid", "rc", true) end
    started = {}
    H.cleanup()
  end)

  it("gives each its time on SIGTERM, dependants first, and kills one that ignores it within the stop's time",
    function()
    local marks = H.tmpdir()
    -- api takes 0.7 s to shut down (the script gave half a second, then SIGKILL), and
    -- writes a file once done; web, which depends on it, notes its own end first; stubborn
    -- ignores SIGTERM
    local dir, pid, rc = run(string.format([[
services:
  api:
    command: ["bash", "-c", "trap 'echo api got TERM; sleep 0.7; ls %s >%s/api.saw; echo api done >%s/api; exit 0' TERM; echo api up; while :; do sleep 0.05; done"]
    healthcheck: {disable: true}
  stubborn:
    command: ["bash", "-c", "trap 'echo stubborn ignores TERM' TERM; while :; do sleep 0.05; done"]
    healthcheck: {disable: true}
    depends_on: [api]
  web:
    command: ["bash", "-c", "trap 'echo web done >%s/web; exit 0' TERM; while :; do sleep 0.05; done"]
    healthcheck: {disable: true}
    depends_on: [api]
]], marks, marks, marks, marks), 4000)
    started[#started + 1] = dir
    H.wait_for(function() return said(dir):find("orket: every service is started", 1, true) end, "the services' start")
    local t0 = uv.hrtime()
    uv.kill(pid, "sigterm")
    H.wait_for(rc, "the script's end")
    local took = (uv.hrtime() - t0) / 1e6
    assert.equal(143, rc())
    -- api ended as it meant to, after its dependants (web's file was there when it looked)
    assert.equal("api done\n", H.read(marks .. "/api"), said(dir))
    assert.equal("web done\n", H.read(marks .. "/web"))
    assert.matches("web", H.read(marks .. "/api.saw"), 1, true)
    assert.matches("[stubborn] stubborn ignores TERM", said(dir), 1, true)
    -- stubborn held its group to the stop's time less the share kept for api's group (4000
    -- ms over twice the two groups), then was killed: the whole within the stop's time (and
    -- the moment after it)
    assert.is_true(took >= 3000 and took < 4000 + 800, string.format("the stop took %.0f ms", took))
    H.wait_for(function() return #H.processes("stubborn ignores") == 0 end, "no service left")
  end)

  it("sends a job under way its SIGTERM at once, not after it ends", function()
    local marks = H.tmpdir()
    local dir, pid, rc = run(string.format([[
services:
  migrate:
    command: ["bash", "-c", "trap 'echo migrate stopped >%s/migrate; exit 3' TERM; echo migrating; while :; do sleep 0.05; done"]
  api:
    command: ["bash", "-c", "while :; do sleep 1; done"]
    healthcheck: {disable: true}
    depends_on: {migrate: {condition: service_completed_successfully}}
]], marks), 10000)
    started[#started + 1] = dir
    H.wait_for(function() return said(dir):find("[migrate] migrating", 1, true) end, "the job's start")
    local t0 = uv.hrtime()
    uv.kill(pid, "sigterm")
    H.wait_for(rc, "the script's end")
    -- (bash ran its trap only once a job in the foreground ended: here, never)
    assert.is_true((uv.hrtime() - t0) / 1e6 < 3000)
    assert.equal(143, rc())
    assert.equal("migrate stopped\n", H.read(marks .. "/migrate"))
  end)

  it("signals Orket's PostgreSQL with SIGINT, after the services that depend on it", function()
    local p = { port_env = "PORT", services = {
      { name = "db", dir = "", database = "postgresql", depends_on = {} },
      { name = "migrate", dir = "", command = { "true" }, job = true, depends_on = { { name = "db" } } },
      { name = "api", dir = "", command = { "api" }, depends_on = { { name = "migrate" } } },
      { name = "worker", dir = "", command = { "worker" }, depends_on = { { name = "api" } } },
      { name = "web", dir = "", command = { "web" }, entry = true, depends_on = { { name = "api" } } } } }
    -- web and worker together, then api, then db (through the job, which has ended)
    assert.same({ { 5, 4 }, { 3 }, { 1 } }, supervise.stop_waves(p))
    assert.equal("INT", supervise.stop_signal(p.services[1]))
    assert.equal("TERM", supervise.stop_signal(p.services[3]))
    if not require("orket.sandboxes.database").pg_bin() then return end
    local text = assert(supervise.script(p, supervise.ports(p, 8080), { HOST = "127.0.0.1" }, 5000, { home = H.tmpdir() }))
    assert.matches('stop_wave 3 TERM "${stepping:-}"; stop_wave 3 TERM "${pid_5:-}" TERM "${pid_4:-}"; '
      .. 'stop_wave 2 TERM "${pid_3:-}"; stop_wave 1 INT "${pid_1:-}"', text, 1, true)
  end)
end)
