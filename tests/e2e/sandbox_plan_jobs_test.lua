-- What `orket sandbox plan` says a service waits for, and a job's port. The plan said
-- `api (started)` for a `depends_on: [api]`, while the run waits for api healthy before it
-- starts the next service; and a job (service_completed_successfully), planned with no port,
-- was given one anyway: every service told MIGRATE_URL, MIGRATE_PORT and MIGRATE_HOST, the
-- sandbox given an app.sock.PORT relay leading nowhere, the services after it a port further on.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local uv = require "luv"
local backends = require "tests.backends"

local function project(files, mark)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  for name, text in pairs(files) do
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace/" .. (name:match("^(.*)/") or ".")))
    H.write(dir .. "/workspace/" .. name, text)
  end
  H.commit_main(dir, "the app")
  if mark then
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format("\nsandbox = { env = { MARK = %q } }\n", mark))
  end
  backends.project(dir)
  return dir
end

-- migrate: a job; api after it; worker (no check) and web after api
local COMPOSE = [[
services:
  migrate:
    command: ["sh", "-c", "echo \"migrate: port=${PORT:-none} own=${MIGRATE_URL:-none}\""]
  api:
    command: ["sh", "-c", "echo \"api: migrate=${MIGRATE_URL:-none}\"; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1"]
    depends_on: {migrate: {condition: service_completed_successfully}}
  worker:
    command: ["sh", "-c", "while :; do sleep 1; done"]
    healthcheck: {disable: true}
    depends_on: [api]
  web:
    command: ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
    ports: ["8080"]
    depends_on: [api, worker]
]]

describe("a sandbox's plan", function()
  after_each(H.cleanup)

  it("says what the run waits for: a dependency healthy, whatever depends_on's condition", function()
    local dir = project({ ["compose.yaml"] = COMPOSE })
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("  migrate\n    folder:   the root\n    command:  sh -c ", r.stdout, 1, true)
    assert.matches("    port:     none (a job)\n", r.stdout, 1, true)
    -- api is awaited healthy (its TCP check), the worker up once it ran a while, the job to its end
    assert.matches("  api\n    folder:   the root\n    command:  sh -c ", r.stdout, 1, true)
    assert.matches("    port:     8081\n", r.stdout, 1, true)
    assert.matches("    after:    migrate (run to its end)\n", r.stdout, 1, true)
    assert.matches("    port:     8082\n    health:   none (the compose file turns it off): up once it has run 1000 ms\n"
      .. "    after:    api (healthy)\n", r.stdout, 1, true)
    assert.matches("    after:    api (healthy), worker (up: running 1000 ms, as it has no health check)\n", r.stdout, 1,
      true)
    assert.is_nil(r.stdout:find("(started)", 1, true))
  end)

  it("gives a job no port, no address and no socket", function()
    if not H.sandbox_offered("python3") then return pending("no network namespace here, or no python3") end
    local mark = "jobs" .. math.random(1, 1e9)
    local dir = project({ ["compose.yaml"] = COMPOSE }, mark)
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local row = F.sandbox_list(dir)[1]
    -- the ports of the services after the job are those the plan said
    assert.same({ "migrate=sh -c echo \"migrate: port=${PORT:-none} own=${MIGRATE_URL:-none}\"",
      "api:8081=sh -c echo \"api: migrate=${MIGRATE_URL:-none}\"; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1",
      "worker:8082=sh -c while :; do sleep 1; done",
      "web:8080=python3 -m http.server {port} --bind 127.0.0.1" }, row.command)
    local log = H.orket("sandbox logs 1", { cwd = dir }).stdout
    assert.matches("[migrate] migrate: port=none own=none\n", log, 1, true)
    assert.matches("[api] api: migrate=none\n", log, 1, true)
    -- a socket for each service but the job
    local home = dir .. "/.orket/sandboxes/1/"
    assert.equal("socket", uv.fs_stat(home .. "app.sock.8081").type)
    assert.equal("socket", uv.fs_stat(home .. "app.sock.8082").type)
    assert.is_nil(uv.fs_stat(home .. "app.sock.8083"))
    local status = F.sandbox_request(home .. "app.sock.8081", "/")
    assert.equal(200, status)
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #F.marked_procs(mark) == 0 end, "no service left running")
  end)
end)
