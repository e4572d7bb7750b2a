-- orket.llm.scripted: an offline provider answering from rules, so examples and tests run
-- with no model server. Rules come from a script file (operator-written: loaded in a
-- script environment, only data kept) or inline in the provider's config. The format is in docs/llm.md.
local scriptenv = require "orket.scriptenv"
local rt = require "orket.c.runtime"
local common = require "orket.llm.common"
local cpattern = require "orket.c.pattern"
local cenv = require "orket.c.scriptenv"
local fieldline = require "orket.fieldline"
local scriptfile = require "orket.scriptfile"
local nearest = require "orket.nearest"
local cost = require "orket.cost"

local M = {}

-- A rule's pattern meets the agent's text, which is hostile: each match runs under a
-- budget of its own (the step-counted matcher charges it), so no pattern and text can
-- hold the host. About 20 ms of matching.
M.MATCH_BUDGET = { instructions = 2000000, timeout_ms = 500 }

--- find(text, pattern) -> true | false | nil, message: the rule's pattern in the text.
local function find(text, pattern)
  local b = M.MATCH_BUDGET
  local ok, start, err = cenv.pcall(b.instructions, b.timeout_ms, 0, cpattern.find, text, pattern)
  if ok then return start ~= nil end
  return nil, (tostring(start):match("^[^\n]*")), err
end

local MATCH_KEYS = { role = true, card = true, seat = true, run = true, turn = true, model = true, match = true }
local REPLY_KEYS = { content = true, tool_calls = true, finish_reason = true, usage = true,
  delay_ms = true, error = true, chunks = true }

-- A reply's usage: the counts a server reports, checked as one's are (orket.cost). A field
-- the provider does not read (`input`, `output`) would leave the counts estimated, unnoticed.
local USAGE_KEYS = { "prompt_tokens", "completion_tokens", "cached_tokens" }

local function check_usage(u, at)
  if type(u) ~= "table" then return nil, at .. " must be a table {" .. table.concat(USAGE_KEYS, "=, ") .. "=}" end
  -- the first unknown field by name, so the message is the same at every load
  local unknown
  for k in pairs(u) do
    local known = false
    for _, name in ipairs(USAGE_KEYS) do known = known or k == name end
    if not known and (unknown == nil or tostring(k) < tostring(unknown)) then unknown = k end
  end
  if unknown ~= nil then
    return nil, nearest.hint(string.format("%s.%s: unknown field (usage fields: %s)", at, tostring(unknown),
      table.concat(USAGE_KEYS, ", ")))
  end
  local why = cost.usage_error(u)
  if why then return nil, at .. "." .. why end
  return true
end

local function check_reply(r, at)
  if type(r) ~= "table" then return nil, at .. " must be a table" end
  for k in pairs(r) do
    if not REPLY_KEYS[k] then return nil, at .. "." .. tostring(k) .. " is not a reply field (content, tool_calls, finish_reason, usage, delay_ms, error, chunks)" end
  end
  if r.content ~= nil and type(r.content) ~= "string" then return nil, at .. ".content must be a string" end
  if r.usage ~= nil then
    local ok, err = check_usage(r.usage, at .. ".usage")
    if not ok then return nil, err end
  end
  if r.delay_ms ~= nil and (type(r.delay_ms) ~= "number" or r.delay_ms < 0) then return nil, at .. ".delay_ms must be a number >= 0" end
  if r.error ~= nil then
    if type(r.error) ~= "table" or not common.CLASSES[r.error.class] then
      return nil, at .. ".error must be {class=<transient|rate_limited|auth|bad_request|quota|timeout|canceled>, message=}"
    end
  end
  for i, c in ipairs(r.tool_calls or {}) do
    if type(c) ~= "table" or type(c.name) ~= "string" then return nil, at .. ".tool_calls[" .. i .. "].name must be a string" end
    if c.arguments ~= nil and type(c.arguments) ~= "table" then return nil, at .. ".tool_calls[" .. i .. "].arguments must be a table" end
  end
  return true
end

--- check(script, name) -> rules | nil, message: validates {rules={...}, default=reply}
function M.check(script, name)
  if type(script) ~= "table" then return nil, name .. ": must return a table {rules = {...}, default = reply}" end
  local rules = script.rules or {}
  if type(rules) ~= "table" then return nil, name .. ": rules must be a list" end
  for i, rule in ipairs(rules) do
    local at = name .. ": rules[" .. i .. "]"
    if type(rule) ~= "table" then return nil, at .. " must be a table" end
    for k in pairs(rule) do
      if not MATCH_KEYS[k] and k ~= "reply" and k ~= "sequence" then
        return nil, at .. "." .. tostring(k) .. " is not a rule field (role, card, seat, run, turn, model, match, reply, sequence)"
      end
    end
    if (rule.reply == nil) == (rule.sequence == nil) then return nil, at .. " needs exactly one of reply= or sequence=" end
    if rule.match ~= nil then
      if type(rule.match) ~= "string" then return nil, at .. ".match must be a Lua pattern (string)" end
      local ok, err = find("", rule.match)
      if ok == nil then return nil, at .. ".match: " .. tostring(err) end
    end
    if rule.reply then
      local ok, err = check_reply(rule.reply, at .. ".reply")
      if not ok then return nil, err end
    else
      if type(rule.sequence) ~= "table" or #rule.sequence == 0 then return nil, at .. ".sequence must be a non-empty list of replies" end
      for j, r in ipairs(rule.sequence) do
        local ok, err = check_reply(r, at .. ".sequence[" .. j .. "]")
        if not ok then return nil, err end
      end
    end
  end
  if script.default ~= nil then
    local ok, err = check_reply(script.default, name .. ": default")
    if not ok then return nil, err end
  end
  return { rules = rules, default = script.default }
end

-- "name: rules[1].rulez is not a rule field" -> "name:LINE: rules[1].rulez ...", the line
-- found from the field's last name in the file's text (orket.fieldline).
local function with_line(text, err)
  local name, rest = err:match("^(.-): (.*)$")
  if not name or not text then return err end
  local key = rest:match("^[%w_%.%[%]]-([%a_][%w_]*)[%[%d%]]*[: ]") or rest:match("^([%a_][%w_]*)")
  local line = key and fieldline.of(text, key)
  if not line then return err end
  return string.format("%s:%d: %s", name, line, rest)
end

--- load(conf[, provider]) -> state | nil, message: reads conf.file (in a script environment) or conf.rules.
--- Messages are "script.lua:LINE: ..." (the file as orket.lua names it), with no traceback:
--- a mistake in the script is the operator's to fix, not an internal error.
function M.load(conf, provider)
  local script, name, text
  if conf.file then
    name = conf.file:gsub("^%./", "")
    local oerr
    text, oerr = scriptfile.read(conf.file) -- a regular file only, never blocking
    if not text then
      return nil, string.format("orket.lua: models.providers.%s.file: cannot read the scripted model's file: %s",
        tostring(provider or "scripted"), tostring(oerr):gsub("^%./", ""))
    end
    local box = scriptenv.new { name = name }
    local fn, lerr = box:load(text, name)
    if not fn then return nil, lerr end
    local res = table.pack(box:pcall(fn))
    if not res[1] then return nil, (tostring(res[2]):match("^[^\n]*")) end
    if res[2] == nil then return nil, name .. ": returns nothing; return {rules = {...}, default = reply}" end
    local copy, cerr = scriptenv.copy(res[2])
    if cerr then return nil, name .. ": " .. cerr end
    script = copy
    for k in pairs(type(script) == "table" and script or {}) do
      if k ~= "rules" and k ~= "default" then
        return nil, with_line(text, name .. ": " .. tostring(k) .. " is not a script field (rules, default)")
      end
    end
  else
    name = "rules"
    script = { rules = conf.rules, default = conf.default }
  end
  local s, err = M.check(script, name)
  if not s then
    if text then return nil, with_line(text, err) end
    return nil, "scripted: " .. err
  end
  s.used = {} -- rule index -> replies taken from its sequence
  return s
end

-- Whether rule answers; nil, message when its pattern cannot be matched within budget.
local function matches(rule, meta, model, last)
  for k in pairs(MATCH_KEYS) do
    local want = rule[k]
    if want ~= nil and k ~= "match" then
      local have = k == "model" and model or meta[k]
      if have ~= want then return false end
    end
  end
  if rule.match then
    if last == nil then return false end
    return find(last, rule.match)
  end
  return true
end

-- The reply of the first rule that answers (or the default), or nil, message when a
-- rule's pattern ran out of budget on this text.
local function pick(s, meta, model, last)
  for i, rule in ipairs(s.rules) do
    local hit, err = matches(rule, meta, model, last)
    if hit == nil then
      return nil, string.format("scripted: rules[%d].match: %s", i, err)
    end
    if hit then
      if rule.reply then return rule.reply end
      local n = (s.used[i] or 0) + 1
      if n <= #rule.sequence then
        s.used[i] = n
        return rule.sequence[n]
      end -- an exhausted sequence lets later rules answer
    end
  end
  return s.default
end

local function split(text, n)
  if n <= 1 or #text == 0 then return { text } end
  local out, size = {}, math.ceil(#text / n)
  for i = 1, #text, size do out[#out + 1] = text:sub(i, i + size - 1) end
  return out
end

--- observe(s, model, req): counts a request answered earlier (read back from a run's
--- journal on resume) as if it had been asked now, so sequences go on where they were
--- instead of starting over; answers nothing.
function M.observe(s, model, req)
  local last = req.messages[#req.messages]
  last = last and last.content
  pick(s, req.meta or {}, model, type(last) == "string" and last or nil)
end

--- chat(s, pname, model, req) -> result | nil, message, CLASS
function M.chat(s, pname, model, req)
  local t0 = rt.now()
  local meta = req.meta or {}
  local last = req.messages[#req.messages]
  last = last and last.content
  local r, perr = pick(s, meta, model, type(last) == "string" and last or nil)
  if perr then return nil, perr, "bad_request" end
  if r == nil then
    return nil, string.format("scripted: no rule answers role=%s card=%s turn=%s (add a rule or a default)",
      tostring(meta.role), tostring(meta.card), tostring(meta.turn)), "bad_request"
  end
  if r.delay_ms and r.delay_ms > 0 then
    -- the call's timeout_ms bounds a scripted delay as it bounds a server's answer
    if req.timeout_ms and r.delay_ms > req.timeout_ms then
      rt.sleep(req.timeout_ms)
      return nil, string.format("scripted: no answer within the call's timeout_ms (%d ms)", req.timeout_ms), "timeout"
    end
    rt.sleep(r.delay_ms)
  end
  if r.error then return nil, "scripted: " .. tostring(r.error.message or r.error.class), r.error.class end
  local first
  local function emit(ev)
    first = first or (rt.now() - t0)
    if req.on_delta then req.on_delta(ev) end
  end
  local content = r.content or ""
  if content ~= "" then
    for _, piece in ipairs(split(content, r.chunks or 1)) do emit { type = "content", text = piece } end
  end
  local calls = {}
  for i, c in ipairs(r.tool_calls or {}) do
    calls[i] = common.tool_call(c.id or ("call_" .. i), c.name, nil, scriptenv.copy(c.arguments or {}))
    emit { type = "tool_call", index = i, id = calls[i].id, name = c.name, arguments_delta = calls[i].raw_arguments }
  end
  -- counted as a server's are: whole floats (1e4) as integers, more cached than prompt
  -- tokens read as Anthropic counts
  local u, note
  if r.usage then u, note = cost.counted(r.usage) end
  local usage = common.finish_usage(u, req, content, calls)
  usage.note = note
  return {
    content = content, tool_calls = calls,
    finish_reason = r.finish_reason or (#calls > 0 and "tool_calls" or "stop"),
    usage = usage,
    timings = { first_token_ms = first, total_ms = rt.now() - t0 },
    model = model, provider = pname, attempts = 1,
  }
end

return M
