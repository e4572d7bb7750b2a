-- A fake model server for tests and benchmarks, on 127.0.0.1 only. Serves the OpenAI Chat
-- Completions API (/v1/chat/completions, /v1/models) and Ollama's (/api/chat, /api/tags),
-- streaming and not, with faults chosen by the request's model name:
--   build/orket lua tests/fake_model_server.lua [PORT]   -> prints "listening http://127.0.0.1:PORT"
-- The model name is a comma-separated list of settings, e.g. "fail=503,times=2,key=a":
--   fail=STATUS times=N key=K   answer STATUS the first N times K is asked (N absent: always)
--   retry_after=S retry_after_ms=MS retry_after_date=S   headers sent with a failure
--   error_code=C                the error's code/type (e.g. insufficient_quota)
--   first_byte_ms=MS            wait before sending anything
--   chunks=N chunk_ms=MS        content in N pieces (default 5), MS apart
--   stamp                       first piece starts "stamp=<server monotonic ns> "
--   stamp_end                   last piece ends " end=<server monotonic ns>", taken as it is
--                               written (after any chunk_ms pacing)
--   stall_after=K               send K pieces, then nothing (the connection stays open)
--   disconnect_after=K          send K pieces, then close the connection
--   disconnect_times=N          with disconnect_after: only the first N answers to this model
--                               are cut (the next ones whole: a retry that succeeds)
--   malformed                   a piece of invalid JSON after the first piece
--   repeated_key                not streamed (OpenAI): the whole answer, JSON whose "id" is
--                               there twice, which a strict reader refuses
--   error_event                 an error event after two pieces, inside the 200 stream
--   whole                       (OpenAI) the whole answer, not streamed, even when a stream is asked
--   error_body                  not streamed (OpenAI): a 200 whose body is the server's error
--   no_choice                   not streamed (OpenAI): a 200 whose body holds no choice
--                               ({"choices": []}, with usage)
--                               object ({"error": {...}}), as some relays answer an overload
--   huge=BYTES                  content of about BYTES bytes
--   huge_piece=BYTES            content in one piece of BYTES bytes (one streamed event that long)
--   tool=NAME                   answer with a call of tool NAME (arguments streamed in parts)
--   arg_K=V                     with tool=: the call's arguments are {K = V, ...} instead of
--                               the default {"path": "notes.txt", "text": "hi"}; "%n" in V is
--                               a number counted up at each such answer (a file per call)
--   bad_args=KIND               with tool=: the call's arguments text is not a JSON object:
--                               truncated ('{"body": '), string ('"hi"'), array ('[1]'),
--                               deep (objects nested 5,000 levels) or bytes (an object
--                               whose string holds the byte 0xff, not UTF-8)
--   then=NAME                   with tool=: once the request holds a tool result (the
--                               conversation's last message is one), call tool NAME instead,
--                               with then_arg_K=V arguments; a turn of two calls whatever
--                               worker sends it (the answer depends on the request alone)
--   tool_times=N                with tool=: only the first N answers to this model call the
--                               tool; later ones are plain content (the model ends its turn)
--   no_usage                    send no token counts
--   prompt_as=V completion_as=V the count sent as V instead (Ollama: prompt_eval_count,
--                               eval_count): null and true as JSON's, absent leaves the
--                               field out, any other text as a JSON string ("abc", "0x10")
--   prompt=N                    the prompt's token count (default 11; Ollama's prompt_eval_count 13)
--   cached=N                    of them, N served from the prompt cache: OpenAI's
--                               usage.prompt_tokens_details.cached_tokens (Ollama: its
--                               prompt_eval_count is N fewer, as it evaluates only the rest)
--   cache_n                     with cached=: said as llama.cpp's server says it, in
--                               timings.cache_n beside the usage, not in the usage
--   comments                    SSE keep-alive comments and CRLF line ends
--   done_gap_ms=MS              wait MS between [DONE] and the end of the chunked body
--   echo_key                    the answer (or, with tool=, the call's "note" argument) repeats the
--                               request's Authorization header, as a careless server might
--   bad_call=KIND               with tool=: the call itself is of the wrong type: number (the
--                               call is 5), name (its name is an object), function (its
--                               "function" is a string)
--   echo_key_fields             the response's model name and id repeat the request's
--                               Authorization header
--   plain_200                   answer 200 with a text/plain page, as a proxy or web server might
--   wire=CASE                   (OpenAI) an answer of a shape servers are known to send:
--                               bad_event: a piece, then an event that is no JSON holding
--                                 raw NUL and bytes that are not UTF-8 (0xff 0xfe);
--                               no_index: two calls of tool (write_file by default), each
--                                 begun by a piece with an id and no index, continued by
--                                 one with neither (Gemini's OpenAI endpoint, mistral.rs);
--                               index_from_1: one call at index 1 (a relay that numbers a
--                                 text block first); sparse: calls at indexes 5 and 0;
--                               no_finish: content, then [DONE] without a finish_reason
--                                 (no_done too: without [DONE] either);
--                               length / content_filter: empty content and that finish_reason;
--                               html: a 200 text/html page; gzip: a 200 whose body says
--                                 Content-Encoding: gzip (bytes that are no JSON);
--                               huge_args: one call of tool whose "text" argument is
--                                 size=BYTES bytes, streamed in 64 KiB pieces
--   nolog                       leave the request out of /__log (benchmarks: a log of tens of
--                               thousands of requests made this server's collector pause for
--                               milliseconds between the stamp and the rest of an answer)
-- POST /v1/traces and /v1/metrics are an OTLP/HTTP collector taking JSON (under
-- /status/CODE/ it answers CODE; under /fail/N/ it answers 500 to the first N exports to
-- that path, then 200, a collector that was down for a while; under /slow/MS/ it answers
-- the traces after MS ms and the metrics at once, a collector slower for spans): each export
-- is logged with its decoded body.
-- GET /__log returns every request seen (path, model, time, authorization present, conn:
-- the number of the connection it came on; ended: an OpenAI answer's stream was written whole);
-- POST /__reset forgets the log and the failure counters; any path under /moved/ answers 302
-- to the rest of the path. The model lists (/v1/models, /api/tags) name fake-model, or the
-- comma-separated names of the second argument (a guide's model: `orket run --model` asks).
local uv = require "luv"
local json = require "cjson.safe"

local port = tonumber(arg and arg[1]) or 0
local listed = {}
for name in ((arg and arg[2]) or "fake-model"):gmatch("[^,]+") do listed[#listed + 1] = name end
local started = uv.hrtime()
local log, counters = {}, {}

local function now_ms() return (uv.hrtime() - started) / 1e6 end

local function settings(model)
  local s = {}
  for part in tostring(model or ""):gmatch("[^,]+") do
    local k, v = part:match("^([%w_]+)=(.*)$")
    -- a count sent as text (prompt_as=0x10) stays the text it is
    if k then s[k] = (not k:match("_as$") and tonumber(v)) or v else s[part] = true end
  end
  return s
end

local STATUS_TEXT = { [200] = "OK", [400] = "Bad Request", [401] = "Unauthorized",
  [403] = "Forbidden", [404] = "Not Found", [408] = "Request Timeout", [409] = "Conflict",
  [413] = "Payload Too Large", [429] = "Too Many Requests", [500] = "Internal Server Error",
  [502] = "Bad Gateway", [503] = "Service Unavailable" }

local Conn = {}
Conn.__index = Conn

function Conn:write(s)
  if self.closed then return end
  pcall(self.sock.write, self.sock, s)
end

function Conn:close()
  if self.closed then return end
  self.closed = true
  pcall(function() self.sock:read_stop() end)
  if not self.sock:is_closing() then self.sock:close() end
end

function Conn:head(status, headers, length)
  local out = { string.format("HTTP/1.1 %d %s\r\n", status, STATUS_TEXT[status] or "Status") }
  for k, v in pairs(headers or {}) do out[#out + 1] = k .. ": " .. v .. "\r\n" end
  if length then out[#out + 1] = "Content-Length: " .. length .. "\r\n"
  else out[#out + 1] = "Transfer-Encoding: chunked\r\n" end
  out[#out + 1] = "\r\n"
  self:write(table.concat(out))
end

function Conn:send(status, headers, body)
  headers = headers or {}
  headers["Content-Type"] = headers["Content-Type"] or "application/json"
  self:head(status, headers, #body)
  self:write(body)
end

function Conn:chunk(s)
  if #s > 0 then self:write(string.format("%x\r\n%s\r\n", #s, s)) end
end

function Conn:finish() self:write("0\r\n\r\n") end

-- The answer's content pieces.
local function pieces(s)
  local n = s.chunks or 5
  local out = {}
  if s.huge_piece then return { string.rep("x", s.huge_piece) } end
  if s.huge then
    local block = string.rep("x", 4096)
    for i = 1, math.ceil(s.huge / 4096) do out[i] = block end
    return out
  end
  for i = 1, n do out[i] = "tok" .. i .. (i < n and " " or "") end
  if s.echo then out[1] = s.echo .. " " .. out[1] end
  -- stamp: the first piece carries the server's monotonic clock (ns) when it starts the
  -- answer, so a benchmark on this machine can tell the client's added latency from
  -- time spent queueing at this single-threaded server.
  if s.stamp then out[1] = "stamp=" .. uv.hrtime() .. " " .. out[1] end
  return out
end

local TOOL_ARGS = { '{"path":', '"notes.txt",', '"text":"hi"}' }

local BAD_ARGS = {
  truncated = '{"body": ', string = '"hi"', array = "[1]",
  deep = string.rep('{"a":', 5000) .. "1" .. string.rep("}", 5000),
  bytes = '{"body": "caf\255"}', -- JSON, with a byte that is not UTF-8 in its string
}

-- The tool call's arguments: a table, and its JSON text in three streamed parts.
local function tool_args(s)
  if s.bad_args then
    local text = assert(BAD_ARGS[s.bad_args], "bad_args: unknown kind")
    local a, b = #text // 3, 2 * #text // 3
    return text, { text:sub(1, a), text:sub(a + 1, b), text:sub(b + 1) }
  end
  local args = {}
  for k, v in pairs(s) do
    local name = type(k) == "string" and k:match("^arg_(.+)$")
    if name then args[name] = v end
  end
  for k, v in pairs(args) do
    if type(v) == "string" and v:find("%n", 1, true) then
      counters["%n"] = (counters["%n"] or 0) + 1
      args[k] = v:gsub("%%n", tostring(counters["%n"]))
    end
  end
  if next(args) == nil then return { path = "notes.txt", text = "hi" }, TOOL_ARGS end
  local text = json.encode(args)
  local a, b = #text // 3, 2 * #text // 3
  return args, { text:sub(1, a), text:sub(a + 1, b), text:sub(b + 1) }
end

-- bad_call=KIND: a tool call list whose call is of the wrong type.
local function bad_calls(s, ollama)
  if s.bad_call == "number" then return { 5 } end
  if s.bad_call == "name" then return { { id = "call_1", ["function"] = { name = { x = 1 }, arguments = "{}" } } } end
  if s.bad_call == "function" then return { { id = "call_1", ["function"] = "write_file" } } end
  error("bad_call: unknown kind")
end

-- A failure decided by fail=/times=/key=, or nil.
local function failure(s, model)
  if not s.fail then return nil end
  local key = s.key or model
  counters[key] = (counters[key] or 0) + 1
  if s.times and counters[key] > s.times then return nil end
  return s.fail
end

local function fail_reply(c, status, s, ollama)
  local headers = {}
  if s.retry_after then headers["Retry-After"] = tostring(s.retry_after) end
  if s.retry_after_ms then headers["retry-after-ms"] = tostring(s.retry_after_ms) end
  if s.retry_after_date then headers["Retry-After"] = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + s.retry_after_date) end
  local body
  if ollama then
    body = json.encode { error = "fake failure " .. status }
  else
    body = json.encode { error = { message = "fake failure " .. status .. " (key sk-should-not-leak)",
      type = s.error_code or "server_error", code = s.error_code } }
  end
  c:send(status, headers, body)
end

-- ---- OpenAI ------------------------------------------------------------------------------

-- prompt_as= / completion_as=: the count of usage[field] replaced (absent: left out)
local function count_as(usage, field, v)
  if v == nil then return end
  if v == "absent" then usage[field] = nil
  elseif v == "null" then usage[field] = json.null
  elseif v == "true" then usage[field] = true
  else usage[field] = tostring(v) end
end

-- wire=CASE (see the top): answers of the shapes hostile or odd servers send.
local function wire_case(c, req, s)
  local stream = req.stream == true
  local id, model = "chatcmpl-wire", req.model
  local tool = s.tool or "write_file"
  local usage = { prompt_tokens = 11, completion_tokens = 5, total_tokens = 16 }
  local w = s.wire
  if w == "html" then
    return c:send(200, { ["Content-Type"] = "text/html" }, "<html><body><h1>Welcome to nginx!</h1></body></html>")
  end
  if w == "gzip" then
    return c:send(200, { ["Content-Type"] = stream and "text/event-stream" or "application/json",
      ["Content-Encoding"] = "gzip" }, "\31\139\8\0\0\0\0\0\0\3\171\86\202\77\45\46\78\76\79\85\178\82\80\170\5\0")
  end
  local function chunk_of(d, finish)
    return { id = id, object = "chat.completion.chunk", model = model,
      choices = { { index = 0, delta = d, finish_reason = finish or json.null } } }
  end
  -- the answer as streamed events (tables, or raw text) and the finish_reason
  local evs, finish = {}, "tool_calls"
  local function call(tc) evs[#evs + 1] = chunk_of { tool_calls = { tc } } end
  local function fn(name, args) return { name = name, arguments = args } end
  if w == "bad_event" then
    evs[1] = chunk_of { content = "a" }
    evs[2] = '{"choices":[{"index":0,"delta":{"content":" raw\0nul \255\254"}}], oops}'
    finish = "stop"
  elseif w == "no_index" then
    call { id = "call_a", type = "function", ["function"] = fn(tool, '{"path": "a.txt",') }
    call { ["function"] = { arguments = ' "text": "1"}' } }
    call { id = "call_b", type = "function", ["function"] = fn(tool, '{"path": "b.txt",') }
    call { ["function"] = { arguments = ' "text": "2"}' } }
  elseif w == "index_from_1" then
    evs[1] = chunk_of { content = "I'll write it." }
    call { index = 1, id = "toolu_1", type = "function", ["function"] = fn(tool, '{"path": "one.txt",') }
    call { index = 1, ["function"] = { arguments = ' "text": "1"}' } }
  elseif w == "sparse" then
    call { index = 5, id = "c5", type = "function", ["function"] = fn(tool, '{"path": "five.txt", "text": "5"}') }
    call { index = 0, id = "c0", type = "function", ["function"] = fn(tool, '{"path": "zero.txt", "text": "0"}') }
  elseif w == "no_finish" then
    evs[1] = chunk_of { content = "whole" }
    finish = nil
  elseif w == "length" or w == "content_filter" then
    evs[1] = chunk_of { content = "" }
    finish = w
  elseif w == "huge_args" then
    local size = s.size or (1 << 20)
    call { index = 0, id = "call_h", type = "function", ["function"] = fn(tool, '{"path": "huge.txt", "text": "') }
    local piece = string.rep("x", 65536)
    for _ = 1, size // 65536 do call { index = 0, ["function"] = { arguments = piece } } end
    call { index = 0, ["function"] = { arguments = string.rep("x", size % 65536) .. '"}' } }
  else
    error("wire: unknown case " .. tostring(w))
  end
  if not stream then -- the same answer whole: the calls and content the events carry
    local msg = { role = "assistant", content = json.null }
    local calls, by, cur = {}, {}, nil
    for _, ev in ipairs(evs) do
      local d = type(ev) == "table" and ev.choices[1].delta or {}
      if d.content then msg.content = (msg.content ~= json.null and msg.content or "") .. d.content end
      for _, tc in ipairs(d.tool_calls or {}) do
        -- by index when there is one, a new call for a new id, else the last call
        local it = tc.index ~= nil and by[tc.index] or (tc.index == nil and not tc.id and cur) or nil
        if not it then
          it = { index = tc.index, id = tc.id, type = "function", ["function"] = { name = tc["function"].name, arguments = "" } }
          calls[#calls + 1] = it
          if tc.index ~= nil then by[tc.index] = it end
        end
        it["function"].arguments = it["function"].arguments .. (tc["function"].arguments or "")
        cur = it
      end
    end
    if #calls > 0 then msg.tool_calls = calls end
    return c:send(200, {}, json.encode { id = id, object = "chat.completion", model = model,
      choices = { { index = 0, message = msg, finish_reason = finish or json.null } }, usage = usage })
  end
  c:head(200, { ["Content-Type"] = "text/event-stream" })
  for _, ev in ipairs(evs) do
    if c.closed then return end
    c:chunk("data: " .. (type(ev) == "string" and ev or json.encode(ev)) .. "\n\n")
  end
  if finish then c:chunk("data: " .. json.encode(chunk_of({}, finish)) .. "\n\n") end
  c:chunk("data: " .. json.encode { id = id, object = "chat.completion.chunk", model = model, choices = {}, usage = usage } .. "\n\n")
  if not s.no_done then c:chunk("data: [DONE]\n\n") end
  c:finish()
end

local function openai_chat(c, req, s)
  if s.wire then return wire_case(c, req, s) end
  local stream = req.stream == true and not s.whole
  local model = s.field_echo or req.model
  local id = s.field_echo or ("chatcmpl-fake" .. #log)
  local prompt = s.prompt or 11
  local usage = { prompt_tokens = prompt, completion_tokens = s.chunks or 5, total_tokens = prompt + (s.chunks or 5) }
  local timings
  if s.cached and s.cache_n then timings = { cache_n = s.cached, prompt_n = prompt - s.cached }
  elseif s.cached then usage.prompt_tokens_details = { cached_tokens = s.cached } end
  count_as(usage, "prompt_tokens", s.prompt_as)
  count_as(usage, "completion_tokens", s.completion_as)
  local base_headers = { ["x-request-id"] = "req-" .. #log }
  if not stream then
    local msg = { role = "assistant", content = table.concat(pieces(s)) }
    local finish = "stop"
    if s.tool then
      msg.content = json.null
      msg.tool_calls = { { id = "call_1", type = "function",
        ["function"] = { name = s.tool, arguments = table.concat(select(2, tool_args(s))) } } }
      finish = "tool_calls"
      if s.bad_call then msg.tool_calls = bad_calls(s) end
    end
    local body = { id = id, object = "chat.completion", model = model,
      choices = { { index = 0, message = msg, finish_reason = finish } },
      usage = not s.no_usage and usage or nil, timings = timings }
    if s.malformed then return c:send(200, base_headers, '{"id": "broken", "choices": [') end
    if s.repeated_key then return c:send(200, base_headers, '{"id": "one", ' .. json.encode(body):sub(2)) end
    if s.error_body then
      return c:send(200, base_headers, '{"error": {"message": "model overloaded", "type": "server_error"}}')
    end
    if s.no_choice then
      return c:send(200, base_headers, '{"id": "' .. id .. '", "object": "chat.completion", "choices": [], '
        .. '"usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}}')
    end
    return c:send(200, base_headers, json.encode(body))
  end
  base_headers["Content-Type"] = "text/event-stream"
  c:head(200, base_headers)
  local nl = s.comments and "\r\n" or "\n"
  local function event(t)
    local data = type(t) == "string" and t or json.encode(t)
    c:chunk("data: " .. data .. nl .. nl)
  end
  local function delta(d, finish)
    return { id = id, object = "chat.completion.chunk", model = model,
      choices = { { index = 0, delta = d, finish_reason = finish or json.null } } }
  end
  if s.comments then c:chunk(": keep-alive" .. nl .. nl) end
  event(delta({ role = "assistant", content = "" }))
  local list = s.tool and select(2, tool_args(s)) or pieces(s)
  for i, p in ipairs(list) do
    if c.closed then return end
    if s.chunk_ms then orket.sleep(s.chunk_ms) end
    if s.stall_after and i > s.stall_after then return end -- the socket stays open, silent
    if s.disconnect_after and i > s.disconnect_after then return c:close() end
    if s.error_event and i == 3 then
      event({ error = { message = "the model crashed mid-stream", type = "server_error" } })
      return c:finish()
    end
    if s.stamp_end and i == #list and not s.tool then p = p .. string.format(" end=%d", uv.hrtime()) end
    if s.tool and s.bad_call then
      event(delta({ tool_calls = bad_calls(s) }))
    elseif s.tool then
      local tc = { index = 0, ["function"] = { arguments = p } }
      if i == 1 then tc.id = "call_1"; tc.type = "function"; tc["function"].name = s.tool end
      event(delta({ tool_calls = { tc } }))
    else
      event(delta({ content = p }))
    end
    if s.malformed and i == 1 then c:chunk("data: {\"choices\": [{\"delta\": " .. nl .. nl) end
    if s.comments then c:chunk(":" .. nl) end
  end
  event(delta({}, s.tool and "tool_calls" or "stop"))
  if req.stream_options and req.stream_options.include_usage and not s.no_usage then
    event({ id = id, object = "chat.completion.chunk", model = model, choices = {}, usage = usage, timings = timings })
  end
  event("[DONE]")
  if s.done_gap_ms then orket.sleep(s.done_gap_ms) end
  c:finish()
  if s.logged then s.logged.ended = true end
end

-- ---- Ollama ------------------------------------------------------------------------------

local function ollama_chat(c, req, s)
  local stream = req.stream ~= false -- Ollama streams unless told not to
  local model = s.field_echo or req.model
  local final = { model = model, created_at = "2024-01-01T00:00:00Z", done = true,
    done_reason = "stop", total_duration = 1000, prompt_eval_count = not s.no_usage and (s.prompt or 13) - (s.cached or 0) or nil,
    eval_count = not s.no_usage and (s.chunks or 5) or nil,
    message = { role = "assistant", content = "" } }
  if not s.no_usage then
    count_as(final, "prompt_eval_count", s.prompt_as)
    count_as(final, "eval_count", s.completion_as)
  end
  local tool_calls = s.tool and { { ["function"] = { name = s.tool, arguments = (tool_args(s)) } } } or nil
  if s.tool and s.bad_call then tool_calls = bad_calls(s, true) end
  if not stream then
    final.message = { role = "assistant", content = s.tool and "" or table.concat(pieces(s)), tool_calls = tool_calls }
    if s.malformed then return c:send(200, {}, '{"model": "broken"') end
    return c:send(200, {}, json.encode(final))
  end
  c:head(200, { ["Content-Type"] = "application/x-ndjson" })
  local function line(t) c:chunk((type(t) == "string" and t or json.encode(t)) .. "\n") end
  local list = s.tool and { "" } or pieces(s)
  for i, p in ipairs(list) do
    if c.closed then return end
    if s.chunk_ms then orket.sleep(s.chunk_ms) end
    if s.stall_after and i > s.stall_after then return end
    if s.disconnect_after and i > s.disconnect_after then return c:close() end
    if s.error_event and i == 3 then
      line({ error = "the model crashed mid-stream" })
      return c:finish()
    end
    local m = { role = "assistant", content = p }
    if s.tool then m.tool_calls = tool_calls end
    line({ model = model, created_at = "2024-01-01T00:00:00Z", message = m, done = false })
    if s.malformed and i == 1 then line('{"model": "broken", "message": ') end
  end
  line(final)
  c:finish()
end

-- ---- routing -------------------------------------------------------------------------------

local function handle(c, method, path, headers, body)
  if method == "GET" and path == "/__log" then return c:send(200, {}, json.encode(log)) end
  if method == "POST" and path == "/__reset" then
    log, counters = {}, {}
    return c:send(200, {}, "{}")
  end
  if path:match("^/moved/") then -- a base_url that moved: every path redirects
    return c:send(302, { Location = path:sub(7) }, "")
  end
  if method == "GET" and (path == "/v1/models" or path == "/models") then
    local data = {}
    for i, name in ipairs(listed) do data[i] = { id = name, object = "model" } end
    return c:send(200, {}, json.encode { object = "list", data = data })
  end
  if method == "GET" and path == "/api/tags" then
    local models = {}
    for i, name in ipairs(listed) do models[i] = { name = name, model = name } end
    return c:send(200, {}, json.encode { models = models })
  end
  -- an OTLP/HTTP collector (JSON): logs each export; under /status/CODE/ it answers CODE
  local otlp_status = path:match("^/status/(%d+)/v1/traces$") or path:match("^/status/(%d+)/v1/metrics$")
  local otlp_fails = path:match("^/fail/(%d+)/v1/traces$") or path:match("^/fail/(%d+)/v1/metrics$")
  local slow_traces = path:match("^/slow/(%d+)/v1/traces$")
  local otlp_slow = slow_traces or path:match("^/slow/%d+/v1/metrics$")
  if method == "POST" and (path == "/v1/traces" or path == "/v1/metrics" or otlp_status or otlp_fails or otlp_slow) then
    log[#log + 1] = { t = now_ms(), path = path, request = json.decode(body), conn = c.serial,
      content_type = headers["content-type"], authorization = headers["authorization"] }
    if otlp_fails then
      counters[path] = (counters[path] or 0) + 1
      otlp_status = counters[path] <= tonumber(otlp_fails) and 500 or 200
    end
    local st = tonumber(otlp_status) or 200
    log[#log].status = st
    if slow_traces then
      local entry = log[#log]
      orket.sleep(tonumber(slow_traces))
      if c.closed then return end
      entry.answered = now_ms() -- (a sender gone before then never had its answer)
    end
    return c:send(st, { ["Content-Type"] = "application/json" }, st == 200 and "{}" or '{"message":"fake"}')
  end
  local ollama = path == "/api/chat"
  local openai = path == "/v1/chat/completions" or path == "/chat/completions"
  if method ~= "POST" or not (ollama or openai) then
    return c:send(404, {}, json.encode { error = { message = "no route " .. method .. " " .. path } })
  end
  local req = json.decode(body)
  if type(req) ~= "table" then
    return c:send(400, {}, json.encode { error = { message = "body is not JSON", type = "invalid_request_error" } })
  end
  local s = settings(req.model)
  if s.disconnect_after and s.disconnect_times then
    local key = "disconnect:" .. req.model
    counters[key] = (counters[key] or 0) + 1
    if counters[key] > s.disconnect_times then s.disconnect_after = nil end
  end
  if s.echo_key_fields then s.field_echo = headers["authorization"] end
  if s.echo_key then
    if s.tool then s.arg_note = headers["authorization"] else s.echo = headers["authorization"] end
  end
  if not s.nolog then
    log[#log + 1] = { t = now_ms(), path = path, model = req.model, stream = req.stream,
      authorization = headers["authorization"], traceparent = headers["traceparent"], request = req, conn = c.serial }
    s.logged = log[#log]
  end
  if s.first_byte_ms then orket.sleep(s.first_byte_ms) end
  if c.closed then return end
  if s.plain_200 then return c:send(200, { ["Content-Type"] = "text/plain" }, "It works!\n") end
  local status = failure(s, req.model)
  if status then return fail_reply(c, status, s, ollama) end
  local msgs = type(req.messages) == "table" and req.messages or {}
  local last = msgs[#msgs]
  if s.tool and s["then"] and type(last) == "table" and (last.role == "tool"
      or (type(last.content) == "string" and last.content:match("^Result of "))) then
    s.tool = s["then"]
    for k in pairs(s) do
      if type(k) == "string" and k:match("^arg_") then s[k] = nil end
    end
    local args = {}
    for k, v in pairs(s) do
      local name = type(k) == "string" and k:match("^then_arg_(.+)$")
      if name then args["arg_" .. name] = v end
    end
    for k, v in pairs(args) do s[k] = v end
  end
  if s.tool and s.tool_times then
    local key = "tool_times:" .. req.model
    counters[key] = (counters[key] or 0) + 1
    if counters[key] > s.tool_times then s.tool = nil end
  end
  if ollama then return ollama_chat(c, req, s) end
  return openai_chat(c, req, s)
end

-- Reads requests off a connection (keep-alive: one after another).
local conns = 0
local function serve(sock)
  conns = conns + 1
  local c = setmetatable({ sock = sock, buf = "", serial = conns }, Conn)
  local busy = false
  local function pump()
    if busy or c.closed then return end
    local head_end = c.buf:find("\r\n\r\n", 1, true)
    if not head_end then return end
    local head = c.buf:sub(1, head_end - 1)
    local method, path = head:match("^(%u+) (%S+) HTTP/1%.%d")
    local headers = {}
    for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do headers[k:lower()] = v end
    local len = tonumber(headers["content-length"] or 0) or 0
    if #c.buf < head_end + 3 + len then return end
    local body = c.buf:sub(head_end + 4, head_end + 3 + len)
    c.buf = c.buf:sub(head_end + 4 + len)
    busy = true
    orket.spawn(function()
      local ok, err = pcall(handle, c, method or "?", path or "/", headers, body)
      if not ok then io.stderr:write("fake server: ", tostring(err), "\n"); c:close() end
      busy = false
      pump()
    end)
  end
  sock:read_start(function(err, data)
    if err or not data then return c:close() end
    c.buf = c.buf .. data
    pump()
  end)
end

require("tests.loopback_listen")(port, serve)
