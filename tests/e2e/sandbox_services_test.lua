-- A sandbox of several services: a backend/ and a frontend/ found in the tree (the
-- seeds' layout), planned, started in one network namespace with the frontend told the
-- backend's address, reached through the sandbox's socket and stopped whole; a compose
-- file's service that never gets healthy stops the others and says so.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local backends = require "tests.backends"

local BACKEND = [[
import http.server, json, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"from": "backend", "mark": sys.argv[1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        print("backend got", self.path, flush=True)
print("backend on", os.environ["PORT"], flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]]

-- the frontend finds the backend only through what it is told
local FRONTEND = [[
import http.server, os, sys, urllib.request
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with urllib.request.urlopen(os.environ["BACKEND_URL"] + "/api") as r:
            body = ("front sees " + r.read().decode()).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]]

local function offered() return H.sandbox_offered("python3") end

local function project(files, mark)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  for name, text in pairs(files) do
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace/" .. (name:match("^(.*)/") or ".")))
    H.write(dir .. "/workspace/" .. name, text)
  end
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format("\nsandbox = { env = { MARK = %q } }\n", mark))
  backends.project(dir)
  return dir
end

-- the processes whose environment holds mark (orket.lua's sandbox.env gives it to each
-- service; their command lines are the tree's own)
local procs = F.marked_procs

local function get(sock, path) return F.sandbox_request(sock, path) end

describe("a sandbox of several services", function()
  local skip
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or python3 is missing" end
  end)
  after_each(H.cleanup)

  it("runs a backend/ and a frontend/ in one namespace, the frontend told where the backend is", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["backend/app.py"] = (BACKEND:gsub("sys.argv%[1%]", 'os.environ["MARK"]')),
      ["frontend/app.py"] = FRONTEND,
    }, mark)
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("services (in the order they start):\n  backend\n    folder:   backend/\n    command:  python3 app.py\n"
      .. "    port:     8081\n    health:   TCP connect to port 8081\n", r.stdout, 1, true)
    assert.matches("  frontend (reached through the sandbox's socket)\n    folder:   frontend/\n", r.stdout, 1, true)
    r = H.orket("sandbox plan --json", { cwd = dir })
    local doc = cjson.decode(r.stdout)
    assert.equal("backend", doc.services[1].name)
    assert.equal(8081, doc.services[1].port)
    assert.is_true(doc.services[2].entry)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("sandbox 1 is healthy", r.stdout, 1, true)
    local sock = dir .. "/.orket/sandboxes/1/app.sock"
    local status, body = get(sock, "/")
    assert.equal(200, status, body)
    assert.equal('front sees {"from": "backend", "mark": "' .. mark .. '"}', body)
    r = H.orket("sandbox logs 1", { cwd = dir })
    -- orket's lines in their order; a service's own lines among them wherever its pipe
    -- delivered them (the backend may be seen healthy before its first line is relayed)
    local said = r.stdout:gsub("%[backend%][^\n]*\n", "")
    assert.matches("orket: starting backend on port 8081 (backend/)\norket: backend is healthy\n"
      .. "orket: starting frontend on port 8080 (frontend/)\n", said, 1, true)
    assert.matches("[backend] backend on 8081", r.stdout, 1, true)
    assert.matches("[backend] backend got /api", r.stdout, 1, true)
    local rows = cjson.decode(H.orket("sandbox list --json", { cwd = dir }).stdout)
    assert.same({ "backend:8081=python3 app.py", "frontend:8080=python3 app.py" }, rows[1].command)
    assert.is_true(#procs(mark) >= 2) -- both services (and the processes around them) run
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("stops the others, with every service's log, when one never gets healthy; a deploy sends its card back", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["compose.yaml"] = string.format([[
services:
  web:
    build: web
    command: ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
    ports: ["8080"]
    depends_on: [api]
  api:
    build: api
    command: ["python3", "app.py"]
    depends_on: [db]
    healthcheck:
      test: ["CMD", "false"]
      interval: 100ms
      retries: 3
  db:
    command: ["sh", "-c", "echo db up; exec python3 -m http.server {port} --bind 127.0.0.1"]
]]),
      ["web/index.html"] = "hi\n",
      ["api/app.py"] = "import sys, time\nprint('api up', flush=True)\ntime.sleep(3600)\n",
    }, mark)
    local r = H.orket("sandbox up", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("orket: starting api on port 8082 (api/)", r.stderr, 1, true)
    assert.matches("[db] db up", r.stderr, 1, true)
    assert.matches("[api] api up", r.stderr, 1, true)
    assert.matches("orket: api was not healthy after 3 checks, 100 ms apart", r.stderr, 1, true)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    local rows = cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)
    assert.equal("exited", rows[1].status)
    -- a deploy of a card: the card goes back with the failure and every service's lines
    H.write(dir .. "/epics/w.json", cjson.encode { id = "W", name = "Web", issues = { { id = "W-1", summary = "Serve",
      seat = "senior_developer", sandbox_checks = { { http = { path = "/" } } } } } })
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    r = H.orket("sandbox up --card W-1", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("W-1: sent_back (the sandbox did not start)", r.stdout, 1, true)
    local c = H.card_json(dir, "W-1")
    assert.equal("in_progress", c.card.status)
    local said = c.comments[#c.comments].body
    assert.matches("acceptance checks failed.", said, 1, true)
    assert.matches("- FAIL the sandbox starts: sandbox 2: the app exited", said, 1, true)
    assert.matches("[db] db up", said, 1, true)
    assert.matches("[api] api up", said, 1, true)
    assert.matches("orket: api was not healthy after 3 checks", said, 1, true)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("is not healthy while a service before the entry answers on the entry's port", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    -- api ignores $PORT and takes 8080, the entry's port: the owner's probe of the socket
    -- reached api, and the sandbox was said healthy before web had started
    local dir = project({
      ["compose.yaml"] = "services:\n  api:\n    build: api\n  web:\n    build: web\n    depends_on: [api]\n",
      ["api/app.py"] = "import http.server\nprint('api on 8080', flush=True)\n"
        .. "http.server.HTTPServer(('127.0.0.1', 8080), http.server.SimpleHTTPRequestHandler).serve_forever()\n",
      ["web/app.py"] = FRONTEND,
    }, mark)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\nsandbox.health = { start_timeout_ms = 3000 }\n")
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.not_matches("is healthy", r.stdout .. r.stderr, 1, true)
    assert.matches("orket: starting api on port 8081 (api/)", r.stderr, 1, true)
    assert.not_matches("orket: starting web", r.stderr, 1, true)
    -- which service held the start, whichever gave up first: the owner or the script
    assert.is_truthy(r.stderr:find("web was not started yet: api, started before it, was not healthy yet", 1, true)
      or r.stderr:find("before it was healthy: api was not healthy within 3000 ms", 1, true), r.stderr)
    assert.equal("exited", cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)[1].status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("says why a service before the entry is not healthy: nothing answered on its port", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    -- a worker listens on no port: its default check, a TCP connect, never passes
    local dir = project({
      ["compose.yaml"] = "services:\n  worker:\n    command: [python3, w.py]\n  web:\n    build: web\n"
        .. "    depends_on: [worker]\n",
      ["w.py"] = "import time\nprint('working', flush=True)\nwhile True: time.sleep(1)\n",
      ["web/app.py"] = FRONTEND,
    }, mark)
    local settings = H.read(dir .. "/orket.lua")
    H.write(dir .. "/orket.lua", settings .. "\nsandbox.health = { start_timeout_ms = 1500 }\n")
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    -- whichever gave up first, the owner or the script, says it
    assert.matches("worker[^\n]* not healthy [^\n]*: nothing answered a TCP connect to its port 8081 %(its %$PORT%) "
      .. "on 127%.0%.0%.1; a service that listens on no port needs healthcheck: {disable: true}", r.stderr)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- the start's default time again: the short one was for the failure, and the web
    -- service's own start may take longer than 1.5 s on a loaded machine
    H.write(dir .. "/orket.lua", settings)
    -- which it does
    H.write(dir .. "/workspace/compose.yaml", H.read(dir .. "/workspace/compose.yaml")
      :gsub("w.py%]\n", "w.py]\n    healthcheck: {disable: true}\n"))
    H.commit_main(dir, "the worker has no port")
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("is up once an entry with no port and no health check has stayed alive, not at the start's timeout", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    -- the last to start (the entry) is a worker: no ports, its check turned off
    local dir = project({
      ["compose.yaml"] = "services:\n  api:\n    build: api\n    command: [python3, app.py, m]\n  worker:\n    command: [python3, w.py]\n"
        .. "    healthcheck: {disable: true}\n    depends_on: [api]\n",
      ["api/app.py"] = BACKEND,
      ["w.py"] = "import time\nprint('working', flush=True)\nwhile True: time.sleep(1)\n",
    }, mark)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
      .. "\nsandbox.health = { start_timeout_ms = 8000, interval_ms = 100, failures = 2 }\n")
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.matches("health:   none (the compose file turns it off; the last to start, it publishes no port): up once "
      .. "it has run 1000 ms", r.stdout, 1, true)
    local t0 = require("luv").now()
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.is_true(require("luv").now() - t0 < 6000, "up took the start's whole time")
    local logs = H.orket("sandbox logs 1", { cwd = dir }).stdout
    assert.matches("orket: worker is up (no health check: still running after 1000 ms)", logs, 1, true)
    -- nothing probes it afterwards: it stays healthy while it runs
    orket.sleep(500)
    assert.equal("healthy", cjson.decode(H.orket("sandbox list --json", { cwd = dir }).stdout)[1].status)
    assert.equal('{"from": "backend", "mark": "m"}', (select(2, get(dir .. "/.orket/sandboxes/1/app.sock.8081", "/"))))
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- one that ends within the settle time fails the start, saying so (a shell's exit: it
    -- ends in milliseconds, however loaded the machine)
    H.write(dir .. "/workspace/compose.yaml", (H.read(dir .. "/workspace/compose.yaml")
      :gsub("command: %[python3, w.py%]", 'command: [sh, -c, "exit 3"]')))
    H.commit_main(dir, "a worker that fails at once")
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("worker ended (status 3) before it was healthy", r.stdout .. r.stderr, 1, true)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("probes an entry named like a frontend with no port and no health check, as before: up once it answers", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    -- web publishes no port (a proxy in front of it would) and turns its check off, and it
    -- listens only 2 s after it starts
    local dir = project({
      ["compose.yaml"] = "services:\n  api:\n    build: api\n    command: [python3, app.py, m]\n  web:\n    build: web\n"
        .. "    command: [python3, app.py, w]\n    healthcheck: {disable: true}\n    depends_on: [api]\n",
      ["api/app.py"] = BACKEND,
      ["web/app.py"] = "import time\ntime.sleep(2)\n" .. BACKEND,
    }, mark)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua")
      .. "\nsandbox.health = { start_timeout_ms = 15000, interval_ms = 100, failures = 2 }\n")
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.matches("  web (reached through the sandbox's socket)", r.stdout, 1, true)
    assert.matches("health:   TCP connect through the socket, by the sandbox's owner", r.stdout, 1, true)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    -- healthy only once it answered: the first request is served
    local code, body = get(dir .. "/.orket/sandboxes/1/app.sock", "/")
    assert.equal(200, code, tostring(body))
    assert.equal('{"from": "backend", "mark": "w"}', body)
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("says in the plan when a service waits for service_healthy on one whose check is off", function()
    if skip then return pending(skip) end
    local dir = project({
      ["compose.yaml"] = "services:\n  worker:\n    command: [python3, w.py]\n    healthcheck: {test: [\"NONE\"]}\n"
        .. "  api:\n    build: api\n    command: [python3, app.py, m]\n"
        .. "    depends_on: {worker: {condition: service_healthy}}\n",
      ["api/app.py"] = BACKEND,
      ["w.py"] = "import time\nwhile True: time.sleep(1)\n",
    }, "svc" .. math.random(1, 1e9))
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("health:   none (the compose file turns it off): up once it has run 1000 ms", r.stdout, 1, true)
    assert.matches("waits for worker's service_healthy, but worker has no health check: it is up once it has run "
      .. "1000 ms, which says nothing of its being ready", r.stdout, 1, true)
  end)

  it("is not made healthy by a service before the entry that prints the entry's start line", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    -- api takes the entry's port and prints the script's own line for web: its output
    -- reaches the owner as "[api] orket: starting web ...", which is not the script's
    local dir = project({
      ["compose.yaml"] = "services:\n  api:\n    build: api\n  web:\n    build: web\n    depends_on: [api]\n",
      ["api/app.py"] = "import http.server\nprint('orket: starting web on port 8080 (web/)', flush=True)\n"
        .. "http.server.HTTPServer(('127.0.0.1', 8080), http.server.SimpleHTTPRequestHandler).serve_forever()\n",
      ["web/app.py"] = FRONTEND,
    }, mark)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\nsandbox.health = { start_timeout_ms = 3000 }\n")
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.not_matches("is healthy", r.stdout .. r.stderr, 1, true)
    assert.matches("[api] orket: starting web on port 8080 (web/)", r.stderr, 1, true)
    assert.is_nil(("\n" .. r.stderr):find("\norket: starting web", 1, true), r.stderr)
    assert.is_truthy(r.stderr:find("web was not started yet: api, started before it, was not healthy yet", 1, true)
      or r.stderr:find("before it was healthy: api was not healthy within 3000 ms", 1, true), r.stderr)
    assert.equal("exited", cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)[1].status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("is healthy only once the services started after the entry are healthy, and fails when one of them ends", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    -- api is the entry (it publishes a port); the worker, started after it as it depends on
    -- it, listens only 1.5 s later: `up` said healthy once api answered, before the worker
    -- was healthy, and one that then failed ended a sandbox already said healthy
    local dir = project({
      ["compose.yaml"] = "services:\n  api:\n    build: api\n    command: [python3, app.py, m]\n    ports: [\"8000:8000\"]\n"
        .. "  worker:\n    command: [python3, w.py]\n    depends_on: [api]\n",
      ["api/app.py"] = BACKEND,
      ["w.py"] = "import time\ntime.sleep(1.5)\n" .. BACKEND,
    }, mark)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\nsandbox.health = { start_timeout_ms = 15000 }\n")
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local logs = H.orket("sandbox logs 1", { cwd = dir }).stdout
    assert.matches("orket: worker is healthy\norket: every service is started\n", logs, 1, true)
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- a worker that ends before it is healthy fails the start: never said healthy first
    H.write(dir .. "/workspace/compose.yaml", (H.read(dir .. "/workspace/compose.yaml")
      :gsub("command: %[python3, w.py%]", 'command: [sh, -c, "sleep 0.5; echo cannot reach the queue; exit 3"]')))
    H.commit_main(dir, "a worker that fails")
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.not_matches("is healthy", r.stdout, 1, true)
    assert.matches("worker ended (status 3) before it was healthy", r.stdout .. r.stderr, 1, true)
    assert.matches("[worker] cannot reach the queue", r.stdout .. r.stderr, 1, true)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("names the service that ended in the sandbox's detail, not only the script's status", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["backend/app.py"] = "import threading, os\nthreading.Timer(2, lambda: os._exit(3)).start()\n"
        .. (BACKEND:gsub("sys.argv%[1%]", 'os.environ["MARK"]')),
      ["frontend/app.py"] = FRONTEND,
    }, mark)
    H.orket("sandbox up --detach", { cwd = dir }) -- healthy, or not yet when the machine is slow
    local row
    H.wait_for(function()
      row = cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)[1]
      return row.status == "exited"
    end, "the sandbox to end with its backend")
    assert.matches("the app exited %(status 3%).*: backend ended %(status 3%)$", row.detail)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("runs a PostgreSQL of its own, seeded from the repository, fresh at each deploy and kept in a bug-fix phase", function()
    if skip then return pending(skip) end
    local bin = require("orket.sandboxes.database").pg_bin()
    if not bin then return pending("skipped: PostgreSQL is not installed (scripts/deps.sh --test installs it)") end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["compose.yaml"] = [[
services:
  db:
    image: postgres:15
    x-orket:
      seed: db/seed.sql
  web:
    command: ["python3", "web.py"]
    depends_on: [db]
]],
      ["db/seed.sql"] = "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);\n"
        .. "INSERT INTO items (name) VALUES ('seeded');\n",
      -- the app asks the database through psql, with the address it was told
      ["web.py"] = string.format([[
import glob, http.server, os, subprocess
PSQL = [%q, os.environ["DATABASE_URL"], "-XAtq", "-v", "ON_ERROR_STOP=1"]
# the seccomp mode (2: a filter) of this process and of each of PostgreSQL's
def layers():
    out = []
    for st in ["/proc/self/status"] + glob.glob("/proc/[0-9]*/status"):
        try:
            text = open(st).read()
            cmd = open(st[:-len("status")] + "cmdline", "rb").read().split(b"\0")[0].decode()
        except OSError:
            continue
        if st == "/proc/self/status" or cmd.endswith("/postgres") or cmd.startswith("postgres:"):
            mode = [l.split()[1] for l in text.splitlines() if l.startswith("Seccomp:")][0]
            out.append(("self" if st == "/proc/self/status" else "postgres") + "=" + mode)
    return " ".join(sorted(set(out)))
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, text):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(text.encode())
    def do_GET(self):
        if self.path == "/layers":
            return self.answer(layers())
        r = subprocess.run(PSQL + ["-c", "SELECT string_agg(name, ',' ORDER BY id) FROM items"], capture_output=True, text=True)
        self.answer(r.stdout.strip() + r.stderr)
    def do_POST(self):
        name = self.rfile.read(int(self.headers["Content-Length"])).decode()
        r = subprocess.run(PSQL + ["-v", "v=" + name], input="INSERT INTO items (name) VALUES (:'v');", capture_output=True, text=True)
        self.answer("added" + r.stderr)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]], bin .. "/psql"),
    }, mark)
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("  db\n    folder:   the root\n    command:  Debian's postgresql\n    port:     8081\n"
      .. "    health:   the database answers (pg_isready)\n", r.stdout, 1, true)
    assert.matches("compose.yaml:3: image postgres:15: Debian's PostgreSQL, run by Orket as a process, seeded from db/seed.sql",
      r.stdout, 1, true)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr .. H.orket("sandbox logs 1", { cwd = dir }).stdout)
    local function sock(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end
    assert.equal("seeded", select(2, F.sandbox_request(sock(1), "/")))
    -- the health check asks for a database that is there before the seed makes app's
    local log1 = H.orket("sandbox logs 1", { cwd = dir }).stdout
    assert.matches("orket: db is healthy", log1, 1, true)
    assert.is_nil(log1:find('database "app" does not exist', 1, true), log1)
    -- the seccomp layer is on for every process, PostgreSQL's too (their setsid() passes it)
    assert.equal("postgres=2 self=2", select(2, F.sandbox_request(sock(1), "/layers")))
    -- (the body goes as JSON: the row is the JSON text)
    assert.equal("added", select(2, F.sandbox_request(sock(1), "/", { method = "POST", body = "from the app" })))
    assert.equal('seeded,"from the app"', select(2, F.sandbox_request(sock(1), "/")))
    -- a deploy: made fresh, from the seed
    r = H.orket("sandbox up --detach --replace", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded", select(2, F.sandbox_request(sock(2), "/")))
    assert.equal("added", select(2, F.sandbox_request(sock(2), "/", { method = "POST", body = "a bug's data" })))
    -- while a bug-fix phase is open, a redeploy keeps it
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.imports").insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    db:close()
    r = H.orket("sandbox up --detach --replace", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal('seeded,"a bug\'s data"', select(2, F.sandbox_request(sock(3), "/")))
    r = H.orket("sandbox logs 3", { cwd = dir })
    assert.matches("orket: starting db on port 8081 (the root)", r.stdout, 1, true)
    assert.matches("orket: db is healthy", r.stdout, 1, true)
    assert.equal(0, H.orket("sandbox stop 3", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("stops a PostgreSQL's start whose seed fails, saying why, nothing left running", function()
    if skip then return pending(skip) end
    if not require("orket.sandboxes.database").pg_bin() then
      return pending("skipped: PostgreSQL is not installed (scripts/deps.sh --test installs it)")
    end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["compose.yaml"] = "services:\n  db:\n    image: postgres:15\n    x-orket:\n      seed: seed.sql\n"
        .. "  web:\n    command: [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\n"
        .. "    depends_on: [db]\n",
      ["seed.sql"] = "CREATE TABLE t (v text);\nINSERT INTO nowhere VALUES (1);\n",
    }, mark)
    local r = H.orket("sandbox up", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("orket: db: its seed failed", r.stderr, 1, true)
    assert.matches('relation "nowhere" does not exist', r.stderr, 1, true)
    -- the sandbox's detail names the step that failed, as the script said it
    assert.matches(": db: its seed failed %(status %d+%)$",
      cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)[1].detail)
    assert.is_nil(r.stderr:find("orket: starting web", 1, true))
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("seeds again a kept PostgreSQL whose seed failed half-way, from a fresh cluster", function()
    if skip then return pending(skip) end
    local bin = require("orket.sandboxes.database").pg_bin()
    if not bin then return pending("skipped: PostgreSQL is not installed (scripts/deps.sh --test installs it)") end
    local mark = "svc" .. math.random(1, 1e9)
    -- the seed's first statements run, its third fails: the database holds half a seed
    local dir = project({
      ["compose.yaml"] = "services:\n  db:\n    image: postgres:15\n    x-orket:\n      seed: seed.sql\n"
        .. "  web:\n    command: [\"python3\", \"web.py\"]\n    depends_on: [db]\n",
      -- a role is the cluster's, not the database's: only a fresh cluster lets the seed make it again
      ["seed.sql"] = "CREATE ROLE reader;\nCREATE TABLE t (v text);\nINSERT INTO t VALUES ('half');\n"
        .. "INSERT INTO nowhere VALUES (1);\n",
      ["web.py"] = string.format([[
import http.server, os, subprocess
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        r = subprocess.run([%q, os.environ["DATABASE_URL"], "-XAtq", "-c", "SELECT string_agg(v, ',') FROM t"],
                           capture_output=True, text=True)
        self.send_response(200)
        self.end_headers()
        self.wfile.write((r.stdout.strip() + r.stderr).encode())
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]], bin .. "/psql"),
    }, mark)
    -- an open bug-fix phase: the failed start's cluster waits for the next start
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.imports").insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    db:close()
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("orket: db: its seed failed", r.stderr, 1, true)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- the seed fixed: the next start seeds it whole, not on top of the half
    H.write(dir .. "/workspace/seed.sql", "CREATE ROLE reader;\nCREATE TABLE t (v text);\nINSERT INTO t VALUES ('whole');\n")
    H.commit_main(dir, "the seed fixed")
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("whole", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/2/app.sock", "/")))
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("seeds again a kept SQLite database whose seed command failed half-way, from a fresh file", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    -- the seed command writes a row, then fails: the file holds half a seed
    local seed = [[
import os, sqlite3, sys
c = sqlite3.connect(os.environ["STORE_URL"][len("sqlite:///"):])
c.execute("CREATE TABLE t (v TEXT)")
c.execute("INSERT INTO t VALUES (?)", (sys.argv[1],))
c.commit()
sys.exit(1 if sys.argv[1] == "half" else 0)
]]
    local dir = project({
      ["compose.yaml"] = "services:\n  store:\n    x-orket: {database: sqlite, seed_command: [python3, seed.py, half]}\n"
        .. "  api:\n    build: api\n    depends_on: [store]\n",
      ["seed.py"] = seed,
      ["api/app.py"] = [[
import http.server, os, sqlite3
path = os.environ["STORE_URL"][len("sqlite:///"):]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        v = ",".join(r[0] for r in sqlite3.connect(path).execute("SELECT v FROM t"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(v.encode())
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]],
    }, mark)
    -- an open bug-fix phase: the failed start's file waits for the next start
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.imports").insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    db:close()
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    -- it failed for the reason meant: the seed command ran, and failed
    assert.matches("store: its seed command failed", r.stdout .. r.stderr, 1, true)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- the half-made file is not kept
    local kept = dir .. "/.orket/sandboxes/db.main"
    assert.is_nil(require("luv").fs_lstat(kept .. "/store.sqlite"))
    -- a marked file that is a link (the app's $TMPDIR held it) is removed as a link
    local outside = H.tmpdir() .. "/outside"
    H.write(outside, "not the sandbox's")
    assert(require("luv").fs_symlink(outside, kept .. "/store.sqlite"))
    H.write(kept .. "/store.orket-seed", "")
    -- the seed command fixed: the next start runs it whole, on a fresh file
    H.write(dir .. "/workspace/compose.yaml", H.read(dir .. "/workspace/compose.yaml"):gsub("half%]", "whole]"))
    H.commit_main(dir, "the seed fixed")
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("whole", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/2/app.sock", "/")))
    assert.equal("not the sandbox's", H.read(outside))
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("keeps a bug-fix phase's databases when the sandbox's owner is killed", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["compose.yaml"] = "services:\n  store:\n    x-orket: {database: sqlite, seed: seed.sql}\n"
        .. "  api:\n    build: api\n    depends_on: [store]\n",
      ["seed.sql"] = "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('seeded');\n",
      ["api/app.py"] = [[
import http.server, os, sqlite3
path = os.environ["STORE_URL"][len("sqlite:///"):]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        c = sqlite3.connect(path)
        if self.path == "/add":
            c.execute("INSERT INTO t VALUES ('a bug''s data')")
            c.commit()
        v = ",".join(r[0] for r in c.execute("SELECT v FROM t"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(v.encode())
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]],
    }, mark)
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.imports").insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    db:close()
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local owner = assert(tonumber(r.stdout:match("owner pid (%d+)")), r.stdout)
    assert.equal("seeded,a bug's data", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/1/app.sock", "/add")))
    -- the owner killed: the next look marks the sandbox exited and keeps its databases
    assert(require("luv").kill(owner, "sigkill"))
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    r = H.orket("sandbox list --all", { cwd = dir })
    assert.matches("its owner %(pid %d+%) ended", r.stdout)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,a bug's data", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/2/app.sock", "/")))
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  -- a store seeded with one row, and an api whose /add/NAME adds a row: the rows it lists
  -- say whose databases a sandbox runs on
  local function rows_project(mark)
    return project({
      ["compose.yaml"] = "services:\n  store:\n    x-orket: {database: sqlite, seed: seed.sql}\n"
        .. "  api:\n    build: api\n    depends_on: [store]\n",
      ["seed.sql"] = "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('seeded');\n",
      ["api/app.py"] = [[
import http.server, os, sqlite3
path = os.environ["STORE_URL"][len("sqlite:///"):]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        c = sqlite3.connect(path)
        if self.path.startswith("/add/"):
            c.execute("INSERT INTO t VALUES (?)", (self.path[5:],))
            c.commit()
        v = ",".join(r[0] for r in c.execute("SELECT v FROM t"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(v.encode())
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]],
    }, mark)
  end

  it("keeps no databases on disk for a sandbox torn down with no bug-fix phase open", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = rows_project(mark)
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,one", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/1/app.sock", "/add/one")))
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- nothing would take them again: they went with the sandbox's temp folder
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/db.main"))
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/1/tmp"))
    -- so does a killed owner's, found by the next look
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert(require("luv").kill(assert(tonumber(r.stdout:match("owner pid (%d+)")), r.stdout), "sigkill"))
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    assert.matches("its owner %(pid %d+%) ended", H.orket("sandbox list --all", { cwd = dir }).stdout)
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/db.main"))
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/2/tmp"))
  end)

  it("hands on the databases of a bug-fix phase's sandbox, not those of a second one of its target ended after it", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = rows_project(mark)
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.imports").insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    db:close()
    local function sock(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,first", select(2, F.sandbox_request(sock(1), "/add/first")))
    -- a second sandbox of the same target beside it: databases of its own
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,second", select(2, F.sandbox_request(sock(2), "/add/second")))
    -- the first ends, then the second: the second's databases go with it
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/2/tmp"))
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,first", select(2, F.sandbox_request(sock(3), "/")))
    -- a side sandbox whose owner is killed: the look that finds it removes its databases too
    local running = #procs(mark)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,fourth", select(2, F.sandbox_request(sock(4), "/add/fourth")))
    assert(require("luv").kill(assert(tonumber(r.stdout:match("owner pid (%d+)")), r.stdout), "sigkill"))
    H.wait_for(function() return #procs(mark) == running end, "only sandbox 3's services left running")
    assert.matches("its owner %(pid %d+%) ended", H.orket("sandbox list --all", { cwd = dir }).stdout)
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/4/tmp"))
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/db.main"))
    assert.equal(0, H.orket("sandbox stop 3", { cwd = dir }).status)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,first", select(2, F.sandbox_request(sock(5), "/")))
    assert.equal(0, H.orket("sandbox stop 5", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  -- a store with a bug-fix phase open (rock R's)
  local function open_phase(dir)
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.imports").insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    db:close()
  end

  it("hands on, in a bug-fix phase, the databases of a sandbox with no mark in its directory (one started before marks)",
    function()
    if skip then return pending(skip) end
    local uv = require "luv"
    local mark = "svc" .. math.random(1, 1e9)
    local dir = rows_project(mark)
    open_phase(dir)
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,kept", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/1/app.sock", "/add/kept")))
    -- as an older orket left it: no mark of either kind
    os.remove(dir .. "/.orket/sandboxes/1/keeps-databases")
    os.remove(dir .. "/.orket/sandboxes/1/side-databases")
    -- its owner killed, the next look reconciles it
    assert(uv.kill(assert(tonumber(r.stdout:match("owner pid (%d+)")), r.stdout), "sigkill"))
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    assert.matches("its owner %(pid %d+%) ended", H.orket("sandbox list --all", { cwd = dir }).stdout)
    assert.equal("directory", uv.fs_lstat(dir .. "/.orket/sandboxes/db.main").type)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,kept", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/2/app.sock", "/")))
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("fails a side sandbox's start when its mark cannot be written: its fresh data never replaces the phase's",
    function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = rows_project(mark)
    open_phase(dir)
    local function sock(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,line", select(2, F.sandbox_request(sock(1), "/add/line")))
    -- a second start beside it whose mark cannot be written (a full disk, say)
    local script = H.tmpdir() .. "/up.lua"
    H.write(script, string.format([=[
local service = require "orket.sandboxes.service"
service._mark_side = function() return nil, "No space left on device" end
os.exit(require("orket.cli").main({ "sandbox", "up", "-C", %q }))
]=], dir))
    r = H.orket("lua " .. H.quote(script), { cwd = dir, wrap = "timeout 60" })
    assert.is_true(r.status ~= 0 and r.status ~= 124, r.stdout .. r.stderr)
    assert.matches("could not be marked its own", r.stdout .. r.stderr, 1, true)
    local two
    for _, x in ipairs(cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)) do
      if x.id == 2 then two = x.status end
    end
    assert.equal("exited", two)
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,line", select(2, F.sandbox_request(sock(3), "/")))
    assert.equal(0, H.orket("sandbox stop 3", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("has a deploy wait past the stop's 5 s for the sandbox it replaces, and take the phase's data it hands on",
    function()
    if skip then return pending(skip) end
    local uv = require "luv"
    local mark = "svc" .. math.random(1, 1e9)
    local dir = rows_project(mark)
    open_phase(dir)
    local function sock(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,old", select(2, F.sandbox_request(sock(1), "/add/old")))
    -- its owner does not answer the deploy's stop for 7 s (stopped), longer than the stop waits
    local owner = assert(tonumber(r.stdout:match("owner pid (%d+)")), r.stdout)
    assert(uv.kill(owner, "sigstop"))
    os.execute("(sleep 7; kill -CONT " .. math.tointeger(owner) .. ") >/dev/null 2>&1 &")
    local t0 = uv.hrtime()
    r = H.orket("sandbox up --detach --replace", { cwd = dir })
    uv.kill(owner, "sigcont")
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.is_true((uv.hrtime() - t0) / 1e6 >= 6500)
    -- the old one ended before the deploy started: the deploy took its data, the phase's
    local ended
    for _, x in ipairs(cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)) do
      if x.id == 1 then ended = x.status end
    end
    assert.equal("stopped", ended)
    assert.equal("seeded,old,new", select(2, F.sandbox_request(sock(2), "/add/new")))
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,old,new", select(2, F.sandbox_request(sock(3), "/")))
    assert.equal(0, H.orket("sandbox stop 3", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  -- Ctrl-C went unheard while a deploy waited for the sandbox it replaces (up to 30 s):
  -- the deploy started once that one ended, and only then stopped. Each wait ends on it:
  -- the stop's own (5 s: SIGINT at 2 s) and the one after it (up to 25 s: SIGINT at 7 s).
  -- The owner is stopped longer than either, so a wait that missed the signal runs past the
  -- bound: the stop's on to the next wait's first look, at 5 s; the next one on to 20 s.
  local function deploy_interrupted(sigint_s, owner_stopped_s, bound_ms)
    local uv = require "luv"
    local mark = "svc" .. math.random(1, 1e9)
    local dir = rows_project(mark)
    open_phase(dir)
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local owner = assert(tonumber(r.stdout:match("owner pid (%d+)")), r.stdout)
    assert(uv.kill(owner, "sigstop"))
    finally(function() uv.kill(owner, "sigcont") end)
    local t0 = uv.hrtime()
    r = H.orket("sandbox up --replace", { cwd = dir, wrap = "timeout -s INT " .. sigint_s })
    local took = (uv.hrtime() - t0) / 1e6
    uv.kill(owner, "sigcont")
    assert.is_true(r.status ~= 0, r.stdout .. r.stderr)
    assert.is_true(took < bound_ms, string.format("the deploy ended %.0f ms after its start", took))
    assert.is_true(took < owner_stopped_s * 1000)
    assert.matches("the deploy stopped by SIGINT before it started (sandbox 1, which it replaces, was asked to stop)",
      r.stderr, 1, true)
    -- nothing started; sandbox 1 stops as asked
    H.wait_for(function()
      local rows = cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)
      return #rows == 1 and rows[1].status == "stopped"
    end, "sandbox 1 stopped, and no other")
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end

  it("ends a deploy's wait for the stop of the sandbox it replaces on SIGINT, starting nothing", function()
    if skip then return pending(skip) end
    deploy_interrupted(2, 10, 4000)
  end)

  it("ends a deploy's wait past that stop for the sandbox it replaces on SIGINT, starting nothing", function()
    if skip then return pending(skip) end
    deploy_interrupted(7, 20, 9500)
  end)

  -- Ctrl-C while a deploy waited for the deploy before it (deploy.lock, up to 120 s) was
  -- heard only once the lock came: the deploy then asked the live sandbox to stop and
  -- started nothing. Now it ends in the wait, and the live sandbox runs on.
  it("ends a deploy's wait for the deploy before it on SIGINT, leaving the live sandbox", function()
    if skip then return pending(skip) end
    local uv = require "luv"
    local lockfile = require "orket.c.lockfile"
    local mark = "svc" .. math.random(1, 1e9)
    local dir = rows_project(mark)
    open_phase(dir)
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local lk = assert(lockfile.acquire(dir .. "/.orket/sandboxes/deploy.lock"))
    finally(function() lk:release() end)
    local t0 = uv.hrtime()
    r = H.orket("sandbox up --replace", { cwd = dir, wrap = "timeout -s INT 1" })
    local took = (uv.hrtime() - t0) / 1e6
    lk:release()
    assert.is_true(r.status ~= 0, r.stdout .. r.stderr)
    assert.is_true(took < 2500, string.format("the deploy ended %.0f ms after its start", took))
    assert.matches("the deploy stopped by SIGINT before it started (it waited for the deploy before it; nothing "
      .. "was asked to stop)", r.stderr, 1, true)
    local rows = cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)
    assert.equal(1, #rows)
    assert.equal("healthy", rows[1].status)
    assert.equal("seeded", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/1/app.sock", "/")))
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  -- Ctrl-C between two sandboxes a deploy replaces was heard only in the wait for the
  -- second, once it had been asked to stop: both went, and nothing replaced them.
  it("asks no further sandbox to make way once a deploy is stopped by SIGINT between two", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = rows_project(mark)
    open_phase(dir)
    for _ = 1, 2 do
      local r = H.orket("sandbox up --detach", { cwd = dir })
      assert.equal(0, r.status, r.stdout .. r.stderr)
    end
    -- the deploy, in the foreground: once the first it replaces has ended, a SIGINT reaches it
    local script = H.tmpdir() .. "/deploy.lua"
    H.write(script, string.format([=[
local uv = require "luv"
local service = require "orket.sandboxes.service"
local stop, sent = service.stop, false
service.stop = function(...)
  local a, b, c = stop(...)
  if not sent then sent = true; uv.kill(uv.os_getpid(), "sigint") end
  return a, b, c
end
os.exit(require("orket.cli").main({ "sandbox", "up", "--replace", "-C", %q }))
]=], dir))
    local r = H.orket("lua " .. H.quote(script), { cwd = dir, wrap = "timeout 60" })
    assert.is_true(r.status ~= 0, r.stdout .. r.stderr)
    -- (the first asked, either of them) went; the other runs on
    local asked = tonumber(r.stderr:match("the deploy stopped by SIGINT before it started %(sandbox (%d), which it "
      .. "replaces, was asked to stop%)"))
    assert(asked, r.stderr)
    local other = 3 - asked
    H.wait_for(function()
      local status = {}
      for _, x in ipairs(cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)) do
        status[x.id] = x.status
      end
      return status[asked] == "stopped" and status[other] == "healthy" and status[3] == nil
    end, "the sandbox asked stopped, the other healthy, none started")
    assert.equal(0, H.orket("sandbox stop " .. other, { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  -- A deploy was never marked side: a start that slipped in while it waited for the
  -- sandbox it replaces took the data that one handed on (the line), and the deploy, having
  -- taken nothing, made fresh databases kept at its end as the line's too.
  it("marks a deploy side when a start beside it took the line while it waited", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = rows_project(mark)
    open_phase(dir)
    local function sock(id) return dir .. "/.orket/sandboxes/" .. id .. "/app.sock" end
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,line", select(2, F.sandbox_request(sock(1), "/add/line")))
    -- the deploy, in the foreground: once sandbox 1 has ended (its data handed on), a start
    -- of its own slips in (sandbox 2); the deploy (3) says whether it is marked, then stops
    local script = H.tmpdir() .. "/deploy.lua"
    H.write(script, string.format([=[
local service = require "orket.sandboxes.service"
local stop, up = service.stop, service.up
service.stop = function(...)
  local a, b, c = stop(...)
  os.execute(string.format("%%s sandbox up --detach -C %%s >/dev/null 2>&1", %q, %q))
  return a, b, c
end
service.up = function(o)
  local sb, err, code, tail, id = up(o)
  if sb then
    local f = io.open(sb.home .. "/" .. service.SIDE)
    io.stdout:write("deploy ", sb.id, f and " side" or " line", "\n")
    if f then f:close() end
    sb:stop("done")
  end
  return sb, err, code, tail, id
end
os.exit(require("orket.cli").main({ "sandbox", "up", "--replace", "-C", %q }))
]=], H.BIN, dir, dir))
    r = H.orket("lua " .. H.quote(script), { cwd = dir, wrap = "timeout 90" })
    assert.matches("deploy 3 side", r.stdout, 1, true)
    -- sandbox 2 holds the line: what it hands on is what the next start takes
    assert.equal("seeded,line,two", select(2, F.sandbox_request(sock(2), "/add/two")))
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("seeded,line,two", select(2, F.sandbox_request(sock(4), "/")))
    assert.equal(0, H.orket("sandbox stop 4", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("does not keep a SQLite database whose seed its killed owner left half-way", function()
    if skip then return pending(skip) end
    local uv = require "luv"
    local mark = "svc" .. math.random(1, 1e9)
    -- a seed whose first row is written long before its last
    local dir = project({
      ["compose.yaml"] = "services:\n  store:\n    x-orket: {database: sqlite, seed: seed.sql}\n"
        .. "  api:\n    build: api\n    depends_on: [store]\n",
      ["seed.sql"] = "CREATE TABLE t (v TEXT);\nINSERT INTO t VALUES ('first');\n"
        .. "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000) SELECT count(*) FROM c;\n"
        .. "INSERT INTO t VALUES ('last');\n",
      ["api/app.py"] = [[
import http.server, os, sqlite3
path = os.environ["STORE_URL"][len("sqlite:///"):]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        v = ",".join(r[0] for r in sqlite3.connect(path).execute("SELECT v FROM t"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(v.encode())
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]],
    }, mark)
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.imports").insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    db:close()
    local function seeds()
      local out = {}
      local it = uv.fs_scandir("/proc")
      while it do
        local name = uv.fs_scandir_next(it)
        if not name then break end
        local f = name:match("^%d+$") and io.open("/proc/" .. name .. "/cmdline", "rb")
        if f then
          local line = f:read("a") or ""
          f:close()
          if line:find("seed_child", 1, true) and line:find(dir, 1, true) then out[#out + 1] = math.tointeger(name) end
        end
      end
      return out
    end
    local h = assert(uv.spawn(H.BIN, { args = { "sandbox", "up", "--detach" }, cwd = dir }, function() end))
    local row = H.wait_for(function()
      for _, x in ipairs(H.sandboxes(dir)) do if x.status == "starting" then return x end end
    end, "the sandbox to be starting")
    local file = dir .. "/.orket/sandboxes/" .. math.tointeger(row.id) .. "/tmp/db/store.sqlite"
    H.wait_for(function() return #seeds() > 0 and uv.fs_stat(file) end, "the seed to be under way")
    orket.sleep(300)
    -- the owner killed during the seed: the next look must not keep the half-made file
    assert(uv.kill(math.tointeger(row.owner_pid), "sigkill"))
    H.wait_for(function() return not H.alive(math.tointeger(row.owner_pid)) end, "the owner to be gone", 500)
    h:close()
    -- the seed's process died with it (a parent-death signal), long before the seed's end
    H.wait_for(function() return #seeds() == 0 end, "the seed's process to die with its owner", 50)
    local r = H.orket("sandbox list --all", { cwd = dir })
    assert.matches("its owner %(pid %d+%) ended", r.stdout)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local sock = dir .. "/.orket/sandboxes/" .. math.tointeger(row.id + 1) .. "/app.sock"
    assert.equal("first,last", select(2, F.sandbox_request(sock, "/")))
    assert.equal(0, H.orket("sandbox stop " .. math.tointeger(row.id + 1), { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("does not keep a PostgreSQL cluster whose initdb its killed owner left half-way", function()
    if skip then return pending(skip) end
    local uv = require "luv"
    local bin = require("orket.sandboxes.database").pg_bin()
    if not bin then return pending("skipped: PostgreSQL is not installed (scripts/deps.sh --test installs it)") end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["compose.yaml"] = "services:\n  db:\n    image: postgres:15\n    x-orket:\n      seed: seed.sql\n"
        .. "  web:\n    command: [\"python3\", \"web.py\"]\n    depends_on: [db]\n",
      ["seed.sql"] = "CREATE TABLE t (v text);\nINSERT INTO t VALUES ('seeded');\n",
      ["web.py"] = string.format([[
import http.server, os, subprocess
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        r = subprocess.run([%q, os.environ["DATABASE_URL"], "-XAtq", "-c", "SELECT string_agg(v, ',') FROM t"],
                           capture_output=True, text=True)
        self.send_response(200)
        self.end_headers()
        self.wfile.write((r.stdout.strip() + r.stderr).encode())
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]], bin .. "/psql"),
    }, mark)
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.imports").insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    db:close()
    local h = assert(uv.spawn(H.BIN, { args = { "sandbox", "up", "--detach" }, cwd = dir }, function() end))
    local row = H.wait_for(function()
      for _, x in ipairs(H.sandboxes(dir)) do if x.status == "starting" then return x end end
    end, "the sandbox to be starting")
    local d = dir .. "/.orket/sandboxes/" .. math.tointeger(row.id) .. "/tmp/db/db"
    -- the owner killed as soon as initdb has begun writing the cluster
    H.wait_for(function() return uv.fs_stat(d .. ".new/PG_VERSION") or uv.fs_stat(d .. "/PG_VERSION") end,
      "initdb to be under way", 2000)
    assert(uv.kill(math.tointeger(row.owner_pid), "sigkill"))
    H.wait_for(function() return not H.alive(math.tointeger(row.owner_pid)) end, "the owner to be gone", 500)
    h:close()
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    local r = H.orket("sandbox list --all", { cwd = dir })
    assert.matches("its owner %(pid %d+%) ended", r.stdout)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local id = math.tointeger(row.id + 1)
    assert.equal("seeded", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/" .. id .. "/app.sock", "/")))
    assert.equal(0, H.orket("sandbox stop " .. id, { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("runs a job awaited with service_completed_successfully to its end first, and its failure stops the start", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["compose.yaml"] = "services:\n  store:\n    x-orket: {database: sqlite}\n"
        .. "  migrate:\n    command: [python3, migrate.py, ok]\n    depends_on: [store]\n"
        .. "  api:\n    build: api\n    depends_on:\n      migrate:\n        condition: service_completed_successfully\n",
      ["migrate.py"] = [[
import os, sqlite3, sys
c = sqlite3.connect(os.environ["STORE_URL"][len("sqlite:///"):])
c.execute("CREATE TABLE IF NOT EXISTS t (v TEXT)")
c.execute("INSERT INTO t VALUES ('migrated')")
c.commit()
print("migrated")
sys.exit(0 if sys.argv[1] == "ok" else 3)
]],
      ["api/app.py"] = [[
import http.server, os, sqlite3
path = os.environ["STORE_URL"][len("sqlite:///"):]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        v = ",".join(r[0] for r in sqlite3.connect(path).execute("SELECT v FROM t"))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(v.encode())
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]],
    }, mark)
    -- the job ended (status 0) before api started, and its end did not end the sandbox
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local sock = dir .. "/.orket/sandboxes/1/app.sock"
    assert.equal("migrated", select(2, F.sandbox_request(sock, "/")))
    orket.sleep(300)
    assert.equal("healthy", H.sandboxes(dir)[1].status)
    assert.equal("migrated", select(2, F.sandbox_request(sock, "/")))
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- a job that fails stops the start, saying which
    H.write(dir .. "/workspace/compose.yaml", H.read(dir .. "/workspace/compose.yaml"):gsub("migrate.py, ok%]", "migrate.py, no]"))
    H.commit_main(dir, "the job fails")
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("migrate: its run failed", r.stdout .. r.stderr, 1, true)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- a job that never ends: the start's time is up, saying the job had not ended (not that it was unhealthy)
    H.write(dir .. "/workspace/compose.yaml", H.read(dir .. "/workspace/compose.yaml"):gsub("%[python3, migrate.py, no%]",
      "[sleep, '60']"))
    H.commit_main(dir, "the job hangs")
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. "\nsandbox.health = { start_timeout_ms = 1500 }\n")
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("api was not started yet: migrate, a job run before it, had not ended yet", r.stdout .. r.stderr, 1, true)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("starts a kept PostgreSQL cluster whose postmaster.pid names a live process of the new namespace", function()
    if skip then return pending(skip) end
    local bin = require("orket.sandboxes.database").pg_bin()
    if not bin then return pending("skipped: PostgreSQL is not installed (scripts/deps.sh --test installs it)") end
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["compose.yaml"] = "services:\n  db:\n    image: postgres:15\n"
        .. "  web:\n    command: [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\n"
        .. "    depends_on: [db]\n",
    }, mark)
    local db = assert(require("orket.project").open_store(dir, false))
    require("orket.store.imports").insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    db:close()
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- what a killed server leaves: its lock file, its pid one that is alive in the next
    -- sandbox's PID namespace (1 always is)
    H.write(dir .. "/.orket/sandboxes/db.main/db/postmaster.pid", "1\n")
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
  end)

  it("makes a SQLite database from the repository's seed, and a failing seed stops the start", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local files = {
      ["compose.yaml"] = [[
services:
  store:
    x-orket:
      database: sqlite
      seed: seed.sql
  api:
    build: api
    depends_on: [store]
]],
      ["seed.sql"] = "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('from the seed');\n",
      ["api/app.py"] = [[
import http.server, os, sqlite3
path = os.environ["STORE_URL"][len("sqlite:///"):]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        v = sqlite3.connect(path).execute("SELECT v FROM t").fetchone()[0]
        self.send_response(200)
        self.end_headers()
        self.wfile.write((v + " " + os.environ["DATABASE_URL"][:10]).encode())
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]],
    }
    local dir = project(files, mark)
    -- the plan says what a SQLite database is: a file, no process and no pg_isready
    local r = H.orket("sandbox plan", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("  store\n    folder:   the root\n    command:  none: a file of Orket's own SQLite, no process\n"
      .. "    port:     8081\n    health:   none: its file is made (and seeded) before the services start\n", r.stdout, 1, true)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("from the seed sqlite:///", select(2, F.sandbox_request(dir .. "/.orket/sandboxes/1/app.sock", "/")))
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    files["seed.sql"] = "CREATE TABLE t (v TEXT); INSERT INTO nowhere VALUES (1);\n"
    dir = project(files, mark)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("sandbox: store: its seed seed.sql failed: ", r.stderr, 1, true)
    assert.matches("no such table: nowhere", r.stderr, 1, true)
    assert.same({}, procs(mark))
  end)

  it("keeps a bug-fix phase's databases when a seed fails", function()
    if skip then return pending(skip) end
    local uv = require "luv"
    local mark = "svc" .. math.random(1, 1e9)
    local dir = project({
      ["compose.yaml"] = "services:\n  store:\n    x-orket: {database: sqlite, seed: db/seed.sql}\n"
        .. "  api:\n    command: [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\n"
        .. "    depends_on: [store]\n",
      ["db/seed.sql"] = "INSERT INTO nowhere VALUES (1);\n",
    }, mark)
    -- an open bug-fix phase, and the databases its sandboxes keep
    local db = assert(require("orket.project").open_store(dir))
    assert(db:run("INSERT INTO cards (id, type, name, priority, created_at, updated_at) VALUES ('R', 'rock', 'Rock', 2, ?, ?)",
      "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"))
    assert(require("orket.store.bugfix").start(db, "R", 1, 0))
    db:close()
    local kept = dir .. "/.orket/sandboxes/db.main"
    os.execute("mkdir -p " .. H.quote(kept))
    H.write(kept .. "/other.sqlite", "the phase's data")
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("sandbox: store: its seed db/seed.sql failed: no such table: nowhere", r.stderr, 1, true)
    assert.equal("the phase's data", H.read(kept .. "/other.sqlite"))
    assert.is_nil(uv.fs_lstat(kept .. "/store.sqlite"))
    assert.same({}, procs(mark))
  end)

  it("kills a seed stuck in one SQL call when its sandbox is stopped, and its owner exits", function()
    if skip then return pending(skip) end
    local uv = require "luv"
    local mark = "svc" .. math.random(1, 1e9)
    -- one call of minutes: a single VM step, which neither SQLite's progress handler nor
    -- an interrupt reaches
    local dir = project({
      ["compose.yaml"] = "services:\n  store:\n    x-orket: {database: sqlite, seed: db/seed.sql}\n"
        .. "  api:\n    command: [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\n"
        .. "    depends_on: [store]\n",
      ["db/seed.sql"] = "SELECT instr(printf('%.*c', 2000000, 'a'), printf('%.*c', 1000000, 'a') || 'b');\n",
    }, mark)
    -- (H.alive: the detached owner is reparented on its exit, and a first process that does
    -- not reap leaves it a zombie, which kill(pid, 0) finds forever)
    local function alive(pid) return pid and H.alive(math.tointeger(pid)) end
    local function seed_pids()
      local out = {}
      local it = uv.fs_scandir("/proc")
      while it do
        local name = uv.fs_scandir_next(it)
        if not name then break end
        local f = name:match("^%d+$") and io.open("/proc/" .. name .. "/cmdline", "rb")
        if f then
          local line = f:read("a") or ""
          f:close()
          if line:find("seed_child", 1, true) and line:find(dir, 1, true) then out[#out + 1] = name end
        end
      end
      return out
    end
    local up
    local h = uv.spawn(H.BIN, { args = { "sandbox", "up", "--detach" }, cwd = dir }, function(code)
      up = code
    end)
    assert(h)
    local row = H.wait_for(function()
      for _, x in ipairs(H.sandboxes(dir)) do if x.status == "starting" then return x end end
    end, "the sandbox to be starting")
    H.wait_for(function() return #seed_pids() > 0 end, "the seed's process")
    orket.sleep(300)
    local t0 = uv.now()
    local r = H.orket("sandbox stop " .. math.tointeger(row.id), { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    H.wait_for(function() return up end, "the start to answer", 500)
    h:close()
    assert.equal(1, up)
    H.wait_for(function() return not alive(row.owner_pid) end, "the owner to exit", 500)
    H.wait_for(function() return #seed_pids() == 0 end, "the seed's process to be gone", 500)
    assert.is_true(uv.now() - t0 < 5000, tostring(uv.now() - t0))
    assert.same({}, procs(mark))
  end)

  it("keeps a SQLite seed to its own file, and a seed that never ends stops neither the server nor a stop", function()
    if skip then return pending(skip) end
    local mark = "svc" .. math.random(1, 1e9)
    local files = {
      ["compose.yaml"] = "services:\n  store:\n    x-orket: {database: sqlite, seed: db/seed.sql}\n"
        .. "  api:\n    command: [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\n"
        .. "    depends_on: [store]\n",
      ["db/seed.sql"] = "SELECT 1;\n",
    }
    -- the seed names the project's store by its absolute path
    local dir = project(files, mark)
    files["db/seed.sql"] = string.format("ATTACH DATABASE '%s/.orket/orket.db' AS host;\nCREATE TABLE host.planted (x);\n"
      .. "VACUUM INTO '%s/vacuumed.db';\n", dir, dir)
    H.write(dir .. "/workspace/db/seed.sql", files["db/seed.sql"])
    H.commit_main(dir, "a seed that reaches out")
    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("sandbox: store: its seed db/seed.sql failed: ATTACH and VACUUM are not allowed in a seed: it "
      .. "reaches only its own database", r.stderr, 1, true)
    assert.is_nil(io.open(dir .. "/vacuumed.db"))
    assert.is_nil(H.store_file_holding(dir, "planted"))
    -- a seed that never ends: the server goes on answering, and a stop ends the start
    H.write(dir .. "/workspace/db/seed.sql",
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;\n")
    H.commit_main(dir, "a seed that never ends")
    local op = H.api_key(dir, "op", "operator")
    local s = H.serve(dir)
    local posted
    local t = orket.spawn(function() posted = { H.api(s, "POST", "/v1/sandboxes", op, {}) } end)
    local row = H.wait_for(function()
      for _, x in ipairs(H.sandboxes(dir)) do if x.status == "starting" then return x end end
    end, "the sandbox to be starting")
    orket.sleep(500) -- the seed runs
    local t0 = require("luv").now()
    local hst = H.fetch { url = s.url .. "/health", total_timeout_ms = 3000 }
    assert.equal(200, hst)
    assert.is_true(require("luv").now() - t0 < 2000)
    r = H.orket("sandbox stop " .. math.tointeger(row.id), { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    H.wait_for(function() return posted end, "the start to answer")
    t:join()
    assert.is_true(posted[1] >= 400, tostring(posted[3]))
    assert.matches("before it was healthy", posted[3], 1, true)
    assert.equal(0, s.stop())
    local rows = cjson.decode(H.orket("sandbox list --all --json", { cwd = dir }).stdout)
    local ended
    for _, x in ipairs(rows) do if x.id == row.id then ended = x end end
    assert.equal("stopped", ended.status)
    -- no bug-fix phase is open: no one would take its databases, so none wait on disk
    -- (the seed's own file is gone either way)
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/db.main"))
    assert.is_nil(io.open(dir .. "/.orket/sandboxes/db.main/store.sqlite"))
    assert.same({}, procs(mark))
  end)
end)
