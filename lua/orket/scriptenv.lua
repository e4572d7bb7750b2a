-- orket.scriptenv: restricted environments for operator scripts (roles, tools, policies,
-- orket.lua). An environment is built up from the allow-list below, never by removing
-- things from a full one. Shared library tables are frozen proxies; calls run under the
-- budgets of orket.c.scriptenv (instructions, deadline, memory) that pcall cannot swallow.
-- The contract is documented in docs/runtime.md.
local cenv = require "orket.c.scriptenv"
local cpattern = require "orket.c.pattern"
local plain = require "orket.c.plain"

local M = {}

-- What a script may reach, as data. A test asserts the exact key set this produces.
M.ALLOW = {
  globals = {
    "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
    "tostring", "type", "rawequal", "rawlen", "rawget", "_VERSION",
  },
  string = {
    "byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "pack",
    "packsize", "rep", "reverse", "sub", "unpack", "upper",
  },
  table = { "concat", "insert", "move", "pack", "remove", "sort", "unpack" },
  math = {
    "abs", "ceil", "cos", "deg", "exp", "floor", "fmod", "huge", "log", "max", "maxinteger",
    "min", "mininteger", "modf", "pi", "rad", "random", "sin", "sqrt", "tan", "tointeger",
    "type", "ult", "acos", "asin", "atan",
  },
  utf8 = { "char", "charpattern", "codepoint", "codes", "len", "offset" },
  os = { "clock", "date", "difftime", "time" },
  coroutine = { "close", "isyieldable", "resume", "running", "status", "yield" },
}

-- Limits for one call into a script; each can be overridden per environment.
M.DEFAULTS = {
  instructions = 10000000, -- about 50 ms of plain Lua
  timeout_ms = 2000,
  memory = 64 * 1024 * 1024, -- bytes the call may add to the heap
}

-- What every script together may keep between calls: the blocks their calls made that are
-- still allocated after a full collection (each script's own cap is its memory budget).
M.HELD_ALL = 1024 * 1024 * 1024

local frozen = setmetatable({}, { __mode = "k" }) -- proxy -> true

-- Strings reach the real string table through their shared metatable, so a script could
-- write ("").dump. Method lookups now go through a layer holding a dump that refuses and
-- the pattern functions of orket.c.pattern.methods: Lua's own outside a script call, the
-- step-budgeted ones inside (s:find in a script must not run unbounded in C), and the
-- guarded rep; everything else (including what trusted code adds to `string`) falls through.
-- The guarded forms of the library functions whose work grows with an integer argument
-- or a __len result rather than with their input (see lscriptenv.c).
local guards = cenv.guards(string, table)

do
  local smt = getmetatable("")
  if smt.__index == string then
    local layer = { dump = function() error("string.dump is not available", 2) end, rep = guards.rep }
    for k, f in pairs(cpattern.methods(string)) do layer[k] = f end
    smt.__index = setmetatable(layer, { __index = string, __newindex = string })
  end
end

local function readonly_error(_, k)
  error("attempt to modify a read-only table (field '" .. tostring(k) .. "')", 2)
end

local views = setmetatable({}, { __mode = "k" }) -- table -> its read-only view

--- freeze(t) -> a read-only view of t. Reads, pairs and # see t; writes raise; tables
--- reached through it are read-only views too; its metatable is hidden and t itself is
--- never handed out (not even by pairs). rawget sees nothing (the view is empty).
function M.freeze(t, fixed)
  if frozen[t] then return t end
  local view = views[t]
  if view then return view end
  if fixed then
    -- A table that never changes and holds no tables (the shared libraries): a plain
    -- __index is safe, as the metatable is hidden, and much faster than a function.
    for _, v in next, t do assert(type(v) ~= "table", "freeze: fixed tables hold no tables") end
    view = {}
    frozen[view] = true
    views[t] = view
    return setmetatable(view, {
      __index = t,
      __newindex = readonly_error,
      __pairs = function()
        return function(_, k) return next(t, k) end, view, nil
      end,
      __len = function() return #t end,
      __metatable = "frozen",
    })
  end
  local function wrap(v)
    if type(v) == "table" then return M.freeze(v) end
    return v
  end
  view = {}
  frozen[view] = true
  views[t] = view
  return setmetatable(view, {
    __index = function(_, k) return wrap(t[k]) end,
    __newindex = readonly_error,
    -- a stateless iterator: the generic for hands back the last key, never t
    __pairs = function()
      return function(_, k)
        local nk, v = next(t, k)
        if nk == nil then return nil end
        return nk, wrap(v)
      end, view, nil
    end,
    __len = function() return #t end,
    __metatable = "frozen",
  })
end

function M.is_frozen(t) return frozen[t] == true end

local function pick(src, names)
  local out = {}
  for _, k in ipairs(names) do out[k] = src[k] end
  return out
end

-- Scripts may drive only the coroutines they made: the host's own (a task waiting on a
-- model reply, say) must never be resumed, closed or yielded by a script.
local is_script_thread = cenv.is_script_thread

local function own(fname, co)
  if type(co) ~= "thread" then
    error("bad argument #1 to '" .. fname .. "' (coroutine expected, got " .. type(co) .. ")", 3)
  end
  if not is_script_thread(co) then
    error(fname .. ": not a coroutine this script made", 3)
  end
  return co
end

local function wrap_result(co, ok, ...)
  if ok then return ... end
  if coroutine.status(co) == "dead" then coroutine.close(co) end
  error((...), 0)
end

-- A coroutine shares its creator's budget; when the budget is spent inside it, resume and
-- close answer false, message in the creator, whose thread the hook has not re-armed. The
-- call to pass is a function call, which the call hook refuses once the budget is spent,
-- so the creator does not carry on either.
local function pass(...) return ... end

local co_lib = {}
co_lib.create = cenv.cocreate -- budget-carrying coroutines (see lscriptenv.c)
function co_lib.resume(co, ...) return pass(coroutine.resume(own("resume", co), ...)) end
function co_lib.close(co) return pass(coroutine.close(own("close", co))) end
function co_lib.status(co) return coroutine.status(own("status", co)) end
function co_lib.running()
  local co = coroutine.running()
  if is_script_thread(co) then return co, false end
  return nil, false
end
function co_lib.isyieldable() return is_script_thread(coroutine.running()) end
function co_lib.yield(...)
  if not is_script_thread(coroutine.running()) then
    error("coroutine.yield: only inside a coroutine this script made", 2)
  end
  return coroutine.yield(...)
end
function co_lib.wrap(f)
  local co = cenv.cocreate(f)
  return function(...) return wrap_result(co, coroutine.resume(co, ...)) end
end

-- table.insert and table.remove shift elements up to a length a __len metamethod may
-- make as large as it likes; in Lua the shifting is counted by the instruction budget
-- like any other loop. Results and messages follow the stock functions.
local function position(fname, v, arg)
  local i = math.tointeger(v)
  if i == nil then
    local what = type(v) == "number" and "number has no integer representation"
      or ("number expected, got " .. (v == nil and "no value" or type(v)))
    error("bad argument #" .. arg .. " to '" .. fname .. "' (" .. what .. ")", 3)
  end
  return i
end

local function table_arg(fname, n, t)
  if type(t) ~= "table" then
    local got = n == 0 and "no value" or type(t)
    error("bad argument #1 to '" .. fname .. "' (table expected, got " .. got .. ")", 3)
  end
end

local function script_insert(...)
  local nargs = select("#", ...)
  local t = ...
  table_arg("insert", nargs, t)
  local e = #t + 1
  if nargs == 2 then
    t[e] = select(2, ...)
    return
  end
  if nargs ~= 3 then error("wrong number of arguments to 'insert'", 2) end
  local _, pos, v = ...
  pos = position("insert", pos, 2)
  if math.ult(e - 1, pos - 1) then error("bad argument #2 to 'insert' (position out of bounds)", 2) end
  for i = e, pos + 1, -1 do t[i] = t[i - 1] end
  t[pos] = v
end

local function script_remove(...)
  local t, pos = ...
  table_arg("remove", select("#", ...), t)
  local size = #t
  pos = pos == nil and size or position("remove", pos, 2)
  if pos ~= size and math.ult(size, pos - 1) then
    error("bad argument #2 to 'remove' (position out of bounds)", 2)
  end
  local v = t[pos]
  while pos < size do
    t[pos] = t[pos + 1]
    pos = pos + 1
  end
  t[pos] = nil
  return v
end

-- The library tables every environment shares, frozen once.
-- Scripts' string.find/match/gmatch/gsub are always the step-budgeted ones.
local script_string = pick(string, M.ALLOW.string)
for _, k in ipairs { "find", "match", "gmatch", "gsub" } do script_string[k] = cpattern[k] end
script_string.rep = guards.rep
local script_table = pick(table, M.ALLOW.table)
for _, k in ipairs { "concat", "unpack", "move", "sort" } do script_table[k] = guards[k] end
script_table.insert, script_table.remove = script_insert, script_remove

-- os.date in UTC whatever TZ the process has: a policy's office hours, a role's date in its
-- prompt, judged the same by orket gate check, the server, a run and a worker in another
-- zone (a rule allowed a write under UTC and denied it under India's time, the same moment).
-- A format already "!" is UTC already.
local script_os = pick(os, M.ALLOW.os)
local os_date = os.date
function script_os.date(fmt, t)
  if fmt == nil then fmt = "%c" end
  if type(fmt) == "string" and fmt:sub(1, 1) ~= "!" then fmt = "!" .. fmt end
  return os_date(fmt, t)
end

-- and os.time of a table reads it as UTC too, so os.time(os.date("*t")) is os.time() and a
-- policy's "09:00 today" is one moment in every zone. The fields are normalized as os.time
-- normalizes them (a month 13 is January of the next year, a day 0 the month's eve); the
-- table is updated, as Lua's own os.time updates it.
local os_time = os.time
local function days_from_civil(y, m, d) -- days since 1970-01-01 of a proleptic Gregorian date
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end
function script_os.time(t)
  if t == nil then return os_time() end
  if type(t) ~= "table" then error("bad argument #1 to 'time' (table expected, got " .. type(t) .. ")", 2) end
  local function field(k, default)
    local v = t[k]
    if v == nil then
      if default == nil then error("field '" .. k .. "' missing in date table", 3) end
      return default
    end
    local n = math.tointeger(v)
    if n == nil then error("field '" .. k .. "' is not an integer", 3) end
    return n
  end
  local y, mo, d = field("year"), field("month"), field("day")
  local h, mi, sec = field("hour", 12), field("min", 0), field("sec", 0)
  y, mo = y + (mo - 1) // 12, (mo - 1) % 12 + 1
  local e = days_from_civil(y, mo, 1) * 86400 + (d - 1) * 86400 + h * 3600 + mi * 60 + sec
  local n = os_date("!*t", e)
  for k, v in pairs(n) do t[k] = v end
  return e
end

local shared = {
  string = M.freeze(script_string, true),
  table = M.freeze(script_table, true),
  math = M.freeze(pick(math, M.ALLOW.math), true),
  utf8 = M.freeze(pick(utf8, M.ALLOW.utf8), true),
  os = M.freeze(script_os, true),
  coroutine = M.freeze(co_lib, true),
}

local safe = {}

function safe.setmetatable(t, mt)
  if type(t) ~= "table" then
    error("bad argument #1 to 'setmetatable' (table expected, got " .. type(t) .. ")", 2)
  end
  if frozen[t] then error("setmetatable: cannot change a read-only table", 2) end
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed in scripts", 2)
  end
  -- refused here, at the script's line: Lua's own refusal would name this file's
  local cur = debug.getmetatable(t)
  if cur ~= nil and rawget(cur, "__metatable") ~= nil then
    error("setmetatable: cannot change a protected metatable", 2)
  end
  return setmetatable(t, mt)
end

-- Only tables show their metatables; the string metatable (shared by every string in the
-- process) stays out of reach.
function safe.getmetatable(v)
  if type(v) ~= "table" then return nil end
  return getmetatable(v)
end

function safe.rawset(t, k, v)
  if type(t) ~= "table" then
    error("bad argument #1 to 'rawset' (table expected, got " .. type(t) .. ")", 2)
  end
  if frozen[t] then error("rawset: cannot change a read-only table", 2) end
  return rawset(t, k, v)
end

-- A message handler reached from a budget error would run with hooks off (see
-- lscriptenv.c tripped()); so once the budget is spent, the script's handler is skipped.
local tripped = cenv.tripped
function safe.xpcall(f, handler, ...)
  if type(handler) ~= "function" then
    error("bad argument #2 to 'xpcall' (function expected, got " .. type(handler) .. ")", 2)
  end
  return xpcall(f, function(e)
    if tripped() then return e end
    return handler(e)
  end, ...)
end

function safe.collectgarbage(opt)
  if opt == "count" then return collectgarbage("count") end
  error("collectgarbage: only \"count\" is allowed in scripts", 2)
end

--- compile(source, chunkname[, env]) -> fn | nil, "name[:line]: message": Lua's load of a
--- text chunk, the one way the host compiles a file. The parser's own errors reach the
--- innermost message handler: a text nested too deeply (250 `{`) raises "C stack overflow"
--- through it, and under `orket`'s own handler (orket.cli, which answers a table) load gave
--- that table back as its message. Compiled under a pcall of its own, no handler is
--- called and the message is Lua's text, given the chunk's name where Lua gives none.
function M.compile(source, chunkname, env)
  local ok, fn, err
  if env == nil then ok, fn, err = pcall(load, source, chunkname, "t")
  else ok, fn, err = pcall(load, source, chunkname, "t", env) end
  if ok and fn then return fn end
  err = tostring(ok and err or fn)
  local name = chunkname and chunkname:gsub("^[@=]", "") or "?"
  if err == "C stack overflow" then return nil, name .. ": nested too deeply to compile (C stack overflow)" end
  -- Lua named the chunk itself ("name:line: ...", a long name shortened to "...tail")
  if err:find("^[^\n]-:%d+:") then return nil, err end
  return nil, name .. ": " .. err
end

local function make_load(env)
  return function(chunk, name, mode, chunk_env)
    if mode ~= nil and mode ~= "t" then
      return nil, "load: only text chunks are allowed in scripts (mode 't')"
    end
    if type(chunk) == "string" and chunk:byte(1) == 27 then
      return nil, "load: binary chunks are not allowed in scripts"
    end
    if type(chunk) ~= "string" and type(chunk) ~= "function" then
      error("bad argument #1 to 'load' (string expected, got " .. type(chunk) .. ")", 2)
    end
    if chunk_env == nil then chunk_env = env end
    return load(chunk, name, "t", chunk_env)
  end
end

local Box = {}
Box.__index = Box

--- new{name=, globals=, print=, instructions=, timeout_ms=, memory=} -> box
--- name: shown in errors (usually the file). globals: extra names the host hands in
--- (frozen when tables). print: receives print()'s line; without it there is no print.
function M.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #1 to 'new' (table expected)", 2) end
  -- owner: the blocks the box's calls make are counted as its own (orket.c.scriptenv)
  local box = setmetatable({ name = opts.name or "script", owner = cenv.owner() }, Box)
  for k, v in pairs(M.DEFAULTS) do
    local o = opts[k]
    if o ~= nil and (math.type(o) ~= "integer" or o < 0) then
      error("scriptenv.new: " .. k .. " must be a non-negative integer", 2)
    end
    box[k] = o or v
  end
  local env = {}
  for _, k in ipairs(M.ALLOW.globals) do env[k] = _G[k] end
  for k, v in pairs(shared) do env[k] = v end
  for k, v in pairs(safe) do env[k] = v end
  env.load = make_load(env)
  if opts.print then
    local sink = opts.print
    env.print = function(...)
      local n = select("#", ...)
      local parts = {}
      for i = 1, n do parts[i] = tostring((select(i, ...))) end
      sink(table.concat(parts, "\t"))
    end
  end
  for k, v in pairs(opts.globals or {}) do
    env[k] = (type(v) == "table" and not frozen[v]) and M.freeze(v) or v
  end
  env._G = env
  local script = box.name
  setmetatable(env, {
    __index = function(_, k)
      error("undefined global '" .. tostring(k) .. "' in " .. script, 2)
    end,
    __metatable = "scriptenv",
  })
  box.env = env
  return box
end

--- box:load(source, chunkname) -> fn | nil, "name:line: message", "ESYNTAX"
function Box:load(source, chunkname)
  if type(source) ~= "string" then
    error("bad argument #1 to 'load' (string expected, got " .. type(source) .. ")", 2)
  end
  if source:byte(1) == 27 then return nil, (chunkname or self.name) .. ": binary chunks are not allowed", "ESYNTAX" end
  local fn, err = M.compile(source, "@" .. (chunkname or self.name), self.env)
  if not fn then return nil, err, "ESYNTAX" end
  return fn
end

local held = cenv.held
local MiB = 1024 * 1024

-- After each call: what the script holds (the blocks its calls made, in any call, that are
-- still allocated: its upvalues, globals, coroutines and what they reach) may not pass its
-- memory budget, nor all scripts' together HELD_ALL. The counts are kept by the allocator,
-- so the check is two numbers; only a count over its cap pays for a full collection (it
-- counts garbage not yet collected), and only one still over it after that fails the call.
-- The box is then refused: its state lives in closures the host holds (a tool's handler, a
-- role's functions), which only a reload of its file lets go.
local function checked(box, ...)
  local cap = box.memory
  if cap == 0 then return ... end
  local mine, all = held(box.owner)
  if mine <= cap and all <= M.HELD_ALL then return ... end
  mine, all = held(box.owner, true)
  if mine <= cap and all <= M.HELD_ALL then return ... end
  box.refused = string.format("script: memory limit exceeded: the script holds %d MiB between its calls, %s; "
    .. "it is refused until its file is loaded again", (mine + MiB - 1) // MiB,
    mine > cap and string.format("more than its %d MiB budget", (cap + MiB - 1) // MiB)
      or string.format("and all scripts together %d MiB, more than %d MiB", (all + MiB - 1) // MiB, M.HELD_ALL // MiB))
  return false, box.refused, "ENOMEM"
end

--- box:pcall(fn, ...) -> true, ... | false, message, CODE
--- CODE: EBUDGET (instructions), ETIMEOUT (deadline), ENOMEM (memory), ERUNTIME.
--- A box whose script holds more than its memory budget between calls (checked) fails the
--- call and every later one, ENOMEM.
function Box:pcall(fn, ...)
  if type(fn) ~= "function" then
    error("bad argument #1 to 'pcall' (function expected, got " .. type(fn) .. ")", 2)
  end
  if self.refused then return false, self.refused, "ENOMEM" end
  return checked(self, cenv.pcall_as(self.owner, self.instructions, self.timeout_ms, self.memory, fn, ...))
end

--- first_line(message) -> "file:line: message" without the traceback box:pcall appends:
--- what an operator is shown for a mistake in a script (tracebacks are for Orket's own bugs).
function M.first_line(msg)
  return (tostring(msg):match("^[^\n]*"))
end

--- box:dofile(path) -> true, results... | false, message, CODE (ENOENT, ESYNTAX, ...)
--- Loading a file reports "file:line: message" alone (M.first_line): no traceback.
function Box:dofile(path)
  local f, oerr = io.open(path, "rb")
  if not f then return false, oerr, "ENOENT" end
  local src = f:read("a")
  f:close()
  local fn, err, code = self:load(src, path)
  if not fn then return false, err, code end
  local res = table.pack(self:pcall(fn))
  if not res[1] then return false, M.first_line(res[2]), res[3] end
  return table.unpack(res, 1, res.n)
end

--- copy(v, max_depth) -> a plain-data copy of a value a script returned: tables are copied
--- with raw access (no script metamethods run), functions and userdata are refused.
--- Returns nil, message ("value.a.1: cycle") on anything else. The walk is core/lplain.c's
--- (it runs several times a turn; in Lua it was a tenth of the turn's overhead).
M.copy = plain.copy

return M
