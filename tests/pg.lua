-- tests.pg: a PostgreSQL 15 server of the tests' own, in a temporary directory: initdb as
-- an unprivileged user (PostgreSQL refuses to run as root), listening only on a unix socket
-- in that directory (no TCP), password authentication for its one user, whose password is
-- in a passfile (libpq's ~/.pgpass format) rather than in any URL. stop() ends it and
-- removes the directory; specs call it from teardown so it runs when a test fails too.
local H = require "tests.helpers"
local uv = require "luv"

local M = {}

M.BIN = os.getenv("ORKET_PG_BIN") or "/usr/lib/postgresql/15/bin"
M.USER = "orket"

local q = H.quote

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc == 0, out:gsub("rc=%d+%s*$", "")
end

--- available() -> true | nil, why: the server's programs are installed (and, when the tests
--- run as root, an unprivileged user and setpriv exist to run them as).
function M.available()
  for _, p in ipairs { "initdb", "pg_ctl", "postgres" } do
    local f = io.open(M.BIN .. "/" .. p, "rb")
    if not f then return nil, "PostgreSQL 15 is not installed (no " .. M.BIN .. "/" .. p .. "; scripts/deps.sh installs it)" end
    f:close()
  end
  if sh("[ \"$(id -u)\" -ne 0 ]") then return true end
  if not sh("command -v setpriv >/dev/null && id nobody >/dev/null") then
    return nil, "the tests run as root and there is no 'nobody' user or no setpriv to run PostgreSQL as"
  end
  return true
end

-- Runs a server program as the unprivileged user when we are root.
local function as_owner()
  if sh("[ \"$(id -u)\" -ne 0 ]") then return "" end
  return "setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups -- "
end

-- This process's PID namespace ("pid:[N]"): a pid means something only inside it.
local function pid_ns()
  return uv.fs_readlink("/proc/self/ns/pid") or "?"
end

-- Servers of earlier runs whose test process died without stop() (killed, crashed): each
-- directory names its owner's pid and PID namespace; a server whose owner is gone is stopped
-- and removed. One of another namespace is left alone: a run in a container or chroot that
-- shares /dev/shm with the host has pids this process cannot see, and stopping its server
-- failed that run.
function M.reap_stale(wrap)
  wrap = wrap or as_owner()
  local where = q(H.scratch()) .. "/orket-pg.*"
  if H.scratch() ~= "/tmp" then where = where .. " /tmp/orket-pg.*" end -- where earlier runs made them
  local p = io.popen("ls -d " .. where .. " 2>/dev/null")
  local ours = pid_ns()
  for dir in p:lines() do
    -- (luv gives the pid as a float: earlier runs wrote "123.0", which once read as a
    -- namespace of ".0", never ours, so no stale server was ever stopped)
    local owner, ns = (H.read(dir .. "/owner") or ""):match("^(%d+)%.?0*%s*(%S*)")
    if owner and (ns == "" or ns == ours) and not sh("kill -0 " .. owner .. " 2>/dev/null") then
      -- one left frozen (freeze(): SIGSTOP) takes no stop signal until it goes on, and
      -- pg_ctl waited its 60 s for it
      local pm = tonumber((H.read(dir .. "/data/postmaster.pid") or ""):match("^(%d+)"))
      if pm then os.execute(string.format("kill -CONT %d 2>/dev/null; pkill -CONT -P %d 2>/dev/null", pm, pm)) end
      sh(string.format("cd / && %s%s/pg_ctl -D %s -m immediate -w stop", wrap, M.BIN, q(dir .. "/data")))
      os.execute("rm -rf " .. q(dir))
    end
  end
  p:close()
end

--- start([{commits_survive_kill=, tcp_port=, sync_standby=}]) -> server {dir, url, conninfo(extra), password,
--- query(sql), kill(), restart(), stop()} | raises
--- url: postgresql://orket@/postgres?host=DIR&passfile=DIR/pgpass (no password in it).
--- tcp_port: it also listens on 127.0.0.1:PORT (for containers on the host's network).
--- sync_standby: a commit waits until a standby (M.standby) has it, so that a failover loses
--- no commit a client was told of (writes wait until the standby is started).
function M.start(o)
  o = o or {}
  local wrap = as_owner()
  M.reap_stale(wrap)
  -- in memory where the machine allows (H.scratch): the store's suites create and drop a
  -- database for nearly every test, each a copy of the template's files; on ext4 a CREATE
  -- DATABASE cost 50-120 ms of CPU here, in memory about 13 ms, and the PostgreSQL layer
  -- took a quarter less CPU
  local dir = assert(uv.fs_mkdtemp(H.scratch() .. "/orket-pg.XXXXXX"))
  H.write(dir .. "/owner", string.format("%d %s\n", uv.os_getpid(), pid_ns()))
  local password = "pw-" .. tostring(os.time()) .. "-" .. tostring(math.random(1, 1e9))
  H.write(dir .. "/pwfile", password .. "\n")
  if wrap ~= "" then assert(sh("chown -R nobody " .. q(dir) .. " && chmod 700 " .. q(dir))) end
  local s = { dir = dir, password = password }
  -- the server killed at once (no shutdown: clients see their connections drop)
  local function immediate_stop()
    sh(string.format("cd %s && %s%s/pg_ctl -D %s -m immediate -w stop", q(dir), wrap, M.BIN, q(dir .. "/data")))
  end
  function s.stop()
    if s.stopped then return end
    s.stopped = true
    if s.thaw then s.thaw() end
    immediate_stop()
    os.execute("rm -rf " .. q(dir))
  end
  local ok, out = sh(string.format("cd %s && %s%s/initdb -D %s -U %s --pwfile=%s --auth=scram-sha-256 -E UTF8 --locale=C --no-sync",
    q(dir), wrap, M.BIN, q(dir .. "/data"), M.USER, q(dir .. "/pwfile")))
  if not ok then
    s.stop()
    error("initdb failed:\n" .. out)
  end
  os.remove(dir .. "/pwfile")
  -- no TCP (unless o.tcp_port asks for loopback); the socket in our directory; durability is not what these tests test,
  -- but a server killed at once (kill()) keeps what it committed only with synchronous
  -- commits (o.commits_survive_kill): the machine does not crash, so no fsync is needed
  local listen = o.tcp_port and string.format("127.0.0.1' -c port='%d", o.tcp_port) or ""
  local opts = string.format("-c listen_addresses='" .. listen .. "' -c unix_socket_directories='%s' -c fsync=off "
    .. "-c synchronous_commit=" .. (o.commits_survive_kill and "on" or "off")
    .. (o.sync_standby and " -c synchronous_standby_names='*'" or "") .. " -c full_page_writes=off -c shared_buffers=16MB -c max_connections=150 " .. (os.getenv("PGX") or ""), dir)
  local function pg_start()
    return sh(string.format("cd %s && %s%s/pg_ctl -D %s -l %s -w -t 60 -o %s start", q(dir), wrap, M.BIN,
      q(dir .. "/data"), q(dir .. "/server.log"), q(opts)))
  end
  ok, out = pg_start()
  if not ok then
    local log = H.read(dir .. "/server.log") or ""
    s.stop()
    error("pg_ctl start failed:\n" .. out .. log)
  end
  -- kill(), then restart() on the same data
  s.kill = immediate_stop
  -- freeze() stops the server's processes where they are (SIGSTOP: a paused machine, or one
  -- behind a dropped network: connections stay open and nothing answers); thaw() lets them go
  local frozen
  function s.freeze()
    local pm = assert(tonumber((H.read(dir .. "/data/postmaster.pid") or ""):match("^(%d+)")), "no postmaster.pid")
    local p = io.popen("pgrep -P " .. pm)
    frozen = { pm }
    for pid in p:read("a"):gmatch("%d+") do frozen[#frozen + 1] = pid end
    p:close()
    os.execute("kill -STOP " .. table.concat(frozen, " "))
  end
  function s.thaw()
    if frozen then os.execute("kill -CONT " .. table.concat(frozen, " ")) end
    frozen = nil
  end
  function s.restart()
    local rok, rout = pg_start()
    assert(rok, "pg_ctl start failed:\n" .. rout)
  end
  -- the client (this process) reads the password from a passfile it owns, mode 0600
  s.passfile = dir .. "/client.pgpass"
  H.write(s.passfile, string.format("*:*:*:%s:%s\n", M.USER, password))
  os.execute("chmod 600 " .. q(s.passfile))
  s.url = string.format("postgresql://%s@/postgres?host=%s&passfile=%s", M.USER, dir, s.passfile)
    .. (o.tcp_port and "&port=" .. o.tcp_port or "")
  s.opts, s.wrap = opts, wrap
  return s
end

--- on(dir, url[, delay_ms]) -> the project's script.lua as it was: the project in dir (an
--- example with a scripted model) names the store at url and is imported there; delay_ms:
--- every scripted answer takes that long (a server can then be stopped while a turn is out)
function M.on(dir, url, delay_ms)
  H.write(dir .. "/orket.lua", H.read(dir .. "/orket.lua") .. string.format("\nstore = { url = %q }\n", url))
  local r = H.orket("import", { cwd = dir })
  assert(r.status == 0, "orket import failed: " .. tostring(r.stderr))
  local script = H.read(dir .. "/script.lua")
  if delay_ms and script then
    H.write(dir .. "/script.lua", (script:gsub("return { rules",
      "for _, r in ipairs(rules) do r.reply.delay_ms = " .. delay_ms .. " end\nreturn { rules", 1)))
  end
  return script
end

--- silent() -> url, close(): a server's socket that accepts connections and never answers,
--- as a frozen server's (or one behind a dropped network) does: a connect to url waits
--- until its own timeout. close() lets go of the socket and what it accepted.
function M.silent()
  local uv = require "luv"
  local dir = H.tmpdir()
  local srv = uv.new_pipe(false)
  assert(srv:bind(dir .. "/.s.PGSQL.5432"))
  local held = {}
  srv:listen(8, function()
    local cl = uv.new_pipe(false)
    srv:accept(cl)
    held[#held + 1] = cl
  end)
  return "postgresql://orket@/postgres?host=" .. dir, function()
    for _, cl in ipairs(held) do cl:close() end
    srv:close()
  end
end

--- standby(primary) -> server {dir, url, promote(), stop()} | raises: a streaming standby
--- of a server M.start made (docs/workers.md, "A database that fails over"): pg_basebackup
--- -R copies the primary's data and writes standby.signal with its connection settings;
--- the standby listens on a socket in a directory of its own. promote() makes it the primary.
function M.standby(primary)
  local wrap = primary.wrap
  local dir = assert(uv.fs_mkdtemp(H.scratch() .. "/orket-pg.XXXXXX"))
  H.write(dir .. "/owner", string.format("%d %s\n", uv.os_getpid(), pid_ns()))
  if wrap ~= "" then assert(sh("chown -R nobody " .. q(dir) .. " && chmod 700 " .. q(dir))) end
  -- the server reads the password from a passfile it owns (the one pg_basebackup -R names)
  local passfile = dir .. "/replica.pgpass"
  H.write(passfile, string.format("*:*:*:%s:%s\n", M.USER, primary.password))
  os.execute("chmod 600 " .. q(passfile) .. (wrap ~= "" and " && chown nobody " .. q(passfile) or ""))
  local s = { dir = dir }
  function s.stop()
    if s.stopped then return end
    s.stopped = true
    sh(string.format("cd %s && %s%s/pg_ctl -D %s -m immediate -w stop", q(dir), wrap, M.BIN, q(dir .. "/data")))
    os.execute("rm -rf " .. q(dir))
  end
  local ok, out = sh(string.format("cd %s && PGPASSFILE=%s %s%s/pg_basebackup -R -X stream -D %s -h %s -U %s",
    q(dir), q(passfile), wrap, M.BIN, q(dir .. "/data"), q(primary.dir), M.USER))
  if ok then
    -- its own socket directory; the rest of the primary's settings
    -- (not a synchronous primary's wait for a standby: promoted, it has none)
    local opts = primary.opts:gsub("unix_socket_directories='[^']*'", "unix_socket_directories='" .. dir .. "'")
      :gsub(" %-c synchronous_standby_names='%*'", "")
    ok, out = sh(string.format("cd %s && PGPASSFILE=%s %s%s/pg_ctl -D %s -l %s -w -t 60 -o %s start", q(dir), q(passfile),
      wrap, M.BIN, q(dir .. "/data"), q(dir .. "/server.log"), q(opts)))
  end
  if not ok then
    local log = H.read(dir .. "/server.log") or ""
    s.stop()
    error("the standby did not start:\n" .. out .. log)
  end
  function s.promote()
    local pok, pout = sh(string.format("cd %s && %s%s/pg_ctl -D %s -w -t 60 promote", q(dir), wrap, M.BIN, q(dir .. "/data")))
    assert(pok, "pg_ctl promote failed:\n" .. pout)
  end
  s.url = primary.url:gsub("host=[^&]*", "host=" .. dir)
  return s
end

--- freeze(s) -> thaw(): stops every process of a server M.start or M.standby made where it
--- is (SIGSTOP: a paused machine, or one behind a dropped network), as a primary's own
--- s.freeze() does, for a standby too; thaw() (idempotent) lets them go. Thaw before stop():
--- a frozen server takes no stop signal.
function M.freeze(s)
  local pm = assert(tonumber((H.read(s.dir .. "/data/postmaster.pid") or ""):match("^(%d+)")), "no postmaster.pid")
  local p = io.popen("pgrep -P " .. pm)
  local pids = { pm }
  for pid in p:read("a"):gmatch("%d+") do pids[#pids + 1] = pid end
  p:close()
  os.execute("kill -STOP " .. table.concat(pids, " "))
  local thawed = false
  return function()
    if thawed then return end
    thawed = true
    os.execute("kill -CONT " .. table.concat(pids, " "))
  end
end

--- hosts(s, ...) -> a URL naming the socket directories of the servers given (each made by
--- M.start, M.standby, or the directory of M.silent's socket as a string), in that order,
--- in libpq's multi-host form, with s's other parameters and target_session_attrs=read-write
function M.hosts(s, ...)
  local dirs = {}
  for i, x in ipairs { ... } do dirs[i] = type(x) == "string" and x or x.dir end
  return (s.url:gsub("host=[^&]*", "host=" .. table.concat(dirs, ","))) .. "&target_session_attrs=read-write"
end

return M
