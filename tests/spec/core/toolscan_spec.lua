-- orket.c.toolscan, the binding of core/toolscan.c: scan(text) finds the JSON objects in a
-- model's text as spans (1-based, inclusive), with the damage of each that is broken, and
-- says when it stopped early. orket.toolcalls decodes the candidates (toolcalls_spec).
local toolscan = require "orket.c.toolscan"

describe("orket.c.toolscan.scan", function()
  it("finds whole, mismatched and unterminated objects", function()
    local text = 'hi {"tool": "x", "args": {}} and {"a": [} and {"b":'
    local spans, truncated = toolscan.scan(text)
    assert.is_false(truncated)
    assert.equal(3, #spans)
    assert.same({ start = 4, stop = 28, status = "ok" }, spans[1])
    assert.equal('{"tool": "x", "args": {}}', text:sub(spans[1].start, spans[1].stop))
    assert.same({ start = 34, stop = 41, status = "mismatch", message = "mismatched bracket in JSON object", err_at = 41 },
      spans[2])
    assert.equal("unterminated", spans[3].status)
    assert.matches("^unterminated JSON object", spans[3].message)
    assert.same({}, (toolscan.scan "no objects here"))
  end)

  it("stops at 64 candidates and says so", function()
    local spans, truncated = toolscan.scan(string.rep("{}", 70))
    assert.equal(64, #spans)
    assert.is_true(truncated)
  end)

  it("raises on misuse", function()
    assert.has_error(function() toolscan.scan() end, "bad argument #1 to 'scan' (string expected, got no value)")
    assert.has_error(function() toolscan.scan {} end, "bad argument #1 to 'scan' (string expected, got table)")
  end)
end)
