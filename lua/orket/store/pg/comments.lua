-- orket.store.pg.comments: orket.store.comments' operations on PostgreSQL (same names and
-- shapes: times as ISO text).
local iso = require("orket.store.pgdb").iso

local M = {}

local COLUMNS = "id, card_id AS card, author, body, " .. iso("created_at")

function M.insert(db, card, author, body)
  local _, id = assert(db:run("INSERT INTO comments (card_id, author, body, created_at) VALUES ($1, $2, $3, now()) "
    .. "RETURNING id", card, author, body))
  return id
end

function M.get(db, id)
  return db:row("SELECT " .. COLUMNS .. " FROM comments WHERE id = $1", id)
end

function M.of_card(db, card)
  return assert(db:rows("SELECT " .. COLUMNS .. " FROM comments WHERE card_id = $1 ORDER BY id", card))
end

return M
