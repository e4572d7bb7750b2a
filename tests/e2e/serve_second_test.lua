-- orket serve's start on a host: a second server on the same project is refused, naming the
-- unix socket and the first server's pid, and leaves the first one's socket and token file
-- as they were (it took both over, and its stop removed them from under the first: a socket
-- answered by nobody, a token file gone); a socket a killed server left is replaced; and an
-- open-files limit below what max_connections needs is raised to the hard limit, or said in
-- a warning line with the numbers (core/httpd.c hd_unix_listen and hd_fd_room, cmd/serve.lua).
local H = require "tests.helpers"
local cjson = require "cjson"

local SOCK = ".orket/serve.sock"
local limited = {} -- pid -> dir: the servers serve_limited started and no stop_limited ended

-- GET /health over the project's unix socket -> status (nil: nothing answered)
local function health_unix(dir)
  local ok, st = pcall(H.fetch, { url = "http://localhost/health", unix_socket = dir .. "/" .. SOCK,
    total_timeout_ms = 3000 })
  return ok and st or nil
end

-- orket serve in dir under `prlimit --nofile=SOFT:HARD` -> {pid=, dir=}, started and listening
local function serve_limited(dir, soft, hard)
  for _, f in ipairs { "out", "err", "pid", "rc" } do os.remove(dir .. "/lim." .. f) end -- (the last one's)
  os.execute(string.format("cd %s && { prlimit --nofile=%d:%d %s serve --listen 127.0.0.1:0 >lim.out 2>lim.err & "
    .. "echo $! >lim.pid; wait $!; echo $? >lim.rc; } >/dev/null 2>&1 &", H.quote(dir), soft, hard, H.quote(H.BIN)))
  H.wait_for(function() return (H.read(dir .. "/lim.out") or ""):match("listening on") end, "the server to listen", 3000)
  local pid = H.wait_for(function() return tonumber((H.read(dir .. "/lim.pid") or ""):match("^%d+")) end, "its pid")
  limited[pid] = dir
  return pid
end

local function stop_limited(dir, pid)
  limited[pid] = nil
  os.execute("kill -TERM " .. pid)
  return tonumber(H.wait_for(function() return (H.read(dir .. "/lim.rc") or ""):match("^%d+") end, "the server's end"))
end

local function warnings(text)
  local out = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local ok, ev = pcall(cjson.decode, line)
    if ok and type(ev) == "table" and ev.event == "warning" then out[#out + 1] = ev.message end
  end
  return out
end

local function soft_nofile(pid)
  return tonumber((H.read("/proc/" .. pid .. "/limits") or ""):match("Max open files%s+(%d+)"))
end

describe("orket serve's start on a host", function()
  after_each(function()
    for pid, dir in pairs(limited) do stop_limited(dir, pid) end
    H.kill_servers()
    H.cleanup()
  end)

  it("refuses a second server on the project, leaving the first one's socket and token", function()
    local dir = H.example("notes")
    local a = H.serve(dir)
    assert.equal(200, health_unix(dir))
    local token = H.read(dir .. "/.orket/serve.token")
    assert.is_string(token)
    -- (timeout: a server that was not refused would serve on)
    local r = H.orket("serve --listen 127.0.0.1:0", { cwd = dir, wrap = "timeout -k 1 5" })
    assert.equal(1, r.status, r.stderr)
    assert.matches(SOCK .. ": a server answers on it (pid " .. a.pid .. "): another orket serve is serving this project "
      .. "on it. Stop that one first (SIGTERM, or Ctrl-C where it runs), or use it", r.stderr, 1, true)
    assert.equal("", r.stdout) -- (no address, no token announced)
    assert.equal(token, H.read(dir .. "/.orket/serve.token"))
    assert.equal(200, health_unix(dir)) -- still the first one's
    assert.matches('"addr":"unix"', a.log())
    -- the first one's stop removes its own files, as before
    assert.equal(0, a.stop())
    assert.is_nil(H.read(dir .. "/.orket/serve.token"))
    assert.is_nil(health_unix(dir))
  end)

  it("with keys, serves a second server of the folder without the socket, which stays the first one's", function()
    -- several servers of one store and folder (docs/store.md): the socket is no way in past
    -- local use, and the second one's log says why it has none
    local dir = H.example("notes")
    H.api_key(dir, "viewer", "viewer")
    local a = H.serve(dir)
    local first = assert(require("luv").fs_stat(dir .. "/" .. SOCK))
    local b = H.serve(dir)
    assert.matches('"no unix socket: ./' .. SOCK .. ': a server answers on it (pid ' .. a.pid .. ')"', b.log(), 1, true)
    assert.equal(0, b.stop())
    assert.equal(first.ino, require("luv").fs_stat(dir .. "/" .. SOCK).ino) -- the second one's stop took nothing
    assert.equal(200, health_unix(dir))
    assert.equal(0, a.stop())
  end)

  it("replaces the socket a killed server left, and serves on it", function()
    local dir = H.example("notes")
    local a = H.serve(dir)
    a.kill()
    assert.truthy(require("luv").fs_lstat(dir .. "/" .. SOCK)) -- left behind, nobody answers
    assert.is_nil(health_unix(dir))
    local b = H.serve(dir)
    assert.equal(200, health_unix(dir))
    assert.equal(0, b.stop())
  end)

  it("raises a low soft open-files limit to the hard one, and warns when even that is too low", function()
    local dir = H.example("notes")
    -- soft 100, hard 2000: the soft one raised, nothing to say
    local pid = serve_limited(dir, 100, 2000)
    assert.equal(2000, soft_nofile(pid))
    assert.equal(0, stop_limited(dir, pid))
    assert.same({}, warnings(H.read(dir .. "/lim.err")))
    -- soft 100, hard 300: raised to 300, still below 512 connections + 8 + 128: said, with the numbers
    pid = serve_limited(dir, 100, 300)
    assert.equal(300, soft_nofile(pid))
    assert.equal(0, stop_limited(dir, pid))
    local w = warnings(H.read(dir .. "/lim.err"))
    assert.equal(1, #w, H.read(dir .. "/lim.err"))
    assert.matches("open files: the limit is 300 (RLIMIT_NOFILE, raised from 100 to the hard limit) and serving "
      .. "needs 648: 512 connections (max_connections)", w[1], 1, true)
    assert.matches("ulimit -n 648", w[1], 1, true)
    -- soft = hard = 200: nothing to raise, said with the hard limit
    pid = serve_limited(dir, 200, 200)
    assert.equal(0, stop_limited(dir, pid))
    w = warnings(H.read(dir .. "/lim.err"))
    assert.matches("the limit is 200 (RLIMIT_NOFILE, its hard limit 200)", w[1], 1, true)
  end)
end)
