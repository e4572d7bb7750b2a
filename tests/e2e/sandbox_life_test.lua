-- `orket sandbox up|list|logs|stop`: main's tree run as a service in a sandbox of its own
-- (every confinement layer, a network namespace with its own loopback), reached only
-- through the unix socket the runner relays to the app's port. Three at once on the same
-- port; health, the log and its rotation; a kill -9 of the owner; and what must fail
-- clearly: an app that never gets healthy, exits at once, listens on another port, or does
-- not exist. After each, the process table holds nothing of it. A node app (node is
-- installed for the tests); on PostgreSQL each project names a database of its own.
local H = require "tests.helpers"
local F = require "tests.fixtures"
local cjson = require "cjson"
local backends = require "tests.backends"
local proc = require "orket.c.proc"

local SERVER = [[
const http = require('http');
const net = require('net');
const mark = process.argv[2] || '';
const held = []; // /slow answers, ended by /release
if (process.env.NOISE) setInterval(() => process.stdout.write('x'.repeat(4000) + '\n'), 5);
console.log('listening on ' + process.env.HOST + ':' + process.env.PORT + ' ' + mark);
const s = http.createServer((req, res) => {
  if (req.url === '/out') {
    // beyond its own network: nothing answers, whatever the address
    const c = net.connect({ host: '1.1.1.1', port: 80 });
    c.on('connect', () => res.end('reached'));
    c.on('error', (e) => res.end('refused: ' + e.code));
    return;
  }
  if (req.url.startsWith('/echo')) {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      res.setHeader('Set-Cookie', 'orket_session=stolen');
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ url: req.url, method: req.method, body: body,
        authorization: req.headers.authorization || null, cookie: req.headers.cookie || null }));
    });
    return;
  }
  if (req.url === '/big') return res.end('y'.repeat(20 * 1024 * 1024));
  if (req.url.startsWith('/file/')) {
    // a file of the tree it runs in, or "missing"
    try { return res.end(require('fs').readFileSync(req.url.slice(6))); } catch (e) { return res.end('missing'); }
  }
  if (req.url === '/slowlen') {
    // as /slow, its length given first
    res.writeHead(200, { 'Content-Length': '9' });
    res.write('first');
    held.push(res);
    return;
  }
  if (req.url === '/slow') {
    res.write('first');
    held.push(res);
    return;
  }
  if (req.url === '/release') {
    held.splice(0).forEach((r) => r.end('last'));
    return res.end('released');
  }
  if (req.url === '/fork') {
    require('child_process').spawn('sleep', ['3600', mark], { detached: true, stdio: 'ignore' }).unref();
    return res.end('forked');
  }
  res.end('hello from ' + mark + ' on ' + process.env.PORT);
});
const port = process.env.WRONG_PORT || process.env.PORT;
if (!process.env.NO_LISTEN) s.listen(Number(port), '127.0.0.1');
else setInterval(() => {}, 1000);
]]

local function offered()
  local p = proc.probe()
  return p.netns and p.userns and os.execute("command -v node >/dev/null 2>&1")
end

local function project(mark, extra)
  local dir = H.tmpdir() .. "/p"
  local r = H.orket("init " .. H.quote(dir))
  assert.equal(0, r.status, r.stderr)
  H.write(dir .. "/workspace/server.js", SERVER)
  H.commit_main(dir, "the app")
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format(
    '\nsandbox = { command = { "node", "server.js", %q }, health = { http = "/health", interval_ms = 200, '
    .. 'timeout_ms = 1000, failures = 2, start_timeout_ms = %d }%s }\n', mark, extra and extra.start_ms or 15000,
    extra and extra.more or ""))
  backends.project(dir)
  return dir
end

-- the processes whose command line holds mark (the app, anything it started, the runner's
-- helper and the PID namespace's first process); with apps, only the apps themselves
local function procs(mark, apps)
  local out = {}
  local p = io.popen("ps -eo pid=,args=")
  for line in p:lines() do
    if line:find(mark, 1, true) and not line:find("ps -eo", 1, true)
        and (not apps or line:match("^%s*%d+ node server%.js")) then
      out[#out + 1] = line
    end
  end
  p:close()
  return out
end

local get, list = F.sandbox_request, F.sandbox_list

local function mark() return "sbx" .. math.random(1, 1e9) end

-- started() -> mark, dir, the command's result: a new project whose sandbox `up --detach` started
local function started()
  local m = mark()
  local dir = project(m)
  local r = H.orket("sandbox up --detach", { cwd = dir })
  assert.equal(0, r.status, r.stdout .. r.stderr)
  return m, dir, r
end

-- served() -> mark, dir, an operator's key, the server, the id of the sandbox it started
local function served()
  local m = mark()
  local dir = project(m)
  local op = H.api_key(dir, "op", "operator")
  local s = H.serve(dir)
  local st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
  assert.equal(201, st, text)
  return m, dir, op, s, math.tointeger(doc.sandbox.id)
end

-- share(a, b): the folder b's store made the folder a's (on PostgreSQL b's orket.lua names
-- a's database; on SQLite b's store is a link to a's file)
local function share(a, b)
  if backends.name() == "pg" then
    local url = assert(H.read(a .. "/orket.lua"):match('\nstore = { url = ("[^\n]-") }\n'))
    local text, n = H.read(b .. "/orket.lua"):gsub('\nstore = { url = "[^\n]-" }\n', function()
      return "\nstore = { url = " .. url .. " }\n"
    end)
    assert.equal(1, n)
    H.write(b .. "/orket.lua", text)
  else
    for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(b .. "/.orket/orket.db" .. suffix) end
    assert(require("luv").fs_symlink(a .. "/.orket/orket.db", b .. "/.orket/orket.db"))
  end
end

describe("orket sandbox up", function()
  local skip
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or node is missing" end
  end)
  after_each(function()
    H.kill_servers() -- (the servers of a test that failed half-way)
    H.cleanup()
  end)

  it("runs main's tree at a commit, never a person's edits in workspace/", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = project(m)
    local function head()
      local p = io.popen("git -C " .. H.quote(dir .. "/workspace") .. " rev-parse main")
      local id = p:read("l")
      p:close()
      return id
    end
    H.write(dir .. "/workspace/hello.txt", "main's first\n")
    H.commit_main(dir, "hello")
    local first = head()
    H.write(dir .. "/workspace/hello.txt", "main's second\n")
    H.commit_main(dir, "hello again")
    local second = head()
    -- a person's edit and a new file in main's view, neither committed
    H.write(dir .. "/workspace/hello.txt", "a person's draft\n")
    H.write(dir .. "/workspace/draft.txt", "not main's\n")
    local r = H.orket("sandbox plan --json", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.equal(second, cjson.decode(r.stdout).commit)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("commit " .. second, r.stdout, 1, true)
    local row = list(dir)[1]
    assert.equal(second, row.commit)
    assert.equal("main's second\n", select(2, get(row.socket, "/file/hello.txt")))
    assert.equal("missing", select(2, get(row.socket, "/file/draft.txt")))
    assert.equal("missing", select(2, get(row.socket, "/file/.git/HEAD")))
    -- the text list names the commit too
    r = H.orket("sandbox list", { cwd = dir })
    assert.matches(second:sub(1, 7), r.stdout, 1, true)
    -- an earlier commit, named
    r = H.orket("sandbox up --detach --replace --commit " .. first, { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    row = list(dir)[1]
    assert.equal(first, row.commit)
    assert.equal("main's first\n", select(2, get(row.socket, "/file/hello.txt")))
    -- the journal names it
    local db = assert(require("orket.project").open_store(dir, false))
    local starts = {}
    for _, e in ipairs(db:events { after = 0, limit = 1000 }) do
      if e.kind == "sandbox_start" then starts[#starts + 1] = e.data.commit end
    end
    db:close()
    assert.same({ second, first }, starts)
    -- the person's edit is theirs still
    assert.equal("a person's draft\n", H.read(dir .. "/workspace/hello.txt"))
    -- a commit that is not there is a clear error
    r = H.orket("sandbox up --detach --commit " .. string.rep("0", 40), { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("no commit", r.stderr, 1, true)
    -- a person's branch in workspace/ is not main's: refused, nothing started as main's
    local ws = H.quote(dir .. "/workspace")
    assert(os.execute("git -C " .. ws .. " branch -q mine main && git -C " .. ws .. " worktree add -q "
      .. H.quote(dir .. "/mine") .. " mine && echo off > " .. H.quote(dir .. "/mine/off.txt") .. " && git -C "
      .. H.quote(dir .. "/mine") .. " add off.txt && git -C " .. H.quote(dir .. "/mine")
      .. " -c user.name=p -c user.email=p@p commit -qm off && git -C " .. ws .. " worktree remove --force "
      .. H.quote(dir .. "/mine")))
    r = H.orket("sandbox up --detach --replace --commit mine", { cwd = dir })
    assert.equal(1, r.status, r.stdout .. r.stderr)
    assert.matches("mine is not a commit of main's history", r.stderr, 1, true)
    assert.equal(first, list(dir)[1].commit)
    r = H.orket("sandbox stop " .. math.tointeger(row.id), { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    H.wait_for(function() return #procs(m) == 0 end, "the sandbox's processes to end")
  end)

  -- the line said "orket sandbox stop N": no -C for a project named with one, and "orket",
  -- which need not be on PATH
  it("says how to stop a detached sandbox with a line that runs as printed, -C and binary included", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = project(m)
    local parent = dir:match("^(.*)/p$")
    local r = H.orket("-C p sandbox up --detach", { cwd = parent })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local stop = r.stdout:match("\nstop it: ([^\n]+)\n")
    assert.equal(require("orket.cli").shell_quote(H.BIN) .. " sandbox stop 1 -C p", stop)
    assert.is_true(os.execute("cd " .. H.quote(parent) .. " && " .. stop .. " >/dev/null 2>&1"))
    assert.same({}, list(dir))
    H.wait_for(function() return #procs(m) == 0 end, "the sandbox's processes to end")
  end)

  it("serves main's tree through its socket until stopped, with its log, and leaves nothing running", function()
    if skip then return pending(skip) end
    local m, dir, r = started()
    assert.matches("sandbox 1 is healthy", r.stdout, 1, true)
    local rows = list(dir)
    assert.equal(1, #rows)
    assert.equal("healthy", rows[1].status)
    assert.equal(8080, rows[1].port)
    local status, body = get(rows[1].socket)
    assert.equal(200, status, body)
    assert.equal("hello from " .. m .. " on 8080", body)
    -- nothing listens on the host: the app's port is its namespace's alone
    assert.is_nil((get(rows[1].socket:gsub("app%.sock$", "nothing.sock"))))
    -- beyond its own network nothing answers
    status, body = get(rows[1].socket, "/out")
    assert.equal(200, status)
    assert.matches("^refused", body)
    -- a daemon it forks goes with it
    assert.equal("forked", select(2, get(rows[1].socket, "/fork")))
    r = H.orket("sandbox logs 1", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    assert.matches("listening on 127.0.0.1:8080 " .. m, r.stdout, 1, true)
    r = H.orket("sandbox stop 1", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local all = list(dir, true)
    assert.equal("stopped", all[1].status)
    assert.same({}, list(dir))
    H.wait_for(function() return #procs(m) == 0 end, "the sandbox's processes to end")
    assert.is_nil(io.open(rows[1].socket))
    -- the journal says what happened
    local db = assert(require("orket.project").open_store(dir, false))
    local kinds = {}
    for _, e in ipairs(db:events { after = 0, limit = 1000 }) do
      if e.kind:match("^sandbox_") then kinds[#kinds + 1] = e.kind end
    end
    db:close()
    assert.same({ "sandbox_start", "sandbox_healthy", "sandbox_stop" }, kinds)
    -- stopping again, or a sandbox that never was, is a clear error
    r = H.orket("sandbox stop 1", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("sandbox 1 is stopped already", r.stderr, 1, true)
    r = H.orket("sandbox stop 9", { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("sandbox 9: no such sandbox", r.stderr, 1, true)
    r = H.orket("sandbox stop x", { cwd = dir })
    assert.equal(2, r.status)
    assert.matches("needs a sandbox id", r.stderr, 1, true)
  end)

  it("keeps a restore from orphaning it, and never gives its id again after a restore", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = project(m)
    local bak = H.tmpdir() .. "/before.bak"
    local r = H.orket("backup " .. H.quote(bak), { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("sandbox 1 is healthy", r.stdout, 1, true)
    -- refused while it runs, naming it and how to stop it; nothing changed
    r = H.orket("restore " .. H.quote(bak), { cwd = dir })
    assert.equal(1, r.status)
    assert.matches("restore: sandbox 1 (main, healthy) of this project is running; stop it first: "
      .. "orket sandbox stop 1 (the store was not changed)", r.stderr, 1, true)
    assert.equal(1, #list(dir))
    -- on a terminal, the hint under it is how to find and stop sandboxes, not the
    -- store's "retry" of a locked database
    H.write(dir .. "/steps", "expect hint: \n")
    local p = io.popen(string.format("cd %s && env NO_COLOR=1 TERM=xterm %s -t 30 -- %s restore %s <steps 2>&1",
      H.quote(dir), H.quote((H.BIN:gsub("orket$", "ptydrive"))), H.quote(H.BIN), H.quote(bak)))
    local out = p:read("a")
    p:close()
    assert.matches("hint: `orket sandbox list` shows the project's sandboxes; stop each with `orket sandbox stop ID`",
      out, 1, true)
    assert.not_matches("retry", out, 1, true)
    assert.equal(1, #list(dir))
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    r = H.orket("restore " .. H.quote(bak), { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    -- the restored store never knew sandbox 1; its directory (the log) is still there
    assert.same({}, list(dir, true))
    r = H.orket("sandbox up --detach", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("sandbox 2 is healthy", r.stdout, 1, true)
    local all = list(dir, true)
    assert.equal(2, #all)
    assert.equal("exited", all[2].status)
    assert.matches("its id was taken before the store was restored", all[2].detail, 1, true)
    assert.equal(0, H.orket("sandbox stop 2", { cwd = dir }).status)
    H.wait_for(function() return #procs(m) == 0 end, "the sandbox's processes to end")
  end)

  it("stops a sandbox whose project was removed, leaving nothing running", function()
    if skip then return pending(skip) end
    local m, dir = started()
    assert.truthy(#procs(m) > 0)
    os.execute("rm -rf " .. H.quote(dir))
    H.wait_for(function() return #procs(m) == 0 end, "the sandbox's processes to end")
  end)

  it("runs three at once, each on its own loopback, and a kill -9 of an owner ends its sandbox", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = project(m)
    for i = 1, 3 do
      local r = H.orket("sandbox up -d", { cwd = dir })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("sandbox " .. i .. " is healthy", r.stdout, 1, true)
    end
    local rows = list(dir)
    assert.equal(3, #rows)
    local ports = {}
    for _, row in ipairs(rows) do
      assert.equal("healthy", row.status)
      local status, body = get(row.socket)
      assert.equal(200, status)
      assert.equal("hello from " .. m .. " on " .. math.tointeger(row.port), body)
      ports[row.port] = true
    end
    assert.equal(3, #procs(m, true))
    -- each row names its owner's machine (this one), and each owner, the background `up`,
    -- holds its lock in the sandbox's directory (seen held from this other process)
    local lockfile = require "orket.c.lockfile"
    local pidstart = require "orket.sandboxes.pidstart"
    local function lock_of(id) return dir .. "/.orket/sandboxes/" .. math.tointeger(id) .. "/owner.lock" end
    for _, row in ipairs(rows) do
      assert.equal(pidstart.host, row.machine)
      assert.is_false(row.elsewhere)
      local held, holder = lockfile.probe(lock_of(row.id))
      assert.is_true(held)
      assert.equal(math.tointeger(row.owner_pid), holder)
    end
    -- the owner of sandbox 2 is killed: its app goes with it, and the next look says so
    os.execute("kill -9 " .. math.tointeger(rows[2].owner_pid))
    H.wait_for(function() return #procs(m, true) == 2 end, "sandbox 2's app to end with its owner")
    assert.is_false(lockfile.probe(lock_of(2)))
    local now = list(dir)
    assert.equal(2, #now)
    local all = list(dir, true)
    for _, row in ipairs(all) do
      if row.id == 2 then
        assert.equal("exited", row.status)
        assert.matches("its owner %(pid %d+%) ended", row.detail)
      end
    end
    -- its copy of the tree and its sockets are removed by that look; its log stays
    assert.is_nil(require("luv").fs_stat(dir .. "/.orket/sandboxes/2/tree"))
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/2/app.sock"))
    assert.is_nil(require("luv").fs_lstat(dir .. "/.orket/sandboxes/2/app.sock.probe"))
    assert.truthy(io.open(dir .. "/.orket/sandboxes/2/app.log"))
    for _, row in ipairs(now) do assert.equal(0, H.orket("sandbox stop " .. math.tointeger(row.id), { cwd = dir }).status) end
    H.wait_for(function() return #procs(m) == 0 end, "every sandbox's processes to end: " .. table.concat(procs(m), " | "))
  end)

  -- A container restarted on this host: its owner ran in a pid namespace of its own (same
  -- host name and boot), so its pid means nothing here; the lock it held in the sandbox's
  -- directory, dropped with it, says it ended. Its row once stayed "live on another machine".
  it("ends a sandbox whose owner ran in another pid namespace, a container's, once that owner is gone", function()
    if skip then return pending(skip) end
    -- root makes the pid namespace alone: in a user namespace of its own, root is no longer
    -- let past the permissions of what other users own (the test's PostgreSQL socket)
    local root = select(2, H.sh("id -u")):match("^0%s*$") ~= nil
    local unshare = "unshare " .. (root and "" or "--user --map-root-user ") .. "--pid --fork --kill-child"
    if os.execute(unshare .. " true >/dev/null 2>&1") ~= true then
      return pending("this user may not make a pid namespace here (unshare)")
    end
    local m = mark()
    local dir = project(m)
    local out = dir .. "/ns-up.out"
    local p = io.popen(string.format("cd %s && { %s %s sandbox up >%s 2>&1 & echo $!; }", H.quote(dir), unshare,
      H.quote(H.BIN), H.quote(out)))
    local pid = math.tointeger(tonumber(p:read("l")))
    finally(function()
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      p:close()
    end)
    H.wait_for(function() return (H.read(out) or ""):find("is healthy", 1, true) end,
      "the sandbox in the other pid namespace to be healthy: " .. tostring(H.read(out)), 600)
    local rows = list(dir)
    assert.equal(1, #rows)
    assert.equal("healthy", rows[1].status)
    assert.is_true(rows[1].elsewhere) -- (its pid is that namespace's)
    local r = H.orket("sandbox list", { cwd = dir })
    assert.matches("(live in another container or pid namespace on this host: ", r.stdout, 1, true)
    -- the container goes, and its owner with it
    os.execute("kill -9 " .. pid)
    H.wait_for(function() return #procs(m) == 0 end, "its sandbox to end with its owner")
    assert.equal(0, #list(dir))
    local all = list(dir, true)
    assert.equal("exited", all[1].status)
    assert.matches("its owner %(pid %d+%) ended", all[1].detail)
    assert.is_nil(require("luv").fs_stat(dir .. "/.orket/sandboxes/1/tree"))
  end)

  -- One store shared by two folders (one PostgreSQL database, or, on SQLite, the second
  -- folder's store a link to the first's file) holds the sandboxes of both: a deploy in one
  -- folder (--replace) stopped the live sandboxes of its target in the other folder too.
  it("replaces on --replace only its own folder's sandboxes of a store another folder shares", function()
    if skip then return pending(skip) end
    local ma, mb = mark(), mark()
    local a, b = project(ma), project(mb)
    share(a, b)
    local function up(dir, id, extra)
      local r = H.orket("sandbox up -d" .. (extra or ""), { cwd = dir })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("sandbox " .. id .. " is healthy", r.stdout, 1, true)
    end
    up(a, 1)
    up(b, 2)
    up(b, 3, " --replace")
    -- b's own sandbox made way; a's runs on, and answers
    local status = {}
    for _, row in ipairs(list(a, true)) do status[math.tointeger(row.id)] = row.status end
    assert.same({ "healthy", "stopped", "healthy" }, status)
    local code, body = get(a .. "/.orket/sandboxes/1/app.sock", "/")
    assert.equal(200, code)
    assert.matches("hello from " .. ma, body, 1, true)
    for _, id in ipairs { 1, 3 } do
      assert.equal(0, H.orket("sandbox stop " .. id, { cwd = id == 1 and a or b }).status)
    end
    H.wait_for(function() return #procs(ma) + #procs(mb) == 0 end, "every sandbox's processes to end")
  end)

  -- The agents' sandbox tools and `orket sandbox check` took the newest live sandbox of
  -- main in the store: with a store two folders share, the other folder's when its id was
  -- higher, or when this folder had none.
  it("gives the agents' tools and `orket sandbox check` only their own folder's sandbox of a shared store", function()
    if skip then return pending(skip) end
    local ma, mb = mark(), mark()
    local a, b = project(ma), project(mb)
    share(a, b)
    -- the sandbox the agents' tools of folder dir reach -> its id | the error's code
    local script = H.tmpdir() .. "/tool.lua"
    H.write(script, [=[
local dir = ...
local db = assert(require("orket.project").open_store(dir, false))
local out = require("orket.engine.sandboxtool").run({ db = db, project_dir = dir }, "E-1", "sandbox_status",
  { op = "status" })
io.stdout:write(out.ok and ("sandbox " .. math.tointeger(out.result.sandbox)) or out.code, "\n")
]=])
    local function reached(dir)
      local r = H.orket("lua " .. H.quote(script) .. " " .. H.quote(dir), { cwd = dir })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      return (r.stdout:gsub("\n$", ""))
    end
    local function up(dir, id)
      local r = H.orket("sandbox up -d", { cwd = dir })
      assert.equal(0, r.status, r.stdout .. r.stderr)
      assert.matches("sandbox " .. id .. " is healthy", r.stdout, 1, true)
    end
    up(b, 1)
    -- a has none: neither reaches b's
    assert.equal("ENOSANDBOX", reached(a))
    local r = H.orket("sandbox check", { cwd = a })
    assert.equal(1, r.status)
    assert.matches("no healthy sandbox of main in this folder", r.stderr, 1, true)
    -- and says why none while the store shows one
    assert.matches("; sandbox 1 runs in another folder sharing this store (" .. require("luv").fs_realpath(b)
      .. "), not this one (orket sandbox up starts one here)", r.stderr, 1, true)
    up(a, 2)
    assert.equal("sandbox 2", reached(a))
    assert.equal("sandbox 1", reached(b))
    for _, id in ipairs { 1, 2 } do
      assert.equal(0, H.orket("sandbox stop " .. id, { cwd = id == 2 and a or b }).status)
    end
    H.wait_for(function() return #procs(ma) + #procs(mb) == 0 end, "every sandbox's processes to end")
  end)

  -- A row was inserted with no socket, written only after its transaction: a deploy of
  -- another folder reading it meanwhile could not tell its folder, and counted it as its own.
  it("names a sandbox's folder in its row from the row's first moment in the store", function()
    if skip then return pending(skip) end
    local dir = project(mark())
    local real = require("luv").fs_realpath(dir)
    -- the first thing a start does once its row is there: the row is read then from
    -- another connection, and the process ends
    local script = H.tmpdir() .. "/start.lua"
    H.write(script, string.format([=[
local service = require "orket.sandboxes.service"
service.sockets = function(row)
  local id = assert(tonumber(row.socket:match("/(%%d+)/app%%.sock$")))
  local db = assert(require("orket.project").open_store(%q, false))
  io.stdout:write("socket [", tostring(require("orket.store.sandboxes").get(db, id).socket), "]\n")
  io.stdout:flush()
  os.exit(0)
end
os.exit(require("orket.cli").main({ "sandbox", "up", "-C", %q }))
]=], dir, dir))
    local r = H.orket("lua " .. H.quote(script), { cwd = dir, wrap = "timeout 60" })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    assert.matches("socket [" .. real .. "/.orket/sandboxes/1/app.sock]", r.stdout, 1, true)
  end)

  it("a server killed with its sandbox and started again shows the sandbox ended, never healthy behind a 502", function()
    if skip then return pending(skip) end
    local m, dir, op, s, id = served()
    local st, doc
    -- killed: nothing records the end of the sandbox it owned, which dies with it
    assert.equal(137, s.kill())
    H.wait_for(function() return #procs(m) == 0 end, "its sandbox to end with it")
    for _, f in ipairs { "serve.rc", "serve.out", "serve.pid" } do os.remove(dir .. "/" .. f) end
    local s2 = H.serve(dir)
    local mst, mtext = H.fetch { url = s2.url .. "/metrics", headers = { "Authorization: Bearer " .. op }, total_timeout_ms = 10000 }
    assert.equal(200, mst)
    assert.matches('orket_sandboxes{status="healthy"} 0\n', mtext, 1, true)
    st, doc = H.api(s2, "GET", "/v1/sandboxes/" .. id, op)
    assert.equal(200, st)
    assert.equal("exited", doc.sandbox.status)
    assert.matches("its owner %(pid %d+%) ended", doc.sandbox.detail)
    st = H.fetch { url = s2.url .. "/v1/sandboxes/" .. id .. "/app/", headers = { "Authorization: Bearer " .. op },
      total_timeout_ms = 10000 }
    assert.equal(409, st)
    -- one whose owner dies while this server runs reads ended at the next look at it alone
    local r = H.orket("sandbox up -d", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    st, doc = H.api(s2, "GET", "/v1/sandboxes/" .. (id + 1), op)
    assert.equal("healthy", doc.sandbox.status)
    os.execute("kill -9 " .. math.tointeger(doc.sandbox.owner_pid))
    H.wait_for(function() return #procs(m) == 0 end, "the second sandbox to end with its owner")
    -- (its app can be gone a moment before the killed owner's last thread lets go of its
    -- lock: the kernel signals the helper when the forking thread exits; a look after that
    -- reads it ended)
    H.wait_for(function()
      st, doc = H.api(s2, "GET", "/v1/sandboxes/" .. (id + 1), op)
      return doc.sandbox.status ~= "healthy"
    end, "the second sandbox read ended", 3000)
    assert.equal("exited", doc.sandbox.status)
    assert.equal(0, s2.stop())
  end)

  it("fails clearly, with the log's tail, when the app never gets healthy, exits, or is not there", function()
    if skip then return pending(skip) end
    local m = mark()
    -- listens on another port than its own: never healthy
    -- (time enough for node to start and say so on a loaded machine)
    local dir = project(m, { start_ms = 5000, more = ', env = { WRONG_PORT = "9999" }' })
    local r = H.orket("sandbox up", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("not healthy within 5000 ms", r.stderr, 1, true)
    -- why, in words: nothing takes a connection on its port (not libcurl's empty reply)
    assert.matches("GET /health: nothing listens on the app's port (", r.stderr, 1, true)
    assert.matches("listening on 127.0.0.1:8080 " .. m, r.stderr, 1, true) -- the log's tail
    assert.equal("exited", list(dir, true)[1].status)
    H.wait_for(function() return #procs(m) == 0 end, "the unhealthy app to be stopped")
    -- exits at once
    dir = project(m, { more = ', env = { NO_LISTEN = "1" }' })
    H.write(dir .. "/workspace/server.js", "console.error('no config for " .. m .. "'); process.exit(3)\n")
    H.commit_main(dir, "an app that exits")
    r = H.orket("sandbox up", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("the app exited %(status 3%) before it was healthy", r.stderr)
    assert.matches("no config for " .. m, r.stderr, 1, true)
    -- in the background too: what cannot run is said at once, and a start that fails says why
    local plain = project(m)
    os.remove(plain .. "/workspace/server.js")
    H.commit_main(plain, "nothing to run")
    H.write(plain .. "/orket.lua", H.read(plain .. "/orket.lua") .. "\nsandbox = {}\n")
    local t0 = require("luv").now()
    r = H.orket("sandbox up -d", { cwd = plain })
    assert.equal(1, r.status, r.stdout)
    assert.matches("nothing to run in main's tree", r.stderr, 1, true)
    assert.is_true(require("luv").now() - t0 < 10000)
    dir = project(m, { more = ', env = { NO_LISTEN = "1" }' })
    H.write(dir .. "/workspace/server.js", "console.error('no config for " .. m .. "'); process.exit(3)\n")
    H.commit_main(dir, "an app that exits")
    r = H.orket("sandbox up -d", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("sandbox 1 exited: .*the app exited %(status 3%) before it was healthy", r.stderr)
    -- said once, with the app's last lines, as in the foreground
    assert.matches("sandbox 1 exited: the app exited", r.stderr, 1, true)
    assert.matches("the app's last output:\nno config for " .. m, r.stderr, 1, true)
    -- a command that leaves the app in the background and returns 0: said what to change
    dir = project(m, { more = ', env = { NO_LISTEN = "1" }' })
    H.write(dir .. "/workspace/server.js", "console.log('daemonized " .. m .. "'); process.exit(0)\n")
    H.commit_main(dir, "an app that goes to the background")
    r = H.orket("sandbox up -d", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("the app exited (status 0) before it was healthy; the command must stay in the foreground",
      r.stderr, 1, true)
    -- a command that does not exist
    dir = project(m)
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. '\nsandbox = { command = { "no-such-program-' .. m
      .. '" } }\n')
    r = H.orket("sandbox up", { cwd = dir })
    assert.equal(1, r.status, r.stdout)
    assert.matches("no%-such%-program", r.stderr)
    H.wait_for(function() return #procs(m) == 0 end, "nothing left running")
  end)

  it("rotates a log the app fills, and logs --follow ends with the sandbox", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = project(m, { more = ', env = { NOISE = "1" }, log_max_bytes = 65536, log_keep = 2' })
    local r = H.orket("sandbox up -d", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    local home = dir .. "/.orket/sandboxes/1/"
    H.wait_for(function() return io.open(home .. "app.log.2") end, "the log to rotate twice", 2000)
    local f = assert(io.open(home .. "app.log"))
    assert.is_true(f:seek("end") <= 65536)
    f:close()
    assert.is_nil(io.open(home .. "app.log.3"))
    assert.equal(0, H.orket("sandbox stop 1", { cwd = dir }).status)
    r = H.orket("sandbox logs 1 --follow", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    H.wait_for(function() return #procs(m) == 0 end, "nothing left running")
  end)
end)

-- served() -> mark, server, operator key, viewer key, the app's path: a server that started
-- a sandbox of a new project
local function served()
  local m = mark()
  local dir = project(m)
  local op = H.api_key(dir, "op", "operator")
  local viewer = H.api_key(dir, "v", "viewer")
  local s = H.serve(dir)
  local st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
  assert.equal(201, st, text)
  return m, s, op, viewer, "/v1/sandboxes/" .. math.tointeger(doc.sandbox.id) .. "/app"
end

describe("orket serve's sandbox routes", function()
  local skip
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or node is missing" end
  end)
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("start, list, read the log, stop and restart with keys; the server's own stop when it ends", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = project(m)
    local op = H.api_key(dir, "op", "operator")
    local viewer = H.api_key(dir, "v", "viewer")
    -- one stream per key: a log followed counts among a key's streams (docs/serve.md, "Limits")
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "max_streams_per_key=1" } })
    -- a viewer reads, an operator starts and stops; nobody without a key
    local st = H.api(s, "POST", "/v1/sandboxes", nil, {})
    assert.equal(401, st)
    st = H.api(s, "POST", "/v1/sandboxes", viewer, {})
    assert.equal(403, st)
    local doc, text
    st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
    assert.equal(201, st, text)
    assert.equal("healthy", doc.sandbox.status)
    local id = math.tointeger(doc.sandbox.id)
    local status, body = get(doc.sandbox.socket)
    assert.equal(200, status)
    assert.equal("hello from " .. m .. " on 8080", body)
    st, doc = H.api(s, "GET", "/v1/sandboxes", viewer)
    assert.equal(200, st)
    assert.equal(1, #doc.sandboxes)
    -- this machine's, the server its owner (its lock held in the server's process)
    assert.equal(require("orket.sandboxes.pidstart").host, doc.sandboxes[1].machine)
    assert.is_false(doc.sandboxes[1].elsewhere)
    assert.equal(s.pid, select(2, require("orket.c.lockfile").probe(dir .. "/.orket/sandboxes/" .. id .. "/owner.lock")))
    st, doc = H.api(s, "GET", "/v1/sandboxes/" .. id .. "/logs", viewer)
    assert.equal(200, st)
    assert.matches("listening on 127.0.0.1:8080 " .. m, doc.log, 1, true)
    assert.is_false(doc.truncated)
    st = H.api(s, "GET", "/v1/sandboxes/99", viewer)
    assert.equal(404, st)
    -- /metrics counts it, with its uptime; promtool accepts the text where it is installed
    local mst, mtext = H.fetch { url = s.url .. "/metrics", headers = { "Authorization: Bearer " .. viewer },
      total_timeout_ms = 10000 }
    assert.equal(200, mst)
    assert.matches('orket_sandboxes{status="healthy"} 1\n', mtext, 1, true)
    assert.matches('orket_sandbox_uptime_seconds{id="' .. id .. '"} %d', mtext)
    if os.execute("command -v promtool >/dev/null 2>&1") then
      H.write(dir .. "/metrics.txt", mtext)
      local pt = io.popen("promtool check metrics < " .. H.quote(dir .. "/metrics.txt") .. " 2>&1; echo rc=$?")
      local out = pt:read("a")
      pt:close()
      assert.matches("rc=0", out, 1, true)
    end
    -- the app through the server: a viewer reads it, the key and cookies stay here, the
    -- app's cookies too, and what it serves is an origin of its own
    local fetch = function(method, path, key, body2)
      return H.fetch { url = s.url .. path, method = method, body = body2,
        headers = { "Authorization: Bearer " .. key, "Cookie: orket_session=mine", "Content-Type: text/plain" },
        total_timeout_ms = 20000 }
    end
    local pst, ptext, phead = fetch("GET", "/v1/sandboxes/" .. id .. "/app/", viewer)
    assert.equal(200, pst, ptext)
    assert.equal("hello from " .. m .. " on 8080", ptext)
    pst, ptext, phead = fetch("GET", "/v1/sandboxes/" .. id .. "/app/echo/a%20b?x=1%262", viewer)
    assert.equal(200, pst, ptext)
    local echo = cjson.decode(ptext)
    assert.equal("/echo/a%20b?x=1%262", echo.url)
    -- the query as sent: a name twice, one without "=", an empty pair, "+" (rebuilt from
    -- the parsed names it was "=&a=1&b=&c=%20%20")
    pst, ptext = fetch("GET", "/v1/sandboxes/" .. id .. "/app/echo?a=1&a=2&b&&c=%20+", viewer)
    assert.equal(200, pst, ptext)
    assert.equal("/echo?a=1&a=2&b&&c=%20+", cjson.decode(ptext).url)
    assert.equal(cjson.null, echo.authorization)
    assert.equal(cjson.null, echo.cookie)
    local hs = {}
    for k, v in pairs(phead) do hs[tostring(k):lower()] = v end
    assert.is_nil(hs["set-cookie"])
    assert.matches("^sandbox", hs["content-security-policy"])
    assert.equal(tostring(id), hs["x-orket-sandbox"]) -- the sandbox's own lines, whichever answered before
    assert.equal("nosniff", hs["x-content-type-options"])
    assert.equal("application/json", hs["content-type"])
    pst, ptext = fetch("GET", "/v1/sandboxes/" .. id .. "/app/big", viewer)
    assert.equal(200, pst)
    assert.equal(20 * 1024 * 1024, #ptext) -- streamed through whole
    pst = fetch("POST", "/v1/sandboxes/" .. id .. "/app/echo", viewer, "x")
    assert.equal(403, pst) -- writing to the app is an operator's
    pst, ptext = fetch("POST", "/v1/sandboxes/" .. id .. "/app/echo", op, "posted")
    assert.equal(200, pst, ptext)
    assert.equal("posted", cjson.decode(ptext).body)
    assert.equal("POST", cjson.decode(ptext).method)
    pst = fetch("GET", "/v1/sandboxes/" .. id .. "/app/%2e%2e/%2e%2e/keys", viewer)
    assert.equal(400, pst)
    pst = fetch("GET", "/v1/sandboxes/77/app/", viewer)
    assert.equal(404, pst)
    assert.equal(401, (H.fetch { url = s.url .. "/v1/sandboxes/" .. id .. "/app/", total_timeout_ms = 5000 }))
    -- the CLI sees the server's sandbox, and the server owns it
    local rows = list(dir)
    assert.equal(1, #rows)
    assert.equal(s.pid, math.tointeger(rows[1].owner_pid))
    -- a log of blank lines (the app's to write) followed: every line an event, and the
    -- server answers others meanwhile (its lines once split by copying the rest at each
    -- one: 64 KiB of newlines held the loop for seconds)
    local logf = assert(io.open(dir .. "/.orket/sandboxes/" .. id .. "/app.log", "a"))
    logf:write(("\n"):rep(60000), "after the blank lines " .. m .. "\n")
    logf:close()
    local blanks = H.stream { url = s.url .. "/v1/sandboxes/" .. id .. "/logs?follow=1",
      headers = { "Authorization: Bearer " .. viewer }, total_timeout_ms = 60000 }
    assert.equal(200, blanks.status)
    assert.equal(200, (H.fetch { url = s.url .. "/health", total_timeout_ms = 5000 }))
    H.wait_for(function() return blanks.text():find("after the blank lines " .. m, 1, true) end,
      "the line after the blanks", 20000)
    local _, nblank = blanks.text():gsub("event: log\ndata: \n\n", "")
    assert.is_true(nblank >= 60000 - 4096, tostring(nblank)) -- the tail's blank lines (64 KiB of the log)
    blanks.close()
    -- the log followed live: what the app writes next arrives as an event, and the
    -- stream ends with the sandbox
    -- (the key's one stream is free again once the server sees the last one's client gone)
    local follow
    H.wait_for(function()
      local f = H.stream { url = s.url .. "/v1/sandboxes/" .. id .. "/logs?follow=1",
        headers = { "Authorization: Bearer " .. viewer }, total_timeout_ms = 60000 }
      if f.status == 200 then follow = f return true end
      f.close()
    end, "the key's stream slot back", 5000)
    H.wait_for(function() return follow.text():find("listening on 127.0.0.1:8080 " .. m, 1, true) end,
      "the log's tail as an event")
    local again = H.stream { url = s.url .. "/v1/sandboxes/" .. id .. "/logs?follow=1",
      headers = { "Authorization: Bearer " .. viewer }, total_timeout_ms = 60000 }
    assert.equal(429, again.status)
    again.close()
    -- restart: the old one stops, a new one starts
    st, doc, text = H.api(s, "POST", "/v1/sandboxes/" .. id .. "/restart", op, {})
    assert.equal(201, st, text)
    local id2 = math.tointeger(doc.sandbox.id)
    assert.are_not.equal(id, id2)
    st, doc = H.api(s, "GET", "/v1/sandboxes/" .. id, viewer)
    assert.equal("stopped", doc.sandbox.status)
    H.wait_for(function() return follow.done() end, "the log's stream to end with its sandbox", 2000)
    assert.matches('event: end\ndata: {[^\n]*"status":"stopped"', follow.text())
    assert.matches("event: log\ndata: listening on 127.0.0.1:8080 " .. m, follow.text(), 1, true)
    follow.close()
    st, doc = H.api(s, "POST", "/v1/sandboxes/" .. id .. "/stop", op, {})
    assert.equal(409, st)
    -- not "read it again and retry", which would get this again
    assert.matches("^nothing to stop: it has ended", doc.error.remedy)
    -- one started by the CLI is stopped through its owner
    local r = H.orket("sandbox up -d", { cwd = dir })
    assert.equal(0, r.status, r.stderr)
    local id3 = math.tointeger(list(dir)[1].id)
    st, doc, text = H.api(s, "POST", "/v1/sandboxes/" .. id3 .. "/stop", op, {})
    assert.equal(200, st, text)
    assert.equal("stopped", doc.sandbox.status)
    assert.equal(1, #procs(m, true))
    -- one the server owns, stopped by the CLI: asked through its directory, so the server
    -- (its owner) stops it and goes on serving
    st, doc, text = H.api(s, "POST", "/v1/sandboxes", op, {})
    assert.equal(201, st, text)
    local id4 = math.tointeger(doc.sandbox.id)
    r = H.orket("sandbox stop " .. id4, { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    st, doc = H.api(s, "GET", "/v1/sandboxes/" .. id4, viewer)
    assert.equal(200, st)
    assert.equal("stopped", doc.sandbox.status)
    assert.equal(200, (H.fetch { url = s.url .. "/health", total_timeout_ms = 5000 }))
    assert.equal(1, #procs(m, true))
    -- the server stops: the sandbox it owns is stopped and recorded so
    assert.equal(0, s.stop())
    H.wait_for(function() return #procs(m) == 0 end, "the server's sandbox to stop with it")
    for _, row in ipairs(list(dir, true)) do
      if math.tointeger(row.id) == id2 then
        assert.equal("stopped", row.status)
        assert.equal("the server stopped", row.detail)
      end
    end
  end)

  it("passes an answer whole at once with its length, and streams one still coming", function()
    if skip then return pending(skip) end
    local m, s, op, _, path = served()
    local app = s.url .. path
    local auth = { "Authorization: Bearer " .. op }
    -- complete when its headers arrive: sent in one piece, its length given
    local pst, ptext, phead = H.fetch { url = app .. "/", headers = auth, total_timeout_ms = 10000 }
    assert.equal(200, pst, ptext)
    assert.equal("hello from " .. m .. " on 8080", ptext)
    assert.equal(tostring(#ptext), phead["content-length"])
    assert.is_nil(phead["transfer-encoding"])
    -- its first part arrives while the app still holds the rest
    local slow = H.stream { url = app .. "/slow", headers = auth, total_timeout_ms = 30000 }
    assert.equal(200, slow.status)
    assert.equal("chunked", slow.headers["transfer-encoding"])
    H.wait_for(function() return slow.text() == "first" end, "the answer's first part")
    assert.is_false(slow.done())
    pst = H.fetch { url = app .. "/release", headers = auth, total_timeout_ms = 10000 }
    assert.equal(200, pst)
    H.wait_for(function() return slow.done() end, "the answer's end")
    assert.equal("firstlast", slow.text())
    slow.close()
    -- one the app gave a length streams the same, with its length: its first part arrives
    -- while the app still holds the rest
    local slowlen = H.stream { url = app .. "/slowlen", headers = auth, total_timeout_ms = 30000 }
    assert.equal(200, slowlen.status)
    assert.equal("9", slowlen.headers["content-length"])
    assert.is_nil(slowlen.headers["transfer-encoding"])
    H.wait_for(function() return slowlen.text() == "first" end, "the answer's first part")
    assert.is_false(slowlen.done())
    pst = H.fetch { url = app .. "/release", headers = auth, total_timeout_ms = 10000 }
    assert.equal(200, pst)
    H.wait_for(function() return slowlen.done() end, "the answer's end")
    assert.equal("firstlast", slowlen.text())
    slowlen.close()
    -- a large one streams through whole, with the app's length (a download's progress)
    pst, ptext, phead = H.fetch { url = app .. "/big", headers = auth, total_timeout_ms = 20000 }
    assert.equal(200, pst)
    assert.equal(20 * 1024 * 1024, #ptext)
    assert.equal(tostring(20 * 1024 * 1024), phead["content-length"])
    assert.equal(0, s.stop())
    H.wait_for(function() return #procs(m) == 0 end, "the server's sandbox to stop with it")
  end)

  it("answers requests pipelined to the app in order, whole or streamed", function()
    if skip then return pending(skip) end
    local uv = require "luv"
    local m, s, op, _, app = served()
    for _, path in ipairs { "/", "/big" } do
      local c = uv.new_tcp()
      local got, closed = {}, false
      c:connect("127.0.0.1", s.port, function(err)
        assert(not err, err)
        local one = "GET " .. app .. path .. " HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " .. op .. "\r\n\r\n"
        c:write(one:rep(6))
        c:read_start(function(_, d) if d then got[#got + 1] = d else closed = true end end)
      end)
      local function answers() return select(2, table.concat(got):gsub("HTTP/1%.1 200", "")) end
      H.wait_for(function() return closed or answers() == 6 and (path == "/" or #table.concat(got) > 6 * 20 * 1024 * 1024) end,
        "six answers or a close")
      local all = table.concat(got)
      c:close()
      if answers() < 6 then -- the only other way: one answer that says it closes
        assert.equal(1, answers(), path)
        assert.matches("^HTTP/1%.1 200[^\n]*\r\n.-[Cc]onnection: close\r\n", all)
      end
    end
    assert.equal(0, s.stop())
    H.wait_for(function() return #procs(m) == 0 end, "the server's sandbox to stop with it")
  end)

  it("holds a bounded queue for clients that never read a large answer", function()
    if skip then return pending(skip) end
    -- ASan keeps freed memory in its quarantine: the server's RSS says nothing there
    if H.sanitized() then return pending("a sanitizer build's RSS holds its quarantine") end
    local uv = require "luv"
    local m, s, _, viewer, app = served()
    local function rss()
      return tonumber(H.read("/proc/" .. s.pid .. "/status"):match("VmRSS:%s*(%d+) kB")) * 1024
    end
    -- one large answer read whole first: what the proxy needs once is in the baseline
    local pst = H.fetch { url = s.url .. app .. "/big", headers = { "Authorization: Bearer " .. viewer },
      total_timeout_ms = 30000 }
    assert.equal(200, pst)
    local base = rss()
    -- ten clients ask for 20 MB each and never read a byte of it
    local socks = {}
    for i = 1, 10 do
      local c = uv.new_tcp()
      socks[i] = c
      c:connect("127.0.0.1", s.port, function(err)
        if not err then
          c:write("GET " .. app .. "/big HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " .. viewer .. "\r\n\r\n")
        end
      end)
    end
    -- the app has its answers out by then; a proxy that buffered them grew by 200 MB
    local peak = 0
    for _ = 1, 30 do
      orket.sleep(200)
      peak = math.max(peak, rss())
    end
    for _, c in ipairs(socks) do c:close() end
    assert.is_true(peak - base < 10 * 1024 * 1024,
      string.format("the server grew from %.1f MB to %.1f MB", base / 1048576, peak / 1048576))
    -- and it serves on, the slow clients gone
    pst = H.fetch { url = s.url .. app .. "/", headers = { "Authorization: Bearer " .. viewer }, total_timeout_ms = 10000 }
    assert.equal(200, pst)
    assert.equal(0, s.stop())
    H.wait_for(function() return #procs(m) == 0 end, "the server's sandbox to stop with it")
  end)
end)

describe("sandbox.deploy = \"merge\"", function()
  local skip, fake
  setup(function()
    if not offered() then skip = "the kernel offers no network namespace here, or node is missing" end
    fake = require("tests.fake_server").start()
  end)
  teardown(function()
    if fake then fake.stop() end
  end)
  after_each(H.cleanup)

  it("starts a sandbox of main after a card's merge, which outlives the run and replaces the last", function()
    if skip then return pending(skip) end
    local m = mark()
    local dir = H.tmpdir() .. "/p"
    F.appender(dir, fake.url, "deploy")
    H.write(dir .. "/workspace/server.js", SERVER)
    H.write(dir .. "/epics/d.json", cjson.encode { id = "D", name = "Deploy", issues = {
      { id = "D-1", summary = "One", seat = "senior_developer" },
      { id = "D-2", summary = "Two", seat = "senior_developer", depends_on = { "D-1" } } } })
    H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format([[
sandbox = { command = { "node", "server.js", %q }, deploy = "merge",
  health = { http = "/health", interval_ms = 200, start_timeout_ms = 15000 } }
]], m))
    backends.project(dir)
    assert.equal(0, H.orket("import", { cwd = dir }).status)
    local r = H.orket("run D", { cwd = dir })
    assert.equal(0, r.status, r.stdout .. r.stderr)
    -- two merges, two deploys: the second replaced the first, and it outlives the run
    local rows = H.wait_for(function()
      local all = H.sandboxes(dir, true)
      local live = H.sandboxes(dir)
      return #all == 2 and #live == 1 and live[1].status == "healthy" and live
    end, "the second deploy to be healthy and the first stopped", 3000)
    local status, body = get(rows[1].socket)
    assert.equal(200, status)
    assert.equal("hello from " .. m .. " on " .. math.tointeger(rows[1].port), body)
    -- what it serves is main's tree after both merges
    assert.truthy(io.open(dir .. "/workspace/D-2.line"))
    for _, row in ipairs(list(dir, true)) do
      if row.id ~= rows[1].id then assert.equal("stopped", row.status) end
    end
    assert.equal(0, H.orket("sandbox stop " .. math.tointeger(rows[1].id), { cwd = dir }).status)
    H.wait_for(function() return #procs(m) == 0 end, "nothing left running")
  end)
end)
