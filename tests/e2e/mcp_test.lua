-- orket mcp serve end to end: the binary on stdin/stdout, talked to with raw JSON-RPC lines
-- (what no polite client sends: calls before initialize, unknown methods, batches, garbage,
-- long lines) and with the official TypeScript SDK from npm (tests.npm; skipped, with the
-- reason printed, only when npm cannot install it).
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
      '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"create_issue","arguments":{"parent":"NOTES","summary":"s","priority":"Urgent"}}}',
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
    assert.equal("EINVAL", a[5].result.structuredContent.error.code)
    local card = H.card_json(dir, "NOTES-1")
    assert.equal("hi", card.comments[1].body)
    assert.equal("local", card.comments[1].author)
  end)

  it("--read-only refuses the writing tools", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, { INIT,
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"comment","arguments":{"id":"NOTES-1","body":"hi"}}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_card","arguments":{"id":"NOTES-1"}}}',
    }, " --read-only"))
    assert.equal("forbidden", a[1].result.structuredContent.error.code)
    assert.equal("NOTES-1", a[2].result.structuredContent.card.id)
    assert.equal(0, #H.card_json(dir, "NOTES-1").comments)
  end)

  it("speaks the stateless revision when a request carries its version", function()
    local dir = H.example("notes")
    local a = by_id(serve(dir, {
      '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}',
      '{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}',
      '{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2030-01-01"}}}',
    }))
    assert.same({ "2026-07-28", "2025-11-25", "2025-06-18" }, a[1].result.supportedVersions)
    assert.equal("complete", a[2].result.resultType)
    assert.is_true(#a[2].result.tools >= 12)
    assert.equal(-32022, a[3].error.code)
  end)

  it("works with the official TypeScript SDK as the client", function()
    local dir, why = npm.ensure()
    if not dir then
      print("\nSKIPPED (the SDK from npm): " .. why)
      return
    end
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

  it("sessions per key, roles, Origin and protocol version checked", function()
    local dir = H.example("notes")
    local viewer = H.api_key(dir, "look", "viewer")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    -- no key: the API's 401
    assert.equal(401, (post(s, nil, INIT)))
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
    -- DELETE ends it
    local dst = H.fetch { url = s.url .. "/mcp", method = "DELETE", headers = { "Authorization: Bearer " .. viewer, with[1] } }
    assert.equal(204, dst)
    assert.equal(404, (post(s, viewer, call("get_card", { id = "NOTES-1" }), with)))
    -- an operator writes, as itself
    local _, _, oh = post(s, op, INIT)
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

  it("works with the official TypeScript SDK's Streamable HTTP client", function()
    local ndir, why = npm.ensure()
    if not ndir then
      print("\nSKIPPED (the SDK from npm): " .. why)
      return
    end
    local dir = H.example("notes")
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
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
