-- orket.llm: the model client. llm.new(config) takes the `models` section of orket.lua
-- (after orket.config's environment overrides) and returns a client whose chat{...} picks
-- the provider from "provider:model", calls it (HTTP: openai or ollama wire formats through
-- orket.llm.transport; offline: scripted, replay) and returns one normalized result.
-- API keys are read from the environment here and kept out of every table a caller sees.
local config = require "orket.config"
local transport = require "orket.llm.transport"
local scripted = require "orket.llm.scripted"
local replay = require "orket.llm.replay"
local common = require "orket.llm.common"
local secret = require "orket.settings.secret"
local semaphore = require "orket.semaphore"
local fieldline = require "orket.fieldline"
local scriptfile = require "orket.scriptfile"
local inert = require "orket.inert"
local urlencode = require "orket.urlencode"
local crypto = require "orket.c.crypto"

local M = {}

local Client = {}
Client.__index = Client

local function merged(defaults, over)
  local t = {}
  for k, v in pairs(defaults) do t[k] = v end
  for k, v in pairs(over or {}) do t[k] = v end
  return t
end

-- p.key read -> true | nil, msg (orket.lua's error at the setting: orket.config.placed):
-- api_key_env's variable when set, else api_key's secret (orket.settings.secret). The key
-- lives in the provider's private table: not in conf, not in results or errors; each key
-- it has held stays among the values its errors are masked of (p.secrets).
local function read_key(p)
  local conf, at = p.conf, "models.providers." .. p.name .. ".api_key"
  local stamp = secret.stamp(conf.api_key)
  local key, kerr = secret.value(conf.api_key, conf.api_key_env, p.getenv)
  if kerr then
    local name = secret.name_of(conf.api_key)
    local msg = name and secret.unopened(at, name, kerr) or (at .. ": " .. kerr)
    -- with its line, when the client has its project (a loaded config: cfg.dir)
    return nil, p.dir and config.placed(p.dir, msg) or msg
  end
  if key ~= p.key then transport.rekeyed(p) end
  p.key, p.stamp = key, stamp
  for _, s in ipairs(p.secrets) do
    if s == key then return true end
  end
  p.secrets[#p.secrets + 1] = key
  return true
end

-- p.key as the secret store has it now -> true | nil, msg: read again when the store was
-- written since (`orket secrets set` during a run: docs/secrets.md), so a long run or a
-- server takes a replaced key at its next request, not the one it started with
local function fresh_key(p)
  if not (p.conf.api_key and secret.stamp(p.conf.api_key) ~= p.stamp) then return true end
  return read_key(p)
end

-- The token of the "Authorization: Basic" header libcurl sends for a URL's user info: the
-- percent-decoded "user:password" in base64 (nil for a URL without one)
local function basic_credential(url)
  local ui = type(url) == "string" and url:match("^%a[%w+.-]*://([^/?#@]*)@") or nil
  if not ui or ui == "" then return nil end
  local user, pw = ui:match("^([^:]*):(.*)$")
  user = urlencode.unescape(user or ui)
  pw = urlencode.unescape(pw or "")
  return crypto.base64_encode(user .. ":" .. pw)
end

--- open(config[, opts]) -> client | nil, message, "EINVAL". config: a loaded config (with
--- .models) or its models section. opts.replay = function(key) -> recorded | nil, msg (the
--- replay provider's source); opts.getenv replaces os.getenv (tests). A mistake in the
--- configuration or a scripted model's file is returned as "file:line: message".
function M.open(cfg, opts)
  if type(cfg) ~= "table" then error("bad argument #1 to 'open' (config table expected, got " .. type(cfg) .. ")", 2) end
  opts = opts or {}
  local models = cfg.models or cfg
  local ok, err = config.validate_models(models)
  if not ok then return nil, err, "EINVAL" end
  local getenv = opts.getenv or os.getenv
  local self = setmetatable({ default = models.default, providers = {}, names = {}, resolved = {}, nresolved = 0 }, Client)
  for name, conf in pairs(models.providers) do
    local p = { name = name, conf = conf, kind = conf.kind, getenv = getenv, dir = cfg.models and cfg.dir or nil }
    if conf.kind == "openai" or conf.kind == "ollama" then
      p.secrets = {}
      local kok, kerr = read_key(p)
      if not kok then return nil, kerr, "EINVAL" end
      -- a password in base_url (http://user:pw@host) is a secret as the key is, and so is
      -- the Basic credential libcurl makes of it (a server echoing headers sends it back)
      for _, s in ipairs(common.userinfo(conf.base_url)) do p.secrets[#p.secrets + 1] = s end
      local basic = basic_credential(conf.base_url)
      if basic then p.secrets[#p.secrets + 1] = basic end
      p.timeouts = merged(transport.DEFAULT_TIMEOUTS, conf.timeouts)
      p.retry = merged(transport.DEFAULT_RETRY, conf.retry)
      p.retry.max_attempts = math.max(1, math.floor(p.retry.max_attempts))
      p.max_bytes = conf.max_response_bytes or transport.DEFAULT_MAX_BYTES
      p.sem = semaphore.new(conf.max_concurrency or transport.DEFAULT_CONCURRENCY)
    elseif conf.kind == "scripted" then
      local s, serr = scripted.load(conf, name)
      if not s then return nil, serr, "EINVAL" end
      p.script = s
    elseif conf.kind == "replay" then
      p.replay = replay.new(opts.replay)
    end
    self.providers[name] = p
    self.names[#self.names + 1] = name
  end
  table.sort(self.names)
  return self
end

--- new(config[, opts]) -> client, as open, but raises on an invalid config (trusted callers
--- that built the config themselves).
function M.new(cfg, opts)
  if type(cfg) ~= "table" then error("bad argument #1 to 'new' (config table expected, got " .. type(cfg) .. ")", 2) end
  local client, err = M.open(cfg, opts)
  if not client then error("llm.new: " .. err, 2) end
  return client
end

--- check_model(client_or_models, spec) -> true | nil, message: spec is "provider:model" and
--- names a configured provider. Nothing is asked of the provider (no health check).
function M.check_model(models, spec)
  local pname, err = config.split_model(spec)
  if not pname then return nil, err end
  local providers = models.providers or {}
  if not providers[pname] then
    local names = {}
    for n in pairs(providers) do names[#names + 1] = n end
    table.sort(names)
    return nil, string.format("names provider '%s', which is not configured (configured: %s)", pname,
      table.concat(names, ", "))
  end
  return true
end

--- check_models(models, team, roles) -> list of problems ("file[:line]: field: message"):
--- every model a seat (settings.team) or a role (roles.by_name, from orket.engine.roles)
--- names is "provider:model" with a configured provider. A run checks these before it starts,
--- so a typo is refused up front instead of failing every card that reaches the model.
function M.check_models(models, team, roles)
  local out = {}
  local seats = {}
  for seat in pairs(team or {}) do seats[#seats + 1] = seat end
  table.sort(seats)
  for _, seat in ipairs(seats) do
    local m = team[seat].model
    if m ~= nil then
      local ok, err = M.check_model(models, m)
      if not ok then out[#out + 1] = string.format("orket.lua: team.%s.model: %s", seat, err) end
    end
  end
  local names = {}
  for n in pairs(roles or {}) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do
    local r = roles[n]
    if r.model ~= nil then
      local ok, err = M.check_model(models, r.model)
      if not ok then
        local default = "roles/" .. n .. ".lua"
        local line = fieldline.of(fieldline.read(r.file or default), "model")
        -- named as the role's errors name it (roles.load_file's chunk)
        out[#out + 1] = string.format("%s%s: model: %s", scriptfile.shown(r, default), line and (":" .. line) or "", err)
      end
    end
  end
  return out
end

--- models_named(models, team, roles, experiments) -> every "provider:model" the project
--- names, sorted, each once: models.default, each seat's (settings.team), each role's
--- (roles.by_name) and each experiment variant's. A project's routing.lua choice is known
--- only when it is made, at a turn.
function M.models_named(models, team, roles, experiments)
  local seen, out = {}, {}
  local function use(m) if type(m) == "string" and not seen[m] then seen[m] = true; out[#out + 1] = m end end
  use(type(models) == "table" and models.default or nil)
  for _, seat in pairs(team or {}) do use(seat.model) end
  for _, r in pairs(roles or {}) do use(r.model) end
  if type(experiments) == "table" then
    for _, x in pairs(experiments) do if type(x) == "table" then use(x.model) end end
  end
  table.sort(out)
  return out
end

local CHOICES = { auto = true, none = true, required = true }

-- Fixed tool entries (fixed_tools: the caller's word that they do not change) found well
-- formed: checked once, not at every request that lists them.
local checked_tools = setmetatable({}, { __mode = "k" })

-- level: the caller to blame (3 from a Client method: the method's caller)
local function bad(level, msg) error("bad argument #1 to 'chat' (" .. msg .. ")", level + 1) end

local function check_request(req, level)
  level = level or 3
  if type(req) ~= "table" then bad(level, "table expected, got " .. type(req)) end
  local msgs = req.messages
  if type(msgs) ~= "table" or #msgs == 0 then bad(level, "messages must be a non-empty list") end
  -- walked as ipairs walks (to the first nil), by index: no C call per message
  local i, m = 1, msgs[1]
  while m ~= nil do
    if type(m) ~= "table" or type(m.role) ~= "string" then bad(level, "messages[" .. i .. "].role must be a string") end
    local c = m.content
    if c ~= nil and type(c) ~= "string" then bad(level, "messages[" .. i .. "].content must be a string") end
    i = i + 1
    m = msgs[i]
  end
  local tools = req.tools
  if tools ~= nil then
    if type(tools) ~= "table" then bad(level, "tools must be a list of {name=, description=, parameters=}") end
    local fixed = req.fixed_tools == true
    i = 1
    local t = tools[1]
    while t ~= nil do
      if not (fixed and checked_tools[t]) then
        if type(t) ~= "table" or type(t.name) ~= "string" then bad(level, "tools[" .. i .. "].name must be a string") end
        if t.description ~= nil and type(t.description) ~= "string" then bad(level, "tools[" .. i .. "].description must be a string") end
        if t.parameters ~= nil and type(t.parameters) ~= "table" then bad(level, "tools[" .. i .. "].parameters must be a table (a JSON schema)") end
        if fixed then checked_tools[t] = true end
      end
      i = i + 1
      t = tools[i]
    end
  end
  if req.fixed_tools ~= nil and type(req.fixed_tools) ~= "boolean" then bad(level, "fixed_tools must be true or false") end
  local tc = req.tool_choice
  if tc ~= nil and not (CHOICES[tc] or (type(tc) == "table" and type(tc.name) == "string")) then
    bad(level, 'tool_choice must be "auto", "none", "required" or {name = TOOL}')
  end
  if req.on_delta ~= nil and type(req.on_delta) ~= "function" then bad(level, "on_delta must be a function") end
  if req.on_retry ~= nil and type(req.on_retry) ~= "function" then bad(level, "on_retry must be a function") end
  if req.timeout_source ~= nil and type(req.timeout_source) ~= "string" then bad(level, "timeout_source must be a string") end
  local t = req.timeout_ms
  if t ~= nil and (type(t) ~= "number" or not (t > 0) or t == math.huge) then
    bad(level, "timeout_ms must be a positive number of milliseconds")
  end
  if req.stream ~= nil and type(req.stream) ~= "boolean" then bad(level, "stream must be true or false") end
  if req.options ~= nil and type(req.options) ~= "table" then bad(level, "options must be a table") end
  if req.max_tokens ~= nil and (math.type(req.max_tokens) ~= "integer" or req.max_tokens < 1) then
    bad(level, "max_tokens must be a positive integer")
  end
  if req.meta ~= nil and type(req.meta) ~= "table" then bad(level, "meta must be a table") end
end

--- check_request(req[, level]) raises on a malformed chat request, as client:chat does,
--- blaming the caller level frames up (orket.terminal.chat checks before building a client).
M.check_request = check_request

-- Model names resolved so far (a client sees a handful; the cache starts over past 64).
local RESOLVED_MAX = 64

--- resolve(spec) -> provider state, model | nil, message
function Client:resolve(spec)
  spec = spec or self.default
  local hit = self.resolved[spec]
  if hit then return hit[1], hit[2] end
  local p, model = self:resolve_uncached(spec)
  if p then
    if self.nresolved >= RESOLVED_MAX then
      self.resolved, self.nresolved = {}, 0
    end
    self.resolved[spec] = { p, model }
    self.nresolved = self.nresolved + 1
  end
  return p, model
end

function Client:resolve_uncached(spec)
  if spec == nil then return nil, "llm: no model given and no models.default configured" end
  local pname, model = config.split_model(spec)
  if not pname then return nil, "llm: " .. model end
  local p = self.providers[pname]
  if not p then
    return nil, string.format("llm: unknown provider '%s' in model '%s' (configured: %s)", pname, spec, table.concat(self.names, ", "))
  end
  return p, model
end

--- client:chat{model=, messages=, tools=, fixed_tools=, tool_choice=, on_delta=, on_retry=, meta=,
---   timeout_ms=, timeout_source=, stream=, options=} -> result | nil, message, CLASS, failure  (must run inside a task)
--- failure (HTTP providers): {attempts=, elapsed_ms=, error=, final=, retry_after_ms=}, see transport.chat;
--- the offline providers make one attempt and leave retries to the caller (no failure).
function Client:chat(req)
  check_request(req)
  local p, model = self:resolve(req.model)
  if not p then return nil, model, "bad_request" end
  local r, msg, class, failure
  if p.kind == "openai" or p.kind == "ollama" then
    local kok, kerr = fresh_key(p)
    if not kok then return nil, kerr, "auth" end
  end
  if p.kind == "scripted" then r, msg, class, failure = scripted.chat(p.script, p.name, model, req)
  elseif p.kind == "replay" then r, msg, class, failure = replay.chat(p.replay, p.name, model, req)
  else r, msg, class, failure = transport.chat(p, model, req) end
  if not r then
    -- a scripted or replayed failure's text is made as safe to store as a server's
    -- (transport.chat's are already)
    if p.kind == "scripted" or p.kind == "replay" then msg = inert.quote(msg, 2000) end
    return nil, msg, class, failure
  end
  return common.utf8_result(r)
end

--- client:observe{model=, messages=, meta=}: tells a provider that keeps state between
--- requests (scripted sequences) about a request a resumed run answers from its journal
--- instead of asking again. Servers keep no such state: nothing happens for them.
function Client:observe(req)
  check_request(req)
  local p, model = self:resolve(req.model)
  if p and p.kind == "scripted" then scripted.observe(p.script, model, req) end
end

--- client:health(name) -> {ms=, models={...}} | nil, message, CLASS
function Client:health(name)
  local p = self.providers[name]
  if not p then return nil, "llm: unknown provider '" .. tostring(name) .. "'", "bad_request" end
  if p.kind == "scripted" then return { ms = 0, models = {}, offline = true } end
  if p.kind == "replay" then return { ms = 0, models = {}, offline = true } end
  local kok, kerr = fresh_key(p)
  if not kok then return nil, kerr, "auth" end
  if p.conf.api_key_env and not p.key and p.conf.base_url:match("^https://api%.openai%.com") then
    return nil, p.conf.api_key_env .. " is not set", "auth"
  end
  return transport.health(p)
end

--- missing(listed, wanted) -> sorted list of the names in wanted (a set) that a server's model
--- list (listed) lacks; none when the list is empty (such a server says nothing of its models).
--- Ollama's "llama3" is its "llama3:latest", either way round.
function M.missing(listed, wanted)
  local served, out = {}, {}
  for _, m in ipairs(listed) do served[(m:gsub(":latest$", ""))] = true end
  for m in pairs(wanted or {}) do
    if #listed > 0 and not served[(m:gsub(":latest$", ""))] then out[#out + 1] = m end
  end
  table.sort(out)
  return out
end

--- client:unserved(spec) -> why | nil: the model spec names ("provider:model") is one its
--- server's model list lacks (it asks the server: client:health). nil when the server says
--- nothing against it: it lists the model, lists none, is offline (scripted), or cannot be
--- asked (the first model call says why then).
function Client:unserved(spec)
  local pname, model = config.split_model(spec)
  if not pname then return nil end
  local r = self:health(pname)
  if not r or r.offline or #M.missing(r.models, { [model] = true }) == 0 then return nil end
  local d = self:describe(pname)
  return string.format("%s (%s) does not list %s among its %d model%s (%s%s); 'orket models' lists them",
    pname, tostring(d.base_url), model, #r.models, #r.models == 1 and "" or "s",
    table.concat(r.models, ", ", 1, math.min(5, #r.models)), #r.models > 5 and ", ..." or "")
end

--- client:provider_names() -> sorted names
function Client:provider_names() return self.names end

--- client:describe(name) -> {kind=, base_url=, key_env=, key_set=} (no secret values)
function Client:describe(name)
  local p = self.providers[name]
  if not p then return nil end
  return { kind = p.kind, base_url = p.conf.base_url and common.without_userinfo(p.conf.base_url), file = p.conf.file, key_env = p.conf.api_key_env,
    key_secret = p.conf.api_key and p.conf.api_key.secret,
    key_set = p.key ~= nil, max_concurrency = p.conf.max_concurrency, models = p.conf.models }
end

-- ---- interactive use -----------------------------------------------------------------------

-- the length of the UTF-8 sequence a lead byte starts (0 for a continuation byte)
local function seq_len(b)
  if b < 0x80 then return 1 elseif b < 0xC0 then return 0 elseif b < 0xE0 then return 2
  elseif b < 0xF0 then return 3 end
  return 4
end

--- printer(file) -> an on_delta that writes content tokens to file as they arrive, inert
--- (orket.inert.text): a model's escape sequences would clear the screen, retitle it or
--- write the clipboard. A character split across two pieces waits for its end.
function M.printer(file)
  local held = ""
  return function(ev)
    if ev.type == "content" then
      local text = held .. ev.text
      held = ""
      for i = #text, math.max(1, #text - 2), -1 do
        local n = seq_len(text:byte(i))
        if n > 0 then
          if n > #text - i + 1 then text, held = text:sub(1, i - 1), text:sub(i) end
          break
        end
      end
      file:write(inert.text(text))
      file:flush()
    elseif ev.type == "retry" then
      file:write(inert.text(string.format("\n[attempt %d failed (%s) %s into the call: %s; retrying in %s]\n",
        ev.attempt, tostring(ev.class), common.duration(ev.elapsed_ms), ev.message, common.duration(ev.delay_ms))))
    end
  end
end

return M
