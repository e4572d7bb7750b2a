-- The C decoder of streamed chat events (http.decode_stream, used by request{decode=}) must
-- give exactly what the Lua wire formats give, including after it hands a stream back to
-- them half-way: each sequence below is decoded both ways and the results compared.
local http = require "orket.c.http"
local openai = require "orket.llm.openai"
local ollama = require "orket.llm.ollama"
local json = require "cjson.safe"

local WIRES = { openai = openai, ollama = ollama }

-- Lua only: every event through on_event, then finish.
local function by_lua(kind, events)
  local wire = WIRES[kind]
  local st = wire.new_state()
  local firsts = 0
  local function emit() firsts = firsts + 1 end
  for _, e in ipairs(events) do
    local err = wire.on_event(st, e, emit)
    if err then return { failed = err.class .. ": " .. err.message } end
  end
  local content, calls, finish, usage, model, id = wire.finish(st, true)
  if content == nil then return { failed = calls.class .. ": " .. calls.message } end
  return { content = content, calls = calls, finish = finish, usage = usage, model = model, id = id, delivered = firsts > 0 }
end

-- C first, then the Lua code from where the decoder stopped.
local function by_c(kind, events)
  local wire = WIRES[kind]
  local d, taken = http.decode_stream(kind, events)
  local st = wire.from_decoded(d)
  local firsts = d.deltas
  local function emit() firsts = firsts + 1 end
  for i = taken + 1, #events do
    local err = wire.on_event(st, events[i], emit)
    if err then return { failed = err.class .. ": " .. err.message }, taken end
  end
  local content, calls, finish, usage, model, id = wire.finish(st, true)
  if content == nil then return { failed = calls.class .. ": " .. calls.message }, taken end
  return { content = content, calls = calls, finish = finish, usage = usage, model = model, id = id, delivered = firsts > 0 }, taken
end

local function chunk(t) return json.encode(t) end
local function delta(d, finish, extra)
  local t = { id = "chatcmpl-1", object = "chat.completion.chunk", model = "gpt", choices = { { index = 0, delta = d, finish_reason = finish or json.null } } }
  for k, v in pairs(extra or {}) do t[k] = v end
  return chunk(t)
end

local OPENAI = {
  plain = { delta { role = "assistant", content = "" }, delta { content = "Hello" }, delta { content = ", world" },
    delta({}, "stop"), '{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}' },
  choices_object = { delta { content = "a" }, '{"choices":{}}', delta({}, "stop") },
  no_usage = { delta { content = "a" }, delta({}, "length") },
  no_finish = { delta { content = "a" } },
  tool_calls = { delta { tool_calls = { { index = 0, id = "call_1", type = "function", ["function"] = { name = "write_file", arguments = "" } } } },
    delta { tool_calls = { { index = 0, ["function"] = { arguments = '{"path":' } } } },
    delta { tool_calls = { { index = 0, ["function"] = { arguments = '"a.txt"}' } }, { index = 1, id = "c2", ["function"] = { name = "read", arguments = "{}" } } } },
    delta({}, "tool_calls") },
  bad_arguments = { delta { tool_calls = { { index = 0, ["function"] = { name = "f", arguments = "{not json" } } } }, delta({}, "tool_calls") },
  no_index = { delta { tool_calls = { { ["function"] = { name = "f" } }, { ["function"] = { name = "g" } } } }, delta({}, "tool_calls") },
  name_later = { delta { tool_calls = { { index = 0, ["function"] = { arguments = "{}" } } } },
    delta { tool_calls = { { index = 0, ["function"] = { name = "late" } } } }, delta({}, "tool_calls") },
  other_choice = { '{"choices":[{"index":1,"delta":{"content":"no"},"finish_reason":"length"},{"index":0,"delta":{"content":"yes"}}]}', delta({}, "stop") },
  index_float = { '{"choices":[{"index":0.0,"delta":{"content":"zero"}}]}', '{"choices":[{"index":"0","delta":{"content":"str"}}]}', delta({}, "stop") },
  message_shape = { '{"choices":[{"message":{"content":"whole"},"finish_reason":"stop"}]}' },
  error_midway = { delta { content = "part" }, chunk { error = { message = "overloaded", type = "server_error" } }, delta({}, "stop") },
  quota_error = { chunk { error = { message = "no money", code = "insufficient_quota" } } },
  malformed_midway = { delta { content = "a" }, '{"choices": [{"delta": ', delta({}, "stop") },
  refused_then_more = { delta { content = "a" }, '{"id":"1","id":"2","choices":[{"delta":{"content":"b"}}]}', delta { content = "c" }, delta({}, "stop") },
  nul_escape = { delta { content = "x" }, '{"choices":[{"delta":{"content":"a\\u0000b"}}]}', delta({}, "stop") },
  surrogates = { '{"choices":[{"delta":{"content":"\\ud83d\\ude00 \\ud800"}}]}', delta({}, "stop") },
  escapes = { '{"choices":[{"delta":{"content":"tab\\t nl\\n q\\" bs\\\\ sl\\/ \\u00e9 \\u20ac"}}]}', delta({}, "stop") },
  raw_utf8_and_invalid = { '{"choices":[{"delta":{"content":"caf\195\169 \255"}}]}', delta({}, "stop") },
  usage_variants = { delta { content = "a" }, '{"usage":{"prompt_tokens":7.0,"completion_tokens":1.5}}', delta({}, "stop") },
  usage_array = { delta { content = "a" }, '{"usage":[]}', delta({}, "stop") },
  usage_replaced = { '{"usage":{"prompt_tokens":1,"completion_tokens":2}}', '{"usage":{"completion_tokens":9}}', delta({}, "stop") },
  ids_not_strings = { '{"id":5,"model":null,"choices":[{"delta":{"content":"a"},"finish_reason":3}]}', delta({}, "stop") },
  arguments_object = { '{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":{"a":1}}}]}}]}', delta({}, "tool_calls") },
  gap = { '{"choices":[{"delta":{"tool_calls":[{"index":2,"function":{"name":"f"}}]}}]}', delta({}, "tool_calls") },
  deep = { '{"x":' .. string.rep("[", 600) .. string.rep("]", 600) .. ',"choices":[{"delta":{"content":"d"}}]}', delta({}, "stop") },
  not_object = { delta { content = "a" }, "[1]", delta({}, "stop") },
  trailing = { '{"choices":[{"delta":{"content":"a"}}]} x', delta({}, "stop") },
  -- one parser serves a whole response: what trails an event must not leak into the next
  trailing_partial_string = { delta { content = "a" }, '{"choices":[{"delta":{"content":"b"}}]} "x', '"}', delta({}, "stop") },
  trailing_partial_literal = { delta { content = "a" }, '{"choices":[]} tru', 'e', delta({}, "stop") },
  trailing_number = { delta { content = "a" }, '{"choices":[]} 12', delta({}, "stop") },
  two_objects = { delta { content = "a" }, '{"choices":[]}{"choices":[]}', delta({}, "stop") },
  trailing_whitespace = { delta { content = "a" }, '{"choices":[{"delta":{"content":"b"}}]} \r\n\t ', delta({}, "stop") },
  empty_event = { delta { content = "a" }, "", delta({}, "stop") },
  blank_event = { delta { content = "a" }, "  ", delta({}, "stop") },
  unclosed = { delta { content = "a" }, '{"choices":[', ']}', delta({}, "stop") },
  choice_not_table = { '{"choices":[1,"s",null,{"delta":{"content":"ok"}}]}', delta({}, "stop") },
}

local function line(t) return json.encode(t) end
local OLLAMA = {
  plain = { line { model = "q", message = { role = "assistant", content = "Hi" }, done = false },
    line { model = "q", message = { role = "assistant", content = " there" }, done = false },
    line { model = "q", message = { role = "assistant", content = "" }, done = true, done_reason = "stop", prompt_eval_count = 13, eval_count = 2 } },
  no_done = { line { message = { content = "a" }, done = false } },
  no_counts = { line { message = { content = "a" }, done = true } },
  go_escapes = { '{"message":{"content":"\\u003cdiv\\u003e \\u0026"},"done":false}', line { done = true, done_reason = "stop" } },
  tool_call = { line { message = { content = "", tool_calls = { { ["function"] = { name = "f", arguments = { a = 1 } } } } }, done = false },
    line { message = { content = "" }, done = true, done_reason = "stop" } },
  error_line = { line { message = { content = "a" } }, line { error = "model crashed" } },
  done_reason_null = { line { message = { content = "a" } }, '{"done":true,"done_reason":null}' },
  count_string = { line { message = { content = "a" } }, '{"done":true,"prompt_eval_count":"3"}' },
}

local function check(kind, cases)
  for name, events in pairs(cases) do
    it(kind .. ": " .. name, function()
      local want = by_lua(kind, events)
      local got = by_c(kind, events)
      assert.same(want, got)
    end)
  end
end

describe("http.decode_stream gives what the Lua wire formats give", function()
  check("openai", OPENAI)
  check("ollama", OLLAMA)

  it("decodes well-formed streams wholly in C", function()
    local _, taken = by_c("openai", OPENAI.plain)
    assert.equal(#OPENAI.plain, taken)
    _, taken = by_c("openai", OPENAI.tool_calls)
    assert.equal(#OPENAI.tool_calls, taken)
    _, taken = by_c("ollama", OLLAMA.go_escapes)
    assert.equal(#OLLAMA.go_escapes, taken)
    _, taken = by_c("openai", OPENAI.trailing_whitespace)
    assert.equal(#OPENAI.trailing_whitespace, taken)
    _, taken = by_c("openai", OPENAI.trailing_partial_string)
    assert.equal(1, taken)
    _, taken = by_c("openai", OPENAI.error_midway)
    assert.equal(1, taken)
  end)

  it("checks its arguments", function()
    assert.has_error(function() http.decode_stream("soap", {}) end, "bad argument #1 to 'decode_stream' (invalid option 'soap')")
    assert.has_error(function() http.decode_stream("openai", { "{}", {} }) end, "bad argument #2 to 'decode_stream' (event 2 is not a string)")
    assert.has_error(function() http.request { url = "http://127.0.0.1:1/", decode = "soap" } end,
      "bad argument #1 to 'request' (decode must be \"openai\" or \"ollama\")")
  end)
end)
