-- orket.serve.body: a request body read as JSON, for routes that take one: capped by the
-- server (413), valid UTF-8, decoded by cjson nesting at most MAX_DEPTH deep, numbers as
-- RFC 8259 spells them, no key twice in one object, an object.
local cjson = require "cjson.safe"
local jsondup = require "orket.c.jsondup"
local jsonwhy = require "orket.jsonwhy"

local M = {}

M.MAX_DEPTH = 32

-- cjson stops at the level past MAX_DEPTH: a deeply nested document costs its first
-- levels, not a scan of the whole body in Lua first (a megabyte of brackets, or of short
-- strings, took the server's loop half a second, with no key needed)
local dec = cjson.new()
dec.decode_max_depth(M.MAX_DEPTH)
-- cjson's own reading of numbers takes 0x2, 010, +5, NaN and Infinity, which no JSON parser
-- in front (a gateway's, an audit's) reads the same: refused, as MCP's door refuses them
-- (orket.mcp.jsonrpc)
dec.decode_invalid_numbers(false)

--- decode(text) -> value | nil, why, too_deep: JSON nested at most MAX_DEPTH deep
function M.decode(text)
  -- an empty body (curl -X POST with no -d) is the usual mistake on routes whose fields are
  -- all optional: said so, with what to send instead
  if not text:find("%S") then return nil, "the body is empty: send a JSON object ({} when no field is given)" end
  local v, derr = dec.decode(text)
  if v ~= nil then return v end
  if tostring(derr):find("too many nested", 1, true) then
    return nil, "the body nests deeper than " .. M.MAX_DEPTH .. " levels", true
  end
  return nil, "the body is not JSON: " .. jsonwhy.why(derr, "the body")
end

-- whether a decoded body holds a NUL byte in a string or a member's name (its depth is
-- capped before it is decoded)
local function has_nul(v)
  if type(v) == "string" then return v:find("\0", 1, true) ~= nil end
  if type(v) ~= "table" then return false end
  for k, x in pairs(v) do
    if has_nul(k) or has_nul(x) then return true end
  end
  return false
end

--- is_object(text) -> whether the JSON text, which decoded, is an object: cjson decodes []
--- and {} alike (an empty table), so its first byte tells them apart
function M.is_object(text)
  return text:match("^[ \t\r\n]*{") ~= nil
end

-- what a body that is JSON but no object is told, on every route that reads one as JSON
M.NOT_OBJECT = "the body must be a JSON object ({} when no field is given)"

--- failure(code, message) -> status, code, message: req:body()'s failure as the answer (its
--- refusal was sent already when the body was refused while it came: this is the log's)
function M.failure(code, message)
  if code == "E2BIG" then return 413, "too_large", message end
  if code == "EBUSY" then return 503, "busy", message end
  -- the server stopped while the body came: the client was sent 503, which the log says
  if code == "ESHUTDOWN" then return 503, "unavailable", message end
  if code == "ETIMEDOUT" then return 408, "timeout", message end
  return 400, "bad_request", message
end

--- json(req[, max]) -> object | nil, status, code, message: waits for the body (req:body()),
--- at most max bytes when given (413 past it); an array or a scalar is refused. A
--- text holding a NUL byte ("\u0000") is refused here, the same on both backends:
--- PostgreSQL's text cannot keep one, and its refusal in a write's transaction read as the
--- server's failure.
function M.json(req, max)
  local text, err, code = req:body()
  if not text then return nil, M.failure(code, err) end
  -- a route's own cap (its documents are small): over it, never decoded
  if max and #text > max then return nil, 413, "too_large", "the body is larger than this route takes (" .. max .. " bytes)" end
  if not utf8.len(text) then return nil, 400, "bad_json", "the body is not valid UTF-8" end
  local v, derr = M.decode(text)
  if v == nil then return nil, 400, "bad_json", derr end
  local code, why = M.refusal(text, v)
  if code then return nil, 400, code, why end
  if type(v) ~= "table" or not M.is_object(text) then return nil, 400, "bad_request", M.NOT_OBJECT end
  return v
end

--- refusal(text, v[, what]) -> nil | code, message, key: why the JSON text, decoded as v,
--- is refused although it decoded: a NUL in a text (bad_request) or a key given twice in
--- one object (bad_json, and the key). what names the text ("the body"; MCP's doors say
--- "the message"): every door that takes JSON from a client reads it the same way.
function M.refusal(text, v, what)
  what = what or "the body"
  if text:find("\\u0000", 1, true) and has_nul(v) then return "bad_request", "a text of " .. what .. " holds a NUL byte (\\u0000)" end
  -- a key given twice: cjson keeps the last copy, where a proxy, a gateway's check or an
  -- audit in front may have read the first (two readings of one request); refused, naming
  -- it (yajl's reading, orket.c.jsondup: keys compared unescaped), once cjson took it
  if type(v) == "table" then
    local at, key = jsondup.duplicate_key(text)
    if at then
      return "bad_json", what .. " gives the key " .. cjson.encode(key):gsub("\\/", "/") .. " twice in one object", key
    end
  end
end

--- without_nulls(schema, value) -> value without the members that are null and that the
--- object schema does not require: an optional field sent as null is absent, as many
--- clients write one they have no value for (the OpenAPI document says so: openapi.lua).
--- A required member sent as null stays, for the schema to refuse.
function M.without_nulls(schema, value)
  if type(value) ~= "table" or type(schema) ~= "table" or schema.type ~= "object" then return value end
  local required = {}
  for _, k in ipairs(schema.required or {}) do required[k] = true end
  local out = {}
  for k, v in pairs(value) do
    if not (v == cjson.null and not required[k]) then out[k] = v end
  end
  return setmetatable(out, getmetatable(value))
end

return M
