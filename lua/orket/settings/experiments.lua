-- orket.settings.experiments: orket.lua's experiments section (docs/cost.md, "Experiments")
-- and the rule that puts a card in an arm:
--   experiments = { small_model = { share = 0.2, model = "ollama:qwen2.5-coder:3b" },
--                   terse = { share = 0.1, role = "terse_coder" } }
-- Each card id falls at one point of [0, 1) (a hash of the id alone, the same in every
-- process and on every machine); the experiments, by name, take consecutive slices of that
-- line as wide as their shares, so a card is in one experiment's variant or in none (then
-- it is every experiment's control). Uses orket.c.crypto (BLAKE2b).
local crypto = require "orket.c.crypto"

local M = {}

M.FIELDS = "share, model, role"

local function fail(path, fmt, ...)
  error({ settings_error = "orket.lua: " .. path .. ": " .. string.format(fmt, ...) }, 0)
end

--- section(src, models) -> {name = {share=, model=, role=}} (empty without experiments);
--- raises {settings_error=} naming the field. models: orket.lua's models (merged with the
--- built-in ones), whose providers a variant's model must name. A role is checked against
--- the project's roles where they are loaded (the engine, orket validate).
function M.section(src, models)
  local out = {}
  if src == nil then return out end
  if type(src) ~= "table" then fail("experiments", "must be a table of NAME = { %s }", M.FIELDS) end
  local total, names = 0, {}
  for name, x in pairs(src) do
    if type(name) ~= "string" or not name:match("^[%a_][%w_%-]*$") or #name > 64 then
      fail("experiments", "names are words of at most 64 characters (got %s)", tostring(name))
    end
    local p = "experiments." .. name
    if type(x) ~= "table" then fail(p, "must be { %s }", M.FIELDS) end
    for k in pairs(x) do
      if k ~= "share" and k ~= "model" and k ~= "role" then fail(p .. "." .. tostring(k), "unknown field (fields: %s)", M.FIELDS) end
    end
    local share = x.share
    if type(share) ~= "number" or share ~= share or share <= 0 or share > 1 then
      fail(p .. ".share", "must be a number above 0 and at most 1, the part of the cards the variant gets (got %s)", tostring(share))
    end
    if x.model == nil and x.role == nil then fail(p, "changes nothing: give the variant's model, role or both") end
    if x.model ~= nil then
      local prov, m
      if type(x.model) == "string" then prov, m = x.model:match("^([%w_%-%.]+):(.+)$") end
      if not prov then fail(p .. ".model", "must be \"provider:model\", e.g. \"ollama:qwen2.5-coder:7b\" (got %s)", tostring(x.model)) end
      local provs = type(models) == "table" and models.providers
      if type(provs) == "table" and provs[prov] == nil then fail(p .. ".model", "names provider '%s', which is not configured", prov) end
      if m:find("[%c]") then fail(p .. ".model", "must not hold control characters") end
    end
    if x.role ~= nil and (type(x.role) ~= "string" or not x.role:match("^[%w_]+$")) then
      fail(p .. ".role", "must be a role's name (got %s)", tostring(x.role))
    end
    total = total + share
    names[#names + 1] = name
    out[name] = { share = share, model = x.model, role = x.role }
  end
  -- the slices share one line: together they cannot be wider than it
  if total > 1 + 1e-9 then
    table.sort(names)
    fail("experiments", "the shares add up to %s (%s); a card is in one variant at most, so they may add up to 1 at most",
      tostring(total), table.concat(names, ", "))
  end
  return out
end

--- check_roles(experiments, by_name) -> nil | "orket.lua: experiments.NAME.role: ..." for
--- the first variant (by name) whose role is no role of the project (by_name: its roles)
function M.check_roles(experiments, by_name)
  local names = {}
  for name in pairs(experiments or {}) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local r = experiments[name].role
    if r and not by_name[r] then return string.format("orket.lua: experiments.%s.role: no role named %q", name, r) end
  end
  return nil
end

--- point(card_id) -> the card's point in [0, 1): the first 32 bits of BLAKE2b of its id
function M.point(card_id)
  return tonumber(crypto.hash("orket experiment " .. card_id, 16):sub(1, 8), 16) / 4294967296
end

--- arms(experiments, card_id) -> array of {experiment=, arm=, model=, role=}: the card's
--- variant ({one row}, arm "variant") or, in none, every experiment's control (arm
--- "control"), by name; {} without experiments. Deterministic: the id and the shares alone.
function M.arms(experiments, card_id)
  local names = {}
  for name in pairs(experiments or {}) do names[#names + 1] = name end
  table.sort(names)
  local at, lo = M.point(card_id), 0
  for _, name in ipairs(names) do
    local x = experiments[name]
    if at >= lo and at < lo + x.share then
      return { { experiment = name, arm = "variant", model = x.model, role = x.role } }
    end
    lo = lo + x.share
  end
  local out = {}
  for i, name in ipairs(names) do out[i] = { experiment = name, arm = "control" } end
  return out
end

return M
