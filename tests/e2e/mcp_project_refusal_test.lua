-- A writing MCP tool refused for the session's role says what the same write's REST route
-- says: the role needed in the project, the role the caller acts with there, and who grants
-- it (orket.serve.projects.refusal), in a hosted project and in the default one.
local H = require "tests.helpers"
local cjson = require "cjson"

local INIT = '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
  .. '"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'

local function ok(r, what)
  assert(r.status == 0, what .. " failed: " .. tostring(r.stderr) .. tostring(r.stdout))
  return r
end

local function post(s, path, key, body, headers)
  local h = { "Content-Type: application/json", "Accept: application/json, text/event-stream",
    "Authorization: Bearer " .. key }
  for _, x in ipairs(headers or {}) do h[#h + 1] = x end
  local st, text, hdrs = H.fetch { url = s.url .. path, method = "POST", headers = h, body = body, total_timeout_ms = 20000 }
  local lower = {}
  for k, v in pairs(hdrs or {}) do lower[tostring(k):lower()] = v end
  return st, text ~= "" and require("cjson.safe").decode(text) or nil, lower
end

local function call(name, args)
  return cjson.encode { jsonrpc = "2.0", id = 7, method = "tools/call", params = { name = name, arguments = args } }
end

describe("an MCP tool refused for a project's viewer", function()
  after_each(function()
    H.kill_servers()
    H.cleanup()
  end)

  it("names the role needed in the project, the role held there, and the grant, as REST does", function()
    local dir = H.example("webapp")
    ok(H.orket("projects add " .. H.example("notes") .. " --name notes", { cwd = dir }), "projects add")
    ok(H.orket("users add bob --role operator --password-env PW", { cwd = dir, env = { PW = "correct horse battery" } }),
      "users add")
    ok(H.orket("projects grant notes bob developer", { cwd = dir }), "grant")
    local bob = H.api_key(dir, "bob-ci --for bob", "operator")
    local s = H.serve(dir)
    for _, p in ipairs { { "notes", "/v1/projects/notes", "NOTES-1" }, { "default", "", "API-2" } } do
      local name, prefix, card = p[1], p[2], p[3]
      local st, _, hdrs = post(s, prefix .. "/mcp", bob, INIT)
      assert.equal(200, st)
      local with = { "Mcp-Session-Id: " .. hdrs["mcp-session-id"], "MCP-Protocol-Version: 2025-11-25" }
      -- made a viewer after the session began: the refusal is the role's now
      ok(H.orket("projects grant " .. name .. " bob viewer", { cwd = dir }), "grant viewer")
      local _, w = post(s, prefix .. "/mcp", bob, call("comment", { id = card, body = "x" }), with)
      assert.is_true(w.result.isError)
      local e = w.result.structuredContent.error
      local rst, rest = H.api(s, "POST", (prefix == "" and "/v1" or prefix) .. "/cards/" .. card .. "/comments", bob,
        { body = "x" })
      assert.equal(403, rst)
      assert.same({ "forbidden", 403, "this needs the developer role in project '" .. name .. "'; you act there as viewer",
        rest.error.remedy }, { e.code, e.status, e.message, e.remedy })
      assert.equal(rest.error.message, e.message)
      assert.matches("orket projects grant " .. name .. " bob developer", e.remedy, 1, true)
      assert.equal("forbidden: " .. e.message .. "; " .. e.remedy, w.result.content[1].text)
    end
  end)
end)
