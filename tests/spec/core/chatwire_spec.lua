-- The one decoder of the streamed chat formats (core/chatwire.c, through orket.c.http's
-- decoder and request{decode=}; orket.llm.openai and ollama build their results from it):
-- normal and hostile streams, each against the result or failure it must give, decoded the
-- two ways the transport uses it: piece by piece from a fresh decoder (with on_delta), and
-- as request{decode=} leaves it (the decoder takes events until one fails; only that one
-- reaches the wire format, from the decoded state). Both must give the same.
local http = require "orket.c.http"
local openai = require "orket.llm.openai"
local ollama = require "orket.llm.ollama"
local json = require "cjson.safe"

local WIRES = { openai = openai, ollama = ollama }

local function result(wire, st, delivered)
  local content, calls, finish, usage, model, id = wire.finish(st, true)
  if content == nil then return { failed = calls.class .. ": " .. calls.message } end
  return { content = content, calls = calls, finish = finish, usage = usage, model = model, id = id, delivered = delivered }
end

-- Piece by piece, as with on_delta: every event through on_event, then finish.
local function by_pieces(kind, events)
  local wire = WIRES[kind]
  local st = wire.new_state()
  st.deltas = true
  local pieces = {}
  local function emit(ev) pieces[#pieces + 1] = ev end
  for _, e in ipairs(events) do
    local err = wire.on_event(st, e, emit)
    if err then return { failed = err.class .. ": " .. err.message }, pieces end
  end
  return result(wire, st, #pieces > 0), pieces
end

-- As request{decode=}: the decoder alone until an event fails, which then goes to the wire
-- format from the decoded state.
local function by_request(kind, events)
  local wire = WIRES[kind]
  local dec = http.decoder(kind)
  for _, e in ipairs(events) do
    if not dec:take(e) then
      local st = wire.from_decoded(dec:result())
      local err = wire.on_event(st, e, function() end)
      return { failed = err.class .. ": " .. err.message }
    end
  end
  local d = dec:result()
  return result(wire, wire.from_decoded(d), d.deltas > 0)
end

local function chunk(t) return json.encode(t) end
local function delta(d, finish, extra)
  local t = { id = "chatcmpl-1", object = "chat.completion.chunk", model = "gpt", choices = { { index = 0, delta = d, finish_reason = finish or json.null } } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return chunk(t)
end
local STOP, TOOLS = delta({}, "stop"), delta({}, "tool_calls")
local function tc(calls) return '{"choices":[{"delta":{"tool_calls":' .. calls .. '}}]}' end

local OPENAI = {
  plain = { delta { role = "assistant", content = "" }, delta { content = "Hello" }, delta { content = ", world" },
    STOP, '{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}' },
  choices_object = { delta { content = "a" }, '{"choices":{}}', STOP },
  no_usage = { delta { content = "a" }, delta({}, "length") },
  no_finish = { delta { content = "a" } },
  tool_calls = { delta { tool_calls = { { index = 0, id = "call_1", type = "function", ["function"] = { name = "write_file", arguments = "" } } } },
    delta { tool_calls = { { index = 0, ["function"] = { arguments = '{"path":' } } } },
    delta { tool_calls = { { index = 0, ["function"] = { arguments = '"a.txt"}' } }, { index = 1, id = "c2", ["function"] = { name = "read", arguments = "{}" } } } },
    TOOLS },
  bad_arguments = { delta { tool_calls = { { index = 0, ["function"] = { name = "f", arguments = "{not json" } } } }, TOOLS },
  no_index = { delta { tool_calls = { { ["function"] = { name = "f" } }, { ["function"] = { name = "g" } } } }, TOOLS },
  name_later = { delta { tool_calls = { { index = 0, ["function"] = { arguments = "{}" } } } },
    delta { tool_calls = { { index = 0, ["function"] = { name = "late" } } } }, TOOLS },
  other_choice = { '{"choices":[{"index":1,"delta":{"content":"no"},"finish_reason":"length"},{"index":0,"delta":{"content":"yes"}}]}', STOP },
  index_float = { '{"choices":[{"index":0.0,"delta":{"content":"zero"}}]}', '{"choices":[{"index":"0","delta":{"content":"str"}}]}', STOP },
  message_shape = { '{"choices":[{"message":{"content":"whole"},"finish_reason":"stop"}]}' },
  delta_over_message = { '{"choices":[{"message":{"content":"m","tool_calls":[{"function":{"name":"m"}}]},"delta":{"content":"d"}}]}',
    '{"choices":[{"delta":null,"message":{"content":"M"}}]}', STOP },
  delta_not_object = { delta { content = "a" }, '{"choices":[{"delta":5}]}', STOP },
  message_not_object = { '{"choices":[{"delta":null,"message":"x"}]}', STOP },
  error_midway = { delta { content = "part" }, chunk { error = { message = "overloaded", type = "server_error" } }, STOP },
  quota_error = { chunk { error = { message = "no money", code = "insufficient_quota" } } },
  rate_error = { '{"choices":[{"delta":{"content":"x"}}],"error":{"message":"slow","code":"rate_limit_exceeded"}}' },
  error_string = { '{"error":"boom"}' },
  error_number = { '{"error":503}' },
  malformed_midway = { delta { content = "a" }, '{"choices": [{"delta": ', STOP },
  repeated_key = { delta { content = "a" }, '{"id":"1","id":"2","choices":[{"delta":{"content":"b"}}]}', delta { content = "c" }, STOP },
  repeated_content = { '{"choices":[{"delta":{"content":"a","content":"b"}}]}', STOP },
  repeated_ignored_key = { '{"x":1,"x":2,"choices":[{"delta":{"content":"a","role":"assistant","role":"x"}}]}', STOP },
  nul_escape = { delta { content = "x" }, '{"choices":[{"delta":{"content":"a\\u0000b"}}]}', STOP },
  surrogates = { '{"choices":[{"delta":{"content":"\\ud83d\\ude00 \\ud800"}}]}', STOP },
  surrogate_pair = { '{"choices":[{"delta":{"content":"\\ud83d\\ude00"}}]}', STOP },
  low_surrogate = { '{"choices":[{"delta":{"content":"\\ude00"}}]}', STOP },
  escapes = { '{"choices":[{"delta":{"content":"tab\\t nl\\n q\\" bs\\\\ sl\\/ \\u00e9 \\u20ac"}}]}', STOP },
  -- an escape cut short, at the end of the event too
  short_escape = { '{"choices":[{"delta":{"content":"\\u12"}}]}', STOP },
  escape_at_end = { delta { content = "a" }, '{"choices":[{"delta":{"content":"\\u' },
  escaped_backslash_u = { '{"choices":[{"delta":{"content":"\\\\ud800"}}]}', STOP },
  raw_utf8_and_invalid = { '{"choices":[{"delta":{"content":"caf\195\169 \255"}}]}', STOP },
  usage_variants = { delta { content = "a" }, '{"usage":{"prompt_tokens":7.0,"completion_tokens":1.5}}', STOP },
  usage_strings = { '{"usage":{"prompt_tokens":"11","completion_tokens":" 2 "}}', STOP },
  usage_bad_strings = { '{"usage":{"prompt_tokens":"1.5","completion_tokens":"nan"}}', STOP },
  usage_array = { delta { content = "a" }, '{"usage":[]}', STOP },
  usage_replaced = { '{"usage":{"prompt_tokens":1,"completion_tokens":2}}', '{"usage":{"completion_tokens":9}}', STOP },
  usage_cached = { '{"usage":{"prompt_tokens":90,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":64}}}', STOP },
  usage_cached_bad = { '{"usage":{"prompt_tokens":90,"prompt_tokens_details":{"cached_tokens":"x"}}}', STOP },
  usage_cached_list = { '{"usage":{"prompt_tokens":90,"prompt_tokens_details":[64]}}', STOP },
  usage_llamacpp = { '{"usage":{"prompt_tokens":90,"completion_tokens":2},"timings":{"prompt_n":26,"cache_n":64}}', STOP },
  usage_cached_wins = { '{"usage":{"prompt_tokens":90,"prompt_tokens_details":{"cached_tokens":60}},"timings":{"cache_n":64}}', STOP },
  ids_not_strings = { '{"id":5,"model":null,"choices":[{"delta":{"content":"a"},"finish_reason":3}]}', STOP },
  arguments_object = { tc '[{"index":0,"function":{"name":"f","arguments":{"a":1}}}]', TOOLS },
  arguments_list = { tc '[{"index":0,"function":{"name":"f","arguments":[1, 2]}}]', TOOLS },
  gap = { tc '[{"index":2,"function":{"name":"f"}}]', TOOLS },
  gap_filled = { tc '[{"index":1,"function":{"name":"g"}}]', tc '[{"index":0,"function":{"name":"f"}}]', TOOLS },
  index_out_of_range = { tc '[{"index":1024,"function":{"name":"f"}}]', TOOLS },
  index_negative = { tc '[{"index":-1,"function":{"name":"f"}}]', TOOLS },
  index_last = { tc '[{"index":0,"function":{"name":"f"}},{"index":1023,"function":{"name":"g"}}]', TOOLS },
  -- indexes that do not start at 0 (relays that number a text block first), with gaps or
  -- given backwards: each a call, in the order of their indexes
  index_from_1 = { tc '[{"index":1,"id":"t1","function":{"name":"f","arguments":"{\\"a\\":"}}]',
    tc '[{"index":1,"function":{"arguments":"1}"}}]', TOOLS },
  index_sparse = { tc '[{"index":5,"id":"c5","function":{"name":"g","arguments":"{}"}}]',
    tc '[{"index":0,"id":"c0","function":{"name":"f","arguments":"{}"}}]', TOOLS },
  -- no index (Gemini's OpenAI endpoint, mistral.rs, SGLang): a new id begins a call, a piece
  -- with neither continues the last one
  no_index_by_id = { tc '[{"id":"a","function":{"name":"f","arguments":"{\\"p\\":"}}]', tc '[{"function":{"arguments":"1}"}}]',
    tc '[{"id":"b","function":{"name":"f","arguments":"{}"}}]', tc '[{"id":"b","function":{"arguments":""}}]', TOOLS },
  -- the same index for every call (Dynamo), each with its own id
  same_index_new_id = { tc '[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]',
    tc '[{"index":0,"id":"b","function":{"name":"g"}}]', tc '[{"index":0,"function":{"arguments":"{}"}}]', TOOLS },
  index_not_integer = { tc '[{"index":1.5,"function":{"name":"f"}}]', TOOLS },
  index_object = { tc '[{"index":{},"function":{"name":"f"}}]', TOOLS },
  id_object = { tc '[{"index":0,"id":{"a":[1]},"function":{"name":"f"}}]', TOOLS },
  name_list = { tc '[{"index":0,"function":{"name":[1]}}]', TOOLS },
  first_bad_field = { tc '[{"function":{"name":5},"id":true,"index":"x"}]', TOOLS },
  second_call_bad = { tc '[{"function":{"name":"f"}},{"function":"g"}]', TOOLS },
  call_null = { tc '[null]', TOOLS },
  call_list = { tc '[[1]]', TOOLS },
  nulls_absent = { tc '[{"index":null,"id":null,"function":{"name":null,"arguments":null}}]', tc '[{"index":0,"function":{"name":"f"}}]', TOOLS },
  tool_calls_object = { tc '{"0":{"function":{"name":"f"}}}', STOP },
  tool_calls_string = { tc '"x"', STOP },
  content_after_calls = { '{"choices":[{"delta":{"tool_calls":[{"function":{"name":"f"}}],"content":"c"}}]}', TOOLS },
  other_choice_bad_call = { '{"choices":[{"delta":{"tool_calls":[5]},"index":1}]}', STOP },
  deep = { '{"x":' .. string.rep("[", 600) .. string.rep("]", 600) .. ',"choices":[{"delta":{"content":"d"}}]}', STOP },
  deepest = { '{"x":' .. string.rep("[", 999) .. string.rep("]", 999) .. ',"choices":[{"delta":{"content":"d"}}]}', STOP },
  too_deep = { '{"x":' .. string.rep("[", 1000) .. string.rep("]", 1000) .. '}', STOP },
  not_object = { delta { content = "a" }, "[1]", STOP },
  string_event = { delta { content = "a" }, '"hello"', STOP },
  number_event = { delta { content = "a" }, '12', STOP },
  trailing = { '{"choices":[{"delta":{"content":"a"}}]} x', STOP },
  -- one parser serves a whole response: what trails an event must not leak into the next
  trailing_partial_string = { delta { content = "a" }, '{"choices":[{"delta":{"content":"b"}}]} "x', '"}', STOP },
  trailing_partial_literal = { delta { content = "a" }, '{"choices":[]} tru', 'e', STOP },
  trailing_number = { delta { content = "a" }, '{"choices":[]} 12', STOP },
  two_objects = { delta { content = "a" }, '{"choices":[]}{"choices":[]}', STOP },
  trailing_whitespace = { delta { content = "a" }, '{"choices":[{"delta":{"content":"b"}}]} \r\n\t ', STOP },
  empty_event = { delta { content = "a" }, "", STOP },
  blank_event = { delta { content = "a" }, "  ", STOP },
  unclosed = { delta { content = "a" }, '{"choices":[', ']}', STOP },
  choice_not_table = { '{"choices":[1,"s",null,[{"delta":{"content":"no"}}],{"delta":{"content":"ok"}}]}', STOP },
  -- content as a list of parts, as some compatible servers send it: the text parts joined
  content_parts = { '{"choices":[{"message":{"content":[{"type":"text","text":"Hello, "},{"type":"text","text":"world"}]},"finish_reason":"stop"}]}' },
  content_part_refusal = { '{"choices":[{"message":{"content":[{"type":"refusal","refusal":"no"}]},"finish_reason":"stop"}]}' },
  content_number = { '{"choices":[{"delta":{"content":5}}]}', STOP },
}

local function line(t) return json.encode(t) end
local function ocall(calls) return '{"message":{"content":"","tool_calls":' .. calls .. '},"done":false}' end
local DONE = '{"done":true,"done_reason":"stop"}'
local OLLAMA = {
  plain = { line { model = "q", message = { role = "assistant", content = "Hi" }, done = false },
    line { model = "q", message = { role = "assistant", content = " there" }, done = false },
    line { model = "q", message = { role = "assistant", content = "" }, done = true, done_reason = "stop", prompt_eval_count = 13, eval_count = 2 } },
  no_done = { line { message = { content = "a" }, done = false } },
  no_counts = { line { message = { content = "a" }, done = true } },
  length = { line { message = { content = "a" }, done = true, done_reason = "length" } },
  go_escapes = { '{"message":{"content":"\\u003cdiv\\u003e \\u0026"},"done":false}', DONE },
  tool_call = { line { message = { content = "", tool_calls = { { ["function"] = { name = "f", arguments = { a = 1 } } } } }, done = false }, DONE },
  tool_calls_two_lines = { ocall '[{"function":{"name":"f","arguments":{"a":{"b":[1,2]}}}}]', ocall '[{"id":"c2","function":{"name":"g","arguments":"{\\"x\\":1}"}}]', DONE },
  call_null_args = { ocall '[{"function":{"name":"f","arguments":null}}]', DONE },
  call_no_args = { ocall '[{"function":{"name":"f"}}]', DONE },
  call_list_args = { ocall '[{"function":{"name":"f","arguments":[]}}]', DONE },
  call_array_args = { ocall '[{"function":{"name":"f","arguments":[1,2]}}]', DONE },
  call_no_function = { ocall '[{"id":"c"}]', DONE },
  call_list = { ocall '[[]]', DONE },
  call_function_list = { ocall '[{"function":[]}]', DONE },
  call_empty_name = { ocall '[{"function":{"name":""}}]', DONE },
  call_name_object = { ocall '[{"function":{"name":{"a":1}}}]', DONE },
  call_id_number = { ocall '[{"id":1,"function":{"name":"f"}}]', DONE },
  call_args_number = { ocall '[{"function":{"name":"f","arguments":1}}]', DONE },
  call_null = { ocall '[null]', DONE },
  call_order = { ocall '[{"function":{"name":"f","arguments":true},"id":5}]', DONE },
  calls_not_list = { ocall '"x"', DONE },
  calls_object = { ocall '{"a":1}', DONE },
  error_line = { line { message = { content = "a" } }, line { error = "model crashed" } },
  error_object = { line { error = { message = "out of memory" } } },
  done_reason_null = { line { message = { content = "a" } }, '{"done":true,"done_reason":null}' },
  count_string = { line { message = { content = "a" } }, '{"done":true,"prompt_eval_count":"3"}' },
  message_list = { '{"message":[{"content":"x"}],"done":true}' },
  line_not_object = { '"x"' },
  repeated_done = { '{"done":false,"done":true}' },
  done_not_true = { '{"message":{"content":"a"},"done":"true"}' },
  bad_json = { line { message = { content = "a" } }, '{"message":' },
}
local WANT = {}
WANT.openai = {
  arguments_list = { calls = { { arguments = {  }, arguments_error = "arguments are a JSON array, not an object", name = "f", raw_arguments = "[1, 2]" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  arguments_object = { calls = { { arguments = { a = 1.0 }, name = "f", raw_arguments = "{\"a\":1}" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  bad_arguments = { calls = { { arguments = {  }, arguments_error = "arguments are not valid JSON (Expected object key string but found invalid token at character 2)", name = "f", raw_arguments = "{not json" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  blank_event = { failed = "transient: openai: malformed stream event (no JSON value):   " },
  call_list = { calls = {  }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  call_null = { failed = "transient: openai: malformed response: tool_calls[1] is null, not an object" },
  choice_not_table = { calls = {  }, content = "ok", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  choices_object = { calls = {  }, content = "a", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  content_after_calls = { calls = { { arguments = {  }, name = "f", raw_arguments = "" } }, content = "c", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  deep = { calls = {  }, content = "d", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  deepest = { calls = {  }, content = "d", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  content_number = { failed = "transient: openai: malformed response: content is a number, not a string or a list of text parts" },
  content_part_refusal = { failed = "transient: openai: malformed response: content[1] is a part of type \"refusal\", not text" },
  content_parts = { calls = {  }, content = "Hello, world", delivered = true, finish = "stop" },
  delta_not_object = { failed = "transient: openai: malformed response: choices[1].delta is a number, not an object" },
  delta_over_message = { calls = {  }, content = "dM", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  empty_event = { failed = "transient: openai: malformed stream event (no JSON value): " },
  error_midway = { failed = "transient: openai: error from the server: overloaded" },
  error_number = { failed = "transient: openai: error from the server: 503.0" },
  error_string = { failed = "transient: openai: error from the server: boom" },
  escape_at_end = { failed = "transient: openai: malformed stream event (lexical error: invalid (non-hex) character occurs after '\\u' inside string.): {\"choices\":[{\"delta\":{\"content\":\"\\u" },
  escaped_backslash_u = { calls = {  }, content = "\\ud800", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  escapes = { calls = {  }, content = "tab\9 nl\n q\" bs\\ sl/ \195\169 \226\130\172", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  first_bad_field = { failed = "transient: openai: malformed response: tool_calls[1].index is a string, not an integer" },
  gap = { calls = { { arguments = {  }, name = "f", raw_arguments = "" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  index_from_1 = { calls = { { arguments = { a = 1.0 }, id = "t1", name = "f", raw_arguments = "{\"a\":1}" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  index_sparse = { calls = { { arguments = {  }, id = "c0", name = "f", raw_arguments = "{}" }, { arguments = {  }, id = "c5", name = "g", raw_arguments = "{}" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  no_index_by_id = { calls = { { arguments = { p = 1.0 }, id = "a", name = "f", raw_arguments = "{\"p\":1}" }, { arguments = {  }, id = "b", name = "f", raw_arguments = "{}" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  same_index_new_id = { calls = { { arguments = {  }, id = "a", name = "f", raw_arguments = "{}" }, { arguments = {  }, id = "b", name = "g", raw_arguments = "{}" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  gap_filled = { calls = { { arguments = {  }, name = "f", raw_arguments = "" }, { arguments = {  }, name = "g", raw_arguments = "" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  id_object = { failed = "transient: openai: malformed response: tool_calls[1].id is an object, not a string" },
  ids_not_strings = { calls = {  }, content = "a", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  index_float = { calls = {  }, content = "zero", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  index_last = { calls = { { arguments = {  }, name = "f", raw_arguments = "" }, { arguments = {  }, name = "g", raw_arguments = "" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  index_negative = { calls = { { arguments = {  }, name = "f", raw_arguments = "" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  index_not_integer = { failed = "transient: openai: malformed response: tool_calls[1].index is a number, not an integer" },
  index_object = { failed = "transient: openai: malformed response: tool_calls[1].index is an empty object or list, not an integer" },
  index_out_of_range = { calls = { { arguments = {  }, name = "f", raw_arguments = "" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  low_surrogate = { failed = "transient: openai: malformed stream event (invalid unicode escape (a lone surrogate) at byte 34): {\"choices\":[{\"delta\":{\"content\":\"\\ude00\"}}]}" },
  malformed_midway = { failed = "transient: openai: malformed stream event (parse error: premature EOF): {\"choices\": [{\"delta\": " },
  message_not_object = { failed = "transient: openai: malformed response: choices[1].message is a string, not an object" },
  message_shape = { calls = {  }, content = "whole", delivered = true, finish = "stop" },
  name_later = { calls = { { arguments = {  }, name = "late", raw_arguments = "{}" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  name_list = { failed = "transient: openai: malformed response: tool_calls[1].function.name is a list, not a string" },
  no_finish = { failed = "transient: openai: the stream ended before a finish_reason" },
  no_index = { calls = { { arguments = {  }, name = "f", raw_arguments = "" }, { arguments = {  }, name = "g", raw_arguments = "" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  no_usage = { calls = {  }, content = "a", delivered = true, finish = "length", id = "chatcmpl-1", model = "gpt" },
  not_object = { calls = {  }, content = "a", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  nul_escape = { calls = {  }, content = "xa\0b", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  nulls_absent = { calls = { { arguments = {  }, name = "f", raw_arguments = "" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  number_event = { failed = "transient: openai: an event is not a JSON object" },
  other_choice = { calls = {  }, content = "yes", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  other_choice_bad_call = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  plain = { calls = {  }, content = "Hello, world", delivered = true, finish = "stop", id = "x", model = "gpt", usage = { completion_tokens = 2, prompt_tokens = 3 } },
  quota_error = { failed = "quota: openai: error from the server: no money" },
  rate_error = { failed = "rate_limited: openai: error from the server: slow" },
  raw_utf8_and_invalid = { calls = {  }, content = "caf\195\169 \255", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  repeated_content = { failed = "transient: openai: malformed response: repeated key \"content\"" },
  repeated_ignored_key = { calls = {  }, content = "a", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  repeated_key = { failed = "transient: openai: malformed response: repeated key \"id\"" },
  second_call_bad = { failed = "transient: openai: malformed response: tool_calls[2].function is a string, not an object" },
  short_escape = { failed = "transient: openai: malformed stream event (lexical error: invalid (non-hex) character occurs after '\\u' inside string.): {\"choices\":[{\"delta\":{\"content\":\"\\u12\"}}]}" },
  string_event = { failed = "transient: openai: an event is not a JSON object" },
  surrogate_pair = { calls = {  }, content = "\240\159\152\128", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  surrogates = { failed = "transient: openai: malformed stream event (invalid unicode escape (a lone surrogate) at byte 47): {\"choices\":[{\"delta\":{\"content\":\"\\ud83d\\ude00 \\ud800\"}}]}" },
  too_deep = { failed = "transient: openai: malformed stream event (too many nested data structures (more than 1000) at byte 1005): {\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[... (2006 bytes)" },
  tool_calls = { calls = { { arguments = { path = "a.txt" }, id = "call_1", name = "write_file", raw_arguments = "{\"path\":\"a.txt\"}" }, { arguments = {  }, id = "c2", name = "read", raw_arguments = "{}" } }, content = "", delivered = true, finish = "tool_calls", id = "chatcmpl-1", model = "gpt" },
  tool_calls_object = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  tool_calls_string = { failed = "transient: openai: malformed response: tool_calls is a string, not a list" },
  trailing = { failed = "transient: openai: malformed stream event (lexical error: invalid char in json text.): {\"choices\":[{\"delta\":{\"content\":\"a\"}}]} x" },
  trailing_number = { failed = "transient: openai: malformed stream event (text after the JSON value, which ends at byte 14): {\"choices\":[]} 12" },
  trailing_partial_literal = { failed = "transient: openai: malformed stream event (text after the JSON value, which ends at byte 14): {\"choices\":[]} tru" },
  trailing_partial_string = { failed = "transient: openai: malformed stream event (text after the JSON value, which ends at byte 39): {\"choices\":[{\"delta\":{\"content\":\"b\"}}]} \"x" },
  trailing_whitespace = { calls = {  }, content = "ab", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt" },
  two_objects = { failed = "transient: openai: malformed stream event (more than one JSON value (the first ends at byte 14)): {\"choices\":[]}{\"choices\":[]}" },
  unclosed = { failed = "transient: openai: malformed stream event (parse error: premature EOF): {\"choices\":[" },
  usage_array = { calls = {  }, content = "a", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = {  } },
  -- a number that is no whole count comes as it is (orket.cost.usage_error refuses it);
  -- a text that is no number is no count
  usage_bad_strings = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = { prompt_tokens = 1.5 } },
  usage_replaced = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = { completion_tokens = 9 } },
  usage_strings = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = { completion_tokens = 2, prompt_tokens = 11 } },
  usage_variants = { calls = {  }, content = "a", delivered = true, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = { completion_tokens = 1.5, prompt_tokens = 7 } },
  usage_cached = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = { cached_tokens = 64, completion_tokens = 2, prompt_tokens = 90 } },
  usage_cached_bad = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = { prompt_tokens = 90 } },
  usage_cached_list = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = { prompt_tokens = 90 } },
  usage_llamacpp = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = { cached_tokens = 64, completion_tokens = 2, prompt_tokens = 90 } },
  usage_cached_wins = { calls = {  }, content = "", delivered = false, finish = "stop", id = "chatcmpl-1", model = "gpt", usage = { cached_tokens = 60, prompt_tokens = 90 } },
}
WANT.ollama = {
  bad_json = { failed = "transient: ollama: malformed stream line (parse error: premature EOF): {\"message\":" },
  call_args_number = { failed = "transient: ollama: malformed response: message.tool_calls[1].function.arguments is a number, not an object" },
  call_empty_name = { failed = "transient: ollama: malformed response: message.tool_calls[1].function.name is a string, not a tool name" },
  call_function_list = { failed = "transient: ollama: malformed response: message.tool_calls[1].function.name is a nil, not a tool name" },
  call_id_number = { failed = "transient: ollama: malformed response: message.tool_calls[1].id is a number, not a string" },
  call_list = { failed = "transient: ollama: malformed response: message.tool_calls[1].function is a nil, not an object" },
  call_list_args = { calls = { { arguments = {  }, name = "f", raw_arguments = "{}" } }, content = "", delivered = true, finish = "tool_calls", usage = {  } },
  call_name_object = { failed = "transient: ollama: malformed response: message.tool_calls[1].function.name is an object, not a tool name" },
  call_array_args = { calls = { { arguments = {  }, arguments_error = "arguments are a JSON array, not an object", name = "f", raw_arguments = "[1,2]" } }, content = "", delivered = true, finish = "tool_calls", usage = {  } },
  call_no_args = { calls = { { arguments = {  }, name = "f", raw_arguments = "{}" } }, content = "", delivered = true, finish = "tool_calls", usage = {  } },
  call_no_function = { failed = "transient: ollama: malformed response: message.tool_calls[1].function is a nil, not an object" },
  call_null = { failed = "transient: ollama: malformed response: message.tool_calls[1] is null, not an object" },
  call_null_args = { calls = { { arguments = {  }, arguments_error = "arguments are a JSON null, not an object", name = "f", raw_arguments = "null" } }, content = "", delivered = true, finish = "tool_calls", usage = {  } },
  call_order = { failed = "transient: ollama: malformed response: message.tool_calls[1].id is a number, not a string" },
  calls_not_list = { failed = "transient: ollama: malformed response: message.tool_calls is a string, not a list" },
  calls_object = { calls = {  }, content = "", delivered = false, finish = "stop", usage = {  } },
  count_string = { calls = {  }, content = "a", delivered = true, finish = "stop", usage = { prompt_tokens = 3 } },
  done_not_true = { failed = "transient: ollama: the stream ended before its final (done) line" },
  done_reason_null = { calls = {  }, content = "a", delivered = true, finish = "stop", usage = {  } },
  error_line = { failed = "transient: ollama: error from the server: model crashed" },
  error_object = { failed = "transient: ollama: error from the server: out of memory" },
  go_escapes = { calls = {  }, content = "<div> &", delivered = true, finish = "stop", usage = {  } },
  length = { calls = {  }, content = "a", delivered = true, finish = "length", usage = {  } },
  line_not_object = { failed = "transient: ollama: a line is not a JSON object" },
  message_list = { calls = {  }, content = "", delivered = false, finish = "stop", usage = {  } },
  no_counts = { calls = {  }, content = "a", delivered = true, finish = "stop", usage = {  } },
  no_done = { failed = "transient: ollama: the stream ended before its final (done) line" },
  plain = { calls = {  }, content = "Hi there", delivered = true, finish = "stop", model = "q", usage = { completion_tokens = 2, prompt_tokens = 13 } },
  repeated_done = { failed = "transient: ollama: malformed response: repeated key \"done\"" },
  tool_call = { calls = { { arguments = { a = 1.0 }, name = "f", raw_arguments = "{\"a\":1}" } }, content = "", delivered = true, finish = "tool_calls", usage = {  } },
  tool_calls_two_lines = { calls = { { arguments = { a = { b = { 1.0, 2.0 } } }, name = "f", raw_arguments = "{\"a\":{\"b\":[1,2]}}" }, { arguments = { x = 1.0 }, id = "c2", name = "g", raw_arguments = "{\"x\":1}" } }, content = "", delivered = true, finish = "tool_calls", usage = {  } },
}

local CASES = { openai = OPENAI, ollama = OLLAMA }

describe("the stream decoder", function()
  for _, kind in ipairs { "openai", "ollama" } do
    for name, events in pairs(CASES[kind]) do
      it(kind .. ": " .. name, function()
        local want = assert(WANT[kind][name], "no result given for " .. name)
        assert.same(want, (by_pieces(kind, events)))
        assert.same(want, by_request(kind, events))
      end)
    end
  end

  it("hands on_delta each piece as it is decoded", function()
    local _, pieces = by_pieces("openai", OPENAI.tool_calls)
    assert.same({
      { type = "tool_call", index = 1, id = "call_1", name = "write_file", arguments_delta = "" },
      { type = "tool_call", index = 1, id = "call_1", name = "write_file", arguments_delta = '{"path":' },
      { type = "tool_call", index = 1, id = "call_1", name = "write_file", arguments_delta = '"a.txt"}' },
      { type = "tool_call", index = 2, id = "c2", name = "read", arguments_delta = "{}" },
    }, pieces)
    -- content first, wherever its key stands; an object for the arguments is no string piece
    _, pieces = by_pieces("openai", OPENAI.content_after_calls)
    assert.same({ { type = "content", text = "c" }, { type = "tool_call", index = 1, name = "f" } }, pieces)
    _, pieces = by_pieces("openai", OPENAI.arguments_object)
    assert.same({ { type = "tool_call", index = 1, name = "f" } }, pieces)
    _, pieces = by_pieces("openai", OPENAI.plain)
    assert.same({ { type = "content", text = "Hello" }, { type = "content", text = ", world" } }, pieces)
    -- Ollama's calls arrive whole and reach on_delta normalized
    _, pieces = by_pieces("ollama", OLLAMA.tool_calls_two_lines)
    assert.same({ { type = "tool_call", index = 1, name = "f", arguments_delta = '{"a":{"b":[1,2]}}' },
      { type = "tool_call", index = 2, name = "g", arguments_delta = '{"x":1}' } }, pieces)
    -- a failed event gives nothing, not even its pieces before the failure
    _, pieces = by_pieces("openai", { '{"choices":[{"delta":{"content":"x","tool_calls":[5]}}]}' })
    assert.same({}, pieces)
  end)

  it("decodes whole bodies, and names them when they are not JSON", function()
    local st = openai.new_state()
    assert.is_nil(openai.parse(st, '{"id":"r1","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,'
      .. '"tool_calls":[{"id":"c1","type":"function","function":{"name":"read_file","arguments":"{\\"path\\":\\"a\\"}"}}]},'
      .. '"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7}}', function() end))
    local content, calls, finish, usage, model, id = openai.finish(st, false)
    assert.same({ "", "tool_calls", { prompt_tokens = 5, completion_tokens = 7 }, "m", "r1" }, { content, finish, usage, model, id })
    assert.same({ { id = "c1", name = "read_file", arguments = { path = "a" }, raw_arguments = '{"path":"a"}' } }, calls)
    st = ollama.new_state()
    assert.is_nil(ollama.parse(st, '{"model":"q","message":{"role":"assistant","content":"ok"},"done":true,"done_reason":"stop",'
      .. '"prompt_eval_count":3,"eval_count":1}', function() end))
    assert.same({ "ok", {}, "stop", { prompt_tokens = 3, completion_tokens = 1 }, "q" }, { ollama.finish(st) })
    local f = openai.parse(openai.new_state(), '{"id": "broken", "choices": [', function() end)
    assert.same({ class = "transient", retryable = true, message = "openai: malformed response body (parse error: premature EOF)" }, f)
    f = ollama.parse(ollama.new_state(), "<html>", function() end)
    assert.same({ class = "transient", retryable = true, message = "ollama: malformed response body (lexical error: invalid char in json text.)" }, f)
  end)

  it("reports a malformed piece as a malformed response, a server's error as that", function()
    local f = openai.on_event(openai.new_state(), OPENAI.second_call_bad[1], function() end)
    assert.is_true(f.malformed)
    f = openai.on_event(openai.new_state(), OPENAI.error_string[1], function() end)
    assert.is_nil(f.malformed)
  end)

  -- each call piece is placed by a scan of the calls so far: an event of tens of thousands
  -- of pieces (a MiB) took seconds of the process's one thread before the cap was checked
  it("refuses an event of more call pieces than the cap before placing them, and calls past it", function()
    local parts = {}
    for i = 1, 40000 do parts[i] = string.format('{"index":%d,"id":"c%d","function":{"name":"f","arguments":""}}', i, i) end
    local event = '{"choices":[{"delta":{"tool_calls":[' .. table.concat(parts, ",") .. ']}}]}'
    local t0 = os.clock()
    assert.same({ nil, "malformed", "more than 1024 tool calls in one answer", false },
      { http.decoder("openai"):take(event) })
    assert.is_true(os.clock() - t0 < 0.5, tostring(os.clock() - t0))
    -- 1,024 across events pass; the 1,025th is refused
    local dec = http.decoder("openai")
    for i = 1, 1024 do
      assert.equal(1, dec:take(string.format('{"choices":[{"delta":{"tool_calls":[{"index":%d,"id":"c%d",'
        .. '"function":{"name":"f","arguments":"{}"}}]}}]}', i, i)))
    end
    assert.same({ nil, "malformed", "more than 1024 tool calls in one answer", false },
      { dec:take('{"choices":[{"delta":{"tool_calls":[{"index":5000,"id":"x","function":{"name":"f"}}]}}]}') })
  end)

  it("keeps a failure: later events are not taken", function()
    local dec = http.decoder("openai")
    assert.equal(1, dec:take(OPENAI.plain[2]))
    assert.same({ nil, "malformed", 'repeated key "id"', false }, { dec:take('{"id":"1","id":"2"}') })
    assert.same({ nil, "malformed", 'repeated key "id"', false }, { dec:take(OPENAI.plain[3]) })
    local d = dec:result()
    assert.equal("Hello", d.content)
    assert.equal("malformed", d.failed)
    assert.same({ nil, "error", "boom", true }, { http.decoder("ollama"):take('{"error":"boom"}') })
    assert.same({ nil, "error", '{"message": [1, {}]}', false }, { http.decoder("ollama"):take('{"error":{"message": [1, {}]}}') })
    assert.same({ nil, "not_object", "", false }, { http.decoder("ollama"):take("null") })
  end)

  it("checks its arguments", function()
    assert.has_error(function() http.decoder("soap") end, "bad argument #1 to 'decoder' (invalid option 'soap')")
    assert.has_error(function() http.decoder("openai"):take({}) end)
    assert.has_error(function() http.decoder("openai"):take("{}", 5) end)
    assert.has_error(function() http.request { url = "http://127.0.0.1:1/", decode = "soap" } end,
      "bad argument #1 to 'request' (decode must be \"openai\" or \"ollama\")")
  end)
end)
