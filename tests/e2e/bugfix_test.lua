-- A rock's bug-fix phase end to end: the rock done, its phase opens; `orket bug` files a card
-- that the next run works to done; a sandbox whose health check fails files one bug, the
-- second failure a comment on it; the clock moved past the phase's end (across processes,
-- through ORKET_CLOCK_OFFSET_FILE) stops the sandbox and moves the open bug to the phase-2
-- rock; nothing is left running. Then POST /v1/rocks/{id}/bugs with its key checks and bad
-- input, orket serve ending a phase on its own, and a run ticking at its start. On
-- PostgreSQL too (tests.backends).
local H = require "tests.helpers"
local cjson = require "cjson"
local backends = require "tests.backends"
local proc = require "orket.c.proc"

local DAY = 86400

-- /health fails for the 4th to 6th probes and the 10th to 12th: two failures, each over
-- by the next probe; every probe is logged
local SERVER = [[
const http = require('http');
const mark = process.argv[2] || '';
let n = 0;
console.log('listening ' + mark);
http.createServer((req, res) => {
  if (req.url === '/health') {
    n++;
    const bad = (n >= 4 && n <= 6) || (n >= 10 && n <= 12);
    console.log('health ' + n + (bad ? ' fail' : ' ok'));
    res.statusCode = bad ? 500 : 200;
    return res.end(bad ? 'broken' : 'ok');
  }
  res.end('notes ' + mark);
}).listen(Number(process.env.PORT), '127.0.0.1');
]]

local SCRIPT = [[return { rules = {
  { role = "coder", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "code_review" } } } } },
  { role = "integrity_guard", reply = { tool_calls = { { name = "update_issue_status", arguments = { status = "done" } } } } },
}, default = { content = "Nothing more to do." } }
]]

local function project(mark)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  os.remove(dir .. "/epics/start.json")
  H.write(dir .. "/epics/r.json", '{ "id": "R", "type": "rock", "name": "Notes", "epics": [ "E" ] }\n')
  H.write(dir .. "/epics/e.json", '{ "id": "E", "name": "Serve notes", "issues": [ { "id": "E-1", '
    .. '"summary": "Serve the notes", "seat": "senior_developer" } ] }\n')
  H.write(dir .. "/script.lua", SCRIPT)
  H.write(dir .. "/workspace/server.js", SERVER)
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format([[

team = { senior_developer = { roles = { "coder" } }, integrity_guard = { roles = { "integrity_guard" } } }
budgets = { backoff_ms = 1 }
sandbox = { command = { "node", "server.js", %q }, health = { http = "/health", interval_ms = 150, timeout_ms = 1000,
  failures = 1, start_timeout_ms = 15000 } }
bug_fix = { days = 7, extend_above = 1, max_days = 28, check_interval_ms = 1000 }
]], mark))
  backends.project(dir)
  r = H.orket("import", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  return dir
end

-- processes whose command line holds mark
local function procs(mark)
  local out = {}
  local p = io.popen("ps -eo pid=,args=")
  for line in p:lines() do
    if line:find(mark, 1, true) and not line:find("ps -eo", 1, true) then out[#out + 1] = line end
  end
  p:close()
  return out
end

local function json(dir, args, env)
  local r = H.orket(args .. " --json", { cwd = dir, env = env })
  assert.equal(0, r.status, r.stderr)
  return cjson.decode(r.stdout)
end

local function card(dir, id) return H.card_json(dir, id).card end

local current -- the mark of the test's sandbox: what a failed test left running is ended

-- A project whose sandbox can run here, marked prefix..N (its processes found by the mark),
-- and the clock its commands read, moved by writing seconds to clockfile -> dir, env,
-- clockfile, mark | nil, why it is skipped
local function sandbox_project(prefix)
  local p = proc.probe()
  if not (p.netns and p.userns and os.execute("command -v node >/dev/null 2>&1")) then
    return nil, "the kernel offers no network namespace here, or node is missing"
  end
  local m = prefix .. math.random(1, 1e9)
  current = m
  local clockfile = H.tmpdir() .. "/clock"
  H.write(clockfile, "0\n")
  return project(m), { ORKET_CLOCK_OFFSET_FILE = clockfile }, clockfile, m
end

describe("the bug-fix phase", function()
  after_each(function()
    H.kill_servers()
    for _, line in ipairs(current and procs(current) or {}) do os.execute("kill -KILL " .. line:match("^%s*(%d+)")) end
    current = nil
    H.cleanup()
  end)

  it("opens when the rock is done, works filed bugs, files health failures once, and ends on the clock", function()
    local dir, env, clockfile, m = sandbox_project("bugfix")
    if not dir then return pending(env) end

    -- no phase before the rock is done
    assert.same({}, json(dir, "bugfix tick", env).started)
    local r = H.orket("run R", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", card(dir, "R").status)
    -- the merge that finished the rock opened its phase; a tick finds nothing more to open
    local t = json(dir, "bugfix tick", env)
    assert.same({}, t.started)
    assert.equal("R", t.phases[1].rock)
    assert.equal("open", t.phases[1].status)
    assert.equal(1, t.phases[1].day)

    -- a person files a bug; the next run works it to done
    r = H.orket("bug R 'Saving a note loses its title' --body 'Open /, save, reload'", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    assert.equal("R-bugs-1 filed; 'orket run R' works it\n", r.stdout)
    local bug = card(dir, "R-bugs-1")
    assert.equal("ready", bug.status)
    assert.equal("R-bugs", bug.parent)
    assert.equal("Open /, save, reload", bug.description)
    r = H.orket("run R", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", card(dir, "R-bugs-1").status)
    -- bad input: clear errors, nothing filed
    r = H.orket("bug NOPE 'x'", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal('orket: no rock "NOPE"\n', r.stderr)
    r = H.orket("bug R '   '", { cwd = dir })
    assert.equal(2, r.status)
    assert.equal("orket: a bug needs a title (what goes wrong)\n", r.stderr)
    r = H.orket("bug R", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("bug needs the text", r.stderr)

    -- the sandbox's health check fails twice: one bug, then a comment on it
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local sb = json(dir, "sandbox list")[1]
    local log = sb.socket:gsub("app%.sock$", "app.log")
    H.wait_for(function() return (H.read(log) or ""):find("health 14 ok", 1, true) end, "two failures and recoveries",
      1500)
    t = json(dir, "bugfix tick", env)
    assert.equal(2, #t.filed)
    assert.is_false(t.filed[1].duplicate)
    assert.is_true(t.filed[2].duplicate)
    assert.equal(t.filed[1].card, t.filed[2].card)
    local hb = card(dir, t.filed[1].card)
    assert.equal("R-bugs.2", hb.parent) -- the first bugs epic is done
    assert.equal("sandbox main: HTTP 500", hb.summary)
    assert.matches("health 6 fail", hb.description, 1, true) -- its last log lines
    local doc = H.card_json(dir, hb.id)
    assert.equal(1, #doc.comments)
    assert.matches("^Seen again", doc.comments[1].body)
    assert.equal(0, #json(dir, "bugfix tick", env).filed) -- nothing new
    t = json(dir, "bugfix status", env)
    assert.equal(2, t.phases[1].bugs)
    assert.equal(1, t.phases[1].open_bugs)
    assert.equal(2, t.phases[1].rate)
    assert.is_true(#procs("server.js " .. m) >= 1) -- the app is up

    -- a week and a day later the phase is over: the sandbox stops, the open bug moves on
    H.write(clockfile, tostring(8 * DAY) .. "\n")
    t = json(dir, "bugfix tick", env)
    assert.equal(1, #t.ended)
    assert.equal("R-2", t.ended[1].next_rock)
    assert.equal("bug_fix.days (7) passed", t.ended[1].reason)
    assert.same({ hb.id }, t.ended[1].moved)
    assert.same({ sb.id }, t.ended[1].sandboxes)
    assert.is_true(t.ended[1].stopped[1].ok)
    assert.same({}, json(dir, "sandbox list"))
    H.wait_for(function() return #procs(m) == 0 end, "nothing of the sandbox left running: "
      .. table.concat(procs(m), " | "))
    local moved = H.card_json(dir, hb.id)
    assert.equal("R-2-bugs", moved.card.parent)
    assert.equal("ready", moved.card.status)
    assert.equal(1, #moved.comments) -- its history came along
    assert.equal("rock", card(dir, "R-2").type)
    assert.equal("done", card(dir, "R-bugs-1").status)
    assert.equal("R-bugs", card(dir, "R-bugs-1").parent)
    t = json(dir, "bugfix status", env)
    assert.equal("ended", t.phases[1].status)
    assert.equal("R-2", t.phases[1].next_rock)
    -- a bug filed under the old rock goes to the phase-2 rock, and says whose run works it
    r = H.orket("bug R 'The title is cut at 20 characters'", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    local late = r.stdout:match("^(R%-2%-bugs%-%d+) filed")
    assert.truthy(late, r.stdout)
    assert.equal(late .. " filed under R-2 (R's bug-fix phase ended); 'orket run R-2' works it\n", r.stdout)
    assert.equal("R-2-bugs", card(dir, late).parent)
    -- a run of the old rock says where its work went (its JSON lines here: no terminal)
    r = H.orket("run R", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    assert.matches("R's bug-fix phase has ended; its open bugs and new ones went to R-2: run 'orket run R-2'",
      r.stdout, 1, true)
    -- the next run of the phase-2 rock works the bugs that moved
    r = H.orket("run R-2", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", card(dir, hb.id).status)
    assert.equal("done", card(dir, late).status)
  end)

  it("runs the rock's acceptance checks again while its phase is open: a regression is one bug", function()
    local dir, env, clockfile = sandbox_project("recheck")
    if not dir then return pending(env) end
    -- an app whose /notes fails once the file `broken` is in its tree; E-1's check asks for it
    H.write(dir .. "/workspace/server.js", [[
const http = require('http'), fs = require('fs');
http.createServer((req, res) => {
  if (req.url === '/notes') { res.statusCode = fs.existsSync('broken') ? 500 : 200; return res.end('notes'); }
  res.end('ok');
}).listen(Number(process.env.PORT), '127.0.0.1');
]])
    H.commit_main(dir, "an app that breaks")
    H.write(dir .. "/epics/e.json", cjson.encode { id = "E", name = "Serve notes", issues = { { id = "E-1",
      summary = "Serve the notes", seat = "senior_developer", sandbox_checks = { { http = { path = "/notes" } } } } } })
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua"):gsub("check_interval_ms = 1000 }",
      "check_interval_ms = 1000, recheck_interval_ms = 60000 }"))
    local r = H.orket("import", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("run R", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    assert.equal("done", card(dir, "R").status)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local sb = json(dir, "sandbox list")[1]
    -- not due yet: the phase has just begun
    local t = json(dir, "bugfix tick", env)
    assert.same({}, t.rechecked)
    -- a minute on: the checks run again and pass, nothing is filed
    H.write(clockfile, "120\n")
    t = json(dir, "bugfix tick", env)
    assert.equal(1, #t.rechecked)
    assert.equal("R", t.rechecked[1].rock)
    assert.same({ "E-1" }, t.rechecked[1].cards)
    assert.same({}, t.rechecked[1].failing)
    assert.same({}, t.filed)
    -- main's app breaks: the next pass files one bug in the phase, with the checks' output
    H.write(sb.socket:gsub("app%.sock$", "tree/broken"), "x")
    assert.same({}, json(dir, "bugfix tick", env).rechecked) -- (not due again yet)
    H.write(clockfile, "240\n")
    t = json(dir, "bugfix tick", env)
    assert.same({ "E-1" }, t.rechecked[1].failing)
    assert.equal(1, #t.filed)
    assert.equal("acceptance", t.filed[1].source)
    assert.is_false(t.filed[1].duplicate)
    local bug = H.card_json(dir, t.filed[1].card)
    assert.equal("R-bugs", bug.card.parent)
    assert.equal("Sandbox checks fail for E-1", bug.card.summary)
    assert.matches("FAIL GET /notes", bug.card.description, 1, true)
    assert.matches("500", bug.card.description, 1, true)
    assert.equal("done", card(dir, "E-1").status) -- the done card stays done
    -- failing again later: the same bug, seen again
    H.write(clockfile, "400\n")
    r = H.orket("bugfix tick", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    assert.matches(t.filed[1].card .. ": seen again (failing acceptance checks)", r.stdout, 1, true)
    assert.matches("R: acceptance checks of 1 card(s) run again on sandbox " .. math.tointeger(sb.id)
      .. ": failing E-1", r.stdout, 1, true)
    assert.equal(1, json(dir, "bugfix status", env).phases[1].bugs)
    r = H.orket("sandbox stop " .. math.tointeger(sb.id), { cwd = dir })
    assert.equal(0, r.status, r.stderr)
  end)

  it("is ticked by each run at its start: the phase over, the run's events say it ended", function()
    local dir = project("atstart")
    local clockfile = H.tmpdir() .. "/clock"
    H.write(clockfile, "0\n")
    local env = { ORKET_CLOCK_OFFSET_FILE = clockfile }
    local r = H.orket("run R --json", { cwd = dir, env = env })
    assert.equal(0, r.status, r.stderr)
    assert.is_nil(r.stdout:find('"type":"bugfix"', 1, true)) -- opened by the merge, after the start
    assert.equal("open", json(dir, "bugfix status", env).phases[1].status)
    H.write(clockfile, tostring(8 * DAY) .. "\n")
    r = H.orket("run R --json", { cwd = dir, env = env })
    local ev
    for line in r.stdout:gmatch("[^\n]+") do
      local e = cjson.decode(line)
      if e.type == "bugfix" then ev = e end
    end
    assert.same({ type = "bugfix", action = "end", rock = "R", reason = "bug_fix.days (7) passed", moved = 0,
      stopped = 0, left = 0 }, ev)
    assert.equal("ended", json(dir, "bugfix status", env).phases[1].status)
  end)

  it("takes bugs over HTTP from an operator's key, with clear errors, and orket serve ends the phase", function()
    local dir = project("http")
    local r = H.orket("run R", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local op = H.api_key(dir, "ops", "operator")
    local viewer = H.api_key(dir, "look", "viewer")
    local clockfile = H.tmpdir() .. "/clock"
    H.write(clockfile, "0\n")
    local s = H.serve(dir, { env = { ORKET_CLOCK_OFFSET_FILE = clockfile } })
    local st, doc = H.api(s, "GET", "/v1/bugfix", viewer)
    assert.equal(200, st)
    assert.equal("R", doc.phases[1].rock)
    assert.equal("open", doc.phases[1].status)

    st, doc = H.api(s, "POST", "/v1/rocks/R/bugs", nil, { title = "x" })
    assert.equal(401, st)
    st, doc = H.api(s, "POST", "/v1/rocks/R/bugs", viewer, { title = "x" })
    assert.equal(403, st)
    st, doc = H.api(s, "POST", "/v1/rocks/R/bugs", op, { title = "The list is empty", body = "after a reload",
      fingerprint = "empty-list" })
    assert.equal(201, st, cjson.encode(doc))
    assert.is_false(doc.duplicate)
    assert.equal("R-bugs-1", doc.card.card.id)
    assert.equal("ready", doc.card.card.status)
    st, doc = H.api(s, "POST", "/v1/rocks/R/bugs", op, { title = "The list is empty again", fingerprint = "empty-list" })
    assert.equal(200, st)
    assert.is_true(doc.duplicate)
    assert.equal("R-bugs-1", doc.card.card.id)
    assert.equal(1, #doc.card.comments)

    st, doc = H.api(s, "POST", "/v1/rocks/NOPE/bugs", op, { title = "x" })
    assert.equal(404, st)
    assert.equal('no rock "NOPE"', doc.error.message)
    st, doc = H.api(s, "POST", "/v1/rocks/E/bugs", op, { title = "x" })
    assert.equal(400, st)
    assert.equal("E is an epic; bugs are filed under a rock", doc.error.message)
    st, doc = H.api(s, "POST", "/v1/rocks/R/bugs", op, { title = "" })
    assert.equal(400, st)
    st, doc = H.api(s, "POST", "/v1/rocks/R/bugs", op, { title = "   " })
    assert.equal(400, st)
    assert.equal("a bug needs a title (what goes wrong)", doc.error.message)
    st, doc = H.api(s, "POST", "/v1/rocks/R/bugs", op, { title = "big", body = ("b"):rep(70000) })
    assert.equal(400, st)
    assert.matches("body", doc.error.message)
    st, doc = H.api(s, "POST", "/v1/rocks/R/bugs", op, { text = "wrong field" })
    assert.equal(400, st)
    st = H.api(s, "POST", "/v1/rocks/R/bugs", op, "{ not json")
    assert.equal(400, st)
    -- only the one card was filed, and the filing is audited as the key's
    local b = H.card_json(dir, "R-bugs")
    assert.equal("epic", b.card.type)
    assert.equal(1, H.orket("card R-bugs-2", { cwd = dir }).status)
    st, doc = H.api(s, "GET", "/v1/audit", op)
    local actions = {}
    for _, e in ipairs(doc.entries) do actions[#actions + 1] = e.action end
    assert.same({ "bug", "bug" }, actions)
    -- orket serve ticks every bug_fix.check_interval_ms: eight days later the phase is over
    H.write(clockfile, tostring(8 * DAY) .. "\n")
    local phases = H.wait_for(function()
      local _, d = H.api(s, "GET", "/v1/bugfix", viewer)
      return d.phases[1].status == "ended" and d.phases
    end, "orket serve to end the phase", 500)
    assert.equal("R-2", phases[1].next_rock)
    assert.equal("R-2-bugs", H.card_json(dir, "R-bugs-1").card.parent)
    assert.equal(0, s.stop())
    assert.matches('"event":"bugfix_end"', s.log(), 1, true)
  end)
end)
