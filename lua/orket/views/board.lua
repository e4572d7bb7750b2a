-- orket.views.board: the board as data, the orket.board/1 document (docs/store.md) that
-- `orket board --json`, GET /v1/board and the MCP server give, and the cards in tree
-- order the text view prints. Uses orket.board and orket.jsonout.
local jsonout = require "orket.jsonout"
local board_mod = require "orket.board"
local cjson = require "cjson"

local M = {}

local NULL = cjson.null
local FIELDS = { "id", "type", "parent", "name", "summary", "description", "note",
  "requirements", "acceptance", "priority", "seat", "department", "status", "wait_reason",
  "retries", "worked_by", "source", "created_at", "updated_at" }
local CARD = jsonout.shape { "depends_on", table.unpack(FIELDS) }
-- A card as the board read it, marked in place: absent fields are null, other keys left out.
local CARD_ROW = jsonout.shape({ "depends_on", table.unpack(FIELDS) }, { nulls = true })

--- card_json(card) -> the card with arrays marked (the --json card object)
function M.card_json(c)
  local t = { depends_on = jsonout.array(c.depends_on) }
  for i = 1, #FIELDS do
    local k = FIELDS[i]
    local v = c[k]
    -- a hand-edited value JSON cannot hold (a NaN or infinite priority: the API refuses
    -- them on input) is shown as null, not a document that cannot be written
    if v == nil or (type(v) == "number" and (v ~= v or v == math.huge or v == -math.huge)) then v = NULL end
    t[k] = v
  end
  return setmetatable(t, CARD)
end

--- gather(board[, id]) -> cards | nil, msg: the cards shown, the root's (an epic's issues, a
--- rock's epics and theirs) or the board's.
function M.gather(b, id)
  if not id then return b:list {} end
  local root, gerr = b:get(id)
  if not root then return nil, gerr end
  local cards = { root }
  if root.type == "rock" then
    for _, c in ipairs(b:list { rock = id }) do cards[#cards + 1] = c end
  elseif root.type == "epic" then
    for _, c in ipairs(b:list { epic = id }) do cards[#cards + 1] = c end
  end
  return cards
end

--- tree(cards) -> array of {card=, depth=} in tree order: rocks, each rock's epics, each
--- epic's issues; then what has no parent here.
function M.tree(cards)
  local children, ids = {}, {}
  for _, c in ipairs(cards) do ids[c.id] = true end
  for _, c in ipairs(cards) do
    if c.parent and ids[c.parent] then
      children[c.parent] = children[c.parent] or {}
      table.insert(children[c.parent], c)
    end
  end
  local ordered = {}
  local function walk(c, depth)
    ordered[#ordered + 1] = { card = c, depth = depth }
    for _, k in ipairs(children[c.id] or {}) do walk(k, depth + 1) end
  end
  -- Roots: rocks, then epics and issues whose parent is not shown, in creation order.
  local stable = {}
  for _, t in ipairs { "rock", "epic", "issue" } do
    for _, c in ipairs(cards) do
      if c.type == t and not (c.parent and ids[c.parent]) then stable[#stable + 1] = c end
    end
  end
  for _, c in ipairs(stable) do walk(c, 0) end
  return ordered
end

-- The orket.board/1 document of the board (or of epic/rock id).
local function doc(b, id)
  local cards, err = M.gather(b, id)
  if not cards then return nil, err end
  -- the cards were read for this document alone: marked where they are, not copied (a
  -- copy per card was most of the time a 10,000-card board took past its read)
  local list = {}
  for _, e in ipairs(M.tree(cards)) do
    local c = e.card
    c.depends_on = jsonout.array(c.depends_on)
    -- a hand-edited NaN or infinite priority (the API refuses them) is written as null
    local p = c.priority
    if p ~= p or p == math.huge or p == -math.huge then c.priority = nil end
    list[#list + 1] = setmetatable(c, CARD_ROW)
  end
  return { format = "orket.board/1", root = id or cjson.null, cards = jsonout.array(list) }
end

--- json_doc(db [, id]) -> the orket.board/1 document (what --json prints) | nil, msg
function M.json_doc(db, id) return doc(board_mod.open(db), id) end

--- json(board[, id]) -> the --json text of the board (or of epic/rock id) | nil, msg
function M.json(b, id)
  local d, err = doc(b, id)
  if not d then return nil, err end
  return jsonout.encode(d)
end

return M
