-- orket.engine.setup: an engine for a project directory, wired to the real collaborators:
-- orket.lua (orket.config + engine settings), the store and board, the model client
-- (orket.llm), tools and policies (built-ins overridden by the project's), the gate, the
-- workspace, roles and routing (the scripts through orket.engine.reload, which also swaps
-- them while a run goes on). Used by `orket run`, `orket resume` and the REPL.
local config = require "orket.config"
local project = require "orket.project"
local board_mod = require "orket.board"
local memory_mod = require "orket.memory"
local routing = require "orket.engine.routing"
local reload = require "orket.engine.reload"
local engine = require "orket.engine"
local llm = require "orket.llm"
local uv = require "luv"
local workspace = require "orket.workspace"
local gitwork = require "orket.engine.gitwork"
local gate = require "orket.gate"
local toolcalls = require "orket.toolcalls"
local manager = require "orket.mcp.manager"
local lockfile = require "orket.c.lockfile"
local claims = require "orket.engine.claims"
local runlease = require "orket.engine.runlease"
local lease_mod = require "orket.engine.lease"

local otel = require "orket.otel"
local projects = require "orket.store.projects"
local fieldline = require "orket.fieldline"
local scriptfile = require "orket.scriptfile"

local M = {}

-- The store's own id (orket.store.projects.store_id: no restore changes it, so the old runs
-- keep their traces), or nil: a store that cannot say it (a test's stand-in) gives the runs
-- recorded before runs kept their trace id (orket.otel) a trace each start, never a failed
-- setup.
local function store_id(db)
  local ok, id = pcall(projects.store_id, db)
  return ok and id or nil
end

--- open(dir, {model=, concurrency=, emit=, db=, keep_db=, workspace=, llm=, lease=, keeper=,
---   share=, pace=, git_lock=, yield=, scripts=}) -> engine, db | nil, message, CODE
--- CODE is EUSAGE when the model given (--model) is not "provider:model" with a configured
--- provider, EINVAL for a mistake in the project's files (models included).
--- db, workspace (a folder) and llm replace the project's store, workspace/ and model client
--- (the REPL's replay runs on a scratch store); e.close_all() closes them too (the store
--- not with keep_db: orket serve's runs share the server's). The engine
--- keeps dir as e.dir for reloads. lease ({worker=, ttl_ms=, on_event=, poll_ms=}: the
--- engine's orket.engine.lease on the store; keeper: such a keeper already made, shared by
--- a worker's engines; share: their orket.engine.share), pace (a function) and
--- git_lock (a lock file's path: other processes share the repository) are the worker's
--- and the server's parts of the engine, given here because an engine is made whole.
--- scripts ({roles=, tools=, policies=, routing=}, as orket.engine.reload.load returns):
--- another engine's, instead of the project's files read again (the REPL's replay).
-- A mistake in a project's file, named with its line as `orket validate` names it (the
-- checks keep field paths, not positions). A script's own error (raised as it loads) is
-- named relative to the project already, by the name it was loaded under
-- (scriptfile.name), as the CLI and a server answer it alike (cli.in_dir puts -C DIR back
-- where the person ran the command).
local function located(dir, msg, code)
  if code ~= "EINVAL" then return msg, code end
  return fieldline.locate(msg, dir, function(path) return (scriptfile.read(path)) end), code
end

function M.open(dir, opts)
  opts = opts or {}
  -- fixed once (the CLI's -C is already): the engine keeps dir, and a ".." in it would go
  -- through the working directory at each use, failing as "moved" once that is removed
  dir = config.fixed_dir(dir)
  local cfg, s, code = config.settings(dir)
  if not cfg then return nil, located(dir, s, code) end
  -- opts.yield, between the steps that take milliseconds (compiling the scripts, the model
  -- client, the repository): a server lets other requests through there
  local pause = opts.yield or function() end
  pause()
  local scripts = opts.scripts
  if not scripts then
    -- roles/, tools/ or policies/ that is a file: its scripts never read, the built-in ones
    -- used unseen; refused as `orket validate` names it (config.not_a_folder)
    local ferr, fcode = config.script_folders(dir)
    if ferr then return nil, ferr, fcode end
    local lerr, lcode
    scripts, lerr, lcode = reload.load(dir)
    if not scripts then return nil, located(dir, lerr, lcode) end
    pause()
    local tok, terr, tcode = reload.check_tools(scripts, s.mcp)
    if not tok then return nil, located(dir, terr, tcode) end
  end
  -- The model client and every model name are checked before anything is opened or a card
  -- is touched: a typo would otherwise block each card that reaches the model.
  local client = opts.llm
  if not client then
    local cerr, ccode
    client, cerr, ccode = llm.open(cfg)
    if not client then return nil, cerr, ccode end
  end
  -- --model against the client in use (the REPL's replay client has its own providers);
  -- the seats' and roles' models against orket.lua's.
  local known = opts.llm or cfg.models
  if opts.model ~= nil and opts.model ~= "" then
    local mok, merr = llm.check_model(known, opts.model)
    if not mok then return nil, string.format("--model %s: %s", opts.model, merr), "EUSAGE" end
  end
  local bad = llm.check_models(cfg.models, s.team, scripts.roles.by_name)
  if #bad > 0 then return nil, located(dir, bad[1], "EINVAL") end
  -- traces over OTLP when the environment or orket.lua's telemetry names a collector; a
  -- protocol Orket does not speak (gRPC) refused before anything is opened; an exporter it
  -- does not have (zipkin) turned that signal off, said
  local tcfg, terr, tcode = otel.config(opts.getenv or os.getenv, s.telemetry)
  if terr then return nil, terr, tcode end
  if tcfg and tcfg.off then
    otel.say(tcfg)
    tcfg = nil
  end
  pause()
  local ws_dir = opts.workspace or (dir .. "/workspace")
  local _, mkerr = uv.fs_mkdir(ws_dir, 493)
  local ws, werr, wcode = workspace.open(ws_dir, s.workspace)
  if not ws then
    -- the folder could not be made (a read-only project): that is the reason, not its absence
    if wcode == "ENOENT" and mkerr then return nil, string.format("workspace: cannot make %s: %s", ws_dir, mkerr), "EIO" end
    return nil, werr, wcode
  end
  -- The project's workspace is a git repository (made on the first run of a project from
  -- before); each card works in its worktree under .orket/worktrees (docs/git.md). A
  -- scratch workspace (the REPL's replay) is used as a plain folder.
  local git
  if not opts.workspace then
    local gerr, gcode
    git, gerr, gcode = gitwork.open(ws_dir, dir .. "/.orket/worktrees")
    if not git then
      ws:close()
      return nil, gerr, gcode
    end
  end
  pause()
  local db, derr, dcode = opts.db, nil, nil
  if not db then db, derr, dcode = project.open_store(dir, false) end
  if not db then
    ws:close()
    if git then git.repo:close() end
    return nil, derr, dcode
  end
  local b = board_mod.open(db)
  local e
  local mcp
  if s.mcp and #s.mcp.names > 0 then -- orket.lua's MCP servers, started once the engine is made (docs/mcp.md)
    mcp = manager.new(s.mcp, { project_dir = dir,
      log = function(f) -- a server ready, down, restarted, misbehaving: in the run's stream
        e:emit { type = "mcp", event = f.event, server = f.server, message = f.message, tool = f.tool, tools = f.tools }
      end })
  end
  -- workers share the repository: each operation on it under .orket/git.lock (docs/workers.md)
  if git and opts.git_lock then git.repo = gitwork.guard(git.repo, opts.git_lock, git.state, db) end
  e = engine.new {
    db = db, board = b, memory = memory_mod.open(db), settings = s, llm = client,
    tools = mcp and mcp:wrap(scripts.tools) or scripts.tools, mcp = mcp,
    policies = scripts.policies, roles = scripts.roles, routing = scripts.routing, workspace = ws,
    scripts_seen = scripts.seen, -- what the watch compares with as it starts (orket.engine.reload)
    workspace_dir = ws_dir,
    dir = dir, -- for reloads
    git = git,
    models = cfg.models, -- a hot reload checks the roles' models against these
    -- the project's folder: a sandbox deployed after a merge runs there (sandboxes.deploy);
    -- nil for a scratch workspace, which deploys nothing
    project_dir = not opts.workspace and dir or nil,
    toolcalls = toolcalls,
    count = gate.counters_add, emit = opts.emit, concurrency = opts.concurrency,
    model = routing.override_model(opts.model),
    -- a worker's leases on the cards it works (orket worker); keeper: the worker's own, one
    -- for all the runs it works side by side, each with an engine
    share = opts.share,
    lease = opts.keeper or opts.lease and lease_mod.new { db = db, worker = opts.lease.worker, ttl_ms = opts.lease.ttl_ms,
      on_event = opts.lease.on_event, poll_ms = opts.lease.poll_ms },
    pace = opts.pace, -- a server's: one heavy step per turn of its loop (orket.engine.pace)
    -- the store's id makes the trace id of a run recorded before runs kept theirs; a
    -- worker's name is on its run spans
    tracer = tcfg and otel.new(tcfg, s.name, store_id(db),
      opts.keeper and opts.keeper.name or opts.lease and opts.lease.worker or nil) or nil,
    -- A turn passes the tools it started with; the policies are the engine's newest (hot
    -- reload swaps e's), so an edit holds from the next call.
    gate = function(input)
      input.tools, input.policies = input.tools or e.tools, input.policies or e.policies
      input.limits = input.limits or s.limits -- orket.lua's limits section
      input.commands = input.commands or s.verify.commands -- programs run_command runs unasked
      return gate.check(input)
    end,
    close_all = function()
      -- first: a run that never emitted run_end (an error escaped) is ended and sent, and
      -- its tracer's timer stopped, while the store is still open
      if e.tracer then e.tracer:close() end
      if e.mcp then e.mcp:close() end
      ws:close()
      if git then git.repo:close() end
      if not opts.keep_db then db:close() end
    end,
  }
  if mcp then mcp:start() end
  return e, db
end

--- resumable(dir[, e]) -> true | nil, msg, CODE: a run of the project may be resumed with the
--- team its orket.lua sets now, checked as a new run's start checks it (orket.engine's
--- check_team: a reviewer seat, known roles), since orket.lua may have changed since the
--- run began: without a reviewer its cards were worked into a block no retry lifts. The
--- message names orket.lua's line, as `orket validate` does. e: the engine opened for the
--- run (the CLI's); without it (the server's resume route) the settings and roles are read
--- here, and a project that cannot be read passes: opening the run's engine says why.
function M.resumable(dir, e)
  local ok, err, code
  if e then
    ok, err, code = e:check()
  else
    local _, s = config.settings(dir)
    local scripts = s and reload.load(dir)
    if not scripts then return true end
    ok, err, code = engine.check_team(s, scripts.roles)
  end
  if not ok then return nil, config.placed(dir, err), code end
  return true
end

-- What holds the project's run lock, by the word its holder wrote beside its pid (lockfile's
-- what): the short commands, which change a few cards and let go within milliseconds, are
-- waited for (M.WAIT_MS); a run (the word "run", or a run id tagged), and a holder that
-- names nothing (an older orket, a script), are not: they hold it for minutes.
local SHORT = {
  cancel = "orket cancel (process %s) is changing cards of this project",
  retry = "orket retry (process %s) is changing cards of this project",
  restore = "orket restore (process %s) is restoring this project's store",
  resume = "orket resume (process %s) is bringing workspace/ up to date with main",
  serve = "orket serve (process %s) is writing a card of this project for a request",
}
M.WAIT_MS = 2500 -- how long a short command's hold is waited for before a refusal
M.WAIT_STEP_MS = 10

--- holder_words(dir, pid, what, tag[, http]) -> how a refusal names the run lock's holder and what
--- to do: a short command is said as itself ("try again"); a run, or a holder that says
--- nothing of itself, as a run. http: said to an API client, who cannot press Ctrl-C in the
--- holder's terminal nor type orket resume there.
function M.holder_words(dir, pid, what, tag, http)
  local short = not tag and what and SHORT[what]
  if short then
    return string.format(short .. ", and held its run lock for over %.1f s; try again when it is done",
      pid and tostring(pid) or "unknown", M.WAIT_MS / 1000)
  end
  local named = {}
  if pid then named[#named + 1] = "process " .. pid end
  if tag then named[#named + 1] = "run " .. tag end
  local who = #named > 0 and (" (" .. table.concat(named, ", ") .. ")") or ""
  if http then
    -- a run of the CLI locks the whole project, and no route stops it (it is no server's)
    return string.format("another orket run is working on this project%s, started from a terminal (orket run), "
      .. "and no card of the project can be changed until it ends; wait for it to end, or ask the person who "
      .. "started it to stop it", who)
  end
  return string.format("another orket run is working on this project%s; wait for it to end, or stop it "
    .. "(Ctrl-C) and continue with 'orket resume%s'", who, config.at(dir)) -- the folder named, as the command that failed was given it
end

--- lock(dir[, {runs_ok=true, db=, what=, sleep=, http=}]) -> lock | nil, msg, "ELOCKED"|CODE.
--- One `orket run` at a time works a project's board: two would pick the same ready cards.
--- The lock is an OFD lock on DIR/.orket/run.lock, which the kernel drops when the holder
--- dies (even by kill -9), so it never goes stale; `lock:release()` or garbage collection
--- frees it. `orket answer`, `orket board` and the other readers do not take it. A command
--- changing cards is refused too while `orket serve` executes a run (orket.engine.claims),
--- and, given the project's store (db), while a run of another folder of that store goes
--- (its live run lease: that folder's lock files are not this one's); runs_ok: the caller
--- is a run, which orket.engine.claims keeps off the cards of those runs instead.
--- The file says what holds it (what: a word, "run" for a run; a command that takes the
--- lock for a moment names itself, its SHORT word; none is taken for a run): a short
--- command's hold (SHORT) is waited for, at most WAIT_MS, by sleep(ms) (default uv.sleep,
--- which blocks; a server passes one that yields to its loop, or false: no wait), as the
--- store waits for SQLite's lock. http: the refusal is worded for an API client.
function M.lock(dir, opts)
  opts = opts or {}
  local path = dir .. "/.orket/run.lock"
  local what = opts.what or (opts.runs_ok and "run") or nil
  local sleep = opts.sleep == nil and uv.sleep or opts.sleep
  local lk, err, code, holder, hwhat, htag = lockfile.acquire(path, what)
  local waited, since = 0, uv.hrtime()
  while not lk and code == "EBUSY" and sleep and claims.spent(since, waited) < M.WAIT_MS and not htag and hwhat
    and SHORT[hwhat] do
    sleep(M.WAIT_STEP_MS)
    waited = waited + M.WAIT_STEP_MS
    lk, err, code, holder, hwhat, htag = lockfile.acquire(path, what)
  end
  if lk and not opts.runs_ok then
    local live = claims.live(dir, { own_run_lock = true })
    local r = live[1]
    if r and r.by == "worker" then
      -- a worker's: neither serve nor its stop route holds it (orket runs stop is refused
      -- while a worker works the run); the worker is what to stop
      local named = (claims.workers_open(dir)[r.id] or {})[1]
      lk:release()
      return nil, string.format("run %d is worked by worker %s in process %s (orket worker); wait for it to end, or "
        .. "stop that worker (SIGTERM; with orket serve --workers, the server)", r.id,
        tostring(named and named.name or "?"), tostring(r.pid)), "ELOCKED"
    elseif r then
      lk:release()
      return nil, string.format("run %d is going in process %s (orket serve); wait for it to end, or stop it "
        .. "(POST /v1/runs/%d/stop)", r.id, tostring(r.pid), r.id), "ELOCKED"
    end
  end
  if lk and opts.db and not opts.runs_ok then
    -- not seen above: a run whose lock files are another folder's, known here by its lease
    local id, owner = next(runlease.holders(opts.db))
    if id then
      lk:release()
      return nil, string.format("run %d is going in process %s, in another folder of this project's store (known from "
        .. "its lease there); wait for it to end, or stop it there", id, tostring(owner)), "ELOCKED"
    end
  end
  if lk then return lk end
  if code == "EBUSY" then return nil, M.holder_words(dir, holder, hwhat, htag, opts.http), "ELOCKED" end
  return nil, err, code
end

return M
