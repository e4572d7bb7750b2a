-- orket.engine.routing: who works a card, who reviews it, which model a turn uses. These
-- built-in rules can be replaced function by function by a project's routing.lua (loaded in
-- a restricted environment, hot-reloadable); the run's --model and ORKET_MODEL override
-- every model choice. docs/engine.md.
local scriptenv = require "orket.scriptenv"
local scriptfile = require "orket.scriptfile"
local settings = require "orket.settings"
local uv = require "luv"
local nearest = require "orket.nearest"
local llm = require "orket.llm"

local M = {}

local function holds(team, seat, role)
  local s = team[seat]
  if not s then return false end
  for _, r in ipairs(s.roles) do if r == role then return true end end
  return false
end

local function sorted_seats(team) return settings.seats { team = team } end

-- The built-in rules: plain functions over plain data.
M.builtin = {}

--- worker(card, team) -> seat: the card's own seat when the team has it, else the first
--- seat (by name) holding "coder", else the first seat that is not only a reviewer.
function M.builtin.worker(card, team)
  if card.seat and team[card.seat] then return card.seat end
  for _, seat in ipairs(sorted_seats(team)) do
    if holds(team, seat, "coder") then return seat end
  end
  for _, seat in ipairs(sorted_seats(team)) do
    local only_guard = #team[seat].roles == 1 and team[seat].roles[1] == "integrity_guard"
    if not only_guard then return seat end
  end
  return nil
end

--- reviewer(card, team) -> seat holding integrity_guard that did not do the work, or nil
function M.builtin.reviewer(card, team)
  for _, seat in ipairs(sorted_seats(team)) do
    if holds(team, seat, "integrity_guard") and seat ~= card.worked_by then return seat end
  end
  return nil
end

--- escalation(card, team) -> seat holding architect, or nil
function M.builtin.escalation(card, team)
  for _, seat in ipairs(sorted_seats(team)) do
    if holds(team, seat, "architect") and seat ~= card.worked_by then return seat end
  end
  for _, seat in ipairs(sorted_seats(team)) do
    if holds(team, seat, "architect") then return seat end
  end
  return nil
end

--- model{seat=, role=, card=, phase=, team=, role_model=, default=} -> "provider:model" | nil
--- The seat's model, else the role's preference, else the project's default. Also what a
--- project's model function's nil (no choice) falls back to (docs/roles.md).
function M.builtin.model(t)
  local s = t.team and t.team[t.seat]
  return (s and s.model) or t.role_model or t.default
end

local NAMES = { worker = true, reviewer = true, escalation = true, model = true }
local ROUTING_FIELDS = "worker, reviewer, escalation, model"

--- load(path[, base]) -> routing | nil, "file:line: message", CODE. A missing file gives the
--- built-in routing. The file returns a table of some of worker/reviewer/escalation/model.
--- base: the project's directory, the file then named from it in errors (scriptfile.name).
function M.load(path, base)
  local r = { file = nil, fns = {}, lines = {} }
  for k, f in pairs(M.builtin) do r.fns[k] = f end
  -- lstat: a link that leads nowhere is a mistake to report, not a missing file
  if not path or not uv.fs_lstat(path) then return setmetatable(r, { __index = M }) end
  local chunk = scriptfile.name(path, base)
  local box = scriptenv.new { name = chunk }
  local ok, def, code = scriptfile.run(box, path, { chunk = chunk }) -- detached: reading it runs no script code
  if not ok then return nil, def, code end
  if type(def) ~= "table" then return nil, chunk .. ": must return a table of routing functions", "EINVAL" end
  -- an unknown field said before any other problem, a misspelt one first, the same each time
  local unknown = {}
  for k in next, def do
    if not NAMES[k] then unknown[#unknown + 1] = tostring(k) end
  end
  if unknown[1] then
    return nil, chunk .. ": unknown field '" .. nearest.ordered(unknown, ROUTING_FIELDS)[1] .. "' (fields: "
      .. ROUTING_FIELDS .. ")", "EINVAL"
  end
  for k, f in next, def do
    if type(f) ~= "function" then return nil, chunk .. ": " .. k .. " must be a function", "EINVAL" end
    -- where the function is, for a message about what it chose (unusable_model)
    r.lines[k] = debug.getinfo(f, "S").linedefined
    r.fns[k] = function(...)
      local cok, v = box:pcall(f, ...)
      if not cok then error(v, 0) end
      if v ~= nil and type(v) ~= "string" then error(chunk .. ": " .. k .. " must return a string or nil", 0) end
      return v
    end
  end
  r.file = path
  return setmetatable(r, { __index = M })
end

--- routing:choose(kind, ...) -> value | nil, message. kind: worker, reviewer, escalation, model.
--- Arguments are copied for a project's script, so it cannot change the engine's tables
--- (the built-in rules only read them).
function M:choose(kind, ...)
  local fn = self.fns[kind]
  if fn == M.builtin[kind] then
    local ok, v = pcall(fn, ...)
    if not ok then return nil, "routing " .. kind .. ": " .. tostring(v) end
    return v
  end
  local args = table.pack(...)
  for i = 1, args.n do
    if type(args[i]) == "table" then args[i] = scriptenv.copy(args[i]) end
  end
  local ok, v = pcall(self.fns[kind], table.unpack(args, 1, args.n))
  if not ok then return nil, "routing " .. kind .. ": " .. tostring(v) end
  return v
end

--- routing:unusable_model(model, client) -> nil | why: a project's model function chose a
--- model whose provider the client does not have (a turn would only fail on it). nil with the
--- built-in routing (its choices are checked before a run), or a client without a provider
--- table (a test's fake).
function M:unusable_model(model, client)
  if not self.file or model == nil or type(client) ~= "table" or type(client.providers) ~= "table" then return nil end
  local ok, why = llm.check_model(client, model)
  if ok then return nil end
  local line = self.lines and self.lines.model
  return string.format("routing.lua's model%s chose %q: it %s", line and (" (routing.lua:" .. line .. ")") or "",
    model, why)
end

--- override_model(run_model) -> the model every turn uses when given (--model, ORKET_MODEL)
function M.override_model(run_model)
  if run_model and run_model ~= "" then return run_model end
  return settings.env_model() -- blank is unset, as for models.default (orket.config.apply_env)
end

return M
