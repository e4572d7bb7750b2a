-- orket sandbox plan|compose|up|list|logs|check|stop|prune: what a sandbox of the project runs and why
-- (orket.sandboxes.plan), the compose file (plus a Dockerfile when the tree has none) for
-- deploying the same service elsewhere (orket.sandboxes.compose), and sandboxes started,
-- listed, read, stopped and pruned (orket.sandboxes.service), and the cards' acceptance checks run
-- against one (orket.sandboxes.deploy, .accept). docs/sandbox.md.
local cjson = require "cjson"
local rt = require "orket.c.runtime"
local jsonout = require "orket.jsonout"
local source = require "orket.sandboxes.source"
local compose = require "orket.sandboxes.compose"
local uv = require "luv"
local ops = require "orket.store.sandboxes"
local service = require "orket.sandboxes.service"
local inert = require "orket.inert"
local config = require "orket.config"
local stopsignals = require "orket.stopsignals"
local board_mod = require "orket.board"
local deploy = require "orket.sandboxes.deploy"
local accept = require "orket.sandboxes.accept"
local task = require "orket.task"
local sv = require "orket.store.verifications"
local supervise = require "orket.sandboxes.supervise"
local cmdline = require "orket.cmdline"
local pidstart = require "orket.sandboxes.pidstart"
local tree = require "orket.tree"

local cmd = { name = "sandbox", summary = "main's tree run as a service: plan, up, list, logs, check, stop, prune, compose" }
local SUBCOMMANDS = { "plan", "up", "list", "logs", "check", "stop", "prune", "compose" }
-- the subcommand, then its own words, read against its declaration (DECL below)
cmd.args = {
  usage = "orket sandbox plan [--json] | up [--detach] [--replace] [--commit ID] [--card CARD] | list [--all] [--json] "
    .. "| logs ID [--follow] | check [ID] [--card CARD] [--json] | stop ID [--force] | prune "
    .. "| compose [--out DIR] [--force] [--commit ID]   "
    .. "(each takes -C DIR)",
  { "plan|up|list|logs|check|stop|prune|compose", key = "sub", last = true,
    missing = "sandbox needs a subcommand: plan, up, list, logs, check, stop, prune or compose",
    check = cmdline.one_of(SUBCOMMANDS,
      "unknown sandbox subcommand '%s' (plan, up, list, logs, check, stop, prune, compose)") },
  { "ARGS", key = "words", many = true, rest = true },
  -- -C DIR before the subcommand too (`orket sandbox -C DIR list`), handed on to its words
  { "-C", value = "DIR", key = "dir", what = "a directory", once = cmdline.one_dir, check = cmdline.a_dir("-C") },
}
cmd.help = [[
plan      says what a sandbox would run from main's tree at main's head (its commit): orket.lua's
          sandbox.command when it is set, else what was detected (a package.json script, a
          Python entry point and its framework, go.mod, a Makefile run/serve/start target),
          with the reasons, the port variable and the health check. --json for a program.
up        starts main's tree at a commit (main's head, or --commit ID), written out of the
          repository (never workspace/, which may hold a person's edits), as a service in a sandbox: every confinement layer agent
          code gets, plus a network namespace of its own with its loopback up. The app is
          told its port ($PORT) and reached only through a unix socket the runner relays to
          that port (.orket/sandboxes/ID/app.sock), e.g.
            curl --unix-socket .orket/sandboxes/1/app.sock http://sandbox/
          Waits until it is healthy (exit 1, with the log's tail, when it is not within
          health.start_timeout_ms), then stays in the foreground probing its health until
          Ctrl-C stops it. --detach leaves it running in the background and returns;
          --replace stops this folder's live sandbox of main first (what a deploy does);
          --card CARD runs the acceptance checks (sandbox_checks) of that merged card once
          it is healthy (of its epic's or rock's done issues with sandbox.deploy = epic or rock),
          and a failure goes back to the card with the checks' output and the log's tail (one
          that is no card's, such as nothing to run where no sandbox ever ran, is only said).
list      the live sandboxes (--all: the ended ones too): id, status, port, commit, socket, since.
          A sandbox of this machine whose owner ended is marked exited first; one another
          machine sharing the store runs is shown as it recorded itself ("live on another
          machine: HOST"; another container of this host, "live in another container or
          pid namespace on this host: HOST"), ended only by its own commands.
logs      the app's output (stdout and stderr, rotated at sandbox.log_max_bytes);
          --follow keeps printing until the sandbox ends or Ctrl-C. The log of an ended
          sandbox whose folder retention removed (prune) is said removed (exit 1).
check     runs the cards' acceptance checks (an issue's sandbox_checks: HTTP requests
          through the sandbox's socket, pages in a headless Chromium) against the live
          sandbox ID (default: the newest healthy one of main), for --card CARD or every
          card that has them; journaled (sandbox_check). Exit 1 when one fails. --json.
stop      stops a live sandbox: its whole process tree ends, and the stop is journaled.
          --force ends the row of one whose owner cannot be asked from here (another
          machine's, that machine gone for good): marked exited, naming who forced it;
          no file is touched. A sandbox whose owner can be asked is stopped as without it.
prune     retention, as each up does: of this folder's ended sandboxes, the folders
          (.orket/sandboxes/ID: the log, its rotations, the owner's files) of all but the
          newest sandbox.keep_ended (default 20) are removed; never a live sandbox's, one
          whose owner's lock is held, one still holding databases, or another machine's.
          Says what it removed and what it kept past the setting, and why.
compose   writes compose.yaml (and a Dockerfile when the tree has none) for the same service
          into --out DIR (default: the project's deploy/), its build context src/ beside it:
          main's tree at main's head (or --commit ID), written out of the repository, never
          workspace/; existing files are not replaced without --force.]]

-- What a sandbox of main's head (or rev) would run: plan, settings, commit | nil (printed).
local function load(dir, cli, rev)
  -- main's tree is written out under the project's .orket/: the built-in defaults stand for
  -- a missing orket.lua only beside a project's store (as up, list, check and prune read
  -- it); a folder with neither orket.lua nor a store is no project, and is refused before
  -- anything is written there
  local cfg, s = cli.project_settings(dir, uv.fs_stat(dir .. "/.orket") ~= nil)
  if not cfg then return nil end
  local p, perr, _, why = source.plan(dir, s.sandbox, rev)
  if not p then
    cli.err("%s", perr)
    for _, w in ipairs(why or {}) do io.stderr:write("  - ", w, "\n") end
    return nil
  end
  return p, s, perr
end

-- an entry that others start after is checked by the services' script too, before they
-- start (orket.sandboxes.supervise): how
local function entry_first(one, port)
  local h = one.health
  return "; before the services after it start, "
    .. (h and h.kind == "cmd" and ("the compose file's test: " .. table.concat(h.argv, " "))
      or ("a TCP connect to port " .. port))
end

-- What a service's health check is, in the plan's words
local function health_text(p, one, i, ports)
  local h = one.health
  -- a job (service_completed_successfully) runs to its end, with no port and no check
  return one.job and "none: a job, run to its end (exit 0) before the services after it start"
    or supervise.settles_entry(one)
      and string.format("none (the compose file turns it off; the last to start, it publishes no port): up once it has run %d ms",
        supervise.SETTLE_MS)
    or one.entry and ((p.health.kind == "http" and ("HTTP GET " .. p.health.path) or "TCP connect")
      .. " through the socket, by the sandbox's owner"
      .. (i < #p.services and entry_first(one, ports[one.name]) or ""))
    -- a database's own check is what runs, whatever the compose file's healthcheck says
    -- (SQLite is a file Orket makes and seeds before the services start: nothing runs)
    or one.database == "sqlite" and "none: its file is made (and seeded) before the services start"
    or one.database and "the database answers (pg_isready)"
    or h and h.kind == "cmd" and ("the compose file's test: " .. table.concat(h.argv, " "))
    or h and h.kind == "none" and string.format("none (the compose file turns it off): up once it has run %d ms",
      supervise.SETTLE_MS)
    or ("TCP connect to port " .. ports[one.name])
end

-- what the run waits for of a service others start after, whatever depends_on's condition
-- (service_started and service_healthy alike: the script starts the next service only once
-- those before it are healthy)
local function awaited(other)
  if not other then return "" end
  if other.job then return " (run to its end)" end
  if other.database == "sqlite" then return " (its file, made before the services start)" end
  if supervise.settles(other) then
    return string.format(" (up: running %d ms, as it has no health check)", supervise.SETTLE_MS)
  end
  return " (healthy)"
end

-- A service's reasons, and what it waits for of those it starts after (as the plan's text
-- says it) -> reasons, waits
local function waits_of(one, by_name)
  local reasons, waits = one.reasons, {}
  for j, d in ipairs(one.depends_on) do
    local other = by_name[d.name]
    waits[j] = d.name .. awaited(other)
    -- compose refuses service_healthy on a service without a check; here it is the same
    -- wait as service_started, and that service is up once it has run SETTLE_MS: said
    if d.healthy and other and supervise.settles(other) then
      reasons = reasons == one.reasons and { table.unpack(reasons) } or reasons
      reasons[#reasons + 1] = string.format("waits for %s's service_healthy, but %s has no health check: it is up "
        .. "once it has run %d ms, which says nothing of its being ready", d.name, d.name, supervise.SETTLE_MS)
    end
  end
  return reasons, waits
end

-- The services of a plan as data: each one's name, folder, command, port as planned (the
-- sandbox's first port, 8080, for the entry; none for a job), health check and what it
-- starts after; and, by index, what each waits for of those, as the text says it.
local function services_doc(p)
  local ports = supervise.ports(p, service.PORT_BASE)
  local out, by_name, said = {}, {}, {}
  for _, one in ipairs(p.services) do by_name[one.name] = one end
  for i, one in ipairs(p.services) do
    local after = {}
    for j, d in ipairs(one.depends_on) do after[j] = d.name end
    local reasons, waits = waits_of(one, by_name)
    out[i] = { name = one.name, dir = one.dir, entry = one.entry, command = one.command and jsonout.array(one.command) or nil,
      database = one.database, job = one.job or nil, port = not one.job and ports[one.name] or nil,
      health_text = health_text(p, one, i, ports), depends_on = jsonout.array(after), reasons = jsonout.array(reasons) }
    said[i] = waits
  end
  return out, said
end

-- The plan as the documented JSON document.
local function plan_json(p, s, commit)
  io.stdout:write(jsonout.encode {
    commit = commit, stack = p.stack, explicit = p.explicit or false, command = jsonout.array(p.command),
    install = p.install and jsonout.array(p.install) or cjson.null, port_env = p.port_env,
    health = { kind = p.health.kind, path = p.health.path or cjson.null, interval_ms = p.health.interval_ms,
      timeout_ms = p.health.timeout_ms, failures = p.health.failures, start_timeout_ms = p.health.start_timeout_ms },
    deploy = s.sandbox.deploy, network = s.sandbox.network, dockerfile = p.dockerfile,
    reasons = jsonout.array(p.reasons), dir = p.dir, services = p.services and jsonout.array(services_doc(p)) or cjson.null,
  }, "\n")
end

-- Each service of a plan that has several, in the order they start.
local function plan_services(out, p)
  out:write("services (in the order they start):\n")
  local docs, waits = services_doc(p)
  for i, d in ipairs(docs) do
    out:write(string.format("  %s%s\n", d.name, d.entry and " (reached through the sandbox's socket)" or ""))
    out:write("    folder:   ", d.dir ~= "" and (d.dir .. "/") or "the root", "\n")
    out:write("    command:  ", d.command and table.concat(d.command, " ")
      or d.database == "sqlite" and "none: a file of Orket's own SQLite, no process"
      or ("Debian's " .. tostring(d.database)), "\n")
    out:write("    port:     ", d.port or "none (a job)", d.entry and " (the sandbox's port)" or "", "\n")
    out:write("    health:   ", d.health_text, "\n")
    if #d.depends_on > 0 then out:write("    after:    ", table.concat(waits[i], ", "), "\n") end
    for _, w in ipairs(d.reasons) do out:write("    - ", w, "\n") end
  end
end

local function plan(o, cli)
  local p, s, commit = load(o.dir, cli)
  if not p then return 1 end
  -- a sandbox that cannot start in this folder (its socket path too long) is said now, on
  -- stderr (the JSON stays whole), not only when a deploy fails after an epic's work
  local long = service.path_warning(o.dir)
  if long then io.stderr:write("orket: warning: a sandbox cannot start in this folder: ", inert.text(long), "\n") end
  if o.json then
    plan_json(p, s, commit)
    return 0
  end
  local out = io.stdout
  out:write("commit:   ", commit, " (main's head)\n")
  out:write("stack:    ", p.stack, p.explicit and " (command from orket.lua)" or "", "\n")
  out:write("command:  ", table.concat(p.command, " "), "\n")
  if p.install then out:write("install:  ", table.concat(p.install, " "), "\n") end
  out:write("port:     $", p.port_env, " (Orket chooses it; {port} on the command line too)\n")
  out:write("health:   ", p.health.kind == "http" and ("HTTP GET " .. p.health.path) or "TCP connect",
    string.format(" every %d ms, %d ms timeout, unhealthy after %d failures\n", p.health.interval_ms,
      p.health.timeout_ms, p.health.failures))
  out:write("deploy:   ", s.sandbox.deploy, s.sandbox.deploy == "manual" and " (orket sandbox up)" or " (after each "
    .. (s.sandbox.deploy == "merge" and "merged card" or s.sandbox.deploy .. " done") .. ")", "\n")
  out:write("why:\n")
  for _, w in ipairs(p.reasons) do out:write("  - ", w, "\n") end
  if p.services then plan_services(out, p) end
  return 0
end

-- Writes name in dir unless it exists (or force): true | nil (printed). dir may be a
-- folder of the tree, which the agents wrote: a link there is never written through (the
-- file itself a link is refused; its temp file is new, O_EXCL, so no link is followed).
-- shown: dir as the messages name it (the export's final place, not its temp folder).
local function write(cli, dir, name, text, force, shown)
  local path = dir .. "/" .. name
  local named = (shown or config.shown(dir)) .. "/" .. name
  local st = uv.fs_lstat(path)
  if st and st.type == "link" then
    cli.err("%s is a symbolic link: not replaced, nor written through", named)
    return nil
  end
  if not force and st then
    cli.err("%s exists: not replaced (use --force)", named)
    return nil
  end
  local tmp = string.format("%s.%d-%d.tmp", path, uv.os_getpid(), uv.hrtime())
  local fd, err = uv.fs_open(tmp, "wx", 420)
  if not fd then cli.err("%s", err) return nil end
  local n, werr = uv.fs_write(fd, text)
  uv.fs_close(fd)
  if n ~= #text then
    uv.fs_unlink(tmp)
    cli.err("%s: %s", config.shown(tmp), tostring(werr or "short write"))
    return nil
  end
  local ok, rerr = os.rename(tmp, path)
  if not ok then uv.fs_unlink(tmp) cli.err("%s", rerr) return nil end
  if not shown then io.stdout:write("wrote ", named, "\n") end
  return true
end

-- the first of root/rel's folders (below root) that is a symbolic link, as rel's prefix |
-- nil: a service's folder from the tree that leads elsewhere is neither written in nor
-- built from
local function link_on_way(root, rel)
  local at, seen = root, nil
  for part in rel:gmatch("[^/]+") do
    at, seen = at .. "/" .. part, seen and (seen .. "/" .. part) or part
    local st = uv.fs_lstat(at)
    if st and st.type == "link" then return seen end
  end
  return nil
end

-- "../.." for a folder rel below the build context, which sits in the folder compose.yaml
-- is written in: the way back to that folder (where Orket's Dockerfiles go)
local function up_from(rel)
  local n = 1
  for _ in rel:gmatch("[^/]+") do n = n + 1 end
  return ("../"):rep(n):sub(1, -2)
end

-- root/rel, rel a service's folder ("" for the root)
local function below(root, rel) return rel ~= "" and (root .. "/" .. rel) or root end

-- Several services: compose.yaml, and for each service's folder without a Dockerfile one
-- beside compose.yaml (NAME.Dockerfile) and the folder's .dockerignore when it has none.
-- ex: the exported tree (export_src); every folder is checked before anything is written.
local function write_services(cli, ex, p, force)
  local sqlite = false
  for _, sv in ipairs(p.services) do sqlite = sqlite or sv.database == "sqlite" end
  for _, sv in ipairs(p.services) do
    local link = not sv.database and link_on_way(ex.src, sv.dir)
    if link then
      cli.err("%s/%s: the folder of service %s is a symbolic link in main's tree at %s: Orket neither writes in it "
        .. "nor builds from it", ex.shown, link, sv.name, ex.short)
      return 1
    end
    if not sv.database and not uv.fs_stat(below(ex.src, sv.dir)) then
      cli.err("%s: the folder of service %s is not in main's tree at %s", sv.dir, sv.name, ex.short)
      return 1
    end
  end
  local dockerfiles = {}
  for _, sv in ipairs(p.services) do
    local folder = below(ex.src, sv.dir)
    if not sv.database and not uv.fs_stat(folder .. "/Dockerfile") then
      local name = sv.name .. ".Dockerfile"
      local df = compose.dockerfile { stack = compose.stack_of(sv), command = sv.command, install = sv.install, data = sqlite }
      if not write(cli, ex.out, name, df, force) then return 1 end
      dockerfiles[sv.name] = up_from(sv.dir) .. "/" .. name
      if not uv.fs_stat(folder .. "/.dockerignore") and not write(cli, folder, ".dockerignore", compose.DOCKERIGNORE,
          false, below(ex.shown, sv.dir)) then
        return 1
      end
    end
  end
  local text = compose.yaml(p, { context = "./src", dockerfiles = dockerfiles, commit = ex.commit })
  if not write(cli, ex.out, "compose.yaml", text, force) then return 1 end
  return 0
end

local function write_single(cli, ex, p, s, force)
  local text = compose.yaml(p, { name = s.name or "app", context = "./src", commit = ex.commit,
    dockerfile = not p.dockerfile and "../Dockerfile" or nil })
  if not write(cli, ex.out, "compose.yaml", text, force) then return 1 end
  local df = compose.dockerfile(p)
  if df and not write(cli, ex.out, "Dockerfile", df, force) then return 1 end
  -- the ignore file must be at the build context's root: the tree's own one is kept
  if df and not uv.fs_stat(ex.src .. "/.dockerignore")
      and not write(cli, ex.src, ".dockerignore", compose.DOCKERIGNORE, false, ex.shown) then
    return 1
  end
  return 0
end

-- The build context: main's tree at the plan's commit, written out of the repository into
-- OUT/src (never workspace/, main's view, which may hold a person's edits or lag behind
-- main). It is made in a temp folder beside and takes src's place once every file is
-- written. -> {src=, out=, shown=, commit=, short=} | nil (printed)
local function export_src(cli, dir, out_dir, commit, force)
  local shown = config.shown(out_dir .. "/src")
  if not force and uv.fs_lstat(out_dir .. "/src") then
    cli.err("%s exists: not replaced (use --force)", shown)
    return nil
  end
  -- absolute: the export opens the tree's subfolders by their whole path (source.scratch)
  local tmp = string.format("%s/.src.%d-%d.tmp", uv.fs_realpath(out_dir) or out_dir, uv.os_getpid(), uv.hrtime())
  local got, err = source.export(dir, commit, tmp)
  if not got then
    cli.err("%s", err)
    return nil
  end
  return { src = tmp, out = out_dir, shown = shown, commit = got, short = got:sub(1, 12) }
end

-- --out DIR (default: the project's deploy/), made when missing -> its path | nil (printed)
local function out_folder(cli, o)
  local out_dir = o.out or (o.dir .. "/deploy")
  -- the folder said as given (--out X), not by the temp file a write would have failed on
  local named = o.out and ("--out " .. o.out) or out_dir
  local st = uv.fs_stat(out_dir)
  if st and st.type ~= "directory" then
    cli.err("sandbox compose: %s: not a directory; nothing was written", config.shown(named))
    return nil
  end
  if not st then
    local ok, err = uv.fs_mkdir(out_dir, tonumber("755", 8))
    if not ok then
      cli.err("sandbox compose: %s: cannot make the folder (%s); nothing was written", named,
        tostring(err):match("^(%u+):") or tostring(err))
      return nil
    end
  end
  return out_dir
end

local function write_compose(o, cli)
  local dir, force = o.dir, o.force
  local p, s, commit = load(dir, cli, o.commit)
  if not p then return 1 end
  local out_dir = out_folder(cli, o)
  if not out_dir then return 1 end
  -- compose.yaml's own refusal first: it is what a second run without --force meets
  if not force and uv.fs_lstat(out_dir .. "/compose.yaml") then
    cli.err("%s exists: not replaced (use --force)", config.shown(out_dir .. "/compose.yaml"))
    return 1
  end
  local ex = export_src(cli, dir, out_dir, commit, force)
  if not ex then return 1 end
  local rc
  if p.services then rc = write_services(cli, ex, p, force) else rc = write_single(cli, ex, p, s, force) end
  if rc == 0 then
    tree.remove(out_dir .. "/src")
    local ok, err = os.rename(ex.src, out_dir .. "/src")
    if not ok then
      cli.err("%s: %s", ex.shown, tostring(err))
      rc = 1
    else
      io.stdout:write(string.format("wrote %s (main's tree at %s)\n", ex.shown, ex.short))
    end
  end
  if rc ~= 0 then tree.remove(ex.src) end
  return rc
end

-- ---- up, list, logs, stop -------------------------------------------------------------

local function cli_err_line(msg) io.stderr:write("orket: " .. tostring(msg) .. "\n") end -- (one write, as cli.err)

-- the socket's path as a shell word: a project's path with a space or a newline pasted bare
-- named another file
local function sock_hint(row)
  return string.format("curl --unix-socket %s http://sandbox/", inert.shell_word(row.socket))
end

-- The row of the sandbox the owner pid started, once it is past starting; nil when the
-- owner ended without one (exited() its status once it has) or wrote none within wait_ms
-- (30 s and more with a longer stop: a deploy's wait for the sandbox it replaces is under it).
-- (the pid is this machine's: another machine's rows may name the same one)
local function owner_row(db, pid, exited, wait_ms)
  local t0 = uv.now()
  while true do
    local row
    for _, r in ipairs(ops.list(db, true)) do
      if service.owned_by(r, pid) then row = r break end
    end
    if row and row.status ~= "starting" then return row end
    -- the owner ended without a sandbox (or before it was healthy), or never wrote one
    if exited() ~= nil and not (row and row.status == "starting") then return row end
    if not row and uv.now() - t0 > (wait_ms or 30000) then return nil end
    rt.sleep(50)
  end
end

cmd._owner_row = owner_row -- (for the specs)

-- the command line a hint shows for `orket sandbox WORDS` on this project: this binary (orket
-- need not be on PATH) and the project's -C when it was given, so it runs as printed
local function again(o, cli, words)
  local where = (o.dir and o.dir ~= ".") and (" -C " .. cli.shell_quote(o.dir)) or ""
  return cli.program() .. " sandbox " .. words .. where
end

-- What a detached `up` says of the sandbox its owner started -> exit status.
local function say_detached(o, cli, row, pid, exited, out_path, from, ino, wait_ms)
  if not row or row.status == "starting" then
    -- this owner's own output: the log holds every earlier owner's before it (moved to
    -- .1 meanwhile by another owner's start: the file of our inode, or none)
    local f = service.owner_file(out_path, ino)
    local tail = f and f:seek("set", from or 0) and f:read("a") or ""
    if f then f:close() end
    cli.err("the sandbox's owner (pid %d) %s", pid, exited ~= nil and ("ended (status " .. exited .. ") without a sandbox")
      or string.format("started no sandbox within %d s", wait_ms // 1000))
    if tail ~= "" then io.stderr:write(inert.text(tail:sub(-2000))) end
    return 1
  end
  if row.status ~= "healthy" then
    -- the detail names the sandbox already ("sandbox 4: the app exited ..."); then the
    -- app's last lines, as a start in the foreground prints them: why it failed is there
    local detail = tostring(row.detail):gsub("^sandbox " .. row.id .. ": ", "")
    cli.err("sandbox %d %s: %s", row.id, row.status, detail)
    local home = service.dir_of(row)
    local tail = home and accept.log_tail(home .. "/app.log", 20, 4000) or ""
    if tail ~= "" then io.stderr:write("the app's last output:\n", tail, "\n") end
    io.stderr:write("its log: ", again(o, cli, "logs " .. row.id), "\n")
    return 1
  end
  io.stdout:write(string.format("sandbox %d is healthy (port %d, owner pid %d, commit %s)\nreach it: %s\nstop it: %s\n",
    row.id, row.port, pid, tostring(row.commit_id), sock_hint(row), again(o, cli, "stop " .. row.id)))
  return 0
end

-- The child a detached `up` leaves running; the parent waits for its sandbox's row.
local function detach(o, cli)
  -- what would run is checked here, where its error can still be printed; the owner runs
  -- the very commit checked, whatever main holds by then
  local p, s, commit = load(o.dir, cli, o.commit)
  if not p then return 1 end
  local wait_ms = 30000 + service.replace_wait_ms(s.sandbox.stop_timeout_ms) - service.REPLACE_WAIT_MS
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local exited
  local pid, out_path, from, ino = service.start_owner(o.dir, { replace = o.replace, commit = commit, card = o.card,
    run = o.run, on_exit = function(code) exited = code end })
  if not pid then
    db:close()
    cli.err("cannot start the sandbox's owner: %s", out_path)
    return 1
  end
  local row = owner_row(db, pid, function() return exited end, wait_ms)
  db:close()
  return say_detached(o, cli, row, pid, exited, out_path, from, ino, wait_ms)
end

-- A card's acceptance checks after a deploy (--card): run, journaled, a failure sent back.
local function accept_deployed(db, s, sb, card, run_id)
  local board = board_mod.open(db)
  local outs = deploy.accept_after { db = db, board = board, settings = s, sandbox = sb,
    cards = deploy.accepting(s.sandbox.deploy, board, card), run_id = run_id, send_back = true }
  for _, o in ipairs(outs) do
    io.stdout:write(string.format("sandbox %d: acceptance checks of %s %s%s\n", sb.id, o.card,
      o.result.ok and "passed" or "FAILED", o.outcome == "followup" and (" (follow-up " .. tostring(o.followup) .. ")")
      or o.outcome == "sent_back" and " (sent back to in_progress)" or ""))
    local skipped = accept.skipped(o.result)
    if not o.result.ok or #skipped > 0 then io.stdout:write(inert.text(accept.report(o.result)), "\n") end
    if o.error then cli_err_line(o.error) end
    if o.status and o.status.error then cli_err_line("the forge's status orket/sandbox: " .. tostring(o.status.error)) end
  end
  io.stdout:flush()
end

-- SIGINT, SIGTERM and SIGHUP (not under nohup: stopsignals.names) while `up` runs in the
-- foreground: the first one's reason is kept (state.asked); once the sandbox is there
-- (state.sb) it is stopped. -> close()
local function on_signals(state)
  local signals = {}
  for _, name in ipairs(stopsignals.names()) do
    local h = uv.new_signal()
    h:start(name, function()
      state.asked = state.asked or ("stopped by " .. name:upper())
      if state.sb then task.spawn(state.sb.stop, state.sb, state.asked) end
    end)
    signals[#signals + 1] = h
  end
  return function() for _, h in ipairs(signals) do h:close() end end
end

-- Each change of a foreground sandbox but its start and its health, as a line.
local function say_change(ev)
  if ev.status ~= "starting" and ev.status ~= "healthy" or ev.detail then
    io.stdout:write(string.format("sandbox %d: %s%s\n", ev.id, ev.status, ev.detail and (": " .. ev.detail) or ""))
    io.stdout:flush()
  end
end

-- A foreground sandbox, healthy: said, then waited for until it ends -> exit status.
local function run_foreground(sb, state)
  io.stdout:write(string.format("sandbox %d is healthy (port %d, commit %s)\nreach it: %s\nCtrl-C stops it\n", sb.id,
    sb.port, sb.commit, sock_hint { socket = sb.socket }))
  io.stdout:flush()
  if state.asked then task.spawn(sb.stop, sb, state.asked) end -- asked as it got healthy
  sb:wait()
  local stopped = sb.status == "stopped"
  io.stdout:write(string.format("sandbox %d %s\n", sb.id, stopped and "stopped" or ("exited: " .. sb:_exit_text())))
  return stopped and 0 or 1
end

-- A foreground sandbox that did not get healthy: said with the app's last output; a deploy
-- (--card) sends its cards back with it, unless it was stopped (replaced by the next) or
-- the failure is no card's (sent_back: no network namespace, the deploy lock held, nothing
-- to run where no sandbox ever ran): that is the operator's to fix, and a follow-up issue
-- would only spend turns.
local function sent_back(db, failure)
  if failure.id ~= nil then return true end
  -- the machine's or another deploy's, never the card's change
  if failure.code == "ENOTSUP" or failure.code == "EBUSY" then return false end
  -- nothing to run in a folder where no sandbox ever ran: a project with no sandbox set up,
  -- not one a card's change broke (a compose file it broke, an entry point it removed: sent
  -- back, as ever)
  if tostring(failure.message):find("nothing to run", 1, true) and #ops.list(db, true) == 0 then return false end
  return true
end

local function start_failed(o, cli, db, s, failure)
  cli.err("%s", failure.message)
  local tail = failure.log
  if tail and tail ~= "" then io.stderr:write("the app's last output:\n", inert.text(tail:sub(-2000)), "\n") end
  if not o.card or failure.code == "ECANCELED" or not sent_back(db, failure) then return end
  local outs = deploy.start_failed { db = db, board = board_mod.open(db), settings = s, card = o.card, run_id = o.run,
    sandbox = failure.id, commit = o.commit, message = failure.message, code = failure.code, log = tail }
  for _, x in ipairs(outs) do
    if x.error then cli_err_line(x.error)
    else io.stdout:write(string.format("%s: %s (the sandbox did not start)\n", x.card, x.outcome)) end
  end
end

-- --card names a card of the board -> nil | 1 (said): checked before anything starts, so a
-- typo is not said only after the start's own error
local function unknown_card(o, cli)
  if not o.card then return nil end
  local db = cli.open_store(o.dir, false, true)
  if not db then return 1 end
  local found = board_mod.open(db):get(o.card)
  db:close()
  if found then return nil end
  cli.err("--card %s: no such card (see '%s')", o.card, cli.program() .. " board" .. config.at(o.dir))
  return 1
end

local function up(o, cli)
  local _, s = cli.project_settings(o.dir, true)
  if not s then return 1 end
  if unknown_card(o, cli) then return 1 end
  if o.detach then return detach(o, cli) end
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  -- a signal while it starts ends the start; once it runs, it stops the sandbox
  local state = {}
  local close_signals = on_signals(state)
  local sb, err, code, tail, id = service.up { dir = o.dir, db = db, settings = s, replace = o.replace, commit = o.commit,
    on_healthy = o.card and function(h)
      if not state.asked then accept_deployed(db, s, h, o.card, o.run) end
    end,
    stopping = function() return state.asked end, emit = say_change }
  state.sb = sb
  local status = 1
  if sb then
    status = run_foreground(sb, state)
  else
    start_failed(o, cli, db, s, { message = err, code = code, log = tail, id = id })
  end
  close_signals()
  db:close()
  return status
end

local function list(o, cli)
  local db = cli.open_store(o.dir, false, true)
  if not db then return 1 end
  local rows = service.list(db, o.all)
  db:close()
  if o.json then
    local out = {}
    for i, r in ipairs(rows) do
      out[i] = { id = r.id, status = r.status, target = r.target, commit = r.commit_id or cjson.null, port = r.port, socket = r.socket,
        command = cjson.decode(r.command), owner_pid = r.owner_pid, machine = service.machine_of(r) or cjson.null,
        elsewhere = service.elsewhere_live(r), started_at = r.started_at,
        healthy_at = r.healthy_at or cjson.null, ended_at = r.ended_at or cjson.null, detail = r.detail or cjson.null,
        exit_code = r.exit_code or cjson.null, exit_signal = r.exit_signal or cjson.null }
    end
    -- jsonout, as every --json: no sandbox is [] (cjson wrote {}), keys in one order
    io.stdout:write(jsonout.encode(jsonout.array(out)), "\n")
    return 0
  end
  if #rows == 0 then
    io.stdout:write(o.all and "no sandboxes\n" or "no live sandboxes (--all lists the ended ones)\n")
    return 0
  end
  io.stdout:write(string.format("%-4s %-10s %-6s %-8s %-24s %s\n", "ID", "STATUS", "PORT", "COMMIT", "SINCE",
    "SOCKET / DETAIL"))
  for _, r in ipairs(rows) do
    local live = r.status == "starting" or r.status == "healthy" or r.status == "unhealthy"
    io.stdout:write(string.format("%-4d %-10s %-6d %-8s %-24s %s\n", r.id, r.status, r.port, (r.commit_id or "-"):sub(1, 7),
      live and (r.healthy_at or r.started_at) or (r.ended_at or ""),
      live and inert.line(r.socket) .. (r.detail and ("  (" .. inert.text(r.detail) .. ")") or "")
        .. (service.elsewhere_live(r) and ("  (live " .. service.runs_on(r) .. ": "
          .. inert.text(service.machine_of(r) or "?") .. ")") or "")
        or inert.text(r.detail or "")))
  end
  return 0
end

-- Follows a live sandbox's log (drain() prints what is new) until it ends or Ctrl-C.
local function follow(db, id, drain)
  local stop = false
  local h = uv.new_signal()
  h:start("sigint", function() stop = true end)
  while not stop do
    rt.sleep(200)
    drain()
    local r = service.get(db, id)
    if not r or not ops.LIVE[r.status] then
      drain()
      break
    end
  end
  h:close()
end

local function logs(o, cli)
  local db = cli.open_store(o.dir, false, true)
  if not db then return 1 end
  local id = o.id
  local row = service.get(db, id)
  -- a log retention removed is said so, not printed as nothing
  local removed = row and service.log_removed(row, o.dir)
  if not row or removed then
    db:close()
    cli.err("%s", removed or string.format("sandbox %d: no such sandbox (orket sandbox list --all)", id))
    return 1
  end
  local reader = service.log_reader((uv.fs_realpath(o.dir) or o.dir) .. "/.orket/sandboxes/" .. id .. "/app.log")
  local function drain()
    while true do
      local chunk = reader.read()
      if not chunk then break end
      io.stdout:write(inert.text(chunk))
    end
    io.stdout:flush()
  end
  drain()
  if o.follow then follow(db, id, drain) end
  reader.close()
  db:close()
  return 0
end

local function stop(o, cli)
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local ok, err
  if o.force then
    -- who forced it, in its row's detail: the end is this person's word, not its owner's
    local user = os.getenv("USER") or os.getenv("LOGNAME") or "?"
    ok, err = service.force_stop(db, o.id, string.format("orket sandbox stop --force, by %s on %s (pid %d)", user,
      tostring(pidstart.host), uv.os_getpid()))
  else
    ok, err = service.stop(db, o.id)
  end
  db:close()
  if not ok then
    cli.err("%s", err)
    return 1
  end
  io.stdout:write("sandbox ", o.id, " stopped\n")
  return 0
end

-- What a prune did, in a line each: what it removed, and what it kept past the setting.
local function say_pruned(res, keep)
  if res.busy then
    io.stdout:write("another prune is running in this folder (.orket/sandboxes/", service.PRUNE_LOCK, "); nothing done here\n")
    return
  end
  local ids = {}
  for i, id in ipairs(res.removed) do ids[i] = tostring(id) end
  io.stdout:write(#ids == 0 and "removed no folder" or ("removed the folders of sandboxes " .. table.concat(ids, ", ")),
    string.format(" (%d ended in this folder; sandbox.keep_ended = %d keeps the newest %d)\n", res.ended, keep, keep))
  for _, k in ipairs(res.kept) do
    io.stdout:write(string.format("kept sandbox %d's folder: %s\n", k.id, k.why))
  end
end

local function prune(o, cli)
  local _, s = cli.project_settings(o.dir, true)
  if not s then return 1 end
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  -- a live row whose owner is gone ends first: its folder is then an ended sandbox's
  service.reconcile(db)
  local res, err = service.prune(db, o.dir, s.sandbox.keep_ended)
  db:close()
  if not res then
    cli.err("%s", err)
    return 1
  end
  say_pruned(res, s.sandbox.keep_ended)
  return 0
end

-- The live sandbox to check: the one named, else the newest healthy one of main of the
-- folder dir (a store several folders share holds each one's).
local function live_sandbox(db, id, dir)
  local real = uv.fs_realpath(dir) or dir
  local rows = service.list(db, false)
  if id then
    for _, r in ipairs(rows) do if r.id == id then return r end end
    local r = service.get(db, id)
    return nil, r and string.format("sandbox %d is %s, not live", id, r.status) or string.format("sandbox %d: no such sandbox", id)
  end
  local best, others = service.pick(rows, real, true)
  if best then return best end
  local why = service.elsewhere(others, real)
  if why then
    return nil, string.format("no healthy sandbox of main in this folder, %s; %s, not this one (orket sandbox up "
      .. "starts one here)", real, why)
  end
  return nil, string.format("no healthy sandbox of main in this folder, %s (orket sandbox up starts one)", real)
end

-- The cards to check: card (which must have sandbox_checks), else every issue that has
-- them -> ids | nil, message.
local function cards_to_check(db, board, card)
  if card then
    if not board:get(card) then return nil, "no card " .. card end
    if not sv.sandbox_checks(db, card) then
      return nil, card .. " has no sandbox_checks (its epic file's issue sets them; docs/sandbox.md)"
    end
    return { card }
  end
  local cards = {}
  for _, c in ipairs(board:list { type = "issue" } or {}) do
    if sv.sandbox_checks(db, c.id) then cards[#cards + 1] = c.id end
  end
  if #cards == 0 then return nil, "no card has sandbox_checks (an issue's field in its epic file; docs/sandbox.md)" end
  return cards
end

-- The checks' results as the documented JSON document.
local function check_json(ok, row, outs)
  local doc = { ok = ok, sandbox = row.id, cards = {} }
  for i, o in ipairs(outs) do
    local results = {}
    for j, r in ipairs(o.result.results) do
      results[j] = { kind = r.kind, name = r.name, ok = r.ok, skipped = r.skipped or cjson.null, detail = r.detail,
        status = r.status or cjson.null,
        screenshot = r.screenshot or cjson.null, console = r.console and jsonout.array(r.console) or cjson.null,
        ms = r.ms }
    end
    doc.cards[i] = { card = o.card, ok = o.result.ok, results = jsonout.array(results), log = o.result.log }
  end
  doc.cards = jsonout.array(doc.cards)
  io.stdout:write(jsonout.encode(doc), "\n")
end

-- The live sandbox and the cards to check in it -> row, board, cards | nil (said).
local function check_targets(db, o, cli)
  local row, rerr = live_sandbox(db, o.id, o.dir)
  if not row then
    cli.err("%s", rerr)
    return nil
  end
  local board = board_mod.open(db)
  local cards, cerr = cards_to_check(db, board, o.card)
  if not cards then
    cli.err("%s", cerr)
    return nil
  end
  -- a card merged after the sandbox's commit would be judged by a tree without its change
  -- (a deploy that started nothing leaves the older sandbox live), and "passed" there says
  -- nothing of it
  local held, why = true, nil
  if o.card then held, why = deploy.brings(o.dir, db, o.card, row.commit_id) end
  if not held then
    cli.err("sandbox %d does not hold %s's change: %s; start one of main's head (orket sandbox up --replace), or "
      .. "name a sandbox that holds it", row.id, o.card, why)
    return nil
  end
  return row, board, cards
end

local function check(o, cli)
  local _, s = cli.project_settings(o.dir, true)
  if not s then return 1 end
  local db = cli.open_store(o.dir, false)
  if not db then return 1 end
  local row, board, cards = check_targets(db, o, cli)
  if not row then
    db:close()
    return 1
  end
  local outs = deploy.accept_after { db = db, board = board, settings = s,
    sandbox = { id = row.id, socket = row.socket, home = row.socket:gsub("/app%.sock$", ""), commit = row.commit_id,
      services = service.sockets(row) }, cards = cards, send_back = false }
  db:close()
  local ok = true
  for _, x in ipairs(outs) do ok = ok and x.result.ok end
  if o.json then
    check_json(ok, row, outs)
  else
    for _, x in ipairs(outs) do
      io.stdout:write(string.format("%s (sandbox %d): %s\n", x.card, row.id, x.result.ok and "passed" or "FAILED"))
      io.stdout:write(inert.text(accept.report(x.result)), "\n")
    end
  end
  return ok and 0 or 1
end

-- ---- the words of each subcommand -------------------------------------------------------

-- a sandbox id: a positive integer, else the error naming the subcommand
local function id_word(what)
  return function(v)
    local id = cmdline.integer(v)
    if not id or id < 1 then
      return nil, string.format("sandbox %s needs a sandbox id (a number, see orket sandbox list), got '%s'", what, v)
    end
    return id
  end
end

local function id_entry(what, optional)
  return { "ID", key = "id", optional = optional, check = id_word(what),
    missing = string.format("sandbox %s needs a sandbox id (a number, see orket sandbox list)", what) }
end

-- a subcommand's declaration: -C DIR and its entries; a word none takes is named in the error
local function takes(what, ...)
  local d = { text = "an argument", extra = "sandbox " .. what .. " takes no argument ('%s')", cmdline.DIR, ... }
  if d[2] and d[2][1] == "ID" then d.extra = "sandbox " .. what .. " takes one sandbox id ('%s')" end
  return d
end

local DECL = {
  plan = takes("plan", { "--json" }),
  compose = takes("compose", { "--force" }, { "--out", value = "DIR", what = "a directory" },
    { "--commit", value = "ID", what = "a commit id" }),
  up = takes("up", { "--detach", alias = "-d" }, { "--replace" }, { "--card", value = "CARD", what = "a card id" },
    { "--run", value = "RUN", what = "a run number", check = cmdline.at_least(1, "--run needs a run number") },
    { "--commit", value = "ID", what = "a commit id" }),
  list = takes("list", { "--all" }, { "--json" }),
  logs = takes("logs", id_entry("logs"), { "--follow", alias = "-f" }),
  check = takes("check", id_entry("check", true), { "--json" }, { "--card", value = "CARD", what = "a card id" }),
  stop = takes("stop", id_entry("stop"), { "--force" }),
  prune = takes("prune"),
}
local SUBS = { check = check, plan = plan, compose = write_compose, up = up, list = list, logs = logs, stop = stop,
  prune = prune }

function cmd.run(args, cli)
  local top, st = cli.parse(cmd, args)
  if not top then return st end
  local words = top.words or {}
  -- a -C before the subcommand is read with its words, by the one parser that reads a -C
  -- after it (and refuses two different ones)
  if top.dir then
    table.insert(words, 1, top.dir)
    table.insert(words, 1, "-C")
  end
  local o, sst = cli.parse(cmd, words, DECL[top.sub])
  if not o then return sst end
  -- up, logs --follow and stop wait on the loop: each runs as a task
  local ok, status = task.spawn(SUBS[top.sub], o, cli):join()
  if not ok then error(status, 0) end
  return status
end

return cmd
