-- orket.jsonout: the encoder behind every --json output of the CLI.
local jsonout = require "orket.jsonout"
local cjson = require "cjson"

describe("orket.jsonout", function()
  it("writes object keys sorted, whatever order the table was filled in", function()
    local a, b = {}, {}
    for _, k in ipairs { "verdict", "code", "reason", "remedy" } do a[k] = k end
    for _, k in ipairs { "remedy", "reason", "code", "verdict" } do b[k] = k end
    local want = '{"code":"code","reason":"reason","remedy":"remedy","verdict":"verdict"}'
    assert.equal(want, jsonout.encode(a))
    assert.equal(want, jsonout.encode(b))
    assert.equal('{"a":{"x":1,"y":2},"b":[{"m":true,"n":false}]}',
      jsonout.encode { b = { { n = false, m = true } }, a = { y = 2, x = 1 } })
  end)

  it("writes \"/\" plain, in values and keys, and the text decodes to the same strings", function()
    assert.equal('{"format":"orket.runs/1","path":"src/a.c"}',
      jsonout.encode { path = "src/a.c", format = "orket.runs/1" })
    assert.equal('{"a/b":"https://x.test/y"}', jsonout.encode { ["a/b"] = "https://x.test/y" })
    -- backslashes next to slashes keep their meaning
    for _, s in ipairs { "\\/", "\\\\/", "/\\", "a\\/b/\\\\", "\\", "//", "\"/\"" } do
      local text = jsonout.encode { s = s }
      if not s:find("\\", 1, true) then assert.is_nil(text:find("\\/", 1, true)) end
      assert.equal(s, cjson.decode(text).s)
    end
  end)

  it("writes arrays marked with array() as arrays even when empty; other empty tables as {}", function()
    assert.equal('{"files":[],"opts":{}}', jsonout.encode { files = jsonout.array(), opts = {} })
    assert.equal('["a","b"]', jsonout.encode(jsonout.array { "a", "b" }))
    assert.equal('[1,null]', jsonout.encode { 1, cjson.null })
  end)

  it("refuses what JSON cannot hold, with a message", function()
    local ok, err = pcall(jsonout.encode, { f = print })
    assert.is_false(ok)
    assert.equal("jsonout: cannot encode a function", err)
    ok, err = pcall(jsonout.encode, { [1] = 1, x = 2 })
    assert.is_false(ok)
    assert.matches("^jsonout: object keys must be strings", err)
  end)
end)
