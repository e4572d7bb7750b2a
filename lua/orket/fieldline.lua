-- orket.fieldline: finds the line of a field in a file's text, for messages that name a field
-- path but no line (checks run on plain data copied out of a script or a JSON document,
-- which keeps no positions). A text search, so it can be fooled by a key in a comment; it
-- only ever points a person at a line.
local M = {}

--- of(text, key[, anchor]) -> the line where `key` is set (Lua `key =` or JSON `"key":`),
--- searching from the `{` that opens the object where anchor matches, or nil. anchor is a
--- Lua pattern or {pattern, nth}: the nth match (two cards with the same id in one file).
function M.of(text, key, anchor)
  if not text or not key then return nil end
  local skip = 0
  if anchor then
    local pat, nth = anchor, 1
    if type(anchor) == "table" then pat, nth = anchor[1], anchor[2] or 1 end
    local at, stop = 0, nil
    for _ = 1, nth do
      local s, e = text:find(pat, at + 1)
      if not s then stop = nil break end
      at, stop = e, e
    end
    -- the last '{' up to the end of the match: a card's fields come in any order (sorted
    -- keys put depends_on before id), a seat's `name = {` ends with its brace
    local open = stop and text:sub(1, stop):match(".*(){")
    if open then skip = select(2, text:sub(1, open):gsub("\n", "")) end
  end
  local n = 0
  local kpat = "%f[%w_]" .. key:gsub("%p", "%%%0") .. "%f[^%w_]%s*="
  local jpat = '"' .. key:gsub("%p", "%%%0") .. '"%s*:'
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if n > skip and (line:find(kpat) or line:find(jpat)) then return n end
  end
  return nil
end

--- at(text, anchor) -> the line where anchor (a pattern or {pattern, nth}) matches, or nil
function M.at(text, anchor)
  if not text or not anchor then return nil end
  local pat, nth = anchor, 1
  if type(anchor) == "table" then pat, nth = anchor[1], anchor[2] or 1 end
  local s, at = nil, 0
  for _ = 1, nth do
    s = text:find(pat, at + 1)
    if not s then return nil end
    at = s
  end
  return select(2, text:sub(1, s):gsub("\n", "")) + 1
end

--- id_set(id) -> the pattern of the place where a card's id is set (JSON "id": "X", Lua id = "X")
function M.id_set(id)
  return '%f[%w_"]"?id"?%s*[:=]%s*"' .. id:gsub("%p", "%%%0") .. '"'
end

--- key_set(key, value) -> the pattern of `key = "value"` / `"key": "value"`
function M.key_set(key, value)
  return '%f[%w_"]"?' .. key .. '"?%s*[:=]%s*"' .. value:gsub("%p", "%%%0") .. '"'
end

--- table_set(name) -> the pattern of `name = {` (a section or a seat in orket.lua)
function M.table_set(name)
  return "%f[%w_]" .. name:gsub("%p", "%%%0") .. "%s*=%s*{"
end

--- place(msg, read [, default_file, anchor]) -> file, line | nil, text: where a message
--- "file:line: text" or "file: field.path: text" points. Without a line, the field's last
--- name locates it in read(file)'s text, searched from the object where anchor matches or,
--- for "a.b.c" in a Lua file, from the table `b = {`; a message naming no file is about
--- default_file.
function M.place(msg, read, default_file, anchor)
  local file, line, text = msg:match("^([^:%s]+):(%d+): ?(.*)$")
  if file then return file, tonumber(line), text end
  file, text = msg:match("^([^:%s]+%.[%w]+): (.*)$")
  if not file then file, text = default_file, msg end
  local path = text:match("^([%w_%.%[%]]+)[: ]")
  local key = path and (path:match("([%a_][%w_]*)[%[%d%]]*$"))
  -- roles, tools and routing.lua name an unknown field in quotes
  local quoted = text:match("unknown field '([%a_][%w_]*)'")
  if quoted then key = quoted end
  if not anchor and path and file and file:match("%.lua$") then
    local parent = path:match("([%a_][%w_]*)%.[%a_][%w_]*[%[%d%]]*$")
    if parent then anchor = M.table_set(parent) end
  end
  if path and path:match("^[%a_][%w_]*%[%d+%]$") and anchor and not quoted then
    -- the message is about the object itself (issues[2]): the line of its id
    line = M.at(file and read(file), anchor)
  end
  if key and not line then
    local src = file and read(file)
    line = M.of(src, key, anchor)
    if not line and anchor then line = M.of(src, key) end
  end
  return file, line, text
end

--- read(path) -> the file's text | nil
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

return M
