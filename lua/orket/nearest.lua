-- orket.nearest: the known name nearest to an unknown one ("depends_on " -> depends_on,
-- "cros" -> cors), and the hint that names it in the errors about unknown fields and
-- settings. Plain Lua over strings; used by orket.cli (every command's errors) and orket.validate.
local M = {}

--- distance(a, b) -> the number of edits (insert, delete, replace, swap of two neighbours)
--- that make a into b.
function M.distance(a, b)
  local la, lb = #a, #b
  local d = {}
  for i = 0, la do d[i] = { [0] = i } end
  for j = 0, lb do d[0][j] = j end
  for i = 1, la do
    for j = 1, lb do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[la][lb]
end

--- nearest(word, names) -> the name nearest to word, or nil when none is near. names: a list,
--- or text "a, b, c". Near: the same name but for case, spaces and '-' against '_', or at most
--- a third of the word's length in edits (at least one, at most three); the first of equals.
function M.nearest(word, names)
  if type(names) == "string" then
    local list = {}
    for n in names:gmatch("[^,%s]+") do list[#list + 1] = n end
    names = list
  end
  local function plain(s) return (s:lower():gsub("%s", ""):gsub("%-", "_")) end
  for _, n in ipairs(names) do
    if n ~= word and plain(n) == plain(word) then return n end
  end
  local best, bestd = nil, math.max(1, math.min(3, #word // 3)) + 1
  for _, n in ipairs(names) do
    local dist = M.distance(word, n)
    if dist > 0 and dist < bestd then best, bestd = n, dist end
  end
  return best
end

-- The name a message says is unknown, and the list of known names it gives, in the shapes
-- Orket's modules write them:
--   "... PATH: unknown setting (known: a, b)"       orket.settings, orket.store.pgurl
--   "orket.lua: KEY: unknown setting (settings: a, b)"
--   "... PATH: unknown field (an issue's fields: a, b)"   orket.import
--   "... unknown field 'KEY' (fields: a, b)"        roles, tools, routing.lua (policies: "... in deny rule (fields: ...)")
--   "... no role named "KEY" (roles: a, b)"          a team's, a policy's or a command's name of a role
-- PATH's last part is the name: a.b.KEY, a[1].KEY, or a["KEY "] for a name that is no identifier.
-- Every scan below moves forward only, so a long one-line message (a cycle through thousands
-- of ids) costs its length, not its length squared as an unanchored ".-" pattern would.

-- the last name of PATH: a["KEY"], or the run of a.b.KEY, a[1].KEY or KEY[2] that only
-- brackets and digits follow
local function last_name(path)
  if path:sub(-2) == '"]' then
    local i = path:find('["', 1, true)
    if i and i <= #path - 3 then return path:sub(i + 2, -3) end
  end
  local t = #path + 1 -- where the trailing brackets and digits begin
  while t > 1 and path:find("^[%[%d%]]", t - 1) do t = t - 1 end
  for run, stop in path:gmatch("([^%.%[%]]+)()") do
    if stop >= t then return run end
  end
end

-- "PATH: unknown WHAT (...: LIST)": the first on its line after a word, as
-- msg:match("([^%s][^\n]-): unknown (%a+)[^(\n]*%([^:)\n]*: ([^)\n]*)%)") would find it
local function unknown_path(msg)
  local from, line, nl, first = 1, 1, msg:find("\n", 1, true), nil
  while true do
    local at, stop, what = msg:find(": unknown (%a+)", from)
    if not at then return nil end
    while nl and nl < at do line, nl, first = nl + 1, msg:find("\n", nl + 1, true), nil end
    first = first or msg:find("[^%s]", line) or #msg + 1
    -- the list is in the first parentheses after it, on its line
    local open = msg:find("[(\n]", stop + 1)
    local list, after
    if open and msg:byte(open) == 40 then list, after = msg:match("^[^:)\n]*: ([^)\n]*)%)()", open + 1) end
    if list and first < at then
      local path = msg:sub(first, at - 1)
      return path, what, list, after
    end
    -- what lies before those parentheses ends no other match: go on past them
    from = list and at + 1 or (open or #msg) + 1
  end
end

-- -> the unknown name, the list of known ones, and where the list's parentheses end
local function unknown_in(msg)
  local key, list, after = msg:match("unknown field '([^']*)'[^(\n]*%(fields: ([^)\n]*)%)()")
  if key then return key, list, after end
  key, list, after = msg:match('no %a+ named "([^"\n]*)"[^(\n]*%([^:)\n]*: ([^)\n]*)%)()')
  if key then return key, list, after end
  local path, what
  path, what, list, after = unknown_path(msg)
  if not path or (what ~= "setting" and what ~= "field") then return nil end
  -- after the path's last ": " (orket.lua: KEY)
  local cut, i = 0, path:find(": ", 1, true)
  while i do cut, i = i + 1, path:find(": ", i + 1, true) end
  return last_name(path:sub(cut + 1)), list, after
end

--- hint(msg) -> msg, with "; did you mean 'NAME'?" added when it says a field, a setting or
--- a named thing (a role) is unknown and a known one is near. One place for every such error (orket.settings,
--- orket.import, roles, tools, policies, routing.lua, the store's settings), so the hint is
--- there whichever module found the field.
function M.hint(msg)
  if type(msg) ~= "string" or msg:find("did you mean", 1, true) then return msg end
  local key, list, after = unknown_in(msg)
  local near = key and M.nearest(key, list)
  if not near then return msg end
  -- right after the known names' list: what the message adds after it (the other unknown
  -- names, a traceback on the lines below) stays after the hint, which is about this name
  return msg:sub(1, after - 1) .. "; did you mean '" .. near .. "'?" .. msg:sub(after)
end

--- ordered(words, names) -> a new array of words: those with a known name near them
--- first (the likelier typos: their hint names the field meant), then the rest, each part
--- in byte order. names: as nearest takes them. Every report of several unknown names
--- orders them so, the same way each time.
function M.ordered(words, names)
  local near, far = {}, {}
  for _, w in ipairs(words) do
    local part = M.nearest(w, names) and near or far
    part[#part + 1] = w
  end
  table.sort(near)
  table.sort(far)
  return table.move(far, 1, #far, #near + 1, near)
end

return M
