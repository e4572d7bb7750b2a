-- orket.store.comments: the comments on cards as named operations op(db, ...) -> plain
-- Lua values. A comment is {id, card, author, body, created_at}. A failing statement raises.
-- Written once for both backends (orket.store.dialect).
local dialect = require "orket.store.dialect"

local M = {}
local sql = dialect.statement

local function columns(d) return "id, card_id AS card, author, body, " .. d.time("created_at") end
-- built once per dialect (a turn reads its card's comments): a text made per call misses the
-- store's statement cache's quick find, by the text's address
local OF_CARD = sql(function(d) return "SELECT " .. columns(d) .. " FROM comments WHERE card_id = ? ORDER BY id" end)

--- insert(db, card, author, body) -> the new comment's id (written now)
function M.insert(db, card, author, body)
  local d = db.dialect
  local _, id = assert(db:run("INSERT INTO comments (card_id, author, body, created_at) VALUES (?, ?, ?, " .. d.now
    .. ")" .. d.returning_id, card, author, body))
  return id
end

--- get(db, id) -> the comment | nil
function M.get(db, id)
  return db:row("SELECT " .. columns(db.dialect) .. " FROM comments WHERE id = ?", id)
end

--- of_card(db, card) -> the card's comments, oldest first
function M.of_card(db, card)
  return assert(db:rows(OF_CARD(db), card))
end

return M
