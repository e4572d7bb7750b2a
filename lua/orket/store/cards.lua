-- orket.store.cards: reads of the cards table that modules other than the board need, as
-- named operations op(db, ...) -> plain Lua values.
local M = {}

--- exists(db, id) -> true when a card with that id exists
function M.exists(db, id)
  return db:row("SELECT 1 AS x FROM cards WHERE id = ?", id) ~= nil
end

--- is_issue(db, id) -> true when the card exists and is an issue
function M.is_issue(db, id)
  return db:row("SELECT id FROM cards WHERE id = ? AND type = 'issue'", id) ~= nil
end

return require("orket.store.backend").twin("cards", M)
