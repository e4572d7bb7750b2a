-- orket.llm.ollama: Ollama's native /api/chat wire format: NDJSON streaming, tool calls
-- whose arguments are objects (no ids; done_reason stays "stop", so a reply with calls is
-- reported as finish_reason "tool_calls"), prompt_eval_count/eval_count as usage.
local json = require "cjson.safe"
local common = require "orket.llm.common"
local inert = require "orket.inert"

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

--- build(provider, model, req, stream) -> url, body[, tools text]: as orket.llm.openai's
--- (its members but messages, too, are a function of what openai's are)
function M.build(p, model, req, stream)
  local body = { model = model, stream = stream, messages = {} }
  for i, m in ipairs(req.messages) do body.messages[i] = message(m) end
  local tools_text
  body.tools, tools_text = common.wire_tools(req)
  -- Ollama has no tool_choice; model options (temperature, num_ctx, ...) go in `options`.
  if req.options then body.options = req.options end
  if req.max_tokens then -- Ollama's name for it, among the model options
    body.options = body.options or {}
    if body.options.num_predict == nil then body.options.num_predict = req.max_tokens end
  end
  return common.endpoint(p, "/api/chat"), body, tools_text
end

-- A call as the decoder gives it, normalized: arguments are an object's JSON text (or null),
-- a string, or absent.
local function call_of(id, name, args, args_json)
  if args_json then
    local v = json.decode(args)
    if v ~= nil then return common.tool_call(id, name, nil, v) end
  end
  if args then return common.tool_call(id, name, args) end
  return common.tool_call(id, name, nil, {})
end

local D = common.decoding { name = "ollama", kind = "ollama", piece = "stream line",
  not_object = "ollama: a line is not a JSON object",
  server_error = function(v)
    local msg = type(v) == "table" and tostring(v.message) or tostring(v)
    return common.err("transient", "ollama: error from the server: " .. inert.quote(msg, 300))
  end,
  -- a call arrives whole: on_delta sees it normalized, and finish reuses it
  to_delta = function(st, p)
    if p.type ~= "tool_call" then return p end
    local call = call_of(p.id, p.name, p.arguments_delta, p.arguments_json)
    st.built = st.built or {}
    st.built[p.index] = call
    return { type = "tool_call", index = p.index, name = call.name, arguments_delta = call.raw_arguments }
  end }

--- new_state(), from_decoded(d), on_event(st, line, emit), parse(st, body, emit): see
--- common.decoding
M.new_state, M.from_decoded, M.on_event, M.parse = D.new_state, D.from_decoded, D.on_event, D.parse

function M.finish(st)
  local d = D.decoded(st)
  if not d.done then return nil, common.err("transient", "ollama: the stream ended before its final (done) line") end
  local calls = {}
  for i, c in ipairs(d.calls) do
    calls[i] = st.built and st.built[i] or call_of(c.id, c.name, c.arguments, c.arguments_json)
  end
  local finish = d.finish or "stop"
  if #calls > 0 and finish == "stop" then finish = "tool_calls" end
  local u = d.usage or {}
  return d.content, calls, finish, { prompt_tokens = u.prompt, completion_tokens = u.completion }, d.model, nil
end

function M.health_url(p) return common.endpoint(p, "/api/tags") end

function M.health_models(body)
  local t = json.decode(body)
  if type(t) ~= "table" or type(t.models) ~= "table" then return nil end -- not a model list
  local out = {}
  for _, m in ipairs(t.models) do
    out[#out + 1] = type(m) == "table" and common.name_text(m.name) or nil -- (an entry with no name left out)
  end
  return out
end

return M
