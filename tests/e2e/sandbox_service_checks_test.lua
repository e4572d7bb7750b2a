-- Acceptance checks per service: a sandbox of a backend/ and a frontend/ relays each
-- service on a socket of its own (app.sock for the entry, app.sock.PORT for the others), and
-- an issue's checks that name a service (`service = "backend"`) run against that service;
-- one naming a service the sandbox does not run fails, naming the card, check and service.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local backends = require "tests.backends"

-- /api answers with the mark; anything else is 404
local BACKEND = [[
import http.server, json, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/api":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"no such thing")
            return
        body = json.dumps({"from": "backend", "mark": os.environ["MARK"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        print("backend got", self.path, flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]]

local FRONTEND = [[
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"the frontend")
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
]]

local function offered() return H.sandbox_offered("python3") end

local procs = F.marked_procs

describe("acceptance checks per service", function()
  local skip
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or python3 is missing" end
  end)
  local dir
  after_each(function()
    if dir then H.orket("sandbox stop 1", { cwd = dir }) end
    dir = nil
    H.cleanup()
  end)

  it("runs a check against the service it names, on that service's own socket", function()
    if skip then return pending(skip) end
    local mark = "svcchk" .. math.random(1, 1e9)
    dir = H.tmpdir() .. "/p"
    assert.equal(0, H.orket("init " .. H.quote(dir)).status)
    os.execute("mkdir -p " .. H.quote(dir .. "/workspace/backend") .. " " .. H.quote(dir .. "/workspace/frontend"))
    H.write(dir .. "/workspace/backend/app.py", BACKEND)
    H.write(dir .. "/workspace/frontend/app.py", FRONTEND)
    H.commit_main(dir, "the app")
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format("\nsandbox = { env = { MARK = %q } }\n", mark))
    H.write(dir .. "/epics/web.json", cjson.encode { id = "WEB", name = "web", issues = {
      { id = "WEB-1", summary = "the API", sandbox_checks = {
        { http = { service = "backend", path = "/api", status = 200, json = { mark = mark } } },
        { http = { name = "the page", path = "/", contains = "the frontend" } } } },
      { id = "WEB-2", summary = "a wrong path", sandbox_checks = {
        { http = { service = "backend", path = "/nope", status = 200 } } } },
      { id = "WEB-3", summary = "no such service", sandbox_checks = {
        { http = { name = "the db", service = "db", path = "/" } } } } } })
    backends.project(dir)
    local r = H.orket("import", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    -- the backend's own socket, beside the sandbox's
    local status, body = F.sandbox_request(dir .. "/.orket/sandboxes/1/app.sock.8081", "/api")
    assert.equal(200, status, body)
    assert.matches(mark, body, 1, true)
    status, body = F.sandbox_request(dir .. "/.orket/sandboxes/1/app.sock", "/")
    assert.equal(200, status, body)
    assert.equal("the frontend", body)
    -- a check naming the backend passes against it; the unnamed one is the entry's
    r = H.orket("sandbox check --card WEB-1 --json", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local doc = cjson.decode(r.stdout)
    assert.is_true(doc.cards[1].results[1].ok, doc.cards[1].results[1].detail)
    assert.is_true(doc.cards[1].results[2].ok, doc.cards[1].results[2].detail)
    -- a wrong path on the backend fails, with the backend's answer
    r = H.orket("sandbox check --card WEB-2", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    -- (the check's line names the service it ran against)
    assert.matches("FAIL backend: GET /nope: GET /nope: HTTP 404, expected 200", r.stdout, 1, true)
    assert.matches("backend got /nope", r.stdout, 1, true)
    -- a service the sandbox does not run: refused, naming the card, the check and the service
    r = H.orket("sandbox check --card WEB-3", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches('card WEB-3: check 1 (the db) names the service "db", which sandbox 1 does not run '
      .. "(its services: backend, frontend)", r.stdout, 1, true)
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #procs(mark) == 0 end, "no service left running")
    -- the services' sockets go with the sandbox
    assert.is_nil(io.open(dir .. "/.orket/sandboxes/1/app.sock.8081", "r"))
    dir = nil
  end)

  it("refuses a check's service that is not a name, naming the field", function()
    if skip then return pending(skip) end
    dir = H.tmpdir() .. "/q"
    assert.equal(0, H.orket("init " .. H.quote(dir)).status)
    H.write(dir .. "/epics/bad.json", '{ "id": "BAD", "name": "bad", "issues": [ { "id": "BAD-1", "summary": "x",\n'
      .. '    "sandbox_checks": [ { "http": { "path": "/", "service": "../x" } } ] } ] }\n')
    local r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("epics/bad.json:2: issues[0].sandbox_checks[0].http.service: must be a service's name", r.stdout .. r.stderr, 1, true)
    dir = nil
  end)
end)
