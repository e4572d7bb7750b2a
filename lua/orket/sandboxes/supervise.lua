-- orket.sandboxes.supervise: a sandbox of several services (docs/sandbox.md, *Several
-- services*). They share the sandbox's network namespace, each on a port Orket gives it,
-- and each is told every other's address in its environment (BACKEND_URL, BACKEND_PORT,
-- BACKEND_HOST for a service named backend), so the frontend finds the backend. The
-- confinement runner starts one program; here that program is a bash script written
-- from the plan, which starts the services in dependency order, each once those before
-- it answer their health check (the compose file's, else a TCP connect to its port),
-- prefixes each line a service writes with its name, and, when any service ends, stops
-- the others and ends with its status, so the sandbox's owner sees the app end. A stop
-- (its SIGTERM) stops them as `docker compose down` does: SIGTERM to each, dependants
-- first, a time to end, then SIGKILL (stop_all). Every value from the tree reaches the
-- script single-quoted: data, never code.
local plan_mod = require "orket.sandboxes.plan"
local composefile = require "orket.sandboxes.composefile"
local database = require "orket.sandboxes.database"

local M = {}

-- The pause between two health checks of a starting service, unless its own says: what a
-- person starting it by hand would wait between two tries. A check is a connect made by
-- this bash itself and the pause a read that times out, so neither starts a process.
M.PROBE_MS = 10

-- A service whose compose file turns its health check off has nothing to ask: it is up once
-- its process has run this long without ending. Only an end within it fails the start; a
-- later one ends the sandbox after it was said healthy. A second, not less: an interpreter's
-- start-up (python3 is 0.15 to 0.25 s on an idle 2-CPU machine, several times that loaded)
-- and an import that fails must fit in it with room, and each such service delays the
-- start by no more than that.
M.SETTLE_MS = 1000

--- how often the script asks whether a service has ended (its end ends the sandbox)
M.END_POLL_MS = 100

--- A stop's time, in all, unless the caller says (o.stop_ms): as `docker stop`'s 10 s, the
--- services' time to end on their signal before what is left is killed
M.STOP_MS = 10000

--- runs(sv) -> whether service sv is a process the script keeps running (not a job, which
--- has ended, nor SQLite, a file)
function M.runs(sv)
  return not sv.job and (sv.database == "postgresql" or (sv.database == nil and sv.command ~= nil))
end

--- stop_signal(sv) -> the signal a stop sends service sv: SIGINT for Orket's PostgreSQL (its
--- fast shutdown, which ends its clients' sessions and writes a checkpoint: the postgres
--- image's STOPSIGNAL), SIGTERM for any other (Docker's)
function M.stop_signal(sv)
  return sv.database == "postgresql" and "INT" or "TERM"
end

--- stop_waves(plan) -> the indexes of the services the script runs, in groups in the order a
--- stop signals them, as Compose's `down`: a service once every service that depends on it,
--- directly or through a job, has ended; those that nothing left depends on together. Each
--- group in reverse start order.
function M.stop_waves(p)
  local at, dependents, level = {}, {}, {}
  for i, sv in ipairs(p.services) do at[sv.name], dependents[i] = i, {} end
  for i, sv in ipairs(p.services) do
    for _, d in ipairs(sv.depends_on or {}) do
      local j = at[d.name]
      if j then dependents[j][#dependents[j] + 1] = i end
    end
  end
  -- level: 0 when nothing depends on it, else one past the highest of those that do (the
  -- plan has no cycle: composefile refuses one)
  local function level_of(i)
    if not level[i] then
      local l = 0
      for _, k in ipairs(dependents[i]) do l = math.max(l, level_of(k) + 1) end
      level[i] = l
    end
    return level[i]
  end
  local by_level, levels = {}, {}
  for i = #p.services, 1, -1 do
    if M.runs(p.services[i]) then
      local l = level_of(i)
      if not by_level[l] then by_level[l], levels[#levels + 1] = {}, l end
      table.insert(by_level[l], i)
    end
  end
  table.sort(levels)
  local out = {}
  for k, l in ipairs(levels) do out[k] = by_level[l] end
  return out
end

--- settles(sv) -> whether service sv is up by staying alive SETTLE_MS: its health check is
--- turned off (healthcheck: {disable: true}, or test: ["NONE"]). Such an entry is the
--- sandbox's own health only as settles_entry says.
function M.settles(sv)
  return sv.health ~= nil and sv.health.kind == "none" and not sv.job and not sv.database
end

--- settles_entry(sv) -> whether the entry sv's own staying alive is the sandbox's health,
--- probed by nothing: it settles, publishes and listens on no port, and it is the entry only
--- as the last to start (none published, none named like a frontend: a worker). An entry
--- named like a frontend is probed as any entry, on the port it is told, check or none.
function M.settles_entry(sv)
  return sv.entry and sv.entry_last and M.settles(sv) and not sv.listens or false
end

--- up_words(name) -> the script's line saying a service without a health check is up
function M.up_words(name)
  return name .. " is up "
end

--- SAY: how each line the script itself prints begins. A service's own lines reach the
--- same pipe prefixed with its name ("[api] ..."), so only the script's lines begin so.
M.SAY = "orket: "

--- start_words(name) -> how the script's line saying it starts service name begins, after
--- SAY ("starting web on port 8080 (web/)"); the sandbox's owner waits for the entry's line
function M.start_words(name)
  return "starting " .. name .. " "
end

--- ALL_WORDS: the script's line, after SAY, once it has started every service and every
--- one it checks (all but an entry started last, which the owner probes) is healthy. The
--- sandbox is healthy only from it on: a worker started after the entry (depends_on: [api])
--- once failed seconds after `up` had said healthy, before it had even started.
M.ALL_WORDS = "every service is started"

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function words(list)
  local out = {}
  for i, a in ipairs(list) do out[i] = q(a) end
  return table.concat(out, " ")
end

--- var(name) -> the environment prefix of a service's name: "backend-api" -> "BACKEND_API"
M.var = composefile.var

--- ports(plan, port) -> {name -> port}: the entry on the sandbox's port (the one its socket
--- reaches), the others on the ports after it; a job none (it runs to its end, listening on
--- nothing: no port, no address told the others, no socket of its own)
function M.ports(p, port)
  local out, next_port = {}, port + 1
  for _, sv in ipairs(p.services) do
    if sv.entry then out[sv.name] = port
    elseif not sv.job then
      out[sv.name] = next_port
      next_port = next_port + 1
    end
  end
  return out
end

--- addresses(plan, at) -> the variables every service is given, each service's place as
--- at(sv) -> url, host, port says: NAME_URL, NAME_PORT, NAME_HOST, and DATABASE_URL when
--- there is one database; a job has none (it has ended before any service that awaits it
--- starts). The sandbox's (handed) and a compose file's (orket.sandboxes.compose) places
--- differ; the names are the same.
function M.addresses(p, at)
  local env, dbs = {}, {}
  for _, sv in ipairs(p.services) do
    if not sv.job then
      local v = M.var(sv.name)
      local url, host, port = at(sv)
      env[v .. "_URL"], env[v .. "_HOST"], env[v .. "_PORT"] = url, host, tostring(port)
      if sv.database then dbs[#dbs + 1] = url end
    end
  end
  if #dbs == 1 then env.DATABASE_URL = dbs[1] end
  return env
end

--- handed(plan, ports [, home]) -> the variables every service is given in a sandbox: each
--- service on 127.0.0.1 at its port (a database's URL its connection string,
--- orket.sandboxes.database, which needs the sandbox's folder home)
function M.handed(p, ports, home)
  return M.addresses(p, function(sv)
    local port = ports[sv.name]
    local url = sv.database and database.url(home or "", sv, port) or string.format("http://127.0.0.1:%d", port)
    return url, "127.0.0.1", port
  end)
end

local interpolate = composefile.interpolate

--- env_of(plan, sv, ports, base [, home]) -> the service's environment: base (orket.lua's env,
--- HOST), every service's address, its own port in $port_env, then its compose
--- environment (which may name the others' as ${BACKEND_URL})
function M.env_of(p, sv, ports, base, home)
  return M.env_with(p, sv, ports[sv.name], base, M.handed(p, ports, home))
end

--- env_with(plan, sv, port, base, addresses) -> as env_of, with the addresses given (a
--- job's port nil: no port variable)
function M.env_with(p, sv, port, base, addresses)
  local env = {}
  for k, v in pairs(base) do env[k] = v end
  for k, v in pairs(addresses) do env[k] = v end
  env[p.port_env] = port and tostring(port) or nil
  for k, v in pairs(sv.env or {}) do env[k] = interpolate(v, env) end
  return env
end

local function env_words(env)
  local keys = {}
  for k in pairs(env) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = q(k .. "=" .. env[k]) end
  return table.concat(out, " ")
end

--- tcp_hint(sv, port, port_env) -> for a service checked by the default TCP connect (no
--- health check of its own, not a database), what its failing says: nothing accepted a
--- connect on its port; "" otherwise. A service listening elsewhere (a port of its own, ::1
--- only) or on none (a worker) fails that check alike, and the person sees which.
function M.tcp_hint(sv, port, port_env)
  if sv.health or sv.database or not port then return "" end
  return string.format(": nothing answered a TCP connect to its port %s (its $%s) on 127.0.0.1; a service that "
    .. "listens on no port needs healthcheck: {disable: true}", tostring(port), port_env or "PORT")
end

--- health_test(health, port) -> the health check as a command every image with bash can
--- run (also a compose file's, orket.sandboxes.compose): a TCP connect
--- through bash's /dev/tcp, and for HTTP a request whose status line must be 2xx or 3xx. In
--- the CMD-SHELL form, one string for /bin/sh: podman-compose (Debian 12's 1.0.3) joins a
--- CMD list's words with quotes that break any word holding a space, so the check always
--- failed. The script holds no single quote (the path keeps only what a URL path needs and
--- no shell reads inside double quotes), so it goes between single quotes as it is.
function M.health_test(h, port)
  local script
  if h.kind == "http" then
    local path = h.path:gsub("[^%w%-%._~/%?=&+:@,;%%]", ""):gsub("%%", "%%%%")
    script = string.format("exec 3<>/dev/tcp/127.0.0.1/%d && printf \"GET %s HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n\" >&3 "
      .. "&& head -n 1 <&3 | grep -q \" [23][0-9][0-9]\"", port, path)
  else
    script = string.format("exec 3<>/dev/tcp/127.0.0.1/%d", port)
  end
  return { "CMD-SHELL", "exec bash -c '" .. script .. "'" }
end


-- the command that tells a started service healthy, run in its folder with its environment
local function health_argv(sv, port, env)
  local h = sv.health
  if h and h.kind == "cmd" then return composefile.fill(h.argv, h.raw, env) end
  if h and h.kind == "none" then return nil end
  -- compose's form ["CMD-SHELL", text]: the text, for /bin/sh
  local test = M.health_test(h and h.kind == "http" and h or { kind = "tcp" }, port)
  return { "/bin/sh", "-c", test[2] }
end

-- a step run in the service's folder with its environment; its failure stops the start. In
-- the background, waited for: a stop meanwhile runs the script's trap at once (bash runs
-- it only after a command in the foreground ends) and sends the step its signal too
local function step(L, dir, env, sv, st, unset)
  L[#L + 1] = string.format("( cd -- %s && %sexport %s && exec %s {nap}<&- ) > >(sed -u %s) 2>&1 & stepping=$!; "
    .. "wait \"$stepping\" || { st=$?; stepping=''; say %s\" (status $st)\"; stop_all; exit 1; }; stepping=''",
    q(dir), unset and ("unset " .. q(unset) .. " && ") or "", env, words(st.argv), q("s/^/[" .. sv.name .. "] /"),
    q(sv.name .. ": " .. st.what .. " failed"))
end

--- check_timeout_ms(health, start_timeout_ms) -> how long one health check command may
--- take before it is killed and counted as failed: the compose file's healthcheck.timeout,
--- else compose's default of 30 s, never past the start's own time
function M.check_timeout_ms(h, start_timeout_ms)
  return math.min(h and h.timeout_ms or 30000, start_timeout_ms)
end

--- script(plan, ports, base_env, start_timeout_ms [, {home=, tree=}]) -> the bash script
--- that runs the services (a database's as orket.sandboxes.database says) | nil, message
function M.script(p, ports, base, start_timeout_ms, o)
  o = o or {}
  local stop_ms = o.stop_ms or M.STOP_MS
  local waves = M.stop_waves(p)
  -- a stop: each group of services sent its signal, the step under way (a job, a seed: the
  -- services after it have not started) as the first; the time each may take (stop_wave)
  local stops = { "stop_wave " .. math.max(#waves, 1) .. " TERM \"${stepping:-}\"" }
  for k, wave in ipairs(waves) do
    local args = {}
    for _, i in ipairs(wave) do
      args[#args + 1] = string.format("%s \"${pid_%d:-}\"", M.stop_signal(p.services[i]), i)
    end
    stops[#stops + 1] = string.format("stop_wave %d %s", #waves - k + 1, table.concat(args, " "))
  end
  local L = {
    "set -u",
    "pids=''",
    "stepping=''", -- a step under way (step: a job, an initdb, a seed), in the background
    "checking=''", -- the process group of a health check under way (within)
    -- a pipe nobody writes: read -t on it waits its whole timeout, a sleep without a process
    "exec {nap}<> <(:)",
    "nap() { read -r -t \"$1\" -u \"$nap\" _ || :; }",
    -- gone PID: whether the process has ended. In a trap (a stop), bash reaps no child, so
    -- an ended one stays a zombie, which kill -0 still finds: its state in /proc says it
    -- own_proc: /proc is the sandbox's PID namespace's (not the host's, bound where the
    -- kernel refused one: its pids are not this script's), so that its files may be read
    "own_proc=''; { read -r l < /proc/self/stat && [ \"${l%% *}\" = \"$BASHPID\" ] && own_proc=1; } 2>/dev/null",
    "gone() { local l; kill -0 \"$1\" 2>/dev/null || return 0; [ -n \"$own_proc\" ] || return 1; "
      .. "read -r l < \"/proc/$1/stat\" 2>/dev/null || return 1; l=${l##*) }; [ \"${l%% *}\" = Z ]; }",
    -- stop_wave LEFT SIGNAL PID...: a group's services each sent its signal (those still
    -- running), then waited for until they end, up to the stop's end less stop_keep for each
    -- of the LEFT - 1 groups after it; those still running then are killed. stop_keep: the
    -- stop's time over twice the number of groups, so that a service that ignores its signal
    -- leaves those it depends on a share of the time to end in
    "stop_wave() { local left=$1 t p live; shift; local -a these=(); "
      .. "while [ $# -ge 2 ]; do if [ -n \"$2\" ] && ! gone \"$2\"; then kill -s \"$1\" \"$2\" 2>/dev/null; "
      .. "these+=(\"$2\"); fi; shift 2; done; [ ${#these[@]} -gt 0 ] || return 0; "
      .. "t=$(( stop_end - (left - 1) * stop_keep )); "
      .. "while :; do live=''; for p in \"${these[@]}\"; do gone \"$p\" || { live=1; break; }; done; "
      .. "[ -n \"$live\" ] && [ \"${EPOCHREALTIME/./}\" -lt \"$t\" ] || break; nap 0.010; done; "
      .. "for p in \"${these[@]}\"; do kill -KILL \"$p\" 2>/dev/null; done; }",
    -- stop_all: as `docker compose down`, those that depend on others first, each group once
    -- the one before it has ended; the stop's time is shared, so one that ignores its signal
    -- never takes all of it from those it depends on (PostgreSQL's shutdown). Signals are
    -- ignored from here on: a second TERM would run it again from its start
    string.format("stop_all() { trap '' TERM INT HUP; [ -z \"$checking\" ] || kill -KILL -- -\"$checking\" 2>/dev/null; "
      .. "local p stop_end=$(( ${EPOCHREALTIME/./} + %d000 )) stop_keep=%d000; %s; "
      .. "for p in $pids; do kill -KILL \"$p\" 2>/dev/null; done; }", stop_ms,
      stop_ms // (2 * math.max(#waves, 1)), table.concat(stops, "; ")),
    -- (a moment for the lines the services wrote as they ended to pass their sed)
    "trap 'stop_all; nap 0.1; exit 143' TERM INT HUP",
    "say() { printf '" .. M.SAY .. "%s\\n' \"$*\"; }",
    -- holder PORT: held_by set to the service listening on 127.0.0.1:PORT (its socket's inode
    -- in /proc/net/tcp, the process holding it, and that one's parents up to a service this
    -- script started), '' when none can be told. Asked only when a port is taken: find is a
    -- process, but started only then
    "declare -A svc=()",
    "holder() { local hex ino='' l st i f p line rest; held_by=''; [ -n \"$own_proc\" ] || return 0; "
      .. "printf -v hex ':%04X' \"$1\"; "
      .. "for f in /proc/net/tcp /proc/net/tcp6; do [ -r \"$f\" ] || continue; "
      .. "while read -r _ l _ st _ _ _ _ _ i _; do [ \"$st\" = 0A ] && [ \"${l: -5}\" = \"$hex\" ] && { ino=$i; break 2; }; "
      .. "done < \"$f\"; done; [ -n \"$ino\" ] || return 0; "
      .. "read -r f < <(find /proc/[0-9]*/fd -lname \"socket:\\[$ino\\]\" -print -quit 2>/dev/null) || return 0; "
      .. "p=${f#/proc/}; p=${p%%/*}; "
      .. "while [ \"${p:-0}\" -gt 1 ] 2>/dev/null; do [ -n \"${svc[$p]+x}\" ] && { held_by=${svc[$p]}; return 0; }; "
      .. "read -r line < \"/proc/$p/stat\" || return 0; rest=${line##*) }; set -- $rest; p=$2; done; }",
    -- early PID NAME: the service ended before it was healthy, said with its own status
    -- (wait reads it: bash keeps a reaped child's), not the script's
    "early() { local st; wait \"$1\" 2>/dev/null; st=$?; say \"$2 ended (status $st) before it was healthy\"; "
      .. "stop_all; exit 1; }",
    -- within MS NAME CHECK...: the check run in the background, in a process group of its
    -- own (set -m), and that group killed once it has taken MS: a hung check is a failed
    -- one, said in the log, as compose's timeout; the waits are naps, no process. A stop
    -- meanwhile kills its group too (stop_all: it is not in the services' group)
    "within() { local ms=$1 name=$2; shift 2; set -m; \"$@\" & local c=$!; set +m; checking=$c; local "
      .. "t=$(( ${EPOCHREALTIME/./} + ms * 1000 )); "
      .. "while kill -0 \"$c\" 2>/dev/null; do "
      .. "if [ \"${EPOCHREALTIME/./}\" -ge \"$t\" ]; then kill -KILL -- -\"$c\" 2>/dev/null; wait \"$c\" 2>/dev/null; checking=''; "
      .. "say \"$name's health check did not finish within $ms ms (healthcheck.timeout): counted as failed\"; return 1; fi; "
      .. "nap 0.005; done; checking=''; wait \"$c\"; }",
  }
  local names = {}
  for i, sv in ipairs(p.services) do
    local port = ports[sv.name]
    local given = M.env_of(p, sv, ports, base, o.home)
    local env = env_words(given)
    local dir = sv.dir ~= "" and sv.dir or "."
    local run = { argv = sv.command and plan_mod.argv(sv, "127.0.0.1", port, given) }
    if sv.database then
      local r, rerr = database.runs(o.home or "", o.tree or ".", sv, port)
      if not r then return nil, rerr end
      run = r
    end
    if not sv.job and run.argv then
      -- its port free before it starts: a service that ignores $PORT and listens on another's
      -- would answer that one's check, and the sandbox be said healthy with it listening
      -- nowhere (one network namespace: a connect cannot tell who answered)
      L[#L + 1] = string.format("if { : 3<>/dev/tcp/127.0.0.1/%d; } 2>/dev/null; then holder %d; say %s\"${held_by:-%s}\"%s; "
        .. "stop_all; exit 1; fi", port, port, q(string.format("%s: its port %d (its $%s) was taken before it started, by ",
          sv.name, port, p.port_env)), "another process",
        q(" (a service listens on its own $" .. p.port_env .. ", never on another's)"))
    end
    L[#L + 1] = string.format("say %s", q(string.format("%s%s(%s)", M.start_words(sv.name),
      sv.job and "to its end " or run.argv and ("on port " .. port .. " ") or "", sv.dir ~= "" and (sv.dir .. "/") or "the root")))
    for _, pre in ipairs(run.before or {}) do step(L, dir, env, sv, pre) end
    if sv.job then
      -- a job (depends_on's service_completed_successfully): run to its end, the others
      -- waiting; its failure stops the start, its end does not end the sandbox
      -- (without the port variable the script has, the entry's: a job has no port)
      step(L, dir, env, sv, { what = "its run", argv = run.argv }, p.port_env)
      L[#L + 1] = string.format("say %s", q(sv.name .. " ran to its end"))
    elseif run.argv then
      names[#names + 1] = string.format("\"$pid_%d\") n=%s ;;", i, q(sv.name))
      L[#L + 1] = string.format("( cd -- %s && export %s && exec %s {nap}<&- ) > >(sed -u %s) 2>&1 &", q(dir), env,
        words(run.argv), q("s/^/[" .. sv.name .. "] /"))
      L[#L + 1] = string.format("pid_%d=$!; pids=\"$pids $pid_%d\"; svc[$pid_%d]=%s", i, i, i, q(sv.name))
      local test = run.health or health_argv(sv, port, given)
      if M.settles(sv) then
        -- no check to ask: up once it has stayed alive a moment
        L[#L + 1] = string.format("nap %.3f", M.SETTLE_MS / 1000)
        L[#L + 1] = string.format("kill -0 \"$pid_%d\" 2>/dev/null || early \"$pid_%d\" %s", i, i, q(sv.name))
        L[#L + 1] = string.format("say %s", q(string.format("%s(no health check: still running after %d ms)",
          M.up_words(sv.name), M.SETTLE_MS)))
      elseif test and (not sv.entry or i < #p.services) then
        -- (the entry is the owner's to probe, through the socket; but one that others start
        -- after, as they depend on it, is awaited here too, as any service they await)
        local h = sv.health or {}
        -- the check: a TCP connect made by this bash itself (no process started), or the
        -- service's own command in its folder with its environment
        local check = (not run.health and not sv.health)
          and string.format("{ : 3<>/dev/tcp/127.0.0.1/%d; } 2>/dev/null", port)
        if not check then
          -- a command: its own function, run in the background by within (exec: $! is the
          -- command itself, so a kill reaches it)
          L[#L + 1] = string.format("check_%d() { cd -- %s && export %s && exec %s {nap}<&- >/dev/null 2>&1; }",
            i, q(dir), env, words(test))
          check = string.format("within %d %s check_%d", M.check_timeout_ms(h, start_timeout_ms), q(sv.name), i)
        end
        L[#L + 1] = string.format("n=0; deadline=$(( ${EPOCHREALTIME/./} + %d000 ))", start_timeout_ms)
        -- (a compose check's start_period: the time its failures are not counted, below)
        local grace = h.kind == "cmd" and h.start_period_ms or 0
        if grace > 0 then L[#L + 1] = string.format("grace_%d=$(( ${EPOCHREALTIME/./} + %d000 ))", i, grace) end
        L[#L + 1] = string.format("until %s; do", check)
        L[#L + 1] = string.format("  kill -0 \"$pid_%d\" 2>/dev/null || early \"$pid_%d\" %s", i, i, q(sv.name))
        if h.kind == "cmd" and h.interval_ms and h.retries then
          -- the compose file's own pace: retries checks, interval apart; as in Compose, a
          -- check that fails within start_period (a slow start's grace) is not counted
          if grace > 0 then
            L[#L + 1] = string.format("  [ \"${EPOCHREALTIME/./}\" -lt \"$grace_%d\" ] || n=$((n+1))", i)
          else
            L[#L + 1] = "  n=$((n+1))"
          end
          L[#L + 1] = string.format("  [ \"$n\" -lt %d ] || { say %s; stop_all; exit 1; }", h.retries,
            q(string.format("%s was not healthy after %d checks, %d ms apart%s", sv.name, h.retries, h.interval_ms,
              grace > 0 and string.format(" (after its start_period, %d ms)", grace) or "")))
          L[#L + 1] = string.format("  nap %.3f", h.interval_ms / 1000)
        else
          -- every PROBE_MS, within the start's time
          L[#L + 1] = string.format("  [ \"${EPOCHREALTIME/./}\" -lt \"$deadline\" ] || { say %s; stop_all; exit 1; }",
            q(string.format("%s was not healthy within %d ms (health.start_timeout_ms)%s", sv.name, start_timeout_ms,
              M.tcp_hint(sv, port, p.port_env))))
          L[#L + 1] = string.format("  nap %.3f", M.PROBE_MS / 1000)
        end
        L[#L + 1] = "done"
        L[#L + 1] = string.format("say %s", q(sv.name .. " is healthy"))
      end
    end
    for _, post in ipairs(run.after or {}) do step(L, dir, env, sv, post) end
  end
  L[#L + 1] = string.format("say %s", q(M.ALL_WORDS))
  -- the services run until one ends: asked every END_POLL_MS with kill -0, which fails once
  -- bash has reaped it, and its status then from wait PID, which bash keeps for a reaped
  -- child. Not wait -n: it knows only the jobs still in bash's table, and a service that ended
  -- during the start is already out of it (reaped and cleaned up): alone, wait -n said "no
  -- such job" (127); with others, it waited on them and named one of theirs. Several ended
  -- together: the first of them in the start's order is named.
  L[#L + 1] = "ended=''"
  L[#L + 1] = "while [ -z \"$ended\" ] && [ -n \"${pids// /}\" ]; do for p in $pids; do kill -0 \"$p\" 2>/dev/null || "
    .. string.format("{ ended=$p; break; }; done; [ -n \"$ended\" ] || nap %.3f; done", M.END_POLL_MS / 1000)
  L[#L + 1] = "st=127; [ -z \"$ended\" ] || { wait \"$ended\" 2>/dev/null; st=$?; }"
  L[#L + 1] = "n=unknown; case \"$ended\" in " .. table.concat(names, " ") .. " esac"
  L[#L + 1] = "say \"$n ended (status $st): the other services are stopped\""
  L[#L + 1] = "stop_all"
  L[#L + 1] = "exit \"$st\""
  return table.concat(L, "\n") .. "\n"
end

-- the kernel's MAX_ARG_STRLEN (32 pages of 4 KiB): the longest one argument of execve
M.ARG_MAX = 128 * 1024

--- argv(plan, port, base_env, start_timeout_ms [, {home=, tree=}]) -> the sandbox's
--- program: bash running the script | nil, message
function M.argv(p, port, base, start_timeout_ms, o)
  local text, err = M.script(p, M.ports(p, port), base, start_timeout_ms, o)
  if not text then return nil, err end
  -- one argument: execve refuses one past MAX_ARG_STRLEN (E2BIG), said here with what to do
  if #text >= M.ARG_MAX then
    return nil, string.format("the script that starts the services is %d bytes, over the %d one command line "
      .. "argument may have: make the services' environments (orket.lua's sandbox.env and the compose file's) "
      .. "smaller, putting large values in files of the tree", #text, M.ARG_MAX)
  end
  return { "bash", "-c", text, "orket-services" }
end

return M
