-- orket.serve.mcp_server keeps one tool answer within ANSWER_MAX (a quarter of the 4 MiB a
-- client reads): the text copy of a large answer becomes a note pointing at
-- structuredContent, an answer cutting cannot bring within the cap is a note (a write's
-- saying it was done), and nothing after the route ran turns a write into a failure. The
-- card's own cut (comments) is tested end to end (tests/e2e/mcp_answer_size_test.lua).
local cjson = require "cjson"
local server = require "orket.serve.mcp_server"
local jsonout = require "orket.jsonout"

local function session(version)
  local s = setmetatable({ version = version, log = function() end }, { __index = server })
  return s
end

local READ = { name = "list_runs", readonly = true }
local WRITE = { name = "comment" }

-- a document of about n bytes of JSON
local function doc_of(n) return { runs = jsonout.array { { note = string.rep("a", n) } } } end

describe("an MCP tool answer's size", function()
  it("keeps the text copy of a small answer", function()
    local res = session("2025-11-25"):answer_of(READ, doc_of(100))
    assert.same(res.structuredContent, cjson.decode(res.content[1].text))
  end)

  it("makes the text of a large answer a note pointing at structuredContent", function()
    local res = session("2025-11-25"):answer_of(READ, doc_of(500 * 1024))
    assert.equal(500 * 1024, #res.structuredContent.runs[1].note)
    assert.matches("^list_runs: the answer's JSON %(%d+ bytes%) is in structuredContent; not repeated here", res.content[1].text)
    assert.is_true(#jsonout.encode(res) <= server.ANSWER_MAX)
    -- a client of a revision without structuredContent reads the text: the JSON itself
    local old = session("2024-11-05"):answer_of(READ, doc_of(500 * 1024))
    assert.is_nil(old.structuredContent)
    assert.equal(500 * 1024, #cjson.decode(old.content[1].text).runs[1].note)
  end)

  it("answers a note, not a failure, for what no cut brings within the cap", function()
    for _, v in ipairs { "2025-11-25", "2024-11-05" } do
      local res = session(v):answer_of(WRITE, doc_of(2 * server.ANSWER_MAX))
      assert.is_nil(res.isError)
      assert.is_nil(res.structuredContent)
      assert.matches("^comment was done: its answer %(%d+ bytes of JSON%) is past the 1048576 bytes", res.content[1].text)
    end
  end)

  it("says a write was done when its answer could not be made at all", function()
    local s = session("2025-11-25")
    local logged
    s.log = function(f) logged = f end
    -- after the route ran: an answer_of that fails is the server's to log, not the caller's failure
    s.answer_of = function() error("boom") end
    local def = { t = { name = "comment", path = {}, query = {} }, route = { role = "viewer", body = "json",
      handler = function() return 200, { ok = true } end }, schema = { type = "object", properties = {} } }
    s.who = { role = "admin" }
    local res = server.call_tool(s, def, {})
    assert.is_nil(res.isError)
    assert.equal("comment was done, but its answer could not be shown (the server's log says why)", res.content[1].text)
    assert.matches("boom", logged.message)
  end)

  it("says arguments.X for a route's body.X naming an argument, and leaves other words alone", function()
    local schema = { properties = { model = {}, target = {} } }
    assert.equal("arguments.model x: bad; arguments.target too", server.as_arguments(schema, "body.model x: bad; body.target too"))
    assert.equal("body.other stays; nobody.model stays", server.as_arguments(schema, "body.other stays; nobody.model stays"))
  end)
end)
