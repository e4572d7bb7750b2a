-- orket.jsonout: JSON for stable, documented output (`--json`): object keys sorted, so the
-- same data always prints the same bytes; strings and numbers are encoded by lua-cjson.
-- Arrays are tables marked with array() or with elements at 1..n; nil fields are left out
-- unless set to cjson's null.
local cjson = require "cjson.safe"

local M = {}
local ARRAY = {}

--- array(t) -> t, marked to encode as an array even when empty
function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

local function enc(v, out)
  local ty = type(v)
  if v == cjson.null or ty == "nil" then
    out[#out + 1] = "null"
  elseif ty == "table" then
    if getmetatable(v) == ARRAY or (#v > 0 and next(v, #v) == nil) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        enc(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("jsonout: object keys must be strings", 0) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = assert(cjson.encode(k))
        out[#out + 1] = ":"
        enc(v[k], out)
      end
      out[#out + 1] = "}"
    end
  elseif ty == "string" or ty == "number" or ty == "boolean" then
    local s, err = cjson.encode(v)
    if not s then error("jsonout: " .. err, 0) end
    out[#out + 1] = s
  else
    error("jsonout: cannot encode a " .. ty, 0)
  end
end

--- encode(v) -> string
function M.encode(v)
  local out = {}
  enc(v, out)
  return table.concat(out)
end

return M
