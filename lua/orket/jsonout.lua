-- orket.jsonout: JSON for stable, documented output (`--json`): object keys sorted, so the
-- same data always prints the same bytes; strings and numbers are encoded by lua-cjson.
-- Arrays are tables marked with array() or with elements at 1..n; nil fields are left out
-- unless set to cjson's null. Every `--json` output of the CLI goes through encode.
local cjson = require "cjson.safe"

local M = {}
local ARRAY = {}

-- "/" comes out plain ("a/b", not "a\/b"): paths and URLs read better, and both are
-- valid JSON. lua-cjson 2.1.0 (Debian 12) has no encode_escape_forward_slash and always
-- writes "\/"; undoing that on its output for one string is exact, as it never writes a
-- bare "/", so every "\/" in it is the escape of one "/" (a backslash is "\\", and a
-- "\\" before a "\/" stays). A lua-cjson that has the switch is told instead (the undoing
-- would then be wrong). Our own instance: other users of cjson keep its defaults.
local json = cjson.new()
local UNESCAPE_SLASH = true
if json.encode_escape_forward_slash then
  json.encode_escape_forward_slash(false)
  UNESCAPE_SLASH = false
end

-- lua-cjson escapes C0 controls and DEL but writes C1 controls and the invisible format
-- characters (bidi overrides, zero-width spaces: orket.inert's list) as they are, and a
-- terminal acts on some of them: they are written \uXXXX, which decodes to the same
-- string. Bytes that are not UTF-8 (which JSON text cannot hold) become \ufffd, the
-- replacement character, so the output stays JSON a strict reader accepts.
local inert = require "orket.inert"
local function u_escape(cp)
  if cp < 0x10000 then return string.format("\\u%04x", cp) end
  cp = cp - 0x10000
  return string.format("\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff))
end

local function non_ascii(run)
  local out, i = {}, 1
  while i <= #run do
    local len, cp = inert.decode(run, i)
    if not len then
      out[#out + 1], i = "\\ufffd", i + 1
    elseif inert.invisible(cp) then
      out[#out + 1], i = u_escape(cp), i + len
    else
      out[#out + 1], i = run:sub(i, i + len - 1), i + len
    end
  end
  return table.concat(out)
end

-- Bytes lua-cjson escapes, or that need the care below: a string without any is written
-- as it is, between quotes, with no call into cjson (most ids, names and statuses).
local SPECIAL = "[\0-\31\"\\/\127-\255]"
local find = string.find

local function scalar(v)
  if type(v) == "string" and not v:find(SPECIAL) then return '"' .. v .. '"' end
  local s, err = json.encode(v)
  if not s then error("jsonout: " .. err, 0) end
  if type(v) == "string" then
    if UNESCAPE_SLASH then s = M.plain(s) end
    if s:find("[\128-\255]") then s = s:gsub("[\128-\255]+", non_ascii) end
  end
  return s
end

--- plain(text) -> JSON text that lua-cjson (any instance with its defaults) wrote, with its
--- "\/" written "/": exact for the reason above. For JSON encoded elsewhere with cjson, to
--- be read by a person or a model (orket log, tool results).
function M.plain(text)
  return (text:gsub("\\/", "/"))
end

--- array(t) -> t, marked to encode as an array even when empty
function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

--- shape(keys) -> a metatable for tables that hold only (some of) these string keys: such
--- a table encodes to the same bytes as an unmarked one, without sorting its keys each
--- time (for many objects of one kind, like a board's cards).
function M.shape(keys)
  local sorted = {}
  for i, k in ipairs(keys) do sorted[i] = k end
  table.sort(sorted)
  local prefix, later = {}, {}
  for i, k in ipairs(sorted) do
    prefix[i] = scalar(k) .. ":"
    later[i] = "," .. prefix[i]
  end
  return { keys = sorted, prefix = prefix, later = later }
end

local function enc(v, out)
  local ty = type(v)
  if v == cjson.null or ty == "nil" then
    out[#out + 1] = "null"
  elseif ty == "table" then
    local mt = getmetatable(v)
    if mt ~= nil and rawget(mt, "keys") then
      local keys, later = mt.keys, mt.later
      out[#out + 1] = "{"
      local p = mt.prefix
      for i = 1, #keys do
        local x = v[keys[i]]
        if x ~= nil then
          local n = #out
          out[n + 1] = p[i]
          p = later
          -- a plain string goes in as three pieces, not copied into a quoted one
          if type(x) == "string" and not find(x, SPECIAL) then
            out[n + 2] = '"'
            out[n + 3] = x
            out[n + 4] = '"'
          else
            enc(x, out)
          end
        end
      end
      out[#out + 1] = "}"
    elseif mt == ARRAY or (#v > 0 and next(v, #v) == nil) then
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
        out[#out + 1] = scalar(k)
        out[#out + 1] = ":"
        enc(v[k], out)
      end
      out[#out + 1] = "}"
    end
  elseif ty == "string" or ty == "number" or ty == "boolean" then
    out[#out + 1] = scalar(v)
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
