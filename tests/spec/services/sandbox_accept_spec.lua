-- orket.sandboxes.accept and orket.actions.acceptance: the checks' shape (each error naming
-- its field), judging an answer (status, JSON fields by dotted path, contains), the answer's
-- cap and the loopback relay against a unix-socket server made here, the import of
-- sandbox_checks, and where a failure goes on the board.
local H = require "tests.helpers"
local uv = require "luv"
local cjson = require "cjson"
local accept = require "orket.sandboxes.accept"
local acceptance = require "orket.actions.acceptance"
local board_mod = require "orket.board"
local imports = require "orket.store.imports"
local http = require "orket.c.http"

-- A unix-socket server answering every request with the raw bytes given, then closing.
local function serve_raw(path, raw)
  local server = uv.new_pipe(false)
  assert(server:bind(path))
  local conns = {}
  server:listen(16, function()
    local c = uv.new_pipe(false)
    server:accept(c)
    conns[#conns + 1] = c
    local got = ""
    c:read_start(function(_, data)
      if not data then return c:close() end
      got = got .. data
      if got:find("\r\n\r\n", 1, true) then c:write(raw, function() c:close() end) end
    end)
  end)
  return function()
    for _, c in ipairs(conns) do if not c:is_closing() then c:close() end end
    server:close()
  end
end

-- A unix-socket HTTP server answering every request with body (a Content-Length answer).
local function serve(path, body)
  return serve_raw(path, string.format("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
    .. "Connection: close\r\n\r\n%s", #body, body))
end

local function norm_err(check)
  local c, field, why = accept.normalize(check)
  assert.is_nil(c)
  return field .. ": " .. why
end

describe("sandbox checks", function()
  after_each(H.cleanup)

  it("take a normal form with defaults, and name the field of each error", function()
    local c = assert(accept.normalize { http = { path = "/notes" } })
    assert.same({ kind = "http", method = "GET", path = "/notes", name = "GET /notes", timeout_ms = accept.TIMEOUT_MS }, c)
    c = assert(accept.normalize { http = { method = "post", path = "/n", body = { title = "x" }, headers = { ["X-A"] = "1" } } })
    assert.equal("POST", c.method)
    assert.equal('{"title":"x"}', c.body)
    assert.is_true(c.body_json)
    c = assert(accept.normalize { browser = { selector = "#notes" } })
    assert.same({ kind = "browser", path = "/", selector = "#notes", console_errors = false, screenshot = true,
      name = "browser / #notes", timeout_ms = accept.TIMEOUT_MS }, c)
    assert.equal("http.path: must start with / (a path on the app, never a URL)",
      norm_err { http = { path = "http://elsewhere/" } })
    assert.equal("http.path: must start with / (a path on the app, never a URL)", norm_err { http = { path = "//elsewhere/x" } })
    assert.equal("http.path: must not hold blanks or control characters", norm_err { http = { path = "/a b" } })
    assert.equal("http.method: must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS",
      norm_err { http = { path = "/", method = "CONNECT" } })
    assert.equal("http.status: must be an HTTP status between 100 and 599", norm_err { http = { path = "/", status = 42 } })
    assert.equal("http.headers.Host: is set by Orket", norm_err { http = { path = "/", headers = { Host = "x" } } })
    assert.equal("http.headers.X: must be a string of one line (at most 4096 bytes)",
      norm_err { http = { path = "/", headers = { X = "a\r\nB: c" } } })
    assert.equal("http.statuss: unknown field (fields: name, method, path, body, headers, status, json, contains, "
      .. "timeout_ms, service)", norm_err { http = { path = "/", statuss = 200 } })
    -- the misspelt one of several, not the first by name
    assert.equal("http.statuss: unknown field (fields: name, method, path, body, headers, status, json, contains, "
      .. "timeout_ms, service)", norm_err { http = { path = "/", aaa = 1, statuss = 200 } })
    assert.equal("http.timeout_ms: must be an integer between 1 and 120000",
      norm_err { http = { path = "/", timeout_ms = 0 } })
    assert.equal("browser.selector: is required: the CSS selector of an element the page must show",
      norm_err { browser = { path = "/" } })
    -- a JSON path with an empty step, or an empty name, could never be what was meant
    assert.equal('http.json: its keys must be dotted paths ("a.b.0"), without an empty step',
      norm_err { http = { path = "/", json = { ["items..title"] = "a" } } })
    assert.equal('http.json: its keys must be dotted paths ("a.b.0"), without an empty step',
      norm_err { http = { path = "/", json = { ["n."] = 1 } } })
    assert.equal("http.name: must not be empty (leave it out for none)", norm_err { http = { path = "/", name = "" } })
    assert.equal("browser.name: must not be empty (leave it out for none)",
      norm_err { browser = { selector = "a", name = "" } })
    assert.equal("browser.console_errors: must be true or false", norm_err { browser = { selector = "a", console_errors = "no" } })
    assert.equal(": a check is an object with one key, http or browser (this one has curl)", norm_err { curl = {} })
    assert.equal(": a check is an object with one key, http or browser (this one has browser, http)",
      norm_err { http = { path = "/" }, browser = { selector = "a" } })
    assert.equal(": must be an object {\"http\": {...}} or {\"browser\": {...}}", norm_err { { http = {} } })
    local list, i, f, why = accept.normalize_list { { http = { path = "/" } }, { http = { path = "x" } } }
    assert.is_nil(list)
    assert.equal(2, i)
    assert.equal("http.path", f)
    assert.matches("must start with /", why)
    local many = {}
    for n = 1, accept.MAX_CHECKS + 1 do many[n] = { http = { path = "/" } } end
    assert.equal("holds more than 32 checks", select(4, accept.normalize_list(many)))
  end)

  it("find JSON fields by dotted path, arrays counted from 0", function()
    local doc = cjson.decode('{"items": [{"title": "a"}, {"title": "b", "tags": ["x"]}], "n": 2, "none": null, "0": "key"}')
    assert.same({ true, "b" }, { accept.json_at(doc, "items.1.title") })
    assert.same({ true, "x" }, { accept.json_at(doc, "items.1.tags.0") })
    assert.same({ true, 2 }, { accept.json_at(doc, "n") })
    assert.same({ true, "key" }, { accept.json_at(doc, "0") })
    assert.same({ true, cjson.null }, { accept.json_at(doc, "none") })
    assert.is_false(accept.json_at(doc, "items.2.title"))
    assert.is_false(accept.json_at(doc, "n.deeper"))
    assert.is_false(accept.json_at(doc, "missing"))
  end)

  it("judge an answer: its status (any 2xx by default), JSON fields, text it contains", function()
    local c = assert(accept.normalize { http = { path = "/n", status = 201, json = { ["items.0.title"] = "a", n = 1 },
      contains = "title" } })
    local body = '{"items": [{"title": "a"}], "n": 1}'
    assert.same({ true, "GET /n: HTTP 201" }, { accept.judge_http(c, 201, body) })
    local ok, why = accept.judge_http(c, 200, body)
    assert.is_false(ok)
    assert.equal('GET /n: HTTP 200, expected 201; the answer: {"items": [{"title": "a"}], "n": 1}', why)
    ok, why = accept.judge_http(c, 201, '{"items": [{"title": "b"}], "n": 1}')
    assert.is_false(ok)
    assert.equal('GET /n: items.0.title is "b", expected "a"', why)
    -- a value with slashes said as written, not as cjson escapes them
    local cp = assert(accept.normalize { http = { path = "/n", json = { path = "/nope" } } })
    ok, why = accept.judge_http(cp, 200, '{"path": "/api/health"}')
    assert.is_false(ok)
    assert.equal('GET /n: path is "/api/health", expected "/nope"', why)
    ok, why = accept.judge_http(c, 201, '{"items": [], "n": 1}')
    assert.is_false(ok)
    assert.matches("GET /n: the answer has no items.0.title", why, 1, true)
    ok, why = accept.judge_http(c, 201, "<html>")
    assert.is_false(ok)
    assert.equal("GET /n: the answer is not JSON: <html>", why)
    local d = assert(accept.normalize { http = { path = "/", contains = "hello" } })
    assert.is_true((accept.judge_http(d, 204, "hello world")))
    ok, why = accept.judge_http(d, 302, "hello")
    assert.is_false(ok)
    assert.matches("HTTP 302, expected a 2xx", why, 1, true)
    ok, why = accept.judge_http(d, 200, "bye")
    assert.is_false(ok)
    assert.equal('GET /: the answer does not contain "hello": bye', why)
    -- a long answer is quoted only in part
    ok, why = accept.judge_http(d, 500, string.rep("z", 10000))
    assert.is_false(ok)
    assert.is_true(#why < accept.DETAIL + 100)
  end)

  it("read answers through the unix socket up to the cap", function()
    local sock = H.tmpdir() .. "/app.sock"
    local stop = serve(sock, '{"ok": true, "pad": "' .. string.rep("p", 5000) .. '"}')
    local status, body = accept.request(sock, { path = "/x" })
    assert.equal(200, status)
    assert.is_true(cjson.decode(body).ok)
    local s2, err, code = accept.request(sock, { path = "/x", max_bytes = 1000 })
    assert.is_nil(s2)
    assert.equal("ETOOBIG", code)
    assert.equal("the answer is larger than 1000 bytes", err)
    stop()
    -- nothing listening: a clear failure, not a hang
    local s3, err3, code3 = accept.request(sock, { path = "/", timeout_ms = 2000 })
    assert.is_nil(s3)
    assert.equal("EUNAVAILABLE", code3)
    assert.truthy(err3)
  end)

  it("take an answer to HEAD at its headers, on a connection the app keeps open", function()
    local sock = H.tmpdir() .. "/head.sock"
    -- the length a GET would have, no body, and the connection kept (HTTP/1.1's default)
    local server = uv.new_pipe(false)
    assert(server:bind(sock))
    local conns = {}
    server:listen(16, function()
      local c = uv.new_pipe(false)
      server:accept(c)
      conns[#conns + 1] = c
      local got = ""
      c:read_start(function(_, data)
        if not data then return c:close() end
        got = got .. data
        if got:find("\r\n\r\n", 1, true) then
          got = ""
          c:write("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 215\r\n\r\n")
        end
      end)
    end)
    local stop -- (one finally: a second call would replace the first)
    finally(function()
      for _, c in ipairs(conns) do if not c:is_closing() then c:close() end end
      server:close()
      if stop then stop() end
    end)
    local t0 = uv.now()
    local status, body, _, err = accept.request(sock, { method = "HEAD", path = "/", timeout_ms = 3000 })
    assert.equal(200, status, body)
    assert.equal("", body)
    assert.is_true(uv.now() - t0 < 2000, "took " .. (uv.now() - t0) .. " ms")
    -- the pooled handle asks GET again afterwards, and reads that body
    local after = H.tmpdir() .. "/after.sock"
    stop = serve(after, '{"ok": true}')
    status, body = accept.request(after, { path = "/", timeout_ms = 3000 })
    assert.equal(200, status, err)
    assert.is_true(cjson.decode(body).ok)
  end)

  it("send each request on a pooled handle with its own method and body, after a HEAD", function()
    -- a TCP server keeping its connections, answering each request with what arrived
    -- (method, path, body); a HEAD gets the headers a GET would, as a server does
    local server = uv.new_tcp()
    assert(server:bind("127.0.0.1", 0))
    local port = server:getsockname().port
    local conns, seen = {}, {}
    server:listen(16, function()
      local c = uv.new_tcp()
      server:accept(c)
      conns[#conns + 1] = c
      local got = ""
      c:read_start(function(_, data)
        if not data then return c:close() end
        got = got .. data
        while true do
          local he = got:find("\r\n\r\n", 1, true)
          if not he then return end
          local cl = tonumber(got:sub(1, he):lower():match("\ncontent%-length: *(%d+)")) or 0
          if #got < he + 3 + cl then return end
          local line, body = got:match("^[^\r]*"), got:sub(he + 4, he + 3 + cl)
          got = got:sub(he + 4 + cl)
          local method, path = line:match("^(%S+) (%S+)")
          seen[#seen + 1] = { method = method, path = path, body = body }
          local answer = method .. " " .. path .. "|" .. body
          c:write(string.format("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
            #answer, method == "HEAD" and "" or answer))
        end
      end)
    end)
    finally(function()
      for _, c in ipairs(conns) do if not c:is_closing() then c:close() end end
      server:close()
    end)
    local function ask(method, path, body, headers)
      local r <close>, err = http.request { url = "http://127.0.0.1:" .. port .. path, method = method, body = body,
        headers = headers, connect_timeout_ms = 3000, total_timeout_ms = 3000 }
      assert(r, err)
      local status, h = r:headers()
      assert.equal(200, status, h)
      local parts = {}
      while true do
        local ev, rerr = r:read()
        if ev == false then break end
        assert(ev, rerr)
        for _, s in ipairs(ev) do parts[#parts + 1] = s end
      end
      return table.concat(parts)
    end
    local json = '{"model":"m","messages":[]}'
    assert.equal("", ask("HEAD", "/probe"))
    -- what the model client sends: a POST with a JSON body
    assert.equal("POST /v1/chat/completions|" .. json,
      ask("POST", "/v1/chat/completions", json, { "Content-Type: application/json" }))
    assert.equal("", ask("HEAD", "/probe"))
    assert.equal("PUT /u|world", ask("PUT", "/u", "world"))
    assert.equal("GET /g|", ask("GET", "/g"))
    assert.same({ { method = "HEAD", path = "/probe", body = "" },
      { method = "POST", path = "/v1/chat/completions", body = json },
      { method = "HEAD", path = "/probe", body = "" },
      { method = "PUT", path = "/u", body = "world" },
      { method = "GET", path = "/g", body = "" } }, seen)
  end)

  it("tell an answer broken off below the cap from one larger than the cap", function()
    local sock = H.tmpdir() .. "/cut.sock"
    -- 700 of the 1000 bytes it announces, then the app is gone
    local stop = serve_raw(sock, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" .. string.rep("c", 700))
    finally(stop)
    local s, err, code = accept.request(sock, { path = "/", max_bytes = 1000, timeout_ms = 3000 })
    assert.is_nil(s)
    assert.equal("EUNAVAILABLE", code, err)
    local s2, err2, code2 = accept.request(sock, { path = "/", max_bytes = 1000, timeout_ms = 3000, truncate = true })
    assert.is_nil(s2)
    assert.equal("EUNAVAILABLE", code2, err2)
  end)

  it("read a log's last lines within a byte cap, never a line the cap cut", function()
    local log = H.tmpdir() .. "/app.log"
    H.write(log, "first line\nsecond line\nthird\n")
    assert.equal("second line\nthird", accept.log_tail(log, 2))
    assert.equal("third", accept.log_tail(log, 5, 12)) -- the last 12 bytes cut "second line"
    assert.equal("", accept.log_tail(log .. ".none", 5))
  end)

  -- The PostgreSQL layer repeats this file for its tests that use the store; this one opens
  -- none (a browser, a socket, a profile), so a second run would only start the browser again.
  local sqlite_it = require("tests.backends").name() == "sqlite" and it
    or function(name) pending(name .. " [SQLite only: it opens no store]") end
  sqlite_it("share a holder's browser between runs, and leave none running once it is closed or a run raised", function()
    if not accept.browser_available() then return pending("skipped: " .. select(2, accept.browser_available())) end
    -- the browser runs confined in a network namespace of its own, required (a chroot, or
    -- another user where user namespaces are refused, has none)
    if not require("orket.c.proc").probe().netns then
      return pending("skipped: the kernel offers no network namespace here, and the browser must run in one")
    end
    local home = H.tmpdir()
    local stop = serve(home .. "/app.sock", '{"ok": true}')
    -- the browser's profile is made under TMPDIR: its processes name it (open to others: as
    -- root the browser runs as nobody, and a TMPDIR closed to it is not used)
    local tmp = H.tmpdir()
    os.execute("chmod 0711 " .. H.quote(tmp))
    local old = os.getenv("TMPDIR")
    uv.os_setenv("TMPDIR", tmp)
    -- (busted keeps one finally: both undone in it; a server left listening would keep the
    -- loop, and so the file's process, alive)
    finally(function()
      stop()
      if old then uv.os_setenv("TMPDIR", old) else uv.os_unsetenv("TMPDIR") end
    end)
    local function running() return H.processes(tmp) end
    local page = assert(accept.normalize { browser = { path = "/", selector = "body", console_errors = true,
      screenshot = false, timeout_ms = 30000 } }) -- a loaded machine loads pages slowly
    local misuse = { kind = "http", name = "misuse", method = "GET" } -- no path: run raises
    -- a holder's browser (a deploy's cards): started by the first run, kept for the next,
    -- still there after a run that raised, and gone with close()
    local shared = accept.browsers()
    local res = accept.run { socket = home .. "/app.sock", home = home, checks = { page }, browsers = shared }
    assert.is_true(res.ok, res.results[1].detail)
    -- the page ran under the browser's own sandbox wherever its user may make a user
    -- namespace (as root the browser runs as nobody)
    local as = uv.getuid() == 0 and string.format("setpriv --reuid=%d --regid=%d --clear-groups ", accept.NOBODY, accept.NOBODY) or ""
    if os.execute(as .. "unshare -U true >/dev/null 2>&1") == true then
      assert.is_nil(res.results[1].unsandboxed, res.results[1].detail)
    end
    local first = shared.browser
    assert.truthy(first)
    assert.is_true(#running() > 0)
    local ok, err = pcall(accept.run, { socket = home .. "/app.sock", home = home, checks = { page, misuse }, browsers = shared })
    assert.is_false(ok)
    assert.truthy(err)
    assert.equal(first, shared.browser) -- the same browser served the second run
    assert.is_true(#running() > 0)
    shared.close()
    assert.same({}, running())
    -- without a holder a run's browser is its own, ended when the run raises
    ok, err = pcall(accept.run, { socket = home .. "/app.sock", home = home, checks = { page, misuse } })
    assert.is_false(ok)
    assert.truthy(err)
    assert.same({}, running())
  end)

  it("are read from an epic file, each error naming the file, the issue and the field", function()
    local dir = H.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/epics"))
    H.write(dir .. "/epics/web.json", cjson.encode { id = "WEB", name = "web", issues = {
      { id = "WEB-1", summary = "a", sandbox_checks = { { http = { path = "/" } }, { browser = { selector = "#x", path = "x" } } } } } })
    local ok, err = require("orket.import").load(dir)
    assert.is_nil(ok)
    assert.equal("epics/web.json:1: issues[0].sandbox_checks[1].browser.path: must start with / (a path on the app, never a URL)", err)
    H.write(dir .. "/epics/web.json", cjson.encode { id = "WEB", name = "web", issues = {
      { id = "WEB-1", summary = "a", sandbox_checks = { http = { path = "/" } } } } })
    ok, err = require("orket.import").load(dir)
    assert.is_nil(ok)
    assert.equal("epics/web.json:1: issues[0].sandbox_checks: must be an array of checks", err)
    -- stored beside the verification, which keeps working on its own
    H.write(dir .. "/epics/web.json", cjson.encode { id = "WEB", name = "web", issues = {
      { id = "WEB-1", summary = "a", sandbox_checks = { { http = { path = "/n", status = 200 } } } },
      { id = "WEB-2", summary = "b", verification = { command = { "true" } },
        sandbox_checks = { { browser = { selector = "#x" } } } },
      { id = "WEB-3", summary = "c" } } })
    local db = require("tests.backends").open_store()
    assert(require("orket.import").import(db, dir))
    local sv = require "orket.store.verifications"
    local list = sv.sandbox_checks(db, "WEB-1")
    assert.equal(1, #list)
    assert.equal("/n", list[1].path)
    assert.equal(200, list[1].status)
    assert.equal("browser", sv.sandbox_checks(db, "WEB-2")[1].kind)
    assert.is_nil(sv.sandbox_checks(db, "WEB-3"))
    local verify = require "orket.engine.verify"
    local settings = { verify = { command = { "make", "test" } } }
    assert.same({ "true" }, verify.checks({ db = db, settings = settings }, { id = "WEB-2", source = "x" }).steps[1].command)
    -- sandbox checks alone are no verification: the project's default still applies
    assert.same({ "make", "test" }, verify.checks({ db = db, settings = settings }, { id = "WEB-1", source = "x" }).steps[1].command)
    db:close()
  end)
end)

describe("a failing sandbox check on the board", function()
  after_each(H.cleanup)

  local function board()
    local db = require("tests.backends").open_store()
    imports.insert_card(db, { id = "E", type = "epic", name = "E", priority = 2, seat = "developer" })
    for i = 1, 3 do
      imports.insert_card(db, { id = "E-" .. i, type = "issue", parent = "E", name = "E" .. i, summary = "E" .. i,
        priority = 2, seat = "developer" })
    end
    imports.set_verification(db, "E-1", cjson.encode { sandbox_checks = { { kind = "http", path = "/", method = "GET" } } })
    return db, board_mod.open(db)
  end
  local function set(db, id, status) require("orket.store.cards").set_status(db, id, status, nil, "developer", 0) end
  local FAILED = { ok = false, results = { { kind = "http", name = "GET /", ok = false, detail = "GET /: HTTP 500, expected a 2xx" } },
    log = "Traceback: boom" }

  it("sends an open card back, files a follow-up for a done one (once), next to its epic when that is done", function()
    local db, b = board()
    set(db, "E-2", "code_review")
    local out = assert(acceptance.record { db = db, board = b, card = "E-2", sandbox = 4, result = FAILED, send_back = true })
    assert.equal("sent_back", out.code)
    assert.equal("in_progress", b:get("E-2").status)
    local said = b:comments("E-2")[1].body
    assert.matches("Sandbox 4: acceptance checks failed.\n- FAIL GET /: GET /: HTTP 500, expected a 2xx", said, 1, true)
    assert.matches("Traceback: boom", said, 1, true)
    -- a done card is final: a follow-up in its epic, with its checks; a second failure adds to it
    set(db, "E-1", "done")
    out = assert(acceptance.record { db = db, board = b, card = "E-1", sandbox = 4, result = FAILED, send_back = true })
    assert.equal("followup", out.code)
    local f = b:get(out.followup)
    assert.equal("Sandbox checks fail for E-1", f.summary)
    assert.equal("E", f.parent)
    assert.equal("developer", f.seat)
    assert.matches("Traceback: boom", f.description, 1, true)
    assert.equal("/", require("orket.store.verifications").sandbox_checks(db, f.id)[1].path)
    local again = assert(acceptance.record { db = db, board = b, card = "E-1", sandbox = 5, result = FAILED, send_back = true })
    assert.equal(out.followup, again.followup)
    assert.equal(1, #b:comments(f.id))
    -- by hand (no send_back): journaled only
    local hand = assert(acceptance.record { db = db, board = b, card = "E-3", sandbox = 5, result = FAILED })
    assert.equal("recorded", hand.code)
    assert.equal("ready", b:get("E-3").status)
    assert.equal(0, #b:comments("E-3"))
    local ev
    for _, e in ipairs(b:history("E-3")) do if e.kind == "sandbox_check" then ev = e end end
    assert.is_false(ev.data.passed)
    assert.equal("Traceback: boom", ev.data.log)
    -- the epic finished: no issue can be filed in it, and with deploy = "epic" (or the
    -- merge that finishes it) the checks run only then, so the failure was a comment on a
    -- done card alone; its follow-up goes to a follow-ups epic next to it, with its checks
    for _, id in ipairs { "E-2", "E-3", f.id } do set(db, id, "done") end
    set(db, "E", "done")
    out = assert(acceptance.record { db = db, board = b, card = "E-3", sandbox = 6, result = FAILED, send_back = true })
    assert.equal("followup", out.code)
    local g = b:get(out.followup)
    assert.equal("E-followups", g.parent)
    assert.equal("Sandbox checks fail for E-3", g.summary)
    assert.equal("ready", g.status)
    assert.equal(b:get("E").parent, b:get("E-followups").parent)
    assert.equal("epic", b:get("E-followups").type)
    assert.equal(1, #b:comments("E-3"))
    -- a second failure adds to that follow-up; once that epic is finished too, another
    again = assert(acceptance.record { db = db, board = b, card = "E-3", sandbox = 7, result = FAILED, send_back = true })
    assert.equal(g.id, again.followup)
    set(db, g.id, "done")
    set(db, "E-followups", "done")
    out = assert(acceptance.record { db = db, board = b, card = "E-3", sandbox = 8, result = FAILED, send_back = true })
    assert.equal("followup", out.code)
    assert.equal("E-followups.2", b:get(out.followup).parent)
    -- a pass is journaled, nothing more
    out = assert(acceptance.record { db = db, board = b, card = "E-3", sandbox = 6,
      result = { ok = true, results = {}, log = "" }, send_back = true })
    assert.equal("passed", out.code)
    db:close()
  end)
end)

-- A store and its board with rock R > epic E > issue E-1, all done, E-1 carrying checks
local function done_rock(checks)
  local db = require("tests.backends").open_store()
  imports.insert_card(db, { id = "R", type = "rock", name = "R", priority = 2, seat = "developer" })
  imports.insert_card(db, { id = "E", type = "epic", parent = "R", name = "E", priority = 2, seat = "developer" })
  imports.insert_card(db, { id = "E-1", type = "issue", parent = "E", name = "E1", summary = "E1", priority = 2,
    seat = "developer" })
  imports.set_verification(db, "E-1", cjson.encode { sandbox_checks = checks })
  local cards = require "orket.store.cards"
  for _, id in ipairs { "E-1", "E", "R" } do cards.set_status(db, id, "done", nil, "developer", 0) end
  return db, board_mod.open(db)
end

describe("a failing sandbox check in a rock's bug-fix phase", function()
  after_each(H.cleanup)

  it("files a bug of the rock carrying the card's checks, once while it is open", function()
    local db, b = done_rock { { kind = "http", path = "/", method = "GET" } }
    local failed = { ok = false, results = { { kind = "http", name = "GET /", ok = false, detail = "GET /: HTTP 500" } },
      log = "Traceback: boom" }
    -- no phase: the epic being done, a follow-up in a follow-ups epic under the same rock
    local out = assert(acceptance.record { db = db, board = b, card = "E-1", sandbox = 3, result = failed, send_back = true })
    assert.equal("followup", out.code)
    assert.equal("E-followups", b:get(out.followup).parent)
    assert.equal("R", b:get("E-followups").parent)
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    out = assert(acceptance.record { db = db, board = b, card = "E-1", sandbox = 4, result = failed, send_back = true })
    assert.equal("bug", out.code)
    assert.is_false(out.duplicate)
    local bug = b:get(out.followup)
    assert.equal("Sandbox checks fail for E-1", bug.summary)
    assert.equal("R-bugs", bug.parent)
    assert.equal("ready", bug.status)
    assert.matches("Traceback: boom", bug.description, 1, true)
    assert.equal("/", require("orket.store.verifications").sandbox_checks(db, bug.id)[1].path)
    -- again while it is open: a comment on the same bug
    local again = assert(acceptance.record { db = db, board = b, card = "E-1", sandbox = 5, result = failed, send_back = true })
    assert.equal("bug", again.code)
    assert.is_true(again.duplicate)
    assert.equal(bug.id, again.followup)
    assert.matches("^Seen again", b:comments(bug.id)[1].body)
    local ev
    for _, e in ipairs(b:history("E-1")) do if e.kind == "sandbox_check" then ev = e end end
    assert.equal("bug", ev.data.outcome)
    assert.equal(bug.id, ev.data.followup)
    db:close()
  end)
end)

describe("the agents' sandbox tools without a sandbox", function()
  after_each(H.cleanup)

  it("say there is none to reach, and check what they are asked before anything is sent", function()
    local db = require("tests.backends").open_store()
    local st = require "orket.engine.sandboxtool"
    local out = st.run({ db = db }, "E-1", "http_request", { op = "http", method = "GET", path = "/" })
    assert.is_false(out.ok)
    assert.equal("ENOSANDBOX", out.code)
    assert.matches("^http_request: no live sandbox of main", out.error)
    out = st.run({ db = db }, "E-1", "sandbox_status", { op = "status" })
    assert.equal("ENOSANDBOX", out.code)
    -- the tools' own handlers only shape the request
    local reg = assert(require("orket.tools").load_dirs { H.ROOT .. "/tools" })
    local r = reg:run("http_request", { path = "/n", body = "x" }, {})
    assert.same({ op = "http", method = "GET", path = "/n", body = "x" }, r.result)
    assert.equal("sandbox", reg:get("http_request").effect)
    assert.is_true(reg:get("sandbox_status").idempotent)
    assert.same({ op = "status", lines = 3 }, reg:run("sandbox_status", { lines = 3 }, {}).result)
    db:close()
  end)

  -- On a store several folders share, the listing shows another folder's sandbox: "none"
  -- alone read as a fault of the tool.
  it("name the sandboxes of main another folder sharing the store runs, which they never reach", function()
    local db = require("tests.backends").open_store()
    local sbops = require "orket.store.sandboxes"
    local service = require "orket.sandboxes.service"
    local st = require "orket.engine.sandboxtool"
    local dir = uv.fs_realpath(H.tmpdir())
    local pid = uv.os_getpid()
    local function live(folder, id, target)
      local row = sbops.insert(db, { target = target or "main", port = 1, command = "[]",
        socket = folder .. "/.orket/sandboxes/" .. id .. "/app.sock", owner_pid = pid,
        owner_start = service.start_time(pid) })
      sbops.set_status(db, row, "healthy")
      return row
    end
    local b = live("/elsewhere/b", 1)
    live(dir, 2, "other") -- this folder's, of another target: not counted
    local out = st.run({ db = db, project_dir = dir }, "E-1", "sandbox_status", { op = "status" })
    assert.equal("ENOSANDBOX", out.code)
    local head = "sandbox_status: no live sandbox of main in the project's folder, " .. dir .. ": "
    assert.equal(head, out.error:sub(1, #head))
    assert.matches("; sandbox " .. b .. " runs in another folder sharing this store (/elsewhere/b), not the "
      .. "project's, and never reached from here", out.error, 1, true)
    local c = live("/elsewhere/c", 3)
    out = st.run({ db = db, project_dir = dir }, "E-1", "sandbox_status", { op = "status" })
    assert.matches("; sandboxes " .. c .. ", " .. b .. " run in other folders sharing this store (/elsewhere/c, "
      .. "/elsewhere/b)", out.error, 1, true)
    db:close()
  end)
end)

describe("a deploy's acceptance checks", function()
  after_each(H.cleanup)

  it("run the merged card's checks, send a failure back and post orket/sandbox on the forge", function()
    local forge = H.fake_forge()
    finally(forge.stop)
    uv.os_setenv("ORKET_TEST_SANDBOX_FORGE", "t0ken")
    local db = require("tests.backends").open_store()
    imports.insert_card(db, { id = "E", type = "epic", name = "E", priority = 2, seat = "developer" })
    for i = 1, 2 do
      imports.insert_card(db, { id = "E-" .. i, type = "issue", parent = "E", name = "E" .. i, summary = "E" .. i,
        priority = 2, seat = "developer" })
    end
    imports.set_verification(db, "E-1", cjson.encode { sandbox_checks = {
      assert(accept.normalize { http = { path = "/x", json = { ok = true } } }),
      assert(accept.normalize { http = { path = "/x", status = 404 } }) } })
    local b = board_mod.open(db)
    require("orket.store.cards").set_status(db, "E-1", "done", nil, "developer", 0)
    local home = H.tmpdir()
    H.write(home .. "/app.log", "one\ntwo\nthe app's last line\n")
    local stop = serve(home .. "/app.sock", '{"ok": true}')
    local deploy = require "orket.sandboxes.deploy"
    local settings = { git = { forge = "gitea", repo = "acme/notes", api_url = forge.url,
      token_env = "ORKET_TEST_SANDBOX_FORGE" }, sandbox = { deploy = "epic" } }
    assert.same({ "E-1" }, deploy.accepting("epic", b, "E-1"))
    assert.same({ "E-2" }, deploy.accepting("merge", b, "E-2"))
    local sha = string.rep("ab", 20)
    local outs = deploy.accept_after { db = db, board = b, settings = settings, cards = { "E-1", "E-2" },
      sandbox = { id = 3, socket = home .. "/app.sock", home = home, commit = sha }, send_back = true }
    stop()
    assert.equal(1, #outs) -- E-2 has no checks
    local o = outs[1]
    assert.is_false(o.result.ok)
    assert.is_true(o.result.results[1].ok)
    assert.equal("GET /x: HTTP 200, expected 404; the answer: {\"ok\": true}", o.result.results[2].detail)
    assert.equal("one\ntwo\nthe app's last line", o.result.log)
    assert.equal("followup", o.outcome)
    assert.equal("failure", o.status.state)
    local status, text = H.fetch { url = forge.url .. "/__statuses", total_timeout_ms = 5000 }
    assert.equal(200, status)
    local posted = cjson.decode(text)
    assert.equal(1, #posted)
    assert.equal(sha, posted[1].sha)
    assert.equal("orket/sandbox", posted[1].context)
    assert.equal("failure", posted[1].state)
    assert.equal("E-1: 1 of 2 checks passed", posted[1].description)
    -- cards of an epic deployed together: one status for the commit, a failure not hidden
    -- by a later card's success
    imports.set_verification(db, "E-2", cjson.encode { sandbox_checks = {
      assert(accept.normalize { http = { path = "/x" } }) } })
    local stop2 = serve(home .. "/app.sock", '{"ok": true}')
    outs = deploy.accept_after { db = db, board = b, settings = settings, cards = { "E-1", "E-2" },
      sandbox = { id = 3, socket = home .. "/app.sock", home = home, commit = sha }, send_back = true }
    stop2()
    assert.equal(2, #outs)
    assert.is_true(outs[2].result.ok)
    assert.equal("failure", outs[2].status.state)
    status, text = H.fetch { url = forge.url .. "/__statuses", total_timeout_ms = 5000 }
    posted = cjson.decode(text)
    assert.equal(2, #posted)
    assert.equal("failure", posted[2].state)
    assert.equal("2 cards, failing E-1: 2 of 3 checks passed", posted[2].description)
    db:close()
  end)
end)

describe("a browser check where no browser can run", function()
  after_each(H.cleanup)

  it("is skipped with its reason: no failure, no bug, said on the card", function()
    local db, b = done_rock {
      assert(accept.normalize { http = { path = "/x" } }),
      assert(accept.normalize { browser = { path = "/", selector = "#notes", name = "the notes show" } }) }
    -- the rock in its bug-fix phase: a failure would be filed as its bug
    assert(require("orket.sandboxes.phase").start(db, "R", {}))
    -- a machine without Chromium
    local real = accept.browser_available
    accept.browser_available = function() return nil, "chromium is not installed here" end
    finally(function() accept.browser_available = real end)
    local home = H.tmpdir()
    H.write(home .. "/app.log", "")
    local stop = serve(home .. "/app.sock", '{"ok": true}')
    local outs = require("orket.sandboxes.deploy").accept_after { db = db, board = b, settings = {}, cards = { "E-1" },
      sandbox = { id = 7, socket = home .. "/app.sock", home = home }, send_back = true }
    stop()
    local o = outs[1]
    assert.is_true(o.result.ok)
    assert.is_true(o.result.results[1].ok)
    local r = o.result.results[2]
    assert.equal("chromium is not installed here", r.skipped)
    assert.equal("skip", accept.verdict(r))
    assert.matches("skip the notes show: skipped: chromium is not installed here", accept.report(o.result), 1, true)
    assert.equal("passed", o.outcome)
    assert.is_nil(o.followup)
    assert.same({}, b:list { type = "issue", epic = "R-bugs" } or {})
    assert.equal("done", b:get("E-1").status)
    local said = b:comments("E-1")[1].body
    assert.matches("acceptance checks passed, 1 skipped: they could not run here", said, 1, true)
    assert.matches("- skip the notes show: skipped: chromium is not installed here", said, 1, true)
    local ev
    for _, e in ipairs(b:history("E-1")) do if e.kind == "sandbox_check" then ev = e end end
    assert.is_true(ev.data.passed)
    assert.equal("chromium is not installed here", ev.data.results[2].skipped)
    db:close()
  end)
end)
