-- orket.llm.openai: the OpenAI Chat Completions wire format (OpenAI, llama-server, vLLM,
-- LM Studio, Ollama's /v1): request bodies, streamed chunks (tool calls assembled by
-- index, usage from stream_options.include_usage, errors inside a 200 stream) and
-- non-streamed bodies (decoded by core/chatwire.c, see common.decoding), into orket.llm's
-- normalized result.
local json = require "cjson.safe"
local common = require "orket.llm.common"
local inert = require "orket.inert"

local M = { framing = "sse" }

local function tool_choice(tc)
  if tc == nil or type(tc) == "string" then return tc end
  if type(tc) == "table" and tc.name then return { type = "function", ["function"] = { name = tc.name } } end
  return tc
end

local function message(m)
  -- a tool message is role, content and tool_call_id only (OpenAI's description; strict
  -- relays refuse a name there); the tool's name travels in the assistant's call
  local out = { role = m.role, content = m.content, name = m.role ~= "tool" and m.name or nil, tool_call_id = m.tool_call_id }
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

-- Anthropic's cache breakpoint, as relays that serve its models over this format take it
local EPHEMERAL = { type = "ephemeral" }

-- cache_control marks (docs/cost.md): the first system message (Anthropic's order puts the
-- tools before it, so one mark covers both), the first user message (the card's brief and
-- the role's text) and the last message (the history so far, read from the cache at the
-- next step): three of the four breakpoints Anthropic allows. A marked message's text
-- becomes one text part carrying the mark; an empty text cannot carry one.
local function mark_cache(msgs)
  local sys, user
  for i, m in ipairs(msgs) do
    if not sys and m.role == "system" then sys = i end
    if not user and m.role == "user" then user = i end
  end
  local function mark(i)
    local m = i and msgs[i]
    if m and type(m.content) == "string" and m.content ~= "" then
      m.content = { { type = "text", text = m.content, cache_control = EPHEMERAL } }
    end
  end
  mark(sys)
  mark(user)
  mark(#msgs)
end

--- build(provider, model, req, stream) -> url, body (a table to encode)[, tools: the JSON
--- text of body.tools, given instead of it (common.wire_tools)]. The provider's
--- cache_marks: "cache_prompt" asks llama.cpp's server to keep its cache (older servers
--- do not by default); "cache_control" marks the prompt's stable parts (mark_cache).
--- Without req.options, every member but messages is a function of the provider, model,
--- stream, req.max_tokens, req.tool_choice and the tools: the transport keeps their text.
function M.build(p, model, req, stream)
  local msgs = {}
  local body = { model = model, stream = stream, messages = msgs }
  local i, m = 1, req.messages[1]
  while m ~= nil do -- as ipairs walks them, by index
    msgs[i] = message(m)
    i = i + 1
    m = req.messages[i]
  end
  if p.cache_marks == "cache_prompt" then body.cache_prompt = true
  elseif p.cache_marks == "cache_control" then mark_cache(body.messages) end
  if stream then body.stream_options = { include_usage = true } end
  body.max_tokens = req.max_tokens
  local tools_text
  body.tools, tools_text = common.wire_tools(req)
  if body.tools or tools_text then body.tool_choice = tool_choice(req.tool_choice) end
  if req.options then
    for k, v in pairs(req.options) do
      -- the request's own members win, the tools' text (joined in later) included
      if body[k] == nil and not (tools_text and k == "tools") then body[k] = v end
    end
  end
  return common.endpoint(p, "/chat/completions"), body, tools_text
end

local D = common.decoding { name = "openai", kind = "openai", piece = "stream event",
  not_object = "openai: an event is not a JSON object",
  server_error = function(v)
    local e = type(v) == "table" and v or { message = tostring(v) }
    return common.err(common.classify_error_object(e), "openai: error from the server: " .. inert.quote(e.message or "(no message)", 300))
  end }

--- new_state(), from_decoded(d), on_event(st, data, emit), parse(st, body, emit): see
--- common.decoding; pieces reach on_delta as {type="content", text=} and {type="tool_call",
--- index=, id=, name=, arguments_delta=}.
M.new_state, M.from_decoded, M.on_event, M.parse = D.new_state, D.from_decoded, D.on_event, D.parse

--- finish(state, streamed) -> content, calls, finish_reason, usage (raw), model, id
function M.finish(st, streamed)
  local d = D.decoded(st)
  -- a stream that ended with [DONE] is whole: a finish_reason missing from it, or not a
  -- string, is ignored as in a whole answer (docs/llm.md); without [DONE] it was cut
  if streamed and d.finish == nil and not st.stream_done then
    return nil, common.err("transient", "openai: the stream ended before a finish_reason")
  end
  local calls, dcalls = {}, d.calls
  for i = 1, #dcalls do -- the decoder's own list, without holes
    local c = dcalls[i]
    if c.name then calls[#calls + 1] = common.tool_call(c.id, c.name, c.arguments) end
  end
  -- a whole answer without a choice ({}, {"choices": []}): no model answered, a broken server
  -- or proxy did; taken as an empty answer, it cost the card a turn in which nothing was said
  if not streamed and d.finish == nil and #calls == 0 and (d.content == nil or d.content == "") then
    return nil, common.malformed("openai", "the answer holds no choice (choices is missing or empty), or one with "
      .. "no content, no tool call and no finish_reason")
  end
  local finish = d.finish or (#calls > 0 and "tool_calls" or "stop")
  local u = d.usage and { prompt_tokens = d.usage.prompt, completion_tokens = d.usage.completion,
    cached_tokens = d.usage.cached }
  return d.content, calls, finish, u, d.model, d.id
end

--- health_url(provider) -> the URL `orket models` probes
function M.health_url(p) return common.endpoint(p, "/models") end

function M.health_models(body)
  local t = json.decode(body)
  if type(t) ~= "table" or type(t.data) ~= "table" then return nil end -- not a model list
  local out = {}
  for _, m in ipairs(t.data) do
    out[#out + 1] = type(m) == "table" and common.name_text(m.id) or nil -- (an entry with no name left out)
  end
  return out
end

return M
