-- orket mcp serve end to end: the binary on stdin/stdout, talked to with raw JSON-RPC lines
-- (what no polite client sends: calls before initialize, unknown methods, batches, garbage,
-- long lines) and with the official TypeScript SDK from npm (tests.npm; skipped, with the
-- reason, only when npm cannot install it).
local H = require "tests.helpers"
local cjson = require "cjson"
local npm = require "tests.npm"

local function lines_of(text)
  local out = {}
  for l in (text or ""):gmatch("[^\n]+") do out[#out + 1] = cjson.decode(l) end
  return out
end

local INIT = '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
  .. '"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'

-- serve(dir, lines [, args]) -> the answers (decoded), the run's result
local function serve(dir, input, args)
  local r = H.orket("mcp serve" .. (args or ""), { cwd = dir, stdin = table.concat(input, "\n") .. "\n" })
  return lines_of(r.stdout), r
end

local function by_id(answers)
  local t = {}
  for _, a in ipairs(answers) do if a.id ~= cjson.null then t[a.id] = a end end
  return t
end

describe("orket mcp serve (stdio)", function()
  after_each(H.cleanup)

  it("refuses requests before initialize, then negotiates a version", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, {
      '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      '{"jsonrpc":"2.0","id":2,"method":"ping"}',
      INIT:gsub('"id":0', '"id":3'),
      '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      '{"jsonrpc":"2.0","id":4,"method":"tools/list"}',
      '{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}',
    }))
    assert.equal(-32002, a[1].error.code)
    assert.matches("initialize", a[1].error.message)
    assert.same({}, a[2].result)
    assert.equal("2025-11-25", a[3].result.protocolVersion)
    assert.equal("orket", a[3].result.serverInfo.name)
    assert.is_true(a[3].result.capabilities.resources.subscribe)
    assert.is_true(#a[4].result.tools >= 12)
    assert.equal(-32600, a[5].error.code) -- a second initialize
    -- the previous version is accepted as asked; one we do not speak gets our newest
    local b = by_id(serve(dir, { (INIT:gsub("2025%-11%-25", "2025-06-18")) }))
    assert.equal("2025-06-18", b[0].result.protocolVersion)
    local c = by_id(serve(dir, { (INIT:gsub("2025%-11%-25", "1999-01-01")) }))
    assert.equal("2025-11-25", c[0].result.protocolVersion)
    -- the older published revisions too: their clients (SDK 1.11 and before) connect
    for _, v in ipairs { "2025-03-26", "2024-11-05" } do
      local d = by_id(serve(dir, { (INIT:gsub("2025%-11%-25", v)), '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' }))
      assert.equal(v, d[0].result.protocolVersion)
      assert.is_true(#d[1].result.tools >= 12)
    end
  end)

  it("answers unknown methods, batches, garbage and bad ids with JSON-RPC errors", function()
    local dir = H.example("notes")
    local answers = serve(dir, {
      INIT,
      '{"jsonrpc":"2.0","id":1,"method":"no/such"}',
      '[{"jsonrpc":"2.0","id":2,"method":"ping"}]',
      "not json at all",
      '{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}',
      '{"jsonrpc":"1.0","id":3,"method":"ping"}',
      '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"nope"}}',
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":"x"}',
      '{"jsonrpc":"2.0","id":6,"method":"ping"}',
    })
    local a = by_id(answers)
    assert.equal(-32601, a[1].error.code)
    assert.equal(-32600, a[3].error.code)
    assert.equal(-32602, a[4].error.code)
    assert.equal(-32600, a[5].error.code)
    assert.same({}, a[6].result) -- still answering after all that
    local nulls = {}
    for _, x in ipairs(answers) do if x.id == cjson.null then nulls[#nulls + 1] = x.error.code end end
    assert.same({ -32600, -32700, -32600 }, nulls) -- the batch, the garbage, the object id
    -- 2025-03-26 had batches: the words say which revisions have none, as /mcp's do
    assert.equal("batches are not part of MCP since 2025-06-18: send one message at a time", answers[3].error.message)
  end)

  it("answers a large id with the same id, every digit, and refuses one it cannot read exactly", function()
    local dir = H.example("notes")
    local answers, r = serve(dir, {
      INIT,
      '{"jsonrpc":"2.0","id":123456789012345,"method":"ping"}',
      '{"jsonrpc":"2.0","id":9007199254740991,"method":"ping"}',
      '{"jsonrpc":"2.0","id":-123456789012345,"method":"ping"}',
      '{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}',
    })
    -- the raw lines: a decoder that reads numbers as doubles would hide a rounded id
    for _, id in ipairs { "123456789012345", "9007199254740991", "-123456789012345" } do
      assert.truthy(r.stdout:find('{"id":' .. id .. ',"jsonrpc":"2.0","result":{}}', 1, true), id)
    end
    -- past 2^53 the decoder's double may be another id (2^53 + 1 reads as 2^53): refused
    assert.falsy(r.stdout:find("9007199254740992", 1, true))
    assert.equal(5, #answers)
    assert.equal(cjson.null, answers[5].id)
    assert.equal(-32600, answers[5].error.code)
  end)

  it("takes JSON-RPC batches in a 2025-03-26 session, the one revision that has them", function()
    local dir = H.example("notes")
    local answers = serve(dir, {
      (INIT:gsub("2025%-11%-25", "2025-03-26")),
      '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"},'
        .. '{"jsonrpc":"2.0","id":2,"method":"tools/list"},{"jsonrpc":"2.0","id":3,"method":"initialize",'
        .. '"params":{"protocolVersion":"2025-03-26"}},5]',
      '[{"jsonrpc":"2.0","method":"notifications/x"}]',
      "[]",
    })
    assert.equal(3, #answers) -- the answer to initialize, one array, one error (the notification: none)
    local batch = answers[2]
    assert.equal(4, #batch) -- ping, tools/list, initialize refused, the number refused
    assert.same({}, batch[1].result)
    assert.is_true(#batch[2].result.tools >= 12)
    assert.equal(3, batch[3].id)
    assert.equal(-32600, batch[3].error.code)
    assert.equal(cjson.null, batch[4].id)
    assert.equal(-32600, batch[4].error.code)
    assert.equal(-32600, answers[3].error.code) -- an empty batch
  end)

  -- a key given twice (cjson keeps the last copy: a check in front may have read the first)
  -- and a NUL in a text were taken here, where the HTTP API refuses both: the same check and
  -- words (orket.serve.body.refusal), at the top of a message, in its arguments, in a batch
  it("refuses a key given twice and a NUL in a text, as the HTTP API does", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, {
      INIT,
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"comment","arguments":{"id":"NOTES-1","body":"first","body":"second"}}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_issue","arguments":{"parent":"NOTES","summary":"s\\u0000x"}}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_card","arguments":{"id":"NOTES-1"}},'
        .. '"params":{"name":"comment","arguments":{"id":"NOTES-1","body":"sneaked"}}}',
    }))
    for id, words in pairs { [1] = 'the message gives the key "body" twice in one object',
        [2] = "a text of the message holds a NUL byte (\\u0000)",
        [3] = 'the message gives the key "params" twice in one object' } do
      assert.equal(-32602, a[id].error.code, id)
      assert.equal(words, a[id].error.message)
    end
    local old = serve(dir, {
      (INIT:gsub("2025%-11%-25", "2025-03-26")),
      '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":'
        .. '{"name":"comment","arguments":{"id":"NOTES-1","body":"a\\u0000b"}}}]',
    })
    assert.equal(-32602, old[2].error.code)
    assert.equal("a text of the message holds a NUL byte (\\u0000)", old[2].error.message)
    assert.equal(0, #H.card_json(dir, "NOTES-1").comments)
    assert.is_true(H.orket("card NOTES-5 --json", { cwd = dir }).status ~= 0) -- no card was made
  end)

  -- `printf '%s' MSG | orket mcp serve` got no answer and no error: the last message,
  -- without its newline, was dropped at the end of stdin
  it("answers a last message stdin ends without its newline; one cut short is a parse error", function()
    local dir = H.example("notes")
    local r = H.orket("mcp serve", { cwd = dir, stdin = INIT .. '\n{"jsonrpc":"2.0","id":2,"method":"ping"}' })
    local a = by_id(lines_of(r.stdout))
    assert.equal(0, r.status, r.stderr)
    assert.is_table(a[2], r.stdout)
    assert.same({}, a[2].result)
    r = H.orket("mcp serve", { cwd = dir, stdin = INIT .. '\n{"jsonrpc":"2.0","id":3,"meth' })
    local got = lines_of(r.stdout)
    assert.equal(2, #got, r.stdout)
    assert.equal(-32700, got[2].error.code)
    -- in the words the REST API's bodies are refused in, never cjson's token names
    assert.equal("not JSON: expected object key string but found unexpected end of string at byte 30",
      got[2].error.message)
  end)

  -- a client that closed its end of stdout (head -n 1 here) killed the server with SIGPIPE at
  -- its next answer, runs it started and all (exit 141, nothing said)
  it("ends its session when the client has closed stdout, saying so, rather than dying of SIGPIPE", function()
    local dir = H.example("notes")
    H.write(dir .. "/init.json", INIT .. "\n")
    -- pings until the server is gone: the first answer written after head has exited fails
    os.execute(string.format("cd %s && { cat init.json; for i in $(seq 1 120); do "
      .. "echo '{\"jsonrpc\":\"2.0\",\"id\":'$i',\"method\":\"ping\"}'; sleep 0.5; done; } 2>/dev/null "
      .. "| { timeout 120 %s mcp serve 2>err; echo $? >rc; } | head -n 1 >out", H.quote(dir), H.quote(H.BIN)))
    assert.matches('"id":0', H.read(dir .. "/out"))
    assert.equal("0", (H.read(dir .. "/rc"):gsub("%s", "")), H.read(dir .. "/err"))
    assert.matches("stdout: Broken pipe (the client is gone): the session ends", H.read(dir .. "/err"), 1, true)
  end)

  it("drops a line over the cap with an error and reads the next", function()
    local dir = H.example("notes")
    local huge = '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' .. string.rep("a", 5 * 1024 * 1024) .. '"}}'
    local a = serve(dir, { INIT, huge, '{"jsonrpc":"2.0","id":2,"method":"ping"}' })
    assert.equal(3, #a)
    assert.equal(-32600, a[2].error.code)
    assert.matches("longer than", a[2].error.message)
    assert.equal(2, a[3].id)
  end)

  it("calls tools as the HTTP API does: strict arguments, the API's error codes, the audit", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, {
      INIT,
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"comment","arguments":{"id":"NOTES-1","body":"hi"}}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"comment","arguments":{"id":"NOTES-1","body":"hi","x":1}}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"answer","arguments":{"id":"NOTES-1","text":"yes"}}}',
      '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"get_card","arguments":{"id":"NOPE"}}}',
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"create_issue","arguments":{"parent":"NOTES","summary":"s","priority":"High"}}}',
      '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"get_run","arguments":{"id":99999999999999999999}}}',
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_transcript","arguments":{"id":1.5}}}',
      '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"get_run","arguments":{"id":7.0}}}',
      -- doubles: 2^53+1 arrives as 2^53, and 2^63-1 is no integer a double holds
      '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_run","arguments":{"id":9007199254740993}}}',
      '{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"get_run","arguments":{"id":9223372036854775807}}}',
      '{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"get_run","arguments":{"id":9007199254740991}}}',
    }))
    assert.is_nil(a[1].result.isError)
    assert.equal("hi", a[1].result.structuredContent.comments[1].body)
    assert.is_true(a[2].result.isError)
    assert.equal("bad_request", a[2].result.structuredContent.error.code)
    assert.matches("arguments.x", a[2].result.content[1].text)
    assert.is_true(a[3].result.isError)
    assert.equal("ESTATE", a[3].result.structuredContent.error.code)
    assert.equal(409, a[3].result.structuredContent.error.status)
    assert.equal("not_found", a[4].result.structuredContent.error.code)
    -- priority is a number in the tool's schema (one type: High/Medium/Low are the HTTP API's)
    assert.equal("bad_request", a[5].result.structuredContent.error.code)
    assert.matches("priority", a[5].result.content[1].text)
    -- an id past Lua's integers, or not whole, is refused naming the argument (not "no run 1e+20")
    assert.equal("bad_request", a[6].result.structuredContent.error.code)
    local past = " is past 2^53-1 (9007199254740991) in size, where a JSON number stops being exact (it may be another number, rounded)"
    assert.equal("bad_request: arguments.id: 1e+20" .. past, a[6].result.content[1].text)
    -- never asked for silently as another id
    for i, shown in pairs { [9] = "9007199254740992", [10] = "9.2233720368548e+18" } do
      assert.equal("bad_request", a[i].result.structuredContent.error.code)
      assert.equal("bad_request: arguments.id: " .. shown .. past, a[i].result.content[1].text)
    end
    assert.equal("not_found", a[12].result.structuredContent.error.code) -- the largest exact one is asked for
    assert.matches("run 9007199254740991$", a[12].result.content[1].text)
    assert.equal("bad_request", a[7].result.structuredContent.error.code)
    assert.matches("arguments.id", a[7].result.content[1].text, 1, true)
    assert.equal("not_found", a[8].result.structuredContent.error.code) -- 7.0 is the run 7
    assert.matches("run 7$", a[8].result.content[1].text)
    local card = H.card_json(dir, "NOTES-1")
    assert.equal("hi", card.comments[1].body)
    -- named as the CLI's writes are: the user running it, not the server's no-key mode
    assert.equal(require("orket.serve.localuse").operator(), card.comments[1].author)
  end)

  it("publishes create_issue's priority as the whole number it takes", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, {
      INIT,
      '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_issue","arguments":{"parent":"NOTES","summary":"s","priority":2.5}}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_issue","arguments":{"parent":"NOTES","summary":"t","priority":3.0}}}',
    }))
    local schema
    for _, t in ipairs(a[1].result.tools) do if t.name == "create_issue" then schema = t.inputSchema end end
    assert.same({ type = "integer", minimum = 0, maximum = 10, description = "3 high, 2 medium, 1 low (0 to 10)" },
      schema.properties.priority)
    -- what the schema refuses is refused as the tool's own argument error, not the route's EINVAL
    assert.is_true(a[2].result.isError)
    assert.equal("bad_request", a[2].result.structuredContent.error.code)
    assert.matches("arguments.priority", a[2].result.content[1].text, 1, true)
    assert.is_nil(a[3].result.isError) -- 3.0 is a whole number
    assert.equal(3, a[3].result.structuredContent.card.priority)
  end)

  it("says arguments.X where a route's refusal names body.X", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, { INIT,
      '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"start_run","arguments":{"target":"NOTES-1","model":"nosuch:model"}}}',
    }))
    -- the run route's refusal names the body's field: over MCP the caller sent arguments
    assert.is_true(a[4].result.isError)
    local said = a[4].result.content[1].text
    assert.matches("^bad_request: arguments%.model nosuch:model: names provider 'nosuch'", said)
    assert.is_nil(said:find("body.", 1, true), said)
    assert.matches("^arguments%.model", a[4].result.structuredContent.error.message)
  end)

  it("--read-only neither lists nor runs the writing tools", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, { INIT,
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"comment","arguments":{"id":"NOTES-1","body":"hi"}}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_card","arguments":{"id":"NOTES-1"}}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/list"}',
    }, " --read-only"))
    local names = {}
    for _, t in ipairs(a[3].result.tools) do names[#names + 1] = t.name end
    table.sort(names)
    assert.same({ "board", "get_card", "get_run", "list_runs", "run_transcript" }, names)
    -- list_runs says the states it takes (GET /v1/runs refuses any other)
    for _, t in ipairs(a[3].result.tools) do
      if t.name == "list_runs" then
        assert.same({ "running", "done", "failed", "stalled", "interrupted", "stopped", "killed", "queued" },
          t.inputSchema.properties.state.enum)
      end
    end
    assert.is_nil(a[0].result.instructions:find("file issues", 1, true))
    assert.equal("forbidden", a[1].result.structuredContent.error.code)
    -- said as the server's mode, not as a role the local user could have
    assert.equal("forbidden: this server is read-only (--read-only): comment writes", a[1].result.content[1].text)
    assert.equal("NOTES-1", a[2].result.structuredContent.card.id)
    assert.equal(0, #H.card_json(dir, "NOTES-1").comments)
  end)

  it("sends log messages at the level the client set (logging/setLevel)", function()
    local dir = H.example("notes")
    local out = serve(dir, { INIT, '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_card","arguments":{"id":"NOPE-9"}}}',
      '{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"loud"}}',
      '{"jsonrpc":"2.0","id":3,"method":"logging/setLevel","params":{"level":"warning"}}',
      '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"comment","arguments":{"id":"NOTES-1","body":"hi"}}}',
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get_card","arguments":{"id":"NOPE-9"}}}',
      '{"jsonrpc":"2.0","id":6,"method":"logging/setLevel","params":{"level":"debug"}}',
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_card","arguments":{"id":"NOTES-1"}}}',
    })
    local a, logged = {}, {}
    for _, m in ipairs(out) do
      if m.id == nil then logged[#logged + 1] = m else a[m.id] = m end
    end
    assert.same({}, a[0].result.capabilities.logging)
    assert.equal(-32602, a[2].error.code)
    assert.matches("debug, info, notice, warning", a[2].error.message)
    assert.same({}, a[3].result)
    assert.is_nil(a[4].result.isError)
    -- before a level, nothing; at warning, the refusal and not the comment; at debug, a read
    assert.equal(2, #logged, cjson.encode(logged))
    assert.equal("notifications/message", logged[1].method)
    assert.same({ "warning", "get_card", "not_found" },
      { logged[1].params.level, logged[1].params.data.tool, logged[1].params.data.error.code })
    assert.same({ "debug", "get_card" }, { logged[2].params.level, logged[2].params.data.tool })
  end)

  it("offers prompts for a card and the board, and completes card ids", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, { INIT, '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      '{"jsonrpc":"2.0","id":1,"method":"prompts/list"}',
      '{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"review_card","arguments":{"id":"NOTES-2"}}}',
      '{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"review_card","arguments":{}}}',
      '{"jsonrpc":"2.0","id":4,"method":"prompts/get","params":{"name":"review_card","arguments":{"id":"NOPE-1"}}}',
      '{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"nope"}}',
      '{"jsonrpc":"2.0","id":6,"method":"prompts/get","params":{"name":"triage"}}',
      '{"jsonrpc":"2.0","id":7,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"review_card"},'
        .. '"argument":{"name":"id","value":"notes-"}}}',
      '{"jsonrpc":"2.0","id":8,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"orket://cards/{id}"},'
        .. '"argument":{"name":"id","value":"ZZ"}}}',
      '{"jsonrpc":"2.0","id":9,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"nope"},'
        .. '"argument":{"name":"id","value":""}}}',
      '{"jsonrpc":"2.0","id":10,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":5},'
        .. '"argument":{"name":"id","value":""}}}',
      '{"jsonrpc":"2.0","id":11,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":7},'
        .. '"argument":{"name":"id","value":""}}}',
    }))
    assert.same({ listChanged = false }, a[0].result.capabilities.prompts)
    assert.same({}, a[0].result.capabilities.completions)
    local names = {}
    for _, p in ipairs(a[1].result.prompts) do
      names[#names + 1] = p.name
      assert.is_string(p.description)
    end
    assert.same({ "review_card", "triage" }, names)
    assert.same({ { name = "id", description = "the card id, such as NOTES-1", required = true } }, a[1].result.prompts[1].arguments)
    local m = a[2].result.messages
    assert.matches("Review Orket card NOTES%-2", m[1].content.text)
    assert.equal("orket://cards/NOTES-2", m[2].content.resource.uri)
    assert.equal("NOTES-2", cjson.decode(m[2].content.resource.text).card.id)
    for i = 3, 5 do assert.equal(-32602, a[i].error.code, i) end
    assert.matches("no card NOPE%-1", a[4].error.message)
    assert.equal("NOTES", cjson.decode(a[6].result.messages[2].content.text).cards[1].id)
    assert.same({ values = { "NOTES-1", "NOTES-2", "NOTES-3", "NOTES-4" }, total = 4, hasMore = false }, a[7].result.completion)
    assert.same({ values = {}, total = 0, hasMore = false }, a[8].result.completion)
    assert.equal(-32602, a[9].error.code)
    -- a number is said as what it is, never as the float the decoder read (5.0)
    assert.equal(-32602, a[10].error.code)
    assert.equal("ref.uri must be a string (a resource template)", a[10].error.message)
    assert.equal("ref.name must be a string (a prompt's name)", a[11].error.message)
  end)

  it("speaks the stateless revision when a request carries its version", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, {
      '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2030-01-01"}}}',
    }))
    assert.same({ "2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05" }, a[1].result.supportedVersions)
    assert.equal("complete", a[2].result.resultType)
    assert.is_true(#a[2].result.tools >= 12)
    assert.equal(-32022, a[3].error.code)
  end)

  it("reads no _meta version in a session that negotiated its own", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, {
      INIT,
      '{"jsonrpc":"2.0","method":"notifications/initialized"}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}',
      '{"jsonrpc":"2.0","id":3,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2030-01-01"}}}',
    }))
    assert.equal(12, #a[2].result.tools)
    assert.is_nil(a[2].result.resultType)
    assert.same({}, a[3].result)
  end)

  it("works with the official TypeScript SDK as the client", function()
    local dir, why = npm.ensure()
    if not dir then return pending("the SDK from npm: " .. why) end
    local proj = H.example("notes")
    local r = npm.node("sdk_client.mjs", { "stdio", H.BIN, proj })
    assert.equal(0, r.status, r.stderr)
    local out = cjson.decode(r.stdout)
    assert.equal("orket", out.server.name)
    assert.same({ "NOTES", "NOTES-1", "NOTES-2", "NOTES-3", "NOTES-4" }, out.board_cards)
    assert.equal("ready", out.card_status)
    assert.is_true(out.missing.isError)
    assert.equal("not_found", out.missing.structuredContent.error.code)
    assert.is_true(out.bad_args.isError)
    assert.equal(-32602, out.unknown_tool.code)
    assert.equal("NOTES-5", out.created)
    assert.equal("Filed over MCP", H.card_json(proj, "NOTES-5").card.summary)
    assert.truthy(#out.resources >= 6)
    assert.equal("ready", out.read_status)
    assert.equal(-32002, out.read_missing.code)
    assert.is_true(out.commented)
    assert.is_true(out.subscribe.ok)
    assert.equal("orket://cards/NOTES-1", out.updated[1])
    assert.is_true(out.ping.ok)
    assert.equal("NOTES-1", out.run)
  end)
end)

describe("the /mcp route of orket serve (Streamable HTTP)", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  local function post(s, key, body, headers)
    local h = { "Content-Type: application/json", "Accept: application/json, text/event-stream" }
    if key then h[#h + 1] = "Authorization: Bearer " .. key end
    for _, x in ipairs(headers or {}) do h[#h + 1] = x end
    local st, text, hdrs = H.fetch { url = s.url .. "/mcp", method = "POST", headers = h, body = body, total_timeout_ms = 20000 }
    local lower = {}
    for k, v in pairs(hdrs or {}) do lower[tostring(k):lower()] = v end
    return st, text ~= "" and require("cjson.safe").decode(text) or nil, lower
  end

  local function call(name, args)
    return cjson.encode { jsonrpc = "2.0", id = 7, method = "tools/call", params = { name = name, arguments = args } }
  end

  it("a keyless server's 403s get a remedy their messages agree with", function()
    local dir = H.example("notes")
    local s = H.serve(dir)
    local function get(headers, method)
      local st, text = H.fetch { url = s.url .. (method and "/v1/cards/NOTES-1/comments" or "/v1/board"),
        method = method, headers = headers, body = method and "{}" or nil, total_timeout_ms = 20000 }
      return st, assert(cjson.decode(text))
    end
    -- a foreign Host: the message says a key serves other names, and so does the remedy
    local st_h, doc_h = get { "Host: evil.example" }
    assert.equal(403, st_h)
    assert.matches("create a key (orket keys create) to serve other names", doc_h.error.message, 1, true)
    assert.matches("reach it by a loopback name, or create a key to serve other names", doc_h.error.remedy, 1, true)
    -- a write of another origin: serve.cors is no remedy for it (only for a page's reads)
    local st_w, doc_w = get({ "Origin: http://evil.example", "Content-Type: application/json" }, "POST")
    assert.equal(403, st_w)
    assert.equal("a write from another web origin", doc_w.error.message)
    assert.matches("for another web origin, send from the board's own page or from outside a browser (only a page's "
      .. "reads", doc_w.error.remedy, 1, true)
    for _, doc in ipairs { doc_h, doc_w } do assert.is_nil(doc.error.remedy:find("no key helps", 1, true)) end
  end)

  it("sessions per key, roles, Origin and protocol version checked", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    -- no key: the API's 401
    assert.equal(401, (post(s, nil, INIT)))
    -- DNS rebinding is refused before any key is asked for: a foreign Origin, or a foreign
    -- Host on this loopback server (what a page at evil.example resolved to 127.0.0.1 sends)
    local st_o, doc_o = post(s, nil, INIT, { "Origin: http://evil.example" })
    assert.equal(403, st_o)
    assert.matches("Origin", doc_o.error.message)
    local st_h, doc_h = post(s, nil, INIT, { "Host: evil.example:" .. s.port })
    assert.equal(403, st_h)
    assert.matches("loopback host names", doc_h.error.message)
    -- the remedy is /mcp's own case (a key is no answer to it: the shared 403 remedy, which
    -- lists every case, offered one): loopback names and serve.cors
    assert.equal("send from outside a browser (no Origin), or add the page's origin to `serve.cors` in orket.lua; "
      .. "no key helps (DNS rebinding is refused whoever asks)", doc_o.error.remedy)
    assert.equal("reach /mcp by a loopback name (localhost, 127.0.0.1 or [::1], any port), or add an origin of this "
      .. "host name to `serve.cors` in orket.lua; no key helps (DNS rebinding is refused whoever asks)", doc_h.error.remedy)
    for _, doc in ipairs { doc_o, doc_h } do assert.is_nil(doc.error.remedy:find("orket keys create", 1, true)) end
    assert.equal(403, (post(s, viewer, INIT, { "Host: evil.example" })))
    assert.equal(403, (H.fetch { url = s.url .. "/mcp", method = "DELETE", headers = { "Origin: http://evil.example" } }))
    local st, doc, hdrs = post(s, viewer, INIT)
    assert.equal(200, st)
    assert.equal("2025-11-25", doc.result.protocolVersion)
    local sid = assert(hdrs["mcp-session-id"])
    local with = { "Mcp-Session-Id: " .. sid, "MCP-Protocol-Version: 2025-11-25" }
    assert.equal(202, (post(s, viewer, '{"jsonrpc":"2.0","method":"notifications/initialized"}', with)))
    -- a viewer reads, and cannot write
    local _, read = post(s, viewer, call("get_card", { id = "NOTES-1" }), with)
    assert.equal("NOTES-1", read.result.structuredContent.card.id)
    local _, w = post(s, viewer, call("comment", { id = "NOTES-1", body = "x" }), with)
    assert.is_true(w.result.isError)
    assert.equal("forbidden", w.result.structuredContent.error.code)
    assert.equal(0, #H.card_json(dir, "NOTES-1").comments)
    -- another key does not find the session; none at all is refused
    assert.equal(404, (post(s, op, call("get_card", { id = "NOTES-1" }), with)))
    assert.equal(400, (post(s, viewer, call("get_card", { id = "NOTES-1" }))))
    -- a foreign browser Origin, an unknown protocol version
    local bad_origin = { with[1], with[2], "Origin: https://evil.example" }
    assert.equal(403, (post(s, viewer, call("get_card", { id = "NOTES-1" }), bad_origin)))
    assert.equal(400, (post(s, viewer, call("get_card", { id = "NOTES-1" }), { with[1], "MCP-Protocol-Version: 1999-01-01" })))
    -- a batch is 2025-03-26's: refused in this 2025-11-25 session
    assert.equal(400, (post(s, viewer, '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', with)))
    local _, old_doc, old_h = post(s, viewer, (INIT:gsub("2025%-11%-25", "2025-03-26")))
    assert.equal("2025-03-26", old_doc.result.protocolVersion)
    local old = { "Mcp-Session-Id: " .. old_h["mcp-session-id"], "MCP-Protocol-Version: 2025-03-26" }
    local bst, answered = post(s, viewer, '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,'
      .. '"method":"tools/list"}]', old)
    assert.equal(200, bst)
    assert.equal(2, #answered)
    assert.equal(5, #answered[2].result.tools)
    assert.equal(202, (post(s, viewer, '[{"jsonrpc":"2.0","method":"notifications/initialized"}]', old)))
    -- every published version is one (SDK 1.11 and the conformance suite send 2025-03-26)
    for _, v in ipairs { "2025-06-18", "2025-03-26", "2024-11-05" } do
      assert.equal(200, (post(s, viewer, call("get_card", { id = "NOTES-1" }), { with[1], "MCP-Protocol-Version: " .. v })))
    end
    -- a viewer is offered what it may do: no writing tools, no subscriptions it would be refused
    assert.is_nil(doc.result.instructions:find("subscribe", 1, true))
    assert.is_nil(doc.result.instructions:find("comment", 1, true))
    local _, listed = post(s, viewer, '{"jsonrpc":"2.0","id":8,"method":"tools/list"}', with)
    assert.equal(5, #listed.result.tools)
    for _, t in ipairs(listed.result.tools) do assert.is_true(t.annotations.readOnlyHint, t.name) end
    -- DELETE ends it
    local dst = H.fetch { url = s.url .. "/mcp", method = "DELETE", headers = { "Authorization: Bearer " .. viewer, with[1] } }
    assert.equal(204, dst)
    assert.equal(404, (post(s, viewer, call("get_card", { id = "NOTES-1" }), with)))
    -- one key holds 32 sessions at most: its oldest ends when it makes one more, so that
    -- no key fills the server's and shuts the others out (the 2025-03-26 one is its oldest)
    local mine = {}
    for i = 1, 32 do
      local ist, _, ih = post(s, viewer, INIT)
      assert.equal(200, ist)
      mine[i] = { "Mcp-Session-Id: " .. ih["mcp-session-id"], "MCP-Protocol-Version: 2025-11-25" }
    end
    assert.equal(404, (post(s, viewer, '{"jsonrpc":"2.0","id":1,"method":"ping"}', old)))
    -- an initialize refused makes no session, so it ends none of the 32
    assert.equal(400, (post(s, viewer, '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}')))
    for i, with_i in ipairs(mine) do
      assert.equal(200, (post(s, viewer, '{"jsonrpc":"2.0","id":1,"method":"ping"}', with_i)), "session " .. i)
    end
    -- an operator writes, as itself
    local _, odoc, oh = post(s, op, INIT)
    assert.matches("file issues", odoc.result.instructions)
    assert.is_nil(odoc.result.instructions:find("subscribe", 1, true))
    local _, olisted = post(s, op, '{"jsonrpc":"2.0","id":8,"method":"tools/list"}', { "Mcp-Session-Id: " .. oh["mcp-session-id"] })
    assert.equal(12, #olisted.result.tools)
    for _, t in ipairs(olisted.result.tools) do
      -- one type per property: a list of types is what some clients cannot map
      for k, p in pairs(t.inputSchema.properties) do assert.equal("string", type(p.type), t.name .. "." .. k) end
    end
    local _, ow = post(s, op, call("comment", { id = "NOTES-1", body = "over http" }), { "Mcp-Session-Id: " .. oh["mcp-session-id"] })
    assert.is_nil(ow.result.isError)
    local c = H.card_json(dir, "NOTES-1").comments[1]
    assert.equal("over http", c.body)
    assert.matches("^%x+$", c.author) -- the key's id, never the key
    -- bytes that are not UTF-8 are refused here as the REST route refuses them, not stored
    local bad = call("comment", { id = "NOTES-1", body = "ok" }):gsub('"ok"', '"\255\254 latin1 caf\233"')
    local bst, bdoc = post(s, op, bad, { "Mcp-Session-Id: " .. oh["mcp-session-id"] })
    assert.equal(400, bst)
    assert.equal(-32700, bdoc.error.code)
    assert.matches("not valid UTF%-8", bdoc.error.message)
    local rst = H.fetch { url = s.url .. "/v1/cards/NOTES-1/comments", method = "POST",
      headers = { "Authorization: Bearer " .. op, "Content-Type: application/json" }, body = '{"body":"\255\254 latin1 caf\233"}' }
    assert.equal(400, rst)
    assert.equal(1, #H.card_json(dir, "NOTES-1").comments)
    assert.is_nil(s.log():find(op, 1, true))
    assert.equal(0, s.stop())
  end)

  -- The Accept line of a request: a string as sent; false for none (libcurl, which H.fetch
  -- uses, sends "Accept: */*" when a request names none, and drops it for the line "Accept:");
  -- "" for an empty one (libcurl sends "Name:" with nothing after it for the line "Name;")
  local function accept_line(a)
    if a == false then return "Accept:" end
    if a == "" then return "Accept;" end
    return "Accept: " .. a
  end

  it("answers a POST whose Accept allows application/json, the only type it answers in, else 406", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local s = H.serve(dir)
    local function post_accepting(a)
      local st, text = H.fetch { url = s.url .. "/mcp", method = "POST", body = INIT, total_timeout_ms = 20000,
        headers = { "Authorization: Bearer " .. viewer, "Content-Type: application/json", accept_line(a) } }
      return st, text ~= "" and cjson.decode(text) or nil
    end
    for _, a in ipairs { "text/event-stream", "text/html", "application/json;q=0, text/event-stream", "application/json;q=0, */*" } do
      local st, doc = post_accepting(a)
      assert.equal(406, st, a)
      assert.equal("Accept must allow application/json, the only type /mcp answers in; it was: " .. a, doc.error.message)
      assert.equal(cjson.null, doc.id)
    end
    -- JSON alone (what a server answering only in JSON needs), both types (the TypeScript SDK), wildcards
    for _, a in ipairs { "application/json", "application/json, text/event-stream", "*/*", "application/*, text/*",
        "text/event-stream; q=0.5, application/json" } do
      local st, doc = post_accepting(a)
      assert.equal(200, st, a)
      assert.equal("2025-11-25", doc.result.protocolVersion)
    end
    assert.equal(0, s.stop())
  end)

  it("takes a POST with no Accept, or an empty one, as accepting any type", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local s = H.serve(dir)
    for _, a in ipairs { false, "" } do
      local st, text = H.fetch { url = s.url .. "/mcp", method = "POST", body = INIT, total_timeout_ms = 20000,
        headers = { "Authorization: Bearer " .. viewer, "Content-Type: application/json", accept_line(a) } }
      assert.equal(200, st, tostring(a))
      assert.equal("2025-11-25", cjson.decode(text).result.protocolVersion)
    end
    assert.equal(0, s.stop())
  end)

  it("answers GET 405 whatever its Accept says: the transport lets it be a stream or 405", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local s = H.serve(dir)
    for _, a in ipairs { false, "", "application/json", "text/html", "text/event-stream", "*/*" } do
      local st, text, hdrs = H.fetch { url = s.url .. "/mcp", method = "GET", total_timeout_ms = 20000,
        headers = { "Authorization: Bearer " .. viewer, accept_line(a) } }
      assert.equal(405, st, tostring(a))
      local allow
      for k, v in pairs(hdrs or {}) do if tostring(k):lower() == "allow" then allow = v end end
      -- as any other method's 405 and OPTIONS say it, with the API's error body
      assert.equal("POST, DELETE, OPTIONS", allow)
      assert.equal("method_not_allowed", cjson.decode(text).error.code)
    end
    assert.equal(0, s.stop())
  end)

  it("refuses an MCP-Protocol-Version it does not speak, naming those it does", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local s = H.serve(dir)
    local _, _, hdrs = post(s, viewer, INIT)
    local sid = "Mcp-Session-Id: " .. hdrs["mcp-session-id"]
    local ust, udoc = post(s, viewer, call("get_card", { id = "NOTES-1" }), { sid, "MCP-Protocol-Version: 1999-01-01" })
    assert.equal(400, ust)
    assert.matches("unsupported MCP-Protocol-Version: 1999-01-01 (this server speaks 2026-07-28, 2025-11-25, 2025-06-18, "
      .. "2025-03-26, 2024-11-05)", udoc.error.message, 1, true)
    -- none is the session's own version; another one spoken is answered in the session's (the
    -- official conformance suite sends 2025-03-26 in the 2025-11-25 session its SDK opened)
    for _, h in ipairs { false, "2025-11-25", "2025-03-26" } do
      local st, doc = post(s, viewer, '{"jsonrpc":"2.0","id":3,"method":"tools/list"}', { sid, h and ("MCP-Protocol-Version: " .. h) or nil })
      assert.equal(200, st, tostring(h))
      assert.equal(5, #doc.result.tools)
    end
    assert.equal(0, s.stop())
  end)

  it("answers a request outside a session with the stateless revision's version errors, as 400s", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local s = H.serve(dir)
    local function listing(v)
      return cjson.encode { jsonrpc = "2.0", id = 9, method = "tools/list", params = { _meta = { ["io.modelcontextprotocol/protocolVersion"] = v } } }
    end
    local SPOKEN = { "2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05" }
    -- a header version not spoken: its UnsupportedProtocolVersionError, the versions spoken in
    -- data.supported (a client that speaks both eras reads it before falling back to initialize)
    local st, doc = post(s, viewer, listing("2099-01-01"), { "MCP-Protocol-Version: 2099-01-01" })
    assert.equal(400, st)
    assert.equal(-32022, doc.error.code)
    assert.same(SPOKEN, doc.error.data.supported)
    assert.equal("2099-01-01", doc.error.data.requested)
    -- a _meta version not spoken (no header): the same error, and a 400 too
    st, doc = post(s, viewer, listing("2099-01-01"))
    assert.equal(400, st)
    assert.equal(-32022, doc.error.code)
    assert.same(SPOKEN, doc.error.data.supported)
    assert.equal(9, doc.id)
    -- the header and the body's _meta disagree: HeaderMismatch, whichever is spoken
    for _, hm in ipairs { { "2026-07-28", "2099-01-01" }, { "2025-06-18", "2026-07-28" } } do
      st, doc = post(s, viewer, listing(hm[2]), { "MCP-Protocol-Version: " .. hm[1] })
      assert.equal(400, st, hm[1])
      assert.equal(-32020, doc.error.code)
      assert.equal(9, doc.id)
      assert.equal("header mismatch: MCP-Protocol-Version is " .. hm[1] .. ", the body's _meta "
        .. "io.modelcontextprotocol/protocolVersion " .. hm[2], doc.error.message)
    end
    -- both naming 2026-07-28: answered in it
    st, doc = post(s, viewer, listing("2026-07-28"), { "MCP-Protocol-Version: 2026-07-28" })
    assert.equal(200, st)
    assert.equal("complete", doc.result.resultType)
    assert.equal(5, #doc.result.tools)
    assert.equal(0, s.stop())
  end)

  it("refuses a key given twice and a NUL in a text with the HTTP API's words (400)", function()
    local dir = H.example("notes")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local _, _, h = post(s, op, INIT)
    local with = { "Mcp-Session-Id: " .. h["mcp-session-id"], "MCP-Protocol-Version: 2025-11-25" }
    local st, doc = post(s, op, '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"comment","arguments":'
      .. '{"id":"NOTES-2","body":"first","body":"second"}}}', with)
    assert.equal(400, st)
    assert.same({ 2, -32602, 'the message gives the key "body" twice in one object' }, { doc.id, doc.error.code, doc.error.message })
    st, doc = post(s, op, '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_issue","arguments":'
      .. '{"parent":"NOTES","summary":"s\\u0000x"}}}', with)
    assert.equal(400, st)
    assert.same({ 3, -32602, "a text of the message holds a NUL byte (\\u0000)" }, { doc.id, doc.error.code, doc.error.message })
    -- which id was meant is unknown: none is answered
    st, doc = post(s, op, '{"jsonrpc":"2.0","id":4,"id":5,"method":"ping"}', with)
    assert.equal(400, st)
    assert.equal(cjson.null, doc.id)
    assert.equal(0, #H.card_json(dir, "NOTES-2").comments)
    assert.equal(0, s.stop())
  end)

  it("answers a batch's ping in its array", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local s = H.serve(dir)
    local _, _, oh = post(s, viewer, (INIT:gsub("2025%-11%-25", "2025-03-26")))
    local osid = "Mcp-Session-Id: " .. oh["mcp-session-id"]
    local ping = '[{"jsonrpc":"2.0","id":1,"method":"ping"}]'
    -- alone or with others
    for _, b in ipairs { ping, '[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":1,"method":"ping"}]',
        '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]' } do
      local bst, arr = post(s, viewer, b, { osid, "MCP-Protocol-Version: 2025-03-26" })
      assert.equal(200, bst)
      assert.is_nil(arr.jsonrpc, b) -- an array, not one answer
      assert.equal(1, arr[1].id)
      assert.same({}, arr[1].result)
    end
    assert.equal(0, s.stop())
  end)

  it("reads no _meta version in a session", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local s = H.serve(dir)
    local _, _, hdrs = post(s, viewer, INIT)
    local sid = "Mcp-Session-Id: " .. hdrs["mcp-session-id"]
    -- the stateless revision's _meta version in a session is not read there: the session's
    -- version governs (it was -32022 "unsupported", even naming the session's own version)
    for _, v in ipairs { "2025-11-25", "2026-07-28", "2030-01-01" } do
      local body = cjson.encode { jsonrpc = "2.0", id = 9, method = "tools/list",
        params = { _meta = { ["io.modelcontextprotocol/protocolVersion"] = v } } }
      local st, listed = post(s, viewer, body, { sid, "MCP-Protocol-Version: 2025-11-25" })
      assert.equal(200, st, v)
      assert.is_nil(listed.error, v)
      assert.equal(5, #listed.result.tools)
      assert.is_nil(listed.result.resultType) -- not answered in the stateless revision
    end
    assert.equal(0, s.stop())
  end)

  it("counts each message of a batch against the key's rate limit", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local s = H.serve(dir, { env = { ORKET_SERVE_LIMITS = "key_rate=0.01,key_burst=10" } })
    local _, doc, hdrs = post(s, viewer, (INIT:gsub("2025%-11%-25", "2025-03-26"))) -- a token
    assert.equal("2025-03-26", doc.result.protocolVersion)
    local old = { "Mcp-Session-Id: " .. hdrs["mcp-session-id"], "MCP-Protocol-Version: 2025-03-26" }
    local parts = {}
    for i = 1, 20 do parts[i] = call("get_card", { id = "NOTES-1" }):gsub('"id":7', '"id":' .. i) end
    local st, answers = post(s, viewer, "[" .. table.concat(parts, ",") .. "]", old)
    assert.equal(200, st)
    assert.equal(20, #answers)
    -- the request's token and eight more: the other eleven are refused, not run
    for i = 1, 9 do assert.equal("NOTES-1", answers[i].result.structuredContent.card.id, i) end
    for i = 10, 20 do
      assert.equal(i, answers[i].id)
      assert.equal(-32029, answers[i].error.code)
    end
    -- and the key has none left for its next request
    assert.equal(429, (post(s, viewer, '{"jsonrpc":"2.0","id":1,"method":"ping"}', old)))
    assert.equal(0, s.stop())
  end)

  it("acts in a session with its person's role as it is at each request, not as it was at initialize", function()
    local dir = H.example("notes")
    local r = H.orket("users add bob --role operator --password-env PW", { cwd = dir, env = { PW = "correct horse battery" } })
    assert.equal(0, r.status, r.stderr)
    local bob = H.api_key(dir, "bob-ci --for bob", "operator")
    local s = H.serve(dir)
    local st, _, hdrs = post(s, bob, INIT)
    assert.equal(200, st)
    local with = { "Mcp-Session-Id: " .. hdrs["mcp-session-id"], "MCP-Protocol-Version: 2025-11-25" }
    local _, w = post(s, bob, call("comment", { id = "NOTES-1", body = "as an operator" }), with)
    assert.is_nil(w.result.isError)
    assert.equal(0, H.orket("projects grant default bob viewer", { cwd = dir }).status)
    _, w = post(s, bob, call("comment", { id = "NOTES-1", body = "as a viewer" }), with)
    assert.is_true(w.result.isError)
    assert.equal("forbidden", w.result.structuredContent.error.code)
    assert.equal(1, #H.card_json(dir, "NOTES-1").comments)
    assert.equal(0, s.stop())
  end)

  -- A peer from npm against /mcp with an operator's key: the project, the key and the
  -- server, or nothing (the skip said) when npm cannot install the peer.
  local function serve_for_peer(peer)
    local ndir, why = npm.ensure()
    if not ndir then return pending(peer .. " from npm: " .. why) end
    local dir = H.example("notes")
    local op = H.api_key(dir, "ops", "operator")
    return dir, op, H.serve(dir)
  end

  -- The conformance suite's server scenarios: those that need no fixture server run against
  -- Orket; each of the others is named here with what of the suite's fixture server it needs,
  -- so that a scenario a new version of the suite adds is not passed over unseen.
  local FIXTURE_FREE = { "server-initialize", "logging-set-level", "ping", "tools-list", "resources-list",
    "prompts-list", "server-sse-multiple-streams", "dns-rebinding-protection" }
  local FIXTURE = {
    ["completion-complete"] = "prompt test_prompt_with_arguments",
    ["tools-call-simple-text"] = "tool test_simple_text",
    ["tools-call-image"] = "tool test_image_content",
    ["tools-call-audio"] = "tool test_audio_content",
    ["tools-call-embedded-resource"] = "tool test_embedded_resource",
    ["tools-call-mixed-content"] = "tool test_multiple_content_types",
    ["tools-call-with-logging"] = "tool test_tool_with_logging",
    ["tools-call-error"] = "tool test_error_handling",
    ["tools-call-with-progress"] = "tool test_tool_with_progress",
    ["tools-call-sampling"] = "tool test_sampling",
    ["tools-call-elicitation"] = "tool test_elicitation",
    ["json-schema-2020-12"] = "a tool whose input schema has JSON Schema 2020-12 keywords",
    ["elicitation-sep1034-defaults"] = "tool test_elicitation_sep1034_defaults",
    ["elicitation-sep1330-enums"] = "tool test_elicitation_sep1330_enums",
    ["server-sse-polling"] = "tool test_reconnection",
    ["resources-read-text"] = "resource test://static-text",
    ["resources-read-binary"] = "resource test://static-binary",
    ["resources-templates-read"] = "resource template test://template/{id}/data",
    ["resources-subscribe"] = "resource test://watched-resource",
    ["resources-unsubscribe"] = "resource test://watched-resource",
    ["prompts-get-simple"] = "prompt test_simple_prompt",
    ["prompts-get-with-args"] = "prompt test_prompt_with_arguments",
    ["prompts-get-embedded-resource"] = "prompt test_prompt_with_embedded_resource",
    ["prompts-get-with-image"] = "prompt test_prompt_with_image",
  }

  it("passes the official conformance suite's server scenarios that need no fixture server", function()
    -- the suite's HTTP client (undici 7) needs Node 20.18 or later: where the system's is
    -- older (Debian 12 has 18), npm's is installed
    local node, why = npm.node_at_least(20, 18)
    if not node then
      return pending("the conformance suite from npm: " .. why)
    end
    local dir, op, s = serve_for_peer("the conformance suite")
    if not dir then return end
    local l = npm.node("conformance.mjs", { "--list" }, { node = node })
    assert.equal(0, l.status, l.stderr)
    local run, seen = {}, 0
    for _, n in ipairs(FIXTURE_FREE) do run[n] = true end
    for n in l.stdout:gmatch("%- ([%w%-]+)") do
      seen = seen + 1
      assert.is_true(run[n] or FIXTURE[n] ~= nil, "a scenario neither run nor known to need the fixture: " .. n)
    end
    assert.is_true(seen >= 32, l.stdout)
    local failed = {}
    for _, n in ipairs(FIXTURE_FREE) do
      local r = npm.node("conformance.mjs", { s.url .. "/mcp", op, n }, { node = node })
      if r.status ~= 0 or not r.stdout:find('"status": "SUCCESS"', 1, true) or r.stdout:find('"status": "FAILURE"', 1, true) then
        failed[#failed + 1] = n .. ":\n" .. r.stdout:sub(-1500) .. r.stderr:sub(-500)
      end
    end
    assert.same({}, failed)
    assert.equal(0, s.stop())
  end)

  it("works with the official TypeScript SDK's Streamable HTTP client", function()
    local dir, op, s = serve_for_peer("the SDK")
    if not dir then return end
    local r = npm.node("sdk_client.mjs", { "http", s.url .. "/mcp", op })
    assert.equal(0, r.status, r.stderr)
    local out = cjson.decode(r.stdout)
    assert.equal("orket", out.server.name)
    assert.same({ "NOTES", "NOTES-1", "NOTES-2", "NOTES-3", "NOTES-4" }, out.board_cards)
    assert.equal("not_found", out.missing.structuredContent.error.code)
    assert.equal(-32602, out.unknown_tool.code)
    assert.equal("NOTES-5", out.created)
    assert.equal("ready", out.read_status)
    assert.is_true(out.commented)
    assert.is_true(out.ping.ok)
    assert.matches("^%x+$", out.session)
    assert.is_false(out.capabilities.resources.subscribe) -- no stream to the client over HTTP here
    assert.equal(-32601, out.subscribe.code)
    assert.equal(0, s.stop())
  end)
end)
