-- orket.card: a card as a plain value, what orket.board and the ready order (orket.ready)
-- both need of it: the statuses it does not leave by itself, and a copy a caller may edit.
-- Uses nothing but its C copy: it sits below both, so neither has to require the other for it.
local M = {}

-- The statuses a card does not leave by itself.
M.FINAL = { done = true, canceled = true, archived = true }

--- copy(c) -> a copy of c (every field) with its own depends_on (the board's cache and the
--- ready order hand out copies, so a caller's edits never reach what they keep). In C
--- (core/lcard.c): the board's hottest read, several a turn.
M.copy = require("orket.c.card").copy

return M
