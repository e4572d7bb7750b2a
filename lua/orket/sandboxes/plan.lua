-- orket.sandboxes.plan: what a sandbox runs, found from main's tree at a commit or taken
-- from orket.lua's `sandbox.command`, with the reasons it was chosen: the answer of
-- `orket sandbox plan`, and what the sandbox and the compose file are made from. The tree
-- is agents' work, so it is read as hostile data through the confined workspace
-- (orket.workspace: no symlink out, no FIFO waited on), each file capped.
-- Contract: docs/sandbox.md.
local cjson = require "cjson.safe"

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

-- The first of names that is a file of the tree.
local function first_file(ws, names)
  for _, n in ipairs(names) do
    if exists(ws, n) then return n end
  end
end

local function node(ws, why)
  local text = read(ws, "package.json")
  if not text then return nil end
  local doc = cjson.decode(text)
  if type(doc) ~= "table" then
    why[#why + 1] = "package.json is not a JSON object: skipped"
    return nil
  end
  local scripts = type(doc.scripts) == "table" and doc.scripts or {}
  local p = { stack = "node", runtime = "node" }
  for _, s in ipairs { "start", "serve", "dev" } do
    if type(scripts[s]) == "string" then
      p.command = s == "start" and { "npm", "start" } or { "npm", "run", s }
      why[#why + 1] = string.format("package.json has a %q script (%s)", s, scripts[s]:sub(1, 120))
      break
    end
  end
  if not p.command then
    local main = type(doc.main) == "string" and doc.main:match("^[%w._/-]+%.[mc]?js$") and not doc.main:find("%.%.")
      and exists(ws, doc.main) and doc.main or first_file(ws, { "server.js", "app.js", "index.js" })
    if not main then
      why[#why + 1] = "package.json has no start, serve or dev script and no main file: skipped"
      return nil
    end
    p.command = { "node", main }
    why[#why + 1] = "package.json has no start script; " .. main .. " is its entry point"
  end
  local deps = type(doc.dependencies) == "table" and next(doc.dependencies) ~= nil
  if deps and not ws:stat("node_modules") then p.install = { "npm", "install", "--omit=dev" } end
  return p
end

-- A Python application: requirements.txt or pyproject.toml, or a plain entry file. The
-- framework named in the requirements chooses how it is served.
local PY_ENTRIES = { "app.py", "main.py", "server.py", "wsgi.py" }

local function python(ws, why)
  local reqs = (read(ws, "requirements.txt") or "") .. "\n" .. (read(ws, "pyproject.toml") or "")
  local has_reqs = exists(ws, "requirements.txt") or exists(ws, "pyproject.toml")
  local entry = first_file(ws, PY_ENTRIES)
  local lower = reqs:lower()
  local p = { stack = "python", runtime = "python3" }
  if exists(ws, "manage.py") and lower:find("django", 1, true) then
    p.command = { "python3", "manage.py", "runserver", "--noreload", "{host}:{port}" }
    why[#why + 1] = "manage.py and django in the requirements: Django's server"
  elseif entry and lower:find("fastapi", 1, true) or entry and lower:find("uvicorn", 1, true) then
    p.command = { "python3", "-m", "uvicorn", entry:gsub("%.py$", "") .. ":app", "--host", "{host}", "--port", "{port}" }
    why[#why + 1] = entry .. " with fastapi/uvicorn in the requirements: served by uvicorn"
  elseif entry and lower:find("flask", 1, true) then
    p.command = { "python3", "-m", "flask", "--app", entry, "run", "--host", "{host}", "--port", "{port}" }
    why[#why + 1] = entry .. " with flask in the requirements: Flask's server"
  elseif entry then
    p.command = { "python3", entry }
    why[#why + 1] = entry .. " is a Python entry point" .. (has_reqs and "" or " (no requirements: the standard library)")
  else
    if has_reqs then why[#why + 1] = "Python requirements but none of " .. table.concat(PY_ENTRIES, ", ") .. ": skipped" end
    return nil
  end
  if exists(ws, "requirements.txt") then
    p.install = { "python3", "-m", "pip", "install", "-r", "requirements.txt" }
  elseif exists(ws, "pyproject.toml") then
    p.install = { "python3", "-m", "pip", "install", "." }
  end
  return p
end

local function go(ws, why)
  if not exists(ws, "go.mod") then return nil end
  why[#why + 1] = "go.mod: the module's main package"
  return { stack = "go", runtime = "go", command = { "go", "run", "." } }
end

-- A Makefile target that serves: the first of run, serve, start defined at a line's start.
local function make(ws, why)
  local name = first_file(ws, { "Makefile", "makefile", "GNUmakefile" })
  if not name then return nil end
  local text = read(ws, name) or ""
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

--- detect(ws, sandbox_settings) -> plan | nil, msg, "ENOENT"
--- plan = {stack=, command={argv}, explicit=bool, port_env=, health={...}, env={...},
--- install={argv}|nil, dockerfile=bool, reasons={...}}. An explicit sandbox.command in
--- orket.lua always wins; the stack is still detected for the compose file's base image.
function M.detect(ws, s)
  local why = {}
  local found
  for _, d in ipairs(M.DETECTORS) do
    found = d[2](ws, why)
    if found then break end
  end
  local p = found or { stack = "custom" }
  if s.command then
    p.command, p.explicit = s.command, true
    table.insert(why, 1, "orket.lua's sandbox.command (it always wins)")
    p.install = nil
  end
  if not p.command then
    why[#why + 1] = "nothing to run found: add sandbox = { command = {...} } to orket.lua"
    return nil, "sandbox: nothing to run in main's tree (no package.json script, Python entry point, go.mod or "
      .. "Makefile run target): add sandbox = { command = {...} } to orket.lua", "ENOENT", why
  end
  if p.install then
    why[#why + 1] = string.format("its dependencies install with `%s`%s", table.concat(p.install, " "),
      s.network and "" or ": the sandbox has no outbound network (sandbox.network = false), so install them in the tree")
  end
  p.port_env, p.health, p.env, p.reasons = s.port_env, s.health, s.env, why
  p.dockerfile = exists(ws, "Dockerfile")
  why[#why + 1] = string.format("the port is given in $%s%s; health: %s", s.port_env,
    table.concat(p.command, " "):find("{port}", 1, true) and " and on the command line" or "",
    s.health.kind == "http" and ("HTTP GET " .. s.health.path) or "a TCP connect")
  return p
end

--- argv(plan, host, port) -> the command with {host} and {port} filled in
function M.argv(p, host, port)
  local out = {}
  for i, a in ipairs(p.command) do
    out[i] = (a:gsub("{(%a+)}", function(k)
      if k == "host" then return host elseif k == "port" then return tostring(port) end
    end))
  end
  return out
end

return M
