-- The tables of docs/guide/troubleshooting.md, made from orket.errors: for each group of
-- codes, the rows between its two markers (<!-- errors: NAME --> ... <!-- errors: end -->).
--   build/orket lua scripts/errors-doc.lua --check [ROOT]   exit 1 when a table differs
--   build/orket lua scripts/errors-doc.lua --write [ROOT]   rewrites the tables
-- ROOT: the tree (default: orket's home). tests/spec/base/errors_spec.lua runs --check.
local args = { ... }
local mode = table.remove(args, 1)
if mode ~= "--check" and mode ~= "--write" then
  io.stderr:write("usage: errors-doc.lua --check|--write [ROOT]\n")
  os.exit(2)
end
local root = args[1] or package.orket_home or "."
local errors = require "orket.errors"
local markers = dofile(arg[0]:gsub("[^/]*$", "") .. "doc-markers.lua")

local PATH = root .. "/docs/guide/troubleshooting.md"

-- a cell's text: a table's column separator inside it would end the cell
local function cell(s) return (tostring(s or ""):gsub("|", "\\|")) end

local function table_of(group)
  local rows = {}
  local gate, http = group.name == "gate", group.name == "http"
  if gate then
    rows[1] = "| code | verdict | means | what to do |\n|---|---|---|---|"
  elseif http then
    rows[1] = "| status | code | means | what to do |\n|---|---|---|---|"
  else
    rows[1] = "| code | means | what to do |\n|---|---|---|"
  end
  for _, code in ipairs(group.codes) do
    local e = assert(errors.get(code), code)
    local c = "`" .. code .. "`"
    local remedy = cell(e.remedy)
    local tail = cell(e.means) .. " | " .. (remedy ~= "" and remedy .. " |" or "|")
    if gate then
      rows[#rows + 1] = "| " .. c .. " | " .. e.verdict .. " | " .. tail
    elseif http then
      rows[#rows + 1] = "| " .. e.status .. " | " .. c .. " | " .. tail
    else
      rows[#rows + 1] = "| " .. c .. " | " .. tail
    end
  end
  return table.concat(rows, "\n")
end

local f = assert(io.open(PATH, "rb"))
local text = f:read("a")
f:close()

local out, missing = text, {}
for _, group in ipairs(errors.GROUPS) do
  local replaced = markers.between(out, "<!-- errors: " .. group.name .. " -->\n", "\n<!-- errors: end -->", table_of(group))
  if replaced then out = replaced else missing[#missing + 1] = group.name end
end
if #missing > 0 then
  io.stderr:write(PATH, ": no markers for the groups ", table.concat(missing, ", "),
    " (<!-- errors: NAME --> ... <!-- errors: end -->)\n")
  os.exit(1)
end
os.exit(markers.settle(PATH, text, out, mode,
  "its tables differ from orket.errors; run build/orket lua scripts/errors-doc.lua --write"))
