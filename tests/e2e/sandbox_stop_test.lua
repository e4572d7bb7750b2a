-- A sandbox's stop, as `docker stop` and `docker compose down` do it: each service is sent
-- SIGTERM (Orket's PostgreSQL SIGINT, its fast shutdown), those that depend on others first,
-- and has the stop's time (10 s) to end; what is left then is killed. The stop once reached
-- no service: the helper SIGKILLed them all, so an app's own shutdown never ran and a kept
-- PostgreSQL recovered from a crash at each redeploy. Its owner killed still leaves nothing.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local uv = require "luv"
local backends = require "tests.backends"

-- an app that shuts down in its own time on SIGTERM, saying so
local API = [[
import http.server, os, signal, sys, time
def term(*a):
    print("api got SIGTERM", flush=True)
    time.sleep(1)
    print("api shut down cleanly", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("api up", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler).serve_forever()
]]

local function project(files, mark, more)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  for name, text in pairs(files) do
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace/" .. (name:match("^(.*)/") or ".")))
    H.write(dir .. "/workspace/" .. name, text)
  end
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format("\nsandbox = { env = { MARK = %q }%s }\n", mark,
    more or ""))
  backends.project(dir)
  return dir
end

local function pg() return require("orket.sandboxes.database").pg_bin() end

-- the compose file: api (on PostgreSQL where it is installed), a service that ignores
-- SIGTERM and the published web, both after api
local function compose(with_db)
  return (with_db and "services:\n  db:\n    image: postgres:15\n" or "services:\n") .. [[
  api:
    build: api
    command: ["python3", "app.py"]
]] .. (with_db and "    depends_on: [db]\n" or "") .. [[
  stubborn:
    command: ["bash", "-c", "trap 'echo stubborn ignores TERM' TERM; while :; do sleep 0.05; done"]
    healthcheck: {disable: true}
    depends_on: [api]
  web:
    command: ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
    ports: ["8080"]
    depends_on: [api]
]]
end

describe("a sandbox's stop", function()
  local skip
  setup(function()
    if not H.sandbox_offered("python3") then skip = "the kernel offers no network namespace here, or python3 is missing" end
  end)
  after_each(H.cleanup)

  it("sends each service SIGTERM, dependants first, gives it its time, and kills one that ignores it in time",
    function()
    if skip then return pending(skip) end
    local mark = "stop" .. math.random(1, 1e9)
    local dir = project({ ["compose.yaml"] = compose(pg() ~= nil), ["api/app.py"] = API }, mark)
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local t0 = uv.hrtime()
    r = H.orket("sandbox stop 1", { cwd = dir })
    local took = (uv.hrtime() - t0) / 1e6
    -- (the stop's own wait outlasts its first 5 s: the owner says how long it may take)
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("sandbox 1 stopped", r.stdout, 1, true)
    local log = H.orket("sandbox logs 1", { cwd = dir }).stdout
    assert.matches("[api] api got SIGTERM", log, 1, true)
    assert.matches("[api] api shut down cleanly", log, 1, true)
    assert.matches("[stubborn] stubborn ignores TERM", log, 1, true)
    -- api was stopped only once those after it had ended: web and the stubborn one, which
    -- held its group to the stop's time less the shares kept for api's and db's groups
    assert.is_true(log:find("[stubborn] stubborn ignores TERM", 1, true) < log:find("[api] api got SIGTERM", 1, true))
    if pg() then
      -- a clean shutdown, with its checkpoint: the next start of a kept database recovers
      -- from no crash ("database system was not properly shut down")
      assert.matches("%[db%] [^\n]*received fast shutdown request", log)
      assert.matches("%[db%] [^\n]*database system is shut down", log)
      assert.is_true(log:find("api shut down cleanly", 1, true) < log:find("received fast shutdown request", 1, true))
    end
    -- within the stop's 10 s, and the second the script may take to kill what is left
    assert.is_true(took > 5000 and took < 10000 + 1000 + 2500, string.format("the stop took %.0f ms", took))
    H.wait_for(function() return #F.marked_procs(mark) == 0 end, "no service left running")
    -- the owner's note of how long its stop may take goes with the stop
    assert.is_nil(uv.fs_stat(dir .. "/.orket/sandboxes/1/stopping"))
  end)

  it("gives the services sandbox.stop_timeout_ms in all when orket.lua sets it", function()
    if skip then return pending(skip) end
    local mark = "stop" .. math.random(1, 1e9)
    local dir = project({ ["compose.yaml"] = compose(false), ["api/app.py"] = API }, mark, ", stop_timeout_ms = 2500")
    assert.equal(0, H.orket("sandbox up --detach", { cwd = dir }).status)
    local t0 = uv.hrtime()
    local r = H.orket("sandbox stop 1", { cwd = dir })
    local took = (uv.hrtime() - t0) / 1e6
    assert.equal(0, r.status, r.stdout .. r.stderr)
    -- the stubborn one was killed within the 2.5 s (and the second the script may take),
    -- not held for docker stop's 10 s; api still had its time after it
    assert.is_true(took < 2500 + 1000 + 1500, string.format("the stop took %.0f ms", took))
    local log = H.orket("sandbox logs 1", { cwd = dir }).stdout
    assert.matches("[stubborn] stubborn ignores TERM", log, 1, true)
    assert.matches("[api] api got SIGTERM", log, 1, true)
    H.wait_for(function() return #F.marked_procs(mark) == 0 end, "no service left running")
  end)

  it("sends the app of one service SIGTERM and waits for its end", function()
    if skip then return pending(skip) end
    local mark = "stop" .. math.random(1, 1e9)
    local dir = project({ ["app.py"] = (API:gsub("api ", "app ")) }, mark)
    assert.equal(0, H.orket("sandbox up --detach", { cwd = dir }).status)
    local t0 = uv.hrtime()
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    assert.is_true((uv.hrtime() - t0) / 1e6 < 8000)
    local log = H.orket("sandbox logs 1", { cwd = dir }).stdout
    assert.matches("app got SIGTERM\napp shut down cleanly\n", log, 1, true)
    H.wait_for(function() return #F.marked_procs(mark) == 0 end, "no process left running")
  end)

  it("leaves nothing running when its owner is killed during the stop", function()
    if skip then return pending(skip) end
    local mark = "stop" .. math.random(1, 1e9)
    local dir = project({ ["compose.yaml"] = compose(false), ["api/app.py"] = API }, mark)
    assert.equal(0, H.orket("sandbox up --detach", { cwd = dir }).status)
    local owner = math.tointeger(F.sandbox_list(dir)[1].owner_pid)
    -- the stop asked in the background; the owner killed while the stubborn service holds it
    os.execute(string.format("cd %s && { %s sandbox stop 1 >stop.out 2>&1 </dev/null & echo $! >stop.pid; wait $!; "
      .. "echo $? >stop.rc; } >/dev/null 2>&1 &", H.quote(dir), H.quote(H.BIN)))
    local ok, err = pcall(function()
      H.wait_for(function()
        return (H.read(dir .. "/.orket/sandboxes/1/app.log") or ""):find("stubborn ignores TERM", 1, true)
      end, "the stop to reach the services")
      os.execute("kill -9 " .. owner)
      H.wait_for(function() return #F.marked_procs(mark) == 0 end, "no service left running")
      H.wait_for(function() return H.read(dir .. "/stop.rc") end, "the stop command's end")
    end)
    H.end_started(dir, "stop.pid", "stop.rc", true)
    assert(ok, err)
  end)
end)
