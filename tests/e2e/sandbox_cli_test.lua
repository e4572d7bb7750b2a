-- `orket sandbox plan` and `orket sandbox compose` on a project: what was detected and why,
-- as text and JSON; the compose file and Dockerfile written beside the tree and accepted by
-- a real Compose implementation (Debian's docker-compose, `config`); errors that say what
-- to do.
local H = require "tests.helpers"
local cjson = require "cjson"

local function project(files, orket_lua)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  for name, text in pairs(files) do H.write(dir .. "/workspace/" .. name, text) end
  H.commit_main(dir, "the app")
  if orket_lua then
    local cfg = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", cfg .. "\n" .. orket_lua .. "\n")
  end
  return dir
end

local function compose_tool()
  for _, c in ipairs { "docker-compose", "podman-compose" } do
    if os.execute("command -v " .. c .. " >/dev/null 2>&1") then return c end
  end
end

describe("orket sandbox", function()
  after_each(H.cleanup)

  it("plan says what runs and why, as text and JSON", function()
    local dir = project({ ["app.py"] = "print('hi')\n" })
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("stack:    python", r.stdout, 1, true)
    assert.matches("command:  python3 app.py", r.stdout, 1, true)
    assert.matches("app.py is a Python entry point", r.stdout, 1, true)
    r = H.orket("sandbox plan --json -C " .. H.quote(dir))
    assert.equal(0, r.status, r.stderr)
    local doc = cjson.decode(r.stdout)
    assert.equal("python", doc.stack)
    assert.same({ "python3", "app.py" }, doc.command)
    assert.equal("PORT", doc.port_env)
    assert.equal("manual", doc.deploy)
  end)

  it("plan takes orket.lua's command and names a bad setting with its field", function()
    local dir = project({}, 'sandbox = { command = { "python3", "-m", "http.server", "{port}" }, health = { http = "/" } }')
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("command:  python3 -m http.server {port}", r.stdout, 1, true)
    assert.matches("health:   HTTP GET /", r.stdout, 1, true)
    dir = project({}, 'sandbox = { deploy = "sometimes" }')
    r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("orket.lua: sandbox.deploy: must be", r.stderr, 1, true)
    r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("sandbox.deploy", r.stdout, 1, true)
  end)

  it("says what to do when nothing in the tree can run", function()
    local dir = project({ ["notes.txt"] = "x" })
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("add sandbox = { command = {...} } to orket.lua", r.stderr, 1, true)
    r = H.orket("sandbox", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("sandbox needs a subcommand", r.stderr, 1, true)
    r = H.orket("sandbox launch", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("unknown sandbox subcommand 'launch'", r.stderr, 1, true)
  end)

  it("compose writes a file Compose accepts, and never replaces one unasked", function()
    local dir = project({ ["package.json"] = '{"name":"n","scripts":{"start":"node server.js"}}', ["server.js"] = "" },
      'sandbox = { health = { http = "/health" } }')
    local r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local y = assert(H.read(dir .. "/deploy/compose.yaml"))
    local d = assert(H.read(dir .. "/deploy/Dockerfile"))
    assert.matches('context: "../workspace"', y, 1, true)
    assert.matches("FROM node:20", d, 1, true)
    r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("compose.yaml exists: not replaced (use --force)", r.stderr, 1, true)
    assert.equal(0, H.orket("sandbox compose --force", { cwd = dir }).status)
    local tool = compose_tool()
    if not tool then
      print("\n  skipped: the Compose check (neither docker-compose nor podman-compose is installed)")
      return
    end
    local out = io.popen("cd " .. H.quote(dir .. "/deploy") .. " && " .. tool .. " -f compose.yaml config 2>&1; echo rc=$?"):read("a")
    assert.matches("rc=0", out, 1, true)
    assert.matches("/health", out, 1, true)
    assert.matches("8080", out, 1, true)
  end)
end)
