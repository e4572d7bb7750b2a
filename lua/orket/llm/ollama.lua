-- orket.llm.ollama: Ollama's native /api/chat wire format: NDJSON streaming, tool calls
-- whose arguments are objects (no ids; done_reason stays "stop", so a reply with calls is
-- reported as finish_reason "tool_calls"), prompt_eval_count/eval_count as usage.
local json = require "cjson.safe"
local common = require "orket.llm.common"

local M = { framing = "ndjson" }

local function message(m)
  local out = { role = m.role, content = m.content or "" }
  if m.role == "tool" and m.name then out.tool_name = m.name end
  if m.tool_calls and #m.tool_calls > 0 then
    out.tool_calls = {}
    for i, c in ipairs(m.tool_calls) do
      local args = c.arguments
      if args == nil and c.raw_arguments then args = json.decode(c.raw_arguments) end
      out.tool_calls[i] = { ["function"] = { name = c.name, arguments = type(args) == "table" and args or {} } }
    end
  end
  return out
end

function M.build(p, model, req, stream)
  local body = { model = model, stream = stream, messages = {} }
  for i, m in ipairs(req.messages) do body.messages[i] = message(m) end
  if req.tools and #req.tools > 0 then
    body.tools = {}
    for i, t in ipairs(req.tools) do
      body.tools[i] = { type = "function", ["function"] = { name = t.name, description = t.description,
        parameters = t.parameters or { type = "object", properties = {} } } }
    end
  end
  -- Ollama has no tool_choice; model options (temperature, num_ctx, ...) go in `options`.
  if req.options then body.options = req.options end
  return common.endpoint(p, "/api/chat"), body
end

function M.new_state() return { content = {}, calls = {} } end

--- from_decoded(d) -> state (see openai.from_decoded); the C decoder leaves tool calls to
--- take(), so there are none here.
function M.from_decoded(d)
  local u = d.usage and { prompt_tokens = d.usage.prompt, completion_tokens = d.usage.completion }
  return { content = { d.content }, calls = {}, done = d.done or nil, done_reason = d.finish, usage = u, model = d.model }
end

local function take(st, t, emit)
  if type(t) ~= "table" then return common.err("transient", "ollama: a line is not a JSON object") end
  if t.error ~= nil then
    local msg = type(t.error) == "table" and tostring(t.error.message) or tostring(t.error)
    return common.err("transient", "ollama: error from the server: " .. msg)
  end
  if type(t.model) == "string" then st.model = t.model end
  local m = t.message
  if type(m) == "table" then
    if type(m.content) == "string" and m.content ~= "" then
      st.content[#st.content + 1] = m.content
      emit(st.deltas and { type = "content", text = m.content })
    end
    if m.tool_calls ~= nil and m.tool_calls ~= json.null and type(m.tool_calls) ~= "table" then
      return common.malformed("ollama", "message.tool_calls is " .. common.kind(m.tool_calls) .. ", not a list")
    end
    if type(m.tool_calls) == "table" then
      for pos, tc in ipairs(m.tool_calls) do
        local where = "message.tool_calls[" .. pos .. "]"
        local f = type(tc) == "table" and tc["function"] or nil
        -- a call of another shape is the server's fault, and dropping it would lose the
        -- model's action without a word
        if type(tc) ~= "table" then return common.malformed("ollama", where .. " is " .. common.kind(tc) .. ", not an object") end
        if type(f) ~= "table" then
          return common.malformed("ollama", where .. ".function is " .. common.kind(f) .. ", not an object")
        end
        if type(f.name) ~= "string" or f.name == "" then
          return common.malformed("ollama", where .. ".function.name is " .. common.kind(f.name) .. ", not a tool name")
        end
        if tc.id ~= nil and tc.id ~= json.null and type(tc.id) ~= "string" then
          return common.malformed("ollama", where .. ".id is " .. common.kind(tc.id) .. ", not a string")
        end
        local a = f.arguments -- null: the gate refuses it as arguments that are not an object
        if a ~= nil and a ~= json.null and type(a) ~= "string" and type(a) ~= "table" then
          return common.malformed("ollama", where .. ".function.arguments is " .. common.kind(a) .. ", not an object")
        end
        local call = common.tool_call(type(tc.id) == "string" and tc.id or nil, f.name,
          type(a) == "string" and a or nil, type(a) ~= "string" and (a or {}) or nil)
        st.calls[#st.calls + 1] = call
        emit(st.deltas and { type = "tool_call", index = #st.calls, name = call.name, arguments_delta = call.raw_arguments })
      end
    end
  end
  if t.done == true then
    st.done = true
    st.done_reason = t.done_reason
    st.usage = { prompt_tokens = math.tointeger(t.prompt_eval_count), completion_tokens = math.tointeger(t.eval_count) }
  end
end

--- on_event(state, line, emit), parse(state, body, emit) -> nil | failure
M.on_event, M.parse = common.json_decoders("ollama", "stream line", take)

function M.finish(st)
  if not st.done then return nil, common.err("transient", "ollama: the stream ended before its final (done) line") end
  local finish = st.done_reason or "stop"
  if #st.calls > 0 and finish == "stop" then finish = "tool_calls" end
  return table.concat(st.content), st.calls, finish, st.usage, st.model, nil
end

function M.health_url(p) return common.endpoint(p, "/api/tags") end

function M.health_models(body)
  local t = json.decode(body)
  if type(t) ~= "table" or type(t.models) ~= "table" then return nil end -- not a model list
  local out = {}
  for _, m in ipairs(t.models) do
    if type(m) == "table" and m.name ~= nil then out[#out + 1] = common.name_text(m.name) end
  end
  return out
end

return M
