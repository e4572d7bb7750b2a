-- orket.card: a card as a plain value, what orket.board and the ready order (orket.ready)
-- both need of it: the statuses it does not leave by itself, and a copy a caller may edit.
-- Uses nothing: it sits below both, so neither has to require the other for it.
local M = {}

-- The statuses a card does not leave by itself.
M.FINAL = { done = true, canceled = true, archived = true }

--- copy(c) -> a copy of c with its own depends_on (the board's cache and the ready order
--- hand out copies, so a caller's edits never reach what they keep)
function M.copy(c)
  -- sized at once for a card's usual fields (these 12 and the few set ones of the rest fit
  -- its 16 slots): grown key by key from empty, a copy was rehashed four times over, garbage
  -- of the board's hottest read. The loop then copies every field, these included.
  local out = { id = c.id, type = c.type, parent = c.parent, summary = c.summary, description = c.description,
    priority = c.priority, seat = c.seat, status = c.status, retries = c.retries, source = c.source,
    created_at = c.created_at, updated_at = c.updated_at }
  for k, v in next, c do out[k] = v end
  local deps = {}
  for i, d in ipairs(c.depends_on) do deps[i] = d end
  out.depends_on = deps
  return out
end

return M
