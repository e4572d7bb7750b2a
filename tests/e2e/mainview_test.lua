-- main is a commit, workspace/ a view of it for people: a person's file at a path a card
-- then adds is kept, never stops the next run, and is named with both versions by `orket
-- status` (and --json, and GET /v1/status) with the commands that settle it.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local backends = require "tests.backends"

-- an app that serves the files of the tree it runs in (/file/PATH), and / for its health
local SERVER = [[
require('http').createServer((req, res) => {
  if (!req.url.startsWith('/file/')) return res.end('ok');
  try { res.end(require('fs').readFileSync(req.url.slice(6))); } catch (e) { res.end('missing'); }
}).listen(Number(process.env.PORT), '127.0.0.1');
]]

-- the scenario: a person's hello.txt in workspace/, then a run whose card adds it
local function scenario(dir)
  -- on PostgreSQL the project's database starts empty: the starter's epics imported into it
  if backends.name() == "pg" then assert.equal(0, H.orket("import", { cwd = dir }).status) end
  H.write(dir .. "/workspace/hello.txt", "draft\n")
  local r = H.orket("run START-1", { cwd = dir })
  assert.equal(0, r.status, r.stderr)
  assert.matches('"status":"done"', r.stdout)
  return r
end

-- starter() -> dir, root: the starter project `orket init` makes, in a folder of its own
-- (root), on the backend under test
local function starter()
  local root = H.tmpdir()
  assert.equal(0, H.orket("init p", { cwd = root }).status)
  return backends.project(root .. "/p"), root
end

describe("workspace/ as a view of main", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("keeps a person's file a card's merge adds, and the next run works", function()
    local dir = starter()
    local r1 = scenario(dir)
    -- the run's output names the path the merge left the person's
    assert.matches('"type":"view_diverged"', r1.stdout, 1, true)
    assert.matches("hello.txt", r1.stdout:match('[^\n]*view_diverged[^\n]*'), 1, true)
    assert.equal("draft\n", H.read(dir .. "/workspace/hello.txt"))
    -- the journal's merge event counts and names it, and `orket log` shows it
    local log = H.orket("log 1", { cwd = dir })
    assert.equal(0, log.status, log.stderr)
    assert.matches("START%-1 merged orket/START%-1 into main %(fastforward, %x+%)\n   %[git%] workspace/ kept your "
      .. "version of 1 path: hello%.txt; 'orket status' shows both", log.stdout)

    -- the second run works: no traceback, no killed run
    local r2 = H.orket("run START", { cwd = dir })
    assert.equal(0, r2.status, r2.stderr)
    assert.is_nil(r2.stderr:find("traceback", 1, true), r2.stderr)
    assert.matches('"status":"done"', r2.stdout)
    assert.equal("draft\n", H.read(dir .. "/workspace/hello.txt"))

    -- orket status names hello.txt with both versions and the commands
    local s = H.orket("status", { cwd = dir })
    assert.equal(0, s.status, s.stderr)
    assert.matches("hello.txt", s.stdout, 1, true)
    assert.matches("main has:%s+file %x+ %(%d+ bytes%)", s.stdout)
    assert.matches("yours:%s+file %x+ %(6 bytes%)", s.stdout)
    assert.matches("git --literal-pathspecs -C workspace checkout main -- hello.txt", s.stdout, 1, true)
    assert.is_nil(s.stdout:find("run in the project's folder", 1, true)) -- asked from there
    -- asked from inside workspace/ (where a person editing it is), it finds the project, and
    -- says where its commands run
    local inside = H.orket("status", { cwd = dir .. "/workspace" })
    assert.equal(0, inside.status, inside.stderr)
    assert.matches("git --literal-pathspecs -C workspace checkout main -- hello.txt", inside.stdout, 1, true)
    local real = io.popen("realpath " .. H.quote(dir)):read("l")
    assert.matches("(the commands below run in the project's folder: cd " .. real .. ")", inside.stdout, 1, true)
    local j = H.orket("status --json", { cwd = dir })
    assert.equal(0, j.status, j.stderr)
    local doc = cjson.decode(j.stdout)
    assert.equal("orket.status/1", doc.format)
    assert.equal(1, #doc.diverged)
    local d = doc.diverged[1]
    assert.equal("hello.txt", d.path)
    assert.equal("file", d.main.kind)
    assert.equal(6, d.view.size)
    assert.are_not.equal(d.main.id, d.view.id)
    -- main's version is what main's tree holds there
    local repo <close> = assert(require("orket.c.gitrepo").open(dir .. "/workspace"))
    assert.equal(doc.main, repo:head("main"))

    -- GET /v1/status gives the same document, but the server's folder
    local srv = H.serve(dir)
    local key = H.api_key(dir, "viewer1", "viewer")
    local status, body = H.api(srv, "GET", "/v1/status", key)
    assert.equal(200, status)
    assert.equal(select(2, H.sh("cd " .. H.quote(dir) .. " && pwd -P")):gsub("%s+$", ""), doc.dir)
    doc.dir = nil
    assert.same(doc, body)
    srv.stop()

    -- taking main's version ends it
    local take = {}
    for i, w in ipairs(d.take_main[1]) do take[i] = H.quote(w) end
    assert(os.execute("cd " .. H.quote(dir) .. " && " .. table.concat(take, " ") .. " >/dev/null 2>&1"))
    assert.are_not.equal("draft\n", H.read(dir .. "/workspace/hello.txt"))
    local after = cjson.decode(H.orket("status --json", { cwd = dir }).stdout)
    assert.equal(0, #after.diverged)
    assert.matches("nothing of yours differs", H.orket("status", { cwd = dir }).stdout, 1, true)
  end)

  it("says at a run's start that main lost the merged work of done cards, and goes on", function()
    local dir = starter()
    scenario(dir)
    -- main holds the journal's merges: nothing said
    local again = H.orket("run START-1", { cwd = dir })
    assert.equal(0, again.status, again.stderr)
    assert.is_nil(again.stdout:find("history_lost", 1, true))
    -- a person amends the merged commit: main was rewritten, not moved back; the work may
    -- well be in it, and restoring .git would throw the amend away
    local ws = H.quote(dir .. "/workspace")
    assert(os.execute("git -C " .. ws .. " -c user.name=me -c user.email=me@x commit -q --amend -m reworded"))
    local amended = H.orket("run START-1", { cwd = dir })
    assert.equal(0, amended.status, amended.stderr)
    assert.matches("main's history no longer holds the commits Orket merged for 1 card (START-1): main was rewritten "
      .. "since (an amend, a rebase, or a reset onto another line), so their changes may well still be in it", amended.stdout,
      1, true)
    assert.is_nil(amended.stdout:find("restore workspace/.git", 1, true))
    -- a person moves main back past the merge: said, as main moved back
    local first = io.popen("git -C " .. ws .. " rev-list --max-parents=0 main"):read("l")
    assert(os.execute("git -C " .. ws .. " reset -q --hard " .. first))
    local back = H.orket("run START-1", { cwd = dir })
    assert.equal(0, back.status, back.stderr)
    assert.matches("main no longer holds the merged work of 1 card (START-1): main was moved back past their merges; "
      .. "the cards keep their status. To bring the work back, move main forward again", back.stdout, 1, true)
    assert.is_nil(back.stdout:find('"aside"', 1, true))
    -- the repository, inside the view, removed: the next run makes a new one of the folder
    assert(os.execute("rm -rf " .. H.quote(dir .. "/workspace")))
    local r = H.orket("run START", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local ev
    for line in r.stdout:gmatch("[^\n]+") do
      local e = cjson.decode(line)
      if e.type == "git" and e.action == "history_lost" then ev = e end
    end
    assert.truthy(ev, r.stdout)
    assert.same({ "START-1" }, ev.cards)
    assert.equal(1, ev.count)
    assert.matches("main no longer holds the merged work of 1 card (START-1): workspace/ had no git repository",
      ev.message, 1, true)
    -- the removed repository's card directories are set aside, and the run went on in new ones
    assert.matches("^%./%.orket/lost/%d+T%d+Z%-%d+$", ev.aside)
    assert.truthy(io.open(dir .. "/" .. ev.aside .. "/worktrees"))
    assert.matches('"status":"done","tokens"', r.stdout)
  end)

  -- a card in review whose branch went with workspace/'s repository is not merged as
  -- "uptodate" and finished without its work: it goes back to its coder, who does it again
  it("sends a card in review back to work when workspace/'s repository went with its branch", function()
    local dir = starter()
    if backends.name() == "pg" then assert.equal(0, H.orket("import", { cwd = dir }).status) end
    -- killed as the reviewer's first turn asks its model: the card is in code_review
    local r1 = H.orket("run START-1", { cwd = dir, env = { ORKET_FAULT = "before_model:3" } })
    assert.are_not.equal(0, r1.status)
    assert.matches("START%-1%s+code_review", H.orket("board", { cwd = dir }).stdout)
    assert(os.execute("rm -rf " .. H.quote(dir .. "/workspace")))
    local r = H.orket("resume", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("START%-1%s+done", H.orket("board", { cwd = dir }).stdout)
    -- the greeting the coder wrote again is main's
    assert.equal("Hello, and welcome to the project.\n", H.read(dir .. "/workspace/hello.txt"))
    local log = H.orket("log 1", { cwd = dir })
    assert.matches("no longer holds the card's work", log.stdout, 1, true)
    assert.matches("code_review %-> in_progress by integrity_guard", log.stdout)
  end)

  -- libgit2 finds the repository by its path: a project moved while its run works made every
  -- later git step fail ("no branch main") and blocked each card it touched
  it("stops a run whose project folder is moved, blocking no card, and resumes in the new place", function()
    local dir, root = starter()
    if backends.name() == "pg" then assert.equal(0, H.orket("import", { cwd = dir }).status) end
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
local function work(card, path)
  return { role = "coder", card = card, match = "^Issue ", reply = { tool_calls = {
    call("run_command", { argv = { "sh", "-c", "sleep 3; echo ok" } }),
    call("write_file", { path = path, content = card .. "\n" }),
    call("add_issue_comment", { body = "Wrote " .. path .. "." }) } } }
end
return {
  rules = {
    work("START-1", "one.txt"), work("START-2", "two.txt"),
    { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
    { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
  },
  default = { content = "Nothing more to do." },
}
]])
    local f = assert(io.open(dir .. "/orket.lua", "a"))
    f:write('\nverify = { commands = { "sh" } }\n')
    f:close()
    os.execute(string.format("cd %s && { %s run START >%s/run.out 2>&1 & echo $! >%s/run.pid; wait $!; echo $? >%s/run.rc; } &",
      H.quote(dir), H.quote(H.BIN), H.quote(root), H.quote(root), H.quote(root)))
    finally(function() H.end_started(root, "run.pid", "run.rc", true) end)
    -- the coder's first turn has begun (its command sleeps): the folder moves under it
    H.wait_for(function() return (H.read(root .. "/run.out") or ""):find('"type":"turn_start"', 1, true) end,
      "the first turn")
    assert(os.rename(root .. "/p", root .. "/q"))
    H.wait_for(function() return (H.read(root .. "/run.rc") or ""):match("%d") end, "the run's end")
    local out = H.read(root .. "/run.out")
    assert.equal("1", H.read(root .. "/run.rc"):match("%d+"), out)
    assert.matches('"action":"project_moved"', out, 1, true)
    assert.matches("the project's folder was moved or removed while the run went on; 'orket resume 1' in its new "
      .. "place carries on", out, 1, true)
    assert.is_nil(out:find('"card_blocked"', 1, true), out)
    local moved = root .. "/q"
    assert.is_nil(H.orket("board", { cwd = moved }).stdout:find("blocked", 1, true))
    local r = H.orket("resume", { cwd = moved })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("START%-1%s+done", H.orket("board", { cwd = moved }).stdout)
    assert.equal("START-1\n", H.read(moved .. "/workspace/one.txt"))
    assert.equal("START-2\n", H.read(moved .. "/workspace/two.txt"))
  end)

  -- the refresh's temporary files take no name a tree can hold: a card's file named as the
  -- old fixed one stays in workspace/, and a directory of that name stops no later write
  it("follows main's files named .orket-view.tmp, and writes beside a directory of that name", function()
    local dir = starter()
    H.write(dir .. "/script.lua", [[
local function call(name, args) return { name = name, arguments = args } end
local function work(card, files)
  local calls = {}
  for i = 1, #files, 2 do calls[#calls + 1] = call("write_file", { path = files[i], content = files[i + 1] }) end
  calls[#calls + 1] = call("add_issue_comment", { body = "Wrote them." })
  return { role = "coder", card = card, match = "^Issue ", reply = { tool_calls = calls } }
end
return {
  rules = {
    work("START-1", { ".orket-view.tmp", "main's own\n", "sub/.orket-view.tmp/x.txt", "x\n" }),
    work("START-2", { "sub/c.txt", "c\n" }),
    { match = '"author"', reply = { tool_calls = { call("update_issue_status", { status = "code_review" }) } } },
    { role = "integrity_guard", match = "^Issue ", reply = { tool_calls = { call("update_issue_status", { status = "done" }) } } },
  },
  default = { content = "Nothing more to do." },
}
]])
    if backends.name() == "pg" then assert.equal(0, H.orket("import", { cwd = dir }).status) end
    local r = H.orket("run START", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("main's own\n", H.read(dir .. "/workspace/.orket-view.tmp"))
    assert.equal("c\n", H.read(dir .. "/workspace/sub/c.txt"))
    local git = io.popen("git -C " .. H.quote(dir .. "/workspace") .. " status --porcelain")
    local st = git:read("a")
    git:close()
    assert.equal("", st)
    assert.matches("nothing of yours differs", H.orket("status", { cwd = dir }).stdout, 1, true)
  end)

  it("serves main's hello.txt from `orket sandbox up`, not the person's", function()
    local skip = H.no_node_sandbox()
    if skip then return pending(skip) end
    local mark = "mv" .. math.random(1, 1e9)
    local dir = H.node_project(SERVER, mark)
    scenario(dir)
    assert.equal("draft\n", H.read(dir .. "/workspace/hello.txt"))
    local repo <close> = assert(require("orket.c.gitrepo").open(dir .. "/workspace"))
    local main = repo:head("main")
    local git = io.popen("git -C " .. H.quote(dir .. "/workspace") .. " show main:hello.txt")
    local want = git:read("a")
    git:close()
    assert.are_not.equal("draft\n", want)
    assert.is_true(#want > 0)

    local r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("commit " .. main, r.stdout, 1, true)
    local ok, err = pcall(function()
      local l = H.orket("sandbox list --json", { cwd = dir })
      assert.equal(0, l.status, l.stderr)
      local row = cjson.decode(l.stdout)[1]
      assert.equal(main, row.commit)
      assert.equal(want, select(2, F.sandbox_request(row.socket, "/file/hello.txt")))
    end)
    H.orket("sandbox stop 1", { cwd = dir })
    H.wait_for(function()
      local ps = io.popen("ps -eo args=")
      local all = ps:read("a")
      ps:close()
      return not all:find(mark, 1, true)
    end, "the sandbox's processes to end")
    if not ok then error(err, 0) end
  end)
end)
