-- orket serve [DIR] [--listen HOST:PORT]: the project's board, cards and journal over HTTP
-- (orket.serve, docs/serve.md), and a person's writes to cards, until SIGTERM or Ctrl-C,
-- which stop it gracefully (exit 0).
local serve = require "orket.serve"
local keys = require "orket.serve.keys"
local audit_chain = require "orket.audit.chain"
local localuse = require "orket.serve.localuse"
local signin = require "orket.serve.signin"
local executor = require "orket.engine.executor"
local httpd = require "orket.c.httpd"
local task = require "orket.task"
local stopsignals = require "orket.stopsignals"
local uv = require "luv"
local workers = require "orket.serve.workers"
local phase = require "orket.sandboxes.phase"
local sandboxes_recheck = require "orket.sandboxes.recheck"
local sandboxes = require "orket.serve.sandboxes"
local service = require "orket.sandboxes.service"
local cmdline = require "orket.cmdline"
local projects = require "orket.serve.projects"
local team = require "orket.serve.team"
local store_projects = require "orket.store.projects"
local web = require "orket.serve.web"
local config = require "orket.config"
local otel = require "orket.otel"
local logwriter = require "orket.serve.logwriter"
local storewatch = require "orket.serve.storewatch"
local cjson = require "cjson"

local cmd = { name = "serve", summary = "serve the board and its events over HTTP" }
-- a reader of stdout gone is no failure of it (orket.cli output_checked)
cmd.outlives_reader = true
cmd.args = {
  text = "a directory", extra = "serve takes one directory",
  { "DIR", optional = true, key = "project", what = "a directory", check = cmdline.a_dir() },
  { "--listen", value = "HOST:PORT", what = "HOST:PORT" },
  { "--workers", value = "N", what = "a number",
    check = function(v)
      local n = cmdline.integer(v)
      if not n or n < 0 or n > 64 then return nil, "--workers needs an integer from 0 to 64" end
      return n
    end },
  cmdline.DIR,
}
cmd.help = [[
Serves the project in DIR (default: here) on --listen (default 127.0.0.1:8765; port 0
picks a free one). The web board is at / (sign in with a key). Routes: /health, /ready,
/v1/board, /v1/cards/ID, /v1/events and /v1/runs/ID/events (Server-Sent Events), writes to
cards (POST /v1/cards...), runs (POST /v1/runs starts one in this process, with hot reload as
in 'orket run'; list, get, transcript, stop, resume), /v1/audit, /v1/session (the board's
sign-in), /metrics (Prometheus) and /v1/openapi.json. While no API key exists ('orket keys create') it
listens on loopback addresses only, and writes need the unix socket .orket/serve.sock (this
user only) or the token in .orket/serve.token (made at each start; the web board's address
with it is printed). A key given in ORKET_KEY, or in the file ORKET_KEY_FILE names (a
mounted secret; white space around it is dropped), is stored as the operator key 'given'
and the default --listen becomes 0.0.0.0:8765: the way to serve from a container
(docs/guide/deploying.md). The address it listens on is printed on stdout; one JSON line
per request goes to stderr. SIGTERM or Ctrl-C stops it, and its runs as Ctrl-C stops
'orket run' ('orket resume' continues them). --workers N starts N 'orket worker'
processes beside the server (restarted when one dies, stopped with it): POST /v1/runs then
leaves each run to them instead of executing it in the server; --workers 0 leaves them to
'orket worker' processes started apart (on PostgreSQL, on other machines or pods). See
docs/serve.md and docs/workers.md. The projects named in orket.lua's serve.projects or added
with 'orket projects add' are served too, each under /v1/projects/NAME/ to its members
(docs/teams.md).]]

-- The key a container is given (ORKET_KEY, or the file ORKET_KEY_FILE names, such as a
-- mounted secret; the file wins), white space around it dropped in both: a file's line end,
-- and the variable's when it was made from a file (a Secret made --from-file keeps every
-- byte; $(cat) keeps a \r) -> nil when neither is set | token, the variable's name | nil,
-- message. A key with white space inside, or nothing but white space, is left as it came,
-- for adopt to refuse naming the variable.
local function given_key()
  local path = os.getenv("ORKET_KEY_FILE")
  if path and path ~= "" then
    local st = uv.fs_stat(path)
    if st and st.type == "directory" then -- (a pipe or /dev/stdin is read as a file is)
      return nil, string.format("ORKET_KEY_FILE: %s is a folder, not a key file (name the file that holds the key)",
        path)
    end
    local f, err = io.open(path, "rb")
    if not f then return nil, "ORKET_KEY_FILE: " .. err end
    local text = f:read(200) or "" -- a key is 85 bytes; more is not one
    f:close()
    return (text:match("^%s*(%S+)%s*$") or text), "ORKET_KEY_FILE"
  end
  local key = os.getenv("ORKET_KEY")
  if key and key ~= "" then return key:match("^%s*(%S+)%s*$") or key, "ORKET_KEY" end
end

-- The unix socket's path held before the local token is made, by a listener of our own
-- (core/httpd.c asks whoever answers there first, and leaves a live server's socket alone).
-- Held until the server's own listener takes the path (let_go), so that two starting at
-- once do not both pass -> the hold | false (none made: the server says why it has no
-- socket, as before) | nil, message: another server answers there (open_keyed)
local function hold_socket(dir)
  local path = dir .. "/" .. localuse.SOCKET
  local srv, err = httpd.listen { unix = path }
  if srv then return { srv = srv, path = path, st = uv.fs_lstat(path) } end
  local st = uv.fs_lstat(path)
  if not (st and st.type == "socket") then return false end -- (a path too long, no .orket yet)
  return nil, string.format("%s: another orket serve is serving this project on it. Stop that one first (SIGTERM, "
    .. "or Ctrl-C where it runs), or use it (its address is on its stdout): before any API key, the socket and %s "
    .. "are the way in, and one server holds them", err, localuse.TOKEN_FILE)
end

-- The hold let go: its listener closed, so that the server's own takes the path (nothing
-- answers there now); with gone, the file removed too (no server of ours follows)
local function let_go(hold, gone)
  if not hold then return end
  hold.srv:close()
  local now, was = uv.fs_lstat(hold.path), hold.st
  if gone and now and was and now.dev == was.dev and now.ino == was.ino then os.remove(hold.path) end
end

-- The store, with the given key adopted and, before any key, the local token made
-- (writes then need this user's unix socket or that token: localuse), the socket's path
-- held first (hold_socket) -> db, local token (false: no key yet, but people sign in, so
-- local use is over), the hold | nil (the error printed). Another server answering on the
-- socket refuses local use: its socket and token file are the way in, and a second
-- server took both over, and removed both at its stop, from under the first. With keys
-- or people, several servers of one folder are served (docs/store.md): this one without
-- the socket, which the server's log says (orket.serve's "no unix socket").
local function open_keyed(dir, host, given, source, cli)
  local hold, herr = hold_socket(dir)
  -- (read-only on a read-only file system; a full disk fails the start: read-only, the
  -- server would stay so once space is freed)
  local db = cli.open_store(dir, false, "serving")
  local function fail(fmt, ...)
    if db then db:close() end
    let_go(hold, true)
    if fmt then cli.err(fmt, ...) end
    return nil
  end
  if not db then return fail() end
  if given then
    local info, aerr = keys.adopt(db, dir, given, "given", "operator")
    if not info then return fail("%s: %s", source, aerr) end
    if info.adopted then
      io.stderr:write(string.format("orket serve: stored the given key %s as '%s' (%s)\n", info.id, info.name, info.role))
    end
  end
  if not httpd.is_loopback(host) and keys.active_count(db) == 0 then
    return fail("refusing to listen on %s without an API key: create one first ('orket keys create NAME --role viewer'), "
      .. "or listen on a loopback address (127.0.0.1)", host)
  end
  if keys.total_count(db) > 0 then return db, nil, hold end
  -- a person, or a provider set up, ends local use (orket.serve.auth): a token would be refused
  local section = signin.load(dir)
  local made, merr = keys.any_made(db)
  if made == nil then return fail("%s", merr) end
  if made or (section and section.oidc) then return db, false, hold end
  if hold == nil then return fail("%s", herr) end
  local token, terr = localuse.create_token(dir)
  if not token then return fail("%s", terr) end
  return db, token, hold
end

-- The address (and the local token) on stdout; on stderr when stdout cannot be written (a
-- supervisor that closed it: the lines were lost and the clean stop's 0 turned into 1).
local function announce(server, host, token, cli)
  local out = cli.stdout_unwritable() and io.stderr or io.stdout
  local shown = host:find(":", 1, true) and ("[" .. host .. "]") or host
  out:write(string.format("orket serve: listening on http://%s:%d\n", shown, server:port()))
  if token == false then
    out:write(string.format("orket serve: no API key yet, and people sign in: the web board at http://%s:%d/ "
      .. "(a person's name and password, or the identity provider); a key: 'orket keys create NAME --role ROLE'\n",
      shown, server:port()))
  elseif token then
    out:write(string.format("orket serve: no API key yet; the web board with the local token: "
      .. "http://%s:%d/?token=%s (also in %s; writes need it, or the unix socket %s)\n", shown, server:port(), token,
      localuse.TOKEN_FILE, localuse.SOCKET))
  end
  out:flush()
end

-- SIGINT and SIGTERM stop the runs as `orket run` does on SIGINT (journal consistent,
-- resumable) while the server stops accepting, ends the streams and drains; a client gone
-- mid-write is the server's business, not a signal's -> {ended=}: set once the server has
-- stopped, after which a signal changes nothing. The handles stay until the process ends
-- (the runtime closes them last): closed earlier, the default action would be back, and a
-- second SIGTERM a few ms after the first would end the server with 143 instead of 0.
local function on_signals(server, db)
  local state = { ended = false }
  -- name: the signal's, or nil for a stop of the server's own (its store's file gone: storewatch)
  function state.stop(name)
    if state.ended or state.stop_at then return end -- stopped, or stopping, already
    uv.update_time()
    state.stop_at = uv.now() -- (the stop's budget counts from here: drain_telemetry)
    -- said in the log, as its end is (serve_until_stopped): a server that vanished on a
    -- logrotate's SIGHUP, exit 0, left a log that just ended
    state.signal = name and name:upper() or nil
    server:_log { event = "stopping", signal = state.signal or cjson.null }
    otel.mark_stop() -- what its runs' ends lose from now on is the stop's to say
    -- the stop's statements (runs' last writes, the audit's checkpoint) wait for the store
    -- STORE_MS at most: a PostgreSQL that stopped answering held the stop for good
    for _, p in pairs(server.projects) do stopsignals.bound_store(p.db) end
    for _, p in pairs(server.projects) do executor.stop_all(p.db) end
    task.spawn(server.stop, server)
  end
  stopsignals.on_stop(state.stop) -- the first one; the next are ignored (orket.stopsignals)
  -- the store's file removed or replaced under it: stopped, exit 1, rather than answering
  -- writes into a file nobody will read again
  state.watch = storewatch.start(server.projects, function(name, message)
    state.failure = message
    server:_log { event = "error", project = name, message = message }
    state.stop(nil)
  end)
  local pipe = uv.new_signal()
  pipe:start("sigpipe", function() end)
  return state
end

-- Serves until stopped: the runs it executes (orket.engine.executor) and its workers log as
-- the server does (--workers 0: the workers run apart, another container or a Deployment of
-- their own); the bug-fix phases tick on the loop (orket.sandboxes.phase), this server's
-- own sandboxes stopped through their handles -> ok, err.
local function serve_until_stopped(server, db, dir, nworkers, signals)
  local log = function(f) server:_log(f) end
  for _, p in pairs(server.projects) do executor.registry(p.db).log = log end
  local pool
  if nworkers then
    executor.registry(db).workers = true
    if nworkers > 0 then pool = workers.start { dir = dir, n = nworkers, log = log } end
  end
  local ticker = phase.ticker { db = db, dir = dir, log = log, stop = sandboxes.stop_sandbox, recheck = sandboxes_recheck.due }
  local ok, terr = task.spawn(server.run, server):join()
  -- a run that failed left the server open, proxying from its memory in C with no one
  -- accepting: stopped here, its requests in flight ended before the exit
  if not ok then task.spawn(function() pcall(server.stop, server) end):join() end
  ticker.close()
  for _, p in pairs(server.projects) do
    executor.stop_all(p.db) -- the server failed: its runs stop too
    executor.wait_all(p.db)
    -- the sandboxes it started would end with it anyway: stopped, they are recorded so
    task.spawn(sandboxes.stop_all, p.db):join()
  end
  if pool then
    -- the workers' drains fit what is left of the stop's budget (their runs' stop first)
    local left
    if signals.stop_at then
      uv.update_time()
      left = math.max(0, otel.STOP_BUDGET_MS - (uv.now() - signals.stop_at))
    end
    task.spawn(pool.stop, pool, left):join()
  end
  signals.ended = true
  signals.watch.close()
  if signals.stop_at then
    uv.update_time()
    server:_log { event = "stopped", signal = signals.signal or cjson.null, ms = uv.now() - signals.stop_at }
  end
  return ok, terr
end

-- The server made live -> its signals' state (on_signals). The sandboxes a killed server
-- owned ended with it: recorded so before anyone reads them (the metrics and the board
-- would show them healthy; their proxy could only answer 502). The signals are handled
-- before the address is printed: a supervisor that stops the server as soon as it is told
-- the address gets the graceful stop, not the default action.
local function go_live(server, db, host, token, cli)
  for _, p in pairs(server.projects) do task.spawn(service.reconcile, p.db):join() end
  local signals = on_signals(server, db)
  announce(server, host, token, cli)
  return signals
end

-- The telemetry as the server's runs would export it (the environment, the project's
-- orket.lua) -> cfg | nil (no export) | nil, message: gRPC, which every run would refuse
-- (orket.otel.config), refused once at the start instead of at each run, the server up.
-- An exporter Orket does not have (zipkin...) only turns its signal off: cfg's warnings.
local function telemetry(dir)
  local data = config.read(dir) -- a broken orket.lua is its runs' and /ready's to report
  local cfg, err = otel.config(os.getenv, type(data) == "table" and data.telemetry or nil)
  if err then return nil, err end
  return cfg
end

-- Its runs stopped, the last spans and metrics of each leave before the process does, as
-- orket run's, within otel.SHUTDOWN_MS in all (a collector that is down never holds the stop
-- longer), and within otel.STOP_BUDGET_MS of the signal (its requests' drain and its
-- workers' stop came first): docker stop's SIGKILL comes 10 s after its SIGTERM. What a
-- collector did not take is a warning line of the log.
local function drain_telemetry(server, signals)
  local within = otel.SHUTDOWN_MS
  if signals.stop_at then -- what is left of the stop's budget: the workers' drains came before
    uv.update_time()
    within = otel.stop_within(uv.now() - signals.stop_at)
  end
  local ok, lines = task.spawn(otel.stop_drain, within):join()
  if not ok then lines = { "telemetry drain: " .. tostring(lines) } end
  for _, line in ipairs(lines) do server:_log { event = "warning", message = line } end
end

local function close_all(list)
  for _, p in ipairs(list) do p.db:close() end
end

-- The other projects this server hosts (orket.serve.projects), their stores opened: each
-- its own SQLite file, or its orket.lua's store.url (ORKET_DATABASE_URL names the default
-- project's) -> array of {name, dir, db}, array of {name, dir, unavailable = why} | nil,
-- msg. A project whose store does not open (its folder or database gone) is unavailable:
-- the others are served all the same, and its routes say why (orket.serve).
local function open_projects(dir, db)
  local names, nerr = projects.named(db, uv.fs_realpath(dir) or dir, (web.settings(dir) or {}).projects)
  if not names then return nil, nerr end
  local out, down = {}, {}
  for _, p in ipairs(names) do
    local pdb, perr = projects.open(p.dir)
    if pdb then out[#out + 1] = { name = p.name, dir = p.dir, db = pdb }
    elseif not uv.fs_stat(p.dir) then
      -- moved or removed: an init there (the store's own remedy) would host an empty project
      -- under the old name
      down[#down + 1] = { name = p.name, dir = p.dir, unavailable = string.format("project '%s' (%s) is unavailable: "
        .. "its folder is gone (moved or removed); if it moved, 'orket projects remove %s' and 'orket projects add "
        .. "NEW_FOLDER' host it from there", p.name, p.dir, p.name) }
    else
      down[#down + 1] = { name = p.name, dir = p.dir, unavailable = string.format("project '%s' (%s) is unavailable: %s; "
        .. "the server's log says so at its start (orket projects remove %s stops hosting it)", p.name, p.dir,
        tostring(perr), p.name) }
    end
  end
  -- one store served as two projects: each one's members would read and write the other
  local same = projects.one_store({ { name = projects.DEFAULT, dir = dir, db = db }, table.unpack(out) })
  if same then
    close_all(out)
    return nil, same
  end
  -- a name that names another store than before: its old members are not this one's
  for _, p in ipairs(out) do p.rebound = team.rebind(db, p.name, store_projects.store_id(p.db), localuse.operator(), "serve") end
  return out, down
end

-- The server, on its projects, where = {host=, port=, limits=, log=, hold=} (log: its
-- writer, open_log; hold: the socket's, hold_socket) -> server, the other projects | nil
-- (the error said, the default project's store closed)
local function new_server(dir, db, token, where, cli)
  local others, err = open_projects(dir, db)
  local down = others and err or {}
  local server
  let_go(where.hold, not others)
  if others then
    server, err = serve.new { dir = dir, db = db, host = where.host, port = where.port, limits = where.limits,
      unix = dir .. "/" .. localuse.SOCKET, local_token = token, projects = others, unavailable = down,
      log = function(line) where.log:line(line) end }
  end
  if server then
    server.metrics:log_drops(where.log)
    for _, p in ipairs(down) do server:_log { event = "error", project = p.name, message = p.unavailable } end
    for _, p in ipairs(others) do
      if p.rebound then server:_log { event = "project_rebound", project = p.name, message = projects.rebound_text(p.rebound) } end
    end
    return server, others
  end
  if others then close_all(others) end
  if token then localuse.remove_token(dir, token) end
  db:close()
  cli.err("%s", err)
  return nil
end

-- The server's log on stderr (orket.serve.logwriter): written by a thread, so a reader that
-- stops reading (a full pipe) never holds the loop, /health included. io.stderr's other
-- writers in this process (the sandboxes', the webhooks', the leases' warnings) go the same
-- way, in order -> writer, warning | nil
local function open_log()
  return logwriter.open { as_stderr = true,
    dropped_line = function(n) return logwriter.dropped_event(n, "orket_log_lines_dropped_total") end }
end

-- what the log queued written (logwriter.FLUSH_MS at most), io.stderr the real one again
local function close_log(w) task.spawn(w.close, w):join() end

-- RLIMIT_NOFILE's soft and hard limits as /proc/self/limits says them (Linux) -> soft,
-- hard (nil: unlimited or unknown)
local function fd_limits()
  local f = io.open("/proc/self/limits", "r")
  if not f then return nil end
  local text = f:read("a") or ""
  f:close()
  local soft, hard = text:match("Max open files%s+(%S+)%s+(%S+)")
  return math.tointeger(tonumber(soft)), math.tointeger(tonumber(hard))
end

-- The descriptors serve needs beyond a connection each: a project's store (SQLite's file,
-- its -wal, -shm and journal, or PostgreSQL's connections), a --workers process (its
-- stdio, the stop budget's socketpair) and the rest (the two listeners and their epoll,
-- the unix socket's clients, the log's pipes, libuv's, model calls, git, sandbox relays)
cmd.FDS_PER_STORE, cmd.FDS_PER_WORKER, cmd.FDS_RESERVE = 8, 4, 128

-- A warning when the open-files limit is below what the server needs: past it, accept
-- fails (EMFILE) and libmicrohttpd accepts nothing until a connection closes, every client
-- held up, /health too. core/httpd.c has raised a low soft limit to the hard one already
-- (env.fds: the soft limit before) -> message | nil
local function fd_warning(server, env)
  local soft, hard = fd_limits()
  if not soft then return nil end
  local nprojects = 0
  for _ in pairs(server.projects) do nprojects = nprojects + 1 end
  local conns, nworkers = env.limits.max_connections, env.workers or 0
  local need = conns + nprojects * cmd.FDS_PER_STORE + nworkers * cmd.FDS_PER_WORKER + cmd.FDS_RESERVE
  if soft >= need then return nil end
  return string.format("open files: the limit is %d (RLIMIT_NOFILE%s) and serving needs %d: %d connections "
    .. "(max_connections), %d a project's store (%d), %d a worker (%d) and %d for the rest; past it "
    .. "new connections wait until one closes, /health's too. Raise it (ulimit -n %d before orket serve, systemd's "
    .. "LimitNOFILE=, docker run --ulimit nofile=), or lower max_connections in ORKET_SERVE_LIMITS", soft,
    env.fds and soft > env.fds and string.format(", raised from %d to the hard limit", env.fds)
      or (hard and string.format(", its hard limit %d", hard) or ""),
    need, conns, cmd.FDS_PER_STORE, nprojects, cmd.FDS_PER_WORKER, nworkers, cmd.FDS_RESERVE, need)
end

-- What the start says in the log, one JSON object a line: the telemetry's warnings (a
-- protocol sent as http/json anyway), now and when its runs make their tracers; a pepper
-- there but unusable, which refuses every key (said now, not at the first 401); a log
-- written in the loop after all (open_log); an open-files limit too low (fd_warning)
local function say_at_start(server, dir, env, lwarn)
  otel.warn = function(text) server:_log { event = "warning", message = text } end
  otel.say(env.telemetry)
  -- its runs' exports while it serves: a collector that keeps failing is a
  -- telemetry_failing line (once a minute at most) and telemetry_recovered once it takes
  -- them again; GET /metrics counts them (before, only its stop said what its stop lost)
  otel.report = function(fields) server:_log(fields) end
  server.metrics:telemetry(otel.counted)
  local perr = keys.pepper_problem(dir)
  if perr then server:_log { event = "warning", message = perr } end
  if lwarn then server:_log { event = "warning", message = lwarn } end
  local fwarn = fd_warning(server, env)
  if fwarn then server:_log { event = "warning", message = fwarn } end
  -- each project's audit head: a checkpoint that will be refused is said now
  for name, p in pairs(server.projects or {}) do
    local ok, why = pcall(audit_chain.head_check, p.db, p.dir)
    if ok and why then
      server:_log { event = "error", project = name, message = "audit: the next checkpoint will be refused: " .. why
        .. "; orket audit verify names it (docs/audit.md)" }
    end
  end
end

-- What the environment sets, checked before anything opens (the server's limits, its
-- telemetry), with --workers and the open-files limit before any listener raised it ->
-- {limits=, telemetry=, workers=, fds=} | nil, said
local function from_env(dir, cli, nworkers)
  local limits, lerr = serve.limits(os.getenv("ORKET_SERVE_LIMITS"))
  if not limits then
    cli.err("ORKET_SERVE_LIMITS: %s", lerr)
    return nil
  end
  local tcfg, terr = telemetry(dir)
  if terr then
    cli.err("%s", terr)
    return nil
  end
  return { limits = limits, telemetry = tcfg, workers = nworkers, fds = (fd_limits()) }
end

function cmd.run(args, cli)
  local o, st = cli.parse(cmd, args)
  if not o then return st end
  local dir = o.project or o.dir
  local given, source = given_key()
  if not given and source then
    cli.err("%s", source)
    return 1
  end
  -- with a key given it serves every interface (a container's port), never unkeyed
  local host, port = httpd.parse_listen(o.listen or (given and "0.0.0.0:8765" or "127.0.0.1:8765"))
  if not host then return cli.usage_error(cmd, "--listen %s", port) end
  local env = from_env(dir, cli, o.workers)
  if not env then return 1 end
  local db, token, hold = open_keyed(dir, host, given, source, cli)
  if not db then return 1 end
  local log <close>, lwarn = open_log()
  local server, others = new_server(dir, db, token or nil,
    { host = host, port = port, limits = env.limits, log = log, hold = hold }, cli)
  if not server then
    close_log(log)
    return 1
  end
  say_at_start(server, dir, env, lwarn)
  local signals = go_live(server, db, host, token, cli)
  local ok, terr = serve_until_stopped(server, db, dir, o.workers, signals)
  drain_telemetry(server, signals)
  if token then localuse.remove_token(dir, token) end
  close_all(others)
  db:close()
  close_log(log)
  cli.flush_unhandled()
  if not ok or signals.failure then
    cli.err("%s", terr or signals.failure)
    return 1
  end
  return 0
end

return cmd
