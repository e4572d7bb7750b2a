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

  it("writes a value marked encoded() as its text, inside a larger document", function()
    local part = jsonout.encoded(jsonout.encode { key = "a/b", value = { intValue = "7" } })
    assert.equal('{"list":[{"key":"a/b","value":{"intValue":"7"}},{"key":"a/b","value":{"intValue":"7"}}],"n":1}',
      jsonout.encode { list = { part, part }, n = 1 })
    -- what else the marked table holds is not written
    part.key = "other"
    assert.equal('[{"key":"a/b","value":{"intValue":"7"}}]', jsonout.encode { part })
    assert.has_error(function() jsonout.encode { jsonout.encoded("") } end, "jsonout: an encoded value without its text")
  end)

  it("refuses what JSON cannot hold, with a message", function()
    local ok, err = pcall(jsonout.encode, { f = print })
    assert.is_false(ok)
    assert.equal("jsonout: cannot encode a function", err)
    ok, err = pcall(jsonout.encode, { [1] = 1, x = 2 })
    assert.is_false(ok)
    assert.matches("^jsonout: object keys must be strings", err)
  end)
  it("encodes a table marked with shape() to the bytes of the same table unmarked", function()
    local S = jsonout.shape { "zeta", "id", "text", "n", "list", "gone" }
    local values = {
      { id = "A-1", text = "plain", n = 2.0, list = jsonout.array { "x" }, zeta = cjson.null },
      { id = "a/b", text = "quote \" back \\ nul \0 del \127 bidi \226\128\174 bad \255", n = 0.1 },
      { zeta = false, list = jsonout.array() },
      {},
    }
    for _, t in ipairs(values) do
      local plain = {}
      for k, v in pairs(t) do plain[k] = v end
      assert.equal(jsonout.encode(plain), jsonout.encode(setmetatable(t, S)))
    end
    assert.equal('{"id":"A-1","n":2,"text":"x"}', jsonout.encode(setmetatable({ text = "x", n = 2, id = "A-1" }, S)))
  end)

  it("writes a shape's absent keys null when told, and leaves out keys it does not list", function()
    local S = jsonout.shape({ "b", "a", "c" }, { nulls = true })
    assert.equal('{"a":null,"b":1,"c":[]}',
      jsonout.encode(setmetatable({ b = 1, c = jsonout.array(), extra = "not shown" }, S)))
    assert.equal('{"a":null,"b":null,"c":null}', jsonout.encode(setmetatable({}, S)))
  end)

  it("writes C1 controls, invisible format characters and bytes that are not UTF-8 as escapes", function()
    -- NEL, RLO, a tag character (a surrogate pair), a lone 0xff, DEL, NUL; ZWNJ stays
    local s = "a\194\133b\226\128\174c\243\160\128\129d\255e\127f\0g\226\128\140h"
    local text = jsonout.encode { s = s }
    assert.equal('{"s":"a\\u0085b\\u202ec\\udb40\\udc01d\\ufffde\\u007ff\\u0000g\226\128\140h"}', text)
    -- everything but the bytes that are not UTF-8 decodes back to the same string
    assert.equal(s:gsub("\255", "\239\191\189"), cjson.decode(text).s)
    -- truncated, overlong and surrogate sequences are not UTF-8 either: one \ufffd a byte
    assert.equal('["\\ufffd\\ufffd","\\ufffd\\ufffd","\\ufffd\\ufffd\\ufffd"]',
      jsonout.encode { "\226\128", "\192\128", "\237\160\128" })
  end)

  it("writes whole numbers exactly, and others as lua-cjson does (14 significant digits)", function()
    assert.equal("[1000000000000000,9007199254740992,0.1,-0,3,0.33333333333333,2.5]",
      jsonout.encode { 1e15, 2 ^ 53, 0.1, -0.0, 3, 1 / 3, 2.5 })
    -- integers, every digit (a JSON-RPC id comes back as it was sent); floats past 2^53 and
    -- fractions at 14 digits
    assert.equal("[123456789012345,9007199254740993,9223372036854775807,-9223372036854775808,1e+20,1.2345678901235e+14]",
      jsonout.encode { 123456789012345, 9007199254740993, math.maxinteger, math.mininteger, 1e20, 123456789012345.5 })
    assert.equal('{"id":123456789012345678}', jsonout.encode { id = 123456789012345678 })
    for _, n in ipairs { 0 / 0, math.huge, -math.huge } do
      local ok, err = pcall(jsonout.encode, { n })
      assert.is_false(ok)
      assert.equal("jsonout: Cannot serialise number: must not be NaN or Infinity", err)
    end
  end)

  it("refuses a cycle, userdata and a coroutine with a message", function()
    local t = {}
    t.self = t
    local ok, err = pcall(jsonout.encode, t)
    assert.is_false(ok)
    assert.equal("jsonout: nested deeper than 1000 (a cycle?)", err)
    ok, err = pcall(jsonout.encode, { io.stdout })
    assert.is_false(ok)
    assert.equal("jsonout: cannot encode a userdata", err)
    ok, err = pcall(jsonout.encode, { coroutine.create(print) })
    assert.is_false(ok)
    assert.equal("jsonout: cannot encode a thread", err)
  end)

  -- printf's decimal point is the locale's: a script that set one (os.setlocale in orket lua
  -- or the repl) made {"cost":0,25}, which no JSON reader takes. Built here, as a locale is
  -- seldom installed: localedef into a temporary folder, LOCPATH naming it.
  it("writes a number's point as '.', whatever locale a script set", function()
    local H = require "tests.helpers"
    local src = "/usr/share/i18n/locales/de_DE"
    local p = io.popen("command -v localedef")
    local localedef = p:read("l")
    p:close()
    if not localedef or not io.open(src) then
      return pending("skipped: no localedef or no de_DE locale source (Debian's locales package) to build a decimal-comma locale from")
    end
    local dir = H.tmpdir()
    finally(H.cleanup)
    assert(os.execute(string.format("localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1", H.quote(dir))) or
      io.open(dir .. "/de_DE.UTF-8/LC_NUMERIC"), "localedef failed")
    local code = [[assert(os.setlocale("de_DE.UTF-8", "numeric"), "no locale")
assert(string.format("%.2f", 0.25) == "0,25", "not a decimal comma")
io.write(require("orket.jsonout").encode({ cost = 0.25, big = 1.5e300, n = 3 }))]]
    -- (stdout alone: a sanitizer build says its suppressions on stderr)
    p = io.popen(string.format("LOCPATH=%s %s lua -e %s", H.quote(dir), H.quote(H.BIN), H.quote(code)))
    local out = p:read("a")
    p:close()
    assert.equal('{"big":1.5e+300,"cost":0.25,"n":3}', out)
    assert.same({ big = 1.5e300, cost = 0.25, n = 3 }, cjson.decode(out))
  end)
end)
