-- Acceptance by use: an issue's sandbox_checks against its live sandbox, a tiny Python
-- (standard library) app in a project. HTTP checks through the sandbox's socket (status,
-- JSON fields, contains, a POST with a JSON body), browser checks in a headless Chromium
-- (an element appears with its text, a screenshot kept; a console error fails), a deploy
-- after a merge whose failing checks go back to the card with the log, and the agents'
-- sandbox_status and http_request tools. The process table holds no browser afterwards.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local uv = require "luv"
local cjson = require "cjson"
local backends = require "tests.backends"
local proc = require "orket.c.proc"
local accept = require "orket.sandboxes.accept"

local APP = [[
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NOTES = [{"title": "first"}]
PAGE = """<!doctype html><html><head><title>notes</title></head><body><ul id="notes"></ul>
<script>
fetch('/notes').then(r => r.json()).then(d => {
  const ul = document.getElementById('notes');
  for (const n of d.items) { const li = document.createElement('li'); li.textContent = n.title; ul.appendChild(li); }
});
</script></body></html>"""
BROKEN = """<!doctype html><html><body><div id="x">x</div><script>undefinedThing();</script></body></html>"""
ESCAPE = """<!doctype html><html><body><div id="reach"></div><script>
const port = new URLSearchParams(location.search).get('port');
fetch('http://127.0.0.1:' + port + '/from-the-page', {mode: 'no-cors'}).then(() => 'reached', () => 'blocked')
  .then(t => { document.getElementById('reach').textContent = t; });
</script></body></html>"""

class H(BaseHTTPRequestHandler):
    def send(self, code, body, ctype="application/json"):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        print("GET", self.path, "MARK", flush=True)
        if self.path == "/health": return self.send(200, "ok", "text/plain")
        if self.path == "/notes": return self.send(200, json.dumps({"items": NOTES, "count": len(NOTES)}))
        if self.path == "/": return self.send(200, PAGE, "text/html")
        if self.path == "/broken": return self.send(200, BROKEN, "text/html")
        if self.path.startswith("/escape?"): return self.send(200, ESCAPE, "text/html")
        if self.path == "/login":
            b = b"<p id=in>signed in</p><script>localStorage.setItem('sid', 'alice')</script>"
            self.send_response(200); self.send_header("Set-Cookie", "sid=alice; Path=/")
            self.send_header("Content-Type", "text/html"); self.send_header("Content-Length", str(len(b)))
            self.end_headers(); self.wfile.write(b); return
        if self.path == "/who":
            if "sid=" in (self.headers.get("Cookie") or ""): return self.send(200, "<p id=member>welcome back</p>", "text/html")
            return self.send(200, "<div id=who></div><script>document.getElementById('who').innerHTML = "
                             "localStorage.getItem('sid') ? '<p id=stored>stored</p>' : '<p id=anon>sign in</p>'</script>", "text/html")
        if self.path == "/big": return self.send(200, "y" * (3 * 1024 * 1024), "text/plain")
        if self.path == "/agent": return self.send(200, json.dumps({"hello": self.headers.get("X-Agent")}))
        self.send(404, json.dumps({"error": "not found"}))
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        doc = json.loads(self.rfile.read(n) or b"{}")
        NOTES.append({"title": doc.get("title")})
        print("POST", self.path, doc.get("title"), "MARK", flush=True)
        self.send(201, json.dumps({"ok": True, "title": doc.get("title"), "n": len(NOTES),
                                   "type": self.headers.get("Content-Type")}))
    def log_message(self, *a): pass

ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), H).serve_forever()
]]

local SANDBOX = [[
sandbox = { command = { "python3", "app.py", "%s" }, %s
  health = { http = "/health", interval_ms = 200, timeout_ms = 1000, failures = 2, start_timeout_ms = 15000 } }
]]

local function offered()
  local p = proc.probe()
  return p.netns and p.userns and os.execute("command -v python3 >/dev/null 2>&1")
end

local function mark() return "acc" .. math.random(1, 1e9) end

-- the processes whose command line holds mark (the app, the runner's helper), or any
-- browser or driver
local function procs(pattern)
  local out = {}
  local p = io.popen("ps -eo pid=,stat=,args=")
  for line in p:lines() do
    if line:find(pattern) and not line:find("ps -eo", 1, true) and not line:match("^%s*%d+%s+Z") then
      out[#out + 1] = line
    end
  end
  p:close()
  return out
end
-- the browsers and drivers of a test's checks: their profiles are made under the TMPDIR
-- the test gives `orket sandbox check`, and another test's browsers may run meanwhile
local function browsers(tmp)
  return procs(tmp:gsub("%p", "%%%0") .. "/orket%-chromium%-")
end

-- The projects of the running test: whatever sandbox they still have is stopped after it,
-- a failed assertion included (a sandbox's owner runs in the background and would outlive
-- the test's temp dir).
local projects = {}
local function stop_all()
  for _, dir in ipairs(projects) do
    local r = H.orket("sandbox list --json", { cwd = dir })
    for _, row in ipairs(r.status == 0 and cjson.decode(r.stdout) or {}) do
      H.orket("sandbox stop " .. math.tointeger(row.id), { cwd = dir })
    end
  end
  projects = {}
  H.cleanup()
end

local function project(m, epic, more)
  local dir = H.tmpdir() .. "/p"
  projects[#projects + 1] = dir
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  H.write(dir .. "/workspace/app.py", (APP:gsub("MARK", m)))
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. SANDBOX:format(m, more or ""))
  H.write(dir .. "/epics/web.json", cjson.encode(epic))
  backends.project(dir)
  local imp = H.orket("import", { cwd = dir })
  assert.equal(0, imp.status, imp.stderr)
  return dir
end

local function up(dir)
  local r = H.orket("sandbox up --detach", { cwd = dir })
  assert.equal(0, r.status, r.stdout .. r.stderr)
  return math.tointeger(tonumber(r.stdout:match("sandbox (%d+) is healthy")))
end

local function stop(dir, id, m)
  assert.equal(0, H.orket("sandbox stop " .. id, { cwd = dir }).status)
  H.wait_for(function() return #procs(m) == 0 end, "nothing of the sandbox left running")
end

local function events(dir, card, kind)
  local out = {}
  for _, ev in ipairs(H.card_json(dir, card).history) do
    if ev.kind == kind then out[#out + 1] = ev end
  end
  return out
end

describe("orket sandbox check", function()
  local skip
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or python3 is missing" end
  end)
  after_each(stop_all)

  it("runs HTTP checks through the sandbox's socket: passing, and failing with the log's tail", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = project(m, { id = "WEB", name = "web", issues = {
      { id = "WEB-1", summary = "notes", sandbox_checks = {
        { http = { path = "/notes", status = 200, json = { ["items.0.title"] = "first", count = 1 } } },
        { http = { method = "POST", path = "/notes", body = { title = "second" }, status = 201,
          json = { title = "second", n = 2, type = "application/json" }, contains = '"ok": true' } },
        { http = { name = "two notes", path = "/notes", json = { ["items.1.title"] = "second" } } } } },
      { id = "WEB-2", summary = "missing", sandbox_checks = {
        { http = { path = "/missing", status = 200 } },
        { http = { path = "/big", timeout_ms = 5000 } } } } } })
    local id = up(dir)
    local r = H.orket("sandbox check --card WEB-1 --json", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local doc = cjson.decode(r.stdout)
    assert.is_true(doc.ok)
    assert.equal(id, doc.sandbox)
    local res = doc.cards[1].results
    assert.equal(3, #res)
    for _, x in ipairs(res) do assert.is_true(x.ok, x.detail) end
    assert.equal(201, res[2].status)
    assert.equal("two notes", res[3].name)
    -- the failing card: status mismatch, the answer's cap; the log's last lines come along
    r = H.orket("sandbox check " .. id .. " --card WEB-2", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("FAIL GET /missing: GET /missing: HTTP 404, expected 200; the answer: {\"error\": \"not found\"}",
      r.stdout, 1, true)
    assert.matches("FAIL GET /big: GET /big: the answer is larger than 1048576 bytes", r.stdout, 1, true)
    assert.matches("the sandbox's last log lines:\n", r.stdout, 1, true)
    assert.matches("GET /missing " .. m, r.stdout, 1, true)
    -- journaled on the card; nothing moved (a check by hand reports only)
    local ev = events(dir, "WEB-2", "sandbox_check")
    assert.equal(1, #ev)
    assert.is_false(ev[1].data.passed)
    assert.equal("recorded", ev[1].data.outcome)
    assert.matches("GET /missing", ev[1].data.log, 1, true)
    assert.equal("ready", H.card_json(dir, "WEB-2").card.status)
    assert.matches("sandbox checks FAILED on sandbox " .. id .. ": GET /missing, GET /big",
      H.orket("card WEB-2", { cwd = dir }).stdout, 1, true)
    -- every card with checks, by default (WEB-1's POST made a third note: its count fails
    -- now); and what cannot be checked says so
    r = H.orket("sandbox check", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("WEB-1 (sandbox " .. id .. "): FAILED", r.stdout, 1, true)
    assert.matches("n is 3, expected 2", r.stdout, 1, true)
    assert.matches("WEB-2 (sandbox " .. id .. "): FAILED", r.stdout, 1, true)
    r = H.orket("sandbox check --card WEB", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("WEB has no sandbox_checks", r.stderr, 1, true)
    stop(dir, id, m)
    r = H.orket("sandbox check " .. id, { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("sandbox " .. id .. " is stopped, not live", r.stderr, 1, true)
    -- a wrong check is named with its file, line and field before anything runs
    H.write(dir .. "/epics/bad.json", '{ "id": "BAD", "name": "bad", "issues": [\n'
      .. '  { "id": "BAD-1", "summary": "x",\n'
      .. '    "sandbox_checks": [ { "http": { "path": "/", "status": 42 } } ] } ] }\n')
    r = H.orket("validate", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("epics/bad.json:3: issues[0].sandbox_checks[0].http.status: must be an HTTP status between 100 and 599",
      r.stdout .. r.stderr, 1, true)
  end)

  it("checks pages in one headless Chromium for every card: an element with its text and a screenshot, a console error fails, the host's loopback out of reach", function()
    if skip then return pending(skip) end
    if not accept.browser_available() then return pending("skipped: " .. select(2, accept.browser_available())) end
    -- a server on the host's loopback that logs every request it gets
    local l = uv.new_tcp()
    l:bind("127.0.0.1", 0)
    local port = l:getsockname().port
    l:close()
    local hostdir = H.tmpdir()
    os.execute(string.format("cd %s && { python3 -m http.server %d --bind 127.0.0.1 >host.log 2>&1 & echo $! >host.pid; }",
      H.quote(hostdir), port))
    local host_pid = H.wait_for(function() return tonumber(H.read(hostdir .. "/host.pid") or "") end, "the host server's pid")
    finally(function() os.execute("kill " .. host_pid .. " 2>/dev/null") end)
    H.wait_for(function()
      local c = io.popen("python3 -c \"import socket; socket.create_connection(('127.0.0.1', " .. port .. "), 1)\" 2>&1 && echo up")
      local said = c:read("a")
      c:close()
      return said:find("up", 1, true)
    end, "the host server to listen")
    local m = mark()
    local dir = project(m, { id = "WEB", name = "web", issues = {
      { id = "WEB-1", summary = "page", sandbox_checks = {
        { browser = { path = "/", selector = "#notes li", text = "first", timeout_ms = 10000 } } } },
      { id = "WEB-2", summary = "broken page", sandbox_checks = {
        { browser = { path = "/broken", selector = "#x" } },
        { browser = { name = "never", path = "/", selector = "#nothing-like-it", timeout_ms = 3000, screenshot = false } },
        -- a selector no browser reads: said so, not "no element matches" after the whole wait
        { browser = { name = "unreadable", path = "/", selector = "!!!bad[[", timeout_ms = 3000, screenshot = false } } } },
      { id = "WEB-3", summary = "escape", sandbox_checks = {
        { browser = { path = "/escape?port=" .. port, selector = "#reach", text = "blocked", console_errors = true,
          timeout_ms = 10000, screenshot = false } } } } } })
    local id = up(dir)
    local tmp = H.tmpdir()
    os.execute("chmod 0711 " .. H.quote(tmp)) -- as root, the browser (nobody) reaches its profile here
    -- every card with checks in one run: their browser checks share one browser
    local r = H.orket("sandbox check --json", { cwd = dir, env = { TMPDIR = tmp } })
    assert.equal(1, r.status, r.stdout .. r.stderr) -- WEB-2 fails
    local cards = {}
    for _, c in ipairs(cjson.decode(r.stdout).cards) do cards[c.card] = c end
    assert.is_true(cards["WEB-1"].ok)
    local x = cards["WEB-1"].results[1]
    assert.is_true(x.ok, x.detail)
    assert.equal("browser", x.kind)
    assert.matches("#notes li shown with \"first\"", x.detail, 1, true)
    local png = H.read(x.screenshot)
    assert.truthy(png and #png > 100, "the screenshot " .. tostring(x.screenshot))
    assert.equal("\137PNG\r\n\26\n", png:sub(1, 8))
    assert.matches("/.orket/sandboxes/" .. id .. "/checks/", x.screenshot, 1, true)
    assert.is_false(cards["WEB-2"].ok)
    local res = cards["WEB-2"].results
    assert.is_false(res[1].ok)
    assert.matches("1 console error: .*undefinedThing is not defined", res[1].detail)
    assert.matches("undefinedThing", res[1].console[1], 1, true)
    assert.is_false(res[2].ok)
    assert.matches("no element matches #nothing-like-it within 3000 ms", res[2].detail, 1, true)
    assert.equal(cjson.null, res[2].screenshot)
    assert.is_false(res[3].ok)
    assert.matches("browser /: !!!bad[[ is no CSS selector the browser can read (", res[3].detail, 1, true)
    -- the page is kept inside its own network: the host's loopback is out of its reach (and
    -- the console error WEB-2's page logged before is not WEB-3's)
    x = cards["WEB-3"].results[1]
    assert.is_true(x.ok, x.detail)
    assert.matches("#reach shown with \"blocked\"", x.detail, 1, true)
    assert.is_nil((H.read(hostdir .. "/host.log") or ""):find("from-the-page", 1, true), H.read(hostdir .. "/host.log"))
    -- the browser, its driver and the relay ended with the check
    assert.same({}, browsers(tmp)) -- the browsers' profiles and the drivers' logs were there
    assert.same({}, procs("chromedriver .*" .. tmp:gsub("%p", "%%%0")))
    stop(dir, id, m)
  end)

  -- One browser serves every card of a run, but each card's checks start with no cookies and
  -- no storage: a card that signs in changed another card's "a new visitor is asked to sign
  -- in"; and two cards' checks of one name and place wrote one screenshot
  it("starts each card's browser checks with no cookies or storage, each card's screenshot its own", function()
    if skip then return pending(skip) end
    if not accept.browser_available() then return pending("skipped: " .. select(2, accept.browser_available())) end
    local m = mark()
    local dir = project(m, { id = "WEBX", name = "web", issues = {
      { id = "WEBX-1", summary = "Sign in", sandbox_checks = {
        { browser = { path = "/login", selector = "#in", name = "page", timeout_ms = 10000 } },
        -- within one card the sign-in holds
        { browser = { path = "/who", selector = "#member", name = "after", timeout_ms = 10000 } } } },
      { id = "WEBX-2", summary = "A new visitor is asked to sign in", sandbox_checks = {
        { browser = { path = "/who", selector = "#anon", name = "page", timeout_ms = 5000 } } } } } })
    local id = up(dir)
    local tmp = H.tmpdir()
    os.execute("chmod 0711 " .. H.quote(tmp))
    local r = H.orket("sandbox check --json", { cwd = dir, env = { TMPDIR = tmp } })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local cards = {}
    for _, c in ipairs(cjson.decode(r.stdout).cards) do cards[c.card] = c end
    assert.is_true(cards["WEBX-1"].results[2].ok, cards["WEBX-1"].results[2].detail)
    local x = cards["WEBX-2"].results[1]
    assert.is_true(x.ok, x.detail)
    local one = cards["WEBX-1"].results[1].screenshot
    assert.matches("/checks/WEBX%-1%-1%-page%.png$", one)
    assert.matches("/checks/WEBX%-2%-1%-page%.png$", x.screenshot)
    assert.truthy(H.read(one) and H.read(x.screenshot))
    assert.same({}, browsers(tmp))
    stop(dir, id, m)
  end)

  it("leaves no browser behind a check killed at once", function()
    if skip then return pending(skip) end
    if not accept.browser_available() then return pending("skipped: " .. select(2, accept.browser_available())) end
    local m = mark()
    local dir = project(m, { id = "WEB", name = "web", issues = {
      { id = "WEB-2", summary = "broken page", sandbox_checks = {
        { browser = { path = "/broken", selector = "#x" } },
        { browser = { name = "never", path = "/", selector = "#nothing-like-it", timeout_ms = 3000, screenshot = false } } } } } })
    local id = up(dir)
    -- `orket sandbox check` killed at once (kill -9) in the middle of a browser check: its
    -- driver and browser end with it, nothing is left
    local tmp2 = H.tmpdir()
    os.execute("chmod 0711 " .. H.quote(tmp2))
    os.execute(string.format("cd %s && { TMPDIR=%s %s sandbox check --card WEB-2 >/dev/null 2>&1 & echo $! >check.pid; } "
      .. ">/dev/null 2>&1", H.quote(dir), H.quote(tmp2), H.quote(H.BIN)))
    local pid = H.wait_for(function() return tonumber(H.read(dir .. "/check.pid") or "") end, "the check's pid")
    H.wait_for(function() return #browsers(tmp2) > 0 end, "the check's browser to start", 600)
    os.execute("kill -KILL " .. pid)
    H.wait_for(function() return #browsers(tmp2) == 0 end, "the browser to end with the killed check: "
      .. table.concat(browsers(tmp2), " | "), 600)
    assert.same({}, procs("chromedriver .*" .. tmp2:gsub("%p", "%%%0")))
    stop(dir, id, m)
  end)
end)

describe("a deploy's acceptance checks", function()
  local skip, fake
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or python3 is missing" end
    fake = require("tests.fake_server").start()
  end)
  teardown(function()
    if fake then fake.stop() end
  end)
  after_each(stop_all)

  it("run once the merged card's sandbox is healthy; a failure goes back to it with the log", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = H.tmpdir() .. "/p"
    projects[#projects + 1] = dir
    F.appender(dir, fake.url, "deploy")
    H.write(dir .. "/workspace/app.py", (APP:gsub("MARK", m)))
    H.write(dir .. "/epics/d.json", cjson.encode { id = "D", name = "Deploy", issues = {
      { id = "D-1", summary = "Notes", seat = "senior_developer", sandbox_checks = {
        { http = { path = "/notes", json = { ["items.0.title"] = "first" } } },
        { http = { path = "/notes/7", status = 200 } } } },
      -- keeps the epic open, so the follow-up can be filed in it (not run: the run is D-1's)
      { id = "D-2", summary = "Later", seat = "senior_developer", depends_on = { "D-1" } } } })
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. SANDBOX:format(m, 'deploy = "merge",'))
    backends.project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("run D-1", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    -- the owner of the deploy runs D-1's checks once its sandbox is healthy
    local ev = H.wait_for(function() return events(dir, "D-1", "sandbox_check")[1] end, "D-1's checks", 3000)
    local d = ev.data
    assert.is_false(d.passed)
    assert.is_true(d.results[1].ok, d.results[1].detail)
    assert.is_false(d.results[2].ok)
    assert.equal("GET /notes/7: HTTP 404, expected 200; the answer: {\"error\": \"not found\"}", d.results[2].detail)
    assert.matches("GET /notes/7 " .. m, d.log, 1, true)
    assert.equal("followup", d.outcome, tostring(d.why))
    -- D-1 is done (final): the failure is said on it and filed as a follow-up in its epic,
    -- with the checks' output, the log's last lines and the same checks
    local c = H.card_json(dir, "D-1")
    assert.equal("done", c.card.status)
    local said = c.comments[#c.comments].body
    assert.matches("acceptance checks failed", said, 1, true)
    assert.matches("FAIL GET /notes/7", said, 1, true)
    assert.matches("The sandbox's last log lines:", said, 1, true)
    local f = H.card_json(dir, d.followup)
    assert.equal("Sandbox checks fail for D-1", f.card.summary)
    assert.equal("D", f.card.parent)
    assert.matches("GET /notes/7 " .. m, f.card.description, 1, true)
    local sv = require "orket.store.verifications"
    -- the run's transcript shows the checks
    local lg = H.orket("log", { cwd = dir })
    assert.matches("** D-1 sandbox checks FAILED on sandbox 1; follow-up " .. d.followup, lg.stdout, 1, true)
    assert.matches("FAIL GET /notes/7: GET /notes/7: HTTP 404", lg.stdout, 1, true)
    assert.truthy(sv)
    local live = cjson.decode(H.orket("sandbox list --json", { cwd = dir }).stdout)
    assert.equal(1, #live)
    stop(dir, math.tointeger(live[1].id), m)
  end)
end)

describe("the agents' sandbox tools", function()
  local skip
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or python3 is missing" end
  end)
  after_each(stop_all)

  -- the results of the run's tool calls named name, as the journal holds them (decoded)
  local function results(dir, name)
    local r = H.orket("log 1 --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local out = {}
    for _, ev in ipairs(cjson.decode(r.stdout).events) do
      if ev.kind == "tool_call" and ev.data.tool == name then
        local res = cjson.decode(ev.result)
        out[#out + 1] = res.ok and res.result or res -- a failure: {ok=false, error=, code=}
      end
    end
    return out
  end

  it("sandbox_status and http_request reach the project's live sandbox only, through the gate", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = project(m, { id = "ONE", name = "one", issues = { { id = "ONE-1", summary = "look", seat = "dev" } } })
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. [[
models = { default = "scripted:team", providers = { scripted = { kind = "scripted", file = "script.lua" } } }
team = { dev = { roles = { "coder" } }, guard = { roles = { "integrity_guard" } } }
]])
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
return { rules = {
  { role = "coder", match = "^Issue ", reply = { tool_calls = {
    call("sandbox_status", { lines = 5 }),
    call("http_request", { method = "POST", path = "/notes", body = '{"title": "from agent"}',
      headers = { ["Content-Type"] = "application/json" } }),
    call("http_request", { path = "http://127.0.0.1:1/" }),
    call("http_request", { path = "/agent", headers = { Host = "elsewhere" } }),
    call("http_request", { path = "/big" }),
    call("http_request", { path = "/admin/users" }) } } },
  { role = "coder", match = 'admin pages', reply = { tool_calls = {
    call("update_issue_status", { status = "code_review" }) } } },
  { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
}, default = { content = "done" } }
]])
    os.execute("mkdir -p " .. H.quote(dir .. "/policies"))
    H.write(dir .. "/policies/app.lua", [[
deny { tool = "http_request", args = { path = "/admin/**" }, reason = "the admin pages are people's",
       remedy = "Check the public pages." }
]])
    local id = up(dir)
    local r = H.orket("run ONE", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local st = results(dir, "sandbox_status")[1]
    assert.equal(id, st.sandbox)
    assert.equal("healthy", st.status)
    assert.matches("GET /health " .. m, st.log, 1, true)
    local _, lines = st.log:gsub("\n", "")
    assert.is_true(lines <= 4)
    local h = results(dir, "http_request")
    assert.equal(5, #h)
    assert.equal(201, h[1].status)
    assert.equal("from agent", cjson.decode(h[1].body).title)
    assert.equal("application/json", h[1].headers["content-type"])
    -- never another host or port, never another Host
    assert.equal("EINVAL", h[2].code)
    assert.matches("path: must start with / (a path on the app, never a URL)", h[2].error, 1, true)
    assert.equal("EINVAL", h[3].code)
    assert.matches("headers.Host: is set by Orket", h[3].error, 1, true)
    -- the answer is capped for the model
    assert.is_true(h[4].truncated)
    assert.equal(16384, #h[4].body)
    assert.is_true(h[4].bytes >= 16384 and h[4].bytes <= 262144)
    -- through the gate like any tool: the project's policy denied the call to /admin
    local denied = h[5]
    assert.is_true(denied.denied)
    assert.equal("POLICY_DENY", denied.code)
    assert.matches("the admin pages are people's", denied.error, 1, true)
    assert.is_nil(H.read(dir .. "/.orket/sandboxes/" .. id .. "/app.log"):find("GET /admin", 1, true))
    -- the app saw the agent's request
    assert.matches("POST /notes from agent " .. m, H.read(dir .. "/.orket/sandboxes/" .. id .. "/app.log"), 1, true)
    assert.equal("done", H.card_json(dir, "ONE-1").card.status)
    stop(dir, id, m)
  end)
end)
