-- Several services in one sandbox: the services found in the tree's folders or read from
-- the repository's compose file (orket.sandboxes.plan, composefile, yamldoc), each error
-- naming the file and line, and what each service is told (orket.sandboxes.supervise).
local ss = require "orket.settings.sandbox"
local composefile = require "orket.sandboxes.composefile"
local supervise = require "orket.sandboxes.supervise"
local H = require "tests.helpers"
local F = require "tests.fixtures"

local detect = F.sandbox_detect

local function names(p)
  local out = {}
  for i, sv in ipairs(p.services) do out[i] = sv.name .. (sv.entry and "*" or "") end
  return out
end

describe("services found in the tree's folders", function()
  after_each(H.cleanup)

  it("plan a backend/ and a frontend/ (a FastAPI app and a Vite one), the frontend reached from outside", function()
    local p = assert(detect {
      ["backend/main.py"] = "from fastapi import FastAPI\napp = FastAPI()\n",
      ["backend/requirements.txt"] = "fastapi\nuvicorn\n",
      ["frontend/package.json"] = '{"name": "web", "scripts": {"dev": "vite"}}',
      ["README.md"] = "the seeds\n",
    })
    assert.same({ "backend", "frontend*" }, names(p))
    local back, front = p.services[1], p.services[2]
    assert.equal("backend", back.dir)
    assert.same({ "python3", "-m", "uvicorn", "main:app", "--host", "{host}", "--port", "{port}" }, back.command)
    assert.matches("backend/main.py with fastapi/uvicorn in the requirements", back.reasons[1], 1, true)
    assert.same({ "npm", "run", "dev" }, front.command)
    assert.equal("its dependencies install with `python3 -m pip install -r requirements.txt` in backend/, which a "
      .. "sandbox without network cannot do: carry them in the tree", back.reasons[2])
    -- the top level says what the socket reaches
    assert.equal("frontend", p.dir)
    assert.same({ "npm", "run", "dev" }, p.command)
    assert.matches("the folders backend/, frontend/ each run a service", table.concat(p.reasons, "\n"), 1, true)
  end)

  it("keep the root first: a tree that runs at its root is one service; one folder is that folder's", function()
    local p = assert(detect { ["app.py"] = "", ["tools/go.mod"] = "module x\n" })
    assert.is_nil(p.services)
    assert.equal("", p.dir)
    p = assert(detect { ["server/go.mod"] = "module x\n", ["node_modules/x/package.json"] = '{"main": "a.js"}' })
    assert.is_nil(p.services)
    assert.equal("server", p.dir)
    assert.same({ "go", "run", "." }, p.command)
    -- two levels down, and never in dependencies' folders
    p = assert(detect { ["apps/api/app.py"] = "", ["apps/site/Makefile"] = "run:\n\tpython3 -m http.server\n" })
    assert.same({ "api", "site*" }, names(p))
    assert.equal("apps/site", p.services[2].dir)
  end)
end)

describe("services whose names collide", function()
  after_each(H.cleanup)

  it("are refused, naming both folders or both services with the line", function()
    local p, err, code = detect { ["a/api/app.py"] = "", ["b/api/app.py"] = "", ["web/app.py"] = "" }
    assert.is_nil(p)
    assert.equal("EINVAL", code)
    assert.equal("sandbox: the folders a/api/ and b/api/ would both be the service api: rename one, or name the "
      .. "services in a compose file", err)
    p, err = detect { ["my app/app.py"] = "", ["my-app/app.py"] = "" }
    assert.is_nil(p)
    assert.equal("sandbox: the folders my app/ and my-app/ would both be the service my-app: rename one, or name the "
      .. "services in a compose file", err)
    p, err = detect { ["my-app/app.py"] = "", ["my_app/app.py"] = "" }
    assert.is_nil(p)
    assert.equal("sandbox: the folders my-app/ and my_app/ would be the services my-app and my_app, which share the "
      .. "variables MY_APP_URL, MY_APP_PORT and MY_APP_HOST: rename one, or name the services in a compose file", err)
    -- in a compose file: each is told the other's address by a variable of its name
    p, err = detect { ["compose.yaml"] = "services:\n  my-app:\n    command: [a]\n  my_app:\n    command: [b]\n" }
    assert.is_nil(p)
    assert.equal("sandbox: compose.yaml:4: services my-app and my_app (line 2) would share the variables MY_APP_URL, "
      .. "MY_APP_PORT and MY_APP_HOST: rename one", err)
    -- names that differ still plan
    assert(detect { ["a/api/app.py"] = "", ["b/web/app.py"] = "" })
  end)
end)

local COMPOSE = [[
x-common: &common
  LOG_LEVEL: debug
services:
  web:
    build: ./web
    command: ["node", "server.js"]
    ports: ["8080:3000"]
    environment:
      <<: *common
      API: "${API_URL}/v1"
    depends_on:
      api:
        condition: service_healthy
  api:
    build:
      context: api
    command: python3 app.py --port {port}
    healthcheck:
      test: ["CMD", "python3", "check.py"]
      interval: 200ms
      retries: 5
    depends_on: [db]
  db:
    image: postgres:15
]]

describe("a repository's compose file", function()
  after_each(H.cleanup)

  it("is read: services in dependency order, commands, ports, environment, health checks", function()
    local doc = assert(composefile.read(COMPOSE, "compose.yaml"))
    local order = {}
    for i, sv in ipairs(doc.services) do order[i] = sv.name end
    assert.same({ "db", "api", "web" }, order)
    local db, api, web = table.unpack(doc.services)
    assert.equal("postgresql", db.database)
    assert.equal("api", api.dir)
    assert.same({ "sh", "-c", "python3 app.py --port {port}" }, api.command)
    assert.same({ kind = "cmd", argv = { "python3", "check.py" }, raw = { "python3", "check.py" }, interval_ms = 200,
      retries = 5 }, api.health)
    assert.equal("web", web.dir)
    assert.equal(3000, web.listens)
    assert.equal(8080, web.published)
    assert.same({ LOG_LEVEL = "debug", API = "${API_URL}/v1" }, web.env)
    assert.equal("api", web.depends_on[1].name)
    -- what web is told: every service's address, its own port, its compose environment
    local p = assert(detect({ ["compose.yaml"] = COMPOSE, ["web/server.js"] = "", ["api/app.py"] = "" }))
    assert.same({ "db", "api", "web*" }, names(p))
    local ports = supervise.ports(p, 8080)
    assert.same({ web = 8080, db = 8081, api = 8082 }, ports)
    local env = supervise.env_of(p, p.services[3], ports, { HOST = "127.0.0.1" })
    assert.equal("8080", env.PORT)
    assert.equal("http://127.0.0.1:8082", env.API_URL)
    assert.equal("http://127.0.0.1:8082/v1", env.API)
    assert.equal("8081", env.DB_PORT)
    assert.equal("debug", env.LOG_LEVEL)
  end)

  it("refuses orket.lua's sandbox.env naming an address Orket hands every service, naming it and its service",
    function()
      local files = { ["compose.yaml"] = COMPOSE, ["web/server.js"] = "", ["api/app.py"] = "" }
      for name, owner in pairs { API_URL = "api", DB_PORT = "db", WEB_HOST = "web", DATABASE_URL = "db" } do
        local p, err, code = detect(files, { env = { [name] = "http://elsewhere:1" } })
        assert.is_nil(p, name)
        assert.equal("EINVAL", code)
        assert.equal("orket.lua: sandbox.env." .. name .. ": is set by Orket in every service of this sandbox (the "
          .. "address of service " .. owner .. "), so the value there would be ignored; remove it, or give the "
          .. "services that need another value their own in the compose file's environment", err)
      end
      -- other names pass, and reach every service; a compose file's own value still wins
      local p = assert(detect(files, { env = { API = "x", LOG_LEVEL = "info", APIURL = "y" } }))
      local env = supervise.env_of(p, p.services[3], supervise.ports(p, 8080), p.env)
      assert.equal("y", env.APIURL)
      assert.equal("debug", env.LOG_LEVEL)
      -- one service alone is handed no address: its env may name anything
      assert(detect({ ["app.py"] = "" }, { env = { API_URL = "http://elsewhere:1" } }))
    end)

  it("gives a service Orket's port over its compose environment's port variable, saying so in the plan", function()
    local text = "services:\n  api:\n    command: [a]\n    ports: ['3000:3000']\n    environment:\n      X: y\n"
      .. "      PORT: '3000'\n  web:\n    command: [w]\n"
    local p, err = detect({ ["compose.yaml"] = text })
    assert(p, err)
    local ports = supervise.ports(p, 8080)
    local env = supervise.env_of(p, p.services[1], ports, { HOST = "127.0.0.1" })
    assert.equal(tostring(ports.api), env.PORT)
    assert.equal("y", env.X)
    -- the line of PORT itself, in the plan's reasons
    assert.matches("compose.yaml:7: services.api.environment.PORT (3000) is replaced by the port Orket gives api, "
      .. "which its health check and the others' API_URL use", table.concat(p.reasons, "\n"), 1, true)
    -- ${PORT} and $PORT are Orket's port: no note
    for _, v in ipairs { "'${PORT}'", "$PORT" } do
      p = assert(detect({ ["compose.yaml"] = "services:\n  api:\n    command: [a]\n    environment:\n      PORT: " .. v
        .. "\n  web:\n    command: [w]\n" }))
      ports = supervise.ports(p, 8080)
      assert.equal(tostring(ports.api), supervise.env_of(p, p.services[1], ports, { HOST = "127.0.0.1" }).PORT, v)
      assert.is_nil(table.concat(p.reasons, "\n"):find("is replaced", 1, true), v)
    end
    -- the variable orket.lua names, in a list (the list's line)
    text = "services:\n  api:\n    command: [a]\n    environment: [HTTP_PORT=1]\n  web:\n    command: [w]\n"
    p = assert(detect({ ["compose.yaml"] = text }, { port_env = "HTTP_PORT" }))
    assert.matches("compose.yaml:4: services.api.environment.HTTP_PORT (1) is replaced", table.concat(p.reasons, "\n"), 1, true)
    ports = supervise.ports(p, 8080)
    assert.equal(tostring(ports.api), supervise.env_of(p, p.services[1], ports, { HOST = "127.0.0.1" }).HTTP_PORT)
    -- another name is the service's own
    p = assert(detect({ ["compose.yaml"] = text }))
    assert.equal("1", supervise.env_of(p, p.services[1], supervise.ports(p, 8080), { HOST = "127.0.0.1" }).HTTP_PORT)
  end)

  it("reads environment as a mapping or a list of NAME=value, both given to the service and written by compose",
    function()
      local function env_of(block)
        local text = "services:\n  backend:\n    command: [b]\n  web:\n    command: [w]\n    depends_on: [backend]\n"
          .. "    environment:\n" .. block
        local p = assert(detect({ ["compose.yaml"] = text }))
        local ports = supervise.ports(p, 8080)
        local env = supervise.env_of(p, p.services[2], ports, { HOST = "127.0.0.1" })
        local written = require("orket.sandboxes.compose").yaml(p, { context = "../workspace", dockerfiles = {} })
        return env, written
      end
      for _, block in ipairs {
        '      URL: "${BACKEND_URL}/v1"\n      X: "y=z"\n',
        '      - "URL=${BACKEND_URL}/v1"\n      - X=y=z\n',
      } do
        local env, written = env_of(block)
        assert.equal("http://127.0.0.1:8081/v1", env.URL, block)
        assert.equal("y=z", env.X, block)
        assert.matches('"URL": "http://backend:8080/v1"', written, 1, true)
        assert.matches('"X": "y=z"', written, 1, true)
      end
      local doc, err = composefile.read("services:\n  a:\n    command: [x]\n    environment:\n      - NOVALUE\n",
        "compose.yaml")
      assert.is_nil(doc)
      -- (at the item's own line, not the environment's)
      assert.matches("compose.yaml:5: ", err, 1, true)
    end)

  it("reads compose's $$ as one $, in commands, health checks and environment, as Compose does", function()
    -- a health check's "$$PORT" (the service's own variable, for its shell) ran as sh's pid
    -- followed by PORT; an environment value's "$$PORT" was $ and the port
    local text = "services:\n  api:\n    command: [sh, -c, 'echo \"$$HOME\" $${PORT}']\n"
      .. "    healthcheck:\n      test: [CMD-SHELL, 'test -n \"$$PORT\"']\n"
      .. "  job:\n    command: echo $$$$ 5$$\n    healthcheck:\n      test: [CMD, test, -n, $$PORT]\n"
      .. "  web:\n    command: [w]\n    depends_on: [api, job]\n"
      .. "    environment:\n      LIT: $$PORT\n      LIT2: $${API_PORT}\n      REF: ${PORT}\n      BOTH: $$$API_PORT-$$${API_PORT}\n      PRICE: 5$$\n"
    local p = assert(detect({ ["compose.yaml"] = text }))
    local by = {}
    for _, sv in ipairs(p.services) do by[sv.name] = sv end
    assert.same({ "sh", "-c", 'echo "$HOME" ${PORT}' }, by.api.command)
    assert.same({ "sh", "-c", 'test -n "$PORT"' }, by.api.health.argv)
    assert.same({ "sh", "-c", "echo $$ 5$" }, by.job.command)
    assert.same({ "test", "-n", "$PORT" }, by.job.health.argv)
    local ports = supervise.ports(p, 8080)
    local env = supervise.env_of(p, by.web, ports, { HOST = "127.0.0.1" })
    assert.equal("$PORT", env.LIT)
    assert.equal(tostring(ports.web), env.REF)
    assert.equal("${API_PORT}", env.LIT2)
    assert.equal("$" .. ports.api .. "-$" .. ports.api, env.BOTH)
    assert.equal("5$", env.PRICE)
    -- written back for Compose with its dollars escaped again
    local written = require("orket.sandboxes.compose").yaml(p, { context = "../workspace", dockerfiles = {} })
    assert.matches('"LIT": "$$PORT"', written, 1, true)
    assert.matches('"PRICE": "5$$"', written, 1, true)
  end)

  it("runs a service awaited with service_completed_successfully as a job: to its end, before its dependants", function()
    local text = "services:\n  migrate:\n    command: [python3, migrate.py]\n  api:\n    command: [python3, api.py]\n"
      .. "    depends_on:\n      migrate: {condition: service_completed_successfully}\n"
      .. "  worker:\n    command: [python3, worker.py]\n    depends_on:\n      migrate:\n"
      .. "        condition: service_completed_successfully\n      api: {condition: service_healthy}\n"
    local p = assert(detect({ ["compose.yaml"] = text }))
    local names = {}
    for i, sv in ipairs(p.services) do names[i] = sv.name .. (sv.job and "(job)" or "") .. (sv.entry and "(entry)" or "") end
    -- the job runs once, first; it is never the entry
    assert.same({ "migrate(job)", "api", "worker(entry)" }, names)
    local script = assert(supervise.script(p, supervise.ports(p, 8080), { HOST = "127.0.0.1" }, 5000))
    -- waited for (in the background, so that a stop meanwhile is taken at once), its failure
    -- stopping the start; not among the services whose end ends the sandbox; no port
    assert.matches("( cd -- '.' && unset 'PORT' && export ", script, 1, true)
    assert.matches("exec 'python3' 'migrate.py' {nap}<&- ) > >(sed -u 's/^/[migrate] /') 2>&1 & stepping=$!; "
      .. "wait \"$stepping\" || { st=$?; stepping=''; say 'migrate: its run failed'\" (status $st)\"; stop_all; exit 1; }; "
      .. "stepping=''", script, 1, true)
    assert.is_nil(script:find("MIGRATE_", 1, true))
    assert.matches("say 'migrate ran to its end'", script, 1, true)
    assert.is_nil(script:find("'migrate.py' {nap}<&- ) > >(sed -u 's/^/[migrate] /') 2>&1 &\n", 1, true))
    assert.is_nil(script:find("svc[$pid_1]", 1, true))
    assert.is_nil(script:find("n='migrate'", 1, true))
    -- written back for compose: its dependants await its success; no check, no restart
    local written = require("orket.sandboxes.compose").yaml(p, { context = "../workspace", dockerfiles = {} })
    local block = written:match('\n  "migrate":\n(.-)\n  "api":')
    assert.is_string(block, written)
    assert.is_nil(block:find("healthcheck", 1, true))
    assert.is_nil(block:find("restart", 1, true))
    assert.matches('"migrate":\n        condition: "service_completed_successfully"', written:match('\n  "api":\n.*'), 1, true)
  end)

  it("says which service ended and its status, though it ended before the script began to wait", function()
    -- a ends at once; its health check takes 0.3 s, so bash has reaped it (and dropped its job)
    -- before the services' start is done: wait -n named b, 5 s later, with b's status
    local text = "services:\n  a:\n    command: [sh, -c, 'exit 3']\n    healthcheck:\n      test: [CMD, sleep, '0.3']\n"
      .. "  b:\n    command: [sleep, '5']\n    depends_on: [a]\n"
    local function run(compose)
      local p = assert(detect({ ["compose.yaml"] = compose }))
      local script = assert(supervise.script(p, supervise.ports(p, 8080), { HOST = "127.0.0.1" }, 5000))
      local dir = H.tmpdir()
      H.write(dir .. "/s.sh", script)
      local t0 = os.time()
      local f = assert(io.popen("cd " .. H.quote(dir) .. " && bash -c \"$(cat s.sh)\" orket-services 2>&1; echo rc=$?"))
      local out = f:read("a")
      f:close()
      assert.is_nil(out:find("no such job", 1, true), out)
      assert.is_true(os.time() - t0 < 4, out)
      return out
    end
    assert.matches("orket: a ended (status 3): the other services are stopped\nrc=3\n", run(text), 1, true)
    -- two ended before the wait: the first of them in the start's order, with its own status
    local two = "services:\n  a:\n    command: [sh, -c, 'exit 3']\n    healthcheck:\n      test: [CMD, sleep, '0.3']\n"
      .. "  b:\n    command: [sh, -c, 'exit 4']\n    healthcheck:\n      test: [CMD, sleep, '0.3']\n"
      .. "  c:\n    command: [sleep, '5']\n    depends_on: [a, b]\n"
    assert.matches("orket: a ended (status 3): the other services are stopped\nrc=3\n", run(two), 1, true)
  end)

  -- a service that ended before it was healthy, or a job that failed, was said without its
  -- status: 2, 0 and a SIGSEGV read the same
  it("says a service's own status when it ends before it is healthy, and a failed job's", function()
    local function run(compose)
      local p = assert(detect({ ["compose.yaml"] = compose }))
      local script = assert(supervise.script(p, supervise.ports(p, 8080), { HOST = "127.0.0.1" }, 5000))
      local dir = H.tmpdir()
      H.write(dir .. "/s.sh", script)
      local f = assert(io.popen("cd " .. H.quote(dir) .. " && bash -c \"$(cat s.sh)\" orket-services 2>&1; echo rc=$?"))
      local out = f:read("a")
      f:close()
      return out
    end
    local out = run("services:\n  a:\n    command: [sh, -c, 'sleep 0.2; exit 2']\n"
      .. "  b:\n    command: [sleep, '5']\n    depends_on: [a]\n")
    assert.matches("orket: a ended (status 2) before it was healthy\n", out, 1, true)
    out = run("services:\n  a:\n    command: [sh, -c, 'sleep 0.2; exit 0']\n    healthcheck: {disable: true}\n"
      .. "  b:\n    command: [sleep, '5']\n    depends_on: [a]\n")
    assert.matches("orket: a ended (status 0) before it was healthy\n", out, 1, true)
    out = run("services:\n  migrate:\n    command: [sh, -c, 'exit 4']\n"
      .. "  b:\n    command: [sleep, '5']\n    depends_on: {migrate: {condition: service_completed_successfully}}\n")
    assert.matches("orket: migrate: its run failed (status 4)\n", out, 1, true)
  end)

  it("starts a service that depends on the entry only once the entry answers", function()
    if os.execute("command -v python3 >/dev/null 2>&1") ~= true then return pending("python3 is missing") end
    -- api is the entry (it publishes a port) and is slow to listen; worker depends on it and
    -- connects at once: started right after api (the entry's health was the owner's alone),
    -- it was refused. Neither the owner nor the socket is here: the script alone.
    local text = "services:\n  api:\n    command: [sh, -c, 'sleep 0.5; exec python3 -m http.server \"$PORT\" --bind 127.0.0.1']\n"
      .. "    ports: ['8080']\n"
      .. "  worker:\n    command: [bash, -c, 'if exec 3<>/dev/tcp/127.0.0.1/$API_PORT; then echo connected; else echo refused; fi']\n"
      .. "    healthcheck: {disable: true}\n    depends_on:\n      api: {condition: service_healthy}\n"
    local p = assert(detect({ ["compose.yaml"] = text }))
    assert.same({ "api*", "worker" }, names(p))
    -- ports of its own, below the ephemeral range and free just now (H.free_port): the
    -- script runs on the host's loopback, beside other tests, and a port someone else
    -- listens on answers the entry's health check in its stead
    local uv = require "luv"
    local function free(port)
      local t = uv.new_tcp()
      local ok = t:bind("127.0.0.1", port) and t:listen(1, function() end)
      t:close()
      return ok
    end
    local base = H.free_port()
    for _ = 1, 50 do
      if free(base + 1) then break end
      base = H.free_port()
    end
    local script = assert(supervise.script(p, supervise.ports(p, base), { HOST = "127.0.0.1" }, 60000))
    local dir = H.tmpdir()
    H.write(dir .. "/s.sh", script)
    local f = assert(io.popen("cd " .. H.quote(dir) .. " && bash -c \"$(cat s.sh)\" orket-services 2>&1; echo rc=$?"))
    local out = f:read("a")
    f:close()
    assert.matches("[worker] connected", out, 1, true)
    assert.is_nil(out:find("refused", 1, true), out)
    local healthy, starting = out:find("orket: api is healthy", 1, true), out:find("orket: starting worker", 1, true)
    assert.is_true(healthy ~= nil and starting ~= nil and healthy < starting, out)
  end)

  it("names the file and the line of each thing Orket cannot run", function()
    local function refused(text)
      local doc, err = composefile.read(text, "compose.yaml")
      assert.is_nil(doc)
      return err
    end
    assert.equal("compose.yaml:7: depends_on goes round in a cycle: a -> b -> a",
      refused "services:\n  a:\n    command: [x]\n    depends_on: [b]\n  b:\n    command: [y]\n    depends_on: [a]\n")
    assert.equal("compose.yaml:4: services.a.depends_on: no service cache",
      refused "services:\n  a:\n    command: [x]\n    depends_on: [cache]\n")
    -- a condition compose does not define (a misspelling) is not taken for one that it does
    assert.equal("compose.yaml:6: services.a.depends_on.m.condition: service_completed_succesfully is not one of "
      .. "service_started, service_healthy, service_completed_successfully",
      refused("services:\n  a:\n    command: [x]\n    depends_on:\n      m:\n        condition: service_completed_succesfully\n"
        .. "  m:\n    command: [y]\n"))
    -- a database is never a job
    assert.equal("compose.yaml:5: services.a.depends_on.d: a database is a server, not a job run to its end: its "
      .. "condition is service_healthy",
      refused("services:\n  a:\n    command: [x]\n    depends_on:\n      d: {condition: service_completed_successfully}\n"
        .. "  d:\n    x-orket: {database: sqlite}\n"))
    -- the others all mean healthy, as before
    assert.is_table(composefile.read("services:\n  a:\n    command: [x]\n    depends_on:\n      m: {condition: service_started}\n"
      .. "  m:\n    command: [y]\n", "compose.yaml"))
    assert.equal("compose.yaml:3: services.q: image rabbitmq:3 only, which Orket cannot run as a process: give it a "
      .. "command (and build: its folder), or run it elsewhere", refused "services:\n  q:\n    image: rabbitmq:3\n")
    assert.equal("compose.yaml:6: services a and b both ask for port 8000 (line 3)",
      refused "services:\n  a:\n    ports: ['8000:80']\n    command: [x]\n  b:\n    ports: ['8000:8080']\n    command: [y]\n")
    assert.equal("compose.yaml:3: services.a.comand: not a field Orket reads (it reads command, build, image, ports, "
      .. "environment, depends_on, healthcheck, working_dir, x-orket; it passes over restart, volumes, networks, labels, "
      .. "expose, container_name and x-*)", refused "services:\n  a:\n    comand: [x]\n")
    -- a port's host part, and every entry, is a port: "abc:80" was "80:80", a second entry unread
    assert.equal('compose.yaml:4: services.a.ports: "abc:80" is not a port ("8000", "8080:8000", '
      .. '"127.0.0.1:8080:8000" or {target: 8000, published: 8080, host_ip: 127.0.0.1})',
      refused "services:\n  a:\n    command: [x]\n    ports: ['abc:80']\n")
    assert.equal('compose.yaml:4: services.a.ports: "80x" is not a port ("8000", "8080:8000", '
      .. '"127.0.0.1:8080:8000" or {target: 8000, published: 8080, host_ip: 127.0.0.1})',
      refused "services:\n  a:\n    command: [x]\n    ports: ['8080:80', '80x']\n")
    local ok = assert(composefile.read("services:\n  a:\n    command: [x]\n    ports: ['127.0.0.1:8081:80', '9000']\n",
      "compose.yaml"))
    assert.equal(80, ok.services[1].listens)
    assert.equal(8081, ok.services[1].published)
    -- compose's long form is read; a wrong one is said as such, not as "table: 0x..."
    ok = assert(composefile.read("services:\n  a:\n    command: [x]\n    ports:\n      - target: 80\n        published: 8082\n",
      "compose.yaml"))
    assert.equal(80, ok.services[1].listens)
    assert.equal(8082, ok.services[1].published)
    assert.equal('compose.yaml:4: services.a.ports: "{target: ..., published: ...}" is not a port ("8000", "8080:8000", '
      .. '"127.0.0.1:8080:8000" or {target: 8000, published: 8080, host_ip: 127.0.0.1})',
      refused "services:\n  a:\n    command: [x]\n    ports:\n      - target: eighty\n")
    -- an env file is never read: its values would be missing without a word
    assert.equal("compose.yaml:4: services.a.env_file: Orket does not read env files, so their values would be "
      .. "missing: give them in environment", refused "services:\n  a:\n    command: [x]\n    env_file: .env\n")
    assert.equal('compose.yaml:3: the key "a" is there twice', refused "services:\n  a: {command: [x]}\n  a: {command: [y]}\n")
    assert.equal("compose.yaml:1: the alias *nope names no anchor", refused "services: *nope\n")
    assert.matches("^compose.yaml:%d+: did not find expected", refused "services:\n  a: [x\n")
    assert.equal("compose.yaml:1: a compose file needs services: a mapping of services", refused "version: '3'\n")
    assert.equal("compose.yaml:4: services.a.working_dir: a folder of the repository (no .. component, no absolute path)",
      refused "services:\n  a:\n    command: [x]\n    working_dir: /etc\n")
    assert.equal("compose.yaml:6: services.a.healthcheck.interval must be at least 10 ms",
      refused "services:\n  a:\n    command: [x]\n    healthcheck:\n      test: [CMD, x]\n      interval: 0s\n")
    assert.equal("compose.yaml:6: services.a.healthcheck.intervall: not a field Orket reads (test, interval, timeout, retries, "
      .. "start_period, start_interval, disable)",
      refused "services:\n  a:\n    command: [x]\n    healthcheck:\n      test: [CMD, x]\n      intervall: 1s\n")
    -- Go's units read as Compose reads them: a microsecond is under the least, not "no duration"
    assert.equal("compose.yaml:7: services.b.healthcheck.interval must be at least 10 ms",
      refused "services:\n  a:\n    command: [x]\n  b:\n    command: [x]\n    healthcheck: {test: [CMD, x],\n      interval: 1us}\n")
    assert.equal("compose.yaml:6: services.a.healthcheck.timeout must be at least 10 ms",
      refused "services:\n  a:\n    command: [x]\n    healthcheck:\n      test: [CMD, x]\n      timeout: 9ms999\u{b5}s\n")
    ok = assert(composefile.read("services:\n  a:\n    command: [x]\n    healthcheck:\n      test: [CMD, x]\n"
      .. "      interval: 1s500000us\n", "compose.yaml"))
    assert.equal(1500, ok.services[1].health.interval_ms)
    -- a setting that is no string is placed at its own key, not at environment:
    assert.equal("compose.yaml:6: services.a.environment: a mapping of names to strings, or a list of NAME=value (B)",
      refused "services:\n  a:\n    command: [x]\n    environment:\n      A: x\n      B: {c: d}\n")
    -- LibYAML names no place for a byte that is not UTF-8: its line is found
    assert.equal("compose.yaml:3: invalid leading UTF-8 octet (byte 0xFF; a compose file is UTF-8)",
      refused "services:\n  a:\n    command: [\"echo \xff\"]\n")
    local big = string.rep("x", composefile.ENV_MAX)
    assert.equal(string.format("compose.yaml:4: services.a.environment: %d bytes, over the %d a service's environment "
      .. "may have (the services' start is one command line, which the kernel caps at 128 KiB): put large values in a "
      .. "file of the tree and name the file", composefile.ENV_MAX + 3, composefile.ENV_MAX),
      refused("services:\n  a:\n    command: [x]\n    environment:\n      A: " .. big .. "\n"))
    -- a plan says it too, and runs nothing
    local p, err, code = detect { ["compose.yaml"] = "services:\n  q:\n    image: redis\n" }
    assert.is_nil(p)
    assert.equal("EINVAL", code)
    assert.matches("sandbox: compose.yaml:3: services.q: image redis only", err, 1, true)
  end)
end)

describe("a sandbox's SQLite database", function()
  after_each(H.cleanup)

  it("is made from the repository's seed, never from a file a symbolic link leads out to", function()
    local database = require "orket.sandboxes.database"
    local home, tree, outside = H.tmpdir(), H.tmpdir(), H.tmpdir()
    os.execute("mkdir -p " .. H.quote(tree .. "/db"))
    H.write(tree .. "/db/seed.sql", "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('seeded');")
    local sv = { name = "store", database = "sqlite", seed = "db/seed.sql" }
    assert(database.prepare(home, tree, { sv }))
    local db = assert(require("orket.c.store").open(database.sqlite_path(home, sv)))
    assert.equal("seeded", db:row("SELECT v FROM t").v)
    db:close()
    -- the seed's folder a link to a folder of the host's
    H.write(outside .. "/seed.sql", "CREATE TABLE secret (v TEXT);")
    os.execute("ln -s " .. H.quote(outside) .. " " .. H.quote(tree .. "/host"))
    local other = { name = "other", database = "sqlite", seed = "host/seed.sql" }
    local ok, err = database.prepare(home, tree, { other })
    assert.is_nil(ok)
    assert.matches("other: the seed host/seed.sql is not a file of the repository", err, 1, true)
    assert.is_nil(io.open(database.sqlite_path(home, other)))
  end)

  -- the seed is the agents' text, run in Orket's process: it reaches its own file only
  local function seeded(sql, name)
    local database = require "orket.sandboxes.database"
    local home, tree = H.tmpdir(), H.tmpdir()
    os.execute("mkdir -p " .. H.quote(tree .. "/db"))
    H.write(tree .. "/db/seed.sql", sql)
    local sv = { name = name or "store", database = "sqlite", seed = "db/seed.sql" }
    local ok, err = database.prepare(home, tree, { sv })
    return ok, err, database.sqlite_path(home, sv)
  end

  it("never lets its seed reach another file: no ATTACH, no VACUUM INTO, no pragma that moves files", function()
    local outside = H.tmpdir()
    local store = outside .. "/orket.db"
    local db = assert(require("orket.c.store").open(store))
    db:exec("CREATE TABLE api_keys (k TEXT); INSERT INTO api_keys VALUES ('secret')")
    db:close()
    local ok, err, path = seeded(string.format("CREATE TABLE t (v); ATTACH DATABASE '%s' AS host;\n"
      .. "CREATE TABLE leaked AS SELECT * FROM host.api_keys;", store))
    assert.is_nil(ok)
    assert.equal("store: its seed db/seed.sql failed: ATTACH and VACUUM are not allowed in a seed: it reaches only its "
      .. "own database", err)
    assert.is_nil(io.open(path)) -- what it made before is gone with it
    ok, err = seeded(string.format("ATTACH DATABASE '%s' AS w; CREATE TABLE w.x (a);", outside .. "/planted.db"))
    assert.is_nil(ok)
    assert.matches("ATTACH and VACUUM are not allowed in a seed", err, 1, true)
    ok, err = seeded(string.format("CREATE TABLE t (v); VACUUM INTO '%s';", outside .. "/vacuum.db"))
    assert.is_nil(ok)
    assert.matches("store: its seed db/seed.sql failed: ATTACH and VACUUM are not allowed", err, 1, true)
    -- plain VACUUM attaches a temporary copy: refused too (a fresh database needs none)
    ok, err = seeded("CREATE TABLE t (v); VACUUM;")
    assert.is_nil(ok)
    assert.matches("ATTACH and VACUUM are not allowed in a seed", err, 1, true)
    for _, pragma in ipairs { "temp_store_directory = '/tmp'", "max_page_count = 1000000000", "cache_size = -100000000",
      "soft_heap_limit = 1", "writable_schema = 1", "trusted_schema = 1" } do
      ok, err = seeded("PRAGMA " .. pragma .. ";")
      assert.is_nil(ok, pragma)
      assert.matches("this pragma is not allowed in a seed", err, 1, true)
    end
    ok, err = seeded("SELECT load_extension('/tmp/x.so');")
    assert.is_nil(ok)
    assert.matches("not authorized", err, 1, true)
    assert.is_nil(io.open(outside .. "/planted.db"))
    assert.is_nil(io.open(outside .. "/vacuum.db"))
    db = assert(require("orket.c.store").open(store))
    assert.equal("secret", db:row("SELECT k FROM api_keys").k)
    db:close()
    -- what a seed does with its own file still works
    ok, err, path = seeded("PRAGMA foreign_keys = ON; CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('mine');")
    assert.is_true(ok, err)
    db = assert(require("orket.c.store").open(path))
    assert.equal("mine", db:row("SELECT v FROM t").v)
    db:close()
  end)

  it("stops an endless seed at its time limit, and the loop goes on meanwhile; a big one at its size limit", function()
    local database = require "orket.sandboxes.database"
    local rt = require "orket.c.runtime"
    local task = require "orket.task"
    local limit, size = database.SEED_TIMEOUT_MS, database.SEED_DB_MAX
    finally(function() database.SEED_TIMEOUT_MS, database.SEED_DB_MAX = limit, size end)
    database.SEED_TIMEOUT_MS = 400
    local ticks, running = 0, true
    local ticker = task.spawn(function()
      while running do
        rt.sleep(10)
        ticks = ticks + 1
      end
    end)
    local t0 = require("luv").hrtime()
    local ok, err = seeded("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;")
    local took = (require("luv").hrtime() - t0) / 1e6
    running = false
    ticker:join()
    assert.is_nil(ok)
    assert.equal("store: its seed db/seed.sql failed: it ran longer than 400 ms (a seed's time limit)", err)
    assert.is_true(took >= 400 and took < 5000, tostring(took))
    assert.is_true(ticks >= 10, "the loop stood still while the seed ran: " .. ticks .. " ticks")
    database.SEED_DB_MAX = 1024 * 1024
    ok, err = seeded("CREATE TABLE t (b); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5000) "
      .. "INSERT INTO t SELECT randomblob(1000) FROM c;")
    assert.is_nil(ok)
    assert.equal("store: its seed db/seed.sql failed: its database would grow past 1048576 bytes (a seed's size limit)",
      err)
  end)

  it("ends a seed when the start is asked to stop", function()
    local database = require "orket.sandboxes.database"
    local uv = require "luv"
    local home, tree = H.tmpdir(), H.tmpdir()
    os.execute("mkdir -p " .. H.quote(tree .. "/db"))
    H.write(tree .. "/db/seed.sql", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;")
    local sv = { name = "store", database = "sqlite", seed = "db/seed.sql" }
    local t0 = uv.now()
    local ok, err, code = database.prepare(home, tree, { sv }, function()
      if uv.now() - t0 > 200 then return "stopped by a test" end
    end)
    assert.is_nil(ok)
    assert.equal("stopped by a test", err)
    assert.equal("ECANCELED", code)
    assert.is_true(uv.now() - t0 < 2000)
  end)
end)

describe("a sandbox's SQLite seed in its own process", function()
  after_each(H.cleanup)
  local database = require "orket.sandboxes.database"
  local uv = require "luv"
  local saved = {}
  before_each(function()
    for _, k in ipairs { "SEED_TIMEOUT_MS", "SEED_GRACE_MS", "SEED_MEMORY_MAX" } do saved[k] = database[k] end
  end)
  after_each(function()
    for k, v in pairs(saved) do database[k] = v end
  end)

  local function seed(sql, stopping)
    local home, tree = H.tmpdir(), H.tmpdir()
    os.execute("mkdir -p " .. H.quote(tree .. "/db"))
    H.write(tree .. "/db/seed.sql", sql)
    local sv = { name = "store", database = "sqlite", seed = "db/seed.sql" }
    local t0 = uv.now()
    local ok, err, code = database.prepare(home, tree, { sv }, stopping)
    return ok, err, code, uv.now() - t0, home
  end

  -- whether a process still runs with path in its command line
  local function running(path)
    local it = uv.fs_scandir("/proc")
    while it do
      local name = uv.fs_scandir_next(it)
      if not name then break end
      local f = name:match("^%d+$") and io.open("/proc/" .. name .. "/cmdline", "rb")
      if f then
        local line = f:read("a") or ""
        f:close()
        if line:find(path, 1, true) then return true end
      end
    end
    return false
  end

  it("stops a seed of many short statements at its deadline, by itself", function()
    database.SEED_TIMEOUT_MS, database.SEED_GRACE_MS = 300, 60000 -- no kill: the seed's own clock
    local ok, err, code, took = seed("CREATE TABLE t (x);\n" .. string.rep("INSERT INTO t VALUES (1);\n", 200000))
    assert.is_nil(ok)
    assert.equal("store: its seed db/seed.sql failed: it ran longer than 300 ms (a seed's time limit)", err)
    assert.equal("ETIMEDOUT", code)
    assert.is_true(took < 5000, tostring(took))
  end)

  it("kills a seed whose one SQL call outruns its deadline, and at a stop, waiting for nothing", function()
    local slow = "SELECT instr(printf('%.*c', 2000000, 'a'), printf('%.*c', 1000000, 'a') || 'b');\n"
    database.SEED_TIMEOUT_MS, database.SEED_GRACE_MS = 300, 300
    local ok, err, code, took, home = seed(slow)
    assert.is_nil(ok)
    assert.equal("store: its seed db/seed.sql failed: it ran longer than 300 ms (a seed's time limit)", err)
    assert.equal("ETIMEDOUT", code)
    assert.is_true(took < 4000, tostring(took))
    H.wait_for(function() return not running(home) end, "the seed's process to be gone", 3000)
    -- a stop: it answers at once, and the process is gone soon after
    database.SEED_TIMEOUT_MS = 60000
    local t0 = uv.now()
    ok, err, code, took, home = seed(slow, function() if uv.now() - t0 > 300 then return "stopped by a test" end end)
    assert.is_nil(ok)
    assert.equal("stopped by a test", err)
    assert.equal("ECANCELED", code)
    assert.is_true(took < 2000, tostring(took))
    H.wait_for(function() return not running(home) end, "the seed's process to be gone", 3000)
    assert.is_nil(uv.fs_lstat(home .. "/tmp/" .. database.SCRATCH)) -- its SQL and temp files
  end)

  it("stops a seed at its memory limit", function()
    -- a sanitizer's build maps terabytes up front: no address-space limit there
    if require("orket.c.sqlseed").SANITIZED then return pending("no memory limit under ASan") end
    database.SEED_MEMORY_MAX = 256 * 1024 * 1024
    local ok, err, code, took = seed("SELECT length(json_group_array(printf('%.*c', 10000000, 'a'))) FROM "
      .. "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300) SELECT x FROM c);\n")
    assert.is_nil(ok)
    assert.equal("store: its seed db/seed.sql failed: it needed more than 256 MiB of memory (a seed's memory limit)", err)
    assert.equal("ENOMEM", code)
    assert.is_true(took < 10000, tostring(took))
  end)

  it("refuses a seed holding a NUL byte (SQLite would end it there)", function()
    local ok, err, code = seed("CREATE TABLE a (x);\0CREATE TABLE b (x);\n")
    assert.is_nil(ok)
    assert.equal("store: its seed db/seed.sql failed: it holds a NUL byte, where SQLite would end it", err)
    assert.equal("EINVAL", code)
  end)

  it("marks a seed command's database though a folder was left where its mark goes", function()
    local home, tree = H.tmpdir(), H.tmpdir()
    os.execute("mkdir -p " .. H.quote(database.folder(home) .. "/cmd.orket-seed/sub"))
    assert(database.prepare(home, tree, { { name = "cmd", database = "sqlite", seed_command = { "true" } } }))
    assert.equal("file", uv.fs_lstat(database.folder(home) .. "/cmd.orket-seed").type)
  end)
end)

describe("a sandbox's kept databases", function()
  after_each(H.cleanup)
  local database = require "orket.sandboxes.database"
  local tree_mod = require "orket.tree"

  -- a folder of the host's that the app would have Orket empty or write in
  local function victim()
    local v = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(v .. "/sub"))
    H.write(v .. "/file.txt", "precious")
    H.write(v .. "/sub/deep.txt", "deep")
    return v
  end
  local function intact(v)
    assert.equal("precious", H.read(v .. "/file.txt"))
    assert.equal("deep", H.read(v .. "/sub/deep.txt"))
  end
  local function is_link(path)
    local st = require("luv").fs_lstat(path)
    return st and st.type == "link"
  end

  it("never follow a link the app put in the place of its database folder", function()
    local dir, v = H.tmpdir(), victim()
    os.execute("mkdir -p " .. H.quote(dir .. "/.orket/sandboxes/1/tmp") .. " " .. H.quote(dir .. "/.orket/sandboxes/2/tmp"))
    local home1, home2 = dir .. "/.orket/sandboxes/1", dir .. "/.orket/sandboxes/2"
    -- the app swapped $TMPDIR/db for a link: its end moves nothing aside
    os.execute("ln -s " .. H.quote(v) .. " " .. H.quote(home1 .. "/tmp/db"))
    database.put_kept(dir, "main", home1)
    assert.is_nil(require("luv").fs_lstat(database.kept_path(dir, "main")))
    tree_mod.remove(home1 .. "/tmp")
    intact(v)
    assert.is_nil(require("luv").fs_lstat(home1 .. "/tmp"))
    -- a link already kept (an older Orket moved it): dropped as a link, kept or not
    for _, keep in ipairs { false, true } do
      os.execute("ln -s " .. H.quote(v) .. " " .. H.quote(database.kept_path(dir, "main")))
      assert.is_false(database.take_kept(dir, "main", home2, keep))
      assert.is_nil(require("luv").fs_lstat(database.kept_path(dir, "main")))
      assert.is_nil(require("luv").fs_lstat(database.folder(home2)))
      intact(v)
    end
    -- a real folder still moves, and a link in it is no way out for the next seed
    local kept = database.kept_path(dir, "main")
    os.execute("mkdir -p " .. H.quote(kept))
    os.execute("ln -s " .. H.quote(v .. "/made.sqlite") .. " " .. H.quote(kept .. "/store.sqlite"))
    os.execute("ln -s " .. H.quote(v .. "/file.txt") .. " " .. H.quote(kept .. "/store.sqlite-journal"))
    os.execute("ln -s " .. H.quote(v .. "/file.txt") .. " " .. H.quote(kept .. "/cmd.orket-seed"))
    assert.is_true(database.take_kept(dir, "main", home2, true))
    local tree = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(tree .. "/db"))
    H.write(tree .. "/db/seed.sql", "CREATE TABLE t (v);")
    assert(database.prepare(home2, tree, { { name = "store", database = "sqlite", seed = "db/seed.sql" },
      { name = "cmd", database = "sqlite", seed_command = { "true" } } }))
    intact(v)
    assert.is_nil(io.open(v .. "/made.sqlite"))
    assert.is_false(is_link(database.folder(home2) .. "/store.sqlite"))
    assert.is_false(is_link(database.folder(home2) .. "/cmd.orket-seed"))
    assert.is_nil(require("luv").fs_lstat(database.folder(home2) .. "/store.sqlite-journal"))
  end)

  it("reclaim a kept folder whose owner was killed between its two renames, at the next start", function()
    local uv = require "luv"
    local dir = H.tmpdir()
    local parent = dir .. "/.orket/sandboxes"
    os.execute("mkdir -p " .. H.quote(parent .. "/2/tmp") .. " " .. H.quote(parent .. "/3/tmp"))
    local kept = database.kept_path(dir, "main")
    -- a pid no process has (past the kernel's pid_max)
    local f = assert(io.open("/proc/sys/kernel/pid_max"))
    local dead = math.tointeger(tonumber(f:read("l")) + 1)
    f:close()
    -- the state between the renames: the ending sandbox's folder claimed (KEPT.in.PID), the
    -- older kept folder not yet replaced
    os.execute("mkdir -p " .. H.quote(kept .. ".in." .. dead) .. " " .. H.quote(kept))
    H.write(kept .. ".in." .. dead .. "/store.sqlite", "newest")
    H.write(kept .. "/store.sqlite", "older")
    -- a claim whose process lives is its own, left alone
    os.execute("mkdir -p " .. H.quote(kept .. ".in.1"))
    assert.is_true(database.take_kept(dir, "main", parent .. "/2", true))
    assert.equal("newest", H.read(database.folder(parent .. "/2") .. "/store.sqlite"))
    assert.is_nil(uv.fs_lstat(kept .. ".in." .. dead))
    assert.is_nil(uv.fs_lstat(kept))
    assert.equal("directory", uv.fs_lstat(kept .. ".in.1").type)
    -- nothing to keep (no phase open): the claim is removed, not taken
    os.execute("mkdir -p " .. H.quote(kept .. ".in." .. dead))
    assert.is_false(database.take_kept(dir, "main", parent .. "/3", false))
    assert.is_nil(uv.fs_lstat(kept .. ".in." .. dead))
    assert.is_nil(uv.fs_lstat(database.folder(parent .. "/3")))
    -- the last phase ended: every kept folder and dead claim goes, a live claim stays
    os.execute("mkdir -p " .. H.quote(kept) .. " " .. H.quote(database.kept_path(dir, "other")) .. " "
      .. H.quote(database.kept_path(dir, "other") .. ".in." .. dead))
    database.drop_kept(dir)
    assert.is_nil(uv.fs_lstat(kept))
    assert.is_nil(uv.fs_lstat(database.kept_path(dir, "other")))
    assert.is_nil(uv.fs_lstat(database.kept_path(dir, "other") .. ".in." .. dead))
    assert.equal("directory", uv.fs_lstat(kept .. ".in.1").type)
    assert.equal("directory", uv.fs_lstat(parent .. "/2").type)
  end)

  -- a pid no process has (past the kernel's pid_max)
  local function dead_pid()
    local f = assert(io.open("/proc/sys/kernel/pid_max"))
    local n = math.tointeger(tonumber(f:read("l")) + 1)
    f:close()
    return n
  end

  it("reclaim a claim whose pid a later process took: the claim names its process's start time too", function()
    local uv = require "luv"
    local dir = H.tmpdir()
    local parent = dir .. "/.orket/sandboxes"
    os.execute("mkdir -p " .. H.quote(parent .. "/2/tmp"))
    local kept = database.kept_path(dir, "main")
    -- pid 1 lives, but it is not the process that started at tick 1 and claimed this
    local start1 = require("orket.sandboxes.pidstart").start_time(1)
    local wrong = tostring(math.tointeger(tonumber(start1)) + 12345)
    os.execute("mkdir -p " .. H.quote(kept .. ".in.1." .. wrong .. ".5") .. " " .. H.quote(kept))
    H.write(kept .. ".in.1." .. wrong .. ".5/store.sqlite", "newest")
    H.write(kept .. "/store.sqlite", "older")
    -- pid 1 with its own start time: alive, left to it
    os.execute("mkdir -p " .. H.quote(kept .. ".in.1." .. start1 .. ".6"))
    assert.is_true(database.take_kept(dir, "main", parent .. "/2", true))
    assert.equal("newest", H.read(database.folder(parent .. "/2") .. "/store.sqlite"))
    assert.is_nil(uv.fs_lstat(kept .. ".in.1." .. wrong .. ".5"))
    assert.equal("directory", uv.fs_lstat(kept .. ".in.1." .. start1 .. ".6").type)
  end)

  it("reclaim, of several dead claims, the one claimed last by the time in its name, not the folder's mtime", function()
    local uv = require "luv"
    local dir = H.tmpdir()
    local parent = dir .. "/.orket/sandboxes"
    os.execute("mkdir -p " .. H.quote(parent .. "/2/tmp"))
    local kept = database.kept_path(dir, "main")
    local dead = dead_pid()
    local early, late = kept .. ".in." .. dead .. ".7.1000", kept .. ".in." .. dead .. ".7.2000"
    os.execute("mkdir -p " .. H.quote(early) .. " " .. H.quote(late))
    H.write(early .. "/store.sqlite", "earlier")
    H.write(late .. "/store.sqlite", "later")
    -- the later claim's folder looks the older (a write in WAL mode, a rename, leave it so)
    os.execute("touch -d '2001-01-01' " .. H.quote(late) .. " && touch -d '2020-01-01' " .. H.quote(early))
    assert.is_true(database.take_kept(dir, "main", parent .. "/2", true))
    assert.equal("later", H.read(database.folder(parent .. "/2") .. "/store.sqlite"))
    assert.is_nil(uv.fs_lstat(early))
    assert.is_nil(uv.fs_lstat(late))
  end)

  it("reclaim a dead claim by a rename of its own first: a second start that took it meanwhile loses nothing", function()
    local tree = require "orket.tree"
    local dir = H.tmpdir()
    local parent = dir .. "/.orket/sandboxes"
    os.execute("mkdir -p " .. H.quote(parent .. "/2/tmp"))
    local kept = database.kept_path(dir, "main")
    -- (named by its pid alone, as a claim without a start time is)
    local claim = kept .. ".in." .. dead_pid()
    os.execute("mkdir -p " .. H.quote(claim) .. " " .. H.quote(kept))
    H.write(claim .. "/store.sqlite", "newest")
    H.write(kept .. "/store.sqlite", "older")
    -- another start, past its look at the folder, reclaims the claim first: at this
    -- start's first move (a rename or a removal), the claim has become the kept folder
    local rename, remove, rival = os.rename, tree.remove, false
    local function race()
      if rival then return end
      rival = true
      remove(kept)
      assert(rename(claim, kept))
    end
    os.rename = function(a, b) race() return rename(a, b) end
    tree.remove = function(a) race() return remove(a) end
    local ok, took = pcall(database.take_kept, dir, "main", parent .. "/2", true)
    os.rename, tree.remove = rename, remove
    assert(ok, took)
    assert.is_true(rival)
    -- the rival's reclaimed data was not removed: this start took it
    assert.is_true(took)
    assert.equal("newest", H.read(database.folder(parent .. "/2") .. "/store.sqlite"))
  end)

  -- runs a copy of sleep named name (its command name in /proc/PID/stat) in the background:
  -- its pid; stopped by the test's cleanup of the pids it started
  local started = {}
  local function run_named(name, argv)
    local d = H.tmpdir()
    local path = d .. "/" .. name
    assert(os.execute("cp /bin/sleep " .. H.quote(path)))
    os.execute(H.quote(path) .. " " .. (argv or "30") .. " >/dev/null 2>&1 & echo $! > " .. H.quote(d .. "/pid"))
    local pid = math.tointeger(tonumber(H.read(d .. "/pid"):match("%d+")))
    started[#started + 1] = pid
    H.wait_for(function()
      local f = io.open("/proc/" .. pid .. "/comm")
      local comm = f and f:read("l")
      if f then f:close() end
      return comm == name:sub(1, 15)
    end, "the copy runs")
    return pid
  end
  local function stop_started()
    for _, pid in ipairs(started) do require("luv").kill(pid, "sigkill") end
    started = {}
  end
  -- starttime parsed by hand: the fields after the last ") "
  local function by_hand(pid)
    local f = assert(io.open("/proc/" .. pid .. "/stat"))
    local st = f:read("a")
    f:close()
    local at = 0
    while true do
      local i = st:find(") ", at + 1, true)
      if not i then break end
      at = i
    end
    local fields = {}
    for w in st:sub(at + 2):gmatch("%S+") do fields[#fields + 1] = w end
    return fields[20], fields[1]
  end

  it("read a process's start time whatever its command name holds: ')', '(', ') ('", function()
    local pidstart = require "orket.sandboxes.pidstart"
    local ok, err = pcall(function()
      for _, name in ipairs { "a)b", "q(", "x) (y", "ok (z)", ") ) ) ) ) ) )" } do
        local pid = run_named(name)
        local want = by_hand(pid)
        assert.is_truthy(want)
        assert.equal(want, pidstart.start_time(pid), name)
        assert.equal(want, (pidstart.stat(pid)), name)
      end
    end)
    stop_started()
    assert(ok, err)
    -- a pid no process has: gone
    local f = assert(io.open("/proc/sys/kernel/pid_max"))
    local none = math.tointeger(tonumber(f:read("l")) + 1)
    f:close()
    assert.same({ nil, "gone" }, { pidstart.stat(none) })
  end)

  it("reclaim a dead claim whose pid a later process named 'a)b' holds, and count a zombie as dead", function()
    local uv = require "luv"
    local pidstart = require "orket.sandboxes.pidstart"
    local dir = H.tmpdir()
    local parent = dir .. "/.orket/sandboxes"
    os.execute("mkdir -p " .. H.quote(parent .. "/2/tmp") .. " " .. H.quote(parent .. "/3/tmp"))
    local kept = database.kept_path(dir, "main")
    local ok, err = pcall(function()
      local pid = run_named("a)b")
      local wrong = tostring(math.tointeger(tonumber((by_hand(pid)))) + 12345)
      local claim = kept .. ".in." .. pid .. "." .. wrong .. ".5"
      os.execute("mkdir -p " .. H.quote(claim))
      H.write(claim .. "/store.sqlite", "newest")
      assert.is_true(database.take_kept(dir, "main", parent .. "/2", true))
      assert.equal("newest", H.read(database.folder(parent .. "/2") .. "/store.sqlite"))
      assert.is_nil(uv.fs_lstat(claim))
      -- a zombie: a child of a sleep that never waits for it (the shell exec'd into sleep).
      -- The child ends a second later: one that ended before the exec could be reaped by
      -- the shell itself, and its pid was gone from /proc (seen on a loaded machine)
      local d = H.tmpdir()
      os.execute("sh -c 'sleep 1 & echo $! > " .. d .. "/z; exec sleep 30' >/dev/null 2>&1 & echo $! > " .. d .. "/p")
      started[#started + 1] = math.tointeger(tonumber(H.read(d .. "/p"):match("%d+")))
      -- (the shell makes the file before echo writes it: read once its line is whole)
      local z = math.tointeger(tonumber(H.wait_for(function() return (H.read(d .. "/z") or ""):match("^(%d+)\n") end,
        "the zombie's pid")))
      H.wait_for(function() return select(2, by_hand(z)) == "Z" end, "a zombie")
      local zstart = by_hand(z)
      assert.is_nil(pidstart.start_time(z))
      claim = kept .. ".in." .. z .. "." .. zstart .. ".6"
      os.execute("mkdir -p " .. H.quote(claim))
      H.write(claim .. "/store.sqlite", "zombie's")
      assert.is_true(database.take_kept(dir, "main", parent .. "/3", true))
      assert.equal("zombie's", H.read(database.folder(parent .. "/3") .. "/store.sqlite"))
    end)
    stop_started()
    assert(ok, err)
  end)

  it("never let a dead claim displace a kept folder handed over after it; set the loser aside, not removed", function()
    local uv = require "luv"
    local dir = H.tmpdir()
    local parent = dir .. "/.orket/sandboxes"
    local kept = database.kept_path(dir, "main")
    local dead = dead_pid()
    local list = { { name = "store", database = "sqlite" } }
    local function asides()
      local out = {}
      local it = uv.fs_scandir(parent)
      for n in function() return it and uv.fs_scandir_next(it) end do
        if n:match("^db%.main%.prev%.") then out[#out + 1] = H.read(parent .. "/" .. n .. "/store.sqlite") end
      end
      table.sort(out)
      return out
    end
    for i = 1, 5 do os.execute("mkdir -p " .. H.quote(database.folder(parent .. "/" .. i))) end
    -- a claim left by an older Orket (its pid alone), then this phase's sandbox 1 handed over
    os.execute("mkdir -p " .. H.quote(kept .. ".in." .. dead))
    H.write(kept .. ".in." .. dead .. "/store.sqlite", "months old")
    H.write(database.folder(parent .. "/1") .. "/store.sqlite", "phase")
    database.put_kept(dir, "main", parent .. "/1", list, true)
    assert.is_true(database.take_kept(dir, "main", parent .. "/2", true))
    assert.equal("phase", H.read(database.folder(parent .. "/2") .. "/store.sqlite"))
    assert.same({ "months old" }, asides())
    -- a claim whose owner was killed mid-hand-over, then a later clean hand-over
    local s, us = uv.gettimeofday()
    local claim = string.format("%s.in.%d.7.%d", kept, dead, s * 1000000 + us)
    os.execute("mkdir -p " .. H.quote(claim))
    H.write(claim .. "/store.sqlite", "killed mid-way")
    H.write(database.folder(parent .. "/3") .. "/store.sqlite", "ended later")
    database.put_kept(dir, "main", parent .. "/3", list, true)
    assert.is_true(database.take_kept(dir, "main", parent .. "/4", true))
    assert.equal("ended later", H.read(database.folder(parent .. "/4") .. "/store.sqlite"))
    assert.same({ "killed mid-way", "months old" }, asides())
    -- a claim made after the kept folder's hand-over is the newer: it is taken, and the
    -- kept folder it displaces is set aside
    H.write(database.folder(parent .. "/4") .. "/store.sqlite", "handed over")
    database.put_kept(dir, "main", parent .. "/4", list, true)
    s, us = uv.gettimeofday()
    claim = string.format("%s.in.%d.7.%d", kept, dead, s * 1000000 + us + 1000)
    os.execute("mkdir -p " .. H.quote(claim))
    H.write(claim .. "/store.sqlite", "claimed after")
    assert.is_true(database.take_kept(dir, "main", parent .. "/5", true))
    assert.equal("claimed after", H.read(database.folder(parent .. "/5") .. "/store.sqlite"))
    assert.same({ "handed over", "killed mid-way", "months old" }, asides())
    -- the last phase ended: the set-aside folders go too
    database.drop_kept(dir)
    assert.same({}, asides())
  end)

  it("keep a kept folder's time beside it, out of the app's reach: a link or FIFO the app plants changes nothing", function()
    local uv = require "luv"
    local dir = H.tmpdir()
    local parent = dir .. "/.orket/sandboxes"
    local kept = database.kept_path(dir, "main")
    local list = { { name = "store", database = "sqlite" } }
    for i = 1, 3 do os.execute("mkdir -p " .. H.quote(database.folder(parent .. "/" .. i))) end
    local victim = dir .. "/victim"
    H.write(victim, "precious")
    -- a link in the app's folder under the old name: not written through
    local f1 = database.folder(parent .. "/1")
    H.write(f1 .. "/store.sqlite", "one")
    assert(uv.fs_symlink(victim, f1 .. "/.orket-kept-at"))
    database.put_kept(dir, "main", parent .. "/1", list, true)
    assert.equal("precious", H.read(victim))
    assert.equal("file", uv.fs_lstat(database.at_path(kept)).type)
    assert.is_true(database.take_kept(dir, "main", parent .. "/2", true))
    -- a FIFO there, and one in a dead claim: neither opened (the calls return)
    local f2 = database.folder(parent .. "/2")
    os.remove(f2 .. "/.orket-kept-at")
    assert.equal(0, os.execute("mkfifo " .. H.quote(f2 .. "/.orket-kept-at")) and 0)
    database.put_kept(dir, "main", parent .. "/2", list, true)
    local s, us = uv.gettimeofday()
    local claim = string.format("%s.in.%d.7.%d", kept, dead_pid(), s * 1000000 + us + 1000)
    os.execute("mkdir -p " .. H.quote(claim))
    H.write(claim .. "/store.sqlite", "claimed after")
    assert.equal(0, os.execute("mkfifo " .. H.quote(claim .. "/.orket-kept-at")) and 0)
    assert.is_true(database.take_kept(dir, "main", parent .. "/3", true))
    assert.equal("claimed after", H.read(database.folder(parent .. "/3") .. "/store.sqlite"))
    -- anything but a small file beside it counts as 0
    os.remove(database.at_path(kept))
    assert(uv.fs_symlink(victim, database.at_path(kept)))
    database.put_kept(dir, "main", parent .. "/3", list, true)
    assert.equal("precious", H.read(victim))
  end)

  it("move nothing aside for an ending sandbox whose databases no one takes again", function()
    local uv = require "luv"
    local dir = H.tmpdir()
    local home = dir .. "/.orket/sandboxes/1"
    os.execute("mkdir -p " .. H.quote(database.folder(home)))
    H.write(database.folder(home) .. "/store.sqlite", "data")
    database.put_kept(dir, "main", home, { { name = "store", database = "sqlite" } }, false)
    assert.is_nil(uv.fs_lstat(database.kept_path(dir, "main")))
    assert.equal("data", H.read(database.folder(home) .. "/store.sqlite"))
    database.put_kept(dir, "main", home, { { name = "store", database = "sqlite" } }, true)
    assert.equal("data", H.read(database.kept_path(dir, "main") .. "/store.sqlite"))
  end)

  it("tree.remove removes a link as a link, at the top or below", function()
    local v, d = victim(), H.tmpdir()
    os.execute("ln -s " .. H.quote(v) .. " " .. H.quote(d .. "/top"))
    tree_mod.remove(d .. "/top")
    intact(v)
    assert.is_nil(require("luv").fs_lstat(d .. "/top"))
    os.execute("mkdir -p " .. H.quote(d .. "/x/y") .. " && ln -s " .. H.quote(v) .. " " .. H.quote(d .. "/x/y/l"))
    tree_mod.remove(d .. "/x")
    intact(v)
    assert.is_nil(require("luv").fs_lstat(d .. "/x"))
  end)
end)

describe("orket validate", function()
  after_each(H.cleanup)

  it("names a compose file's problem with its file and line", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace"))
    H.write(dir .. "/workspace/compose.yaml", "services:\n  a:\n    command: [x]\n    depends_on: [nope]\n")
    local problems = require("orket.validate").check(dir)
    local found
    for _, p in ipairs(problems) do
      if p.file == "workspace/compose.yaml" then found = p end
    end
    assert.same({ file = "workspace/compose.yaml", line = 4, message = "services.a.depends_on: no service nope" }, found)
  end)

  it("reads the compose file as a file of the tree: a FIFO is named, not waited on; a link out is not followed", function()
    -- validate in a process of its own, with a deadline: before, a FIFO blocked it for good
    local function check(dir)
      local script = H.tmpdir() .. "/check.lua"
      H.write(script, "package.path = package.orket_home .. '/?.lua;' .. package.path\n"
        .. "local problems, _, warnings = require('orket.validate').check(arg[1])\n"
        .. "local function show(list, tag) for _, p in ipairs(list) do if p.file and p.file:find('compose') then "
        .. "print(tag .. ' ' .. p.file .. ': ' .. p.message) end end end\n"
        .. "show(problems, 'problem') show(warnings, 'warning')\n")
      local rc, out = H.sh("timeout 20 " .. H.quote(H.BIN) .. " lua " .. H.quote(script) .. " " .. H.quote(dir))
      assert.equal(0, rc, out)
      return out
    end
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace"))
    assert(os.execute("mkfifo " .. H.quote(dir .. "/workspace/compose.yaml")))
    assert.equal("warning workspace/compose.yaml: is a FIFO, socket or device, not a regular file: a sandbox's plan "
      .. "passes it over\n", check(dir))
    os.remove(dir .. "/workspace/compose.yaml")
    -- a link out of the tree: not followed, its target's text never read
    H.write(dir .. "/secret", "services:\n  a: {command: [x], depends_on: [password-hunter2]}\n")
    assert(os.execute("ln -s " .. H.quote(dir .. "/secret") .. " " .. H.quote(dir .. "/workspace/compose.yaml")))
    local out = check(dir)
    assert.not_matches("hunter2", out)
    assert.matches("warning workspace/compose.yaml: is a symbolic link", out, 1, true)
    -- as the plan does, the next name that is a regular file is the one read
    H.write(dir .. "/workspace/compose.yml", "services:\n  a:\n    command: [x]\n    depends_on: [nope]\n")
    assert.matches("problem workspace/compose.yml: services.a.depends_on: no service nope", check(dir), 1, true)
  end)

  it("and sandbox plan name each bad compose file alike: a cycle, an unknown service, an image only, a port twice, "
    .. "a folder the tree has not, an empty file", function()
      local cases = {
        { "services:\n  a:\n    command: [x]\n    depends_on: [b]\n  b:\n    command: [y]\n    depends_on: [a]\n", 7,
          "depends_on goes round in a cycle: a -> b -> a" },
        { "services:\n  a:\n    command: [x]\n    depends_on: [cache]\n", 4, "services.a.depends_on: no service cache" },
        { "services:\n  q:\n    image: rabbitmq:3\n", 3, "services.q: image rabbitmq:3 only, which Orket cannot run" },
        { "services:\n  a:\n    ports: ['8000:80']\n    command: [x]\n  b:\n    ports: ['8000:8080']\n    command: [y]\n", 6,
          "services a and b both ask for port 8000 (line 3)" },
        -- a folder that is not there: said with its field's line, not by bash's cd at the start
        { "services:\n  a:\n    build: nope\n    command: [python3, app.py]\n", 3,
          "services.a.build: the repository has no folder nope/" },
        { "services:\n  a:\n    build: {context: ./api/}\n", 3, "services.a.build: the repository has no folder api/" },
        { "services:\n  a:\n    command: [x]\n    working_dir: srv\n", 4,
          "services.a.working_dir: the repository has no folder srv/" },
        { "services:\n  a:\n    build: app.py\n    command: [x]\n", 3,
          "services.a.build: app.py is a file, not a folder", { ["app.py"] = "" } },
        -- empty, or only blanks and comments: not taken for no compose file at all
        { "", 1, "holds no services (it is empty, or only blanks and comments)", { ["api/app.py"] = "" } },
        { "  \n# services come later\n\n", 1, "holds no services (it is empty, or only blanks and comments)" },
      }
      for _, c in ipairs(cases) do
        local text, line, message, files = table.unpack(c)
        local dir = H.tmpdir()
        os.execute("mkdir -p " .. H.quote(dir .. "/workspace"))
        H.write(dir .. "/workspace/compose.yaml", text)
        for fname, ftext in pairs(files or {}) do
          os.execute("mkdir -p " .. H.quote(dir .. "/workspace/" .. (fname:match("^(.*)/") or ".")))
          H.write(dir .. "/workspace/" .. fname, ftext)
        end
        local found
        for _, p in ipairs(require("orket.validate").check(dir)) do
          if p.file == "workspace/compose.yaml" then found = p end
        end
        assert(found, "orket validate says nothing of: " .. message)
        assert.equal(line, found.line)
        assert.matches(message, found.message, 1, true)
        local tree = { ["compose.yaml"] = text }
        for fname, ftext in pairs(files or {}) do tree[fname] = ftext end
        local p, err, code = detect(tree)
        assert.is_nil(p, message)
        assert.equal("EINVAL", code)
        assert.matches("compose.yaml:" .. line .. ": " .. message, err, 1, true)
      end
    end)

  it("and sandbox plan leave alone a folder reached through a link, and one a service it waits for may make", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace/real/api"))
    assert(os.execute("ln -s real " .. H.quote(dir .. "/workspace/link")))
    H.write(dir .. "/workspace/compose.yaml", "services:\n  a:\n    build: link/api\n    command: [x]\n"
      .. "  b:\n    command: [y]\n    working_dir: public/build\n    depends_on: [a]\n")
    for _, p in ipairs(require("orket.validate").check(dir)) do
      assert.not_matches("no folder", p.message or "", 1, true)
    end
  end)
end)
