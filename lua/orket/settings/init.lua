-- orket.settings: what a project's orket.lua may contain. This module owns the one
-- schema of its settings (SETTINGS, each top-level setting with the check of its section),
-- their defaults (the engine's sections, the built-in model providers) and their validation.
-- orket.config reads the file and applies the environment; `orket validate` reports every
-- problem at once (check); the engine runs with resolve's result. docs/engine.md, docs/llm.md.
local sandboxes = require "orket.settings.sandbox"
local proc = require "orket.c.proc"
local httpd = require "orket.c.httpd"
local mcp = require "orket.settings.mcp"
local experiments = require "orket.settings.experiments"
local audit = require "orket.settings.audit"
local signin = require "orket.settings.signin"
local serve_team = require "orket.settings.team"
local runlimits = require "orket.settings.runlimits"
local pgurl = require "orket.store.pgurl"
local cost = require "orket.cost"
local secret = require "orket.settings.secret"
local nearest = require "orket.nearest"
local inert = require "orket.inert"

local M = {}

-- ---- models (docs/llm.md) ------------------------------------------------------------

M.KINDS = { openai = true, ollama = true, scripted = true, replay = true }

-- The models section's messages read "orket.lua: models.x.y must ..." (docs/llm.md).
local function mfail(path, msg) return nil, "orket.lua: " .. path .. " " .. msg, "EINVAL" end

local function is_nonneg(v) return type(v) == "number" and v >= 0 and v == v and v < 1e12 end

local FIELDS = {
  kind = "string", base_url = "string", base_url_env = "string", api_key_env = "string", api_key = "secret",
  max_concurrency = "count", timeouts = "table", retry = "table", max_response_bytes = "count",
  headers = "table", stream = "boolean", file = "string", rules = "table", models = "table",
  default = "table", sequence = "table", cache_marks = "string",
}
local FIELD_NAMES = {}
for k in pairs(FIELDS) do FIELD_NAMES[#FIELD_NAMES + 1] = k end
table.sort(FIELD_NAMES)
FIELD_NAMES = table.concat(FIELD_NAMES, ", ")
-- Explicit prompt-cache marks an OpenAI-compatible server may need (docs/cost.md)
M.CACHE_MARKS = { cache_prompt = true, cache_control = true }
local TIMEOUTS = { connect_ms = true, first_byte_ms = true, idle_ms = true, total_ms = true }
local RETRY = { max_attempts = true, base_ms = true, max_ms = true }

local function check_provider(name, p)
  local at = "models.providers." .. name
  if type(p) ~= "table" then return mfail(at, "must be a table") end
  if not M.KINDS[p.kind] then
    return mfail(at .. ".kind", "must be one of openai, ollama, scripted, replay (got " .. tostring(p.kind) .. ")")
  end
  for k, v in pairs(p) do
    local want = FIELDS[k]
    if want == nil then
      -- in the shape orket.nearest reads, so the error also names the setting nearest to it
      return mfail(at .. "." .. tostring(k) .. ":", "unknown setting (known: " .. FIELD_NAMES .. ")")
    end
    if want == "count" then
      if math.type(v) ~= "integer" or v < 1 then return mfail(at .. "." .. k, "must be a positive integer") end
    elseif want == "secret" then
      if not secret.name_of(v) then
        return mfail(at .. "." .. k, "must be secret \"NAME\" (the key is kept with 'orket secrets set NAME', never "
          .. "written in orket.lua)")
      end
    elseif type(v) ~= want then
      return mfail(at .. "." .. k, "must be a " .. want .. " (got " .. type(v) .. ")")
    end
  end
  if p.kind == "openai" or p.kind == "ollama" then
    if type(p.base_url) ~= "string" or not p.base_url:match("^https?://[^/]") then
      return mfail(at .. ".base_url", "must be an http:// or https:// URL (got " .. tostring(p.base_url) .. ")")
    end
  end
  if p.cache_marks ~= nil then
    if p.kind ~= "openai" then
      return mfail(at .. ".cache_marks", "is for kind openai only (Ollama's server keeps its cache without marks)")
    end
    if not M.CACHE_MARKS[p.cache_marks] then
      return mfail(at .. ".cache_marks", "must be \"cache_prompt\" (llama.cpp's server) or \"cache_control\" "
        .. "(Anthropic's models behind an OpenAI-compatible relay) (got " .. tostring(p.cache_marks) .. ")")
    end
  end
  for k, v in pairs(p.timeouts or {}) do
    if not TIMEOUTS[k] then return mfail(at .. ".timeouts." .. tostring(k), "is not a timeout (connect_ms, first_byte_ms, idle_ms, total_ms)") end
    if not is_nonneg(v) then return mfail(at .. ".timeouts." .. k, "must be a number of milliseconds >= 0") end
  end
  for k, v in pairs(p.retry or {}) do
    if not RETRY[k] then return mfail(at .. ".retry." .. tostring(k), "is not a retry setting (max_attempts, base_ms, max_ms)") end
    if not is_nonneg(v) then return mfail(at .. ".retry." .. k, "must be a number >= 0") end
  end
  for k, v in pairs(p.headers or {}) do
    if type(k) ~= "string" or type(v) ~= "string" or k:find("[\r\n:]") or v:find("[\r\n]") then
      return mfail(at .. ".headers", "must map header names to single-line strings")
    end
    if k:lower() == "authorization" or k:lower() == "api-key" then
      return mfail(at .. ".headers." .. k, "must not be in orket.lua: name the key with api_key = secret \"NAME\" or api_key_env")
    end
  end
  if p.kind == "scripted" and p.file == nil and p.rules == nil then
    return mfail(at, "needs file= (a script of rules) or rules=")
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

--- env_model([getenv]) -> ORKET_MODEL's model, spaces around it left out | nil when it is
--- unset, empty or only spaces (as OPENAI_BASE_URL and the OTEL_* variables are): the one
--- reading of it, for models.default (orket.config.apply_env) and every turn's model
--- (orket.engine.routing.override_model)
function M.env_model(getenv)
  local m = (getenv or os.getenv)("ORKET_MODEL")
  return type(m) == "string" and m:find("%S") and m:match("^%s*(.-)%s*$") or nil
end

local MODELS_KEYS = { default = true, prices = true, providers = true }

--- validate_models(models) -> true | nil, message, "EINVAL"
function M.validate_models(models)
  if type(models) ~= "table" then return mfail("models", "must be a table") end
  -- a misspelt key (defualt) was passed over, and the built-in default model used instead
  local odd = {}
  for k in pairs(models) do
    if not MODELS_KEYS[k] then odd[#odd + 1] = tostring(k) end
  end
  if #odd > 0 then
    table.sort(odd)
    return mfail("models." .. odd[1] .. ":", "unknown setting (known: default, prices, providers)")
  end
  if type(models.providers) ~= "table" then return mfail("models.providers", "must be a table") end
  for name, p in pairs(models.providers) do
    if type(name) ~= "string" or not name:match("^[%w_%-%.]+$") then
      return mfail("models.providers", "names must be words (got " .. tostring(name) .. ")")
    end
    local ok, err, code = check_provider(name, p)
    if not ok then return nil, err, code end
  end
  if models.default ~= nil then
    local prov, err = M.split_model(models.default)
    if not prov then return mfail("models.default:", err) end
    if not models.providers[prov] then
      return mfail("models.default", "names provider '" .. prov .. "', which is not configured")
    end
  end
  -- prices (docs/cost.md): each "provider:model" priced per million tokens
  local prices, perr = cost.prices(models.prices)
  if perr then return nil, "orket.lua: " .. perr, "EINVAL" end
  -- a price under a provider no model can be called through (a typo: "opneai:gpt-4o") is
  -- never used, and its model's calls would go unpriced without a word
  local specs, names = {}, {}
  for spec in pairs(prices) do specs[#specs + 1] = spec end
  table.sort(specs)
  for _, spec in ipairs(specs) do
    local prov = spec:match("^([^:]+):")
    if not models.providers[prov] then
      for n in pairs(models.providers) do names[#names + 1] = n end
      table.sort(names)
      return mfail(string.format("models.prices[%q]", spec), string.format("names provider '%s', which is not "
        .. "configured (providers: %s): no call is priced by it; write the key as \"provider:model\" with a "
        .. "provider of models.providers", prov, table.concat(names, ", ")))
    end
  end
  return true
end

-- Built-in providers: Ollama on this machine is the default; OpenAI is one setting away.
-- A project's providers of the same name are merged over these.
function M.builtin_models()
  return {
    default = "ollama:qwen2.5-coder:7b",
    providers = {
      ollama = { kind = "ollama", base_url = "http://127.0.0.1:11434", base_url_env = "OLLAMA_HOST" },
      openai = { kind = "openai", base_url = "https://api.openai.com/v1", base_url_env = "OPENAI_BASE_URL",
        api_key_env = "OPENAI_API_KEY" },
    },
  }
end

--- merge_models(data) -> models | nil, message, "EINVAL": the built-in providers with
--- orket.lua's models section merged over them (a provider of the same kind field by
--- field), before the environment and before validate_models.
function M.merge_models(data)
  local models = M.builtin_models()
  local pm = data.models
  if pm == nil then return models end
  if type(pm) ~= "table" then return nil, "orket.lua: models must be a table", "EINVAL" end
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
    return nil, "orket.lua: models.providers must be a table", "EINVAL"
  end
  return models
end

-- ---- the engine's sections (docs/engine.md) --------------------------------------------

-- The most turns at once a run may be started with: `orket run`, `resume` and `worker`'s
-- --concurrency and POST /v1/runs' concurrency.
M.CONCURRENCY_MAX = 64

M.DEFAULTS = {
  concurrency = 3,
  budgets = {
    turns_per_card = 6,        -- work turns (work, rework, escalation) one card may take in a
                               -- run; its review turns count apart against the same number
    steps_per_turn = 12,       -- model calls in one turn
    tool_calls_per_turn = 24,  -- tool calls in one turn
    tokens_per_card = 200000,  -- prompt + completion tokens for one card in a run
    tokens_per_run = 2000000,  -- a run budget: ends the run (stalled), blocks no card
    wall_ms_per_card = 0,      -- 0: no limit
    wall_ms_per_run = 0,       -- a run budget, as tokens_per_run
    max_output_tokens = 0,     -- the most tokens one model call may answer with (0: the
                               -- provider's limit); what a money budget's estimate assumes
    model_retries = 3,         -- the engine asks the model again (for a failure the client did
                               -- not retry) while the call's attempts are at most this many
    backoff_ms = 200,          -- first delay before asking again (the model; a push of main to
                               -- git.remote that failed too); doubles each time
  },
  -- What the gate lets a run do through tools (see docs/tools.md): calls, bytes written and
  -- files touched, per turn and per run. Copied from the gate's defaults below.
  limits = {},
  review = {
    escalate_after = 2,             -- rejections before the architect gets an escalation turn
    requirements_review_after = 3,  -- rejections before a requirements review and a wait for input
  },
  context = {
    -- a turn's history past max_chars (the high-water mark) has its oldest steps folded into
    -- a summary, down to keep_percent of max_chars (the low-water mark) and at most
    -- recent_steps steps kept verbatim, the last step always (docs/cost.md)
    max_chars = 32000,
    keep_percent = 15,
    recent_steps = 6,
    recall = 5,         -- memory entries recalled into the prompt
    memory_max_age_days = 90,
  },
  -- Verification (docs/verify.md): the default checks of an issue without its own, the
  -- layers a run must have or goes without.
  verify = {
    command = nil,      -- argv run as every issue's check when its epic gives none
    commands = {},      -- programs agents may run with run_command without asking, e.g. {"make", "lua"}
    require = {},       -- layers every run must have, e.g. {"netns", "landlock"}
    layers = {},        -- optional layers switched off, e.g. {netns = false}
    read_only = {},     -- extra paths agent code may read, e.g. {"/opt/jdk"} (docs/verify.md)
    read_write = {},    -- extra paths it may write, e.g. {"/var/cache/ccache"}
    unix_sockets = false, -- socket(AF_UNIX) allowed (socketpair always is)
    timeout_ms = 120000,
    output_cap = 65536, -- bytes kept of stdout and of stderr
    limits = {},        -- the programs' limits, e.g. {processes = 256, memory = 1073741824},
                        -- within the server's ceilings (orket.settings.runlimits)
    tool_limits = {},   -- one tool's own over them, e.g. {run_tests = {processes = 512}}
  },
  team = {
    lead_architect = { roles = { "architect" } },
    senior_developer = { roles = { "coder" } },
    integrity_guard = { roles = { "integrity_guard" } },
  },
}

for k, v in pairs(require("orket.gate").DEFAULT_LIMITS) do M.DEFAULTS.limits[k] = v end

local function fail(path, fmt, ...)
  error({ settings_error = "orket.lua: " .. path .. ": " .. string.format(fmt, ...) }, 0)
end

local function text(v, path)
  if type(v) ~= "string" then fail(path, "must be a string") end
  local ok, at = utf8.len(v)
  if not ok then fail(path, "is not valid UTF-8 (byte %d)", at) end
  return v
end

-- The largest count a setting may hold: far above any sensible budget, and exact in a
-- float, so 1e300, math.huge or 2^63 are refused by name instead of overflowing.
M.MAX = 1000000000000

-- max: a setting's own bound (M.MAX when none), so that a value below min names it too
local function int(v, path, min, max)
  min, max = min or 0, max or M.MAX
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    fail(path, "must be an integer, not %s", type(v) == "number" and tostring(v) or type(v))
  end
  local n = math.tointeger(v)
  if not n or n < min or n > max then
    fail(path, "must be an integer from %d to %d (got %s)", min, max,
      math.type(v) == "float" and string.format("%.14g", v) or tostring(v))
  end
  return n
end

-- A section says every bad field, not the first that pairs() meets (whose turn changes
-- from one process to the next): gather(problems, fn, ...) runs one field's check and adds
-- what it raises, a message or a nested check's every message -> fn's result | nil
local function gather(problems, fn, ...)
  local ok, res = pcall(fn, ...)
  if ok then return res end
  if type(res) ~= "table" or not res.settings_error then error(res, 0) end
  for _, m in ipairs(res.settings_errors or { res.settings_error }) do problems[#problems + 1] = m end
  return nil
end

-- raises the problems gathered, when there are any (the first is settings_error)
local function raise(problems)
  if #problems > 0 then error({ settings_error = problems[1], settings_errors = problems }, 0) end
end

-- a table's keys in a stable order (names sorted; other keys after, by their text): the
-- order a section's fields are checked in, before orket validate puts them in file order
local function keys_of(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out, function(a, b)
    local sa, sb = type(a) == "string", type(b) == "string"
    if sa ~= sb then return sa end
    return tostring(a) < tostring(b)
  end)
  return out
end

-- "got key K": the key that makes t no plain array (a name, or an index past a hole, where
-- ipairs stops and the rest would be dropped without a word) | nil when t is one
local function not_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for _, k in ipairs(keys_of(t)) do
    if math.type(k) ~= "integer" or k < 1 then return "got key " .. inert.line(tostring(k)) end
    if k > n then
      for i = 1, k do
        if t[i] == nil then return string.format("got key %d, but [%d] is nil", k, i) end
      end
    end
  end
  return nil
end

-- also: more names the section knows, checked by its caller (budgets' money ones), for
-- the list an unknown setting's message gives
local function section(cfg, name, defaults, also)
  local src = cfg[name]
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  if src == nil then return out end
  if type(src) ~= "table" then fail(name, "must be a table") end
  local problems = {}
  for _, k in ipairs(keys_of(src)) do
    local v = src[k]
    if defaults[k] == nil then
      local names = {}
      for n in pairs(defaults) do names[#names + 1] = n end
      for n in pairs(also or {}) do names[#names + 1] = n end
      table.sort(names)
      gather(problems, fail, name .. "." .. tostring(k), "unknown setting (known: %s)", table.concat(names, ", "))
    else
      out[k] = gather(problems, int, v, name .. "." .. k, 0)
    end
  end
  raise(problems)
  return out
end

-- Money budgets (docs/cost.md): "AMOUNT CURRENCY" text, beside the token budgets. None
-- by default; 0 is refused, since it would stop every priced call (leave it out instead).
M.MONEY_BUDGETS = { cost_per_card = true, cost_per_epic = true, cost_per_rock = true, cost_per_run = true,
  cost_per_day = true }

local function money(v, path)
  if type(v) ~= "string" then fail(path, "must be an amount and a currency, e.g. \"5.00 USD\" (got %s)", type(v)) end
  local amount, currency = v:match("^%s*(%S+)%s+(%u%u%u)%s*$")
  local lamount, lower = v:match("^%s*(%S+)%s+(%a%a%a)%s*$")
  if not amount and lower and cost.CURRENCIES[lower:upper()] then
    fail(path, "names %s: write the currency as its ISO 4217 code, in capitals (\"%s %s\")", lower, lamount, lower:upper())
  end
  if not amount then fail(path, "must be an amount and a currency, e.g. \"5.00 USD\" (got \"%s\")", v) end
  if not cost.CURRENCIES[currency] then fail(path, "names %s, not the ISO 4217 code of a currency in use, such as USD", currency) end
  local m, why = cost.micros(amount)
  -- cost.micros says a price's range, where 0 is allowed: a budget's starts above 0
  if not m then fail(path, "%s", (why:gsub("^must be from 0 to", "must be more than 0 and at most"))) end
  if m == 0 then fail(path, "must be more than 0 (leave it out for no budget)") end
  return { micros = m, currency = currency, text = v }
end

-- The currencies models.prices bills in, sorted | nil when a price's currency is missing or
-- no ISO 4217 code: its own check reports that price, and a budget compared with what it
-- bills in would be a second, wrong message ("is in USD, but models.prices bills only in
-- usd").
local function priced_currencies(cfg)
  local prices = type(cfg.models) == "table" and cfg.models.prices
  local seen, out = {}, {}
  for _, p in pairs(type(prices) == "table" and prices or {}) do
    local c = type(p) == "table" and p.currency
    if not cost.CURRENCIES[c] then return nil end
    if not seen[c] then seen[c], out[#out + 1] = true, c end
  end
  table.sort(out)
  return seen, out
end

-- The budgets whose 0 would allow nothing, with what it would not allow; the token and wall
-- budgets' 0 is no limit.
M.AT_LEAST_ONE = { turns_per_card = "a card no work turn", steps_per_turn = "a turn no model call",
  tool_calls_per_turn = "a turn no tool call" }

-- validating: orket validate's check, which refuses those 0s. A run (resolve) still takes
-- one, and blocks each card at its first turn: the engine's tests use that block.
local function budgets(cfg, validating)
  local src, plain = cfg.budgets, {}
  if type(src) ~= "table" then return section(cfg, "budgets", M.DEFAULTS.budgets, M.MONEY_BUDGETS) end
  local spent, problems = {}, {}
  local priced, currencies = priced_currencies(cfg)
  for _, k in ipairs(keys_of(src)) do
    local v = src[k]
    if M.MONEY_BUDGETS[k] then spent[k] = gather(problems, money, v, "budgets." .. k)
    elseif validating and M.AT_LEAST_ONE[k] and v == 0 then
      gather(problems, fail, "budgets." .. k, "must be at least 1: 0 would allow %s (0 is no limit only for "
        .. "tokens_per_card, tokens_per_run, wall_ms_per_card and wall_ms_per_run)", M.AT_LEAST_ONE[k])
    else plain[k] = v end
    -- a budget counts only the calls priced in its currency: in another, it never stops one
    if spent[k] and priced and not priced[spent[k].currency] then
      gather(problems, fail, "budgets." .. k, "is in %s, but %s, so no call would ever count against it",
        spent[k].currency, #currencies == 0 and "no model has a price (models.prices)"
          or ("models.prices bills only in " .. table.concat(currencies, ", ")))
    end
  end
  local out = gather(problems, section, { budgets = plain }, "budgets", M.DEFAULTS.budgets, M.MONEY_BUDGETS)
  raise(problems)
  for k, v in pairs(spent) do out[k] = v end
  return out
end

local function team(cfg)
  local src = cfg.team
  if src == nil then
    local out = {}
    for seat, s in pairs(M.DEFAULTS.team) do out[seat] = { roles = { table.unpack(s.roles) } } end
    return out
  end
  if type(src) ~= "table" then fail("team", "must be a table of seat = {roles = {...}, model = ...}") end
  local out, problems = {}, {}
  for _, seat in ipairs(keys_of(src)) do gather(problems, function()
    local s, p = src[seat], "team." .. tostring(seat)
    if type(seat) ~= "string" or not seat:match("^[%w_%-]+$") then
      -- named as written, team["a b"] (which also finds its line), not team.a b; its quotes
      -- and backslashes escaped as in Lua, so that team["a \"b\""] reads as one key
      fail(type(seat) == "string" and ('team["' .. inert.line((seat:gsub('[\\"]', "\\%0"))) .. '"]')
        or ("team[" .. tostring(seat) .. "]"), "a seat's name is a word: ASCII letters, digits, _ and -")
    end
    if type(s) == "string" then s = { roles = { s } } end
    if type(s) ~= "table" then fail(p, "must be {roles = {...}, model = ...}") end
    for k in pairs(s) do
      if k ~= "roles" and k ~= "model" then fail(p .. "." .. tostring(k), "unknown field (fields: roles, model)") end
    end
    local roles = s.roles
    if type(roles) == "string" then roles = { roles } end
    if type(roles) == "table" and not_array(roles) then
      fail(p .. ".roles", "must be an array of role names, e.g. {\"coder\"}; %s", not_array(roles))
    end
    if type(roles) ~= "table" or #roles == 0 then fail(p .. ".roles", "must list at least one role") end
    local rs = {}
    for i, r in ipairs(roles) do
      if type(r) ~= "string" then fail(p .. ".roles[" .. i .. "]", "must be a role name") end
      rs[i] = r
    end
    if s.model ~= nil and type(s.model) ~= "string" then fail(p .. ".model", "must be \"provider:model\"") end
    out[seat] = { roles = rs, model = s.model }
  end) end
  raise(problems)
  return out
end

local function argv(v, path)
  if type(v) ~= "table" or #v == 0 then fail(path, "must be an argv array of strings, e.g. {\"make\", \"test\"}") end
  if not_array(v) then fail(path, "must be an argv array of strings, e.g. {\"make\", \"test\"}; %s", not_array(v)) end
  local out = {}
  for i, a in ipairs(v) do
    out[i] = text(a, path .. "[" .. i .. "]")
  end
  return out
end

-- what: "layer names, e.g. {...}", as the message says it. A set ({landlock = true}) or a
-- hole would otherwise load as fewer names: for verify.require, layers not required.
local function names(v, path, what)
  if type(v) ~= "table" then fail(path, "must be an array of %s", what) end
  if not_array(v) then fail(path, "must be an array of %s; %s", what, not_array(v)) end
  local out = {}
  for i, a in ipairs(v) do out[i] = text(a, path .. "[" .. i .. "]") end
  return out
end

local VERIFY_KEYS = "command, commands, layers, limits, output_cap, read_only, read_write, require, timeout_ms, "
  .. "tool_limits, unix_sockets"

-- verify.read_only / read_write: absolute, clean paths (the runner's own rule), never "/".
local function view_paths(v, p)
  local out = names(v, p, "absolute paths, e.g. {\"/opt/jdk\"}")
  for i, path in ipairs(out) do
    if not proc.path_ok(path) then
      fail(p .. "[" .. i .. "]", "must be an absolute path without '.', '..', '//' or a trailing '/', and not \"/\" (got %q)", path)
    end
  end
  return out
end

-- validating: orket validate's check, which also refuses a layer both required and switched
-- off. A run still takes the pair and fails each check closed, naming the layer (the way
-- the tests stand in for a kernel without it).
local function verify(d, validating)
  local src, D = d.verify, M.DEFAULTS.verify
  local out = { require = {}, layers = {}, commands = {}, timeout_ms = D.timeout_ms, output_cap = D.output_cap,
    read_only = {}, read_write = {}, unix_sockets = false, limits = {}, tool_limits = {} }
  if src == nil then return out end
  if type(src) ~= "table" then fail("verify", "must be a table (fields: %s)", VERIFY_KEYS) end
  for k, v in pairs(src) do
    local p = "verify." .. tostring(k)
    if k == "command" then out[k] = argv(v, p)
    elseif k == "require" then out[k] = names(v, p, "layer names, e.g. {\"netns\", \"landlock\"}")
    elseif k == "commands" then
      -- program names compared with run_command's argv[1] as given (no PATH lookup)
      out[k] = names(v, p, "program names, e.g. {\"make\", \"lua\"}")
      for i, n in ipairs(out[k]) do
        if n == "" or n:find("%z") then fail(p .. "[" .. i .. "]", "must be a program name, e.g. \"make\"") end
      end
    elseif k == "timeout_ms" then out[k] = int(v, p, 1)
    elseif k == "layers" then
      if type(v) ~= "table" then fail(p, "must be a table such as {netns = false}") end
      for n, on in pairs(v) do
        if type(on) ~= "boolean" then fail(p .. "." .. tostring(n), "must be true or false") end
        out.layers[n] = on
      end
    elseif k == "output_cap" then out[k] = int(v, p, 256)
    elseif k == "read_only" or k == "read_write" then out[k] = view_paths(v, p)
    elseif k == "limits" then out[k] = runlimits.check(v, p, fail)
    elseif k == "tool_limits" then out[k] = runlimits.tools(v, p, fail)
    elseif k == "unix_sockets" then
      if type(v) ~= "boolean" then fail(p, "must be true or false") end
      out[k] = v
    else fail(p, "unknown setting (known: %s)", VERIFY_KEYS) end
  end
  if #out.read_only + #out.read_write > 64 then fail("verify.read_only", "more than 64 extra paths with read_write") end
  local known = {}
  local layers = proc.layers()
  for _, n in ipairs(layers.optional) do known[n] = true end
  for _, n in ipairs(layers.always) do known[n] = true end
  for n in pairs(out.layers) do
    if not known[n] or n == "session" or n == "fds" or n == "env" or n == "cwd" or n == "rlimits" then
      fail("verify.layers." .. tostring(n), "is not an optional layer (optional: %s)", table.concat(layers.optional, ", "))
    end
  end
  for i, n in ipairs(out.require) do
    if not known[n] then fail("verify.require[" .. i .. "]", "%q is not a layer (docs/verify.md lists them)", n) end
    if validating and out.layers[n] == false then
      fail("verify.require[" .. i .. "]", "%q is required, but verify.layers.%s = false switches it off, so every "
        .. "run would fail closed; drop it from one of the two", n, n)
    end
  end
  return out
end

-- The origin a sandbox's app is served on (docs/serve.md, "Apps on their own origins"):
-- {id} is the first label of its host; {port}, when given, the port the board was reached on.
M.APP_ORIGIN = "http://{id}.sandbox.localhost:{port}"

-- app_origin(v, p) -> v when it is an origin template: http(s)://{id}.BASE[:{port}|:N]
local function app_origin(v, p)
  local base, port
  if type(v) == "string" then base, port = v:match("^https?://{id}%.([%w%-.]+)(.*)$") end
  if not base or base:find("^[.-]") or base:find("[.-]$") or base:find("..", 1, true) or base:find("%.%-")
      or not (port == "" or port == ":{port}" or port:match("^:%d+$")) then
    fail(p, "must be an origin whose host starts with {id}: http(s)://{id}.BASE[:{port}|:PORT], e.g. "
      .. "\"https://{id}.apps.example\" (got %s)", type(v) == "string" and string.format("%q", v) or type(v))
  end
  return v:lower()
end

-- orket serve's /health keeps an answer made for each (core/health.c, HEALTH_MAX_CORS)
M.MAX_CORS = 4096
-- and its listener takes at most this many trusted proxies (core/httpd.h, HTTPD_MAX_TRUSTED)
M.MAX_TRUSTED_PROXIES = 256

-- An array of nouns, checked to be one (no named fields, at most max) -> v
local function array_of(v, p, noun, example, max)
  if type(v) ~= "table" then fail(p, "must be an array of %s, e.g. %s", noun, example) end
  if #v > max then fail(p, "lists %d %s; at most %d", #v, noun, max) end
  if not_array(v) then fail(p, "must be an array (no named fields)") end
  return v
end

local function cors(v, p)
  local out = {}
  for i, o in ipairs(array_of(v, p, "origins", "{\"https://board.example\"}", M.MAX_CORS)) do
    local at = p .. "[" .. i .. "]"
    -- an origin exactly as a browser sends it: scheme, host, optional port; no path, no "*"
    if type(o) ~= "string" or not (o:match("^https?://[%w.-]+$") or o:match("^https?://[%w.-]+:%d+$")
      or o:match("^https?://%[[%x:]+%]:?%d*$")) then
      fail(at, "must be an origin: http(s)://host[:port], no path or wildcard, e.g. \"https://board.example\" (got %s)",
        type(o) == "string" and string.format("%q", o) or type(o))
    end
    out[i] = o:lower()
  end
  return out
end

-- trusted_proxies: the addresses or networks (IPv4, IPv6, ADDR/BITS) of the reverse proxies
-- whose X-Forwarded-For names the client (docs/serve.md, "Behind a reverse proxy"), checked
-- by the listener's own parser (core/httpd.c) so that what passes here is what it takes
local function trusted_proxies(v, p)
  local out = {}
  for i, a in ipairs(array_of(v, p, "addresses or networks", "{\"127.0.0.1\", \"10.0.0.0/8\"}",
      M.MAX_TRUSTED_PROXIES)) do
    local at = p .. "[" .. i .. "]"
    if type(a) ~= "string" then fail(at, "must be a string, an address or ADDR/BITS (got %s)", type(a)) end
    local ok, why = httpd.trusted_proxy(a)
    if not ok then
      fail(at, "%q: %s (an IPv4 or IPv6 address, or a network as ADDR/BITS, e.g. \"127.0.0.1\", \"::1\", "
        .. "\"10.0.0.0/8\")", a, why)
    end
    out[i] = a
  end
  return out
end

local SERVE_KEYS = "cors, app_origin, projects, branding, trusted_proxies"

-- orket serve (docs/serve.md): cors, the origins whose pages may call the API with a key;
-- app_origin, the origin each sandbox's app is served on; trusted_proxies, whose
-- X-Forwarded-For is believed.
local function serve(d)
  local src, out = d.serve, { cors = {}, app_origin = M.APP_ORIGIN, projects = {}, branding = serve_team.branding(nil),
    trusted_proxies = {} }
  if src == nil then return out end
  if type(src) ~= "table" then fail("serve", "must be a table (fields: %s)", SERVE_KEYS) end
  local problems = {}
  for _, k in ipairs(keys_of(src)) do
    local v, p = src[k], "serve." .. tostring(k)
    if k == "app_origin" then
      out.app_origin = gather(problems, app_origin, v, p)
    elseif k == "projects" or k == "branding" then -- docs/teams.md
      out[k] = gather(problems, serve_team[k], v)
    elseif k == "cors" then
      out.cors = gather(problems, cors, v, p)
    elseif k == "trusted_proxies" then
      out.trusted_proxies = gather(problems, trusted_proxies, v, p)
    else
      gather(problems, fail, p, "unknown setting (known: %s)", SERVE_KEYS)
    end
  end
  raise(problems)
  return out
end

-- The git section (docs/git.md): a remote the cards' branches are pushed to, and the forge
-- whose pull requests and webhooks carry people's reviews. Tokens and secrets are never in
-- orket.lua: it names the environment variables that hold them, or their names in the
-- project's secret store (secret "NAME", docs/secrets.md); the variable wins when set.
local GIT_KEYS = "api_url, forge, remote, repo, token, token_env, webhook_secret, webhook_secret_env"
M.FORGES = { gitea = true, github = true }
local GITHUB_API = "https://api.github.com"

local function env_name(v, path)
  text(v, path)
  if not v:match("^[%a_][%w_]*$") then fail(path, "must name an environment variable (letters, digits, _), got %q", v) end
  return v
end

-- A forge's fields, shared by git and updates: true when k is one (checked, into out).
local function forge_field(out, k, v, p)
  if k == "forge" then
    if not M.FORGES[v] then fail(p, "must be \"gitea\" or \"github\" (got %s)", tostring(v)) end
    out.forge = v
  elseif k == "repo" then
    text(v, p)
    if not v:match("^[%w][%w._-]*/[%w._-]+$") or #v > 200 then fail(p, "must be \"owner/name\" (got %q)", v) end
    out.repo = v
  elseif k == "api_url" then
    text(v, p)
    if not v:match("^https?://[^/%s]+[^%s]*$") then fail(p, "must be an http:// or https:// URL (got %q)", v) end
    out.api_url = v:gsub("/+$", "")
  elseif k == "token_env" then
    out.token_env = env_name(v, p)
  elseif k == "token" then
    out.token = secret.check(v, p)
  else
    return false
  end
  return true
end

local function git(d)
  local src = d.git
  if src == nil then return nil end
  if type(src) ~= "table" then fail("git", "must be a table (fields: %s)", GIT_KEYS) end
  local out, problems = {}, {}
  for _, k in ipairs(keys_of(src)) do
    local v, p = src[k], "git." .. tostring(k)
    gather(problems, function()
      if k == "remote" then
        text(v, p)
        if v == "" or v:find("[%c]") then fail(p, "must be a path or URL of the remote repository") end
        out.remote = v
      elseif k == "webhook_secret_env" then
        out[k] = env_name(v, p)
      elseif k == "webhook_secret" then
        out[k] = secret.check(v, p)
      elseif not forge_field(out, k, v, p) then
        fail(p, "unknown setting (known: %s)", GIT_KEYS)
      end
    end)
  end
  raise(problems) -- each field's problem; the fields' relations once each field is right
  if out.forge then
    if not out.remote then fail("git.remote", "is needed with git.forge: the remote the branches are pushed to") end
    if not out.repo then fail("git.repo", "is needed with git.forge: \"owner/name\" of the repository on the forge") end
    if not out.token_env and not out.token then
      fail("git.token_env", "is needed with git.forge: the variable holding the forge's API token (or git.token = secret \"NAME\")")
    end
    if out.forge == "github" then out.api_url = out.api_url or GITHUB_API end
    if not out.api_url then fail("git.api_url", "is needed with git.forge = \"gitea\": the server's URL, e.g. \"https://gitea.example\"") end
  elseif out.repo or out.token_env or out.token or out.api_url then
    fail("git.forge", "is needed with git.repo, git.token_env or git.api_url: \"gitea\" or \"github\"")
  end
  return out
end

-- The updates section: where `orket version --check` looks for a newer release of Orket
-- (docs/guide/deploying.md, "Update checks"); nothing asks unless that command runs. The
-- forge and its URL default to the git section's; the token is optional (public releases).
local UPDATES_KEYS = "api_url, forge, repo, token, token_env"
local function updates(d)
  local src = d.updates
  if src == nil then return nil end
  if type(src) ~= "table" then fail("updates", "must be a table (fields: %s)", UPDATES_KEYS) end
  local out, problems = {}, {}
  for _, k in ipairs(keys_of(src)) do
    gather(problems, function()
      if not forge_field(out, k, src[k], "updates." .. tostring(k)) then
        fail("updates." .. tostring(k), "unknown setting (known: %s)", UPDATES_KEYS)
      end
    end)
  end
  raise(problems)
  local g = type(d.git) == "table" and M.FORGES[d.git.forge] and d.git or {}
  if not out.repo then fail("updates.repo", "is needed: \"owner/name\" of the repository whose releases are Orket's") end
  if not out.forge and not g.forge then
    fail("updates.forge", "is needed without git.forge: \"gitea\" or \"github\"")
  end
  out.forge = out.forge or g.forge
  if not out.api_url and out.forge == g.forge and type(g.api_url) == "string" then
    out.api_url = g.api_url:gsub("/+$", "")
  end
  if out.forge == "github" then out.api_url = out.api_url or GITHUB_API end
  if not out.api_url then fail("updates.api_url", "is needed with forge \"gitea\": the server's URL") end
  return out
end

-- The review section: the rejection counts, and human = true to send each card handed in
-- to people on the forge (its pull request) instead of the reviewer seat.
local function review(d)
  local src, human, problems = d.review, false, {}
  if type(src) == "table" and src.human ~= nil then
    if type(src.human) ~= "boolean" then
      gather(problems, fail, "review.human", "must be true or false")
    else
      human = src.human
    end
    local rest = {}
    for k, v in pairs(src) do if k ~= "human" then rest[k] = v end end
    src = rest
  end
  local r = gather(problems, section, { review = src }, "review", M.DEFAULTS.review)
  raise(problems)
  if r.requirements_review_after < r.escalate_after then
    fail("review.requirements_review_after", "must not be below review.escalate_after")
  end
  if human then
    local g = d.git
    if type(g) ~= "table" or g.forge == nil then
      fail("review.human", "needs git.forge (and git.remote, git.repo, git.token_env): people review on the forge")
    end
  end
  r.human = human
  return r
end

-- ---- the schema ------------------------------------------------------------------------

-- Every top-level setting, in the order they are checked, with the check of its section:
-- fn(data, validating) raises fail(...) or returns the resolved section (validating: asked
-- by orket validate, M.check). Anything else is refused: a
-- typo such as `teams` or `concurrency` misspelt would otherwise run on the defaults.
local SCHEMA = {
  { "name", function(d) return d.name ~= nil and text(d.name, "name") or nil end },
  { "vision", function(d) return d.vision ~= nil and text(d.vision, "vision") or nil end },
  { "models", function(d)
    local models, err = M.merge_models(d)
    if models then
      local ok, verr = M.validate_models(models)
      if not ok then err = verr end
    end
    if err then error({ settings_error = err }, 0) end
    return d.models
  end },
  { "team", team },
  { "concurrency", function(d)
    if d.concurrency == nil then return M.DEFAULTS.concurrency end
    -- the same bound as --concurrency and the API's (a run uses orket.lua's when not told)
    return int(d.concurrency, "concurrency", 1, M.CONCURRENCY_MAX)
  end },
  { "budgets", budgets },
  { "limits", function(d) return section(d, "limits", M.DEFAULTS.limits) end },
  { "review", review },
  { "context", function(d)
    local c = section(d, "context", M.DEFAULTS.context)
    -- a fold keeps less than the window it folds, and at least the last step
    if c.keep_percent >= 100 then fail("context.keep_percent", "must be below 100 (got %d)", c.keep_percent) end
    if c.recent_steps < 1 then fail("context.recent_steps", "must be at least 1: the last step is never folded") end
    return c
  end },
  { "verify", verify },
  { "serve", serve },
  { "git", git },
  -- names a Windows or macOS clone cannot check out, refused where agents make them
  -- (docs/workspace.md); a team on Linux only turns that off
  { "workspace", function(d)
    local src, out, problems = d.workspace, { portable_names = true }, {}
    if src == nil then return out end
    if type(src) ~= "table" then fail("workspace", "must be a table (fields: portable_names)") end
    for _, k in ipairs(keys_of(src)) do gather(problems, function()
      if k ~= "portable_names" then fail("workspace." .. tostring(k), "unknown setting (known: portable_names)") end
      if type(src[k]) ~= "boolean" then fail("workspace.portable_names", "must be true or false") end
      out[k] = src[k]
    end) end
    raise(problems)
    return out
  end },
  { "updates", updates },
  -- a sandbox running main's tree, and the bug-fix phase after a rock (docs/sandbox.md)
  { "sandbox", sandboxes.sandbox },
  { "bug_fix", sandboxes.bug_fix },
  { "mcp", function(d) return mcp.section(d.mcp) end }, -- docs/mcp.md
  { "audit", function(d) return audit.section(d.audit) end }, -- docs/audit.md
  -- a share of the cards on another model or role (docs/cost.md, "Experiments")
  { "experiments", function(d) return experiments.section(d.experiments, (M.merge_models(d))) end },
  { "sign_in", function(d) return signin.section(d.sign_in) end }, -- docs/teams.md
  -- traces over OTLP/HTTP (docs/observability.md); the OTEL_* variables win over it
  { "telemetry", function(d)
    local t = d.telemetry
    if t == nil then return {} end
    if type(t) ~= "table" then fail("telemetry", "must be a table") end
    local problems = {}
    for _, k in ipairs(keys_of(t)) do gather(problems, function()
      local v = t[k]
      if k == "endpoint" then
        -- the scheme in any case, spaces around it left out, as the OTEL_* variables
        t[k] = require("orket.otel").http_url(v) -- lazy: the exporter, for a section that has one
          or fail("telemetry.endpoint", "must be an http:// or https:// URL (the collector's base; /v1/traces is added)")
      elseif k == "service_name" then
        -- an empty service.name files the traces under no service a backend can show
        if not text(v, "telemetry.service_name"):find("%S") then
          fail("telemetry.service_name", "must not be empty or only spaces (leave it out for \"orket\")")
        end
      elseif k == "max_request_bytes" then -- a request's body at most (orket.otel splits batches)
        t[k] = int(v, "telemetry.max_request_bytes", 65536)
      else
        fail("telemetry." .. tostring(k), "unknown setting (known: endpoint, max_request_bytes, service_name)")
      end
    end) end
    raise(problems)
    return t
  end },
  -- where the store is (docs/store.md, "Toward PostgreSQL"); checked here, not used yet
  { "store", function(d)
    local s, err = pgurl.section(d.store)
    if err then error({ settings_error = err }, 0) end
    return s
  end },
}

M.SETTINGS = {}
for _, s in ipairs(SCHEMA) do M.SETTINGS[s[1]] = true end

--- list() -> "budgets, concurrency, ..." (the settings, sorted, for messages)
function M.list()
  local names = {}
  for k in pairs(M.SETTINGS) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

--- unknown(data) -> the top-level keys of orket.lua's data that are no setting, a misspelt
--- one first (orket.nearest.ordered: the first is the one said when only one is)
function M.unknown(data)
  local out = {}
  for k in pairs(data) do
    if not M.SETTINGS[k] then out[#out + 1] = tostring(k) end
  end
  return nearest.ordered(out, M.list())
end

-- whether section entry's check, given {K = v} alone, says K is unknown to it
local function refuses(entry, k, v)
  local s = entry[1]
  local ok, res = pcall(entry[2], { [s] = { [k] = v } })
  local msg = ok and "" or (type(res) == "table" and res.settings_error) or tostring(res)
  return msg:find("unknown", 1, true) ~= nil
end

--- home(k, v) -> the section that has a field k (budgets for cost_per_run, models for
--- prices) | nil: a field written at the top of orket.lua instead of in its section. Each
--- section's own check is asked of {k = v} alone: one that says nothing of an unknown
--- setting knows k (v's own mistakes aside), unless it says nothing of a name no section
--- has either (team's seats, mcp's servers: names of the operator's). Asked only for a
--- name that is no setting.
function M.home(k, v)
  if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then return nil end
  for _, entry in ipairs(SCHEMA) do
    local s = entry[1]
    if s ~= "name" and s ~= "vision" and not refuses(entry, k, v) and refuses(entry, "no_such_field_here", v) then
      return s
    end
  end
  return nil
end

--- unknown_text(k, v) -> "orket.lua: K: unknown setting (settings: ...)", and where k
--- belongs when a section has it ("; it is a field of budgets: budgets = { K = ... }")
function M.unknown_text(k, v)
  local home = M.home(k, v)
  return "orket.lua: " .. tostring(k) .. ": unknown setting (settings: " .. M.list() .. ")"
    .. (home and string.format("; it is a field of %s: %s = { %s = ... }", home, home, k) or "")
end

-- Runs one section's check: value | nil, message, every message (a section may say more than one).
-- validating: orket validate's check (M.check), stricter than a run's where said.
local function run(entry, data, validating)
  local ok, res = pcall(entry[2], data, validating)
  if ok then return res end
  if type(res) == "table" and res.settings_error then return nil, res.settings_error, res.settings_errors end
  error(res, 0)
end

--- in_file_order(messages, line) -> messages (sorted in place) in the order of the lines
--- line(message) gives (nil: after those found), ties kept as they came: a section's
--- problems as they stand in orket.lua, not by field name
function M.in_file_order(msgs, line)
  if not line then return msgs end
  local at = {}
  for i, m in ipairs(msgs) do at[i] = { m = m, i = i, line = line(m) or math.huge } end
  table.sort(at, function(a, b) if a.line ~= b.line then return a.line < b.line end return a.i < b.i end)
  for i, a in ipairs(at) do msgs[i] = a.m end
  return msgs
end

--- check(data[, line]) -> {"orket.lua: field: message", ...}: every problem of orket.lua's
--- plain data (orket.config.read), each section on its own, unknown settings first; {}
--- when all is well. What `orket validate` reports; resolve stops at the first section
--- with problems. line(message) -> the line of orket.lua it is about | nil: each section's
--- problems are in that order (M.in_file_order), else by field name.
function M.check(data, line)
  local out = {}
  for _, k in ipairs(M.unknown(data)) do out[#out + 1] = M.unknown_text(k, data[k]) end
  for _, entry in ipairs(SCHEMA) do
    local _, err, all = run(entry, data, true)
    for _, m in ipairs(M.in_file_order(all or { err }, line)) do out[#out + 1] = m end
  end
  return out
end

--- resolve(cfg) -> settings | nil, "orket.lua: field: message", "EINVAL", every message
--- cfg is orket.lua's data (may be nil or {}; orket.config's result, whose models are
--- already merged and checked, or plain data). Every section is checked and filled with
--- its defaults; models is passed through as given. The first section with problems stops
--- it: its first message, and all of them (by field name; M.in_file_order sorts them).
function M.resolve(cfg)
  cfg = cfg or {}
  local s = {}
  for _, entry in ipairs(SCHEMA) do
    if entry[1] ~= "models" then
      local v, err, all = run(entry, cfg)
      if err then return nil, err, "EINVAL", all or { err } end
      s[entry[1]] = v
    end
  end
  s.models = cfg.models
  return s
end

--- seats(settings) -> sorted array of the team's seats (a new array each call)
function M.seats(s)
  local out = {}
  for seat in pairs(s.team or {}) do out[#out + 1] = seat end
  table.sort(out)
  return out
end

--- seats_with(settings, role) -> sorted array of seats holding role
function M.seats_with(s, role)
  local out = {}
  for seat, t in pairs(s.team) do
    for _, r in ipairs(t.roles) do
      if r == role then out[#out + 1] = seat break end
    end
  end
  table.sort(out)
  return out
end

return M
