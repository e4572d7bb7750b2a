-- orket.terminal.complete: Tab completion in `orket repl`. The word before the cursor is a
-- path of names (`project:mes`, `orket.js`, `pri`); the candidates are the fields of the
-- value the path leads to: its own keys, those of its metatable's __index tables, and the
-- members orket.terminal.help documents for it (`project` looks its fields up in a
-- function). After `:` only methods are offered.
local help = require "orket.terminal.help"

local M = {}

local MAX = 200 -- a table with more keys than this offers its first MAX, sorted

local IDENT = "^[%a_][%w_]*$"

-- What indexing does, without letting an __index function's error reach the prompt, nor
-- one that never returns hang it: completion runs inside the line editor's callback, where
-- Ctrl-C cannot stop it, so the lookup has a budget of VM instructions.
local GET_BUDGET = 1000000
local function get(v, k)
  local hook, mask, count = debug.gethook()
  debug.sethook(function() error("completion: an __index function ran too long", 0) end, "", GET_BUDGET)
  local ok, x = pcall(function() return v[k] end)
  debug.sethook(hook, mask, count)
  if ok then return x end
end

local function indexable(v)
  local t = type(v)
  if t == "table" or t == "string" then return true end
  if t == "userdata" then
    local mt = getmetatable(v)
    return type(mt) == "table" and mt.__index ~= nil
  end
  return false
end

-- Every name v may have: keys of v, then of each __index table up its metatables.
local function names_of(env, v)
  local out, seen = {}, {}
  local function add(k)
    if type(k) == "string" and k:match(IDENT) and not seen[k] then
      seen[k] = true
      out[#out + 1] = k
    end
  end
  local documented = help.names(env, v)
  for _, k in ipairs(documented or {}) do add(k) end
  local cur, depth = v, 0
  while cur ~= nil and depth < 8 do
    if type(cur) == "table" then
      for k in next, cur do add(k) end
    end
    local mt = getmetatable(cur)
    if type(cur) == "string" then mt = { __index = string } end
    cur = type(mt) == "table" and type(mt.__index) == "table" and mt.__index or nil
    depth = depth + 1
  end
  return out
end

--- complete(env, word) -> sorted list of whole words that complete word (each one starts
--- with it), at most 200. word is the text before the cursor back to the last character
--- that cannot be part of a path of names (a space, a bracket, an operator).
function M.complete(env, word)
  local path, sep, stem = word:match("^(.-)([.:]?)([%a_]?[%w_]*)$")
  if not path then return {} end
  local value, base = env, ""
  if sep == "" and path ~= "" then return {} end
  if sep ~= "" then
    -- `a:b.c` is not a path: a method call ends it
    if path == "" or path:find(":", 1, true) then return {} end
    for part in (path .. "."):gmatch("(.-)%.") do
      if not part:match(IDENT) or not indexable(value) then return {} end
      value = get(value, part)
    end
    if not indexable(value) then return {} end
    base = path .. sep
  end
  local out = {}
  local keys = names_of(env, value)
  table.sort(keys)
  for _, k in ipairs(keys) do
    if k:sub(1, #stem) == stem and (sep ~= ":" or type(get(value, k)) == "function") then
      if #out == 0 or out[#out] ~= base .. k then out[#out + 1] = base .. k end
      if #out >= MAX then break end
    end
  end
  return out
end

return M
