-- The table of `project`'s fields in docs/engine.md ("The REPL"), made from the contract
-- comments of orket.terminal.console (`--- project.board: ...`), which `help(project)` in
-- the REPL shows too: the rows between <!-- repl: project fields --> and <!-- repl: end -->.
--   build/orket lua scripts/repl-doc.lua --check [ROOT]   exit 1 when the table differs
--   build/orket lua scripts/repl-doc.lua --write [ROOT]   rewrites it
-- ROOT: the tree (default: orket's home). tests/spec/commands/repl_help_spec.lua runs --check.
local args = { ... }
local mode = table.remove(args, 1)
if mode ~= "--check" and mode ~= "--write" then
  io.stderr:write("usage: repl-doc.lua --check|--write [ROOT]\n")
  os.exit(2)
end
local root = args[1] or package.orket_home or "."
local help = require "orket.terminal.help"
local fieldline = require "orket.fieldline"
local markers = dofile(arg[0]:gsub("[^/]*$", "") .. "doc-markers.lua")

local PATH = root .. "/docs/engine.md"
local OPEN, CLOSE = "<!-- repl: project fields -->\n", "\n<!-- repl: end -->"

local function topic(name)
  for _, t in ipairs(help.TOPICS) do
    if t.name == name then return t end
  end
end

local rows = { "| field | what |", "|---|---|" }
for _, m in ipairs(help.members(topic("project"))) do
  local what = m.first:match("^project%.[%w_]+: (.*)$")
  if what then rows[#rows + 1] = "| `project." .. m.name .. "` | " .. what:gsub("|", "\\|") .. " |" end
end
local table_text = table.concat(rows, "\n")

local text = fieldline.read(PATH)
if not text then
  io.stderr:write(PATH, ": cannot read it\n")
  os.exit(1)
end
local out = markers.between(text, OPEN, CLOSE, table_text)
if not out then
  io.stderr:write(PATH, ": no markers for the table (", OPEN:gsub("\n", ""), " ... ", CLOSE:gsub("\n", ""), ")\n")
  os.exit(1)
end
os.exit(markers.settle(PATH, text, out, mode, "the table of project's fields differs from the contract comments of "
  .. "lua/orket/terminal/console.lua; run build/orket lua scripts/repl-doc.lua --write"))
