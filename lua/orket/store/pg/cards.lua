-- orket.store.pg.cards: orket.store.cards' operations on PostgreSQL.
local M = {}

function M.exists(db, id)
  return db:row("SELECT 1 AS x FROM cards WHERE id = $1", id) ~= nil
end

function M.is_issue(db, id)
  return db:row("SELECT id FROM cards WHERE id = $1 AND type = 'issue'", id) ~= nil
end

return M
