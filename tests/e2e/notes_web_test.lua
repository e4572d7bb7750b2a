-- examples/notes-web end to end: the scripted team builds the web notes service, the epic
-- done deploys it to a sandbox, which serves the app through its socket and through `orket
-- serve`'s proxy; the cards' acceptance checks pass against it (HTTP, and Chromium where it
-- is installed); the rock done opens its bug-fix phase, a bug filed with `orket bug` is
-- worked and its fix deployed in place of the first sandbox; the clock moved past the
-- phase's end stops it, leaving nothing in the process table; its page opens in Chromium
-- from the web board's link. Needs a kernel with network and user namespaces and python3 (the
-- example's service is Python's standard library); the browser part, Chromium.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"
local WD = require "tests.webdriver"

local function offered() return H.sandbox_offered("python3") end

-- request(sock, method, path [, json body]) -> status, text: one exchange with the app
-- through the sandbox's socket
local function request(sock, method, path, body)
  return F.sandbox_request(sock, path, { method = method, body = body })
end
local list = F.sandbox_list

local healthy = H.healthy_sandbox

-- pids of the processes whose command line names dir (the runner and its helper), with
-- every descendant of theirs (the app itself, which runs as plain `python3 app.py`)
local function tree_of(dir)
  local rows, kids = {}, {}
  local p = io.popen("ps -eo pid=,ppid=,args=")
  for line in p:lines() do
    local pid, ppid, args = line:match("^%s*(%d+)%s+(%d+)%s+(.*)$")
    if pid and not args:find("ps -eo", 1, true) then
      rows[#rows + 1] = { pid = tonumber(pid), args = args }
      kids[tonumber(ppid)] = kids[tonumber(ppid)] or {}
      table.insert(kids[tonumber(ppid)], rows[#rows])
    end
  end
  p:close()
  local out, seen = {}, {}
  local function add(row)
    if seen[row.pid] then return end
    seen[row.pid] = true
    out[#out + 1] = row
    for _, k in ipairs(kids[row.pid] or {}) do add(k) end
  end
  for _, row in ipairs(rows) do
    if row.args:find(dir, 1, true) and row.args:find("orket-confine", 1, true) then add(row) end
  end
  return out
end

local DAY = 86400

-- the card's journal entries of one kind, oldest first
local function history(dir, card, kind)
  local out = {}
  for _, ev in ipairs(H.card_json(dir, card).history) do
    if ev.kind == kind then out[#out + 1] = ev end
  end
  return out
end

-- `orket bugfix VERB --json`, decoded
local function bugfix(dir, verb, env)
  local r = H.orket("bugfix " .. verb .. " --json", { cwd = dir, env = env })
  assert.equal(0, r.status, r.stderr)
  return cjson.decode(r.stdout)
end

local events = H.events

-- browse_app(s, sb, key, dir): a note with markup added through sb's socket, then the web board
-- of server s, signed in with key (an operator's), follows sb's link, which opens the app on
-- its own origin (ID.sandbox.localhost) in Chromium, where the note is the last one, as
-- text; the page's form adds a note there, as deployed; and the page's script calling
-- Orket's API with the person's session is refused
local function browse_app(s, sb, key, dir)
  local st, text = request(sb.socket, "POST", "/notes", { text = "<b>bold</b> & more" })
  assert.equal(201, st, text)
  local id = math.tointeger(sb.id)
  WD.with({ width = 1024, height = 800 }, function(wd)
    wd:sign_in(s.url, key)
    local link = '#sandbox-list li[data-sandbox="' .. id .. '"] a.sandbox-app'
    wd:wait(link, "the sandbox's link on the board")
    local href = wd:js("return document.querySelector(arguments[0]).getAttribute('href')", link)
    wd:go(s.url .. href)
    wd:wait("#notes li", "the notes in the app's page")
    assert.equal("http://" .. id .. ".sandbox.localhost:" .. s.port, wd:js("return location.origin"))
    assert.equal("<b>bold</b> & more", wd:text_of("#notes li:last-child"))
    assert.is_true(wd:js("return document.querySelector('#notes b') === null")) -- text, not markup
    -- the form posts to the app, which answers 303 back to its page
    wd:type(wd:wait('form[action="notes"] input[name="text"]', "the form"), "added in the browser")
    wd:press('form[action="notes"] button[type="submit"]')
    H.wait_for(function() return wd:text_of("#notes li:last-child") == "added in the browser" end,
      "the note the form added", 1000)
    local _, all = request(sb.socket, "GET", "/notes")
    local notes = cjson.decode(all)
    assert.equal("added in the browser", notes[#notes].text)
    -- its script with the person's session: the API refuses it
    local got = wd:js_async([[
      const api = arguments[0], done = arguments[arguments.length - 1];
      const status = (p) => p.then((r) => r.status, (e) => 'failed: ' + e.name);
      Promise.all([status(fetch(api + '/v1/board', { credentials: 'include' })),
        status(fetch(api + '/v1/cards/WEB-1/comments', { method: 'POST', credentials: 'include', mode: 'no-cors',
          headers: { 'Content-Type': 'text/plain' }, body: '{"body":"from the app"}' }))]).then(done);]], s.url)
    assert.equal("failed: TypeError", got[1])
    assert.equal(0, got[2])
    -- (the server writes a request's line once its answer is sent, and may be writing one as
    -- its log is read: a line not yet whole is no line yet)
    local function refused()
      local n = 0
      for line in s.log():gmatch("[^\n]+") do
        local e = cjson_safe.decode(line)
        if type(e) == "table" and (e.route == "/v1/board" or e.route == "/v1/cards/{id}/comments")
            and (e.status == 401 or e.status == 403) then
          n = n + 1
        end
      end
      return n
    end
    H.wait_for(function() return refused() >= 2 end, "the refused requests' log lines")
    assert.equal(2, refused())
  end)
  for _, c in ipairs(H.card_json(dir, "WEB-1").comments) do assert.are_not.equal("from the app", c.body) end
end

describe("examples/notes-web", function()
  local skip
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or python3 is missing" end
  end)
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is built to done, deployed, checked by use, shown through the web board, fixed after a filed bug, redeployed, and its phase ends", function()
    if skip then return pending(skip) end
    local dir = H.example("notes-web")
    local clockfile = H.tmpdir() .. "/clock"
    H.write(clockfile, "0\n")
    local env = { ORKET_CLOCK_OFFSET_FILE = clockfile }
    local r = H.orket("run NOTESWEB", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local deploys = {}
    for _, e in ipairs(events(r.stdout)) do
      if e.type == "sandbox" and e.action == "deploy" then deploys[#deploys + 1] = e end
    end
    assert.equal(1, #deploys) -- the epic's last merge, not each card's
    assert.equal("WEB-4", deploys[1].card)
    assert.equal("epic WEB done", deploys[1].reason)
    assert.is_nil(deploys[1].error)
    for _, id in ipairs { "NOTESWEB", "WEB", "WEB-1", "WEB-2", "WEB-3", "WEB-4" } do
      assert.equal("done", H.card_json(dir, id).card.status, id)
    end

    -- the sandbox serves main's tree: the API and the page
    local first = healthy(dir, {})
    -- acceptance by use: the deploy's owner ran the checks of the cards it brought (WEB-2's
    -- over HTTP, WEB-3's over HTTP and in Chromium where it is installed), and they passed.
    -- They run beside the test once the sandbox is healthy, so they are waited for before the
    -- requests below, whose notes must come after theirs
    for _, id in ipairs { "WEB-2", "WEB-3" } do
      local ev = H.wait_for(function() return history(dir, id, "sandbox_check")[1] end, id .. "'s checks", 3000)
      assert.is_true(ev.data.passed, cjson.encode(ev.data))
      assert.equal("passed", ev.data.outcome)
      assert.equal(math.tointeger(first.id), math.tointeger(ev.data.sandbox))
      assert.equal(id == "WEB-2" and 3 or 2, #ev.data.results)
      if id == "WEB-3" and WD.available() then
        local b = ev.data.results[2]
        assert.equal("browser", b.kind)
        assert.is_true(b.ok, b.detail)
        local png = H.read(b.screenshot)
        assert.truthy(png and png:sub(1, 8) == "\137PNG\r\n\26\n", "a PNG screenshot at " .. tostring(b.screenshot))
      end
    end

    local sock = first.socket
    local st, text = request(sock, "GET", "/health")
    assert.equal(200, st, text)
    -- (the acceptance checks above added notes of their own first)
    st, text = request(sock, "POST", "/notes", { text = "buy <milk>" })
    assert.equal(201, st, text)
    local n = math.tointeger(cjson.decode(text).id)
    assert.same({ id = n, text = "buy <milk>" }, cjson.decode(text))
    st, text = request(sock, "GET", "/notes")
    assert.equal(200, st)
    local all = cjson.decode(text)
    assert.same({ id = n, text = "buy <milk>" }, all[#all])
    st, text = request(sock, "GET", "/")
    assert.equal(200, st)
    assert.matches('<ul id="notes">', text, 1, true)
    assert.matches('<li data-id="' .. n .. '">buy &lt;milk&gt;</li></ul>', text, 1, true)
    assert.matches('<form method="post" action="notes">', text, 1, true)
    st, text = request(sock, "POST", "/notes", "not an object")
    assert.equal(400, st, text)
    -- the bug the example files: an empty note is accepted by the first version
    st, text = request(sock, "POST", "/notes", { text = "" })
    assert.equal(201, st, text)

    -- through `orket serve`'s proxy, with a key: a viewer reads, an operator adds
    local viewer = H.api_key(dir, "v", "viewer")
    local op = H.api_key(dir, "op", "operator")
    local s = H.serve(dir)
    local base = s.url .. "/v1/sandboxes/" .. math.tointeger(first.id) .. "/app"
    st, text = H.fetch { url = base .. "/notes", headers = { "Authorization: Bearer " .. viewer }, total_timeout_ms = 20000 }
    assert.equal(200, st, text)
    local seen
    for _, note in ipairs(cjson.decode(text)) do seen = seen or (note.text == "buy <milk>") end
    assert.is_true(seen, text)
    st, text = H.fetch { url = base .. "/", headers = { "Authorization: Bearer " .. viewer }, total_timeout_ms = 20000 }
    assert.equal(200, st, text)
    assert.matches('id="notes"', text, 1, true)
    st, text = H.fetch { url = base .. "/notes", method = "POST", body = cjson.encode { text = "via the proxy" },
      headers = { "Authorization: Bearer " .. op, "Content-Type: application/json" }, total_timeout_ms = 20000 }
    assert.equal(201, st, text)
    assert.equal("via the proxy", cjson.decode(text).text)
    assert.equal(401, (H.fetch { url = base .. "/notes", total_timeout_ms = 5000 }))
    -- the page in Chromium through the web board's link, a note's markup shown as text
    if WD.available() then
      browse_app(s, first, op, dir)
    else
      print("  skipped: the app's page in Chromium (" .. select(2, WD.available()) .. ")")
    end
    assert.equal(0, s.stop())

    -- the rock done opened its bug-fix phase; a person files the bug found above with
    -- `orket bug`, the next run works it, and its fix replaces the sandbox
    local t = bugfix(dir, "status", env)
    assert.equal("NOTESWEB", t.phases[1].rock)
    assert.equal("open", t.phases[1].status)
    local running = tree_of(dir)
    assert.truthy(#running >= 3, "the runner, its helper and the app: " .. #running)
    r = H.orket("bug NOTESWEB 'BUG: empty notes are accepted' --body 'POST /notes with an empty text answers 201'",
      { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    assert.equal("NOTESWEB-bugs-1 filed; 'orket run NOTESWEB' works it\n", r.stdout)
    r = H.orket("run NOTESWEB", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.equal("done", H.card_json(dir, "NOTESWEB-bugs-1").card.status)
    local second = healthy(dir, { [math.tointeger(first.id)] = true })
    -- (the rows as last seen, in the message: a first sandbox that ended otherwise says how)
    local seen_rows
    local ok_stop, why_not = pcall(H.wait_for, function()
      seen_rows = H.sandboxes(dir, true)
      for _, row in ipairs(seen_rows) do
        if row.id == first.id then return row.status == "stopped" end
      end
    end, "the first sandbox to be stopped by the redeploy")
    if not ok_stop then
      local owners = H.read(dir .. "/.orket/sandboxes/owner.log") or "(no owner.log)"
      local app = H.read(string.format("%s/.orket/sandboxes/%d/app.log", dir, math.tointeger(first.id))) or "(no app.log)"
      error(string.format("%s: %s\nthe owners' output:\n%s\nthe first sandbox's log:\n%s", tostring(why_not),
        cjson.encode(seen_rows or {}), owners:sub(-6000), app:sub(-6000)), 0)
    end
    st, text = request(second.socket, "POST", "/notes", { text = "" })
    assert.equal(400, st, text)
    assert.matches("must not be empty", text, 1, true)
    st, text = request(second.socket, "POST", "/notes", { text = "  " })
    assert.equal(400, st, text)
    st, text = request(second.socket, "POST", "/notes", { text = "after the fix" })
    assert.equal(201, st, text)
    -- the first sandbox's processes are gone with it
    for _, p in ipairs(running) do assert.is_false(H.alive(p.pid), p.args) end

    -- the phase counted the bug; a week and a day later it is over: its sandboxes stop,
    -- and with nothing left open no bug moves on
    t = bugfix(dir, "status", env)
    assert.equal(1, t.phases[1].bugs)
    assert.equal(0, t.phases[1].open_bugs)
    local live = tree_of(dir)
    assert.truthy(#live >= 3, "the second sandbox's processes: " .. #live)
    H.write(clockfile, tostring(8 * DAY) .. "\n")
    t = bugfix(dir, "tick", env)
    assert.equal(1, #t.ended)
    assert.equal("bug_fix.days (7) passed", t.ended[1].reason)
    assert.same({}, t.ended[1].moved)
    assert.same({ second.id }, t.ended[1].sandboxes)
    H.wait_for(function() return #tree_of(dir) == 0 end, "the sandbox's processes to end")
    for _, p in ipairs(live) do assert.is_false(H.alive(p.pid), p.args) end
    assert.equal(0, #list(dir))
    assert.equal("ended", bugfix(dir, "status", env).phases[1].status)
  end)

  it("validates clean, and run.sh shows the whole loop as a newcomer runs it", function()
    if skip then return pending(skip) end
    local v = H.orket("validate " .. H.quote(H.ROOT .. "/examples/notes-web"))
    assert.equal(0, v.status, v.stdout .. v.stderr)
    -- run.sh makes its own SQLite project: once is enough on either layer
    if require("tests.backends").name() == "pg" then return pending("run.sh uses SQLite: run on that layer") end
    local tmp = H.tmpdir()
    -- orket is not on PATH: the commands printed must not need it
    local p = io.popen(string.format("cd %s && env PATH=/usr/bin:/bin TMPDIR=%s sh examples/notes-web/run.sh %s </dev/null 2>&1; echo \"exit $?\"",
      H.quote(H.ROOT), H.quote(tmp), H.quote(H.BIN)))
    local out = p:read("a")
    p:close()
    local project_dir = out:match("\nproject: ([^\n]+)\n")
    local stop = out:match("\nstop it: ([^\n]+)\n")
    -- whatever happened, nothing is left running
    if stop then os.execute(stop .. " >/dev/null 2>&1") end
    assert.matches("\nexit 0\n$", out)
    assert.matches("the epic is done and deployed: sandbox 1\n", out, 1, true)
    assert.matches(', "text": ""}  (HTTP 201)', out, 1, true) -- the bug, shown (the checks' notes came first)
    assert.matches("NOTESWEB-bugs-1 filed", out, 1, true)
    assert.matches("the fix is deployed: sandbox 2 (sandbox 1 was stopped)", out, 1, true)
    assert.matches('text must not be empty"}  (HTTP 400)', out, 1, true)
    assert.truthy(project_dir and project_dir:find(tmp, 1, true) == 1, out)
    assert.truthy(stop, out)
    H.wait_for(function() return #tree_of(project_dir) == 0 end, "run.sh's sandbox to stop")
  end)
end)
