-- orket.mcp.jsonrpc: JSON-RPC 2.0 messages as MCP carries them (one JSON object per
-- message; a batch only where a 2025-03-26 session takes one): decoding a message with its
-- kind, the standard error codes, and encoding one message as one line. Uses lua-cjson
-- (cjson.safe) and orket.jsonout.
local cjson = require "cjson.safe"
local jsonout = require "orket.jsonout"
local jsonwhy = require "orket.jsonwhy"

local M = {}

M.PARSE_ERROR, M.INVALID_REQUEST, M.METHOD_NOT_FOUND = -32700, -32600, -32601
M.INVALID_PARAMS, M.INTERNAL_ERROR = -32602, -32603

-- The largest message either side takes: a line longer than this is refused unread.
M.MAX_MESSAGE = 4 * 1024 * 1024
-- Nesting deeper than this is refused (lua-cjson's own limit is 1000, and a hostile peer's
-- deep arrays cost the walkers after it).
M.MAX_DEPTH = 128
-- The most messages one batch may hold.
M.MAX_BATCH = 100

local null = cjson.null
M.null = null

local dec = cjson.new()
dec.decode_max_depth(M.MAX_DEPTH)
dec.decode_invalid_numbers(false)

-- lua-cjson reads every number as a float: a whole one below 2^53 is the integer id it was
-- sent as. From 2^53 on the float may be another number (2^53 + 1 reads as 2^53): such an
-- id is refused rather than answered as one the client never sent.
local function norm_id(id)
  if type(id) == "string" then return #id <= 256 and id or nil end
  return type(id) == "number" and math.abs(id) < 2 ^ 53 and math.tointeger(id) or nil
end

-- The JSON value of a message's text | nil, error object.
local function parse(text)
  if #text > M.MAX_MESSAGE then
    return nil, { code = M.INVALID_REQUEST, message = "message larger than " .. M.MAX_MESSAGE .. " bytes" }
  end
  -- JSON is UTF-8 (RFC 8259 §8.1), and the HTTP API refuses a body that is not: lua-cjson
  -- would pass the bytes through into the board
  if not utf8.len(text) then return nil, { code = M.PARSE_ERROR, message = "not JSON: the message is not valid UTF-8" } end
  local v, derr = dec.decode(text)
  if v == nil then return nil, { code = M.PARSE_ERROR, message = "not JSON: " .. jsonwhy.why(derr, "the message") } end
  return v
end

local classify

--- decode(text) -> msg, kind | nil, error object (with the id when one could be read, and
--- method = true when the message was a request or a notification: that id is the sender's).
--- kind: "request" (method, id), "notification" (method, no id), "response" (id, result or
--- error). An array (a batch) is refused: MCP since 2025-06-18 carries none (decode_batch).
function M.decode(text)
  if type(text) ~= "string" then error("bad argument #1 to 'decode' (string expected, got " .. type(text) .. ")", 2) end
  local v, perr = parse(text)
  if v == nil then return nil, perr end
  if type(v) == "table" and (v[1] ~= nil or (next(v) == nil and M.is_batch(text))) then
    -- 2025-03-26 had batches (a session of it reads them: decode_batch); the later revisions do not
    return nil, { code = M.INVALID_REQUEST, message = "batches are not part of MCP since 2025-06-18: send one message at a time" }
  end
  return classify(v)
end

--- is_batch(text) -> whether text is a JSON array (a batch), by its first character
function M.is_batch(text) return text:match("^%s*%[") ~= nil end

--- decode_batch(text) -> {{msg=, kind=} | {err = error object}...} | nil, error object: a
--- JSON-RPC batch (2025-03-26), each entry decoded as decode does; an empty one, one of more
--- than MAX_BATCH messages or not an array is an error for the whole.
function M.decode_batch(text)
  if type(text) ~= "string" then error("bad argument #1 to 'decode_batch' (string expected, got " .. type(text) .. ")", 2) end
  local v, perr = parse(text)
  if v == nil then return nil, perr end
  if type(v) ~= "table" or v[1] == nil then return nil, { code = M.INVALID_REQUEST, message = "a batch is a non-empty JSON array" } end
  if #v > M.MAX_BATCH then
    return nil, { code = M.INVALID_REQUEST, message = "a batch holds at most " .. M.MAX_BATCH .. " messages" }
  end
  local out = {}
  for i, x in ipairs(v) do
    local msg, kind = classify(x)
    out[i] = msg and { msg = msg, kind = kind } or { err = kind }
  end
  return out
end

-- One decoded value as a message: msg, kind | nil, error object.
function classify(v)
  if type(v) ~= "table" or v[1] ~= nil then return nil, { code = M.INVALID_REQUEST, message = "a message is a JSON object" } end
  local id = v.id
  if id ~= nil and id ~= null then
    id = norm_id(id)
    if id == nil then return nil, { code = M.INVALID_REQUEST, message = "id must be a string or an integer" } end
    v.id = id
  end
  if v.jsonrpc ~= "2.0" then return nil, { code = M.INVALID_REQUEST, message = 'jsonrpc must be "2.0"', id = id } end
  if v.method ~= nil then
    if type(v.method) ~= "string" or #v.method > 256 then
      return nil, { code = M.INVALID_REQUEST, message = "method must be a short string", id = id, method = true }
    end
    if v.params ~= nil and type(v.params) ~= "table" then
      return nil, { code = M.INVALID_REQUEST, message = "params must be an object", id = id, method = true }
    end
    if id == nil then return v, "notification" end
    if id == null then return nil, { code = M.INVALID_REQUEST, message = "id must not be null" } end
    return v, "request"
  end
  if id == nil or id == null then return nil, { code = M.INVALID_REQUEST, message = "a response needs an id" } end
  if (v.result == nil) == (v.error == nil) then
    return nil, { code = M.INVALID_REQUEST, message = "a response has a result or an error", id = id }
  end
  if v.error ~= nil then
    -- lua-cjson gives every number as a float: a whole one is the integer code it was sent as
    local code = type(v.error) == "table" and type(v.error.code) == "number" and math.tointeger(v.error.code)
    if not code then
      return nil, { code = M.INVALID_REQUEST, message = "a response's error needs an integer code", id = id }
    end
    v.error.code = code
  end
  return v, "response"
end

--- encode(msg) -> one line of JSON (no newline inside; JSON escapes them)
function M.encode(msg)
  msg.jsonrpc = "2.0"
  return jsonout.encode(msg)
end

function M.result(id, result) return { jsonrpc = "2.0", id = id, result = result } end

function M.error(id, code, message, data)
  return { jsonrpc = "2.0", id = id == nil and null or id, error = { code = code, message = message, data = data } }
end

function M.request(id, method, params) return { jsonrpc = "2.0", id = id, method = method, params = params } end

function M.notification(method, params) return { jsonrpc = "2.0", method = method, params = params } end

return M
