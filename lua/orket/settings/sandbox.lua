-- orket.settings.sandbox: orket.lua's `sandbox` and `bug_fix` sections (docs/sandbox.md),
-- checked and filled with their defaults. Errors are raised as orket.settings expects
-- them ({settings_error = "orket.lua: field: message"}), so `orket validate` lists them with
-- every other setting's.
local inert = require "orket.inert"

local M = {}

-- variables a sandbox's start needs, or Orket sets itself: never the port's (port_env)
local RESERVED_ENV = { PATH = true, HOME = true, HOST = true, USER = true, SHELL = true, PWD = true, TMPDIR = true,
  LANG = true, TERM = true, IFS = true }

M.DEPLOY = { manual = true, merge = true, epic = true, rock = true }

M.DEFAULTS = {
  sandbox = { deploy = "manual", database = "bugfix", port_env = "PORT", log_max_bytes = 1 << 20, log_keep = 3, network = false,
    keep_ended = 20, stop_timeout_ms = 10000,
    health = { kind = "tcp", path = nil, interval_ms = 2000, timeout_ms = 1000, failures = 3,
      start_timeout_ms = 30000 } },
  bug_fix = { days = 7, extend_above = 1.0, max_days = 28, check_interval_ms = 60000, recheck_interval_ms = 3600000 },
}

local SANDBOX_KEYS = "command, database, deploy, env, health, keep_ended, log_keep, log_max_bytes, network, port_env, "
  .. "stop_timeout_ms"
local HEALTH_KEYS = "failures, http, interval_ms, start_timeout_ms, tcp, timeout_ms"
local BUG_FIX_KEYS = "check_interval_ms, days, extend_above, max_days, recheck_interval_ms"

local function fail(path, fmt, ...)
  error({ settings_error = "orket.lua: " .. path .. ": " .. string.format(fmt, ...) }, 0)
end

local function int(v, path, lo, hi)
  if math.type(v) ~= "integer" or v < lo or (hi and v > hi) then
    fail(path, "must be an integer %s (got %s)", hi and ("from " .. lo .. " to " .. hi) or (">= " .. lo), tostring(v))
  end
  return v
end

-- a value from orket.lua as an error shows it: control characters escaped, at most 40
-- bytes of it (a 100 KB name is not echoed whole)
local function shown(v)
  return inert.clip(tostring(v), 40, function(t)
    return (t:gsub("%c", function(c) return string.format("\\%03d", c:byte()) end))
  end)
end

local function env_name(v, path)
  if type(v) ~= "string" or not v:match("^[%a_][%w_]*$") or #v > 100 then
    fail(path, "must name an environment variable (letters, digits, _), got %s", shown(v))
  end
  return v
end

-- An argv: an array of 1-64 strings without NUL, or one string split on blanks (no shell:
-- quotes and $ are not interpreted). "{port}" and "{host}" are filled in when it starts.
local function argv(v, path)
  if type(v) == "string" then
    local out = {}
    for w in v:gmatch("%S+") do out[#out + 1] = w end
    v = out
  end
  if type(v) ~= "table" or #v == 0 or #v > 64 then
    fail(path, "must be a command: an array of strings such as {\"python3\", \"app.py\"}")
  end
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v then fail(path, "must be an array (no named fields)") end
  end
  local out = {}
  for i, a in ipairs(v) do
    if type(a) ~= "string" or a:find("%z") or #a > 4096 then
      fail(path .. "[" .. i .. "]", "must be a string without NUL, at most 4096 bytes")
    end
    out[i] = a
  end
  return out
end

local function health(v, path)
  local D = M.DEFAULTS.sandbox.health
  local out = { kind = D.kind, interval_ms = D.interval_ms, timeout_ms = D.timeout_ms, failures = D.failures,
    start_timeout_ms = D.start_timeout_ms }
  if v == nil then return out end
  if type(v) ~= "table" then fail(path, "must be a table (fields: %s)", HEALTH_KEYS) end
  for k, x in pairs(v) do
    local p = path .. "." .. tostring(k)
    if k == "http" then
      if type(x) ~= "string" or not x:match("^/[%w%-._~/%%?=&+:@!$'()*,;]*$") or #x > 1024 then
        fail(p, "must be a path beginning with /, e.g. \"/health\" (got %s)", tostring(x))
      end
      out.kind, out.path = "http", x
    elseif k == "tcp" then
      if x ~= true then fail(p, "must be true (a TCP connect is the probe)") end
    elseif k == "interval_ms" then out[k] = int(x, p, 100, 3600000)
    elseif k == "timeout_ms" then out[k] = int(x, p, 50, 600000)
    elseif k == "failures" then out[k] = int(x, p, 1, 100)
    elseif k == "start_timeout_ms" then out[k] = int(x, p, 100, 3600000)
    else fail(p, "unknown setting (known: %s)", HEALTH_KEYS) end
  end
  if v.http ~= nil and v.tcp ~= nil then fail(path, "takes http = PATH or tcp = true, not both") end
  return out
end

--- sandbox(data) -> the resolved sandbox section (defaults when orket.lua has none)
function M.sandbox(d)
  local src, D = d.sandbox, M.DEFAULTS.sandbox
  local out = { deploy = D.deploy, port_env = D.port_env, log_max_bytes = D.log_max_bytes, log_keep = D.log_keep,
    keep_ended = D.keep_ended, network = D.network, env = {}, health = health(nil, "sandbox.health"), database = D.database,
    stop_timeout_ms = D.stop_timeout_ms }
  if src == nil then return out end
  if type(src) ~= "table" then fail("sandbox", "must be a table (fields: %s)", SANDBOX_KEYS) end
  for k, v in pairs(src) do
    local p = "sandbox." .. tostring(k)
    if k == "command" then out.command = argv(v, p)
    elseif k == "deploy" then
      if not M.DEPLOY[v] then fail(p, "must be \"manual\", \"merge\", \"epic\" or \"rock\" (got %s)", tostring(v)) end
      out.deploy = v
    elseif k == "port_env" then
      out.port_env = env_name(v, p)
      -- the port replaces the variable's value: PATH so named left nothing to start (bash
      -- not found), and HOST is Orket's own (where the app listens)
      if RESERVED_ENV[v] or v:find("^LD_") or v:find("^ORKET_") then
        fail(p, "%s is a variable the app's start needs or Orket sets, which the port would replace; name another "
          .. "(PORT, APP_PORT)", v)
      end
    elseif k == "database" then
      -- a sandbox's databases: made fresh at each deploy, kept across the redeploys of an
      -- open bug-fix phase ("bugfix") or never kept ("fresh")
      if v ~= "bugfix" and v ~= "fresh" then fail(p, "must be \"bugfix\" or \"fresh\" (got %s)", tostring(v)) end
      out.database = v
    elseif k == "env" then
      if type(v) ~= "table" then fail(p, "must map variable names to strings") end
      for name, val in pairs(v) do
        -- the entry as it is written: env.NAME, env["A B"], env[1]
        local at = type(name) == "string" and (name:match("^[%a_][%w_]*$") and ("." .. name)
          or ('["' .. shown(name) .. '"]')) or ("[" .. shown(name) .. "]")
        env_name(name, p .. at)
        if type(val) ~= "string" or val:find("%z") or #val > 4096 then
          fail(p .. "." .. name, "must be a string without NUL, at most 4096 bytes")
        end
        out.env[name] = val
      end
    elseif k == "health" then out.health = health(v, p)
    elseif k == "log_max_bytes" then out.log_max_bytes = int(v, p, 4096, 1 << 30)
    elseif k == "log_keep" then out.log_keep = int(v, p, 1, 100)
    elseif k == "keep_ended" then
      -- retention: how many ended sandboxes' folders (their logs) stay, newest first; 0
      -- keeps none (orket.sandboxes.service.prune)
      out.keep_ended = int(v, p, 0, 10000)
    elseif k == "stop_timeout_ms" then
      -- how long a stop gives the services to end before what is left is killed: an app
      -- whose shutdown (a queue drained, a job finished) needs more than docker stop's 10 s
      out.stop_timeout_ms = int(v, p, 1000, 300000)
    elseif k == "network" then
      if type(v) ~= "boolean" then fail(p, "must be true or false (outbound network for the service)") end
      -- said here, where orket validate and every command reading orket.lua meet it, not
      -- at the sandbox's start alone
      if v then fail(p, "= true is not built yet: a sandbox has no outbound network; remove it (or set false)") end
      out.network = v
    else fail(p, "unknown setting (known: %s)", SANDBOX_KEYS) end
  end
  -- Orket sets these when the sandbox starts, over anything given here: a value in env
  -- would be dropped without a word, and the app would not listen where it was told
  for _, name in ipairs { out.port_env, "HOST" } do
    if out.env[name] ~= nil then
      fail("sandbox.env." .. name, "is set by Orket when the sandbox starts (%s), so a value here would be "
        .. "ignored; remove it%s", name == "HOST" and "where the app listens: 127.0.0.1" or "the port it chose",
        name == "HOST" and "" or ", or name another variable in sandbox.port_env")
    end
  end
  return out
end

--- bug_fix(data) -> the resolved bug_fix section
function M.bug_fix(d)
  local src, D = d.bug_fix, M.DEFAULTS.bug_fix
  local out = { days = D.days, extend_above = D.extend_above, max_days = D.max_days,
    check_interval_ms = D.check_interval_ms, recheck_interval_ms = D.recheck_interval_ms }
  if src == nil then return out end
  if type(src) ~= "table" then fail("bug_fix", "must be a table (fields: %s)", BUG_FIX_KEYS) end
  for k, v in pairs(src) do
    local p = "bug_fix." .. tostring(k)
    if k == "days" then out.days = int(v, p, 1, 365)
    elseif k == "max_days" then out.max_days = int(v, p, 1, 365)
    elseif k == "check_interval_ms" then out.check_interval_ms = int(v, p, 1000, 86400000)
    elseif k == "recheck_interval_ms" then
      -- 0: the acceptance checks run only after deploys; else at most once a tick
      out.recheck_interval_ms = v == 0 and 0 or int(v, p, 1000, 7 * 86400000)
    elseif k == "extend_above" then
      if type(v) ~= "number" or v ~= v or v < 0 or v > 1e6 then
        fail(p, "must be a number of bugs per day >= 0 (got %s)", tostring(v))
      end
      out.extend_above = v
    else fail(p, "unknown setting (known: %s)", BUG_FIX_KEYS) end
  end
  if out.max_days < out.days then fail("bug_fix.max_days", "must not be below bug_fix.days (%d)", out.days) end
  return out
end

return M
