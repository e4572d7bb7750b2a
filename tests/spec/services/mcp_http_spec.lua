-- orket.serve.mcp_http's pure parts: which Accept headers /mcp answers (it answers only in
-- application/json) and what the API document says of it.
local mcp_http = require "orket.serve.mcp_http"

describe("orket.serve.mcp_http Accept", function()
  local na = mcp_http.not_acceptable

  it("takes what allows application/json, and no Accept or an empty one as any type", function()
    for _, a in ipairs {
      "application/json", "*/*", "application/*", "Application/JSON",
      "application/json, text/event-stream", "text/event-stream, application/json", -- what SDKs send
      "text/event-stream;q=0.5,\tapplication/json", " application/json ;q=0.5", "application/json;q=.2",
      "application/json;charset=utf-8", "application/json;q=0.001",
      "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2", -- Java's default
      "text/html, application/json", -- repeated Accept lines, as the server joins them
      "application/json;q=0, application/json", -- as specific: the highest q
      "text/event-stream;q=0, */*", -- only JSON matters
      'application/json;profile="a;q=0", text/event-stream', -- a quoted q is not a q
      'application/json;profile="x,y;q=0"', -- nor is a quoted comma a range's end
    } do
      assert.is_nil(na(a), a)
    end
    for _, a in ipairs { false, "", " ", "\t" } do assert.is_nil(na(a or nil), tostring(a)) end
  end)

  it("refuses what does not allow it: another type, q=0, a more specific range at q=0", function()
    for _, a in ipairs {
      "text/event-stream", "text/html", "text/*", "image/*", "*", "json",
      "application/json;q=0", "application/json; Q=0", "application/json ; q = 0 ", "application/json;q=0.000",
      "application/json;q=0, */*", "application/*;q=0, */*", "application/json;q=0, application/*",
      "*/*;q=0", "application/jsonx", "application/json-seq",
    } do
      assert.equal("string", type(na(a)), a)
    end
  end)

  it("says what Accept must hold and quotes what was sent, 128 printable bytes at most", function()
    assert.equal("Accept must allow application/json, the only type /mcp answers in; it was: text/html", na("text/html"))
    assert.equal("Accept must allow application/json, the only type /mcp answers in; it was: caf??/x", na("caf\195\169/x"))
    local long = string.rep("text/html, ", 1500) -- 16 KiB, as large as the server lets a header be
    local msg = na(long)
    assert.equal(long:sub(1, 128), msg:match("it was: (.*)$"))
    for _, junk in ipairs { string.rep(",", 16384), string.rep(";", 16384), string.rep(" ", 16383) .. "x",
        string.rep("\255", 16384), string.rep("q=0;", 4096), string.rep('"', 16384) } do
      local m = na(junk)
      assert.equal("string", type(m))
      assert.is_true(#m <= 80 + 128)
      assert.is_nil(m:find("[^\32-\126]"))
    end
  end)
end)

describe("orket.serve.mcp_http in the API document", function()
  it("names the 406 of POST /mcp, and has no GET (the router's 405, as for any method a path does not take)", function()
    local r = require("orket.serve.router").new()
    mcp_http.add(r)
    local doc = require("orket.serve.openapi").document(r)
    assert.matches("application/json", doc.paths["/mcp"].post.responses["406"].description)
    assert.is_nil(doc.paths["/mcp"].get)
    local _, st, allowed = r:match("GET", { "mcp" })
    assert.same({ 405, { "POST", "DELETE" } }, { st, allowed })
  end)

  it("declares POST /mcp's refusals as the JSON-RPC errors they are, which the API's error schema is not", function()
    local r = require("orket.serve.router").new()
    mcp_http.add(r)
    local doc = require("orket.serve.openapi").document(r)
    local schema = require "orket.c.schema"
    local function of(st) return doc.paths["/mcp"].post.responses[st].content["application/json"].schema end
    local rpc_err = { jsonrpc = "2.0", id = 1, error = { code = -32600, message = "Mcp-Session-Id is required" } }
    for _, st in ipairs { "400", "404", "406" } do
      assert.is_true(schema.validate(of(st), rpc_err), st)
    end
    -- a body that could not be read is the API's error, also a 400's
    assert.is_true(schema.validate(of("400"), { error = { code = "bad_request", message = "x" } }))
    assert.is_nil((schema.validate(of("406"), { error = { code = "bad_request", message = "x" } })))
    -- a batch's answer is an array; a notification's 202 has no body
    assert.is_true(schema.validate(of("200"), { { jsonrpc = "2.0", id = 1, result = { ok = true } } }))
    assert.is_nil(doc.paths["/mcp"].post.responses["202"].content)
    assert.is_nil(doc.paths["/mcp"].delete.responses["204"].content)
  end)
end)
