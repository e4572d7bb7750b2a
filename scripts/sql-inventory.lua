-- SQL outside the store: every Lua module under lua/ that holds SQL, with its statements,
-- its database calls and the SQLite-only constructs it uses (what a PostgreSQL backend
-- cannot run as written). The store's own files (lua/orket/store.lua, lua/orket/store/)
-- are left out: SQL belongs there.
--   build/orket lua scripts/sql-inventory.lua            a Markdown table (docs/store.md)
--   build/orket lua scripts/sql-inventory.lua --check    exits 1 while any module has SQL
local mode = ...
local home = package.orket_home or "."

-- Statements, written the way this code base writes SQL (keywords in capitals).
local STATEMENTS = {
  "SELECT%s[^\n]-FROM%s", "SELECT%s+[%w_]+%(", "INSERT%s+INTO%s", "INSERT%s+OR%s+%u+%s+INTO%s",
  "UPDATE%s+[%w_]+%s+SET%s", "DELETE%s+FROM%s", "CREATE%s+TABLE%s", "CREATE%s+INDEX%s",
  "CREATE%s+UNIQUE%s+INDEX%s", "ALTER%s+TABLE%s", "DROP%s+TABLE%s",
}

-- Calls that send SQL to the store's connection.
local CALLS = { ":run%(", ":rows%(", ":row%(", ":exec%(" }

-- SQLite-only constructs: the name shown and its patterns (Lua patterns, case-sensitive).
local SQLITE_ONLY = {
  { "json_extract", { "json_extract%(" } },
  { "json_each", { "json_each%(" } },
  { "json_object/json_array/json_group_array", { "json_object%(", "json_array%(", "json_group_array%(" } },
  { "INSERT OR IGNORE/REPLACE", { "INSERT%s+OR%s+IGNORE", "INSERT%s+OR%s+REPLACE" } },
  { "rowid", { "[^%w_]rowid[^%w_]" } },
  { "strftime/datetime/julianday", { "strftime%(", "datetime%(", "julianday%(" } },
  { "orket_now() / store.NOW", { "orket_now%(", "store%.NOW", "[^%w_]NOW%s*%.%." } },
  { "PRAGMA", { "PRAGMA%s" } },
  { "sqlite_master", { "sqlite_master" } },
  { "IFNULL", { "IFNULL%(" } },
  { "group_concat", { "group_concat%(" } },
  { "FTS5 MATCH/bm25", { "MATCH%s", "bm25%(" } },
  { "BEGIN IMMEDIATE", { "BEGIN%s+IMMEDIATE" } },
  { "instr()", { "[^%w_]instr%(" } },
}

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function count(text, pat)
  local n = 0
  for _ in text:gmatch(pat) do n = n + 1 end
  return n
end

local function is_store(rel)
  return rel == "lua/orket/store.lua" or rel:match("^lua/orket/store/")
end

local files = {}
local p = io.popen("cd '" .. home .. "' && find lua roles tools policies -name '*.lua' 2>/dev/null | sort")
for rel in p:lines() do files[#files + 1] = rel end
p:close()

local rows, total_stmt, total_calls = {}, 0, 0
local constructs_total = {}
for _, rel in ipairs(files) do
  if not is_store(rel) then
    local text = read(home .. "/" .. rel)
    local stmts = 0
    for _, pat in ipairs(STATEMENTS) do stmts = stmts + count(text, pat) end
    local calls = 0
    for _, pat in ipairs(CALLS) do calls = calls + count(text, pat) end
    if stmts > 0 then
      local used = {}
      for _, c in ipairs(SQLITE_ONLY) do
        local n = 0
        for _, pat in ipairs(c[2]) do n = n + count(text, pat) end
        if n > 0 then
          used[#used + 1] = c[1] .. " " .. n
          constructs_total[c[1]] = (constructs_total[c[1]] or 0) + n
        end
      end
      rows[#rows + 1] = { rel, stmts, calls, table.concat(used, ", ") }
      total_stmt, total_calls = total_stmt + stmts, total_calls + calls
    end
  end
end

if mode == "--check" then
  for _, r in ipairs(rows) do io.write(string.format("%s: %d SQL statements\n", r[1], r[2])) end
  if #rows > 0 then
    io.write(string.format("%d modules outside the store hold SQL\n", #rows))
    os.exit(1)
  end
  io.write("no SQL outside the store\n")
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
