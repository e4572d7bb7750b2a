-- `orket sandbox plan` and `orket sandbox compose` on a project: what was detected and why,
-- as text and JSON; the compose file and Dockerfile written beside main's tree (at a commit,
-- never workspace/) and accepted by
-- a real Compose implementation (Debian's docker-compose, `config`); errors that say what
-- to do. `stop --force` on another machine's sandbox that cannot be asked.
local H = require "tests.helpers"
local cjson = require "cjson"

local function project(files, orket_lua)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  for name, text in pairs(files) do
    local folder = name:match("^(.*)/")
    if folder then os.execute("mkdir -p " .. H.quote(dir .. "/workspace/" .. folder)) end
    H.write(dir .. "/workspace/" .. name, text)
  end
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

-- compose_config(deploy_dir [, env]) -> what Debian's docker-compose makes of the written
-- compose.yaml, as a table (its own YAML read by the PyYAML docker-compose runs on) | nil,
-- its output | nil when docker-compose is not installed
local function compose_config(deploy, env)
  if os.execute("command -v docker-compose >/dev/null 2>&1") ~= true then return nil end
  local p = io.popen("cd " .. H.quote(deploy) .. " && " .. (env or "") .. " docker-compose -f compose.yaml config 2>&1")
  local out = p:read("a")
  if not p:close() then return nil, out end
  local f = assert(io.popen("python3 -c " .. H.quote("import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))")
    .. " <<'EOF'\n" .. out .. "\nEOF\n"))
  local text = f:read("a")
  f:close()
  return cjson.decode(text)
end

-- a Node.js project with an HTTP health check
local function node_project()
  return project({ ["package.json"] = '{"name":"n","scripts":{"start":"node server.js"}}', ["server.js"] = "" },
    'sandbox = { health = { http = "/health" } }')
end

describe("orket sandbox", function()
  after_each(H.cleanup)

  -- a store another machine shares, that machine gone: its live sandbox can be stopped
  -- neither there nor here, and --force ends its row, naming who
  it("stop --force ends the row of another machine's sandbox that cannot be asked", function()
    local dir = project({ ["app.py"] = "print('x')\n" })
    local bak = H.tmpdir() .. "/before.bak"
    assert.equal(0, H.orket("backup " .. H.quote(bak), { cwd = dir }).status)
    local r = H.orket("lua -e " .. H.quote("local ops = require('orket.store.sandboxes'); "
      .. "local db = assert(require('orket.project').open_store('.', false)); "
      .. "local id = ops.insert(db, { target = 'main', port = 8080, socket = '', command = '[]', owner_pid = 4194311, "
      .. "owner_start = '1', owner_machine = 'gone-host/0123abcd-0000-4000-8000-000000000001.4026531836' }); "
      .. "ops.set_socket(db, id, '/far/away/.orket/sandboxes/' .. id .. '/app.sock'); ops.set_status(db, id, 'healthy'); "
      .. "db:close(); io.stdout:write(id)"), { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local id = assert(math.tointeger(tonumber(r.stdout)))
    r = H.orket("sandbox list", { cwd = dir })
    assert.matches("(live on another machine: gone-host)", r.stdout, 1, true)
    r = H.orket("sandbox stop " .. id, { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("runs on another machine (gone-host)", r.stderr, 1, true)
    assert.matches("orket sandbox stop --force " .. id, r.stderr, 1, true)
    r = H.orket("restore " .. H.quote(bak), { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("sandbox " .. id .. " (main, healthy, on another machine: gone-host) of this project is running; "
      .. "stop it first: orket sandbox stop " .. id .. " where it runs (gone-host; gone for good: orket sandbox stop "
      .. "--force " .. id .. ")", r.stderr, 1, true)
    r = H.orket("sandbox stop --force " .. id, { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local rows = cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)
    assert.equal("exited", rows[1].status)
    assert.matches("ended by force (orket sandbox stop --force, by ", rows[1].detail, 1, true)
    assert.equal("gone-host", rows[1].machine)
  end)

  -- A sibling container on this host (its host name this one's, as with --network host;
  -- same boot id, another pid namespace) whose folder is not shared here was listed "live on
  -- another machine: HOST" with this host's own name.
  it("list and stop say a sibling container's sandbox is on this host, not another machine of its name", function()
    local dir = project({ ["app.py"] = "print('x')\n" })
    local r = H.orket("lua -e " .. H.quote("local ops = require('orket.store.sandboxes'); "
      .. "local ps = require('orket.sandboxes.pidstart'); "
      .. "local db = assert(require('orket.project').open_store('.', false)); "
      .. "local id = ops.insert(db, { target = 'main', port = 8080, socket = '', command = '[]', owner_pid = 4194311, "
      .. "owner_start = '1', owner_machine = ps.host .. '/' .. ps.boot .. '.1' }); "
      .. "ops.set_socket(db, id, '/in/the/container/.orket/sandboxes/' .. id .. '/app.sock'); "
      .. "ops.set_status(db, id, 'healthy'); db:close(); io.stdout:write(id, ' ', ps.host)"), { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local id, host = r.stdout:match("^(%d+) (.+)$")
    r = H.orket("sandbox list", { cwd = dir })
    assert.matches("(live in another container or pid namespace on this host: " .. host .. ")", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("another machine", 1, true))
    r = H.orket("sandbox stop " .. id, { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("runs in another container or pid namespace on this host (" .. host .. ") whose folder",
      r.stderr, 1, true)
    local rows = cjson.decode(H.orket("sandbox list --json", { cwd = dir }).stdout)
    assert.same({ host, true }, { rows[1].machine, rows[1].elsewhere })
  end)

  -- A compose service's folder that is a git submodule (a gitlink: main's export writes an
  -- empty folder for it, and nothing inside) was refused as "the repository has no folder".
  it("plan refuses a build folder that is, or lies in, a git submodule, saying so", function()
    local function with_submodule(compose, gitmodules)
      local files = { ["compose.yaml"] = compose }
      if gitmodules then files[".gitmodules"] = '[submodule "app"]\n\tpath = lib/app\n\turl = https://example.invalid/a.git\n' end
      local dir = project(files)
      local ws = H.quote(dir .. "/workspace")
      -- a gitlink naming a commit this repository does not hold, as a submodule's does
      assert.equal(0, (H.sh("git -C " .. ws .. " update-index --add --cacheinfo 160000,"
        .. string.rep("1", 40) .. ",lib/app && git -C " .. ws .. " -c user.name=p -c user.email=p@example.invalid "
        .. "commit -q -m submodule")))
      return H.orket("sandbox plan", { cwd = dir }), dir
    end
    local r, dir = with_submodule("services:\n  app:\n    build: ./lib/app\n    command: python3 app.py\n", true)
    assert.equal(1, r.status)
    assert.matches("compose.yaml:3: services.app.build: lib/app/ is a git submodule, whose files a sandbox does not "
      .. "have", r.stderr, 1, true)
    assert.matches("commit the service's files into the repository itself", r.stderr, 1, true)
    -- validate, on the working tree (the submodule not checked out), by .gitmodules
    r = H.orket("validate", { cwd = dir })
    assert.matches("services.app.build: lib/app/ is a git submodule", r.stdout .. r.stderr, 1, true)
    r = with_submodule("services:\n  app:\n    build: ./lib/app/server\n", true)
    assert.equal(1, r.status)
    assert.matches("compose.yaml:3: services.app.build: lib/app/server/ lies in the git submodule lib/app/", r.stderr,
      1, true)
    -- no .gitmodules: the empty folder the export wrote for it says so
    r = with_submodule("services:\n  app:\n    command: python3 app.py\n    working_dir: lib/app\n", false)
    assert.equal(1, r.status)
    assert.matches("compose.yaml:4: services.app.working_dir: lib/app/ is a git submodule", r.stderr, 1, true)
    -- a .gitmodules left naming a folder that now holds the tree's own files: planned
    local plain = project({ ["compose.yaml"] = "services:\n  app:\n    build: ./lib/app\n    command: python3 app.py\n",
      [".gitmodules"] = '[submodule "app"]\n\tpath = lib/app\n\turl = https://example.invalid/a.git\n',
      ["lib/app/app.py"] = "print('x')\n" })
    r = H.orket("sandbox plan", { cwd = plain })
    assert.equal(0, r.status, r.stderr)
    assert.matches("folder:   lib/app/", r.stdout, 1, true)
  end)

  -- A store several folders share: the end of a bug-fix phase whose tick ran here stopped
  -- (or asked the owner to stop, through its folder) every folder's live sandbox; another
  -- folder's is left, and said; a sibling container's at this path is said as such, not as
  -- another machine's.
  it("bugfix tick's phase end leaves another folder's sandbox running, and says so", function()
    local dir = project({ ["app.py"] = "print('x')\n" })
    local other = H.tmpdir()
    -- a live owner of this machine (a sleep), which never answers a stop request itself:
    -- the request file in its folder tells whether the tick asked for one
    local sleeper = io.popen("sleep 120 & echo $!")
    local owner = sleeper:read("l")
    local r = H.orket("lua -e " .. H.quote("local ops = require('orket.store.sandboxes'); "
      .. "local pidstart = require('orket.sandboxes.pidstart'); "
      .. "local db = assert(require('orket.project').open_store('.', false)); "
      .. "require('orket.store.imports').insert_card(db, { id = 'R', type = 'rock', name = 'rock', priority = 2 }); "
      .. "require('orket.store.cards').set_status(db, 'R', 'done', nil, 'developer', 0); "
      .. "local function row(machine, pid, start, home, port) "
      .. "  local id = ops.insert(db, { target = 'main', port = port, socket = '', command = '[]', owner_pid = pid, "
      .. "    owner_start = start, owner_machine = machine }); "
      .. "  ops.set_socket(db, id, home .. '/.orket/sandboxes/' .. id .. '/app.sock'); "
      .. "  ops.set_status(db, id, 'healthy'); return id end; "
      .. "local theirs = row(pidstart.machine, " .. owner .. ", pidstart.start_time(" .. owner .. "), "
      .. string.format("%q", other) .. ", 8080); "
      .. "os.execute('mkdir -p ' .. " .. string.format("%q", other) .. " .. '/.orket/sandboxes/' .. theirs); "
      -- (a sibling container's at this very path, its folder not shared: no directory here)
      .. "local sib = row('c0ffee123456/' .. pidstart.boot .. '.4026531999', 4194311, '1', "
      .. "require('luv').fs_realpath('.'), 8081); "
      .. "db:close(); io.stdout:write(theirs, ' ', sib)"), { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local theirs, sib = r.stdout:match("^(%d+) (%d+)$")
    local clockfile = H.tmpdir() .. "/offset"
    H.write(clockfile, "0\n")
    local env = { ORKET_CLOCK_OFFSET_FILE = clockfile }
    r = H.orket("bugfix tick", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    assert.matches("R: its bug-fix phase started", r.stdout, 1, true)
    H.write(clockfile, tostring(8 * 86400) .. "\n")
    r = H.orket("bugfix tick", { cwd = dir, env = env })
    os.execute("kill " .. owner)
    sleeper:close()
    assert.equal(0, r.status, r.stderr)
    local real = require("luv").fs_realpath(dir)
    assert.matches("R: its bug-fix phase ended (bug_fix.days (7) passed); 0 sandbox(es) stopped; left running, other "
      .. "folders': " .. theirs .. " (" .. require("luv").fs_realpath(other) .. "), " .. sib .. " (" .. real
      .. " in another container or pid namespace on this host: c0ffee123456)\n", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("c0ffee123456:", 1, true))
    -- no stop was asked of the other folder's sandbox
    assert.is_nil(require("luv").fs_stat(other .. "/.orket/sandboxes/" .. theirs .. "/stop"))
  end)

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
    assert.matches("orket: orket.lua:19: sandbox.deploy: must be", r.stderr, 1, true)
    r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("sandbox.deploy", r.stdout, 1, true)
  end)

  it("plan says a published service that others start after is checked before they start", function()
    local dir = project({ ["compose.yaml"] = "services:\n  api:\n    command: [python3, api.py]\n    ports: ['8080']\n"
      .. "  worker:\n    command: [python3, worker.py]\n    healthcheck: {disable: true}\n    depends_on: [api]\n" })
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("  api (reached through the sandbox's socket)\n", r.stdout, 1, true)
    assert.matches("    health:   TCP connect through the socket, by the sandbox's owner; before the services after it "
      .. "start, a TCP connect to port 8080\n", r.stdout, 1, true)
  end)

  -- a job (service_completed_successfully) was said as a service with a port and a TCP
  -- check, and what waited for it as waiting for it healthy
  it("plan says a job runs to its end, with no port or check, and what waits for it", function()
    local dir = project({ ["compose.yaml"] = "services:\n  migrate:\n    command: [sh, -c, 'sleep 1']\n"
      .. "  web:\n    command: [python3, app.py]\n    depends_on: {migrate: {condition: service_completed_successfully}}\n" })
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("  migrate\n    folder:   the root\n    command:  sh -c sleep 1\n    port:     none (a job)\n"
      .. "    health:   none: a job, run to its end (exit 0) before the services after it start\n", r.stdout, 1, true)
    assert.matches("    after:    migrate (run to its end)\n", r.stdout, 1, true)
    local doc = cjson.decode(H.orket("sandbox plan --json", { cwd = dir }).stdout)
    assert.is_true(doc.services[1].job)
    assert.is_nil(doc.services[1].port)
  end)

  -- a compose file that is a link or a folder was passed over without a word: the plan ran
  -- the folders' services instead, its reasons never naming the file
  it("plan says a compose file that is no regular file is passed over", function()
    local dir = project({ ["app.py"] = "print(1)\n" })
    os.execute("ln -s /etc/passwd " .. H.quote(dir .. "/workspace/compose.yaml"))
    H.commit_main(dir, "a link where the compose file goes")
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("  - compose.yaml is a symbolic link, not a regular file: passed over\n", r.stdout, 1, true)
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

  it("compose writes the file and a Dockerfile, and never replaces one unasked", function()
    local dir = node_project()
    local r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local y = assert(H.read(dir .. "/deploy/compose.yaml"))
    local d = assert(H.read(dir .. "/deploy/Dockerfile"))
    assert.matches('context: "./src"', y, 1, true)
    assert.matches('dockerfile: "../Dockerfile"', y, 1, true)
    assert.matches("FROM node:20", d, 1, true)
    r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("compose.yaml exists: not replaced (use --force)", r.stderr, 1, true)
    assert.equal(0, H.orket("sandbox compose --force", { cwd = dir }).status)
    -- no temp folder of an export is left beside the written files
    local left = io.popen("ls -A " .. H.quote(dir .. "/deploy")):read("a")
    assert.equal("Dockerfile\ncompose.yaml\nsrc\n", left)
    -- an --out that is a file, or whose parent is missing, is named as given (it was the temp
    -- file a write failed on: "ENOTDIR: not a directory: FILE/Dockerfile.PID-N.tmp")
    H.write(dir .. "/afile", "x")
    r = H.orket("sandbox compose --out afile", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: sandbox compose: --out afile: not a directory; nothing was written\n", r.stderr)
    r = H.orket("sandbox compose --out nowhere/sub", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: sandbox compose: --out nowhere/sub: cannot make the folder (ENOENT); nothing was written\n",
      r.stderr)
  end)

  -- main is a commit: the build context is main's tree at the plan's commit, written out of
  -- the repository, never workspace/ (main's view, which keeps a person's edits and may lag
  -- behind main), and nothing is written into the view
  it("compose builds from main's tree at a commit, never from workspace/", function()
    local dir = node_project()
    local first = io.popen("git -C " .. H.quote(dir .. "/workspace") .. " rev-parse main"):read("l")
    H.write(dir .. "/workspace/server.js", "// a person's draft\n")
    H.write(dir .. "/workspace/notes.txt", "mine\n")
    local r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("wrote ./deploy/src (main's tree at " .. first:sub(1, 12) .. ")", r.stdout, 1, true)
    assert.equal("", H.read(dir .. "/deploy/src/server.js"))
    assert.is_nil(io.open(dir .. "/deploy/src/notes.txt"))
    assert.matches("main's tree at commit " .. first, assert(H.read(dir .. "/deploy/compose.yaml")), 1, true)
    -- the view as the person left it: their edits, and no file of Orket's
    assert.equal("// a person's draft\n", H.read(dir .. "/workspace/server.js"))
    assert.is_nil(io.open(dir .. "/workspace/.dockerignore"))
    local st = io.popen("git -C " .. H.quote(dir .. "/workspace") .. " status --short"):read("a")
    assert.matches(" M server.js\n", st, 1, true)
    assert.matches("?? notes.txt\n", st, 1, true)
    assert.is_nil(st:find("dockerignore", 1, true), st)
    -- main moves on: --force writes its new tree in src's place; --commit an older one of main's
    H.write(dir .. "/workspace/server.js", "// merged\n")
    H.commit_main(dir, "a change merged")
    r = H.orket("sandbox compose --force", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("// merged\n", H.read(dir .. "/deploy/src/server.js"))
    r = H.orket("sandbox compose --force --commit " .. first, { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("", H.read(dir .. "/deploy/src/server.js"))
    -- a folder named src where the tree goes is not replaced unasked
    os.remove(dir .. "/deploy/compose.yaml")
    r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("deploy/src exists: not replaced (use --force)", r.stderr, 1, true)
  end)

  it("compose's file is accepted by a Compose implementation", function()
    local tool = compose_tool()
    if not tool then return pending("neither docker-compose nor podman-compose is installed") end
    local dir = node_project()
    assert.equal(0, H.orket("sandbox compose", { cwd = dir }).status)
    local out = io.popen("cd " .. H.quote(dir .. "/deploy") .. " && " .. tool .. " -f compose.yaml config 2>&1; echo rc=$?"):read("a")
    assert.matches("rc=0", out, 1, true)
    assert.matches("/health", out, 1, true)
    assert.matches("8080", out, 1, true)
  end)

  it("compose writes every service of a plan, with its addresses, database, health and depends_on", function()
    local dir = project({
      ["compose.yaml"] = [[
services:
  api:
    build: api
    command: ["python3", "app.py", "--port", "{port}"]
    depends_on: [db]
    environment:
      DSN: ${DB_URL}
      PRICE: "5$ each"
    ports: ["8000"]
  db:
    x-orket: { database: postgresql, seed: db/seed.sql }
]],
      ["db/seed.sql"] = "CREATE TABLE t (id int);\n",
      ["api/app.py"] = "print('api')\n",
    })
    local r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("wrote ./deploy/api.Dockerfile", r.stdout, 1, true)
    assert.matches("FROM python:3.11", assert(H.read(dir .. "/deploy/api.Dockerfile")), 1, true)
    local doc, out = compose_config(dir .. "/deploy", "POSTGRES_PASSWORD=s3cret")
    if doc == nil and out == nil then return pending("docker-compose is not installed (scripts/deps.sh --test installs it)") end
    assert.is_table(doc, out)
    local db, api = doc.services.db, doc.services.api
    assert.equal("postgres:15-bookworm", db.image)
    assert.equal("s3cret", db.environment.POSTGRES_PASSWORD)
    local seeded = false
    for _, v in ipairs(db.volumes) do
      local m = type(v) == "table" and v.target or v
      seeded = seeded or tostring(m):find("/docker-entrypoint-initdb.d/seed.sql", 1, true) ~= nil
    end
    assert.is_true(seeded, cjson.encode(db.volumes))
    assert.equal("CMD-SHELL", db.healthcheck.test[1])
    assert.same({ db = { condition = "service_healthy" } }, api.depends_on)
    assert.same({ "python3", "app.py", "--port", "8080" }, api.command)
    -- the addresses the sandbox hands over, with the compose network's names
    assert.equal("postgresql://app:s3cret@db:5432/app", api.environment.DB_URL)
    assert.equal("postgresql://app:s3cret@db:5432/app", api.environment.DATABASE_URL)
    assert.equal("postgresql://app:s3cret@db:5432/app", api.environment.DSN)
    assert.equal("http://api:8080", api.environment.API_URL)
    assert.equal("8080", api.environment.PORT)
    -- a dollar from the tree stays a dollar (config prints it escaped again, as $$)
    assert.equal("5$$ each", api.environment.PRICE)
    assert.equal("CMD-SHELL", api.healthcheck.test[1])
    assert.equal(8080, api.ports[1].target)
    -- the database's password is asked for, never written
    assert.is_nil(assert(H.read(dir .. "/deploy/compose.yaml")):find("s3cret", 1, true))
    doc, out = compose_config(dir .. "/deploy", "env -u POSTGRES_PASSWORD")
    assert.is_nil(doc)
    assert.matches("set POSTGRES_PASSWORD to the database's password", out, 1, true)
  end)

  it("compose writes services found in folders, the one reached from outside after the others", function()
    local dir = project({
      ["web/package.json"] = '{"name":"w","scripts":{"start":"node server.js"}}', ["web/server.js"] = "",
      ["api/requirements.txt"] = "flask\n", ["api/app.py"] = "print(1)\n",
    })
    local r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- the folder's requirements installed in its image
    assert.matches("pip install --no-cache-dir -r requirements.txt", assert(H.read(dir .. "/deploy/api.Dockerfile")), 1, true)
    assert.matches("FROM node:20", assert(H.read(dir .. "/deploy/web.Dockerfile")), 1, true)
    local doc, out = compose_config(dir .. "/deploy")
    if doc == nil and out == nil then return pending("docker-compose is not installed (scripts/deps.sh --test installs it)") end
    assert.is_table(doc, out)
    local web, api = doc.services.web, doc.services.api
    assert.same({ api = { condition = "service_healthy" } }, web.depends_on)
    assert.is_nil(api.depends_on)
    assert.equal("http://api:8080", web.environment.API_URL)
    assert.equal("api", web.environment.API_HOST)
    assert.equal("8080", web.environment.API_PORT)
    assert.matches("/dev/tcp/127.0.0.1/8080", api.healthcheck.test[2], 1, true)
    assert.equal(8080, web.ports[1].published)
    assert.is_nil(api.ports)
  end)

  it("compose writes through no link of the tree, and builds from no folder that is a link", function()
    local victim = H.tmpdir()
    H.write(victim .. "/config", "IMPORTANT CONFIG")
    local dir = project({ ["package.json"] = '{"name":"n","scripts":{"start":"node server.js"}}', ["server.js"] = "" })
    os.execute("ln -s " .. H.quote(victim .. "/config") .. " " .. H.quote(dir .. "/workspace/.dockerignore.tmp"))
    H.commit_main(dir, "a link where Orket writes")
    local r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("IMPORTANT CONFIG", H.read(victim .. "/config"))
    assert.matches(".git\n", assert(H.read(dir .. "/deploy/src/.dockerignore")), 1, true)
    -- the ignore file itself a link in main's tree: refused, never written through, and
    -- the tree written before is left as it was
    os.execute("ln -s " .. H.quote(victim .. "/made") .. " " .. H.quote(dir .. "/workspace/.dockerignore"))
    H.commit_main(dir, "the ignore file a link")
    r = H.orket("sandbox compose --force", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("deploy/src/.dockerignore is a symbolic link: not replaced, nor written through", r.stderr, 1, true)
    assert.is_nil(io.open(victim .. "/made"))
    assert.matches(".git\n", assert(H.read(dir .. "/deploy/src/.dockerignore")), 1, true)
    assert.equal("Dockerfile\ncompose.yaml\nsrc\n", io.popen("ls -A " .. H.quote(dir .. "/deploy")):read("a"))
    -- a service's folder that is a link to a folder of the host's
    dir = project({ ["compose.yaml"] = "services:\n  backend:\n    build: backend\n    command: [\"python3\", \"app.py\"]\n" })
    os.execute("ln -s " .. H.quote(victim) .. " " .. H.quote(dir .. "/workspace/backend"))
    H.commit_main(dir, "a folder that leads out")
    r = H.orket("sandbox compose", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("deploy/src/backend: the folder of service backend is a symbolic link in main's tree at ", r.stderr, 1, true)
    assert.matches(": Orket neither writes in it nor builds from it", r.stderr, 1, true)
    assert.is_nil(io.open(victim .. "/.dockerignore"))
    assert.is_nil(io.open(dir .. "/deploy/compose.yaml"))
    assert.equal("", io.popen("ls -A " .. H.quote(dir .. "/deploy")):read("a"))
  end)

  -- podman-compose (Debian 12's 1.0.3) turns the check into `podman run --healthcheck-command
  -- STRING`, which podman runs as `/bin/sh -c STRING`: a stand-in podman notes that string,
  -- and it is run here against the app's port, with nothing listening and then with a server
  it("compose's health check survives podman-compose and passes once the app answers", function()
    if os.execute("command -v podman-compose >/dev/null 2>&1") ~= true then
      return pending("podman-compose is not installed (sh scripts/deps.sh --test installs it)")
    end
    local dir = project({ ["app.py"] = "print('hi')\n" }, 'sandbox = { health = { http = "/" } }')
    assert.equal(0, H.orket("sandbox compose", { cwd = dir }).status)
    local bin = H.tmpdir()
    H.write(bin .. "/podman", '#!/bin/sh\ncase "$1" in\n  version|--version) echo "podman version 4.3.1" ;;\n'
      .. '  run) printf "%s\\0" "$@" >"$(dirname "$0")/run.args" ;;\nesac\nexit 0\n')
    assert(require("luv").fs_chmod(bin .. "/podman", tonumber("755", 8)))
    local out = io.popen("cd " .. H.quote(dir .. "/deploy") .. " && podman-compose --podman-path " .. H.quote(bin .. "/podman")
      .. " -f compose.yaml up -d 2>&1; echo rc=$?"):read("a")
    assert.matches("rc=0", out, 1, true)
    local args = {}
    for a in assert(H.read(bin .. "/run.args"), out):gmatch("([^%z]*)%z") do args[#args + 1] = a end
    local check
    for i, a in ipairs(args) do if a == "--healthcheck-command" then check = args[i + 1] end end
    assert(check, table.concat(args, " "))
    -- the app's port here: one nothing listens on, then a server's
    local uv = require "luv"
    local s = uv.new_tcp()
    assert(s:bind("127.0.0.1", 0))
    local port = s:getsockname().port
    s:close()
    check = check:gsub("/8080", "/" .. port)
    local function healthy()
      return os.execute("cd / && /bin/sh -c " .. H.quote(check) .. " >/dev/null 2>&1") == true
    end
    assert.is_false(healthy(), check)
    local srv = io.popen("cd " .. H.quote(dir .. "/workspace") .. " && exec python3 -m http.server " .. port
      .. " --bind 127.0.0.1 >/dev/null 2>&1 & echo $!"):read("l")
    local ok = false
    for _ = 1, 600 do -- a minute at most for python3 to listen, on a busy machine
      ok = healthy()
      if ok then break end
      uv.sleep(100)
    end
    os.execute("kill " .. srv)
    assert.is_true(ok, "the health check never passed: " .. check)
  end)

  it("compose's Dockerfile runs the app as a user, and its context leaves .git out", function()
    local dir = project({ ["app.py"] = "print('hi')\n" })
    assert.equal(0, H.orket("sandbox compose", { cwd = dir }).status)
    local d = assert(H.read(dir .. "/deploy/Dockerfile"))
    assert.matches("\nUSER app\n", d, 1, true)
    assert.matches("\nCOPY --chown=app:app . .\n", d, 1, true)
    assert.is_truthy(d:find("COPY", 1, true) < d:find("USER app", 1, true))
    -- the files docker-compose sends as the build context (its docker library's reading of
    -- .dockerignore): the tree, not its history
    local ignore = assert(H.read(dir .. "/deploy/src/.dockerignore"))
    assert.matches("\n.git\n", ignore, 1, true)
    local py = [[
import os, sys
from docker.utils.build import exclude_paths
root = sys.argv[1]
pats = [l.strip() for l in open(os.path.join(root, ".dockerignore")) if l.strip() and not l.startswith("#")]
print("\n".join(sorted(exclude_paths(root, pats))))
]]
    local sent = io.popen("python3 -c " .. H.quote(py) .. " " .. H.quote(dir .. "/deploy/src") .. " 2>&1"):read("a")
    if sent:find("No module named", 1, true) then return pending("no python3-docker (it comes with docker-compose)") end
    assert.matches("app.py", sent, 1, true)
    assert.is_nil(sent:find(".git/", 1, true), sent)
    -- main's tree's own ignore file is kept
    H.write(dir .. "/workspace/.dockerignore", "mine\n")
    H.commit_main(dir, "an ignore file of the tree's")
    assert.equal(0, H.orket("sandbox compose --force", { cwd = dir }).status)
    assert.equal("mine\n", H.read(dir .. "/deploy/src/.dockerignore"))
  end)
end)
