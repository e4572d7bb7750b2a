-- A compose file written for Compose names the port in a list command as "${PORT}": run in
-- a sandbox, each service gets its own port (and the others' addresses) there, as the
-- string form's shell gives them. It was passed on as the letters ${PORT}, and the app
-- failed to start (int("${PORT}")).
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local backends = require "tests.backends"

-- each listens on the port its arguments name, never reading $PORT itself
local BACKEND = [[
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"backend on " + sys.argv[1].encode())
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
]]
local FRONTEND = [[
import http.server, sys, urllib.request
api = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with urllib.request.urlopen(api) as r:
            body = ("front on " + sys.argv[1] + " sees " + r.read().decode() + " " + sys.argv[3]).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
]]

describe("a sandbox from a compose file", function()
  local skip
  setup(function()
    if not H.sandbox_offered("python3") then skip = "the kernel offers no network namespace here, or python3 is missing" end
  end)
  after_each(H.cleanup)

  it("fills ${PORT}, $PORT and ${BACKEND_URL} in list commands with each service's own, $$ as one $", function()
    if skip then return pending(skip) end
    local mark = "pv" .. math.random(1, 1e9)
    local dir = H.tmpdir() .. "/p"
    local r = H.orket("init " .. H.quote(dir))
    assert.equal(0, r.status, r.stderr)
    local files = {
      ["compose.yaml"] = "services:\n"
        .. "  backend:\n    build: api..v2\n    command: [python3, app.py, '$PORT']\n"
        .. "  web:\n    command: [python3, web.py, '${PORT}', '${BACKEND_URL}/x', '$$PORT']\n"
        .. "    depends_on: [backend]\n    ports: ['8080:8080']\n",
      ["api..v2/app.py"] = BACKEND,
      ["web.py"] = FRONTEND,
    }
    for name, text in pairs(files) do
      os.execute("mkdir -p " .. H.quote(dir .. "/workspace/" .. (name:match("^(.*)/") or ".")))
      H.write(dir .. "/workspace/" .. name, text)
    end
    H.commit_main(dir, "the app")
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format("\nsandbox = { env = { MARK = %q } }\n", mark))
    backends.project(dir)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local status, body = F.sandbox_request(dir .. "/.orket/sandboxes/1/app.sock", "/")
    assert.equal(200, status, body)
    assert.equal("front on 8080 sees backend on 8081 $PORT", body)
    -- the list names each command as the compose file wrote it
    local rows = cjson.decode(H.orket("sandbox list --json", { cwd = dir }).stdout)
    assert.same({ "backend:8081=python3 app.py $PORT", "web:8080=python3 web.py ${PORT} ${BACKEND_URL}/x $PORT" },
      rows[1].command)
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    H.wait_for(function() return #F.marked_procs(mark) == 0 end, "no service left running")
  end)
end)
