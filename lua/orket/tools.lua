-- orket.tools: the tool registry. Each tools/*.lua file returns
--   { name=, description=, parameters=<schema>, effect="read"|"write"|"board"|"process"|"sandbox",
--     status=<fixed target status or nil>, wait_reason=<the reason that status is entered with>, handler=function(args, ctx) -> result | nil, msg, code,
--     idempotent=bool, recover=function(args, ctx) -> result | nil }  (the last two: "write" only)
-- and is loaded in its own restricted environment (orket.scriptenv). Handlers reach the world
-- only through ctx (ctx.fs, and ctx.board / ctx.memory: views bound to the card and the
-- engine's actor, never the host objects; ctx.card, ctx.actor: copies) and run under the
-- script budget. Loading is all-or-nothing, so a reload swaps registries atomically.
-- Contract: docs/tools.md.
local scriptenv = require "orket.scriptenv"
local cgate = require "orket.c.gate"
local cschema = require "orket.c.schema"
local policy = require "orket.policy"
local scriptfile = require "orket.scriptfile"
local inert = require "orket.inert"
local sourcepos = require "orket.sourcepos"
local json = require "cjson.safe"
local sm = require "orket.c.statemachine"

local M = {}

-- Budget for one handler call: searches walk many files, so more than a policy predicate.
M.BUDGET = { instructions = 200000000, timeout_ms = 10000, memory = 256 * 1024 * 1024 }

-- The effect kinds a tool file may declare, and which may say how to recover after a
-- crash: the gate's one table (core/gate.c).
local EFFECTS = cgate.effects
local KEYS = { name = true, description = true, parameters = true, effect = true, status = true,
  wait_reason = true, handler = true, idempotent = true, recover = true }
local STATUS_SET = {}
for _, s in ipairs(sm.statuses()) do STATUS_SET[s] = true end
local WAIT_REASONS = { resource = true, dependency = true, review = true, input = true, system = true }

local Registry = {}
Registry.__index = Registry

-- Checks a tool's table: true | nil, first problem, every problem (orket validate reports
-- them all, so a file is fixed in one pass).
local function validate(def, file)
  if type(def) ~= "table" then
    local msg = file .. ": must return a table (the tool definition)"
    return nil, msg, { msg }
  end
  local problems = {}
  local function bad(msg) problems[#problems + 1] = file .. ": " .. msg end
  local unknown = {}
  for k in pairs(def) do
    if not KEYS[k] then unknown[#unknown + 1] = tostring(k) end
  end
  table.sort(unknown)
  for _, k in ipairs(unknown) do
    bad("unknown field '" .. k ..
      "' (fields: name, description, parameters, effect, status, wait_reason, handler, idempotent, recover)")
  end
  if type(def.name) ~= "string" or not def.name:match("^[a-z][a-z0-9_]*$") or #def.name > 64 then
    bad("name must be a snake_case string of at most 64 characters")
  else
    -- The file's name is the tool's: a project overrides a tool only through a file of its
    -- name (policy.files_in), so a copied template keeping name = "write_file" cannot
    -- silently replace the built-in from tools/my_write.lua.
    local stem = file:match("([^/]+)%.lua$")
    if stem and stem ~= def.name then
      bad(string.format("name %q differs from the file's name %q: a tool is named by its file "
        .. "(tools/%s.lua would add or replace the tool %s); rename the file or the name", def.name, stem,
        def.name, def.name))
    end
  end
  if type(def.description) ~= "string" or def.description == "" then
    bad("description must be a non-empty string")
  end
  if not (EFFECTS[def.effect] and EFFECTS[def.effect].declared) then bad("effect must be \"read\", \"write\", \"board\" or \"process\" (runs a program), or \"sandbox\" "
    .. "(reaches the live sandbox)") end
  if def.status ~= nil and type(def.status) ~= "string" then
    bad("status must be a string")
  elseif def.status and def.status:find("%c") then
    -- no status has one, and the gate refuses a NUL only when the tool is first called
    bad(string.format("status \"%s\" holds a control character (shown escaped): a status is a card status's "
      .. "name, as \"waiting_for_developer\"", inert.line(def.status)))
  elseif def.status and not STATUS_SET[def.status] then
    -- every call of it was refused (ESTATUS), with a remedy the model could not follow
    bad(string.format("status \"%s\" is no card status (%s)", inert.line(def.status), table.concat(sm.statuses(), ", ")))
  end
  if def.wait_reason ~= nil then
    -- the gate asks the state machine about the fixed status with this reason
    if not WAIT_REASONS[def.wait_reason] then
      bad("wait_reason must be \"resource\", \"dependency\", \"review\", \"input\" or \"system\"")
    end
    if def.status == nil then bad("wait_reason needs a fixed status (the status it is the reason for)") end
  elseif type(def.status) == "string" and STATUS_SET[def.status] and sm.needs_reason(def.status) then
    -- the reason is the tool's, not an argument: every call was refused (EREASON_REQUIRED)
    -- telling the model to give one, which the schema would not let it
    bad(string.format("status \"%s\" needs a wait_reason (\"resource\", \"dependency\", \"review\", \"input\" or "
      .. "\"system\"): a card moves there only with one, and the model cannot give it", def.status))
  end
  if type(def.handler) ~= "function" then bad("handler must be a function(args, ctx)") end
  if def.idempotent ~= nil and type(def.idempotent) ~= "boolean" then
    bad("idempotent must be a boolean")
  end
  if def.recover ~= nil and type(def.recover) ~= "function" then
    bad("recover must be a function(args, ctx) -> result | nil")
  end
  if (def.idempotent ~= nil or def.recover ~= nil) and not (EFFECTS[def.effect] or {}).recover then
    bad("idempotent and recover apply only to tools with effect = \"write\", \"process\" or \"sandbox\" (effects "
      .. "outside the store)")
  end
  if def.idempotent and def.recover ~= nil then
    bad("a tool is either idempotent (re-run after a crash) or has recover, not both")
  end
  local params = def.parameters or { type = "object", properties = {} }
  local ok, err = cschema.check_schema(params, file .. ": parameters")
  if not ok then
    problems[#problems + 1] = err
  elseif params.type ~= "object" then
    bad("parameters.type must be \"object\"")
  end
  if #problems > 0 then return nil, problems[1], problems end
  return true
end

-- A tool whose effect does not write gets a workspace view that only reads (tool_fs): the
-- words of its refusal, {name, effect}; nil for one whose effect writes.
local function fs_denial(d)
  local e = EFFECTS[d.effect]
  if e and e.writes then return nil end
  return d.fs_denial or { tostring(d.name), tostring(d.effect) }
end

--- load(files[, base]) -> registry | nil, "file: message", CODE, {every problem of that file...}
--- base: the project's directory, its tools then named from it (scriptfile.name: tool.chunk)
function M.load(files, base)
  local reg = setmetatable({ by_name = {}, names = {}, files = {} }, Registry)
  for _, path in ipairs(files) do
    -- The file's top level only defines the tool: it runs under the load budget of every
    -- operator script (scriptenv.DEFAULTS, as roles, policies and orket.lua do), so a file
    -- that loops fails its load in about 50 ms of CPU rather than a handler's second; the
    -- box's calls of the handler get the tool budget afterwards.
    local chunk = scriptfile.name(path, base)
    local merr, mcode = scriptfile.misnamed(path, chunk, "tool")
    if merr then return nil, merr, mcode, { merr } end
    local box = scriptenv.new { name = chunk, globals = { glob = cgate.glob } }
    local ok, def, code = scriptfile.run(box, path, { chunk = chunk }) -- detached: no script metamethod runs below
    if not ok then return nil, def, code, { def } end
    box.instructions, box.timeout_ms, box.memory = M.BUDGET.instructions, M.BUDGET.timeout_ms, M.BUDGET.memory
    local vok, verr, problems = validate(def, chunk)
    if not vok then return nil, verr, "EINVAL", problems end
    local copy = {}
    for k, v in pairs(def) do copy[k] = v end -- rawly: the definition cannot change later
    copy.parameters = scriptenv.copy(def.parameters or { type = "object", properties = {} })
    -- converted for the gate once here, not at every call (a reload builds a new registry)
    local cok, compiled = pcall(cgate.compile_schema, copy.parameters)
    if not cok then return nil, chunk .. ": parameters: " .. tostring(compiled), "EINVAL" end
    copy.compiled_schema = compiled
    -- what the model is told, made once: the same table every turn, so the model client
    -- keeps its encoded JSON (orket.llm's fixed_tools) instead of encoding it per request
    copy.spec = { name = copy.name, description = copy.description, parameters = copy.parameters }
    copy.box, copy.file, copy.chunk = box, path, chunk
    copy.fs_denial = fs_denial(copy) -- made once, not per call
    if not reg.by_name[copy.name] then reg.names[#reg.names + 1] = copy.name end
    reg.by_name[copy.name] = copy
    reg.files[#reg.files + 1] = path
  end
  table.sort(reg.names)
  return reg
end

--- load_dirs(dirs[, base]) -> registry | nil, msg, CODE  (later directories override by file name)
function M.load_dirs(dirs, base)
  -- a folder that cannot be listed, or a file not read for its name (x.lua.txt), is refused as
  -- a run refuses it: a tool left out would leave the built-in in its place without a word
  local paths, lerr, lcode = policy.files_in(dirs, base)
  if lerr then return nil, lerr, lcode end
  return M.load(paths, base)
end

--- registry:get(name) -> definition | nil
function Registry:get(name) return self.by_name[name] end

--- registry:specs([names]) -> {{name=, description=, parameters=}...} for the model: a
--- fresh array of the registry's own entries, made at load with their parameters (shared,
--- not copied per call: the engine asks for the specs every turn and deep-copying each
--- schema was most of a turn's cost). Callers read them and never change them, which is
--- what lets the engine ask the model client to keep their encoded JSON (fixed_tools).
--- Role scripts see read-only views of them (orket.engine.schemas, through roles.messages).
function Registry:specs(names)
  -- walked as ipairs walks (to the first nil), by index: no C call per name
  local list, by_name = names or self.names, self.by_name
  local out, k, i = {}, 0, 1
  local n = list[1]
  while n ~= nil do
    local d = by_name[n]
    if d then
      k = k + 1
      out[k] = d.spec
    end
    i = i + 1
    n = list[i]
  end
  return out
end

local WEAK_KEYS = { __mode = "k" }

--- registry:kept_specs(names) -> specs(names), made once per names list and kept (weakly,
--- by the list): the same array every turn for a list that is never changed, as
--- roles.kept_tool_order's lists are (a changed order is a new list). A registry's entries
--- never change once loaded (a hot reload builds a new registry, with a cache of its own),
--- so neither does the answer. Read it, never change it: the engine hands it to every
--- turn of the role (the model client and roles.messages read it). nil names: specs().
function Registry:kept_specs(names)
  if names == nil then return self:specs() end
  local kept = rawget(self, "kept_specs_of")
  if not kept then
    kept = setmetatable({}, WEAK_KEYS)
    self.kept_specs_of = kept
  end
  local out = kept[names]
  if not out then
    out = self:specs(names)
    kept[names] = out
  end
  return out
end

-- What a tool handler may do with the workspace: the operations (FS_FN below: read, write,
-- append, list, stat, mkdir, delete, move), not close. Reads go through ctx.may_read when
-- the host gives one, so a tool that reads many files (search_files) cannot reach what the
-- policies deny to read_file. Only a tool whose effect writes (effect = "write") may change
-- the workspace: the gate counts and confines that effect's paths and content, and the
-- engine journals its intent before it runs, outside the step's transaction; each change
-- its handler makes goes through ctx.may_change when the host gives one, judged as the file
-- tool that makes it (change_refused), whatever arguments the call had. Any other tool's view refuses write, append, mkdir, delete and move, raising at the script's line
-- (denial_of), so no change to the card's branch passes beside the limits and the crash
-- protocol.

-- A view is a table of the shared functions below; the workspace and may_read it stands for
-- are kept here, out of the script's reach. Eight closures and a growing table per call
-- were a tenth of the tool call's Lua time.
local fs_of = setmetatable({}, { __mode = "k" })
local may_read_of = setmetatable({}, { __mode = "k" })
local denial_of = setmetatable({}, { __mode = "k" }) -- a read-only view -> its tool's {name, effect}
-- a writing view -> {the host's may_change, the call's tool name, the call's arguments}
local change_of = setmetatable({}, { __mode = "k" })

local CHANGES = { write = true, append = true, mkdir = true, delete = true, move = true }

-- An error a host operation raised, raised again at the script's call (level 3: this, the
-- view's function, the script) with Orket's own source positions taken off: a script that
-- catches it (pcall) reads the message it would have been shown, never a file of Orket's
-- or a directory of the machine. A value that is no message (a host's own error object,
-- which the engine may unwind with) passes through as it is.
local function host_error(e)
  if type(e) ~= "string" then error(e, 0) end
  error(sourcepos.plain(e), 3)
end

-- The workspace a view stands for, its arguments checked (raised at the script's call):
-- a path that is no string is a mistake of the script's, not a denial (the policy check
-- refused it as one), nor a name (the workspace took 5 for "5"). list's path may be left out.
local function fs_for(view, op, path, to)
  local fs = fs_of[view]
  if not fs then
    if fs == false then error(op .. ": this workspace view was given to a tool call that has ended", 3) end
    error("bad argument #1 to '" .. op .. "' (workspace view expected; call it as ctx.fs:" .. op .. "(...))", 3)
  end
  if CHANGES[op] then
    local d = denial_of[view]
    if d then
      error(string.format("%s: ctx.fs:%s is refused: the tool is declared effect = %q, whose workspace view only "
        .. "reads (read, list, stat); a tool that changes the workspace declares effect = \"write\", so that the "
        .. "gate counts its writes and the engine journals them", d[1], op, d[2]), 3)
    end
  end
  if type(path) ~= "string" and not (path == nil and op == "list") then
    error("bad argument #1 to '" .. op .. "' (string expected, got " .. type(path) .. ")", 3)
  end
  if op == "move" and type(to) ~= "string" then
    error("bad argument #2 to 'move' (string expected, got " .. type(to) .. ")", 3)
  end
  return fs
end

-- Each calls the workspace as a method (OPS below), and not as a tail call: an argument
-- error the workspace raises then names the method and the script's argument ("bad argument
-- #2 to 'read'"), where a tail call through a table said '?' and counted the workspace
-- itself. It is called protected, its error raised again at the script's call (host_error).
local OPS = {}
function OPS.read(fs, path, opts) local a, b, c = fs:read(path, opts) return a, b, c end
function OPS.write(fs, path, data) local a, b, c = fs:write(path, data) return a, b, c end
function OPS.append(fs, path, data) local a, b, c = fs:append(path, data) return a, b, c end
function OPS.list(fs, path) local a, b, c = fs:list(path) return a, b, c end
function OPS.stat(fs, path) local a, b, c = fs:stat(path) return a, b, c end
function OPS.mkdir(fs, path) local a, b, c = fs:mkdir(path) return a, b, c end
function OPS.delete(fs, path) local a, b, c = fs:delete(path) return a, b, c end
function OPS.move(fs, from, to) local a, b, c = fs:move(from, to) return a, b, c end

-- opts (a script's options table) -> its plain copy | raises at the script's call: a field
-- op does not take is named with those it does (a misspelt `lmit` was read as no limit);
-- note adds why a field is not one (the card and the actor are the engine's)
local function plain_opts(opts, op, fields, note)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error("bad argument #2 to '" .. op .. "' (options table expected)", 3) end
  local copy, perr = scriptenv.copy(opts)
  if not copy then error("bad argument #2 to '" .. op .. "' (" .. tostring(perr) .. ")", 3) end
  for k in pairs(copy) do
    if not fields[k] then
      local names = {}
      for f in pairs(fields) do names[#names + 1] = f end
      table.sort(names)
      error(string.format("bad argument #2 to '%s' (unknown field '%s'; it takes %s%s)", op,
        inert.line(inert.clip(tostring(k), 40)), table.concat(names, ", "), note or ""), 3)
    end
  end
  return copy
end

-- A handler's change of the workspace is judged as the file tool that makes it would be
-- (docs/policies.md): the gate sees the same tool name, path and content, so a policy on
-- write_file holds for every tool that writes, not only for the paths its schema names.
-- CHANGE_AS: the view's operation -> that tool; M.CHANGE_TOOLS: their definitions as the gate
-- judges a change by (content of any bytes: a tool may write what write_file's text would not
-- take; the call itself was counted against the limits).
local CHANGE_AS = { write = "write_file", append = "write_file", mkdir = "create_directory", delete = "delete_file",
  move = "move_file" }
local CHANGE_WORDS = { write = "writing", append = "appending to", mkdir = "making the folder", delete = "deleting",
  move = "moving" }
local PATH_ARG = { type = "string", format = "path" }
-- the bytes of a change's content a policy is shown (cut there): the schema's default cap on
-- a string (1 MiB) refused a longer one as ARGS_INVALID, and the change went unjudged
M.CHANGE_CONTENT_MAX = 4194304
local CHANGE_DEFS = {
  write_file = { name = "write_file", effect = "write", parameters = { type = "object",
    properties = { path = PATH_ARG, content = { type = "string", maxLength = M.CHANGE_CONTENT_MAX } },
    required = { "path" } } },
  create_directory = { name = "create_directory", effect = "write", parameters = { type = "object",
    properties = { path = PATH_ARG }, required = { "path" } } },
  delete_file = { name = "delete_file", effect = "write", parameters = { type = "object",
    properties = { path = PATH_ARG }, required = { "path" } } },
  move_file = { name = "move_file", effect = "write", parameters = { type = "object",
    properties = { from = PATH_ARG, to = PATH_ARG }, required = { "from", "to" } } },
}
--- tools.CHANGE_TOOLS: the registry (get) a host judges a handler's change with
M.CHANGE_TOOLS = { get = function(_, name) return CHANGE_DEFS[name] end }
-- and a handler's own read (ctx.fs read, search_files) as read_file's path alone: the
-- project's read_file, a replacement with a field of its own required, must not refuse every
-- tool's reads as ARGS_INVALID
local READ_DEF = { name = "read_file", effect = "read", parameters = { type = "object",
  properties = { path = PATH_ARG }, required = { "path" } } }
--- tools.READ_TOOLS: the registry (get) a host judges a handler's read with
M.READ_TOOLS = { get = function(_, name) return name == "read_file" and READ_DEF or nil end }

-- What the gate answered for a change that is no policy's (a way out, a protected path): the
-- workspace refuses it itself, in its own words, as it always has. Anything else the gate
-- refuses is refused here (ARGS_INVALID too: a change the gate cannot judge is not made)
local CONFINEMENT = { PATH_ESCAPE = true, PATH_PROTECTED = true }

-- true when p is a folder above path ("a" above "a/b/c")
local function above(p, path)
  return type(path) == "string" and #path > #p + 1 and path:sub(1, #p + 1) == p .. "/"
end

-- Whether the change (tool, a) is the call's own, which the gate judged (and a person may
-- have approved) as the call: write_file writing its path with its content, delete_file
-- deleting its path, and the folders write_file and move_file make on the way. Judged again,
-- an approved ask would ask once more, and a handler cannot wait for a person.
local function own_change(name, args, tool, a)
  if type(args) ~= "table" then return false end
  if tool == name and args.path == a.path and args.content == a.content and args.from == a.from
    and args.to == a.to then
    return true
  end
  return tool == "create_directory" and (name == "write_file" and above(a.path, args.path)
    or name == "move_file" and above(a.path, args.to))
end

-- nil when the view's change may be made, else the refusal's message (EPERM). The host's
-- may_change(tool, args, M.CHANGE_TOOLS) -> allowed, reason, code, verdict (the gate's
-- answer, as may_read's).
-- A deny reads as a refused read does; an ask cannot be asked from inside a handler (it
-- runs on, no person is waiting), so it is refused, naming the file tool that can ask.
local function change_refused(view, op, path, to, data)
  local c = change_of[view]
  if not c or type(path) ~= "string" then return nil end
  local tool = CHANGE_AS[op]
  local a
  if op == "move" then
    if type(to) ~= "string" then return nil end
    a = { from = path, to = to }
  elseif op == "write" or op == "append" then
    -- a number is written as its text (the workspace takes it so); anything else the
    -- workspace refuses as a bad argument
    if math.type(data) then data = tostring(data) end
    if type(data) ~= "string" then return nil end
    a = { path = path, content = data:sub(1, M.CHANGE_CONTENT_MAX) }
  else
    a = { path = path }
  end
  if own_change(c[2], c[3], tool, a) then return nil end
  local allowed, why, code, verdict = c[1](tool, a, M.CHANGE_TOOLS)
  if allowed or CONFINEMENT[code] then return nil end
  local what = CHANGE_WORDS[op] .. " " .. inert.line(inert.clip(path, 200))
    .. (op == "move" and (" to " .. inert.line(inert.clip(to, 200))) or "")
  why = type(why) == "string" and why or "a policy denies it"
  if verdict == "ask" then
    return string.format("workspace: %s needs a person's approval (%s): %s; a tool's handler cannot wait for one, "
      .. "so it is refused: make this change with %s, which asks", what, type(code) == "string" and code
      or "POLICY_ASK", why, tool)
  end
  return string.format("workspace: %s is refused by the gate (%s): %s", what,
    type(code) == "string" and code or "POLICY_DENY", why)
end

local FS_FN = {}
local READ_FIELDS = { offset = true, limit = true }
-- said of the board's and memory's options: a tool names neither the card nor the actor
local FIXED = "; the card and the actor are fixed by the engine"
function FS_FN.read(view, path, opts)
  local fs = fs_for(view, "read", path)
  local may_read = may_read_of[view]
  if may_read then
    local allowed, why, code = may_read(path)
    -- the gate's own words: confinement (PATH_ESCAPE) is no policy, and a policy's reason
    -- names its rule
    if not allowed then
      return nil, string.format("workspace: reading %s is refused by the gate (%s): %s",
        inert.line(inert.clip(path, 200)), type(code) == "string" and code or "POLICY_DENY",
        type(why) == "string" and why or "a policy denies it"), "EPERM"
    end
  end
  local o = plain_opts(opts, "read", READ_FIELDS)
  local ok, a, b, c = pcall(OPS.read, fs, path, o)
  if not ok then host_error(a) end
  return a, b, c
end
-- ctx.fs's changes, each judged (change_refused) before the workspace makes it. second:
-- the bytes written (write, append) or the destination (move); mkdir and delete take none.
local function change_fn(op)
  local moves, takes_second = op == "move", op == "write" or op == "append" or op == "move"
  return function(view, path, second)
    local to = moves and second or nil
    local fs = fs_for(view, op, path, to)
    local refused = change_refused(view, op, path, to, not moves and second or nil)
    if refused then return nil, refused, "EPERM" end
    local ok, a, b, c
    if takes_second then
      ok, a, b, c = pcall(OPS[op], fs, path, second)
    else
      ok, a, b, c = pcall(OPS[op], fs, path)
    end
    if not ok then host_error(a) end
    return a, b, c
  end
end
for _, op in ipairs { "write", "append", "mkdir", "delete", "move" } do FS_FN[op] = change_fn(op) end
function FS_FN.list(view, path)
  local ok, a, b, c = pcall(OPS.list, fs_for(view, "list", path), path)
  if not ok then host_error(a) end
  return a, b, c
end
function FS_FN.stat(view, path)
  local ok, a, b, c = pcall(OPS.stat, fs_for(view, "stat", path), path)
  if not ok then host_error(a) end
  return a, b, c
end

-- denial: nil for a tool whose effect writes, else {name, effect} (the refusal's words);
-- may_change: the host's judge of a writing view's changes (change_refused), for the call of
-- tool name with args (the arguments the gate judged, not the handler's copy)
local function tool_fs(fs, may_read, denial, may_change, name, args)
  local view = { read = FS_FN.read, write = FS_FN.write, append = FS_FN.append, list = FS_FN.list,
    stat = FS_FN.stat, mkdir = FS_FN.mkdir, delete = FS_FN.delete, move = FS_FN.move }
  fs_of[view], may_read_of[view], denial_of[view] = fs, may_read, denial
  if may_change and not denial then change_of[view] = { may_change, name, args } end
  return view
end

-- ctx.board and ctx.memory: views bound to the card being worked and to the acting seat,
-- which the engine fixes. The host's board and memory (and through them the store's
-- connection) stay out of the script's reach: a view is an empty table whose hidden
-- metatable leads to the shared functions below, and what it stands for is kept in
-- bound_of, keyed by the view. Everything a view returns is a plain copy. So a script can
-- neither run SQL, close the store, move a card around the state machine or act as
-- another seat, nor replace a method the engine itself later calls.
local bound_of = setmetatable({}, { __mode = "k" })

local function readonly(_, k)
  error("attempt to modify a read-only table (field '" .. tostring(k) .. "')", 2)
end

local function bound(view, what, op)
  local b = bound_of[view]
  if b == false then error(op .. ": this " .. what .. " view was given to a tool call that has ended", 3) end
  if not b or b.what ~= what then
    error("bad argument #1 to '" .. op .. "' (" .. what .. " view expected; call it as ctx." .. what .. ":" .. op
      .. "(...))", 3)
  end
  return b
end

-- A host answer the script may have as it is (the board's answer for a card, get,
-- transition and the host's move, which answers as transition does, is the caller's own
-- copy, docs/board.md, which the view keeps nothing of): strings for errors.
local function own(v, msg, code)
  if v == nil then
    return nil, type(msg) == "string" and msg or nil, type(code) == "string" and code or nil
  end
  return v
end

-- A host answer handed to the script: plain copies of data, strings for errors.
local function out(v, msg, code)
  if type(v) == "table" then return (scriptenv.copy(v)) end
  return own(v, msg, code)
end


local BOARD_FN = {}

-- own card, its epic and the cards it depends on: what a tool may read
local function visible(b, id)
  if id == b.card_id or id == b.epic then return true end
  local own = b.board:get(b.card_id)
  for _, d in ipairs(own and own.depends_on or {}) do
    if d == id then return true end
  end
  return false
end

-- The host's side of each view operation, called protected (host_error) and as methods,
-- so that an error it raises reads at the script's call, as the workspace's do.
local HOST = {}
function HOST.get(b, id)
  if not visible(b, id) then
    return nil, string.format("board: card %q is not visible to tools (your card, its epic and the cards it "
      .. "depends on are)", id), "EPERM"
  end
  local v, m, c = b.board:get(id)
  return v, m, c
end
function HOST.history(b) local v, m, c = b.board:history(b.card_id) return v, m, c end
function HOST.comments(b) local v, m, c = b.board:comments(b.card_id) return v, m, c end
function HOST.comment(b, body)
  local v, m, c = b.board:comment(b.card_id, { author = b.actor.seat, body = body })
  return v, m, c
end
function HOST.transition(b, to, how)
  if b.done then
    return nil, string.format("board: %s: its move to done is made when this tool call returns; the call cannot "
      .. "move the card again", b.card_id), "EINVAL"
  end
  -- The host's move to done (the engine's) commits the card's directory and merges its branch
  -- into main, which grows with the card's tree. Run under the handler's budget, a time limit
  -- that ran out after the merge and before the move was written left main holding a card that
  -- was not done. So here it is only checked; the call's end makes it, outside the budget
  -- (finish_move), and its failure is then the call's answer.
  if b.move and to == "done" then
    local ok, m, c = b.board:check_transition(b.card_id, to, how)
    if not ok then return nil, m, c end
    local card, gm, gc = b.board:get(b.card_id)
    if not card then return nil, gm, gc end
    card.status, card.wait_reason = "done", nil
    b.done = how
    return card
  end
  -- the host's way of moving a card when it has one (any other move: the board's)
  if b.move then
    local v, m, c = b.move(b.card_id, to, how)
    return v, m, c
  end
  local v, m, c = b.board:transition(b.card_id, to, how)
  return v, m, c
end
function HOST.create(b, o) local v, m, c = b.board:create(o) return v, m, c end
function HOST.remember(b, e) local v, m, c = b.memory:remember(e) return v, m, c end
function HOST.recall(b, query, opts) local v, m, c = b.memory:recall(query, opts) return v, m, c end

--- view:get([id]) -> card: the card being worked (default), its epic or a card it depends on
function BOARD_FN.get(view, id)
  local b = bound(view, "board", "get")
  if id == nil then id = b.card_id end
  if type(id) ~= "string" then error("bad argument #1 to 'get' (card id string expected)", 2) end
  local ok, v, m, c = pcall(HOST.get, b, id)
  if not ok then host_error(v) end
  return own(v, m, c)
end

--- view:history() -> the events of the card being worked, oldest first
function BOARD_FN.history(view)
  local b = bound(view, "board", "history")
  local ok, v, m, c = pcall(HOST.history, b)
  if not ok then host_error(v) end
  return out(v, m, c)
end

--- view:comments() -> the comments on the card being worked, oldest first
function BOARD_FN.comments(view)
  local b = bound(view, "board", "comments")
  local ok, v, m, c = pcall(HOST.comments, b)
  if not ok then host_error(v) end
  return out(v, m, c)
end

--- view:comment(body) -> comment: on the card being worked, signed by the acting seat
function BOARD_FN.comment(view, body)
  local b = bound(view, "board", "comment")
  if type(body) ~= "string" then error("bad argument #1 to 'comment' (string expected)", 2) end
  local ok, v, m, c = pcall(HOST.comment, b, body)
  if not ok then host_error(v) end
  return out(v, m, c)
end

--- view:transition(to, {reason=, note=}) -> card: moves the card being worked through the
--- state machine as the acting seat
function BOARD_FN.transition(view, to, opts)
  local b = bound(view, "board", "transition")
  if type(to) ~= "string" then error("bad argument #1 to 'transition' (status string expected)", 2) end
  local o = plain_opts(opts, "transition", { reason = true, note = true }, FIXED)
  local ok, v, m, c = pcall(HOST.transition, b, to, { actor = b.actor, reason = o.reason, note = o.note })
  if not ok then host_error(v) end
  return own(v, m, c)
end

local CREATE_FIELDS = { summary = true, description = true, seat = true, priority = true, depends_on = true,
  requirements = true, acceptance = true, note = true }

--- view:create{summary=, description=, seat=, priority=, depends_on=, requirements=,
--- acceptance=, note=} -> card: a new issue in the epic of the card being worked, for a seat
--- of the team (ctx.seats) when the host names them
function BOARD_FN.create(view, spec)
  local b = bound(view, "board", "create")
  if type(spec) ~= "table" then error("bad argument #1 to 'create' (table expected)", 2) end
  local o = plain_opts(spec, "create", CREATE_FIELDS, FIXED)
  if not b.epic then return nil, "board: the card being worked has no epic to add an issue to", "EINVAL" end
  o.parent, o.actor, o.seats = b.epic, b.actor, b.seats
  local ok, v, m, c = pcall(HOST.create, b, o)
  if not ok then host_error(v) end
  return out(v, m, c)
end

local MEMORY_FN = {}

--- view:remember{text=, tags=} -> entry: a note tied to the card being worked
function MEMORY_FN.remember(view, e)
  local b = bound(view, "memory", "remember")
  if type(e) ~= "table" then error("bad argument #1 to 'remember' ({text=string, tags=} expected)", 2) end
  local o = plain_opts(e, "remember", { text = true, tags = true }, FIXED)
  if type(o.text) ~= "string" then error("bad argument #1 to 'remember' (text must be a string)", 2) end
  local ok, v, m, c = pcall(HOST.remember, b, { card = b.card_id, text = o.text, tags = o.tags, actor = b.actor })
  if not ok then host_error(v) end
  return out(v, m, c)
end

--- view:recall(query, {limit=}) -> entries, best first
function MEMORY_FN.recall(view, query, opts)
  local b = bound(view, "memory", "recall")
  if type(query) ~= "string" then error("bad argument #1 to 'recall' (string expected)", 2) end
  local o = plain_opts(opts, "recall", { limit = true }, FIXED)
  local ok, v, m, c = pcall(HOST.recall, b, query, { limit = o.limit or 10 })
  if not ok then host_error(v) end
  return out(v, m, c)
end

local BOARD_MT = { __index = BOARD_FN, __newindex = readonly, __metatable = false }
local MEMORY_MT = { __index = MEMORY_FN, __newindex = readonly, __metatable = false }

local function view_of(mt, state)
  local view = setmetatable({}, mt)
  bound_of[view] = state
  return view
end

-- A call's views act for that call alone: when it returns, they are revoked (false, not
-- nil, for a clear message), so a handler that kept one (an upvalue survives between
-- calls) cannot later act on another card or as the seat of another turn.
local function revoke(views)
  if views.board then bound_of[views.board] = false end
  if views.memory then bound_of[views.memory] = false end
  if views.fs then fs_of[views.fs], may_read_of[views.fs], change_of[views.fs] = false, nil, nil end
end

-- the views table itself is the call's to-be-closed value: one table a call fewer
local REVOKING = { __close = revoke }

-- The ctx a handler sees: its own copies of the card and the actor, and views of the
-- workspace, the board and the memory. The actor the views act as is the engine's. The
-- host's ctx.move(id, to, opts), when given, is how the board view moves the card (the
-- engine's: orket.engine.gitwork.mover), answering as board:transition does; else the
-- board's transition. Through it a move to done is checked in the handler and made once the
-- handler has returned, outside its budget (HOST.transition). ctx.own_card: ctx.card is the host's copy for this call, which it
-- keeps nothing of, so the handler gets it as it is.
local function tool_ctx(ctx, denial, name, args)
  if ctx == nil then return {}, setmetatable({}, REVOKING) end
  local card, actor = ctx.card, ctx.actor
  local card_id = type(card) == "table" and card.id or nil
  -- the views' own (out of the script's reach): the host's seat and roles, not copies
  local host_actor = type(actor) == "table" and { seat = actor.seat, roles = actor.roles } or nil
  local epic = type(card) == "table" and (card.type == "epic" and card.id or card.parent) or nil
  local board, memory
  if ctx.board and card_id and host_actor then
    board = view_of(BOARD_MT, { what = "board", board = ctx.board, move = ctx.move, card_id = card_id,
      actor = host_actor, epic = epic, seats = ctx.seats })
  end
  if ctx.memory and card_id then
    memory = view_of(MEMORY_MT, { what = "memory", memory = ctx.memory, card_id = card_id, actor = host_actor })
  end
  local fs = ctx.fs and tool_fs(ctx.fs, ctx.may_read, denial, ctx.may_change, name, args) or nil
  -- the views as given, kept by the host for revoke: the script may change its ctx
  return {
    fs = fs, board = board, memory = memory,
    card = card and (ctx.own_card and card or scriptenv.copy(card)), actor = actor and scriptenv.copy(actor),
    seats = ctx.seats and scriptenv.copy(ctx.seats),
    tests = ctx.tests and scriptenv.copy(ctx.tests),
  }, setmetatable({ fs = fs, board = board, memory = memory }, REVOKING)
end

-- The move to done a handler asked for (HOST.transition), made once it has returned, with no
-- script budget running: nil when there was none or it was made, else the call's failure.
-- views: the call's, already revoked (the bound state is read before: bound_of forgets it).
local function finish_move(b)
  if not (b and b.done) then return nil end
  local card, msg, code = b.move(b.card_id, "done", b.done)
  if card then return nil end
  return { ok = false, error = type(msg) == "string" and msg or ("board: " .. b.card_id .. ": the move to done failed"),
    code = type(code) == "string" and code or "EFAIL" }
end

-- true when a schema's type (a name or a list of names) admits "integer"
local function wants_integer(t)
  if t == "integer" then return true end
  if type(t) ~= "table" then return false end
  for _, n in ipairs(t) do
    if n == "integer" then return true end
  end
  return false
end

-- v (the handler's copy) with every integral float where the schema says "integer" made a
-- Lua integer, at any depth the schema describes (properties, items, additionalProperties):
-- lua-cjson decodes every JSON number as a float, so `"limit": 5` reached handlers as 5.0,
-- which the gate accepts as an integer but math.type, string.rep and Lua APIs do not.
local function integers(schema, v)
  if type(schema) ~= "table" then return v end
  if math.type(v) == "float" then
    return wants_integer(schema.type) and math.tointeger(v) or v
  end
  if type(v) ~= "table" then return v end
  local props, items, extra = schema.properties, schema.items, schema.additionalProperties
  for k, x in pairs(v) do
    local s
    if math.type(k) == "integer" then
      s = items
    elseif type(props) == "table" and props[k] ~= nil then
      s = props[k]
    elseif type(extra) == "table" then
      s = extra
    end
    if s ~= nil then v[k] = integers(s, x) end -- an existing key: allowed while pairs walks
  end
  return v
end

-- args, schema -> the handler's own copy (integers where the schema says so) | nil,
-- message: what the gate judged or nothing. A value the copy refuses (a JSON null decodes
-- to userdata) fails the call: handing the handler {} instead ran it on defaults the gate
-- never saw.
local function call_args(name, args, schema)
  if args == nil then return {} end
  local copy, err = scriptenv.copy(args)
  if copy ~= nil then return integers(schema, copy) end
  return nil, name .. ": the arguments cannot be handed to the tool: " .. tostring(err)
    .. (tostring(err):find("userdata", 1, true) and " (a JSON null; leave the field out instead)" or "")
end

-- v (plain data JSON refuses) -> "PATH: ", the deepest value cjson still refuses there
-- (a NaN, a boolean key, an array of holes), named as scriptenv.copy names a path: a result
-- of many fields said only "Cannot serialise boolean". Asks cjson itself of each part, so
-- its rules are not restated; only on a refused result.
local function json_refused(v, path)
  if type(v) ~= "table" then return path .. ": " end
  for k, x in pairs(v) do
    if type(x) == "table" or type(x) == "number" then
      local _, err = json.encode({ x })
      if err then
        local sub = type(k) == "string" and (path .. "." .. inert.line(inert.clip(k, 40))) or (path .. "[" .. tostring(k) .. "]")
        return json_refused(x, sub)
      end
    end
  end
  return path .. ": "
end

-- A writing tool's crash may leave what it wrote before it (files are not rolled back): the
-- model is told so, as after EINTERRUPTED, rather than only that the tool needs fixing
local CHANGED_REMEDY = "The call may have changed the workspace before it failed, and those changes stay: check the "
  .. "files this call touches (read or list them) before retrying it; the tool itself needs fixing (`orket validate`, "
  .. "see writing-tools.md)."

-- The ETOOL failure of a handler that ran and failed in its own code (raised, spent its
-- budget, or returned what cannot be a result)
local function crashed(d, msg)
  local e = EFFECTS[d.effect]
  return { ok = false, error = msg, code = "ETOOL", remedy = e and e.writes and CHANGED_REMEDY or nil }
end

--- registry:run(name, args, ctx) -> {ok=true, result=} | {ok=false, error=, code=[, remedy=]}[, crashed]
--- ctx: {fs=workspace, board=, memory=, card=, actor=, may_read=fn(path) -> bool,
--- may_change=fn(tool, args, registry) -> allowed, reason, code, verdict}.
--- A tool failure ("file not found") is a normal result for the model, not an error.
--- Budget overruns and handler crashes come back as ok=false with code ETOOL; a raise (a
--- crash, a budget spent) with a second value true, so the host may undo what the handler
--- did. A writing tool's ETOOL says its changes may stay. A handler's own `nil, msg, CODE`
--- is no crash, nor a result it returned that cannot be one.
function Registry:run(name, args, ctx)
  local d = self.by_name[name]
  if not d then return { ok = false, error = "no tool named '" .. tostring(name) .. "'", code = "ENOENT" } end
  local a, aerr = call_args(name, args, d.parameters)
  if not a then return { ok = false, error = aerr, code = "ETOOL" } end
  local tctx, views = tool_ctx(ctx, fs_denial(d), name, args)
  -- revoked however the call ends: a task cancelled while the handler waits (a stop) is
  -- closed, and its to-be-closed values run
  local _ <close> = views
  local ok, res, msg, code = d.box:pcall(d.handler, a, tctx)
  local held = views.board and bound_of[views.board]
  revoke(views)
  -- a handler that raised (its budget spent) or answered a failure (nil, msg) moved
  -- nothing: its move to done is dropped
  local failed = ok and res ~= nil and finish_move(held)
  if failed then return failed end
  if not ok then
    -- the script's line, also for a helper it misused (ctx.fs) or a C stack overflow:
    -- scriptfile.said, which leaves out Orket's files and the machine's directories
    return crashed(d, name .. ": the tool failed: " .. scriptfile.said(res, d.chunk or d.file or name)), true
  end
  if res == nil then
    -- only strings leave: a value made by the script could run its metamethods later,
    -- outside any budget. A bare nil is most often a handler that forgot its return.
    return { ok = false, error = type(msg) == "string" and msg or msg ~= nil and (name .. " failed")
      or (name .. ": the handler returned no result and no message (a missing return?); return a result table, "
        .. "or nil and a message saying what failed"),
      code = type(code) == "string" and code or "EFAIL" }
  end
  local plain, perr = scriptenv.copy(res)
  -- (no crash to undo: the handler returned, and its move to done may be made already)
  if perr then return crashed(d, name .. ": result is not plain data: " .. perr) end
  -- plain data JSON cannot hold (a key that is a boolean, an array of holes, NaN or an
  -- infinity) is the tool's failure too: it failed the turn when the store wrote it
  local _, jerr = json.encode(plain)
  if jerr then
    return crashed(d, name .. ": result is not JSON data: " .. json_refused(plain, "value") .. jerr)
  end
  return { ok = true, result = plain }
end

--- registry:recover(name, args, ctx) -> "done", {ok=true, result=} | "rerun" | "unknown", msg
--- After a crash between a "write" call's intent and its result: "rerun" when the tool is
--- idempotent or its recover says the effect did not happen (returns nil), "done" with the
--- result recover returned when it did, "unknown" (with why) when the tool has neither,
--- is gone, or recover fails. ctx as for run.
function Registry:recover(name, args, ctx)
  local d = self.by_name[name]
  if not d then return "unknown", "no tool named '" .. tostring(name) .. "' is loaded now" end
  if d.idempotent then return "rerun" end
  if not d.recover then return "unknown", name .. " is neither idempotent nor has recover" end
  local a, aerr = call_args(name, args, d.parameters)
  if not a then return "unknown", aerr end
  local tctx, views = tool_ctx(ctx, fs_denial(d), name, args)
  local _ <close> = views
  local ok, res = d.box:pcall(d.recover, a, tctx)
  local held = views.board and bound_of[views.board]
  revoke(views)
  -- (nil: the effect did not happen, the call runs again and asks again)
  local failed = ok and res ~= nil and finish_move(held)
  if failed then return "unknown", failed.error end
  if not ok then return "unknown", name .. ": recover failed: " .. scriptfile.said(res, d.chunk or d.file or name) end
  if res == nil then return "rerun" end
  local plain, perr = scriptenv.copy(res)
  if perr then return "unknown", name .. ": recover's result is not plain data: " .. perr end
  return "done", { ok = true, result = plain }
end

return M
