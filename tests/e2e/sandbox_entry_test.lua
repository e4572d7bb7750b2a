-- The entry of a sandbox of several services (the one its socket reaches) and its port: an
-- entry that never listens there fails the start naming it and its port (of five services,
-- "Connection refused" named none), and a port another service holds before the entry
-- starts fails the start naming that service (it answered the entry's probe, and the
-- sandbox was said healthy with the entry listening nowhere).
local H = require "tests.helpers"
local F = require "tests.fixtures"
local backends = require "tests.backends"

local function project(compose, mark)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  H.write(dir .. "/workspace/compose.yaml", compose)
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format(
    "\nsandbox = { env = { MARK = %q }, health = { start_timeout_ms = 3000 } }\n", mark))
  backends.project(dir)
  return dir
end

-- api answers on its $PORT; web is the entry (it publishes a port)
local API = [[
  api:
    command: ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
]]

describe("a sandbox's entry", function()
  local skip
  setup(function()
    if not H.sandbox_offered("python3") then skip = "the kernel offers no network namespace here, or python3 is missing" end
  end)
  after_each(H.cleanup)

  it("that never listens on its port fails the start naming it and its port", function()
    if skip then return pending(skip) end
    local mark = "entry" .. math.random(1, 1e9)
    local dir = project("services:\n" .. API .. [[
  web:
    command: ["python3", "-m", "http.server", "3000", "--bind", "127.0.0.1"]
    ports: ["8080"]
    depends_on: [api]
]], mark)
    local r = H.orket("sandbox up", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    local said = "not healthy within 3000 ms (health.start_timeout_ms): web: nothing answered a TCP connect to its "
      .. "port 8080 (its $PORT) on 127.0.0.1"
    assert.matches(said, r.stderr, 1, true)
    assert.matches(said, F.sandbox_list(dir, true)[1].detail, 1, true)
    H.wait_for(function() return #F.marked_procs(mark) == 0 end, "no service left running")
  end)

  it("fails to start when another service holds its port, naming that service", function()
    if skip then return pending(skip) end
    local mark = "entry" .. math.random(1, 1e9)
    -- the worker listens on the entry's port (it ignores its own $PORT) and never accepts;
    -- web listens elsewhere: the worker answered the probe in web's stead
    local dir = project("services:\n" .. API .. [[
  worker:
    command: ["python3", "-c", "import os, socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', int(os.environ['WEB_PORT'])))\ns.listen()\nprint('worker listening', flush=True)\ntime.sleep(3600)"]
    healthcheck: {disable: true}
    depends_on: [api]
  web:
    command: ["python3", "-m", "http.server", "3000", "--bind", "127.0.0.1"]
    ports: ["8080"]
    depends_on: [api, worker]
]], mark)
    -- (detached: said healthy, it returned at once, instead of serving in the foreground)
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    local said = "web: its port 8080 (its $PORT) was taken before it started, by worker (a service listens on its own "
      .. "$PORT, never on another's)"
    assert.matches("orket: " .. said, r.stderr, 1, true)
    assert.is_nil(r.stderr:find("orket: starting web", 1, true))
    assert.matches(said, F.sandbox_list(dir, true)[1].detail, 1, true)
    H.wait_for(function() return #F.marked_procs(mark) == 0 end, "no service left running")
  end)
end)
