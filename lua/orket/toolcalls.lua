-- orket.toolcalls: tool calls out of model output, which is hostile data. Native calls
-- (OpenAI: arguments is a JSON string; Ollama: arguments is an object and there is no id)
-- and, for models that print calls as text, JSON objects found by core/toolscan.c's
-- string-aware scan, inside or outside ```json fences, of the shapes
--   {"tool": NAME, "args": {...}}   {"name": NAME, "arguments": {...}|"json"}
--   {"function": {"name": NAME, "arguments": ...}}
-- Malformed JSON that looks like a call is reported as a parse error naming the problem,
-- never skipped. Calls: {{id=string|nil, name=, arguments=table, raw_arguments=string}}.
local toolscan = require "orket.c.toolscan"
local cjson = require("cjson.safe").new()

local M = {}

M.MAX_CALLS = 32
M.MAX_DEPTH = 32
M.MAX_ARGUMENTS = 4 * 1024 * 1024 -- bytes of one call's JSON arguments

cjson.decode_max_depth(M.MAX_DEPTH)
cjson.decode_invalid_numbers(false)

local function looks_like_call(s)
  return s:find('"tool"%s*:') or s:find('"name"%s*:') or s:find('"function"%s*:') or s:find('"tool_calls"%s*:')
end

local function decode_arguments(a, where)
  if a == nil then return {}, "{}" end
  if type(a) == "string" then
    if #a > M.MAX_ARGUMENTS then return nil, where .. ": arguments are longer than " .. M.MAX_ARGUMENTS .. " bytes" end
    if a:match("^%s*$") then return {}, a end
    local v, err = cjson.decode(a)
    if v == nil then return nil, where .. ": arguments are not valid JSON (" .. tostring(err) .. ")" end
    if type(v) ~= "table" then return nil, where .. ": arguments must be a JSON object" end
    return v, a
  end
  if type(a) ~= "table" then return nil, where .. ": arguments must be an object" end
  local raw = cjson.encode(a)
  if raw == nil then return nil, where .. ": arguments nest deeper than " .. M.MAX_DEPTH .. " levels" end
  return a, raw
end

-- One decoded object -> a call, nil (not a call), or nil, error.
local function shape(obj, where)
  if type(obj) ~= "table" then return nil end
  local name, args, id = nil, nil, nil
  if obj.tool ~= nil then
    name, args = obj.tool, obj.args or obj.arguments
  elseif type(obj["function"]) == "table" then
    name, args, id = obj["function"].name, obj["function"].arguments, obj.id
  elseif obj.name ~= nil and (obj.arguments ~= nil or obj.parameters ~= nil) then
    name, args, id = obj.name, obj.arguments or obj.parameters, obj.id
  else
    return nil
  end
  if type(name) ~= "string" or name == "" or #name > 128 then
    return nil, where .. ": the tool name must be a non-empty string"
  end
  local a, raw = decode_arguments(args, where)
  if a == nil then return nil, raw end
  if a[1] ~= nil then return nil, where .. ": arguments must be an object, not a list" end
  return { id = type(id) == "string" and id or nil, name = name, arguments = a, raw_arguments = raw }
end

--- from_native(calls) -> calls | nil, error
--- calls: the wire list from an OpenAI-compatible or Ollama response message.
function M.from_native(list)
  if list == nil then return {} end
  if type(list) ~= "table" then return nil, "tool_calls must be a list" end
  if #list > M.MAX_CALLS then return nil, "more than " .. M.MAX_CALLS .. " tool calls in one response" end
  local out = {}
  for i, c in ipairs(list) do
    local call, err = shape(c, "tool call " .. i)
    if err then return nil, err end
    if not call then return nil, "tool call " .. i .. ": expected {function={name=, arguments=}}" end
    out[#out + 1] = call
  end
  return out
end

--- from_text(text) -> calls | nil, parse_error
--- The fallback for models that print calls: every JSON object in the text is decoded; those
--- of a call's shape become calls; damaged JSON that looks like a call is an error for the
--- model. Prose with stray braces is not a call.
function M.from_text(text)
  if type(text) ~= "string" then
    error("bad argument #1 to 'from_text' (string expected, got " .. type(text) .. ")", 2)
  end
  local spans, truncated = toolscan.scan(text)
  local calls, good = {}, {}
  local problems = {}
  for _, sp in ipairs(spans) do
    local src = text:sub(sp.start, sp.stop)
    local where = "tool call at character " .. sp.start
    if sp.status == "ok" then
      local obj, derr = cjson.decode(src)
      if obj == nil then
        if looks_like_call(src) then problems[#problems + 1] = { sp = sp, msg = where .. ": invalid JSON (" .. tostring(derr) .. ")" } end
      else
        local list = type(obj) == "table" and obj.tool_calls
        local found, err
        if type(list) == "table" then
          found, err = M.from_native(list)
        else
          local one
          one, err = shape(obj, where)
          found = one and { one } or nil
        end
        if err then
          problems[#problems + 1] = { sp = sp, msg = err }
        elseif found then
          for _, c in ipairs(found) do calls[#calls + 1] = c end
          good[#good + 1] = sp
        end
      end
    elseif looks_like_call(src) then
      problems[#problems + 1] = { sp = sp, msg = where .. ": " .. sp.message .. " near character " .. sp.err_at }
    end
  end
  -- A damaged span that merely wraps a good call (a stray '{' in prose before it) is noise.
  for _, p in ipairs(problems) do
    local covers = false
    for _, g in ipairs(good) do
      if g.start > p.sp.start and g.stop <= p.sp.stop + (p.sp.status == "ok" and 0 or #text) then covers = true end
    end
    if not covers then return nil, p.msg .. "; send each tool call as one complete JSON object" end
  end
  if #calls > M.MAX_CALLS then return nil, "more than " .. M.MAX_CALLS .. " tool calls in one response" end
  if truncated and #calls == 0 then
    return nil, "the response is too long to scan for tool calls (over 1 MiB or 64 JSON objects)"
  end
  return calls
end

return M
