-- orket.sandboxes.compose: the same services a sandbox runs, written for deploying elsewhere:
-- compose.yaml (Compose specification: build, command, environment, ports, healthcheck,
-- depends_on, a database's image or volume) and, where the tree has none, a Dockerfile for
-- each service's stack. Text only; `orket sandbox compose`
-- writes the files. Every scalar is emitted as a JSON string, which is a valid YAML
-- double-quoted scalar, so no value from the tree can change the document's structure.
-- Contract: docs/sandbox.md.
local cjson = require "cjson"
local plan_mod = require "orket.sandboxes.plan"
local supervise = require "orket.sandboxes.supervise"
local database = require "orket.sandboxes.database"
local composefile = require "orket.sandboxes.composefile"

local M = {}

M.PORT = 8080 -- the port inside the container

-- Compose reads $NAME in every value as its own variable: a value from the tree or
-- orket.lua keeps its dollars as $$. The one variable a written file asks for, the
-- database's password, is put in as PASSWORD and made ${...} after the escape.
local PASSWORD = "\0password\0"
M.PASSWORD_VAR = "POSTGRES_PASSWORD"

-- YAML 1.1 readers (PyYAML, so docker-compose v1) take these as line breaks, which a quoted
-- scalar folds into a space: JSON leaves them raw, so they are written as escapes
local YAML_BREAKS = { ["\u{85}"] = "\\u0085", ["\u{2028}"] = "\\u2028", ["\u{2029}"] = "\\u2029" }

-- s as a JSON string, its / as it is, the line breaks only YAML has escaped
local function word(s)
  local text = cjson.encode(tostring(s)):gsub("\\/", "/")
  return (text:gsub("\xc2\x85", YAML_BREAKS):gsub("\xe2\x80[\xa8\xa9]", YAML_BREAKS))
end

local function q(s)
  local text = word((tostring(s):gsub("%$", "$$")))
  return (text:gsub("\\u0000password\\u0000", "${" .. M.PASSWORD_VAR .. ":?set " .. M.PASSWORD_VAR
    .. " to the database's password}"))
end

-- list as a flow sequence of each(item) (q's, the compose file's, unless given)
local function flow(list, each)
  local out = {}
  for i, a in ipairs(list) do out[i] = (each or q)(a) end
  return "[" .. table.concat(out, ", ") .. "]"
end

-- the health check as a compose file writes it (orket.sandboxes.supervise's, which a
-- sandbox's services use too)
local health_test = supervise.health_test
M.health_test = health_test

local function seconds(ms) return string.format("%ds", math.max(1, (ms + 999) // 1000)) end

local services_yaml -- several services (below)

-- the head's line naming what the build context holds
local function built_from(o)
  if not o.commit then return "# Its build context: " .. (o.context or ".") .. "." end
  return string.format("# Its build context, %s, is main's tree at commit %s, written out of the repository.",
    o.context or ".", o.commit)
end

--- yaml(plan [, {name=, port=, context=, dockerfile=, dockerfiles=, commit=}]) -> the text of compose.yaml;
--- context is the build context (default "."), dockerfile the Dockerfile's path from it,
--- commit the commit of main's tree written there (named in the file's head). A plan of
--- several services writes each (dockerfiles: {service name -> its Dockerfile's path from
--- its folder}), see services_yaml.
function M.yaml(p, o)
  o = o or {}
  if p.services then
    return services_yaml(p, { context = o.context or ".", port = o.port, dockerfiles = o.dockerfiles, commit = o.commit })
  end
  local port = o.port or M.PORT
  local name = (o.name or "app"):lower():gsub("[^%w_-]", "-")
  -- the app listens where $HOST and the port variable say: all interfaces in a container
  local env = { [p.port_env] = tostring(port), HOST = "0.0.0.0" }
  for k, v in pairs(p.env or {}) do env[k] = v end
  local keys = {}
  for k in pairs(env) do keys[#keys + 1] = k end
  table.sort(keys)
  local h = p.health
  local lines = {
    "# Written by `orket sandbox compose`: the service Orket runs in its sandbox, for deploying",
    "# it elsewhere (`docker-compose up`, `docker compose up` or `podman-compose up`). Stack: " .. p.stack .. ".",
    built_from(o),
    "services:",
    "  " .. q(name) .. ":",
    "    build:",
    "      context: " .. q(o.context or "."),
    "    command: " .. flow(plan_mod.argv(p, "0.0.0.0", port)),
    "    environment:",
  }
  if o.dockerfile then table.insert(lines, 8, "      dockerfile: " .. q(o.dockerfile)) end -- after the context
  for _, k in ipairs(keys) do lines[#lines + 1] = "      " .. q(k) .. ": " .. q(env[k]) end
  lines[#lines + 1] = "    ports:"
  lines[#lines + 1] = "      - " .. q(port .. ":" .. port)
  lines[#lines + 1] = "    healthcheck:"
  lines[#lines + 1] = "      test: " .. flow(health_test(h, port))
  lines[#lines + 1] = "      interval: " .. q(seconds(h.interval_ms))
  lines[#lines + 1] = "      timeout: " .. q(seconds(h.timeout_ms))
  lines[#lines + 1] = "      retries: " .. h.failures
  lines[#lines + 1] = "      start_period: " .. q(seconds(h.start_timeout_ms))
  lines[#lines + 1] = "    restart: \"unless-stopped\""
  return table.concat(lines, "\n") .. "\n"
end

-- ---- several services -----------------------------------------------------------------

M.PG_IMAGE = "postgres:15-bookworm" -- the official image: the server Orket runs from Debian's 15
M.PG_PORT = 5432
M.DATA = "/data" -- where the SQLite databases' volume is mounted in every service

local function name_of(s) return (s:lower():gsub("[^%w_-]", "-")) end

-- where each service is reached from the others on the compose network: its name as host
local function place(sv)
  local host = name_of(sv.name)
  if sv.database == "postgresql" then
    return string.format("postgresql://%s:%s@%s:%d/%s", database.USER, PASSWORD, host, M.PG_PORT, database.USER),
      host, M.PG_PORT
  elseif sv.database == "sqlite" then
    return "sqlite:///" .. M.DATA .. "/" .. sv.name .. ".sqlite", "", ""
  end
  return string.format("http://%s:%d", host, M.PORT), host, M.PORT
end

--- shell_test(argv) -> a compose file's own health check in the CMD-SHELL form
local function shell_test(argv)
  if argv[1] == "sh" and argv[2] == "-c" and #argv == 3 then return { "CMD-SHELL", argv[3] } end
  local words = {}
  for i, a in ipairs(argv) do words[i] = "'" .. a:gsub("'", "'\\''") .. "'" end
  return { "CMD-SHELL", table.concat(words, " ") }
end

-- durations in milliseconds: a compose file's own check may be paced below a second
local function ms(n) return q(string.format("%dms", math.max(1, math.floor(n)))) end

local function health_lines(L, test, h)
  L[#L + 1] = "    healthcheck:"
  L[#L + 1] = "      test: " .. flow(test)
  L[#L + 1] = "      interval: " .. ms(h.interval_ms or 1000)
  L[#L + 1] = "      timeout: " .. ms(h.timeout_ms or 5000)
  L[#L + 1] = "      retries: " .. (h.failures or h.retries or 30)
  L[#L + 1] = "      start_period: " .. ms(h.start_timeout_ms or h.start_period_ms or 30000)
end

local function env_lines(L, env)
  local keys = {}
  for k in pairs(env) do keys[#keys + 1] = k end
  table.sort(keys)
  L[#L + 1] = "    environment:"
  for _, k in ipairs(keys) do L[#L + 1] = "      " .. q(k) .. ": " .. q(env[k]) end
end

-- a PostgreSQL service: the official image, its data in a volume, the seed SQL run by the
-- image's first start (/docker-entrypoint-initdb.d)
local function pg_service(L, sv, o, volumes)
  L[#L + 1] = "    image: " .. q(M.PG_IMAGE)
  env_lines(L, { POSTGRES_USER = database.USER, POSTGRES_DB = database.USER, POSTGRES_PASSWORD = PASSWORD })
  local data = name_of(sv.name) .. "-data"
  volumes[#volumes + 1] = data
  L[#L + 1] = "    volumes:"
  L[#L + 1] = "      - " .. q(data .. ":/var/lib/postgresql/data")
  if sv.seed then
    L[#L + 1] = "      - " .. q(o.context .. "/" .. sv.seed .. ":/docker-entrypoint-initdb.d/" .. sv.seed:match("[^/]+$") .. ":ro")
  elseif sv.seed_command then
    L[#L + 1] = "    # its seed_command (" .. table.concat(sv.seed_command, " "):gsub("[%c]", " ")
      .. ") is not run here: run it once against the database"
  end
  health_lines(L, { "CMD-SHELL", "pg_isready -q -U " .. database.USER .. " -d " .. database.USER }, { interval_ms = 2000 })
end

-- a SQLite database with a seed SQL file: a one-shot service that makes the file in the
-- volume from it, once (Python's sqlite3 in its official image, the one image with SQLite
-- at hand), owned by the user the written Dockerfiles run as (app, uid 10001)
M.SEED_IMAGE = "python:3.11-slim-bookworm"
M.APP_UID = 10001
local SQLITE_SEED = table.concat({
  "import os, sqlite3, sys",
  "path, seed, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])",
  "if not os.path.exists(path):",
  "    db = sqlite3.connect(path + '.new')",
  "    db.executescript(open(seed).read())",
  "    db.close()",
  "    os.rename(path + '.new', path)",
  "for p in (os.path.dirname(path), path):",
  "    os.chown(p, uid, uid)",
}, "\n")

local function sqlite_service(L, sv, o)
  local file = M.DATA .. "/" .. sv.name .. ".sqlite"
  local seed = "/seed/" .. sv.seed:match("[^/]+$")
  L[#L + 1] = "    image: " .. q(M.SEED_IMAGE)
  L[#L + 1] = "    command: " .. flow { "python3", "-c", SQLITE_SEED, file, seed, tostring(M.APP_UID) }
  L[#L + 1] = "    volumes:"
  L[#L + 1] = "      - " .. q("sqlite-data:" .. M.DATA)
  L[#L + 1] = "      - " .. q(o.context .. "/" .. sv.seed .. ":" .. seed .. ":ro")
end

-- services_yaml(plan, o) -> compose.yaml for a plan of several services: each with its
-- command, port, the addresses the sandbox hands it (the others' names as hosts), its
-- health check, depends_on waiting for those healthy; PostgreSQL the official image seeded
-- by its initdb folder, SQLite a file in a volume every service mounts.
function services_yaml(p, o)
  local addresses = supervise.addresses(p, place)
  local base = { HOST = "0.0.0.0" }
  for k, v in pairs(p.env or {}) do base[k] = v end
  -- what a dependent waits for: healthy, once started (no check), done (a SQLite seed),
  -- nothing (a SQLite file no service makes)
  local sqlite, condition = false, {}
  for _, sv in ipairs(p.services) do
    sqlite = sqlite or sv.database == "sqlite"
    condition[sv.name] = sv.database == "sqlite" and (sv.seed and "service_completed_successfully" or false)
      or sv.job and "service_completed_successfully"
      or (sv.health and sv.health.kind == "none") and "service_started" or "service_healthy"
  end
  local L = {
    "# Written by `orket sandbox compose`: the services Orket runs in its sandbox, for deploying",
    "# them elsewhere (`docker-compose up`, `docker compose up` or `podman-compose up`). Each",
    "# starts once those it depends on are healthy and finds them in the same variables.",
    built_from(o),
    "services:",
  }
  local volumes = {}
  for _, sv in ipairs(p.services) do
    if sv.database == "sqlite" and not sv.seed then
      L[#L + 1] = "  # " .. sv.name .. ": SQLite, the file " .. M.DATA .. "/" .. sv.name .. ".sqlite in the volume sqlite-data"
        .. (sv.seed_command and ("; its seed_command (" .. table.concat(sv.seed_command, " "):gsub("%c", " ")
          .. ") is not run here: run it once in a service") or "")
    else
      L[#L + 1] = "  " .. q(name_of(sv.name)) .. ":"
      if sv.database == "sqlite" then
        sqlite_service(L, sv, o)
      elseif sv.database == "postgresql" then
        pg_service(L, sv, o, volumes)
      else
        L[#L + 1] = "    build:"
        L[#L + 1] = "      context: " .. q(sv.dir ~= "" and (o.context .. "/" .. sv.dir) or o.context)
        local df = o.dockerfiles and o.dockerfiles[sv.name]
        if df then L[#L + 1] = "      dockerfile: " .. q(df) end
        -- (a job has no port, as in the sandbox: it listens on nothing)
        local port = not sv.job and M.PORT or nil
        local given = supervise.env_with(p, sv, port, base, addresses)
        L[#L + 1] = "    command: " .. flow(plan_mod.argv(sv, "0.0.0.0", port, given))
        env_lines(L, given)
        if sv.entry then
          -- on the host IP the project's file binds it to (127.0.0.1 keeps it off the network)
          L[#L + 1] = "    ports:"
          L[#L + 1] = "      - " .. q((sv.host_ip and (sv.host_ip .. ":") or "") .. (o.port or M.PORT) .. ":" .. M.PORT)
        end
        if sqlite then
          L[#L + 1] = "    volumes:"
          L[#L + 1] = "      - " .. q("sqlite-data:" .. M.DATA)
        end
        local h = sv.health
        if sv.job then
          -- a job runs to its end: no health check; the others wait for it to succeed
        elseif h and h.kind == "cmd" then
          health_lines(L, shell_test(composefile.fill(h.argv, h.raw, given)), h)
        elseif not h or h.kind ~= "none" then
          -- as in the sandbox: the entry's check is orket.lua's, the others' a TCP connect
          local own = sv.entry and p.health or { kind = "tcp" }
          health_lines(L, health_test(own, M.PORT), p.health)
        end
      end
      local deps = {}
      for _, d in ipairs(sv.depends_on or {}) do
        if condition[d.name] then deps[#deps + 1] = d.name end
      end
      if sv.entry and not p.services.from_compose then
        -- services found in folders name no depends_on: as in the sandbox, the one reached
        -- from outside starts once the others are healthy
        for _, other in ipairs(p.services) do
          if other ~= sv and condition[other.name] then deps[#deps + 1] = other.name end
        end
      end
      if #deps > 0 then
        L[#L + 1] = "    depends_on:"
        for _, d in ipairs(deps) do
          L[#L + 1] = "      " .. q(name_of(d)) .. ":"
          L[#L + 1] = "        condition: " .. q(condition[d])
        end
      end
      if sv.database ~= "sqlite" and not sv.job then L[#L + 1] = "    restart: \"unless-stopped\"" end
    end
  end
  if sqlite then volumes[#volumes + 1] = "sqlite-data" end
  if #volumes > 0 then
    L[#L + 1] = "volumes:"
    for _, v in ipairs(volumes) do L[#L + 1] = "  " .. q(v) .. ": {}" end
  end
  return table.concat(L, "\n") .. "\n"
end

--- stack_of(sv) -> the stack of one of several services: what was detected in its folder,
--- else what its command runs
local RUNTIMES = { python3 = "python", python = "python", node = "node", npm = "node", npx = "node", go = "go",
  make = "make" }
function M.stack_of(sv)
  return sv.stack or RUNTIMES[(sv.command or {})[1] or ""] or "custom"
end

-- Each stack's image: its runtime's official slim image, the dependencies installed the way
-- the plan found them, the tree copied in.
local BASES = {
  node = "node:20-bookworm-slim",
  python = "python:3.11-slim-bookworm",
  go = "golang:1.19-bookworm",
  make = "debian:12-slim",
  custom = "debian:12-slim",
}

-- What the image leaves out of the tree: the repository's history (.git holds every version
-- of every file, secrets once committed and removed too).
M.DOCKERIGNORE = "# Written by `orket sandbox compose`: what the image leaves out of the tree.\n"
  .. ".git\n.gitignore\n.dockerignore\n"

--- dockerfile(plan) -> the text of a Dockerfile | nil when the tree has its own. The tree
--- is copied in owned by an unprivileged user, `app`, who runs the service. plan.data: the
--- service mounts the SQLite volume.
function M.dockerfile(p)
  if p.dockerfile then return nil end
  local lines = {
    "# Written by `orket sandbox compose` for a tree without a Dockerfile (stack: " .. p.stack .. ").",
    "FROM " .. BASES[p.stack],
  }
  if p.stack == "make" or p.stack == "custom" then
    lines[#lines + 1] = "RUN apt-get update && apt-get install -y --no-install-recommends make build-essential "
      .. "&& rm -rf /var/lib/apt/lists/*"
  end
  -- the service runs as a user of its own, never as root; it may write its tree as it
  -- does in a sandbox
  lines[#lines + 1] = "RUN useradd --create-home --user-group --uid 10001 app"
  lines[#lines + 1] = "WORKDIR /app"
  if p.stack == "node" then
    lines[#lines + 1] = "COPY package*.json ./"
    lines[#lines + 1] = "RUN npm install --omit=dev"
  elseif p.stack == "python" and p.install then
    if p.install[#p.install] == "requirements.txt" then
      lines[#lines + 1] = "COPY requirements.txt ./"
      lines[#lines + 1] = "RUN python3 -m pip install --no-cache-dir -r requirements.txt"
    end
  end
  lines[#lines + 1] = "COPY --chown=app:app . ."
  if p.stack == "python" and p.install and p.install[#p.install] == "." then
    lines[#lines + 1] = "RUN python3 -m pip install --no-cache-dir ."
  elseif p.stack == "go" then
    lines[#lines + 1] = "RUN go build ./..."
  end
  if p.data then
    -- the SQLite databases' volume, writable by the service's user
    lines[#lines + 1] = "RUN install -d -o app -g app " .. M.DATA
  end
  lines[#lines + 1] = "USER app"
  lines[#lines + 1] = "EXPOSE " .. M.PORT
  -- the exec form's words as JSON as it is: Docker replaces no variable in CMD, so a $ is
  -- written once (compose's $$ would reach the program doubled)
  lines[#lines + 1] = "CMD " .. flow(plan_mod.argv(p, "0.0.0.0", M.PORT), word)
  return table.concat(lines, "\n") .. "\n"
end

return M
