-- orket.jsonout: JSON for stable, documented output (`--json`): object keys sorted, so the
-- same data always prints the same bytes; "/" plain; C0 controls and DEL escaped as
-- lua-cjson escapes them, C1 controls and invisible format characters (orket.inert's list)
-- as \uXXXX, bytes that are not UTF-8 as \ufffd; numbers as lua-cjson writes them.
-- Arrays are tables marked with array() or with elements at 1..n; nil fields are left out
-- unless set to cjson's null. Every `--json` output of the CLI goes through encode. The
-- walk and the bytes are C (core/ljsonout.c, core/jsonout.c): in Lua, a whole board's JSON
-- took several times the read of its rows.
local cjsonout = require "orket.c.jsonout"

local M = {}
local ARRAY = {}

--- plain(text) -> JSON text that lua-cjson (any instance with its defaults) wrote, with its
--- "\/" written "/". lua-cjson 2.1.0 (Debian 12) always writes "\/" and never a bare "/",
--- so every "\/" in its output is the escape of one "/" (a backslash is "\\", and a "\\"
--- before a "\/" stays): the undoing is exact. For JSON encoded elsewhere with cjson, to be
--- read by a person or a model (orket log, tool results).
function M.plain(text)
  return (text:gsub("\\/", "/"))
end

--- is_array(v) -> whether v is a table with only the keys 1..#v: a JSON array as lua-cjson
--- decodes one (an empty object reads the same, and is taken for one)
function M.is_array(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for k in pairs(v) do
    if math.type(k) ~= "integer" then return false end
    n = n + 1
  end
  return n == #v
end

--- array(t) -> t, marked to encode as an array even when empty
function M.array(t)
  return setmetatable(t or {}, ARRAY)
end

--- shape(keys [, opts]) -> a metatable for objects of one kind (like a board's cards):
--- a table marked with it encodes as an object of exactly these string keys, sorted once
--- here rather than per table; its other keys are left out. An absent (nil) key is left
--- out too, or written null with opts.nulls (a row marked as it is, with no copy that
--- fills in cjson's null), so a table holding only these keys encodes to the bytes of the
--- same table unmarked.
function M.shape(keys, opts)
  local sorted = {}
  for i, k in ipairs(keys) do sorted[i] = k end
  table.sort(sorted)
  return { keys = sorted, nulls = opts and opts.nulls or nil }
end

-- JSON text already encoded, marked so a sender passes it on as it is (orket serve sends a
-- kept answer such as the board this way, from one shared copy of its bytes), and encode
-- writes it as it is inside a larger document (orket.otel's attributes, made once).
local ENCODED = {}

--- encode(v) -> string; raises "jsonout: ..." for what JSON cannot hold (a function, a
--- userdata, a key that is not a string in an object, NaN or an infinity, nesting deeper
--- than 1000). A value marked encoded(text) is written as its text.
function M.encode(v)
  return cjsonout.encode(v, ARRAY, ENCODED)
end

--- encoded(text) -> a value standing for the JSON text; is_encoded(v) -> true for one.
function M.encoded(text) return setmetatable({ text = text }, ENCODED) end
function M.is_encoded(v) return getmetatable(v) == ENCODED end

--- same(a, b) -> whether two decoded JSON values are equal: numbers by value (1 and 1.0),
--- objects by their keys whatever the order (a store's JSON, PostgreSQL's jsonb, orders
--- them its own way; cjson's varies by run), arrays by position
function M.same(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not M.same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

return M
