-- The size of one MCP answer (docs/mcp.md): a card of many long comments made get_card's and
-- every write tool's answer the whole card twice, uncapped (11 MB lines: the official SDK's
-- stdio session died, Orket's own client refused them after the comment was written). Each
-- answer now fits orket.serve.mcp_server.ANSWER_MAX, well within the 4 MiB a client reads.
local H = require "tests.helpers"
local cjson = require "cjson"

local MIB4 = 4 * 1024 * 1024
-- the documented caps (orket.serve.mcp_server.ANSWER_MAX, COMMENT_MAX)
local ANSWER_MAX, COMMENT_MAX = 1024 * 1024, 8 * 1024

local INIT = '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"%s",'
  .. '"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'

-- 72 comments of 64 KiB on NOTES-3: 4.5 MiB of bodies, written in this process
local function seed(dir)
  local db = assert(require("orket.project").open_store(dir, false))
  local b = require("orket.board").open(db)
  for i = 1, 72 do
    assert(b:comment("NOTES-3", { author = "seed", body = string.format("%02d", i) .. string.rep("x", 65534) }))
  end
  db:close()
end

local function count(card, body)
  local n = 0
  for _, c in ipairs(card.comments) do if c.body == body then n = n + 1 end end
  return n
end

-- what a cut card says: its newest comments, each body cut, the number left out and where
-- the whole card is read
local function cut_card(doc, last)
  assert.equal("orket.card/1", doc.format)
  -- (compared by their start: a failure does not print 64 KiB)
  local newest = doc.comments[#doc.comments].body
  assert.equal(last, newest:sub(1, #last))
  local first = doc.comments[1]
  assert.is_true(first.cut)
  assert.equal(65536, first.body_bytes)
  assert.is_true(#first.body <= COMMENT_MAX)
  assert.is_true(doc.omitted.comments > 0)
  assert.matches("GET /v1/cards/NOTES-3", doc.omitted.read, 1, true)
  assert.matches("orket card NOTES-3 --json", doc.omitted.read, 1, true)
end

describe("an MCP answer's size", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("stays within the cap over stdio for a card of 4.5 MiB of comments; the comment is written once", function()
    local dir = H.example("notes")
    seed(dir)
    local call = '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s","arguments":%s}}'
    local r = H.orket("mcp serve", { cwd = dir, stdin = table.concat({
      INIT:format("2025-11-25"),
      call:format(1, "get_card", '{"id":"NOTES-3"}'),
      call:format(2, "comment", '{"id":"NOTES-3","body":"from stdio"}'),
      '{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"orket://cards/NOTES-3"}}',
    }, "\n") .. "\n" })
    local a = {}
    for line in r.stdout:gmatch("[^\n]+") do
      assert.is_true(#line < MIB4 and #line <= 2 * ANSWER_MAX, #line .. " bytes")
      local m = cjson.decode(line)
      a[m.id] = m
    end
    assert.is_nil(a[1].result.isError)
    cut_card(a[1].result.structuredContent, "72xxxx")
    assert.is_nil(a[2].result.isError)
    cut_card(a[2].result.structuredContent, "from stdio")
    cut_card(cjson.decode(a[3].result.contents[1].text), "from stdio")
    local card = H.card_json(dir, "NOTES-3")
    assert.equal(73, #card.comments)
    assert.equal(1, count(card, "from stdio"))
    -- a client of a revision without structuredContent reads the text: the card, not a note
    local old = H.orket("mcp serve", { cwd = dir, stdin = INIT:format("2024-11-05") .. "\n"
      .. call:format(1, "get_card", '{"id":"NOTES-3"}') .. "\n" })
    local last = cjson.decode(old.stdout:match("[^\n]+\n([^\n]+)"))
    cut_card(cjson.decode(last.result.content[1].text), "from stdio")
  end)

  it("stays within the cap over /mcp; the comment is written once", function()
    local dir = H.example("notes")
    seed(dir)
    local op = H.api_key(dir, "ops", "operator")
    local s = H.serve(dir)
    local function post(id, name, args)
      local body = cjson.encode { jsonrpc = "2.0", id = id, method = "tools/call", params = { name = name, arguments = args,
        _meta = { ["io.modelcontextprotocol/protocolVersion"] = "2026-07-28" } } }
      local st, text = H.fetch { url = s.url .. "/mcp", method = "POST", body = body, total_timeout_ms = 30000,
        headers = { "Content-Type: application/json", "Accept: application/json, text/event-stream",
          "Authorization: Bearer " .. op, "MCP-Protocol-Version: 2026-07-28" } }
      assert.equal(200, st, text:sub(1, 300))
      assert.is_true(#text < MIB4 and #text <= 2 * ANSWER_MAX, #text .. " bytes")
      return cjson.decode(text).result
    end
    local got = post(1, "get_card", { id = "NOTES-3" })
    assert.is_nil(got.isError)
    cut_card(got.structuredContent, "72xxxx")
    local said = post(2, "comment", { id = "NOTES-3", body = "from http" })
    assert.is_nil(said.isError)
    cut_card(said.structuredContent, "from http")
    local card = H.card_json(dir, "NOTES-3")
    assert.equal(73, #card.comments)
    assert.equal(1, count(card, "from http"))
    assert.equal(0, s.stop())
  end)
end)
