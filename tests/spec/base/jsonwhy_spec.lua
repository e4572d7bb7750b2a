-- orket.jsonwhy: lua-cjson's refusals in words, one wording for the HTTP API's bodies and
-- MCP's messages (an MCP client once read "found T_END at character 12")
local jsonwhy = require "orket.jsonwhy"
local cjson = require "cjson.safe"

describe("orket.jsonwhy", function()
  local function refusal(text) return select(2, cjson.decode(text)) end

  it("names what cjson found in words, and counts bytes", function()
    assert.equal("expected value but found the end of the message at byte 12",
      jsonwhy.why(refusal('{"jsonrpc":'), "the message"))
    assert.equal("expected value but found the end of the text at byte 12", jsonwhy.why(refusal('{"jsonrpc":')))
    assert.equal("expected comma or object end but found ']' at byte 8", jsonwhy.why(refusal('{"a":1 ]}')))
    assert.is_nil(jsonwhy.why(refusal('[1, 2, T_END]')):find("T_", 1, true))
  end)

  it("caps what it says", function()
    assert.is_true(#jsonwhy.why(("x"):rep(5000)) <= 200)
  end)
end)
