-- orket.engine.schemas: read-only views of the tool registry's parameter schemas for role
-- scripts (orket.scriptenv.freeze), and the way back to plain tables for trusted code. Roles
-- see ctx.tools every step; copying fourteen schemas was most of the cost of a role's call.
local scriptenv = require "orket.scriptenv"

local M = {}

-- view -> the schema it shows. Weak both ways: the registry owns the schemas, and the
-- sandbox caches one view per schema, so an entry lives as long as its registry.
local plain_of = setmetatable({}, { __mode = "kv" })

-- schema -> its view, found in one look-up: roles see every tool's schema at every step
-- (freeze's own look-ups and the entry above for each were a third of the tools' cost).
-- Weak keys: an entry lives as long as its registry's schema.
local view_of = setmetatable({}, { __mode = "k" })

--- view(schema) -> a read-only view of schema (the same view every time)
function M.view(schema)
  local v = view_of[schema]
  if v then return v end
  v = scriptenv.freeze(schema)
  plain_of[v] = schema
  view_of[schema] = v
  return v
end

-- A frozen table this module did not hand out (a part of a schema, say): rebuilt through
-- its __pairs, which sees the real fields.
local function thaw(v, depth)
  if depth > 64 then error("schema too deep", 0) end
  local out = {}
  for k, x in pairs(v) do
    out[k] = type(x) == "table" and (plain_of[x] or thaw(x, depth + 1)) or x
  end
  return out
end

--- plain(v) -> a plain table with what v shows: the schema itself for a view from view(),
--- a rebuilt copy for another read-only view, v for anything else. For trusted code that
--- reads tables raw (cjson).
function M.plain(v)
  if type(v) ~= "table" then return v end
  local p = plain_of[v]
  if p then return p end
  if scriptenv.is_frozen(v) then return thaw(v, 1) end
  return v
end

--- tools(specs) -> a fresh array of fresh {name=, description=, parameters=<view>} for a
--- role's ctx: the role may change the list and its entries, never the registry's schemas.
function M.tools(specs)
  -- sized at once (the array part grown entry by entry was five reallocations a step)
  local out = { table.unpack(specs) }
  for i = 1, #out do
    local s = out[i]
    local p = s.parameters
    -- a schema seen before is found here without a call (every step sees the same ones)
    out[i] = { name = s.name, description = s.description,
      parameters = view_of[p] or (type(p) == "table" and M.view(p) or p) }
  end
  return out
end

return M
