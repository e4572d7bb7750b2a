-- The README's map of the Lua library, made from the tree: every module under lua/orket/,
-- grouped by its layer (scripts/imports.lua's table), with its opening comment's first sentence.
--   build/orket lua scripts/tree-map.lua [ROOT]            prints the map
--   build/orket lua scripts/tree-map.lua --check [ROOT]    exit 1 when README.md's map differs
--   build/orket lua scripts/tree-map.lua --write [ROOT]    rewrites README.md's map
-- ROOT: the tree (default: orket's home). tests/spec/tree/imports_spec.lua runs --check.
local args = { ... }
local mode
if args[1] == "--check" or args[1] == "--write" then mode = table.remove(args, 1) end
local root = args[1] or package.orket_home or "."
local I = dofile(root .. "/scripts/imports.lua")

local BEGIN = "<!-- tree-map: made by scripts/tree-map.lua from each file's opening comment; do not edit -->"
local END = "<!-- tree-map: end -->"

local read = I.read

-- A module's description: the first sentence of its opening comment, without the
-- "orket.x: " that names the module; a long one is cut at a word, marked with "...".
local MAX = 120
local function describe(name, src)
  local block = {}
  for l in src:gmatch("[^\n]*") do
    local text = l:match("^%-%-+%s?(.*)$")
    if not text then break end
    block[#block + 1] = text
  end
  local all = table.concat(block, " "):gsub("%s+", " ")
  local prefix = name .. ": "
  if all:sub(1, #prefix) == prefix then all = all:sub(#prefix + 1) end
  -- a sentence ends at ". " before a capital, a backquote or a parenthesis ("e.g. x" goes on)
  local stop = all:find("%.%s+[%u`(]") or all:find("%.%s*$")
  local first = stop and all:sub(1, stop) or all
  if #first > MAX then first = first:sub(1, MAX):gsub("%s+%S*$", "") .. " ..." end
  return first
end

local function map()
  local mods = I.modules(root)
  local by_layer = {}
  for name, m in pairs(mods) do
    local l = I.layer_of(name) or #I.LAYERS + 1
    by_layer[l] = by_layer[l] or {}
    table.insert(by_layer[l], { file = m.file:gsub("^lua/orket/", ""), name = name,
      what = describe(name, read(root .. "/" .. m.file)) })
  end
  local out = { BEGIN, "" }
  for l = 1, #I.LAYERS + 1 do
    local list = by_layer[l]
    if list then
      table.sort(list, function(a, b) return a.file < b.file end)
      local layer = I.LAYERS[l]
      out[#out + 1] = layer and string.format("**%s**: %s", layer.name, layer.doc) or "**no layer**"
      out[#out + 1] = ""
      for _, e in ipairs(list) do out[#out + 1] = string.format("- `%s`: %s", e.file, e.what) end
      out[#out + 1] = ""
    end
  end
  out[#out + 1] = END
  return table.concat(out, "\n")
end

local text = map()
if not mode then
  print(text)
  return
end
local readme = read(root .. "/README.md")
local s = readme:find(BEGIN, 1, true)
local _, e = readme:find(END, 1, true)
if not s or not e then
  io.stderr:write("README.md has no tree-map section (", BEGIN, " ... ", END, ")\n")
  os.exit(1)
end
local current = readme:sub(s, e)
if mode == "--check" then
  if current ~= text then
    io.stderr:write("README.md's map of lua/orket/ is stale: run build/orket lua scripts/tree-map.lua --write\n")
    os.exit(1)
  end
  return
end
local f = assert(io.open(root .. "/README.md", "wb"))
f:write(readme:sub(1, s - 1), text, readme:sub(e + 1))
f:close()
