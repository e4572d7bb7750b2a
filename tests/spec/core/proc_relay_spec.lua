-- The confinement helper's relay (orket.c.proc's relay = {path, port}): a service on a
-- sandbox's own loopback reached through a unix socket file, with a probe socket beside it;
-- orket.c.http's unix_socket option makes the requests. The app is a tiny node server.
local proc = require "orket.c.proc"
local http = require "orket.c.http"
local task = require "orket.task"
local uv = require "luv"
local H = require "tests.helpers"

local offered = proc.probe()
local node_ok = os.execute("command -v node >/dev/null 2>&1")
local skip_why = not offered.netns and "no network namespace here"
  or not node_ok and "node is not installed"
if skip_why then print("\nproc_relay_spec: SKIPPED the relay checks: " .. skip_why) end

-- The app: answers NAME's greeting on GET /, echoes a POST, exits on /quit, tries an outside
-- address on /out; it listens only once the file `go` exists in its workspace when WAIT is set;
-- with RAW set it also serves plain TCP there (see the half-close test).
local APP = [[
const http = require('http'), net = require('net'), fs = require('fs');
const srv = http.createServer((q, s) => {
  if (q.method === 'POST') { q.pipe(s); return; }
  if (q.url === '/quit') { s.end('bye'); setTimeout(() => process.exit(0), 10); return; }
  if (q.url === '/in') { // through the way in: what the server outside answered
    http.get({ host: '127.0.0.1', port: +process.env.INWARD, path: '/x' }, (r) => {
      let n = 0, first = '';
      r.on('data', (d) => { if (!first) first = d.toString().slice(0, 6); n += d.length; });
      r.on('end', () => s.end('in ' + r.statusCode + ' ' + n + ' ' + first));
    }).on('error', (e) => s.end('in error ' + e.code));
    return;
  }
  if (q.url === '/id') { s.end('uid ' + process.getuid() + ' gid ' + process.getgid()); return; }
  if (q.url === '/out') {
    const c = net.connect(80, '192.0.2.1');
    c.on('connect', () => { s.end('connected'); c.destroy(); });
    c.on('error', (e) => s.end('error ' + e.code));
    return;
  }
  s.end('hello from ' + process.env.NAME);
});
if (process.env.RAW) { // answers how many bytes it got once the client's side has ended
  net.createServer({ allowHalfOpen: true }, (c) => {
    let n = 0;
    c.on('data', (d) => { n += d.length; });
    c.on('end', () => c.end('got ' + n));
  }).listen(+process.env.RAW, '127.0.0.1');
}
const listen = () => srv.listen(+process.env.PORT, '127.0.0.1');
if (process.env.WAIT) {
  const t = setInterval(() => { if (fs.existsSync('go')) { clearInterval(t); listen(); } }, 20);
} else listen();
]]

local live = {} -- the sandboxes a test started, ended by after_each

local function token()
  return string.format("relay%d%06d", math.random(100000, 999999), math.floor(uv.hrtime() % 1000000))
end

-- start{name=, raw=, wait=, path=, inward=, run_as=} (raw: relay to the app's plain TCP
-- server on that port; inward: a unix socket the app reaches at 127.0.0.1:9000) -> sandbox
-- {path, probe_path, ws, report(), exited, code, stop()}
local function start(o)
  local root = H.tmpdir()
  local ws = root .. "/ws"
  assert(os.execute("mkdir -p " .. H.quote(ws) .. " " .. H.quote(root .. "/tmp")))
  local sb = { path = o.path or (root .. "/app.sock"), ws = ws, tag = token(), out = "", rep = "" }
  sb.probe_path = sb.path .. ".probe"
  local argv, henv = proc.helper_argv { argv = { "node", "-e", APP .. "// " .. sb.tag }, cwd = ws, tmpdir = root .. "/tmp",
    env = { PORT = "8080", NAME = o.name or "a", WAIT = o.wait and "1" or nil, RAW = o.raw and tostring(o.raw) or nil,
      INWARD = "9000" },
    loopback = true, layers = { seccomp = false, landlock_net = false, userns = not o.run_as and nil },
    run_as = o.run_as,
    relay = { path = sb.path, port = o.raw or 8080, inward = o.inward and { path = o.inward, port = 9000 } } }
  local pin, pout, perr, prep = uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false)
  local handle, pid = uv.spawn(argv[1], { args = { table.unpack(argv, 2) }, stdio = { pin, pout, perr, prep },
    env = henv, detached = true }, function(code, sig)
      sb.exited, sb.code, sb.signal = true, code, sig
    end)
  assert(handle, pid)
  sb.handle = handle
  pout:read_start(function(_, d) if d then sb.out = sb.out .. d end end)
  perr:read_start(function(_, d) if d then sb.out = sb.out .. d end end)
  prep:read_start(function(_, d) if d then sb.rep = sb.rep .. d end end)
  function sb.stop()
    if not sb.exited then handle:kill(15) end
    H.wait_for(function() return sb.exited end, "the helper to exit")
    for _, p in ipairs { pin, pout, perr, prep } do
      if not p:is_closing() then p:close() end
    end
    if not handle:is_closing() then handle:close() end
  end
  live[#live + 1] = sb
  return sb
end

-- The probe's answer: connect to the probe socket and read until it closes.
local function probe(sb)
  local p = uv.new_pipe(false)
  local text, done = "", false
  p:connect(sb.probe_path, function(err)
    if err then
      text, done = "connect: " .. err, true
      return
    end
    p:read_start(function(rerr, d)
      if d then text = text .. d else done = true end
      if rerr then done = true end
    end)
  end)
  H.wait_for(function() return done end, "the probe's answer")
  p:close()
  return text
end

local function ready(sb)
  H.wait_for(function() return sb.rep:find("R " .. sb.path, 1, true) or sb.exited end, "the relay to listen")
  assert(not sb.exited, "the helper exited: " .. sb.rep .. sb.out)
  local last
  for _ = 1, 500 do
    last = probe(sb)
    if last == "up\n" then return end
    orket.sleep(20)
  end
  error("the app did not listen: " .. tostring(last) .. " / " .. sb.rep .. sb.out)
end

local function get(sb, path, o)
  o = o or {}
  return H.fetch { url = "http://sandbox" .. (path or "/"), unix_socket = sb.path, method = o.method, body = o.body,
    total_timeout_ms = 20000 }
end

local function exists(path) return uv.fs_lstat(path) ~= nil end

local survivors = H.processes

describe("the relay", function()
  after_each(function()
    for _, sb in ipairs(live) do
      sb.stop()
      assert.same({}, survivors(sb.tag))
      -- a sanitizer build of the helper reports on the stderr it shares with the app
      assert.is_nil(sb.out:find("Sanitizer", 1, true) or sb.out:find("runtime error:", 1, true), sb.out)
    end
    live = {}
    H.cleanup()
  end)

  it("refuses a relay it cannot have", function()
    local base = { argv = { "true" }, cwd = "/tmp", tmpdir = "/tmp" }
    local function with(extra)
      local o = {}
      for k, v in pairs(base) do o[k] = v end
      for k, v in pairs(extra) do o[k] = v end
      return function() proc.helper_argv(o) end
    end
    assert.has_error(with { relay = { path = "/tmp/a.sock", port = 8080 } },
      "bad argument #1 to 'helper_argv' (relay needs loopback = true)")
    assert.has_error(with { loopback = true, relay = { path = "/tmp/a.sock", port = 8080 }, layers = { netns = false } },
      "bad argument #1 to 'helper_argv' (relay needs the netns layer)")
    assert.has_error(with { loopback = true, relay = { path = "tmp/a.sock", port = 8080 } })
    assert.has_error(with { loopback = true, relay = { path = "/tmp/../a.sock", port = 8080 } })
    assert.has_error(with { loopback = true, relay = { path = "/tmp/" .. string.rep("x", 100), port = 8080 } })
    assert.has_error(with { loopback = true, relay = { path = "/tmp/a.sock", port = 0 } },
      "bad argument #1 to 'helper_argv' (relay.port must be a whole number between 1 and 65535)")
    assert.has_error(with { loopback = true, relay = { path = "/tmp/a.sock", port = 70000 } })
    assert.has_error(with { loopback = true, relay = "/tmp/a.sock" })
    assert.has_error(function() proc.run { argv = { "true" }, cwd = "/tmp", relay = { path = "/tmp/a.sock", port = 1 } } end,
      "bad argument #1 to 'run' (relay needs loopback = true)")
    local argv = proc.helper_argv { argv = { "true" }, cwd = "/tmp", tmpdir = "/tmp", loopback = true,
      relay = { path = "/tmp/a.sock", port = 8080 } }
    assert.equal("/tmp/a.sock", argv[6])
    assert.matches(" 8080$", argv[3])
    assert.has_error(function() http.request { url = "http://x/", unix_socket = "rel.sock" } end,
      "bad argument #1 to 'request' (unix_socket must be an absolute path shorter than 108 bytes)")
    assert.has_error(function() http.request { url = "http://x/", unix_socket = "/" .. string.rep("x", 120) } end)
    assert.has_error(function() http.request { url = "http://x/", unix_socket = 5 } end)
  end)

  it("relays HTTP to the app, keeps two sandboxes on one port apart and removes its sockets", function()
    if skip_why then return pending(skip_why) end
    local a, b = start { name = "alpha" }, start { name = "beta" }
    ready(a)
    ready(b)
    -- Landlock's file rules held while its TCP rules, switched off, let the app bind
    local mask = tonumber(a.rep:match("\nL (%d+)") or a.rep:match("^L (%d+)"))
    assert.is_number(mask)
    if offered.landlock_net then
      assert.is_true(mask & 1024 ~= 0, "landlock applied")
      assert.is_true(mask & 2048 == 0, "landlock_net switched off")
    end
    local st = uv.fs_lstat(a.path)
    assert.equal("socket", st.type)
    assert.equal(tonumber("600", 8), st.mode % 512)
    assert.equal("socket", uv.fs_lstat(a.probe_path).type)
    for _ = 1, 3 do
      local s1, body1 = get(a)
      local s2, body2 = get(b)
      assert.equal(200, s1)
      assert.equal("hello from alpha", body1)
      assert.equal(200, s2)
      assert.equal("hello from beta", body2)
    end
    -- the program exits on its own: the relay goes with it, its files too
    local s, body = get(a, "/quit")
    assert.equal(200, s)
    assert.equal("bye", body)
    H.wait_for(function() return a.exited end, "the app to exit")
    assert.equal(0, a.code)
    assert.is_false(exists(a.path))
    assert.is_false(exists(a.probe_path))
    -- ended by the runner (SIGTERM): the same
    b.stop()
    assert.is_false(exists(b.path))
    assert.is_false(exists(b.probe_path))
    assert.same({}, survivors(b.tag))
    assert.equal(0, http.live())
  end)

  it("probes down before the app listens and up after", function()
    if skip_why then return pending(skip_why) end
    local sb = start { wait = true }
    H.wait_for(function() return sb.rep:find("R ", 1, true) or sb.exited end, "the relay to listen")
    assert.matches("^down Connection refused\n$", probe(sb))
    local s, body = get(sb) -- nothing listens: the relay closes the client
    assert.is_nil(s)
    H.write(sb.ws .. "/go", "")
    H.wait_for(function() return probe(sb) == "up\n" end, "the probe to say up")
    s, body = get(sb)
    assert.equal(200, s)
    assert.equal("hello from a", body)
  end)

  it("passes a 5 MB body both ways intact", function()
    if skip_why then return pending(skip_why) end
    local sb = start {}
    ready(sb)
    local parts = {}
    for i = 1, 5 * 1024 do parts[i] = string.format("%07d", i) .. string.rep(string.char(65 + i % 26), 1017) end
    local big = table.concat(parts)
    assert.equal(5 * 1024 * 1024, #big)
    local s, body = get(sb, "/echo", { method = "POST", body = big })
    assert.equal(200, s)
    assert.equal(#big, #body)
    assert.is_true(body == big)
  end)

  it("takes 200 connections at once: 128 relayed, the rest closed, and goes on serving", function()
    if skip_why then return pending(skip_why) end
    local sb = start {}
    ready(sb)
    local pipes, eofs = {}, 0
    for i = 1, 200 do
      local p = uv.new_pipe(false)
      pipes[i] = p
      p:connect(sb.path, function(err)
        if err then
          eofs = eofs + 1
          return
        end
        p:read_start(function(_, d)
          if not d then eofs = eofs + 1 end
        end)
      end)
    end
    H.wait_for(function() return eofs >= 72 end, "the connections beyond 128 to be closed")
    orket.sleep(200)
    assert.equal(72, eofs) -- the first 128 stay relayed to the app
    assert.equal("up\n", probe(sb))
    for _, p in ipairs(pipes) do p:close() end
    H.wait_for(function()
      local s, body = get(sb)
      return s == 200 and body == "hello from a"
    end, "the relay to serve again")
    assert.is_not_true(sb.exited)
  end)

  it("passes each side's end of stream on, and the answer after it", function()
    if skip_why then return pending(skip_why) end
    local sb = start { raw = 9000 }
    ready(sb)
    local p = uv.new_pipe(false)
    local got, ended, shut = "", false, false
    p:connect(sb.path, function(err)
      assert(not err, err)
      p:write(string.rep("x", 100000))
      p:shutdown(function() shut = true end)
      p:read_start(function(_, d)
        if d then got = got .. d else ended = true end
      end)
    end)
    H.wait_for(function() return ended end, "the relay to pass the end on")
    p:close()
    assert.is_true(shut)
    assert.equal("got 100000", got)
  end)

  it("joins a port inside to one unix socket outside, and only that one", function()
    if skip_why then return pending(skip_why) end
    -- the server outside: a unix socket answering 2 MiB
    local root = H.tmpdir()
    local inward = root .. "/in.sock"
    local body = "inward" .. string.rep("b", 2 * 1048576 - 6)
    local server = uv.new_pipe(false)
    assert(server:bind(inward))
    server:listen(16, function()
      local c = uv.new_pipe(false)
      server:accept(c)
      c:read_start(function(_, d)
        if d and d:find("\r\n\r\n", 1, true) then
          c:write("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body,
            function() c:close() end)
        elseif not d then c:close() end
      end)
    end)
    local sb = start { inward = inward }
    ready(sb)
    local s, got = get(sb, "/in")
    assert.equal(200, s)
    assert.equal("in 200 " .. #body .. " inward", got)
    -- nothing listening there any more: the app's connection is closed at once, no hang
    server:close()
    os.remove(inward)
    s, got = get(sb, "/in")
    assert.equal(200, s)
    assert.matches("^in error E", got)
    -- no way in without it: another sandbox's 127.0.0.1:9000 is its own, with nothing there
    local other = start {}
    ready(other)
    s, got = get(other, "/in")
    assert.matches("^in error ECONNREFUSED", got)
    -- an inward relay comes with a relay, and a path a socket may have
    assert.has_error(function()
      proc.helper_argv { argv = { "true" }, cwd = "/tmp", tmpdir = "/tmp", loopback = true,
        relay = { path = "/tmp/a.sock", port = 8080, inward = { path = "/tmp/" .. string.rep("x", 110), port = 9000 } } }
    end)
    assert.has_error(function()
      proc.helper_argv { argv = { "true" }, cwd = "/tmp", tmpdir = "/tmp", loopback = true,
        relay = { path = "/tmp/a.sock", port = 8080, inward = { path = "/tmp/b.sock", port = 0 } } }
    end, "bad argument #1 to 'helper_argv' (relay.inward.port must be a whole number between 1 and 65535)")
  end)

  it("runs the program as run_as when root starts it, the helper staying root", function()
    if skip_why then return pending(skip_why) end
    if uv.getuid() ~= 0 then return pending("run_as is root's: this test runs as uid " .. uv.getuid()) end
    local sb = start { run_as = 65534 }
    ready(sb)
    local s, got = get(sb, "/id")
    assert.equal(200, s)
    assert.equal("uid 65534 gid 65534", got)
  end)

  it("leaves the app no way out of its namespace", function()
    if skip_why then return pending(skip_why) end
    local sb = start {}
    ready(sb)
    local s, body = get(sb, "/out")
    assert.equal(200, s)
    assert.matches("^error E", body)
    assert.not_equal("connected", body)
  end)

  it("fails with an F line and leaves a file that is not a socket", function()
    if skip_why then return pending(skip_why) end
    local root = H.tmpdir()
    local path = root .. "/app.sock"
    H.write(path, "precious\n")
    local sb = start { path = path }
    H.wait_for(function() return sb.exited end, "the helper to fail")
    assert.equal(127, sb.code)
    assert.matches("F relay [^\n]*app%.sock exists and is not a socket", sb.rep)
    assert.is_nil(sb.rep:find("\nP ", 1, true) or sb.rep:find("^P "))
    assert.equal("precious\n", H.read(path))
    assert.is_false(exists(path .. ".probe"))
  end)

  it("works with run{} too: the files exist while the program runs and go with it", function()
    if skip_why then return pending(skip_why) end
    local root = H.tmpdir()
    local path = root .. "/run.sock"
    local seen
    local r = assert(proc.run { argv = { "sleep", "0.3" }, cwd = root, loopback = true,
      relay = { path = path, port = 8080 } })
    assert.equal("exit", r.reason)
    assert.equal(0, r.code)
    assert.is_false(exists(path))
    assert.is_false(exists(path .. ".probe"))
    -- a task watching while it runs sees both sockets. It looks every 5 ms until the run
    -- ends (not H.wait_for, whose pauses grow: on a busy machine the program's half second
    -- may leave the sockets in place for less than one of them)
    local running = true
    local t = task.spawn(function()
      while running and not seen do
        local a, b = uv.fs_lstat(path), uv.fs_lstat(path .. ".probe")
        if a and b then seen = a.type .. " " .. b.type end
        orket.sleep(5)
      end
    end)
    r = assert(proc.run { argv = { "sleep", "0.5" }, cwd = root, loopback = true, relay = { path = path, port = 8080 } })
    running = false
    assert.equal(0, r.code)
    assert(t:join())
    assert.equal("socket socket", seen)
    assert.is_false(exists(path))
    H.write(path, "mine\n")
    local res, msg, code = proc.run { argv = { "true" }, cwd = root, loopback = true, relay = { path = path, port = 8080 } }
    assert.is_nil(res)
    assert.matches("run%.sock exists and is not a socket", msg)
    assert.equal("ESPAWN", code)
    assert.equal("mine\n", H.read(path))
    H.wait_for(function() return proc.live() == 0 end, "the runs to be freed")
  end)

  it("replaces a stale socket file", function()
    if skip_why then return pending(skip_why) end
    local first = start {}
    ready(first)
    -- a helper killed outright leaves its files behind
    first.handle:kill(9)
    H.wait_for(function() return first.exited end, "the helper to die")
    assert.equal("socket", uv.fs_lstat(first.path).type)
    H.wait_for(function() return #survivors(first.tag) == 0 end, "the app to go with its helper")
    local second = start { path = first.path, name = "second" }
    ready(second)
    local s, body = get(second)
    assert.equal(200, s)
    assert.equal("hello from second", body)
  end)
end)
