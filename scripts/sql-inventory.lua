-- SQL outside the store: every Lua file of orket (lua/, roles/, tools/, policies/,
-- templates/) that holds SQL in its string literals, with its statements, its database
-- calls and the SQLite-only constructs it uses. The store's own files
-- (lua/orket/store.lua, lua/orket/store/) are left out: SQL belongs there.
--   build/orket lua scripts/sql-inventory.lua [ROOT]           a Markdown table (docs/store.md)
--   build/orket lua scripts/sql-inventory.lua --check [ROOT]   exits 1 while any file holds SQL
-- ROOT: the tree to look at (default: orket's home).
--
-- Only string literals are read ("...", '...', [[...]], [=[...]=]), never comments or
-- code, so prose about SQL is not counted and SQL is found however its literal is written.
-- A statement built by concatenation ("SELECT " .. COLUMNS .. " FROM cards WHERE " ..
-- where) is read as its literals joined, so it is still seen; so is a fragment meant for
-- such a statement ("parent = ?", "id IN (SELECT ...)"). Not caught: SQL assembled from
-- pieces none of which looks like SQL, or read from a file.
local args = { ... }
local mode
if args[1] == "--check" then mode = table.remove(args, 1) end
local home = args[1] or package.orket_home or "."

-- Statements, written the way this code base writes SQL (keywords in capitals).
local STATEMENTS = {
  "SELECT%s[^\n]-FROM%s", "SELECT%s+[%w_]+%(", "INSERT%s+INTO%s", "INSERT%s+OR%s+%u+%s+INTO%s",
  "UPDATE%s+[%w_]+%s+SET%s", "DELETE%s+FROM%s", "CREATE%s+TABLE%s", "CREATE%s+INDEX%s",
  "CREATE%s+UNIQUE%s+INDEX%s", "ALTER%s+TABLE%s", "DROP%s+TABLE%s",
}

-- Fragments of a statement: a condition on a column with a placeholder, a clause. Counted
-- as statements where no statement pattern matched their literal.
local FRAGMENTS = {
  "%f[%w_][%l_][%w_]*%s*[<>=!]=?%s*%?", "%f[%w_][%l_][%w_]*%s+IN%s*%(", "%f[%w]ORDER%s+BY%s",
  "%f[%w]GROUP%s+BY%s", "%f[%w]WHERE%s", "%f[%w]RETURNING%s",
}

-- Calls that send SQL to the store's connection.
local CALLS = { ":run%(", ":rows%(", ":row%(", ":exec%(" }

-- SQLite-only constructs: the name shown and its patterns (Lua patterns, case-sensitive).
local SQLITE_ONLY = {
  { "json_extract", { "json_extract%(" } },
  { "json_each", { "json_each%(" } },
  { "json_object/json_array/json_group_array", { "json_object%(", "json_array%(", "json_group_array%(" } },
  { "INSERT OR IGNORE/REPLACE", { "INSERT%s+OR%s+IGNORE", "INSERT%s+OR%s+REPLACE" } },
  { "rowid", { "%f[%w_]rowid%f[^%w_]" } },
  { "strftime/datetime/julianday", { "strftime%(", "datetime%(", "julianday%(" } },
  { "orket_now() / store.NOW", { "orket_now%(" } },
  { "PRAGMA", { "PRAGMA%s" } },
  { "sqlite_master", { "sqlite_master" } },
  { "IFNULL", { "IFNULL%(" } },
  { "group_concat", { "group_concat%(" } },
  { "FTS5 MATCH/bm25", { "MATCH%s", "bm25%(" } },
  { "BEGIN IMMEDIATE", { "BEGIN%s+IMMEDIATE" } },
  { "instr()", { "%f[%w_]instr%(" } },
}
-- Outside the literals: the store's time expression used by name.
local NOW_NAMES = { "store%.NOW%f[^%w_]" }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- The long bracket opening at i ("[", "=" * level, "["): its level, or nil.
local function long_open(src, i)
  local eq = src:match("^%[(=*)%[", i)
  return eq and #eq
end

--- literals(src) -> array of chains, each an array of string literal contents (newlines
--- as spaces); literals joined by ".." (with anything but another literal between) are in
--- one chain. Also returns the code outside literals and comments.
local function literals(src)
  local chains, chain, code = {}, nil, {}
  local i, n = 1, #src
  local gap = "" -- the code since the last literal
  local function add(text)
    text = text:gsub("%s", " ")
    if chain and gap:find("..", 1, true) and not gap:find("[;\n]%s*[%a_][%w_.:]*%s*=") then
      chain[#chain + 1] = text
    else
      chain = { text }
      chains[#chains + 1] = chain
    end
    gap = ""
  end
  while i <= n do
    local c = src:sub(i, i)
    if c == "-" and src:sub(i + 1, i + 1) == "-" then
      local lvl = src:sub(i + 2, i + 2) == "[" and long_open(src, i + 2)
      if lvl then
        local close = "]" .. string.rep("=", lvl) .. "]"
        local e = src:find(close, i + 4 + lvl, true)
        i = (e or n) + #close
      else
        local e = src:find("\n", i, true)
        i = e or n + 1
      end
    elseif c == '"' or c == "'" then
      local j, buf = i + 1, {}
      while j <= n do
        local d = src:sub(j, j)
        if d == "\\" then
          buf[#buf + 1] = src:sub(j, j + 1)
          j = j + 2
        elseif d == c or d == "\n" then
          break
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      add(table.concat(buf))
      i = j + 1
    elseif c == "[" and long_open(src, i) then
      local lvl = long_open(src, i)
      local close = "]" .. string.rep("=", lvl) .. "]"
      local s = i + 2 + lvl
      local e = src:find(close, s, true) or n + 1
      add(src:sub(s, e - 1))
      i = e + #close
    else
      local j = src:find("[-\"'%[]", i + 1) or n + 1
      local piece = src:sub(i, j - 1)
      gap = gap .. piece
      code[#code + 1] = piece
      i = j
    end
  end
  return chains, table.concat(code)
end

local function count(text, pat)
  local k = 0
  for _ in text:gmatch(pat) do k = k + 1 end
  return k
end

local function is_store(rel)
  return rel == "lua/orket/store.lua" or rel:match("^lua/orket/store/") ~= nil
end

local function scan(text)
  local chains, code = literals(text)
  local stmts, used = 0, {}
  for _, ch in ipairs(chains) do
    local joined = table.concat(ch, " ")
    local k = 0
    for _, pat in ipairs(STATEMENTS) do k = k + count(joined, pat) end
    if k == 0 then
      for _, pat in ipairs(FRAGMENTS) do
        if joined:find(pat) then k = 1 break end
      end
    end
    stmts = stmts + k
    for _, c in ipairs(SQLITE_ONLY) do
      for _, pat in ipairs(c[2]) do
        local m = count(joined, pat)
        if m > 0 then used[c[1]] = (used[c[1]] or 0) + m end
      end
    end
  end
  for _, pat in ipairs(NOW_NAMES) do
    local m = count(code, pat)
    if m > 0 then
      used["orket_now() / store.NOW"] = (used["orket_now() / store.NOW"] or 0) + m
      stmts = math.max(stmts, 1)
    end
  end
  local calls = 0
  for _, pat in ipairs(CALLS) do calls = calls + count(code, pat) end
  return stmts, calls, used
end

local files = {}
local p = io.popen("cd '" .. home .. "' && find lua roles tools policies templates -name '*.lua' 2>/dev/null | sort")
for rel in p:lines() do files[#files + 1] = rel end
p:close()
if #files == 0 then
  io.stderr:write("sql-inventory: no Lua files under " .. home .. "\n")
  os.exit(2)
end

local rows, total_stmt, total_calls = {}, 0, 0
local constructs_total = {}
for _, rel in ipairs(files) do
  if not is_store(rel) then
    local stmts, calls, used = scan(read(home .. "/" .. rel))
    if stmts > 0 then
      local names = {}
      for _, c in ipairs(SQLITE_ONLY) do
        local k = used[c[1]]
        if k then
          names[#names + 1] = c[1] .. " " .. k
          constructs_total[c[1]] = (constructs_total[c[1]] or 0) + k
        end
      end
      rows[#rows + 1] = { rel, stmts, calls, table.concat(names, ", ") }
      total_stmt, total_calls = total_stmt + stmts, total_calls + calls
    end
  end
end

if mode == "--check" then
  for _, r in ipairs(rows) do io.write(string.format("%s: %d SQL statements\n", r[1], r[2])) end
  if #rows > 0 then
    io.write(string.format("%d modules outside the store hold SQL: move it into an operation of lua/orket/store/\n", #rows))
    os.exit(1)
  end
  io.write(string.format("no SQL outside the store (%d files read)\n", #files))
  return
end

io.write("| module | statements | store calls | SQLite-only constructs |\n|---|---:|---:|---|\n")
for _, r in ipairs(rows) do
  io.write(string.format("| `%s` | %d | %d | %s |\n", r[1], r[2], r[3], r[4] ~= "" and r[4] or "none"))
end
io.write(string.format("| **%d modules** | **%d** | **%d** | |\n", #rows, total_stmt, total_calls))
local names = {}
for k in pairs(constructs_total) do names[#names + 1] = k end
table.sort(names, function(a, b) return constructs_total[a] > constructs_total[b] or (constructs_total[a] == constructs_total[b] and a < b) end)
io.write("\nSQLite-only constructs outside the store: ")
local parts = {}
for _, k in ipairs(names) do parts[#parts + 1] = k .. " " .. constructs_total[k] end
io.write(table.concat(parts, ", "), ".\n")
