-- orket.engine.experiments: a card's work turns on its experiment's variant (docs/cost.md,
-- "Experiments"). A card's arms are chosen (orket.settings.experiments) when its first turn
-- is prepared, written with that turn's begin (Run:begin_records) and read back ever
-- after, so orket.lua's experiments changing later never moves a started card to another
-- arm. What a variant card's turns play is the variant as orket.lua sets it now: a person
-- whose variant model fails changes it there, or ends the experiment, which gives the card
-- back to its seat. Reviews and escalations are left alone: both arms are judged by the
-- same reviewer.
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
  -- the variant as set now (its model or role changed since the card started); an ended
  -- experiment's card plays its seat again, still counted in the experiment's report
  local x = (run.settings.experiments or {})[v.experiment]
  if not x then return nil, fresh end
  v = { experiment = v.experiment, arm = "variant", model = x.model, role = x.role }
  if v.role and not run.roles.by_name[v.role] then
    return nil, nil, string.format("experiment %s's variant plays role %q, which the project has no longer (roles: %s)",
      v.experiment, v.role, table.concat(run.roles.names, ", "))
  end
  return v, fresh
end

--- decides(experiment, model) -> the sentence a card's block adds when its turn ran on
--- experiment's variant model: that the experiment, not the seat, decides it, and what
--- to change
function M.decides(experiment, model)
  return string.format("The model %s is experiment %s's variant's (orket.lua's experiments.%s.model), which this "
    .. "card's work turns run on instead of the seat's: change that model, or end the experiment (remove it from "
    .. "orket.lua: the card goes back to its seat's model); a run's --model overrides it.", model, experiment, experiment)
end

return M
