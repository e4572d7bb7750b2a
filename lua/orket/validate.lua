-- orket.validate: checks a project without running anything: orket.lua (models, team,
-- budgets, unknown settings), epics/, roles/, tools/, policies/ and routing.lua, each file
-- on its own so that every broken file is reported, then the links between them (team roles
-- exist, role tools exist, a reviewer seat, seat models name configured providers, issue
-- dependencies). Uses orket.config, orket.import, orket.engine.{settings,roles,routing},
-- orket.tools and orket.policy. Library code: returns problems, prints nothing.
local uv = require "luv"
local config = require "orket.config"
local import = require "orket.import"
local settings = require "orket.engine.settings"
local roles = require "orket.engine.roles"
local routing = require "orket.engine.routing"
local tools = require "orket.tools"
local policy = require "orket.policy"
local scriptfile = require "orket.scriptfile"
local lines = require "orket.lines"
local llm = require "orket.llm"
local scripted = require "orket.llm.scripted"

local M = {}

-- Top-level settings of orket.lua that some part of Orket reads (orket.config owns the list).
M.KNOWN = config.SETTINGS

-- The text to find a line in: never a FIFO or a device (the problem may be that it is one).
local function read(path) return (scriptfile.read(path, import.MAX_FILE)) end

-- Adds a problem from a message "file:line: text" or "file: field.path: text"; the field's
-- last name locates the line when the message has none, searched from the object where
-- anchor matches (orket.lines) or, for "a.b.c" in a Lua file, from the table `b = {`.
local function add(out, dir, msg, default_file, anchor)
  msg = tostring(msg):match("^[^\n]*")
  local file, line, text = msg:match("^([^:%s]+):(%d+): ?(.*)$")
  if not file then
    file, text = msg:match("^([^:%s]+%.[%w]+): (.*)$")
    if not file then file, text = default_file, msg end
    local path = text:match("^([%w_%.%[%]]+)[: ]")
    local key = path and (path:match("([%a_][%w_]*)[%[%d%]]*$"))
    -- roles, tools and routing.lua name an unknown field in quotes
    local quoted = text:match("unknown field '([%a_][%w_]*)'")
    if quoted then key = quoted end
    if not anchor and path and file and file:match("%.lua$") then
      local parent = path:match("([%a_][%w_]*)%.[%a_][%w_]*[%[%d%]]*$")
      if parent then anchor = lines.table_set(parent) end
    end
    if path and path:match("^[%a_][%w_]*%[%d+%]$") and anchor and not quoted then
      -- the message is about the object itself (issues[2]): the line of its id
      line = lines.at(read(dir .. "/" .. file) or read(file), anchor)
    end
    if key and not line then
      local src = read(dir .. "/" .. file) or read(file)
      line = lines.of(src, key, anchor)
      if not line and anchor then line = lines.of(src, key) end
    end
  end
  if file and file:sub(1, #dir + 1) == dir .. "/" then file = file:sub(#dir + 2) end
  if file then file = file:gsub("^%./", "") end
  out[#out + 1] = { file = file, line = tonumber(line), message = text }
end

local function exists(path) return uv.fs_stat(path) ~= nil end

--- check(dir) -> problems {{file=, line=|nil, message=}...}, summary {epics=, issues=, roles=,
--- tools=, policies=}, warnings (as problems: what is ignored, such as unknown epic fields)
function M.check(dir)
  local warnings = {}
  dir = dir or "."
  local out, summary = {}, { epics = 0, issues = 0, roles = 0, tools = 0, policies = 0 }
  local home = require("orket.c.runtime").home()

  -- orket.lua: read it, then check each section on its own.
  local data, err, code = config.read(dir)
  local s, cfg
  if not data then
    add(out, dir, code == "ENOENT" and "orket.lua: not found; 'orket init' creates a project" or err, "orket.lua")
  else
    for _, k in ipairs(config.unknown_settings(data)) do
      add(out, dir, "orket.lua: " .. k .. ": unknown setting (settings: " .. config.settings_list() .. ")")
    end
    local cerr
    cfg, cerr = config.finish(data, dir, function() return nil end)
    if not cfg then add(out, dir, cerr) end
    local sections = { { "budgets" }, { "limits" }, { "review" }, { "context" }, { "team" }, { "concurrency" }, { "name", "vision" } }
    for _, sec in ipairs(sections) do
      local part = {}
      for _, k in ipairs(sec) do part[k] = data[k] end
      local ok, serr = settings.resolve(part)
      if not ok then add(out, dir, serr) end
    end
    s = settings.resolve(data)
    if cfg then
      -- The scripted models' files, loaded as a run would (a mistake there is the run's
      -- first failure otherwise); each problem with its file and line.
      local pnames = {}
      for name in pairs(cfg.models.providers) do pnames[#pnames + 1] = name end
      table.sort(pnames)
      for _, name in ipairs(pnames) do
        local p = cfg.models.providers[name]
        if p.kind == "scripted" and p.file then
          if not exists(p.file) then
            add(out, dir, "orket.lua: models.providers." .. name .. ".file: the scripted model's file "
              .. p.file:gsub("^%./", "") .. " does not exist")
          else
            local ok, serr = scripted.load(p, name)
            if not ok then add(out, dir, serr, p.file) end
          end
        end
      end
    end
  end

  -- Roles, each file on its own; the project's override the built-ins by name.
  local role_names = {}
  for _, d in ipairs(roles.dirs(dir)) do
    for _, path in ipairs(roles.lua_files(d)) do
      local r, rerr, _, problems = roles.load_file(path)
      if r then
        role_names[r.name] = r
      else
        for _, p in ipairs(problems or { rerr }) do add(out, dir, p, path) end
      end
    end
  end
  for _ in pairs(role_names) do summary.roles = summary.roles + 1 end

  -- Tools and policies, each file on its own.
  local tool_names = {}
  for _, path in ipairs(policy.files_in { home .. "/tools", dir .. "/tools" }) do
    local reg, terr, _, problems = tools.load { path }
    if reg then
      for _, n in ipairs(reg.names) do tool_names[n] = true end
      summary.tools = summary.tools + 1
    else
      for _, p in ipairs(problems or { terr }) do add(out, dir, p, path) end
    end
  end
  for _, path in ipairs(policy.files_in { home .. "/policies", dir .. "/policies" }) do
    local set, perr = policy.load { path }
    if set then summary.policies = summary.policies + 1 else add(out, dir, perr, path) end
  end
  local _, rerr = routing.load(dir .. "/routing.lua")
  if rerr then add(out, dir, rerr, dir .. "/routing.lua") end

  -- Models: every seat's and role's model names a configured provider.
  if cfg then
    for _, m in ipairs(llm.check_models(cfg.models, s and s.team or {}, role_names)) do
      add(out, dir, m, "orket.lua", m:match("^orket%.lua: team%.([%w_%-]+)%.")
        and lines.table_set(m:match("^orket%.lua: team%.([%w_%-]+)%.")) or nil)
    end
  end

  -- Links: the team's roles exist, a reviewer seat, the roles' tools exist.
  if s then
    for _, seat in ipairs(settings.seats(s)) do
      for i, r in ipairs(s.team[seat].roles) do
        if not role_names[r] then
          add(out, dir, string.format("orket.lua: team.%s.roles[%d]: no role named %q", seat, i, r), nil,
            lines.table_set(seat))
        end
      end
    end
    if #settings.seats_with(s, "integrity_guard") == 0 then
      add(out, dir, "orket.lua: team: no seat holds the integrity_guard role, so nothing could be reviewed")
    end
  end
  local rnames = {}
  for n in pairs(role_names) do rnames[#rnames + 1] = n end
  table.sort(rnames)
  for _, n in ipairs(rnames) do
    local r = role_names[n]
    for i, t in ipairs(r.tools) do
      if not tool_names[t] then add(out, dir, string.format("%s: tools[%d]: no tool named %q", r.file, i, t), r.file) end
    end
  end

  -- Epics: each file on its own, then ids and dependencies across files.
  local files, ferr = import.list_files(dir)
  if not files then
    add(out, dir, ferr, "epics")
  else
    local all, ok_files = {}, true
    for _, f in ipairs(files) do
      local cards, cerr, anchor = import.check_file(f)
      if not cards then
        ok_files = false
        add(out, dir, cerr, f.rel, anchor)
      else
        for _, c in ipairs(cards) do all[#all + 1] = c end
        for _, w in ipairs(cerr) do add(warnings, dir, w, f.rel) end
      end
    end
    if ok_files then
      local set, lerr, _, anchor = import.load(dir)
      if not set then add(out, dir, lerr, "epics", anchor) end
    end
    local ids = {}
    for _, c in ipairs(all) do ids[c.id] = true end
    -- A card whose id is taken (already reported) stays out of the graph: its edges would
    -- show a cycle that is only the clash.
    local graph, nodes, by_id = {}, {}, {}
    for _, c in ipairs(all) do
      if c.type == "epic" then summary.epics = summary.epics + 1 end
      if c.type == "issue" then summary.issues = summary.issues + 1 end
      local first = by_id[c.id] == nil
      if first then graph[c.id], nodes[#nodes + 1], by_id[c.id] = {}, c.id, c end
      for _, d in ipairs(c.deps or {}) do
        if not ids[d.id] then
          add(out, dir, string.format("%s: %s: unknown card %q", c.file, d.path, d.id), c.file, c.anchor)
        elseif first then
          table.insert(graph[c.id], d.id)
        end
      end
    end
    local cycle = require("orket.board").find_cycle(graph, nodes)
    if cycle then
      -- Name the edge that closes the cycle, so the line is the depends_on to change.
      local c, at = by_id[cycle[#cycle - 1]], nil
      for _, d in ipairs(c.deps or {}) do
        if d.id == cycle[#cycle] then at = d.path break end
      end
      add(out, dir, string.format("%s: %s: dependency cycle: %s", c.file, at or "depends_on",
        #cycle == 2 and (cycle[1] .. " depends on itself") or table.concat(cycle, " -> ")), c.file, c.anchor)
    end
  end
  return out, summary, warnings
end

--- format(problem) -> "file:line: message" (or "file: message" when the line is unknown)
function M.format(p)
  if p.line then return string.format("%s:%d: %s", p.file, p.line, p.message) end
  return string.format("%s: %s", p.file or "?", p.message)
end

return M
