-- orket.engine.roles: role scripts (roles/*.lua) loaded into restricted environments
-- (orket.scriptenv) with the prompt toolkit; a project's roles/ overrides the built-ins by
-- name. A set is loaded all or nothing, so a reload swaps it atomically. docs/roles.md.
local scriptenv = require "orket.scriptenv"
local scriptfile = require "orket.scriptfile"
local prompt = require "orket.engine.prompt"
local schemas = require "orket.engine.schemas"
local rt = require "orket.c.runtime"
local nearest = require "orket.nearest"
local inert = require "orket.inert"
local sourcepos = require "orket.sourcepos"
local valid_utf8 = require("orket.c.inert").valid

local M = {}

local KEYS = { name = true, intent = true, tools = true, model = true, dialect = true, system = true, build = true }
local DIALECTS = { native = true, json = true }

local lua_files = scriptfile.list
M.lua_files = lua_files

-- Whether t's keys are 1..n and nothing else: an entry under another key (write_file =
-- true) or after a hole was left out of the role's tools unseen, the tool then refused
local function is_array(t)
  local n = 0
  for k in next, t do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

-- Checks a role's table (detached by orket.scriptfile: no script code runs here): role | nil, first problem, every problem (validate reports them
-- all, so an operator fixes a file in one pass rather than one error per run), and what
-- could be read of a broken one ({file=, tools=}: its tool names), whose tools validate
-- checks too, so that a wrong tool name is not said only once the rest is fixed.
local function validate(def, file, stem)
  if type(def) ~= "table" then
    local msg = file .. ": must return a table (the role)"
    return nil, msg, { msg }
  end
  local problems = {}
  local function bad(msg) problems[#problems + 1] = file .. ": " .. msg end
  local unknown = {}
  for k in next, def do
    if not KEYS[k] then unknown[#unknown + 1] = tostring(k) end
  end
  local fields = "name, intent, tools, model, dialect, system, build"
  for _, k in ipairs(nearest.ordered(unknown, fields)) do -- a misspelt one first
    bad("unknown field '" .. k .. "' (fields: " .. fields .. ")")
  end
  local name = rawget(def, "name") or stem
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    -- (a name from the file is scriptfile.misnamed's: this one is the name field's)
    bad(type(name) == "string" and string.format("name \"%s\" is no role's name: a role's name is letters, digits "
      .. "and _, and is its file's (roles/NAME.lua): leave the field out", inert.line(inert.clip(name, 64)))
      or ("name must be a string, got " .. type(name)))
  elseif stem and name ~= stem then
    -- as for tools: a role replaces another (a built-in) only through a file of its name
    bad(string.format("name %q differs from the file's name %q: a role is named by its file "
      .. "(roles/%s.lua would add or replace the role %s); rename the file or the name", name, stem, name, name))
  end
  if type(rawget(def, "intent")) ~= "string" then bad("intent must be a string saying what the role does") end
  local tools = rawget(def, "tools")
  if type(tools) ~= "table" or not is_array(tools) then
    bad("tools must be an array of tool names")
    tools = {}
  end
  for i, t in ipairs(tools) do
    if type(t) ~= "string" then
      bad(string.format("tools[%d] must be a tool name", i))
    elseif t:find("%c") then
      -- no tool's name holds one (an MCP server's are refused when it lists them): taken
      -- on trust as SERVER__TOOL until the server answered, it failed only at its first call
      local server = t:match("^([a-z][a-z0-9_]-)__")
      bad(string.format("tools[%d]: the tool name \"%s\" holds a control character (shown escaped), which no tool's "
        .. "name has: %s", i, inert.line(t), server and ("a tool of the MCP server " .. server .. " is named "
        .. server .. "__TOOL, TOOL in letters, digits and _") or "a tool's name is letters, digits and _"))
    elseif t:find("[%-%.]") then
      -- no Orket tool's name holds a - or a . (an MCP server's get-sum is SERVER__get_sum:
      -- orket.mcp.client.orket_spelling). Refused, not mapped: a tool then has one name in
      -- roles, policies, approvals and events alike, the one the model and the logs show.
      -- Taken on trust as SERVER__TOOL, it failed only at its first call.
      local server, tool = t:match("^([a-z][a-z0-9_]-)__(.+)$")
      local use = t:gsub("[%-%.]", "_")
      bad(string.format("tools[%d]: no tool is named \"%s\": %s: write \"%s\"", i, t, server
        and ("Orket names the MCP server " .. server .. "'s tool " .. tool .. " " .. use .. " (a - or . reads _)")
        or "a tool's name is letters, digits and _ (an MCP tool's - or . reads _)", use))
    end
  end
  local dialect = rawget(def, "dialect") or "native"
  if not DIALECTS[dialect] then bad("dialect must be \"native\" or \"json\"") end
  local model = rawget(def, "model")
  if model ~= nil and type(model) ~= "string" then bad("model must be \"provider:model\"") end
  local build, system = rawget(def, "build"), rawget(def, "system")
  if build ~= nil and type(build) ~= "function" then bad("build must be a function(ctx)") end
  if system ~= nil and type(system) ~= "string" and type(system) ~= "function" then
    bad("system must be a string or a function(ctx)")
  elseif type(system) == "string" and not valid_utf8(system) then
    bad(string.format("system is not valid UTF-8 text (byte %d is not): the model reads it as UTF-8",
      select(2, utf8.len(system))))
  end
  -- (a misspelt system or build is said above, with the field meant: not a second time)
  local misspelt = false
  for _, k in ipairs(unknown) do
    local near = nearest.nearest(k, fields)
    if near == "system" or near == "build" then misspelt = true end
  end
  if build == nil and system == nil and not misspelt then bad("give build(ctx) or system (the system prompt)") end
  local t = {}
  -- (a name said above for its control character is left out of the half-read role's
  -- list, its place kept: it is not said a second time as a tool that is not there)
  for i, v in ipairs(tools) do t[i] = not (type(v) == "string" and v:find("[%c%-%.]")) and v end
  if #problems > 0 then return nil, problems[1], problems, { file = file, tools = t } end
  return { name = name, intent = def.intent, tools = t, model = model, dialect = dialect,
    build = build, system = system }
end

--- load_file(path[, base]) -> role | nil, "file:line: message", CODE, {every problem...}[, {file=,
--- tools=}: a role that ran but is invalid, with a copy of its tools array (an entry that
--- is no string is among the problems already)]. base: the project's directory; the role
--- is then named from it (scriptfile.name: role.chunk, in its errors at load and in a turn).
function M.load_file(path, base)
  local stem = path:match("([^/]+)%.lua$")
  local chunk = scriptfile.name(path, base)
  local merr, mcode = scriptfile.misnamed(path, chunk, "role")
  if merr then return nil, merr, mcode, { merr } end
  local box = scriptenv.new { name = chunk, globals = { prompt = prompt } }
  local ok, def, code = scriptfile.run(box, path, { chunk = chunk })
  if not ok then return nil, def, code, { def } end
  local role, err, problems, partial = validate(def, chunk, stem)
  if not role then return nil, err, "EINVAL", problems, partial end
  role.box, role.file, role.chunk = box, path, chunk
  return role
end

--- load(dirs[, base[, skip]]) -> set {by_name = {name = role}, names = {...}} | nil, msg, CODE
--- Later directories override earlier ones by role name. base: as load_file's. skip: {path =
--- true} of files left unread (a hot reload's held ones: orket.engine.reload). A folder that
--- is there and cannot be listed: nil, "roles: cannot be listed (...)", CODE.
function M.load(dirs, base, skip)
  local set = { by_name = {}, names = {} }
  for _, dir in ipairs(dirs) do
    -- a folder that cannot be listed is refused, never read as one with no roles
    local paths, lerr, lcode = lua_files(dir, scriptfile.name(dir, base))
    if lerr then return nil, lerr, lcode end
    for _, path in ipairs(paths) do
      if not (skip and skip[path]) then
        local role, err, code = M.load_file(path, base)
        if not role then return nil, err, code end
        if not set.by_name[role.name] then set.names[#set.names + 1] = role.name end
        set.by_name[role.name] = role
      end
    end
  end
  table.sort(set.names)
  return set
end

--- dirs(project_dir) -> the built-in roles folder, then the project's
function M.dirs(project_dir)
  local home = rt.home()
  return { home .. "/roles", (project_dir or ".") .. "/roles" }
end

local function check_messages(msgs, file)
  if type(msgs) ~= "table" or #msgs == 0 then return nil, file .. ": build must return a non-empty array of messages" end
  -- walked as ipairs walks (to the first nil), by index: no C call per message
  local i, m = 1, msgs[1]
  while m ~= nil do
    if type(m) ~= "table" or type(m.role) ~= "string" then
      return nil, string.format("%s: message %d needs a role", file, i)
    end
    local content = m.content
    if content ~= nil and type(content) ~= "string" then
      return nil, string.format("%s: message %d: content must be a string", file, i)
    end
    -- a field JSON cannot name (a boolean or a number key) failed the turn when the store
    -- wrote the request, as the engine's error
    for k in pairs(m) do
      if type(k) ~= "string" then
        return nil, string.format("%s: message %d: a field's name must be a string (got %s)", file, i, type(k))
      end
    end
    -- the request is JSON, which a byte that is not UTF-8 breaks for any strict reader: a
    -- card's text stored before it was checked, a role's own, goes as \xNN (msgs is a copy)
    if content and not valid_utf8(content) then m.content = inert.bytes(content) end
    i = i + 1
    m = msgs[i]
  end
  return msgs
end

--- messages(role, ctx) -> messages | nil, msg, CODE. Runs the role's build (or the
--- toolkit's default shape around its system prompt) under the script budget, on a copy of
--- ctx, and copies the result as plain data. The tools' parameter schemas are not copied:
--- the role gets read-only views of them (orket.engine.schemas), the same every step.
--- own_card: ctx.card is a copy the caller made for this call and keeps no more (the
--- engine's turn: the board's copy of the card for this step), so it is handed over as is.
function M.messages(role, ctx, own_card)
  local specs, card = ctx.tools, ctx.card
  ctx.tools = nil
  if own_card then ctx.card = nil end
  local arg, aerr = scriptenv.copy(ctx)
  ctx.tools, ctx.card = specs, card
  -- a context too large to hand over (tool results of one step past the copy's cap of
  -- strings) ends the turn as the role's, said, not as the engine's failure
  if not arg then return nil, "the role's context cannot be handed over: " .. tostring(aerr), "EINVAL" end
  if own_card then arg.card = card end
  if type(specs) == "table" then arg.tools = schemas.tools(specs) end
  arg.dialect = role.dialect
  local ok, res, code
  local file = role.chunk or role.file -- named as its errors name it (load_file)
  if role.build then
    ok, res, code = role.box:pcall(role.build, arg)
  else
    local sys = role.system
    if type(sys) == "function" then
      ok, sys, code = role.box:pcall(sys, arg)
      if not ok then return nil, scriptfile.said(sys, file), code end
      if type(sys) ~= "string" then return nil, file .. ": system(ctx) must return a string", "EINVAL" end
      -- system(ctx) may have left metamethods in arg (ctx.card = a table whose __index
      -- loops): the messages are built from it under the role's budget, as build's are
      ok, res, code = role.box:pcall(prompt.messages, arg, sys)
      if not ok then
        return nil, file .. ": building the messages from the ctx system(ctx) left: "
          .. sourcepos.plain(scriptenv.first_line(res)), code
      end
    else
      ok, res = true, prompt.messages(arg, sys)
    end
  end
  -- "file:line: message" alone: the card's comment and the run's events are for the
  -- operator, and the script's frames below it say nothing the line does not. The line is
  -- the script's, also for an error raised in a helper it misused (prompt.*) or a value
  -- raised that is no message (scriptfile.message), and no directory of the machine is in it
  if not ok then return nil, scriptfile.said(res, file), code end
  local msgs, cerr = scriptenv.copy(res)
  if cerr then return nil, file .. ": messages are not plain data: " .. cerr, "EINVAL" end
  local m, err = check_messages(msgs, file)
  if not m then return nil, err, "EINVAL" end
  return m
end

--- tool_order(roles, names) -> names (a role's tools) in the one order every seat's list
--- follows: the tools more of the project's roles have first, then by name. Seats whose
--- roles share tools then send the same first tools, a prefix a one-slot local server
--- keeps between their calls. nil (all the registry's tools, sorted) stays nil.
function M.tool_order(roles, names)
  if names == nil then return nil end
  local uses = {}
  for _, rn in ipairs(roles and roles.names or {}) do
    local r = roles.by_name[rn]
    for _, t in ipairs(r and r.tools or {}) do uses[t] = (uses[t] or 0) + 1 end
  end
  local out = table.move(names, 1, #names, 1, {})
  table.sort(out, function(a, b)
    local ua, ub = uses[a] or 0, uses[b] or 0
    if ua ~= ub then return ua > ub end
    return a < b
  end)
  return out
end

--- kept_tool_order(roles, names) -> tool_order's answer, kept per role set and tool list
--- (read it, do not change it): sorting every role's tools each turn was a fifth of the
--- engine's run:prepare. It is a function of every role's list and the one asked for,
--- which a hot reload replaces (new tables) but the console hands out to be edited in
--- place; so what it was sorted from is kept beside it and compared, name by name, first.
local tool_orders = setmetatable({}, { __mode = "k" }) -- roles -> {names -> {from=, list=}}

-- Writes list's names into `from` after place n, as ipairs walks it (up to the first nil)
-- but by index: ipairs' step is a C call per name, most of this walk's cost. -> n, changed
local function note_names(from, n, list, changed)
  local i = 1
  local v = list[1]
  while v ~= nil do
    n = n + 1
    if from[n] ~= v then from[n], changed = v, true end
    i = i + 1
    v = list[i]
  end
  return n, changed
end

-- Writes into `from` what the order of names depends on (each role's name and tools, a
-- false after each role's, then names) -> whether anything differed from what it held.
-- Written out rather than through a helper: it runs for every turn a run prepares.
local function order_inputs(from, roles, names)
  local n, changed = 0, false
  local rnames, by_name = roles.names, roles.by_name
  local i = 1
  local rn = rnames and rnames[1]
  while rn ~= nil do
    n = n + 1
    if from[n] ~= rn then from[n], changed = rn, true end
    local r = by_name[rn]
    local tools = r and r.tools
    if tools then n, changed = note_names(from, n, tools, changed) end
    n = n + 1
    if from[n] ~= false then from[n], changed = false, true end
    i = i + 1
    rn = rnames[i]
  end
  n, changed = note_names(from, n, names, changed)
  if #from ~= n then
    for k = #from, n + 1, -1 do from[k] = nil end
    changed = true
  end
  return changed
end

function M.kept_tool_order(roles, names)
  if names == nil or roles == nil then return M.tool_order(roles, names) end
  local by_names = tool_orders[roles]
  if not by_names then
    by_names = setmetatable({}, { __mode = "k" })
    tool_orders[roles] = by_names
  end
  local kept = by_names[names]
  if not kept then
    kept = { from = {} }
    by_names[names] = kept
  end
  if order_inputs(kept.from, roles, names) or not kept.list then
    kept.list = M.tool_order(roles, names)
  end
  return kept.list
end

return M
