-- orket.settings.mcp: orket.lua's mcp section, the MCP servers a project's agents may use:
--   mcp = { servers = { NAME = { command = {argv...}, env = {NAME = "value"}, network = false,
--     timeout_ms = 30000 } or { url = "https://...", headers_env = {Header = "ENV_VAR"},
--     headers = {Header = secret "NAME"} } } }
-- An env value may be secret "NAME" too (orket.settings.secret): read when the server starts.
-- Checked as every other section (orket.settings): "orket.lua: mcp.servers.x.url: ...".
local secret = require "orket.settings.secret"
local proc = require "orket.c.proc"
local pretty = require "orket.pretty"

-- The longest path the runner binds (proc.path_ok: under PATH_MAX/2, room for its prefix)
local MAX_PATH = 2047

local M = {}

M.DEFAULT_TIMEOUT_MS = 30000
M.MAX_SERVERS = 32

local function fail(path, fmt, ...)
  error({ settings_error = "orket.lua: " .. path .. ": " .. string.format(fmt, ...) }, 0)
end

local SERVER_KEYS = "command, env, network, read_only, timeout_ms (stdio) or url, headers, headers_env, timeout_ms (HTTP)"

-- A table's keys in a stable order (a problem list must not follow hash order)
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    if type(a) ~= type(b) then return type(a) < type(b) end
    if type(a) == "string" or type(a) == "number" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- The message of a check's failure (fail's), raised again when it is another error
local function problem(err)
  if type(err) == "table" and err.settings_error then return err.settings_error end
  error(err, 0)
end

-- The first n bytes of s, cut back to the start of a UTF-8 character the cut would split
-- (half of one would be shown as an escaped byte)
local function head(s, n)
  local i = math.min(n, #s)
  while i > 0 and i > n - 3 and (s:byte(i + 1) or 0) & 0xC0 == 0x80 do i = i - 1 end
  return s:sub(1, i)
end

local function str(v, path)
  if type(v) ~= "string" or v == "" or v:find("[%z\r\n]") or not utf8.len(v) then
    fail(path, "must be a non-empty one-line string")
  end
  return v
end

local function server(name, src)
  local p = "mcp.servers." .. tostring(name)
  if type(name) ~= "string" or not name:match("^[a-z][a-z0-9_]*$") or #name > 32 or name:find("__", 1, true) then
    fail(p, "a server's name must be snake_case without \"__\", at most 32 characters (its tools are NAME__tool)")
  end
  if type(src) ~= "table" then fail(p, "must be a table (fields: %s)", SERVER_KEYS) end
  local out = { name = name, timeout_ms = M.DEFAULT_TIMEOUT_MS }
  local problems = {}
  for _, k in ipairs(sorted_keys(src)) do
    local v = src[k]
    local kp = p .. "." .. tostring(k)
    local ok, err = pcall(function()
      if k == "command" then
        if type(v) ~= "table" or #v == 0 then
          -- the example's script absolute: the server runs in a directory of its own
          fail(kp, "must be an argv array, e.g. {\"node\", \"/opt/mcp/server.js\"} (the server runs in a directory "
            .. "of its own: a script by its absolute path)")
        end
        out.command = {}
        for i, a in ipairs(v) do out.command[i] = str(a, kp .. "[" .. i .. "]") end
        for kk in pairs(v) do
          if math.type(kk) ~= "integer" or kk < 1 or kk > #v then fail(kp, "must be an array of strings") end
        end
      elseif k == "env" then
        if type(v) ~= "table" then fail(kp, "must map variable names to strings") end
        out.env = {}
        for _, ek in ipairs(sorted_keys(v)) do
          local ev = v[ek]
          if type(ek) ~= "string" or not ek:match("^[%a_][%w_]*$") or ek:match("^ORKET_") then
            fail(kp, "%s is not a variable name a server may be given", tostring(ek))
          end
          if not secret.name_of(ev) and (type(ev) ~= "string" or ev:find("%z")) then
            fail(kp .. "." .. ek, "must be a string or secret \"NAME\"")
          end
          out.env[ek] = ev
        end
      elseif k == "network" then
        if type(v) ~= "boolean" then fail(kp, "must be true or false (false: the server has no network)") end
        out.network = v
      elseif k == "read_only" then
        -- a stdio server runs in agent code's minimal view of the machine: what it needs to
        -- read beyond the system's directories (its installation) is listed here
        if type(v) ~= "table" then fail(kp, "must be a list of absolute paths, e.g. {\"/opt/mcp-server\"}") end
        out.read_only = {}
        for i, path in ipairs(v) do
          -- the runner's own rule (as verify.read_only's): absolute, clean, never "/"
          -- the path is shown as a printed value is, escaped on one line (a newline in it
          -- would end the message there; a control or bidi character would act on the terminal)
          if type(path) == "string" and #path > MAX_PATH then
            fail(kp .. "[" .. i .. "]", "must be at most %d bytes (got %d bytes: %s...)", MAX_PATH, #path,
              pretty.render(head(path, 64)))
          end
          if type(path) ~= "string" or not proc.path_ok(path) then
            fail(kp .. "[" .. i .. "]", "must be an absolute path without '.', '..', '//' or a trailing '/', and not \"/\" (got %s)",
              type(path) == "string" and pretty.render(path) or ("a " .. type(path)))
          end
          out.read_only[i] = path
        end
        for kk in pairs(v) do
          if math.type(kk) ~= "integer" or kk < 1 or kk > #v then fail(kp, "must be a list of absolute paths") end
        end
      elseif k == "url" then
        str(v, kp)
        if not v:match("^https?://[^/%s]+") then fail(kp, "must be an http:// or https:// URL (got %q)", v) end
        out.url = v
      elseif k == "headers_env" then
        if type(v) ~= "table" then fail(kp, "must map header names to environment variable names") end
        out.headers_env = {}
        for _, hk in ipairs(sorted_keys(v)) do
          local hv = v[hk]
          if type(hk) ~= "string" or not hk:match("^[%w-]+$") then fail(kp, "%s is not a header name", tostring(hk)) end
          if type(hv) ~= "string" or not hv:match("^[%a_][%w_]*$") then
            fail(kp .. "." .. hk, "must name an environment variable (the secret is never in orket.lua)")
          end
          out.headers_env[hk] = hv
        end
      elseif k == "headers" then
        if type(v) ~= "table" then fail(kp, "must map header names to secret \"NAME\"") end
        out.headers = {}
        for _, hk in ipairs(sorted_keys(v)) do
          local hv = v[hk]
          if type(hk) ~= "string" or not hk:match("^[%w-]+$") then fail(kp, "%s is not a header name", tostring(hk)) end
          out.headers[hk] = secret.check(hv, kp .. "." .. hk)
        end
      elseif k == "timeout_ms" then
        if math.type(v) ~= "integer" or v < 100 or v > 3600000 then fail(kp, "must be a whole number from 100 to 3600000") end
        out.timeout_ms = v
      else
        fail(kp, "unknown setting (known: %s)", SERVER_KEYS)
      end
    end)
    if not ok then problems[#problems + 1] = problem(err) end
  end
  -- every field's problem; the fields' relations once each field is right
  if #problems > 0 then error({ settings_error = problems[1], settings_errors = problems }, 0) end
  if out.command == nil and out.url == nil then fail(p, "needs command (a stdio server) or url (HTTP): it has neither") end
  if out.command ~= nil and out.url ~= nil then fail(p, "takes command (a stdio server) or url (HTTP), not both") end
  if out.url and (out.env or out.network ~= nil or out.read_only) then
    fail(p, "env, network and read_only go with command, not url")
  end
  if out.command and out.headers_env then fail(p .. ".headers_env", "goes with url, not command") end
  if out.command and out.headers then fail(p .. ".headers", "goes with url, not command") end
  out.transport = out.command and "stdio" or "http"
  return out
end

--- section(src) -> {servers = {name -> server}, names = sorted} | nil (no section). Raises
--- {settings_error = msg} as orket.settings' sections do, with settings_errors = every
--- problem of the section (each server's, by server name; each field's, by field name).
function M.section(src)
  if src == nil then return nil end
  if type(src) ~= "table" then fail("mcp", "must be a table: mcp = { servers = { NAME = {...} } }") end
  for k in pairs(src) do
    if k ~= "servers" then fail("mcp." .. tostring(k), "unknown setting (known: servers)") end
  end
  local out = { servers = {}, names = {} }
  if src.servers == nil then return out end
  if type(src.servers) ~= "table" then fail("mcp.servers", "must map server names to tables") end
  -- every server's problems, by server name (orket validate reports them all, in this order)
  local problems = {}
  for _, name in ipairs(sorted_keys(src.servers)) do
    local ok, s = pcall(server, name, src.servers[name])
    if ok then
      out.servers[name] = s
      out.names[#out.names + 1] = name
    elseif type(s) == "table" and s.settings_errors then
      for _, m in ipairs(s.settings_errors) do problems[#problems + 1] = m end
    else
      problems[#problems + 1] = problem(s)
    end
  end
  local n = 0
  for _ in pairs(src.servers) do n = n + 1 end
  if n > M.MAX_SERVERS then problems[#problems + 1] = "orket.lua: mcp.servers: at most " .. M.MAX_SERVERS .. " servers" end
  if #problems > 0 then error({ settings_error = problems[1], settings_errors = problems }, 0) end
  return out
end

return M
