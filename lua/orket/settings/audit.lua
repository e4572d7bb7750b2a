-- orket.settings.audit: orket.lua's audit section (docs/audit.md), how often checkpoints are signed
-- and how long entries are kept:
--   audit = { checkpoint_every = 16, retention_days = 365 }
-- checkpoint_every: sign a checkpoint once that many entries follow the last signed one;
-- retention_days: entries older than that are removed, whole, at a checkpoint, with a
-- signed record of the removal (none: kept for ever). Checked as every other section.
local M = {}

M.DEFAULT_CHECKPOINT_EVERY = 16
M.MAX_CHECKPOINT_EVERY = 100000
M.MAX_RETENTION_DAYS = 36500

local function fail(path, fmt, ...)
  error({ settings_error = "orket.lua: " .. path .. ": " .. string.format(fmt, ...) }, 0)
end

local function whole(v, path, lo, hi)
  if math.type(v) ~= "integer" or v < lo or v > hi then
    fail(path, "must be a whole number from %d to %d (got %s)", lo, hi, tostring(v))
  end
  return v
end

--- section(src) -> {checkpoint_every=, retention_days=|nil}; raises {settings_error=}
function M.section(src)
  local out = { checkpoint_every = M.DEFAULT_CHECKPOINT_EVERY }
  if src == nil then return out end
  if type(src) ~= "table" then fail("audit", "must be a table (fields: checkpoint_every, retention_days)") end
  for k, v in pairs(src) do
    local p = "audit." .. tostring(k)
    if k == "checkpoint_every" then
      out.checkpoint_every = whole(v, p, 1, M.MAX_CHECKPOINT_EVERY)
    elseif k == "retention_days" then
      out.retention_days = whole(v, p, 1, M.MAX_RETENTION_DAYS)
    else
      fail(p, "unknown setting (known: checkpoint_every, retention_days)")
    end
  end
  return out
end

return M
