-- Shared helpers for the busted specs: temporary directories, running the orket binary.
local uv = require "luv"

local M = {}

M.ROOT = assert(package.orket_home, "specs run under 'orket lua'")
M.BIN = os.getenv("ORKET_BIN") or (M.ROOT .. "/build/orket")

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.quote = sh_quote

--- scratch() -> where the tests make their temporary trees (and tests.pg its servers): in
--- memory when the machine has a tmpfs with room (/dev/shm on Debian), else /tmp;
--- ORKET_TEST_TMP names another directory. The suite creates and removes tens of thousands
--- of files (projects, repositories, stores, PostgreSQL's databases); on ext4 each new file
--- cost more the more had just been removed, and in memory the suite took less CPU.
local TMPFS_MAGIC, SHM, ROOM = 0x01021994, "/dev/shm", 1 << 30
local scratch
function M.scratch()
  if scratch then return scratch end
  local named = os.getenv("ORKET_TEST_TMP")
  if named and named ~= "" then
    scratch = named
    return scratch
  end
  local st = uv.fs_statfs(SHM)
  local roomy = st and st.type == TMPFS_MAGIC and st.bavail * st.bsize >= ROOM and uv.fs_access(SHM, "rwx")
  scratch = roomy and SHM or "/tmp"
  return scratch
end

--- tmpdir() -> a fresh directory (mode 0700, as mktemp -d makes), removed by cleanup().
--- Made in this process and removed by one rm per hundred: a test may make hundreds (one
--- per M.orket), and a process started for each was a good part of the suite's time.
--- Named ORKET_TEST_PREFIX.XXXXXX (tests/run.sh gives each file a prefix of its own, as long
--- as "orket-test", so that what a file leaves is known to be its own, and paths do not grow).
local made = {}
local PREFIX = os.getenv("ORKET_TEST_PREFIX") or ""
if PREFIX == "" then PREFIX = "orket-test" end
function M.tmpdir()
  local dir = assert(uv.fs_mkdtemp(M.scratch() .. "/" .. PREFIX .. ".XXXXXX"))
  made[#made + 1] = dir
  return dir
end

function M.cleanup()
  for i = 1, #made, 100 do
    local batch = {}
    for j = i, math.min(i + 99, #made) do batch[#batch + 1] = sh_quote(made[j]) end
    os.execute("rm -rf " .. table.concat(batch, " "))
  end
  made = {}
  require("tests.backends").cleanup() -- the test's PostgreSQL databases, if any
end

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

M.read = require("orket.fieldline").read -- path -> the file's text | nil

--- replace(path, text): path holds text, written whole under a name of this process's beside
--- it and renamed over it: a process reading path meanwhile (a test file run beside this one
--- using the same shared file) reads the old text or the new, never an empty or partial file
function M.replace(path, text)
  local tmp = string.format("%s.%d.tmp", path, math.tointeger(uv.os_getpid()))
  M.write(tmp, text)
  assert(os.rename(tmp, path))
end

--- commit_main(dir [, message]): what the project's workspace/ holds committed on main, as a
--- person lands a change (git's own CLI): a sandbox runs main's commits, never the view
function M.commit_main(dir, message)
  local ws = M.quote(dir .. "/workspace")
  assert(os.execute("git -C " .. ws .. " add -A && git -C " .. ws .. " -c user.name=person "
    .. "-c user.email=person@example.invalid commit -q --allow-empty -m " .. M.quote(message or "by hand")),
    "commit_main: git commit failed in " .. dir)
end

-- The local token of each server M.serve started before any key existed, by port: a write
-- to it needs the token (docs/serve.md), which M.fetch sends as the web board's cookie when
-- the request brings no cookie of its own (a cookie is ignored once keys exist).
local local_tokens = {}

local function with_local_token(o)
  local port = type(o.url) == "string" and tonumber(o.url:match("^http://127%.0%.0%.1:(%d+)"))
  local token = port and local_tokens[port]
  if not token then return o end
  for _, h in ipairs(o.headers or {}) do
    if h:lower():match("^cookie:") then return o end
  end
  local c = {}
  for k, v in pairs(o) do c[k] = v end
  c.headers = { table.unpack(o.headers or {}) }
  c.headers[#c.headers + 1] = "Cookie: orket_local=" .. token
  return c
end

--- fetch{url=, method=, headers=, body=, total_timeout_ms=, max_bytes=} -> status, the whole
--- answer's text, headers: one HTTP exchange through orket's own client (orket.c.http)
function M.fetch(o)
  local r <close> = assert(require("orket.c.http").request(with_local_token(o)))
  local status, headers = r:headers()
  local parts = {}
  while status do
    local ev = r:read()
    if not ev then break end
    for _, x in ipairs(ev) do parts[#parts + 1] = x end
  end
  return status, table.concat(parts), headers
end

-- Servers M.serve and M.fake_forge started that no test stopped (one failed half-way);
-- M.kill_servers ends them.
local servers = {}

--- store_file_holding(dir, text) -> the file of the project's SQLite store (the database or
--- its write-ahead log) whose bytes hold text | nil: a secret must be in neither
function M.store_file_holding(dir, text)
  for _, f in ipairs { "/.orket/orket.db", "/.orket/orket.db-wal" } do
    local data = M.read(dir .. f)
    if data and data:find(text, 1, true) then return f end
  end
  return nil
end

--- sandbox_offered(program) -> whether sandboxes run here (network and user namespaces)
--- with program (node, python3) installed
function M.sandbox_offered(program)
  local p = require("orket.c.proc").probe()
  return p.netns and p.userns and os.execute("command -v " .. program .. " >/dev/null 2>&1")
end

--- no_node_sandbox() -> why | nil: why a node app cannot run in a sandbox here (no network
--- or user namespace from the kernel, or no node), for pending(); nil when it can
function M.no_node_sandbox()
  if M.sandbox_offered("node") then return nil end
  return "the kernel offers no network namespace here, or node is missing"
end

--- node_project(server_js, mark) -> dir: a new project whose sandbox runs server_js (node,
--- its first argument mark), healthy when / answers
function M.node_project(server_js, mark)
  local dir = M.tmpdir() .. "/p"
  assert(M.orket("init " .. sh_quote(dir)).status == 0, "orket init failed")
  M.write(dir .. "/workspace/server.js", server_js)
  M.commit_main(dir, "the app") -- a sandbox deploys main's commit, not the view
  M.write(dir .. "/orket.lua", M.read(dir .. "/orket.lua") .. string.format(
    '\nsandbox = { command = { "node", "server.js", %q }, health = { http = "/", interval_ms = 200 } }\n', mark))
  require("tests.backends").project(dir)
  return dir
end

--- fake_forge() -> {url=, stop()}: tests/fake_forge_server.lua as a child process
function M.fake_forge()
  local dir = M.tmpdir()
  os.execute(string.format("cd %s && { %s lua tests/fake_forge_server.lua >%s/out 2>&1 & echo $! >%s/pid; } ",
    sh_quote(M.ROOT), sh_quote(M.BIN), sh_quote(dir), sh_quote(dir)))
  local port = M.wait_for(function() return (M.read(dir .. "/out") or ""):match("listening http://127%.0%.0%.1:(%d+)") end,
    "the fake forge to listen")
  local pid = tonumber(M.read(dir .. "/pid"))
  servers[pid] = true
  return { url = "http://127.0.0.1:" .. port, stop = function()
    os.execute("kill " .. pid .. " 2>/dev/null")
    servers[pid] = nil
  end }
end

--- stream{url=, headers=, total_timeout_ms=} -> {status=, headers=, text(), done(), close()}:
--- an answer read as it arrives (an event stream), by a task of its own
function M.stream(o)
  local r = assert(require("orket.c.http").request(o))
  local status, headers = r:headers()
  local parts, done = {}, false
  local t = orket.spawn(function()
    while true do
      local ev = r:read()
      if not ev then break end
      for _, x in ipairs(ev) do parts[#parts + 1] = x end
    end
    done = true
  end)
  return { status = status, headers = headers, text = function() return table.concat(parts) end,
    done = function() return done end, close = function() t:cancel(); r:close() end }
end

--- api(server, method, path, key, body) -> status, the decoded answer (nil when empty or not
--- JSON), its text: one call to an orket serve (H.serve) with a Bearer key (or none)
function M.api(s, method, path, key, body)
  local headers = { "Content-Type: application/json" }
  if key then headers[#headers + 1] = "Authorization: Bearer " .. key end
  local status, text = M.fetch { url = s.url .. path, method = method, headers = headers,
    body = body and (type(body) == "string" and body or require("cjson").encode(body)) or nil, total_timeout_ms = 20000 }
  return status, text ~= "" and require("cjson.safe").decode(text) or nil, text
end

--- request(server, method, path, headers, body) -> status, the decoded answer (nil when
--- empty), headers: one call to an orket serve with the headers given (a cookie, a CSRF
--- token) and body (a table) as JSON
function M.request(s, method, path, headers, body)
  local status, text, hs = M.fetch { url = s.url .. path, method = method, headers = headers or {},
    body = body and require("cjson").encode(body) or nil, total_timeout_ms = 20000 }
  return status, text ~= "" and require("cjson.safe").decode(text) or nil, hs or {}
end

--- ok(r, what) -> r, an H.orket result, once its status is 0 (else raises naming what)
function M.ok(r, what)
  if r.status ~= 0 then error(what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout), 2) end
  return r
end

-- Below the kernel's ephemeral range: a port the kernel handed out for port 0 is the next
-- one it hands out to another test's connection or listener too, so a port chosen that way
-- was sometimes taken before the test's server bound it ("Address already in use").
local function below_ephemeral()
  local f = io.open("/proc/sys/net/ipv4/ip_local_port_range")
  local lo = f and tonumber((f:read("l") or ""):match("^%s*(%d+)"))
  if f then f:close() end
  return lo and lo > 11000 and lo - 1 or nil
end

--- free_port() -> a loopback port nothing listens on just now (for a server whose URL must
--- be known before it starts)
function M.free_port()
  local top = below_ephemeral()
  for _ = 1, top and 50 or 0 do
    local port = math.random(10000, top)
    local t = uv.new_tcp()
    -- (libuv reports a port in use at listen, not at bind)
    local ok = t:bind("127.0.0.1", port) and t:listen(1, function() end)
    t:close()
    if ok then return port end
  end
  local t = uv.new_tcp()
  assert(t:bind("127.0.0.1", 0))
  local port = t:getsockname().port
  t:close()
  return port
end

--- raw_http(answer) -> srv, base: a loopback listener that reads each request's head and
--- writes answer() (the whole HTTP answer's text, as the test wants it, however wrong),
--- then closes; base is "http://127.0.0.1:PORT". The caller closes srv.
function M.raw_http(answer)
  local srv = uv.new_tcp()
  assert(srv:bind("127.0.0.1", 0))
  srv:listen(8, function()
    local sock = uv.new_tcp()
    srv:accept(sock)
    local buf = ""
    sock:read_start(function(_, data)
      if not data then sock:close() return end
      buf = buf .. data
      if not buf:find("\r\n\r\n", 1, true) then return end
      sock:read_stop()
      sock:write(answer(), function() sock:close() end)
    end)
  end)
  return srv, "http://127.0.0.1:" .. srv:getsockname().port
end

--- front(kind, dir, conf) -> pid: a reverse proxy ("nginx" or "caddy") started in the
--- background with the configuration text conf, written into dir (which holds its tmp/ and
--- its output, dir/out); the caller kills pid
function M.front(kind, dir, conf)
  assert(os.execute("mkdir -p " .. M.quote(dir .. "/tmp")))
  local cmd
  if kind == "nginx" then
    M.write(dir .. "/nginx.conf", conf)
    cmd = string.format("nginx -p %s -c %s", M.quote(dir), M.quote(dir .. "/nginx.conf"))
  else
    M.write(dir .. "/Caddyfile", conf)
    cmd = string.format("env HOME=%s XDG_DATA_HOME=%s XDG_CONFIG_HOME=%s caddy run --adapter caddyfile --config %s",
      M.quote(dir), M.quote(dir), M.quote(dir), M.quote(dir .. "/Caddyfile"))
  end
  os.execute(string.format("%s >%s 2>&1 </dev/null & echo $! >%s", cmd, M.quote(dir .. "/out"), M.quote(dir .. "/pid")))
  return tonumber(M.wait_for(function() return (M.read(dir .. "/pid") or ""):match("%d+") end, kind .. "'s pid"))
end

--- api_key(dir, name, role) -> key, its id, the command's result: `orket keys create`
function M.api_key(dir, name, role)
  local r = M.orket("keys create " .. name .. " --role " .. role, { cwd = dir })
  if r.status ~= 0 then error("orket keys create failed: " .. tostring(r.stderr), 2) end
  local k = r.stdout:gsub("\n$", "")
  return k, k:match("^ork_(%x+)_"), r
end

-- reading(dir, what, fn) -> fn(db)'s result, on the project's store opened for reading in
-- this process; any failure raised as "WHAT: message" at the helper's caller
local function reading(dir, what, fn)
  local db, err = require("orket.project").open_store(dir, false, true)
  if not db then error(what .. ": " .. tostring(err), 3) end
  local ok, r, rerr = pcall(fn, db)
  db:close()
  if not ok then error(what .. ": " .. tostring(r), 3) end
  if r == nil then error(what .. ": " .. tostring(rerr), 3) end
  return r
end

--- card_json(dir, id) -> the document `orket card ID --json` prints, made in this process by
--- the command's own steps (the project's store opened for reading, orket.views.card): tests
--- read cards often, many while they wait, and a process for each was a good part of a run's
--- CPU (on PostgreSQL each also loaded libpq). The CLI's own output is tested apart.
function M.card_json(dir, id)
  local view = require "orket.views.card"
  local g = reading(dir, "card " .. id, function(db) return view.gather(db, id, dir) end)
  return require("cjson").decode(require("orket.jsonout").encode(view.doc_of(g)))
end

--- sandboxes(dir[, all]) -> the project's live sandboxes (all: the ended ones too), as `orket
--- sandbox list` reads them (orket.sandboxes.service.list), in this process: a test waiting
--- for a sandbox's state asks many times, and each command started on PostgreSQL cost tens
--- of milliseconds of CPU before it read anything
function M.sandboxes(dir, all)
  return reading(dir, "sandboxes", function(db) return require("orket.sandboxes.service").list(db, all) end)
end

--- events(out) -> the JSON objects of a command's --json output, one a line (other lines,
--- a log's or a warning's, passed over)
function M.events(out)
  local cjson = require "cjson"
  local list = {}
  for line in (out or ""):gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and type(ev) == "table" then list[#list + 1] = ev end
  end
  return list
end

--- board_state(dir) -> the statuses, retries and comment bodies of every card, a line each:
--- what "the same board" means when a resumed or interrupted run is compared with one that
--- was not
function M.board_state(dir)
  local cjson = require "cjson"
  local doc = cjson.decode(M.orket("board --json", { cwd = dir }).stdout)
  local out = {}
  for _, c in ipairs(doc.cards) do
    local card = M.card_json(dir, c.id)
    local bodies = {}
    for _, k in ipairs(card.comments) do bodies[#bodies + 1] = k.author .. ": " .. k.body end
    out[#out + 1] = string.format("%s %s r%d {%s}", c.id, c.status, c.retries, table.concat(bodies, " | "))
  end
  return table.concat(out, "\n")
end

--- processes(needle) -> {"PID: its command line"...}: the processes whose command line
--- (its arguments joined by spaces) holds needle, e.g. a test's temp dir or token
function M.processes(needle)
  local found = {}
  local dir = uv.fs_scandir("/proc")
  while dir do
    local name = uv.fs_scandir_next(dir)
    if not name then break end
    if name:match("^%d+$") then
      local f = io.open("/proc/" .. name .. "/cmdline", "rb")
      if f then
        local cmd = f:read("a") or ""
        f:close()
        if cmd:find(needle, 1, true) then found[#found + 1] = name .. ": " .. cmd:gsub("%z", " ") end
      end
    end
  end
  return found
end

--- sh(cmd) -> exit status, output (stdout and stderr together): a shell command's result
function M.sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  return tonumber(out:match("rc=(%d+)%s*$")), (out:gsub("rc=%d+%s*$", ""))
end

--- orket(args, {stdin=, env=, cwd=, wrap=}) -> {status=, stdout=, stderr=}
--- Runs the binary with args (a string of shell words, already quoted where needed); wrap
--- is a command put before it (e.g. setpriv to run it as another user).
function M.orket(args, opts)
  opts = opts or {}
  local dir = M.tmpdir()
  local input = dir .. "/stdin"
  M.write(input, opts.stdin or "")
  local env = ""
  for k, v in pairs(opts.env or {}) do env = env .. k .. "=" .. sh_quote(v) .. " " end
  -- The shell execs the command: one process where a shell waiting for it to print its
  -- status made two (about 2,000 commands a run), and no shell is left to print "Killed"
  -- when a run is killed at a fault point. A status is the shell's: 128 + the signal.
  local cmd = string.format("cd %s && %s exec %s %s %s <%s >%s/out 2>%s/err",
    sh_quote(opts.cwd or M.ROOT), env, opts.wrap or "", sh_quote(opts.bin or M.BIN), args, sh_quote(input), dir, dir)
  local p = io.popen(cmd, "w")
  local _, how, code = p:close()
  local status = how == "signal" and 128 + code or code
  return { status = status, stdout = M.read(dir .. "/out"), stderr = M.read(dir .. "/err") }
end

--- example(name [, {import = true, append = text}]) -> dir: a fresh copy of examples/NAME
--- in a temp dir, with text appended to its orket.lua, imported unless import = false.
function M.example(name, opts)
  opts = opts or {}
  local dir = M.tmpdir()
  os.execute("cp -R " .. sh_quote(M.ROOT .. "/examples/" .. name .. "/.") .. " " .. sh_quote(dir))
  if opts.append then M.write(dir .. "/orket.lua", M.read(dir .. "/orket.lua") .. opts.append) end
  -- on PostgreSQL (tests.backends), the project names a fresh database of its own: every
  -- command run in it then uses that
  require("tests.backends").project(dir)
  if opts.import ~= false then
    -- `orket import`'s own steps, in this process: the examples are imported some 300 times
    -- a run, and the command's process, on PostgreSQL its libpq and connection too, cost more
    -- than the import (the command itself is tested apart)
    local db, err = require("orket.project").open_store(dir, true)
    local r
    if db then
      r, err = require("orket.import").import(db, dir)
      db:close()
    end
    if not r then error(string.format("import failed in %s: %s", dir, tostring(err)), 2) end
  end
  return dir
end

--- wait_for(pred, what [, tries]) -> pred's first true value; raises "timed out waiting for
--- WHAT" after as long as tries asks 10 ms apart took (1000 unless tries says). The pauses
--- grow from 10 ms to 100 ms: a predicate is mostly a request to a server, a browser or the
--- store, and asking every 10 ms through a long wait took CPU from the very processes being
--- waited on. So it is for a state that stays once reached: one that comes and goes (a file
--- that exists only while a program runs) can fall between two asks; look for it in a loop
--- of your own.
function M.wait_for(pred, what, tries)
  local left, pause = tries or 1000, 10
  while true do
    local t0 = uv.hrtime()
    local v = pred()
    if v then return v end
    if left <= 0 then error("timed out waiting for " .. what) end
    local took = (uv.hrtime() - t0) / 1e6
    orket.sleep(pause)
    -- a pause and an ask count for as many of the 10 ms asks as fit in their time: a slow
    -- predicate is waited on as long as it was when it was asked every 10 ms
    left = left - (took + pause) / (took + 10)
    pause = math.min(100, pause + pause // 2)
  end
end

--- lock_waiters(c, key) -> how many sessions wait for the advisory lock key (a bigint, as
--- pg_advisory_lock takes it) in c's database. Filtered by database and key: the PostgreSQL
--- test files share one server, and their own waits must not count.
function M.lock_waiters(c, key)
  return assert(c:query([[SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND classid = ($1::int8 >> 32)::oid AND objid = ($1::int8 & 4294967295)::oid AND objsubid = 1]], key))[1].n
end

--- hold_lock(dir) -> pid, stop: another process holding the project's run lock (as a run
--- does) until stop() kills it. Returns once the lock is held; stop() once it is released.
function M.hold_lock(dir)
  local sh = string.format("cd %s && { %s lua -e %s & echo $!; }", sh_quote(dir), sh_quote(M.BIN),
    sh_quote("local l = assert(require('orket.engine.setup').lock('.')); io.stdout:write('locked\\n'); "
      .. "io.stdout:flush(); orket.sleep(60000)"))
  local p = io.popen(sh)
  -- the shell's `echo $!` and the holder's line race for the pipe: either may come first
  local first, second = p:read("l"), p:read("l")
  local pid = math.tointeger(tonumber(first) or tonumber(second))
  assert(pid and (tonumber(first) and second or first) == "locked", "the lock holder did not start")
  return pid, function()
    os.execute("kill -9 " .. pid)
    p:close()
    -- kill(2) returns before the holder has exited and its lock is released (most times
    -- here): a command started next could still find the project locked
    M.wait_for(function() return not M.alive(pid) end, "the lock holder to end")
  end
end

--- end_started(dir, pid_file, rc_file [, started]): ends a command a test started in dir as
--- `{ CMD & echo $! >PID_FILE; wait $!; echo $? >RC_FILE; } &` (a finally's step): SIGKILL
--- unless RC_FILE says it has ended (its pid may be another process's by then), then waits
--- for RC_FILE, which its shell writes into dir after it died, racing the test's removal of dir.
--- started: the command was started (its shell may not have written PID_FILE yet); else a
--- missing PID_FILE means it never was.
function M.end_started(dir, pid_file, rc_file, started)
  local function rc() return (M.read(dir .. "/" .. rc_file) or ""):match("^%d+") end
  local function pid() return tonumber((M.read(dir .. "/" .. pid_file) or ""):match("^%d+")) end
  if started then M.wait_for(function() return rc() or pid() end, "a started command's pid") end
  if rc() then return end
  local pid = pid()
  if not pid then return end -- not started
  os.execute("kill -KILL " .. pid .. " 2>/dev/null")
  M.wait_for(rc, "a killed command's shell to end")
end

--- alive(pid) -> whether the process runs. A zombie is not alive: a child killed after its
--- parent shell exited is reparented to the pid namespace's init, which may never reap it
--- (a container's or `runuser`'s first process), so `kill -0` would see it forever.
function M.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  -- a process reaped between the open and the read reads as nothing (ESRCH): gone
  local st = f:read("a")
  f:close()
  local state = st and st:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z"
end

--- serve(dir [, {env=, listen=, args=}]) -> server {port, url, pid, log(), stop() -> exit status,
--- kill() -> exit status}: `orket serve` in dir on 127.0.0.1 (an ephemeral port unless listen
--- says otherwise). kill() is SIGKILL; both return once the server's shell has ended.
function M.serve(dir, o)
  o = o or {}
  local env = ""
  for k, v in pairs(o.env or {}) do env = env .. k .. "=" .. sh_quote(v) .. " " end
  -- a server started again in the same directory: what the last one wrote is not this one's
  for _, f in ipairs { "out", "err", "pid", "rc" } do os.remove(dir .. "/serve." .. f) end
  os.execute(string.format("cd %s && { %s %s serve --listen %s %s >serve.out 2>serve.err & echo $! >serve.pid; "
    .. "wait $!; echo $? >serve.rc; } >/dev/null 2>&1 &", sh_quote(dir), env, sh_quote(M.BIN), o.listen or "127.0.0.1:0",
    o.args or ""))
  -- 30 s: a server of several projects on PostgreSQL migrates each store first, which a
  -- loaded machine has taken more than 10 s for; one that ended is said at once, with why
  local port = M.wait_for(function()
    local out = M.read(dir .. "/serve.out")
    local at = out and (out:match("listening on http://127%.0%.0%.1:(%d+)") or out:match("listening on http://0%.0%.0%.0:(%d+)"))
    if at then return at end
    local rc = (M.read(dir .. "/serve.rc") or ""):match("^%d+")
    if rc then
      error(string.format("orket serve ended (exit %s) before it listened: %s", rc, M.read(dir .. "/serve.err") or ""), 0)
    end
  end, "the server to listen", 3000)
  -- the server may say it listens before the shell that started it has written its pid
  local pid = M.wait_for(function() return tonumber((M.read(dir .. "/serve.pid") or ""):match("^%d+")) end,
    "the server's pid")
  local s = { port = tonumber(port), url = "http://127.0.0.1:" .. port, pid = pid }
  servers[s.pid] = dir
  s.token = (M.read(dir .. "/serve.out") or ""):match("/%?token=(ort_%x+)")
  local_tokens[s.port] = s.token
  function s.log() return M.read(dir .. "/serve.err") or "" end
  function s.stop()
    os.execute("kill -TERM " .. s.pid)
    servers[s.pid] = nil
    local rc = M.wait_for(function() return (M.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the server to exit")
    os.remove(dir .. "/serve.rc")
    return tonumber(rc)
  end
  -- a server a test kills itself is no longer one for kill_servers, which would signal its
  -- pid again (another process's by then, maybe) and wait for a status already taken
  function s.kill()
    os.execute("kill -KILL " .. s.pid)
    servers[s.pid] = nil
    local rc = M.wait_for(function() return (M.read(dir .. "/serve.rc") or ""):match("^%d+") end, "the killed server's shell to end")
    os.remove(dir .. "/serve.rc")
    return tonumber(rc)
  end
  return s
end

--- sanitized() -> whether the binary under test is a sanitizer build (make asan): it cannot
--- run without /proc, and its memory figures hold the sanitizer's own (freed memory is kept)
function M.sanitized()
  local p = io.popen("readelf -d " .. sh_quote(M.BIN) .. " 2>/dev/null")
  local needed = p:read("a")
  p:close()
  return needed:find("lib[aubltsan]*san%.so") ~= nil
end

--- kill_servers(): SIGKILL to every server M.serve or M.fake_forge started and no test stopped
function M.kill_servers()
  for pid, dir in pairs(servers) do
    -- one whose shell has written its status ended already (a test signalled it itself): its
    -- pid is free, maybe another process's by now, and is not signalled
    if not (type(dir) == "string" and (M.read(dir .. "/serve.rc") or ""):match("^%d+")) then
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    end
  end
  -- a server's shell writes its exit status into its directory once it has ended: waited
  -- for, or it races the test's removal of that directory
  for _, dir in pairs(servers) do
    if type(dir) == "string" then
      pcall(M.wait_for, function() return (M.read(dir .. "/serve.rc") or ""):match("^%d+") end, "a killed server's shell to end", 500)
    end
  end
  servers = {}
end

--- healthy_sandbox(dir, old) -> the live sandbox of the project in dir once it is healthy
--- and not one of those in old (a set of ids): the one a deploy started
function M.healthy_sandbox(dir, old)
  return M.wait_for(function()
    for _, row in ipairs(M.sandboxes(dir)) do
      if row.status == "healthy" and not old[math.tointeger(row.id)] then return row end
    end
  end, "a new sandbox to be healthy", 3000)
end

--- without_deadline(fn, ...) -> fn's results, with scripts' wall-clock budget pushed ten
--- minutes off while fn runs: a test of the instruction budget must not race the clock, which
--- a busy core makes run out first
function M.without_deadline(fn, ...)
  local d = require("orket.scriptenv").DEFAULTS
  local saved = d.timeout_ms
  d.timeout_ms = 600000
  local res = table.pack(pcall(fn, ...))
  d.timeout_ms = saved
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

return M
