-- orket.engine.experiments: a card's work turns on its experiment's variant (docs/cost.md,
-- "Experiments"). A card's arms are chosen (orket.settings.experiments) when its first turn
-- is prepared, written with that turn's begin (Run:begin_records) and read back ever
-- after, so orket.lua's experiments changing later never moves a started card. Reviews
-- and escalations are left alone: both arms are judged by the same reviewer.
local rules = require "orket.settings.experiments"
local store = require "orket.store.experiments"

local M = {}

-- the phases whose turns a variant changes
M.PHASES = { work = true, rework = true }

--- variant(run, card, phase) -> arm | nil, arms_to_record | nil, why: the card's variant
--- arm ({experiment=, arm = "variant", model=, role=}) when this phase's turn runs on one;
--- arms_to_record: what the turn's begin writes when the card has no arms yet; why: the
--- card cannot run (a variant's role the project lacks).
function M.variant(run, card, phase)
  if card.type ~= "issue" or not M.PHASES[phase] then return nil end
  local arms, fresh = store.of(run.db, card.id), nil
  if #arms == 0 then
    -- a card that started before the experiments were set keeps out of them
    if next(run.settings.experiments or {}) == nil or store.started(run.db, card.id) then return nil end
    arms = rules.arms(run.settings.experiments, card.id)
    fresh = arms
  end
  local v = arms[1]
  if not (v and v.arm == "variant") then return nil, fresh end
  if v.role and not run.roles.by_name[v.role] then
    return nil, nil, string.format("experiment %s's variant plays role %q, which the project has no longer (roles: %s)",
      v.experiment, v.role, table.concat(run.roles.names, ", "))
  end
  return v, fresh
end

return M
