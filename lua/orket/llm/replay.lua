-- orket.llm.replay: answers from a recorded run, for deterministic re-runs and debugging.
-- The store lives elsewhere, so the client is handed a lookup function (see docs/llm.md):
--   source(key) -> recorded | nil, message
--   key = {run=, card=, role=, seat=, turn=, call=, model=}, call counting the requests made
--   with the same run/card/seat/turn (1, 2, ...); recorded is a result as chat returned it,
--   or {error = {class=, message=}} for a recorded failure.
local scriptenv = require "orket.scriptenv"
local rt = require "orket.c.runtime"
local common = require "orket.llm.common"

local M = {}

function M.new(source)
  return { source = source, calls = {} }
end

function M.chat(s, pname, model, req)
  if type(s.source) ~= "function" then
    return nil, "replay: no recorded run to answer from (pass llm.new(config, {replay = fn}))", "bad_request"
  end
  local meta = req.meta or {}
  local k = table.concat({ tostring(meta.run), tostring(meta.card), tostring(meta.seat), tostring(meta.turn) }, "\0")
  s.calls[k] = (s.calls[k] or 0) + 1
  local key = { run = meta.run, card = meta.card, role = meta.role, seat = meta.seat, turn = meta.turn,
    call = s.calls[k], model = model }
  local rec, err = s.source(key)
  if rec == nil then
    return nil, string.format("replay: no recorded response for run=%s card=%s turn=%s call=%d%s",
      tostring(meta.run), tostring(meta.card), tostring(meta.turn), key.call, err and (": " .. err) or ""), "bad_request"
  end
  local copy, cerr = scriptenv.copy(rec)
  if not copy then return nil, "replay: the recorded response is not plain data: " .. cerr, "bad_request" end
  if type(copy.error) == "table" then
    local class = common.CLASSES[copy.error.class] and copy.error.class or "transient"
    return nil, tostring(copy.error.message or "recorded failure"), class
  end
  local t0 = rt.now()
  local content = type(copy.content) == "string" and copy.content or ""
  if req.on_delta and content ~= "" then req.on_delta { type = "content", text = content } end
  local calls = {}
  for i, c in ipairs(copy.tool_calls or {}) do
    calls[i] = common.tool_call(c.id, c.name, c.raw_arguments, c.raw_arguments == nil and (c.arguments or {}) or nil)
    if req.on_delta then req.on_delta { type = "tool_call", index = i, id = c.id, name = c.name, arguments_delta = calls[i].raw_arguments } end
  end
  return {
    content = content, tool_calls = calls,
    finish_reason = copy.finish_reason or (#calls > 0 and "tool_calls" or "stop"),
    usage = copy.usage or common.finish_usage(nil, req, content, calls),
    timings = { first_token_ms = 0, total_ms = rt.now() - t0 },
    model = copy.model or model, request_id = copy.request_id, provider = pname, attempts = 1, replayed = true,
  }
end

return M
