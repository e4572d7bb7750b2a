-- orket.engine.scriptcheck: a project's operator scripts (roles/, tools/, policies/ and
-- routing.lua) checked each file on its own, so that every broken file is reported with its
-- line: what orket validate says of them, and what a run's hot reload says when a saved
-- file breaks the set (orket.engine.reload). Uses orket.engine.roles, orket.tools,
-- orket.policy, orket.engine.routing and orket.fieldline.
local uv = require "luv"
local rt = require "orket.c.runtime"
local roles = require "orket.engine.roles"
local routing = require "orket.engine.routing"
local tools = require "orket.tools"
local policy = require "orket.policy"
local scriptfile = require "orket.scriptfile"
local fieldline = require "orket.fieldline"
local nearest = require "orket.nearest"

local M = {}

--- add(out, dir, msg [, default_file [, anchor [, read]]]): appends the problem of a
--- message "file:line: text" or "file: field.path: text" to out ({file=, line=, message=}),
--- its line found where the message has none (orket.fieldline.in_project; read: how the
--- file's text is read, scriptfile.read by default).
function M.add(out, dir, msg, default_file, anchor, read)
  msg = nearest.hint(tostring(msg):match("^[^\n]*"))
  -- a file's name with a space (a misnamed "roles/a b.lua", orket.scriptfile.misnamed;
  -- "epics/b c.json") is read in a message as default_file's name only (orket.fieldline):
  -- given as the message says it, so that it is said once, with its line
  local shown = default_file and scriptfile.name(default_file, dir):gsub("^%./", "")
  if shown and msg:sub(1, #shown + 1) == shown .. ":" then default_file = shown end
  local file, line, text = fieldline.in_project(msg, dir, read or function(path) return (scriptfile.read(path)) end,
    default_file, anchor)
  out[#out + 1] = { file = file, line = tonumber(line), message = text }
end

--- format(problem) -> "file:line: message" (or "file: message" when the line is unknown)
function M.format(p)
  if p.line then return string.format("%s:%d: %s", p.file, p.line, p.message) end
  return string.format("%s: %s", p.file or "?", p.message)
end

--- exists(path) -> whether anything is at path
function M.exists(path) return uv.fs_stat(path) ~= nil end
local exists = M.exists

--- names_of(set) -> its keys, sorted
function M.names_of(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  table.sort(out)
  return out
end
local names_of = M.names_of

--- arguments(tool) -> the names its parameters' schema lets a call give (name -> its
--- schema's type, true when any), or true when any name may come (no properties listed,
--- or additionalProperties allowing others): what a policy rule's args may name
--- (orket.policy.unmatched)
function M.arguments(def)
  local p = def and def.parameters
  if type(p) ~= "table" or type(p.properties) ~= "table" then return true end
  local extra = p.additionalProperties
  if extra ~= nil and extra ~= false then return true end
  local names = {}
  for k, ps in pairs(p.properties) do
    local t = type(ps) == "table" and ps.type
    names[k] = type(t) == "string" and t or true
  end
  return names
end

--- check(dir, out, summary) -> roles by name, tools by name (each its M.arguments), policy
--- sets, broken stems, broken roles' readable parts: every problem appended to out (add); summary's roles,
--- tools, policies and overrides (the built-ins the project replaces) counted.
-- (a project's override the built-ins by name; the broken files' stems are not called
-- unknown a second time by validate's links, and a broken role's tools are checked too)
function M.check(dir, out, summary)
  local home = rt.home()
  local by_name, broken, half = {}, {}, {}
  summary.overrides = {}
  -- A project's file of a built-in's name replaces it: said, so that it is never a surprise.
  local function note_override(kind, path, name)
    local stem = path:match("([^/]+)%.lua$")
    if path:sub(1, #dir + 1) == dir .. "/" and exists(home .. "/" .. kind .. "s/" .. stem .. ".lua") then
      summary.overrides[#summary.overrides + 1] = { kind = kind, name = name or stem,
        file = path:sub(#dir + 2):gsub("^%./", "") }
    end
  end
  -- each file loaded as a run loads it, named from dir (the loaders' base): a message
  -- says roles/x.lua, never the directory the project was given by
  for _, d in ipairs(roles.dirs(dir)) do
    for _, path in ipairs(roles.lua_files(d)) do
      local r, rerr, _, problems, partial = roles.load_file(path, dir)
      if r then
        by_name[r.name] = r
        if d ~= home .. "/roles" then note_override("role", path, r.name) end
      else
        broken[path:match("([^/]+)%.[Ll][Uu][Aa]$")] = true -- (X.LUA: refused for its name)
        for _, p in ipairs(problems or { rerr }) do M.add(out, dir, p, path) end
        half[#half + 1] = partial
      end
    end
  end
  summary.roles = #names_of(by_name)
  -- tool name -> its arguments' types by name, or true when any name may come (arguments)
  local tool_names = {}
  for _, path in ipairs(policy.files_in { home .. "/tools", dir .. "/tools" }) do
    local reg, terr, _, problems = tools.load({ path }, dir)
    if reg then
      for _, n in ipairs(reg.names) do tool_names[n] = M.arguments(reg:get(n)) end
      note_override("tool", path, reg.names[1])
    else
      broken[path:match("([^/]+)%.[Ll][Uu][Aa]$")] = true -- (X.LUA: refused for its name)
      for _, p in ipairs(problems or { terr }) do M.add(out, dir, p, path) end
    end
  end
  summary.tools = #names_of(tool_names) -- tools, not files
  local sets = {}
  for _, path in ipairs(policy.files_in { home .. "/policies", dir .. "/policies" }) do
    local set, perr = policy.load({ path }, dir)
    if set then
      summary.policies = summary.policies + 1
      sets[#sets + 1] = set
    else
      M.add(out, dir, perr, path)
    end
  end
  local _, rerr = routing.load(dir .. "/routing.lua", dir)
  if rerr then M.add(out, dir, rerr, dir .. "/routing.lua") end
  return by_name, tool_names, sets, broken, half
end

return M
