-- orket.serve.body: a request body read as JSON, for routes that take one: capped by the
-- server (413), valid UTF-8, nesting at most MAX_DEPTH deep (checked before decoding, so a
-- deeply nested document costs a scan, not a recursion), then decoded by cjson.
local cjson = require "cjson.safe"

local M = {}

M.MAX_DEPTH = 32

--- depth(text) -> the deepest nesting of [ and { outside strings
function M.depth(text)
  local d, max, i, n = 0, 0, 1, #text
  while i <= n do
    local s = text:find('[%[{%]}"]', i)
    if not s then break end
    local c = text:sub(s, s)
    if c == '"' then -- skip the string, escapes included
      local j = s + 1
      while true do
        local q = text:find('["\\]', j)
        if not q then return max end
        if text:sub(q, q) == "\\" then j = q + 2 else i = q + 1 break end
      end
    else
      if c == "[" or c == "{" then
        d = d + 1
        if d > max then max = d end
      else
        d = d - 1
      end
      i = s + 1
    end
  end
  return max
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

--- json(req) -> value | nil, status, code, message: waits for the body (req:body()). A
--- text holding a NUL byte ("\u0000") is refused here, the same on both backends:
--- PostgreSQL's text cannot keep one, and its refusal in a write's transaction read as the
--- server's failure.
function M.json(req)
  local text, err, code = req:body()
  if not text then
    if code == "E2BIG" then return nil, 413, "too_large", err end
    if code == "ETIMEDOUT" then return nil, 408, "timeout", err end
    return nil, 400, "bad_request", err
  end
  if not utf8.len(text) then return nil, 400, "bad_json", "the body is not valid UTF-8" end
  if M.depth(text) > M.MAX_DEPTH then
    return nil, 400, "bad_json", "the body nests deeper than " .. M.MAX_DEPTH .. " levels"
  end
  local v, derr = cjson.decode(text)
  if v == nil then return nil, 400, "bad_json", "the body is not JSON: " .. tostring(derr) end
  if text:find("\\u0000", 1, true) and has_nul(v) then return nil, 400, "bad_request", "a text of the body holds a NUL byte (\\u0000)" end
  return v
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
