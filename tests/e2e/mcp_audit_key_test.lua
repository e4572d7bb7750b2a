-- An MCP tool's write made with a person's key is audited with that key's id (so that
-- ?key= finds a leaked key's acts) and, under a project's prefix, with the project's
-- route, as the same write over HTTP is (orket.serve.mcp_http, orket.serve.writes.audited).
local H = require "tests.helpers"
local cjson = require "cjson"

local PASS = "correct horse battery"
local JSON = "Content-Type: application/json"

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

describe("an MCP write through a person's key", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("is audited with the key's id and the project's route", function()
    local dir = H.example("webapp")
    local other = H.example("notes")
    ok(H.orket("projects add " .. other .. " --name notes", { cwd = dir }), "projects add")
    ok(H.orket("users add alice --role operator --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    ok(H.orket("users add boss --role admin --password-env PW", { cwd = dir, env = { PW = PASS } }), "users add")
    ok(H.orket("projects grant notes alice developer", { cwd = dir }), "grant")
    local key = ok(H.orket("keys create k3 --role operator --for alice", { cwd = dir }), "key").stdout:gsub("\n$", "")
    local kid = key:match("^ork_(%x+)_")
    local boss = ok(H.orket("keys create bk --role admin --for boss", { cwd = dir }), "key").stdout:gsub("\n$", "")
    local s = H.serve(dir)
    local hs = { "Authorization: Bearer " .. key, JSON, "Accept: application/json, text/event-stream" }
    local function mcp(path, sid, msg)
      local h = { hs[1], hs[2], hs[3], sid and ("Mcp-Session-Id: " .. sid) or nil }
      return H.request(s, "POST", path, h, msg)
    end
    local function call(path, card, text)
      local _, _, h = mcp(path, nil, { jsonrpc = "2.0", id = 1, method = "initialize",
        params = { protocolVersion = "2025-06-18", capabilities = {}, clientInfo = { name = "t", version = "1" } } })
      local sid = assert(h["mcp-session-id"])
      local st, doc = mcp(path, sid, { jsonrpc = "2.0", id = 2, method = "tools/call",
        params = { name = "comment", arguments = { id = card, body = text } } })
      assert.equal(200, st)
      assert.is_not_true(doc.result.isError, cjson.encode(doc))
    end
    call("/v1/projects/notes/mcp", "NOTES-1", "VIA-MCP-SCOPED")
    call("/mcp", "API-2", "VIA-MCP-DEFAULT")

    local st, doc = H.api(s, "GET", "/v1/projects/notes/audit?key=" .. kid, boss)
    assert.equal(200, st)
    assert.equal(1, #doc.entries, cjson.encode(doc))
    assert.same({ "comment", kid, "/v1/projects/{p}/cards/{id}/comments" },
      { doc.entries[1].action, doc.entries[1].key, doc.entries[1].route })
    st, doc = H.api(s, "GET", "/v1/audit?key=" .. kid, boss)
    assert.equal(200, st)
    assert.equal(1, #doc.entries, cjson.encode(doc))
    assert.same({ "comment", kid, "/v1/cards/{id}/comments" },
      { doc.entries[1].action, doc.entries[1].key, doc.entries[1].route })
    -- the server's log line names the project a project's route was asked of, and only then
    H.wait_for(function() return s.log():find('"project":"notes","route":"/v1/projects/{p}/mcp"', 1, true) end,
      "the scoped request's log line")
    for line in s.log():gmatch("[^\n]+") do
      if line:find('"route":"/mcp"', 1, true) then assert.no_match('"project":', line, 1, true) end
    end
    -- the chain holds the project's route too
    assert.matches('"route":"/v1/projects/{p}/cards/{id}/comments"',
      ok(H.orket("audit export", { cwd = other }), "audit export").stdout, 1, true)
  end)
end)
