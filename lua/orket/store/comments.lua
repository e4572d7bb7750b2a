-- orket.store.comments: the comments on cards as named operations op(db, ...) -> plain
-- Lua values. A comment is {id, card, author, body, created_at}. A failing statement raises.
local store = require "orket.store"

local M = {}

local INSERT = "INSERT INTO comments (card_id, author, body, created_at) VALUES (?, ?, ?, " .. store.NOW .. ")"

--- insert(db, card, author, body) -> the new comment's id (written now)
function M.insert(db, card, author, body)
  local _, id = assert(db:run(INSERT, card, author, body))
  return id
end

--- get(db, id) -> the comment | nil
function M.get(db, id)
  return db:row("SELECT id, card_id AS card, author, body, created_at FROM comments WHERE id = ?", id)
end

--- of_card(db, card) -> the card's comments, oldest first
function M.of_card(db, card)
  return assert(db:rows("SELECT id, card_id AS card, author, body, created_at FROM comments "
    .. "WHERE card_id = ? ORDER BY id", card))
end

return require("orket.store.backend").twin("comments", M)
