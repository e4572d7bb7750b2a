-- orket.sandboxes.plan: what a sandbox runs, found from main's tree at a commit (its
-- compose file, its root, or the services in its folders) or taken from orket.lua's
-- `sandbox.command`, with the reasons it was chosen: the answer of
-- `orket sandbox plan`, and what the sandbox and the compose file are made from. The tree
-- is agents' work, so it is read as hostile data through the confined workspace
-- (orket.workspace: no symlink out, no FIFO waited on), each file capped.
-- Contract: docs/sandbox.md.
local cjson = require "cjson.safe"
local inert = require "orket.inert"
local composefile = require "orket.sandboxes.composefile"
local scriptfile = require "orket.scriptfile"
local uv = require "luv"

local M = {}

M.READ_MAX = 256 * 1024

-- read(ws, path) -> text | nil: a regular file of the tree, at most READ_MAX bytes (a
-- missing, special, unreadable or larger file is no evidence of anything)
local function read(ws, path)
  local st = ws:stat(path)
  if not st or st.type ~= "file" or st.size > M.READ_MAX then return nil end
  local data = ws:read(path, { limit = M.READ_MAX })
  return data
end

local function exists(ws, path)
  local st = ws:stat(path)
  return st ~= nil and st.type == "file"
end

-- The first of names that is a file of the tree (under the folder at: "" is the root);
-- the name relative to at.
local function first_file(ws, names, at)
  for _, n in ipairs(names) do
    if exists(ws, (at or "") .. n) then return n end
  end
end

-- Each detector(ws, why, at) looks in the folder at ("" for the root, else "dir/"), its
-- reasons naming files by their path in the tree.
local function node(ws, why, at)
  local text = read(ws, at .. "package.json")
  if not text then return nil end
  -- a UTF-8 byte order mark first (Visual Studio's and Notepad's save) is skipped, as npm
  -- skips it; UTF-16 or UTF-32 is said as such, not as "not a JSON object"
  local eerr
  text, eerr = scriptfile.encoding(text)
  if not text then
    why[#why + 1] = at .. "package.json " .. eerr .. ": skipped"
    return nil
  end
  local doc = cjson.decode(text)
  if type(doc) ~= "table" then
    why[#why + 1] = at .. "package.json is not a JSON object: skipped"
    return nil
  end
  local scripts = type(doc.scripts) == "table" and doc.scripts or {}
  local p = { stack = "node", runtime = "node" }
  for _, s in ipairs { "start", "serve", "dev" } do
    if type(scripts[s]) == "string" then
      p.command = s == "start" and { "npm", "start" } or { "npm", "run", s }
      why[#why + 1] = string.format("%spackage.json has a %q script (%s)", at, s, scripts[s]:sub(1, 120))
      break
    end
  end
  if not p.command then
    local main = type(doc.main) == "string" and doc.main:match("^[%w._/-]+%.[mc]?js$") and not doc.main:find("%.%.")
      and exists(ws, at .. doc.main) and doc.main or first_file(ws, { "server.js", "app.js", "index.js" }, at)
    if not main then
      why[#why + 1] = at .. "package.json has no start, serve or dev script and no main file: skipped"
      return nil
    end
    p.command = { "node", main }
    why[#why + 1] = at .. "package.json has no start script; " .. at .. main .. " is its entry point"
  end
  local deps = type(doc.dependencies) == "table" and next(doc.dependencies) ~= nil
  if deps and not ws:stat(at .. "node_modules") then p.install = { "npm", "install", "--omit=dev" } end
  return p
end

-- A Python application: requirements.txt or pyproject.toml, or a plain entry file. The
-- framework named in the requirements chooses how it is served.
local PY_ENTRIES = { "app.py", "main.py", "server.py", "wsgi.py" }

local function python(ws, why, at)
  local reqs = (read(ws, at .. "requirements.txt") or "") .. "\n" .. (read(ws, at .. "pyproject.toml") or "")
  local has_reqs = exists(ws, at .. "requirements.txt") or exists(ws, at .. "pyproject.toml")
  local entry = first_file(ws, PY_ENTRIES, at)
  local lower = reqs:lower()
  local p = { stack = "python", runtime = "python3" }
  if exists(ws, at .. "manage.py") and lower:find("django", 1, true) then
    p.command = { "python3", "manage.py", "runserver", "--noreload", "{host}:{port}" }
    why[#why + 1] = at .. "manage.py and django in the requirements: Django's server"
  elseif entry and lower:find("fastapi", 1, true) or entry and lower:find("uvicorn", 1, true) then
    p.command = { "python3", "-m", "uvicorn", entry:gsub("%.py$", "") .. ":app", "--host", "{host}", "--port", "{port}" }
    why[#why + 1] = at .. entry .. " with fastapi/uvicorn in the requirements: served by uvicorn"
  elseif entry and lower:find("flask", 1, true) then
    p.command = { "python3", "-m", "flask", "--app", entry, "run", "--host", "{host}", "--port", "{port}" }
    why[#why + 1] = at .. entry .. " with flask in the requirements: Flask's server"
  elseif entry then
    p.command = { "python3", entry }
    why[#why + 1] = at .. entry .. " is a Python entry point" .. (has_reqs and "" or " (no requirements: the standard library)")
  else
    if has_reqs then
      why[#why + 1] = (at ~= "" and (at .. ": ") or "") .. "Python requirements but none of "
        .. table.concat(PY_ENTRIES, ", ") .. ": skipped"
    end
    return nil
  end
  if exists(ws, at .. "requirements.txt") then
    p.install = { "python3", "-m", "pip", "install", "-r", "requirements.txt" }
  elseif exists(ws, at .. "pyproject.toml") then
    p.install = { "python3", "-m", "pip", "install", "." }
  end
  return p
end

local function go(ws, why, at)
  if not exists(ws, at .. "go.mod") then return nil end
  why[#why + 1] = at .. "go.mod: the module's main package"
  return { stack = "go", runtime = "go", command = { "go", "run", "." } }
end

-- A Makefile target that serves: the first of run, serve, start defined at a line's start.
local function make(ws, why, at)
  local name = first_file(ws, { "Makefile", "makefile", "GNUmakefile" }, at)
  if not name then return nil end
  local text = read(ws, at .. name) or ""
  name = at .. name
  for _, t in ipairs { "run", "serve", "start" } do
    for line in text:gmatch("[^\n]+") do
      if line:match("^" .. t .. "%s*:") and not line:match("^" .. t .. "%s*:=") then
        why[#why + 1] = string.format("%s has a %q target", name, t)
        return { stack = "make", runtime = "make", command = { "make", t } }
      end
    end
  end
  why[#why + 1] = name .. " has no run, serve or start target: skipped"
  return nil
end

M.DETECTORS = { { "node", node }, { "python", python }, { "go", go }, { "make", make } }

-- the first detector's plan for the folder at ("" or "dir/")
local function detect_at(ws, why, at)
  for _, d in ipairs(M.DETECTORS) do
    local found = d[2](ws, why, at)
    if found then return found end
  end
end

-- folders never searched for services: dependencies, builds, tools' caches
M.SKIP_DIRS = { node_modules = true, vendor = true, dist = true, build = true, target = true, venv = true,
  [".venv"] = true, __pycache__ = true, docs = true, tests = true, test = true, spec = true, examples = true }
M.WALK_MAX = 64 -- folders looked at
-- the service reached from outside when none is published: the first of these names
M.ENTRY_NAMES = { "frontend", "web", "client", "ui", "app", "site" }

local function dirs(ws, at)
  local list = ws:list(at == "" and "." or at) or {}
  local out = {}
  for _, e in ipairs(list) do
    if e.type == "directory" and not e.name:match("^%.") and not M.SKIP_DIRS[e.name] then out[#out + 1] = e.name end
  end
  return out
end

-- a service's name from its folder: its last part, as a name
local function name_of(dir)
  local n = (dir:match("([^/]+)$") or dir):gsub("[^%w_-]", "-")
  if not n:match("^%a") then n = "s-" .. n end
  return n:sub(1, 64)
end

-- The services in the folders below the root (one and two levels down), each the first
-- detector's plan of its folder, in the folders' order.
local function walk(ws, why)
  local out, looked = {}, 0
  local function look(dir)
    looked = looked + 1
    if looked > M.WALK_MAX then return end
    local w = {}
    local found = detect_at(ws, w, dir .. "/")
    if found then
      found.dir, found.name, found.reasons = dir, name_of(dir), w
      if found.install then
        -- (the sandbox has no outbound network: what a service needs must be in the tree)
        w[#w + 1] = string.format("its dependencies install with `%s` in %s/, which a sandbox without network "
          .. "cannot do: carry them in the tree", table.concat(found.install, " "), dir)
      end
      out[#out + 1] = found
      return
    end
    for _, x in ipairs(w) do why[#why + 1] = x end
    if not dir:find("/", 1, true) then
      for _, sub in ipairs(dirs(ws, dir)) do look(dir .. "/" .. sub) end
    end
  end
  for _, d in ipairs(dirs(ws, "")) do look(d) end
  return out
end

-- services found in folders: two whose names (or their variables' prefix) are one, as
-- a/api/ and b/api/, or "my app/" and my-app/, are refused, naming both folders | nil
local function clash(services)
  local seen = {}
  for _, sv in ipairs(services) do
    local v = composefile.var(sv.name)
    local other = seen[v]
    if other then
      if other.name == sv.name then
        return string.format("sandbox: the folders %s/ and %s/ would both be the service %s: rename one, or name "
          .. "the services in a compose file", other.dir, sv.dir, sv.name)
      end
      return string.format("sandbox: the folders %s/ and %s/ would be the services %s and %s, which share the "
        .. "variables %s_URL, %s_PORT and %s_HOST: rename one, or name the services in a compose file", other.dir,
        sv.dir, other.name, sv.name, v, v, v)
    end
    seen[v] = sv
  end
end

-- the entry: the one published service, or the first named like a frontend, or the last to
-- start; never a database or a job (it ends). -> the service, and "last" when it is the last
-- to start because nothing else qualified (no service published, none named like a frontend)
local function pick_entry(list)
  local published, apps = {}, {}
  for _, sv in ipairs(list) do
    if not sv.database and not sv.job then
      apps[#apps + 1] = sv
      if sv.published then published[#published + 1] = sv end
    end
  end
  local pool = #published > 0 and published or apps
  for _, n in ipairs(M.ENTRY_NAMES) do
    for _, sv in ipairs(pool) do if sv.name == n then return sv end end
  end
  return pool[#pool], #published == 0 and "last" or nil
end

local KIND = { directory = "a folder", symlink = "a symbolic link", link = "a symbolic link" }

-- the repository's compose file, read: services | nil, error | nil (none)
local function from_compose(ws, why)
  -- one of the names that is no regular file is passed over (a link is never followed:
  -- the tree is the agents'), and said, as orket validate says it
  for _, n in ipairs(composefile.NAMES) do
    local st = ws:stat(n)
    if st and st.type ~= "file" then
      why[#why + 1] = string.format("%s is %s, not a regular file: passed over", n,
        KIND[st.type] or "a FIFO, socket or device")
    end
  end
  local name = first_file(ws, composefile.NAMES)
  if not name then return nil end
  local text = read(ws, name)
  if not text then return nil, string.format("%s: unreadable or larger than %d bytes", name, M.READ_MAX) end
  local doc, err = composefile.read(text, name)
  if not doc then return nil, err end
  -- (the plan reads main's exported tree: orket.sandboxes.source)
  local ok, ferr = composefile.folders(doc.services, name, ws, true)
  if not ok then return nil, ferr end
  why[#why + 1] = string.format("%s: %d service%s, started in the order of their depends_on", name, #doc.services,
    #doc.services == 1 and "" or "s")
  -- Compose merges an override file into the file unasked; a sandbox runs the file alone
  for _, n in ipairs(composefile.OVERRIDES) do
    if ws:stat(n) then
      why[#why + 1] = string.format("%s is not read (Compose merges it into %s; a sandbox runs %s alone): put "
        .. "what the sandbox needs of it in %s", n, name, name, name)
    end
  end
  for _, sv in ipairs(doc.services) do
    if not sv.command and not sv.database then
      local w = {}
      local found = detect_at(ws, w, sv.dir == "" and "" or (sv.dir .. "/"))
      if not found then
        return nil, string.format("%s:%d: services.%s has no command, and nothing in %s runs (%s)", name, sv.line, sv.name,
          sv.dir == "" and "the root" or sv.dir, table.concat(w, "; "))
      end
      sv.command, sv.stack = found.command, found.stack
      for _, r in ipairs(w) do sv.reasons[#sv.reasons + 1] = r end
    end
  end
  doc.services.from_compose = name
  return doc.services
end

-- handed(services, env) -> the first name of orket.lua's sandbox.env that Orket sets in
-- every service of several (a service's NAME_URL, NAME_HOST, NAME_PORT, and DATABASE_URL
-- for the one database: orket.sandboxes.supervise.addresses), and that service's name. The
-- sandbox's address is given over the operator's value without a word, as for the port and
-- HOST (orket.settings.sandbox), so such a value is refused instead.
local function handed(services, env)
  local dbs = {}
  for _, sv in ipairs(services) do
    local v = composefile.var(sv.name)
    for _, suffix in ipairs { "_URL", "_HOST", "_PORT" } do
      if env[v .. suffix] ~= nil then return v .. suffix, sv.name end
    end
    if sv.database then dbs[#dbs + 1] = sv.name end
  end
  if #dbs == 1 and env.DATABASE_URL ~= nil then return "DATABASE_URL", dbs[1] end
end

-- names_service(value, key, sname) -> how an environment value names service sname by its
-- Compose host name: "url" as a URL's host (http://api:8000, postgres://u:p@db:5432/x),
-- "hostport" as a HOST:PORT of its own or in a list (redis:6379, a:1,b:2), "host" as the
-- whole value of a *HOST* setting | nil. A longer name (api.example.com, api-gw) is not it.
local function names_service(val, key, sname)
  if val == sname then return key:find("HOST", 1, true) and "host" or nil end
  local e = sname:gsub("%p", "%%%0")
  for at, after in val:gmatch("()" .. e .. "()") do
    local next_c = val:sub(after, after)
    if val:sub(at - 2, at - 1) == "//" or val:sub(at - 1, at - 1) == "@" then
      if next_c == "" or next_c:match("[:/?#]") then return "url" end
    elseif (at == 1 or val:sub(at - 1, at - 1):match("[%s,;=]")) and val:sub(after):match("^:%d") then
      return "hostport"
    end
  end
  return nil
end

-- env_notes(services, s, name, why): what a compose environment value holds that reaches
-- nothing in a sandbox, said in the plan at its line (the file's value wins, as written,
-- docs/sandbox.md). A service named by its Compose host name: no name resolves in the
-- sandbox's network but localhost, and each service listens on 127.0.0.1 at the port
-- Orket gives it, so the variable that holds its address is named. A ${NAME} Compose would
-- fill in from .env or the host's environment: only the variables Orket gives are read.
local function env_notes(services, s, name, why)
  local known, dbs = { HOST = true, [s.port_env] = true }, {}
  for k in pairs(s.env or {}) do known[k] = true end
  for _, sv in ipairs(services) do
    local v = composefile.var(sv.name)
    known[v .. "_URL"], known[v .. "_HOST"], known[v .. "_PORT"] = true, true, true
    if sv.database then dbs[#dbs + 1] = sv end
  end
  if #dbs == 1 then known.DATABASE_URL = true end
  for _, sv in ipairs(services) do
    local keys = {}
    for k in pairs(sv.env or {}) do keys[#keys + 1] = k end
    local function line_of(k) return sv.env_lines and sv.env_lines[k] or sv.env_line or sv.line end
    table.sort(keys, function(a, b)
      if line_of(a) ~= line_of(b) then return line_of(a) < line_of(b) end
      return a < b
    end)
    for _, k in ipairs(keys) do
      local val = sv.env[k]
      local at = string.format("%s:%s: services.%s.environment.%s (%s)", name, tostring(line_of(k)), sv.name, k,
        inert.clip((val:gsub("%c", " ")), 60))
      for _, other in ipairs(services) do
        local how = names_service(val, k, other.name)
        if how then
          local v = composefile.var(other.name)
          local url = other.database and #dbs == 1 and "DATABASE_URL" or (v .. "_URL")
          -- what to write instead: the variable of the same form
          local own = how == "url" and url or (v .. "_HOST")
          local write = how == "url" and ("${" .. url .. "}") or how == "hostport"
            and ("${" .. v .. "_HOST}:${" .. v .. "_PORT}") or ("${" .. v .. "_HOST}")
          why[#why + 1] = string.format("%s names service %s by its Compose host name, which nothing resolves in a "
            .. "sandbox (each service listens on 127.0.0.1 at the port Orket gives it): Orket gives %s's %s in %s "
            .. "(and %s_HOST, %s_PORT)%s; %s", at, other.name, other.name,
            other.database and "connection string" or "address", url, v, v,
            other.database and ", with its own user and database" or "",
            k == own and ("remove this setting to have Orket's " .. k) or ("write " .. write .. " in its place"))
        end
      end
      local unread = {}
      for _, r in ipairs(composefile.references(val)) do
        if not known[r.name] then
          local what = (r.op == ":-" or r.op == "-") and "takes its default"
            or (r.op == ":+" or r.op == "+") and "is empty" or "stays as written"
          unread[#unread + 1] = string.format("${%s%s} %s", r.name, r.op ~= "" and (r.op .. "...") or "", what)
        end
      end
      if #unread > 0 then
        why[#why + 1] = string.format("%s: %s: Orket reads no .env file and not the host's environment (Compose fills "
          .. "these in from them); it fills in only the variables it gives (NAME_URL, NAME_HOST, NAME_PORT, $%s, "
          .. "DATABASE_URL beside one database) and orket.lua's sandbox.env", at, table.concat(unread, ", "), s.port_env)
      end
    end
  end
end

-- Whether the command names the port itself: {port}, which argv fills in, or $NAME / ${NAME}
-- of the port's variable where a shell or the compose file's own reading fills it in (a
-- compose service's command, a `sh -c` text); orket.lua's words are given as written.
local function port_on_line(p, var)
  local text = table.concat(p.command, " ")
  if text:find("{port}", 1, true) then return true end
  local read = (p.command[1] == "sh" and p.command[2] == "-c") or (p.services ~= nil and not p.explicit)
  local v = var:gsub("%p", "%%%0")
  return read and (text:find("%${" .. v .. "}") or text:find("%$" .. v .. "%f[^%w_]")) ~= nil
end

--- detect(ws, sandbox_settings) -> plan | nil, msg, "ENOENT" | "EINVAL"
--- plan = {stack=, command={argv}, dir= (its folder, "" the root), explicit=bool, port_env=,
--- health={...}, env={...}, install={argv}|nil, dockerfile=bool, reasons={...},
--- services={{name=, dir=, command=, env=, depends_on={{name=}...}, health=, database=,
--- reasons=, entry=bool}...} in start order | nil for one service}. What runs is, first
--- to last: orket.lua's sandbox.command; the repository's compose file (each service);
--- what the root's files say; the services in the folders below it. The top level
--- describes the entry: the service reached through the sandbox's socket.
function M.detect(ws, s)
  local why = {}
  local found, services
  if not s.command then
    local cerr
    services, cerr = from_compose(ws, why)
    if cerr then return nil, "sandbox: " .. cerr, "EINVAL", why end
    if not services then
      found = detect_at(ws, why, "")
      if not found then
        services = walk(ws, why)
        local cerr = clash(services)
        if cerr then return nil, cerr, "EINVAL", why end
        if #services == 1 then
          found, services = services[1], nil
          why[#why + 1] = "nothing to run at the root: " .. found.dir .. "/ is the one folder that has something"
        elseif #services == 0 then
          services = nil
        else
          local names = {}
          for i, sv in ipairs(services) do names[i] = sv.dir .. "/" end
          why[#why + 1] = "nothing to run at the root; the folders " .. table.concat(names, ", ") .. " each run a service"
        end
      end
    end
  else
    found = detect_at(ws, {}, "")
  end
  if services then
    for _, sv in ipairs(services) do
      sv.reasons = sv.reasons or {}
      sv.depends_on = sv.depends_on or {}
      sv.env = sv.env or {}
    end
    local entry, how = pick_entry(services)
    if not entry then
      return nil, "sandbox: " .. tostring(services.from_compose) .. ": every service is a database or a job: nothing to reach", "EINVAL", why
    end
    if not services.from_compose then
      -- found in folders (no depends_on): the one reached from outside starts last, once
      -- the others are healthy
      for i, one in ipairs(services) do
        if one == entry then table.remove(services, i) break end
      end
      services[#services + 1] = entry
    end
    for _, sv in ipairs(services) do sv.entry = sv == entry end
    -- (a worker, say: supervise.settles_entry)
    entry.entry_last = how == "last" or nil
    found = { stack = entry.stack or (entry.database or "compose"), command = entry.command, dir = entry.dir,
      install = nil }
    why[#why + 1] = string.format("%s is reached through the sandbox's socket (%s)", entry.name,
      entry.published and "its port is published" or "no other is published")
  end
  local p = found or { stack = "custom" }
  p.services = services
  p.dir = p.dir or ""
  if s.command then
    p.command, p.explicit, p.dir = s.command, true, ""
    table.insert(why, 1, "orket.lua's sandbox.command (it always wins)")
    p.install = nil
  end
  if not p.command then
    why[#why + 1] = "nothing to run found: add sandbox = { command = {...} } to orket.lua"
    return nil, "sandbox: nothing to run in main's tree (no compose file, package.json script, Python entry point, "
      .. "go.mod or Makefile run target, at the root or in a folder): add sandbox = { command = {...} } to orket.lua",
      "ENOENT", why
  end
  if p.install then
    -- (no setting gives a sandbox network: sandbox.network = true is refused, so it is not named as a way out)
    why[#why + 1] = string.format("its dependencies install with `%s`: a sandbox has no outbound network and "
      .. "Orket runs no install, so carry them in the tree", table.concat(p.install, " "))
  end
  p.port_env, p.health, p.env, p.reasons = s.port_env, s.health, s.env, why
  if services then
    local name, owner = handed(services, s.env or {})
    if name then
      return nil, string.format("orket.lua: sandbox.env.%s: is set by Orket in every service of this sandbox (the "
        .. "address of service %s), so the value there would be ignored; remove it, or give the services that "
        .. "need another value their own in the compose file's environment", name, owner), "EINVAL", why
    end
    -- a service's own value for its port variable (a file shared with docker, PORT: 3000
    -- beside ports: ["3000:3000"]) would win over the port Orket gives it, and the service
    -- would listen where neither its health check nor the others' NAME_URL look: Orket's
    -- port wins, said in the plan. ${PORT} and $PORT are Orket's port already.
    local pe = s.port_env
    for _, sv in ipairs(services) do
      local v = sv.env and sv.env[pe]
      if v ~= nil and services.from_compose and v ~= "${" .. pe .. "}" and v ~= "$" .. pe then
        sv.env[pe] = nil
        why[#why + 1] = string.format("%s:%s: services.%s.environment.%s (%s) is replaced by the port Orket gives %s, "
          .. "which its health check and the others' %s_URL use", services.from_compose,
          tostring(sv.env_lines and sv.env_lines[pe] or sv.env_line or sv.line), sv.name, pe,
          inert.clip((v:gsub("%c", " ")), 40), sv.name, composefile.var(sv.name))
      end
    end
    if services.from_compose then env_notes(services, s, services.from_compose, why) end
  end
  local absent = M.absent_program(p, s.env)
  if absent then why[#why + 1] = absent end
  p.dockerfile = exists(ws, "Dockerfile")
  why[#why + 1] = string.format("the port is given in $%s%s; health: %s", s.port_env,
    port_on_line(p, s.port_env) and " and on the command line" or "",
    s.health.kind == "http" and ("HTTP GET " .. s.health.path) or "a TCP connect")
  return p
end

-- the PATH a sandbox's app is given when sandbox.env sets none (the process runner's)
M.PATH = "/usr/local/bin:/usr/bin:/bin"

--- absent_program(plan, env) -> a reason line | nil: the one program of a plan without
--- services, named bare (go, npm), found in none of the folders of the PATH the sandbox
--- gives (this host's own: a sandbox sees its /usr). Its start would fail as a limit of
--- this host (orket.sandboxes.service), said here before anything runs.
function M.absent_program(p, env)
  local prog = not p.services and p.command and p.command[1]
  if type(prog) ~= "string" or prog == "" or prog:find("/", 1, true) then return nil end
  local path = env and env.PATH or M.PATH
  for d in tostring(path):gmatch("[^:]+") do
    if uv.fs_access(d .. "/" .. prog, "X") then return nil end
  end
  return string.format("%s is in none of PATH=%s on this host (a sandbox sees only the host's programs under /usr): "
    .. "its start fails until it is installed there", inert.clip(prog, 80), inert.clip(path, 200))
end

--- argv(plan, host, port [, env]) -> the command with {host} and {port} filled in; with env
--- (the service's environment), a compose file's list command (command_raw, its words as
--- written) has its ${NAME} and $NAME filled in from env and its $$ read as one $, as the
--- string form's shell reads them (orket.sandboxes.composefile.interpolate)
function M.argv(p, host, port, env)
  local function braces(a)
    return (a:gsub("{(%a+)}", function(k)
      -- (a job has no port: its {port} stays as written)
      if k == "host" then return host elseif k == "port" then return port and tostring(port) or nil end
    end))
  end
  local raw = env and p.command_raw
  local out = {}
  for i, a in ipairs(raw or p.command) do out[i] = raw and composefile.interpolate(braces(a), env) or braces(a) end
  return out
end

return M
