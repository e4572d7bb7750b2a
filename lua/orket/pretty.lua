-- orket.pretty: a readable rendering of Lua values for the REPL and debugging output.
-- Keys are sorted, identifiers unquoted, cycles and depth marked, long tables cut short.
local inert = require "orket.inert"

local M = {}

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do KEYWORDS[w] = true end

local function is_ident(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") and not KEYWORDS[k]
end

local TYPE_ORDER = { number = 1, string = 2, boolean = 3 }

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (TYPE_ORDER[ta] or 9) < (TYPE_ORDER[tb] or 9) or
      ((TYPE_ORDER[ta] or 9) == (TYPE_ORDER[tb] or 9) and ta < tb) end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

-- %q escapes the C0 controls; inert adds C1 controls, bidi and zero-width characters and
-- bytes that are not UTF-8, as \u{...} and \xNN, which Lua reads back the same
local function quoted(s) return inert.line((string.format("%q", s):gsub("\\\n", "\\n"))) end

-- s escaped as a string value is, without its quotes: a metatable's __name, a userdata's
-- text (its __name or __tostring) are anyone's text, a script's or a server's
local function escaped(s) return quoted(s):sub(2, -2) end

-- s cut to max bytes (back to the start of a UTF-8 character), saying how many bytes it has:
-- a megabyte string printed whole scrolled the REPL for minutes, as a table is cut at its items
local function cut(s, max)
  if #s <= max then return quoted(s) end
  local at = max
  while at > 0 and (s:byte(at + 1) or 0) & 0xC0 == 0x80 do at = at - 1 end
  return string.format("%s ... (%d more bytes, %d in all)", quoted(s:sub(1, at)), #s - at, #s)
end

local function scalar(v, max_bytes)
  local t = type(v)
  if t == "string" then return cut(v, max_bytes or math.huge) end
  if t == "number" then
    if math.type(v) == "float" and v == math.floor(v) and v > -1e15 and v < 1e15 then
      return string.format("%.1f", v)
    end
    return tostring(v)
  end
  if t == "boolean" or t == "nil" then return tostring(v) end
  return escaped(tostring(v))
end

--- render(v, opts) -> string. opts: indent ("  "), depth (8), items (200 per table),
--- width (80: short tables stay on one line), bytes (4096 per string: a longer one is cut
--- there, followed by "... (N more bytes, M in all)").
function M.render(v, opts)
  opts = opts or {}
  local max_bytes = opts.bytes or 4096
  local indent = opts.indent or "  "
  local max_depth = opts.depth or 8
  local max_items = opts.items or 200
  local width = opts.width or 80
  local seen = {}

  local function walk(x, depth)
    if type(x) ~= "table" then return scalar(x, max_bytes) end
    if seen[x] then return "<cycle>" end
    if depth >= max_depth then return "{...}" end
    seen[x] = true
    local parts = {}
    local n = rawlen(x)
    local count = 0
    for i = 1, n do
      count = count + 1
      if count > max_items then break end
      parts[#parts + 1] = walk(rawget(x, i), depth + 1)
    end
    local keys = {}
    for k in next, x do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
    end
    table.sort(keys, key_less)
    for _, k in ipairs(keys) do
      count = count + 1
      if count > max_items then break end
      local ks = is_ident(k) and k or ("[" .. walk(k, depth + 1) .. "]")
      parts[#parts + 1] = ks .. " = " .. walk(rawget(x, k), depth + 1)
    end
    if count > max_items then
      parts[#parts + 1] = "... (" .. (n + #keys - max_items) .. " more)"
    end
    seen[x] = nil
    local mt = getmetatable(x)
    local prefix = (mt ~= nil and type(mt) == "table" and mt.__name) and ("<" .. escaped(tostring(mt.__name)) .. "> ") or ""
    if #parts == 0 then return prefix .. "{}" end
    local one = prefix .. "{ " .. table.concat(parts, ", ") .. " }"
    if #one + depth * #indent <= width and not one:find("\n") then return one end
    local pad = indent:rep(depth + 1)
    return prefix .. "{\n" .. pad .. table.concat(parts, ",\n" .. pad) .. "\n" .. indent:rep(depth) .. "}"
  end

  return walk(v, 0)
end

return M
