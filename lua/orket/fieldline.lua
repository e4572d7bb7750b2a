-- orket.fieldline: finds the line of a field in a file's text, for messages that name a field
-- path but no line (checks run on plain data copied out of a script or a JSON document,
-- which keeps no positions). A text search, so it can be fooled by a key in a comment; it
-- only ever points a person at a line. Also a file's text read whole, and written whole.
local M = {}

-- The start and end of anchor's match in text: anchor is a pattern or {pattern, nth}, nth a
-- count or "last" (the value in force: a later `x = {` replaces an earlier one). -> s, e | nil
local function find(text, anchor)
  -- an element's place (M.element): where it is, not a pattern
  if type(anchor) == "table" and anchor.pos then return anchor.pos, anchor.pos end
  local pat, nth = anchor, 1
  if type(anchor) == "table" then pat, nth = anchor[1], anchor[2] or 1 end
  local s, e, at, n = nil, nil, 0, 0
  while nth == "last" or n < nth do
    local s2, e2 = text:find(pat, at + 1)
    if not s2 then
      if nth == "last" then break end
      return nil
    end
    s, e, at, n = s2, e2, s2, n + 1
  end
  return s, e
end

-- The number of the line the byte at pos is on.
local function line_at(text, pos)
  return select(2, text:sub(1, pos):gsub("\n", "")) + 1
end

--- of(text, key[, anchor]) -> the line where `key` is set (Lua `key =` or JSON `"key":`),
--- searching from the `{` that opens the object where anchor matches, or nil. anchor is a
--- Lua pattern or {pattern, nth}: the nth match (two cards with the same id in one file),
--- or the last one when nth is "last".
function M.of(text, key, anchor)
  if not text or not key then return nil end
  local skip, last = 0, math.huge
  if type(anchor) == "table" and anchor.pos then
    -- an element's place (M.element): its own lines only, so a field it lacks is never
    -- found in the element after it
    skip, last = line_at(text, anchor.pos) - 1, line_at(text, anchor.stop)
  elseif anchor then
    local _, stop = find(text, anchor)
    -- the last '{' up to the end of the match: a card's fields come in any order (sorted
    -- keys put depends_on before id), a seat's `name = {` ends with its brace
    local open = stop and text:sub(1, stop):match(".*(){")
    if open then skip = line_at(text, open) - 1 end
  end
  local n = 0
  local kpat = "%f[%w_]" .. key:gsub("%p", "%%%0") .. "%f[^%w_]%s*="
  local jpat = '"' .. key:gsub("%p", "%%%0") .. '"%s*:'
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if n > last then return nil end
    if n > skip and (line:find(kpat) or line:find(jpat)) then return n end
  end
  return nil
end

-- Where the value that starts at i ends (its last byte), in an array's code: at the ',' (or
-- Lua's ';') or the bracket that closes the array, outside any bracket, parenthesis or string
-- of its own. lua: Lua's quotes and long brackets, else JSON's. -> the byte | nil (no end)
local function value_end(text, i, lua)
  local depth, n, last = 0, #text, i
  while i <= n do
    local c = text:sub(i, i)
    local long = lua and c == "[" and text:match("^%[(=*)%[", i)
    if long then
      i = select(2, text:find("]" .. long .. "]", i, true))
      if not i then return nil end
      last = i
    elseif c == '"' or (lua and c == "'") then
      i = M.quoted_end(text, i)
      last = i
    elseif c == "{" or c == "[" or c == "(" then
      depth, last = depth + 1, i
    elseif c == "}" or c == "]" or c == ")" then
      if depth == 0 then return last end
      depth, last = depth - 1, i
    elseif depth == 0 and (c == "," or (lua and c == ";")) then
      return last
    elseif not c:find("%s") then
      last = i
    end
    i = i + 1
  end
  return nil
end

--- element(text, key, n, lua) -> {pos=, stop=} | nil: the place of the nth element (from 1)
--- of the array set as key (JSON `"issues": [`, Lua `issues = {`; the text's first), its
--- first and last byte: an anchor (of, at, place) for an object that has no id or summary to
--- be found by. nil when the array is not written out so (a Lua file that builds it). lua:
--- the text is Lua's (its comments are left out).
function M.element(text, key, n, lua)
  if not text then return nil end
  local src = lua and M.code_only(text) or text
  local k = key:gsub("%p", "%%%0")
  local _, e = src:find(lua and ("%f[%w_]" .. k .. "%s*=%s*{") or ('"' .. k .. '"%s*:%s*%['))
  if not e then return nil end
  local i, count = e + 1, 0
  while true do
    i = src:find("[^%s,;]", i)
    if not i or src:find("^[%]}]", i) then return nil end -- the array ends first
    local stop = value_end(src, i, lua)
    if not stop then return nil end
    count = count + 1
    if count == n then return { pos = i, stop = stop } end
    i = stop + 1
  end
end

--- at(text, anchor) -> the line where anchor (a pattern or {pattern, nth}) matches, or nil
function M.at(text, anchor)
  if not text or not anchor then return nil end
  local s = find(text, anchor)
  return s and line_at(text, s)
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

--- quoted_end(text, s) -> where the Lua string quoted at s ends: its closing quote, or the
--- end of its line or of the text for one left open (escapes stepped over)
function M.quoted_end(text, s)
  local q, j, n = text:sub(s, s), s + 1, #text
  while j <= n do
    local d = text:sub(j, j)
    if d == "\\" then j = j + 2
    elseif d == q or d == "\n" then return j
    else j = j + 1 end
  end
  return j
end

-- A Lua file's text with its comments blanked (their newlines kept, so lines count the
-- same): a commented-out `review = {...}` or `models.default = ...` is not where a value is
-- set. Strings are stepped over whole ('...', "...", [[...]], [==[...]==]), so a "--" in
-- one is no comment.
local function code_only(text)
  local out, i, n = {}, 1, #text
  while i <= n do
    local s = text:find("[-'\"%[]", i)
    if not s then out[#out + 1] = text:sub(i) break end
    out[#out + 1] = text:sub(i, s - 1)
    local c = text:sub(s, s)
    local long = text:match("^%[(=*)%[", s)
    if c == "-" and text:sub(s, s + 1) == "--" then
      local eq = text:match("^%-%-%[(=*)%[", s)
      local stop = eq and select(2, text:find("]" .. eq .. "]", s, true)) or (text:find("\n", s, true) or n + 1) - 1
      stop = stop or n
      out[#out + 1] = (text:sub(s, stop):gsub("[^\n]", " "))
      i = stop + 1
    elseif long then
      local stop = select(2, text:find("]" .. long .. "]", s, true)) or n
      out[#out + 1] = text:sub(s, stop)
      i = stop + 1
    elseif c == "'" or c == '"' then
      local j = M.quoted_end(text, s)
      out[#out + 1] = text:sub(s, j)
      i = j + 1
    else
      out[#out + 1] = c
      i = s + 1
    end
  end
  return table.concat(out)
end
M.code_only = code_only

-- In a Lua file, the line of the last statement that sets parent.key (`models.default = ...`,
-- `team.senior_developer.roles = ...`) or, for a name of the file's own (no parent), the last
-- `key =` at a line's start: the guides add such lines at the end of orket.lua, and the value
-- in force is the one set last. -> line | nil
local function last_statement(text, key, parent)
  local pat = parent and ("^%s*" .. parent:gsub("%p", "%%%0") .. "%s*%.%s*" .. key:gsub("%p", "%%%0") .. "%s*=%f[^=]")
    or ("^" .. key:gsub("%p", "%%%0") .. "%s*=%f[^=]")
  local n, found = 0, nil
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:find(pat) then found = n end
  end
  return found
end

-- Where key is set in the table whose '{' is at open in a Lua file's code-only text, at that
-- table's own level (not in a table inside it), written `key =` or `["key"] =` (either
-- quote), or nil: never past its '}', so a field missing from one entry never takes a later
-- entry's line. Strings are stepped over. -> the key's first byte, the byte after its '='
local function field_at(text, open, key)
  local depth, i, n = 0, open, #text
  while i <= n do
    local c = text:sub(i, i)
    local eq = c == "[" and text:match("^%[(=*)%[", i)
    if c == "{" then depth = depth + 1
    elseif c == "}" then
      depth = depth - 1
      if depth == 0 then return nil end
    elseif c == "'" or c == '"' then i = M.quoted_end(text, i)
    elseif eq then i = select(2, text:find("]" .. eq .. "]", i, true)) or n
    elseif c == "[" and depth == 1 then
      -- a quoted key: the string itself is stepped over on the next turn when it is not key
      local q = text:match("^%[%s*()[\"']", i)
      if q then
        local qe = M.quoted_end(text, q)
        local after = text:match("^%s*%]%s*=()%f[^=]", qe + 1)
        if after and text:sub(q + 1, qe - 1) == key then return i, after end
      end
    elseif c:match("[%w_]") then
      local word_end = select(2, text:find("^[%w_]+", i))
      local after = depth == 1 and text:sub(i, word_end) == key and text:match("^%s*=()%f[^=]", word_end + 1)
      if after then return i, after end
      i = word_end
    end
    i = i + 1
  end
  return nil
end

-- The line where key is set in the table whose '{' is at open (field_at), or nil
local function key_in_table(text, open, key)
  local at = field_at(text, open, key)
  return at and line_at(text, at)
end

-- Where `"key":` is at the own level of the JSON object whose '{' is at open (not in an
-- object or array inside it), or nil: strings stepped over, never past its '}'.
local function json_field_at(text, open, key)
  local depth, i, n = 0, open, #text
  while i <= n do
    local c = text:sub(i, i)
    if c == "{" or c == "[" then depth = depth + 1
    elseif c == "}" or c == "]" then
      depth = depth - 1
      if depth == 0 then return nil end
    elseif c == '"' then
      local e = M.quoted_end(text, i)
      if depth == 1 and text:sub(i + 1, e - 1) == key and text:find("^%s*:", e + 1) then return i end
      i = e
    end
    i = i + 1
  end
  return nil
end

--- own(text, key, anchor, lua) -> the line where key is set at the own level of the object
--- (or Lua table) whose '{' opens where anchor matches (as `of` finds it), or nil: an epic's
--- own depends_on, not the first of its issues'. lua: the text is Lua's.
function M.own(text, key, anchor, lua)
  if not text or not key or not anchor then return nil end
  local _, stop = find(text, anchor)
  local open = stop and text:sub(1, stop):match(".*(){")
  if not open then return nil end
  if lua then return key_in_table(code_only(text), open, key) end
  local at = json_field_at(text, open, key)
  return at and line_at(text, at)
end

-- A statement at i of a Lua file's code-only text that sets a leading part of the field path
-- names (`sign_in = ...`, `sign_in.roles = ...`, `models.prices["openai:gpt"] = ...`) -> how
-- many of the names it sets, the byte after its '=' | nil (another statement)
local function sets_path(text, i, names)
  local w = text:match("^[%a_][%w_]*", i)
  if w ~= names[1] then return nil end
  local k = 1
  i = i + #w
  while true do
    local name, after
    local dot = text:match("^%s*%.%s*()", i)
    if dot then
      name = text:match("^[%a_][%w_]*", dot)
      after = name and dot + #name
    else
      local q = text:match("^%s*%[%s*()[\"']", i)
      if q then
        local qe = M.quoted_end(text, q)
        name, after = text:sub(q + 1, qe - 1), text:match("^%s*%]()", qe + 1)
      end
    end
    if not (name and after) then break end
    if name ~= names[k + 1] then return nil end -- another field's
    k, i = k + 1, after
  end
  local eq = text:match("^%s*=()%f[^=]", i)
  if eq then return k, eq end
end

-- The line where the field path names (`sign_in`, `roles`, `everyone`) is set in a Lua file's
-- code-only text, each name sought in its parent's own braces: sign_in.roles inside
-- sign_in's table, never the first `roles =` of the file (a seat's). From the statement set
-- last that sets a leading part of the path (the value in force), down through the tables
-- written in it; a statement whose value lacks the rest is passed over for an earlier one.
-- -> line | nil (not written so)
local function nested_line(text, names)
  local found = {}
  local pos = 1
  while pos <= #text do
    local first = text:match("^[ \t]*()", pos)
    local k, eq = sets_path(text, first, names)
    if k then found[#found + 1] = { at = first, k = k, eq = eq } end
    pos = (text:find("\n", pos, true) or #text) + 1
  end
  for f = #found, 1, -1 do
    local at, after = found[f].at, found[f].eq
    for j = found[f].k + 1, #names do
      local open = text:match("^%s*(){", after)
      at, after = nil, nil
      if open then at, after = field_at(text, open, names[j]) end
      if not at then break end
    end
    if at then return line_at(text, at) end
  end
  return nil
end

-- The line of a field of the entry set last as entry_pat (`["openai:gpt"] =`) in a Lua
-- file's code-only text: where key is set in the entry's own braces, else (no key, a field
-- missing, an entry that is no table) the entry's own line. -> line | nil (no such entry)
local function entry_line(text, entry_pat, key)
  local s, e = find(text, { entry_pat, "last" })
  if not s then return nil end
  local open = text:match("^%s*(){", e + 1)
  return key and open and key_in_table(text, open, key) or line_at(text, s)
end

-- A file's name with a space at msg's start ("epics/b c.json: ...", "epics/b c.json:3: ...",
-- a misnamed "roles/a b.lua"), which place's patterns stop at: taken when it is default_file
-- or a file read finds, so that no sentence with a colon is taken for a file's name.
-- -> file, line | nil, text | nil
local function spaced_file(msg, read, default_file)
  local file, rest = msg:match("^([^:\n]-%.[%w]+)(:.*)$")
  if not file or not file:find("%s") or not (file == default_file or read(file)) then return nil end
  local line, text = rest:match("^:(%d+): ?(.*)$")
  if line then return file, tonumber(line), text end
  text = rest:match("^: (.*)$")
  if text then return file, nil, text end
  return nil
end

--- place(msg, read [, default_file, anchor]) -> file, line | nil, text: where a message
--- "file:line: text" or "file: field.path: text" points. Without a line, the field's last
--- name locates it in read(file)'s text, searched from the object where anchor matches or,
--- for "a.b.c" in a Lua file, from the table `b = {`; a message naming no file is about
--- default_file. In a Lua file, the line that set the value in force: the last `b = {`
--- (a string anchor's last match), or a later `b.c = ...` statement.
function M.place(msg, read, default_file, anchor)
  local file, line, text = msg:match("^([^:%s]+):(%d+): ?(.*)$")
  if file then return file, tonumber(line), text end
  file, text = msg:match("^([^:%s]+%.[%w]+): (.*)$")
  if not file then
    file, line, text = spaced_file(msg, read, default_file)
    if line then return file, line, text end
  end
  if not file then file, text = default_file, msg end
  local path = text:match("^([%w_%.%[%]]+)[: ]")
  local key = path and (path:match("([%a_][%w_]*)[%[%d%]]*$"))
  local parent = path and path:match("([%a_][%w_]*)%.[%a_][%w_]*[%[%d%]]*$")
  -- roles, tools and routing.lua name an unknown field in quotes
  local quoted = text:match("unknown field '([%a_][%w_]*)'")
  if quoted then key = quoted end
  -- an entry under a quoted key, as models.prices["openai:gpt"].input: the field is sought
  -- in the entry's own `["openai:gpt"] = {...}` (either quote; the one set last, comments
  -- left out), else the entry's line (a field missing); nothing outside the entry is taken.
  -- An entry whose key is no literal (`[M] = {...}`, M a variable) is not found: the line of
  -- its table (`prices = {`, the one set last), rather than none
  -- (the key as the message writes it, escapes kept: `team["a \"b\""]` is sought as written)
  local holder, tbl, q = text:match('^([%w_%.]-)([%a_][%w_]*)%[()"')
  local entry, field
  if q then
    local qe = M.quoted_end(text, q)
    field = text:sub(qe, qe) == '"' and text:match("^%]%.?([%a_]*[%w_]*)[: ]", qe + 1)
    entry = field and text:sub(q + 1, qe - 1)
  end
  if entry and not anchor then
    local src = file and file:match("%.lua$") and read(file)
    if not src then return file, nil, text end
    local code = code_only(src)
    field = field ~= "" and not text:find(" is missing", 1, true) and field or nil
    -- the entry in its own table, found through its parents (sign_in.roles["everyone"]:
    -- `everyone = ...` in sign_in's roles, written with or without brackets), its field in it
    local names = {}
    for name in (holder .. tbl):gmatch("[%a_][%w_]*") do names[#names + 1] = name end
    names[#names + 1] = entry
    local nested
    if field then
      local with = { table.unpack(names) }
      with[#with + 1] = field
      nested = nested_line(code, with)
    end
    nested = nested or nested_line(code, names) -- (a field missing: the entry's own line)
    if nested then return file, nested, text end
    entry = "%[%s*[\"']" .. entry:gsub("%p", "%%%0") .. "[\"']%s*%]%s*="
    local up = holder:match("([%a_][%w_]*)%.$") -- (models, of models.prices)
    return file, entry_line(code, entry, field) or last_statement(code, tbl, up) or M.of(code, tbl), text
  end
  -- a field of a field (sign_in.ldap.url) in a Lua file, no anchor given: sought inside its
  -- parents' own braces, as an entry is above; else from its parent's last `b = {`, below
  if path and parent and not anchor and not quoted and not path:find("[", 1, true)
    and not text:find(" is missing", 1, true) and file and file:match("%.lua$") then
    local src = read(file)
    local names = {}
    for name in path:gmatch("[%a_][%w_]*") do names[#names + 1] = name end
    line = src and nested_line(code_only(src), names)
    if line then return file, line, text end
  end
  -- a card's anchor ({pattern, nth}) already names the object; the value in force is
  -- sought in a settings file, where a later statement replaces an earlier one
  local lua = file and file:match("%.lua$") and type(anchor) ~= "table"
  if not anchor and lua and parent then anchor = M.table_set(parent) end
  if lua and anchor then anchor = { anchor, "last" } end
  if path and path:match("^[%a_][%w_]*%[%d+%]$") and anchor and not quoted then
    -- the message is about the object itself (issues[2]): the line of its id
    line = M.at(file and read(file), anchor)
  end
  if key and not line then
    local src = file and read(file)
    if src and lua then src = code_only(src) end
    line = M.of(src, key, anchor)
    -- (an element's place is the card's for certain: a field it lacks is not sought elsewhere)
    if not line and anchor and not anchor.pos then line = M.of(src, key) end
    local last = src and lua and not quoted and last_statement(src, key, parent)
    if last and (not line or last > line) then line = last end
    -- a field that is missing has no line of its own: the nearest enclosing field that is
    -- written ({"browser": {}}'s selector is said at "browser")
    if not line and src and not quoted then
      local names = {}
      for name in path:gmatch("[%a_][%w_]*") do names[#names + 1] = name end
      for i = #names - 1, 1, -1 do
        line = M.of(src, names[i], anchor)
        if line then break end
      end
    end
  end
  -- nothing of it written in the card: the card's own line
  if not line and type(anchor) == "table" and anchor.pos then line = M.at(file and read(file), anchor) end
  return file, line, text
end

--- in_project(msg, dir, read[, default_file, anchor]) -> file, line | nil, text: place's
--- answer for a project's file, found under dir, and named from dir as `orket validate`
--- names it ("roles/x.lua", not "./roles/x.lua" or a path through dir); read(path) -> a
--- file's text | nil (the caller's: never a FIFO or a device)
function M.in_project(msg, dir, read, default_file, anchor)
  local file, line, text = M.place(msg, function(f) return read(dir .. "/" .. f) or read(f) end, default_file, anchor)
  if file and file:sub(1, #dir + 1) == dir .. "/" then file = file:sub(#dir + 2) end
  if file then file = file:gsub("^%./", "") end
  return file, line, text
end

--- locate(msg, dir, read) -> msg with its first line as "file:line: text" where place finds
--- the line (in_project), the rest kept
function M.locate(msg, dir, read)
  local first, rest = tostring(msg):match("^([^\n]*)(.*)$")
  local file, line, text = M.in_project(first, dir, read)
  if not file then return msg end
  return file .. (line and (":" .. line) or "") .. ": " .. text .. rest
end

--- read(path) -> the file's text | nil
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- write_whole(path, text, mode) -> true | nil, msg, "EIO": path replaced whole, with mode:
--- a part file beside it (path.part-PID), flushed to the disk, then renamed onto it, and
--- the folder flushed too, so a reader or a crash (a power cut as well as a kill) sees the
--- old text or the new, never half of one, nor the old once this returned
function M.write_whole(path, text, mode)
  local uv = require "luv" -- lazy: only writers need the loop's file calls
  local part = string.format("%s.part-%d", path, uv.os_getpid())
  local fd, err = uv.fs_open(part, "w", mode)
  if not fd then return nil, string.format("cannot write %s: %s", part, tostring(err)), "EIO" end
  local ok, werr = uv.fs_write(fd, text, 0)
  if ok and ok ~= #text then ok, werr = nil, string.format("wrote %d of %d bytes", ok, #text) end
  if ok then ok, werr = uv.fs_fsync(fd) end
  uv.fs_close(fd)
  if ok then ok, werr = os.rename(part, path) end
  if not ok then
    os.remove(part)
    return nil, string.format("cannot write %s: %s", path, tostring(werr)), "EIO"
  end
  -- the rename is the folder's: flushed with it (best effort: a folder that cannot be opened
  -- for reading keeps what the kernel orders)
  local dfd = uv.fs_open(path:match("^(.*)/[^/]*$") or ".", "r", 0)
  if dfd then
    uv.fs_fsync(dfd)
    uv.fs_close(dfd)
  end
  return true
end

return M
