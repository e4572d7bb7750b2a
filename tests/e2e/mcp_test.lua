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
    assert.equal("orket://cards/NOTES-1", out.updated[1])
    assert.is_true(out.ping.ok)
    assert.equal("NOTES-1", out.run)
  end)
end)
