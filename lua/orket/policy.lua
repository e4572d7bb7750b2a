-- orket.policy: operator rules for the gate, loaded from policies/*.lua in a restricted
-- environment (orket.scriptenv). A policy file calls deny{...}, ask{...} and allow{...}; the
-- gate (core/gate.c) matches them deny -> ask -> allow, first match within a level.
-- Loading builds a whole new set and only returns it when every file loaded, so a caller
-- swaps sets atomically and keeps the old one on error. Contract: docs/policies.md.
local scriptenv = require "orket.scriptenv"
local scriptfile = require "orket.scriptfile"
local cgate = require "orket.c.gate"
local rt = require "orket.c.runtime"
local detach = require("orket.c.plain").detach
local nearest = require "orket.nearest"
local inert = require "orket.inert"
local fieldline = require "orket.fieldline"

local M = {}

local FIELDS = {
  tool = "glob", role = "glob", seat = "glob", card = "glob", status = "glob",
  path = "globs", outside = "globs", args = "args", when = "function",
  reason = "string", remedy = "string", ignore_case = "boolean",
}
local FIELD_LIST = "tool, role, seat, card, status, path, outside, args, ignore_case, when, reason, remedy"

-- The names a tool, role or seat glob is matched against, and what each may hold: a tool's
-- is letters, digits and _ (a tool file's, and an MCP server's SERVER__TOOL, whose - and .
-- read _: orket.mcp.client.orket_spelling), a role's too (its file's, orket.engine.roles), a
-- seat's letters, digits, _ and - (orket.lua's team, orket.settings). A glob holding another
-- character outside its wildcards (*, **, **/, ?) matches no such name, so its rule would
-- never apply: a tool deny so spelt let the call through, unseen while the server was down
-- (`orket validate` then takes a glob of its tools on trust), and a role or seat deny so
-- spelt let every call through. Refused, as a role's tools entry so spelt is (orket.engine.roles).
local NAMES = {
  tool = { bad = "[^%w_]", is = "a tool's name is letters, digits and _" },
  role = { bad = "[^%w_]", is = "a role is named by its file, roles/NAME.lua, NAME in letters, digits and _" },
  seat = { bad = "[^%w_%-]", is = "a seat of orket.lua's team is named in letters, digits, _ and -" },
}

-- what a tool's name is, for a glob g naming one (an MCP server's: SERVER__TOOL) -> words,
-- server, tool
local function tool_name_is(g)
  local server, tool = g:match("^([a-z][a-z0-9_]-)__(.+)$")
  if not server then return NAMES.tool.is end
  return "a tool of the MCP server " .. server .. " is named " .. server .. "__TOOL, TOOL in letters, digits and _",
    server, tool
end

-- A glob of field (tool, role or seat) that can match no name: an error naming the character
-- no name holds; for a tool's - or ., the spelling Orket gives that MCP tool.
local function check_name_glob(g, where, field)
  local names = NAMES[field]
  local lits = g:gsub("%*%*+/", ""):gsub("[%*%?]", "")
  if not lits:find(names.bad) then return end
  local head = string.format('%s "%s" can match no %s, so the rule would never apply: ', where, inert.line(g), field)
  local name_is, server, tool = names.is, nil, nil
  if field == "tool" then name_is, server, tool = tool_name_is(g) end
  if lits:find("%c") then
    error(head .. "it holds a control character (shown escaped), which no " .. field .. "'s name has: " .. name_is, 0)
  end
  -- a tool's - or . is an MCP tool's, spelt otherwise in Orket (below)
  local other = lits:match(field == "tool" and "[^%w_%-%.]" or names.bad)
  if other then
    error(head .. "no " .. field .. "'s name holds \"" .. inert.line(other) .. "\": " .. name_is
      .. " (wildcards: *, **, ?)", 0)
  end
  local use = g:gsub("[%-%.]", "_")
  error(head .. (server and ("Orket names the MCP server " .. server .. "'s tool " .. tool .. " " .. use
    .. " (a - or . reads _)") or "a tool's name is letters, digits and _ (an MCP tool's - or . reads _)")
    .. ": write \"" .. use .. "\"", 0)
end

-- field: "tool", "role" or "seat" for a rule's glob of names, checked against them
local function check_glob(g, where, field)
  if type(g) ~= "string" or g == "" then error(where .. " must be a non-empty glob string", 0) end
  if #g > 512 then error(where .. " is longer than 512 bytes", 0) end
  if NAMES[field] then check_name_glob(g, where, field) end
  -- said here, as the operator wrote the rule: core/gate.c refuses it too (a glob read to
  -- its NUL, "run_command\0x" was run_command), naming only its place in the whole set
  if g:find("\0", 1, true) then
    error(string.format('%s "%s" holds a NUL byte (shown escaped), which a glob may not hold',
      where, inert.line(g)), 0)
  end
  return g
end

-- One rule table from a script -> the plain rule the C gate takes (+ its predicate). The
-- spec is read from a detached copy: no metamethod of the script runs while compiling.
-- at(k) -> where a field's problem is said ("file:LINE" of the field, else where).
local function compile(level, spec, where, at)
  at = at or function() return where end
  if type(spec) ~= "table" then error(where .. ": " .. level .. " expects a table of fields", 0) end
  local copy, derr = detach(spec)
  if not copy then error(where .. ": " .. level .. ": " .. derr, 0) end
  spec = copy
  local rule = { level = level, name = where }
  -- an unknown field said before any other problem, a misspelt one first, the same each time
  local unknown = {}
  for k in pairs(spec) do
    if FIELDS[k] == nil then unknown[#unknown + 1] = tostring(k) end
  end
  if unknown[1] then
    local first = nearest.ordered(unknown, FIELD_LIST)[1]
    error(at(first) .. ": unknown field '" .. first .. "' in " .. level ..
      " rule (fields: " .. FIELD_LIST .. ")", 0)
  end
  for k, v in pairs(spec) do
    local kind = FIELDS[k]
    local fw = at(k) .. ": " .. level .. "." .. tostring(k)
    if kind == "glob" then
      rule[k] = check_glob(v, fw, k)
    elseif kind == "globs" then
      local list = type(v) == "string" and { v } or v
      if type(list) ~= "table" or #list == 0 then error(fw .. " must be a glob or a list of globs", 0) end
      local out = {}
      for i, g in ipairs(list) do out[i] = check_glob(g, fw .. "[" .. i .. "]") end
      rule[k == "path" and "paths" or "outside"] = out
    elseif kind == "args" then
      if type(v) ~= "table" then error(fw .. " must be a table of argument = glob", 0) end
      local keys = {}
      for ak, ag in pairs(v) do
        if type(ak) ~= "string" then error(fw .. ": argument names must be strings", 0) end
        if ak:find("\0", 1, true) then
          error(string.format('%s: the argument name "%s" holds a NUL byte (shown escaped), which no argument\'s '
            .. "name holds", fw, inert.line(ak)), 0)
        end
        keys[#keys + 1] = ak
        check_glob(ag, fw .. "." .. ak)
      end
      table.sort(keys)
      local out = {}
      for i, ak in ipairs(keys) do out[i] = { ak, v[ak] } end
      rule.args = out
    elseif kind == "function" then
      if type(v) ~= "function" then error(fw .. " must be a function(call) -> boolean", 0) end
      rule.predicate = true
    elseif kind == "boolean" then
      if type(v) ~= "boolean" then
        local shown = type(v) == "string" and ('"' .. inert.line(inert.cut(v, 60)) .. '"')
          or type(v) == "number" and tostring(v) or ("a " .. type(v))
        error(string.format("%s must be true or false, not %s", fw, shown), 0)
      end
      rule[k] = v
    elseif type(v) ~= "string" then
      error(fw .. " must be a string", 0)
    else
      rule[k] = v
    end
  end
  -- it applies to the globs of what the model writes; tool, role, seat, card and status are
  -- Orket's names, matched as spelt. Alone it would read as if it changed those.
  if rule.ignore_case and not (rule.paths or rule.outside or rule.args) then
    error(where .. ": " .. level .. ".ignore_case applies to the rule's path, outside and args globs, and it gives "
      .. "none (tool, role, seat, card and status always match as written)", 0)
  end
  return rule, spec.when
end

-- A rule's calls, as a line starts them: where the next rule begins, which a field's line
-- is not after
local RULE_CALL, RULE_LEVELS = "^%s*(%a+)%s*[{(]", { deny = true, ask = true, allow = true }

-- path's chunk:LINE of field k of the rule called at line `line` (a rule spread over lines
-- said its first line for a typo five lines down) | nil: its first `k =` from that line,
-- before the next rule's call (a field given through a variable has none there). Read only
-- when a rule is refused.
local function field_where(path, chunk, line, k)
  local text = type(k) == "string" and fieldline.read(path)
  if not text then return nil end
  local pos, n = 1, 1
  while n < line do
    pos = text:find("\n", pos, true)
    if not pos then return nil end
    pos, n = pos + 1, n + 1
  end
  local stop, next_line = #text, text:find("\n", pos, true)
  while next_line do
    if RULE_LEVELS[text:match(RULE_CALL, next_line + 1)] then
      stop = next_line
      break
    end
    next_line = text:find("\n", next_line + 1, true)
  end
  local at = fieldline.of(text, k, { pos = pos, stop = stop })
  return at and (chunk .. ":" .. at) or nil
end

--- shown_name(path) -> how a decision names a policy file to the model: Orket's own as
--- "orket:policies/NAME.lua", a project's as "policies/NAME.lua"; no install or project
--- directory (the operator's load errors still give the whole path).
function M.shown_name(path)
  local home = rt.home()
  if type(home) == "string" and home ~= "" and path:sub(1, #home + 1) == home .. "/" then
    return "orket:" .. path:sub(#home + 2)
  end
  return path:match("(policies/[^/]+)$") or path:match("([^/]+)$") or path
end

local Set = {}
Set.__index = Set

-- converted for the gate once, not at every call (a reload builds a new set)
local function compiled(set)
  local cok, rules = pcall(cgate.compile_rules, set.rules)
  if not cok then return nil, "policies: " .. tostring(rules), "EINVAL" end
  set.compiled = rules
  return set
end

--- load(files[, base]) -> set | nil, "file:line: message", CODE
--- files: list of paths, loaded in order; rules keep that order within each level.
--- set.origin[i]: the file rule i came from (merge takes a file's rules by it).
--- base: the project's directory, its files then named from it in errors (scriptfile.name).
function M.load(files, base)
  local set = setmetatable({ rules = {}, predicates = {}, files = {}, origin = {} }, Set)
  for _, path in ipairs(files) do
    local box, refused, loaded
    local shown, chunk = M.shown_name(path), scriptfile.name(path, base)
    local merr, mcode = scriptfile.misnamed(path, chunk)
    if merr then return nil, merr, mcode end
    local function adder(level)
      return function(spec)
        -- the set is compiled once the files have loaded: a rule added later (from a
        -- `when`) would be listed and never applied, one more at every call
        if loaded then
          error(string.format("%s{} may only be called while %s loads, not from a rule's when or later: "
            .. "the rules are fixed once the file has loaded", level, shown), 2)
        end
        -- the script's line that made the call (through a pcall, a frame or two up)
        local where, line = chunk, nil
        for level = 2, 6 do
          local info = debug.getinfo(level, "Sl")
          if not info then break end
          if info.currentline and info.currentline > 0 then
            where, line = chunk .. ":" .. info.currentline, info.currentline
            break
          end
        end
        local ok, rule, pred = pcall(compile, level, spec, where, line and function(k)
          return field_where(path, chunk, line, k) or where
        end)
        if not ok then
          -- kept, and raised: a script's pcall(deny, {...}) must not drop a rule unseen
          refused = refused or rule
          error(rule, 0)
        end
        -- the name the model reads in a decision: never a path of this machine
        rule.name = shown .. (line and (":" .. line) or "")
        set.rules[#set.rules + 1] = rule
        set.predicates[#set.rules] = pred and { fn = pred, box = box } or nil
        set.origin[#set.rules] = path
      end
    end
    box = scriptenv.new {
      name = chunk,
      globals = { deny = adder("deny"), ask = adder("ask"), allow = adder("allow"), glob = cgate.glob },
    }
    local ok, err, code = scriptfile.run(box, path, { chunk = chunk, result = false, any_result = true })
    loaded = true
    -- deny{}/ask{}/allow{} errors already name file:line; Lua errors carry it too. A rule
    -- refused is bad input (EINVAL), whether the script let its error end the load or caught
    -- it: only a failure of the script itself is ERUNTIME (or ESYNTAX, EBUDGET)
    if refused then return nil, refused, "EINVAL" end
    if not ok then return nil, err, code or "ERUNTIME" end
    -- a file that returns its rules (as roles and tools return their table) declares none:
    -- the gate would allow what the operator meant to deny, without a word
    if err ~= nil then
      return nil, chunk .. ": returns a " .. err .. ", which a policy file does not: it declares its rules "
        .. "by calling deny { ... }, ask { ... } or allow { ... } (docs/policies.md)", "EINVAL"
    end
    set.files[#set.files + 1] = path
  end
  return compiled(set)
end

--- merge(files, sets) -> set | nil, msg, CODE: a set of files' rules, in the order of
--- files (as load would read them), each file's taken from the first of sets that loaded
--- it (a file none loaded is left out). No script runs: a hot reload keeps a removed file's
--- rules as they were loaded (orket.engine.reload).
function M.merge(files, sets)
  local set = setmetatable({ rules = {}, predicates = {}, files = {}, origin = {} }, Set)
  for _, path in ipairs(files) do
    for _, from in ipairs(sets) do
      local found = false
      for _, p in ipairs(from.files) do if p == path then found = true break end end
      if found then
        for i, rule in ipairs(from.rules) do
          if (from.origin or {})[i] == path then
            set.rules[#set.rules + 1] = rule
            set.predicates[#set.rules] = from.predicates[i]
            set.origin[#set.rules] = path
          end
        end
        set.files[#set.files + 1] = path
        break
      end
    end
  end
  return compiled(set)
end

--- order(lists) -> paths: lists of folders' scripts (each sorted), a later list's file
--- overriding an earlier one's of the same name in its place (a project's over Orket's)
function M.order(lists)
  local by_name, order = {}, {}
  for _, list in ipairs(lists) do
    for _, path in ipairs(list) do
      local name = path:match("[^/]+$")
      if not by_name[name] then order[#order + 1] = name end
      by_name[name] = path
    end
  end
  local out = {}
  for _, name in ipairs(order) do out[#out + 1] = by_name[name] end
  return out
end

--- files_in(dirs[, base[, skip]]) -> sorted list of */*.lua in each existing directory
--- (orket.scriptfile.list: of any kind, so that a FIFO or a folder is refused by name when
--- read); a later directory's file overrides an earlier one's of the same name (a project's
--- policies/ over Orket's). A directory that is there and cannot be listed: the list, then
--- "dir: cannot be listed (CODE: ...)", CODE, dir named from base (scriptfile.name), for
--- the caller to refuse rather than go on without its scripts.
function M.files_in(dirs, base, skip)
  local lists, ferr, fcode = {}, nil, nil
  for i, dir in ipairs(dirs) do
    local err, code, list
    list, err, code = scriptfile.list(dir, scriptfile.name(dir, base))
    if err and not ferr then ferr, fcode = err, code end
    -- a skipped file is left out before the names are matched: the earlier folder's file of
    -- its name (a built-in) stays, as it would were the file not there
    lists[i] = {}
    for _, p in ipairs(list or {}) do if not (skip and skip[p]) then lists[i][#lists[i] + 1] = p end end
  end
  return M.order(lists), ferr, fcode
end

-- unmatched_args(rule, known, out): each of the rule's args that no tool it applies to
-- takes as text (known.arguments: tool name -> its arguments' types by name, or true when
-- any name may come): gate.c matches an args glob against a string argument only
local function unmatched_args(rule, known, out)
  local prefixes = known.tool_prefixes or {}
  for _, pair in ipairs(rule.args) do
    local key, open, takers, other = pair[1], false, {}, nil
    for _, name in ipairs(known.tool) do
      if not rule.tool or cgate.glob(rule.tool, name) then
        local args = known.arguments[name]
        if args == true or args == nil then open = true break end
        takers[#takers + 1] = name
        local t = args[key]
        if t == true or t == "string" then open = true break end
        if t then other = other or string.format("%s's %s is %s %s", name, key, t:match("^[aeiou]") and "an" or "a", t) end
      end
    end
    for _, prefix in ipairs(prefixes) do -- an MCP server's tool whose schema was not read
      if not open and (not rule.tool or rule.tool:sub(1, #prefix) == prefix) then open = true end
    end
    if not open and other then
      out[#out + 1] = string.format("%s: %s.args.%s: an args glob matches text, and no tool the rule applies to "
        .. "takes %q as text, so the rule never applies (%s)", rule.name, rule.level, key, key, other)
    elseif not open and #takers > 0 then
      local said = takers[1]
      if #takers == 1 then
        local names = {}
        for k in pairs(known.arguments[said]) do names[#names + 1] = k end
        table.sort(names)
        said = string.format("%s's arguments: %s", said, #names > 0 and table.concat(names, ", ") or "none")
      else
        said = string.format("%d tools: %s%s", #takers, table.concat(takers, ", ", 1, math.min(#takers, 5)),
          #takers > 5 and ", ..." or "")
      end
      out[#out + 1] = string.format("%s: %s.args.%s: no tool the rule applies to takes an argument %q, so the rule "
        .. "never applies (%s)", rule.name, rule.level, key, key, said)
    end
  end
end

--- unmatched(set, known) -> {"file:line: level.field: message"...}: each tool, role, seat or
--- status glob of set's rules that matches none of known.tool, known.role, known.seat or
--- known.status (arrays of names; a field whose list is not given is not checked; a tool
--- glob beginning with one of known.tool_prefixes, an MCP server's whose tools could not be
--- listed, is taken as matching), and each args key no tool the rule applies to takes (with
--- known.arguments). Such a rule never applies: a deny for "wirte_file" lets write_file
--- through, and so does one on args.contnet. For `orket validate`.
function M.unmatched(set, known)
  local WHAT = { tool = "tool", role = "role", seat = "seat of the team", status = "card status" }
  local PLURAL = { tool = "tools", role = "roles", seat = "seats", status = "statuses" }
  local out = {}
  for _, rule in ipairs(set.rules) do
    if rule.args and known.arguments and known.tool then unmatched_args(rule, known, out) end
    for _, field in ipairs { "tool", "role", "seat", "status" } do
      local g, names = rule[field], known[field]
      if g and names then
        local hit = false
        if field == "tool" then -- a tool of a server whose tools could not be listed
          for _, prefix in ipairs(known.tool_prefixes or {}) do
            if g:sub(1, #prefix) == prefix then hit = true break end
          end
        end
        for _, n in ipairs(names) do
          if cgate.glob(g, n) then hit = true break end
        end
        if not hit then
          out[#out + 1] = string.format("%s: %s.%s: %q matches no %s, so the rule never applies (%s: %s)",
            rule.name, rule.level, field, g, WHAT[field], PLURAL[field], table.concat(names, ", "))
        end
      end
    end
  end
  return out
end

--- set:predicate(i, call) -> matched | nil, message  (runs rule i's `when` under the
--- script budget; call is a plain copy, so the script cannot change what the gate sees)
function Set:predicate(i, call)
  local p = self.predicates[i]
  if not p then return nil, "rule " .. i .. " has no predicate" end
  -- a call the copy refuses (a JSON null in the arguments) is an error, which denies: an
  -- empty table in its place made a deny's `when` answer about nothing, and the call passed
  local copy, cerr = scriptenv.copy(call)
  if copy == nil then return nil, "the call cannot be handed to the rule: " .. tostring(cerr) end
  local ok, res, code = p.box:pcall(p.fn, copy)
  if not ok then return nil, scriptenv.first_line(res) .. " (" .. tostring(code) .. ")" end
  return res and true or false
end

return M
