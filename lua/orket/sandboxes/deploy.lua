-- orket.sandboxes.deploy: a sandbox started on its own after a merge, by sandbox.deploy
-- (docs/sandbox.md): "merge" after each merged card, "epic" once the card's epic has every
-- issue done, "rock" once its rock has, "manual" never. The new sandbox replaces the live
-- one of main and is owned by a process of its own (`orket sandbox up --replace` in the
-- background), so it outlives the run that merged. A merge that finishes a rock also
-- opens its bug-fix phase (orket.sandboxes.phase). Uses orket.sandboxes.plan and service.
local plan = require "orket.sandboxes.plan"
local service = require "orket.sandboxes.service"
local phase = require "orket.sandboxes.phase"

local M = {}

-- the ancestor of card of the given type | nil
local function ancestor(board, card, kind)
  local c, guard = card, 0
  while c and c.type ~= kind and c.parent and guard < 8 do
    c = board:get(c.parent)
    guard = guard + 1
  end
  return c and c.type == kind and c or nil
end

-- every issue under the epic or rock is done
local function all_done(board, scope, kind)
  local q = { type = "issue" }
  q[kind] = scope.id
  local issues = board:list(q) or {}
  if #issues == 0 then return false end
  for _, c in ipairs(issues) do
    if c.status ~= "done" then return false end
  end
  return true
end

--- due(mode, board, card_id) -> the reason a sandbox is due now (text) | nil
function M.due(mode, board, card_id)
  if mode == "merge" then return card_id .. " merged" end
  if mode ~= "epic" and mode ~= "rock" then return nil end
  local card = board:get(card_id)
  local scope = card and ancestor(board, card, mode)
  if scope and all_done(board, scope, mode) then return string.format("%s %s done", mode, scope.id) end
  return nil
end

--- after_merge_at(dir, settings, board, card_id) -> {reason=, owner_pid=, error=} | nil:
--- starts a sandbox of the project in dir when settings.sandbox.deploy says one is due after
--- card_id's merge (by a run, a worker, or `orket serve` on a forge's webhook)
function M.after_merge_at(dir, settings, board, card_id)
  -- the merge that finishes a rock opens its bug-fix phase; a failure waits for the next
  -- tick (orket serve's, the next run's), which opens it too
  pcall(phase.after_done, board, card_id, { settings = settings and settings.bug_fix })
  local s = settings and settings.sandbox
  if not s or s.deploy == "manual" or not dir then return nil end
  local why = M.due(s.deploy, board, card_id)
  if not why then return nil end
  -- what would run is checked here, where the run can say so: the owner in the background
  -- has no one to tell
  local ws, werr = require("orket.workspace").open(dir .. "/workspace")
  local p, perr = nil, werr
  if ws then
    p, perr = plan.detect(ws, s)
    ws:close()
  end
  if not p then return { reason = why, error = "no sandbox started: " .. tostring(perr) } end
  local pid, err = service.start_owner(dir, { replace = true })
  return { reason = why, owner_pid = pid, error = err }
end

--- after_merge(run, card_id): as after_merge_at for a run's merge; says so in its events
function M.after_merge(r, card_id)
  local d = M.after_merge_at(r.project_dir, r.settings, r.board, card_id)
  if d then r:emit { type = "sandbox", action = "deploy", card = card_id, reason = d.reason, owner_pid = d.owner_pid,
    error = d.error } end
end

return M
