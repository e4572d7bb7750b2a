-- orket.sandboxes.composefile: a repository's own compose file (compose.yaml) read as the
-- services of one sandbox: each service's command, folder (its build context), ports,
-- environment, depends_on and health check, in the order they start. Orket runs each as a
-- process, never an image: a service with only an image is an error, but for the database
-- images it runs itself (docs/sandbox.md, *Several services*). Each error names the file
-- and the line. Pure data: it reads text given to it (orket.sandboxes.yamldoc).
local yamldoc = require "orket.sandboxes.yamldoc"

local M = {}

M.NAMES = { "compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml" }
-- Compose's override files, which it merges into the file without being asked: never read
-- here, and the plan says so (orket.sandboxes.plan)
M.OVERRIDES = { "compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml",
  "docker-compose.override.yml" }
-- the top level: services, and what means nothing to a sandbox's processes (a service's own
-- volumes and networks are passed over too)
M.TOP_FIELDS = { services = true, name = true, version = true, volumes = true, networks = true, secrets = true,
  configs = true }
M.MAX_SERVICES = 16
M.MAX_READ = 256 * 1024 -- bytes read of the file (yamldoc refuses a larger one)
M.FIELDS = { command = true, build = true, image = true, ports = true, environment = true, depends_on = true,
  healthcheck = true, working_dir = true, expose = true, container_name = true, restart = true, volumes = true,
  entrypoint = true, env_file = true, networks = true, labels = true, ["x-orket"] = true }
M.HEALTH_FIELDS = { test = true, interval = true, timeout = true, retries = true, start_period = true,
  start_interval = true, disable = true }
M.HEALTH_MIN_MS = 10 -- a health check's interval and timeout, at least
M.UNUSED = { container_name = true, restart = true, volumes = true, networks = true, labels = true, expose = true }

--- var(name) -> the prefix of a service's variables (NAME_URL, NAME_PORT, NAME_HOST): its
--- name upper-cased, any other character _ (so my-app and my_app share one)
function M.var(name)
  return (name:upper():gsub("[^%w]", "_"))
end

local function err(name, line, fmt, ...)
  return string.format("%s:%s: %s", name, line and tostring(line) or "?", string.format(fmt, ...))
end

-- a compose duration ("1m30s", "500ms", "10s", and Go's ns and us, also written with a micro sign) -> ms | nil
local function duration(v)
  if type(v) ~= "string" then return nil end
  local total, rest = 0, v
  if rest == "" then return nil end
  while rest ~= "" do
    local n, unit, more = rest:match("^(%d+%.?%d*)([\xc2\xce][\xb5\xbc]s)(.*)$")
    if not n then n, unit, more = rest:match("^(%d+%.?%d*)(%a+)(.*)$") end
    if not n then return nil end
    local mult = ({ ns = 1e-6, us = 1e-3, ["\u{b5}s"] = 1e-3, ["\u{3bc}s"] = 1e-3, ms = 1, s = 1000, m = 60000, h = 3600000 })[unit]
    if not mult then return nil end
    total, rest = total + tonumber(n) * mult, more
  end
  return math.floor(total)
end

-- a command: a list of strings, or a string run by sh -c (Compose splits it like a shell)
--- dollars(s) -> s with compose's escape $$ read as one $ (a command's or a health check's
--- "$$PORT" is the service's own variable, left to its shell, as Compose gives it: run as
--- written, sh read $$ as its pid)
function M.dollars(s)
  return (s:gsub("%$%$", "$"))
end

-- ${NAME<op>WORD} as Compose (and sh) read it, NAME's value val (nil: unset) -> the text |
-- nil to leave the reference as written. :- and - give WORD when NAME is unset (:- when
-- empty too), :+ and + give WORD when it is set (:+ when not empty), else nothing; :? and ?
-- give the value when there is one, else leave it (Compose would refuse the file: the
-- app's start says it).
local function with_default(op, word, val)
  local has, full = val ~= nil, val ~= nil and val ~= ""
  if op == ":-" then return full and val or word end
  if op == "-" then return has and val or word end
  if op == ":+" then return full and word or "" end
  if op == "+" then return has and word or "" end
  if (op == ":?" and full) or (op == "?" and has) then return val end
  return nil
end

-- The reference that starts at v's $ at s, as Compose reads one: ${NAME}, ${NAME<op>WORD}
-- or $NAME -> name, op (nil for none), word, the position after it | nil (no reference)
local function reference_at(v, s)
  local name, e = v:match("^{([%w_]+)}()", s + 1)
  if name then return name, nil, nil, e end
  local op, word
  name, op, word, e = v:match("^{([%a_][%w_]*)([:]?[%-%+%?])([^}]*)}()", s + 1)
  if name then return name, op, word, e end
  name, e = v:match("^([%a_][%w_]*)()", s + 1)
  return name, nil, nil, e
end

--- interpolate(v, known) -> v with ${NAME}, $NAME and ${NAME:-WORD} (and -, :+, +, :?, ?
--- as Compose reads them) filled in from the names known holds (a reference that asks for
--- nothing more stays as written when the name is unknown) and compose's escape $$ as one
--- $, in one pass: "$$PORT" is the text $PORT, as Compose gives it, never $ and the port
function M.interpolate(v, known)
  local out, at = {}, 1
  while true do
    local s = v:find("$", at, true)
    if not s then break end
    out[#out + 1] = v:sub(at, s - 1)
    local name, op, word, e = reference_at(v, s)
    local filled = op and with_default(op, M.dollars(word), known[name])
    if v:sub(s + 1, s + 1) == "$" then
      out[#out + 1], at = "$", s + 2
    elseif filled then
      out[#out + 1], at = filled, e
    elseif name and not op and known[name] then
      out[#out + 1], at = known[name], e
    else
      out[#out + 1], at = "$", s + 1
    end
  end
  out[#out + 1] = v:sub(at)
  return table.concat(out)
end

--- references(v) -> what v's ${NAME}, $NAME and ${NAME<op>WORD} read, in order: {name=,
--- op=} (op "" for none, ":-", "-", ":+", "+", ":?", "?"); $$ reads nothing (M.interpolate)
function M.references(v)
  local out, at = {}, 1
  while true do
    local s = v:find("$", at, true)
    if not s then break end
    local name, op, _, e = reference_at(v, s)
    if v:sub(s + 1, s + 1) == "$" then
      at = s + 2
    elseif name then
      out[#out + 1], at = { name = name, op = op or "" }, e
    else
      at = s + 1
    end
  end
  return out
end

--- fill(argv, raw, env) -> argv (a list command with its $$ read as $) as the service runs
--- it: raw, its words as written, with the ${NAME} and $NAME its environment env gives
--- filled in (M.interpolate). No shell reads a list's words, so "--port ${PORT}" was
--- passed on as those letters; the string form's shell reads them from the same env.
--- Without raw (a string, or a command not from a compose file) argv as it is.
function M.fill(argv, raw, env)
  if not raw or not env then return argv end
  local out = {}
  for i, a in ipairs(raw) do out[i] = M.interpolate(a, env) end
  return out
end

-- -> argv ($$ read as $), and for a list its words as written (M.fill) | nil
local function argv_of(v)
  if type(v) == "string" then
    if v:match("^%s*$") then return nil end
    return { "sh", "-c", M.dollars(v) }
  end
  if not yamldoc.is_list(v) or #v == 0 then return nil end
  local out, raw = {}, {}
  for i, a in ipairs(v) do
    if type(a) ~= "string" then return nil end
    out[i], raw[i] = M.dollars(a), a
  end
  return out, raw
end

-- the most bytes (names, values) one service's environment may have: the script that
-- starts the services names each environment once or twice, in one argument of at most
-- 128 KiB (the kernel's MAX_ARG_STRLEN; orket.sandboxes.supervise.argv)
M.ENV_MAX = 16 * 1024

-- environment: a mapping, or a list of KEY=VALUE -> {NAME=value}, {NAME=its line} | nil,
-- what is wrong, its line
local function env_of(v)
  local out, lines = {}, {}
  if yamldoc.is_map(v) then
    for _, k in ipairs(yamldoc.keys(v)) do
      if type(v[k]) ~= "string" then return nil, k, yamldoc.line(v, k) end
      out[k], lines[k] = v[k], yamldoc.line(v, k)
    end
  elseif yamldoc.is_list(v) then
    for i, kv in ipairs(v) do
      -- (apart from the test: `x and s:match()` would keep the name and drop the value)
      local k, val
      if type(kv) == "string" then k, val = kv:match("^([%w_]+)=(.*)$") end
      -- (an item without =, Compose's pass-through of the host's value, named at its own line)
      if not k then
        return nil, type(kv) == "string" and kv:match("^[%a_][%w_]*$")
          and (kv .. ": Compose passes the host's value on, Orket does not: give it as " .. kv .. "=value")
          or tostring(kv), yamldoc.line(v, i)
      end
      out[k], lines[k] = val, yamldoc.line(v, i)
    end
  else
    return nil, ""
  end
  for k in pairs(out) do
    if not k:match("^[%a_][%w_]*$") then return nil, k, lines[k] end
  end
  return out, lines
end

-- a host IP a port entry binds to, as the file gives it (IPv4, or IPv6 in brackets in the
-- short form, bare in the long form's host_ip) -> the address as a short form writes it | nil
local function host_ip(x, bracketed)
  if type(x) ~= "string" then return nil end
  local a, b, c, d = x:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if a then
    for _, n in ipairs { a, b, c, d } do if tonumber(n) > 255 then return nil end end
    return x
  end
  local v6 = bracketed and x:match("^%[([%x:%.]+)%]$") or not bracketed and x:match("^([%x:%.]+)$")
  return v6 and v6:find(":", 1, true) and ("[" .. v6 .. "]") or nil
end

-- a port entry -> the port the service listens on, the host port asked for (false: none,
-- "8000" or "127.0.0.1::8000", which Compose fills with a random free one), the host IP it
-- binds to (nil: every interface) | nil. The IP is kept: a project that binds a service to
-- 127.0.0.1 keeps it off the network, and `orket sandbox compose` writes it back so.
local function port_of(v)
  local function port(x)
    local n = type(x) == "string" and x:match("^%d+$") and math.tointeger(tonumber(x))
    return n and n >= 1 and n <= 65535 and n or nil
  end
  if yamldoc.is_map(v) then
    -- compose's long form: {target: 80, published: 8080, host_ip: 127.0.0.1} (protocol tcp)
    local inner = port(v.target)
    local host = v.published ~= nil and port(v.published)
    local ip = v.host_ip ~= nil and host_ip(v.host_ip, false)
    if not inner or host == nil or (v.protocol ~= nil and v.protocol ~= "tcp") or ip == nil then return nil end
    return inner, host, ip or nil
  end
  if type(v) ~= "string" then return nil end
  local body = v:gsub("/tcp$", "")
  -- "IP:HOST:INNER": the IP is what comes before the last two parts (an IPv6 one holds colons)
  local ip_text, rest = body:match("^(.*):([^:]*:[^:]*)$")
  local ip
  if ip_text then
    ip = host_ip(ip_text, true)
    if not ip then return nil end
    body = rest
  end
  local host_text, inner_text = body:match("^([^:]*):([^:]*)$")
  local inner = port(host_text and inner_text or body)
  if not inner then return nil end
  -- no host port: a random one (two services' "8000" clash on none); an IP with none is "IP::8000"
  if not host_text or (host_text == "" and ip) then return inner, false, ip end
  -- a host part that is given must be a port too: "abc:80" was taken for "80:80"
  local host = port(host_text)
  if not host then return nil end
  return inner, host, ip
end

local BOOLEANS = { ["true"] = true, True = true, TRUE = true, ["false"] = false, False = false, FALSE = false }

-- the health check: test as ["CMD", ...], ["CMD-SHELL", "..."] or a string
local function health_of(h, name, line, sname)
  local function herr(at, fmt, ...)
    return nil, err(name, at, "services.%s.healthcheck%s", sname, string.format(fmt, ...))
  end
  if not yamldoc.is_map(h) then return herr(line, " must be a mapping (test, interval, timeout, retries, start_period)") end
  for _, k in ipairs(yamldoc.keys(h)) do
    if not M.HEALTH_FIELDS[k] and not k:match("^x%-") then
      return herr(yamldoc.line(h, k), ".%s: not a field Orket reads (test, interval, timeout, "
        .. "retries, start_period, start_interval, disable)", k)
    end
  end
  -- a YAML boolean in any of its forms (Compose's reader takes True and TRUE as true)
  if h.disable ~= nil then
    local off = BOOLEANS[h.disable]
    if off == nil then return herr(yamldoc.line(h, "disable"), ".disable must be true or false") end
    if off then return { kind = "none" } end
  end
  local t = h.test
  local argv, raw
  if type(t) == "string" then
    argv = { "sh", "-c", M.dollars(t) }
  elseif yamldoc.is_list(t) and #t >= 1 then
    if t[1] == "NONE" then return { kind = "none" } end
    if t[1] == "CMD-SHELL" and type(t[2]) == "string" then argv = { "sh", "-c", M.dollars(t[2]) }
    elseif t[1] == "CMD" and #t >= 2 then
      argv, raw = {}, {}
      for i = 2, #t do
        if type(t[i]) ~= "string" then argv = nil break end
        argv[i - 1], raw[i - 1] = M.dollars(t[i]), t[i]
      end
    end
  end
  if not argv then
    return herr(yamldoc.line(h, "test") or line, ".test must be [\"CMD\", ...], [\"CMD-SHELL\", \"...\"] or a string")
  end
  local out = { kind = "cmd", argv = argv, raw = raw, interval_ms = 1000, retries = 30 }
  for _, k in ipairs { "interval", "timeout", "start_period" } do
    if h[k] ~= nil then
      local ms = duration(h[k])
      if not ms then return herr(yamldoc.line(h, k), ".%s must be a duration (\"10s\", \"500ms\")", k) end
      -- a check every 0 ms is a busy loop (the script's own TCP check waits 10 ms)
      if k ~= "start_period" and ms < M.HEALTH_MIN_MS then
        return herr(yamldoc.line(h, k), ".%s must be at least %d ms", k, M.HEALTH_MIN_MS)
      end
      out[k .. "_ms"] = ms
    end
  end
  if h.retries ~= nil then
    local n = math.tointeger(tonumber(h.retries))
    if not n or n < 1 then return herr(yamldoc.line(h, "retries"), ".retries must be a positive integer") end
    out.retries = n
  end
  return out
end

-- The database images Orket runs itself as processes (orket.sandboxes.database)
M.DATABASES = { postgres = "postgresql", postgresql = "postgresql" }

local function image_kind(image)
  local base = image:match("([^/:@]+)[:@]?[^/]*$") or image
  return M.DATABASES[base]
end

-- a path of the tree as a field gives it: relative, and no ".." component (which would
-- lead out of it); ".." inside a name ("a..b", "v1..2") is a name like any other
local function in_tree(p)
  if type(p) ~= "string" or p:sub(1, 1) == "/" then return false end
  for seg in p:gmatch("[^/]+") do
    if seg == ".." then return false end
  end
  return true
end

-- build's keys: context is the service's folder; these only shape an image (its cache, its
-- labels and tags, the builder's network), which Orket never builds, so they mean nothing in a
-- sandbox and are passed over; these others choose what the image runs, so passing them over
-- would run another program: refused
local BUILD_FIELDS = { context = true, cache_from = true, cache_to = true, labels = true, tags = true, pull = true,
  no_cache = true, network = true, shm_size = true, platforms = true }
local BUILD_PASSED_LIST = "cache_from, cache_to, labels, tags, pull, no_cache, network, shm_size and platforms"
local RUN_BY_IMAGE = { dockerfile = true, dockerfile_inline = true, target = true, args = true }

-- one service -> {name=, dir=, command=, ports=, env=, depends_on=, health=, line=, reasons=}
-- depends_on's conditions compose defines
local CONDITIONS = { service_started = true, service_healthy = true, service_completed_successfully = true }
-- a depends_on entry's keys (above all, a misspelling of condition is not passed over)
local DEPENDS_FIELDS = { condition = true, required = true, restart = true }

-- The postgres image's settings Orket's PostgreSQL does not take (orket.sandboxes.database
-- makes user and database app, trust on its loopback, no password)
local PG_SETTINGS = { POSTGRES_USER = true, POSTGRES_PASSWORD = true, POSTGRES_DB = true,
  POSTGRES_PASSWORD_FILE = true, POSTGRES_USER_FILE = true, POSTGRES_DB_FILE = true, POSTGRES_INITDB_ARGS = true,
  POSTGRES_INITDB_WALDIR = true, POSTGRES_HOST_AUTH_METHOD = true, PGDATA = true }
M.INITDB_D = "/docker-entrypoint-initdb.d"

-- pg_notes(sv, v, name): what of a PostgreSQL service's file its Orket-run server passes
-- over, said in the plan at its line: the image's settings (the others would connect as a
-- user that does not exist), an init script mounted where the image runs it (its tables
-- would be missing: x-orket.seed is the way), and a health check (pg_isready runs instead)
local function pg_notes(sv, v, name)
  local keys = {}
  for k in pairs(sv.env) do if PG_SETTINGS[k] then keys[#keys + 1] = k end end
  table.sort(keys, function(a, b) return (sv.env_lines[a] or 0) < (sv.env_lines[b] or 0) end)
  for _, k in ipairs(keys) do
    -- (app: orket.sandboxes.database's USER, not required here: this module is pure data)
    sv.reasons[#sv.reasons + 1] = string.format("%s:%s: environment.%s is not used: Orket's PostgreSQL has its own "
      .. "user and database, app, with no password; the others find it in %s_URL (and DATABASE_URL beside one "
      .. "database)", name, tostring(sv.env_lines[k] or sv.env_line), k, M.var(sv.name))
  end
  if yamldoc.is_list(v.volumes) then
    for i, m in ipairs(v.volumes) do
      local src, dst
      if type(m) == "string" then
        src, dst = m:match("^([^:]*):([^:]*)")
      elseif yamldoc.is_map(m) then
        src, dst = m.source, m.target
      end
      if type(dst) == "string" and dst:sub(1, #M.INITDB_D) == M.INITDB_D then
        sv.reasons[#sv.reasons + 1] = string.format("%s:%s: volumes: %s mounted in %s is not run (Orket passes volumes "
          .. "over, and runs no image): give a SQL file as x-orket.seed (x-orket: {seed: %s}), or x-orket.seed_command",
          name, tostring(yamldoc.line(v.volumes, i) or yamldoc.line(v, "volumes")), tostring(src), M.INITDB_D,
          type(src) == "string" and src:match("%.sql$") and src:gsub("^%./", "") or "db/init.sql")
      end
    end
  end
  if v.healthcheck ~= nil then
    sv.reasons[#sv.reasons + 1] = string.format("%s:%d: healthcheck is passed over: Orket's PostgreSQL is healthy "
      .. "when pg_isready says so", name, yamldoc.line(v, "healthcheck"))
  end
end

local function service_of(sname, v, name, line)
  if not yamldoc.is_map(v) then return nil, err(name, line, "services.%s must be a mapping", sname) end
  for _, k in ipairs(yamldoc.keys(v)) do
    -- (x-*: an extension field, which the Compose spec lets any mapping have)
    if not M.FIELDS[k] and not k:match("^x%-") then
      -- (what it passes over named too: a field in neither list is to be removed)
      return nil, err(name, yamldoc.line(v, k), "services.%s.%s: not a field Orket reads (it reads command, build, "
        .. "image, ports, environment, depends_on, healthcheck, working_dir, x-orket; it passes over restart, volumes, "
        .. "networks, labels, expose, container_name and x-*)", sname, k)
    end
  end
  local sv = { name = sname, line = line, dir = "", env = {}, depends_on = {}, reasons = {} }
  if not sname:match("^[%a][%w_-]*$") or #sname > 64 then
    return nil, err(name, line, "services.%s: a service's name is a letter then letters, digits, _ or - (at most 64)", sname)
  end
  -- its folder: the build context (a folder of the tree), else the root
  local ctx = v.build
  if yamldoc.is_map(ctx) then
    local b = ctx
    for _, k in ipairs(yamldoc.keys(b)) do
      if RUN_BY_IMAGE[k] and v.command == nil then
        -- what the image runs, which Orket never builds: passed over, the service would run
        -- what its folder's files say, another program than Compose's (two services of one
        -- context, one with worker.Dockerfile)
        return nil, err(name, yamldoc.line(b, k), "services.%s.build.%s: Orket runs the service's command as a process "
          .. "in its build folder, never an image built from a Dockerfile, so %s would not be used and the folder's "
          .. "files would say what runs: give the service a command (what the Dockerfile's CMD runs)", sname, k,
          k == "args" and "its build args" or k == "target" and "its build stage" or "its Dockerfile")
      elseif RUN_BY_IMAGE[k] then
        -- with a command, what runs is that command, as Compose's; the image's build is not
        -- Orket's to do, as for the folder's own Dockerfile: said in the plan
        sv.reasons[#sv.reasons + 1] = string.format("%s:%d: build.%s is passed over: Orket runs the command in the build "
          .. "folder, never an image built from a Dockerfile", name, yamldoc.line(b, k), k)
      elseif not BUILD_FIELDS[k] and not k:match("^x%-") then
        return nil, err(name, yamldoc.line(b, k), "services.%s.build.%s: not a field Orket reads (it reads context; "
          .. "it passes over %s)", sname, k, BUILD_PASSED_LIST)
      end
    end
    ctx = b.context
  end
  if ctx ~= nil then
    if not in_tree(ctx) or ctx:find("://", 1, true) then
      return nil, err(name, yamldoc.line(v, "build"), "services.%s.build: a folder of the repository (no .. component, "
        .. "no absolute path)", sname)
    end
    sv.dir = ctx:gsub("^%./", ""):gsub("/+$", ""):gsub("^%.$", "")
    sv.dir_field, sv.dir_line = "build", yamldoc.line(v, "build")
  end
  if v.working_dir ~= nil then
    -- a folder of the tree, as build is (an image's absolute path means nothing here)
    local wd = v.working_dir
    if not in_tree(wd) then
      return nil, err(name, yamldoc.line(v, "working_dir"), "services.%s.working_dir: a folder of the repository (no .. "
        .. "component, no absolute path)", sname)
    end
    sv.dir = wd:gsub("^%./", ""):gsub("/+$", "")
    sv.dir_field, sv.dir_line = "working_dir", yamldoc.line(v, "working_dir")
  end
  if v.env_file ~= nil then
    -- never read: passed over, its values were missing from the service without a word
    return nil, err(name, yamldoc.line(v, "env_file"), "services.%s.env_file: Orket does not read env files, so "
      .. "their values would be missing: give them in environment", sname)
  end
  if v.entrypoint ~= nil then
    return nil, err(name, yamldoc.line(v, "entrypoint"), "services.%s.entrypoint: give the whole command in command", sname)
  end
  local xo = v["x-orket"]
  if xo ~= nil then
    local xl = yamldoc.line(v, "x-orket")
    if not yamldoc.is_map(xo) then return nil, err(name, xl, "services.%s.x-orket must be a mapping (database, seed, seed_command)", sname) end
    for _, k in ipairs(yamldoc.keys(xo)) do
      if k ~= "database" and k ~= "seed" and k ~= "seed_command" then
        return nil, err(name, yamldoc.line(xo, k), "services.%s.x-orket.%s: unknown (database, seed, seed_command)", sname, k)
      end
    end
    if xo.database ~= nil then
      if xo.database ~= "sqlite" and xo.database ~= "postgresql" then
        return nil, err(name, yamldoc.line(xo, "database"), "services.%s.x-orket.database must be sqlite or postgresql", sname)
      end
      sv.database = xo.database
    end
    if xo.seed ~= nil then
      if not in_tree(xo.seed) or xo.seed == "" then
        return nil, err(name, yamldoc.line(xo, "seed"), "services.%s.x-orket.seed: a SQL file of the repository (no .. "
          .. "component, no absolute path)", sname)
      end
      sv.seed = xo.seed:gsub("^%./", "")
    end
    if xo.seed_command ~= nil then
      sv.seed_command = argv_of(xo.seed_command)
      if not sv.seed_command then
        return nil, err(name, yamldoc.line(xo, "seed_command"), "services.%s.x-orket.seed_command must be a string or a list of strings", sname)
      end
    end
    if sv.seed and sv.seed_command then
      return nil, err(name, xl, "services.%s.x-orket: seed or seed_command, not both", sname)
    end
  end
  if sv.database == "sqlite" then
    if v.command ~= nil or v.image ~= nil then
      return nil, err(name, line, "services.%s: a SQLite database is a file Orket makes: no command or image", sname)
    end
    sv.reasons[#sv.reasons + 1] = string.format("%s:%d: x-orket.database: sqlite, a file made fresh%s", name, line,
      sv.seed and (" from " .. sv.seed) or "")
  elseif v.command ~= nil and v.build == nil and type(v.image) == "string" and image_kind(v.image) then
    -- Orket runs PostgreSQL itself, with its own flags: the command's (a tuned setting,
    -- -c log_statement=all) would not be honoured, and run as an app it is no database
    return nil, err(name, yamldoc.line(v, "command"), "services.%s.command: Orket runs image %s's PostgreSQL itself, "
      .. "as a process with its own settings, so this command's flags would not be honoured: remove command to have "
      .. "the database, or give build: its folder to run the command as an app", sname, v.image)
  elseif v.command ~= nil and v.image ~= nil and v.build == nil then
    -- the command would run on the host, without the image's programs and files: not the
    -- service the file describes (it once ran the host's binary, or failed at the start)
    return nil, err(name, yamldoc.line(v, "image"), "services.%s.image: %s with a command: Orket runs the command as "
      .. "a process, never the image, so the image's programs and files would be missing: give build: the folder "
      .. "the command runs in (the image is then a name only), or run the service elsewhere", sname, tostring(v.image))
  elseif v.command ~= nil then
    sv.command, sv.command_raw = argv_of(v.command)
    if not sv.command then
      return nil, err(name, yamldoc.line(v, "command"), "services.%s.command must be a string or a list of strings", sname)
    end
    sv.reasons[#sv.reasons + 1] = string.format("%s:%d: its command", name, yamldoc.line(v, "command"))
  elseif type(v.image) == "string" and image_kind(v.image) or sv.database == "postgresql" then
    sv.database = "postgresql"
    sv.reasons[#sv.reasons + 1] = string.format("%s:%d: %s: Debian's PostgreSQL, run by Orket as a process%s",
      name, yamldoc.line(v, "image") or line, v.image and ("image " .. tostring(v.image)) or "x-orket.database",
      sv.seed and (", seeded from " .. sv.seed) or sv.seed_command and ", seeded by its seed_command" or "")
  elseif v.image ~= nil and v.build == nil then
    return nil, err(name, yamldoc.line(v, "image"), "services.%s: image %s only, which Orket cannot run as a process: "
      .. "give it a command (and build: its folder), or run it elsewhere", sname, tostring(v.image))
  end
  if v.environment ~= nil then
    local env, got, bad_line = env_of(v.environment)
    if not env then
      return nil, err(name, bad_line or yamldoc.line(v, "environment"), "services.%s.environment: a mapping of names to "
        .. "strings, or a list of NAME=value (%s)", sname, got)
    end
    local bytes = 0
    for k, val in pairs(env) do bytes = bytes + #k + #val + 2 end
    if bytes > M.ENV_MAX then
      return nil, err(name, yamldoc.line(v, "environment"), "services.%s.environment: %d bytes, over the %d a service's "
        .. "environment may have (the services' start is one command line, which the kernel caps at 128 KiB): put "
        .. "large values in a file of the tree and name the file", sname, bytes, M.ENV_MAX)
    end
    -- each setting's own line (a mapping's key, a list's item)
    sv.env, sv.env_line, sv.env_lines = env, yamldoc.line(v, "environment"), got
  end
  if v.ports ~= nil then
    if not yamldoc.is_list(v.ports) or #v.ports == 0 then
      return nil, err(name, yamldoc.line(v, "ports"), "services.%s.ports must be a list (\"8000:8000\")", sname)
    end
    -- each entry is checked, though the first alone is the service's: a mistake in another
    -- is not passed over without a word
    for i = #v.ports, 1, -1 do
      if not port_of(v.ports[i]) then
        local shown = yamldoc.is_map(v.ports[i]) and "{target: ..., published: ...}" or tostring(v.ports[i])
        -- a variable (${WEB_PORT:-8080}) is Compose's, filled in from .env: said, else the
        -- message reads as if the port were mistyped
        local var = type(v.ports[i]) == "string" and v.ports[i]:find("$", 1, true)
          and "; variables are not filled in here (Orket reads no .env file): write the port" or ""
        return nil, err(name, yamldoc.line(v, "ports"), "services.%s.ports: %q is not a "
          .. "port (\"8000\", \"8080:8000\", \"127.0.0.1:8080:8000\" or {target: 8000, published: 8080, host_ip: "
          .. "127.0.0.1})%s", sname, shown, var)
      end
    end
    local inner, host, ip = port_of(v.ports[1])
    -- (published true: on a random host port, which clashes with no other's)
    sv.listens, sv.published, sv.host_ip, sv.ports_line = inner, host or true, ip, yamldoc.line(v, "ports")
  end
  if v.depends_on ~= nil then
    local d = v.depends_on
    local dl = yamldoc.line(v, "depends_on")
    if yamldoc.is_list(d) then
      for _, x in ipairs(d) do
        if type(x) ~= "string" then return nil, err(name, dl, "services.%s.depends_on: a list of service names", sname) end
        sv.depends_on[#sv.depends_on + 1] = { name = x, line = dl }
      end
    elseif yamldoc.is_map(d) then
      for _, x in ipairs(yamldoc.keys(d)) do
        -- service_started and service_healthy: healthy (a check tells a started service
        -- ready); service_completed_successfully: x is a job, run to its end before
        -- sname starts. Any other word (a misspelling) would be taken for one of them
        -- without a word: refused.
        local c = yamldoc.is_map(d[x]) and d[x].condition
        for _, k in ipairs(yamldoc.is_map(d[x]) and yamldoc.keys(d[x]) or {}) do
          -- a misspelt key (conditon) would leave the condition unread without a word.
          -- required and restart are passed over: every service of the file is started
          -- (profiles are refused), and a sandbox restarts no service.
          if not DEPENDS_FIELDS[k] and not k:match("^x%-") then
            return nil, err(name, yamldoc.line(d[x], k), "services.%s.depends_on.%s.%s: not a field Orket reads (it "
              .. "reads condition; it passes over required and restart)", sname, x, k)
          end
        end
        if c ~= nil and c ~= false and not CONDITIONS[c] then
          return nil, err(name, yamldoc.line(d[x], "condition") or yamldoc.line(d, x),
            "services.%s.depends_on.%s.condition: %s is not one of service_started, service_healthy, "
            .. "service_completed_successfully", sname, x, type(c) == "string" and c or tostring(c))
        end
        sv.depends_on[#sv.depends_on + 1] = { name = x, line = yamldoc.line(d, x),
          completed = c == "service_completed_successfully", healthy = c == "service_healthy" or nil }
      end
    else
      return nil, err(name, dl, "services.%s.depends_on: a list of service names, or a mapping", sname)
    end
  end
  if v.healthcheck ~= nil then
    local h, herr = health_of(v.healthcheck, name, yamldoc.line(v, "healthcheck"), sname)
    if not h then return nil, herr end
    sv.health = h
  end
  if sv.database == "postgresql" then pg_notes(sv, v, name) end
  return sv
end

--- order(services, name) -> the services in the order they start (each after those it
--- depends on) | nil, "name:LINE: ..." for an unknown service or a cycle
function M.order(list, name)
  local by = {}
  for _, sv in ipairs(list) do by[sv.name] = sv end
  for _, sv in ipairs(list) do
    for _, d in ipairs(sv.depends_on) do
      if not by[d.name] then
        return nil, err(name, d.line, "services.%s.depends_on: no service %s", sv.name, d.name)
      end
    end
  end
  local out, state = {}, {}
  local function visit(sv, path)
    if state[sv.name] == "done" then return true end
    if state[sv.name] == "on" then
      local cyc = {}
      local from
      for i, x in ipairs(path) do if x.name == sv.name then from = i end end
      for i = from, #path do cyc[#cyc + 1] = path[i].name end
      cyc[#cyc + 1] = sv.name
      local last = path[#path]
      local line
      for _, d in ipairs(last.depends_on) do if d.name == sv.name then line = d.line end end
      return nil, err(name, line, "depends_on goes round in a cycle: %s", table.concat(cyc, " -> "))
    end
    state[sv.name] = "on"
    path[#path + 1] = sv
    for _, d in ipairs(sv.depends_on) do
      local ok, e = visit(by[d.name], path)
      if not ok then return nil, e end
    end
    path[#path] = nil
    state[sv.name] = "done"
    out[#out + 1] = sv
    return true
  end
  for _, sv in ipairs(list) do
    local ok, e = visit(sv, {})
    if not ok then return nil, e end
  end
  return out
end

--- GITMODULES_LINE: the longest .gitmodules line read (bytes, a path of PATH_MAX with its
--- key). A longer line is skipped whole, and the keys after it up to the next section
--- header are not taken as a submodule's: it may have been that header.
M.GITMODULES_LINE = 4096

-- a path as git names it, so that two spellings of one folder compare equal: no empty or
-- "." segment, no leading "./", no trailing "/" ("lib//./app/" is "lib/app")
local function norm_path(p)
  local parts = {}
  for seg in p:gmatch("[^/]+") do
    if seg ~= "." then parts[#parts + 1] = seg end
  end
  return table.concat(parts, "/")
end

-- The value of a key's line from byte i, as git's config reads it: blanks around it
-- dropped, a ';' or '#' outside quotes starts a comment, '"' quotes (and is dropped), '\'
-- escapes '"', '\', n, t and b | nil (an open quote, another escape, a line-end escape:
-- git refuses the file; here the value is not taken). One pass over the bytes.
local ESCAPES = { ['"'] = '"', ["\\"] = "\\", n = "\n", t = "\t", b = "\b" }
local function config_value(line, i)
  local out, blanks, quoted = {}, 0, false
  local n = #line
  while i <= n do
    local c = line:sub(i, i)
    if not quoted and c:match("%s") then
      if #out > 0 then blanks = blanks + 1 end
    elseif not quoted and (c == ";" or c == "#") then
      break
    else
      for _ = 1, blanks do out[#out + 1] = " " end
      blanks = 0
      if c == "\\" then
        i = i + 1
        local e = ESCAPES[line:sub(i, i)]
        if not e then return nil end
        out[#out + 1] = e
      elseif c == '"' then
        quoted = not quoted
      else
        out[#out + 1] = c
      end
    end
    i = i + 1
  end
  if quoted then return nil end
  return table.concat(out)
end

--- gitmodules_paths(text) -> {path=true}: the submodule paths a .gitmodules text names,
--- read by git's config syntax as far as a path needs: a `path` key (any case) in a
--- [submodule "NAME"] section (or the older [submodule.NAME]), its value unquoted and
--- without a trailing comment, normalised (norm_path). Lines over GITMODULES_LINE bytes
--- are skipped (above); the work is one pass over each line, whatever the text holds.
function M.gitmodules_paths(text)
  local out, in_sub = {}, false
  for line in text:gmatch("[^\n]*") do
    if #line > M.GITMODULES_LINE then
      in_sub = false
    else
      local at = line:match("^%s*()")
      local c = line:sub(at, at)
      if c == "[" then
        -- (the section's name ends at a blank, '"', '.' or ']': each pattern item is bounded
        -- by the next one's class, so none backtracks)
        local sect, sep = line:match("^([%w%-]*)([%s%.%]]?)", at + 1)
        sect = sect:lower()
        in_sub = sect == "submodule" and (sep == "." or (sep:match("%s") and line:find('^%s*"', at + 1 + #sect) ~= nil))
      elseif in_sub and c:match("%a") then
        local key, after = line:match("^([%w%-]+)%s*()", at)
        if key:lower() == "path" and line:sub(after, after) == "=" then
          local v = config_value(line, after + 1)
          v = v and norm_path(v)
          if v and v ~= "" then out[v] = true end
        end
      end
    end
  end
  return out
end

-- The submodule paths the tree's .gitmodules names (an unreadable or missing file: none).
local function gitmodules(ws)
  local st = ws:stat(".gitmodules")
  local text = st and st.type == "file" and ws:read(".gitmodules", { limit = 65536 })
  return M.gitmodules_paths(text or "")
end

-- submodule(ws, dir, subs, exported) -> the submodule folder dir is or lies in | nil. A
-- sandbox's tree is main's exported without its submodules' files, each an empty folder
-- there; a person's working tree holds one empty (not checked out) or with its .git. So a
-- folder .gitmodules names (subs) is one when it is missing, empty or holds a .git (one
-- that holds the tree's own files is not: a .gitmodules left behind); in an exported tree
-- any empty folder is one too, as git keeps no empty folder (a person's may be their own).
local function submodule(ws, dir, subs, exported)
  local at = ""
  for part in norm_path(dir):gmatch("[^/]+") do
    at = at == "" and part or (at .. "/" .. part)
    local st = ws:stat(at)
    local entries = st and st.type == "directory" and ws:list(at)
    local empty, dotgit = entries and #entries == 0, false
    for _, e in ipairs(entries or {}) do dotgit = dotgit or e.name == ".git" end
    if subs[at] and (not st or empty or dotgit) then return at end
    if exported and empty then return at end
  end
  return nil
end

-- the refusal of a service's folder that is (or lies in) submodule sub
local function submodule_err(name, sv, sub)
  local what = sub == norm_path(sv.dir) and string.format("%s/ is a git submodule", sv.dir)
    or string.format("%s/ lies in the git submodule %s/", sv.dir, sub)
  return err(name, sv.dir_line, "services.%s.%s: %s, whose files a sandbox does not have (it runs main's tree "
    .. "without its submodules): commit the service's files into the repository itself, not as a submodule, or "
    .. "point %s at a folder of the repository", sv.name, sv.dir_field, what, sv.dir_field)
end

--- folders(services, name, ws [, exported]) -> true | nil, "name:LINE: message": each
--- service's build or working_dir folder is a folder of the tree ws (orket.workspace)
--- holds, as its start needs: found at plan time, with the field's line, not by bash's cd
--- when it starts. Refused: a folder missing (ENOENT), and one that is or lies in a git
--- submodule (.gitmodules names it; in a tree main's export wrote, exported, an empty
--- folder too), whose files a sandbox never has. One reached through a link is left to
--- what reads it, and a service that waits for another (depends_on: a job may make its
--- folder, a gitignored build output) is not judged here.
function M.folders(services, name, ws, exported)
  local subs
  for _, sv in ipairs(services) do
    if sv.dir_field and sv.dir ~= "" and sv.dir ~= "." and #sv.depends_on == 0 then
      local st, _, code = ws:stat(sv.dir)
      subs = subs or gitmodules(ws)
      local sub = (not st and code == "ENOENT" or st and st.type == "directory")
        and submodule(ws, sv.dir, subs, exported)
      if sub then return nil, submodule_err(name, sv, sub) end
      if not st then
        if code == "ENOENT" then
          return nil, err(name, sv.dir_line, "services.%s.%s: the repository has no folder %s/", sv.name,
            sv.dir_field, sv.dir)
        end
        -- (a link on the way, EACCES: left to the start, which says what it does with one)
      elseif st.type ~= "directory" and st.type ~= "symlink" then
        -- (a link is left to what reads the folder: each says what it does with one)
        return nil, err(name, sv.dir_line, "services.%s.%s: %s is %s, not a folder", sv.name, sv.dir_field, sv.dir,
          st.type == "file" and "a file" or "a FIFO, socket or device")
      end
    end
  end
  return true
end

--- read(text, name) -> {services = {...} in start order, entry = the name reached from
--- outside} | nil, "name:LINE: message". A service without a command takes what its
--- folder's files say (the caller detects it: sv.command nil, sv.dir its folder).
function M.read(text, name)
  local doc, perr = yamldoc.parse(text, name)
  if perr then return nil, perr end
  -- empty, or only blanks and comments: more likely a mistake than a wish to have the
  -- tree's folders say what runs (that is no compose file at all)
  if doc == nil then
    return nil, err(name, 1, "holds no services (it is empty, or only blanks and comments): write them under "
      .. "services:, or remove the file to have the tree's folders say what runs")
  end
  if not yamldoc.is_map(doc) or not yamldoc.is_map(doc.services) then
    return nil, err(name, doc and yamldoc.line(doc) or 1, "a compose file needs services: a mapping of services")
  end
  for _, k in ipairs(yamldoc.keys(doc)) do
    if k == "include" then
      -- the included files' services would be missing from the sandbox without a word
      return nil, err(name, yamldoc.line(doc, k), "include: Orket reads this one file, not the files it includes, "
        .. "so their services would be missing: write them in this file's services")
    elseif not M.TOP_FIELDS[k] and not k:match("^x%-") then
      return nil, err(name, yamldoc.line(doc, k), "%s: not a top-level field Orket reads (it reads services; it passes "
        .. "over name, version, volumes, networks, secrets, configs and x-*)", k)
    end
  end
  local list, hosts, vars = {}, {}, {}
  for _, sname in ipairs(yamldoc.keys(doc.services)) do
    local sv, serr = service_of(sname, doc.services[sname], name, yamldoc.line(doc.services, sname))
    if not sv then return nil, serr end
    -- each service is told the others' addresses by name: two names of one variable would
    -- have one overwrite the other
    local v, same = M.var(sname), vars[M.var(sname)]
    if same then
      return nil, err(name, sv.line, "services %s and %s (line %d) would share the variables %s_URL, %s_PORT and "
        .. "%s_HOST: rename one", same.name, sname, same.line, v, v, v)
    end
    vars[v] = sv
    if math.type(sv.published) == "integer" then
      -- one host port twice clashes on one IP, or when either binds every interface
      -- (127.0.0.1:8000 beside 127.0.0.2:8000 does not)
      for _, other in ipairs(hosts[sv.published] or {}) do
        if not other.host_ip or not sv.host_ip or other.host_ip == sv.host_ip then
          return nil, err(name, sv.ports_line, "services %s and %s both ask for port %d (line %d)", other.name, sname,
            sv.published, other.ports_line)
        end
      end
      hosts[sv.published] = hosts[sv.published] or {}
      table.insert(hosts[sv.published], sv)
    end
    list[#list + 1] = sv
    if #list > M.MAX_SERVICES then return nil, err(name, sv.line, "more than %d services", M.MAX_SERVICES) end
  end
  if #list == 0 then return nil, err(name, yamldoc.line(doc, "services"), "services is empty") end
  local ordered, oerr = M.order(list, name)
  if not ordered then return nil, oerr end
  -- a service some other awaits with service_completed_successfully is a job: run to its
  -- end in its place in the order (its failure stops the start), never kept running
  local by = {}
  for _, sv in ipairs(list) do by[sv.name] = sv end
  for _, sv in ipairs(list) do
    for _, d in ipairs(sv.depends_on) do
      if d.completed then
        if by[d.name].database then
          return nil, err(name, d.line, "services.%s.depends_on.%s: a database is a server, not a job run to its end: "
            .. "its condition is service_healthy", sv.name, d.name)
        end
        by[d.name].job = true
      end
    end
  end
  return { services = ordered }
end

return M
