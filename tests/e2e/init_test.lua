-- orket init and orket validate end to end: a scaffold that runs to done offline at once,
-- refusal to overwrite a project, every problem of a broken project reported with its
-- file and line, and the examples validating clean.
local H = require "tests.helpers"

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- orket on PATH (a directory holding a link to the binary under test): hints then say
-- plain `orket`, as they do for an installed orket
local function on_path()
  local bin = H.tmpdir()
  assert(os.execute("ln -s " .. H.quote(H.BIN) .. " " .. H.quote(bin .. "/orket")))
  return { PATH = bin .. ":" .. os.getenv("PATH") }
end

-- what is in dir (a sorted `find`, named from dir's own name), with find's options
local function tree(dir, opts)
  local p = io.popen("cd " .. H.quote(dir .. "/..") .. " && find " .. H.quote(dir:match("[^/]+$")) .. " " .. (opts or "") .. " | sort")
  local out = p:read("a")
  p:close()
  return out
end

describe("orket init", function()
  after_each(H.cleanup)

  it("scaffolds a project that orket run finishes, and says what to run", function()
    local dir = H.tmpdir()
    local r = H.orket("init x", { cwd = dir, env = on_path() })
    assert.equal(0, r.status, r.stderr)
    assert.matches("next: cd x && orket run START", r.stdout, 1, true)
    -- workspace/ is a git repository on main, with its first commit
    do
      local repo <close> = assert(require("orket.c.gitrepo").open(dir .. "/x/workspace"))
      assert.truthy(repo:head("main"))
    end
    local v = H.orket("validate", { cwd = dir .. "/x" })
    assert.equal(0, v.status, v.stdout)
    assert.matches("^ok: orket.lua, 1 epic %(2 issues%), 3 roles, %d+ tools, 1 policy\n$", v.stdout)
    local run = H.orket("run START", { cwd = dir .. "/x" })
    assert.equal(0, run.status, run.stderr)
    assert.matches('"status":"done","tokens":%d+,"type":"run_end"', run.stdout)
    local board = H.orket("board", { cwd = dir .. "/x" })
    assert.matches("START%-2", board.stdout)
    assert.is_nil(board.stdout:find("ready"))
    local f = assert(io.open(dir .. "/x/workspace/hello.txt"))
    assert.matches("Hello", f:read("a"))
    f:close()
    -- written in START-1's worktree, merged into main when it was done
    local repo <close> = assert(require("orket.c.gitrepo").open(dir .. "/x/workspace"))
    local log = repo:log("main", 100)
    assert.matches("^START%-%d: turn 1 %(work, run 1%)$", log[1].summary)
    assert.is_true(repo:check())
  end)

  -- "orket init on the existing repo" read plainly: init at the team's repository's root made
  -- a project among its files, with a new, empty workspace/ repository for the agents
  it("refuses a git repository's root holding files of its own, and takes one holding a project's", function()
    local dir = H.tmpdir() .. "/payments"
    assert(os.execute("mkdir -p " .. H.quote(dir) .. " && cd " .. H.quote(dir) .. " && git init -q && echo x > main.c"))
    local r = H.orket("init --yes .", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches(". is a git repository holding files of its own (main.c, ...)", r.stderr, 1, true)
    assert.matches("docs/guide/adopting.md); nothing was changed", r.stderr, 1, true)
    assert.is_nil(io.open(dir .. "/orket.lua"))
    assert.is_nil(io.open(dir .. "/workspace"))
    -- a repository that keeps a project's files (none yet) is the project's own
    local own = H.tmpdir() .. "/proj"
    assert(os.execute("mkdir -p " .. H.quote(own) .. " && cd " .. H.quote(own) .. " && git init -q && echo '.orket/' > .gitignore"))
    r = H.orket("init --yes .", { cwd = own })
    assert.equal(0, r.status, r.stderr)
  end)

  it("takes any directory name: '%' in it, and a next command quoted for the shell", function()
    local dir = H.tmpdir()
    local r = H.orket("init 'my%proj'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal("", r.stderr)
    assert.matches('name = "my%proj"', H.read(dir .. "/my%proj/orket.lua"), 1, true)
    assert.equal(0, H.orket("validate", { cwd = dir .. "/my%proj" }).status)
    r = H.orket("init 'my project'", { cwd = dir, env = on_path() })
    assert.equal(0, r.status, r.stderr)
    assert.matches("next: cd 'my project' && orket run START\n", r.stdout, 1, true)
    r = H.orket([[init "it's"]], { cwd = dir, env = on_path() })
    assert.equal(0, r.status, r.stderr)
    assert.matches([[next: cd 'it'\''s' && orket run START]], r.stdout, 1, true)
    -- a name cd would read as its option: the command printed must work as pasted
    r = H.orket("init -- -p", { cwd = dir, env = on_path() })
    assert.equal(0, r.status, r.stderr)
    assert.matches("next: cd ./-p && orket run START\n", r.stdout, 1, true)
    assert.is_true(os.execute("cd " .. H.quote(dir) .. " && cd ./-p && test -f orket.lua"))
  end)

  it("names a project whose directory's name is not UTF-8 so that it validates", function()
    local dir = H.tmpdir()
    local r = H.orket("init 'bad'$(printf '\\377')'dir'", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- the byte that is no UTF-8 becomes U+FFFD, the rest of the name is kept
    assert.matches('name = "bad\u{FFFD}dir"', H.read(dir .. "/bad\255dir/orket.lua"), 1, true)
    local v = H.orket("validate", { cwd = dir .. "/bad\255dir" })
    assert.equal(0, v.status, v.stdout .. v.stderr)
  end)

  it("names the binary by the path it was run by when orket is not on PATH, a line that works", function()
    local dir = H.tmpdir()
    assert(os.execute("mkdir " .. H.quote(dir .. "/b") .. " && ln -s " .. H.quote(H.BIN) .. " " .. H.quote(dir .. "/b/orket")))
    local r = H.orket("init 'my x'", { cwd = dir, bin = "./b/orket" })
    assert.equal(0, r.status, r.stderr)
    local line = r.stdout:match("\nnext: ([^\n]+)\n$")
    assert.equal("cd 'my x' && " .. dir .. "/b/orket run START", line)
    -- run as printed, by a shell in the directory init ran in
    local p = io.popen("cd " .. H.quote(dir) .. " && " .. line .. " >/dev/null 2>&1; echo $?")
    assert.equal("0", p:read("l"))
    p:close()
    assert.matches("START%-2%s+done", H.orket("board", { cwd = dir .. "/my x" }).stdout)
    -- by the name, found on PATH, it is that name
    r = H.orket("init y", { cwd = dir, env = on_path() })
    assert.equal("next: cd y && orket run START\n", r.stdout:match("\n(next: [^\n]+\n)$"))
  end)

  it("is all or nothing: a failure removes what init made and keeps what was there", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/pre/epics"))
    write(dir .. "/pre/epics/old.json", "{bad")
    local r = H.orket("init pre", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("epics/old.json:1: .*; init removed what it had created in pre, so it can be run again\n$", r.stderr)
    assert.equal("pre\npre/epics\npre/epics/old.json\n", tree(dir .. "/pre"))
    assert.equal("{bad", H.read(dir .. "/pre/epics/old.json"))
    -- the second try meets the same problem, not a half-made project
    r = H.orket("init pre", { cwd = dir })
    assert.equal(1, r.status)
    assert.not_matches("already", r.stderr)
    write(dir .. "/pre/epics/old.json", '{ "id": "OLD", "name": "Old", "issues": [] }')
    r = H.orket("init pre", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- a failure before anything was made says so, not that it removed what it made
    write(dir .. "/afile", "mine")
    r = H.orket("init afile", { cwd = dir })
    assert.equal(1, r.status)
    assert.equal("orket: cannot create afile: ./afile is not a directory; nothing was changed\n", r.stderr)
    assert.equal("mine", H.read(dir .. "/afile"))
  end)

  -- Ctrl-C while it made the project left it half made (no repository, an empty board),
  -- which init then refused as a project and validate passed
  it("is all or nothing when interrupted too: Ctrl-C midway leaves what was there, exit 130", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/pre/epics"))
    -- epics enough that their import (after the files and the store are made) takes a while
    for f = 1, 40 do
      local issues = {}
      for i = 1, 300 do issues[i] = string.format('{"id": "E%d-%d", "summary": "%s"}', f, i, string.rep("s", 40)) end
      write(string.format("%s/pre/epics/e%02d.json", dir, f),
        string.format('{"id": "E%d", "name": "e", "issues": [%s]}', f, table.concat(issues, ",")))
    end
    local before = tree(dir .. "/pre")
    -- the signal once the store exists: the project's files are written, its import is under way
    -- (env --default-signal: a job in the background of a script would have SIGINT ignored;
    -- this one has it as a command in a terminal does)
    local p = io.popen(string.format("cd %s && { env --default-signal=INT %s init pre --yes >out 2>err & pid=$!; "
      .. "while [ ! -e pre/.orket/orket.db ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done; "
      .. "kill -INT $pid; wait $pid; echo $?; }", H.quote(dir), H.quote(H.BIN)))
    local rc = p:read("l")
    p:close()
    assert.equal("130", rc, H.read(dir .. "/err"))
    assert.equal("orket: init interrupted; it removed what it had created in pre, so it can be run again\n",
      H.read(dir .. "/err"))
    assert.equal(before, tree(dir .. "/pre"))
    local r = H.orket("init pre", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- a signal ignored at the start (nohup, a script's job) stays ignored: the project is made
    p = io.popen(string.format("cd %s && rm -rf pre/orket.lua pre/script.lua pre/.orket pre/workspace "
      .. "pre/epics/start.json && { (trap '' INT; exec %s init pre --yes >out 2>err) & pid=$!; "
      .. "while [ ! -e pre/.orket/orket.db ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done; "
      .. "kill -INT $pid; wait $pid; echo $?; }", H.quote(dir), H.quote(H.BIN)))
    rc = p:read("l")
    p:close()
    assert.equal("0", rc, H.read(dir .. "/err"))
    assert.matches("START%-1", H.orket("board", { cwd = dir .. "/pre" }).stdout)
  end)

  -- a workspace/ there before without a repository kept the .git init made in it, while the
  -- message said all it had made was removed
  it("when interrupted removes the repository it made in a workspace/ that was there", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/pre/epics") .. " " .. H.quote(dir .. "/pre/workspace"))
    write(dir .. "/pre/workspace/app.py", "code\n")
    for f = 1, 40 do
      local issues = {}
      for i = 1, 300 do issues[i] = string.format('{"id": "E%d-%d", "summary": "%s"}', f, i, string.rep("s", 40)) end
      write(string.format("%s/pre/epics/e%02d.json", dir, f),
        string.format('{"id": "E%d", "name": "e", "issues": [%s]}', f, table.concat(issues, ",")))
    end
    local before = tree(dir .. "/pre")
    local p = io.popen(string.format("cd %s && { env --default-signal=INT %s init pre --yes >out 2>err & pid=$!; "
      .. "while [ ! -e pre/.orket/orket.db ] && kill -0 $pid 2>/dev/null; do sleep 0.005; done; "
      .. "kill -INT $pid; wait $pid; echo $?; }", H.quote(dir), H.quote(H.BIN)))
    local rc = p:read("l")
    p:close()
    assert.equal("130", rc, H.read(dir .. "/err"))
    assert.equal("orket: init interrupted; it removed what it had created in pre, so it can be run again\n",
      H.read(dir .. "/err"))
    assert.equal(before, tree(dir .. "/pre"))
    assert.equal("code\n", H.read(dir .. "/pre/workspace/app.py"))
  end)

  it("undoes a failure at the workspace's repository too, so the run again it offers works", function()
    local dir = H.tmpdir()
    local ws = H.quote(dir .. "/pre/workspace")
    assert(os.execute("mkdir -p " .. ws .. " && cd " .. ws .. " && git init -q -b master . && echo code > a.c"
      .. " && git add a.c && git -c user.name=t -c user.email=t@t commit -qm work"))
    local r = H.orket("init pre", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("not refs/heads/main.*; init removed what it had created in pre, so it can be run again\n$", r.stderr)
    assert.equal("pre\npre/workspace\n", tree(dir .. "/pre", "-maxdepth 1"))
    assert(os.execute("git -C " .. ws .. " branch -q -m master main"))
    r = H.orket("init pre", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
  end)

  it("counts START's own issues, and says the other cards it imported apart", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/pre/epics"))
    write(dir .. "/pre/epics/mine.json", '{ "id": "MINE", "name": "Mine", "issues": [ { "id": "M-1", "summary": "m" } ] }')
    local r = H.orket("init pre", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("epics/start.json (epic START, 2 issues), 2 more cards from epics/, ", r.stdout, 1, true)
  end)

  it("refuses to overwrite a project and names the file", function()
    local dir = H.tmpdir()
    write(dir .. "/orket.lua", "name = 'mine'\n")
    local r = H.orket("init .", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("./orket.lua already exists", r.stderr, 1, true)
    local f = assert(io.open(dir .. "/orket.lua"))
    assert.equal("name = 'mine'\n", f:read("a"))
    f:close()
    assert.equal(2, H.orket("init a b", { cwd = dir }).status)
  end)

  -- run inside main's view, init made a project in main's tree (the agents' repository)
  -- without a word, though every other command there names the project above
  it("refuses a folder in a project's workspace/, naming the project, and changes nothing", function()
    local root = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = root }).status)
    for _, c in ipairs { { "init", root .. "/p/workspace" }, { "init sub/x", root .. "/p/workspace" },
      { "init p/workspace/y", root } } do
      local r = H.orket(c[1], { cwd = c[2] })
      assert.equal(1, r.status, c[1])
      assert.matches("is in the workspace/ of the project ", r.stderr, 1, true)
      assert.matches("give init a folder outside it; nothing was changed", r.stderr, 1, true)
    end
    assert.is_nil(io.open(root .. "/p/workspace/orket.lua"))
    assert.is_nil(io.open(root .. "/p/workspace/sub"))
    assert.is_nil(io.open(root .. "/p/workspace/y"))
    -- nor in its epics/: an orket.lua there broke the project's import
    for _, c in ipairs { { "init --yes", root .. "/p/epics" }, { "init p/epics/z --yes", root } } do
      local r = H.orket(c[1], { cwd = c[2] })
      assert.equal(1, r.status, c[1])
      assert.matches("is in the epics/ of the project ", r.stderr, 1, true)
      assert.matches("give init a folder outside it; nothing was changed", r.stderr, 1, true)
    end
    assert.is_nil(io.open(root .. "/p/epics/orket.lua"))
    assert.is_nil(io.open(root .. "/p/epics/z"))
    -- nor in its deploy/ (sandbox compose's tree of main)
    assert(os.execute("mkdir -p " .. H.quote(root .. "/p/deploy/web")))
    local r = H.orket("init --yes", { cwd = root .. "/p/deploy/web" })
    assert.equal(1, r.status, r.stdout)
    assert.matches("is in the deploy/ of the project ", r.stderr, 1, true)
    assert.is_nil(io.open(root .. "/p/deploy/web/orket.lua"))
  end)

  it("refuses a folder in a project's workspace/ that is a link to another place", function()
    local root = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = root }).status)
    assert(os.execute("mv " .. H.quote(root .. "/p/workspace") .. " " .. H.quote(root .. "/repo") .. " && ln -s "
      .. H.quote(root .. "/repo") .. " " .. H.quote(root .. "/p/workspace")))
    for _, c in ipairs { { "init sub", root .. "/p/workspace" }, { "init p/workspace/y", root } } do
      local r = H.orket(c[1], { cwd = c[2] })
      assert.equal(1, r.status, c[1])
      assert.matches("is in the workspace/ of the project ", r.stderr, 1, true)
    end
    assert.is_nil(io.open(root .. "/repo/sub"))
    assert.is_nil(io.open(root .. "/repo/y"))
    -- and status there is the project's, as in a workspace/ of its own
    local r = H.orket("status", { cwd = root .. "/p/workspace" })
    assert.equal(0, r.status, r.stderr)
    assert.matches("main is at %x+", r.stdout)
  end)

  -- a person's own script.lua (or epics/start.json) in a folder was taken for a project
  it("says a file of the name of one it writes is in the way, not that the folder holds a project", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. H.quote(dir .. "/mine/epics") .. " " .. H.quote(dir .. "/own"))
    write(dir .. "/own/script.lua", "print('my script')\n")
    write(dir .. "/mine/epics/start.json", "{}\n")
    for _, c in ipairs { { "own", "own/script.lua" }, { "mine", "mine/epics/start.json" } } do
      local r = H.orket("init " .. c[1], { cwd = dir })
      assert.equal(1, r.status)
      assert.matches(c[2] .. " already exists, and init writes a file of that name: move it aside", r.stderr, 1, true)
      assert.not_matches("holds a project", r.stderr)
      assert.is_nil(H.read(dir .. "/" .. c[1] .. "/orket.lua"))
    end
    assert.equal("print('my script')\n", H.read(dir .. "/own/script.lua"))
    -- a link named orket.lua that leads nowhere is a project's name taken all the same
    assert(os.execute("ln -s /nonexistent " .. H.quote(dir .. "/own/orket.lua")))
    local r = H.orket("init own", { cwd = dir })
    assert.matches("own/orket.lua already exists: own already holds a project", r.stderr, 1, true)
  end)

  -- a project kept inside another repository (a monorepo, dotfiles): its `git add -A`
  -- committed .orket/ whole, the secrets' key beside the secrets
  it("keeps .orket/ out of a repository the project lies in, an older project's too", function()
    local dir = H.tmpdir()
    local function outer_adds()
      assert(os.execute("cd " .. H.quote(dir) .. " && git add -A 2>/dev/null"))
      local p = io.popen("cd " .. H.quote(dir) .. " && git diff --cached --name-only")
      local out = p:read("a")
      p:close()
      return out
    end
    assert(os.execute("cd " .. H.quote(dir) .. " && git init -q ."))
    assert.equal(0, H.orket("init x", { cwd = dir }).status)
    assert.equal(0, H.orket("secrets set TOKEN", { cwd = dir .. "/x", stdin = "s3cret" }).status)
    assert.truthy(H.read(dir .. "/x/.orket/secrets.key"))
    local added = outer_adds()
    assert.matches("x/orket.lua", added, 1, true)
    assert.is_nil(added:find(".orket/", 1, true), added)
    -- a .orket/ made before it had one gets it at the next command
    os.remove(dir .. "/x/.orket/.gitignore")
    assert(os.execute("cd " .. H.quote(dir) .. " && git reset -q"))
    assert.matches(".orket/", outer_adds(), 1, true)
    assert(os.execute("cd " .. H.quote(dir) .. " && git reset -q"))
    assert.equal(0, H.orket("board", { cwd = dir .. "/x" }).status)
    assert.is_nil(outer_adds():find(".orket/", 1, true))
  end)
end)

describe("orket validate", function()
  after_each(H.cleanup)

  it("reports every problem with its file and line, and exits 1", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    local p = dir .. "/p"
    local f = assert(io.open(p .. "/orket.lua", "ab"))
    f:write("budgets = { turns_per_card = 6, turn = 3 }\nteams = {}\n")
    f:close()
    os.execute("mkdir -p " .. H.quote(p .. "/roles") .. " " .. H.quote(p .. "/tools"))
    write(p .. "/roles/pilot.lua", 'return {\n  intent = "fly",\n  tools = { "read_file", "fly" },\n  system = "s",\n}\n')
    write(p .. "/roles/broken.lua", "return {\n  intent = 3 +\n}\n")
    write(p .. "/tools/bad.lua", "return { name = 'bad' }\n")
    write(p .. "/routing.lua", "return { worker = 3 }\n")
    write(p .. "/epics/e2.json", '{ "id": "E2", "issues": [ { "summary": "a", "depends_on": ["NOPE"] } ] }\n')
    write(p .. "/epics/e3.json", '{ "id": "E3",\n "issues": [\n { "summary": 5 } ] }\n')
    local r = H.orket("validate p", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    local out = r.stdout
    assert.matches("orket.lua:19: teams: unknown setting", out, 1, true)
    assert.matches("orket.lua:18: budgets.turn: unknown setting", out, 1, true)
    assert.matches("roles/broken.lua:3: unexpected symbol near '}'", out, 1, true)
    assert.matches('roles/pilot.lua:3: tools[2]: no tool named "fly"', out, 1, true)
    -- every missing field of the tool, not only the first
    assert.matches("tools/bad.lua: description must be a non-empty string", out, 1, true)
    assert.matches('tools/bad.lua: effect must be "read", "write", "board" or "process"', out, 1, true)
    assert.matches("tools/bad.lua: handler must be a function(args, ctx)", out, 1, true)
    assert.matches("routing.lua:1: worker must be a function", out, 1, true)
    assert.matches("epics/e3.json:3: issues[0].summary: must be a string", out, 1, true)
    assert.matches('epics/e2.json:1: issues[0].depends_on[0]: unknown card "NOPE"', out, 1, true)
    assert.matches("\n10 problems\n$", out)
  end)

  it("refuses fields it does not know, naming file, line and the nearest known field", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    local p = dir .. "/p"
    write(p .. "/epics/typo.json", '{ "id": "TY", "owner": "ana",\n "issues": [\n { "summary": "a",\n   "seet": "coder" },\n'
      .. ' { "summary": "b",\n   "depends_on ": ["TY-a"] } ] }\n')
    write(p .. "/epics/lua_typo.lua", 'return {\n  id = "LT",\n  issues = {\n    { summary = "c", prority = 2 },\n  },\n}\n')
    local r = H.orket("validate p", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("epics/typo.json:4: issues[0].seet: unknown field (an issue's fields: id, name, summary,", r.stdout, 1, true)
    assert.matches("verification); did you mean 'seat'?\n", r.stdout, 1, true)
    assert.matches('epics/typo.json:6: issues[1]["depends_on "]: unknown field (an issue\'s fields: id, name, summary,',
      r.stdout, 1, true)
    assert.matches("verification); did you mean 'depends_on'?\n", r.stdout, 1, true)
    -- nothing near "owner": no guess
    assert.matches("epics/typo%.json:1: owner: unknown field %(an epic's fields: [^\n]*cards%)\n", r.stdout)
    assert.matches("epics/lua_typo.lua:4: issues[1].prority: unknown field (an issue's fields: ", r.stdout, 1, true)
    assert.matches("did you mean 'priority'?", r.stdout, 1, true)
    assert.matches("\n4 problems\n$", r.stdout)
    -- import refuses too, naming the first with its line, and imports nothing
    local imp = H.orket("import", { cwd = p })
    assert.equal(1, imp.status, imp.stderr)
    assert.matches("^orket: epics/lua_typo%.lua:4: issues%[1%]%.prority: unknown field %(an issue's fields: ", imp.stderr)
    assert.matches("verification%); did you mean 'priority'%?\n$", imp.stderr)
    os.remove(p .. "/epics/lua_typo.lua")
    imp = H.orket("import", { cwd = p })
    assert.equal(1, imp.status, imp.stderr)
    assert.matches("^orket: epics/typo%.json:1: owner: unknown field %(an epic's fields: [^\n]*cards%) "
      .. '%(and 2 more unknown fields: issues%[0%]%.seet, issues%[1%]%["depends_on "%]; '
      .. "'orket validate' lists them%)\n$", imp.stderr)
    assert.is_nil(H.orket("board", { cwd = p }).stdout:find("TY", 1, true))
    -- orket.lua's settings and a role script's fields, by the same hint
    write(p .. "/orket.lua", H.read(p .. "/orket.lua") .. "concurency = 2\nserve = { cros = {} }\n")
    os.execute("mkdir -p " .. H.quote(p .. "/roles"))
    write(p .. "/roles/pilot.lua", 'return {\n  name = "pilot",\n  sytem = "fly",\n}\n')
    r = H.orket("validate p", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("orket.lua:%d+: concurency: unknown setting %(settings: [^\n]*%); did you mean 'concurrency'%?\n", r.stdout)
    assert.matches("orket.lua:%d+: serve%.cros: unknown setting %(known: cors, app_origin, projects, branding, trusted_proxies%); did you mean 'cors'%?\n", r.stdout)
    assert.matches("roles/pilot.lua:3: unknown field 'sytem' (fields: name, intent, tools, model, dialect, system, build); "
      .. "did you mean 'system'?\n", r.stdout, 1, true)
    imp = H.orket("models", { cwd = p })
    assert.matches("^orket: orket%.lua:%d+: concurency: unknown setting %(settings: [^\n]*%); did you mean 'concurrency'%?\n", imp.stderr)
  end)

  it("finds a card's field line when its keys are sorted (depends_on before id)", function()
    local dir = H.tmpdir()
    assert.equal(0, H.orket("init p", { cwd = dir }).status)
    local p = dir .. "/p"
    write(p .. "/epics/sorted.json", table.concat({
      '{', '  "id": "E",', '  "issues": [',
      '    {', '      "depends_on": ["E-b"],', '      "id": "E-a",', '      "summary": "a"', '    },',
      '    {', '      "depends_on": ["E-a"],', '      "id": "E-b",', '      "summary": "b"', '    },',
      '    {', '      "depends_on": ["E-nope"],', '      "id": "E-d",', '      "summary": "d"', '    }',
      '  ]', '}', '' }, "\n"))
    local r = H.orket("validate p", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("epics/sorted.json:10: issues[1].depends_on[0]: dependency cycle: E-a -> E-b -> E-a", r.stdout, 1, true)
    assert.matches('epics/sorted.json:15: issues[2].depends_on[0]: unknown card "E-nope"', r.stdout, 1, true)
  end)

  it("passes on the examples", function()
    for _, ex in ipairs { "notes", "ollama-notes" } do
      local r = H.orket("validate " .. H.quote(H.ROOT .. "/examples/" .. ex))
      assert.equal(0, r.status, ex .. ": " .. r.stdout .. r.stderr)
    end
  end)
end)
