-- orket.tools: the tool registry. Each tools/*.lua file returns
--   { name=, description=, parameters=<schema>, effect="read"|"write"|"board",
--     status=<fixed target status or nil>, wait_reason=<the reason that status is entered with>, handler=function(args, ctx) -> result | nil, msg, code,
--     idempotent=bool, recover=function(args, ctx) -> result | nil }  (the last two: "write" only)
-- and is loaded in its own restricted environment (orket.sandbox). Handlers reach the world
-- only through ctx (ctx.fs, ctx.board, ctx.memory, ctx.card, ctx.actor) and run under the
-- script budget. Loading is all-or-nothing, so a reload swaps registries atomically.
-- Contract: docs/tools.md.
local sandbox = require "orket.sandbox"
local cgate = require "orket.c.gate"
local policy = require "orket.policy"

local M = {}

-- Budget for one handler call: searches walk many files, so more than a policy predicate.
M.BUDGET = { instructions = 200000000, timeout_ms = 10000, memory = 256 * 1024 * 1024 }

local EFFECTS = { read = true, write = true, board = true }
local KEYS = { name = true, description = true, parameters = true, effect = true, status = true,
  wait_reason = true, handler = true, idempotent = true, recover = true }
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
  end
  if type(def.description) ~= "string" or def.description == "" then
    bad("description must be a non-empty string")
  end
  if not EFFECTS[def.effect] then bad("effect must be \"read\", \"write\" or \"board\"") end
  if def.status ~= nil and type(def.status) ~= "string" then bad("status must be a string") end
  if def.wait_reason ~= nil then
    -- the gate asks the state machine about the fixed status with this reason
    if not WAIT_REASONS[def.wait_reason] then
      bad("wait_reason must be \"resource\", \"dependency\", \"review\", \"input\" or \"system\"")
    end
    if def.status == nil then bad("wait_reason needs a fixed status (the status it is the reason for)") end
  end
  if type(def.handler) ~= "function" then bad("handler must be a function(args, ctx)") end
  if def.idempotent ~= nil and type(def.idempotent) ~= "boolean" then
    bad("idempotent must be a boolean")
  end
  if def.recover ~= nil and type(def.recover) ~= "function" then
    bad("recover must be a function(args, ctx) -> result | nil")
  end
  if (def.idempotent ~= nil or def.recover ~= nil) and def.effect ~= "write" then
    bad("idempotent and recover apply only to tools with effect = \"write\" (effects on files)")
  end
  if def.idempotent and def.recover ~= nil then
    bad("a tool is either idempotent (re-run after a crash) or has recover, not both")
  end
  local params = def.parameters or { type = "object", properties = {} }
  local ok, err = cgate.check_schema(params, file .. ": parameters")
  if not ok then
    problems[#problems + 1] = err
  elseif params.type ~= "object" then
    bad("parameters.type must be \"object\"")
  end
  if #problems > 0 then return nil, problems[1], problems end
  return true
end

--- load(files) -> registry | nil, "file: message", CODE, {every problem of that file...}
function M.load(files)
  local reg = setmetatable({ by_name = {}, names = {}, files = {} }, Registry)
  for _, path in ipairs(files) do
    local box = sandbox.new {
      name = path, globals = { glob = cgate.glob },
      instructions = M.BUDGET.instructions, timeout_ms = M.BUDGET.timeout_ms, memory = M.BUDGET.memory,
    }
    local ok, def, code = require("orket.scriptfile").run(box, path) -- detached: no script metamethod runs below
    if not ok then return nil, def, code, { def } end
    local vok, verr, problems = validate(def, path)
    if not vok then return nil, verr, "EINVAL", problems end
    local copy = {}
    for k, v in pairs(def) do copy[k] = v end -- rawly: the definition cannot change later
    copy.parameters = sandbox.copy(def.parameters or { type = "object", properties = {} })
    -- converted for the gate once here, not at every call (a reload builds a new registry)
    local cok, compiled = pcall(cgate.compile_schema, copy.parameters)
    if not cok then return nil, path .. ": parameters: " .. tostring(compiled), "EINVAL" end
    copy.compiled_schema = compiled
    copy.box, copy.file = box, path
    if not reg.by_name[copy.name] then reg.names[#reg.names + 1] = copy.name end
    reg.by_name[copy.name] = copy
    reg.files[#reg.files + 1] = path
  end
  table.sort(reg.names)
  return reg
end

--- load_dirs(dirs) -> registry | nil, msg, CODE  (later directories override by file name)
function M.load_dirs(dirs) return M.load(policy.files_in(dirs)) end

--- registry:get(name) -> definition | nil
function Registry:get(name) return self.by_name[name] end

--- registry:specs([names]) -> {{name=, description=, parameters=}...} for the model.
--- parameters is the registry's own copy made at load (shared, not copied per call: the
--- engine asks for the specs every turn and deep-copying each schema was most of a turn's
--- cost); callers read it and never change it. Role scripts see read-only views of it
--- (orket.engine.schemas, through roles.messages).
function Registry:specs(names)
  local out = {}
  for _, n in ipairs(names or self.names) do
    local d = self.by_name[n]
    if d then out[#out + 1] = { name = d.name, description = d.description, parameters = d.parameters } end
  end
  return out
end

-- What a tool handler may do with the workspace: the operations, not close. Reads go
-- through ctx.may_read when the host gives one, so a tool that reads many files
-- (search_files) cannot reach what the policies deny to read_file.
local FS_OPS = { "read", "write", "append", "list", "stat", "mkdir", "delete", "move" }

-- A view is a table of the shared functions below; the workspace and may_read it stands for
-- are kept here, out of the script's reach. Eight closures and a growing table per call
-- were a tenth of the tool call's Lua time.
local fs_of = setmetatable({}, { __mode = "k" })
local may_read_of = setmetatable({}, { __mode = "k" })

local FS_FN = {}
for _, op in ipairs(FS_OPS) do
  FS_FN[op] = function(view, path, ...)
    local fs = fs_of[view]
    if not fs then
      error("bad argument #1 to '" .. op .. "' (workspace view expected; call it as ctx.fs:" .. op .. "(...))", 2)
    end
    local may_read = may_read_of[view]
    if op == "read" and may_read and not may_read(path) then
      return nil, "workspace: reading " .. tostring(path) .. " is denied by policy", "EPERM"
    end
    return fs[op](fs, path, ...)
  end
end

local function tool_fs(fs, may_read)
  local view = { read = FS_FN.read, write = FS_FN.write, append = FS_FN.append, list = FS_FN.list,
    stat = FS_FN.stat, mkdir = FS_FN.mkdir, delete = FS_FN.delete, move = FS_FN.move }
  fs_of[view], may_read_of[view] = fs, may_read
  return view
end

-- The ctx a handler sees: its own copies of the card and the actor, the workspace view.
local function tool_ctx(ctx)
  if ctx == nil then return {} end
  return {
    fs = ctx.fs and tool_fs(ctx.fs, ctx.may_read), board = ctx.board, memory = ctx.memory,
    card = ctx.card and sandbox.copy(ctx.card), actor = ctx.actor and sandbox.copy(ctx.actor),
    seats = ctx.seats and sandbox.copy(ctx.seats),
  }
end

--- registry:run(name, args, ctx) -> {ok=true, result=} | {ok=false, error=, code=}
--- ctx: {fs=workspace, board=, memory=, card=, actor=, may_read=fn(path) -> bool}.
--- A tool failure ("file not found") is a normal result for the model, not an error.
--- Budget overruns and handler crashes come back as ok=false with code ETOOL.
function Registry:run(name, args, ctx)
  local d = self.by_name[name]
  if not d then return { ok = false, error = "no tool named '" .. tostring(name) .. "'", code = "ENOENT" } end
  local ok, res, msg, code = d.box:pcall(d.handler, sandbox.copy(args) or {}, tool_ctx(ctx))
  if not ok then
    return { ok = false, error = name .. ": the tool failed: " .. sandbox.first_line(res), code = "ETOOL" }
  end
  if res == nil then
    -- only strings leave: a value made by the script could run its metamethods later,
    -- outside any budget
    return { ok = false, error = type(msg) == "string" and msg or (name .. " failed"),
      code = type(code) == "string" and code or "EFAIL" }
  end
  local plain, perr = sandbox.copy(res)
  if perr then return { ok = false, error = name .. ": result is not plain data: " .. perr, code = "ETOOL" } end
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
  local ok, res = d.box:pcall(d.recover, sandbox.copy(args) or {}, tool_ctx(ctx))
  if not ok then return "unknown", name .. ": recover failed: " .. sandbox.first_line(res) end
  if res == nil then return "rerun" end
  local plain, perr = sandbox.copy(res)
  if perr then return "unknown", name .. ": recover's result is not plain data: " .. perr end
  return "done", { ok = true, result = plain }
end

return M
