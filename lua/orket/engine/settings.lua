-- orket.engine.settings: the engine's part of a project's orket.lua (team, concurrency,
-- budgets, review thresholds, context policy), checked field by field and filled with
-- defaults. Input is plain data (orket.config's result or a table); docs/engine.md.
local M = {}

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
    model_retries = 3,         -- the engine asks the model again (for a failure the client did
                               -- not retry) while the call's attempts are at most this many
    backoff_ms = 200,          -- first delay before asking again; doubles each time
  },
  -- What the gate lets a run do through tools (see docs/tools.md): calls, bytes written and
  -- files touched, per turn and per run. Copied from the gate's defaults below.
  limits = {},
  review = {
    escalate_after = 2,             -- rejections before the architect gets an escalation turn
    requirements_review_after = 3,  -- rejections before a requirements review and a wait for input
  },
  context = {
    max_chars = 32000,  -- history beyond this is compacted into a summary
    recent_steps = 6,   -- model steps always kept verbatim
    recall = 5,         -- memory entries recalled into the prompt
    memory_max_age_days = 90,
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

-- The largest count a setting may hold: far above any sensible budget, and exact in a
-- float, so 1e300, math.huge or 2^63 are refused by name instead of overflowing.
M.MAX = 1000000000000

local function int(v, path, min)
  min = min or 0
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    fail(path, "must be an integer, not %s", type(v) == "number" and tostring(v) or type(v))
  end
  local n = math.tointeger(v)
  if not n or n < min or n > M.MAX then
    fail(path, "must be an integer from %d to %d (got %s)", min, M.MAX,
      math.type(v) == "float" and string.format("%.14g", v) or tostring(v))
  end
  return n
end

local function section(cfg, name, defaults)
  local src = cfg[name]
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  if src == nil then return out end
  if type(src) ~= "table" then fail(name, "must be a table") end
  for k, v in pairs(src) do
    if defaults[k] == nil then
      local names = {}
      for n in pairs(defaults) do names[#names + 1] = n end
      table.sort(names)
      fail(name .. "." .. tostring(k), "unknown setting (known: %s)", table.concat(names, ", "))
    end
    out[k] = int(v, name .. "." .. k, 0)
  end
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
  local out = {}
  for seat, s in pairs(src) do
    local p = "team." .. tostring(seat)
    if type(seat) ~= "string" or not seat:match("^[%w_%-]+$") then fail(p, "seat names are words") end
    if type(s) == "string" then s = { roles = { s } } end
    if type(s) ~= "table" then fail(p, "must be {roles = {...}, model = ...}") end
    for k in pairs(s) do
      if k ~= "roles" and k ~= "model" then fail(p .. "." .. tostring(k), "unknown field (fields: roles, model)") end
    end
    local roles = s.roles
    if type(roles) == "string" then roles = { roles } end
    if type(roles) ~= "table" or #roles == 0 then fail(p .. ".roles", "must list at least one role") end
    local rs = {}
    for i, r in ipairs(roles) do
      if type(r) ~= "string" then fail(p .. ".roles[" .. i .. "]", "must be a role name") end
      rs[i] = r
    end
    if s.model ~= nil and type(s.model) ~= "string" then fail(p .. ".model", "must be \"provider:model\"") end
    out[seat] = { roles = rs, model = s.model }
  end
  return out
end

--- resolve(cfg) -> settings | nil, "orket.lua: field: message", "EINVAL"
--- cfg is the plain data of orket.lua (may be nil or {}); unknown engine fields are refused.
function M.resolve(cfg)
  cfg = cfg or {}
  local ok, res = pcall(function()
    local s = {
      name = cfg.name, vision = cfg.vision, models = cfg.models,
      budgets = section(cfg, "budgets", M.DEFAULTS.budgets),
      limits = section(cfg, "limits", M.DEFAULTS.limits),
      review = section(cfg, "review", M.DEFAULTS.review),
      context = section(cfg, "context", M.DEFAULTS.context),
      team = team(cfg),
    }
    s.concurrency = cfg.concurrency == nil and M.DEFAULTS.concurrency or int(cfg.concurrency, "concurrency", 1)
    if s.name ~= nil and type(s.name) ~= "string" then fail("name", "must be a string") end
    if s.vision ~= nil and type(s.vision) ~= "string" then fail("vision", "must be a string") end
    if s.review.requirements_review_after < s.review.escalate_after then
      fail("review.requirements_review_after", "must not be below review.escalate_after")
    end
    return s
  end)
  if not ok then
    if type(res) == "table" and res.settings_error then return nil, res.settings_error, "EINVAL" end
    error(res, 0)
  end
  return res
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
