-- orket.llm.openai: the OpenAI Chat Completions wire format (OpenAI, llama-server, vLLM,
-- LM Studio, Ollama's /v1): request bodies, streamed chunks (tool calls assembled by
-- index, usage from stream_options.include_usage, errors inside a 200 stream) and
-- non-streamed bodies, into orket.llm's normalized result.
local json = require "cjson.safe"
local common = require "orket.llm.common"

local M = { framing = "sse" }

local function tool_choice(tc)
  if tc == nil or type(tc) == "string" then return tc end
  if type(tc) == "table" and tc.name then return { type = "function", ["function"] = { name = tc.name } } end
  return tc
end

local function parameters(p)
  p = p or { type = "object", properties = {} }
  if type(p.required) == "table" and next(p.required) == nil then
    local q = {}
    for k, v in pairs(p) do if k ~= "required" then q[k] = v end end
    return q
  end
  return p
end

local function message(m)
  local out = { role = m.role, content = m.content, name = m.name, tool_call_id = m.tool_call_id }
  if m.tool_calls and #m.tool_calls > 0 then
    out.tool_calls = {}
    for i, c in ipairs(m.tool_calls) do
      out.tool_calls[i] = { id = c.id or ("call_" .. i), type = "function",
        ["function"] = { name = c.name, arguments = c.raw_arguments or json.encode(c.arguments or {}) } }
    end
    if out.content == nil then out.content = json.null end
  end
  return out
end

--- build(provider, model, req, stream) -> url, body (a table to encode)
function M.build(p, model, req, stream)
  local body = { model = model, stream = stream, messages = {} }
  for i, m in ipairs(req.messages) do body.messages[i] = message(m) end
  if stream then body.stream_options = { include_usage = true } end
  if req.tools and #req.tools > 0 then
    body.tools = {}
    for i, t in ipairs(req.tools) do
      body.tools[i] = { type = "function", ["function"] = { name = t.name, description = t.description,
        parameters = parameters(t.parameters) } }
    end
    body.tool_choice = tool_choice(req.tool_choice)
  end
  if req.options then
    for k, v in pairs(req.options) do
      if body[k] == nil then body[k] = v end
    end
  end
  return common.endpoint(p, "/chat/completions"), body
end

function M.new_state() return { content = {}, calls = {}, finish_reason = nil } end

--- from_decoded(d) -> state: the state as take() would have left it, from what the HTTP
--- binding decoded in C (req:decoded()); later events, if any, go through on_event.
function M.from_decoded(d)
  local calls = {}
  for i, c in ipairs(d.calls) do calls[i] = { id = c.id, name = c.name, args = { c.arguments } } end
  local u = d.usage and { prompt_tokens = d.usage.prompt, completion_tokens = d.usage.completion }
  return { content = { d.content }, calls = calls, finish_reason = d.finish, usage = u, id = d.id, model = d.model }
end

-- A tool call's fields as the wire format has them, or the failure naming the first that is
-- of another type (null counts as absent).
local function present(v) return v ~= nil and v ~= json.null end

local function check_call(tc, where)
  if type(tc) ~= "table" then return common.malformed("openai", where .. " is " .. common.kind(tc) .. ", not an object") end
  if present(tc.index) and (type(tc.index) ~= "number" or math.tointeger(tc.index) == nil) then
    return common.malformed("openai", where .. ".index is " .. common.kind(tc.index) .. ", not an integer")
  end
  if present(tc.id) and type(tc.id) ~= "string" then
    return common.malformed("openai", where .. ".id is " .. common.kind(tc.id) .. ", not a string")
  end
  local f = tc["function"]
  if not present(f) then return nil end
  if type(f) ~= "table" then return common.malformed("openai", where .. ".function is " .. common.kind(f) .. ", not an object") end
  if present(f.name) and type(f.name) ~= "string" then
    return common.malformed("openai", where .. ".function.name is " .. common.kind(f.name) .. ", not a string")
  end
  if present(f.arguments) and type(f.arguments) ~= "string" and type(f.arguments) ~= "table" then
    return common.malformed("openai", where .. ".function.arguments is " .. common.kind(f.arguments)
      .. ", not a string of JSON")
  end
end

local function take_choice(st, choice, emit)
  local d = choice.delta
  if not present(d) then d = choice.message end
  if not present(d) then d = {} end
  if type(d) ~= "table" then
    return common.malformed("openai", "choices[1]." .. (present(choice.delta) and "delta" or "message") .. " is "
      .. common.kind(d) .. ", not an object")
  end
  if type(d.content) == "string" and d.content ~= "" then
    st.content[#st.content + 1] = d.content
    emit(st.deltas and { type = "content", text = d.content })
  end
  if present(d.tool_calls) and type(d.tool_calls) ~= "table" then
    return common.malformed("openai", "tool_calls is " .. common.kind(d.tool_calls) .. ", not a list")
  end
  if type(d.tool_calls) == "table" then
    for pos, tc in ipairs(d.tool_calls) do
      local bad = check_call(tc, "tool_calls[" .. pos .. "]")
      if bad then return bad end
      local idx = (math.tointeger(tc.index) or (pos - 1)) + 1
      if idx < 1 or idx > 1024 then return common.malformed("openai", "tool_calls[" .. pos .. "].index is out of range") end
      local c = st.calls[idx]
      if not c then
        c = { args = {} }
        st.calls[idx] = c
      end
      if type(tc.id) == "string" then c.id = tc.id end
      local f = type(tc["function"]) == "table" and tc["function"] or {}
      if type(f.name) == "string" and f.name ~= "" then c.name = (c.name or "") .. f.name end
      if type(f.arguments) == "string" then
        c.args[#c.args + 1] = f.arguments
      elseif type(f.arguments) == "table" then -- some servers send an object
        c.args[#c.args + 1] = json.encode(f.arguments)
      end
      emit(st.deltas and { type = "tool_call", index = idx, id = c.id, name = c.name, arguments_delta = type(f.arguments) == "string" and f.arguments or nil })
    end
  end
  if type(choice.finish_reason) == "string" then st.finish_reason = choice.finish_reason end
end

local function take(st, t, emit)
  if type(t) ~= "table" then return common.err("transient", "openai: an event is not a JSON object") end
  if t.error ~= nil then
    local e = type(t.error) == "table" and t.error or { message = tostring(t.error) }
    local class = common.classify_error_object(e)
    return common.err(class, "openai: error from the server: " .. tostring(e.message or "(no message)"))
  end
  if type(t.id) == "string" then st.id = t.id end
  if type(t.model) == "string" then st.model = t.model end
  if type(t.usage) == "table" then st.usage = t.usage end
  if type(t.choices) == "table" then
    for _, choice in ipairs(t.choices) do
      if type(choice) == "table" and (choice.index == nil or choice.index == 0) then
        local bad = take_choice(st, choice, emit)
        if bad then return bad end
      end
    end
  end
end

--- on_event(state, data, emit) -> nil | failure: one SSE data payload;
--- parse(state, body, emit) -> nil | failure: a whole non-streamed response
M.on_event, M.parse = common.json_decoders("openai", "stream event", take)

--- finish(state) -> content, calls, finish_reason, usage (raw), model, id
function M.finish(st, streamed)
  if streamed and st.finish_reason == nil then
    return nil, common.err("transient", "openai: the stream ended before a finish_reason")
  end
  local calls = {}
  for i = 1, #st.calls do
    local c = st.calls[i]
    if c and c.name then calls[#calls + 1] = common.tool_call(c.id, c.name, table.concat(c.args)) end
  end
  local finish = st.finish_reason or (#calls > 0 and "tool_calls" or "stop")
  local u = st.usage and { prompt_tokens = math.tointeger(st.usage.prompt_tokens), completion_tokens = math.tointeger(st.usage.completion_tokens) }
  return table.concat(st.content), calls, finish, u, st.model, st.id
end

--- health_url(provider) -> the URL `orket models` probes
function M.health_url(p) return common.endpoint(p, "/models") end

function M.health_models(body)
  local t = json.decode(body)
  if type(t) ~= "table" or type(t.data) ~= "table" then return nil end -- not a model list
  local out = {}
  for _, m in ipairs(t.data) do
    if type(m) == "table" and m.id ~= nil then out[#out + 1] = common.name_text(m.id) end
  end
  return out
end

return M
