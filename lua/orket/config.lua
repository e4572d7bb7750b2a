-- orket.config: loads a project's orket.lua (operator-written, so it runs in a sandbox and
-- only plain data comes out), fills in defaults, validates, and applies environment
-- overrides. This module owns the `models` section; other sections pass through untouched
-- so later parts (team, budgets) can add their own validation here.
local sandbox = require "orket.sandbox"
local scriptfile = require "orket.scriptfile"

local M = {}

M.KINDS = { openai = true, ollama = true, scripted = true, replay = true }

-- Top-level settings of orket.lua that some part of Orket reads. Anything else is refused:
-- a typo such as `teams` or `concurency` would otherwise run with the defaults unnoticed.
M.SETTINGS = { name = true, vision = true, models = true, team = true, concurrency = true, budgets = true,
  limits = true, review = true, context = true }

--- unknown_settings(data) -> sorted list of top-level keys that are not in M.SETTINGS
function M.unknown_settings(data)
  local out = {}
  for k in pairs(data) do
    if not M.SETTINGS[k] then out[#out + 1] = tostring(k) end
  end
  table.sort(out)
  return out
end

local function settings_list()
  local names = {}
  for k in pairs(M.SETTINGS) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end
M.settings_list = settings_list

-- Built-in providers: Ollama on this machine is the default; OpenAI is one setting away.
-- A project's providers of the same name are merged over these.
local function builtin()
  return {
    default = "ollama:qwen2.5-coder:7b",
    providers = {
      ollama = { kind = "ollama", base_url = "http://127.0.0.1:11434", base_url_env = "OLLAMA_HOST" },
      openai = { kind = "openai", base_url = "https://api.openai.com/v1", base_url_env = "OPENAI_BASE_URL",
        api_key_env = "OPENAI_API_KEY" },
    },
  }
end

--- defaults() -> a config with only the built-in models section
function M.defaults()
  return { models = builtin() }
end

local function fail(path, msg) return nil, "orket.lua: " .. path .. " " .. msg, "EINVAL" end

local function is_nonneg(v) return type(v) == "number" and v >= 0 and v == v and v < 1e12 end

local FIELDS = {
  kind = "string", base_url = "string", base_url_env = "string", api_key_env = "string",
  max_concurrency = "count", timeouts = "table", retry = "table", max_response_bytes = "count",
  headers = "table", stream = "boolean", file = "string", rules = "table", models = "table",
  default = "table", sequence = "table",
}
local TIMEOUTS = { connect_ms = true, first_byte_ms = true, idle_ms = true, total_ms = true }
local RETRY = { max_attempts = true, base_ms = true, max_ms = true }

local function check_provider(name, p)
  local at = "models.providers." .. name
  if type(p) ~= "table" then return fail(at, "must be a table") end
  if not M.KINDS[p.kind] then
    return fail(at .. ".kind", "must be one of openai, ollama, scripted, replay (got " .. tostring(p.kind) .. ")")
  end
  for k, v in pairs(p) do
    local want = FIELDS[k]
    if want == nil then return fail(at .. "." .. tostring(k), "is not a provider setting") end
    if want == "count" then
      if math.type(v) ~= "integer" or v < 1 then return fail(at .. "." .. k, "must be a positive integer") end
    elseif type(v) ~= want then
      return fail(at .. "." .. k, "must be a " .. want .. " (got " .. type(v) .. ")")
    end
  end
  if p.kind == "openai" or p.kind == "ollama" then
    if type(p.base_url) ~= "string" or not p.base_url:match("^https?://[^/]") then
      return fail(at .. ".base_url", "must be an http:// or https:// URL (got " .. tostring(p.base_url) .. ")")
    end
  end
  for k, v in pairs(p.timeouts or {}) do
    if not TIMEOUTS[k] then return fail(at .. ".timeouts." .. tostring(k), "is not a timeout (connect_ms, first_byte_ms, idle_ms, total_ms)") end
    if not is_nonneg(v) then return fail(at .. ".timeouts." .. k, "must be a number of milliseconds >= 0") end
  end
  for k, v in pairs(p.retry or {}) do
    if not RETRY[k] then return fail(at .. ".retry." .. tostring(k), "is not a retry setting (max_attempts, base_ms, max_ms)") end
    if not is_nonneg(v) then return fail(at .. ".retry." .. k, "must be a number >= 0") end
  end
  for k, v in pairs(p.headers or {}) do
    if type(k) ~= "string" or type(v) ~= "string" or k:find("[\r\n:]") or v:find("[\r\n]") then
      return fail(at .. ".headers", "must map header names to single-line strings")
    end
    if k:lower() == "authorization" or k:lower() == "api-key" then
      return fail(at .. ".headers." .. k, "must not be in orket.lua: name the variable holding the key with api_key_env")
    end
  end
  if p.kind == "scripted" and p.file == nil and p.rules == nil then
    return fail(at, "needs file= (a script of rules) or rules=")
  end
  return true
end

--- split_model(spec) -> provider, model | nil, message
--- "ollama:qwen2.5-coder:7b" -> "ollama", "qwen2.5-coder:7b" (the first colon separates).
function M.split_model(spec)
  if type(spec) ~= "string" then return nil, "a model is named \"provider:model\" (got " .. type(spec) .. ")" end
  local p, m = spec:match("^([%w_%-%.]+):(.+)$")
  if not p then return nil, "a model is named \"provider:model\", e.g. \"ollama:qwen2.5-coder:7b\" (got \"" .. spec .. "\")" end
  return p, m
end

--- validate_models(models) -> true | nil, message, "EINVAL"
function M.validate_models(models)
  if type(models) ~= "table" then return fail("models", "must be a table") end
  if type(models.providers) ~= "table" then return fail("models.providers", "must be a table") end
  for name, p in pairs(models.providers) do
    if type(name) ~= "string" or not name:match("^[%w_%-%.]+$") then
      return fail("models.providers", "names must be words (got " .. tostring(name) .. ")")
    end
    local ok, err, code = check_provider(name, p)
    if not ok then return nil, err, code end
  end
  if models.default ~= nil then
    local prov, err = M.split_model(models.default)
    if not prov then return fail("models.default", err) end
    if not models.providers[prov] then
      return fail("models.default", "names provider '" .. prov .. "', which is not configured")
    end
  end
  return true
end

-- A base URL from the environment: http(s) only, the scheme in any case. OLLAMA_HOST may
-- also be "host" or "host:port" (Ollama's own convention), the port 11434 by default.
local function env_url(kind, v)
  local scheme = v:match("^(%a[%w+.-]*)://")
  local forms = kind == "ollama" and "host, host:port or an http:// or https:// URL" or "an http:// or https:// URL"
  if scheme then
    local lower = scheme:lower()
    if lower ~= "http" and lower ~= "https" then return nil, "must be " .. forms .. " (got " .. v .. ")" end
    v = lower .. v:sub(#scheme + 1)
  elseif kind == "ollama" then
    -- a bare IPv6 address ("::1", "fe80::2") is a host: bracket it as a URL needs
    if not v:find("[%[/]") and select(2, v:gsub(":", "")) >= 2 then v = "[" .. v .. "]" end
    v = "http://" .. v
  else
    return nil, "must be " .. forms .. " (got " .. v .. ")"
  end
  if not v:match("^https?://[^/]") then return nil, "must be " .. forms .. " (got " .. v .. ")" end
  if kind == "ollama" then
    local host = v:match("^https?://([^/]*)")
    local has_port = host:match("^%[.*%]:%d+$") or (not host:match("^%[") and host:match(":%d+$"))
    if not has_port then v = v:gsub("^(https?://[^/]+)", "%1:11434") end
  end
  return v
end

--- apply_env(cfg, getenv) -> cfg | nil, message, "EINVAL": each provider's base_url_env
--- overrides its base_url; ORKET_MODEL overrides models.default. A bad value is reported
--- with the variable's name (not as orket.lua's). getenv defaults to os.getenv.
function M.apply_env(cfg, getenv)
  getenv = getenv or os.getenv
  local models = cfg.models
  for _, p in pairs(models.providers) do
    local var = p.base_url_env
    local v = var and getenv(var)
    if v and v ~= "" then
      local url, err = env_url(p.kind, v)
      if not url then return nil, var .. ": " .. err, "EINVAL" end
      p.base_url = url
    end
  end
  local m = getenv("ORKET_MODEL")
  if m and m ~= "" then
    local prov, err = M.split_model(m)
    if not prov then return nil, "ORKET_MODEL: " .. err, "EINVAL" end
    if not models.providers[prov] then
      local names = {}
      for name in pairs(models.providers) do names[#names + 1] = tostring(name) end
      table.sort(names)
      return nil, string.format("ORKET_MODEL: names provider '%s', which is not configured (configured: %s)",
        prov, table.concat(names, ", ")), "EINVAL"
    end
    models.default = m
  end
  return cfg
end

local function merge(project)
  local models = builtin()
  local pm = project.models
  if pm == nil then return models end
  if type(pm) ~= "table" then return models, "models must be a table" end
  if pm.default ~= nil then models.default = pm.default end
  for k, v in pairs(pm) do
    if k ~= "providers" and k ~= "default" then models[k] = v end
  end
  if type(pm.providers) == "table" then
    for name, p in pairs(pm.providers) do
      local base = models.providers[name]
      if base and type(p) == "table" and (p.kind == nil or p.kind == base.kind) then
        for k, v in pairs(p) do base[k] = v end
      else
        models.providers[name] = p
      end
    end
  elseif pm.providers ~= nil then
    return models, "models.providers must be a table"
  end
  return models
end

--- finish(data, dir, getenv) -> cfg | nil, message, code: merges defaults into plain config
--- data, validates, resolves relative files against dir, applies the environment.
function M.finish(data, dir, getenv)
  local cfg = {}
  for k, v in pairs(data) do cfg[k] = v end
  local models, merr = merge(data)
  if merr then return nil, "orket.lua: " .. merr, "EINVAL" end
  cfg.models = models
  local eok, eerr, ecode = M.apply_env(cfg, getenv)
  if not eok then return nil, eerr, ecode end
  local ok, err, code = M.validate_models(models)
  if not ok then return nil, err, code end
  for _, p in pairs(models.providers) do
    if p.file and dir and not p.file:match("^/") then p.file = dir .. "/" .. p.file end
  end
  cfg.dir = dir
  return cfg
end

--- read(dir) -> plain data of orket.lua before defaults and checks | nil, msg, code
--- load(dir[, getenv]) -> cfg | nil, "orket.lua:LINE: ...", code
--- orket.lua may set globals (models = {...}) or return a table. Missing file: ENOENT.
function M.load(dir, getenv)
  local copy, err, code = M.read(dir)
  if not copy then return nil, err, code end
  local unknown = M.unknown_settings(copy)
  if #unknown > 0 then
    return nil, "orket.lua: " .. unknown[1] .. ": unknown setting (settings: " .. settings_list() .. ")", "EINVAL"
  end
  return M.finish(copy, dir, getenv)
end

function M.read(dir)
  dir = dir or "."
  local path = dir .. "/orket.lua"
  local src, rerr, rcode = scriptfile.read(path)
  if not src then
    if rcode == "ENOENT" then
      return nil, string.format("no project in %s (orket.lua not found); 'orket init' creates one", dir), rcode
    end
    return nil, "orket.lua: " .. rerr:sub(#path + 3), rcode
  end
  local box = sandbox.new { name = "orket.lua" }
  local before = {}
  for k in next, box.env do before[k] = true end
  local fn, err, code = box:load(src, "orket.lua")
  if not fn then return nil, err, code end
  local ok, data, pcode = box:pcall(fn)
  if not ok then return nil, scriptfile.message(data, "orket.lua"), pcode end
  if data == nil then
    data = {}
    for k, v in next, box.env do
      if not before[k] then data[k] = v end
    end
  elseif type(data) ~= "table" then
    return nil, "orket.lua: returns a " .. type(data) .. "; return a table or set globals", "EINVAL"
  end
  local copy, cerr = sandbox.copy(data)
  if not copy then return nil, "orket.lua: " .. cerr, "EINVAL" end
  return copy
end

--- load_or_defaults(dir[, getenv]) -> cfg | nil, message, code: like load, but a directory
--- without orket.lua gets the built-in models (for `orket models`, the REPL).
function M.load_or_defaults(dir, getenv)
  local cfg, err, code = M.load(dir, getenv)
  if cfg or code ~= "ENOENT" then return cfg, err, code end
  return M.finish({}, dir, getenv)
end

return M
