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
local inert = require "orket.inert"

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
-- what each function must return besides nil (said when it returns something else)
local RETURNS = { worker = "a seat's name", reviewer = "a seat's name", escalation = "a seat's name",
  model = '"provider:model"' }

-- a value a routing function returned that is neither a string nor nil, for its message: a
-- number or a boolean as written, anything else by its type only (tostring on a table could
-- run the script's __tostring outside its box)
local function returned(v)
  local t = type(v)
  if t == "number" or t == "boolean" then return string.format("%s (a %s)", inert.quote(v, 40), t) end
  return "a " .. t
end

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
    -- where the function is, for a message about what it chose (unusable_model) or
    -- returned; the line of its return would need a debug hook, which the box's instruction
    -- budget already holds
    local line = debug.getinfo(f, "S").linedefined
    if line < 1 then line = nil end -- a built-in function given as one: no line of the file
    r.lines[k] = line
    local at = line and string.format("%s:%d: %s, the function that starts at this line,", chunk, line, k)
      or string.format("%s: %s", chunk, k)
    r.fns[k] = function(...)
      local cok, v = box:pcall(f, ...)
      if not cok then error(v, 0) end
      if v ~= nil and type(v) ~= "string" then
        error(string.format("%s returned %s: it must return %s or nil", at, returned(v), RETURNS[k]), 0)
      end
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
--- model whose provider the client does not have (a turn would only fail on it). nil when
--- routing.lua has no model function, even when it has others: the built-in rule's choices
--- (a seat's, a role's model, models.default) are checked before a run and a role's at each
--- reload. nil too for a client without a provider table (a test's fake).
function M:unusable_model(model, client)
  if not self.fns or self.fns.model == M.builtin.model then return nil end
  if model == nil or type(client) ~= "table" or type(client.providers) ~= "table" then return nil end
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
