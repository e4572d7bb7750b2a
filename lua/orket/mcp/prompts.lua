-- orket.mcp.prompts: the MCP server's prompts (prompts/list, prompts/get) and the completion
-- of their arguments and of its resource templates (completion/complete). A prompt is what a
-- person picks in their MCP client to put a card or the board before their own model; its
-- texts are what the session's resources and board tool give (orket.mcp.server).
local jsonout = require "orket.jsonout"
local board = require "orket.board"
local rpc = require "orket.mcp.jsonrpc"

local M = {}

M.MAX_VALUES = 100 -- the most completion values one answer may carry (MCP's limit)

local function arg(name, description, required)
  return { name = name, description = description, required = required }
end

local PROMPTS = {
  { name = "review_card", title = "Review a card",
    description = "A card in full (description, acceptance, comments, history) and the question whether its work "
      .. "meets its acceptance criteria.",
    arguments = { arg("id", "the card id, such as NOTES-1", true) },
    ask = "Review Orket card %s, given below in full. Does its work meet each of its acceptance criteria? "
      .. "Name what is missing or wrong, and say whether it may move to done." },
  { name = "triage", title = "Triage the board",
    description = "The board, and the question what is blocked or waiting on a person and what to do next.",
    arguments = {},
    ask = "Here is the Orket board. Name each card that is blocked or waiting on a person, why, and the one "
      .. "next step for each; then the cards ready to work, most urgent first." },
}
local BY_NAME = {}
for _, p in ipairs(PROMPTS) do BY_NAME[p.name] = p end

local function bad(msg) return nil, rpc.INVALID_PARAMS, msg end

--- list() -> the prompts as prompts/list gives them
function M.list()
  local out = {}
  for _, p in ipairs(PROMPTS) do
    out[#out + 1] = { name = p.name, title = p.title, description = p.description, arguments = jsonout.array(p.arguments) }
  end
  return out
end

local function text(t) return { role = "user", content = { type = "text", text = t } } end

--- get(session, name, args) -> prompts/get's result | nil, code, message (an unknown prompt,
--- a missing argument or card: invalid params)
function M.get(session, name, args)
  local p = type(name) == "string" and BY_NAME[name]
  if not p then return bad("unknown prompt: " .. tostring(name):sub(1, 128)) end
  if args ~= nil and type(args) ~= "table" then return bad("arguments must be an object") end
  args = args or {}
  if p.name == "review_card" then
    local id = args.id
    if type(id) ~= "string" or id == "" then return bad("review_card needs the argument id (a card id)") end
    local uri = "orket://cards/" .. id
    local card = session:resource_text(uri)
    if not card then return bad("no card " .. id:sub(1, 128)) end
    return { description = p.description, messages = jsonout.array {
      text(string.format(p.ask, id)),
      { role = "user", content = { type = "resource", resource = { uri = uri, mimeType = "application/json", text = card } } },
    } }
  end
  local shown, err = session:tool_text("board", {})
  if not shown then return nil, rpc.INTERNAL_ERROR, err end
  return { description = p.description, messages = jsonout.array { text(p.ask), text(shown) } }
end

-- Card ids beginning with prefix (any case), in board order: the first MAX_VALUES, the count
local function card_ids(db, prefix)
  local values, total = {}, 0
  prefix = prefix:upper()
  for _, c in ipairs(board.open(db):list {}) do
    if c.id:upper():sub(1, #prefix) == prefix then
      total = total + 1
      if #values < M.MAX_VALUES then values[#values + 1] = c.id end
    end
  end
  return values, total
end

--- complete(session, ref, argument) -> completion/complete's result | nil, code, message.
--- A card id is completed for review_card's id and orket://cards/{id}; any other argument
--- of a known prompt or template has no values.
function M.complete(session, ref, argument)
  if type(ref) ~= "table" or type(argument) ~= "table" or type(argument.name) ~= "string"
    or type(argument.value) ~= "string" then
    return bad("completion/complete needs ref and argument {name, value}")
  end
  local cards
  if ref.type == "ref/prompt" then
    local p = BY_NAME[ref.name]
    if type(ref.name) ~= "string" then return bad("ref.name must be a string (a prompt's name)") end
    if not p then return bad("unknown prompt: " .. ref.name:sub(1, 128)) end
    cards = p.name == "review_card" and argument.name == "id"
  elseif ref.type == "ref/resource" then
    -- (a number is said as a type, never as the float lua-cjson read: 5 is not "5.0")
    if type(ref.uri) ~= "string" then return bad("ref.uri must be a string (a resource template)") end
    if ref.uri ~= "orket://cards/{id}" and ref.uri ~= "orket://runs/{id}/transcript" then
      return bad("unknown resource template: " .. ref.uri:sub(1, 128))
    end
    cards = ref.uri == "orket://cards/{id}" and argument.name == "id"
  else
    return bad("ref.type must be ref/prompt or ref/resource")
  end
  local values, total = {}, 0
  if cards then values, total = card_ids(session.db, argument.value:sub(1, 128)) end
  return { completion = { values = jsonout.array(values), total = total, hasMore = total > #values } }
end

return M
